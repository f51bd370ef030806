"""crm.type.* — smart processes, their switches and relations (API notes §8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from b24kit.encoding import as_list
from b24kit.sandbox import errors
from b24kit.sandbox.db import dumps, loads
from b24kit.sandbox.fields import COMPANY, CONTACT
from b24kit.sandbox.registry import CallContext, Paged, exact, method, new_fields
from b24kit.sandbox.values import intval, yes_no

SWITCHES = (
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
)
FIELDS = {
    name: {
        "type": "string"
        if name in ("title", "code")
        else "char"
        if name.startswith("is")
        else "integer",
        "isRequired": name == "title",
        "isReadOnly": name == "id",
        "isImmutable": name == "entityTypeId",
        "isMultiple": False,
        "isDynamic": False,
        "title": name,
    }
    for name in ("id", "title", "code", "entityTypeId", *SWITCHES)
}


def _flag(value: Any) -> str:
    """Relation flags take "true"/"false" on input (Y/N "do not work", API notes §8.4)."""
    return "Y" if str(value).lower() in ("true", "1") or value is True else "N"


def _relations(ctx: CallContext, etid: int) -> dict[str, list[dict[str, Any]]]:
    def rows(where: str, key: str) -> list[dict[str, Any]]:
        return [
            {
                "entityTypeId": r[key],
                "isChildrenListEnabled": r["children_list"],
                "isPredefined": r["predefined"],
            }
            for r in ctx.portal.db.all(
                f"SELECT * FROM relations WHERE {where} = ? ORDER BY {key}", (etid,)
            )
        ]

    return {"parent": rows("child_etid", "parent_etid"), "child": rows("parent_etid", "child_etid")}


def render(ctx: CallContext, data: dict[str, Any], full: bool = True) -> dict[str, Any]:
    out = dict(data)
    if full:
        out["relations"] = _relations(ctx, int(data["entityTypeId"]))
        out.setdefault("linkedUserFields", [])
    else:
        out.pop("linkedUserFields", None)
    return out


def _write_relations(ctx: CallContext, etid: int, relations: Any, client: bool) -> None:
    ctx.portal.db.execute(
        "DELETE FROM relations WHERE (child_etid = ? OR parent_etid = ?) AND predefined = 'N'",
        (etid, etid),
    )
    if client:
        for parent in (CONTACT, COMPANY):
            ctx.portal.db.execute(
                "INSERT OR IGNORE INTO relations VALUES(?, ?, 'Y', 'Y')", (parent, etid)
            )
    else:
        ctx.portal.db.execute(
            "DELETE FROM relations WHERE child_etid = ? AND predefined = 'Y'", (etid,)
        )
    if not isinstance(relations, Mapping):
        return
    for side in ("parent", "child"):
        for rel in as_list(relations.get(side)):
            if not isinstance(rel, Mapping):
                continue
            other = intval(rel.get("entityTypeId"))
            if other <= 0 or not ctx.portal.entity_supported(other):
                raise errors.invalid_arg(f"Entity type {other} in relations is not found")
            parent, child = (other, etid) if side == "parent" else (etid, other)
            ctx.portal.db.execute(
                "INSERT OR REPLACE INTO relations VALUES(?, ?, ?, 'N')",
                (parent, child, _flag(rel.get("isChildrenListEnabled", "true"))),
            )



def _by_id(ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
    raw = exact(params, "id")
    if raw in (None, ""):
        raise errors.required_arg("id")
    data = ctx.portal.type_by_id(intval(raw))
    if data is None:
        raise errors.not_found_new("SPA not found")
    return data


def _allowed_etid(etid: int) -> bool:
    return 128 <= etid <= 192 or (etid >= 1030 and etid % 2 == 0)


@method("crm.type.fields", "crm")
def fields(ctx: CallContext, params: dict[str, Any]) -> Any:
    return {"fields": FIELDS}


@method("crm.type.add", "crm")
def add(ctx: CallContext, params: dict[str, Any]) -> Any:
    fields = new_fields(params)
    title = str(fields.get("title") or "").strip()
    if not title:
        raise errors.ApiError("CRM_FIELD_ERROR_REQUIRED", 'The field "Title" is required.')
    used = {int(r["entity_type_id"]) for r in ctx.portal.db.all("SELECT entity_type_id FROM types")}
    if fields.get("entityTypeId") not in (None, ""):
        etid = intval(fields["entityTypeId"])
        if not _allowed_etid(etid):
            raise errors.invalid_arg("entityTypeId is out of allowed range")
        if etid in used:
            raise errors.invalid_arg(f"entityTypeId {etid} is already in use")
    else:
        etid = max([e for e in used if e >= 1030] + [1028]) + 2
    now = ctx.portal.now()
    with ctx.portal.db.transaction():
        type_id = ctx.portal.db.next_id("type")
        data: dict[str, Any] = {
            "id": type_id,
            "title": title,
            "code": fields.get("code") or None,
            "createdBy": ctx.user_id,
            "entityTypeId": etid,
            "customSectionId": None,
        }
        for switch in SWITCHES:
            default = "Y" if switch == "isSetOpenPermissions" else "N"
            data[switch] = yes_no(fields.get(switch), default)
        data.update(
            createdTime=now,
            updatedTime=now,
            updatedBy=ctx.user_id,
            isInitialized="Y",
            linkedUserFields=[],
        )
        ctx.portal.db.execute(
            "INSERT INTO types(id, entity_type_id, data) VALUES(?, ?, ?)",
            (type_id, etid, dumps(data)),
        )
        ctx.portal.add_category(etid, "General", 500, is_default=True)
        _write_relations(ctx, etid, fields.get("relations"), data["isClientEnabled"] == "Y")
    ctx.portal.schema_changed()
    return {"type": render(ctx, data)}


@method("crm.type.update", "crm")
def update(ctx: CallContext, params: dict[str, Any]) -> Any:
    data = _by_id(ctx, params)
    fields = new_fields(params)
    if "title" in fields:
        if not str(fields["title"] or "").strip():
            raise errors.ApiError("CRM_FIELD_ERROR_REQUIRED", 'The field "Title" is required.')
        data["title"] = str(fields["title"]).strip()
    if "code" in fields:
        data["code"] = fields["code"] or None
    for switch in SWITCHES:
        if fields.get(switch) not in (None, ""):
            data[switch] = yes_no(fields[switch], data[switch])
    data["updatedTime"] = ctx.portal.now()
    data["updatedBy"] = ctx.user_id
    with ctx.portal.db.transaction():
        ctx.portal.db.execute("UPDATE types SET data = ? WHERE id = ?", (dumps(data), data["id"]))
        if "relations" in fields or "isClientEnabled" in fields:
            relations = fields.get("relations")
            if relations is None:
                relations = _relations(ctx, int(data["entityTypeId"]))
                for side in relations.values():
                    for rel in side:
                        rel["isChildrenListEnabled"] = (
                            "true" if rel["isChildrenListEnabled"] == "Y" else "false"
                        )
            _write_relations(
                ctx, int(data["entityTypeId"]), relations, data["isClientEnabled"] == "Y"
            )
    ctx.portal.schema_changed()
    return {"type": render(ctx, data)}


@method("crm.type.get", "crm")
def get(ctx: CallContext, params: dict[str, Any]) -> Any:
    return {"type": render(ctx, _by_id(ctx, params))}


@method("crm.type.getByEntityTypeId", "crm")
def get_by_etid(ctx: CallContext, params: dict[str, Any]) -> Any:
    raw = exact(params, "entityTypeId")
    if raw in (None, ""):
        raise errors.required_arg("entityTypeId")
    data = ctx.portal.type_by_etid(intval(raw))
    if data is None:
        raise errors.not_found_new("SPA not found")
    return {"type": render(ctx, data)}


def _matches(data: Mapping[str, Any], flt: Any) -> bool:
    if not isinstance(flt, Mapping):
        return True
    logic_or = str(flt.get("logic", flt.get("LOGIC", "AND"))).upper() == "OR"
    results = []
    for key, value in flt.items():
        if str(key).upper() == "LOGIC":
            continue
        if isinstance(value, Mapping) and str(key).isdigit():
            results.append(_matches(data, value))
            continue
        key = str(key)
        negate = key.startswith("!")
        name = key.lstrip("!=@")
        values = as_list(value) if isinstance(value, (list, Mapping)) else [value]
        hit = str(data.get(name)) in {str(v) for v in values}
        results.append(hit != negate)
    if not results:
        return True
    return any(results) if logic_or else all(results)


@method("crm.type.list", "crm")
def list_(ctx: CallContext, params: dict[str, Any]) -> Any:
    rows = [loads(r["data"]) for r in ctx.portal.db.all("SELECT data FROM types ORDER BY id")]
    rows = [r for r in rows if _matches(r, exact(params, "filter"))]
    order = exact(params, "order")
    if isinstance(order, Mapping):
        for key, direction in reversed(list(order.items())):
            name = str(key)

            def sort_key(row: dict[str, Any], name: str = name) -> str:
                return str(row.get(name)).zfill(12)

            rows.sort(key=sort_key, reverse=str(direction).upper() == "DESC")
    start = max(ctx.start, 0)
    page = rows[start : start + 50]
    nxt = start + 50 if start + 50 < len(rows) else None
    return Paged({"types": [render(ctx, r, full=False) for r in page]}, len(rows), nxt)


@method("crm.type.delete", "crm")
def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    if exact(params, "id") in (None, ""):
        return None
    data = _by_id(ctx, params)
    etid = int(data["entityTypeId"])
    if ctx.portal.count_items(etid):
        raise errors.ApiError("BX_ERROR", "You cannot delete an entity type that has elements")
    with ctx.portal.db.transaction():
        for cat in ctx.portal.db.all("SELECT id FROM categories WHERE entity_type_id = ?", (etid,)):
            ctx.portal.db.execute(
                "DELETE FROM statuses WHERE entity_id = ?",
                (ctx.portal.stage_entity(etid, cat["id"]),),
            )
        ctx.portal.db.execute("DELETE FROM categories WHERE entity_type_id = ?", (etid,))
        entity_id = f"CRM_{data['id']}"
        for uf in ctx.portal.db.all("SELECT id FROM userfields WHERE entity_id = ?", (entity_id,)):
            ctx.portal.db.execute("DELETE FROM enum_items WHERE field_id = ?", (uf["id"],))
        ctx.portal.db.execute("DELETE FROM userfields WHERE entity_id = ?", (entity_id,))
        ctx.portal.db.execute(
            "DELETE FROM relations WHERE parent_etid = ? OR child_etid = ?", (etid, etid)
        )
        ctx.portal.db.execute("DELETE FROM types WHERE id = ?", (data["id"],))
    ctx.portal.schema_changed()
    return []
