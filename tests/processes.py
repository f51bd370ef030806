"""Starting b24kit as a real process the way a terminal does."""

from __future__ import annotations

import signal
from typing import Any

_TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


def like_a_terminal() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: Ctrl-C (SIGINT) and SIGQUIT as a terminal
    gives them to a program it starts. A shell runs a background command with both
    ignored, and an ignored signal is inherited: a test run started in the background
    (``cmd &``, as some CI runners do) would otherwise start b24kit deaf to the Ctrl-C the
    test sends."""
    for number in _TERMINAL_SIGNALS:
        signal.signal(number, signal.SIG_DFL)


def from_a_terminal() -> dict[str, Any]:
    """``subprocess.Popen`` keyword arguments that start a program with Ctrl-C and SIGQUIT
    as a terminal gives them (``Popen(..., **from_a_terminal())``). Only a signal this
    process ignores reaches the program ignored (exec resets a handled one to its
    default), so ``like_a_terminal`` runs in the child only then: a ``preexec_fn`` makes
    Popen fork the whole test process instead of spawning the program (35 ms of CPU for
    a worker of 250 MB, against under one), and forks it with its server threads running."""
    ignored = any(
        signal.getsignal(number) in (signal.SIG_IGN, None) for number in _TERMINAL_SIGNALS
    )
    return {"preexec_fn": like_a_terminal} if ignored else {}
