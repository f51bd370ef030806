"""Start-up (issue 15 item 6): a command imports what it uses, when it uses it. Each test
starts b24kit as a real process (what a process has imported is the point; this one has
imported everything) and reads the modules it loaded. Timing is not asserted (a loaded
machine makes it flaky); scripts/bench_startup.py measures it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# runs the installed entry point, then writes the names of the modules it loaded
# runs the installed entry point, then writes the names of the modules it loaded (a None
# in sys.modules is a module kept from loading: cli/entry.py's _lighter_start)
LOADED = """
import json, os, sys
from b24kit.cli.entry import main
try:
    main()
finally:
    with open(os.environ["B24KIT_TEST_MODULES"], "w", encoding="utf-8") as handle:
        json.dump(sorted(k for k, v in sys.modules.items() if v is not None), handle)
"""

# what a run against a portal needs, and --help or validate never do
CLIENT = ("httpx", "httpcore", "anyio", "tenacity", "asyncio", "b24kit.client", "b24kit.connect")
ENGINES = ("b24kit.blueprint.apply", "b24kit.migrate", "b24kit.links", "b24kit.reports.build")
EXTRAS = ("gspread", "openpyxl", "plotly", "uvicorn", "rich.progress", "click")
SANDBOX = ("b24kit.sandbox",)


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    """``b24kit ARGS`` in a new process: exit code, stderr, and the modules it loaded."""
    listing = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path),  # no profile of the machine's user
            "B24KIT_TEST_MODULES": str(listing),
            **(env or {}),
        },
    )
    return proc.returncode, proc.stderr, set(json.loads(listing.read_text(encoding="utf-8")))


def under(modules: set[str], *packages: str) -> list[str]:
    """The modules that are one of ``packages`` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_help_loads_no_portal_client_model_or_engine(tmp_path: Path) -> None:
    code, err, modules = run(tmp_path, "--help")
    assert code == 0, err
    assert "b24kit.cli.blueprint" in modules, "every command is listed: its module is loaded"
    assert under(modules, *CLIENT, *ENGINES, *EXTRAS, *SANDBOX) == []
    assert under(modules, "pydantic", "yaml", "b24kit.blueprint.model") == []


def test_validate_loads_the_blueprint_loader_and_nothing_of_a_portal(tmp_path: Path) -> None:
    code, err, modules = run(tmp_path, "validate", "blueprints/company.yaml")
    assert code == 0, err
    assert {"b24kit.blueprint.loader", "b24kit.blueprint.model", "yaml"} <= modules
    assert under(modules, *CLIENT, *ENGINES, *EXTRAS, *SANDBOX) == []


def test_a_run_against_a_real_portal_never_loads_the_sandbox(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the write fails at once (writes are sent once)
    webhook = f"http://127.0.0.1:{port}/rest/1/abcdefgh/"
    code, err, modules = run(
        tmp_path, "call", "crm.deal.add", "--json", "{}", env={"B24_WEBHOOK_URL": webhook}
    )
    assert code == 3, err
    assert "could not reach" in err
    assert {"b24kit.client", "b24kit.connect", "httpx"} <= modules, "it did go to the portal"
    assert under(modules, *SANDBOX) == []
    assert under(modules, *ENGINES) == [], "call needs no blueprint, migration or report engine"
    assert under(modules, "click", "pygments") == [], "httpx's own command line is not loaded"


def test_the_lock_wait_default_is_the_locks_own() -> None:
    """cli/common.py names the default without importing b24kit.locks (asyncio) for it."""
    from b24kit.cli.common import LOCK_WAIT
    from b24kit.locks import WAIT

    assert LOCK_WAIT == WAIT


def _read(path: Path) -> object:
    """What read_yaml makes of a file: its data and every mark, or its issues."""
    from b24kit.blueprint.loader import BlueprintError, read_yaml

    try:
        doc = read_yaml(path)
    except BlueprintError as exc:
        return [str(issue) for issue in exc.issues]
    return doc.data, doc.marks


def test_libyaml_reads_every_yaml_file_as_pyyaml_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader composes with libyaml (6x faster than PyYAML's own parser on
    company.yaml): the same values and file:line:column marks, and the same errors, over
    every blueprint, mapping and hostile file of the repository."""
    from b24kit.blueprint import loader

    assert loader._FAST_LOADER is not None, "PyYAML without libyaml: the fast path is off"
    # every file parsed by each parser: none of it from what read_yaml kept of a read
    monkeypatch.setattr(loader, "_READ", OrderedDict())
    monkeypatch.setattr(loader, "_READ_KEPT", 0)
    files = sorted(
        p for d in ("blueprints", "examples", "tests") for p in (ROOT / d).rglob("*.yaml")
    )
    assert len(files) > 100
    fast = [_read(p) for p in files]
    monkeypatch.setattr(loader, "_FAST_LOADER", None)  # PyYAML's own parser, as before
    slow = [_read(p) for p in files]
    differ = [p.name for p, a, b in zip(files, fast, slow, strict=True) if a != b]
    assert differ == []
    assert sum(isinstance(r, list) for r in slow) >= 3, "refused files are compared too"
