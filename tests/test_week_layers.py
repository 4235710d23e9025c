"""One owner for the week's view: the arrows point one way, and one module writes link rows."""

from __future__ import annotations

import ast
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
