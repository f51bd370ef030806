"""crm.type.* against API notes §8."""

from __future__ import annotations

from b24kit.sandbox import Sandbox
from tests.conftest import call_error


def test_add_result_and_defaults(api: Sandbox) -> None:
    spa = api.call(
        "crm.type.add",
        {"fields": {"title": "Подрядчики", "code": "contractors", "isCategoriesEnabled": "Y"}},
    )["type"]
    assert isinstance(spa["id"], int) and spa["entityTypeId"] >= 1030, "§8.3: ids are ints"
    assert spa["entityTypeId"] % 2 == 0, "§8.3: generated entityTypeId is even, >= 1030"
    assert spa["isCategoriesEnabled"] == "Y" and spa["isStagesEnabled"] == "N", (
        "§8.2: switches default to N"
    )
    assert spa["isSetOpenPermissions"] == "Y", "§8.2: except isSetOpenPermissions"
    assert spa["relations"] == {"parent": [], "child": []}, "§8.2: add returns relations"
    cats = api.call("crm.category.list", {"entityTypeId": spa["entityTypeId"]})["categories"]
    assert len(cats) == 1 and cats[0]["isDefault"] == "Y", "§8.5: a default category is made"
    stages = api.call(
        "crm.status.list",
        {"filter": {"ENTITY_ID": f"DYNAMIC_{spa['entityTypeId']}_STAGE_{cats[0]['id']}"}},
    )
    assert len(stages) == 5, "§8.5: with its stages"
    second = api.call("crm.type.add", {"fields": {"title": "Два"}})["type"]
    assert second["entityTypeId"] == spa["entityTypeId"] + 2


def test_entity_type_id_range(api: Sandbox) -> None:
    assert (
        api.call("crm.type.add", {"fields": {"title": "a", "entityTypeId": 150}})["type"][
            "entityTypeId"
        ]
        == 150
    ), "§8.3: 128..192 allowed"
    for bad in (127, 193, 1031, 5):
        err = call_error(api, "crm.type.add", {"fields": {"title": "b", "entityTypeId": bad}})
        assert (err.code, err.description) == (
            "INVALID_ARG_VALUE",
            "entityTypeId is out of allowed range",
        ), str(bad)
    err = call_error(api, "crm.type.add", {"fields": {"title": "c", "entityTypeId": 150}})
    assert err.code == "INVALID_ARG_VALUE", "§8.3: entityTypeId must be unique"
    err = call_error(api, "crm.type.add", {"fields": {"title": ""}})
    assert err.code == "CRM_FIELD_ERROR_REQUIRED", "title is required"


def test_relations_and_parent_fields(api: Sandbox) -> None:
    spa = api.call(
        "crm.type.add",
        {
            "fields": {
                "title": "Подрядчики",
                "isClientEnabled": "Y",
                "relations": {
                    "parent": [{"entityTypeId": 2, "isChildrenListEnabled": "true"}],
                    "child": [{"entityTypeId": 2, "isChildrenListEnabled": "false"}],
                },
            }
        },
    )["type"]
    etid = spa["entityTypeId"]
    parents = {r["entityTypeId"]: r for r in spa["relations"]["parent"]}
    assert parents[2]["isChildrenListEnabled"] == "Y", "§8.4: true in, Y out"
    assert parents[3]["isPredefined"] == "Y" and parents[4]["isPredefined"] == "Y", (
        "§8.4: isClientEnabled adds contacts and companies as predefined parents"
    )
    assert spa["relations"]["child"][0]["isChildrenListEnabled"] == "N", "§8.4: false in, N out"
    deal = api.call("crm.deal.add", {"fields": {"TITLE": "Перевозка"}})
    item = api.call(
        "crm.item.add", {"entityTypeId": etid, "fields": {"title": "x", "parentId2": deal}}
    )["item"]
    assert item["parentId2"] == deal, "§8.4/§13: the child gets parentId2"
    found = api.call("crm.item.list", {"entityTypeId": etid, "filter": {"parentId2": deal}})
    assert [i["id"] for i in found["items"]] == [item["id"]], "§13: filter by parentId2"
    api.call("crm.deal.update", {"id": deal, "fields": {f"PARENT_ID_{etid}": item["id"]}})
    assert api.call("crm.deal.get", {"id": deal})[f"PARENT_ID_{etid}"] == str(item["id"]), (
        "§13: deals (children of the SPA) get PARENT_ID_{etid}"
    )


def test_update_list_get_delete(api: Sandbox) -> None:
    spa = api.call("crm.type.add", {"fields": {"title": "A", "code": "a"}})["type"]
    api.call(
        "crm.type.update",
        {
            "id": spa["id"],
            "fields": {
                "title": "B",
                "isStagesEnabled": "Y",
                "relations": {"parent": [{"entityTypeId": 2}]},
            },
        },
    )
    got = api.call("crm.type.get", {"id": spa["id"]})["type"]
    assert got["title"] == "B" and got["isStagesEnabled"] == "Y"
    assert [r["entityTypeId"] for r in got["relations"]["parent"]] == [2], "relations replaced"
    by_etid = api.call("crm.type.getByEntityTypeId", {"entityTypeId": spa["entityTypeId"]})
    assert by_etid["type"]["id"] == spa["id"], "§8.1: id and entityTypeId are different numbers"
    listed = api.call("crm.type.list", {"filter": {"title": "B"}})["types"]
    assert len(listed) == 1 and "relations" not in listed[0], "§8.2: list has no relations"
    api.call("crm.item.add", {"entityTypeId": spa["entityTypeId"], "fields": {"title": "x"}})
    err = call_error(api, "crm.type.delete", {"id": spa["id"]})
    assert (err.code, err.description) == (
        "BX_ERROR",
        "You cannot delete an entity type that has elements",
    ), "§2.3"
    item = api.call("crm.item.list", {"entityTypeId": spa["entityTypeId"]})["items"][0]
    api.call("crm.item.delete", {"entityTypeId": spa["entityTypeId"], "id": item["id"]})
    assert api.call("crm.type.delete", {"id": spa["id"]}) == [], "§15: delete returns []"
    err = call_error(api, "crm.type.get", {"id": spa["id"]})
    assert (err.code, err.description) == (0, "SPA not found"), "crm-type-get.md: error 0"
    assert api.call("crm.type.delete", {}) is None, "§8.1: null when id is missing"
