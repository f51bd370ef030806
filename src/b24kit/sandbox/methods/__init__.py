"""Bitrix24 REST methods of the sandbox; importing this package registers them all."""

from b24kit.sandbox.methods import (  # noqa: F401
    categories,
    history,
    items,
    statuses,
    system,
    types,
    userfields,
)
