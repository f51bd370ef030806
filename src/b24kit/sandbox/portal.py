"""The state and rules of one sandbox portal: pipelines, stages, types, fields, items.

Method modules call into this; it knows nothing of HTTP, envelopes or limits.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from b24kit.encoding import as_list
from b24kit.sandbox import errors
from b24kit.sandbox.costs import DOCS, CostModel
from b24kit.sandbox.db import Database, dumps, loads
from b24kit.sandbox.fields import (
    BOOL01,
    COMPANY,
    CONTACT,
    DATE,
    DATETIME,
    DEAL,
    FLOAT,
    INT,
    LEAD,
    MULTI,
    SPA_MIN,
    YN,
    FieldDef,
    audit_name,
    parent_field_def,
    system_fields,
    uf_entity_id,
    uf_field_def,
)
from b24kit.sandbox.query import FilterBuilder, build_order
from b24kit.sandbox.values import (
    floatval,
    intval,
    now_iso,
    parse_datetime,
    render_date,
    yes_no,
)

# the ENTITY_TYPE a timeline comment names its owner by (crm-timeline-comment-add.md)
TIMELINE_OWNERS = {DEAL: "deal", CONTACT: "contact", COMPANY: "company", LEAD: "lead"}

PAGE = 50
CURRENCIES = ("RUB", "USD", "EUR", "UAH", "BYN", "KZT")
DEAL_STAGE_MAX = 21  # observed: C10:PREPAYMENT_INVOIC (API notes §6.2)

# (code, name, sort, color, semantics, system, extra semantics)
DEAL_DEFAULT_STAGES = [
    ("NEW", "New", 10, "#39A8EF", None, "Y", "process"),
    ("PREPARATION", "Document preparation", 20, "#2FC6F6", None, "N", "process"),
    ("PREPAYMENT_INVOICE", "Prepayment invoice", 30, "#55D0E0", None, "N", "process"),
    ("EXECUTING", "In progress", 40, "#47E4C2", None, "N", "process"),
    ("FINAL_INVOICE", "Final invoice", 50, "#FFA900", None, "N", "process"),
    ("WON", "Deal successful", 60, "#7BD500", "S", "Y", "success"),
    ("LOSE", "Deal failed", 70, "#FF5752", "F", "Y", "failure"),
    ("APOLOGY", "Analyze failure", 80, "#FF5752", "F", "N", "apology"),
]
SPA_DEFAULT_STAGES = [
    ("NEW", "Start", 10, "#22B9FF", None, "Y", None),
    ("PREPARATION", "Preparation", 20, "#88B9FF", None, "N", None),
    ("CLIENT", "Approval", 30, "#10e5fc", None, "N", None),
    ("SUCCESS", "Success", 40, "#00ff00", "S", "Y", None),
    ("FAIL", "Failure", 50, "#ff0000", "F", "Y", None),
]
# The names a portal in Russian gives the template stages (crm-status-entity-items.md in
# the Russian docs; fast_bitrix24 real_responses): names are localised, codes are not.
TEMPLATE_NAMES_RU = {
    "NEW": "Новая",
    "PREPARATION": "Подготовка документов",
    "PREPAYMENT_INVOICE": "Счёт на предоплату",
    "EXECUTING": "В работе",
    "FINAL_INVOICE": "Финальный счёт",
    "WON": "Сделка успешна",
    "LOSE": "Сделка провалена",
    "APOLOGY": "Анализ причины провала",
}
SPA_TEMPLATE_NAMES_RU = {
    "NEW": "Начало",
    "PREPARATION": "Подготовка",
    "CLIENT": "Согласование",
    "SUCCESS": "Успех",
    "FAIL": "Провал",
}
DICTIONARIES: dict[str, list[tuple[str, str]]] = {
    "SOURCE": [
        ("CALL", "Call"),
        ("EMAIL", "E-Mail"),
        ("WEB", "Website"),
        ("ADVERTISING", "Advertising"),
        ("PARTNER", "Existing client"),
        ("RECOMMENDATION", "By recommendation"),
        ("TRADE_SHOW", "Show/Exhibition"),
        ("OTHER", "Other"),
    ],
    "DEAL_TYPE": [
        ("SALE", "Sales"),
        ("COMPLEX", "Integrated sale"),
        ("GOODS", "Merchandise"),
        ("SERVICES", "Services"),
        ("SERVICE", "Service"),
    ],
    "CONTACT_TYPE": [
        ("CLIENT", "Clients"),
        ("SUPPLIER", "Suppliers"),
        ("PARTNER", "Partners"),
        ("OTHER", "Other"),
    ],
    "COMPANY_TYPE": [
        ("CUSTOMER", "Client"),
        ("SUPPLIER", "Supplier"),
        ("COMPETITOR", "Competitor"),
        ("PARTNER", "Partner"),
        ("OTHER", "Other"),
    ],
    "INDUSTRY": [
        ("IT", "Information Technology"),
        ("MANUFACTURING", "Manufacturing"),
        ("DELIVERY", "Delivery"),
        ("OTHER", "Other"),
    ],
    "HONORIFIC": [("HNR_RU_1", "Mr."), ("HNR_RU_2", "Mrs.")],
    "EMPLOYEES": [
        ("EMPLOYEES_1", "fewer than 50"),
        ("EMPLOYEES_2", "50-250"),
        ("EMPLOYEES_3", "250-500"),
        ("EMPLOYEES_4", "over 500"),
    ],
}
# Old-style fields a real portal keeps as a PHP float, so 0 reads "0", not "0.00"
# (crm-company-get.md: "REVENUE": "0"; deals' OPPORTUNITY reads "1000000.00", crm-deal-get.md).
PHP_FLOATS = ("REVENUE",)


def php_float(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


STAGE_CODE = re.compile(r"^[A-Za-z0-9_-]+$")


def status_row(row: sqlite3.Row) -> dict[str, Any]:
    """A crm.status row as the old API returns it: every scalar a string."""
    out: dict[str, Any] = {
        "ID": str(row["id"]),
        "ENTITY_ID": row["entity_id"],
        "STATUS_ID": row["status_id"],
        "NAME": row["name"],
        "NAME_INIT": row["name_init"],
        "SORT": str(row["sort"]),
        "SYSTEM": row["system"],
        "CATEGORY_ID": None if row["category_id"] is None else str(row["category_id"]),
        "COLOR": row["color"],
        "SEMANTICS": row["semantics"],
    }
    if row["extra_semantics"]:
        out["EXTRA"] = {"SEMANTICS": row["extra_semantics"], "COLOR": row["color"]}
    return out


def semantic_letter(semantics: str | None) -> str:
    return semantics if semantics in ("S", "F") else "P"


# The demo company's staff, beside the admin (1): a portal has its people, and the
# examples' mappings assign deals to them by id (users: {Иванов: 3, ...}), which migrate
# checks against user.get.
STAFF: dict[int, tuple[str, str, str]] = {
    2: ("Мария", "Соколова", "Руководитель продаж"),
    3: ("Иван", "Иванов", "Менеджер по продажам"),
    4: ("Анна", "Петрова", "Логист"),
    5: ("Сергей", "Смирнов", "Менеджер по продажам"),
    6: ("Ольга", "Кузнецова", "Логист"),
    7: ("Павел", "Орлов", "Инженер"),
    8: ("Елена", "Волкова", "Бухгалтер"),
}


class Portal:
    def __init__(
        self,
        db: Database,
        tz: timezone,
        clock: Callable[[], float],
        readings: frozenset[str] = frozenset(),
        language: str = "en",
        costs: CostModel = DOCS,
    ) -> None:
        self.db = db
        self.costs = costs  # what counting and skipping rows charge (sandbox/costs.py)
        self.language = language  # names of the stages a new pipeline comes with
        self.readings = readings  # alternative readings switched on (sandbox/readings.py)
        self.tz = tz
        self.clock = clock
        self._fields_cache: dict[int, tuple[dict[str, FieldDef], dict[str, FieldDef]]] = {}
        self.ensure_initialized()

    # ------------------------------------------------------------------ basics
    def now(self) -> str:
        return now_iso(self.clock(), self.tz)

    def schema_changed(self) -> None:
        self._fields_cache.clear()

    def ensure_initialized(self) -> None:
        if self.db.get_meta("initialized"):
            return
        with self.db.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO users(id, data) VALUES(1, ?)",
                (
                    dumps(
                        {
                            "NAME": "Admin",
                            "LAST_NAME": "Sandbox",
                            "EMAIL": "admin@sandbox.local",
                            "ACTIVE": True,
                            "ADMIN": True,
                        }
                    ),
                ),
            )
            for user_id, (name, last_name, position) in STAFF.items():
                self.add_user(
                    {
                        "NAME": name,
                        "LAST_NAME": last_name,
                        "WORK_POSITION": position,
                        "EMAIL": f"user{user_id}@sandbox.local",
                        "ACTIVE": True,
                    },
                    user_id,
                )
            self.db.execute(
                "INSERT INTO categories(id, entity_type_id, name, sort, is_default) "
                "VALUES(0, 2, 'General', 300, 'Y')"
            )
            self.create_default_stages(DEAL, 0)
            for entity_id, rows in DICTIONARIES.items():
                for index, (code, name) in enumerate(rows):
                    self.db.execute(
                        "INSERT INTO statuses(entity_id, status_id, name, name_init, sort, system) "
                        "VALUES(?, ?, ?, ?, ?, 'Y')",
                        (entity_id, code, name, name, (index + 1) * 10),
                    )
            self.db.set_meta("initialized", "1")

    def user(self, user_id: int) -> dict[str, Any] | None:
        row = self.db.one("SELECT id, data FROM users WHERE id = ?", (user_id,))
        if row is None:
            return None
        data: dict[str, Any] = loads(row["data"])
        data["ID"] = row["id"]
        return data

    def add_user(self, fields: Mapping[str, Any], user_id: int | None = None) -> int:
        if user_id is None:
            row = self.db.one("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM users")
            user_id = int(row["n"]) if row else 1
        data = {k: v for k, v in fields.items() if k != "ID"}
        data.setdefault("ACTIVE", True)
        self.db.execute(
            "INSERT OR REPLACE INTO users(id, data) VALUES(?, ?)", (user_id, dumps(data))
        )
        return user_id

    # ------------------------------------------------------------------ stages
    @staticmethod
    def stage_entity(etid: int, category_id: int) -> str:
        if etid == DEAL:
            return "DEAL_STAGE" if category_id == 0 else f"DEAL_STAGE_{category_id}"
        return f"DYNAMIC_{etid}_STAGE_{category_id}"

    @staticmethod
    def stage_prefix(etid: int, category_id: int) -> str:
        if etid == DEAL:
            return "" if category_id == 0 else f"C{category_id}:"
        return f"DT{etid}_{category_id}:"

    def parse_stage_entity(self, entity_id: str) -> tuple[int, int] | None:
        """``DEAL_STAGE_5`` -> (2, 5); ``DYNAMIC_1030_STAGE_7`` -> (1030, 7)."""
        if entity_id == "DEAL_STAGE":
            return DEAL, 0
        match = re.fullmatch(r"DEAL_STAGE_(\d+)", entity_id)
        if match:
            return DEAL, int(match.group(1))
        match = re.fullmatch(r"DYNAMIC_(\d+)_STAGE_(\d+)", entity_id)
        if match:
            return int(match.group(1)), int(match.group(2))
        return None

    def create_default_stages(self, etid: int, category_id: int) -> None:
        entity = self.stage_entity(etid, category_id)
        prefix = self.stage_prefix(etid, category_id)
        template = DEAL_DEFAULT_STAGES if etid == DEAL else SPA_DEFAULT_STAGES
        local = (
            (TEMPLATE_NAMES_RU if etid == DEAL else SPA_TEMPLATE_NAMES_RU)
            if (self.language == "ru" and category_id)
            else {}
        )
        for code, english, sort, color, semantics, system, extra in template:
            name = local.get(code, english)
            status_id = (prefix + code)[:DEAL_STAGE_MAX] if etid == DEAL else prefix + code
            self.db.execute(
                "INSERT INTO statuses(entity_id, status_id, name, name_init, sort, system, "
                "category_id, color, semantics, extra_semantics) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (
                    entity,
                    status_id,
                    name,
                    name if system == "Y" else "",
                    sort,
                    system,
                    None if entity == "DEAL_STAGE" else category_id,
                    color,
                    semantics,
                    extra,
                ),
            )

    def stages(self, etid: int, category_id: int) -> list[sqlite3.Row]:
        return self.db.all(
            "SELECT * FROM statuses WHERE entity_id = ? ORDER BY sort, id",
            (self.stage_entity(etid, category_id),),
        )

    def stage_semantics_anywhere(self, etid: int, status_id: str) -> str | None:
        like = "DEAL_STAGE%" if etid == DEAL else f"DYNAMIC_{etid}_STAGE_%"
        row = self.db.one(
            "SELECT semantics FROM statuses WHERE entity_id LIKE ? AND status_id = ?",
            (like, status_id),
        )
        return None if row is None else semantic_letter(row["semantics"])

    def resolve_stage(
        self, etid: int, category_id: int, requested: Any, current: str | None, moving: bool
    ) -> sqlite3.Row:
        """The stage an item ends in. An unknown stage is not an error (API notes §2.4,
        newer generation): on add or a pipeline change it becomes the first stage of the
        pipeline with the same semantics (else the first in-progress one); on a plain
        update the stage stays as it was."""
        text = None if requested in (None, "") else str(requested)
        # Most often the stage asked for (else, on a plain update, the item's own) is one of
        # the pipeline's: one row by the statuses' unique key, not the whole pipeline.
        for known in (text, None if moving or not isinstance(current, str) else current):
            if known is not None:
                row = self.db.one(  # what callers read of a stage: its code and semantics
                    "SELECT status_id, semantics FROM statuses "
                    "WHERE entity_id = ? AND status_id = ?",
                    (self.stage_entity(etid, category_id), known),
                )
                if row is not None:
                    return row
        stages = self.stages(etid, category_id)
        if not stages:
            raise ApiErrorStage()
        if text is not None:
            wanted = self.stage_semantics_anywhere(etid, text) or "P"
            for row in stages:
                if semantic_letter(row["semantics"]) == wanted:
                    return row
        for row in stages:
            if semantic_letter(row["semantics"]) == "P":
                return row
        return stages[0]

    # -------------------------------------------------------------- categories
    def category(self, etid: int, category_id: int) -> sqlite3.Row | None:
        return self.db.one(
            "SELECT * FROM categories WHERE entity_type_id = ? AND id = ?", (etid, category_id)
        )

    def category_exists(self, etid: int, category_id: int) -> bool:
        """``category(...) is not None``, without reading the row (each add asks)."""
        return (
            self.db.one(
                "SELECT 1 FROM categories WHERE entity_type_id = ? AND id = ?",
                (etid, category_id),
            )
            is not None
        )

    def default_category(self, etid: int) -> int:
        row = self.db.one(
            "SELECT id FROM categories WHERE entity_type_id = ? AND is_default = 'Y'", (etid,)
        )
        return 0 if row is None else int(row["id"])

    def add_category(
        self, etid: int, name: str, sort: int = 500, is_default: bool = False, code: str = ""
    ) -> int:
        category_id = self.db.next_id("category")
        if is_default:
            self.db.execute(
                "UPDATE categories SET is_default = 'N' WHERE entity_type_id = ?", (etid,)
            )
        self.db.execute(
            "INSERT INTO categories(id, entity_type_id, name, sort, is_default, code) "
            "VALUES(?, ?, ?, ?, ?, ?)",
            (category_id, etid, name, max(sort, 0), "Y" if is_default else "N", code),
        )
        self.create_default_stages(etid, category_id)
        return category_id

    def count_items(self, etid: int, where: str = "1", params: tuple[Any, ...] = ()) -> int:
        row = self.db.one(
            f"SELECT COUNT(*) AS n FROM items WHERE entity_type_id = ? AND {where}",
            (etid, *params),
        )
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------------- types
    def type_by_etid(self, etid: int) -> dict[str, Any] | None:
        row = self.db.one("SELECT id, data FROM types WHERE entity_type_id = ?", (etid,))
        if row is None:
            return None
        data: dict[str, Any] = loads(row["data"])
        return data

    def type_by_id(self, type_id: int) -> dict[str, Any] | None:
        row = self.db.one("SELECT data FROM types WHERE id = ?", (type_id,))
        return None if row is None else dict(loads(row["data"]))

    def entity_supported(self, etid: int) -> bool:
        return etid in (DEAL, CONTACT, COMPANY) or self.type_by_etid(etid) is not None

    def has_stages(self, etid: int) -> bool:
        if etid == DEAL:
            return True
        spa = self.type_by_etid(etid)
        return spa is not None

    def uf_entity(self, etid: int) -> str:
        if etid >= SPA_MIN:
            spa = self.type_by_etid(etid)
            return uf_entity_id(etid, spa["id"] if spa else 0)
        return uf_entity_id(etid)

    # ------------------------------------------------------------- user fields
    def userfield_rows(self, entity_id: str) -> list[dict[str, Any]]:
        out = []
        for row in self.db.all(
            "SELECT id, data FROM userfields WHERE entity_id = ? ORDER BY id", (entity_id,)
        ):
            data = loads(row["data"])
            data["ID"] = row["id"]
            if data["USER_TYPE_ID"] == "enumeration":
                data["LIST"] = self.enum_items(row["id"])
            out.append(data)
        return out

    def enum_items(self, field_id: int) -> list[dict[str, Any]]:
        return [
            {
                "ID": r["id"],
                "SORT": r["sort"],
                "VALUE": r["value"],
                "DEF": r["def"],
                "XML_ID": r["xml_id"],
            }
            for r in self.db.all(
                "SELECT * FROM enum_items WHERE field_id = ? ORDER BY sort, id", (field_id,)
            )
        ]

    # ------------------------------------------------------------------- items
    def item_fields(self, etid: int) -> tuple[dict[str, FieldDef], dict[str, FieldDef]]:
        """(by UPPER name, by camelCase name) for an entity, user fields and parents included."""
        cached = self._fields_cache.get(etid)
        if cached is not None:
            return cached
        by_name = dict(system_fields(etid))
        for row in self.db.all(
            "SELECT parent_etid FROM relations WHERE child_etid = ? ORDER BY parent_etid", (etid,)
        ):
            fdef = parent_field_def(int(row["parent_etid"]))
            by_name[fdef.name] = fdef
        for uf in self.userfield_rows(self.uf_entity(etid)):
            fdef = uf_field_def(uf)
            by_name[fdef.name] = fdef
        by_camel = {f.camel: f for f in by_name.values()}
        self._fields_cache[etid] = (by_name, by_camel)
        return by_name, by_camel

    def resolver(self, etid: int, style: str) -> Callable[[str], FieldDef | None]:
        by_name, by_camel = self.item_fields(etid)
        if style == "old":
            return lambda key: by_name.get(key) or by_name.get(key.upper())
        return lambda key: (
            by_camel.get(key) or (by_name.get(key) if key.startswith("UF_") else None)
        )

    def _coerce_one(self, fdef: FieldDef, value: Any) -> Any:
        if isinstance(value, (dict, list)) and fdef.kind != MULTI:
            value = next(iter(as_list(value)), None)
        if value is None or (value == "" and fdef.kind != "str"):
            return None
        if fdef.kind == INT:
            return intval(value)
        if fdef.kind == FLOAT:
            return floatval(value)
        if fdef.kind == YN:
            return yes_no(value)
        if fdef.kind == BOOL01:
            return 1 if yes_no(value) == "Y" else 0
        if fdef.kind == DATE:
            return parse_datetime(value, self.tz, date_only=True)
        if fdef.kind == DATETIME:
            return parse_datetime(value, self.tz)
        return str(value)

    def coerce(self, fdef: FieldDef, value: Any, style: str) -> Any:
        if fdef.multiple:
            if style == "new" and value not in (None, "") and not isinstance(value, (list, dict)):
                raise errors.ApiError(
                    100,
                    "Expected iterable value for multiple field, but got "
                    f"{type(value).__name__} instead",
                )
            out = [self._coerce_one(fdef, v) for v in as_list(value)]
            return [v for v in out if v is not None]
        return self._coerce_one(fdef, value)

    def _field_error(self, style: str, fdef: FieldDef, code: str) -> errors.ApiError:
        label = fdef.title
        if fdef.user_field is not None:
            labels = fdef.user_field.get("EDIT_FORM_LABEL")
            if isinstance(labels, dict):
                label = labels.get("en") or labels.get("ru") or label
        if code == "required":
            if style == "new":
                return errors.ApiError(
                    "CRM_FIELD_ERROR_REQUIRED", f'The field "{label}" is required.'
                )
            return errors.old_style(f'The field "{label}" is required.')
        if style == "new":
            return errors.ApiError(
                "CRM_FIELD_ERROR_VALUE_NOT_VALID", f'Invalid value for field "{label}"'
            )
        return errors.old_style(f'Invalid value for the "{label}" field')

    def _check_values(self, etid: int, data: dict[str, Any], style: str, creating: bool) -> None:
        by_name, _ = self.item_fields(etid)
        currency = data.get("CURRENCY_ID")
        if currency is not None and currency not in CURRENCIES:
            if style == "old":
                raise errors.old_style('Invalid value for the "Currency" field')
            raise errors.ApiError(
                "CRM_FIELD_ERROR_VALUE_NOT_VALID", 'Invalid value for field "Currency"'
            )
        for fdef in by_name.values():
            uf = fdef.user_field  # is_uf, without a property call per field of each write
            if uf is None:
                continue
            if fdef.required and (creating or fdef.name in data):
                value = data.get(fdef.name)
                if value in (None, "", []):
                    raise self._field_error(style, fdef, "required")
            if uf.get("USER_TYPE_ID") == "enumeration" and data.get(fdef.name) not in (None, []):
                allowed = {i["ID"] for i in uf.get("LIST", [])}
                values = data[fdef.name] if fdef.multiple else [data[fdef.name]]
                if any(v not in allowed for v in values):
                    raise self._field_error(style, fdef, "invalid")

    def _split_input(
        self, etid: int, raw: Mapping[str, Any], style: str, allow_category: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        resolve = self.resolver(etid, style)
        data: dict[str, Any] = {}
        multis: dict[str, Any] = {}
        for key, value in raw.items():
            fdef = resolve(str(key))
            if fdef is None or fdef.read_only or fdef.name == "ID":
                continue  # unknown and read-only keys are ignored, as on a real portal
            if fdef.immutable and not allow_category:
                continue
            if fdef.kind == MULTI:
                multis[fdef.name] = value
                continue
            data[fdef.name] = self.coerce(fdef, value, style)
        return data, multis

    def _validate_multis(self, multis: Mapping[str, Any]) -> None:
        for type_id in ("EMAIL",):
            for entry in as_list(multis.get(type_id)):
                if isinstance(entry, Mapping):
                    value = str(entry.get("VALUE", "")).strip()
                    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                        raise errors.core("The field Work e-mail contains an invalid address")

    def add_item(self, etid: int, raw: Mapping[str, Any], user_id: int, style: str) -> int:
        data, multis = self._split_input(etid, raw, style, allow_category=True)
        self._check_values(etid, data, style, creating=True)
        self._validate_multis(multis)
        item_id = self.db.next_id(f"item:{etid}")
        now = self.now()
        data[audit_name(etid, "created")] = now
        data[audit_name(etid, "modified")] = now
        data[audit_name(etid, "created_by")] = user_id
        data[audit_name(etid, "modified_by")] = user_id
        if data.get("ASSIGNED_BY_ID") in (None, 0):
            data["ASSIGNED_BY_ID"] = user_id
        if data.get("OPENED") is None:
            data["OPENED"] = "Y"
        self._add_defaults(etid, data)
        today = datetime.fromtimestamp(self.clock(), self.tz).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        if etid == DEAL or etid >= SPA_MIN:
            if etid == DEAL and not data.get("TITLE"):
                data["TITLE"] = f"Deal #{item_id}"
            if etid >= SPA_MIN and not data.get("TITLE"):
                spa = self.type_by_etid(etid) or {}
                data["TITLE"] = f"{spa.get('title', 'Item')} #{item_id}"
            data.setdefault("BEGINDATE", None)
            data["BEGINDATE"] = data["BEGINDATE"] or today.isoformat()
            data["CLOSEDATE"] = data.get("CLOSEDATE") or (today + timedelta(days=7)).isoformat()
            if data.get("OPPORTUNITY") is None:
                data["OPPORTUNITY"] = 0.0
            if data.get("CURRENCY_ID") is None:
                data["CURRENCY_ID"] = "RUB"
            if etid == DEAL:
                data["IS_NEW"] = "Y"
            category_id = data.get("CATEGORY_ID")
            if category_id is None:
                category_id = self.default_category(etid)
            if not self.category_exists(etid, int(category_id)):
                if style == "new":
                    raise errors.ApiError(
                        "CRM_FIELD_ERROR_VALUE_NOT_VALID", 'Invalid value for field "Pipeline"'
                    )
                raise errors.old_style(f"Category with ID {category_id} is not found.")
            data["CATEGORY_ID"] = int(category_id)
            stage = self.resolve_stage(etid, int(category_id), data.get("STAGE_ID"), None, True)
            self._apply_stage(etid, data, stage, user_id, now)
        if multis:
            self._write_multifields(etid, item_id, multis, replace=False)
        self._has_flags(etid, item_id, data)
        self.db.execute(
            "INSERT INTO items(entity_type_id, id, data) VALUES(?, ?, ?)",
            (etid, item_id, dumps(data)),
        )
        if "STAGE_ID" in data:
            self._history(etid, item_id, 1, data, now)
        return item_id

    def first_statuses(self, entity_ids: list[str]) -> dict[str, str]:
        """The first status (by sort, then id) of each of these lists that has one: one
        query for all of them (an add asks for two or three), one row for each list, not
        every status of them all (half the cost of each add's defaults, issue 12)."""
        lists = " UNION ALL ".join(["SELECT ? AS entity_id"] * len(entity_ids))
        first: dict[str, str] = {}
        for row in self.db.all(
            "SELECT entity_id, (SELECT status_id FROM statuses s WHERE s.entity_id = e.entity_id "
            f"ORDER BY sort, id LIMIT 1) AS status_id FROM ({lists}) e",
            entity_ids,
        ):
            if row["status_id"] is not None:
                first.setdefault(row["entity_id"], str(row["status_id"]))
        return first

    def _add_defaults(self, etid: int, data: dict[str, Any]) -> None:
        """Defaults the add pages document: crm-deal-add.md (TYPE_ID and SOURCE_ID the first
        available, the IS_* flags N, TAX_VALUE 0.00), crm-contact-add.md (TYPE_ID, SOURCE_ID
        the first available, EXPORT Y), crm-company-add.md (COMPANY_TYPE, INDUSTRY, EMPLOYEES
        the first available), crm-item-add.md (the same in camelCase)."""
        defaults: dict[str, Any] = {}
        statuses: dict[str, str] = {}
        if etid == DEAL:
            statuses = {"TYPE_ID": "DEAL_TYPE", "SOURCE_ID": "SOURCE"}
            defaults = {
                "IS_RECURRING": "N",
                "IS_RETURN_CUSTOMER": "N",
                "IS_REPEATED_APPROACH": "N",
                "IS_MANUAL_OPPORTUNITY": "N",
                "TAX_VALUE": 0.0,
            }
        elif etid == CONTACT:
            statuses = {"TYPE_ID": "CONTACT_TYPE", "SOURCE_ID": "SOURCE"}
            defaults = {"EXPORT": "Y"}
        elif etid == COMPANY:
            statuses = {
                "COMPANY_TYPE": "COMPANY_TYPE",
                "INDUSTRY": "INDUSTRY",
                "EMPLOYEES": "EMPLOYEES",
            }
            defaults = {"IS_MY_COMPANY": "N"}
        elif etid == LEAD:
            statuses = {"SOURCE_ID": "SOURCE"}
            defaults = {"STATUS_ID": "NEW", "CURRENCY_ID": "RUB", "OPPORTUNITY": 0.0}
        empty = {n: entity for n, entity in statuses.items() if data.get(n) in (None, "")}
        if empty:
            first = self.first_statuses(sorted(set(empty.values())))
            for name, entity_id in empty.items():
                data[name] = first.get(entity_id)
        for name, value in defaults.items():
            if data.get(name) is None:
                data[name] = value

    def _has_flags(self, etid: int, item_id: int, data: dict[str, Any]) -> None:
        """HAS_PHONE / HAS_EMAIL of contacts and companies: "Y" or "N" by their multifields
        (crm-contact-get.md, crm-company-get.md)."""
        if etid not in (CONTACT, COMPANY):
            return
        found = {
            str(r["type_id"])
            for r in self.db.all(
                "SELECT DISTINCT type_id FROM multifields WHERE entity_type_id = ? "
                "AND element_id = ?",
                (etid, item_id),
            )
        }
        data["HAS_PHONE"] = "Y" if "PHONE" in found else "N"
        data["HAS_EMAIL"] = "Y" if "EMAIL" in found else "N"

    def _apply_stage(
        self, etid: int, data: dict[str, Any], stage: sqlite3.Row, user_id: int, now: str
    ) -> None:
        data["STAGE_ID"] = stage["status_id"]
        letter = semantic_letter(stage["semantics"])
        data["STAGE_SEMANTIC_ID"] = letter
        if etid == DEAL:
            data["CLOSED"] = "N" if letter == "P" else "Y"
        data["MOVED_TIME"] = now
        data[audit_name(etid, "moved_by")] = user_id

    def _history(
        self, etid: int, item_id: int, type_id: int, data: dict[str, Any], now: str
    ) -> None:
        self.db.execute(
            "INSERT INTO stage_history(entity_type_id, owner_id, type_id, category_id, "
            "stage_semantic_id, stage_id, created_time) VALUES(?,?,?,?,?,?,?)",
            (
                etid,
                item_id,
                type_id,
                data.get("CATEGORY_ID"),
                data.get("STAGE_SEMANTIC_ID"),
                data.get("STAGE_ID"),
                now,
            ),
        )

    def load_item(self, etid: int, item_id: int) -> dict[str, Any] | None:
        row = self.db.one(
            "SELECT data FROM items WHERE entity_type_id = ? AND id = ?", (etid, item_id)
        )
        if row is None:
            return None
        data: dict[str, Any] = loads(row["data"])
        data["ID"] = item_id
        return data

    def update_item(
        self, etid: int, item_id: int, raw: Mapping[str, Any], user_id: int, style: str
    ) -> dict[str, Any]:
        current = self.load_item(etid, item_id)
        if current is None:
            raise (
                errors.old_style("Not found")
                if style == "old"
                else errors.not_found_new("Item not found")
            )
        allow_category = style == "new"
        changes, multis = self._split_input(etid, raw, style, allow_category)
        self._check_values(etid, changes, style, creating=False)
        self._validate_multis(multis)
        now = self.now()
        new = dict(current)
        new.update(changes)
        if "CONTACT_IDS" in changes:
            new.pop("CONTACT_SORTS", None)  # the bindings were replaced (crm-deal-update.md)
        if etid == DEAL or etid >= SPA_MIN:
            old_category = int(current.get("CATEGORY_ID") or 0)
            requested_category = new.get("CATEGORY_ID")
            category_id = old_category if requested_category is None else int(requested_category)
            moving = category_id != old_category
            if moving and not self.category_exists(etid, category_id):
                raise errors.ApiError(
                    "CRM_FIELD_ERROR_VALUE_NOT_VALID", 'Invalid value for field "Pipeline"'
                )
            new["CATEGORY_ID"] = category_id
            requested = changes.get("STAGE_ID", current.get("STAGE_ID") if not moving else None)
            stage = self.resolve_stage(
                etid, category_id, requested, current.get("STAGE_ID"), moving
            )
            if stage["status_id"] != current.get("STAGE_ID") or moving:
                if etid >= SPA_MIN:
                    new["PREVIOUS_STAGE_ID"] = current.get("STAGE_ID")
                self._apply_stage(etid, new, stage, user_id, now)
                if moving:
                    type_id = 5
                else:
                    type_id = 2 if new["STAGE_SEMANTIC_ID"] == "P" else 3
                self._history(etid, item_id, type_id, new, now)
            else:
                new["STAGE_ID"] = current.get("STAGE_ID")
        if etid == DEAL:
            new["IS_NEW"] = "N"
        new[audit_name(etid, "modified")] = now
        new[audit_name(etid, "modified_by")] = user_id
        new.pop("ID", None)
        if multis:
            self._write_multifields(etid, item_id, multis, replace=False)
        self._has_flags(etid, item_id, new)
        self.db.execute(
            "UPDATE items SET data = ? WHERE entity_type_id = ? AND id = ?",
            (dumps(new), etid, item_id),
        )
        new["ID"] = item_id
        return new

    def set_item_extra(self, etid: int, item_id: int, key: str, value: Any) -> None:
        """Keep a value beside an item's fields (it is never rendered as a field)."""
        data = self.load_item(etid, item_id)
        if data is None:
            return
        data.pop("ID", None)
        data[key] = value
        self.db.execute(
            "UPDATE items SET data = ? WHERE entity_type_id = ? AND id = ?",
            (dumps(data), etid, item_id),
        )

    def convert_lead(self, lead_id: int, deal_id: int) -> None:
        """What converting a lead into a deal leaves (done on a portal's lead form, not
        through REST): the deal names the lead in its read-only LEAD_ID, and the lead is
        at «CONVERTED»."""
        for etid, item_id, key, value in (
            (DEAL, deal_id, "LEAD_ID", lead_id),
            (LEAD, lead_id, "STATUS_ID", "CONVERTED"),
        ):
            if self.load_item(etid, item_id) is None:
                raise errors.old_style("Not found")
            self.set_item_extra(etid, item_id, key, value)

    def delete_item(self, etid: int, item_id: int) -> bool:
        """Delete an item with what belongs to it alone: its phones and e-mails, and its
        timeline comments (crm-deal-delete.md: deleting a deal removes "all related
        objects, such as CRM activities, history, Timeline activities")."""
        cur = self.db.execute(
            "DELETE FROM items WHERE entity_type_id = ? AND id = ?", (etid, item_id)
        )
        self.db.execute(
            "DELETE FROM multifields WHERE entity_type_id = ? AND element_id = ?", (etid, item_id)
        )
        owner = TIMELINE_OWNERS.get(etid, f"dynamic_{etid}")
        self.db.execute(
            "DELETE FROM timeline_comments WHERE entity_type = ? AND entity_id = ?",
            (owner, item_id),
        )
        return cur.rowcount > 0

    # ----------------------------------------------------------- multifields
    @staticmethod
    def normalize_comm(type_id: str, value: str) -> str:
        """Phones compare by digits (a leading Russian trunk 8 read as 7); e-mails by case."""
        if type_id == "PHONE":
            digits = re.sub(r"\D", "", value)
            if len(digits) == 11 and digits.startswith("8"):
                digits = "7" + digits[1:]
            if len(digits) == 10:
                digits = "7" + digits
            return digits
        return value.strip().lower()

    def _write_multifields(
        self, etid: int, item_id: int, multis: Mapping[str, Any], replace: bool
    ) -> None:
        for type_id, entries in multis.items():
            if replace:
                self.db.execute(
                    "DELETE FROM multifields WHERE entity_type_id=? AND element_id=? AND type_id=?",
                    (etid, item_id, type_id),
                )
            for entry in as_list(entries):
                if not isinstance(entry, Mapping):
                    entry = {"VALUE": entry}
                value = "" if entry.get("VALUE") is None else str(entry.get("VALUE")).strip()
                value_type = str(entry.get("VALUE_TYPE") or "WORK")
                entry_id = intval(entry.get("ID")) if entry.get("ID") not in (None, "") else 0
                if entry_id:
                    if value == "" or str(entry.get("DELETE", "")).upper() == "Y":
                        self.db.execute(
                            "DELETE FROM multifields WHERE id=? AND element_id=?",
                            (entry_id, item_id),
                        )
                    else:
                        self.db.execute(
                            "UPDATE multifields SET value=?, value_type=?, norm=? "
                            "WHERE id=? AND element_id=?",
                            (
                                value,
                                value_type,
                                self.normalize_comm(type_id, value),
                                entry_id,
                                item_id,
                            ),
                        )
                elif value:
                    self.db.execute(
                        "INSERT INTO multifields(entity_type_id, element_id, type_id, value_type, "
                        "value, norm) VALUES(?,?,?,?,?,?)",
                        (
                            etid,
                            item_id,
                            type_id,
                            value_type,
                            value,
                            self.normalize_comm(type_id, value),
                        ),
                    )

    def multifields(self, etid: int, ids: list[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
        out: dict[int, dict[str, list[dict[str, Any]]]] = {}
        if not ids:
            return out
        marks = ",".join("?" * len(ids))
        for row in self.db.all(
            f"SELECT * FROM multifields WHERE entity_type_id = ? AND element_id IN ({marks}) "
            "ORDER BY id",
            (etid, *ids),
        ):
            out.setdefault(row["element_id"], {}).setdefault(row["type_id"], []).append(
                {
                    "ID": str(row["id"]),
                    "VALUE_TYPE": row["value_type"],
                    "VALUE": row["value"],
                    "TYPE_ID": row["type_id"],
                }
            )
        return out

    # ------------------------------------------------------------- rendering
    def render(
        self,
        etid: int,
        data: dict[str, Any],
        style: str,
        names: list[str],
        multis: dict[str, list[dict[str, Any]]] | None = None,
        original_uf: bool = False,
    ) -> dict[str, Any]:
        return self.renderer(etid, style, names, original_uf)(data, multis)

    def renderer(
        self, etid: int, style: str, names: list[str], original_uf: bool = False
    ) -> Callable[[dict[str, Any], dict[str, list[dict[str, Any]]] | None], dict[str, Any]]:
        """``render`` for many items of one list: what each field needs (its definition,
        its key in the answer) is looked up once, not once per item (issue 12)."""
        by_name, _ = self.item_fields(etid)
        old = style == "old"
        # What a text value of each field shows as, decided once: itself, but a float
        # field's (old style: formatted; new: a number) and a boolean's in the new style
        # (Y/N); else each value goes through _old_style_value / _new_style_value, which
        # say how every value renders (the fast paths below answer as they would).
        as_is = (FLOAT,) if old else (FLOAT, BOOL01)
        plan = []
        for name in names:
            fdef = by_name[name]
            key = name if old else fdef.name if original_uf and fdef.is_uf else fdef.camel
            plan.append(
                (name, fdef, key, fdef.kind == DATE, fdef.kind == MULTI, fdef.kind not in as_is)
            )
        with_fm = style == "new" and etid in (CONTACT, COMPANY)
        # a date field's text as the portal shows it, per date: the items of one list share
        # their dates often (render_date is a pure function of the text and the time zone)
        dates: dict[str, str] = {}

        def render_date_text(value: str) -> str:
            shown = dates.get(value)
            if shown is None:
                shown = dates[value] = render_date(value, self.tz) if value else value
            return shown

        def render_item(
            data: dict[str, Any], multis: dict[str, list[dict[str, Any]]] | None
        ) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, fdef, key, is_date, is_multi, text_as_is in plan:
                if is_multi:
                    entries = (multis or {}).get(name)
                    if old and entries:
                        out[name] = entries
                    continue
                value = data.get(name)
                if text_as_is and type(value) is str:
                    out[key] = render_date_text(value) if is_date else value
                    continue
                if old and (value is None or text_as_is and type(value) is int):
                    out[name] = None if value is None else str(value)  # an id, a sort, ...
                    continue
                if is_date:
                    value = self._render_dates(fdef, value)
                if old:
                    out[name] = self._old_style_value(fdef, name, value)
                else:
                    out[key] = self._new_style_value(etid, fdef, name, value)
            if with_fm and multis is not None:
                out["fm"] = self._fm(multis)
            return out

        return render_item

    def _render_dates(self, fdef: FieldDef, value: Any) -> Any:
        """A date field's stored value (or values) as the portal shows it, in its time zone;
        any other value as it is."""
        if fdef.kind == DATE and isinstance(value, str) and value:
            return render_date(value, self.tz)
        if fdef.kind == DATE and isinstance(value, list):
            return [render_date(v, self.tz) if isinstance(v, str) and v else v for v in value]
        return value

    @staticmethod
    def _old_style_value(fdef: FieldDef, name: str, value: Any) -> Any:
        """A value as the old API (crm.deal.get and the like) shows it: text, a list of
        texts, or None."""
        if fdef.kind == BOOL01 and value is not None:
            return str(value)
        if fdef.kind == FLOAT and value is not None and name in PHP_FLOATS:
            return php_float(float(value))
        if fdef.kind == FLOAT and value is not None and not fdef.is_uf:
            return f"{float(value):.2f}"
        if isinstance(value, list):
            return [str(v) for v in value]
        if value is None:
            return None
        if isinstance(value, float):
            return repr(value) if not value.is_integer() else str(int(value))
        return str(value)

    @staticmethod
    def _new_style_value(etid: int, fdef: FieldDef, name: str, value: Any) -> Any:
        """A value as the new API (crm.item.*) shows it: typed, Y/N for a boolean."""
        if fdef.kind == BOOL01 and value is not None:
            value = "Y" if value else "N"
        if (
            fdef.kind == FLOAT
            and not fdef.is_uf
            and isinstance(value, float)
            and value.is_integer()
        ):
            value = int(value)  # crm-item-update.md: "opportunity": 10000, "taxValue": 0
        if fdef.multiple and value is None:
            value = []
        if value is None and etid == DEAL and name in ("COMPANY_ID", "CONTACT_ID"):
            value = 0  # crm-item-update.md's example: "companyId": 0, "contactId": 0
        return value

    @staticmethod
    def _fm(multis: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """A contact's or company's phones, e-mails and the like as the new API's "fm"."""
        return [
            {
                "id": int(e["ID"]),
                "typeId": e["TYPE_ID"],
                "valueType": e["VALUE_TYPE"],
                "value": e["VALUE"],
            }
            for entries in multis.values()
            for e in entries
        ]

    def select_names(self, etid: int, select: Any, style: str) -> tuple[list[str], bool]:
        """Field names a list returns, and whether multifields were asked for."""
        by_name, by_camel = self.item_fields(etid)
        wanted = [str(s) for s in as_list(select)]
        if not wanted:
            wanted = ["*", "UF_*"]
        names: list[str] = ["ID"]
        multis = False
        for item in wanted:
            if item == "*":
                names += [n for n, f in by_name.items() if f.in_star and not f.is_uf]
                if style == "new":
                    names += [n for n, f in by_name.items() if f.is_uf or f.kind == MULTI]
                    names += [n for n, f in by_name.items() if not f.in_star and f.kind != MULTI]
                    multis = True
            elif item in ("UF_*", "uf_*", "ufCrm*"):
                names += [n for n, f in by_name.items() if f.is_uf]
            else:
                fdef = (
                    by_name.get(item)
                    if style == "old"
                    else (by_camel.get(item) or by_name.get(item))
                )
                if fdef is None or (style == "old" and etid == DEAL and fdef.name == "CONTACT_IDS"):
                    continue  # crm-deal-list.md: select does not support CONTACT_IDS
                names.append(fdef.name)
                if fdef.kind == MULTI:
                    multis = True
        seen: set[str] = set()
        ordered = [n for n in names if not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]
        return ordered, multis

    def get_names(self, etid: int, style: str) -> list[str]:
        by_name, _ = self.item_fields(etid)
        if style == "old":
            # CONTACT_IDS / COMPANY_IDS are write-only in the old API.
            return [n for n, f in by_name.items() if f.in_star or f.kind == MULTI]
        return [n for n in by_name if by_name[n].kind != MULTI]

    def list_items(
        self,
        etid: int,
        *,
        flt: Any,
        order: Any,
        select: Any,
        start: int,
        style: str,
        cost: Callable[[float], None],
        original_uf: bool = False,
    ) -> tuple[list[dict[str, Any]], int | None, int | None]:
        resolve = self.resolver(etid, style)
        if style == "old" and etid == DEAL:
            # crm-deal-list.md: "The filter does not support the field CONTACT_IDS" (nor does
            # select); an old-style list ignores a key it does not know.
            full = resolve
            resolve = lambda key: None if str(key).upper() == "CONTACT_IDS" else full(key)  # noqa: E731
        builder = FilterBuilder(resolve, style, self.tz, etid)
        where = builder.build(flt)
        for name in builder.looked_up:
            self.db.index_field(name)
        order_sql = build_order(order, resolve, style)
        names, want_multis = self.select_names(etid, select, style)
        params = (etid, *builder.params)
        total: int | None = None
        next_start: int | None = None
        offset = max(start, 0)
        # A select of the ID alone (a paged read's own) reads no field from the item's data:
        # it is neither read nor decoded (the ID is the row's, and a multifield comes from
        # its own table).
        by_name, _ = self.item_fields(etid)
        read_data = any(n != "ID" and by_name[n].kind != MULTI for n in names)
        rows = self.db.all(
            f"SELECT id{', data' if read_data else ''} FROM items "
            f"WHERE entity_type_id = ? AND {where} "
            f"ORDER BY {order_sql} LIMIT {PAGE} OFFSET {offset}",
            params,
        )
        cost(self.costs.rows(0, offset))
        if start >= 0:
            count_row = self.db.one(
                f"SELECT COUNT(*) AS n FROM items WHERE entity_type_id = ? AND {where}", params
            )
            total = int(count_row["n"]) if count_row else 0
            cost(self.costs.rows(total, 0))
            if offset + PAGE < total:
                next_start = offset + PAGE
        ids = [int(r["id"]) for r in rows]
        multis = self.multifields(etid, ids) if want_multis else {}
        out = []
        render = self.renderer(etid, style, names, original_uf)
        for row in rows:
            data = loads(row["data"]) if read_data else {}
            data["ID"] = row["id"]
            out.append(render(data, multis.get(row["id"], {}) if want_multis else None))
        return out, (total if start >= 0 else 0), next_start


class ApiErrorStage(errors.ApiError):
    def __init__(self) -> None:
        super().__init__("", "Stage in new category is not found", 400)


_NEW_PORTAL: Database | None = None
_NEW_PORTAL_LOCK = threading.Lock()


def new_portal_db() -> Database:
    """A new portal's database in memory: a copy of a portal made once per process (its
    schema, users, default pipeline and dictionaries), not those made again: 60 statements
    and 1.3 ms a sandbox, which the tests make thousands of (issue 12). What a portal
    starts with depends on none of its settings (stage names follow the language only in
    pipelines made later); its webhook, which differs per portal, is the sandbox's own."""
    global _NEW_PORTAL
    with _NEW_PORTAL_LOCK:
        if _NEW_PORTAL is None:
            made = Database()
            Portal(made, UTC, time.time)  # initializes it
            _NEW_PORTAL = made
    return Database(copy_of=_NEW_PORTAL)
