"""Untrusted text (feed items, page titles, imports) into Markdown that stays plain text.

Everything that did not come from the user's own pen goes through these before it reaches a page:
HTML is entity-escaped, Markdown structure characters are backslash-escaped, and only http(s) and
mailto URLs are ever emitted as links.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

# Characters that start Markdown structure anywhere in a line (links, emphasis, code, attr lists,
# tables, html) and at the start of one (headings, lists, quotes, front matter, excerpt markers).
_INLINE = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>:=&\"'$^])")
_WS = re.compile(r"\s+")
SAFE_SCHEMES = {"http", "https", "mailto"}


def text(value: str | None, limit: int | None = 300) -> str:
    """One line of untrusted text as inert Markdown: no HTML, no links, no structure."""
    value = _WS.sub(" ", value or "").strip()
    if limit and len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    # Escape HTML first (so '<' can never open a tag), then the Markdown punctuation.
    value = html.escape(value, quote=True)
    return _INLINE.sub(lambda m: "\\" + m.group(1) if m.group(1) not in "&" else "&", value)


def url(value: str | None) -> str | None:
    """The URL if it is safe to link to (http, https, mailto), percent-escaped for Markdown."""
    if not value:
        return None
    value = value.strip()
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return None
    if scheme not in SAFE_SCHEMES:
        return None
    # Characters that could end the Markdown link target or open markup are percent-encoded.
    return "".join(
        c if c not in ' <>()[]"\'`\\{}' else f"%{ord(c):02X}" for c in value if c >= " "
    )


def link(title: str | None, href: str | None) -> str:
    """``[title](href)`` with both parts made safe; plain escaped text when the URL is not safe."""
    label = text(title or href or "")
    safe = url(href)
    return f"[{label}](<{safe}>)" if safe else label


def domain(href: str | None) -> str:
    try:
        host = urlsplit(href or "").hostname or ""
    except ValueError:
        host = ""
    return text(host.removeprefix("www."))
