"""crm.deal.userfield.* and userfieldconfig.* against API notes §7 and §8.6."""

from __future__ import annotations

from typing import Any

import pytest

from b24kit.sandbox import Sandbox
from tests.conftest import call_error


def _add(api: Sandbox, **fields: Any) -> int:
    return int(api.call("crm.deal.userfield.add", {"fields": fields}))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("MANAGER_NOTE", "UF_CRM_MANAGER_NOTE"),
        ("UF_MANAGER_NOTE", "UF_CRM_MANAGER_NOTE"),
        ("UF_CRM_MANAGER_NOTE", "UF_CRM_MANAGER_NOTE"),
        ("manager_note", "UF_CRM_MANAGER_NOTE"),
    ],
)
def test_field_name_prefixing(api: Sandbox, given: str, stored: str) -> None:
    field_id = _add(api, FIELD_NAME=given, USER_TYPE_ID="string")
    got = api.call("crm.deal.userfield.get", {"id": field_id})
    assert got["FIELD_NAME"] == stored, f"§7.2: {given} is stored as {stored}"


def test_field_name_errors(api: Sandbox) -> None:
    err = call_error(
        api,
        "crm.deal.userfield.add",
        {"fields": {"FIELD_NAME": "X" * 44, "USER_TYPE_ID": "string"}},
    )
    assert (err.code, err.description) == (
        "ERROR_CORE",
        "Field name is too long (more than 50 characters).",
    ), "§7.2: 50 chars max"
    assert _add(api, FIELD_NAME="X" * 43, USER_TYPE_ID="string") > 0, "§7.2: 43 own chars fit"
    err = call_error(
        api, "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "ЦЕНА", "USER_TYPE_ID": "string"}}
    )
    assert "invalid characters" in err.description, "§7.2: A-Z, 0-9 and _ only"
    err = call_error(
        api,
        "crm.deal.userfield.add",
        {"fields": {"FIELD_NAME": "X" * 43, "USER_TYPE_ID": "string"}},
    )
    assert err.code == "ERROR_CORE" and "already exists" in err.description, "§7.2: unique"
    err = call_error(api, "crm.deal.userfield.add", {"fields": {"USER_TYPE_ID": "string"}})
    assert err.description == "The 'FIELD_NAME' field is not found."
    err = call_error(api, "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "A"}})
    assert err.description == "The 'USER_TYPE_ID' field is not found."
    err = call_error(
        api, "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "A", "USER_TYPE_ID": "hologram"}}
    )
    assert err.description == "Incorrect custom type specified.", "§7.4: known types only"


def test_every_common_type_is_accepted(api: Sandbox) -> None:
    types = [t["ID"] for t in api.call("crm.userfield.types")]
    for utype in (
        "string",
        "integer",
        "double",
        "boolean",
        "enumeration",
        "datetime",
        "date",
        "money",
        "url",
        "address",
        "file",
        "employee",
        "crm_status",
        "crm",
    ):
        assert utype in types, f"§7.4: {utype} is listed"
        _add(api, FIELD_NAME=f"T_{utype.upper()}", USER_TYPE_ID=utype)
    rows = api.call("crm.deal.userfield.list")
    assert len(rows) == 14


def test_read_back_shape_and_labels(api: Sandbox) -> None:
    field_id = _add(
        api,
        FIELD_NAME="PRICE",
        USER_TYPE_ID="double",
        LABEL="Цена",
        EDIT_FORM_LABEL={"en": "Price"},
        MANDATORY="Y",
        SHOW_FILTER="Y",
    )
    row = api.call("crm.deal.userfield.list")[0]
    assert row["ID"] == str(field_id) and row["SORT"] == "100", "§7.7: scalars are strings"
    assert row["XML_ID"] is None and row["MANDATORY"] == "Y"
    assert row["SHOW_FILTER"] == "E", "§7.3: SHOW_FILTER Y reads back as a filter mode"
    assert "EDIT_FORM_LABEL" not in row, "§7.7: no labels without LANG"
    assert row["SETTINGS"]["PRECISION"] == 2, "§7.5: double precision defaults to 2"
    ru = api.call("crm.deal.userfield.list", {"filter": {"LANG": "ru"}})[0]
    assert ru["EDIT_FORM_LABEL"] == "Цена" and ru["LIST_COLUMN_LABEL"] == "Цена", (
        "§7.3: languages missing from the map get LABEL"
    )
    en = api.call("crm.deal.userfield.list", {"filter": {"LANG": "en"}})[0]
    assert en["EDIT_FORM_LABEL"] == "Price", "§7.7: LANG gives plain strings"
    full = api.call("crm.deal.userfield.get", {"id": field_id})
    assert full["EDIT_FORM_LABEL"]["en"] == "Price" and "vn" in full["EDIT_FORM_LABEL"], (
        "§7.7: get returns full language maps"
    )
    api.call(
        "crm.deal.userfield.update", {"id": field_id, "fields": {"EDIT_FORM_LABEL": {"en": "P"}}}
    )
    after = api.call("crm.deal.userfield.get", {"id": field_id})["EDIT_FORM_LABEL"]
    assert (after["en"], after["ru"]) == ("P", ""), "§7.3: update overwrites every language"


def test_type_rules(api: Sandbox) -> None:
    bool_id = _add(api, FIELD_NAME="FLAG", USER_TYPE_ID="boolean", MULTIPLE="Y")
    assert api.call("crm.deal.userfield.get", {"id": bool_id})["MULTIPLE"] == "N", (
        "§7.3: boolean cannot be multiple"
    )
    crm_id = _add(api, FIELD_NAME="LINK", USER_TYPE_ID="crm")
    assert api.call("crm.deal.userfield.get", {"id": crm_id})["SETTINGS"]["LEAD"] == "Y", (
        "§7.5: crm field with no targets links leads"
    )


def test_enumeration_list_add_and_update(api: Sandbox) -> None:
    field_id = _add(
        api,
        FIELD_NAME="RATING",
        USER_TYPE_ID="enumeration",
        LIST=[
            {"VALUE": "Хорошо", "SORT": 10, "DEF": "Y"},
            {"VALUE": "Плохо", "SORT": 20},
            {"VALUE": ""},
            {"VALUE": "Средне", "SORT": 15, "XML_ID": "mid"},
        ],
    )
    items = api.call("crm.deal.userfield.get", {"id": field_id})["LIST"]
    assert [i["VALUE"] for i in items] == ["Хорошо", "Средне", "Плохо"], (
        "§7.6: empty VALUE dropped, sorted by SORT"
    )
    assert len(items[0]["XML_ID"]) == 32, "§7.6: XML_ID generated as 32 hex"
    assert items[1]["XML_ID"] == "mid" and items[0]["DEF"] == "Y"
    good, mid, bad = items
    api.call(
        "crm.deal.userfield.update",
        {
            "id": field_id,
            "fields": {
                "LIST": [
                    {"ID": good["ID"], "VALUE": "Отлично"},
                    {"ID": bad["ID"], "DEL": "Y"},
                    {"VALUE": "Новое", "SORT": 30},
                ]
            },
        },
    )
    after = {i["VALUE"]: i for i in api.call("crm.deal.userfield.get", {"id": field_id})["LIST"]}
    assert set(after) == {"Отлично", "Средне", "Новое"}, (
        "§7.6: change by ID, DEL=Y deletes, new added, unmentioned kept"
    )
    assert after["Отлично"]["ID"] == good["ID"], "identity is kept on change"
    err = call_error(
        api,
        "crm.deal.userfield.update",
        {"id": field_id, "fields": {"LIST": [{"VALUE": "again", "XML_ID": "mid"}]}},
    )
    assert "already exists" in err.description, "§7.6: XML_ID unique within the field"
    fields = api.call("crm.deal.fields")
    assert {i["VALUE"] for i in fields["UF_CRM_RATING"]["items"]} == set(after), (
        "§7.7: crm.deal.fields lists enumeration items"
    )


def test_values_on_deals(api: Sandbox) -> None:
    enum_id = _add(
        api, FIELD_NAME="RATING", USER_TYPE_ID="enumeration", LIST=[{"VALUE": "A"}, {"VALUE": "B"}]
    )
    _add(api, FIELD_NAME="FLAG", USER_TYPE_ID="boolean")
    _add(api, FIELD_NAME="TAGS", USER_TYPE_ID="string", MULTIPLE="Y")
    _add(api, FIELD_NAME="AMOUNT", USER_TYPE_ID="integer")
    first = api.call("crm.deal.userfield.get", {"id": enum_id})["LIST"][0]["ID"]
    deal = api.call(
        "crm.deal.add",
        {
            "fields": {
                "UF_CRM_RATING": first,
                "UF_CRM_FLAG": "Y",
                "UF_CRM_TAGS": ["a", "b"],
                "UF_CRM_AMOUNT": "42",
            }
        },
    )
    old = api.call("crm.deal.get", {"id": deal})
    assert old["UF_CRM_RATING"] == first, "§7.8: enumeration reads as the item id string"
    assert old["UF_CRM_FLAG"] == "1" and old["UF_CRM_AMOUNT"] == "42", "§7.8: old API strings"
    assert old["UF_CRM_TAGS"] == ["a", "b"], "§7.8: multiple as a list"
    new = api.call("crm.item.get", {"entityTypeId": 2, "id": deal})["item"]
    assert new["ufCrmRating"] == int(first) and new["ufCrmFlag"] == "Y", "§7.8: crm.item types"
    assert new["ufCrmAmount"] == 42
    err = call_error(api, "crm.deal.add", {"fields": {"UF_CRM_RATING": 99999}})
    assert err.description == 'Invalid value for the "UF_CRM_RATING" field', "unknown enum id"


def test_mandatory_field_is_required_on_add(api: Sandbox) -> None:
    _add(api, FIELD_NAME="MUST", USER_TYPE_ID="string", MANDATORY="Y", LABEL="Обязательно")
    err = call_error(api, "crm.deal.add", {"fields": {"TITLE": "x"}})
    assert err.description == 'The field "Обязательно" is required.'
    err = call_error(api, "crm.item.add", {"entityTypeId": 2, "fields": {"title": "x"}})
    assert err.code == "CRM_FIELD_ERROR_REQUIRED", "§2.3: new-style code"
    assert api.call("crm.deal.add", {"fields": {"UF_CRM_MUST": "ok"}}) > 0


def test_delete_field_drops_values(api: Sandbox) -> None:
    field_id = _add(api, FIELD_NAME="GONE", USER_TYPE_ID="string")
    deal = api.call("crm.deal.add", {"fields": {"UF_CRM_GONE": "x"}})
    assert api.call("crm.deal.userfield.delete", {"id": field_id}) is True
    _add(api, FIELD_NAME="GONE", USER_TYPE_ID="string")
    assert api.call("crm.deal.get", {"id": deal})["UF_CRM_GONE"] is None, (
        "a re-created field does not resurrect old values"
    )
    err = call_error(api, "crm.deal.userfield.get", {"id": field_id})
    assert (err.code, err.description) == (
        "ERROR_NOT_FOUND",
        f"The entity with ID '{field_id}' is not found",
    )


def test_contact_and_company_userfields(api: Sandbox) -> None:
    api.call(
        "crm.contact.userfield.add", {"fields": {"FIELD_NAME": "INN", "USER_TYPE_ID": "string"}}
    )
    api.call(
        "crm.company.userfield.add", {"fields": {"FIELD_NAME": "INN", "USER_TYPE_ID": "string"}}
    )
    assert len(api.call("crm.deal.userfield.list")) == 0, "entities keep separate fields"
    contact = api.call("crm.contact.add", {"fields": {"NAME": "Иван", "UF_CRM_INN": "77"}})
    assert api.call("crm.contact.get", {"id": contact})["UF_CRM_INN"] == "77"


def _spa(api: Sandbox) -> dict[str, Any]:
    return dict(api.call("crm.type.add", {"fields": {"title": "Подрядчики"}})["type"])


def test_userfieldconfig_for_smart_process(api: Sandbox) -> None:
    spa = _spa(api)
    entity = f"CRM_{spa['id']}"
    field = api.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": entity,
                "fieldName": f"UF_{entity}_PRICE",
                "userTypeId": "double",
                "editFormLabel": {"ru": "Цена"},
            },
        },
    )["field"]
    assert field["fieldName"] == f"UF_{entity}_PRICE" and field["id"].isdigit(), (
        "§8.6: camelCase result, id as string"
    )
    err = call_error(
        api,
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {"entityId": entity, "fieldName": "UF_CRM_PRICE", "userTypeId": "double"},
        },
    )
    assert err.description == "You cannot create custom fields", "§8.6: prefix must match"
    item = api.call(
        "crm.item.add",
        {
            "entityTypeId": spa["entityTypeId"],
            "fields": {"title": "ООО Перевозчик", f"ufCrm{spa['id']}Price": 125000.5},
        },
    )["item"]
    assert item[f"ufCrm{spa['id']}Price"] == 125000.5, "§9.2: SPA UF camelCase name"
    listed = api.call("userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": entity}})[
        "fields"
    ]
    assert [f["fieldName"] for f in listed] == [f"UF_{entity}_PRICE"]
    api.call(
        "userfieldconfig.update",
        {"moduleId": "crm", "id": field["id"], "field": {"mandatory": "Y"}},
    )
    assert (
        api.call("userfieldconfig.get", {"moduleId": "crm", "id": field["id"]})["field"][
            "mandatory"
        ]
        == "Y"
    )
    assert api.call("userfieldconfig.delete", {"moduleId": "crm", "id": field["id"]}) is None


def test_userfieldconfig_enum_and_deal(api: Sandbox) -> None:
    err = call_error(
        api,
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": "CRM_DEAL",
                "fieldName": "UF_CRM_QUALITY",
                "userTypeId": "enumeration",
            },
        },
    )
    assert (err.code, err.description) == ("", "You cannot create custom fields"), (
        "userfieldconfig-add.md: fieldName must start with UF_{entityId}_, UF_CRM_DEAL_ here"
    )
    field = api.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": "CRM_DEAL",
                "fieldName": "UF_CRM_DEAL_QUALITY",
                "userTypeId": "enumeration",
                "enum": [{"value": "5", "sort": 10}, {"value": "4", "sort": 20, "xmlId": "four"}],
            },
        },
    )["field"]
    assert [e["value"] for e in field["enum"]] == ["5", "4"], "§7.6: enum under key enum"
    assert field["enum"][1]["xmlId"] == "four"
    assert "UF_CRM_DEAL_QUALITY" in api.call("crm.deal.fields"), "a CRM_DEAL field is a deal field"
    err = call_error(api, "userfieldconfig.add", {"field": {"entityId": "CRM_DEAL"}})
    assert err.code == 100, "moduleId is required"
