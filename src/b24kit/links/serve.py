"""``sync --serve``: an HTTP endpoint for the portal's outbound webhook events
(ONCRMDEALADD / ONCRMDEALUPDATE, form-encoded, with ``auth[application_token]``).

An event is answered at once and only marks its deal as pending; one worker runs the
reconcile passes, each serving every event that came before it started (events are
coalesced: 200 events a second cost a pass every few seconds, not 200 passes). A pass
reads what changed since the one before, plus the pending deals by id, so a deal whose
event arrives during a pass is handled by the next: every event within two passes. A
periodic pass is the safety net for events the portal never sent.

Under load and attack:
- a connection that has not sent its request's headers within :data:`HEADER_TIMEOUT` is
  closed; the request's size is checked before its body is read (``Content-Length`` over
  :data:`MAX_BODY`: 413 at once), the body is read against a size limit and a time limit
  (:data:`READ_TIMEOUT`: 408), and the application token is checked, in constant time,
  before the form is parsed;
- the pending set is bounded (:data:`MAX_PENDING` deals); past it, the next pass reads
  every deal of the links instead (nothing is lost, memory stays flat);
- every pass runs under a deadline (``deadline`` seconds for all its portal calls), and
  the caller keeps a share of the portal's rate limit for other tools (``sync --serve
  --rate-share``);
- SIGTERM or Ctrl-C stops taking events, lets the pass in flight finish (within its
  deadline), and ends with exit 0; a second signal ends it at once (every pass can be
  run again).

``GET /healthz`` answers how the service is doing. Every event gets one access-log line
on the ``b24kit.sync`` logger (INFO accepted or ignored, WARNING refused), every pass one
(INFO, ERROR when it failed). The application token and the rest of the event's ``auth``
never reach the log."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from b24kit.asgi import BodyTooLarge, lifespan, read_body
from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client, redact
from b24kit.encoding import parse_query
from b24kit.links.run import SyncResult, sync_once

log = logging.getLogger("b24kit.sync")
MAX_BODY = 64 * 1024  # bytes of one event request (a portal's event is about 1 KB)
READ_TIMEOUT = 10.0  # seconds a client has to send its whole body
HEADER_TIMEOUT = 10.0  # seconds a new connection has to send its request's headers
MAX_PENDING = 10_000  # deals remembered between passes; past it, the next pass is full
EVENTS = {"ONCRMDEALADD", "ONCRMDEALUPDATE"}
HEALTH = "/healthz"
TOKEN_KEY = "auth[application_token]"
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


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def token_of(body: bytes) -> str:
    """The form's ``auth[application_token]``, found without parsing the rest of it (one
    pass over the bytes, whatever the body holds)."""
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key[:4].lower() == b"auth" and unquote_plus(key.decode("latin-1")) == TOKEN_KEY:
            return unquote_plus(value.decode("utf-8", errors="replace"))
    return ""


class SyncService:
    """The event endpoint (an ASGI app) and the worker that runs the passes."""

    def __init__(
        self,
        client: B24Client,
        bp: Blueprint,
        state_dir: Path,
        app_token: str,
        on_pass: Callable[[SyncResult], None] | None = None,
        *,
        deadline: float | None = 600.0,
        lock_wait: float = 120.0,
        max_pending: int = MAX_PENDING,
        pause: float = 0.5,
        retry: float = 30.0,
        lock: Path | None = None,
    ) -> None:
        self.client = client
        self.bp = bp
        self.state_dir = state_dir
        self.app_token = app_token
        self.on_pass = on_pass
        self.deadline = deadline  # seconds for one pass's portal calls
        self.lock_wait = lock_wait
        self.max_pending = max_pending
        self.pause = pause  # seconds between passes when events keep coming
        self.retry = retry  # seconds after a failed pass before the next try
        self.lock_file = lock  # the portal's run lock (by default one in state_dir)
        self.lock = asyncio.Lock()  # one pass at a time in this process
        self.pending: set[int] = set()
        self.overflow = False  # pending was full: the next pass reads every deal
        self.wake = asyncio.Event()
        self.stopping = False
        self.on_stop: Callable[[], None] | None = None  # set by serve_forever
        self.busy = False
        self.events = 0  # accepted events
        self.passes = 0
        self.last_pass: str | None = None
        self.last_error: str | None = None

    # ------------------------------------------------------------------ events
    def note_event(self, deal: int | None) -> None:
        """Remember an accepted event's deal for the next pass and wake the worker."""
        self.events += 1
        if deal is not None:
            if len(self.pending) < self.max_pending:
                self.pending.add(deal)
            elif not self.overflow:
                self.overflow = True
                log.warning(
                    "time=%s over %d deals pending: the next pass reads every deal",
                    _now(),
                    self.max_pending,
                )
        self.wake.set()

    # ------------------------------------------------------------------ passes
    async def run_pass(self, deals: Iterable[int] = (), full: bool = False) -> SyncResult:
        """One reconcile pass (with the pending ``deals`` read by id), under the deadline."""
        async with self.lock:
            self.busy = True
            started = time.monotonic()
            try:
                with self.client.within(self.deadline):
                    result = await sync_once(
                        self.client,
                        self.bp,
                        self.state_dir,
                        full=full,
                        lock_wait=self.lock_wait,
                        touched=deals,
                        lock=self.lock_file,
                        give_up=lambda: self.stopping,  # a stop does not wait for the lock
                    )
            except Exception as exc:
                self.last_error = redact(str(exc)) or type(exc).__name__
                raise
            finally:
                self.busy = False
            self.passes += 1
            self.last_pass = _now()
            failed = [o for o in result.outcomes if not o.ok]
            self.last_error = (
                redact(f"{len(failed)} command(s) failed: {failed[0].error}") if failed else None
            )
            log.log(
                logging.ERROR if failed else logging.INFO,
                "time=%s pass %d: %d deal(s) read, created=%d findings=%d failed=%d (%.2f s)",
                self.last_pass,
                self.passes,
                result.deals_read,
                result.created,
                len(result.findings),
                len(failed),
                time.monotonic() - started,
            )
            if self.on_pass:
                self.on_pass(result)
            return result

    async def _next_pass(self) -> None:
        """Take what is pending and run a pass; on failure, keep it for the next one."""
        deals, self.pending = self.pending, set()
        full, self.overflow = self.overflow, False
        try:
            await self.run_pass(deals, full)
        except Exception:  # noqa: BLE001  the worker keeps going; the next pass retries
            self.pending |= deals
            self.overflow = self.overflow or full
            if len(self.pending) > self.max_pending:  # the bound holds across failures too
                self.pending.clear()
                self.overflow = True
            log.error(
                "time=%s pass failed: %s (next try in %g s)", _now(), self.last_error, self.retry
            )
            log.debug("pass failed", exc_info=True)
            asyncio.get_running_loop().call_later(self.retry, self.wake.set)

    async def work(self, interval: float) -> None:
        """The worker: a pass whenever events are pending (at most one every ``pause``
        seconds), and one every ``interval`` seconds in any case. Returns once stopped,
        after the pass in flight."""
        while not self.stopping:
            with contextlib.suppress(TimeoutError):  # a time-out: the safety net's turn
                await asyncio.wait_for(self.wake.wait(), timeout=interval)
            if self.stopping:
                break
            self.wake.clear()
            await self._next_pass()
            if self.pause and not self.stopping:  # stopped during the pass: no pause
                await asyncio.sleep(self.pause)

    async def drain(self) -> None:
        """Wait until no event is pending and no pass runs (for tests and shutdown)."""
        while self.pending or self.overflow or self.busy or self.wake.is_set():
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        """Take no more events and start no new pass; the pass in flight finishes, and
        a server started by :func:`serve_forever` stops listening."""
        self.stopping = True
        self.wake.set()
        if self.on_stop is not None:
            self.on_stop()

    def health(self) -> dict[str, Any]:
        return {
            "status": "stopping" if self.stopping else "ok",
            "passes": self.passes,
            "last_pass": self.last_pass,
            "last_error": self.last_error,
            "events": self.events,
            "pending": len(self.pending),
            "pass_running": self.busy,
            # the passes' share of the portal's rate limit: requests per second, burst
            "rate": self.client.bucket.rate,
            "burst": self.client.bucket.capacity,
        }

    # -------------------------------------------------------------------- HTTP
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path, peer = scope["method"], scope.get("path", "/"), _client(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_BODY:
            await self._too_large(send, peer)  # not one byte of it is read
            return
        try:
            body = await asyncio.wait_for(read_body(receive, limit=MAX_BODY), READ_TIMEOUT)
        except BodyTooLarge:
            await self._too_large(send, peer)
            return
        except TimeoutError:
            log.warning(
                "time=%s client=%s refused: body not sent within %g s", _now(), peer, READ_TIMEOUT
            )
            await self._answer(send, 408, {"error": "the body came too slowly"}, allow="POST")
            return
        if path == HEALTH:
            if method in ("GET", "HEAD"):
                log.debug("time=%s client=%s %s %s", _now(), peer, method, HEALTH)
                status, answer = 200, self.health()
            else:
                status, answer = 405, {"error": f"only GET {HEALTH}"}
            await self._answer(send, status, answer, allow="GET, HEAD", body=method != "HEAD")
            return
        status, answer = self.handle(method, body, client=peer)
        await self._answer(send, status, answer, allow="POST")

    async def _too_large(self, send: Any, peer: str) -> None:
        log.warning("time=%s client=%s refused: body over %d bytes", _now(), peer, MAX_BODY)
        await self._answer(send, 413, {"error": f"the body is over {MAX_BODY} bytes"}, allow="POST")

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
        if status in (408, 413):
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload if body else b""})

    def handle(self, method: str, body: bytes, client: str = "-") -> tuple[int, dict[str, Any]]:
        """Answer one request to the event endpoint, at once, and log it in one line."""
        line = f"time={_now()} client={client}"
        if method != "POST":
            log.info("%s method=%s refused: POST the portal's events here", line, _shown(method))
            return 405, {"error": "POST the portal's events here"}
        token = token_of(body)
        if not hmac.compare_digest(token.encode(), self.app_token.encode()):
            reason = "no application token" if not token else "wrong application token"
            log.warning("%s refused: %s", line, reason)
            return 401, {"error": "wrong application token"}
        event = parse_query(body)  # only now: the sender knows the token
        name = str(event.get("event", "")).upper()
        data = event.get("data")
        fields = data.get("FIELDS") if isinstance(data, dict) else None
        raw = fields.get("ID") if isinstance(fields, dict) else None
        deal = None
        if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 19:
            deal = int(raw)  # ASCII digits only: «²» or «٣» is no deal id
        line += f" event={_shown(name)} deal={_shown(raw)}"
        if name not in EVENTS:
            log.info("%s refused: ignored event (only %s)", line, ", ".join(sorted(EVENTS)))
            return 200, {"ignored": name}
        if self.stopping:
            log.warning(
                "%s refused: stopping (the safety-net pass of the next start reads it)", line
            )
            return 503, {"error": "the service is stopping"}
        self.note_event(deal)
        log.info("%s accepted; %d deal(s) pending", line, len(self.pending))
        return 200, {"event": name, "queued": deal, "pending": len(self.pending)}


def _make_access_log_visible() -> None:
    """A service's access log is its point: show INFO lines of ``b24kit.sync`` on standard
    error (journald keeps them) unless someone configured that logger or the root one."""
    if log.level == logging.NOTSET and log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)


def _on_signals(
    loop: asyncio.AbstractEventLoop, first: Callable[[], None], again: Callable[[], None]
) -> Callable[[], None]:
    """SIGTERM and SIGINT call ``first`` once, then ``again``; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    seen = 0

    def on_signal(name: str) -> None:
        nonlocal seen
        seen += 1
        if seen == 1:
            log.warning("time=%s %s: stopping after the pass in flight", _now(), name)
            first()
        else:
            log.warning("time=%s %s again: stopping now", _now(), name)
            again()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)

    def undo() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    return undo


async def serve_forever(
    service: SyncService,
    host: str,
    port: int,
    interval: float,
    ready: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Listen on ``host:port`` (a busy port or unknown interface raises
    :class:`~b24kit.asgi.ListenError` before anything starts), serve events, run the
    passes, and return after a clean stop (SIGTERM, Ctrl-C)."""
    import uvicorn

    from b24kit.asgi import listen_socket

    class Server(uvicorn.Server):
        def capture_signals(self) -> Any:  # the signals are ours: see _on_signals
            return contextlib.nullcontext()

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadersInTime(H11Protocol):
        """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers have not
        all come within HEADER_TIMEOUT seconds: slow clients cannot hold every slot."""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._headers_late)

        def _headers_late(self) -> None:
            if self.headers is None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._header_timer.cancel()
            super().connection_lost(exc)

    sock = listen_socket(host, port)
    _make_access_log_visible()
    server = Server(
        uvicorn.Config(
            service,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=5,
            limit_concurrency=1000,
            http=HeadersInTime,
            timeout_graceful_shutdown=5,
        )
    )
    worker = asyncio.create_task(service.work(interval))
    task = asyncio.create_task(server.serve(sockets=[sock]))

    def stop() -> None:
        service.stop()

    service.on_stop = lambda: setattr(server, "should_exit", True)

    def now() -> None:
        stop()
        worker.cancel()

    undo = _on_signals(asyncio.get_running_loop(), stop, now)
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
        await task
        service.stop()
        try:
            await worker  # the pass in flight ends within its deadline
        except asyncio.CancelledError:
            if not service.stopping:
                raise
    finally:
        undo()
        worker.cancel()
        sock.close()
