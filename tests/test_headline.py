"""Headline params: ``headline = [...]`` in experiment.toml (or the family file) always shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_lab_support import add_toy

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_shipped_experiments_declare_headline_params():
    from recap.lab.spec import load_spec

    expected = {
        "toy-regression": ["noise", "lr", "epochs"],
        "fastai-unity-classify": ["preset", "arch", "epochs", "size"],  # from the family file
        "fastai-unity-multilabel": ["preset", "arch", "epochs", "size"],
        "fastai-unity-keypoint": ["preset", "arch", "epochs", "size"],
        "blender-shapes": ["preset", "classes"],
        "blender-pose": ["preset", "figures"],
    }
    for name, headline in expected.items():
        spec = load_spec(EXPERIMENTS / name)
        assert spec.headline == headline, name
        assert spec.as_dict()["headline"] == headline
        assert all(p in spec.params for p in spec.headline)


def _copy_family(tmp_path, headline_line: str | None, folder_line: str | None) -> Path:
    shutil.copytree(EXPERIMENTS / "fastai-unity-classify", tmp_path / "fastai-unity-classify")
    family = (EXPERIMENTS / "fastai-unity-family.toml").read_text()
    family = "\n".join(line for line in family.splitlines() if not line.startswith("headline"))
    if headline_line:
        family = headline_line + "\n" + family
    (tmp_path / "fastai-unity-family.toml").write_text(family)
    if folder_line:
        toml = tmp_path / "fastai-unity-classify" / "experiment.toml"
        name, rest = toml.read_text().split("\n", 1)
        toml.write_text(f"{name}\n{folder_line}\n{rest}")
    return tmp_path / "fastai-unity-classify"


def test_unknown_headline_params_are_one_line_errors_naming_the_file(tmp_path):
    from recap.errors import InvalidInput
    from recap.lab.spec import load_spec

    folder = _copy_family(tmp_path, 'headline = ["preset", "epoch"]', None)
    with pytest.raises(InvalidInput) as exc:
        load_spec(folder)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'fastai-unity-family.toml'}: headline: unknown param")
    assert "'epoch'" in msg

    # the folder's own list replaces the family's, and is checked against the merged params
    folder = _copy_family(tmp_path / "b", 'headline = ["preset"]', 'headline = ["lr", "width"]')
    assert load_spec(folder).headline == ["lr", "width"]
    folder = _copy_family(tmp_path / "c", None, 'headline = "lr"')
    with pytest.raises(InvalidInput, match=r"experiment\.toml: headline: expected a list"):
        load_spec(folder)
    folder = _copy_family(tmp_path / "d", None, None)
    assert load_spec(folder).headline == [] and "headline" not in load_spec(folder).as_dict()


def test_exp_show_rejects_a_bad_headline_in_one_line(cli, log_root):
    folder = add_toy(log_root)
    toml = folder / "experiment.toml"
    toml.write_text(
        toml.read_text().replace('headline = ["noise", "lr", "epochs"]', 'headline = ["nois"]')
    )
    r = cli("exp", "show", "toy-regression")
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "headline: unknown param 'nois'" in r.stderr


def test_run_tables_show_headline_params_even_when_equal(cli, db, log_root):
    from recap import db as recap_db
    from recap.site.render import render

    add_toy(log_root)
    for noise in ("0.1", "0.3"):
        r = cli("exp", "run", "toy-regression", "-p", f"noise={noise}", "-p", "epochs=3", "--json")
        assert r.exit_code == 0, r.stderr
    stored = [json.loads(row[0]) for row in db.execute("SELECT params FROM run ORDER BY started")]
    assert [(p["noise"], p["lr"], p["epochs"]) for p in stored] == [(0.1, 0.1, 3), (0.3, 0.1, 3)]
    r = cli("new", "--body-file", "-", input="## Introduction\n\nTwo noises.\n")
    assert r.exit_code == 0, r.stderr
    render(log_root, recap_db.connect(), include_drafts=True)
    posts = list((log_root / "docs/blog/posts").rglob("*.md"))
    text = "\n".join(p.read_text() for p in posts)
    # headline first (lr and epochs are equal in both runs, still shown), seed last
    assert "| noise=0\\.1, lr=0\\.1, epochs=3, seed=0 |" in text
    assert "| noise=0\\.3, lr=0\\.1, epochs=3, seed=0 |" in text
    page = (log_root / "docs/experiments/toy-regression.md").read_text()
    assert "| noise=0\\.3, lr=0\\.1, epochs=3, seed=0 |" in page
    # the terminal view of the entry shows the same key params
    out = cli("show", posts[0].stem).stdout
    assert "noise=0.1, lr=0.1, epochs=3, seed=0" in out
