"""One owner for the week's view: the arrows point one way, and one module writes link rows."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "recap"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _package_imports(package: str) -> set[str]:
    out: set[str] = set()
    for path in (PKG / package).rglob("*.py"):
        out |= _imports(path)
    return out


def test_journal_imports_neither_links_nor_lab_nor_the_week_view():
    bad = {m for m in _package_imports("journal") if re.match(r"recap\.(links|lab|week)\b", m)}
    assert bad == set()


def test_links_and_lab_do_not_import_the_week_view():
    for package in ("links", "lab", "db"):
        bad = {m for m in _package_imports(package) if re.match(r"recap\.week\b", m)}
        assert bad == set(), package


def test_only_linkrows_writes_the_link_table():
    writes = re.compile(r"(INSERT (OR \w+ )?INTO|UPDATE( OR \w+)?|DELETE FROM) link\b")
    writers = sorted(
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if writes.search(p.read_text(encoding="utf-8"))
    )
    # Migrations rebuild tables (m004 copies link rows across a table rebuild): schema, not data.
    assert writers == ["db/linkrows.py", "db/migrations.py"]


def test_cli_and_site_compose_entries_through_the_week_view():
    assert "recap.week" in _imports(PKG / "site/render.py") or any(
        "week" in m for m in _imports(PKG / "site/render.py")
    )
    source = (PKG / "site/render.py").read_text(encoding="utf-8")
    assert "FROM link" not in source  # the site reads links only through recap.week


def test_only_linkrows_reads_the_link_table_and_rerun_asks_the_week_view():
    reads = re.compile(r"\b(FROM|JOIN) link\b")
    readers = sorted(
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if p.name != "migrations.py" and reads.search(p.read_text(encoding="utf-8"))
    )
    assert readers == ["db/linkrows.py"]
    # the lab's rerun resolves runs only; an entry's runs come from recap.week (the CLI passes them)
    rerun = _imports(PKG / "lab/rerun.py")
    assert not {m for m in rerun if re.match(r"recap\.(journal|links|week|db\.linkrows)\b", m)}
    assert "recap.week.rerun_targets" in _imports(
        PKG / "cli/exp.py"
    ) or "weekview.rerun_targets" in (PKG / "cli/exp.py").read_text(encoding="utf-8")


def test_rerun_targets_of_an_entry_are_its_live_runs(cli, db, log_root):
    from test_lab_support import add_toy

    from recap import db as recap_db
    from recap import week
    from recap.errors import InvalidInput, NotFound

    add_toy(log_root)
    run_id = json.loads(cli("exp", "run", "toy-regression", "-p", "epochs=2", "--json").stdout)[
        "id"
    ]
    assert cli("new", "--no-edit").exit_code == 0
    slug = db.execute("SELECT slug FROM entry").fetchone()[0]
    conn = recap_db.connect()
    # the run finished this week: the entry shows it without any command, so rerun replays it
    assert week.rerun_targets(conn, slug) == (f"entry {slug}", [run_id])
    assert week.rerun_targets(conn, run_id) == (f"run {run_id}", [run_id])
    assert week.rerun_targets(conn, run_id[-6:]) == (f"run {run_id}", [run_id])
    assert cli("unlink", slug, "--run", run_id).exit_code == 0
    try:
        week.rerun_targets(conn, slug)
        raise AssertionError("an entry without runs is an error")
    except InvalidInput as exc:
        assert "links no runs" in str(exc)
    try:
        week.rerun_targets(conn, "no-such-thing")
        raise AssertionError("unknown")
    except NotFound as exc:
        assert str(exc).startswith("no run and no entry 'no-such-thing'")
