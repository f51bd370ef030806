"""The root of the b24kit command line."""

from __future__ import annotations

from typing import Annotated

import typer

from b24kit import __version__
from b24kit.cli import call, portal, sandbox

app = typer.Typer(
    help=(
        "b24kit: deploy, migrate and check Bitrix24 CRM portals.\n\n"
        "Rehearse everything on the local sandbox portal first (b24kit sandbox --help)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(portal.app, name="portal")
app.command(name="call")(call.call)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"b24kit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """b24kit: deploy, migrate and check Bitrix24 CRM portals."""


def main() -> None:
    app()
