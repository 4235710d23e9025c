"""Typed errors. The library raises these; only the CLI edge turns them into one line and an
exit code."""


class RecapError(Exception):
    """Base of every error recap reports to the user as one line."""

    exit_code = 1


class NotFound(RecapError):
    exit_code = 2


class InvalidInput(RecapError):
    exit_code = 2

    @classmethod
    def param(cls, params: dict, key: str, why: str) -> "InvalidInput":
        """``key=value: why``: a param's value that a run would only reject later."""
        return cls(f"{key}={params.get(key)!r}: {why}")


class NoLogRoot(RecapError):
    exit_code = 3


class SchemaTooNew(RecapError):
    exit_code = 4


class MissingExtra(RecapError):
    """A command needs an optional extra (ml, site, blender) that is not installed."""

    exit_code = 5

    def __init__(self, extra: str, module: str):
        super().__init__(
            f"this needs the '{extra}' extra ({module} is not installed): "
            f"pip install 'recap[{extra}]'"
        )
        self.extra = extra
        self.module = module


class NotReproduced(RecapError):
    exit_code = 6


class PartialFailure(RecapError):
    """Some items of a batch (feeds, links) failed; the rest went through."""

    exit_code = 7


def require(module: str, extra: str):
    """Import an optional heavy module, or raise MissingExtra naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(extra, module.split(".")[0]) from exc
