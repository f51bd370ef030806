"""Injected faults: ``--faults "500=0.05,503=0.05,drop=0.05,lost=0.05,seed=7"``.

- ``500``: answer 500 INTERNAL_SERVER_ERROR; nothing is executed.
- ``503``: answer 503 as a proxy in front of the portal does (nginx's HTML page, no Bitrix
  error code); nothing is executed. QUERY_LIMIT_EXCEEDED comes only from the leaky bucket.
- ``drop``: close the connection before executing; the client sees a broken response.
- ``lost``: execute and commit, then close the connection: the write happened, but the
  client never hears of it. This is the case that makes naive retries create duplicates.

Whether the portal's leaky bucket counts a ``500`` or ``drop`` request no source says:
by default it does (the request reached the portal, as ``lost`` does); ``counted=no``
is the other reading, where such a request fails before the bucket sees it (as a proxy's
``503`` always does), for checking a client under both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

KINDS = ("500", "503", "drop", "lost")


class FaultSpecError(ValueError):
    pass


@dataclass
class Faults:
    rates: dict[str, float] = field(default_factory=dict)
    seed: int | None = None
    counted: bool = True  # the bucket counts a 500 or drop request (module doc)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.counts: dict[str, int] = {kind: 0 for kind in KINDS}

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        rates: dict[str, float] = {}
        seed: int | None = None
        counted = True
        for part in (spec or "").split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip().lower()
            if not sep:
                raise FaultSpecError(f"fault {part!r} needs a rate, like {name}=0.05")
            if name == "seed":
                seed = int(value)
                continue
            if name == "counted":
                if value.strip().lower() not in ("yes", "no"):
                    raise FaultSpecError(f"counted={value}: use counted=yes or counted=no")
                counted = value.strip().lower() == "yes"
                continue
            if name not in KINDS:
                raise FaultSpecError(
                    f"unknown fault kind {name!r}; use one of {', '.join(KINDS)}, seed or counted"
                )
            try:
                rate = float(value)
            except ValueError as exc:
                raise FaultSpecError(f"fault rate {value!r} is not a number") from exc
            if not 0 <= rate <= 1:
                raise FaultSpecError(f"fault rate for {name} must be between 0 and 1")
            rates[name] = rate
        if sum(rates.values()) > 1:
            raise FaultSpecError("fault rates add up to more than 1")
        return cls(rates, seed, counted)

    @property
    def active(self) -> bool:
        return any(self.rates.values())

    def draw(self) -> str | None:
        """The fault for one request, or None. One draw decides among all kinds."""
        if not self.active:
            return None
        roll = self._rng.random()
        edge = 0.0
        for kind in KINDS:
            edge += self.rates.get(kind, 0.0)
            if roll < edge:
                self.counts[kind] += 1
                return kind
        return None

    def unapplied(self, kind: str | None) -> None:
        """A drawn fault that did not happen (the request was refused before it could):
        the counts say what the clients saw."""
        if kind is not None:
            self.counts[kind] -= 1
