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
