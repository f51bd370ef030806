"""A blueprint link resolved against a portal: pipeline ids, stage ids, field names."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from b24kit.blueprint.locate import deal_pipeline, stage_id
from b24kit.blueprint.model import Blueprint, Link
from b24kit.errors import InputError
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


@dataclass(frozen=True)
class QuoteFields:
    """Parent fields a move writes once: the child's price (money: "amount|CURRENCY") and
    the moment the child reached the stage."""

    price: str | None
    money: bool  # the price field is money (else a number)
    time: str | None


@dataclass
class ResolvedLink:
    """A link on this portal. Its parents may sit in several pipelines (each sales
    direction): the trigger and the moves are resolved in each of them."""

    link: Link
    parents: list[PipelineSnap]  # every parent pipeline, in the blueprint's order
    child: PipelineSnap
    triggers: dict[int, str]  # parent CATEGORY_ID -> the STATUS_ID that creates the child
    child_start: str
    # child STATUS_ID -> parent CATEGORY_ID -> the parent STATUS_ID it moves the parent to
    moves: dict[str, dict[int, str]]
    child_field: str  # UF on the child holding the parent
    parent_field: str | None
    mirror_field: str | None
    copy_fields: list[str]
    # child STATUS_ID -> what its move records on the parent, once (blueprint's moves.record)
    quotes: dict[str, QuoteFields] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # STATUS_IDs are unique on a portal (C<id>: prefixes), so one table serves all
        self._sorts = {s.status_id: s.sort for p in (*self.parents, self.child) for s in p.stages}
        self.parent_ids = frozenset(p.id for p in self.parents)
        self._by_id = {p.id: p for p in self.parents}

    @property
    def name(self) -> str:
        return self.link.name

    @property
    def categories(self) -> list[int]:
        """The CATEGORY_IDs of every deal the link is about: its parents' and children's."""
        return sorted({*self.parent_ids, self.child.id})

    def code_of(self, category: int) -> str:
        """The blueprint's code of a pipeline of the link (a parent's or the child's)."""
        if category == self.child.id:
            return self.link.child.pipeline
        codes = self.link.parent.codes
        at = next((i for i, p in enumerate(self.parents) if p.id == category), None)
        return codes[at] if at is not None and at < len(codes) else str(category)

    def parent_of(self, category: int) -> PipelineSnap | None:
        return self._by_id.get(category)

    def trigger_of(self, category: int) -> str | None:
        return self.triggers.get(category)

    def move_for(self, child_stage: str, parent_category: int) -> str | None:
        """The stage a child at ``child_stage`` moves its parent to, in the parent's pipeline."""
        return self.moves.get(child_stage, {}).get(parent_category)

    def done_stages(self) -> list[str]:
        """The child stages that move the parent (the estimate's «Согласование»)."""
        return list(self.moves)

    def parent_names(self) -> str:
        return ", ".join(f"«{p.name}»" for p in self.parents)

    def status(self, pipeline: PipelineSnap, code: str) -> str:
        return stage_id(pipeline, code)

    def sort_of(self, status_id: str) -> int:
        return self._sorts.get(status_id, -1)

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
        parents = [pipeline(code) for code in link.parent.codes]
        child = pipeline(link.child.pipeline)
        _fields_exist(link, snap)
        out.append(
            ResolvedLink(
                link,
                parents,
                child,
                {p.id: stage_id(p, link.parent.stage) for p in parents},
                stage_id(child, link.child.stage),
                {
                    stage_id(child, m.child_stage): {
                        p.id: stage_id(p, m.parent_stage) for p in parents
                    }
                    for m in link.moves
                },
                uf_name(link.child_field),
                uf_name(link.parent_field) if link.parent_field else None,
                uf_name(link.mirror_field) if link.mirror_field else None,
                list(link.copy_fields),
                _quotes(bp, link, child),
            )
        )
    return out


def _fields_exist(link: Link, snap: Snapshot) -> None:
    """The link's custom fields are on the portal: one missing (deleted there, or the
    blueprint not applied) took writes the portal silently drops, so --fix said it had
    repaired what it had not, and every sync pass wrote the same deals again."""
    named = [link.child_field, link.parent_field, link.mirror_field]  # codes of custom fields
    named += [
        f for m in link.moves if m.record is not None for f in (m.record.price, m.record.time)
    ]
    names = [uf_name(code) for code in named if code]
    names += [f for f in link.copy_fields if f.upper().startswith("UF_")]  # (or standard ones)
    have = {f.name for f in snap.deal_fields}
    for name in names:
        if name.upper() not in have:
            raise InputError(
                f"link {link.name!r}: the portal has no deal field {name}: apply the "
                "blueprint first (b24kit apply)"
            )


def _quotes(bp: Blueprint, link: Link, child: PipelineSnap) -> dict[str, QuoteFields]:
    types = {f.code: f.type for f in bp.deal.fields}
    out = {}
    for move in link.moves:
        if move.record is not None:
            price, time = move.record.price, move.record.time
            out[stage_id(child, move.child_stage)] = QuoteFields(
                uf_name(price) if price else None,
                types.get(price or "") == "money",
                uf_name(time) if time else None,
            )
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
