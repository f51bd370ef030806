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


def _lighter_start() -> None:
    """What this process will never use, kept from loading (issue 15 item 6).

    httpx's package imports its own command-line client (``httpx._main``) whenever click
    and pygments are installed, as they are here (uvicorn needs click, rich pygments): click,
    pygments' lexers and rich's syntax, table and progress modules, 0.1 s of CPU for every
    command that reaches a portal. httpx catches the ImportError a ``None`` entry in
    ``sys.modules`` raises and goes without its CLI, which b24kit never calls."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main() -> None:
    _lighter_start()
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
