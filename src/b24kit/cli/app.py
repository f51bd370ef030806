"""The root of the b24kit command line."""

from __future__ import annotations

from typing import Annotated

import typer

from b24kit import __version__
from b24kit.cli import blueprint, call, links, migrate, portal, sandbox

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
app.command(name="validate")(blueprint.validate)
app.command(name="plan")(blueprint.plan)
app.command(name="apply")(blueprint.apply)
app.command(name="export")(blueprint.export)
app.command(name="graph")(blueprint.graph)
app.add_typer(blueprint.schema_app, name="blueprint")
app.add_typer(migrate.app, name="migrate")
app.command(name="audit")(links.audit)
app.command(name="sync")(links.sync)
app.add_typer(links.report_app, name="report")


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
