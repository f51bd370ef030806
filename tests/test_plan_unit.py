"""The blueprint differ as a pure function: hand-built snapshots in, changes and commands
out, no portal (milliseconds each)."""

from __future__ import annotations

from typing import Any

import pytest

from b24kit.blueprint.model import Blueprint
from b24kit.blueprint.plan import PlanOptions, diff
from b24kit.client.executor import Join, Ref
from b24kit.errors import InputError
from b24kit.portal.snapshot import FieldSnap, PipelineSnap, Snapshot, SpaSnap, StageSnap


def blueprint(**extra: Any) -> Blueprint:
    data: dict[str, Any] = {
        "version": 1,
        "deal": {
            "pipelines": [
                {
                    "code": "sales",
                    "name": "Продажи",
                    "sort": 100,
                    "stages": [
                        {"code": "NEW", "name": "Новая"},
                        {"code": "WORK", "name": "В работе"},
                        {"code": "WON", "name": "Успех", "semantics": "success"},
                        {"code": "LOSE", "name": "Провал", "semantics": "failure"},
                    ],
                }
            ]
        },
    }
    data.update(extra)
    return Blueprint.model_validate(data)


def stage(
    row: int, prefix: str, code: str, name: str, sort: int, sem: str = "process"
) -> StageSnap:
    return StageSnap(row, prefix + code, code, name, sort, None, sem, False)


def sales(cid: int = 7, **kw: Any) -> PipelineSnap:
    p = f"C{cid}:"
    return PipelineSnap(
        cid,
        2,
        "Продажи",
        100,
        False,
        "sales",
        "b24kit",
        [
            stage(1, p, "NEW", "Новая", 10),
            stage(2, p, "WORK", "В работе", 20),
            stage(3, p, "WON", "Успех", 30, "success"),
            stage(4, p, "LOSE", "Провал", 40, "failure"),
        ],
        **kw,
    )


def default() -> PipelineSnap:
    return PipelineSnap(0, 2, "General", 10, True)


def test_a_portal_that_matches_plans_nothing() -> None:
    plan = diff(blueprint(), Snapshot([default(), sales()]))
    assert plan.changes == [] and plan.commands() == []


def test_a_new_pipeline_comes_whole_in_one_plan() -> None:
    plan = diff(blueprint(), Snapshot([default()]))
    commands = plan.commands()
    add, listed = commands[0], commands[1]
    assert (add.method, add.kind) == ("crm.category.add", "create")
    assert add.params["fields"]["originId"] == "sales" and add.key is not None
    assert listed.method == "crm.status.list" and listed.kind == "read"
    entity = listed.params["filter"]["ENTITY_ID"]
    assert entity == Ref(add.name, ("category", "id"), fmt="DEAL_STAGE_{}")
    by_method: dict[str, int] = {}
    for c in commands:
        by_method[c.method] = by_method.get(c.method, 0) + 1
    # NEW, WON, LOSE are template codes: updated; the other five template stages removed;
    # WORK created
    assert by_method == {
        "crm.category.add": 1,
        "crm.status.list": 1,
        "crm.status.update": 3,
        "crm.status.delete": 5,
        "crm.status.add": 1,
    }
    deletes = [c for c in commands if c.method == "crm.status.delete"]
    assert all(c.optional and c.params["params"] == {"FORCED": "Y"} for c in deletes)
    assert all(isinstance(c.params["id"], Ref) and c.params["id"].pick for c in deletes)
    created = next(c for c in commands if c.method == "crm.status.add")
    assert created.params["fields"]["ENTITY_ID"] == entity
    names = [c.name for c in commands]
    assert all(set(c.after) <= set(names[:i]) for i, c in enumerate(commands)), (
        "every command waits only for earlier ones"
    )
    assert plan.summary() == {"create": 2, "update": 3, "rename": 0, "delete": 5, "refused": 0}


def test_a_renamed_stage_and_a_new_one_on_an_existing_pipeline() -> None:
    bp = blueprint()
    bp.deal.pipelines[0].stages[1].name = "В работе у менеджера"
    bp.deal.pipelines[0].stages.insert(
        2, bp.deal.pipelines[0].stages[1].model_copy(update={"code": "CHECK", "name": "Проверка"})
    )
    plan = diff(bp, Snapshot([default(), sales()]))
    got = [(c.action, c.address, c.commands[0].method) for c in plan.changes]
    assert ("update", "sales.WORK", "crm.status.update") in got
    assert ("create", "sales.CHECK", "crm.status.add") in got
    add = next(c for c in plan.commands() if c.method == "crm.status.add")
    assert add.params["fields"]["ENTITY_ID"] == "DEAL_STAGE_7", "a known pipeline's entity"


def test_prune_refuses_a_stage_with_items_and_moves_them_when_told() -> None:
    bp = blueprint()
    del bp.deal.pipelines[0].stages[1]  # WORK
    snap = Snapshot([default(), sales()])
    refused = diff(bp, snap, PlanOptions(prune=True), usage={"C7:WORK": 2})
    assert [c.address for c in refused.refused] == ["sales.WORK"]
    moved = diff(
        bp,
        snap,
        PlanOptions(prune=True, move_stage={"sales:WORK": "NEW"}),
        usage={"C7:WORK": 2},
        items={"C7:WORK": [11, 12]},
    )
    change = moved.changes[0]  # then WON and LOSE sort one place up
    assert change.address == "sales.WORK" and len(moved.changes) == 3
    assert [c.method for c in change.commands] == ["crm.deal.update"] * 2 + ["crm.status.delete"]
    assert change.commands[0].params == {"id": 11, "fields": {"STAGE_ID": "C7:NEW"}}
    assert set(change.commands[-1].after) == {c.name for c in change.commands[:2]}


def test_a_move_stage_naming_no_pipeline_of_the_blueprint_is_refused() -> None:
    """--move-stage sales_turnky:WORK=NEW was ignored, silently: the stage stayed refused
    and nothing said why."""
    bp = blueprint()
    snap = Snapshot([default(), sales()])
    with pytest.raises(InputError, match="no pipeline 'salse' in the blueprint"):
        diff(bp, snap, PlanOptions(prune=True, move_stage={"salse:WORK": "NEW"}))


def test_a_new_smart_process_refers_to_itself_everywhere() -> None:
    bp = blueprint(
        smart_processes=[
            {
                "code": "contractors",
                "title": "Подрядчики",
                "pipelines": [
                    {
                        "code": "main",
                        "name": "Справочник",
                        "stages": [
                            {"code": "NEW", "name": "Новый"},
                            {"code": "OK", "name": "Партнёр", "semantics": "success"},
                            {"code": "FAIL", "name": "Нет", "semantics": "failure"},
                        ],
                    }
                ],
                "fields": [{"code": "PHONE", "type": "string", "label": "Телефон"}],
            }
        ]
    )
    bp.deal.fields = []
    plan = diff(bp, Snapshot([default(), sales()]))
    commands = plan.commands()
    add = commands[0]
    assert add.method == "crm.type.add" and add.params["fields"]["code"] == "contractors"
    assert commands[1].method == "crm.type.update", "the code is set again"
    field = next(c for c in commands if c.method == "userfieldconfig.add")
    assert field.params["field"]["fieldName"] == Ref(
        add.name, ("type", "id"), fmt="UF_CRM_{}_PHONE"
    )
    stages = [c for c in commands if c.method == "crm.status.list"][0]
    assert isinstance(stages.params["filter"]["ENTITY_ID"], Join)
    rename = next(c for c in plan.changes if c.kind == "pipeline")
    assert rename.action == "rename", "a new smart process's first pipeline is renamed"


def test_a_field_linking_a_new_smart_process_names_it_by_reference() -> None:
    bp = blueprint(smart_processes=[{"code": "contractors", "title": "Подрядчики"}])
    bp = Blueprint.model_validate(
        {
            **bp.model_dump(),
            "deal": {
                **bp.model_dump()["deal"],
                "fields": [
                    {
                        "code": "CONTRACTOR",
                        "type": "crm",
                        "label": "Подрядчик",
                        "links": ["contractors"],
                    }
                ],
            },
        }
    )
    plan = diff(bp, Snapshot([default(), sales()]))
    field = next(c for c in plan.commands() if c.method == "crm.deal.userfield.add")
    keys = field.params["fields"]["SETTINGS"]
    ref = next(k for k in keys if isinstance(k, Ref))
    assert ref.fmt == "DYNAMIC_{}" and keys[ref] == "Y"


def test_an_existing_smart_process_field_update_sends_its_type_with_values() -> None:
    spa = SpaSnap(
        5,
        1030,
        "contractors",
        "Подрядчики",
        {},
        [],
        [],
        [],
        [
            FieldSnap(
                9, "UF_CRM_5_KIND", "enumeration", False, False, 100, {}, {"ru": "Вид", "en": "Вид"}
            )
        ],
    )
    bp = blueprint(
        smart_processes=[
            {
                "code": "contractors",
                "title": "Подрядчики",
                "fields": [
                    {
                        "code": "KIND",
                        "type": "enumeration",
                        "label": "Вид",
                        "values": [{"value": "A"}],
                    }
                ],
            }
        ]
    )
    plan = diff(bp, Snapshot([default(), sales()], [], [spa]))
    [update] = [c for c in plan.commands() if c.method == "userfieldconfig.update"]
    assert update.params["field"]["userTypeId"] == "enumeration"
    assert update.params["field"]["enum"][0]["value"] == "A"


def test_a_rename_that_would_leave_two_pipelines_one_name_is_refused() -> None:
    bp = blueprint()
    bp.deal.pipelines[0].name = "Логистика"
    bp.deal.pipelines[0].previous_names = ["Продажи"]
    theirs = PipelineSnap(9, 2, "Логистика", 200, False)  # a pipeline b24kit does not manage
    plan = diff(bp, Snapshot([default(), sales(), theirs]))
    [refused] = plan.refused
    assert refused.kind == "pipeline" and "(id 9) is named «Логистика»" in str(refused.refused)
    assert plan.commands() == [], "nothing else to do, and the rename is not sent"
    free = diff(bp, Snapshot([default(), sales()]))
    assert [c.action for c in free.changes] == ["rename"] and not free.refused
