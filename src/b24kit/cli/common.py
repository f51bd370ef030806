"""What every portal command shares: the options of one surface (--portal, --plan,
-f/--format, -o/--out, the blueprint argument), the global -v/-q/--debug state, the target
notice, error handling with exit codes, and running the async core."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape

from b24kit.blueprint.document import BlueprintError
from b24kit.cli.codes import USAGE
from b24kit.cli.interrupt import run_cancellable
from b24kit.cli.output import err, fail
from b24kit.errors import Error

# The REST client (httpx), the config reader (yaml) and the run lock are imported by the
# functions that use them: every command module imports this one, and `b24kit --help` or
# `b24kit validate` never reach a portal (tests/test_startup.py checks what they load).
if TYPE_CHECKING:
    from b24kit.client.errors import PortalError
    from b24kit.connect import Connection

T = TypeVar("T")

# Exit codes: one table for the whole tool (README "Exit codes"; conventions.md)


@dataclass
class GlobalOptions:
    """Set by the root command (-v/-q/--debug, accepted anywhere on the line)."""

    verbose: int = 0
    quiet: bool = False
    debug: bool = False


OPTIONS = GlobalOptions()


class Format(StrEnum):
    text = "text"
    json = "json"


class ListFormat(StrEnum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


class TableFormat(StrEnum):
    text = "text"
    csv = "csv"
    json = "json"


class DocFormat(StrEnum):
    yaml = "yaml"
    json = "json"


PortalOption = Annotated[
    str | None,
    typer.Option(
        "--portal",
        "-p",
        metavar="URL|PROFILE|sandbox",
        help="The portal: a webhook URL, a profile name, or 'sandbox' (the local sandbox "
        "portal in ./.b24kit/). Default: $B24_WEBHOOK_URL, $B24_PORTAL, the default profile "
        "in ~/.config/b24kit/config.yaml; with none of these the command stops (exit 2).",
        show_default=False,
    ),
]
PlanOption = Annotated[
    str | None,
    typer.Option(
        "--plan",
        metavar="standard|enterprise",
        help="The portal's plan, for its rate limits (default: the profile's, else standard).",
        show_default=False,
    ),
]
FormatOption = Annotated[
    Format, typer.Option("--format", "-f", metavar="text|json", help="Output format.")
]
ListFormatOption = Annotated[
    ListFormat,
    typer.Option("--format", "-f", metavar="text|json|jsonl", help="Output format."),
]
TableFormatOption = Annotated[
    TableFormat,
    typer.Option("--format", "-f", metavar="text|csv|json", help="Output format."),
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", metavar="", help="Do not ask before writing (cron, CI)."),
]


def writable(path: Path) -> None:
    """Refuse (exit 2) a file that cannot be written: its folder missing or not writable,
    or a folder by that name. Checked before the work, whose result it would hold."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise fail(f"{path}: is a folder; name a file")
    if not folder.is_dir():
        raise fail(f"{path}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise fail(f"{path}: cannot be written here (permission)")


def out_option(help_text: str) -> object:
    return typer.Option("--out", "--output", "-o", metavar="FILE", help=help_text)


BlueprintArgument = Annotated[
    Path | None,
    typer.Argument(metavar="BLUEPRINT", help="Blueprint YAML file.", show_default=False),
]
BlueprintAlias = Annotated[
    Path | None,
    typer.Option("--blueprint", "-b", hidden=True, help="The blueprint (same as the argument)."),
]


def blueprint_path(argument: Path | None, alias: Path | None) -> Path:
    """The blueprint, given as the first argument (or the older -b/--blueprint)."""
    if argument is not None and alias is not None and argument != alias:
        raise fail("give the blueprint once: as the argument or with -b, not both")
    path = argument or alias
    if path is None:
        raise fail(
            "missing the blueprint: give the blueprint file first, e.g. blueprints/company.yaml"
        )
    return path


def check_names(kind: str, given: Sequence[str] | None, known: Sequence[str]) -> None:
    """Every name a user gives is checked; an unknown one is a usage error naming the
    choices."""
    for name in given or []:
        if name not in known:
            choices = ", ".join(known) or "none"
            raise fail(f"unknown {kind} {name!r}", f"known: {choices}")


def setup_logging() -> None:
    verbose = OPTIONS.verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


def note(message: str) -> None:
    """A line for the human on stderr (not with -q)."""
    if not OPTIONS.quiet:
        err.print(message, highlight=False, markup=False)


def _loopback(url: str) -> bool:
    """A portal on this machine (the sandbox served on loopback): its token is a rehearsal's."""
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host in ("127.0.0.1", "localhost", "[::1]", "::1")


def open_portal(portal: str | None, plan: str | None, *, writes: bool = False) -> Connection:
    """Connect; an unusable choice is a usage error. A command that writes names its target
    when it starts (and again in its last line)."""
    from b24kit.client import ConfigError, redact
    from b24kit.connect import connect

    try:
        conn = connect(portal, plan=plan)
    except (ConfigError, ValueError) as exc:
        raise fail(redact(str(exc))) from None
    if portal and "://" in portal and not _loopback(portal):
        err.print(
            "[yellow]warning:[/] a webhook URL on the command line can be read by other users "
            "of this machine (ps, shell history); set B24_WEBHOOK_URL or use a profile",
            highlight=False,
        )
    for warning in conn.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if not OPTIONS.quiet:
        conn.client.on_retry = lambda text: err.print(
            f"[yellow]{escape(redact(text))}[/]", highlight=False
        )
    if writes:
        note(f"Target: {conn.label}")
    elif conn.is_sandbox:
        note(f"Using the {conn.label}.")
    return conn


LockWaitOption = Annotated[
    float,
    typer.Option(
        "--lock-wait",
        metavar="SECONDS",
        min=0,
        help="How long to wait for another b24kit run writing to the same portal "
        "(0: do not wait); then exit 3 naming it.",
    ),
]
LOCK_WAIT = 60.0  # as b24kit.locks.WAIT (a test checks), which is not imported for --help


def locked(
    job: str, wait: float, work: Callable[[Connection], Awaitable[T]]
) -> Callable[[Connection], Awaitable[T]]:
    """``work`` under the portal's run lock (b24kit.locks): taken before anything is
    read for planning, so that two runs never plan the same create."""

    from b24kit.locks import run_lock

    async def run(conn: Connection) -> T:
        async with run_lock(conn.lock_path(), job, wait=wait, on_wait=note):
            return await work(conn)

    return run


def run_portal(
    conn: Connection,
    work: Callable[[Connection], Awaitable[T]],
    *,
    usage_errors: tuple[type[PortalError], ...] = (),
) -> T:
    """Run ``work`` against the portal; portal and network failures exit 3 with one line,
    ``usage_errors`` (the user's mistake, such as a method name in ``call``) exit 2."""

    from b24kit.client import redact

    async def go() -> T:
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return run_cancellable(go)
    except usage_errors as exc:
        raise fail(redact(str(exc)), code=USAGE) from None
    except BlueprintError:
        raise  # its issues are listed by main, each with file:line
    except Error as exc:  # the hierarchy decides: input 2, portal 3
        hint = redact(exc.hint) if exc.hint else None
        raise fail(redact(str(exc)), hint, code=exc.exit_code) from None
