"""The README's walkthrough, run verbatim: every ``$ `` line of its console block, in a
shell, in a fresh folder with the project's blueprints and examples, against the sandbox.
A ``# exit N`` note on a line gives the exit code it must end with (else 0)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_cli

README = Path(__file__).resolve().parent.parent / "README.md"


def walkthrough_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Walkthrough", 1)[1].split("\n## ", 1)[0]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def expected_code(line: str) -> int:
    found = re.search(r"#.*\bexit (\d+)\b", line)
    return int(found.group(1)) if found else 0


# The shell runs each line with ``b24kit`` as a function that hands the words it was
# given (after the shell's quoting, expansion and comments) and the environment it sees to
# the test, which runs them through the entry point the installed command calls, in this
# process (tests/cli.py): the same program, without a second of interpreter start and
# imports for each of its commands. The first line that is b24kit's runs for real, as
# the README's virtualenv installed it, so the command on PATH is proved too.
SHIM = """b24kit() {
  printf '%s\\0' "$B24_PORTAL" "$#" "$@" >> "$B24KIT_WALKTHROUGH"
}
"""
SHELL_SYNTAX = re.compile(r"[|;&<>()]+")  # what shlex gives as punctuation


def parsed_lines(lines: list[str], cwd: Path, env: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Each b24kit line's B24_PORTAL and words, as the shell gave them."""
    for line in lines:  # nothing but plain commands: no pipe, redirection or substitution
        words = shlex.shlex(line, posix=True, punctuation_chars=True)
        words.whitespace_split = True
        assert "`" not in line and not any(SHELL_SYNTAX.fullmatch(w) for w in words), (
            f"`{line}` needs a real shell for each command: run it so in test_readme.py"
        )
    record = cwd / "walkthrough.args"
    shell = subprocess.run(
        ["bash", "-c", SHIM + "\n".join(lines) + "\n"],
        cwd=cwd, env={**env, "B24KIT_WALKTHROUGH": str(record)}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    fields = record.read_text(encoding="utf-8").split("\0")[:-1]
    record.unlink()
    commands = []
    while fields:
        portal, count, fields = fields[0], int(fields[1]), fields[2:]
        commands.append((portal, fields[:count]))
        fields = fields[count:]
    return commands


def test_the_walkthrough_runs_verbatim(tmp_path: Path) -> None:
    lines = walkthrough_lines()
    assert len(lines) >= 8 and lines[0].startswith("export B24_PORTAL=sandbox")
    root = README.parent
    for folder in ("blueprints", "examples"):
        shutil.copytree(root / folder, tmp_path / folder)
    # the b24kit of the interpreter running the tests, as the README's virtualenv would give
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    env.pop("B24_PORTAL", None)
    env.pop("B24_WEBHOOK_URL", None)
    commands = parsed_lines(lines, tmp_path, env)
    ours = [line for line in lines if not line.startswith("export ")]
    assert len(commands) == len(ours), (commands, ours)
    assert all(line.startswith("b24kit ") for line in ours)
    first = subprocess.run(  # the installed command, found on PATH, for real
        ["bash", "-c", f"export B24_PORTAL={commands[0][0]}\n{ours[0]}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert first.returncode == expected_code(ours[0]), first.stderr
    stderr = first.stderr
    for i, (line, (portal, args)) in enumerate(zip(ours, commands, strict=True)):
        if i == 0:
            continue
        result = run_cli(
            *args,
            cwd=tmp_path,
            env={
                "PATH": env["PATH"],
                "XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"],
                "B24_PORTAL": portal or None,
                "B24_WEBHOOK_URL": None,
            },
        )
        stderr += result.stderr
        assert result.returncode == expected_code(line), (
            f"README walkthrough: `{line}` exited {result.returncode}\n{result.stderr[-3000:]}"
        )
    assert "Traceback" not in stderr
    assert (tmp_path / "audit.json").exists() and (tmp_path / "rejected.csv").exists()


def test_readme_examples_quote_what_the_shell_would_eat() -> None:
    """An unquoted ``>`` in a parameter is a redirection that makes a file."""
    text = README.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("$ b24kit call"):
            assert not re.search(r"\s[^'\s]*[<>\[][^'\s]*=", line), line


def test_set_up_and_cron_lines_work_where_they_will_run() -> None:
    text = README.read_text(encoding="utf-8")
    setup = text.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    assert "python3 -m venv .venv" in setup and ".venv/bin/pip install -e ." in setup, (
        "the set-up works where the system pip is externally managed"
    )
    assert "--portal sandbox" in setup, "the main job names the sandbox"
    cron = text.split("```cron\n", 1)[1].split("```", 1)[0]
    for line in cron.splitlines():
        if "b24kit " in line and not line.startswith("#"):
            assert "/.venv/bin/b24kit " in line, f"cron's PATH has no virtualenv: {line}"


def test_the_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's library example, run as written (in a fresh folder: its sandbox)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## The library", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "asyncio.run(main())" in code and "entity_add" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (the library)", "exec"), {"__name__": "readme"})  # noqa: S102
    from b24kit.sandbox import Sandbox, SandboxConfig

    box = Sandbox(SandboxConfig(db=str(tmp_path / ".b24kit" / "sandbox.sqlite"), limits="off"))
    try:
        titles = [d["TITLE"] for d in box.call("crm.deal.list", {"select": ["TITLE"]})]
    finally:
        box.close()
    assert titles[0] == "Продажа" and titles[1].startswith("Логистика к "), titles
