#!/usr/bin/env python3
"""b24kit, fast_bitrix24 and b24pysdk side by side, under every cost preset of the sandbox.

One run, one table. Every job runs for every client that can do it, on the same sandbox
served in its own process over HTTP (`b24kit sandbox serve`, plan "standard", 100 ms
latency, each preset's `--cost-model NAME --wall-time --workers N`), each client from the
same state: a copy of the same seeded database, a new server (so a fresh bucket and a
fresh operating budget), and for the "burst spent" jobs the bucket filled by this script
before the client starts. Each client is called as its README shows, with its defaults
(b24kit through `connect()`, as its CLI does: it is not told that the burst is spent).

Jobs (sizes are options; `--quick` makes them small for a smoke test):
  read-fresh     read R1 deals (ID, TITLE) from a fresh bucket          (--read-fresh 20000)
  read-spent     read R2, then R3 deals with the burst spent            (--read-spent 100000,300000)
  write-fresh    W1 crm.deal.add from a fresh bucket                    (--write-fresh 2000)
  write-spent    W2 crm.deal.add with the burst spent                   (--write-spent 10000)
  fault-KIND     F crm.deal.add with the burst spent under 20% of one fault kind:
                 500, 503, drop, lost (--fault-writes 2000, --fault-rate 0.2)
  fault-500-uncounted, fault-drop-uncounted: the same, where the portal's bucket does
                 not count the failed request (the sandbox's counted=no)

Every write carries ORIGINATOR_ID "bench" and ORIGIN_ID "w<i>": after the run the script
reads the sandbox's SQLite and counts duplicates (a key on more than one deal) and losses
(a key asked for and on no deal). A read counts duplicate and missing IDs. A client that
fails is a row saying how and after how long; a job is stopped after --cap seconds.

The requests and the operating time of a row are the server's own counts (the sandbox's
request counter and what its operating budget was charged per method), taken in the
server process; the requests this script sends to spend the burst are subtracted.

    python3 -m pip install -e '.[bench]'
    python3 scripts/bench_peers.py                 # the whole table (long: see the README)
    python3 scripts/bench_peers.py --quick         # small sizes, a minute or two
    python3 scripts/bench_peers.py --presets docs --jobs read-fresh,write-fresh --format json
    python3 scripts/bench_peers.py --table-from run.json   # the table of a saved json run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

CLIENTS = ("b24kit", "fast_bitrix24", "b24pysdk")
SELECT = ["ID", "TITLE"]
PLAN = "standard"
FAULT_KINDS = ("500", "503", "drop", "lost")

# The standard plan's limits as docs/sandbox.md#limits states them (API notes §3.1, §3.2):
BURST = 50  # the leaky bucket's capacity: requests admitted at once from a fresh bucket
DRAIN = 2.0  # requests/s it drains: the sustained rate limit
BATCH = 50  # commands a batch
PAGE = 50  # rows a list page
BUDGET = 480.0  # operating seconds per method ...
WINDOW = 600.0  # ... in any 10-minute window


# ------------------------------------------------------------------ presets and limits
@dataclass(frozen=True)
class Preset:
    """A sandbox cost preset: the flags that select it and what it charges."""

    name: str
    flags: tuple[str, ...]
    write: float  # operating seconds a crm.deal.add costs
    page: float  # operating seconds a list page of 50 rows costs without counting


def load_presets(names: Sequence[str] | None, workers: int) -> list[Preset]:
    """The presets to run: those named (all by default) of the sandbox's preset module
    (b24kit.sandbox.costs), each served with the charged time spent as wall time and
    ``workers`` requests at once."""
    from b24kit.sandbox import costs

    out = []
    for name in names or list(costs.PRESETS):
        model = costs.preset(name)  # raises, naming the known presets
        flags = ("--cost-model", name, "--wall-time", "--workers", str(workers))
        out.append(Preset(name, flags, write=model.write, page=model.page))
    return out


@dataclass(frozen=True)
class Limit:
    rate: float | None  # units/s this job can reach at best; None: neither limit binds
    binds: str  # "rate limit", "operating budget", or "none (burst, one window)"
    sustained: float  # units/s in the long run: the lower of the two limits
    seconds: float  # the least time the limits allow for the job


def binding_limit(kind: str, units: int, fresh: bool, preset: Preset) -> Limit:
    """The binding limit of one job: the lower of the portal's two limits
    (docs/sandbox.md#limits, the API notes §3.1 and §3.2).

    - Rate limit: a leaky bucket of 50 requests draining 2 a second, 50 commands a
      request: 100 writes/s, and 5,000 rows/s for 50-row pages (50 pages a batch).
    - Operating budget: 480 s of charged time per method in any 600 s, so in the long run
      480/600 divided by the preset's cost per command (a write) or per page (a read at
      its cheapest: `start=-1` pages, which count nothing).

    Those two are ``sustained``. For one job of ``units`` (writes or rows) the least
    time is the later of (a) the bucket: requests beyond those it admits at once, at 2 a
    second: a fresh bucket admits 50; one found full (the job's clock starts then) admits
    its next within half a second, and that one is counted free too, so the bound errs
    against every client alike; and (b) the budget: the job's charged time beyond 480 s
    waits for a window to pass, 600 s for each further 480 s. ``rate`` is ``units`` over
    that time: no client can beat it, so a client's share of it is at most 100% (round
    trips aside). Long jobs tend to ``sustained``; a job the burst and one window hold
    entirely has no binding limit (``rate`` None).
    """
    if kind not in ("read", "write"):
        raise ValueError(f"kind must be read or write, not {kind!r}")
    if kind == "write":
        commands, cost, unit_per_command = units, preset.write, 1
    else:
        commands, cost, unit_per_command = math.ceil(units / PAGE), preset.page, PAGE
    requests = math.ceil(commands / BATCH)
    rate_limit = DRAIN * BATCH * unit_per_command
    budget_limit = BUDGET / WINDOW / cost * unit_per_command if cost > 0 else math.inf
    sustained = min(rate_limit, budget_limit)
    t_rate = max(0, requests - (BURST if fresh else 1)) / DRAIN
    charged = commands * cost
    t_budget = WINDOW * (math.ceil(charged / BUDGET) - 1) if charged > BUDGET else 0.0
    seconds = max(t_rate, t_budget)
    if seconds <= 0:
        return Limit(None, "none (burst, one window)", sustained, 0.0)
    binds = "operating budget" if t_budget > t_rate else "rate limit"
    return Limit(units / seconds, binds, sustained, seconds)


# ------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class Job:
    name: str
    kind: str  # read | write
    size: int
    fresh: bool  # from a fresh bucket; else with the burst spent
    fault: str | None = None  # one fault kind at --fault-rate
    counted: bool = True  # the portal's bucket counts a 500 or drop request (sandbox.md)

    @property
    def label(self) -> str:
        what = "read" if self.kind == "read" else "crm.deal.add"
        state = "fresh bucket" if self.fresh else "burst spent"
        fault = f", 20% {self.fault}" if self.fault else ""
        if not self.counted:
            fault += " not counted by the bucket"
        return f"{what} {self.size:,}, {state}{fault}"


def make_jobs(args: argparse.Namespace) -> list[Job]:
    jobs = [Job("read-fresh", "read", args.read_fresh, True)]
    jobs += [Job("read-spent", "read", n, False) for n in args.read_spent]
    jobs.append(Job("write-fresh", "write", args.write_fresh, True))
    jobs.append(Job("write-spent", "write", args.write_spent, False))
    jobs += [Job(f"fault-{k}", "write", args.fault_writes, False, k) for k in FAULT_KINDS]
    jobs += [  # the other reading of a failed request (docs/sandbox.md#faults)
        Job(f"fault-{k}-uncounted", "write", args.fault_writes, False, k, counted=False)
        for k in ("500", "drop")
    ]
    wanted = set(args.jobs)
    unknown = wanted - {j.name for j in jobs} - {"faults"}
    if unknown:
        raise SystemExit(f"unknown jobs: {', '.join(sorted(unknown))}")
    return [j for j in jobs if j.name in wanted or ("faults" in wanted and j.fault)]


def items(count: int) -> list[dict[str, Any]]:
    return [
        {"TITLE": f"Bench {i}", "ORIGINATOR_ID": "bench", "ORIGIN_ID": f"w{i}"}
        for i in range(count)
    ]


# ------------------------------------------------------------------ the server
# Runs `b24kit sandbox serve` in a child process and, when the server closes its sandbox,
# writes the sandbox's own counts to $B24KIT_BENCH_STATS: requests, statuses, budget
# refusals and the operating seconds charged per method (summed over the whole run).
SERVE_WITH_COUNTS = """
import json, os, sys, threading
from b24kit.sandbox import app as _app
from b24kit.sandbox.limits import OperatingBudget
_spent, _lock, _spend = {}, threading.Lock(), OperatingBudget.spend
def spend(self, key, seconds, *rest, **kw):
    with _lock:
        _spent[key[1]] = _spent.get(key[1], 0.0) + seconds
    return _spend(self, key, seconds, *rest, **kw)
OperatingBudget.spend = spend
_close = _app.Sandbox.close
def close(self):
    with open(os.environ["B24KIT_BENCH_STATS"], "w") as f:
        json.dump({"requests": self.requests, "statuses": dict(self.statuses),
                   "budget_refusals": getattr(self, "budget_refusals", 0),
                   "operating": _spent}, f)
    _close(self)
_app.Sandbox.close = close
sys.argv = ["b24kit", *sys.argv[1:]]
from b24kit.cli.entry import main
main()
"""


@dataclass
class Served:
    url: str
    stats: dict[str, Any] = field(default_factory=dict)


@contextmanager
def serve(
    db: Path, latency_ms: float, flags: Sequence[str], faults: str | None = None
) -> Iterator[Served]:
    """The sandbox on ``db`` in its own process; ``stats`` is filled when it stops."""
    args = [sys.executable, "-c", SERVE_WITH_COUNTS, "sandbox", "serve", "--port", "0"]
    args += ["--db", str(db), "--limits", PLAN, "--latency-ms", str(latency_ms), *flags]
    if faults:
        args += ["--faults", faults]
    stats_path = db.with_suffix(".stats.json")
    log = db.with_suffix(".serve.log").open("w")
    env = {**os.environ, "COLUMNS": "300", "B24KIT_BENCH_STATS": str(stats_path)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("Inbound webhook URL:"):
            url = line.split(":", 1)[1].strip()
            break
    if not url:
        proc.wait(timeout=10)
        log.close()
        raise SystemExit(f"the sandbox did not start: {db.with_suffix('.serve.log').read_text()}")
    served = Served(url)
    try:
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if stats_path.exists():
            served.stats = json.loads(stats_path.read_text())


def spend_burst(url: str) -> tuple[int, float]:
    """Fill the portal's bucket: rounds of requests sent at once until a round of 10
    gets at most one admitted (an answer spoilt by a fault counts as not admitted, so
    faults can only make a round look less full). Returns how many requests that took, for the
    caller to subtract from the server's count, and the moment (perf_counter) the bucket
    was found full: the job's clock starts there, so the slot the bucket drains while the
    client starts is the client's time, and 2 requests/s stays a true bound."""

    async def fill() -> tuple[int, float]:
        limits = httpx.Limits(max_connections=BURST + 20)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:

            async def admitted() -> bool:
                try:
                    return (await http.post(url + "server.time")).status_code == 200
                except httpx.TransportError:
                    return False  # an injected fault, not the bucket

            sent = 0
            for size in (BURST + 10, *[10] * 40):
                got = await asyncio.gather(*(admitted() for _ in range(size)))
                sent += size
                if size == 10 and sum(got) <= 1:
                    return sent, time.perf_counter()
        raise SystemExit("the sandbox never refused a request: are its limits on?")

    return asyncio.run(fill())


# ------------------------------------------------------------------ the clients
# Each runner takes the webhook URL and the job's work and returns what the client
# reported: the IDs it read, or how many of its writes it said failed.


def _quiet_peers() -> None:
    # asyncio: a peer's tasks left over when its server goes, reported as never retrieved
    for name in ("fast_bitrix24", "b24pysdk", "urllib3", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def b24kit_read(url: str, home: str) -> list[int]:
    from b24kit.client import read_all
    from b24kit.connect import connect

    async def go() -> list[int]:
        async with connect(url, env={"XDG_CONFIG_HOME": home}).client as c:
            rows = await read_all(c, "crm.deal.list", {"select": SELECT})
        return [int(r["ID"]) for r in rows]

    return asyncio.run(go())


def b24kit_write(url: str, home: str, fields: list[dict[str, Any]]) -> int:
    from b24kit.client import Executor
    from b24kit.connect import connect
    from b24kit.portal import commands as cmd

    async def go() -> int:
        async with connect(url, env={"XDG_CONFIG_HOME": home}).client as c:
            outcomes = await Executor(c).run([cmd.entity_add("deal", f) for f in fields])
        return sum(not o.ok for o in outcomes)

    return asyncio.run(go())


def fb24_read(url: str, home: str) -> list[int]:
    from fast_bitrix24 import BitrixAsync

    async def go() -> list[int]:
        rows = await BitrixAsync(url, verbose=False).get_all("crm.deal.list", {"select": SELECT})
        return [int(r["ID"]) for r in rows]

    return asyncio.run(go())


def fb24_write(url: str, home: str, fields: list[dict[str, Any]]) -> int:
    from fast_bitrix24 import BitrixAsync

    async def go() -> int:
        got = await BitrixAsync(url, verbose=False).call(
            "crm.deal.add", [{"fields": f} for f in fields]
        )
        answers = got if isinstance(got, list | tuple) else [got]
        return len(fields) - sum(1 for a in answers if a)

    return asyncio.run(go())


def _pysdk_token(url: str) -> Any:
    """b24pysdk builds ``https://{domain}/rest``; the sandbox speaks plain HTTP, so its one
    URL property is pointed at http (nothing else of the SDK is changed)."""
    import importlib

    from b24pysdk import BitrixWebhook

    caller = importlib.import_module("b24pysdk.api.callers.call_method")._MethodCaller
    if not getattr(caller, "_bench_http", False):
        caller._base_url = property(lambda self: f"http://{self._domain}/rest")
        caller._bench_http = True
    parts = httpx.URL(url)
    user, secret = parts.path.strip("/").split("/")[1:3]
    return BitrixWebhook(domain=f"{parts.host}:{parts.port}", webhook_token=f"{user}/{secret}")


def pysdk_read(url: str, home: str) -> list[int]:
    answer = _pysdk_token(url).call_list_fast("crm.deal.list", {"select": SELECT})
    return [int(r["ID"]) for r in answer["result"]]


def pysdk_write(url: str, home: str, fields: list[dict[str, Any]]) -> int:
    methods = {f"d{i}": ("crm.deal.add", {"fields": f}) for i, f in enumerate(fields)}
    answer = _pysdk_token(url).call_batches(methods)
    return len(answer["result"].get("result_error") or {})


READERS: dict[str, Callable[[str, str], list[int]]] = {
    "b24kit": b24kit_read,
    "fast_bitrix24": fb24_read,
    "b24pysdk": pysdk_read,
}
WRITERS: dict[str, Callable[[str, str, list[dict[str, Any]]], int]] = {
    "b24kit": b24kit_write,
    "fast_bitrix24": fb24_write,
    "b24pysdk": pysdk_write,
}


def installed(client: str) -> bool:
    if client == "b24kit":
        return True
    try:
        __import__(client)
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ one cell
@dataclass
class Row:
    preset: str
    job: str
    client: str
    size: int
    limit: float | None
    binds: str
    done: int = 0  # distinct rows read, or distinct asked deals on the portal
    seconds: float = 0.0
    rate: float = 0.0
    requests: int | None = None
    budget_s: float | None = None  # the most operating time charged to one method
    budget_method: str = ""
    share: float | None = None  # rate / limit
    duplicates: int = 0
    losses: int = 0
    reported_failed: int = 0  # commands the client itself said failed
    failed: str = ""


def describe(exc: BaseException) -> str:
    """One short line: the exception's type and the portal's error code when it carries
    one (a peer's message may hold a whole batch answer), else its first words."""
    text = " ".join(str(exc).split())
    code = re.search(r"\b(?:[A-Z]+_){1,5}[A-Z]+\b", text)
    return f"{type(exc).__name__}: {code.group(0) if code else text[:120]}"


def capped(
    work: Callable[[], Any], cap: float, since: float | None = None
) -> tuple[Any, str, float]:
    """Run ``work`` in a thread for at most ``cap`` seconds: (result, failure, seconds
    from ``since``, by default from the start). A peer that overruns is left to fail
    once its server is gone."""
    box: dict[str, Any] = {}

    def target() -> None:
        started = time.perf_counter() if since is None else since
        try:
            box["result"] = work()
        except BaseException as exc:  # noqa: BLE001  a peer's failure is a row
            box["error"] = describe(exc)
        box["seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(cap)
    if thread.is_alive():
        return None, f"did not finish within {cap:.0f} s", time.perf_counter() - started
    return box.get("result"), box.get("error", ""), box["seconds"]


def deals_by_key(db: Path) -> dict[str, int]:
    """ORIGIN_ID -> how many deals carry it, for the bench's writes."""
    from b24kit.sandbox import Sandbox, SandboxConfig

    box = Sandbox(SandboxConfig(db=str(db), limits="off"))
    try:
        rows = box.db.all(
            "SELECT json_extract(data, '$.ORIGIN_ID') AS k, count(*) AS n FROM items "
            "WHERE entity_type_id = 2 AND json_extract(data, '$.ORIGINATOR_ID') = 'bench' "
            "GROUP BY k"
        )
        return {str(r["k"]): int(r["n"]) for r in rows}
    finally:
        box.close()


def account(row: Row, stats: dict[str, Any], bench_requests: int) -> None:
    """Fill the row's server-side counts."""
    if "requests" in stats:
        row.requests = int(stats["requests"]) - bench_requests
    spent = {m: s for m, s in (stats.get("operating") or {}).items() if m != "server.time"}
    if spent:
        row.budget_method, row.budget_s = max(spent.items(), key=lambda kv: kv[1])


def tally_read(row: Row, job: Job, ids: Sequence[int]) -> None:
    """Rows read: distinct IDs, IDs read twice, IDs of the table not read."""
    row.done = len(set(ids))
    row.duplicates = len(ids) - row.done
    row.losses = 0 if row.failed else job.size - row.done


def tally_writes(row: Row, asked: Sequence[dict[str, Any]], on_portal: dict[str, int]) -> None:
    """Writes: asked keys on the portal, deals beyond one a key, asked keys on none."""
    row.done = sum(1 for f in asked if f["ORIGIN_ID"] in on_portal)
    row.duplicates = sum(n - 1 for n in on_portal.values() if n > 1)
    row.losses = 0 if row.failed else len(asked) - row.done


ServeFn = Callable[[Path, float, Sequence[str], "str | None"], AbstractContextManager[Served]]


def run_cell(
    job: Job,
    client: str,
    preset: Preset,
    db: Path,
    args: argparse.Namespace,
    home: str,
    server: ServeFn = serve,
) -> Row:
    """One client doing one job under one preset, on the database ``db`` (a copy)."""
    limit = binding_limit(job.kind, job.size, job.fresh, preset)
    row = Row(preset.name, job.label, client, job.size, limit.rate, limit.binds)
    faults = f"{job.fault}={args.fault_rate},seed=7" if job.fault else None
    if faults and not job.counted:
        faults += ",counted=no"
    fields = items(job.size) if job.kind == "write" else []
    with server(db, args.latency_ms, preset.flags, faults) as served:
        bench_requests, full_at = (0, None) if job.fresh else spend_burst(served.url)
        work: Callable[[], Any]
        if job.kind == "read":
            work = lambda: READERS[client](served.url, home)  # noqa: E731
        else:
            work = lambda: WRITERS[client](served.url, home, fields)  # noqa: E731
        result, row.failed, row.seconds = capped(work, args.cap, full_at)
    account(row, served.stats, bench_requests)
    if job.kind == "read":
        tally_read(row, job, result or [])
    else:
        row.reported_failed = int(result or 0)
        tally_writes(row, fields, deals_by_key(db))
    if row.seconds > 0 and not row.failed:
        row.rate = row.done / row.seconds
        row.share = row.rate / limit.rate if limit.rate else None
    return row


# ------------------------------------------------------------------ data
def seed(db: Path, rows: int) -> None:
    """Grow the deals of ``db`` to ``rows`` (what the read jobs read)."""
    from b24kit.sandbox import Sandbox, SandboxConfig

    box = Sandbox(SandboxConfig(db=str(db), limits="off"))
    try:
        have = box.portal.count_items(2)
        with box.db.transaction():
            for i in range(have, rows):
                box.portal.add_item(2, {"TITLE": f"Deal {i}", "OPPORTUNITY": i % 1000}, 1, "old")
    finally:
        box.close()


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def prepare(tmp: Path, jobs: Sequence[Job]) -> dict[int, Path]:
    """One seeded database per read size (grown in one file, copied at each size) and an
    empty one (size 0) for writes; all with the same webhook token."""
    growing = tmp / "growing.sqlite"
    seed(growing, 0)
    out = {0: copy_db(growing, tmp / "empty.sqlite")}
    for size in sorted({j.size for j in jobs if j.kind == "read"}):
        seed(growing, size)
        out[size] = copy_db(growing, tmp / f"deals-{size}.sqlite")
    return out


# ------------------------------------------------------------------ the table
def _n(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def result_cell(row: Row) -> str:
    unit = "rows/s" if row.job.startswith("read") else "writes/s"
    if row.failed:
        return f"failed after {row.seconds:,.1f} s: {row.failed}"
    text = f"{_n(row.rate, 1 if row.rate < 100 else 0)} {unit}"
    if row.reported_failed:
        text += f" ({row.reported_failed:,} reported failed)"
    return text


def table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table, in run order."""
    head = (
        "| preset | job | binding limit | client | result | seconds | requests "
        "| operating budget used | % of limit | duplicates / lost |"
    )
    lines = [head, "|" + " --- |" * 10]
    for r in rows:
        unit = "rows/s" if r.job.startswith("read") else "writes/s"
        limit = f"{_n(r.limit)} {unit} ({r.binds})" if r.limit else r.binds
        budget = (
            f"{r.budget_s:,.1f} s {r.budget_method} ({r.budget_s / BUDGET:.0%} of 480 s)"
            if r.budget_s is not None
            else "—"
        )
        share = f"{r.share:.1%}" if r.share is not None else "—"
        cells = [
            r.preset,
            r.job,
            limit,
            r.client,
            result_cell(r),
            _n(r.seconds, 1),
            _n(r.requests),
            budget,
            share,
            f"{r.duplicates:,} / {'—' if r.failed else f'{r.losses:,}'}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def as_json(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "rows": [asdict(r) for r in rows]}, ensure_ascii=False, indent=1)


# ------------------------------------------------------------------ main
QUICK = {
    "read_fresh": 500,
    "read_spent": [2_600],
    "write_fresh": 100,
    "write_spent": 150,
    "fault_writes": 150,
    "cap": 120.0,
}


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sizes = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    names = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--presets", type=names, default=None, help="e.g. docs,phpsdk (default all)")
    p.add_argument(
        "--jobs",
        type=names,
        default=["read-fresh", "read-spent", "write-fresh", "write-spent", "faults"],
        help="read-fresh,read-spent,write-fresh,write-spent,faults (or fault-500, ...)",
    )
    p.add_argument("--clients", type=names, default=list(CLIENTS))
    p.add_argument("--read-fresh", type=int, default=20_000)
    p.add_argument("--read-spent", type=sizes, default=[100_000, 300_000])
    p.add_argument("--write-fresh", type=int, default=2_000)
    p.add_argument("--write-spent", type=int, default=10_000)
    p.add_argument("--fault-writes", type=int, default=2_000)
    p.add_argument("--fault-rate", type=float, default=0.2)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--workers", type=int, default=50, help="the sandbox's workers")
    p.add_argument("--cap", type=float, default=900.0, help="seconds a job may take")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument(
        "--table-from", metavar="FILE", help="print the table of a saved --format json run"
    )
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    unknown = set(args.clients) - set(CLIENTS)
    if unknown:
        p.error(f"unknown clients: {', '.join(sorted(unknown))}")
    return args


def run(args: argparse.Namespace, echo: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    _quiet_peers()
    presets = load_presets(args.presets, args.workers)
    jobs = make_jobs(args)
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "latency_ms": args.latency_ms,
        "plan": PLAN,
        "workers": args.workers,
        "presets": [asdict(p) for p in presets],
        "versions": versions(),
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        dbs = prepare(tmp, jobs)
        for preset in presets:
            for job in jobs:
                for client in args.clients:
                    if not installed(client):
                        echo(f"skipped {client}: not installed (pip install -e '.[bench]')")
                        continue
                    db = copy_db(dbs[job.size if job.kind == "read" else 0], tmp / "run.sqlite")
                    row = run_cell(job, client, preset, db, args, str(tmp))
                    echo(f"{preset.name} | {job.label} | {client} | {result_cell(row)}")
                    rows.append(row)
    return rows, meta


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in CLIENTS:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    if args.table_from:
        saved = json.loads(Path(args.table_from).read_text())
        print(table([Row(**r) for r in saved["rows"]]))
        return
    rows, meta = run(args, lambda line: print(line, file=sys.stderr, flush=True))
    print(as_json(rows, meta) if args.format == "json" else table(rows))


if __name__ == "__main__":
    main()
