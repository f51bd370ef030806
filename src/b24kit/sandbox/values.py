"""Coercion of incoming values and formatting of outgoing ones, as PHP would do them."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

_INT_PREFIX = re.compile(r"^\s*[+-]?\d+")
_FLOAT_PREFIX = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def intval(value: Any) -> int:
    """PHP ``intval``: the leading integer of a string, 0 when there is none."""
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if type(value) is str and value.isascii() and value.lstrip("-").isdigit():
        # the commonest text: ASCII digits after any "-". The match below reads all of it
        # when there is one "-" at most ("-1", as start=-1 comes) and nothing when there
        # are more ("--1" is 0)
        return int(value) if value.count("-") <= 1 else 0
    match = _INT_PREFIX.match(str(value))
    return int(match.group(0)) if match else 0


def floatval(value: Any) -> float:
    if value is None or value is False:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).replace(",", ".")
    match = _FLOAT_PREFIX.match(text)
    return float(match.group(0)) if match else 0.0


def yes_no(value: Any, default: str = "N") -> str:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return "Y" if value else "N"
    text = str(value).strip().upper()
    if text in ("Y", "1", "TRUE", "YES"):
        return "Y"
    if text in ("N", "0", "FALSE", "NO"):
        return "N"
    return default


def parse_tz(offset: str) -> timezone:
    match = re.fullmatch(r"([+-])(\d\d):?(\d\d)", offset)
    if not match:
        raise ValueError(f"bad time zone offset {offset!r}; use +HH:MM")
    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def now_iso(clock_value: float, tz: timezone) -> str:
    """The moment as the portal writes it, to the second. Every answer carries two and every
    write one or more, all within a few seconds: each second's text is made once."""
    second = math.floor(clock_value)
    if clock_value - second >= 0.999999:  # fromtimestamp may round it up to the next second
        return iso(datetime.fromtimestamp(clock_value, tz))
    return _second_iso(second, tz)


@lru_cache(maxsize=64)
def _second_iso(second: int, tz: timezone) -> str:
    return iso(datetime.fromtimestamp(second, tz))


_DMY = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{2,4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def parse_datetime(value: Any, tz: timezone, date_only: bool = False) -> str | None:
    """Accept ISO 8601, ``YYYY-MM-DD`` and the portal's ``DD.MM.YYYY [HH:MM[:SS]]``.

    Returns an ISO string with the portal's offset, or None for empty or unparseable
    input (a real portal drops a date it cannot read rather than failing the call).
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    moment: datetime | None = None
    match = _DMY.match(text)
    if match:
        day, month, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if year < 100:
            year += 2000
        try:
            moment = datetime(
                year,
                month,
                day,
                int(match.group(4) or 0),
                int(match.group(5) or 0),
                int(match.group(6) or 0),
                tzinfo=tz,
            )
        except ValueError:
            return None
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        else:
            moment = moment.astimezone(tz)
    if date_only:
        moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return iso(moment.replace(microsecond=0))


def render_date(value: str, tz: timezone) -> str:
    """A date-only value (BEGINDATE, CLOSEDATE, BIRTHDATE, a ``date`` user field) as the
    portal answers it: midnight UTC of that date, shown in the portal's offset, e.g.
    ``2024-08-30T02:00:00+02:00`` (crm-deal-get.md, crm-contact-get.md, crm-item-add.md;
    fast_bitrix24 real_responses/crm_item_list.py: ``2024-04-19T03:00:00+03:00``)."""
    day = datetime.fromisoformat(value[:10]).replace(tzinfo=UTC)
    return iso(day.astimezone(tz))


def old_scalar(value: Any) -> Any:
    """Old-style methods return every scalar as a string; null stays null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return [old_scalar(v) for v in value]
    if isinstance(value, dict):
        return {k: old_scalar(v) for k, v in value.items()}
    return str(value)
