"""A run's image, video and metrics artifacts, shown on its page, its experiment's and in posts.

What is shown is chosen by the artifact's kind (``IMAGE_KINDS``, ``VIDEO_KINDS``), so a new
experiment family needs no change here. A file is copied into ``docs/`` only when it is a plain
file inside the run's own folder (no ``..``, no symlink anywhere on the way), still has the sha256
that was recorded, and its bytes are an image (or an MP4/WebM video) of a bounded size. Paths and
captions come from the database and are escaped like all other text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from recap import paths
from recap.site import markdown as md

IMAGE_KINDS = ("contact-sheet", "image", "overlay", "plot")  # shown in this order
VIDEO_KINDS = ("video",)
IMAGES_PER_RUN = 4  # on a run's page
IMAGES_ELSEWHERE = 2  # per run, on an experiment page and in a post
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_VIDEO_BYTES = 32 * 1024 * 1024
MAX_JSON_BYTES = 1024 * 1024
IMAGE_EXT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp"}
VIDEO_EXT = {".mp4", ".webm"}


@dataclass
class Media:
    kind: str
    path: str  # the artifact's path in the run folder, as recorded (untrusted text)
    rel: str  # where it lands, relative to docs/
    size: int
    what: str = ""  # metadata "what", a caption


@dataclass
class RunMedia:
    images: list[Media] = field(default_factory=list)
    videos: list[Media] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # style-metrics.json and the like
    skipped: list[str] = field(default_factory=list)
    more: int = 0  # images past the cap of the run page


def _magic_ok(data: bytes, ext: str) -> bool:
    kind = IMAGE_EXT.get(ext)
    if kind == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "jpeg":
        return data.startswith(b"\xff\xd8\xff")
    if kind == "gif":
        return data.startswith((b"GIF87a", b"GIF89a"))
    if kind == "webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if ext == ".mp4":
        return data[4:8] == b"ftyp"
    if ext == ".webm":
        return data.startswith(b"\x1a\x45\xdf\xa3")
    return False


def _read_confined(
    base: Path, rel: str, limit: int, expected: int | None = None
) -> tuple[bytes | None, str]:
    """The bytes of ``base/rel`` when it is a plain file of ``base`` (no '..', no symlink on
    the way) no larger than ``limit``; else None and why."""
    pure = PurePosixPath(rel)
    parts = pure.parts
    if not rel or pure.is_absolute() or "\\" in rel or any(p in (".", "..") for p in parts):
        return None, "not a path inside the run folder"
    here = base
    for part in parts:
        here = here / part
        if here.is_symlink():
            return None, "a symlink"
    try:
        paths.inside(base, here)
    except Exception:
        return None, "outside the run folder"
    if not here.is_file():
        return None, "missing"
    size = here.stat().st_size
    if size > limit:
        return None, f"larger than {limit // (1024 * 1024)} MiB"
    if expected is not None and size != expected:
        return None, "changed since the run recorded it"  # known without reading it
    return here.read_bytes(), ""


def collect(root: Path, conn, run, files: dict, cache: dict) -> RunMedia:
    """The run's media, copied into ``files`` (path under docs/ -> bytes) once per render."""
    if run["id"] in cache:
        return cache[run["id"]]
    out = RunMedia()
    cache[run["id"]] = out
    rows = conn.execute(
        "SELECT path, kind, sha256, size, metadata FROM artifact WHERE run_id = ? ORDER BY path",
        (run["id"],),
    ).fetchall()
    wanted = [r for r in rows if r["kind"] in IMAGE_KINDS + VIDEO_KINDS or _metrics_json(r)]
    if not wanted:
        return out
    runs = paths.runs_dir(root)
    exp = conn.execute(
        "SELECT name FROM experiment WHERE id = ?", (run["experiment_id"],)
    ).fetchone()
    base = runs / str(exp["name"] if exp else "") / str(run["id"])
    try:
        if base.is_symlink() or base.parent.is_symlink():
            raise ValueError
        base = paths.inside(runs, base)
    except Exception:
        out.skipped.append(f"run {run['id']}: its folder is not inside runs/; no files shown")
        return out
    order = {k: i for i, k in enumerate(IMAGE_KINDS)}
    wanted.sort(key=lambda r: (order.get(r["kind"], len(order)), r["path"]))
    # beside the run's page (runs/<run>.md); '.files' keeps it apart from any page's folder
    folder = f"runs/{md.safe_name(run['id'], 'run')}.files"
    names: set[str] = set()
    for row in wanted:
        rel = str(row["path"])
        ext = PurePosixPath(rel).suffix.lower()
        image = row["kind"] in IMAGE_KINDS
        video = row["kind"] in VIDEO_KINDS
        if image and ext not in IMAGE_EXT or video and ext not in VIDEO_EXT:
            continue  # an image kind that is not a web image (a .npz plot, say): listed only
        if image and len(out.images) >= IMAGES_PER_RUN:
            out.more += 1
            continue
        limit = MAX_IMAGE_BYTES if image else MAX_VIDEO_BYTES if video else MAX_JSON_BYTES
        data, why = _read_confined(base, rel, limit, row["size"])
        if data is not None and hashlib.sha256(data).hexdigest() != row["sha256"]:
            data, why = None, "changed since the run recorded it"
        if data is not None and (image or video) and not _magic_ok(data[:16], ext):
            data, why = None, "not the file type its name says"
        if data is None:
            out.skipped.append(f"run {run['id']}: artifact {rel!r} not shown ({why})")
            continue
        if not (image or video):
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.metrics.update(
                    {k: doc[k] for k in ("speed_fps", "stability") if isinstance(doc.get(k), dict)}
                )
            continue
        stem = md.safe_name(PurePosixPath(rel).stem, "file")[:60]
        name = f"{stem}{ext}"
        n = 2
        while name in names:
            name, n = f"{stem}-{n}{ext}", n + 1
        names.add(name)
        dest = f"experiments/{folder}/{name}"
        files[dest] = data
        what = md.json_dict(row["metadata"]).get("what")
        item = Media(row["kind"], rel, dest, len(data), str(what or ""))
        (out.images if image else out.videos).append(item)
    return out


def _metrics_json(row) -> bool:
    return row["kind"] == "metrics" and str(row["path"]).lower().endswith(".json")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{max(1, round(n / 1000))} kB"


def section(media: RunMedia, prefix: str, *, limit: int, heading: str = "") -> list[str]:
    """Markdown for the run's media: images (at most ``limit``), video links, the metrics
    table. ``prefix`` leads from the page's folder to docs/ (``../../../`` from a post)."""
    out: list[str] = []
    for m in media.images[:limit]:
        caption = m.what or f"{m.kind} {m.path}"
        out += [f"![{md.inline(caption, 120)}]({prefix}{m.rel})", ""]
    hidden = len(media.images) - min(limit, len(media.images)) + media.more
    if hidden:
        where = "listed under Artifacts" if heading else "see the run's page"
        out += [f"({hidden} more image{'s' if hidden > 1 else ''}: {where}.)", ""]
    for m in media.videos:
        out += [f"Video: [{md.inline(m.path, 120)}]({prefix}{m.rel}) ({_size(m.size)}, MP4)", ""]
        if not m.rel.endswith(".mp4"):
            out[-2] = out[-2].replace(", MP4)", ", WebM)")
    out += metrics_table(media.metrics)
    if out and heading:
        out = [heading, "", *out]
    return out


def _num(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return md.inline(str(value), 40)
    return md.inline(f"{value:.4g}")


def metrics_table(metrics: dict) -> list[str]:
    """speed_fps (``<backend>_<height>p`` -> frames/s) and stability as two small tables."""
    out: list[str] = []
    speed = metrics.get("speed_fps") or {}
    if speed:
        out += ["| Backend | Size | Frames/s |", "|---|---|---|"]
        for key, value in list(speed.items())[:40]:
            backend, _, size = str(key).rpartition("_")
            if not backend:
                backend, size = str(key), ""
            out.append(f"| {md.inline(backend, 60)} | {md.inline(size, 20)} | {_num(value)} |")
        out.append("")
    stab = metrics.get("stability") or {}
    shown = [k for k in ("warp_error_rel", "frame_diff_rel") if k in stab]
    if shown:
        out += ["| Stability | Value |", "|---|---|"]
        out += [f"| {md.inline(k)} | {_num(stab[k])} |" for k in shown]
        out += ["", "(relative to the input clip: below 1 is steadier than the input.)", ""]
    return out
