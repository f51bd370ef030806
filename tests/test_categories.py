"""crm.category.* against API notes §5 (pipelines) and §5.2 (stages made with them)."""

from __future__ import annotations

from b24kit.sandbox import Sandbox
from tests.conftest import call_error


def _spa(api: Sandbox, **flags: str) -> int:
    fields = {"title": "Contractors", "isCategoriesEnabled": "Y", "isStagesEnabled": "Y", **flags}
    return int(api.call("crm.type.add", {"fields": fields})["type"]["entityTypeId"])


def test_deal_default_pipeline_is_listed(api: Sandbox) -> None:
    cats = api.call("crm.category.list", {"entityTypeId": 2})["categories"]
    assert cats[0]["id"] == 0, "§5.1: the default deal funnel has id 0"
    assert cats[0]["isDefault"] == "Y", "§5.1: it is the default"
    assert "originId" not in cats[0], "§5.1: category 0 has no originId keys"


def test_deal_pipeline_gets_eight_prefixed_stages(api: Sandbox) -> None:
    cat = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Логистика"}})
    cid = cat["category"]["id"]
    assert cat["category"]["sort"] == 500, "§5.1: sort defaults to 500"
    assert cat["category"]["originId"] == "", "§5.1: deal funnels carry originId ''"
    stages = api.call("crm.status.list", {"filter": {"ENTITY_ID": f"DEAL_STAGE_{cid}"}})
    codes = [s["STATUS_ID"] for s in stages]
    assert codes[0] == f"C{cid}:NEW" and len(codes) == 8, "§5.2: 8 stages with the C{n}: prefix"
    assert [s["SEMANTICS"] for s in stages][-3:] == ["S", "F", "F"], "§5.2: WON, LOSE, APOLOGY"
    assert all(s["CATEGORY_ID"] == str(cid) for s in stages), "§6.3: CATEGORY_ID is set"


def test_long_stage_ids_truncate_to_21(api: Sandbox) -> None:
    for _ in range(10):
        cat = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "x"}})
    cid = cat["category"]["id"]
    assert cid >= 10
    codes = [
        s["STATUS_ID"]
        for s in api.call("crm.status.list", {"filter": {"ENTITY_ID": f"DEAL_STAGE_{cid}"}})
    ]
    assert f"C{cid}:PREPAYMENT_INVOIC" in codes, "§5.2/§6.2: deal stage ids are cut to 21 chars"


def test_spa_pipeline_gets_five_stages(api: Sandbox) -> None:
    etid = _spa(api)
    cat = api.call("crm.category.add", {"entityTypeId": etid, "fields": {"name": "Second"}})
    cid = cat["category"]["id"]
    assert cat["category"]["isSystem"] == "N", "§5.1: SPA funnels carry isSystem"
    stages = api.call("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_{etid}_STAGE_{cid}"}})
    assert [s["STATUS_ID"] for s in stages] == [
        f"DT{etid}_{cid}:{c}" for c in ("NEW", "PREPARATION", "CLIENT", "SUCCESS", "FAIL")
    ], "§5.2: five DT-prefixed stages"
    assert [s["SYSTEM"] for s in stages] == ["Y", "N", "N", "Y", "Y"], "§5.2: system flags"


def test_name_rules(api: Sandbox) -> None:
    err = call_error(api, "crm.category.add", {"entityTypeId": 2, "fields": {"name": "  "}})
    assert (err.code, err.description) == (0, "Field 'NAME' is required"), "§5.1: blank name"
    a = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Dup", "sort": -5}})
    b = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Dup"}})
    assert a["category"]["id"] != b["category"]["id"], "§5.1: duplicate names are allowed"
    assert a["category"]["sort"] == 0, "§5.1: negative sort becomes 0"


def test_update_and_get(api: Sandbox) -> None:
    cid = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "A"}})["category"][
        "id"
    ]
    api.call(
        "crm.category.update", {"entityTypeId": 2, "id": cid, "fields": {"name": "B", "sort": 70}}
    )
    got = api.call("crm.category.get", {"entityTypeId": 2, "id": cid})["category"]
    assert (got["name"], got["sort"]) == ("B", 70), "update changes name and sort"


def test_delete_rules(api: Sandbox) -> None:
    err = call_error(api, "crm.category.delete", {"entityTypeId": 2, "id": 0})
    assert err.description == "Default deal category cannot be deleted", "§5.1: default stays"
    cid = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Busy"}})["category"][
        "id"
    ]
    api.call("crm.deal.add", {"fields": {"CATEGORY_ID": cid}})
    err = call_error(api, "crm.category.delete", {"entityTypeId": 2, "id": cid})
    assert err.description == "Deals related to the funnel Busy found", "§5.1: no delete with deals"
    empty = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "E"}})["category"][
        "id"
    ]
    assert api.call("crm.category.delete", {"entityTypeId": 2, "id": empty}) is None
    assert api.call("crm.status.list", {"filter": {"ENTITY_ID": f"DEAL_STAGE_{empty}"}}) == [], (
        "its stages go with it"
    )


def test_spa_default_moves_and_cannot_be_deleted(api: Sandbox) -> None:
    etid = _spa(api)
    first = api.call("crm.category.list", {"entityTypeId": etid})["categories"][0]
    assert first["isDefault"] == "Y" and first["id"] > 0, "§5.1: SPA default has a real id"
    err = call_error(api, "crm.category.delete", {"entityTypeId": etid, "id": first["id"]})
    assert (err.code, err.description) == ("BX_ERROR", "This funnel is the default funnel")
    second = api.call(
        "crm.category.add", {"entityTypeId": etid, "fields": {"name": "B", "isDefault": "Y"}}
    )["category"]
    cats = {
        c["id"]: c["isDefault"]
        for c in api.call("crm.category.list", {"entityTypeId": etid})["categories"]
    }
    assert cats == {first["id"]: "N", second["id"]: "Y"}, "§5.1: isDefault Y moves the flag"


def test_unsupported_and_unknown_types(api: Sandbox) -> None:
    err = call_error(api, "crm.category.list", {"entityTypeId": 1})
    assert err.code == "ENTITY_TYPE_NOT_SUPPORTED", "§5.1: leads have no categories"
    err = call_error(api, "crm.category.list", {"entityTypeId": 1038})
    assert (err.code, err.description) == ("NOT_FOUND", "Smart process not found")
    etid = _spa(api, isCategoriesEnabled="N")
    err = call_error(api, "crm.category.add", {"entityTypeId": etid, "fields": {"name": "x"}})
    assert err.code == "ENTITY_TYPE_NOT_SUPPORTED", "§5.1: categories disabled on the SPA"
