"""Bitrix24's rules are written once, in portal/ (issue 12): the stage-id prefix and its
21-character cut, the entity-type numbers, field-name prefixes and the pipeline matcher.
The sandbox keeps its own copy on purpose (it plays the portal), and is not searched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from b24kit.portal.ids import (
    EntityType,
    cut_forms,
    kept_code,
    stage_entity,
    stage_prefix,
    status_id,
    template_name,
)

SRC = Path(__file__).resolve().parent.parent / "src" / "b24kit"
HOME = SRC / "portal" / "ids.py"
RULES = {
    "the deal stage prefix": r'f"C\{',
    "the smart-process stage prefix": r'f"DT\{',
    "the stage entity": r'f"DEAL_STAGE_\{|f"DYNAMIC_\{[^}]+\}_STAGE',
    "the 21-character cut": r"\[:21\]|=\s*21\b|\b21\s*-",
    "the deal's entity type number": r'"entityTypeId": 2\b|etid == 2\b|entity_type_id == 2\b',
    "a smart process's field prefix": r'f"UF_CRM_\{',
    "a smart process's field entity": r'f"CRM_\{',
    "a crm field's link key": r'f"DYNAMIC_\{[^}]+\}"',
}


def sources() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "sandbox" not in p.parts]


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_lives_in_one_place(rule: str) -> None:
    pattern = re.compile(RULES[rule])
    found = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p in sources()
        if p != HOME
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#") and '"""' not in line
    ]
    assert found == [], f"{rule} is written outside portal/ids.py"
    assert pattern.search(HOME.read_text(encoding="utf-8")) or rule.startswith("the deal's"), (
        f"{rule} is in portal/ids.py"
    )


def test_one_pipeline_matcher() -> None:
    defined = [
        p.relative_to(SRC)
        for p in sources()
        if re.search(
            r"^def match_pipelines?\(|def _match_one\(", p.read_text(encoding="utf-8"), re.M
        )
    ]
    assert defined == [Path("portal/match.py")]
    for user in ("blueprint/plan_pipelines.py", "blueprint/locate.py"):
        assert "match_pipelines(" in (SRC / user).read_text(encoding="utf-8"), user


@pytest.mark.parametrize(
    ("etid", "category", "entity", "prefix"),
    [
        (2, 0, "DEAL_STAGE", ""),
        (2, 7, "DEAL_STAGE_7", "C7:"),
        (1030, 12, "DYNAMIC_1030_STAGE_12", "DT1030_12:"),
    ],
)
def test_stage_ids(etid: int, category: int, entity: str, prefix: str) -> None:
    assert stage_entity(etid, category) == entity
    assert stage_prefix(etid, category) == prefix


def test_the_cut() -> None:
    assert status_id("C12:", "PREPAYMENT_INVOICE") == "C12:PREPAYMENT_INVOIC"
    assert status_id("C1:", "PREPAYMENT_INVOICE") == "C1:PREPAYMENT_INVOICE"
    assert status_id("DT1030_12:", "A_VERY_LONG_SMART_PROCESS_CODE").endswith("_CODE"), (
        "smart-process ids are not cut"
    )
    assert kept_code("C1234:", "PREPAYMENT_INVOICE") == "PREPAYMENT_INVO"
    assert "PREPAYMENT_INVOIC" in cut_forms("PREPAYMENT_INVOICE")
    assert template_name(EntityType.DEAL, "PREPAYMENT_INVOIC") == "Prepayment invoice"
    assert template_name(EntityType.DEAL, "PREPAYMENT") is None
    assert template_name(1030, "CLIENT") == "Approval"
