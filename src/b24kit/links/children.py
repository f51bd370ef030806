"""A child under a parent: the one builder the migration and the repairs (audit --fix,
sync) use. The child points to its parent; the parent points back and mirrors the
child's stage; the link's copied fields come from the parent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from b24kit.client.executor import Command, Ref
from b24kit.portal import commands as cmd
from b24kit.portal.ids import deal_ref


@dataclass(frozen=True)
class ChildLink:
    """A link as the portal spells it."""

    name: str
    child_pipeline: int
    child_field: str  # UF on the child holding its parent
    parent_field: str | None  # UF on the parent holding its child
    mirror_field: str | None  # UF on the parent showing the child's stage name
    copy_fields: tuple[str, ...]
    stage_names: Mapping[str, str]  # child STATUS_ID -> its name

    def stage_name(self, status: str) -> str:
        return self.stage_names.get(status, status)


def as_ref_text(value: Any, fmt: str) -> Any:
    """``value`` (an id, or a Ref to the command that makes it) written as ``fmt``."""
    if isinstance(value, Ref):
        return Ref(value.command, value.path, fmt, value.pick, value.then)
    return fmt.replace("{}", str(value))


def child_fields(
    link: ChildLink,
    parent: Any,
    stage: str,
    parent_fields: Mapping[str, Any],
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The new child's fields: its own ``fields``, the link's copied fields from the
    parent's, its pipeline and stage, and the pointer to its parent."""
    out = dict(fields)
    for name in link.copy_fields:
        if name != "TITLE" and name not in out and parent_fields.get(name) not in (None, ""):
            out[name] = parent_fields[name]
    if not out.get("TITLE") and parent_fields.get("TITLE"):
        out["TITLE"] = parent_fields["TITLE"]
    out.update(
        {
            "CATEGORY_ID": link.child_pipeline,
            "STAGE_ID": stage,
            link.child_field: as_ref_text(parent, deal_ref("{}")),
        }
    )
    return out


def back_fields(link: ChildLink, child: Any, stage: str | None) -> dict[str, Any]:
    """What the parent gets: the pointer to its child, and the child's stage name."""
    out: dict[str, Any] = {}
    if link.parent_field:
        out[link.parent_field] = as_ref_text(child, deal_ref("{}"))
    if link.mirror_field and stage:
        out[link.mirror_field] = link.stage_name(stage)
    return out


def new_child(
    link: ChildLink,
    parent: int,
    stage: str,
    parent_fields: Mapping[str, Any],
    origin: tuple[str, str],
    names: Callable[[], str],
    fields: Mapping[str, Any] | None = None,
) -> list[Command]:
    """Create the child of an existing parent, then point the parent at it. ``origin``:
    (ORIGINATOR_ID, ORIGIN_ID), by which a create whose answer was lost is found again."""
    values = child_fields(link, parent, stage, parent_fields, fields or {})
    values.update(ORIGINATOR_ID=origin[0], ORIGIN_ID=origin[1])
    add = cmd.entity_add("deal", values, name=names())
    commands = [add]
    back = back_fields(link, Ref(add.name), stage)
    if back:
        commands.append(cmd.entity_update("deal", parent, back, name=names()))
    return commands
