"""Pilot 2 live (issue 13, items 2 and 3): the contractor directory fills itself from the
logistics estimates through sync (once and served), and audit checks it (D001..D004)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from b24kit.blueprint.loader import BlueprintError, load_blueprint
from b24kit.links.directory import phone_keys, stats_of
from b24kit.links.run import audit_portal, sync_once
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests.cli import run_cli
from tests.clients import client_for, sync_served
from tests.clocks import FakeClock
from tests.test_links import COMPANY, cats, deployed

BP = load_blueprint(COMPANY)[0]
ETID = 1030  # the sandbox's first smart process
TYPE = 1  # its id: fields are UF_CRM_1_...
TOKEN = "dir-token-5e6f7a8b"


class Company:
    """A deployed company portal: estimates made the way people make them (a sales deal
    moved to «Оценить», its child made by sync), contractors typed or picked on them."""

    def __init__(self, box: Sandbox, state: Path) -> None:
        self.box, self.state = box, state
        ids = cats(box)
        self.sales, self.log = ids["Продажи: Услуга под ключ"], ids["Логистика"]
        field = box.call(
            "crm.deal.userfield.list", {"filter": {"FIELD_NAME": "UF_CRM_CONTRACTOR_RATING"}}
        )
        self.rating = {int(v["XML_ID"][-1]): v["ID"] for v in field[0]["LIST"]}

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

    def parent(self, title: str) -> int:
        fields = {"TITLE": title, "CATEGORY_ID": self.sales, "STAGE_ID": f"C{self.sales}:ESTIMATE"}
        return int(self.box.call("crm.deal.add", {"fields": fields}))

    def child_of(self, parent: int) -> int:
        rows = self.box.call(
            "crm.deal.list",
            {"filter": {"CATEGORY_ID": self.log, "UF_CRM_PARENT_DEAL": f"D_{parent}"}},
        )
        assert len(rows) == 1, rows
        return int(rows[0]["ID"])

    def estimates(self, *titles: str) -> list[int]:
        """Parents at «Оценить», and one sync pass that makes their estimates."""
        parents = [self.parent(t) for t in titles]
        self.sync()
        return [self.child_of(p) for p in parents]

    def record(self, estimate: int, **fields: Any) -> None:
        if "rating" in fields:
            fields["UF_CRM_CONTRACTOR_RATING"] = self.rating[fields.pop("rating")]
        names = {
            "name": "UF_CRM_NEW_CONTRACTOR_NAME",
            "phone": "UF_CRM_NEW_CONTRACTOR_PHONE",
            "price": "UF_CRM_CONTRACTOR_PRICE",
            "date": "BEGINDATE",
            "own": "UF_CRM_OWN_VEHICLES",
        }
        fields = {names.get(k, k): v for k, v in fields.items()}
        self.box.call("crm.deal.update", {"id": estimate, "fields": fields})

    def stage(self, estimate: int, code: str) -> None:
        self.box.call(
            "crm.deal.update", {"id": estimate, "fields": {"STAGE_ID": f"C{self.log}:{code}"}}
        )

    def entries(self) -> list[dict[str, Any]]:
        return self.box.call(
            "crm.item.list",
            {"entityTypeId": ETID, "useOriginalUfNames": "Y", "select": ["*", "UF_*"]},
        )["items"]

    def entry(self, title: str, phone: str, **uf: Any) -> int:
        fields = {"title": title, f"UF_CRM_{TYPE}_PHONE": phone}
        fields |= {f"UF_CRM_{TYPE}_{k}": v for k, v in uf.items()}
        item = self.box.call(
            "crm.item.add", {"entityTypeId": ETID, "useOriginalUfNames": "Y", "fields": fields}
        )
        return int(item["item"]["id"])

    def linked(self, estimate: int) -> tuple[str | None, str | None]:
        deal = self.box.call("crm.deal.get", {"id": estimate})
        return deal.get("UF_CRM_CONTRACTOR"), deal.get(f"PARENT_ID_{ETID}")


def stats(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        item[f"UF_CRM_{TYPE}_{k}"] for k in ("TIMES_USED", "LAST_PRICE", "AVERAGE_RATING")
    ) + (str(item[f"UF_CRM_{TYPE}_LAST_USED"] or "")[:10],)


def test_phones_compare_normalised() -> None:
    assert phone_keys("8 (999) 123-45-67") == phone_keys("+79991234567") == ["79991234567"]
    assert phone_keys("+7 999 123 45 67, 8-495-111-22-33") == ["79991234567", "74951112233"]
    assert phone_keys("") == [] and phone_keys("нет") == []


# ------------------------------------------------------------------- sync --once
def test_a_typed_contractor_becomes_one_entry_found_again_by_phone(tmp_path: Path) -> None:
    co = Company(deployed(COMPANY), tmp_path)
    first, second = co.estimates("Трал Тверь", "Трал Клин")
    co.record(
        first, name="ИП Петров", phone="8 (999) 123-45-67", price=40000, rating=5, date="2024-03-01"
    )
    result = co.sync()
    [entry] = co.entries()
    assert (entry["title"], entry[f"UF_CRM_{TYPE}_PHONE"]) == ("ИП Петров", "+79991234567")
    assert entry["xmlId"] == "b24kit-directory:contractors:79991234567", "found again by it"
    assert co.linked(first) == (f"T406_{entry['id']}", str(entry["id"])), "field and relation"
    assert stats(entry) == (1, 40000.0, 5.0, "2024-03-01"), "made with its stats"
    assert [f.rule for f in result.findings] == ["D004"]
    # the same contractor typed in another form on a later estimate, rated lower
    co.record(second, name="Петров", phone="+79991234567", price=45000, rating=3, date="2024-04-10")
    co.sync()
    [entry] = co.entries()
    assert co.linked(second) == (f"T406_{entry['id']}", str(entry["id"])), "found by phone"
    assert stats(entry) == (2, 45000.0, 4.0, "2024-04-10"), "times used, last price, average"
    # an older estimate edited later is not the last price: the latest by date is
    co.record(first, price=39000)
    co.sync()
    assert stats(co.entries()[0]) == (2, 45000.0, 4.0, "2024-04-10")
    quiet = co.sync()
    assert quiet.outcomes == [], "a second pass writes nothing"
    assert co.audit().findings == [], "what sync leaves, audit finds clean"


def test_own_vehicles_need_no_contractor_and_a_quiet_pass_costs_one_request(
    tmp_path: Path,
) -> None:
    co = Company(deployed(COMPANY), tmp_path)
    [estimate] = co.estimates("Своими силами")
    co.record(estimate, own=1, price=15000)
    co.stage(estimate, "APPROVAL")
    co.sync()
    assert co.entries() == [] and co.audit().findings == [], "own vehicles: no entry needed"
    quiet = co.sync()
    # the time, the structure, a read or two per link (links/run.py), the directory's one
    assert quiet.outcomes == [] and quiet.requests <= 5 + 2 * len(BP.links), (
        "the directory's part: one request"
    )


def test_a_hand_made_duplicate_is_merged_into_the_older_never_deleted(tmp_path: Path) -> None:
    co = Company(deployed(COMPANY), tmp_path)
    a, b = co.estimates("Кран 1", "Кран 2")
    older = co.entry("ООО Кран", "+7 999 555-44-33", TIMES_USED=0)
    co.record(a, UF_CRM_CONTRACTOR=f"T406_{older}", price=1000, rating=4, date="2024-01-01")
    newer = co.entry("Кран ООО", "8 999 555 44 33")  # a person added it again
    co.record(b, UF_CRM_CONTRACTOR=f"T406_{newer}", price=2000, rating=2, date="2024-02-01")
    co.sync()
    items = {int(e["id"]): e for e in co.entries()}
    assert set(items) == {older, newer}, "nothing deleted"
    assert items[newer]["stageId"] == "DT1030_1:FAIL"
    assert f"[b24kit] дубликат #{older}" in items[newer][f"UF_CRM_{TYPE}_NOTES"]
    assert co.linked(b) == (f"T406_{older}", str(older)), "its estimate moved to the older"
    assert stats(items[older]) == (2, 2000.0, 3.0, "2024-02-01")
    assert stats(items[newer])[0] == 0
    assert co.sync().outcomes == [] and co.audit().findings == []


# ------------------------------------------------------------------------ audit
def seed_every_rule(co: Company) -> dict[str, int]:
    """One finding of each rule, next to a consistent estimate and entry."""
    good, d001, d003, d004 = co.estimates("Хорошая", "Без подрядчика", "Устарело", "Вписан")
    co.stage(good, "APPROVAL")
    co.stage(d001, "APPROVAL")  # D001: at «Согласование», no contractor, no price
    co.sync()  # their parents move to «Оценка готова»: the links are consistent
    keeper = co.entry(
        "ИП Сидоров",
        "+79990001122",
        TIMES_USED=1,
        LAST_PRICE=500,
        AVERAGE_RATING=5,
        LAST_USED="2024-05-05",
    )
    co.record(
        good,
        UF_CRM_CONTRACTOR=f"T406_{keeper}",
        **{f"PARENT_ID_{ETID}": keeper},
        price=500,
        rating=5,
        date="2024-05-05",
    )
    stale = co.entry("ООО Устаревшее", "+79990003344", TIMES_USED=7)  # D003
    co.record(
        d003,
        UF_CRM_CONTRACTOR=f"T406_{stale}",
        **{f"PARENT_ID_{ETID}": stale},
        price=800,
        date="2024-06-01",
    )
    co.entry("Сидоров ИП", "8 (999) 000-11-22", TIMES_USED=0)  # D002: the keeper's phone
    co.record(d004, name="ООО Новый", phone="8 912 000 00 01", price=900)  # D004
    return {"D001": d001, "D003": stale, "D004": d004}


def test_audit_finds_each_rule_exactly_and_fix_converges(tmp_path: Path) -> None:
    co = Company(deployed(COMPANY), tmp_path / "state")
    seeded = seed_every_rule(co)
    found = co.audit()
    assert found.counts() == {"D001": 1, "D002": 1, "D003": 1, "D004": 1}, found.counts()
    by_rule = {f.rule: f for f in found.findings}
    assert by_rule["D001"].deals == [seeded["D001"]] and by_rule["D001"].severity == "error"
    assert by_rule["D001"].seen == "no contractor (nor in house), no price"
    assert by_rule["D003"].items == [seeded["D003"]] and by_rule["D003"].repair
    assert by_rule["D001"].repair == [], "an error a person must fix"
    server = start_in_thread(co.box)
    url = co.box.webhook_url(server.base_url)

    def audit(*args: str) -> tuple[int, Any, dict[str, Any]]:
        out = tmp_path / "audit.json"
        result = run_cli(
            "audit", "-b", str(COMPANY), "--portal", url, "-f", "json", "-o", str(out), *args,
            cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path)}, clock=FakeClock(),
        )  # fmt: skip
        return result.returncode, result, json.loads(out.read_text(encoding="utf-8"))

    try:
        fixed = audit("--fix", "--yes")
        again = audit("--fix", "--yes")
        code, _, data = audit()
    finally:
        server.stop()
    assert fixed[0] == 1, "D001 stays: an error, not repairable"
    assert fixed[2]["counts"] == {"D001": 1}, fixed
    assert "3 safe repair(s)" in fixed[1].stderr, "the repairs beside the question"
    assert "6 repair write(s) done" in fixed[1].stdout, fixed[1].stdout
    assert again[2]["counts"] == {"D001": 1}
    assert "0 repair write(s) done" in again[1].stdout, "converged"
    assert code == 1
    finding = data["findings"][0]
    assert (finding["rule"], finding["name"], finding["severity"]) == (
        "D001",
        "estimate-without-contractor",
        "error",
    )
    assert finding["deals"][0]["url"].endswith(f"/crm/deal/details/{seeded['D001']}/")
    assert len(co.entries()) == 4, "three seeded entries and the typed one; nothing deleted"


def test_a_consistent_portal_is_clean(tmp_path: Path) -> None:
    co = Company(deployed(COMPANY), tmp_path)
    [estimate] = co.estimates("Чисто")
    co.record(estimate, name="ООО Чисто", phone="+79995550000", price=100, rating=4)
    co.stage(estimate, "APPROVAL")
    co.sync()
    assert co.audit().findings == []


def test_a_migrated_estimate_without_contractor_is_history_not_an_error(tmp_path: Path) -> None:
    """D001 is the logisticians' rule; an estimate a migration made at «Согласование»
    with no contractor lacks what its sheet lacked: D005, info (so audit after a
    migration has no error it caused), while the same estimate made on the portal is
    D001."""
    co = Company(deployed(COMPANY), tmp_path)
    migrated, made_here = co.estimates("Из таблицы", "На портале")
    co.box.call(
        "crm.deal.update",
        {
            "id": migrated,
            "fields": {"ORIGINATOR_ID": "legacy-projects", "ORIGIN_ID": "row:7:estimate"},
        },
    )
    co.stage(migrated, "APPROVAL")
    co.stage(made_here, "APPROVAL")
    found = {(f.rule, tuple(f.deals)) for f in co.audit().findings if f.rule.startswith("D")}
    assert found == {("D005", (migrated,)), ("D001", (made_here,))}
    from b24kit.links.audit import RULES

    assert RULES["D005"][1] == "info" and RULES["D001"][1] == "error"


def test_a_contractor_a_person_removed_stays_removed(tmp_path: Path) -> None:
    """A reviewer's find: clearing the contractor on the form left the relation, and the
    next pass wrote the field back (and the typed name and phone would relink it): the
    estimate could not be switched to own vehicles. The field, what the form shows, wins."""
    co = Company(deployed(COMPANY), tmp_path)
    [estimate] = co.estimates("Передумали")
    co.record(estimate, name="Вася", phone="8 (999) 123-45-67", price=500)
    co.sync()
    deal = co.box.call("crm.deal.get", {"id": estimate})
    assert deal["UF_CRM_CONTRACTOR"], "filed and linked"
    co.box.call(
        "crm.deal.update",
        {"id": estimate, "fields": {"UF_CRM_CONTRACTOR": "", "UF_CRM_OWN_VEHICLES": "Y"}},
    )
    co.sync()
    deal = co.box.call("crm.deal.get", {"id": estimate})
    assert not deal["UF_CRM_CONTRACTOR"], "never written back"
    assert str(deal[f"PARENT_ID_{ETID}"] or "0") == "0", "the relation follows the field"
    [entry] = co.entries()
    assert entry[f"UF_CRM_{TYPE}_TIMES_USED"] in (0, "0", None), "no longer counted"
    assert co.sync().outcomes == [], "and it stays so"
    assert [f.rule for f in co.audit().findings if f.rule.startswith("D")] == []


# ------------------------------------------------------------------ served, raced
def _served(co: Company) -> None:
    """Drive the same story through the event endpoint (sync --serve's)."""
    sync_served(co.box, BP, co.state, TOKEN, _story(co))


def _story(co: Company) -> Any:
    """Two estimates of one contractor typed two ways, and a hand-made duplicate; yields
    the deal each step touched (the event's deal)."""
    parents = [co.parent("Первый"), co.parent("Второй")]
    yield parents[0]
    yield parents[1]
    first, second = (co.child_of(p) for p in parents)
    co.record(
        first, name="ИП Орлов", phone="8 (916) 111-22-33", price=700, rating=5, date="2024-02-02"
    )
    yield first
    co.record(second, name="Орлов", phone="+79161112233", price=650, rating=4, date="2024-03-03")
    yield second


def _outcome(co: Company) -> Any:
    deals = co.box.call(
        "crm.deal.list",
        {"filter": {"CATEGORY_ID": co.log}, "select": ["TITLE", "UF_CRM_CONTRACTOR"]},
    )
    return (
        sorted((e["title"], e[f"UF_CRM_{TYPE}_PHONE"], stats(e)) for e in co.entries()),
        sorted((d["TITLE"], d["UF_CRM_CONTRACTOR"]) for d in deals),
    )


def test_sync_serve_and_sync_once_give_the_same_directory(tmp_path: Path) -> None:
    served = Company(deployed(COMPANY), tmp_path / "served")
    _served(served)
    once = Company(deployed(COMPANY), tmp_path / "once")
    for _ in _story(once):
        once.sync()
    assert _outcome(served) == _outcome(once)
    entries, _ = _outcome(once)
    assert entries == [("ИП Орлов", "+79161112233", (2, 650.0, 4.5, "2024-03-03"))]


def test_racing_passes_make_one_entry_the_lock_serialises_them(tmp_path: Path) -> None:
    co = Company(deployed(COMPANY), tmp_path)
    a, b = co.estimates("Гонка 1", "Гонка 2")
    co.sync()  # the mark is set: the next passes read what changed
    co.record(a, name="ООО Гонка", phone="8 (903) 777-00-11", price=10)
    co.record(b, name="Гонка", phone="+79037770011", price=20)
    co.box.config.latency_ms = 20
    waited: list[str] = []

    async def race() -> list[Any]:
        with client_for(co.box) as one, client_for(co.box) as two:
            return list(
                await asyncio.gather(
                    sync_once(one, BP, tmp_path, on_wait=waited.append),
                    sync_once(two, BP, tmp_path, on_wait=waited.append),
                )
            )

    results = asyncio.run(race())
    assert len(waited) == 1, "the second pass waited for the first (the portal's run lock)"
    assert [sum(o.method == "crm.item.add" for o in r.outcomes) for r in results] in (
        [1, 0],
        [0, 1],
    )
    [entry] = co.entries()
    assert co.linked(a)[0] == co.linked(b)[0] == f"T406_{entry['id']}"


# ------------------------------------------------------------------- blueprint
DIRECTORY = COMPANY.read_text(encoding="utf-8").split("directories:\n", 1)[1]


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            "smart_process: contractors ",
            "smart_process: contractor ",
            "no smart process 'contractor'",
        ),
        ("link: estimate ", "link: estimates ", "no link 'estimates'"),
        (
            "price: CONTRACTOR_PRICE",
            "price: CONTRACTOR_COST",
            "record.price: no field 'CONTRACTOR_COST'",
        ),
        ("in_house: OWN_VEHICLES", "in_house: CONTRACTOR_NOTES", "must be of type boolean"),
        (
            "times_used: TIMES_USED",
            "times_used: USED",
            "entry.times_used (smart process 'contractors'): no field 'USED'",
        ),
        ("required_from: APPROVAL", "required_from: СОГЛАСОВАНИЕ", "has no stage 'СОГЛАСОВАНИЕ'"),
        (
            "duplicate_stage: FAIL",
            "duplicate_stage: LOSE",
            "pipeline 'contractors_main' has no stage 'LOSE'",
        ),
    ],
)
def test_every_name_the_directory_gives_is_checked(
    tmp_path: Path, old: str, new: str, reason: str
) -> None:
    text = COMPANY.read_text(encoding="utf-8")
    assert old in DIRECTORY, old
    broken = text.replace(old, new)
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "fields.yaml").write_text(
        (COMPANY.parent / "common" / "fields.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "b.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(BlueprintError) as info:
        load_blueprint(tmp_path / "b.yaml")
    [issue] = info.value.issues
    line = next(n for n, ln in enumerate(broken.splitlines(), 1) if new in ln)
    assert reason in issue.message and issue.mark.line == line, (str(issue), line)


def test_stats_by_hand() -> None:
    from b24kit.links.directory import Record

    def rec(i: int, date: str, price: float | None, rating: float | None) -> Record:
        return Record(i, "", 1, 1, False, price, rating, date, "", "")

    got = stats_of(
        [
            rec(1, "2024-05-01", 300, None),
            rec(2, "2024-02-01", 100, 4),
            rec(3, "2024-05-01", None, 3),
        ]
    )
    assert got == {
        "times_used": 3,
        "last_price": 300,
        "average_rating": 3.5,
        "last_used": "2024-05-01",
    }
    assert stats_of([]) == {
        "times_used": 0,
        "last_price": None,
        "average_rating": None,
        "last_used": None,
    }
