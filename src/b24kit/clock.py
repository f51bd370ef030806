"""Where b24kit reads the time and waits on the portal's limits: one seam.

The client (its limiter and its retry waits) and the sandbox portal (its rate limits and
operating-time budget) read the time and sleep through a :class:`Clock`. Each takes one
explicitly; left out, they take :func:`current`, which is the real clock unless a test has
installed another with :func:`use`. So a test can make time pass instantly while every
wait is still made, in order, and can be asserted on; the program itself always runs on
the real clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Clock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        """Unix time, for what the portal stamps (``operating_reset_at``)."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


REAL = Clock()
_current: Clock = REAL


def current() -> Clock:
    """The clock that clients, limiters and sandboxes made now will use by default."""
    return _current


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the default for everything created inside the block (for tests)."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
