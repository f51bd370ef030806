"""Ctrl-C while working on a portal: the work is cancelled at once, and the process ends
within seconds even when the work will not let go of the cancellation."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import pytest

from b24kit.cli.interrupt import run_cancellable
from tests.processes import like_a_terminal


def test_ctrl_c_cancels_the_work() -> None:
    cleaned: list[str] = []

    async def work() -> None:
        signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append("closed")  # the connection is closed on the way out

    # Ctrl-C as a terminal gives it to Python (a test run started in the background may
    # have inherited it ignored)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_cancellable(work)
        assert cleaned == ["closed"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, (
            "Ctrl-C is as it was afterwards"
        )
    finally:
        signal.signal(signal.SIGINT, before)


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    async def work() -> str:
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(0.05)
        return "went on"

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert run_cancellable(work) == "went on"
    finally:
        signal.signal(signal.SIGINT, before)


def test_work_that_ends_normally_returns_its_result() -> None:
    async def work() -> int:
        return 7

    assert run_cancellable(work) == 7


STUBBORN = """
import asyncio, sys
from b24kit.cli.interrupt import run_cancellable

async def stubborn():
    print("working", flush=True)
    while True:  # swallows every cancellation, as a stuck library call might
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass

run_cancellable(stubborn, grace=0.3)
"""


def test_work_that_will_not_let_go_still_ends_with_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUBBORN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=like_a_terminal,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "working\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10, "ended within the grace, not at a time-out"
    assert "interrupted; run the same command again to continue" in err
