"""Engine targets as plug-ins: ONNX profiles (barracuda, sentis, latest) and TorchScript.

``get_target(name)`` returns the target object; an unknown name is one InvalidInput listing the
known ones. The CLI (``recap exp export --target``), the spec checks and the pipeline all read
this one registry. A target module ends with ``PLUGINS = (...)``; code outside the package calls
``register(MyTarget())``. The contract is :class:`recap.ml.targets.base.Target`.
"""

from __future__ import annotations

from recap.ml.registry import Registry

REGISTRY = Registry("target", __name__)


def get_target(name: str):
    """The registered target called ``name`` (InvalidInput listing the known names if none)."""
    return REGISTRY.get(name)


def register(target, replace: bool = False):
    """Add a target object (anything implementing :class:`~recap.ml.targets.base.Target`)."""
    return REGISTRY.register(target, replace=replace)


def unregister(name: str) -> None:
    REGISTRY.unregister(name)


def names() -> list[str]:
    return REGISTRY.names()


def parse(text: str | list[str]) -> list:
    """Targets named in a comma-separated text (``-p targets=barracuda,torchscript``) or a list."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [get_target(t.strip()) for t in items if t.strip()]
