"""Untrusted text from pages, feeds and imports, reduced to plain text before it is stored.

Later code (the site, ``recap show``) may rely on this: a stored title or description never holds
markup, only the characters a reader would see. Escaping for output is still done by recap.markup.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(
    r"<!--.*?-->|<(script|style)\b.*?</\1\s*>"
    r"|<(/?)([a-zA-Z][\w:-]*)([\s/][^>]*)?>",
    re.S | re.I,
)
# Only real HTML is removed: "<b>" goes, but "press <Ctrl>" or "a <note>" is text and stays.
_ELEMENTS = set(
    """a abbr address area article aside audio b base bdi bdo blockquote body br
button canvas caption center cite code col colgroup data datalist dd del details dfn dialog div dl
dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head
header hgroup hr html i iframe img input ins kbd label legend li link main map mark marquee menu
meta meter nav noscript object ol optgroup option output p param picture pre progress q rp rt
ruby s samp script section select slot small source span strike strong style sub summary sup svg
math table tbody td template textarea tfoot th thead time title tr track tt u ul var video wbr
xml""".split()
)
# Inline elements vanish without a trace ("<b>key</b>points" is one word); others end a word.
_INLINE = {
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "em",
    "font",
    "i",
    "kbd",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "time",
    "tt",
    "u",
    "var",
}


def _drop(m: re.Match) -> str:
    name = (m.group(3) or "").lower()
    if m.group(1) is None and name and name not in _ELEMENTS and not m.group(4):
        return m.group(0)
    return "" if name in _INLINE else " "


_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_WS = re.compile(r"\s+")


def plain(value, limit: int = 2000) -> str:
    """Tags (with script/style bodies) removed, entities decoded, whitespace folded, capped."""
    if not value:
        return ""
    value = str(value)
    if "<" in value:
        value = _TAG.sub(_drop, value)
    if "&" in value:
        value = html.unescape(value)
        # Decoding may reveal new tags ("&lt;b&gt;"): those are text the author meant to show,
        # but stripping them too keeps the stored field free of anything tag-shaped.
        if "<" in value:
            value = _TAG.sub(_drop, value)
    value = _WS.sub(" ", _CTRL.sub("", value)).strip()
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value
