"""Value parsers for hand-kept Russian sheets. Each returns ``Parsed(value, warning)`` or
raises ``ParseError`` with a reason a person understands. A warning means the value was
read with a guess (an ambiguous date, a comma that may be a decimal point) and is listed
in the migration report."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property, lru_cache
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


# Latin letters people type for the Cyrillic ones they look like («Oценить» with a Latin
# O, «Cмирнов»), lowercased: b, h, k, m, t are the capitals В, Н, К, М, Т
LOOKALIKES = str.maketrans("aceopxybhkmt", "асеорхувнкмт")
_CYRILLIC_LETTER = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN_LETTER = re.compile(r"[a-z]", re.IGNORECASE)
_FOLDABLE = re.compile(r"[a-zа-яё]*[a-z][a-zа-яё]*", re.IGNORECASE)
_LOWER_LATIN = re.compile(r"[a-z]")
_SPACE_RUN = re.compile(r"\s+")
# the parsers run on every cell of a sheet: their patterns are compiled once, here, not
# looked up in re's cache on every call
_DIGIT = re.compile(r"\d")
_NON_DIGIT = re.compile(r"\D")
_WORD = re.compile(r"[^\W\d_]+")


def fold_lookalikes(text: str) -> str:
    """In text with Cyrillic letters, a word written in Cyrillic and Latin look-alikes
    (a mistyped «Oценить», «B работе») in Cyrillic only; a word with any other Latin letter
    («JCB»), and text with no Cyrillic at all («OK»), as written."""
    if not (_LATIN_LETTER.search(text) and _CYRILLIC_LETTER.search(text)):
        return text

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        folded = word.lower().translate(LOOKALIKES)
        if _LOWER_LATIN.search(folded):
            return word
        return "".join(f.upper() if c.isupper() else f for c, f in zip(word, folded, strict=True))

    return _FOLDABLE.sub(fold, text)


# a pure function of the text, asked of every word a sheet matches (statuses, users,
# directions: a few dozen words in thousands of cells): remembered
@lru_cache(maxsize=8192)
def normalize_word(text: str) -> str:
    """Case-, space-, ё- and look-alike-insensitive form of a word for matching
    («Oценить» with a Latin O is «оценить»)."""
    return fold_lookalikes(_SPACE_RUN.sub(" ", text.strip().lower().replace("ё", "е")))


# ------------------------------------------------------------------ money
# An amount as people write one, and nothing else (issue 10: a parser that dropped every
# non-digit read «ок 5000» as 5,000,000 and «12-15 тыс» as 1,215,000):
#
#   amount   = [sign] [currency] number [multiplier] [currency]      (spaces anywhere between)
#   number   = digits, in groups of three after the first separated by one kind of
#              separator (space, no-break space, apostrophe, "." or ","), and an optional
#              decimal part after "," or "." (the last separator when both appear)
#   multiplier = тыс / тыс. / тысяч(а/и) / т.р. / тр / к / k (x 1,000), млн / миллион(а/ов)
#              (x 1,000,000): only right after a number
#   currency = руб / руб. / рублей / р. / ₽ / rub (RUB), $ / usd / долл. (USD), € / eur / евро
#              (EUR); one currency an amount
#   sign     = "-" (rejected unless the column allows negatives), "+"
#
# Everything else is refused with the reason: words (ок 5000, около, abc123), ranges
# (12-15 тыс), exponents (1e9999), two numbers, a multiplier with no number, groups that
# are not three digits, and 1,250 or 1.250 alone (a thousands separator or a decimal
# point: nobody can tell). Amounts are rounded to kopecks (a warning says so).
_CURRENCY = [
    (r"руб(?:лей|ля|ль|\.)?|р\.?|₽|rub|rur", "RUB"),
    (r"\$|usd|долл(?:аров|ара|ар|\.)?", "USD"),
    (r"€|eur|евро", "EUR"),
]
_MULTIPLIER = [
    (r"тыс(?:яч[аи]?|\.)?|т\.\s?р\.?|тр\.?|к|k", Decimal(1000)),
    (r"млн\.?|миллион(?:ов|а)?", Decimal(1_000_000)),
]
_CUR = "|".join(f"(?:{p})" for p, _ in _CURRENCY)
_MUL = "|".join(f"(?:{p})" for p, _ in _MULTIPLIER)
_CURRENCY_RE = [(re.compile(p, re.IGNORECASE), code) for p, code in _CURRENCY]
_MULTIPLIER_RE = [(re.compile(p, re.IGNORECASE), m) for p, m in _MULTIPLIER]
_AMOUNT_WORD = re.compile(f"{_CUR}|{_MUL}", re.IGNORECASE)
_RANGE = re.compile(r"\d\s*[-–—]\s*\d")
_EXPONENT = re.compile(r"\d\s*[eE][-+]?\d")
_SPACES_RUN = re.compile(r" +")
_SEPARATORS = re.compile(r"[ '’.,]")
_DECIMAL_POINT = re.compile(r"[.,]")
_AMOUNT = re.compile(
    rf"(?P<sign>[-−–+])?\s*(?P<cur1>{_CUR})?\s*(?P<sign2>[-−–+])?\s*"
    rf"(?P<num>\d(?:[\d.,' ’]*\d)?)\s*(?P<mul>{_MUL})?\s*(?P<cur2>{_CUR})?",
    re.IGNORECASE,
)
_GROUPED = re.compile(r"\d{1,3}(?:(?P<sep>[ '’.,])\d{3})(?:(?P=sep)\d{3})*")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\t": " "})


def _currency(text: str | None) -> str | None:
    if not text:
        return None
    return next(code for pattern, code in _CURRENCY_RE if pattern.fullmatch(text))


def _multiplier(text: str | None) -> Decimal:
    if not text:
        return Decimal(1)
    return next(m for pattern, m in _MULTIPLIER_RE if pattern.fullmatch(text))


def _why_not(text: str) -> str:
    """Why ``text`` is not an amount, in words."""
    if _RANGE.search(text):
        return "a range, not one amount"
    if _EXPONENT.search(text):
        return "an exponent: not an amount written by hand"
    if not _DIGIT.search(text):
        return "no amount"
    for word in _WORD.findall(text):
        if not _AMOUNT_WORD.fullmatch(word):
            return f"words around the amount ({word[:20]!r}): write the amount alone"
    return "not one amount written the usual way"


def _number(text: str) -> tuple[Decimal, str]:
    """The number part: (value, what of it was a guess). A separator before the last three
    digits was read as a decimal point: "lone", with nothing before it but one to three
    digits (1,250: thousands or decimals?); "grouped", after thousands grouped by spaces
    (1 250.000: 1 250, or 1 250 000 with mixed separators?); "" when the separators settle
    it (1,250.000; 125000.500; 0,125). ValueError when the grouping is not the usual one."""
    text = _SPACES_RUN.sub(" ", text)
    decimal = ""
    last = max(text.rfind(","), text.rfind("."))
    head = text
    if last >= 0:
        tail = text[last + 1 :]
        before = text[:last]
        others = {c for c in before if c in " '’.,"}
        if text[last] in others or (not before.replace(" ", "").isdigit() and not others):
            decimal, head = "", text  # "1.250.000" / "1,250,000": the last one groups too
        elif tail.isdigit():
            decimal, head = tail, before
    if head and not head.isdigit() and not _GROUPED.fullmatch(head):
        raise ValueError("groups of digits")
    digits = _SEPARATORS.sub("", head)
    value = Decimal(f"{digits}.{decimal}" if decimal else digits)
    if len(decimal) != 3:
        return value, ""
    if head.isdigit():
        return value, "lone" if len(head) <= 3 and not head.startswith("0") else ""
    return value, "" if re.search(r"[.,]", head) else "grouped"


def _both_readings(text: str, number: Decimal) -> str:
    """The warning for a "grouped" guess: the reading taken, and the other."""
    whole = f"{int(number):,}".replace(",", " ")
    tail = str(number).split(".")[1].rstrip("0")
    meant = f"{int(_SEPARATORS.sub('', text)):,}".replace(",", " ")
    return (
        f"read {text!r} as {whole}{f',{tail}' if tail else ''}, not {meant}: three digits "
        "after the last separator"
    )


def parse_money(
    raw: Any,
    default_currency: str = "RUB",
    *,
    negative: bool = False,
    places: int | None = 2,
) -> Parsed:
    """``125 000 руб.``, ``125000,50``, ``1 250 000 ₽``, ``125 тыс.``, ``$1,200.50`` ->
    Parsed((Decimal, currency)), by the grammar above; ParseError otherwise. ``negative``:
    a minus sign is allowed; ``places``: decimals kept (rounded half up, with a warning)."""
    if type(raw) is str:
        return _money_text(raw, default_currency, negative, places)
    return _parse_money(raw, default_currency, negative, places)


# a pure function of the text, and its answer immutable (a Decimal and a currency code):
# remembered, as a sheet reads one amount in several columns (a cost is the contractor's
# price, the estimate's amount and its own field) and the same amounts in many rows. A
# ParseError is not remembered: it is raised again, with the same words.
@lru_cache(maxsize=4096)
def _money_text(raw: str, default_currency: str, negative: bool, places: int | None) -> Parsed:
    return _parse_money(raw, default_currency, negative, places)


def _parse_money(raw: Any, default_currency: str, negative: bool, places: int | None) -> Parsed:
    if isinstance(raw, bool):
        raise ParseError(f"{raw!r} is not an amount")
    if isinstance(raw, (int, float)):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise ParseError(f"{raw!r} is not an amount")
        value, currency, warning = Decimal(str(raw)), default_currency, None
    else:
        text = _text(raw).translate(_SPACES).strip()
        if not text:
            raise ParseError("empty amount")
        match = _AMOUNT.fullmatch(text)
        if match is None:
            raise ParseError(f"{_text(raw)!r}: {_why_not(text)}")
        if match["sign"] and match["sign2"]:
            raise ParseError(f"{_text(raw)!r}: two signs")
        found = {c for c in (_currency(match["cur1"]), _currency(match["cur2"])) if c}
        if len(found) > 1 or (match["cur1"] and match["cur2"]):
            raise ParseError(f"{_text(raw)!r}: more than one currency")
        try:
            number, guessed = _number(match["num"])
        except ValueError:
            raise ParseError(
                f"{_text(raw)!r}: digits grouped in an unusual way (write 1 250 000 or 1250000)"
            ) from None
        sign = match["sign"] or match["sign2"] or ""
        value = number * _multiplier(match["mul"])
        if sign in "-−–" and sign:
            value = -value
        currency = found.pop() if found else default_currency
        warning = None
        if guessed and not match["mul"]:  # a multiplier settles it: 1,250 млн is 1.25 million
            if guessed == "lone":
                head, tail = _DECIMAL_POINT.split(match["num"])
                raise ParseError(
                    f"{_text(raw)!r}: {head}{tail} or {head}.{tail}? a lone separator before "
                    "three digits could be either: write the thousands without it (or with a "
                    "space), a decimal part with one or two digits"
                )
            warning = _both_readings(match["num"], number)
    if value < 0 and not negative:
        raise ParseError(
            f"{_text(raw)!r}: a negative amount (say negative: true on the column to allow it)"
        )
    if places is not None:
        rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if rounded != value:
            warning = f"rounded {_text(raw)!r} to {rounded}"
            value = rounded
    return Parsed((value, currency), warning)


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


# The grammar (anything else is rejected with the reason): 01.02.2024 and 1.2.24 (day
# first, a two-digit year as a spreadsheet reads it: 00-29 is 20xx, 30-99 19xx),
# 2024-02-01, 1/2/2024 (day first, as in Russia; warned when the day could be a month),
# 1 февраля 2024; «г.» or «года» after the year of the first and the last (01.02.2024 г.,
# 1 февраля 2024 года), a time after any of these (10:30, 10:30:15, T10:30:15Z) ignored,
# spreadsheet serial numbers and date cells. Years outside FIRST_YEAR..LAST_YEAR are
# refused: a typo (1024, 20244), not a project's date.
FIRST_YEAR, LAST_YEAR = 1990, 2100
TWO_DIGIT_PIVOT = 30  # Excel's and Google Sheets' default: a two-digit year below it is 20xx
_TIME = r"(?:[ t]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?"
# «г.», «г» or «года» after the year, as Russian documents write a date
_YEAR_WORD = r"(?:\s*г(?:ода|\.)?)?"
_SERIAL = re.compile(r"\d{5}(\.\d+)?")
_ISO_DATE = re.compile(rf"(\d{{4}})-(\d{{1,2}})-(\d{{1,2}}){_TIME}")
_DOTTED_DATE = re.compile(rf"(\d{{1,2}})\.(\d{{1,2}})\.(\d{{2}}|\d{{4}}){_YEAR_WORD}{_TIME}")
_SLASHED_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")
_WORDED_DATE = re.compile(rf"(\d{{1,2}})\s+([а-я]+)\.?\s+(\d{{4}}){_YEAR_WORD}")


def _month_word(word: str, stem: str) -> bool:
    """A month's name in any case form (февраля, марта, мая), or its short form; not any
    word that starts like one (маяк)."""
    return word == stem or (word.startswith(stem) and len(word) - len(stem) <= 2)


def _year(text: str) -> int:
    """A two-digit year as Excel and Google Sheets read one typed in a cell: 00-29 is
    20xx, 30-99 is 19xx (01.02.95 is 1995, never 2095)."""
    year = int(text)
    if year >= 100:
        return year
    return year + (2000 if year < TWO_DIGIT_PIVOT else 1900)


def _plausible(day: date, raw: Any) -> Parsed:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ParseError(
            f"{_text(raw)!r}: the year {day.year} is outside {FIRST_YEAR} to {LAST_YEAR}"
        )
    return Parsed(day)


def parse_date(raw: Any) -> Parsed:
    """``01.02.2024``, ``1.2.24``, ``2024-02-01``, ``1 февраля 2024``, spreadsheet serial
    numbers (45323) and date cells -> Parsed(date), by the grammar above."""
    if isinstance(raw, datetime):
        return _plausible(raw.date(), raw)
    if isinstance(raw, date):
        return _plausible(raw, raw)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        if not 1 <= raw < 100_000:
            raise ParseError(f"{raw} is not a spreadsheet date")
        return _plausible(EXCEL_EPOCH + timedelta(days=int(raw)), raw)
    text = _text(raw).lower()
    if not text:
        raise ParseError("empty date")
    if _SERIAL.fullmatch(text):
        return parse_date(float(text))
    parsed = _parse_date_text(text, raw)
    return Parsed(_plausible(parsed.value, raw).value, parsed.warning)


def _parse_date_text(text: str, raw: Any) -> Parsed:
    try:
        if m := _ISO_DATE.fullmatch(text):
            return Parsed(date(int(m[1]), int(m[2]), int(m[3])))
        if m := _DOTTED_DATE.fullmatch(text):
            return Parsed(date(_year(m[3]), int(m[2]), int(m[1])))
        if m := _SLASHED_DATE.fullmatch(text):
            day, month = int(m[1]), int(m[2])
            warning = None if day > 12 or day == month else (f"read {text!r} as day/month/year")
            return Parsed(date(_year(m[3]), month, day), warning)
        if m := _WORDED_DATE.fullmatch(text):
            named = next((n for stem, n in MONTHS.items() if _month_word(m[2], stem)), None)
            if named is None:
                raise ParseError(f"unknown month in {text!r}")
            return Parsed(date(int(m[3]), named, int(m[1])))
    except ParseError:
        raise
    except ValueError as exc:
        raise ParseError(f"{_text(raw)!r} is not a real date ({exc})") from None
    raise ParseError(f"{_text(raw)!r} is not a date (expected 01.02.2024 or 2024-02-01)")


# ----------------------------------------------------------------- phones
PHONE_SPLIT = re.compile(r"[;,/\n]|\s+(?:или|и|or)\s+")
PHONE_LABELS = {"тел", "телефон", "моб", "мобильный", "сот", "сотовый", "раб", "рабочий", "дом"}
PHONE_LABELS |= {"tel", "phone", "mob", "mobile", "cell", "work", "home"}
EXTENSION = re.compile(r"(доб\.?|ext\.?|вн\.?)\s*\d+", re.IGNORECASE)
_LETTER_AMONG_DIGITS = re.compile(r"\d[^\W\d_]+\d|\d\s?[^\W\d_]\s?\d")


def parse_phone_one(raw: str) -> Parsed:
    text = raw.strip()
    warning = None
    if EXTENSION.search(text):
        warning = f"extension dropped from {text!r}"
        text = EXTENSION.sub("", text)
    if _LETTER_AMONG_DIGITS.search(text):  # «8 926 1O1-22-33»: O or 0?
        raise ParseError(f"{raw.strip()!r}: a letter among the digits (O for 0, l for 1?)")
    words = [w for w in _WORD.findall(text) if w.lower() not in PHONE_LABELS]
    if words:  # a name or a note beside the number: the number is kept, the words are not
        dropped = f"{' '.join(words)[:30]!r} dropped from {text!r}"
        warning = f"{warning}; {dropped}" if warning else dropped
    international = text.startswith("+")
    digits = _NON_DIGIT.sub("", text)
    if international and not digits.startswith("7"):
        if not 8 <= len(digits) <= 15:
            raise ParseError(f"{raw.strip()!r} is not a phone number")
        return Parsed("+" + digits, warning)
    if len(digits) == 11 and digits[0] in "78":
        digits = "7" + digits[1:]
    elif len(digits) == 10 and digits.startswith(("88", "89")):
        # no Russian area code starts 88 or 89 (they run 811-879): «8 926 111-22-3» is a
        # mobile number, 8 9xx …, one digit short; read as +7 892 …, it made a new client
        raise ParseError(
            f"{raw.strip()!r}: 10 digits starting with {digits[:2]}: a mobile number "
            "(8 9xx …) with a digit missing?"
        )
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
    phones, warning = _phones_text(_text(raw))
    return Parsed(list(phones), warning)  # a list of its own: the caller may change it


# a pure function of the text, asked of every phone cell of a sheet and of every contact
# and company a migration reads (a few dozen clients' numbers in hundreds of rows):
# remembered, as a tuple (each caller gets a list of its own). A ParseError is not
# remembered: it is raised again, with the same words.
@lru_cache(maxsize=4096)
def _phones_text(text: str) -> tuple[tuple[str, ...], str | None]:
    if not text:
        raise ParseError("empty phone")
    out: list[str] = []
    warnings: list[str] = []
    for part in PHONE_SPLIT.split(text):
        if not part or not _DIGIT.search(part):
            continue
        parsed = parse_phone_one(part)
        if parsed.value not in out:
            out.append(parsed.value)
        if parsed.warning:
            warnings.append(parsed.warning)
    if not out:
        raise ParseError(f"no phone number in {text!r}")
    return tuple(out), "; ".join(warnings) or None


# Addresses in a cell: separated by spaces, commas, semicolons or slashes; each may sit in
# brackets or quotes, after a label (e-mail:, mailto:, почта:), before a full stop. What is
# left must be an address as written (ivan.p+zakaz@mail.ru, почта@пример.рф), or the cell
# is rejected: "[anna@mail.ru" or "ivan@mail.ru/petr@mail.ru" as one address was written to
# the portal as is, or failed there, the dry run having passed.
_EMAIL_SPLIT = re.compile(r"[\s,;/|]+")
_EMAIL_LABEL = re.compile(r"^(?:mailto|e-?mail|почта|эл\.?почта)\s*:\s*", re.IGNORECASE)
_EMAIL_LABELS = {"e-mail", "email", "mail", "почта", "эл", "эл.", "эл.почта", "адрес"}
_ADDRESS = re.compile(r"[\w%+'-][\w.%+'-]*@(?:[\w-]+\.)+(?:[^\W\d_]{2,}|xn--[\w-]+)")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")


def parse_emails(raw: Any) -> Parsed:
    text = _INVISIBLE.sub("", _text(raw))  # a zero-width space pasted with an address
    found: list[str] = []
    dropped: list[str] = []
    for token in _EMAIL_SPLIT.split(text):
        token = _EMAIL_LABEL.sub("", token.strip("<>()[]{}\"'«»").rstrip(".:"))
        if not token or token.lower().rstrip(":") in _EMAIL_LABELS:
            continue
        if "@" not in token:
            dropped.append(token)  # a name or a note beside the address
        elif _ADDRESS.fullmatch(token):
            found.append(token.lower())
        else:
            raise ParseError(f"{token!r} in {text.strip()!r} is not an e-mail address")
    if not found:
        raise ParseError(f"no e-mail address in {text!r}")
    warning = f"{' '.join(dropped)[:30]!r} dropped from {text.strip()!r}" if dropped else None
    return Parsed(list(dict.fromkeys(found)), warning)


# ------------------------------------------------------------------ INN
# a Russian taxpayer number: 10 digits (an organisation) or 12 (a person, an ИП), spaces
# allowed; its check digits (ФНС's weights) are checked, and a wrong one is a warning: the
# number still groups the rows that share it
_INN_WEIGHTS = {
    10: [(9, [2, 4, 10, 3, 5, 9, 4, 6, 8])],
    12: [
        (10, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]),
        (11, [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]),
    ],
}


_INN_SPACING = re.compile(r"[\s\u00a0-]")
_INN = re.compile(r"\d{10}|\d{12}")


def parse_inn(raw: Any) -> Parsed:
    """An INN as text, or as a number cell (a spreadsheet drops its leading zero: an
    organisation's 9 digits or a person's 11 are the number with its 0 put back, if its
    check digits then hold; 0274062111 is Bashkortostan's)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(int(raw))
        if len(raw) in (9, 11) and _inn_checks("0" + raw):
            raw = "0" + raw
    text = _text(raw)
    digits = _INN_SPACING.sub("", text)
    if not _INN.fullmatch(digits):
        raise ParseError(f"{text!r} is no INN: 10 or 12 digits")
    if not _inn_checks(digits):
        return Parsed(digits, f"INN {digits}: its check digit is wrong (a typo?)")
    return Parsed(digits)


def _inn_checks(digits: str) -> bool:
    """Whether an INN's check digits (ФНС's weights) hold."""
    for at, weights in _INN_WEIGHTS[len(digits)]:
        check = sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10
        if check != int(digits[at]):
            return False
    return True


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


@lru_cache(maxsize=64)
def _table(synonyms: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    for code, words in synonyms:
        for word in (code, *words):
            key = normalize_word(str(word))
            if key in out and out[key] != code:
                raise InputError(f"{word!r} maps to both {out[key]} and {code}")
            out[key] = code
    return tuple(out.items())


_NOT_WORD = re.compile(r"[^\w ]")


@dataclass(frozen=True)
class Enumeration:
    """Sheet words to codes: ``{"ESTIMATE": ["в работе", "считаем"], "WON": ["оплачено"]}``.
    The code itself always matches too."""

    synonyms: Mapping[str, Sequence[str]]

    def table(self) -> dict[str, str]:
        """Each word as compared -> its code (made once per value map: a sheet's every row
        reads it)."""
        return dict(self._lookup)

    @cached_property
    def _lookup(self) -> dict[str, str]:
        """table(), kept by this enumeration: parse() reads it for every cell (a frozen
        dataclass still takes a cached_property: it writes the instance's __dict__)."""
        return dict(_table(tuple((code, tuple(words)) for code, words in self.synonyms.items())))

    def parse(self, raw: Any) -> Parsed:
        word = normalize_word(_text(raw))
        table = self._lookup
        if word in table:
            return Parsed(table[word])
        stripped = _NOT_WORD.sub("", word).strip()
        if stripped in table:
            return Parsed(table[stripped], f"read {_text(raw)!r} as {table[stripped]}")
        known = ", ".join(sorted({str(w) for ws in self.synonyms.values() for w in ws})[:8])
        raise ParseError(f"unknown value {_text(raw)!r}; known: {known}")
