"""The inline HTML of an imported post, sanitised with nh3 (an allow-list sanitiser), not dropped.

A post's own HTML stays as written (``<img src=... style="zoom: 67%;">``, ``<details>``, tables);
event handlers, ``<script>``/``<iframe>``-like elements and ``javascript:``/``data:`` targets go,
in HTML and in Markdown links and images alike. Code (fenced blocks and inline spans) is text and
is never touched. Only a tag nh3 changes is rewritten; the rest keeps its bytes. The counts say
what was removed, for the import report.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from html.parser import HTMLParser

# Elements removed together with their content.
DANGEROUS = ("script", "style", "iframe", "frame", "frameset", "object", "embed", "noscript")
EXTRA_TAGS = {"video", "audio", "source", "picture", "figure", "figcaption", "track"}
ATTRIBUTES = {
    "*": {"class", "id", "title", "style", "lang", "dir", "align", "width", "height"},
    "a": {"href", "name", "target", "hreflang"},
    "img": {"src", "alt", "srcset", "sizes", "loading"},
    "video": {"src", "poster", "controls", "autoplay", "loop", "muted", "playsinline"},
    "audio": {"src", "controls", "loop", "muted"},
    "source": {"src", "srcset", "type", "media"},
    "track": {"src", "kind", "srclang", "label"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "type"},
    "details": {"open"},
}
STYLE_PROPERTIES = set(
    """zoom width height max-width max-height min-width min-height text-align float clear margin
margin-left margin-right margin-top margin-bottom padding padding-left padding-right padding-top
padding-bottom display vertical-align border border-radius color background-color font-size
font-weight font-style text-decoration object-fit list-style-type white-space""".split()
)
SCHEMES = {"http", "https", "mailto"}

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*\n.*?(?:^\1?\2[`~]*[ \t]*$|\Z)", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_DANGEROUS = re.compile(
    r"<(" + "|".join(DANGEROUS) + r")\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>.*?(?:</\1\s*>|\Z)",
    re.S | re.I,
)
_DANGEROUS_END = re.compile(r"</(" + "|".join(DANGEROUS) + r")\s*>", re.I)
# A raw HTML tag as CommonMark defines one (a name, then attributes after whitespace), so
# autolinks such as <https://x> are left alone.
_TAG = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+(?:[^>\"']|\"[^\"]*\"|'[^']*')*)?)(/?)>", re.S
)
_MD_LINK = re.compile(
    r"(!?)\[((?:[^\]\\]|\\.)*)\]\(\s*<?((?:[^()<>\s]|\([^()\s]*\))*)>?((?:\s+\"[^\"]*\")?)\s*\)"
)
_MD_REF = re.compile(r"^( {0,3}\[[^\]]+\]:\s*)<?(\S+?)>?(\s.*)?$", re.M)
_VOID = {"img", "br", "hr", "source", "track", "wbr", "col", "area", "input"}


def bad_url(url: str) -> bool:
    """A link target that runs code or smuggles a document: javascript:, vbscript:, data:."""
    plain = re.sub(r"[\s\x00-\x1f]+", "", html.unescape(url or "")).lower()
    return plain.startswith(("javascript:", "vbscript:", "data:"))


class _Attrs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.attrs = attrs

    handle_startendtag = handle_starttag


def _attrs(tag_text: str) -> dict[str, str]:
    p = _Attrs()
    p.feed(tag_text)
    p.close()
    out = {}
    for k, v in p.attrs:
        v = v or ""
        if k == "style":
            v = ";".join(re.sub(r"\s+", "", d).lower() for d in v.split(";") if d.strip())
        out[k] = v
    return out


def _clean_tag(name: str, tag_text: str) -> str:
    import nh3

    closing = "" if name in _VOID else f"</{name}>"
    out = nh3.clean(
        tag_text + closing,
        tags=set(nh3.ALLOWED_TAGS) | EXTRA_TAGS,
        attributes=ATTRIBUTES,
        link_rel=None,
        url_schemes=SCHEMES,
        filter_style_properties=STYLE_PROPERTIES,
    )
    if closing and out.endswith(closing):
        out = out[: -len(closing)]
    return out


def _prose(text: str, counts: Counter) -> str:
    def drop_element(m: re.Match) -> str:
        counts[f"<{m.group(1).lower()}> element"] += 1
        return ""

    text = _DANGEROUS.sub(drop_element, text)
    text = _DANGEROUS_END.sub("", text)
    import nh3

    allowed = set(nh3.ALLOWED_TAGS) | EXTRA_TAGS

    def tag(m: re.Match) -> str:
        closing, name = m.group(1), m.group(2).lower()
        if name not in allowed:
            counts[f"<{name}> tag"] += 1
            return ""
        if closing:
            return m.group(0)
        before = _attrs(m.group(0))
        cleaned = _clean_tag(name, m.group(0))
        after = _attrs(cleaned)
        if before == after:
            return m.group(0)
        for key, value in before.items():
            if key not in after:
                if key.startswith("on"):
                    counts["event handler"] += 1
                elif key in ("href", "src", "srcset", "poster") and bad_url(value):
                    counts["javascript:/data: target"] += 1
                else:
                    counts[f"attribute {key!r}"] += 1
            elif key == "style" and after[key] != value:
                counts["style property"] += 1
        return cleaned

    text = _TAG.sub(tag, text)

    def link(m: re.Match) -> str:
        if not bad_url(m.group(3)):
            return m.group(0)
        counts["javascript:/data: target"] += 1
        return "" if m.group(1) else m.group(2)  # an image goes; a link keeps its words

    text = _MD_LINK.sub(link, text)

    def ref(m: re.Match) -> str:
        if not bad_url(m.group(2)):
            return m.group(0)
        counts["javascript:/data: target"] += 1
        return m.group(1) + "#"

    return _MD_REF.sub(ref, text)


def _outside_code(text: str, counts: Counter) -> str:
    """Sanitise prose between fenced code blocks; inline code spans are set aside meanwhile (a
    span inside a removed <script> goes with it)."""
    spans: list[str] = []

    def mask(m: re.Match) -> str:
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    masked = _CODE_SPAN.sub(mask, text.replace("\x00", ""))
    done = _prose(masked, counts)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], done)


def sanitize(body: str) -> tuple[str, Counter]:
    """The Markdown body with its HTML sanitised, and a count of what was removed."""
    counts: Counter = Counter()
    if "<" not in body and "script:" not in body.lower() and "data:" not in body.lower():
        return body, counts
    out, pos = [], 0
    for fence in _FENCE.finditer(body):
        out += [_outside_code(body[pos : fence.start()], counts), fence.group(0)]
        pos = fence.end()
    out.append(_outside_code(body[pos:], counts))
    return "".join(out), counts


def describe(counts: Counter) -> str:
    """``"2 event handler(s), 1 <script> element(s)"`` for the import report."""
    return ", ".join(f"{n} {what}(s)" for what, n in sorted(counts.items()))
