"""A portal's structure (pipelines, stages, custom fields, smart processes) as plain data,
read in one ``batch`` (two when smart processes exist)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from b24kit.client import B24Client, BatchResult
from b24kit.client.errors import IncompleteRead
from b24kit.client.paging import WRAPPED_OFFSET, read_all
from b24kit.encoding import as_list
from b24kit.portal.ids import SEMANTIC_WORD, EntityType, spa_uf_entity, stage_entity, stage_prefix

LANGS = ("ru", "en")


@dataclass
class StageSnap:
    row_id: int
    status_id: str
    code: str
    name: str
    sort: int
    color: str | None
    semantics: str
    system: bool


@dataclass
class PipelineSnap:
    id: int
    entity_type_id: int
    name: str
    sort: int
    is_default: bool
    origin_id: str = ""
    originator_id: str = ""
    stages: list[StageSnap] = field(default_factory=list)

    @property
    def stage_entity(self) -> str:
        return stage_entity(self.entity_type_id, self.id)

    @property
    def prefix(self) -> str:
        return stage_prefix(self.entity_type_id, self.id)


@dataclass
class EnumSnap:
    id: int
    value: str
    xml_id: str
    sort: int
    default: bool


@dataclass
class FieldSnap:
    id: int
    name: str  # UF_CRM_...
    type: str
    multiple: bool
    mandatory: bool
    sort: int
    settings: dict[str, Any]
    labels: dict[str, str]
    values: list[EnumSnap] = field(default_factory=list)


@dataclass
class SpaSnap:
    id: int
    entity_type_id: int
    code: str | None
    title: str
    flags: dict[str, str]
    parents: list[int]
    children: list[int]
    pipelines: list[PipelineSnap] = field(default_factory=list)
    fields: list[FieldSnap] = field(default_factory=list)


@dataclass
class Snapshot:
    deal_pipelines: list[PipelineSnap] = field(default_factory=list)
    deal_fields: list[FieldSnap] = field(default_factory=list)
    spas: list[SpaSnap] = field(default_factory=list)
    requests: int = 0

    def fingerprint(self) -> str:
        data = asdict(self)
        data.pop("requests")
        return hashlib.sha256(
            json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()
        ).hexdigest()[:16]

    def spa_by_code(self, code: str) -> SpaSnap | None:
        return next((s for s in self.spas if s.code == code), None)


def _stage_rows(statuses: list[dict[str, Any]], entity: str, prefix: str) -> list[StageSnap]:
    rows = [r for r in statuses if r.get("ENTITY_ID") == entity]
    out = []
    for r in rows:
        status_id = str(r["STATUS_ID"])
        code = status_id[len(prefix) :] if prefix and status_id.startswith(prefix) else status_id
        out.append(
            StageSnap(
                int(r["ID"]),
                status_id,
                code,
                str(r["NAME"]),
                int(r["SORT"]),
                r.get("COLOR"),
                SEMANTIC_WORD.get(r.get("SEMANTICS"), "process"),
                r.get("SYSTEM") == "Y",
            )
        )
    return sorted(out, key=lambda s: (s.sort, s.row_id))


def _pipeline(row: dict[str, Any], statuses: list[dict[str, Any]]) -> PipelineSnap:
    p = PipelineSnap(
        int(row["id"]),
        int(row["entityTypeId"]),
        str(row["name"]),
        int(row.get("sort") or 0),
        row.get("isDefault") == "Y",
        str(row.get("originId") or ""),
        str(row.get("originatorId") or ""),
    )
    p.stages = _stage_rows(statuses, p.stage_entity, p.prefix)
    return p


def _enum(items: Any, camel: bool) -> list[EnumSnap]:
    out = []
    for i in as_list(items):
        if camel:
            out.append(
                EnumSnap(
                    int(i["id"]),
                    str(i["value"]),
                    str(i.get("xmlId") or ""),
                    int(i.get("sort") or 0),
                    i.get("def") == "Y",
                )
            )
        else:
            out.append(
                EnumSnap(
                    int(i["ID"]),
                    str(i["VALUE"]),
                    str(i.get("XML_ID") or ""),
                    int(i.get("SORT") or 0),
                    i.get("DEF") == "Y",
                )
            )
    return out


def _deal_fields(by_lang: dict[str, list[dict[str, Any]]]) -> list[FieldSnap]:
    fields: dict[str, FieldSnap] = {}
    for lang, rows in by_lang.items():
        for r in rows:
            name = str(r["FIELD_NAME"])
            snap = fields.get(name)
            if snap is None:
                snap = FieldSnap(
                    int(r["ID"]),
                    name,
                    str(r["USER_TYPE_ID"]),
                    r.get("MULTIPLE") == "Y",
                    r.get("MANDATORY") == "Y",
                    int(r.get("SORT") or 100),
                    dict(r.get("SETTINGS") or {}),
                    {},
                    _enum(r.get("LIST"), camel=False),
                )
                fields[name] = snap
            snap.labels[lang] = str(r.get("EDIT_FORM_LABEL") or "")
    return sorted(fields.values(), key=lambda f: f.name)


def _spa_field(r: dict[str, Any]) -> FieldSnap:
    labels = r.get("editFormLabel") or {}
    return FieldSnap(
        int(r["id"]),
        str(r["fieldName"]),
        str(r["userTypeId"]),
        r.get("multiple") == "Y",
        r.get("mandatory") == "Y",
        int(r.get("sort") or 100),
        dict(r.get("settings") or {}),
        {lang: str(labels.get(lang) or "") for lang in LANGS}
        if isinstance(labels, dict)
        else {lang: str(labels) for lang in LANGS},
        _enum(r.get("enum"), camel=True),
    )


async def _whole(
    client: B24Client, batch: BatchResult, cmds: dict[str, tuple[str, dict[str, Any]]]
) -> BatchResult:
    """Every list of the batch whole: a command whose answer says ``next`` is read again
    page by page. Whether ``crm.status.list`` (or any list here) pages is not settled by
    the docs (docs/sandbox.md, "status-list-pages"), so never trust one page to be all."""
    for name, cmd_next in batch.next.items():
        if cmd_next is None or name not in cmds:
            continue
        method, params = cmds[name]
        rows = await read_all(client, method, params)
        wrapper = WRAPPED_OFFSET.get(method)
        batch.result[name] = {wrapper: rows} if wrapper else rows
    return batch


def _need_get(row: dict[str, Any]) -> bool:
    """A ``userfieldconfig.list`` row without what the snapshot needs: the docs' example of
    the list shows no ``enum`` and no labels (docs/sandbox.md, "uf-list-bare")."""
    if "editFormLabel" not in row:
        return True
    return row.get("userTypeId") == "enumeration" and not (
        isinstance(row.get("enum"), list) and row["enum"]
    )


async def _spa_fields(
    client: B24Client, rows: list[dict[str, Any]], entity_id: str
) -> list[dict[str, Any]]:
    """The smart process's own fields, each with its enum and labels. A row of another
    entity is dropped: the list's entityId filter is not documented as honoured."""
    mine = [r for r in rows if str(r.get("entityId")) == entity_id]
    missing = [r for r in mine if _need_get(r)]
    for chunk in range(0, len(missing), 50):
        group = missing[chunk : chunk + 50]
        got = await client.batch(
            {
                f"g{r['id']}": ("userfieldconfig.get", {"moduleId": "crm", "id": r["id"]})
                for r in group
            }
        )
        if got.error:
            raise next(iter(got.error.values()))
        for r in group:
            full = got.result.get(f"g{r['id']}")
            field_row = full.get("field") if isinstance(full, dict) else None
            if not isinstance(field_row, dict) or str(field_row.get("entityId")) != entity_id:
                # never go on with a field whose values are unknown: the plan would send
                # them all again (duplicates) or, on a replacing portal, delete them
                raise IncompleteRead(
                    f"userfieldconfig.get {r['id']}: no field of {entity_id} in the answer"
                )
            r.clear()
            r.update(field_row)
    return mine


async def read_snapshot(client: B24Client) -> Snapshot:
    start = client.requests
    first_cmds: dict[str, tuple[str, dict[str, Any]]] = {
        "cats": ("crm.category.list", {"entityTypeId": int(EntityType.DEAL)}),
        # by ID: a stable order across pages (many rows share a SORT); stages are sorted here
        "statuses": ("crm.status.list", {"order": {"ID": "ASC"}}),
        **{f"uf_{lang}": ("crm.deal.userfield.list", {"filter": {"LANG": lang}}) for lang in LANGS},
        "types": ("crm.type.list", {"order": {"id": "ASC"}}),
    }
    first = await client.batch(first_cmds)
    if first.error:
        name, error = next(iter(first.error.items()))
        raise error
    first = await _whole(client, first, first_cmds)
    statuses = as_list(first.result["statuses"])
    snap = Snapshot()
    snap.deal_pipelines = sorted(
        (_pipeline(row, statuses) for row in as_list(first.result["cats"].get("categories"))),
        key=lambda p: (p.sort, p.id),
    )
    snap.deal_fields = _deal_fields({lang: as_list(first.result[f"uf_{lang}"]) for lang in LANGS})
    types = as_list(
        (first.result.get("types") or {}).get("types")
        if isinstance(first.result.get("types"), dict)
        else []
    )
    for chunk in range(0, len(types), 16):
        group = types[chunk : chunk + 16]
        cmds: dict[str, tuple[str, dict[str, Any]]] = {}
        for t in group:
            cmds[f"t{t['id']}"] = ("crm.type.get", {"id": t["id"]})
            cmds[f"c{t['id']}"] = ("crm.category.list", {"entityTypeId": t["entityTypeId"]})
            cmds[f"f{t['id']}"] = (
                "userfieldconfig.list",
                {"moduleId": "crm", "filter": {"entityId": spa_uf_entity(t["id"])}},
            )
        second = await client.batch(cmds)
        if second.error:
            raise next(iter(second.error.values()))
        second = await _whole(client, second, cmds)
        for t in group:
            full = second.result[f"t{t['id']}"]["type"]
            rel = full.get("relations") or {}
            flags = {k: str(v) for k, v in full.items() if re.match(r"^is[A-Z]", k)}
            spa = SpaSnap(
                int(full["id"]),
                int(full["entityTypeId"]),
                full.get("code") or None,
                str(full["title"]),
                flags,
                sorted(int(r["entityTypeId"]) for r in as_list(rel.get("parent"))),
                sorted(int(r["entityTypeId"]) for r in as_list(rel.get("child"))),
            )
            spa.pipelines = sorted(
                (
                    _pipeline(row, statuses)
                    for row in as_list(second.result[f"c{t['id']}"].get("categories"))
                ),
                key=lambda p: (p.sort, p.id),
            )
            rows = await _spa_fields(
                client, as_list(second.result[f"f{t['id']}"].get("fields")), spa_uf_entity(t["id"])
            )
            spa.fields = sorted((_spa_field(r) for r in rows), key=lambda f: f.name)
            snap.spas.append(spa)
    snap.requests = client.requests - start
    return snap
