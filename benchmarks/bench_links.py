"""Links benchmarks, side by side with buku and feedparser (medians of whole-process runs).

1. ``recap bookmark add URL --offline`` into an existing database vs ``buku --nostdin --offline
   -a URL`` (target: no slower than buku).
2. buku's own import (``buku -i``) of the same Netscape file at a few small sizes, beside
   ``recap bookmark import`` (buku is quadratic: it is timed, not replaced by a direct fill).
3. 100,000 bookmarks (``--n``), words drawn from a Zipf vocabulary of 5,000: import time and peak
   RSS; search of a rare word and of a frequent one (about 14% of rows), every hit, as a whole
   process vs ``buku --sany`` (target <= 0.25x buku), and the query alone in-process;
   ``bookmark list`` (the default page, target <= 100 ms in-process) and ``--all --json`` (peak
   RSS, target <= 100 MB) beside ``buku -p``; the database size without its full-text indexes
   against buku's (target <= 1.3x), the indexes reported beside.
4. ``recap feed pull`` of 50 saved feeds x 100 items vs ``feedparser.parse`` alone on the same
   files, both whole processes (target <= 1.3x).

5. ``--import-size N``: only the import of N bookmarks (time, peak RSS), optionally with the code
   of another checkout (``--code``) on the same file (``--import-file``), then the default-limit
   search of the frequent word at that size.

Usage: PEERS_BIN=/tmp/peers-venv/bin python benchmarks/bench_links.py [--small] [--runs N]
       [--n BOOKMARKS] [--only add|search|feeds]
       python benchmarks/bench_links.py --import-size 1000000 --import-file /tmp/1m.html
           [--code /path/to/older/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RECAP, REPO, peer, report, save, time_cmd, time_fn  # noqa: E402

WORDS = (
    "vision pose keypoint style unity unreal onnx barracuda sentis blender render "
    "synthetic dataset training loss metric export model network layer convolution "
    "attention diffusion segmentation detection camera shader texture mesh rig "
    "animation tutorial paper release notes benchmark python torch fastai"
).split()


def env_for(root: Path, home: Path) -> dict:
    return {
        **os.environ,
        "RECAP_ROOT": str(root),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "xdg"),
        "PYTHONPATH": str(REPO),
    }


def new_root(base: Path, name: str) -> Path:
    subprocess.run(
        [*RECAP, "init", str(base / name)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return base / name


def median_of(make_cmd, runs: int, env: dict, warmup: int = 1) -> float:
    """Like time_cmd, but the command may change per run (a fresh URL each time)."""
    samples = []
    for i in range(warmup + runs):
        cmd = make_cmd(i)
        t0 = time.perf_counter()
        subprocess.run(
            cmd,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


VOCAB_SIZE = 5000
ZIPF_S = 1.07
# A frequent word of the Zipf vocabulary: in about 14% of rows (the "140k hits at 1M" word of
# the issue); "transformer" stays the rare word (about 1%).
FREQUENT = "training"


def vocabulary() -> tuple[list[str], list[float]]:
    """Realistic word frequencies: a Zipf law over 5,000 words (the 39 field words first, then
    made-up ones), not a uniform draw from 39 words."""
    rnd = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    extra = set()
    while len(extra) < VOCAB_SIZE - len(WORDS):
        extra.add("".join(rnd.choices(letters, k=rnd.randint(4, 10))))
    vocab = WORDS + sorted(extra - set(WORDS))[: VOCAB_SIZE - len(WORDS)]
    weights = [1 / (r + 1) ** ZIPF_S for r in range(len(vocab))]
    return vocab, list(__import__("itertools").accumulate(weights))


def fake_rows(n: int, seed: int = 1):
    rnd = random.Random(seed)
    vocab, cum = vocabulary()
    for i in range(n):
        words = rnd.choices(vocab, cum_weights=cum, k=6)
        if i % 97 == 0:
            words[rnd.randrange(6)] = "transformer"
        title = " ".join(words).capitalize()
        desc = " ".join(rnd.choices(vocab, cum_weights=cum, k=12))
        tags = sorted(set(rnd.choices(vocab[:60], k=2)))
        yield (
            f"https://site{i % 500}.example/{words[0]}/{i}",
            title,
            desc,
            tags,
            1500000000 + i * 60,
        )


def write_netscape(path: Path, n: int) -> None:
    import html

    with open(path, "w") as fh:
        fh.write("<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n")
        for url, title, desc, tags, ts in fake_rows(n):
            fh.write(
                f'<DT><A HREF="{url}" ADD_DATE="{ts}" TAGS="{",".join(tags)}">'
                f"{html.escape(title)}</A>\n<DD>{html.escape(desc)}\n"
            )
        fh.write("</DL><p>\n")


def fill_buku(home: Path, n: int) -> None:
    """buku's own schema (as it creates it), the same rows as the recap import."""
    buku = peer("buku")
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg")}
    subprocess.run(
        [buku, "--nostdin", "--offline", "-a", "https://seed.example/"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = sqlite3.connect(home / "xdg" / "buku" / "bookmarks.db")
    db.execute("DELETE FROM bookmarks")
    db.executemany(
        "INSERT INTO bookmarks (URL, metadata, tags, desc, flags) VALUES (?,?,?,?,0)",
        [(u, t, "," + ",".join(tg) + ",", d) for u, t, d, tg, _ in fake_rows(n)],
    )
    db.commit()
    db.close()


# Forks the command from a small process and reports the command's own peak RSS. Measured
# straight from this process, a child's ru_maxrss starts at this (large) process's RSS: Linux
# carries the memory of the process image replaced by exec into the child's peak.
_LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "sys.stderr.write(f'\\nmaxrss_kib={usage.ru_maxrss}\\n')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_rss(
    cmd, env: dict, stdin_text: str | None = None, cwd: Path | None = None
) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one whole process, measured from a small launcher."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd],
        env=env,
        cwd=cwd,
        input=stdin_text.encode() if stdin_text is not None else None,
        stdin=None if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=proc.stderr[-2000:])
    kib = int(proc.stderr.decode(errors="replace").rsplit("maxrss_kib=", 1)[1].split()[0])
    return wall, kib / 1024


def sizes(path: Path) -> tuple[float, float]:
    """(MB of everything but the full-text indexes, MB of the full-text indexes) in a database."""
    db = sqlite3.connect(path)
    total = fts = 0
    for name, size in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        total += size
        if "_fts" in name or "_trigram" in name:
            fts += size
    db.close()
    return (total - fts) / 1e6, fts / 1e6


def bench_buku_import(tmp: Path, sizes_: tuple[int, ...] = (1000, 2000, 4000)) -> list[dict]:
    """buku's own import of the same Netscape file (it checks each URL against the table one by
    one, so its time grows quadratically): timed, not replaced by a direct fill."""
    buku = peer("buku")
    out = []
    for n in sizes_:
        src = tmp / f"buku-import-{n}.html"
        write_netscape(src, n)
        home = tmp / f"home-buku-import-{n}"
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg")}
        # Its questions (auto-tag? append tags? folder tags?) answered "no".
        wall, rss = run_rss(
            [buku, "--nostdin", "--offline", "--tacit", "-i", str(src)], env, "n\nn\nn\nn\n"
        )
        root = new_root(tmp, f"imp-{n}")
        ours, ours_rss = run_rss([*RECAP, "bookmark", "import", str(src)], env_for(root, home))
        out.append(
            report(
                f"bookmark import of {n} (Netscape HTML), buku's own import",
                ours,
                wall,
                "reported (buku grows quadratically)",
                peer_name="buku -i",
            )
        )
    return out


def bench_list_page(root: Path, env: dict, n: int, runs: int) -> list[dict]:
    """`bookmark list`'s default page at n rows: as a whole process and in-process."""
    import contextlib
    import io

    out = []
    ours = time_cmd([*RECAP, "bookmark", "list"], runs=runs, env=env)
    out.append(report(f"bookmark list, default page ({n} rows, whole process)", ours, None, "-"))
    os.environ["RECAP_ROOT"] = str(root)
    sys.path.insert(0, str(REPO))
    from recap.cli.bookmark import list_cmd

    def page():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            list_cmd(limit=None, all_=False, json_=False)

    q = time_fn(page, runs=runs * 3)
    out.append(report(f"bookmark list, default page ({n} rows, in-process)", q, None, "<= 100 ms"))
    return out


def bench_scale(tmp: Path, runs: int, n: int, root: Path, home: Path) -> list[dict]:
    """Listing and storage at n bookmarks: the default page, --all --json memory, DB size."""
    env = env_for(root, home)
    out = bench_list_page(root, env, n, runs)
    wall, rss = run_rss([*RECAP, "bookmark", "list", "--all", "--json"], env)
    buku = peer("buku")
    bwall, brss = run_rss([buku, "--nostdin", "--np", "--nc", "-p"], env)
    out.append(
        report(f"bookmark list --all --json ({n} rows)", wall, bwall, "-", peer_name="buku -p")
    )
    print(f"  peak RSS: recap --all --json {rss:.0f} MB (target <= 100), buku -p {brss:.0f} MB")
    out.append(
        {
            "name": f"bookmark list --all --json peak RSS MB ({n})",
            "value": rss,
            "peer": brss,
            "target": "<= 100",
        }
    )
    ours_mb, fts_mb = sizes(root / "recap.db")
    buku_mb, _ = sizes(home / "xdg" / "buku" / "bookmarks.db")
    ratio = ours_mb / buku_mb
    print(
        f"database size at {n}: recap {ours_mb:.1f} MB without its search indexes "
        f"(+ {fts_mb:.1f} MB full-text indexes), buku {buku_mb:.1f} MB: ratio {ratio:.2f} "
        "(target <= 1.3)",
        flush=True,
    )
    out.append(
        {
            "name": f"database MB at {n}, search indexes excluded",
            "ours": ours_mb,
            "peer": buku_mb,
            "ratio": ratio,
            "fts_mb": fts_mb,
            "target": "<= 1.3",
        }
    )
    return out


def bench_list_only(tmp: Path, runs: int, n: int) -> list[dict]:
    """``bookmark list`` at a size too large to import on a shared machine (1M): the rows are
    written straight into a fresh log's table with the search-index triggers dropped first (a
    listing never reads the search indexes), as recap's own import would store them."""
    import json as _json

    from recap.db.stamps import encode

    root = new_root(tmp, f"list-{n}")
    db = sqlite3.connect(root / "recap.db")
    triggers = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'bookmark'"
            " AND (name LIKE 'bookmark_a%' OR name LIKE 'bookmark_trigram_%')"
        )
    ]
    for name in triggers:
        db.execute(f"DROP TRIGGER {name}")
    t0 = time.perf_counter()
    batch = []
    for url, title, desc, tags, ts in fake_rows(n):
        stamp_ = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))
        batch.append(
            (url, title, desc, _json.dumps(tags), "import", encode(stamp_), encode(stamp_))
        )
        if len(batch) == 50_000:
            db.executemany(
                "INSERT INTO bookmark (url, title, description, tags, source, added, updated)"
                " VALUES (?,?,?,?,?,?,?)",
                batch,
            )
            batch = []
    if batch:
        db.executemany(
            "INSERT INTO bookmark (url, title, description, tags, source, added, updated)"
            " VALUES (?,?,?,?,?,?,?)",
            batch,
        )
    db.commit()
    db.close()
    print(f"  {n} rows written in {time.perf_counter() - t0:.0f} s (search triggers dropped)")
    env = env_for(root, tmp / "home-list")
    out = bench_list_page(root, env, n, runs)
    wall, rss = run_rss([*RECAP, "bookmark", "list", "--all", "--json"], env)
    print(f"  bookmark list --all --json ({n} rows): {wall:.1f} s, peak RSS {rss:.0f} MB")
    out.append(
        {
            "name": f"bookmark list --all --json ({n})",
            "seconds": wall,
            "peak_rss_mb": rss,
            "target": "<= 100 MB",
        }
    )
    return out


def bench_add(tmp: Path, runs: int, prefill: int) -> list[dict]:
    root = new_root(tmp, "add")
    home = tmp / "home-add"
    env = env_for(root, home)
    src = tmp / "prefill.html"
    write_netscape(src, prefill)
    subprocess.run(
        [*RECAP, "bookmark", "import", str(src)], env=env, check=True, stdout=subprocess.DEVNULL
    )
    fill_buku(home, prefill)
    buku = peer("buku")
    ours = median_of(
        lambda i: [
            *RECAP,
            "bookmark",
            "add",
            f"https://new.example/r/{i}",
            "--offline",
            "-t",
            "bench",
        ],
        runs,
        env,
    )
    theirs = median_of(
        lambda i: [buku, "--nostdin", "--offline", "-a", f"https://new.example/b/{i}", "bench"],
        runs,
        env,
    )
    return [
        report(
            f"bookmark add --offline ({prefill} rows)",
            ours,
            theirs,
            "<= 1.0x buku",
            peer_name="buku",
        )
    ]


def bench_search(tmp: Path, runs: int, n: int) -> list[dict]:
    root = new_root(tmp, "search")
    home = tmp / "home-search"
    env = env_for(root, home)
    src = tmp / "big.html"
    write_netscape(src, n)
    imported, import_rss = run_rss([*RECAP, "bookmark", "import", str(src)], env)
    out = [report(f"bookmark import of {n} (Netscape HTML)", imported, None, "reported")]
    print(f"  import peak RSS {import_rss:.0f} MB", flush=True)
    out.append({"name": f"bookmark import peak RSS MB ({n})", "value": import_rss})
    fill_buku(home, n)
    buku = peer("buku")
    theirs = time_cmd(
        [buku, "--nostdin", "--np", "--sany", "transformer"],
        runs=runs,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    ours_all = time_cmd(
        [*RECAP, "bookmark", "search", "transformer", "--limit", "0"], runs=runs, env=env
    )
    ours = time_cmd([*RECAP, "bookmark", "search", "transformer"], runs=runs, env=env)
    out.append(
        report(
            f"search transformer, all matches ({n} rows)",
            ours_all,
            theirs,
            "<= 0.25x buku",
            peer_name="buku",
        )
    )
    out.append(
        report(
            f"search transformer, default --limit 100 ({n} rows)",
            ours,
            theirs,
            "<= 0.25x buku",
            peer_name="buku",
        )
    )
    os.environ["RECAP_ROOT"] = str(root)
    sys.path.insert(0, str(REPO))
    from recap.db import connect
    from recap.links.store import search

    conn = connect()
    hits = len(search(conn, "transformer", limit=None))
    q_all = time_fn(lambda: search(conn, "transformer", limit=None), runs=runs * 3)
    q_100 = time_fn(lambda: search(conn, "transformer"), runs=runs * 3)
    out.append(report(f"search query alone, all {hits} matches", q_all, None, "<= 10 ms"))
    out.append(report("search query alone, first 100", q_100, None, "<= 10 ms"))
    # A word in a large share of the rows: with the default limit the cost follows the limit.
    common = len(search(conn, "vision", limit=None))
    q_common = time_fn(lambda: search(conn, "vision"), runs=runs * 3)
    out.append(
        report(
            f"search 'vision' ({common} hits), default limit 100",
            q_common,
            None,
            "<= 100 ms at 1M",
        )
    )
    # A substring inside words (trigram index): "former" in "transformer".
    sub = len(search(conn, "former", limit=None))
    q_sub = time_fn(lambda: search(conn, "former"), runs=runs * 3)
    out.append(
        report(f"search substring 'former' ({sub} hits), first 100", q_sub, None, "<= 10 ms")
    )
    # A frequent word (Zipf rank 14, about 14% of rows): every hit, as buku returns every hit.
    theirs_f = time_cmd(
        [buku, "--nostdin", "--np", "--sany", FREQUENT],
        runs=runs,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    ours_f = time_cmd([*RECAP, "bookmark", "search", FREQUENT, "--limit", "0"], runs=runs, env=env)
    hits_f = len(search(conn, FREQUENT, limit=None))
    out.append(
        report(
            f"search {FREQUENT!r}, all {hits_f} matches ({n} rows)",
            ours_f,
            theirs_f,
            "<= 0.25x buku",
            peer_name="buku",
        )
    )
    q_f = time_fn(lambda: search(conn, FREQUENT), runs=runs * 3)
    out.append(report(f"search {FREQUENT!r} query alone, default limit", q_f, None, "<= 100 ms"))
    conn.close()
    return out, root, home


def bench_import(tmp: Path, runs: int, n: int, src: Path | None, code: Path | None) -> list[dict]:
    """``recap bookmark import`` of an n-bookmark Netscape file (the Zipf rows above) into a
    fresh log, as a whole process: wall time and peak RSS (targets at 1M: <= 200 MB and <= 1.2x
    the import before streaming, which ``--code`` runs from another checkout). Then, with this
    checkout's code, the default-limit search of the frequent word (about 14% of rows: 140k
    hits at 1M; target <= 100 ms) in-process and as a whole process."""
    if src is None or not src.exists():
        src = src or tmp / f"import-{n}.html"
        t0 = time.perf_counter()
        write_netscape(src, n)
        print(
            f"  wrote {src} ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s"
        )
    code = (code or REPO).resolve()
    env_base = {**os.environ, "PYTHONPATH": str(code)}
    root = tmp / f"import-{n}"
    # `python -m` puts the working directory first on sys.path: run where there is no recap/,
    # so PYTHONPATH decides which checkout's code runs.
    subprocess.run(
        [sys.executable, "-m", "recap", "init", str(root)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env_base,
        cwd=tmp,
    )
    env = {**env_for(root, tmp / "home-import"), "PYTHONPATH": str(code)}
    probe = "import recap, sys; sys.stdout.write(recap.__file__)"
    used = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp, capture_output=True, text=True
    ).stdout
    print(f"  code: {used}", flush=True)
    wall, rss = run_rss(
        [sys.executable, "-m", "recap", "bookmark", "import", str(src)], env, cwd=tmp
    )
    rows = sqlite3.connect(root / "recap.db").execute("SELECT count(*) FROM bookmark").fetchone()[0]
    label = "this checkout" if code == REPO.resolve() else str(code)
    print(
        f"bookmark import of {n} ({label}): {wall:.1f} s, peak RSS {rss:.0f} MB, {rows} rows",
        flush=True,
    )
    out = [
        {
            "name": f"bookmark import of {n} ({label})",
            "seconds": wall,
            "peak_rss_mb": rss,
            "rows": rows,
            "target": "<= 200 MB, <= 1.2x the import before streaming",
        }
    ]
    if code != REPO.resolve():
        return out
    os.environ["RECAP_ROOT"] = str(root)
    sys.path.insert(0, str(REPO))
    from recap.db import connect
    from recap.links.store import search

    conn = connect()
    hits = len(search(conn, FREQUENT, limit=None, columns=("id",)))
    q = time_fn(lambda: search(conn, FREQUENT), runs=runs * 3)
    conn.close()
    whole = time_cmd([*RECAP, "bookmark", "search", FREQUENT], runs=runs, env=env_for(root, tmp))
    out.append(
        report(f"search {FREQUENT!r} ({hits} hits of {rows}), default limit", q, None, "<= 100 ms")
    )
    out.append(
        report(f"search {FREQUENT!r} default limit, whole process ({rows})", whole, None, "-")
    )
    return out


def write_feeds(folder: Path, feeds: int, items: int) -> list[Path]:
    import html

    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(7)
    paths = []
    for f in range(feeds):
        parts = [
            f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Feed {f}</title><link>https://feed{f}.example/</link>"
            f"<description>Feed {f}</description>"
        ]
        for i in range(items):
            words = " ".join(rnd.sample(WORDS, 8))
            desc = html.escape(
                f"<p>{words} <b>{rnd.choice(WORDS)}</b> "
                f"<a href='https://x.example/{i}'>link</a></p>"
            )
            parts.append(
                f"<item><title>{words.title()}</title>"
                f"<link>https://feed{f}.example/posts/{i}?utm_source=rss</link>"
                f"<guid>https://feed{f}.example/posts/{i}</guid>"
                f"<pubDate>Mon, 18 Jan 2021 {i % 24:02d}:00:00 GMT</pubDate>"
                f"<category>{rnd.choice(WORDS)}</category>"
                f"<description>{desc}</description></item>"
            )
        parts.append("</channel></rss>\n")
        p = folder / f"feed{f:02d}.xml"
        p.write_text("".join(parts))
        paths.append(p)
    return paths


def bench_feeds(tmp: Path, runs: int, feeds: int, items: int) -> list[dict]:
    paths = write_feeds(tmp / "feeds", feeds, items)
    root = new_root(tmp, "feeds")
    env = env_for(root, tmp / "home-feeds")
    for p in paths:
        subprocess.run(
            [*RECAP, "feed", "add", str(p)], env=env, check=True, stdout=subprocess.DEVNULL
        )
    template = tmp / "feeds-template.db"
    shutil.copy(root / "recap.db", template)
    for suffix in ("-wal", "-shm"):
        (root / f"recap.db{suffix}").unlink(missing_ok=True)

    def fresh(_i):  # every run pulls into the subscribed-but-never-pulled database
        for suffix in ("", "-wal", "-shm"):
            (root / f"recap.db{suffix}").unlink(missing_ok=True)
        shutil.copy(template, root / "recap.db")

    ours = time_cmd([*RECAP, "feed", "pull"], runs=runs, env=env, setup=fresh)
    script = "import sys, feedparser\nfor p in sys.argv[1:]:\n    feedparser.parse(p)\n"
    theirs = time_cmd([sys.executable, "-c", script, *map(str, paths)], runs=runs)
    return [
        report(
            f"feed pull of {feeds} feeds x {items} items",
            ours,
            theirs,
            "<= 1.3x feedparser",
            peer_name="feedparser.parse",
        )
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="Reduced sizes (a quick check).")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--n", type=int, default=None, help="Bookmarks for search/list/size.")
    ap.add_argument(
        "--list-only", type=int, default=0, help="Only bookmark list at this many rows (1M)."
    )
    ap.add_argument(
        "--only-scale", action="store_true", help="Only import, search, list and size (at --n)."
    )
    ap.add_argument("--only", choices=["add", "search", "feeds"], help="Run one part.")
    ap.add_argument(
        "--import-size", type=int, default=0, help="Only import this many bookmarks (1000000)."
    )
    ap.add_argument(
        "--import-file", type=Path, help="The Netscape file for --import-size (made if missing)."
    )
    ap.add_argument(
        "--code", type=Path, help="Import with the recap in this checkout (an older commit)."
    )
    args = ap.parse_args()
    runs = args.runs or (3 if args.small else 7)
    n = args.n or (10_000 if args.small else 100_000)
    feeds, items = (10, 100) if args.small else (50, 100)
    if args.n:
        n = args.n
    if args.import_size:
        load = os.getloadavg()[0]
        print(f"load average at start {load:.1f}", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-links-") as d:
            results = bench_import(
                Path(d), args.runs or 3, args.import_size, args.import_file, args.code
            )
        results.append({"name": "load average", "value": load})
        save(results, "links-import")
        print(json.dumps({"bench": "links-import", "results": results}))
        return
    if args.list_only:
        with tempfile.TemporaryDirectory(prefix="bench-links-") as d:
            results = bench_list_only(Path(d), runs, args.list_only)
        save(results, "links-list")
        print(json.dumps({"bench": "links-list", "results": results}))
        return
    load = os.getloadavg()[0]
    print(f"load average at start {load:.1f}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-links-") as d:
        tmp = Path(d)
        if args.only in (None, "add") and not args.only_scale:
            results += bench_add(tmp, runs, prefill=1000)
            results += bench_buku_import(tmp, (500, 1000) if args.small else (1000, 2000, 4000))
        if args.only in (None, "search") or args.only_scale:
            found, root, home = bench_search(tmp, runs, n)
            results += found
            results += bench_scale(tmp, runs, n, root, home)
        if args.only in (None, "feeds") and not args.only_scale:
            results += bench_feeds(tmp, runs, feeds, items)
    results.append({"name": "load average", "value": load})
    save(results, "links")
    print(json.dumps({"bench": "links", "results": results}))


if __name__ == "__main__":
    main()
