"""Shared output helpers: one console for humans (stdout), one for notes (stderr)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True, soft_wrap=True)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def fail(message: str, hint: str | None = None, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    if hint:
        err.print(f"  {hint}", highlight=False)
    return typer.Exit(code)
