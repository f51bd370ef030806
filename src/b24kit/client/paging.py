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
    reader = _KeysetReader(client, method, params, plan, progress, page_retries, count)
    async for row in reader.rows():
        yield row


class _KeysetReader:
    """Pages by ID windows: each batch asks for up to 50 pages, each page's filter naming
    the last ID of the page before it (``$result[...]``); the next batch is on its way
    while this one's rows are handed out. Every page is checked to advance."""

    def __init__(
        self,
        client: B24Client,
        method: str,
        params: dict[str, Any],
        plan: tuple[str, bool, int],
        progress: Progress | None,
        page_retries: int,
        count: bool,
    ) -> None:
        self.client, self.method, self.progress = client, method, progress
        self.page_retries, self.count = page_retries, count
        self.id_key, wrapped, self.last_id = plan
        self.ref_path = "[items]" if wrapped else ""
        self.filter = {
            k: v
            for k, v in dict(params.get("filter") or {}).items()
            if str(k).upper() not in (">ID", ">=ID")
        }
        base = {k: v for k, v in params.items() if k not in ("filter", "order", "start")}
        base["order"] = {self.id_key: "ASC"}
        select = base.get("select")
        if select and "*" not in select and self.id_key not in select:
            base["select"] = [*list(select), self.id_key]
        self.base = base
        self.seen = 0
        self.total: int | None = None
        self.remaining = PAGE * PAGE  # unknown: ask for a full batch
        self.failures = 0
        self.only_page = False

    def page_params(self, after: Any, start: int) -> dict[str, Any]:
        return {**self.base, "filter": {**self.filter, f">{self.id_key}": after}, "start": start}

    def commands(self, pages: int) -> dict[str, tuple[str, dict[str, Any]]]:
        cmds: dict[str, tuple[str, dict[str, Any]]] = {}
        for i in range(pages):
            after: Any = (
                self.last_id
                if i == 0
                else (f"$result[p{i - 1}]{self.ref_path}[{PAGE - 1}][{self.id_key}]")
            )
            cmds[f"p{i}"] = (self.method, self.page_params(after, -1))
        return cmds

    def batch_size(self) -> int:
        return min(PAGE, max(1, math.ceil(self.remaining / PAGE)))

    def report(self) -> None:
        if self.progress:
            self.progress(self.seen, self.total)

    async def counted_first_page(self) -> AsyncIterator[dict[str, Any]]:
        """The first page, counted: its total sizes the batches. Sets ``only_page`` when
        there is no other."""
        first = await self.client.envelope(self.method, self.page_params(self.last_id, 0))
        rows = _rows(self.method, first.result)
        self.total = first.total if isinstance(first.total, int) else None
        for row in rows:
            if int(row[self.id_key]) <= self.last_id:
                raise IncompleteRead(f"{self.method}: the portal ignored the ID filter")
            self.last_id = int(row[self.id_key])
            self.seen += 1
            yield row
        self.report()
        self.only_page = len(rows) < PAGE
        self.remaining = (self.total or 0) - self.seen

    def take(self, batch: Any, pages: int) -> tuple[list[list[dict[str, Any]]], bool, bool]:
        """The good pages of a batch, in order, up to the first that failed or did not
        advance (``broke``: read again from there) or the last one (``finished``)."""
        good: list[list[dict[str, Any]]] = []
        for i in range(pages):
            name = f"p{i}"
            if isinstance(batch.error.get(name), OperationTimeLimit):
                self.client.tracker.blocked(self.method)  # wait for the budget, then go on
                return good, True, False
            if name in batch.error or name not in batch.result:
                self.failed(f"page after ID {self.last_id} failed: {batch.error.get(name)}")
                return good, True, False
            page = _rows(self.method, batch.result[name])
            ids = [int(r[self.id_key]) for r in page]
            if any(b <= a for a, b in zip([self.last_id, *ids], ids, strict=False)):
                # a page built from a broken reference: discard, resume
                self.failed(f"pages after ID {self.last_id} do not advance")
                return good, True, False
            self.failures = 0
            good.append(page)
            self.remaining -= len(page)
            if page:
                self.last_id = ids[-1]
            if len(page) < PAGE:
                return good, False, True
        return good, False, False

    def failed(self, why: str) -> None:
        self.failures += 1
        if self.failures > self.page_retries:
            raise IncompleteRead(f"{self.method}: {why}")

    async def rows(self) -> AsyncIterator[dict[str, Any]]:
        if self.count:
            async for row in self.counted_first_page():
                yield row
            if self.only_page:
                return
        pages = self.batch_size()
        pending = asyncio.ensure_future(self.client.batch(self.commands(pages), safe=True))
        try:
            while True:
                good, broke, finished = self.take(await pending, pages)
                if not finished:
                    if not broke and self.remaining <= 0:
                        self.remaining = 0  # counted rows all read, last page full: check
                    if not self.count and not broke:
                        self.remaining = PAGE * PAGE  # still no total: a full batch next
                    pages = self.batch_size()
                    # ask for the next pages now, and hand out these rows while it travels
                    pending = asyncio.ensure_future(
                        self.client.batch(self.commands(pages), safe=True)
                    )
                for page in good:
                    for row in page:
                        yield row
                    self.seen += len(page)
                    self.report()
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
