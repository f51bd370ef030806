"""Make a portal match a blueprint: read it, plan, send exactly the plan's commands through
the executor, then read again to confirm nothing is left. Re-running converges: identity
lives on the portal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b24kit.blueprint.changes import Change, Plan, PlanOptions
from b24kit.blueprint.model import Blueprint
from b24kit.blueprint.plan import changes, diff
from b24kit.client import B24Client, B24Error, Executor, read_all
from b24kit.portal.snapshot import read_snapshot


async def _count(
    client: B24Client, queries: dict[str, tuple[str, dict[str, Any]]]
) -> dict[str, int]:
    usage: dict[str, int] = {}
    keys = list(queries)
    for chunk in range(0, len(keys), 50):
        group = keys[chunk : chunk + 50]
        names = {f"u{i}": key for i, key in enumerate(group)}
        result = await client.batch({n: queries[k] for n, k in names.items()})
        for name, key in names.items():
            if name in result.error:
                raise result.error[name]
            usage[key] = int(result.total.get(name, 0))
    return usage


async def make_plan(client: B24Client, bp: Blueprint, options: PlanOptions | None = None) -> Plan:
    """Read the portal (one or two batches), count items only where a delete is
    considered (one more batch at most), read the ids of items --move-stage moves, and
    diff."""
    options = options or PlanOptions()
    start = client.requests
    snap = await read_snapshot(client)
    first = diff(bp, snap, options)
    queries = {c.usage[0]: (c.usage[1], c.usage[2]) for c in first.changes if c.usage}
    if not queries:
        first.requests = client.requests - start
        return first
    usage = await _count(client, queries)
    items: dict[str, list[int]] = {}
    for change in first.changes:
        if change.moves and change.usage and usage.get(change.moves):
            method, params = change.usage[1], dict(change.usage[2])
            params.pop("start", None)
            key = "ID" if method == "crm.deal.list" else "id"
            items[change.moves] = [int(r[key]) for r in await read_all(client, method, params)]
    # the same snapshot: its fingerprint (a hash of all of it) as the first plan took it
    plan = Plan(changes(bp, snap, options, usage, items), first.fingerprint, snap.requests)
    plan.requests = client.requests - start
    return plan


@dataclass
class ChangeOutcome:
    change: Change
    ok: bool
    error: str | None = None


@dataclass
class ApplyReport:
    outcomes: list[ChangeOutcome] = field(default_factory=list)
    refused: list[Change] = field(default_factory=list)
    requests: int = 0  # the commands' requests, the reading and the check after included
    commands: int = 0

    @property
    def ok(self) -> bool:
        return not self.refused and all(o.ok for o in self.outcomes)


class ApplyError(B24Error):
    pass


async def apply_blueprint(
    client: B24Client,
    bp: Blueprint,
    options: PlanOptions | None = None,
    *,
    plan: Plan | None = None,
    progress: Callable[[int, int], None] | None = None,
    check: bool = True,
) -> ApplyReport:
    """Apply ``plan`` (made now when not given): its commands, exactly, in one executor
    run. Nothing is written while any change is refused. With ``check``, the portal is
    read again afterwards: a change the portal accepted but did not keep is an error,
    never a silent success."""
    options = options or PlanOptions()
    report = ApplyReport()
    start = client.requests
    if plan is None:
        plan = await make_plan(client, bp, options)
    if plan.refused:
        report.refused = plan.refused
        return report
    commands = plan.commands()
    report.commands = len(commands)
    outcomes = {o.name: o for o in await Executor(client, progress=progress).run(commands)}
    for change in plan.changes:
        bad = [outcomes[c.name] for c in change.commands if not outcomes[c.name].ok]
        report.outcomes.append(ChangeOutcome(change, not bad, str(bad[0].error) if bad else None))
    if check and report.ok and plan.changes:
        after = await make_plan(client, bp, options)
        if after.changes:
            first = after.changes[0]
            raise ApplyError(
                f"the portal still differs after apply ({len(after.changes)} change(s) left), "
                f"so a change did not take on this portal: {first.action} {first.kind} "
                f"{first.address} {first.attrs}"
            )
    report.requests = client.requests - start
    return report


def plan_summary_line(summary: dict[str, Any]) -> str:
    parts = [
        f"{summary['create']} to create",
        f"{summary['update']} to update",
        f"{summary['rename']} to rename",
        f"{summary['delete']} to delete",
    ]
    line = "Plan: " + ", ".join(parts) + "."
    if summary.get("refused"):
        line += f" {summary['refused']} refused."
    return line
