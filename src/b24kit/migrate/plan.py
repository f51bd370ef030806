"""Rows of a legacy sheet -> validated records -> portal commands.

Reading is pure (``read_records``); planning takes what exists on the portal (one paged
scan per entity type, never a lookup per row) and returns executor commands whose keys make
a re-run update instead of create, and a run killed at any point resumable.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from b24kit.blueprint.locate import deal_pipeline, stage_id
from b24kit.blueprint.model import Blueprint, Link
from b24kit.client import B24Client, Command, Ref, read_all
from b24kit.encoding import as_list
from b24kit.errors import InputError
from b24kit.links.children import ChildLink, as_ref_text, back_fields, child_fields
from b24kit.migrate.clients import (
    Client,
    ClientRow,
    group_clients,
    identifier,
    organisation,
    person_name,
)
from b24kit.migrate.columns import named_columns
from b24kit.migrate.mapping import TEMPLATE, ChildRule, Column, Mapping, StageRule
from b24kit.migrate.parsers import (
    Enumeration,
    Parsed,
    ParseError,
    normalize_word,
    parse_date,
    parse_emails,
    parse_inn,
    parse_money,
    parse_phone_one,
    parse_phones,
    parse_yes_no,
)
from b24kit.migrate.sources import SheetRow, Table
from b24kit.portal import commands as cmd
from b24kit.portal.ids import (
    LINKS_ORIGINATOR,
    MARKER,
    dynamic_key,
    item_ref,
    parent_field,
    spa_uf_prefix,
    uf_name,
)
from b24kit.portal.snapshot import PipelineSnap, Snapshot

# what a spreadsheet runs as a formula (OWASP's CSV-injection rule): = or @ first, or + or -
# before a letter or a bracket (not a phone number or a negative amount)
FORMULA = re.compile(r"^(?:[=@]|[+-][^\d\s.,])")
_SPACE_RUN = re.compile(r"\s+")
_WHOLE_FLOAT = re.compile(r"\d+\.0")  # a row id a spreadsheet made a number: 17.0


@dataclass(frozen=True)
class Finding:
    kind: str  # rejected | warning
    worksheet: str
    row: int
    column: str | None
    value: Any
    reason: str
    row_id: str | None = None  # the project's own number (row_id column), when known

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "worksheet": self.worksheet,
            "row": self.row,
            "row_id": self.row_id or "",
            "column": self.column,
            "value": "" if self.value is None else str(self.value),
            "reason": self.reason,
        }


@dataclass
class ChildRecord:
    rule: ChildRule
    title: str
    stage: str | None
    fields: dict[str, Any]
    # the row names it (a `when` column is filled); otherwise it is made only when the
    # parent is open at or past the link's trigger stage, as sync would make it
    wanted: bool = True


@dataclass
class Record:
    row: int
    row_id: str
    title: str
    stage: str
    fields: dict[str, Any]
    contact_name: str | None
    company: str | None
    phones: list[str]
    emails: list[str]
    contractor: dict[str, Any] | None
    children: list[ChildRecord]
    comment: str | None
    # values changed on the way to the portal, by kind: trimmed, normalised, rounded
    changes: Counter[str] = field(default_factory=Counter)
    pipeline: str = ""  # the parent's pipeline code (parent.route, or parent.pipeline)
    person: str | None = None  # the contact person (contact.person) of an organisation
    inn: str | None = None  # the client's INN (contact.inn): 10 or 12 digits


def _as_written(value: Any) -> str:
    """A parsed value as the portal gets it, to compare with the cell's text."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, tuple):  # money: (amount, currency)
        return format(value[0], "f")
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


class _Shared:
    """What every row of one read asks of the mapping, made once per read_records, not
    once per cell: the users by name as compared, each value map's Enumeration."""

    def __init__(self, mapping: Mapping) -> None:
        self.users = {normalize_word(k): v for k, v in mapping.users.items()}
        # every column the mapping reads, each once, in the mapping's order
        self.columns = list(dict.fromkeys(column for _, column in named_columns(mapping)))
        self._enums: dict[int, Enumeration] = {}
        self._templates: dict[str, list[str]] = {}

    def template(self, text: str) -> list[str]:
        """A title template split once per read, not once per row: the text between the
        {columns} at even places, the columns' names at odd ones."""
        pieces = self._templates.get(text)
        if pieces is None:
            pieces = self._templates[text] = TEMPLATE.split(text)
        return pieces

    def enum(self, values: dict[str, list[str]]) -> Enumeration:
        """The value map's Enumeration (its word table built once), by the map's identity:
        the mapping holds each of its maps, unchanged, for the whole read (the check on
        ``synonyms`` makes a reused id of another object no match)."""
        made = self._enums.get(id(values))
        if made is None or made.synonyms is not values:
            made = self._enums[id(values)] = Enumeration(values)
        return made


class _RowReader:
    def __init__(self, mapping: Mapping, worksheet: str, row: SheetRow, shared: _Shared) -> None:
        self.mapping = mapping
        self.shared = shared
        self.worksheet = worksheet
        self.row = row
        self.row_id: str | None = None  # set once the row is known to be a project row
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self.changes: Counter[str] = Counter()
        self._counted: set[str] = set()  # a cell read twice (a name, a title) counts once

    def finding(self, kind: str, column: str | None, value: Any, reason: str) -> Finding:
        top = self.row.carried.get(column) if column is not None else None
        if top is not None:  # the row shows it, the sheet holds it in the merge's top cell
            reason = f"{reason} (its value is {top}'s, merged down to this row)"
        return Finding(kind, self.worksheet, self.row.number, column, value, reason, self.row_id)

    def raw(self, column: str) -> Any:
        """The cell's value, None when blank or not in the sheet (row.value, inlined: asked
        of every cell several times)."""
        return self.row.filled.get(column)

    def parse(self, column: str, parser: Callable[[Any], Parsed], count: bool = True) -> Any:
        """The cell parsed, or None (the reason a rejection); ``count``: a value written
        otherwise than the cell (a phone to +7..., a date to ISO) counts as normalised (not
        for words translated to codes: stages, enumerations, yes/no)."""
        value = self.raw(column)
        if value is None:
            return None
        try:
            parsed = parser(value)
        except ParseError as exc:
            self.errors.append(self.finding("rejected", column, value, str(exc)))
            return None
        if parsed.warning:
            self.warnings.append(self.finding("warning", column, value, parsed.warning))
        if isinstance(value, str) and count:
            if column not in self._counted:  # (_as_written only when it is compared)
                self._count(column, value, _as_written(parsed.value), parsed.warning)
        elif parsed.warning and parsed.warning.startswith("rounded"):
            self._count(column, "", "", parsed.warning)
        return parsed.value

    def _count(self, column: str, cell: str, written: str, warning: str | None = None) -> None:
        """Count a cell whose value reaches the portal otherwise than it was written."""
        if column in self._counted:
            return
        self._counted.add(column)
        if warning and warning.startswith("rounded"):
            self.changes["rounded"] += 1
        elif cell != cell.strip() and written == cell.strip():
            self.changes["trimmed"] += 1
        elif written != cell:
            self.changes["normalised"] += 1

    def column(self, spec: Column) -> Any:
        value = self.raw(spec.column)
        if value is None:
            if spec.required:
                self.errors.append(
                    self.finding("rejected", spec.column, None, "required value is empty")
                )
            return None
        if spec.parse == "money":
            money = self.parse(spec.column, partial(parse_money, negative=spec.negative))
            if money is not None and money[1] != "RUB":
                # the deal's amount is in its currency, roubles: never write $1 200 as 1 200 ₽
                self.errors.append(
                    self.finding(
                        "rejected",
                        spec.column,
                        value,
                        f"an amount in {money[1]}: the portal's amounts here are in RUB; "
                        "write it in roubles",
                    )
                )
                return None
            return None if money is None else float(money[0])
        if spec.parse == "date":
            day = self.parse(spec.column, parse_date)
            return None if day is None else day.isoformat()
        if spec.parse == "phone":
            return self.parse(spec.column, parse_phones)
        if spec.parse == "email":
            return self.parse(spec.column, parse_emails)
        if spec.parse == "yes_no":
            flag = self.parse(spec.column, parse_yes_no, count=False)
            return None if flag is None else ("Y" if flag else "N")
        if spec.parse == "number":
            number = self.parse(
                spec.column, partial(parse_money, negative=spec.negative, places=None)
            )
            return None if number is None else float(number[0])
        if spec.parse == "user":
            found = self.shared.users.get(normalize_word(str(value)))
            if found is None:
                self.errors.append(
                    self.finding(
                        "rejected", spec.column, value, f"unknown user {value!r}; add it to users:"
                    )
                )
            return found
        if spec.parse == "enum":
            enum = self.shared.enum(spec.values) if spec.values is not None else _NO_VALUES
            return self.parse(spec.column, enum.parse, count=False)
        return self.text(spec.column, value)

    def text(self, column: str, value: Any) -> str:
        """A text cell as written; one that a spreadsheet would run as a formula is kept as
        text and reported (the portal's exports and a person's Excel may run it)."""
        text = str(value).strip()
        if isinstance(value, str):
            self._count(column, value, text)
        if FORMULA.match(text):
            warning = self.finding(
                "warning", column, text, "looks like a spreadsheet formula; written as text"
            )
            if warning not in self.warnings:  # once, however often used
                self.warnings.append(warning)
        return text

    def cell_text(self, column: str) -> str | None:
        """A cell written to the portal as text (a name, a comment), or None when blank."""
        value = self.raw(column)
        return None if value is None else self.text(column, value)

    def stage(self, rule: StageRule) -> str:
        if rule.column is None:
            return rule.default
        code = self.parse(rule.column, self.shared.enum(rule.values).parse, count=False)
        return rule.default if code is None else str(code)

    def template(self, text: str) -> str:
        """The template with each {column} replaced by the cell's text (blank: nothing), the
        cells read left to right."""
        pieces = self.shared.template(text)
        out = []
        for i, piece in enumerate(pieces):
            if i % 2 == 0:  # text between the {columns}
                out.append(piece)
                continue
            value = self.raw(piece)
            if value is not None:
                out.append(self.text(piece, value))
        return _SPACE_RUN.sub(" ", "".join(out)).strip(" :-—")


_NO_VALUES = Enumeration({})  # an enum column the mapping gives no values: only codes match


def _row_id(mapping: Mapping, row: SheetRow) -> str:
    if mapping.row_id:
        value = row.value(mapping.row_id)
        if value is not None:
            text = str(value).strip()
            return text[:-2] if _WHOLE_FLOAT.fullmatch(text) else text
    return f"r{row.number}"


def project_columns(mapping: Mapping) -> list[str]:
    """The columns of which a project row fills one: rows.require_any, or by default the
    client's name, company and phone (a row with only an e-mail is no project: it made a
    contact with no name)."""
    if mapping.rows.require_any is not None:
        return mapping.rows.require_any
    contact = mapping.contact
    return [c for c in (contact.name, contact.company, contact.phone) if c]


def _row_rules(reader: _RowReader, mapping: Mapping) -> None:
    """Reject a row that is no project (none of project_columns filled) or that leaves a
    rows.require column empty, saying which rule."""
    wanted = project_columns(mapping)
    if wanted and all(reader.raw(c) is None for c in wanted):
        rule = (
            "rows.require_any" if mapping.rows.require_any is not None else "a client name or phone"
        )
        reader.errors.append(
            reader.finding(
                "rejected", wanted[0], None, f"no client: {', '.join(wanted)} empty ({rule})"
            )
        )
    for column in mapping.rows.require:
        if reader.raw(column) is None:
            reader.errors.append(
                reader.finding("rejected", column, None, "empty, and rows.require needs it")
            )


def _formula_errors(reader: _RowReader, columns: list[str]) -> None:
    """Reject a row where a column the mapping reads holds a formula's error (``#N/A``,
    ``#REF!``): the value it stands for is not in the sheet, and the error's text is no
    value (it reads as blank to every other rule)."""
    for column in columns:
        code = reader.row.errors.get(column)
        if code is not None:
            reader.errors.append(
                reader.finding(
                    "rejected",
                    column,
                    code,
                    f"the cell shows a formula error ({code}), not a value: fix the "
                    "formula in the sheet, or clear the cell",
                )
            )


def read_records(table: Table, mapping: Mapping) -> tuple[list[Record], list[Finding]]:
    """Validate every row. A row with any error is rejected whole (each problem listed);
    nothing is dropped silently."""
    records: list[Record] = []
    findings: list[Finding] = []
    shared = _Shared(mapping)
    no_rows = _no_rows(table, shared.columns)
    twins = _repeated_ids(table, mapping, no_rows)
    for row in table.rows:
        reader = _RowReader(mapping, table.worksheet, row, shared)
        if row.number in no_rows:
            findings.append(reader.finding("rejected", None, None, no_rows[row.number]))
            continue
        row_id = _row_id(mapping, row)
        if row.number in twins:
            findings.append(reader.finding("rejected", mapping.row_id, row_id, twins[row.number]))
            continue
        if mapping.row_id and row.value(mapping.row_id) is not None:
            reader.row_id = row_id
        if row.errors:
            _formula_errors(reader, shared.columns)
        contact = mapping.contact
        _row_rules(reader, mapping)
        name = reader.cell_text(contact.name) if contact.name else None
        company = reader.cell_text(contact.company) if contact.company else None
        person = reader.cell_text(contact.person) if contact.person else None
        inn = reader.parse(contact.inn, parse_inn) if contact.inn else None
        phones = (reader.parse(contact.phone, parse_phones) if contact.phone else None) or []
        emails = (reader.parse(contact.email, parse_emails) if contact.email else None) or []
        fields = {key: reader.column(spec) for key, spec in mapping.parent.fields.items()}
        stage = reader.stage(mapping.parent.stage)
        pipeline = _route(reader, mapping)
        contractor = None
        if mapping.contractor is not None:
            rule = mapping.contractor
            title = reader.cell_text(rule.title)
            c_phones = (reader.parse(rule.phone, parse_phones) if rule.phone else None) or []
            if title or c_phones:
                contractor = {
                    "title": str(title or c_phones[0]).strip(),
                    "phones": c_phones,
                    "fields": {k: reader.column(s) for k, s in rule.fields.items()},
                }
        children = []
        for child in mapping.children:
            if any(reader.raw(col) is not None for col in child.when):
                children.append(
                    ChildRecord(
                        child,
                        reader.template(child.title),
                        reader.stage(child.stage) if child.stage else None,
                        {k: reader.column(s) for k, s in child.fields.items()},
                    )
                )
            else:  # kept in case the parent's stage needs it (its cells are not read)
                children.append(ChildRecord(child, reader.template(child.title), None, {}, False))
        comment = reader.cell_text(mapping.comment) if mapping.comment else None
        title = reader.template(mapping.parent.title) or f"Проект {row_id}"
        findings.extend(reader.warnings)  # after every cell is read: the title's too
        if reader.errors:
            findings.extend(reader.errors)
            continue
        records.append(
            Record(
                row.number,
                row_id,
                title,
                stage,
                {k: v for k, v in fields.items() if v is not None},
                None if name is None else str(name).strip(),
                None if company is None else str(company).strip(),
                phones,
                emails,
                contractor,
                children,
                None if comment is None else str(comment).strip(),
                reader.changes,
                pipeline,
                None if person is None else str(person).strip(),
                inn,
            )
        )
    return records, findings


def _no_rows(table: Table, columns: list[str]) -> dict[int, str]:
    """The rows that are no rows, by number: blank ones, a header pasted again, and a row
    under a merge with nothing of its own in the ``columns`` the mapping reads (a client
    merged one row too far, beside a filled-down formula: it was a project made of the
    merge's values), each with its reason (asked once per row: both read_records and
    _repeated_ids skip them)."""
    out = {}
    for row in table.rows:
        if row.blank:
            out[row.number] = "blank row"
        elif row.carried and not any(
            c not in row.carried and (c in row.filled or c in row.errors) for c in columns
        ):
            out[row.number] = (
                "blank row: nothing of its own in the columns the mapping reads, only cells "
                "merged down from above"
            )
        elif row.repeats_header(table.headers):
            out[row.number] = "repeated header row"
    return out


def rows_gone(table: Table, mapping: Mapping, existing: Existing) -> list[Finding]:
    """A warning for each parent deal this mapping made whose row the sheet no longer has
    (deleted, or renumbered): a run never deletes a deal, and says which it left."""
    ids = {_row_id(mapping, row) for row in table.rows if not row.blank}
    out = []
    for origin, deal in sorted(existing.deals.items(), key=lambda item: int(item[1]["ID"])):
        kind, _, row_id = origin.partition(":")
        if kind != "row" or ":" in row_id or row_id in ids:
            continue
        out.append(
            Finding(
                "warning",
                table.worksheet,
                0,
                None,
                row_id,
                f"deal #{deal['ID']} «{deal.get('TITLE') or ''}» ({origin}) has no row in the "
                "sheet any more: left as it is (a run never deletes; migrate undo removes "
                "what the mapping made)",
                row_id,
            )
        )
    return out


def _cells(row: SheetRow) -> str:
    """The row's cells as compared for a copy (spaces around each aside)."""
    return "\x1f".join(str(v).strip() for v in row.values.values())


def _repeated_ids(table: Table, mapping: Mapping, no_rows: dict[int, str]) -> dict[int, str]:
    """The rows whose row id another row has, with the reason: a number on two projects
    names neither, so every one of them is rejected, whatever the rows' order; a row that
    repeats another cell for cell is a copy, and only the copies are (with no row_id
    too, where each row's id is its own number). Only rows that are
    projects (a client name or phone: project_columns) count, and the rows a row id cell
    is merged down: one project on several rows, refused whole, never half-read."""
    rows: dict[str, list[SheetRow]] = {}
    wanted = project_columns(mapping)  # a note or a total is no project: rejected as such
    for row in table.rows:
        if row.number in no_rows:
            continue
        if (
            not wanted
            or any(row.value(c) is not None for c in wanted)
            or (mapping.row_id is not None and mapping.row_id in row.carried)
        ):
            # with no row_id a row's id is its number, never repeated: copies are told by
            # their cells alone
            key = _row_id(mapping, row) if mapping.row_id else _cells(row)
            rows.setdefault(key, []).append(row)
    out: dict[int, str] = {}
    for row_id, same in rows.items():
        if len(same) < 2:
            continue
        if len({_cells(r) for r in same}) == 1:  # copies: the first row stands
            for copy in same[1:]:
                out[copy.number] = (
                    f"row id {row_id} repeats row {same[0].number}, cell for cell"
                    if mapping.row_id
                    else f"repeats row {same[0].number}, cell for cell (a copy)"
                )
            continue
        tops = {
            int(re.sub(r"\D", "", r.carried[mapping.row_id]))
            for r in same
            if mapping.row_id and mapping.row_id in r.carried
        }
        merged = [r for r in same if r.number in tops or (mapping.row_id or "") in r.carried]
        numbers = ", ".join(str(r.number) for r in merged)
        for row in merged:
            out[row.number] = (
                f"row id {row_id} is one cell merged over rows {numbers}: each row is a "
                "project of its own; unmerge it and give each row its own number"
            )
        in_merge = {r.number for r in merged}
        for row in (r for r in same if r.number not in in_merge):  # the number typed again
            others = ", ".join(str(r.number) for r in same if r is not row)
            out[row.number] = (
                f"row id {row_id} repeats row {others} with other cells: one number, two "
                "projects; give each its own"
            )
    return out


def _route(reader: _RowReader, mapping: Mapping) -> str:
    """The row's pipeline: by parent.route's value map; the default when its cell is empty
    (an unknown word rejects the row)."""
    route = mapping.parent.route
    if route is None or reader.raw(route.column) is None:
        return mapping.parent.pipeline
    code = reader.parse(route.column, reader.shared.enum(route.values).parse, count=False)
    return mapping.parent.pipeline if code is None else str(code)


# --------------------------------------------------------------- the portal
@dataclass
class Target:
    """Where things go on this portal, resolved from the blueprint and a snapshot."""

    parent: PipelineSnap
    children: dict[str, tuple[Link, PipelineSnap]]
    contractor_etid: int | None
    contractor_type_id: int | None
    contractor_field: str | None  # the deal field linking the contractor directory
    enum_ids: dict[str, dict[str, int]]  # deal field -> XML_ID -> item id
    # the contractor directory's enumeration fields (UF_CRM_<type>_...) -> XML_ID -> item id
    contractor_enum_ids: dict[str, dict[str, int]] = field(default_factory=dict)
    # every pipeline a row may go to (parent.route), by code; the default one is `parent`
    parents: dict[str, PipelineSnap] = field(default_factory=dict)
    # the blueprint's other links from those pipelines (the mapping names no child of
    # theirs): their children are made as sync would, for parents at or past the trigger
    implied: dict[str, tuple[Link, PipelineSnap]] = field(default_factory=dict)
    money_fields: set[str] = field(default_factory=set)  # deal fields of type money
    # (entity type, pipeline id, code) -> STATUS_ID: asked for every record, of the
    # snapshot the target was resolved from, which planning never changes
    _stage_ids: dict[tuple[int, int, str], str] = field(
        default_factory=dict, repr=False, compare=False
    )

    def link(self, name: str) -> tuple[Link, PipelineSnap]:
        """A link the mapping names, or one of the blueprint's implied ones."""
        return self.children.get(name) or self.implied[name]

    def parent_of(self, code: str) -> PipelineSnap:
        return self.parents.get(code, self.parent)

    def stage_id(self, pipeline: PipelineSnap, code: str) -> str:
        key = (pipeline.entity_type_id, pipeline.id, code)
        found = self._stage_ids.get(key)
        if found is None:  # (a stage the pipeline lacks raises each time it is asked)
            found = self._stage_ids[key] = stage_id(pipeline, code)
        return found


def resolve_target(mapping: Mapping, bp: Blueprint, snap: Snapshot) -> Target:
    def pipeline(code: str) -> PipelineSnap:
        return deal_pipeline(bp, snap, code)

    children = {}
    for rule in mapping.children:
        link = next((x for x in bp.links if x.name == rule.link), None)
        if link is None:
            raise InputError(f"the blueprint has no link {rule.link!r}")
        children[rule.link] = (link, pipeline(link.child.pipeline))
    etid = type_id = None
    field = None
    contractor_enums: dict[str, dict[str, int]] = {}
    if mapping.contractor is not None:
        spa = snap.spa_by_code(mapping.contractor.type)
        if spa is None:
            raise InputError(f"smart process {mapping.contractor.type!r} is not on the portal")
        etid, type_id = spa.entity_type_id, spa.id
        field = next(
            (
                f.name
                for f in snap.deal_fields
                if f.type == "crm" and str(f.settings.get(dynamic_key(etid))) == "Y"
            ),
            None,
        )
        contractor_enums = {
            f.name: {v.xml_id: v.id for v in f.values} for f in spa.fields if f.values
        }
    enum_ids = {f.name: {v.xml_id: v.id for v in f.values} for f in snap.deal_fields if f.values}
    implied = {
        link.name: (link, pipeline(link.child.pipeline))
        for link in bp.links
        if link.name not in children and set(link.parent.codes) & set(mapping.parent.pipelines)
    }
    return Target(
        pipeline(mapping.parent.pipeline),
        children,
        etid,
        type_id,
        field,
        enum_ids,
        contractor_enums,
        {code: pipeline(code) for code in mapping.parent.pipelines},
        implied,
        {f.name for f in snap.deal_fields if f.type == "money"},
    )


@dataclass
class Existing:
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)  # ORIGIN_ID -> deal
    # children sync made for parents (ORIGIN_ID "<link>:<parent id>") -> deal
    linked: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts_by_comm: dict[str, int] = field(default_factory=dict)
    # contact id -> NAME, SECOND_NAME, LAST_NAME, ORIGINATOR_ID (renamed only if b24kit made it)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    contacts_by_origin: dict[str, int] = field(default_factory=dict)  # this mapping's ORIGIN_ID
    # companies by phone, e-mail and organisation name key; id -> TITLE, ORIGINATOR_ID
    companies_by_key: dict[str, int] = field(default_factory=dict)
    companies: dict[int, dict[str, Any]] = field(default_factory=dict)
    companies_by_origin: dict[str, int] = field(default_factory=dict)  # this mapping's
    # (company id, the person's name as compared) -> the contact, for contact persons
    persons: dict[tuple[int, str], int] = field(default_factory=dict)
    contractors_by_key: dict[str, int] = field(default_factory=dict)
    contractor_titles: dict[int, str] = field(default_factory=dict)  # item id -> its title
    contractor_phones: dict[int, str] = field(default_factory=dict)  # item id -> its phones
    # b24kit's marker -> (the comment's id, its text): an edited comment updates that one
    markers: dict[str, tuple[int, str]] = field(default_factory=dict)


async def read_existing(
    client: B24Client,
    mapping: Mapping,
    target: Target,
    select: list[str],
    commented: set[str] | None = None,
) -> Existing:
    """One paged scan per entity type; comment markers only of the parents whose row has a
    comment (``commented``: their row ids; None: every parent)."""
    out = Existing()
    for deal in await read_all(
        client,
        "crm.deal.list",
        {
            "filter": {"ORIGINATOR_ID": mapping.originator},
            "select": sorted(
                {
                    "ID",
                    "ORIGIN_ID",
                    "TITLE",
                    "STAGE_ID",
                    "CATEGORY_ID",
                    "CONTACT_ID",
                    "COMPANY_ID",
                    *select,
                }
            ),
        },
    ):
        out.deals[str(deal.get("ORIGIN_ID"))] = deal
    # the children sync or audit --fix made (b24kit-links, "<link>:<parent id>"): a re-run
    # must find them, never make a second child beside one
    base = {"ID", "ORIGIN_ID", "TITLE", "STAGE_ID", "CATEGORY_ID", "CONTACT_ID", "COMPANY_ID"}
    links_select = sorted({*base, *select})
    for deal in await read_all(
        client,
        "crm.deal.list",
        {"filter": {"ORIGINATOR_ID": LINKS_ORIGINATOR}, "select": links_select},
    ):
        out.linked[str(deal.get("ORIGIN_ID"))] = deal
    select = ["ID", "PHONE", "EMAIL", "NAME", "SECOND_NAME", "LAST_NAME", "ORIGINATOR_ID"]
    read = {"select": [*select, "ORIGIN_ID", "COMPANY_ID"]}
    for contact in await read_all(client, "crm.contact.list", read):
        cid = int(contact["ID"])
        out.contacts[cid] = {
            k: contact.get(k) for k in ("NAME", "SECOND_NAME", "LAST_NAME", "ORIGINATOR_ID")
        }
        if contact.get("ORIGINATOR_ID") == mapping.originator and contact.get("ORIGIN_ID"):
            out.contacts_by_origin[str(contact["ORIGIN_ID"])] = cid
        of = _id_of(contact, "COMPANY_ID")
        if of is not None:
            full = " ".join(str(contact.get(k) or "") for k in ("LAST_NAME", "NAME", "SECOND_NAME"))
            out.persons.setdefault((of, _plain_name(full)), cid)
        for key in _comm_keys(contact):
            out.contacts_by_comm.setdefault(key, cid)
    select = ["ID", "TITLE", "PHONE", "EMAIL", "ORIGINATOR_ID", "ORIGIN_ID"]
    for company in await read_all(client, "crm.company.list", {"select": select}):
        cid = int(company["ID"])
        if company.get("ORIGINATOR_ID") == mapping.originator and company.get("ORIGIN_ID"):
            out.companies_by_origin[str(company["ORIGIN_ID"])] = cid
        out.companies[cid] = {k: company.get(k) for k in ("TITLE", "ORIGINATOR_ID")}
        title = str(company.get("TITLE") or "")
        org = organisation(title)
        # by its name as a sheet's company column names it: with its legal form's key, or,
        # without one («Стройтрест»), the name's (a company made from such a row, its key
        # the name then, was not found again once the row gained a phone)
        name_key = org.key if org else (f"org::{normalize_word(title)}" if title.strip() else "")
        for key in [*_comm_keys(company), *([name_key] if name_key else [])]:
            out.companies_by_key.setdefault(key, cid)
    if target.contractor_etid is not None and mapping.contractor is not None:
        phone_field = spa_uf_prefix(target.contractor_type_id or 0) + mapping.contractor.phone_field
        for item in await read_all(
            client,
            "crm.item.list",
            {
                "entityTypeId": target.contractor_etid,
                "useOriginalUfNames": "Y",
                "select": ["id", "xmlId", "title", phone_field],
            },
        ):
            for phone in _directory_phones(str(item.get(phone_field) or "")):
                out.contractors_by_key.setdefault(identifier(phone), int(item["id"]))
            out.contractors_by_key.setdefault(contractor_key(str(item["title"])), int(item["id"]))
            out.contractor_titles[int(item["id"])] = str(item["title"])
            out.contractor_phones[int(item["id"])] = str(item.get(phone_field) or "")
    if mapping.comment:
        parents = [
            int(d["ID"])
            for key, d in out.deals.items()
            if re.fullmatch(r"row:[^:]+", key) and (commented is None or key[4:] in commented)
        ]
        out.markers = await read_markers(client, "deal", parents)
    return out


def _person(name: str | None) -> dict[str, str]:
    return person_name(name)


def _plain_name(name: str) -> str:
    """A person's name as compared: its words, in any order, case- and ё-insensitive."""
    return " ".join(sorted(normalize_word(name).split()))


def _comm_keys(entity: dict[str, Any]) -> list[str]:
    """The identifiers of a contact's or a company's phones and e-mails."""
    keys = []
    for kind in ("PHONE", "EMAIL"):
        for entry in entity.get(kind) or []:
            value = str(entry.get("VALUE", ""))
            if kind == "PHONE":
                try:
                    value = parse_phones(value).value[0]
                except ParseError:
                    continue
            keys.append(identifier(value))
    return keys


async def read_markers(
    client: B24Client, entity_type: str, ids: list[int]
) -> dict[str, tuple[int, str]]:
    """b24kit's markers in the timeline comments of these entities. The portal lists
    comments only with a filter on both ENTITY_ID and ENTITY_TYPE
    (crm-timeline-comment-list.md), so they are read per entity, 50 to a batch."""
    markers: dict[str, tuple[int, str]] = {}

    def take(rows: Any) -> None:
        for comment in as_list(rows):
            text = str(comment.get("COMMENT", ""))
            found = MARKER.search(text)
            if found:
                markers.setdefault(found.group(0), (int(comment.get("ID") or 0), text))

    async def chunk(group: list[int]) -> None:
        cmds = {
            f"e{i}": (
                "crm.timeline.comment.list",
                {"filter": {"ENTITY_ID": i, "ENTITY_TYPE": entity_type}},
            )
            for i in group
        }
        batch = await client.batch(cmds, safe=True)
        if batch.error:
            raise next(iter(batch.error.values()))
        for name, (method, params) in cmds.items():
            if batch.next.get(name) is not None:  # more than a page of comments: read them all
                take(await read_all(client, method, params))
            else:
                take(batch.result.get(name))

    async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
        for i in range(0, len(ids), 50):
            group.create_task(chunk(ids[i : i + 50]))
    return markers


@dataclass(frozen=True)
class Rebind:
    """A deal made earlier (found by its key) that the row would make another project: it
    gives the deal to another client, or, where rows are keyed by their number (no
    ``row_id``), another title. A deal is a client's history: never rewritten as another
    project without being asked."""

    row: int
    row_id: str
    deal: int
    what: str  # "deal #1 belongs to company #4 «ООО Ромашка», the row names …"

    def __str__(self) -> str:
        return f"row {self.row}: {self.what}"


class DealsMoved(InputError):
    """A run would rewrite deals it made earlier as other projects: usually another sheet
    under the same ``originator`` (its rows' keys are the first sheet's), or rows keyed by
    their number (no ``row_id``) that moved since the last run. Nothing is written."""

    def __init__(self, rebinds: list[Rebind], originator: str) -> None:
        self.rebinds = rebinds
        shown = "; ".join(str(r) for r in rebinds[:3])
        more = f"; and {len(rebinds) - 3} more" if len(rebinds) > 3 else ""
        super().__init__(
            f"{len(rebinds)} deal(s) made earlier under originator {originator!r} would "
            f"become other projects: {shown}{more}"
        )
        self.hint = (
            "if this sheet is not the one those deals were made from, give its mapping its "
            "own originator; rows keyed by their number move when rows are inserted, deleted "
            "or sorted (give the mapping a row_id column); if those projects really changed, "
            "run again with --reassign-deals"
        )


@dataclass
class MigrationPlan:
    commands: list[Command] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)  # what planning found: conflicts
    rebinds: list[Rebind] = field(default_factory=list)  # deals it would make other projects

    def count(self, entity: str, outcome: str) -> None:
        self.counts.setdefault(entity, {"created": 0, "updated": 0, "unchanged": 0})
        self.counts[entity][outcome] += 1


# (not dates: a portal fills BEGINDATE and CLOSEDATE in itself when a deal is made)
_NO_DEFAULT = frozenset({"text", "money", "number", "phone", "email"})
_ZERO = re.compile(r"0+(?:[.,]0+)?(?:\|[A-Z]{3})?")


def _blank_value(value: Any) -> bool:
    """A deal's field with nothing in it: empty, zero, a zero amount ("0.00|RUB")."""
    if value in (None, "", 0, False) or value == []:
        return True
    return isinstance(value, str) and _ZERO.fullmatch(value.strip()) is not None


def _id_of(deal: dict[str, Any] | None, key: str) -> int | None:
    """A deal's CONTACT_ID or COMPANY_ID as a number; None when it has none."""
    value = str((deal or {}).get(key) or "0")
    return int(value) if value.isdigit() and value != "0" else None


def _directory_phones(text: str) -> list[str]:
    """The phones of a directory entry as b24kit compares them (+7…): typed by a person
    (8 911 …) too, which were never matched; one that is no phone, as written."""
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            out.append(parse_phone_one(part).value)
        except ParseError:
            out.append(part.strip())
    return out


def _same_form(one: str, other: str) -> bool:
    """Two names of one organisation as far as their legal forms go: a form missing on
    either is no difference, two different ones are (ООО Вектор is no АО Вектор)."""
    a, b = organisation(one), organisation(other)
    return a is None or b is None or a.form == b.form


def contractor_key(title: str) -> str:
    """The key a contractor's name is compared by: without its legal form and quotes, as
    an organisation's («ООО "ТралСпецТранс"» is «ТралСпецТранс»)."""
    org = organisation(title)
    return f"title:{normalize_word(org.core if org else title)}"


def _title_key(title: str) -> str:
    """A deal's title as compared: spaces aside, up to the 255 characters a title holds."""
    return " ".join(title.split())[:255]


def _same(have: Any, want: Any) -> bool:
    if want is None:
        return True
    if type(want) is str and have == want:  # most of a re-run: a text as the portal has it
        return True
    if isinstance(want, float):
        try:
            return Decimal(str(have)) == Decimal(str(want))
        except Exception:  # noqa: BLE001
            return False
    if isinstance(want, list):
        return [str(v) for v in (have or [])] == [str(v) for v in want]
    if isinstance(have, str) and isinstance(want, str) and len(want) == 10 and want[4] == "-":
        return have.startswith(want)  # a date against the portal's full datetime
    return str(have) == str(want)


def _deal_fields(values: dict[str, Any], target: Target) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key in target.enum_ids and isinstance(value, str):
            value = target.enum_ids[key].get(value, value)
        out[key] = value
    return out


def plan_migration(
    records: list[Record], mapping: Mapping, target: Target, existing: Existing
) -> MigrationPlan:
    clients = group_clients(
        ClientRow(
            r.row_id,
            r.contact_name,
            tuple(r.phones),
            tuple(r.emails),
            r.company,
            r.person,
            r.inn,
        )
        for r in records
    )
    planner = _Planner(mapping, target, existing, clients)
    for r in records:  # which rows make which titles: a deal's title on another row moved
        planner.titles.setdefault(_title_key(r.title), []).append(r.row)
    for record in records:
        planner.record(record)
    rows = {r.row_id: r for r in records}
    reported: set[str] = set()
    for client in clients.values():
        if client.key in reported or client.conflict is None:
            continue
        reported.add(client.key)
        first = rows[client.rows[0]]
        planner.plan.findings.append(
            Finding(
                "warning",
                "",
                first.row,
                "contact",
                client.name,
                f"{client.conflict}: rows {', '.join(client.rows[:10])}; the contact is named "
                f"«{client.name}»",
                first.row_id,
            )
        )
    return planner.plan


class _Planner:
    """The commands of a migration, record by record: each record's contact, contractor,
    parent deal, children and comment, each created when missing (found by phone, e-mail,
    title or origin) and updated when it differs."""

    def __init__(
        self,
        mapping: Mapping,
        target: Target,
        existing: Existing,
        clients: dict[str, Client],
    ) -> None:
        self.plan = MigrationPlan()
        self.mapping = mapping
        self.target = target
        self.existing = existing
        self.clients = clients  # row id -> its client (group_clients)
        self.made_clients: dict[str, Any] = {}  # client key -> its contact's id or Ref
        # what earlier records made, found by the same keys as what the portal has
        self.contacts: dict[str, Any] = dict(existing.contacts_by_comm)
        self.contractors: dict[str, Any] = dict(existing.contractors_by_key)
        # a directory entry (its id, or the Ref of one this run makes) -> its title, and
        # its phone field as written
        self.contractor_titles: dict[Any, str] = dict(existing.contractor_titles)
        self.contractor_phones: dict[Any, str] = dict(existing.contractor_phones)
        self.titles: dict[str, list[int]] = {}  # a title as compared -> the rows making it
        self.companies: dict[str, Any] = dict(existing.companies_by_key)
        self.persons: dict[tuple[str, str], Any] = {}  # (company, name) -> contact
        self.seq = 0
        # each link's ChildLink, made on its first child (every record of a link has the same)
        self.specs: dict[str, ChildLink] = {}

    def name(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"

    def deal(
        self,
        origin: str,
        fields: dict[str, Any],
        entity: str,
        stage: str | None = None,
        have: dict[str, Any] | None = None,
    ) -> Any:
        """Create or update a deal by ORIGIN_ID (or ``have``, found otherwise); returns its
        id or a Ref. An existing deal keeps its pipeline, and its stage unless ``stage``
        moves it (forward: _forward)."""
        plan = self.plan
        have = have if have is not None else self.existing.deals.get(origin)
        if have is None:
            command = cmd.entity_add(
                "deal",
                {**fields, "ORIGINATOR_ID": self.mapping.originator, "ORIGIN_ID": origin},
                name=self.name("d"),
            )
            plan.commands.append(command)
            plan.count(entity, "created")
            return Ref(command.name)
        # the pipeline cannot change; the stage only forward (the caller decides)
        changed = {
            k: v
            for k, v in fields.items()
            if k not in ("CATEGORY_ID", "STAGE_ID")
            and not isinstance(v, Ref)
            and not _same(have.get(k), v)
        }
        if stage is not None:
            changed["STAGE_ID"] = stage
        refs = {k: v for k, v in fields.items() if isinstance(v, Ref)}
        if changed or refs:
            plan.commands.append(
                cmd.entity_update("deal", int(have["ID"]), {**changed, **refs}, name=self.name("u"))
            )
        # a reference is a change too: the deal gets a new contact, company or child
        plan.count(entity, "updated" if changed or refs else "unchanged")
        return int(have["ID"])

    def record(self, record: Record) -> None:
        """Everything one record makes, in order: contact, contractor, parent, children,
        comment."""
        client = self.client(record)
        contractor = self.contractor(record)
        target = self.target
        code = record.pipeline or self.mapping.parent.pipeline
        pipeline = target.parent_of(code)
        parent_fields = {
            "TITLE": record.title,
            "CATEGORY_ID": pipeline.id,
            "STAGE_ID": target.stage_id(pipeline, record.stage),
            **_deal_fields(record.fields, target),
        }
        parent_fields.update(client)
        origin = f"row:{record.row_id}"
        have = self.existing.deals.get(origin)
        if have is not None:
            self._rebinds(record, have, client)
            self._kept(record, have)
        move, stage_now = self._parent_stage(record, code, pipeline, parent_fields, have)
        parent = self.deal(origin, parent_fields, "parents", move)
        kids: list[str] = []
        done: set[str] = set()  # the links whose child this run made or updated

        def make(child: ChildRecord) -> None:
            done.add(child.rule.link)
            kids.append(self.child(record, child, parent, parent_fields, client, contractor))

        for child in record.children:
            link = target.children[child.rule.link][0]
            if not child.wanted:
                if code in link.parent.codes and _needs_child(link, pipeline, stage_now):
                    make(child)
            elif code not in link.parent.codes:
                self.warn(
                    record,
                    f"no child by link {link.name!r}: the row goes to pipeline {code!r}, and "
                    f"the link takes children from {', '.join(link.parent.codes)}",
                )
            else:
                make(child)
        for name, (link, _) in target.implied.items():
            if code in link.parent.codes and _needs_child(link, pipeline, stage_now):
                implied = ChildRule.model_construct(
                    link=name, when=[], title="", stage=None, contractor=False, fields={}
                )
                make(ChildRecord(implied, "", None, {}, False))
        for name in [*target.children, *target.implied]:  # children this run left alone
            if name not in done and code in target.link(name)[0].parent.codes:
                existing = self._existing_child(record, name, parent)
                if existing:
                    kids.append(self._close_implied(name, existing, pipeline, stage_now, parent))
        self._closed_with_open_child(record, pipeline, stage_now, kids)
        if record.comment:
            self.comment(record, parent)

    def _parent_stage(
        self,
        record: Record,
        code: str,
        pipeline: PipelineSnap,
        parent_fields: dict[str, Any],
        have: dict[str, Any] | None,
    ) -> tuple[str | None, str]:
        """(the stage an existing parent moves to, or None; the parent's stage after this
        run): the sheet's status forward only, then on as the children's stages move it
        (the link's moves), recording the quote a move records."""
        target = self.target
        move = None
        if have is not None and str(have.get("CATEGORY_ID")) != str(pipeline.id):
            self.warn(
                record,
                f"the row goes to pipeline {code!r} now; its deal stays where it is (a "
                "migration never moves a deal between pipelines: move it on the portal)",
            )
        elif have is not None:
            move, why = _forward(pipeline, str(have["STAGE_ID"]), parent_fields["STAGE_ID"])
            if why:
                self.warn(record, f"parent deal: {why}")
        stage_now = move or (str(have["STAGE_ID"]) if have is not None else "")
        stage_now = stage_now or parent_fields["STAGE_ID"]
        for child in record.children:
            link, child_pipeline = target.children[child.rule.link]
            if code not in link.parent.codes or not child.wanted:
                continue
            want = target.stage_id(child_pipeline, child.stage or link.child.stage)
            moved_to = _moved_parent(link, pipeline, child_pipeline, want, stage_now)
            if moved_to is not None:
                stage_now = moved_to
                if have is None:
                    parent_fields["STAGE_ID"] = moved_to
                else:
                    move = moved_to
            quote = _quote(link, pipeline, stage_now, child_pipeline, want, child, have)
            parent_fields.update(
                {k: f"{v}|RUB" if k in target.money_fields else v for k, v in quote.items()}
            )
        return move, stage_now

    def _rebinds(self, record: Record, have: dict[str, Any], client: dict[str, Any]) -> None:
        """Note the parent deal ``have`` if the row makes it another project: another
        client (a company, or a person's contact, other than the one it has; one it lacks
        may be added, and an organisation's contact person may change), a person's deal
        given to an organisation or the other way round, or, with rows keyed by their
        number, another title."""
        deal = int(have["ID"])
        company, contact = _id_of(have, "COMPANY_ID"), _id_of(have, "CONTACT_ID")
        if "COMPANY_ID" in client:  # an organisation's row
            now = client["COMPANY_ID"]
            if company is not None and now != company:
                was = f"company #{company} «{self._name('company', company)}»"
            elif company is None and contact is not None and client.get("CONTACT_ID") != contact:
                was = f"contact #{contact} «{self._name('contact', contact)}»"
            else:
                was = ""
            kind = "company"
        else:  # a person's row (or none)
            now = client.get("CONTACT_ID")
            if now is None or now == contact:
                was = ""
            elif contact is not None:
                was = f"contact #{contact} «{self._name('contact', contact)}»"
            elif company is not None:  # an organisation's deal, given to a person
                was = f"company #{company} «{self._name('company', company)}»"
            else:
                was = ""
            kind = "contact"
        if was:
            name = self.clients[record.row_id].name or ""  # (worked out only when said)
            names = (
                f"a new {kind} «{name}»"
                if isinstance(now, Ref)
                else f"{kind} #{now} «{self._name(kind, int(now))}»"
            )
            self.plan.rebinds.append(
                Rebind(
                    record.row,
                    record.row_id,
                    deal,
                    f"deal #{deal} belongs to {was}, the row names {names}",
                )
            )
            return
        # a row keyed by its number (no row_id, or its id cell empty): if the deal's title is
        # now another row's, the rows moved (inserted, deleted, sorted) and this deal would
        # become that row's neighbour's project. A title only this row changed (a price in
        # it, a manager's rename on the portal) is no move.
        if record.row_id != f"r{record.row}":
            return
        title = str(have.get("TITLE") or "")
        if _title_key(title) == _title_key(record.title):
            return
        moved_to = [n for n in self.titles.get(_title_key(title), ()) if n != record.row]
        if moved_to:
            self.plan.rebinds.append(
                Rebind(
                    record.row,
                    record.row_id,
                    deal,
                    f"deal #{deal} is «{title}», which row {moved_to[0]} holds now, and this "
                    f"row (keyed by its number) is «{record.title}»",
                )
            )

    def _kept(self, record: Record, have: dict[str, Any]) -> None:
        """Warn of each value the row's cell no longer has that the deal still does: a run
        never clears a value (the portal's may be newer than the sheet), and says so, for
        the kinds a portal gives no default (text, money, number, phone, e-mail)."""
        for key, spec in self.mapping.parent.fields.items():
            if key in record.fields or spec.parse not in _NO_DEFAULT:
                continue
            value = have.get(key)
            if _blank_value(value):
                continue
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            self.plan.findings.append(
                Finding(
                    "warning",
                    "",
                    record.row,
                    spec.column,
                    None,
                    f"empty in the sheet; deal #{have['ID']} keeps {key} «{shown[:60]}» (a "
                    "run never clears a value: clear it on the portal if it should go)",
                    record.row_id,
                )
            )

    def _name(self, kind: str, entity: int) -> str:
        if kind == "company":
            return str((self.existing.companies.get(entity) or {}).get("TITLE") or "")
        have = self.existing.contacts.get(entity) or {}
        parts = (have.get(k) for k in ("LAST_NAME", "NAME", "SECOND_NAME"))
        return " ".join(str(p) for p in parts if p)

    def warn(self, record: Record, reason: str) -> None:
        self.plan.findings.append(
            Finding("warning", "", record.row, None, None, reason, record.row_id)
        )

    def client(self, record: Record) -> dict[str, Any]:
        """The deal's COMPANY_ID and CONTACT_ID for the record's client: an organisation is
        a company, with the row's contact person as a contact of it; a person is a contact.
        Empty when the row names no client. Where the portal has the client twice, the one
        the client's deals made earlier have is kept (``_preferred``)."""
        client = self.clients[record.row_id]
        if not client.is_organisation:
            contact = self.contact(client, self._preferred(client, "CONTACT_ID"))
            return {} if contact is None else {"CONTACT_ID": contact}
        company = self.company(client, self._preferred(client, "COMPANY_ID"))
        out: dict[str, Any] = {"COMPANY_ID": company}
        person = client.persons.get(record.row_id)
        if person:
            out["CONTACT_ID"] = self.person(client, person, company)
        return out

    def _preferred(self, client: Client, key: str) -> int | None:
        """The contact or company (``key``) most of the client's deals made earlier have,
        whichever of its rows comes first in the sheet (a new row first chose the lower id
        of two, and every older deal of the client was then to move)."""
        if client.key in self.made_clients:
            return None  # chosen already, for all its rows
        had = Counter(
            i
            for r in client.rows
            if (i := _id_of(self.existing.deals.get(f"row:{r}"), key)) is not None
        )
        if not had:
            return None
        most = max(had.values())
        return min(i for i, n in had.items() if n == most)

    def contact(self, client: Client, prefer: int | None = None) -> Any:
        """A person client as one contact: every row of its group (rows sharing a phone
        or an e-mail, migrate/clients.py) gets the same one. An existing contact found by
        any of the group's phones or e-mails gains the ones it lacks; otherwise a new one
        is made with all of them. None when the row names no client."""
        if client.key in self.made_clients:
            return self.made_clients[client.key]
        if not (client.name or client.identifiers):
            return None
        found = sorted(
            {self.contacts[i] for i in client.identifiers if i in self.contacts}, key=str
        )
        if not found:  # a client once known by name alone: by the key it was made with
            keys = [f"contact:{client.key}", *(f"contact:row:{r}" for r in client.rows)]
            made = [self.existing.contacts_by_origin.get(k) for k in keys]
            found = sorted({m for m in made if m is not None})[:1]
        if found:
            contact = prefer if prefer in found else found[0]
            fields = self._missing(client, self.contacts)
            if isinstance(contact, int):
                fields.update(self._renamed(contact, client.name))
            if fields and isinstance(contact, int):
                self.plan.commands.append(
                    cmd.entity_update("contact", contact, fields, name=self.name("c"))
                )
                self.plan.count("contacts", "updated")
            else:
                self.plan.count("contacts", "unchanged")
        else:
            fields = {
                **_person(client.name),
                "ORIGINATOR_ID": self.mapping.originator,
                "ORIGIN_ID": f"contact:{client.key}",
                **self._comms(client.phones, client.emails),
            }
            command = cmd.entity_add("contact", fields, name=self.name("c"))
            self.plan.commands.append(command)
            self.plan.count("contacts", "created")
            contact = Ref(command.name)
        for i in client.identifiers:
            self.contacts.setdefault(i, contact)
        self.made_clients[client.key] = contact
        return contact

    def _missing(self, client: Client, known: dict[str, Any]) -> dict[str, Any]:
        """The client's phones and e-mails that no entity of the kind has yet."""
        missing = [v for v in (*client.phones, *client.emails) if identifier(v) not in known]
        return self._comms(
            [v for v in missing if v.startswith("+")],
            [v for v in missing if not v.startswith("+")],
        )

    def company(self, client: Client, prefer: int | None = None) -> Any:
        """An organisation client as one company (crm.company), found by any of its
        phones, e-mails or its name in another spelling («АгроМир ООО»); it gains the
        phones and e-mails it lacks, and one b24kit made is renamed with the sheet."""
        if client.key in self.made_clients:
            return self.made_clients[client.key]
        found = sorted(
            {self.companies[i] for i in client.identifiers if i in self.companies}, key=str
        )
        title = " ".join((client.name or "").split())
        made = self.existing.companies_by_origin.get(f"company:{client.key}")
        if not found and made is not None:  # one with no phone, e-mail or legal form
            found = [made]
        if found:
            company = prefer if prefer in found else found[0]
            fields = self._missing(client, self.companies)
            have = self.existing.companies.get(company) if isinstance(company, int) else None
            if (
                have is not None
                and have.get("ORIGINATOR_ID") == self.mapping.originator
                and str(have.get("TITLE") or "") != title
            ):
                fields["TITLE"] = title
            if fields and isinstance(company, int):
                self.plan.commands.append(
                    cmd.entity_update("company", company, fields, name=self.name("o"))
                )
                self.plan.count("companies", "updated")
            else:
                self.plan.count("companies", "unchanged")
        else:
            fields = {
                "TITLE": title,
                "COMPANY_TYPE": "CUSTOMER",
                "ORIGINATOR_ID": self.mapping.originator,
                "ORIGIN_ID": f"company:{client.key}",
                **self._comms(client.phones, client.emails),
            }
            command = cmd.entity_add("company", fields, name=self.name("o"))
            self.plan.commands.append(command)
            self.plan.count("companies", "created")
            company = Ref(command.name)
        for i in client.identifiers:
            self.companies.setdefault(i, company)
        self.made_clients[client.key] = company
        return company

    def person(self, client: Client, name: str, company: Any) -> Any:
        """An organisation's contact person: a contact of the company, found by the
        company and the name (each person once per company)."""
        key = (str(company), _plain_name(name))
        if key in self.persons:
            return self.persons[key]
        found = self.existing.persons.get((company, key[1])) if isinstance(company, int) else None
        if found is not None:
            self.plan.count("contacts", "unchanged")
            self.persons[key] = found
            return found
        org = organisation(client.name)
        fields = {
            **_person(name),
            "COMPANY_ID": company,
            "ORIGINATOR_ID": self.mapping.originator,
            "ORIGIN_ID": f"person:{org.key if org else client.key}:{key[1]}"[:255],
        }
        command = cmd.entity_add("contact", fields, name=self.name("p"))
        self.plan.commands.append(command)
        self.plan.count("contacts", "created")
        self.persons[key] = Ref(command.name)
        return self.persons[key]

    def _renamed(self, contact: int, name: str | None) -> dict[str, Any]:
        """NAME and LAST_NAME when the sheet renamed a client whose contact b24kit made
        (issue 10, item 5); a contact someone else made keeps its name."""
        have = self.existing.contacts.get(contact)
        if not name or have is None or have.get("ORIGINATOR_ID") != self.mapping.originator:
            return {}
        want = _person(name)
        same = all(str(have.get(k) or "") == v for k, v in want.items())
        return {} if same else want

    @staticmethod
    def _comms(phones: list[str], emails: list[str]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if phones:
            fields["PHONE"] = [{"VALUE": p, "VALUE_TYPE": "WORK"} for p in phones]
        if emails:
            fields["EMAIL"] = [{"VALUE": e, "VALUE_TYPE": "WORK"} for e in emails]
        return fields

    def contractor(self, record: Record) -> Any:
        """The record's contractor, a smart process item found by its phones (or by its
        title when it has none), else a new one; None when the record or the mapping has
        none. Returns its id or a Ref."""
        target, mapping = self.target, self.mapping
        if not (record.contractor and target.contractor_etid is not None and mapping.contractor):
            return None
        title = record.contractor["title"]
        by_name = contractor_key(title)
        keys = [identifier(p) for p in record.contractor["phones"]] or [by_name]
        owners = list(dict.fromkeys(self.contractors[k] for k in keys if k in self.contractors))
        contractor = owners[0] if owners else None
        if len(owners) > 1:  # its phones are two entries': the first one's is taken
            self.warn(
                record,
                f"contractor «{title}»: its phones are on the directory's "
                f"{' and '.join(f'«{self._titled(o)}»' for o in owners)}: taken as the first",
            )
        if (
            contractor is None
            and by_name in self.contractors
            and _same_form(title, self._titled(self.contractors[by_name]))
        ):
            # the same name with another phone: the same contractor, which gains the phone
            # (it was lost, and warned of again on every run), said so
            contractor = self.contractors[by_name]
            phones = record.contractor["phones"]
            self._add_phones(contractor, phones)
            for key in keys:
                self.contractors.setdefault(key, contractor)
            self.warn(
                record,
                f"contractor «{title}»: taken as the directory's «{self._titled(contractor)}» "
                f"by its name; its phone {', '.join(phones)} is added to that entry",
            )
            self.plan.count("contractors", "updated")
            return contractor
        elif contractor is not None and contractor_key(self._titled(contractor)) != by_name:
            # one phone, two names: two contractors sharing a dispatcher, or a typo
            self.warn(
                record,
                f"contractor «{title}» shares a phone with the directory's "
                f"«{self._titled(contractor)}»: taken as it (two names for one phone)",
            )
        if contractor is not None:
            self.plan.count("contractors", "unchanged")
            return contractor
        prefix = spa_uf_prefix(target.contractor_type_id or 0)
        item_fields = {
            "title": record.contractor["title"],
            "xmlId": f"{mapping.originator}:contractor:{keys[0]}",
            prefix + mapping.contractor.phone_field: ", ".join(record.contractor["phones"]),
        }
        for key, value in record.contractor["fields"].items():
            if value is None:
                continue
            items = target.contractor_enum_ids.get(prefix + key, {})
            # an enumeration's XML_ID (the mapping's value key) is written as its item id
            item_fields[prefix + key] = items.get(value, value) if isinstance(value, str) else value
        command = cmd.item_add(
            target.contractor_etid, item_fields, name=self.name("k"), original_names=True
        )
        self.plan.commands.append(command)
        self.plan.count("contractors", "created")
        contractor = Ref(command.name, ("item", "id"))
        for k in keys:
            self.contractors[k] = contractor
        self.contractors.setdefault(by_name, contractor)  # a later row naming it, no phone
        self.contractor_titles[contractor] = title
        self.contractor_phones[contractor] = ", ".join(record.contractor["phones"])
        return contractor

    def _add_phones(self, contractor: Any, phones: list[str]) -> None:
        """Write a directory entry's phone field with ``phones`` added (those it lacks),
        keeping the ones it has as they are written."""
        have = self.contractor_phones.get(contractor, "")
        known = {identifier(p) for p in _directory_phones(have)}
        new = [p for p in phones if identifier(p) not in known]
        if not new or self.mapping.contractor is None or self.target.contractor_etid is None:
            return
        text = ", ".join(p for p in (have.strip(), *new) if p)
        self.contractor_phones[contractor] = text
        prefix = spa_uf_prefix(self.target.contractor_type_id or 0)
        field_name = prefix + self.mapping.contractor.phone_field
        self.plan.commands.append(
            cmd.item_update(
                self.target.contractor_etid,
                contractor,
                {field_name: text},
                name=self.name("kp"),
                original_names=True,
            )
        )

    def _titled(self, contractor: Any) -> str:
        """A contractor's title: the portal's, or that of one this run makes."""
        return self.contractor_titles.get(contractor, "")

    def child(
        self,
        record: Record,
        child: ChildRecord,
        parent: Any,
        parent_fields: dict[str, Any],
        client: dict[str, Any],
        contractor: Any,
    ) -> str:
        """A child deal of the record's parent, then the parent's link fields pointing back
        to it when they are not so already."""
        target = self.target
        link, pipeline = target.link(child.rule.link)
        spec = self.specs.get(child.rule.link)
        if spec is None:
            spec = self.specs[child.rule.link] = child_link(link, pipeline)
        stage = target.stage_id(pipeline, child.stage or link.child.stage)
        own = {"TITLE": child.title or record.title, **_deal_fields(child.fields, target)}
        own.update(client)
        if child.rule.contractor and contractor is not None and target.contractor_etid:
            own[parent_field(target.contractor_etid)] = contractor
            if target.contractor_field:
                own[target.contractor_field] = as_ref_text(
                    contractor, item_ref(target.contractor_etid, "{}")
                )
        fields = child_fields(spec, parent, stage, parent_fields, own)
        origin = f"row:{record.row_id}:{child.rule.link}"
        have_child = self._existing_child(record, child.rule.link, parent)
        if have_child == {}:  # a child someone made by hand: left to them
            self.warn(
                record,
                f"the parent deal names a {child.rule.link} child the migration did not make; "
                "it is left alone (no second child)",
            )
            return ""
        move = None
        if have_child is not None:
            move, why = _forward(pipeline, str(have_child["STAGE_ID"]), stage)
            if why:
                self.warn(record, f"child deal ({child.rule.link}): {why}")
            stage = move or str(have_child["STAGE_ID"])
        child_id = self.deal(origin, fields, "children", move, have_child)
        back = back_fields(spec, child_id, stage)
        have = self.existing.deals.get(f"row:{record.row_id}")
        if back and (
            have is None
            or isinstance(child_id, Ref)
            or any(not _same(have.get(k), v) for k, v in back.items() if not isinstance(v, Ref))
        ):
            self.plan.commands.append(cmd.entity_update("deal", parent, back, name=self.name("l")))
        return stage

    def _close_implied(
        self,
        name: str,
        child: dict[str, Any],
        pipeline: PipelineSnap,
        parent_stage: str,
        parent: Any = None,
    ) -> str:
        """A child of a link the mapping does not name (the migration made it as sync
        would) closes with its parent: won with a won parent, lost with a lost one, so a
        sale the sheet closes leaves no open task under it (audit's L006). Returns the
        child's stage after this run."""
        stage = str(child.get("STAGE_ID") or "")
        closed = next((s for s in pipeline.stages if s.status_id == parent_stage), None)
        child_pipeline = self.target.link(name)[1]
        now = next((s for s in child_pipeline.stages if s.status_id == stage), None)
        if name not in self.target.implied or closed is None or now is None:
            return stage
        if closed.semantics == "process" or now.semantics != "process":
            return stage
        to = next((s for s in child_pipeline.stages if s.semantics == closed.semantics), None)
        if to is None:
            return stage
        self.plan.commands.append(
            cmd.entity_update(
                "deal", int(child["ID"]), {"STAGE_ID": to.status_id}, name=self.name("x")
            )
        )
        self.plan.count("children", "updated")
        link = self.target.link(name)[0]
        if link.mirror_field and parent is not None:  # the parent shows the child's stage
            mirror = {uf_name(link.mirror_field): to.name}
            self.plan.commands.append(
                cmd.entity_update("deal", parent, mirror, name=self.name("x"))
            )
        return to.status_id

    def _existing_child(self, record: Record, link: str, parent: Any) -> dict[str, Any] | None:
        """The parent's existing child by the link: the one a migration made (its row's
        key), or the one sync made ("<link>:<parent id>"); {} when the parent's own field
        points to a child neither made; None when there is none."""
        found = self.existing.deals.get(f"row:{record.row_id}:{link}")
        if found is not None or not isinstance(parent, int):
            return found
        found = self.existing.linked.get(f"{link}:{parent}")
        if found is not None:
            return found
        rule = self.target.link(link)[0]
        have = self.existing.deals.get(f"row:{record.row_id}") or {}
        pointed = str(have.get(uf_name(rule.parent_field)) or "") if rule.parent_field else ""
        return {} if re.fullmatch(r"D_\d+", pointed) else None

    def _closed_with_open_child(
        self, record: Record, pipeline: PipelineSnap, parent: str, kids: list[str]
    ) -> None:
        """Said in the dry run: a parent the sheet closes while its child stays open
        (audit's L006); map the child's stage for the closing words too."""
        semantics = {s.status_id: s.semantics for s in pipeline.stages}
        if semantics.get(parent, "process") == "process":
            return
        linked = [*self.target.children.values(), *self.target.implied.values()]
        every = {s.status_id: s.semantics for _, p in linked for s in p.stages}
        if any(every.get(kid) == "process" for kid in kids):
            self.warn(
                record,
                "the parent deal is closed and its child stays open: give the child's "
                "stage map the sheet's closing words too",
            )

    def comment(self, record: Record, parent: Any) -> None:
        """The record's comment on its parent deal, once: marked so a re-run finds it; one
        edited in the sheet updates the comment b24kit wrote (issue 10, item 5)."""
        marker = f"[b24kit {self.mapping.originator} row {record.row_id}]"
        text = f"{record.comment}\n\n{marker}"
        have = self.existing.markers.get(marker)
        if have is None:
            self.plan.commands.append(cmd.comment_add("deal", parent, text, name=self.name("t")))
            self.plan.count("comments", "created")
        elif have[1].strip() != text.strip() and have[0]:
            self.plan.commands.append(cmd.comment_update(have[0], text, name=self.name("t")))
            self.plan.count("comments", "updated")
        else:
            self.plan.count("comments", "unchanged")


def _forward(pipeline: PipelineSnap, have: str, want: str) -> tuple[str | None, str | None]:
    """An existing deal's stage against the sheet's (issue 10, item 5): (the stage to move
    it to, or None; a warning, or None). Forward along the pipeline only: a migration
    never moves a deal back, nor reopens or re-closes a closed one (people and sync move
    deals after a migration, and a re-run must not undo their work)."""
    if have == want:
        return None, None
    stages = {s.status_id: s for s in pipeline.stages}
    at, to = stages.get(have), stages.get(want)
    if at is None or to is None:
        return None, f"stage {have} is not in its pipeline; the sheet's stage is not written"
    if at.semantics != "process":
        return None, (
            f"the deal is closed at «{at.name}»; the sheet's «{to.name}» is not written "
            "(a migration never reopens or re-closes a deal)"
        )
    if to.sort > at.sort:
        return want, None
    return None, (
        f"the sheet's «{to.name}» is behind the deal's stage «{at.name}» on the portal; "
        "the deal stays (a migration never moves a deal back)"
    )


def _moved_parent(
    link: Link, parent: PipelineSnap, child: PipelineSnap, child_stage: str, parent_stage: str
) -> str | None:
    """The stage the child's stage moves its open parent to by the link's moves, when the
    parent is not there yet (audit's L005: sync would move it); None otherwise."""
    by_id = {s.status_id: s for s in parent.stages}
    code = next((s.code for s in child.stages if s.status_id == child_stage), None)
    target_code = next((m.parent_stage for m in link.moves if m.child_stage == code), None)
    target = next((s for s in parent.stages if s.code == target_code), None)
    at = by_id.get(parent_stage)
    if target is None or at is None or at.semantics != "process" or at.sort >= target.sort:
        return None
    return target.status_id


def _quote(
    link: Link,
    parent: PipelineSnap,
    parent_stage: str,
    child: PipelineSnap,
    child_stage: str,
    record: ChildRecord,
    have: dict[str, Any] | None,
) -> dict[str, Any]:
    """The quote a move records on the parent (the link's moves[].record), as sync records
    it: the child's amount, once the parent is at or past the move's stage, and only when
    the parent's field is empty. A migration knows no moment the estimate was given: the
    time is left to the portal's history."""
    code = next((s.code for s in child.stages if s.status_id == child_stage), None)
    move = next((m for m in link.moves if m.child_stage == code and m.record), None)
    amount = record.fields.get("OPPORTUNITY")
    if move is None or move.record is None or not move.record.price or amount is None:
        return {}
    sorts = {s.status_id: s.sort for s in parent.stages}
    target = next((s.sort for s in parent.stages if s.code == move.parent_stage), None)
    if target is None or sorts.get(parent_stage, -1) < target:
        return {}
    name = uf_name(move.record.price)
    if have is not None and have.get(name) not in (None, "", False):
        return {}
    return {name: amount}


def _needs_child(link: Link, pipeline: PipelineSnap, stage_id: str) -> bool:
    """An open parent at or past the link's trigger stage needs its child (audit's L001):
    the migration makes it, as sync would, even when the row names nobody for it."""
    stages = {s.status_id: s for s in pipeline.stages}
    at = stages.get(stage_id)
    trigger = next((s for s in pipeline.stages if s.code == link.parent.stage), None)
    if at is None or trigger is None:
        return False
    return at.semantics == "process" and at.sort >= trigger.sort


def child_link(link: Link, pipeline: PipelineSnap) -> ChildLink:
    return ChildLink(
        link.name,
        pipeline.id,
        uf_name(link.child_field),
        uf_name(link.parent_field) if link.parent_field else None,
        uf_name(link.mirror_field) if link.mirror_field else None,
        tuple(link.copy_fields),
        {s.status_id: s.name for s in pipeline.stages},
    )


def select_fields(mapping: Mapping, target: Target) -> list[str]:
    names = set(mapping.parent.fields)
    for rule in mapping.children:
        names |= set(rule.fields)
    for link, _ in [*target.children.values(), *target.implied.values()]:
        names |= {uf_name(x) for x in (link.child_field, link.parent_field, link.mirror_field) if x}
        names |= {uf_name(m.record.price) for m in link.moves if m.record and m.record.price}
    if target.contractor_field:
        names.add(target.contractor_field)
    if target.contractor_etid is not None:
        names.add(parent_field(target.contractor_etid))  # the contractor relation
    return sorted(names)
