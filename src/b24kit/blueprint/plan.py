"""Plan: the difference between a blueprint and a portal snapshot, as changes.

``diff(blueprint, snapshot, options)`` is pure. Each change carries the executor commands
that make it; a change that needs an id the portal has not given yet (the stages of a
pipeline about to be created, the fields of a new smart process) is *deferred*: apply
makes it in a later round, after reading the portal again. What plan shows is what apply
does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from b24kit.blueprint.model import Blueprint, CustomField, Pipeline, SmartProcess, Stage
from b24kit.client import Command, Ref
from b24kit.portal.snapshot import FieldSnap, PipelineSnap, Snapshot, SpaSnap

ORIGINATOR = "b24kit"
SEMANTIC_CODE = {"process": "", "success": "S", "failure": "F"}
ENTITY_TYPES = {"deal": 2, "contact": 3, "company": 4, "lead": 1}
LINK_KEYS = {"deal": "DEAL", "contact": "CONTACT", "company": "COMPANY", "lead": "LEAD"}
# Stages a new pipeline comes with: code -> default name (API notes §5.2)
DEAL_TEMPLATE = {"NEW": "New", "PREPARATION": "Document preparation",
                 "PREPAYMENT_INVOICE": "Prepayment invoice", "PREPAYMENT_INVOIC": "Prepayment invoice",
                 "EXECUTING": "In progress", "FINAL_INVOICE": "Final invoice",
                 "WON": "Deal successful", "LOSE": "Deal failed", "APOLOGY": "Analyze failure"}
SPA_TEMPLATE = {"NEW": "Start", "PREPARATION": "Preparation", "CLIENT": "Approval",
                "SUCCESS": "Success", "FAIL": "Failure"}
SWITCH_FLAGS = {
    "categories": "isCategoriesEnabled", "stages": "isStagesEnabled", "client": "isClientEnabled",
    "products": "isLinkWithProductsEnabled", "begin_close_dates": "isBeginCloseDatesEnabled",
    "observers": "isObserversEnabled", "source": "isSourceEnabled",
    "use_in_userfield": "isUseInUserfieldEnabled", "automation": "isAutomationEnabled",
}


@dataclass
class PlanOptions:
    prune: bool = False
    move_stage: dict[str, str] = field(default_factory=dict)  # "pipeline:OLD" -> "NEW"
    # pipelines made by this apply (entity type, id), and smart processes (entity type
    # ids) whose pipelines it made: their template stages are removed by code, whatever
    # language the portal names them in
    fresh_pipelines: set[tuple[int, int]] = field(default_factory=set)
    fresh_spas: set[int] = field(default_factory=set)


@dataclass
class Change:
    action: str  # create | update | rename | delete
    kind: str  # pipeline | stage | field | smart_process
    group: str
    address: str
    attrs: dict[str, Any] = field(default_factory=dict)  # create: values; update: [old, new]
    commands: list[Command] = field(default_factory=list)
    deferred: str | None = None  # why it waits for a later round
    refused: str | None = None  # why it cannot be applied
    note: str | None = None
    usage: tuple[str, str, dict[str, Any]] | None = None  # (key, list method, params)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "kind": self.kind, "group": self.group,
            "address": self.address, "attrs": self.attrs, "deferred": self.deferred,
            "refused": self.refused, "note": self.note,
            "commands": [{"name": c.name, "method": c.method} for c in self.commands],
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

    def summary(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "rename": 0, "delete": 0, "refused": 0}
        for c in self.changes:
            out["refused" if c.refused else c.action] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "summary": self.summary(),
                "reads": self.requests, "changes": [c.as_dict() for c in self.changes]}


def usage_query(etid: int, flt: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A list call whose ``total`` says how many items would be affected."""
    # an empty filter is left out: in a batch it would travel as an empty PHP array,
    # which a strict portal reads as a filter on field "0"
    if etid == 2:
        params: dict[str, Any] = {"select": ["ID"], "start": 0}
        if flt:
            params["filter"] = flt
        return "crm.deal.list", params
    camel = {"STAGE_ID": "stageId", "CATEGORY_ID": "categoryId"}
    params = {"entityTypeId": etid, "select": ["id"], "start": 0}
    if flt:
        params["filter"] = {camel[k]: v for k, v in flt.items()}
    return "crm.item.list", params


def same_setting(have: Any, want: Any) -> bool:
    """Settings compare as text, and an empty value is the same as none: a null sent in
    a batch command arrives as an empty string."""
    if have in (None, "") and want in (None, ""):
        return True
    return str(have) == str(want)


def stage_sort(index: int, stage: Stage) -> int:
    return stage.sort if stage.sort is not None else (index + 1) * 10


class _Differ:
    def __init__(self, bp: Blueprint, snap: Snapshot, options: PlanOptions,
                 usage: dict[str, int]) -> None:
        self.bp = bp
        self.snap = snap
        self.options = options
        self.usage = usage  # STATUS_ID or "pipeline:<etid>:<id>" -> items in it
        # crm.type.add may not keep code (it is not in crm-type-add.md's table; docs/sandbox.md
        # "type-add-drops-code"), so a create is followed by crm.type.update of the code. A
        # smart process with no code and a blueprint's title may be ours from a portal that
        # kept neither, or the client's own: it is never taken over silently; the create is
        # refused until someone gives it its code or renames it (spa_twins).
        self.spa_twins: dict[str, list[SpaSnap]] = {}
        for sp in bp.smart_processes:
            if snap.spa_by_code(sp.code) is None:
                twins = [s for s in snap.spas if not s.code and s.title == sp.title]
                if twins:
                    self.spa_twins[sp.code] = twins
        self.changes: list[Change] = []
        self.seq = 0

    def name(self, hint: str) -> str:
        self.seq += 1
        clean = "".join(ch if ch.isalnum() else "_" for ch in hint)[:30]
        return f"{clean}_{self.seq}"

    # -------------------------------------------------------------- pipelines
    def match_pipeline(self, bp: Pipeline, portal: list[PipelineSnap], used: set[int],
                       etid: int) -> PipelineSnap | None:
        candidates = [p for p in portal if p.id not in used]
        if bp.default:
            found = next((p for p in candidates if p.is_default), None)
            if found:
                return found
        if etid == 2:
            found = next((p for p in candidates if p.originator_id == ORIGINATOR
                          and p.origin_id == bp.code), None)
            if found:
                return found
        for name in (bp.name, *bp.previous_names):
            found = next((p for p in candidates if p.name == name), None)
            if found:
                return found
        return None

    def pipelines(self, etid: int | None, owner: str, bps: list[Pipeline],
                  portal: list[PipelineSnap], spa: SpaSnap | None) -> None:
        used: set[int] = set()
        for bp in bps:
            group = f"{owner} pipeline {bp.code} «{bp.name}»"
            found = self.match_pipeline(bp, portal, used, etid or 0) if etid else None
            if found is None:
                attrs = {"name": bp.name, "sort": bp.sort if bp.sort is not None else 500}
                change = Change("create", "pipeline", group, bp.code, attrs)
                if etid is None and (bp.default or bp is bps[0]):
                    # a new smart process comes with its default pipeline: it is renamed
                    change = Change("rename", "pipeline", group, bp.code,
                                    {"name": ["the smart process's first pipeline", bp.name]},
                                    deferred="after the smart process is created")
                elif etid is None:
                    change.deferred = "after the smart process is created"
                else:
                    fields: dict[str, Any] = {"name": bp.name, "sort": attrs["sort"]}
                    if etid == 2:
                        fields.update(originatorId=ORIGINATOR, originId=bp.code)
                    elif bp.default:
                        fields["isDefault"] = "Y"
                    change.commands = [Command("crm.category.add", {
                        "entityTypeId": etid, "fields": fields}, name=self.name(f"pl_{bp.code}"))]
                self.changes.append(change)
                # the stages every new pipeline comes with: those of the blueprint's codes
                # are updated to match it, the others removed; the plan shows and counts
                # what apply will do with them
                template = DEAL_TEMPLATE if etid == 2 else SPA_TEMPLATE
                for index, stage in enumerate(bp.stages):
                    attrs = self.stage_attrs(index, stage)
                    if stage.code in template:
                        self.changes.append(Change(
                            "update", "stage", group, f"{bp.code}.{stage.code}",
                            {"name": [template[stage.code], stage.name],
                             "sort": ["template", attrs["sort"]]},
                            deferred="after the pipeline is created",
                            note="a stage every new pipeline comes with"))
                        continue
                    self.changes.append(Change(
                        "create", "stage", group, f"{bp.code}.{stage.code}", attrs,
                        deferred="after the pipeline is created"))
                wanted = {s.code for s in bp.stages}
                for code, name in template.items():
                    if code in wanted or code == "PREPAYMENT_INVOIC":
                        continue
                    self.changes.append(Change(
                        "delete", "stage", group, f"{bp.code}.{code}", {"name": name},
                        deferred="after the pipeline is created",
                        note="a stage every new pipeline comes with"))
                continue
            used.add(found.id)
            self.pipeline_update(bp, found, group, etid or 0)
            fresh = ((etid or 0, found.id) in self.options.fresh_pipelines
                     or (spa is not None and spa.entity_type_id in self.options.fresh_spas))
            self.stages(bp, found, group, etid or 0, owned=(
                etid == 2 and found.originator_id == ORIGINATOR) or spa is not None,
                fresh=fresh)
        if self.options.prune and etid is not None:
            for p in portal:
                if p.id in used or p.is_default:
                    continue
                group = f"{owner} pipeline «{p.name}» (not in the blueprint)"
                change = Change("delete", "pipeline", group, f"#{p.id}", {"name": p.name})
                change.usage = (f"pipeline:{etid}:{p.id}",
                                *usage_query(etid, {"CATEGORY_ID": p.id}))
                items = self.usage.get(f"pipeline:{etid}:{p.id}", 0)
                if items:
                    change.refused = (f"holds {items} item(s); move them to another pipeline "
                                      "first")
                else:
                    change.commands = [Command("crm.category.delete", {
                        "entityTypeId": etid, "id": p.id}, name=self.name("del_pl"))]
                self.changes.append(change)

    def pipeline_update(self, bp: Pipeline, found: PipelineSnap, group: str, etid: int) -> None:
        fields: dict[str, Any] = {}
        attrs: dict[str, Any] = {}
        if found.name != bp.name:
            attrs["name"] = [found.name, bp.name]
            fields["name"] = bp.name
        if bp.sort is not None and found.sort != bp.sort:
            attrs["sort"] = [found.sort, bp.sort]
            fields["sort"] = bp.sort
        if etid == 2 and not found.is_default and (
                found.originator_id, found.origin_id) != (ORIGINATOR, bp.code):
            fields.update(originatorId=ORIGINATOR, originId=bp.code)  # adopt it, silently
        if not fields:
            return
        action = "rename" if "name" in attrs else "update"
        change = Change(action, "pipeline", group, bp.code, attrs)
        change.commands = [Command("crm.category.update", {
            "entityTypeId": etid, "id": found.id, "fields": fields}, name=self.name("upd_pl"))]
        if not attrs:
            change.note = "tagged as managed by b24kit"
        self.changes.append(change)

    @staticmethod
    def stage_attrs(index: int, stage: Stage) -> dict[str, Any]:
        attrs: dict[str, Any] = {"name": stage.name, "semantics": stage.semantics,
                                 "sort": stage_sort(index, stage)}
        if stage.color:
            attrs["color"] = stage.color
        return attrs

    def stages(self, bp: Pipeline, found: PipelineSnap, group: str, etid: int,
               owned: bool, fresh: bool = False) -> None:
        template = DEAL_TEMPLATE if etid == 2 else SPA_TEMPLATE

        def on_portal(code: str) -> str:
            """The code as the portal keeps it: deal stage ids are cut to 21 characters."""
            if etid != 2:
                return code
            return (found.prefix + code)[:21][len(found.prefix):]

        wanted = {on_portal(s.code): (i, s) for i, s in enumerate(bp.stages)}
        by_code = {s.code: s for s in found.stages}
        chain: list[str] = []  # this pipeline's commands run in order

        def add(change: Change, command: Command) -> None:
            command.after = tuple(chain[-1:])
            chain.append(command.name)
            change.commands.append(command)
            self.changes.append(change)

        # 1. stages to remove: template leftovers (ours, empty), or everything with --prune
        for old in found.stages:
            if old.code in wanted:
                continue
            items = self.usage.get(old.status_id, 0)
            # a template stage of a pipeline b24kit owns: known by code and name, or by code
            # alone when this apply made the pipeline (names are localised)
            leftover = not items and old.code in template and (
                fresh or (owned and template[old.code] == old.name))
            if not leftover and not self.options.prune:
                continue
            change = Change("delete", "stage", group, f"{bp.code}.{old.code}",
                            {"name": old.name})
            change.usage = (old.status_id, *usage_query(etid, {"STAGE_ID": old.status_id}))
            if leftover:
                change.note = "a stage every new pipeline comes with"
            target = self.options.move_stage.get(f"{bp.code}:{old.code}")
            if items and not target:
                change.refused = (f"holds {items} item(s); move them with "
                                  f"--move-stage {bp.code}:{old.code}=OTHER_STAGE")
                self.changes.append(change)
                continue
            if items and target:
                if target not in wanted:
                    change.refused = f"--move-stage target {target!r} is not a stage of {bp.code}"
                    self.changes.append(change)
                    continue
                change.note = f"moves its {items} item(s) to {target} first"
                change.attrs["move_to"] = target
                move = Command("b24kit.move_stage", {
                    "entityTypeId": etid, "from": old.status_id,
                    "to": found.prefix + target}, name=self.name("move"))
                move.after = tuple(chain[-1:])
                chain.append(move.name)
                change.commands.append(move)
            params: dict[str, Any] = {"id": old.row_id}
            if old.system:
                params["params"] = {"FORCED": "Y"}
            add(change, Command("crm.status.delete", params, name=self.name("del_st")))
        # 2. updates, success and failure stages first so new stages can sort before them
        updates = []
        for code, (index, stage) in wanted.items():
            have = by_code.get(code)
            if have is None:
                continue
            if have.semantics != stage.semantics:
                change = Change("update", "stage", group, f"{bp.code}.{code}",
                                {"semantics": [have.semantics, stage.semantics]})
                change.refused = ("a stage's semantics cannot change on the portal; give the "
                                  "new stage another code and prune the old one")
                self.changes.append(change)
                continue
            attrs: dict[str, Any] = {}
            fields: dict[str, Any] = {}
            sort = stage_sort(index, stage)
            if have.name != stage.name:
                attrs["name"] = [have.name, stage.name]
                fields["NAME"] = stage.name
            if have.sort != sort:
                attrs["sort"] = [have.sort, sort]
                fields["SORT"] = sort
            if stage.color and (have.color or "").upper() != stage.color.upper():
                attrs["color"] = [have.color, stage.color]
                fields["COLOR"] = stage.color
            if fields:
                updates.append((stage.semantics == "process", code, attrs, fields, have))
        for _, code, attrs, fields, have in sorted(updates, key=lambda u: u[0]):
            add(Change("update", "stage", group, f"{bp.code}.{code}", attrs),
                Command("crm.status.update", {"id": have.row_id, "fields": fields},
                        name=self.name("upd_st")))
        # 3. creates, in blueprint order
        for code, (index, stage) in wanted.items():
            if code in by_code:
                continue
            attrs = self.stage_attrs(index, stage)
            add(Change("create", "stage", group, f"{bp.code}.{code}", attrs),
                Command("crm.status.add", {"fields": {
                    "ENTITY_ID": found.stage_entity, "STATUS_ID": code, "NAME": stage.name,
                    "SORT": attrs["sort"], "COLOR": stage.color or "",
                    "SEMANTICS": SEMANTIC_CODE[stage.semantics]}}, name=self.name("add_st")))

    # ------------------------------------------------------------------ fields
    def field_settings(self, f: CustomField) -> tuple[dict[str, Any], str | None]:
        settings = dict(f.settings)
        if f.type == "crm":
            for key in (*LINK_KEYS.values(), *(
                    f"DYNAMIC_{s.entity_type_id}" for s in self.snap.spas)):
                settings.setdefault(key, "N")
            for target in f.links or []:
                if target in LINK_KEYS:
                    settings[LINK_KEYS[target]] = "Y"
                else:
                    spa = self.spa(target)
                    if spa is None:
                        return settings, f"after smart process {target!r} is created"
                    settings[f"DYNAMIC_{spa.entity_type_id}"] = "Y"
        return settings, None

    @staticmethod
    def labels(f: CustomField) -> dict[str, str]:
        if isinstance(f.label, str):
            return {"ru": f.label, "en": f.label}
        return {str(k): v for k, v in f.label.items()}

    def fields(self, owner: str, bps: list[CustomField], portal: list[FieldSnap],
               spa: SpaSnap | None, spa_pending: bool) -> None:
        group = f"{owner} fields"
        prefix = f"UF_CRM_{spa.id}_" if spa else "UF_CRM_"
        by_name = {f.name: f for f in portal}
        wanted = set()
        for f in bps:
            name = prefix + f.code
            wanted.add(name)
            settings, waits = self.field_settings(f)
            have = by_name.get(name)
            if have is None:
                attrs: dict[str, Any] = {"type": f.type, "label": self.labels(f)}
                if f.multiple:
                    attrs["multiple"] = True
                if f.mandatory:
                    attrs["mandatory"] = True
                if f.values:
                    attrs["values"] = [v.value for v in f.values]
                if f.links:
                    attrs["links"] = f.links
                change = Change("create", "field", group, f.code if spa_pending else name, attrs)
                if spa_pending:
                    change.deferred = "after the smart process is created"
                elif waits:
                    change.deferred = waits
                else:
                    change.commands = [self.field_add(f, name, settings, spa)]
                self.changes.append(change)
                continue
            self.field_update(f, have, settings, waits, group, spa)
        if self.options.prune and not spa_pending:
            for have in portal:
                if have.name not in wanted:
                    change = Change("delete", "field", group, have.name,
                                    {"type": have.type}, note="its values on every item are lost")
                    change.commands = [self.field_delete(have, spa)]
                    self.changes.append(change)

    def field_add(self, f: CustomField, name: str, settings: dict[str, Any],
                  spa: SpaSnap | None) -> Command:
        labels = self.labels(f)
        values = [{"VALUE": v.value, "XML_ID": v.xml_id or "", "SORT": v.sort or (i + 1) * 10,
                   "DEF": "Y" if v.default else "N"} for i, v in enumerate(f.values or [])]
        if spa is None:
            fields: dict[str, Any] = {
                "FIELD_NAME": name, "USER_TYPE_ID": f.type,
                "LABEL": labels.get("ru") or next(iter(labels.values())),
                "EDIT_FORM_LABEL": labels, "LIST_COLUMN_LABEL": labels,
                "LIST_FILTER_LABEL": labels, "MULTIPLE": "Y" if f.multiple else "N",
                "MANDATORY": "Y" if f.mandatory else "N", "SETTINGS": settings,
            }
            if f.sort is not None:
                fields["SORT"] = f.sort
            if values:
                fields["LIST"] = values
            return Command("crm.deal.userfield.add", {"fields": fields}, name=self.name("add_uf"))
        field: dict[str, Any] = {
            "entityId": f"CRM_{spa.id}", "fieldName": name, "userTypeId": f.type,
            "multiple": "Y" if f.multiple else "N", "mandatory": "Y" if f.mandatory else "N",
            "settings": settings, "editFormLabel": labels,
        }
        if f.sort is not None:
            field["sort"] = f.sort
        if values:
            field["enum"] = [{"value": v["VALUE"], "xmlId": v["XML_ID"], "sort": v["SORT"],
                              "def": v["DEF"]} for v in values]
        return Command("userfieldconfig.add", {"moduleId": "crm", "field": field},
                       name=self.name("add_uf"))

    def field_delete(self, have: FieldSnap, spa: SpaSnap | None) -> Command:
        if spa is None:
            return Command("crm.deal.userfield.delete", {"id": have.id}, name=self.name("del_uf"))
        return Command("userfieldconfig.delete", {"moduleId": "crm", "id": have.id},
                       name=self.name("del_uf"))

    def field_update(self, f: CustomField, have: FieldSnap, settings: dict[str, Any],
                     waits: str | None, group: str, spa: SpaSnap | None) -> None:
        if have.type != f.type or have.multiple != f.multiple:
            change = Change("update", "field", group, have.name, {
                "type": [have.type, f.type], "multiple": [have.multiple, f.multiple]})
            change.refused = ("type and multiple cannot change on the portal; use a new code "
                              "and prune the old field")
            self.changes.append(change)
            return
        attrs: dict[str, Any] = {}
        upper: dict[str, Any] = {}
        labels = self.labels(f)
        if any(have.labels.get(lang, "") != text for lang, text in labels.items()):
            attrs["label"] = [{k: have.labels.get(k, "") for k in labels}, labels]
            upper.update(EDIT_FORM_LABEL=labels, LIST_COLUMN_LABEL=labels,
                         LIST_FILTER_LABEL=labels)
        if have.mandatory != f.mandatory:
            attrs["mandatory"] = [have.mandatory, f.mandatory]
            upper["MANDATORY"] = "Y" if f.mandatory else "N"
        if f.sort is not None and have.sort != f.sort:
            attrs["sort"] = [have.sort, f.sort]
            upper["SORT"] = f.sort
        if waits is None:
            changed = {k: v for k, v in settings.items() if not same_setting(
                have.settings.get(k, "N" if v == "N" else None), v)}
            if changed:
                attrs["settings"] = [{k: have.settings.get(k) for k in changed}, changed]
                upper["SETTINGS"] = changed
        values = self.value_changes(f, have)
        if values is not None:
            attrs["values"] = values[0]
            upper["LIST"] = values[1]
        if not upper:
            return
        change = Change("update", "field", group, have.name, attrs)
        if spa is None:
            change.commands = [Command("crm.deal.userfield.update", {"id": have.id,
                                                                      "fields": upper},
                                       name=self.name("upd_uf"))]
        else:
            keys = {"EDIT_FORM_LABEL": "editFormLabel", "LIST_COLUMN_LABEL": "listColumnLabel",
                    "LIST_FILTER_LABEL": "listFilterLabel", "MANDATORY": "mandatory",
                    "SORT": "sort", "SETTINGS": "settings", "LIST": "enum"}
            # userfieldconfig-update.md takes editFormLabel only: list and filter labels of a
            # smart-process field are not changed by update, so they are not sent
            field = {keys[k]: v for k, v in upper.items()
                     if k not in ("LIST_COLUMN_LABEL", "LIST_FILTER_LABEL")}
            if "enum" in field:
                # the portal applies enum only when the field names its type
                # (userfieldconfig-update.md): without it the change is ignored, yet succeeds
                field["userTypeId"] = "enumeration"
                field["enum"] = [{("del" if k == "DEL" else "xmlId" if k == "XML_ID" else
                                   k.lower()): v for k, v in item.items()} for item in field["enum"]]
            change.commands = [Command("userfieldconfig.update", {
                "moduleId": "crm", "id": have.id, "field": field}, name=self.name("upd_uf"))]
        self.changes.append(change)

    def value_changes(self, f: CustomField, have: FieldSnap) -> tuple[list[str], list[Any]] | None:
        """The list values to send. Every value the field keeps is named by its id, changed
        or not: the current userfieldconfig-update.md reads as a partial update, but an
        earlier text and the main module's source replace the whole list with what is sent
        (docs/sandbox.md, "uf-enum-replaces"); naming them all is right under both. A pruned
        value is sent with DEL (partial reading); under the other reading it is kept, which
        the next plan shows again, so nothing is lost either way."""
        if f.type != "enumeration" or not f.values:
            return None
        shown: list[str] = []
        items: list[dict[str, Any]] = []
        matched: set[int] = set()
        for i, v in enumerate(f.values):
            sort = v.sort or (i + 1) * 10
            found = next((e for e in have.values if e.id not in matched and (
                (v.xml_id and e.xml_id == v.xml_id) or (not v.xml_id and e.value == v.value))),
                None)
            if found is None:
                shown.append(f"+ {v.value}")
                items.append({"VALUE": v.value, "XML_ID": v.xml_id or "", "SORT": sort,
                              "DEF": "Y" if v.default else "N"})
                continue
            matched.add(found.id)
            if found.value != v.value or found.sort != sort or found.default != v.default:
                shown.append(f"~ {found.value} -> {v.value}")
            items.append({"ID": found.id, "VALUE": v.value, "XML_ID": found.xml_id,
                          "SORT": sort, "DEF": "Y" if v.default else "N"})
        for e in have.values:
            if e.id in matched:
                continue
            if self.options.prune:
                shown.append(f"- {e.value}")
                items.append({"ID": e.id, "DEL": "Y"})
            else:  # kept on the portal: named, so a replacing update keeps it too
                items.append({"ID": e.id, "VALUE": e.value, "XML_ID": e.xml_id, "SORT": e.sort,
                              "DEF": "Y" if e.default else "N"})
        return (shown, items) if shown else None

    # ---------------------------------------------------------- smart processes
    def spa(self, code: str) -> SpaSnap | None:
        return self.snap.spa_by_code(code)

    def relation_etids(self, codes: list[str]) -> tuple[list[int], str | None]:
        out = []
        for code in codes:
            if code in ENTITY_TYPES:
                out.append(ENTITY_TYPES[code])
            else:
                spa = self.spa(code)
                if spa is None:
                    return [], f"after smart process {code!r} is created"
                out.append(spa.entity_type_id)
        return sorted(out), None

    def spa_fields(self, sp: SmartProcess) -> dict[str, Any]:
        fields: dict[str, Any] = {"title": sp.title, "code": sp.code}
        for switch, flag in SWITCH_FLAGS.items():
            fields[flag] = "Y" if getattr(sp.switches, switch) else "N"
        return fields

    def smart_processes(self) -> None:
        wanted = set()
        for sp in self.bp.smart_processes:
            wanted.add(sp.code)
            group = f"smart process {sp.code} «{sp.title}»"
            have = self.spa(sp.code)
            parents, wait_p = self.relation_etids(sp.relations.parents)
            children, wait_c = self.relation_etids(sp.relations.children)
            relations = {"parent": [{"entityTypeId": e, "isChildrenListEnabled": "true"}
                                    for e in parents],
                         "child": [{"entityTypeId": e, "isChildrenListEnabled": "true"}
                                   for e in children]}
            if have is None:
                fields = self.spa_fields(sp)
                if not (wait_p or wait_c):
                    fields["relations"] = relations
                change = Change("create", "smart_process", group, sp.code,
                                {"title": sp.title, "switches": sp.switches.model_dump(),
                                 "parents": sp.relations.parents,
                                 "children": sp.relations.children})
                add = self.name(f"spa_{sp.code}")
                twins = self.spa_twins.get(sp.code)
                if twins:
                    ids = ", ".join(str(t.id) for t in twins)
                    change.refused = (
                        f"the portal has a smart process «{sp.title}» without a code (id {ids}):"
                        f" if it is this one, give it the code: b24kit call crm.type.update "
                        f"id={twins[0].id} fields.code={sp.code}; if not, rename one of them")
                else:
                    change.commands = [
                        Command("crm.type.add", {"fields": fields}, name=add),
                        # crm.type.add may not keep code (crm-type-add.md's table lacks it):
                        # set it again, so the smart process is found by code next time
                        Command("crm.type.update", {"id": Ref(add, ("type", "id")),
                                                    "fields": {"code": sp.code}},
                                name=self.name(f"spa_code_{sp.code}")),
                    ]
                self.changes.append(change)
                self.pipelines(None, f"smart process {sp.code}", sp.pipelines, [], None)
                self.fields(f"smart process {sp.code}", sp.fields, [], None, spa_pending=True)
                continue
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
            want_parents = set(parents) | ({3, 4} if sp.switches.client else set())
            if not (wait_p or wait_c) and (set(have.parents) != want_parents
                                           or set(have.children) != set(children)):
                attrs["relations"] = [{"parents": have.parents, "children": have.children},
                                      {"parents": parents, "children": children}]
                update["relations"] = relations
            if update:
                change = Change("update", "smart_process", group, sp.code, attrs)
                change.commands = [Command("crm.type.update", {"id": have.id, "fields": update},
                                           name=self.name("upd_spa"))]
                self.changes.append(change)
            self.pipelines(have.entity_type_id, f"smart process {sp.code}", sp.pipelines,
                           have.pipelines, have)
            self.fields(f"smart process {sp.code}", sp.fields, have.fields, have, False)
        if self.options.prune:
            for have in self.snap.spas:
                if have.code in wanted:
                    continue
                change = Change("delete", "smart_process", f"smart process «{have.title}» "
                                "(not in the blueprint)", have.code or f"#{have.id}",
                                {"title": have.title})
                change.usage = (f"spa:{have.entity_type_id}",
                                *usage_query(have.entity_type_id, {}))
                items = self.usage.get(f"spa:{have.entity_type_id}", 0)
                if items:
                    change.refused = f"holds {items} item(s)"
                else:
                    change.commands = [Command("crm.type.delete", {"id": have.id},
                                               name=self.name("del_spa"))]
                self.changes.append(change)

    def run(self) -> list[Change]:
        self.smart_processes()
        self.pipelines(2, "deal", self.bp.deal.pipelines, self.snap.deal_pipelines, None)
        self.fields("deal", self.bp.deal.fields, self.snap.deal_fields, None, False)
        return self.changes


def diff(bp: Blueprint, snap: Snapshot, options: PlanOptions | None = None,
         usage: dict[str, int] | None = None) -> Plan:
    changes = _Differ(bp, snap, options or PlanOptions(), usage or {}).run()
    return Plan(changes, snap.fingerprint(), snap.requests)
