"""Links benchmarks, side by side with buku and feedparser (medians of whole-process runs).

1. ``recap bookmark add URL --offline`` into an existing database vs ``buku --nostdin --offline
   -a URL`` (target: no slower than buku).
2. 100,000 bookmarks: import time; ``recap bookmark search transformer`` as a whole process vs
   ``buku --nostdin --np --sany transformer`` over the same rows (target <= 0.25x buku), and the
   query alone in-process (target <= 10 ms).
3. ``recap feed pull`` of 50 saved feeds x 100 items vs ``feedparser.parse`` alone on the same
   files, both whole processes (target <= 1.3x).

Usage: PEERS_BIN=/tmp/peers-venv/bin python benchmarks/bench_links.py [--small] [--runs N]
       [--n BOOKMARKS] [--only add|search|feeds]
"""

from __future__ import annotations

import argparse
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


def fake_rows(n: int, seed: int = 1):
    rnd = random.Random(seed)
    for i in range(n):
        words = rnd.sample(WORDS, 6)
        if i % 97 == 0:
            words[rnd.randrange(6)] = "transformer"
        title = " ".join(words).capitalize()
        desc = " ".join(rnd.choices(WORDS, k=12))
        tags = sorted(set(rnd.sample(WORDS, 2)))
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
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*RECAP, "bookmark", "import", str(src)], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, "import failed"
    imported = time.perf_counter() - t0
    rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
    out = [report(f"bookmark import of {n} (Netscape HTML)", imported, None, "reported")]
    print(f"bookmark import of {n}: peak RSS {rss_mb:.0f} MB (target <= 200 MB at 1M)")
    out.append({"name": f"bookmark import of {n}: peak RSS MB", "value": rss_mb})
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
    ap.add_argument("--n", type=int, default=None, help="Bookmarks for import and search.")
    ap.add_argument("--only", choices=["add", "search", "feeds"], help="Run one part.")
    args = ap.parse_args()
    runs = args.runs or (3 if args.small else 7)
    n = args.n or (10_000 if args.small else 100_000)
    feeds, items = (10, 100) if args.small else (50, 100)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-links-") as d:
        tmp = Path(d)
        if args.only in (None, "add"):
            results += bench_add(tmp, runs, prefill=1000)
        if args.only in (None, "search"):
            results += bench_search(tmp, runs, n)
        if args.only in (None, "feeds"):
            results += bench_feeds(tmp, runs, feeds, items)
    save(results, "links")


if __name__ == "__main__":
    main()
