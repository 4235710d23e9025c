"""Experiment folders: ``experiments/<name>/experiment.toml`` read, checked and typed.

A bad spec is an InvalidInput naming the file and the field, so a typo never turns into a run
with silently wrong settings. Nothing heavy here: ``tomllib`` and ``ast`` only.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recap.errors import InvalidInput, NotFound

SPEC_FILE = "experiment.toml"
TOP_KEYS = {
    "name",
    "extends",
    "project",
    "description",
    "entry",
    "outputs",
    "params",
    "metric",
    "tolerances",
    "ml",
    "headline",
}
PARAM_KEYS = {"type", "default", "help", "choices"}
METRIC_KEYS = {"primary", "direction", "tolerance"}
TYPES = {"int", "float", "str", "bool"}
# Files that never change what a run does: left out of the folder's content hash.
HASH_SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache"}
HASH_SKIP_SUFFIXES = (".pyc", ".pyo")
HASH_SKIP_NAMES = {".DS_Store"}


@dataclass
class Param:
    name: str
    type: str
    default: Any
    help: str = ""
    choices: list | None = None


@dataclass
class Spec:
    name: str
    folder: Path
    project: str
    description: str
    entry_file: str
    entry_func: str
    outputs: list[str]
    params: dict[str, Param]
    primary: str
    direction: str
    tolerance: float
    tolerances: dict[str, float] = field(default_factory=dict)
    # the ML core's section ([ml]: task, presets, ...): read by recap.ml.pipeline
    ml: dict[str, Any] = field(default_factory=dict)
    # the shared family file this spec extends (None: stands alone)
    extends: Path | None = None
    # params always shown in run tables (posts, experiment pages), before those that differ
    headline: list[str] = field(default_factory=list)

    @property
    def entry_is_module(self) -> bool:
        """``entry = "package.module:func"`` (shared code) rather than ``file.py:func``."""
        return not self.entry_file.endswith(".py")

    @property
    def entry(self) -> str:
        return f"{self.entry_file}:{self.entry_func}"

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params.values()}

    def tolerance_for(self, key: str) -> float | None:
        """The absolute tolerance of a summary key for rerun verdicts, None when it has none."""
        if key == self.primary:
            return self.tolerance
        return self.tolerances.get(key)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "project": self.project,
            "description": self.description,
            "entry": self.entry,
            "outputs": self.outputs,
            "params": {
                p.name: {
                    "type": p.type,
                    "default": p.default,
                    "help": p.help,
                    **({"choices": p.choices} if p.choices else {}),
                }
                for p in self.params.values()
            },
            "metric": {
                "primary": self.primary,
                "direction": self.direction,
                "tolerance": self.tolerance,
            },
            "tolerances": self.tolerances,
            **({"ml": self.ml} if self.ml else {}),
            **({"extends": str(self.extends)} if self.extends else {}),
            **({"headline": self.headline} if self.headline else {}),
        }


def _bad(path: Path, field_name: str, why: str) -> InvalidInput:
    return InvalidInput(f"{path}: {field_name}: {why}")


def _check_value(path: Path, where: str, type_: str, value: Any) -> Any:
    """``value`` as ``type_`` (an int is a fine float), or InvalidInput naming the field."""
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }[type_]
    if not ok:
        raise _bad(path, where, f"expected {type_}, got {type(value).__name__} {value!r}")
    return float(value) if type_ == "float" else value


def _number(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _bad(path, where, f"expected a non-negative number, got {value!r}")
    return float(value)


def load_spec(folder: Path) -> Spec:
    """Read and check ``folder/experiment.toml``."""
    folder = Path(folder)
    path = folder / SPEC_FILE
    if not path.is_file():
        raise NotFound(f"no experiment at {folder} ({SPEC_FILE} missing)")
    data = _read_toml(path)
    for key in data:
        if key not in TOP_KEYS:
            raise _bad(path, key, f"unknown key (known: {', '.join(sorted(TOP_KEYS))})")
    extends = None
    headline_file = path
    if "extends" in data:
        if not isinstance(data["extends"], str) or not data["extends"].endswith(".toml"):
            raise _bad(path, "extends", "expected the path of a .toml file (relative to here)")
        extends = (folder / data["extends"]).resolve()
        if not extends.is_file():
            raise _bad(path, "extends", f"{data['extends']} not found ({extends})")
        base = _read_toml(extends)
        for key in base:
            if key not in TOP_KEYS - {"name", "extends"}:
                raise _bad(extends, key, "unknown key (a family file has no name or extends)")
        headline_file = path if "headline" in data else extends
        data = _merge(base, data)

    def text(key: str, required: bool = True) -> str:
        if key not in data:
            if required:
                raise _bad(path, key, "missing")
            return ""
        if not isinstance(data[key], str):
            raise _bad(path, key, f"expected str, got {type(data[key]).__name__}")
        return data[key]

    name = text("name")
    if name != folder.name:
        raise _bad(path, "name", f"{name!r} must equal the folder name {folder.name!r}")
    project, description = text("project", False), text("description", False)

    entry = text("entry")
    entry_file, sep, entry_func = entry.partition(":")
    if not sep or not entry_file or not entry_func.isidentifier():
        raise _bad(path, "entry", f"{entry!r} is not 'file.py:function'")
    if entry_file.endswith(".py"):
        entry_path = folder / entry_file
        if not entry_path.is_file() or folder.resolve() not in entry_path.resolve().parents:
            raise _bad(path, "entry", f"{entry_file} is not a file in {folder}")
        if not _defines(entry_path, entry_func):
            raise _bad(path, "entry", f"{entry_file} defines no function {entry_func}()")
    elif not all(part.isidentifier() for part in entry_file.split(".")):
        raise _bad(path, "entry", f"{entry!r} is not 'file.py:function' or 'package.module:func'")

    outputs = data.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise _bad(path, "outputs", "expected a list of file names or globs")
    for pattern in outputs:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise _bad(path, "outputs", f"{pattern!r} must stay inside the run folder")

    params: dict[str, Param] = {}
    raw_params = data.get("params", {})
    if not isinstance(raw_params, dict):
        raise _bad(path, "params", "expected tables [params.NAME]")
    for pname, table in raw_params.items():
        where = f"params.{pname}"
        if not pname.isidentifier():
            raise _bad(path, where, "a param name must be an identifier")
        if not isinstance(table, dict):
            raise _bad(path, where, "expected a table with type and default")
        for key in table:
            if key not in PARAM_KEYS:
                raise _bad(
                    path, f"{where}.{key}", f"unknown key (known: {', '.join(sorted(PARAM_KEYS))})"
                )
        type_ = table.get("type")
        if type_ not in TYPES:
            raise _bad(path, f"{where}.type", f"{type_!r} is not one of int, float, str, bool")
        if "default" not in table:
            raise _bad(path, f"{where}.default", "missing")
        if type_ == "bool" and table["default"] == "":
            default = ""  # unset: the preset (or the family's defaults) decide, true or false
        else:
            default = _check_value(path, f"{where}.default", type_, table["default"])
        choices = table.get("choices")
        if choices is not None:
            if not isinstance(choices, list) or not choices:
                raise _bad(path, f"{where}.choices", "expected a non-empty list")
            choices = [_check_value(path, f"{where}.choices", type_, c) for c in choices]
            if default not in choices:
                raise _bad(path, f"{where}.default", f"{default!r} is not one of {choices}")
        help_ = table.get("help", "")
        if not isinstance(help_, str):
            raise _bad(path, f"{where}.help", "expected str")
        params[pname] = Param(pname, type_, default, help_, choices)

    metric = data.get("metric")
    if not isinstance(metric, dict):
        raise _bad(path, "metric", "missing table [metric] with primary, direction, tolerance")
    for key in metric:
        if key not in METRIC_KEYS:
            raise _bad(
                path, f"metric.{key}", f"unknown key (known: {', '.join(sorted(METRIC_KEYS))})"
            )
    primary = metric.get("primary")
    if not isinstance(primary, str) or not primary:
        raise _bad(path, "metric.primary", "expected the name of a summary metric")
    direction = metric.get("direction", "min")
    if direction not in ("min", "max"):
        raise _bad(path, "metric.direction", f"{direction!r} is not min or max")
    if "tolerance" not in metric:
        raise _bad(path, "metric.tolerance", "missing")
    tolerance = _number(path, "metric.tolerance", metric["tolerance"])

    tolerances = data.get("tolerances", {})
    if not isinstance(tolerances, dict):
        raise _bad(path, "tolerances", "expected a table of key = number")
    tolerances = {k: _number(path, f"tolerances.{k}", v) for k, v in tolerances.items()}

    ml = data.get("ml", {})
    if not isinstance(ml, dict):
        raise _bad(path, "ml", "expected a table [ml]")
    _check_ml(path, ml, params)
    headline = _headline(headline_file, data.get("headline", []), params)

    return Spec(
        name,
        folder,
        project,
        description,
        entry_file,
        entry_func,
        list(outputs),
        params,
        primary,
        direction,
        tolerance,
        tolerances,
        ml,
        extends,
        headline,
    )


def _headline(path: Path, value: Any, params: dict[str, Param]) -> list[str]:
    """``headline = ["param", ...]``: names of declared params, each once."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(path, "headline", "expected a list of param names")
    unknown = [v for v in value if v not in params]
    if unknown:
        known = ", ".join(params) or "none"
        raise _bad(path, "headline", f"unknown param {unknown[0]!r} (params: {known})")
    return list(dict.fromkeys(value))


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text") from exc


def _merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, tables merged key by key (a folder states only what differs)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_ml(path: Path, ml: dict, params: dict[str, Param]) -> None:
    """[ml]: the task and the default targets must be registered plug-ins; presets are tables.

    The registries import only light modules (no torch), so this stays cheap.
    """
    if not ml:
        return
    task = ml.get("task")
    if not isinstance(task, str):
        raise _bad(path, "ml.task", "expected the name of a task")
    from recap.ml import targets, tasks

    try:
        tasks.get_task(task)
        if "targets" in params:
            targets.parse(params["targets"].default)
    except InvalidInput as exc:
        raise _bad(path, "ml", str(exc)) from None
    presets = ml.get("presets", {})
    if not isinstance(presets, dict) or not all(isinstance(v, dict) for v in presets.values()):
        raise _bad(path, "ml.presets", "expected tables [ml.presets.NAME]")
    for pname, values in presets.items():
        for key, value in values.items():
            where = f"ml.presets.{pname}.{key}"
            if key not in params:
                raise _bad(path, where, "a preset sets declared params only (add [params.KEY])")
            _check_value(path, where, params[key].type, value)


def _defines(path: Path, func: str) -> bool:
    """Whether ``path`` defines ``func`` at module level (read with ast: nothing is imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        # A broken file is the child's to report, with its traceback.
        return True
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == func:
            return True
        if isinstance(node, ast.Assign | ast.ImportFrom | ast.Import):
            names = [getattr(t, "id", None) for t in getattr(node, "targets", [])]
            names += [a.asname or a.name for a in getattr(node, "names", [])]
            if func in names:
                return True
    return False


def experiment_folder(name: str, root: Path | None = None) -> Path:
    from recap import paths

    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InvalidInput(f"{name!r} is not an experiment name")
    folder = paths.experiments_dir(root) / name
    if not (folder / SPEC_FILE).is_file():
        known = [s.name for s in iter_folders(root)]
        hint = f" (known: {', '.join(known)})" if known else " (experiments/ has none)"
        raise NotFound(f"no experiment {name!r} in {paths.experiments_dir(root)}{hint}")
    return folder


def iter_folders(root: Path | None = None) -> list[Path]:
    from recap import paths

    base = paths.experiments_dir(root)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / SPEC_FILE).is_file())


def parse_params(
    spec: Spec, pairs: list[str] | dict, lenient: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Defaults overlaid with ``key=value`` strings (or a recorded dict), typed and checked.

    Returns (params, warnings). ``lenient`` (reruns of recorded params) drops params the spec no
    longer has with a warning instead of failing.
    """
    params = spec.defaults()
    warnings: list[str] = []
    items: list[tuple[str, Any]]
    if isinstance(pairs, dict):
        items = list(pairs.items())
    else:
        items = []
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise InvalidInput(f"-p {pair!r}: expected key=value")
            items.append((key.strip(), value))
    dropped = []
    for key, value in items:
        param = spec.params.get(key)
        if param is None:
            if lenient:
                dropped.append(key)
                continue
            known = ", ".join(spec.params) or "none"
            raise InvalidInput(f"unknown param {key!r} for {spec.name} (known: {known})")
        params[key] = coerce(param, value)
    if dropped:  # one line for all of them: a replay of an old record may carry many
        warnings.append(
            f"recorded param{'s' if len(dropped) > 1 else ''} {', '.join(dropped)} no longer "
            f"declared by {spec.name}; dropped"
        )
    return params, warnings


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def coerce(param: Param, value: Any) -> Any:
    """A param value from the command line (text) or a record (JSON) as the param's type."""
    where = f"param {param.name} ({param.type})"
    try:
        if param.type == "bool":
            if isinstance(value, bool):
                out = value
            elif value == "" and param.default == "":
                out = ""  # -p KEY= : back to the preset's choice
            elif str(value).strip().lower() in _TRUE:
                out = True
            elif str(value).strip().lower() in _FALSE:
                out = False
            else:
                raise ValueError
        elif param.type == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out = int(value) if not isinstance(value, str) else int(value.strip(), 0)
        elif param.type == "float":
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
        else:
            out = str(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{where}: {value!r} is not a valid {param.type}") from None
    if param.choices is not None and out not in param.choices:
        raise InvalidInput(f"{where}: {out!r} is not one of {param.choices}")
    return out


def folder_hash(folder: Path) -> str:
    """A content hash of an experiment folder: every file's relative path and bytes."""
    h = hashlib.sha256()
    folder = Path(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in HASH_SKIP_DIRS)
        for name in sorted(filenames):
            if name in HASH_SKIP_NAMES or name.endswith(HASH_SKIP_SUFFIXES):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(folder).as_posix()
            h.update(rel.encode() + b"\0")
            with open(full, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _hash_tree(h, base: Path, label: str) -> None:
    """Every ``.py`` file under ``base`` (or ``base`` itself): relative path and bytes."""
    files = [base] if base.is_file() else sorted(base.rglob("*.py"))
    for f in files:
        if any(part in HASH_SKIP_DIRS for part in f.parts):
            continue
        rel = f.name if base.is_file() else f.relative_to(base).as_posix()
        h.update(f"{label}/{rel}".encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())


def local_modules(spec: Spec, root: Path | None = None) -> list[Path]:
    """Source files of modules the experiment's Python files import that live outside installed
    packages (a helper beside the experiments, in the log root): code that changes what runs.

    Found with ``ast`` and the path finder: nothing is imported.
    """
    import importlib.machinery
    import sys

    folder = spec.folder.resolve()
    names: set[str] = set()
    for f in sorted(folder.rglob("*.py")):
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    installed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    search = [str(folder), *([str(root)] if root else []), *sys.path]
    out = []
    for name in sorted(names - set(sys.stdlib_module_names) - {"recap"}):
        if (folder / f"{name}.py").exists() or (folder / name).is_dir():
            continue  # the folder's own modules are in its content hash
        try:
            found = importlib.machinery.PathFinder.find_spec(name, search)
        except (ImportError, ValueError):
            continue
        if found is None or not found.origin or found.origin in ("built-in", "frozen"):
            continue
        origin = Path(found.origin).resolve()
        if any(p in origin.parents for p in installed) or "site-packages" in origin.parts:
            continue
        out.append(origin.parent if origin.name == "__init__.py" else origin)
    return out


def core_dir() -> Path:
    """The source folder of recap's ML core (hashed into every cache key)."""
    return Path(__file__).resolve().parents[1] / "ml"


def code_hash(spec: Spec, root: Path | None = None) -> str:
    """A hash of the code a run of ``spec`` executes besides its folder: the source of recap's ML
    core (``recap/ml``), the family file it extends, and local modules it imports. Part of the
    cache key, so an edited core never returns a stale cached run."""
    h = hashlib.sha256()
    _hash_tree(h, core_dir(), "recap/ml")
    if spec.extends is not None:
        _hash_tree(h, spec.extends, "extends")
    for path in local_modules(spec, root):
        _hash_tree(h, path, f"local/{path.name}")
    return h.hexdigest()
