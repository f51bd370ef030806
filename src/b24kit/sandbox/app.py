"""The sandbox portal: one object that answers Bitrix24 REST requests.

``Sandbox.handle()`` turns a request into a response; ``Sandbox`` is also an ASGI app
(for uvicorn, or ``httpx.ASGITransport``), and ``Sandbox.transport()`` gives an httpx
transport that calls it in-process with no socket at all.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import b24kit.sandbox.methods  # noqa: F401  (registers every method)
from b24kit.asgi import lifespan, read_body
from b24kit.clock import Clock, current
from b24kit.encoding import parse_query, php_truthy
from b24kit.sandbox import errors
from b24kit.sandbox.batch import run_batch
from b24kit.sandbox.costs import DEFAULT as DEFAULT_COST_MODEL
from b24kit.sandbox.costs import preset
from b24kit.sandbox.db import Database, dump_bytes
from b24kit.sandbox.faults import Faults
from b24kit.sandbox.limits import PLANS, LeakyBucket, OperatingBudget
from b24kit.sandbox.methods.system import ALL_SCOPES
from b24kit.sandbox.portal import Portal, new_portal_db
from b24kit.sandbox.readings import parse_readings
from b24kit.sandbox.registry import GLOBAL, METHODS, CallContext, Paged
from b24kit.sandbox.values import intval, now_iso, parse_tz

WEBHOOK_PATH = re.compile(r"^/rest/(\d+)/([^/]+)/([^/]+?)(?:\.(json|xml))?/?$")
OAUTH_PATH = re.compile(r"^/rest/([^/]+?)(?:\.(json|xml))?/?$")
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_DB = ".b24kit/sandbox.sqlite"
# No published figure says how many requests a cloud portal serves at once. 50 is the
# standard plan's burst (the most requests the leaky bucket admits at one moment) and
# fast_bitrix24's own cap (srh.py, BITRIX_MAX_CONCURRENT_REQUESTS = 50): the sandbox never
# queues a request the bucket admitted. Fewer (--workers 4) models a busy portal.
DEFAULT_WORKERS = 50
# What a proxy in front of PHP answers when no worker can take the request: nginx's own
# page, no Bitrix error code (a sandbox 503 fault)
PROXY_503 = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def new_token(length: int = 16) -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(length))


@dataclass
class SandboxConfig:
    db: str = ":memory:"
    user_id: int = 1
    token: str | None = None
    limits: str = "standard"  # standard | enterprise | off
    latency_ms: float = 0.0
    faults: str | None = None
    operating_limit: float = 480.0
    operating_window: float = 600.0
    timezone: str = "+03:00"
    scopes: tuple[str, ...] = ALL_SCOPES
    # unix time for the limits, the budget, tokens and stamps (b24kit.clock: the real
    # clock unless a test installed another)
    clock: Callable[[], float] = field(default_factory=lambda: current().time)
    # Alternative readings of points no source settles (sandbox/readings.py).
    readings: frozenset[str] = frozenset()
    # "ru": new pipelines' template stages get the Russian names a portal in Russian gives
    language: str = "en"
    # what each call charges the operating budget: a preset of sandbox/costs.py
    cost_model: str = DEFAULT_COST_MODEL
    # spend each request's charged time as wall time before answering, as a portal takes it
    wall_time: bool = False
    # requests in progress at once (a portal's PHP workers); the others wait for a free one
    workers: int = DEFAULT_WORKERS
    # how the sandbox waits (wall time): by default the sleep of the clock whose ``time``
    # is ``clock`` (a test's FakeClock), else b24kit.clock's current one
    sleep: Callable[[float], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Call:
    """A command a batch ran: its name in the batch, its method and its parameters."""

    name: str
    method: str
    params: dict[str, Any]


@dataclass
class Response:
    status: int
    body: bytes
    fault: str | None = None  # "drop": not executed; "lost": executed, answer lost
    content_type: str = "application/json; charset=utf-8"
    charged: float = 0.0  # operating seconds the request's calls were charged


class ConnectionDropped(Exception):
    """Raised inside the ASGI app to make the server cut the connection."""


class Workers:
    """Up to ``size`` requests in progress at once; the next waits for a free worker.
    One semaphore per event loop (a sandbox may outlive the loop of one test)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"workers must be at least 1, not {size}")
        self.size = size
        self.active = 0
        self.peak = 0  # the most requests in progress at once, for tests
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(size)

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._slots = loop, asyncio.Semaphore(self.size)
        await self._slots.acquire()
        self.active += 1
        self.peak = max(self.peak, self.active)

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        self._slots.release()


def _sleeper(config: SandboxConfig) -> Callable[[float], Awaitable[None]]:
    if config.sleep is not None:
        return config.sleep
    owner = getattr(config.clock, "__self__", None)
    return owner.sleep if isinstance(owner, Clock) else current().sleep


class Sandbox:
    def __init__(
        self,
        config: SandboxConfig | None = None,
        copy_of: Database | None = None,
        /,
        **overrides: Any,
    ) -> None:
        """A sandbox answering with ``config`` and ``overrides``; its data a copy of the
        database ``copy_of`` (``clone``'s) if given, else ``config.db``."""
        self.config = replace(config or SandboxConfig(), **overrides)
        if self.config.limits not in ("standard", "enterprise", "off"):
            raise ValueError(
                f"unknown limits {self.config.limits!r}; use standard, enterprise or off"
            )
        self.clock = self.config.clock
        self.sleep = _sleeper(self.config)
        self.costs = preset(self.config.cost_model)
        self.workers = Workers(self.config.workers)
        self.tz = parse_tz(self.config.timezone)
        self.faults = Faults.parse(self.config.faults)
        if copy_of is None and self.config.db == ":memory:":
            self.db = new_portal_db()
        else:
            self.db = Database(self.config.db, copy_of=copy_of)
        self.readings = parse_readings(self.config.readings)
        self.portal = Portal(
            self.db, self.tz, self.clock, self.readings, self.config.language, self.costs
        )
        self._charged = 0.0  # operating seconds charged by the request being handled
        self.bucket: LeakyBucket | None = None
        if self.config.limits != "off":
            capacity, rate = PLANS[self.config.limits]
            self.bucket = LeakyBucket(capacity, rate, self.clock)
        self.budget = OperatingBudget(
            self.config.operating_limit, self.config.operating_window, self.clock
        )
        self.requests = 0  # HTTP requests answered, for tests that count round trips
        self.statuses: Counter[int] = Counter()  # answers by HTTP status
        self.budget_refusals = 0  # calls refused by the operating budget, batch commands too
        # every command a batch ran (its name in the batch, method, parameters as received):
        # for tests that compare what a client sent with what it said it would send
        self.calls: list[Call] | None = None
        self.token = self._ensure_webhook()
        from b24kit.sandbox.sheets import FakeSheets

        self.sheets = FakeSheets()  # the Google Sheets v4 stand-in: migrate reads, reports write

    # -------------------------------------------------------------- identity
    def _ensure_webhook(self) -> str:
        stored = self.db.get_meta("webhook_token")
        token = self.config.token or stored or new_token()
        with self.db.transaction():
            if stored and stored != token:
                self.db.execute("DELETE FROM webhooks WHERE token = ?", (stored,))
            self.db.set_meta("webhook_token", token)
            self.db.execute(
                "INSERT OR REPLACE INTO webhooks(token, user_id, scopes) VALUES(?, ?, ?)",
                (token, self.config.user_id, ",".join(self.config.scopes)),
            )
            if self.portal.user(self.config.user_id) is None:
                self.portal.add_user({"NAME": f"User {self.config.user_id}"}, self.config.user_id)
        return token

    def webhook_url(self, base: str) -> str:
        return f"{base.rstrip('/')}/rest/{self.config.user_id}/{self.token}/"

    def add_webhook(self, user_id: int, scopes: tuple[str, ...], token: str | None = None) -> str:
        token = token or new_token()
        with self.db.transaction():
            if self.portal.user(user_id) is None:
                self.portal.add_user({"NAME": f"User {user_id}"}, user_id)
            self.db.execute(
                "INSERT OR REPLACE INTO webhooks(token, user_id, scopes) VALUES(?, ?, ?)",
                (token, user_id, ",".join(scopes)),
            )
        return token

    def register_app(
        self, client_id: str, client_secret: str, scopes: tuple[str, ...] = ALL_SCOPES
    ) -> str:
        application_token = new_token(32)
        with self.db.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO oauth_apps VALUES(?, ?, ?, ?)",
                (client_id, client_secret, application_token, ",".join(scopes)),
            )
        return application_token

    def issue_tokens(
        self, client_id: str, user_id: int = 1, expires_in: int = 3600
    ) -> dict[str, Any]:
        app = self.db.one("SELECT * FROM oauth_apps WHERE client_id = ?", (client_id,))
        if app is None:
            raise ValueError(f"no app {client_id!r}; call register_app first")
        access, refresh = new_token(32), new_token(32)
        expires = self.clock() + expires_in
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO oauth_tokens(access_token, refresh_token, client_id, user_id, scopes, "
                "expires_at) VALUES(?, ?, ?, ?, ?, ?)",
                (access, refresh, client_id, user_id, app["scopes"], expires),
            )
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "expires": int(expires),
            "scope": app["scopes"],
            "user_id": user_id,
            "member_id": "sandbox",
            "status": "L",
            "domain": "oauth.bitrix.info",
            "client_endpoint": "/rest/",
            "server_endpoint": "/oauth/",
        }

    # ------------------------------------------------------------------ auth
    def _auth_webhook(self, user_id: int, token: str) -> tuple[int, frozenset[str], str]:
        row = self.db.one("SELECT * FROM webhooks WHERE token = ?", (token,))
        if row is None or int(row["user_id"]) != user_id:
            raise self._auth_error(errors.INVALID_CREDENTIALS)
        return user_id, frozenset(s for s in row["scopes"].split(",") if s), f"hook:{token}"

    def _auth_error(self, spec: tuple[str, str, int]) -> errors.ApiError:
        """A wrong secret answers 401 INVALID_CREDENTIALS (measured, b24jssdk#500; the rest
        source throws it as an OAuthException) and insufficient_scope 403 (the docs' system
        errors table). The sources disagree, so each has a reading for the other status:
        ``auth-403`` (the table's status for INVALID_CREDENTIALS) and ``scope-401``."""
        exc = errors.make(spec)
        if spec == errors.INVALID_CREDENTIALS and "auth-403" in self.readings:
            exc.status = 403
        if spec == errors.INSUFFICIENT_SCOPE and "scope-401" in self.readings:
            exc.status = 401
        return exc

    def _auth_oauth(self, params: dict[str, Any]) -> tuple[int, frozenset[str], str]:
        token = params.pop("auth", None)
        if token in (None, ""):
            raise errors.make(errors.NO_AUTH)
        row = self.db.one("SELECT * FROM oauth_tokens WHERE access_token = ?", (str(token),))
        if row is None:
            raise errors.make(errors.INVALID_TOKEN)
        if row["expires_at"] <= self.clock():
            raise errors.make(errors.EXPIRED_TOKEN)
        scopes = frozenset(s for s in row["scopes"].split(",") if s)
        return int(row["user_id"]), scopes, f"app:{row['client_id']}"

    def _token_endpoint(self, params: Mapping[str, Any]) -> Response:
        def fail(code: str, text: str) -> Response:
            return Response(400, dump_bytes({"error": code, "error_description": text}))

        if params.get("grant_type") != "refresh_token":
            return fail("invalid_request", "grant_type must be refresh_token")
        app = self.db.one(
            "SELECT * FROM oauth_apps WHERE client_id = ?", (str(params.get("client_id", "")),)
        )
        if app is None or app["client_secret"] != params.get("client_secret"):
            return fail("invalid_client", "Invalid client credentials")
        row = self.db.one(
            "SELECT * FROM oauth_tokens WHERE refresh_token = ? AND refresh_valid = 1",
            (str(params.get("refresh_token", "")),),
        )
        if row is None or row["client_id"] != app["client_id"]:
            return fail("invalid_grant", "Invalid refresh token")
        with self.db.transaction():
            self.db.execute(
                "UPDATE oauth_tokens SET refresh_valid = 0 WHERE access_token = ?",
                (row["access_token"],),
            )
        return Response(200, dump_bytes(self.issue_tokens(app["client_id"], int(row["user_id"]))))

    # -------------------------------------------------------------- requests
    def _time(self, start: float, processing: float, key: tuple[str, str] | None) -> dict[str, Any]:
        finish = self.clock()
        out: dict[str, Any] = {
            "start": start,
            "finish": finish,
            "duration": finish - start,
            "processing": processing,
            "date_start": now_iso(start, self.tz),
            "date_finish": now_iso(finish, self.tz),
        }
        if key is not None:
            operating, reset = self.budget.state(key)
            out["operating_reset_at"] = int(reset)
            out["operating"] = round(operating, 6)
        return out

    def _run(
        self,
        name: str,
        params: dict[str, Any],
        user_id: int,
        scopes: frozenset[str],
        auth_key: str,
        in_batch: bool,
        metered: bool = True,
    ) -> dict[str, Any]:
        """Run one method; returns the envelope members. Raises ApiError."""
        started = self.clock()
        lowered = name.lower()
        spec = METHODS.get(lowered)  # its name, lowered, is ``lowered``
        if spec is None:
            raise errors.make(errors.METHOD_NOT_FOUND)
        if any(s != GLOBAL and s not in scopes for s in spec.scopes):
            exc = self._auth_error(errors.INSUFFICIENT_SCOPE)
            if in_batch:
                exc.description = ""  # batch.md's examples: "error_description": ""
            elif auth_key.startswith("app:"):
                # system errors table: "For an application, the error message ends with
                # `provided by the access token`"
                exc.description = exc.description.replace("webhook token", "access token")
            raise exc
        key = (auth_key, lowered)
        if spec.name == "batch":
            if in_batch:
                raise errors.ApiError(
                    "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
                )
            result = self._batch(params, user_id, scopes, auth_key)
            return {"result": result, "time": self._time(started, 0.0, None)}
        if metered and self.budget.blocked(key):
            self.budget_refusals += 1
            raise errors.make(errors.OPERATION_LIMIT)
        ctx = CallContext(
            self.portal, user_id, scopes, intval(params.pop("start", 0)), in_batch=in_batch
        )
        try:
            result = spec.handler(ctx, params)
        finally:
            ctx.add_cost(self.costs.base(spec.name))
            if metered:
                self.budget.spend(key, ctx.cost)
                self._charged += ctx.cost
        out: dict[str, Any] = {}
        if isinstance(result, Paged):
            out["result"] = result.result
            if result.total is not None:
                out["total"] = result.total
            if result.next is not None:
                out["next"] = result.next
        else:
            out["result"] = result
        out["time"] = self._time(started, ctx.cost, key if metered else None)
        return out

    def _batch(
        self, params: dict[str, Any], user_id: int, scopes: frozenset[str], auth_key: str
    ) -> dict[str, Any]:
        cmd = next((v for k, v in params.items() if str(k).lower() == "cmd"), None)
        halt = php_truthy(next((v for k, v in params.items() if str(k).lower() == "halt"), None))
        if isinstance(cmd, list):
            commands = {str(i): c for i, c in enumerate(cmd)}
        elif isinstance(cmd, Mapping):
            commands = {str(k): v for k, v in cmd.items()}
        else:
            commands = {}

        def runner(method: str, sub: dict[str, Any], key: str) -> tuple[bool, dict[str, Any]]:
            if self.calls is not None:
                self.calls.append(Call(key, method, copy.deepcopy(sub)))
            try:
                return True, self._run(method, sub, user_id, scopes, auth_key, in_batch=True)
            except errors.ApiError as exc:
                return False, exc.body()
            except Exception:  # noqa: BLE001  a sandbox bug must not kill the whole batch
                return False, {
                    "error": "INTERNAL_SERVER_ERROR",
                    "error_description": "Internal server error",
                }

        return run_batch(commands, halt, runner)

    async def handle(
        self, http_method: str, path: str, query: bytes | str, content_type: str, body: bytes
    ) -> Response:
        if self.sheets.handles(path):
            status, body = self.sheets.handle(
                path, query.decode() if isinstance(query, bytes) else query, http_method, body
            )
            return Response(status, body)
        self.requests += 1
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        async with self.workers:
            response = self.handle_sync(http_method, path, query, content_type, body)
            if self.config.wall_time and response.charged > 0:
                await self.sleep(response.charged)  # the portal takes that long to answer
        self.statuses[response.status] += 1
        return response

    def _params(self, query: bytes | str, content_type: str, body: bytes) -> dict[str, Any]:
        params = parse_query(query)
        if body:
            if "json" in content_type:
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None  # PHP decodes garbage to nothing; the method then complains
                if isinstance(data, Mapping):
                    params.update(data)
            elif "x-www-form-urlencoded" in content_type or not content_type:
                params.update(parse_query(body))
        return params

    def handle_sync(
        self, http_method: str, path: str, query: bytes | str, content_type: str, body: bytes
    ) -> Response:
        """One request, answered at once; ``Response.charged`` says what its calls cost."""
        self._charged = 0.0
        response = self._answer(http_method, path, query, content_type, body)
        response.charged, self._charged = self._charged, 0.0
        return response

    def _answer(
        self, http_method: str, path: str, query: bytes | str, content_type: str, body: bytes
    ) -> Response:
        started = self.clock()
        params = self._params(query, content_type, body)
        if path.rstrip("/") in ("/oauth/token", "/oauth/token/"):
            return self._token_endpoint(params)
        webhook = WEBHOOK_PATH.match(path)
        oauth = None if webhook else OAUTH_PATH.match(path)
        if webhook is None and oauth is None:
            return Response(
                404,
                dump_bytes(
                    {"error": "NOT_FOUND", "error_description": f"No REST endpoint at {path}"}
                ),
            )
        fault = self.faults.draw()
        if fault == "503":
            # the proxy's answer, not the portal's: the request never reached the portal,
            # so its leaky bucket did not count it (and QUERY_LIMIT_EXCEEDED comes only
            # from that bucket, below)
            return Response(503, PROXY_503, content_type="text/html")
        if not self.faults.counted and fault in ("500", "drop"):
            # the other reading (faults.py): failed before the leaky bucket counted it
            return self._fault_answer(fault)
        if self.bucket is not None and not self.bucket.admit():
            self.faults.unapplied(fault)  # refused first: the drawn fault never happened
            return self._error(errors.make(errors.QUERY_LIMIT))
        if fault in ("500", "drop"):
            return self._fault_answer(fault)
        try:
            if webhook is not None:
                user_id, scopes, auth_key = self._auth_webhook(
                    int(webhook.group(1)), webhook.group(2)
                )
                method_name = webhook.group(3)
            else:
                assert oauth is not None
                user_id, scopes, auth_key = self._auth_oauth(params)
                method_name = oauth.group(1)
            envelope = self._run(method_name, params, user_id, scopes, auth_key, in_batch=False)
        except errors.ApiError as exc:
            return self._error(exc)
        except Exception:  # noqa: BLE001
            import logging

            logging.getLogger("b24kit.sandbox").exception("sandbox method failed")
            return self._error(errors.make(errors.INTERNAL))
        if "time" not in envelope:
            envelope["time"] = self._time(started, 0.0, None)
        return Response(200, dump_bytes(envelope), fault="lost" if fault == "lost" else None)

    def _fault_answer(self, fault: str) -> Response:
        """What the client gets for a ``500`` or ``drop`` fault: nothing ran."""
        if fault == "500":
            return self._error(errors.make(errors.INTERNAL))
        return Response(200, b"", fault="drop")

    @staticmethod
    def _error(exc: errors.ApiError) -> Response:
        return Response(exc.status, dump_bytes(exc.body()))

    # ----------------------------------------------------------- in-process
    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Run a method directly as the webhook user: no HTTP, no limits, no faults.
        For seeding and for tests that set up state."""
        user_id = self.config.user_id
        scopes = frozenset(self.config.scopes)
        envelope = self._run(
            method, dict(params or {}), user_id, scopes, "direct", False, metered=False
        )
        return envelope["result"]

    def clone(self, **overrides: Any) -> Sandbox:
        """A new in-memory sandbox holding a copy of this one's data, with this one's
        config and webhook token except for ``overrides`` (limits, faults, budget, clock:
        how it answers). Made fresh: its counters, limits and fake Sheets. Settings that
        shaped the stored data when it was made (``language``) come with the data."""
        config = replace(self.config, db=":memory:", token=self.token, **overrides)
        # made on the copy: no schema or default portal of its own first, which the copy
        # would only replace; its webhook is the config's user and scopes, as at creation
        return Sandbox(config, self.db)

    def transport(self) -> Any:
        from b24kit.sandbox.transport import SandboxTransport

        return SandboxTransport(self)

    def fill_bucket(self) -> None:
        if self.bucket is not None:
            self.bucket.fill()

    # ----------------------------------------------------------------- ASGI
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        response = await self.handle(
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            headers.get("content-type", ""),
            body,
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type.encode()),
                    (b"content-length", str(max(len(response.body), 1)).encode()),
                ],
            }
        )
        if response.fault is not None:
            # Headers promised a body that never comes: the server must close the
            # connection and the client sees a broken response.
            raise ConnectionDropped(response.fault)
        await send({"type": "http.response.body", "body": response.body})

    def close(self) -> None:
        self.db.close()


def open_sandbox(db: str | Path = DEFAULT_DB, **overrides: Any) -> Sandbox:
    return Sandbox(SandboxConfig(db=str(db)), **overrides)
