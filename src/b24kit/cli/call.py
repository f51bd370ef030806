"""``b24kit call``: one REST method, for implementers' one-off calls."""

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from b24kit.cli.common import PlanOption, PortalOption, open_portal, run_portal
from b24kit.cli.output import emit_json, fail, row_progress
from b24kit.encoding import _split_key
from b24kit.errors import InputError

if TYPE_CHECKING:  # the REST client is imported when the command runs, not at start-up
    from b24kit.connect import Connection


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``filter.>ID=5``, ``fields[TITLE]=x``, ``select[]=ID`` -> nested params."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{pair!r}: expected key=value")
        if "[" in key:
            path = _split_key(key)
        else:
            path = key.split(".")
        node = params
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if part == "":
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise InputError(f"{pair!r}: {part!r} is both a value and a group")
                node = child
    return params


def call(
    method: Annotated[
        str, typer.Argument(metavar="METHOD", help="REST method, e.g. crm.deal.list")
    ],
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Parameters as key=value; nest with dots or brackets: "
            "filter.>ID=5  fields[TITLE]=Трактор  select[]=ID",
        ),
    ] = None,
    json_params: Annotated[
        str | None,
        typer.Option("--json", metavar="JSON", help="Parameters as a JSON object (merged first)."),
    ] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", metavar="", help="Read every page of a list method (batched).")
    ] = False,
    portal: PortalOption = None,
    plan: PlanOption = None,
) -> None:
    """Call one REST method and print the answer as JSON (result, total, next).

    Reads are retried on server errors; writes are sent once.

    Examples:

      b24kit call crm.deal.list filter.>ID=100 select[]=ID select[]=TITLE

      b24kit call crm.deal.add --json '{"fields": {"TITLE": "Перевозка трактора"}}'

      b24kit call crm.deal.list --all select[]=ID | jq length
    """
    from b24kit.client import read_all
    from b24kit.client.core import is_read
    from b24kit.client.errors import MethodNotFound

    try:
        params: dict[str, Any] = json.loads(json_params) if json_params else {}
        if not isinstance(params, dict):
            raise InputError("--json must be a JSON object")
        extra = parse_assignments(assignments or [])
    except ValueError as exc:
        raise fail(str(exc)) from None
    params.update(extra)
    conn = open_portal(portal, plan, writes=not is_read(method))

    async def work(conn: "Connection") -> Any:
        if all_pages:
            with row_progress(f"reading {method}") as progress:
                return await read_all(conn.client, method, params, progress=progress)
        envelope = await conn.client.envelope(method, params)
        out: dict[str, Any] = {"result": envelope.result}
        if envelope.total is not None:
            out["total"] = envelope.total
        if envelope.next is not None:
            out["next"] = envelope.next
        return out

    # a typo in the method name is the user's mistake, not the portal's failure
    emit_json(run_portal(conn, work, usage_errors=(MethodNotFound,)))
