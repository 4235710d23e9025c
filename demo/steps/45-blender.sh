# Blender synthetic data: a seeded pose set rendered headless in two shards, merged, proven
# byte-identical to the unsharded render by a rerun, and fed to a training run by its id.
# Sourced by demo/run.sh (so `return`, never `exit`); skipped with a hint without the extra.
step "Render a synthetic pose set with Blender, shard it, merge it, train on it (blender extra)"
if ! python -c "import bpy" >/dev/null 2>&1; then
  echo "skipped: the Blender experiments need the blender extra: pip install 'recap[blender]'"
  return 0
fi
if ! recap data merge --help >/dev/null 2>&1; then
  echo "skipped: 'recap data merge' is not in this build yet"
  return 0
fi
mkdir -p "$DEMO_DIR/experiments"
for e in blender-shapes blender-pose fastai-unity-keypoint; do
  rm -rf "$DEMO_DIR/experiments/$e"
  cp -R "$here/../experiments/$e" "$DEMO_DIR/experiments/"
done
cp "$here"/../experiments/fastai-unity-family.* "$DEMO_DIR/experiments/" 2>/dev/null || true
bjson() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
show recap exp run blender-shapes
pose=$(recap exp run blender-pose -p n_images=12 -p figures=2 --json | bjson id)
show recap exp show "$pose"
s0=$(recap exp run blender-pose -p n_images=12 -p figures=2 -p shard=0/2 --json | bjson id)
s1=$(recap exp run blender-pose -p n_images=12 -p figures=2 -p shard=1/2 --json | bjson id)
show recap data merge "$s0" "$s1" -o "$DEMO_DIR/merged-pose"
cmp "$DEMO_DIR/merged-pose/coco.json" "$DEMO_DIR/runs/blender-pose/$pose/coco.json" \
  && echo "merged shards: coco.json identical to the unsharded render"
show recap rerun "$pose"
echo "contact sheet: $DEMO_DIR/runs/blender-pose/$pose/contact.png"
if python -c "import fastai" >/dev/null 2>&1; then
  show recap exp run fastai-unity-keypoint -p data=run:"$pose" -p epochs=1
fi
