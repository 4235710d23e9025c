"""The database: migrations, concurrency on a fresh file, schema/model agreement, dump/load, backup."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import threading
from pathlib import Path

import pytest

from recap import db
from recap.db.migrations import HEAD, MIGRATIONS

DATA = Path(__file__).parent / "data"


def _tables(conn):
    return {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','trigger')")
    }


def test_blank_database_migrates_to_head(tmp_path):
    conn = db.connect(tmp_path / "new.db")
    assert db.schema_version(conn) == HEAD
    names = [r["name"] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY number")]
    assert names == [name for _, name, _ in MIGRATIONS]
    assert {
        "entry",
        "bookmark",
        "feed",
        "experiment",
        "run",
        "metric",
        "artifact",
        "link",
        "entry_fts",
        "bookmark_fts",
        "entry_au",
    } <= _tables(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrating_twice_changes_nothing(tmp_path):
    path = tmp_path / "twice.db"
    db.connect(path).close()
    before = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    conn = db.connect(path)
    assert db.migrate(conn) == []
    after = [tuple(r) for r in conn.execute("SELECT sql FROM sqlite_master ORDER BY name")]
    assert before == after
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_frozen_first_schema_migrates_and_indexes_old_rows(tmp_path):
    path = tmp_path / "v1.db"
    old = sqlite3.connect(path)
    old.executescript((DATA / "schema_v1.sql").read_text())
    old.close()
    conn = db.connect(path)
    assert db.schema_version(conn) == HEAD
    # Rows written under schema 1 are found by the FTS indexes that migration 2 added.
    hit = conn.execute("SELECT rowid FROM entry_fts WHERE entry_fts MATCH 'barracuda'").fetchall()
    assert [r[0] for r in hit] == [1]
    hit = conn.execute(
        "SELECT rowid FROM bookmark_fts WHERE bookmark_fts MATCH 'fastai'"
    ).fetchall()
    assert [r[0] for r in hit] == [1]


def test_newer_schema_is_refused(cli, log_root):
    conn = sqlite3.connect(log_root / "recap.db")
    conn.execute(f"PRAGMA user_version = {HEAD + 5}")
    conn.close()
    r = cli("list")
    assert r.exit_code == 4
    assert r.stderr.startswith("error: the database is at schema version")
    assert "upgrade recap" in r.stderr and "Traceback" not in r.output


def _open(path, barrier):
    barrier.wait()
    conn = db.connect(Path(path))
    conn.execute("INSERT INTO feed (url, added) VALUES (?, 'now')", (f"https://x/{id(conn)}",))
    return db.schema_version(conn)


def test_eight_processes_open_a_fresh_database_at_once(tmp_path):
    path = tmp_path / "race.db"
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(8)
        with ctx.Pool(8) as pool:
            versions = pool.starmap(_open, [(str(path), barrier)] * 8)
    assert versions == [HEAD] * 8
    conn = db.connect(path)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM feed").fetchone()[0] == 8
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_models_describe_the_migrated_schema(tmp_path):
    from recap.db.models import TABLES

    conn = db.connect(tmp_path / "m.db")
    for model in TABLES:
        table = model.__tablename__
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        assert columns == {c.name for c in model.__table__.columns}, table


def test_sqlmodel_engine_reads_rows(cli):
    from sqlmodel import Session, select

    from recap.db.models import Entry, engine

    cli("new", "--week", "2021-W03", "--no-edit")
    with Session(engine()) as session:
        entries = session.exec(select(Entry)).all()
    assert [e.week for e in entries] == ["2021-W03"]


def _fill(cli):
    cli("new", "--week", "2021-W03", "--no-edit")
    cli("new", "--week", "2021-W04", "--title", "Ünïcode — recap", "--no-edit")
    conn = db.connect()
    with db.transaction(conn):
        conn.execute("INSERT INTO experiment (name, folder) VALUES ('toy', 'experiments/toy')")
        conn.execute(
            "INSERT INTO run (id, experiment_id, started, params) VALUES "
            "('r1', 1, '2021-01-20T00:00:00Z', '{\"lr\": 0.1}')"
        )
        conn.execute(
            "INSERT INTO run (id, experiment_id, started, parent_id) VALUES "
            "('r0', 1, '2021-01-21T00:00:00Z', 'r1')"
        )
        conn.execute(
            "INSERT INTO metric (run_id, key, step, value, time) VALUES ('r1', 'loss', 1, 0.1, 't')"
        )
        conn.execute("INSERT INTO link (entry_id, run_id, created) VALUES (1, 'r1', 'now')")


def test_dump_load_dump_is_byte_identical(cli, log_root, tmp_path):
    _fill(cli)
    first = cli("db", "dump")
    assert first.exit_code == 0
    dump_file = tmp_path / "log.dump"
    r = cli("db", "dump", dump_file)
    assert r.exit_code == 0 and dump_file.read_text() == first.stdout
    assert json.loads(first.stdout.splitlines()[0]) == {"format": "recap-dump", "schema": HEAD}
    # Restore into a log that has other content: the dump replaces it exactly.
    cli("new", "--week", "2022-W10", "--no-edit")
    r = cli("db", "load", dump_file)
    assert r.exit_code == 0 and "loaded" in r.stdout
    again = cli("db", "dump")
    assert again.stdout == first.stdout
    conn = sqlite3.connect(log_root / "recap.db")
    assert conn.execute("SELECT count(*) FROM entry").fetchone()[0] == 2
    # FTS is rebuilt by the triggers on load.
    assert (
        conn.execute("SELECT count(*) FROM entry_fts WHERE entry_fts MATCH 'unicode'").fetchone()[0]
        == 1
    )


def test_load_of_a_bad_file_changes_nothing(cli, log_root, tmp_path):
    cli("new", "--week", "2021-W03", "--no-edit")
    bad = tmp_path / "bad.dump"
    bad.write_text(
        '{"format": "recap-dump", "schema": 1}\n{"table": "entry", "columns": ["id"]}\nnot json\n'
    )
    r = cli("db", "load", bad)
    assert r.exit_code == 2 and "not valid JSON" in r.stderr
    assert (
        sqlite3.connect(log_root / "recap.db").execute("SELECT count(*) FROM entry").fetchone()[0]
        == 1
    )
    other = tmp_path / "other.txt"
    other.write_text("hello\n")
    assert "is not a recap dump" in cli("db", "load", other).stderr


def test_backup_while_another_process_writes(cli, log_root, tmp_path):
    _fill(cli)
    stop = threading.Event()

    def writer():
        conn = db.connect(log_root / "recap.db")
        i = 0
        while not stop.is_set():
            conn.execute("INSERT INTO feed (url, added) VALUES (?, 'now')", (f"https://f/{i}",))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = cli("db", "backup", tmp_path / "copy.db")
    finally:
        stop.set()
        t.join()
    assert r.exit_code == 0
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT count(*) FROM entry").fetchone()[0] == 2


def test_db_path_and_check(cli, log_root):
    assert cli("db", "path").stdout.strip() == str(log_root / "recap.db")
    r = cli("db", "check", "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["ok"] and report["schema_version"] == HEAD
    assert "integrity: ok" in cli("db", "check").stdout


def test_no_log_root_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("RECAP_ROOT")
    monkeypatch.chdir(tmp_path)
    r = cli("list")
    assert r.exit_code == 3
    assert r.stderr.count("\n") == 1 and "recap init" in r.stderr


def test_root_option_beats_environment(cli, tmp_path):
    from recap.logroot import init_root

    other, _ = init_root(tmp_path / "other")
    cli("--root", other, "new", "--week", "2021-W05", "--no-edit")
    assert sqlite3.connect(other / "recap.db").execute("SELECT week FROM entry").fetchall() == [
        ("2021-W05",)
    ]


def test_discovery_walks_up(recap_proc, tmp_path):
    import os

    from recap.logroot import init_root

    root, _ = init_root(tmp_path / "walk")
    deep = root / "docs" / "blog"
    env = {k: v for k, v in os.environ.items() if k != "RECAP_ROOT"}
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "recap", "db", "path"],
        cwd=deep,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == str(root / "recap.db")


def _read_only(folder: Path):
    """Make a folder unwritable, for root too (root ignores mode bits, not the immutable flag)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        folder.chmod(0o500)
        return lambda: folder.chmod(0o700)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only here (no chattr)")
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_read_only_folder_is_one_line(cli, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    undo = _read_only(ro)
    try:
        r = cli("init", ro / "log")
    finally:
        undo()
    assert r.exit_code != 0 and r.stderr.startswith("error:") and "Traceback" not in r.output
    assert r.stderr.count("\n") == 1
    assert not (ro / "log").exists()


def test_read_only_log_root_writes_nothing(cli, log_root):
    cli("new", "--week", "2021-W03", "--no-edit")
    undo = _read_only(log_root)
    try:
        r = cli("import", Path(__file__).parent / "data" / "posts" / "2020-12-6-quarto-style.qmd")
    finally:
        undo()
    assert r.exit_code != 0 and r.stderr.startswith("error:") and "Traceback" not in r.output
