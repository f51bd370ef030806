"""Custom fields: crm.{deal,contact,company}.userfield.* and userfieldconfig.* (API notes §7, §8.6)."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Callable, Mapping
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


def _write_list(
    ctx: CallContext, field_id: int, items: Any, multiple: bool, replace: bool = False
) -> None:
    """Add, change and (DEL) delete list values. ``replace`` (the ``uf-enum-replaces``
    reading of userfieldconfig.update): values not named by ID are deleted, DEL is not read."""
    existing = {
        r["id"]: r
        for r in ctx.portal.db.all("SELECT * FROM enum_items WHERE field_id = ?", (field_id,))
    }
    if replace:
        named = {
            intval({str(k).upper(): v for k, v in e.items()}.get("ID"))
            for e in as_list(items)
            if isinstance(e, Mapping)
        }
        for item_id in [i for i in existing if i not in named]:
            ctx.portal.db.execute("DELETE FROM enum_items WHERE id = ?", (item_id,))
            del existing[item_id]
    used_xml = {r["xml_id"] for r in existing.values()}
    for entry in as_list(items):
        if not isinstance(entry, Mapping):
            continue
        entry = {str(k).upper(): v for k, v in entry.items()}
        item_id = intval(entry.get("ID"))
        if item_id and item_id in existing:
            if yes_no(entry.get("DEL")) == "Y" and not replace:
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
    """A field by id; with ``entity_id``, as crm.X.userfield.get/update/delete see it
    (crm-deal-userfield-get.md: a field of another entity is "Access denied", 403)."""
    row = ctx.portal.db.one("SELECT * FROM userfields WHERE id = ?", (field_id,))
    if row is None:
        raise errors.ApiError("ERROR_NOT_FOUND", f"The entity with ID '{field_id}' is not found")
    if entity_id is not None and row["entity_id"] != entity_id:
        raise errors.old_style("Access denied.", 403)
    return row


def _old_id(params: Mapping[str, Any]) -> int:
    """crm-deal-userfield-get.md / -update.md / -delete.md: an id missing or <= 0 is
    "ID is not defined or invalid." (code empty), before any lookup."""
    field_id = intval(arg(params, "id"))
    if field_id <= 0:
        raise errors.old_style("ID is not defined or invalid.")
    return field_id


def update(
    ctx: CallContext, row: sqlite3.Row, fields: Mapping[str, Any], replace_list: bool = False
) -> None:
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
            _write_list(ctx, row["id"], fields["LIST"], data["MULTIPLE"] == "Y", replace_list)
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
        # crm-deal-userfield-list.md: with filter.LANG the labels are strings; a label not
        # set in that language is null (ERROR_MESSAGE/HELP_MESSAGE in the example)
        for key in LABELS:
            out[key] = data[key].get(lang) or None
    return out


NEW_LABELS = {
    "EDIT_FORM_LABEL": "editFormLabel",
    "LIST_COLUMN_LABEL": "listColumnLabel",
    "LIST_FILTER_LABEL": "listFilterLabel",
    "ERROR_MESSAGE": "errorMessage",
    "HELP_MESSAGE": "helpMessage",
}


def render_new(ctx: CallContext, row: sqlite3.Row, lang: str | None = None) -> dict[str, Any]:
    """A field as userfieldconfig.* show it (userfieldconfig-get.md): ``languageId`` names the
    languages that have a label, each label map has those languages with null where unset;
    ``enum`` only for enumeration. With ``lang`` (list's select.language), one language:
    a label map ``{lang: text}`` or null (userfieldconfig-list.md's example)."""
    data = loads(row["data"])
    out: dict[str, Any] = {
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
    }
    if lang:
        out["languageId"] = {lang: lang}
        for key, camel in NEW_LABELS.items():
            text = data[key].get(lang)
            out[camel] = {lang: text} if text else None
    else:
        langs = [code for code in LANGS if any(data[key].get(code) for key in NEW_LABELS)]
        out["languageId"] = {code: code for code in langs}
        for key, camel in NEW_LABELS.items():
            out[camel] = {code: data[key].get(code) or None for code in langs}
    if data["USER_TYPE_ID"] == "enumeration":
        out["enum"] = [
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
    return out


# the order keys crm-deal-userfield-list.md and userfieldconfig-list.md document; the first two
# (sort, then id, ascending) are the default
OLD_ORDER = ("SORT", "ID", "FIELD_NAME", "USER_TYPE_ID", "XML_ID")
NEW_ORDER = ("sort", "id", "fieldName", "userTypeId", "xmlId")


def _sort_key(key: str) -> Callable[[dict[str, Any]], Any]:
    if key.upper() in ("ID", "SORT"):
        return lambda row: intval(row.get(key))
    return lambda row: str(row.get(key) or "")


def _sort(rows: list[dict[str, Any]], order: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """Sort in place by the documented order keys (unknown ones are skipped); with none,
    sort then id ascending."""
    keys = [(str(k), str(v).upper() == "DESC") for k, v in order.items() if k in known]
    for key, desc in reversed(keys or [(known[0], False), (known[1], False)]):
        rows.sort(key=_sort_key(key), reverse=desc)  # stable: the last key sorts first


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
        return render_old(ctx, load(ctx, _old_id(params), entity_id), None, True)

    @method(f"{prefix}.list", "crm")
    def list_(ctx: CallContext, params: dict[str, Any]) -> Any:
        # crm-deal-userfield-list.md: filter and order must be objects; order by ID,
        # FIELD_NAME, USER_TYPE_ID, XML_ID, SORT, default SORT then ID ascending
        # (a JSON list is a PHP array too: taken as empty)
        flt = arg(params, "filter")
        if flt in (None, "") or isinstance(flt, list):
            flt = {}
        if not isinstance(flt, Mapping):
            raise errors.old_style("Parameter 'filter' must be array.")
        order = arg(params, "order")
        if order in (None, "") or isinstance(order, list):
            order = {}
        if not isinstance(order, Mapping):
            raise errors.old_style("Parameter 'order' must be array.")
        flt = _upper(flt)
        lang = flt.pop("LANG", None)
        rows = ctx.portal.db.all(
            "SELECT * FROM userfields WHERE entity_id = ? ORDER BY id", (entity_id,)
        )
        out = []
        for row in rows:
            item = render_old(ctx, row, str(lang) if lang else None, False)
            if all(str(item.get(k)) == str(v) for k, v in flt.items() if k in item):
                out.append(item)
        _sort(out, {str(k).upper(): v for k, v in order.items()}, OLD_ORDER)
        return Paged(out, len(out))

    @method(f"{prefix}.update", "crm")
    def update_(ctx: CallContext, params: dict[str, Any]) -> Any:
        field_id = _old_id(params)
        fields = arg(params, "fields")
        if not isinstance(fields, Mapping):
            raise errors.old_style("Parameter 'fields' must be array.")
        update(ctx, load(ctx, field_id, entity_id), _upper(fields))
        return True

    @method(f"{prefix}.delete", "crm")
    def delete_(ctx: CallContext, params: dict[str, Any]) -> Any:
        delete(ctx, load(ctx, _old_id(params), entity_id))
        return True


for _name, (_uf_entity, _) in OLD_ENTITY.items():
    _register_old(_name, _uf_entity)


# crm-userfield-types.md's example, in its order
OLD_TYPE_TITLES = {
    "string": "String",
    "integer": "Integer",
    "double": "Number",
    "boolean": "Yes/No",
    "enumeration": "List",
    "datetime": "Date/Time",
    "date": "Date",
    "money": "Money",
    "url": "Link",
    "address": "Google Maps Address",
    "file": "File",
    "employee": "Binding to User",
    "crm_status": "Binding to CRM Directories",
    "iblock_section": "Binding to Information Block Sections",
    "iblock_element": "Binding to Information Block Elements",
    "crm": "Binding to CRM Entities",
}
# userfieldconfig-get-types.md's example, in its order
CONFIG_TYPE_TITLES = {
    "crm": "Linked to CRM entities",
    "crm_status": "Linked to CRM directories",
    "money": "Money",
    "employee": "Linked to employee",
    "string": "String",
    "integer": "Integer",
    "double": "Number",
    "datetime": "Date with time",
    "date": "Date",
    "boolean": "Yes/No",
    "address": "Address",
    "url": "Link",
    "file": "File",
    "enumeration": "List",
    "iblock_section": "Linked to information block sections",
    "iblock_element": "Linked to information block elements",
}


@method("crm.userfield.types", "crm")
def types(ctx: CallContext, params: dict[str, Any]) -> Any:
    titles = dict(UF_TYPES) | OLD_TYPE_TITLES
    return [{"ID": t, "title": titles[t]} for t in OLD_TYPE_TITLES if t in UF_TYPE_IDS] + [
        {"ID": t, "title": title} for t, title in UF_TYPES if t not in OLD_TYPE_TITLES
    ]


# ------------------------------------------------------------ userfieldconfig.*
# userfieldconfig-add.md: the keys add reads (showInList, listColumnLabel, listFilterLabel,
# errorMessage and label are not processed); the rest of field is ignored
ADD_KEYS = {
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
# userfieldconfig-update.md's field table; "Some field parameters cannot be changed after
# creation. If they are passed in field, the change will not be applied."
UPDATE_KEYS = {
    "xmlId": "XML_ID",
    "sort": "SORT",
    "mandatory": "MANDATORY",
    "showFilter": "SHOW_FILTER",
    "isSearchable": "IS_SEARCHABLE",
    "editFormLabel": "EDIT_FORM_LABEL",
    "helpMessage": "HELP_MESSAGE",
    "settings": "SETTINGS",
    "enum": "LIST",
}
VIEW_DENIED = "You do not have permission to view user field settings"
CHANGE_DENIED = "You cannot change the settings of the user field"
DELETE_DENIED = "You cannot delete the user field"


def _module(params: Mapping[str, Any]) -> None:
    """moduleId is required; only crm is reachable with this webhook. userfieldconfig-*.md:
    "The current method required more scopes. (crm)" without the module's scope, "No settings
    for UserFieldAccess" for a module without user-field access (both with code empty)."""
    module = exact(params, "moduleId")
    if module in (None, ""):
        raise errors.required_arg("moduleId")
    if module == "rpa":
        raise errors.old_style(f"The current method required more scopes. ({module})")
    if module != "crm":
        raise errors.old_style("No settings for UserFieldAccess")


def _camel_to_upper(field: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
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


def _available(ctx: CallContext, entity_id: str) -> bool:
    return _entity_etid(ctx, entity_id) is not None


def _config_row(ctx: CallContext, params: Mapping[str, Any], denied: str) -> sqlite3.Row:
    """The field by id. A missing (or already deleted) field, or one outside the module,
    is refused like a field one may not touch: code empty, HTTP 400 (userfieldconfig-get.md,
    -update.md, -delete.md error tables)."""
    raw = exact(params, "id")
    if raw in (None, ""):
        raise errors.required_arg("id")
    row = ctx.portal.db.one("SELECT * FROM userfields WHERE id = ?", (intval(raw),))
    if row is None or not _available(ctx, str(row["entity_id"])):
        raise errors.old_style(denied)
    return row


@method("userfieldconfig.getTypes", "userfieldconfig", "crm")
def config_types(ctx: CallContext, params: dict[str, Any]) -> Any:
    """userfieldconfig-get-types.md: ``types`` is an object keyed by type id."""
    _module(params)
    titles = dict(UF_TYPES) | CONFIG_TYPE_TITLES
    order = [t for t in CONFIG_TYPE_TITLES if t in UF_TYPE_IDS] + [
        t for t, _ in UF_TYPES if t not in CONFIG_TYPE_TITLES
    ]
    return {"types": {t: {"userTypeId": t, "description": titles[t]} for t in order}}


@method("userfieldconfig.add", "userfieldconfig", "crm")
def config_add(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    field = exact(params, "field")
    if not isinstance(field, Mapping):
        raise errors.required_arg("field")
    entity_id = str(field.get("entityId") or "")
    if not _available(ctx, entity_id):
        raise errors.old_style("You cannot create custom fields")
    # userfieldconfig-add.md: fieldName must start with UF_{entityId}_ (also for CRM_DEAL)
    try:
        field_id = create(ctx, entity_id, _camel_to_upper(field, ADD_KEYS), f"UF_{entity_id}_")
    except errors.ApiError as exc:
        # userfieldconfig-add.md: every error of add has an empty code
        raise errors.old_style(exc.description, exc.status) from None
    return {"field": render_new(ctx, load(ctx, field_id, None))}


@method("userfieldconfig.get", "userfieldconfig", "crm")
def config_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    return {"field": render_new(ctx, _config_row(ctx, params, VIEW_DENIED))}


@method("userfieldconfig.update", "userfieldconfig", "crm")
def config_update(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    row = _config_row(ctx, params, CHANGE_DENIED)
    field = exact(params, "field")
    if not isinstance(field, Mapping):
        raise errors.required_arg("field")
    upper = _camel_to_upper(field, UPDATE_KEYS)
    # userfieldconfig-update.md: "To apply changes to enum, field.userTypeId must be set to
    # enumeration"; without it enum is ignored and the rest still applies
    if field.get("userTypeId") != "enumeration" and "enum-without-usertype" not in (
        ctx.portal.readings
    ):
        upper.pop("LIST", None)
    update(ctx, row, upper, replace_list="uf-enum-replaces" in ctx.portal.readings)
    return {"field": render_new(ctx, load(ctx, row["id"], None))}


@method("userfieldconfig.delete", "userfieldconfig", "crm")
def config_delete(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    delete(ctx, _config_row(ctx, params, DELETE_DENIED))
    return None


def _matches(item: Mapping[str, Any], key: str, wanted: Any) -> bool:
    got = str(item.get(key))
    if isinstance(wanted, list):
        return got in {str(w) for w in wanted}
    return got == str(wanted)


@method("userfieldconfig.list", "userfieldconfig", "crm")
def config_list(ctx: CallContext, params: dict[str, Any]) -> Any:
    _module(params)
    readings = ctx.portal.readings
    flt = exact(params, "filter") or {}
    flt = dict(flt) if isinstance(flt, Mapping) else {}
    order = exact(params, "order") or {}
    select = exact(params, "select") or {}
    lang = select.get("language") if isinstance(select, Mapping) else None
    # entityId is not among userfieldconfig-list.md's filterable fields; the sandbox honours
    # it (main's UserFieldAccess::prepareFilter does), "uf-list-ignores-entity" does not
    entity = flt.pop("entityId", None)
    if "uf-list-ignores-entity" in readings:
        entity = None
    if entity not in (None, "", []):
        wanted = [str(e) for e in as_list(entity)]
        if not any(_available(ctx, e) for e in wanted):
            # userfieldconfig-list.md: no read access "based on the provided filter"
            raise errors.old_style(VIEW_DENIED)
        flt["entityId"] = wanted
    out = []
    for row in ctx.portal.db.all("SELECT * FROM userfields ORDER BY id"):
        if not _available(ctx, str(row["entity_id"])):
            continue
        item = render_new(ctx, row, str(lang) if isinstance(lang, str) and lang else None)
        if not all(_matches(item, str(k), v) for k, v in flt.items()):
            continue
        if "uf-list-bare" in readings:
            item.pop("enum", None)
            for camel in NEW_LABELS.values():
                item.pop(camel, None)
        out.append(item)
    _sort(out, order if isinstance(order, Mapping) else {}, NEW_ORDER)
    start = max(ctx.start, 0)
    page = out[start : start + 50]
    nxt = start + 50 if start + 50 < len(out) else None
    return Paged({"fields": page}, len(out), nxt)
