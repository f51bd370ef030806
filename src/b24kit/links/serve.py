"""``sync --serve``: an HTTP endpoint for the portal's outbound webhook events
(ONCRMDEALADD / ONCRMDEALUPDATE, form-encoded, with ``auth[application_token]``), each
answered by a reconcile pass; a periodic pass is the safety net for missed events.
Passes never overlap: an asyncio lock inside the process, a file lock across processes.

``GET /healthz`` answers how the service is doing (passes, the last one's time and error).
Every event gets one access-log line on the ``b24kit.sync`` logger: INFO when accepted or
ignored, WARNING when refused for its token, ERROR when its pass failed. The application
token and the rest of the event's ``auth`` never reach the log."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from b24kit.asgi import BodyTooLarge, lifespan, read_body
from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client, redact
from b24kit.encoding import parse_query
from b24kit.links.run import SyncResult, sync_once

log = logging.getLogger("b24kit.sync")
MAX_BODY = 64 * 1024  # bytes of one event request
EVENTS = {"ONCRMDEALADD", "ONCRMDEALUPDATE"}
HEALTH = "/healthz"
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _shown(value: Any) -> str:
    """A value from the request as it may appear in the log: short, one line, no quoting
    tricks (event names are A-Z, 0-9 and _; anything else is shown as ``?``)."""
    text = str(value or "")
    return text if _NAME.fullmatch(text) else ("-" if not text else "?")


def _client(scope: dict[str, Any]) -> str:
    peer = scope.get("client")  # behind a proxy on 127.0.0.1: from X-Forwarded-For, port 0
    if not peer:
        return "-"
    return f"{peer[0]}:{peer[1]}" if peer[1] else str(peer[0])


class SyncService:
    def __init__(
        self,
        client: B24Client,
        bp: Blueprint,
        state_dir: Path,
        app_token: str,
        on_pass: Callable[[SyncResult], None] | None = None,
    ) -> None:
        self.client = client
        self.bp = bp
        self.state_dir = state_dir
        self.app_token = app_token
        self.lock = asyncio.Lock()
        self.on_pass = on_pass
        self.passes = 0
        self.last_pass: str | None = None
        self.last_error: str | None = None

    async def run_pass(self) -> SyncResult:
        async with self.lock:
            try:
                result = await sync_once(self.client, self.bp, self.state_dir)
            except Exception as exc:
                self.last_error = redact(str(exc)) or type(exc).__name__
                raise
            self.passes += 1
            self.last_pass = _now()
            failed = [o for o in result.outcomes if not o.ok]
            self.last_error = (
                redact(f"{len(failed)} command(s) failed: {failed[0].error}") if failed else None
            )
            if self.on_pass:
                self.on_pass(result)
            return result

    async def periodic(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_pass()
            except Exception:  # noqa: BLE001  the safety net keeps going
                log.error("time=%s safety-net pass failed: %s", _now(), self.last_error)
                log.debug("safety-net pass failed", exc_info=True)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "passes": self.passes,
            "last_pass": self.last_pass,
            "last_error": self.last_error,
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path, peer = scope["method"], scope.get("path", "/"), _client(scope)
        try:
            # a portal's event is a few KB: a large body is refused before it is read, let
            # alone parsed (parsing form bodies costs more than their size)
            body = await read_body(receive, limit=MAX_BODY)
        except BodyTooLarge:
            log.warning("time=%s client=%s refused: body over %d bytes", _now(), peer, MAX_BODY)
            await self._answer(
                send, 413, {"error": f"the body is over {MAX_BODY} bytes"}, allow="POST"
            )
            return
        if path == HEALTH:
            if method in ("GET", "HEAD"):
                log.debug("time=%s client=%s %s %s", _now(), peer, method, HEALTH)
                status, answer = 200, self.health()
            else:
                status, answer = 405, {"error": f"only GET {HEALTH}"}
            await self._answer(send, status, answer, allow="GET, HEAD", body=method != "HEAD")
            return
        status, answer = await self.handle(method, body, client=peer)
        await self._answer(send, status, answer, allow="POST")

    @staticmethod
    async def _answer(
        send: Any, status: int, answer: dict[str, Any], *, allow: str, body: bool = True
    ) -> None:
        payload = json.dumps(answer).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        if status == 405:
            headers.append((b"allow", allow.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload if body else b""})

    async def handle(
        self, method: str, body: bytes, client: str = "-"
    ) -> tuple[int, dict[str, Any]]:
        """Answer one request to the event endpoint and log it in one line."""
        started = time.monotonic()
        line = f"time={_now()} client={client}"
        if method != "POST":
            log.info("%s method=%s refused: POST the portal's events here", line, _shown(method))
            return 405, {"error": "POST the portal's events here"}
        event = parse_query(body)
        name = str(event.get("event", "")).upper()
        data = event.get("data")
        fields = data.get("FIELDS") if isinstance(data, dict) else None
        deal = fields.get("ID") if isinstance(fields, dict) else None
        line += f" event={_shown(name)} deal={_shown(deal)}"
        auth = event.get("auth")
        token = str(auth.get("application_token", "")) if isinstance(auth, dict) else ""
        if not hmac.compare_digest(token.encode(), self.app_token.encode()):
            reason = "no application token" if not token else "wrong application token"
            log.warning("%s refused: %s", line, reason)
            return 401, {"error": "wrong application token"}
        if name not in EVENTS:
            log.info("%s refused: ignored event (only %s)", line, ", ".join(sorted(EVENTS)))
            return 200, {"ignored": name}
        try:
            result = await self.run_pass()
        except Exception:  # noqa: BLE001  one line in the log, 500 to the portal
            log.error("%s accepted; pass failed: %s", line, self.last_error)
            log.debug("pass failed", exc_info=True)
            return 500, {"error": f"sync pass failed: {self.last_error}"}
        created = sum(1 for o in result.outcomes if o.ok and o.method == "crm.deal.add")
        failed = sum(1 for o in result.outcomes if not o.ok)
        log.log(
            logging.ERROR if failed else logging.INFO,
            "%s accepted; pass created=%d findings=%d failed=%d (%.2f s)",
            line,
            created,
            len(result.findings),
            failed,
            time.monotonic() - started,
        )
        return 200, {"event": name, "created": created, "findings": len(result.findings)}


def _make_access_log_visible() -> None:
    """A service's access log is its point: show INFO lines of ``b24kit.sync`` on standard
    error (journald keeps them) unless someone configured that logger or the root one."""
    if log.level == logging.NOTSET and log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)


async def serve_forever(
    service: SyncService,
    host: str,
    port: int,
    interval: float,
    ready: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Listen on ``host:port`` (a busy port or unknown interface raises
    :class:`~b24kit.asgi.ListenError` before anything starts) and serve events,
    with a safety-net pass every ``interval`` seconds."""
    import uvicorn

    from b24kit.asgi import listen_socket

    sock = listen_socket(host, port)
    _make_access_log_visible()
    server = uvicorn.Server(
        uvicorn.Config(
            service, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        if ready is not None:
            outcome = ready(f"http://{host}:{sock.getsockname()[1]}/")
            if outcome is not None:
                await outcome
        safety = asyncio.create_task(service.periodic(interval))
        try:
            await task
        finally:
            safety.cancel()
    finally:
        sock.close()
