"""Checks across the blueprint that a schema cannot express: duplicates, dangling
references, stage order, field types and their settings."""

from __future__ import annotations

from typing import Any

from b24kit.blueprint.checks_directory import check_directories
from b24kit.blueprint.document import BlueprintIssue, Document, PathKey
from b24kit.blueprint.model import Blueprint, CustomField, Link, Pipeline
from b24kit.portal.ids import DEAL_STAGE_ID_MAX, LONGEST_DEAL_PREFIX

SYSTEM_DEAL_FIELDS = {
    "TITLE",
    "OPPORTUNITY",
    "CURRENCY_ID",
    "COMPANY_ID",
    "CONTACT_ID",
    "CONTACT_IDS",
    "ASSIGNED_BY_ID",
    "COMMENTS",
    "SOURCE_ID",
    "SOURCE_DESCRIPTION",
    "BEGINDATE",
    "CLOSEDATE",
    "TYPE_ID",
    "ADDITIONAL_INFO",
    "PROBABILITY",
    "UTM_SOURCE",
    "UTM_MEDIUM",
    "UTM_CAMPAIGN",
    "UTM_CONTENT",
    "UTM_TERM",
}
LINK_TARGETS = {"deal": "DEAL", "contact": "CONTACT", "company": "COMPANY", "lead": "LEAD"}


class _Collector:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.issues: list[BlueprintIssue] = []

    def add(self, path: PathKey, message: str) -> None:
        self.issues.append(BlueprintIssue(self.doc.mark(path), message))


def repeats(values: list[str]) -> list[int]:
    """Indexes of the values that already appeared earlier in the list."""
    seen: set[str] = set()
    out = []
    for i, value in enumerate(values):
        if value in seen:
            out.append(i)
        seen.add(value)
    return out


# A deal stage id is "C{pipeline id}:" + code, cut to 21 characters: with a pipeline id of up
# to four digits, 15 characters of the code are sure to be kept
KEPT_OF_DEAL_CODE = DEAL_STAGE_ID_MAX - LONGEST_DEAL_PREFIX


def _pipeline(c: _Collector, pipeline: Pipeline, path: PathKey, deal: bool = False) -> None:
    for i in repeats([s.code for s in pipeline.stages]):
        c.add(
            (*path, "stages", i, "code"),
            f"stage code {pipeline.stages[i].code!r} is used twice in pipeline {pipeline.code!r}",
        )
    if deal:
        cut = [s.code[:KEPT_OF_DEAL_CODE] for s in pipeline.stages]
        for i in repeats(cut):
            first = next(s.code for s in pipeline.stages if s.code[:KEPT_OF_DEAL_CODE] == cut[i])
            if first != pipeline.stages[i].code:
                c.add(
                    (*path, "stages", i, "code"),
                    f"stage codes {first!r} and "
                    f"{pipeline.stages[i].code!r} become one stage on the portal, which cuts a "
                    f"deal stage id to 21 characters: make their first {KEPT_OF_DEAL_CODE} "
                    "characters differ",
                )
    ordered = sorted(
        enumerate(pipeline.stages),
        key=lambda p: (p[1].sort if p[1].sort is not None else (p[0] + 1) * 10, p[0]),
    )
    semantics = [s.semantics for _, s in ordered]
    if semantics.count("success") != 1:
        c.add(
            (*path, "stages"),
            f"pipeline {pipeline.code!r} needs exactly one success stage, has "
            f"{semantics.count('success')}",
        )
    if "failure" not in semantics:
        c.add((*path, "stages"), f"pipeline {pipeline.code!r} needs at least one failure stage")
    if semantics and semantics[0] != "process":
        c.add(
            (*path, "stages", ordered[0][0]),
            f"the first stage of pipeline {pipeline.code!r} must be an in-progress stage",
        )
    rank = {"process": 0, "success": 1, "failure": 2}
    for (i, stage), (_, before) in zip(ordered[1:], ordered, strict=False):
        if rank[stage.semantics] < rank[before.semantics]:
            c.add(
                (*path, "stages", i),
                f"stage {stage.code!r} ({stage.semantics}) comes after a "
                f"{before.semantics} stage: in-progress stages, then success, then failure",
            )


def _field(c: _Collector, f: CustomField, path: PathKey, spa_codes: set[str]) -> None:
    if f.type == "enumeration" and not f.values:
        c.add((*path, "values"), f"enumeration field {f.code!r} needs values")
    if f.type != "enumeration" and f.values is not None:
        c.add((*path, "values"), f"field {f.code!r} of type {f.type} cannot have values")
    if f.type == "boolean" and f.multiple:
        c.add((*path, "multiple"), f"boolean field {f.code!r} cannot be multiple")
    if f.type == "crm":
        if not f.links:
            c.add((*path, "links"), f"crm field {f.code!r} must say which entities it links")
        for j, target in enumerate(f.links or []):
            if target not in LINK_TARGETS and target not in spa_codes:
                c.add(
                    (*path, "links", j),
                    f"crm field {f.code!r} links unknown entity "
                    f"{target!r}; use deal, contact, company, lead or a smart process code",
                )
    elif f.links is not None:
        c.add((*path, "links"), f"only crm fields have links; {f.code!r} is {f.type}")
    keys = [v.xml_id or v.value for v in f.values or []]
    for j in repeats(keys):
        c.add((*path, "values", j), f"value {keys[j]!r} repeats in field {f.code!r}")
    if (
        f.type == "double"
        and "PRECISION" in f.settings
        and not (isinstance(f.settings["PRECISION"], int) and 0 <= f.settings["PRECISION"] <= 12)
    ):
        c.add((*path, "settings", "PRECISION"), "PRECISION must be a whole number 0..12")


def _fields(
    c: _Collector, fields: list[CustomField], path: PathKey, owner: str, spa_codes: set[str]
) -> None:
    for i in repeats([f.code for f in fields]):
        c.add((*path, i, "code"), f"field code {fields[i].code!r} is used twice in {owner}")
    for i, f in enumerate(fields):
        _field(c, f, (*path, i), spa_codes)


# code -> (pipeline, owner): every pipeline of the blueprint, deal ones owned by "deal" and
# smart process ones by the smart process code
_Pipelines = dict[str, tuple[Pipeline, str]]


def _register(
    c: _Collector, pipelines: _Pipelines, pipeline: Pipeline, owner: str, path: PathKey
) -> None:
    """Records a pipeline under its code (which must be unique) and checks its stages."""
    if pipeline.code in pipelines:
        c.add((*path, "code"), f"pipeline code {pipeline.code!r} is used twice")
    pipelines[pipeline.code] = (pipeline, owner)
    _pipeline(c, pipeline, path, deal=owner == "deal")


def _deal(c: _Collector, bp: Blueprint, pipelines: _Pipelines, spa_codes: set[str]) -> None:
    """Deal pipelines (unique names, old names included, and one default) and deal fields."""
    names: dict[str, str] = {}
    defaults = 0
    for i, pipeline in enumerate(bp.deal.pipelines):
        path: PathKey = ("deal", "pipelines", i)
        _register(c, pipelines, pipeline, "deal", path)
        for name in (pipeline.name, *pipeline.previous_names):
            if name in names and names[name] != pipeline.code:
                c.add(
                    (*path, "name"),
                    f"pipeline name {name!r} is also used by "
                    f"{names[name]!r}: deal pipelines are matched by name",
                )
            names[name] = pipeline.code
        defaults += pipeline.default
        if defaults > 1 and pipeline.default:
            c.add((*path, "default"), "only one deal pipeline can be the default")
    _fields(c, bp.deal.fields, ("deal", "fields"), "deal fields", spa_codes)


def _smart_processes(
    c: _Collector, bp: Blueprint, pipelines: _Pipelines, spa_codes: set[str]
) -> None:
    """Smart process codes, then each smart process: switches that its pipelines need, its
    pipelines, its relations and its fields."""
    for i in repeats([s.code for s in bp.smart_processes]):
        c.add(
            ("smart_processes", i, "code"),
            f"smart process code {bp.smart_processes[i].code!r} is used twice",
        )
    for i, spa in enumerate(bp.smart_processes):
        path: PathKey = ("smart_processes", i)
        if len(spa.pipelines) > 1 and not spa.switches.categories:
            c.add(
                (*path, "pipelines"),
                f"smart process {spa.code!r} has several pipelines but switches.categories is off",
            )
        if spa.pipelines and not spa.switches.stages:
            c.add(
                (*path, "pipelines"),
                f"smart process {spa.code!r} has stages but switches.stages is off",
            )
        if sum(p.default for p in spa.pipelines) > 1:
            c.add((*path, "pipelines"), f"only one pipeline of {spa.code!r} can be the default")
        names: dict[str, str] = {}
        for j, pipeline in enumerate(spa.pipelines):
            _register(c, pipelines, pipeline, spa.code, (*path, "pipelines", j))
            for name in (pipeline.name, *pipeline.previous_names):
                if name in names and names[name] != pipeline.code:
                    c.add(
                        (*path, "pipelines", j, "name"),
                        f"pipeline name {name!r} is also used by {names[name]!r}: the "
                        f"pipelines of smart process {spa.code!r} are matched by name",
                    )
                names[name] = pipeline.code
        for side in ("parents", "children"):
            for j, target in enumerate(getattr(spa.relations, side)):
                if target not in LINK_TARGETS and target not in spa_codes:
                    c.add((*path, "relations", side, j), f"relation to unknown entity {target!r}")
        _fields(c, spa.fields, (*path, "fields"), f"smart process {spa.code!r}", spa_codes)


def _link_end(
    c: _Collector, link: Link, path: PathKey, code: str, stage: str, pipelines: _Pipelines
) -> Pipeline | None:
    """Checks that one end of a link is a deal pipeline with the link's stage; returns the
    pipeline when it exists."""
    found = pipelines.get(code)
    if found is None:
        c.add(path, f"link {link.name!r}: no pipeline {code!r}")
        return None
    if found[1] != "deal":
        c.add(
            path, f"link {link.name!r}: {code!r} is not a deal pipeline (links join deal pipelines)"
        )
    elif stage not in {s.code for s in found[0].stages}:
        c.add(
            (*path[:3], "stage"),  # links.<i>.parent|child.stage
            f"link {link.name!r}: pipeline {code!r} has no stage {stage!r}",
        )
    return found[0]


def _link_ends(
    c: _Collector, link: Link, path: PathKey, pipelines: _Pipelines
) -> dict[str, list[Pipeline]]:
    """Checks that both ends of a link are a stage of a deal pipeline (each parent pipeline
    of a link with several); returns the pipelines of each end ("parent", "child") that
    exist."""
    ends: dict[str, list[Pipeline]] = {"parent": [], "child": []}
    parent = link.parent
    if parent.pipelines is None:
        where: list[PathKey] = [(*path, "parent", "pipeline")]
    else:
        where = [(*path, "parent", "pipelines", j) for j in range(len(parent.pipelines))]
        for j in repeats(parent.pipelines):
            c.add(where[j], f"link {link.name!r}: parent pipeline {parent.pipelines[j]!r} twice")
    for code, at in zip(parent.codes, where, strict=True):
        found = _link_end(c, link, at, code, parent.stage, pipelines)
        if found is not None:
            ends["parent"].append(found)
    child = _link_end(
        c, link, (*path, "child", "pipeline"), link.child.pipeline, link.child.stage, pipelines
    )
    if child is not None:
        ends["child"].append(child)
    return ends


def _link_fields_distinct(c: _Collector, link: Link, path: PathKey) -> None:
    """The child, parent and mirror fields of a link must be different deal fields."""
    named = [(key, getattr(link, key)) for key in ("child_field", "parent_field", "mirror_field")]
    for j in repeats([code or f"-{key}" for key, code in named]):
        c.add(
            (*path, named[j][0]),
            f"link {link.name!r}: {named[j][0]} {named[j][1]!r} is "
            "also another of its fields; each link field needs its own deal field",
        )


def _link_moves(c: _Collector, link: Link, path: PathKey, ends: dict[str, list[Pipeline]]) -> None:
    """Each stage a move names must be a stage of the pipeline at that end (of every
    parent pipeline, for a link with several)."""
    for j, move in enumerate(link.moves):
        for end, stage in (("child", move.child_stage), ("parent", move.parent_stage)):
            for joined in ends[end]:
                if stage not in {s.code for s in joined.stages}:
                    c.add(
                        (*path, "moves", j, f"{end}_stage"),
                        f"link {link.name!r}: {end} pipeline {joined.code!r} has no stage "
                        f"{stage!r}",
                    )


def _link_quotes(
    c: _Collector, link: Link, path: PathKey, deal_fields: dict[str, CustomField]
) -> None:
    """The fields a move records on the parent must be deal fields that can hold a price
    and a moment."""
    for j, move in enumerate(link.moves):
        if move.record is None:
            continue
        for key, want in (("price", ("money", "double")), ("time", ("datetime", "date"))):
            code = getattr(move.record, key)
            if code is None:
                continue
            field = deal_fields.get(code)
            if field is None:
                c.add(
                    (*path, "moves", j, "record", key),
                    f"link {link.name!r}: no deal field {code!r}",
                )
            elif field.type not in want:
                c.add(
                    (*path, "moves", j, "record", key),
                    f"link {link.name!r}: {code!r} must be of type {' or '.join(want)}, "
                    f"not {field.type}",
                )


def _links_share_parent_fields(c: _Collector, bp: Blueprint) -> None:
    """Links from one parent pipeline (logistics and engineering from sales) each need
    their own parent and mirror fields: shared, one link's child would overwrite the
    other's."""
    seen: dict[tuple[str, str, str], str] = {}
    for i, link in enumerate(bp.links):
        for key in ("parent_field", "mirror_field"):
            code = getattr(link, key)
            if code is None:
                continue
            for pipeline in dict.fromkeys(link.parent.codes):
                other = seen.setdefault((pipeline, key, code), link.name)
                if other != link.name:
                    c.add(
                        ("links", i, key),
                        f"link {link.name!r}: {key} {code!r} is also the {key} of link "
                        f"{other!r} on pipeline {pipeline!r}; each link needs its own",
                    )


def _link_field_types(
    c: _Collector, link: Link, path: PathKey, deal_fields: dict[str, CustomField]
) -> None:
    """The link fields given must be deal fields of a type that can hold what they hold."""
    for key, want in (
        ("child_field", ("crm",)),
        ("parent_field", ("crm",)),
        ("mirror_field", ("string", "enumeration", "crm_status")),
    ):
        code: Any = getattr(link, key)
        if code is None:
            continue
        field = deal_fields.get(code)
        if field is None:
            c.add((*path, key), f"link {link.name!r}: no deal field {code!r}")
        elif field.type not in want:
            c.add(
                (*path, key),
                f"link {link.name!r}: {key} {code!r} must be of type "
                f"{' or '.join(want)}, not {field.type}",
            )
        elif field.type == "crm" and "deal" not in (field.links or []):
            c.add((*path, key), f"link {link.name!r}: {code!r} must link deals")


def _link_copy_fields(
    c: _Collector, link: Link, path: PathKey, deal_fields: dict[str, CustomField]
) -> None:
    """A link can copy only system deal fields and the blueprint's deal fields."""
    for j, name in enumerate(link.copy_fields):
        if name not in SYSTEM_DEAL_FIELDS and name not in deal_fields:
            c.add(
                (*path, "copy_fields", j), f"link {link.name!r}: cannot copy unknown field {name!r}"
            )


def _links(c: _Collector, bp: Blueprint, pipelines: _Pipelines) -> None:
    """Link names, then each link: its ends, its fields, its moves and what it copies."""
    deal_fields = {f.code: f for f in bp.deal.fields}
    for i in repeats([link.name for link in bp.links]):
        c.add(("links", i, "name"), f"link name {bp.links[i].name!r} is used twice")
    for i, link in enumerate(bp.links):
        path: PathKey = ("links", i)
        ends = _link_ends(c, link, path, pipelines)
        if link.child.pipeline in link.parent.codes:
            c.add((*path, "child", "pipeline"), f"link {link.name!r} joins a pipeline to itself")
        _link_fields_distinct(c, link, path)
        _link_moves(c, link, path, ends)
        _link_field_types(c, link, path, deal_fields)
        _link_copy_fields(c, link, path, deal_fields)
        _link_quotes(c, link, path, deal_fields)
    _links_share_parent_fields(c, bp)


def check_references(bp: Blueprint, doc: Document) -> list[BlueprintIssue]:
    c = _Collector(doc)
    spa_codes = {s.code for s in bp.smart_processes}
    pipelines: _Pipelines = {}
    _deal(c, bp, pipelines, spa_codes)
    _smart_processes(c, bp, pipelines, spa_codes)
    _links(c, bp, pipelines)
    check_directories(bp, c.add)
    return sorted(c.issues, key=lambda i: (i.mark.file, i.mark.line, i.mark.column))
