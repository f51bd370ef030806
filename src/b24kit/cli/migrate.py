"""``b24kit migrate``: move legacy project sheets into linked deals."""

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from b24kit.blueprint.document import BlueprintError
from b24kit.cli.codes import USAGE
from b24kit.cli.common import (
    LOCK_WAIT,
    BlueprintAlias,
    BlueprintArgument,
    Format,
    FormatOption,
    LockWaitOption,
    PlanOption,
    PortalOption,
    YesOption,
    blueprint_path,
    locked,
    note,
    open_portal,
    out_option,
    run_portal,
)
from b24kit.cli.output import console, err, fail, phase, row_progress, safe
from b24kit.cli.report import Output, narrate, show

# the migration engine (pydantic, the REST client, the sheet readers) is imported when a
# command runs: typer reads every command's signature at start-up
if TYPE_CHECKING:
    from b24kit.connect import Connection
    from b24kit.migrate.draft import PortalFacts
    from b24kit.migrate.plan import Finding
    from b24kit.migrate.run import MigrationResult
    from b24kit.migrate.undo import UndoResult

app = typer.Typer(
    help="Migrate legacy Google Sheets / CSV / XLSX project tables into "
    "linked parent and child deals, contacts and a contractor directory.",
    no_args_is_help=True,
)


def _print_summary(result: "MigrationResult") -> None:
    s = result.summary()
    console.print(
        f"rows read {s['rows_read']}, valid {s['valid_rows']}, rejected "
        f"{s['rejected_rows']}, warnings {s['warnings']}",
        highlight=False,
    )
    if s["changed_values"]:  # what reaches the portal otherwise than the sheet wrote it
        console.print(
            "  values changed on the way: "
            + ", ".join(f"{n} {kind}" for kind, n in s["changed_values"].items()),
            highlight=False,
        )
    bp = result.blueprint
    if result.dry_run and bp is not None and bp.directories and result.plan.commands:
        console.print(
            "  then: the contractor directory's stats (times used, last price, average "
            "rating, last used) are rewritten where they differ",
            highlight=False,
        )
    for entity, counts in sorted(s["entities"].items()):
        verb = "to create" if result.dry_run else "created"
        console.print(
            f"  {entity}: {counts['created']} {verb}, {counts['updated']} "
            f"{'to update' if result.dry_run else 'updated'}, "
            f"{counts['unchanged']} unchanged",
            highlight=False,
        )


@app.command()
def run(
    mapping_arg: Annotated[
        Path | None,
        typer.Argument(
            metavar="MAPPING", help="Mapping YAML file (see 'migrate init').", show_default=False
        ),
    ] = None,
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            metavar="",
            help="Show what would be created and every rejected row; write nothing.",
        ),
    ] = False,
    yes: YesOption = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE",
            help="Write rejected rows and warnings here (.csv or .json).",
        ),
    ] = None,
    sheets_endpoint: Annotated[
        str | None,
        typer.Option(
            "--sheets-endpoint",
            envvar="B24KIT_SHEETS_ENDPOINT",
            metavar="URL",
            help="Read Google Sheets from this stand-in instead of Google (the sandbox's URL).",
        ),
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(
            "--credentials",
            metavar="FILE",
            help="Google service-account or OAuth client JSON, as gspread reads them.",
        ),
    ] = None,
    reassign_deals: Annotated[
        bool,
        typer.Option(
            "--reassign-deals",
            metavar="",
            help="Let a re-run rewrite deals it made earlier as the projects their rows "
            "name now: another client, or, rows keyed by number, another title (refused "
            "without it: usually another sheet under the same originator, or moved rows).",
        ),
    ] = False,
    lock_wait: LockWaitOption = LOCK_WAIT,
    format: FormatOption = Format.text,
    mapping_alias: Annotated[Path | None, typer.Option("--mapping", "-m", hidden=True)] = None,
) -> None:
    """Read the sheet, reject what cannot be read (with row, column and reason), and create
    or update parent deals, child deals, contacts and contractors. Safe to re-run: rows
    already migrated are updated, never created twice; a killed run resumes. A re-run
    never makes a deal it made another project (another client) unless --reassign-deals.

    Exit codes: 0 done (rejected rows are listed and written to --report), 2 bad mapping
    or sheet, 3 portal error (the run can simply be repeated).
    """
    from b24kit.migrate.run import execute, load_mapping, prepare, write_report
    from b24kit.migrate.todo import TodosLeft

    if report is not None and report.suffix.lower() not in (".csv", ".json"):
        raise fail(f"--report {report}: name a .csv or .json file")
    if mapping_arg and mapping_alias and mapping_arg != mapping_alias:
        raise fail("give the mapping once: as the argument or with -m, not both")
    mapping_file = mapping_arg or mapping_alias
    if mapping_file is None:
        raise fail("missing the mapping: b24kit migrate run MAPPING.yaml ...")
    try:
        mapping = load_mapping(mapping_file)
    except BlueprintError as exc:
        for issue in exc.issues:
            err.print(str(issue), highlight=False, markup=False)
        if isinstance(exc, TodosLeft):
            raise fail(
                f"{mapping_file}: {len(exc.issues)} TODO(s) left from migrate init: "
                "replace each, then run again"
            ) from None
        raise fail(f"{mapping_file}: invalid mapping") from None
    if not (yes or dry_run) and not sys.stdin.isatty():
        raise fail(
            "migrate asks before writing, and there is no terminal to ask on",
            "pass --yes to migrate without asking, or --dry-run to only look",
        )
    conn = open_portal(portal, plan_name, writes=not dry_run)

    async def work(conn: "Connection") -> "MigrationResult":
        with phase(f"reading the sheet and {conn.label}"):
            result = await prepare(
                conn.client,
                mapping,
                mapping_file.parent,
                sheets_endpoint,
                credentials,
                reassign_deals=reassign_deals,
            )
        narrate(format, lambda: _print_before(result, dry_run))
        if dry_run or not result.plan.commands:
            return result
        if not yes and not typer.confirm("Migrate these rows?", default=False, err=True):
            err.print("Nothing was migrated.")
            return result
        with row_progress("migrating") as progress:
            return await execute(conn.client, result, progress)

    # two runs on one portal at once would each see the rows as new and make them twice
    started = time.monotonic()
    try:
        result = run_portal(conn, work if dry_run else locked("migrate", lock_wait, work))
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    if report is not None:
        write_report(report, result)
    took = time.monotonic() - started
    show(
        Output(
            {
                **result.summary(),
                "portal": conn.label,
                "seconds": round(took, 1),
                # what a script needs to act on: every rejected row and warning
                "findings": [f.as_dict() for f in result.findings],
            },
            text=lambda: print_outcome(result, conn.label, took),
        ),
        format,
    )
    if result.failed:
        raise typer.Exit(3)
    if result.rows and not result.records:  # no silent success: nothing could be taken
        raise fail(
            f"{mapping_file}: every one of the sheet's {result.rows} row(s) was rejected; "
            "nothing was migrated",
            "the first rejections are listed above (--dry-run lists them all)",
        )


DIGEST = 12  # groups of rejected values shown before the rows


def _print_before(result: "MigrationResult", dry_run: bool) -> None:
    """What a person reads before saying yes: the summary, the rejected values grouped by
    column (each distinct value with its count), then the rejected rows themselves (all of
    them in a dry run, the first 20 otherwise) and, in a dry run, the warnings."""
    _print_summary(result)
    rejected = [f for f in result.findings if f.kind == "rejected"]
    warnings = [f for f in result.findings if f.kind == "warning"]
    if rejected:
        groups: dict[tuple[str, str], list[Finding]] = {}
        for finding in rejected:
            value = "(empty)" if finding.value in (None, "") else repr(str(finding.value))
            if finding.column is None:  # a row-level reason: blank, a header again
                value = finding.reason
            groups.setdefault((finding.column or "(row)", value), []).append(finding)
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        err.print("rejected, by column:", highlight=False)
        for (column, value), found in ordered[:DIGEST]:
            why = "" if value == found[0].reason else f": {found[0].reason}"
            err.print(
                f"  {column}: {value} in {len(found)} row(s){why}",
                highlight=False,
                markup=False,
            )
        if len(ordered) > DIGEST:
            err.print(f"  ... and {len(ordered) - DIGEST} other value(s)", highlight=False)
    shown = len(rejected) if dry_run else 20  # a dry run shows every one
    for finding in rejected[:shown] + (warnings if dry_run else []):
        number = f" (№ {finding.row_id})" if finding.row_id else ""  # the project's own number
        where = f" row {finding.row}{number}" if finding.row else ""  # 0: of no one row
        err.print(
            f"{finding.kind}{where}"
            f"{' ' + finding.column if finding.column else ''}: {finding.reason}",
            highlight=False,
            markup=False,
        )
    if len(rejected) > shown:
        err.print(f"... and {len(rejected) - shown} more (see --report)", highlight=False)


def print_outcome(result: "MigrationResult", portal: str, took: float = 0.0) -> None:
    """The end of a run: per entity what was created, updated and left unchanged, the
    commands that failed, and the time taken."""
    if result.dry_run:
        return
    failed = len(result.failed)
    for entity, counts in sorted(result.summary()["entities"].items()):
        console.print(
            f"  {entity}: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged",
            highlight=False,
        )
    if result.directory_writes:
        console.print(
            f"  directory stats: {result.directory_writes} entr(ies) rewritten", highlight=False
        )
    console.print(
        f"Done in {took:.1f} s: {len(result.outcomes) - failed} of {len(result.outcomes)} "
        f"commands succeeded on {portal}"
        + (f"; {failed} failed: run it again to finish" if failed else "."),
        highlight=False,
    )


@app.command()
def init(
    blueprint_arg: BlueprintArgument = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="A CSV export.")
    ] = None,
    xlsx_file: Annotated[
        Path | None, typer.Option("--xlsx", metavar="FILE", help="An XLSX export.")
    ] = None,
    sheet: Annotated[
        str | None, typer.Option("--sheet", metavar="URL|KEY", help="Google Sheet URL or key.")
    ] = None,
    worksheet: Annotated[
        str | None,
        typer.Option("--worksheet", metavar="NAME", help="The worksheet (default: the first)."),
    ] = None,
    header_rows: Annotated[
        int,
        typer.Option(
            "--header-rows",
            metavar="N",
            help="Rows the header takes (2 when a merged group sits above columns).",
        ),
    ] = 1,
    sheets_endpoint: Annotated[
        str | None,
        typer.Option(
            "--sheets-endpoint",
            envvar="B24KIT_SHEETS_ENDPOINT",
            metavar="URL",
            help="Read Google Sheets from this stand-in (the sandbox's URL).",
        ),
    ] = None,
    credentials: Annotated[
        Path | None, typer.Option("--credentials", metavar="FILE", help="Google credentials JSON.")
    ] = None,
    out: Annotated[Path | None, out_option("Write the draft here.")] = None,
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    blueprint_alias: BlueprintAlias = None,
) -> None:
    """Draft a mapping from a sheet and a blueprint: columns recognised by their header
    and their values, value maps drafted from the sheet's own words (each with its count),
    the people in the sheet matched to the portal's users. Whatever it cannot decide is
    TODO: replace each, then run with --dry-run (a mapping with a TODO left is refused)."""
    from b24kit.blueprint.loader import load_blueprint
    from b24kit.migrate.draft import draft_mapping
    from b24kit.migrate.sources import gspread_client, read_csv, read_gsheet, read_xlsx, to_table

    blueprint_file = blueprint_path(blueprint_arg, blueprint_alias)

    try:
        if csv_file:
            grid, source = read_csv(csv_file), {"csv": str(csv_file)}
        elif xlsx_file:
            grid, source = read_xlsx(xlsx_file, worksheet), {"xlsx": str(xlsx_file)}
        elif sheet:
            grid = read_gsheet(gspread_client(credentials, sheets_endpoint), sheet, worksheet)
            source = {"sheet": sheet}
        else:
            raise fail("give the sheet: --csv, --xlsx or --sheet")
        if worksheet:
            source["worksheet"] = worksheet
        source["header_rows"] = header_rows  # type: ignore[assignment]
        blueprint, _ = load_blueprint(blueprint_file)
        table = to_table(grid, header_rows)
        if not table.headers:
            raise fail(f"{table.source}: the sheet is empty: no header to draft from")
    except BlueprintError as exc:
        raise fail(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    facts = _draft_facts(portal, plan_name)
    # the mapping reads its paths relative to its own folder
    home = (out.parent if out is not None else Path.cwd()).resolve()
    for key in ("csv", "xlsx"):
        if key in source:
            source[key] = os.path.relpath(Path(str(source[key])).resolve(), home)
    try:
        draft = draft_mapping(
            table, blueprint, source, os.path.relpath(blueprint_file.resolve(), home), facts
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    for line in draft.notes:
        note(line)
    if out is None:
        typer.echo(draft.text, nl=False)
    else:
        out.write_text(draft.text, encoding="utf-8")
        err.print(f"Wrote {out}", highlight=False, markup=False)
    if draft.todos:
        note(f"{draft.todos} TODO(s) to decide: migrate run lists each with its line")


def _draft_facts(portal: str | None, plan: str | None) -> "PortalFacts | None":
    """The portal's users and sources for a draft: from the portal named (or the default
    one); with none, the people are left TODO, and init says so."""
    from b24kit.client import ConfigError, redact
    from b24kit.connect import connect
    from b24kit.migrate.draft import read_portal_facts

    if portal is None:  # the default portal, when there is one; none is fine here
        try:
            conn = connect(None, plan=plan)
        except (ConfigError, ValueError) as exc:
            if not str(exc).startswith("no portal chosen"):
                raise fail(redact(str(exc))) from None
            return None  # the draft says what that leaves undecided
        for warning in conn.warnings:
            note(f"warning: {warning}")
        if conn.is_sandbox:
            note(f"Using the {conn.label}.")
    else:
        conn = open_portal(portal, plan)

    async def work(conn: "Connection") -> "PortalFacts":
        with phase(f"reading the users of {conn.label}"):
            return await read_portal_facts(conn.client)

    return run_portal(conn, work)


@app.command()
def schema(out: Annotated[Path | None, out_option("Write to a file.")] = None) -> None:
    """Write the mapping file's JSON Schema (for editors with the YAML language server)."""
    import json

    from b24kit.migrate.mapping import mapping_schema

    text = json.dumps(mapping_schema(), ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


SHOWN = 20  # rows of the undo plan shown before the prompt


@app.command()
def undo(
    mapping_file: Annotated[
        Path,
        typer.Argument(
            metavar="MAPPING", help="The mapping whose runs are undone.", show_default=False
        ),
    ],
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", metavar="", help="Show what would be removed; delete nothing."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            metavar="",
            help="Remove also what was changed on the portal since the migration.",
        ),
    ] = False,
    yes: YesOption = False,
    lock_wait: LockWaitOption = LOCK_WAIT,
    format: FormatOption = Format.text,
) -> None:
    """Remove what this mapping's runs made (found by its originator's keys), for
    rehearsals: child deals, then parent deals with their comments, then contractors, then
    the contacts and companies no other deal uses. Contacts that existed before are kept.
    Refused when any of it was changed on the portal since the migration (by another user:
    an edit, a stage move, a comment), unless --force. A run stopped half-way is finished
    by running it again; `migrate run` afterwards makes everything again.

    Exit codes: 0 removed (or nothing to remove), 2 bad mapping, or refused (changed
    entities listed, nothing deleted), 3 portal error (run it again to finish).
    """
    from b24kit.migrate.run import load_mapping
    from b24kit.migrate.undo import UndoResult, plan_undo, run_undo

    try:
        mapping = load_mapping(mapping_file)
    except BlueprintError as exc:
        for issue in exc.issues:
            err.print(str(issue), highlight=False, markup=False)
        raise fail(f"{mapping_file}: invalid mapping") from None
    if not (yes or dry_run) and not sys.stdin.isatty():
        raise fail(
            "undo asks before deleting, and there is no terminal to ask on",
            "pass --yes to undo without asking, or --dry-run to only look",
        )
    conn = open_portal(portal, plan_name, writes=not dry_run)

    async def work(conn: "Connection") -> "tuple[UndoResult, int]":
        with phase(f"reading what {mapping.originator!r} made on {conn.label}"):
            plan = await plan_undo(conn.client, mapping)
        result = UndoResult(plan)
        narrate(format, lambda: _print_undo_plan(result, conn.label, force))
        if plan.changed and not force:
            return result, USAGE
        if dry_run or not plan.remove:
            return result, 0
        total = len(plan.remove)
        if not yes and not typer.confirm(
            f"Delete these {total} entities from {conn.label}?", default=False, err=True
        ):
            err.print("Nothing was deleted.")
            return result, 0
        with row_progress("deleting") as progress:
            return await run_undo(conn.client, plan, force=force, progress=progress), 0

    try:
        result, code = run_portal(
            conn, work if dry_run else locked("migrate undo", lock_wait, work)
        )
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    plan = result.plan
    data = {
        **plan.as_dict(),
        "removed": result.removed,
        "failed_commands": len(result.failed),
        "dry_run": dry_run,
        "refused": code == USAGE,
        "portal": conn.label,
    }
    show(Output(data, text=lambda: _print_undo_outcome(result, conn.label)), format)
    if code:
        raise fail(
            f"{len(plan.changed)} entit{'y' if len(plan.changed) == 1 else 'ies'} changed on "
            f"{conn.label} since the migration; nothing was deleted",
            "check them on the portal; --force removes them too",
            code=code,
        )
    if result.failed:
        raise typer.Exit(3)


SINGULAR = {
    "children": "child deal",
    "parents": "parent deal",
    "contractors": "contractor",
    "contacts": "contact",
    "companies": "company",
}


def _print_undo_plan(result: "UndoResult", portal: str, force: bool) -> None:
    """The plan, before the question: the portal, the counts, the first rows in the order
    they go, what is kept and why; then each changed entity on a line of its own."""
    plan = result.plan
    counts = plan.counts
    total = sum(counts.values())
    console.print(
        f"Undo of {safe(repr(plan.originator))} on {safe(portal)}: {total} to delete"
        + (f" ({', '.join(f'{e} {n}' for e, n in counts.items() if n)})" if total else ""),
        highlight=False,
    )
    if plan.comments:
        console.print(f"  {plan.comments} b24kit comment(s) go with their deals", highlight=False)
    for doomed in plan.remove[:SHOWN]:
        console.print(
            f"  delete {SINGULAR[doomed.entity]} {doomed.id} {safe(doomed.key)}: "
            f"{safe(doomed.title)}",
            highlight=False,
        )
    if len(plan.remove) > SHOWN:
        console.print(
            f"  ... and {len(plan.remove) - SHOWN} more (--format json lists them all)",
            highlight=False,
        )
    for kept in plan.kept:
        console.print(
            f"  {safe(kept.reason)}: {SINGULAR[kept.entity]} {kept.id} {safe(kept.title)}",
            highlight=False,
        )
    for note_line in plan.notes:
        console.print(f"  note: {safe(note_line)}", highlight=False)
    for doomed in plan.changed:
        err.print(
            f"{'changed, deleted with --force' if force else 'refused'}: "
            f"{SINGULAR[doomed.entity]} {doomed.id} {safe(doomed.key)}: "
            f"{safe('; '.join(doomed.changes))}",
            highlight=False,
        )


def _print_undo_outcome(result: "UndoResult", portal: str) -> None:
    """The last line: what was deleted, per entity, and where."""
    if not result.outcomes:
        if not result.plan.remove:
            console.print(f"Nothing of this mapping's to undo on {safe(portal)}.", highlight=False)
        return
    removed = result.removed
    failed = len(result.failed)
    console.print(
        f"Deleted {sum(removed.values())} of {len(result.plan.remove)} on {safe(portal)}"
        + (
            f" ({', '.join(f'{e} {n}' for e, n in removed.items() if n)})"
            if any(removed.values())
            else ""
        )
        + (f"; {failed} failed: run undo again to finish" if failed else "."),
        highlight=False,
    )
