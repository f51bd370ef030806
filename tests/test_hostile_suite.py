"""The hostile-input corpus of tests/hostile/ (issue 16): every broken or hostile blueprint
is refused by ``apply -p sandbox --yes`` and every broken sheet or mapping by ``migrate
run -p sandbox --yes``, on a sandbox where the company blueprint was applied, with exit 2,
one error line naming the file and line (or the sheet's row and column), no traceback, and
the portal's database unchanged, row for row. ``--yes``: a check that let one through
would write.

The cases and what each error says are in tests/hostile/cases.yaml; those made at test
time in tests/hostile/make.py. Inputs that look hostile and are fine (markup in names,
formulas in cells, a BOM and semicolons) are accepted: the last tests here."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import ROOT, CliResult, run_cli

HOSTILE = ROOT / "tests" / "hostile"
CASES: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load(
    (HOSTILE / "cases.yaml").read_text(encoding="utf-8")
)
sys.path.insert(0, str(HOSTILE))
import make  # noqa: E402  (tests/hostile/make.py)

NOTES = ("Target: ", "Using the local sandbox portal")  # where a command says which portal


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a sandbox database, in the order it keeps them."""
    conn = sqlite3.connect(db)
    try:
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'").fetchall()
        return {
            name: conn.execute(
                f'SELECT * FROM "{name}"' + ("" if "WITHOUT ROWID" in sql else " ORDER BY rowid")
            ).fetchall()
            for name, sql in tables
        }
    finally:
        conn.close()


@pytest.fixture
def portal(tmp_path: Path, deployed_db: Path) -> Path:
    """tmp_path with a deployed sandbox in .b24kit/, where ``-p sandbox`` finds it."""
    (tmp_path / ".b24kit").mkdir()
    shutil.copy(deployed_db, tmp_path / ".b24kit" / "sandbox.sqlite")
    return tmp_path


def run(portal: Path, *args: str) -> tuple[CliResult, bool]:
    """Run b24kit in ``portal``; whether the portal's database is as it was. The same
    bytes (and no write-ahead log beside them) are the same rows; a file whose bytes
    changed (a write undone still changes its header) is compared row for row with a
    copy of it as it was."""
    db = portal / ".b24kit" / "sandbox.sqlite"
    before = db.read_bytes()
    result = run_cli(*args, cwd=portal, env={"XDG_CONFIG_HOME": str(portal / "cfg")})
    if db.read_bytes() == before and not db.with_name(db.name + "-wal").exists():
        return result, True
    was = portal / "sandbox-before.sqlite"
    was.write_bytes(before)
    return result, dump(db) == dump(was)


def assert_refused(
    result: CliResult, unchanged: bool, case: dict[str, Any], folder: Path | None = None
) -> None:
    """Exit 2 (or the case's), no traceback, one line with the case's ``where`` and
    ``error`` (paths in it relative to ``folder``), at most one line more, nothing written."""
    err = result.stderr
    assert result.returncode == case.get("exit", 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if folder is not None:
        err = err.replace(f"{folder}/", "")
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(NOTES)]
    assert 1 <= len(lines) <= 2, f"one error line (and a summary or hint at most):\n{err}"
    named = [ln for ln in lines if case["where"] in ln and case["error"] in ln]
    assert len(named) == 1, f"expected {case['where']}: {case['error']}\n{err}"
    assert unchanged, "the portal was written to"


def mirror(tmp_path: Path, folder: Path) -> Path:
    """A copy of a corpus folder at its place in a copy of the project (the blueprints as
    links), so a mapping's relative paths hold and nothing is written into the project."""
    repo = tmp_path / "repo"
    (repo / "tests" / "hostile").mkdir(parents=True)
    os.symlink(ROOT / "blueprints", repo / "blueprints")
    os.symlink(HOSTILE / "blueprints", repo / "tests" / "hostile" / "blueprints")
    copy = repo / folder.relative_to(ROOT)
    shutil.copytree(folder, copy)
    return copy


def test_the_corpus_is_whole() -> None:
    on_disk = {p.stem for p in (HOSTILE / "blueprints").glob("*.yaml")}
    listed = CASES["blueprints"]
    assert on_disk == {n for n, c in listed.items() if not c.get("make")}
    assert {n for n, c in listed.items() if c.get("make")} == set(make.BLUEPRINTS)
    sheets = {p.name for p in (HOSTILE / "sheets").iterdir()}
    assert sheets == set(CASES["sheets"])
    assert {n for n, c in CASES["sheets"].items() if c.get("make")} == set(make.SHEETS)
    assert len(listed) >= 40 and len(sheets) >= 30, "issue 16's acceptance point"
    committed = [p for p in HOSTILE.rglob("*") if p.is_file()]
    assert max(p.stat().st_size for p in committed) < 50_000, "big cases are made, not kept"


@pytest.mark.parametrize("name", sorted(CASES["blueprints"]))
def test_hostile_blueprint(name: str, portal: Path) -> None:
    case = CASES["blueprints"][name]
    path = (
        make.BLUEPRINTS[name](portal)
        if case.get("make")
        else HOSTILE / "blueprints" / f"{name}.yaml"
    )
    result, unchanged = run(portal, "apply", str(path), "-p", "sandbox", "--yes")
    assert_refused(result, unchanged, case)


@pytest.mark.parametrize("name", sorted(CASES["sheets"]))
def test_hostile_sheet(name: str, portal: Path) -> None:
    case = CASES["sheets"][name]
    folder = mirror(portal, HOSTILE / "sheets" / name)
    if case.get("make"):
        make.SHEETS[name](folder)
    mapping = folder / "mapping.yaml"
    result, unchanged = run(portal, "migrate", "run", str(mapping), "-p", "sandbox", "--yes")
    assert_refused(result, unchanged, case, folder)


def test_markup_in_names_is_accepted_and_shown_escaped(portal: Path) -> None:
    result, unchanged = run(
        portal, "apply", str(HOSTILE / "accepted" / "markup-names.yaml"), "-p", "sandbox", "--yes"
    )
    assert result.returncode == 0 and not unchanged, result.stderr
    for name in ("[red]Хост[/] продажи", "[bold]Новая", "Оценить [/]", "[link=http://evil"):
        assert name in result.stdout, f"{name} is shown as written:\n{result.stdout}"
    with sqlite3.connect(portal / ".b24kit" / "sandbox.sqlite") as conn:
        written = {r[0] for r in conn.execute("SELECT name FROM categories")}
        written |= {r[0] for r in conn.execute("SELECT name FROM statuses")}
    assert {"[red]Хост[/] продажи", "Оценить [/]", "\\[escaped] провал"} <= written


ACCEPTED = sorted(p.name for p in (HOSTILE / "accepted" / "sheets").iterdir())


@pytest.mark.parametrize("name", ACCEPTED)
def test_sheets_that_look_hostile_and_are_fine(name: str, portal: Path) -> None:
    folder = mirror(portal, HOSTILE / "accepted" / "sheets" / name)
    if name in make.ACCEPTED:
        make.ACCEPTED[name](folder)
    mapping = str(folder / "mapping.yaml")
    if name == "formula-cells":  # the dry run lists the warnings
        result, _ = run(portal, "migrate", "run", mapping, "-p", "sandbox", "--dry-run")
        warned = [ln for ln in result.stderr.splitlines() if "spreadsheet formula" in ln]
        assert [ln.split(":")[0] for ln in warned] == [
            "warning row 2 (№ 1) Груз",
            "warning row 3 (№ 2) Клиент",
        ]
    result, unchanged = run(portal, "migrate", "run", mapping, "-p", "sandbox", "--yes")
    assert result.returncode == 0 and not unchanged, result.stderr
    assert "rows read 2, valid 2, rejected 0" in result.stdout, result.stdout + result.stderr
    with sqlite3.connect(portal / ".b24kit" / "sandbox.sqlite") as conn:
        titles = {r[0] for r in conn.execute("SELECT json_extract(data, '$.TITLE') FROM items")}
    if name == "formula-cells":
        assert 'ООО Тяжмаш: =HYPERLINK("http://evil.example";"погрузчик")' in titles, titles
    else:
        assert {"ООО Тяжмаш: погрузчик", "ИП Сидоров: щебень"} <= titles, titles
