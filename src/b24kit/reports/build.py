"""``build_report``: the one call every renderer shares (terminal, files, the HTML page,
the Google Sheet): read the portal once, make the tables asked for."""

from __future__ import annotations

from typing import Any

from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client
from b24kit.errors import InputError
from b24kit.reports.estimates import ESTIMATE_COLUMNS, estimates_report
from b24kit.reports.model import ReportTable
from b24kit.reports.read import Filters, ReportStore, Scope, read_portal, resolve_scope
from b24kit.reports.tables import (
    CONTRACTOR_COLUMNS,
    DEPARTMENT_COLUMNS,
    SOURCE_COLUMNS,
    StoredRows,
    build_contractors,
    build_departments,
    build_projects,
    build_sources,
    project_columns,
)

REPORTS = ("projects", "sources", "contractors", "estimates", "departments")
TITLES = {
    "projects": "Projects: from the first contact to closed obligations",
    "sources": "First-contact sources: projects, won, revenue, cheque growth, conversion",
    "contractors": "Contractors: estimates, won, price, rating, unpaid, last used",
    "estimates": "Estimates per person and month",
    "departments": "Departments: open items, time per stage, overdue",
}
EMPTY = {
    "projects": "No projects: no deal in the links' parent pipelines matches the filters.",
    "sources": "No sources: no project matches the filters.",
    "contractors": "No contractors: the directory is empty and no estimate names one.",
    "departments": "No departments: the blueprint's links have no child pipeline.",
}


class Report:
    """The tables of one reading of the portal. Some tables keep their rows in the
    reading's store (a file removed on :meth:`close`): render them before closing."""

    def __init__(self, tables: list[ReportTable], store: ReportStore | None) -> None:
        self.tables = tables
        self.store = store

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def build_report(
    client: B24Client,
    bp: Blueprint,
    names: list[str],
    filters: Filters | None = None,
    link: str | None = None,
) -> Report:
    """The tables ``names`` (of :data:`REPORTS`, in that order), from one reading."""
    for name in names:
        if name not in REPORTS:
            raise InputError(f"unknown report {name!r}; known: {', '.join(REPORTS)}")
    filters = filters or Filters()
    tables: list[ReportTable] = []
    store: ReportStore | None = None
    try:
        if any(n != "estimates" for n in names):
            scope = await resolve_scope(client, bp)
            store = await read_portal(client, scope, filters)
        for name in names:
            if name == "estimates":
                tables.append(await _estimates(client, bp, link))
                continue
            assert store is not None
            tables.append(_table(name, store, scope, filters))
    except BaseException:
        if store is not None:
            store.close()
        raise
    return Report(tables, store)


def _table(name: str, store: ReportStore, scope: Scope, filters: Filters) -> ReportTable:
    if name == "projects":
        rows = store_projects(store, scope)
        return ReportTable(name, TITLES[name], project_columns(scope), rows, EMPTY[name])
    if name == "sources":
        return ReportTable(
            name,
            TITLES[name],
            SOURCE_COLUMNS,
            build_sources(store_projects(store, scope)),
            EMPTY[name],
        )
    if name == "contractors":
        return ReportTable(
            name, TITLES[name], CONTRACTOR_COLUMNS, build_contractors(store, scope), EMPTY[name]
        )
    return ReportTable(
        name,
        TITLES[name],
        DEPARTMENT_COLUMNS,
        build_departments(store, scope, filters),
        EMPTY[name],
    )


def store_projects(store: ReportStore, scope: Scope) -> StoredRows:
    """The projects' rows, made once per reading (the sources table reads them too)."""
    if not isinstance(store.projects, StoredRows):
        store.projects = build_projects(store, scope)
    return store.projects


async def _estimates(client: B24Client, bp: Blueprint, link: str | None) -> ReportTable:
    rows = [r.as_dict() for r in await estimates_report(client, bp, link)]
    name = link or bp.links[0].name
    empty = (
        f"No estimates to report for link {name!r}: no child has reached the approval "
        "stage after its parent entered the trigger stage (deals migrated with their "
        "stages have no such history)."
    )
    return ReportTable("estimates", f"Estimates ({name})", ESTIMATE_COLUMNS, rows, empty)
