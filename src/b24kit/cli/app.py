"""The root of the b24kit command line."""

from __future__ import annotations

from typing import Annotated

import typer

from b24kit import __version__
from b24kit.cli import blueprint, call, links, migrate, portal, sandbox

app = typer.Typer(
    help=(
        "b24kit: deploy, migrate and check Bitrix24 CRM portals.\n\n"
        "Every portal command takes --portal (a webhook URL or a profile); with none it uses "
        "the local sandbox portal in ./.b24kit/ and says so. Exit codes: 0 done, 1 findings "
        "you asked to fail on, 2 bad input (nothing written), 3 portal or network failure."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
PORTAL, DEPLOY, MIGRATE, CHECK = "Portal and sandbox", "Deploy", "Migrate", "Check"
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
app.add_typer(links.report_app, name="report", rich_help_panel=CHECK)

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
