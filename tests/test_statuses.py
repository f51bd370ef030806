"""crm.status.* against API notes §6."""

from __future__ import annotations

from b24kit.sandbox import Sandbox
from tests.conftest import call_error


def _stage(api: Sandbox, entity: str, code: str) -> dict:  # type: ignore[type-arg]
    rows = api.call("crm.status.list", {"filter": {"ENTITY_ID": entity, "STATUS_ID": code}})
    assert rows, f"{code} exists in {entity}"
    return dict(rows[0])


def test_default_pipeline_stages(api: Sandbox) -> None:
    rows = api.call("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})
    got = [
        (r["STATUS_ID"], r["NAME"], r["SORT"], r["COLOR"], r["SEMANTICS"], r["SYSTEM"])
        for r in rows
    ]
    assert got == [
        ("NEW", "New", "10", "#39A8EF", None, "Y"),
        ("PREPARATION", "Document preparation", "20", "#2FC6F6", None, "N"),
        ("PREPAYMENT_INVOICE", "Prepayment invoice", "30", "#55D0E0", None, "N"),
        ("EXECUTING", "In progress", "40", "#47E4C2", None, "N"),
        ("FINAL_INVOICE", "Final invoice", "50", "#FFA900", None, "N"),
        ("WON", "Deal successful", "60", "#7BD500", "S", "Y"),
        ("LOSE", "Deal failed", "70", "#FF5752", "F", "Y"),
        ("APOLOGY", "Analyze failure", "80", "#FF5752", "F", "N"),
    ], "§6.4: the general pipeline"
    assert all(r["CATEGORY_ID"] is None for r in rows), "§6.3: CATEGORY_ID null for DEAL_STAGE"
    assert rows[-1]["EXTRA"] == {"SEMANTICS": "apology", "COLOR": "#FF5752"}, "§6.3: EXTRA"
    assert rows[0]["NAME_INIT"] == "New" and rows[1]["NAME_INIT"] == "", "§6.3: NAME_INIT"


def test_add_prefixes_and_keeps_prefixed_ids(api: Sandbox) -> None:
    cid = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "L"}})["category"][
        "id"
    ]
    entity = f"DEAL_STAGE_{cid}"
    new_id = api.call(
        "crm.status.add",
        {"fields": {"ENTITY_ID": entity, "STATUS_ID": "ESTIMATE", "NAME": "Оценить", "SORT": 15}},
    )
    assert isinstance(new_id, int), "§6: add returns the numeric row id"
    row = api.call("crm.status.get", {"id": new_id})
    assert row["STATUS_ID"] == f"C{cid}:ESTIMATE", "§6.2: C{n}: is added"
    assert row["SYSTEM"] == "N" and row["SEMANTICS"] is None, "§6.3: add makes non-system rows"
    assert row["EXTRA"]["SEMANTICS"] == "process"
    api.call(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": entity,
                "STATUS_ID": f"C{cid}:APPROVAL",
                "NAME": "Согласование",
                "SORT": 16,
            }
        },
    )
    assert _stage(api, entity, f"C{cid}:APPROVAL")["NAME"] == "Согласование", (
        "§6.2: an already prefixed id is kept as is"
    )
    api.call(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": entity,
                "STATUS_ID": "A_VERY_LONG_STAGE_CODE_NAME",
                "NAME": "x",
                "SORT": 17,
            }
        },
    )
    codes = [r["STATUS_ID"] for r in api.call("crm.status.list", {"filter": {"ENTITY_ID": entity}})]
    assert f"C{cid}:A_VERY_LONG_STAGE_CODE_NAME"[:21] in codes, "§6.2: cut to 21 characters"


def test_spa_stage_prefix(api: Sandbox) -> None:
    etid = api.call("crm.type.add", {"fields": {"title": "T", "isStagesEnabled": "Y"}})["type"][
        "entityTypeId"
    ]
    cid = api.call("crm.category.list", {"entityTypeId": etid})["categories"][0]["id"]
    entity = f"DYNAMIC_{etid}_STAGE_{cid}"
    sid = api.call(
        "crm.status.add",
        {"fields": {"ENTITY_ID": entity, "STATUS_ID": "CHECK", "NAME": "Check", "SORT": 25}},
    )
    assert api.call("crm.status.get", {"id": sid})["STATUS_ID"] == f"DT{etid}_{cid}:CHECK", (
        "§6.2: DT{etid}_{cat}: prefix"
    )


def test_add_errors(api: Sandbox) -> None:
    err = call_error(api, "crm.status.add", {"fields": {}})
    assert err.description == (
        "The field ENTITY_ID is required. The field STATUS_ID is required. "
        "The field Title is required."
    ), "§2.2: all missing fields at once"
    err = call_error(
        api,
        "crm.status.add",
        {"fields": {"ENTITY_ID": "DEAL_STAGE_99", "STATUS_ID": "X", "NAME": "x"}},
    )
    assert err.description == "Specified entity type is not supported.", "§2.2: unknown entity"
    err = call_error(
        api,
        "crm.status.add",
        {"fields": {"ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "NEW", "NAME": "x"}},
    )
    assert (err.code, err.description) == ("ERROR_CORE", "The specified status ID already exists.")
    err = call_error(
        api,
        "crm.status.add",
        {"fields": {"ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "LATE", "NAME": "x", "SORT": 65}},
    )
    assert err.description.startswith("Cannot create more stages after the final stage"), (
        "§6.6: no process stage after WON"
    )
    err = call_error(
        api,
        "crm.status.add",
        {"fields": {"ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "ОЦЕНКА", "NAME": "x"}},
    )
    assert err.description == "Error on creating status.", "§6.2: Latin letters, digits, - and _"
    err = call_error(
        api,
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": "DEAL_STAGE",
                "STATUS_ID": "WIN2",
                "NAME": "x",
                "SEMANTICS": "S",
                "SORT": 55,
            }
        },
    )
    assert err.description == "Error on creating status.", "§6.6: exactly one success stage"


def test_failure_stage_after_won_is_allowed(api: Sandbox) -> None:
    sid = api.call(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": "DEAL_STAGE",
                "STATUS_ID": "NOPE",
                "NAME": "Отказ",
                "SEMANTICS": "F",
                "SORT": 90,
            }
        },
    )
    row = api.call("crm.status.get", {"id": sid})
    assert (row["SEMANTICS"], row["EXTRA"]["SEMANTICS"]) == ("F", "failure"), "§6.3: failure"


def test_update_only_name_sort_color(api: Sandbox) -> None:
    row = _stage(api, "DEAL_STAGE", "PREPARATION")
    api.call(
        "crm.status.update",
        {
            "id": row["ID"],
            "fields": {
                "NAME": "Подготовка",
                "SORT": 25,
                "COLOR": "#123456",
                "SEMANTICS": "F",
                "STATUS_ID": "OTHER",
            },
        },
    )
    after = api.call("crm.status.get", {"id": row["ID"]})
    assert (after["NAME"], after["SORT"], after["COLOR"]) == ("Подготовка", "25", "#123456")
    assert after["SEMANTICS"] is None and after["STATUS_ID"] == "PREPARATION", (
        "§6.3: SEMANTICS and STATUS_ID are immutable"
    )


def test_delete_rules(api: Sandbox) -> None:
    new = _stage(api, "DEAL_STAGE", "NEW")
    err = call_error(api, "crm.status.delete", {"id": new["ID"]})
    assert "FORCED" in err.description, "§6.6: a system stage needs FORCED=Y"
    prep = _stage(api, "DEAL_STAGE", "PREPARATION")
    api.call("crm.deal.add", {"fields": {"STAGE_ID": "PREPARATION"}})
    err = call_error(api, "crm.status.delete", {"id": prep["ID"]})
    assert err.description == "There are active items in this status.", "§6.6: stage with items"
    execu = _stage(api, "DEAL_STAGE", "EXECUTING")
    assert api.call("crm.status.delete", {"id": execu["ID"]}) is True
    assert api.call("crm.status.delete", {"id": new["ID"], "params": {"FORCED": "Y"}}) is True, (
        "§6.6: FORCED=Y deletes a system stage"
    )
    err = call_error(api, "crm.status.get", {"id": execu["ID"]})
    assert err.description == "Status is not found."


def test_entity_types_and_items(api: Sandbox) -> None:
    cid = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "L"}})["category"][
        "id"
    ]
    types = {t["ID"]: t for t in api.call("crm.status.entity.types")}
    assert types[f"DEAL_STAGE_{cid}"]["PREFIX"] == f"C{cid}", "§6.5: PREFIX"
    assert types[f"DEAL_STAGE_{cid}"]["PARENT_ID"] == "DEAL_STAGE", "§6.5: PARENT_ID"
    assert "SOURCE" in types, "dictionaries are listed too"
    items = api.call("crm.status.entity.items", {"entityId": "DEAL_STAGE"})
    assert items[0] == {"NAME": "New", "SORT": 10, "STATUS_ID": "NEW"}
