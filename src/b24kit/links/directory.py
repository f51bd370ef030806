"""A directory that fills itself (pilot 2): a smart process whose entries (contractors)
the children of a link (estimates) record, kept by sync and checked by audit.

- A record with a name and phone typed by hand and no entry is linked to the entry with
  that phone (compared normalised: ``8 (999) 123-45-67`` is ``+79991234567``), made if
  there is none. Linked means both: the record's entry field (``T{etid hex}_{id}``) and
  the smart process relation (``PARENT_ID_{etid}``), as migrate ties them; when they
  disagree, the field (what the form shows) wins.
- Entries sharing a phone are one: the newer (higher id) is a duplicate of the older.
  Its records move to the older; it is moved to the duplicate stage with "дубликат #id"
  in its notes, never deleted (a wrong match can be undone by hand; a delete cannot).
- Each entry's times used, last price, average rating and last used are computed from
  its records and written only when they differ.

Sync reads only what changed since its last pass (one request when nothing did); audit
reads everything. Both judge with the same functions, so what sync leaves, audit finds
clean."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from b24kit.blueprint.locate import deal_pipeline, stage_id
from b24kit.blueprint.model import Blueprint, Directory
from b24kit.client import B24Client, Command, Executor, Outcome, Ref, read_all
from b24kit.errors import InputError
from b24kit.links.children import as_ref_text
from b24kit.links.directory_rules import DirectoryFinding
from b24kit.migrate.clients import identifier
from b24kit.migrate.parsers import ParseError, parse_phones
from b24kit.portal import commands as cmd
from b24kit.portal.ids import LINKS_ORIGINATOR, item_ref, parent_field, spa_uf_prefix, uf_name
from b24kit.portal.snapshot import PipelineSnap, Snapshot, read_snapshot

DUPLICATE = re.compile(r"\[b24kit\] дубликат #(\d+)")
ORIGINATOR = "b24kit-directory"
STATS = ("times_used", "last_price", "average_rating", "last_used")
SYSTEM_DATES = {"BEGINDATE", "CLOSEDATE", "DATE_CREATE", "DATE_MODIFY"}


def phone_keys(text: str | None) -> list[str]:
    """The keys a phone cell is compared by: each number's digits in E.164 (``8 (999)
    123-45-67`` and ``+7 999 123 45 67`` -> ``79991234567``); none for no number."""
    if not text or not str(text).strip():
        return []
    try:
        return [identifier(p) for p in parse_phones(str(text)).value]
    except ParseError:
        return []


def score(text: str) -> float | None:
    """A rating's number: the first number in its text (``5 — отлично`` -> 5)."""
    found = re.search(r"\d+(?:[.,]\d+)?", text)
    return float(found.group().replace(",", ".")) if found else None


def number(value: Any) -> float | None:
    """A number field as read: 12.5, "12.50", "12.5|RUB" (money); None when empty."""
    if isinstance(value, list):
        value = value[0] if value else None
    text = str(value if value is not None else "").split("|")[0].strip()
    try:
        return float(text) if text else None
    except ValueError:
        return None


# --------------------------------------------------------------------- resolved
@dataclass
class ResolvedDirectory:
    """A directory on this portal: its smart process, the feeding link's child pipeline
    and the names of the fields it reads and writes."""

    d: Directory
    etid: int
    child: PipelineSnap
    record: dict[str, str]  # record key -> deal field name
    entry: dict[str, str]  # entry key -> smart process field (UF_CRM_{type id}_CODE)
    duplicate_stage: str
    required: set[str]  # child STATUS_IDs from which an entry and a price are required
    ratings: dict[str, float] = field(default_factory=dict)  # enum item id -> score

    @property
    def relation(self) -> str:
        return parent_field(self.etid)

    def ref(self, item: Any) -> Any:
        return as_ref_text(item, item_ref(self.etid, "{}"))

    def deal_select(self) -> list[str]:
        return sorted({"ID", "STAGE_ID", "ORIGINATOR_ID", self.relation, *self.record.values()})

    def item_select(self) -> list[str]:
        return sorted({"id", "title", "stageId", "updatedTime", *self.entry.values()})


def _record_fields(d: Directory) -> dict[str, str]:
    out = {}
    for key in ("contractor", "in_house", "price", "rating", "notes", "typed_name", "typed_phone"):
        code = getattr(d.record, key)
        if code:
            out[key] = uf_name(code)
    out["date"] = d.record.date if d.record.date in SYSTEM_DATES else uf_name(d.record.date)
    return out


def resolve_directory(bp: Blueprint, snap: Snapshot, d: Directory) -> ResolvedDirectory:
    spa = snap.spa_by_code(d.smart_process)
    if spa is None:
        raise InputError(
            f"directory {d.name!r}: smart process {d.smart_process!r} is not on the portal: "
            "apply the blueprint first"
        )
    link = next(x for x in bp.links if x.name == d.link)
    child = deal_pipeline(bp, snap, link.child.pipeline)
    pipeline = next((p for p in spa.pipelines if p.is_default), None) or spa.pipelines[0]
    prefix = spa_uf_prefix(spa.id)
    entry = {
        k: prefix + getattr(d.entry, k) for k in ("phone", "notes", *STATS) if getattr(d.entry, k)
    }
    required: set[str] = set()
    if d.required_from:
        start = next(
            s.sort for s in child.stages if s.status_id == stage_id(child, d.required_from)
        )
        # open records only: a closed one (accepted or refused) is history no one reopens
        required = {
            s.status_id for s in child.stages if s.sort >= start and s.semantics == "process"
        }
    out = ResolvedDirectory(
        d,
        spa.entity_type_id,
        child,
        _record_fields(d),
        entry,
        stage_id(pipeline, d.duplicate_stage),
        required,
    )
    rating = out.record.get("rating")
    for f in snap.deal_fields:
        if f.name == rating:
            out.ratings = {
                str(v.id): s for v in f.values if (s := score(v.value) or score(v.xml_id))
            }
    return out


def chosen(bp: Blueprint, names: Iterable[str] | None) -> list[Directory]:
    """The directories fed by the links named (every one without names)."""
    wanted = set(names or [])
    return [d for d in bp.directories if not wanted or d.link in wanted]


# ------------------------------------------------------------------------ data
@dataclass
class Entry:
    id: int
    title: str
    phone: str
    notes: str
    stage: str
    updated: str
    stats: dict[str, Any]  # stat key -> the value as read

    @property
    def keys(self) -> list[str]:
        return phone_keys(self.phone)

    @property
    def marked_duplicate_of(self) -> int | None:
        found = DUPLICATE.search(self.notes)
        return int(found.group(1)) if found else None


@dataclass
class Record:
    id: int
    stage: str
    field_ref: int | None  # the entry the record's entry field names
    relation: int | None  # the entry of the smart process relation
    in_house: bool
    price: float | None
    rating: float | None
    date: str
    typed_name: str
    typed_phone: str
    # made by a migration from a legacy sheet (ORIGINATOR_ID), not by sync or a person
    migrated: bool = False

    @property
    def entry(self) -> int | None:
        return self.field_ref if self.field_ref is not None else self.relation


def to_entry(row: dict[str, Any], r: ResolvedDirectory) -> Entry:
    def get(key: str) -> Any:
        return row.get(r.entry[key]) if key in r.entry else None

    return Entry(
        int(row["id"]),
        str(row.get("title") or ""),
        str(get("phone") or ""),
        str(get("notes") or ""),
        str(row.get("stageId") or ""),
        str(row.get("updatedTime") or ""),
        {k: get(k) for k in STATS if k in r.entry},
    )


def _item_id(value: Any, etid: int) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    found = re.fullmatch(rf"T{etid:x}_(\d+)", str(value or "").strip(), re.IGNORECASE)
    return int(found.group(1)) if found else None


def to_record(row: dict[str, Any], r: ResolvedDirectory) -> Record:
    def get(key: str) -> Any:
        return row.get(r.record[key]) if key in r.record else None

    relation = str(row.get(r.relation) or "0")
    rating = get("rating")
    return Record(
        int(row["ID"]),
        str(row.get("STAGE_ID") or ""),
        _item_id(get("contractor"), r.etid),
        int(relation) if relation.isdigit() and relation != "0" else None,
        str(get("in_house") or "").strip().upper() in ("1", "Y", "TRUE"),
        number(get("price")),
        r.ratings.get(str(rating)) if rating not in (None, "") else None,
        str(get("date") or "")[:10],
        str(get("typed_name") or "").strip(),
        str(get("typed_phone") or "").strip(),
        str(row.get("ORIGINATOR_ID") or "") not in ("", LINKS_ORIGINATOR),
    )


# ------------------------------------------------------------------------ judge
def stats_of(records: list[Record]) -> dict[str, Any]:
    """Times used (records linked), last price (the latest priced record by date, then
    id), average rating (over rated records, 2 decimals), last used (the latest date)."""
    ordered = sorted(records, key=lambda x: (x.date, x.id))
    priced = [x.price for x in ordered if x.price is not None]
    rated = [x.rating for x in records if x.rating is not None]
    dates = [x.date for x in records if x.date]
    return {
        "times_used": len(records),
        "last_price": round(priced[-1], 2) if priced else None,
        "average_rating": round(statistics.fmean(rated), 2) if rated else None,
        "last_used": max(dates) if dates else None,
    }


def same_stat(key: str, have: Any, want: Any) -> bool:
    if key == "last_used":
        return str(have or "")[:10] == (want or "")
    got = number(have)
    if got is None or want is None:
        return got is None and want is None
    return round(got, 2) == round(float(want), 2)


def written(key: str, value: Any) -> Any:
    """A stat as written: "" clears a field."""
    if value is None:
        return ""
    return int(value) if key == "times_used" else value


def duplicates(entries: dict[int, Entry]) -> dict[int, int]:
    """Duplicate id -> the entry it is a duplicate of: entries sharing a phone (directly or
    through others) are one, the oldest (lowest id) kept; an entry already marked stays a
    duplicate of the entry its mark names, while that one exists."""
    out: dict[int, int] = {}
    root: dict[int, int] = {}

    def find(x: int) -> int:
        while root.get(x, x) != x:
            x = root[x]
        return x

    owner: dict[str, int] = {}
    for e in sorted(entries.values(), key=lambda x: x.id):
        mark = e.marked_duplicate_of
        if mark is not None and mark in entries and mark != e.id:
            out[e.id] = mark
            continue
        for key in e.keys:
            if key in owner:
                a, b = find(owner[key]), find(e.id)
                if a != b:
                    root[max(a, b)] = min(a, b)
            else:
                owner[key] = e.id
    for e in entries.values():
        if e.id not in out and find(e.id) != e.id:
            out[e.id] = find(e.id)
    for dup, keeper in list(out.items()):  # a mark naming a duplicate: follow it
        seen = {dup}
        while keeper in out and keeper not in seen:
            seen.add(keeper)
            keeper = out[keeper]
        out[dup] = keeper
    return out


@dataclass
class Judgement:
    """What a directory's records and entries call for."""

    dups: dict[int, int]  # duplicate -> kept entry
    typed: dict[int, int | str]  # record -> entry found by phone, or the new entry's key
    new: dict[str, tuple[str, str]]  # new entry key -> (title, phone as written)
    links: dict[int, int | str]  # record -> the entry it ends linked to (after merging)
    missing: dict[int, list[str]]  # record -> what D001 says it lacks
    # records whose entry field a person cleared (or set in_house) while the relation
    # stays: the field (what the form shows) wins, the relation is cleared, never restored
    unlink: set[int] = field(default_factory=set)


def judge(
    r: ResolvedDirectory,
    entries: dict[int, Entry],
    records: dict[int, Record],
    prev: dict[int, int] | None = None,
) -> Judgement:
    """What the records and entries call for. ``prev``: the links the last pass left
    (record -> entry): a record linked then whose entry field is empty now was unlinked
    by a person."""
    prev = prev or {}
    dups = duplicates(entries)
    by_phone: dict[str, int] = {}
    for e in sorted(entries.values(), key=lambda x: x.id):
        if e.id not in dups:
            for key in e.keys:
                by_phone.setdefault(key, e.id)
    out = Judgement(dups, {}, {}, {}, {})
    for rec in sorted(records.values(), key=lambda x: x.id):
        entry: int | str | None = rec.entry
        cleared = (
            "contractor" in r.record
            and rec.field_ref is None
            and rec.relation is not None
            and (rec.in_house or prev.get(rec.id) == rec.relation)
        )
        if cleared:
            out.unlink.add(rec.id)
            entry = None
        keys = phone_keys(rec.typed_phone)
        if entry is None and keys and rec.relation is None:  # typed: never linked yet
            found = next((by_phone[k] for k in keys if k in by_phone), None)
            entry = found if found is not None else keys[0]
            out.typed[rec.id] = entry
            if found is None and keys[0] not in out.new:
                title = rec.typed_name or rec.typed_phone
                out.new[keys[0]] = (title, "+" + keys[0] if keys[0].isdigit() else rec.typed_phone)
        if isinstance(entry, int) and entry in dups:
            entry = dups[entry]
        if entry is not None:
            out.links[rec.id] = entry
        if rec.stage in r.required:
            lacks = []
            if entry is None and not rec.in_house:
                lacks.append("no contractor (nor in house)")
            if not rec.price:
                lacks.append("no price")
            if lacks:
                out.missing[rec.id] = lacks
    return out


# ------------------------------------------------------------------- findings
class _Findings:
    """Findings (with their repairs, which never refer to one another: audit --fix
    replays them alone) from a judgement; ``links`` says which links stats are computed
    on (the current ones for audit, those after the pass's writes for sync)."""

    def __init__(self, r: ResolvedDirectory) -> None:
        self.r = r
        self.out: list[DirectoryFinding] = []
        self.seq = 0

    def name(self) -> str:
        self.seq += 1
        return f"d{self.seq}"

    def add(
        self,
        rule: str,
        deals: list[int],
        items: list[int],
        seen: str,
        expected: str,
        repair: list[Command],
    ) -> None:
        self.out.append(
            DirectoryFinding(
                rule, self.r.d.link, deals, seen, expected, repair, items=items, etid=self.r.etid
            )
        )

    def unlink(self, record: int) -> Command:
        return cmd.entity_update("deal", record, {self.r.relation: 0}, name=self.name())

    def link(self, record: int, entry: Any, filed: bool = False) -> Command:
        """Link a record to its entry (field and relation); ``filed``: the entry was typed
        by hand, and the typed name and phone, now in the directory, are cleared so that a
        person who later removes the contractor is not overruled by them."""
        r = self.r
        fields = {r.relation: entry}
        if "contractor" in r.record:
            fields[r.record["contractor"]] = r.ref(entry)
        if filed:
            fields.update({r.record[k]: "" for k in ("typed_name", "typed_phone") if k in r.record})
        return cmd.entity_update("deal", record, fields, name=self.name())


def findings(
    r: ResolvedDirectory,
    entries: dict[int, Entry],
    records: dict[int, Record],
    j: Judgement,
    stats_for: set[int] | None = None,
) -> list[DirectoryFinding]:
    """D001..D004 on what was read; D003 for the entries in ``stats_for`` (all: None)."""
    f = _Findings(r)
    for rec_id, lacks in sorted(j.missing.items()):
        # a migrated estimate lacks what its sheet lacked: history, said as info (D005)
        rule = "D005" if records[rec_id].migrated else "D001"
        f.add(rule, [rec_id], [], ", ".join(lacks), "a contractor (or in house) and a price", [])
    for rec in sorted(records.values(), key=lambda x: x.id):
        _not_linked(f, r, rec, j, entries)
    for dup, keeper in sorted(j.dups.items()):
        e = entries[dup]
        moved = sorted(x.id for x in records.values() if x.entry == dup)
        marked = e.marked_duplicate_of == keeper and e.stage == r.duplicate_stage
        if marked and not moved:
            continue
        repair = [f.link(x, keeper) for x in moved]
        if not marked:
            repair.append(_mark(f, r, e, keeper))
        f.add(
            "D002",
            moved,
            [dup, keeper],
            f"entry #{dup} shares a phone with #{keeper}"
            + (f"; records {moved} use it" if moved else ""),
            f"#{dup} marked a duplicate of #{keeper}, its records on #{keeper}",
            repair,
        )
    current = {
        x.id: x.entry for x in records.values() if x.entry is not None and x.id not in j.unlink
    }
    _stale(f, r, entries, records, current, stats_for)
    return f.out


def _mark(f: _Findings, r: ResolvedDirectory, e: Entry, keeper: int) -> Command:
    note = f"[b24kit] дубликат #{keeper}"
    notes = (
        DUPLICATE.sub(note, e.notes)
        if DUPLICATE.search(e.notes)
        else (f"{e.notes}\n{note}" if e.notes else note)
    )
    return cmd.item_update(
        r.etid,
        e.id,
        {"stageId": r.duplicate_stage, r.entry["notes"]: notes},
        name=f.name(),
        original_names=True,
    )


def _not_linked(
    f: _Findings, r: ResolvedDirectory, rec: Record, j: Judgement, entries: dict[int, Entry]
) -> None:
    """D004: a typed entry to file, or the entry field and the relation disagreeing."""
    if rec.id in j.typed:
        entry = j.typed[rec.id]
        if isinstance(entry, int):
            repair = [f.link(rec.id, entry, filed=True)]
            expected = f"linked to #{entry} (same phone)"
        else:
            title, phone = j.new[entry]
            repair = [_new_entry(f, r, entry, title, phone, None)]  # next round links it
            expected = f"a new entry {title!r} ({phone}), linked"
        f.add(
            "D004",
            [rec.id],
            [entry] if isinstance(entry, int) else [],
            f"typed {rec.typed_name!r} {rec.typed_phone!r}, no entry",
            expected,
            repair,
        )
        return
    if rec.id in j.unlink:
        f.add(
            "D004",
            [rec.id],
            [rec.relation] if rec.relation is not None else [],
            f"entry field empty, relation #{rec.relation}",
            "no entry: the field was cleared",
            [f.unlink(rec.id)],
        )
        return
    linked = rec.entry
    wanted = "contractor" in r.record
    if linked is None or linked in j.dups or linked not in entries:
        return
    if rec.relation != linked or (wanted and rec.field_ref != linked):
        f.add(
            "D004",
            [rec.id],
            [linked],
            f"field #{rec.field_ref}, relation #{rec.relation}",
            f"both #{linked}",
            [f.link(rec.id, linked)],
        )


def _new_entry(
    f: _Findings,
    r: ResolvedDirectory,
    key: str,
    title: str,
    phone: str,
    stats: dict[str, Any] | None,
) -> Command:
    fields: dict[str, Any] = {
        "title": title,
        "xmlId": f"{ORIGINATOR}:{r.d.name}:{key}",  # found again if its answer is lost
        r.entry["phone"]: phone,
    }
    for k, v in (stats or {}).items():
        if k in r.entry:
            fields[r.entry[k]] = written(k, v)
    return cmd.item_add(r.etid, fields, name=f.name(), original_names=True)


def _stale(
    f: _Findings,
    r: ResolvedDirectory,
    entries: dict[int, Entry],
    records: dict[int, Record],
    links: dict[int, Any],
    stats_for: set[int] | None,
) -> None:
    by_entry: dict[Any, list[Record]] = {}
    for rec_id, entry in links.items():
        by_entry.setdefault(entry, []).append(records[rec_id])
    for e in sorted(entries.values(), key=lambda x: x.id):
        if stats_for is not None and e.id not in stats_for:
            continue
        want = stats_of(by_entry.get(e.id, []))
        diff = {k: v for k, v in want.items() if k in e.stats and not same_stat(k, e.stats[k], v)}
        if diff:
            shown = ", ".join(f"{k} {e.stats[k]!r}" for k in diff)
            fields = {r.entry[k]: written(k, v) for k, v in diff.items()}
            f.add(
                "D003",
                [],
                [e.id],
                shown,
                ", ".join(f"{k} {v!r}" for k, v in diff.items()),
                [cmd.item_update(r.etid, e.id, fields, name=f.name(), original_names=True)],
            )


# ------------------------------------------------------------------------ read
async def read_entries(client: B24Client, r: ResolvedDirectory) -> dict[int, Entry]:
    rows = await read_all(
        client,
        "crm.item.list",
        {"entityTypeId": r.etid, "useOriginalUfNames": "Y", "select": r.item_select()},
    )
    return {int(row["id"]): to_entry(row, r) for row in rows}


async def read_records(
    client: B24Client, r: ResolvedDirectory, flt: dict[str, Any] | None = None
) -> dict[int, Record]:
    rows = await read_all(
        client,
        "crm.deal.list",
        {"filter": {"CATEGORY_ID": r.child.id, **(flt or {})}, "select": r.deal_select()},
    )
    return {int(row["ID"]): to_record(row, r) for row in rows}


async def audit_directories(
    client: B24Client, bp: Blueprint, names: list[str] | None = None, snap: Snapshot | None = None
) -> list[DirectoryFinding]:
    """Every record and entry of each directory fed by the links named: D001..D004.
    ``snap``: the portal's structure, when the caller has read it."""
    dirs = chosen(bp, names)
    if not dirs:
        return []
    snap = snap or await read_snapshot(client)
    out: list[DirectoryFinding] = []
    for d in dirs:
        r = resolve_directory(bp, snap, d)
        entries, records = await read_entries(client, r), await read_records(client, r)
        out += findings(r, entries, records, judge(r, entries, records))
    return out


# ------------------------------------------------------------------------ sync
def _state_file(state_dir: Path, d: Directory) -> Path:
    return state_dir / f"directory-{d.name}.json"


def _relevant(row: dict[str, Any]) -> bool:
    return any(v not in (None, "", "0", 0, []) for k, v in row.items() if k != "ID")


async def _probe(
    client: B24Client, r: ResolvedDirectory, since: str, touched: list[int]
) -> tuple[bool, str]:
    """One request: whether anything the directory depends on changed since ``since``
    (a record with an entry or a typed phone, or any entry), and the portal's time."""
    select = sorted(
        {"ID", r.relation, *(r.record[k] for k in ("contractor", "typed_phone") if k in r.record)}
    )
    batch: dict[str, tuple[str, dict[str, Any]]] = {
        "now": ("server.time", {}),
        "d": (
            "crm.deal.list",
            {"filter": {"CATEGORY_ID": r.child.id, ">=DATE_MODIFY": since}, "select": select},
        ),
        "i": (
            "crm.item.list",
            {"entityTypeId": r.etid, "filter": {">=updatedTime": since}, "select": ["id"]},
        ),
    }
    if touched:
        flt = {"CATEGORY_ID": r.child.id, "@ID": touched[:50]}
        batch["dt"] = ("crm.deal.list", {"filter": flt, "select": select})
    got = await client.batch(batch, safe=True)
    if got.error:
        raise next(iter(got.error.values()))
    rows = [*(got.result.get("d") or []), *(got.result.get("dt") or [])]
    items = (got.result.get("i") or {}).get("items") or []
    more = "d" in got.next or "i" in got.next or len(touched) > 50
    return bool(items or more or any(_relevant(row) for row in rows)), str(got.result["now"])


@dataclass
class DirectoryPass:
    findings: list[DirectoryFinding]
    outcomes: list[Outcome]


async def sync_directories(
    client: B24Client,
    bp: Blueprint,
    state_dir: Path,
    names: list[str] | None = None,
    full: bool = False,
    touched: Iterable[int] = (),
    snap: Snapshot | None = None,
) -> DirectoryPass:
    """Keep each directory fed by the links named: file typed entries, merge duplicates,
    rewrite stale stats (D004, D002, D003), reading only what changed since the last pass
    (everything with ``full`` or on the first pass). A quiet pass costs one request: the
    directory's ids are kept with the pass's mark. Call it under the portal's run lock
    (links.run.sync_once does): two passes at once could both add one new entry.
    ``snap``: the portal's structure, when the caller read it in this pass."""
    out = DirectoryPass([], [])
    touched = list(touched)
    for d in chosen(bp, names):
        state = _state_file(state_dir, d)
        saved = json.loads(state.read_text(encoding="utf-8")) if state.exists() else {}
        since = None if full else saved.get("since")
        prev = {int(k): int(v) for k, v in (saved.get("links") or {}).items()}
        ids = saved.get("ids")
        if since is not None and ids:
            known = _Known(d, ids)
            changed, now = await _probe(client, known.resolved(), since, touched)
            if not changed:
                _save(state, now, known.ids, prev)
                continue
        else:
            now = str(await client.call("server.time"))
            since = None
        snap = snap or await read_snapshot(client)
        r = resolve_directory(bp, snap, d)
        links = await _sync_one(client, r, since, prev, touched, out)
        if links is not None:  # a failed command: keep the old mark, the next pass looks again
            _save(state, now, _Known.of(r), links)
    return out


async def refresh_stats(
    client: B24Client, bp: Blueprint, snap: Snapshot | None = None
) -> DirectoryPass:
    """Rewrite the entries' stats that differ from their records (audit's D003 repairs),
    and nothing else: what a migration runs after its writes, so the entries it made or
    used carry their history at once. Merging duplicates and filing typed contractors stay
    sync's (a migration's dry run does not show them). ``snap``: the portal's structure
    when the caller has it (a migration read it to plan, and writes no structure)."""
    out = DirectoryPass([], [])
    dirs = chosen(bp, None)
    if not dirs:
        return out
    snap = snap or await read_snapshot(client)
    for d in dirs:
        r = resolve_directory(bp, snap, d)
        entries, records = await read_entries(client, r), await read_records(client, r)
        found = findings(r, entries, records, judge(r, entries, records))
        stale = [f for f in found if f.rule == "D003"]
        commands = [c for f in stale for c in f.repair]
        out.findings += stale
        if commands:
            out.outcomes += await Executor(client).run(commands)
    return out


class _Known:
    """What a quiet pass needs of a resolved directory, kept with the mark."""

    def __init__(self, d: Directory, ids: dict[str, Any]) -> None:
        self.d, self.ids = d, ids

    @staticmethod
    def of(r: ResolvedDirectory) -> dict[str, Any]:
        return {"etid": r.etid, "child": r.child.id, "record": r.record}

    def resolved(self) -> ResolvedDirectory:
        child = PipelineSnap(int(self.ids["child"]), 2, "", 0, False)
        return ResolvedDirectory(
            self.d, int(self.ids["etid"]), child, self.ids["record"], {}, "", set()
        )


def _save(state: Path, now: str, ids: dict[str, Any], links: dict[int, int]) -> None:
    since = (datetime.fromisoformat(now) - timedelta(seconds=5)).isoformat()
    data = {"since": since, "ids": ids, "links": {str(k): v for k, v in sorted(links.items())}}
    state.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


async def _changed(
    client: B24Client,
    r: ResolvedDirectory,
    entries: dict[int, Entry],
    since: str,
    prev: dict[int, int],
    touched: list[int],
) -> tuple[dict[int, Record], set[int]]:
    """The records changed since ``since`` (or named by events) and every record of the
    entries they touch, before or now; and those entries (stats to check)."""
    records = await read_records(client, r, {">=DATE_MODIFY": since})
    for at in range(0, len(touched), 500):
        records |= await read_records(client, r, {"@ID": touched[at : at + 500]})
    mark = datetime.fromisoformat(since)
    affected = {
        e.id for e in entries.values() if e.updated and datetime.fromisoformat(e.updated) >= mark
    }
    affected |= {x.entry for x in records.values() if x.entry is not None}
    affected |= {prev[x] for x in records if x in prev}
    j = judge(r, entries, records)
    affected |= {v for v in j.typed.values() if isinstance(v, int)}
    for dup, keeper in j.dups.items():
        if entries[dup].marked_duplicate_of != keeper or entries[dup].stage != r.duplicate_stage:
            affected |= {dup, keeper}
    wanted = sorted(affected & set(entries))
    for at in range(0, len(wanted), 500):
        chunk = wanted[at : at + 500]
        records |= await read_records(client, r, {f"@{r.relation}": chunk})
        if "contractor" in r.record:
            refs = [item_ref(r.etid, i) for i in chunk]
            records |= await read_records(client, r, {f"@{r.record['contractor']}": refs})
    return records, set(wanted)


def _commands(
    r: ResolvedDirectory,
    entries: dict[int, Entry],
    records: dict[int, Record],
    j: Judgement,
    stats_for: set[int] | None,
) -> list[Command]:
    """The pass's writes, in one run: new entries (with their stats), records linked
    both ways (to a new entry by reference), duplicates marked, stale stats rewritten."""
    f = _Findings(r)
    out: list[Command] = []
    made: dict[str, Ref] = {}
    for key, (title, phone) in sorted(j.new.items()):
        mine = [records[x] for x, e in j.links.items() if e == key]
        command = _new_entry(f, r, key, title, phone, stats_of(mine))
        out.append(command)
        made[key] = Ref(command.name, ("item", "id"))
    for rec in sorted(records.values(), key=lambda x: x.id):
        if rec.id in j.unlink:
            out.append(f.unlink(rec.id))
            continue
        target = j.links.get(rec.id)
        if target is None or (isinstance(target, int) and target not in entries):
            continue
        value: Any = made[target] if isinstance(target, str) else target
        field_wrong = "contractor" in r.record and rec.field_ref != target
        if isinstance(target, str) or rec.relation != target or field_wrong:
            out.append(f.link(rec.id, value, filed=rec.id in j.typed))
    for dup, keeper in sorted(j.dups.items()):
        e = entries[dup]
        if e.marked_duplicate_of != keeper or e.stage != r.duplicate_stage:
            out.append(_mark(f, r, e, keeper))
    after = {x: e for x, e in j.links.items() if isinstance(e, int)}
    _stale(f, r, entries, records, after, stats_for)
    out += [c for finding in f.out for c in finding.repair]
    return out


async def _sync_one(
    client: B24Client,
    r: ResolvedDirectory,
    since: str | None,
    prev: dict[int, int],
    touched: list[int],
    out: DirectoryPass,
) -> dict[int, int] | None:
    """One directory's pass; the links to remember (record -> entry), None on a failure."""
    entries = await read_entries(client, r)
    if since is None:
        records, stats_for = await read_records(client, r), None
        prev = {}
    else:
        records, affected = await _changed(client, r, entries, since, prev, touched)
        stats_for = affected
    j = judge(r, entries, records, prev)
    out.findings += [
        f for f in findings(r, entries, records, j, stats_for) if f.rule not in ("D001", "D005")
    ]
    commands = _commands(r, entries, records, j, stats_for)
    outcomes = await Executor(client).run(commands) if commands else []
    out.outcomes += outcomes
    if any(not o.ok for o in outcomes):
        return None
    links = dict(prev)
    for rec_id in records:
        target = j.links.get(rec_id)
        if isinstance(target, int):
            links[rec_id] = target
        else:
            links.pop(rec_id, None)  # unlinked, or linked to a new entry: re-read next pass
    return links
