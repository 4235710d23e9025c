"""Tasks as plug-ins: one module each (classify, multilabel, keypoint; style and pose next).

``get_task(name)`` returns the task object; an unknown name is one InvalidInput listing the
known ones. A task module ends with ``PLUGINS = (MyTask(),)``; code outside the package (a test,
a user's own package) calls ``register(MyTask())``. The contract: :class:`.base.Task`.
"""

from __future__ import annotations

from recap.ml.registry import Registry

REGISTRY = Registry("task", __name__)


def get_task(name: str):
    """The registered task called ``name`` (InvalidInput listing the known names if none)."""
    return REGISTRY.get(name)


def register(task, replace: bool = False):
    """Add a task object (anything implementing :class:`~recap.ml.tasks.base.Task`)."""
    return REGISTRY.register(task, replace=replace)


def unregister(name: str) -> None:
    REGISTRY.unregister(name)


def names() -> list[str]:
    return REGISTRY.names()
