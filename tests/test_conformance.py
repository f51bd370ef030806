"""``portal conformance``: the one list of assumptions, run against the sandbox.

The sandbox must hold every assumption (it is what b24kit is tested on); switched to an
alternative reading (sandbox/readings.py) exactly the assumption that reading breaks must
be reported as differing. The same list is what an implementer runs on a real portal.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from b24kit.portal.conformance import ASSUMPTIONS, Report, run_conformance
from b24kit.sandbox import Sandbox
from b24kit.sandbox.readings import READINGS
from tests.cli import ROOT, CliResult, run_cli
from tests.clients import ScriptedFaults, client_for
from tests.clocks import FakeClock
from tests.servers import served


def output(result: CliResult) -> str:
    """What the run printed, both streams (as typer's CliRunner showed it)."""
    return result.stdout + result.stderr


def conform(box: Sandbox, mode: str = "inprocess") -> Report:
    async def go() -> Report:
        with client_for(box, mode) as client:
            return await run_conformance(client)

    return asyncio.run(go())


def leftovers(box: Sandbox) -> list[str]:
    cats = box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    return (
        [f"pipeline {c['name']}" for c in cats if c["id"] != 0]
        + [f"type {t['title']}" for t in box.call("crm.type.list", {})["types"]]
        + [f"deal {d['ID']}" for d in box.call("crm.deal.list", {"select": ["ID"]})]
        + [
            f"field {f['fieldName']}"
            for f in box.call("userfieldconfig.list", {"moduleId": "crm"})["fields"]
        ]
    )


# a webhook without the user scope, so that scope-status has something to check
SCOPES = ("crm", "userfieldconfig")


def test_every_assumption_holds_on_the_sandbox_and_nothing_is_left() -> None:
    box = Sandbox(limits="off", scopes=SCOPES)
    report = conform(box, "http")
    assert [(r.assumption.id, r.seen) for r in report.differs] == []
    assert len(report.results) == len(ASSUMPTIONS) >= 20
    assert all(r.checked for r in report.results)
    assert report.cleanup == [] and leftovers(box) == [], "removed, verified by reading back"


def test_a_check_the_portal_gives_no_way_to_run_says_so() -> None:
    box = Sandbox(limits="off")  # every scope the sandbox knows
    report = conform(box)
    [unchecked] = [r for r in report.results if not r.checked]
    assert unchecked.assumption.id == "scope-status" and unchecked.seen.startswith("not checked")
    assert report.differs == []


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_each_reading_is_reported_as_the_deviation_it_is(reading: str) -> None:
    box = Sandbox(limits="off", readings={reading}, scopes=SCOPES)
    report = conform(box)
    expected = [a.id for a in ASSUMPTIONS if a.reading == reading]
    assert expected, f"reading {reading!r} is checked by some assumption"
    assert [r.assumption.id for r in report.differs] == expected
    assert leftovers(box) == []


def test_the_list_and_the_docs_agree() -> None:
    ids = [a.id for a in ASSUMPTIONS]
    assert len(ids) == len(set(ids))
    assert {a.reading for a in ASSUMPTIONS if a.reading} == set(READINGS), (
        "every reading of the sandbox has its conformance check, and no check names a "
        "reading the sandbox lacks"
    )
    text = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    missing = [i for i in ids if f"`{i}`" not in text]
    missing += [r for r in READINGS if f"`{r}`" not in text]
    assert missing == [], "docs/sandbox.md lists every assumption and reading"


def test_cli_over_http_exit_codes_and_json() -> None:
    for readings, code in ((frozenset(), 0), (frozenset({"uf-list-bare"}), 1)):
        box = Sandbox(limits="off", readings=readings)
        clock = FakeClock()  # the client keeps to the plan's 2 requests/s: on this clock
        with served(box) as base:
            hook = box.webhook_url(base)
            result = run_cli(
                "portal", "conformance", "--portal", hook, "--yes", "--format", "json", clock=clock
            )
        assert clock.sleeps, "past the burst, the client waited for the portal's bucket"
        assert result.returncode == code, output(result)
        report = json.loads(result.stdout)
        assert report["differs"] == code and report["cleanup_left"] == []
        assert box.token not in output(result), "the webhook secret is never printed"
        if code:
            [bad] = [a for a in report["assumptions"] if not a["held"]]
            assert bad["id"] == "uf-list-full-rows" and "enum" not in bad["seen"]


def test_cli_refuses_to_write_without_yes_and_checks_names() -> None:
    box = Sandbox(limits="off")
    with served(box) as base:
        hook = box.webhook_url(base)
        result = run_cli("portal", "conformance", "--portal", hook)
        assert result.returncode == 2 and "--yes" in output(result)
        result = run_cli(
            "portal", "conformance", "--portal", hook, "--yes", "--only", "no-such-thing"
        )
        assert result.returncode == 2 and "unknown assumption" in output(result)
    assert box.requests == 0, "nothing reached the portal"
    listed = run_cli("portal", "conformance", "--list", "--format", "json")
    assert listed.returncode == 0
    assert [row["id"] for row in json.loads(listed.stdout)] == [a.id for a in ASSUMPTIONS]


def test_a_failed_set_up_is_reported_and_everything_made_is_removed() -> None:
    """The 7th request of the set-up is crm.type.add: it runs, its answer is lost. The run
    says so, checks nothing, and the clean-up finds the smart process by its name."""
    box = Sandbox(limits="off")
    box.faults = ScriptedFaults([None] * 6 + ["lost"])
    report = conform(box)
    assert report.setup_error and "crm.type.add" in report.setup_error
    assert report.results == [] and report.cleanup == []
    assert leftovers(box) == [], "what was made without an answer is found by name"


def test_cli_exit_3_when_the_set_up_fails() -> None:
    box = Sandbox(limits="off", scopes=("crm",))  # no userfieldconfig: set-up stops there
    with served(box) as base:
        # the client's pacing (2 requests/s) waits on a fake clock
        result = run_cli(
            "portal", "conformance", "-p", box.webhook_url(base), "--yes", clock=FakeClock()
        )
    assert result.returncode == 3, output(result)
    assert "the set-up failed, nothing was checked" in output(result)
    assert "everything it made was removed" in output(result)
    assert box.call("crm.category.list", {"entityTypeId": 2})["categories"][1:] == []
    assert box.call("crm.type.list", {})["types"] == []
    assert box.call("crm.deal.list", {}) == []


def test_pipeline_ids_of_two_digits_cut_the_template_codes() -> None:
    """On a portal that has had ten pipelines, C12:PREPAYMENT_INVOICE is cut to 21
    characters: the template check must expect that, not report a deviation."""
    box = Sandbox(limits="off", scopes=SCOPES)
    for i in range(12):
        box.call("crm.category.add", {"entityTypeId": 2, "fields": {"name": f"old {i}"}})
    report = conform(box)
    assert [(r.assumption.id, r.seen) for r in report.differs] == []
