"""The portal's run lock (issue 16, items 2 and 10): one writer per portal; a wait that is
bounded and names the holder; a dead holder's lock taken over at once; a live one never."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from b24kit.clock import use
from b24kit.locks import LockHeld, run_lock
from tests.cli import ROOT, run_cli
from tests.clocks import FakeClock


def hold(path: Path, **holder: Any) -> IO[str]:
    """Another run's hold on the lock: an open, flocked file naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.truncate(0)
    handle.write(json.dumps(holder))
    handle.flush()
    return handle


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat(timespec="seconds")


def take(path: Path, job: str, wait: float, clock: FakeClock | None = None) -> str:
    """Take and release the lock as ``job``; what the lock said, or "entered"."""

    async def go() -> str:
        try:
            async with run_lock(path, job, wait=wait, on_wait=said.append):
                return "entered"
        except LockHeld as exc:
            return str(exc)

    said: list[str] = []
    with use(clock or FakeClock()):
        outcome = asyncio.run(go())
    return outcome + "".join(f"\nsaid: {line}" for line in said)


def test_the_wait_is_bounded_and_names_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    held = hold(lock, job="migrate", pid=4242, host="build-1", since=ago(minutes=3))
    clock = FakeClock()
    try:
        outcome = take(lock, "apply", wait=30, clock=clock)
    finally:
        held.close()
    first, said = outcome.split("\nsaid: ")
    assert first.startswith(f"migrate (pid 4242 on build-1, for 3 min) holds {lock}; waited 30 s")
    assert first.endswith("nothing was written: run again when it ends")
    assert said == f"migrate (pid 4242 on build-1, for 3 min) holds {lock}; waiting up to 30 s"
    assert 29.99 <= sum(clock.sleeps) < 31, "it waited the bound on the clock, then stopped"
    assert take(lock, "apply", wait=30) == "entered", "free once the holder let go"


def test_no_wait_says_nothing_and_fails_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    held = hold(lock, job="sync", pid=7, since=ago(minutes=5))
    clock = FakeClock()
    try:
        outcome = take(lock, "apply", wait=0, clock=clock)
    finally:
        held.close()
    assert (
        outcome
        == f"sync (pid 7, for 5 min) holds {lock}; nothing was written: run again when it ends"
    )
    assert clock.sleeps == []


def test_a_live_holder_is_never_overridden_and_an_old_one_is_named_stuck(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    held = hold(lock, job="migrate", pid=99, host="h", since=ago(hours=9))
    try:
        outcome = take(lock, "apply", wait=5)
    finally:
        held.close()
    assert "migrate (pid 99 on h, for 9.0 h) holds" in outcome
    assert "it may be stuck: if so, stop it (kill 99) and run again" in outcome


def test_the_lock_of_a_killed_holder_is_taken_at_once(tmp_path: Path) -> None:
    """kill -9 leaves the file naming the dead run; the OS has freed the flock."""
    lock = tmp_path / "run.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"h = open({str(lock)!r}, 'a+'); fcntl.flock(h, fcntl.LOCK_EX)\n"
            'h.write(\'{"job": "migrate", "pid": 1}\'); h.flush()\n'
            "print('held', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert "holds" in take(lock, "apply", wait=0), "held while it lives"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        holder.kill()
    assert take(lock, "apply", wait=0) == "entered"
    mine = json.loads(lock.read_text(encoding="utf-8"))
    assert mine["job"] == "apply" and mine["pid"] == os.getpid(), "the file names its holder"
    assert datetime.fromisoformat(mine["since"]).tzinfo is not None


# --------------------------------------------------------------- the commands
def portal_rows(db: Path) -> dict[str, list[Any]]:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for folder in ("blueprints", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    yield tmp_path


def test_every_writing_command_refuses_while_another_run_writes(project: Path) -> None:
    """apply, migrate run, audit --fix and sync --once on a portal another run is writing
    to: exit 3, one line naming the holder, and not one write."""
    bp = "blueprints/company.yaml"
    first = run_cli("apply", bp, "-p", "sandbox", "--yes")
    assert first.returncode == 0, first.stderr
    (lock,) = project.glob(".b24kit/locks/*.lock")
    db = project / ".b24kit" / "sandbox.sqlite"
    before = portal_rows(db)
    held = hold(lock, job="migrate", pid=4242, host="ops-1", since=ago(minutes=12))
    try:
        for args in (
            ["apply", bp, "--var", "x=1"],
            ["migrate", "run", "examples/projects.mapping.yaml"],
            ["audit", bp, "--fix"],
            ["sync", bp, "--once"],
        ):
            result = run_cli(
                *args, "-p", "sandbox", "--yes" if args[0] != "sync" else "-q", "--lock-wait", "0"
            )
            lines = [x for x in result.stderr.splitlines() if x.strip()]
            assert result.returncode == 3, (args, result.stderr)
            assert "Traceback" not in result.stderr
            error = [x for x in lines if x.startswith("error:")]
            assert len(error) == 1, (args, lines)
            assert "migrate (pid 4242 on ops-1, for 12 min) holds" in error[0], error
            assert "waiting" not in result.stderr, "--lock-wait 0 does not wait"
    finally:
        held.close()
    assert portal_rows(db) == before, "nothing was written"


def test_one_lock_per_portal_whichever_webhook_or_user_reaches_it() -> None:
    """The review: the lock was keyed by the whole webhook address, so a service on its own
    webhook and a person's migrate on another did not block each other."""
    from b24kit.client import B24Client, WebhookAuth, parse_webhook
    from b24kit.connect import Connection

    def lock(url: str) -> Path:
        client = B24Client(WebhookAuth(parse_webhook(url)))
        return Connection(client, client.portal, "standard").lock_path(Path("/s"))

    one = lock("https://acme.bitrix24.ru/rest/1/aaaaaaaaaaaa/")
    assert one == Path("/s/locks/acme.bitrix24.ru.lock")
    assert lock("https://ACME.bitrix24.ru:443/rest/7/bbbbbbbbbbbb/") == one
    assert lock("https://beta.bitrix24.ru/rest/1/aaaaaaaaaaaa/") != one


def test_a_real_portal_s_lock_is_the_same_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock was ./.b24kit/locks/<host>.lock: a cron job started in one folder and a
    person's migrate in another each took its own, and wrote at once. A real portal's
    lock is in a folder the machine's users share (B24KIT_LOCK_DIR names it here, as the
    tests do for their portals; B24KIT_STATE_DIR still puts it under that state folder);
    the local sandbox's stays beside its database."""
    from b24kit.client import B24Client, WebhookAuth, parse_webhook
    from b24kit.connect import Connection, shared_lock_dir

    client = B24Client(WebhookAuth(parse_webhook("https://acme.bitrix24.ru/rest/1/aaaa1111/")))
    conn = Connection(client, client.portal, "standard")
    monkeypatch.delenv("B24KIT_STATE_DIR", raising=False)
    monkeypatch.setenv("B24KIT_LOCK_DIR", str(tmp_path / "shared"))
    paths = set()
    for folder in ("cron", "person"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        paths.add(conn.lock_path().resolve())
    assert paths == {tmp_path / "shared" / "acme.bitrix24.ru.lock"}
    monkeypatch.setenv("B24KIT_STATE_DIR", str(tmp_path / "state"))
    assert conn.lock_path() == tmp_path / "state" / "locks" / "acme.bitrix24.ru.lock"
    monkeypatch.delenv("B24KIT_STATE_DIR")
    monkeypatch.delenv("B24KIT_LOCK_DIR")
    shared = shared_lock_dir()
    assert shared.is_absolute() and shared.name == "b24kit", "a machine-wide folder"
    assert shared.stat().st_mode & 0o1777 == 0o1777 or shared.stat().st_uid != os.getuid()


def test_sync_takes_the_lock_the_other_writers_take(project: Path) -> None:
    """sync defaulted its state folder to ./.b24kit and so locked ./.b24kit/locks while
    audit --fix, apply and migrate locked the machine's shared folder: a cron sync and an
    audit --fix made the same child twice. Every writer on a real portal takes one lock."""
    from b24kit.sandbox import Sandbox
    from b24kit.sandbox.server import start_in_thread

    box = Sandbox(limits="off")
    server = start_in_thread(box)
    try:
        url = box.webhook_url(server.base_url)
        host = server.base_url.split("//")[1].replace(":", "-")
        lock = Path(os.environ["B24KIT_LOCK_DIR"]) / f"{host}.lock"
        bp = "blueprints/company.yaml"
        assert run_cli("apply", bp, "-p", url, "--yes").returncode == 0
        held = hold(lock, job="audit", pid=4242, host="ops-1", since=ago(minutes=1))
        try:
            for args in (["sync", bp, "--once", "-q"], ["audit", bp, "--fix", "--yes"]):
                result = run_cli(*args, "-p", url, "--lock-wait", "0")
                assert result.returncode == 3, (args, result.stderr)
                assert "audit (pid 4242 on ops-1" in result.stderr, result.stderr
        finally:
            held.close()
    finally:
        server.stop()


def test_a_stopping_service_does_not_wait_for_the_lock(tmp_path: Path) -> None:
    """The review: stop() waited out --lock-wait (120 s) when another run held the lock."""
    lock = tmp_path / "run.lock"
    held = hold(lock, job="migrate", pid=1)
    stopping = [False]

    async def go() -> str:
        async def stop_soon() -> None:
            await asyncio.sleep(0.3)
            stopping[0] = True

        task = asyncio.create_task(stop_soon())
        try:
            async with run_lock(lock, "sync", wait=60, give_up=lambda: stopping[0]):
                return "entered"
        except LockHeld as exc:
            return str(exc)
        finally:
            await task

    import time

    begun = time.monotonic()  # the real clock: the test is that a stop ends the wait
    try:
        outcome = asyncio.run(go())
    finally:
        held.close()
    assert "holds" in outcome and time.monotonic() - begun < 5
