"""A new in-memory sandbox's database is a copy of one new portal made once per process,
and new databases share nothing; a new file is in WAL mode with the planner's statistics,
and a file that holds a portal, or one another process has just made, is opened, never
overwritten."""

from __future__ import annotations

import json
from pathlib import Path

from b24kit.sandbox import Sandbox
from b24kit.sandbox.db import Database, dump_bytes, dumps, loads

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


def test_what_orjson_refuses_is_stored_and_read_as_the_json_module_does() -> None:
    """The sandbox's JSON is orjson's; an integer past 64 bits and a key that is not text
    are written, and read back, by the json module instead, as before (orjson would read
    the integer back as a float). NaN is stored as null: no JSON holds it (SQLite refused
    the record the json module wrote, and PHP's json_encode refuses NaN too)."""
    assert dumps({"x": float("nan")}) == '{"x":null}'
    for value in [{"big": 10**30}, {1: "a", "b": [1, 2]}]:
        want = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        assert dumps(value) == " " + want
        assert dump_bytes(value) == want.encode("utf-8")
        assert json.dumps(loads(dumps(value))) == json.dumps(json.loads(want))
    plain = {"TITLE": "Сделка «Ромашка»\n", "OPPORTUNITY": 125000.5, "IDS": [1, None, True]}
    assert dumps(plain) == json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    assert loads(dumps(plain)) == plain


def test_a_record_with_a_big_integer_keeps_it() -> None:
    db = Database()
    db.execute("INSERT INTO users(id, data) VALUES(7, ?)", (dumps({"N": 10**30, "S": "x"}),))
    row = db.one("SELECT data, json_extract(data, '$.S') AS s FROM users WHERE id = 7")
    assert loads(row["data"]) == {"N": 10**30, "S": "x"} and row["s"] == "x"


def test_a_file_another_connection_just_made_keeps_what_it_wrote(tmp_path: Path) -> None:
    """Two processes may open a new file at once: the second open adds what is missing of
    the schema and replaces nothing (a copy of an empty portal would replace it all)."""
    path = tmp_path / "p.sqlite"
    first = Database(path)
    first.set_meta("k", "first")
    second = Database(path)
    try:
        assert second.get_meta("k") == "first"
        assert first.get_meta("k") == "first"
    finally:
        first.close()
        second.close()


def _tables(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table but the webhook's (its token differs per portal)."""
    names = [
        r[0]
        for r in db.all("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if r[0] not in ("webhooks", "sqlite_stat1")
    ]
    out = {n: sorted(tuple(r) for r in db.all(f'SELECT * FROM "{n}"')) for n in names}
    out["meta"] = [r for r in out["meta"] if r[0] != "webhook_token"]
    return out


def test_a_new_portal_is_what_its_settings_would_build_from_scratch() -> None:
    """A new in-memory sandbox starts as a copy of one portal made once per process
    (sandbox/portal.py new_portal_db); under every language and reading it holds what
    that sandbox's own settings make from an empty schema: a setting that comes to shape
    the new portal must not be lost in the copy."""
    from datetime import UTC

    from b24kit.sandbox.portal import Portal
    from b24kit.sandbox.readings import READINGS

    for language in ("en", "ru"):
        for readings in ([], sorted(READINGS)):
            box = Sandbox(limits="off", language=language, readings=readings)
            scratch = Database()  # an empty schema, no template
            Portal(scratch, UTC, box.clock, frozenset(readings), language)
            try:
                assert _tables(box.db) == _tables(scratch), (language, readings)
            finally:
                box.close()
                scratch.close()
