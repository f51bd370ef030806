"""Build real clients against sandboxes, in-process or over a loopback HTTP server."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from b24kit.client import (
    B24Client,
    Bucket,
    OperatingTracker,
    RetryPolicy,
    WebhookAuth,
    parse_webhook,
)
from b24kit.sandbox import Faults, Sandbox
from b24kit.sandbox.server import start_in_thread

UNLIMITED = (1e9, 1e9)


def bucket_for(box: Sandbox) -> Bucket:
    if box.bucket is None:
        return Bucket(*UNLIMITED)
    return Bucket(box.bucket.capacity, box.bucket.rate)


def tracker() -> OperatingTracker:
    # sandboxes in tests use short budget windows; probe again soon after a 429
    return OperatingTracker(probe_after=0.2)


@contextmanager
def client_for(box: Sandbox, mode: str = "inprocess", *, bucket: Bucket | None = None,
               retry: RetryPolicy | None = None, max_in_flight: int = 8) -> Iterator[B24Client]:
    retry = retry or RetryPolicy(attempts=10, backoff=0.01, max_backoff=0.05)
    if mode == "http":
        server = start_in_thread(box)
        hook = parse_webhook(box.webhook_url(server.base_url))
        try:
            yield B24Client(WebhookAuth(hook), bucket=bucket or bucket_for(box), retry=retry,
                            max_in_flight=max_in_flight, tracker=tracker())
        finally:
            server.stop()
    else:
        hook = parse_webhook(box.webhook_url("http://sandbox.local"))
        yield B24Client(WebhookAuth(hook), transport=box.transport(),
                        bucket=bucket or bucket_for(box), retry=retry, max_in_flight=max_in_flight,
                        tracker=tracker())


class ScriptedFaults(Faults):
    """Faults in a given order, one per request ("lost", "drop", "500", None), then none:
    for tests that need a fault at one exact request."""

    def __init__(self, kinds: list[str | None]) -> None:
        super().__init__({"lost": 1.0})
        self.queue: deque[str | None] = deque(kinds)

    def draw(self) -> str | None:
        return self.queue.popleft() if self.queue else None
