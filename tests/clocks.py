"""A clock on which waiting takes no time: every sleep is recorded and moves the clock on.

Give the same ``FakeClock`` to the sandbox (``Sandbox(clock=fake.time)``) and the client
(``client_for(box, clock=fake)``), or install it for everything made inside a block
(``with b24kit.clock.use(fake):``, e.g. around an in-process CLI run), and the portal's
windows pass exactly when the client has waited for them, without the test sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx

from b24kit.clock import Clock


class FakeClock(Clock):
    def __init__(self, start: float | None = None) -> None:
        self.start = time.time() if start is None else start  # unix time at elapsed == 0
        self.elapsed = 0.0
        self.sleeps: list[float] = []  # every wait asked for, in order
        self._lock = threading.Lock()  # a sandbox served from a thread reads it too
        # True while requests are on a real wire: time must not jump past them (a request
        # the client sent at t must reach the server at t, not after later waits)
        self.busy: Callable[[], bool] = lambda: False

    def monotonic(self) -> float:
        return 10_000.0 + self.elapsed

    def time(self) -> float:
        return self.start + self.elapsed

    def advance(self, seconds: float) -> None:
        """Time passes without anyone waiting (instead of ``time.sleep`` in a test)."""
        with self._lock:
            self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait, let other tasks run until nothing is on the wire, then be at
        (at least) its deadline. Waits that overlap (two tasks asleep at once) end
        together, as on a real clock."""
        with self._lock:
            self.sleeps.append(seconds)
            deadline = self.elapsed + max(seconds, 0.0)
        quiet = 0
        while quiet < 3:  # quiet across a few turns of the loop: no send is about to start
            await asyncio.sleep(0)
            if self.busy():
                quiet = 0
                await asyncio.sleep(0.001)  # a real wait: the answer is really on its way
            else:
                quiet += 1
        with self._lock:
            self.elapsed = max(self.elapsed, deadline)

    @property
    def slept(self) -> float:
        return sum(self.sleeps)


class Wire(httpx.AsyncBaseTransport):
    """Real HTTP (httpx's own transport) that counts the requests on the wire, for
    ``FakeClock.busy``."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.active = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.active += 1
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()
