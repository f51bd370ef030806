"""crm.deal.*, crm.contact.*, crm.company.* (old style) and crm.item.* (new style)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from b24kit.encoding import as_list
from b24kit.sandbox import errors
from b24kit.sandbox.fields import COMPANY, CONTACT, DEAL, LEAD, describe
from b24kit.sandbox.registry import (
    CallContext,
    Paged,
    arg,
    entity_type,
    exact,
    method,
    new_fields,
)
from b24kit.sandbox.values import intval

CONTACT_SORTS = "CONTACT_SORTS"  # the SORT of each contact binding, kept beside the deal

OLD_ENTITIES = {"deal": DEAL, "contact": CONTACT, "company": COMPANY, "lead": LEAD}


def _old_id(params: Mapping[str, Any]) -> int:
    item_id = intval(arg(params, "id"))
    if item_id <= 0:
        raise errors.old_style("ID is not defined or invalid.")
    return item_id


def _old_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    fields = arg(params, "fields")
    if not isinstance(fields, Mapping):
        raise errors.old_style("Parameter 'fields' must be array.")
    return dict(fields)


def _register_old(entity: str, etid: int) -> None:
    prefix = f"crm.{entity}"

    @method(f"{prefix}.fields", "crm")
    def fields(ctx: CallContext, params: dict[str, Any]) -> Any:
        by_name, _ = ctx.portal.item_fields(etid)
        return {name: describe(f, "old") for name, f in by_name.items()}

    @method(f"{prefix}.add", "crm")
    def add(ctx: CallContext, params: dict[str, Any]) -> Any:
        with ctx.portal.db.transaction():
            return ctx.portal.add_item(etid, _old_fields(params), ctx.user_id, "old")

    @method(f"{prefix}.update", "crm")
    def update(ctx: CallContext, params: dict[str, Any]) -> Any:
        item_id = _old_id(params)
        fields = _old_fields(params)
        with ctx.portal.db.transaction():
            ctx.portal.update_item(etid, item_id, fields, ctx.user_id, "old")
        return True

    @method(f"{prefix}.get", "crm")
    def get(ctx: CallContext, params: dict[str, Any]) -> Any:
        item_id = _old_id(params)
        data = ctx.portal.load_item(etid, item_id)
        if data is None:
            raise errors.old_style("Not found")
        multis = ctx.portal.multifields(etid, [item_id]).get(item_id, {})
        return ctx.portal.render(etid, data, "old", ctx.portal.get_names(etid, "old"), multis)

    @method(f"{prefix}.list", "crm")
    def list_(ctx: CallContext, params: dict[str, Any]) -> Any:
        rows, total, nxt = ctx.portal.list_items(
            etid,
            flt=arg(params, "filter"),
            order=arg(params, "order"),
            select=arg(params, "select"),
            start=ctx.start,
            style="old",
            cost=ctx.add_cost,
        )
        return Paged(rows, total, nxt)

    @method(f"{prefix}.delete", "crm")
    def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
        item_id = _old_id(params)
        with ctx.portal.db.transaction():
            if not ctx.portal.delete_item(etid, item_id):
                raise errors.old_style("Not found")
        return True


for _name, _type_id in OLD_ENTITIES.items():
    _register_old(_name, _type_id)


def _owner_id(params: Mapping[str, Any]) -> int:
    deal_id = intval(arg(params, "id"))
    if deal_id <= 0:
        raise errors.old_style("The parameter ownerEntityID is invalid or not defined.")
    return deal_id


def _contact_bindings(deal: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A deal's contact bindings: SORT as set (else (i + 1) * 10), ordered by SORT, the deal's
    CONTACT_ID primary (crm-deal-contact-items-get.md, crm-deal-contact-items-set.md)."""
    ids = deal.get("CONTACT_IDS") or ([deal["CONTACT_ID"]] if deal.get("CONTACT_ID") else [])
    sorts = deal.get(CONTACT_SORTS) or {}
    primary = deal.get("CONTACT_ID") or (ids[0] if ids else None)
    rows = [
        {
            "CONTACT_ID": int(cid),
            "SORT": intval(sorts.get(str(cid), (i + 1) * 10)),
            "ROLE_ID": 0,
            "IS_PRIMARY": "Y" if cid == primary else "N",
        }
        for i, cid in enumerate(ids)
    ]
    return sorted(rows, key=lambda r: r["SORT"])


@method("crm.deal.contact.items.get", "crm")
def deal_contacts_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    deal = ctx.portal.load_item(DEAL, _owner_id(params))
    if deal is None:
        raise errors.old_style("Not found.")
    return _contact_bindings(deal)


@method("crm.deal.contact.items.set", "crm")
def deal_contacts_set(ctx: CallContext, params: dict[str, Any]) -> Any:
    deal_id = _owner_id(params)
    items = arg(params, "items")
    if not isinstance(items, (Mapping, list)):
        raise errors.old_style("The parameter items must be array.")
    entries = [
        e
        for e in (items.values() if isinstance(items, Mapping) else items)
        if isinstance(e, Mapping) and intval(e.get("CONTACT_ID")) > 0
    ]
    # the first binding with IS_PRIMARY = Y is primary, else the first one
    flagged = [e for e in entries if str(e.get("IS_PRIMARY", "")).upper() == "Y"]
    ordered = flagged[:1] + [e for e in entries if not flagged or e is not flagged[0]]
    ids = [intval(e.get("CONTACT_ID")) for e in ordered]
    sorts = {
        str(intval(e.get("CONTACT_ID"))): intval(e["SORT"])
        if e.get("SORT") not in (None, "")
        else (i + 1) * 10
        for i, e in enumerate(entries)
    }
    with ctx.portal.db.transaction():
        if ctx.portal.load_item(DEAL, deal_id) is None:
            raise errors.old_style("Not found.")
        ctx.portal.update_item(
            DEAL,
            deal_id,
            {"CONTACT_IDS": ids, "CONTACT_ID": ids[0] if ids else None},
            ctx.user_id,
            "old",
        )
        ctx.portal.set_item_extra(DEAL, deal_id, CONTACT_SORTS, sorts)
    return True


# ----------------------------------------------------------------- crm.item.*

ITEM_NOT_FOUND = "Item not found"  # crm-item-delete.md, crm-item-get.md's error table


def _item_id(params: Mapping[str, Any]) -> int:
    raw = exact(params, "id")
    if raw in (None, ""):
        raise errors.required_arg("id")
    return intval(raw)


def _original(params: Mapping[str, Any]) -> bool:
    return str(params.get("useOriginalUfNames", "N")).upper() == "Y"


def _render_new(
    ctx: CallContext, etid: int, data: dict[str, Any], original: bool = False
) -> dict[str, Any]:
    multis = ctx.portal.multifields(etid, [int(data["ID"])]).get(int(data["ID"]), {})
    out = ctx.portal.render(etid, data, "new", ctx.portal.get_names(etid, "new"), multis, original)
    # crm-item-get.md, crm-item-add.md, crm-item-update.md: an item ends with its type;
    # fast_bitrix24 real_responses/crm_item_add.py: "entityTypeId": 133
    out["entityTypeId"] = etid
    return out


def _fm_to_multis(fields: dict[str, Any]) -> dict[str, Any]:
    """``fm`` on crm.item.add is a list of {typeId, valueType, value}."""
    fm = fields.pop("fm", None)
    if fm is None:
        return fields
    for entry in as_list(fm):
        if not isinstance(entry, Mapping) or not entry.get("typeId"):
            continue  # an element without typeId is silently skipped (API notes §9.3)
        fields.setdefault(str(entry["typeId"]).lower(), []).append(
            {"VALUE": entry.get("value"), "VALUE_TYPE": entry.get("valueType") or "WORK"}
        )
    return fields


@method("crm.item.fields", "crm")
def item_fields(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    by_name, _ = ctx.portal.item_fields(etid)
    return {"fields": {f.camel: describe(f, "new") for f in by_name.values()}}


@method("crm.item.add", "crm")
def item_add(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    fields = _fm_to_multis(new_fields(params))
    with ctx.portal.db.transaction():
        new_id = ctx.portal.add_item(etid, fields, ctx.user_id, "new")
        data = ctx.portal.load_item(etid, new_id)
    assert data is not None
    return {"item": _render_new(ctx, etid, data, _original(params))}


@method("crm.item.update", "crm")
def item_update(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    item_id = _item_id(params)
    fields = new_fields(params)
    with ctx.portal.db.transaction():
        data = ctx.portal.update_item(etid, item_id, fields, ctx.user_id, "new")
    return {"item": _render_new(ctx, etid, data, _original(params))}


@method("crm.item.get", "crm")
def item_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    data = ctx.portal.load_item(etid, _item_id(params))
    if data is None:
        raise errors.not_found_new(ITEM_NOT_FOUND)
    return {"item": _render_new(ctx, etid, data, _original(params))}


@method("crm.item.list", "crm")
def item_list(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    rows, total, nxt = ctx.portal.list_items(
        etid,
        flt=exact(params, "filter"),
        order=exact(params, "order"),
        select=exact(params, "select") or ["*"],
        start=ctx.start,
        style="new",
        cost=ctx.add_cost,
        original_uf=_original(params),
    )
    return Paged({"items": rows}, total, nxt)


@method("crm.item.delete", "crm")
def item_delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    etid = entity_type(ctx, params)
    with ctx.portal.db.transaction():
        if not ctx.portal.delete_item(etid, _item_id(params)):
            raise errors.not_found_new(ITEM_NOT_FOUND)
    return []
