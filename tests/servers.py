"""One loopback HTTP server per test process, shared by the tests that need a sandbox
served over real HTTP but not a server of its own.

Starting and stopping a uvicorn server costs a tenth of a second or more each time (its
loop looks for the stop flag every 0.1 s); the fixtures that serve a sandbox for a test
(``rest``, ``client_for(box, "http")``) did it for every test. Here each sandbox gets a
path of its own on the shared server (``http://127.0.0.1:PORT/s17``) and answers every
request under it exactly as if it were served at the root: the same bytes over the same
socket code, from a fresh sandbox per test. Tests about the server itself (a busy port,
a server that stops, a dropped process) still start their own.
"""

from __future__ import annotations

import atexit
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from b24kit.sandbox.server import RunningServer, start_in_thread

App = Any  # an ASGI application: a Sandbox, or a stand-in a test wrote


class Switchboard:
    """An ASGI app that hands each request to the app registered for its first path
    segment, with that segment moved from ``path`` to ``root_path``."""

    def __init__(self) -> None:
        self.apps: dict[str, App] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        key, _, rest = scope["path"][1:].partition("/")
        app = self.apps.get(key)
        if app is None:
            body = f"no sandbox is served at /{key} now".encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [
                        (b"content-type", b"text/plain"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        inner = dict(scope, path="/" + rest, root_path=scope.get("root_path", "") + "/" + key)
        if isinstance(scope.get("raw_path"), bytes):
            inner["raw_path"] = scope["raw_path"][len(key) + 1 :]
        await app(inner, receive, send)


_lock = threading.Lock()
_board = Switchboard()
_server: RunningServer | None = None
_client: httpx.Client | None = None
_keys = itertools.count(1)


def _stop() -> None:
    """At the process's exit: no request still open is waited for. A test's stand-in that
    never answers (a stalled portal) would hold uvicorn's graceful shutdown until the
    join's ten seconds ran out, and the test run's end with it."""
    if _client is not None:
        _client.close()
    if _server is not None:
        _server.server.force_exit = True
        _server.stop()


def _running() -> RunningServer:
    global _server
    with _lock:
        if _server is None:
            _server = start_in_thread(_board)  # type: ignore[arg-type]
            atexit.register(_stop)
        return _server


@contextmanager
def served(app: App) -> Iterator[str]:
    """Serve ``app`` on the shared server while the block runs; yields its base URL."""
    server = _running()
    key = f"s{next(_keys)}"
    _board.apps[key] = app
    try:
        yield f"{server.base_url}/{key}"
    finally:
        del _board.apps[key]


def http_client() -> httpx.Client:
    """One httpx client for the process (making one loads the TLS certificates: a few
    hundredths of a second of CPU each time), for plain HTTP to the shared server."""
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(timeout=30)
        return _client
