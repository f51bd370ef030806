"""A messy hand-kept project sheet of a Russian logistics company, and its truth.

``make_sheet(seed, rows)`` writes what a person would have typed (CSV cells, and the same
rows as a gspread-shaped grid where digits are numbers, as Sheets keeps them) and records,
from what it *meant* to write, what a correct migration makes of every row: rejected or
not and the columns to blame, the parent's pipeline, stage, title, amount, date and
assignee, the client (an organisation or a person) with its group, and the counts of
contacts, companies, contractors, children and comments.

The truth is computed here from intent (which client a row is about, which amount it
meant), never by calling b24kit's parsers or grouping: it is an independent record.
Where a fault's outcome is a rule of the documented grammar (parsers.py's docstrings),
the truth follows the rule; where the grammar would refuse what a person obviously meant,
the truth says what they meant (and the test says where the migration disagrees).

    python -m tests.messy --rows 2000 --out /tmp/messy.csv   # writes messy.truth.json too
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HEADER = [
    "№",
    "Дата",
    "Направление",
    "Клиент",
    "Контактное лицо",
    "Телефон",
    "Email",
    "ИНН",
    "Что везём",
    "Менеджер",
    "Логист",
    "Подрядчик",
    "Телефон подрядчика",
    "Цена",
    "Статус",
    "Комментарий",
]
COL = {name: i for i, name in enumerate(HEADER)}
NBSP, NNBSP = "\u00a0", "\u202f"

# the sheet's directions -> the company blueprint's six sales pipelines
DIRECTIONS = {
    "sales_turnkey": ["Под ключ", "под ключ", "ПОД КЛЮЧ", "Услуга под ключ"],
    "sales_rental": ["Аренда", "аренда техники", "АРЕНДА"],
    "sales_cold": ["Холодные", "холодный звонок"],
    "sales_repeat": ["Повторные", "повторное обращение"],
    "sales_carservice": ["Автосервис", "автосервис "],
    "sales_transport": ["Перевозка", "перевозка техники", "Перевозка  техники"],
}
ROUTE_VALUES = {
    "sales_turnkey": ["под ключ", "услуга под ключ"],
    "sales_rental": ["аренда", "аренда техники"],
    "sales_cold": ["холодные", "холодный звонок"],
    "sales_repeat": ["повторные", "повторное обращение"],
    "sales_carservice": ["автосервис"],
    "sales_transport": ["перевозка", "перевозка техники"],
}
DEFAULT_PIPELINE = "sales_turnkey"
# stage code -> the words the sheet writes (the mapping's values), in pipeline order
STAGES = {
    "NEW": ["новая", "новый"],
    "QUALIFY": ["выявление"],
    "ESTIMATE": ["оценить", "считаем", "в работе"],
    "ESTIMATE_READY": ["оценено", "оценка готова"],
    "OFFER": ["кп отправлено", "кп"],
    "CONTRACT": ["договор"],
    "WON": ["оплачено", "закрыто"],
    "LOSE": ["отказ", "отказались"],
}
OPEN_AT_OR_PAST_TRIGGER = {"ESTIMATE", "ESTIMATE_READY", "OFFER", "CONTRACT"}
CHILD_STAGES = {
    "NEW": ["новая", "новый", "выявление", "оценить", "считаем", "в работе"],
    "APPROVAL": ["оценено", "оценка готова"],
    "WON": ["кп отправлено", "кп", "договор", "оплачено", "закрыто"],
    "LOSE": ["отказ", "отказались"],
}
USERS = {"Иванов": 3, "Петрова": 4, "Смирнов": 5, "Кузнецова": 6, "Орлов": 7}
LOGISTS = ["Кузнецова", "Орлов"]
CARGO = [
    "трактор МТЗ-82",
    "экскаватор JCB 3CX",
    "каток Bomag BW 213",
    "погрузчик Амкодор 342",
    "бульдозер Б10М",
    "кран КС-45717",
    "комбайн Acros 595",
    "грейдер ДЗ-98",
    "бытовка 6 м",
    "щебень 20 т",
]
COMMENTS = [
    "Клиент просил к 9 утра",
    "Оплата по факту; нужен пропуск",
    "Повторный заказ, скидка 5%",
    "перезвонить после обеда",
    "=ССЫЛКА(A1)",  # a formula as typed: text, warned
    "+ доплата за срочность",  # "+" before a space: no formula
    "счёт №123 от 01.02",
]

# Latin letters that look like Cyrillic ones, as people mistype them
LOOKALIKE = dict(zip("АВЕКМНОРСТХаеорсху", "ABEKMHOPCTXaeopcxy", strict=True))


def lookalike(rng: random.Random, text: str) -> str:
    """One Cyrillic letter of ``text`` typed as its Latin twin («Oценить»)."""
    at = [i for i, c in enumerate(text) if c in LOOKALIKE]
    if not at:
        return text
    i = rng.choice(at)
    return text[:i] + LOOKALIKE[text[i]] + text[i + 1 :]


MALE_FIRST = ["Иван", "Сергей", "Алексей", "Дмитрий", "Константин", "Валентин", "Олег", "Павел"]
FEMALE_FIRST = ["Ирина", "Марина", "Галина", "Анна", "Екатерина", "Ольга", "Полина", "Светлана"]
MALE_LAST = ["Иванов", "Петров", "Сидоров", "Кузьмин", "Ильин", "Соколов", "Волков", "Лебедев"]
MALE_LAST += ["Морозов", "Новиков", "Фёдоров", "Зайцев", "Ковальчук", "Бондаренко"]
PATRONYMIC_BASE = ["Петров", "Иванов", "Сергеев", "Алексеев", "Николаев", "Андреев"]
ORG_CORES = [
    "Вектор",
    "Тяжмаш",
    "Северный путь",
    "Техноресурс",
    "Агроснаб",
    "Промлизинг",
    "Дорстрой-М",
    "Уралтехмаш",
    "Сибирь Логистик",
    "Кран-Сервис",
    "Нива",
    "Стройкомплект",
    "Восток",
    "Меридиан",
    "Ладога",
    "Альфа Трейд",
    "ТехноПарк",
    "Энергомонтаж",
]
FORMS = ["ООО", "ООО", "ООО", "АО", "ЗАО", "ПАО", "СПК"]


# ------------------------------------------------------------------ truth records
@dataclass
class Client:
    """A client the sheet talks about, as the company knows it."""

    id: str
    kind: str  # company | contact
    spellings: list[tuple[str, tuple[str, str, str]]]  # cell text -> (LAST, NAME, SECOND)
    phones: list[str] = field(default_factory=list)  # 10 digits, no country code
    emails: list[str] = field(default_factory=list)
    inn: str | None = None
    inn_always: bool = False  # every row writes the INN (its spellings differ in the core)
    persons: list[tuple[str, ...]] = field(default_factory=list)  # contact persons' words
    rows_without_phone: float = 0.1  # how often a row names it by name alone


@dataclass
class Row:
    """The truth of one sheet row."""

    row: int  # the sheet's row number (1-based, the header is row 1)
    kind: str  # what the generator did with it: ok, blank, header, money:…, date:…
    reject: list[str | None] = field(default_factory=list)  # blamed columns, None: the row
    row_id: str | None = None
    pipeline: str | None = None
    stage: str | None = None
    title: str | None = None
    amount: str | None = None  # Decimal as text, two places
    date: str | None = None  # ISO
    assignee: int | None = None
    client: str | None = None  # the client's id (its group)
    person: str | None = None  # an organisation's contact person: sorted lowercased words
    phones: list[str] = field(default_factory=list)  # E.164 the row writes
    emails: list[str] = field(default_factory=list)
    contractor: str | None = None
    child: bool = False
    engineering: bool = False
    comment: bool = False
    warn: bool = False  # a formula kept as text: a warning expected
    # the row's id repeats another's: the migration should reject both (see the report)
    duplicate_id: bool = False
    # an amount in another currency ($, €): the deal must not get it as roubles
    foreign_currency: bool = False

    @property
    def valid(self) -> bool:
        return not self.reject

    def as_dict(self) -> dict[str, Any]:
        """``asdict(self)``: every field, the lists copied (asdict's generic deep copy of
        each value cost more than the test that writes the truth)."""
        return {
            name: list(value) if isinstance(value, list) else value
            for name, value in vars(self).items()
        }

    def copy(self, **changes: Any) -> Row:
        """The same truth with its own lists (``changes`` set): asdict's deep copy of every
        field cost more than the tests that shuffle the rows."""
        lists = {"reject": list(self.reject), "phones": list(self.phones)}
        lists["emails"] = list(self.emails)
        return replace(self, **{**lists, **changes})


@dataclass
class Sheet:
    cells: list[list[str]]  # the CSV, header first
    grid: list[list[Any]]  # the same as gspread reads it unformatted: digits as numbers
    rows: list[Row]  # one per data row, in sheet order
    clients: dict[str, Client]

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(self.cells)

    def valid(self) -> list[Row]:
        return [r for r in self.rows if r.valid]

    def of_client(self, client_id: str) -> list[Row]:
        if not hasattr(self, "_by_client"):
            self._by_client: dict[str | None, list[Row]] = {}
            for r in self.valid():
                self._by_client.setdefault(r.client, []).append(r)
        return self._by_client.get(client_id, [])

    def groups(self) -> dict[str, set[str]]:
        """Client id -> the row ids of its valid rows."""
        out: dict[str, set[str]] = {}
        for r in self.valid():
            assert r.client is not None and r.row_id is not None
            out.setdefault(r.client, set()).add(r.row_id)
        return out

    def entity(self, client_id: str) -> dict[str, Any]:
        """What the client's entity holds after the migration: its kind, name (a company's
        TITLE, or a contact's split name), phones (E.164) and e-mails, from its valid rows.
        The name is the spelling most rows give (whitespace aside), the first A-Z on a tie.
        Worked out once per client (the tests ask it of every row; the sheet is not changed
        once made): a copy each time."""
        if not hasattr(self, "_entities"):
            self._entities: dict[str, dict[str, Any]] = {}
        if client_id not in self._entities:
            self._entities[client_id] = self._entity(client_id)
        made = self._entities[client_id]
        return {**made, "phones": list(made["phones"]), "emails": list(made["emails"])}

    def _entity(self, client_id: str) -> dict[str, Any]:
        client = self.clients[client_id]
        spellings = dict(client.spellings)
        rows = self.of_client(client_id)
        spelled: Counter[str] = Counter()
        split: dict[str, tuple[str, str, str]] = {}
        for r in rows:
            if r.kind.startswith("noname"):
                continue
            cell = self.cells[r.row - 1][COL["Клиент"]]
            text = " ".join(cell.split())
            spelled[text] += 1
            split[text] = spellings[cell]
        name: Any = None
        if spelled:
            best = max(spelled.values())
            chosen = min(t for t, n in spelled.items() if n == best)
            name = chosen if client.kind == "company" else split[chosen]
        return {
            "kind": client.kind,
            "name": name,
            "phones": sorted({p for r in rows for p in r.phones}),
            "emails": sorted({e for r in rows for e in r.emails}),
        }

    def counts(self) -> dict[str, int]:
        valid = self.valid()
        kinds = Counter(self.clients[c].kind for c in self.groups())
        persons = {(r.client, r.person) for r in valid if r.person}
        return {
            "parents": len(valid),
            "children": sum(r.child for r in valid) + sum(r.engineering for r in valid),
            "companies": kinds["company"],
            "contacts": kinds["contact"] + len(persons),
            "contractors": len({r.contractor for r in valid if r.contractor}),
            "comments": sum(r.comment for r in valid),
        }

    def truth(self) -> dict[str, Any]:
        return {
            "rows": [r.as_dict() for r in self.rows],
            "groups": {k: sorted(v) for k, v in sorted(self.groups().items())},
            "entities": {k: self.entity(k) for k in sorted(self.groups())},
            "counts": self.counts(),
        }


# ------------------------------------------------------------------ value writers
def inn_check(digits: str) -> str:
    """The FNS check digit(s) appended to an INN's first 9 (10) digits."""

    def digit(body: str, weights: list[int]) -> str:
        return str(sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11 % 10)

    if len(digits) == 9:
        return digits + digit(digits, [2, 4, 10, 3, 5, 9, 4, 6, 8])
    first = digits + digit(digits, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
    return first + digit(first, [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8])


def phone_text(rng: random.Random, d: str) -> str:
    """One phone (10 digits) as people write it; every shape reads as +7<d>."""
    shapes = [
        f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"+7 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
        f"8{d}",
        f"7{d}",
        f"7-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}",
        d,
        f"+7({d[:3]}){d[3:]}",
        f"8{NBSP}{d[:3]}{NBSP}{d[3:6]}{NBSP}{d[6:]}",
        f"моб. 8{d}",
        f"8 {d[:3]} {d[3:]} доб. {rng.randrange(10, 999)}",
        f"+7 {d[:3]} {d[3:]} (Сергей)",
        f" 8{d} ",
    ]
    return rng.choice(shapes)


def phones_text(rng: random.Random, phones: list[str]) -> str:
    sep = rng.choice([", ", "; ", " / ", "\n", " или ", ","])
    return sep.join(phone_text(rng, p) for p in phones)


def email_text(rng: random.Random, email: str) -> str:
    return rng.choice([email, email, email.capitalize(), email.upper(), f" {email} "])


def money_text(rng: random.Random) -> tuple[str, Decimal]:
    """An amount as written, and what it means."""
    thousands = rng.randrange(15, 3000)
    amount = Decimal(thousands * 1000)
    grouped = f"{thousands * 1000:,}"
    shapes = [
        (str(thousands * 1000), amount),
        (grouped.replace(",", " "), amount),
        (grouped.replace(",", NBSP) + " ₽", amount),
        (grouped.replace(",", NNBSP) + " руб.", amount),
        (grouped.replace(",", "'"), amount),
        (grouped.replace(",", " ") + " р.", amount),
        (f"{thousands * 1000}р", amount),
        (f"{thousands} тыс.", amount),
        (f"{thousands} тыс. руб.", amount),
        (f"{thousands}к", amount),
        (f"{thousands} т.р.", amount),
        (f"₽{thousands * 1000}", amount),
        (f"{thousands * 1000},00", amount),
        (f"{grouped.replace(',', ' ')},50 руб", amount + Decimal("0.50")),
        (f"{thousands * 1000}.5", amount + Decimal("0.50")),
        (f"{thousands * 1000},555", amount + Decimal("0.56")),  # rounded, warned
        (f"{thousands * 1000} RUB", amount),
        (f"{thousands * 1000} рублей", amount),
    ]
    if thousands >= 1000 and thousands % 100 == 0:
        millions = Decimal(thousands) / 1000
        shapes.append((f"{str(millions).replace('.', ',')} млн", amount))
        shapes.append((f"{millions} млн руб.", amount))
    if thousands >= 1000:
        shapes.append((grouped.replace(",", "."), amount))  # 1.250.000: groups, not decimals
        shapes.append((grouped, amount))  # 1,250,000
    text, value = rng.choice(shapes)
    return text, value


MONEY_REFUSED = [
    "1e9999",
    "ок 5000",
    "12-15 тыс",
    "abc123",
    "-500",
    "−15 000",
    "договорная",
    "5000?",
    "1,250",  # a thousands separator or a decimal point: nobody can tell
    "1.250",
    "тыс",
    "15 000 - 20 000",
    "=B2*1,2",
    "150 000 руб. + НДС",
    "1 2345",
    "100 $ руб.",
]

MONTHS = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа"]
MONTHS += ["сентября", "октября", "ноября", "декабря"]


def date_text(rng: random.Random, day: date) -> str:
    d, m, y = day.day, day.month, day.year
    shapes = [
        f"{d:02d}.{m:02d}.{y}",
        f"{d}.{m}.{y % 100:02d}",
        f"{y}-{m:02d}-{d:02d}",
        f"{d:02d}/{m:02d}/{y}",
        f"{d} {MONTHS[m - 1]} {y}",
        f"{d} {MONTHS[m - 1]} {y} г.",
        str((day - date(1899, 12, 30)).days),  # a spreadsheet serial
        f"{d:02d}.{m:02d}.{y} 10:30",
        f"{y}-{m:02d}-{d:02d}T09:15:00Z",
        f" {d:02d}.{m:02d}.{y} ",
    ]
    return rng.choice(shapes)


# dates people write that are no date (the grammar refuses them)
DATES_REFUSED = [
    "31.02.2024",
    "29.02.2023",
    "2024-13-01",
    "32.01.2024",
    "01.02.1024",
    "15.03",
    "вчера",
    "01.02.20244",
    "5/13/2024",  # month first: the 13th month
    "31 июня 2024",
]
# dates written the Russian official way, with «г.» or «года» after the year: a person
# means the date (see the report: the grammar refused them)
DATES_WITH_YEAR_WORD = ["{d:02d}.{m:02d}.{y} г.", "{d:02d}.{m:02d}.{y}г.", "{d} {mon} {y} года"]

STATUS_REFUSED = ["потом решим", "???", "в процессе", "Оценка"]
USERS_REFUSED = ["Неизвестный", "Сидоров", "Иванова"]


# ------------------------------------------------------------------ the clients
def person_spellings(
    rng: random.Random, last: str, first: str, second: str
) -> list[tuple[str, tuple[str, str, str]]]:
    """A person written the ways sheets write them, each with the split the CRM needs."""
    forms = [
        (f"{last} {first} {second}", (last, first, second)),
        (f"{first} {last}", (last, first, "")),
        (f"{last} {first}", (last, first, "")),
        (f"{first} {second} {last}", (last, first, second)),
    ]
    rng.shuffle(forms)
    return forms[: rng.choice([1, 1, 2, 3])]


def _female(last: str) -> str:
    if last.endswith(("ов", "ев", "ёв", "ин")):
        return last + "а"
    return last  # Ковальчук, Бондаренко


def make_clients(rng: random.Random) -> dict[str, Client]:
    used_phones: set[str] = set()

    def phone(prefix: str = "9") -> str:
        while True:
            number = prefix + "".join(rng.choice("0123456789") for _ in range(10 - len(prefix)))
            if number not in used_phones:
                used_phones.add(number)
                return number

    clients: dict[str, Client] = {}
    # the one spelled every way: «ООО АгроМир», «АгроМир ООО», «ООО "АгроМир"»…
    clients["agromir"] = Client(
        "agromir",
        "company",
        [
            (s, ("", "", ""))
            for s in [
                "ООО АгроМир",
                "АгроМир ООО",
                'ООО "АгроМир"',
                "ООО «АгроМир»",
                f"ООО{NBSP}АгроМир",
                "ООО АгроМир ",
                "OOO АгроМир",  # the form typed in Latin letters
                "ООО АгрoМир",  # a Latin o inside the name
            ]
        ],
        [phone("495"), phone()],
        ["zakaz@agromir.ru"],
        inn_check("770" + "".join(rng.choice("0123456789") for _ in range(6))),
        persons=[("петров", "сергей"), ("ирина", "смирнова")],
        rows_without_phone=0.3,
    )
    clients["monolit"] = Client(
        "monolit",
        "company",
        [("Монолит 255 ООО", ("", "", "")), ("ООО Монолит 255", ("", "", ""))],
        [phone()],
    )
    clients["sidorov_ip"] = Client(
        "sidorov_ip",
        "company",
        [("ИП Сидоров А.В.", ("", "", "")), ("ИП Сидоров А.В.", ("", "", ""))],
        [phone()],
        ["sidorov.av@mail.ru"],
        inn_check("5001" + "".join(rng.choice("0123456789") for _ in range(6))),
    )
    # two spellings that differ in the name itself: one company by its INN on every row
    clients["magistral"] = Client(
        "magistral",
        "company",
        [("ООО Магистраль-Транс", ("", "", "")), ("ООО МагистральТранс", ("", "", ""))],
        [],
        [],
        inn_check("027406211"),  # starts with 0: a number cell in Sheets loses it
        inn_always=True,
        persons=[("кузьмин", "олег")],
        rows_without_phone=1.0,
    )
    clients["acme"] = Client(
        "acme", "company", [("Acme Logistics, LLC", ("", "", ""))], [phone("812")], ["Ops@Acme.com"]
    )
    for i, core in enumerate(ORG_CORES):
        form = rng.choice(FORMS)
        spellings = [f"{form} {core}", f'{form} "{core}"', f"{core} {form}", f"{form} «{core}»"]
        chosen = spellings[: rng.choice([1, 2, 3])]
        persons = []
        for _ in range(rng.choice([0, 1, 1, 2])):
            first = rng.choice(MALE_FIRST + FEMALE_FIRST)
            last = rng.choice(MALE_LAST)
            last = _female(last) if first in FEMALE_FIRST else last
            persons.append((last.lower(), first.lower()))
        clients[f"org{i}"] = Client(
            f"org{i}",
            "company",
            [(s, ("", "", "")) for s in chosen],
            [phone(rng.choice(["9", "495", "343"])) for _ in range(rng.choice([1, 1, 2]))],
            [f"info@{i}-{rng.randrange(100, 999)}.ru"] if rng.random() < 0.5 else [],
            inn_check("".join(rng.choice("0123456789") for _ in range(9)))
            if rng.random() < 0.4
            else None,
            persons=persons,
        )
    # persons: one person, up to three spellings, one or two phones, maybe e-mails
    seen_names: set[str] = set()
    for i in range(70):
        female = rng.random() < 0.4
        first = rng.choice(FEMALE_FIRST if female else MALE_FIRST)
        last = rng.choice(MALE_LAST)
        second = rng.choice(PATRONYMIC_BASE) + ("на" if female else "ич")
        if female:
            last = _female(last)
        if (last, first) in {tuple(n.split()[:2]) for n in seen_names}:
            continue
        seen_names.add(f"{last} {first}")
        emails = []
        if rng.random() < 0.4:
            emails.append(f"{_latin(first)}.{_latin(last)}{i}@mail.ru")
        if rng.random() < 0.1:
            emails.append(f"{_latin(last)}{i}@yandex.ru")
        clients[f"p{i}"] = Client(
            f"p{i}",
            "contact",
            person_spellings(rng, last, first, second),
            [phone() for _ in range(rng.choice([1, 1, 1, 2]))],
            emails,
        )
    # two people on one office phone: one client by the rules (a conflict, reported)
    office = phone("495")
    clients["office"] = Client(
        "office",
        "contact",
        [
            ("Кузнецова Анна", ("Кузнецова", "Анна", "")),
            ("Олег Кузнецов", ("Кузнецов", "Олег", "")),
        ],
        [office],
    )
    # an organisation written without its legal form: the sheet cannot tell, a contact
    clients["stroytrest"] = Client(
        "stroytrest", "contact", [("Стройтрест", ("", "Стройтрест", ""))], [phone()]
    )
    return clients


_TRANSLIT = dict(
    zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", "abvgdeejzijklmnoprstufhccss_y_eua", strict=True)
)


def _latin(word: str) -> str:
    return "".join(_TRANSLIT.get(c, c) for c in word.lower())


# ------------------------------------------------------------------ the sheet
FAULTS = {  # kind -> rate among the data rows (each one column, rejected unless said)
    "blank": 0.015,
    "header": 0.006,
    "email_only": 0.006,  # no client name, no phone: no project
    "note_row": 0.004,  # «Итого», «март 2024» in the first column: no project
    "money": 0.03,
    "date": 0.02,
    "date_year_word": 0.01,  # «01.02.2024 г.»: a date (accepted)
    "phone": 0.012,
    "email": 0.006,
    "inn": 0.004,
    "status": 0.01,
    "route": 0.008,
    "user": 0.008,
    "duplicate_id": 0.006,
    "two_faults": 0.006,  # a bad amount and a bad date: both cells named
    "foreign_currency": 0.004,  # «$1 200»: not roubles, rejected
    "noname_phone": 0.01,  # a phone and no name: a known client (or a nameless one)
    "name_only": 0.006,  # a one-off person with no phone, no e-mail
}

# the faults that leave a row valid (in the sheet without repeated row ids)
VALID_FAULTS = {None, "date_year_word", "noname_phone", "name_only"}


class _Writer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clients = make_clients(self.rng)
        # the clients rows are about again and again (one-offs join self.clients later)
        self.regulars = list(self.clients.values())
        self.weights = [6 if c.id in ("agromir", "magistral") else 1 for c in self.regulars]
        self.cells: list[list[str]] = [list(HEADER)]
        self.rows: list[Row] = []
        self.number = 0
        self.ids: list[str] = []
        self.strangers = 0
        self.contractors = [
            ("Тягач-Сервис", "9007654321"),
            ("ТралСпецТранс", "9113332211"),
            ("ИП Кузнецов (манипулятор)", "9214445566"),
            ("АвтоДорСервис", "9310001122"),
            ("Север-Трал", "9815550011"),
            ("Перевозчик Иван", None),  # no phone: found by its title
        ]
        self.oneoffs = 0
        self.tied: dict[str, set[str]] = {}  # client -> its phones and e-mails rows tied

    # -- one row
    def row(self) -> None:
        rng = self.rng
        sheet_row = len(self.cells) + 1
        fault = self.fault()
        if fault == "blank":
            self.cells.append(rng.choice([[""] * len(HEADER), [" "] * len(HEADER), []]))
            self.rows.append(Row(sheet_row, "blank", [None]))
            return
        if fault == "header":
            self.cells.append([f" {h}" if rng.random() < 0.3 else h for h in HEADER])
            self.rows.append(Row(sheet_row, "header", [None]))
            return
        cells = [""] * len(HEADER)
        truth = Row(sheet_row, "ok")
        if fault == "note_row":
            cells[0] = rng.choice(["Итого:", "март 2024", "ВНИМАНИЕ: ниже старые заявки"])
            cells[COL["Цена"]] = rng.choice(["", "12 345 000"])
            truth.kind, truth.reject = "note_row", ["Клиент"]
            self.cells.append(cells)
            self.rows.append(truth)
            return
        self.number += 1
        row_id = str(self.number)
        cells[0] = rng.choice([row_id] * 8 + [f" {row_id} ", ""])
        numbered = [i for i in self.ids[-30:] if not i.startswith("r")]
        if fault == "duplicate_id" and numbered:  # a row copied, its number kept
            row_id = rng.choice(numbered)
            cells[0] = row_id
        truth.row_id = row_id if cells[0].strip() else f"r{sheet_row}"
        self.ids.append(truth.row_id)
        truth.kind = fault or "ok"
        self.fill(cells, truth, fault)
        self.cells.append(cells)
        self.rows.append(truth)

    def fault(self) -> str | None:
        pick = self.rng.random()
        for kind, rate in FAULTS.items():
            if pick < rate:
                return kind
            pick -= rate
        return None

    def fill(self, cells: list[str], truth: Row, fault: str | None) -> None:
        """Every cell of a project row, and its truth (``fault``: the one to put in)."""
        self.route_and_stage(cells, truth, fault)
        self.client(cells, truth, fault)
        cargo = self.cargo(cells, truth)
        self.money(cells, truth, fault)
        self.date(cells, truth, fault)
        self.people(cells, truth, fault)
        self.extras(cells, truth)
        # what the row makes: the title template "{Клиент}: {Что везём}", and a child
        parts = [" ".join(cells[COL["Клиент"]].split()), " ".join(cargo.split())]
        title = ": ".join(parts) if all(parts) else "".join(parts)
        truth.title = title.strip(" :-—") or f"Проект {truth.row_id}"
        logist = bool(cells[COL["Логист"]])
        # the company blueprint's links take parents from every sales direction: the
        # estimate (named by a logist, or an open parent at or past «Оценить») and the
        # engineer's task (an open parent at «Договор»)
        truth.child = logist or truth.stage in OPEN_AT_OR_PAST_TRIGGER
        truth.engineering = truth.stage == "CONTRACT"

    def route_and_stage(self, cells: list[str], truth: Row, fault: str | None) -> None:
        rng = self.rng
        # the direction: its pipeline, or the default for an empty cell
        pipeline = rng.choice(list(DIRECTIONS))
        if rng.random() < 0.08:
            pipeline = DEFAULT_PIPELINE
        else:
            cells[COL["Направление"]] = rng.choice(DIRECTIONS[pipeline])
        if fault == "route":
            cells[COL["Направление"]] = rng.choice(["Лизинг", "прочее", "ключ"])
            truth.reject.append("Направление")
        # the status: the stage
        stage = rng.choice(list(STAGES))
        word = rng.choice(STAGES[stage])
        shaped = rng.choice(
            [word, word.capitalize(), word.upper(), f"  {word} ", word.replace(" ", "  ")]
        )
        if rng.random() < 0.03:
            shaped = lookalike(rng, shaped)  # «Oценить»: a Latin O
        if rng.random() < 0.06:
            stage, shaped = "NEW", ""  # empty: the default
        cells[COL["Статус"]] = shaped
        if fault == "status":
            cells[COL["Статус"]] = rng.choice(STATUS_REFUSED)
            truth.reject.append("Статус")
        truth.pipeline, truth.stage = pipeline, stage

    def cargo(self, cells: list[str], truth: Row) -> str:
        rng = self.rng
        cargo = rng.choice(CARGO) if rng.random() < 0.95 else ""
        if cargo and rng.random() < 0.03:
            cargo = "=" + cargo  # pasted as a formula: kept as text, warned
            truth.warn = True
        if cargo and rng.random() < 0.1:
            cargo = f" {cargo}  "
        cells[COL["Что везём"]] = cargo
        return cargo

    def money(self, cells: list[str], truth: Row, fault: str | None) -> None:
        rng = self.rng
        if rng.random() < 0.9:
            text, value = money_text(rng)
            cells[COL["Цена"]] = text
            truth.amount = f"{value:.2f}"
        if fault in ("money", "two_faults"):
            cells[COL["Цена"]] = rng.choice(MONEY_REFUSED)
            truth.amount = None
            truth.reject.append("Цена")
        if fault == "foreign_currency":  # read by the parser, refused: the deals are in RUB
            cells[COL["Цена"]] = rng.choice(["$1 200", "1 200 USD", "€ 950", "950 евро"])
            truth.amount, truth.foreign_currency = None, True
            truth.reject.append("Цена")

    def date(self, cells: list[str], truth: Row, fault: str | None) -> None:
        rng = self.rng
        day = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 700))
        if rng.random() < 0.95:
            cells[COL["Дата"]] = date_text(rng, day)
            truth.date = day.isoformat()
        if fault == "date_year_word":
            pattern = rng.choice(DATES_WITH_YEAR_WORD)
            cells[COL["Дата"]] = pattern.format(
                d=day.day, m=day.month, y=day.year, mon=MONTHS[day.month - 1]
            )
            truth.date = day.isoformat()
        if fault in ("date", "two_faults"):
            cells[COL["Дата"]] = rng.choice(DATES_REFUSED)
            truth.date = None
            truth.reject.append("Дата")

    def people(self, cells: list[str], truth: Row, fault: str | None) -> None:
        rng = self.rng
        if rng.random() < 0.9:
            name = rng.choice(list(USERS))
            truth.assignee = USERS[name]
            cells[COL["Менеджер"]] = rng.choice(
                [name] * 4 + [name.lower(), f"{name} ", name.upper()]
            )
            if rng.random() < 0.02:
                cells[COL["Менеджер"]] = lookalike(rng, name)
        if fault == "user":
            cells[COL["Менеджер"]] = rng.choice(USERS_REFUSED)
            truth.assignee = None
            truth.reject.append("Менеджер")
        cells[COL["Логист"]] = rng.choice(LOGISTS) if rng.random() < 0.35 else ""

    def extras(self, cells: list[str], truth: Row) -> None:
        """The contractor and the comment."""
        rng = self.rng
        if rng.random() < 0.4:
            title, cphone = rng.choice(self.contractors)
            cells[COL["Подрядчик"]] = rng.choice([title, title, f"{title} "])
            if cphone:
                cells[COL["Телефон подрядчика"]] = phone_text(rng, cphone)
            truth.contractor = title
        if rng.random() < 0.3:
            cells[COL["Комментарий"]] = rng.choice(COMMENTS)
            truth.comment = True
            truth.warn = truth.warn or cells[COL["Комментарий"]].startswith("=")

    def client(self, cells: list[str], truth: Row, fault: str | None) -> None:
        if self.one_off(cells, truth, fault):
            return
        rng = self.rng
        client = rng.choices(self.regulars, self.weights)[0]
        truth.client = client.id
        if fault != "noname_phone":
            cells[COL["Клиент"]] = rng.choice(client.spellings)[0]
        self.identifiers(cells, truth, fault, client)
        if client.inn and (client.inn_always or rng.random() < 0.5):
            inn = client.inn
            cells[COL["ИНН"]] = rng.choice([inn, f"{inn[:4]} {inn[4:7]} {inn[7:]}", f" {inn}"])
        if client.persons and rng.random() < 0.8:
            words = rng.choice(client.persons)
            shown = [w.capitalize() for w in words]
            if rng.random() < 0.5:
                shown.reverse()
            cells[COL["Контактное лицо"]] = " ".join(shown)
            truth.person = " ".join(sorted(words))
        self.client_faults(cells, truth, fault)

    def one_off(self, cells: list[str], truth: Row, fault: str | None) -> bool:
        """A row about no known client: only an e-mail (no project), a first name alone,
        a stranger's phone alone. Whether it was one."""
        rng = self.rng
        if fault == "email_only":
            cells[COL["Email"]] = f"lead{len(self.cells)}@gmail.com"
            truth.reject.append("Клиент")
            return True
        if fault == "name_only":  # «Михаил»: a contact of its own, even when repeated
            self.oneoffs += 1
            name = rng.choice(["Михаил", "Наталья", "Виктор"])
            key = f"oneoff{self.oneoffs}"
            self.clients[key] = Client(key, "contact", [(name, ("", name, ""))])
            cells[COL["Клиент"]] = name
            truth.client = key
            return True
        if fault == "noname_phone" and rng.random() < 0.3:
            self.strangers += 1
            number = f"9{700000000 + self.strangers * 7919:09d}"
            key = f"stranger{self.strangers}"
            self.clients[key] = Client(key, "contact", [], [number])
            cells[COL["Телефон"]] = phone_text(rng, number)
            truth.client, truth.phones, truth.kind = key, ["+7" + number], "noname_stranger"
            return True
        return False

    def identifiers(self, cells: list[str], truth: Row, fault: str | None, client: Client) -> None:
        """The row's phones and e-mails. Every row of a person names it by something
        another row of it also names (a name is no identifier: two Ивановых are two
        people): the first phone on most rows, a second phone or an e-mail alone only once
        a valid row tied it to the first. An organisation's rows are tied by its name too."""
        rng = self.rng
        phones: list[str] = []
        tied = self.tied.setdefault(client.id, set())
        if client.phones and (rng.random() >= client.rows_without_phone or fault):
            phones = [client.phones[0]]
            if len(client.phones) > 1 and rng.random() < 0.4:
                phones.append(client.phones[1])
            if client.phones[1:2] and client.phones[1] in tied and rng.random() < 0.2:
                phones = [client.phones[1]]  # the second phone alone: tied by another row
        if fault == "noname_phone" and not phones:
            phones = client.phones[:1]
            if not phones:  # a client with no phone: write its name after all
                cells[COL["Клиент"]] = rng.choice(client.spellings)[0]
                truth.kind = "ok"
        emails: list[str] = []
        if client.emails and rng.random() < 0.5:
            emails = client.emails[: rng.choice([1, len(client.emails)])]
        alone = [e for e in client.emails if e in tied]
        if client.kind == "contact" and alone and fault is None and rng.random() < 0.1:
            phones, emails = [], alone[:1]  # an e-mail alone: tied by another row
        if client.kind == "contact" and not phones and not (emails and set(emails) <= tied):
            phones = client.phones[:1]
        if phones:
            cells[COL["Телефон"]] = (
                phones_text(rng, phones) if len(phones) > 1 else phone_text(rng, phones[0])
            )
        if emails:
            cells[COL["Email"]] = ", ".join(email_text(rng, e) for e in emails)
        truth.phones = ["+7" + p for p in phones]
        truth.emails = [e.lower() for e in emails]
        if fault in VALID_FAULTS and client.phones and client.phones[0] in phones:
            tied.update([*phones, *emails])

    def client_faults(self, cells: list[str], truth: Row, fault: str | None) -> None:
        rng = self.rng
        if fault == "phone":
            cells[COL["Телефон"]] = rng.choice(
                ["нет", "+7 926 111 22", "8926111223344", "123-45-67", "8 926 1O1-22-33"]
            )
            truth.phones = []
            truth.reject.append("Телефон")
        if fault == "email":
            cells[COL["Email"]] = rng.choice(["ivanov@mail", "ivanov.mail.ru", "@", "почта"])
            truth.emails = []
            truth.reject.append("Email")
        if fault == "inn":
            cells[COL["ИНН"]] = rng.choice(["не знаю", "77012345", "77O1234567", "1234567890123"])
            truth.reject.append("ИНН")

    def finish(self) -> Sheet:
        # a row id written twice names no row: both rows are rejected, the first too
        counts = Counter(r.row_id for r in self.rows if r.row_id)
        for r in self.rows:
            if r.row_id and counts[r.row_id] > 1:
                r.duplicate_id = True
                r.reject.append("№")
        return Sheet(self.cells, grid(self.cells), self.rows, self.clients)


def grid(cells: list[list[str]]) -> list[list[Any]]:
    """The cells as gspread reads a Google Sheet unformatted: a cell of digits is a number
    (phones, serial dates, amounts, row ids, INNs: one that starts with 0 loses it)."""
    out: list[list[Any]] = []
    for line in cells:
        row: list[Any] = []
        for value in line:
            text = value.strip()
            if text.isdigit() and len(text) < 16:
                row.append(int(text))
            else:
                row.append(value)
        out.append(row)
    return out


def make_sheet(seed: int = 10, rows: int = 2000) -> Sheet:
    """A sheet of ``rows`` data rows (plus its header) and its truth."""
    writer = _Writer(seed)
    while len(writer.rows) < rows:
        writer.row()
    return writer.finish()


def shuffled(sheet: Sheet, seed: int) -> Sheet:
    """The same rows in another order (the header stays first); the truth follows each row,
    its sheet row number, and a row id made from the row number changes with it."""
    rng = random.Random(seed)
    order = list(range(len(sheet.rows)))
    rng.shuffle(order)
    cells = [sheet.cells[0]]
    rows: list[Row] = []
    for new, old in enumerate(order):
        truth = sheet.rows[old].copy(row=new + 2)
        line = sheet.cells[old + 1]
        if truth.row_id and truth.row_id == f"r{sheet.rows[old].row}":
            truth.row_id = f"r{new + 2}"
            if truth.title == f"Проект r{sheet.rows[old].row}":
                truth.title = f"Проект r{new + 2}"
        cells.append(line)
        rows.append(truth)
    # each line's grid row is the line's own: the rows in the new order, not read again
    lines = [sheet.grid[0], *(sheet.grid[old + 1] for old in order)]
    return Sheet(cells, [list(line) for line in lines], rows, sheet.clients)


def without_duplicate_ids(sheet: Sheet) -> Sheet:
    """The sheet with every repeated row id made unique (the later rows renumbered): the
    rehearsal of everything but that fault."""
    cells = [list(line) for line in sheet.cells]
    rows: list[Row] = []
    taken = {r.row_id for r in sheet.rows if r.row_id}
    seen: set[str] = set()
    fresh = 100_000
    for r in sheet.rows:
        truth = r.copy()
        if truth.duplicate_id:
            truth.duplicate_id = False
            truth.reject = [c for c in truth.reject if c != "№"]
            if truth.row_id in seen:
                while str(fresh) in taken:
                    fresh += 1
                truth.row_id = str(fresh)
                taken.add(truth.row_id)
                cells[r.row - 1][0] = truth.row_id
                if truth.title == f"Проект {r.row_id}":
                    truth.title = f"Проект {truth.row_id}"
        if truth.row_id:
            seen.add(truth.row_id)
        rows.append(truth)
    return Sheet(cells, grid(cells), rows, sheet.clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("messy.csv"))
    args = parser.parse_args()
    sheet = make_sheet(args.seed, args.rows)
    sheet.write_csv(args.out)
    args.out.with_suffix(".truth.json").write_text(
        json.dumps(sheet.truth(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    counts = sheet.counts()
    rejected = sum(not r.valid for r in sheet.rows)
    print(f"wrote {args.out}: {len(sheet.rows)} rows, {rejected} to reject, {counts}")


if __name__ == "__main__":
    main()
