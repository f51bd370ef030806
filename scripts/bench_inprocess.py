#!/usr/bin/env python3
"""CPU seconds of the request path in one process (client and sandbox in-process, no limits),
after a warm-up, for the jobs the test suite spends most of its time in:

  dryrun   a dry run (prepare) of examples/projects.mapping.yaml on a portal where the
           example was already migrated (the company blueprint applied, then the example)
  migrate  the whole example migration (prepare + execute) onto a freshly deployed portal
  read     reading --rows deals with read_all

Each job prints its CPU seconds and those of the sandbox's share (Sandbox.handle_sync),
each the least of --repeat runs (this machine is shared: the least is the least noisy);
--profile NAME prints that job's cProfile top functions.

    python scripts/bench_inprocess.py [--jobs dryrun,migrate,read] [--rows 20000] [--profile dryrun]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from b24kit.client import B24Client, Bucket, WebhookAuth, parse_webhook, read_all  # noqa: E402
from b24kit.migrate.run import execute, load_mapping, prepare  # noqa: E402
from b24kit.sandbox import Sandbox  # noqa: E402
from bench_client import deploy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "examples/projects.mapping.yaml"


def client(box: Sandbox) -> B24Client:
    hook = parse_webhook(box.webhook_url("http://sandbox.local"))
    return B24Client(WebhookAuth(hook), transport=box.transport(), bucket=Bucket(1e9, 1e9))


def migrate(box: Sandbox, dry_run: bool) -> None:
    async def go() -> None:
        async with client(box) as c:
            result = await prepare(c, load_mapping(MAPPING), MAPPING.parent)
            if not dry_run:
                await execute(c, result)
                assert not result.failed, result.failed[:3]

    asyncio.run(go())


def read(box: Sandbox, rows: int) -> None:
    async def go() -> int:
        async with client(box) as c:
            return len(await read_all(c, "crm.deal.list", {"select": ["ID", "TITLE"]}))

    assert asyncio.run(go()) == rows


def cpu(job: Callable[[], None]) -> tuple[float, float]:
    """CPU seconds of the job, and of them those spent in Sandbox.handle_sync."""
    inside = 0.0
    handle_sync = Sandbox.handle_sync

    def timed(self: Sandbox, *args: Any) -> Any:
        nonlocal inside
        started = time.process_time()
        try:
            return handle_sync(self, *args)
        finally:
            inside += time.process_time() - started

    Sandbox.handle_sync = timed  # type: ignore[method-assign]
    try:
        started = time.process_time()
        job()
        return time.process_time() - started, inside
    finally:
        Sandbox.handle_sync = handle_sync  # type: ignore[method-assign]


def measure(
    name: str, setup: Callable[[], Any], run: Callable[[Any], None], repeat: int, top: int
) -> None:
    run(setup())  # warm-up: imports, caches of the first call
    runs = []
    for _ in range(repeat):
        box = setup()
        runs.append(cpu(lambda box=box: run(box)))
    total = min(r[0] for r in runs)
    inside = min(r[1] for r in runs)
    print(f"{name}: {total:.3f} s CPU, of which the sandbox {inside:.3f} s", flush=True)
    if top:
        profile = cProfile.Profile()
        box = setup()
        profile.runcall(run, box)
        pstats.Stats(profile).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="dryrun,migrate,read")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="", help="print this job's cProfile top 30")
    args = parser.parse_args()
    jobs = args.jobs.split(",")

    deployed = Sandbox(limits="off")
    deploy(deployed, ROOT / "blueprints/company.yaml")

    def fresh() -> Sandbox:
        return deployed.clone()

    def top(job: str) -> int:
        return 30 if args.profile == job else 0

    if "dryrun" in jobs:
        migrated = fresh()
        migrate(migrated, dry_run=False)
        measure("dryrun", migrated.clone, lambda b: migrate(b, True), args.repeat, top("dryrun"))
    if "migrate" in jobs:
        measure("migrate", fresh, lambda b: migrate(b, False), args.repeat, top("migrate"))
    if "read" in jobs:
        seeded = Sandbox(limits="off")
        with seeded.db.transaction():
            for i in range(args.rows):
                seeded.portal.add_item(2, {"TITLE": f"Deal {i}", "OPPORTUNITY": i % 1000}, 1, "old")
        measure("read", seeded.clone, lambda b: read(b, args.rows), args.repeat, top("read"))


if __name__ == "__main__":
    main()
