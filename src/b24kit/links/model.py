"""A blueprint link resolved against a portal: pipeline ids, stage ids, field names."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

from b24kit.blueprint.locate import deal_pipeline, stage_id
from b24kit.blueprint.model import Blueprint, Link
from b24kit.links.children import ChildLink
from b24kit.portal.ids import uf_name
from b24kit.portal.snapshot import PipelineSnap, Snapshot

DEAL_REF = re.compile(r"^(?:D_)?(\d+)$")


class Deal(NamedTuple):
    """The few fields of a deal an audit needs (a tuple: audits build one per deal)."""

    id: int
    category: int
    stage: str
    semantic: str  # P, S, F
    parent_ref: int | None  # what the child's parent field points to
    child_ref: int | None  # what the parent's child field points to
    mirror: str | None
    assigned: int | None
    amount: float


def deal_id(value: Any) -> int | None:
    """``D_12`` or ``12`` (or a one-element list of either) -> 12."""
    if isinstance(value, list):
        value = value[0] if value else None
    match = DEAL_REF.match(str(value or "").strip())
    return int(match.group(1)) if match else None


@dataclass
class ResolvedLink:
    link: Link
    parent: PipelineSnap
    child: PipelineSnap
    trigger: str  # parent STATUS_ID that creates the child
    child_start: str
    moves: dict[str, str]  # child STATUS_ID -> parent STATUS_ID
    child_field: str  # UF on the child holding the parent
    parent_field: str | None
    mirror_field: str | None
    copy_fields: list[str]

    def status(self, pipeline: PipelineSnap, code: str) -> str:
        return stage_id(pipeline, code)

    def sort_of(self, pipeline: PipelineSnap, status_id: str) -> int:
        for stage in pipeline.stages:
            if stage.status_id == status_id:
                return stage.sort
        return -1

    def stage_name(self, status_id: str) -> str:
        return next((s.name for s in self.child.stages if s.status_id == status_id), status_id)

    def child_link(self) -> ChildLink:
        return ChildLink(
            self.link.name,
            self.child.id,
            self.child_field,
            self.parent_field,
            self.mirror_field,
            tuple(self.copy_fields),
            {s.status_id: s.name for s in self.child.stages},
        )

    def fields(self) -> list[str]:
        names = {
            "ID",
            "CATEGORY_ID",
            "STAGE_ID",
            "STAGE_SEMANTIC_ID",
            "ASSIGNED_BY_ID",
            "OPPORTUNITY",
            self.child_field,
        }
        names |= {f for f in (self.parent_field, self.mirror_field) if f}
        return sorted(names)


def resolve_links(
    bp: Blueprint, snap: Snapshot, names: list[str] | None = None
) -> list[ResolvedLink]:
    def pipeline(code: str) -> PipelineSnap:
        return deal_pipeline(bp, snap, code)

    out = []
    for link in bp.links:
        if names and link.name not in names:
            continue
        parent, child = pipeline(link.parent.pipeline), pipeline(link.child.pipeline)
        resolved = ResolvedLink(
            link,
            parent,
            child,
            "",
            "",
            {},
            uf_name(link.child_field),
            uf_name(link.parent_field) if link.parent_field else None,
            uf_name(link.mirror_field) if link.mirror_field else None,
            list(link.copy_fields),
        )
        resolved.trigger = resolved.status(parent, link.parent.stage)
        resolved.child_start = resolved.status(child, link.child.stage)
        resolved.moves = {
            resolved.status(child, m.child_stage): resolved.status(parent, m.parent_stage)
            for m in link.moves
        }
        out.append(resolved)
    return out


def to_deal(row: dict[str, Any], link: ResolvedLink) -> Deal:
    # stage and mirror texts repeat across thousands of deals: share one copy of each
    mirror = row.get(link.mirror_field) if link.mirror_field else None
    return Deal(
        int(row["ID"]),
        int(row.get("CATEGORY_ID") or 0),
        sys.intern(str(row.get("STAGE_ID") or "")),
        sys.intern(str(row.get("STAGE_SEMANTIC_ID") or "P")),
        deal_id(row.get(link.child_field)),
        deal_id(row.get(link.parent_field)) if link.parent_field else None,
        sys.intern(str(mirror)) if mirror is not None else None,
        int(row["ASSIGNED_BY_ID"]) if row.get("ASSIGNED_BY_ID") else None,
        float(row.get("OPPORTUNITY") or 0),
    )
