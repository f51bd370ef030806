#!/usr/bin/env python3
"""`b24kit sync --serve` under a flood (issue 16): 200 events a second for 60 seconds
against the sandbox with standard limits (2 requests/s, burst 50) and 100 ms latency,
while 300 slow clients hold connections open and unauthenticated 10 MB bodies arrive.

What happens, as on a portal where people work: every event follows a real change of a
deal. 1 in 100 moves a new parent of «Продажи: Услуга под ключ» to the trigger stage
(its child must be made); the rest edit deals (a title, a comment), which the link does
not act on. The service is the real command in its own process (`b24kit sync --serve`,
default --rate-share 0.5); the portal is served from this process, and the changes are
made in it directly (as people in the portal's UI: not through the REST limits).

Printed: acknowledgement times (every event within 1 s?), the passes each triggered
parent waited for (within 2?), the service's memory over the run (flat?), duplicate and
missing children (0?), the time to refuse an unauthenticated 10 MB body (under 100 ms?),
and the stop on SIGTERM.

    python scripts/bench_sync_serve.py [--seconds 60] [--rate 200] [--slow 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from b24kit.blueprint.apply import apply_blueprint
from b24kit.blueprint.loader import load_blueprint
from b24kit.client import B24Client, Bucket, WebhookAuth, parse_webhook
from b24kit.sandbox import Sandbox, SandboxConfig
from b24kit.sandbox.server import start_in_thread

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINT = ROOT / "blueprints/company.yaml"
TOKEN = "bench-application-token-5d1c"
FORM = {"content-type": "application/x-www-form-urlencoded"}
PARENTS = 3000  # new parents to draw the triggered ones from
OTHERS = 2000  # deals the noise edits


def event(deal: int, token: str = TOKEN) -> str:
    return (
        f"event=ONCRMDEALUPDATE&event_handler_id=7&data%5BFIELDS%5D%5BID%5D={deal}"
        f"&ts={int(time.time())}&auth%5Bdomain%5D=bench.example"
        f"&auth%5Bapplication_token%5D={token}"
    )


def seed(box: Sandbox) -> tuple[int, int, list[int], list[int]]:
    hook = box.webhook_url("http://x")

    async def deploy() -> None:
        async with B24Client(
            WebhookAuth(parse_webhook(hook)), transport=box.transport(), bucket=Bucket(1e9, 1e9)
        ) as c:
            assert (await apply_blueprint(c, load_blueprint(BLUEPRINT)[0])).ok

    asyncio.run(deploy())
    cats = {
        c["name"]: c["id"] for c in box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    }
    sales, logistics = cats["Продажи: Услуга под ключ"], cats["Логистика"]
    parents, others = [], []
    with box.db.transaction():
        for i in range(PARENTS):
            fields = {"CATEGORY_ID": sales, "STAGE_ID": f"C{sales}:NEW", "TITLE": f"p{i}"}
            parents.append(box.portal.add_item(2, fields, 1, "old"))
        for i in range(OTHERS):
            fields = {"CATEGORY_ID": sales, "STAGE_ID": f"C{sales}:NEW", "TITLE": f"o{i}"}
            others.append(box.portal.add_item(2, fields, 1, "old"))
    return sales, logistics, parents, others


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(box: Sandbox, logistics: int) -> list[str]:
    found: list[str] = []
    last = 0
    while True:
        rows = box.call(
            "crm.deal.list",
            {
                "filter": {"CATEGORY_ID": logistics, ">ID": last},
                "select": ["ID", "UF_CRM_PARENT_DEAL"],
                "order": {"ID": "ASC"},
                "start": -1,
            },
        )
        found += [r["UF_CRM_PARENT_DEAL"] for r in rows]
        if len(rows) < 50:
            return found
        last = int(rows[-1]["ID"])


async def refuse_big(host: str, port: int, chunked: bool) -> float:
    """Seconds from the start of a 10 MB unauthenticated request to its refusal (the
    body sent as fast as the server takes it, declared or chunked)."""
    reader, writer = await asyncio.open_connection(host, port)
    size = 10 * 1024 * 1024
    head = "POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    block = b"a[" * 32768
    started = time.perf_counter()
    writer.write(head.encode())
    status, sent = b"", 0
    while not status and sent < size:
        try:
            writer.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            await writer.drain()
        except (ConnectionError, OSError):
            break  # the server closed it: its answer is waiting to be read
        sent += len(block)
        with contextlib.suppress(TimeoutError):
            status = await asyncio.wait_for(reader.readline(), 0.001)
    if not status:
        status = await asyncio.wait_for(reader.readline(), 5)
    took = time.perf_counter() - started
    writer.close()
    if b" 413 " not in status:
        raise SystemExit(f"a 10 MB body was answered {status!r}, not 413")
    return took


async def slow_client(host: str, port: int, in_headers: bool, stop: asyncio.Event) -> int:
    """Holds a connection open sending a byte a second; reconnects when cut. Returns how
    many times the server cut it."""
    cuts = 0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(1)
            continue
        head = b"POST / HTTP/1.1\r\nHost: slow\r\n"
        if not in_headers:
            head += b"Content-Length: 1000\r\n\r\n"
        writer.write(head)
        try:
            while not stop.is_set():
                writer.write(b"X" if in_headers else b"a")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), timeout=1.0) == b"":
                        break
                    break  # an answer (408): cut
                except TimeoutError:
                    continue
        except (ConnectionError, OSError):
            pass
        cuts += 1
        writer.close()
        await asyncio.sleep(0.5)  # then come back, as a patient attacker does
    return cuts


class Flood:
    """One run of the flood against a served `sync --serve`, and what it saw."""

    def __init__(
        self, box: Sandbox, url: str, seeded: tuple[int, int, list[int], list[int]], pid: int
    ) -> None:
        self.box, self.url, self.pid = box, url, pid
        self.sales, self.logistics, parents, self.others = seeded
        host, port = url.split("//", 1)[1].rstrip("/").split(":")
        self.host, self.port = host, int(port)
        self.rng = random.Random(16)
        self.pool = list(parents)
        self.rng.shuffle(self.pool)
        self.sent = 0
        self.acks: list[float] = []
        self.failures: Counter[str] = Counter()
        self.triggered: dict[int, int] = {}  # parent -> passes done when its event was acked
        self.handled: dict[int, int] = {}  # parent -> passes done when its child was seen
        self.memory: list[tuple[float, float]] = []
        self.big: list[float] = []
        self.passes = 0
        self.began = time.perf_counter()

    async def watch(self, http: httpx.AsyncClient) -> None:
        seen: set[str] = set()
        while True:
            self.passes = (await http.get("/healthz")).json()["passes"]
            for ref in children(self.box, self.logistics):
                if ref not in seen:
                    seen.add(ref)
                    self.handled.setdefault(int(ref[2:]), self.passes)
            await asyncio.sleep(0.2)

    async def sample(self) -> None:
        while True:
            self.memory.append((time.perf_counter() - self.began, rss_mb(self.pid)))
            await asyncio.sleep(1)

    async def bodies(self, at: list[float]) -> None:
        for moment in at:
            await asyncio.sleep(max(0.0, moment - (time.perf_counter() - self.began)))
            for chunked in (False, True):
                self.big.append(await refuse_big(self.host, self.port, chunked))

    async def post(self, body: str) -> tuple[int, bytes]:
        """POST one event on a connection of its own, as a portal's sender does: the
        status and the body of the answer."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            data = body.encode()
            writer.write(
                b"POST / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
            )
            answer = await reader.read()
        finally:
            writer.close()
        head, _, payload = answer.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), payload

    async def one(self, deal: int, trigger: bool) -> None:
        started = time.perf_counter()
        try:
            status, payload = await self.post(event(deal))
        except (OSError, IndexError, ValueError) as exc:
            self.failures[type(exc).__name__] += 1
            return
        self.acks.append(time.perf_counter() - started)
        if status != 200:
            self.failures[str(status)] += 1
        elif trigger:
            self.triggered[deal] = await self.passes_now()

    async def passes_now(self) -> int:
        """Passes completed, asked now (not the watcher's last look)."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
        writer.close()
        return int(json.loads(answer.partition(b"\r\n\r\n")[2])["passes"])

    def change(self) -> tuple[int, bool]:
        """A person's change in the portal: 1 in 100 moves a parent to the trigger stage."""
        self.sent += 1
        if self.sent % 100 == 0 and self.pool:
            deal = self.pool.pop()
            stage = f"C{self.sales}:ESTIMATE"
            self.box.call("crm.deal.update", {"id": deal, "fields": {"STAGE_ID": stage}})
            return deal, True
        deal = self.rng.choice(self.others)
        self.box.call("crm.deal.update", {"id": deal, "fields": {"COMMENTS": f"e{self.sent}"}})
        return deal, False

    async def run(self, seconds: float, rate: float, slow: int) -> dict[str, Any]:
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits) as http:
            slow_tasks = [
                asyncio.create_task(slow_client(self.host, self.port, i % 2 == 0, stop))
                for i in range(slow)
            ]
            while (await http.get("/healthz")).json()["passes"] < 1:
                await asyncio.sleep(0.1)  # the first pass (a full read) is not the flood's
            self.began = time.perf_counter()
            helpers = [
                asyncio.create_task(self.watch(http)),
                asyncio.create_task(self.sample()),
                asyncio.create_task(self.bodies([seconds * 0.3, seconds * 0.7])),
            ]
            tasks = []
            while (now := time.perf_counter() - self.began) < seconds:
                while self.sent < int(now * rate):
                    tasks.append(asyncio.create_task(self.one(*self.change())))
                await asyncio.sleep(0.002)
            await asyncio.gather(*tasks, helpers[2])
            flood_end = time.perf_counter() - self.began
            deadline = time.perf_counter() + 120
            while set(self.triggered) - set(self.handled) and time.perf_counter() < deadline:
                await asyncio.sleep(0.5)
            stop.set()
            cuts = sum(await asyncio.gather(*slow_tasks))
            for helper in helpers:
                helper.cancel()
            final = (await http.get("/healthz")).json()
        return self.figures(flood_end, final, slow, cuts)

    def figures(self, took: float, final: dict[str, Any], slow: int, cuts: int) -> dict[str, Any]:
        refs = Counter(children(self.box, self.logistics))
        waited = [self.handled[p] - self.triggered[p] for p in self.triggered if p in self.handled]
        acks, memory = sorted(self.acks), self.memory
        return {
            "events_sent": self.sent,
            "seconds": round(took, 1),
            "events_per_second": round(self.sent / took, 1),
            "acks": len(acks),
            "ack_failures": dict(self.failures),
            "ack_p50_ms": round(statistics.median(acks) * 1000, 1),
            "ack_p99_ms": round(acks[int(len(acks) * 0.99)] * 1000, 1),
            "ack_max_ms": round(acks[-1] * 1000, 1),
            "acked_within_1s": sum(a < 1 for a in acks),
            "triggered_parents": len(self.triggered),
            "parents_handled": len(set(self.triggered) & set(self.handled)),
            "passes_waited_max": max(waited) if waited else None,
            "passes_waited": dict(sorted(Counter(waited).items())),
            "passes": final["passes"],
            "events_counted": final["events"],
            "duplicate_children": sum(n - 1 for n in refs.values() if n > 1),
            "missing_children": len(set(self.triggered) - {int(r[2:]) for r in refs}),
            "rss_mb": {f"{t:.0f}s": round(m, 1) for t, m in memory[::10] + memory[-1:]},
            "rss_growth_after_10s_mb": round(
                memory[-1][1] - memory[min(10, len(memory) - 1)][1], 1
            ),
            "refuse_10mb_ms": [round(b * 1000, 1) for b in self.big],
            "slow_clients": slow,
            "slow_connections_cut": cuts,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=200, help="events per second")
    parser.add_argument("--slow", type=int, default=300, help="slow clients held open")
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="b24kit-bench-serve-"))
    seeded = Sandbox(SandboxConfig(db=str(work / "portal.sqlite"), limits="off"))
    seeded_ids = seed(seeded)
    # the service meets the standard plan's limits and the latency of a distant portal
    box = seeded.clone(limits="standard", latency_ms=args.latency_ms)
    seeded.close()
    time.sleep(6)  # past the 5-second overlap of a pass's mark: the seed is not "changed"
    portal = start_in_thread(box)
    log = work / "service.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "b24kit",
            "sync",
            str(BLUEPRINT),
            "--serve",
            "--port",
            "0",
            "--portal",
            box.webhook_url(portal.base_url),
            "--state-dir",
            str(work / "state"),
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),  # the access log: a line per event (a pipe would fill)
        text=True,
        cwd=work,
        env={**os.environ, "B24_APP_TOKEN": TOKEN, "XDG_CONFIG_HOME": str(work)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "Listening for events on " not in line:
            raise SystemExit(
                f"sync --serve did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        url = line.split("Listening for events on ", 1)[1].split()[0].rstrip("/")
        flood = Flood(box, url, seeded_ids, proc.pid)
        figures = asyncio.run(flood.run(args.seconds, args.rate, args.slow))
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        err = log.read_text()
        figures["sigterm_exit"] = proc.returncode
        figures["sigterm_stop_s"] = round(time.perf_counter() - started, 2)
        figures["service_tracebacks"] = err.count("Traceback")
        figures["service_log"] = str(log)
    finally:
        proc.kill()
        portal.stop()
    figures["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cpu, Python {platform.python_version()}"
    )
    figures["portal"] = f"sandbox, standard limits, {args.latency_ms:g} ms latency"
    checks = {
        "every event acknowledged within 1 s": figures["acked_within_1s"] == figures["events_sent"],
        "every parent handled within 2 passes": figures["parents_handled"]
        == figures["triggered_parents"]
        and (figures["passes_waited_max"] or 0) <= 2,
        "memory flat (under 10 MB growth after the first 10 s)": figures["rss_growth_after_10s_mb"]
        < 10,
        "0 duplicate children": figures["duplicate_children"] == 0,
        "10 MB unauthenticated body refused in under 100 ms": max(figures["refuse_10mb_ms"]) < 100,
        "SIGTERM: exit 0": figures["sigterm_exit"] == 0,
    }
    figures["checks"] = checks
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
    else:
        for key, value in figures.items():
            if key != "checks":
                print(f"{key:28} {value}")
        for name, ok in checks.items():
            print(f"{'PASS' if ok else 'FAIL'}  {name}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
