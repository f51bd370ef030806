"""The REST client against the sandbox: results, typed errors, retries, limits, OAuth."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from b24kit.client import (
    AuthError,
    B24Client,
    BadResponse,
    Bucket,
    MethodNotFound,
    OAuthAuth,
    OperatingTracker,
    PortalError,
    ScopeError,
    ServerError,
    TransportFailure,
    WebhookAuth,
    parse_webhook,
    read_all,
)
from b24kit.sandbox import Sandbox
from tests.clients import ScriptedFaults, bucket_for, client_for
from tests.clocks import FakeClock


@pytest.fixture(params=["inprocess", "http"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_call_envelope_and_typed_errors(mode: str) -> None:
    box = Sandbox(limits="off")

    async def go() -> None:
        with client_for(box, mode) as client:
            deal = await client.call("crm.deal.add", {"fields": {"TITLE": "Трактор", "X": None}})
            env = await client.envelope("crm.deal.list", {"select": ["ID"]})
            assert env.result == [{"ID": str(deal)}] and env.total == 1 and env.next is None
            with pytest.raises(PortalError) as info:
                await client.call("crm.deal.get", {"id": 999})
            assert (
                info.value.method,
                info.value.status,
                info.value.code,
                info.value.description,
            ) == ("crm.deal.get", 400, "", "Not found")
            with pytest.raises(MethodNotFound) as missing:
                await client.call("crm.nope")
            assert missing.value.status == 404
            await client.aclose()

    asyncio.run(go())


def test_scope_and_auth_errors(mode: str) -> None:
    box = Sandbox(limits="off")
    token = box.add_webhook(9, ("user",))

    async def go() -> None:
        with client_for(box, mode) as client:
            limited = B24Client(
                WebhookAuth(
                    parse_webhook(
                        client.auth.url("")
                        .replace(box.token, token)
                        .replace("/rest/1/", "/rest/9/")
                    )
                ),
                transport=client._http._transport,
            )  # same transport: same sandbox
            with pytest.raises(ScopeError):
                await limited.call("crm.deal.list")
            wrong = B24Client(
                WebhookAuth(parse_webhook(client.auth.url("").replace(box.token, "x" * 16))),
                transport=client._http._transport,
            )
            with pytest.raises(AuthError) as info:
                await wrong.call("user.current")
            assert info.value.status == 401 and "x" * 16 not in str(info.value)

    asyncio.run(go())


def _edge(handler: httpx.MockTransport) -> B24Client:
    """A portal behind a broken proxy: the outer edge the sandbox cannot be."""
    return B24Client(
        WebhookAuth(parse_webhook("https://acme.bitrix24.ru/rest/1/secrettoken123/")),
        transport=handler,
        bucket=Bucket(1e9, 1e9),
    )


@pytest.mark.parametrize(
    ("status", "body", "expected", "error"),
    [
        (502, "<html><body>Bad gateway</body></html>", "an HTML page", ServerError),
        (503, "", "empty response body", ServerError),
        (200, "", "empty response body", BadResponse),
        (200, "[1, 2]", "not a JSON object", BadResponse),
        (200, '{"time": {}}', "has no result", BadResponse),
    ],
)
def test_html_or_empty_bodies_are_clear_errors(
    status: int, body: str, expected: str, error: type[Exception]
) -> None:
    """A proxy's bare 5xx (no envelope) is a server error, as a 500 (issue 15)."""
    client = _edge(httpx.MockTransport(lambda request: httpx.Response(status, text=body)))

    async def go() -> None:
        with pytest.raises(error) as info:
            await client.call("crm.deal.add", {"fields": {}})
        assert type(info.value) is error
        assert expected in str(info.value) and "secrettoken123" not in str(info.value)

    asyncio.run(go())


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (501, "<html><body>Unsupported method ('POST')</body></html>", BadResponse),
        (505, "", BadResponse),
        (404, "<html><body>Not Found</body></html>", BadResponse),
        (403, "<html><body>Forbidden</body></html>", BadResponse),
        # http:// to https:// (httpx does not follow it), a login or captive page: no portal
        (301, "", BadResponse),
        (200, "<!DOCTYPE html><html><body>Войти</body></html>", BadResponse),
        (413, "<html><body>413 Request Entity Too Large</body></html>", BadResponse),
        (501, '{"error": "NOT_IMPLEMENTED", "error_description": "x"}', PortalError),
    ],
)
def test_an_answer_that_will_not_change_is_not_asked_again(
    status: int, body: str, error: type[Exception]
) -> None:
    """A web server that is no portal (a 404 or 403 page, a 501 or 505) answers the same
    however often it is asked: a read fails at once, naming the status, instead of
    retrying for most of a minute."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body.encode())

    client = _edge(httpx.MockTransport(handler))

    async def go() -> None:
        with pytest.raises(error) as info:
            await client.call("crm.deal.list")
        assert type(info.value) is error, "not a transient ServerError"
        assert f"HTTP {status}" in str(info.value)
        hint = {301: "the address redirects", 413: "too large for the portal's web server"}
        if error is BadResponse:
            assert hint.get(status, "check the portal's address") in str(info.value)

    asyncio.run(go())
    assert len(seen) == 1, "asked once"


@pytest.mark.parametrize(
    ("status", "body"),
    [(408, b"<html>wait</html>"), (429, b""), (200, b'{"result": [{"ID": "1"'), (200, b"")],
)
def test_an_answer_that_may_change_is_asked_again(status: int, body: bytes) -> None:
    """A bare 408 or 429 from a proxy, or a 200 with a cut or empty body, may be different
    next time: a read is asked again, and gets the portal's answer."""
    answers = [httpx.Response(status, content=body)]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if answers:
            return answers.pop()
        return httpx.Response(200, json={"result": [], "total": 0, "time": {}})

    clock = FakeClock()  # the back-off wait takes no real time
    box = Sandbox(limits="off", clock=clock.time)

    async def go() -> None:
        transport = httpx.MockTransport(handler)
        with client_for(box, clock=clock, transport=transport) as client:
            assert await client.call("crm.deal.list") == []

    asyncio.run(go())
    assert len(seen) == 2


def test_reads_retry_server_errors_and_writes_do_not() -> None:
    clock = FakeClock()  # the retries' back-off waits take no real time
    box = Sandbox(limits="off", faults="500=0.5,drop=0.2,seed=4", clock=clock.time)

    async def go() -> None:
        with client_for(box, clock=clock) as client:
            for _ in range(20):
                assert (await client.call("user.current"))["ID"] == "1", "reads get through"
            with pytest.raises((ServerError, TransportFailure)):
                for _ in range(50):  # a write is never repeated by the client itself
                    await client.call("crm.timeline.comment.add", {"fields": {}})

    asyncio.run(go())
    assert box.statuses[500] > 0
    assert clock.sleeps and all(0 < s <= 0.05 for s in clock.sleeps), "backed off each time"


def test_the_buckets_503_is_retried_for_writes_too() -> None:
    # the portal's bucket is full and the client does not know it: every write is first
    # refused with 503 QUERY_LIMIT_EXCEEDED, which did not run, so retrying is safe
    clock = FakeClock()
    box = Sandbox(limits="standard", clock=clock.time)
    box.fill_bucket()

    async def go() -> None:
        with client_for(box, clock=clock) as client:
            for i in range(30):
                await client.call("crm.deal.add", {"fields": {"TITLE": str(i)}})

    asyncio.run(go())
    assert box.portal.count_items(2) == 30
    assert box.statuses[503] > 0 and box.faults.counts["503"] == 0


def test_a_bare_503_is_a_server_error_not_the_bucket() -> None:
    """A proxy's 503 (no error code) leaves a write's outcome unknown, as a 500: the client
    does not repeat it (no duplicate) and does not take it for a full bucket (issue 15)."""
    clock = FakeClock()
    box = Sandbox(limits="standard", faults="503=1", clock=clock.time)

    async def go() -> None:
        with client_for(box, clock=clock) as client:
            with pytest.raises(ServerError) as info:
                await client.call("crm.deal.add", {"fields": {"TITLE": "x"}})
            assert info.value.status == 503 and info.value.code == ""
            # not taken for a full bucket, and its place given back: the portal never saw it
            assert client.bucket.level == 0

    asyncio.run(go())
    assert box.requests == 1, "a write with an unknown outcome is not repeated blindly"


def test_one_bare_503_does_not_slow_the_client_to_the_sustained_rate() -> None:
    # a fresh bucket (burst 50, 2/s) and one proxy 503 first: the reads after it still go
    # at the burst, as the portal's bucket is nowhere near full. Under the old reading (a 503
    # means a full bucket) the 40 reads after it would wait ~20 s at 2/s.
    clock = FakeClock()
    box = Sandbox(limits="standard", clock=clock.time)
    box.faults = ScriptedFaults(["503"])

    async def go() -> None:
        with client_for(box, clock=clock) as client:
            for _ in range(40):
                await client.call("server.time")

    asyncio.run(go())
    assert box.statuses[503] == 1 and box.statuses[200] == 40
    assert clock.slept < 1.0, f"waited {clock.slept:.1f} s: the burst was given up"


def test_bucket_keeps_the_client_under_the_portal_limit() -> None:
    # one fake clock for the portal's bucket and the client's: the drain happens exactly
    # while the client waits, and the waits take no real time
    clock = FakeClock()
    box = Sandbox(limits="standard", clock=clock.time)

    async def go() -> float:
        with client_for(box, "http", clock=clock) as client:
            started = clock.monotonic()
            await asyncio.gather(*(client.call("server.time") for _ in range(60)))
            return clock.monotonic() - started

    elapsed = asyncio.run(go())
    assert box.statuses[503] == 0, "the client never ran into the portal's bucket"
    assert box.statuses[200] == 60
    assert elapsed >= 4.0, "the 10 requests past the burst waited for the drain (2/s)"
    assert len(clock.sleeps) >= 10 and all(0 < s <= 0.5 for s in clock.sleeps), (
        "a wait of at most one drain interval before each request past the burst"
    )


def test_429_pauses_only_that_method_until_reset() -> None:
    # the portal's budget window and the client's waits run on one fake clock: waiting
    # takes no real time. As the clock jumps to the end of whichever wait ends first, a
    # get's elapsed time would include the lists' waits; so what each method waited is
    # taken from the client's own tracker.
    clock = FakeClock()
    box = Sandbox(limits="off", operating_limit=0.05, operating_window=2.0, clock=clock.time)
    for i in range(300):
        box.call("crm.deal.add", {"fields": {"TITLE": str(i)}})
    waited: list[tuple[str, float]] = []  # every wait the tracker made, by method

    class Recording(OperatingTracker):
        async def wait(self, method: str, announce: Callable[[str], None] | None = None) -> None:
            waited.append((method, self.wait_time(method)))
            await super().wait(method, announce)

    async def go() -> None:
        with client_for(box, clock=clock) as client:
            client.tracker = Recording(probe_after=0.2, clock=clock.time, sleep=clock.sleep)

            async def lists() -> float:
                started = clock.monotonic()
                for _ in range(12):
                    await client.call("crm.deal.list", {"start": 0})
                return clock.monotonic() - started

            async def gets() -> int:
                for _ in range(8):  # 8 gets stay well inside their own budget
                    await client.call("crm.deal.get", {"id": 1})
                    await clock.sleep(0.1)
                return 8

            list_time, _ = await asyncio.gather(lists(), gets())
            assert list_time >= 1.0, "crm.deal.list waited for its budget to reset"
            list_waits = [d for m, d in waited if m == "crm.deal.list"]
            get_waits = [d for m, d in waited if m == "crm.deal.get"]
            assert sum(list_waits) >= 1.0, "crm.deal.list waited for its budget to reset"
            assert len(get_waits) == 8 and max(get_waits) == 0, "crm.deal.get was never paused"

    asyncio.run(go())
    assert box.statuses[429] >= 1, "the sandbox did refuse crm.deal.list"


def test_a_429_waits_a_second_past_the_whole_second_reset() -> None:
    """Review find: after a 429 the tracker waited until the reset time the portal gives
    in whole seconds, up to a second before the minute really leaves the window: the next
    call was refused again and, that time now past, waited ``probe_after`` (a minute)."""
    clock = FakeClock(start=1000.5)
    tracker = OperatingTracker(clock=clock.time, sleep=clock.sleep)
    tracker.observe("crm.deal.list", {"operating": 480.2, "operating_reset_at": 1001})
    tracker.blocked("crm.deal.list")
    assert tracker.wait_time("crm.deal.list") == pytest.approx(1.5), "to 1002: surely reset"
    clock.advance(1.6)  # past it: a second 429 finds no reset time ahead, so it probes
    tracker.blocked("crm.deal.list")
    assert tracker.wait_time("crm.deal.list") == pytest.approx(tracker.probe_after)


def test_oauth_refreshes_once_then_retries(mode: str) -> None:
    box = Sandbox(limits="off")
    box.register_app("app.7", "s3cret")
    old = box.issue_tokens("app.7", expires_in=-1)
    saved: list[dict] = []  # type: ignore[type-arg]

    async def go() -> None:
        with client_for(box, mode) as probe:
            base = probe.auth.url("").split("/rest/")[0]
            auth = OAuthAuth(
                rest_base=base + "/rest/",
                access_token=old["access_token"],
                refresh_token=old["refresh_token"],
                client_id="app.7",
                client_secret="s3cret",
                token_url=base + "/oauth/token/",
                on_tokens=saved.append,
            )
            client = B24Client(auth, transport=probe._http._transport, bucket=Bucket(1e9, 1e9))
            assert (await client.call("user.current"))["ID"] == "1"
            assert len(saved) == 1 and saved[0]["refresh_token"] != old["refresh_token"]
            assert auth.access_token == saved[0]["access_token"]

    asyncio.run(go())


def test_none_and_lists_survive_inside_batch() -> None:
    """A peer gap: None and list parameters broken inside batch."""
    box = Sandbox(limits="off")
    box.call(
        "crm.deal.userfield.add",
        {"fields": {"FIELD_NAME": "TAGS", "USER_TYPE_ID": "string", "MULTIPLE": "Y"}},
    )

    async def go() -> None:
        with client_for(box) as client:
            result = await client.batch(
                {
                    "a": (
                        "crm.deal.add",
                        {
                            "fields": {
                                "TITLE": "x",
                                "COMMENTS": None,
                                "UF_CRM_TAGS": ["один", "два & три"],
                            }
                        },
                    ),
                    "b": ("crm.deal.add", {"fields": {"TITLE": "y"}}),
                    "list": (
                        "crm.deal.list",
                        {
                            "filter": {"@ID": ["$result[a]", "$result[b]"]},
                            "select": ["ID", "COMMENTS", "UF_CRM_TAGS"],
                            "order": {"ID": "ASC"},
                        },
                    ),
                },
                halt=True,
            )
            rows = result.result["list"]
            assert [r["ID"] for r in rows] == ["1", "2"], "a list of references is substituted"
            assert rows[0]["COMMENTS"] == "", "None arrives as an explicit empty value"
            assert rows[0]["UF_CRM_TAGS"] == ["один", "два & три"], "a list value survives"
            assert result.error == {}

    asyncio.run(go())


class _Kept(httpx.AsyncBaseTransport):
    """The sandbox's transport, keeping a weak reference to every response it makes."""

    def __init__(self, box: Sandbox) -> None:
        self.inner = box.transport()
        self.responses: list[weakref.ref[httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.responses.append(weakref.ref(response))
        return response


def test_an_answer_is_freed_once_decoded_without_the_garbage_collector() -> None:
    """httpx ties a response and its stream in a reference cycle: left alone, every batch's
    body waits for a full garbage collection, and a long read piles them up (issue 14:
    report memory flat at 100,000 deals). The client cuts the cycle."""
    box = Sandbox(limits="off")
    for i in range(60):
        box.call("crm.deal.add", {"fields": {"TITLE": f"Сделка {i}" * 20}})
    kept = _Kept(box)

    async def go() -> int:
        async with B24Client(
            WebhookAuth(parse_webhook(box.webhook_url("http://x"))),
            transport=kept,
            bucket=Bucket(1e9, 1e9),
        ) as client:
            rows = await read_all(client, "crm.deal.list", {"select": ["ID", "TITLE"]})
            await client.call("server.time")
            return len(rows)

    gc.collect()
    gc.disable()
    try:
        assert asyncio.run(go()) == 60
        alive = [r for r in kept.responses if r() is not None]
    finally:
        gc.enable()
    assert len(kept.responses) >= 2 and alive == []


def test_a_proxy_503_gives_its_place_in_the_bucket_back() -> None:
    """A proxy's bare 503 never reached the portal, whose bucket did not count it: the
    client gives the place back, so 20% of them do not cost 20% of the rate. (Had the
    portal counted it, its QUERY_LIMIT_EXCEEDED would make the client believe it full.)"""
    clock = FakeClock()
    box = Sandbox(limits="standard", clock=clock.time)
    box.fill_bucket()
    box.faults = ScriptedFaults(["503", None, None, None, None] * 4)

    async def go() -> None:
        bucket = bucket_for(box, clock)
        bucket.spend_burst()
        with client_for(box, clock=clock, bucket=bucket) as client:
            for _ in range(16):
                await client.call("server.time")

    asyncio.run(go())
    assert box.statuses[503] == 4 and box.statuses[200] == 16, "each 503 retried, none refused"
    # 16 answered at 2 a second from a full bucket: ~8 s; counting the 4 proxy 503s
    # against the client's own bucket as well would have taken 2 s more
    assert clock.elapsed < 8.6, clock.elapsed


def test_an_empty_503_gives_its_place_back_as_a_proxy_page_does() -> None:
    """A proxy may answer 503 with no body at all: the same proxy's refusal as its HTML
    page, so the same place given back (one place for both, in the client's _bare)."""
    clock = FakeClock()
    box = Sandbox(limits="off", clock=clock.time)

    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=b"")

    async def go() -> None:
        with client_for(box, clock=clock, transport=httpx.MockTransport(proxy)) as client:
            with pytest.raises(ServerError):
                await client.call("crm.deal.add", {"fields": {"TITLE": "x"}})
            assert client.bucket.level == 0

    asyncio.run(go())


@pytest.mark.parametrize(
    ("status", "body", "given_back"),
    [
        (500, '{"error": "INTERNAL_SERVER_ERROR", "error_description": "x"}', True),
        (500, "<html><body>500 Internal Server Error</body></html>", True),
        (503, "<html><body>503 Service Temporarily Unavailable</body></html>", True),
        (502, "<html><body>502 Bad Gateway</body></html>", False),
        (504, "", False),
    ],
)
def test_one_rule_gives_a_server_error_s_place_back(
    status: int, body: str, given_back: bool
) -> None:
    """One rule, for an answer with Bitrix24's envelope and without (a proxy's page): a
    server error the portal is not still running gives its place in the bucket back; a
    gateway's 502/504 keeps it (the portal may still be running the request)."""
    clock = FakeClock()
    box = Sandbox(limits="off", clock=clock.time)

    def portal(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body.encode())

    async def go() -> float:
        with client_for(box, clock=clock, transport=httpx.MockTransport(portal)) as client:
            with pytest.raises(ServerError):
                await client.call("crm.deal.add", {"fields": {"TITLE": "x"}})
            return client.bucket.level

    assert asyncio.run(go()) == pytest.approx(0 if given_back else 1, abs=0.01)


def test_clients_of_one_process_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx made a TLS context per client (certifi's store, 55 ms of CPU each): clients
    for a real portal now share one; a client with a transport of its own makes none."""
    import ssl

    from b24kit.client import core

    made: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    core._tls_context.cache_clear()
    auth = WebhookAuth(parse_webhook("https://example.bitrix24.ru/rest/1/abcdefgh/"))

    async def go() -> None:
        for _ in range(3):
            await B24Client(auth)._http.aclose()
        box = Sandbox(limits="off")
        await B24Client(auth, transport=box.transport())._http.aclose()
        box.close()

    asyncio.run(go())
    core._tls_context.cache_clear()
    assert len(made) == 1
