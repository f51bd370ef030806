#!/usr/bin/env python3
"""Writes at the limit (issue 15, item 4): crm.deal.add through the executor against the
sandbox served over HTTP with standard limits and a realistic latency.

Jobs:
  fresh   N writes from a fresh bucket (the burst unspent), b24kit and fast_bitrix24 in
          the same run, each against its own new sandbox                (--fresh, 2,000)
  faults  N writes with the burst spent under 20% of one fault kind at a time (500, 503,
          drop, lost): writes/s as a share of the 100 writes/s ceiling, with the deals on
          the portal counted for duplicates and losses                  (--writes, 2,000)

    python scripts/bench_writes.py [--jobs fresh,faults] [--rounds 3] [--kinds 500,503,drop,lost]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from b24kit.client import B24Client, Bucket, Executor, WebhookAuth, parse_webhook  # noqa: E402
from b24kit.portal import commands as cmd  # noqa: E402
from b24kit.sandbox import Sandbox, SandboxConfig  # noqa: E402
from bench_client import WRITE_CEILING, serve, spend_burst  # noqa: E402


def fields(i: int) -> dict[str, Any]:
    return {"TITLE": f"Bench {i}", "ORIGINATOR_ID": "bench", "ORIGIN_ID": f"w{i}"}


def on_portal(db: Path, count: int) -> dict[str, int]:
    """Deals the run made: duplicates (one ORIGIN_ID twice) and losses (none)."""
    box = Sandbox(SandboxConfig(db=str(db), limits="off"))
    rows = box.db.execute(
        "SELECT json_extract(data, '$.ORIGIN_ID') AS o, COUNT(*) AS n FROM items "
        "WHERE entity_type_id = 2 AND json_extract(data, '$.ORIGINATOR_ID') = 'bench' "
        "GROUP BY o"
    ).fetchall()
    box.close()
    seen = {str(r["o"]): int(r["n"]) for r in rows}
    return {
        "deals_on_portal": sum(seen.values()),
        "duplicates": sum(n - 1 for n in seen.values()),
        "lost": sum(1 for i in range(count) if f"w{i}" not in seen),
    }


def warm() -> None:
    """Import what httpx's first request imports (anyio's asyncio backend, ~0.1-0.2 s),
    as fast_bitrix24 imports aiohttp when it is imported: neither is timed."""
    import anyio._backends._asyncio  # noqa: F401


def client(url: str, spent: bool) -> B24Client:
    """b24kit as a migration uses it: the standard plan's bucket, default in-flight cap."""
    bucket = Bucket.for_plan("standard")
    if spent:
        bucket.spend_burst()
    return B24Client(WebhookAuth(parse_webhook(url)), bucket=bucket)


def b24kit_writes(
    db: Path, latency: float, count: int, faults: str | None, spent: bool
) -> dict[str, Any]:
    with serve(db, latency, faults) as url:
        if spent:
            spend_burst(url)

        warm()

        async def go() -> tuple[float, int, int]:
            async with client(url, spent) as c:
                commands = [cmd.entity_add("deal", fields(i)) for i in range(count)]
                started = time.perf_counter()
                outcomes = await Executor(c).run(commands)
                return time.perf_counter() - started, sum(not o.ok for o in outcomes), c.requests

        cpu = time.process_time()
        seconds, failed, requests = asyncio.run(go())
        cpu = time.process_time() - cpu
    rate = count / seconds
    return {
        "seconds": round(seconds, 2),
        "writes_per_s": round(rate, 1),
        "share_of_ceiling": round(rate / WRITE_CEILING, 3),
        "requests": requests,
        "client_cpu_s": round(cpu, 2),
        "failed": failed,
        **on_portal(db, count),
    }


def fb24_writes(db: Path, latency: float, count: int) -> dict[str, Any]:
    try:
        from fast_bitrix24 import BitrixAsync
    except ImportError:
        return {"skipped": "fast_bitrix24 is not installed (pip install fast_bitrix24)"}
    import logging

    logging.getLogger("fast_bitrix24").setLevel(logging.CRITICAL)
    with serve(db, latency) as url:

        async def go() -> float:
            bx = BitrixAsync(url, verbose=False)
            started = time.perf_counter()
            await bx.call("crm.deal.add", [{"fields": fields(i)} for i in range(count)])
            return time.perf_counter() - started

        cpu = time.process_time()
        seconds = asyncio.run(go())
        cpu = time.process_time() - cpu
    return {
        "seconds": round(seconds, 2),
        "writes_per_s": round(count / seconds, 1),
        "client_cpu_s": round(cpu, 2),
        **on_portal(db, count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="fresh,faults")
    parser.add_argument("--fresh", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="fresh-bucket runs of each")
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--kinds", default="500,503,drop,lost")
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    jobs = args.jobs.split(",")
    results: dict[str, Any] = {"latency_ms": args.latency_ms}
    with tempfile.TemporaryDirectory() as tmp:
        if "fresh" in jobs:
            jobs_fresh = {
                "b24kit": lambda db: b24kit_writes(db, args.latency_ms, args.fresh, None, False),
                "fast_bitrix24": lambda db: fb24_writes(db, args.latency_ms, args.fresh),
            }
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs_fresh}
            for n in range(args.rounds):  # the order alternates: a loaded machine drifts
                for name in sorted(jobs_fresh, reverse=n % 2 == 1):
                    got = jobs_fresh[name](Path(tmp) / f"fresh_{name}_{n}.sqlite")
                    runs[name].append(got)
                    print(f"{args.fresh} writes, fresh bucket, {name}:", got, flush=True)
            for name, got in runs.items():
                seconds = statistics.median(r.get("seconds", 0.0) for r in got)
                results[f"fresh_{name}"] = {**got[-1], "seconds": seconds}
                results[f"fresh_{name}"]["writes_per_s"] = round(args.fresh / seconds, 1)
            print("fresh bucket, median of", args.rounds, {k: results[f"fresh_{k}"] for k in runs})
        if "faults" in jobs:
            for kind in args.kinds.split(","):
                spec = f"{kind}={args.rate},seed=1"
                results[f"faults_{kind}"] = b24kit_writes(
                    Path(tmp) / f"faults_{kind}.sqlite", args.latency_ms, args.writes, spec, True
                )
                print(f"{args.writes} writes, burst spent, {spec}:", results[f"faults_{kind}"])
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
