"""Parent/child links: audit rules on a seeded portal, safe repair, sync (once and served),
concurrency, and the estimates report."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

import httpx

from b24kit.blueprint.apply import apply_blueprint
from b24kit.blueprint.loader import load_blueprint
from b24kit.links.run import audit_portal, fix, sync_once
from b24kit.links.serve import SyncService
from b24kit.reports.estimates import estimates_report
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests import warm
from tests.cli import ROOT, CliResult, run_cli
from tests.clients import client_for
from tests.clocks import FakeClock

EXAMPLE = ROOT / "blueprints" / "example.yaml"
COMPANY = ROOT / "blueprints" / "company.yaml"


_APPLIED: dict[Path, Sandbox] = {}  # each blueprint applied once per test process


def _applied(path: Path, **kwargs: Any) -> Sandbox:
    box = Sandbox(limits="off", **kwargs)

    async def go() -> None:
        with client_for(box) as client:
            assert (await apply_blueprint(client, load_blueprint(path)[0])).ok

    asyncio.run(go())
    return box


def deployed(path: Path = EXAMPLE, **kwargs: Any) -> Sandbox:
    """A sandbox where the blueprint at ``path`` was applied, answering with ``kwargs``
    (latency, faults...): a copy of one applied once (an apply costs a fifth of a second
    of CPU, more with latency; a copy, milliseconds). With a ``clock`` it is applied
    afresh, so that what the apply stamped is stamped on that clock."""
    if "clock" in kwargs:
        return _applied(path, **kwargs)
    if path not in _APPLIED:
        _APPLIED[path] = _applied(path)
    return _APPLIED[path].clone(limits="off", **kwargs)


def cats(box: Sandbox) -> dict[str, int]:
    return {
        c["name"]: c["id"] for c in box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    }


class Seed:
    def __init__(self, box: Sandbox) -> None:
        self.box = box
        ids = cats(box)
        self.sales, self.log = ids["Продажи"], ids["Логистика"]

    def parent(self, stage: str, child: int | None = None, mirror: str | None = None) -> int:
        fields: dict[str, Any] = {
            "CATEGORY_ID": self.sales,
            "STAGE_ID": f"C{self.sales}:{stage}",
            "TITLE": f"parent {stage}",
            "OPPORTUNITY": 100000,
        }
        if child:
            fields["UF_CRM_CHILD_DEAL"] = f"D_{child}"
        if mirror:
            fields["UF_CRM_CHILD_STAGE"] = mirror
        return int(self.box.call("crm.deal.add", {"fields": fields}))

    def child(self, stage: str, parent: int | None) -> int:
        fields: dict[str, Any] = {
            "CATEGORY_ID": self.log,
            "STAGE_ID": f"C{self.log}:{stage}",
            "TITLE": "child",
        }
        if parent is not None:
            fields["UF_CRM_PARENT_DEAL"] = f"D_{parent}"
        return int(self.box.call("crm.deal.add", {"fields": fields}))

    def point(self, parent: int, child: int, mirror: str | None = None) -> None:
        fields = {"UF_CRM_CHILD_DEAL": f"D_{child}"}
        if mirror:
            fields["UF_CRM_CHILD_STAGE"] = mirror
        self.box.call("crm.deal.update", {"id": parent, "fields": fields})

    def pair(self, parent_stage: str, child_stage: str, mirror: str) -> tuple[int, int]:
        p = self.parent(parent_stage)
        c = self.child(child_stage, p)
        self.point(p, c, mirror)
        return p, c


EXPECTED = {
    "L001": 2,
    "L002": 3,
    "L003": 1,
    "L004": 1,
    "L005": 1,
    "L006": 1,
    "L007": 1,
    "L008": 1,
    "L009": 1,
}


def seed_every_inconsistency(box: Sandbox) -> dict[str, Any]:
    s = Seed(box)
    s.pair("ESTIMATE", "NEW", "Новая оценка")  # clean
    s.parent("NEW")  # clean: before the trigger
    s.parent("LOSE")  # clean: lost early
    s.parent("ESTIMATE")  # L001
    s.parent("ESTIMATE_READY")  # L001
    c3 = s.child("NEW", None)  # L002 (repairable:)
    s.parent("NEW", child=c3)  #   a parent claims it
    s.child("NEW", 99999)  # L002 points nowhere
    general = int(box.call("crm.deal.add", {"fields": {"TITLE": "other pipeline"}}))
    s.child("NEW", general)  # L002 wrong pipeline
    p7 = s.parent("ESTIMATE")  # L003
    c7 = s.child("NEW", p7)
    s.child("NEW", p7)
    s.point(p7, c7)
    s.pair("ESTIMATE", "NEW", "устарело")  # L004
    s.pair("ESTIMATE", "APPROVAL", "Согласование")  # L005
    s.pair("WON", "NEW", "Новая оценка")  # L006
    s.pair("ESTIMATE_READY", "LOSE", "Отказ")  # L007
    p1, c1 = s.pair("ESTIMATE", "NEW", "Новая оценка")  # (clean) ...
    s.child("NEW", c1)  # L008: parent is a child
    p13 = s.parent("ESTIMATE")  # L009
    s.child("NEW", p13)
    s.point(p13, c1, "Новая оценка")
    return {"deals": box.portal.count_items(2)}


def audit(box: Sandbox, path: Path = EXAMPLE) -> Any:
    async def go() -> Any:
        with client_for(box) as client:
            return await audit_portal(client, load_blueprint(path)[0])

    return asyncio.run(go())


def test_clean_portal_has_no_findings() -> None:
    box = deployed()
    s = Seed(box)
    s.pair("ESTIMATE", "NEW", "Новая оценка")
    s.parent("NEW")
    result = audit(box)
    assert result.findings == [] and result.deals_read == 3


def test_every_inconsistency_is_found_exactly() -> None:
    box = deployed()
    seed_every_inconsistency(box)
    assert audit(box).counts() == EXPECTED


def test_fix_repairs_what_is_safe_and_deletes_nothing(tmp_path: Path) -> None:
    box = deployed()
    seeded = seed_every_inconsistency(box)
    server = start_in_thread(box)
    try:
        result = run_cli(
            "audit",
            "-b",
            str(EXAMPLE),
            "--fix",
            "--yes",
            "-f",
            "json",
            "--portal",
            box.webhook_url(server.base_url),
            cwd=tmp_path,
            env={"XDG_CONFIG_HOME": str(tmp_path)},
            clock=FakeClock(),
        )
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr  # unrepairable findings remain
    report = json.loads(result.stdout)  # stdout is the report alone: the repairs were on it
    assert report["counts"] and "safe repair(s):" in result.stderr
    after = audit(box).counts()
    assert after == {"L002": 2, "L003": 1, "L006": 1, "L007": 1, "L008": 1}, (
        "repairable rules are clean; the others remain and are reported"
    )
    assert box.portal.count_items(2) == seeded["deals"] + 2, "two children made, nothing deleted"


def test_a_report_file_that_cannot_be_written_stops_fix_before_it_writes(
    tmp_path: Path,
) -> None:
    """--fix repaired the portal, then exited 2 ("nothing was written") on an -o it could
    not write: the file is checked first."""
    box = deployed()
    seed_every_inconsistency(box)
    before = audit(box).counts()
    server = start_in_thread(box)
    try:
        for out in (tmp_path / "no-such-folder" / "a.json", tmp_path):
            result = run_cli(
                "audit", "-b", str(EXAMPLE), "--fix", "--yes", "-o", str(out),
                "--portal", box.webhook_url(server.base_url),
                cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path)}, clock=FakeClock(),
            )  # fmt: skip
            assert result.returncode == 2 and str(out) in result.stderr, result.stderr
    finally:
        server.stop()
    assert audit(box).counts() == before, "nothing repaired"


def test_a_link_field_the_portal_lacks_is_refused_not_repaired(tmp_path: Path) -> None:
    """A link's field deleted on the portal: writes to it were dropped there, silently, so
    --fix said it had repaired 807 things every run and each sync pass wrote the same
    deals again. The field is checked with the pipelines: exit 2, apply the blueprint."""
    box = deployed()
    seed_every_inconsistency(box)
    [field] = box.call("crm.deal.userfield.list", {"filter": {"FIELD_NAME": "UF_CRM_CHILD_DEAL"}})
    box.call("crm.deal.userfield.delete", {"id": field["ID"]})
    server = start_in_thread(box)
    try:
        for args in (
            ["audit", "-b", str(EXAMPLE), "--fix", "--yes"],
            ["sync", str(EXAMPLE), "--once"],
        ):
            result = run_cli(
                *args, "--portal", box.webhook_url(server.base_url),
                cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path)}, clock=FakeClock(),
            )  # fmt: skip
            assert result.returncode == 2, (args, result.stderr)
            assert "the portal has no deal field UF_CRM_CHILD_DEAL" in result.stderr
    finally:
        server.stop()


def test_exit_codes_formats_and_quiet(tmp_path: Path) -> None:
    box = deployed()
    server = start_in_thread(box)
    url = box.webhook_url(server.base_url)

    def run(*args: str) -> CliResult:
        return run_cli(
            "audit",
            "-b",
            str(EXAMPLE),
            *args,
            cwd=tmp_path,
            clock=FakeClock(),
            env={"XDG_CONFIG_HOME": str(tmp_path), "B24KIT_RETRIES": "1"},
        )

    try:
        clean = run("--portal", url, "--quiet")
        assert clean.returncode == 0 and clean.stdout.strip().endswith("clean"), clean.stdout
        Seed(box).pair("ESTIMATE", "NEW", "устарело")  # one warn (L004)
        assert run("--portal", url).returncode == 1, "warn >= default --fail-on warn"
        assert run("--portal", url, "--fail-on", "error").returncode == 0, "below the threshold"
        import json

        data = json.loads(run("--portal", url, "-f", "json", "--fail-on", "error").stdout)
        assert data["counts"] == {"L004": 1}
        assert data["findings"][0]["deals"][0]["url"].endswith(
            f"/crm/deal/details/{data['findings'][0]['deals'][0]['id']}/"
        )
        lines = run("--portal", url, "-f", "jsonl", "--fail-on", "error").stdout.splitlines()
        assert [json.loads(x)["rule"] for x in lines] == ["L004"]
        out = tmp_path / "audit.json"
        quiet = run("--portal", url, "-q", "-f", "json", "-o", str(out))
        assert len(quiet.stdout.strip().splitlines()) == 1, "cron: one summary line"
        assert json.loads(out.read_text(encoding="utf-8"))["counts"] == {"L004": 1}
        assert run("--portal", url, "--fail-on", "never").returncode == 2
    finally:
        server.stop()
    dead = run("--portal", url)
    assert dead.returncode == 3, "an incomplete audit never exits 0"


# ------------------------------------------------------------------ the pilot
def _stage(box: Sandbox, deal: int) -> str:
    return str(box.call("crm.deal.get", {"id": deal})["STAGE_ID"])


def test_the_pilot_with_sync_once(tmp_path: Path) -> None:
    box = deployed(COMPANY)
    sales = cats(box)["Продажи: Услуга под ключ"]
    logistics = cats(box)["Логистика"]
    bp = load_blueprint(COMPANY)[0]
    contact = box.call("crm.contact.add", {"fields": {"NAME": "Иван"}})
    deal = int(
        box.call(
            "crm.deal.add",
            {
                "fields": {
                    "TITLE": "Перевозка трактора",
                    "CATEGORY_ID": sales,
                    "OPPORTUNITY": 125000,
                    "CONTACT_ID": contact,
                    "COMMENTS": "Из Твери в Клин",
                }
            },
        )
    )

    def sync() -> Any:
        async def go() -> Any:
            with client_for(box) as client:
                return await sync_once(client, bp, tmp_path)

        return asyncio.run(go())

    assert sync().outcomes == [], "nothing to do before «Оценить»"
    box.call("crm.deal.update", {"id": deal, "fields": {"STAGE_ID": f"C{sales}:ESTIMATE"}})
    sync()
    children = box.call(
        "crm.deal.list", {"filter": {"CATEGORY_ID": logistics}, "select": ["*", "UF_*"]}
    )
    assert len(children) == 1, "moving to «Оценить» made one logistics child"
    child = children[0]
    assert child["UF_CRM_PARENT_DEAL"] == f"D_{deal}" and child["STAGE_ID"] == f"C{logistics}:NEW"
    assert (child["TITLE"], child["OPPORTUNITY"], child["CONTACT_ID"], child["COMMENTS"]) == (
        "Перевозка трактора",
        "125000.00",
        str(contact),
        "Из Твери в Клин",
    ), "copied fields"
    parent = box.call("crm.deal.get", {"id": deal})
    assert parent["UF_CRM_CHILD_DEAL"] == f"D_{child['ID']}", "the parent shows its child"
    assert parent["UF_CRM_CHILD_STAGE"] == "Новая оценка", "and the child's stage"
    quiet = sync()
    assert quiet.outcomes == [] and quiet.requests <= 4 + 2 * len(bp.links), (
        "a quiet pass costs a few requests: the time, the structure, a read or two per link"
    )
    box.call(
        "crm.deal.update", {"id": child["ID"], "fields": {"STAGE_ID": f"C{logistics}:APPROVAL"}}
    )
    sync()
    assert _stage(box, deal) == f"C{sales}:ESTIMATE_READY", "«Согласование» moves the parent"
    assert box.call("crm.deal.get", {"id": deal})["UF_CRM_CHILD_STAGE"] == "Согласование"
    assert len(box.call("crm.deal.list", {"filter": {"CATEGORY_ID": logistics}})) == 1


def test_the_pilot_with_sync_serve(tmp_path: Path) -> None:
    box = deployed(COMPANY)
    sales = cats(box)["Продажи: Услуга под ключ"]
    logistics = cats(box)["Логистика"]
    bp = load_blueprint(COMPANY)[0]
    deal = int(
        box.call("crm.deal.add", {"fields": {"TITLE": "Аренда крана", "CATEGORY_ID": sales}})
    )

    def event(name: str, deal_id: int, token: str = "app-secret") -> str:
        return (
            f"event={name}&event_handler_id=185&data%5BFIELDS%5D%5BID%5D={deal_id}"
            f"&ts=1735374081&auth%5Bdomain%5D=portal&auth%5Bapplication_token%5D={token}"
        )

    async def go() -> None:
        with client_for(box) as client:
            service = SyncService(client, bp, tmp_path, "app-secret", pause=0)
            worker = asyncio.create_task(service.work(300))
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service), base_url="http://sync"
            ) as http:
                headers = {"content-type": "application/x-www-form-urlencoded"}
                bad = await http.post(
                    "/", content=event("ONCRMDEALUPDATE", deal, "nope"), headers=headers
                )
                assert bad.status_code == 401, "events without the application token are refused"
                box.call(
                    "crm.deal.update", {"id": deal, "fields": {"STAGE_ID": f"C{sales}:ESTIMATE"}}
                )
                answer = await http.post(
                    "/", content=event("ONCRMDEALUPDATE", deal), headers=headers
                )
                assert answer.status_code == 200 and answer.json()["queued"] == deal
                await service.drain()  # the pass the event woke
                child = box.call("crm.deal.list", {"filter": {"CATEGORY_ID": logistics}})[0]
                box.call(
                    "crm.deal.update",
                    {"id": child["ID"], "fields": {"STAGE_ID": f"C{logistics}:APPROVAL"}},
                )
                await http.post(
                    "/", content=event("ONCRMDEALUPDATE", int(child["ID"])), headers=headers
                )
                await service.drain()
            service.stop()
            await worker
        assert service.passes == 2, "one pass per event that came alone"

    asyncio.run(go())
    assert _stage(box, deal) == f"C{sales}:ESTIMATE_READY"
    assert box.call("crm.deal.get", {"id": deal})["UF_CRM_CHILD_STAGE"] == "Согласование"


def test_concurrent_passes_make_one_child(tmp_path: Path) -> None:
    box = deployed(COMPANY, latency_ms=30)
    sales = cats(box)["Продажи: Услуга под ключ"]
    logistics = cats(box)["Логистика"]
    deal = int(
        box.call(
            "crm.deal.add", {"fields": {"CATEGORY_ID": sales, "STAGE_ID": f"C{sales}:ESTIMATE"}}
        )
    )
    server = start_in_thread(box)
    try:
        procs = [
            warm.start(
                [
                    "sync",
                    "-b",
                    str(COMPANY),
                    "--once",
                    "--state-dir",
                    str(tmp_path / "state"),
                    "--portal",
                    box.webhook_url(server.base_url),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
                env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
            )
            for _ in range(2)
        ]
        for proc in procs:
            assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        server.stop()
    assert len(box.call("crm.deal.list", {"filter": {"CATEGORY_ID": logistics}})) == 1, (
        "two passes at once made exactly one child"
    )
    box.config.latency_ms = 0
    # an event racing a pass, in one served process
    second = int(
        box.call(
            "crm.deal.add", {"fields": {"CATEGORY_ID": sales, "STAGE_ID": f"C{sales}:ESTIMATE"}}
        )
    )

    async def race() -> None:
        with client_for(box) as client:
            service = SyncService(client, load_blueprint(COMPANY)[0], tmp_path / "state2", "t")
            body = (
                f"event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D={second}"
                "&auth%5Bapplication_token%5D=t"
            ).encode()
            worker = asyncio.create_task(service.work(300))
            service.handle("POST", body)
            await asyncio.gather(service.run_pass(), service.drain())
            service.handle("POST", body)
            await asyncio.gather(service.run_pass(), service.drain())
            service.stop()
            await worker

    asyncio.run(race())
    children = box.call(
        "crm.deal.list", {"filter": {"CATEGORY_ID": logistics}, "select": ["UF_CRM_PARENT_DEAL"]}
    )
    assert sorted(c["UF_CRM_PARENT_DEAL"] for c in children) == sorted([f"D_{deal}", f"D_{second}"])


# ----------------------------------------------------------------- estimates
def test_estimates_report_matches_independent_figures(tmp_path: Path) -> None:
    now = [1_700_000_000.0]  # 2023-11-14, a Tuesday
    box = deployed(COMPANY, clock=lambda: now[0])
    sales = cats(box)["Продажи: Услуга под ключ"]
    logistics = cats(box)["Логистика"]
    bp = load_blueprint(COMPANY)[0]
    hours_by_person = {6: [2.0, 5.0, 30.0, 1.5], 7: [10.0, 12.0]}
    expected = {}
    for person, spans in hours_by_person.items():
        for hours in spans:
            deal = int(
                box.call("crm.deal.add", {"fields": {"CATEGORY_ID": sales, "OPPORTUNITY": 200000}})
            )
            box.call("crm.deal.update", {"id": deal, "fields": {"STAGE_ID": f"C{sales}:ESTIMATE"}})

            async def create() -> None:
                with client_for(box) as client:
                    await sync_once(client, bp, tmp_path, full=True)

            asyncio.run(create())
            child = box.call(
                "crm.deal.list",
                {"filter": {"CATEGORY_ID": logistics, "UF_CRM_PARENT_DEAL": f"D_{deal}"}},
            )[0]
            box.call(
                "crm.deal.update",
                {"id": child["ID"], "fields": {"ASSIGNED_BY_ID": person, "OPPORTUNITY": 150000}},
            )
            now[0] += hours * 3600
            box.call(
                "crm.deal.update",
                {"id": child["ID"], "fields": {"STAGE_ID": f"C{logistics}:APPROVAL"}},
            )
            now[0] += 60
        expected[person] = {
            "estimates": len(spans),
            "median_hours": round(statistics.median(spans), 2),
            "p90_hours": round(statistics.quantiles(spans, n=10, method="inclusive")[8], 2),
            "price_given": 150000.0 * len(spans),
            "final_amount": 200000.0 * len(spans),
        }

    async def report() -> Any:
        with client_for(box) as client:
            return await estimates_report(client, bp)

    rows = {r.logistician: r for r in asyncio.run(report())}
    assert set(rows) == {6, 7}
    for person, figures in expected.items():
        row = rows[person]
        got = {k: getattr(row, k) for k in figures}
        assert got == figures, (person, got, figures)
        assert row.month == "2023-11"


def test_closed_parents_get_no_child() -> None:
    box = deployed()
    s = Seed(box)
    s.parent("WON")
    s.parent("LOSE")
    assert audit(box).findings == [], "won or lost parents are past needing an estimate"


def test_fix_of_a_one_sided_link_makes_no_second_child() -> None:
    """A parent in the trigger stage points at a child whose parent field is empty: a broken
    link (L002, re-linked), not a missing child. A new child next to it would be a
    duplicate the tool cannot repair (issue 16: 10 of 10 such pairs got two children)."""
    box = deployed()
    s = Seed(box)
    pairs = []
    for _ in range(3):
        child = s.child("NEW", None)
        pairs.append((s.parent("ESTIMATE", child=child, mirror="Новая оценка"), child))
    found = audit(box).counts()
    assert found == {"L002": 3}, found

    async def repair() -> None:
        with client_for(box) as client:
            bp = load_blueprint(EXAMPLE)[0]
            result = await audit_portal(client, bp)
            await fix(client, bp, [f for f in result.findings if f.repair])

    asyncio.run(repair())
    assert audit(box).counts() == {}, "re-linked, nothing else"
    for parent, child in pairs:
        kids = box.call(
            "crm.deal.list", {"filter": {"UF_CRM_PARENT_DEAL": f"D_{parent}"}, "select": ["ID"]}
        )
        assert [int(k["ID"]) for k in kids] == [child], "exactly the one child, linked back"


def test_a_stuck_sync_pass_does_not_freeze_the_next(tmp_path: Path) -> None:
    """Issue 16, item 10: the next pass waits a bounded time, without blocking its event
    loop, then gives up with a clear error (the one after tries again)."""
    import fcntl

    from b24kit.locks import LockHeld, run_lock

    held = (tmp_path / "run.lock").open("w")
    fcntl.flock(held, fcntl.LOCK_EX)  # another process's pass, stuck

    async def go() -> tuple[str, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            async with run_lock(tmp_path / "run.lock", "sync", wait=0.5):
                return "entered", ticks
        except LockHeld as exc:
            return str(exc), ticks
        finally:
            task.cancel()

    message, ticks = asyncio.run(go())
    held.close()
    assert "holds" in message and "waited" in message, message
    assert ticks >= 5, "bounded, and the loop kept running"
