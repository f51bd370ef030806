"""crm.category.* and crm.status.* answer as their docs pages show (keys, types, errors).

Pages: /work/ref/b24restdocs/api-reference/crm/universal/category/*.md and
api-reference/crm/status/*.md; recorded answers: fast_bitrix24 tests/real_responses.
"""

from __future__ import annotations

from typing import Any

from b24kit.sandbox import Sandbox
from tests.conftest import Rest, call_error

CAT = "crm/universal/category/"
ST = "crm/status/"


def _spa(api: Sandbox, title: str = "Equipment Procurement") -> int:
    fields = {"title": title, "isCategoriesEnabled": "Y", "isStagesEnabled": "Y"}
    return int(api.call("crm.type.add", {"fields": fields})["type"]["entityTypeId"])


def _deal_category(api: Sandbox, name: str) -> int:
    cat = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": name}})
    return int(cat["category"]["id"])


def _envelope(box: Sandbox, method: str, params: dict[str, Any]) -> dict[str, Any]:
    rest = Rest(None, box, "http://sandbox.local", "inprocess")
    response = rest.raw(method, params)
    assert response.status_code == 200, f"{method}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------ crm.category.*


def test_category_fields_for_deals(api: Sandbox) -> None:
    fields = api.call("crm.category.fields", {"entityTypeId": 2})["fields"]
    page = CAT + "crm-category-fields.md"
    assert list(fields) == [
        "id",
        "name",
        "sort",
        "entityTypeId",
        "isDefault",
        "originId",
        "originatorId",
    ], f"{page}: the deal example lists these seven fields"
    assert fields["isDefault"]["type"] == "boolean", f"{page}: isDefault is typed boolean"
    assert fields["isDefault"]["isReadOnly"] is True, f"{page}: isDefault is read-only"
    assert fields["entityTypeId"] == {
        "type": "integer",
        "isRequired": True,
        "isReadOnly": True,
        "isImmutable": False,
        "isMultiple": False,
        "isDynamic": False,
        "title": "ENTITY_TYPE_ID",
        "upperName": "ENTITY_TYPE_ID",
    }, f"{page}: entityTypeId description as in the example"
    assert (fields["name"]["title"], fields["name"]["upperName"]) == ("NAME", "NAME"), (
        f"{page}: titles are the UPPER_CASE names, with upperName"
    )
    assert fields["name"]["isRequired"] is False, f"{page}: name isRequired false in the example"


def test_category_fields_for_spas(api: Sandbox) -> None:
    etid = _spa(api)
    fields = api.call("crm.category.fields", {"entityTypeId": etid})["fields"]
    page = CAT + "crm-category-fields.md"
    assert "isSystem" in fields and "code" in fields, f"{page}: isSystem, code exist only in SPAs"
    assert "originId" not in fields, f"{page}: originId exists only in deals"


def test_category_list_envelope(rest: Rest) -> None:
    _deal_category(rest.sandbox, "Lead Route")
    body = rest.raw("crm.category.list", {"entityTypeId": 2}).json()
    page = CAT + "crm-category-list.md"
    cats = body["result"]["categories"]
    assert body["total"] == 2 and "next" not in body, f"{page}: total at the top, no next"
    general = next(c for c in cats if c["id"] == 0)
    assert general == {
        "id": 0,
        "name": "General",
        "sort": 300,
        "entityTypeId": 2,
        "isDefault": "Y",
    }, f"{page}: the General funnel, without originId/originatorId"
    other = next(c for c in cats if c["id"] != 0)
    assert (other["originId"], other["originatorId"], other["isDefault"]) == ("", "", "N"), (
        f"{page}: other deal funnels carry originId/originatorId '' and isDefault 'N'"
    )


def test_category_list_is_one_answer_past_fifty(api: Sandbox) -> None:
    for i in range(51):
        _deal_category(api, f"Portal VR {i}")
    body = _envelope(api, "crm.category.list", {"entityTypeId": 2})
    src = "fast_bitrix24 real_responses/crm_category_list.py"
    assert len(body["result"]["categories"]) == 52, f"{src}: 52 funnels come in one answer"
    assert body["total"] == 52 and "next" not in body, f"{src}: total 52 and no next key"


def test_category_missing_is_element_not_found(rest: Rest) -> None:
    for method, page in (
        ("crm.category.get", "crm-category-get.md"),
        ("crm.category.update", "crm-category-update.md"),
        ("crm.category.delete", "crm-category-delete.md"),
    ):
        params: dict[str, Any] = {"entityTypeId": 2, "id": 999, "fields": {"name": "x"}}
        status, code, text = rest.error(method, params)
        assert (status, code, text) == (400, "NOT_FOUND", "Element not found"), (
            f"{CAT}{page}: NOT_FOUND / Element not found, HTTP 400"
        )


def test_category_delete_returns_null(rest: Rest) -> None:
    cid = _deal_category(rest.sandbox, "Temporary")
    body = rest.raw("crm.category.delete", {"entityTypeId": 2, "id": cid}).json()
    assert "result" in body and body["result"] is None, (
        f"{CAT}crm-category-delete.md: result is null"
    )


def test_category_add_rules(api: Sandbox) -> None:
    page = CAT + "crm-category-add.md"
    err = call_error(api, "crm.category.add", {"entityTypeId": 2, "fields": {"sort": 10}})
    assert (err.code, err.description) == (0, "Field 'NAME' is required"), f"{page}: name*"
    err = call_error(
        api, "crm.category.add", {"entityTypeId": 3, "fields": {"name": "VIP", "isDefault": "Y"}}
    )
    assert (err.code, err.description) == (
        0,
        "Default client category does not support updating default state",
    ), f"{page}: no default funnel for contacts"
    etid = _spa(api)
    cat = api.call(
        "crm.category.add",
        {
            "entityTypeId": etid,
            "fields": {"name": "New Default Funnel", "sort": 50, "isDefault": "Y"},
        },
    )["category"]
    assert (cat["name"], cat["sort"], cat["entityTypeId"], cat["isDefault"]) == (
        "New Default Funnel",
        50,
        etid,
        "Y",
    ), f"{page}: the example's category: ints as numbers, isDefault 'Y'"


def test_category_unsupported_type(api: Sandbox) -> None:
    err = call_error(api, "crm.category.list", {"entityTypeId": 1})
    assert (err.code, err.status) == ("ENTITY_TYPE_NOT_SUPPORTED", 400), (
        f"{CAT}crm-category-list.md: leads have no funnels"
    )


def test_category_system_funnel_cannot_be_deleted(api: Sandbox) -> None:
    etid = _spa(api)
    cid = api.call("crm.category.add", {"entityTypeId": etid, "fields": {"name": "Sys"}})[
        "category"
    ]["id"]
    with api.db.transaction():
        api.db.execute("UPDATE categories SET is_system = 'Y' WHERE id = ?", (cid,))
    err = call_error(api, "crm.category.delete", {"entityTypeId": etid, "id": cid})
    assert (err.code, err.description) == (
        "REMOVING_DISABLED",
        "Deletion of system category is prohibited",
    ), f"{CAT}crm-category-delete.md: a system funnel stays"


# -------------------------------------------------------------------- crm.status.*


def test_status_fields(api: Sandbox) -> None:
    fields = api.call("crm.status.fields")
    page = ST + "crm-status-fields.md"
    assert list(fields) == [
        "ID",
        "ENTITY_ID",
        "STATUS_ID",
        "SORT",
        "NAME",
        "NAME_INIT",
        "SYSTEM",
        "CATEGORY_ID",
        "COLOR",
        "SEMANTICS",
        "EXTRA",
    ], f"{page}: the eleven fields, in the example's order"
    assert fields["SYSTEM"]["type"] == "char", f"{page}: SYSTEM is char"
    assert (fields["SEMANTICS"]["type"], fields["SEMANTICS"]["isImmutable"]) == ("char", True), (
        f"{page}: SEMANTICS is an immutable char"
    )
    assert fields["EXTRA"]["type"] == "crm_status_extra", f"{page}: EXTRA is crm_status_extra"
    titles = {k: v["title"] for k, v in fields.items()}
    assert (titles["ENTITY_ID"], titles["STATUS_ID"], titles["SORT"], titles["NAME_INIT"]) == (
        "Entity ID",
        "Status",
        "Sorting",
        "Default Name",
    ), f"{page}: titles as in the example"
    assert fields["NAME"]["isRequired"] and not fields["SORT"]["isRequired"], (
        f"{page}: NAME required, SORT not"
    )


def test_status_list_row_shape(rest: Rest) -> None:
    body = rest.raw("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}}).json()
    page = ST + "crm-status-list.md"
    assert body["total"] == 8 and "next" not in body, f"{page}: total 8, no next"
    new = body["result"][0]
    assert isinstance(new["ID"], str) and new["SORT"] == "10", f"{page}: ID and SORT are strings"
    assert new["CATEGORY_ID"] is None and new["SEMANTICS"] is None, (
        f"{page}: CATEGORY_ID and SEMANTICS null on DEAL_STAGE's NEW"
    )
    assert new["EXTRA"] == {"SEMANTICS": "process", "COLOR": "#39A8EF"}, f"{page}: EXTRA of NEW"


def _many_sources(box: Sandbox, count: int) -> None:
    for i in range(count):
        box.call(
            "crm.status.add",
            {"fields": {"ENTITY_ID": "SOURCE", "STATUS_ID": f"SRC_{i}", "NAME": f"Source {i}"}},
        )


def test_status_list_default_is_one_answer() -> None:
    box = Sandbox(limits="off")
    try:
        _many_sources(box, 55)
        body = _envelope(box, "crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}})
        rows = len(body["result"])
        assert rows == body["total"] > 50 and "next" not in body, (
            f"{ST}crm-status-list.md: the example's answer shows no paging (default reading)"
        )
    finally:
        box.close()


def test_status_list_pages_reading() -> None:
    box = Sandbox(limits="off", readings={"status-list-pages"})
    try:
        _many_sources(box, 55)
        flt = {"filter": {"ENTITY_ID": "SOURCE"}, "order": {"SORT": "ASC"}}
        first = _envelope(box, "crm.status.list", flt)
        total = first["total"]
        page = ST + "crm-status-list.md"
        assert total > 50, "more than 50 sources were made"
        assert (len(first["result"]), first["next"]) == (50, 50), (
            f"{page}: reading status-list-pages: 50 rows and next=50 ('max 50 records')"
        )
        second = _envelope(box, "crm.status.list", {**flt, "start": 50})
        assert len(second["result"]) == total - 50 and "next" not in second, (
            f"{page}: reading status-list-pages: the last page has no next"
        )
        ids = [r["ID"] for r in first["result"] + second["result"]]
        assert len(set(ids)) == total, f"{page}: reading status-list-pages: every row once"
    finally:
        box.close()


def test_status_get_update_delete_errors(rest: Rest) -> None:
    status, code, text = rest.error("crm.status.get", {"id": 99999})
    assert (status, text) == (400, "Status is not found."), (
        f"{ST}crm-status-get.md: Status is not found., HTTP 400"
    )
    assert code == "", f"{ST}crm-status-add.md: old-style errors carry an empty code"
    status, code, text = rest.error("crm.status.update", {"id": 0, "fields": {"NAME": "x"}})
    assert (status, text) == (400, "Invalid identifier."), f"{ST}crm-status-update.md: bad id"
    status, code, text = rest.error("crm.status.delete", {"id": 0})
    assert (status, text) == (400, "Invalid identifier."), f"{ST}crm-status-delete.md: bad id"


def test_status_update_and_delete_return_true(api: Sandbox) -> None:
    sid = api.call(
        "crm.status.add", {"fields": {"ENTITY_ID": "SOURCE", "STATUS_ID": "FAIR", "NAME": "Fair"}}
    )
    assert isinstance(sid, int), f"{ST}crm-status-add.md: result is the new id, an integer"
    assert api.call("crm.status.update", {"id": sid, "fields": {"NAME": "Fair 2"}}) is True, (
        f"{ST}crm-status-update.md: result true"
    )
    assert api.call("crm.status.get", {"id": sid})["SORT"] == "10", (
        f"{ST}crm-status-add.md: SORT defaults to 10"
    )
    assert api.call("crm.status.delete", {"id": sid}) is True, f"{ST}crm-status-delete.md: true"


def test_status_delete_system_needs_forced(api: Sandbox) -> None:
    row = api.call("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "WON"}})[
        0
    ]
    err = call_error(api, "crm.status.delete", {"id": row["ID"]})
    assert err.description == (
        'CRM System Status can be deleted only if parameter FORCED is specified and equal to "Y".'
    ), f"{ST}crm-status-delete.md: the FORCED message"


def test_status_add_code_restrictions(api: Sandbox) -> None:
    page = ST + "crm-status-add.md"
    err = call_error(api, "crm.status.add", {"fields": "x"})
    assert (err.code, err.description) == ("", "Parameter 'fields' must be array."), (
        f"{page}: fields must be an object"
    )
    bad = {"ENTITY_ID": "STATUS", "STATUS_ID": "ОЦЕНКА", "NAME": "x"}
    err = call_error(api, "crm.status.add", {"fields": bad})
    assert err.description == "Error on creating status.", f"{page}: STATUS takes Latin only"
    long = {"ENTITY_ID": "STATUS", "STATUS_ID": "L" * 22, "NAME": "x"}
    err = call_error(api, "crm.status.add", {"fields": long})
    assert err.description == "Error on creating status.", f"{page}: STATUS max length 21"
    quote = {"ENTITY_ID": "QUOTE_STATUS", "STATUS_ID": "Q" * 22, "NAME": "x"}
    assert isinstance(api.call("crm.status.add", {"fields": quote}), int), (
        f"{page}: QUOTE_STATUS takes up to 22 characters"
    )
    free = {"ENTITY_ID": "SOURCE", "STATUS_ID": "свой источник", "NAME": "x"}
    assert isinstance(api.call("crm.status.add", {"fields": free}), int), (
        f"{page}: other directories take any characters"
    )


def test_status_entity_types(api: Sandbox) -> None:
    cid = _deal_category(api, "Newest")
    etid = _spa(api)
    types = {t["ID"]: t for t in api.call("crm.status.entity.types")}
    page = ST + "crm-status-entity-types.md"
    assert types["STATUS"] == {
        "ID": "STATUS",
        "NAME": "Lead stages",
        "SEMANTIC_INFO": {
            "START_FIELD": "NEW",
            "FINAL_SUCCESS_FIELD": "CONVERTED",
            "FINAL_UNSUCCESS_FIELD": "JUNK",
            "FINAL_SORT": 0,
        },
        "ENTITY_TYPE_ID": 1,
    }, f"{page}: the lead stages entry"
    assert types["DEAL_STAGE"] == {
        "ID": "DEAL_STAGE",
        "NAME": "General deal stages",
        "SEMANTIC_INFO": {
            "START_FIELD": "NEW",
            "FINAL_SUCCESS_FIELD": "WON",
            "FINAL_UNSUCCESS_FIELD": "LOSE",
            "FINAL_SORT": 0,
        },
        "FIELD_ATTRIBUTE_SCOPE": "",
        "ENTITY_TYPE_ID": 2,
        "CATEGORY_ID": 0,
    }, f"{page}: DEAL_STAGE has no PREFIX and no PARENT_ID, CATEGORY_ID 0"
    deal = types[f"DEAL_STAGE_{cid}"]
    assert (deal["NAME"], deal["PARENT_ID"], deal["PREFIX"], deal["CATEGORY_ID"]) == (
        "Newest deal stages",
        "DEAL_STAGE",
        f"C{cid}",
        str(cid),
    ), f"{page}: a deal funnel's entry; its CATEGORY_ID is a string"
    spa_cid = api.call("crm.category.list", {"entityTypeId": etid})["categories"][0]["id"]
    spa = types[f"DYNAMIC_{etid}_STAGE_{spa_cid}"]
    assert (spa["NAME"], spa["SEMANTIC_INFO"], spa["CATEGORY_ID"], spa["IS_DEFAULT_CATEGORY"]) == (
        "Equipment Procurement (General)",
        [],
        spa_cid,
        True,
    ), f"{page}: an SPA funnel's entry"
    assert types["HONORIFIC"]["NAME"] == "Inquiries", f"{page}: HONORIFIC is 'Inquiries'"
    assert {"QUOTE_STATUS", "CALL_LIST", "EMPLOYEES"} <= set(types), f"{page}: listed directories"


def test_status_entity_items(api: Sandbox) -> None:
    items = api.call("crm.status.entity.items", {"entityId": "DEAL_STAGE"})
    page = ST + "crm-status-entity-items.md"
    assert items[5] == {"NAME": "Deal successful", "SORT": 60, "STATUS_ID": "WON"}, (
        f"{page}: NAME, integer SORT, STATUS_ID"
    )
    err = call_error(api, "crm.status.entity.items", {})
    assert (err.code, err.description) == (
        "",
        "The parameter entityId is not defined or invalid.",
    ), f"{page}: entityId is required"
