# Pose estimation through the core's `pose` task: a tiny heat-map model (procedural stick figures
# here, `-p data=run:<id>` for a blender-pose set), decoded outside the network, checked against
# the mean pose, exported to every engine target with its skeleton and decode in model.json.
# Sourced by demo/run.sh (so `return`, never `exit`); skipped with a hint without the extra.
step "Train a tiny pose model, check it against the mean pose, export it (the ml extra)"
if ! python -c "import fastai, onnxruntime, pycocotools" >/dev/null 2>&1; then
  echo "skipped: the pose experiment needs the ml extra: pip install 'recap[ml]'"
  return 0
fi
pjson() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
pose_run=$(recap exp run pose --json | pjson id)
show recap exp show "$pose_run"
python - "$DEMO_DIR/runs/pose/$pose_run" <<'PY'
import json, sys
from pathlib import Path
pose = json.loads((Path(sys.argv[1]) / "bundle/sentis/model.json").read_text())["pose"]
print(f"model.json: {len(pose['names'])} joints, {len(pose['skeleton'])} bones, "
      f"flip pairs {pose['flip_pairs'][:2]}..., heat maps {pose['heatmap_size']} "
      f"(stride {pose['heatmap_stride']}), decode {pose['decode']['rule']}")
PY
if [ -n "${entry:-}" ]; then  # the week's post shows the run's overlays and per-joint PCK
  show recap link "$entry" --run "$pose_run" --note "a tiny pose model against the mean pose"
fi
