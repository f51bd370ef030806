"""One builder per entity action: each returns the executor Command with what it is (read,
create, update, delete) and how to find out, after an unanswered attempt, whether it
happened. The executor never reads a method's name to learn these.

| create | found again by | lookup |
| --- | --- | --- |
| crm.deal/contact/company/lead.add | ORIGINATOR_ID + ORIGIN_ID | crm.X.list, merged |
| crm.item.add | xmlId (or originatorId + originId) | crm.item.list, merged |
| crm.status.add | ENTITY_ID, then the code (as the portal may cut it) | crm.status.list |
| crm.deal.userfield.add | FIELD_NAME | crm.deal.userfield.list |
| userfieldconfig.add | entityId + fieldName | userfieldconfig.list |
| crm.type.add | code, or a code-less type of its title made since the run began | crm.type.list |
| crm.category.add (deals) | originatorId + originId | crm.category.list |
| crm.timeline.comment.add | b24kit's marker in the text | crm.timeline.comment.list |

| delete | gone when | probe |
| --- | --- | --- |
| crm.deal/contact/company/lead.delete | no row of the id | crm.X.list filtered by ID, merged |
| crm.item.delete | no item of the id | crm.item.list filtered by id, merged |

Lookups marked "merged" below are asked together: the keys of one failed batch in one list
command filtering by all their values (``@ORIGIN_ID``, ``@ID``, ``@xmlId``: the IN prefix
of crm-deal-list.md, crm-contact-list.md, crm-company-list.md, crm-lead-list.md,
crm-item-list.md); the others (structure, comments: their lists document no IN) one by one.

A delete carries a probe that tells whether the thing is gone: a delete sent again after
an unknown outcome may fail because the first attempt worked, and whether it did is
decided by looking, never by the error's wording (userfieldconfig.delete of a missing
field answers error "" "You cannot delete the user field", not NOT_FOUND).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from b24kit.client.executor import Command, Join, Pick, Ref
from b24kit.client.lookup import LookupKey
from b24kit.encoding import as_list
from b24kit.portal.ids import MARKER, EntityType, cut_forms, stage_code, stage_entity

Value = Any  # a value, or a Ref/Join the executor resolves
Extract = Callable[[Any, dict[str, Any]], Any | None]  # (lookup result, lookup params as sent)


# ------------------------------------------------------------------ extractors
def _first_id(result: Any, sent: dict[str, Any]) -> Any | None:
    rows = as_list(result)
    return int(rows[0]["ID"]) if rows else None


def _wrapped(
    list_key: str, one_key: str, match: Callable[[Mapping[str, Any]], bool] | None = None
) -> Extract:
    def extract(result: Any, sent: dict[str, Any]) -> Any | None:
        rows = result.get(list_key, []) if isinstance(result, Mapping) else []
        rows = [r for r in rows if match is None or match(r)]
        return {one_key: rows[0]} if rows else None

    return extract


def _absent(
    id_key: str, wanted: Value, list_key: str | None = None, filtered: bool = True
) -> Extract:
    """True when a well-formed answer has no row with the id; None (not known to be gone)
    when the thing is there, the answer is malformed, or a filter was ignored."""

    def extract(result: Any, sent: dict[str, Any]) -> Any | None:
        if list_key:
            if not isinstance(result, Mapping) or not isinstance(result.get(list_key), list):
                return None
            rows = result[list_key]
        elif isinstance(result, list):
            rows = result
        else:
            return None
        ids = [str(r.get(id_key)) for r in rows if isinstance(r, Mapping)]
        if str(wanted) in ids:
            return None
        if filtered and ids:
            return None  # rows of other ids: the filter was not applied, nothing is known
        return True

    return extract


def _present(value: Any) -> bool:
    return value not in (None, "")


def _label(value: Value) -> str:
    return f"<result of {value.command}>" if isinstance(value, Ref) else str(value)


# ------------------------------------------------------------------------ reads
def read(method: str, params: dict[str, Any], name: str = "") -> Command:
    return Command(method, params, name=name, kind="read")


# ------------------------------------------------ deals, contacts, companies, leads
OLD_ENTITIES = ("deal", "contact", "company", "lead")


def entity_add(entity: str, fields: dict[str, Any], name: str = "") -> Command:
    """crm.{entity}.add; found again by ORIGINATOR_ID + ORIGIN_ID when both are set."""
    assert entity in OLD_ENTITIES, entity
    key = None
    originator, origin = fields.get("ORIGINATOR_ID"), fields.get("ORIGIN_ID")
    if _present(originator) and _present(origin):
        key = LookupKey(
            f"crm.{entity}.list",
            {"filter": {"ORIGINATOR_ID": originator, "ORIGIN_ID": origin}, "select": ["ID"]},
            _first_id,
            f"{originator}/{origin}",
            merge="ORIGIN_ID",  # crm-deal-list.md: `@` - IN, an array is passed as the value
        )
    return Command(f"crm.{entity}.add", {"fields": fields}, name=name, kind="create", key=key)


def entity_update(entity: str, ident: Value, fields: dict[str, Any], name: str = "") -> Command:
    assert entity in OLD_ENTITIES, entity
    return Command(
        f"crm.{entity}.update", {"id": ident, "fields": fields}, name=name, kind="update"
    )


def entity_delete(entity: str, ident: Value, name: str = "") -> Command:
    assert entity in OLD_ENTITIES, entity
    gone = LookupKey(
        f"crm.{entity}.list",
        {"filter": {"ID": ident}, "select": ["ID"]},
        _absent("ID", ident),
        f"crm.{entity}.delete {_label(ident)}",
        merge="ID",
    )
    return Command(f"crm.{entity}.delete", {"id": ident}, name=name, kind="delete", gone=gone)


# ------------------------------------------------------------ smart-process items
def item_add(
    etid: Value, fields: dict[str, Any], name: str = "", original_names: bool = False
) -> Command:
    """crm.item.add; found again by xmlId, or originatorId + originId."""
    key = None
    if _present(fields.get("xmlId")):
        flt: dict[str, Any] = {"xmlId": fields["xmlId"]}
    elif _present(fields.get("originatorId")) and _present(fields.get("originId")):
        flt = {"originatorId": fields["originatorId"], "originId": fields["originId"]}
    else:
        flt = {}
    if flt:
        key = LookupKey(
            "crm.item.list",
            {"entityTypeId": etid, "filter": flt, "select": ["*"]},
            _wrapped("items", "item"),
            str(flt),
            merge="xmlId" if "xmlId" in flt else "originId",  # crm-item-list.md: `@` - IN
            rows="items",
        )
    params: dict[str, Any] = {"entityTypeId": etid, "fields": fields}
    if original_names:
        params["useOriginalUfNames"] = "Y"
    return Command("crm.item.add", params, name=name, kind="create", key=key)


def item_update(
    etid: Value, ident: Value, fields: dict[str, Any], name: str = "", original_names: bool = False
) -> Command:
    params: dict[str, Any] = {"entityTypeId": etid, "id": ident, "fields": fields}
    if original_names:  # fields named UF_CRM_{type id}_CODE, not ufCrm{type id}Code
        params["useOriginalUfNames"] = "Y"
    return Command("crm.item.update", params, name=name, kind="update")


def item_delete(etid: Value, ident: Value, name: str = "") -> Command:
    """crm.item.delete (crm-item-delete.md); gone when crm.item.list filtered by the id has
    no row of it."""
    gone = LookupKey(
        "crm.item.list",
        {"entityTypeId": etid, "filter": {"id": ident}, "select": ["id"]},
        _absent("id", ident, "items"),
        f"crm.item.delete {_label(ident)}",
        merge="id",
        rows="items",
    )
    return Command(
        "crm.item.delete",
        {"entityTypeId": etid, "id": ident},
        name=name,
        kind="delete",
        gone=gone,
    )


def move_items(etid: int, ids: list[int], target: str, name: str) -> list[Command]:
    """Move items to stage ``target``: one update per item (the step before a stage they
    are in is deleted)."""
    if etid == EntityType.DEAL:
        return [
            entity_update("deal", i, {"STAGE_ID": target}, name=f"{name}_{n}")
            for n, i in enumerate(ids)
        ]
    return [
        item_update(etid, i, {"stageId": target}, name=f"{name}_{n}") for n, i in enumerate(ids)
    ]


# --------------------------------------------------------------------- stages
def status_add(entity_id: Value, code: str, fields: dict[str, Any], name: str = "") -> Command:
    """crm.status.add of stage ``code`` in the pipeline whose stages are ``entity_id`` (a
    value, or a reference to a pipeline made in the same run). Found again among that
    pipeline's stages by its code, as the portal keeps it (deal ids are cut)."""
    forms = cut_forms(code)

    def same(result: Any, sent: dict[str, Any]) -> Any | None:
        for row in as_list(result):
            if isinstance(row, Mapping) and stage_code(str(row.get("STATUS_ID", ""))) in forms:
                return int(row["ID"])
        return None

    key = LookupKey(
        "crm.status.list", {"filter": {"ENTITY_ID": entity_id}}, same, f"{_label(entity_id)}/{code}"
    )
    return Command(
        "crm.status.add",
        {"fields": {"ENTITY_ID": entity_id, "STATUS_ID": code, **fields}},
        name=name,
        kind="create",
        key=key,
    )


def status_update(
    row_id: Value, fields: dict[str, Any], name: str = "", optional: bool = False
) -> Command:
    return Command(
        "crm.status.update",
        {"id": row_id, "fields": fields},
        name=name,
        kind="update",
        optional=optional,
    )


def status_delete(
    row_id: Value, system: bool = False, name: str = "", optional: bool = False
) -> Command:
    params: dict[str, Any] = {"id": row_id}
    if system:
        params["params"] = {"FORCED": "Y"}
    gone = LookupKey(
        "crm.status.list",
        {"filter": {"ID": row_id}},
        _absent("ID", row_id),
        f"crm.status.delete {_label(row_id)}",
    )
    return Command(
        "crm.status.delete", params, name=name, kind="delete", gone=gone, optional=optional
    )


def pipeline_stages(entity_id: Value, name: str) -> Command:
    """Read a pipeline's stages (to find the rows a new pipeline came with)."""
    return read(
        "crm.status.list", {"filter": {"ENTITY_ID": entity_id}, "order": {"ID": "ASC"}}, name=name
    )


def stage_row(read_name: str, code: str) -> Ref:
    """The row id of stage ``code`` among the rows ``read_name`` read (as the portal may
    have cut it)."""
    return Ref(read_name, pick=Pick("STATUS_ID", cut_forms(code)), then=("ID",))


# ------------------------------------------------------------------ pipelines
def category_add(etid: Value, fields: dict[str, Any], name: str = "") -> Command:
    """crm.category.add; a deal pipeline tagged originatorId + originId is found again."""
    key = None
    if _present(fields.get("originatorId")) and _present(fields.get("originId")):
        pair = (str(fields["originatorId"]), str(fields["originId"]))

        def same(row: Mapping[str, Any]) -> bool:
            return (str(row.get("originatorId")), str(row.get("originId"))) == pair

        key = LookupKey(
            "crm.category.list",
            {"entityTypeId": etid},
            _wrapped("categories", "category", same),
            "/".join(pair),
        )
    return Command(
        "crm.category.add",
        {"entityTypeId": etid, "fields": fields},
        name=name,
        kind="create",
        key=key,
    )


def category_update(etid: Value, ident: Value, fields: dict[str, Any], name: str = "") -> Command:
    return Command(
        "crm.category.update",
        {"entityTypeId": etid, "id": ident, "fields": fields},
        name=name,
        kind="update",
    )


def category_delete(etid: Value, ident: Value, name: str = "") -> Command:
    # crm-category-list.md documents no filter: the whole list of the entity
    gone = LookupKey(
        "crm.category.list",
        {"entityTypeId": etid},
        _absent("id", ident, "categories", filtered=False),
        f"crm.category.delete {_label(ident)}",
    )
    return Command(
        "crm.category.delete",
        {"entityTypeId": etid, "id": ident},
        name=name,
        kind="delete",
        gone=gone,
    )


def categories(etid: Value, name: str) -> Command:
    return read("crm.category.list", {"entityTypeId": etid}, name=name)


def default_category(read_name: str) -> Ref:
    """The id of the default pipeline among the pipelines ``read_name`` read."""
    return Ref(read_name, ("categories",), pick=Pick("isDefault", ("Y",)), then=("id",))


def spa_stage_entity(etid: Value, category: Value) -> Value:
    """The crm.status ENTITY_ID of a smart-process pipeline's stages."""
    if isinstance(etid, (Ref, Join)) or isinstance(category, (Ref, Join)):
        return Join(("DYNAMIC_", etid, "_STAGE_", category))
    return stage_entity(etid, category)


# -------------------------------------------------------------- custom fields
def deal_field_add(fields: dict[str, Any], name: str = "") -> Command:
    field_name = str(fields["FIELD_NAME"])
    key = LookupKey(
        "crm.deal.userfield.list", {"filter": {"FIELD_NAME": field_name}}, _first_id, field_name
    )
    return Command("crm.deal.userfield.add", {"fields": fields}, name=name, kind="create", key=key)


def deal_field_update(ident: int, fields: dict[str, Any], name: str = "") -> Command:
    return Command(
        "crm.deal.userfield.update", {"id": ident, "fields": fields}, name=name, kind="update"
    )


def deal_field_delete(ident: int, name: str = "") -> Command:
    gone = LookupKey(
        "crm.deal.userfield.list",
        {"filter": {"ID": ident}},
        _absent("ID", ident),
        f"crm.deal.userfield.delete {ident}",
    )
    return Command("crm.deal.userfield.delete", {"id": ident}, name=name, kind="delete", gone=gone)


def spa_field_add(field: dict[str, Any], name: str = "") -> Command:
    """userfieldconfig.add; found again by entityId + fieldName, every row checked (the
    list's entityId filter is not documented as honoured)."""

    def extract(result: Any, sent: dict[str, Any]) -> Any | None:
        want = (str(sent["filter"]["entityId"]), str(sent["filter"]["fieldName"]))
        rows = result.get("fields", []) if isinstance(result, Mapping) else []
        for row in rows:
            if (str(row.get("entityId")), str(row.get("fieldName"))) == want:
                return {"field": row}
        return None

    flt = {"entityId": field["entityId"], "fieldName": field["fieldName"]}
    key = LookupKey(
        "userfieldconfig.list",
        {"moduleId": "crm", "filter": flt},
        extract,
        _label(field["fieldName"]),
    )
    return Command(
        "userfieldconfig.add",
        {"moduleId": "crm", "field": field},
        name=name,
        kind="create",
        key=key,
    )


def spa_field_update(ident: int, field: dict[str, Any], name: str = "") -> Command:
    return Command(
        "userfieldconfig.update",
        {"moduleId": "crm", "id": ident, "field": field},
        name=name,
        kind="update",
    )


def spa_field_delete(ident: int, name: str = "") -> Command:
    gone = LookupKey(
        "userfieldconfig.list",
        {"moduleId": "crm", "filter": {"id": ident}},
        _absent("id", ident, "fields"),
        f"userfieldconfig.delete {ident}",
    )
    return Command(
        "userfieldconfig.delete",
        {"moduleId": "crm", "id": ident},
        name=name,
        kind="delete",
        gone=gone,
    )


# ------------------------------------------------------------- smart processes
def type_add(fields: dict[str, Any], name: str = "") -> Command:
    """crm.type.add; found again by code, or, since the portal may not keep the code
    (crm-type-add.md's table omits it), as a code-less type of its title made since just
    before the command was built (a client's own type of that title is older)."""
    code, title = str(fields.get("code") or ""), str(fields.get("title") or "")
    since = time.time() - 300  # allows for the portal's clock being behind ours

    def same_type(row: Mapping[str, Any]) -> bool:
        if code and str(row.get("code") or "") == code:
            return True
        if row.get("code") or not title or str(row.get("title")) != title:
            return False
        try:
            made = datetime.fromisoformat(str(row.get("createdTime"))).timestamp()
        except ValueError:
            return False
        return made >= since

    key = None
    if _present(fields.get("entityTypeId")):
        flt = {"entityTypeId": fields["entityTypeId"]}
        key = LookupKey("crm.type.list", {"filter": flt}, _wrapped("types", "type"), str(flt))
    elif code:
        key = LookupKey(
            "crm.type.list",
            {"order": {"id": "DESC"}},
            _wrapped("types", "type", same_type),
            f"code={code}",
        )
    return Command("crm.type.add", {"fields": fields}, name=name, kind="create", key=key)


def type_update(ident: Value, fields: dict[str, Any], name: str = "") -> Command:
    return Command("crm.type.update", {"id": ident, "fields": fields}, name=name, kind="update")


def type_delete(ident: int, name: str = "") -> Command:
    gone = LookupKey(
        "crm.type.list",
        {"filter": {"id": ident}},
        _absent("id", ident, "types"),
        f"crm.type.delete {ident}",
    )
    return Command("crm.type.delete", {"id": ident}, name=name, kind="delete", gone=gone)


# ------------------------------------------------------------------ timeline
def comment_update(comment_id: int, text: str, name: str = "") -> Command:
    """crm.timeline.comment.update (crm-timeline-comment-update.md): the text of a comment;
    repeating it is harmless."""
    return Command(
        "crm.timeline.comment.update",
        {"id": comment_id, "fields": {"COMMENT": text}},
        name=name,
        kind="update",
    )


def comment_add(entity_type: str, entity_id: Value, text: str, name: str = "") -> Command:
    """crm.timeline.comment.add; found again by b24kit's marker in its text (the list is
    filtered by both ENTITY_ID and ENTITY_TYPE, crm-timeline-comment-list.md)."""
    fields = {"ENTITY_ID": entity_id, "ENTITY_TYPE": entity_type, "COMMENT": text}
    marker = MARKER.search(text)
    key = None
    if marker:
        wanted = marker.group(0)

        def has_marker(result: Any, sent: dict[str, Any]) -> Any | None:
            for row in as_list(result):
                if wanted in str(row.get("COMMENT", "")):
                    return int(row["ID"])
            return None

        key = LookupKey(
            "crm.timeline.comment.list",
            {"filter": {"ENTITY_ID": entity_id, "ENTITY_TYPE": entity_type}},
            has_marker,
            wanted,
        )
    return Command(
        "crm.timeline.comment.add", {"fields": fields}, name=name, kind="create", key=key
    )
