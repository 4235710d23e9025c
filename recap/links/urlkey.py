"""URL normalisation: the key that decides when two bookmarks are the same link.

The key is deliberately conservative (it only folds spellings that are the same resource on every
sane server); looser matches (http vs https, www vs bare host) are left to ``dupes`` for the user
to confirm.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from recap.errors import InvalidInput

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
# Parameters that only say where a click came from, never what the page is.
TRACKING = re.compile(
    r"^(utm_\w*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|igshid|_hsenc|_hsmi"
    r"|mkt_tok|oly_anon_id|oly_enc_id|vero_id|wickedid|twclid|ref_src|ref_url|__s|s_cid|_ga|_gl)$",
    re.I,
)
WEB_SCHEMES = {"http", "https"}
# Characters left as they are inside a path; everything else is percent-encoded the same way.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def check_web_url(url: str | None) -> str:
    """The stripped URL if it is a web page (http/https with a host); else InvalidInput."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("empty URL")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"malformed URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidInput(f"not a web URL (no scheme): {url[:80]!r}")
    if scheme not in WEB_SCHEMES:
        raise InvalidInput(f"not a web page ({scheme}: URL)")
    if not parts.hostname:
        raise InvalidInput(f"no host in URL {url[:80]!r}")
    try:
        _ = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError as exc:
        raise InvalidInput(f"bad port in URL {url[:80]!r}") from exc
    return url


def _norm_path(path: str) -> str:
    if not path:
        return "/"
    # Decode then re-encode so %7E and ~ (or a raw space and %20) give the same key.
    path = quote(unquote(path), safe=_PATH_SAFE)
    trailing = path.endswith("/")
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if path in (".", ""):
        path = "/"
    if trailing and path != "/":
        path += "/"
    # Trailing slash folded: /a/ and /a are the same key.
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def url_key(url: str) -> str:
    """The normalised key of a web URL (see the module docstring); InvalidInput if not one."""
    url = check_web_url(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{netloc}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING.match(k)
    ]
    query.sort()
    return urlunsplit((scheme, netloc, _norm_path(parts.path), urlencode(query), ""))


def loose_key(key: str) -> str:
    """A looser key for near-duplicates: no scheme, no ``www.``, no index page, case-folded path."""
    parts = urlsplit(key)
    host = parts.netloc.removeprefix("www.")
    path = re.sub(r"/(index|default)\.(html?|php|aspx?)$", "", parts.path, flags=re.I) or "/"
    path = path.rstrip("/") or "/"
    return f"{host}{path.lower()}" + (f"?{parts.query}" if parts.query else "")
