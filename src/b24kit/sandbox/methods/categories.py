"""crm.category.* — pipelines of deals and smart processes (API notes §5)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from b24kit.sandbox import errors
from b24kit.sandbox.fields import COMPANY, CONTACT, DEAL, SPA_MIN
from b24kit.sandbox.registry import CallContext, Paged, entity_type, exact, method, new_fields
from b24kit.sandbox.values import intval, yes_no


def _field(
    type_: str, upper: str, required: bool = False, read_only: bool = False
) -> dict[str, Any]:
    return {
        "type": type_,
        "isRequired": required,
        "isReadOnly": read_only,
        "isImmutable": False,
        "isMultiple": False,
        "isDynamic": False,
        "title": upper,
        "upperName": upper,
    }


# crm-category-fields.md, example for deals (entityTypeId 2): titles are the UPPER_CASE
# names, each description carries upperName; isDefault is a read-only "boolean".
FIELDS: dict[str, dict[str, Any]] = {
    "id": _field("integer", "ID", read_only=True),
    "name": _field("string", "NAME"),
    "sort": _field("integer", "SORT"),
    "entityTypeId": _field("integer", "ENTITY_TYPE_ID", required=True, read_only=True),
    "isDefault": _field("boolean", "IS_DEFAULT", read_only=True),
}
# crm-category-fields.md, field table: originId/originatorId "exist only in deals" (and are in
# the deal example); isSystem/code "exist only in SPAs" (no example: flags are assumptions).
DEAL_FIELDS = {
    "originId": _field("string", "ORIGIN_ID"),
    "originatorId": _field("string", "ORIGINATOR_ID"),
}
SPA_FIELDS = {
    "isSystem": _field("boolean", "IS_SYSTEM", read_only=True),
    "code": _field("string", "CODE"),
}
CLIENTS = (CONTACT, COMPANY)
CLIENT_DEFAULT = "Default client category does not support updating default state"


def render(row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "sort": row["sort"],
        "entityTypeId": row["entity_type_id"],
        "isDefault": row["is_default"],
    }
    if row["entity_type_id"] == DEAL:
        if row["id"] != 0:
            out["originId"] = row["origin_id"]
            out["originatorId"] = row["originator_id"]
    else:
        out["isSystem"] = row["is_system"]
        out["code"] = row["code"] or None
    return out


def _get_row(ctx: CallContext, etid: int, params: Mapping[str, Any]) -> sqlite3.Row:
    raw = exact(params, "id")
    if raw in (None, ""):
        raise errors.required_arg("id")
    row = ctx.portal.category(etid, intval(raw))
    if row is None:
        raise errors.not_found_new("Element not found")  # crm-category-get.md and others
    return row


def _name(fields: Mapping[str, Any], required: bool) -> str | None:
    name = fields.get("name", fields.get("NAME"))
    if name is None and not required:
        return None
    text = "" if name is None else str(name)
    if not text.strip():
        raise errors.ApiError(0, "Field 'NAME' is required")
    return text[:255]


@method("crm.category.fields", "crm")
def fields(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    if etid == DEAL:
        return {"fields": {**FIELDS, **DEAL_FIELDS}}
    if etid in CLIENTS:
        return {"fields": dict(FIELDS)}
    return {"fields": {**FIELDS, **SPA_FIELDS}}


@method("crm.category.list", "crm")
def list_(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    rows = ctx.portal.db.all(
        "SELECT * FROM categories WHERE entity_type_id = ? ORDER BY sort, id", (etid,)
    )
    return Paged({"categories": [render(r) for r in rows]}, len(rows))


@method("crm.category.get", "crm")
def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    return {"category": render(_get_row(ctx, etid, params))}


@method("crm.category.add", "crm")
def add(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    fields = new_fields(params)
    name = _name(fields, required=True)
    assert name is not None
    if etid >= SPA_MIN:
        spa = ctx.portal.type_by_etid(etid) or {}
        if spa.get("isCategoriesEnabled") != "Y":
            raise errors.ApiError(
                "ENTITY_TYPE_NOT_SUPPORTED", "Categories are not enabled for this smart process"
            )
    sort = intval(fields["sort"]) if fields.get("sort") not in (None, "") else 500
    is_default = etid != DEAL and yes_no(fields.get("isDefault")) == "Y"
    if is_default and etid in CLIENTS:
        raise errors.ApiError(0, CLIENT_DEFAULT)  # crm-category-add.md, error table
    with ctx.portal.db.transaction():
        category_id = ctx.portal.add_category(etid, name, sort, is_default)
        if etid == DEAL:
            ctx.portal.db.execute(
                "UPDATE categories SET origin_id = ?, originator_id = ? WHERE id = ?",
                (
                    str(fields.get("originId") or ""),
                    str(fields.get("originatorId") or ""),
                    category_id,
                ),
            )
    row = ctx.portal.category(etid, category_id)
    assert row is not None
    return {"category": render(row)}


@method("crm.category.update", "crm")
def update(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    row = _get_row(ctx, etid, params)
    fields = new_fields(params)
    name = _name(fields, required=False)
    if etid in CLIENTS and yes_no(fields.get("isDefault")) == "Y":
        raise errors.ApiError(0, CLIENT_DEFAULT)  # crm-category-add.md's text, for update too
    with ctx.portal.db.transaction():
        if name is not None:
            ctx.portal.db.execute("UPDATE categories SET name = ? WHERE id = ?", (name, row["id"]))
        if fields.get("sort") not in (None, ""):
            ctx.portal.db.execute(
                "UPDATE categories SET sort = ? WHERE id = ?",
                (max(intval(fields["sort"]), 0), row["id"]),
            )
        if etid != DEAL and yes_no(fields.get("isDefault")) == "Y":
            ctx.portal.db.execute(
                "UPDATE categories SET is_default = CASE WHEN id = ? THEN 'Y' ELSE 'N' END "
                "WHERE entity_type_id = ?",
                (row["id"], etid),
            )
        for key, column in (("originId", "origin_id"), ("originatorId", "originator_id")):
            if etid == DEAL and key in fields:
                ctx.portal.db.execute(
                    f"UPDATE categories SET {column} = ? WHERE id = ?",
                    (str(fields[key] or ""), row["id"]),
                )
    fresh = ctx.portal.category(etid, row["id"])
    assert fresh is not None
    return {"category": render(fresh)}


@method("crm.category.delete", "crm")
def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    row = _get_row(ctx, etid, params)
    if etid != DEAL and row["is_system"] == "Y":
        raise errors.ApiError("REMOVING_DISABLED", "Deletion of system category is prohibited")
    if row["is_default"] == "Y":
        if etid == DEAL:
            raise errors.ApiError(0, "Default deal category cannot be deleted")
        raise errors.ApiError("BX_ERROR", "This funnel is the default funnel")
    if ctx.portal.count_items(etid, "json_extract(data, '$.CATEGORY_ID') = ?", (row["id"],)):
        if etid == DEAL:
            raise errors.ApiError(0, f"Deals related to the funnel {row['name']} found")
        raise errors.ApiError("BX_ERROR", "Elements related to the funnel found")
    with ctx.portal.db.transaction():
        ctx.portal.db.execute("DELETE FROM categories WHERE id = ?", (row["id"],))
        ctx.portal.db.execute(
            "DELETE FROM statuses WHERE entity_id = ?",
            (ctx.portal.stage_entity(etid, row["id"]),),
        )
    return None
