"""Issue 10's first acceptance point: a messy 2,000-row sheet of our own (tests/messy.py)
with an independent record of the truth. The migration's rejects match it exactly (the
rows and the columns blamed), every valid row's values are the truth's, the clients group
as the truth's do, in the sheet's order and in three shuffled ones; and one real run on
the in-process sandbox lands every valid row field for field, makes the truth's numbers
of contacts, companies, contractors and children, changes nothing when run again, and
leaves `audit` without an error or warn finding."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from b24kit.blueprint.model import Blueprint
from b24kit.client.executor import Command, Ref
from b24kit.links.run import audit_portal
from b24kit.migrate.mapping import Mapping
from b24kit.migrate.plan import (
    Existing,
    Finding,
    MigrationPlan,
    Record,
    Target,
    plan_migration,
    read_records,
)
from b24kit.migrate.run import load_mapping, prepare
from b24kit.migrate.sources import Grid, Table, read_csv, to_table
from b24kit.portal.ids import stage_prefix
from b24kit.portal.snapshot import PipelineSnap, StageSnap
from tests import messy
from tests.clients import client_for
from tests.messy import Row, Sheet
from tests.once import once
from tests.test_migrate import COMPANY, COMPANY_PATH, deployed, migrate, run_async

SEED, ROWS = 10, 2000


@functools.cache
def messy_sheet() -> Sheet:
    """The generated sheet, made on first use: made at import, each test process paid
    for it while collecting, also those that run none of these tests."""
    return messy.make_sheet(SEED, ROWS)


@functools.cache
def clean_sheet() -> Sheet:
    """The rehearsal of every fault but one: a repeated row id
    (test_a_repeated_row_id_...)."""
    return messy.without_duplicate_ids(messy_sheet())


ORIGINATOR = "messy"


def mapping_data(csv_name: str = "messy.csv") -> dict[str, Any]:
    return {
        "version": 1,
        "blueprint": str(COMPANY_PATH),
        "source": {"csv": csv_name},
        "originator": ORIGINATOR,
        "row_id": "№",
        "users": messy.USERS,
        "parent": {
            "pipeline": messy.DEFAULT_PIPELINE,
            "route": {"column": "Направление", "values": messy.ROUTE_VALUES},
            "title": "{Клиент}: {Что везём}",
            "stage": {"column": "Статус", "default": "NEW", "values": messy.STAGES},
            "fields": {
                "OPPORTUNITY": {"column": "Цена", "parse": "money"},
                "BEGINDATE": {"column": "Дата", "parse": "date"},
                "ASSIGNED_BY_ID": {"column": "Менеджер", "parse": "user"},
            },
        },
        "contact": {
            "name": "Клиент",
            "phone": "Телефон",
            "email": "Email",
            "person": "Контактное лицо",
            "inn": "ИНН",
        },
        "contractor": {"type": "contractors", "title": "Подрядчик", "phone": "Телефон подрядчика"},
        "children": [
            {
                "link": "estimate",
                "when": ["Логист"],
                "title": "Оценка: {Что везём}",
                "stage": {"column": "Статус", "default": "NEW", "values": messy.CHILD_STAGES},
                "fields": {"ASSIGNED_BY_ID": {"column": "Логист", "parse": "user"}},
            }
        ],
        "comment": "Комментарий",
    }


MAPPING = Mapping.model_validate(mapping_data())


def pure_target(bp: Blueprint) -> Target:
    """The company blueprint's pipelines as a portal would have them (ids in blueprint
    order), without a portal."""
    snaps = {}
    for i, pipeline in enumerate(bp.deal.pipelines):
        prefix = stage_prefix(2, i)
        stages = [
            StageSnap(j, prefix + s.code, s.code, s.name, (j + 1) * 10, None, s.semantics, False)
            for j, s in enumerate(pipeline.stages)
        ]
        snaps[pipeline.code] = PipelineSnap(i, 2, pipeline.name, i, i == 0, stages=stages)
    link = next(x for x in bp.links if x.name == "estimate")
    return Target(
        snaps[messy.DEFAULT_PIPELINE],
        {"estimate": (link, snaps[link.child.pipeline])},
        1030,
        1,
        None,
        {},
        parents={code: snaps[code] for code in messy.ROUTE_VALUES},
        # the blueprint's other links from these pipelines (engineering), as resolve_target
        implied={
            x.name: (x, snaps[x.child.pipeline])
            for x in bp.links
            if x.name != "estimate" and set(x.parent.codes) & set(messy.ROUTE_VALUES)
        },
    )


TARGET = pure_target(COMPANY)


def csv_table(sheet: Sheet, tmp: Path) -> Table:
    path = tmp / "messy.csv"
    sheet.write_csv(path)
    return to_table(read_csv(path))


def grid_table(sheet: Sheet) -> Table:
    return to_table(Grid("messy", "Проекты", sheet.grid))


# ------------------------------------------------------------------ comparisons
def rejects(findings: list[Finding]) -> dict[int, set[str | None]]:
    out: dict[int, set[str | None]] = {}
    for f in findings:
        if f.kind == "rejected":
            out.setdefault(f.row, set()).add(f.column)
    return out


def truth_rejects(sheet: Sheet, skip: set[int] = frozenset()) -> dict[int, set[str | None]]:  # type: ignore[assignment]
    return {r.row: set(r.reject) for r in sheet.rows if r.reject and r.row not in skip}


def record_values(record: Record) -> dict[str, Any]:
    amount = record.fields.get("OPPORTUNITY")
    return {
        "row_id": record.row_id,
        "pipeline": record.pipeline,
        "stage": record.stage,
        "title": record.title,
        "amount": None if amount is None else f"{Decimal(str(amount)):.2f}",
        "date": record.fields.get("BEGINDATE"),
        "assignee": record.fields.get("ASSIGNED_BY_ID"),
        "phones": sorted(record.phones),
        "emails": sorted(record.emails),
    }


def truth_values(row: Row) -> dict[str, Any]:
    return {
        "row_id": row.row_id,
        "pipeline": row.pipeline,
        "stage": row.stage,
        "title": row.title,
        "amount": row.amount,
        "date": row.date,
        "assignee": row.assignee,
        "phones": sorted(row.phones),
        "emails": sorted(row.emails),
    }


def differences(want: dict[Any, Any], have: dict[Any, Any], limit: int = 12) -> list[Any]:
    keys = sorted(set(want) | set(have), key=str)
    return [(k, want.get(k), have.get(k)) for k in keys if want.get(k) != have.get(k)][:limit]


def planned_clients(plan: MigrationPlan) -> dict[str, dict[str, Any]]:
    """Row id -> what its parent deal was given: the company and the contact, each as
    the content of the command that makes it (ids and command names left out)."""
    made = {c.name: c for c in plan.commands if c.method.endswith(".add")}

    def content(value: Any) -> Any:
        if not isinstance(value, Ref):
            return None
        fields = made[value.command].params["fields"]
        return {
            "ref": value.command,
            "title": fields.get("TITLE"),
            "name": tuple(fields.get(k, "") for k in ("LAST_NAME", "NAME", "SECOND_NAME")),
            "phones": sorted(p["VALUE"] for p in fields.get("PHONE", [])),
            "emails": sorted(e["VALUE"] for e in fields.get("EMAIL", [])),
        }

    out = {}
    for command in plan.commands:
        fields = command.params.get("fields", {})
        origin = str(fields.get("ORIGIN_ID", ""))
        if command.method == "crm.deal.add" and origin.count(":") == 1:
            out[origin[4:]] = {
                "company": content(fields.get("COMPANY_ID")),
                "contact": content(fields.get("CONTACT_ID")),
            }
    return out


def partition(groups: dict[str, set[str]]) -> set[frozenset[str]]:
    return {frozenset(rows) for rows in groups.values()}


def expected_client(sheet: Sheet, row: Row) -> dict[str, Any]:
    """What the truth says the row's deal gets: its company (TITLE, phones, e-mails) or
    contact (split name, phones, e-mails), and an organisation's contact person (words)."""
    assert row.client is not None
    entity = sheet.entity(row.client)
    if entity["kind"] == "company":
        return {
            "company": (entity["name"], entity["phones"], entity["emails"]),
            "person": row.person and row.person.replace("ё", "е"),
        }
    name = entity["name"]
    return {"contact": (tuple(name) if name else ("", "", ""), entity["phones"], entity["emails"])}


def planned_client(plan: dict[str, Any], made: dict[str, Command]) -> dict[str, Any]:
    company, contact = plan["company"], plan["contact"]
    if company is not None:
        person = None
        if contact is not None:
            words = [w for w in contact["name"] if w]
            person = " ".join(sorted(" ".join(words).lower().replace("ё", "е").split()))
        return {
            "company": (company["title"], company["phones"], company["emails"]),
            "person": person,
        }
    if contact is None:
        return {}
    return {"contact": (contact["name"], contact["phones"], contact["emails"])}


def check_pure(sheet: Sheet, table: Table) -> list[str]:
    """Everything the pure run should match, as a list of what did not (empty: all)."""
    problems: list[str] = []
    records, findings = read_records(table, MAPPING)
    foreign = {r.row for r in sheet.rows if r.foreign_currency}
    want_rejects = truth_rejects(sheet)
    have_rejects = rejects(findings)
    if want_rejects != have_rejects:
        problems.append(
            f"rejects (row, truth, migration): {differences(want_rejects, have_rejects)}"
        )
    valid = {r.row: r for r in sheet.valid()}
    want = {n: truth_values(r) for n, r in valid.items()}
    have = {r.row: record_values(r) for r in records}
    for n in foreign:  # another currency: test_an_amount_in_dollars_...
        for side in (want, have):
            if n in side:
                side[n]["amount"] = None
    if want != have:
        problems.append(f"values (row, truth, migration): {differences(want, have)}")
    plan = plan_migration(records, MAPPING, TARGET, Existing())
    planned = planned_clients(plan)
    made = {c.name: c for c in plan.commands if c.method.endswith(".add")}
    # the grouping: rows of one client share one entity
    by_entity: dict[str, set[str]] = {}
    for row_id, got in planned.items():
        ref = (got["company"] or got["contact"] or {"ref": f"none:{row_id}"})["ref"]
        by_entity.setdefault(ref, set()).add(row_id)
    if partition(sheet.groups()) != partition(by_entity):
        want_p, have_p = partition(sheet.groups()), partition(by_entity)
        problems.append(
            "groups: truth only "
            f"{sorted(sorted(g) for g in want_p - have_p)[:6]}, migration only "
            f"{sorted(sorted(g) for g in have_p - want_p)[:6]}"
        )
    want_c = {r.row_id: expected_client(sheet, r) for r in valid.values()}
    have_c = {k: planned_client(v, made) for k, v in planned.items()}
    if want_c != have_c:
        problems.append(f"clients (row id, truth, migration): {differences(want_c, have_c, 8)}")
    counts = Counter(c.method for c in plan.commands)
    created = {
        "parents": sum(
            1
            for c in plan.commands
            if c.method == "crm.deal.add" and str(c.params["fields"]["ORIGIN_ID"]).count(":") == 1
        ),
        "children": sum(
            1
            for c in plan.commands
            if c.method == "crm.deal.add" and str(c.params["fields"]["ORIGIN_ID"]).count(":") == 2
        ),
        "companies": counts["crm.company.add"],
        "contacts": counts["crm.contact.add"],
        "contractors": counts["crm.item.add"],
        "comments": counts["crm.timeline.comment.add"],
    }
    if created != sheet.counts():
        problems.append(f"counts: truth {sheet.counts()}, planned {created}")
    warned = {f.row for f in findings if f.kind == "warning" and "formula" in f.reason}
    unwarned = {r.row for r in sheet.valid() if r.warn} - warned
    if unwarned:
        problems.append(f"formulas kept as text without a warning: rows {sorted(unwarned)[:10]}")
    return problems


# ------------------------------------------------------------------ pure, fast
def test_the_sheet_is_as_messy_as_promised() -> None:
    """The generator's own promise: 2,000 rows, every fault kind present, the truth sane."""
    sheet = messy_sheet()
    assert len(sheet.rows) >= 2000
    kinds = Counter(r.kind for r in sheet.rows)
    for kind in messy.FAULTS:
        assert kinds[kind] >= 3, (kind, kinds)
    text = "\n".join(",".join(line) for line in sheet.cells)
    for ugly in ["1e9999", "ок 5000", "12-15 тыс", "abc123", "-500", "OOO АгроМир", "АгроМир ООО"]:
        assert ugly in text, ugly
    assert messy.NBSP in text and "доб." in text and "=ССЫЛКА" in text
    counts = sheet.counts()
    assert counts["companies"] >= 15 and counts["contacts"] >= 60, counts
    agromir = sheet.groups()["agromir"]
    spellings = {sheet.cells[r.row - 1][3] for r in sheet.valid() if r.row_id in agromir}
    assert len(spellings) >= 6, spellings


@pytest.mark.parametrize(
    "order", [None, 1, 2, 3], ids=["sheet", "shuffled1", "shuffled2", "shuffled3"]
)
def test_rejects_values_and_clients_match_the_truth(order: int | None, tmp_path: Path) -> None:
    sheet = clean_sheet() if order is None else messy.shuffled(clean_sheet(), order)
    assert check_pure(sheet, csv_table(sheet, tmp_path)) == []


def test_the_same_rows_read_from_google_sheets_match_the_truth() -> None:
    """The same rows as gspread reads them (digits as numbers: phones, serial dates,
    amounts, row ids, an INN that starts with 0 without it)."""
    assert check_pure(clean_sheet(), grid_table(clean_sheet())) == []


def test_a_repeated_row_id_rejects_both_rows_in_any_order(tmp_path: Path) -> None:
    """A row id written on two rows names neither: which one is the project depends on
    the order the rows happen to be in (a re-run on a re-sorted sheet would overwrite one
    project with the other). The truth rejects both."""
    for order in (None, 1):
        sheet = messy_sheet() if order is None else messy.shuffled(messy_sheet(), order)
        records, findings = read_records(csv_table(sheet, tmp_path), MAPPING)
        dup = {r.row for r in sheet.rows if r.duplicate_id}
        got = {n: cols for n, cols in rejects(findings).items() if n in dup}
        assert got == {n: cols for n, cols in truth_rejects(sheet).items() if n in dup}


def test_an_amount_in_dollars_is_not_written_as_roubles(tmp_path: Path) -> None:
    """«$1 200», «950 евро»: the parser reads the currency, and the deal must not get the
    number as roubles: the row is rejected, naming the currency."""
    records, findings = read_records(csv_table(clean_sheet(), tmp_path), MAPPING)
    rows = {r.row for r in clean_sheet().rows if r.foreign_currency}
    assert rows
    assert not [r for r in records if r.row in rows]
    said = {f.row: f.reason for f in findings if f.row in rows and f.column == "Цена"}
    assert set(said) == rows
    assert all(re.search(r"an amount in (USD|EUR)", reason) for reason in said.values())


# ------------------------------------------------------------------ one real run
def read_all(box: Any, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    start = 0
    while True:
        page = box._run(
            method, {**params, "start": start}, 1, frozenset({"crm"}), "t", False, metered=False
        )
        out += page["result"]
        if "next" not in page:
            return out
        start = page["next"]


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real run of the sheet (without its repeated row ids) on the in-process
    sandbox, what it left on the portal, audit's findings, and a dry run after it: made
    once per test run (tests/once.py), whichever worker asks first."""
    return once(tmp_path_factory, "messy-landed", lambda: _land(tmp_path_factory))


def _land(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("messy")
    clean_sheet().write_csv(tmp / "messy.csv")
    mapping = tmp / "messy.mapping.yaml"
    mapping.write_text(yaml.safe_dump(mapping_data(), allow_unicode=True), encoding="utf-8")
    box = deployed()
    result = migrate(box, mapping)

    async def after() -> tuple[Any, Any]:
        with client_for(box) as client:
            audit = await audit_portal(client, COMPANY)
            return audit, await prepare(client, load_mapping(mapping), mapping.parent)

    audit, again = run_async(after)
    return {
        "failed": result.failed,
        "again_counts": again.plan.counts,
        "again_commands": len(again.plan.commands),
        "findings": audit.findings,
        "deals": read_all(box, "crm.deal.list", {"select": ["*", "UF_*"]}),
        "contacts": read_all(box, "crm.contact.list", {"select": ["*", "PHONE", "EMAIL"]}),
        "companies": read_all(box, "crm.company.list", {"select": ["*", "PHONE", "EMAIL"]}),
        "categories": box.call("crm.category.list", {"entityTypeId": 2})["categories"],
        "contractors": len(box.portal.db.all("SELECT id FROM items WHERE entity_type_id >= 128")),
        "comments": len(box.portal.db.all("SELECT id FROM timeline_comments")),
    }


def comms(entity: dict[str, Any], kind: str) -> list[str]:
    return sorted(str(x["VALUE"]) for x in entity.get(kind) or [])


def test_every_valid_row_lands_field_for_field(landed: dict[str, Any]) -> None:
    assert not landed["failed"]
    categories = {c["name"]: int(c["id"]) for c in landed["categories"]}
    pipelines = {p.code: categories[p.name] for p in COMPANY.deal.pipelines if p.name in categories}
    deals = {d["ORIGIN_ID"]: d for d in landed["deals"] if d.get("ORIGINATOR_ID") == ORIGINATOR}
    contacts = {int(c["ID"]): c for c in landed["contacts"]}
    companies = {int(c["ID"]): c for c in landed["companies"]}
    want: dict[str, Any] = {}
    have: dict[str, Any] = {}
    for row in clean_sheet().valid():
        deal = deals.get(f"row:{row.row_id}")
        assert deal is not None, f"row {row.row} ({row.row_id}) did not land"
        category = pipelines[row.pipeline or ""]
        client = expected_client(clean_sheet(), row)
        want[row.row_id] = {
            "title": row.title,
            "category": category,
            "stage": stage_prefix(2, category) + str(row.stage),
            "amount": None if row.foreign_currency else row.amount or "0.00",
            "date": row.date,
            "assignee": row.assignee,
            **client,
        }
        company = companies.get(int(deal.get("COMPANY_ID") or 0))
        contact = contacts.get(int(deal.get("CONTACT_ID") or 0))
        got: dict[str, Any] = {
            "title": deal["TITLE"],
            "category": int(deal["CATEGORY_ID"]),
            "stage": deal["STAGE_ID"],
            "amount": None if row.foreign_currency else f"{Decimal(deal['OPPORTUNITY']):.2f}",
            # no date in the row: the portal's own default (the day the deal was made)
            "date": (str(deal.get("BEGINDATE") or "")[:10] or None) if row.date else None,
            "assignee": int(deal["ASSIGNED_BY_ID"]) if row.assignee else None,
        }
        if company is not None:
            person = None
            if contact is not None:
                words = " ".join(
                    str(contact.get(k) or "") for k in ("LAST_NAME", "NAME", "SECOND_NAME")
                )
                person = " ".join(sorted(words.lower().replace("ё", "е").split()))
            got["company"] = (company["TITLE"], comms(company, "PHONE"), comms(company, "EMAIL"))
            got["person"] = person
        elif contact is not None:
            got["contact"] = (
                tuple(str(contact.get(k) or "") for k in ("LAST_NAME", "NAME", "SECOND_NAME")),
                comms(contact, "PHONE"),
                comms(contact, "EMAIL"),
            )
        have[row.row_id] = got
    assert differences(want, have) == []


def test_counts_on_the_portal_are_the_truth_s(landed: dict[str, Any]) -> None:
    mine = [d for d in landed["deals"] if d.get("ORIGINATOR_ID") == ORIGINATOR]
    got = {
        "parents": sum(1 for d in mine if str(d["ORIGIN_ID"]).count(":") == 1),
        "children": sum(1 for d in mine if str(d["ORIGIN_ID"]).count(":") == 2),
        "companies": len(landed["companies"]),
        "contacts": len(landed["contacts"]),
        "contractors": landed["contractors"],
        "comments": landed["comments"],
    }
    assert got == clean_sheet().counts()


def test_a_dry_run_after_the_run_plans_no_deal_company_or_contractor(
    landed: dict[str, Any],
) -> None:
    counts = landed["again_counts"]
    for entity in ("parents", "children", "companies", "contractors"):
        assert counts[entity]["created"] == counts[entity]["updated"] == 0, (entity, counts)
    assert counts["parents"]["unchanged"] == len(clean_sheet().valid())


def test_a_dry_run_after_the_run_changes_nothing(landed: dict[str, Any]) -> None:
    counts = landed["again_counts"]
    assert all(c["created"] == 0 and c["updated"] == 0 for c in counts.values()), counts
    assert landed["again_commands"] == 0


def test_audit_finds_nothing_the_migration_caused(landed: dict[str, Any]) -> None:
    from b24kit.links.audit import RULES

    bad = [f for f in landed["findings"] if RULES[f.rule][1] in ("error", "warn")]
    assert bad == [], Counter(f.rule for f in bad)


def test_the_truth_file_is_json(tmp_path: Path) -> None:
    """The generator's truth, as the script writes it next to the CSV, reads back."""
    data = json.loads(json.dumps(messy_sheet().truth(), ensure_ascii=False))
    assert data["counts"] == messy_sheet().counts()
    assert len(data["rows"]) == len(messy_sheet().rows)
