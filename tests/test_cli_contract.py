"""The CLI's promises, command by command (issue 11): -h everywhere, -f validated, JSON
that parses, the exit-code table, no traceback, no silent success, no silent sandbox.

Commands run in-process through the real entry point (tests/cli.py: argument hoisting,
the error-to-exit-code mapping), in a folder of their own with the sandbox named as the
portal.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from b24kit.cli.app import hoist_global_flags
from b24kit.clock import Clock
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests import warm
from tests.cli import run_cli
from tests.clocks import FakeClock
from tests.processes import from_a_terminal

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    ["sandbox", "serve"],
    ["sandbox", "seed"],
    ["sandbox", "reset"],
    ["portal", "check"],
    ["portal", "conformance"],
    ["call"],
    ["validate"],
    ["plan"],
    ["apply"],
    ["export"],
    ["graph"],
    ["blueprint", "schema"],
    ["migrate", "run"],
    ["migrate", "init"],
    ["migrate", "schema"],
    ["audit"],
    ["sync"],
    ["report", "estimates"],
]


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> object:
        return json.loads(self.out)


@pytest.fixture
def b24kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for folder in ("blueprints", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("B24_PORTAL", "B24_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, clock: Clock | None = None) -> Result:
        result = run_cli(*args, clock=clock)
        assert "Traceback" not in result.stderr, result.stderr
        return Result(result.returncode, result.stdout, result.stderr)

    yield run


def test_every_command_has_help(b24kit) -> None:  # type: ignore[no-untyped-def]
    for command in COMMANDS:
        for flag in ("-h", "--help"):
            result = b24kit(*command, flag)
            assert result.code == 0 and "Usage:" in result.out, (command, flag, result.err)
            options = [
                line
                for line in result.out.splitlines()
                if line.lstrip("│ ").startswith("-") and "--help" not in line
            ]
            assert not [
                o
                for o in options
                if "<" in o.split("  ")[0] or "<list[" in o or "<bool>" in o or "<str>" in o
            ], f"{command}: readable metavars"


FORMATTED = [  # command (sandbox named), a name; apply first: the others read what it made
    (["apply", "blueprints/example.yaml", "-p", "sandbox", "--yes"], "apply"),
    (["validate", "blueprints/example.yaml"], "validate"),
    (["plan", "blueprints/example.yaml", "-p", "sandbox"], "plan"),
    (["export", "-p", "sandbox"], "export"),
    (["portal", "check", "-p", "sandbox"], "check"),
    (["audit", "blueprints/example.yaml", "-p", "sandbox"], "audit"),
    (["sync", "blueprints/example.yaml", "-p", "sandbox", "--once"], "sync"),
    (["report", "estimates", "blueprints/example.yaml", "-p", "sandbox"], "report"),
]


def test_formats_are_checked_and_json_parses(b24kit) -> None:  # type: ignore[no-untyped-def]
    for args, name in FORMATTED:
        wrong = b24kit(*args, "-f", "xml")
        assert wrong.code == 2 and "xml" in wrong.err, (name, wrong.err)
    for args, name in FORMATTED:
        result = b24kit(*args, "-f", "json")
        assert result.code == 0, (name, result.err)
        result.json()  # nothing but JSON on stdout
    conformance = b24kit("portal", "conformance", "--list", "-f", "json")
    assert conformance.code == 0 and isinstance(conformance.json(), list)


def test_no_portal_named_stops_every_portal_command(b24kit) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ["plan", "blueprints/example.yaml"],
        ["apply", "blueprints/example.yaml", "-y"],
        ["audit", "blueprints/example.yaml"],
        ["sync", "blueprints/example.yaml", "--once"],
        ["migrate", "run", "examples/projects.mapping.yaml", "--dry-run"],
        ["export"],
        ["portal", "check"],
        ["call", "server.time"],
    ):
        result = b24kit(*args)
        assert result.code == 2 and "no portal chosen" in result.err, (args, result.err)
    assert not Path(".b24kit").exists(), "no sandbox was made behind the user's back"


def test_exit_code_table(b24kit) -> None:  # type: ignore[no-untyped-def]
    bp = "blueprints/example.yaml"
    assert b24kit("apply", bp, "-p", "sandbox", "-y").code == 0
    cases = [
        (["plan", bp, "-p", "sandbox", "--detailed-exitcode"], 0),
        (["plan", "blueprints/company.yaml", "-p", "sandbox", "--detailed-exitcode"], 2),
        (["plan", bp, "-p", "nosuchprofile", "--detailed-exitcode"], 1),
        (["plan", bp, "-p", "sandbox", "--plan", "gold", "--detailed-exitcode"], 1),
        (["plan", bp, "-p", "sandbox", "--var", "novalue", "--detailed-exitcode"], 1),
        (["plan", bp, "-p", "sandbox", "--plan", "gold"], 2),
        (["apply", "blueprints/company.yaml", "-p", "sandbox"], 2),  # no terminal, no --yes
        (["audit", bp, "-p", "sandbox", "--link", "estimat"], 2),
        (["report", "estimates", bp, "-p", "sandbox", "--link", "estimat"], 2),
        (["audit", bp, "-p", "sandbox", "--fail-on", "fatal"], 2),
        (["call", "crm.deal.gett", "-p", "sandbox"], 2),
        (["call", "crm.deal.get", "id=999", "-p", "sandbox"], 3),
        (["sync", bp, "-p", "sandbox"], 2),  # neither --once nor --serve
        (["validate", "no-such-file.yaml"], 2),
        (["nosuchcommand"], 2),
    ]
    for args, code in cases:
        result = b24kit(*args)
        assert result.code == code, (args, result.code, result.err)
        if code:
            assert result.err.strip(), f"{args}: a failure says why"


def test_a_blueprint_without_links_is_one_line(b24kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nolinks.yaml"
    path.write_text(
        "version: 1\nname: x\ndeal:\n  pipelines:\n    - code: a\n      name: A\n"
        "      stages:\n        - {code: NEW, name: N}\n"
        "        - {code: WON, name: W, semantics: success}\n"
        "        - {code: LOSE, name: L, semantics: failure}\n",
        encoding="utf-8",
    )
    for args in (
        ["audit", str(path), "-p", "sandbox"],
        ["report", "estimates", str(path), "-p", "sandbox"],
        ["sync", str(path), "-p", "sandbox", "--once"],
    ):
        result = b24kit(*args)
        assert result.code == 2 and "declares no links" in result.err, (args, result.err)


def test_global_flags_anywhere_and_internal_errors(b24kit, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    assert hoist_global_flags(["audit", "x.yaml", "-q", "--", "-q"]) == [
        "-q",
        "audit",
        "x.yaml",
        "--",
        "-q",
    ]
    quiet = b24kit("validate", "blueprints/example.yaml", "-q")
    assert quiet.code == 0
    verbose = b24kit("call", "server.time", "-p", "sandbox", "-vv")
    assert verbose.code == 0 and "Logging error" not in verbose.err, "log lines format"
    assert "HTTP Request: POST" in verbose.err

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr("b24kit.blueprint.graph.mermaid", boom)  # graph imports it when run
    result = b24kit("graph", "blueprints/example.yaml")
    assert result.code == 4 and "internal error (RuntimeError: kaput)" in result.err
    assert "--debug" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_saved_plan_is_known_by_its_content(b24kit) -> None:  # type: ignore[no-untyped-def]
    saved = b24kit("plan", "blueprints/example.yaml", "-p", "sandbox", "-o", "next.tfplan")
    assert saved.code == 0 and "apply it with: b24kit apply next.tfplan" in saved.out
    applied = b24kit("apply", "next.tfplan", "-p", "sandbox", "--yes")
    assert applied.code == 0, applied.err
    assert "Applied 24 of 24 changes on local sandbox portal" in applied.out
    assert "Target: local sandbox portal" in applied.err, "writes name their target first"


def test_sync_marks_are_kept_per_portal(b24kit) -> None:  # type: ignore[no-untyped-def]
    """A pass on portal A must not hide portal B's changes (same folder, same link)."""
    bp = "blueprints/example.yaml"
    clock = FakeClock()  # the portals' clock: the test moves it on instead of sleeping
    boxes = [Sandbox(limits="off", clock=clock.time), Sandbox(limits="off", clock=clock.time)]
    servers = [start_in_thread(box) for box in boxes]
    try:
        hooks = [
            box.webhook_url(server.base_url) for box, server in zip(boxes, servers, strict=True)
        ]
        for hook in hooks:
            assert b24kit("apply", bp, "-p", hook, "--yes").code == 0
        assert b24kit("sync", bp, "-p", hooks[0], "--once").code == 0
        clock.advance(1.1)  # the portals stamp DATE_MODIFY in whole seconds
        box = boxes[1]
        cats = box.call("crm.category.list", {"entityTypeId": 2})["categories"]
        sales = next(c["id"] for c in cats if c["name"] == "Продажи")
        box.call(
            "crm.deal.add",
            {"fields": {"TITLE": "B", "CATEGORY_ID": sales, "STAGE_ID": f"C{sales}:ESTIMATE"}},
        )
        # past a pass's 5-second overlap: A's next mark is later than B's new deal, so a
        # mark shared between the portals would hide that deal from B's pass
        clock.advance(6)
        assert b24kit("sync", bp, "-p", hooks[0], "--once").code == 0
        result = b24kit("sync", bp, "-p", hooks[1], "--once", "-f", "json")
        assert result.code == 0 and result.json()["children_created"] == 1  # type: ignore[index]
    finally:
        for server in servers:
            server.stop()


def test_an_unresolvable_portal_fails_fast(b24kit) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = b24kit("portal", "check", "-p", "https://b24kit-no-such-host.invalid/rest/1/abc/")
    assert result.code == 3 and "does not resolve" in result.err
    assert time.monotonic() - started < 5
    assert "abc" not in result.err, "the secret is never shown"


def test_retries_are_announced(b24kit) -> None:  # type: ignore[no-untyped-def]
    box = Sandbox(limits="off", faults="500=1,seed=1")
    server = start_in_thread(box)
    clock = FakeClock()  # the backoff's waits are made and recorded, in no time
    try:
        result = b24kit("call", "server.time", "-p", box.webhook_url(server.base_url), clock=clock)
    finally:
        server.stop()
    assert result.code == 3
    assert "server.time: retrying (2/8)" in result.err
    assert "server.time: retrying (8/8) in 15 s" in result.err, "every retry is announced"
    assert clock.sleeps == [0.5, 1, 2, 4, 8, 15, 15], "8 attempts, backoff doubling to 15 s"
    assert box.statuses[500] == 8


def test_ctrl_c_exits_130_and_says_how_to_go_on(tmp_path: Path) -> None:
    """A real process and a real SIGINT, while it waits on a portal that never answers."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    port = silent.getsockname()[1]
    proc = warm.start(
        [
            "call",
            "server.time",
            "-p",
            f"http://127.0.0.1:{port}/rest/1/abcdefgh/",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )
    silent.settimeout(60)
    held, _ = silent.accept()  # the request is on its way: b24kit waits for the answer
    proc.send_signal(2)
    _, err = proc.communicate(timeout=20)
    held.close()
    silent.close()
    assert proc.returncode == 130, err
    assert "interrupted; run the same command again to continue" in err
    assert "Traceback" not in err


def test_ctrl_c_while_it_loads_is_the_same(tmp_path: Path) -> None:
    # the installed command, as a user starts it: under `python -m`, CPython itself may
    # report a Ctrl-C that the program caught during its imports as death by SIGINT
    installed = Path(sys.executable).parent / "b24kit"
    command = [str(installed)] if installed.exists() else [sys.executable, "-m", "b24kit"]
    proc = subprocess.Popen(
        [*command, "validate", "nothing.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **from_a_terminal(),
    )
    time.sleep(0.4)  # python is up, b24kit is still importing (or already done)
    proc.send_signal(2)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode in (130, 2), err  # interrupted, or it had finished: bad file
    assert "Traceback" not in err


def test_graph_draws_every_pipeline_unless_asked(b24kit) -> None:  # type: ignore[no-untyped-def]
    full = b24kit("graph", "blueprints/company.yaml")
    assert full.code == 0 and "subgraph fulfil_rental" in full.out, "unlinked pipelines too"
    narrow = b24kit("graph", "blueprints/company.yaml", "--linked-only")
    assert narrow.code == 0 and "subgraph fulfil_rental" not in narrow.out
    assert "subgraph sales_rental" in narrow.out, "every parent pipeline of a link is linked"
    assert "not drawn: " in narrow.err, "what is left out is said"


def test_long_and_empty_reports_say_so(b24kit) -> None:  # type: ignore[no-untyped-def]
    bp = "blueprints/example.yaml"
    assert b24kit("apply", bp, "-p", "sandbox", "--yes").code == 0
    from b24kit.connect import connect

    conn = connect("sandbox")
    box = conn.sandbox
    cats = box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    sales = next(c["id"] for c in cats if c["name"] == "Продажи")
    for i in range(55):  # parents in the trigger stage with no child: 55 findings
        box.call(
            "crm.deal.add",
            {"fields": {"TITLE": f"P{i}", "CATEGORY_ID": sales, "STAGE_ID": f"C{sales}:ESTIMATE"}},
        )
    box.close()
    audit = b24kit("audit", bp, "-p", "sandbox")
    assert (
        audit.code == 1
        and "... and 5 more findings (-f json or -o FILE lists every one)" in audit.out
    )
    report = b24kit("report", "estimates", bp, "-p", "sandbox")
    assert report.code == 0 and "No estimates to report for link 'estimate'" in report.out


def test_a_refused_connection_fails_fast_and_a_write_names_its_target(b24kit) -> None:  # type: ignore[no-untyped-def]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    started = time.monotonic()
    result = b24kit("portal", "check", "-p", f"http://127.0.0.1:{port}/rest/1/abcdefgh/")
    assert result.code == 3 and time.monotonic() - started < 5, result.err
    assert "abcdefgh" not in result.err
    wrote = b24kit("call", "crm.deal.add", "fields.TITLE=x", "-p", "sandbox")
    assert wrote.code == 0 and "Target: local sandbox portal" in wrote.err
    read = b24kit("call", "crm.deal.list", "-p", "sandbox")
    assert read.code == 0 and "Target:" not in read.err


def test_newcomers_mistakes_are_one_line_usage_errors(b24kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """From a newcomer's run of the README on a fresh clone."""
    cases = [
        (["export", "-p", "sandbox", "-o", "/nonexistent/dir/x.yaml"], "No such file"),
        (["graph", "blueprints/example.yaml", "-o", "g.png"], "graph writes .svg"),
        (
            [
                "migrate",
                "run",
                "examples/projects.mapping.yaml",
                "-p",
                "sandbox",
                "--dry-run",
                "--report",
                "r.txt",
            ],
            ".csv or .json",
        ),
        (["sandbox", "seed", "x.yaml", "--db", ":memory:"], "keeps nothing"),
    ]
    Path("x.yaml").write_text("deals: [{TITLE: a}]\n", encoding="utf-8")
    for args, text in cases:
        result = b24kit(*args)
        assert result.code == 2 and text in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) <= 2, result.err
    assert not Path("g.png").exists()


def test_a_drafted_mapping_runs_from_anywhere(b24kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """migrate init writes the blueprint it was given and paths relative to the mapping."""
    Path("maps").mkdir()
    made = b24kit(
        "migrate",
        "init",
        "blueprints/company.yaml",
        "--csv",
        "examples/projects.csv",
        "-o",
        "maps/m.yaml",
    )
    assert made.code == 0, made.err
    text = Path("maps/m.yaml").read_text(encoding="utf-8")
    assert "blueprint: ../blueprints/company.yaml" in text
    assert "csv: ../examples/projects.csv" in text
    assert b24kit("apply", "blueprints/company.yaml", "-p", "sandbox", "--yes").code == 0
    dry = b24kit("migrate", "run", "maps/m.yaml", "-p", "sandbox", "--dry-run")
    assert "No such file" not in dry.err and "internal error" not in dry.err, dry.err


def test_audit_with_a_report_file_keeps_stdout_to_the_summary(b24kit) -> None:  # type: ignore[no-untyped-def]
    bp = "blueprints/example.yaml"
    assert b24kit("apply", bp, "-p", "sandbox", "--yes").code == 0
    result = b24kit("audit", bp, "-p", "sandbox", "-f", "json", "-o", "audit.json")
    assert result.code == 0 and result.out.strip().startswith("audit: ")
    assert len(result.out.strip().splitlines()) == 1 and "report in audit.json" in result.out
    json.loads(Path("audit.json").read_text(encoding="utf-8"))


def test_names_from_the_portal_cannot_break_or_forge_the_plan(b24kit) -> None:  # type: ignore[no-untyped-def]
    """Issue 16, item 6: a stage an admin renamed to markup or terminal escapes must not
    crash plan or rewrite what a person approves."""
    bp = "blueprints/example.yaml"
    assert b24kit("apply", bp, "-p", "sandbox", "--yes").code == 0
    from b24kit.connect import connect

    conn = connect("sandbox")
    box = conn.sandbox
    row = box.call("crm.status.list", {"filter": {"NAME": "Оценить"}})[0]
    box.call(
        "crm.status.update",
        {"id": row["ID"], "fields": {"NAME": "[/][bold]Оценить\x1b[2J\u202eevil"}},
    )
    box.close()
    result = b24kit("plan", bp, "-p", "sandbox")
    assert result.code == 0, result.err
    assert "\x1b" not in result.out and "\u202e" not in result.out
    assert "[/][bold]Оценить\\u001b[2J\\u202eevil" in result.out, "shown, escaped, visible"


def test_secrets_at_the_edges(b24kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 16, items 7 and 11: a password in the URL is never shown; the sandbox file holding
    the token is private; a rejected-rows report cannot run formulas in a spreadsheet."""
    from b24kit.migrate.run import inert

    result = b24kit(
        "portal", "check", "-p", "https://bob:hunter2@b24kit-no-such-host.invalid/rest/1/abcdef/"
    )
    assert result.code == 3 and "hunter2" not in result.err and "abcdef" not in result.err
    assert b24kit("validate", "blueprints/example.yaml").code == 0
    assert b24kit("call", "server.time", "-p", "sandbox").code == 0
    assert (Path(".b24kit/sandbox.sqlite").stat().st_mode & 0o077) == 0, "0600"
    assert [inert(v) for v in ('=HYPERLINK("x")', "+1", "@SUM(A1)", "-2", "ok", 5)] == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'@SUM(A1)",
        "'-2",
        "ok",
        5,
    ]


def test_a_ctrl_c_that_python_wraps_during_imports_is_still_a_ctrl_c() -> None:
    # seen under load: Ctrl-C inside a dataclass field's __set_name__ reached the entry
    # point as "RuntimeError: Error calling __set_name__", and the command ended with 1
    from b24kit.cli.entry import interrupted_by

    class Interrupts:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    with pytest.raises(BaseException) as caught:

        class Holder:
            field = Interrupts()

    assert interrupted_by(caught.value)
    assert not interrupted_by(RuntimeError("Error calling __set_name__"))
    assert not interrupted_by(ValueError("bad file"))
