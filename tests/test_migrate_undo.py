"""`migrate undo` (issue 10, item 8): a rehearsal's migration removed by b24kit's own keys,
deepest first; refused when a person changed something since; resumable; and a second
`migrate run` makes it all again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24kit.blueprint.loader import load_blueprint
from b24kit.migrate.run import load_mapping
from b24kit.migrate.undo import UndoPlan, UndoRefused, UndoResult, plan_undo, run_undo
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests import warm
from tests.cli import CliResult, run_cli
from tests.clients import client_for
from tests.test_migrate import COMPANY_PATH, EXAMPLES, deployed, migrate

HEADER = (
    "№,Дата,Клиент,Телефон,Email,Что везём,Менеджер,Логист,Подрядчик,Телефон подрядчика,"
    "Себестоимость,Цена,Статус,Оценка подрядчика,Источник,Комментарий"
)
ROWS = [
    # a parent, its estimate child (a logistician is named), a contractor, a comment
    "1,2024-02-02,Вектор Сергей,+7 905 444-33-22,,каток Bomag,Петрова,Кузнецова,"
    "ТралСпецТранс,+7 911 333-22-11,230000,299000,считаем,5,сайт,Нужен пропуск",
    # the client existed before the migration (found by phone: it gains nothing, is kept)
    "2,2024-03-03,Старый Иван,+7 916 000-00-01,,кран,Иванов,,,,,100000,новая,,,",
    "3,2024-03-04,Новый Пётр,+7 916 000-00-02,,трактор,Иванов,,,,,120000,новая,,,",
]
OTHER_ROWS = ["7,2024-05-05,Другой Олег,+7 916 000-00-07,,бульдозер,Орлов,,,,,90000,новая,,,"]
ORIGINATOR = "rehearsal"


def sheet(tmp_path: Path, originator: str = ORIGINATOR, rows: list[str] = ROWS) -> Path:
    """A small sheet and its mapping (the example mapping's columns) in tmp_path."""
    folder = tmp_path / originator
    folder.mkdir()
    (folder / "p.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    text = (
        (EXAMPLES / "projects.mapping.yaml")
        .read_text(encoding="utf-8")
        .replace("source: {csv: projects.csv, header_rows: 1}", "source: {csv: p.csv}")
        .replace("blueprint: ../blueprints/company.yaml", f"blueprint: {COMPANY_PATH}")
        .replace("originator: legacy-projects", f"originator: {originator}")
    )
    (folder / "m.yaml").write_text(text, encoding="utf-8")
    return folder / "m.yaml"


_MIGRATED: list[Sandbox] = []  # the sheet migrated once per test process


def migrated_box(tmp_path: Path) -> tuple[Sandbox, Path]:
    """A deployed sandbox where the sheet (ROWS) was migrated, and its mapping: a copy of
    one migrated once (tests/test_migrate.py deployed), as a migration per test would
    leave it: the migration is every test's start, not what it checks."""
    mapping = sheet(tmp_path)
    if not _MIGRATED:
        box = deployed()
        assert not migrate(box, mapping).failed
        _MIGRATED.append(box)
    return _MIGRATED[0].clone(limits="off"), mapping


def old_client(box: Sandbox) -> int:
    """A contact a manager made before the migration, with row 2's phone."""
    return int(
        box.call(
            "crm.contact.add",
            {
                "fields": {
                    "NAME": "Иван",
                    "LAST_NAME": "Старый",
                    "PHONE": [{"VALUE": "+79160000001", "VALUE_TYPE": "WORK"}],
                }
            },
        )
    )


def as_user(box: Sandbox, user: int, method: str, params: dict[str, Any]) -> Any:
    """A call through another user's webhook, as a manager's edit would come."""
    token = box.add_webhook(user, ("crm",))

    async def go() -> Any:
        async with httpx.AsyncClient(transport=box.transport()) as http:
            response = await http.post(f"http://x/rest/{user}/{token}/{method}", json=params)
            assert response.status_code == 200, response.text
            return response.json()["result"]

    return asyncio.run(go())


def owned(box: Sandbox, originator: str = ORIGINATOR) -> dict[str, list[str]]:
    """What the originator's keys find on the portal, by entity."""
    deals = box.call(
        "crm.deal.list", {"filter": {"ORIGINATOR_ID": originator}, "select": ["ORIGIN_ID"]}
    )
    contacts = box.call(
        "crm.contact.list", {"filter": {"ORIGINATOR_ID": originator}, "select": ["ORIGIN_ID"]}
    )
    items = [
        r["XML_ID"]
        for r in (
            json.loads(row["data"])
            for row in box.portal.db.all("SELECT data FROM items WHERE entity_type_id >= 128")
        )
        if str(r.get("XML_ID", "")).startswith(f"{originator}:contractor:")
    ]
    comments = [
        r["comment"]
        for r in box.portal.db.all("SELECT comment FROM timeline_comments")
        if f"[b24kit {originator} row " in r["comment"]
    ]
    return {
        "deals": sorted(d["ORIGIN_ID"] for d in deals),
        "contacts": sorted(c["ORIGIN_ID"] for c in contacts),
        "contractors": sorted(items),
        "comments": sorted(c.rsplit("\n\n", 1)[-1] for c in comments),
    }


def plan(box: Sandbox, mapping: Path) -> UndoPlan:
    async def go() -> UndoPlan:
        with client_for(box) as client:
            return await plan_undo(client, load_mapping(mapping))

    return asyncio.run(go())


def undo(box: Sandbox, mapping: Path, force: bool = False) -> UndoResult:
    async def go() -> UndoResult:
        with client_for(box) as client:
            found = await plan_undo(client, load_mapping(mapping))
            return await run_undo(client, found, force=force)

    return asyncio.run(go())


def cli_undo(box: Sandbox, mapping: Path, tmp_path: Path, *extra: str) -> CliResult:
    running = start_in_thread(box)
    try:
        return run_cli(
            "migrate",
            "undo",
            str(mapping),
            "--portal",
            box.webhook_url(running.base_url),
            *extra,
            cwd=tmp_path,
            env={"XDG_CONFIG_HOME": str(tmp_path), "B24KIT_STATE_DIR": str(tmp_path / "state")},
        )
    finally:
        running.stop()


MIGRATED = {
    "deals": ["row:1", "row:1:estimate", "row:2", "row:3"],
    "contacts": ["contact:79054443322", "contact:79160000002"],
    "contractors": [f"{ORIGINATOR}:contractor:79113332211"],
    "comments": [f"[b24kit {ORIGINATOR} row 1]"],
}


def test_dry_run_lists_then_undo_removes_and_a_rerun_recreates(tmp_path: Path) -> None:
    box = deployed()
    before = old_client(box)
    mapping = sheet(tmp_path)
    first = migrate(box, mapping)
    assert not first.failed
    assert owned(box) == MIGRATED

    dry = cli_undo(box, mapping, tmp_path, "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    shown = json.loads(dry.stdout)
    assert shown["remove"] == {
        "children": 1,
        "parents": 3,
        "contractors": 1,
        "contacts": 2,
        "companies": 0,
    }
    assert shown["comments"] == 1 and shown["changed"] == 0 and shown["dry_run"] is True
    assert sorted(e["key"] for e in shown["entities"]) == sorted(
        [*MIGRATED["deals"], *MIGRATED["contacts"], *MIGRATED["contractors"]]
    ), "exactly what the migration made"
    assert [e["entity"] for e in shown["entities"]][:1] == ["children"]
    assert shown["kept_entities"] == [
        {
            "entity": "contacts",
            "id": before,
            "title": "Старый Иван",
            "reason": "kept: not made by this mapping",
        }
    ]
    assert "/***/" in shown["portal"] and box.token not in dry.stdout + dry.stderr
    assert owned(box) == MIGRATED, "a dry run deletes nothing"

    text = cli_undo(box, mapping, tmp_path, "--dry-run")
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Undo of 'rehearsal' on http://127.0.0.1:")
    assert lines[0].endswith(
        "/rest/1/***/: 7 to delete (children 1, parents 3, contractors 1, contacts 2)"
    ), "the portal, redacted, and the counts"
    assert lines[2].startswith("  delete child deal ") and "row:1:estimate" in lines[2]
    assert f"  kept: not made by this mapping: contact {before} Старый Иван" in lines
    asked = cli_undo(box, mapping, tmp_path)
    assert asked.returncode == 2 and "pass --yes" in asked.stderr, "no terminal to ask on"

    done = cli_undo(box, mapping, tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert "Deleted 7 of 7 on " in done.stdout
    assert owned(box) == {"deals": [], "contacts": [], "contractors": [], "comments": []}
    assert box.call("crm.contact.get", {"id": before})["LAST_NAME"] == "Старый", "kept"

    again = cli_undo(box, mapping, tmp_path, "--yes", "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["entities"] == [], "nothing left"

    second = migrate(box, mapping)
    assert not second.failed
    assert second.plan.counts == first.plan.counts, "the same counts as the first run"
    assert owned(box) == MIGRATED


def test_an_entity_changed_by_someone_else_refuses_the_undo(tmp_path: Path) -> None:
    box, mapping = migrated_box(tmp_path)
    migrated = owned(box)
    deals = {
        d["ORIGIN_ID"]: int(d["ID"])
        for d in box.call(
            "crm.deal.list", {"filter": {"ORIGINATOR_ID": ORIGINATOR}, "select": ["ORIGIN_ID"]}
        )
    }
    assert not plan(box, mapping).changed, "the migration's own writes are no change"
    # a manager (user 9) renames one parent and comments on another
    as_user(box, 9, "crm.deal.update", {"id": deals["row:2"], "fields": {"TITLE": "Кран!"}})
    as_user(
        box,
        9,
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": deals["row:3"], "ENTITY_TYPE": "deal", "COMMENT": "звонил"}},
    )
    found = plan(box, mapping)
    assert [(d.key, d.changes) for d in found.changed] == [
        ("row:2", ("edited by user 9",)),
        ("row:3", (found.changed[1].changes[0],)),
    ]
    assert (
        found.changed[1].changes[0].startswith("comment ")
        and "by user 9" in (found.changed[1].changes[0])
    )

    refused = cli_undo(box, mapping, tmp_path, "--yes")
    assert refused.returncode == 2
    lines = [x for x in refused.stderr.splitlines() if x.startswith("refused:")]
    assert len(lines) == 2, refused.stderr
    assert f"refused: parent deal {deals['row:2']} row:2: edited by user 9" in lines
    assert "2 entities changed on" in refused.stderr and "nothing was deleted" in refused.stderr
    assert owned(box) == migrated, "refused: nothing deleted"

    forced = cli_undo(box, mapping, tmp_path, "--yes", "--force")
    assert forced.returncode == 0, forced.stderr
    assert owned(box)["deals"] == [] and owned(box)["contacts"] == []


def test_a_stage_moved_by_someone_else_is_a_change(tmp_path: Path) -> None:
    box, mapping = migrated_box(tmp_path)
    child = box.call(
        "crm.deal.list",
        {"filter": {"ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": "row:1:estimate"}},
    )[0]
    stages = box.call(
        "crm.status.list", {"filter": {"ENTITY_ID": f"DEAL_STAGE_{child['CATEGORY_ID']}"}}
    )
    other = next(s["STATUS_ID"] for s in stages if s["STATUS_ID"] != child["STAGE_ID"])
    as_user(box, 9, "crm.deal.update", {"id": child["ID"], "fields": {"STAGE_ID": other}})
    found = plan(box, mapping)
    assert [(d.entity, d.key) for d in found.changed] == [("children", "row:1:estimate")]
    assert "stage moved by user 9" in found.changed[0].changes
    before = owned(box)
    with pytest.raises(UndoRefused) as refused:  # the library refuses too, not only the CLI
        undo(box, mapping)
    assert [d.key for d in refused.value.changed] == ["row:1:estimate"]
    assert owned(box) == before, "refused: nothing deleted"
    result = undo(box, mapping, force=True)
    assert not result.failed and owned(box)["deals"] == []


def test_another_mappings_entities_are_untouched(tmp_path: Path) -> None:
    box = deployed()
    mapping = sheet(tmp_path)
    # the other sheet's client shares row 3's phone: its deal uses our contact
    other = sheet(tmp_path, "other-sheet", [*OTHER_ROWS, ROWS[2].replace("3,", "8,", 1)])
    migrate(box, mapping)
    migrate(box, other)
    theirs = owned(box, "other-sheet")
    assert theirs["deals"] == ["row:7", "row:8"]
    result = undo(box, mapping)
    assert not result.failed
    assert owned(box, "other-sheet") == theirs, "the other originator's entities stay"
    assert owned(box)["contacts"] == ["contact:79160000002"], (
        "our contact, still bound to the other mapping's deal, is kept"
    )
    kept = [k for k in result.plan.kept if k.entity == "contacts" and "still bound" in k.reason]
    assert len(kept) == 1
    assert owned(box)["deals"] == [] and owned(box)["contractors"] == []


def test_an_undo_under_faults_finishes(tmp_path: Path) -> None:
    box, mapping = migrated_box(tmp_path)
    box.faults = type(box.faults).parse("500=0.2,drop=0.2,lost=0.2,seed=5")
    result = undo(box, mapping)
    assert sum(box.faults.counts.values()) > 0
    assert not result.failed, [str(o.error) for o in result.failed]
    box.faults = type(box.faults).parse("")
    assert owned(box) == {"deals": [], "contacts": [], "contractors": [], "comments": []}


def test_an_undo_killed_half_way_is_finished_by_the_next(tmp_path: Path) -> None:
    box, mapping = migrated_box(tmp_path)
    migrated = owned(box)
    plan_requests = plan_cost(box, mapping)
    box.config.latency_ms = 40  # the undo's own requests: slow enough to be killed between
    running = start_in_thread(box)
    base = box.requests
    try:
        proc = warm.start(
            ["migrate", "undo", str(mapping), "--yes"]
            + ["--portal", box.webhook_url(running.base_url)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
        )
        # after the plan's reads and the children's step: the parents' step is under way
        deadline = time.time() + 60
        while (
            box.requests - base < plan_requests + 1
            and time.time() < deadline
            and proc.poll() is None
        ):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "killed before it finished"
    finally:
        running.stop()
    box.config.latency_ms = 0
    left = owned(box)
    assert left["contacts"] and left != migrated, "stopped half-way"
    assert "row:1:estimate" not in left["deals"] or "row:1" in left["deals"], (
        "never a child without its parent"
    )
    result = undo(box, mapping)
    assert not result.failed
    assert owned(box) == {"deals": [], "contacts": [], "contractors": [], "comments": []}
    migrate(box, mapping)
    assert owned(box) == migrated, "and the migration makes it all again"


def plan_cost(box: Sandbox, mapping: Path) -> int:
    """The requests an undo's planning makes on this portal."""
    before = box.requests
    plan(box, mapping)
    return box.requests - before


def test_companies_and_contact_persons_go_by_their_keys(tmp_path: Path) -> None:
    """Companies (ORIGIN_ID company:) and contact persons (person:) of the originator are
    removed like its contacts; a company it did not make, bound to its deal, is kept."""
    box, mapping = migrated_box(tmp_path)
    parent = box.call(
        "crm.deal.list", {"filter": {"ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": "row:2"}}
    )[0]
    ours = box.call(
        "crm.company.add",
        {"fields": {"TITLE": "ООО Вектор", "ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": "company:1"}},
    )
    person = box.call(
        "crm.contact.add",
        {
            "fields": {
                "NAME": "Сергей",
                "COMPANY_ID": ours,
                "ORIGINATOR_ID": ORIGINATOR,
                "ORIGIN_ID": "person:1",
            }
        },
    )
    foreign = box.call("crm.company.add", {"fields": {"TITLE": "ИП Сидоров"}})
    box.call("crm.deal.update", {"id": parent["ID"], "fields": {"COMPANY_ID": foreign}})
    found = plan(box, mapping)
    assert found.counts["companies"] == 1 and not found.changed
    assert ("contacts", int(person)) in {(d.entity, d.id) for d in found.remove}
    assert [(k.entity, k.id, k.title, k.reason) for k in found.kept] == [
        ("companies", int(foreign), "ИП Сидоров", "kept: not made by this mapping")
    ]
    assert not undo(box, mapping).failed
    assert box.call("crm.company.list", {"select": ["ID"]}) == [{"ID": str(foreign)}]
    assert owned(box)["contacts"] == []


def test_children_sync_made_and_implied_children_go_first_with_their_parents(
    tmp_path: Path,
) -> None:
    """A reviewer's find: undo read only the mapping's own deals, so a child sync made
    under a migrated parent was left pointing at a deal that was gone (L002); and a child
    of a link the mapping does not name (row:N:engineering) was taken for a parent and
    deleted in the parents' step."""
    from b24kit.links.run import audit_portal, sync_once

    box = deployed()
    rows = [*ROWS, "4,2024-03-05,Договор Ян,+7 916 000-00-04,,кран,Иванов,,,,,1000,договор,,,"]
    mapping = sheet(tmp_path, rows=rows)
    migrate(box, mapping)
    bp = load_blueprint(COMPANY_PATH)[0]
    [row3] = box.call(
        "crm.deal.list", {"filter": {"ORIGIN_ID": "row:3"}, "select": ["ID", "CATEGORY_ID"]}
    )
    box.call(
        "crm.deal.update",
        {"id": row3["ID"], "fields": {"STAGE_ID": f"C{row3['CATEGORY_ID']}:ESTIMATE"}},
    )

    async def go() -> None:
        with client_for(box) as client:
            await sync_once(client, bp, tmp_path / "sync")

    asyncio.run(go())
    synced = box.call(
        "crm.deal.list", {"filter": {"ORIGINATOR_ID": "b24kit-links"}, "select": ["ORIGIN_ID"]}
    )
    assert [d["ORIGIN_ID"] for d in synced] == [f"estimate:{row3['ID']}"]
    found = plan(box, mapping)
    kinds = {d.key: d.entity for d in found.remove if d.entity in ("children", "parents")}
    assert kinds["row:4:engineering"] == "children", "an implied child is a child"
    assert kinds[f"estimate:{row3['ID']}"] == "children", "sync's child goes too"
    assert undo(box, mapping).failed == []
    assert box.call("crm.deal.list", {"select": ["ID"]}) == [], "no deal left, no orphan"

    async def audit() -> Any:
        with client_for(box) as client:
            return await audit_portal(client, bp)

    assert asyncio.run(audit()).findings == []
