"""The root of the b24kit command line: the commands, the global options, and the one
place where errors become exit codes."""

import copy
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, TypeVar

import typer

try:
    from typer._click import exceptions as typer_click_errors
except ImportError:  # a typer that uses click itself
    from click import exceptions as typer_click_errors  # type: ignore[no-redef]

from b24kit import __version__
from b24kit.blueprint.document import BlueprintError
from b24kit.cli import blueprint, call, links, migrate, portal, reports, sandbox
from b24kit.cli.codes import INTERNAL, INTERRUPTED, INTERRUPTED_LINE, USAGE
from b24kit.cli.common import (
    OPTIONS,
    setup_logging,
)
from b24kit.cli.output import err
from b24kit.errors import Error, one_line

E = TypeVar("E", bound=BaseException)
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


def _caught(ours: type[E], name: str) -> tuple[type[E], ...]:
    """``ours`` and, when click is loaded, click's own exception ``name``: typer may carry
    its own copy of click, whose exceptions are not click's. click itself is not imported
    for this (60 ms at start-up): only code that imported click can raise its exceptions.
    (click's class stands in for ``ours``: both have the attributes main reads.)"""
    module = sys.modules.get("click.exceptions")
    found = getattr(module, name, None)
    return (ours, found) if isinstance(found, type) and found is not ours else (ours,)


def _redact(text: str) -> str:
    from b24kit.client import redact  # loads the REST client: only on an error's way out

    return redact(text)


GLOBAL_FLAGS = {"-q", "--quiet", "--debug", "-v", "-vv", "-vvv", "--verbose"}


def hoist_global_flags(argv: Sequence[str]) -> list[str]:
    """-v, -q and --debug are global: accepted anywhere on the line (``b24kit audit x -q``),
    moved before the command so the root reads them. Nothing after ``--`` moves."""
    args = list(argv)
    cut = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:cut] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:cut] if a not in GLOBAL_FLAGS]
    return flags + rest + args[cut:]


def only_command(args: Sequence[str]) -> typer.Typer:
    """The app with only the command (or group) the line names, or the whole app when it
    names none it knows (``b24kit --help`` lists every command; a mistyped name gets its
    suggestion). typer builds every command's options from its signature on each run,
    60 ms for all of them: a command needs only its own. Root options take no value, so
    the first word not starting with "-" is the command."""
    name = next((a for a in args if not a.startswith("-")), None)
    if name not in _ONLY:
        commands = [c for c in app.registered_commands if c.name == name]
        groups = [g for g in app.registered_groups if g.name == name]
        if not commands and not groups:
            return app
        only = copy.copy(app)
        only.registered_commands, only.registered_groups = commands, groups
        _ONLY[name] = only
    return _ONLY[name]


_ONLY: dict[str | None, typer.Typer] = {}  # one app per command, made once per process


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI. Every outcome is an exit code of the table; an error is one line."""
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    OPTIONS.debug = "--debug" in args
    try:
        code = only_command(args)(args=args, prog_name="b24kit", standalone_mode=False)
    except _caught(typer.Exit, "Exit") as exc:
        code = exc.exit_code
    except _caught(typer.Abort, "Abort") + (KeyboardInterrupt,):
        code = INTERRUPTED
    except _caught(typer_click_errors.ClickException, "ClickException") as exc:
        exc.show()
        usage = isinstance(exc, _caught(typer_click_errors.UsageError, "UsageError"))
        code = USAGE if usage else exc.exit_code
    except Error as exc:  # the hierarchy decides the code: input 2, portal 3, other 4
        if isinstance(exc, BlueprintError):  # a blueprint or mapping named by another file
            for issue in exc.issues:
                err.print(str(issue), highlight=False, markup=False)
        else:
            err.print(f"error: {one_line(_redact(str(exc)))}", highlight=False, markup=False)
        if exc.hint:
            err.print(f"  {one_line(_redact(exc.hint))}", highlight=False, markup=False)
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
        message = _redact(f"{type(exc).__name__}: {exc}")
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
