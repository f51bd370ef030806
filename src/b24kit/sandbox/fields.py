"""Field definitions of CRM entities and the UPPER_CASE <-> camelCase name rules.

Items are stored under their old-style UPPER_CASE names; ``crm.item.*`` converts to and
from camelCase with :func:`camel_name` (rules in docs/sandbox.md, from the API notes §9.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEAL, CONTACT, COMPANY, LEAD = 2, 3, 4, 1
SPA_MIN = 128

# storage kinds
INT, FLOAT, STR, YN, DATE, DATETIME, MULTI, BOOL01 = (
    "int",
    "float",
    "str",
    "yn",
    "date",
    "datetime",
    "multifield",
    "bool01",
)

_KIND_BY_TYPE = {
    "integer": INT,
    "user": INT,
    "crm_company": INT,
    "crm_contact": INT,
    "crm_category": INT,
    "crm_lead": INT,
    "crm_quote": INT,
    "double": FLOAT,
    "char": YN,
    "date": DATE,
    "datetime": DATETIME,
    "crm_multifield": MULTI,
}
_KIND_BY_UF_TYPE = {
    "integer": INT,
    "double": FLOAT,
    "enumeration": INT,
    "employee": INT,
    "boolean": BOOL01,
    "date": DATE,
    "datetime": DATETIME,
}
UF_TYPES = [
    ("string", "String"),
    ("integer", "Integer"),
    ("double", "Number"),
    ("boolean", "Yes/No"),
    ("enumeration", "List"),
    ("datetime", "Date/Time"),
    ("date", "Date"),
    ("money", "Money"),
    ("url", "Link"),
    ("address", "Google Maps address"),
    ("file", "File"),
    ("employee", "Link to employee"),
    ("crm_status", "Link to CRM reference"),
    ("iblock_section", "Link to information block sections"),
    ("iblock_element", "Link to information block element"),
    ("crm", "Link to CRM element"),
]
UF_TYPE_IDS = {t for t, _ in UF_TYPES}
MULTIFIELD_TYPES = ("PHONE", "EMAIL", "WEB", "IM", "LINK")


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    kind: str
    camel: str
    title: str = ""
    required: bool = False
    read_only: bool = False
    immutable: bool = False
    multiple: bool = False
    in_star: bool = True
    status_type: str | None = None
    user_field: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def is_uf(self) -> bool:
        return self.user_field is not None


_SPECIAL_CAMEL = {
    "DATE_CREATE": "createdTime",
    "DATE_MODIFY": "updatedTime",
    "CREATED_BY_ID": "createdBy",
    "MODIFY_BY_ID": "updatedBy",
    "MOVED_BY_ID": "movedBy",
}


def generic_camel(name: str) -> str:
    words = name.lower().split("_")
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])


def uf_camel(name: str) -> str:
    """``UF_CRM_MANAGER_NOTE`` -> ``ufCrmManagerNote``; ``UF_CRM_17212`` -> ``ufCrm_17212``;
    ``UF_CRM_3_1747`` -> ``ufCrm3_1747``; ``UF_CRM_3_DIGIT10`` -> ``ufCrm_3_DIGIT10``."""
    rest = name[len("UF_CRM_") :] if name.startswith("UF_CRM_") else name
    match = re.fullmatch(r"(?:(\d+)_)?(.*)", rest)
    assert match is not None
    obj, tail = match.group(1) or "", match.group(2)
    if re.fullmatch(r"[A-Z]+(?:_[A-Z]+)*", tail):
        return "ufCrm" + obj + "".join(w.capitalize() for w in tail.split("_"))
    if tail.isdigit() and obj:
        return f"ufCrm{obj}_{tail}"
    return "ufCrm_" + rest


def camel_name(name: str) -> str:
    if name.startswith("UF_"):
        return uf_camel(name)
    if name.startswith("PARENT_ID_"):
        return "parentId" + name[len("PARENT_ID_") :]
    return _SPECIAL_CAMEL.get(name) or generic_camel(name)


def _defs(spec: str, statuses: dict[str, str] | None = None) -> dict[str, FieldDef]:
    """Parse ``NAME:type:flags`` lines; flags r=read-only i=immutable q=required
    m=multiple x=not in ``select *``."""
    out: dict[str, FieldDef] = {}
    for line in spec.split():
        name, ftype, *rest = line.split(":")
        flags = rest[0] if rest else ""
        out[name] = FieldDef(
            name=name,
            type=ftype,
            kind=_KIND_BY_TYPE.get(ftype, STR),
            camel=camel_name(name),
            title=name,
            required="q" in flags,
            read_only="r" in flags,
            immutable="i" in flags,
            multiple="m" in flags,
            in_star="x" not in flags,
            status_type=(statuses or {}).get(name),
        )
    return out


_UTM = " ".join(f"UTM_{p}:string" for p in ("SOURCE", "MEDIUM", "CAMPAIGN", "CONTENT", "TERM"))
_MULTI = " ".join(f"{m}:crm_multifield:mx" for m in MULTIFIELD_TYPES)

DEAL_FIELDS = _defs(
    "ID:integer:r TITLE:string TYPE_ID:crm_status CATEGORY_ID:crm_category:i "
    "STAGE_ID:crm_status STAGE_SEMANTIC_ID:string:r IS_NEW:char:r IS_RECURRING:char "
    "IS_RETURN_CUSTOMER:char IS_REPEATED_APPROACH:char PROBABILITY:integer "
    "CURRENCY_ID:crm_currency OPPORTUNITY:double IS_MANUAL_OPPORTUNITY:char TAX_VALUE:double "
    "COMPANY_ID:crm_company CONTACT_ID:crm_contact CONTACT_IDS:crm_contact:mx "
    "QUOTE_ID:crm_quote:r BEGINDATE:date CLOSEDATE:date OPENED:char CLOSED:char "
    "COMMENTS:string ASSIGNED_BY_ID:user CREATED_BY_ID:user:r MODIFY_BY_ID:user:r "
    "MOVED_BY_ID:user:r DATE_CREATE:datetime:r DATE_MODIFY:datetime:r MOVED_TIME:datetime:r "
    "SOURCE_ID:crm_status SOURCE_DESCRIPTION:string LEAD_ID:crm_lead:r "
    "ADDITIONAL_INFO:string LOCATION_ID:location ORIGINATOR_ID:string ORIGIN_ID:string "
    f"{_UTM} LAST_ACTIVITY_TIME:datetime:r LAST_ACTIVITY_BY:user:r",
    {"TYPE_ID": "DEAL_TYPE", "STAGE_ID": "DEAL_STAGE", "SOURCE_ID": "SOURCE"},
)
CONTACT_FIELDS = _defs(
    "ID:integer:r HONORIFIC:crm_status NAME:string SECOND_NAME:string LAST_NAME:string "
    "BIRTHDATE:date TYPE_ID:crm_status SOURCE_ID:crm_status SOURCE_DESCRIPTION:string "
    "POST:string COMMENTS:string OPENED:char EXPORT:char HAS_PHONE:char:r HAS_EMAIL:char:r "
    "ASSIGNED_BY_ID:user CREATED_BY_ID:user:r MODIFY_BY_ID:user:r DATE_CREATE:datetime:r "
    "DATE_MODIFY:datetime:r COMPANY_ID:crm_company COMPANY_IDS:crm_company:mx "
    "LEAD_ID:crm_lead:r ORIGINATOR_ID:string ORIGIN_ID:string ORIGIN_VERSION:string "
    f"{_UTM} {_MULTI} LAST_ACTIVITY_TIME:datetime:r",
    {"TYPE_ID": "CONTACT_TYPE", "SOURCE_ID": "SOURCE", "HONORIFIC": "HONORIFIC"},
)
COMPANY_FIELDS = _defs(
    "ID:integer:r TITLE:string COMPANY_TYPE:crm_status INDUSTRY:crm_status "
    "EMPLOYEES:crm_status CURRENCY_ID:crm_currency REVENUE:double COMMENTS:string "
    "OPENED:char IS_MY_COMPANY:char HAS_PHONE:char:r HAS_EMAIL:char:r ASSIGNED_BY_ID:user "
    "CREATED_BY_ID:user:r MODIFY_BY_ID:user:r DATE_CREATE:datetime:r DATE_MODIFY:datetime:r "
    f"LEAD_ID:crm_lead:r ORIGINATOR_ID:string ORIGIN_ID:string {_UTM} {_MULTI} "
    "LAST_ACTIVITY_TIME:datetime:r",
    {"COMPANY_TYPE": "COMPANY_TYPE", "INDUSTRY": "INDUSTRY", "EMPLOYEES": "EMPLOYEES"},
)
# crm-lead-fields.md (the fields a report of first contacts reads; STATUS_ID "CONVERTED"
# once the lead became a deal, which then names it in its LEAD_ID)
LEAD_FIELDS = _defs(
    "ID:integer:r TITLE:string NAME:string LAST_NAME:string COMPANY_TITLE:string "
    "SOURCE_ID:crm_status SOURCE_DESCRIPTION:string STATUS_ID:crm_status "
    "STATUS_DESCRIPTION:string CURRENCY_ID:crm_currency OPPORTUNITY:double COMMENTS:string "
    "OPENED:char ASSIGNED_BY_ID:user CREATED_BY_ID:user:r MODIFY_BY_ID:user:r "
    "DATE_CREATE:datetime:r DATE_MODIFY:datetime:r COMPANY_ID:crm_company "
    f"CONTACT_ID:crm_contact ORIGINATOR_ID:string ORIGIN_ID:string {_UTM} {_MULTI}",
    {"SOURCE_ID": "SOURCE", "STATUS_ID": "STATUS"},
)
SPA_FIELDS = _defs(
    "ID:integer:r XML_ID:string TITLE:string CREATED_BY:user:r UPDATED_BY:user:r "
    "MOVED_BY:user:r CREATED_TIME:datetime:r UPDATED_TIME:datetime:r MOVED_TIME:datetime:r "
    "CATEGORY_ID:crm_category OPENED:char STAGE_ID:crm_status PREVIOUS_STAGE_ID:crm_status:r "
    "STAGE_SEMANTIC_ID:string:r BEGINDATE:date CLOSEDATE:date COMPANY_ID:crm_company "
    "CONTACT_ID:crm_contact CONTACT_IDS:crm_contact:m OPPORTUNITY:double "
    "IS_MANUAL_OPPORTUNITY:char TAX_VALUE:double CURRENCY_ID:crm_currency "
    "MYCOMPANY_ID:crm_company SOURCE_ID:crm_status SOURCE_DESCRIPTION:string "
    "WEBFORM_ID:integer:r ASSIGNED_BY_ID:user OBSERVERS:user:m LAST_ACTIVITY_TIME:datetime:r "
    "LAST_ACTIVITY_BY:user:r",
    {"SOURCE_ID": "SOURCE"},
)

# Names of the bookkeeping fields, which differ between deals/contacts and smart processes.
AUDIT_NAMES = {
    "created": ("DATE_CREATE", "CREATED_TIME"),
    "modified": ("DATE_MODIFY", "UPDATED_TIME"),
    "created_by": ("CREATED_BY_ID", "CREATED_BY"),
    "modified_by": ("MODIFY_BY_ID", "UPDATED_BY"),
    "moved_by": ("MOVED_BY_ID", "MOVED_BY"),
}


def audit_name(etid: int, what: str) -> str:
    old, new = AUDIT_NAMES[what]
    return new if etid >= SPA_MIN else old


def system_fields(etid: int) -> dict[str, FieldDef]:
    if etid == DEAL:
        return DEAL_FIELDS
    if etid == CONTACT:
        return CONTACT_FIELDS
    if etid == COMPANY:
        return COMPANY_FIELDS
    if etid == LEAD:
        return LEAD_FIELDS
    return SPA_FIELDS


def uf_field_def(row: dict[str, Any]) -> FieldDef:
    utype = row["USER_TYPE_ID"]
    return FieldDef(
        name=row["FIELD_NAME"],
        type=utype,
        kind=_KIND_BY_UF_TYPE.get(utype, STR),
        camel=uf_camel(row["FIELD_NAME"]),
        title=row["FIELD_NAME"],
        required=row.get("MANDATORY") == "Y",
        multiple=row.get("MULTIPLE") == "Y",
        user_field=row,
    )


def parent_field_def(parent_etid: int) -> FieldDef:
    name = f"PARENT_ID_{parent_etid}"
    return FieldDef(name=name, type="crm_entity", kind=INT, camel=camel_name(name), title=name)


def uf_entity_id(etid: int, type_id: int | None = None) -> str:
    if etid == DEAL:
        return "CRM_DEAL"
    if etid == CONTACT:
        return "CRM_CONTACT"
    if etid == COMPANY:
        return "CRM_COMPANY"
    if etid == LEAD:
        return "CRM_LEAD"
    return f"CRM_{type_id}"


def describe(fdef: FieldDef, style: str) -> dict[str, Any]:
    """A field's entry in ``crm.deal.fields`` (old) or ``crm.item.fields`` (new)."""
    out: dict[str, Any] = {
        "type": fdef.type,
        "isRequired": fdef.required,
        "isReadOnly": fdef.read_only,
        "isImmutable": fdef.immutable,
        "isMultiple": fdef.multiple,
        "isDynamic": fdef.is_uf,
        "title": fdef.title,
    }
    if fdef.status_type:
        out["statusType"] = fdef.status_type
    if fdef.name.startswith("PARENT_ID_"):
        out["settings"] = {"parentEntityTypeId": int(fdef.name.rsplit("_", 1)[1])}
    if fdef.user_field is not None:
        uf = fdef.user_field
        label = uf.get("EDIT_FORM_LABEL") or {}
        text = label.get("en") or label.get("ru") or fdef.name if isinstance(label, dict) else label
        out.update(
            listLabel=text, formLabel=text, filterLabel=text, settings=uf.get("SETTINGS", {})
        )
        if uf["USER_TYPE_ID"] == "enumeration":
            out["items"] = [{"ID": str(i["ID"]), "VALUE": i["VALUE"]} for i in uf.get("LIST", [])]
    if style == "new":
        out["upperName"] = fdef.name
    return out
