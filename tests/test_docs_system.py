"""Docs sweep: crm.type.*, system methods, protocol errors, batch, stage history, timeline
comments. Every assertion names the page (or recorded answer) it rests on."""

from __future__ import annotations

from typing import Any

from b24kit.sandbox import Sandbox
from tests.conftest import Rest, call_error

TYPE_DOC = "crm-type-get.md"
TYPE_KEYS = [
    "id",
    "title",
    "code",
    "createdBy",
    "entityTypeId",
    "customSectionId",
    "isCategoriesEnabled",
    "isStagesEnabled",
    "isBeginCloseDatesEnabled",
    "isClientEnabled",
    "isUseInUserfieldEnabled",
    "isLinkWithProductsEnabled",
    "isMycompanyEnabled",
    "isDocumentsEnabled",
    "isSourceEnabled",
    "isObserversEnabled",
    "isRecyclebinEnabled",
    "isAutomationEnabled",
    "isBizProcEnabled",
    "isSetOpenPermissions",
    "isPaymentsEnabled",
    "isCountersEnabled",
    "createdTime",
    "updatedTime",
    "updatedBy",
]


def _full_spa(api: Sandbox) -> dict[str, Any]:
    """crm-type-add.md's example request, as far as the sandbox knows the types it names."""
    result = api.call(
        "crm.type.add",
        {
            "fields": {
                "title": "SPA",
                "entityTypeId": 2024,
                "isClientEnabled": "Y",
                "isUseInUserfieldEnabled": "Y",
                "isCategoriesEnabled": "Y",
                "linkedUserFields": {
                    "CALENDAR_EVENT|UF_CRM_CAL_EVENT": "true",
                    "TASKS_TASK|UF_CRM_TASK": "true",
                },
                "relations": {
                    "parent": [
                        {"entityTypeId": 1, "isChildrenListEnabled": "true"},
                        {"entityTypeId": 2, "isChildrenListEnabled": "true"},
                        {"entityTypeId": 31, "isChildrenListEnabled": "true"},
                    ],
                    "child": [
                        {"entityTypeId": 3, "isChildrenListEnabled": "true"},
                        {"entityTypeId": 4},
                    ],
                },
            }
        },
    )
    spa: dict[str, Any] = result["type"]
    return spa


def test_type_object_shape(api: Sandbox) -> None:
    spa = _full_spa(api)
    got = api.call("crm.type.get", {"id": spa["id"]})
    assert list(got) == ["type"], f"{TYPE_DOC}: result has the single key type"
    t = got["type"]
    assert list(t) == [*TYPE_KEYS, "relations", "linkedUserFields", "customSections"], (
        f"{TYPE_DOC}: the keys of the type object, in the example's order"
    )
    assert t["code"] == "", f'{TYPE_DOC}: a type without code shows "code": ""'
    assert t["customSectionId"] is None and t["customSections"] == [], (
        f"{TYPE_DOC}: customSectionId null, customSections []"
    )
    assert isinstance(t["id"], int) and isinstance(t["createdBy"], int), (
        f"{TYPE_DOC}: id and createdBy are integers"
    )
    assert t["isPaymentsEnabled"] == "N" and t["isCountersEnabled"] == "N", (
        f"{TYPE_DOC}: the system switches read N"
    )
    assert t["createdTime"].endswith("+03:00"), f"{TYPE_DOC}: ISO datetime with offset"
    assert "isInitialized" not in t, f"{TYPE_DOC}: no isInitialized in the type object"
    parents = [
        (r["entityTypeId"], r["isChildrenListEnabled"], r["isPredefined"])
        for r in t["relations"]["parent"]
    ]
    assert parents == [
        (3, "Y", "Y"),
        (4, "Y", "Y"),
        (1, "Y", "N"),
        (2, "Y", "N"),
        (31, "Y", "N"),
    ], f"{TYPE_DOC}: predefined client parents first, then the given ones in order"
    children = [(r["entityTypeId"], r["isChildrenListEnabled"]) for r in t["relations"]["child"]]
    assert children == [(3, "Y"), (4, "N")], (
        'crm-type-add.md: isChildrenListEnabled defaults to "false" (child 4 reads N)'
    )
    assert t["linkedUserFields"] == {
        "CALENDAR_EVENT|UF_CRM_CAL_EVENT": "Y",
        "TASKS_TASK|UF_CRM_TASK": "Y",
        "TASKS_TASK_TEMPLATE|UF_CRM_TASK": "N",
    }, f"{TYPE_DOC}: linkedUserFields names all three fields, Y/N"
    assert api.call("crm.type.getByEntityTypeId", {"entityTypeId": 2024})["type"] == t, (
        "crm-type-get-by-entity-type-id.md: the same type object"
    )


def test_type_add_and_update_answers(api: Sandbox) -> None:
    added = api.call("crm.type.add", {"fields": {"title": "A", "code": "a"}})
    assert list(added) == ["type"] and added["type"]["code"] == "a", (
        "crm-type-add.md: result.type; data-types.md#type lists code"
    )
    linked = api.call(
        "crm.type.add",
        {"fields": {"title": "B", "linkedUserFields": {"TASKS_TASK|UF_CRM_TASK": "true"}}},
    )["type"]
    assert linked["linkedUserFields"]["TASKS_TASK|UF_CRM_TASK"] == "N", (
        "crm-type-add.md: linkedUserFields counts only with isUseInUserfieldEnabled = Y"
    )
    yn = api.call(
        "crm.type.add",
        {
            "fields": {
                "title": "C",
                "isUseInUserfieldEnabled": "Y",
                "linkedUserFields": {"TASKS_TASK|UF_CRM_TASK": "Y"},
            }
        },
    )["type"]
    assert yn["linkedUserFields"]["TASKS_TASK|UF_CRM_TASK"] == "N", (
        'crm-type-add.md: Y/N are not supported for linkedUserFields, only "true"/"false"'
    )
    updated = api.call(
        "crm.type.update",
        {
            "id": yn["id"],
            "fields": {
                "isDocumentsEnabled": "Y",
                "linkedUserFields": {"TASKS_TASK|UF_CRM_TASK": "true"},
            },
        },
    )
    assert list(updated) == ["type"] and updated["type"]["isDocumentsEnabled"] == "Y", (
        "crm-type-update.md: result.type with the change"
    )
    assert updated["type"]["linkedUserFields"]["TASKS_TASK|UF_CRM_TASK"] == "Y", (
        "crm-type-update.md: linkedUserFields is updatable"
    )
    assert updated["type"]["isStagesEnabled"] == "N", (
        "crm-type-update.md: only the switches passed change"
    )
    api.call(
        "crm.type.update",
        {
            "id": yn["id"],
            "fields": {
                "relations": {
                    "parent": [
                        {"entityTypeId": 2, "isChildrenListEnabled": "true"},
                        {"entityTypeId": 999999, "isChildrenListEnabled": "true"},
                    ]
                }
            },
        },
    )
    parents = api.call("crm.type.get", {"id": yn["id"]})["type"]["relations"]["parent"]
    assert [r["entityTypeId"] for r in parents] == [2], (
        "crm-type-update.md: a link that cannot be saved is dropped without an error"
    )


def test_type_errors(api: Sandbox) -> None:
    err = call_error(api, "crm.type.get", {"id": 999})
    assert (err.code, err.description, err.status) == (0, "SPA not found", 400), (
        "crm-type-get.md: error 0 SPA not found, HTTP 400"
    )
    err = call_error(api, "crm.type.update", {"id": 999, "fields": {"title": "x"}})
    assert (err.code, err.description) == (0, "SPA not found"), "crm-type-update.md: error 0"
    err = call_error(api, "crm.type.getByEntityTypeId", {"entityTypeId": 1040})
    assert (err.code, err.description) == (0, "Smart process not found"), (
        "crm-type-get-by-entity-type-id.md: error 0 Smart process not found"
    )
    err = call_error(api, "crm.type.delete", {"id": 999})
    assert (err.code, err.description) == (0, "Smart process not found"), (
        "crm-type-delete.md: error 0 Smart process not found"
    )
    err = call_error(api, "crm.type.add", {})
    assert (err.code, err.description) == (100, "Could not find value for parameter {fields}"), (
        "crm-type-add.md: 100 without fields"
    )
    err = call_error(api, "crm.type.list", {"filter": {"nope": 1}})
    assert (err.code, err.description) == (
        "INVALID_ARG_VALUE",
        "Invalid filter: field 'nope' is not allowed in filter",
    ), "crm-type-list.md: unknown filter field"
    err = call_error(api, "crm.type.list", {"order": {"nope": "ASC"}})
    assert err.description == "Invalid order: field 'nope' is not allowed in order", (
        "crm-type-list.md: unknown order field"
    )
    err = call_error(api, "crm.type.list", {"order": {"id": "UP"}})
    assert err.description == (
        "Invalid order: allowed sort directions are ASC, DESC. But got 'UP' for field 'id'"
    ), "crm-type-list.md: bad direction"


def test_type_list_and_fields(rest: Rest) -> None:
    for title in ("Smart Process #5", "Smart Process #10", "Other"):
        rest.ok("crm.type.add", {"fields": {"title": title}})
    body = rest.raw(
        "crm.type.list",
        {
            "filter": {"0": {"logic": "OR", "0": {"%title": "5"}, "1": {"%title": "0"}}},
            "order": {"id": "DESC"},
        },
    ).json()
    assert [t["title"] for t in body["result"]["types"]] == [
        "Smart Process #10",
        "Smart Process #5",
    ], "crm-type-list.md: example 1, OR of %title"
    assert body["total"] == 2, "crm-type-list.md: total beside result"
    row = body["result"]["types"][0]
    assert list(row) == TYPE_KEYS, "crm-type-list.md: list rows stop at updatedBy"
    fields = rest.ok("crm.type.fields")["fields"]
    assert (
        fields["isClientEnabled"]["type"] == "boolean"
        and fields["isClientEnabled"]["upperName"] == "IS_CLIENT_ENABLED"
    ), "crm-type-fields.md: switches are boolean with upperName"
    assert fields["createdBy"]["type"] == "user" and fields["entityTypeId"]["isRequired"], (
        "crm-type-fields.md: createdBy is a user field; entityTypeId is required"
    )


def test_type_add_drops_code_reading() -> None:
    box = Sandbox(limits="off", readings={"type-add-drops-code"})
    try:
        added = box.call("crm.type.add", {"fields": {"title": "A", "code": "a"}})["type"]
        assert "code" not in added, "crm-type-add.md: the example answer has no code"
        got = box.call("crm.type.get", {"id": added["id"]})["type"]
        assert got["code"] == "", "crm-type-add.md's parameter table has no code: not kept"
        box.call("crm.type.update", {"id": added["id"], "fields": {"code": "a"}})
        assert box.call("crm.type.get", {"id": added["id"]})["type"]["code"] == "a", (
            "data-types.md#type: code is a field of the type; update keeps it"
        )
    finally:
        box.close()


def test_auth_errors_and_statuses(rest: Rest) -> None:
    bad = f"{rest.base}/rest/1/wrongsecret/"
    response = rest.raw("user.current", url=bad)
    assert (response.status_code, response.json()) == (
        401,
        {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"},
    ), "b24jssdk#500 (measured): 401 INVALID_CREDENTIALS for a wrong secret"
    token = rest.sandbox.add_webhook(5, ("user",))
    response = rest.raw("crm.deal.list", url=f"{rest.base}/rest/5/{token}/")
    assert response.status_code == 403 and response.json() == {
        "error": "insufficient_scope",
        "error_description": "The request requires higher privileges than provided by the "
        "webhook token",
    }, "_includes/system-errors.md: 403 insufficient_scope"
    response = rest.raw("crm.nothing.here")
    assert (
        response.status_code,
        response.json()["error"],
        response.json()["error_description"],
    ) == (404, "ERROR_METHOD_NOT_FOUND", "Method not found!"), (
        "_includes/system-errors.md: 404 ERROR_METHOD_NOT_FOUND"
    )


def test_auth_403_and_scope_401_readings() -> None:
    box = Sandbox(limits="off", readings={"auth-403", "scope-401"})
    try:
        rest = Rest(None, box, "http://sandbox.local", "inprocess")
        response = rest.raw("user.current", url="http://sandbox.local/rest/1/wrong/")
        assert (response.status_code, response.json()["error"]) == (403, "INVALID_CREDENTIALS"), (
            "_includes/system-errors.md: 403 INVALID_CREDENTIALS (the auth-403 reading)"
        )
        token = box.add_webhook(5, ("user",))
        response = rest.raw("crm.deal.list", url=f"http://sandbox.local/rest/5/{token}/")
        assert (response.status_code, response.json()["error"]) == (401, "insufficient_scope"), (
            "rest source, OAuthException: 401 insufficient_scope (the scope-401 reading)"
        )
    finally:
        box.close()


def test_oauth_insufficient_scope_text(sandbox: Sandbox) -> None:
    sandbox.register_app("app1", "secret", ("user",))
    token = sandbox.issue_tokens("app1")["access_token"]
    rest = Rest(None, sandbox, "http://sandbox.local", "inprocess")
    body = rest.raw("crm.deal.list", {"auth": token}, url="http://sandbox.local/rest/").json()
    assert body["error_description"].endswith("provided by the access token"), (
        "_includes/system-errors.md: for an application the message ends 'by the access token'"
    )


def test_batch_errors(rest: Rest) -> None:
    token = rest.sandbox.add_webhook(5, ("user",))
    url = f"{rest.base}/rest/5/{token}/"
    body = rest.raw(
        "batch", {"halt": 0, "cmd": {"get_user": "user.current", "deals": "crm.deal.list"}}, url=url
    ).json()
    assert rest.raw("batch", {"cmd": {}}, url=url).status_code == 200, (
        "batch.md: the batch call itself answers 200"
    )
    assert body["result"]["result_error"] == {
        "deals": {"error": "insufficient_scope", "error_description": ""}
    }, "batch.md: a sub-request's insufficient_scope has an empty description"
    assert body["result"]["result_total"] == [] and body["result"]["result_next"] == [], (
        "batch.md: empty result_total/result_next are []"
    )
    nested = rest.ok("batch", {"cmd": {"b": "batch?cmd[x]=user.current"}})
    assert nested["result_error"]["b"] == {
        "error": "ERROR_BATCH_METHOD_NOT_ALLOWED",
        "error_description": "Method is not allowed for batch usage",
    }, "batch.md: nested batch is ERROR_BATCH_METHOD_NOT_ALLOWED"
    many = rest.ok("batch", {"cmd": {f"c{i}": "server.time" for i in range(51)}})
    assert many["result_error"]["c50"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED", (
        "batch.md: commands past the 50th fail with ERROR_BATCH_LENGTH_EXCEEDED"
    )


def test_system_methods(rest: Rest) -> None:
    rest.sandbox.portal.add_user({"NAME": "Ольга", "ACTIVE": False}, 9)
    me = rest.ok("profile")
    assert list(me) == ["ID", "ADMIN", "NAME", "LAST_NAME", "PERSONAL_GENDER", "TIME_ZONE"], (
        "profile.md: the keys of the profile object"
    )
    assert me["ID"] == "1" and me["PERSONAL_GENDER"] == "" and me["TIME_ZONE"] == "", (
        'profile.md: ID a string; unset gender and time zone are ""'
    )
    assert rest.ok("method.get", {}) == {"isExisting": False, "isAvailable": False}, (
        "method-get.md: no name gives false/false"
    )
    common = rest.ok("methods", {"scope": ""})
    assert "batch" in common and "crm.deal.add" not in common, (
        "methods.md: scope without a value lists the common methods"
    )
    assert "crm.deal.add" in rest.ok("methods", {"scope": "crm"}), (
        "methods.md: scope lists that permission's methods"
    )
    time = rest.ok("server.time")
    assert len(time) == 25 and time[10] == "T", "server-time.md: YYYY-MM-DDThh:mm:ss±hh:mm"
    everyone = rest.raw("user.get", {}).json()
    assert everyone["total"] == 9 and everyone["result"][0]["ACTIVE"] is True, (
        "user-get.md: total beside result; ACTIVE a boolean"
    )
    active = rest.ok("user.get", {"FILTER": {"ACTIVE": True}})
    assert "9" not in [u["ID"] for u in active] and len(active) == 8, (
        "user-get.md: ACTIVE = true drops terminated users"
    )


def test_stage_history_values(api: Sandbox) -> None:
    deal = api.call("crm.deal.add", {"fields": {}})
    body = api.call("crm.stagehistory.list", {"entityTypeId": 2, "filter": {"OWNER_ID": deal}})
    row = body["items"][0]
    assert list(row) == [
        "ID",
        "TYPE_ID",
        "OWNER_ID",
        "CREATED_TIME",
        "CATEGORY_ID",
        "STAGE_SEMANTIC_ID",
        "STAGE_ID",
    ], "crm-stage-history-list.md / fast_bitrix24 real_responses/stagehistory.py: keys"
    assert (row["OWNER_ID"], row["TYPE_ID"], row["CATEGORY_ID"]) == (str(deal), "1", "0"), (
        "fast_bitrix24 real_responses/stagehistory.py: numbers are strings"
    )
    err = call_error(api, "crm.stagehistory.list", {"entityTypeId": 3})
    assert (err.code, err.description) == (
        "ENTITY_TYPE_NOT_SUPPORTED",
        "Entity type CONTACT is not supported",
    ), "crm-stage-history-list.md: Entity type `TYPE` is not supported"


def test_timeline_comment_rows(api: Sandbox) -> None:
    deal = api.call("crm.deal.add", {"fields": {}})
    for text in ("first", "second"):
        api.call(
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": text}},
        )
    rows = api.call(
        "crm.timeline.comment.list",
        {"filter": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal"}, "order": {"ID": "DESC"}},
    )
    assert list(rows[0]) == ["ID", "ENTITY_ID", "ENTITY_TYPE", "CREATED", "COMMENT", "AUTHOR_ID"], (
        "crm-timeline-comment-list.md: keys in example order"
    )
    assert [r["COMMENT"] for r in rows] == ["second", "first"], (
        "crm-timeline-comment-list.md: order by ID DESC"
    )
    assert rows[0]["ENTITY_ID"] == str(deal) and rows[0]["ENTITY_TYPE"] == "deal", (
        "crm-timeline-comment-list.md: ENTITY_ID a string, ENTITY_TYPE lowercase"
    )
    narrow = api.call(
        "crm.timeline.comment.list",
        {"filter": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal"}, "select": ["ID", "COMMENT"]},
    )
    assert list(narrow[0]) == ["ID", "COMMENT"], "crm-timeline-comment-list.md: select narrows"


def test_timeline_comment_list_needs_its_owner(api: Sandbox) -> None:
    deal = api.call("crm.deal.add", {"fields": {}})
    api.call(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": "x"}},
    )
    for flt in ({}, {"ENTITY_TYPE": "deal"}, {"ENTITY_ID": deal}):
        err = call_error(api, "crm.timeline.comment.list", {"filter": flt})
        assert (err.code, err.description, err.status) == ("", "Access denied.", 400), (
            f"crm-timeline-comment-list.md: filter* needs ENTITY_ID and ENTITY_TYPE ({flt})"
        )
    err = call_error(api, "crm.timeline.comment.list", {})
    assert err.description == "Access denied.", "crm-timeline-comment-list.md: filter is required"
