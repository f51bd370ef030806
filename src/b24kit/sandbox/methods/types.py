"""crm.type.* — smart processes, their switches and relations (API notes §8)."""

from __future__ import annotations

import re
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
# System fields: shown on every type, not among crm-type-add.md's / crm-type-update.md's
# parameters, so they stay "N".
SYSTEM_SWITCHES = ("isPaymentsEnabled", "isCountersEnabled")
LINKED_USER_FIELDS = (
    "CALENDAR_EVENT|UF_CRM_CAL_EVENT",
    "TASKS_TASK|UF_CRM_TASK",
    "TASKS_TASK_TEMPLATE|UF_CRM_TASK",
)


def _field(kind: str, title: str, upper: str, **flags: bool) -> dict[str, Any]:
    return {
        "type": kind,
        "isRequired": flags.get("required", False),
        "isReadOnly": flags.get("read_only", False),
        "isImmutable": flags.get("immutable", False),
        "isMultiple": False,
        "isDynamic": False,
        "title": title,
        "upperName": upper,
    }


def _upper(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


SWITCH_TITLES = {
    "isCategoriesEnabled": "Use custom funnels and sales tunnels in the smart process",
    "isStagesEnabled": "Use custom stages and Kanban in the smart process",
    "isBeginCloseDatesEnabled": "Fields 'Start Date' and 'End Date'",
    "isClientEnabled": "Field 'Client'",
    "isUseInUserfieldEnabled": "Use in user field",
    "isLinkWithProductsEnabled": "Link with catalog products",
    "isMycompanyEnabled": "Field 'Your Company Details'",
    "isDocumentsEnabled": "Document Printing",
    "isSourceEnabled": "Fields 'Source' and 'Additional Information about Source'",
    "isObserversEnabled": "Field 'Observers'",
    "isRecyclebinEnabled": "Use Recycle Bin",
    "isAutomationEnabled": "Use Automation rules and triggers in the smart process",
    "isBizProcEnabled": "Use business process designer in the smart process",
    "isSetOpenPermissions": "Make new funnels available to everyone",
}
# crm-type-fields.md's example, field by field.
FIELDS: dict[str, dict[str, Any]] = {
    "id": _field("integer", "ID", "ID", read_only=True),
    "title": _field("string", "Title", "TITLE", required=True),
    "code": _field("string", "Symbolic Code", "CODE"),
    "createdBy": _field("user", "Created By", "CREATED_BY", read_only=True),
    "entityTypeId": _field(
        "integer", "Type Identifier", "ENTITY_TYPE_ID", required=True, immutable=True
    ),
    "customSectionId": _field("integer", "Digital Workspace", "CUSTOM_SECTION_ID", immutable=True),
    **{name: _field("boolean", title, _upper(name)) for name, title in SWITCH_TITLES.items()},
    "createdTime": _field("datetime", "Creation Date", "CREATED_TIME"),
    "updatedTime": _field("datetime", "Modification Date", "UPDATED_TIME"),
    "updatedBy": _field("user", "Modified By", "UPDATED_BY", read_only=True),
}
# Fields of the ``type`` object (crm/data-types.md#type) that crm.type.list filters and sorts by.
LIST_FIELDS = frozenset(FIELDS) | frozenset(SYSTEM_SWITCHES)


def _flag(value: Any) -> str:
    """Relation flags take "true"/"false" on input (Y/N "do not work", API notes §8.4)."""
    return "Y" if str(value).lower() in ("true", "1") or value is True else "N"


# CRM types a relation may name besides smart processes (crm-type-add.md, "One relation":
# "system or custom type"): lead, deal, contact, company, quote, invoice.
RELATION_SYSTEM_TYPES = (1, 2, CONTACT, COMPANY, 7, 31)


def _relations(ctx: CallContext, etid: int) -> dict[str, list[dict[str, Any]]]:
    """Predefined links first, then the others in the order they were given
    (crm-type-get.md's example: parents 3, 4, then 1, 2, 31)."""

    def rows(where: str, key: str) -> list[dict[str, Any]]:
        return [
            {
                "entityTypeId": r[key],
                "isChildrenListEnabled": r["children_list"],
                "isPredefined": r["predefined"],
            }
            for r in ctx.portal.db.all(
                f"SELECT * FROM relations WHERE {where} = ? ORDER BY predefined = 'Y' DESC, rowid",
                (etid,),
            )
        ]

    return {"parent": rows("child_etid", "parent_etid"), "child": rows("parent_etid", "child_etid")}


def _linked(data: Mapping[str, Any]) -> dict[str, str]:
    stored = data.get("linkedUserFields")
    stored = stored if isinstance(stored, Mapping) else {}
    return {name: "Y" if stored.get(name) == "Y" else "N" for name in LINKED_USER_FIELDS}


def render(ctx: CallContext, data: dict[str, Any], full: bool = True) -> dict[str, Any]:
    """The ``type`` object in the key order of crm-type-get.md's example; list rows
    (crm-type-list.md) stop at updatedBy."""
    out: dict[str, Any] = {
        "id": data["id"],
        "title": data["title"],
        "code": data.get("code") or "",
        "createdBy": data["createdBy"],
        "entityTypeId": data["entityTypeId"],
        "customSectionId": data.get("customSectionId"),
    }
    for switch in SWITCHES:
        out[switch] = data.get(switch) or "N"
    out["createdTime"] = data["createdTime"]
    out["updatedTime"] = data["updatedTime"]
    out["updatedBy"] = data["updatedBy"]
    if full:
        out["relations"] = _relations(ctx, int(data["entityTypeId"]))
        out["linkedUserFields"] = _linked(data)
        out["customSections"] = []
    return out


def _write_linked(data: dict[str, Any], given: Any) -> None:
    """linkedUserFields counts only with isUseInUserfieldEnabled = Y and takes "true"/"false"
    (crm-type-add.md, "Binding to user fields"); keys not given keep their value."""
    current = _linked(data)
    if data.get("isUseInUserfieldEnabled") == "Y" and isinstance(given, Mapping):
        for name in LINKED_USER_FIELDS:
            if name in given:
                current[name] = _flag(given[name])
    data["linkedUserFields"] = current


def _write_relations(ctx: CallContext, etid: int, relations: Any, client: bool) -> None:
    """Relations are overwritten whole; predefined links cannot be changed; a link that cannot
    be saved is dropped without an error (crm-type-update.md, "Relations")."""
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
            if (
                other <= 0
                or other == etid
                or not (other in RELATION_SYSTEM_TYPES or ctx.portal.entity_supported(other))
            ):
                continue
            parent, child = (other, etid) if side == "parent" else (etid, other)
            ctx.portal.db.execute(
                "INSERT OR IGNORE INTO relations VALUES(?, ?, ?, 'N')",
                (parent, child, _flag(rel.get("isChildrenListEnabled", "false"))),
            )


# crm-type-get.md / crm-type-update.md: error 0 "SPA not found";
# crm-type-get-by-entity-type-id.md / crm-type-delete.md: error 0 "Smart process not found".
def _spa_not_found() -> errors.ApiError:
    return errors.ApiError(0, "SPA not found")


def _process_not_found() -> errors.ApiError:
    return errors.ApiError(0, "Smart process not found")


def _by_id(
    ctx: CallContext, params: Mapping[str, Any], missing: Any = _spa_not_found
) -> dict[str, Any]:
    raw = exact(params, "id")
    if raw in (None, ""):
        raise errors.required_arg("id")
    data = ctx.portal.type_by_id(intval(raw))
    if data is None:
        raise missing()
    return data


def _allowed_etid(etid: int) -> bool:
    return 128 <= etid <= 192 or (etid >= 1030 and etid % 2 == 0)


@method("crm.type.fields", "crm")
def fields(ctx: CallContext, params: dict[str, Any]) -> Any:
    return {"fields": FIELDS}


SETTABLE = tuple(s for s in SWITCHES if s not in SYSTEM_SWITCHES)


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
    # crm-type-add.md's parameter table has no ``code`` (crm-type-get.md shows "code": "").
    drops_code = "type-add-drops-code" in ctx.portal.readings
    now = ctx.portal.now()
    with ctx.portal.db.transaction():
        type_id = ctx.portal.db.next_id("type")
        data: dict[str, Any] = {
            "id": type_id,
            "title": title,
            "code": "" if drops_code else str(fields.get("code") or ""),
            "createdBy": ctx.user_id,
            "entityTypeId": etid,
            "customSectionId": None,
        }
        for switch in SWITCHES:
            default = "Y" if switch == "isSetOpenPermissions" else "N"
            data[switch] = yes_no(fields.get(switch), default) if switch in SETTABLE else "N"
        data.update(createdTime=now, updatedTime=now, updatedBy=ctx.user_id)
        _write_linked(data, fields.get("linkedUserFields"))
        ctx.portal.db.execute(
            "INSERT INTO types(id, entity_type_id, data) VALUES(?, ?, ?)",
            (type_id, etid, dumps(data)),
        )
        ctx.portal.add_category(etid, "General", 500, is_default=True)
        _write_relations(ctx, etid, fields.get("relations"), data["isClientEnabled"] == "Y")
    ctx.portal.schema_changed()
    out = render(ctx, data)
    if drops_code:
        out.pop("code")  # crm-type-add.md's example answer has no code
    return {"type": out}


@method("crm.type.update", "crm")
def update(ctx: CallContext, params: dict[str, Any]) -> Any:
    data = _by_id(ctx, params)
    fields = new_fields(params)
    if "title" in fields:
        if not str(fields["title"] or "").strip():
            raise errors.ApiError("CRM_FIELD_ERROR_REQUIRED", 'The field "Title" is required.')
        data["title"] = str(fields["title"]).strip()
    if "code" in fields:
        data["code"] = str(fields["code"] or "")
    for switch in SETTABLE:
        if fields.get(switch) not in (None, ""):
            data[switch] = yes_no(fields[switch], data[switch])
    if "linkedUserFields" in fields or "isUseInUserfieldEnabled" in fields:
        _write_linked(data, fields.get("linkedUserFields"))
    data["updatedTime"] = ctx.portal.now()
    data["updatedBy"] = ctx.user_id
    with ctx.portal.db.transaction():
        ctx.portal.db.execute("UPDATE types SET data = ? WHERE id = ?", (dumps(data), data["id"]))
        if "relations" in fields or "isClientEnabled" in fields:
            relations = fields.get("relations")
            if relations is None:  # only the Client switch moved: keep the others
                relations = {
                    side: [
                        {
                            "entityTypeId": rel["entityTypeId"],
                            "isChildrenListEnabled": "true"
                            if rel["isChildrenListEnabled"] == "Y"
                            else "false",
                        }
                        for rel in rows
                        if rel["isPredefined"] == "N"
                    ]
                    for side, rows in _relations(ctx, int(data["entityTypeId"])).items()
                }
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
        raise _process_not_found()
    return {"type": render(ctx, data)}


# Filter prefixes of crm-type-list.md, longest first.
PREFIXES = ("!=%", "!%=", ">=", "<=", "!@", "=%", "%=", "!%", "!=", ">", "<", "@", "%", "=", "!")


def _split_key(key: str) -> tuple[str, str]:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix) :]
    return "", key


def _like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def _compare(have: Any, want: Any) -> int:
    try:
        a, b = float(have), float(want)
    except (TypeError, ValueError):
        a_s, b_s = str(have), str(want)
        return (a_s > b_s) - (a_s < b_s)
    return (a > b) - (a < b)


def _condition(row: Mapping[str, Any], prefix: str, name: str, value: Any) -> bool:
    have = row.get(name)
    text = "" if have is None else str(have)
    if prefix in ("@", "!@"):
        hit = text in {str(v) for v in as_list(value)}
        return hit if prefix == "@" else not hit
    if prefix in ("%", "!%"):
        hit = str(value).casefold() in text.casefold()
        return hit if prefix == "%" else not hit
    if prefix in ("=%", "%=", "!=%", "!%="):
        hit = _like(text, str(value))
        return hit if prefix in ("=%", "%=") else not hit
    if prefix in (">", ">=", "<", "<="):
        if have is None:
            return False
        cmp = _compare(have, value)
        return {">": cmp > 0, ">=": cmp >= 0, "<": cmp < 0, "<=": cmp <= 0}[prefix]
    values = {str(v) for v in as_list(value)} if isinstance(value, list) else {str(value)}
    hit = text in values
    return not hit if prefix in ("!", "!=") else hit


def _check_filter(flt: Any) -> None:
    if not isinstance(flt, Mapping):
        return
    for key, value in flt.items():
        if str(key).lower() == "logic":
            continue
        if isinstance(value, Mapping) and str(key).isdigit():
            _check_filter(value)
            continue
        _, name = _split_key(str(key))
        if name not in LIST_FIELDS:
            raise errors.invalid_arg(f"Invalid filter: field '{name}' is not allowed in filter")


def _matches(data: Mapping[str, Any], flt: Any) -> bool:
    if not isinstance(flt, Mapping):
        return True
    logic = next((v for k, v in flt.items() if str(k).lower() == "logic"), "AND")
    results = []
    for key, value in flt.items():
        if str(key).lower() == "logic":
            continue
        if isinstance(value, Mapping) and str(key).isdigit():
            results.append(_matches(data, value))
            continue
        prefix, name = _split_key(str(key))
        results.append(_condition(data, prefix, name, value))
    if not results:
        return True
    return any(results) if str(logic).upper() == "OR" else all(results)


@method("crm.type.list", "crm")
def list_(ctx: CallContext, params: dict[str, Any]) -> Any:
    flt = exact(params, "filter")
    if isinstance(flt, list):  # a JSON list of groups, as in crm-type-list.md's example
        flt = {str(i): v for i, v in enumerate(flt)}
    _check_filter(flt)
    order = exact(params, "order")
    sorts: list[tuple[str, bool]] = []
    if isinstance(order, Mapping):
        for key, direction in order.items():
            name = str(key)
            if name not in LIST_FIELDS:
                raise errors.invalid_arg(f"Invalid order: field '{name}' is not allowed in order")
            if str(direction).upper() not in ("ASC", "DESC"):
                raise errors.invalid_arg(
                    "Invalid order: allowed sort directions are ASC, DESC. "
                    f"But got '{direction}' for field '{name}'"
                )
            sorts.append((name, str(direction).upper() == "DESC"))
    rows = [
        render(ctx, loads(r["data"]), full=False)
        for r in ctx.portal.db.all("SELECT data FROM types ORDER BY id")
    ]
    rows = [r for r in rows if _matches(r, flt)]
    for name, desc in reversed(sorts):

        def sort_key(row: dict[str, Any], name: str = name) -> tuple[int, float, str]:
            value = row.get(name)
            try:
                return (0, float(value), "")  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return (1, 0.0, "" if value is None else str(value))

        rows.sort(key=sort_key, reverse=desc)
    start = max(ctx.start, 0)
    page = rows[start : start + 50]
    nxt = start + 50 if start + 50 < len(rows) else None
    return Paged({"types": page}, len(rows), nxt)


@method("crm.type.delete", "crm")
def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    if exact(params, "id") in (None, ""):
        return None  # crm-type-delete.md: null when id is missing
    data = _by_id(ctx, params, _process_not_found)
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
