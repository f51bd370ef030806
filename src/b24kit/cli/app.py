"""The root of the b24kit command line: the commands, the global options, and the one
place where errors become exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import click
import typer

try:
    from typer._click import exceptions as typer_click_errors
except ImportError:  # a typer that uses click itself
    from click import exceptions as typer_click_errors  # type: ignore[no-redef]

from b24kit import __version__
from b24kit.blueprint.loader import BlueprintError
from b24kit.cli import blueprint, call, links, migrate, portal, reports, sandbox
from b24kit.cli.codes import INTERNAL, INTERRUPTED, INTERRUPTED_LINE, USAGE
from b24kit.cli.common import (
    OPTIONS,
    setup_logging,
)
from b24kit.cli.output import err
from b24kit.client import redact
from b24kit.errors import Error, one_line

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    help=(
        "b24kit: deploy, migrate and check Bitrix24 CRM portals.\n\n"
        "Every portal command takes --portal: a webhook URL, a profile name, or 'sandbox' "
        "for the local sandbox portal; with none given or configured it stops. "
        "Exit codes: 0 done, 1 findings you asked to fail on, 2 bad input (nothing written), "
        "3 portal or network failure, 4 a bug in b24kit, 130 interrupted."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)
PORTAL, DEPLOY, MIGRATE, CHECK = "Portal and sandbox", "Deploy", "Migrate", "Check"
for sub in (sandbox.app, portal.app, migrate.app, reports.report_app, blueprint.schema_app):
    sub.info.context_settings = CONTEXT
app.add_typer(sandbox.app, name="sandbox", rich_help_panel=PORTAL)
app.add_typer(portal.app, name="portal", rich_help_panel=PORTAL)
app.command(name="call", rich_help_panel=PORTAL)(call.call)
app.command(name="validate", rich_help_panel=DEPLOY)(blueprint.validate)
app.command(name="plan", rich_help_panel=DEPLOY)(blueprint.plan)
app.command(name="apply", rich_help_panel=DEPLOY)(blueprint.apply)
app.command(name="export", rich_help_panel=DEPLOY)(blueprint.export)
app.command(name="graph", rich_help_panel=DEPLOY)(blueprint.graph)
app.add_typer(blueprint.schema_app, name="blueprint", rich_help_panel=DEPLOY)
app.add_typer(migrate.app, name="migrate", rich_help_panel=MIGRATE)
app.command(name="audit", rich_help_panel=CHECK)(links.audit)
app.command(name="sync", rich_help_panel=CHECK)(links.sync)
app.add_typer(reports.report_app, name="report", rich_help_panel=CHECK)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"b24kit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar="",
            help="More log detail on stderr (-vv: debug).",
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", metavar="", help="Only the summary line and errors.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", metavar="", help="Show the traceback of an internal error.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, metavar="", help="Show the version."
        ),
    ] = False,
) -> None:
    """b24kit: deploy, migrate and check Bitrix24 CRM portals."""
    OPTIONS.verbose, OPTIONS.quiet, OPTIONS.debug = verbose, quiet, debug
    setup_logging()


# typer may carry its own copy of click: catch the exceptions of both
EXIT = (typer.Exit, click.exceptions.Exit)
ABORT = (typer.Abort, click.exceptions.Abort)
CLICK_ERRORS = (typer_click_errors.ClickException, click.ClickException)
USAGE_ERRORS = (typer_click_errors.UsageError, click.UsageError)

GLOBAL_FLAGS = {"-q", "--quiet", "--debug", "-v", "-vv", "-vvv", "--verbose"}


def hoist_global_flags(argv: Sequence[str]) -> list[str]:
    """-v, -q and --debug are global: accepted anywhere on the line (``b24kit audit x -q``),
    moved before the command so the root reads them. Nothing after ``--`` moves."""
    args = list(argv)
    cut = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:cut] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:cut] if a not in GLOBAL_FLAGS]
    return flags + rest + args[cut:]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI. Every outcome is an exit code of the table; an error is one line."""
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    OPTIONS.debug = "--debug" in args
    try:
        code = app(args=args, prog_name="b24kit", standalone_mode=False)
    except EXIT as exc:
        code = exc.exit_code
    except (*ABORT, KeyboardInterrupt):
        code = INTERRUPTED
    except CLICK_ERRORS as exc:
        exc.show()
        code = USAGE if isinstance(exc, USAGE_ERRORS) else exc.exit_code
    except Error as exc:  # the hierarchy decides the code: input 2, portal 3, other 4
        if isinstance(exc, BlueprintError):  # a blueprint or mapping named by another file
            for issue in exc.issues:
                err.print(str(issue), highlight=False, markup=False)
        else:
            err.print(f"error: {one_line(redact(str(exc)))}", highlight=False, markup=False)
        code = exc.exit_code
    except OSError as exc:  # a file the user named: cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        text = one_line(f"{where}{exc.strerror or exc}")
        err.print(f"error: {text}", highlight=False, markup=False)
        code = USAGE
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes a clear line
        if OPTIONS.debug:
            traceback.print_exc()
        message = redact(f"{type(exc).__name__}: {exc}")
        err.print(
            f"error: internal error ({message}); this is a bug in b24kit, please "
            "report it" + ("" if OPTIONS.debug else " (--debug shows the traceback)"),
            highlight=False,
            markup=False,
        )
        code = INTERNAL
    if code == INTERRUPTED:  # however it arrived: typer returns or raises Exit(130) silently
        err.print(INTERRUPTED_LINE, highlight=False, markup=False)
    sys.exit(code if isinstance(code, int) else 0)
