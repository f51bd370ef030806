"""Custom fields: crm.{deal,contact,company}.userfield.* and userfieldconfig.* (API notes §7, §8.6)."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

from b24kit.encoding import as_list
from b24kit.sandbox import errors
from b24kit.sandbox.db import dumps, loads
from b24kit.sandbox.fields import COMPANY, CONTACT, DEAL, UF_TYPE_IDS, UF_TYPES
from b24kit.sandbox.registry import CallContext, Paged, arg, exact, method
from b24kit.sandbox.values import floatval, intval, yes_no

LANGS = (
    "ar",
    "br",
    "de",
    "en",
    "fr",
    "hi",
    "id",
    "in",
    "it",
    "ja",
    "kz",
    "la",
    "ms",
    "pl",
    "ru",
    "sc",
    "tc",
    "th",
    "tr",
    "ua",
    "vn",
)
LABELS = (
    "EDIT_FORM_LABEL",
    "LIST_COLUMN_LABEL",
    "LIST_FILTER_LABEL",
    "ERROR_MESSAGE",
    "HELP_MESSAGE",
)
FLAGS = {
    "MULTIPLE": "N",
    "MANDATORY": "N",
    "SHOW_FILTER": "N",
    "SHOW_IN_LIST": "Y",
    "EDIT_IN_LIST": "Y",
    "IS_SEARCHABLE": "N",
}
SETTINGS_DEFAULTS: dict[str, dict[str, Any]] = {
    "string": {
        "SIZE": 20,
        "ROWS": 1,
        "REGEXP": "",
        "MIN_LENGTH": 0,
        "MAX_LENGTH": 0,
        "DEFAULT_VALUE": "",
    },
    "integer": {"SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "double": {
        "PRECISION": 2,
        "SIZE": 20,
        "MIN_VALUE": 0.0,
        "MAX_VALUE": 0.0,
        "DEFAULT_VALUE": None,
    },
    "boolean": {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX", "LABEL": ["", ""], "LABEL_CHECKBOX": ""},
    "enumeration": {
        "DISPLAY": "LIST",
        "LIST_HEIGHT": 1,
        "CAPTION_NO_VALUE": "",
        "SHOW_NO_VALUE": "Y",
    },
    "date": {"DEFAULT_VALUE": {"VALUE": "", "TYPE": "NONE"}},
    "datetime": {
        "DEFAULT_VALUE": {"VALUE": "", "TYPE": "NONE"},
        "USE_SECOND": "Y",
        "USE_TIMEZONE": "N",
    },
    "crm": {"LEAD": "N", "CONTACT": "N", "COMPANY": "N", "DEAL": "N"},
    "money": {"DEFAULT_VALUE": ""},
    "url": {
        "POPUP": "Y",
        "SIZE": 20,
        "MIN_LENGTH": 0,
        "MAX_LENGTH": 0,
        "DEFAULT_VALUE": "",
        "ROWS": 1,
    },
}
OLD_ENTITY = {
    "deal": ("CRM_DEAL", DEAL),
    "contact": ("CRM_CONTACT", CONTACT),
    "company": ("CRM_COMPANY", COMPANY),
}
NAME_OK = re.compile(r"^[A-Z0-9_]+$")


def _label_map(value: Any, fallback: str, on_update: bool) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {lang: str(value.get(lang, "" if on_update else fallback) or "") for lang in LANGS}
    text = fallback if value is None else str(value)
    return {lang: text for lang in LANGS}


def _settings(utype: str, given: Any, current: dict[str, Any] | None) -> dict[str, Any]:
    defaults = SETTINGS_DEFAULTS.get(utype, {})
    base = dict(current) if current is not None else dict(defaults)
    if isinstance(given, Mapping):
        for key, value in given.items():
            # numbers arrive as text through form encoding; the type casts them, as PHP does
            default = defaults.get(str(key))
            if isinstance(default, bool) or value is None:
                pass
            elif isinstance(default, int):
                value = intval(value)
            elif isinstance(default, float):
                value = floatval(value)
            base[str(key)] = value
    if (
        utype == "crm"
        and current is None
        and not any(str(base.get(k, "N")).upper() == "Y" for k in base)
    ):
        base["LEAD"] = "Y"  # a crm field with no target links leads (API notes §7.5)
    return base


def _entity_etid(ctx: CallContext, entity_id: str) -> int | None:
    for name, etid in (("CRM_DEAL", DEAL), ("CRM_CONTACT", CONTACT), ("CRM_COMPANY", COMPANY)):
        if entity_id == name:
            return etid
    match = re.fullmatch(r"CRM_(\d+)", entity_id)
    if match:
        spa = ctx.portal.type_by_id(int(match.group(1)))
        return int(spa["entityTypeId"]) if spa else None
    return None


def _write_list(ctx: CallContext, field_id: int, items: Any, multiple: bool) -> None:
    existing = {
        r["id"]: r
        for r in ctx.portal.db.all("SELECT * FROM enum_items WHERE field_id = ?", (field_id,))
    }
    used_xml = {r["xml_id"] for r in existing.values()}
    for entry in as_list(items):
        if not isinstance(entry, Mapping):
            continue
        entry = {str(k).upper(): v for k, v in entry.items()}
        item_id = intval(entry.get("ID"))
        if item_id and item_id in existing:
            if yes_no(entry.get("DEL")) == "Y":
                ctx.portal.db.execute("DELETE FROM enum_items WHERE id = ?", (item_id,))
                continue
            row = existing[item_id]
            ctx.portal.db.execute(
                "UPDATE enum_items SET value = ?, sort = ?, def = ?, xml_id = ? WHERE id = ?",
                (
                    str(entry.get("VALUE", row["value"])),
                    intval(entry["SORT"]) if entry.get("SORT") not in (None, "") else row["sort"],
                    yes_no(entry.get("DEF"), row["def"]),
                    str(entry.get("XML_ID") or row["xml_id"]),
                    item_id,
                ),
            )
            continue
        value = str(entry.get("VALUE") or "")
        if not value:
            continue  # items with an empty VALUE are dropped
        xml_id = str(entry.get("XML_ID") or secrets.token_hex(16))
        if xml_id in used_xml:
            raise errors.core(f"List item with value XML_ID={xml_id} already exists.")
        used_xml.add(xml_id)
        ctx.portal.db.execute(
            "INSERT INTO enum_items(field_id, value, sort, def, xml_id) VALUES(?, ?, ?, ?, ?)",
            (field_id, value, intval(entry.get("SORT")), yes_no(entry.get("DEF")), xml_id),
        )
    if not multiple:
        defaults = ctx.portal.db.all(
            "SELECT id FROM enum_items WHERE field_id = ? AND def = 'Y' ORDER BY sort, id",
            (field_id,),
        )
        for extra in defaults[1:]:
            ctx.portal.db.execute("UPDATE enum_items SET def = 'N' WHERE id = ?", (extra["id"],))


def create(ctx: CallContext, entity_id: str, fields: Mapping[str, Any], prefix_rule: str) -> int:
    """Create a user field from UPPER_CASE keys. ``prefix_rule`` is ``auto`` (crm.*.userfield:
    UF_CRM_ is added) or the prefix the name must already carry (userfieldconfig)."""
    raw_name = fields.get("FIELD_NAME")
    if raw_name in (None, ""):
        raise errors.old_style("The 'FIELD_NAME' field is not found.")
    utype = fields.get("USER_TYPE_ID")
    if utype in (None, ""):
        raise errors.old_style("The 'USER_TYPE_ID' field is not found.")
    name = str(raw_name).strip().upper()
    if prefix_rule == "auto":
        if name.startswith("UF_CRM_"):
            pass
        elif name.startswith("UF_"):
            name = "UF_CRM_" + name[3:]
        else:
            name = "UF_CRM_" + name
    elif not name.startswith(prefix_rule):
        raise errors.old_style("You cannot create custom fields")
    if len(name) > 50:
        raise errors.core("Field name is too long (more than 50 characters).")
    if not NAME_OK.match(name):
        raise errors.core(
            "Field name contains invalid characters. Allowed characters are: A-Z, 0-9 and _."
        )
    utype = str(utype)
    if utype not in UF_TYPE_IDS:
        raise errors.core("Incorrect custom type specified.")
    if ctx.portal.db.one(
        "SELECT 1 FROM userfields WHERE entity_id = ? AND field_name = ?", (entity_id, name)
    ):
        raise errors.core(f"The field {name} for the {entity_id} object already exists.")
    label = fields.get("LABEL")
    fallback = "" if label is None else str(label)
    data: dict[str, Any] = {
        "ENTITY_ID": entity_id,
        "FIELD_NAME": name,
        "USER_TYPE_ID": utype,
        "XML_ID": None if fields.get("XML_ID") in (None, "") else str(fields["XML_ID"]),
        "SORT": intval(fields["SORT"]) if fields.get("SORT") not in (None, "") else 100,
    }
    for flag, default in FLAGS.items():
        data[flag] = yes_no(fields.get(flag), default)
    if utype == "boolean":
        data["MULTIPLE"] = "N"
    data["SHOW_FILTER"] = "E" if data["SHOW_FILTER"] == "Y" else "N"
    data["SETTINGS"] = _settings(utype, fields.get("SETTINGS"), None)
    for key in LABELS:
        data[key] = _label_map(fields.get(key), fallback, on_update=False)
    with ctx.portal.db.transaction():
        cur = ctx.portal.db.execute(
            "INSERT INTO userfields(entity_id, field_name, data) VALUES(?, ?, ?)",
            (entity_id, name, dumps(data)),
        )
        field_id = int(cur.lastrowid or 0)
        if utype == "enumeration":
            _write_list(ctx, field_id, fields.get("LIST"), data["MULTIPLE"] == "Y")
    ctx.portal.schema_changed()
    return field_id


def load(ctx: CallContext, field_id: int, entity_id: str | None) -> sqlite3.Row:
    row = ctx.portal.db.one("SELECT * FROM userfields WHERE id = ?", (field_id,))
    if row is None or (entity_id is not None and row["entity_id"] != entity_id):
        raise errors.ApiError("ERROR_NOT_FOUND", f"The entity with ID '{field_id}' is not found")
    return row


def update(ctx: CallContext, row: sqlite3.Row, fields: Mapping[str, Any]) -> None:
    data = loads(row["data"])
    if fields.get("XML_ID") is not None:
        data["XML_ID"] = str(fields["XML_ID"])
    if fields.get("SORT") not in (None, ""):
        data["SORT"] = intval(fields["SORT"])
    for flag in ("MANDATORY", "SHOW_FILTER", "SHOW_IN_LIST", "EDIT_IN_LIST", "IS_SEARCHABLE"):
        if fields.get(flag) not in (None, ""):
            data[flag] = yes_no(fields[flag], data[flag])
    if fields.get("SHOW_FILTER") not in (None, ""):
        data["SHOW_FILTER"] = "E" if yes_no(fields["SHOW_FILTER"]) == "Y" else "N"
    if "SETTINGS" in fields:
        data["SETTINGS"] = _settings(data["USER_TYPE_ID"], fields["SETTINGS"], data["SETTINGS"])
    for key in LABELS:
        if key in fields:
            data[key] = _label_map(fields[key], "", on_update=True)
    if fields.get("LABEL") is not None:
        for key in LABELS:
            if key not in fields:
                data[key] = _label_map(fields["LABEL"], "", on_update=True)
    with ctx.portal.db.transaction():
        ctx.portal.db.execute(
            "UPDATE userfields SET data = ? WHERE id = ?", (dumps(data), row["id"])
        )
        if data["USER_TYPE_ID"] == "enumeration" and "LIST" in fields:
            _write_list(ctx, row["id"], fields["LIST"], data["MULTIPLE"] == "Y")
    ctx.portal.schema_changed()


def delete(ctx: CallContext, row: sqlite3.Row) -> None:
    etid = _entity_etid(ctx, row["entity_id"])
    with ctx.portal.db.transaction():
        ctx.portal.db.execute("DELETE FROM userfields WHERE id = ?", (row["id"],))
        ctx.portal.db.execute("DELETE FROM enum_items WHERE field_id = ?", (row["id"],))
        if etid is not None:
            ctx.portal.db.execute(
                "UPDATE items SET data = json_remove(data, ?) WHERE entity_type_id = ?",
                (f'$."{row["field_name"]}"', etid),
            )
    ctx.portal.schema_changed()


def render_old(ctx: CallContext, row: sqlite3.Row, lang: str | None, full: bool) -> dict[str, Any]:
    data = loads(row["data"])
    out: dict[str, Any] = {
        "ID": str(row["id"]),
        "ENTITY_ID": data["ENTITY_ID"],
        "FIELD_NAME": data["FIELD_NAME"],
        "USER_TYPE_ID": data["USER_TYPE_ID"],
        "XML_ID": data["XML_ID"],
        "SORT": str(data["SORT"]),
        **{flag: data[flag] for flag in FLAGS},
        "SETTINGS": data["SETTINGS"],
    }
    if data["USER_TYPE_ID"] == "enumeration":
        out["LIST"] = [
            {
                "ID": str(i["ID"]),
                "SORT": str(i["SORT"]),
                "VALUE": i["VALUE"],
                "DEF": i["DEF"],
                "XML_ID": i["XML_ID"],
            }
            for i in ctx.portal.enum_items(row["id"])
        ]
    if full:
        for key in LABELS:
            out[key] = data[key]
    elif lang:
        for key in LABELS:
            out[key] = data[key].get(lang, "")
    return out


def render_new(ctx: CallContext, row: sqlite3.Row) -> dict[str, Any]:
    data = loads(row["data"])
    return {
        "id": str(row["id"]),
        "entityId": data["ENTITY_ID"],
        "fieldName": data["FIELD_NAME"],
        "userTypeId": data["USER_TYPE_ID"],
        "xmlId": data["XML_ID"],
        "sort": str(data["SORT"]),
        "multiple": data["MULTIPLE"],
        "mandatory": data["MANDATORY"],
        "showFilter": data["SHOW_FILTER"],
        "showInList": data["SHOW_IN_LIST"],
        "editInList": data["EDIT_IN_LIST"],
        "isSearchable": data["IS_SEARCHABLE"],
        "settings": data["SETTINGS"],
        "languageId": {lang: lang for lang in LANGS},
        "editFormLabel": data["EDIT_FORM_LABEL"],
        "listColumnLabel": data["LIST_COLUMN_LABEL"],
        "listFilterLabel": data["LIST_FILTER_LABEL"],
        "errorMessage": data["ERROR_MESSAGE"],
        "helpMessage": data["HELP_MESSAGE"],
        "enum": [
            {
                "id": str(i["ID"]),
                "userFieldId": str(row["id"]),
                "value": i["VALUE"],
                "def": i["DEF"],
                "sort": str(i["SORT"]),
                "xmlId": i["XML_ID"],
            }
            for i in ctx.portal.enum_items(row["id"])
        ]
        if data["USER_TYPE_ID"] == "enumeration"
        else [],
    }


def _upper(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).upper(): v for k, v in fields.items()}


def _register_old(entity: str, entity_id: str) -> None:
    prefix = f"crm.{entity}.userfield"

    @method(f"{prefix}.add", "crm")
    def add(ctx: CallContext, params: dict[str, Any]) -> Any:
        fields = arg(params, "fields")
        if not isinstance(fields, Mapping):
            raise errors.old_style("Parameter 'fields' must be array.")
        return create(ctx, entity_id, _upper(fields), "auto")

    @method(f"{prefix}.get", "crm")
    def get(ctx: CallContext, params: dict[str, Any]) -> Any:
        return render_old(ctx, load(ctx, intval(arg(params, "id")), entity_id), None, True)

    @method(f"{prefix}.list", "crm")
    def list_(ctx: CallContext, params: dict[str, Any]) -> Any:
        flt = arg(params, "filter") or {}
        flt = _upper(flt) if isinstance(flt, Mapping) else {}
        lang = flt.pop("LANG", None)
        rows = ctx.portal.db.all(
            "SELECT * FROM userfields WHERE entity_id = ? ORDER BY id", (entity_id,)
        )
        out = []
        for row in rows:
            item = render_old(ctx, row, str(lang) if lang else None, False)
            if all(str(item.get(k)) == str(v) for k, v in flt.items() if k in item):
                out.append(item)
        out.sort(key=lambda i: (int(i["SORT"]), int(i["ID"])))
        return Paged(out, len(out))

    @method(f"{prefix}.update", "crm")
    def update_(ctx: CallContext, params: dict[str, Any]) -> Any:
        row = load(ctx, intval(arg(params, "id")), entity_id)
        fields = arg(params, "fields")
        if not isinstance(fields, Mapping):
            raise errors.old_style("Parameter 'fields' must be array.")
        update(ctx, row, _upper(fields))
        return True

    @method(f"{prefix}.delete", "crm")
    def delete_(ctx: CallContext, params: dict[str, Any]) -> Any:
        delete(ctx, load(ctx, intval(arg(params, "id")), entity_id))
        return True


for _name, (_uf_entity, _) in OLD_ENTITY.items():
    _register_old(_name, _uf_entity)


@method("crm.userfield.types", "crm")
def types(ctx: CallContext, params: dict[str, Any]) -> Any:
    return [{"ID": t, "title": title} for t, title in UF_TYPES]


# ------------------------------------------------------------ userfieldconfig.*
CAMEL_KEYS = {
    "fieldName": "FIELD_NAME",
    "userTypeId": "USER_TYPE_ID",
    "xmlId": "XML_ID",
    "sort": "SORT",
    "multiple": "MULTIPLE",
    "mandatory": "MANDATORY",
    "showFilter": "SHOW_FILTER",
    "editInList": "EDIT_IN_LIST",
    "isSearchable": "IS_SEARCHABLE",
    "settings": "SETTINGS",
    "editFormLabel": "EDIT_FORM_LABEL",
    "helpMessage": "HELP_MESSAGE",
    "enum": "LIST",
}
UPDATE_ONLY = {
    "listColumnLabel": "LIST_COLUMN_LABEL",
    "listFilterLabel": "LIST_FILTER_LABEL",
    "errorMessage": "ERROR_MESSAGE",
    "showInList": "SHOW_IN_LIST",
}


def _module(params: Mapping[str, Any]) -> None:
    module = exact(params, "moduleId")
    if module in (None, ""):
        raise errors.required_arg("moduleId")
    if module != "crm":
        raise errors.ApiError("ERROR_MODULE_NOT_SUPPORTED", f"Module {module} is not supported")


def _camel_to_upper(field: Mapping[str, Any], updating: bool) -> dict[str, Any]:
    keys = dict(CAMEL_KEYS)
    if updating:
        keys.update(UPDATE_ONLY)
    out: dict[str, Any] = {}
    for key, value in field.items():
        upper = keys.get(str(key))
        if upper is None:
            continue
        if upper == "LIST":
            value = [
                _upper(
                    {
                        ("DEL" if k == "del" else "XML_ID" if k == "xmlId" else k): v
                        for k, v in e.items()
                    }
                )
                for e in as_list(value)
                if isinstance(e, Mapping)
            ]
        out[upper] = value
    return out


def _config_row(ctx: CallContext, params: Mapping[str, Any]) -> sqlite3.Row:
    raw = exact(params, "id")
    if raw in (None, ""):
        raise errors.required_arg("id")
    return load(ctx, intval(raw), None)


@method("userfieldconfig.getTypes", "userfieldconfig", "crm")
def config_types(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    return {"types": [{"userTypeId": t, "description": title} for t, title in UF_TYPES]}


@method("userfieldconfig.add", "userfieldconfig", "crm")
def config_add(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    field = exact(params, "field")
    if not isinstance(field, Mapping):
        raise errors.required_arg("field")
    entity_id = str(field.get("entityId") or "")
    if _entity_etid(ctx, entity_id) is None:
        raise errors.old_style("You cannot create custom fields")
    prefix = (
        "UF_CRM_" if entity_id in ("CRM_DEAL", "CRM_CONTACT", "CRM_COMPANY") else f"UF_{entity_id}_"
    )
    field_id = create(ctx, entity_id, _camel_to_upper(field, False), prefix)
    return {"field": render_new(ctx, load(ctx, field_id, None))}


@method("userfieldconfig.get", "userfieldconfig", "crm")
def config_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    return {"field": render_new(ctx, _config_row(ctx, params))}


@method("userfieldconfig.update", "userfieldconfig", "crm")
def config_update(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    row = _config_row(ctx, params)
    field = exact(params, "field")
    if not isinstance(field, Mapping):
        raise errors.required_arg("field")
    update(ctx, row, _camel_to_upper(field, True))
    return {"field": render_new(ctx, load(ctx, row["id"], None))}


@method("userfieldconfig.delete", "userfieldconfig", "crm")
def config_delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    delete(ctx, _config_row(ctx, params))
    return None


@method("userfieldconfig.list", "userfieldconfig", "crm")
def config_list(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    flt = exact(params, "filter") or {}
    rows = ctx.portal.db.all("SELECT * FROM userfields ORDER BY id")
    out = []
    for row in rows:
        item = render_new(ctx, row)
        if isinstance(flt, Mapping) and not all(
            str(item.get(str(k))) == str(v) for k, v in flt.items()
        ):
            continue
        out.append(item)
    start = max(ctx.start, 0)
    page = out[start : start + 50]
    nxt = start + 50 if start + 50 < len(out) else None
    return Paged({"fields": page}, len(out), nxt)
