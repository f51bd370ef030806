"""Fixtures: a sandbox, and a REST caller that reaches it over real HTTP or in-process."""

from __future__ import annotations

import compileall
import gc
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24kit.encoding import build_query
from b24kit.sandbox import Sandbox
from tests.servers import http_client, served

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """The tests are collected from the project folder, wherever pytest was started (last,
    so that options naming files, such as --junitxml, were already read relative to where
    pytest was started); each test then runs in an empty folder of its own
    (``_in_a_folder_of_its_own``).

    And the test modules pytest rewrites for its assertions are kept in __pycache__, as
    pytest does by default: it keeps them only where bytecode may be written, so with
    PYTHONDONTWRITEBYTECODE set (as here and in some CI images) every worker rewrote and
    compiled every test module on every run, about five seconds of CPU each. (The folders
    are ignored by git; b24kit's own are written by pytest_sessionstart below.)"""
    os.chdir(ROOT)
    sys.dont_write_bytecode = False
    # a real portal's run lock lives in a folder every user of the machine shares
    # (/run/lock/b24kit): the tests' portals (sandboxes served on loopback ports) keep
    # theirs in one folder of this run's, shared by its workers, removed at its end
    if "B24KIT_LOCK_DIR" not in os.environ:
        os.environ["B24KIT_LOCK_DIR"] = tempfile.mkdtemp(prefix="b24kit-test-locks-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop("B24KIT_LOCK_DIR"), True))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores. A fifth of the run a worker waits on
    something that is not its own CPU (a server's latency, a real process it started, a
    browser), and the extra worker takes that core meanwhile: on 2 cores, 3 workers ran
    the suite in 66-70 s where 2 took 74-75 s, for 1-7% more CPU."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before the workers start (the controlling process, when the tests run in parallel),
    on both cores at once:

    - byte-compile b24kit, for the tests that start it as a process: with
      PYTHONDONTWRITEBYTECODE set, each such process would compile all of it again (half
      a second each);
    - rewrite the test modules' asserts, as pytest does on import, into pytest's own cache
      (__pycache__/*-pytest-*.pyc). On a fresh clone there is none, and each worker
      rewrote every test module itself, both at once: 2.7 s of each core before the first
      test (74 modules then).

    Stale or missing cache files only: a second run does nothing here."""
    if hasattr(session.config, "workerinput"):
        return
    tests = [p for p in sorted((ROOT / "tests").glob("*.py")) if _rewritten_by_pytest(p)]
    todo = [p for p in tests if _cached_rewrite(p) is None]
    child = os.fork() if todo and hasattr(os, "fork") else -1
    # the child: b24kit and every other module; the parent: the rest; no child: all of it
    share = todo[1::2] if child == 0 else todo[::2] if child > 0 else todo
    try:
        if child <= 0:
            compileall.compile_dir(str(ROOT / "src" / "b24kit"), quiet=1)
        _rewrite(session.config, share)
    finally:
        if child == 0:
            os._exit(0)  # never back into pytest
    if child > 0:
        os.waitpid(child, 0)


def _rewritten_by_pytest(path: Path) -> bool:
    return path.name == "conftest.py" or path.name.startswith("test_")


def _rewrite_cache(path: Path) -> Path:
    """Where pytest keeps its rewrite of the test module ``path``."""
    from _pytest.assertion import rewrite

    return rewrite.get_cache_dir(path) / (path.name[:-3] + rewrite.PYC_TAIL)


def _cached_rewrite(path: Path) -> Any:
    """pytest's cached rewrite of ``path`` if it is there and current, else None. If this
    pytest keeps it elsewhere (its internals are pinned, not promised), True: nothing is
    done ahead, and the workers rewrite the module, as before."""
    try:
        from _pytest.assertion import rewrite

        return rewrite._read_pyc(path, _rewrite_cache(path))
    except Exception:  # noqa: BLE001  pytest's internals: nothing is lost without it
        return True


def _rewrite(config: pytest.Config, paths: list[Path]) -> None:
    """Rewrite and cache ``paths`` as pytest's import hook would (pytest's own functions;
    pytest is pinned in pyproject.toml). Any failure leaves it to the import hook."""
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        for path in paths:
            source_hash, code = rewrite._rewrite_test(path, config)
            cache = _rewrite_cache(path)
            if rewrite.try_makedirs(cache.parent):
                rewrite._write_pyc(state, code, source_hash, cache)
    except Exception:  # noqa: BLE001  as above
        return


# The modules whose tests take longest in all (wall time, 2026-11-30), longest first.
# They run first, and the run ends on short tests every worker can take a share of (with
# pytest-xdist's worksteal, the first worker starts on the head of this order and the
# others take from the end of its queue when theirs runs out); before, a 2,000-row
# migration's fixture (test_migrate_acceptance) was made last, while the other workers
# waited for it. A name missing here, or stale, only changes the order.
LONGEST_FIRST = (
    "test_migrate_acceptance.py",
    "test_migrate.py",
    "test_report_html.py",
    "test_sync_load.py",
    "test_mapping_columns.py",
    "test_warm.py",
    "test_migrate_edits.py",
    "test_blueprint_apply.py",
    "test_links.py",
    "test_paging.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-module order


def pytest_collection_finish(session: pytest.Session) -> None:
    """Python's cyclic garbage collector, tuned for a test run: the collected tests, the
    shared sheets and portals live for the whole run, and with the default thresholds the
    collector walks them again and again (a tenth of the CPU of the migration tests).
    Collected objects are frozen out of its reach, and it runs less often; garbage is
    still collected. The b24kit processes the tests start are not affected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """At the end, pytest's unraisable-exception check collects garbage ten times over
    (five passes, twice) to find finalizers that failed: each pass walked every object the
    run made, a second of CPU per worker at its end. One pass here finds them as well
    (what it finds is reported as before); what survives it is frozen out of the rest."""
    gc.collect()
    gc.freeze()


class Rest:
    """Raw calls to a sandbox webhook, in the three wire shapes a client may use."""

    def __init__(self, client: httpx.Client | None, sandbox: Sandbox, base: str, mode: str) -> None:
        self.client = client
        self.sandbox = sandbox
        self.base = base
        self.mode = mode
        self.hook = sandbox.webhook_url(base)

    def raw(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        encoding: str = "json",
        url: str | None = None,
    ) -> httpx.Response:
        target = (url or self.hook) + method
        params = params or {}
        if encoding == "json":
            return self._send(
                "POST",
                target,
                content=json.dumps(params).encode(),
                headers={"content-type": "application/json"},
            )
        if encoding == "form":
            return self._send(
                "POST",
                target,
                content=build_query(params).encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        return self._send("GET", target + ("?" + build_query(params) if params else ""))

    def _send(self, verb: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.client is not None:
            return self.client.request(verb, url, **kwargs)
        import asyncio

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.sandbox.transport()) as client:
                return await client.request(verb, url, **kwargs)

        return asyncio.run(go())

    def ok(self, method: str, params: dict[str, Any] | None = None, encoding: str = "json") -> Any:
        response = self.raw(method, params, encoding)
        assert response.status_code == 200, (
            f"{method} failed: {response.status_code} {response.text}"
        )
        return response.json()["result"]

    def error(
        self, method: str, params: dict[str, Any] | None = None, encoding: str = "json"
    ) -> tuple[int, Any, str]:
        response = self.raw(method, params, encoding)
        body = response.json()
        assert "error" in body, f"{method} was expected to fail but returned {body}"
        return response.status_code, body["error"], body["error_description"]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(limits="off")
    yield box
    box.close()


@pytest.fixture(params=["http", "inprocess"])
def rest(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[Rest]:
    """Every test using this runs twice: over loopback HTTP (the process's shared server,
    tests/servers.py, with this test's sandbox at a path of its own) and in-process."""
    if request.param == "http":
        with served(sandbox) as base:
            yield Rest(http_client(), sandbox, base, "http")
    else:
        yield Rest(None, sandbox, "http://sandbox.local", "inprocess")


@pytest.fixture
def api(sandbox: Sandbox) -> Sandbox:
    """Direct in-process method calls, for the method-family tests."""
    return sandbox


def call_error(sandbox: Sandbox, method: str, params: dict[str, Any]) -> Any:
    from b24kit.sandbox.errors import ApiError

    with pytest.raises(ApiError) as info:
        sandbox.call(method, params)
    return info.value


_FOLDER: list[Path] = []  # the folder every test of this process starts in (made once)


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test starts in an empty folder, never the checkout: b24kit keeps its local
    sandbox and each portal's state (run locks, sync marks) in ./.b24kit, and a test must
    neither read nor write a developer's own (tests pass from any folder). The folder is
    emptied after each test, so no test sees what another left."""
    if not _FOLDER:
        _FOLDER.append(tmp_path_factory.mktemp("cwd"))
    folder = _FOLDER[0]
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _sigint_as_found() -> Iterator[None]:
    """Ctrl-C in the test process stays as pytest set it: a test that leaves SIGINT
    ignored (an in-process run of the entry point ignores it as it exits) would have every
    process a later test starts inherit the ignored signal and never answer its Ctrl-C."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    if after is not before:
        signal.signal(signal.SIGINT, before)
        leaks = os.environ.get("B24KIT_SIGINT_LEAKS")
        if leaks:  # where to record who left it changed (a diagnostic for CI runs)
            with open(leaks, "a", encoding="utf-8") as handle:
                handle.write(f"{os.environ.get('PYTEST_CURRENT_TEST')}: {after!r}\n")


@pytest.fixture(scope="session")
def deployed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox database file where the company blueprint was applied, made once per test
    run (tests/once.py): copy it to DIR/.b24kit/sandbox.sqlite and ``-p sandbox`` run in
    DIR finds a deployed portal (an apply costs a second; a copy, milliseconds)."""
    from tests.once import once_file

    return once_file(tmp_path_factory, "deployed.sqlite", _deploy_company)


def _deploy_company(path: Path) -> None:
    import asyncio
    import sqlite3

    from b24kit.blueprint.apply import apply_blueprint
    from b24kit.blueprint.loader import load_blueprint
    from tests.clients import client_for

    box = Sandbox(limits="off")
    company = load_blueprint(ROOT / "blueprints" / "company.yaml")[0]

    async def go() -> None:
        with client_for(box) as client:
            assert (await apply_blueprint(client, company)).ok

    asyncio.run(go())
    target = sqlite3.connect(path)
    box.db.conn.backup(target)
    target.close()
    box.close()
