"""``data=run:<id>``: a dataset made by a recorded run, handed to a training run by its id.

The recording parent (``runner.run_experiment``) resolves the reference before the child starts:
the recorded params keep ``run:<full id>`` (so the cache key and ``recap rerun`` name the dataset
run, never a path), the child receives the dataset run's manifest path, and the training run's
environment records which dataset run fed it (``data_run``, its experiment, manifest and the
set's sha256).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from recap.errors import InvalidInput, NotFound

PREFIX = "run:"
MANIFESTS = ("manifest.csv", "manifest.json")


def is_run_ref(value) -> bool:
    return isinstance(value, str) and value.strip().startswith(PREFIX)


def dataset_of(conn: sqlite3.Connection, ref: str, root: Path | None = None) -> dict:
    """The dataset run ``ref`` names (an id, or a unique prefix or suffix of one): its id,
    experiment, folder, manifest and sha256. Raises NotFound / InvalidInput when it is no
    finished dataset."""
    from recap import paths
    from recap.lab.records import resolve_run

    run_id = resolve_run(conn, ref)
    row = conn.execute(
        "SELECT run.status, experiment.name FROM run JOIN experiment "
        "ON experiment.id = run.experiment_id WHERE run.id = ?",
        (run_id,),
    ).fetchone()
    status, name = row[0], row[1]
    if status != "succeeded":
        raise InvalidInput(f"data run {run_id} ({name}) is {status}: only a finished run is data")
    folder = paths.runs_dir(root) / name / run_id
    manifest = next((folder / m for m in MANIFESTS if (folder / m).is_file()), None)
    if manifest is None:
        raise NotFound(f"data run {run_id} ({name}) has no manifest.csv in {folder}")
    sha = None
    try:
        sha = json.loads((folder / "dataset.json").read_text(encoding="utf-8")).get("sha256")
    except (OSError, json.JSONDecodeError):
        pass
    return {
        "id": run_id,
        "experiment": name,
        "folder": folder,
        "manifest": manifest.resolve(),
        "sha256": sha,
    }


def resolve_data(
    conn: sqlite3.Connection, values: dict, root: Path | None = None
) -> tuple[dict, dict, dict]:
    """(params to record, params for the child, environment to record) for a run's params.

    Params without ``data=run:...`` come back unchanged with nothing to record.
    """
    data = values.get("data")
    if not is_run_ref(data):
        return values, values, {}
    ref = data.strip()[len(PREFIX) :].strip()
    if not ref:
        raise InvalidInput("data=run: needs a run id, e.g. data=run:20260101-120000-abc123")
    ds = dataset_of(conn, ref, root)
    recorded = {**values, "data": PREFIX + ds["id"]}
    child = {**values, "data": str(ds["manifest"])}
    env = {
        "data_run": ds["id"],
        "data_experiment": ds["experiment"],
        "data_manifest": str(ds["manifest"]),
        "data_sha256": ds["sha256"],
    }
    return recorded, child, env


def shard_folders(refs: list[str]) -> list[Path]:
    """Run ids (or unique prefixes) or folders, as the folders holding their ``dataset.json``."""
    folders = []
    conn = None
    for ref in refs:
        path = Path(ref).expanduser()
        if path.is_dir():
            folders.append(path)
            continue
        if conn is None:
            from recap import db

            conn = db.connect()
        folders.append(dataset_of(conn, ref)["folder"])
    return folders


def keep_run_ref(params: dict, environment: dict) -> dict:
    """Params an experiment reported back (presets filled in), with ``data`` put back to
    ``run:<id>`` when the run was fed by a dataset run (the child only saw the manifest path)."""
    data_run = environment.get("data_run")
    if data_run and "data" in params:
        return {**params, "data": PREFIX + data_run}
    return params
