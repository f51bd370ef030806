"""Client-side mirror of the portal's limits, so we wait instead of being refused.

- ``Bucket``: the portal's leaky bucket (standard 50 burst / 2 per second, enterprise
  250 / 5), shared by every request to one portal. ``acquire()`` returns when sending one
  more request will not overflow it.
- ``OperatingTracker``: each method's ``time.operating`` from the responses; a method at
  its budget (or answered 429) waits until its ``operating_reset_at``; others go on. A
  caller that paces itself (the paged reader) asks for the ``room`` left under the limit,
  reserves what its requests on the way will spend, and pauses until a reset when none
  is left, so that the portal never has to refuse it.

Both read the time and wait through a clock (``b24kit.clock``): the real one unless given
another, so that tests can make the waits pass instantly and still see each one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from b24kit.clock import current

PLANS = {"standard": (50.0, 2.0), "enterprise": (250.0, 5.0)}
MARGIN = 0.5  # requests of room kept free below the portal's capacity


@dataclass
class Bucket:
    """``reserve()`` takes the room ``acquire()`` waits for ahead of the request, and the
    next ``acquire()`` uses it: the executor decides what a batch carries only once it
    may send one, so a lookup that became due while it waited goes in first."""

    capacity: float = 50.0
    rate: float = 2.0
    clock: Callable[[], float] = field(default_factory=lambda: current().monotonic)
    level: float = 0.0
    _updated: float | None = None
    _reserved: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sleep: Callable[[float], Awaitable[None]] = field(default_factory=lambda: current().sleep)

    @classmethod
    def for_plan(cls, plan: str) -> Bucket:
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}; use standard or enterprise")
        capacity, rate = PLANS[plan]
        return cls(capacity, rate)

    def _drain(self) -> None:
        now = self.clock()
        if self._updated is not None:
            self.level = max(0.0, self.level - (now - self._updated) * self.rate)
        self._updated = now

    def _room(self) -> bool:
        self._drain()
        # keep a small margin: our clock and the portal's are not the same clock
        return self.level + 1 <= self.capacity - MARGIN

    def _take_if_room(self) -> bool:
        if not self._room():
            return False
        self.level += 1
        return True

    async def _take(self) -> None:
        while not self._room():
            await self.sleep((self.level + 1 - (self.capacity - MARGIN)) / self.rate)
        self.level += 1

    async def acquire(self) -> None:
        if self._reserved:  # taken ahead by reserve()
            self._reserved -= 1
            return
        async with self._lock:
            await self._take()

    async def reserve(self) -> None:
        """Wait for room for one request and take it now, for the next ``acquire()``."""
        async with self._lock:
            await self._take()
            self._reserved += 1

    def take_now(self) -> bool:
        """``acquire()`` without waiting: the reservation made for this request, or room
        now, even while others wait for room (it appeared under them: a place given back);
        False when there is neither (a refusal took the reservations back)."""
        if self._reserved:
            self._reserved -= 1
            return True
        return self._take_if_room()

    def try_reserve(self) -> bool:
        """``reserve()`` without waiting: False when there is no room now (or others
        already wait for it)."""
        if self._lock.locked() or not self._take_if_room():
            return False
        self._reserved += 1
        return True

    def free(self) -> int:
        """Requests the bucket admits at once now, beyond those taken or reserved: a
        fresh bucket's burst, none once it is full (as far as this client knows)."""
        self._drain()
        return max(0, int(self.capacity - MARGIN - self.level))

    def release(self) -> None:
        """Give back a reservation no request used."""
        if self._reserved:
            self._reserved -= 1
            self._drain()
            self.level = max(0.0, self.level - 1)

    def not_counted(self) -> None:
        """A request the portal never saw (a proxy's bare 503): its place is free again."""
        self._drain()
        self.level = max(0.0, self.level - 1)

    def spend_burst(self) -> None:
        """Start as if the burst were already spent: the sustained rate from now on."""
        self._drain()
        self.level = self.capacity

    def refused(self) -> None:
        """The portal said 503: it thinks the bucket is full, so believe it (and what
        was reserved waits again)."""
        self._drain()
        self.level = self.capacity
        self._reserved = 0

    @property
    def interval(self) -> float:
        return 1.0 / self.rate


@dataclass
class OperatingTracker:
    limit: float = 480.0
    headroom: float = 0.95
    # After a 429 whose last known reset time has passed, look again this much later: the
    # portal's budget is kept in one-minute buckets, so one expires at least every minute.
    probe_after: float = 60.0
    clock: Callable[[], float] = field(default_factory=lambda: current().time)
    sleep: Callable[[float], Awaitable[None]] = field(default_factory=lambda: current().sleep)
    # method -> (operating, operating_reset_at, the portal's finish time of that answer)
    _state: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    _blocked_until: dict[str, float] = field(default_factory=dict)
    _reserved: dict[str, float] = field(default_factory=dict)  # spent by requests on the way
    _paced: dict[str, int] = field(default_factory=dict)  # callers pacing themselves

    def observe(self, method: str, time_info: object) -> None:
        """Keep the newest answer's figures: answers to requests sent side by side come
        back in any order, and an older one must not undo what a newer one said."""
        if not isinstance(time_info, dict):
            return
        operating = time_info.get("operating")
        reset_at = time_info.get("operating_reset_at")
        if not isinstance(operating, (int, float)) or not isinstance(reset_at, (int, float)):
            return
        finish = time_info.get("finish")
        stamp = float(finish) if isinstance(finish, (int, float)) else float("-inf")
        key = method.lower()
        known = self._state.get(key)
        if known is not None and finish is not None and (stamp, operating) < (known[2], known[0]):
            return  # an older answer (or as old, from before a later call in it)
        self._state[key] = (float(operating), float(reset_at), stamp)

    def blocked(self, method: str) -> None:
        """The portal answered 429 for this method: pause it until its reset time, and one
        second more (as ``hold_until_reset``: the portal gives that time in whole seconds,
        and a call made before the minute has really left is refused again); when that has
        passed too, for ``probe_after``."""
        state = self._state.get(method.lower())
        now = self.clock()
        until = state[1] + 1 if state and state[1] + 1 > now else now + self.probe_after
        self._blocked_until[method.lower()] = until

    def hold_until_reset(self, method: str) -> None:
        """Pause the method until its oldest minute of spending has left the window (no
        429 was needed to know: a paced caller has no room left). The portal gives that
        time in whole seconds: wait one more, so that the minute is surely gone."""
        state = self._state.get(method.lower())
        if state and state[1] + 1 > self.clock():
            self._blocked_until[method.lower()] = state[1] + 1

    def room(self, method: str) -> float | None:
        """Seconds of the method's budget left under the limit, less what requests on the
        way will spend; ``None`` until an answer has said how much is spent. After a reset
        time passes this stays what the last answer said: the most that is spent."""
        state = self._state.get(method.lower())
        if state is None:
            return None
        return self.limit - state[0] - self._reserved.get(method.lower(), 0.0)

    def reserve(self, method: str, seconds: float) -> None:
        key = method.lower()
        self._reserved[key] = self._reserved.get(key, 0.0) + seconds

    def release(self, method: str, seconds: float) -> None:
        """The request came back: what it spent is now in the answer's ``operating``."""
        key = method.lower()
        self._reserved[key] = max(0.0, self._reserved.get(key, 0.0) - seconds)

    @contextmanager
    def pacing(self, method: str) -> Iterator[None]:
        """The caller sizes its requests by ``room``: the headroom rule (a pause at 95% of
        the limit, for callers that do not) would only leave budget unspent."""
        key = method.lower()
        self._paced[key] = self._paced.get(key, 0) + 1
        try:
            yield
        finally:
            self._paced[key] -= 1

    def wait_time(self, method: str) -> float:
        now = self.clock()
        key = method.lower()
        until = self._blocked_until.get(key, 0.0)
        state = self._state.get(key)
        paced = self._paced.get(key, 0) > 0
        if not paced and state and state[0] >= self.limit * self.headroom and state[1] > now:
            until = max(until, state[1])
        return max(0.0, until - now)

    async def wait(self, method: str, announce: Callable[[str], None] | None = None) -> None:
        delay = self.wait_time(method)
        if delay > 0:
            if announce is not None and delay >= 2:
                announce(
                    f"{method}: paused by the portal's operating-time limit; waiting "
                    f"{delay:.0f} s for it to reset"
                )
            await self.sleep(delay)
