# Past one process: the same tiny classifier trained data-parallel on 2 processes (torchrun, gloo
# on the CPU), recorded as one run with its world size, and a cache key of its own.
# Sourced by demo/run.sh (so `return`, never `exit`); skipped with a hint without the extra.
step "Train data-parallel on 2 processes (torchrun, gloo on the CPU)"
if ! python -c "import fastai, torch.distributed" >/dev/null 2>&1; then
  echo "skipped: distributed training needs the ml extra: pip install 'recap[ml]'"
  return 0
fi
show recap exp run fastai-unity-classify -p preset=tiny --processes 2
show recap exp runs fastai-unity-classify
