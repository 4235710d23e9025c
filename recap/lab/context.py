"""The run context: the one object experiment code and ``recap.ml`` talk to.

It imports nothing from the database layer. Everything it is told goes, as JSON lines, to
``events.jsonl`` in the run's output folder; the parent process (``recap exp run``) turns those into
Metric and Artifact rows in batches. The same object works in a notebook:
``RunContext.standalone("out", {"lr": 1e-3})``.

Event lines (one JSON object each, ``type`` first):

- ``{"type": "metric", "key", "value", "step", "epoch", "time"}``
- ``{"type": "summary", "key", "value"}``        (summary metrics; the last value wins)
- ``{"type": "artifact", "path", "kind", "metadata"}``  (path relative to the output folder)
- ``{"type": "flag", "name", "message"}``         (e.g. a key-point model no better than the mean)
- ``{"type": "params", "values"}``                (the resolved params that trained the model)
- ``{"type": "distributed", ...}``                 (world size, backend, devices, batch/LR rule)
- ``{"type": "progress", "epoch", "epochs", "values", "eta", "line"}``  (one per epoch; the
  same line is printed to stdout, which is the run's ``run.log``; :meth:`RunContext.note`
  sends ``line`` alone for other long work, such as rendering)

A run launched over several processes (``--processes N``) has one context per rank; only rank
0's writes anything (``is_main``), so the other ranks' reports are reduced, never duplicated.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from recap.timeutil import clock

EVENTS = "events.jsonl"
# Events are buffered (a metric costs about a microsecond), but written out at least this often
# while a run keeps logging: a SIGKILLed or out-of-memory child loses at most this much.
FLUSH_SECONDS = 1.0


class RunContext:
    def __init__(
        self,
        params: dict[str, Any],
        out_dir: Path,
        seed: int = 0,
        device: str = "cpu",
        run_id: str | None = None,
        folder: Path | None = None,
        rank: int = 0,
        local_rank: int = 0,
        world_size: int = 1,
        dist: dict | None = None,
    ):
        self.params = dict(params)
        # the process's place in a distributed run (0, 0, 1 for a plain run); ``dist`` is how the
        # run was launched (backend, LR rule), as the runner's job file says
        self.rank, self.local_rank, self.world_size = rank, local_rank, world_size
        self.dist = dict(dist or {})
        self.distributed: dict[str, Any] = {}
        # the experiment folder (None outside ``recap exp run``): shared entry points read it
        self.folder = Path(folder) if folder is not None else None
        self.seed = seed
        self.device = device
        self.run_id = run_id
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.summary: dict[str, Any] = {}
        self.flags: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._progress_t0 = time.monotonic()  # reset by start_progress() when training starts
        self._flushed = time.time()
        # ranks other than 0 write nothing: a sink that swallows their events
        self._events = (
            open(self.out_dir / EVENTS, "a", encoding="utf-8", buffering=1 << 16)
            if self.is_main
            else open(os.devnull, "w", encoding="utf-8")
        )

    @property
    def is_main(self) -> bool:
        """Whether this process reports for the run (rank 0, or a plain run)."""
        return self.rank == 0

    @classmethod
    def standalone(
        cls,
        out_dir,
        params: dict | None = None,
        seed: int = 0,
        device: str = "cpu",
        folder: Path | None = None,
    ):
        """A context for a notebook or a script outside ``recap exp run``."""
        return cls(params or {}, Path(out_dir), seed=seed, device=device, folder=folder)

    # -- reporting ----------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        self._events.write(_ENCODER.encode(event) + "\n")
        self._flush_if_due(time.time())

    def _flush_if_due(self, now: float) -> None:
        if now - self._flushed >= FLUSH_SECONDS:
            self._events.flush()
            self._flushed = now

    def log_metric(
        self, key: str, value: float, step: int | None = None, epoch: int | None = None
    ) -> None:
        value = float(value)
        # The hot path of a training loop: plain ints and finite floats are written directly
        # (repr of a finite float is valid JSON); anything else goes through the encoder.
        if (
            value - value == 0.0
            and type(key) is str
            and (step is None or type(step) is int)
            and (epoch is None or type(epoch) is int)
        ):
            k = self._keys.get(key)
            if k is None:
                k = self._keys[key] = _ENCODER.encode(key)
            now = time.time()
            self._events.write(
                f'{{"type": "metric", "key": {k}, "value": {value!r}, '
                f'"step": {"null" if step is None else step}, '
                f'"epoch": {"null" if epoch is None else epoch}, "time": {now!r}}}\n'
            )
            self._flush_if_due(now)
            return
        self._emit(
            {
                "type": "metric",
                "key": key,
                "value": value,
                "step": step,
                "epoch": epoch,
                "time": time.time(),
            }
        )

    def log_metrics(
        self, values: dict[str, float], step: int | None = None, epoch: int | None = None
    ) -> None:
        for key, value in values.items():
            self.log_metric(key, value, step=step, epoch=epoch)

    def start_progress(self) -> None:
        """Start the clock that :meth:`progress` estimates the time left from."""
        self._progress_t0 = time.monotonic()

    def progress(self, epoch: int, n_epochs: int, **values: float) -> str:
        """One line per finished epoch (``epoch`` counts from 1): losses, metrics, images/s and
        the time left, printed to stdout (the run's log) and sent to ``recap exp run``'s spinner.
        """
        epoch, n_epochs = int(epoch), int(n_epochs)
        elapsed = time.monotonic() - self._progress_t0
        eta = elapsed / max(epoch, 1) * max(n_epochs - epoch, 0)
        parts = [f"epoch {epoch}/{n_epochs}", *(f"{k}={_short(v)}" for k, v in values.items())]
        line = "  ".join([*parts, f"ETA {clock(eta)}"])
        self.note(line, epoch=epoch, epochs=n_epochs, values=values, eta=eta)
        return line

    def note(self, line: str, **event: Any) -> None:
        """One line of progress: printed to stdout (the run's log, rank 0 only, so one line and
        not one per rank) and shown by ``recap exp run``'s spinner. The run context is the only
        place a run's code talks to the terminal."""
        if self.is_main:
            print(line, flush=True)
        self._emit({"type": "progress", **event, "line": line})
        self._events.flush()  # once an epoch: the record keeps up with the log
        self._flushed = time.time()

    def set_summary(self, key: str, value: Any) -> None:
        """A summary metric of the run (the primary metric, parity figures, ...)."""
        self.summary[key] = value
        self._emit({"type": "summary", "key": key, "value": value})

    def experiment_spec(self, folder: Path | None = None) -> dict:
        """The experiment's checked spec (``experiment.toml`` merged with the family file it
        extends) as a dict: shared entry points such as ``recap.ml.pipeline`` read it here."""
        from recap.lab.spec import load_spec

        return load_spec(Path(folder) if folder is not None else self.folder).as_dict()

    def record_params(self, values: dict[str, Any]) -> None:
        """The params as resolved by the experiment (presets filled in): the run record's params."""
        self.params = dict(values)
        self._emit({"type": "params", "values": self.params})

    def record_distributed(self, values: dict[str, Any]) -> None:
        """How a multi-process run ran (world size, backend, devices, effective batch and LR)."""
        self.distributed = dict(values)
        self._emit({"type": "distributed", **self.distributed})

    def flag(self, name: str, message: str) -> None:
        """Raise a warning that belongs in the run record and the post."""
        self.flags[name] = message
        self._emit({"type": "flag", "name": name, "message": message})

    def save_artifact(
        self, path: str | Path, kind: str = "file", metadata: dict | None = None
    ) -> Path:
        """Record a file the run wrote (inside the output folder) as an artifact."""
        path = Path(path)
        full = path if path.is_absolute() else self.out_dir / path
        full = full.resolve()
        rel = full.relative_to(self.out_dir.resolve())
        self._emit(
            {"type": "artifact", "path": rel.as_posix(), "kind": kind, "metadata": metadata or {}}
        )
        return full

    def path(self, name: str) -> Path:
        """A path inside the output folder, its parent folders made."""
        p = self.out_dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def seed_everything(self) -> None:
        """Seed Python, and numpy / torch when they are already imported."""
        import sys

        random.seed(self.seed)
        os.environ.setdefault("PYTHONHASHSEED", str(self.seed))
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(self.seed)
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(self.seed)

    def close(self) -> None:
        if not self._events.closed:
            self._events.flush()
            self._events.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_events(out_dir: Path) -> list[dict]:
    """Every event a run emitted (a torn last line from a killed child is skipped)."""
    events = []
    try:
        with open(Path(out_dir) / EVENTS, encoding="utf-8") as fh:
            for line in fh:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return events


def _short(value) -> str:
    """A metric as a progress line shows it: 4 significant digits, whole numbers for big ones."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _jsonable(value):
    """numpy / torch scalars, paths and anything else as JSON-able values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return value.as_posix()
    return str(value)


_ENCODER = json.JSONEncoder(default=_jsonable)
