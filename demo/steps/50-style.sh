# Fast style transfer and video stylisation through the core's `style` task: tiny runs on the CPU
# (a random VGG, flagged "not comparable"), exports with parity, a stylised clip with its flicker.
# Sourced by demo/run.sh (so `return`, never `exit`); skipped with a hint without the extra.
step "Train tiny style-transfer models, export them, stylise a clip (the ml extra)"
if ! python -c "import fastai, onnxruntime, av, cv2" >/dev/null 2>&1; then
  echo "skipped: the style experiments need the ml extra: pip install 'recap[ml]'"
  return 0
fi
sjson() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
style=$(recap exp run style-transfer -p preset=tiny --json | sjson id)
show recap exp show "$style"
show recap exp run style-video -p preset=tiny
# A 12-frame synthetic clip, stylised through the exported ONNX model and the numpy reference.
python - "$DEMO_DIR/clip.mp4" <<'PY'
import sys
from pathlib import Path
from recap.ml.style import data
n = data.write_video(data.synthetic_clip(12, 64, 96, seed=1), Path(sys.argv[1]))
print(f"made a {n}-frame clip: {sys.argv[1]}")
PY
show recap stylize "$style" "$DEMO_DIR/clip.mp4" --backend onnx --out "$DEMO_DIR/stylised"
if [ -n "${entry:-}" ]; then  # the week's post shows the run's before/after grid
  show recap link "$entry" --run "$style" --note "a tiny style model (random VGG: not comparable)"
fi
