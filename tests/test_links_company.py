"""Links for the whole company (issue 13, items 1 and 4): the estimate link takes its
parents from every sales direction, the engineering link from the same ones at
«Договор»; audit, repair and sync work per link and per parent pipeline; the quote is
recorded on the parent once, when the estimate moves it to «Оценка готова»."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from b24kit.blueprint.loader import load_blueprint
from b24kit.links.run import audit_portal, sync_once
from b24kit.sandbox import Sandbox
from tests.clients import client_for, sync_served

ROOT = Path(__file__).resolve().parent.parent
BP = load_blueprint(ROOT / "blueprints" / "company.yaml")[0]
DIRECTIONS = BP.links[0].parent.codes


class Portal:
    """The company blueprint deployed on a sandbox (a copy of the session's database)."""

    def __init__(self, db: Path, state: Path) -> None:
        self.box = Sandbox(limits="off", db=str(db))
        self.state = state
        cats = self.box.call("crm.category.list", {"entityTypeId": 2})["categories"]
        by_name = {c["name"]: c["id"] for c in cats}
        self.ids = {p.code: by_name[p.name] for p in BP.deal.pipelines}

    def deal(self, pipeline: str, stage: str, **fields: Any) -> int:
        cat = self.ids[pipeline]
        body = {"TITLE": f"{pipeline} {stage}", "CATEGORY_ID": cat, "STAGE_ID": f"C{cat}:{stage}"}
        return int(self.box.call("crm.deal.add", {"fields": {**body, **fields}}))

    def move(self, deal: int, pipeline: str, stage: str) -> None:
        cat = self.ids[pipeline]
        self.box.call("crm.deal.update", {"id": deal, "fields": {"STAGE_ID": f"C{cat}:{stage}"}})

    def get(self, deal: int) -> dict[str, Any]:
        return dict(self.box.call("crm.deal.get", {"id": deal}))

    def children(self, pipeline: str, parent: int) -> list[dict[str, Any]]:
        return list(
            self.box.call(
                "crm.deal.list",
                {
                    "filter": {
                        "CATEGORY_ID": self.ids[pipeline],
                        "UF_CRM_PARENT_DEAL": f"D_{parent}",
                    },
                    "select": ["*", "UF_*"],
                },
            )
        )

    def sync(self) -> Any:
        async def go() -> Any:
            with client_for(self.box) as client:
                return await sync_once(client, BP, self.state)

        return asyncio.run(go())

    def audit(self) -> Any:
        async def go() -> Any:
            with client_for(self.box) as client:
                return await audit_portal(client, BP)

        return asyncio.run(go())


@pytest.fixture
def portal(deployed_db: Path, tmp_path: Path) -> Portal:
    db = tmp_path / "sandbox.sqlite"
    shutil.copy(deployed_db, db)
    return Portal(db, tmp_path / "state")


def test_every_sales_direction_sends_its_estimates_to_logistics(portal: Portal) -> None:
    assert DIRECTIONS == [
        "sales_turnkey",
        "sales_rental",
        "sales_cold",
        "sales_repeat",
        "sales_carservice",
        "sales_transport",
        "upsell",
    ]
    deals = {code: portal.deal(code, "QUALIFY", OPPORTUNITY=1000) for code in DIRECTIONS}
    assert portal.sync().outcomes == [], "nothing before «Оценить»"
    for code, deal in deals.items():
        portal.move(deal, code, "ESTIMATE")
    before = portal.audit()
    missing = {f.pipeline: f.deals for f in before.findings if f.rule == "L001"}
    assert missing == {code: [deal] for code, deal in deals.items()}, "L001 per parent pipeline"
    portal.sync()
    for code, deal in deals.items():
        [child] = portal.children("logistics", deal)
        assert child["STAGE_ID"] == f"C{portal.ids['logistics']}:NEW", code
        parent = portal.get(deal)
        assert parent["UF_CRM_CHILD_DEAL"] == f"D_{child['ID']}"
        assert parent["UF_CRM_CHILD_STAGE"] == "Новая оценка"
        assert portal.children("engineers", deal) == [], "engineering waits for «Договор»"
    assert portal.audit().findings == []
    assert portal.sync().outcomes == [], "one child per parent: a second pass makes none"


def test_the_engineering_link_works_the_same_way(portal: Portal) -> None:
    rental = portal.deal("sales_rental", "OFFER", OPPORTUNITY=5000)
    repeat = portal.deal("sales_repeat", "OFFER")
    portal.sync()  # past «Оценить»: their estimates
    portal.move(rental, "sales_rental", "CONTRACT")
    portal.move(repeat, "sales_repeat", "CONTRACT")
    rules = {(f.rule, f.link, f.pipeline) for f in portal.audit().findings}
    assert rules == {
        ("L001", "engineering", "sales_rental"),
        ("L001", "engineering", "sales_repeat"),
    }
    portal.sync()
    for deal in (rental, repeat):
        [task] = portal.children("engineers", deal)
        [estimate] = portal.children("logistics", deal)
        parent = portal.get(deal)
        assert parent["UF_CRM_ENGINEERING_DEAL"] == f"D_{task['ID']}", "its own parent field"
        assert parent["UF_CRM_ENGINEERING_STAGE"] == "Новая задача", "and its own mirror"
        assert parent["UF_CRM_CHILD_DEAL"] == f"D_{estimate['ID']}", "the estimate's untouched"
    engineers = portal.ids["engineers"]
    task = portal.children("engineers", rental)[0]
    portal.box.call(
        "crm.deal.update", {"id": task["ID"], "fields": {"STAGE_ID": f"C{engineers}:REVIEW"}}
    )
    stale = [(f.rule, f.link) for f in portal.audit().findings]
    assert stale == [("L004", "engineering")], "the engineering mirror is checked on its own"
    portal.sync()
    assert portal.get(rental)["UF_CRM_ENGINEERING_STAGE"] == "Проверка"
    assert portal.audit().findings == []


def test_the_quote_is_recorded_once_when_the_estimate_moves_the_parent(portal: Portal) -> None:
    logistics = portal.ids["logistics"]
    deal = portal.deal("sales_cold", "ESTIMATE", OPPORTUNITY=90000)
    portal.sync()
    [child] = portal.children("logistics", deal)
    portal.box.call(
        "crm.deal.update",
        {"id": child["ID"], "fields": {"OPPORTUNITY": 72500, "STAGE_ID": f"C{logistics}:APPROVAL"}},
    )
    at = portal.get(int(child["ID"]))["MOVED_TIME"]
    portal.sync()
    parent = portal.get(deal)
    assert parent["STAGE_ID"] == f"C{portal.ids['sales_cold']}:ESTIMATE_READY"
    assert parent["UF_CRM_ESTIMATE_PRICE"] == "72500.00|RUB", "the estimate's price, as money"
    assert parent["UF_CRM_ESTIMATE_AT"] and parent["UF_CRM_ESTIMATE_AT"][:16] == at[:16]

    # the estimate is reworked: a new price, back to work, approval again; the parent is
    # moved back by hand and moved on again by sync: the first quote stays
    portal.box.call(
        "crm.deal.update",
        {"id": child["ID"], "fields": {"OPPORTUNITY": 99000, "STAGE_ID": f"C{logistics}:IN_WORK"}},
    )
    portal.move(deal, "sales_cold", "ESTIMATE")
    portal.sync()
    portal.box.call(
        "crm.deal.update", {"id": child["ID"], "fields": {"STAGE_ID": f"C{logistics}:APPROVAL"}}
    )
    portal.sync()
    again = portal.get(deal)
    assert again["STAGE_ID"] == f"C{portal.ids['sales_cold']}:ESTIMATE_READY", "moved again"
    assert again["UF_CRM_ESTIMATE_PRICE"] == "72500.00|RUB", "recorded once, never overwritten"
    assert again["UF_CRM_ESTIMATE_AT"] == parent["UF_CRM_ESTIMATE_AT"]


# ------------------------------------------------------------- served and raced
TOKEN = "company-token-1a2b3c"


def _story(portal: Portal) -> Any:
    """Deals in three directions: to «Оценить», one on to «Договор», one estimate to
    «Согласование»; yields the deal each step touched (an event's deal)."""
    deals = {code: portal.deal(code, "QUALIFY", OPPORTUNITY=1000) for code in DIRECTIONS[1:4]}
    for code, deal in deals.items():
        portal.move(deal, code, "ESTIMATE")
        yield deal
    rental = deals["sales_rental"]
    portal.move(rental, "sales_rental", "CONTRACT")
    yield rental
    cold = deals["sales_cold"]
    [estimate] = portal.children("logistics", cold)
    logistics = portal.ids["logistics"]
    portal.box.call(
        "crm.deal.update",
        {
            "id": estimate["ID"],
            "fields": {
                "OPPORTUNITY": 800,
                "UF_CRM_OWN_VEHICLES": 1,  # own vehicles, at a price: no contractor needed
                "UF_CRM_CONTRACTOR_PRICE": 800,
                "STAGE_ID": f"C{logistics}:APPROVAL",
            },
        },
    )
    yield int(estimate["ID"])


def _state(portal: Portal) -> Any:
    """The portal as the links left it, without ids: per parent, its children and fields."""
    rows = portal.box.call("crm.deal.list", {"select": ["*", "UF_*"], "order": {"ID": "ASC"}})
    by_id = {int(r["ID"]): r for r in rows}
    names = {v: k for k, v in portal.ids.items()}
    out = []
    for r in rows:
        parent = r.get("UF_CRM_PARENT_DEAL")
        of = by_id[int(parent[2:])]["TITLE"] if parent else None
        out.append(
            (
                names.get(int(r["CATEGORY_ID"])),
                r["TITLE"],
                r["STAGE_ID"].split(":")[-1],
                of,
                r.get("UF_CRM_CHILD_STAGE"),
                r.get("UF_CRM_ENGINEERING_STAGE"),
                r.get("UF_CRM_ESTIMATE_PRICE"),
            )
        )
    return sorted(out, key=str)


def test_sync_serve_and_sync_once_give_the_same_company(deployed_db: Path, tmp_path: Path) -> None:
    once, served = (Portal(_copy(deployed_db, tmp_path / n), tmp_path / n / "s") for n in "ab")
    for _ in _story(once):
        once.sync()
    sync_served(served.box, BP, served.state, TOKEN, _story(served))
    assert _state(served) == _state(once)
    assert [r for r in _state(once) if r[0] == "engineers"], "the engineering child was made"
    assert [r for r in _state(once) if r[6] == "800.00|RUB"], "and the quote recorded"
    assert once.audit().findings == [] and served.audit().findings == []


def test_racing_passes_make_one_child_per_parent_and_link(portal: Portal) -> None:
    deals = [portal.deal(code, "CONTRACT") for code in DIRECTIONS]

    async def go() -> None:
        with client_for(portal.box) as one, client_for(portal.box) as two:
            await asyncio.gather(sync_once(one, BP, portal.state), sync_once(two, BP, portal.state))

    asyncio.run(go())
    for deal in deals:
        assert len(portal.children("logistics", deal)) == 1
        assert len(portal.children("engineers", deal)) == 1
    assert portal.audit().findings == []


def _copy(db: Path, home: Path) -> Path:
    home.mkdir(parents=True)
    shutil.copy(db, home / "sandbox.sqlite")
    return home / "sandbox.sqlite"
