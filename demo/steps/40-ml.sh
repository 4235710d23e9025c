# The ML core: train tiny fastai models, export Unity bundles, prove parity, flag a lazy key-point
# model. Sourced by demo/run.sh (so `return`, never `exit`); skipped with a hint without the extra.
step "Train, export and check models for Unity (the ml extra)"
if ! python -c "import fastai, onnxruntime" >/dev/null 2>&1; then
  echo "skipped: the ML experiments need the ml extra: pip install 'recap[ml]'"
  return 0
fi
if ! recap exp run --help >/dev/null 2>&1; then
  echo "skipped: 'recap exp run' is not in this build yet"
  return 0
fi
# The demo log gets the experiment folders from this repository.
mkdir -p "$DEMO_DIR/experiments"
for e in fastai-unity-classify fastai-unity-keypoint; do
  cp -R "$here/../experiments/$e" "$DEMO_DIR/experiments/"
done
cp "$here/../experiments/fastai-unity-family.toml" "$DEMO_DIR/experiments/"  # what they extend
show recap exp run fastai-unity-classify -p preset=tiny
# A marker that never moves: the model cannot beat "always the mean", and the run is flagged.
show recap exp run fastai-unity-keypoint -p preset=tiny -p marker=fixed -p epochs=2
# The parity summary of the classifier's run, straight from its report.
run_dir=$(ls -d "$DEMO_DIR"/runs/fastai-unity-classify/*/ | tail -n 1)
run_id=$(basename "$run_dir")
python - "$run_dir/parity.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
targets = ", ".join(
    t + (f" opset {v['opset']}" if v.get("opset") else "") for t, v in r["targets"].items()
)
print(f"parity ({targets}): {'ok' if r['ok'] else 'MISMATCH'}")
for k, v in r["summary"].items():
    print(f"  {k} = {v:.3g}" if isinstance(v, float) else f"  {k} = {v}")
PY
show recap exp export "$run_id" --target latest
show recap exp export "$run_id" --target barracuda
