"""Re-runs with edits (issue 10, item 5): the sheet is edited after a migration and the
migration run again. Each edit does what the dry run said, to the entity b24kit made,
and leaves `audit` clean of error and warn findings: a new phone joins the same client,
a status moves the deal forward (never back) with its child and mirror, an edited
comment updates b24kit's comment, a renamed client renames its contact or company, and a
changed amount updates the deal."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import example_subset
from tests.cli import CliResult, run_cli
from tests.example_subset import (
    client,
    commented,
    contract,
    estimating,
    estimating_priced,
    fresh,
    paid,
    priced_447_200,
)


@pytest.fixture(scope="module")
def migrated_db(deployed_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A part of the example sheet (tests/example_subset.py: the rows these tests pick and
    the rows that share their clients) migrated once per test run into the deployed
    company blueprint: each test runs the migration three times, and the sheet's 300 rows
    are not what it checks."""
    return example_subset.migrated(tmp_path_factory, deployed_db)


@pytest.fixture
def home(migrated_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    example_subset.make_home(tmp_path, migrated_db)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path


def cli(*args: str) -> CliResult:
    return run_cli(*args)


def edit_rows(home: Path, change: Callable[[dict[str, str]], bool]) -> list[dict[str, str]]:
    """Rewrite the example sheet, ``change`` editing each row in place (True: it did)."""
    sheet = home / "examples" / "projects.csv"
    rows = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8"))))
    changed = [row for row in rows if change(row)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    sheet.write_text(out.getvalue(), encoding="utf-8")
    assert changed, "the edit found its rows"
    return changed


def rerun(home: Path) -> dict[str, Any]:
    """Dry run, then the run: the run does what the dry run said; returns the run's
    JSON: its summary and findings."""
    mapping = "examples/projects.mapping.yaml"
    dry = cli("migrate", "run", mapping, "-p", "sandbox", "--dry-run", "-f", "json")
    assert dry.code == 0, dry.stdout + dry.stderr
    run = cli("migrate", "run", mapping, "-p", "sandbox", "--yes", "-f", "json")
    assert run.code == 0, run.stdout + run.stderr
    said, did = json.loads(dry.stdout), json.loads(run.stdout)
    assert said["entities"] == did["entities"], "the run did what was shown"
    assert did["failed_commands"] == 0
    again = json.loads(
        cli("migrate", "run", mapping, "-p", "sandbox", "--dry-run", "-f", "json").stdout
    )
    for entity, counts in again["entities"].items():
        assert counts["created"] == counts["updated"] == 0, (entity, counts)
    return did


def audit_clean() -> None:
    result = cli("audit", "blueprints/company.yaml", "-p", "sandbox", "-f", "json")
    findings = json.loads(result.stdout)["findings"]
    assert result.code == 0, [f for f in findings if f["severity"] != "info"]


def call(method: str, params: dict[str, Any]) -> Any:
    """One REST call to the sandbox through `b24kit call` (all pages of a list)."""
    args = ["call", method, "--json", json.dumps(params), "-p", "sandbox"]
    if method.endswith(".list"):
        args.append("--all")
    result = cli(*args)
    assert result.code == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    return answer["result"] if isinstance(answer, dict) and "result" in answer else answer


def deal(origin: str) -> dict[str, Any]:
    [found] = call(
        "crm.deal.list",
        {"filter": {"ORIGIN_ID": origin}, "select": ["*", "UF_*", "PHONE"]},
    )
    return dict(found)


def unwrap(answer: Any, key: str) -> list[dict[str, Any]]:
    """A new-style list's rows, whether `call --all` gave them flat or wrapped."""
    return list(answer[key] if isinstance(answer, dict) else answer)


def count(table: str) -> int:
    with sqlite3.connect(".b24kit/sandbox.sqlite") as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def stage_history(deal_id: int) -> list[str]:
    rows = call("crm.stagehistory.list", {"entityTypeId": 2, "filter": {"OWNER_ID": deal_id}})
    return [r["STAGE_ID"] for r in rows["items"]]


def valid(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows the migration took (sheet row = index + 2: the header is row 1)."""
    rejected = example_subset.subset().rejected
    return [r for i, r in enumerate(rows, start=2) if i not in rejected]


def sheet_rows(home: Path) -> list[dict[str, str]]:
    text = (home / "examples" / "projects.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def first(home: Path, wanted: Callable[[dict[str, str]], bool]) -> str:
    """The № of the first migrated row that ``wanted``."""
    return next(r["№"] for r in valid(sheet_rows(home)) if wanted(r))


def test_a_new_phone_or_e_mail_joins_the_same_client(home: Path) -> None:
    """A new phone made a second contact and moved the deals to it."""
    contacts = len(call("crm.contact.list", {"select": ["ID"]}))
    companies = len(call("crm.company.list", {"select": ["ID"]}))
    person = first(home, client("Иван Сидоров"))
    company = first(home, client("ООО Тяжмаш"))
    before = {
        d["ID"]: d["CONTACT_ID"] for d in call("crm.deal.list", {"select": ["ID", "CONTACT_ID"]})
    }

    def change(row: dict[str, str]) -> bool:
        if row["№"] == person:
            row["Телефон"] += "; 8 (917) 555-00-11"
            return True
        if row["№"] == company:
            row["Email"] = "Zakaz@Tyazhmash.RU"
            return True
        return False

    assert len(edit_rows(home, change)) == 2
    did = rerun(home)
    assert did["entities"]["contacts"]["updated"] == 1
    assert did["entities"]["companies"]["updated"] == 1
    assert len(call("crm.contact.list", {"select": ["ID"]})) == contacts, "no second contact"
    assert len(call("crm.company.list", {"select": ["ID"]})) == companies, "no second company"
    sidorov = call("crm.contact.get", {"id": deal(f"row:{person}")["CONTACT_ID"]})
    assert "+79175550011" in [p["VALUE"] for p in sidorov["PHONE"]]
    assert "+79998887766" in [p["VALUE"] for p in sidorov["PHONE"]], "the old phone stays"
    tyazh = call("crm.company.get", {"id": deal(f"row:{company}")["COMPANY_ID"]})
    assert "zakaz@tyazhmash.ru" in [e["VALUE"] for e in tyazh["EMAIL"]], "lowercased"
    after = {
        d["ID"]: d["CONTACT_ID"] for d in call("crm.deal.list", {"select": ["ID", "CONTACT_ID"]})
    }
    assert after == before, "no deal moved to another contact"
    audit_clean()


def test_a_status_moves_the_deal_forward_with_its_child_and_mirror(home: Path) -> None:
    """A status change rewrote the parent's mirror field but moved no stage, so audit
    flagged the migration's own work (L004)."""
    opened, estimated, closed = first(home, fresh), first(home, estimating), first(home, paid)
    assert not call("crm.deal.list", {"filter": {"ORIGIN_ID": f"row:{opened}:estimate"}})
    won = deal(f"row:{closed}")["STAGE_ID"]

    def change(row: dict[str, str]) -> bool:
        new = {opened: "Оценить", estimated: "Оценка готова", closed: "Новая"}.get(row["№"])
        if new:
            row["Статус"] = new
        return new is not None

    edit_rows(home, change)
    did = rerun(home)
    warnings = [f for f in did["findings"] if f["kind"] == "warning"]
    assert {w["row_id"] for w in warnings} == {closed}, "only the backward row is warned"
    assert all("a migration never" in w["reason"] for w in warnings)
    assert [w for w in warnings if w["reason"].startswith("parent deal: the deal is closed")]

    parent = deal(f"row:{opened}")
    assert parent["STAGE_ID"].endswith(":ESTIMATE"), "moved forward to the trigger"
    child = deal(f"row:{opened}:estimate")
    assert child["UF_CRM_PARENT_DEAL"] == f"D_{parent['ID']}"
    assert parent["UF_CRM_CHILD_DEAL"] == f"D_{child['ID']}"
    assert parent["UF_CRM_CHILD_STAGE"], "the mirror shows the child's stage"

    parent = deal(f"row:{estimated}")
    child = deal(f"row:{estimated}:estimate")
    assert child["STAGE_ID"].endswith(":APPROVAL"), "the child moved on"
    assert parent["STAGE_ID"].endswith(":ESTIMATE_READY"), "and the parent with it"
    names = {s["STATUS_ID"]: s["NAME"] for s in call("crm.status.list", {"filter": {}})}
    assert parent["UF_CRM_CHILD_STAGE"] == names[child["STAGE_ID"]], "mirror: the child's stage"

    assert deal(f"row:{closed}")["STAGE_ID"] == won, "a closed deal is never moved back"
    audit_clean()


def test_an_edited_comment_updates_b24kit_s_comment(home: Path) -> None:
    row = first(home, commented)
    comments = count("timeline_comments")
    edit_rows(
        home,
        lambda r: r["№"] == row and bool(r.update({"Комментарий": "Пропуск на 2 дня"})) is False,
    )
    did = rerun(home)
    assert did["entities"]["comments"]["updated"] == 1
    assert count("timeline_comments") == comments, "no second comment"
    listed = call(
        "crm.timeline.comment.list",
        {"filter": {"ENTITY_ID": int(deal(f"row:{row}")["ID"]), "ENTITY_TYPE": "deal"}},
    )
    assert [c["COMMENT"].split("\n\n")[0] for c in listed] == ["Пропуск на 2 дня"]
    audit_clean()


def test_a_renamed_client_renames_its_contact_or_company(home: Path) -> None:
    """A renamed client renamed the deal but not the client."""
    person = first(home, client("Иван Сидоров"))
    company = first(home, client("ООО Вектор"))
    names = {"Иван Сидоров": "Сидоров Иван Петрович", "ООО Вектор": "ООО «Вектор-Плюс»"}

    def change(row: dict[str, str]) -> bool:
        new = names.get(row["Клиент"])
        if new:
            row["Клиент"] = new
        return new is not None

    edit_rows(home, change)
    did = rerun(home)
    assert did["entities"]["contacts"]["updated"] == 1
    assert did["entities"]["companies"]["updated"] == 1
    sidorov = call("crm.contact.get", {"id": deal(f"row:{person}")["CONTACT_ID"]})
    assert (sidorov["LAST_NAME"], sidorov["NAME"], sidorov["SECOND_NAME"]) == (
        "Сидоров",
        "Иван",
        "Петрович",
    )
    vector = call("crm.company.get", {"id": deal(f"row:{company}")["COMPANY_ID"]})
    assert vector["TITLE"] == "ООО «Вектор-Плюс»"
    assert deal(f"row:{company}")["TITLE"].startswith("ООО «Вектор-Плюс»: ")
    audit_clean()


def test_a_changed_amount_updates_the_deal(home: Path) -> None:
    row = first(home, priced_447_200)
    edit_rows(home, lambda r: r["№"] == row and r.update({"Цена": "450 000 ₽"}) is None)
    did = rerun(home)
    assert did["entities"]["parents"]["updated"] == 1
    assert deal(f"row:{row}")["OPPORTUNITY"] == "450000.00"
    audit_clean()


def test_a_child_sync_made_is_found_again_by_a_re_run(home: Path) -> None:
    """A reviewer's find: a person moved a migrated parent to «Оценить», sync made its
    child, and the next run of the unchanged sheet made a second one (L003)."""
    row = first(home, fresh)
    parent = deal(f"row:{row}")
    category = parent["CATEGORY_ID"]
    cli("call", "crm.deal.update", "--json",
        json.dumps({"id": int(parent["ID"]), "fields": {"STAGE_ID": f"C{category}:ESTIMATE"}}),
        "-p", "sandbox")  # fmt: skip
    synced = cli("sync", "blueprints/company.yaml", "-p", "sandbox", "--once")
    assert synced.code == 0, synced.stdout + synced.stderr
    made = call("crm.deal.list", {"filter": {"UF_CRM_PARENT_DEAL": f"D_{parent['ID']}"}})
    assert len(made) == 1, "sync made the child"
    did = rerun(home)
    assert did["entities"]["children"]["created"] == 0, "the run found sync's child"
    again = call("crm.deal.list", {"filter": {"UF_CRM_PARENT_DEAL": f"D_{parent['ID']}"}})
    assert [d["ID"] for d in again] == [d["ID"] for d in made]
    audit_clean()


def test_a_sale_the_sheet_closes_closes_the_engineers_task_under_it(home: Path) -> None:
    """A reviewer's find: a parent closed by a re-run left the child of a link the mapping
    does not name open (audit's L006), with no word in the dry run."""
    row = first(home, contract)
    task = deal(f"row:{row}:engineering")
    assert task["STAGE_ID"].endswith(":NEW")
    edit_rows(home, lambda r: r["№"] == row and r.update({"Статус": "Оплачено"}) is None)
    rerun(home)
    assert deal(f"row:{row}")["STAGE_ID"].endswith(":WON")
    assert deal(f"row:{row}:engineering")["STAGE_ID"].endswith(":WON"), "closed with its sale"
    audit_clean()


def test_a_move_by_a_re_run_records_the_quote(home: Path) -> None:
    """A reviewer's find: the re-run moved the parent to «Оценка готова» as sync would,
    but recorded no quote, and sync, seeing no move to make, never did."""
    row = first(home, estimating_priced)
    assert not deal(f"row:{row}").get("UF_CRM_ESTIMATE_PRICE")
    edit_rows(home, lambda r: r["№"] == row and r.update({"Статус": "Оценено"}) is None)
    rerun(home)
    parent, child = deal(f"row:{row}"), deal(f"row:{row}:estimate")
    assert parent["STAGE_ID"].endswith(":ESTIMATE_READY")
    price, currency = parent["UF_CRM_ESTIMATE_PRICE"].split("|")
    assert (float(price), currency) == (float(child["OPPORTUNITY"]), "RUB"), "the estimate's"
    audit_clean()


def test_a_run_writes_the_directory_s_stats_and_nothing_else_there(home: Path) -> None:
    """A reviewer's find: a run ended with a whole sync pass over the directory, merging a
    hand-made duplicate that no dry run had shown. Now it rewrites stale stats only, and
    says so before and after."""
    [spa] = unwrap(call("crm.type.list", {"filter": {"code": "contractors"}}), "types")
    etid, type_id = spa["entityTypeId"], spa["id"]
    items = unwrap(call("crm.item.list", {"entityTypeId": etid, "useOriginalUfNames": "Y",
                                   "select": ["id", f"UF_CRM_{type_id}_PHONE"]}), "items")  # fmt: skip
    phone = items[0][f"UF_CRM_{type_id}_PHONE"]
    dup = call(
        "crm.item.add",
        {"entityTypeId": etid, "useOriginalUfNames": "Y",
         "fields": {"title": "Дубль", f"UF_CRM_{type_id}_PHONE": phone}},
    )["item"]["id"]  # fmt: skip
    row = first(home, commented)
    edit_rows(home, lambda r: r["№"] == row and r.update({"Комментарий": "Иначе"}) is None)
    mapping = "examples/projects.mapping.yaml"
    said = cli("migrate", "run", mapping, "-p", "sandbox", "--dry-run")
    assert "the contractor directory's stats" in said.stdout, said.stdout
    rerun(home)
    after = call("crm.item.get", {"entityTypeId": etid, "id": dup})["item"]
    assert "FAIL" not in after["stageId"], "a duplicate is sync's to merge, not a run's"


def test_a_row_that_names_another_client_is_refused_until_asked(home: Path) -> None:
    """A re-run gave a deal b24kit made to whatever client its row named now: a second
    sheet under the same originator, or a sorted sheet without row ids, handed every deal
    to another client. A deal changes hands only with --reassign-deals; refused, the
    run (and its dry run) writes nothing and says which deal and which clients."""
    number = first(home, client("ООО Тяжмаш"))
    before = deal(f"row:{number}")

    def change(row: dict[str, str]) -> bool:
        if row["№"] != number:
            return False
        row.update({"Клиент": "ООО Новый Заказчик", "Телефон": "8 999 123-45-67", "Email": ""})
        return True

    edit_rows(home, change)
    mapping = "examples/projects.mapping.yaml"
    for extra in ("--dry-run", "--yes"):
        refused = cli("migrate", "run", mapping, "-p", "sandbox", extra)
        assert refused.code == 2, refused.stdout + refused.stderr
        error, hint = refused.stderr.strip().splitlines()[-2:]
        assert "1 deal(s) made earlier under originator 'legacy-projects' would become " in error
        assert (
            f"deal #{before['ID']} belongs to company #{before['COMPANY_ID']} «ООО Тяжмаш», "
            "the row names a new company «ООО Новый Заказчик»"
        ) in error
        assert "own originator" in hint and "--reassign-deals" in hint
    assert deal(f"row:{number}") == before, "nothing written"
    moved = cli("migrate", "run", mapping, "-p", "sandbox", "--yes", "--reassign-deals")
    assert moved.code == 0, moved.stdout + moved.stderr
    after = deal(f"row:{number}")
    assert after["ID"] == before["ID"] and after["COMPANY_ID"] != before["COMPANY_ID"]
    assert call("crm.company.get", {"id": after["COMPANY_ID"]})["TITLE"] == "ООО Новый Заказчик"
    audit_clean()
