"""Shared output helpers: one console for humans (stdout), one for notes (stderr)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

# no emoji codes: a user's ":x:" (as in /etc/passwd's "root:x:0") is not a picture
console = Console(soft_wrap=True, emoji=False)
# control characters (ANSI escapes, bidi overrides) in names from users or the portal would
# rewrite what a person approves on the terminal: shown as \uXXXX instead
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe(text: object) -> str:
    """Text from users or the portal, ready for rich markup: markup escaped, control and
    bidi characters made visible."""
    plain = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))
    return escape(plain)


err = Console(stderr=True, soft_wrap=True, emoji=False)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def fail(message: str, hint: str | None = None, code: int = 2) -> typer.Exit:
    """One line (two with a hint) on stderr; the message may carry user or portal text."""
    err.print(f"[bold red]error:[/] {safe(message)}", highlight=False)
    if hint:
        err.print(f"  {safe(hint)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def row_progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr (only when it is a terminal) fed by (done, total) calls."""
    if not err.is_terminal:
        yield lambda done, total: None
        return
    # imported here: a command that shows no bar (or --help) does not load rich.progress
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextmanager
def phase(label: str) -> Iterator[None]:
    """A spinner on stderr for a phase that may take seconds (reading the portal), only on
    a terminal: nothing on a pipe or in cron."""
    if not err.is_terminal:
        yield
        return
    with err.status(label, spinner="dots"):
        yield
