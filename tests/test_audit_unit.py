"""The audit rules as a pure function: hand-built deals in, findings and their repairs out
(no portal, milliseconds)."""

from __future__ import annotations

from b24kit.blueprint.model import Link
from b24kit.client.executor import Ref
from b24kit.links.audit import audit_deals, child_repair
from b24kit.links.model import Deal, ResolvedLink
from b24kit.portal.snapshot import PipelineSnap, StageSnap


def pipeline(cid: int, name: str, codes: list[tuple[str, str, str]]) -> PipelineSnap:
    p = f"C{cid}:"
    return PipelineSnap(
        cid,
        2,
        name,
        100,
        False,
        stages=[
            StageSnap(i, p + code, code, title, (i + 1) * 10, None, sem, False)
            for i, (code, title, sem) in enumerate(codes)
        ],
    )


SALES = pipeline(
    1,
    "Продажи",
    [
        ("NEW", "Новая", "process"),
        ("ESTIMATE", "Оценка", "process"),
        ("DONE", "Оценка готова", "process"),
        ("WON", "Успех", "success"),
    ],
)
LOGISTICS = pipeline(
    2,
    "Логистика",
    [
        ("NEW", "Новая оценка", "process"),
        ("APPROVAL", "Согласование", "process"),
        ("WON", "Принята", "success"),
    ],
)
LINK = ResolvedLink(
    Link.model_validate(
        {
            "name": "estimate",
            "parent": {"pipeline": "sales", "stage": "ESTIMATE"},
            "child": {"pipeline": "logistics", "stage": "NEW"},
            "child_field": "PARENT_DEAL",
            "parent_field": "CHILD_DEAL",
            "mirror_field": "CHILD_STAGE",
            "copy_fields": ["OPPORTUNITY"],
        }
    ),
    [SALES],
    LOGISTICS,
    {1: "C1:ESTIMATE"},
    "C2:NEW",
    {"C2:APPROVAL": {1: "C1:DONE"}},
    "UF_CRM_PARENT_DEAL",
    "UF_CRM_CHILD_DEAL",
    "UF_CRM_CHILD_STAGE",
    ["OPPORTUNITY"],
)


def parent(
    ident: int,
    stage: str = "C1:ESTIMATE",
    child: int | None = None,
    mirror: str | None = None,
    semantic: str = "P",
) -> Deal:
    return Deal(ident, 1, stage, semantic, None, child, mirror, None, 0.0)


def child(ident: int, of: int | None, stage: str = "C2:NEW") -> Deal:
    return Deal(ident, 2, stage, "P", of, None, None, None, 0.0)


def rules(deals: list[Deal]) -> list[tuple[str, list[int]]]:
    return [(f.rule, f.deals) for f in audit_deals(LINK, deals)]


def test_a_consistent_pair_is_clean() -> None:
    assert rules([parent(10, child=20, mirror="Новая оценка"), child(20, 10)]) == []


def test_a_parent_past_the_trigger_without_a_child() -> None:
    [finding] = audit_deals(LINK, [parent(10)])
    assert finding.rule == "L001"
    add, back = finding.repair
    assert (add.method, add.kind) == ("crm.deal.add", "create") and add.key is not None
    assert add.params["fields"]["UF_CRM_PARENT_DEAL"] == "D_10"
    assert add.params["fields"]["ORIGIN_ID"] == "estimate:10"
    assert back.params["fields"]["UF_CRM_CHILD_DEAL"] == Ref(add.name, fmt="D_{}")
    assert back.params["fields"]["UF_CRM_CHILD_STAGE"] == "Новая оценка"
    assert rules([parent(11, stage="C1:NEW")]) == [], "before the trigger: nothing yet"
    assert rules([parent(12, stage="C1:WON", semantic="S")]) == [], "closed: not needed"


def test_the_repair_copies_the_parents_fields() -> None:
    names = iter(["a", "b"])
    add, _ = child_repair(LINK, 10, {"OPPORTUNITY": 500, "TITLE": "Проект"}, lambda: next(names))
    assert add.params["fields"]["OPPORTUNITY"] == 500 and add.params["fields"]["TITLE"] == "Проект"


def test_a_parent_pointing_at_an_orphan_gets_no_second_child() -> None:
    found = rules([parent(10, child=20), child(20, None)])
    assert ("L001", [10]) not in found and ("L002", [20, 10]) in found


def test_stale_mirror_and_parent_stage() -> None:
    found = rules([parent(10, child=20, mirror="Новая оценка"), child(20, 10, "C2:APPROVAL")])
    assert ("L004", [10, 20]) in found and ("L005", [10, 20]) in found


def test_two_children_and_disagreeing_pointers() -> None:
    found = rules([parent(10, child=21, mirror="Новая оценка"), child(20, 10), child(21, 10)])
    assert ("L003", [10, 20, 21]) in found
    found = rules([parent(10, child=99, mirror="Новая оценка"), child(20, 10)])
    assert ("L009", [10, 20]) in found


# a link with two parent pipelines: sales (1) and rental (3), the same stage codes
RENTAL = pipeline(
    3,
    "Аренда",
    [
        ("NEW", "Новая", "process"),
        ("ESTIMATE", "Оценка", "process"),
        ("DONE", "Оценка готова", "process"),
        ("WON", "Успех", "success"),
    ],
)
TWO = ResolvedLink(
    Link.model_validate(
        {
            "name": "estimate",
            "parent": {"pipelines": ["sales", "rental"], "stage": "ESTIMATE"},
            "child": {"pipeline": "logistics", "stage": "NEW"},
            "child_field": "PARENT_DEAL",
            "parent_field": "CHILD_DEAL",
            "mirror_field": "CHILD_STAGE",
        }
    ),
    [SALES, RENTAL],
    LOGISTICS,
    {1: "C1:ESTIMATE", 3: "C3:ESTIMATE"},
    "C2:NEW",
    {"C2:APPROVAL": {1: "C1:DONE", 3: "C3:DONE"}},
    "UF_CRM_PARENT_DEAL",
    "UF_CRM_CHILD_DEAL",
    "UF_CRM_CHILD_STAGE",
    [],
)


def rental(ident: int, stage: str = "C3:ESTIMATE", child: int | None = None) -> Deal:
    return Deal(ident, 3, stage, "P", None, child, "Согласование", None, 0.0)


def test_a_link_with_two_parent_pipelines_audits_each_in_its_own_stages() -> None:
    """Each parent pipeline's trigger and moves are its own stage ids; a child under a
    parent of either pipeline is no orphan; each finding names its parent's pipeline."""
    found = audit_deals(
        TWO,
        [
            parent(10),  # sales at its trigger, no child: L001
            rental(30),  # rental at its trigger, no child: L001
            rental(31, stage="C3:NEW"),  # before the trigger
            rental(32, child=40),  # a child at approval: the parent moves to C3:DONE
            child(40, 32, "C2:APPROVAL"),
        ],
    )
    assert [(f.rule, f.deals, f.pipeline) for f in found] == [
        ("L001", [10], "sales"),
        ("L001", [30], "rental"),
        ("L005", [32, 40], "rental"),
    ]
    [move] = found[2].repair
    assert move.params == {"id": 32, "fields": {"STAGE_ID": "C3:DONE"}}, "rental's own stage"
    assert [f.rule for f in audit_deals(TWO, [child(41, 99999)])] == ["L002"]
    assert "«Продажи», «Аренда»" in audit_deals(TWO, [child(41, None)])[0].expected
