"""Timestamps stored as integers (migration m004), read back as the exact text that was written.

recap writes UTC stamps as ``2021-01-25T10:00:00.123Z`` (24 characters). Columns declared
``STAMP`` hold such a stamp as its milliseconds since 1970 (an integer of 6 bytes on disk); the
database's own triggers do the conversion, so a writer may keep binding text. A value that is not
in that exact form is kept as the text it was: nothing is ever lost or reformatted. Connections
made by :func:`recap.db.connect` turn the integers back into the text on read (a converter for the
declared type), so ``row["added"]`` is the same string before and after the migration.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The SQL that turns a canonical stamp into milliseconds, and the test that it is canonical
# (SQLite prints it back identically). ``{x}`` is the value.
SQL_IS_CANONICAL = (
    "(typeof({x}) = 'text' AND {x} GLOB "
    "'[1-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
    " AND strftime('%Y-%m-%dT%H:%M:%S', CAST(strftime('%s', {x}) AS INTEGER), 'unixepoch')"
    " || substr({x}, 20) = {x})"
)
SQL_TO_MS = "(CAST(strftime('%s', {x}) AS INTEGER) * 1000 + CAST(substr({x}, 21, 3) AS INTEGER))"


def sql_encode(x: str) -> str:
    """SQL expression: the value as milliseconds when it is a canonical stamp, else unchanged."""
    return f"CASE WHEN {SQL_IS_CANONICAL.format(x=x)} THEN {SQL_TO_MS.format(x=x)} ELSE {x} END"


def from_ms(ms: int) -> str:
    # Hot on every read of a STAMP column (the converter below): the "YYYY-MM-DDTHH:" part is
    # cached per hour and the rest comes from tables, about five times faster than formatting
    # gmtime() each time. Hours are whole in UTC, so the text is exactly gmtime's.
    seconds, milli = divmod(int(ms), 1000)
    hour, sec = divmod(seconds, 3600)
    prefix = _HOURS.get(hour)
    if prefix is None:
        prefix = _hour(hour)
    return prefix + _MIN_SEC[sec] + _MILLI[milli]


def _hour(hour: int) -> str:
    t = time.gmtime(hour * 3600)
    prefix = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:"
    if len(_HOURS) >= 1 << 16:
        _HOURS.clear()
    _HOURS[hour] = prefix
    return prefix


_HOURS: dict[int, str] = {}
_MIN_SEC = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
_MILLI = [f".{m:03d}Z" for m in range(1000)]


def to_ms(stamp: str) -> int:
    """A canonical stamp (``recap.timeutil.stamp``) as milliseconds since 1970 (UTC)."""
    dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


_CANONICAL = re.compile(r"[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def encode(value):
    """What a STAMP column stores for ``value``: milliseconds for a canonical stamp (when it
    reads back identically), anything else unchanged. The triggers do the same in SQL."""
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        try:
            ms = to_ms(value)
        except ValueError:
            return value
        if from_ms(ms) == value:
            return ms
    return value


def convert(raw: bytes) -> str:
    """sqlite3 converter for STAMP columns: an integer becomes its stamp; text stays as is."""
    if raw[:1].isdigit() or raw[:1] == b"-":
        try:
            ms = int(raw)
        except ValueError:
            return raw.decode("utf-8", "surrogateescape")
        # from_ms, inlined: this runs for every stamp of every row read.
        seconds, milli = divmod(ms, 1000)
        hour, sec = divmod(seconds, 3600)
        return (_HOURS.get(hour) or _hour(hour)) + _MIN_SEC[sec] + _MILLI[milli]
    return raw.decode("utf-8", "surrogateescape")
