"""Migrating the example sheet into a sandbox where the company blueprint was applied,
counted on the portal; re-runs, kills, faults, and the gspread path."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from b24kit.blueprint.apply import apply_blueprint
from b24kit.blueprint.loader import load_blueprint
from b24kit.migrate.run import MigrationResult, execute, load_mapping, prepare
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests import warm
from tests.cli import ROOT, CliResult, run_cli
from tests.clients import client_for
from tests.clocks import FakeClock
from tests.once import once

EXAMPLES = ROOT / "examples"
MAPPING = EXAMPLES / "projects.mapping.yaml"
EXPECTED = json.loads((EXAMPLES / "projects.expected.json").read_text(encoding="utf-8"))
COMPANY_PATH = ROOT / "blueprints" / "company.yaml"
COMPANY = load_blueprint(COMPANY_PATH)[0]
T = TypeVar("T")


_DEPLOYED: list[Sandbox] = []  # the company blueprint applied once per test process


def deployed(**kwargs: Any) -> Sandbox:
    """A sandbox where the company blueprint was applied: a copy of one made once (an
    apply costs a second; a copy, milliseconds), answering with ``kwargs``."""
    if not _DEPLOYED:
        box = Sandbox(limits="off")

        async def go() -> None:
            with client_for(box) as client:
                assert (await apply_blueprint(client, COMPANY)).ok

        asyncio.run(go())
        _DEPLOYED.append(box)
    return _DEPLOYED[0].clone(limits="off", **kwargs)


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())``, its result handed back beside the task, not as its result:
    at its end asyncio.run (Python 3.11) puts back the SIGINT handler it set, and Python's
    signal module formats the old handler, a partial holding the main task and so its
    result, in full (signal._int_to_enum: a ValueError's message, then dropped). A
    2,000-row migration's result takes 0.2 s of CPU to format that way, twice."""
    done: list[T] = []

    async def go() -> None:
        done.append(await main())

    asyncio.run(go())
    return done[0]


def migrate(box: Sandbox, mapping: Path = MAPPING, **kwargs: Any) -> MigrationResult:
    async def go() -> MigrationResult:
        with client_for(box) as client:
            result = await prepare(client, load_mapping(mapping), mapping.parent, **kwargs)
            return await execute(client, result)

    return run_async(go)


def dump(box: Sandbox) -> dict[str, Any]:
    """The portal's migrated state with ids replaced by stable keys, for comparisons."""
    rows = []
    start = 0
    while True:
        page = box._run(
            "crm.deal.list",
            {"select": ["*", "UF_*", "PARENT_ID_1030"], "start": start},
            1,
            frozenset({"crm"}),
            "t",
            False,
            metered=False,
        )
        rows += page["result"]
        if "next" not in page:
            break
        start = page["next"]
    deals = {int(d["ID"]): d for d in rows}
    origin = {i: d.get("ORIGIN_ID") for i, d in deals.items()}
    contacts: dict[int, list[str]] = {}
    companies: dict[int, list[str]] = {}
    for c in box.portal.db.all(
        "SELECT entity_type_id, element_id, value FROM multifields WHERE type_id='PHONE'"
    ):
        owner = contacts if c["entity_type_id"] == 3 else companies
        owner.setdefault(int(c["element_id"]), []).append(c["value"])
    items = {
        int(r["id"]): json.loads(r["data"])
        for r in box.portal.db.all("SELECT id, data FROM items WHERE entity_type_id >= 128")
    }

    def deal_ref(value: Any) -> Any:
        match = re.fullmatch(r"D_(\d+)", str(value or ""))
        return origin.get(int(match.group(1))) if match else value

    state = {}
    for d in deals.values():
        state[d["ORIGIN_ID"]] = {
            "title": d["TITLE"],
            "category": d["CATEGORY_ID"],
            "stage": d["STAGE_ID"],
            "amount": d["OPPORTUNITY"],
            "assigned": d["ASSIGNED_BY_ID"],
            "contact": sorted(contacts.get(int(d["CONTACT_ID"] or 0), [])),
            "company": sorted(companies.get(int(d["COMPANY_ID"] or 0), [])),
            "parent": deal_ref(d.get("UF_CRM_PARENT_DEAL")),
            "child": deal_ref(d.get("UF_CRM_CHILD_DEAL")),
            "mirror": d.get("UF_CRM_CHILD_STAGE"),
            "contractor": items.get(int(d.get("PARENT_ID_1030") or 0), {}).get("XML_ID"),
            "rating": d.get("UF_CRM_CONTRACTOR_RATING"),
        }
    comments = Counter(
        r["comment"].split("\n\n")[-1]
        for r in box.portal.db.all("SELECT comment FROM timeline_comments")
    )
    return {
        "deals": state,
        "contacts": sorted(sorted(p) for p in contacts.values()),
        "companies": sorted(sorted(p) for p in companies.values()),
        "contractors": sorted(i.get("XML_ID") for i in items.values()),
        "comments": sorted(comments.items()),
    }


def _reference() -> dict[str, Any]:
    box = deployed()
    migrate(box)
    return dump(box)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return once(tmp_path_factory, "example-migrated", _reference)


def test_example_sheet_counts_on_the_portal(tmp_path: Path) -> None:
    box = deployed()
    result = migrate(box)
    state = dump(box)
    deals = state["deals"]
    parents = {k: v for k, v in deals.items() if k.count(":") == 1}
    children = {k: v for k, v in deals.items() if k.endswith(":estimate")}
    engineering = {k: v for k, v in deals.items() if k.endswith(":engineering")}
    assert len(engineering) == EXPECTED["engineering"], (
        "the blueprint's engineering link, which the mapping does not name: a child for "
        "every open parent at or past «Договор», as sync would make it"
    )
    assert len(deals) == len(parents) + len(children) + len(engineering)
    assert len(parents) == EXPECTED["parents"], "one parent per valid row"
    assert len(children) == EXPECTED["children"], (
        "a logistics child where the row names one, and for every open parent at or past "
        "the trigger stage (audit's L001), as sync would make it"
    )
    assert len(state["contacts"]) == EXPECTED["contacts"], "contacts de-duplicated by phone"
    assert len(state["companies"]) == EXPECTED["companies"], "ООО, ИП, СПК clients: companies"
    phones = [p for c in state["contacts"] + state["companies"] for p in c]
    assert len(phones) == len(set(phones)), "no phone on two contacts"
    assert len(state["contractors"]) == EXPECTED["contractors"], "contractors by phone"
    assert sum(n for _, n in state["comments"]) == EXPECTED["comments"]
    assert all(n == 1 for _, n in state["comments"]), "one comment per row"
    rejected = {str(f.row): f.reason for f in result.findings if f.kind == "rejected"}
    assert set(rejected) == set(EXPECTED["rejected"]), "exactly the faulty rows are rejected"
    for row, kind in EXPECTED["rejected"].items():
        assert kind.split()[0] in rejected[row] or kind in rejected[row], (row, rejected[row])
    for key, child in children.items():
        parent_key = key.rsplit(":", 1)[0]
        assert child["parent"] == parent_key, "the child points to its parent"
        assert deals[parent_key]["child"] == key, "the parent points to its child"
        assert child["category"] != deals[parent_key]["category"], "child in the logistics pipeline"
        assert deals[parent_key]["mirror"], "the parent mirrors the child's stage"
    assert any(c["contractor"] for c in children.values()), "contractors tied to child deals"
    assert any(c["rating"] for c in children.values()), "the rating recorded on the child"
    # a second run creates nothing and changes nothing
    again = migrate(box)
    assert all(c["created"] == 0 and c["updated"] == 0 for c in again.plan.counts.values())
    assert dump(box) == state


def test_the_report_lists_every_rejected_row(tmp_path: Path) -> None:
    box = deployed()
    report = tmp_path / "report.csv"
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    result = run_cli(
        "migrate",
        "run",
        "--mapping",
        str(MAPPING),
        "--yes",
        "--dry-run",
        "--report",
        str(report),
        "--portal",
        "x",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2  # "x" is no portal: a clear usage error
    running = start_in_thread(box)
    try:
        result = run_cli(
            "migrate",
            "run",
            "--mapping",
            str(MAPPING),
            "--dry-run",
            "--report",
            str(report),
            "--portal",
            box.webhook_url(running.base_url),
            cwd=tmp_path,
            env=env,
            clock=FakeClock(),
        )
    finally:
        running.stop()
    assert result.returncode == 0, result.stderr
    assert f"parents: {EXPECTED['parents']} to create" in result.stdout
    listed = [x for x in result.stderr.splitlines() if x.startswith("rejected row")]
    assert len(listed) == len(EXPECTED["rejected"]), "a dry run lists every rejected row"
    assert box.portal.count_items(2) == 0, "a dry run writes nothing"
    lines = report.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "kind,worksheet,row,row_id,column,value,reason"
    assert len([x for x in lines if x.startswith("rejected,")]) == len(EXPECTED["rejected"])


@pytest.mark.parametrize("kill_after", [2, 4, 7, 11, 16])
def test_killed_run_resumes_to_the_same_state(
    tmp_path: Path, kill_after: int, reference: dict[str, Any]
) -> None:
    box = deployed(latency_ms=30)
    running = start_in_thread(box)
    base = box.requests
    try:
        proc = warm.start(
            [
                "migrate",
                "run",
                "--mapping",
                str(MAPPING),
                "--yes",
                "--portal",
                box.webhook_url(running.base_url),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
        )
        deadline = time.time() + 60
        while box.requests - base < kill_after and time.time() < deadline and proc.poll() is None:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "killed before it finished"
    finally:
        running.stop()
    box.config.latency_ms = 0
    migrate(box)
    assert dump(box) == reference, "the resumed run ends where an uninterrupted one does"


def test_faults_keep_the_counts(reference: dict[str, Any]) -> None:
    box = deployed(faults="500=0.05,503=0.05,drop=0.05,lost=0.05,seed=13")
    result = migrate(box)
    assert sum(box.faults.counts.values()) > 0
    assert not result.failed, [str(o.error) for o in result.failed][:3]
    box.faults = type(box.faults).parse("")
    assert dump(box) == reference, "none lost, none doubled under faults"


def test_gspread_sheet_with_merged_header(tmp_path: Path) -> None:
    box = deployed()
    rows = [
        ["№", "Клиент", "", "Сделка", "", "Статус"],
        ["", "Название", "Телефон", "Что везём", "Цена", ""],
        [1, "ООО Ромашка", 79001234567, "трактор", 125000, "Оценить"],
        [],
        [2, "ИП Петров", "8 912 222-33-44", "каток", "98 000 руб.", "новая"],
        ["№", "Название", "Телефон", "Что везём", "Цена", "Статус"],
        [3, "ООО Ромашка", "+7 900 123 45 67", "кран", 45323, "Оценено"],
    ]
    box.sheets.add(
        "KEY123",
        "Проекты",
        {"Лист1": rows},
        {"Лист1": [(0, 1, 1, 3), (0, 1, 3, 5), (0, 2, 0, 1), (0, 2, 5, 6)]},
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        f"""
version: 1
blueprint: {COMPANY_PATH}
source: {{sheet: "https://docs.google.com/spreadsheets/d/KEY123/edit", header_rows: 2}}
originator: gsheet
row_id: "№"
parent:
  pipeline: sales_turnkey
  title: "{{Сделка / Что везём}}"
  stage: {{column: Статус, default: NEW, values: {{NEW: [новая], ESTIMATE: [оценить], ESTIMATE_READY: [оценено]}}}}
  fields:
    OPPORTUNITY: {{column: Сделка / Цена, parse: money}}
contact: {{name: Клиент / Название, phone: Клиент / Телефон}}
""",
        encoding="utf-8",
    )
    running = start_in_thread(box)
    try:
        result = migrate(box, mapping, sheets_endpoint=running.base_url)
    finally:
        running.stop()
    assert box.sheets.requests >= 2, "read through gspread and the fake Sheets API"
    assert result.records == 3 and result.rejected_rows == 2, "blank row and repeated header"
    deals = box.call(
        "crm.deal.list",
        {
            "filter": {"ORIGINATOR_ID": "gsheet"},
            "select": ["TITLE", "OPPORTUNITY", "STAGE_ID", "ORIGIN_ID"],
        },
    )
    # the parents (an «Оценить» row also gets its estimate child, as sync would make it)
    deals = [d for d in deals if d["ORIGIN_ID"].count(":") == 1]
    assert sorted(d["TITLE"] for d in deals) == ["каток", "кран", "трактор"]
    assert sorted(d["OPPORTUNITY"] for d in deals) == ["125000.00", "45323.00", "98000.00"]
    assert len(box.call("crm.company.list", {"select": ["ID"]})) == 2, (
        "the same phone in two shapes is one client (ООО, ИП: companies)"
    )


def test_a_gspread_sheet_with_cells_merged_down_its_projects(tmp_path: Path) -> None:
    """A client, a manager and a status written once and merged down a group of projects
    (Google keeps the value in the top cell only) reach every project of the group; a
    project number merged down several rows is refused with the reason, on every row."""
    box = deployed()
    # «Маржа», a formula filled down the sheet, is a column the mapping does not read
    rows = [
        ["№", "Клиент", "Телефон", "Менеджер", "Что везём", "Статус", "Маржа"],
        [1, "ООО Ромашка", 79001234567, "Иванов", "трактор", "Оценить", 10],  # row 2
        [2, "", "", "", "каток", "", 5],  # row 3: B, C, D and F merged from row 2
        [3, "ИП Петров", "8 912 222-33-44", "Петрова", "кран", "новая", 7],  # row 4
        # row 5: nothing of its own the mapping reads (D4:D5 drawn a row too far), the
        # formula's #DIV/0! beside it: a project made of the merge's values, before
        ["", "", "", "", "", "", "#DIV/0!"],
        [5, "ИП Орлов", "8 913 000-11-22", "Смирнов", "экскаватор", "новая", 3],  # row 6
        ["", "", "", "", "погрузчик", "", 0],  # row 7: № merged from row 6
        [5, "ИП Заря", "8 914 000-11-22", "Смирнов", "кран", "новая", 1],  # row 8: № typed
    ]
    merges = [(1, 3, c, c + 1) for c in (1, 2, 3, 5)]
    merges += [(3, 5, 3, 4), (5, 7, 0, 1)]  # D4:D5, A6:A7
    box.sheets.add("KEY456", "Проекты", {"Лист1": rows}, {"Лист1": merges})
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        f"""
version: 1
blueprint: {COMPANY_PATH}
source: {{sheet: "https://docs.google.com/spreadsheets/d/KEY456/edit"}}
originator: merged
row_id: "№"
users: {{Иванов: 3, Петрова: 4, Смирнов: 5}}
parent:
  pipeline: sales_turnkey
  title: "{{Что везём}}"
  stage: {{column: Статус, default: NEW, values: {{NEW: [новая], ESTIMATE: [оценить]}}}}
  fields:
    ASSIGNED_BY_ID: {{column: Менеджер, parse: user}}
contact: {{name: Клиент, phone: Телефон}}
""",
        encoding="utf-8",
    )
    running = start_in_thread(box)
    try:
        result = migrate(box, mapping, sheets_endpoint=running.base_url)
    finally:
        running.stop()
    deals = box.call(
        "crm.deal.list",
        {
            "filter": {"ORIGINATOR_ID": "merged"},
            "select": ["TITLE", "STAGE_ID", "ASSIGNED_BY_ID", "ORIGIN_ID", "COMPANY_ID"],
        },
    )
    parents = {d["TITLE"]: d for d in deals if d["ORIGIN_ID"].count(":") == 1}
    assert sorted(parents) == ["каток", "кран", "трактор"], "rows 2-4 migrate, row 5 is blank"
    assert parents["каток"]["ASSIGNED_BY_ID"] == parents["трактор"]["ASSIGNED_BY_ID"] == "3"
    assert parents["каток"]["STAGE_ID"] == parents["трактор"]["STAGE_ID"]
    assert parents["каток"]["STAGE_ID"].endswith(":ESTIMATE")
    company = parents["каток"]["COMPANY_ID"]
    assert company and company == parents["трактор"]["COMPANY_ID"], "one client, an ООО"
    assert box.call("crm.company.get", {"id": company})["TITLE"] == "ООО Ромашка"
    rejected = {f.row: f.reason for f in result.findings if f.kind == "rejected"}
    assert rejected[5].startswith("blank row: nothing of its own in the columns the mapping")
    assert "(its value is A6's, merged down to this row)" in rejected[7], "where it is"
    for row in (6, 7):
        assert "row id 5 is one cell merged over rows 6, 7:" in rejected[row]
    assert rejected[8].startswith("row id 5 repeats row 6, 7 with other cells"), "typed"


def csv_mapping(tmp_path: Path, originator: str, rest: str) -> Path:
    """tmp_path/m.yaml: a mapping of tmp_path/p.csv into the company blueprint under
    ``originator``, then ``rest`` (YAML)."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        f"version: 1\nblueprint: {COMPANY_PATH}\nsource: {{csv: p.csv}}\n"
        f"originator: {originator}\n{rest}",
        encoding="utf-8",
    )
    return mapping


def test_a_formula_error_in_a_cell_rejects_its_row(tmp_path: Path) -> None:
    """A CSV saved from a Russian Excel where lookups failed: "#Н/Д" in a client's name and
    "#REF!" in a price are no values. Each such row is rejected naming the cell and the
    code; nothing named "#Н/Д" reaches the portal; an unread column's error is no matter."""
    box = deployed()
    (tmp_path / "p.csv").write_bytes(
        "№;Клиент;Телефон;Цена;Заметки;ИНН\n"
        "1;#Н/Д;8 900 111-22-33;1000;;\n"
        "2;ООО Ромашка;8 900 222-33-44;#REF!;;\n"
        "3;ИП Петров;8 900 333-44-55;3000;#ЗНАЧ!;\n"
        "4;ИП Сидоров;8 900 444-55-66;4000;;#N/A\n".encode("cp1251")
    )
    mapping = csv_mapping(
        tmp_path,
        "errors",
        """
row_id: "№"
parent:
  pipeline: sales_turnkey
  title: "{Клиент}"
  stage: {default: NEW}
  fields:
    OPPORTUNITY: {column: Цена, parse: money}
contact: {name: Клиент, phone: Телефон, inn: ИНН}
""",
    )
    result = migrate(box, mapping)
    rejected = [(f.row, f.column, f.value, f.reason) for f in result.findings]
    assert (2, "Клиент", "#Н/Д") in [r[:3] for r in rejected]
    assert (3, "Цена", "#REF!") in [r[:3] for r in rejected]
    assert (5, "ИНН", "#N/A") in [r[:3] for r in rejected], "every column the mapping reads"
    assert all("formula error" in r[3] for r in rejected if r[2] in ("#Н/Д", "#REF!", "#N/A"))
    assert result.rejected_rows == 3 and result.records == 1
    deals = box.call("crm.deal.list", {"filter": {"ORIGINATOR_ID": "errors"}})
    assert sorted(d["TITLE"] for d in deals) == ["ИП Петров"]
    names = [c["NAME"] for c in box.call("crm.contact.list", {"select": ["NAME"]})]
    assert not any("#" in (n or "") for n in names)


SHEET_A = "Клиент;Телефон;Цена\nООО Ромашка;8 900 111-22-33;1000\nИП Петров;8 900 222-33-44;2000\n"


@pytest.mark.parametrize(
    "second",
    [
        # another sheet (next month's tab, say) under the first one's originator
        "Клиент;Телефон;Цена\nООО Лютик;8 900 555-22-33;5000\nИП Петров;8 900 222-33-44;6000\n",
        # the same sheet sorted: with no row_id, a row's number is its key
        "Клиент;Телефон;Цена\nИП Петров;8 900 222-33-44;2000\nООО Ромашка;8 900 111-22-33;1000\n",
    ],
    ids=["another-sheet", "sorted"],
)
def test_a_run_never_hands_a_deal_to_another_client_unasked(tmp_path: Path, second: str) -> None:
    """A sheet migrated under an originator, then a second sheet under the same one (or
    the same sheet re-sorted, its rows keyed by their numbers): the second run rewrote
    the first sheet's deals as its own projects, for other clients. It is refused before
    anything is written, naming each deal and both clients; --reassign-deals (here
    ``reassign_deals``) lets it go on."""
    from b24kit.migrate.plan import DealsMoved

    box = deployed()
    mapping = csv_mapping(
        tmp_path,
        "projects",
        """
parent:
  pipeline: sales_turnkey
  title: "{Клиент}"
  stage: {default: NEW}
  fields:
    OPPORTUNITY: {column: Цена, parse: money}
contact: {name: Клиент, phone: Телефон}
""",
    )
    (tmp_path / "p.csv").write_text(SHEET_A, encoding="utf-8")
    assert migrate(box, mapping).records == 2
    select = ["ID", "TITLE", "ORIGIN_ID", "OPPORTUNITY", "COMPANY_ID", "DATE_MODIFY"]
    deals = {"filter": {"ORIGINATOR_ID": "projects"}, "select": select}
    first = box.call("crm.deal.list", deals)
    (tmp_path / "p.csv").write_text(second, encoding="utf-8")
    with pytest.raises(DealsMoved) as refused:
        migrate(box, mapping)
    message = str(refused.value)
    assert f"row 2: deal #{first[0]['ID']} belongs to company #" in message
    assert "«ООО Ромашка», the row names " in message
    assert box.call("crm.deal.list", deals) == first, "nothing written"
    migrate(box, mapping, reassign_deals=True)
    moved = {d["ORIGIN_ID"]: d for d in box.call("crm.deal.list", deals)}
    assert len(moved) == 2, "the same deals, each now the row's client's"
    assert moved["row:r2"]["TITLE"] == second.splitlines()[1].split(";")[0]


def _one_row_mapping(tmp_path: Path, originator: str) -> Path:
    return csv_mapping(
        tmp_path,
        originator,
        """
row_id: "№"
parent: {pipeline: sales_turnkey, title: "{Клиент}", stage: {default: NEW}}
contact: {name: Клиент, phone: Телефон}
""",
    )


@pytest.mark.parametrize(
    ("first", "second", "said"),
    [
        ("Иванов Иван;8 900 111-22-33", "ООО Лютик;8 900 555-22-33", "contact #"),
        ("ООО Ромашка;8 900 111-22-33", "Петров Пётр;8 900 777-22-33", "company #"),
    ],
    ids=["person-to-organisation", "organisation-to-person"],
)
def test_a_deal_never_changes_from_a_person_s_to_an_organisation_s(
    tmp_path: Path, first: str, second: str, said: str
) -> None:
    """A person's deal, its row now naming an organisation (or the other way round), kept
    the old client and gained the new one: two clients on one deal, silently."""
    from b24kit.migrate.plan import DealsMoved

    box = deployed()
    mapping = _one_row_mapping(tmp_path, "kinds")
    sheet = tmp_path / "p.csv"
    sheet.write_text(f"№;Клиент;Телефон\n1;{first}\n", encoding="utf-8")
    migrate(box, mapping)
    sheet.write_text(f"№;Клиент;Телефон\n1;{second}\n", encoding="utf-8")
    with pytest.raises(DealsMoved, match=f"belongs to {said}"):
        migrate(box, mapping)


def test_a_duplicate_client_on_the_portal_moves_no_deal(tmp_path: Path) -> None:
    """A company the portal already had («Ромашка», older) gained the client's phone: the
    re-run of the unchanged sheet picked it, the lower id, and moved the deal there (then
    was refused for it). The deal keeps the client it has when that one still matches."""
    box = deployed()
    older = box.call("crm.company.add", {"fields": {"TITLE": "Ромашка"}})
    mapping = _one_row_mapping(tmp_path, "duplicates")
    (tmp_path / "p.csv").write_text("№;Клиент;Телефон\n1;ООО Ромашка;8 900 111-22-33\n")
    migrate(box, mapping)
    select = {"filter": {"ORIGINATOR_ID": "duplicates"}, "select": ["ID", "COMPANY_ID"]}
    [deal] = box.call("crm.deal.list", select)
    assert int(deal["COMPANY_ID"]) != older
    phone = [{"VALUE": "+79001112233", "VALUE_TYPE": "WORK"}]
    box.call("crm.company.update", {"id": older, "fields": {"PHONE": phone}})
    again = migrate(box, mapping)
    assert again.plan.counts["parents"]["updated"] == 0
    assert box.call("crm.deal.list", select) == [deal], "the deal keeps its company"
    # a new project of the same client, above the old one: its first row chose the lower
    # id, and the old deal was to move (refused)
    (tmp_path / "p.csv").write_text(
        "№;Клиент;Телефон\n2;ООО Ромашка;8 900 111-22-33\n1;ООО Ромашка;8 900 111-22-33\n"
    )
    migrate(box, mapping)
    companies = {d["COMPANY_ID"] for d in box.call("crm.deal.list", select)}
    assert companies == {deal["COMPANY_ID"]}, "the new deal joins the old one's company"


def test_rows_keyed_by_their_number_never_become_other_projects(tmp_path: Path) -> None:
    """A sheet with no row id column, its rows keyed by their numbers, all for one repeat
    customer: a row deleted between runs turned each deal below it into the next row's
    project (same client, so nothing noticed), the last project twice and the deleted one
    gone. Such a run is refused, naming each deal's title and the row's; a row added at
    the end, a resumed run and a copy pasted twice change no project. A copy (a row
    repeating another cell for cell) is rejected, as it is with a row id."""
    from b24kit.migrate.plan import DealsMoved

    box = deployed()
    mapping = csv_mapping(
        tmp_path,
        "numbered",
        """
parent:
  pipeline: sales_turnkey
  title: "{Что везём}"
  stage: {default: NEW}
  fields:
    OPPORTUNITY: {column: Цена, parse: money}
contact: {name: Клиент, phone: Телефон}
""",
    )
    head = "Клиент;Телефон;Что везём;Цена\n"
    rows = [
        f"ООО Ромашка;8 900 111-22-33;{what};{price}\n"
        for what, price in (("экскаватор", 100000), ("кран", 250000), ("трал", 50000))
    ]
    sheet = tmp_path / "p.csv"
    sheet.write_text(head + "".join(rows) + rows[1], encoding="utf-8")  # row 5: a copy
    first = migrate(box, mapping)
    assert first.records == 3
    assert [(f.row, f.reason) for f in first.findings] == [
        (5, "repeats row 3, cell for cell (a copy)")
    ]
    select = {"filter": {"ORIGINATOR_ID": "numbered"}, "select": ["ID", "TITLE", "DATE_MODIFY"]}
    deals = box.call("crm.deal.list", select)
    assert sorted(d["TITLE"] for d in deals) == ["кран", "трал", "экскаватор"]
    sheet.write_text(head + "".join(rows) + "ООО Ромашка;8 900 111-22-33;каток;70000\n")
    assert migrate(box, mapping).plan.counts["parents"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 3,
    }, "a row added at the end: made, nothing else touched"
    deals = box.call("crm.deal.list", select)
    sheet.write_text(head + "".join(rows[1:]) + "ООО Ромашка;8 900 111-22-33;каток;70000\n")
    with pytest.raises(DealsMoved) as refused:
        migrate(box, mapping)
    message = str(refused.value)
    assert (
        "2 deal(s) made earlier under originator 'numbered' would become other projects" in message
    )
    assert (
        "row 3: deal #" in message
        and " is «кран», which row 2 holds now, and this row (keyed by its number) is «трал»"
        in message
    )
    assert box.call("crm.deal.list", select) == deals, "nothing written"
    # a title only its own row changed is no move: a manager's rename on the portal, or
    # a word of the title edited in the sheet
    crane = next(d for d in deals if d["TITLE"] == "кран")
    box.call("crm.deal.update", {"id": crane["ID"], "fields": {"TITLE": "кран 25 т"}})
    sheet.write_text(
        head
        + "".join(rows).replace("трал", "трал 3-осный")
        + "ООО Ромашка;8 900 111-22-33;каток;70000\n"
    )
    assert not migrate(box, mapping).plan.rebinds


def test_an_empty_row_id_cell_keys_its_row_by_number_and_is_guarded(tmp_path: Path) -> None:
    """With a row_id column, a row whose id cell is empty is keyed by its number too: a
    row deleted above such rows made each deal the next one's project, silently."""
    from b24kit.migrate.plan import DealsMoved

    box = deployed()
    mapping = _one_row_mapping(tmp_path, "blank-ids")
    text = mapping.read_text(encoding="utf-8").replace('title: "{Клиент}"', 'title: "{Что}"')
    mapping.write_text(text, encoding="utf-8")
    sheet = tmp_path / "p.csv"
    head, client = "№;Клиент;Телефон;Что\n", ";ООО Ромашка;8 900 111-22-33;"
    sheet.write_text(head + f"{client}экскаватор\n{client}кран\n{client}трал\n")
    migrate(box, mapping)
    sheet.write_text(head + f"{client}кран\n{client}трал\n")  # the first row deleted
    with pytest.raises(DealsMoved, match="is «кран», which row 2 holds now"):
        migrate(box, mapping)


def test_a_cleared_cell_and_a_deleted_row_are_said_not_silent(tmp_path: Path) -> None:
    """A run never clears a deal's value nor deletes a deal: a price cleared in the sheet
    stayed on the deal and a deleted row's deal stayed, and the dry run counted both as
    unchanged, saying nothing. Each is now a warning naming the deal and what it keeps."""
    box = deployed()
    mapping = csv_mapping(
        tmp_path,
        "kept",
        """
row_id: "№"
parent:
  pipeline: sales_turnkey
  title: "{Что везём}"
  stage: {default: NEW}
  fields:
    OPPORTUNITY: {column: Цена, parse: money}
    BEGINDATE: {column: Дата, parse: date}
contact: {name: Клиент, phone: Телефон}
""",
    )
    sheet = tmp_path / "p.csv"
    head = "№;Клиент;Телефон;Что везём;Цена;Дата\n"  # no date: the portal fills one in
    sheet.write_text(
        head + "1;ООО Ромашка;8 900 111-22-33;кран;250000;\n2;ИП Петров;8 900 222-33-44;трал;5;\n",
        encoding="utf-8",
    )
    assert not [f for f in migrate(box, mapping).findings if f.kind == "warning"]
    deals = {"filter": {"ORIGINATOR_ID": "kept"}, "select": ["ID", "TITLE", "OPPORTUNITY"]}
    made = {d["TITLE"]: d for d in box.call("crm.deal.list", deals)}
    sheet.write_text(head + "1;ООО Ромашка;8 900 111-22-33;кран;;\n", encoding="utf-8")
    again = migrate(box, mapping)
    warned = sorted(f.reason for f in again.findings if f.kind == "warning")
    assert warned == [
        f"deal #{made['трал']['ID']} «трал» (row:2) has no row in the sheet any more: left "
        "as it is (a run never deletes; migrate undo removes what the mapping made)",
        f"empty in the sheet; deal #{made['кран']['ID']} keeps OPPORTUNITY «250000.00» (a "
        "run never clears a value: clear it on the portal if it should go)",
    ]
    assert {d["TITLE"]: d for d in box.call("crm.deal.list", deals)} == made, "nothing changed"


def test_one_contractor_however_its_name_is_written_and_a_shared_phone_said(
    tmp_path: Path,
) -> None:
    """The directory split one contractor three ways (with a phone, without one, and as
    «ООО "ТралСпецТранс"»), so its history was split too; and a second contractor on
    the first one's phone was silently taken as it. Now one entry, found by phone or by
    name (legal form and quotes aside), and a warning for two names on one phone."""
    box = deployed()
    mapping = csv_mapping(
        tmp_path,
        "directory",
        """
row_id: "№"
users: {Кузнецова: 6}
parent:
  pipeline: sales_turnkey
  title: "{Клиент}: {Что везём}"
  stage: {column: Статус, default: NEW, values: {ESTIMATE_READY: [оценено]}}
contact: {name: Клиент, phone: Телефон}
contractor: {type: contractors, title: Подрядчик, phone: Телефон подрядчика}
children:
  - link: estimate
    when: [Логист, Подрядчик]
    title: "Оценка: {Что везём}"
    contractor: true
    stage: {column: Статус, default: NEW, values: {APPROVAL: [оценено]}}
""",
    )
    (tmp_path / "p.csv").write_text(
        "№;Клиент;Телефон;Что везём;Статус;Логист;Подрядчик;Телефон подрядчика\n"
        "1;ООО Ромашка;8 900 111-22-33;экскаватор;оценено;Кузнецова;ТралСпецТранс;"
        "8 911 333-22-11\n"
        "2;ООО Лютик;8 900 222-33-44;кран;оценено;Кузнецова;ТралСпецТранс;\n"
        '3;ООО Вектор;8 900 333-44-55;трал;оценено;Кузнецова;ООО "ТралСпецТранс";\n'
        "4;ООО Нива;8 900 444-55-66;каток;оценено;Кузнецова;АвтоДорСервис;8 911 333-22-11\n"
        "5;ООО Заря;8 900 555-66-77;кран;оценено;Кузнецова;ТралСпецТранс;8 911 999-00-00\n",
        encoding="utf-8",
    )
    result = migrate(box, mapping)
    assert result.records == 5
    items = box.call("crm.item.list", {"entityTypeId": 1030, "select": ["id", "title"]})
    assert [i["title"] for i in items["items"]] == ["ТралСпецТранс"], "one entry"
    warned = [(f.row, f.reason) for f in result.findings if f.kind == "warning"]
    assert warned == [
        (
            5,
            "contractor «АвтоДорСервис» shares a phone with the directory's «ТралСпецТранс»: "
            "taken as it (two names for one phone)",
        ),
        (
            6,
            "contractor «ТралСпецТранс»: taken as the directory's «ТралСпецТранс» by its "
            "name; its phone +79119990000 is added to that entry",
        ),
    ]
    [item] = box.call("crm.item.list", {"entityTypeId": 1030, "select": ["id", "ufCrm1Phone"]})[
        "items"
    ]
    assert item["ufCrm1Phone"] == "+79113332211, +79119990000", "the new phone is kept"
    again = migrate(box, mapping)
    assert [f.row for f in again.findings if f.kind == "warning"] == [5], "said once"


def test_a_contractor_s_legal_form_and_a_phone_typed_by_hand_count(tmp_path: Path) -> None:
    """«ООО Вектор» and «АО Вектор» (their names the same without the form) became one
    entry; an entry whose phone a person typed (8 911 …) was never found by it; a row
    whose phones are two entries' took the first, silently."""
    box = deployed()
    typed = box.call(
        "crm.item.add",
        {
            "entityTypeId": 1030,
            "fields": {"title": "Ручной Ввод", "ufCrm1Phone": "8 911 555-55-55"},
        },
    )["item"]["id"]
    mapping = csv_mapping(
        tmp_path,
        "forms",
        """
row_id: "№"
users: {Кузнецова: 6}
parent: {pipeline: sales_turnkey, title: "{Клиент}", stage: {default: NEW}}
contact: {name: Клиент, phone: Телефон}
contractor: {type: contractors, title: Подрядчик, phone: Телефон подрядчика}
children:
  - {link: estimate, when: [Подрядчик], title: "Оценка", contractor: true}
""",
    )
    (tmp_path / "p.csv").write_text(
        "№;Клиент;Телефон;Подрядчик;Телефон подрядчика\n"
        "1;ООО А;8 900 111-22-33;ООО Вектор;8 911 111-11-11\n"
        "2;ООО Б;8 900 222-33-44;АО Вектор;8 911 222-22-22\n"
        "3;ООО В;8 900 333-44-55;Ручной Ввод;+7 911 555-55-55\n"
        "4;ООО Г;8 900 444-55-66;Вектор;8 911 111-11-11, 8 911 222-22-22\n",
        encoding="utf-8",
    )
    result = migrate(box, mapping)
    items = box.call("crm.item.list", {"entityTypeId": 1030, "select": ["id", "title"]})
    assert sorted(i["title"] for i in items["items"]) == ["АО Вектор", "ООО Вектор", "Ручной Ввод"]
    assert [i["id"] for i in items["items"] if i["title"] == "Ручной Ввод"] == [typed]
    warned = [(f.row, f.reason) for f in result.findings if f.kind == "warning"]
    assert warned == [
        (
            5,
            "contractor «Вектор»: its phones are on the directory's «ООО Вектор» and «АО "
            "Вектор»: taken as the first",
        )
    ]


def test_a_company_known_by_name_alone_is_found_again_once_it_has_a_phone(
    tmp_path: Path,
) -> None:
    """A company column with no legal form («Стройтрест») and no phone: the company was
    made keyed by its name, and once the row gained a phone the re-run looked for it by
    the phone's key, made another and was refused for moving the deal to it."""
    box = deployed()
    mapping = csv_mapping(
        tmp_path,
        "by-name",
        """
row_id: "№"
parent: {pipeline: sales_turnkey, title: "{Что}", stage: {default: NEW}}
contact: {name: Клиент, company: Компания, phone: Телефон}
""",
    )
    sheet = tmp_path / "p.csv"
    head = "№;Клиент;Компания;Телефон;Что\n"
    sheet.write_text(head + "1;Иванов Иван;Стройтрест;;кран\n", encoding="utf-8")
    migrate(box, mapping)
    sheet.write_text(head + "1;Иванов Иван;Стройтрест;8 900 111-22-33;кран\n", encoding="utf-8")
    again = migrate(box, mapping)
    assert again.plan.counts["companies"] == {"created": 0, "updated": 1, "unchanged": 0}
    [company] = box.call("crm.company.list", {"select": ["ID", "TITLE", "PHONE"]})
    assert company["TITLE"] == "Стройтрест"
    assert [p["VALUE"] for p in company["PHONE"]] == ["+79001112233"], "it gained the phone"


def test_migrate_init_drafts_a_usable_mapping(tmp_path: Path) -> None:
    import yaml

    from b24kit.migrate.mapping import Mapping

    draft = tmp_path / "draft.yaml"
    result = run_cli(
        "migrate",
        "init",
        "blueprints/company.yaml",
        "--csv",
        str(EXAMPLES / "projects.csv"),
        "-o",
        str(draft),
        cwd=ROOT,
        env={"XDG_CONFIG_HOME": str(tmp_path), "B24_PORTAL": None, "B24_WEBHOOK_URL": None},
    )
    assert result.returncode == 0, result.stderr
    assert "No portal: the 6 name(s) of the person columns are left TODO" in result.stderr
    text = draft.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["contact"] == {"name": "Клиент", "phone": "Телефон", "email": "Email"}
    assert data["contractor"] == {
        "type": "contractors",
        "title": "Подрядчик",
        "phone": "Телефон подрядчика",
    }
    stages = data["parent"]["stage"]["values"]
    assert stages["ESTIMATE"] == ["оценить"] and "считаем" in stages["TODO"], (
        "the sheet's words, matched to the stages they resemble; the others TODO"
    )
    assert data["users"] == dict.fromkeys(
        ["Иванов", "Кузнецова", "Неизвестный", "Орлов", "Петрова", "Смирнов"], "TODO"
    ), "people found in the sheet, case folded; with no portal, every one TODO (never 0)"
    assert data["children"][0]["link"] == "estimate" and data["children"][0]["when"] == [
        "Логист",
        "Подрядчик",
    ]
    # filled: the users given ids, the undecided words dropped (their rows are rejected)
    data["users"] = dict.fromkeys(data["users"], 3)
    for values in (
        stages,
        data["parent"]["fields"]["SOURCE_ID"]["values"],
        data["children"][0]["fields"]["UF_CRM_CONTRACTOR_RATING"]["values"],
    ):
        values.pop("TODO", None)
    Mapping.model_validate(data)


def test_dry_run_lists_every_rejected_row(tmp_path: Path) -> None:
    def migrate(*extra: str) -> CliResult:
        return run_cli(
            "migrate",
            "run",
            str(MAPPING),
            "--dry-run",
            *extra,
            cwd=tmp_path,
            env={"XDG_CONFIG_HOME": str(tmp_path)},
        )

    result = migrate()
    assert result.returncode == 2 and "no portal chosen" in result.stderr, (
        "no silent sandbox: with no portal named the command stops"
    )
    assert not (tmp_path / ".b24kit").exists()
    result = migrate("--portal", "sandbox")
    assert "Using the local sandbox portal" in result.stderr
    # the local sandbox here has no blueprint applied: a clear error, nothing written
    assert result.returncode == 2 and "apply the blueprint first" in result.stderr


def test_committed_mapping_schema_is_current() -> None:
    from b24kit.migrate.mapping import mapping_schema

    committed = json.loads((ROOT / "schema" / "mapping.schema.json").read_text(encoding="utf-8"))
    assert committed == mapping_schema(), (
        "run: b24kit migrate schema --out schema/mapping.schema.json"
    )


def test_xlsx_export_migrates_like_the_csv(tmp_path: Path, reference: dict[str, Any]) -> None:
    import csv as csv_module

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    with (EXAMPLES / "projects.csv").open(encoding="utf-8") as handle:
        for row in csv_module.reader(handle):
            sheet.append(row)
    book.save(tmp_path / "projects.xlsx")
    mapping = (
        MAPPING.read_text(encoding="utf-8")
        .replace("source: {csv: projects.csv, header_rows: 1}", "source: {xlsx: projects.xlsx}")
        .replace("blueprint: ../blueprints/company.yaml", f"blueprint: {COMPANY_PATH}")
    )
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    box = deployed()
    migrate(box, tmp_path / "m.yaml")
    assert dump(box) == reference, "the same sheet as XLSX gives the same portal"


def test_two_runs_at_once_make_nothing_twice(tmp_path: Path, reference: dict[str, Any]) -> None:
    """Issue 16, item 2: two `migrate run` on one portal at once doubled everything. The
    second waits for the first (a lock per portal), says so, and then finds every row."""
    box = deployed(latency_ms=5)
    running = start_in_thread(box)
    try:
        procs = [
            warm.start(
                [
                    "migrate",
                    "run",
                    str(MAPPING),
                    "--yes",
                    "--portal",
                    box.webhook_url(running.base_url),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
                env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
            )
            for _ in range(2)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        running.stop()
    assert [p.returncode for p in procs] == [0, 0], errors
    assert any("holds" in e and "waiting up to" in e for e in errors), errors
    assert dump(box) == reference, "the same portal as one run: nothing twice"
