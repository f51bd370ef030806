"""One reporter: a command builds an Output (the result as data, and how a person reads
it) and ``show`` renders it in the format asked for: text on the terminal, json, jsonl,
csv. Commands never branch on --format themselves."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer


@dataclass
class Output:
    data: Any = None  # json: the whole result (default: the rows)
    rows: list[dict[str, Any]] = field(default_factory=list)  # jsonl and csv: one per record
    text: Callable[[], None] = lambda: None  # text: what a person reads on the terminal
    columns: list[str] | None = None  # csv: the header (default: the first row's keys)
    plain: Callable[[], str] | None = None  # text written to a file (default: one line a row)
    empty: str | None = None  # why there are no rows: said on stderr beside json/jsonl/csv


def serialise(output: Output, format: str) -> str:
    """The output as a file holds it."""
    if format == "json":
        data = output.data if output.data is not None else output.rows
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if format == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in output.rows)
    if format == "csv":
        buffer = io.StringIO()
        columns = output.columns or (list(output.rows[0]) if output.rows else [])
        writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(output.rows)
        return buffer.getvalue()
    if output.plain is not None:
        return output.plain()
    return "".join(" ".join(str(v) for v in r.values()) + "\n" for r in output.rows)


def show(output: Output, format: str, to: Path | None = None) -> None:
    """Render on stdout, or into the file ``to``."""
    if output.empty and not output.rows and format != "text":
        typer.echo(output.empty, err=True)
    if to is not None:
        to.write_text(serialise(output, format), encoding="utf-8")
    elif format == "text":
        output.text()
    else:
        typer.echo(serialise(output, format), nl=False)


def narrate(format: str, text: Callable[[], None]) -> None:
    """What a person reads along the way (the plan before asking, a summary before a
    migration): shown with text output only, so json stays one document."""
    if format == "text":
        text()
