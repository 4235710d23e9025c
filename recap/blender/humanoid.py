"""A procedural humanoid: body proportions and a pose sampled inside joint limits (numpy only).

Forward kinematics in the figure's own frame (x to its left, y forward, z up, feet on z = 0)
gives the 17 COCO joints plus the pelvis, neck and head centres; ``scenes`` turns them into an
armature's pose. All randomness comes from the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recap.coco import KEYPOINTS as COCO_KEYPOINTS

J = {name: i for i, name in enumerate(COCO_KEYPOINTS)}

# Joint limits in degrees (min, max), sampled uniformly per figure.
LIMITS = {
    "torso_lean": (-12, 20),  # forward bend of the spine
    "torso_side": (-10, 10),
    "head_yaw": (-50, 50),
    "head_pitch": (-20, 25),
    "shoulder_flex": (-40, 170),  # arm forward/up
    "shoulder_abd": (0, 100),  # arm out to the side
    "elbow": (0, 145),
    "hip_flex": (-20, 95),  # thigh forward
    "hip_abd": (-5, 35),
    "knee": (0, 120),
}


@dataclass
class Body:
    """Lengths and thicknesses in metres."""

    height: float
    torso: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    shoulder_half: float
    hip_half: float
    head_r: float
    limb_r: float
    torso_w: float
    torso_d: float


def sample_body(rng: np.random.Generator) -> Body:
    h = rng.uniform(1.5, 1.95)

    def part(f: float) -> float:  # a body fraction, each varied by +-12% on its own
        return h * f * rng.uniform(0.88, 1.12)

    return Body(
        height=h,
        torso=part(0.30),
        upper_arm=part(0.17),
        forearm=part(0.15),
        thigh=part(0.245),
        shin=part(0.245),
        shoulder_half=part(0.115),
        hip_half=part(0.06),
        head_r=part(0.065),
        limb_r=h * rng.uniform(0.022, 0.04),
        torso_w=part(0.10),
        torso_d=part(0.065),
    )


def _rot(axis: str, deg: float) -> np.ndarray:
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def sample_pose(rng: np.random.Generator) -> dict[str, float]:
    """Angles (degrees) for both sides, each inside LIMITS."""
    pose = {}
    for name in ("torso_lean", "torso_side", "head_yaw", "head_pitch"):
        pose[name] = float(rng.uniform(*LIMITS[name]))
    for side in ("l", "r"):
        for name in ("shoulder_flex", "shoulder_abd", "elbow", "hip_flex", "hip_abd", "knee"):
            pose[f"{side}_{name}"] = float(rng.uniform(*LIMITS[name]))
    return pose


def joints(body: Body, pose: dict[str, float]) -> dict[str, np.ndarray]:
    """World-free joint positions (figure frame): the 17 COCO joints plus pelvis, neck, head."""
    down, up = np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0])
    pelvis = np.zeros(3)
    trunk = _rot("x", pose["torso_lean"]) @ _rot("y", pose["torso_side"])
    neck = pelvis + trunk @ (up * body.torso)
    side = trunk @ np.array([1.0, 0.0, 0.0])
    head_rot = trunk @ _rot("z", pose["head_yaw"]) @ _rot("x", pose["head_pitch"])
    head = neck + trunk @ (up * (body.head_r * 1.6))
    out = {"pelvis": pelvis, "neck": neck, "head": head}
    fwd = head_rot @ np.array([0.0, 1.0, 0.0])
    hup = head_rot @ up
    hside = head_rot @ np.array([1.0, 0.0, 0.0])
    r = body.head_r
    out["nose"] = head + r * fwd
    for s, sign in (("left", 1.0), ("right", -1.0)):
        eye = fwd * np.cos(np.radians(25)) + sign * hside * np.sin(np.radians(25))
        eye = eye * np.cos(np.radians(15)) + hup * np.sin(np.radians(15))
        out[f"{s}_eye"] = head + r * eye / np.linalg.norm(eye)
        out[f"{s}_ear"] = head + r * sign * hside
    for s, sign, k in (("left", 1.0, "l"), ("right", -1.0, "r")):
        shoulder = neck + sign * side * body.shoulder_half - trunk @ up * (body.torso * 0.06)
        # The arm hangs down, then flexes forward (about x) and abducts sideways (about y).
        arm = (
            trunk
            @ _rot("x", pose[f"{k}_shoulder_flex"])
            @ _rot("y", -sign * pose[f"{k}_shoulder_abd"])
        )
        elbow = shoulder + arm @ (down * body.upper_arm)
        wrist = elbow + arm @ _rot("x", pose[f"{k}_elbow"]) @ (down * body.forearm)
        hip = pelvis + sign * np.array([1.0, 0.0, 0.0]) * body.hip_half
        leg = _rot("x", pose[f"{k}_hip_flex"]) @ _rot("y", -sign * pose[f"{k}_hip_abd"])
        knee = hip + leg @ (down * body.thigh)
        ankle = knee + leg @ _rot("x", -pose[f"{k}_knee"]) @ (down * body.shin)
        out.update(
            {
                f"{s}_shoulder": shoulder,
                f"{s}_elbow": elbow,
                f"{s}_wrist": wrist,
                f"{s}_hip": hip,
                f"{s}_knee": knee,
                f"{s}_ankle": ankle,
            }
        )
    # Stand on the ground: the lowest ankle one limb radius above z = 0.
    lift = body.limb_r - min(out["left_ankle"][2], out["right_ankle"][2])
    return {k: v + np.array([0.0, 0.0, lift]) for k, v in out.items()}


# Bones: (name, head joint, tail joint, part) with part the body part parented to the bone:
# "limb" (a cylinder), "torso" (an elliptic cylinder), "head" (a sphere) or None.
BONES = (
    ("spine", "pelvis", "neck", "torso"),
    ("neck", "neck", "head", "limb"),
    ("head", "head", None, "head"),
    ("nose", "head", "nose", None),
    ("eye.L", "head", "left_eye", None),
    ("eye.R", "head", "right_eye", None),
    ("ear.L", "head", "left_ear", None),
    ("ear.R", "head", "right_ear", None),
    ("clavicle.L", "neck", "left_shoulder", "limb"),
    ("clavicle.R", "neck", "right_shoulder", "limb"),
    ("upper_arm.L", "left_shoulder", "left_elbow", "limb"),
    ("upper_arm.R", "right_shoulder", "right_elbow", "limb"),
    ("forearm.L", "left_elbow", "left_wrist", "limb"),
    ("forearm.R", "right_elbow", "right_wrist", "limb"),
    ("pelvis.L", "pelvis", "left_hip", "limb"),
    ("pelvis.R", "pelvis", "right_hip", "limb"),
    ("thigh.L", "left_hip", "left_knee", "limb"),
    ("thigh.R", "right_hip", "right_knee", "limb"),
    ("shin.L", "left_knee", "left_ankle", "limb"),
    ("shin.R", "right_knee", "right_ankle", "limb"),
)


def slack(body: Body, joint: str) -> float:
    """How deep a joint sits inside the body parts around it (for the visibility ray cast)."""
    if joint in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
        return 0.1 * body.head_r
    if joint.endswith("shoulder") or joint.endswith("hip"):
        return 1.3 * max(body.limb_r, body.torso_d)
    return 1.3 * body.limb_r
