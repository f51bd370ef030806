"""Deploying blueprints to sandboxes, checked on the portal afterwards (not the plan text)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from b24kit.blueprint.apply import ApplyReport, apply_blueprint, make_plan
from b24kit.blueprint.export import export_blueprint
from b24kit.blueprint.loader import load_blueprint
from b24kit.blueprint.model import Blueprint
from b24kit.blueprint.plan import Plan, PlanOptions
from b24kit.portal.snapshot import read_snapshot
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests import warm
from tests.cli import ROOT, CliResult, run_cli
from tests.clients import client_for
from tests.once import once
from tests.servers import served

COMPANY = ROOT / "blueprints" / "company.yaml"
EXAMPLE = ROOT / "blueprints" / "example.yaml"


def load(path: Path) -> Blueprint:
    return load_blueprint(path)[0]


def from_text(tmp_path: Path, text: str) -> Blueprint:
    path = tmp_path / "bp.yaml"
    path.write_text(text, encoding="utf-8")
    return load(path)


def plan(box: Sandbox, bp: Blueprint, **options: Any) -> Plan:
    async def go() -> Plan:
        with client_for(box) as client:
            return await make_plan(client, bp, PlanOptions(**options))

    return asyncio.run(go())


def apply(box: Sandbox, bp: Blueprint, **options: Any) -> ApplyReport:
    async def go() -> ApplyReport:
        with client_for(box) as client:
            return await apply_blueprint(client, bp, PlanOptions(**options))

    return asyncio.run(go())


def export(box: Sandbox) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        with client_for(box) as client:
            return export_blueprint(await read_snapshot(client))

    return asyncio.run(go())


def stages(box: Sandbox, entity: str) -> list[tuple[str, str, str, str | None]]:
    return [
        (r["STATUS_ID"], r["NAME"], r["SORT"], r["SEMANTICS"])
        for r in box.call("crm.status.list", {"filter": {"ENTITY_ID": entity}})
    ]


def deal_pipeline(box: Sandbox, name: str) -> dict[str, Any]:
    cats = box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    found = [c for c in cats if c["name"] == name]
    assert len(found) == 1, f"exactly one pipeline {name!r}: {[c['name'] for c in cats]}"
    return dict(found[0])


# ------------------------------------------------------------- the company
def test_company_blueprint_end_to_end() -> None:
    bp = load(COMPANY)
    box = Sandbox(limits="off")
    first = plan(box, bp)
    assert first.requests <= 5, f"planning read the portal in {first.requests} requests"
    assert first.summary()["create"] > 100 and not first.refused
    assert first.summary()["delete"] > 100, "the template stages apply removes are planned"
    report = apply(box, bp)
    assert report.ok and report.requests < 40, f"{report.requests} requests: apply is batched"
    # everything is there, counted on the portal
    cats = box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    assert len(cats) == 1 + 20, "the default pipeline plus the 20 of the blueprint"
    sales = deal_pipeline(box, "Продажи: Услуга под ключ")
    assert [s[0] for s in stages(box, f"DEAL_STAGE_{sales['id']}")] == [
        f"C{sales['id']}:{c}"
        for c in (
            "NEW",
            "QUALIFY",
            "ESTIMATE",
            "ESTIMATE_READY",
            "OFFER",
            "CONTRACT",
            "WON",
            "LOSE",
        )
    ], "exactly the blueprint's stages"
    assert stages(box, f"DEAL_STAGE_{sales['id']}")[2][1] == "Оценить"
    logistics = deal_pipeline(box, "Логистика")
    assert f"C{logistics['id']}:APPROVAL" in [
        s[0] for s in stages(box, f"DEAL_STAGE_{logistics['id']}")
    ]
    fields = {f["FIELD_NAME"]: f for f in box.call("crm.deal.userfield.list")}
    assert set(fields) == {
        f"UF_CRM_{c}"
        for c in (
            "PARENT_DEAL",
            "CHILD_DEAL",
            "CHILD_STAGE",
            "ENGINEERING_DEAL",
            "ENGINEERING_STAGE",
            "ESTIMATE_PRICE",
            "ESTIMATE_AT",
            "CONTRACTOR",
            "CONTRACTOR_PRICE",
            "CONTRACTOR_RATING",
            "OWN_VEHICLES",
            "CONTRACTOR_NOTES",
            "CONTRACTOR_PAID",
            "NEW_CONTRACTOR_NAME",
            "NEW_CONTRACTOR_PHONE",
        )
    }
    spa = box.call("crm.type.list", {"filter": {"code": "contractors"}})["types"][0]
    assert fields["UF_CRM_CONTRACTOR"]["SETTINGS"][f"DYNAMIC_{spa['entityTypeId']}"] == "Y", (
        "the contractor field links the contractor directory"
    )
    spa_fields = box.call(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{spa['id']}"}}
    )["fields"]
    assert {f["fieldName"] for f in spa_fields} == {
        f"UF_CRM_{spa['id']}_{c}"
        for c in (
            "PHONE",
            "PRICE",
            "RATING",
            "NOTES",
            "SERVICES",
            "TIMES_USED",
            "LAST_PRICE",
            "AVERAGE_RATING",
            "LAST_USED",
        )
    }
    full = box.call("crm.type.get", {"id": spa["id"]})["type"]
    assert [r["entityTypeId"] for r in full["relations"]["child"]] == [2], "deals are children"
    # idempotent
    assert plan(box, bp).changes == [], "a second plan shows no changes"
    assert apply(box, bp).outcomes == [], "a second apply changes nothing"
    # export round trips
    exported = export(box)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"export-{os.getpid()}.yaml"
    path.write_text(yaml.safe_dump(exported, allow_unicode=True), encoding="utf-8")
    assert plan(box, load(path)).changes == [], "export then plan shows no changes"
    other = Sandbox(limits="off")
    assert apply(other, load(path)).ok
    assert export(other) == exported, "export of A applied to B exports identically"


# ---------------------------------------------------------- each change kind
BASE = """\
version: 1
deal:
  pipelines:
    - code: sales
      name: Продажи
      sort: 100
      stages:
        - {code: NEW, name: Новая, color: "#111111"}
        - {code: WORK, name: В работе}
        - {code: WON, name: Успех, semantics: success}
        - {code: LOSE, name: Провал, semantics: failure}
  fields:
    - {code: NOTE, type: string, label: {ru: Заметка, en: Note}}
    - code: RATING
      type: enumeration
      label: Оценка
      values: [{value: Хорошо, xml_id: GOOD}, {value: Плохо, xml_id: BAD}]
smart_processes:
  - code: contractors
    title: Подрядчики
    relations: {children: [deal]}
    pipelines:
      - code: directory
        name: Справочник
        default: true
        stages:
          - {code: NEW, name: Новый}
          - {code: SUCCESS, name: Партнёр, semantics: success}
          - {code: FAIL, name: Не работать, semantics: failure}
    fields:
      - {code: PRICE, type: double, label: Цена}
"""


@pytest.fixture(scope="module")
def base_deployed(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """A sandbox where BASE was applied, once for this module's tests (copy it)."""
    box = Sandbox(limits="off")
    assert apply(box, from_text(tmp_path_factory.mktemp("base"), BASE)).ok
    return box


@pytest.fixture
def deployed(base_deployed: Sandbox, tmp_path: Path) -> tuple[Sandbox, Path]:
    """A copy of a sandbox where BASE was applied (Sandbox.clone: an apply costs a tenth
    of a second, a copy a few milliseconds), and a folder for the test's blueprints."""
    return base_deployed.clone(), tmp_path


def change(box: Sandbox, tmp_path: Path, old: str, new: str, **options: Any) -> ApplyReport:
    text = BASE.replace(old, new)
    assert text != BASE, f"{old!r} is in the base blueprint"
    report = apply(box, from_text(tmp_path, text), **options)
    assert plan(box, from_text(tmp_path, text), **options).pending == [] or report.refused
    return report


def test_update_stage_name_sort_colour(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    cid = deal_pipeline(box, "Продажи")["id"]
    change(
        box,
        tmp,
        "{code: WORK, name: В работе}",
        '{code: WORK, name: В процессе, sort: 15, color: "#ABCDEF"}',
    )
    row = next(
        r
        for r in box.call("crm.status.list", {"filter": {"ENTITY_ID": f"DEAL_STAGE_{cid}"}})
        if r["STATUS_ID"] == f"C{cid}:WORK"
    )
    assert (row["NAME"], row["SORT"], row["COLOR"]) == ("В процессе", "15", "#ABCDEF")


def test_reorder_stages(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    cid = deal_pipeline(box, "Продажи")["id"]
    change(
        box,
        tmp,
        '- {code: NEW, name: Новая, color: "#111111"}\n        - {code: WORK, name: В работе}',
        '- {code: WORK, name: В работе}\n        - {code: NEW, name: Новая, color: "#111111"}',
    )
    assert [s[0] for s in stages(box, f"DEAL_STAGE_{cid}")][:2] == [f"C{cid}:WORK", f"C{cid}:NEW"]


def test_update_pipeline_sort_and_rename_keeps_identity(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    before = deal_pipeline(box, "Продажи")
    deal = box.call("crm.deal.add", {"fields": {"CATEGORY_ID": before["id"]}})
    change(
        box,
        tmp,
        "      name: Продажи\n      sort: 100",
        "      name: Продажи B2B\n      previous_names: [Продажи]\n      sort: 50",
    )
    after = deal_pipeline(box, "Продажи B2B")
    assert after["id"] == before["id"] and after["sort"] == 50, "renamed in place, not re-created"
    assert box.call("crm.deal.get", {"id": deal})["CATEGORY_ID"] == str(before["id"])


def test_rename_without_previous_names_uses_the_b24kit_tag(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    before = deal_pipeline(box, "Продажи")
    change(box, tmp, "      name: Продажи\n", "      name: Продажи (новые)\n")
    assert deal_pipeline(box, "Продажи (новые)")["id"] == before["id"]


def test_update_field_label_mandatory_values(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    change(
        box,
        tmp,
        "label: {ru: Заметка, en: Note}",
        "label: {ru: Комментарий, en: Comment}, mandatory: true",
    )
    note = box.call(
        "crm.deal.userfield.list", {"filter": {"LANG": "ru", "FIELD_NAME": "UF_CRM_NOTE"}}
    )[0]
    assert (note["EDIT_FORM_LABEL"], note["MANDATORY"]) == ("Комментарий", "Y")
    change(
        box,
        tmp,
        "values: [{value: Хорошо, xml_id: GOOD}, {value: Плохо, xml_id: BAD}]",
        "values: [{value: Отлично, xml_id: GOOD}, {value: Плохо, xml_id: BAD}, {value: Средне, xml_id: MID}]",
    )
    rating = box.call("crm.deal.userfield.list", {"filter": {"FIELD_NAME": "UF_CRM_RATING"}})[0]
    assert {(i["XML_ID"], i["VALUE"]) for i in rating["LIST"]} == {
        ("GOOD", "Отлично"),
        ("BAD", "Плохо"),
        ("MID", "Средне"),
    }, "changed, kept and added"


def test_update_smart_process(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    change(
        box,
        tmp,
        "    title: Подрядчики\n    relations: {children: [deal]}",
        "    title: Исполнители\n    switches: {client: true, observers: true}\n"
        "    relations: {children: [deal, company]}",
    )
    spa = box.call("crm.type.list", {"filter": {"code": "contractors"}})["types"][0]
    full = box.call("crm.type.get", {"id": spa["id"]})["type"]
    assert (full["title"], full["isClientEnabled"], full["isObserversEnabled"]) == (
        "Исполнители",
        "Y",
        "Y",
    )
    assert sorted(r["entityTypeId"] for r in full["relations"]["child"]) == [2, 4]
    change(
        box,
        tmp,
        "      - {code: PRICE, type: double, label: Цена}",
        "      - {code: PRICE, type: double, label: Стоимость}",
    )
    field = box.call(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{spa['id']}"}}
    )["fields"][0]
    assert field["editFormLabel"]["ru"] == "Стоимость"


def test_new_things_in_an_existing_deployment(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    change(
        box,
        tmp,
        "        - {code: WON, name: Успех, semantics: success}\n        - {code: LOSE",
        "        - {code: CHECK, name: Проверка}\n        - {code: WON, name: Успех, semantics: success}\n"
        "        - {code: LOSE",
    )
    cid = deal_pipeline(box, "Продажи")["id"]
    assert f"C{cid}:CHECK" in [s[0] for s in stages(box, f"DEAL_STAGE_{cid}")]


def test_prune_deletes_only_with_the_flag(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    cid = deal_pipeline(box, "Продажи")["id"]
    smaller = BASE.replace("        - {code: WORK, name: В работе}\n", "").replace(
        "    - {code: NOTE, type: string, label: {ru: Заметка, en: Note}}\n", ""
    )
    apply(box, from_text(tmp, smaller))
    assert f"C{cid}:WORK" in [s[0] for s in stages(box, f"DEAL_STAGE_{cid}")], (
        "kept without --prune"
    )
    report = apply(box, from_text(tmp, smaller), prune=True)
    assert report.ok
    assert f"C{cid}:WORK" not in [s[0] for s in stages(box, f"DEAL_STAGE_{cid}")], "pruned stage"
    assert "UF_CRM_NOTE" not in {f["FIELD_NAME"] for f in box.call("crm.deal.userfield.list")}


def test_prune_never_deletes_an_enumeration_value(deployed: tuple[Sandbox, Path]) -> None:
    """An enumeration value dropped from the blueprint: --prune deleted it (emptying it on
    every deal holding it, which no count showed), and its plan line crashed the text
    plan (exit 4). Kept without --prune, refused with it; the plan shows the value."""
    from b24kit.cli.blueprint import render_change

    box, tmp = deployed
    smaller = from_text(tmp, BASE.replace(", {value: Плохо, xml_id: BAD}", ""))
    assert not plan(box, smaller).changes, "kept without --prune"
    pruned = plan(box, smaller, prune=True)
    [refused] = pruned.refused
    assert refused.address == "UF_CRM_RATING" and "«Плохо»" in str(refused.refused)
    assert "values: - Плохо" in render_change(refused), "one line, no IndexError"
    report = apply(box, smaller, prune=True)
    assert report.refused and report.outcomes == [], "nothing written"
    [rating] = box.call("crm.deal.userfield.list", {"filter": {"FIELD_NAME": "UF_CRM_RATING"}})
    values = box.call("crm.deal.userfield.get", {"id": rating["ID"]})["LIST"]
    assert [v["VALUE"] for v in values] == ["Хорошо", "Плохо"]


def test_prune_refuses_a_stage_that_holds_deals(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    cid = deal_pipeline(box, "Продажи")["id"]
    deal = box.call("crm.deal.add", {"fields": {"CATEGORY_ID": cid, "STAGE_ID": f"C{cid}:WORK"}})
    smaller = from_text(tmp, BASE.replace("        - {code: WORK, name: В работе}\n", ""))
    refused = plan(box, smaller, prune=True).refused
    assert [c.address for c in refused] == ["sales.WORK"] and "holds 1 item" in str(
        refused[0].refused
    )
    report = apply(box, smaller, prune=True)
    assert report.refused and report.outcomes == [], "nothing is written while a change is refused"
    assert f"C{cid}:WORK" in [s[0] for s in stages(box, f"DEAL_STAGE_{cid}")]
    moved = apply(box, smaller, prune=True, move_stage={"sales:WORK": "NEW"})
    assert moved.ok
    assert box.call("crm.deal.get", {"id": deal})["STAGE_ID"] == f"C{cid}:NEW", "the deal moved"
    assert f"C{cid}:WORK" not in [s[0] for s in stages(box, f"DEAL_STAGE_{cid}")]


def test_prune_refuses_a_pipeline_that_holds_deals(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    extra = box.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Ручная"}})
    box.call("crm.deal.add", {"fields": {"CATEGORY_ID": extra["category"]["id"]}})
    refused = plan(box, from_text(tmp, BASE), prune=True).refused
    assert any("holds 1 item" in str(c.refused) for c in refused if c.kind == "pipeline")


def test_semantics_and_type_changes_are_refused(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    old = (
        "        - {code: WON, name: Успех, semantics: success}\n"
        "        - {code: LOSE, name: Провал, semantics: failure}"
    )
    assert old in BASE
    swapped = BASE.replace(
        old,
        "        - {code: LOSE, name: Провал, semantics: success}\n"
        "        - {code: WON, name: Успех, semantics: failure}",
    )
    bp = from_text(tmp, swapped.replace("{code: NOTE, type: string", "{code: NOTE, type: integer"))
    refused = {c.address: c.refused for c in plan(box, bp).refused}
    assert set(refused) == {"sales.WON", "sales.LOSE", "UF_CRM_NOTE"}, refused


# ---------------------------------------------------------- interruptions
def _company_exported() -> dict[str, Any]:
    clean = Sandbox(limits="off")
    assert apply(clean, load(COMPANY)).ok
    return export(clean)


@pytest.fixture(scope="module")
def company_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The export of a sandbox where the company blueprint was applied without a hitch:
    made once per test run (tests/once.py), not once per test that compares with it."""
    return once(tmp_path_factory, "company-exported", _company_exported)


def test_apply_under_faults_then_again_converges(company_reference: dict[str, Any]) -> None:
    bp = load(COMPANY)
    reference = company_reference
    box = Sandbox(limits="off", faults="lost=0.08,drop=0.08,500=0.08,seed=21")
    with contextlib.suppress(Exception):  # an interrupted apply may end in an error
        apply(box, bp)
    assert sum(box.faults.counts.values()) > 0, "faults did interrupt the first apply"
    box.faults = type(box.faults).parse("")
    assert apply(box, bp).ok
    assert export(box) == reference, "same structure as an uninterrupted apply, nothing doubled"


@pytest.mark.parametrize("kill_after", [1, 3, 6, 9])
def test_killed_apply_then_again_converges(
    tmp_path: Path, kill_after: int, company_reference: dict[str, Any]
) -> None:
    """Killed after the portal answered ``kill_after`` requests, mid-round."""
    reference = company_reference
    box = Sandbox(limits="off", latency_ms=40)
    server = start_in_thread(box)
    try:
        proc = warm.start(
            [
                "apply",
                str(COMPANY.resolve()),
                "--yes",
                "--portal",
                box.webhook_url(server.base_url),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
        )
        deadline = time.time() + 60
        while box.requests < kill_after and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert box.requests >= kill_after, "the apply had started"
        assert proc.returncode == -signal.SIGKILL, "it was killed before it could finish"
    finally:
        server.stop()
    box.config.latency_ms = 0
    assert apply(box, load(COMPANY)).ok
    assert export(box) == reference


# ------------------------------------------------------------------- CLI
def test_cli_plan_apply_saved_plan(tmp_path: Path) -> None:
    box = Sandbox(limits="off")
    with served(box) as base:
        url = box.webhook_url(base)

        def cli(*args: str) -> CliResult:  # the entry point, in this process
            return run_cli(
                *args, "--portal", url, cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path)}
            )

        example = str(EXAMPLE.resolve())
        result = cli("plan", example, "--detailed-exitcode")
        assert result.returncode == 2, "changes pending"
        assert "+ pipeline sales" in result.stdout
        assert "Plan: 8 to create, 6 to update, 0 to rename, 10 to delete." in result.stdout
        as_json = json.loads(cli("plan", example, "-f", "json").stdout)
        assert as_json["summary"]["create"] == 8 and as_json["reads"] <= 5
        saved = tmp_path / "plan.json"
        assert cli("plan", example, "--out", str(saved)).returncode == 0
        box.call(
            "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "X", "USER_TYPE_ID": "string"}}
        )
        stale = cli("apply", str(saved), "--yes")
        assert stale.returncode == 2 and "portal changed since the plan" in stale.stderr
        assert cli("plan", example, "--out", str(saved)).returncode == 0
        applied = cli("apply", str(saved), "--yes")
        assert applied.returncode == 0 and "Applied 24 of 24 changes" in applied.stdout
        assert cli("plan", example, "--detailed-exitcode").returncode == 0, "no changes left"
    graph = run_cli("graph", example)
    assert 'sales__ESTIMATE -. "estimate: creates child" .-> logistics__NEW' in graph.stdout


def test_committed_schema_is_current() -> None:
    from b24kit.blueprint.model import json_schema

    committed = json.loads((ROOT / "schema" / "blueprint.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), (
        "run: b24kit blueprint schema --out schema/blueprint.schema.json"
    )


def test_update_field_settings_and_crm_links(deployed: tuple[Sandbox, Path]) -> None:
    box, tmp = deployed
    text = BASE.replace(
        "      - {code: PRICE, type: double, label: Цена}",
        "      - {code: PRICE, type: double, label: Цена, settings: {PRECISION: 4}}",
    )
    text = text.replace(
        "  fields:\n    - {code: NOTE",
        "  fields:\n    - {code: LINK, type: crm, links: [deal], label: Связь}\n    - {code: NOTE",
    )
    assert apply(box, from_text(tmp, text)).ok
    assert apply(
        box, from_text(tmp, text.replace("links: [deal]", "links: [deal, contractors]"))
    ).ok
    spa = box.call("crm.type.list", {"filter": {"code": "contractors"}})["types"][0]
    price = box.call(
        "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{spa['id']}"}}
    )["fields"][0]
    assert price["settings"]["PRECISION"] == 4, "a type setting is updated"
    link = box.call("crm.deal.userfield.list", {"filter": {"FIELD_NAME": "UF_CRM_LINK"}})[0]
    assert (link["SETTINGS"]["DEAL"], link["SETTINGS"][f"DYNAMIC_{spa['entityTypeId']}"]) == (
        "Y",
        "Y",
    )


def test_graph_svg(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    result = run_cli("graph", str(EXAMPLE.resolve()), "--out", str(out))
    assert result.returncode == 0, result.stderr
    import xml.dom.minidom

    svg = xml.dom.minidom.parse(str(out))
    texts = [t.firstChild.data for t in svg.getElementsByTagName("text") if t.firstChild]
    assert "Оценить" in texts and "estimate: creates child" in texts and "moves parent" in texts
    assert len(svg.getElementsByTagName("rect")) == 9, "one box per stage of the linked pipelines"
