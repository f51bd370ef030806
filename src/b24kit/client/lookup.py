"""Finding out what an unanswered command did: the executor's lookups.

A create whose answer was lost carries a ``LookupKey``: a list call that finds what it
made. Keys of one shape that differ only in one filter field (``merge``: ORIGIN_ID of
deals made by one ORIGINATOR_ID, a deal's ID for "is it gone?") are asked together, in one
list command filtering that field by all their values at once (``@FIELD``, IN: the filter
prefixes of crm-deal-list.md line 60, crm-item-list.md line 60), so a failed batch of 50
creates costs one lookup command, not 50. Each key then reads its own rows of the answer
(those whose ``column`` holds its value).

An answer that may not hold every row (the list has a next page) settles only the keys
whose rows it shows; the others are asked again, each on its own, never taken as "not
made" (that would send a create twice).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

ROWS_PER_ANSWER = 50  # a list answers 50 rows a page (crm-deal-list.md, `next`)


@dataclass(frozen=True)
class LookupKey:
    """A read that finds out what an unanswered command did: ``extract`` turns its
    result into what the create would have returned (None: not made), or, for a delete,
    into True when the thing is gone (None: still there, or not known).

    ``merge``: the filter field that tells this key from others of its method and
    filter (keys differing only in it are asked together, ``@merge``: IN); ``column``:
    the row field that carries it back (default ``merge``); ``rows``: where the rows are
    in the list's result ("" when the result is the list itself, "items" for
    crm.item.list)."""

    method: str
    params: dict[str, Any]
    extract: Callable[[Any, dict[str, Any]], Any | None]  # (result, params as sent)
    label: str
    merge: str = ""
    column: str = ""
    rows: str = ""


class Unsure:
    """The answer cannot tell (a page of it is missing, or it is not a list)."""


UNSURE = Unsure()


@dataclass
class Member:
    name: str  # the command whose outcome is asked
    key: LookupKey
    params: dict[str, Any]  # the key's own parameters, references resolved
    gone: bool = False  # a delete's probe (extract: True when gone), not a create's key


@dataclass
class Asked:
    """One lookup command: the call sent and the commands it answers for."""

    method: str
    params: dict[str, Any]
    members: list[Member]
    merged: bool = False

    def answers(self, result: Any, complete: bool) -> dict[str, Any]:
        """What each member's key makes of its share of the answer: a value (made, or
        gone), None (not made, still there) or UNSURE. ``complete``: the answer holds
        every row the filter matches (no next page); an incomplete one proves only what
        a row shows (made, still there), never what a missing row would (not made, gone)."""
        out: dict[str, Any] = {}
        for m in self.members:
            share = _share(m, result) if self.merged else result
            if share is UNSURE:
                out[m.name] = UNSURE
                continue
            got = m.key.extract(share, m.params)
            from_absence = got is not None if m.gone else got is None
            out[m.name] = UNSURE if from_absence and not complete else got
        return out


def _rows(key: LookupKey, result: Any) -> list[Any] | None:
    rows = result.get(key.rows) if key.rows and isinstance(result, Mapping) else result
    if isinstance(rows, Mapping):  # PHP's json_encode of a 0..n-1 array can come as a map
        rows = list(rows.values())
    return rows if isinstance(rows, list) else None


def _share(m: Member, result: Any) -> Any:
    """The member's rows of a merged answer, shaped as its own lookup's answer."""
    rows = _rows(m.key, result)
    if rows is None:
        return UNSURE
    column = m.key.column or m.key.merge
    wanted = str(m.params["filter"][m.key.merge])
    mine = [r for r in rows if isinstance(r, Mapping) and str(r.get(column)) == wanted]
    return {m.key.rows: mine} if m.key.rows else mine


def _mergeable(key: LookupKey, params: dict[str, Any]) -> bool:
    flt = params.get("filter")
    if not key.merge or not isinstance(flt, Mapping) or key.merge not in flt:
        return False
    value = flt[key.merge]
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _shape(key: LookupKey, params: dict[str, Any]) -> str:
    rest = dict(params)
    rest["filter"] = {k: v for k, v in params["filter"].items() if k != key.merge}
    return json.dumps(
        [key.method, key.merge, key.column, key.rows, rest], sort_keys=True, default=str
    )


def _merged(members: list[Member]) -> Asked:
    key, first = members[0].key, members[0].params
    params = dict(first)
    flt = {k: v for k, v in first["filter"].items() if k != key.merge}
    flt["@" + key.merge] = [m.params["filter"][key.merge] for m in members]
    params["filter"] = flt
    select = params.get("select")
    column = key.column or key.merge
    if isinstance(select, list) and "*" not in select and column not in select:
        params["select"] = [*select, column]
    return Asked(key.method, params, members, merged=True)


def plan(members: list[Member], alone: Collection[str] = ()) -> list[Asked]:
    """The lookup commands for ``members``, in their order: keys of one shape merged, at
    most ROWS_PER_ANSWER to a command; members named in ``alone`` asked on their own."""
    out: list[Asked] = []
    groups: dict[str, list[Member]] = {}
    for m in members:
        if m.name in alone or not _mergeable(m.key, m.params):
            out.append(Asked(m.key.method, m.params, [m]))
            continue
        group = groups.setdefault(_shape(m.key, m.params), [])
        group.append(m)
        if len(group) == ROWS_PER_ANSWER:
            out.append(_merged(group))
            groups[_shape(m.key, m.params)] = []
    for group in groups.values():
        if len(group) > 1:
            out.append(_merged(group))
        elif group:
            out.append(Asked(group[0].key.method, group[0].params, group))
    return out
