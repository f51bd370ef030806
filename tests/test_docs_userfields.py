"""User fields against their docs pages: crm.{deal,contact,company}.userfield.*,
crm.userfield.types and userfieldconfig.* (api-reference/crm/.../userfield*/, api-reference/
crm/universal/userfieldconfig/, api-reference/crm/universal/user-defined-fields/)."""

from __future__ import annotations

from typing import Any

from b24kit.sandbox import Sandbox
from tests.conftest import Rest, call_error

VIEW_DENIED = "You do not have permission to view user field settings"
CHANGE_DENIED = "You cannot change the settings of the user field"
DELETE_DENIED = "You cannot delete the user field"


def _deal_uf(api: Sandbox, **fields: Any) -> int:
    return int(api.call("crm.deal.userfield.add", {"fields": fields}))


def _spa(api: Sandbox, title: str = "Подрядчики") -> dict[str, Any]:
    return dict(api.call("crm.type.add", {"fields": {"title": title}})["type"])


def _config_add(api: Sandbox, entity: str, suffix: str, **field: Any) -> dict[str, Any]:
    body = {"entityId": entity, "fieldName": f"UF_{entity}_{suffix}", "userTypeId": "string"}
    body.update(field)
    return dict(api.call("userfieldconfig.add", {"moduleId": "crm", "field": body})["field"])


# ------------------------------------------------------------- crm.X.userfield.*
def test_old_style_id_errors(api: Sandbox) -> None:
    for method, params in (
        ("crm.deal.userfield.get", {}),
        ("crm.deal.userfield.get", {"id": 0}),
        ("crm.deal.userfield.update", {"fields": {"SORT": 5}}),
        ("crm.deal.userfield.delete", {"id": -1}),
    ):
        err = call_error(api, method, params)
        assert (err.code, err.description, err.status) == (
            "",
            "ID is not defined or invalid.",
            400,
        ), f"crm-deal-userfield-{method.rsplit('.', 1)[1]}.md: id missing or <= 0 ({params})"
    err = call_error(api, "crm.deal.userfield.get", {"id": 999})
    assert (err.code, err.description) == (
        "ERROR_NOT_FOUND",
        "The entity with ID '999' is not found",
    ), "crm-deal-userfield-get.md: a missing field is ERROR_NOT_FOUND"


def test_old_style_field_of_another_entity_is_access_denied(api: Sandbox) -> None:
    contact_uf = int(
        api.call(
            "crm.contact.userfield.add", {"fields": {"FIELD_NAME": "INN", "USER_TYPE_ID": "string"}}
        )
    )
    err = call_error(api, "crm.deal.userfield.get", {"id": contact_uf})
    assert (err.code, err.description, err.status) == ("", "Access denied.", 403), (
        "crm-deal-userfield-get.md: a custom field not linked to deals is Access denied (403)"
    )
    err = call_error(api, "crm.company.userfield.delete", {"id": contact_uf})
    assert (err.code, err.status) == ("", 403), (
        "crm-company-userfield-delete.md: deleting a field not of companies is Access denied"
    )
    err = call_error(
        api, "crm.deal.userfield.update", {"id": contact_uf, "fields": {"MANDATORY": "Y"}}
    )
    assert err.description == "Access denied.", "crm-deal-userfield-update.md: Access denied"
    assert api.call("crm.contact.userfield.get", {"id": contact_uf})["MANDATORY"] == "N", (
        "crm-deal-userfield-update.md: a refused update changes nothing"
    )


def test_old_style_results(api: Sandbox) -> None:
    field_id = api.call(
        "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "HELLO", "USER_TYPE_ID": "string"}}
    )
    assert isinstance(field_id, int), "crm-deal-userfield-add.md: result is the integer id"
    assert (
        api.call("crm.deal.userfield.update", {"id": field_id, "fields": {"SORT": 2000}}) is True
    ), "crm-deal-userfield-update.md: result true"
    got = api.call("crm.deal.userfield.get", {"id": field_id})
    assert (got["ID"], got["SORT"], got["XML_ID"]) == (str(field_id), "2000", None), (
        "crm-deal-userfield-get.md: ID and SORT strings, XML_ID null"
    )
    assert len(got["EDIT_FORM_LABEL"]) == 21 and got["EDIT_FORM_LABEL"]["ar"] == "", (
        "crm-deal-userfield-get.md: label maps carry all 21 languages, '' where unset"
    )
    assert api.call("crm.deal.userfield.delete", {"id": field_id}) is True, (
        "crm-deal-userfield-delete.md: result true"
    )


def test_old_style_list_parameters_and_order(api: Sandbox) -> None:
    err = call_error(api, "crm.deal.userfield.list", {"filter": "x"})
    assert (err.code, err.description) == ("", "Parameter 'filter' must be array."), (
        "crm-deal-userfield-list.md: filter must be an object"
    )
    err = call_error(api, "crm.deal.userfield.list", {"order": "SORT"})
    assert (err.code, err.description) == ("", "Parameter 'order' must be array."), (
        "crm-deal-userfield-list.md: order must be an object"
    )
    a = _deal_uf(api, FIELD_NAME="A", USER_TYPE_ID="string", SORT=300)
    b = _deal_uf(api, FIELD_NAME="B", USER_TYPE_ID="string", SORT=100)
    c = _deal_uf(api, FIELD_NAME="C", USER_TYPE_ID="string", SORT=100)
    ids = [int(r["ID"]) for r in api.call("crm.deal.userfield.list")]
    assert ids == [b, c, a], "crm-deal-userfield-list.md: default order SORT ASC, ID ASC"
    ids = [int(r["ID"]) for r in api.call("crm.deal.userfield.list", {"order": {"ID": "DESC"}})]
    assert ids == [c, b, a], "crm-deal-userfield-list.md: order by ID DESC"


def test_old_style_list_labels(api: Sandbox) -> None:
    _deal_uf(
        api,
        FIELD_NAME="DIRECTORY",
        USER_TYPE_ID="string",
        EDIT_FORM_LABEL={"en": "Directory"},
        LIST_COLUMN_LABEL={"en": "Directory"},
    )
    plain = api.call("crm.deal.userfield.list")[0]
    assert "EDIT_FORM_LABEL" not in plain and "HELP_MESSAGE" not in plain, (
        "crm-deal-userfield-list.md: without filter.LANG labels are not returned at all"
    )
    row = api.call("crm.deal.userfield.list", {"filter": {"LANG": "en"}})[0]
    assert row["EDIT_FORM_LABEL"] == "Directory", "crm-deal-userfield-list.md: LANG gives strings"
    assert row["ERROR_MESSAGE"] is None and row["HELP_MESSAGE"] is None, (
        "crm-deal-userfield-list.md: a label not set in that language is null"
    )
    assert api.call("crm.deal.userfield.list", {"filter": {"LANG": "en"}})[0]["SORT"] == "100", (
        "crm-deal-userfield-list.md: SORT is a string"
    )


def test_crm_userfield_types(api: Sandbox) -> None:
    rows = api.call("crm.userfield.types")
    titles = {r["ID"]: r["title"] for r in rows}
    assert rows[0] == {"ID": "string", "title": "String"}, (
        "crm-userfield-types.md: an array of {ID, title}, string first"
    )
    assert (titles["employee"], titles["crm"], titles["address"]) == (
        "Binding to User",
        "Binding to CRM Entities",
        "Google Maps Address",
    ), "crm-userfield-types.md: the example's titles"


# ------------------------------------------------------------- userfieldconfig.*
def test_config_missing_field_errors(api: Sandbox) -> None:
    spa = _spa(api)
    field = _config_add(api, f"CRM_{spa['id']}", "GONE")
    assert api.call("userfieldconfig.delete", {"moduleId": "crm", "id": field["id"]}) is None, (
        "userfieldconfig-delete.md: result null"
    )
    for method, text in (
        ("userfieldconfig.get", VIEW_DENIED),
        ("userfieldconfig.update", CHANGE_DENIED),
        ("userfieldconfig.delete", DELETE_DENIED),
    ):
        params: dict[str, Any] = {"moduleId": "crm", "id": field["id"]}
        if method == "userfieldconfig.update":
            params["field"] = {"mandatory": "Y"}
        err = call_error(api, method, params)
        page = method.replace(".", "-")
        assert (err.code, err.description, err.status) == ("", text, 400), (
            f"{page}.md: an already deleted field answers error '' '{text}', HTTP 400"
        )
    err = call_error(api, "userfieldconfig.get", {"moduleId": "crm", "id": 987654})
    assert (err.code, err.description) == ("", VIEW_DENIED), (
        "userfieldconfig-get.md: a field that never existed: the same error"
    )


def test_config_missing_field_on_the_wire(rest: Rest) -> None:
    status, code, description = rest.error(
        "userfieldconfig.delete", {"moduleId": "crm", "id": 4242}
    )
    assert (status, code, description) == (400, "", DELETE_DENIED), (
        "userfieldconfig-delete.md: HTTP 400, error '', 'You cannot delete the user field'"
    )
    status, code, description = rest.error("crm.deal.userfield.get", {"id": 0})
    assert (status, code, description) == (400, "", "ID is not defined or invalid."), (
        "crm-deal-userfield-get.md: HTTP 400 with the empty code"
    )


def test_config_update_enum_needs_user_type(api: Sandbox) -> None:
    spa = _spa(api)
    field = _config_add(
        api,
        f"CRM_{spa['id']}",
        "KIND",
        userTypeId="enumeration",
        enum=[{"value": "a", "xmlId": "A", "sort": 10}],
    )
    got = api.call(
        "userfieldconfig.update",
        {
            "moduleId": "crm",
            "id": field["id"],
            "field": {"mandatory": "Y", "enum": [{"value": "b", "xmlId": "B", "sort": 20}]},
        },
    )["field"]
    assert [e["xmlId"] for e in got["enum"]] == ["A"], (
        "userfieldconfig-update.md: enum is applied only with field.userTypeId=enumeration"
    )
    assert got["mandatory"] == "Y", (
        "userfieldconfig-update.md: the other keys still apply while enum is ignored"
    )
    got = api.call(
        "userfieldconfig.update",
        {
            "moduleId": "crm",
            "id": field["id"],
            "field": {
                "userTypeId": "enumeration",
                "enum": [{"value": "b", "xmlId": "B", "sort": 20}],
            },
        },
    )["field"]
    assert [e["xmlId"] for e in got["enum"]] == ["A", "B"], (
        "userfieldconfig-update.md: with userTypeId=enumeration the enum change applies"
    )


def test_config_update_keys(api: Sandbox) -> None:
    spa = _spa(api)
    field = _config_add(api, f"CRM_{spa['id']}", "NOTE", editFormLabel={"en": "Note"})
    got = api.call(
        "userfieldconfig.update",
        {
            "moduleId": "crm",
            "id": field["id"],
            "field": {
                "editInList": "N",
                "showInList": "N",
                "multiple": "Y",
                "listColumnLabel": {"en": "Column"},
                "sort": 50,
                "helpMessage": {"en": "Help"},
            },
        },
    )["field"]
    assert (got["editInList"], got["showInList"], got["multiple"]) == ("Y", "Y", "N"), (
        "userfieldconfig-update.md: keys outside the field table are not applied"
    )
    assert got["listColumnLabel"] == {"en": None}, (
        "userfieldconfig-update.md: listColumnLabel is not among the keys update takes"
    )
    assert (got["sort"], got["helpMessage"]) == ("50", {"en": "Help"}), (
        "userfieldconfig-update.md: sort and helpMessage are applied"
    )


def test_config_add_rules(api: Sandbox) -> None:
    spa = _spa(api)
    entity = f"CRM_{spa['id']}"
    field = _config_add(
        api, entity, "PRICE", userTypeId="double", showInList="N", listColumnLabel={"en": "X"}
    )
    assert field["showInList"] == "Y" and field["listColumnLabel"] == {}, (
        "userfieldconfig-add.md: showInList and listColumnLabel are not processed by add"
    )
    assert (field["id"].isdigit(), field["sort"], field["xmlId"]) == (True, "100", None), (
        "userfieldconfig-add.md: id and sort strings, sort defaults to 100, xmlId null"
    )
    err = call_error(
        api,
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": entity,
                "fieldName": f"UF_{entity}_PRICE",
                "userTypeId": "double",
            },
        },
    )
    assert err.code == "" and "already exists" in err.description, (
        "userfieldconfig-add.md: 'Field ... already exists' with an empty code"
    )
    err = call_error(
        api,
        "userfieldconfig.add",
        {"moduleId": "crm", "field": {"entityId": entity, "fieldName": f"UF_{entity}_T"}},
    )
    assert (err.code, err.description) == ("", "The 'USER_TYPE_ID' field is not found."), (
        "userfieldconfig-add.md: a missing userTypeId"
    )
    err = call_error(
        api,
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {"entityId": "CRM_DEAL", "fieldName": "UF_CRM_X", "userTypeId": "string"},
        },
    )
    assert (err.code, err.description) == ("", "You cannot create custom fields"), (
        "userfieldconfig-add.md: fieldName must start with UF_{entityId}_"
    )


def test_config_field_shape(api: Sandbox) -> None:
    spa = _spa(api)
    field = _config_add(
        api,
        f"CRM_{spa['id']}",
        "LIST",
        userTypeId="enumeration",
        editFormLabel={"en": "List of characteristics", "de": "Liste der Merkmale"},
        enum=[{"value": "Characteristic 1", "sort": 100}],
    )
    got = api.call("userfieldconfig.get", {"moduleId": "crm", "id": field["id"]})["field"]
    assert got["languageId"] == {"de": "de", "en": "en"}, (
        "userfieldconfig-get.md: languageId names the languages that have labels"
    )
    assert got["editFormLabel"] == {"de": "Liste der Merkmale", "en": "List of characteristics"}
    assert got["helpMessage"] == {"de": None, "en": None}, (
        "userfieldconfig-get.md: an unset label is null for each of those languages"
    )
    item = got["enum"][0]
    assert (item["userFieldId"], item["sort"], item["def"]) == (field["id"], "100", "N"), (
        "userfieldconfig-get.md: enum items with string userFieldId and sort, def Y/N"
    )
    plain = _config_add(api, f"CRM_{spa['id']}", "PLAIN")
    assert "enum" not in plain, (
        "userfieldconfig-get.md: enum is returned only for userTypeId = enumeration"
    )


def test_config_get_types_and_module(api: Sandbox) -> None:
    types = api.call("userfieldconfig.getTypes", {"moduleId": "crm"})["types"]
    assert types["string"] == {"userTypeId": "string", "description": "String"}, (
        "userfieldconfig-get-types.md: types is an object keyed by type id"
    )
    assert types["crm"]["description"] == "Linked to CRM entities", (
        "userfieldconfig-get-types.md: the example's descriptions"
    )
    err = call_error(api, "userfieldconfig.getTypes", {"moduleId": "nothing"})
    assert (err.code, err.description) == ("", "No settings for UserFieldAccess"), (
        "userfieldconfig-get-types.md: a module without user-field access"
    )


def test_config_list_paging_on_the_wire(rest: Rest) -> None:
    api = rest.sandbox
    spa = _spa(api)
    other = _spa(api, "Другие")
    entity = f"CRM_{spa['id']}"
    for i in range(55):
        _config_add(api, entity, f"F{i}", sort=200 if i == 0 else 100)
    _config_add(api, f"CRM_{other['id']}", "ELSE")
    page = rest.raw(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": entity}}
    ).json()
    assert (page["total"], page["next"], len(page["result"]["fields"])) == (55, 50, 50), (
        "userfieldconfig-list.md: fields under result.fields, total, next 50 past 50 rows"
    )
    names = [f["fieldName"] for f in page["result"]["fields"]]
    assert names[0] == f"UF_{entity}_F1" and f"UF_{entity}_F0" not in names, (
        "userfieldconfig-list.md: default order sort ASC then id ASC"
    )
    err = call_error(
        api, "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": "CRM_99999"}}
    )
    assert (err.code, err.description) == ("", VIEW_DENIED), (
        "userfieldconfig-list.md: no read access for the fields the filter names"
    )


def test_config_list_select_language(api: Sandbox) -> None:
    spa = _spa(api)
    _config_add(api, f"CRM_{spa['id']}", "LIST", editFormLabel={"de": "Liste", "en": "List"})
    row = api.call(
        "userfieldconfig.list", {"moduleId": "crm", "select": {"0": "*", "language": "de"}}
    )
    field = row["fields"][0]
    assert (field["languageId"], field["editFormLabel"], field["listColumnLabel"]) == (
        {"de": "de"},
        {"de": "Liste"},
        None,
    ), "userfieldconfig-list.md: select.language gives that language's labels, null if unset"


# ------------------------------------------------------------- readings
def _enum_field(box: Sandbox) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    spa, other = _spa(box), _spa(box, "Другие")
    field = _config_add(
        box,
        f"CRM_{spa['id']}",
        "KIND",
        userTypeId="enumeration",
        editFormLabel={"ru": "Вид"},
        enum=[{"value": "a", "xmlId": "A"}],
    )
    _config_add(box, f"CRM_{other['id']}", "ELSE")
    return spa, other, field


def test_default_list_carries_enum_and_labels_and_honours_entity(api: Sandbox) -> None:
    spa, _other, _field = _enum_field(api)
    rows = api.call(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{spa['id']}"}}
    )
    [row] = rows["fields"]
    assert row["enum"][0]["xmlId"] == "A" and row["editFormLabel"] == {"ru": "Вид"}, (
        "userfieldconfig-list.md (returned data table): rows carry enum and labels"
    )


def test_reading_uf_list_bare() -> None:
    box = Sandbox(limits="off", readings={"uf-list-bare"})
    try:
        _spa_, _other, field = _enum_field(box)
        rows = box.call("userfieldconfig.list", {"moduleId": "crm"})["fields"]
        row = next(r for r in rows if r["id"] == field["id"])
        assert not {
            "enum",
            "editFormLabel",
            "listColumnLabel",
            "listFilterLabel",
            "errorMessage",
            "helpMessage",
        } & set(row), "reading uf-list-bare: userfieldconfig-list.md's example row has no enum"
        got = box.call("userfieldconfig.get", {"moduleId": "crm", "id": field["id"]})["field"]
        assert got["enum"][0]["xmlId"] == "A", "userfieldconfig-get.md: get still carries enum"
    finally:
        box.close()


def test_reading_uf_list_ignores_entity() -> None:
    box = Sandbox(limits="off", readings={"uf-list-ignores-entity"})
    try:
        spa, other, _field = _enum_field(box)
        rows = box.call(
            "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{spa['id']}"}}
        )
        assert {r["entityId"] for r in rows["fields"]} == {
            f"CRM_{spa['id']}",
            f"CRM_{other['id']}",
        }, (
            "reading uf-list-ignores-entity: entityId is not a filterable field of "
            "userfieldconfig-list.md, so every entity's fields come back"
        )
    finally:
        box.close()


def test_reading_enum_without_user_type() -> None:
    box = Sandbox(limits="off", readings={"enum-without-usertype"})
    try:
        _spa_, _other, field = _enum_field(box)
        got = box.call(
            "userfieldconfig.update",
            {
                "moduleId": "crm",
                "id": field["id"],
                "field": {"enum": [{"value": "b", "xmlId": "B"}]},
            },
        )["field"]
        assert [e["xmlId"] for e in got["enum"]] == ["A", "B"], (
            "reading enum-without-usertype: the old behaviour, against userfieldconfig-update.md"
        )
    finally:
        box.close()
