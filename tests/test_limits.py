"""Rate limits: the leaky bucket (503) and the per-method operating budget (429), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests.clocks import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """The sandbox's clock: the test moves it on (clock.advance) instead of sleeping."""
    return FakeClock()


@pytest.fixture
def limited(
    request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[tuple[Sandbox, str, httpx.Client]]:
    budget = getattr(request, "param", 480.0)
    box = Sandbox(limits="standard", operating_limit=budget, operating_window=2.0, clock=clock.time)
    server = start_in_thread(box)
    with httpx.Client(timeout=30) as client:
        yield box, box.webhook_url(server.base_url), client
    server.stop()
    box.close()


def test_bucket_refuses_after_burst_and_recovers_at_drain_rate(
    limited: tuple[Sandbox, str, httpx.Client],
    clock: FakeClock,
) -> None:
    box, hook, client = limited
    statuses = [client.post(hook + "server.time").status_code for _ in range(50)]
    assert statuses == [200] * 50, "the burst of 50 is admitted"
    refused = client.post(hook + "server.time")
    assert refused.status_code == 503, "the 51st request is refused"
    assert refused.json() == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }
    clock.advance(0.6)  # 2 per second drain: one slot frees every 0.5 s
    assert client.post(hook + "server.time").status_code == 200, "one request after 0.5 s"
    assert client.post(hook + "server.time").status_code == 503, "but not two"
    clock.advance(1.1)
    assert [client.post(hook + "server.time").status_code for _ in range(2)] == [200, 200], (
        "two more after another second"
    )


def test_batch_counts_once_against_the_bucket(
    limited: tuple[Sandbox, str, httpx.Client], clock: FakeClock
) -> None:
    box, hook, client = limited
    box.fill_bucket()
    clock.advance(0.55)
    cmd = {f"c{i}": "server.time" for i in range(50)}
    response = client.post(hook + "batch", json={"cmd": cmd})
    assert response.status_code == 200 and len(response.json()["result"]["result"]) == 50


def test_enterprise_plan_burst() -> None:
    box = Sandbox(limits="enterprise")
    assert box.bucket is not None and (box.bucket.capacity, box.bucket.rate) == (250, 5)


@pytest.mark.parametrize("limited", [0.05], indirect=True)
def test_operating_budget_blocks_only_that_method_until_reset(
    limited: tuple[Sandbox, str, httpx.Client],
    clock: FakeClock,
) -> None:
    box, hook, client = limited
    for i in range(300):
        box.call("crm.deal.add", {"fields": {"TITLE": str(i)}})
    box.config.limits = "off"
    box.bucket = None
    first = client.post(hook + "crm.deal.list", json={"start": 0}).json()
    assert first["time"]["operating"] > 0, "time.operating reports the method's spend"
    blocked = None
    last_ok = first
    for _ in range(100):
        response = client.post(hook + "crm.deal.list", json={"start": 0})
        if response.status_code == 429:
            blocked = response
            break
        last_ok = response.json()
    assert blocked is not None, "a costly list exhausts the budget"
    assert blocked.json()["error"] == "OPERATION_TIME_LIMIT"
    assert client.post(hook + "crm.deal.get", json={"id": 1}).status_code == 200, (
        "other methods keep working"
    )
    reset_at = last_ok["time"]["operating_reset_at"]
    assert clock.time() - 0.5 <= reset_at <= clock.time() + 2.5, "reset falls within the window"
    assert client.post(hook + "crm.deal.list", json={"start": 0}).status_code == 429, (
        "still blocked before the window passes"
    )
    clock.advance(2.0 + 0.3)  # every bucket of the 2-second window has expired
    assert client.post(hook + "crm.deal.list", json={"start": 0}).status_code == 200, (
        "the method works again after operating_reset_at"
    )


def test_count_costs_more_than_start_minus_one(sandbox: Sandbox) -> None:
    for i in range(500):
        sandbox.portal.add_item(2, {"TITLE": str(i)}, 1, "old")
    key = ("hook:" + sandbox.token, "crm.deal.list")
    run = sandbox._run
    run("crm.deal.list", {"start": 0}, 1, frozenset({"crm"}), key[0], False)
    with_count = sandbox.budget.state(key)[0]
    sandbox.budget._spent.clear()
    run(
        "crm.deal.list",
        {"start": -1, "order": {"ID": "ASC"}, "filter": {">ID": 0}},
        1,
        frozenset({"crm"}),
        key[0],
        False,
    )
    without = sandbox.budget.state(key)[0]
    assert with_count > without, "counting 500 rows costs more than a keyset page"
