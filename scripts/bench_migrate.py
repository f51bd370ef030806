#!/usr/bin/env python3
"""Migrate a generated 10,000-row project sheet into the sandbox (standard limits, 100 ms
latency, burst spent) and print rows per second and the share of the write ceiling used.

The ceiling is 100 writes/s (2 requests/s x 50 commands). A row makes about three writes
(parent, child, comment; contacts and contractors are shared), so the share is measured on
commands, the portal's unit of work.

    python scripts/bench_migrate.py [--rows 10000] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from b24kit.blueprint.apply import apply_blueprint  # noqa: E402
from b24kit.blueprint.loader import load_blueprint  # noqa: E402
from b24kit.migrate.run import execute, load_mapping, prepare  # noqa: E402
from bench_client import client, serve, spend_burst  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts/make_example_sheet.py"),
                "--rows",
                str(args.rows),
                "--out",
                str(work / "projects.csv"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        mapping = (ROOT / "examples/projects.mapping.yaml").read_text(encoding="utf-8")
        (work / "m.yaml").write_text(
            mapping.replace(
                "blueprint: ../blueprints/company.yaml",
                f"blueprint: {ROOT / 'blueprints/company.yaml'}",
            ),
            encoding="utf-8",
        )
        shutil.copy(ROOT / "blueprints/company.yaml", work / "company.yaml")
        with serve(work / "portal.sqlite", args.latency_ms) as url:

            async def go() -> dict[str, object]:
                async with client(url, spent=False) as c:
                    await apply_blueprint(c, load_blueprint(ROOT / "blueprints/company.yaml")[0])
                spend_burst(url)
                async with client(url) as c:
                    started = time.perf_counter()
                    result = await prepare(c, load_mapping(work / "m.yaml"), work)
                    read_s = time.perf_counter() - started
                    written = time.perf_counter()
                    await execute(c, result)
                    write_s = time.perf_counter() - written
                    total = time.perf_counter() - started
                    commands = len(result.plan.commands)
                    return {
                        "rows": result.rows,
                        "valid_rows": result.records,
                        "rejected_rows": result.rejected_rows,
                        "commands": commands,
                        "failed": len(result.failed),
                        "read_seconds": round(read_s, 1),
                        "write_seconds": round(write_s, 1),
                        "seconds": round(total, 1),
                        "rows_per_s": round(result.rows / total, 1),
                        "writes_per_s": round(commands / write_s, 1),
                        "share_of_write_ceiling": round(commands / write_s / 100, 3),
                        "requests": c.requests,
                    }

            figures = asyncio.run(go())
    figures["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"{figures['rows']} rows ({figures['valid_rows']} valid) in {figures['seconds']} s: "
        f"{figures['rows_per_s']} rows/s; {figures['commands']} writes at "
        f"{figures['writes_per_s']}/s = {figures['share_of_write_ceiling']:.1%} of the ceiling"
    )
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
