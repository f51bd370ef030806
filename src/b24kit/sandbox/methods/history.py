"""crm.stagehistory.list, crm.timeline.comment.*, crm.duplicate.findbycomm (API notes §11-12)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from b24kit.encoding import as_list
from b24kit.sandbox import errors
from b24kit.sandbox.fields import COMPANY, CONTACT, DEAL, INT, SPA_MIN, STR, FieldDef
from b24kit.sandbox.query import FilterBuilder, build_order
from b24kit.sandbox.registry import CallContext, Paged, arg, exact, method
from b24kit.sandbox.values import intval

HISTORY_COLUMNS = {
    "ID": ("id", INT),
    "TYPE_ID": ("type_id", INT),
    "OWNER_ID": ("owner_id", INT),
    "CREATED_TIME": ("created_time", "datetime"),
    "CATEGORY_ID": ("category_id", INT),
    "STAGE_SEMANTIC_ID": ("stage_semantic_id", STR),
    "STAGE_ID": ("stage_id", STR),
}
HISTORY_FIELDS = {
    name: FieldDef(name=name, type=kind, kind=kind, camel=name, title=name)
    for name, (_, kind) in HISTORY_COLUMNS.items()
}


OWNER_TYPE_NAMES = {3: "CONTACT", 4: "COMPANY", 7: "QUOTE", 8: "REQUISITE"}


def _history_column(fdef: FieldDef) -> str:
    return HISTORY_COLUMNS[fdef.name][0]


def _history_value(value: Any) -> Any:
    """Numbers come as strings: fast_bitrix24 real_responses/stagehistory.py ("ID": "7365",
    "TYPE_ID": "2", "CATEGORY_ID": "0"); crm-stage-history-list.md's example shows ints,
    the stricter reading for a client is strings."""
    return str(value) if isinstance(value, int) else value


@method("crm.stagehistory.list", "crm")
def stagehistory_list(ctx: CallContext, params: dict[str, Any]) -> Any:
    raw = exact(params, "entityTypeId")
    if raw in (None, ""):
        raise errors.required_arg("entityTypeId")
    etid = intval(raw)
    if etid not in (1, DEAL, 5, 31) and not (etid >= SPA_MIN and ctx.portal.type_by_etid(etid)):
        # crm-stage-history-list.md: ENTITY_TYPE_NOT_SUPPORTED, "Entity type `TYPE` is not
        # supported", TYPE being the type's name
        name = OWNER_TYPE_NAMES.get(etid, str(etid))
        raise errors.ApiError("ENTITY_TYPE_NOT_SUPPORTED", f"Entity type {name} is not supported")
    resolve = HISTORY_FIELDS.get
    builder = FilterBuilder(resolve, "new", ctx.portal.tz, etid, _history_column)
    where = builder.build(exact(params, "filter"))
    order = build_order(exact(params, "order"), resolve, "new", _history_column)
    select = [str(s) for s in as_list(exact(params, "select"))] or list(HISTORY_COLUMNS)
    columns = [c for c in HISTORY_COLUMNS if c in select or "*" in select] or list(HISTORY_COLUMNS)
    start = max(ctx.start, 0)
    sql_params = (etid, *builder.params)
    rows = ctx.portal.db.all(
        f"SELECT * FROM stage_history WHERE entity_type_id = ? AND {where} ORDER BY {order} "
        f"LIMIT 50 OFFSET {start}",
        sql_params,
    )
    items = [{c: _history_value(r[HISTORY_COLUMNS[c][0]]) for c in columns} for r in rows]
    if ctx.start < 0:
        return Paged({"items": items}, 0, None)
    count = ctx.portal.db.one(
        f"SELECT COUNT(*) AS n FROM stage_history WHERE entity_type_id = ? AND {where}", sql_params
    )
    total = int(count["n"]) if count else 0
    ctx.add_cost(ctx.portal.costs.rows(total, start))
    return Paged({"items": items}, total, start + 50 if start + 50 < total else None)


TIMELINE_TYPES = {"deal": DEAL, "contact": CONTACT, "company": COMPANY, "lead": 1}


def _owner_etid(entity_type: str) -> int | None:
    entity_type = entity_type.lower()
    if entity_type in TIMELINE_TYPES:
        return TIMELINE_TYPES[entity_type]
    if entity_type.startswith("dynamic_"):
        return intval(entity_type[len("dynamic_") :]) or None
    return None


@method("crm.timeline.comment.add", "crm")
def comment_add(ctx: CallContext, params: dict[str, Any]) -> Any:
    fields = params.get("fields")  # only lowercase ``fields`` since crm 23.100.0
    if not isinstance(fields, Mapping):
        raise errors.required_arg("fields")
    for key in ("ENTITY_ID", "ENTITY_TYPE"):
        if fields.get(key) in (None, ""):
            raise errors.ApiError(100, f"Could not find value for parameter {{{key}}}")
    comment = str(fields.get("COMMENT") or "")
    if not comment.strip():
        raise errors.invalid_arg("Comment is empty")
    etid = _owner_etid(str(fields["ENTITY_TYPE"]))
    owner_id = intval(fields["ENTITY_ID"])
    if etid is None or ctx.portal.load_item(etid, owner_id) is None:
        raise errors.ApiError("OWNER_NOT_FOUND", "Owner entity is not found")
    with ctx.portal.db.transaction():
        cur = ctx.portal.db.execute(
            "INSERT INTO timeline_comments(entity_type, entity_id, comment, author_id, created) "
            "VALUES(?, ?, ?, ?, ?)",
            (str(fields["ENTITY_TYPE"]).lower(), owner_id, comment, ctx.user_id, ctx.portal.now()),
        )
    return cur.lastrowid


@method("crm.timeline.comment.update", "crm")
def comment_update(ctx: CallContext, params: dict[str, Any]) -> Any:
    """crm-timeline-comment-update.md: ``id`` and lowercase ``fields`` {COMMENT}; answers the
    comment's id; NOT_FOUND / "Not found." (400) for an unknown id, INVALID_ARG_VALUE for
    an empty comment, 100 for a missing parameter."""
    fields = params.get("fields")
    if params.get("id") in (None, ""):
        raise errors.ApiError(100, "Could not find value for parameter {id}")
    if not isinstance(fields, Mapping):
        raise errors.required_arg("fields")
    comment_id = intval(params["id"])
    row = ctx.portal.db.one("SELECT id FROM timeline_comments WHERE id = ?", (comment_id,))
    if row is None:
        raise errors.not_found_new("Not found.")
    comment = str(fields.get("COMMENT") or "")
    if not comment.strip():
        raise errors.invalid_arg("Comment is empty")
    with ctx.portal.db.transaction():
        ctx.portal.db.execute(
            "UPDATE timeline_comments SET comment = ? WHERE id = ?", (comment, comment_id)
        )
    return comment_id


COMMENT_COLUMNS = {
    "ID": "id",
    "ENTITY_ID": "entity_id",
    "ENTITY_TYPE": "entity_type",
    "CREATED": "created",
    "COMMENT": "comment",
    "AUTHOR_ID": "author_id",
}
COMMENT_ORDER = {"ID": "id", "CREATED": "created", "AUTHOR_ID": "author_id"}


@method("crm.timeline.comment.list", "crm")
def comment_list(ctx: CallContext, params: dict[str, Any]) -> Any:
    """crm-timeline-comment-list.md: rows keyed ID, ENTITY_ID, ENTITY_TYPE, CREATED, COMMENT,
    AUTHOR_ID; ``select`` narrows them; ``order`` takes only ID, CREATED, AUTHOR_ID."""
    flt = arg(params, "filter")
    flt = flt if isinstance(flt, Mapping) else {}
    # The filter must name both ENTITY_ID and ENTITY_TYPE (crm-timeline-comment-list.md;
    # b24phpsdk CommentTest: "only with required filtration by ENTITY_ID and ENTITY_TYPE").
    # Without them the read-permission check of the owner fails and the portal answers its
    # only documented error: "" / "Access denied." / 400.
    entity_type = str(flt.get("ENTITY_TYPE") or "").lower()
    entity_id = intval(flt.get("ENTITY_ID"))
    if entity_id <= 0 or _owner_etid(entity_type) is None:
        raise errors.old_style("Access denied.")
    where = ["entity_id = ?", "entity_type = ?"]
    values: list[Any] = [entity_id, entity_type]
    order = arg(params, "order")
    sorts = [
        f"{COMMENT_ORDER[str(k)]} {'DESC' if str(v) == 'DESC' else 'ASC'}"
        for k, v in (order.items() if isinstance(order, Mapping) else [])
        if str(k) in COMMENT_ORDER
    ]
    select = [str(c) for c in as_list(arg(params, "select"))]
    columns = [c for c in COMMENT_COLUMNS if not select or c in select]
    start = max(ctx.start, 0)
    rows = ctx.portal.db.all(
        f"SELECT * FROM timeline_comments WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join([*sorts, 'id'])} LIMIT 50 OFFSET {start}",
        values,
    )
    count = ctx.portal.db.one(
        f"SELECT COUNT(*) AS n FROM timeline_comments WHERE {' AND '.join(where)}", values
    )
    total = int(count["n"]) if count else 0
    return Paged(
        [
            {
                c: r[COMMENT_COLUMNS[c]]
                if c in ("ENTITY_TYPE", "CREATED", "COMMENT")
                else str(r[COMMENT_COLUMNS[c]])
                for c in columns
            }
            for r in rows
        ],
        total,
        start + 50 if start + 50 < total else None,
    )


DUP_TYPES = {"CONTACT": CONTACT, "COMPANY": COMPANY, "LEAD": 1}


@method("crm.duplicate.findbycomm", "crm")
def findbycomm(ctx: CallContext, params: dict[str, Any]) -> Any:
    comm_type = str(arg(params, "type") or "").upper()
    if not comm_type:
        raise errors.old_style("Communication type is not defined")
    if comm_type not in ("EMAIL", "PHONE"):
        raise errors.old_style(
            f"Communication type '{comm_type}' is not supported in current context"
        )
    values = [str(v) for v in as_list(arg(params, "values")) if str(v).strip()]
    if not values:
        raise errors.old_style("Communication values is not defined")
    if len(values) > 20:
        raise errors.old_style("Too many communication values (20 at most)")
    wanted = str(arg(params, "entity_type") or "").upper()
    norms = [ctx.portal.normalize_comm(comm_type, v) for v in values]
    marks = ",".join("?" * len(norms))
    out: dict[str, list[int]] = {}
    for name, etid in DUP_TYPES.items():
        if wanted and wanted != name:
            continue
        rows = ctx.portal.db.all(
            f"SELECT DISTINCT element_id FROM multifields WHERE entity_type_id = ? AND type_id = ? "
            f"AND norm IN ({marks}) ORDER BY element_id LIMIT 20",
            (etid, comm_type, *norms),
        )
        if rows:
            out[name] = [int(r["element_id"]) for r in rows]
            if len(rows) >= 20:
                break
    return out or []
