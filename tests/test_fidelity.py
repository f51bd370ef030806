"""b24kit against the real portal's behaviour where it differs from what the sandbox used to
do (issue 9), and against the worse reading of each point no source settles.

Each test names the docs page (bitrix24/b24restdocs) or the reading (sandbox/readings.py,
docs/sandbox.md) it rests on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from b24kit.blueprint.loader import load_blueprint
from b24kit.blueprint.model import Blueprint
from b24kit.client import Command, Executor, Outcome
from b24kit.portal import commands as cmd
from b24kit.sandbox import Sandbox
from tests.cli import ROOT
from tests.clients import ScriptedFaults, client_for
from tests.test_blueprint_apply import apply, export, plan

SPA_BLUEPRINT = """\
version: 1
name: fidelity
deal:
  pipelines:
    - code: sales
      name: Продажи
      stages:
        - {code: NEW, name: Новая заявка}
        - {code: WON, name: Успех, semantics: success}
        - {code: LOSE, name: Провал, semantics: failure}
smart_processes:
  - code: contractors
    title: Подрядчики
    pipelines:
      - code: main
        name: Справочник
        default: true
        stages:
          - {code: NEW, name: Новый}
          - {code: OK, name: Партнёр, semantics: success}
          - {code: FAIL, name: Не работать, semantics: failure}
    fields:
      - {code: PHONE, type: string, label: {ru: Телефон, en: Phone}}
      - code: RATING
        type: enumeration
        label: {ru: Оценка, en: Rating}
        values:
          - {value: "Хорошо", xml_id: GOOD}
          - {value: "Плохо", xml_id: BAD}
  - code: vendors
    title: Поставщики
    fields:
      - {code: INN, type: string, label: {ru: ИНН, en: Tax id}}
      - code: KIND
        type: enumeration
        label: {ru: Вид, en: Kind}
        values:
          - {value: "Опт", xml_id: BULK}
"""


def blueprint(tmp_path: Path, text: str = SPA_BLUEPRINT) -> Blueprint:
    path = tmp_path / "fidelity.yaml"
    path.write_text(text, encoding="utf-8")
    return load_blueprint(path)[0]


def spa_fields(box: Sandbox, code: str) -> dict[str, dict[str, Any]]:
    """The smart process's fields as the portal has them, read one by one with
    userfieldconfig.get (which always carries enum and labels)."""
    types = box.call("crm.type.list", {})["types"]
    spa = next(t for t in types if t.get("code") == code)
    rows = box.call("userfieldconfig.list", {"moduleId": "crm"})["fields"]
    out = {}
    for row in rows:
        if row["entityId"] == f"CRM_{spa['id']}":
            full = box.call("userfieldconfig.get", {"moduleId": "crm", "id": row["id"]})["field"]
            out[full["fieldName"]] = full
    return out


def enum_values(field: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["xmlId"], e["value"]) for e in field.get("enum") or []]


# ------------------------------------------------ 1. enum changes of smart-process fields
def test_smart_process_list_values_change_on_a_strict_portal(tmp_path: Path) -> None:
    box = Sandbox(limits="off")
    assert apply(box, blueprint(tmp_path)).ok
    changed = SPA_BLUEPRINT.replace(
        '          - {value: "Плохо", xml_id: BAD}',
        '          - {value: "Так себе", xml_id: SOSO}\n'
        '          - {value: "Очень плохо", xml_id: BAD}',
    )
    assert apply(box, blueprint(tmp_path, changed), prune=True).ok
    rating = next(
        f for name, f in spa_fields(box, "contractors").items() if name.endswith("_RATING")
    )
    assert enum_values(rating) == [
        ("GOOD", "Хорошо"),
        ("SOSO", "Так себе"),
        ("BAD", "Очень плохо"),
    ], (
        "userfieldconfig-update.md: enum is applied when userTypeId is enumeration; "
        "b24kit must send it, or the portal ignores the change while answering success"
    )
    assert plan(box, blueprint(tmp_path, changed)).changes == [], (
        "after apply the plan is empty, not the same value change forever"
    )


def test_sandbox_ignores_enum_without_user_type() -> None:
    box = Sandbox(limits="off")
    spa = box.call("crm.type.add", {"fields": {"title": "T", "code": "t"}})["type"]
    field = box.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": f"CRM_{spa['id']}",
                "fieldName": f"UF_CRM_{spa['id']}_K",
                "userTypeId": "enumeration",
                "enum": [{"value": "a", "xmlId": "A"}],
            },
        },
    )["field"]
    box.call(
        "userfieldconfig.update",
        {"moduleId": "crm", "id": field["id"], "field": {"enum": [{"value": "b", "xmlId": "B"}]}},
    )
    got = box.call("userfieldconfig.get", {"moduleId": "crm", "id": field["id"]})["field"]
    assert enum_values(got) == [("A", "a")], (
        "userfieldconfig-update.md: enum without userTypeId=enumeration is not applied"
    )


# ------------------------------------------------ 3. a delete is judged done by looking


def run(box: Sandbox, commands: list[Command]) -> list[Outcome]:
    async def go() -> list[Outcome]:
        with client_for(box) as client:
            return await Executor(client, batch_size=1).run(commands)

    return asyncio.run(go())


def _things(box: Sandbox) -> dict[str, Command]:
    spa = box.call("crm.type.add", {"fields": {"title": "X", "code": "x"}})["type"]
    gone_spa = box.call("crm.type.add", {"fields": {"title": "Y", "code": "y"}})["type"]
    ufc = box.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": f"CRM_{spa['id']}",
                "fieldName": f"UF_CRM_{spa['id']}_F",
                "userTypeId": "string",
            },
        },
    )["field"]
    uf = box.call(
        "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "OLD", "USER_TYPE_ID": "string"}}
    )
    cat = box.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Z"}})["category"]
    status = box.call(
        "crm.status.add", {"fields": {"ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "GONE", "NAME": "G"}}
    )
    deal = box.call("crm.deal.add", {"fields": {"TITLE": "D"}})
    return {
        "userfieldconfig.delete": cmd.spa_field_delete(ufc["id"]),
        "crm.deal.userfield.delete": cmd.deal_field_delete(uf),
        "crm.category.delete": cmd.category_delete(2, cat["id"]),
        "crm.status.delete": cmd.status_delete(status),
        "crm.type.delete": cmd.type_delete(gone_spa["id"]),
        "crm.deal.delete": cmd.entity_delete("deal", deal),
    }


@pytest.mark.parametrize(
    "method",
    [
        "userfieldconfig.delete",
        "crm.deal.userfield.delete",
        "crm.category.delete",
        "crm.status.delete",
        "crm.type.delete",
        "crm.deal.delete",
    ],
)
def test_a_delete_whose_answer_was_lost_is_done(method: str) -> None:
    box = Sandbox(limits="off")
    command = _things(box)[method]
    box.faults = ScriptedFaults(["lost"])  # the delete runs, its answer never arrives
    [outcome] = run(box, [command])
    assert outcome.ok, (
        f"{method}: repeated after a lost answer it fails (userfieldconfig-delete.md answers "
        f"error '' 'You cannot delete the user field'), but the thing is gone: done. "
        f"Got {outcome.error}"
    )
    # looked at (is it gone?) before sending it again: gone, so sent once
    assert outcome.attempts == 1 and outcome.found_existing


def test_a_delete_that_really_fails_after_a_lost_attempt_is_a_failure() -> None:
    box = Sandbox(limits="off")
    cat = box.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Z"}})["category"]
    box.call("crm.deal.add", {"fields": {"TITLE": "holds the pipeline", "CATEGORY_ID": cat["id"]}})
    box.faults = ScriptedFaults(["drop"])  # the first attempt never ran
    [outcome] = run(box, [cmd.category_delete(2, cat["id"])])
    assert not outcome.ok, "the pipeline is still there: the delete failed, whatever the text"
    assert any(
        c["id"] == cat["id"]
        for c in box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    )


# ------------------------------------------------ the five unsettled points, worse reading
def _company(tmp_path: Path) -> Blueprint:
    return load_blueprint(ROOT / "blueprints" / "company.yaml")[0]


def test_status_list_paging_at_50(tmp_path: Path) -> None:
    """crm-status-list.md: a comment says the list pages at 50, the example does not."""
    box = Sandbox(limits="off", readings={"status-list-pages"})
    bp = _company(tmp_path)
    apply(box, bp)
    assert len(box.call("crm.status.list", {})) == 50, "the reading is on: one page is 50"
    assert plan(box, bp).changes == [], "every stage beyond the first page is seen"
    reference = Sandbox(limits="off")
    apply(reference, bp)
    assert export(box) == export(reference), "export reads every page too"


def test_userfieldconfig_list_without_enum_and_labels(tmp_path: Path) -> None:
    """userfieldconfig-list.md's example shows neither enum nor labels."""
    box = Sandbox(limits="off", readings={"uf-list-bare"})
    bp = blueprint(tmp_path)
    assert apply(box, bp).ok
    rows = box.call("userfieldconfig.list", {"moduleId": "crm"})["fields"]
    assert len(rows) == 4 and not any("enum" in r or "editFormLabel" in r for r in rows), (
        "the reading is on: list rows are bare"
    )
    assert plan(box, bp).changes == [], "labels and values are read with userfieldconfig.get"
    reference = Sandbox(limits="off")
    apply(reference, bp)
    assert export(box) == export(reference)


def test_userfieldconfig_list_ignoring_the_entity_filter(tmp_path: Path) -> None:
    """userfieldconfig-list.md does not list entityId among its filter fields."""
    box = Sandbox(limits="off", readings={"uf-list-ignores-entity"})
    bp = blueprint(tmp_path)
    assert apply(box, bp).ok
    some = box.call("crm.type.list", {})["types"][0]
    rows = box.call(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{some['id']}"}}
    )["fields"]
    assert len({r["entityId"] for r in rows}) == 2, "the reading is on: the filter is ignored"
    assert plan(box, bp).changes == [], "no field of another smart process is taken as ours"
    assert plan(box, bp, prune=True).changes == [], "nor pruned as not in the blueprint"
    contractors, vendors = spa_fields(box, "contractors"), spa_fields(box, "vendors")
    assert sorted(n.rsplit("_", 1)[1] for n in contractors) == ["PHONE", "RATING"]
    assert sorted(n.rsplit("_", 1)[1] for n in vendors) == ["INN", "KIND"]
    reference = Sandbox(limits="off")
    apply(reference, bp)
    assert export(box) == export(reference)


def test_type_add_that_drops_the_code(tmp_path: Path) -> None:
    """crm-type-add.md's parameter table has no code (crm-type-fields.md has it)."""
    box = Sandbox(limits="off", readings={"type-add-drops-code"})
    made = box.call("crm.type.add", {"fields": {"title": "T", "code": "t"}})["type"]
    assert not made.get("code"), "the reading is on: code is not kept"
    box.call("crm.type.delete", {"id": made["id"]})
    bp = blueprint(tmp_path)
    assert apply(box, bp).ok
    assert apply(box, bp).ok
    types = box.call("crm.type.list", {})["types"]
    assert sorted(t["title"] for t in types) == ["Подрядчики", "Поставщики"], (
        "two applies make each smart process once"
    )
    assert sorted(t["code"] for t in types) == ["contractors", "vendors"], (
        "the code is set afterwards (crm-type-update.md's example carries code)"
    )
    assert plan(box, bp).changes == []
    reference = Sandbox(limits="off")
    assert apply(reference, bp).ok
    assert export(box) == export(reference), "the export names each smart process by its code"


def test_type_add_that_drops_the_code_with_a_lost_answer(tmp_path: Path) -> None:
    box = Sandbox(limits="off", readings={"type-add-drops-code"})
    box.faults = ScriptedFaults(["lost"])
    [outcome] = run(box, [cmd.type_add({"title": "Подрядчики", "code": "contractors"})])
    assert outcome.ok and outcome.found_existing, outcome.error
    assert len(box.call("crm.type.list", {})["types"]) == 1, "looked up by title, not made twice"


@pytest.mark.parametrize(
    ("readings", "statuses"),
    [(frozenset(), (401, 403)), (frozenset({"auth-403", "scope-401"}), (403, 401))],
)
def test_auth_and_scope_errors_under_401_or_403(
    readings: frozenset[str], statuses: tuple[int, int]
) -> None:
    """_includes/system-errors.md gives 403 for INVALID_CREDENTIALS and insufficient_scope;
    a measured report (b24jssdk#500) and the rest source give 401. b24kit must stop at once
    with the same one-line error either way."""
    from b24kit.client import B24Client, WebhookAuth, parse_webhook
    from b24kit.client.errors import AuthError, ScopeError

    box = Sandbox(limits="off", readings=readings)

    async def go(hook: str, method: str) -> BaseException:
        client = B24Client(WebhookAuth(parse_webhook(hook)), transport=box.transport())
        try:
            await client.call(method)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc
        finally:
            await client.aclose()
        raise AssertionError(f"{method} succeeded")

    good = box.webhook_url("http://sandbox.local")
    wrong = good.replace(box.token, "wrongtoken0000")
    error = asyncio.run(go(wrong, "user.current"))
    assert isinstance(error, AuthError) and error.status == statuses[0], repr(error)
    assert box.token not in str(error) and "wrongtoken0000" not in str(error)
    assert box.requests == 1, "an auth error is not retried"
    scoped = box.add_webhook(5, ("user",))
    error = asyncio.run(go(f"http://sandbox.local/rest/5/{scoped}/", "crm.deal.list"))
    assert isinstance(error, ScopeError) and error.status == statuses[1], repr(error)
    assert box.requests == 2, "a scope error is not retried"


# ------------------------------------------------ 2. comment markers are read per deal
def test_comment_markers_are_read_per_deal_with_both_filters() -> None:
    """crm-timeline-comment-list.md: ENTITY_ID and ENTITY_TYPE are both required."""
    from b24kit.migrate.plan import read_markers

    box = Sandbox(limits="off")
    deals = [box.call("crm.deal.add", {"fields": {"TITLE": f"D{i}"}}) for i in range(60)]
    for i, deal in enumerate(deals):
        box.call(
            "crm.timeline.comment.add",
            {
                "fields": {
                    "ENTITY_ID": deal,
                    "ENTITY_TYPE": "deal",
                    "COMMENT": f"text\n\n[b24kit t row {i}]",
                }
            },
        )
    for j in range(55):  # one deal with more than a page of comments, ours last
        box.call(
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": deals[0], "ENTITY_TYPE": "deal", "COMMENT": f"note {j}"}},
        )
    box.call(
        "crm.timeline.comment.add",
        {
            "fields": {
                "ENTITY_ID": deals[0],
                "ENTITY_TYPE": "deal",
                "COMMENT": "[b24kit t row late]",
            }
        },
    )

    async def go() -> set[str]:
        with client_for(box) as client:
            return await read_markers(client, "deal", deals)

    markers = asyncio.run(go())
    assert set(markers) == {f"[b24kit t row {i}]" for i in range(60)} | {"[b24kit t row late]"}
    assert all(comment_id > 0 for comment_id, _ in markers.values()), "each with its comment"


@pytest.mark.parametrize("readings", [frozenset(), frozenset({"uf-enum-replaces"})])
def test_list_values_survive_a_replacing_enum_update(
    tmp_path: Path, readings: frozenset[str]
) -> None:
    """userfieldconfig-update.md reads as a partial update of enum; an earlier text and the
    main module's source replace the whole list. Adding and renaming keep every value under
    both; a value the portal has and the blueprint lacks is kept without --prune."""
    box = Sandbox(limits="off", readings=readings)
    assert apply(box, blueprint(tmp_path)).ok
    spa = next(t for t in box.call("crm.type.list", {})["types"] if t["code"] == "contractors")
    rating = next(f for n, f in spa_fields(box, "contractors").items() if n.endswith("_RATING"))
    box.call(
        "userfieldconfig.update",
        {
            "moduleId": "crm",
            "id": rating["id"],
            "field": {
                "userTypeId": "enumeration",
                "enum": [
                    *(
                        {"id": e["id"], "value": e["value"], "xmlId": e["xmlId"]}
                        for e in rating["enum"]
                    ),
                    {"value": "Вручную", "xmlId": "MANUAL"},
                ],
            },
        },
    )  # added on the portal by hand
    changed = SPA_BLUEPRINT.replace(
        '{value: "Хорошо", xml_id: GOOD}', '{value: "Отлично", xml_id: GOOD}'
    ).replace(
        '          - {value: "Плохо", xml_id: BAD}',
        '          - {value: "Плохо", xml_id: BAD}\n          - {value: "Средне", xml_id: MID}',
    )
    assert apply(box, blueprint(tmp_path, changed)).ok
    got = next(f for n, f in spa_fields(box, "contractors").items() if n.endswith("_RATING"))
    assert sorted(enum_values(got)) == [
        ("BAD", "Плохо"),
        ("GOOD", "Отлично"),
        ("MANUAL", "Вручную"),
        ("MID", "Средне"),
    ], "renamed, added, and the portal's own value kept"
    assert plan(box, blueprint(tmp_path, changed)).changes == []
    assert (
        spa["id"]
        == next(t for t in box.call("crm.type.list", {})["types"] if t["code"] == "contractors")[
            "id"
        ]
    )


def test_a_clients_smart_process_of_the_same_title_is_never_taken_over(tmp_path: Path) -> None:
    """A smart process made in the UI has no code. One with a blueprint's title may be the
    client's own: plan refuses to create a second one and says how to adopt it; nothing is
    changed on it."""
    box = Sandbox(limits="off")
    theirs = box.call("crm.type.add", {"fields": {"title": "Подрядчики"}})["type"]
    box.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": f"CRM_{theirs['id']}",
                "fieldName": f"UF_CRM_{theirs['id']}_OWN",
                "userTypeId": "string",
            },
        },
    )
    result = plan(box, blueprint(tmp_path), prune=True)
    [refused] = [c for c in result.changes if c.refused]
    assert refused.address == "contractors" and f"id={theirs['id']}" in refused.refused
    assert not apply(box, blueprint(tmp_path), prune=True).ok
    kept = box.call("crm.type.get", {"id": theirs["id"]})["type"]
    assert (kept["code"], kept["title"]) == ("", "Подрядчики"), "not renamed, not coded"
    fields = box.call(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{theirs['id']}"}}
    )["fields"]
    assert [f["fieldName"] for f in fields] == [f"UF_CRM_{theirs['id']}_OWN"]
    assert [t["title"] for t in box.call("crm.type.list", {})["types"]].count("Подрядчики") == 1
