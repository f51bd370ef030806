"""The executor: batching with references, failure isolation, and no loss or duplicate
under injected faults."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from b24kit.client import Command, DependencyFailed, Executor, Outcome, Ref, UnknownOutcome
from b24kit.clock import Clock
from b24kit.portal import commands as cmd
from b24kit.sandbox import Sandbox
from b24kit.sandbox.costs import DOCS
from tests.clients import client_for
from tests.clocks import FakeClock

FAULTS = "500=0.05,503=0.05,drop=0.05,lost=0.05"


def run(
    box: Sandbox, commands: list[Command], clock: Clock | None = None, **kwargs: object
) -> list[Outcome]:
    async def go() -> list[Outcome]:
        with client_for(box, clock=clock) as client:
            return await Executor(client, **kwargs).run(commands)  # type: ignore[arg-type]

    return asyncio.run(go())


def link_field(box: Sandbox) -> None:
    box.call(
        "crm.deal.userfield.add",
        {"fields": {"FIELD_NAME": "PARENT", "USER_TYPE_ID": "crm", "SETTINGS": {"DEAL": "Y"}}},
    )


@pytest.mark.parametrize("batch_size", [50, 3, 1])
def test_references_inside_and_across_batches(batch_size: int) -> None:
    box = Sandbox(limits="off")
    link_field(box)
    commands = []
    for i in range(10):
        commands.append(cmd.entity_add("deal", {"TITLE": f"P{i}"}, name=f"p{i}"))
        commands.append(
            cmd.entity_add(
                "deal",
                {
                    "TITLE": Ref(f"p{i}", fmt="child of {}"),
                    "UF_CRM_PARENT": Ref(f"p{i}", fmt="D_{}"),
                },
                name=f"c{i}",
            )
        )
    outcomes = run(box, commands, batch_size=batch_size)
    assert [o.name for o in outcomes] == [c.name for c in commands], "outcomes in input order"
    assert all(o.ok for o in outcomes)
    for i in range(10):
        parent, child = outcomes[2 * i].result, outcomes[2 * i + 1].result
        got = box.call("crm.deal.get", {"id": child})
        assert got["UF_CRM_PARENT"] == f"D_{parent}" and got["TITLE"] == f"child of {parent}"


def test_nested_result_paths() -> None:
    box = Sandbox(limits="off")
    spa = box.call(
        "crm.type.add", {"fields": {"title": "T", "relations": {"parent": [{"entityTypeId": 2}]}}}
    )["type"]
    outcomes = run(
        box,
        [
            cmd.item_add(2, {"title": "deal"}, name="deal"),
            cmd.item_add(
                spa["entityTypeId"],
                {"title": "x", "parentId2": Ref("deal", ("item", "id"))},
                name="child",
            ),
        ],
        batch_size=2,
    )
    assert outcomes[1].result["item"]["parentId2"] == outcomes[0].result["item"]["id"]


def test_a_failure_hides_nothing() -> None:
    box = Sandbox(limits="off")
    commands = [
        cmd.entity_add("deal", {"TITLE": "a"}, name="a"),
        cmd.entity_add("deal", {"CURRENCY_ID": "XXX"}, name="bad"),
        cmd.entity_update("deal", Ref("bad"), {"TITLE": "never"}, name="dep"),
        cmd.entity_add("deal", {"TITLE": "c"}, name="c"),
        cmd.read("crm.deal.get", {"id": Ref("a")}, name="read"),
    ]
    outcomes = {o.name: o for o in run(box, commands)}
    assert outcomes["a"].ok and outcomes["c"].ok and outcomes["read"].ok, (
        "commands after the failure (halted) were sent again"
    )
    assert not outcomes["bad"].ok and "Currency" in str(outcomes["bad"].error)
    assert isinstance(outcomes["dep"].error, DependencyFailed), "a dependent is not run"
    assert box.portal.count_items(2) == 2


def test_exact_counts_under_every_fault_kind() -> None:
    box = Sandbox(limits="off", faults=FAULTS + ",seed=5")
    commands = [
        cmd.entity_add("deal", {"TITLE": f"row {i}", "ORIGINATOR_ID": "test", "ORIGIN_ID": f"r{i}"})
        for i in range(1500)
    ]
    outcomes = run(box, commands, batch_size=10)  # more requests, so every kind shows up
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes if not o.ok][:3]
    assert box.portal.count_items(2) == 1500, "exactly one deal per command: none lost or doubled"
    ids = [o.result for o in outcomes]
    assert len(set(ids)) == 1500, "each outcome carries its own deal id"
    assert any(o.found_existing for o in outcomes), "some lost answers were found by key"
    for kind in ("500", "503", "drop", "lost"):
        assert box.faults.counts[kind] > 0, f"{kind} faults happened"


def test_exact_counts_under_proxy_503s() -> None:
    """A proxy's 503 (no error code) leaves each write of its batch unknown, as a 500: the
    executor looks them up by key and makes every deal exactly once (issue 15)."""
    box = Sandbox(limits="off", faults="503=0.2,seed=11")
    commands = [
        cmd.entity_add("deal", {"TITLE": f"d{i}", "ORIGINATOR_ID": "t", "ORIGIN_ID": f"d{i}"})
        for i in range(300)
    ]
    outcomes = run(box, commands, batch_size=10)
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes if not o.ok][:3]
    assert box.portal.count_items(2) == 300 and len({o.result for o in outcomes}) == 300
    assert box.faults.counts["503"] > 3 and box.statuses[503] == box.faults.counts["503"]


def test_unkeyed_creates_are_never_repeated_blindly() -> None:
    box = Sandbox(limits="off", faults="lost=0.2,seed=9")
    commands = [cmd.entity_add("deal", {"TITLE": f"t{i}"}) for i in range(300)]
    outcomes = run(box, commands)
    titles = Counter(
        str(box.call("crm.deal.get", {"id": i})["TITLE"])
        for i in range(1, box.portal.count_items(2) + 1)
    )
    assert max(titles.values()) == 1, "no deal was created twice"
    unknown = [o for o in outcomes if isinstance(o.error, UnknownOutcome)]
    assert unknown, "lost answers without a key are reported as unknown"
    assert box.portal.count_items(2) == sum(o.ok for o in outcomes) + len(unknown)


def test_structure_creates_are_not_doubled_by_lost_answers() -> None:
    box = Sandbox(limits="off", faults="lost=0.5,seed=1")
    outcomes = run(
        box,
        [
            cmd.type_add({"title": "Подрядчики", "code": "contractors"}),
            cmd.category_add(
                2, {"name": "Логистика", "originatorId": "b24kit", "originId": "logistics"}
            ),
            cmd.deal_field_add({"FIELD_NAME": "UF_CRM_CHILD_STAGE", "USER_TYPE_ID": "string"}),
            cmd.status_add("DEAL_STAGE", "EST", {"NAME": "Оценить", "SORT": 15}),
        ],
        batch_size=1,
    )
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes]
    assert len(box.call("crm.type.list")["types"]) == 1
    assert len(box.call("crm.category.list", {"entityTypeId": 2})["categories"]) == 2
    assert len(box.call("crm.deal.userfield.list")) == 1
    assert len(box.call("crm.status.list", {"filter": {"STATUS_ID": "EST"}})) == 1


def test_budget_refusals_inside_batches_are_retried() -> None:
    clock = FakeClock()  # the sandbox's budget window passes while the client waits on it
    # about 20 adds a window (the budget counts in the cost model's seconds)
    box = Sandbox(
        limits="off", operating_limit=20 * DOCS.write, operating_window=1.0, clock=clock.time
    )
    commands = [
        cmd.entity_add("deal", {"TITLE": str(i), "ORIGINATOR_ID": "t", "ORIGIN_ID": str(i)})
        for i in range(200)
    ]
    outcomes = run(box, commands, clock=clock)
    assert all(o.ok for o in outcomes) and box.portal.count_items(2) == 200
    assert box.budget_refusals > 0
    assert clock.slept > 0, "the refused commands were waited out, not hammered"


def test_progress_and_validation() -> None:
    box = Sandbox(limits="off")
    seen: list[tuple[int, int]] = []
    run(
        box,
        [cmd.read("server.time", {}) for _ in range(120)],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (120, 120) and len(seen) == 120
    with pytest.raises(ValueError, match="not an earlier command"):
        run(
            box,
            [
                cmd.read("crm.deal.get", {"id": Ref("later")}),
                cmd.read("server.time", {}, name="later"),
            ],
        )
    with pytest.raises(ValueError, match="letters, digits"):
        run(box, [cmd.read("server.time", {}, name="bad name")])


def test_a_three_hour_run_under_limits_loses_nothing() -> None:
    """Issue 15, item 5: the wait for the portal's limits was bounded from the start of the
    run, so a migration past 30 minutes failed its limited commands at once. Now a refused
    command gives up only after max_limit_wait with no progress at all."""
    clock = FakeClock()
    box = Sandbox(
        limits="off", operating_limit=40 * DOCS.write, operating_window=600.0, clock=clock.time
    )
    commands = [
        cmd.entity_add("deal", {"TITLE": str(i), "ORIGINATOR_ID": "t", "ORIGIN_ID": str(i)})
        for i in range(300)
    ]
    outcomes = run(box, commands, clock=clock)
    assert clock.slept >= 3 * 3600, "three hours of refusals, on the clock seam"
    assert box.budget_refusals > 20, "refused throughout"
    assert [o for o in outcomes if not o.ok] == []
    assert box.portal.count_items(2) == 300, "nothing lost, nothing twice"
