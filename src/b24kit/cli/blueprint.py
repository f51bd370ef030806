"""Deploy commands: validate, plan, apply, export, graph, and ``blueprint schema``."""

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from b24kit.blueprint.document import BlueprintError
from b24kit.cli.codes import USAGE
from b24kit.cli.common import (
    LOCK_WAIT,
    DocFormat,
    Format,
    FormatOption,
    LockWaitOption,
    PlanOption,
    PortalOption,
    YesOption,
    locked,
    note,
    open_portal,
    out_option,
    run_portal,
)
from b24kit.cli.output import console, err, fail, phase, row_progress, safe
from b24kit.cli.report import Output, narrate, show
from b24kit.errors import InputError

# Each command imports what it uses (the pydantic model, the planner, the REST client) when
# it runs: typer reads every command's signature at start-up, and `validate` loads only the
# blueprint loader (tests/test_startup.py).
if TYPE_CHECKING:
    from b24kit.blueprint.apply import ApplyReport
    from b24kit.blueprint.model import Blueprint
    from b24kit.blueprint.plan import Change, Plan, PlanOptions
    from b24kit.connect import Connection

schema_app = typer.Typer(help="The blueprint format.", no_args_is_help=True)
VarOption = Annotated[
    list[str] | None,
    typer.Option(
        "--var",
        metavar="NAME=VALUE",
        help="Set a blueprint variable: --var company=Ромашка (repeatable).",
    ),
]
PruneOption = Annotated[
    bool,
    typer.Option(
        "--prune",
        metavar="",
        help="Also delete what the portal has and the blueprint "
        "does not (refused for stages and pipelines that hold items).",
    ),
]
MoveOption = Annotated[
    list[str] | None,
    typer.Option(
        "--move-stage",
        metavar="PIPELINE:STAGE=TARGET",
        help="With --prune: move the items of a stage being deleted, "
        "PIPELINE:STAGE=TARGET_STAGE (repeatable).",
    ),
]
SYMBOL = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "rename": ("±", "cyan"),
    "delete": ("-", "red"),
}


def _variables(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--var {pair!r}: expected name=value")
        out[key] = value
    return out


def _options(prune: bool, moves: list[str] | None) -> "PlanOptions":
    from b24kit.blueprint.plan import PlanOptions

    move_stage = {}
    for item in moves or []:
        source, sep, target = item.partition("=")
        if not sep or ":" not in source:
            raise fail(f"--move-stage {item!r}: expected PIPELINE:STAGE=TARGET_STAGE")
        move_stage[source] = target
    return PlanOptions(prune=prune, move_stage=move_stage)


def _load(file: Path, variables: dict[str, str], code: int = 2) -> "Blueprint":
    from b24kit.blueprint.loader import load_blueprint

    try:
        blueprint, _ = load_blueprint(file, variables)
    except BlueprintError as exc:
        for issue in exc.issues:
            err.print(str(issue), highlight=False, markup=False)
        noun = "error" if len(exc.issues) == 1 else "errors"
        raise fail(
            f"{file}: {len(exc.issues)} {noun}; nothing was sent to the portal", code=code
        ) from None
    return blueprint


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else f'"{value}"'


def _changed(key: str, value: Any) -> str:
    """One attribute of an update: before -> after; an enumeration's values as the lines
    the plan made of them ("+ new", "~ old -> new", "- dropped"): read as a pair, one line
    was an IndexError (exit 4) and two were shown as a change of one into the other."""
    if key == "values" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return f"values: {'; '.join(value)}"
    return f"{key}: {_value(value[0])} -> {_value(value[1])}"


def render_change(change: "Change") -> str:
    symbol, colour = SYMBOL[change.action]
    if change.action in ("update", "rename"):
        detail = ", ".join(_changed(k, v) for k, v in change.attrs.items())
    else:
        detail = " ".join(f"{k}={_value(v)}" for k, v in change.attrs.items())
    # names come from the blueprint or the portal: never markup, never control characters
    line = f"  [{colour}]{symbol} {change.kind} {safe(change.address)}[/]  {safe(detail)}"
    if change.note:
        line += f"  [dim]({safe(change.note)})[/]"
    if change.refused:
        line += f"\n      [bold red]refused:[/] {safe(change.refused)}"
    return line


def print_plan(plan: "Plan") -> None:
    from b24kit.blueprint.apply import plan_summary_line

    groups: dict[str, list[Change]] = {}  # in order of first appearance
    for change in plan.changes:
        groups.setdefault(change.group, []).append(change)
    for group, changes in groups.items():
        console.print(f"\n[bold]{safe(group)}[/]", highlight=False)
        for change in changes:
            console.print(render_change(change), highlight=False, soft_wrap=True)
    if not plan.changes:
        console.print("No changes. The portal matches the blueprint.")
    else:
        console.print()
    console.print(plan_summary_line(plan.summary()), highlight=False)


def print_applied(report: "ApplyReport", portal: str) -> None:
    for o in report.outcomes:
        mark = "[green]✓[/]" if o.ok else "[red]✗[/]"
        line = f"{mark} {o.change.action} {o.change.kind} {safe(o.change.address)}"
        if o.error:
            line += f": {safe(o.error)}"
        console.print(line, highlight=False, soft_wrap=True)
    done = sum(o.ok for o in report.outcomes)
    console.print(
        f"\nApplied {done} of {len(report.outcomes)} changes on {portal}: "
        f"{report.commands} commands, {report.requests} requests.",
        highlight=False,
    )


def validate(
    file: Annotated[Path, typer.Argument(metavar="BLUEPRINT", help="Blueprint YAML file.")],
    var: VarOption = None,
    format: FormatOption = Format.text,
) -> None:
    """Check a blueprint without touching a portal: schema, includes, variables and
    references (links, stages, fields). Every error is listed as file:line:column.

    Exit code 0 when valid, 2 when not.
    """
    blueprint = _load(file, _variables(var))
    counts = {
        "deal_pipelines": len(blueprint.deal.pipelines),
        "deal_fields": len(blueprint.deal.fields),
        "smart_processes": len(blueprint.smart_processes),
        "links": len(blueprint.links),
    }
    show(
        Output(
            {"file": str(file), "valid": True, **counts},
            text=lambda: console.print(
                f"{file}: valid ({counts['deal_pipelines']} deal pipelines, "
                f"{counts['deal_fields']} deal fields, {counts['smart_processes']} smart "
                f"processes, {counts['links']} links)",
                highlight=False,
            ),
        ),
        format,
    )


def plan(
    file: Annotated[Path, typer.Argument(metavar="BLUEPRINT", help="Blueprint YAML file.")],
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    var: VarOption = None,
    prune: PruneOption = False,
    move_stage: MoveOption = None,
    format: FormatOption = Format.text,
    out: Annotated[
        Path | None, out_option("Save the plan, to apply exactly it later (any file name).")
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            metavar="",
            help="Exit 0 with no changes, 2 with changes, 1 on "
            "any error, bad input included (as Terraform does).",
        ),
    ] = False,
) -> None:
    """Show what apply would change on the portal: + create, ~ update, ± rename,
    - delete. Everything apply will do is listed and counted here, the stages a new
    pipeline comes with included. Reads the portal in a few batched calls; writes nothing.

    Exit codes: 0 done, 2 bad input, 3 portal error; with --detailed-exitcode: 0 no
    changes, 2 changes pending, 1 any error.
    """
    try:
        changes = _plan(file, portal, plan_name, var, prune, move_stage, format, out)
    except typer.Exit as exc:
        if detailed_exitcode and exc.exit_code:
            raise typer.Exit(1) from None
        raise
    if detailed_exitcode and changes:
        raise typer.Exit(2)


def _plan(
    file: Path,
    portal: str | None,
    plan_name: str | None,
    var: list[str] | None,
    prune: bool,
    move_stage: list[str] | None,
    format: Format,
    out: Path | None,
) -> int:
    from b24kit.blueprint.apply import make_plan
    from b24kit.blueprint.saved import save_plan

    blueprint = _load(file, _variables(var))
    options = _options(prune, move_stage)
    conn = open_portal(portal, plan_name)

    async def work(conn: "Connection") -> "Plan":
        with phase(f"reading {conn.label}"):
            return await make_plan(conn.client, blueprint, options)

    result = run_portal(conn, work)
    if out is not None:
        save_plan(out, blueprint, options, result)

    def text() -> None:
        print_plan(result)
        if out is not None:
            console.print(f"Saved to {out}; apply it with: b24kit apply {out}", highlight=False)

    show(Output(result.as_dict(), text=text), format)
    return len(result.changes)


def apply(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="BLUEPRINT|PLAN", help="Blueprint YAML file, or a plan saved by 'plan --out'."
        ),
    ],
    portal: PortalOption = None,
    plan_name: PlanOption = None,
    var: VarOption = None,
    prune: PruneOption = False,
    move_stage: MoveOption = None,
    yes: YesOption = False,
    lock_wait: LockWaitOption = LOCK_WAIT,
    format: FormatOption = Format.text,
) -> None:
    """Make the portal match the blueprint: show the plan, ask, then apply it through
    batched calls in dependency order. Safe to re-run: a second apply plans nothing, and
    an interrupted apply continues where it stopped. Nothing is deleted without --prune.

    Exit codes: 0 applied (or nothing to do), 2 bad blueprint or refused changes,
    3 portal error.
    """
    from b24kit.blueprint.apply import ApplyError, apply_blueprint, make_plan
    from b24kit.blueprint.saved import read_saved_plan

    try:
        saved = read_saved_plan(file)
    except InputError as exc:
        raise fail(str(exc)) from None
    if saved is not None:
        blueprint, options = saved.blueprint, saved.options
    else:
        blueprint = _load(file, _variables(var))
        options = _options(prune, move_stage)
    if not yes and not sys.stdin.isatty():
        raise fail(
            "apply asks before writing, and there is no terminal to ask on",
            "pass --yes to apply without asking (cron, CI)",
        )
    conn = open_portal(portal, plan_name, writes=True)

    async def work(conn: "Connection") -> int:
        with phase(f"reading {conn.label}"):
            first = await make_plan(conn.client, blueprint, options)
        if saved is not None and first.fingerprint != saved.fingerprint:
            err.print(
                "error: the portal changed since the plan was made; run plan again", highlight=False
            )
            return 2
        narrate(format, lambda: print_plan(first))
        if first.refused:
            err.print(
                f"error: {len(first.refused)} change(s) refused; nothing was written",
                highlight=False,
            )
            return USAGE
        if not first.changes:
            show(Output({"applied": [], "commands": 0, "summary": first.summary()}), format)
            note(f"Nothing to apply on {conn.label}.")
            return 0
        if not yes and not typer.confirm("\nApply these changes?", default=False, err=True):
            err.print("Nothing was applied.")
            return 0
        with row_progress("applying") as progress:
            report = await apply_blueprint(
                conn.client, blueprint, options, plan=first, progress=progress
            )
        results = [
            {
                "action": o.change.action,
                "kind": o.change.kind,
                "address": o.change.address,
                "ok": o.ok,
                "error": o.error,
            }
            for o in report.outcomes
        ]
        show(
            Output(
                {
                    "applied": results,
                    "commands": report.commands,
                    "requests": report.requests,
                    "ok": report.ok,
                    "portal": conn.label,
                },
                text=lambda: print_applied(report, conn.label),
            ),
            format,
        )
        if report.refused:
            return 2
        return 0 if report.ok else 3

    try:
        code = run_portal(conn, locked("apply", lock_wait, work))
    except ApplyError as exc:
        raise fail(str(exc), code=3) from None
    if code:
        raise typer.Exit(code)


def export(
    portal: PortalOption = None,
    out: Annotated[Path | None, out_option("Write to this file.")] = None,
    name: Annotated[str, typer.Option(metavar="NAME", help="The blueprint's name.")] = "export",
    format: Annotated[
        DocFormat, typer.Option("--format", "-f", metavar="yaml|json", help="Output format.")
    ] = DocFormat.yaml,
) -> None:
    """Write the portal's structure (pipelines, stages, fields, smart processes) as a
    blueprint. 'export' then 'plan' on the same portal shows no changes; export from one
    portal and apply to another copies the structure."""
    from b24kit.blueprint.export import dump_yaml, export_blueprint
    from b24kit.portal.snapshot import read_snapshot

    conn = open_portal(portal, None)

    async def work(conn: "Connection") -> dict[str, Any]:
        with phase(f"reading {conn.label}"):
            return export_blueprint(await read_snapshot(conn.client), name)

    doc = run_portal(conn, work)
    text = (
        json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
        if format == DocFormat.json
        else dump_yaml(doc)
    )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"Wrote {out}")


def graph(
    file: Annotated[Path, typer.Argument(metavar="BLUEPRINT", help="Blueprint YAML file.")],
    out: Annotated[
        Path | None,
        out_option(
            "Write to a file: .svg draws a picture, .md "
            "wraps Mermaid in a code block, anything else "
            "gets Mermaid text."
        ),
    ] = None,
    var: VarOption = None,
    linked_only: Annotated[
        bool,
        typer.Option(
            "--linked-only",
            metavar="",
            help="Only the deal pipelines the links join (and the smart processes).",
        ),
    ] = False,
) -> None:
    """Draw the pipelines, their stages and the links between them as a Mermaid flowchart
    (GitHub and most Markdown viewers render it). Every pipeline is drawn unless
    --linked-only is given."""
    from b24kit.blueprint.graph import mermaid
    from b24kit.blueprint.svg import render_svg

    blueprint = _load(file, _variables(var))
    if linked_only:
        linked = {
            end for link in blueprint.links for end in (*link.parent.codes, link.child.pipeline)
        }
        left = [p.code for p in blueprint.deal.pipelines if p.code not in linked]
        if left:
            note(f"--linked-only: {len(left)} deal pipeline(s) not drawn: {', '.join(left)}")
    text = mermaid(blueprint, linked_only)
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.suffix.lower() not in (".svg", ".md", ".mmd", ".mermaid", ".txt"):
        raise fail(f"{out}: graph writes .svg (a picture), .md, or Mermaid text (.mmd, .txt)")
    if out.suffix == ".svg":
        text = render_svg(blueprint, linked_only)
    elif out.suffix == ".md":
        text = f"```mermaid\n{text}```\n"
    out.write_text(text, encoding="utf-8")
    err.print(f"Wrote {out}")


@schema_app.command("schema")
def schema(out: Annotated[Path | None, out_option("Write to a file.")] = None) -> None:
    """Write the blueprint JSON Schema, for editors with the YAML language server
    (add '# yaml-language-server: $schema=PATH' at the top of a blueprint)."""
    from b24kit.blueprint.model import json_schema

    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"Wrote {out}")
