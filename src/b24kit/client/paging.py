"""Read every row of a list method, lazily, exactly once, or raise.

Keyset reading (methods that filter and order by ID) asks the portal to count nothing
(``start=-1`` on every page) and sends no request it can do without:

- The first batch chains 49 pages from the start, each filtered ``>ID`` the last ID of the
  page before it (``$result[c3][49][ID]``), then one page ordered ``ID DESC``: the highest
  ID, where the table ends. A table of fewer than 2,450 rows is read by then. A batch of
  one chain is sent with ``halt``: the page after a short one refers to a 50th row that is
  not there, and nothing after it runs (a small table costs its pages and one refusal,
  not 50 pages of the method's operating time). A filter
  that names its IDs (``@ID``) matches no more rows than it names: when those fit a
  batch, the first batch carries only the pages they fill and a short one, no DESC page.
- The rest is cut into ID slices (``>ID lo``, ``<=ID hi``), each as wide as the density
  read so far says fills a batch's 50 pages; batches for several slices are on their way
  at once (``in_flight`` batches' worth of pages) and rows are handed out in ID order as
  the slices come, with no more than about ``in_flight`` batches of rows held.
- The burst is used: a portal runs a batch's pages one after another, so when the
  client's bucket admits more requests now than full batches the rest of the read
  fills, the pages are spread over those requests (20,000 rows: about 48 batches of 8
  pages, each a seventh of a full batch's time), never fewer than ``SPREAD_FLOOR`` a
  batch. With that much room the first batch is one page and the ``ID DESC`` page,
  enough to plan the rest, instead of 49 chained pages. With the bucket full (the
  sustained rate binds), or the method's budget near (its room smaller than a batch, or a
  page refused by it), every batch is full, and no request is spent beyond the least.
- The last slice has no upper bound and ends with a short page (or a ``DESC`` page in the
  same batch showing nothing past it), so rows added at the end during the read are read.
- Every page is checked: IDs must rise past the slice's last one and stay inside it; a
  short page, or the slice's upper bound reached, ends the slice; a page after a failed
  or foreign one is thrown away and the slice is read again from its last good ID. Rows
  deleted before their page is read are not returned; no row comes twice.
- Paced by the method's operating budget (``OperatingTracker.room``): a batch carries only
  the pages the budget has room for, at the per-page cost the answers show; with no room,
  the reader waits for the oldest minute of spending to leave the window, then sends one
  page to learn what is spent. A page refused with 429 anyway is waited out and read again.

Offset reading (everything else): ``start`` = 0, 50, …, batched 50 pages a request; a page
of the wrong size means the data moved under us, and the read raises rather than skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from b24kit.client.core import B24Client, BatchResult
from b24kit.client.errors import IncompleteRead, OperationTimeLimit, QueryLimitExceeded

PAGE = 50  # rows a page
SLOTS = 50  # commands a batch
# Batches on their way at once, by default. A portal runs a batch's 50 pages one after
# another (the docs' 0.0685 s a page: 3.4 s a batch), while the rate limit lets a request
# go every 0.5 s: keeping pace takes 7 batches on their way, 16 keeps it up to 8 s a
# batch. Memory holds at most about this many batches of rows (2,500 each).
IN_FLIGHT = 16
MAX_BATCHES = 50  # batches on their way at most: the standard burst
SPREAD_FLOOR = 5  # pages a batch carries at the least when the burst spreads them
FIRST_LOOK = 10  # free requests in the bucket from which the first batch is one page
PAGE_RETRIES = 3  # a page read again at most this often before the read gives up
COST_MARGIN = 1.1  # plan each page's operating time a tenth above what answers showed
RECENT = 3  # pages whose density sizes what is left of a slice
TAIL_MARGIN = 1.1  # the table's end is read with a tenth more pages than the density says
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
Row = dict[str, Any]
Commands = dict[str, tuple[str, dict[str, Any]]]


def _rows(method: str, result: Any) -> list[Row]:
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


def _rows_at_most(flt: Mapping[str, Any]) -> int | None:
    """How many rows a filter that names its IDs (``@ID``, a list) can match at most: as
    many as it names. None: no such bound (an empty list filters nothing: the portal
    ignores it)."""
    for key, value in flt.items():
        if str(key).upper() == "@ID" and isinstance(value, (list, tuple)) and value:
            return len(value)
    return None


def _id_bounds_removed(flt: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The filter without its bounds on ID (the reader sets them per slice), and the
    highest ID the caller's ``<=ID``/``<ID`` lets in (None: no bound)."""
    rest: dict[str, Any] = {}
    highest: int | None = None
    for key, value in flt.items():
        name = str(key).upper()
        if name in (">ID", ">=ID"):
            continue
        if name in ("<=ID", "<ID"):
            bound = int(value) - (1 if name == "<ID" else 0)
            highest = bound if highest is None else min(highest, bound)
            continue
        rest[key] = value
    return rest, highest


async def iterate(
    client: B24Client,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    progress: Progress | None = None,
    page_retries: int = PAGE_RETRIES,
    in_flight: int = IN_FLIGHT,
    spread: bool = True,
) -> AsyncIterator[Row]:
    """Every row once. Keyset methods: in ID order, ``in_flight`` batches on their way at
    once; ``progress`` gets (rows so far, an estimate of the total or None). ``spread``:
    use the bucket's free burst for shorter batches (module doc); without it every batch
    is full, as they are anyway once the bucket is."""
    # closed with this generator, not whenever the garbage collector gets to it: a keyset
    # read's batches on the way are cancelled and the budget they held back given back
    async with contextlib.aclosing(
        _pages(client, method, params, progress, page_retries, in_flight, spread)
    ) as pages:
        async for page in pages:
            for row in page:
                yield row


async def _pages(
    client: B24Client,
    method: str,
    params: Mapping[str, Any] | None,
    progress: Progress | None,
    page_retries: int,
    in_flight: int,
    spread: bool = True,
) -> AsyncGenerator[list[Row], None]:
    """iterate's rows a page at a time (a list the caller may keep: not used again here).
    Handed out by the page, not the row: a step of an async generator costs a microsecond
    or two, and a read of 12,345 rows went through three of them per row."""
    params = dict(params or {})
    plan = _keyset_plan(method, params)
    if plan is None:
        async for page in _offset(client, method, params, progress):
            yield page
        return
    reader = _KeysetReader(client, method, params, plan, progress, page_retries, in_flight, spread)
    async with contextlib.aclosing(reader.pages()) as pages:
        async for page in pages:
            yield page


@dataclass(eq=False)
class _Slice:
    """IDs in (lo, hi]; ``lo`` moves up as pages are read. The last slice (``tail``) has
    no bound of the reader's own: only the caller's (``hi``), or none."""

    lo: int
    hi: int | None
    tail: bool = False
    pages: deque[list[Row]] = field(default_factory=deque)  # read, not handed out yet
    done: bool = False
    busy: bool = False  # pages of it are on their way
    failures: int = 0
    density: float | None = None  # rows per ID seen in it (None: the read's own)

    def at_end(self) -> bool:
        return self.hi is not None and self.lo >= self.hi


@dataclass
class _Chain:
    slice: _Slice
    names: list[str]  # its pages' commands, in order
    start: int  # slice.lo when sent


@dataclass
class _Sent:
    chains: list[_Chain]
    order: list[str]  # every command, in the order the portal runs them
    top_after: int | None  # the DESC page's >ID, when the batch has one
    reserved: float  # operating seconds reserved with the tracker
    spread: bool = False  # cut short to use the burst: refused by the bucket, sent again


class _KeysetReader:
    """Reads slices of the ID range by chained pages, several batches at a time, and hands
    the rows out in ID order."""

    def __init__(
        self,
        client: B24Client,
        method: str,
        params: dict[str, Any],
        plan: tuple[str, bool, int],
        progress: Progress | None,
        page_retries: int,
        in_flight: int,
        spread: bool = True,
    ) -> None:
        self.client, self.method, self.progress = client, method, progress
        self.spreads = spread  # use the bucket's burst (module doc) ...
        self.budget_binds = False  # ... until the method's budget refuses a page
        self.tracker = client.tracker
        self.page_retries, self.in_flight = page_retries, max(1, in_flight)
        self.id_key, wrapped, start_after = plan
        self.ref_path = "[items]" if wrapped else ""
        self.filter, highest = _id_bounds_removed(dict(params.get("filter") or {}))
        base = {k: v for k, v in params.items() if k not in ("filter", "order", "start")}
        base["order"] = {self.id_key: "ASC"}
        select = base.get("select")
        if select and "*" not in select and self.id_key not in select:
            base["select"] = [*list(select), self.id_key]
        self.base = base
        self.caller_hi = highest  # the caller's own <=ID, if any
        self.at_most = _rows_at_most(self.filter)  # rows the filter can match, if it says
        self.slices: list[_Slice] = [_Slice(start_after, highest, tail=True)]
        self.top: int | None = None  # the highest ID the last DESC page saw
        self.top_density = 1.0  # rows per ID in that page
        self.rows_read = 0  # rows and ID span read, for the density
        self.span_read = 0
        self.cost: float | None = None  # operating seconds a page, from the answers
        self.costs: deque[float] = deque(maxlen=RECENT)  # per batch, the last few
        self.probe = False  # no room in the budget: after its reset, one page to look
        self.held = 0  # rows read and not handed out
        self.seen = 0
        self.last = start_after  # the last ID handed out

    # ------------------------------------------------------------ commands
    def page_params(self, after: Any, hi: int | None) -> dict[str, Any]:
        flt = {**self.filter, f">{self.id_key}": after}
        if hi is not None:
            flt[f"<={self.id_key}"] = hi
        return {**self.base, "filter": flt, "start": -1}

    def top_params(self, after: int, hi: int | None) -> dict[str, Any]:
        params = self.page_params(after, hi)
        params["order"] = {self.id_key: "DESC"}
        params["select"] = [self.id_key]
        return params

    def chain(self, piece: _Slice, pages: int, cmds: Commands) -> _Chain:
        names: list[str] = []
        for i in range(pages):
            name = f"c{len(cmds)}"
            after: Any = (
                piece.lo
                if i == 0
                else f"$result[{names[-1]}]{self.ref_path}[{PAGE - 1}][{self.id_key}]"
            )
            cmds[name] = (self.method, self.page_params(after, piece.hi))
            names.append(name)
        piece.busy = True
        return _Chain(piece, names, piece.lo)

    # ------------------------------------------------------------ planning
    def density(self, piece: _Slice, *, low: bool = False) -> float:
        """Rows per ID in a slice: as its last pages showed, else as in what was read so
        far (1.0 before anything was). ``low``: for the tail, no more than at the top of
        the table either. How many pages a chain gets is sized high (a page too many is
        one short page); how wide a slice is cut, low (too wide costs it a second round,
        too narrow a batch of short pages)."""
        seen = piece.density if piece.density is not None else self.read_density()
        if low and piece.tail:
            seen = min(seen, self.top_density)
        return min(1.0, max(1e-3, seen))

    def read_density(self) -> float:
        return self.rows_read / self.span_read if self.span_read > 0 else 1.0

    def top_unknown(self) -> bool:
        tail = self.slices[-1]
        return self.top is None or tail.lo >= self.top

    def end_of(self, piece: _Slice) -> int | None:
        """Where a slice's rows end: its bound, or for the tail the highest ID known."""
        return self.top if piece.tail else piece.hi

    def bounded(self) -> int | None:
        """Pages that surely read the rest, short page included, when the filter names its
        IDs (``@ID``) and they fit a batch: then the first batch carries those pages, not
        49 (most of them for nothing), and no DESC page. None: no such bound."""
        if self.at_most is None:
            return None
        pages = math.ceil((max(0, self.at_most - self.rows_read) + 1) / PAGE)
        return pages if pages <= SLOTS else None

    def need(self, piece: _Slice) -> int:
        """Pages a slice is expected to take: to its bound, or past the highest ID with a
        short page to show the end."""
        end = self.end_of(piece)
        bounded = self.bounded() if piece.tail else None
        if (piece.tail and self.top_unknown()) or end is None:
            return SLOTS if bounded is None else bounded
        width = end - piece.lo
        if piece.tail:  # and one short page to show the end
            pages = math.ceil(self.density(piece) * width * TAIL_MARGIN / PAGE) + 1
            return pages if bounded is None else min(pages, bounded)
        expected = math.ceil(self.density(piece) * width / PAGE) + 1  # one spare
        return max(1, min(expected, math.ceil(width / PAGE)))

    def split(self, piece: _Slice, pages: int) -> _Slice:
        """The first ``pages`` pages' worth of IDs of an idle slice, as a slice of its own
        (the rest follows it); the slice itself when what is left is no more."""
        end = self.end_of(piece)
        density = self.density(piece, low=True)
        cut = piece.lo + max(1, math.floor(pages * PAGE / density))
        if end is None or cut >= end:
            return piece
        front = _Slice(piece.lo, cut, density=density)
        rest = _Slice(cut, piece.hi, tail=piece.tail, density=density)
        piece.tail, piece.done, piece.hi = False, True, piece.lo  # ends where it stands
        at = self.slices.index(piece) + 1
        self.slices[at:at] = [front, rest]
        return front

    def spread(self, requests: int) -> int:
        """Pages the next batch carries at most when ``requests`` more may go now: a full
        batch, unless the rest of the read fills fewer full batches than that (then an
        even share of it, ``SPREAD_FLOOR`` at the least). While nothing says where the
        table ends, and the bucket has room for ``FIRST_LOOK`` requests or more: one page
        and the ``ID DESC`` page."""
        if requests <= 1:
            return SLOTS
        if self.top_unknown() and self.bounded() is None:
            return 2 if requests >= FIRST_LOOK else SLOTS
        left = sum(self.need(p) for p in self.slices if not p.done and not p.busy)
        return min(SLOTS, max(SPREAD_FLOOR, math.ceil(left / requests)))

    def build(self, budget: int) -> tuple[Commands, _Sent] | None:
        """The next batch: slices still to read in ID order (those not on their way), the
        first cut to what the batch has room for, up to ``budget`` pages; the DESC page
        last when the end is not known."""
        slots = min(SLOTS, budget)
        tail = self.slices[-1]
        bounded = self.bounded()
        wanted = slots >= 2 and self.tail_ready() and self.top_unknown()
        top_after = tail.lo if wanted and (bounded is None or bounded > slots) else None
        if top_after is not None:
            slots -= 1
        cmds: Commands = {}
        chains: list[_Chain] = []
        for piece in list(self.slices):
            if slots <= 0:
                break
            if piece.done or piece.busy:
                continue
            if self.need(piece) > slots:
                piece = self.split(piece, slots)
            pages = min(slots, self.need(piece))
            chains.append(self.chain(piece, pages, cmds))
            slots -= pages
        if not chains:
            return None
        if top_after is not None:
            cmds["top"] = (self.method, self.top_params(top_after, self.caller_hi))
        reserved = len(cmds) * self.cost * COST_MARGIN if self.cost else 0.0
        return cmds, _Sent(chains, list(cmds), top_after, reserved)

    def tail_ready(self) -> bool:
        tail = self.slices[-1]
        return not tail.busy and not tail.done

    def affordable(self) -> int:
        """Pages the method's budget has room for now (a full batch while unknown)."""
        room = self.tracker.room(self.method)
        if room is None or not self.cost:
            return SLOTS
        pages = int(room // (self.cost * COST_MARGIN))
        if pages > 1:  # near the limit, half of what is left at a time: the answers to
            pages = max(1, pages // 2)  # the first tell the next what it really cost
        if self.probe:
            pages = max(pages, 1)
        return max(0, min(SLOTS, pages))

    def dispatch(self, tasks: dict[asyncio.Future[BatchResult], _Sent]) -> bool:
        """Send batches while fewer than ``in_flight`` batches' worth of pages are on their
        way or held; with none on its way, always one (the head of the read must move).
        Whether any was."""
        sent_any = False
        launched = 0  # sent by this call: not yet counted in the bucket
        while len(tasks) < MAX_BATCHES and (
            not tasks
            or sum(len(t.order) for t in tasks.values())
            + math.ceil(self.held / (SLOTS * PAGE)) * SLOTS  # held: in whole batches
            < self.in_flight * SLOTS
        ):
            budget = self.affordable()
            spread = False
            if self.spreads and not self.budget_binds and budget >= SLOTS:
                free = self.client.bucket.free() - launched
                budget = self.spread(min(free, MAX_BATCHES - len(tasks)))
                spread = budget < SLOTS
            planned = self.build(budget)
            if planned is None:
                return sent_any
            cmds, sent = planned
            sent.spread = spread
            self.probe = False
            self.tracker.reserve(self.method, sent.reserved)
            # One chain: halt, and what follows a short page's successor is not run (its
            # reference finds no 50th row: the portal refuses it, or answers a page the
            # chain throws away). Pages after a failed one are thrown away anyway. With two
            # chains a halt in the first would stop the second's good pages.
            halt = len(sent.chains) == 1
            # a short batch the bucket refuses (another client spent it) is not waited
            # out as it is: its pages go back, to leave in full batches (refused())
            batch = self.client.batch(cmds, safe=True, halt=halt, wait_if_refused=not spread)
            tasks[asyncio.ensure_future(batch)] = sent
            sent_any = True
            launched += 1
        return sent_any

    # ------------------------------------------------------------ answers
    def refused(self, sent: _Sent) -> None:
        """The bucket refused a short batch as a whole (or it was not sent: the bucket
        had no room after a refusal): nothing in it ran. Its slices are idle again, as
        they were, and the rest of the read goes in full batches that wait for the
        bucket (never a short one sent again at once, and again)."""
        self.spreads = False
        self.tracker.release(self.method, sent.reserved)
        for chain in sent.chains:
            chain.slice.busy = False

    def absorb(self, sent: _Sent, batch: BatchResult) -> None:
        self.tracker.release(self.method, sent.reserved)
        self.learn_cost(sent, batch)
        for chain in sent.chains:
            chain.slice.busy = False
            self.take(chain, batch)
        if sent.top_after is not None:
            self.take_top(sent.top_after, batch)

    def learn_cost(self, sent: _Sent, batch: BatchResult) -> None:
        """Operating seconds a page: the rise of ``operating`` from one command to the next."""
        rises: list[float] = []
        before: float | None = None
        for name in sent.order:
            info = batch.time.get(name)
            operating = info.get("operating") if isinstance(info, Mapping) else None
            if not isinstance(operating, (int, float)):
                before = None
                continue
            if before is not None and operating > before and name in batch.result:
                rises.append(float(operating) - before)
            before = float(operating)
        if rises:  # the dearest of the last few batches: a page's cost varies
            self.costs.append(sum(rises) / len(rises))
            self.cost = max(self.costs)

    def take(self, chain: _Chain, batch: BatchResult) -> None:
        """The chain's good pages, in order, up to the first that failed or did not
        advance (read again from there) or the slice's end."""
        piece = chain.slice
        read = 0
        first: int | None = None
        recent: deque[tuple[int, int]] = deque(maxlen=RECENT)  # (ID before a page, rows)
        for name in chain.names:
            page = self.good_page(piece, name, batch)
            if page is None:
                break
            if page:
                recent.append((piece.lo, len(page)))
                piece.pages.append(page)
                first = int(page[0][self.id_key]) if first is None else first
                piece.lo = int(page[-1][self.id_key])
                read += len(page)
            if len(page) < PAGE or piece.at_end():
                piece.done = True
                break
        self.count(chain, read, first)
        if not piece.done and recent:  # more to read here: as dense as the last pages
            piece.density = sum(n for _, n in recent) / (piece.lo - recent[0][0])

    def good_page(self, piece: _Slice, name: str, batch: BatchResult) -> list[Row] | None:
        """A page that advances the slice, or None (then read again from its last ID)."""
        error = batch.error.get(name)
        if isinstance(error, OperationTimeLimit):
            self.tracker.blocked(self.method)  # wait for the budget, then go on
            self.budget_binds = True
            return None
        if error is not None or name not in batch.result:
            self.failed(piece, f"page after ID {piece.lo} failed: {error}")
            return None
        page = _rows(self.method, batch.result[name])
        if not self.advances(piece, page):
            # a page built from a broken reference: discard, resume
            self.failed(piece, f"pages after ID {piece.lo} do not advance")
            return None
        piece.failures = 0
        return page

    def count(self, chain: _Chain, read: int, first: int | None) -> None:
        """Rows and IDs the chain went through, for the density. The IDs before the read's
        very first row say nothing of the rest (a filter may start far in)."""
        piece = chain.slice
        start = first - 1 if first is not None and self.rows_read == 0 else chain.start
        end = piece.hi if piece.done and piece.hi is not None else piece.lo
        self.held += read
        self.rows_read += read
        self.span_read += max(0, end - start)

    def advances(self, piece: _Slice, page: list[Row]) -> bool:
        """The page's IDs rise past the slice's last one and stay inside the slice."""
        last = piece.lo
        key = self.id_key
        for row in page:
            now = int(row[key])
            if now <= last:
                return False
            last = now
        return not page or piece.hi is None or last <= piece.hi

    def take_top(self, after: int, batch: BatchResult) -> None:
        error = batch.error.get("top")
        if isinstance(error, OperationTimeLimit):
            self.tracker.blocked(self.method)
            self.budget_binds = True
            return
        if error is not None or "top" not in batch.result:
            return  # asked again with the next batch
        rows = _rows(self.method, batch.result["top"])
        self.top = int(rows[0][self.id_key]) if rows else after
        if len(rows) == PAGE:  # the table's end may be sparser than its start
            self.top_density = PAGE / (self.top - int(rows[-1][self.id_key]) + 1)
        tail = self.slices[-1]
        if not tail.busy and not tail.done and tail.lo >= self.top:
            tail.done = True  # run after the tail's last page, it saw nothing past it

    def failed(self, piece: _Slice, why: str) -> None:
        piece.failures += 1
        if piece.failures > self.page_retries:
            raise IncompleteRead(f"{self.method}: {why}")

    # ------------------------------------------------------------ handing out
    def drain(self) -> Iterator[list[Row]]:
        """Pages of the slices at the head, in order, as far as they are read; progress
        is told of a page once the next is asked for (its rows handed out)."""
        while self.slices:
            head = self.slices[0]
            while head.pages:
                page = head.pages.popleft()
                self.held -= len(page)
                self.seen += len(page)
                self.last = int(page[-1][self.id_key])
                yield page
                self.report()
            if not head.done:
                return
            self.slices.pop(0)

    def report(self, total: int | None = None) -> None:
        if self.progress is None:
            return
        if total is None and self.top is not None:
            ahead = min(1.0, self.read_density()) * max(0, self.top - self.last)
            total = self.seen + round(ahead)
        self.progress(self.seen, total)

    async def pages(self) -> AsyncGenerator[list[Row], None]:
        tasks: dict[asyncio.Future[BatchResult], _Sent] = {}
        with self.tracker.pacing(self.method):
            try:
                while True:
                    if self.dispatch(tasks):
                        await asyncio.sleep(0)  # sent before these rows are handed out
                    for page in self.drain():
                        yield page
                    if not self.slices:
                        self.report(self.seen)
                        return
                    self.dispatch(tasks)
                    if not tasks:  # no room in the budget: after its reset, look
                        self.tracker.hold_until_reset(self.method)
                        self.probe = True
                        continue
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        sent = tasks.pop(task)
                        try:
                            batch = task.result()
                        except QueryLimitExceeded:
                            if not sent.spread:
                                raise
                            self.refused(sent)
                        else:
                            self.absorb(sent, batch)
            finally:
                for task, sent in tasks.items():
                    task.cancel()
                    # the budget it held back is not spent by us: a read given up (a
                    # break, an error) must not leave the method short of room for good
                    self.tracker.release(self.method, sent.reserved)
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)


async def _offset(
    client: B24Client, method: str, params: dict[str, Any], progress: Progress | None
) -> AsyncIterator[list[Row]]:
    first = await client.envelope(method, {**params, "start": 0})
    rows = _rows(method, first.result)
    total = first.total if isinstance(first.total, int) else None
    yield rows
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
            yield page
            if progress:
                progress(seen, total)


async def read_all(
    client: B24Client,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    progress: Progress | None = None,
    spread: bool = True,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    pages = _pages(client, method, params, progress, PAGE_RETRIES, IN_FLIGHT, spread)
    async with contextlib.aclosing(pages):
        async for page in pages:
            rows += page
    return rows
