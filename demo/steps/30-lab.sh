# The lab notebook: an experiment run, cached, varied, compared, linked to an entry and rerun.
step "Experiments: run, cache, compare"
lab_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$DEMO_DIR/experiments"
rm -rf "$DEMO_DIR/experiments/toy-regression"
cp -r "$lab_repo/experiments/toy-regression" "$DEMO_DIR/experiments/"
json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
show recap exp list
show recap exp run toy-regression
show recap exp run toy-regression            # the same folder, params and seed: cached
run_a=$(recap exp run toy-regression --json | json_field id)
run_b=$(recap exp run toy-regression -p noise=0.5 -p epochs=40 --seed 1 --json | json_field id)
show recap exp runs
show recap exp compare "$run_a" "$run_b"
show recap exp show "$run_b" --plot "$DEMO_DIR/runs/curves.png"

step "Link the run to a weekly entry and rerun it from the entry"
if recap new --help >/dev/null 2>&1; then
  entry=$(recap new --week 2021-W03 --no-edit --json | json_field slug)
  show recap link "$entry" --run "$run_a" --note "the baseline fit"
  show recap link "$entry" --run "$run_b" --note "noisier data, fewer steps"
  show recap show "$entry"
  show recap rerun "$entry"
else
  show recap rerun "$run_a"
fi

step "Change the experiment: the rerun says what no longer reproduces"
sed -i 's/range(p\["epochs"\])/range(p["epochs"] + 5)/' \
  "$DEMO_DIR/experiments/toy-regression/main.py"
set +e
show recap rerun "$run_a"
rc=$?
set -e
echo "recap rerun exited with $rc (6: did not reproduce)"
[ "$rc" -eq 6 ]
cp "$lab_repo/experiments/toy-regression/main.py" "$DEMO_DIR/experiments/toy-regression/main.py"
