"""Hostile and broken files (issue 16, item 5): each is one file:line error and exit 2,
never a traceback, never a hang, and nothing reaches a portal. The same reader serves
blueprints and migration mappings, so each file is tried as both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli import ROOT, run_cli

EXAMPLE = (ROOT / "blueprints" / "example.yaml").read_text(encoding="utf-8")


def _bomb() -> str:
    text, previous = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "a"
    for i in range(1, 9):
        name = chr(97 + i)
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


HOSTILE: dict[str, bytes] = {
    "cp1251": EXAMPLE.encode("cp1251"),
    "utf16": EXAMPLE.encode("utf-16"),
    "nul": EXAMPLE.encode() + b"\x00",
    "python-tag": b"version: 1\nname: !!python/object:os.system x\n",
    "merge-key": b"a: &a {x: 1}\nversion: 1\nname: x\nb:\n  <<: *a\n",
    "bad-int": b"version: !!int ten\nname: x\n",
    "deep": b"version: 1\nname: x\ndeal: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "alias-bomb": _bomb().encode(),
    "huge": b"version: 1\nname: '" + b"x" * (6 * 1024 * 1024) + b"'\n",
    "not-yaml": b"version: 1\nname: [unclosed\n",
    "empty": b"",
    "list-top": b"- 1\n- 2\n",
}
EXPECTED = {
    "cp1251": "not UTF-8",
    "utf16": "UTF-16",
    "nul": "not valid YAML: the character U+0000 is not allowed (a binary file",
    "python-tag": "not allowed here",
    "merge-key": "merge keys",
    "bad-int": "not a valid",
    "deep": "nested",
    "alias-bomb": "alias bomb",
    "huge": "larger than",
    "not-yaml": "not valid YAML",
    "empty": "empty",
    "list-top": "mapping",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("role", ["blueprint", "mapping"])
def test_hostile_file_is_one_line_and_exit_2(
    kind: str,
    role: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(HOSTILE[kind])
    args = (
        ["validate", str(path)]
        if role == "blueprint"
        else ["migrate", "run", str(path), "-p", "sandbox", "--dry-run"]
    )
    result = run_cli(*args)
    err = result.stderr
    assert result.returncode == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert EXPECTED[kind] in err, err
    assert f"{kind}.yaml:" in err, "the file (and line) is named"
    assert len(err.strip().splitlines()) <= 2, err
    assert not (tmp_path / ".b24kit").exists() or role == "mapping", "validate needs no portal"


def test_apply_reads_a_device_or_a_pipe_once_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from b24kit.blueprint.saved import read_saved_plan

    assert read_saved_plan(Path("/dev/zero")) is None, "not read whole to tell a plan"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    zero = run_cli("apply", "/dev/zero", "-p", "sandbox", "--yes")
    assert zero.returncode == 2 and "/dev/zero:1:1: larger than" in zero.stderr, zero.stderr
    read, write = os.pipe()  # as `b24kit apply <(make-blueprint)` gives it
    os.write(write, EXAMPLE.encode())
    os.close(write)
    try:
        piped = run_cli("apply", f"/dev/fd/{read}", "-p", "sandbox", "--yes")
    finally:
        os.close(read)
    assert piped.returncode == 0, piped.stderr
    assert "Applied" in piped.stdout and "✗" not in piped.stdout, "the whole blueprint, read once"


def test_an_error_line_shows_control_characters_and_no_emoji(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "root:x:0.yaml").write_text(
        'version: 1\ndeal:\n  "pipe\\nlines\\e[2J": []\n', encoding="utf-8"
    )
    result = run_cli("validate", "root:x:0.yaml")
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("root:x:0.yaml:3:3: "), "':x:' is text, not an emoji code"
    assert "\\u000a" in first and "\\u001b[2J" in first and "\x1b" not in result.stderr, first
