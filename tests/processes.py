"""Starting b24kit as a real process the way a terminal does."""

from __future__ import annotations

import signal


def like_a_terminal() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: Ctrl-C (SIGINT) and SIGQUIT as a terminal
    gives them to a program it starts. A shell runs a background command with both
    ignored, and an ignored signal is inherited: a test run started in the background
    (``cmd &``, as some CI runners do) would otherwise start b24kit deaf to the Ctrl-C the
    test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
