"""Untrusted text from pages, feeds and imports, stored as the user would read it.

A title such as ``The <script> element explained`` or ``R&amp;D notes`` is the user's text and is
stored exactly. Each format's own escaping is decoded once, where that format defines it (the
Netscape parser decodes its entities, html.parser decodes a page's ``<title>``, feedparser decodes
feed fields); nothing here decodes a second time. Markup becomes text only where a field really is
HTML (a feed's summary), through html.parser, never regular expressions. Escaping for output is the
job of recap.markup and the site.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# C0 controls (but tab, newline, carriage return) and DEL: never meaningful in a title or note.
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WS = re.compile(r"\s+")


def clean(value) -> str:
    """The text as given, less control characters that no reader could see."""
    if value is None:
        return ""
    value = str(value)
    return _CTRL.sub("", value) if _CTRL.search(value) else value


def fold(value) -> str:
    """Whitespace runs as one space, trimmed: how HTML shows a text node (titles, link text)."""
    return _WS.sub(" ", clean(value)).strip()


# Elements whose start or end separates words when an HTML fragment is read as text.
_BLOCK = set(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table td th tr ul".split()
)
_SKIP = {"script", "style", "template", "noscript"}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(fragment) -> str:
    """The text a reader sees in an HTML fragment (a feed summary): tags and script bodies gone,
    entities decoded once, whitespace folded."""
    if not fragment:
        return ""
    parser = _Text()
    parser.feed(str(fragment))
    parser.close()
    return fold("".join(parser.parts))
