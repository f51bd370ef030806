"""Build real clients against sandboxes, in-process or over a loopback HTTP server."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from b24kit.client import (
    B24Client,
    Bucket,
    OperatingTracker,
    RetryPolicy,
    WebhookAuth,
    parse_webhook,
)
from b24kit.clock import Clock, current
from b24kit.sandbox import Faults, Sandbox
from tests.clocks import FakeClock, Wire
from tests.servers import served

UNLIMITED = (1e9, 1e9)


def bucket_for(box: Sandbox, clock: Clock | None = None) -> Bucket:
    clock = clock or current()
    if box.bucket is None:
        return Bucket(*UNLIMITED, clock=clock.monotonic, sleep=clock.sleep)
    return Bucket(box.bucket.capacity, box.bucket.rate, clock=clock.monotonic, sleep=clock.sleep)


def tracker(clock: Clock | None = None) -> OperatingTracker:
    clock = clock or current()
    # sandboxes in tests use short budget windows; probe again soon after a 429
    return OperatingTracker(probe_after=0.2, clock=clock.time, sleep=clock.sleep)


@contextmanager
def client_for(
    box: Sandbox,
    mode: str = "inprocess",
    *,
    bucket: Bucket | None = None,
    retry: RetryPolicy | None = None,
    max_in_flight: int = 8,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Iterator[B24Client]:
    """A client of ``box``; with ``clock`` (a tests.clocks.FakeClock, also given to the
    sandbox) its limiter and retries wait on that clock instead of the real one.
    ``transport`` (in-process only): one that wraps ``box.transport()``, to stage what a
    network does to the requests."""
    retry = retry or RetryPolicy(attempts=10, backoff=0.01, max_backoff=0.05)
    clock = clock or current()
    if mode == "http":
        with served(box) as base:  # over loopback HTTP: the process's shared server
            hook = parse_webhook(box.webhook_url(base))
            wire = None
            if isinstance(clock, FakeClock):
                wire = Wire()  # time on the fake clock stands still while a request is out
                clock.busy = lambda: wire.active > 0
            yield B24Client(
                WebhookAuth(hook),
                transport=wire,
                bucket=bucket or bucket_for(box, clock),
                retry=retry,
                max_in_flight=max_in_flight,
                tracker=tracker(clock),
                clock=clock,
            )
    else:
        hook = parse_webhook(box.webhook_url("http://sandbox.local"))
        yield B24Client(
            WebhookAuth(hook),
            transport=transport or box.transport(),
            bucket=bucket or bucket_for(box, clock),
            retry=retry,
            max_in_flight=max_in_flight,
            tracker=tracker(clock),
            clock=clock,
        )


class ScriptedFaults(Faults):
    """Faults in a given order, one per request ("lost", "drop", "500", None), then none:
    for tests that need a fault at one exact request."""

    def __init__(self, kinds: list[str | None]) -> None:
        super().__init__({"lost": 1.0})
        self.queue: deque[str | None] = deque(kinds)

    def draw(self) -> str | None:
        return self.queue.popleft() if self.queue else None


def sync_served(
    box: Sandbox, blueprint: Any, state: Path, token: str, deals: Iterable[int]
) -> None:
    """Drive ``sync --serve``'s service on ``box`` as Bitrix24 would: for each deal id
    ``deals`` yields (a story that changes the portal, then names the deal), the deal's
    ONCRMDEALUPDATE event is posted and its pass drained before the story goes on."""
    from b24kit.links.serve import SyncService

    async def go() -> None:
        with client_for(box) as client:
            service = SyncService(client, blueprint, state, token, pause=0)
            worker = asyncio.create_task(service.work(300))
            headers = {"content-type": "application/x-www-form-urlencoded"}
            transport = httpx.ASGITransport(app=service)
            async with httpx.AsyncClient(transport=transport, base_url="http://sync") as http:
                for deal in deals:
                    body = (
                        f"event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D={deal}"
                        f"&auth%5Bapplication_token%5D={token}"
                    )
                    assert (await http.post("/", content=body, headers=headers)).status_code == 200
                    await service.drain()
            service.stop()
            await worker

    asyncio.run(go())


class Batches(httpx.AsyncBaseTransport):
    """Passes every request to the sandbox and notes, per batch request, how many
    commands it carried and the HTTP status it got (503: refused by the bucket)."""

    def __init__(self, box: Sandbox) -> None:
        self.inner = box.transport()
        self.sent: list[tuple[int, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/batch"):
            self.sent.append((len(json.loads(request.content)["cmd"]), response.status_code))
        return response

    def ran(self) -> list[int]:
        return [size for size, status in self.sent if status == 200]
