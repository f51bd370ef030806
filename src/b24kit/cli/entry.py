"""The ``b24kit`` command's entry point: imports the CLI inside a guard, so Ctrl-C while
it loads (a second or so) ends like Ctrl-C at any other moment: one line, exit 130.

Once the outcome is known (the command finished, or it was interrupted), a further Ctrl-C
is ignored while the process exits: Python would otherwise turn a Ctrl-C that lands
during its shutdown into death by SIGINT, neither the command's exit code nor 130."""

from __future__ import annotations

import signal
import sys

from b24kit.cli.codes import INTERRUPTED, INTERRUPTED_LINE  # imports nothing itself


def _interrupted() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stderr.write(INTERRUPTED_LINE + "\n")


def interrupted_by(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, a Ctrl-C: Python wraps a KeyboardInterrupt
    that lands in some import-time hooks (a dataclass field's ``__set_name__``, for one)
    in a RuntimeError whose cause is the interrupt."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main() -> None:
    loaded = True
    try:
        from b24kit.cli.app import main as run
    except BaseException as exc:  # noqa: BLE001  (only a Ctrl-C is handled; all else re-raised)
        if not interrupted_by(exc):
            raise
        loaded = False
    if not loaded:
        # exit outside the except block: a SystemExit raised there would carry the
        # KeyboardInterrupt along, and `python -m` then reports death by SIGINT
        _interrupted()
        sys.exit(INTERRUPTED)
    interrupted = False
    try:
        run()
    except KeyboardInterrupt:  # past the CLI's own handling, on its way out
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if interrupted:
        _interrupted()
        sys.exit(INTERRUPTED)
