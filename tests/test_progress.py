"""Progress you can watch: one ``epoch N/M ... ETA`` line per epoch in run.log and on the spinner."""

from __future__ import annotations

import json
import re

import pytest
from test_lab_support import add_toy

LINE = re.compile(r"^epoch (\d+)/(\d+)  (.*)  ETA \d+:\d\d:\d\d$")


def test_context_progress_prints_the_line_and_emits_an_event(tmp_path, capsys):
    from recap.lab.context import RunContext, read_events

    with RunContext.standalone(tmp_path / "out") as ctx:
        ctx.start_progress()
        line = ctx.progress(1, 4, train_loss=0.123456, **{"images/s": 1234.56})
    assert line == capsys.readouterr().out.strip()
    assert LINE.match(line) and line.startswith("epoch 1/4  train_loss=0.1235  images/s=1235  ETA")
    (event,) = read_events(tmp_path / "out")
    assert event["type"] == "progress" and (event["epoch"], event["epochs"]) == (1, 4)
    assert event["values"] == {"train_loss": 0.123456, "images/s": 1234.56}
    assert event["line"] == line and event["eta"] >= 0


def test_run_log_has_a_line_per_epoch_and_the_spinner_shows_it(cli, db, log_root, monkeypatch):
    import typer.testing

    # the spinner only draws on a terminal: make the test's streams say they are one
    monkeypatch.setattr(typer.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    add_toy(log_root)
    r = cli("exp", "run", "toy-regression", "-p", "epochs=3", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    log = (log_root / "runs" / "toy-regression" / rec["id"] / "run.log").read_text()
    lines = [m for m in map(LINE.match, log.splitlines()) if m]
    assert [(m[1], m[2]) for m in lines] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert all("train_mse=" in m[3] and "val_mse=" in m[3] for m in lines)
    # the spinner's description is the same line (the last epoch's, at least)
    assert re.search(r"epoch 3/3  train_mse=\S+  val_mse=\S+  ETA 0:00:00", r.stderr), r.stderr
    # progress lines are not metrics: 3 epochs x 2 metrics stored
    assert (
        db.execute("SELECT count(*) FROM metric WHERE run_id = ?", (rec["id"],)).fetchone()[0] == 6
    )


@pytest.mark.slow
def test_fastai_callback_reports_a_line_per_epoch(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    pytest.importorskip("fastai")
    from fastai.data.core import DataLoaders
    from torch.utils.data import DataLoader, TensorDataset

    from recap.lab.context import RunContext, read_events
    from recap.ml import train

    x = torch.randn(64, 3)
    ds = TensorDataset(x, x.sum(1, keepdim=True))
    dls = DataLoaders(DataLoader(ds, batch_size=16), DataLoader(ds, batch_size=16))
    with RunContext.standalone(tmp_path / "out") as ctx:
        learn = train.make_learner(dls, torch.nn.Linear(3, 1), train.MSEFlat(), ctx=ctx)
        train.fit(learn, 2, 1e-2)
    printed = [line for line in capsys.readouterr().out.splitlines() if LINE.match(line)]
    assert [line.split("  ")[0] for line in printed] == ["epoch 1/2", "epoch 2/2"]
    assert "train_loss=" in printed[0] and "valid_loss=" in printed[0]
    assert "images/s=" in printed[0]
    progress = [e for e in read_events(tmp_path / "out") if e["type"] == "progress"]
    assert [e["line"] for e in progress] == printed
