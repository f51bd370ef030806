"""crm.deal.*, crm.contact.*, crm.company.* and crm.item.* against API notes §9-§11."""

from __future__ import annotations

from b24kit.sandbox import Sandbox
from tests.conftest import call_error


def test_deal_defaults(api: Sandbox) -> None:
    deal_id = api.call("crm.deal.add", {"fields": {}})
    deal = api.call("crm.deal.get", {"id": deal_id})
    assert deal["TITLE"] == f"Deal #{deal_id}", "§10: TITLE defaults to Deal #id"
    assert deal["CATEGORY_ID"] == "0" and deal["STAGE_ID"] == "NEW", (
        "§9.3: category 0 and its first stage"
    )
    assert deal["OPPORTUNITY"] == "0.00" and deal["ASSIGNED_BY_ID"] == "1", "§10: defaults"
    assert deal["STAGE_SEMANTIC_ID"] == "P" and deal["CLOSED"] == "N"
    assert deal["CLOSEDATE"] > deal["BEGINDATE"], "§10: CLOSEDATE defaults to +7 days"
    assert "CONTACT_IDS" not in deal, "§10: CONTACT_IDS is write-only in the old API"


def test_stage_change_side_effects(api: Sandbox) -> None:
    deal_id = api.call("crm.deal.add", {"fields": {"TITLE": "t"}})
    api.call("crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "WON"}})
    deal = api.call("crm.deal.get", {"id": deal_id})
    assert (deal["STAGE_SEMANTIC_ID"], deal["CLOSED"]) == ("S", "Y"), "success closes the deal"
    api.call("crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "LOSE"}})
    assert api.call("crm.deal.get", {"id": deal_id})["STAGE_SEMANTIC_ID"] == "F"
    api.call("crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "EXECUTING"}})
    deal = api.call("crm.deal.get", {"id": deal_id})
    assert (deal["STAGE_SEMANTIC_ID"], deal["CLOSED"]) == ("P", "N"), "reopening"


def test_category_is_immutable_through_deal_update(api: Sandbox) -> None:
    cid = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "L"}})["category"][
        "id"
    ]
    deal_id = api.call("crm.deal.add", {"fields": {"TITLE": "t"}})
    assert (
        api.call(
            "crm.deal.update",
            {"id": deal_id, "fields": {"CATEGORY_ID": cid, "STAGE_ID": f"C{cid}:NEW"}},
        )
        is True
    ), "§10: still returns true"
    deal = api.call("crm.deal.get", {"id": deal_id})
    assert (deal["CATEGORY_ID"], deal["STAGE_ID"]) == ("0", "NEW"), (
        "§10: CATEGORY_ID immutable; a stage of another funnel changes nothing"
    )
    item = api.call(
        "crm.item.update", {"entityTypeId": 2, "id": deal_id, "fields": {"categoryId": cid}}
    )["item"]
    assert (item["categoryId"], item["stageId"]) == (cid, f"C{cid}:NEW"), (
        "§10: crm.item.update moves the deal to another funnel"
    )


def test_invalid_stage_on_add_and_update(api: Sandbox) -> None:
    cid = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "L"}})["category"][
        "id"
    ]
    deal_id = api.call("crm.deal.add", {"fields": {"CATEGORY_ID": cid, "STAGE_ID": "WON"}})
    assert api.call("crm.deal.get", {"id": deal_id})["STAGE_ID"] == f"C{cid}:WON", (
        "§2.4: on add a foreign stage maps to the same semantics in the pipeline"
    )
    api.call("crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "NO_SUCH"}})
    assert api.call("crm.deal.get", {"id": deal_id})["STAGE_ID"] == f"C{cid}:WON", (
        "§2.4: on update an unknown stage leaves the stage as it was"
    )
    err = call_error(api, "crm.deal.add", {"fields": {"CATEGORY_ID": 777}})
    assert err.code == "" and "777" in err.description, "an unknown pipeline is refused"


def test_origin_keys_and_unknown_fields(api: Sandbox) -> None:
    deal_id = api.call(
        "crm.deal.add",
        {
            "fields": {
                "TITLE": "m",
                "ORIGINATOR_ID": "sheet:abc",
                "ORIGIN_ID": "row-17",
                "NO_SUCH_FIELD": 1,
            }
        },
    )
    found = api.call(
        "crm.deal.list",
        {"filter": {"ORIGINATOR_ID": "sheet:abc", "ORIGIN_ID": "row-17"}, "select": ["ID"]},
    )
    assert [int(r["ID"]) for r in found] == [deal_id], "§10: ORIGIN_ID/ORIGINATOR_ID filterable"
    assert "NO_SUCH_FIELD" not in api.call("crm.deal.get", {"id": deal_id}), (
        "§2.2: unknown keys are silently ignored"
    )
    item = api.call("crm.item.get", {"entityTypeId": 2, "id": deal_id})["item"]
    assert (item["originatorId"], item["originId"]) == ("sheet:abc", "row-17"), "§9.3 camelCase"


def test_new_style_shapes_and_errors(api: Sandbox) -> None:
    item = api.call(
        "crm.item.add",
        {"entityTypeId": 2, "fields": {"title": "x", "opportunity": "999.99", "assignedById": "1"}},
    )["item"]
    assert item["opportunity"] == 999.99 and item["assignedById"] == 1, "§9.5: real JSON types"
    assert item["createdBy"] == 1 and "createdTime" in item, "§9.2: DATE_CREATE -> createdTime"
    err = call_error(api, "crm.item.add", {"entityTypeId": 2, "fields": {"contactIds": "5"}})
    assert err.code == 100 and "Expected iterable value" in err.description, (
        "§2.3: a scalar for a multiple field"
    )
    err = call_error(api, "crm.item.list", {"entityTypeId": 2, "filter": {"nope": 1}})
    assert err.description == "Invalid filter: field 'nope' is not allowed in filter"
    err = call_error(api, "crm.item.list", {"entityTypeId": 2, "order": {"id": "UP"}})
    assert err.code == "INVALID_ARG_VALUE" and "allowed sort directions" in err.description
    err = call_error(api, "crm.item.list", {"entityTypeId": 1})
    assert err.code == "ENTITY_TYPE_NOT_SUPPORTED"
    assert api.call("crm.item.delete", {"entityTypeId": 2, "id": item["id"]}) == [], (
        "§15: crm.item.delete returns []"
    )
    assert (
        call_error(api, "crm.item.delete", {"entityTypeId": 2, "id": item["id"]}).code
        == "NOT_FOUND"
    )


def test_contacts_with_multifields(api: Sandbox) -> None:
    cid = api.call(
        "crm.contact.add",
        {
            "fields": {
                "NAME": "Иван",
                "LAST_NAME": "Петров",
                "PHONE": [
                    {"VALUE": "+7 900 123-45-67", "VALUE_TYPE": "WORK"},
                    {"VALUE": "8 (900) 765-43-21", "VALUE_TYPE": "MOBILE"},
                ],
                "EMAIL": [{"VALUE": "ivan@example.ru", "VALUE_TYPE": "WORK"}],
            }
        },
    )
    got = api.call("crm.contact.get", {"id": cid})
    assert [p["VALUE"] for p in got["PHONE"]] == ["+7 900 123-45-67", "8 (900) 765-43-21"], (
        "§11: PHONE entries read back"
    )
    assert set(got["PHONE"][0]) == {"ID", "VALUE_TYPE", "VALUE", "TYPE_ID"}, "§11: entry keys"
    star = api.call("crm.contact.list", {"select": ["*"]})[0]
    assert "PHONE" not in star, "§11: select * does not include PHONE"
    explicit = api.call("crm.contact.list", {"select": ["ID", "PHONE"]})[0]
    assert len(explicit["PHONE"]) == 2, "§11: PHONE when asked for"
    phone_id = got["PHONE"][0]["ID"]
    api.call(
        "crm.contact.update",
        {
            "id": cid,
            "fields": {
                "PHONE": [
                    {"ID": phone_id, "VALUE": ""},
                    {"VALUE": "+7 901 000-00-00", "VALUE_TYPE": "HOME"},
                ]
            },
        },
    )
    values = [p["VALUE"] for p in api.call("crm.contact.get", {"id": cid})["PHONE"]]
    assert values == ["8 (900) 765-43-21", "+7 901 000-00-00"], (
        "§11: empty VALUE with ID deletes; without ID adds"
    )
    item = api.call("crm.item.get", {"entityTypeId": 3, "id": cid})["item"]
    assert {f["typeId"] for f in item["fm"]} == {"PHONE", "EMAIL"}, "§9.3: fm on crm.item"


def test_companies_and_deal_contacts(api: Sandbox) -> None:
    company = api.call("crm.company.add", {"fields": {"TITLE": "ООО Ромашка"}})
    assert api.call("crm.company.get", {"id": company})["TITLE"] == "ООО Ромашка"
    c1 = api.call("crm.contact.add", {"fields": {"NAME": "A"}})
    c2 = api.call("crm.contact.add", {"fields": {"NAME": "B"}})
    deal = api.call("crm.deal.add", {"fields": {"COMPANY_ID": company}})
    api.call(
        "crm.deal.contact.items.set",
        {"id": deal, "items": [{"CONTACT_ID": c1}, {"CONTACT_ID": c2, "IS_PRIMARY": "Y"}]},
    )
    items = api.call("crm.deal.contact.items.get", {"id": deal})
    assert [(i["CONTACT_ID"], i["IS_PRIMARY"]) for i in items] == [(c1, "N"), (c2, "Y")], (
        "§10: the IS_PRIMARY=Y contact is primary; crm-deal-contact-items-set.md: by SORT"
    )
    assert api.call("crm.deal.get", {"id": deal})["CONTACT_ID"] == str(c2)
    item = api.call("crm.item.get", {"entityTypeId": 2, "id": deal})["item"]
    assert item["contactIds"] == [c2, c1], "§9.3: contactIds on crm.item"


def test_smart_process_items(api: Sandbox) -> None:
    spa = api.call("crm.type.add", {"fields": {"title": "Подрядчики", "isStagesEnabled": "Y"}})[
        "type"
    ]
    etid = spa["entityTypeId"]
    item = api.call("crm.item.add", {"entityTypeId": etid, "fields": {}})["item"]
    assert item["title"] == f"Подрядчики #{item['id']}", "§9.3: SPA title default"
    assert item["stageId"].startswith(f"DT{etid}_"), "§9.3: default stage of the default funnel"
    moved = api.call(
        "crm.item.update",
        {
            "entityTypeId": etid,
            "id": item["id"],
            "fields": {"stageId": item["stageId"].replace("NEW", "CLIENT")},
        },
    )
    assert moved["item"]["previousStageId"] == item["stageId"], "§9.3: previousStageId"
    err = call_error(api, "crm.item.get", {"entityTypeId": etid + 2, "id": 1})
    assert (err.code, err.description) == ("NOT_FOUND", "Smart process not found")


def test_fields_descriptions(api: Sandbox) -> None:
    fields = api.call("crm.deal.fields")
    assert fields["CATEGORY_ID"]["isImmutable"] is True, "§10: CATEGORY_ID immutable"
    assert fields["STAGE_ID"]["statusType"] == "DEAL_STAGE"
    assert fields["ID"]["isReadOnly"] is True
    new = api.call("crm.item.fields", {"entityTypeId": 2})["fields"]
    assert new["stageId"]["upperName"] == "STAGE_ID", "§8.6: upperName"
