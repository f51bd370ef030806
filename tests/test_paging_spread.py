"""Reads that use a fresh bucket's burst (issue 15, item 3): when the bucket admits more
requests now than full batches the read fills, the first batch is one page and the
``ID DESC`` page, and the rest is spread over the free requests in shorter batches. Every
row still comes once, in ID order; with the bucket spent every batch is full, as in
tests/test_paging.py."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from b24kit.client import iterate, read_all
from b24kit.client.paging import SPREAD_FLOOR
from b24kit.sandbox import Sandbox
from tests.clients import Batches, bucket_for, client_for
from tests.clocks import FakeClock
from tests.test_paging import minimum_requests, seed, seeded


def read(
    box: Sandbox, spent: bool = False, clock: FakeClock | None = None, **kwargs: Any
) -> tuple[list[int], Batches]:
    clock = clock or FakeClock()
    wire = Batches(box)

    async def go() -> list[int]:
        bucket = bucket_for(box, clock)
        if spent:
            bucket.spend_burst()
        with client_for(box, clock=clock, bucket=bucket, transport=wire, max_in_flight=50) as c:
            rows = await read_all(c, "crm.deal.list", {"select": ["ID"]}, **kwargs)
        return [int(r["ID"]) for r in rows]

    return asyncio.run(go()), wire


@pytest.mark.parametrize("count", [0, 1, 50, 51, 2449, 2501, 12345])
def test_every_row_once_in_id_order(count: int) -> None:
    rows, wire = read(seeded(count))
    assert rows == list(range(1, count + 1))
    assert all(status == 200 for _, status in wire.sent)


def test_the_first_batch_looks_then_the_rest_goes_at_once_in_short_batches() -> None:
    """12,345 rows (247 pages): one page and the DESC page, then the rest over the free
    requests, at most an even share each (the floor of SPREAD_FLOOR aside), all within
    the burst and none refused."""
    rows, wire = read(seeded(12345))
    sizes = [size for size, _ in wire.sent]
    assert rows == list(range(1, 12346))
    assert sizes[0] == 2, "one page and the DESC page"
    assert len(sizes) <= 49, "within the burst, less the client's margin"
    share = max(SPREAD_FLOOR, math.ceil(247 / 48) + 1)
    assert max(sizes[1:]) <= share, sizes
    assert sum(sizes) <= 247 + len(sizes) + 1, "about one spare page a slice, no more"


def test_a_spent_bucket_gets_full_batches_and_the_fewest_requests() -> None:
    for count in (2449, 4950, 12345):
        rows, wire = read(seeded(count), spent=True)
        assert rows == list(range(1, count + 1))
        assert len(wire.sent) == minimum_requests(count), count
        assert wire.sent[0][0] == 50, "49 chained pages and the DESC page"


def test_spread_false_is_the_spent_shape_on_a_fresh_bucket() -> None:
    rows, wire = read(seeded(12345), spread=False)
    assert rows == list(range(1, 12346)) and len(wire.sent) == minimum_requests(12345)


def test_inserts_and_deletes_during_a_spread_read() -> None:
    """One batch's worth of pages on the way (``in_flight=1``), each batch spread short:
    the read is still going when rows ahead are deleted and rows are added past its end.
    Those deleted ahead are not returned, rows read stay read, the new rows are read;
    none twice, none of the others lost, in ID order."""
    box = seeded(12345)
    gone = set(range(3000, 12346, 7)) | {7450, 7451, 9950, 9951, 12345}
    behind = set(range(1, 2000, 5))
    asked: list[int] = []

    async def go() -> tuple[list[int], int]:
        seen: list[int] = []
        with client_for(box, max_in_flight=50) as client:
            rows = iterate(client, "crm.deal.list", {"select": ["ID"]}, in_flight=1)
            async for row in rows:
                seen.append(int(row["ID"]))
                if len(seen) == 2000:
                    asked.append(client.requests)
                    for item_id in gone | behind:
                        box.portal.delete_item(2, item_id)
                    seed(box, 300)
            return seen, client.requests

    seen, requests = asyncio.run(go())
    assert requests > asked[0] + 10, "the read went on after the changes"
    assert seen == sorted(set(seen)), "in ID order, none twice"
    kept = {i for i in range(1, 12346) if i not in gone}
    new = set(range(12346, 12646))
    assert kept | new <= set(seen) <= kept | new | gone, "none lost, the new ones read"
    assert len(gone & set(seen)) < len(gone) // 4, "rows deleted ahead are gone"


def test_a_waiter_on_the_bucket_does_not_make_the_read_spin() -> None:
    """Review find: a request not sent because the bucket seemed to have no room (its lock
    held by a waiter, though room had come back) made the read send the same short batch
    again at once, 1,800 times in half a second. Room is taken under a waiter now, and
    after any refusal the read's batches are full and wait for the bucket."""
    box = seeded(5000, limits="standard")
    calls = 0

    async def go() -> int:
        nonlocal calls
        bucket = bucket_for(box)

        async def waiter() -> None:  # as acquire() waits for room: holding the lock
            async with bucket._lock:
                await asyncio.sleep(0.05)

        with client_for(box, bucket=bucket, max_in_flight=50) as c:
            batch = c.batch

            async def counted(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1  # sent or not (BucketFull): each is a turn of the read
                return await batch(*args, **kwargs)

            c.batch = counted  # type: ignore[method-assign]
            side = asyncio.create_task(waiter())
            await asyncio.sleep(0)
            rows = await read_all(c, "crm.deal.list", {"select": ["ID"]})
            await side
            return len(rows)

    assert asyncio.run(go()) == 5000
    assert calls <= 30, calls


def test_a_budget_that_binds_is_not_spread() -> None:
    """Found while building the spread: a portal's budget smaller than the client knows
    (refusals are how it learns) was read in batches of 5 pages, refused and read again:
    364 requests where 66 windows passed. Once a page is refused by the budget, the
    batches are full again: about one a window (70 here)."""
    clock = FakeClock(start=1_800_000_000.75)
    window = 1.0
    box = seeded(5000, operating_limit=0.2, operating_window=window, clock=clock.time)

    async def go() -> tuple[list[int], int]:
        with client_for(box, clock=clock, max_in_flight=50) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID"]})
            return [int(r["ID"]) for r in rows], client.requests

    rows, requests = asyncio.run(go())
    assert rows == list(range(1, 5001))
    # a window each, and the few short batches sent before the first refusal
    assert requests <= clock.elapsed / window + 10, (requests, clock.elapsed)


def test_a_bucket_another_client_spent_refuses_the_short_batches_then_full_ones_go() -> None:
    """The client thinks its bucket fresh, the portal's is full: the short first batch is
    refused as a whole (it ran nothing), and the read goes on in full batches at the
    sustained rate: the batches that ran are as few as on a bucket known spent."""
    clock = FakeClock()
    for count in (2449, 12345):
        box = seeded(count, limits="standard", clock=clock.time)
        box.fill_bucket()
        rows, wire = read(box, clock=clock)
        ran = [size for size, status in wire.sent if status == 200]
        assert rows == list(range(1, count + 1))
        assert wire.sent[0] == (2, 503), "the short first batch, refused"
        assert len(ran) == minimum_requests(count) and ran[0] == 50, (count, wire.sent)
