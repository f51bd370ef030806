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

The sandbox-* jobs replay a job's recorded requests to Sandbox.handle_sync alone (the same
bytes, no client): the sandbox's own CPU with less noise.

    python scripts/bench_inprocess.py [--jobs dryrun,migrate,read,sandbox-migrate] [--file]
        [--rows 20000] [--repeat 3] [--profile dryrun]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
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


Request = tuple[str, str, Any, str, bytes]


def record(box: Sandbox, job: Callable[[Sandbox], None]) -> list[Request]:
    """The requests ``job`` sends to ``box``, as Sandbox.handle_sync gets them."""
    seen: list[Request] = []
    handle_sync = Sandbox.handle_sync

    def spy(self: Sandbox, *request: Any) -> Any:
        seen.append(request)  # type: ignore[arg-type]
        return handle_sync(self, *request)

    Sandbox.handle_sync = spy  # type: ignore[method-assign]
    try:
        job(box)
    finally:
        Sandbox.handle_sync = handle_sync  # type: ignore[method-assign]
    return seen


def replay(box: Sandbox, requests: list[Request]) -> None:
    """The same requests, straight to the sandbox: its own CPU only, no client."""
    for request in requests:
        box.handle_sync(*request)


def on_file(box: Sandbox, folder: Path) -> Callable[[], Sandbox]:
    """Copies of ``box`` in a database file each (as the CLI's ``-p sandbox`` has it)."""
    import itertools
    import sqlite3

    count = itertools.count()

    def make() -> Sandbox:
        path = folder / f"copy{next(count)}.sqlite"
        target = sqlite3.connect(path)
        box.db.conn.backup(target)
        target.close()
        return Sandbox(db=str(path), token=box.token, limits="off")

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs",
        default="dryrun,migrate,read",
        help="of dryrun, migrate, read and sandbox-dryrun, sandbox-migrate, sandbox-read "
        "(the job's requests replayed to the sandbox alone)",
    )
    parser.add_argument(
        "--file", action="store_true", help="each portal in a database file, as the CLI has it"
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="", help="print this job's cProfile top 30")
    args = parser.parse_args()
    jobs = args.jobs.split(",")

    deployed = Sandbox(limits="off")
    deploy(deployed, ROOT / "blueprints/company.yaml")
    folder = Path(tempfile.mkdtemp())

    def copies(box: Sandbox) -> Callable[[], Sandbox]:
        return on_file(box, folder) if args.file else box.clone

    def top(job: str) -> int:
        return 30 if args.profile == job else 0

    def both(name: str, box: Sandbox, job: Callable[[Sandbox], None]) -> None:
        """The job with its client, then its requests replayed to the sandbox alone."""
        setup = copies(box)
        if name in jobs:
            measure(name, setup, job, args.repeat, top(name))
        if f"sandbox-{name}" in jobs:
            requests = record(setup(), job)
            measure(
                f"sandbox-{name}",
                setup,
                lambda b: replay(b, requests),
                args.repeat,
                top(f"sandbox-{name}"),
            )

    try:
        if "dryrun" in args.jobs:
            migrated = deployed.clone()
            migrate(migrated, dry_run=False)
            both("dryrun", migrated, lambda b: migrate(b, True))
        if "migrate" in args.jobs:
            both("migrate", deployed, lambda b: migrate(b, False))
        if "read" in args.jobs:
            seeded = Sandbox(limits="off")
            with seeded.db.transaction():
                for i in range(args.rows):
                    seeded.portal.add_item(
                        2, {"TITLE": f"Deal {i}", "OPPORTUNITY": i % 1000}, 1, "old"
                    )
            both("read", seeded, lambda b: read(b, args.rows))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
