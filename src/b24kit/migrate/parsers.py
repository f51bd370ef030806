"""Value parsers for hand-kept Russian sheets. Each returns ``Parsed(value, warning)`` or
raises ``ParseError`` with a reason a person understands. A warning means the value was
read with a guess (an ambiguous date, a comma that may be a decimal point) and is listed
in the migration report."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from b24kit.errors import InputError


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class Parsed:
    value: Any
    warning: str | None = None


def _text(raw: Any) -> str:
    return "" if raw is None else str(raw).strip()


def normalize_word(text: str) -> str:
    """Case-, space- and ё-insensitive form of a word for matching."""
    return re.sub(r"\s+", " ", text.strip().lower().replace("ё", "е"))


# ------------------------------------------------------------------ money
CURRENCY_WORDS = [
    (r"руб(?:\.|лей|ля|ль)?|р\.|₽|rub", "RUB"),
    (r"\$|usd|долл(?:\.|аров|ара)?", "USD"),
    (r"€|eur|евро", "EUR"),
]
MULTIPLIERS = [
    (r"тыс(?:\.|яч[аи]?)?|т\.?р\.?|к(?=\W|$)", Decimal(1000)),
    (r"млн\.?|миллион(?:ов|а)?", Decimal(1_000_000)),
]


def parse_money(raw: Any, default_currency: str = "RUB") -> Parsed:
    """``125 000 руб.``, ``125000,50``, ``1 250 000 ₽``, ``125 тыс.``, ``$1,200.50`` ->
    Parsed((Decimal, currency))."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Parsed((Decimal(str(raw)), default_currency))
    text = _text(raw).lower().replace("\u00a0", " ").replace("\u202f", " ")
    if not text:
        raise ParseError("empty amount")
    factor = Decimal(1)  # multipliers first: "т.р." is thousands of roubles
    for pattern, mult in MULTIPLIERS:
        if re.search(pattern, text):
            factor = mult
            text = re.sub(pattern, " ", text)
    currency = default_currency
    for pattern, code in CURRENCY_WORDS:
        if re.search(pattern, text):
            currency = code
            text = re.sub(pattern, " ", text)
    negative = text.strip().startswith(("-", "−", "–"))
    digits = re.sub(r"[^\d.,]", "", text.replace(" ", ""))
    if not digits or not re.search(r"\d", digits):
        raise ParseError(f"no amount in {_text(raw)!r}")
    warning = None
    if "," in digits and "." in digits:
        decimal_sep = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        digits = digits.replace(thousands, "").replace(decimal_sep, ".")
    elif digits.count(",") > 1 or digits.count(".") > 1:
        sep = "," if digits.count(",") > 1 else "."
        digits = digits.replace(sep, "")  # 1,250,000 or 1.250.000: thousands separators
    elif "," in digits or "." in digits:
        sep = "," if "," in digits else "."
        head, tail = digits.split(sep)
        if len(tail) == 3 and factor == 1 and sep == ",":
            warning = f"read {_text(raw)!r} as {head}.{tail} (a decimal comma), not thousands"
        digits = f"{head}.{tail}"
    try:
        value = Decimal(digits) * factor
    except InvalidOperation as exc:
        raise ParseError(f"{_text(raw)!r} is not an amount") from exc
    return Parsed((-value if negative else value, currency), warning)


# ------------------------------------------------------------------ dates
EXCEL_EPOCH = date(1899, 12, 30)
MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("январ", "янв"),
            ("феврал", "фев"),
            ("март", "мар"),
            ("апрел", "апр"),
            ("ма",),
            ("июн",),
            ("июл",),
            ("август", "авг"),
            ("сентябр", "сен"),
            ("октябр", "окт"),
            ("ноябр", "ноя"),
            ("декабр", "дек"),
        ],
        start=1,
    )
    for name in names
}


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def parse_date(raw: Any) -> Parsed:
    """``01.02.2024``, ``1.2.24``, ``2024-02-01``, ``1 февраля 2024``, spreadsheet serial
    numbers (45323) and date cells -> Parsed(date)."""
    if isinstance(raw, datetime):
        return Parsed(raw.date())
    if isinstance(raw, date):
        return Parsed(raw)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        if not 1 <= raw < 100_000:
            raise ParseError(f"{raw} is not a spreadsheet date")
        return Parsed(EXCEL_EPOCH + timedelta(days=int(raw)))
    text = _text(raw).lower()
    if not text:
        raise ParseError("empty date")
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        return parse_date(float(text))
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ t].*)?", text):
            return Parsed(date(int(m[1]), int(m[2]), int(m[3])))
        if m := re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})(?:\s.*)?", text):
            return Parsed(date(_year(m[3]), int(m[2]), int(m[1])))
        if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})", text):
            day, month = int(m[1]), int(m[2])
            warning = None if day > 12 or day == month else (f"read {text!r} as day/month/year")
            return Parsed(date(_year(m[3]), month, day), warning)
        if m := re.fullmatch(r"(\d{1,2})\s+([а-я]+)\.?\s+(\d{4})(?:\s*г\.?)?", text):
            named = next((n for stem, n in MONTHS.items() if m[2].startswith(stem)), None)
            if named is None:
                raise ParseError(f"unknown month in {text!r}")
            return Parsed(date(int(m[3]), named, int(m[1])))
    except ValueError as exc:
        raise ParseError(f"{_text(raw)!r} is not a real date ({exc})") from None
    raise ParseError(f"{_text(raw)!r} is not a date (expected 01.02.2024 or 2024-02-01)")


# ----------------------------------------------------------------- phones
PHONE_SPLIT = re.compile(r"[;,/\n]|\s+(?:или|и|or)\s+")
EXTENSION = re.compile(r"(доб\.?|ext\.?|вн\.?)\s*\d+", re.IGNORECASE)


def parse_phone_one(raw: str) -> Parsed:
    text = raw.strip()
    warning = None
    if EXTENSION.search(text):
        warning = f"extension dropped from {text!r}"
        text = EXTENSION.sub("", text)
    international = text.startswith("+")
    digits = re.sub(r"\D", "", text)
    if international and not digits.startswith("7"):
        if not 8 <= len(digits) <= 15:
            raise ParseError(f"{raw.strip()!r} is not a phone number")
        return Parsed("+" + digits, warning)
    if len(digits) == 11 and digits[0] in "78":
        digits = "7" + digits[1:]
    elif len(digits) == 10 and digits[0] in "3489":
        digits = "7" + digits
    else:
        raise ParseError(
            f"{raw.strip()!r} is not a Russian phone number (10 digits, or 11 starting with 7 or 8)"
        )
    return Parsed("+" + digits, warning)


def parse_phones(raw: Any) -> Parsed:
    """Any Russian shape to E.164, several in one cell -> Parsed([+7...])."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(int(raw))
    text = _text(raw)
    if not text:
        raise ParseError("empty phone")
    out: list[str] = []
    warnings: list[str] = []
    for part in PHONE_SPLIT.split(text):
        if not part or not re.search(r"\d", part):
            continue
        parsed = parse_phone_one(part)
        if parsed.value not in out:
            out.append(parsed.value)
        if parsed.warning:
            warnings.append(parsed.warning)
    if not out:
        raise ParseError(f"no phone number in {text!r}")
    return Parsed(out, "; ".join(warnings) or None)


def parse_emails(raw: Any) -> Parsed:
    text = _text(raw)
    found = [e.lower() for e in re.findall(r"[^\s,;<>()]+@[^\s,;<>()]+\.[a-zA-Zа-яА-Я]{2,}", text)]
    if not found:
        raise ParseError(f"no e-mail address in {text!r}")
    return Parsed(list(dict.fromkeys(found)))


# ------------------------------------------------------------ words, lists
YES = {"да", "yes", "y", "д", "+", "1", "✓", "✔", "true", "истина", "есть", "ок", "ok"}
NO = {"нет", "no", "n", "н", "-", "0", "false", "ложь", "—", "–"}


def parse_yes_no(raw: Any) -> Parsed:
    if isinstance(raw, bool):
        return Parsed(raw)
    word = normalize_word(_text(raw))
    if word in YES:
        return Parsed(True)
    if word in NO:
        return Parsed(False)
    raise ParseError(f"{_text(raw)!r} is neither yes nor no (да/нет)")


@dataclass(frozen=True)
class Enumeration:
    """Sheet words to codes: ``{"ESTIMATE": ["в работе", "считаем"], "WON": ["оплачено"]}``.
    The code itself always matches too."""

    synonyms: Mapping[str, Sequence[str]]

    def table(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for code, words in self.synonyms.items():
            for word in (code, *words):
                key = normalize_word(str(word))
                if key in out and out[key] != code:
                    raise InputError(f"{word!r} maps to both {out[key]} and {code}")
                out[key] = code
        return out

    def parse(self, raw: Any) -> Parsed:
        word = normalize_word(_text(raw))
        table = self.table()
        if word in table:
            return Parsed(table[word])
        stripped = re.sub(r"[^\w ]", "", word).strip()
        if stripped in table:
            return Parsed(table[stripped], f"read {_text(raw)!r} as {table[stripped]}")
        known = ", ".join(sorted({str(w) for ws in self.synonyms.values() for w in ws})[:8])
        raise ParseError(f"unknown value {_text(raw)!r}; known: {known}")
