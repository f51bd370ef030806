"""Audit, repair and sync against a portal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from copy import deepcopy
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client, Command, Executor, Outcome, read_all
from b24kit.errors import InputError
from b24kit.links.audit import AuditResult, Finding, audit_deals, child_repair, read_link_deals
from b24kit.links.directory import audit_directories, sync_directories
from b24kit.links.directory_rules import DIRECTORY_REPAIRABLE
from b24kit.links.model import Deal, ResolvedLink, resolve_links, to_deal
from b24kit.locks import LOCK_FILE, run_lock
from b24kit.portal.snapshot import Snapshot, read_snapshot

REPAIRABLE = {"L001", "L002", "L004", "L005", "L009"}
REPAIRABLE |= DIRECTORY_REPAIRABLE  # the contractor directory's rules (links/directory.py)
SYNC_RULES = {"L001", "L004", "L005"}


async def _structure(
    client: B24Client, bp: Blueprint, names: list[str] | None
) -> tuple[Snapshot, list[ResolvedLink]]:
    """The portal's structure and the links named, resolved in it (the names checked
    first). The snapshot serves the directories too: an audit or a pass writes deals and
    items, never structure."""
    if not bp.links:
        raise InputError("the blueprint declares no links")
    known = [link.name for link in bp.links]
    for name in names or []:
        if name not in known:
            raise InputError(f"unknown link {name!r}; known: {', '.join(known)}")
    snap = await read_snapshot(client)
    return snap, resolve_links(bp, snap, names)


async def links_for(
    client: B24Client, bp: Blueprint, names: list[str] | None = None
) -> list[ResolvedLink]:
    return (await _structure(client, bp, names))[1]


async def audit_portal(
    client: B24Client, bp: Blueprint, names: list[str] | None = None
) -> AuditResult:
    snap, links = await _structure(client, bp, names)
    findings: list[Finding] = []
    read = 0
    for link in links:
        index = await read_link_deals(client, link)
        read += index.count
        findings += audit_deals(link, index)
    findings += await audit_directories(client, bp, names, snap)
    return AuditResult(findings, read)


async def _parents_read(
    client: B24Client, links: dict[str, ResolvedLink], findings: list[Finding]
) -> dict[int, dict[str, Any]]:
    """The parents of missing children whose link copies fields (50 to a batch)."""
    wanted = sorted(
        {f.deals[0] for f in findings if f.rule == "L001" and links[f.link].copy_fields}
    )
    return await _deals_read(client, wanted)


async def fix(
    client: B24Client,
    bp: Blueprint,
    findings: list[Finding],
    rules: set[str] | None = None,
    resolved: list[ResolvedLink] | None = None,
) -> list[Outcome]:
    """Apply the safe repairs (never a delete) through the executor. ``resolved``: the
    links the caller already resolved (saves reading the portal's structure again). The
    findings are not changed: a missing child is built again here, with the fields the
    link copies from its parent."""
    rules = rules or REPAIRABLE
    chosen = [f for f in findings if f.rule in rules and f.repair]
    if resolved is None:
        resolved = await links_for(client, bp)
    links = {link.link.name: link for link in resolved}
    parents = await _parents_read(client, links, chosen)
    quoted = await _deals_read(
        client,
        sorted({d for f in chosen if f.rule == "L005" and links[f.link].quotes for d in f.deals}),
    )
    commands: list[Command] = []
    for n, finding in enumerate(chosen):
        seq = iter(range(1, 1000))

        def name(prefix: str = f"f{n}_r", seq: Iterator[int] = seq) -> str:
            return f"{prefix}{next(seq)}"

        if finding.rule == "L001":
            parent = finding.deals[0]
            commands += child_repair(links[finding.link], parent, parents.get(parent, {}), name)
        else:
            replayed = [
                replace(c, name=name(), params=deepcopy(c.params), after=()) for c in finding.repair
            ]
            if finding.rule == "L005" and replayed:
                parent, kid = finding.deals[0], finding.deals[-1]
                record = quote(links[finding.link], quoted.get(parent, {}), quoted.get(kid, {}))
                replayed[0].params["fields"].update(record)
            commands += replayed
    return await Executor(client).run(commands)


def quote(link: ResolvedLink, parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """What the move of a child at its stage records on its parent (issue 13, item 4): the
    child's price and the moment it reached the stage, each only when the parent's field is
    still empty: the quote at the moment it was given, never overwritten by later passes."""
    fields = link.quotes.get(str(child.get("STAGE_ID") or ""))
    if fields is None or not parent:
        return {}
    out: dict[str, Any] = {}
    if fields.price and parent.get(fields.price) in (None, "", False):
        amount = child.get("OPPORTUNITY") or 0
        out[fields.price] = (
            f"{amount}|{child.get('CURRENCY_ID') or 'RUB'}" if fields.money else amount
        )
    if fields.time and parent.get(fields.time) in (None, "", False):
        out[fields.time] = child.get("MOVED_TIME") or child.get("DATE_MODIFY")
    return out


async def _deals_read(client: B24Client, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Deals by id (crm.deal.get, 50 to a batch), with every field."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in range(0, len(ids), 50):
        group = ids[chunk : chunk + 50]
        got = await client.batch(
            {f"q{i}": ("crm.deal.get", {"id": deal}) for i, deal in enumerate(group)}, safe=True
        )
        for i, deal in enumerate(group):
            row = got.result.get(f"q{i}")
            out[deal] = row if isinstance(row, dict) else {}
    return out


def repairable(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule in REPAIRABLE and f.repair]


async def repair_until_clean(
    client: B24Client,
    bp: Blueprint,
    findings: list[Finding],
    names: list[str] | None = None,
    rounds: int = 3,
) -> tuple[AuditResult, int]:
    """Apply the safe repairs and audit again; a repair can reveal the next one (a
    re-linked orphan's new parent needs its mirror), so repeat while safe repairs remain,
    at most ``rounds`` times. Returns the last audit and how many repairs succeeded."""
    fixed = 0
    todo = repairable(findings)
    result = AuditResult(findings, 0)
    for _ in range(rounds):
        outcomes = await fix(client, bp, todo)
        fixed += sum(o.ok for o in outcomes)
        result = await audit_portal(client, bp, names)
        todo = repairable(result.findings)
        if not todo:
            break
    return result, fixed


# ---------------------------------------------------------------------- sync
@dataclass
class SyncResult:
    deals_read: int
    findings: list[Finding]
    outcomes: list[Outcome]
    requests: int

    @property
    def created(self) -> int:
        """Children the pass made."""
        return sum(1 for o in self.outcomes if o.ok and o.method == "crm.deal.add")


def _state_file(state_dir: Path, link: ResolvedLink) -> Path:
    return state_dir / f"sync-{link.link.name}.json"


async def _changed_deals(
    client: B24Client, link: ResolvedLink, since: str | None, touched: Iterable[int] = ()
) -> list[Deal]:
    """Deals of the link's pipelines changed since the last pass, the ``touched`` ones
    (named by events, read by id whatever their DATE_MODIFY says), and the deals they are
    tied to (a quiet portal costs a request or two)."""
    categories = link.categories
    flt: dict[str, Any] = {"@CATEGORY_ID": categories}
    if since:
        flt[">=DATE_MODIFY"] = since
    rows = await read_all(client, "crm.deal.list", {"filter": flt, "select": link.fields()})
    deals = {int(r["ID"]): to_deal(r, link) for r in rows}
    if since is None:
        return list(deals.values())
    named = sorted(set(touched) - set(deals))
    for chunk in range(0, len(named), 500):
        flt = {"@CATEGORY_ID": categories, "@ID": named[chunk : chunk + 500]}
        for r in await read_all(client, "crm.deal.list", {"filter": flt, "select": link.fields()}):
            deals[int(r["ID"])] = to_deal(r, link)
    parent_ids = {
        d.parent_ref
        for d in deals.values()
        if d.category == link.child.id and d.parent_ref is not None
    } | {d.id for d in deals.values() if d.category in link.parent_ids}
    missing = sorted(parent_ids - set(deals))
    for chunk in range(0, len(missing), 500):
        for r in await read_all(
            client,
            "crm.deal.list",
            {"filter": {"@ID": missing[chunk : chunk + 500]}, "select": link.fields()},
        ):
            deals[int(r["ID"])] = to_deal(r, link)
    parents = sorted(d.id for d in deals.values() if d.category in link.parent_ids)
    for chunk in range(0, len(parents), 500):
        for r in await read_all(
            client,
            "crm.deal.list",
            {
                "filter": {
                    "CATEGORY_ID": link.child.id,
                    f"@{link.child_field}": [f"D_{p}" for p in parents[chunk : chunk + 500]],
                },
                "select": link.fields(),
            },
        ):
            deals[int(r["ID"])] = to_deal(r, link)
    return list(deals.values())


async def sync_once(
    client: B24Client,
    bp: Blueprint,
    state_dir: Path,
    names: list[str] | None = None,
    full: bool = False,
    lock_wait: float = 120.0,
    touched: Iterable[int] = (),
    lock: Path | None = None,
    on_wait: Callable[[str], None] | None = None,
    give_up: Callable[[], bool] | None = None,
) -> SyncResult:
    """Perform the links: create the children of parents that reached the trigger stage,
    mirror the children's stages on their parents, and move parents where the link says.
    Under the portal's run lock (``state_dir``/run.lock): two passes racing would both see
    a parent without a child and both create one; a pass waits ``lock_wait`` seconds for
    another writer at most (then :class:`~b24kit.locks.LockHeld`; the next pass tries
    again). ``touched``: deals to read whatever their DATE_MODIFY (from events); ``lock``:
    the portal's run lock (``Connection.lock_path``; by default one in ``state_dir``)."""
    touched = list(touched)
    state_dir.mkdir(parents=True, exist_ok=True)  # the marks live here
    start = client.requests
    async with run_lock(
        lock or state_dir / LOCK_FILE, "sync", wait=lock_wait, on_wait=on_wait, give_up=give_up
    ):
        now = str(await client.call("server.time"))
        findings: list[Finding] = []
        read = 0
        outcomes: list[Outcome] = []
        snap, links = await _structure(client, bp, names)
        for link in links:
            state = _state_file(state_dir, link)
            since = None
            if state.exists() and not full:
                since = json.loads(state.read_text(encoding="utf-8")).get("since")
            deals = await _changed_deals(client, link, since, touched)
            read += len(deals)
            found = [f for f in audit_deals(link, deals) if f.rule in SYNC_RULES]
            findings += found
            if found:
                result = await fix(client, bp, found, SYNC_RULES, links)
                outcomes += result
                if any(not o.ok for o in result):
                    continue  # keep the old mark: the next pass looks again
            overlap = datetime.fromisoformat(now) - timedelta(seconds=5)
            state.write_text(json.dumps({"since": overlap.isoformat()}), encoding="utf-8")
        directory = await sync_directories(client, bp, state_dir, names, full, touched, snap)
        findings += directory.findings
        outcomes += directory.outcomes
    return SyncResult(read, findings, outcomes, client.requests - start)
