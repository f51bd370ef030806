"""A plan is the list of commands apply runs (issue 12): for every blueprint under
blueprints/ and the tests' own (a deployment changed: renames, new stages, --prune with
--move-stage), the commands ``plan --format json`` lists are exactly the commands
``apply`` sends, compared through the sandbox's log of what each batch ran."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from b24kit.encoding import build_query, parse_query
from b24kit.sandbox import Sandbox
from b24kit.sandbox.app import Call
from tests import servers
from tests.cli import run_cli
from tests.test_blueprint_apply import BASE, apply, from_text

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINTS = sorted((ROOT / "blueprints").glob("*.yaml"))
ANY = "\x00ANY\x00"  # stands for a value the executor fills in from an earlier result


def pattern(value: Any) -> Any:
    """A planned value with each reference turned into ANY (inside its text format)."""
    if isinstance(value, dict) and "$ref" in value:
        return value.get("fmt", "{}").replace("{}", ANY)
    if isinstance(value, dict) and "$join" in value:
        parts = value["$join"]  # a list, or on the wire a map of its items
        parts = list(parts.values()) if isinstance(parts, dict) else parts
        return "".join(ANY if isinstance(p, dict) else str(p) for p in parts)
    if isinstance(value, dict):
        return {re.sub(r"<[^>]+>", ANY, k): pattern(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pattern(v) for v in value]
    return value


def wire(params: dict[str, Any]) -> Any:
    """As a batch command carries it: every value text, every container a map."""
    return parse_query(build_query(params))


def same(planned: Any, sent: Any) -> bool:
    if isinstance(planned, dict):
        if not isinstance(sent, dict) or len(planned) != len(sent):
            return False
        left = dict(sent)
        for key, value in planned.items():
            if ANY in key:
                rx = re.compile(re.escape(key).replace(re.escape(ANY), ".+"))
                match = next((k for k in left if rx.fullmatch(k) and same(value, left[k])), None)
                if match is None:
                    return False
                left.pop(match)
            elif key not in left or not same(value, left.pop(key)):
                return False
        return True
    if isinstance(planned, str) and ANY in planned:
        rx = re.escape(planned).replace(re.escape(ANY), ".+")
        return isinstance(sent, str) and re.fullmatch(rx, sent) is not None
    return planned == sent


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, str]]:
    """A sandbox over loopback HTTP, on the process's shared server (tests/servers.py)."""
    box = Sandbox(limits="off")
    with servers.served(box) as base:
        yield box, box.webhook_url(base)


def cli(*args: str) -> str:
    """``b24kit ARGS`` in this process (tests/cli.py: the click command built once)."""
    result = run_cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def compare(
    box: Sandbox, hook: str, blueprint: Path, *extra: str, saved: Path | None = None
) -> int:
    planned = json.loads(cli("plan", str(blueprint), "--portal", hook, "-f", "json", *extra))
    commands = planned["commands"]
    names = [c["name"] for c in commands]
    assert len(set(names)) == len(names), "each command has its own name"
    assert sum(len(c["commands"]) for c in planned["changes"]) == len(commands), (
        "the plan's list is its changes' commands, nothing else"
    )
    box.calls = []
    if saved is not None:
        cli("plan", str(blueprint), "--portal", hook, "--out", str(saved), *extra)
        box.calls = []
        cli("apply", str(saved), "--portal", hook, "--yes")
    else:
        cli("apply", str(blueprint), "--portal", hook, "--yes", *extra)
    calls: list[Call] = box.calls
    box.calls = None
    sent: dict[str, list[Call]] = {}
    for call in calls:
        sent.setdefault(call.name, []).append(call)
    for command in commands:
        got = sent.pop(command["name"], [])
        assert len(got) == 1, f"{command['name']} ({command['method']}) sent {len(got)} times"
        assert got[0].method == command["method"]
        assert same(pattern(wire(command["params"])), wire(got[0].params)), (
            f"{command['name']}: planned {command['params']}, sent {got[0].params}"
        )
    others = [c for group in sent.values() for c in group]
    writes = [c for c in others if not c.method.endswith((".list", ".get"))]
    assert writes == [], "apply sent nothing the plan did not list"
    return len(commands)


@pytest.mark.parametrize("path", BLUEPRINTS, ids=[p.stem for p in BLUEPRINTS])
def test_every_blueprint_on_a_new_portal(served: tuple[Sandbox, str], path: Path) -> None:
    box, hook = served
    assert compare(box, hook, path) > 20
    again = json.loads(cli("plan", str(path), "--portal", hook, "-f", "json"))
    assert again["commands"] == [], "applied whole: nothing left to plan"


def test_a_russian_portal(tmp_path: Path) -> None:
    box = Sandbox(limits="off", language="ru")
    with servers.served(box) as base:
        compare(box, box.webhook_url(base), ROOT / "blueprints" / "company.yaml")


def test_a_saved_plan_applies_exactly_its_commands(
    served: tuple[Sandbox, str], tmp_path: Path
) -> None:
    box, hook = served
    compare(box, hook, ROOT / "blueprints" / "example.yaml", saved=tmp_path / "plan.json")


def test_a_changed_deployment_with_prune_and_moves(
    served: tuple[Sandbox, str], tmp_path: Path
) -> None:
    box, hook = served
    first = tmp_path / "base.yaml"
    first.write_text(BASE, encoding="utf-8")
    compare(box, hook, first)
    cid = next(
        c["id"]
        for c in box.call("crm.category.list", {"entityTypeId": 2})["categories"]
        if c["name"] == "Продажи"
    )
    for _ in range(3):
        box.call("crm.deal.add", {"fields": {"CATEGORY_ID": cid, "STAGE_ID": f"C{cid}:WORK"}})
    changed = (
        BASE.replace(
            "        - {code: WORK, name: В работе}\n", "        - {code: CHECK, name: Проверка}\n"
        )
        .replace("title: Подрядчики", "title: Исполнители")
        .replace("    - {code: NOTE, type: string, label: {ru: Заметка, en: Note}}\n", "")
    )
    assert changed.count("\n") == BASE.count("\n") - 1
    second = tmp_path / "changed.yaml"
    second.write_text(changed, encoding="utf-8")
    count = compare(box, hook, second, "--prune", "--move-stage", "sales:WORK=NEW")
    assert count >= 6, "three moves, a stage deleted and made, a field deleted, a title"
    deals = box.call("crm.deal.list", {"filter": {"CATEGORY_ID": cid}, "select": ["STAGE_ID"]})
    assert {d["STAGE_ID"] for d in deals} == {f"C{cid}:NEW"}, "the deals moved first"
    assert apply(box, from_text(tmp_path, changed), prune=True).commands == 0
