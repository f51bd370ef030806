"""The sandbox CLI as a user runs it: real ports, real files, and real processes where a
process of its own is the point (a lock another process holds, a kill, Ctrl-C and SIGTERM);
the rest run ``sandbox serve`` in this process (serve_in_process): a process costs a
second of CPU loading b24kit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from unittest import mock

from typer.testing import CliRunner

from b24kit.cli.app import app
from tests import warm
from tests.cli import CliResult, printed, run_cli
from tests.servers import http_client
from tests.warm import WarmProcess

runner = CliRunner()
http = (
    http_client()
)  # plain HTTP: one client for the process (each new one loads the TLS certificates)
T = TypeVar("T")


def _serve_cmd(db: Path, *args: str) -> list[str]:
    return [
        "sandbox",
        "serve",
        "--db",
        str(db),
        "--limits",
        "off",
        *args,
    ]


def _start(db: Path, *args: str) -> WarmProcess:
    # a real, separate process (its pid holds the database's lock; kill -9, SIGINT and
    # SIGTERM reach it), started warm: its start is not what these tests check
    return warm.start(
        _serve_cmd(db, "--port", "0", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _webhook_url(proc: WarmProcess) -> str:
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


def _stop(proc: WarmProcess) -> None:
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
) -> Iterator[list[tuple[WarmProcess, str]]]:
    """Start `b24kit sandbox serve` on a free port for each database, all at once (each
    start is a second of a process loading); yield each process and its webhook URL.
    Stopped with SIGINT on the way out, unless the test already stopped them."""
    procs: list[WarmProcess] = []
    try:
        procs = [_start(db, *args) for db in dbs]
        yield [(proc, _webhook_url(proc)) for proc in procs]
    finally:
        for proc in procs:
            _stop(proc)


def serve_in_process(db: Path, *args: str, then: Callable[[str], T]) -> tuple[T, CliResult]:
    """Run `b24kit sandbox serve` on a free port in this process (tests/cli.py: the entry
    point the installed command runs). Once the command has printed its webhook URL,
    ``then(url)`` runs in a thread beside the server, and a Ctrl-C stops it as a terminal
    gives one: SIGINT to this process's main thread, where the command runs (uvicorn's
    graceful stop, then the command's own handling of the interrupt). Returns what
    ``then`` returned and the command's outcome."""
    from b24kit.sandbox import server

    real = server.serve
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main, "the command runs in the main thread"
    guard = threading.Lock()  # the Ctrl-C is sent only while the server is running
    serving: list[bool] = []
    returned: list[T] = []
    raised: list[BaseException] = []
    helpers: list[threading.Thread] = []

    def body(url: str) -> None:
        try:
            returned.append(then(url))
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test's thread)
            raised.append(exc)
        finally:
            with guard:
                if serving:
                    signal.pthread_kill(main, signal.SIGINT)

    def serve(sandbox: object, host: str, port: int, on_ready: Callable[[str], None]) -> None:
        def ready(base: str) -> None:
            on_ready(base)  # the command prints where it listens
            lines = printed().splitlines()
            url = next(x.split(":", 1)[1].strip() for x in lines if x.startswith("Inbound"))
            serving.append(True)
            helpers.append(threading.Thread(target=body, args=(url,), daemon=True))
            helpers[-1].start()

        try:
            real(sandbox, host, port, ready)  # type: ignore[arg-type]
        finally:
            with guard:
                serving.clear()

    with mock.patch.object(server, "serve", serve):
        result = run_cli(
            "sandbox", "serve", "--db", str(db), "--limits", "off", "--port", "0", *args
        )
    for helper in helpers:
        helper.join(30)
    if raised:
        raise raised[0]
    assert returned, f"serve printed no webhook URL ({result.returncode}): {result.stderr}"
    assert result.returncode == 0 and "stopped" in result.stdout, (result.returncode, result.stderr)
    return returned[0], result


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

    def add(url: str) -> int:
        assert url.startswith("http://127.0.0.1:") and "/rest/1/" in url
        deal = http.post(url + "crm.deal.add", json={"fields": {"TITLE": "Трактор"}})
        return int(deal.json()["result"])

    deal, first = serve_in_process(db, then=add)
    url = first.stdout.split("Inbound webhook URL: ")[1].split()[0]

    def get(again: str) -> None:
        assert again.split("/rest/")[1] == url.split("/rest/")[1], "the token is kept with the db"
        got = http.post(again + "crm.deal.get", json={"id": deal}).json()["result"]
        assert got["TITLE"] == "Трактор", "the deal survived the restart"

    serve_in_process(db, then=get)


def test_fixed_token_and_memory_db() -> None:
    url, _ = serve_in_process(Path(":memory:"), "--token", "fixedtoken0000001", then=str)
    assert url.endswith("/rest/1/fixedtoken0000001/")


def test_bad_flags_are_clear() -> None:
    """Refused before anything is written: a bad --faults or --reading made the
    database's lock file (and its folder) first."""
    result = runner.invoke(app, ["sandbox", "serve", "--limits", "huge"])
    assert result.exit_code == 2 and "standard, enterprise or off" in result.output
    result = runner.invoke(app, ["sandbox", "serve", "--faults", "boom=1"])
    assert result.exit_code == 2 and "unknown fault kind" in result.output
    result = runner.invoke(app, ["sandbox", "serve", "--reading", "no-such-reading"])
    assert result.exit_code == 2 and "unknown sandbox reading" in result.output
    assert not Path(".b24kit").exists(), "nothing written"


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
    from b24kit.migrate.sources import Grid, gspread_client, read_gsheet

    csv_file = tmp_path / "projects.csv"
    csv_file.write_text("Клиент,Телефон\nООО Ромашка,8 900 123-45-67\n", encoding="utf-8")

    def read(url: str) -> Grid:
        return read_gsheet(gspread_client(endpoint=url.split("/rest/")[0]), "demo")

    grid, _ = serve_in_process(tmp_path / "s.sqlite", "--sheet", f"demo={csv_file}", then=read)
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


def test_two_sandboxes_are_isolated_and_a_database_is_served_once(tmp_path: Path) -> None:
    """Two servers at once on two databases: neither sees the other's data nor opens with
    the other's token. A second serve on a database in use refuses, naming the process
    that holds it; another database is another sandbox, not locked. A server that dies
    without cleaning up (kill -9) frees its database."""
    db = tmp_path / "a.sqlite"
    with server_processes(db, tmp_path / "b.sqlite") as [(proc, a), (_, b)]:
        assert a.split("/rest/")[0] != b.split("/rest/")[0], "different ports"
        http.post(a + "crm.deal.add", json={"fields": {"TITLE": "only in A"}})
        assert http.post(a + "crm.deal.list").json()["total"] == 1
        assert http.post(b + "crm.deal.list").json()["total"] == 0, "B does not see A's deal"
        other_token = b.split("/rest/1/")[1]
        wrong = http.post(a.split("/rest/")[0] + f"/rest/1/{other_token}crm.deal.list")
        assert wrong.status_code == 401, "B's token does not open A"
        second = refused_serve(db, "--port", "0")
        assert second.returncode == 2, (second.returncode, second.stdout, second.stderr)
        assert second.stderr.strip() == (
            f"error: a sandbox server is using {db} (pid {proc.pid}); stop it first"
        )
        proc.kill()  # even a server that dies without cleaning up frees the database
        proc.wait(timeout=10)
    result = runner.invoke(app, ["sandbox", "reset", "--db", str(db), "--yes"])
    assert result.exit_code == 0, result.output


def test_ctrl_c_and_sigterm_stop_cleanly_and_free_the_database(tmp_path: Path) -> None:
    """While a server runs, reset and seed on its database refuse (naming its process) and
    leave its data alone; Ctrl-C or SIGTERM stops it (exit 0, "stopped", nothing on
    stderr), and then they work."""
    seed = tmp_path / "seed.yaml"
    seed.write_text("deals: [{TITLE: Аренда}]\n", encoding="utf-8")
    signals = (signal.SIGINT, signal.SIGTERM)
    dbs = [tmp_path / f"{sig.name}.sqlite" for sig in signals]
    with server_processes(*dbs) as started:
        for sig, db, (proc, url) in zip(signals, dbs, started, strict=True):
            http.post(url + "crm.deal.add", json={"fields": {"TITLE": "kept"}}).raise_for_status()
            refused = f"error: a sandbox server is using {db} (pid {proc.pid}); stop it first"
            result = runner.invoke(app, ["sandbox", "reset", "--db", str(db), "--yes"])
            assert result.exit_code == 2 and result.output.strip() == refused, result.output
            result = runner.invoke(app, ["sandbox", "seed", str(seed), "--db", str(db)])
            assert result.exit_code == 2 and result.output.strip() == refused, result.output
            deals = http.post(url + "crm.deal.list").json()
            assert deals["total"] == 1, "the running server still has its data, in one copy"
            assert db.exists()
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, (sig, proc.returncode, err)
            assert "stopped" in out, (sig, out)
            assert err == "", (sig, err)
            result = runner.invoke(app, ["sandbox", "reset", "--db", str(db), "--yes"])
            assert result.exit_code == 0, result.output
            result = runner.invoke(app, ["sandbox", "seed", str(seed), "--db", str(db)])
            assert result.exit_code == 0, result.output
