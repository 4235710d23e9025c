"""ISO weeks: parsing ``2021-W03`` and dates, and a week's bounds."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from recap.errors import InvalidInput

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_week(text: str) -> tuple[int, int]:
    m = _WEEK.match(text.strip())
    if not m:
        raise InvalidInput(f"unknown week format {text!r}: expected YYYY-Www, e.g. 2021-W03")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a week of {year}") from None
    return year, week


def parse_date(text: str) -> date:
    """A date as YYYY-MM-DD, padded or not (Jekyll writes 2021-1-24)."""
    m = _DATE.match(str(text).strip()[:10])
    if not m:
        raise InvalidInput(f"unknown date format {text!r}: expected YYYY-MM-DD")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not a date: {exc}") from None


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def normalise_week(text: str) -> str:
    year, week = parse_week(text)
    return f"{year}-W{week:02d}"


def week_bounds(week: str) -> tuple[date, date]:
    """(Monday, the Monday after) of an ISO week."""
    year, number = parse_week(week)
    monday = date.fromisocalendar(year, number, 1)
    return monday, monday + timedelta(days=7)


def week_end(week: str) -> date:
    """The Sunday that closes the week: the natural date of its recap."""
    return week_bounds(week)[1] - timedelta(days=1)


def today() -> date:
    return datetime.now().date()
