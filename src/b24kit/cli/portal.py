"""``b24kit portal``: look at the portal a command would talk to."""

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from b24kit.cli.common import (
    OPTIONS,
    Format,
    FormatOption,
    PlanOption,
    PortalOption,
    YesOption,
    open_portal,
    run_portal,
)
from b24kit.cli.output import console, err, fail
from b24kit.cli.report import Output, show

# the REST client and the conformance checks are imported when a command runs: typer reads
# every command's signature at start-up
if TYPE_CHECKING:
    from b24kit.connect import Connection
    from b24kit.portal.conformance import Report

app = typer.Typer(
    help="Inspect the portal: reachability, user, scopes, limits, conformance.",
    no_args_is_help=True,
)


@app.command()
def check(
    portal: PortalOption = None, plan: PlanOption = None, format: FormatOption = Format.text
) -> None:
    """Reach the portal and show who we are there, the scopes, the plan's limits and latency.

    Exit code 0 when the portal answers, 3 when it does not.

    Example: b24kit portal check -p acme -f json  (a profile; or B24_WEBHOOK_URL)
    """
    from b24kit.client import RetryPolicy
    from b24kit.client.limiter import PLANS

    conn = open_portal(portal, plan)
    # the command that diagnoses a wrong or unreachable portal answers within seconds: one
    # retry after half a second, a 5 s time-out, a name that does not resolve at once
    conn.client.retry = RetryPolicy(attempts=2, backoff=0.5, max_backoff=0.5, max_limit_wait=10)
    conn.client.timeout = 5.0

    async def work(conn: "Connection") -> dict[str, Any]:
        started = time.perf_counter()
        await conn.client.call("server.time")
        latency_ms = (time.perf_counter() - started) * 1000
        batch = await conn.client.batch(
            {"user": ("user.current", {}), "scope": ("scope", {}), "time": ("server.time", {})}
        )
        user = batch.result.get("user") or {}
        burst, rate = PLANS[conn.plan]
        return {
            "portal": conn.label,
            "sandbox": conn.is_sandbox,
            "user": {
                "id": user.get("ID"),
                "name": " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip(),
            },
            "scopes": batch.result.get("scope") or [],
            "server_time": batch.result.get("time"),
            "plan": {
                "name": conn.plan,
                "burst": int(burst),
                "per_second": rate,
                "batch_commands": 50,
                "writes_per_second": rate * 50,
                "rows_per_second": rate * 50 * 50,
            },
            "latency_ms": round(latency_ms, 1),
            "errors": {k: str(v) for k, v in batch.error.items()},
        }

    report = run_portal(conn, work)
    show(Output(report, text=lambda: print_check(report)), format)


def print_check(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row("portal", report["portal"])
    table.add_row("user", f"{report['user']['id']} {report['user']['name']}")
    table.add_row("scopes", ", ".join(report["scopes"]) or "(none)")
    plan_info = report["plan"]
    table.add_row(
        "plan",
        f"{plan_info['name']}: burst {plan_info['burst']}, "
        f"{plan_info['per_second']:g} requests/s, up to "
        f"{plan_info['writes_per_second']:g} writes/s and "
        f"{plan_info['rows_per_second']:g} rows/s through batch",
    )
    table.add_row("latency", f"{report['latency_ms']} ms")
    table.add_row("server time", str(report["server_time"]))
    console.print(table)


def print_assumptions() -> None:
    from rich.table import Table

    from b24kit.portal.conformance import ASSUMPTIONS

    table = Table("assumption", "expected", "source")
    for a in ASSUMPTIONS:
        table.add_row(escape(a.id), escape(a.expected), escape(a.source))
    console.print(table)


def print_conformance(report: "Report", portal: str) -> None:
    held = f"{len(report.results) - len(report.differs)} held, {len(report.differs)} differ on "
    if OPTIONS.quiet:
        console.print(
            held
            + escape(portal)
            + "".join(f"; differs: {escape(r.assumption.id)}" for r in report.differs),
            highlight=False,
        )
        return
    from rich.table import Table

    table = Table("assumption", "expected", "seen", "")
    for r in report.results:
        mark = (
            "[bold red]differs[/]"
            if not r.held
            else "[green]held[/]"
            if r.checked
            else "[yellow]not checked[/]"
        )
        table.add_row(escape(r.assumption.id), escape(r.assumption.expected), escape(r.seen), mark)
    console.print(table)
    console.print(held + escape(portal), highlight=False)


@app.command()
def conformance(
    portal: PortalOption = None,
    plan: PlanOption = None,
    format: FormatOption = Format.text,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", metavar="ID", help="Check only this assumption (repeatable; see --list)."
        ),
    ] = None,
    list_: Annotated[
        bool,
        typer.Option(
            "--list", metavar="", help="List the assumptions and their sources; no portal."
        ),
    ] = False,
    yes: YesOption = False,
) -> None:
    """Check, on a real portal, each assumption b24kit and its sandbox make about Bitrix24.

    Makes two throwaway deal pipelines (51 deals, a comment) and two smart processes
    with a field each, all named b24kit-conformance-<random>; runs the checks there; removes
    everything and reads back to prove it is gone. Prints assumption, expected, seen and
    held/differs. Send the --format json report to the b24kit project.

    Exit code 0 when every assumption held, 1 when one differs, 2 for bad options, 3 when
    the portal failed or something could not be removed (it is listed).

    Example: b24kit portal conformance -p acme --yes -f json  (a profile; or B24_WEBHOOK_URL)
    """
    from b24kit.portal.conformance import ASSUMPTIONS, run_conformance

    if list_:
        rows = [
            {
                "id": a.id,
                "title": a.title,
                "source": a.source,
                "expected": a.expected,
                "settled": a.settled,
                "sandbox_reading": a.reading,
            }
            for a in ASSUMPTIONS
        ]
        show(Output(rows, rows, text=print_assumptions), format)
        return
    known = {a.id for a in ASSUMPTIONS}
    for name in only or []:
        if name not in known:
            raise fail(f"unknown assumption {name!r}", f"known: {', '.join(sorted(known))}")
    conn = open_portal(portal, plan, writes=True)
    err.print(
        f"Conformance run on {escape(conn.label)}: makes two deal pipelines with 51 "
        "deals, two smart processes and two fields named b24kit-conformance-<random>, "
        "then removes them. New deals may start the portal's automation rules and "
        "business processes for new deals, and deleted ones may go to the recycle bin.",
        highlight=False,
    )
    if not yes:
        if not sys.stdin.isatty():
            raise fail("this writes to the portal (and removes what it wrote): pass --yes")
        if not typer.confirm("Go on?", default=False, err=True):
            raise typer.Exit(2)

    async def work(conn: "Connection") -> "Report":
        return await run_conformance(conn.client, only=only)

    report = run_portal(conn, work)
    if report.setup_error:
        left = (
            "; still there: " + "; ".join(report.cleanup)
            if report.cleanup
            else ("; everything it made was removed")
        )
        show(Output(report.as_dict()), format)  # text: the error line below says it
        raise fail(f"the set-up failed, nothing was checked: {report.setup_error}{left}", code=3)
    show(Output(report.as_dict(), text=lambda: print_conformance(report, conn.label)), format)
    if report.cleanup:
        raise fail(
            "could not remove: " + "; ".join(report.cleanup),
            "delete them by hand (all are named b24kit-conformance-...)",
            code=3,
        )
    if report.differs:
        raise typer.Exit(1)
