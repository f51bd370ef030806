"""A part of the example sheet (examples/projects.csv) for tests that edit a migrated
sheet and run the migration again, where the sheet's 300 rows are not the point: each
re-run reads, plans and checks every row, three times a test.

It keeps, in the sheet's order:

- the rows the edit tests pick (the predicates below: the first migrated row that is
  «новая» with no child, ...): the first match in the part is the first in the whole
  sheet, since every earlier row of the sheet that matches would have been kept;
- for every client the tests edit as a client (a rename, a new phone or e-mail), one row
  for each way the sheet writes it (name, phone, e-mail as spelt), and its last row: the
  rows that find the same contact or company by its phone and must keep finding it;
- for every other client, its first three rows, its first with an e-mail, and its last;
- for every contractor, one row for each way the sheet writes its phone;
- for every status as the sheet spells it, a row with a child (a logist or contractor)
  and a row without;
- every rejected row (examples/projects.expected.json), so a re-run still meets the
  sheet's faults: a repeated row id, a blank row, a repeated header, a bad phone.

Tests that count what the whole sheet makes (projects.expected.json) use the whole sheet.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.once import once_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXPECTED = json.loads((EXAMPLES / "projects.expected.json").read_text(encoding="utf-8"))

Row = dict[str, str]


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def fresh(r: Row) -> bool:
    """«Новая», with no logist or contractor: no child yet."""
    return norm(r["Статус"]) == "новая" and not r["Логист"].strip() and not r["Подрядчик"]


def estimating(r: Row) -> bool:
    """Being estimated, by a logist: a child in the logistics pipeline."""
    return norm(r["Статус"]) in ("оценить", "считаем") and bool(r["Логист"].strip())


def estimating_priced(r: Row) -> bool:
    """Being estimated, by a logist, with the contractor's price."""
    return estimating(r) and bool(r["Себестоимость"].strip())


def paid(r: Row) -> bool:
    return norm(r["Статус"]) == "оплачено"


def contract(r: Row) -> bool:
    """At «Договор»: an engineer's task under it."""
    return norm(r["Статус"]) == "договор"


def commented(r: Row) -> bool:
    return bool(r["Комментарий"].strip())


def priced_447_200(r: Row) -> bool:
    return r["Цена"].strip() == "447 200 ₽"


def client(name: str) -> Callable[[Row], bool]:
    def named(r: Row) -> bool:
        return r["Клиент"] == name

    return named


EDITED_CLIENTS = ("Иван Сидоров", "ООО Тяжмаш", "ООО Вектор")
PICKS: list[Callable[[Row], bool]] = [
    fresh,
    estimating,
    estimating_priced,
    paid,
    contract,
    commented,
    priced_447_200,
    *(client(name) for name in EDITED_CLIENTS),
]


@dataclass(frozen=True)
class Subset:
    header: list[str]
    rows: list[Row]
    rejected: frozenset[int]  # sheet rows (the header is row 1) the migration rejects

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()


def _kept(rows: list[Row], rejected: set[int]) -> set[int]:
    """The indices of ``rows`` kept (see the module's docstring)."""
    keep = set(rejected)
    valid = [i for i in range(len(rows)) if i not in rejected]
    for pick in PICKS:
        keep.add(next(i for i in valid if pick(rows[i])))
    by_client: dict[str, list[int]] = {}
    for i in valid:
        by_client.setdefault(rows[i]["Клиент"], []).append(i)
    for name, mine in by_client.items():
        keep.add(mine[-1])
        if name in EDITED_CLIENTS:
            spellings: dict[tuple[str, str], int] = {}
            for i in mine:
                spellings.setdefault((rows[i]["Телефон"], rows[i]["Email"]), i)
            keep.update(spellings.values())
        else:
            keep.update(mine[:3])
            keep.update([i for i in mine if rows[i]["Email"].strip()][:1])
    contractors: dict[tuple[str, str], int] = {}
    statuses: dict[tuple[str, bool], int] = {}
    for i in valid:
        r = rows[i]
        if r["Подрядчик"].strip():
            contractors.setdefault((r["Подрядчик"], r["Телефон подрядчика"]), i)
        child = bool(r["Логист"].strip() or r["Подрядчик"].strip())
        statuses.setdefault((r["Статус"], child), i)
    keep.update(contractors.values())
    keep.update(statuses.values())
    return keep


def subset() -> Subset:
    """The part of the example sheet, and which of its rows the migration rejects."""
    text = (EXAMPLES / "projects.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    rejected = {int(n) - 2 for n in EXPECTED["rejected"]}  # sheet row n is rows[n - 2]
    kept = sorted(_kept(rows, rejected))
    return Subset(
        header=list(reader.fieldnames or []),
        rows=[rows[i] for i in kept],
        rejected=frozenset(n for n, i in enumerate(kept, start=2) if i in rejected),
    )


def make_home(home: Path, db: Path) -> None:
    """``home`` as a project folder: the examples (the part of the sheet in place of the
    whole), the blueprints, and a copy of ``db`` as the ``-p sandbox`` portal."""
    shutil.copytree(EXAMPLES, home / "examples")
    shutil.copytree(ROOT / "blueprints", home / "blueprints")
    (home / "examples" / "projects.csv").write_text(subset().csv_text(), encoding="utf-8")
    (home / ".b24kit").mkdir()
    shutil.copy(db, home / ".b24kit" / "sandbox.sqlite")


def migrated(tmp_path_factory: pytest.TempPathFactory, deployed_db: Path) -> Path:
    """A sandbox database where the part of the sheet was migrated (`migrate run`, in
    process) into the deployed company blueprint, once per test run (tests/once.py)."""

    def make(path: Path) -> None:
        home = tmp_path_factory.mktemp("subset-migrated")
        make_home(home, deployed_db)
        run = ["migrate", "run", "examples/projects.mapping.yaml", "-p", "sandbox", "--yes"]
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(home)
            mp.setenv("XDG_CONFIG_HOME", str(home / "cfg"))
            done = run_cli(*run)
            assert done.code == 0, done.stdout + done.stderr
        shutil.copy(home / ".b24kit" / "sandbox.sqlite", path)

    return once_file(tmp_path_factory, "example-subset-migrated.sqlite", make)
