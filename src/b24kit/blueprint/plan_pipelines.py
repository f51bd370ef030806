"""Plan pipelines and their stages: found ones updated, missing ones created with their
stages in the same plan. A new pipeline comes with the portal's template stages: the plan
reads them (one command) and updates or removes each by its code, whatever language the
portal names them in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from b24kit.blueprint.changes import Change, Context, usage_query
from b24kit.blueprint.model import Pipeline, Stage
from b24kit.client.executor import Command, Ref
from b24kit.portal import commands as cmd
from b24kit.portal.ids import (
    ORIGINATOR,
    SEMANTIC_CODE,
    EntityType,
    kept_code,
    stage_entity,
    template_name,
    template_stages,
)
from b24kit.portal.match import match_pipelines
from b24kit.portal.snapshot import PipelineSnap, SpaSnap, StageSnap

TEMPLATE_NOTE = "a stage every new pipeline comes with"


@dataclass
class Owner:
    """Whose pipelines: deals, a smart process on the portal, or one this plan creates."""

    label: str  # "deal", "smart process contractors"
    etid: Any  # the entity type id, or a reference to the new smart process's
    spa: SpaSnap | None = None
    new_spa: str | None = None  # the name of the crm.type.add of a new smart process
    categories_read: str | None = None  # the read of a new smart process's pipelines

    @property
    def is_deal(self) -> bool:
        return isinstance(self.etid, int) and self.etid == EntityType.DEAL


def stage_sort(index: int, stage: Stage) -> int:
    return stage.sort if stage.sort is not None else (index + 1) * 10


def stage_attrs(index: int, stage: Stage) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "name": stage.name,
        "semantics": stage.semantics,
        "sort": stage_sort(index, stage),
    }
    if stage.color:
        attrs["color"] = stage.color
    return attrs


def plan_pipelines(
    ctx: Context, owner: Owner, bps: list[Pipeline], portal: list[PipelineSnap]
) -> None:
    matches = match_pipelines(bps, portal, owner.etid) if owner.new_spa is None else {}
    # each portal pipeline's name once this plan is applied
    names_after = {p.id: p.name for p in portal}
    for bp in bps:
        if matches.get(bp.code) is not None:
            names_after[matches[bp.code].id] = bp.name  # type: ignore[union-attr]
    for index, bp in enumerate(bps):
        group = f"{owner.label} pipeline {bp.code} «{bp.name}»"
        found = matches.get(bp.code)
        if found is not None:
            twin = next((i for i, n in names_after.items() if n == bp.name and i != found.id), None)
            _update_pipeline(ctx, owner, bp, found, group, twin)
            _stages(ctx, owner, bp, found, group)
        elif owner.new_spa is not None and (bp.default or index == 0):
            _rename_first(ctx, owner, bp, group)
        else:
            _create_pipeline(ctx, owner, bp, group)
    if ctx.options.prune and owner.new_spa is None:
        used = {p.id for p in matches.values() if p is not None}
        for p in portal:
            if p.id not in used and not p.is_default:
                _delete_pipeline(ctx, owner, p)


def _delete_pipeline(ctx: Context, owner: Owner, p: PipelineSnap) -> None:
    group = f"{owner.label} pipeline «{p.name}» (not in the blueprint)"
    change = Change("delete", "pipeline", group, f"#{p.id}", {"name": p.name})
    key = f"pipeline:{owner.etid}:{p.id}"
    change.usage = (key, *usage_query(owner.etid, {"CATEGORY_ID": p.id}))
    items = ctx.usage.get(key, 0)
    if items:
        change.refused = f"holds {items} item(s); move them to another pipeline first"
    else:
        change.commands = [cmd.category_delete(owner.etid, p.id, name=ctx.name("del_pl"))]
    ctx.add(change)


def _update_pipeline(
    ctx: Context, owner: Owner, bp: Pipeline, found: PipelineSnap, group: str, twin: int | None
) -> None:
    """``twin``: another portal pipeline that will be named as this one wants to be: a
    rename is refused rather than leave two pipelines one name (which one a later plan,
    migration or audit took would be a matter of order)."""
    fields: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    if found.name != bp.name:
        attrs["name"] = [found.name, bp.name]
        fields["name"] = bp.name
    if bp.sort is not None and found.sort != bp.sort:
        attrs["sort"] = [found.sort, bp.sort]
        fields["sort"] = bp.sort
    if (
        owner.is_deal
        and not found.is_default
        and (found.originator_id, found.origin_id) != (ORIGINATOR, bp.code)
    ):
        fields.update(originatorId=ORIGINATOR, originId=bp.code)  # adopt it, silently
    if not fields:
        return
    change = Change("rename" if "name" in attrs else "update", "pipeline", group, bp.code, attrs)
    if "name" in attrs and twin is not None:
        change.refused = (
            f"another pipeline on the portal (id {twin}) is named «{bp.name}»: rename or "
            "remove it first, or give this one another name"
        )
        ctx.add(change)
        return
    change.commands = [cmd.category_update(owner.etid, found.id, fields, name=ctx.name("upd_pl"))]
    if not attrs:
        change.note = "tagged as managed by b24kit"
    ctx.add(change)


def _create_pipeline(ctx: Context, owner: Owner, bp: Pipeline, group: str) -> None:
    sort = bp.sort if bp.sort is not None else 500
    fields: dict[str, Any] = {"name": bp.name, "sort": sort}
    if owner.is_deal:
        fields.update(originatorId=ORIGINATOR, originId=bp.code)
    elif bp.default:
        fields["isDefault"] = "Y"
    add = cmd.category_add(owner.etid, fields, name=ctx.name(f"pl_{bp.code}"))
    made = Ref(add.name, ("category", "id"))
    if owner.is_deal:
        entity: Any = Ref(add.name, ("category", "id"), fmt=stage_entity(EntityType.DEAL, "{}"))
    else:
        entity = cmd.spa_stage_entity(owner.etid, made)
    change = ctx.add(Change("create", "pipeline", group, bp.code, {"name": bp.name, "sort": sort}))
    change.commands.append(add)
    _fresh_stages(ctx, owner, bp, group, entity, change)


def _rename_first(ctx: Context, owner: Owner, bp: Pipeline, group: str) -> None:
    """A new smart process comes with its default pipeline: it is renamed to the
    blueprint's first (or default) pipeline."""
    assert owner.categories_read is not None
    default = cmd.default_category(owner.categories_read)
    fields: dict[str, Any] = {"name": bp.name}
    if bp.sort is not None:
        fields["sort"] = bp.sort
    change = ctx.add(
        Change(
            "rename",
            "pipeline",
            group,
            bp.code,
            {"name": ["the smart process's first pipeline", bp.name]},
        )
    )
    change.commands.append(
        cmd.category_update(owner.etid, default, fields, name=ctx.name(f"pl_{bp.code}"))
    )
    _fresh_stages(ctx, owner, bp, group, cmd.spa_stage_entity(owner.etid, default), change)


def _fresh_stages(
    ctx: Context, owner: Owner, bp: Pipeline, group: str, entity: Any, pipeline_change: Change
) -> None:
    """The stages of a pipeline this plan makes: the template ones it comes with are read
    (one command), those of the blueprint's codes updated, the others removed; the rest
    created. Every command names its stage by a reference, none waits for another plan."""
    template = template_stages(EntityType.DEAL if owner.is_deal else 0)
    listed = cmd.pipeline_stages(entity, name=ctx.name(f"st_{bp.code}"))
    pipeline_change.commands.append(listed)
    add = _Chain(ctx, [listed.name]).add
    wanted = {s.code for s in bp.stages}

    for code, name in template.items():
        if code in wanted:
            continue
        add(
            Change(
                "delete", "stage", group, f"{bp.code}.{code}", {"name": name}, note=TEMPLATE_NOTE
            ),
            cmd.status_delete(
                cmd.stage_row(listed.name, code),
                system=True,
                name=ctx.name("del_st"),
                optional=True,
            ),
        )
    for index, stage in enumerate(bp.stages):
        attrs = stage_attrs(index, stage)
        if stage.code in template:
            fields: dict[str, Any] = {"NAME": stage.name, "SORT": attrs["sort"]}
            if stage.color:
                fields["COLOR"] = stage.color
            add(
                Change(
                    "update",
                    "stage",
                    group,
                    f"{bp.code}.{stage.code}",
                    {
                        "name": [template[stage.code], stage.name],
                        "sort": ["template", attrs["sort"]],
                    },
                    note=TEMPLATE_NOTE,
                ),
                cmd.status_update(
                    cmd.stage_row(listed.name, stage.code), fields, name=ctx.name("upd_st")
                ),
            )
    for index, stage in enumerate(bp.stages):
        if stage.code in template:
            continue
        attrs = stage_attrs(index, stage)
        add(
            Change("create", "stage", group, f"{bp.code}.{stage.code}", attrs),
            cmd.status_add(
                entity, stage.code, _stage_fields(stage, attrs["sort"]), name=ctx.name("add_st")
            ),
        )


def _stage_fields(stage: Stage, sort: int) -> dict[str, Any]:
    return {
        "NAME": stage.name,
        "SORT": sort,
        "COLOR": stage.color or "",
        "SEMANTICS": SEMANTIC_CODE[stage.semantics],
    }


@dataclass
class _Chain:
    """The commands of one pipeline's stages: each runs after the one before it."""

    ctx: Context
    names: list[str] = field(default_factory=list)

    def add(self, change: Change, command: Command) -> None:
        """Appends the command to the change, after the last command so far, and adds the
        change to the plan."""
        command.after = tuple(self.names[-1:])
        self.names.append(command.name)
        change.commands.append(command)
        self.ctx.add(change)


# the stages of the blueprint's pipeline by their code on the portal: (index, stage)
_Wanted = dict[str, tuple[int, Stage]]


def _stages(ctx: Context, owner: Owner, bp: Pipeline, found: PipelineSnap, group: str) -> None:
    """The stages of a pipeline on the portal."""
    wanted: _Wanted = {kept_code(found.prefix, s.code): (i, s) for i, s in enumerate(bp.stages)}
    by_code = {s.code: s for s in found.stages}
    chain = _Chain(ctx)  # this pipeline's commands run in order
    _stage_deletes(ctx, owner, bp, found, group, wanted, chain)
    _stage_updates(ctx, bp, group, wanted, by_code, chain)
    _stage_creates(ctx, bp, found, group, wanted, by_code, chain)


def _stage_deletes(
    ctx: Context,
    owner: Owner,
    bp: Pipeline,
    found: PipelineSnap,
    group: str,
    wanted: _Wanted,
    chain: _Chain,
) -> None:
    """1. stages to remove: template leftovers (ours, by code and English name, empty), or
    everything with --prune"""
    owned = (owner.is_deal and found.originator_id == ORIGINATOR) or owner.spa is not None
    for old in found.stages:
        if old.code in wanted:
            continue
        items = ctx.usage.get(old.status_id, 0)
        leftover = not items and owned and template_name(found.entity_type_id, old.code) == old.name
        if not leftover and not ctx.options.prune:
            continue
        _stage_delete(ctx, bp, found, group, wanted, chain, old, items, leftover)


def _stage_delete(
    ctx: Context,
    bp: Pipeline,
    found: PipelineSnap,
    group: str,
    wanted: _Wanted,
    chain: _Chain,
    old: StageSnap,
    items: int,
    leftover: bool,
) -> None:
    """One stage to remove: deleted when empty, its items moved first with --move-stage,
    refused when it holds items with nowhere (or nowhere valid) to go."""
    change = Change("delete", "stage", group, f"{bp.code}.{old.code}", {"name": old.name})
    change.usage = (old.status_id, *usage_query(found.entity_type_id, {"STAGE_ID": old.status_id}))
    if leftover:
        change.note = TEMPLATE_NOTE
    target = ctx.options.move_stage.get(f"{bp.code}:{old.code}")
    if target:
        change.moves = old.status_id
    if not items:
        chain.add(change, cmd.status_delete(old.row_id, old.system, name=ctx.name("del_st")))
    elif not target:
        change.refused = (
            f"holds {items} item(s); move them with --move-stage {bp.code}:{old.code}=OTHER_STAGE"
        )
        ctx.add(change)
    elif target not in wanted:
        change.refused = f"--move-stage target {target!r} is not a stage of {bp.code}"
        ctx.add(change)
    else:
        _move_then_delete(ctx, found, chain, change, old, items, target)


def _move_then_delete(
    ctx: Context,
    found: PipelineSnap,
    chain: _Chain,
    change: Change,
    old: StageSnap,
    items: int,
    target: str,
) -> None:
    """The moves of a stage's items to the target stage (all after the chain's last command),
    then the stage's delete, after them."""
    ids = ctx.items.get(old.status_id, [])
    change.note = f"moves its {items} item(s) to {target} first"
    change.attrs["move_to"] = target
    moves = cmd.move_items(found.entity_type_id, ids, found.prefix + target, ctx.name("move"))
    for move in moves:
        move.after = tuple(chain.names[-1:])
    change.commands.extend(moves)
    chain.names.extend(m.name for m in moves)
    delete = cmd.status_delete(old.row_id, old.system, name=ctx.name("del_st"))
    delete.after = tuple(m.name for m in moves) or tuple(chain.names[-1:])
    chain.names.append(delete.name)
    change.commands.append(delete)
    ctx.add(change)


def _stage_updates(
    ctx: Context,
    bp: Pipeline,
    group: str,
    wanted: _Wanted,
    by_code: dict[str, StageSnap],
    chain: _Chain,
) -> None:
    """2. updates, success and failure stages first so new stages can sort before them"""
    updates = []
    for code, (index, stage) in wanted.items():
        have = by_code.get(code)
        if have is None:
            continue
        if have.semantics != stage.semantics:
            change = Change(
                "update",
                "stage",
                group,
                f"{bp.code}.{code}",
                {"semantics": [have.semantics, stage.semantics]},
            )
            change.refused = (
                "a stage's semantics cannot change on the portal; give the "
                "new stage another code and prune the old one"
            )
            ctx.add(change)
            continue
        attrs, fields = _stage_diff(index, stage, have)
        if fields:
            updates.append((stage.semantics == "process", code, attrs, fields, have.row_id))
    for _, code, attrs, fields, row_id in sorted(updates, key=lambda u: u[0]):
        chain.add(
            Change("update", "stage", group, f"{bp.code}.{code}", attrs),
            cmd.status_update(row_id, fields, name=ctx.name("upd_st")),
        )


def _stage_diff(index: int, stage: Stage, have: StageSnap) -> tuple[dict[str, Any], dict[str, Any]]:
    """What differs between a stage on the portal and the blueprint's: the change's
    attributes ([old, new] by name) and the fields to send."""
    attrs: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    sort = stage_sort(index, stage)
    if have.name != stage.name:
        attrs["name"] = [have.name, stage.name]
        fields["NAME"] = stage.name
    if have.sort != sort:
        attrs["sort"] = [have.sort, sort]
        fields["SORT"] = sort
    if stage.color and (have.color or "").upper() != stage.color.upper():
        attrs["color"] = [have.color, stage.color]
        fields["COLOR"] = stage.color
    return attrs, fields


def _stage_creates(
    ctx: Context,
    bp: Pipeline,
    found: PipelineSnap,
    group: str,
    wanted: _Wanted,
    by_code: dict[str, StageSnap],
    chain: _Chain,
) -> None:
    """3. creates, in blueprint order"""
    for code, (index, stage) in wanted.items():
        if code in by_code:
            continue
        attrs = stage_attrs(index, stage)
        chain.add(
            Change("create", "stage", group, f"{bp.code}.{code}", attrs),
            cmd.status_add(
                stage_entity(found.entity_type_id, found.id),
                code,
                _stage_fields(stage, attrs["sort"]),
                name=ctx.name("add_st"),
            ),
        )
