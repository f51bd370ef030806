"""What a plan is made of: changes (what a person approves), each with the commands that
make it (what apply sends), and the context the planner's parts share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from b24kit.blueprint.model import Blueprint
from b24kit.client.executor import Command, Join, Pick, Ref
from b24kit.portal.ids import EntityType
from b24kit.portal.snapshot import Snapshot


@dataclass
class PlanOptions:
    prune: bool = False
    move_stage: dict[str, str] = field(default_factory=dict)  # "pipeline:OLD" -> "NEW"


@dataclass
class Change:
    action: str  # create | update | rename | delete
    kind: str  # pipeline | stage | field | smart_process
    group: str
    address: str
    attrs: dict[str, Any] = field(default_factory=dict)  # create: values; update: [old, new]
    commands: list[Command] = field(default_factory=list)
    refused: str | None = None  # why it cannot be applied
    note: str | None = None
    usage: tuple[str, str, dict[str, Any]] | None = None  # (key, list method, params)
    moves: str | None = None  # the STATUS_ID whose items --move-stage moves first

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "group": self.group,
            "address": self.address,
            "attrs": plain(self.attrs),
            "refused": self.refused,
            "note": self.note,
            "commands": [command_dict(c) for c in self.commands],
        }


@dataclass
class Plan:
    changes: list[Change]
    fingerprint: str
    requests: int = 0

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.refused is None]

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.refused is not None]

    def commands(self) -> list[Command]:
        """Every command apply sends, in the order it may send them: exactly this list."""
        return [command for change in self.changes for command in change.commands]

    def summary(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "rename": 0, "delete": 0, "refused": 0}
        for c in self.changes:
            out["refused" if c.refused else c.action] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "summary": self.summary(),
            "reads": self.requests,
            "changes": [c.as_dict() for c in self.changes],
            "commands": [command_dict(c) for c in self.commands()],
        }


def plain(value: Any) -> Any:
    """A value with its references written out as JSON: {"$ref": name, ...}; a reference
    used as a key becomes text."""
    if isinstance(value, Ref):
        out: dict[str, Any] = {"$ref": value.command}
        if value.path:
            out["path"] = list(value.path)
        if value.pick is not None:
            out["pick"] = {"field": value.pick.field, "values": list(value.pick.values)}
        if value.then:
            out["then"] = list(value.then)
        if value.fmt != "{}":
            out["fmt"] = value.fmt
        return out
    if isinstance(value, Join):
        return {"$join": [plain(p) for p in value.parts]}
    if isinstance(value, Pick):
        return {"field": value.field, "values": list(value.values)}
    if isinstance(value, dict):
        return {key_text(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def key_text(key: Any) -> str:
    """A dictionary key as text: one that is a reference shows what it will be,
    ``DYNAMIC_<spa_contractors_1>``."""
    if isinstance(key, Ref):
        return key.fmt.replace("{}", f"<{key.command}>")
    return str(key)


def command_dict(command: Command) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": command.name,
        "method": command.method,
        "kind": command.kind,
        "params": plain(command.params),
    }
    if command.after:
        out["after"] = list(command.after)
    if command.optional:
        out["optional"] = True
    return out


class Context:
    """What the planner's parts share: the inputs, the changes so far, command names, and
    the smart processes this plan creates (code -> the name of their crm.type.add)."""

    def __init__(
        self,
        bp: Blueprint,
        snap: Snapshot,
        options: PlanOptions,
        usage: dict[str, int],
        items: dict[str, list[int]],
    ) -> None:
        self.bp = bp
        self.snap = snap
        self.options = options
        self.usage = usage  # STATUS_ID, "pipeline:<etid>:<id>" or "spa:<etid>" -> items
        self.items = items  # STATUS_ID -> ids of its items (only for --move-stage)
        self.changes: list[Change] = []
        self.new_spas: dict[str, str] = {}
        self.seq = 0

    def name(self, hint: str) -> str:
        self.seq += 1
        clean = "".join(ch if ch.isalnum() else "_" for ch in hint)[:30]
        return f"{clean}_{self.seq}"

    def add(self, change: Change) -> Change:
        self.changes.append(change)
        return change


def usage_query(etid: int, flt: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A list call whose ``total`` says how many items would be affected."""
    # an empty filter is left out: in a batch it would travel as an empty PHP array,
    # which a strict portal reads as a filter on field "0"
    if etid == EntityType.DEAL:
        params: dict[str, Any] = {"select": ["ID"], "start": 0}
        if flt:
            params["filter"] = flt
        return "crm.deal.list", params
    camel = {"STAGE_ID": "stageId", "CATEGORY_ID": "categoryId"}
    params = {"entityTypeId": etid, "select": ["id"], "start": 0}
    if flt:
        params["filter"] = {camel[k]: v for k, v in flt.items()}
    return "crm.item.list", params
