"""Issue 14's tables on a seeded company: four projects in three sales directions, with
their logistics and engineering children, two contractors, three first-contact sources
(one a lead the deal was converted from), a quote recorded and the cheque grown since,
under a controlled clock. Every figure is written out by hand from the timeline below."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from b24kit.blueprint.loader import load_blueprint
from b24kit.reports.build import build_report
from b24kit.reports.read import Filters
from b24kit.sandbox import Sandbox
from tests.cli import ROOT, run_cli
from tests.clients import client_for
from tests.clocks import FakeClock
from tests.once import once

COMPANY = ROOT / "blueprints" / "company.yaml"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
HOUR = 3600.0
NOW = T0 + 240 * HOUR  # the reports are made ten days on
BP = load_blueprint(COMPANY)[0]  # read once: the reports only read it


class Company:
    """The timeline (hours from T0):
    h0  A turnkey (manager 2, from lead LA: WEB / yandex / spring), B rental (manager 5,
        ADVERTISING / google), C transport (manager 2, ADVERTISING / google), D turnkey
        (manager 5, CALL): all at «Новая заявка»
    h1  A, B, C to «Оценить»; their estimates open at «Новая оценка» (A: logistician 4,
        contractor C1 60,000, rating 5, paid; B: 4, C1 40,000, rating 3, not paid;
        C: 6, C2 70,000, rating 4)
    h3  estimates of A and C to «В работе у логиста»
    h5  A's estimate to «Согласование»; A records its quote 90,000 and goes to «Оценка готова»
    h11 B's estimate to «Согласование» (no quote recorded: its amount 50,000 is the quote)
    h12 A to «Договор»; its engineering task opens (engineer 7)
    h24 A won at 120,000, B won at 55,000, both estimates accepted; C's amount 77,000
    h240 now"""

    def __init__(self, db: Path) -> None:
        self.now = [T0]
        self.box = Sandbox(db=str(db), limits="off", clock=lambda: self.now[0])
        cats = self.box.call("crm.category.list", {"entityTypeId": 2})["categories"]
        self.cat = {c["name"]: c["id"] for c in cats}
        spa = self.box.call("crm.type.list", {"filter": {"code": "contractors"}})["types"][0]
        self.etid = spa["entityTypeId"]
        fields = {f["FIELD_NAME"]: f for f in self.box.call("crm.deal.userfield.list")}
        ratings = self.box.call(
            "crm.deal.userfield.get", {"id": fields["UF_CRM_CONTRACTOR_RATING"]["ID"]}
        )
        self.rating = {v["VALUE"][0]: v["ID"] for v in ratings["LIST"]}

    def tick(self, hours: float) -> None:
        self.now[0] += hours * HOUR

    def add(self, pipeline: str, **fields: Any) -> int:
        cat = self.cat[pipeline]
        stage = fields.pop("stage", "NEW")
        body = {"CATEGORY_ID": cat, "STAGE_ID": f"C{cat}:{stage}", "TITLE": pipeline, **fields}
        return int(self.box.call("crm.deal.add", {"fields": body}))

    def move(self, deal: int, pipeline: str, stage: str, **fields: Any) -> None:
        body = {"STAGE_ID": f"C{self.cat[pipeline]}:{stage}", **fields}
        self.box.call("crm.deal.update", {"id": deal, "fields": body})

    def contractor(self, title: str) -> int:
        item = self.box.call(
            "crm.item.add", {"entityTypeId": self.etid, "fields": {"title": title}}
        )
        return int(item["item"]["id"])

    def estimate(
        self,
        parent: int,
        who: int,
        amount: float,
        entry: int,
        price: float,
        rating: str,
        paid: bool | None,
    ) -> int:
        fields: dict[str, Any] = {
            "UF_CRM_PARENT_DEAL": f"D_{parent}",
            "ASSIGNED_BY_ID": who,
            "OPPORTUNITY": amount,
            "UF_CRM_CONTRACTOR": f"T{self.etid:x}_{entry}",
            "UF_CRM_CONTRACTOR_PRICE": price,
            "UF_CRM_CONTRACTOR_RATING": self.rating[rating],
        }
        if paid is not None:
            fields["UF_CRM_CONTRACTOR_PAID"] = 1 if paid else 0
        return self.add("Логистика", **fields)


TURNKEY, RENTAL = "Продажи: Услуга под ключ", "Продажи: Аренда техники"
TRANSPORT, LOG, ENG = "Продажи: Перевозка техники", "Логистика", "Инженеры"


def seed(db: Path) -> dict[str, int]:
    c = Company(db)
    box = c.box
    lead = int(
        box.call(
            "crm.lead.add",
            {
                "fields": {
                    "TITLE": "Заявка с сайта",
                    "SOURCE_ID": "WEB",
                    "UTM_SOURCE": "yandex",
                    "UTM_CAMPAIGN": "spring",
                }
            },
        )
    )
    a = c.add(TURNKEY, OPPORTUNITY=100000, ASSIGNED_BY_ID=2)
    box.portal.convert_lead(lead, a)
    ad = {"SOURCE_ID": "ADVERTISING", "UTM_SOURCE": "google"}
    b = c.add(RENTAL, OPPORTUNITY=50000, ASSIGNED_BY_ID=5, **ad)
    cc = c.add(TRANSPORT, OPPORTUNITY=75000, ASSIGNED_BY_ID=2, **ad)
    d = c.add(TURNKEY, OPPORTUNITY=20000, ASSIGNED_BY_ID=5, SOURCE_ID="CALL")
    c1, c2 = c.contractor("ТрансСнаб"), c.contractor("АгроМир")
    c.tick(1)
    for deal, pipeline in ((a, TURNKEY), (b, RENTAL), (cc, TRANSPORT)):
        c.move(deal, pipeline, "ESTIMATE")
    la = c.estimate(a, 4, 80000, c1, 60000, "5", True)
    lb = c.estimate(b, 4, 50000, c1, 40000, "3", False)
    lc = c.estimate(cc, 6, 70000, c2, 70000, "4", None)
    c.tick(2)
    c.move(la, LOG, "IN_WORK")
    c.move(lc, LOG, "IN_WORK")
    c.tick(2)
    c.move(la, LOG, "APPROVAL")
    c.move(
        a,
        TURNKEY,
        "ESTIMATE_READY",
        UF_CRM_ESTIMATE_PRICE="90000|RUB",
        UF_CRM_ESTIMATE_AT=box.portal.now(),
    )
    c.tick(6)
    c.move(lb, LOG, "APPROVAL")
    c.move(b, RENTAL, "ESTIMATE_READY")
    c.tick(1)
    c.move(a, TURNKEY, "CONTRACT")
    ea = c.add(ENG, UF_CRM_PARENT_DEAL=f"D_{a}", ASSIGNED_BY_ID=7)
    c.tick(12)
    c.move(a, TURNKEY, "WON", OPPORTUNITY=120000)
    c.move(la, LOG, "WON")
    c.move(b, RENTAL, "WON", OPPORTUNITY=55000)
    c.move(lb, LOG, "WON")
    box.call("crm.deal.update", {"id": cc, "fields": {"OPPORTUNITY": 77000}})
    day = datetime.fromtimestamp(T0 + HOUR, box.portal.tz).date().isoformat()
    box.close()
    return {
        "a": a,
        "b": b,
        "c": cc,
        "d": d,
        "la": la,
        "lb": lb,
        "lc": lc,
        "ea": ea,
        "lead": lead,
        "c1": c1,
        "c2": c2,
        "day": day,
    }  # type: ignore[dict-item]


def _seeded(deployed_db: Path, folder: Path) -> tuple[bytes, dict[str, Any]]:
    db = folder / "sandbox.sqlite"
    shutil.copy(deployed_db, db)
    ids = seed(db)
    return db.read_bytes(), ids


@pytest.fixture
def company(
    tmp_path: Path, deployed_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """tmp_path with a copy of the seeded company in .b24kit/ (seeded once per test run,
    tests/once.py: the timeline is the same every time) and the seed's ids."""
    data, ids = once(
        tmp_path_factory,
        "reports-company",
        lambda: _seeded(deployed_db, tmp_path_factory.mktemp("company")),
    )
    (tmp_path / ".b24kit").mkdir()
    (tmp_path / ".b24kit" / "sandbox.sqlite").write_bytes(data)
    return tmp_path, ids


def tables(
    db: Path, names: list[str], filters: Filters | None = None
) -> dict[str, list[dict[str, Any]]]:
    box = Sandbox(db=str(db), limits="off", clock=lambda: NOW)

    async def go() -> dict[str, list[dict[str, Any]]]:
        with client_for(box) as client:
            report = await build_report(client, BP, names, filters)
            with report:
                return {t.name: list(t.rows) for t in report.tables}

    try:
        return asyncio.run(go())
    finally:
        box.close()


def test_projects_every_figure(company: tuple[Path, dict[str, Any]]) -> None:
    path, ids = company
    rows = {
        r["project"]: r
        for r in tables(path / ".b24kit" / "sandbox.sqlite", ["projects"])["projects"]
    }
    assert list(rows) == [ids["a"], ids["b"], ids["c"], ids["d"]]
    a, b, c, d = (rows[ids[k]] for k in "abcd")
    # A: first contact is the lead (its source beats the deal's default CALL)
    assert {
        k: a[k]
        for k in (
            "first_contact",
            "source_id",
            "source",
            "utm_source",
            "utm_campaign",
            "utm_medium",
        )
    } == {
        "first_contact": f"lead {ids['lead']}",
        "source_id": "WEB",
        "source": "Website",
        "utm_source": "yandex",
        "utm_campaign": "spring",
        "utm_medium": None,
    }
    assert {
        k: a[k] for k in ("direction", "manager_id", "manager", "state", "outcome", "begin")
    } == {
        "direction": TURNKEY,
        "manager_id": 2,
        "manager": "Мария Соколова",
        "state": "Сделка успешна",
        "outcome": "won",
        "begin": ids["day"],
    }
    assert {
        k: a[k]
        for k in (
            "estimate_deal",
            "estimate_assignee",
            "estimate_stage",
            "estimate_hours_in_stage",
            "engineering_deal",
            "engineering_assignee",
            "engineering_stage",
            "engineering_hours_in_stage",
            "estimate_by",
            "estimate_hours",
            "quote",
            "contractor_id",
            "contractor",
            "contractor_paid",
            "contractor_rating",
            "final_amount",
            "growth",
            "growth_pct",
        )
    } == {
        "estimate_deal": ids["la"],
        "estimate_assignee": "Анна Петрова",
        "estimate_stage": "Оценка принята",
        "estimate_hours_in_stage": 216.0,  # accepted at h24
        "engineering_deal": ids["ea"],
        "engineering_assignee": "Павел Орлов",
        "engineering_stage": "Новая задача",
        "engineering_hours_in_stage": 228.0,  # opened at h12
        "estimate_by": "Анна Петрова",
        "estimate_hours": 4.0,  # parent at «Оценить» h1, estimate at «Согласование» h5
        "quote": 90000.0,  # recorded on the parent, not the estimate's 80,000
        "contractor_id": ids["c1"],
        "contractor": "ТрансСнаб",
        "contractor_paid": "yes",
        "contractor_rating": 5.0,
        "final_amount": 120000.0,
        "growth": 30000.0,
        "growth_pct": 33.3,
    }
    assert a["quote_at"] is not None and a["quote_at"].startswith(
        datetime.fromtimestamp(T0 + 5 * HOUR, Sandbox(limits="off").tz).isoformat()[:16]
    )
    assert (b["first_contact"], b["source"], b["utm_source"], b["manager"]) == (
        "deal",
        "Advertising",
        "google",
        "Сергей Смирнов",
    )
    assert (b["estimate_hours"], b["quote"], b["final_amount"], b["growth"], b["growth_pct"]) == (
        10.0,
        50000.0,
        55000.0,
        5000.0,
        10.0,
    )
    assert (
        b["contractor"],
        b["contractor_paid"],
        b["contractor_rating"],
        b["engineering_deal"],
    ) == ("ТрансСнаб", "no", 3.0, None)
    assert (c["estimate_hours"], c["quote"], c["final_amount"], c["growth"], c["growth_pct"]) == (
        None,
        70000.0,
        77000.0,
        7000.0,
        10.0,
    )
    assert (c["estimate_by"], c["estimate_stage"], c["estimate_hours_in_stage"]) == (
        "Ольга Кузнецова",
        "В работе у логиста",
        237.0,
    )
    assert (c["contractor"], c["contractor_paid"], c["state"], c["outcome"]) == (
        "АгроМир",
        "no",
        "Оценить",
        "open",
    )
    assert (d["source"], d["estimate_deal"], d["quote"], d["growth"], d["state"]) == (
        "Call",
        None,
        None,
        None,
        "Новая заявка",
    )


def test_sources_contractors_departments(company: tuple[Path, dict[str, Any]]) -> None:
    path, ids = company
    got = tables(path / ".b24kit" / "sandbox.sqlite", ["sources", "contractors", "departments"])
    assert got["sources"] == [
        {
            "source": "Advertising / google",
            "source_id": "ADVERTISING",
            "utm_source": "google",
            "projects": 2,
            "won": 1,
            "revenue": 55000.0,
            "average_growth": 6000.0,
            "average_growth_pct": 10.0,
            "conversion_pct": 50.0,
        },
        {
            "source": "Call",
            "source_id": "CALL",
            "utm_source": None,
            "projects": 1,
            "won": 0,
            "revenue": 0.0,
            "average_growth": None,
            "average_growth_pct": None,
            "conversion_pct": 0.0,
        },
        {
            "source": "Website / yandex",
            "source_id": "WEB",
            "utm_source": "yandex",
            "projects": 1,
            "won": 1,
            "revenue": 120000.0,
            "average_growth": 30000.0,
            "average_growth_pct": 33.3,
            "conversion_pct": 100.0,
        },
    ]
    assert got["contractors"] == [
        {
            "contractor_id": ids["c1"],
            "contractor": "ТрансСнаб",
            "estimates": 2,
            "won": 2,
            "average_price": 50000.0,
            "average_rating": 4.0,
            "unpaid": 1,
            "last_used": ids["day"],
        },
        {
            "contractor_id": ids["c2"],
            "contractor": "АгроМир",
            "estimates": 1,
            "won": 0,
            "average_price": 70000.0,
            "average_rating": 4.0,
            "unpaid": 0,
            "last_used": ids["day"],
        },
    ]
    dep = {
        (r["department"], r["stage"]): {
            k: r[k] for k in ("open", "stays", "median_hours", "p90_hours", "overdue")
        }
        for r in got["departments"]
    }
    assert dep == {
        # stays at «Новая оценка»: 2, 10, 2 hours; in work: 2 and 237 (still going)
        (LOG, "Новая оценка"): {
            "open": 0,
            "stays": 3,
            "median_hours": 2.0,
            "p90_hours": 8.4,
            "overdue": 0,
        },
        (LOG, "В работе у логиста"): {
            "open": 1,
            "stays": 2,
            "median_hours": 119.5,
            "p90_hours": 213.5,
            "overdue": 1,
        },
        (LOG, "Подбор подрядчика"): {
            "open": 0,
            "stays": 0,
            "median_hours": None,
            "p90_hours": None,
            "overdue": 0,
        },
        (LOG, "Согласование"): {
            "open": 0,
            "stays": 2,
            "median_hours": 16.0,
            "p90_hours": 18.4,
            "overdue": 0,
        },
        (ENG, "Новая задача"): {
            "open": 1,
            "stays": 1,
            "median_hours": 228.0,
            "p90_hours": 228.0,
            "overdue": 1,
        },
        (ENG, "В работе"): {
            "open": 0,
            "stays": 0,
            "median_hours": None,
            "p90_hours": None,
            "overdue": 0,
        },
        (ENG, "Проверка"): {
            "open": 0,
            "stays": 0,
            "median_hours": None,
            "p90_hours": None,
            "overdue": 0,
        },
    }


def test_filters_narrow_the_projects(company: tuple[Path, dict[str, Any]]) -> None:
    path, ids = company
    db = path / ".b24kit" / "sandbox.sqlite"
    rental = tables(db, ["projects", "departments"], Filters(pipelines=["sales_rental"]))
    assert [r["project"] for r in rental["projects"]] == [ids["b"]]
    logistics = {
        r["stage"]: (r["stays"], r["median_hours"])
        for r in rental["departments"]
        if r["department"] == LOG
    }
    assert logistics["Новая оценка"] == (1, 10.0) and logistics["Согласование"] == (1, 13.0)
    mine = tables(db, ["projects"], Filters(manager="Мария Соколова"))["projects"]
    assert [r["project"] for r in mine] == [ids["a"], ids["c"]]
    assert [r["project"] for r in tables(db, ["projects"], Filters(manager="5"))["projects"]] == [
        ids["b"],
        ids["d"],
    ]
    day = datetime.fromisoformat(ids["day"]).date()
    assert len(tables(db, ["projects"], Filters(since=day, until=day))["projects"]) == 4
    later = day.replace(year=day.year + 1)
    assert tables(db, ["sources"], Filters(since=later))["sources"] == []


def test_cli_formats_and_name_checks(company: tuple[Path, dict[str, Any]]) -> None:
    path, ids = company
    clock = FakeClock(start=NOW)
    bp = str(COMPANY)

    def b24kit(*args: str) -> Any:
        return run_cli("report", *args, "-p", "sandbox", cwd=path, clock=clock)

    out = b24kit("sources", bp, "-f", "json")
    assert out.code == 0, out.stderr
    assert [r["projects"] for r in json.loads(out.stdout)] == [2, 1, 1]
    made = b24kit("projects", bp, "-f", "csv", "-o", str(path / "p.csv"))
    assert made.code == 0, made.stderr
    with (path / "p.csv").open(encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert [r["project"] for r in read] == [str(ids[k]) for k in "abcd"] and read[0][
        "growth_pct"
    ] == "33.3"
    lines = b24kit("contractors", bp, "-f", "jsonl").stdout.splitlines()
    assert [json.loads(x)["estimates"] for x in lines] == [2, 1]
    xlsx = path / "d.xlsx"
    assert (
        b24kit("departments", bp, "-f", "xlsx", "-o", str(xlsx), "--overdue-days", "9.6").code == 0
    )
    from openpyxl import load_workbook

    sheet = load_workbook(xlsx).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:3] == ["department", "stage", "open"] and len(values) == 8
    assert [r[-1] for r in values[1:]] == [0, 1, 0, 0, 0, 0, 0], "over 230.4 h: 237 h, not 228 h"
    text = b24kit("projects", bp, "--pipeline", "sales_rental")
    assert text.code == 0 and "Сергей" in text.stdout and "Мария" not in text.stdout
    bad = b24kit("projects", bp, "--pipeline", "sales_nowhere")
    assert (
        bad.code == 2
        and "unknown pipeline 'sales_nowhere'" in bad.stderr
        and "sales_rental" in bad.stderr
    )
    nobody = b24kit("sources", bp, "--manager", "Никто")
    assert (
        nobody.code == 2
        and "unknown manager" in nobody.stderr
        and "Мария Соколова (2)" in nobody.stderr
    )
    assert b24kit("projects", bp, "--since", "14.11.2023").code == 2
    assert b24kit("projects", bp, "-f", "xlsx").code == 2, "xlsx needs a file"


def test_formula_cells_are_inert(company: tuple[Path, dict[str, Any]]) -> None:
    path, ids = company
    box = Sandbox(db=str(path / ".b24kit" / "sandbox.sqlite"), limits="off", clock=lambda: NOW)
    box.call("crm.deal.update", {"id": ids["d"], "fields": {"TITLE": '=HYPERLINK("x")'}})
    box.close()
    out = run_cli(
        "report",
        "projects",
        str(COMPANY),
        "-p",
        "sandbox",
        "-f",
        "csv",
        cwd=path,
        clock=FakeClock(start=NOW),
    )
    titles = [r["title"] for r in csv.DictReader(out.stdout.splitlines())]
    assert titles[-1] == '\'=HYPERLINK("x")'
