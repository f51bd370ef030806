"""Make a portal match a blueprint: plan, execute through the executor, read again,
until nothing is left. Re-running converges: identity lives on the portal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from b24kit.blueprint.model import Blueprint
from b24kit.blueprint.plan import Change, Plan, PlanOptions, diff
from b24kit.client import B24Client, B24Error, Command, Executor, Outcome, read_all
from b24kit.portal.snapshot import read_snapshot

MOVE = "b24kit.move_stage"


async def make_plan(client: B24Client, bp: Blueprint, options: PlanOptions | None = None) -> Plan:
    """Read the portal (one or two batches), then count items only where a delete is
    considered (one more batch at most), and diff."""
    options = options or PlanOptions()
    start = client.requests
    snap = await read_snapshot(client)
    first = diff(bp, snap, options)
    queries = {c.usage[0]: (c.usage[1], c.usage[2]) for c in first.changes if c.usage}
    if not queries:
        first.requests = client.requests - start
        return first
    usage: dict[str, int] = {}
    keys = list(queries)
    for chunk in range(0, len(keys), 50):
        group = keys[chunk:chunk + 50]
        names = {f"u{i}": key for i, key in enumerate(group)}
        result = await client.batch({n: queries[k] for n, k in names.items()})
        for name, key in names.items():
            if name in result.error:
                raise result.error[name]
            usage[key] = int(result.total.get(name, 0))
    plan = diff(bp, snap, options, usage)
    plan.requests = client.requests - start
    return plan


@dataclass
class ChangeOutcome:
    change: Change
    ok: bool
    error: str | None = None


@dataclass
class ApplyReport:
    rounds: int = 0
    outcomes: list[ChangeOutcome] = field(default_factory=list)
    refused: list[Change] = field(default_factory=list)
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.refused and all(o.ok for o in self.outcomes)


class ApplyError(B24Error):
    pass


async def _move_items(client: B24Client, command: Command) -> None:
    etid = int(command.params["entityTypeId"])
    source, target = command.params["from"], command.params["to"]
    if etid == 2:
        rows = await read_all(client, "crm.deal.list", {"filter": {"STAGE_ID": source},
                                                        "select": ["ID"]})
        moves = [Command("crm.deal.update", {"id": r["ID"], "fields": {"STAGE_ID": target}})
                 for r in rows]
    else:
        rows = await read_all(client, "crm.item.list", {"entityTypeId": etid,
                                                        "filter": {"stageId": source},
                                                        "select": ["id"]})
        moves = [Command("crm.item.update", {"entityTypeId": etid, "id": r["id"],
                                             "fields": {"stageId": target}}) for r in rows]
    failed = [o for o in await Executor(client).run(moves) if not o.ok]
    if failed:
        raise ApplyError(f"moving items out of {source} failed: {failed[0].error}")


async def apply_blueprint(
    client: B24Client,
    bp: Blueprint,
    options: PlanOptions | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    on_round: Callable[[int, Plan], None] | None = None,
    max_rounds: int = 6,
) -> ApplyReport:
    report = ApplyReport()
    start = client.requests
    previous: list[tuple[str, str, str]] | None = None
    options = replace(options or PlanOptions())
    options.fresh_pipelines, options.fresh_spas = set(), set()
    for round_no in range(1, max_rounds + 1):
        plan = await make_plan(client, bp, options)
        report.rounds = round_no
        now = [(c.action, c.address, repr(c.attrs)) for c in plan.changes]
        if now and now == previous:
            raise ApplyError(
                "a change does not take on this portal, the same plan came back after applying "
                f"it: {plan.changes[0].action} {plan.changes[0].kind} {plan.changes[0].address} "
                f"{plan.changes[0].attrs}")
        previous = now
        if plan.refused:
            report.refused = plan.refused
            break  # nothing is written while any change is refused
        runnable = [c for c in plan.changes if not c.deferred]
        if not plan.changes:
            break
        if not runnable:
            raise ApplyError("no change can be made: " + "; ".join(
                f"{c.address} waits {c.deferred}" for c in plan.changes[:3]))
        if on_round is not None:
            on_round(round_no, plan)
        commands: list[Command] = []
        skip: dict[str, tuple[str, ...]] = {}
        for change in runnable:
            for command in change.commands:
                if command.method == MOVE:
                    await _move_items(client, command)
                    skip[command.name] = command.after
                    continue
                command.after = tuple(a for dep in command.after
                                      for a in (skip.get(dep, (dep,))))
                commands.append(command)
        outcomes: dict[str, Outcome] = {o.name: o for o in
                                        await Executor(client, progress=progress).run(commands)}
        _note_fresh(commands, outcomes, options)
        failed = False
        for change in runnable:
            bad = [outcomes[c.name] for c in change.commands if c.name in outcomes
                   and not outcomes[c.name].ok]
            report.outcomes.append(ChangeOutcome(change, not bad,
                                                 str(bad[0].error) if bad else None))
            failed = failed or bool(bad)
        if failed:
            break
    else:
        raise ApplyError(f"the portal still differs after {max_rounds} rounds")
    report.requests = client.requests - start
    return report


def _note_fresh(commands: list[Command], outcomes: dict[str, Outcome],
                options: PlanOptions) -> None:
    """Remember the pipelines and smart processes this apply made (for their template
    stages, removed by code in the next round)."""
    for command in commands:
        outcome = outcomes.get(command.name)
        if outcome is None or not outcome.ok or not isinstance(outcome.result, dict):
            continue
        if command.method == "crm.category.add":
            made = outcome.result.get("category") or {}
            if "id" in made:
                options.fresh_pipelines.add((int(command.params["entityTypeId"]),
                                             int(made["id"])))
        elif command.method == "crm.type.add":
            made = outcome.result.get("type") or {}
            if "entityTypeId" in made:
                options.fresh_spas.add(int(made["entityTypeId"]))


def plan_summary_line(summary: dict[str, Any]) -> str:
    parts = [f"{summary['create']} to create", f"{summary['update']} to update",
             f"{summary['rename']} to rename", f"{summary['delete']} to delete"]
    line = "Plan: " + ", ".join(parts) + "."
    if summary.get("refused"):
        line += f" {summary['refused']} refused."
    return line
