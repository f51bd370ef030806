"""The portal's two limits: a leaky bucket per portal and an operating-time budget
per (caller, method). Both take their clock from outside so tests can drive them."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

PLANS = {"standard": (50.0, 2.0), "enterprise": (250.0, 5.0)}


@dataclass
class LeakyBucket:
    """Each request adds 1; the level drains at ``rate`` per second; a request that finds
    the level at ``capacity`` or above is refused (503) and does not add to it."""

    capacity: float
    rate: float
    clock: Callable[[], float]
    level: float = 0.0
    updated: float = 0.0

    def _drain(self) -> None:
        now = self.clock()
        if self.updated:
            self.level = max(0.0, self.level - (now - self.updated) * self.rate)
        self.updated = now

    def admit(self) -> bool:
        self._drain()
        if self.level + 1 > self.capacity:
            return False
        self.level += 1
        return True

    def fill(self) -> None:
        """Spend the burst, as if 'capacity' requests had just arrived."""
        self._drain()
        self.level = self.capacity


class OperatingBudget:
    """Sum of method time per (caller, method) over ``window`` seconds, kept in ten
    buckets. A call is refused (429) while the sum is above ``limit``; the call that
    pushes it over still completes (API notes §3.2)."""

    def __init__(self, limit: float, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self.slot = window / 10
        self.clock = clock
        self._spent: dict[tuple[str, str], deque[list[float]]] = {}

    def _buckets(self, key: tuple[str, str]) -> deque[list[float]]:
        buckets = self._spent.get(key)
        if buckets is None:
            buckets = self._spent[key] = deque()
        horizon = self.clock() - self.window
        while buckets and buckets[0][0] <= horizon:
            buckets.popleft()
        return buckets

    def state(self, key: tuple[str, str]) -> tuple[float, float]:
        """(operating seconds in the window, unix time the oldest bucket expires)."""
        buckets = self._buckets(key)
        total = sum([b[1] for b in buckets])
        reset = (buckets[0][0] + self.window) if buckets else self.clock()
        return total, reset

    def blocked(self, key: tuple[str, str]) -> bool:
        return self.state(key)[0] > self.limit

    def spend(self, key: tuple[str, str], seconds: float) -> None:
        buckets = self._buckets(key)
        now = self.clock()
        if buckets and now - buckets[-1][0] < self.slot:
            buckets[-1][1] += seconds
        else:
            buckets.append([now, seconds])
