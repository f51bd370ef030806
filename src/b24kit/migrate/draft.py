"""``migrate init``: draft a mapping from a sheet's header and a blueprint.

Columns are recognised by the words people use in such sheets; stages are offered with
their blueprint names as the sheet words; the names found in person columns are listed
for the users table. Everything guessed is marked TODO for a person to check.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from b24kit.blueprint.model import Blueprint
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


def draft_mapping(table: Table, bp: Blueprint, source: dict[str, Any],
                  blueprint_ref: str = "TODO: path/to/blueprint.yaml") -> str:
    """``blueprint_ref`` and the paths in ``source`` are as the mapping file will read them
    (relative to its folder)."""
    roles: dict[str, str] = {}
    unmapped = []
    for header in table.headers:
        role = classify(header)
        if role and role not in roles:
            roles[role] = header
        else:
            unmapped.append(header)
    parents = {link.parent.pipeline for link in bp.links}
    pipeline = next((p for p in bp.deal.pipelines if p.code in parents),
                    bp.deal.pipelines[0] if bp.deal.pipelines else None)
    if pipeline is None:
        raise InputError("the blueprint has no deal pipeline to migrate into")
    people = {roles[r] for r in ("parent.ASSIGNED_BY_ID", "child.logist") if r in roles}
    found: dict[str, str] = {}
    for row in table.rows:
        if row.repeats_header(table.headers):
            continue
        for h in people:
            value = row.value(h)
            if value is not None and str(value).strip() not in table.headers:
                found.setdefault(normalize_word(str(value)), str(value).strip())
    names = sorted(found.values())
    mapping: dict[str, Any] = {"version": 1, "blueprint": blueprint_ref,
                               "source": source, "originator": "legacy-sheet"}
    if "row_id" in roles:
        mapping["row_id"] = roles["row_id"]
    mapping["users"] = {name: 0 for name in names}
    fields: dict[str, Any] = {}
    for role, header in roles.items():
        if role == "parent.BEGINDATE":
            fields["BEGINDATE"] = {"column": header, "parse": "date"}
        elif role == "parent.OPPORTUNITY":
            fields["OPPORTUNITY"] = {"column": header, "parse": "money"}
        elif role == "parent.ASSIGNED_BY_ID":
            fields["ASSIGNED_BY_ID"] = {"column": header, "parse": "user"}
        elif role == "parent.SOURCE_ID":
            fields["SOURCE_ID"] = {"column": header, "parse": "enum", "values": {
                "CALL": ["звонок"], "WEB": ["сайт"], "ADVERTISING": ["реклама"],
                "RECOMMENDATION": ["рекомендация"]}}
    stage: dict[str, Any] = {"default": pipeline.stages[0].code}
    if "parent.stage" in roles:
        stage["column"] = roles["parent.stage"]
        stage["values"] = {s.code: [s.name.lower()] for s in pipeline.stages}
    title = "{" + roles["parent.title"] + "}" if "parent.title" in roles else "Проект {№}"
    mapping["parent"] = {"pipeline": pipeline.code, "title": title, "stage": stage,
                         "fields": fields}
    mapping["contact"] = {k.split(".")[1]: v for k, v in roles.items() if k.startswith("contact.")}
    spa = bp.smart_processes[0].code if bp.smart_processes else None
    if spa and "contractor.title" in roles:
        mapping["contractor"] = {"type": spa, "title": roles["contractor.title"],
                                 **({"phone": roles["contractor.phone"]}
                                    if "contractor.phone" in roles else {})}
    children = []
    for link in bp.links:
        if link.parent.pipeline != pipeline.code:
            continue
        when = [roles[r] for r in ("child.logist", "contractor.title") if r in roles]
        if not when:
            continue
        child_fields: dict[str, Any] = {}
        if "child.logist" in roles:
            child_fields["ASSIGNED_BY_ID"] = {"column": roles["child.logist"], "parse": "user"}
        if "child.cost" in roles:
            child_fields["OPPORTUNITY"] = {"column": roles["child.cost"], "parse": "money"}
        if "child.rating" in roles:
            child_fields["UF_CRM_CONTRACTOR_RATING"] = {
                "column": roles["child.rating"], "parse": "enum",
                "values": {"TODO_XML_ID": ["TODO: words in the sheet"]}}
        children.append({"link": link.name, "when": when, "title": f"{link.name}: {title}",
                         "contractor": "contractor" in mapping, "fields": child_fields})
    if children:
        mapping["children"] = children
    if "comment" in roles:
        mapping["comment"] = roles["comment"]
    lines = ["# Drafted by b24kit migrate init: check every line marked TODO, then run",
             "#   b24kit migrate run THIS_FILE --portal PORTAL --dry-run",
             "# TODO: set the portal user id of every name under users:"]
    if unmapped:
        lines.append(f"# Not mapped (map them by hand if they matter): {', '.join(unmapped)}")
    return "\n".join(lines) + "\n" + yaml.safe_dump(mapping, allow_unicode=True,
                                                    sort_keys=False, width=100)
