"""A mapping is checked against the sheet's header before anything is read or written
(issue 16, item 3): a column it names that the sheet lacks is one error at the mapping's
file:line, with the closest header offered; a sheet with no rows under its header is
refused. Both exit 2, nothing written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from b24kit.migrate.columns import named_columns
from b24kit.migrate.run import load_mapping
from tests import example_subset
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "examples" / "projects.mapping.yaml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "blueprints", tmp_path / "blueprints")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path / "examples" / "projects.mapping.yaml"


def invoke(*args: str) -> tuple[int, str]:
    """``b24kit ARGS`` in this process (tests/cli.py): its exit code, its stdout and stderr."""
    result = run_cli(*args)
    return result.code, result.stdout + result.stderr


def dry_run(mapping: Path) -> tuple[int, str]:
    return invoke("migrate", "run", str(mapping), "--portal", "sandbox", "--dry-run")


def edit(mapping: Path, old: str, new: str) -> int:
    text = mapping.read_text(encoding="utf-8")
    assert old in text, old
    mapping.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text.split(old, 1)[0].count("\n") + 1  # the line it is on


def test_every_column_the_example_names_is_found() -> None:
    named = named_columns(load_mapping(MAPPING))
    assert len(named) >= 15 and ("parent", "fields", "OPPORTUNITY", "column") in {
        p for p, _ in named
    }
    header = (ROOT / "examples" / "projects.csv").read_text(encoding="utf-8").splitlines()[0]
    assert all(column in header for _, column in named), "the example is consistent"


def test_a_misspelt_column_is_one_line_at_its_place(project: Path) -> None:
    line = edit(project, "{column: Цена, parse: money}", "{column: Цнеа, parse: money}")
    code, out = dry_run(project)
    assert code == 2, out
    assert f"projects.mapping.yaml:{line}:" in out, out
    assert "parent.fields.OPPORTUNITY.column: no column «Цнеа»" in out
    assert "did you mean «Цена»" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("key", ["person", "inn"])
def test_a_misspelt_person_or_inn_column_is_refused(project: Path, key: str) -> None:
    """contact.person and contact.inn were left out of the check: a misspelt one read
    as empty on every row (no contact person, no INN), silently."""
    line = edit(project, "contact: {name: Клиент,", f"contact: {{{key}: Кантакт, name: Клиент,")
    code, out = dry_run(project)
    assert code == 2, out
    assert f"projects.mapping.yaml:{line}:" in out and f"contact.{key}: no column «Кантакт»" in out


def test_a_title_template_with_an_unknown_column(project: Path) -> None:
    edit(project, '"{Клиент}: {Что везём}"', '"{Клиент}: {Что везем}"')
    code, out = dry_run(project)
    assert code == 2 and "parent.title: no column «Что везем»" in out, out


def test_a_sheet_with_only_its_header_is_refused(project: Path) -> None:
    csv = project.parent / "projects.csv"
    csv.write_text(csv.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    code, out = dry_run(project)
    assert code == 2 and "no rows under the header" in out, out


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("{csv: projects.csv,", "{csv: projects-2023.csv,", "source.csv: cannot read"),
        ("{csv: projects.csv,", "{csv: .,", "Is a directory"),
        ("blueprint: ../blueprints/company.yaml", "blueprint: company.yaml", "no blueprint file"),
    ],
    ids=["no-sheet", "sheet-a-directory", "no-blueprint"],
)
def test_a_file_the_mapping_names_and_cannot_be_read(
    project: Path, old: str, new: str, reason: str
) -> None:
    line = edit(project, old, new)
    code, out = dry_run(project)
    assert code == 2 and f"projects.mapping.yaml:{line}:" in out and reason in out, out


def test_a_sheet_of_its_header_again_and_again_is_refused(project: Path) -> None:
    csv = project.parent / "projects.csv"
    header = csv.read_text(encoding="utf-8").splitlines()[0]
    csv.write_text(f"{header}\n{header}\n\n{header}\n", encoding="utf-8")
    code, out = dry_run(project)
    assert code == 2 and "no rows under the header" in out, out


def test_an_empty_sheet_is_refused(project: Path) -> None:
    (project.parent / "projects.csv").write_text("", encoding="utf-8")
    code, out = dry_run(project)
    assert code == 2 and "the sheet is empty" in out, out


SHEET = (
    "№,Клиент,Что везём,Статус,Комментарий\n"
    "1,ООО Тяжмаш,погрузчик Амкодор,новая,позвонить после обеда\n"
    "2,ИП Сидоров,щебень 20 тонн,оценить,«срочно» — ждёт ответа\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251", "koi8-r", "utf-16"])
def test_a_russian_sheet_in_any_usual_encoding_reads_the_same(
    tmp_path: Path, encoding: str
) -> None:
    from b24kit.migrate.sources import read_csv

    # KOI8-R has no «», — or №: the sheet a KOI8-R editor saves has none either
    text = SHEET
    if encoding == "koi8-r":
        for old, new in (("«", "'"), ("»", "'"), ("—", "-"), ("№", "N")):
            text = text.replace(old, new)
    path = tmp_path / "sheet.csv"
    path.write_bytes(text.encode(encoding))
    rows = read_csv(path).rows
    assert rows[0][1] == "Клиент" and rows[2][1] == "ИП Сидоров", encoding
    assert rows[2][4] == text.splitlines()[2].split(",", 4)[4], "every letter as written"


def test_a_sheet_in_no_known_encoding_asks_for_one(project: Path) -> None:
    csv = project.parent / "projects.csv"
    csv.write_bytes(bytes(range(128, 256)) * 4 + b"\n")
    code, out = dry_run(project)
    assert code == 2 and "source.encoding" in out, out
    edit(project, "source: {csv: projects.csv,", "source: {csv: projects.csv, encoding: latin-1,")
    code, out = dry_run(project)
    assert "source.encoding" not in out, "the named encoding is used"


def test_an_unbalanced_quote_is_refused_where_it_starts(project: Path) -> None:
    csv = project.parent / "projects.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    lines[3] = (
        lines[3].replace(",погрузчик", ',"погрузчик', 1)
        if ",погрузчик" in lines[3]
        else lines[3].replace(",", ',"', 1)
    )
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = dry_run(project)
    assert code == 2, out
    assert "row 4 (line 4)" in out and "a quote that is not closed" in out, out


def test_a_formula_in_a_cell_is_kept_as_text_and_reported(project: Path) -> None:
    from b24kit.migrate.plan import read_records
    from b24kit.migrate.run import load_table

    csv = project.parent / "projects.csv"
    text = csv.read_text(encoding="utf-8")
    assert "погрузчик Амкодор" in text
    text = text.replace("погрузчик Амкодор", "=cmd|' /C calc'!A0", 1)
    csv.write_text(text.replace("ООО Тяжмаш", "@SUM(1)", 1), encoding="utf-8")
    mapping = load_mapping(project)
    records, findings = read_records(load_table(mapping, project.parent), mapping)
    formula = [f for f in findings if "formula" in f.reason]
    assert [(f.kind, f.row, f.column) for f in formula] == [
        ("warning", 2, "Клиент"),  # a contact's name, and in the parent's title: once
        ("warning", 2, "Что везём"),
    ]
    assert records[0].title.endswith("=cmd|' /C calc'!A0"), "the user's text is kept"
    assert not [f for f in findings if "formula" in f.reason and f.column == "Телефон"], (
        "+7 phones are not formulas"
    )


def test_a_column_the_sheet_has_twice_is_refused(project: Path) -> None:
    csv = project.parent / "projects.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("№,Дата,Клиент,")
    lines[0] = lines[0].replace("№,Дата,Клиент,", "№,Клиент,Клиент,", 1)
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = dry_run(project)
    assert code == 2, out
    assert "contact.name: column «Клиент» is in" in out and "(columns B, C)" in out, out


# every name the mapping gives is checked before anything is written: (old text, new text,
# the error); the error is at the line of the new text
NAMES = [
    ("pipeline: sales_turnkey", "pipeline: sales_tunkey", "did you mean 'sales_turnkey'?"),
    ("OFFER: [кп отправлено]", "OFER: [кп отправлено]", "has no stage 'OFER'; did you mean"),
    ("default: NEW", "default: NEWW", "parent.stage.default: pipeline 'sales_turnkey' has no"),
    ("APPROVAL: [оценено", "APROVAL: [оценено", "pipeline 'logistics' has no stage 'APROVAL'"),
    ("- link: estimate", "- link: estimates", "the blueprint has no link 'estimates'"),
    ("type: contractors", "type: contractor", "no smart process 'contractor'"),
    ("PRICE: {column: Себестоимость", "PRISE: {column: Себестоимость", "has no field 'PRISE'"),
    ("OPPORTUNITY: {column: Цена", "OPORTUNITY: {column: Цена", "no deal field 'OPORTUNITY'"),
    ("BEGINDATE: {column: Дата", "ORIGIN_ID: {column: Дата", "ORIGIN_ID is set by the migration"),
    ("BEGINDATE: {column: Дата", "DATE_CREATE: {column: Дата", "DATE_CREATE is read-only"),
    ("RATING_5: [", "RATING_6: [", "UF_CRM_CONTRACTOR_RATING has no item with XML_ID 'RATING_6'"),
    ("WEB: [сайт]", "SITE: [сайт]", "field SOURCE_ID has no SOURCE entry 'SITE'"),
    ("{csv: projects.csv,", "{csv: projects.csv, xlsx: p.xlsx,", "one of csv, xlsx or sheet"),
    ('"{Клиент}: {Что везём}"', '"{Клиент}: {Что везём"', "a brace that is not part of"),
    ("{column: Дата, parse: date}", "{column: Дата, parse: date, values: {}}", "parse: enum"),
    ("{column: Цена, parse: money}", "{colunm: Цена, parse: money}", "did you mean 'column'?"),
    ("Иванов: 3", "Иванов: true", "users.Иванов: Input should be a valid integer"),
]


@pytest.fixture
def deployed(project: Path, deployed_db: Path) -> Path:
    """The example mapping, with the company blueprint applied to the sandbox."""
    (project.parent.parent / ".b24kit").mkdir()
    shutil.copy(deployed_db, project.parent.parent / ".b24kit" / "sandbox.sqlite")
    return project


@pytest.fixture
def deployed_part(deployed: Path) -> Path:
    """``deployed``, with a part of the example sheet (tests/example_subset.py) in place of
    the whole: for the checks of the mapping's names, which read every row first."""
    sheet = deployed.parent / "projects.csv"
    sheet.write_text(example_subset.subset().csv_text(), encoding="utf-8")
    return deployed


def test_the_example_passes_every_name_check(deployed: Path) -> None:
    code, out = dry_run(deployed)
    assert code == 0, out


@pytest.mark.parametrize(("old", "new", "reason"), NAMES, ids=[n[2][:40] for n in NAMES])
def test_a_name_the_blueprint_or_portal_lacks_is_refused_at_its_line(
    deployed_part: Path, old: str, new: str, reason: str
) -> None:
    project = deployed_part
    line = edit(project, old, new)
    code, out = dry_run(project)
    assert code == 2, out
    errors = [ln for ln in out.splitlines() if reason in ln]
    assert errors and f"projects.mapping.yaml:{line}:" in errors[0], out
    assert "Traceback" not in out


@pytest.mark.usefixtures("deployed")  # the company blueprint applied
def test_a_sheet_whose_every_row_is_rejected_is_not_a_success(project: Path) -> None:
    """No silent success: a sheet where no row could be taken (here: no row names its
    client by name, phone or e-mail) exited 0 with nothing migrated. Now exit 2 with one line
    saying so, after the rejections; a sheet with some good rows still exits 0."""
    sheet = project.parent / "projects.csv"
    header, *rows = sheet.read_text(encoding="utf-8").splitlines()
    sheet.write_text("\n".join([header, *rows[:3]]) + "\n", encoding="utf-8")
    code, out = dry_run(project)
    assert code == 0, out
    column = header.split(",").index("Клиент")
    broken = []
    for row in rows[:3]:
        cells = row.split(",")
        cells[column] = ""
        cells[header.split(",").index("Телефон")] = ""
        cells[header.split(",").index("Email")] = ""
        broken.append(",".join(cells))
    sheet.write_text("\n".join([header, *broken]) + "\n", encoding="utf-8")
    code, out = invoke("migrate", "run", str(project), "-p", "sandbox", "--yes")
    assert code == 2, out
    assert "every one of the sheet's 3 row(s) was rejected; nothing was migrated" in out


@pytest.mark.usefixtures("deployed_part")  # the company blueprint applied
def test_user_ids_are_checked_against_the_portal(project: Path) -> None:
    """Every id of users: is a user of the portal, and not a dismissed one (the hostile
    corpus has the unknown id and the draft's 0)."""
    from b24kit.sandbox import Sandbox, SandboxConfig

    assert dry_run(project)[0] == 0
    box = Sandbox(SandboxConfig(db=".b24kit/sandbox.sqlite", limits="off"))
    box.portal.add_user({"NAME": "Ольга", "LAST_NAME": "Кузнецова", "ACTIVE": False}, 6)
    box.close()
    code, out = dry_run(project)
    assert code == 2, out
    assert "users.Кузнецова: user 6 (Ольга Кузнецова) is dismissed" in out, out


def test_a_webhook_that_may_not_read_users_leaves_them_unchecked() -> None:
    """read_users says "cannot tell" (None) rather than "no such user" without the scope."""
    import asyncio

    from b24kit.client import B24Client, WebhookAuth, parse_webhook
    from b24kit.portal.users import read_users
    from b24kit.sandbox import Sandbox

    box = Sandbox(limits="off")
    crm_only = box.add_webhook(1, ("crm",))

    async def go(url: str) -> object:
        auth = WebhookAuth(parse_webhook(url))
        async with B24Client(auth, transport=box.transport()) as client:
            return await read_users(client, [3, 999])

    full = asyncio.run(go(box.webhook_url("http://sandbox.local")))
    assert isinstance(full, dict) and sorted(full) == [3]
    assert asyncio.run(go(f"http://sandbox.local/rest/1/{crm_only}/")) is None


def test_row_rules_name_columns_of_the_sheet(project: Path) -> None:
    text = project.read_text(encoding="utf-8")
    project.write_text(text + "rows: {require: [Дта]}\n", encoding="utf-8")
    code, out = dry_run(project)
    assert code == 2, out
    line = text.count("\n") + 1
    assert f"projects.mapping.yaml:{line}:" in out and "rows.require.0: no column «Дта»" in out
    assert "did you mean «Дата»" in out


@pytest.mark.usefixtures("deployed")  # the company blueprint applied
def test_a_dry_run_reads_as_a_digest_then_the_rows(project: Path) -> None:
    """Issue 10, item 7: per column, each distinct rejected value with its count, then the
    rows; a run ends with what was created per entity and the time taken."""
    code, out = dry_run(project)
    assert code == 0, out
    lines = out.splitlines()
    digest = lines.index("rejected, by column:")
    first_row = next(i for i, ln in enumerate(lines) if ln.startswith("rejected row "))
    assert digest < first_row, "the digest comes before the rows"
    assert "  Телефон: 'нет' in 4 row(s): no phone number in 'нет'" in lines
    assert "  (row): blank row in 2 row(s)" in lines
    code, out = invoke("migrate", "run", str(project), "-p", "sandbox", "--yes")
    assert code == 0, out
    assert "  parents: 275 created, 0 updated, 0 unchanged" in out
    assert re.search(r"Done in \d+\.\d s: (\d+) of \1 commands succeeded", out)


def test_a_route_names_pipelines_of_the_blueprint(project: Path) -> None:
    line = edit(
        project,
        "  pipeline: sales_turnkey\n",
        "  pipeline: sales_turnkey\n  route: {column: Статус, values: {sales_rentl: [аренда]}}\n",
    )
    code, out = dry_run(project)
    assert code == 2, out
    assert f"projects.mapping.yaml:{line + 1}:" in out, out
    assert (
        "parent.route.values.sales_rentl: the blueprint has no deal pipeline 'sales_rentl'" in out
    )
    assert "did you mean 'sales_rental'?" in out


@pytest.fixture
def migrated(project: Path, deployed_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example mapping, a part of the example sheet (tests/example_subset.py) in place
    of the whole, migrated into the deployed company blueprint (once per test run)."""
    db = example_subset.migrated(tmp_path_factory, deployed_db)
    sheet = project.parent / "projects.csv"
    sheet.write_text(example_subset.subset().csv_text(), encoding="utf-8")
    (project.parent.parent / ".b24kit").mkdir()
    shutil.copy(db, project.parent.parent / ".b24kit" / "sandbox.sqlite")
    return project


def test_an_edited_comment_updates_the_one_b24kit_wrote(migrated: Path) -> None:
    """Issue 10, item 5: an edited comment was ignored silently. A re-run updates the
    comment b24kit wrote (crm.timeline.comment.update), never a second one."""
    import sqlite3

    run = ["migrate", "run", str(migrated), "-p", "sandbox"]
    db = Path(".b24kit/sandbox.sqlite")

    def comments() -> list[str]:
        with sqlite3.connect(db) as conn:
            return sorted(r[0] for r in conn.execute("SELECT comment FROM timeline_comments"))

    before = comments()
    assert [c for c in before if c.startswith("Оплата по факту; нужен пропуск")], before
    sheet = migrated.parent / "projects.csv"
    text = sheet.read_text(encoding="utf-8")
    sheet.write_text(text.replace("Оплата по факту; нужен пропуск", "Оплата 50/50"), "utf-8")
    code, out = invoke(*run, "--yes", "-f", "json")
    assert code == 0, out
    after = comments()
    assert len(after) == len(before), "no second comment"
    assert [c for c in after if c.startswith("Оплата 50/50")], after
    assert not [c for c in after if c.startswith("Оплата по факту; нужен пропуск")]
    code, out = invoke(*run, "--dry-run")
    assert "comments: 0 to create, 0 to update" in out, out
