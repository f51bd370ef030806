"""YAML text with comments, for the drafts people edit (``migrate init``): PyYAML writes
no comments, and a draft's comments carry what a person needs to decide (each sheet
word's count, why a column was taken for what it is).

``dump(data)`` writes a mapping: a ``dict`` as a block, a ``Flow`` dict and every list on
one line, a ``Noted(value, comment)`` with its comment (after the line; above it for a
block). Scalars are written by PyYAML itself, so what ``yaml.safe_load`` reads back is
exactly ``plain(data)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

WIDTH = 1_000_000  # never fold a line: a draft's lines are edited one by one


class Flow(dict[str, Any]):
    """A mapping written on one line: ``{column: Цена, parse: money}``."""


@dataclass(frozen=True)
class Noted:
    value: Any
    comment: str


def scalar(value: Any) -> str:
    """One scalar as YAML writes it in a flow: quoted only where it must be."""
    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=WIDTH)
    return text.strip()[1:-1]


def flow(value: Any) -> str:
    if isinstance(value, Noted):
        value = value.value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def comment_text(text: str) -> str:
    """A comment on one line, whatever the sheet's words hold (no line breaks, no control
    characters)."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", text).strip()


def dump(data: dict[str, Any], indent: int = 0) -> list[str]:
    """The lines of a block mapping, indented by ``indent`` levels."""
    out: list[str] = []
    pad = "  " * indent
    for key, item in data.items():
        value, comment = (item.value, item.comment) if isinstance(item, Noted) else (item, "")
        head = f"{pad}{scalar(key)}:"
        note = comment_text(comment)
        if isinstance(value, dict) and not isinstance(value, Flow) and value:
            if note:
                out.append(f"{pad}# {note}")
            out.append(head)
            out += dump(value, indent + 1)
        else:
            out.append(f"{head} {flow(value)}" + (f"  # {note}" if note else ""))
    return out


def plain(value: Any) -> Any:
    """The data without its comments: what the YAML text reads back as."""
    if isinstance(value, Noted):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
