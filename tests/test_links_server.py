"""A local HTTP server on 127.0.0.1 for the links tests (never the internet), and its own checks.

Other links tests import :func:`serve` from here (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class Route:
    def __init__(
        self,
        body: bytes | str = b"",
        status: int = 200,
        ctype: str = "text/html",
        headers: dict | None = None,
        etag: str | None = None,
        delay: float = 0,
        location: str | None = None,
        head_status: int | None = None,
        drip: float = 0,
    ):
        self.body = body.encode() if isinstance(body, str) else body
        self.status, self.ctype, self.etag, self.delay = status, ctype, etag, delay
        self.headers = dict(headers or {})
        self.location, self.head_status, self.drip = location, head_status, drip


class Server:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.active: dict[str, int] = {}
        self.peak = 0
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(server: Server):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _serve(self, head: bool):
            with server.lock:
                server.requests.append((self.command, self.path, dict(self.headers)))
                server.active[self.command] = server.active.get(self.command, 0) + 1
                server.peak = max(server.peak, sum(server.active.values()))
            try:
                route = server.routes.get(self.path) or Route(b"not found", 404)
                if route.delay:
                    time.sleep(route.delay)
            finally:
                # In flight until the reply starts: once it is sent the client may release its
                # per-host slot and start the next request before this handler returns.
                with server.lock:
                    server.active[self.command] -= 1
            try:
                status = route.head_status if head and route.head_status else route.status
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    status = 304
                self.send_response(status)
                if route.location:
                    self.send_header("Location", route.location)
                self.send_header("Content-Type", route.ctype)
                if route.etag:
                    self.send_header("ETag", route.etag)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                body = b"" if status == 304 else route.body
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head and body:
                    try:
                        if route.drip:  # a slow server: one small chunk at a time
                            for i in range(0, len(body), 16):
                                self.wfile.write(body[i : i + 16])
                                self.wfile.flush()
                                time.sleep(route.drip)
                        else:
                            self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self):
            self._serve(False)

        def do_HEAD(self):
            self._serve(True)

    return H


@contextmanager
def serve():
    """A threaded HTTP server on 127.0.0.1 (a free port) serving ``server.routes``."""
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_server_serves_routes_and_honours_etag():
    with serve() as srv:
        srv.routes["/a"] = Route("hello", etag='"v1"')
        r = httpx.get(srv.url("/a"))
        assert (r.status_code, r.text, r.headers["etag"]) == (200, "hello", '"v1"')
        r = httpx.get(srv.url("/a"), headers={"If-None-Match": '"v1"'})
        assert r.status_code == 304 and r.content == b""
        assert httpx.get(srv.url("/missing")).status_code == 404
        assert [q[1] for q in srv.requests] == ["/a", "/a", "/missing"]
