"""The portal's moments to the second: each second's text is made once, and is the text
datetime makes of the moment itself, also where its rounding carries into the next second."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from b24kit.sandbox.values import iso, now_iso

ZONES = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5, minutes=-30))]
EDGES = [0.0, 1e-9, 0.0000004, 0.0000005, 0.0000006, 0.5, 0.999999, 0.9999994, 0.9999996]


@pytest.mark.parametrize("tz", ZONES, ids=str)
def test_each_moment_reads_as_datetime_writes_it(tz: timezone) -> None:
    rng = random.Random(7)
    moments = [rng.uniform(1e9, 2e9) for _ in range(2_000)]
    moments += [
        rng.randint(1_000_000_000, 2_000_000_000) - edge for edge in EDGES for _ in range(50)
    ]
    for moment in moments:
        assert now_iso(moment, tz) == iso(datetime.fromtimestamp(moment, tz)), moment
