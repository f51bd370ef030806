"""Checks of the ``directories:`` section: every name it gives is a smart process, a link,
a field of the right type or a stage the blueprint declares."""

from __future__ import annotations

from collections.abc import Callable

from b24kit.blueprint.document import PathKey
from b24kit.blueprint.model import Blueprint, CustomField, Directory, Pipeline, SmartProcess

Add = Callable[[PathKey, str], None]
NUMBER = ("double", "integer", "money")
SYSTEM_DATES = {"BEGINDATE", "CLOSEDATE", "DATE_CREATE", "DATE_MODIFY"}
# record key -> the deal field types it may be
RECORD_TYPES: dict[str, tuple[str, ...]] = {
    "contractor": ("crm",),
    "in_house": ("boolean",),
    "price": NUMBER,
    "rating": ("enumeration", "integer", "double"),
    "notes": ("string",),
    "typed_name": ("string",),
    "typed_phone": ("string",),
    "date": ("date", "datetime"),
}
# entry key -> the smart process field types it may be
ENTRY_TYPES: dict[str, tuple[str, ...]] = {
    "phone": ("string",),
    "notes": ("string",),
    "times_used": ("integer", "double"),
    "last_price": NUMBER,
    "average_rating": ("double",),
    "last_used": ("date", "datetime"),
}


def _typed(
    add: Add,
    path: PathKey,
    what: str,
    code: str,
    fields: dict[str, CustomField],
    want: tuple[str, ...],
) -> CustomField | None:
    found = fields.get(code)
    if found is None:
        add(path, f"{what}: no field {code!r}")
    elif found.type not in want:
        add(path, f"{what}: field {code!r} must be of type {' or '.join(want)}, not {found.type}")
        return None
    return found


def _record(
    add: Add, d: Directory, path: PathKey, deal_fields: dict[str, CustomField], spa_codes: set[str]
) -> None:
    """The record's deal fields: declared, of a type that holds what they hold, the
    contractor field linking the directory's smart process, typed name and phone together."""
    for key, want in RECORD_TYPES.items():
        code = getattr(d.record, key)
        if code is None or (key == "date" and code in SYSTEM_DATES):
            continue
        what = f"directory {d.name!r}: record.{key}"
        found = _typed(add, (*path, "record", key), what, code, deal_fields, want)
        known = d.smart_process in spa_codes  # an unknown one is reported once, above
        if key == "contractor" and found and known and d.smart_process not in (found.links or []):
            add(
                (*path, "record", key),
                f"{what}: field {code!r} must link smart process {d.smart_process!r}",
            )
    if (d.record.typed_name is None) != (d.record.typed_phone is None):
        add(
            (*path, "record"),
            f"directory {d.name!r}: give typed_name and typed_phone together, or neither",
        )


def _entry(add: Add, d: Directory, path: PathKey, spa: SmartProcess) -> None:
    fields = {f.code: f for f in spa.fields}
    for key, want in ENTRY_TYPES.items():
        code = getattr(d.entry, key)
        if code is not None:
            what = f"directory {d.name!r}: entry.{key} (smart process {spa.code!r})"
            _typed(add, (*path, "entry", key), what, code, fields, want)


def _stage(add: Add, path: PathKey, what: str, code: str, pipeline: Pipeline | None) -> None:
    if pipeline is not None and code not in {s.code for s in pipeline.stages}:
        add(path, f"{what}: pipeline {pipeline.code!r} has no stage {code!r}")


def _one(add: Add, bp: Blueprint, d: Directory, path: PathKey) -> None:
    spa = next((s for s in bp.smart_processes if s.code == d.smart_process), None)
    if spa is None:
        known = ", ".join(s.code for s in bp.smart_processes) or "none"
        add(
            (*path, "smart_process"),
            f"directory {d.name!r}: no smart process {d.smart_process!r} (known: {known})",
        )
    link = next((x for x in bp.links if x.name == d.link), None)
    if link is None:
        known = ", ".join(x.name for x in bp.links) or "none"
        add((*path, "link"), f"directory {d.name!r}: no link {d.link!r} (known: {known})")
    spa_codes = {s.code for s in bp.smart_processes}
    _record(add, d, path, {f.code: f for f in bp.deal.fields}, spa_codes)
    if spa is not None:
        _entry(add, d, path, spa)
        default = next((p for p in spa.pipelines if p.default), None)
        spa_pipeline = default or (spa.pipelines[0] if spa.pipelines else None)
        if spa_pipeline is None:
            add(
                (*path, "duplicate_stage"),
                f"directory {d.name!r}: smart process {spa.code!r} has no stages to move a "
                "duplicate to",
            )
        what = f"directory {d.name!r}: duplicate_stage"
        _stage(add, (*path, "duplicate_stage"), what, d.duplicate_stage, spa_pipeline)
    if link is not None and d.required_from is not None:
        child = next((p for p in bp.deal.pipelines if p.code == link.child.pipeline), None)
        what = f"directory {d.name!r}: required_from"
        _stage(add, (*path, "required_from"), what, d.required_from, child)


def check_directories(bp: Blueprint, add: Add) -> None:
    """Every directory: a unique name, then each name it gives (see module docstring)."""
    seen: set[str] = set()
    for i, d in enumerate(bp.directories):
        path: PathKey = ("directories", i)
        if d.name in seen:
            add((*path, "name"), f"directory name {d.name!r} is used twice")
        seen.add(d.name)
        _one(add, bp, d, path)
