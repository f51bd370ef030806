"""Ctrl-C while a command works on a portal: the work is cancelled at once (every write
b24kit makes can be resumed by running the command again), and the process ends within
a few seconds even when a cancelled request does not let go (a read that waits on a
silent portal, a library that holds a cancellation). A second Ctrl-C ends it at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TypeVar

from b24kit.cli.codes import INTERRUPTED, INTERRUPTED_LINE

T = TypeVar("T")
GRACE = 3.0  # seconds the cancelled work has to wind down


def _hard_exit() -> None:
    sys.stderr.write(INTERRUPTED_LINE + "\n")
    sys.stderr.flush()
    os._exit(INTERRUPTED)


def run_cancellable(main: Callable[[], Awaitable[T]], grace: float = GRACE) -> T:
    """``asyncio.run(main())``, where Ctrl-C cancels ``main`` and, if it has not ended
    ``grace`` seconds later, ends the process with 130. Raises KeyboardInterrupt when the
    work was cancelled by Ctrl-C. A Ctrl-C the process was started ignoring stays ignored."""
    import asyncio  # here: a command that never reaches a portal does not load it

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        return asyncio.run(main())  # type: ignore[arg-type]
    hits = 0
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[T]]] = []
    watchdogs: list[threading.Timer] = []

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal hits
        hits += 1
        if hits > 1 or not running:
            raise KeyboardInterrupt
        loop, task = running[0]
        loop.call_soon_threadsafe(task.cancel)
        # a request cancelled while it connects leaves a coroutine of anyio's connect_tcp
        # never awaited, and Python warns of it in three lines (and a hint of tracemalloc)
        # as it is dropped: after a Ctrl-C the command ends with its one line instead
        warnings.filterwarnings(
            "ignore", message="coroutine .* was never awaited", category=RuntimeWarning
        )
        watchdog = threading.Timer(grace, _hard_exit)
        watchdog.daemon = True
        watchdog.start()
        watchdogs.append(watchdog)

    async def wrapped() -> T:
        task = asyncio.current_task()
        assert task is not None
        running.append((asyncio.get_running_loop(), task))  # type: ignore[arg-type]
        return await main()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return asyncio.run(wrapped())
    except asyncio.CancelledError:
        if hits:
            raise KeyboardInterrupt from None
        raise
    finally:
        for watchdog in watchdogs:  # the work has ended: the caller takes it from here
            watchdog.cancel()
        signal.signal(signal.SIGINT, previous)
