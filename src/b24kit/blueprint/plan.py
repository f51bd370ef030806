"""Plan: the difference between a blueprint and a portal snapshot, as changes, each with
the commands that make it.

``diff(blueprint, snapshot, options)`` is pure. Its commands are the whole of what apply
sends, in order: a command that needs an id the portal has not given yet (the stages of a
pipeline about to be created, the fields of a new smart process) refers to the command
that will give it, and the executor fills it in. There are no rounds and nothing waits
for another plan: what plan shows is what apply does.
"""

from __future__ import annotations

from b24kit.blueprint.changes import (
    Change,
    Context,
    Plan,
    PlanOptions,
    command_dict,
    plain,
    usage_query,
)
from b24kit.blueprint.model import Blueprint
from b24kit.blueprint.plan_fields import FieldOwner, plan_fields, same_setting
from b24kit.blueprint.plan_pipelines import TEMPLATE_NOTE, Owner, plan_pipelines, stage_sort
from b24kit.blueprint.plan_spas import SWITCH_FLAGS, plan_smart_processes, prune_smart_processes
from b24kit.errors import InputError
from b24kit.portal.ids import EntityType
from b24kit.portal.snapshot import Snapshot

__all__ = [
    "Change",
    "Plan",
    "PlanOptions",
    "SWITCH_FLAGS",
    "TEMPLATE_NOTE",
    "changes",
    "command_dict",
    "diff",
    "plain",
    "same_setting",
    "stage_sort",
    "usage_query",
]


def diff(
    bp: Blueprint,
    snap: Snapshot,
    options: PlanOptions | None = None,
    usage: dict[str, int] | None = None,
    items: dict[str, list[int]] | None = None,
) -> Plan:
    """The plan that makes ``snap`` match ``bp``. ``usage``: items per stage, pipeline or
    smart process considered for deletion; ``items``: their ids where --move-stage moves
    them."""
    return Plan(changes(bp, snap, options, usage, items), snap.fingerprint(), snap.requests)


def _check_moves(bp: Blueprint, options: PlanOptions) -> None:
    """Each --move-stage names a pipeline of the blueprint: a misspelt one was ignored,
    silently. (Its stage may be gone from the portal already, by the same command run
    before: that is no error.)"""
    codes = [p.code for p in bp.deal.pipelines]
    codes += [p.code for spa in bp.smart_processes for p in spa.pipelines]
    for key, target in options.move_stage.items():
        pipeline = key.split(":", 1)[0]
        if pipeline not in codes:
            raise InputError(
                f"--move-stage {key}={target}: no pipeline {pipeline!r} in the blueprint "
                f"(known: {', '.join(codes)})"
            )


def changes(
    bp: Blueprint,
    snap: Snapshot,
    options: PlanOptions | None = None,
    usage: dict[str, int] | None = None,
    items: dict[str, list[int]] | None = None,
) -> list[Change]:
    """diff's changes alone (the snapshot's fingerprint, a hash of all of it, not taken)."""
    ctx = Context(bp, snap, options or PlanOptions(), usage or {}, items or {})
    _check_moves(bp, ctx.options)
    plan_smart_processes(ctx)
    plan_pipelines(ctx, Owner("deal", int(EntityType.DEAL)), bp.deal.pipelines, snap.deal_pipelines)
    plan_fields(ctx, FieldOwner("deal"), bp.deal.fields, snap.deal_fields)
    prune_smart_processes(ctx)
    return ctx.changes
