"""One reporter: a command builds an Output (the result as data, and how a person reads
it) and ``show`` renders it in the format asked for: text on the terminal, json, jsonl,
csv, xlsx. Commands never branch on --format themselves.

Rows are written one at a time (a report of 100,000 projects is never one string in
memory). Text cells of csv and xlsx that a spreadsheet would run as a formula are written
inert (migrate/run.py's ``inert``: a leading apostrophe)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import typer


@dataclass
class Output:
    data: Any = None  # json: the whole result (default: the rows)
    rows: Sequence[dict[str, Any]] = field(default_factory=list)  # jsonl, csv, xlsx: a record each
    text: Callable[[], None] = lambda: None  # text: what a person reads on the terminal
    columns: list[str] | None = None  # csv, xlsx: the header (default: the first row's keys)
    plain: Callable[[], str] | None = None  # text written to a file (default: one line a row)
    empty: str | None = None  # why there are no rows: said on stderr beside json/jsonl/csv
    sheet: str = "report"  # xlsx: the worksheet's name


def _columns(output: Output) -> list[str]:
    if output.columns:
        return output.columns
    first = next(iter(output.rows), None)
    return list(first) if first else []


def _json_rows(rows: Iterable[dict[str, Any]], handle: IO[str]) -> None:
    """A JSON array written row by row (``json.dumps(rows, indent=2)``'s layout)."""
    handle.write("[")
    sep = "\n"
    for row in rows:
        text = json.dumps(row, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        handle.write(f"{sep}  {text}")
        sep = ",\n"
    handle.write("\n]\n" if sep != "\n" else "]\n")


def write(output: Output, format: str, handle: IO[str]) -> None:
    """The output as a file holds it, written to ``handle``."""
    if format == "json":
        if output.data is not None:
            handle.write(json.dumps(output.data, ensure_ascii=False, indent=2) + "\n")
        else:
            _json_rows(output.rows, handle)
    elif format == "jsonl":
        for r in output.rows:
            handle.write(json.dumps(r, ensure_ascii=False) + "\n")
    elif format == "csv":
        from b24kit.migrate.run import inert

        writer = csv.DictWriter(handle, _columns(output), extrasaction="ignore")
        writer.writeheader()
        for r in output.rows:
            writer.writerow({k: inert(v) for k, v in r.items()})
    elif output.plain is not None:
        handle.write(output.plain())
    else:
        for r in output.rows:
            handle.write(" ".join(str(v) for v in r.values()) + "\n")


def serialise(output: Output, format: str) -> str:
    """The output as a file holds it."""
    buffer = io.StringIO()
    write(output, format, buffer)
    return buffer.getvalue()


def write_xlsx(output: Output, to: Path) -> None:
    """One worksheet: the header, then a row per record (openpyxl's write-only mode keeps
    memory flat however many rows)."""
    from openpyxl import Workbook

    from b24kit.migrate.run import inert

    book = Workbook(write_only=True)
    sheet = book.create_sheet(output.sheet[:31] or "report")
    columns = _columns(output)
    sheet.append(columns)
    for r in output.rows:
        sheet.append([inert(r.get(c)) for c in columns])
    book.save(to)


def show(output: Output, format: str, to: Path | None = None) -> None:
    """Render on stdout, or into the file ``to`` (xlsx: a file only)."""
    if output.empty and not output.rows and format != "text":
        typer.echo(output.empty, err=True)
    if format == "xlsx":
        if to is None:
            from b24kit.cli.output import fail

            raise fail("xlsx is a file: give it with -o FILE (e.g. -o report.xlsx)")
        write_xlsx(output, to)
    elif to is not None:
        with to.open("w", encoding="utf-8", newline="") as handle:
            write(output, format, handle)
    elif format == "text":
        output.text()
    else:
        write(output, format, sys.stdout)
        sys.stdout.flush()


def narrate(format: str, text: Callable[[], None]) -> None:
    """What a person reads along the way (the plan before asking, a summary before a
    migration): shown with text output only, so json stays one document."""
    if format == "text":
        text()
