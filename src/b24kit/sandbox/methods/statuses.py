"""crm.status.* — stages and other dictionaries (API notes §6)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from copy import deepcopy
from typing import Any

from b24kit.encoding import as_list
from b24kit.sandbox import errors
from b24kit.sandbox.fields import DEAL
from b24kit.sandbox.portal import DEAL_STAGE_MAX, DICTIONARIES, PAGE, STAGE_CODE, status_row
from b24kit.sandbox.registry import CallContext, Paged, arg, method
from b24kit.sandbox.values import intval

DEFAULT_COLOR = "#ACE9FB"  # assumption: the colour a stage added without COLOR gets
LIST_COLUMNS = {
    "ID": "id",
    "ENTITY_ID": "entity_id",
    "STATUS_ID": "status_id",
    "NAME": "name",
    "SORT": "sort",
    "SYSTEM": "system",
    "CATEGORY_ID": "category_id",
    "SEMANTICS": "semantics",
    "COLOR": "color",
}


def _field(
    type_: str,
    title: str,
    required: bool = False,
    read_only: bool = False,
    immutable: bool = False,
) -> dict[str, Any]:
    return {
        "type": type_,
        "isRequired": required,
        "isReadOnly": read_only,
        "isImmutable": immutable,
        "isMultiple": False,
        "isDynamic": False,
        "title": title,
    }


# crm-status-fields.md, example response, key by key.
FIELDS = {
    "ID": _field("integer", "ID", read_only=True),
    "ENTITY_ID": _field("string", "Entity ID", required=True, immutable=True),
    "STATUS_ID": _field("string", "Status", required=True, immutable=True),
    "SORT": _field("integer", "Sorting"),
    "NAME": _field("string", "Name", required=True),
    "NAME_INIT": _field("string", "Default Name", read_only=True),
    "SYSTEM": _field("char", "System", read_only=True),
    "CATEGORY_ID": _field("integer", "CATEGORY_ID", immutable=True),
    "COLOR": _field("string", "COLOR"),
    "SEMANTICS": _field("char", "SEMANTICS", immutable=True),
    "EXTRA": _field("crm_status_extra", "Additional Fields"),
}
# crm-status-add.md, "Restrictions for STATUS_ID": lead and quote stages take Latin letters,
# digits, '-' and '_' only, at most 21 / 22 characters.
CODE_LIMITS = {"STATUS": 21, "QUOTE_STATUS": 22}
# crm-status-entity-types.md, example: the non-stage directories, in its order and wording.
LEAD_SEMANTICS = {
    "START_FIELD": "NEW",
    "FINAL_SUCCESS_FIELD": "CONVERTED",
    "FINAL_UNSUCCESS_FIELD": "JUNK",
    "FINAL_SORT": 0,
}
QUOTE_SEMANTICS = {
    "START_FIELD": "DRAFT",
    "FINAL_SUCCESS_FIELD": "APPROVED",
    "FINAL_UNSUCCESS_FIELD": "DECLAINED",
    "FINAL_SORT": 0,
}
HEAD_TYPES: list[dict[str, Any]] = [
    {"ID": "STATUS", "NAME": "Lead stages", "SEMANTIC_INFO": LEAD_SEMANTICS, "ENTITY_TYPE_ID": 1},
    {"ID": "SOURCE", "NAME": "Sources"},
    {"ID": "CONTACT_TYPE", "NAME": "Contact type"},
    {"ID": "COMPANY_TYPE", "NAME": "Company type"},
    {"ID": "EMPLOYEES", "NAME": "Number of employees"},
    {"ID": "INDUSTRY", "NAME": "Industry"},
    {"ID": "DEAL_TYPE", "NAME": "Deal type"},
]
MIDDLE_TYPES: list[dict[str, Any]] = [
    {
        "ID": "QUOTE_STATUS",
        "NAME": "Quote stages",
        "SEMANTIC_INFO": QUOTE_SEMANTICS,
        "ENTITY_TYPE_ID": 7,
    },
    {"ID": "HONORIFIC", "NAME": "Inquiries"},
    {"ID": "CALL_LIST", "NAME": "Call statuses"},
]
KNOWN_DIRECTORIES = frozenset(t["ID"] for t in HEAD_TYPES + MIDDLE_TYPES)


def _row(ctx: CallContext, params: Mapping[str, Any]) -> sqlite3.Row:
    status_id = intval(arg(params, "id"))
    if status_id <= 0:
        raise errors.old_style("Invalid identifier.")
    row = ctx.portal.db.one("SELECT * FROM statuses WHERE id = ?", (status_id,))
    if row is None:
        raise errors.old_style("Status is not found.")
    return row


def _known_entity(ctx: CallContext, entity_id: str) -> bool:
    stage = ctx.portal.parse_stage_entity(entity_id)
    if stage is not None:
        etid, category_id = stage
        return ctx.portal.category(etid, category_id) is not None
    return (
        entity_id in DICTIONARIES
        or entity_id in KNOWN_DIRECTORIES
        or ctx.portal.db.one("SELECT 1 FROM statuses WHERE entity_id = ? LIMIT 1", (entity_id,))
        is not None
    )


@method("crm.status.fields", "crm")
def fields(ctx: CallContext, params: dict[str, Any]) -> Any:
    return FIELDS


@method("crm.status.list", "crm")
def list_(ctx: CallContext, params: dict[str, Any]) -> Any:
    flt = arg(params, "filter") or {}
    order = arg(params, "order") or {"SORT": "ASC"}
    if not isinstance(flt, Mapping) or not isinstance(order, Mapping):
        raise errors.old_style("Invalid parameters.")
    where: list[str] = []
    values: list[Any] = []
    for key, value in flt.items():
        column = LIST_COLUMNS.get(str(key).upper())
        if column is None:
            continue
        if isinstance(value, (Mapping, list)):
            items = as_list(value)
            where.append(f"{column} IN ({','.join('?' * len(items))})" if items else "0")
            values.extend(items)
        else:
            where.append(f"{column} = ?")
            values.append(value)
    terms = []
    for key, direction in order.items():
        column = LIST_COLUMNS.get(str(key).upper())
        if column:
            terms.append(f"{column} {'DESC' if str(direction).upper() == 'DESC' else 'ASC'}")
    terms.append("id ASC")
    rows = ctx.portal.db.all(
        f"SELECT * FROM statuses WHERE {' AND '.join(where) or '1'} ORDER BY {', '.join(terms)}",
        values,
    )
    if "status-list-pages" in ctx.portal.readings:
        # Reading "status-list-pages": the comment in crm-status-list.md's JS example says
        # "returns a single page (max 50 records)"; its response example shows no paging.
        offset = max(ctx.start, 0)
        page = rows[offset : offset + PAGE]
        if ctx.start < 0:  # as crm.deal.list: no count, no total, no next
            return Paged([status_row(r) for r in page])
        nxt = offset + PAGE if offset + PAGE < len(rows) else None
        return Paged([status_row(r) for r in page], len(rows), nxt)
    return Paged([status_row(r) for r in rows], len(rows))


@method("crm.status.get", "crm")
def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    return status_row(_row(ctx, params))


@method("crm.status.add", "crm")
def add(ctx: CallContext, params: dict[str, Any]) -> Any:
    fields = _fields_to_add(params)
    entity_id = str(fields["ENTITY_ID"]).strip()
    if not _known_entity(ctx, entity_id):
        raise errors.old_style("Specified entity type is not supported.")
    status_id = str(fields["STATUS_ID"]).strip()
    sort = intval(fields["SORT"]) if fields.get("SORT") not in (None, "") else 10
    semantics = str(fields.get("SEMANTICS") or "").upper() or None
    if semantics not in (None, "S", "F"):
        semantics = None
    stage = ctx.portal.parse_stage_entity(entity_id)
    category_id: int | None = None
    extra: str | None = None
    if stage is not None:
        status_id, category_id, extra = _new_stage(
            ctx, entity_id, stage, status_id, sort, semantics
        )
    else:
        _check_status_code(entity_id, status_id)
    exists = ctx.portal.db.one(
        "SELECT 1 FROM statuses WHERE entity_id = ? AND status_id = ?", (entity_id, status_id)
    )
    if exists:
        raise errors.core("The specified status ID already exists.")
    with ctx.portal.db.transaction():
        cur = ctx.portal.db.execute(
            "INSERT INTO statuses(entity_id, status_id, name, sort, system, category_id, color, "
            "semantics, extra_semantics) VALUES(?, ?, ?, ?, 'N', ?, ?, ?, ?)",
            (
                entity_id,
                status_id,
                str(fields["NAME"]),
                sort,
                category_id,
                str(fields.get("COLOR") or DEFAULT_COLOR),
                semantics,
                extra,
            ),
        )
    return cur.lastrowid


def _fields_to_add(params: dict[str, Any]) -> dict[str, Any]:
    """The fields of crm.status.add, keys upper-cased; ENTITY_ID, STATUS_ID and NAME are
    required (every missing one named in one error)."""
    raw = arg(params, "fields")
    if not isinstance(raw, Mapping):
        raise errors.old_style("Parameter 'fields' must be array.")
    fields = {str(k).upper(): v for k, v in raw.items()}
    missing = [
        f"The field {name} is required."
        for name in ("ENTITY_ID", "STATUS_ID")
        if not str(fields.get(name) or "").strip()
    ]
    if not str(fields.get("NAME") or "").strip():
        missing.append("The field Title is required.")
    if missing:
        raise errors.old_style(" ".join(missing))
    return fields


def _new_stage(
    ctx: CallContext,
    entity_id: str,
    stage: tuple[int, int],
    status_id: str,
    sort: int,
    semantics: str | None,
) -> tuple[str, int | None, str | None]:
    """A new stage of pipeline ``stage`` (entity type id, category id): its STATUS_ID
    (prefixed, a deal's cut), its CATEGORY_ID (None for the default deal pipeline's
    ``DEAL_STAGE``) and its extra semantics (deals only)."""
    etid, category_id = stage
    extra: str | None = None
    prefix = ctx.portal.stage_prefix(etid, category_id)
    if prefix and not status_id.startswith(prefix):
        status_id = prefix + status_id
    code = status_id[len(prefix) :]
    if not STAGE_CODE.match(code):
        raise errors.old_style("Error on creating status.")
    if etid == DEAL:
        status_id = status_id[:DEAL_STAGE_MAX]
        extra = {"S": "success", "F": "failure"}.get(semantics or "", "process")
    _check_stage_order(ctx.portal.stages(etid, category_id), etid, sort, semantics)
    return status_id, None if entity_id == "DEAL_STAGE" else category_id, extra


def _check_stage_order(
    stages: list[sqlite3.Row], etid: int, sort: int, semantics: str | None
) -> None:
    """A pipeline has one success stage, and a deal pipeline no in-progress stage sorted
    after it."""
    if semantics == "S" and any(r["semantics"] == "S" for r in stages):
        raise errors.old_style("Error on creating status.")
    won = next((r for r in stages if r["semantics"] == "S"), None)
    if etid == DEAL and semantics is None and won is not None and sort > won["sort"]:
        raise errors.old_style(
            "Cannot create more stages after the final stage because the final successful "
            "stage already exists. Try using sort order values less than that of the final "
            "stage."
        )


def _check_status_code(entity_id: str, status_id: str) -> None:
    """The STATUS_ID of an entry of another dictionary: a code within the dictionary's
    limit, or up to 50 characters."""
    if entity_id in CODE_LIMITS:
        if not STAGE_CODE.match(status_id) or len(status_id) > CODE_LIMITS[entity_id]:
            raise errors.old_style("Error on creating status.")
    elif len(status_id) > 50:
        raise errors.old_style("Error on creating status.")


@method("crm.status.update", "crm")
def update(ctx: CallContext, params: dict[str, Any]) -> Any:
    row = _row(ctx, params)
    raw = arg(params, "fields")
    if not isinstance(raw, Mapping):
        raise errors.old_style("Parameter 'fields' must be array.")
    fields = {str(k).upper(): v for k, v in raw.items()}
    sets: list[str] = []
    values: list[Any] = []
    if "NAME" in fields:
        if not str(fields["NAME"] or "").strip():
            raise errors.old_style("The field Title is required.")
        sets.append("name = ?")
        values.append(str(fields["NAME"]))
    if fields.get("SORT") not in (None, ""):
        sets.append("sort = ?")
        values.append(intval(fields["SORT"]))
    if fields.get("COLOR") not in (None, ""):
        sets.append("color = ?")
        values.append(str(fields["COLOR"]))
    if sets:
        with ctx.portal.db.transaction():
            ctx.portal.db.execute(
                f"UPDATE statuses SET {', '.join(sets)} WHERE id = ?", (*values, row["id"])
            )
    return True


@method("crm.status.delete", "crm")
def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    row = _row(ctx, params)
    extra = arg(params, "params") or {}
    forced = isinstance(extra, Mapping) and str(extra.get("FORCED", "")).upper() == "Y"
    if row["system"] == "Y" and not forced:
        raise errors.old_style(
            'CRM System Status can be deleted only if parameter FORCED is specified and equal to "Y".'
        )
    stage = ctx.portal.parse_stage_entity(row["entity_id"])
    if stage is not None:
        etid = stage[0]
        if ctx.portal.count_items(
            etid, "json_extract(data, '$.STAGE_ID') = ?", (row["status_id"],)
        ):
            raise errors.old_style("There are active items in this status.")
    with ctx.portal.db.transaction():
        ctx.portal.db.execute("DELETE FROM statuses WHERE id = ?", (row["id"],))
    return True


@method("crm.status.entity.types", "crm")
def entity_types(ctx: CallContext, params: dict[str, Any]) -> Any:
    """crm-status-entity-types.md, example: the lead and other directories, then the deal
    funnels (each with its own stages), quote stages and the rest, then the SPA funnels."""
    deals: list[dict[str, Any]] = []
    spas: list[dict[str, Any]] = []
    for cat in ctx.portal.db.all("SELECT * FROM categories ORDER BY entity_type_id, sort, id"):
        etid, cid = cat["entity_type_id"], cat["id"]
        entity = ctx.portal.stage_entity(etid, cid)
        prefix = ctx.portal.stage_prefix(etid, cid).rstrip(":")
        scope = "" if cid == 0 else f"category_{cid}"
        if etid == DEAL:
            entry: dict[str, Any] = {"ID": entity, "NAME": f"{cat['name']} deal stages"}
            if cid != 0:
                entry["PARENT_ID"] = "DEAL_STAGE"
            entry["SEMANTIC_INFO"] = {
                "START_FIELD": f"{prefix}:NEW".lstrip(":"),
                "FINAL_SUCCESS_FIELD": f"{prefix}:WON".lstrip(":"),
                "FINAL_UNSUCCESS_FIELD": f"{prefix}:LOSE".lstrip(":"),
                "FINAL_SORT": 0,
            }
            if cid != 0:
                entry["PREFIX"] = prefix
            # The example gives CATEGORY_ID "1" (a string) for DEAL_STAGE_1, 0 for DEAL_STAGE.
            entry.update(
                FIELD_ATTRIBUTE_SCOPE=scope,
                ENTITY_TYPE_ID=etid,
                CATEGORY_ID=str(cid) if cid != 0 else 0,
            )
            deals.append(entry)
            continue
        spa = ctx.portal.type_by_etid(etid) or {}
        spas.append(
            {
                "ID": entity,
                "NAME": f"{spa.get('title', '')} ({cat['name']})",
                "SEMANTIC_INFO": [],
                "PREFIX": prefix,
                "FIELD_ATTRIBUTE_SCOPE": scope,
                "ENTITY_TYPE_ID": etid,
                "IS_ENABLED": True,
                "CATEGORY_ID": cid,
                "CATEGORY_NAME": cat["name"],
                "CATEGORY_SORT": cat["sort"],
                "IS_DEFAULT_CATEGORY": cat["is_default"] == "Y",
            }
        )
    return deepcopy(HEAD_TYPES) + deals + deepcopy(MIDDLE_TYPES) + spas


@method("crm.status.entity.items", "crm")
def entity_items(ctx: CallContext, params: dict[str, Any]) -> Any:
    entity_id = str(arg(params, "entityId") or "")
    if not entity_id:
        raise errors.old_style("The parameter entityId is not defined or invalid.")
    rows = ctx.portal.db.all(
        "SELECT * FROM statuses WHERE entity_id = ? ORDER BY sort, id", (entity_id,)
    )
    return [{"NAME": r["name"], "SORT": r["sort"], "STATUS_ID": r["status_id"]} for r in rows]
