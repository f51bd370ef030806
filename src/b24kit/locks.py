"""One writer per portal at a time on this machine: ``migrate run``, ``apply``,
``audit --fix`` and every sync pass take the portal's run lock before they write.

Two writers racing would each see a row, a parent or a field as missing and each create
it. The lock is an ``flock`` on ``<state>/locks/<portal host>.lock`` (``Connection.lock_path``):

- the OS frees it when its holder ends, however it ends (``kill -9`` included), so the lock
  of a dead holder is taken over at once; what the file said about that holder is
  overwritten;
- the file names the holder (job, pid, host, since), so a refused run can say who holds it
  and for how long;
- the wait is bounded (``wait`` seconds, 0: not at all), polled on the clock seam, so it
  never blocks an event loop and never freezes the next cron run; past it, :class:`LockHeld`
  (exit 3: nothing was written, run again);
- a live holder is never overridden, however old: two writers are what the lock is there to
  prevent. One older than :data:`STUCK_AFTER` is named as probably stuck, with its pid.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from b24kit.clock import current
from b24kit.errors import PortalFailure

LOCK_FILE = "run.lock"
WAIT = 60.0  # seconds a run waits for another to finish, by default
STUCK_AFTER = 6 * 3600.0  # a holder older than this is named as probably stuck
POLL = 0.2


class LockHeld(PortalFailure):
    """Another run holds the portal's lock, and did for longer than this one would wait."""


def _open(path: Path) -> IO[str]:
    """The lock file, made readable and writable by the group (a service user and the
    people who run migrate for it share it); read-only when another user made it without
    (an flock needs no write access, only the holder's name is left out)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
        return os.fdopen(fd, "r+", encoding="utf-8")
    except PermissionError:
        return os.fdopen(os.open(path, os.O_RDONLY), "r", encoding="utf-8")


def _take(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(handle: IO[str]) -> dict[str, Any]:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _age(since: object, now: datetime) -> float | None:
    try:
        started = datetime.fromisoformat(str(since))
    except ValueError:
        return None
    if started.tzinfo is None:
        return None
    return max(0.0, (now - started).total_seconds())


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(holder: dict[str, Any], now: datetime | None = None) -> str:
    """``migrate (pid 4242 on host-1, for 3 min)``: who holds a lock, in words."""
    now = now or datetime.now(UTC)
    job = str(holder.get("job") or "another b24kit run")
    where = []
    if holder.get("pid"):
        where.append(f"pid {holder['pid']}")
    if holder.get("host"):
        where[-1:] = [f"{where[-1]} on {holder['host']}" if where else f"on {holder['host']}"]
    age = _age(holder.get("since"), now)
    if age is not None:
        where.append(f"for {_span(age)}")
    return f"{job} ({', '.join(where)})" if where else job


def _refusal(path: Path, holder: dict[str, Any], waited: float) -> str:
    now = datetime.now(UTC)
    age = _age(holder.get("since"), now)
    text = f"{describe(holder, now)} holds {path}"
    text += f"; waited {_span(waited)}" if waited else ""
    if age is not None and age > STUCK_AFTER and holder.get("pid"):
        text += f"; it may be stuck: if so, stop it (kill {holder['pid']}) and run again"
    else:
        text += "; nothing was written: run again when it ends"
    return text


@asynccontextmanager
async def run_lock(
    path: Path,
    job: str,
    *,
    wait: float = WAIT,
    on_wait: Callable[[str], None] | None = None,
    give_up: Callable[[], bool] | None = None,
) -> AsyncIterator[None]:
    """Hold the run lock at ``path`` for the block, as ``job``; if another run holds it,
    say so through ``on_wait`` and wait up to ``wait`` seconds for it (less when
    ``give_up()`` turns true: a service that stops), then raise :class:`LockHeld` naming
    the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clock = current()
    with _open(path) as handle:
        if not _take(handle):
            holder = _holder(handle)
            started = clock.monotonic()
            if on_wait is not None and wait > 0:
                on_wait(f"{describe(holder)} holds {path}; waiting up to {_span(wait)}")
            while not _take(handle):
                waited = clock.monotonic() - started
                if waited >= wait or (give_up is not None and give_up()):
                    raise LockHeld(_refusal(path, _holder(handle) or holder, waited))
                await clock.sleep(min(POLL, wait - waited))
        if handle.writable():  # a file another user made: locked all the same, not named
            handle.seek(0)
            handle.truncate()
            since = datetime.now(UTC).isoformat(timespec="seconds")
            mine = {"job": job, "pid": os.getpid(), "host": socket.gethostname(), "since": since}
            handle.write(json.dumps(mine) + "\n")
            handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
