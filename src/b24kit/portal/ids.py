"""Bitrix24's naming rules, written once: entity types, stage ids and their prefixes,
custom-field names, link-field values, and b24kit's own tags and markers.

Every job (deploy, migrate, check) and the idempotency lookups take these from here; the
sandbox keeps its own copy on purpose (it plays the portal, and must not agree with
b24kit by construction).
"""

from __future__ import annotations

import re
from enum import IntEnum


class EntityType(IntEnum):
    """CRM entity type ids (crm-type docs, "entityTypeId"). Smart processes have their own,
    128–191 or from 1030 up."""

    LEAD = 1
    DEAL = 2
    CONTACT = 3
    COMPANY = 4


# blueprint words for the built-in entities (relations and crm-type field links)
ENTITY_WORDS: dict[str, EntityType] = {
    "lead": EntityType.LEAD,
    "deal": EntityType.DEAL,
    "contact": EntityType.CONTACT,
    "company": EntityType.COMPANY,
}
WORD_OF = {etid: word for word, etid in ENTITY_WORDS.items()}
# the settings key of a crm-type field that may link to the entity (crm.userfield.types)
LINK_KEYS = {"deal": "DEAL", "contact": "CONTACT", "company": "COMPANY", "lead": "LEAD"}

# b24kit's tag on what it manages: a deal pipeline's originatorId, items' ORIGINATOR_ID
ORIGINATOR = "b24kit"
LINKS_ORIGINATOR = "b24kit-links"  # children made by audit/sync repairs
# b24kit's marker in a timeline comment, so the comment can be found again
MARKER = re.compile(r"\[b24kit [^\]]+\]")

# A deal stage id ("C{pipeline}:" + code) is cut to 21 characters by the portal (API
# notes §5.2; docs/sandbox.md); smart-process stage ids are not cut.
DEAL_STAGE_ID_MAX = 21
# the longest deal-pipeline prefix b24kit plans for: "C9999:"
LONGEST_DEAL_PREFIX = len("C9999:")

SEMANTIC_CODE = {"process": "", "success": "S", "failure": "F"}
SEMANTIC_WORD = {None: "process", "": "process", "S": "success", "F": "failure"}

# Stages a new pipeline comes with: code -> English name (API notes §5.2). A deal code
# longer than its pipeline's prefix allows is kept cut (PREPAYMENT_INVOIC).
DEAL_TEMPLATE = {
    "NEW": "New",
    "PREPARATION": "Document preparation",
    "PREPAYMENT_INVOICE": "Prepayment invoice",
    "EXECUTING": "In progress",
    "FINAL_INVOICE": "Final invoice",
    "WON": "Deal successful",
    "LOSE": "Deal failed",
    "APOLOGY": "Analyze failure",
}
SPA_TEMPLATE = {
    "NEW": "Start",
    "PREPARATION": "Preparation",
    "CLIENT": "Approval",
    "SUCCESS": "Success",
    "FAIL": "Failure",
}


def template_stages(etid: int) -> dict[str, str]:
    return DEAL_TEMPLATE if etid == EntityType.DEAL else SPA_TEMPLATE


def template_name(etid: int, code: str) -> str | None:
    """The English name of the template stage ``code`` (as the portal may have cut it),
    or None when it is not one."""
    for full, name in template_stages(etid).items():
        if code == full or (etid == EntityType.DEAL and code in cut_forms(full)):
            return name
    return None


def stage_entity(etid: int, category_id: int | str) -> str:
    """The ENTITY_ID of a pipeline's stages in crm.status."""
    if etid == EntityType.DEAL:
        return "DEAL_STAGE" if category_id in (0, "0") else f"DEAL_STAGE_{category_id}"
    return f"DYNAMIC_{etid}_STAGE_{category_id}"


def stage_prefix(etid: int, category_id: int | str) -> str:
    """What a pipeline's stage ids start with: "" (the default deal pipeline), "C7:",
    "DT1030_12:"."""
    if etid == EntityType.DEAL:
        return "" if category_id in (0, "0") else f"C{category_id}:"
    return f"DT{etid}_{category_id}:"


def status_id(prefix: str, code: str) -> str:
    """A stage's STATUS_ID as the portal keeps it: prefix + code, deal ids ("C…:") cut."""
    full = code if code.startswith(prefix) else prefix + code
    is_deal = prefix == "" or prefix.startswith("C")
    return full[:DEAL_STAGE_ID_MAX] if is_deal else full


def kept_code(prefix: str, code: str) -> str:
    """The part of ``code`` the portal keeps after the prefix."""
    return status_id(prefix, code)[len(prefix) :]


def cut_forms(code: str) -> tuple[str, ...]:
    """Every form a deal stage code may take once cut, for any pipeline id up to 9999:
    the code of a template stage of a pipeline whose id is not known yet."""
    forms = {code[: DEAL_STAGE_ID_MAX - len(f"C{'9' * digits}:")] for digits in range(1, 5)}
    return tuple(sorted(forms | {code}, key=len, reverse=True))


def stage_code(status: str) -> str:
    """The code part of a STATUS_ID: after the pipeline's prefix."""
    return status.rsplit(":", 1)[-1]


def uf_name(code: str) -> str:
    """A deal (contact, company, lead) custom field's FIELD_NAME from its code."""
    name = code.strip().upper()
    if name.startswith("UF_CRM_"):
        return name
    return "UF_CRM_" + (name[3:] if name.startswith("UF_") else name)


def spa_uf_prefix(type_id: int | str) -> str:
    """A smart process's own fields are named UF_CRM_{type id}_CODE (its id, not its
    entityTypeId)."""
    return f"UF_CRM_{type_id}_"


def spa_uf_entity(type_id: int | str) -> str:
    """The userfieldconfig entityId of a smart process's fields."""
    return f"CRM_{type_id}"


def dynamic_key(etid: int | str) -> str:
    """The settings key of a crm-type field that may link to smart process ``etid``."""
    return f"DYNAMIC_{etid}"


def deal_ref(deal_id: int | str) -> str:
    """A deal as a crm-type field holds it: D_12."""
    return f"D_{deal_id}"


def item_ref(etid: int, item_id: int | str) -> str:
    """A smart-process item as a crm-type field holds it: T{etid in hex}_{id}."""
    return f"T{etid:x}_{item_id}"


def parent_field(etid: int) -> str:
    """The field that links an item to its parent of smart process ``etid``."""
    return f"PARENT_ID_{etid}"
