"""The webhook secret never appears in output, logs or errors, on any error path."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from b24kit.client import parse_webhook, redact
from b24kit.client.errors import ConfigError
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import RunningServer, start_in_thread
from tests import cli, warm
from tests.cli import CliResult
from tests.clocks import FakeClock

SECRET = "zq7secretwebhook9x"
OTHER = "wr0ngsecretvalue42"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
    """b24kit in-process (tests/cli.py); its retry waits on a fake clock."""
    return cli.run_cli(
        *args,
        cwd=cwd,
        clock=FakeClock(),
        env={"XDG_CONFIG_HOME": str(cwd or "/nonexistent"), "B24KIT_RETRIES": "2", **(env or {})},
    )


def run_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """b24kit as a real process: what it prints until the interpreter has exited (started
    warm, tests/warm.py: the child's interpreter shuts down as a fresh one does)."""
    return warm.run(
        args,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CONFIG_HOME": str(cwd), "B24KIT_RETRIES": "2"},
        cwd=cwd,
    )


@pytest.fixture
def server() -> Iterator[tuple[Sandbox, RunningServer]]:
    box = Sandbox(limits="off", token=SECRET)
    running = start_in_thread(box)
    yield box, running
    running.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_clean(result: CliResult | subprocess.CompletedProcess[str], *secrets: str) -> None:
    text = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in text, f"secret leaked in: {text[-500:]}"


def test_every_error_path_keeps_the_secret(
    server: tuple[Sandbox, RunningServer], tmp_path: Path
) -> None:
    box, running = server
    good = f"{running.base_url}/rest/1/{SECRET}/"
    wrong = f"{running.base_url}/rest/1/{OTHER}/"
    dead = f"http://127.0.0.1:{free_port()}/rest/1/{SECRET}/"
    cases = [
        (("call", "user.current", "-vv", "--portal", good), 0),
        (("call", "crm.deal.get", "id=5", "-vv", "--portal", good), 3),
        (("call", "crm.nope", "-vv", "--portal", good), 2),
        (("call", "user.current", "-vv", "--portal", wrong), 3),
        (("call", "user.current", "-vv", "--portal", dead), 3),
        (("portal", "check", "--portal", wrong), 3),
        (("portal", "check", "--portal", dead, "-f", "json"), 3),
        (("call", "user.current", "--portal", good.replace("/rest/1/", "/rest/x/")), 2),
        (("call", "user.current", "--portal", good + "?a=1"), 2),
        (("call", "crm.deal.list", "--all", "-vv"), 0),
    ]
    for args, code in cases:
        env = {"B24_WEBHOOK_URL": good} if "--portal" not in args else None
        result = run_cli(*args, env=env, cwd=tmp_path)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert_clean(result, SECRET, OTHER)
    box.faults = type(box.faults).parse("500=1")
    result = run_cli(
        "call", "crm.deal.add", "fields.TITLE=x", "-vv", "--portal", good, cwd=tmp_path
    )
    assert result.returncode == 3 and "INTERNAL_SERVER_ERROR" in result.stderr
    assert_clean(result, SECRET)
    box.faults = type(box.faults).parse("drop=1")
    result = run_cli("call", "user.current", "-vv", "--portal", good, cwd=tmp_path)
    assert result.returncode == 3 and "could not reach" in result.stderr
    assert f"{running.base_url}/rest/1/***/" in result.stderr, "the redacted form is shown"
    assert_clean(result, SECRET)


def test_a_real_process_keeps_the_secret_until_it_has_exited(
    server: tuple[Sandbox, RunningServer], tmp_path: Path
) -> None:
    """The installed command as its own process, on the path with the most to say (-vv, a
    dropped connection, a retry): what the interpreter prints as it shuts down (unclosed
    connections, pending tasks, warnings) is checked too, which no in-process run sees."""
    box, running = server
    box.faults = type(box.faults).parse("drop=1")
    result = run_process(
        "call",
        "user.current",
        "-vv",
        "--portal",
        f"{running.base_url}/rest/1/{SECRET}/",
        cwd=tmp_path,
    )
    assert result.returncode == 3 and "could not reach" in result.stderr
    assert "HTTP Request: POST" in result.stderr and "retrying" in result.stderr
    assert_clean(result, SECRET)


def test_html_answer_keeps_the_secret(tmp_path: Path) -> None:
    async def html_app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 502,  # type: ignore[operator]
                "headers": [(b"content-type", b"text/html")],
            }
        )
        await send(
            {
                "type": "http.response.body",  # type: ignore[operator]
                "body": f"<html>proxy error for /rest/1/{SECRET}/</html>".encode(),
            }
        )

    running = start_in_thread(html_app)  # type: ignore[arg-type]
    try:
        result = run_cli(
            "call",
            "user.current",
            "-vv",
            "--portal",
            f"{running.base_url}/rest/1/{SECRET}/",
            cwd=tmp_path,
        )
    finally:
        running.stop()
    assert result.returncode == 3 and "HTML page" in result.stderr
    assert_clean(result, SECRET)


def test_redaction_helpers() -> None:
    url = f"https://acme.bitrix24.ru/rest/12/{SECRET}/"
    address = parse_webhook(url)
    assert (
        SECRET not in repr(address) and address.redacted == "https://acme.bitrix24.ru/rest/12/***/"
    )
    assert redact(f"POST {url}crm.deal.add?auth={OTHER}&x=1") == (
        "POST https://acme.bitrix24.ru/rest/12/***/crm.deal.add?auth=***&x=1"
    )
    with pytest.raises(ConfigError) as info:
        parse_webhook(f"https://acme.bitrix24.ru/rest/{SECRET}/")
    assert SECRET not in str(info.value)


def test_config_file_is_checked_and_secret_kept(tmp_path: Path) -> None:
    cfg = tmp_path / "b24kit"
    cfg.mkdir()
    (cfg / "config.yaml").write_text(
        f"default: acme\nprofiles:\n  acme:\n    webhook: http://127.0.0.1:{free_port()}/rest/1/{SECRET}/\n",
        encoding="utf-8",
    )
    (cfg / "config.yaml").chmod(0o644)
    result = run_cli("call", "user.current", "-vv", cwd=tmp_path)
    assert "readable by other users" in result.stderr, "a world-readable config is flagged"
    assert result.returncode == 3
    assert_clean(result, SECRET)


def test_a_broken_config_file_shows_no_secret_of_it(tmp_path: Path) -> None:
    """A YAML error quoted the line around it: an OAuth client secret and refresh token
    were printed (a webhook's was masked by the URL rule)."""
    cfg = tmp_path / "b24kit"
    cfg.mkdir()
    (cfg / "config.yaml").write_text(
        "default: acme\nprofiles:\n  acme:\n    oauth: {portal: https://acme.bitrix24.ru, "
        "client_id: app.1, client_secret: CLIENTSECRETXYZ: 1, refresh_token: REFRESHTOKENABC}\n",
        encoding="utf-8",
    )
    (cfg / "config.yaml").chmod(0o600)
    result = run_cli("call", "user.current", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "config.yaml:4:" in result.stderr and "not valid YAML" in result.stderr
    assert_clean(result, "CLIENTSECRETXYZ")
    assert_clean(result, "REFRESHTOKENABC")
