"""What every portal command shares: the --portal option, the sandbox notice, error
handling with exit codes, and running the async core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from b24kit.cli.output import err, fail
from b24kit.client import B24Error, ConfigError, Connection, connect, redact
from b24kit.client.errors import PortalError

T = TypeVar("T")

PortalOption = Annotated[
    str | None,
    typer.Option(
        "--portal",
        "-p",
        help="Webhook URL or profile name. Default: $B24_WEBHOOK_URL, $B24_PORTAL, the default "
        "profile in ~/.config/b24kit/config.yaml, else the local sandbox portal.",
        show_default=False,
    ),
]
PlanOption = Annotated[
    str | None,
    typer.Option("--plan", help="The portal's plan for rate limits: standard or enterprise."),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="Output: text or json.")]
VerboseOption = Annotated[int, typer.Option("-v", count=True, help="More log detail (-vv).")]


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def open_portal(portal: str | None, plan: str | None) -> Connection:
    try:
        conn = connect(portal, plan=plan)
    except (ConfigError, ValueError) as exc:
        raise fail(redact(str(exc))) from None
    for warning in conn.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if conn.is_sandbox:
        err.print(f"No portal configured: using the {conn.label}.", highlight=False)
    return conn


def run_portal(conn: Connection, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` against the portal; portal and network failures exit 3 with one line."""

    async def go() -> T:
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except PortalError as exc:
        raise fail(redact(str(exc)), code=3) from None
    except B24Error as exc:
        raise fail(redact(str(exc)), code=3) from None


