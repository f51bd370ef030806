"""user.*, scope, methods, method.get, server.time."""

from __future__ import annotations

from tests.conftest import Rest


def test_user_current_and_get(rest: Rest) -> None:
    me = rest.ok("user.current")
    assert me["ID"] == "1" and me["ACTIVE"] is True, "the webhook's user"
    rest.sandbox.portal.add_user({"NAME": "Ольга", "LAST_NAME": "Логист"}, 17)
    users = rest.ok("user.get", {"filter": {"ID": 17}})
    assert [u["NAME"] for u in users] == ["Ольга"]


def test_scope_methods_and_method_get(rest: Rest) -> None:
    assert rest.ok("scope") == ["crm", "user", "userfieldconfig"], "the webhook's scopes"
    token = rest.sandbox.add_webhook(4, ("user",))
    url = f"{rest.base}/rest/4/{token}/"
    assert rest.raw("scope", url=url).json()["result"] == ["user"]
    assert rest.raw("scope", {"full": 1}, url=url).json()["result"] == [
        "crm",
        "user",
        "userfieldconfig",
    ], "full lists every scope"
    methods = rest.raw("methods", url=url).json()["result"]
    assert "user.current" in methods and "batch" in methods, "global and granted methods"
    assert "crm.deal.add" not in methods, "methods of missing scopes are hidden"
    info = rest.raw("method.get", {"name": "crm.deal.add"}, url=url).json()["result"]
    assert info == {"isExisting": True, "isAvailable": False}
    assert rest.ok("method.get", {"name": "crm.deal.add"}) == {
        "isExisting": True,
        "isAvailable": True,
    }
    assert rest.ok("method.get", {"name": "crm.nope"})["isExisting"] is False


def test_server_time(rest: Rest) -> None:
    assert rest.ok("server.time").endswith("+03:00"), "portal time zone offset"
