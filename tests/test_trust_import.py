"""Issue 14 items 3, 4, 7, 8 and 9: imports read only what they should, author HTML is sanitised,
Jekyll permalinks redirect, bad input is one line, a killed load leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PNG = bytes.fromhex(  # a 4x4 red PNG
    "89504e470d0a1a0a0000000d4948445200000004000000040802000000269309290000001449444154789c"
    "633c2127c700034c0c48003707003476010caf6ab9b50000000049454e44ae426082"
)


def _post(folder: Path, name: str, body: str, meta: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"---\ntitle: T {name}\ndate: 2021-02-07\n{meta}---\n\n{body}\n")
    return path


def test_images_are_copied_only_from_the_posts_folder_and_only_images(cli, db, tmp_path, log_root):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    posts = tmp_path / "blog" / "_posts"
    (posts / "images").mkdir(parents=True)
    (posts / "images" / "ok.png").write_bytes(PNG)
    (posts / "images" / "fake.png").write_text("not an image at all")
    os.symlink(secret, posts / "images" / "passwd.png")
    # as many ".." as it takes from the post's folder to "/", wherever pytest put tmp_path
    passwd = "../" * (len(posts.parts) - 1) + "etc/passwd"
    body = (
        "![a](images/ok.png)\n![b](../../secret.txt)\n![c](images/passwd.png)\n"
        f'![d](images/fake.png)\n<img src="{passwd}">\n'
    )
    post = _post(posts, "2021-02-07-imgs.md", body)
    r = cli("import", post, "--json")
    assert r.exit_code == 0, r.output
    (rep,) = json.loads(r.stdout)
    assert rep["images_copied"] == 1
    skipped = {s["ref"]: s["reason"] for s in rep["images_skipped"]}
    assert skipped == {
        "../../secret.txt": "outside the post's folder",
        "images/passwd.png": "outside the post's folder",
        "images/fake.png": "not an image",
        passwd: "outside the post's folder",
    }
    media = log_root / "media"
    copied = sorted(p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file())
    assert copied == ["imgs/images/ok.png"]
    assert not any("root:x" in p.read_text(errors="ignore") for p in media.rglob("*.png"))
    r = cli("import", post)
    assert "image ../../secret.txt (outside the post's folder; not copied)" in r.stdout


HOSTILE = """Intro <img src="https://docs.fast.ai/images/layered.png" style="zoom: 67%;" />

<img src="images/x.png" onerror="alert('img')"> and [click](javascript:alert('md'))
<a href="javascript:alert('a')" onclick="alert('c')">link</a> ![p](data:text/html,hi)
<iframe src="https://evil.example/"></iframe><script>alert('s')</script>

`<script>` in code stays, and so does this:

```html
<button onclick="go()">Go</button>
```
"""


def test_author_html_is_sanitised_not_dropped(cli, db, tmp_path):
    post = _post(tmp_path / "p", "2021-02-07-hostile.md", HOSTILE)
    r = cli("import", post, "--json")
    assert r.exit_code == 0, r.output
    (rep,) = json.loads(r.stdout)
    assert rep["sanitised"] == {
        "<iframe> element": 1,
        "<script> element": 1,
        "event handler": 2,
        "javascript:/data: target": 3,
    }
    body = db.execute("SELECT body FROM entry").fetchone()[0]
    assert '<img src="https://docs.fast.ai/images/layered.png" style="zoom: 67%;" />' in body
    assert '<img src="images/x.png">' in body and "<a>link</a>" in body
    assert "and click\n" in body
    for gone in ("onerror", "javascript:", "data:text", "<iframe", "alert('s')"):
        assert gone not in body.split("`<script>`")[0], gone
    assert "`<script>` in code stays" in body and '<button onclick="go()">Go</button>' in body
    r = cli("import", post)
    assert "sanitised HTML: " in r.stdout and "1 <script> element(s)" in r.stdout


def test_jekyll_permalinks_are_expanded(cli, db, tmp_path, log_root):
    from recap.journal.importer import expand_permalink

    post = _post(tmp_path / "j", "2021-2-7-jekyll-post.md", "Hi", "permalink: /:title-2/\n")
    assert cli("import", post).exit_code == 0
    assert db.execute("SELECT permalink FROM entry").fetchone()[0] == "/jekyll-post-2/"
    # The site turns it into a redirect from the old URL to the post.
    from recap import db as recap_db
    from recap.site.render import render

    result = render(log_root, recap_db.connect(log_root / "recap.db"))
    assert result.redirects == {"jekyll-post-2/index.md": "blog/posts/jekyll-post/jekyll-post.md"}
    from datetime import date

    day = date(2021, 2, 7)
    assert expand_permalink(
        "/:categories/:year/:month/:day/:title:output_ext",
        day,
        "Post",
        [
            "ML",
            "Notes",
        ],
    ) == ("/ml/notes/2021/02/07/Post.html", [])
    assert expand_permalink("pretty", day, "P", []) == ("/2021/02/07/P/", [])
    assert expand_permalink("/:i_month/:slug/:nope/", day, "A b!", []) == (
        "/2/a-b/:nope/",
        [":nope"],
    )


def test_category_outside_the_allowed_list_is_reported(cli, db, tmp_path, log_root):
    post = _post(tmp_path / "c", "2021-02-07-cats.md", "Hi", "categories: [recap, zzz-new]\n")
    r = cli("import", post)
    assert r.exit_code == 0
    assert "category 'zzz-new' not in the blog's categories_allowed" in r.stdout
    assert "categories_allowed: [" in r.stdout and '"zzz-new"]' in r.stdout


def test_bad_inputs_are_one_line_and_change_nothing(cli, db, tmp_path, log_root):
    cli("new", "--week", "2021-W03", "--no-edit")
    before = cli("db", "dump").stdout
    cases = {
        "random.bin": os.urandom(4096),
        "no-schema.dump": b'{"format": "recap-dump"}\n',
        "string-schema.dump": b'{"format": "recap-dump", "schema": "3"}\n',
        "no-columns.dump": b'{"format": "recap-dump", "schema": 3}\n{"table": "entry"}\n[1]\n',
        "bad-row.dump": b'{"format": "recap-dump", "schema": 3}\n'
        b'{"table": "feed", "columns": ["id", "url"]}\n[1]\n',
        "bad-column.dump": b'{"format": "recap-dump", "schema": 3}\n'
        b'{"table": "feed", "columns": ["id", "url; DROP TABLE entry"]}\n',
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        r = cli("db", "load", tmp_path / name)
        assert r.exit_code == 2, (name, r.output)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (name, r.stderr)
    assert cli("db", "dump").stdout == before
    (tmp_path / "image.bin").write_bytes(PNG + b"\x00\xff\xfe")
    r = cli("new", "--week", "2021-W05", "--body-file", tmp_path / "image.bin", "--no-edit")
    assert r.exit_code == 2 and "not UTF-8 text" in r.stderr and r.stderr.count("\n") == 1
    post = _post(tmp_path / "d", "bad-date.md", "Hi")
    post.write_text(post.read_text().replace("2021-02-07", "2021-02-30"))
    r = cli("import", post)
    assert r.exit_code == 2 and r.stderr.strip().endswith("unreadable date '2021-02-30'")
    assert db.execute("SELECT count(*) FROM entry").fetchone()[0] == 1


def test_template_outside_the_log_root_is_refused(cli, log_root, tmp_path):
    (tmp_path / "outside.md").write_text("stolen $title\n")
    (log_root / "recap.toml").write_text('template = "../outside.md"\n')
    r = cli("new", "--week", "2021-W03", "--no-edit")
    assert r.exit_code == 2 and "outside the log root" in r.stderr


def test_killed_load_leaves_nothing_behind(cli, log_root, tmp_path):
    for i in range(3):
        cli("new", "--week", f"2021-W0{i + 1}", "--no-edit")
    dump = tmp_path / "big.dump"
    lines = cli("db", "dump").stdout.splitlines()
    # Many bookmark rows make the load last long enough to be killed in the middle.
    out = [lines[0]]
    for ln in lines[1:]:
        out.append(ln)
        if ln.startswith('{"table": "bookmark"'):
            cols = json.loads(ln)["columns"]
            for i in range(200_000):
                vals = {c: None for c in cols}
                vals.update(
                    id=i + 1,
                    url=f"https://k.example/{i}",
                    url_key=f"https://k.example/{i}",
                    title=f"t{i}",
                    description="",
                    note="",
                    tags="[]",
                    source="cli",
                    added="2021-01-01T00:00:00.000Z",
                    updated="2021-01-01T00:00:00.000Z",
                    archived=0,
                )
                out.append(json.dumps([vals[c] for c in cols]))
    dump.write_text("\n".join(out) + "\n")
    env = {**os.environ, "RECAP_ROOT": str(log_root)}
    proc = subprocess.Popen([sys.executable, "-m", "recap", "db", "load", str(dump)], env=env)
    deadline = time.monotonic() + 60
    while not list(log_root.glob(".recap-load-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(log_root.glob(".recap-load-*")), "the load was not caught half-way"
    r = cli("list", "--json")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 3  # data unchanged
    assert list(log_root.glob(".recap-load-*")) == []
    assert ".recap-load-*" in (log_root / ".gitignore").read_text().splitlines()


def test_load_indexes_the_rows_once_and_search_works(cli, db, log_root, tmp_path):
    for i, title in enumerate(["TransformerNet notes", "ユニコードのページ", "Crème brûlée"]):
        cli("bookmark", "add", f"https://l.example/{i}", "--offline", "--title", title)
    cli("new", "--week", "2021-W03", "--title", "日本語の週", "--no-edit")
    dump = tmp_path / "d.dump"
    assert cli("db", "dump", dump).exit_code == 0
    assert cli("db", "load", dump).exit_code == 0
    conn = __import__("sqlite3").connect(log_root / "recap.db", isolation_level=None)
    for table in ("bookmark_fts", "bookmark_trigram", "entry_fts", "entry_trigram"):
        conn.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert {"bookmark_ai", "bookmark_trigram_ai", "entry_au", "entry_trigram_au"} <= triggers
    r = cli("bookmark", "search", "former", "--json")
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)
    assert [b["title"] for b in found] == ["TransformerNet notes"]
    assert json.loads(cli("bookmark", "search", "creme", "--json").stdout)[0]["id"] == 3
    assert len(json.loads(cli("search", "日本語", "--json").stdout)) == 1
    assert cli("db", "dump").stdout == dump.read_text()
