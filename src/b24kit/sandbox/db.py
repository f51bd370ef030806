"""SQLite storage of one sandbox portal: one connection, its transactions one thread at a time."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
    token TEXT PRIMARY KEY, user_id INTEGER NOT NULL, scopes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_apps (
    client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, application_token TEXT NOT NULL,
    scopes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_tokens (
    access_token TEXT PRIMARY KEY, refresh_token TEXT UNIQUE NOT NULL, client_id TEXT NOT NULL,
    user_id INTEGER NOT NULL, scopes TEXT NOT NULL, expires_at REAL NOT NULL,
    refresh_valid INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS categories (
    id INTEGER PRIMARY KEY, entity_type_id INTEGER NOT NULL, name TEXT NOT NULL,
    sort INTEGER NOT NULL, is_default TEXT NOT NULL, is_system TEXT NOT NULL DEFAULT 'N',
    code TEXT NOT NULL DEFAULT '', origin_id TEXT NOT NULL DEFAULT '',
    originator_id TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, status_id TEXT NOT NULL,
    name TEXT NOT NULL, name_init TEXT NOT NULL DEFAULT '', sort INTEGER NOT NULL,
    system TEXT NOT NULL DEFAULT 'N', category_id INTEGER, color TEXT,
    semantics TEXT, extra_semantics TEXT, UNIQUE(entity_id, status_id));
-- a list's statuses in order, and its first (an add's default TYPE_ID, SOURCE_ID...):
-- read, not sorted, for each add
CREATE INDEX IF NOT EXISTS statuses_order ON statuses(entity_id, sort, id);
CREATE TABLE IF NOT EXISTS types (
    id INTEGER PRIMARY KEY, entity_type_id INTEGER UNIQUE NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS relations (
    parent_etid INTEGER NOT NULL, child_etid INTEGER NOT NULL, children_list TEXT NOT NULL,
    predefined TEXT NOT NULL, PRIMARY KEY (parent_etid, child_etid));
CREATE TABLE IF NOT EXISTS userfields (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, field_name TEXT NOT NULL,
    data TEXT NOT NULL, UNIQUE(entity_id, field_name));
CREATE TABLE IF NOT EXISTS enum_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT, field_id INTEGER NOT NULL, value TEXT NOT NULL,
    sort INTEGER NOT NULL, def TEXT NOT NULL, xml_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    entity_type_id INTEGER NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (entity_type_id, id)) WITHOUT ROWID;
-- what lookups filter on (issue 15): b24kit finds a write again by ORIGINATOR_ID + ORIGIN_ID
-- (or XML_ID), reads a pipeline by CATEGORY_ID; user fields get theirs when made
-- (Database.index_field). Each is json_column()'s own expression, or SQLite cannot use it.
CREATE INDEX IF NOT EXISTS items_origin_id
    ON items(entity_type_id, json_extract(data, '$."ORIGIN_ID"'));
CREATE INDEX IF NOT EXISTS items_originator_id
    ON items(entity_type_id, json_extract(data, '$."ORIGINATOR_ID"'));
CREATE INDEX IF NOT EXISTS items_xml_id ON items(entity_type_id, json_extract(data, '$."XML_ID"'));
CREATE INDEX IF NOT EXISTS items_category_id
    ON items(entity_type_id, json_extract(data, '$."CATEGORY_ID"'));
CREATE TABLE IF NOT EXISTS multifields (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity_type_id INTEGER NOT NULL,
    element_id INTEGER NOT NULL, type_id TEXT NOT NULL, value_type TEXT NOT NULL,
    value TEXT NOT NULL, norm TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS multifields_owner ON multifields(entity_type_id, element_id);
CREATE INDEX IF NOT EXISTS multifields_norm ON multifields(type_id, norm);
CREATE TABLE IF NOT EXISTS stage_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity_type_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL, type_id INTEGER NOT NULL, category_id INTEGER,
    stage_semantic_id TEXT, stage_id TEXT, created_time TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS stage_history_owner ON stage_history(entity_type_id, owner_id);
CREATE TABLE IF NOT EXISTS timeline_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL,
    comment TEXT NOT NULL, author_id INTEGER NOT NULL, created TEXT NOT NULL);
-- an item's comments: what crm.timeline.comment.list reads (twice: the page and its count)
-- and what deleting the item takes away, each time by owner, not a scan of every comment
CREATE INDEX IF NOT EXISTS timeline_comments_owner
    ON timeline_comments(entity_type, entity_id);
"""


FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
# sqlite_stat1 rows for items (rows, rows per entity type, rows per key): see _plan_for_a_portal
ITEMS_PK = "1000000 200000 1"
ITEMS_FIELD = "1000000 200000 2"
# a field with few values: one ORIGINATOR_ID marks every record of a migration, a pipeline
# holds thousands of deals. Told so, SQLite looks a key up by ORIGIN_ID, not by these.
ITEMS_FEW_VALUES = "1000000 200000 20000"
FEW_VALUES = ("items_originator_id", "items_category_id")


def _casefold_contains(haystack: Any, needle: Any) -> int:
    if haystack is None or needle is None:
        return 0
    return int(str(needle).casefold() in str(haystack).casefold())


def _like(haystack: Any, pattern: Any) -> int:
    """MySQL-style LIKE with ``%`` and ``_``, case-insensitive for every alphabet."""
    if haystack is None or pattern is None:
        return 0
    regex = "".join(
        ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(pattern)
    )
    return int(re.fullmatch(regex, str(haystack), re.IGNORECASE | re.DOTALL) is not None)


class Database:
    """Thin wrapper: the schema, JSON helpers, sequences and transactions."""

    def __init__(self, path: str | Path = ":memory:", copy_of: Database | None = None) -> None:
        """The database at ``path``, or (``copy_of``) a new in-memory one holding a copy of
        that one: its schema, data and planner statistics come with the copy, so none of
        them is made again (a test's clone of a 10 MB portal, issue 12; a new sandbox's
        portal, sandbox/portal.py new_portal_db). A file is never made as a copy: two
        processes may make one at once, and a copy replaces the whole database, where the
        schema's IF NOT EXISTS leaves what another process wrote."""
        self._connect(":memory:" if copy_of is not None else str(path))
        if copy_of is not None:
            with copy_of._lock:  # not in the middle of another thread's transaction
                copy_of.conn.backup(self.conn)
            return
        self._make_schema()

    def _connect(self, path: str) -> None:
        self.path = path
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # it holds the webhook token and OAuth secrets: readable by its owner only
            Path(self.path).touch(mode=0o600, exist_ok=True)
            os.chmod(self.path, 0o600)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.create_function("b24_contains", 2, _casefold_contains, deterministic=True)
        self.conn.create_function("b24_like", 2, _like, deterministic=True)
        self._depth = 0
        self._lock = threading.RLock()

    def _make_schema(self) -> None:
        """The tables and indexes a portal needs, and the planner's statistics of them."""
        self.conn.executescript(SCHEMA)
        self._plan_for_a_portal()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested-safe transaction: the outermost one commits or rolls back. One thread at a
        time: the served sandbox (its server's thread) and direct calls from another thread
        (a test, a benchmark acting as people in the portal) share one connection, and two
        threads' transactions on it would interleave ("cannot start a transaction within a
        transaction")."""
        with self._lock:
            if self._depth == 0:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("COMMIT")

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def next_id(self, name: str, start: int = 1) -> int:
        """The sequence's next value (``start`` for a new one). Two statements, not one
        ``... RETURNING``: that needs SQLite 3.35, and Python 3.11 may be linked with an
        older one (3.31 on Ubuntu 20.04)."""
        row = self.one("SELECT value FROM sequences WHERE name = ?", (name,))
        value = start if row is None else int(row["value"]) + 1
        self.execute(
            "INSERT INTO sequences(name, value) VALUES(?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
        return value

    def index_field(self, name: str) -> None:
        """An index on one field of the items' JSON: a user field a lookup filters on, e.g.
        a link field, made when a lookup first filters on it (Portal.list_items). Names are
        the portal's ``UF_CRM_*`` (``A-Z0-9_`` only).

        Made on first use, not when the field is made: every index costs every write of an
        item its expression, a parse of the item's JSON, and of a portal's user fields few
        are looked up (the company blueprint's 24, two; issue 12). Partial: only the items
        that have the field, since most leave it empty. A lookup compares the field (``=``,
        ``IN``), which SQLite knows implies NOT NULL, so it still uses the index
        (tests/test_sandbox_costs.py checks the plans)."""
        if not FIELD_NAME.fullmatch(name):
            return
        index = f"items_f_{name}"
        column = f"json_extract(data, '$.\"{name}\"')"
        with self._lock:
            if self.one("SELECT 1 FROM sqlite_master WHERE name = ?", (index,)):
                return
            self.execute(
                f'CREATE INDEX "{index}" ON items(entity_type_id, {column}) '
                f"WHERE {column} IS NOT NULL"
            )
            self._plan_for_a_portal([index])

    def _plan_for_a_portal(self, indexes: list[str] | None = None) -> None:
        """Tell SQLite's planner what a portal's items look like. Without statistics it
        takes the primary key (entity type, then id: no sort for ORDER BY ID) over a field's
        index and walks every deal to find one ORIGIN_ID. The figures are a shape, not a
        count: many items per entity type, two per value of a key (ORIGIN_ID, XML_ID, a
        user field), many per originator or pipeline."""
        with self._lock:
            if indexes is None:
                if self.one("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'") is None:
                    self.execute("ANALYZE items")  # creates sqlite_stat1 (items is empty here)
                names = self.all(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'"
                )
                indexes = [str(r["name"]) for r in names]
                if self._planned(indexes):
                    return  # a file opened again: SQLite read them when it opened it
                self.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'items'")
                self.execute("INSERT INTO sqlite_stat1 VALUES('items', 'items', ?)", (ITEMS_PK,))
            for index in indexes:
                self.execute("DELETE FROM sqlite_stat1 WHERE idx = ?", (index,))
                stat = ITEMS_FEW_VALUES if index in FEW_VALUES else ITEMS_FIELD
                self.execute("INSERT INTO sqlite_stat1 VALUES('items', ?, ?)", (index, stat))
            self.execute("ANALYZE sqlite_master")  # load them

    def _planned(self, indexes: list[str]) -> bool:
        """Whether sqlite_stat1 holds just the figures _plan_for_a_portal writes for items
        (a file made before holds them: rewriting them and loading them again cost half of
        an open, issue 12)."""
        want = {("items", ITEMS_PK)} | {
            (index, ITEMS_FEW_VALUES if index in FEW_VALUES else ITEMS_FIELD) for index in indexes
        }
        have = {
            (str(r["idx"]), str(r["stat"]))
            for r in self.all("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'items'")
        }
        return have == want

    def get_meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


class DatabaseBusy(Exception):
    """Another process holds the lock of a sandbox database."""

    def __init__(self, db: str, pid: int | None, role: str) -> None:
        self.db, self.pid, self.role = db, pid, role
        who = "a sandbox server" if role == "serve" else f"another `b24kit sandbox {role}`"
        pid_text = f" (pid {pid})" if pid else ""
        advice = "stop it first" if role == "serve" else "wait for it to finish"
        super().__init__(f"{who} is using {db}{pid_text}; {advice}")


class DatabaseLock:
    """An exclusive lock on a sandbox database file: ``flock`` on ``<db>.lock``, which names
    the holder (pid and command). Whoever deletes or rewrites the files (``serve`` for its
    life, ``reset`` and ``seed`` while they run) holds it; the OS frees it when the holder
    dies. The lock file itself is never deleted: unlinking it would let two processes each
    lock a different file. ``:memory:`` needs no lock."""

    def __init__(self, db: str, role: str) -> None:
        self.db = db
        self.role = role
        self.path = Path(db + ".lock")
        self._file: Any = None

    def acquire(self) -> DatabaseLock:
        """Take the lock at once or raise :class:`DatabaseBusy`."""
        if self.db == ":memory:" or sys.platform == "win32" or self._file is not None:
            return self
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  held for the lock's life
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            pid_text, _, role = file.read().strip().partition(" ")
            file.close()
            raise DatabaseBusy(
                self.db, int(pid_text) if pid_text.isdigit() else None, role or "serve"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()} {self.role}\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is None or sys.platform == "win32":
            return
        import fcntl

        self._file.seek(0)
        self._file.truncate()
        self._file.flush()
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def __enter__(self) -> DatabaseLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# JSON, as the sandbox stores its records and writes its answers: orjson (Rust) makes and
# reads it six to eleven times faster than the json module, and the sandbox does both for
# every record of every command. Its text is json.dumps(ensure_ascii=False, compact)'s but
# for floats' exponents (1e16, not 1e+16: the same number) and NaN and infinities, which it
# writes as null (no JSON holds them: SQLite refused such a record, PHP's json_encode
# refuses them). What it refuses (an integer past 64 bits, a key that is not text) the
# json module writes, as before; such a record is stored after a space (still JSON to
# SQLite), and read back by the json module too, since orjson would read a big integer as
# a float.
def dump_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return " " + json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Any:
    if text.startswith(" "):
        return json.loads(text)
    return orjson.loads(text)
