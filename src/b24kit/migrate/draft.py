"""``migrate init``: draft a mapping from a sheet's header and a blueprint.

Columns are recognised by the words people use in such sheets; stages are offered with
their blueprint names as the sheet words; the names found in person columns are listed
for the users table. Everything guessed is marked TODO for a person to check.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from b24kit.blueprint.model import Blueprint, Pipeline
from b24kit.errors import InputError
from b24kit.migrate.parsers import normalize_word
from b24kit.migrate.sources import Table

RULES: list[tuple[str, str]] = [
    (r"^(№|#|n|номер|id)$", "row_id"),
    (r"подрядчик.*тел|тел.*подрядчик", "contractor.phone"),
    (r"оценк.*подрядчик|рейтинг", "child.rating"),
    (r"подрядчик|перевозчик|исполнитель", "contractor.title"),
    (r"тел", "contact.phone"),
    (r"e-?mail|почта", "contact.email"),
    (r"компан|организац|юр", "contact.company"),
    (r"клиент|заказчик|контрагент|фио", "contact.name"),
    (r"логист", "child.logist"),
    (r"себестоим|закуп|стоимость подрядчик", "child.cost"),
    (r"дата", "parent.BEGINDATE"),
    (r"цена|сумма|стоимость", "parent.OPPORTUNITY"),
    (r"статус|стадия|этап", "parent.stage"),
    (r"менеджер|продавец|ответствен", "parent.ASSIGNED_BY_ID"),
    (r"источник", "parent.SOURCE_ID"),
    (r"коммент|примечан|заметк", "comment"),
    (r"что|груз|техник|наименован|описан|услуг", "parent.title"),
]


def classify(header: str) -> str | None:
    text = header.lower()
    for pattern, role in RULES:
        if re.search(pattern, text):
            return role
    return None


def draft_mapping(
    table: Table,
    bp: Blueprint,
    source: dict[str, Any],
    blueprint_ref: str = "TODO: path/to/blueprint.yaml",
) -> str:
    """``blueprint_ref`` and the paths in ``source`` are as the mapping file will read them
    (relative to its folder)."""
    roles, unmapped = _roles(table.headers)
    pipeline = _target_pipeline(bp)
    names = _people(table, roles)
    mapping: dict[str, Any] = {
        "version": 1,
        "blueprint": blueprint_ref,
        "source": source,
        "originator": "legacy-sheet",
    }
    if "row_id" in roles:
        mapping["row_id"] = roles["row_id"]
    mapping["users"] = {name: 0 for name in names}
    title = "{" + roles["parent.title"] + "}" if "parent.title" in roles else "Проект {№}"
    mapping["parent"] = {
        "pipeline": pipeline.code,
        "title": title,
        "stage": _parent_stage(roles, pipeline),
        "fields": _parent_fields(roles),
    }
    mapping["contact"] = {k.split(".")[1]: v for k, v in roles.items() if k.startswith("contact.")}
    contractor = _contractor(bp, roles)
    if contractor is not None:
        mapping["contractor"] = contractor
    children = _children(bp, roles, pipeline, title, contractor is not None)
    if children:
        mapping["children"] = children
    if "comment" in roles:
        mapping["comment"] = roles["comment"]
    lines = [
        "# Drafted by b24kit migrate init: check every line marked TODO, then run",
        "#   b24kit migrate run THIS_FILE --portal PORTAL --dry-run",
        "# TODO: set the portal user id of every name under users:",
    ]
    if unmapped:
        lines.append(f"# Not mapped (map them by hand if they matter): {', '.join(unmapped)}")
    return (
        "\n".join(lines)
        + "\n"
        + yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False, width=100)
    )


def _roles(headers: list[str]) -> tuple[dict[str, str], list[str]]:
    """The column of each role recognised (the first column with it), and the columns left
    unmapped."""
    roles: dict[str, str] = {}
    unmapped = []
    for header in headers:
        role = classify(header)
        if role and role not in roles:
            roles[role] = header
        else:
            unmapped.append(header)
    return roles, unmapped


def _target_pipeline(bp: Blueprint) -> Pipeline:
    """The deal pipeline the sheet's rows become deals of: the first that is a link's parent,
    else the first one."""
    parents = {link.parent.pipeline for link in bp.links}
    pipeline = next(
        (p for p in bp.deal.pipelines if p.code in parents),
        bp.deal.pipelines[0] if bp.deal.pipelines else None,
    )
    if pipeline is None:
        raise InputError("the blueprint has no deal pipeline to migrate into")
    return pipeline


def _people(table: Table, roles: dict[str, str]) -> list[str]:
    """The names found in the person columns (manager, logist), sorted, for the users
    table."""
    people = {roles[r] for r in ("parent.ASSIGNED_BY_ID", "child.logist") if r in roles}
    found: dict[str, str] = {}
    for row in table.rows:
        if row.repeats_header(table.headers):
            continue
        for h in people:
            value = row.value(h)
            if value is not None and str(value).strip() not in table.headers:
                found.setdefault(normalize_word(str(value)), str(value).strip())
    return sorted(found.values())


def _parent_fields(roles: dict[str, str]) -> dict[str, Any]:
    """The parent deal's fields, from the columns of their roles, in column order."""
    fields: dict[str, Any] = {}
    for role, header in roles.items():
        if role == "parent.BEGINDATE":
            fields["BEGINDATE"] = {"column": header, "parse": "date"}
        elif role == "parent.OPPORTUNITY":
            fields["OPPORTUNITY"] = {"column": header, "parse": "money"}
        elif role == "parent.ASSIGNED_BY_ID":
            fields["ASSIGNED_BY_ID"] = {"column": header, "parse": "user"}
        elif role == "parent.SOURCE_ID":
            fields["SOURCE_ID"] = {
                "column": header,
                "parse": "enum",
                "values": {
                    "CALL": ["звонок"],
                    "WEB": ["сайт"],
                    "ADVERTISING": ["реклама"],
                    "RECOMMENDATION": ["рекомендация"],
                },
            }
    return fields


def _parent_stage(roles: dict[str, str], pipeline: Pipeline) -> dict[str, Any]:
    """The parent's stage: the pipeline's first, or read from the status column with the
    blueprint's stage names as the sheet's words."""
    stage: dict[str, Any] = {"default": pipeline.stages[0].code}
    if "parent.stage" in roles:
        stage["column"] = roles["parent.stage"]
        stage["values"] = {s.code: [s.name.lower()] for s in pipeline.stages}
    return stage


def _contractor(bp: Blueprint, roles: dict[str, str]) -> dict[str, Any] | None:
    """The contractor, an item of the blueprint's first smart process, when there is one and
    a contractor column; None otherwise."""
    spa = bp.smart_processes[0].code if bp.smart_processes else None
    if not spa or "contractor.title" not in roles:
        return None
    return {
        "type": spa,
        "title": roles["contractor.title"],
        **({"phone": roles["contractor.phone"]} if "contractor.phone" in roles else {}),
    }


def _children(
    bp: Blueprint, roles: dict[str, str], pipeline: Pipeline, title: str, contractor: bool
) -> list[dict[str, Any]]:
    """A child for each link from the pipeline, made when the logist or contractor column
    has a value (none when the sheet has neither)."""
    children = []
    for link in bp.links:
        if link.parent.pipeline != pipeline.code:
            continue
        when = [roles[r] for r in ("child.logist", "contractor.title") if r in roles]
        if not when:
            continue
        children.append(
            {
                "link": link.name,
                "when": when,
                "title": f"{link.name}: {title}",
                "contractor": contractor,
                "fields": _child_fields(roles),
            }
        )
    return children


def _child_fields(roles: dict[str, str]) -> dict[str, Any]:
    """A child deal's fields: its logist, its cost and the contractor's rating."""
    child_fields: dict[str, Any] = {}
    if "child.logist" in roles:
        child_fields["ASSIGNED_BY_ID"] = {"column": roles["child.logist"], "parse": "user"}
    if "child.cost" in roles:
        child_fields["OPPORTUNITY"] = {"column": roles["child.cost"], "parse": "money"}
    if "child.rating" in roles:
        child_fields["UF_CRM_CONTRACTOR_RATING"] = {
            "column": roles["child.rating"],
            "parse": "enum",
            "values": {"TODO_XML_ID": ["TODO: words in the sheet"]},
        }
    return child_fields
