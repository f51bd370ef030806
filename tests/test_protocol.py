"""The wire protocol: envelope, encodings, paging, filters, errors. Runs over HTTP and in-process."""

from __future__ import annotations

from typing import Any

import pytest

from b24kit.sandbox import Sandbox
from tests.conftest import Rest

UGLY = "Трактор & Co = ? # 100% + \"кавычки\" 'single'\nline2 🚜"


def test_envelope_shape(rest: Rest) -> None:
    body = rest.raw("user.current").json()
    assert body["result"]["ID"] == "1", "result carries the webhook's user"
    for key in (
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
        "operating",
        "operating_reset_at",
    ):
        assert key in body["time"], f"time.{key} is present"
    assert "total" not in body and "next" not in body, "no paging keys outside lists"


@pytest.mark.parametrize("encoding", ["json", "form", "get"])
def test_every_encoding_reaches_the_method(rest: Rest, encoding: str) -> None:
    deal_id = rest.ok("crm.deal.add", {"fields": {"TITLE": UGLY, "OPPORTUNITY": 1500.5}}, encoding)
    assert isinstance(deal_id, int), "crm.deal.add returns the bare id"
    got = rest.ok("crm.deal.get", {"id": deal_id}, encoding)
    assert got["TITLE"] == UGLY, f"title round-trips unchanged through {encoding}"
    assert got["OPPORTUNITY"] == "1500.50", "old-style numbers come back as strings"


def test_method_suffix_and_case(rest: Rest) -> None:
    assert rest.ok("user.current.json")["ID"] == "1", ".json suffix is accepted"
    assert rest.ok("USER.Current")["ID"] == "1", "method names are case-insensitive"


def test_ugly_values_round_trip_through_batch(rest: Rest) -> None:
    from b24kit.encoding import build_query

    cmd = {
        "add": "crm.deal.add?" + build_query({"fields": {"TITLE": UGLY}}),
        "get": "crm.deal.get?id=$result[add]",
    }
    for encoding in ("json", "form"):
        result = rest.ok("batch", {"halt": 1, "cmd": cmd}, encoding)
        assert result["result"]["get"]["TITLE"] == UGLY, f"batch over {encoding} keeps the title"


def _seed_deals(sandbox: Sandbox, count: int) -> None:
    with sandbox.db.transaction():
        for i in range(count):
            sandbox.portal.add_item(2, {"TITLE": f"Deal {i}", "OPPORTUNITY": i}, 1, "old")


def test_paging_with_count_over_1000_items(rest: Rest) -> None:
    _seed_deals(rest.sandbox, 1234)
    seen: list[int] = []
    start = 0
    while True:
        body = rest.raw(
            "crm.deal.list", {"order": {"ID": "ASC"}, "select": ["ID"], "start": start}
        ).json()
        assert body["total"] == 1234, "total counts every matching row"
        seen += [int(r["ID"]) for r in body["result"]]
        if "next" not in body:
            assert len(body["result"]) == 1234 % 50, "the last page holds the remainder"
            break
        assert body["next"] == start + 50, "next is start + 50"
        assert len(body["result"]) == 50, "a full page has 50 rows"
        start = body["next"]
    assert seen == list(range(1, 1235)), "every row exactly once, in order"


def test_paging_without_count_over_1000_items(rest: Rest) -> None:
    _seed_deals(rest.sandbox, 1234)
    seen: list[int] = []
    last = 0
    while True:
        body = rest.raw(
            "crm.item.list",
            {
                "entityTypeId": 2,
                "order": {"id": "ASC"},
                "filter": {">id": last},
                "select": ["id"],
                "start": -1,
            },
        ).json()
        assert body["total"] == 0, "start=-1 skips the count: total is 0"
        assert "next" not in body, "start=-1 never gives next"
        items = body["result"]["items"]
        seen += [i["id"] for i in items]
        if len(items) < 50:
            break
        last = items[-1]["id"]
    assert seen == list(range(1, 1235)), "keyset paging reads every row exactly once"


def test_empty_list(rest: Rest) -> None:
    body = rest.raw("crm.deal.list", {"filter": {"TITLE": "nothing"}}).json()
    assert body["result"] == [] and body["total"] == 0 and "next" not in body
    body = rest.raw("crm.item.list", {"entityTypeId": 2}).json()
    assert body["result"] == {"items": []}, "crm.item.list wraps rows in items"


FILTER_CASES: list[tuple[dict[str, Any], list[int]]] = [
    ({"OPPORTUNITY": 20}, [3]),
    ({"=OPPORTUNITY": 20}, [3]),
    ({"!OPPORTUNITY": 20}, [1, 2, 4, 5]),
    ({"!=OPPORTUNITY": 20}, [1, 2, 4, 5]),
    ({">OPPORTUNITY": 20}, [4, 5]),
    ({">=OPPORTUNITY": 20}, [3, 4, 5]),
    ({"<OPPORTUNITY": 20}, [1, 2]),
    ({"<=OPPORTUNITY": 20}, [1, 2, 3]),
    ({"%TITLE": "тРАКТ"}, [1, 4]),
    ({"!%TITLE": "тракт"}, [2, 3, 5]),
    ({"=%TITLE": "Экск%"}, [2]),
    ({"%=TITLE": "%ор"}, [1, 2]),
    ({"!=%TITLE": "%ор"}, [3, 4, 5]),
    ({"!%=TITLE": "Кр%"}, [1, 2, 4, 5]),
    ({"@ID": [2, 4]}, [2, 4]),
    ({"!@ID": [2, 4]}, [1, 3, 5]),
    ({"ID": [1, 5]}, [1, 5]),
    ({">=OPPORTUNITY": 10, "<OPPORTUNITY": 40}, [2, 3, 4]),
    ({"STAGE_ID": "WON"}, [5]),
    ({"CLOSED": "Y"}, [5]),
    ({">DATE_CREATE": "01.01.2020"}, [1, 2, 3, 4, 5]),
]


@pytest.mark.parametrize(("flt", "expected"), FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
def test_filter_operators(rest: Rest, flt: dict[str, Any], expected: list[int]) -> None:
    for title, amount, stage in [
        ("Трактор", 0, "NEW"),
        ("Экскаватор", 10, "NEW"),
        ("Кран", 20, "NEW"),
        ("Полуприцеп для трактора", 30, "NEW"),
        ("Каток", 40, "WON"),
    ]:
        rest.sandbox.call(
            "crm.deal.add", {"fields": {"TITLE": title, "OPPORTUNITY": amount, "STAGE_ID": stage}}
        )
    for encoding in ("json", "form"):
        rows = rest.ok(
            "crm.deal.list", {"filter": flt, "order": {"ID": "ASC"}, "select": ["ID"]}, encoding
        )
        assert [int(r["ID"]) for r in rows] == expected, f"{flt} over {encoding}"


def test_new_style_filter_nesting_and_order(rest: Rest) -> None:
    for title, amount in [("a", 5), ("b", 50), ("c", 500)]:
        rest.sandbox.call("crm.deal.add", {"fields": {"TITLE": title, "OPPORTUNITY": amount}})
    items = rest.ok(
        "crm.item.list",
        {
            "entityTypeId": 2,
            "order": {"opportunity": "DESC"},
            "select": ["id", "title"],
            "filter": {"0": {"logic": "OR", "0": {"title": "a"}, "1": {">opportunity": 100}}},
        },
    )["items"]
    assert [i["title"] for i in items] == ["c", "a"], "OR group and DESC order apply"


def test_select_star_and_uf(rest: Rest) -> None:
    rest.sandbox.call(
        "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "NOTE", "USER_TYPE_ID": "string"}}
    )
    rest.sandbox.call("crm.deal.add", {"fields": {"TITLE": "x", "UF_CRM_NOTE": "hi"}})
    star = rest.ok("crm.deal.list", {"select": ["*"]})[0]
    assert "TITLE" in star and "UF_CRM_NOTE" not in star, "* gives system fields only"
    both = rest.ok("crm.deal.list", {"select": ["*", "UF_*"]})[0]
    assert both["UF_CRM_NOTE"] == "hi", "UF_* adds user fields"
    narrow = rest.ok("crm.deal.list", {"select": ["TITLE"]})[0]
    assert set(narrow) == {"ID", "TITLE"}, "an explicit select returns those fields and ID"


# ------------------------------------------------------------------ errors
def test_wrong_token_is_401(rest: Rest) -> None:
    bad = rest.hook.replace(rest.sandbox.token, "wrongtoken123456")
    response = rest.raw("user.current", url=bad)
    assert response.status_code == 401
    assert response.json()["error"] == "INVALID_CREDENTIALS"


def test_wrong_user_for_token_is_401(rest: Rest) -> None:
    bad = rest.hook.replace("/rest/1/", "/rest/7/")
    assert rest.raw("user.current", url=bad).status_code == 401


def test_unknown_method_is_404(rest: Rest) -> None:
    status, code, text = rest.error("crm.deal.frobnicate")
    assert (status, code, text) == (404, "ERROR_METHOD_NOT_FOUND", "Method not found!")


def test_not_found_old_and_new(rest: Rest) -> None:
    assert rest.error("crm.deal.get", {"id": 999}) == (400, "", "Not found")
    assert rest.error("crm.item.get", {"entityTypeId": 2, "id": 999})[:2] == (400, "NOT_FOUND")


def test_bad_field_values(rest: Rest) -> None:
    status, code, text = rest.error("crm.deal.add", {"fields": {"CURRENCY_ID": "XXX"}})
    assert (status, code) == (400, "") and "Currency" in text
    status, code, _ = rest.error("crm.contact.add", {"fields": {"EMAIL": [{"VALUE": "no-at"}]}})
    assert (status, code) == (400, "ERROR_CORE"), "an invalid e-mail is refused"
    status, code, _ = rest.error(
        "crm.item.add", {"entityTypeId": 2, "fields": {"currencyId": "XXX"}}
    )
    assert (status, code) == (400, "CRM_FIELD_ERROR_VALUE_NOT_VALID")


def test_missing_required_params(rest: Rest) -> None:
    assert rest.error("crm.deal.add", {}) == (400, "", "Parameter 'fields' must be array.")
    assert rest.error("crm.deal.get", {}) == (400, "", "ID is not defined or invalid.")
    status, code, text = rest.error("crm.item.add", {"fields": {"title": "x"}})
    assert (status, code) == (400, 100) and "entityTypeId" in text
    assert rest.error("crm.status.add", {"fields": {"NAME": "x"}})[2].startswith(
        "The field ENTITY_ID is required."
    )


def test_scope_the_webhook_lacks_is_403(rest: Rest) -> None:
    token = rest.sandbox.add_webhook(5, ("user",))
    url = f"{rest.base}/rest/5/{token}/"
    assert rest.raw("user.current", url=url).status_code == 200, "granted scope works"
    response = rest.raw("crm.deal.list", url=url)
    assert response.status_code == 403, "_includes/system-errors.md: 403 insufficient_scope"
    assert response.json()["error"] == "insufficient_scope"


def test_oauth_auth_errors_and_refresh(rest: Rest) -> None:
    box = rest.sandbox
    box.register_app("app.1", "secret")
    tokens = box.issue_tokens("app.1", expires_in=3600)
    ok = rest.raw("user.current", {"auth": tokens["access_token"]}, url=f"{rest.base}/rest/")
    assert ok.status_code == 200 and ok.json()["result"]["ID"] == "1", "OAuth auth param works"
    missing = rest.raw("user.current", url=f"{rest.base}/rest/")
    assert (missing.status_code, missing.json()["error"]) == (401, "NO_AUTH_FOUND")
    garbage = rest.raw("user.current", {"auth": "nope"}, url=f"{rest.base}/rest/")
    assert (garbage.status_code, garbage.json()["error"]) == (401, "invalid_token")
    old = box.issue_tokens("app.1", expires_in=-1)
    expired = rest.raw("user.current", {"auth": old["access_token"]}, url=f"{rest.base}/rest/")
    assert (expired.status_code, expired.json()["error"]) == (401, "expired_token")
    refreshed = rest.raw(
        "",
        {
            "grant_type": "refresh_token",
            "client_id": "app.1",
            "client_secret": "secret",
            "refresh_token": old["refresh_token"],
        },
        encoding="get",
        url=f"{rest.base}/oauth/token/",
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert (
        rest.raw(
            "user.current", {"auth": new["access_token"]}, url=f"{rest.base}/rest/"
        ).status_code
        == 200
    ), "a refreshed token works"
    again = rest.raw(
        "",
        {
            "grant_type": "refresh_token",
            "client_id": "app.1",
            "client_secret": "secret",
            "refresh_token": old["refresh_token"],
        },
        encoding="get",
        url=f"{rest.base}/oauth/token/",
    )
    assert again.json()["error"] == "invalid_grant", "a used refresh token is spent"


def test_garbage_json_body(rest: Rest) -> None:
    response = rest._send(
        "POST",
        rest.hook + "crm.deal.add",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error_description"] == "Parameter 'fields' must be array."


def test_asgi_app_in_process() -> None:
    """The Sandbox object is an ASGI app: httpx.ASGITransport drives it with no server."""
    import asyncio

    import httpx

    from b24kit.sandbox.app import ConnectionDropped

    box = Sandbox(limits="off")
    hook = box.webhook_url("http://asgi.local")

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=box)) as client:
            made = await client.post(hook + "crm.deal.add", data={"fields[TITLE]": UGLY})
            assert made.status_code == 200
            got = await client.get(hook + "crm.deal.get", params={"id": made.json()["result"]})
            assert got.json()["result"]["TITLE"] == UGLY, "form in, query out, through ASGI"
            missing = await client.post(hook + "crm.nope")
            assert missing.status_code == 404

    asyncio.run(go())
    box.faults = type(box.faults).parse("lost=1")

    async def lost() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=box)) as client:
            with pytest.raises(ConnectionDropped):
                await client.post(hook + "crm.deal.add", json={"fields": {"TITLE": "x"}})

    asyncio.run(lost())
    assert box.portal.count_items(2) == 2, "the lost write committed"


def test_direct_calls_beside_a_served_sandbox_never_interleave_transactions() -> None:
    """Found by the sync benchmark: a direct call (a person editing in the portal) while
    the server's thread was in a transaction failed with "cannot start a transaction within
    a transaction"."""
    import threading

    from b24kit.sandbox import Sandbox

    box = Sandbox(limits="off")
    deal = int(box.call("crm.deal.add", {"fields": {"TITLE": "x"}}))
    errors: list[BaseException] = []

    def edit(tag: str) -> None:
        try:
            for i in range(300):
                box.call("crm.deal.update", {"id": deal, "fields": {"COMMENTS": f"{tag}{i}"}})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    import sys

    threads = [threading.Thread(target=edit, args=(t,)) for t in "ab"]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often, as a busy server's would
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
