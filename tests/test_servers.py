"""tests/servers.py, the shared loopback server: a process that used it exits at once,
also when a stand-in it served never answered a request. Before, uvicorn's graceful
shutdown waited for that request until the join's ten seconds ran out, and every test
run ended ten idle seconds late (test_sync_load's silent portal)."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.cli import ROOT

SCRIPT = """
import asyncio, threading, httpx
from tests.servers import served

async def silent(scope, receive, send):
    await asyncio.sleep(3600)

with served(silent) as base:
    asked = threading.Event()

    def ask():
        asked.set()
        try:
            httpx.post(base + "/x", timeout=60)
        except Exception:
            pass

    threading.Thread(target=ask, daemon=True).start()
    asked.wait()
    time.sleep(0.2)  # the request is in the server's hands
print("done", flush=True)
"""


def test_a_process_that_served_a_silent_portal_exits_at_once() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "import time\n" + SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr
    assert took < 5, f"the process took {took:.1f} s to exit: the server waited for the request"
