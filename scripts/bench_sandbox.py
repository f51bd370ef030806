#!/usr/bin/env python3
"""How many simple calls per second the sandbox answers in-process, limits off.

It must never be the bottleneck of a client benchmark: the real ceiling is the portal's
rate limit (2 requests/s, 50 commands each = 100 writes/s on a standard plan), and the
sandbox should answer far faster than that. Target: 1,500 calls/s or more.

    python scripts/bench_sandbox.py [--calls 5000] [--concurrency 8] [--lookup-deals 20000]

``--lookup-deals N`` adds a case: the executor's lookup of a write by its key
(crm.deal.list filtered by ORIGINATOR_ID + ORIGIN_ID) among N deals. The keys are
indexed, so it costs about what a crm.deal.get does whatever N is (issue 15).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time

import httpx

from b24kit.sandbox import Sandbox


async def run(
    transport: httpx.AsyncBaseTransport,
    url: str,
    method: str,
    payloads: list[dict],
    concurrency: int,
) -> float:
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)

    async with httpx.AsyncClient(transport=transport, base_url=url) as client:

        async def worker() -> None:
            while not queue.empty():
                payload = queue.get_nowait()
                response = await client.post(method, json=payload)
                assert response.status_code == 200, response.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lookup-deals", type=int, default=0, metavar="N")
    args = parser.parse_args()

    box = Sandbox(limits="off")
    deals = max(1000, args.lookup_deals)
    for i in range(deals):
        box.call(
            "crm.deal.add",
            {
                "fields": {
                    "TITLE": f"Deal {i}",
                    "OPPORTUNITY": i,
                    "ORIGINATOR_ID": "bench",
                    "ORIGIN_ID": f"r{i}",
                }
            },
        )
    hook = box.webhook_url("http://sandbox.local")
    cases = {
        "crm.deal.get": ("crm.deal.get", [{"id": 1 + i % 1000} for i in range(args.calls)]),
        "crm.deal.add": (
            "crm.deal.add",
            [{"fields": {"TITLE": f"n{i}"}} for i in range(args.calls)],
        ),
        "user.current": ("user.current", [{} for _ in range(args.calls)]),
    }
    if args.lookup_deals:
        cases["lookup by key"] = (
            "crm.deal.list",
            [
                {
                    "filter": {"ORIGINATOR_ID": "bench", "ORIGIN_ID": f"r{i * 7 % deals}"},
                    "select": ["ID"],
                }
                for i in range(args.calls)
            ],
        )
    results = {}
    for name, (method, payloads) in cases.items():
        for label, transport in (
            ("transport", box.transport()),
            ("asgi", httpx.ASGITransport(app=box)),
        ):
            seconds = asyncio.run(run(transport, hook, method, payloads, args.concurrency))
            rate = len(payloads) / seconds
            results[f"{name} via {label}"] = round(rate)
            print(
                f"{name:14} via {label:9}: {rate:8.0f} calls/s  ({len(payloads)} calls, "
                f"{seconds:.2f} s)"
            )
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "python": platform.python_version(),
                "calls_per_second": results,
            }
        )
    )


if __name__ == "__main__":
    main()
