"""Dead-link checking: concurrent, polite (a limit per host), HEAD first, GET if HEAD is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import urlsplit

from recap.timeutil import stamp

# Servers that refuse or mishandle HEAD answer these; a GET tells the truth.
RETRY_WITH_GET = {400, 403, 404, 405, 406, 429, 500, 501, 502, 503}


def check_url(client, url: str) -> tuple[int | None, str | None]:
    """(HTTP status, error) of ``url``: HEAD, then GET (body not read) when HEAD fails."""
    import httpx

    status, error = None, None
    try:
        status = client.head(url).status_code
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if status is None or status in RETRY_WITH_GET:
        try:
            with client.stream("GET", url) as resp:
                status, error = resp.status_code, None
        except httpx.HTTPError as exc:
            if status is None:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return status, error


def check_links(
    conn,
    client=None,
    now: datetime | None = None,
    ids=None,
    workers: int = 16,
    per_host: int = 2,
    timeout: float = 10.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Check every non-archived bookmark (or ``ids``); stores status, error and check time."""
    from recap.db import transaction
    from recap.links.store import get_bookmark

    if ids:
        rows = [get_bookmark(conn, i) for i in ids]
    else:
        rows = conn.execute("SELECT * FROM bookmark WHERE archived = 0 ORDER BY id").fetchall()
    if not rows:
        return []
    own = client is None
    if own:
        import httpx

        from recap.links.fetch import make_client

        client = make_client(timeout=timeout, limits=httpx.Limits(max_connections=workers * 2))
    locks: dict[str, threading.BoundedSemaphore] = {}
    guard = threading.Lock()

    def one(row):
        host = (urlsplit(row["url"]).hostname or "").lower()
        with guard:
            sem = locks.setdefault(host, threading.BoundedSemaphore(per_host))
        with sem:
            status, error = check_url(client, row["url"])
        return {
            "id": row["id"],
            "url": row["url"],
            "title": row["title"],
            "status": status,
            "error": error,
            "ok": error is None and status is not None and status < 400,
        }

    results = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(rows)))) as pool:
            for done, res in enumerate(pool.map(one, rows), 1):
                results.append(res)
                if progress:
                    progress(done, len(rows))
    finally:
        if own:
            client.close()
    when = stamp(now)
    with transaction(conn):
        conn.executemany(
            "UPDATE bookmark SET http_status = ?, check_error = ?, checked_at = ? WHERE id = ?",
            [(r["status"], r["error"], when, r["id"]) for r in results],
        )
    return results
