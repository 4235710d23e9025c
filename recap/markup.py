"""Untrusted text (feed items, page titles, imports) into Markdown that stays plain text.

Everything that did not come from the user's own pen goes through these before it reaches a page:
HTML is entity-escaped, Markdown structure characters are backslash-escaped, and only http(s) and
mailto URLs are ever emitted as links.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

# Exactly the characters Python-Markdown (with the tables extension) treats as escapable: a
# backslash before any other character would be shown literally on the page.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>])")
_WS = re.compile(r"\s+")
SAFE_SCHEMES = {"http", "https", "mailto"}
# Image references in Markdown and in raw HTML (imported posts use both).
MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_IMAGE = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"'][^>]*>", re.I)


def text(value: str | None, limit: int | None = 300) -> str:
    """One line of untrusted text as inert Markdown: HTML entity-escaped (so no tag can open),
    then every Markdown-structure character backslash-escaped. No links, no structure."""
    value = _WS.sub(" ", str(value or "")).strip()
    if limit and len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    # quote=False: quotes are harmless in text, and '&#x27;' would be broken by escaping '#'.
    return _MD_SPECIAL.sub(r"\\\1", html.escape(value, quote=False))


def local_ref(ref: str) -> str | None:
    """A relative reference to a local file ('./images/x.png'), without its query or anchor."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", ref) or ref.startswith(("/", "#", "//")):
        return None
    return ref.split("#", 1)[0].split("?", 1)[0] or None


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
    return "".join(c if c not in " <>()[]\"'`\\{}" else f"%{ord(c):02X}" for c in value if c >= " ")


def link(title: str | None, href: str | None) -> str:
    """``[title](<href>)``, both parts made safe; plain escaped text when the URL is unsafe."""
    label = text(title or href or "")
    safe = url(href)
    return f"[{label}](<{safe}>)" if safe else label


def domain(href: str | None) -> str:
    try:
        host = urlsplit(href or "").hostname or ""
    except ValueError:
        host = ""
    return text(host.removeprefix("www."))
