"""Pieces of generated Markdown: front matter, the links and runs sections, body clean-up.

Two kinds of text meet here. The entry body is the user's own Markdown and is kept as written,
except for ``<script>`` elements (imported posts carry analytics snippets that must not be
republished). Everything else (bookmark titles and notes, run params, flags, experiment
descriptions from the database) is untrusted and goes through :mod:`recap.markup`.
"""

from __future__ import annotations

import functools
import html
import json
import re
from datetime import date

from recap import markup

MORE = "<!-- more -->"
SCRIPT = re.compile(r"<script\b.*?(?:</script\s*>|\Z)", re.S | re.I)
FENCE = re.compile(r"^\s*(```|~~~)")
SAFE_NAME = re.compile(r"[^a-z0-9._-]+")
SAFE_ALIAS = re.compile(r"^[A-Za-z0-9._~%+-]+$")
CODE_SPAN = re.compile(r"((`+)(?!`).+?(?<!`)\2(?!`))", re.S)
RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


# Untrusted text goes through recap.markup; the names stay here for the site's renderers.
inline = markup.text
link = markup.link


def domain(href: str | None) -> str:
    return markup.domain(href)


def safe_name(value: str, fallback: str) -> str:
    """A file-name-safe slug (lower case, [a-z0-9._-]); never empty, never '.' or '..'."""
    name = SAFE_NAME.sub("-", (value or "").lower()).strip("-.")[:80]
    return name or fallback


MD_IMAGE = markup.MD_IMAGE
HTML_IMAGE = markup.HTML_IMAGE
local_ref = markup.local_ref


def missing_images(body: str, exists) -> tuple[str, list[str]]:
    """Leave out images whose local file does not exist (``exists(ref)`` is False), so a post
    imported without its images still builds; the author gets a build warning, readers see
    nothing. Returns (body, missing refs)."""
    missing: list[str] = []

    def check(m, ref):
        local = local_ref(ref)
        if local is None or exists(local):
            return m.group(0)
        missing.append(ref)
        return ""

    body = MD_IMAGE.sub(lambda m: check(m, m.group(2)), body)
    body = HTML_IMAGE.sub(lambda m: check(m, m.group(1)), body)
    return body, missing


def rebase_html_images(body: str, up: str, url, folder: str, exists) -> str:
    """Raw HTML ``<img src="x.png">`` of a post, pointed at where the file is on the site.

    MkDocs rewrites Markdown image references for the page's URL, but raw HTML is left as
    written, and a post's URL (``blog/2021/01/24/slug/``) is not its file's folder. So a local
    ``src`` that resolves (``exists(ref)``) becomes ``up`` (the way from the post's URL to the
    site root) + ``url(its path under docs/)``, where the site serves it. Only the src value
    changes; code blocks are left alone.
    """
    import posixpath
    from urllib.parse import quote, unquote

    def fix(m):
        ref = local_ref(m.group(1))
        if ref is None or not exists(ref):
            return m.group(0)
        target = posixpath.normpath(posixpath.join(folder, unquote(html.unescape(ref))))
        if target.startswith("../"):
            return m.group(0)
        start, end = m.span(1)
        new = up + quote(url(target), safe="/._-~")
        return m.group(0)[: start - m.start()] + new + m.group(0)[end - m.start() :]

    def prose(text: str) -> str:  # inline code spans (odd pieces) stay as written
        pieces = CODE_SPAN.split(text)  # text, span, its backticks, text, ...
        keep = {0: lambda p: HTML_IMAGE.sub(fix, p), 1: lambda p: p, 2: lambda p: ""}
        return "".join(keep[i % 3](p) for i, p in enumerate(pieces))

    lines = body.split("\n")
    out, chunk = [], []
    for line, code in zip(lines, _code_mask(lines), strict=True):
        if code:
            if chunk:
                out.append(prose("\n".join(chunk)))
            chunk = []
            out.append(line)
        else:
            chunk.append(line)
    if chunk:
        out.append(prose("\n".join(chunk)))
    return "\n".join(out)


MD_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def unlink_local(body: str) -> str:
    """Links to local files become their text and the path (an experiment README's links to
    files of its folder, which are not part of the site, would fail the strict build)."""

    def fix(m):
        ref = m.group(2)
        if local_ref(ref) is None:
            return m.group(0)
        return f"{m.group(1)} ({inline(ref, 200)})"

    body, _ = missing_images(body, lambda ref: False)
    return MD_LINK.sub(fix, body)


def strip_scripts(body: str) -> str:
    return SCRIPT.sub("", body)


def _yaml_str(value: str) -> str:
    # JSON strings are valid YAML scalars, so quoting can never open a YAML structure.
    return json.dumps(value, ensure_ascii=False)


def front_matter(meta: dict) -> str:
    """YAML front matter from a flat-ish dict of str / bool / date / list / dict values."""
    lines = ["---"]

    def emit(key, value, indent=""):
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            for k, v in value.items():
                emit(k, v, indent + "  ")
        elif isinstance(value, list):
            lines.append(f"{indent}{key}:")
            lines.extend(f"{indent}  - {_yaml_str(str(v))}" for v in value)
        elif isinstance(value, bool):
            lines.append(f"{indent}{key}: {'true' if value else 'false'}")
        elif isinstance(value, date):
            lines.append(f"{indent}{key}: {value.isoformat()}")
        else:
            lines.append(f"{indent}{key}: {_yaml_str(str(value))}")

    for key, value in meta.items():
        emit(key, value)
    lines.append("---")
    return "\n".join(lines) + "\n\n"


def attr_text(value: str) -> str:
    """Text that themes print raw into HTML (titles, descriptions): entity-escaped, one line."""
    # Themes quote attributes with '"', so an apostrophe is harmless and is kept (it would show as
    # '&#x27;' in RSS readers, which escape the feed's text once more).
    return html.escape(" ".join((value or "").split()), quote=False).replace('"', "&quot;")


def _code_mask(lines: list[str]) -> list[bool]:
    """True for lines inside fenced code blocks (markers there are text, not structure)."""
    mask, inside = [], False
    for line in lines:
        if FENCE.match(line):
            mask.append(True)
            inside = not inside
            continue
        mask.append(inside)
    return mask


def add_excerpt_break(body: str) -> str:
    """Put ``<!-- more -->`` after the first real paragraph, so the blog index shows text and
    never a bare heading. A leading "Introduction" heading is dropped: the title introduces.
    A body that already has a break keeps it."""
    if MORE in body:
        return body
    lines = body.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and re.match(r"^#{1,3}\s+introduction\s*$", lines[first], re.I):
        del lines[first]
    mask = _code_mask(lines)
    seen_text = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not mask[i] and (stripped.startswith("#") or stripped.startswith("<!--")):
            if seen_text:
                at = i
                break
            continue
        if stripped and not mask[i]:
            seen_text = True
        elif seen_text and not stripped and not mask[i]:
            at = i
            break
    else:
        return "\n".join(lines).rstrip("\n") + (f"\n\n{MORE}\n" if seen_text else "")
    head = "\n".join(lines[:at]).strip("\n")
    return head + f"\n\n{MORE}\n\n" + "\n".join(lines[at:]).lstrip("\n")


def place(body: str, marker: str, section: str) -> str:
    """Replace ``marker`` with ``section``; append the section when the marker is absent."""
    if marker in body:
        return body.replace(marker, section.strip("\n"), 1).replace(marker, "")
    if not section:
        return body
    return body.rstrip("\n") + "\n\n" + section.strip("\n") + "\n"


def section_titles(body: str) -> list[str]:
    """The titles of the body's ``## `` sections (outside fenced code), in order."""
    lines = body.split("\n")
    mask = _code_mask(lines)
    return [ln[3:].strip() for i, ln in enumerate(lines) if not mask[i] and ln.startswith("## ")]


def append_to_section(body: str, title: str, text: str) -> str:
    """Insert ``text`` at the end of the ``## title`` section (before the next ``## ``, or before
    the generated-section markers when they sit in that section)."""
    lines = body.split("\n")
    mask = _code_mask(lines)
    start = next(
        (
            i
            for i, ln in enumerate(lines)
            if not mask[i] and ln.startswith("## ") and ln[3:].strip() == title
        ),
        None,
    )
    if start is None or not text.strip():
        return body
    end = next(
        (i for i in range(start + 1, len(lines)) if not mask[i] and lines[i].startswith("## ")),
        len(lines),
    )
    end = next(
        (i for i in range(start + 1, end) if not mask[i] and lines[i].startswith("<!-- recap:")),
        end,
    )
    head = "\n".join(lines[:end]).rstrip("\n")
    tail = "\n".join(lines[end:])
    return f"{head}\n\n{text.strip()}\n\n{tail}".rstrip("\n") + "\n"


def _heading_before(body: str, marker: str, word: str) -> bool:
    """Whether the user already wrote a heading like '## Links' just above the marker."""
    head = body.split(marker, 1)[0].rstrip().rsplit("\n", 1)[-1]
    return head.startswith("#") and word.lower() in head.lower()


def links_section(bookmarks: list, *, heading: bool = True) -> str:
    """The week's links grouped by their first tag: title (linked), domain, note."""
    if not bookmarks:
        return ""
    groups: dict[str, list] = {}
    for b in bookmarks:
        tags = [t for t in _json_list(b["tags"]) if str(t).strip()]
        groups.setdefault(str(tags[0]) if tags else "", []).append(b)
    out = ["## Links", ""] if heading else []
    for tag in sorted(groups, key=lambda t: (t == "", t.lower())):
        out += [f"### {inline(tag) if tag else 'Other'}", ""]
        # The note written when linking it to this entry wins over the bookmark's own.
        out += [
            _bookmark_line(b["url"], b["title"], b["link_note"] or b["note"]) for b in groups[tag]
        ]
        out.append("")
    return "\n".join(out)


def bookmark_line(b) -> str:
    return _bookmark_line(b["url"], b["title"], b["note"])


@functools.lru_cache(maxsize=20_000)
def _bookmark_line(url: str, title: str, note: str) -> str:
    # Cached: a bookmark appears in a post and under each of its tags on the links page.
    parts = [link(title or url, url)]
    dom = domain(url)
    if dom:
        parts.append(f"({dom})")
    line = "- " + " ".join(parts)
    if note:
        line += " — " + inline(note)
    return line


def _json_list(raw) -> list:
    try:
        value = json.loads(raw or "[]")
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


def json_dict(raw) -> dict:
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def fmt_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def params_text(params: dict, limit: int = 4) -> str:
    items = list(params.items())[:limit]
    text = ", ".join(f"{k}={fmt_value(v)}" for k, v in items)
    if len(params) > limit:
        text += ", …"
    return inline(text, limit=120)


def rerun_command(run_id: str) -> str:
    return f"recap rerun {run_id}" if RUN_ID.match(run_id) else ""


def flags_block(run_id: str, summary: dict) -> str:
    """A run's flags (e.g. the key-point sanity check) as a warning admonition."""
    flags = summary.get("flags")
    if not isinstance(flags, dict) or not flags:
        return ""
    who = f"Run {run_id}" if RUN_ID.match(run_id) else "This run"
    out = [f'!!! warning "{who} was flagged"', ""]
    for name, message in flags.items():
        out.append(f"    - **{inline(str(name), 80)}**: {inline(str(message))}")
    return "\n".join(out) + "\n"
