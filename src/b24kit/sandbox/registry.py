"""The method table: name -> handler, with the scopes a caller needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from b24kit.sandbox import errors

if TYPE_CHECKING:
    from b24kit.sandbox.portal import Portal


@dataclass
class Paged:
    """A list result: ``total`` and ``next`` go to the envelope, as the portal hoists them."""

    result: Any
    total: int | None = None
    next: int | None = None


@dataclass
class CallContext:
    portal: Portal
    user_id: int
    scopes: frozenset[str]
    start: int = 0
    cost: float = 0.0
    in_batch: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def add_cost(self, seconds: float) -> None:
        self.cost += seconds


Handler = Callable[[CallContext, dict[str, Any]], Any]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: Handler
    scopes: tuple[str, ...]


METHODS: dict[str, MethodSpec] = {}
GLOBAL = "basic"  # methods every caller may use (batch, scope, methods, ...)


def method(name: str, *scopes: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[name.lower()] = MethodSpec(name, fn, scopes or (GLOBAL,))
        return fn

    return register


def arg(params: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A top-level parameter; old-style names are case-insensitive (API notes §1.3)."""
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if str(key).lower() == lowered:
            return value
    return default


def exact(params: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A top-level parameter of a new-style method: the exact camelCase name only."""
    return params.get(name, default)


def new_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``fields`` argument of a new-style method (crm.item.*, crm.category.*, ...)."""
    fields = params.get("fields")
    if fields is None:
        raise errors.required_arg("fields")
    if not isinstance(fields, Mapping):
        raise errors.invalid_arg("fields must be an array")
    return dict(fields)


def entity_type(ctx: CallContext, params: Mapping[str, Any]) -> int:
    """The ``entityTypeId`` of crm.item.* / crm.category.*: deals, contacts, companies and
    existing smart processes; others are ENTITY_TYPE_NOT_SUPPORTED (API notes §5.1, §9.1)."""
    from b24kit.sandbox.fields import COMPANY, CONTACT, DEAL, SPA_MIN
    from b24kit.sandbox.values import intval

    raw = params.get("entityTypeId")
    if raw in (None, ""):
        raise errors.required_arg("entityTypeId")
    etid = intval(raw)
    if etid in (DEAL, CONTACT, COMPANY):
        return etid
    if etid >= SPA_MIN or etid == 31:
        if ctx.portal.type_by_etid(etid) is None:
            raise errors.not_found_new("Smart process not found")
        return etid
    name = {1: "LEAD", 5: "INVOICE", 7: "QUOTE"}.get(etid, str(etid))
    raise errors.ApiError("ENTITY_TYPE_NOT_SUPPORTED", f"Entity type {name} is not supported")
