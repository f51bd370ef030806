"""Every column a mapping names must be in the sheet's header: a misspelt column would
otherwise drop that value from every row, silently. Checked before anything is read from
the portal; each missing column is one issue at the mapping's file:line, with the closest
header names offered."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from b24kit.blueprint.document import BlueprintIssue, Document, Mark, PathKey
from b24kit.migrate.mapping import TEMPLATE, Column, Mapping, StageRule

Named = tuple[PathKey, str]  # where in the mapping, the column it names


def _fields(path: PathKey, fields: dict[str, Column]) -> Iterator[Named]:
    for key, spec in fields.items():
        yield (*path, key, "column"), spec.column


def _stage(path: PathKey, rule: StageRule | None) -> Iterator[Named]:
    if rule is not None and rule.column:
        yield (*path, "column"), rule.column


def _template(path: PathKey, text: str) -> Iterator[Named]:
    for name in TEMPLATE.findall(text):
        yield path, name


def named_columns(mapping: Mapping) -> list[Named]:
    """Every (place, column) the mapping names, templates' {Column} included."""
    out: list[Named] = []
    if mapping.row_id:
        out.append((("row_id",), mapping.row_id))
    out += _template(("parent", "title"), mapping.parent.title)
    out += _stage(("parent", "stage"), mapping.parent.stage)
    if mapping.parent.route is not None:
        out.append((("parent", "route", "column"), mapping.parent.route.column))
    out += _fields(("parent", "fields"), mapping.parent.fields)
    for key in ("name", "phone", "email", "company", "person", "inn"):
        value = getattr(mapping.contact, key)
        if value:
            out.append((("contact", key), value))
    if mapping.contractor is not None:
        out.append((("contractor", "title"), mapping.contractor.title))
        if mapping.contractor.phone:
            out.append((("contractor", "phone"), mapping.contractor.phone))
        out += _fields(("contractor", "fields"), mapping.contractor.fields)
    for i, child in enumerate(mapping.children):
        out += [(("children", i, "when", j), column) for j, column in enumerate(child.when)]
        out += _template(("children", i, "title"), child.title)
        out += _stage(("children", i, "stage"), child.stage)
        out += _fields(("children", i, "fields"), child.fields)
    if mapping.comment:
        out.append((("comment",), mapping.comment))
    for i, column in enumerate(mapping.rows.require_any or []):
        out.append((("rows", "require_any", i), column))
    out += [(("rows", "require", i), column) for i, column in enumerate(mapping.rows.require)]
    return out


def missing_columns(
    mapping: Mapping, headers: list[str], doc: Document | None, sheet: str
) -> list[BlueprintIssue]:
    """One issue per column the mapping names and the sheet lacks."""
    issues = []
    known = set(headers)
    for path, column in named_columns(mapping):
        if column in known:
            continue
        near = difflib.get_close_matches(column, headers, n=3, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join(f'«{n}»' for n in near)}?"
            if near
            else f"; the sheet's columns: {', '.join(f'«{h}»' for h in headers[:12])}"
            + (" …" if len(headers) > 12 else "")
        )
        mark = doc.mark(path) if doc is not None else Mark("mapping", 1, 1)
        where = ".".join(str(p) for p in path)
        issues.append(BlueprintIssue(mark, f"{where}: no column «{column}» in {sheet}{hint}"))
    return issues


def repeated_columns(
    mapping: Mapping, repeated: dict[str, list[str]], doc: Document | None, sheet: str
) -> list[BlueprintIssue]:
    """One issue per column the mapping names that the sheet's header has more than once:
    which of them it means is a guess (the first, silently)."""
    issues = []
    for path, column in named_columns(mapping):
        if column in repeated:
            mark = doc.mark(path) if doc is not None else Mark("mapping", 1, 1)
            where = ".".join(str(p) for p in path)
            letters = ", ".join(repeated[column])
            issues.append(
                BlueprintIssue(
                    mark,
                    f"{where}: column «{column}» is in {sheet} more than once (columns "
                    f"{letters}): rename the others so the mapping names one",
                )
            )
    return issues
