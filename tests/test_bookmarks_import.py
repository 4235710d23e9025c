"""Import (Firefox, Chrome, Pinboard, buku) and export (HTML, JSON, Markdown) of bookmarks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "links"
FIELDS = (
    "url",
    "url_key",
    "title",
    "description",
    "note",
    "tags",
    "added",
    "updated",
    "read_at",
    "archived",
)


def rows(db):
    # url_key is stored only when it differs from the URL (m004): read what it means.
    out = [dict(r) for r in db.execute("SELECT * FROM bookmark ORDER BY id")]
    for r in out:
        r["url_key"] = r["url_key"] or r["url"]
    return out


def by_key(db):
    return {r["url_key"]: r for r in rows(db)}


def test_firefox_export_folders_tags_dates_descriptions_and_skips(cli, db):
    r = cli("bookmark", "import", DATA / "firefox.html", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert (rep["format"], rep["read"], rep["added"], rep["merged"]) == ("html", 11, 7, 0)
    reasons = sorted(s["reason"] for s in rep["skipped"])
    assert reasons == [
        "empty URL",
        "not a web page (data: URL)",
        "not a web page (javascript: URL)",
        "not a web page (place: URL)",
    ]
    b = by_key(db)
    assert len(b) == 7
    pose = b["https://github.com/CMU-Perceptual-Computing-Lab/openpose"]
    assert json.loads(pose["tags"]) == ["keypoints", "machine learning", "openpose", "pose"]
    assert pose["added"] == "2021-01-14T04:53:20.000Z"
    assert pose["updated"] == "2021-01-15T08:40:00.000Z"
    assert pose["description"].endswith("hands & foot estimation")
    paper = b["https://arxiv.org/abs/1706.03762"]
    assert paper["title"] == "Attention Is All You Need — arXiv"
    assert paper["description"].endswith("convolutional neural networks…")
    assert paper["url"].startswith("https://arxiv.org/abs/1706.03762?utm_source")
    # Browser root folders are not tags; a hostile title and description are the text the
    # browser shows (entities decoded once), stored exactly and escaped on output.
    assert json.loads(b["https://www.fast.ai/"]["tags"]) == ["fastai"]
    evil = b["https://evil.example/x"]
    assert evil["title"] == "<script>alert(1)</script>Click [me](javascript:alert(2))"
    assert evil["description"] == "<img src=x onerror=alert(3)> plain words"


def test_reimport_changes_nothing_and_chrome_merges(cli, db):
    cli("bookmark", "import", DATA / "firefox.html")
    before = rows(db)
    r = cli("bookmark", "import", DATA / "firefox.html")
    assert r.stdout.splitlines()[0].endswith(
        "read 11, added 0, merged as duplicates 7 (0 changed), skipped 4"
    )
    assert "skipped javascript:void" in r.stdout
    assert rows(db) == before
    r = cli("bookmark", "import", DATA / "chrome.html", "--json")
    rep = json.loads(r.stdout)
    assert (rep["read"], rep["added"], rep["merged"], rep["changed"]) == (5, 3, 1, 1)
    assert [s["reason"] for s in rep["skipped"]] == ["not a web page (chrome: URL)"]
    fast = by_key(db)["https://www.fast.ai/"]
    # Same key as Firefox's: one bookmark, the earlier Chrome date, the first title kept.
    assert fast["added"] == "2020-09-13T12:26:40.000Z"
    assert fast["title"] == "fast.ai—Making neural nets uncool again"
    style = by_key(db)["https://github.com/pytorch/examples/tree/main/fast_neural_style"]
    assert json.loads(style["tags"]) == ["style transfer", "unity"]


def test_pinboard_and_buku_markdown_json_and_db(cli, db, tmp_path):
    r = cli("bookmark", "import", DATA / "pinboard.json", "--json")
    rep = json.loads(r.stdout)
    assert (rep["format"], rep["added"], len(rep["skipped"])) == ("pinboard", 2, 1)
    b = by_key(db)
    paper = b["https://arxiv.org/abs/1706.03762"]
    assert (paper["title"], paper["description"]) == (
        "Attention Is All You Need",
        "The transformer paper.",
    )
    assert json.loads(paper["tags"]) == ["nlp", "transformer"]
    assert paper["added"] == "2017-06-12T17:57:00.000Z"
    assert b["https://docs.fast.ai/tutorial.vision.html"]["read_at"] is None  # toread
    r = cli("bookmark", "import", DATA / "buku.md", "--json")
    assert json.loads(r.stdout)["added"] == 3
    assert json.loads(by_key(db)["https://onnx.ai/"]["tags"]) == ["onnx"]
    # buku's JSON (buku -p -j) and its database file.
    (tmp_path / "b.json").write_text(
        json.dumps(
            [
                {
                    "index": 1,
                    "uri": "https://buku.example/1",
                    "title": "One",
                    "description": "d1",
                    "tags": "a,b",
                }
            ]
        )
    )
    r = cli("bookmark", "import", tmp_path / "b.json", "--json")
    assert json.loads(r.stdout)["format"] == "buku-json"
    bk = sqlite3.connect(tmp_path / "bookmarks.db")
    bk.execute(
        "CREATE TABLE bookmarks (id integer PRIMARY KEY, URL text NOT NULL UNIQUE, "
        "metadata text default '', tags text default ',', desc text default '', "
        "flags integer default 0)"
    )
    bk.execute(
        "INSERT INTO bookmarks (URL, metadata, tags, desc) VALUES "
        "('https://buku.example/2', 'Two', ',x,y,', 'd2')"
    )
    bk.commit()
    bk.close()
    r = cli("bookmark", "import", tmp_path / "bookmarks.db", "--json")
    assert json.loads(r.stdout)["format"] == "buku-db"
    two = by_key(db)["https://buku.example/2"]
    assert (two["title"], two["description"], json.loads(two["tags"])) == ("Two", "d2", ["x", "y"])


def test_bad_import_files_are_one_line_errors(cli, db, tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    (tmp_path / "x.txt").write_text("hello")
    for f in (tmp_path / "x.json", tmp_path / "x.txt", tmp_path / "missing.html"):
        r = cli("bookmark", "import", f)
        assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert rows(db) == []


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_export_then_import_keeps_every_field(cli, db, tmp_path, log_root, monkeypatch, fmt):
    cli("bookmark", "import", DATA / "firefox.html")
    cli("bookmark", "import", DATA / "pinboard.json")
    cli(
        "bookmark",
        "add",
        "https://notes.example/a",
        "--offline",
        "-t",
        "x",
        "--note",
        'a "quoted" <note> & more',
    )
    cli("bookmark", "edit", "2", "--archive")
    out = tmp_path / f"all.{fmt}"
    r = cli("bookmark", "export", out)
    assert r.exit_code == 0 and f"exported 9 bookmarks to {out}" in r.stderr
    before = rows(db)
    # A second log imports the export.
    from recap import paths
    from recap.logroot import init_root

    other, _ = init_root(tmp_path / "other", title="Other")
    monkeypatch.setenv("RECAP_ROOT", str(other))
    paths.set_root_override(None)
    r = cli("bookmark", "import", out, "--json")
    assert json.loads(r.stdout)["added"] == 9 and json.loads(r.stdout)["skipped"] == []
    db2 = sqlite3.connect(other / "recap.db", detect_types=sqlite3.PARSE_DECLTYPES)
    db2.row_factory = sqlite3.Row
    after = rows(db2)
    for a, b in zip(before, after, strict=True):
        for f in FIELDS:
            va, vb = a[f], b[f]
            if fmt == "html" and f in ("added", "updated", "read_at") and va:
                va, vb = va[:19], vb[:19]  # Netscape dates are whole seconds
            assert va == vb, (f, a["url"])
    if fmt == "json":
        assert [r["source"] for r in before] == [r["source"] for r in after]
    # And importing it again into the same log changes nothing.
    r = cli("bookmark", "import", out, "--json")
    assert json.loads(r.stdout)["changed"] == 0 and rows(db2) == after


def test_markdown_export_is_inert_and_buku_shaped(cli, db, tmp_path):
    cli("bookmark", "import", DATA / "firefox.html")
    r = cli("bookmark", "export", "-", "--format", "md")
    lines = r.stdout.splitlines()
    assert len(lines) == 7
    assert any(
        ln.startswith(
            "- [Attention Is All You Need — arXiv](<https://arxiv.org/abs/1706.03762?"
            "utm_source=twitter&utm_medium=social>) <!-- TAGS: machine learning,transformer -->"
        )
        for ln in lines
    )
    evil = next(ln for ln in lines if "evil.example" in ln)
    assert "](javascript" not in evil and "\\[me\\]" in evil
    (tmp_path / "x.md").write_text(r.stdout)
    # Markdown round trip into a fresh database keeps the URLs, titles and tags.
    db.execute("DELETE FROM bookmark")
    db.commit()
    r2 = cli("bookmark", "import", tmp_path / "x.md", "--json")
    assert json.loads(r2.stdout)["added"] == 7


def test_netscape_export_opens_in_buku(cli, tmp_path):
    buku = Path(os.environ.get("PEERS_BIN", "/tmp/peers-venv/bin")) / "buku"
    if not buku.exists():
        pytest.skip("buku (the peers venv) not installed")
    cli("bookmark", "import", DATA / "chrome.html")
    cli("bookmark", "export", tmp_path / "out.html")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    subprocess.run(
        [str(buku), "--nostdin", "--offline", "--tacit", "-i", str(tmp_path / "out.html")],
        env=env,
        input="n\nn\nn\n",
        text=True,
        capture_output=True,
        timeout=60,
    )
    got = subprocess.run(
        [str(buku), "--nostdin", "--np", "-p", "-j"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    urls = {b["uri"] for b in json.loads(got.stdout)}
    assert "https://github.com/pytorch/examples/tree/main/fast_neural_style" in urls
    assert len(urls) == 4


def _big_html(path: Path, n: int) -> None:
    lines = ["<!DOCTYPE NETSCAPE-Bookmark-file-1>", "<DL><p>"]
    for i in range(n):
        lines.append(
            f'<DT><A HREF="https://big.example/{i}" ADD_DATE="{1600000000 + i}" '
            f'TAGS="t{i % 7}">Page {i}</A>'
        )
        lines.append(f"<DD>description {i}")
    path.write_text("\n".join(lines + ["</DL>"]))


def test_import_killed_halfway_leaves_intact_db_and_reimport_completes(tmp_path, log_root, db):
    n = 30000
    src = tmp_path / "big.html"
    _big_html(src, n)
    env = {**os.environ, "RECAP_ROOT": str(log_root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "recap", "bookmark", "import", str(src)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watch = sqlite3.connect(log_root / "recap.db", timeout=30)
    deadline = time.monotonic() + 120
    count = 0
    while time.monotonic() < deadline:
        try:
            count = watch.execute("SELECT count(*) FROM bookmark").fetchone()[0]
        except sqlite3.OperationalError:
            count = 0
        if count >= 1000:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    watch.close()
    assert 0 < count < n, "the import was not caught halfway"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    partial = db.execute("SELECT count(*) FROM bookmark").fetchone()[0]
    assert partial % 500 == 0 and partial < n  # whole batches only
    db.execute("INSERT INTO bookmark_fts(bookmark_fts) VALUES ('integrity-check')")  # raises if bad
    db.commit()
    r = subprocess.run(
        [sys.executable, "-m", "recap", "bookmark", "import", str(src), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["added"], rep["merged"], rep["changed"]) == (n - partial, partial, 0)
    got = db.execute(
        "SELECT count(*), count(DISTINCT coalesce(url_key, url)), min(id), max(id) FROM bookmark"
    ).fetchone()
    assert tuple(got) == (n, n, 1, n)
    assert tuple(
        db.execute(
            "SELECT title, description, tags, added FROM bookmark WHERE url = ?",
            ("https://big.example/12345",),
        ).fetchone()
    ) == ("Page 12345", "description 12345", '["t4"]', "2020-09-13T15:52:25.000Z")
    assert (
        db.execute("SELECT count(*) FROM bookmark_fts WHERE bookmark_fts MATCH 'page'").fetchone()[
            0
        ]
        == n
    )
