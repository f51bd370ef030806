"""Plan smart processes: creates first (so every other command can refer to them), then
updates and relations, then their pipelines and fields; deletes (--prune) come last."""

from __future__ import annotations

from typing import Any

from b24kit.blueprint.changes import Change, Context, usage_query
from b24kit.blueprint.model import SmartProcess
from b24kit.blueprint.plan_fields import FieldOwner, plan_fields
from b24kit.blueprint.plan_pipelines import Owner, plan_pipelines
from b24kit.client.executor import Ref
from b24kit.portal import commands as cmd
from b24kit.portal.ids import ENTITY_WORDS, EntityType
from b24kit.portal.snapshot import SpaSnap

SWITCH_FLAGS = {
    "categories": "isCategoriesEnabled",
    "stages": "isStagesEnabled",
    "client": "isClientEnabled",
    "products": "isLinkWithProductsEnabled",
    "begin_close_dates": "isBeginCloseDatesEnabled",
    "observers": "isObserversEnabled",
    "source": "isSourceEnabled",
    "use_in_userfield": "isUseInUserfieldEnabled",
    "automation": "isAutomationEnabled",
}


def _etid(ctx: Context, code: str) -> Any:
    """The entity type id of a blueprint word, a smart process on the portal, or a
    reference to one this plan creates."""
    if code in ENTITY_WORDS:
        return int(ENTITY_WORDS[code])
    if code in ctx.new_spas:
        return Ref(ctx.new_spas[code], ("type", "entityTypeId"))
    spa = ctx.snap.spa_by_code(code)
    assert spa is not None, code  # the blueprint's references are checked
    return spa.entity_type_id


def _relations(ctx: Context, sp: SmartProcess) -> dict[str, list[dict[str, Any]]]:
    def side(codes: list[str]) -> list[dict[str, Any]]:
        return [{"entityTypeId": _etid(ctx, c), "isChildrenListEnabled": "true"} for c in codes]

    return {"parent": side(sp.relations.parents), "child": side(sp.relations.children)}


def _spa_fields(sp: SmartProcess) -> dict[str, Any]:
    fields: dict[str, Any] = {"title": sp.title, "code": sp.code}
    for switch, flag in SWITCH_FLAGS.items():
        fields[flag] = "Y" if getattr(sp.switches, switch) else "N"
    return fields


def _twins(ctx: Context, sp: SmartProcess) -> list[SpaSnap]:
    """crm.type.add may not keep code (it is not in crm-type-add.md's table; docs/sandbox.md
    "type-add-drops-code"), so a create is followed by crm.type.update of the code. A smart
    process with no code and the blueprint's title may be ours from a portal that kept
    neither, or the client's own: it is never taken over silently; the create is refused
    until someone gives it its code or renames it."""
    return [s for s in ctx.snap.spas if not s.code and s.title == sp.title]


def plan_smart_processes(ctx: Context) -> None:
    new = [sp for sp in ctx.bp.smart_processes if ctx.snap.spa_by_code(sp.code) is None]
    for sp in new:
        _create(ctx, sp)
    for sp in ctx.bp.smart_processes:
        have = ctx.snap.spa_by_code(sp.code)
        if have is not None:
            _update(ctx, sp, have)
        elif sp.code in ctx.new_spas and _refers_to_new(ctx, sp):
            group = f"smart process {sp.code} «{sp.title}»"
            change = ctx.add(
                Change(
                    "update",
                    "smart_process",
                    group,
                    sp.code,
                    {
                        "relations": {
                            "parents": sp.relations.parents,
                            "children": sp.relations.children,
                        }
                    },
                    note="once every smart process it relates to exists",
                )
            )
            change.commands = [
                cmd.type_update(
                    Ref(ctx.new_spas[sp.code], ("type", "id")),
                    {"relations": _relations(ctx, sp)},
                    name=ctx.name(f"rel_{sp.code}"),
                )
            ]
    for sp in ctx.bp.smart_processes:
        _pipelines_and_fields(ctx, sp)


def prune_smart_processes(ctx: Context) -> None:
    if not ctx.options.prune:
        return
    wanted = {sp.code for sp in ctx.bp.smart_processes}
    for have in ctx.snap.spas:
        if have.code in wanted:
            continue
        change = Change(
            "delete",
            "smart_process",
            f"smart process «{have.title}» (not in the blueprint)",
            have.code or f"#{have.id}",
            {"title": have.title},
        )
        key = f"spa:{have.entity_type_id}"
        change.usage = (key, *usage_query(have.entity_type_id, {}))
        items = ctx.usage.get(key, 0)
        if items:
            change.refused = f"holds {items} item(s)"
        else:
            change.commands = [cmd.type_delete(have.id, name=ctx.name("del_spa"))]
        ctx.add(change)


def _refers_to_new(ctx: Context, sp: SmartProcess) -> bool:
    return any(c in ctx.new_spas for c in (*sp.relations.parents, *sp.relations.children))


def _create(ctx: Context, sp: SmartProcess) -> None:
    group = f"smart process {sp.code} «{sp.title}»"
    change = ctx.add(
        Change(
            "create",
            "smart_process",
            group,
            sp.code,
            {
                "title": sp.title,
                "switches": sp.switches.model_dump(),
                "parents": sp.relations.parents,
                "children": sp.relations.children,
            },
        )
    )
    twins = _twins(ctx, sp)
    if twins:
        ids = ", ".join(str(t.id) for t in twins)
        change.refused = (
            f"the portal has a smart process «{sp.title}» without a code (id {ids}): if it "
            f"is this one, give it the code: b24kit call crm.type.update id={twins[0].id} "
            f"fields.code={sp.code}; if not, rename one of them"
        )
        return
    fields = _spa_fields(sp)
    if not _refers_to_new(ctx, sp):
        fields["relations"] = _relations(ctx, sp)
    add = cmd.type_add(fields, name=ctx.name(f"spa_{sp.code}"))
    ctx.new_spas[sp.code] = add.name
    change.commands = [
        add,
        # crm.type.add may not keep code (crm-type-add.md's table lacks it): set it
        # again, so the smart process is found by code next time
        cmd.type_update(
            Ref(add.name, ("type", "id")), {"code": sp.code}, name=ctx.name(f"spa_code_{sp.code}")
        ),
    ]


def _update(ctx: Context, sp: SmartProcess, have: SpaSnap) -> None:
    attrs: dict[str, Any] = {}
    update: dict[str, Any] = {}
    if have.title != sp.title:
        attrs["title"] = [have.title, sp.title]
        update["title"] = sp.title
    for switch, flag in SWITCH_FLAGS.items():
        want = "Y" if getattr(sp.switches, switch) else "N"
        if have.flags.get(flag, "N") != want:
            attrs[switch] = [have.flags.get(flag), want]
            update[flag] = want
    relations = _relations(ctx, sp)
    parents = [r["entityTypeId"] for r in relations["parent"]]
    children = [r["entityTypeId"] for r in relations["child"]]
    client = {int(EntityType.CONTACT), int(EntityType.COMPANY)} if sp.switches.client else set()
    pending = any(isinstance(e, Ref) for e in (*parents, *children))
    if pending or set(have.parents) != set(parents) | client or set(have.children) != set(children):
        attrs["relations"] = [
            {"parents": have.parents, "children": have.children},
            {"parents": sp.relations.parents, "children": sp.relations.children},
        ]
        update["relations"] = relations
    if update:
        group = f"smart process {sp.code} «{sp.title}»"
        change = ctx.add(Change("update", "smart_process", group, sp.code, attrs))
        change.commands = [cmd.type_update(have.id, update, name=ctx.name("upd_spa"))]


def _pipelines_and_fields(ctx: Context, sp: SmartProcess) -> None:
    label = f"smart process {sp.code}"
    have = ctx.snap.spa_by_code(sp.code)
    if have is not None:
        plan_pipelines(
            ctx, Owner(label, have.entity_type_id, spa=have), sp.pipelines, have.pipelines
        )
        plan_fields(ctx, FieldOwner(label, spa=have), sp.fields, have.fields)
        return
    add = ctx.new_spas.get(sp.code)
    if add is None:  # refused: nothing of it is planned
        return
    etid = Ref(add, ("type", "entityTypeId"))
    listed = cmd.categories(etid, name=ctx.name(f"cats_{sp.code}"))
    owner = Owner(label, etid, new_spa=add, categories_read=listed.name)
    start = len(ctx.changes)  # the read belongs to the first pipeline's change
    plan_pipelines(ctx, owner, sp.pipelines, [])
    if len(ctx.changes) > start:
        ctx.changes[start].commands.insert(0, listed)
    plan_fields(ctx, FieldOwner(label, new_spa=add), sp.fields, [])
