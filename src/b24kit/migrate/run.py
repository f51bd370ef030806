"""Run a migration: read the sheet, validate, read what exists, plan, execute, report."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from b24kit.blueprint.loader import (
    BlueprintError,
    BlueprintIssue,
    Mark,
    load_blueprint,
    read_yaml,
    schema_errors,
    unknown_key,
)
from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client, Executor, Outcome, read_all
from b24kit.errors import InputError
from b24kit.links.directory import refresh_stats
from b24kit.migrate.columns import missing_columns, repeated_columns
from b24kit.migrate.mapping import Mapping
from b24kit.migrate.plan import (
    DealsMoved,
    Finding,
    MigrationPlan,
    plan_migration,
    read_existing,
    read_records,
    resolve_target,
    rows_gone,
    select_fields,
)
from b24kit.migrate.rules import check_portal_fields, check_rules, check_users, status_lists
from b24kit.migrate.sources import Table, gspread_client, read_csv, read_gsheet, read_xlsx, to_table
from b24kit.migrate.todo import TodosLeft, todo_issues
from b24kit.portal.snapshot import Snapshot, read_snapshot
from b24kit.portal.users import read_users


def load_mapping(path: Path) -> Mapping:
    """The mapping file, checked: first for the TODOs a draft left (all of them listed at
    once, each at its line), then against the mapping's schema."""
    doc = read_yaml(path)
    todos = todo_issues(doc)
    if todos:
        raise TodosLeft(todos)
    try:
        mapping = Mapping.model_validate(doc.data)
        mapping._document = doc  # where each of its values is, for later checks
        return mapping
    except ValidationError as exc:
        issues = []
        for error in schema_errors(Mapping, exc):
            loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
            message = (
                unknown_key(Mapping, loc) if error["type"] == "extra_forbidden" else error["msg"]
            )
            issues.append(BlueprintIssue(doc.mark(loc), f"{'.'.join(map(str, loc))}: {message}"))
        raise BlueprintError(issues) from None


def load_table(
    mapping: Mapping,
    base: Path,
    sheets_endpoint: str | None = None,
    credentials: Path | None = None,
) -> Table:
    source = mapping.source
    try:
        if source.csv:
            grid = read_csv(base / source.csv, source.encoding)
        elif source.xlsx:
            grid = read_xlsx(base / source.xlsx, source.worksheet)
        elif source.sheet:
            grid = read_gsheet(
                gspread_client(credentials, sheets_endpoint), source.sheet, source.worksheet
            )
        else:
            raise InputError("the mapping's source needs csv, xlsx or sheet")
    except OSError as exc:  # the file the mapping names: missing, a directory, unreadable
        key = "csv" if source.csv else "xlsx" if source.xlsx else None
        if key is None or exc.filename is None:
            raise
        _refuse_at(mapping, ("source", key), f"cannot read {exc.filename}: {exc.strerror}")
    return to_table(grid, source.header_rows)


def _refuse_at(mapping: Mapping, path: tuple[str, ...], message: str) -> NoReturn:
    doc = mapping.document
    mark = doc.mark(path) if doc is not None else Mark("mapping", 1, 1)
    raise BlueprintError([BlueprintIssue(mark, f"{'.'.join(path)}: {message}")])


def check_table(mapping: Mapping, table: Table) -> None:
    """A sheet the mapping cannot be read against is refused before anything else: a
    column the mapping names and the header lacks (each at the mapping's file:line), or a
    sheet with no rows under its header."""
    sheet = f"{table.source}" + (f" [{table.worksheet}]" if table.worksheet else "")
    if not table.headers:
        raise InputError(f"{sheet}: the sheet is empty: no header, no rows")
    issues = missing_columns(mapping, table.headers, mapping.document, sheet)
    issues += repeated_columns(mapping, table.repeated, mapping.document, sheet)
    if issues:
        raise BlueprintError(issues)
    if not any(not (row.blank or row.repeats_header(table.headers)) for row in table.rows):
        raise InputError(
            f"{sheet}: no rows under the header (only blank rows or the header again): "
            "nothing to migrate"
        )


def _refuse(issues: list[BlueprintIssue]) -> None:
    if issues:
        raise BlueprintError(issues)


@dataclass
class MigrationResult:
    rows: int
    records: int
    findings: list[Finding]
    plan: MigrationPlan
    outcomes: list[Outcome] = field(default_factory=list)
    dry_run: bool = True

    changes: Counter[str] = field(default_factory=Counter)  # of the valid rows' values
    # the blueprint the run writes by: its directories' stats are refreshed after the run
    blueprint: Blueprint | None = None
    directory_writes: int = 0  # stats and links the directories' refresh wrote
    # the portal's structure (pipelines, fields, smart processes) the plan was made by:
    # the refresh after the run reads the directories by it, as a migration writes deals,
    # contacts, items and comments, never structure (one snapshot read less a run)
    snapshot: Snapshot | None = None

    @property
    def rejected_rows(self) -> int:
        return len({(f.worksheet, f.row) for f in self.findings if f.kind == "rejected"})

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows,
            "valid_rows": self.records,
            "rejected_rows": self.rejected_rows,
            "warnings": sum(f.kind == "warning" for f in self.findings),
            "changed_values": dict(sorted(self.changes.items())),
            "entities": self.plan.counts,
            "commands": len(self.plan.commands),
            "failed_commands": len(self.failed),
            "directory_stats_written": self.directory_writes,
            "dry_run": self.dry_run,
        }


async def prepare(
    client: B24Client,
    mapping: Mapping,
    mapping_dir: Path,
    sheets_endpoint: str | None = None,
    credentials: Path | None = None,
    reassign_deals: bool = False,
) -> MigrationResult:
    """Read the sheet and the portal and plan the run; nothing is written. Refused
    (``DealsMoved``) when the plan would make deals it made earlier other projects,
    unless ``reassign_deals``."""
    table = load_table(mapping, mapping_dir, sheets_endpoint, credentials)
    check_table(mapping, table)
    records, findings = read_records(table, mapping)
    blueprint_file = (mapping_dir / mapping.blueprint).resolve()
    if not blueprint_file.is_file():
        _refuse_at(mapping, ("blueprint",), f"no blueprint file {blueprint_file}")
    blueprint, _ = load_blueprint(blueprint_file)
    _refuse(check_rules(mapping, blueprint))
    users = await read_users(client, [i for i in mapping.users.values() if i > 0])
    _refuse(check_users(mapping, users))
    if users is None and mapping.users:
        findings.append(
            Finding(
                "warning",
                "",
                0,
                "users",
                "",
                "user ids not checked: the webhook may not read users (scope user)",
            )
        )
    snapshot = await read_snapshot(client)
    target = resolve_target(mapping, blueprint, snapshot)
    deal_fields = await client.call("crm.deal.fields")
    statuses = {
        kind: [
            str(s.get("STATUS_ID"))
            for s in await read_all(client, "crm.status.list", {"filter": {"ENTITY_ID": kind}})
        ]
        for kind in status_lists(mapping, deal_fields)
    }
    _refuse(check_portal_fields(mapping, deal_fields, target.enum_ids, statuses))
    existing = await read_existing(
        client,
        mapping,
        target,
        select_fields(mapping, target),
        commented={str(r.row_id) for r in records if r.comment},
    )
    plan = plan_migration(records, mapping, target, existing)
    if plan.rebinds and not reassign_deals:
        raise DealsMoved(plan.rebinds, mapping.originator)
    # the clients whose rows name them differently, the values kept, the rows gone
    findings = findings + plan.findings + rows_gone(table, mapping, existing)
    changes: Counter[str] = sum((r.changes for r in records), Counter())
    return MigrationResult(
        len(table.rows),
        len(records),
        findings,
        plan,
        changes=changes,
        blueprint=blueprint,
        snapshot=snapshot,
    )


async def execute(
    client: B24Client, result: MigrationResult, progress: Callable[[int, int], None] | None = None
) -> MigrationResult:
    result.outcomes = await Executor(client, progress=progress).run(result.plan.commands)
    result.dry_run = False
    bp = result.blueprint
    if bp is not None and bp.directories and not result.failed:
        # the contractors the run made or used carry their history at once (audit's D003),
        # as the next sync pass would write it: the stats only, said before and after
        refreshed = await refresh_stats(client, bp, result.snapshot)
        result.outcomes += refreshed.outcomes
        result.directory_writes = sum(o.ok for o in refreshed.outcomes)
    return result


def write_report(path: Path, result: MigrationResult) -> None:
    rows = [f.as_dict() for f in result.findings]
    for outcome in result.failed:
        rows.append(
            {
                "kind": "failed",
                "worksheet": "",
                "row": "",
                "row_id": "",
                "column": "",
                "value": outcome.method,
                "reason": str(outcome.error),
            }
        )
    if path.suffix == ".json":
        path.write_text(
            json.dumps(
                {"summary": result.summary(), "findings": rows}, ensure_ascii=False, indent=1
            ),
            encoding="utf-8",
        )
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        columns = ["kind", "worksheet", "row", "row_id", "column", "value", "reason"]
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({k: inert(v) for k, v in row.items()} for row in rows)


def inert(value: Any) -> Any:
    """A cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first: OWASP's
    CSV-injection rule) is written with a leading apostrophe; the text is kept."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
