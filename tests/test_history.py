"""crm.stagehistory.list, crm.timeline.comment.*, crm.duplicate.findbycomm (API notes §11-12)."""

from __future__ import annotations

from datetime import datetime

from b24kit.sandbox import Sandbox
from tests.conftest import call_error


def test_stage_history_is_written_on_every_change(api: Sandbox) -> None:
    cid = api.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "L"}})["category"][
        "id"
    ]
    deal = api.call("crm.deal.add", {"fields": {"TITLE": "t"}})
    api.call("crm.deal.update", {"id": deal, "fields": {"STAGE_ID": "PREPARATION"}})
    api.call("crm.deal.update", {"id": deal, "fields": {"TITLE": "only title"}})
    api.call("crm.deal.update", {"id": deal, "fields": {"STAGE_ID": "WON"}})
    api.call("crm.item.update", {"entityTypeId": 2, "id": deal, "fields": {"categoryId": cid}})
    rows = api.call(
        "crm.stagehistory.list",
        {"entityTypeId": 2, "filter": {"OWNER_ID": deal}, "order": {"ID": "ASC"}},
    )["items"]
    assert [r["TYPE_ID"] for r in rows] == ["1", "2", "3", "5"], (
        "§12.1: created, moved, moved to final, funnel changed; no row for a title change"
    )
    assert [r["STAGE_ID"] for r in rows] == ["NEW", "PREPARATION", "WON", f"C{cid}:NEW"]
    assert rows[2]["STAGE_SEMANTIC_ID"] == "S" and rows[3]["CATEGORY_ID"] == str(cid), (
        "fast_bitrix24 real_responses/stagehistory.py: numbers are strings"
    )
    stamp = datetime.fromisoformat(rows[0]["CREATED_TIME"])
    assert abs(stamp.timestamp() - datetime.now().timestamp()) < 60, "§12.1: real timestamps"


def test_stage_history_filters_and_paging(api: Sandbox) -> None:
    for _ in range(60):
        api.call("crm.deal.add", {"fields": {}})
    page = api.call(
        "crm.stagehistory.list",
        {"entityTypeId": 2, "filter": {">OWNER_ID": 5}, "select": ["ID", "OWNER_ID"]},
    )
    assert len(page["items"]) == 50 and set(page["items"][0]) == {"ID", "OWNER_ID"}
    err = call_error(api, "crm.stagehistory.list", {"entityTypeId": 3})
    assert err.code == "ENTITY_TYPE_NOT_SUPPORTED", "§12.1: contacts have no stage history"
    err = call_error(api, "crm.stagehistory.list", {"entityTypeId": 2, "filter": {"X": 1}})
    assert err.code == "INVALID_ARG_VALUE"


def test_timeline_comments(api: Sandbox) -> None:
    deal = api.call("crm.deal.add", {"fields": {}})
    cid = api.call(
        "crm.timeline.comment.add",
        {
            "fields": {
                "ENTITY_ID": deal,
                "ENTITY_TYPE": "deal",
                "COMMENT": "Подрядчик: ООО Тягач, 5★",
            }
        },
    )
    assert isinstance(cid, int), "§12.2: returns the new id"
    listed = api.call(
        "crm.timeline.comment.list", {"filter": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal"}}
    )
    assert listed[0]["COMMENT"] == "Подрядчик: ООО Тягач, 5★"
    err = call_error(
        api,
        "crm.timeline.comment.add",
        {"FIELDS": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": "x"}},
    )
    assert err.code == 100, "§12.2: only lowercase fields is accepted"
    err = call_error(
        api,
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": 999, "ENTITY_TYPE": "deal", "COMMENT": "x"}},
    )
    assert err.code == "OWNER_NOT_FOUND"
    err = call_error(
        api,
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": " "}},
    )
    assert err.code == "INVALID_ARG_VALUE", "§12.2: empty comment"


def test_duplicates_by_phone_and_email(api: Sandbox) -> None:
    a = api.call(
        "crm.contact.add",
        {
            "fields": {
                "PHONE": [{"VALUE": "8 (900) 123-45-67"}],
                "EMAIL": [{"VALUE": "Ivan@Example.ru"}],
            }
        },
    )
    b = api.call("crm.company.add", {"fields": {"PHONE": [{"VALUE": "+79001234567"}]}})
    found = api.call("crm.duplicate.findbycomm", {"type": "PHONE", "values": ["9001234567"]})
    assert found == {"CONTACT": [a], "COMPANY": [b]}, "§11: phones match in any Russian shape"
    only = api.call(
        "crm.duplicate.findbycomm",
        {"type": "PHONE", "values": ["+7 900 123 45 67"], "entity_type": "CONTACT"},
    )
    assert only == {"CONTACT": [a]}, "§11: entity_type narrows"
    assert api.call(
        "crm.duplicate.findbycomm", {"type": "EMAIL", "values": ["ivan@example.RU"]}
    ) == {"CONTACT": [a]}
    assert api.call("crm.duplicate.findbycomm", {"type": "PHONE", "values": ["1"]}) == [], (
        "§11: no hits gives []"
    )
    assert (
        call_error(api, "crm.duplicate.findbycomm", {"values": ["1"]}).description
        == "Communication type is not defined"
    )
    assert (
        call_error(api, "crm.duplicate.findbycomm", {"type": "PHONE"}).description
        == "Communication values is not defined"
    )
    assert (
        "not supported"
        in call_error(api, "crm.duplicate.findbycomm", {"type": "FAX", "values": ["1"]}).description
    )


def test_timeline_comment_update(api: Sandbox) -> None:
    deal = api.call("crm.deal.add", {"fields": {"TITLE": "x"}})
    comment = api.call(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": "было"}},
    )
    answer = api.call(
        "crm.timeline.comment.update", {"id": comment, "fields": {"COMMENT": "стало"}}
    )
    assert answer == comment, "crm-timeline-comment-update.md: result is the comment's id"
    rows = api.call(
        "crm.timeline.comment.list", {"filter": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal"}}
    )
    assert [r["COMMENT"] for r in rows] == ["стало"]
    missing = call_error(
        api, "crm.timeline.comment.update", {"id": 999, "fields": {"COMMENT": "x"}}
    )
    assert (missing.code, missing.description, missing.status) == (
        "NOT_FOUND",
        "Not found.",
        400,
    ), "crm-timeline-comment-update.md: Error Handling"
    empty = call_error(
        api, "crm.timeline.comment.update", {"id": comment, "fields": {"COMMENT": ""}}
    )
    assert empty.code == "INVALID_ARG_VALUE", "crm-timeline-comment-update.md: empty comment"


def test_deleting_an_entity_deletes_its_timeline_comments(api: Sandbox) -> None:
    """crm-deal-delete.md: deleting a deal removes "all related objects, such as CRM
    activities, history, Timeline activities"; another entity's comments stay."""
    gone, kept = (api.call("crm.deal.add", {"fields": {"TITLE": t}}) for t in ("a", "b"))
    for deal in (gone, kept):
        api.call(
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": "текст"}},
        )
    assert api.call("crm.deal.delete", {"id": gone}) is True
    left = api.portal.db.all("SELECT entity_id FROM timeline_comments")
    assert [int(r["entity_id"]) for r in left] == [kept]
