"""Run the ``b24kit`` command in this process, the way the installed entry point runs it.

``run_cli(*args, cwd=..., env=...)`` calls ``b24kit.cli.entry.main`` (what the console
script and ``python -m b24kit`` call) with ``sys.argv`` set, in ``cwd``, with the
environment changed as given, stdin empty and not a terminal, and stdout and stderr
captured: the same program as a subprocess, without a second of interpreter start and
imports per command. What the process would start fresh is started fresh: the global
-v/-q/--debug state and the logging set-up.

Tests where a real process is the point (kill -9, signals, two processes at once, the
exit code of the installed entry point itself) still start one.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer.main

from b24kit.clock import Clock, use

ROOT = Path(__file__).resolve().parent.parent
_build_command = typer.main.get_command
_commands: dict[int, Any] = {}


def _built_once(app: typer.Typer) -> Any:
    """typer.main.get_command, kept: typer turns the app's functions into click commands
    on every call (a sixth of a second), which a process does once. The commands hold no
    state of a run (click makes a new context for each)."""
    key = id(app)
    if key not in _commands:
        _commands[key] = (app, _build_command(app))
    return _commands[key][1]


@dataclass
class CliResult:
    """What a finished ``b24kit`` run left: like ``subprocess.CompletedProcess``."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    code: int = field(init=False)  # the same as returncode, for tests that say code

    def __post_init__(self) -> None:
        self.code = self.returncode


@contextmanager
def _environment(env: Mapping[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Stream(io.TextIOWrapper):
    """A captured std stream: UTF-8 text over bytes, not a terminal, like a pipe."""

    def __init__(self, name: str) -> None:
        super().__init__(
            io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True
        )
        self._name = name

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name

    def text(self) -> str:
        self.flush()
        buffer = self.buffer
        assert isinstance(buffer, io.BytesIO)
        return buffer.getvalue().decode("utf-8", errors="backslashreplace")


def printed() -> str:
    """What the command running in this process (in ``run_cli``) has written to stdout so
    far: for a test hook called from inside the run (such as ``sandbox serve``'s ready)."""
    stream = sys.stdout
    assert isinstance(stream, _Stream), "called from inside run_cli"
    return stream.text()


def run_cli(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str | None] | None = None,
    clock: Clock | None = None,
) -> CliResult:
    """Run ``b24kit ARGS`` in-process. ``env`` sets (or, with None, removes) variables
    for the run; ``clock`` (a tests.clocks.FakeClock) makes the client's waits (its
    limiter, its retries) and a local sandbox's limits run on that clock."""
    from b24kit.cli.common import OPTIONS
    from b24kit.cli.entry import main

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_argv = sys.argv
    saved_sigint = signal.getsignal(signal.SIGINT)  # the entry point ignores it as it exits
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    out, err = _Stream("<stdout>"), _Stream("<stderr>")
    before = Path.cwd()
    code: int
    typer.main.get_command = _built_once
    try:
        with _environment(env or {}), use(clock) if clock is not None else nullcontext():
            if cwd is not None:
                os.chdir(cwd)
            OPTIONS.verbose, OPTIONS.quiet, OPTIONS.debug = 0, False, False  # a new process
            sys.argv = ["b24kit", *args]
            sys.stdin = io.StringIO("")
            sys.stdout, sys.stderr = out, err
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        typer.main.get_command = _build_command
        signal.signal(signal.SIGINT, saved_sigint)
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.argv = saved_argv
        os.chdir(before)
        for handler in root.handlers[:]:  # what the run's logging set-up added
            if handler not in saved_handlers:
                root.removeHandler(handler)
        for handler in saved_handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(saved_level)
    return CliResult(list(args), code, out.text(), err.text())
