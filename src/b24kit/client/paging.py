"""Read every row of a list method, lazily, exactly once, or raise.

Keyset reading (methods that filter and order by ID): one counted first page, then
``start=-1`` pages chained inside ``batch``, each filtered ``>ID`` the last ID of the page
before it (``$result[p3][49][ID]``): 50 pages, 2,500 rows a request, no COUNT on the
portal after the first. Every page is checked: IDs must rise past the last one seen; a
short page is the end; a page after a failed or foreign one is thrown away and the read
goes on from the last good ID. Rows deleted during the read are simply not returned;
rows added behind the cursor are read when reached.

Offset reading (everything else): ``start`` = 0, 50, …, batched 50 pages a request; a page
of the wrong size means the data moved under us, and the read raises rather than skip.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from b24kit.client.core import B24Client
from b24kit.client.errors import IncompleteRead, OperationTimeLimit

PAGE = 50
# method -> (ID field, rows wrapped in result.items)
KEYSET: dict[str, tuple[str, bool]] = {
    "crm.deal.list": ("ID", False),
    "crm.contact.list": ("ID", False),
    "crm.company.list": ("ID", False),
    "crm.lead.list": ("ID", False),
    "crm.item.list": ("id", True),
    "crm.stagehistory.list": ("ID", True),
}
WRAPPED_OFFSET = {
    "crm.type.list": "types",
    "crm.category.list": "categories",
    "userfieldconfig.list": "fields",
    "crm.item.list": "items",
    "crm.stagehistory.list": "items",
}

Progress = Callable[[int, int | None], None]


def _rows(method: str, result: Any) -> list[dict[str, Any]]:
    key = WRAPPED_OFFSET.get(method.lower())
    if key is not None:
        if isinstance(result, Mapping):
            rows = result.get(key, [])
        elif result == []:
            rows = []  # PHP's empty array
        else:
            raise IncompleteRead(f"{method}: the page has no {key!r} list")
    else:
        rows = result
    if not isinstance(rows, list):
        raise IncompleteRead(f"{method}: a page is not a list of rows")
    return rows


def _keyset_plan(method: str, params: Mapping[str, Any]) -> tuple[str, bool, int] | None:
    spec = KEYSET.get(method.lower())
    if spec is None:
        return None
    id_key, wrapped = spec
    order = params.get("order")
    if order and {str(k).upper(): str(v).upper() for k, v in dict(order).items()} != {"ID": "ASC"}:
        return None
    if params.get("start") not in (None, 0, "0"):
        return None
    flt = params.get("filter") or {}
    start_after = 0
    for key, value in dict(flt).items():
        if str(key).upper() == ">ID":
            start_after = int(value)
        elif str(key).upper() == ">=ID":
            start_after = int(value) - 1
    return id_key, wrapped, start_after


async def iterate(
    client: B24Client,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    progress: Progress | None = None,
    page_retries: int = 3,
    count: bool = True,
) -> AsyncIterator[dict[str, Any]]:
    """Every row once. ``count=False`` (keyset methods): skip the counted first page and
    start with full 2,500-row batches, for callers that do not need a total up front."""
    params = dict(params or {})
    plan = _keyset_plan(method, params)
    if plan is None:
        async for row in _offset(client, method, params, progress):
            yield row
        return
    id_key, wrapped, last_id = plan
    flt = {
        k: v
        for k, v in dict(params.get("filter") or {}).items()
        if str(k).upper() not in (">ID", ">=ID")
    }
    base = {k: v for k, v in params.items() if k not in ("filter", "order", "start")}
    base["order"] = {id_key: "ASC"}
    select = base.get("select")
    if select and "*" not in select and id_key not in select:
        base["select"] = [*list(select), id_key]

    def page_params(after: Any, start: int) -> dict[str, Any]:
        return {**base, "filter": {**flt, f">{id_key}": after}, "start": start}

    seen = 0
    total: int | None = None
    if count:
        first = await client.envelope(method, page_params(last_id, 0))
        rows = _rows(method, first.result)
        total = first.total if isinstance(first.total, int) else None
        for row in rows:
            if int(row[id_key]) <= last_id:
                raise IncompleteRead(f"{method}: the portal ignored the ID filter")
            last_id = int(row[id_key])
            seen += 1
            yield row
        if progress:
            progress(seen, total)
        if len(rows) < PAGE:
            return
        remaining = (total or 0) - seen
    else:
        remaining = PAGE * PAGE  # unknown: ask for a full batch
    failures = 0
    ref_path = "[items]" if wrapped else ""

    def commands(after_id: int, pages: int) -> dict[str, tuple[str, dict[str, Any]]]:
        cmds: dict[str, tuple[str, dict[str, Any]]] = {}
        for i in range(pages):
            after: Any = (
                after_id if i == 0 else (f"$result[p{i - 1}]{ref_path}[{PAGE - 1}][{id_key}]")
            )
            cmds[f"p{i}"] = (method, page_params(after, -1))
        return cmds

    def batch_size(remaining: int) -> int:
        return min(PAGE, max(1, math.ceil(remaining / PAGE)))

    pages = batch_size(remaining)
    pending = asyncio.ensure_future(client.batch(commands(last_id, pages), safe=True))
    try:
        while True:
            batch = await pending
            broke = finished = False
            good: list[list[dict[str, Any]]] = []
            for i in range(pages):
                name = f"p{i}"
                if isinstance(batch.error.get(name), OperationTimeLimit):
                    client.tracker.blocked(method)  # wait for the budget, then go on
                    broke = True
                    break
                if name in batch.error or name not in batch.result:
                    failures += 1
                    if failures > page_retries:
                        err = batch.error.get(name)
                        raise IncompleteRead(f"{method}: page after ID {last_id} failed: {err}")
                    broke = True
                    break
                page = _rows(method, batch.result[name])
                ids = [int(r[id_key]) for r in page]
                if any(b <= a for a, b in zip([last_id, *ids], ids, strict=False)):
                    failures += 1  # a page built from a broken reference: discard, resume
                    if failures > page_retries:
                        raise IncompleteRead(f"{method}: pages after ID {last_id} do not advance")
                    broke = True
                    break
                failures = 0
                good.append(page)
                remaining -= len(page)
                if page:
                    last_id = ids[-1]
                if len(page) < PAGE:
                    finished = True
                    break
            if not finished:
                if not broke and remaining <= 0:
                    remaining = 0  # counted rows all read, last page full: check for more
                if not count and not broke:
                    remaining = PAGE * PAGE  # still no total: the next batch is a full one
                pages = batch_size(remaining)
                # ask for the next pages now, and hand out these rows while it travels
                pending = asyncio.ensure_future(client.batch(commands(last_id, pages), safe=True))
            for page in good:
                for row in page:
                    yield row
                seen += len(page)
                if progress:
                    progress(seen, total)
            if finished:
                return
    finally:
        if not pending.done():
            pending.cancel()


async def _offset(
    client: B24Client, method: str, params: dict[str, Any], progress: Progress | None
) -> AsyncIterator[dict[str, Any]]:
    first = await client.envelope(method, {**params, "start": 0})
    rows = _rows(method, first.result)
    total = first.total if isinstance(first.total, int) else None
    for row in rows:
        yield row
    if progress:
        progress(len(rows), total)
    if first.next is None:
        return
    if total is None:  # more pages, and no count to check them against
        raise IncompleteRead(
            f"{method}: the portal says there is more (next={first.next}) "
            "but not how much (no total)"
        )
    starts = list(range(PAGE, total, PAGE))
    seen = len(rows)
    for chunk in range(0, len(starts), PAGE):
        group = starts[chunk : chunk + PAGE]
        batch = await client.batch(
            {f"s{start}": (method, {**params, "start": start}) for start in group}, safe=True
        )
        for start in group:
            name = f"s{start}"
            if name in batch.error or name not in batch.result:
                raise IncompleteRead(
                    f"{method}: page at start={start} failed: {batch.error.get(name)}"
                )
            page = _rows(method, batch.result[name])
            expected = min(PAGE, total - start)
            if len(page) != expected or batch.total.get(name, total) != total:
                raise IncompleteRead(
                    f"{method}: page at start={start} had {len(page)} rows, expected {expected}: "
                    "the data changed during the read"
                )
            seen += len(page)
            for row in page:
                yield row
            if progress:
                progress(seen, total)


async def read_all(
    client: B24Client,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    return [row async for row in iterate(client, method, params, progress=progress)]
