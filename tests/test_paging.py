"""Reading every row exactly once: edge sizes, deletions during the read, failing pages.

The shapes here (requests, pages, what is read ahead) are those of a read whose bucket
binds, every batch full: ``spread=False``, which is what a spent bucket gives. Reads that
use a fresh bucket's burst: tests/test_paging_spread.py."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from b24kit.client import (
    B24Client,
    IncompleteRead,
    ServerError,
    WebhookAuth,
    iterate,
    parse_webhook,
    read_all,
)
from b24kit.client.paging import SLOTS, _keyset_plan, _KeysetReader
from b24kit.clock import current
from b24kit.sandbox import Sandbox
from b24kit.sandbox.costs import DOCS
from b24kit.sandbox.db import dumps, loads
from tests.clients import bucket_for, client_for
from tests.clocks import FakeClock


def seed(box: Sandbox, count: int, etid: int = 2) -> None:
    with box.db.transaction():
        for i in range(count):
            box.portal.add_item(etid, {"TITLE": f"d{i}"}, 1, "old")


TEMPLATE = 12345
# The sizes the tests here start from. Taking deals out costs the sandbox about as much as
# putting them in (its JSON indexes): cut from 12,345 for each test, that was a sixth of
# this file's time. Each size is cut once from the next larger one (_sized), so 12,345
# deals are taken out once in all, and each test gets a copy of its size. A size not
# listed works too (cut from the next larger one made), at the old cost.
SIZES = [0, 1, 50, 51, 300, 2449, 2450, 2451, 2500, 2501, 3000, 4949, 4950, 4999, 5000]
SIZES += [5100, 7000, 7450, TEMPLATE]
_SIZED: dict[int, Sandbox] = {}  # count -> deals 1..count, made once in this process


@pytest.fixture(autouse=True, scope="module")
def _sized_boxes_released() -> Iterator[None]:
    """The boxes _sized keeps (tens of megabytes) go with this module's tests."""
    yield
    _SIZED.clear()


def _template() -> Sandbox:
    """Deals 1..12,345 as seed() makes them. add_item one by one takes seconds, so two
    deals are made by it and the rest by SQL: deal 2's row with each deal's own TITLE and
    ID, its stage history likewise. The portal's clock stands still while they are made
    (clones get the real one back), so the two made by add_item differ only in TITLE, which
    is checked: anything else add_item writes per deal would make the copies untrue."""
    start = current().time()
    box = Sandbox(limits="off", clock=lambda: start)
    seed(box, 2)
    rows = box.db.all("SELECT id, data FROM items WHERE entity_type_id = 2 ORDER BY id")
    first, second = (loads(row["data"]) for row in rows)
    assert {**first, "TITLE": "d1"} == second, "add_item writes only TITLE per deal"
    history = "entity_type_id, type_id, category_id, stage_semantic_id, stage_id, created_time"
    (stage,) = box.db.all(f"SELECT {history} FROM stage_history WHERE owner_id = 2")
    with box.db.transaction():
        box.db.conn.executemany(
            "INSERT INTO items(entity_type_id, id, data) VALUES(2, ?, ?)",
            ((i, dumps({**second, "TITLE": f"d{i - 1}"})) for i in range(3, TEMPLATE + 1)),
        )
        box.db.conn.executemany(
            f"INSERT INTO stage_history(owner_id, {history}) VALUES(?, ?, ?, ?, ?, ?, ?)",
            ((i, *stage) for i in range(3, TEMPLATE + 1)),
        )
        box.db.execute("UPDATE sequences SET value = ? WHERE name = 'item:2'", (TEMPLATE,))
    return box


def _cut(box: Sandbox, count: int) -> Sandbox:
    """A copy of ``box`` with the deals past ``count`` taken out and the next ID
    ``count + 1``."""
    copy = box.clone()
    with copy.db.transaction():
        copy.db.execute("DELETE FROM items WHERE entity_type_id = 2 AND id > ?", (count,))
        copy.db.execute(
            "DELETE FROM stage_history WHERE entity_type_id = 2 AND owner_id > ?", (count,)
        )
        copy.db.execute("UPDATE sequences SET value = ? WHERE name = 'item:2'", (count,))
    return copy


def _sized(count: int) -> Sandbox:
    """The box holding deals 1..``count`` (copy it, do not change it). Made with every
    size of SIZES above it not made yet, each cut from the next larger, from the smallest
    made one above them all (the template, at first)."""
    assert 0 <= count <= TEMPLATE
    if count not in _SIZED:
        if not _SIZED:
            _SIZED[TEMPLATE] = _template()
        above = min(n for n in _SIZED if n >= count)
        for size in sorted({n for n in SIZES if count <= n < above} | {count}, reverse=True):
            _SIZED[size] = _cut(_SIZED[above], size)
            above = size
    return _SIZED[count]


def seeded(count: int, **config: Any) -> Sandbox:
    """A sandbox (limits off, else as ``config`` says) holding deals 1..``count`` made by
    seed(): a copy of one made once in this process (_sized), with the real clock unless
    ``config`` gives another."""
    return _sized(count).clone(**{"limits": "off", "clock": current().time, **config})


@pytest.mark.parametrize("count", [0, 1, 50, 51, 2500, 2501, 12345])
def test_exact_counts(count: int) -> None:
    box = seeded(count)

    async def go() -> tuple[list[int], list[int], int]:
        with client_for(box) as client:
            old = [
                int(r["ID"])
                for r in await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            ]
            new = [
                r["id"]
                for r in await read_all(
                    client, "crm.item.list", {"entityTypeId": 2, "select": ["id"]}, spread=False
                )
            ]
            return old, new, client.requests

    old, new, requests = asyncio.run(go())
    assert old == list(range(1, count + 1)), "old-style: every row once, in ID order"
    assert new == old, "crm.item.list (rows under items) reads the same rows"
    batches = -(-max(count - 50, 0) // 2500)  # ceil: 2,500 rows a request after page one
    assert requests <= 2 * (1 + batches + 1), "a counted page, the batches, maybe one check"


@pytest.mark.parametrize("named", [0, 1, 49, 50, 100])
def test_a_read_of_named_ids_sends_only_the_pages_they_can_fill(named: int) -> None:
    """A filter naming its IDs (@ID) matches as many rows at most: the first batch carries
    the pages those fill and the short one after them, not 49 chained pages and the DESC
    page, which the portal would each run for nothing. The same one request."""
    box = seeded(3000)
    ids = list(range(3000, 0, -4))[:named]  # in no order, a few of them deleted
    gone = set(ids[::7])
    for item_id in gone:
        box.portal.delete_item(2, item_id)
    box.calls = []

    async def go() -> tuple[list[int], int]:
        with client_for(box) as client:
            rows = await read_all(
                client, "crm.deal.list", {"filter": {"@ID": ids}, "select": ["ID"]}, spread=False
            )
            return [int(r["ID"]) for r in rows], client.requests

    rows, requests = asyncio.run(go())
    if not ids:  # the portal ignores an empty list: no bound either
        assert rows == list(range(1, 3001))
        return
    assert rows == sorted(set(ids) - gone), "every named row once, in ID order"
    assert requests == 1 and len(box.calls) == named // 50 + 1, "its pages, one short"


@pytest.mark.parametrize(
    ("named", "pages", "desc"),
    [(1, 1, False), (2449, 49, False), (2450, 50, False), (2499, 50, False), (2500, 49, True)],
)
def test_the_first_batch_for_named_ids(named: int, pages: int, desc: bool) -> None:
    """The first batch such a read plans (not sent: thousands of IDs in every page cost
    the sandbox seconds): the pages they fill and a short one while those fit a batch;
    past that, what any read sends, 49 chained pages and the DESC page."""
    params = {"filter": {"@ID": list(range(1, named + 1))}, "select": ["ID"]}
    plan = _keyset_plan("crm.deal.list", params)
    assert plan is not None
    with client_for(Sandbox(limits="off")) as client:
        reader = _KeysetReader(client, "crm.deal.list", params, plan, None, 3, 1)
        planned = reader.build(SLOTS)
    assert planned is not None
    commands, _ = planned
    assert len(commands) == pages + desc and ("top" in commands) == desc


def test_request_count_for_a_large_read() -> None:
    box = seeded(12345)

    async def go() -> int:
        with client_for(box) as client:
            await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            return client.requests

    # the minimum, ceil((12,345 + 1) / 2,500): nothing counted, and the end seen in the
    # last batch's short page, not by a probe after it
    assert asyncio.run(go()) == 5, "5 batches of up to 2,500 rows, no counted page"


def test_filters_and_start_after_are_kept() -> None:
    box = seeded(300)

    async def go() -> list[dict[str, Any]]:
        with client_for(box) as client:
            return await read_all(
                client,
                "crm.deal.list",
                {"filter": {">ID": 100, "<=ID": 250, "%TITLE": "d"}, "select": ["TITLE"]},
                spread=False,
            )

    rows = asyncio.run(go())
    assert [int(r["ID"]) for r in rows] == list(range(101, 251)), "ID added to the select"


# The reader sends its next batches before it hands out a batch's rows: with
# ``in_flight=1``, when the first row comes, IDs up to 4,950 are read (the first batch's
# 49 pages and the next 50); what changes after that is what the read can see change.
READ_AHEAD = 4950


def test_deletions_during_the_read() -> None:
    box = seeded(12345)
    deleted_ahead = set(range(3000, 12346, 7))
    deleted_behind = set(range(1, 1000, 3))

    async def go() -> list[int]:
        seen: list[int] = []
        with client_for(box) as client:
            async for row in iterate(
                client, "crm.deal.list", {"select": ["ID"]}, in_flight=1, spread=False
            ):
                seen.append(int(row["ID"]))
                if len(seen) == 1500:
                    for item_id in deleted_ahead | deleted_behind:
                        box.portal.delete_item(2, item_id)
        return seen

    seen = asyncio.run(go())
    assert len(seen) == len(set(seen)), "no row twice"
    expected = [i for i in range(1, 12346) if i not in deleted_ahead or i <= READ_AHEAD]
    assert seen == expected, "rows deleted ahead are gone, rows read before stay read, none lost"


def test_rows_added_during_the_read_are_not_lost() -> None:
    box = seeded(7000)

    async def go() -> list[int]:
        seen: list[int] = []
        with client_for(box) as client:
            async for row in iterate(
                client, "crm.deal.list", {"select": ["ID"]}, in_flight=1, spread=False
            ):
                seen.append(int(row["ID"]))
                if len(seen) == 100:
                    seed(box, 120)  # appended after the read learned the highest ID
        return seen

    assert asyncio.run(go()) == list(range(1, 7121)), "the read goes past the highest ID"


def test_budget_refusals_mid_read_are_waited_out() -> None:
    # the sandbox's budget window passes while the client waits on it; the clock starts
    # between two whole seconds, so the reset the portal gives (in whole seconds) is
    # earlier than the one it keeps
    clock = FakeClock(start=1_800_000_000.75)
    window = 1.0
    box = seeded(5000, operating_limit=0.2, operating_window=window, clock=clock.time)

    async def go() -> tuple[list[dict[str, Any]], int]:
        with client_for(box, clock=clock) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            return rows, client.requests

    rows, requests = asyncio.run(go())
    assert [int(r["ID"]) for r in rows] == list(range(1, 5001))
    assert box.budget_refusals > 0, "some pages were refused inside batches and read again"
    assert clock.slept > 0, "the refused pages were waited out, not hammered"
    # review find: the wait after a refusal ended at the whole-second reset, before the
    # portal's, and the next batch was refused whole (then waited probe_after, a minute
    # on a real portal): five batches a window here
    assert requests <= clock.elapsed / window + 1, "one batch a window, none refused whole"


def test_transient_failures_are_retried_exactly() -> None:
    box = seeded(5100, faults="500=0.3,drop=0.2,lost=0.1,seed=11")

    async def go() -> list[dict[str, Any]]:
        with client_for(box) as client:
            return await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)

    rows = asyncio.run(go())
    assert [int(r["ID"]) for r in rows] == list(range(1, 5101))


def test_a_failing_page_raises_rather_than_stopping_short() -> None:
    box = seeded(12345)  # more than the first batches read

    async def go(client: B24Client) -> None:
        rows = []
        async for row in iterate(
            client, "crm.deal.list", {"select": ["ID"]}, in_flight=1, spread=False
        ):
            rows.append(row)
            if len(rows) == 50:
                box.faults = type(box.faults).parse("500=1")  # the portal falls over

    with client_for(box) as client, pytest.raises(ServerError):
        asyncio.run(go(client))


def test_offset_paging_detects_moving_data() -> None:
    box = Sandbox(limits="off")
    spa = box.call("crm.type.add", {"fields": {"title": "T"}})["type"]
    for i in range(130):
        box.call(
            "userfieldconfig.add",
            {
                "moduleId": "crm",
                "field": {
                    "entityId": f"CRM_{spa['id']}",
                    "fieldName": f"UF_CRM_{spa['id']}_F{i}",
                    "userTypeId": "string",
                },
            },
        )

    async def go(delete: bool) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        with client_for(box) as client:
            async for row in iterate(client, "userfieldconfig.list", {"moduleId": "crm"}):
                rows.append(row)
                if delete and len(rows) == 10:
                    box.db.execute("DELETE FROM userfields WHERE id IN (1, 2, 3)")
        return rows

    assert len(asyncio.run(go(False))) == 130, "offset paging reads everything"
    with pytest.raises(IncompleteRead):
        asyncio.run(go(True))


@pytest.mark.parametrize("count", [0, 1, 50, 51, 2500, 2501, 12345])
def test_exact_counts_without_a_total(count: int) -> None:
    box = seeded(count)

    async def go() -> tuple[list[int], int]:
        with client_for(box) as client:
            rows = [
                int(r["ID"])
                async for r in iterate(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            ]
            return rows, client.requests

    rows, requests = asyncio.run(go())
    assert rows == list(range(1, count + 1)), "every row once, in order, no counted page"
    assert requests == count // 2500 + 1, "2,500 rows in every request, the first included"


# ---------------------------------------------------------------- reads at the limit


def minimum_requests(count: int) -> int:
    """2,500 rows a request, the end seen in a short page: ceil((count + 1) / 2,500). One
    more when the rows fill 49 pages of the last batch (2% of sizes): the first batch's
    DESC page took the slot of the short page, except at 2,450, where it shows the end."""
    spill = count % 2500 >= 2450 and count != 2450
    return math.ceil((count + 1) / 2500) + (1 if spill else 0)


@pytest.mark.parametrize(
    "count", [0, 1, 2449, 2450, 2451, 2500, 4949, 4950, 4999, 5000, 7450, 12345]
)
def test_the_number_of_requests_is_the_minimum(count: int) -> None:
    box = seeded(count)

    async def go() -> tuple[list[int], int]:
        with client_for(box) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            return [int(r["ID"]) for r in rows], client.requests

    rows, requests = asyncio.run(go())
    assert rows == list(range(1, count + 1))
    assert requests == minimum_requests(count) == box.requests


class Overlap(httpx.AsyncBaseTransport):
    """The sandbox in-process, each request first letting the others on their way start:
    counts how many are out at once."""

    def __init__(self, box: Sandbox) -> None:
        self.inner = box.transport()
        self.active = 0
        self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            for _ in range(20):
                await asyncio.sleep(0)
            return await self.inner.handle_async_request(request)
        finally:
            self.active -= 1


def overlapping_client(box: Sandbox, wire: Overlap) -> B24Client:
    hook = parse_webhook(box.webhook_url("http://sandbox.local"))
    return B24Client(WebhookAuth(hook), transport=wire, bucket=bucket_for(box))


def test_parallel_slices_hand_rows_out_in_id_order() -> None:
    box = seeded(12345)
    box.db.execute(  # a sparse table: every third deal gone, and a hole of 3,000 IDs
        "DELETE FROM items WHERE entity_type_id = 2 AND (id % 3 = 0 OR id BETWEEN 5001 AND 8000)"
    )
    expected = [i for i in range(1, 12346) if i % 3 and not 5001 <= i <= 8000]
    wire = Overlap(box)

    async def go() -> tuple[list[int], int]:
        async with overlapping_client(box, wire) as client:
            rows = [
                int(r["ID"])
                async for r in iterate(
                    client, "crm.deal.list", {"select": ["ID"]}, in_flight=3, spread=False
                )
            ]
            return rows, client.requests

    rows, requests = asyncio.run(go())
    assert rows == expected, "every row once, ascending across slices"
    assert wire.most == 3, "three batches on their way at once, never more"
    assert requests <= minimum_requests(len(expected)) + 2, "holes cost pages, not many requests"


@pytest.mark.parametrize(
    ("layout", "where"),
    [
        ("sparse start, dense end", "id <= 9000 AND id % 20 != 0"),
        ("dense start, sparse end", "id > 3000 AND id % 50 != 0"),
        ("a filter's rows far in", "id <= 9500"),
    ],
)
def test_slices_follow_the_density_where_they_are(layout: str, where: str) -> None:
    box = seeded(12345)
    box.db.execute(f"DELETE FROM items WHERE entity_type_id = 2 AND {where}")
    left = [int(r["id"]) for r in box.db.all("SELECT id FROM items ORDER BY id")]

    async def go() -> tuple[list[int], int]:
        with client_for(box) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            return [int(r["ID"]) for r in rows], client.requests

    rows, requests = asyncio.run(go())
    assert rows == left, layout
    assert requests <= minimum_requests(len(left)) + 1, f"{layout}: {requests} requests"


def test_inserts_and_deletes_during_a_parallel_read() -> None:
    box = seeded(12345)
    gone = set(range(3000, 12346, 7)) | {7450, 7451, 9950, 9951, 12345}  # slice edges too
    behind = set(range(1, 2000, 5))

    async def go() -> list[int]:
        seen: list[int] = []
        with client_for(box) as client:
            stream = iterate(client, "crm.deal.list", {"select": ["ID"]}, in_flight=3, spread=False)
            async for row in stream:
                seen.append(int(row["ID"]))
                if len(seen) == 2000:
                    for item_id in gone | behind:
                        box.portal.delete_item(2, item_id)
                    seed(box, 300)  # new deals, past the highest ID the read knew
        return seen

    seen = asyncio.run(go())
    assert len(seen) == len(set(seen)), "no row twice"
    # read before the changes: the first batch and the two sent before its rows were
    # handed out (with one batch of rows held, three in all): IDs up to 7,450
    expected = [i for i in range(1, 12646) if i <= 7450 or i not in gone]
    assert seen == expected, "deleted rows not yet read are gone, new rows come, none lost"


def test_progress_is_told_an_estimate_and_the_end() -> None:
    box = seeded(12345)
    calls: list[tuple[int, int | None]] = []

    async def go() -> None:
        with client_for(box) as client:
            await read_all(
                client,
                "crm.deal.list",
                {"select": ["ID"]},
                progress=lambda d, t: calls.append((d, t)),
                spread=False,
            )

    asyncio.run(go())
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[0] == (50, 12345) and calls[-1] == (12345, 12345)
    assert all(t is not None and t >= d for d, t in calls), "no count asked, an estimate given"


def test_a_spent_bucket_reads_at_the_rate_limit() -> None:
    clock = FakeClock()
    box = seeded(12345, limits="standard", clock=clock.time)
    box.fill_bucket()

    async def go() -> tuple[int, int]:
        bucket = bucket_for(box, clock)
        bucket.spend_burst()
        with client_for(box, bucket=bucket, clock=clock) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            return len(rows), client.requests

    count, requests = asyncio.run(go())
    assert count == 12345 and requests == 5 and box.statuses[503] == 0
    # the first waits for the client's margin (1.5 requests: 0.75 s), every next one 0.5 s:
    # 2,500 rows every 0.5 s is 5,000 rows/s, the rate limit, with nothing in between
    assert clock.elapsed == pytest.approx(0.75 + (requests - 1) * 0.5, abs=0.01)


class BudgetClock(FakeClock):
    """Notes how much of the method's budget the sandbox has counted whenever the client
    waits a second or more (a wait for the budget: this sandbox has no rate limit)."""

    def __init__(self) -> None:
        super().__init__()
        self.box: Sandbox | None = None
        self.spent_at_waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        if seconds >= 1 and self.box is not None:
            key = (f"hook:{self.box.token}", "crm.deal.list")
            self.spent_at_waits.append(self.box.budget.state(key)[0])
        await super().sleep(seconds)


def test_reads_are_paced_by_the_operating_budget() -> None:
    clock = BudgetClock()
    # a first batch (50 pages, their cost not yet known) fits; the read needs 4 windows
    limit, window = 60 * DOCS.page, 10.0
    box = seeded(12345, operating_limit=limit, operating_window=window, clock=clock.time)
    clock.box = box

    async def go() -> list[dict[str, Any]]:
        with client_for(box, clock=clock) as client:
            client.tracker.limit = limit  # told the portal's limit, as 480 s is by default
            return await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)

    rows = asyncio.run(go())
    assert [int(r["ID"]) for r in rows] == list(range(1, 12346))
    assert box.budget_refusals == 0, "paced: the portal never had to refuse a page"
    waits = clock.spent_at_waits
    assert len(waits) >= 2, "the budget bound the read (this many windows of it)"
    assert min(waits) >= 0.98 * limit, "at least 98% of the budget spent before each wait"
    # each wait ends one second after the reset the portal gave (in whole seconds)
    assert clock.elapsed <= len(waits) * (window + 1) + 0.1, "and no later"


def test_a_429_mid_read_is_waited_out() -> None:
    clock = FakeClock()
    limit = 3.0
    box = seeded(12345, operating_limit=limit, operating_window=10.0, clock=clock.time)
    key = (f"hook:{box.token}", "crm.deal.list")

    async def go() -> list[int]:
        seen: list[int] = []
        with client_for(box, clock=clock) as client:
            client.tracker.limit = limit
            async for row in iterate(client, "crm.deal.list", {"select": ["ID"]}, spread=False):
                seen.append(int(row["ID"]))
                if len(seen) == 100:  # another program on the webhook spends the budget
                    box.budget.spend(key, limit)
        return seen

    assert asyncio.run(go()) == list(range(1, 12346)), "refused pages read again, none lost"
    assert box.budget_refusals > 0, "pages were refused, unforeseen"
    assert clock.slept >= 9, "and waited out until the window reset"


def test_a_read_given_up_gives_back_the_budget_it_held() -> None:
    """Review find: a read stopped early (a break) kept what its batches on the way had
    reserved of the method's budget, for good: after enough of them the method had no
    room left and read a page per window."""
    box = seeded(12345)

    async def go() -> tuple[float | None, float | None]:
        with client_for(box) as client:
            async with contextlib.aclosing(
                iterate(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            ) as rows:
                async for _ in rows:
                    break  # with batches on their way
            room = client.tracker.room("crm.deal.list")
            return room, client.tracker.limit - client.tracker._state["crm.deal.list"][0]

    room, unreserved = asyncio.run(go())
    assert room == unreserved, "nothing held back once the read is over"
