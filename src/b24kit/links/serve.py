"""``sync --serve``: an HTTP endpoint for the portal's outbound webhook events
(ONCRMDEALADD / ONCRMDEALUPDATE, form-encoded, with ``auth[application_token]``), each
answered by a reconcile pass; a periodic pass is the safety net for missed events.
Passes never overlap: an asyncio lock inside the process, a file lock across processes."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from b24kit.asgi import lifespan, read_body
from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client
from b24kit.encoding import parse_query
from b24kit.links.run import SyncResult, sync_once

log = logging.getLogger("b24kit.sync")
EVENTS = {"ONCRMDEALADD", "ONCRMDEALUPDATE"}


class SyncService:
    def __init__(self, client: B24Client, bp: Blueprint, state_dir: Path, app_token: str,
                 on_pass: Callable[[SyncResult], None] | None = None) -> None:
        self.client = client
        self.bp = bp
        self.state_dir = state_dir
        self.app_token = app_token
        self.lock = asyncio.Lock()
        self.on_pass = on_pass
        self.passes = 0

    async def run_pass(self) -> SyncResult:
        async with self.lock:
            result = await sync_once(self.client, self.bp, self.state_dir)
            self.passes += 1
            if self.on_pass:
                self.on_pass(result)
            return result

    async def periodic(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_pass()
            except Exception:  # noqa: BLE001  the safety net keeps going
                log.exception("sync pass failed")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        status, answer = await self.handle(scope["method"], body)
        payload = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    async def handle(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST":
            return 405, {"error": "POST the portal's events here"}
        event = parse_query(body)
        token = str((event.get("auth") or {}).get("application_token", ""))
        if not hmac.compare_digest(token, self.app_token):
            return 401, {"error": "wrong application token"}
        name = str(event.get("event", "")).upper()
        if name not in EVENTS:
            return 200, {"ignored": name}
        result = await self.run_pass()
        return 200, {"event": name, "created": sum(
            1 for o in result.outcomes if o.ok and o.method == "crm.deal.add"),
            "findings": len(result.findings)}


async def serve_forever(service: SyncService, host: str, port: int, interval: float,
                        ready: Callable[[str], Awaitable[None] | None] | None = None) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(service, host=host, port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    if ready is not None:
        bound = server.servers[0].sockets[0].getsockname()[1]
        outcome = ready(f"http://{host}:{bound}/")
        if outcome is not None:
            await outcome
    safety = asyncio.create_task(service.periodic(interval))
    try:
        await task
    finally:
        safety.cancel()
