#!/usr/bin/env python3
"""Client throughput against the sandbox portal at the standard plan's ceiling.

The ceiling is the portal's rate limit: 2 requests/s sustained, 50 commands a batch, so
100 writes/s and 5,000 rows/s (50 pages of 50 rows a request). Each job starts with the
bucket full (the burst spent), so it runs at the sustained rate. The sandbox runs in its
own process, served over HTTP with standard limits and a realistic latency.

Jobs (all by default):
  writes  N crm.deal.add through the executor            (--writes, default 10,000)
  read    a full read of R deals with b24kit's paged reader (--rows, default 100,000);
          --fresh-bucket: from a fresh bucket (the burst unspent) instead
  fb24    the same read with fast_bitrix24's get_all, on the same sandbox (burst spent,
          then from a fresh bucket)
  compare both readers from a fresh bucket on a table small enough (--compare-rows) for
          fast_bitrix24's counted offset pages to stay inside the operating budget
  faults  N idempotent creates under 5% each of 500, 503, dropped and lost answers:
          the portal must end with exactly N deals

    python scripts/bench_client.py [--jobs writes,read,fb24,faults] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from b24kit.client import (
    B24Client,
    Bucket,
    Executor,
    WebhookAuth,
    parse_webhook,
    read_all,
)
from b24kit.portal import commands as cmd
from b24kit.sandbox import Sandbox, SandboxConfig

WRITE_CEILING = 100.0  # writes/s: 2 requests/s x 50 commands
READ_CEILING = 5000.0  # rows/s: 2 requests/s x 50 pages x 50 rows


@contextmanager
def serve(db: Path, latency_ms: float, faults: str | None = None) -> Iterator[str]:
    args = [
        sys.executable,
        "-m",
        "b24kit",
        "sandbox",
        "serve",
        "--port",
        "0",
        "--db",
        str(db),
        "--limits",
        "standard",
        "--latency-ms",
        str(latency_ms),
    ]
    if faults:
        args += ["--faults", faults]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("Inbound webhook URL:"):
            url = line.split(":", 1)[1].strip()
            break
    if not url:
        raise SystemExit(f"sandbox did not start: {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def spend_burst(url: str) -> None:
    """Fire requests until the portal's bucket refuses one: it is full from then on."""
    with httpx.Client(timeout=30) as http:
        refused = 0
        for _ in range(400):
            try:
                status = http.post(url + "server.time").status_code
            except httpx.TransportError:
                continue  # an injected fault, not the bucket
            # under injected 503 faults one refusal proves nothing: wait for a run of them
            refused = refused + 1 if status == 503 else 0
            if refused >= 3:
                return
    raise SystemExit("the sandbox never refused a request: are its limits on?")


def client(url: str, spent: bool = True) -> B24Client:
    bucket = Bucket.for_plan("standard")
    if spent:
        bucket.spend_burst()
    return B24Client(WebhookAuth(parse_webhook(url)), bucket=bucket, max_in_flight=8)


def job_writes(db: Path, latency: float, count: int, faults: str | None = None) -> dict[str, Any]:
    with serve(db, latency, faults) as url:
        spend_burst(url)

        async def go() -> tuple[float, list[Any], int]:
            async with client(url) as c:
                commands = [
                    cmd.entity_add(
                        "deal",
                        {"TITLE": f"Bench {i}", "ORIGINATOR_ID": "bench", "ORIGIN_ID": f"w{i}"},
                    )
                    for i in range(count)
                ]
                started = time.perf_counter()
                outcomes = await Executor(c, max_in_flight=4).run(commands)
                return time.perf_counter() - started, outcomes, c.requests

        seconds, outcomes, requests = asyncio.run(go())
    box = Sandbox(SandboxConfig(db=str(db), limits="off"))
    on_portal = box.portal.count_items(2, "json_extract(data, '$.ORIGINATOR_ID') = 'bench'")
    box.close()
    rate = count / seconds
    return {
        "commands": count,
        "seconds": round(seconds, 1),
        "writes_per_s": round(rate, 1),
        "share_of_ceiling": round(rate / WRITE_CEILING, 3),
        "requests": requests,
        "failed": sum(not o.ok for o in outcomes),
        "deals_on_portal": on_portal,
    }


def deploy(box: Sandbox, blueprint: Path) -> dict[str, int]:
    """Apply ``blueprint`` to ``box`` in-process (no limits); the deal pipelines' ids by
    name, for seeding deals into them."""
    from b24kit.blueprint.apply import apply_blueprint
    from b24kit.blueprint.loader import load_blueprint

    async def go() -> None:
        hook = parse_webhook(box.webhook_url("http://x"))
        async with B24Client(
            WebhookAuth(hook), transport=box.transport(), bucket=Bucket(1e9, 1e9)
        ) as c:
            await apply_blueprint(c, load_blueprint(blueprint)[0])

    asyncio.run(go())
    categories = box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    return {c["name"]: c["id"] for c in categories}


def seed_rows(db: Path, rows: int) -> None:
    box = Sandbox(SandboxConfig(db=str(db), limits="off"))
    have = box.portal.count_items(2)
    with box.db.transaction():
        for i in range(have, rows):
            box.portal.add_item(2, {"TITLE": f"Deal {i}", "OPPORTUNITY": i % 1000}, 1, "old")
    box.close()


def job_read(db: Path, latency: float, rows: int, spent: bool = True) -> dict[str, Any]:
    with serve(db, latency) as url:
        if spent:
            spend_burst(url)

        async def go() -> tuple[float, int, int]:
            async with client(url, spent) as c:
                started = time.perf_counter()
                got = await read_all(c, "crm.deal.list", {"select": ["ID", "TITLE"]})
                return time.perf_counter() - started, len(got), c.requests

        seconds, count, requests = asyncio.run(go())
    rate = count / seconds
    return {
        "rows": count,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rate),
        "share_of_ceiling": round(rate / READ_CEILING, 3),
        "requests": requests,
    }


def job_fb24(db: Path, latency: float, rows: int, cap: float, spent: bool = True) -> dict[str, Any]:
    try:
        from fast_bitrix24 import BitrixAsync
    except ImportError:
        return {"skipped": "fast_bitrix24 is not installed (pip install fast_bitrix24)"}
    import logging

    logging.getLogger("fast_bitrix24").setLevel(logging.CRITICAL)
    with serve(db, latency) as url:
        if spent:
            spend_burst(url)

        async def go() -> tuple[float, int]:
            bx = BitrixAsync(url, verbose=False)
            started = time.perf_counter()
            got = await asyncio.wait_for(
                bx.get_all("crm.deal.list", {"select": ["ID", "TITLE"]}), timeout=cap
            )
            return time.perf_counter() - started, len(got)

        started = time.perf_counter()
        try:
            seconds, count = asyncio.run(go())
        except TimeoutError:
            return {
                "rows": 0,
                "seconds": cap,
                "failed": f"did not finish within {cap:.0f} s",
                "rows_per_s_at_most": round(rows / cap),
            }
        except Exception as exc:  # noqa: BLE001  report how the peer failed
            return {
                "rows": 0,
                "seconds": round(time.perf_counter() - started, 1),
                "failed": f"{type(exc).__name__}: {str(exc)[:200]}",
            }
    rate = count / seconds
    return {
        "rows": count,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rate),
        "share_of_ceiling": round(rate / READ_CEILING, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="writes,read,fb24,compare,faults")
    parser.add_argument(
        "--compare-rows",
        type=int,
        default=10_000,
        help="table size for the fresh-bucket comparison with fast_bitrix24",
    )
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument(
        "--fresh-bucket", action="store_true", help="the read job starts with the burst unspent"
    )
    parser.add_argument(
        "--fb24-cap", type=float, default=600.0, help="give fast_bitrix24 at most this many seconds"
    )
    args = parser.parse_args()
    jobs = args.jobs.split(",")
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "latency_ms": args.latency_ms,
    }
    with tempfile.TemporaryDirectory() as tmp:
        if "writes" in jobs:
            results["writes"] = job_writes(Path(tmp) / "w.sqlite", args.latency_ms, args.writes)
            print("writes:", results["writes"], flush=True)
        if "read" in jobs or "fb24" in jobs:
            read_db = Path(tmp) / "r.sqlite"
            seed_rows(read_db, args.rows)
            if "read" in jobs:
                results["read"] = job_read(
                    read_db, args.latency_ms, args.rows, spent=not args.fresh_bucket
                )
                bucket = "fresh bucket" if args.fresh_bucket else "burst spent"
                print(f"read (b24kit, {bucket}):", results["read"], flush=True)
            if "fb24" in jobs:
                results["read_fast_bitrix24"] = job_fb24(
                    read_db, args.latency_ms, args.rows, args.fb24_cap
                )
                print("read (fast_bitrix24 get_all):", results["read_fast_bitrix24"], flush=True)
                # and once more from a fresh bucket, the condition it assumes
                results["read_fast_bitrix24_fresh_bucket"] = job_fb24(
                    read_db, args.latency_ms, args.rows, args.fb24_cap, spent=False
                )
                print(
                    "read (fast_bitrix24 get_all, fresh bucket):",
                    results["read_fast_bitrix24_fresh_bucket"],
                    flush=True,
                )
        if "compare" in jobs:
            small_db = Path(tmp) / "c.sqlite"
            seed_rows(small_db, args.compare_rows)
            results["compare_fresh_bucket"] = {
                "b24kit": job_read(small_db, args.latency_ms, args.compare_rows, spent=False),
                "fast_bitrix24": job_fb24(
                    small_db, args.latency_ms, args.compare_rows, args.fb24_cap, spent=False
                ),
            }
            print(
                f"read {args.compare_rows} rows, fresh bucket:",
                results["compare_fresh_bucket"],
                flush=True,
            )
        if "faults" in jobs:
            results["faults"] = job_writes(
                Path(tmp) / "f.sqlite",
                args.latency_ms,
                args.writes,
                faults="500=0.05,503=0.05,drop=0.05,lost=0.05,seed=7",
            )
            print("writes under faults:", results["faults"], flush=True)
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
