#!/usr/bin/env python3
"""Write examples/projects.csv: a hand-kept project sheet with the faults real ones have,
and examples/projects.expected.json: what a correct migration makes of it, computed here
from the faults this script put in (not by the migration code).

    python scripts/make_example_sheet.py [--rows 300] [--out examples/projects.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

HEADER = [
    "№",
    "Дата",
    "Клиент",
    "Телефон",
    "Email",
    "Что везём",
    "Менеджер",
    "Логист",
    "Подрядчик",
    "Телефон подрядчика",
    "Себестоимость",
    "Цена",
    "Статус",
    "Оценка подрядчика",
    "Источник",
    "Комментарий",
]
CLIENTS = [
    ("ООО Ромашка", "9001234567"),
    ("ИП Петров", "9122223344"),
    ("Агрохолдинг Заря", "4951112233"),
    ("Стройтрест", "9035556677"),
    ("ООО Тяжмаш", "9263334455"),
    ("СПК Нива", "9167778899"),
    ("Иван Сидоров", "9998887766"),
    ("ООО Вектор", "9054443322"),
]
# the clients that are organisations (a legal form in the name): companies on the portal
ORGANISATIONS = {"ООО Ромашка", "ИП Петров", "ООО Тяжмаш", "СПК Нива", "ООО Вектор"}
CONTRACTORS = [
    ("Тягач-Сервис", "9007654321"),
    ("ТралСпецТранс", "9113332211"),
    ("ИП Кузнецов (манипулятор)", "9214445566"),
    ("АвтоДорСервис", "9310001122"),
]
CARGO = [
    "трактор МТЗ-82",
    "экскаватор JCB 3CX",
    "каток Bomag",
    "погрузчик Амкодор",
    "бульдозер Б10",
    "кран КС-45717",
    "комбайн Acros",
    "грейдер ДЗ-98",
]
STATUS = [
    ("Новая", "NEW"),
    ("Оценить", "ESTIMATE"),
    (" считаем", "ESTIMATE"),
    ("Оценено", "ESTIMATE_READY"),
    ("ОЦЕНКА ГОТОВА", "ESTIMATE_READY"),
    ("КП отправлено", "OFFER"),
    ("Договор", "CONTRACT"),
    ("Оплачено", "WON"),
    ("закрыто", "WON"),
    ("Отказ", "LOSE"),
]
MANAGERS = ["Иванов", "иванов ", "Петрова", "Смирнов"]
LOGISTS = ["Кузнецова", "Орлов", ""]
SOURCES = ["звонок", "сайт", "Авито", "рекомендация", "повторный", ""]


def phone_shape(rng: random.Random, digits: str) -> str:
    shapes = [
        f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
        f"+7 {digits[:3]} {digits[3:6]} {digits[6:8]} {digits[8:]}",
        f"8{digits}",
        f"7-{digits[:3]}-{digits[3:6]}-{digits[6:8]}-{digits[8:]}",
        digits,
    ]
    return rng.choice(shapes)


def money(rng: random.Random, amount: int) -> str:
    return rng.choice(
        [
            f"{amount:,}".replace(",", " ") + " руб.",
            str(amount),
            f"{amount},00",
            f"{amount // 1000} тыс.",
            f"{amount:,}".replace(",", " ") + " ₽",
        ]
    )


def date_text(rng: random.Random, day: int) -> str:
    d, m = 1 + day % 28, 1 + day % 12
    return rng.choice(
        [f"{d:02d}.{m:02d}.2024", f"{d}.{m}.24", f"2024-{m:02d}-{d:02d}", str(45292 + day)]
    )


def repeated_numbers(rows: list[list[str]]) -> dict[int, str]:
    """A № written on two rows names neither project: both are rejected, in any order."""
    by_number: dict[str, list[int]] = {}
    for sheet_row, row in enumerate(rows[1:], start=2):
        if row and row[0] not in ("", "№"):
            by_number.setdefault(str(row[0]), []).append(sheet_row)
    return {n: "repeats row" for twins in by_number.values() if len(twins) > 1 for n in twins}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("examples/projects.csv"))
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows: list[list[str]] = [HEADER]
    expected_rejected: dict[int, str] = {}
    valid: list[dict[str, object]] = []
    number = 0
    for i in range(args.rows):
        sheet_row = len(rows) + 1
        fault = rng.random()
        if fault < 0.02:
            rows.append([""] * len(HEADER))
            expected_rejected[sheet_row] = "blank row"
            continue
        if fault < 0.03:
            rows.append(list(HEADER))
            expected_rejected[sheet_row] = "repeated header"
            continue
        number += 1
        client, client_phone = rng.choice(CLIENTS)
        contractor, contractor_phone = rng.choice(CONTRACTORS)
        logist = rng.choice(LOGISTS)
        has_contractor = rng.random() < 0.7
        cost = rng.randrange(20, 400) * 1000
        status_word, status = rng.choice(STATUS)
        row = [
            str(number),
            date_text(rng, i),
            client,
            phone_shape(rng, client_phone),
            f"info@{client_phone[-4:]}.ru" if rng.random() < 0.3 else "",
            rng.choice(CARGO),
            rng.choice(MANAGERS),
            logist,
            contractor if has_contractor else "",
            phone_shape(rng, contractor_phone) if has_contractor else "",
            money(rng, cost) if has_contractor or logist else "",
            money(rng, int(cost * 1.3)),
            status_word,
            str(rng.choice([5, 4, 3])) if has_contractor else "",
            rng.choice(SOURCES),
            rng.choice(
                [
                    "",
                    "",
                    "Клиент просил к 9 утра",
                    "Оплата по факту; нужен пропуск",
                    "Повторный заказ, скидка 5%",
                ]
            ),
        ]
        if fault < 0.05:
            row[2], row[3], row[4] = "", "", ""
            expected_rejected[sheet_row] = "no client"
        elif fault < 0.06:
            row[3] = "нет"
            expected_rejected[sheet_row] = "phone"
        elif fault < 0.07:
            row[11] = "договорная"
            expected_rejected[sheet_row] = "amount"
        elif fault < 0.08:
            row[1] = "31.02.2024"
            expected_rejected[sheet_row] = "date"
        elif fault < 0.09:
            row[12] = "потом решим"
            expected_rejected[sheet_row] = "unknown value"
        elif fault < 0.095:
            row[6] = "Неизвестный"
            expected_rejected[sheet_row] = "unknown user"
        elif fault < 0.10 and number > 1:
            row[0] = str(number - 1)
            expected_rejected[sheet_row] = "repeats row"
        if sheet_row not in expected_rejected:
            valid.append(
                {
                    "row": sheet_row,
                    "client_phone": "+7" + client_phone,
                    "organisation": client in ORGANISATIONS,
                    # named by the row, or made for an open parent at or past «Оценить»
                    "child": bool(logist or has_contractor)
                    or status in ("ESTIMATE", "ESTIMATE_READY", "OFFER", "CONTRACT"),
                    "contractor_phone": "+7" + contractor_phone if has_contractor else None,
                    "comment": bool(row[15]),
                    "status": status,
                }
            )
        rows.append(row)
    expected_rejected.update(repeated_numbers(rows))
    valid = [v for v in valid if v["row"] not in expected_rejected]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    expected = {
        "rows": len(rows) - 1,
        "parents": len(valid),
        "children": sum(1 for v in valid if v["child"]),
        # the engineering link's children: every open parent at or past «Договор»
        "engineering": sum(1 for v in valid if v["status"] == "CONTRACT"),
        "contacts": len({v["client_phone"] for v in valid if not v["organisation"]}),
        "companies": len({v["client_phone"] for v in valid if v["organisation"]}),
        "contractors": len({v["contractor_phone"] for v in valid if v["contractor_phone"]}),
        "comments": sum(1 for v in valid if v["comment"]),
        "rejected": {str(k): v for k, v in sorted(expected_rejected.items())},
    }
    args.out.with_suffix(".expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    print(
        f"wrote {args.out}: {expected['rows']} rows, {expected['parents']} valid, "
        f"{len(expected_rejected)} to reject"
    )


if __name__ == "__main__":
    main()
