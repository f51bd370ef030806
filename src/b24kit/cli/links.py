"""``audit``, ``sync`` and ``report``: parent/child links from cron, repaired safely."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from b24kit.blueprint.loader import BlueprintError, load_blueprint
from b24kit.blueprint.model import Blueprint
from b24kit.cli.common import PlanOption, PortalOption, open_portal, run_portal
from b24kit.cli.output import console, emit_json, err, fail
from b24kit.client import Connection
from b24kit.links.audit import RULES, SEVERITY_RANK, AuditResult
from b24kit.links.run import REPAIRABLE, audit_portal, estimates_report, fix, sync_once

report_app = typer.Typer(help="Reports for management from the links' history.",
                         no_args_is_help=True)
BlueprintOption = Annotated[Path, typer.Option("--blueprint", "-b",
                                               help="The blueprint declaring the links.")]
LinkOption = Annotated[list[str] | None, typer.Option("--link", help="Only this link "
                                                      "(repeatable).")]


def _blueprint(path: Path) -> Blueprint:
    try:
        return load_blueprint(path)[0]
    except BlueprintError as exc:
        for issue in exc.issues:
            err.print(str(issue), highlight=False, markup=False)
        raise fail(f"{path}: invalid blueprint") from None


def _portal_base(conn: Connection) -> str:
    return conn.label.split("/rest/")[0] if "/rest/" in conn.label else "https://portal.local"


def audit(
    blueprint: BlueprintOption,
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    link: LinkOption = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text, json or jsonl")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report "
                                                "here (stdout keeps the summary).")] = None,
    fail_on: Annotated[str, typer.Option("--fail-on", help="Exit 1 on findings of this "
                                         "severity or worse: info, warn or error.")] = "warn",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line.")] = False,
    do_fix: Annotated[bool, typer.Option("--fix", help="Apply the safe repairs (never a "
                                         "delete), then audit again.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --fix.")] = False,
) -> None:
    """Check that parents and children agree, by the blueprint's links.

    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input error,
    3 the audit could not complete (an incomplete audit never exits 0).

    Cron: */30 * * * * b24kit audit -b company.yaml --quiet -f json -o /var/log/b24.json
    """
    if fail_on not in SEVERITY_RANK:
        raise fail("--fail-on must be info, warn or error")
    if format not in ("text", "json", "jsonl"):
        raise fail("--format must be text, json or jsonl")
    bp = _blueprint(blueprint)
    conn = open_portal(portal, plan_name)
    base = _portal_base(conn)

    async def work(conn: Connection) -> tuple[AuditResult, int]:
        result = await audit_portal(conn.client, bp, link)
        fixed = 0
        if do_fix:
            repairable = [f for f in result.findings if f.rule in REPAIRABLE and f.repair]
            if repairable and not quiet:
                console.print(f"{len(repairable)} safe repair(s):", highlight=False)
                for f in repairable:
                    console.print(f"  {f.rule} {f.name} {f.deals}: "
                                  + "; ".join(c.method for c in f.repair), highlight=False)
            if repairable and (yes or typer.confirm("Apply them?", default=False, err=True)):
                # a repair can reveal the next one (a re-linked orphan's new parent needs its
                # mirror): repeat while safe repairs remain
                for _ in range(3):
                    outcomes = await fix(conn.client, bp, repairable)
                    fixed += sum(o.ok for o in outcomes)
                    result = await audit_portal(conn.client, bp, link)
                    repairable = [f for f in result.findings
                                  if f.rule in REPAIRABLE and f.repair]
                    if not repairable:
                        break
        return result, fixed

    try:
        result, fixed = run_portal(conn, work)
    except ValueError as exc:
        raise fail(str(exc)) from None
    except typer.Exit as exc:
        raise typer.Exit(3 if exc.exit_code == 3 else exc.exit_code) from None
    rows = [f.as_dict(base) for f in result.findings]
    counts = result.counts()
    over = [f for f in result.findings
            if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on]]
    summary = (f"audit: {result.deals_read} deals, {len(result.findings)} finding(s)"
               + (f" ({', '.join(f'{r} {n}' for r, n in counts.items())})" if counts else "")
               + (f", {fixed} repaired" if do_fix else "")
               + ("" if over else ", clean" if not result.findings else ", below --fail-on"))
    text = ""
    if format == "json":
        text = json.dumps({"deals": result.deals_read, "counts": counts, "findings": rows},
                          ensure_ascii=False, indent=1)
    elif format == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if output is not None:
        output.write_text(text if format != "text" else "\n".join(
            f"{r['rule']} {r['severity']} {r['deals']} {r['seen']}" for r in rows) + "\n",
            encoding="utf-8")
    if quiet:
        console.print(summary, highlight=False)
    elif format in ("json", "jsonl") and output is None:
        typer.echo(text, nl=format == "json")
    else:
        if result.findings:
            table = Table(title="Findings by rule")
            for column in ("rule", "severity", "count", "what"):
                table.add_column(column)
            for rule, n in counts.items():
                table.add_row(rule, RULES[rule][1], str(n), RULES[rule][2])
            console.print(table)
            for f in result.findings[:50]:
                urls = ", ".join(d["url"] for d in f.as_dict(base)["deals"])
                console.print(f"{f.rule} {f.name}: saw {f.seen}; expected {f.expected}; {urls}",
                              highlight=False)
        console.print(summary, highlight=False)
    if over:
        raise typer.Exit(1)


def sync(
    blueprint: BlueprintOption,
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    once: Annotated[bool, typer.Option("--once", help="One reconcile pass (cron, every few "
                                       "minutes).")] = False,
    serve: Annotated[bool, typer.Option("--serve", help="Receive the portal's outbound "
                                        "webhook events over HTTP.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Read every deal, not only the "
                                       "ones changed since the last pass.")] = False,
    host: Annotated[str, typer.Option(help="--serve: interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="--serve: port.")] = 8780,
    app_token: Annotated[str | None, typer.Option(
        "--app-token", envvar="B24_APP_TOKEN", help="--serve: the outbound webhook's "
        "application token; events without it are refused.")] = None,
    interval: Annotated[float, typer.Option(help="--serve: seconds between safety-net "
                                            "passes.")] = 300.0,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the last pass's "
                                            "time and the lock live.")] = Path(".b24kit"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line "
                                        "(--serve: no line per pass).")] = False,
) -> None:
    """Perform the links: a parent reaching the trigger stage gets its child (with the
    copied fields); a child's stage is mirrored on its parent, and moves it where the link
    says. Idempotent: passes never overlap, and a child exists once.
    """
    if once == serve:
        raise fail("choose --once or --serve")
    bp = _blueprint(blueprint)
    conn = open_portal(portal, plan_name)
    if once:
        async def work(conn: Connection) -> Any:
            return await sync_once(conn.client, bp, state_dir, full=full)

        try:
            result = run_portal(conn, work)
        except ValueError as exc:
            raise fail(str(exc)) from None
        created = sum(1 for o in result.outcomes if o.ok and o.method == "crm.deal.add")
        failed = [o for o in result.outcomes if not o.ok]
        console.print(f"sync: {result.deals_read} deals read, {len(result.findings)} to "
                      f"act on, {created} children created, {len(result.outcomes)} commands, "
                      f"{result.requests} requests", highlight=False)
        if failed:
            raise fail(f"{len(failed)} command(s) failed: {failed[0].error}", code=3)
        return
    if not app_token:
        raise fail("--serve needs --app-token (the outbound webhook's application token)")
    from b24kit.links.serve import SyncService, serve_forever

    async def work_serve(conn: Connection) -> None:
        service = SyncService(conn.client, bp, state_dir, app_token,
                              on_pass=None if quiet else lambda r: err.print(
                                  f"pass: {len(r.findings)} acted on", highlight=False))

        def ready(url: str) -> None:
            console.print(f"Listening for events on {url} (point the outbound webhook here)",
                          highlight=False)

        await serve_forever(service, host, port, interval, ready)

    run_portal(conn, work_serve)


@report_app.command()
def estimates(
    blueprint: BlueprintOption,
    portal: PortalOption = None,
    link: Annotated[str | None, typer.Option("--link", help="The link (default: the first).")]
    = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text, csv or json")] = "text",
) -> None:
    """Per logistician and month: estimates made, median and 90th-percentile hours from
    «Оценить» to «Согласование», and the price given against the final deal amount."""
    bp = _blueprint(blueprint)
    conn = open_portal(portal, None)

    async def work(conn: Connection) -> Any:
        return await estimates_report(conn.client, bp, link)

    rows = [r.as_dict() for r in run_portal(conn, work)]
    if format == "json":
        emit_json(rows)
    elif format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["logistician", "month", "estimates", "median_hours",
                                         "p90_hours", "price_given", "final_amount"])
        writer.writeheader()
        writer.writerows(rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(title="Estimates")
        for column in ("logistician", "month", "estimates", "median h", "p90 h", "price given",
                       "final amount"):
            table.add_column(column)
        for r in rows:
            table.add_row(*(str(v) for v in r.values()))
        console.print(table)
