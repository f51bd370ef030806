"""Plan custom fields: of deals (crm.deal.userfield.*) and of smart processes
(userfieldconfig.*), including those of smart processes this plan creates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from b24kit.blueprint.changes import Change, Context, key_text
from b24kit.blueprint.model import CustomField
from b24kit.client.executor import Command, Ref
from b24kit.portal import commands as cmd
from b24kit.portal.ids import LINK_KEYS, dynamic_key, spa_uf_entity, spa_uf_prefix, uf_name
from b24kit.portal.snapshot import FieldSnap, SpaSnap


@dataclass
class FieldOwner:
    label: str  # "deal", "smart process contractors"
    spa: SpaSnap | None = None
    new_spa: str | None = None  # the name of the crm.type.add of a new smart process

    def field_name(self, code: str) -> Any:
        if self.new_spa is not None:
            return Ref(self.new_spa, ("type", "id"), fmt=spa_uf_prefix("{}") + code)
        if self.spa is not None:
            return spa_uf_prefix(self.spa.id) + code
        return uf_name(code)

    def entity(self) -> Any:
        if self.new_spa is not None:
            return Ref(self.new_spa, ("type", "id"), fmt=spa_uf_entity("{}"))
        assert self.spa is not None
        return spa_uf_entity(self.spa.id)


def same_setting(have: Any, want: Any) -> bool:
    """Settings compare as text, and an empty value is the same as none: a null sent in
    a batch command arrives as an empty string."""
    if have in (None, "") and want in (None, ""):
        return True
    if str(have) == str(want):
        return True
    # a dict read back in another key order (a date field's DEFAULT_VALUE), or a list read
    # back as the dict of indexes a batch makes of it (a boolean field's LABEL), is the same
    nested = (dict, list)
    return isinstance(have, nested) and isinstance(want, nested) and _sorted(have) == _sorted(want)


def _sorted(value: Any) -> str:
    """As text with sorted keys, a list inside as the dict of indexes a batch makes of it."""

    def plain(v: Any) -> Any:
        if isinstance(v, list):
            return {str(i): plain(x) for i, x in enumerate(v)}
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return json.dumps(plain(value), sort_keys=True, default=str)


def labels(f: CustomField) -> dict[str, str]:
    if isinstance(f.label, str):
        return {"ru": f.label, "en": f.label}
    return {str(k): v for k, v in f.label.items()}


def field_settings(ctx: Context, f: CustomField) -> dict[Any, Any]:
    """The field's settings; a crm field's links name every entity, Y or N. The key of a
    smart process this plan creates is a reference to its entity type id."""
    settings: dict[Any, Any] = dict(f.settings)
    if f.type != "crm":
        return settings
    for key in (*LINK_KEYS.values(), *(dynamic_key(s.entity_type_id) for s in ctx.snap.spas)):
        settings.setdefault(key, "N")
    for target in f.links or []:
        if target in LINK_KEYS:
            settings[LINK_KEYS[target]] = "Y"
        elif target in ctx.new_spas:
            settings[Ref(ctx.new_spas[target], ("type", "entityTypeId"), fmt=dynamic_key("{}"))] = (
                "Y"
            )
        else:
            spa = ctx.snap.spa_by_code(target)
            assert spa is not None, target  # the blueprint's references are checked
            settings[dynamic_key(spa.entity_type_id)] = "Y"
    return settings


def plan_fields(
    ctx: Context, owner: FieldOwner, bps: list[CustomField], portal: list[FieldSnap]
) -> None:
    group = f"{owner.label} fields"
    by_name = {f.name: f for f in portal}
    wanted = set()
    for f in bps:
        name = owner.field_name(f.code)
        wanted.add(name)
        settings = field_settings(ctx, f)
        have = by_name.get(name) if isinstance(name, str) else None
        if have is None:
            attrs: dict[str, Any] = {"type": f.type, "label": labels(f)}
            if f.multiple:
                attrs["multiple"] = True
            if f.mandatory:
                attrs["mandatory"] = True
            if f.values:
                attrs["values"] = [v.value for v in f.values]
            if f.links:
                attrs["links"] = f.links
            address = name if isinstance(name, str) else f.code
            change = ctx.add(Change("create", "field", group, address, attrs))
            change.commands = [_add(ctx, owner, f, name, settings)]
            continue
        _update(ctx, owner, f, have, settings, group)
    if ctx.options.prune and owner.new_spa is None:
        for have in portal:
            if have.name not in wanted:
                change = ctx.add(
                    Change(
                        "delete",
                        "field",
                        group,
                        have.name,
                        {"type": have.type},
                        note="its values on every item are lost",
                    )
                )
                change.commands = [
                    cmd.spa_field_delete(have.id, name=ctx.name("del_uf"))
                    if owner.spa
                    else cmd.deal_field_delete(have.id, name=ctx.name("del_uf"))
                ]


def _add(
    ctx: Context, owner: FieldOwner, f: CustomField, name: Any, settings: dict[Any, Any]
) -> Command:
    texts = labels(f)
    values = [
        {
            "VALUE": v.value,
            "XML_ID": v.xml_id or "",
            "SORT": v.sort or (i + 1) * 10,
            "DEF": "Y" if v.default else "N",
        }
        for i, v in enumerate(f.values or [])
    ]
    if owner.spa is None and owner.new_spa is None:
        fields: dict[str, Any] = {
            "FIELD_NAME": name,
            "USER_TYPE_ID": f.type,
            "LABEL": texts.get("ru") or next(iter(texts.values())),
            "EDIT_FORM_LABEL": texts,
            "LIST_COLUMN_LABEL": texts,
            "LIST_FILTER_LABEL": texts,
            "MULTIPLE": "Y" if f.multiple else "N",
            "MANDATORY": "Y" if f.mandatory else "N",
            "SETTINGS": settings,
        }
        if f.sort is not None:
            fields["SORT"] = f.sort
        if values:
            fields["LIST"] = values
        return cmd.deal_field_add(fields, name=ctx.name("add_uf"))
    field: dict[str, Any] = {
        "entityId": owner.entity(),
        "fieldName": name,
        "userTypeId": f.type,
        "multiple": "Y" if f.multiple else "N",
        "mandatory": "Y" if f.mandatory else "N",
        "settings": settings,
        "editFormLabel": texts,
    }
    if f.sort is not None:
        field["sort"] = f.sort
    if values:
        field["enum"] = [
            {"value": v["VALUE"], "xmlId": v["XML_ID"], "sort": v["SORT"], "def": v["DEF"]}
            for v in values
        ]
    return cmd.spa_field_add(field, name=ctx.name("add_uf"))


def _shown(settings: dict[Any, Any]) -> dict[str, Any]:
    return {key_text(k): v for k, v in settings.items()}


def _update(
    ctx: Context,
    owner: FieldOwner,
    f: CustomField,
    have: FieldSnap,
    settings: dict[Any, Any],
    group: str,
) -> None:
    if have.type != f.type or have.multiple != f.multiple:
        change = ctx.add(
            Change(
                "update",
                "field",
                group,
                have.name,
                {"type": [have.type, f.type], "multiple": [have.multiple, f.multiple]},
            )
        )
        change.refused = (
            "type and multiple cannot change on the portal; use a new code and prune the old field"
        )
        return
    attrs: dict[str, Any] = {}
    upper: dict[str, Any] = {}
    texts = labels(f)
    if any(have.labels.get(lang, "") != text for lang, text in texts.items()):
        attrs["label"] = [{k: have.labels.get(k, "") for k in texts}, texts]
        upper.update(EDIT_FORM_LABEL=texts, LIST_COLUMN_LABEL=texts, LIST_FILTER_LABEL=texts)
    if have.mandatory != f.mandatory:
        attrs["mandatory"] = [have.mandatory, f.mandatory]
        upper["MANDATORY"] = "Y" if f.mandatory else "N"
    if f.sort is not None and have.sort != f.sort:
        attrs["sort"] = [have.sort, f.sort]
        upper["SORT"] = f.sort
    changed = {
        k: v
        for k, v in settings.items()
        if isinstance(k, Ref)
        or not same_setting(have.settings.get(k, "N" if v == "N" else None), v)
    }
    if changed:
        attrs["settings"] = [{k: have.settings.get(k) for k in _shown(changed)}, _shown(changed)]
        upper["SETTINGS"] = changed
    values = value_changes(ctx, f, have)
    if values is not None:
        attrs["values"] = values[0]
        upper["LIST"] = values[1]
    if not upper:
        return
    change = ctx.add(Change("update", "field", group, have.name, attrs))
    if values is not None and values[2]:
        change.refused = (
            f"--prune would delete the value(s) {', '.join(f'«{v}»' for v in values[2])}, "
            "emptying them on every item that holds one: remove them on the portal by "
            "hand, or name them in the blueprint again"
        )
        return
    if owner.spa is None:
        change.commands = [cmd.deal_field_update(have.id, upper, name=ctx.name("upd_uf"))]
        return
    keys = {
        "EDIT_FORM_LABEL": "editFormLabel",
        "MANDATORY": "mandatory",
        "SORT": "sort",
        "SETTINGS": "settings",
        "LIST": "enum",
    }
    # userfieldconfig-update.md takes editFormLabel only: list and filter labels of a
    # smart-process field are not changed by update, so they are not sent
    field = {keys[k]: v for k, v in upper.items() if k in keys}
    if "enum" in field:
        # the portal applies enum only when the field names its type
        # (userfieldconfig-update.md): without it the change is ignored, yet succeeds
        field["userTypeId"] = "enumeration"
        field["enum"] = [
            {
                ("del" if k == "DEL" else "xmlId" if k == "XML_ID" else k.lower()): v
                for k, v in item.items()
            }
            for item in field["enum"]
        ]
    change.commands = [cmd.spa_field_update(have.id, field, name=ctx.name("upd_uf"))]


def value_changes(
    ctx: Context, f: CustomField, have: FieldSnap
) -> tuple[list[str], list[Any], list[str]] | None:
    """The list values to send, the plan's lines for them, and the values --prune would
    drop (the caller refuses those). Every value on the portal is named by its id, changed
    or not, the ones the blueprint no longer names too: the current
    userfieldconfig-update.md reads as a partial update, but an earlier text and the main
    module's source replace the whole list with what is sent (docs/sandbox.md,
    "uf-enum-replaces"); naming them all keeps each under both readings."""
    if f.type != "enumeration" or not f.values:
        return None
    shown: list[str] = []
    items: list[dict[str, Any]] = []
    dropped: list[str] = []
    matched: set[int] = set()
    for i, v in enumerate(f.values):
        sort = v.sort or (i + 1) * 10
        found = next(
            (
                e
                for e in have.values
                if e.id not in matched
                and ((v.xml_id and e.xml_id == v.xml_id) or (not v.xml_id and e.value == v.value))
            ),
            None,
        )
        if found is None:
            shown.append(f"+ {v.value}")
            items.append(
                {
                    "VALUE": v.value,
                    "XML_ID": v.xml_id or "",
                    "SORT": sort,
                    "DEF": "Y" if v.default else "N",
                }
            )
            continue
        matched.add(found.id)
        if found.value != v.value or found.sort != sort or found.default != v.default:
            shown.append(f"~ {found.value} -> {v.value}")
        items.append(
            {
                "ID": found.id,
                "VALUE": v.value,
                "XML_ID": found.xml_id,
                "SORT": sort,
                "DEF": "Y" if v.default else "N",
            }
        )
    for e in have.values:
        if e.id in matched:
            continue
        # kept on the portal, --prune or not: named, so a replacing update keeps it too.
        # Deleting a value empties it on every item that holds it, and which items do is
        # not read here (a stage's deals are): --prune is refused for it (the caller).
        if ctx.options.prune:
            shown.append(f"- {e.value}")
            dropped.append(e.value)
        items.append(
            {
                "ID": e.id,
                "VALUE": e.value,
                "XML_ID": e.xml_id,
                "SORT": e.sort,
                "DEF": "Y" if e.default else "N",
            }
        )
    return (shown, items, dropped) if shown else None
