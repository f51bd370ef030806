"""Injected faults: each kind, over HTTP and in-process, and whether the write happened."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from b24kit.sandbox import Faults, FaultSpecError, Sandbox
from tests.servers import http_client, served


def _post(box: Sandbox, mode: str, method: str, payload: dict) -> httpx.Response:  # type: ignore[type-arg]
    if mode == "http":
        with served(box) as base:
            return http_client().post(box.webhook_url(base) + method, json=payload, timeout=10)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=box.transport()) as client:
            return await client.post(box.webhook_url("http://x") + method, json=payload)

    return asyncio.run(go())


@pytest.fixture(params=["http", "inprocess"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def _box(kind: str) -> Sandbox:
    return Sandbox(limits="off", faults=f"{kind}=1")


def test_fault_500_is_not_executed(mode: str) -> None:
    box = _box("500")
    response = _post(box, mode, "crm.deal.add", {"fields": {"TITLE": "x"}})
    assert response.status_code == 500 and response.json()["error"] == "INTERNAL_SERVER_ERROR"
    assert box.portal.count_items(2) == 0, "nothing was written"


def test_fault_503_is_a_proxy_page_and_not_executed(mode: str) -> None:
    """A 503 fault is what nginx answers when no PHP worker takes the request: its own HTML
    page, no Bitrix error code. QUERY_LIMIT_EXCEEDED is the bucket's alone (issue 15)."""
    box = _box("503")
    response = _post(box, mode, "crm.deal.add", {"fields": {"TITLE": "x"}})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "503 Service Temporarily Unavailable" in response.text
    assert "QUERY_LIMIT_EXCEEDED" not in response.text
    assert box.portal.count_items(2) == 0


def test_fault_drop_cuts_the_connection_before_executing(mode: str) -> None:
    box = _box("drop")
    with pytest.raises(httpx.TransportError):
        _post(box, mode, "crm.deal.add", {"fields": {"TITLE": "x"}})
    assert box.portal.count_items(2) == 0, "a dropped request did not run"


def test_fault_lost_executes_then_cuts_the_connection(mode: str) -> None:
    box = _box("lost")
    with pytest.raises(httpx.TransportError):
        _post(box, mode, "crm.deal.add", {"fields": {"TITLE": "x"}})
    assert box.portal.count_items(2) == 1, "the write committed although the answer was lost"


def test_fault_mix_is_seeded_and_counted() -> None:
    a, b = (
        Faults.parse("500=0.1,503=0.1,drop=0.1,lost=0.1,seed=3"),
        Faults.parse("500=0.1,503=0.1,drop=0.1,lost=0.1,seed=3"),
    )
    draws = [a.draw() for _ in range(2000)]
    assert draws == [b.draw() for _ in range(2000)], "the same seed gives the same faults"
    for kind in ("500", "503", "drop", "lost"):
        assert 140 < draws.count(kind) < 260, f"{kind} happens about 10% of the time"


@pytest.mark.parametrize(
    "spec", ["boom=0.1", "500=2", "500", "500=x", "500=0.6,503=0.6", "500=0.1,counted=maybe"]
)
def test_bad_fault_specs(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        Faults.parse(spec)


def test_a_proxy_503_is_not_counted_by_the_portals_bucket() -> None:
    """The proxy answers before the portal: its 503s leave the leaky bucket as it was,
    while a 500 reached the portal and counts (docs/sandbox.md, Faults)."""
    proxied = Sandbox(limits="standard", faults="503=1")
    for _ in range(60):  # more than the standard burst of 50
        assert (
            proxied.handle_sync("POST", f"/rest/1/{proxied.token}/server.time", b"", "", b"").status
            == 503
        )
    assert proxied.bucket is not None and proxied.bucket.level == 0
    failing = Sandbox(limits="standard", faults="500=1")
    statuses = [
        failing.handle_sync("POST", f"/rest/1/{failing.token}/server.time", b"", "", b"").status
        for _ in range(60)
    ]
    assert statuses.count(500) == 50 and statuses.count(503) == 10, "the burst, then refused"
    assert failing.faults.counts["500"] == 50, "a refused request's drawn fault did not happen"


@pytest.mark.parametrize("kind", ["500", "drop"])
def test_counted_no_is_the_reading_where_the_bucket_never_sees_a_failed_request(
    kind: str,
) -> None:
    """``counted=no``: a 500 or drop request fails before the leaky bucket counts it (no
    source says which reading a real portal follows); by default it counts."""
    uncounted = Sandbox(limits="standard", faults=f"{kind}=1,counted=no")
    answers = [
        uncounted.handle_sync("POST", f"/rest/1/{uncounted.token}/server.time", b"", "", b"")
        for _ in range(60)
    ]
    assert all(a.status == 500 or a.fault == "drop" for a in answers)
    assert uncounted.bucket is not None and uncounted.bucket.level == 0
    counted = Sandbox(limits="standard", faults=f"{kind}=1")
    for _ in range(10):
        counted.handle_sync("POST", f"/rest/1/{counted.token}/server.time", b"", "", b"")
    assert counted.bucket is not None and counted.bucket.level == pytest.approx(10, abs=0.5)
