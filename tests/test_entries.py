"""Weekly entries: recap new / list / show / edit / search, as a user runs them."""

from __future__ import annotations

import json
import os
import stat
from datetime import date

from recap.journal import weeks


def _rows(db, sql="SELECT * FROM entry ORDER BY id", *args):
    return [dict(r) for r in db.execute(sql, args)]


def test_new_for_a_week_makes_one_entry_from_the_template(cli, db):
    r = cli("new", "--week", "2021-W03", "--no-edit")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "created draft entry 1 weekly-recap-2021-w03 (2021-W03, 2021-01-24); "
        "it shows 0 bookmark(s) and 0 run(s) of the week",
        "publish it with 'recap publish weekly-recap-2021-w03' (drafts are not on the site)",
    ]
    [row] = _rows(db)
    assert row["draft"] == 1 and row["final"] == 0
    assert (row["week"], row["date"], row["kind"], row["title"]) == (
        "2021-W03",
        "2021-01-24",
        "weekly",
        "Weekly Recap",
    )
    body = row["body"]
    sections = [line for line in body.splitlines() if line.startswith("## ")]
    assert sections == [
        "## Introduction",
        "## Style Transfer",
        "## fastai to Unity",
        "## Blender",
        "## Pose Estimation",
        "## Conclusion",
    ]
    assert "<!-- recap:links -->" in body and "<!-- recap:runs -->" in body
    assert json.loads(row["categories"]) == ["recap"]


def test_same_week_again_opens_the_existing_entry(cli, db):
    cli("new", "--week", "2021-W03", "--no-edit")
    r = cli("new", "--date", "2021-01-20", "--no-edit")
    assert "opened existing draft entry 1" in r.stdout
    assert len(_rows(db)) == 1


def test_every_week_gets_its_own_slug_even_with_one_title(cli, db):
    for week in ("2021-W03", "2021-W04", "2022-W03"):
        assert cli("new", "--week", week, "--no-edit").exit_code == 0
    slugs = [r["slug"] for r in _rows(db)]
    assert slugs == ["weekly-recap-2021-w03", "weekly-recap-2021-w04", "weekly-recap-2022-w03"]
    assert {r["title"] for r in _rows(db)} == {"Weekly Recap"}


def test_slug_collision_with_an_imported_post_gets_a_suffix(cli, db):
    db.execute(
        "INSERT INTO entry (slug, title, date, created, updated) VALUES "
        "('weekly-recap-2021-w03', 'x', '2021-01-01', 'n', 'n')"
    )
    db.commit()
    cli("new", "--week", "2021-W03", "--no-edit")
    assert [r["slug"] for r in _rows(db)] == ["weekly-recap-2021-w03", "weekly-recap-2021-w03-2"]


def test_new_without_a_week_uses_the_current_iso_week(cli, db):
    r = cli("new", "--no-edit", "--json")
    entry = json.loads(r.stdout)
    today = date.today()
    assert entry["week"] == weeks.week_of(today) and entry["date"] == today.isoformat()
    assert entry["created_now"] is True and _rows(db)[0]["id"] == entry["id"]


def test_bad_week_and_date_are_one_line_errors(cli, db):
    for args, needle in [
        (("--week", "2021-3"), "unknown week format '2021-3'"),
        (("--week", "2021-W54"), "is not a week of 2021"),
        (("--date", "24/01/2021"), "unknown date format"),
        (("--week", "2021-W03", "--date", "2021-01-24"), "not both"),
    ]:
        r = cli("new", *args, "--no-edit")
        assert r.exit_code == 2 and needle in r.stderr, args
        assert r.stderr.count("\n") == 1
    assert _rows(db) == []


def test_debug_shows_the_traceback(recap_proc):
    r = recap_proc("--debug", "new", "--week", "nope", "--no-edit")
    assert r.exit_code != 0 and "Traceback" in r.stderr and "InvalidInput" in r.stderr


def test_body_from_file_and_stdin(cli, db, tmp_path):
    f = tmp_path / "body.md"
    f.write_text("## Introduction\n\nFrom a file.\n")
    cli("new", "--week", "2021-W03", "--body-file", f)
    assert _rows(db)[0]["body"] == "## Introduction\n\nFrom a file.\n"
    cli("new", "--week", "2021-W04", "--body-file", "-", input="From stdin.\n")
    assert _rows(db)[1]["body"] == "From stdin.\n"
    r = cli("new", "--week", "2021-W05", "--body-file", tmp_path / "missing.md")
    assert r.exit_code == 2 and "no such body file" in r.stderr and len(_rows(db)) == 2


def test_piped_stdin_is_the_body(recap_proc, db):
    r = recap_proc("new", "--week", "2021-W06", input="Piped body.\n")
    assert r.exit_code == 0, r.stderr
    assert _rows(db)[0]["body"] == "Piped body.\n"


def _editor_script(tmp_path, python_code: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n" + python_code)
    wrapper = tmp_path / "editor.sh"
    wrapper.write_text(f'#!/bin/sh\nexec {os.sys.executable} {script} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return str(wrapper)


def test_new_opens_the_editor_and_saves_what_was_written(cli, db, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "EDITOR",
        _editor_script(
            tmp_path,
            "p.write_text(p.read_text().replace('## Conclusion', '## Conclusion\\n\\nDone.'))",
        ),
    )
    r = cli("new", "--week", "2021-W03")
    assert r.exit_code == 0
    assert "## Conclusion\n\nDone." in _rows(db)[0]["body"]


def test_edit_changes_metadata_and_body(cli, db, tmp_path, monkeypatch):
    cli("new", "--week", "2021-W03", "--no-edit")
    monkeypatch.setenv(
        "EDITOR",
        _editor_script(
            tmp_path,
            (
                "t = p.read_text().replace('title: Weekly Recap', 'title: Style week')\n"
                "t = t.replace('tags: []', 'tags: [onnx, unity]')\n"
                "p.write_text(t + '\\nA new closing line.\\n')\n"
            ),
        ),
    )
    r = cli("edit", "weekly-recap-2021-w03")
    assert r.stdout.strip() == "saved entry 1 weekly-recap-2021-w03"
    row = _rows(db)[0]
    assert row["title"] == "Style week" and json.loads(row["tags"]) == ["onnx", "unity"]
    assert row["body"].endswith("A new closing line.\n")
    assert row["slug"] == "weekly-recap-2021-w03"  # the slug is stable: links keep working


def test_edit_with_broken_front_matter_saves_nothing(cli, db, tmp_path, monkeypatch):
    cli("new", "--week", "2021-W03", "--no-edit")
    before = _rows(db)
    monkeypatch.setenv(
        "EDITOR", _editor_script(tmp_path, "p.write_text('---\\ntitle: [x\\n---\\n')")
    )
    r = cli("edit", "1")
    assert r.exit_code == 2 and "malformed front matter" in r.stderr
    assert _rows(db) == before


def test_template_saved_unchanged_stays_a_draft(cli, db):
    r = cli("new", "--week", "2021-W03")  # EDITOR=true saves the file as it was
    assert r.exit_code == 0
    assert "the template was saved unchanged: the entry stays a draft" in r.stdout
    assert _rows(db)[0]["draft"] == 1


def test_failing_editor_in_new_says_the_entry_stays_a_draft(cli, db, monkeypatch):
    monkeypatch.setenv("EDITOR", "false")
    r = cli("new", "--week", "2021-W03")
    assert r.exit_code == 1
    assert r.stderr.strip() == (
        "error: editor 'false' exited with status 1; nothing was saved; entry "
        "weekly-recap-2021-w03 stays a draft ('recap edit weekly-recap-2021-w03')"
    )
    assert _rows(db)[0]["draft"] == 1


def test_draft_false_in_the_editor_publishes(cli, db, tmp_path, monkeypatch):
    cli("new", "--week", "2021-W03", "--no-edit")
    monkeypatch.setenv(
        "EDITOR",
        _editor_script(
            tmp_path, "p.write_text(p.read_text().replace('draft: true', 'draft: false'))"
        ),
    )
    assert cli("edit", "1").exit_code == 0
    row = _rows(db)[0]
    assert row["draft"] == 0 and row["final"] == 0  # published, links still live


def test_editor_shows_what_the_entry_links_and_does_not_save_that_note(
    cli, db, tmp_path, monkeypatch
):
    cli("new", "--week", "2021-W03", "--no-edit")
    cli("bookmark", "add", "https://docs.fast.ai/", "--offline", "--entry", "1")
    seen = tmp_path / "seen.md"
    monkeypatch.setenv(
        "EDITOR",
        _editor_script(
            tmp_path,
            f"import shutil; shutil.copy(p, {str(seen)!r}); "
            "p.write_text(p.read_text() + 'Closing.\\n')",
        ),
    )
    assert cli("edit", "1").exit_code == 0
    shown = seen.read_text()
    assert "<!-- recap: what this entry shows now" in shown
    assert "- bookmark 1 https://docs.fast.ai/: linked by hand" in shown
    body = _rows(db)[0]["body"]
    assert "what this entry shows now" not in body and body.endswith("Closing.\n")


def test_rm_asks_first_and_yes_skips_the_question(cli, db):
    cli("new", "--week", "2021-W03", "--no-edit")
    cli("bookmark", "add", "https://docs.fast.ai/", "--offline", "--entry", "1")
    r = cli("rm", "1", input="n\n")
    assert r.exit_code == 1 and "delete entry 1 'weekly-recap-2021-w03'?" in r.stdout
    assert len(_rows(db)) == 1
    r = cli("rm", "weekly-recap-2021-w03", input="y\n")
    assert r.exit_code == 0 and "deleted entry 1 weekly-recap-2021-w03" in r.stdout
    assert _rows(db) == [] and db.execute("SELECT count(*) FROM link").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM bookmark").fetchone()[0] == 1  # the bookmark stays
    cli("new", "--week", "2021-W04", "--no-edit")
    assert cli("rm", "2", "--yes").exit_code == 0 and _rows(db) == []


def test_failing_editor_saves_nothing(cli, db, monkeypatch):
    cli("new", "--week", "2021-W03", "--no-edit")
    before = _rows(db)
    monkeypatch.setenv("EDITOR", "false")
    r = cli("edit", "1")
    assert r.exit_code == 1 and "exited with status 1" in r.stderr
    assert _rows(db) == before


def test_list_filters_and_json(cli, db):
    cli("new", "--week", "2021-W03", "--no-edit")
    cli("new", "--week", "2021-W10", "--no-edit")
    db.execute("UPDATE entry SET categories = '[\"notes\"]' WHERE id = 2")
    db.commit()
    r = cli("list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "date", "week", "slug", "title", "categories"]
    assert lines[2].startswith("2 ") and lines[3].startswith("1 ")  # newest first
    assert [e["id"] for e in json.loads(cli("list", "--json").stdout)] == [2, 1]
    assert [e["id"] for e in json.loads(cli("list", "--week", "2021-W03", "--json").stdout)] == [1]
    assert [e["id"] for e in json.loads(cli("list", "--since", "2021-02-01", "--json").stdout)] == [
        2
    ]
    assert [e["id"] for e in json.loads(cli("list", "--category", "notes", "--json").stdout)] == [2]
    assert cli("list", "--week", "2030-W01").stdout.strip() == "no entries"


def test_list_at_80_columns_keeps_slugs_whole(cli, db, monkeypatch):
    cli("new", "--week", "2021-W03", "--no-edit")
    long_title = "In-game style transfer with Barracuda, part 1: the whole pipeline"
    db.execute("UPDATE entry SET title = ?, categories = '[\"style-transfer\"]'", (long_title,))
    db.commit()
    monkeypatch.setenv("COLUMNS", "80")
    lines = cli("list").stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[2].split()[3] == "weekly-recap-2021-w03"  # typed back: never cut first
    assert "In-game style" in lines[2] and "…" in lines[2]  # the title gave way


def test_show_by_id_and_slug(cli):
    cli("new", "--week", "2021-W03", "--body-file", "-", input="## Introduction\n\nHello.\n")
    r = cli("show", "weekly-recap-2021-w03")
    assert r.stdout.startswith("# Weekly Recap\n") and "Hello." in r.stdout
    data = json.loads(cli("show", "1", "--json").stdout)
    assert data["slug"] == "weekly-recap-2021-w03" and data["linked"] == {
        "final": False,
        "excluded": [],
        "bookmarks": [],
        "runs": [],
        "experiments": [],
    }
    r = cli("show", "nope")
    assert r.exit_code == 2 and "no entry with id, slug or week 'nope'" in r.stderr


def test_an_iso_week_names_its_weekly_entry(cli):
    cli("new", "--week", "2021-W03", "--no-edit")
    for ref in ("2021-W03", "2021-w3", "2021W03"):
        r = cli("show", ref)
        assert r.exit_code == 0 and r.stdout.startswith("# Weekly Recap\n"), ref
    assert cli("show", "2021-W04").exit_code == 2


def test_search_ranks_and_snippets(cli):
    cli("new", "--week", "2021-W03", "--body-file", "-", input="Barracuda once.\n")
    cli(
        "new",
        "--week",
        "2021-W04",
        "--title",
        "Barracuda week",
        "--body-file",
        "-",
        input="Barracuda everywhere: barracuda, barracuda.\n",
    )
    cli("new", "--week", "2021-W05", "--body-file", "-", input="Nothing relevant.\n")
    rows = json.loads(cli("search", "barracuda", "--json").stdout)
    assert [r["slug"] for r in rows] == ["barracuda-week-2021-w04", "weekly-recap-2021-w03"]
    assert "[Barracuda]" in rows[0]["snippet"]
    assert "[Barracuda]" in cli("search", "barracuda").stdout
    assert cli("search", "unity").stdout.strip() == "no matches"


def test_search_snippets_leave_recap_markers_out_and_fit_80_columns(cli, monkeypatch):
    words = " ".join(f"word{i}" for i in range(60))
    body = f"Intro.\n\n<!-- recap:links -->\n\nBarracuda {words} barracuda {words}\n"
    cli("new", "--week", "2021-W03", "--body-file", "-", input=body)
    raw = json.loads(cli("search", "barracuda", "--json").stdout)[0]["snippet"]
    monkeypatch.setenv("COLUMNS", "80")
    lines = cli("search", "barracuda").stdout.splitlines()
    assert lines[0].split()[-2:] == ["Weekly", "Recap"]
    shown = lines[1:]
    assert 1 <= len(shown) <= 2 and all(x.startswith("      ") and len(x) <= 80 for x in shown)
    assert "[Barracuda]" in shown[0] and "<!--" not in "".join(shown)
    assert raw.startswith("Intro.") and "<!-- recap:links -->" in raw  # JSON: as FTS gives it


def test_search_is_unicode_aware(cli):
    cli("new", "--week", "2021-W03", "--body-file", "-", input="Résumé of the café visit.\n")
    assert len(json.loads(cli("search", "resume", "--json").stdout)) == 1


def test_malformed_search_is_a_clear_error(cli):
    r = cli("search", 'style AND ("')
    assert r.exit_code == 2 and r.stderr.startswith("error: malformed search query")
    assert "Traceback" not in r.output


def test_template_override(cli, db, log_root):
    (log_root / "my-template.md").write_text("# $title of $week\n\n$projects<!-- recap:links -->\n")
    cfg = log_root / "recap.toml"
    cfg.write_text(
        cfg.read_text()
        .replace('template = ""', 'template = "my-template.md"')
        .replace(
            'projects = ["Style Transfer", "fastai to Unity", "Blender", "Pose Estimation"]',
            'projects = ["Pose"]',
        )
    )
    cli("new", "--week", "2021-W03", "--no-edit")
    assert _rows(db)[0]["body"] == "# Weekly Recap of 2021-W03\n\n## Pose\n\n<!-- recap:links -->\n"


def test_bad_config_is_one_line(cli, log_root):
    (log_root / "recap.toml").write_text("colour = 'red'\n")
    r = cli("new", "--no-edit")
    assert r.exit_code == 2 and "unknown setting(s) colour" in r.stderr
