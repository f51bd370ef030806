"""The hostile inputs that are not kept as files: binary ones, huge ones and those whose
bytes an editor or git would change (CR line ends, NUL characters). Each maker writes its
case into a folder the test gives it (a copy of the case's folder, for sheets) and returns
the path to hand to the command.

    python tests/hostile/make.py CASE DIR     # to look at one by hand
"""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

Maker = Callable[[Path], Path]
BLUEPRINTS: dict[str, Maker] = {}
SHEETS: dict[str, Maker] = {}
ACCEPTED: dict[str, Maker] = {}  # sheets of tests/hostile/accepted/sheets/

# a small valid blueprint the blueprint makers spoil
BLUEPRINT = """version: 1
name: hostile
deal:
  pipelines:
    - code: hx_sales
      name: Хост продажи
      stages:
        - {code: NEW, name: Новая}
        - {code: WON, name: Успех, semantics: success}
        - {code: LOSE, name: Провал, semantics: failure}
"""
# the sheet of tests/hostile/sheets/*/ (their mappings read it)
SHEET = """№,Клиент,Телефон,Груз,Цена,Менеджер,Логист,Статус
1,ООО Тяжмаш,+7 926 333-44-55,погрузчик Амкодор,501800,Иванов,Петрова,оценить
2,ИП Сидоров,+7 905 444-33-22,щебень 20 тонн,29900,Петрова,,новая
3,СПК Нива,+7 916 777-88-99,грейдер ДЗ-98,119600,Иванов,,новая
"""


def blueprint(name: str) -> Callable[[Maker], Maker]:
    def register(maker: Maker) -> Maker:
        BLUEPRINTS[name] = maker
        return maker

    return register


def sheet(name: str) -> Callable[[Maker], Maker]:
    def register(maker: Maker) -> Maker:
        SHEETS[name] = maker
        return maker

    return register


def accepted(name: str) -> Callable[[Maker], Maker]:
    def register(maker: Maker) -> Maker:
        ACCEPTED[name] = maker
        return maker

    return register


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def workbook(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_rows() -> list[list[object]]:
    return [line.split(",") for line in SHEET.splitlines()]


# ------------------------------------------------------------------ blueprints
@blueprint("binary-png")
def _png(folder: Path) -> Path:
    return _write(folder / "binary-png.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))


@blueprint("bom-then-control-bytes")
def _bom_garbage(folder: Path) -> Path:
    return _write(folder / "bom-then-control-bytes.yaml", b"\xef\xbb\xbf" + bytes(range(1, 32)))


@blueprint("latin1-name")
def _latin1(folder: Path) -> Path:
    text = "version: 1\nname: hostile\ndeal:\n  pipelines:\n    - code: hx_sales\n"
    text += "      name: Müller Vertrieb\n"  # ü is one byte, 0xFC, in Latin-1: not UTF-8
    return _write(folder / "latin1-name.yaml", text.encode("latin-1"))


@blueprint("utf16-without-bom")
def _utf16(folder: Path) -> Path:
    return _write(folder / "utf16-without-bom.yaml", BLUEPRINT.encode("utf-16-le"))


@blueprint("cr-only-line-ends")
def _cr_only(folder: Path) -> Path:
    """Old Mac line ends (YAML takes a lone CR as a line end): the bad colour is on line 9."""
    text = BLUEPRINT.replace(
        "{code: WON, name: Успех, semantics: success}",
        "{code: WON, name: Успех, semantics: success, color: '#7BD50'}",
    )
    return _write(folder / "cr-only-line-ends.yaml", text.replace("\n", "\r").encode())


@blueprint("nul-in-the-middle")
def _nul(folder: Path) -> Path:
    text = BLUEPRINT.replace("name: Хост продажи", "name: Хост\x00продажи")
    return _write(folder / "nul-in-the-middle.yaml", text.encode())


@blueprint("dev-zero")
def _dev_zero(folder: Path) -> Path:
    return Path("/dev/zero")  # endless bytes: only a head may be read


# ---------------------------------------------------------------------- sheets
@sheet("xlsx-named-csv")
def _xlsx_as_csv(folder: Path) -> Path:
    return _write(folder / "sheet.csv", workbook(sheet_rows()))


@sheet("xls-named-csv")
def _xls_as_csv(folder: Path) -> Path:
    return _write(folder / "sheet.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))


@sheet("xlsx-truncated")
def _xlsx_truncated(folder: Path) -> Path:
    data = workbook(sheet_rows())
    return _write(folder / "sheet.xlsx", data[: len(data) // 2])


@sheet("xlsx-zip-bomb")
def _xlsx_bomb(folder: Path) -> Path:
    """A workbook whose worksheet says it unpacks to 3 GiB: what the zip says is what an
    unpacker would make (it stops at the size given, with a CRC error)."""
    source = zipfile.ZipFile(io.BytesIO(workbook(sheet_rows())))
    path = folder / "sheet.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as packed:
        for info in source.infolist():
            packed.writestr(info, source.read(info))
        info = next(i for i in packed.infolist() if i.filename.endswith("sheet1.xml"))
        info.file_size = 3 * 2**30
    return path


@sheet("xlsx-no-such-worksheet")
def _xlsx(folder: Path) -> Path:
    return _write(folder / "sheet.xlsx", workbook(sheet_rows()))


@sheet("nul-in-cell")
def _nul_cell(folder: Path) -> Path:
    return _write(folder / "sheet.csv", SHEET.replace("щебень 20", "щебень\x0020").encode())


@sheet("utf16-without-bom")
def _utf16_sheet(folder: Path) -> Path:
    return _write(folder / "sheet.csv", SHEET.encode("utf-16-le"))


@sheet("cell-of-10-mb")
def _big_cell(folder: Path) -> Path:
    return _write(folder / "sheet.csv", SHEET.replace("щебень 20 тонн", "щ" * 10_000_000).encode())


@sheet("latin1-not-russian")
def _latin1_sheet(folder: Path) -> Path:
    text = "Kunde,Ware\nMüller & Söhne,Bagger\nGrün AG,Kran\n"
    return _write(folder / "sheet.csv", text.encode("latin-1"))


# -------------------------------------------------------------------- accepted
@accepted("old-mac-line-ends")
def _cr_sheet(folder: Path) -> Path:
    rows = [
        "№,Клиент,Телефон,Груз,Цена,Менеджер,Статус",
        "1,ООО Тяжмаш,+7 926 333-44-55,погрузчик,501800,Иванов,оценить",
        "2,ИП Сидоров,+7 905 444-33-22,щебень,29900,Петрова,новая",
    ]
    return _write(folder / "sheet.csv", "".join(row + "\r" for row in rows).encode())


if __name__ == "__main__":
    case, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    print({**BLUEPRINTS, **SHEETS, **ACCEPTED}[case](folder))
