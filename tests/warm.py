"""``b24kit`` as a real process without paying for Python's start each time: a warm start.

Most real processes the tests start are there for what only a separate process gives (a
kill -9 at request N, two runs racing on a cross-process lock, a SIGINT or SIGTERM reaching
the command's handler), not for the interpreter's start, which costs each of them 0.5-0.9 s
of CPU (Python's start, then typer, rich, httpx, pydantic, yaml, uvicorn and b24kit's
modules). tests/test_startup.py, test_cli_contract.py and test_readme.py keep starting the
installed command cold, where the start is the point.

``start(args, ...)`` asks a helper process (one per test process, started on first use,
running this file as a script) that has imported all of that once; the helper forks, and
the child becomes ``python -m b24kit <args>``: the test's stdin/stdout/stderr on fds 0-1-2
and no other fd, its cwd and environment, fresh ``sys.std*`` objects, Ctrl-C and SIGQUIT as
a terminal gives them (tests/processes.py), ``sys.argv`` and ``__main__`` as ``-m`` sets
them, then runs b24kit's ``__main__`` and exits through the interpreter's own shutdown
(threads joined, atexit, the exit code of ``SystemExit`` or death by an uncaught
KeyboardInterrupt's SIGINT). The helper reaps it and sends its status back. The test gets
a ``WarmProcess``: like ``subprocess.Popen`` (pid, poll, wait, send_signal, terminate,
kill, communicate, returncode: ``-9`` for a SIGKILLed child), and the pid is a real,
separate OS process; signals go through a pidfd, so a pid reused after the child's death
is never signalled.

What the helper imports is what a fresh process would build the same way: modules that
read no environment, terminal or cwd at import. b24kit.cli is left to the child (its
rich consoles read COLUMNS, NO_COLOR, the terminal... when created). A request whose
environment differs from the helper's in what the interpreter reads at its start (PYTHON*,
LC_*, LANG*, TYPER_*) goes to a helper started with that environment. Not as a fresh
process: the hash seed is the helper's (one per helper, not per child).

The helper has no threads (fork is safe), ignores Ctrl-C (the test run's Ctrl-C is for the
tests; its children get their own), and exits when the test process closes its end of the
control socket, at the latest when the test process exits. If it dies, a waiting test
gets an error, never a hang.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import json
import locale
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

_START_VARS = ("PYTHON", "LC_", "LANG", "TYPER_")
_MAX_MESSAGE = 1 << 20


def _start_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(_START_VARS)))


# ---------------------------------------------------------------------------------------
# The helper's side (this file run as a script).


def _preload() -> None:
    """Every b24kit module outside b24kit.cli, and what the commands import lazily."""
    import importlib
    import pkgutil

    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # as entry.py does
    import b24kit

    def walk(path: Sequence[str], prefix: str) -> None:
        for info in pkgutil.iter_modules(path, prefix):
            if info.name in ("b24kit.cli", "b24kit.__main__"):
                continue
            module = importlib.import_module(info.name)
            if info.ispkg:
                walk(module.__path__, info.name + ".")

    walk(b24kit.__path__, "b24kit.")
    for name in (
        "typer",
        "rich.console",
        "rich.markup",
        "uvicorn",
        "uvicorn.config",
        "uvicorn.server",
        "uvicorn.lifespan.on",
        "uvicorn.loops.auto",
        "uvicorn.protocols.http.auto",
        "uvicorn.protocols.websockets.auto",
    ):
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m == "b24kit.cli" or m.startswith("b24kit.cli."))
    assert not leaked, f"imported at the helper's start, to be made by each child: {leaked}"


class _Request:
    def __init__(self, message: dict[str, Any], stdio: list[int]) -> None:
        self.args: list[str] = message["args"]
        self.cwd: str = message["cwd"]
        self.env: dict[str, str] = message["env"]
        self.stdio = stdio


def _serve(control: socket.socket) -> _Request | None:
    """Fork a child per request; report each child's pid (and a pidfd) and then its exit
    status on the request's own socket. Returns in a forked child only (its request), or
    None once the test process has gone."""
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, reply socket)
    while True:
        ready, _, _ = select.select([control.fileno(), *children], [], [])
        for fd in ready:
            if fd != control.fileno():
                pid, reply = children.pop(fd)
                _, status = os.waitpid(pid, 0)
                os.close(fd)
                with contextlib.suppress(OSError):  # unless the test has dropped its handle
                    reply.send(str(os.waitstatus_to_exitcode(status)).encode())
                reply.close()
                continue
            message, fds, _, _ = socket.recv_fds(control, _MAX_MESSAGE, 4)
            if not message:
                return None
            reply = socket.socket(fileno=fds[0])
            pid = os.fork()
            if pid == 0:
                control.close()
                reply.close()
                for pidfd, (_, other) in children.items():
                    os.close(pidfd)
                    other.close()
                return _Request(json.loads(message), fds[1:])
            for stdio in fds[1:]:
                os.close(stdio)
            pidfd = os.pidfd_open(pid)
            children[pidfd] = (pid, reply)
            with contextlib.suppress(OSError):  # the test gone, the child is reaped all the same
                socket.send_fds(reply, [str(pid).encode()], [pidfd])


def _stream(fd: int, mode: str, *, line_buffering: bool) -> IO[str]:
    """A ``sys.std*`` object for ``fd`` made as the interpreter makes one at its start."""
    like = {0: sys.__stdin__, 1: sys.__stdout__, 2: sys.__stderr__}[fd]
    assert like is not None
    # sys.std* live as long as the process
    buffered: Any = open(fd, mode + "b", buffering=-1, closefd=False)  # noqa: SIM115
    return io.TextIOWrapper(
        buffered,
        encoding=like.encoding,
        errors=like.errors,
        newline="\n",
        line_buffering=line_buffering,
        write_through=bool(os.environ.get("PYTHONUNBUFFERED")) and mode == "w",
    )


def _become(request: _Request) -> None:
    """Turn this forked helper into ``python -m b24kit <args>`` started from a terminal."""
    import logging
    import runpy

    for target, fd in enumerate(request.stdio):
        os.dup2(fd, target)  # inheritable, as stdio is
    for fd in set(request.stdio) - {0, 1, 2}:
        os.close(fd)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    sys.path[0] = os.getcwd()  # `python -m` puts the cwd first
    sys.stdin = sys.__stdin__ = _stream(0, "r", line_buffering=os.isatty(0))
    sys.stdout = sys.__stdout__ = _stream(1, "w", line_buffering=os.isatty(1))
    sys.stderr = sys.__stderr__ = _stream(2, "w", line_buffering=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    # random reseeds itself in a forked child (os.register_at_fork); logging's clock for
    # relativeCreated starts with the process
    logging._startTime = time.time()  # type: ignore[attr-defined]
    sys.argv = ["-m", *request.args]
    runpy.run_module("b24kit", run_name="__main__", alter_sys=True)


def _helper_main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(sys.argv[1]))
    _preload()
    # What the helper built is frozen out of the garbage collector's reach: each child's
    # collections (its exit's included) walked every object it inherited, writing to the
    # pages it shares with the helper and so copying them, 0.2 s of CPU a child (a
    # ``--version`` took 0.30 s; frozen, 0.09 s). What the child builds itself is
    # collected as in a fresh process.
    gc.collect()
    gc.freeze()
    control.send(b"ready")
    request = _serve(control)
    if request is None:
        return
    _become(request)


# ---------------------------------------------------------------------------------------
# The test's side.


class HelperDied(RuntimeError):
    """The warm start helper went away; what it was running is unknown (and was killed)."""


class _Helper:
    def __init__(self, env: Mapping[str, str]) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=dict(env),
                pass_fds=[theirs.fileno()],
            )
        self.control = mine
        mine.settimeout(120)
        try:
            ready = mine.recv(16)
        except TimeoutError:
            ready = b""
        mine.settimeout(None)
        if ready != b"ready":
            self.proc.kill()
            self.proc.wait()
            raise HelperDied(f"the warm start helper did not start (exit {self.proc.returncode})")

    def alive(self) -> bool:
        return self.proc.poll() is None


_helpers: dict[tuple[int, tuple[tuple[str, str], ...]], _Helper] = {}


@atexit.register
def _stop_helpers() -> None:
    """Close each helper's control socket (it exits at that) and reap it: no orphan left,
    and its CPU (its children's too) is counted in this process's, as a cold start's is."""
    for (pid, _), helper in _helpers.items():
        if pid != os.getpid():
            continue  # a forked copy of this process: the helper is not its child
        helper.control.close()
        try:
            helper.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            helper.proc.kill()
            helper.proc.wait()


def _send(env: Mapping[str, str], message: bytes, fds: list[int]) -> _Helper:
    """Send a request to the helper for ``env`` (started, or replaced if it has died)."""
    key = (os.getpid(), _start_key(env))
    helper = _helpers.get(key)
    if helper is not None and helper.alive():
        try:
            socket.send_fds(helper.control, [message], fds)
            return helper
        except OSError:  # it died a moment ago
            helper.proc.wait()
    helper = _helpers[key] = _Helper(env)
    socket.send_fds(helper.control, [message], fds)
    return helper


_Stdio = int | IO[Any] | None


def _child_fd(spec: _Stdio, default: int, opened: list[int], mine: list[int | None]) -> int:
    """The fd the child gets for one of its stdio streams; with PIPE, this side's end goes
    into ``mine``."""
    if spec is None:
        mine.append(None)
        return default
    if spec == subprocess.PIPE:
        read, write = os.pipe()
        theirs, ours = (read, write) if default == 0 else (write, read)
        opened.append(theirs)
        mine.append(ours)
        return theirs
    mine.append(None)
    if spec == subprocess.DEVNULL:
        fd = os.open(os.devnull, os.O_RDWR)
        opened.append(fd)
        return fd
    if isinstance(spec, int):
        return spec
    return spec.fileno()


class WarmProcess:
    """``python -m b24kit <args>`` forked by the warm start helper; used as a Popen."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        stdin: _Stdio = None,
        stdout: _Stdio = None,
        stderr: _Stdio = None,
        text: bool = False,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.args = [sys.executable, "-m", "b24kit", *args]
        self.returncode: int | None = None
        self._text = text
        self._output: dict[int, list[bytes]] = {}  # what communicate read, by stream
        env = dict(os.environ if env is None else env)
        opened: list[int] = []
        ends: list[int | None] = []
        try:
            fds = [_child_fd(stdin, 0, opened, ends), _child_fd(stdout, 1, opened, ends)]
            fds.append(
                fds[1] if stderr == subprocess.STDOUT else _child_fd(stderr, 2, opened, ends)
            )
            if stderr == subprocess.STDOUT:
                ends.append(None)
            self._status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with theirs:
                message = {"args": list(args), "cwd": os.path.abspath(cwd or "."), "env": env}
                helper = _send(env, json.dumps(message).encode(), [theirs.fileno(), *fds])
        finally:
            for fd in opened:
                os.close(fd)
        self._helper = helper
        self._status.settimeout(120)
        try:
            pid, pidfds, _, _ = socket.recv_fds(self._status, 32, 1)
        except TimeoutError:
            pid, pidfds = b"", []
        self._status.settimeout(None)
        if not pid or not pidfds:
            raise HelperDied("the warm start helper died before it started the command")
        self.pid = int(pid)
        self._pidfd = pidfds[0]
        os.set_inheritable(self._pidfd, False)
        self.stdin: IO[Any] | None = None
        self.stdout: IO[Any] | None = None
        self.stderr: IO[Any] | None = None
        if ends[0] is not None:
            self.stdin = self._wrap(ends[0], "wb")
        if ends[1] is not None:
            self.stdout = self._wrap(ends[1], "rb")
        if ends[2] is not None:
            self.stderr = self._wrap(ends[2], "rb")

    def _wrap(self, fd: int, mode: str) -> IO[Any]:
        raw: Any = open(fd, mode, buffering=-1)  # noqa: SIM115  (closed by communicate)
        if not self._text:
            return raw  # type: ignore[no-any-return]
        write = mode == "wb"
        return io.TextIOWrapper(raw, locale.getpreferredencoding(False), write_through=write)

    # -- status ---------------------------------------------------------------------------

    def _collect(self, timeout: float | None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        ready, _, _ = select.select([self._status], [], [], timeout)
        if not ready:
            return None
        status = self._status.recv(32)
        self._status.close()
        os.close(self._pidfd)
        if not status:
            self._kill_orphan()
            raise HelperDied(f"the warm start helper died while pid {self.pid} ran (killed)")
        self.returncode = int(status)
        return self.returncode

    def _kill_orphan(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the pid is not reaped: still its
            os.kill(self.pid, signal.SIGKILL)
        self.returncode = -signal.SIGKILL

    def poll(self) -> int | None:
        return self._collect(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._collect(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it has exited, not yet reaped
            signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    # -- I/O ------------------------------------------------------------------------------

    def communicate(self, input: None = None, timeout: float | None = None) -> tuple[Any, Any]:
        """As Popen's (without ``input``, which no test needs): what is left of stdout and
        stderr (read from the pipes themselves, past anything this side has buffered),
        then the exit status; after a timeout, a second call carries on where the first
        stopped."""
        assert input is None, "no input: the warm start's communicate only reads"
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.stdin is not None:
            self.stdin.close()
        streams = [s for s in (self.stdout, self.stderr) if s is not None]
        for stream in streams:
            self._output.setdefault(id(stream), [])
        with selectors.DefaultSelector() as selector:
            for stream in streams:
                if not stream.closed:
                    selector.register(stream, selectors.EVENT_READ)
            while selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0)
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 32768)
                    self._output[id(key.fileobj)].append(chunk)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        key.fileobj.close()  # type: ignore[union-attr]
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self._collected(self.stdout), self._collected(self.stderr)

    def _collected(self, stream: IO[Any] | None) -> Any:
        if stream is None:
            return None
        data = b"".join(self._output[id(stream)])
        if not self._text:
            return data
        text = data.decode(locale.getpreferredencoding(False))
        return text.replace("\r\n", "\n").replace("\r", "\n")  # as Popen's

    def __enter__(self) -> WarmProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for stream in (self.stdout, self.stderr, self.stdin):
            if stream is not None:
                stream.close()
        self.wait()


def start(args: Sequence[str], **kwargs: Any) -> WarmProcess:
    """``b24kit <args>`` as a separate process, warm (see the module's docstring): the
    arguments after ``python -m b24kit``; stdin, stdout, stderr, text, cwd, env as
    Popen's."""
    return WarmProcess(args, **kwargs)


def run(
    args: Sequence[str], *, timeout: float | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """As ``subprocess.run(..., capture_output=True)`` for ``start(args, ...)``."""
    with start(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return subprocess.CompletedProcess(proc.args, proc.wait(), out, err)


if __name__ == "__main__":
    _helper_main()
