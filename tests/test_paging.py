"""Reading every row exactly once: edge sizes, deletions during the read, failing pages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from b24kit.client import B24Client, IncompleteRead, ServerError, iterate, read_all
from b24kit.sandbox import Sandbox
from tests.clients import client_for
from tests.clocks import FakeClock


def seed(box: Sandbox, count: int, etid: int = 2) -> None:
    with box.db.transaction():
        for i in range(count):
            box.portal.add_item(etid, {"TITLE": f"d{i}"}, 1, "old")


_SEEDED: dict[int, Sandbox] = {}


def seeded(count: int, **config: Any) -> Sandbox:
    """A sandbox (limits off, else as ``config`` says) holding ``count`` deals made by
    seed(): a copy of one seeded once in this process, as seeding 12,345 deals one by one
    takes seconds and several tests read that many."""
    if count not in _SEEDED:
        template = Sandbox(limits="off")
        seed(template, count)
        _SEEDED[count] = template
    return _SEEDED[count].clone(**{"limits": "off", **config})


@pytest.mark.parametrize("count", [0, 1, 50, 51, 2500, 2501, 12345])
def test_exact_counts(count: int) -> None:
    box = seeded(count)

    async def go() -> tuple[list[int], list[int], int]:
        with client_for(box) as client:
            old = [
                int(r["ID"]) for r in await read_all(client, "crm.deal.list", {"select": ["ID"]})
            ]
            new = [
                r["id"]
                for r in await read_all(
                    client, "crm.item.list", {"entityTypeId": 2, "select": ["id"]}
                )
            ]
            return old, new, client.requests

    old, new, requests = asyncio.run(go())
    assert old == list(range(1, count + 1)), "old-style: every row once, in ID order"
    assert new == old, "crm.item.list (rows under items) reads the same rows"
    batches = -(-max(count - 50, 0) // 2500)  # ceil: 2,500 rows a request after page one
    assert requests <= 2 * (1 + batches + 1), "a counted page, the batches, maybe one check"


def test_request_count_for_a_large_read() -> None:
    box = seeded(12345)

    async def go() -> int:
        with client_for(box) as client:
            await read_all(client, "crm.deal.list", {"select": ["ID"]})
            return client.requests

    assert asyncio.run(go()) == 1 + 5, "one counted page, then 5 batches of up to 2,500 rows"


def test_filters_and_start_after_are_kept() -> None:
    box = seeded(300)

    async def go() -> list[dict[str, Any]]:
        with client_for(box) as client:
            return await read_all(
                client,
                "crm.deal.list",
                {"filter": {">ID": 100, "<=ID": 250, "%TITLE": "d"}, "select": ["TITLE"]},
            )

    rows = asyncio.run(go())
    assert [int(r["ID"]) for r in rows] == list(range(101, 251)), "ID added to the select"


def test_deletions_during_the_read() -> None:
    box = seeded(6000)
    deleted_ahead = set(range(3000, 6001, 7))
    deleted_behind = set(range(1, 1000, 3))

    async def go() -> list[int]:
        seen: list[int] = []
        with client_for(box) as client:
            async for row in iterate(client, "crm.deal.list", {"select": ["ID"]}):
                seen.append(int(row["ID"]))
                if len(seen) == 1500:
                    for item_id in deleted_ahead | deleted_behind:
                        box.portal.delete_item(2, item_id)
        return seen

    seen = asyncio.run(go())
    assert len(seen) == len(set(seen)), "no row twice"
    expected = [i for i in range(1, 6001) if i not in deleted_ahead or i <= 1500]
    assert seen == expected, "rows deleted ahead are gone, rows read before stay read, none lost"


def test_rows_added_during_the_read_are_not_lost() -> None:
    box = seeded(2600)

    async def go() -> list[int]:
        seen: list[int] = []
        with client_for(box) as client:
            async for row in iterate(client, "crm.deal.list", {"select": ["ID"]}):
                seen.append(int(row["ID"]))
                if len(seen) == 100:
                    seed(box, 120)  # appended after the count was taken
        return seen

    assert asyncio.run(go()) == list(range(1, 2721)), "the read goes past the first count"


def test_budget_refusals_mid_read_are_waited_out() -> None:
    clock = FakeClock()  # the sandbox's budget window passes while the client waits on it
    box = seeded(12345, operating_limit=0.2, operating_window=1.0, clock=clock.time)

    async def go() -> list[dict[str, Any]]:
        with client_for(box, clock=clock) as client:
            return await read_all(client, "crm.deal.list", {"select": ["ID"]})

    rows = asyncio.run(go())
    assert len(rows) == 12345 and len({r["ID"] for r in rows}) == 12345
    assert box.budget_refusals > 0, "some pages were refused inside batches and read again"
    assert clock.slept > 0, "the refused pages were waited out, not hammered"


def test_transient_failures_are_retried_exactly() -> None:
    box = seeded(5100, faults="500=0.3,drop=0.2,lost=0.1,seed=11")

    async def go() -> list[dict[str, Any]]:
        with client_for(box) as client:
            return await read_all(client, "crm.deal.list", {"select": ["ID"]})

    rows = asyncio.run(go())
    assert [int(r["ID"]) for r in rows] == list(range(1, 5101))


def test_a_failing_page_raises_rather_than_stopping_short() -> None:
    box = seeded(200)

    async def go(client: B24Client) -> None:
        rows = []
        async for row in iterate(client, "crm.deal.list", {"select": ["ID"]}):
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
                async for r in iterate(client, "crm.deal.list", {"select": ["ID"]}, count=False)
            ]
            return rows, client.requests

    rows, requests = asyncio.run(go())
    assert rows == list(range(1, count + 1)), "every row once, in order, no counted page"
    assert requests == count // 2500 + 1, "2,500 rows in every request, the first included"
