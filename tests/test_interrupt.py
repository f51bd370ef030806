"""Ctrl-C while working on a portal: the work is cancelled at once, and the process ends
within seconds even when the work will not let go of the cancellation."""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import time
import warnings
from typing import Any

import pytest

from b24kit.cli.interrupt import run_cancellable
from tests.processes import from_a_terminal


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
        **from_a_terminal(),
    )
    assert proc.stdout is not None and proc.stdout.readline() == "working\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10, "ended within the grace, not at a time-out"
    assert "interrupted; run the same command again to continue" in err


def _ignored_in_child(**popen: Any) -> set[int]:
    """The signals a program started with ``popen`` begins with ignored (Linux's SigIgn)."""
    status = subprocess.run(
        ["cat", "/proc/self/status"], capture_output=True, text=True, check=True, **popen
    ).stdout
    mask = int(next(x for x in status.splitlines() if x.startswith("SigIgn:")).split()[1], 16)
    return {number for number in (signal.SIGINT, signal.SIGQUIT) if mask & (1 << (number - 1))}


def test_a_program_started_from_a_terminal_hears_ctrl_c() -> None:
    """A test run started in the background ignores Ctrl-C and SIGQUIT, and would hand that
    on to the b24kit it starts; from_a_terminal gives the program both as a terminal does,
    whether or not this process ignores them (it forks for a preexec_fn only then)."""
    before = {n: signal.signal(n, signal.SIG_IGN) for n in (signal.SIGINT, signal.SIGQUIT)}
    try:
        assert _ignored_in_child() == {signal.SIGINT, signal.SIGQUIT}, "inherited ignored"
        assert "preexec_fn" in from_a_terminal()
        assert _ignored_in_child(**from_a_terminal()) == set()
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    if all(signal.getsignal(n) != signal.SIG_IGN for n in before):
        assert from_a_terminal() == {}, "nothing to reset: no fork"
    assert _ignored_in_child(**from_a_terminal()) == set()


def test_a_coroutine_the_cancelled_work_leaves_unawaited_says_nothing() -> None:
    """A request cancelled while it connects leaves a coroutine of anyio's connect_tcp never
    awaited (seen by hand: Ctrl-C during `apply` on a slow portal printed Python's
    RuntimeWarning, three lines, above the one line the command ends with)."""

    async def connect() -> None:
        await asyncio.sleep(0)

    async def work() -> None:
        signal.raise_signal(signal.SIGINT)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            connect()  # type: ignore[unused-coroutine]  # as anyio's cancelled attempt
            raise

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(KeyboardInterrupt):
                run_cancellable(work)
            gc.collect()
        assert [str(w.message) for w in caught] == []
    finally:
        signal.signal(signal.SIGINT, before)
