"""Secrets stay out of ``ps`` (issue 16, item 11): the README and the commands' examples
take the webhook from a profile or the environment, and a secret given on the command
line anyway is warned about, never printed."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from b24kit.cli.app import app
from b24kit.sandbox import Sandbox
from tests.cli import run_cli
from tests.servers import served

ROOT = Path(__file__).resolve().parent.parent


def test_no_example_puts_a_secret_on_the_command_line() -> None:
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    for path in (ROOT / "src" / "b24kit" / "cli").glob("*.py"):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for name, text in texts.items():
        for line in text.splitlines():
            if "b24kit " not in line:
                continue
            assert not re.search(r"(--portal|-p)\s+https?://\S+/rest/\d+/\w+", line), (name, line)
            assert not re.search(r"--app-token\s+\S", line), (name, line)


def test_a_webhook_url_on_the_command_line_is_warned_about_and_kept_secret(
    tmp_path: Path,
) -> None:
    result = run_cli(
        "call",
        "server.time",
        "--portal",
        "https://acme.invalid/rest/1/TOPSECRET1/",
        cwd=tmp_path,
        env={"XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.code == 3, result.stderr  # the host does not resolve
    assert "can be read by other users of this machine" in result.stderr
    assert "B24_WEBHOOK_URL" in result.stderr
    assert "TOPSECRET1" not in result.stdout + result.stderr


def test_a_loopback_sandbox_url_is_not_warned_about(tmp_path: Path) -> None:
    box = Sandbox(limits="off")
    with served(box) as base:
        result = run_cli(
            "call",
            "server.time",
            "--portal",
            box.webhook_url(base),
            cwd=tmp_path,
            env={"XDG_CONFIG_HOME": str(tmp_path)},
        )
    assert result.code == 0, result.stderr
    assert "can be read by other users" not in result.stderr


def test_serve_without_a_token_says_where_it_comes_from(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["sync", str(ROOT / "blueprints" / "company.yaml"), "-p", "sandbox", "--serve"],
        env={"B24_APP_TOKEN": "", "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.exit_code == 2 and "set B24_APP_TOKEN" in result.output, result.output
    assert not Path(".b24kit").exists(), "refused before a sandbox portal was made"
