"""Undo a mapping's migration, for rehearsals (issue 10, item 8): ``migrate undo MAPPING``.

**What is removed** is what this mapping's runs made, found by b24kit's own keys (never by
a name or a phone):

- deals with ORIGINATOR_ID = the mapping's ``originator``: children first (ORIGIN_ID
  ``row:<id>:<link>``), then parents (``row:<id>``) and any other deal of the originator;
  their timeline comments go with them (deleting a deal deletes its timeline,
  crm-deal-delete.md), b24kit's ``[b24kit <originator> row <id>]`` comments among them;
- the contractor directory's items (the mapping's contractor smart process) whose xmlId
  is ``<originator>:contractor:<key>``;
- contacts and companies with ORIGINATOR_ID = the originator, whatever their ORIGIN_ID
  (``contact:``, ``person:``, ``company:`` keys alike), unless a deal that is not being
  removed is still bound to one (another mapping's deal that found it by a phone, a
  manager's deal): that one is kept, and the plan says which deal keeps it.

Contacts and companies the mapping did not make (they existed and only gained phones,
e-mails or deals) carry no such key and are never removed: the plan lists those bound to
the mapping's deals as "kept: not made by this mapping".

**Order.** Children, then parents, then contractors, then contacts and companies: each a
run of its own through the executor, the next only when the one before succeeded. An undo
stopped anywhere (killed, a portal failure) leaves no child without its parent and no deal
without its contact, and a second undo reads what is left and finishes it. A ``migrate
run`` afterwards finds none of the mapping's keys and creates everything again.

**Changed on the portal since the migration.** An entity counts as changed when a user
other than the one who created it (its CREATED_BY_ID: the user of the webhook the migration
ran with) made its last edit, its last stage move or its last activity, or, for a deal,
when it has a timeline comment that is not b24kit's (without this mapping's marker, or
written by another user). These are fields every portal keeps and a webhook reads:
MODIFY_BY_ID, MOVED_BY_ID, LAST_ACTIVITY_BY (updatedBy, movedBy, lastActivityBy of smart
process items), a comment's AUTHOR_ID. Later writes by the migration's own user (a re-run,
sync under the same webhook) are not changes. One changed entity refuses the whole undo,
each listed on one line, unless ``force``. What the rule cannot see: an edit made under
the migration's own user account, or one whose traces a later b24kit write covered (a
re-run's update after a person's edit of a title sets MODIFY_BY_ID back; a stage moved
by a person stays in MOVED_BY_ID). Give integrations a webhook of their own user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from b24kit.client import B24Client, Command, Executor, Outcome, read_all
from b24kit.encoding import as_list
from b24kit.migrate.mapping import Mapping
from b24kit.portal import commands as cmd
from b24kit.portal.ids import LINKS_ORIGINATOR, EntityType, parent_field
from b24kit.portal.snapshot import read_snapshot

# the steps of an undo, deepest first; each step one executor run
STEPS: tuple[tuple[str, ...], ...] = (
    ("children",),
    ("parents",),
    ("contractors",),
    ("contacts", "companies"),
)
ENTITIES = tuple(e for step in STEPS for e in step)
CHUNK = 50  # ids in one IN filter
Progress = Callable[[int, int], None]

# who touched an entity last, by kind of touch: (deals, contacts, companies) / (items)
OLD_TOUCHES = (("MODIFY_BY_ID", "edited"), ("MOVED_BY_ID", "stage moved"))
OLD_ACTIVITY = ("LAST_ACTIVITY_BY", "activity")
ITEM_TOUCHES = (("updatedBy", "edited"), ("movedBy", "stage moved"), ("lastActivityBy", "activity"))


@dataclass(frozen=True)
class Doomed:
    """One entity the undo removes."""

    entity: str  # children | parents | contractors | contacts | companies
    id: int
    key: str  # its ORIGIN_ID, or its xmlId
    title: str
    changes: tuple[str, ...] = ()  # why it counts as changed since the migration

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "id": self.id,
            "key": self.key,
            "title": self.title,
            "changes": list(self.changes),
        }


@dataclass(frozen=True)
class Kept:
    """A contact, company or contractor the undo leaves, and why."""

    entity: str
    id: int
    title: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "id": self.id, "title": self.title, "reason": self.reason}


@dataclass
class UndoPlan:
    originator: str
    remove: list[Doomed] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    comments: int = 0  # b24kit's comments on the deals removed, going with them
    contractor_etid: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[Doomed]:
        return [d for d in self.remove if d.changes]

    @property
    def counts(self) -> dict[str, int]:
        return {e: sum(d.entity == e for d in self.remove) for e in ENTITIES}

    def steps(self) -> list[list[Command]]:
        """The delete commands, one list per step (deepest first); empty steps left out."""
        out: list[list[Command]] = []
        for step in STEPS:
            commands = [self._delete(d) for d in self.remove if d.entity in step]
            if commands:
                out.append(commands)
        return out

    def _delete(self, doomed: Doomed) -> Command:
        name = f"x_{doomed.entity}_{doomed.id}"
        if doomed.entity == "contractors":
            assert self.contractor_etid is not None
            return cmd.item_delete(self.contractor_etid, doomed.id, name=name)
        entity = {"contacts": "contact", "companies": "company"}.get(doomed.entity, "deal")
        return cmd.entity_delete(entity, doomed.id, name=name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "originator": self.originator,
            "remove": self.counts,
            "comments": self.comments,
            "changed": len(self.changed),
            "kept": len(self.kept),
            "entities": [d.as_dict() for d in self.remove],
            "kept_entities": [k.as_dict() for k in self.kept],
            "notes": self.notes,
        }


@dataclass
class UndoResult:
    plan: UndoPlan
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def removed(self) -> dict[str, int]:
        """Per entity, how many deletes succeeded."""
        done = {o.name for o in self.outcomes if o.ok}
        out = dict.fromkeys(ENTITIES, 0)
        for d in self.plan.remove:
            if f"x_{d.entity}_{d.id}" in done:
                out[d.entity] += 1
        return out


class UndoRefused(Exception):
    """Entities changed on the portal since the migration, and no force."""

    def __init__(self, changed: list[Doomed]) -> None:
        super().__init__(f"{len(changed)} entit(ies) changed on the portal since the migration")
        self.changed = changed


# ----------------------------------------------------------------- reading
def touched_by_others(
    row: dict[str, Any], created: str, touches: Iterable[tuple[str, str]]
) -> list[str]:
    """Why ``row`` counts as changed: each of its last-touch fields that names a user
    other than its creator (an empty one or 0 names nobody)."""
    creator = str(row.get(created) or "")
    reasons = []
    for name, what in touches:
        who = row.get(name)
        if who in (None, "", 0, "0") or str(who) == creator:
            continue
        reasons.append(f"{what} by user {who}")
    return reasons


def _deal_kind(origin: str) -> str:
    """A child's ORIGIN_ID is ``row:<id>:<link>`` (a link the mapping names, or one of the
    blueprint's the migration made as sync would), or sync's ``<link>:<parent id>``;
    anything else of the originator is a parent. Children go first: an undo stopped
    anywhere leaves no child without its parent."""
    if origin.startswith("row:"):
        return "children" if origin.count(":") >= 2 else "parents"
    return "children"


def _name(row: dict[str, Any]) -> str:
    parts = [str(row.get(k) or "").strip() for k in ("LAST_NAME", "NAME")]
    return str(row.get("TITLE") or " ".join(p for p in parts if p) or "")


async def read_comments(client: B24Client, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every timeline comment of these deals (the portal lists them per entity only,
    crm-timeline-comment-list.md): 50 deals to a batch."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}

    async def chunk(group: list[int]) -> None:
        cmds = {
            f"e{i}": (
                "crm.timeline.comment.list",
                {"filter": {"ENTITY_ID": i, "ENTITY_TYPE": "deal"}},
            )
            for i in group
        }
        batch = await client.batch(cmds, safe=True)
        if batch.error:
            raise next(iter(batch.error.values()))
        for i in group:
            method, params = cmds[f"e{i}"]
            if batch.next.get(f"e{i}") is not None:  # more than a page
                found[i] = await read_all(client, method, params)
            else:
                found[i] = [r for r in as_list(batch.result.get(f"e{i}")) if isinstance(r, dict)]

    async with asyncio.TaskGroup() as group:
        for n in range(0, len(ids), CHUNK):
            group.create_task(chunk(ids[n : n + CHUNK]))
    return found


async def _bound_deals(
    client: B24Client, field_name: str, ids: list[int], skip: set[int]
) -> dict[int, int]:
    """For each of ``ids``, one deal not in ``skip`` whose ``field_name`` names it. The
    answer is checked row by row: an old-style list ignores a filter key it does not
    know and would answer every deal."""
    bound: dict[int, int] = {}
    wanted = {str(i) for i in ids}
    for n in range(0, len(ids), CHUNK):
        group = ids[n : n + CHUNK]
        rows = await read_all(
            client,
            "crm.deal.list",
            {"filter": {field_name: group}, "select": ["ID", field_name]},
        )
        for row in rows:
            value, deal = str(row.get(field_name) or ""), int(row["ID"])
            if value in wanted and deal not in skip:
                bound.setdefault(int(value), deal)
    return bound


async def _bound_contacts(client: B24Client, ids: list[int], skip: set[int]) -> dict[int, int]:
    """Contacts bound to a deal not in ``skip``: as its main contact (CONTACT_ID) or among
    its contacts (crm.item.list's contactIds: crm.deal.list cannot filter CONTACT_IDS,
    crm-deal-list.md)."""
    bound = await _bound_deals(client, "CONTACT_ID", ids, skip)
    wanted = set(ids)
    for n in range(0, len(ids), CHUNK):
        group = ids[n : n + CHUNK]
        rows = await read_all(
            client,
            "crm.item.list",
            {
                "entityTypeId": int(EntityType.DEAL),
                "filter": {"@contactIds": group},
                "select": ["id", "contactIds"],
            },
        )
        for row in rows:
            deal = int(row["id"])
            if deal in skip:
                continue
            for contact in as_list(row.get("contactIds")):
                if int(contact) in wanted:
                    bound.setdefault(int(contact), deal)
    return bound


async def _read_owned(
    client: B24Client, entity: str, originator: str, fields: list[str]
) -> list[dict[str, Any]]:
    return await read_all(
        client,
        f"crm.{entity}.list",
        {"filter": {"ORIGINATOR_ID": originator}, "select": fields},
    )


OLD_FIELDS = ["ID", "ORIGIN_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "LAST_ACTIVITY_BY"]


async def _contractor_etid(client: B24Client, mapping: Mapping, plan: UndoPlan) -> int | None:
    if mapping.contractor is None:
        return None
    spa = (await read_snapshot(client)).spa_by_code(mapping.contractor.type)
    if spa is None:
        plan.notes.append(
            f"no smart process {mapping.contractor.type!r} on the portal: no contractors to remove"
        )
        return None
    return spa.entity_type_id


async def plan_undo(client: B24Client, mapping: Mapping) -> UndoPlan:
    """Read what this mapping made and build the plan; nothing is written."""
    originator = mapping.originator
    plan = UndoPlan(originator)
    plan.contractor_etid = etid = await _contractor_etid(client, mapping, plan)
    deal_select = [*OLD_FIELDS, "TITLE", "MOVED_BY_ID", "CONTACT_ID", "COMPANY_ID"]
    deals = await _read_owned(client, "deal", originator, deal_select)
    ours = {int(d["ID"]) for d in deals}
    # the children sync or audit --fix made under this mapping's parents ("<link>:<id>"):
    # they go with their parents, never left pointing at a deal that is gone
    for deal in await _read_owned(client, "deal", LINKS_ORIGINATOR, deal_select):
        parent = str(deal.get("ORIGIN_ID") or "").rpartition(":")[2]
        if parent.isdigit() and int(parent) in ours:
            deals.append(deal)
    ours = {int(d["ID"]) for d in deals}
    comments = await read_comments(client, sorted(ours))
    marker = f"[b24kit {originator} row "
    for deal in sorted(deals, key=lambda d: int(d["ID"])):
        changes = touched_by_others(deal, "CREATED_BY_ID", (*OLD_TOUCHES, OLD_ACTIVITY))
        for comment in comments.get(int(deal["ID"]), []):
            author = str(comment.get("AUTHOR_ID") or "")
            if marker in str(comment.get("COMMENT", "")) and author == str(
                deal.get("CREATED_BY_ID") or ""
            ):
                plan.comments += 1
            else:
                changes.append(f"comment {comment.get('ID')} by user {author or '?'}")
        origin = str(deal.get("ORIGIN_ID") or "")
        plan.remove.append(
            Doomed(_deal_kind(origin), int(deal["ID"]), origin, _name(deal), tuple(changes))
        )
    if etid is not None:
        await _plan_contractors(client, plan, etid, ours)
    for entity, plural in (("contact", "contacts"), ("company", "companies")):
        await _plan_clients(client, plan, entity, plural, deals, ours)
    plan.remove.sort(key=lambda d: (ENTITIES.index(d.entity), d.id))  # as they will go
    return plan


async def _plan_contractors(client: B24Client, plan: UndoPlan, etid: int, ours: set[int]) -> None:
    prefix = f"{plan.originator}:contractor:"
    items = await read_all(
        client,
        "crm.item.list",
        {
            "entityTypeId": etid,
            # `_` in an originator is LIKE's any-character: the prefix is checked below
            "filter": {"=%xmlId": prefix + "%"},
            "select": ["id", "xmlId", "title", "createdBy", *(n for n, _ in ITEM_TOUCHES)],
        },
    )
    items = [i for i in items if str(i.get("xmlId") or "").startswith(prefix)]
    relation = parent_field(etid)
    bound = await _bound_deals(client, relation, [int(i["id"]) for i in items], ours)
    for item in sorted(items, key=lambda i: int(i["id"])):
        ident, title = int(item["id"]), str(item.get("title") or "")
        if ident in bound:
            plan.kept.append(
                Kept("contractors", ident, title, f"kept: still bound to deal {bound[ident]}")
            )
            continue
        changes = touched_by_others(item, "createdBy", ITEM_TOUCHES)
        plan.remove.append(Doomed("contractors", ident, str(item["xmlId"]), title, tuple(changes)))


async def _plan_clients(
    client: B24Client,
    plan: UndoPlan,
    entity: str,
    plural: str,
    deals: list[dict[str, Any]],
    ours: set[int],
) -> None:
    """The contacts (or companies) the originator made, each removed unless a deal that
    stays is bound to it; and the ones the mapping's deals use that it did not make."""
    names = ["TITLE"] if entity == "company" else ["NAME", "LAST_NAME"]
    rows = await _read_owned(client, entity, plan.originator, [*OLD_FIELDS, *names])
    ids = sorted(int(r["ID"]) for r in rows)
    if entity == "contact":
        bound = await _bound_contacts(client, ids, ours)
    else:
        bound = await _bound_deals(client, "COMPANY_ID", ids, ours)
    for row in sorted(rows, key=lambda r: int(r["ID"])):
        ident = int(row["ID"])
        if ident in bound:
            plan.kept.append(
                Kept(plural, ident, _name(row), f"kept: still bound to deal {bound[ident]}")
            )
            continue
        changes = touched_by_others(row, "CREATED_BY_ID", (OLD_TOUCHES[0], OLD_ACTIVITY))
        plan.remove.append(
            Doomed(plural, ident, str(row.get("ORIGIN_ID") or ""), _name(row), tuple(changes))
        )
    used = {int(d.get(f"{entity.upper()}_ID") or 0) for d in deals} - set(ids) - {0}
    found = await _names(client, entity, sorted(used), names)
    for ident in sorted(used):
        plan.kept.append(
            Kept(plural, ident, found.get(ident, ""), "kept: not made by this mapping")
        )


async def _names(
    client: B24Client, entity: str, ids: list[int], fields: list[str]
) -> dict[int, str]:
    names: dict[int, str] = {}
    for n in range(0, len(ids), CHUNK):
        rows = await read_all(
            client,
            f"crm.{entity}.list",
            {"filter": {"ID": ids[n : n + CHUNK]}, "select": ["ID", *fields]},
        )
        names.update({int(r["ID"]): _name(r) for r in rows})
    return names


# ----------------------------------------------------------------- running
async def run_undo(
    client: B24Client, plan: UndoPlan, *, force: bool = False, progress: Progress | None = None
) -> UndoResult:
    """Delete what the plan removes, deepest first, one executor run a step; a step that
    fails stops the undo (run it again to finish). Refused (UndoRefused) when an entity
    changed since the migration, unless ``force``."""
    if plan.changed and not force:
        raise UndoRefused(plan.changed)
    result = UndoResult(plan)
    steps = plan.steps()
    total = sum(len(s) for s in steps)
    done_before = 0
    for commands in steps:

        def report(done: int, _total: int, before: int = done_before) -> None:
            if progress is not None:
                progress(before + done, total)

        outcomes = await Executor(client, progress=report).run(commands)
        result.outcomes += outcomes
        done_before += len(commands)
        if any(not o.ok for o in outcomes):
            break  # the deeper step is not done: nothing shallower is removed
    return result
