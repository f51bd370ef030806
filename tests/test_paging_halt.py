"""A read of one chain of pages is sent with ``halt``: the page after a short one refers to
a 50th row that is not there, the portal refuses it, and nothing after it runs. A small
table costs its own pages and one refusal, not 49 pages of the method's operating time;
the rows and the one request are as before."""

from __future__ import annotations

import asyncio

import pytest

from b24kit.client import read_all
from tests.clients import client_for
from tests.test_paging import seeded


@pytest.mark.parametrize(
    ("count", "commands"),
    [
        (0, 2),  # an empty page, the refused one after it
        (1, 2),
        (49, 2),
        (50, 3),  # a full page, an empty one, the refused one
        (120, 4),
        (2449, 50),  # the 49th page is short: no chained page after it, and the DESC page
    ],
)
def test_a_small_read_runs_its_pages_and_one_refusal(count: int, commands: int) -> None:
    box = seeded(count)
    box.calls = []

    async def go() -> tuple[list[int], int]:
        with client_for(box) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            return [int(r["ID"]) for r in rows], client.requests

    ids, requests = asyncio.run(go())
    assert ids == list(range(1, count + 1)), "every row once, in ID order"
    assert requests == 1
    ran = [c for c in box.calls if c.method == "crm.deal.list"]
    assert len(ran) == commands, f"{len(ran)} pages ran, {commands} expected (halt)"


def test_a_large_read_is_unchanged_by_halt() -> None:
    """The first batch of a large table: 49 full pages and the DESC page, all run."""
    box = seeded(5000)
    box.calls = []

    async def go() -> list[int]:
        with client_for(box) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID"]}, spread=False)
            return [int(r["ID"]) for r in rows]

    assert asyncio.run(go()) == list(range(1, 5001))
    first = [c for c in box.calls if c.method == "crm.deal.list"][:50]
    assert len(first) == 50 and first[-1].name == "top", "the first batch ran whole"
