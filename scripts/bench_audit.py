#!/usr/bin/env python3
"""Audit a portal of 10,000 and of 100,000 deals (half parents, half their children, with
a few findings) through the sandbox over HTTP (standard limits, 100 ms latency, burst spent).
Prints rows per second while reading and end to end, each as a share of the read ceiling
(5,000 rows/s), and the audit's peak memory at each size. Memory is measured in a second,
traced run: tracemalloc slows every allocation, so it would distort the timed one.

    python scripts/bench_audit.py [--sizes 10000,100000]
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
from b24kit.links.audit import audit_deals, read_link_deals  # noqa: E402
from b24kit.links.run import audit_portal, links_for  # noqa: E402
from b24kit.sandbox import Sandbox, SandboxConfig  # noqa: E402
from bench_client import READ_CEILING, client, deploy, serve, spend_burst  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINT = ROOT / "blueprints/example.yaml"


def seed(db: Path, deals: int) -> None:
    box = Sandbox(SandboxConfig(db=str(db), limits="off"))
    cats = deploy(box, BLUEPRINT)
    sales, logistics = cats["Продажи"], cats["Логистика"]
    with box.db.transaction():
        for i in range(deals // 2):
            parent = box.portal.add_item(
                2,
                {"CATEGORY_ID": sales, "STAGE_ID": f"C{sales}:ESTIMATE", "TITLE": f"p{i}"},
                1,
                "old",
            )
            child = box.portal.add_item(
                2,
                {
                    "CATEGORY_ID": logistics,
                    "STAGE_ID": f"C{logistics}:NEW",
                    "UF_CRM_PARENT_DEAL": f"D_{parent}",
                },
                1,
                "old",
            )
            mirror = "Новая оценка" if i % 100 else "устарело"  # 1% stale mirrors
            box.portal.update_item(
                2,
                parent,
                {"UF_CRM_CHILD_DEAL": f"D_{child}", "UF_CRM_CHILD_STAGE": mirror},
                1,
                "old",
            )
    box.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    bp = load_blueprint(BLUEPRINT)[0]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            db = Path(tmp) / f"a{size}.sqlite"
            seed(db, size)
            with serve(db, args.latency_ms) as url:
                spend_burst(url)

                async def timed() -> tuple[float, float, int, int]:
                    async with client(url) as c:
                        started = time.perf_counter()
                        links = await links_for(c, bp)
                        begun = time.perf_counter()
                        index = await read_link_deals(c, links[0])
                        reading = time.perf_counter() - begun
                        findings = audit_deals(links[0], index)
                        return (time.perf_counter() - started, reading, index.count, len(findings))

                seconds, reading, read, findings = asyncio.run(timed())
                spend_burst(url)

                async def traced() -> int:
                    async with client(url) as c:
                        tracemalloc.start()
                        await audit_portal(c, bp)
                        peak = tracemalloc.get_traced_memory()[1]
                        tracemalloc.stop()
                        return peak

                peak = asyncio.run(traced())
            row = {
                "deals": read,
                "findings": findings,
                "seconds": round(seconds, 1),
                "read_seconds": round(reading, 1),
                "read_rows_per_s": round(read / reading),
                "read_share_of_ceiling": round(read / reading / READ_CEILING, 3),
                "rows_per_s": round(read / seconds),
                "share_of_read_ceiling": round(read / seconds / READ_CEILING, 3),
                "peak_memory_mb": round(peak / 1e6, 1),
            }
            print(
                f"{read} deals: reading {row['read_rows_per_s']} rows/s = "
                f"{row['read_share_of_ceiling']:.1%} of the read ceiling; end to end "
                f"{row['rows_per_s']} rows/s = {row['share_of_read_ceiling']:.1%} "
                f"({seconds:.1f} s, {findings} findings); peak memory "
                f"{row['peak_memory_mb']} MB",
                flush=True,
            )
            results.append(row)
    print(
        json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "audits": results})
    )


if __name__ == "__main__":
    main()
