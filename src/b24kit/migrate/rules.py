"""Every name a mapping gives must exist before anything is written (issue 16, item 3): a
misspelt stage code that no row happens to use, or a deal field the portal does not have
(it drops unknown fields without a word), would otherwise go unnoticed. Each unknown name
is one issue at the mapping's file:line, with the closest known name.

``check_rules`` reads the blueprint only: the pipeline, the stage codes of every stage
rule, the children's links, the contractor's smart process and its fields.
``check_portal_fields`` reads the portal's own list of deal fields (``crm.deal.fields``)
and enumeration items: the fields the mapping fills and the items its value maps name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from b24kit.blueprint.document import BlueprintIssue, Document, Mark, PathKey
from b24kit.blueprint.model import Blueprint, Pipeline
from b24kit.migrate.mapping import Column, Mapping, StageRule
from b24kit.portal.users import display_name

# deal fields the migration fills itself, from the rule named here
OWN_FIELDS = {
    "TITLE": "the title template",
    "CATEGORY_ID": "the pipeline",
    "STAGE_ID": "the stage rule",
    "CONTACT_ID": "contact:",
    "ORIGINATOR_ID": "originator: (b24kit finds its deals by it on a re-run)",
    "ORIGIN_ID": "the row id (b24kit finds its deals by it on a re-run)",
}


class _Issues:
    def __init__(self, doc: Document | None) -> None:
        self.doc = doc
        self.found: list[BlueprintIssue] = []

    def add(self, path: PathKey, message: str) -> None:
        mark = self.doc.mark(path) if self.doc is not None else Mark("mapping", 1, 1)
        where = ".".join(str(p) for p in path)
        self.found.append(BlueprintIssue(mark, f"{where}: {message}"))

    def unknown(self, path: PathKey, what: str, name: str, known: Iterable[str]) -> None:
        choices = sorted(set(known))
        near = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        hint = (
            f"; did you mean {near[0]!r}?"
            if near
            else (f"; it has: {', '.join(choices[:12])}" + (" …" if len(choices) > 12 else ""))
            if choices
            else ""
        )
        self.add(path, f"{what} {name!r}{hint}")


def _stages(issues: _Issues, path: PathKey, rule: StageRule | None, pipeline: Pipeline) -> None:
    if rule is None:
        return
    codes = [s.code for s in pipeline.stages]
    what = f"pipeline {pipeline.code!r} has no stage"
    if rule.default not in codes:
        issues.unknown((*path, "default"), what, rule.default, codes)
    for code in rule.values:
        if code not in codes:
            issues.unknown((*path, "values", code), what, code, codes)


def check_rules(mapping: Mapping, bp: Blueprint) -> list[BlueprintIssue]:
    """The names the mapping gives that the blueprint does not have."""
    issues = _Issues(mapping.document)
    pipelines = {p.code: p for p in bp.deal.pipelines}
    routed: list[tuple[PathKey, str]] = [(("parent", "pipeline"), mapping.parent.pipeline)]
    if mapping.parent.route is not None:
        routed += [(("parent", "route", "values", c), c) for c in mapping.parent.route.values]
    for path, code in routed:
        parent = pipelines.get(code)
        if parent is None:
            issues.unknown(path, "the blueprint has no deal pipeline", code, pipelines)
        else:  # every stage rule's code on every pipeline a row may go to
            _stages(issues, ("parent", "stage"), mapping.parent.stage, parent)
    links = {link.name: link for link in bp.links}
    for i, child in enumerate(mapping.children):
        link = links.get(child.link)
        if link is None:
            issues.unknown(("children", i, "link"), "the blueprint has no link", child.link, links)
        elif not set(link.parent.codes) & set(mapping.parent.pipelines):
            issues.add(
                ("children", i, "link"),
                f"link {link.name!r} takes children from {', '.join(link.parent.codes)}, "
                f"where no row goes (the rows go to: {', '.join(mapping.parent.pipelines)})",
            )
        elif link.child.pipeline in pipelines:
            _stages(issues, ("children", i, "stage"), child.stage, pipelines[link.child.pipeline])
    rule = mapping.contractor
    if rule is not None:
        spas = {spa.code: spa for spa in bp.smart_processes}
        spa = spas.get(rule.type)
        if spa is None:
            issues.unknown(
                ("contractor", "type"), "the blueprint has no smart process", rule.type, spas
            )
        else:
            codes = [f.code for f in spa.fields]
            what = f"smart process {spa.code!r} has no field"
            if rule.phone_field not in codes:
                issues.unknown(("contractor", "phone_field"), what, rule.phone_field, codes)
            for key in rule.fields:
                if key not in codes:
                    issues.unknown(("contractor", "fields", key), what, key, codes)
    return issues.found


def _deal_columns(mapping: Mapping) -> Iterator[tuple[PathKey, str, Column]]:
    """Every deal field the mapping fills: (where, field name, its column rule)."""
    for key, spec in mapping.parent.fields.items():
        yield ("parent", "fields", key), key, spec
    for i, child in enumerate(mapping.children):
        for key, spec in child.fields.items():
            yield ("children", i, "fields", key), key, spec


def status_lists(mapping: Mapping, deal_fields: dict[str, Any]) -> set[str]:
    """The portal's status lists (SOURCE, DEAL_TYPE…) whose entries the mapping's value
    maps for crm_status fields name: to be read for ``check_portal_fields``."""
    out = set()
    for _, name, spec in _deal_columns(mapping):
        info = deal_fields.get(name)
        if spec.values and isinstance(info, dict) and info.get("statusType"):
            out.add(str(info["statusType"]))
    return out


def check_portal_fields(
    mapping: Mapping,
    deal_fields: dict[str, Any],
    enum_ids: dict[str, dict[str, int]],
    statuses: dict[str, list[str]],
) -> list[BlueprintIssue]:
    """The deal fields the mapping fills that the portal has not (or that are read-only or
    the migration's own), and the items its value maps name that the field has not: an
    enumeration's XML_IDs (``enum_ids``: field -> XML_ID -> item id) or a crm_status
    field's list (``statuses``: list -> STATUS_IDs, as ``status_lists`` named)."""
    issues = _Issues(mapping.document)
    for path, name, spec in _deal_columns(mapping):
        info = deal_fields.get(name)
        if name in OWN_FIELDS:
            issues.add(path, f"{name} is set by the migration from {OWN_FIELDS[name]}")
        elif not isinstance(info, dict):
            issues.unknown(path, "the portal has no deal field", name, deal_fields)
        elif info.get("isReadOnly"):
            issues.add(path, f"deal field {name} is read-only on the portal")
        elif spec.values:
            if name in enum_ids:
                what, known = (
                    f"field {name} has no item with XML_ID",
                    [x for x in enum_ids[name] if x],
                )
            elif str(info.get("statusType")) in statuses:
                kind = str(info["statusType"])
                what, known = f"field {name} has no {kind} entry", statuses[kind]
            else:
                continue
            for code in spec.values:
                if code not in known:
                    issues.unknown((*path, "values", code), what, code, known)
    return issues.found


def check_users(mapping: Mapping, found: dict[int, dict[str, Any]] | None) -> list[BlueprintIssue]:
    """Each id of ``users:`` must be a user of the portal (``found``: the users user.get
    returned for them; ``None`` when the webhook may not read users, and only a 0 is
    caught). A 0 is never a user (``migrate init`` writes TODO where it found none, and
    load_mapping lists those before this)."""
    issues = _Issues(mapping.document)
    for name, user_id in mapping.users.items():
        path = ("users", name)
        if user_id < 1:
            issues.add(
                path,
                f"{user_id} is not a user id: put the portal user's id here (the number "
                "in the address of their profile)",
            )
        elif found is not None and user_id not in found:
            issues.add(path, f"the portal has no user {user_id}")
        elif found is not None and found[user_id].get("ACTIVE") is False:
            issues.add(path, f"user {user_id} ({display_name(found[user_id])}) is dismissed")
    return issues.found
