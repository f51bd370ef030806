"""The Bitrix24 wire encoding of parameters, shared by the client and the sandbox.

Bitrix24 runs on PHP, so form bodies, query strings and the command strings inside
``batch`` follow PHP's ``http_build_query`` / ``parse_str`` conventions:
``fields[TITLE]=x``, ``select[]=ID``, ``filter[>ID]=5`` (the operator lives in the key).

This module only encodes and decodes. It knows nothing of methods or results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

Params = dict[str, Any]


def _scalar(value: Any) -> str:
    """Render one leaf value the way PHP's http_build_query does.

    ``True``/``False`` become ``1``/``0`` (PHP casts booleans to int); ``None`` becomes
    an empty string, so a key that the caller set explicitly is still sent (PHP would
    drop it, which silently turns "clear this field" into "leave it").
    """
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pairs(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if type(value) is str:  # the common leaf, without the ABC check below (not a subclass:
        out.append((prefix, value))  # a str Enum renders through _scalar's str())
    elif isinstance(value, Mapping):
        # An empty map or list is left out, as PHP's http_build_query does: ``key[]=``
        # would reach the portal as ``[0 => ""]``, a filter on a field named "0".
        for key, sub in value.items():
            _pairs(f"{prefix}[{key}]" if prefix else str(key), sub, out)
    elif isinstance(value, (list, tuple)):
        for index, sub in enumerate(value):
            _pairs(f"{prefix}[{index}]", sub, out)
    else:
        out.append((prefix, _scalar(value)))


def flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten nested params into ``(key, value)`` pairs with PHP bracket keys."""
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        _pairs(str(key), value, out)
    return [(k, v) for k, v in out if k]


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus leaves as it is
# quote_plus of each ASCII character, for str.translate: an ASCII text is encoded in one C
# call instead of quote_plus's Python loop (a text with other characters still goes to
# quote_plus, for their UTF-8 bytes). tests/test_encoding.py checks it against quote_plus.
_ASCII_QUOTED = {
    code: char if _PLAIN.fullmatch(char) else "+" if char == " " else f"%{code:02X}"
    for code, char in ((code, chr(code)) for code in range(128))
}
# "%XX" -> the ASCII character it stands for, both cases of hex digit; escapes of bytes
# 0x80 and up are parts of UTF-8 sequences and are left to _decode_run.
_ASCII_ESCAPES = {
    f"{high}{low}": chr(int(f"{high}{low}", 16))
    for high in "01234567"
    for low in "0123456789ABCDEFabcdef"
}


def _quote(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return text
    return text.translate(_ASCII_QUOTED) if text.isascii() else quote_plus(text)


def _decode_common(text: str) -> str:
    """What ``unquote_plus`` does to the commonest parts of b24kit's own commands, at C
    speed: "+" and the percent-encoded brackets of every nested key. Every "%" followed
    by two hex digits is one escape, whatever surrounds it, and " ", "[" and "]" are
    neither "%" nor hex digits, so this cannot make or break another escape: what is
    left to decode decodes as before. Nor can it make a separator ("&", "="), so a
    whole query string may go through it at once."""
    return text.replace("+", " ").replace("%5B", "[").replace("%5D", "]")


_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _decode_run(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group(0).replace("%", "")).decode("utf-8", "replace")


def _decode_rest(text: str) -> str:
    """``unquote(text)`` for a text :func:`_decode_common` went through, with a fast path
    for ASCII escapes. Anything else (a UTF-8 byte, a "%" that starts no escape) decodes
    each run of escapes as UTF-8 in one C call (bytes.fromhex), not unquote's Python loop
    over every byte of the text (Cyrillic text is most of a Russian sheet's, issue 12).
    The same answer as unquote: it decodes the bytes of each stretch of ASCII text at
    once, and an ASCII byte between two runs ends any UTF-8 sequence either way, so
    decoding run by run replaces the same bytes (tests/test_encoding.py checks it)."""
    if "%" not in text:
        return text
    head, *pieces = text.split("%")
    out = [head]
    for piece in pieces:
        char = _ASCII_ESCAPES.get(piece[:2])
        if char is None:
            return _ESCAPE_RUN.sub(_decode_run, text)
        out.append(char)
        out.append(piece[2:])
    return "".join(out)


def _unquote(text: str) -> str:
    """``unquote_plus(text)`` (tests/test_encoding.py checks that it is)."""
    return _decode_rest(_decode_common(text))


def build_query(params: Mapping[str, Any]) -> str:
    """Encode params as a PHP-style query string (``a[b][0]=x&c=y``).

    Keys and values are percent-encoded, brackets included, as PHP itself does, so
    operators such as ``>`` or ``%`` in filter keys survive the trip.
    """
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in flatten(params))


def _split_key(raw: str) -> list[str]:
    """Split ``a[b][][c]`` into ``["a", "b", "", "c"]`` as PHP's parse_str does."""
    first = raw.find("[")
    if first <= 0:
        return [raw]
    parts = [raw[:first]]
    rest = raw[first:]
    while rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            # PHP keeps an unterminated bracket literally in the last segment.
            parts[-1] += rest
            return parts
        parts.append(rest[1:close])
        rest = rest[close + 1 :]
    return parts


_INDEX = re.compile(r"-?[0-9]{1,18}")  # an integer key, as PHP takes one (bounded)
_INDEX_START = frozenset("-0123456789")  # what an integer key starts with: a cheap test first


def _array_key(
    node: dict[str, Any], part: str, next_free: dict[int, tuple[dict[str, Any], int]]
) -> str:
    """The key ``part`` stands for in ``node``: an empty ``[]`` takes the next free index,
    PHP's "largest integer key + 1" (0 in an array with none).

    ``next_free`` holds that index for each array that has had an empty ``[]``, kept up
    to date as keys arrive, so that appending costs the same for the thousandth element
    as for the first. It is kept by id with the array itself, so an array dropped and
    another made at the same address never shares its count. An array without one yet
    has its keys read once, at its first ``[]``: every key of an array parse_query made
    came from a part given here, so that is the same largest integer key. Until then an
    integer key costs nothing more than another (``select[0]``, ``select[1]``, ...)."""
    entry = next_free.get(id(node))
    if entry is not None and entry[0] is not node:
        entry = None  # another array's, dropped
    if part:
        if entry is not None and part[0] in _INDEX_START and _INDEX.fullmatch(part):
            next_free[id(node)] = (node, max(entry[1], int(part) + 1))
        return part
    if entry is None:
        seen = max((int(key) + 1 for key in node if _INDEX.fullmatch(key)), default=0)
    else:
        seen = entry[1]
    part = str(seen)
    # the index taken counts as any key does: past 18 digits it is not one (see _INDEX)
    next_free[id(node)] = (node, seen + 1 if _INDEX.fullmatch(part) else seen)
    return part


def _assign(
    target: dict[str, Any],
    path: list[str],
    value: str,
    next_free: dict[int, tuple[dict[str, Any], int]],
) -> None:
    """Set ``value`` at ``path``. Its first part is a whole top-level key: a key never
    starts with "[" (see _split_key), so nothing is ever appended to the top level and
    its count is never needed."""
    node = target
    last = len(path) - 1
    for index, part in enumerate(path):
        if index:
            part = _array_key(node, part, next_free)
        if index == last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def parse_query(query: str | bytes) -> Params:
    """Decode a PHP-style query string into nested dicts.

    Every container comes back as a ``dict`` with string keys in arrival order (a PHP
    array is an ordered map); use :func:`as_list` where a method expects a list.
    """
    if isinstance(query, bytes):
        query = query.decode("utf-8", errors="replace")
    result: Params = {}
    next_free: dict[int, tuple[dict[str, Any], int]] = {}
    for chunk in _decode_common(query).split("&"):  # each key and value: _unquote's first step
        raw_key, _, raw_value = chunk.partition("=")
        key = _decode_rest(raw_key) if "%" in raw_key else raw_key
        if not key:  # an empty chunk too
            continue
        value = _decode_rest(raw_value) if "%" in raw_value else raw_value
        first = key.find("[")
        if first <= 0:  # a plain key (the top level's count is never needed, see _assign)
            result[key] = value
        elif key[-1] == "]" and key.find("]", first) == len(key) - 1:
            # the commonest nested key, one level: ``select[0]``, ``filter[>ID]``; what
            # _split_key and _assign do with it, without the lists and the loop
            node = result.get(key[:first])
            if not isinstance(node, dict):
                node = result[key[:first]] = {}
            sub = key[first + 1 : -1]
            # a named or numbered key needs no count until some array has had a [] (and
            # select[0], select[1], ... are most keys)
            node[_array_key(node, sub, next_free) if next_free or not sub else sub] = value
        else:
            _assign(result, _split_key(key), value, next_free)
    return result


def as_list(value: Any) -> list[Any]:
    """A PHP array used as a list: dict values in order, a list as is, a scalar wrapped."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    if value == "":
        return []
    return [value]


def php_truthy(value: Any) -> bool:
    """PHP's ``(bool)`` cast: ``""``, ``"0"``, ``0``, empty arrays and null are false."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value not in ("", "0")
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (list, tuple, dict)):
        return len(value) > 0
    return True
