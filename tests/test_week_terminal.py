"""The terminal side of the weekly loop: exp rm, missing extras, tables that fit, exp show NAME."""

from __future__ import annotations

import json
from pathlib import Path

from test_lab_support import add_toy, make_exp


def run_toy(cli, *args) -> dict:
    r = cli("exp", "run", "toy-regression", *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_exp_rm_asks_then_deletes_the_run_and_its_folder(cli, db, log_root):
    add_toy(log_root)
    rec = run_toy(cli)
    folder = log_root / "runs" / "toy-regression" / rec["id"]
    assert folder.is_dir()
    cli("new", "--week", "2021-W03", "--no-edit")
    cli("link", "1", "--run", rec["id"])
    r = cli("exp", "rm", rec["id"], input="n\n")
    assert r.exit_code == 1 and f"delete run {rec['id']} and its outputs?" in r.stdout
    assert db.execute("SELECT count(*) FROM run").fetchone()[0] == 1
    r = cli("exp", "rm", rec["id"], "--yes")
    assert r.exit_code == 0 and r.stdout.startswith(f"deleted toy-regression run {rec['id']}")
    assert not folder.exists()
    for table in ("run", "metric", "link"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert cli("exp", "rm", "nope", "--yes").exit_code == 2


def test_a_run_stopped_by_a_missing_extra_is_not_recorded(cli, db, log_root):
    make_exp(
        log_root,
        "needs-extra",
        "from recap.errors import require\nrequire('no_such_module_xyz', 'ml')\n",
    )
    r = cli("exp", "run", "needs-extra")
    assert r.exit_code == 5
    assert "this needs the 'ml' extra (no_such_module_xyz is not installed)" in r.stderr
    assert db.execute("SELECT count(*) FROM run").fetchone()[0] == 0
    assert not list((log_root / "runs").rglob("run.log"))


def test_exp_show_name_lists_params_with_defaults_and_help(cli, log_root):
    add_toy(log_root)
    r = cli("exp", "show", "toy-regression")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("toy-regression (toy): ")
    row = next(line for line in lines if line.startswith("noise "))
    assert "float" in row and "0.1" in row and "Standard deviation" in row
    data = json.loads(cli("exp", "show", "toy-regression", "--json").stdout)
    assert data["params"]["noise"]["default"] == 0.1


def test_tables_fit_80_columns_and_wide_shows_everything(cli, log_root, monkeypatch):
    add_toy(log_root)
    rec = run_toy(cli, "-p", "noise=0.25")
    monkeypatch.setenv("COLUMNS", "80")
    shows = (("exp", "show", "toy-regression"), ("exp", "show", rec["id"]))
    for args in (("exp", "list"), ("exp", "runs"), *shows):
        r = cli(*args)
        assert r.exit_code == 0, r.output
        widths = [len(line) for line in r.stdout.splitlines()]
        assert max(widths) <= 80, (args, r.stdout)
    # runs: the params leave the table and go whole under each run, wrapped at 80
    runs_out = cli("exp", "runs").stdout
    assert "…" not in runs_out and "noise=0.25" in runs_out.replace("\n    ", " ")
    head = runs_out.splitlines()[0].split()
    assert head == ["id", "experiment", "status", "started", "secs"]
    assert runs_out.splitlines()[3].startswith("    primary: val_mse=")
    # a param's help wraps under its column instead of being cut
    lines = cli("exp", "show", "toy-regression").stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("n_points "))
    col = lines[at].index("How many")
    assert lines[at + 1][:col].strip() == "" and "…" not in "".join(lines[at : at + 2])
    help_text = " ".join(line[col:].strip() for line in lines[at : at + 2])
    assert help_text == "How many points are drawn (a fifth of them are held out for validation)"
    monkeypatch.delenv("COLUMNS")
    r = cli("exp", "runs")
    assert "…" not in r.stdout and "noise=0.25" in r.stdout  # piped, no COLUMNS: nothing cut


def test_bare_recap_is_a_short_status(cli, db, log_root):
    from recap.journal import weeks

    r = cli()
    assert r.exit_code == 0
    week = weeks.week_of(weeks.today())
    assert f"this week ({week}): no entry yet - 'recap new' starts it" in r.stdout
    cli("new", "--no-edit")
    cli("bookmark", "add", "https://docs.fast.ai/", "--offline")
    db.execute("UPDATE bookmark SET read_at = NULL")
    db.commit()
    lines = cli().stdout.splitlines()
    slug = f"weekly-recap-{week.lower()}"
    assert lines[1] == f"this week ({week}): {slug} (draft), shows 1 bookmark(s) and 0 run(s)"
    assert lines[2] == f"drafts: 1 ({slug})"
    assert lines[3].startswith("unread links: 1")
    assert lines[4] == "runs since the last entry: 0"


def test_completion_is_offered_and_help_still_starts_light(recap_proc):
    r = recap_proc("--help")
    assert "--install-completion" in r.stdout and "--wide" in r.stdout


def test_bookmark_add_assumes_https_for_a_bare_host(cli, db):
    r = cli("bookmark", "add", "docs.fast.ai", "--offline")
    assert r.exit_code == 0 and "https://docs.fast.ai" in r.stdout
    assert db.execute("SELECT url FROM bookmark").fetchone()[0] == "https://docs.fast.ai"
    assert cli("bookmark", "add", "ftp://x.example/", "--offline").exit_code == 2


def test_json_on_commands_that_report(cli, db, log_root, tmp_path):
    r = cli("init", str(tmp_path / "other"), "--no-experiments", "--json")
    assert r.exit_code == 0 and "recap.toml" in json.loads(r.stdout)["made"]
    cli("bookmark", "add", "https://a.example/", "--offline")
    assert json.loads(cli("bookmark", "tag", "1", "-a", "x", "--json").stdout) == [
        {"id": 1, "tags": ["x"]}
    ]
    feed = tmp_path / "feed.xml"
    feed.write_text((Path(__file__).parent / "data/links/rss20.xml").read_text())
    added = json.loads(cli("feed", "add", str(feed), "--json").stdout)
    assert added["created"] is True and added["id"] == 1
    assert json.loads(cli("bookmark", "rm", "1", "--json").stdout) == {"removed": [1]}
    out = json.loads(cli("site", "build", "--render-only", "--json").stdout)
    # --render-only: the docs written, no site built
    assert out["posts"] == 0 and "site" not in out and "links.md" not in out["docs"]["written"]


def test_show_prints_readable_markdown_when_piped(cli, db):
    cli("new", "--week", "2021-W03", "--no-edit")
    cli("bookmark", "add", "https://docs.blender.org/api/", "--offline", "--title", "bpy *API*")
    cli("link", "1", "--bookmark", "1")
    out = cli("show", "1").stdout
    assert "(docs.blender.org)" in out and "\\." not in out and "bpy *API*" in out
    assert "\x1b[" not in out  # no colour codes in a pipe


def test_rerun_on_a_terminal_shows_a_line_per_replayed_run(cli, log_root):
    add_toy(log_root)
    rec = run_toy(cli)
    code, out = _on_a_tty(["rerun", rec["id"]], {"NO_COLOR": "1"})
    assert code == 0, out
    assert "toy-regression run " in out and " started (log: runs/toy-regression/" in out
    assert f"run {rec['id']}: reproduced" in out
    import re

    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)  # the spinner's cursor codes
    lines = [line.rstrip() for line in re.split(r"[\r\n]+", plain)]
    head = next(
        i for i, line in enumerate(lines) if line.startswith(f"toy-regression run {rec['id']} -> ")
    )
    table = lines[head : head + 7]
    assert table[1].split() == ["metric", "recorded", "now", "tolerance", "verdict"]
    assert all(len(line) <= 80 and "…" not in line for line in table)


def _on_a_tty(args, env_extra, cwd=None):
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({"TERM": "xterm-256color", "COLUMNS": "80", "LINES": "20", **env_extra})
    proc = subprocess.Popen(
        [sys.executable, "-m", "recap", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_show_on_a_terminal_renders_markdown_and_pages_long_text(cli, log_root):
    body = "## Introduction\n\n" + "\n\n".join(f"Paragraph {i} of the week." for i in range(40))
    cli("new", "--week", "2021-W03", "--body-file", "-", input=body + "\n")
    code, out = _on_a_tty(["show", "2021-W03"], {"PAGER": "cat"})
    assert code == 0, out
    assert "\x1b[" in out  # colour on a terminal
    assert "Paragraph 39 of the week." in out and "## Introduction" not in out  # rendered
    code, out = _on_a_tty(["show", "2021-W03"], {"NO_COLOR": "1", "PAGER": "cat"})
    assert "\x1b[" not in out and "## Introduction" in out and "Paragraph 39" in out
