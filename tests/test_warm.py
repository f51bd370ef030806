"""The warm start (tests/warm.py) gives a real, separate b24kit process: its exit status
and signals as Popen reports them, its own stdio, cwd and environment, nothing else."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import warm


def _silent_portal() -> tuple[socket.socket, str]:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    silent.settimeout(60)
    return silent, f"http://127.0.0.1:{silent.getsockname()[1]}/rest/1/abcdefgh/"


def _call_waiting(
    tmp_path: Path, url: str, warmly: bool = True
) -> warm.WarmProcess | subprocess.Popen[str]:
    args = ["call", "server.time", "-p", url]
    kwargs: dict[str, Any] = {
        "cwd": tmp_path,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        "env": {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    }
    if warmly:
        return warm.start(args, **kwargs)
    return subprocess.Popen([sys.executable, "-m", "b24kit", *args], **kwargs)


@pytest.fixture
def waiting(tmp_path: Path) -> Iterator[warm.WarmProcess]:
    """`b24kit call` waiting on a portal that never answers (its request sent)."""
    silent, url = _silent_portal()
    proc = _call_waiting(tmp_path, url)
    assert isinstance(proc, warm.WarmProcess)
    held, _ = silent.accept()
    yield proc
    proc.kill()
    proc.communicate(timeout=20)
    held.close()
    silent.close()


@pytest.mark.parametrize("args", [["validate", "nothing.yaml"], ["no-such-command"]])
def test_what_it_prints_and_its_exit_code_are_a_cold_starts(
    tmp_path: Path, args: list[str]
) -> None:
    done = warm.run(args, text=True, cwd=tmp_path, timeout=60)
    cold = subprocess.run(
        [sys.executable, "-m", "b24kit", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        cold.returncode,
        cold.stdout,
        cold.stderr,
    )
    assert done.returncode in (0, 2) and done.stdout + done.stderr


def test_exit_zero_and_stdout(tmp_path: Path) -> None:
    done = warm.run(["--version"], text=True, cwd=tmp_path, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "b24kit 0.1.0\n", "")


def test_cwd_environment_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    done = warm.run(["call", "server.time", "--portal", "sandbox"], cwd=tmp_path / "here")
    assert done.returncode == 0, done.stderr
    assert isinstance(done.stdout, bytes) and b'"result"' in done.stdout
    assert (tmp_path / "here" / ".b24kit" / "sandbox.sqlite").exists(), "its cwd"
    env = {**os.environ, "B24_WEBHOOK_URL": "http://127.0.0.1:9/rest/1/abcdefgh/"}
    env.pop("B24_PORTAL", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    env["B24KIT_RETRIES"] = "0"
    done = warm.run(["call", "server.time"], cwd=tmp_path, env=env, text=True, timeout=60)
    assert done.returncode == 3 and "127.0.0.1:9" in done.stderr, "its environment"


def test_sigkill_is_minus_nine_and_the_child_is_reaped(waiting: warm.WarmProcess) -> None:
    assert waiting.pid != os.getpid() and waiting.poll() is None
    assert Path(f"/proc/{waiting.pid}").exists()
    waiting.send_signal(signal.SIGKILL)
    assert waiting.wait(timeout=20) == -signal.SIGKILL == waiting.returncode
    assert not Path(f"/proc/{waiting.pid}").exists(), "reaped by the helper: no zombie"
    waiting.send_signal(signal.SIGTERM)  # after its end: nothing, as Popen


def test_sigint_reaches_the_commands_handler(waiting: warm.WarmProcess) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(timeout=0.05)
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=20)
    assert waiting.returncode == 130, err
    assert "interrupted; run the same command again to continue" in err
    assert "Traceback" not in err


def test_sigterm_is_death_by_sigterm(waiting: warm.WarmProcess) -> None:
    waiting.terminate()
    assert waiting.wait(timeout=20) == -signal.SIGTERM


def _open_fds(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def test_only_its_own_stdio_is_open(waiting: warm.WarmProcess, tmp_path: Path) -> None:
    fds = _open_fds(waiting.pid)
    assert waiting.stdout is not None and waiting.stderr is not None
    ours = {os.readlink(f"/proc/self/fd/{s.fileno()}") for s in (waiting.stdout, waiting.stderr)}
    assert {fds[1], fds[2]} == ours, "stdout and stderr: the test's pipes"
    assert fds[0] == os.readlink("/proc/self/fd/0"), "stdin: the test's own, as Popen's None"
    silent, url = _silent_portal()
    cold = _call_waiting(tmp_path, url, warmly=False)
    try:
        held, _ = silent.accept()
        cold_fds = _open_fds(cold.pid)
    finally:
        cold.kill()
        cold.communicate(timeout=20)
        held.close()
        silent.close()
    kinds = [(fd, target.split(":")[0]) for fd, target in sorted(fds.items())]
    assert kinds == [(fd, target.split(":")[0]) for fd, target in sorted(cold_fds.items())], (
        f"what a cold start has open, nothing of the helper's: {fds} against {cold_fds}"
    )


def test_a_dead_helper_fails_the_wait_and_is_replaced(waiting: warm.WarmProcess) -> None:
    helper = warm._helpers[(os.getpid(), warm._start_key(os.environ))]
    helper.proc.kill()
    started = time.monotonic()
    with pytest.raises(warm.HelperDied):
        waiting.wait(timeout=20)
    assert time.monotonic() - started < 10
    assert waiting.returncode == -signal.SIGKILL
    assert warm.run(["--version"], timeout=60).returncode == 0, "a new helper"
