"""The sandbox CLI as a user runs it: real processes, real ports, real files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from typer.testing import CliRunner

from b24kit.cli.app import app
from tests.cli import CliResult, run_cli
from tests.processes import like_a_terminal

runner = CliRunner()


def _serve_cmd(db: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "b24kit",
        "sandbox",
        "serve",
        "--db",
        str(db),
        "--limits",
        "off",
        *args,
    ]


def _start(db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _serve_cmd(db, "--port", "0", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=like_a_terminal,
    )


def _webhook_url(proc: subprocess.Popen[str]) -> str:
    """The webhook URL a starting server prints once it listens (read as it comes)."""
    assert proc.stdout is not None
    url = None
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("Inbound webhook URL:"):
            url = line.split(":", 1)[1].strip()
            break
        if not line and proc.poll() is not None:
            break
    assert url, f"serve printed no webhook URL; stderr: {proc.stderr.read() if proc.stderr else ''}"
    return url


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@contextmanager
def server_processes(
    *dbs: Path, args: tuple[str, ...] = ()
) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    """Start `b24kit sandbox serve` on a free port for each database, all at once (each
    start is a second of a process loading); yield each process and its webhook URL.
    Stopped with SIGINT on the way out, unless the test already stopped them."""
    procs: list[subprocess.Popen[str]] = []
    try:
        procs = [_start(db, *args) for db in dbs]
        yield [(proc, _webhook_url(proc)) for proc in procs]
    finally:
        for proc in procs:
            _stop(proc)


@contextmanager
def server_process(db: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `b24kit sandbox serve` on a free port; yield the process and its webhook URL."""
    with server_processes(db, args=args) as [started]:
        yield started


@contextmanager
def served(db: Path, *args: str) -> Iterator[str]:
    """Start `b24kit sandbox serve` on a free port; yield its webhook URL."""
    with server_process(db, *args) as (_, url):
        yield url


def refused_serve(db: Path, *args: str) -> CliResult:
    """Run a `sandbox serve` that is expected to refuse at once: in this process (the
    entry point the installed command runs), as refusing is decided before it serves."""
    return run_cli("sandbox", "serve", "--db", str(db), "--limits", "off", *args)


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("b24kit "), "--version works"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "sandbox" in result.output, "--help lists command groups"
    result = runner.invoke(app, ["sandbox", "serve", "--help"])
    assert "--faults" in result.output and "--latency-ms" in result.output


def test_data_survives_restart_with_the_same_token(tmp_path: Path) -> None:
    db = tmp_path / "portal.sqlite"
    with served(db) as url:
        assert url.startswith("http://127.0.0.1:") and "/rest/1/" in url
        deal = httpx.post(url + "crm.deal.add", json={"fields": {"TITLE": "Трактор"}}).json()[
            "result"
        ]
    with served(db) as again:
        assert again.split("/rest/")[1] == url.split("/rest/")[1], "the token is kept with the db"
        got = httpx.post(again + "crm.deal.get", json={"id": deal}).json()["result"]
        assert got["TITLE"] == "Трактор", "the deal survived the restart"


def test_two_sandboxes_are_isolated(tmp_path: Path) -> None:
    with server_processes(tmp_path / "a.sqlite", tmp_path / "b.sqlite") as [(_, a), (_, b)]:
        assert a.split("/rest/")[0] != b.split("/rest/")[0], "different ports"
        httpx.post(a + "crm.deal.add", json={"fields": {"TITLE": "only in A"}})
        assert httpx.post(a + "crm.deal.list").json()["total"] == 1
        assert httpx.post(b + "crm.deal.list").json()["total"] == 0, "B does not see A's deal"
        other_token = b.split("/rest/1/")[1]
        wrong = httpx.post(a.split("/rest/")[0] + f"/rest/1/{other_token}crm.deal.list")
        assert wrong.status_code == 401, "B's token does not open A"


def test_fixed_token_and_memory_db(tmp_path: Path) -> None:
    with served(Path(":memory:"), "--token", "fixedtoken0000001") as url:
        assert url.endswith("/rest/1/fixedtoken0000001/")


def test_bad_flags_are_clear() -> None:
    result = runner.invoke(app, ["sandbox", "serve", "--limits", "huge"])
    assert result.exit_code == 2 and "standard, enterprise or off" in result.output
    result = runner.invoke(app, ["sandbox", "serve", "--faults", "boom=1"])
    assert result.exit_code == 2 and "unknown fault kind" in result.output


def test_seed_and_reset(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite")
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "calls:\n"
        "  - method: crm.category.add\n"
        "    params: {entityTypeId: 2, fields: {name: Логистика}}\n"
        "users: [{ID: 5, NAME: Ольга}]\n"
        "deals: [{TITLE: Перевозка трактора, CATEGORY_ID: 1}, {TITLE: Аренда}]\n"
        "contacts: [{NAME: Иван, PHONE: [{VALUE: '+79001234567'}]}]\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["sandbox", "seed", str(seed), "--db", db, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"deals": 2' in result.output and '"calls": 1' in result.output
    from b24kit.sandbox import Sandbox, SandboxConfig

    box = Sandbox(SandboxConfig(db=db))
    token = box.token
    assert box.call("crm.deal.get", {"id": 1})["STAGE_ID"] == "C1:NEW", "seeded into pipeline 1"
    box.close()
    result = runner.invoke(app, ["sandbox", "reset", "--db", db, "--yes"])
    assert result.exit_code == 0, result.output
    box = Sandbox(SandboxConfig(db=db))
    assert box.portal.count_items(2) == 0, "reset deleted the deals"
    assert box.token == token, "reset keeps the webhook token"
    box.close()


def test_bad_seed_file(tmp_path: Path) -> None:
    seed = tmp_path / "bad.yaml"
    seed.write_text("deals: [\n", encoding="utf-8")
    result = runner.invoke(app, ["sandbox", "seed", str(seed), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "bad.yaml" in result.output
    seed.write_text("dealz: []\n", encoding="utf-8")
    result = runner.invoke(app, ["sandbox", "seed", str(seed), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "unknown sections: dealz" in result.output


def test_serve_a_csv_as_a_google_sheet(tmp_path: Path) -> None:
    from b24kit.migrate.sources import gspread_client, read_gsheet

    csv_file = tmp_path / "projects.csv"
    csv_file.write_text("Клиент,Телефон\nООО Ромашка,8 900 123-45-67\n", encoding="utf-8")
    with served(tmp_path / "s.sqlite", "--sheet", f"demo={csv_file}") as url:
        base = url.split("/rest/")[0]
        grid = read_gsheet(gspread_client(endpoint=base), "demo")
    assert grid.rows == [["Клиент", "Телефон"], ["ООО Ромашка", "8 900 123-45-67"]]


# ----------------------------------------------------------------- sandbox safety
def test_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = refused_serve(tmp_path / "s.sqlite", "--port", str(port))
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (another sandbox?); pick another with --port"
    ]


def test_unusable_host_is_one_line_and_exit_3(tmp_path: Path) -> None:
    result = refused_serve(tmp_path / "s.sqlite", "--host", "no-such-host.invalid", "--port", "0")
    assert result.returncode == 3, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot listen on no-such-host.invalid")


def test_reset_and_seed_refuse_while_served_and_work_after(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    seed = tmp_path / "seed.yaml"
    seed.write_text("deals: [{TITLE: Аренда}]\n", encoding="utf-8")
    with server_process(db) as (proc, url):
        httpx.post(url + "crm.deal.add", json={"fields": {"TITLE": "kept"}}).raise_for_status()
        refused = f"error: a sandbox server is using {db} (pid {proc.pid}); stop it first"
        result = runner.invoke(app, ["sandbox", "reset", "--db", str(db), "--yes"])
        assert result.exit_code == 2 and result.output.strip() == refused, result.output
        result = runner.invoke(app, ["sandbox", "seed", str(seed), "--db", str(db)])
        assert result.exit_code == 2 and result.output.strip() == refused, result.output
        deals = httpx.post(url + "crm.deal.list").json()
        assert deals["total"] == 1, "the running server still has its data, in one copy"
        assert db.exists()
    result = runner.invoke(app, ["sandbox", "reset", "--db", str(db), "--yes"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["sandbox", "seed", str(seed), "--db", str(db)])
    assert result.exit_code == 0, result.output


def test_second_serve_on_the_same_db_refuses(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    # another database is another sandbox, not locked: served alongside
    with server_processes(db, tmp_path / "other.sqlite") as [(proc, _), _other]:
        second = refused_serve(db, "--port", "0")
        assert second.returncode == 2, (second.returncode, second.stdout, second.stderr)
        assert second.stderr.strip() == (
            f"error: a sandbox server is using {db} (pid {proc.pid}); stop it first"
        )
        proc.kill()  # even a server that dies without cleaning up frees the database
        proc.wait(timeout=10)
    result = runner.invoke(app, ["sandbox", "reset", "--db", str(db), "--yes"])
    assert result.exit_code == 0, result.output


def test_ctrl_c_and_sigterm_stop_cleanly(tmp_path: Path) -> None:
    signals = (signal.SIGINT, signal.SIGTERM)
    with server_processes(*(tmp_path / f"{sig.name}.sqlite" for sig in signals)) as started:
        for sig, (proc, _) in zip(signals, started, strict=True):
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, (sig, proc.returncode, err)
            assert "stopped" in out, (sig, out)
            assert err == "", (sig, err)
