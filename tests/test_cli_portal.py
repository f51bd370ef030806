"""`b24kit call` and `b24kit portal check`, over HTTP and in-process, as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from b24kit.cli.call import parse_assignments
from b24kit.client import ConfigError
from b24kit.connect import connect
from b24kit.sandbox import Sandbox
from tests.cli import CliResult, run_cli
from tests.servers import served


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd, env={"XDG_CONFIG_HOME": str(cwd / "cfg"), **(env or {})})


@pytest.fixture(params=["http", "inprocess"])
def portal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """Extra CLI args that select the portal: a served sandbox, or the local one by name."""
    if request.param == "http":
        box = Sandbox(limits="off")
        with served(box) as base:
            yield ["--portal", box.webhook_url(base)]
    else:
        yield ["--portal", "sandbox"]


def parse(result: CliResult) -> object:
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    if shutil.which("jq"):
        jq = subprocess.run(["jq", "."], input=result.stdout, capture_output=True, text=True)
        assert jq.returncode == 0, "jq reads the output"
    return data


def test_call_round_trip(portal: list[str], tmp_path: Path) -> None:
    made = parse(
        cli(
            "call",
            "crm.deal.add",
            "fields.TITLE=Перевозка трактора",
            "fields[OPPORTUNITY]=125000",
            *portal,
            cwd=tmp_path,
        )
    )
    assert isinstance(made, dict) and isinstance(made["result"], int)
    got = parse(
        cli(
            "call",
            "crm.deal.list",
            "filter.>OPPORTUNITY=100",
            "select[]=ID",
            "select[]=TITLE",
            *portal,
            cwd=tmp_path,
        )
    )
    assert isinstance(got, dict)
    assert got["result"] == [{"ID": str(made["result"]), "TITLE": "Перевозка трактора"}]
    assert got["total"] == 1
    listed = parse(
        cli("call", "crm.deal.list", "--all", "--json", '{"select": ["ID"]}', *portal, cwd=tmp_path)
    )
    assert listed == [{"ID": str(made["result"])}], "--all gives the rows as a JSON list"


def test_portal_check(portal: list[str], tmp_path: Path) -> None:
    result = cli("portal", "check", "-f", "json", *portal, cwd=tmp_path)
    report = parse(result)
    assert isinstance(report, dict)
    assert report["user"]["id"] == "1" and "crm" in report["scopes"]
    assert report["plan"] == {
        "name": "standard",
        "burst": 50,
        "per_second": 2.0,
        "batch_commands": 50,
        "writes_per_second": 100.0,
        "rows_per_second": 5000.0,
    }
    assert report["latency_ms"] >= 0
    assert report["sandbox"] is (portal[-1] == "sandbox")
    if portal[-1] == "sandbox":
        assert "Using the local sandbox portal" in result.stderr
        assert (tmp_path / ".b24kit" / "sandbox.sqlite").exists()
    text = cli("portal", "check", *portal, cwd=tmp_path)
    assert text.returncode == 0 and "requests/s" in text.stdout


def test_call_errors(tmp_path: Path) -> None:
    result = cli("call", "crm.deal.get", "id=7", "-p", "sandbox", cwd=tmp_path)
    assert result.returncode == 3 and "crm.deal.get: HTTP 400 (no code): Not found" in result.stderr
    result = cli("call", "crm.deal.get", "id", "-p", "sandbox", cwd=tmp_path)
    assert result.returncode == 2 and "expected key=value" in result.stderr
    result = cli("call", "x", "--json", "[1]", "-p", "sandbox", cwd=tmp_path)
    assert result.returncode == 2 and "JSON object" in result.stderr
    result = cli("call", "crm.deal.gett", "id=1", "-p", "sandbox", cwd=tmp_path)
    assert result.returncode == 2 and "ERROR_METHOD_NOT_FOUND" in result.stderr, (
        "a typo in the method is a usage error (2), not a portal failure (3)"
    )


def test_parse_assignments() -> None:
    assert parse_assignments(
        [
            "filter.>ID=5",
            "filter.%TITLE=a=b",
            "select[]=ID",
            "select[]=T",
            "fields[PHONE][0][VALUE]=+7",
        ]
    ) == {
        "filter": {">ID": "5", "%TITLE": "a=b"},
        "select": {"0": "ID", "1": "T"},
        "fields": {"PHONE": {"0": {"VALUE": "+7"}}},
    }


def test_portal_resolution_order(tmp_path: Path) -> None:
    cfg = tmp_path / "b24kit"
    cfg.mkdir()
    (cfg / "config.yaml").write_text(
        "default: a\nprofiles:\n"
        "  a: {webhook: 'https://a.bitrix24.ru/rest/1/aaaaaaaa/'}\n"
        "  b: {webhook: 'https://b.bitrix24.ru/rest/2/bbbbbbbb/', plan: enterprise}\n",
        encoding="utf-8",
    )
    (cfg / "config.yaml").chmod(0o600)
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    hook = "https://c.bitrix24.ru/rest/3/cccccccc/"
    assert connect(hook, env=env).label == "https://c.bitrix24.ru/rest/3/***/", "flag wins"
    assert connect("b", env=env).plan == "enterprise", "a profile name works as --portal"
    assert connect(None, env={**env, "B24_WEBHOOK_URL": hook}).label.startswith("https://c.")
    assert connect(None, env={**env, "B24_PORTAL": "b"}).label.startswith("https://b.")
    assert connect(None, env=env).label.startswith("https://a."), "then the default profile"
    assert connect(None, env=env).warnings == (), "a private config raises no warning"
    with pytest.raises(ConfigError, match="no profile 'zzz'"):
        connect("zzz", env=env)
    with pytest.raises(ConfigError, match="no portal chosen"):
        connect(None, env={"XDG_CONFIG_HOME": str(tmp_path / "none")}, sandbox_dir=tmp_path / "sb")
    assert not (tmp_path / "sb").exists(), "no sandbox is made when none was asked for"
    sandboxed = connect(
        "sandbox", env={"XDG_CONFIG_HOME": str(tmp_path / "none")}, sandbox_dir=tmp_path / "sb"
    )
    assert sandboxed.is_sandbox and "local sandbox portal" in sandboxed.label
    sandboxed.sandbox.close()
    named = connect(
        None,
        env={"XDG_CONFIG_HOME": str(tmp_path / "none"), "B24_PORTAL": "sandbox"},
        sandbox_dir=tmp_path / "sb",
    )
    assert named.is_sandbox
    named.sandbox.close()
