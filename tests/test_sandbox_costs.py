"""The sandbox's cost model (issue 15, item 1): named presets with sources, charged time
spent as wall time, requests served by a pool of workers. No real sleep: the waits go
through the clock seam (tests/clocks.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from b24kit.cli.app import app
from b24kit.sandbox import Sandbox
from b24kit.sandbox.costs import DOCS, PHPSDK, PRESETS
from tests.clocks import FakeClock


def test_presets_are_the_sources_figures() -> None:
    # settings/performance/huge-data.md lines 107 and 121: 49.8999 s counted, 0.0685 s not
    assert DOCS.page == pytest.approx(0.0685, abs=1e-4)
    assert DOCS.per_counted_row == pytest.approx(20.87e-6, rel=1e-3)
    assert DOCS.page + 2_387_743 * DOCS.per_counted_row == pytest.approx(49.8999, rel=1e-6)
    # bitrix24-php-sdk batch-read-mode.md: (0.3786 - 0.3125) s over 100,000 contacts
    assert PHPSDK.per_counted_row == pytest.approx(0.661e-6, rel=1e-3)
    assert PHPSDK.page == DOCS.page and PHPSDK.write == DOCS.write
    assert set(PRESETS) == {"docs", "phpsdk"}
    assert Sandbox().costs is DOCS, "docs is the default"


def _operating(box: Sandbox, method: str, params: dict[str, Any]) -> float:
    """What one call over HTTP (in-process) adds to its method's ``time.operating``."""
    url = box.webhook_url("http://sandbox.local") + method

    async def go() -> float:
        async with httpx.AsyncClient(transport=box.transport()) as http:
            before = (await http.post(url, json=params)).json()["time"]["operating"]
            after = (await http.post(url, json=params)).json()["time"]["operating"]
            return float(after - before)

    return asyncio.run(go())


@pytest.mark.parametrize("model", [DOCS, PHPSDK])
def test_each_family_is_charged_by_the_preset(model: Any) -> None:
    box = Sandbox(limits="off", cost_model=model.name)
    for i in range(120):
        box.call("crm.deal.add", {"fields": {"TITLE": str(i)}})
    keyset = {"order": {"ID": "ASC"}, "filter": {">ID": 0}, "start": -1}
    assert _operating(box, "crm.deal.list", keyset) == pytest.approx(model.page, abs=1e-5)
    counted = _operating(box, "crm.deal.list", {"start": 0})
    assert counted == pytest.approx(model.page + 120 * model.per_counted_row, abs=1e-5)
    offset = _operating(box, "crm.deal.list", {"start": 100})
    assert offset == pytest.approx(model.page + 220 * model.per_counted_row, abs=1e-5)
    assert _operating(box, "crm.deal.get", {"id": 1}) == pytest.approx(model.call, abs=1e-5)
    write = _operating(box, "crm.deal.update", {"id": 1, "fields": {"TITLE": "x"}})
    assert write == pytest.approx(model.write, abs=1e-5)


def test_an_unknown_cost_model_is_refused_with_the_names() -> None:
    with pytest.raises(ValueError, match="'cheap'; use one of: docs, phpsdk"):
        Sandbox(cost_model="cheap")
    result = CliRunner().invoke(app, ["sandbox", "serve", "--cost-model", "cheap"])
    assert result.exit_code == 2
    assert "--cost-model must be one of docs, phpsdk, not 'cheap'" in result.output


def _post_all(box: Sandbox, calls: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """Send the calls at once through the in-process transport; their HTTP statuses."""
    base = box.webhook_url("http://sandbox.local")

    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=box.transport()) as http:
            answers = await asyncio.gather(*(http.post(base + m, json=p) for m, p in calls))
            return [a.status_code for a in answers]

    return asyncio.run(go())


def test_wall_time_spends_the_charged_time_before_answering() -> None:
    clock = FakeClock()
    box = Sandbox(limits="off", wall_time=True, clock=clock.time)
    assert _post_all(box, [("crm.deal.add", {"fields": {"TITLE": "a"}})]) == [200]
    assert clock.sleeps == [pytest.approx(DOCS.write)]
    three = {"cmd": {str(i): f"crm.deal.add?fields[TITLE]={i}" for i in range(3)}}
    assert _post_all(box, [("batch", three)]) == [200]
    assert clock.sleeps[1] == pytest.approx(3 * DOCS.write), "a batch: the sum of its commands"
    quiet = FakeClock()
    box = Sandbox(limits="off", clock=quiet.time)
    _post_all(box, [("crm.deal.add", {"fields": {"TITLE": "a"}})])
    assert quiet.sleeps == [], "without --wall-time the answer comes at once"


@pytest.mark.parametrize(("workers", "peak", "elapsed"), [(2, 2, 1), (1, 1, 2)])
def test_workers_overlap_slow_requests(workers: int, peak: int, elapsed: int) -> None:
    """Two slow requests at once: with two workers their waits overlap (one write's time
    in all), with one the second waits for the first (two writes' time)."""
    clock = FakeClock()
    box = Sandbox(limits="off", wall_time=True, workers=workers, clock=clock.time)
    calls = [("crm.deal.add", {"fields": {"TITLE": str(i)}}) for i in range(2)]
    assert _post_all(box, calls) == [200, 200]
    assert box.workers.peak == peak
    assert clock.elapsed == pytest.approx(elapsed * DOCS.write)


def test_a_request_past_the_workers_waits_for_a_free_one() -> None:
    clock = FakeClock()
    box = Sandbox(limits="off", wall_time=True, workers=3, clock=clock.time)
    calls = [("crm.deal.add", {"fields": {"TITLE": str(i)}}) for i in range(7)]
    assert _post_all(box, calls) == [200] * 7
    assert box.workers.peak == 3
    assert clock.elapsed == pytest.approx(3 * DOCS.write), "three rounds: 3 + 3 + 1"
    with pytest.raises(ValueError, match="at least 1"):
        Sandbox(workers=0)


def _plans(box: Sandbox, method: str, params: dict[str, Any]) -> list[str]:
    """EXPLAIN QUERY PLAN of every SELECT on ``items`` the call ran, as SQLite ran them."""
    statements: list[str] = []
    box.db.conn.set_trace_callback(statements.append)
    try:
        box.call(method, params)
    finally:
        box.db.conn.set_trace_callback(None)
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT") and " FROM items " in sql:
            rows = box.db.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            plans.append(" / ".join(str(r["detail"]) for r in rows))
    return plans


@pytest.mark.parametrize(
    ("method", "params", "index"),
    [
        (
            "crm.deal.list",
            {"filter": {"ORIGINATOR_ID": "b24kit", "ORIGIN_ID": "r7"}, "select": ["ID"]},
            "items_origin_id",
        ),
        ("crm.deal.list", {"filter": {"ORIGINATOR_ID": "b24kit"}}, "items_originator_id"),
        ("crm.deal.list", {"filter": {"@UF_CRM_PARENT": ["D_1", "D_2"]}}, "items_f_UF_CRM_PARENT"),
        # a user field's index holds only the items that have the field (db.index_field):
        # an equality still finds it
        ("crm.deal.list", {"filter": {"UF_CRM_PARENT": "D_1"}}, "items_f_UF_CRM_PARENT"),
        ("crm.contact.list", {"filter": {"ORIGIN_ID": "c1"}}, "items_origin_id"),
    ],
)
def test_lookups_use_an_index_not_a_scan(method: str, params: dict[str, Any], index: str) -> None:
    """What b24kit's lookups filter on is indexed (issue 15): a lookup by key reads a few
    rows of an index, not every deal of the portal. (A page of a pipeline, @CATEGORY_ID,
    walks the primary key in ID order instead: thousands of deals match; its count uses
    items_category_id.)"""
    box = Sandbox(limits="off")
    box.call(
        "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "PARENT", "USER_TYPE_ID": "string"}}
    )
    plans = _plans(box, method, params)
    assert plans, "the list read items"
    for plan in plans:
        assert index in plan and "SCAN items" not in plan, plan


def test_a_user_field_is_indexed_when_a_lookup_first_filters_on_it() -> None:
    """Each index costs every write of an item a parse of its JSON, and few user fields
    are looked up: the index is made by the first list that filters on the field by value,
    not when the field is made; a substring filter or a multiple field makes none."""
    box = Sandbox(limits="off")
    for name, multiple in (("PARENT", "N"), ("NOTE", "N"), ("TAGS", "Y")):
        box.call(
            "crm.deal.userfield.add",
            {"fields": {"FIELD_NAME": name, "USER_TYPE_ID": "string", "MULTIPLE": multiple}},
        )

    def indexed() -> set[str]:
        rows = box.db.all("SELECT name FROM sqlite_master WHERE name LIKE 'items_f_%'")
        return {str(r["name"]) for r in rows}

    assert indexed() == set()
    box.call("crm.deal.add", {"fields": {"UF_CRM_PARENT": "D_1", "UF_CRM_NOTE": "x"}})
    box.call("crm.deal.list", {"filter": {"%UF_CRM_NOTE": "x", "UF_CRM_TAGS": "a"}})
    assert indexed() == set()
    found = box.call("crm.deal.list", {"filter": {"UF_CRM_PARENT": "D_1"}, "select": ["ID"]})
    assert len(found) == 1 and indexed() == {"items_f_UF_CRM_PARENT"}
    assert "items_f_UF_CRM_PARENT" in " ".join(
        _plans(box, "crm.deal.list", {"filter": {"@UF_CRM_PARENT": ["D_1"]}})
    )
