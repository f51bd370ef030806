"""The management report's HTML page (issue 14, ``--html FILE``): opened in a real headless
Chromium (Debian's, driven by Playwright) with the network cut off, every chart drawn,
no console error, a screenshot kept in artefacts/; and what the page says without a
browser: escaped names, charts left out with a note when their columns are missing."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

from b24kit.reports.html import render_html
from b24kit.reports.model import ReportTable

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = ROOT / "artefacts"  # kept by CI, ignored by git
CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '<img src=x onerror="document.title=1">ООО «Вектор» & Co'


def tables() -> list[ReportTable]:
    """A small report with every table the page knows, and a hostile name in each."""
    projects = ReportTable(
        "projects",
        "Projects",
        ["id", "title", "source", "manager", "quote", "final_amount", "growth", "state"],
        [
            {"id": 11, "title": "Трактор", "source": "Сайт", "manager": "Мария Соколова",
             "quote": 120000.0, "final_amount": 150000.0, "growth": 0.25, "state": "won"},
            {"id": 12, "title": "Каток", "source": "Звонок", "manager": "Иван Иванов",
             "quote": 90000.0, "final_amount": 99000.0, "growth": 0.1, "state": "won"},
            {"id": 13, "title": HOSTILE, "source": "Выставка", "manager": "Анна Петрова",
             "quote": 60000.0, "final_amount": 54000.0, "growth": -0.1, "state": "won"},
            {"id": 14, "title": "Кран", "source": "Сайт", "manager": "Мария Соколова",
             "quote": 200000.0, "final_amount": None, "growth": None, "state": "open"},
        ],
    )  # fmt: skip
    sources = ReportTable(
        "sources",
        "Sources of first contact",
        ["source", "projects", "won", "revenue", "avg_growth", "conversion"],
        [
            {"source": "Сайт", "projects": 12, "won": 5, "revenue": 910000.0,
             "avg_growth": 0.18, "conversion": 0.4167},
            {"source": "Звонок", "projects": 7, "won": 4, "revenue": 400000.0,
             "avg_growth": 0.1, "conversion": 0.5714},
            {"source": HOSTILE, "projects": 3, "won": 1, "revenue": 54000.0,
             "avg_growth": -0.1, "conversion": 0.3333},
        ],
    )  # fmt: skip
    contractors = ReportTable(
        "contractors",
        "Contractors",
        ["contractor", "estimates", "won", "avg_price", "avg_rating", "unpaid", "last_used"],
        [
            {"contractor": "ТрансЛогистик", "estimates": 9, "won": 6, "avg_price": 81000.0,
             "avg_rating": 4.5, "unpaid": 1, "last_used": "2024-05-20"},
            {"contractor": "Грузовичков", "estimates": 4, "won": 2, "avg_price": 64000.0,
             "avg_rating": 3.8, "unpaid": 0, "last_used": "2024-04-02"},
            {"contractor": HOSTILE, "estimates": 2, "won": 0, "avg_price": 30000.0,
             "avg_rating": 2.0, "unpaid": 2, "last_used": "2024-03-15"},
            {"contractor": "Новый перевозчик", "estimates": 1, "won": 0, "avg_price": 0.0,
             "avg_rating": None, "unpaid": 0, "last_used": "2024-05-30"},
        ],
    )  # fmt: skip
    estimates = ReportTable(
        "estimates",
        "Estimates per logistician and month",
        ["logistician_name", "month", "estimates", "median_hours", "p90_hours",
         "price_given", "final_amount"],
        [
            {"logistician_name": "Ольга Кузнецова", "month": "2024-04", "estimates": 6,
             "median_hours": 3.5, "p90_hours": 9.0, "price_given": 410000.0,
             "final_amount": 455000.0},
            {"logistician_name": "Ольга Кузнецова", "month": "2024-05", "estimates": 8,
             "median_hours": 2.0, "p90_hours": 6.5, "price_given": 520000.0,
             "final_amount": 530000.0},
            {"logistician_name": "Павел Орлов", "month": "2024-05", "estimates": 5,
             "median_hours": 7.25, "p90_hours": 20.0, "price_given": 300000.0,
             "final_amount": 290000.0},
        ],
    )  # fmt: skip
    departments = ReportTable(
        "departments",
        "Where work piles up",
        ["pipeline", "stage", "open", "median_hours", "p90_hours", "overdue"],
        [
            {"pipeline": "Логистика", "stage": "Оценка", "open": 4, "median_hours": 5.0,
             "p90_hours": 30.0, "overdue": 1},
            {"pipeline": "Инженеры", "stage": "Расчёт", "open": 2, "median_hours": 12.0,
             "p90_hours": 48.0, "overdue": 0},
        ],
    )  # fmt: skip
    return [projects, sources, contractors, estimates, departments]


# chart div id -> (plotly selector of its marks, how many): one bar per source and
# measure, per logistician-month and measure, per source, one point per project with a
# quote and a final amount, one bar per rated contractor
EXPECTED = {
    "chart-funnel-by-source": ("g.barlayer g.point path", 6),
    "chart-estimate-times": ("g.barlayer g.point path", 6),
    "chart-growth-by-source": ("g.barlayer g.point path", 3),
    "chart-growth-per-project": ("g.scatterlayer path.point", 3),
    "chart-contractor-ratings": ("g.barlayer g.point path", 3),
    "chart-departments": ("g.barlayer g.point path", 4),
}


def test_page_escapes_names_and_carries_everything_it_needs() -> None:
    page = render_html(tables(), "Management <report>", "https://a.bitrix24.ru", "2024-06-01")
    assert "<img" not in page.replace("&lt;img", "")
    assert "&lt;img src=x onerror=&quot;document.title=1&quot;&gt;ООО «Вектор» &amp; Co" in page
    assert "<title>Management &lt;report&gt;</title>" in page
    # plotly.js inlined once; outside it nothing to fetch, and a policy forbidding it
    assert page.count(get_plotlyjs()) == 1
    own = page.replace(get_plotlyjs(), "")
    assert not re.search(r"<[a-z]+[^>]*\s(src|href)\s*=", own, re.IGNORECASE)
    assert "default-src 'none'" in page
    for div in EXPECTED:
        assert f'id="{div}"' in page


def test_missing_columns_leave_a_chart_out_with_a_note() -> None:
    sources = ReportTable(
        "sources", "Sources", ["source", "projects"], [{"source": "Сайт", "projects": 3}]
    )
    contractors = ReportTable(
        "contractors", "Contractors", ["contractor", "avg_rating"], [], empty="No estimates yet."
    )
    page = render_html([sources, contractors], "R", "p", "now")
    notes = re.search(r'<ul class="notes" id="chart-notes">(.*?)</ul>', page)
    assert notes is not None
    assert notes.group(1) == (
        "<li>Funnel by source: left out, the sources table has no won</li>"
        "<li>Cheque growth by source: left out, the sources table has no avg_growth</li>"
        "<li>Contractor ratings: nothing to draw (No estimates yet.)</li>"
    )
    assert 'class="chart"' not in page  # no chart drawn, none of the absent tables noted
    assert '<p class="empty">No estimates yet.</p>' in page


def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI installs it and runs this")


def test_html_report_in_headless_chromium_offline(tmp_path: Path) -> None:
    executable = chromium()
    from playwright.sync_api import Request, Route, sync_playwright

    page_file = tmp_path / "report.html"
    page_file.write_text(
        render_html(tables(), "Management report", "https://demo.bitrix24.ru", "2024-06-01 09:00"),
        encoding="utf-8",
    )
    attempted: list[str] = []
    problems: list[str] = []

    def route(route: Route, request: Request) -> None:
        if request.url.startswith("file://"):
            route.continue_()
        else:
            attempted.append(request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(executable),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900}, offline=True)
            context.route("**/*", route)
            # the harness can fail: a page that does ask the network is caught
            probe = context.new_page()
            probe.set_content('<img src="https://example.invalid/pixel.png">')
            assert attempted == ["https://example.invalid/pixel.png"]
            probe.close()
            attempted.clear()
            page = context.new_page()
            page.on(
                "request",
                lambda r: None if r.url.startswith("file://") else attempted.append(r.url),
            )
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(page_file.as_uri(), wait_until="load")
            for div, (marks, count) in EXPECTED.items():
                page.wait_for_selector(f"#{div} svg.main-svg", state="attached", timeout=5000)
                drawn = page.locator(f"#{div} {marks}").count()
                assert drawn == count, f"{div}: {drawn} marks drawn, {count} expected"
            labels: Any = page.eval_on_selector_all(
                "#chart-contractor-ratings g.ytick text", "els => els.map(e => e.textContent)"
            )
            cells: Any = page.eval_on_selector_all(
                'table[data-table="contractors"] tbody tr td:first-child',
                "els => els.map(e => e.textContent)",
            )
            title = page.title()
            images = page.locator("img").count()
            ARTEFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTEFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert attempted == [], "the page asked the network for something"
    assert problems == []
    # a hostile contractor name is shown as its text in the chart, cut to 28 characters
    assert HOSTILE[:27] + "…" in labels
    assert cells == ["ТрансЛогистик", "Грузовичков", HOSTILE, "Новый перевозчик"]
    assert title == "Management report" and images == 0, "the hostile markup did not run"
    assert (ARTEFACTS / "report.png").stat().st_size > 10_000
