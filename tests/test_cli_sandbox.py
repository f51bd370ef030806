"""The sandbox CLI as a user runs it: real processes, real ports, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from typer.testing import CliRunner

from b24kit.cli.app import app

runner = CliRunner()


@contextmanager
def served(db: Path, *args: str) -> Iterator[str]:
    """Start `b24kit sandbox serve` on a free port; yield its webhook URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "b24kit", "sandbox", "serve", "--port", "0", "--db", str(db),
         "--limits", "off", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        deadline = time.time() + 30
        url = None
        while time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith("Inbound webhook URL:"):
                url = line.split(":", 1)[1].strip()
                break
            if not line and proc.poll() is not None:
                break
        assert url, f"serve printed no webhook URL; stderr: {proc.stderr.read() if proc.stderr else ''}"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


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
        deal = httpx.post(url + "crm.deal.add", json={"fields": {"TITLE": "Трактор"}}).json()["result"]
    with served(db) as again:
        assert again.split("/rest/")[1] == url.split("/rest/")[1], "the token is kept with the db"
        got = httpx.post(again + "crm.deal.get", json={"id": deal}).json()["result"]
        assert got["TITLE"] == "Трактор", "the deal survived the restart"


def test_two_sandboxes_are_isolated(tmp_path: Path) -> None:
    with served(tmp_path / "a.sqlite") as a, served(tmp_path / "b.sqlite") as b:
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
