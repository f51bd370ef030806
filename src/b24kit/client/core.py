"""The async REST client: one request path, shared by single calls and batches.

Every request waits for the rate limiter and the method's operating budget, goes through
the transport seam (real HTTP, or a sandbox in-process), and comes back as a typed result
or a typed error. Retries (tenacity) repeat only what cannot duplicate: a refused request
(503, 429: it did not run), an expired OAuth token (401: it did not run), and, when the
caller says the call is safe, server errors and broken connections.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from b24kit.client.address import redact
from b24kit.client.auth import Auth
from b24kit.client.errors import (
    UNKNOWN,
    UNRESOLVED,
    AuthError,
    B24Error,
    BadResponse,
    BucketFull,
    DeadlinePassed,
    OperationTimeLimit,
    PortalError,
    QueryLimitExceeded,
    ServerError,
    TransportFailure,
    classify,
    transient,
)
from b24kit.client.limiter import Bucket, OperatingTracker
from b24kit.clock import Clock, current
from b24kit.encoding import build_query

log = logging.getLogger("b24kit.client")
E = TypeVar("E", bound=B24Error)

READ_SUFFIXES = (
    ".list",
    ".get",
    ".fields",
    ".types",
    ".gettypes",
    ".getbyentitytypeid",
    ".entity.types",
    ".entity.items",
    ".current",
    ".findbycomm",
)
READ_METHODS = {"scope", "methods", "method.get", "server.time", "profile", "user.get"}
IDEMPOTENT_SUFFIXES = (".update", ".items.set")


def _bare(method: str, status: int, detail: str, page: bool = False) -> BadResponse | ServerError:
    """An answer without the envelope. From a 5xx it is a proxy's (nginx's 502/503/504 page:
    no worker took the request, or it ran and the answer was lost): a transient server
    error whose outcome is unknown for a write, as a 500. Never the leaky bucket's
    refusal, which always carries QUERY_LIMIT_EXCEEDED. A 501 or 505 is no such error:
    the server cannot serve the request at all (``transient``)."""
    if transient(status):
        return ServerError(method, status, "", detail)
    return BadResponse(method, status, detail, page=page)


def is_read(method: str) -> bool:
    name = method.lower()
    return name in READ_METHODS or name.endswith(READ_SUFFIXES)


def is_safe_to_repeat(method: str) -> bool:
    """Reads, and writes that set absolute values (updates), may be sent twice."""
    return is_read(method) or method.lower().endswith(IDEMPOTENT_SUFFIXES)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # format first, then redact the text: redacting the arguments one by one turned
        # numbers into strings and broke "%d" in httpx's request line
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


# httpx logs every request URL at INFO; a webhook URL carries its secret.
for _name in ("httpx", "httpcore", "b24kit"):
    logging.getLogger(_name).addFilter(_RedactingFilter())


@dataclass
class Envelope:
    result: Any
    total: int | None = None
    next: int | None = None
    time: dict[str, Any] | None = None


def _as_map(value: Any) -> dict[str, Any]:
    """batch members come as an object, or as a list when keys were 0..n-1, or [] empty."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


@dataclass
class BatchResult:
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, PortalError] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    next: dict[str, int] = field(default_factory=dict)
    time: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetryPolicy:
    attempts: int = 8  # for errors; refusals by the limits (503, 429) do not count
    backoff: float = 0.5
    max_backoff: float = 15.0
    max_limit_wait: float = 1800.0  # give up waiting on the portal's limits after this


def _shorter(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    """``timeout`` with no part longer than ``seconds``."""

    def cut(part: float | None) -> float:
        return seconds if part is None else min(part, seconds)

    return httpx.Timeout(
        connect=cut(timeout.connect),
        read=cut(timeout.read),
        write=cut(timeout.write),
        pool=cut(timeout.pool),
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of this process, made as httpx makes its own for
    ``verify=True`` (certifi's store, or SSL_CERT_FILE / SSL_CERT_DIR when set): httpx made
    one per client, 55 ms of CPU each, and a sync pass or a test run makes dozens of
    clients. (Read once: a change to those variables later in the process is not seen.)"""
    return httpx.create_ssl_context()


class B24Client:
    def __init__(
        self,
        auth: Auth,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        bucket: Bucket | None = None,
        tracker: OperatingTracker | None = None,
        max_in_flight: int = 50,  # the bucket paces; the standard burst is 50
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.auth = auth
        # what the retry waits sleep on and max_limit_wait is measured with; a bucket or
        # tracker made here takes it too (b24kit.clock: the real clock unless a test says)
        self.clock = clock if clock is not None else current()
        self.bucket = (
            bucket
            if bucket is not None
            else Bucket(clock=self.clock.monotonic, sleep=self.clock.sleep)
        )
        self.tracker = (
            tracker
            if tracker is not None
            else OperatingTracker(clock=self.clock.time, sleep=self.clock.sleep)
        )
        self.retry = retry or RetryPolicy()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        # a transport of one's own (the in-process sandbox) needs no TLS context
        verify: ssl.SSLContext | bool = True if transport is not None else _tls_context()
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, verify=verify)
        self.requests = 0  # HTTP requests sent, for figures and tests
        # told of every retry and of every wait on the portal's limits of 2 s or more
        # ("retrying crm.deal.list (2/8) in 4 s: ..."), so that no wait is silent
        self.on_retry: Callable[[str], None] | None = None
        # when the run must end (on self.clock's monotonic time): see within()
        self.deadline: float | None = None
        self._budget = 0.0

    @property
    def portal(self) -> str:
        return self.auth.portal

    @property
    def timeout(self) -> float | None:
        """Seconds a request may take (connect, read, write each)."""
        return self._http.timeout.read

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._http.timeout = httpx.Timeout(seconds)

    @contextmanager
    def within(self, seconds: float | None) -> Iterator[None]:
        """Every request made inside the block ends within ``seconds`` from now: no wait on
        the portal's limits, no retry and no request outlasts it (each request's timeout
        is cut to what is left); past it, :class:`DeadlinePassed`. Nested: the earlier
        deadline wins. ``None``: no deadline of its own."""
        saved = self.deadline, self._budget
        if seconds is not None:
            end = self.clock.monotonic() + seconds
            if self.deadline is None or end < self.deadline:
                self.deadline, self._budget = end, seconds
        try:
            yield
        finally:
            self.deadline, self._budget = saved

    def _time_left(self, method: str, need: float = 0.0) -> float | None:
        """Seconds left before the deadline (None: none set); DeadlinePassed when fewer
        than ``need`` are."""
        if self.deadline is None:
            return None
        left = self.deadline - self.clock.monotonic()
        if left <= need:
            why = f"waiting {need:.0f} s more would pass it" if need > max(left, 0) else "passed"
            raise DeadlinePassed(
                f"{method}: the run's deadline of {self._budget:g} s {why}; the work is "
                "incomplete (run it again to continue)"
            )
        return left

    async def _wait_limits(self, method: str) -> None:
        """Wait for the method's operating budget, unless that wait outlasts the deadline."""
        self._time_left(method, self.tracker.wait_time(method))
        await self.tracker.wait(method, self.on_retry)

    async def __aenter__(self) -> B24Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------- one request
    async def _send(
        self, method: str, params: Mapping[str, Any], wait_if_refused: bool = True
    ) -> dict[str, Any]:
        await self._wait_limits(method)
        if not wait_if_refused:
            if not self.bucket.take_now():
                raise BucketFull(
                    method,
                    503,
                    "QUERY_LIMIT_EXCEEDED",
                    "not sent: the portal refused a request just now and its bucket has "
                    "no room yet",
                )
        else:
            try:  # the client's own rate limit waits within the deadline too
                async with asyncio.timeout(self._time_left(method)):
                    await self.bucket.acquire()
            except TimeoutError:
                self._time_left(method, float("inf"))  # raises DeadlinePassed
                raise
        body = dict(params)
        body.update(self.auth.params())
        async with self._in_flight:
            left = self._time_left(method)
            timeout = self._http.timeout if left is None else _shorter(self._http.timeout, left)
            self.requests += 1
            try:
                async with asyncio.timeout(left):  # the whole answer, however slowly it drips
                    response = await self._http.post(
                        self.auth.url(method),
                        content=json.dumps(body, ensure_ascii=False, default=str).encode("utf-8"),
                        headers={"content-type": "application/json"},
                        timeout=timeout,
                    )
            except TimeoutError:
                raise TransportFailure(
                    method,
                    self.portal,
                    f"no answer within the run's deadline ({self._budget:g} s)",
                    may_still_run=True,
                ) from None
            except httpx.HTTPError as exc:
                if isinstance(exc, (httpx.RemoteProtocolError, httpx.ConnectError)):
                    self.bucket.not_counted()  # cut before the answer, or never made: as
                    # a 500 (_given_back)
                detail = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
                for secret in self.auth.secrets():
                    detail = detail.replace(secret, "***")
                permanent = isinstance(exc, httpx.ConnectError) and any(
                    marker in str(exc).lower() for marker in UNRESOLVED
                )
                if permanent:
                    detail = "the host name does not resolve (is the portal address right?)"
                raise TransportFailure(
                    method,
                    self.portal,
                    detail,
                    permanent=permanent,
                    may_still_run=isinstance(exc, httpx.TimeoutException)
                    and not isinstance(exc, httpx.ConnectTimeout),
                ) from None
        try:
            return self._decode(method, response)
        finally:
            # httpx binds a response and its (already read, closed) stream in a reference
            # cycle, which keeps the whole body, bytes and text, alive until a full garbage
            # collection: on a long read, batch after batch piles up. Cut the cycle so the
            # body goes as soon as it is decoded.
            response.stream = httpx.ByteStream(b"")

    def _given_back(self, error: E) -> E:
        """``error``, its request's place in our bucket given back when the portal's leaky
        bucket may not have counted it: a server error the portal is not still running (a
        500; a proxy's bare 503, where no PHP worker took the request). The transport's
        like cases (a connection cut before the answer, one never made) do the same.
        No source says whether a real portal counts such a request (docs/sandbox.md#faults):
        if it did, its next refusal (QUERY_LIMIT_EXCEEDED, which runs nothing) makes us
        believe the bucket full again, at the cost of one refused request; had we kept the
        place and the portal not, a fifth of the rate limit would go unused under 20% of
        such faults (75 against 98 writes/s, tests/test_executor_writes.py). A gateway's
        502/504 and a time-out keep their place: the portal may still be running them."""
        if isinstance(error, ServerError) and not error.may_still_run:
            self.bucket.not_counted()
        return error

    def _bare(
        self, method: str, status: int, detail: str, page: bool = False
    ) -> BadResponse | ServerError:
        """An answer without the envelope (module ``_bare``; ``page``: a web page), its
        place in our bucket given back as ``_given_back`` says."""
        return self._given_back(_bare(method, status, detail, page))

    def _decode(self, method: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        body = response.content
        if not body.strip():
            raise self._bare(method, status, "empty response body")
        try:
            # JSON from the bytes (UTF-8, or UTF-16/32 by its first bytes, RFC 8259), as
            # httpx's Response.json does: not through Response.text, whose charset lookup
            # cost each answer as much as decoding it
            data = json.loads(body)
        except ValueError:
            # (the text decoded only to tell an HTML page from other text)
            page = "<html" in response.text[:500].lower()
            kind = "an HTML page" if page else "a non-JSON body"
            raise self._bare(method, status, f"the portal answered with {kind}", page) from None
        if not isinstance(data, dict):
            raise BadResponse(method, status, "the answer is not a JSON object")
        if "error" in data and "result" not in data:
            description = redact(str(data.get("error_description", "")))
            raise self._given_back(classify(method, status, data.get("error"), description))
        if status >= 400:
            raise BadResponse(method, status, "an error status without an error body")
        if "result" not in data:
            raise BadResponse(method, status, "the answer has no result")
        self.tracker.observe(method, data.get("time"))
        return data

    # --------------------------------------------------------------- retrying
    def _retryable(self, safe: bool, wait_if_refused: Callable[[], bool]) -> Any:
        def check(exc: BaseException) -> bool:
            if isinstance(exc, QueryLimitExceeded):
                return wait_if_refused()
            if isinstance(exc, OperationTimeLimit):
                return True
            if isinstance(exc, AuthError) and exc.upper_code == "EXPIRED_TOKEN":
                return True
            if isinstance(exc, TransportFailure) and exc.permanent:
                return False
            if isinstance(exc, BadResponse) and exc.final:
                return False
            return safe and isinstance(exc, UNKNOWN)

        return retry_if_exception(check)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, QueryLimitExceeded):
            return self.bucket.interval
        if isinstance(exc, (OperationTimeLimit, AuthError)):
            return 0.0  # tracker.wait / the refresh already did the waiting
        delay: float = self.retry.backoff * (2 ** (state.attempt_number - 1))
        return float(min(delay, self.retry.max_backoff))

    async def _before_retry(self, state: RetryCallState, method: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, QueryLimitExceeded):
            self.bucket.refused()
        elif isinstance(exc, OperationTimeLimit):
            self.tracker.blocked(method)
        elif (
            isinstance(exc, AuthError)
            and exc.upper_code == "EXPIRED_TOKEN"
            and not await self.auth.refresh(self._http)
        ):
            raise exc
        log.info("retrying %s after %s", method, type(exc).__name__)
        wait = state.next_action.sleep if state.next_action else 0.0
        limited = isinstance(exc, (QueryLimitExceeded, OperationTimeLimit))
        if self.on_retry is not None and (not limited or wait >= 2):
            what = (
                "waiting for the portal's limit"
                if limited
                else (f"retrying ({state.attempt_number + 1}/{self.retry.attempts})")
            )
            self.on_retry(f"{method}: {what} in {wait:.0f} s: {exc}")

    async def envelope(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        safe: bool | None = None,
        wait_if_refused: bool = True,
    ) -> Envelope:
        """Call a method and return the whole envelope. ``safe`` says whether the call may
        be repeated after an unknown outcome (default: reads and updates are safe).
        ``wait_if_refused=False``: a refusal by the portal's leaky bucket of the first
        attempt (it ran nothing) is raised, the bucket believed full, instead of waited out
        and sent again: for a caller that would rather re-pack what the request carried
        (the executor). A repeat after an error waits for the bucket as any call does: the
        first attempt may have run, so what the caller gets then is never "refused"."""
        safe = is_safe_to_repeat(method) if safe is None else safe
        params = dict(params or {})
        refreshed = False
        attempts = 0
        unknown: B24Error | None = None  # an earlier attempt's error: it may have run

        def waits_if_refused() -> bool:
            return wait_if_refused or attempts > 1

        async def before(state: RetryCallState) -> None:
            nonlocal refreshed, unknown
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, UNKNOWN):
                unknown = exc
            if isinstance(exc, AuthError) and exc.upper_code == "EXPIRED_TOKEN":
                if refreshed:
                    raise exc  # refresh once, then give up (docs' recommended flow)
                refreshed = True
            await self._before_retry(state, method)
            self._time_left(method, state.next_action.sleep if state.next_action else 0.0)

        errors_seen = 0
        started = self.clock.monotonic()

        def stop(state: RetryCallState) -> bool:
            nonlocal errors_seen
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, (QueryLimitExceeded, OperationTimeLimit)):
                return self.clock.monotonic() - started > self.retry.max_limit_wait
            errors_seen += 1
            return errors_seen >= self.retry.attempts

        retrying = AsyncRetrying(
            sleep=self.clock.sleep,
            stop=stop,
            wait=self._wait,
            retry=self._retryable(safe, waits_if_refused),
            before_sleep=before,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    data = await self._send(method, params, waits_if_refused())
        except QueryLimitExceeded as exc:
            if not waits_if_refused() and not isinstance(exc, BucketFull):
                self.bucket.refused()
            if not wait_if_refused and unknown is not None:
                # refused for good after an attempt that may have run: not "ran nothing"
                raise unknown from None
            raise
        return Envelope(
            result=data.get("result"),
            total=data.get("total"),
            next=data.get("next"),
            time=data.get("time"),
        )

    async def raw(
        self, method: str, params: Mapping[str, Any] | None = None, *, auth: Auth | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One request, not retried and not classified: the HTTP status and the decoded
        JSON body ({} when there is none). For checks of the protocol's own shape
        (``portal conformance``); everything else goes through ``envelope``."""
        auth = auth or self.auth
        await self.bucket.acquire()
        body = dict(params or {})
        body.update(auth.params())
        async with self._in_flight:
            self.requests += 1
            try:
                response = await self._http.post(
                    auth.url(method),
                    content=json.dumps(body, ensure_ascii=False, default=str).encode("utf-8"),
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                detail = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
                for secret in [*self.auth.secrets(), *auth.secrets()]:
                    detail = detail.replace(secret, "***")
                raise TransportFailure(method, self.portal, detail) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        return response.status_code, data if isinstance(data, dict) else {}

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, safe: bool | None = None
    ) -> Any:
        return (await self.envelope(method, params, safe=safe)).result

    async def batch(
        self,
        commands: Mapping[str, tuple[str, Mapping[str, Any]]]
        | Sequence[tuple[str, Mapping[str, Any]]],
        *,
        halt: bool = False,
        safe: bool | None = None,
        wait_if_refused: bool = True,
    ) -> BatchResult:
        """Run up to 50 commands in one request. Each command is (method, params); params
        may hold ``$result[name][...]`` strings that refer to earlier commands.
        ``wait_if_refused``: as for ``envelope``."""
        items = (
            commands.items()
            if isinstance(commands, Mapping)
            else ((str(i), c) for i, c in enumerate(commands))
        )
        cmd: dict[str, str] = {}
        methods: dict[str, str] = {}
        for name, (method, params) in items:
            query = build_query(params) if params else ""
            cmd[str(name)] = f"{method}?{query}" if query else method
            methods[str(name)] = method
        if len(cmd) > 50:
            raise ValueError("a batch carries at most 50 commands")
        if safe is None:
            safe = all(is_safe_to_repeat(m) for m in methods.values())
        for method_name in set(methods.values()):
            # each command counts against its own method's budget: wait for every one
            await self._wait_limits(method_name)
        envelope = await self.envelope(
            "batch",
            {"halt": 1 if halt else 0, "cmd": cmd},
            safe=safe,
            wait_if_refused=wait_if_refused,
        )
        raw = envelope.result if isinstance(envelope.result, Mapping) else {}
        out = BatchResult(
            result=_as_map(raw.get("result")),
            total={k: int(v) for k, v in _as_map(raw.get("result_total")).items()},
            next={k: int(v) for k, v in _as_map(raw.get("result_next")).items()},
            time=_as_map(raw.get("result_time")),
        )
        for name, err in _as_map(raw.get("result_error")).items():
            if isinstance(err, Mapping):
                out.error[name] = classify(
                    methods.get(name, name),
                    400,
                    err.get("error"),
                    redact(str(err.get("error_description", ""))),
                )
        for name, info in out.time.items():
            self.tracker.observe(methods.get(name, name), info)
        return out
