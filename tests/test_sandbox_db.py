"""A new sandbox database is a copy of one empty portal made once per process: a new file
is still in WAL mode with the planner's statistics, new databases share nothing, and a
file that holds a portal is opened, never overwritten."""

from __future__ import annotations

from pathlib import Path

from b24kit.sandbox import Sandbox
from b24kit.sandbox.db import Database

LOOKUP = (
    "EXPLAIN QUERY PLAN SELECT id FROM items WHERE entity_type_id = 2 "
    "AND json_extract(data, '$.\"ORIGIN_ID\"') = 'x'"
)


def test_a_new_file_is_wal_and_knows_its_indexes(tmp_path: Path) -> None:
    db = Database(tmp_path / "p.sqlite")
    try:
        assert db.one("PRAGMA journal_mode")[0] == "wal"
        assert "items_origin_id" in str(db.one(LOOKUP)["detail"])
        assert db.one("SELECT count(*) FROM sqlite_stat1")[0] > 0
    finally:
        db.close()
    assert (tmp_path / "p.sqlite").stat().st_mode & 0o777 == 0o600


def test_new_databases_share_nothing() -> None:
    first, second = Database(), Database()
    first.set_meta("k", "first")
    assert second.get_meta("k") is None
    assert Database().get_meta("k") is None


def test_a_file_holding_a_portal_is_opened_not_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "p.sqlite")
    box = Sandbox(db=path, limits="off")
    deal = box.call("crm.deal.add", {"fields": {"TITLE": "Сделка"}})
    token = box.token
    box.db.close()
    again = Sandbox(db=path, limits="off")
    assert again.token == token
    assert again.call("crm.deal.get", {"id": deal})["TITLE"] == "Сделка"
