"""The clock, injectable: tests pass their own ``now``."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def stamp(dt: datetime | None = None) -> str:
    """An ISO-8601 UTC timestamp with milliseconds, sortable as text."""
    dt = dt or utcnow()
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def clock(seconds: float) -> str:
    """A duration as ``H:MM:SS`` (an ETA in progress lines)."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
