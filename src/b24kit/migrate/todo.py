"""What a drafted mapping leaves for a person to decide (issue 10, item 6).

``migrate init`` writes ``TODO`` where it could not decide: a user it found no portal user
for (``users: {Неизвестный: TODO}``), the sheet words of a value map it could not match
(``values: {NEW: [новая], TODO: [считаем, в работе]}``), a value it has no guess for
(``"TODO: ..."``). Such a mapping is read as YAML and searched for them before its types
are checked, so every one is listed at once, each at its file:line, instead of the first
type error (``TODO`` is no user id) or a stage named TODO. A ``# TODO`` comment is a guess
to check; only values and keys stop a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from b24kit.blueprint.document import BlueprintError, BlueprintIssue, Document, PathKey

TODO = "TODO"


class TodosLeft(BlueprintError):
    """A mapping with TODOs a person has still to decide: one issue each."""


def is_todo(value: Any) -> bool:
    return isinstance(value, str) and (
        value.strip() == TODO or value.startswith(f"{TODO}:") or value.startswith(f"{TODO} ")
    )


def _found(data: Any, path: PathKey) -> Iterator[tuple[PathKey, Any, bool]]:
    """(path, value, whether the key is the TODO) of every TODO in ``data``."""
    if isinstance(data, dict):
        for key, value in data.items():
            if is_todo(key):
                yield (*path, key), value, True
            elif is_todo(value):
                yield (*path, key), value, False
            else:
                yield from _found(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if is_todo(value):
                yield (*path, index), value, False
            else:
                yield from _found(value, (*path, index))


def _words(value: Any) -> str:
    words = value if isinstance(value, list) else [value]
    return ", ".join(repr(str(w)) for w in words)


def _message(path: PathKey, value: Any, key: bool) -> str:
    where = ".".join(str(p) for p in path)
    if key and len(path) >= 2 and path[-2] == "values":
        return (
            f"{where}: the sheet's {_words(value)} still to map: put each word under a code "
            "(a word left out rejects its rows)"
        )
    if key:
        return f"{where}: a TODO key still to replace"
    if len(path) == 2 and path[0] == "users":
        return (
            f"{where}: TODO: put the portal user id of {str(path[1])!r} here (or remove the "
            "line: rows naming them are then rejected)"
        )
    return f"{where}: {value.strip()}" if str(value).strip() != TODO else f"{where}: still TODO"


def todo_issues(doc: Document) -> list[BlueprintIssue]:
    """Every TODO the mapping still has, in file order, each at its file:line."""
    issues = [
        BlueprintIssue(doc.mark(path), _message(path, value, key))
        for path, value, key in _found(doc.data, ())
    ]
    return sorted(issues, key=lambda i: (i.mark.line, i.mark.column))
