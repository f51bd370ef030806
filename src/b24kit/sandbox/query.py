"""Translate a Bitrix24 ``filter`` / ``order`` into SQL over the ``items`` table.

Operators live in the key prefix (``>=OPPORTUNITY``). Supported, longest first:
``!=%`` ``!%=`` ``!@`` ``!=`` ``!%`` ``>=`` ``<=`` ``=%`` ``%=`` ``!`` ``@`` ``>`` ``<``
``=`` ``%``. A list value on a plain key means IN. Nested groups are numeric keys whose
value is a dict with an optional ``LOGIC`` of ``AND`` / ``OR``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timezone
from typing import Any

from b24kit.encoding import as_list
from b24kit.sandbox import errors
from b24kit.sandbox.fields import BOOL01, DATE, DATETIME, FLOAT, INT, MULTI, YN, FieldDef
from b24kit.sandbox.values import floatval, intval, parse_datetime, yes_no

OPERATORS = ("!=%", "!%=", "!@", "!=", "!%", ">=", "<=", "=%", "%=", "!", "@", ">", "<", "=", "%")

Resolver = Callable[[str], FieldDef | None]


_OPERATOR_START = frozenset(op[0] for op in OPERATORS)


def split_operator(key: str) -> tuple[str, str]:
    if key[:1] not in _OPERATOR_START:  # most keys have none: ``ID``, ``ORIGINATOR_ID``
        return "=", key
    for op in OPERATORS:
        if key.startswith(op):
            return op, key[len(op) :]
    return "=", key


class FilterBuilder:
    def __init__(
        self,
        resolve: Resolver,
        style: str,
        tz: timezone,
        etid: int,
        column: Callable[[FieldDef], str] | None = None,
    ) -> None:
        self.column = column or json_column
        self.resolve = resolve
        self.style = style
        self.tz = tz
        self.etid = etid
        self.params: list[Any] = []
        # single-valued user fields the filter looks up by value: the portal indexes each
        # before the query runs (Portal.list_items, Database.index_field)
        self.looked_up: set[str] = set()

    def _value(self, fdef: FieldDef, value: Any) -> Any:
        if fdef.kind == INT:
            return intval(value)
        if fdef.kind == FLOAT:
            return floatval(value)
        if fdef.kind == BOOL01:
            return 1 if yes_no(value) == "Y" else 0
        if fdef.kind == YN:
            return yes_no(value, str(value))
        if fdef.kind == DATE:
            # a date-only field compares by its date: the stored midnight, whatever time of
            # day a filter value carries (they are read back as e.g. T03:00:00+03:00)
            return parse_datetime(value, self.tz, date_only=True) or str(value)
        if fdef.kind == DATETIME:
            return parse_datetime(value, self.tz) or str(value)
        return str(value)

    def _invalid_value(self, key: str) -> errors.ApiError:
        return errors.invalid_arg(f"Invalid filter: field '{key}' has invalid value")

    def build(self, flt: Any) -> str:
        if not isinstance(flt, Mapping):
            if flt in (None, "", []):
                return "1"
            if self.style == "new":
                raise errors.invalid_arg("Invalid filter: filter must be an array")
            raise errors.old_style("Parameter 'filter' must be array.")
        logic = "AND"
        parts: list[str] = []
        for key, value in flt.items():
            key = str(key)
            if key.upper() == "LOGIC":
                logic = "OR" if str(value).upper() == "OR" else "AND"
                continue
            if isinstance(value, Mapping) and (
                key.isdigit() or any(str(k).upper() == "LOGIC" for k in value)
            ):
                parts.append("(" + self.build(value) + ")")
                continue
            clause = self._clause(key, value)
            if clause is not None:
                parts.append(clause)
        if not parts:
            return "1"
        return "(" + f" {logic} ".join(parts) + ")"

    def _clause(self, key: str, value: Any) -> str | None:
        op, name = split_operator(key)
        fdef = self.resolve(name)
        if fdef is None:
            if self.style == "new":
                raise errors.invalid_arg(f"Invalid filter: field '{name}' is not allowed in filter")
            return None  # old-style methods ignore unknown filter keys (assumption, see docs)
        if fdef.kind == MULTI:
            return self._multifield(op, fdef, value)
        expr = self.column(fdef)
        is_list = isinstance(value, (list, tuple, Mapping))
        if op in ("=", "@") and fdef.user_field is not None and not fdef.multiple:
            self.looked_up.add(fdef.name)
        if op in ("=", "@", "!", "!=", "!@") and (is_list or op in ("@", "!@")):
            values = [self._value(fdef, v) for v in as_list(value)]
            negate = op.startswith("!")
            return self._in(expr, fdef, values, negate)
        if is_list:
            raise self._invalid_value(name)
        if op in ("=", "!", "!="):
            negate = op != "="
            if value is None or value == "" or value is False and fdef.kind != BOOL01:
                empty = f"({expr} IS NULL OR {expr} = '' OR {expr} = '[]')"
                return f"NOT {empty}" if negate else empty
            return self._in(expr, fdef, [self._value(fdef, value)], negate)
        if op in (">", ">=", "<", "<="):
            self.params.append(self._value(fdef, value))
            return f"({expr} IS NOT NULL AND {expr} {op} ?)"
        # LIKE family: % substring; =% / %= explicit wildcards.
        self.params.append(str(value))
        func = "b24_contains" if op in ("%", "!%") else "b24_like"
        clause = f"{func}({expr}, ?)"
        return f"NOT {clause}" if op.startswith("!") else clause

    def _in(self, expr: str, fdef: FieldDef, values: list[Any], negate: bool) -> str:
        if not values:
            return "1" if negate else "0"
        marks = ",".join("?" * len(values))
        self.params.extend(values)
        if fdef.multiple:
            hit = f"EXISTS (SELECT 1 FROM json_each(data, '$.\"{fdef.name}\"') WHERE value IN ({marks}))"
        else:
            hit = f"{expr} IN ({marks})"
        return f"({expr} IS NULL OR NOT {hit})" if negate else hit

    def _multifield(self, op: str, fdef: FieldDef, value: Any) -> str:
        values = [str(v) for v in as_list(value)] if not isinstance(value, str) else [value]
        marks = ",".join("?" * len(values)) or "NULL"
        self.params.append(self.etid)
        self.params.append(fdef.name)
        self.params.extend(values)
        hit = (
            "EXISTS (SELECT 1 FROM multifields m WHERE m.entity_type_id = ? AND "
            f"m.element_id = items.id AND m.type_id = ? AND m.value IN ({marks}))"
        )
        return f"NOT {hit}" if op.startswith("!") else hit


def json_column(fdef: FieldDef) -> str:
    return "id" if fdef.name == "ID" else f"json_extract(data, '$.\"{fdef.name}\"')"


def build_order(
    order: Any, resolve: Resolver, style: str, column: Callable[[FieldDef], str] | None = None
) -> str:
    column = column or json_column
    terms: list[str] = []
    has_id = False
    if isinstance(order, Mapping):
        for key, direction in order.items():
            fdef = resolve(str(key))
            if fdef is None:
                if style == "new":
                    raise errors.invalid_arg(
                        f"Invalid order: field '{key}' is not allowed in order"
                    )
                continue
            text = str(direction).upper()
            if text not in ("ASC", "DESC"):
                if style == "new":
                    raise errors.invalid_arg(
                        "Invalid order: allowed sort directions are ASC, DESC. "
                        f"But got '{direction}' for field '{key}'"
                    )
                text = "ASC"
            terms.append(f"{column(fdef)} {text}")
            has_id = has_id or fdef.name == "ID"
    elif order not in (None, "", []) and style == "old":
        raise errors.old_style("Parameter 'order' must be array.")
    if not has_id:
        terms.append("id ASC")
    return ", ".join(terms)
