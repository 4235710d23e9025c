"""A small plug-in registry shared by tasks (``recap.ml.tasks``) and targets (``recap.ml.targets``).

Built-in plug-ins are the modules of the package: every module whose name does not start with
``_`` and is not ``base`` is imported on first use and contributes what its ``PLUGINS`` tuple
holds (objects with a ``name``). Those modules import nothing heavy at module level (torch and
fastai load inside methods), so listing the names costs milliseconds. Anything else (a test, a
notebook, a user's own package) adds a plug-in with :meth:`Registry.register`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


class Registry:
    """Plug-ins of one kind by name; an unknown name is one InvalidInput listing the known ones."""

    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self._items: dict[str, Any] = {}
        self._loaded = False

    def _load_builtin(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.name.startswith("_") or info.name == "base":
                continue
            module = importlib.import_module(f"{self.package}.{info.name}")
            for obj in getattr(module, "PLUGINS", ()):
                self._items.setdefault(obj.name, obj)

    def register(self, obj: Any, replace: bool = False) -> Any:
        """Add ``obj`` (anything with a ``name``) under its name; returns it (usable as a decorator
        on a class when it is instantiated first: ``register(MyTask())``)."""
        from recap.errors import InvalidInput

        self._load_builtin()
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInput(f"a {self.kind} needs a name that is an identifier, got {name!r}")
        if name in self._items and not replace and self._items[name] is not obj:
            raise InvalidInput(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def get(self, name: str) -> Any:
        from recap.errors import InvalidInput

        self._load_builtin()
        obj = self._items.get(str(name))
        if obj is None:
            known = ", ".join(self.names()) or "none"
            raise InvalidInput(f"unknown {self.kind} {name!r} (known: {known})")
        return obj

    def names(self) -> list[str]:
        self._load_builtin()
        return sorted(self._items)

    def all(self) -> list[Any]:
        return [self._items[n] for n in self.names()]
