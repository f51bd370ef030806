"""A plan saved by ``plan --out``, to apply exactly it later: the blueprint, the options
and the portal's fingerprint. A saved plan is input like any other: read back, it is
checked again as a blueprint file is, and apply refuses it when the portal changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from b24kit.blueprint.changes import Plan, PlanOptions
from b24kit.blueprint.checks import check_references
from b24kit.blueprint.document import Document, Mark
from b24kit.blueprint.model import Blueprint
from b24kit.errors import InputError

FORMAT = 1


@dataclass
class SavedPlan:
    blueprint: Blueprint
    options: PlanOptions
    fingerprint: str


def save_plan(path: Path, blueprint: Blueprint, options: PlanOptions, plan: Plan) -> None:
    path.write_text(
        json.dumps(
            {
                "b24kit_plan": FORMAT,
                "blueprint": blueprint.model_dump(mode="json"),
                "options": {"prune": options.prune, "move_stage": options.move_stage},
                "fingerprint": plan.fingerprint,
                "plan": plan.as_dict(),
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )


def read_saved_plan(path: Path) -> SavedPlan | None:
    """The plan saved in ``path``, recognised by its content (any file name); None when the
    file is not JSON (a blueprint), or not a regular file: a pipe (``apply <(…)``) can be
    read once, and a device (/dev/zero) is read, bounded, by the blueprint reader.
    InputError for a JSON file that is not a valid plan."""
    if path.exists() and not path.is_file() and not path.is_dir():
        return None
    try:
        with path.open("rb") as handle:  # the head only: the file may be huge
            head = handle.read(64).lstrip()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if not head.startswith(b"{"):
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a saved plan: {exc}") from None
    if not isinstance(saved, dict) or saved.get("b24kit_plan") != FORMAT:
        raise InputError(f"{path}: a JSON file, but not a plan saved by b24kit plan --out")
    try:
        blueprint = Blueprint.model_validate(saved.get("blueprint"))
        options = saved.get("options") or {}
        plan_options = PlanOptions(
            prune=bool(options["prune"]),
            move_stage={str(k): str(v) for k, v in dict(options["move_stage"]).items()},
        )
        fingerprint = str(saved["fingerprint"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"{path}: the plan's blueprint is not valid: {where}: {first['msg']}"
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: the plan's options are not valid: {exc}") from None
    issues = check_references(blueprint, Document(saved["blueprint"], {(): Mark(str(path), 1, 1)}))
    if issues:
        raise InputError(f"{path}: the plan's blueprint is not valid: {issues[0].message}")
    return SavedPlan(blueprint, plan_options, fingerprint)
