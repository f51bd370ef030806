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


def require_mapping(value: Any, message: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise errors.old_style(message)
