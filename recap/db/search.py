"""How a search query becomes SQL over the trigram FTS5 indexes (migration m003).

The trigram tokenizer matches substrings in any script, but a term shorter than three characters
matches nothing through the index; such queries are answered with LIKE instead. Plain words become
quoted terms (``c++`` and ``foo-bar`` just work); a query written in FTS5 syntax (quotes,
AND/OR/NOT, prefix*, column:) is passed through as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from recap.errors import InvalidInput

_FTS_SYNTAX = re.compile(r'["()*:^]|\b(AND|OR|NOT|NEAR)\b')
TRIGRAM = 3


@dataclass(frozen=True)
class Plan:
    """``kind`` is "fts" (``expr`` is an FTS5 expression) or "like" (``words`` must all occur)."""

    kind: str
    expr: str = ""
    words: tuple[str, ...] = ()


def plan(query: str) -> Plan:
    if not query or not query.strip():
        raise InvalidInput("empty search query")
    if _FTS_SYNTAX.search(query):
        return Plan("fts", expr=query)
    words = tuple(query.split())
    if any(len(w) < TRIGRAM for w in words):
        return Plan("like", words=words)
    return Plan("fts", expr=" ".join('"' + w.replace('"', '""') + '"' for w in words))


def like_where(columns: tuple[str, ...], words: tuple[str, ...]) -> tuple[str, list[str]]:
    """A WHERE clause: every word occurs (case-insensitively for ASCII) in one of ``columns``."""
    clauses, args = [], []
    for word in words:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"
        clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
        args += [pattern] * len(columns)
    return " AND ".join(clauses), args


def malformed(exc: Exception, query: str) -> InvalidInput:
    return InvalidInput(f'malformed search query {query!r} ({exc}); quote phrases with "..."')
