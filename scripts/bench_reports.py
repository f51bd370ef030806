#!/usr/bin/env python3
"""``report projects`` on 10,000 and 100,000 deals of the company blueprint (a third
parents in the sales directions, each with its estimate in logistics, half of them also an
engineering task; every move in the stage history), through the sandbox over HTTP
(standard limits, 100 ms latency, burst spent). Prints, per size, the time to read what
the reports need (reports/read.py's ``read_portal``: the reader alone) against the whole
``report projects`` (the same reading, the table, every row written to a CSV file), the
report's share over the read, and the report's peak memory (a second, traced run:
tracemalloc slows every allocation).

    python scripts/bench_reports.py [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from b24kit.blueprint.loader import load_blueprint  # noqa: E402
from b24kit.cli.reports import render  # noqa: E402
from b24kit.reports.build import build_report  # noqa: E402
from b24kit.reports.read import Filters, read_portal, resolve_scope  # noqa: E402
from b24kit.sandbox import Sandbox, SandboxConfig  # noqa: E402
from bench_client import client, deploy, serve, spend_burst  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINT = ROOT / "blueprints/company.yaml"
DIRECTIONS = ["sales_turnkey", "sales_rental", "sales_transport", "sales_cold"]


def seed(db: Path, deals: int) -> None:
    """Straight into the sandbox's database (one transaction), as the other benchmarks do."""
    clock = [1_700_000_000.0]
    box = Sandbox(SandboxConfig(db=str(db), limits="off", clock=lambda: clock[0]))
    cats = deploy(box, BLUEPRINT)
    codes = {p.code: p.name for p in load_blueprint(BLUEPRINT)[0].deal.pipelines}
    sales = [cats[codes[c]] for c in DIRECTIONS]
    logistics, engineers = cats["Логистика"], cats["Инженеры"]
    add, update = box.portal.add_item, box.portal.update_item
    made = 0
    with box.db.transaction():
        i = 0
        while made < deals:
            cat = sales[i % len(sales)]
            source = ("WEB", "ADVERTISING", "CALL")[i % 3]
            parent = add(
                2,
                {"CATEGORY_ID": cat, "OPPORTUNITY": 100000 + i, "SOURCE_ID": source},
                2 + i % 3,
                "old",
            )
            clock[0] += 60
            update(2, parent, {"STAGE_ID": f"C{cat}:ESTIMATE"}, 1, "old")
            child = add(
                2,
                {
                    "CATEGORY_ID": logistics,
                    "OPPORTUNITY": 90000,
                    "ASSIGNED_BY_ID": 4 + 2 * (i % 2),
                    "UF_CRM_PARENT_DEAL": f"D_{parent}",
                },
                1,
                "old",
            )
            clock[0] += 3600
            update(2, child, {"STAGE_ID": f"C{logistics}:APPROVAL"}, 1, "old")
            made += 2
            if i % 2 == 0 and made < deals:
                add(2, {"CATEGORY_ID": engineers, "UF_CRM_PARENT_DEAL": f"D_{parent}"}, 7, "old")
                made += 1
            i += 1
    box.close()


async def read_only(url: str, bp: object) -> tuple[float, int, int]:
    async with client(url) as c:
        started = time.perf_counter()
        scope = await resolve_scope(c, bp)  # type: ignore[arg-type]
        store = await read_portal(c, scope, Filters())
        seconds = time.perf_counter() - started
        counts = store.deals, store.history_rows
        store.close()
        return seconds, *counts


async def report(url: str, bp: object, out: Path) -> tuple[float, int]:
    async with client(url) as c:
        started = time.perf_counter()
        with await build_report(c, bp, ["projects"]) as made:  # type: ignore[arg-type]
            render(made.tables[0], "csv", out)
            rows = len(made.tables[0].rows)
        return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    bp = load_blueprint(BLUEPRINT)[0]
    results = []
    print(f"{'deals':>8} {'history':>8} {'read s':>8} {'report s':>9} {'over':>6} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            db = Path(tmp) / f"r{size}.sqlite"
            seed(db, size)
            out = Path(tmp) / "projects.csv"
            # each run on a freshly started sandbox: the portal's operating-time budget
            # (per method, 10 minutes) spent by one run must not slow the next
            with serve(db, args.latency_ms) as url:
                spend_burst(url)
                reading, deals, history = asyncio.run(read_only(url, bp))
            with serve(db, args.latency_ms) as url:
                spend_burst(url)
                seconds, rows = asyncio.run(report(url, bp, out))
            with serve(db, args.latency_ms) as url:
                spend_burst(url)
                tracemalloc.start()
                asyncio.run(report(url, bp, out))
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            row = {
                "deals": deals,
                "history_rows": history,
                "projects": rows,
                "read_seconds": round(reading, 1),
                "report_seconds": round(seconds, 1),
                "report_over_read": round(seconds / reading - 1, 3),
                "peak_memory_mb": round(peak / 1e6, 1),
            }
            results.append(row)
            print(
                f"{deals:>8} {history:>8} {reading:>8.1f} {seconds:>9.1f} "
                f"{row['report_over_read']:>6.1%} {row['peak_memory_mb']:>8}",
                flush=True,
            )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps({"machine": machine, "reports": results}))


if __name__ == "__main__":
    main()
