"""Site benchmark: 500 entries and 5,000 bookmarks (plus runs with metrics).

Reports the median time to render the database into docs/ (every page rewritten with the plots
cached; from an empty docs/ with every plot drawn; with nothing changed) against the median
`mkdocs build --strict` of the same docs/ (target: render at most 10% of build), and checks that
a second build with no change writes 0 files.

    PYTHONPATH=. python benchmarks/bench_site.py [--entries 500] [--bookmarks 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, save, time_fn  # noqa: E402

NOW = "2024-01-01T00:00:00.000Z"
WORDS = (
    "model style transfer unity onnx keypoint blender render dataset epoch loss accuracy "
    "export barracuda sentis libtorch pose synthetic training notes"
).split()


def make_log(root: Path, entries: int, bookmarks: int, runs: int) -> None:
    from recap import db
    from recap.logroot import init_root

    init_root(root, title="Bench log")
    rng = random.Random(0)
    conn = db.connect(root / "recap.db")
    with db.transaction(conn):
        for i in range(bookmarks):
            conn.execute(
                "INSERT INTO bookmark (url, url_key, title, note, tags, added, updated) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    f"https://site{i % 300}.example/page/{i}",
                    f"k{i}",
                    " ".join(rng.choices(WORDS, k=6)),
                    rng.choice(["", "worth a read"]),
                    json.dumps(rng.sample(WORDS[:8], 2)),
                    f"2015-01-01T00:00:{i % 60:02d}.000Z",
                    NOW,
                ),
            )
        conn.execute(
            "INSERT INTO experiment (name, folder, project) VALUES "
            "('bench', 'experiments/bench', 'style-transfer')"
        )
        for r in range(runs):
            conn.execute(
                "INSERT INTO run (id, experiment_id, status, params, summary, started) "
                "VALUES (?, 1, 'finished', ?, ?, ?)",
                (
                    f"run-{r:04d}",
                    json.dumps({"lr": 0.001 * (r + 1), "bs": 16}),
                    json.dumps({"loss": 1.0 / (r + 1)}),
                    NOW,
                ),
            )
            conn.executemany(
                "INSERT INTO metric (run_id, key, step, value, time) VALUES (?, 'loss', ?, ?, ?)",
                [(f"run-{r:04d}", s, 1.0 / (s + 1), NOW) for s in range(20)],
            )
        for e in range(entries):
            day = f"{2014 + e // 52:04d}-{1 + (e % 52) // 5:02d}-{1 + e % 28:02d}"
            paras = "\n\n".join(" ".join(rng.choices(WORDS, k=60)) for _ in range(6))
            body = (
                f"## Introduction\n\n{paras[:400]}\n\n## Work\n\n{paras}\n\n"
                "<!-- recap:links -->\n\n<!-- recap:runs -->\n\n## Conclusion\n\nDone.\n"
            )
            cur = conn.execute(
                "INSERT INTO entry (slug, title, kind, week, date, body, categories, tags, "
                "created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    f"weekly-recap-{e}",
                    f"Weekly Recap {e}",
                    "weekly",
                    None,
                    day,
                    body,
                    json.dumps(["recap"]),
                    json.dumps(rng.sample(WORDS[:8], 2)),
                    NOW,
                    NOW,
                ),
            )
            for b in rng.sample(range(1, bookmarks + 1), 10):
                conn.execute(
                    "INSERT INTO link (entry_id, bookmark_id, created) VALUES (?,?,?)",
                    (cur.lastrowid, b, NOW),
                )
            if e < runs:
                conn.execute(
                    "INSERT INTO link (entry_id, run_id, created) VALUES (?,?,?)",
                    (cur.lastrowid, f"run-{e:04d}", NOW),
                )
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=500)
    ap.add_argument("--bookmarks", type=int, default=5000)
    ap.add_argument("--plotted-runs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3, help="timed repetitions (medians)")
    args = ap.parse_args()

    from recap import db
    from recap.site.build import _mkdocs_build
    from recap.site.render import render

    work = Path(tempfile.mkdtemp(prefix="recap-bench-site-"))
    root = work / "log"
    try:
        make_log(root, args.entries, args.bookmarks, args.plotted_runs)
        conn = db.connect(root / "recap.db")
        docs = root / "docs"

        def cold_setup():
            for sub in ("blog/posts", "experiments"):
                shutil.rmtree(docs / sub, ignore_errors=True)
            for name in ("links.md", "tags.md", ".recap-manifest.json"):
                (docs / name).unlink(missing_ok=True)

        def cold():
            cold_setup()
            return render(root, conn)

        cold_s = time_fn(cold, runs=args.runs, warmup=0)

        def pages_setup():
            # Every page rewritten; the plots (drawn once per run, then cached) stay.
            for page in docs.rglob("*.md"):
                if page.name not in ("index.md",) or "experiments" in page.parts:
                    page.unlink()

        def pages():
            pages_setup()
            return render(root, conn)

        pages_s = time_fn(pages, runs=args.runs, warmup=0)
        last = {}

        def warm():
            last["r"] = render(root, conn)

        warm_s = time_fn(warm, runs=args.runs, warmup=1)
        written = len(last["r"].written) + len(last["r"].removed)
        redirects = last["r"].redirects
        build_s = time_fn(lambda: _mkdocs_build(root, redirects), runs=args.runs, warmup=0)
        n = f"{args.entries} entries, {args.bookmarks} bookmarks"
        plots = f"{args.plotted_runs + 1} plots"
        results = [
            report(
                f"render, every page rewritten, plots cached ({n})",
                pages_s,
                build_s,
                "<= 0.10",
                peer_name="mkdocs build",
            ),
            report(
                f"render from empty docs/, drawing {plots} ({n})",
                cold_s,
                build_s,
                "<= 0.10",
                peer_name="mkdocs build",
            ),
            report(
                f"render, no change ({n})", warm_s, build_s, "<= 0.10", peer_name="mkdocs build"
            ),
        ]
        print(f"second build with no change: {written} files written (target 0)", flush=True)
        results.append({"name": "files written by a second build", "value": written, "target": 0})
        save(results, "site")
        conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
