"""Table-driven tests of the migration value parsers, ugly cases first."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from b24kit.migrate.parsers import (
    Enumeration,
    ParseError,
    fold_lookalikes,
    parse_date,
    parse_emails,
    parse_inn,
    parse_money,
    parse_phones,
    parse_yes_no,
)

MONEY: list[tuple[Any, str, str, bool]] = [
    ("125 000 руб.", "125000", "RUB", False),
    ("125000,50", "125000.50", "RUB", False),
    ("125\u00a0000,50 ₽", "125000.50", "RUB", False),
    ("1 250 000", "1250000", "RUB", False),
    ("1.250.000", "1250000", "RUB", False),
    ("1,250,000", "1250000", "RUB", False),
    ("125 000.50 р.", "125000.50", "RUB", False),
    ("125 тыс.", "125000", "RUB", False),
    ("125т.р.", "125000", "RUB", False),
    ("1,2 млн", "1200000", "RUB", False),
    ("$1,200.50", "1200.50", "USD", False),
    ("1.200,50 €", "1200.50", "EUR", False),
    ("350 долларов", "350", "USD", False),
    ("1 250,5 тыс. руб.", "1250500", "RUB", False),
    ("₽ 12 500", "12500", "RUB", False),
    ("12.500,00", "12500.00", "RUB", False),
    ("12,500.00", "12500.00", "RUB", False),
    ("12'500", "12500", "RUB", False),
    ("12 345 678", "12345678", "RUB", False),
    ("5k", "5000", "RUB", False),
    ("5 к", "5000", "RUB", False),
    ("1,250 тыс", "1250", "RUB", False),  # with a multiplier the separator is a decimal one
    ("+500", "500", "RUB", False),
    ("0", "0", "RUB", False),
    ("10,5", "10.5", "RUB", False),
    ("1 000,555", "1000.56", "RUB", True),  # rounded to kopecks, and said so
    # grouped thousands, then three digits after the last separator: a decimal part, but
    # 1 250 000 may have been meant, and read exactly it was silent
    ("1 250.000", "1250", "RUB", True),
    ("1.250,000", "1250", "RUB", False),  # thousands by points: the comma is decimal
    ("1,250.000", "1250", "RUB", False),  # and the other way round
    ("125000.500", "125000.5", "RUB", False),  # no thousands grouped: a decimal point
    (125000, "125000", "RUB", False),
    (99.5, "99.5", "RUB", False),
    (0.125, "0.13", "RUB", True),
]


@pytest.mark.parametrize(
    ("raw", "amount", "currency", "warned"), MONEY, ids=[str(m[0]) for m in MONEY]
)
def test_money(raw: Any, amount: str, currency: str, warned: bool) -> None:
    parsed = parse_money(raw)
    assert parsed.value == (Decimal(amount), currency)
    assert (parsed.warning is not None) is warned


def test_three_digits_after_grouped_thousands_say_both_readings() -> None:
    assert parse_money("1 250.000").warning == (
        "read '1 250.000' as 1 250, not 1 250 000: three digits after the last separator"
    )
    assert parse_money("1 250,500").warning == (
        "read '1 250,500' as 1 250,5, not 1 250 500: three digits after the last separator"
    )


MONEY_REFUSED: list[tuple[Any, str]] = [
    ("", "empty amount"),
    ("   ", "empty amount"),
    ("договорная", "no amount"),
    ("руб.", "no amount"),
    ("тыс", "no amount"),
    ("1,2,3.4,5", "grouped in an unusual way"),
    # issue 10: each of these was read as a number, with no warning
    ("1e9999", "an exponent"),
    ("1E5", "an exponent"),
    ("ок 5000", "words around the amount ('ок')"),
    ("около 5000", "words around the amount ('около')"),
    ("12-15 тыс", "a range"),
    ("10 – 20", "a range"),
    ("abc123", "words around the amount ('abc')"),
    ("-500", "a negative amount"),
    ("−5 000 ₽", "a negative amount"),
    (-5.0, "a negative amount"),
    ("1,250", "1250 or 1.250?"),  # thousands or decimals: nobody can tell
    ("1.250 р", "1250 or 1.250?"),
    ("12 5000", "grouped in an unusual way"),
    ("1 23", "grouped in an unusual way"),
    ("12..5", "grouped in an unusual way"),
    ("2.5.2024", "grouped in an unusual way"),
    ("5000 руб 50 коп", "words around the amount ('коп')"),
    ("к5", "not one amount"),
    ("$100 руб", "more than one currency"),
    ("100 $ 200", "not one amount"),
    ("--5", "two signs"),
    (float("nan"), "is not an amount"),
    (float("inf"), "is not an amount"),
    (True, "is not an amount"),
    ("=1000*2", "not one amount"),
]


@pytest.mark.parametrize(("raw", "reason"), MONEY_REFUSED, ids=[repr(m[0]) for m in MONEY_REFUSED])
def test_money_refused_with_the_reason(raw: Any, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_money(raw)
    assert reason in str(info.value)


def test_negative_amounts_only_where_the_mapping_allows_them() -> None:
    assert parse_money("-5 000", negative=True).value == (Decimal(-5000), "RUB")
    assert parse_money("−1,5 тыс", negative=True).value == (Decimal(-1500), "RUB")
    assert parse_money(-2.5, negative=True).value == (Decimal("-2.5"), "RUB")


def test_a_number_keeps_its_decimals() -> None:
    assert parse_money("0,125", places=None).value == (Decimal("0.125"), "RUB")


DATES: list[tuple[Any, date, bool]] = [
    ("01.02.2024", date(2024, 2, 1), False),
    ("1.2.24", date(2024, 2, 1), False),
    ("01.02.2024 10:30", date(2024, 2, 1), False),
    ("2024-02-01", date(2024, 2, 1), False),
    ("2024-02-01T10:00:00+03:00", date(2024, 2, 1), False),
    ("1 февраля 2024", date(2024, 2, 1), False),
    ("15 мая 2023 г.", date(2023, 5, 15), False),
    ("3 Сент 2022", date(2022, 9, 3), False),
    (45323, date(2024, 2, 1), False),
    (45323.75, date(2024, 2, 1), False),
    ("45323", date(2024, 2, 1), False),
    ("25/12/2023", date(2023, 12, 25), False),
    ("01/02/2024", date(2024, 2, 1), True),  # day/month/year, guessed
    (datetime(2024, 2, 1, 9, 0), date(2024, 2, 1), False),
    ("2024-02-01 10:30", date(2024, 2, 1), False),
    ("2024-02-01T10:30:15Z", date(2024, 2, 1), False),
    ("01.02.2024 10:30:15", date(2024, 2, 1), False),
    ("1 мая 2024", date(2024, 5, 1), False),
    ("3 сент. 2024", date(2024, 9, 3), False),
    ("12 декабря 2023г", date(2023, 12, 12), False),
    # the year word after a numeric date, as Russian documents write it (issue 10's messy
    # sheet: «01.02.2024 г.» was refused)
    ("01.02.2024 г.", date(2024, 2, 1), False),
    ("01.02.2024г.", date(2024, 2, 1), False),
    ("1.2.24 г", date(2024, 2, 1), False),
    ("28 апреля 2024 года", date(2024, 4, 28), False),
    ("01.02.2024 г. 10:30", date(2024, 2, 1), False),
    ("1.2.1990", date(1990, 2, 1), False),
    # a two-digit year as a spreadsheet reads it (00-29: 20xx, 30-99: 19xx): 95 was 2095
    ("01.02.95", date(1995, 2, 1), False),
    ("31.12.29", date(2029, 12, 31), False),
    ("1/2/99", date(1999, 2, 1), True),
]

DATES_REFUSED: list[tuple[Any, str]] = [
    # text after the date was ignored: a note in the cell is not a time
    ("01.02.2024 примерно", "is not a date"),
    ("2024-02-01 abc", "is not a date"),
    ("01.02.2024 или 03.02.2024", "is not a date"),
    # a typo'd year was taken as written
    ("1.2.1024", "the year 1024 is outside 1990 to 2100"),
    ("01.02.20244", "is not a date"),
    ("01.02.85", "the year 1985 is outside"),  # 1985 as a spreadsheet reads it, not 2085
    (5, "the year 1900 is outside"),  # a spreadsheet serial of 1900
    (date(1900, 1, 1), "the year 1900 is outside"),
    ("1 маяка 2024", "unknown month"),  # not any word that starts like a month
    ("01.02.2024 год", "is not a date"),
    ("2024-02-01 г.", "is not a date"),
]


@pytest.mark.parametrize(("raw", "reason"), DATES_REFUSED, ids=[repr(d[0]) for d in DATES_REFUSED])
def test_dates_refused_with_the_reason(raw: Any, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_date(raw)
    assert reason in str(info.value)


@pytest.mark.parametrize(("raw", "expected", "warned"), DATES, ids=[str(d[0]) for d in DATES])
def test_dates(raw: Any, expected: date, warned: bool) -> None:
    parsed = parse_date(raw)
    assert parsed.value == expected and (parsed.warning is not None) is warned


@pytest.mark.parametrize(
    "raw", ["", "31.02.2024", "32.01.2024", "вчера", "1 бреля 2024", 0, "2024-13-01"]
)
def test_date_errors(raw: Any) -> None:
    with pytest.raises(ParseError):
        parse_date(raw)


PHONES: list[tuple[Any, list[str], bool]] = [
    ("Иван 8 926 111-22-33", ["+79261112233"], True),  # the name is dropped, and said so
    ("8 (900) 123-45-67", ["+79001234567"], False),
    ("+7 900 123 45 67", ["+79001234567"], False),
    ("7-900-123-45-67", ["+79001234567"], False),
    ("9001234567", ["+79001234567"], False),
    (79001234567, ["+79001234567"], False),
    ("8(495)123-45-67", ["+74951234567"], False),
    ("(843) 123-45-67", ["+78431234567"], False),  # Kazan's area code: 8 and 4, no 8 prefix
    ("8 800 555-35-35", ["+78005553535"], False),
    ("8 900 123-45-67, 8 (901) 765 43 21", ["+79001234567", "+79017654321"], False),
    ("89001234567; +79001234567", ["+79001234567"], False),  # the same number once
    ("8 900 123 45 67 или 8 912 000 00 00", ["+79001234567", "+79120000000"], False),
    ("+7 900 123-45-67 доб. 123", ["+79001234567"], True),
    ("+375 29 123-45-67", ["+375291234567"], False),
    ("тел.: 8-900-123-45-67 (Иван)", ["+79001234567"], True),  # «Иван» dropped, said
]


@pytest.mark.parametrize(("raw", "expected", "warned"), PHONES, ids=[str(p[0]) for p in PHONES])
def test_phones(raw: Any, expected: list[str], warned: bool) -> None:
    parsed = parse_phones(raw)
    assert parsed.value == expected and (parsed.warning is not None) is warned


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "нет телефона",
        "123-45",
        "8 900 123",
        "+7 900 123 45 67 89 0",
        # a letter among the digits (O for 0): its digits made another valid number
        "8 926 1O1-22-33",
        "8 9OO 123 45 67",
        "+7 926 l23 45 67",
        # a mobile number one digit short: no area code starts 89 or 88, so it is not
        # +7 892 611-12-23 (read so, it made a second contact for the same person)
        "8 926 111-22-3",
        "8 881 111 22 3",
    ],
)
def test_phone_errors(raw: str) -> None:
    with pytest.raises(ParseError):
        parse_phones(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Да", True),
        ("да ", True),
        ("YES", True),
        ("+", True),
        ("1", True),
        ("✓", True),
        ("Нет", False),
        ("no", False),
        ("-", False),
        ("0", False),
        (True, True),
        (False, False),
    ],
)
def test_yes_no(raw: Any, expected: bool) -> None:
    assert parse_yes_no(raw).value is expected


def test_yes_no_errors() -> None:
    with pytest.raises(ParseError, match="neither yes nor no"):
        parse_yes_no("может быть")


STATUS = Enumeration(
    {
        "ESTIMATE": ["Оценить", "считаем", "в работе"],
        "ESTIMATE_READY": ["Оценка готова", "оценено"],
        "WON": ["Оплачено", "Закрыто"],
    }
)


@pytest.mark.parametrize(
    ("raw", "expected", "warned"),
    [
        ("Оценить", "ESTIMATE", False),
        ("  оценить ", "ESTIMATE", False),
        ("В  РАБОТЕ", "ESTIMATE", False),
        ("ОЦЕНКА ГОТОВА", "ESTIMATE_READY", False),
        ("оплачено!", "WON", True),
        ("WON", "WON", False),
        ("закрыто", "WON", False),
        ("Оценка Готова", "ESTIMATE_READY", False),
        # Latin letters typed for the Cyrillic ones they look like
        ("Oценить", "ESTIMATE", False),
        ("B РАБОТЕ", "ESTIMATE", False),
        ("ОПЛAЧЕНО", "WON", False),
        ("зaкрытo", "WON", False),
    ],
)
def test_enumeration(raw: str, expected: str, warned: bool) -> None:
    parsed = STATUS.parse(raw)
    assert parsed.value == expected and (parsed.warning is not None) is warned


def test_enumeration_errors() -> None:
    with pytest.raises(ParseError, match="unknown value 'потом'"):
        STATUS.parse("потом")
    with pytest.raises(ValueError, match="maps to both"):
        Enumeration({"A": ["x"], "B": ["X "]}).table()
    assert Enumeration({"A": ["ёлка"]}).parse("Елка").value == "A", "ё and е match"


def test_emails() -> None:
    assert parse_emails("Ivan@Example.ru; ivan@example.ru, petr@mail.ru").value == [
        "ivan@example.ru",
        "petr@mail.ru",
    ]
    with pytest.raises(ParseError):
        parse_emails("нет почты")


@pytest.mark.parametrize(
    ("raw", "expected", "warned"),
    [
        # brackets, quotes, a label or a full stop around an address were written with it
        ("[anna@mail.ru]", ["anna@mail.ru"], False),
        ("mailto:a@b.ru", ["a@b.ru"], False),
        ("E-mail:a@b.ru", ["a@b.ru"], False),
        ("e-mail: a@b.ru.", ["a@b.ru"], False),
        ("«Zakaz@Tyazhmash.ru»", ["zakaz@tyazhmash.ru"], False),
        # a slash between two addresses made one address the portal refused, at run time
        ("ivan@mail.ru/petr@mail.ru", ["ivan@mail.ru", "petr@mail.ru"], False),
        ("Анна anna@mail.ru", ["anna@mail.ru"], True),  # the name dropped, and said so
        ("ivan.p+zakaz@mail.ru", ["ivan.p+zakaz@mail.ru"], False),
        ("почта@пример.рф", ["почта@пример.рф"], False),
        ("ivan@xn--80a1acny.xn--p1ai", ["ivan@xn--80a1acny.xn--p1ai"], False),  # punycode
        ("a@b.ru\u200b", ["a@b.ru"], False),  # a zero-width space pasted with it
    ],
)
def test_emails_as_people_write_them(raw: str, expected: list[str], warned: bool) -> None:
    parsed = parse_emails(raw)
    assert parsed.value == expected and (parsed.warning is not None) is warned


@pytest.mark.parametrize(
    "raw",
    # ".ivan@mail.ru" was quietly written as another address, ivan@mail.ru
    ["a@b", "a@@b.ru", "ivan@mail", "anna@mail.ru petr@", ".ivan@mail.ru"],
)
def test_an_address_that_is_none_is_rejected(raw: str) -> None:
    with pytest.raises(ParseError, match="is not an e-mail address"):
        parse_emails(raw)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Oценить", "Оценить"),  # a Latin O
        ("B работе", "В работе"),  # a Latin B alone, beside Cyrillic
        ("Cмирнов", "Смирнов"),
        ("OK", "OK"),  # no Cyrillic: as written
        ("экскаватор JCB", "экскаватор JCB"),  # J is no look-alike: as written
        ("ok", "ok"),
    ],
)
def test_latin_look_alikes_fold_only_beside_cyrillic(text: str, folded: str) -> None:
    assert fold_lookalikes(text) == folded


def test_an_inn_in_a_number_cell_gets_its_leading_zero_back() -> None:
    """A Google Sheet keeps 0274062111 typed in a number cell as 274062111."""
    assert parse_inn(274062111).value == "0274062111"
    assert parse_inn(274062111).warning is None
    with pytest.raises(ParseError):
        parse_inn(274062112)  # with a 0 its check digit fails: no guess
