"""Site benchmark: 500 entries and 5,000 bookmarks (plus runs with metrics).

Reports the median time to render the database into docs/ (every page rewritten with the plots
cached; from an empty docs/ with every plot drawn; with nothing changed) against the median
plain `mkdocs build --strict` of the same docs/ (target: render at most 10% of build), then
`recap site build` with nothing changed (target <= 0.05x, 0 files written under site/) and with
one post changed (target <= 0.3x), counting the files written under site/, not only docs/.

    PYTHONPATH=. python benchmarks/bench_site.py [--entries 500] [--bookmarks 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
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


def _site_state(site: Path) -> dict[str, tuple]:
    out = {}
    for path in site.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(site).as_posix()] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def _site_writes(before: dict, after: dict) -> int:
    """Files created, replaced or rewritten under site/, plus files removed."""
    changed = sum(1 for k, v in after.items() if before.get(k) != v)
    return changed + len(set(before) - set(after))


def time_with_setup(fn, setup, runs: int) -> float:
    """Median seconds of ``fn()``, with ``setup()`` run untimed before each call."""
    import statistics

    samples = []
    for _ in range(runs):
        setup()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=500)
    ap.add_argument("--bookmarks", type=int, default=5000)
    ap.add_argument("--plotted-runs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3, help="timed repetitions (medians)")
    args = ap.parse_args()

    from recap import db
    from recap.site.build import _mkdocs_build, build
    from recap.site.render import render

    work = Path(tempfile.mkdtemp(prefix="recap-bench-site-"))
    root = work / "log"
    try:
        make_log(root, args.entries, args.bookmarks, args.plotted_runs)
        conn = db.connect(root / "recap.db")
        docs = root / "docs"
        site = root / "site"
        load = os.getloadavg()[0]

        def cold_setup():
            for sub in ("blog/posts", "experiments"):
                shutil.rmtree(docs / sub, ignore_errors=True)
            for name in ("links.md", "tags.md", ".recap-manifest.json"):
                (docs / name).unlink(missing_ok=True)

        def first_setup():
            # A first build: no docs/ pages and no plot cache either, so every plot is drawn.
            shutil.rmtree(root / ".recap-cache", ignore_errors=True)
            cold_setup()

        def render_now():
            return render(root, conn)

        # The emptying of docs/ is the benchmark's setup, not the render's work: untimed.
        first_render_s = time_with_setup(render_now, first_setup, args.runs)
        cold_s = time_with_setup(render_now, cold_setup, args.runs)

        def pages_setup():
            # Every page rewritten; the plots (drawn once per run, then cached) stay.
            for page in docs.rglob("*.md"):
                if page.name not in ("index.md",) or "experiments" in page.parts:
                    page.unlink()

        pages_s = time_with_setup(render_now, pages_setup, args.runs)
        last = {}

        def warm():
            last["r"] = render(root, conn)

        warm_s = time_fn(warm, runs=args.runs, warmup=1)
        written = len(last["r"].written) + len(last["r"].removed)
        redirects = last["r"].redirects
        # The peer: a plain `mkdocs build --strict` of the same docs/ (in-process, same config).
        plain_site = work / "plain-site"
        build_s = time_fn(
            lambda: _mkdocs_build(root, redirects, site_dir=plain_site), runs=args.runs, warmup=0
        )
        # recap site build: a first build fills site/ and the caches.
        t0 = time.perf_counter()
        build(root, force=True)
        first_s = time.perf_counter() - t0
        writes = {"nochange": [], "onepost": []}

        def nochange():
            before = _site_state(site)
            res = build(root)
            assert res.skipped, "a build with nothing changed ran mkdocs"
            writes["nochange"].append(_site_writes(before, _site_state(site)))

        nochange_s = time_fn(nochange, runs=args.runs, warmup=1)
        counter = iter(range(10**6))

        def onepost():
            # One post's body changes (as an edit would): the database, then the build.
            n = next(counter)
            with db.transaction(conn):
                conn.execute(
                    "UPDATE entry SET body = body || ? WHERE slug = ?",
                    (f"\n\nEdit {n}.\n", f"weekly-recap-{n % args.entries}"),
                )
            before = _site_state(site)
            res = build(root)
            writes["onepost"].append(
                (_site_writes(before, _site_state(site)), res.pages_converted, res.pages_reused)
            )

        onepost_s = time_fn(onepost, runs=args.runs, warmup=1)
        n = f"{args.entries} entries, {args.bookmarks} bookmarks"
        plots = f"{args.plotted_runs + 1} plots"
        print(f"load average at start {load:.1f} (2 shared cores)", flush=True)
        results = [
            report(
                f"render, every page rewritten, plots cached ({n})",
                pages_s,
                build_s,
                "<= 0.10",
                peer_name="mkdocs build",
            ),
            report(
                f"render of a first build, drawing {plots} ({n})",
                first_render_s,
                build_s,
                "<= 0.10",
                peer_name="mkdocs build",
            ),
            report(
                f"render from empty docs/, {plots} from the plot cache ({n})",
                cold_s,
                build_s,
                "<= 0.10",
                peer_name="mkdocs build",
            ),
            report(
                f"render, no change ({n})", warm_s, build_s, "<= 0.10", peer_name="mkdocs build"
            ),
            report(
                f"site build, nothing changed ({n})",
                nochange_s,
                build_s,
                "<= 0.05",
                peer_name="mkdocs build",
            ),
            report(
                f"site build, one post changed ({n})",
                onepost_s,
                build_s,
                "<= 0.3",
                peer_name="mkdocs build",
            ),
            report(f"site build, first (caches empty) ({n})", first_s, build_s, "(reference)"),
        ]
        site_files = len(_site_state(site))
        print(f"second render with no change: {written} docs/ files written (target 0)")
        print(
            f"site/ writes: nothing changed {writes['nochange']} (target 0); one post changed "
            f"{[w[0] for w in writes['onepost']]} of {site_files} files; Markdown conversions "
            f"done/reused {[w[1:] for w in writes['onepost']]}",
            flush=True,
        )
        results += [
            {"name": "docs/ files written by a second render", "value": written, "target": 0},
            {
                "name": "site/ files written by a no-change build",
                "value": max(writes["nochange"]),
                "target": 0,
            },
            {
                "name": "site/ files written by a one-post build",
                "value": sorted(w[0] for w in writes["onepost"]),
                "of": site_files,
            },
            {"name": "load average", "value": load},
        ]
        save(results, "site")
        print(json.dumps({"bench": "site", "results": results}))
        conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
