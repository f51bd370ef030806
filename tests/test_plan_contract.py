"""Plan is the contract (issue 11, point 4): whatever apply does, plan shows and counts,
the stages every new pipeline comes with included, on a portal in English or in Russian."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from b24kit.blueprint.apply import ApplyReport, apply_blueprint, make_plan
from b24kit.blueprint.loader import load_blueprint
from b24kit.blueprint.plan import Plan
from b24kit.sandbox import Sandbox
from tests.cli import ROOT
from tests.clients import client_for

BLUEPRINTS = sorted((ROOT / "blueprints").glob("*.yaml"))


def plan_and_apply(box: Sandbox, path: Path) -> tuple[Plan, ApplyReport, Plan]:
    bp = load_blueprint(path)[0]

    async def go() -> tuple[Plan, ApplyReport, Plan]:
        with client_for(box) as client:
            before = await make_plan(client, bp)
            report = await apply_blueprint(client, bp)
            return before, report, await make_plan(client, bp)

    return asyncio.run(go())


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("path", BLUEPRINTS, ids=[p.stem for p in BLUEPRINTS])
def test_apply_does_what_the_plan_counted(path: Path, language: str) -> None:
    box = Sandbox(limits="off", language=language)
    before, report, after = plan_and_apply(box, path)
    summary = before.summary()
    done = Counter(o.change.action for o in report.outcomes)
    assert report.ok and after.changes == [], "applied whole: nothing left to plan"
    for action in ("create", "update", "rename", "delete"):
        assert done[action] == summary[action], (
            f"{path.name} ({language}): plan said {summary[action]} to {action}, apply did "
            f"{done[action]}"
        )
    template = [c for c in before.changes if c.note == "a stage every new pipeline comes with"]
    if any(c.kind == "pipeline" and c.action == "create" for c in before.changes):
        assert any(c.action == "delete" for c in template), (
            "the template stages apply removes are listed, with why"
        )
    stages = box.call("crm.status.list", {})
    names = {r["NAME"] for r in stages if r["ENTITY_ID"] != "DEAL_STAGE"}
    assert not names & {
        "Подготовка документов",
        "Document preparation",
        "Анализ причины провала",
    }, "no template stage is left behind, whatever the portal's language"
