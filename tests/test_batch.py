"""batch: references, halt, the 50-command cap, result shapes (rest module semantics)."""

from __future__ import annotations

from b24kit.encoding import build_query
from tests.conftest import Rest


def q(method: str, params: dict) -> str:  # type: ignore[type-arg]
    return f"{method}?{build_query(params)}"


def test_parent_child_in_one_batch(rest: Rest) -> None:
    rest.sandbox.call(
        "crm.deal.userfield.add",
        {"fields": {"FIELD_NAME": "PARENT", "USER_TYPE_ID": "crm", "SETTINGS": {"DEAL": "Y"}}},
    )
    result = rest.ok(
        "batch",
        {
            "halt": 1,
            "cmd": {
                "parent": q("crm.deal.add", {"fields": {"TITLE": "Parent"}}),
                "child": q(
                    "crm.deal.add",
                    {
                        "fields": {
                            "TITLE": "Child of $result[parent]",
                            "UF_CRM_PARENT": "D_$result[parent]",
                        }
                    },
                ),
                "read": "crm.deal.get?id=$result[child]",
            },
        },
    )
    parent, child = result["result"]["parent"], result["result"]["child"]
    assert result["result_error"] == [], "no errors serialise as [] like PHP"
    assert result["result"]["read"]["TITLE"] == f"Child of {parent}", "reference inside a string"
    assert result["result"]["read"]["UF_CRM_PARENT"] == f"D_{parent}", "reference with a prefix"
    assert child == parent + 1


def test_deep_references_and_other_roots(rest: Rest) -> None:
    for i in range(60):
        rest.sandbox.call("crm.deal.add", {"fields": {"TITLE": f"d{i}"}})
    result = rest.ok(
        "batch",
        {
            "cmd": {
                "page1": q(
                    "crm.item.list",
                    {"entityTypeId": 2, "order": {"id": "ASC"}, "select": ["id"], "start": -1},
                ),
                "page2": q(
                    "crm.item.list",
                    {"entityTypeId": 2, "order": {"id": "ASC"}, "select": ["id"], "start": -1},
                )
                + "&filter[>id]=$result[page1][items][49][id]",
                "counted": q("crm.deal.list", {"select": ["ID"]}),
                "by_next": "crm.deal.list?select[]=ID&start=$next[counted]",
                "echo_total": "crm.deal.list?select[]=TITLE&filter[TITLE]=d$total[counted]",
            }
        },
    )
    r = result["result"]
    assert [i["id"] for i in r["page2"]["items"]] == list(range(51, 61)), "keyset page via ref"
    assert result["result_total"] == {
        "page1": 0,
        "page2": 0,
        "counted": 60,
        "by_next": 60,
        "echo_total": 0,
    }, "start=-1 pages report total 0"
    assert result["result_next"] == {"counted": 50}, "next only where more rows exist"
    assert [int(x["ID"]) for x in r["by_next"]] == list(range(51, 61)), "$next[...] works"
    assert r["echo_total"] == [], "$total[...] substitutes (d60 does not exist)"
    assert set(result["result_time"]) == set(r), "every command has its time"


def test_halt_stops_after_first_error(rest: Rest) -> None:
    cmd = {
        "a": "crm.deal.add?fields[TITLE]=a",
        "bad": "crm.deal.get?id=0",
        "c": "crm.deal.add?fields[TITLE]=c",
    }
    halted = rest.ok("batch", {"halt": 1, "cmd": cmd})
    assert list(halted["result"]) == ["a"] and list(halted["result_error"]) == ["bad"]
    assert halted["result_error"]["bad"] == {
        "error": "",
        "error_description": "ID is not defined or invalid.",
    }
    assert rest.sandbox.portal.count_items(2) == 1, "c never ran"
    go_on = rest.ok("batch", {"halt": 0, "cmd": cmd})
    assert set(go_on["result"]) == {"a", "c"}, "without halt the rest still runs"


def test_halt_is_php_truthy(rest: Rest) -> None:
    cmd = {"bad": "crm.deal.get?id=0", "c": "crm.deal.add?fields[TITLE]=c"}
    result = rest.ok("batch", {"halt": "false", "cmd": cmd}, encoding="form")
    assert "c" not in (result["result"] or {}), 'the string "false" halts, as in PHP'


def test_more_than_50_commands(rest: Rest) -> None:
    cmd = [f"crm.deal.add?fields[TITLE]=n{i}" for i in range(53)]
    result = rest.ok("batch", {"cmd": cmd})
    assert len(result["result"]) == 50, "the first 50 run; a list of commands gives a list"
    assert set(result["result_error"]) == {"50", "51", "52"}
    assert result["result_error"]["50"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert rest.sandbox.portal.count_items(2) == 50


def test_nested_batch_and_unknown_method(rest: Rest) -> None:
    result = rest.ok(
        "batch",
        {"cmd": {"inner": "batch?cmd[x]=user.current", "nope": "crm.nope", "me": "user.current"}},
    )
    assert result["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert result["result_error"]["nope"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert (
        result["result"] == {"me": result["result"]["me"]} and result["result"]["me"]["ID"] == "1"
    )


def test_batch_respects_scopes(rest: Rest) -> None:
    token = rest.sandbox.add_webhook(3, ("user",))
    response = rest.raw(
        "batch",
        {"cmd": {"me": "user.current", "deals": "crm.deal.list"}},
        url=f"{rest.base}/rest/3/{token}/",
    )
    body = response.json()["result"]
    assert body["result_error"]["deals"]["error"] == "insufficient_scope"
    assert body["result"]["me"]["ID"] == "3"


def test_all_failed_gives_empty_result_list(rest: Rest) -> None:
    result = rest.ok("batch", {"cmd": {"x": "crm.deal.get?id=0"}})
    assert result["result"] == [] and result["result_total"] == [] and result["result_next"] == []
