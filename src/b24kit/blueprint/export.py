"""Write a portal's structure as a blueprint: stable order, readable, and such that
``plan`` of the export against the same portal shows no changes."""

from __future__ import annotations

import re
from typing import Any

import yaml

from b24kit.blueprint.plan import SWITCH_FLAGS
from b24kit.portal.ids import LINK_KEYS, ORIGINATOR, WORD_OF, dynamic_key, spa_uf_prefix
from b24kit.portal.snapshot import FieldSnap, PipelineSnap, Snapshot

TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "h",
            "ts",
            "ch",
            "sh",
            "sch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)


def slug(text: str, taken: set[str]) -> str:
    base = "".join(TRANSLIT.get(ch, ch) for ch in text.lower())
    base = re.sub(r"[^a-z0-9]+", "_", base).strip("_") or "pipeline"
    if not base[0].isalpha():
        base = "p_" + base
    code, n = base[:40], 2
    while code in taken:
        code = f"{base[:37]}_{n}"
        n += 1
    taken.add(code)
    return code


def _pipeline(p: PipelineSnap, taken: set[str]) -> dict[str, Any]:
    code = (
        p.origin_id
        if p.originator_id == ORIGINATOR and p.origin_id and p.origin_id not in taken
        else slug(p.name, taken)
    )
    taken.add(code)
    out: dict[str, Any] = {"code": code, "name": p.name, "sort": p.sort}
    if p.is_default:
        out["default"] = True
    out["stages"] = [
        {
            "code": s.code,
            "name": s.name,
            "semantics": s.semantics,
            "color": (s.color or "").upper() or None,
            "sort": s.sort,
        }
        for s in p.stages
    ]
    for stage in out["stages"]:
        if stage["color"] is None:
            del stage["color"]
    return out


def _field(f: FieldSnap, prefix: str, spa_codes: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.name[len(prefix) :], "type": f.type}
    labels = {k: v for k, v in f.labels.items() if v}
    out["label"] = labels or f.name
    if f.multiple:
        out["multiple"] = True
    if f.mandatory:
        out["mandatory"] = True
    out["sort"] = f.sort
    settings = {k: _listed(v) for k, v in f.settings.items() if v not in (None, "")}
    if f.type == "crm":
        links = [name for name, key in LINK_KEYS.items() if str(settings.get(key)) == "Y"]
        links += [
            code
            for etid, code in sorted(spa_codes.items())
            if str(settings.get(dynamic_key(etid))) == "Y"
        ]
        for key in list(settings):
            if (
                key in LINK_KEYS.values()
                or key.startswith("DYNAMIC_")
                or key in ("ORDER", "QUOTE", "SMART_INVOICE")
            ):
                del settings[key]
        out["links"] = links
    if settings:
        out["settings"] = settings
    if f.type == "enumeration":
        out["values"] = [
            {
                "value": v.value,
                "xml_id": v.xml_id,
                "sort": v.sort,
                **({"default": True} if v.default else {}),
            }
            for v in f.values
        ]
    return out


def export_blueprint(snap: Snapshot, name: str = "export") -> dict[str, Any]:
    taken: set[str] = set()
    spa_codes: dict[int, str] = {}
    for spa in snap.spas:
        spa_codes[spa.entity_type_id] = spa.code or slug(spa.title, taken)
    names = {**{int(k): v for k, v in WORD_OF.items()}, **spa_codes}
    doc: dict[str, Any] = {"version": 1, "name": name}
    doc["deal"] = {
        "pipelines": [_pipeline(p, taken) for p in snap.deal_pipelines],
        "fields": [_field(f, "UF_CRM_", spa_codes) for f in snap.deal_fields],
    }
    spas = []
    for spa in sorted(snap.spas, key=lambda s: spa_codes[s.entity_type_id]):
        switches = {switch: spa.flags.get(flag) == "Y" for switch, flag in SWITCH_FLAGS.items()}
        client_parents = {3, 4} if switches["client"] else set()
        spas.append(
            {
                "code": spa_codes[spa.entity_type_id],
                "title": spa.title,
                "switches": switches,
                "relations": {
                    "parents": [
                        names.get(e, str(e)) for e in spa.parents if e not in client_parents
                    ],
                    "children": [names.get(e, str(e)) for e in spa.children],
                },
                "pipelines": [_pipeline(p, taken) for p in spa.pipelines],
                "fields": [_field(f, spa_uf_prefix(spa.id), spa_codes) for f in spa.fields],
            }
        )
    if spas:
        doc["smart_processes"] = spas
    return doc


def dump_yaml(doc: dict[str, Any]) -> str:
    header = "# Exported by b24kit: the portal's structure as a blueprint.\n"
    return header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)


def _listed(value: Any) -> Any:
    """A list the portal gives back as the dict of its indexes ({"0": a, "1": b}, a boolean
    field's LABEL after a batch) exported as the list it is."""
    if isinstance(value, dict) and value and list(value) == [str(i) for i in range(len(value))]:
        return list(value.values())
    return value
