"""``audit``, ``sync`` and ``report``: parent/child links from cron, repaired safely."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from b24kit.blueprint.document import BlueprintError
from b24kit.cli.common import (
    LOCK_WAIT,
    OPTIONS,
    BlueprintAlias,
    BlueprintArgument,
    Format,
    FormatOption,
    ListFormat,
    ListFormatOption,
    LockWaitOption,
    PlanOption,
    PortalOption,
    YesOption,
    blueprint_path,
    check_names,
    locked,
    note,
    open_portal,
    out_option,
    run_portal,
    writable,
)
from b24kit.cli.output import console, err, fail, phase
from b24kit.cli.report import Output, show

# the blueprint model and the links engine (with the REST client) are imported when a
# command runs: typer reads every command's signature at start-up
if TYPE_CHECKING:
    from b24kit.blueprint.model import Blueprint
    from b24kit.connect import Connection
    from b24kit.links.audit import AuditResult

LinkOption = Annotated[
    list[str] | None, typer.Option("--link", metavar="LINK", help="Only this link (repeatable).")
]
SHOWN = 50  # findings listed on a terminal; -f json lists every one


def _blueprint(
    argument: Path | None, alias: Path | None, links: list[str] | None = None
) -> "Blueprint":
    """The blueprint, checked, with at least one link and every --link named in it."""
    from b24kit.blueprint.loader import load_blueprint

    path = blueprint_path(argument, alias)
    try:
        bp = load_blueprint(path)[0]
    except BlueprintError as exc:
        for issue in exc.issues:
            err.print(str(issue), highlight=False, markup=False)
        raise fail(f"{path}: invalid blueprint") from None
    if not bp.links:
        raise fail(f"{path}: the blueprint declares no links", "add a 'links:' section")
    check_names("link", links, [x.name for x in bp.links])
    return bp


def _portal_base(conn: "Connection") -> str:
    return conn.label.split("/rest/")[0] if "/rest/" in conn.label else "https://portal.local"


def audit(
    blueprint: BlueprintArgument = None,
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    link: LinkOption = None,
    format: ListFormatOption = ListFormat.text,
    output: Annotated[
        Path | None, out_option("Write the report here (stdout keeps the summary).")
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            metavar="info|warn|error",
            help="Exit 1 on findings of this severity or worse.",
        ),
    ] = "warn",
    do_fix: Annotated[
        bool,
        typer.Option(
            "--fix", metavar="", help="Apply the safe repairs (never a delete), then audit again."
        ),
    ] = False,
    yes: YesOption = False,
    lock_wait: LockWaitOption = LOCK_WAIT,
    deadline: Annotated[
        float | None,
        typer.Option(
            "--deadline",
            metavar="SECONDS",
            min=1,
            help="The audit (and --fix's repairs) ends within this time, whatever the portal "
            "does; past it, exit 3 (run it again to finish). For cron; default: none.",
            show_default=False,
        ),
    ] = None,
    blueprint_alias: BlueprintAlias = None,
) -> None:
    """Check that parents and children agree, by the blueprint's links.

    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input error,
    3 the audit could not complete (an incomplete audit never exits 0).

    Cron: */30 * * * * /opt/acme/.venv/bin/b24kit audit company.yaml -p acme -q -f json -o /var/log/b24.json
    """
    from b24kit.links.audit import SEVERITY_RANK
    from b24kit.links.run import audit_portal, repair_until_clean, repairable

    quiet = OPTIONS.quiet
    if fail_on not in SEVERITY_RANK:
        raise fail(f"unknown --fail-on {fail_on!r}", "known: info, warn, error")
    bp = _blueprint(blueprint, blueprint_alias, link)
    if do_fix and not yes and not sys.stdin.isatty():
        raise fail(
            "--fix asks before writing, and there is no terminal to ask on",
            "pass --yes to repair without asking (cron)",
        )
    if output is not None:  # before any repair: a report that cannot be written failed
        writable(output)  # the run after it had written (exit 2, "nothing was written")
    conn = open_portal(portal, plan_name, writes=do_fix)
    base = _portal_base(conn)

    async def work(conn: "Connection") -> "tuple[AuditResult, int]":
        with conn.client.within(deadline):
            return await audit_and_fix(conn)

    async def audit_and_fix(conn: "Connection") -> "tuple[AuditResult, int]":
        with phase(f"reading {conn.label}"):
            result = await audit_portal(conn.client, bp, link)
        fixed = 0
        if do_fix:
            safe_ones = repairable(result.findings)
            if safe_ones and not quiet:  # on stderr, beside the question: stdout is the report
                err.print(f"{len(safe_ones)} safe repair(s):", highlight=False)
                for f in safe_ones:
                    err.print(
                        f"  {f.rule} {f.name} {f.deals}: " + "; ".join(c.method for c in f.repair),
                        highlight=False,
                    )
            if safe_ones and (yes or typer.confirm("Apply them?", default=False, err=True)):
                result, fixed = await repair_until_clean(conn.client, bp, safe_ones, link)
        return result, fixed

    result, fixed = run_portal(conn, locked("audit --fix", lock_wait, work) if do_fix else work)
    rows = [f.as_dict(base) for f in result.findings]
    counts = result.counts()
    over = [f for f in result.findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on]]
    summary = (
        f"audit: {result.deals_read} deals, {len(result.findings)} finding(s)"
        + (f" ({', '.join(f'{r} {n}' for r, n in counts.items())})" if counts else "")
        + (f", {fixed} repair write(s) done" if do_fix else "")
        + ("" if over else ", clean" if not result.findings else ", below --fail-on")
        + (f" on {conn.label}" if do_fix else "")
    )
    report = Output(
        {"deals": result.deals_read, "counts": counts, "findings": rows},
        rows,
        text=lambda: print_findings(result, counts, base, summary),
        plain=lambda: "".join(
            f"{r['rule']} {r['severity']} {r['deals']} {r['seen']}\n" for r in rows
        ),
    )
    if output is not None:
        show(report, format, output)
    if quiet or output is not None:  # the report went to the file: stdout keeps the summary
        console.print(
            summary + (f"; report in {output}" if output is not None else ""),
            highlight=False,
            markup=False,
        )
    else:
        show(report, format)
    if over:
        raise typer.Exit(1)


def print_findings(result: "AuditResult", counts: dict[str, int], base: str, summary: str) -> None:
    from rich.table import Table

    from b24kit.links.audit import RULES

    if result.findings:
        table = Table(title="Findings by rule")
        for column in ("rule", "severity", "count", "what"):
            table.add_column(column)
        for rule, n in counts.items():
            table.add_row(rule, RULES[rule][1], str(n), RULES[rule][2])
        console.print(table)
        for f in result.findings[:SHOWN]:
            urls = ", ".join(d["url"] for d in f.as_dict(base)["deals"])
            console.print(
                f"{f.rule} {f.name}: saw {f.seen}; expected {f.expected}; {urls}",
                highlight=False,
                markup=False,
            )
        if len(result.findings) > SHOWN:
            console.print(
                f"... and {len(result.findings) - SHOWN} more findings "
                "(-f json or -o FILE lists every one)",
                highlight=False,
            )
    console.print(summary, highlight=False)


def sync(
    ctx: typer.Context,
    blueprint: BlueprintArgument = None,
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    once: Annotated[
        bool,
        typer.Option("--once", metavar="", help="One reconcile pass (cron, every few minutes)."),
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", metavar="", help="Receive the portal's outbound webhook events over HTTP."
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            metavar="",
            help="Read every deal, not only the ones changed since the last pass.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="--serve: interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="--serve: port.")] = 8780,
    app_token: Annotated[
        str | None,
        typer.Option(
            "--app-token",
            envvar="B24_APP_TOKEN",
            metavar="TOKEN",
            help="--serve: the outbound "
            "webhook's application token; events without it are refused.",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(metavar="SECONDS", help="--serve: seconds between safety-net passes.")
    ] = 300.0,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar="B24KIT_STATE_DIR",
            metavar="DIR",
            help="Where each portal's last pass and run lock live (a folder per portal "
            "inside; default ./.b24kit for the marks, the machine's shared lock folder for "
            "the lock); migrate, apply and audit --fix read B24KIT_STATE_DIR for the same lock.",
            show_default=False,
        ),
    ] = None,
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline",
            metavar="SECONDS",
            min=1,
            help="A pass ends within this time, whatever the portal does (no answer, "
            "refusals, limits); past it, exit 3 (--serve: the next pass tries again).",
        ),
    ] = 600.0,
    rate_share: Annotated[
        float,
        typer.Option(
            "--rate-share",
            metavar="FRACTION",
            min=0.05,
            max=1.0,
            help="--serve: the share of the portal's rate limit the passes may use; the "
            "rest is left to other tools and people.",
        ),
    ] = 0.5,
    lock_wait: LockWaitOption = 120.0,
    format: FormatOption = Format.text,
    blueprint_alias: BlueprintAlias = None,
) -> None:
    """Perform the links: a parent reaching the trigger stage gets its child (with the
    copied fields); a child's stage is mirrored on its parent, and moves it where the link
    says. Idempotent: passes never overlap, and a child exists once.

    Exit codes: 0 done, 2 bad input, 3 a command failed or the portal did (run it again).
    """
    from b24kit.links.run import sync_once

    if once == serve:
        raise fail("choose --once or --serve")
    bp = _blueprint(blueprint, blueprint_alias)
    if not once and not app_token:  # checked before the portal is opened (a sandbox made)
        raise fail(
            "--serve needs the outbound webhook's application token: set B24_APP_TOKEN "
            "(or pass --app-token)"
        )
    conn = open_portal(portal, plan_name, writes=True)
    state = conn.state_dir(state_dir)  # the marks are per portal
    lock = conn.lock_path(state_dir)  # one writer per portal host
    pass_wait = min(lock_wait, deadline)  # the deadline bounds the lock's wait too
    if once:

        async def work(conn: "Connection") -> Any:
            with phase(f"reading {conn.label}"), conn.client.within(deadline):
                return await sync_once(
                    conn.client,
                    bp,
                    state,
                    full=full,
                    lock_wait=pass_wait,
                    lock=lock,
                    on_wait=note,
                )

        result = run_portal(conn, work)
        created = result.created
        failed = [o for o in result.outcomes if not o.ok]
        show(
            Output(
                {
                    "portal": conn.label,
                    "deals_read": result.deals_read,
                    "acted_on": len(result.findings),
                    "children_created": created,
                    "commands": len(result.outcomes),
                    "failed": len(failed),
                    "requests": result.requests,
                },
                text=lambda: console.print(
                    f"sync: {result.deals_read} deals read, {len(result.findings)} to "
                    f"act on, {created} children created, {len(result.outcomes)} "
                    f"commands, {result.requests} requests on {conn.label}",
                    highlight=False,
                ),
            ),
            format,
        )
        if failed:
            raise fail(f"{len(failed)} command(s) failed: {failed[0].error}", code=3)
        return
    assert app_token  # refused above, before the portal was opened
    source = ctx.get_parameter_source("app_token")  # typer may carry its own click
    if source is not None and source.name == "COMMANDLINE":
        err.print(
            "[yellow]warning:[/] --app-token on the command line can be read by other users "
            "of this machine (ps); set B24_APP_TOKEN instead",
            highlight=False,
        )
    from b24kit.links.serve import SyncService, serve_forever

    async def work_serve(conn: "Connection") -> None:
        service = SyncService(
            conn.client,
            bp,
            state,
            app_token,
            deadline=deadline,
            lock_wait=pass_wait,
            lock=lock,
        )
        bucket = conn.client.bucket  # leave the rest of the portal's limit to others
        bucket.capacity, bucket.rate = bucket.capacity * rate_share, bucket.rate * rate_share

        def ready(url: str) -> None:
            console.print(
                f"Listening for events on {url} (point the outbound webhook here)", highlight=False
            )

        await serve_forever(service, host, port, interval, ready)

    from b24kit.asgi import ListenError

    try:
        run_portal(conn, work_serve)
    except ListenError as exc:
        raise fail(str(exc), code=2 if exc.in_use else 3) from None
    note("sync stopped.")
