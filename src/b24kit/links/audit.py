"""Audit parent/child consistency: findings by rule, each with its safe repair."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b24kit.blueprint.changes import plain
from b24kit.client import B24Client, Command, iterate
from b24kit.links.children import new_child
from b24kit.links.index import DealIndex
from b24kit.links.model import Deal, ResolvedLink, to_deal
from b24kit.portal import commands as cmd
from b24kit.portal.ids import LINKS_ORIGINATOR, deal_ref

SEVERITY_RANK = {"info": 0, "warn": 1, "error": 2}
RULES = {
    "L001": ("missing-child", "error", "an open parent at or past the trigger stage has no child"),
    "L002": (
        "orphan-child",
        "error",
        "a child's parent field is empty, points nowhere, or "
        "points to a deal in the wrong pipeline",
    ),
    "L003": ("duplicate-children", "error", "more children than the link allows"),
    "L004": ("stale-mirror", "warn", "the parent's mirror field does not show the child's stage"),
    "L005": (
        "stale-parent-stage",
        "error",
        "the child reached a stage that should have moved its parent, and the parent has not moved",
    ),
    "L006": ("parent-closed-child-open", "warn", "the parent is closed while a child is open"),
    "L007": ("child-closed-parent-open", "info", "a child is closed while its parent is open"),
    "L008": (
        "nested-or-cycle",
        "error",
        "a child's parent is itself a child of the same link, or the links form a cycle",
    ),
    "L009": (
        "link-fields-disagree",
        "error",
        "the parent's child field and the child's parent field disagree",
    ),
}


@dataclass
class Finding:
    rule: str
    link: str
    deals: list[int]
    seen: str
    expected: str
    repair: list[Command] = field(default_factory=list)
    # the pipeline (code) it is about: the parent's, or the child's for an orphan or a cycle
    pipeline: str = ""

    @property
    def name(self) -> str:
        return RULES[self.rule][0]

    @property
    def severity(self) -> str:
        return RULES[self.rule][1]

    def as_dict(self, portal_base: str) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "link": self.link,
            "pipeline": self.pipeline,
            "deals": [{"id": d, "url": deal_url(portal_base, d)} for d in self.deals],
            "seen": self.seen,
            "expected": self.expected,
            "repair": [{"method": c.method, "params": plain(c.params)} for c in self.repair],
        }


def deal_url(base: str, deal: int) -> str:
    return f"{base.rstrip('/')}/crm/deal/details/{deal}/"


@dataclass
class AuditResult:
    findings: list[Finding]
    deals_read: int
    complete: bool = True

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for f in self.findings:
            out[f.rule] += 1
        return dict(sorted(out.items()))


async def read_link_deals(client: B24Client, link: ResolvedLink) -> DealIndex:
    """Every deal of the link's pipelines, streamed into a disk-backed index."""
    index = DealIndex()
    page: list[Deal] = []
    async for row in iterate(
        client,
        "crm.deal.list",
        {
            "filter": {"@CATEGORY_ID": link.categories},
            "select": link.fields(),
        },
    ):
        page.append(to_deal(row, link))
        if len(page) >= 2500:
            index.add(page)
            page = []
    index.add(page)
    index.finish()
    return index


class _Auditor:
    def __init__(self, link: ResolvedLink, index: DealIndex) -> None:
        self.link = link
        self.index = index
        self.findings: list[Finding] = []
        self.seq = 0
        # the pipeline the findings being made are about: the parent's, then the child's
        self.pipeline = ""

    def add(
        self,
        rule: str,
        deals: list[int],
        seen: str,
        expected: str,
        repair: list[Command] | None = None,
    ) -> None:
        self.findings.append(
            Finding(rule, self.link.link.name, deals, seen, expected, repair or [], self.pipeline)
        )

    def name(self) -> str:
        self.seq += 1
        return f"r{self.seq}"

    def past_trigger(self, parent: Deal) -> bool:
        """An open parent at or past the trigger stage needs its child; a closed one (won
        or lost) is past needing an estimate, and a child made now would only be left open."""
        trigger = self.link.trigger_of(parent.category)
        return (
            parent.semantic == "P"
            and trigger is not None
            and self.link.sort_of(parent.stage) >= self.link.sort_of(trigger)
        )

    def points_to_a_child(self, parent: Deal) -> bool:
        """The parent's child field names a deal of the child pipeline that does not point
        back: not a missing child but a broken link (L002 re-links it). Making another
        child here would leave two."""
        if not self.link.parent_field or parent.child_ref is None:
            return False
        pointed = self.index.get(parent.child_ref)
        if pointed is None or pointed.category != self.link.child.id:
            return False
        its_parent = self.index.get(pointed.parent_ref) if pointed.parent_ref else None
        return its_parent is None or its_parent.category not in self.link.parent_ids

    def create_child(self, parent: Deal) -> list[Command]:
        """The child, without the fields copied from the parent: the repair reads the
        parent and builds it again with them (links.run.fix)."""
        return child_repair(self.link, parent.id, {}, self.name)

    def run(self) -> list[Finding]:
        link = self.link
        for pipeline in link.parents:
            self.pipeline = link.code_of(pipeline.id)
            for parent, kids in self.index.parents_with_children(pipeline.id, link.child.id):
                self.check_parent(parent, kids)
        self.pipeline = link.code_of(link.child.id)
        for child, found in self.index.children_with_parent(link.child.id):
            self.check_child(child, found)
        self.cycles()
        return self.findings

    def check_parent(self, parent: Deal, kids: list[Deal]) -> None:
        """The rules seen from a parent and its children, in rule order (L001, L003, L006,
        L009, then those of a parent with exactly one child)."""
        if not kids and self.past_trigger(parent) and not self.points_to_a_child(parent):
            self.add(
                "L001",
                [parent.id],
                f"stage {parent.stage}, no child",
                f"a child in «{self.link.child.name}»",
                self.create_child(parent),
            )
        max_children = self.link.link.max_children
        if len(kids) > max_children:
            self.add(
                "L003",
                [parent.id, *[k.id for k in kids]],
                f"{len(kids)} children",
                f"at most {max_children}",
            )
        if parent.semantic in ("S", "F"):
            for kid in kids:
                if kid.semantic == "P":
                    self.add(
                        "L006",
                        [parent.id, kid.id],
                        f"parent closed ({parent.stage}), child open ({kid.stage})",
                        "the child closed first",
                    )
        self.link_fields_disagree(parent, kids)
        if len(kids) == 1:
            self.check_only_child(parent, kids[0])

    def link_fields_disagree(self, parent: Deal, kids: list[Deal]) -> None:
        """L009: the parent's child field names none of its children (repaired when there
        is one), or nothing while it has exactly one. Only for a link with that field."""
        link = self.link
        if not link.parent_field or not kids:
            return
        pointed = parent.child_ref
        if pointed is not None and pointed not in {k.id for k in kids}:
            repair = []
            if len(kids) == 1:
                repair = [
                    cmd.entity_update(
                        "deal",
                        parent.id,
                        {link.parent_field: deal_ref(kids[0].id)},
                        name=self.name(),
                    )
                ]
            self.add(
                "L009",
                [parent.id, *[k.id for k in kids]],
                f"parent points to {pointed}",
                f"one of {[k.id for k in kids]}",
                repair,
            )
        elif pointed is None and len(kids) == 1:
            self.add(
                "L009",
                [parent.id, kids[0].id],
                "parent points to nothing",
                f"D_{kids[0].id}",
                [
                    cmd.entity_update(
                        "deal",
                        parent.id,
                        {link.parent_field: deal_ref(kids[0].id)},
                        name=self.name(),
                    )
                ],
            )

    def check_only_child(self, parent: Deal, kid: Deal) -> None:
        """The rules of a parent with exactly one child: its mirror field (L004), the stage
        the child's stage should have moved it to (L005), a closed child (L007)."""
        link = self.link
        if link.mirror_field and parent.mirror != link.stage_name(kid.stage):
            self.add(
                "L004",
                [parent.id, kid.id],
                f"mirror {parent.mirror!r}",
                repr(link.stage_name(kid.stage)),
                [
                    cmd.entity_update(
                        "deal",
                        parent.id,
                        {link.mirror_field: link.stage_name(kid.stage)},
                        name=self.name(),
                    )
                ],
            )
        target = link.move_for(kid.stage, parent.category)
        if target and parent.semantic == "P" and link.sort_of(parent.stage) < link.sort_of(target):
            self.add(
                "L005",
                [parent.id, kid.id],
                f"child at {kid.stage}, parent at {parent.stage}",
                f"parent at {target}",
                [cmd.entity_update("deal", parent.id, {"STAGE_ID": target}, name=self.name())],
            )
        if kid.semantic in ("S", "F") and parent.semantic == "P" and not target:
            self.add(
                "L007",
                [parent.id, kid.id],
                f"child closed ({kid.stage})",
                "parent closes or moves on",
            )

    def check_child(self, child: Deal, found: Deal | None) -> None:
        """A child whose parent field does not name a deal of the parent pipeline: nested
        under another child (L008) or orphaned (L002, re-linked to the one parent claiming
        it, if there is exactly one)."""
        link = self.link
        ref = child.parent_ref
        if found is not None and found.category in link.parent_ids:
            return
        if found is not None and found.category == link.child.id:
            self.add(
                "L008",
                [child.id, found.id],
                f"parent {found.id} is itself a child",
                "a parent in the parent pipeline",
            )
            return
        claimed = self.index.claiming(child.id, sorted(link.parent_ids))
        repair = []
        if len(claimed) == 1:
            repair = [
                cmd.entity_update(
                    "deal", child.id, {link.child_field: deal_ref(claimed[0].id)}, name=self.name()
                )
            ]
        seen = (
            "empty"
            if ref is None
            else (
                f"points to {ref}, which does not exist"
                if found is None
                else f"points to {ref} in the wrong pipeline"
            )
        )
        self.add(
            "L002",
            [child.id, *[p.id for p in claimed]],
            seen,
            f"a parent in {link.parent_names()}",
            repair,
        )

    def cycles(self) -> None:
        for start in self.index.chain_starts():
            seen = [start.id]
            current = start
            while current.parent_ref is not None:
                nxt = self.index.get(current.parent_ref)
                if nxt is None:
                    break
                if nxt.id in seen:
                    if nxt.id == start.id and start.id == min(seen):
                        self.add(
                            "L008",
                            seen,
                            "the parent chain loops: " + " -> ".join(map(str, seen + [start.id])),
                            "no cycle",
                        )
                    break
                seen.append(nxt.id)
                current = nxt


def audit_deals(link: ResolvedLink, deals: list[Deal] | DealIndex) -> list[Finding]:
    index = deals if isinstance(deals, DealIndex) else DealIndex.of(deals)
    try:
        return _Auditor(link, index).run()
    finally:
        index.close()


def child_repair(
    link: ResolvedLink, parent: int, parent_fields: dict[str, Any], names: Callable[[], str]
) -> list[Command]:
    """The repair of a missing child (L001): a child at the link's first stage, found
    again by (b24kit-links, "<link>:<parent id>") if its answer is lost."""
    return new_child(
        link.child_link(),
        parent,
        link.child_start,
        parent_fields,
        (LINKS_ORIGINATOR, f"{link.link.name}:{parent}"),
        names,
    )
