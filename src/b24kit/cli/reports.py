"""``b24kit report projects|sources|contractors|estimates|departments``: the management
view of a portal (issue 14). Each command reads the portal once (reports/build.py's
``build_report``) and renders its table through the one reporter (cli/report.py)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from b24kit.cli.common import (
    BlueprintAlias,
    BlueprintArgument,
    PortalOption,
    TableFormat,
    TableFormatOption,
    note,
    open_portal,
    out_option,
    run_portal,
)
from b24kit.cli.links import _blueprint
from b24kit.cli.output import console, fail, phase, safe
from b24kit.cli.report import Output, show
from b24kit.reports.model import ReportTable

# the report builder (pydantic, the REST client) is imported when a command runs: typer
# reads every command's signature at start-up
if TYPE_CHECKING:
    from b24kit.connect import Connection
    from b24kit.reports.build import Report
    from b24kit.reports.read import Filters

report_app = typer.Typer(
    help="Reports for management: projects from the first contact to closed obligations, "
    "sources, contractors, estimates, departments.",
    no_args_is_help=True,
)
FORMATS = ("text", "csv", "json", "jsonl", "xlsx")
SHOWN = 50  # rows on a terminal; a file (-f csv|json|jsonl|xlsx -o FILE) has every one
# what a terminal shows of a wide table (files have every column)
TEXT_COLUMNS = {
    "projects": ["project", "manager", "source", "state", "quote", "final_amount", "growth_pct"],
}

ReportFormat = Annotated[
    str,
    typer.Option("--format", "-f", metavar="text|csv|json|jsonl|xlsx", help="Output format."),
]
OutOption = Annotated[Path | None, out_option("Write the report to this file.")]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="YYYY-MM-DD",
        help="Projects whose start date (the parent deal's BEGINDATE) is on or after this day.",
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until", metavar="YYYY-MM-DD", help="Projects that started on or before this day."
    ),
]
PipelineOption = Annotated[
    list[str] | None,
    typer.Option(
        "--pipeline",
        metavar="CODE",
        help="Only this sales direction (a parent pipeline's code, repeatable).",
    ),
]
ManagerOption = Annotated[
    str | None,
    typer.Option("--manager", metavar="NAME|ID", help="Only this manager's projects."),
]


def _day(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r}: not a date; give it as YYYY-MM-DD") from None


def _filters(
    since: str | None,
    until: str | None,
    pipeline: list[str] | None,
    manager: str | None,
    overdue_days: float = 7.0,
) -> "Filters":
    from b24kit.reports.read import Filters

    return Filters(
        list(pipeline or []),
        manager,
        _day("--since", since),
        _day("--until", until),
        overdue_days,
    )


def print_table(table: ReportTable, columns: list[str] | None = None) -> None:
    """A table on the terminal: its first rows, and how to get every one."""
    if not table.rows:
        console.print(table.empty or f"{table.title}: nothing to report.", highlight=False)
        return
    from rich.table import Table

    columns = columns or table.columns
    view = Table(title=safe(table.title))
    for column in columns:
        view.add_column(column.replace("_", " "))
    for n, row in enumerate(table.rows):
        if n == SHOWN:
            break
        view.add_row(*("" if row.get(c) is None else safe(row.get(c)) for c in columns))
    console.print(view)
    if len(table.rows) > SHOWN:
        console.print(
            f"{len(table.rows) - SHOWN} more rows: -f csv|xlsx|json -o FILE has every row "
            "and column.",
            highlight=False,
        )


def print_estimates(table: ReportTable) -> None:
    """The estimates as before issue 14: a person by name, else "user N"."""
    rows = [
        {
            **r,
            "logistician": r["logistician_name"]
            or (f"user {r['logistician']}" if r["logistician"] else "unassigned"),
        }
        for r in table.rows
    ]
    shown = ReportTable(table.name, table.title, table.columns, rows, table.empty)
    print_table(shown, [c for c in table.columns if c != "logistician_name"])


def render(table: ReportTable, format: str, out: Path | None) -> None:
    """The one render step of a report's table (``--html``/``--to-sheet`` publish the
    same tables: see ``publish``)."""
    show(
        Output(
            rows=table.rows,
            columns=table.columns,
            empty=table.empty,
            text=lambda: (
                print_estimates(table)
                if table.name == "estimates"
                else print_table(table, TEXT_COLUMNS.get(table.name))
            ),
            sheet=table.name,
        ),
        format,
        out,
    )


HtmlOption = Annotated[
    Path | None,
    typer.Option(
        "--html",
        metavar="FILE",
        help="Also write every report, with charts, as one self-contained page (opens "
        "offline, mails as it is).",
    ),
]
SheetOption = Annotated[
    str | None,
    typer.Option(
        "--to-sheet",
        metavar="KEY",
        help="Also write every report to this Google Sheet, one worksheet each, rewritten "
        "in place on every run (a cron line keeps a management sheet current).",
    ),
]
SheetsEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--sheets-endpoint",
        envvar="B24KIT_SHEETS_ENDPOINT",
        metavar="URL",
        help="Write Google Sheets to this stand-in (the sandbox's URL).",
    ),
]
CredentialsOption = Annotated[
    Path | None,
    typer.Option("--credentials", metavar="FILE", help="Google credentials JSON."),
]


@dataclass
class Publish:
    """Where the whole report goes besides the command's own output."""

    html: Path | None = None
    sheet: str | None = None
    endpoint: str | None = None
    credentials: Path | None = None

    @property
    def wanted(self) -> bool:
        return self.html is not None or self.sheet is not None


def publish(report: "Report", where: Publish, portal: str) -> None:
    """``--html FILE`` and ``--to-sheet KEY``: every table of the report, before the
    report is closed (reports/html.py, reports/sheet.py)."""
    if where.html is not None:
        from b24kit.reports.html import render_html

        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        page = render_html(report.tables, "Management report", portal, generated)
        where.html.write_text(page, encoding="utf-8")
        note(f"Wrote {where.html}: {len(report.tables)} tables and their charts")
    if where.sheet is not None:
        from b24kit.migrate.sources import gspread_client
        from b24kit.reports.sheet import write_tables

        written = write_tables(
            gspread_client(where.credentials, where.endpoint), where.sheet, report.tables
        )
        note(f"Wrote {len(written)} worksheet(s) to the Google Sheet {where.sheet}")


def run_report(
    name: str,
    blueprint: Path | None,
    blueprint_alias: Path | None,
    portal: str | None,
    filters: "Filters",
    format: str,
    out: Path | None,
    link: str | None = None,
    where: Publish | None = None,
) -> None:
    from b24kit.reports.build import REPORTS, build_report

    where = where or Publish()
    if format not in FORMATS:
        raise fail(f"unknown format {format!r}", f"known: {', '.join(FORMATS)}")
    if format == "xlsx" and out is None:
        raise fail("xlsx is a file: give it with -o FILE (e.g. -o report.xlsx)")
    bp = _blueprint(blueprint, blueprint_alias, [link] if link else None)
    conn = open_portal(portal, None)

    # --html and --to-sheet publish every report, from the same one reading
    names = list(REPORTS) if where.wanted else [name]

    async def work(conn: "Connection") -> "Report":
        with phase(f"reading {conn.label}"):
            return await build_report(conn.client, bp, names, filters, link)

    with run_portal(conn, work) as report:
        render(next(t for t in report.tables if t.name == name), format, out)
        try:
            publish(report, where, conn.label)
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None


def _command(name: str, doc: str) -> Any:
    def command(
        blueprint: BlueprintArgument = None,
        portal: PortalOption = None,
        since: SinceOption = None,
        until: UntilOption = None,
        pipeline: PipelineOption = None,
        manager: ManagerOption = None,
        format: ReportFormat = "text",
        out: OutOption = None,
        html: HtmlOption = None,
        to_sheet: SheetOption = None,
        sheets_endpoint: SheetsEndpointOption = None,
        credentials: CredentialsOption = None,
        blueprint_alias: BlueprintAlias = None,
    ) -> None:
        filters = _filters(since, until, pipeline, manager)
        where = Publish(html, to_sheet, sheets_endpoint, credentials)
        run_report(name, blueprint, blueprint_alias, portal, filters, format, out, None, where)

    command.__doc__ = doc
    return report_app.command(name=name)(command)


projects = _command(
    "projects",
    "One row per project (a parent deal): first-contact source (the lead it was converted "
    "from, else the deal's SOURCE_ID and UTM), manager, dates, each link's child (assignee, "
    "stage, hours in it), the estimate (who, hours, quote), contractor, paid, rating, final "
    "amount and the cheque's growth from the quote, state.",
)
sources = _command(
    "sources",
    "Per first-contact source: projects, won, revenue, average cheque growth, conversion.",
)
contractors = _command(
    "contractors",
    "Per contractor of the directory: estimates, won, average price and rating, unpaid "
    "(won projects whose estimate is not marked CONTRACTOR_PAID), last used.",
)


@report_app.command(name="departments")
def departments(
    blueprint: BlueprintArgument = None,
    portal: PortalOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    pipeline: PipelineOption = None,
    manager: ManagerOption = None,
    overdue_days: Annotated[
        float,
        typer.Option(
            "--overdue-days", metavar="DAYS", help="Open items in their stage longer are overdue."
        ),
    ] = 7.0,
    format: ReportFormat = "text",
    out: OutOption = None,
    html: HtmlOption = None,
    to_sheet: SheetOption = None,
    sheets_endpoint: SheetsEndpointOption = None,
    credentials: CredentialsOption = None,
    blueprint_alias: BlueprintAlias = None,
) -> None:
    """Per department pipeline (each link's child) and stage: open items, median and
    90th-percentile hours in the stage, overdue items: where work piles up."""
    if overdue_days <= 0:
        raise fail(f"--overdue-days {overdue_days}: give a number of days above 0")
    filters = _filters(since, until, pipeline, manager, overdue_days)
    where = Publish(html, to_sheet, sheets_endpoint, credentials)
    run_report("departments", blueprint, blueprint_alias, portal, filters, format, out, None, where)


@report_app.command()
def estimates(
    blueprint: BlueprintArgument = None,
    portal: PortalOption = None,
    link: Annotated[
        str | None, typer.Option("--link", metavar="LINK", help="The link (default: the first).")
    ] = None,
    format: TableFormatOption = TableFormat.text,
    out: OutOption = None,
    html: HtmlOption = None,
    to_sheet: SheetOption = None,
    sheets_endpoint: SheetsEndpointOption = None,
    credentials: CredentialsOption = None,
    blueprint_alias: BlueprintAlias = None,
) -> None:
    """Per logistician and month: estimates made, median and 90th-percentile hours from
    «Оценить» to «Согласование», and the price given against the final deal amount."""
    from b24kit.reports.read import Filters

    where = Publish(html, to_sheet, sheets_endpoint, credentials)
    run_report(
        "estimates", blueprint, blueprint_alias, portal, Filters(), format.value, out, link, where
    )
