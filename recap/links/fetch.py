"""Fetching a page's title and description, with every limit a hostile or slow server needs.

The HTTP client is a parameter (tests pass one pointed at a local server); the default one has
short timeouts, follows redirects and is closed again. Failures never raise: the bookmark is
stored as given and the error is reported.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from recap.links.text import fold

MAX_BYTES = 1_000_000
TIMEOUT = 5.0
# httpx's timeouts are per operation; a server dripping one byte at a time would never trip
# them, so reading a body also has a total deadline.
DEADLINE = 15.0
USER_AGENT = "recap (bookmark metadata; +https://github.com/)"
HTML_TYPES = ("text/html", "application/xhtml+xml")


def make_client(timeout: float = TIMEOUT, **kw):
    import httpx

    return httpx.Client(
        follow_redirects=True,
        max_redirects=10,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        headers={"User-Agent": USER_AGENT},
        **kw,
    )


class _Meta(HTMLParser):
    """Collects <title> and the description metas; stops caring after </head>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title, self.meta, self._in_title, self.done = [], {}, False, False

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if tag == "title" and not self.title:
            self._in_title = True
        elif tag == "meta":
            a = {k.lower(): (v or "") for k, v in attrs}
            name = (a.get("name") or a.get("property") or "").lower()
            if name in ("description", "og:description", "og:title", "twitter:description"):
                self.meta.setdefault(name, a.get("content", ""))
        elif tag == "body":
            self.done = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self.done = True

    def handle_data(self, data):
        if self._in_title:
            self.title.append(data)


_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.I)


def parse_meta(body: bytes, charset: str | None = None) -> dict:
    """Title and description of an HTML document as plain text."""
    if not charset:
        m = _CHARSET.search(body[:4096])
        charset = m.group(1).decode("ascii") if m else "utf-8"
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    parser = _Meta()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # noqa: BLE001 - a broken page still gives what was parsed so far
        pass
    # html.parser has decoded the entities once; the text is stored as the page shows it.
    title = fold("".join(parser.title)) or fold(parser.meta.get("og:title"))
    desc = (
        parser.meta.get("description")
        or parser.meta.get("og:description")
        or parser.meta.get("twitter:description")
    )
    return {"title": title, "description": fold(desc)}


def fetch_page(
    url: str, client=None, max_bytes: int = MAX_BYTES, deadline: float = DEADLINE
) -> dict:
    """``{"title", "description", "final_url", "status", "error"}`` for ``url``; never raises."""
    import time

    import httpx

    stop = time.monotonic() + deadline
    own = client is None
    client = client or make_client()
    out: dict = {"title": "", "description": "", "final_url": None, "status": None, "error": None}
    try:
        with client.stream("GET", url) as resp:
            out["status"] = resp.status_code
            out["final_url"] = str(resp.url)
            if resp.status_code >= 400:
                out["error"] = f"HTTP {resp.status_code}"
                return out
            ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype and ctype not in HTML_TYPES:
                out["error"] = f"not a web page ({ctype})"
                return out
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) >= max_bytes:  # the title is near the top; the rest is not needed
                    break
                if time.monotonic() > stop:
                    out["error"] = f"gave up reading after {deadline:g} s"
                    break
            out.update(parse_meta(bytes(body[:max_bytes]), resp.charset_encoding))
    except httpx.HTTPError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except (ValueError, OSError) as exc:
        out["error"] = str(exc)
    finally:
        if own:
            client.close()
    return out
