"""The portal's users by id (``user.get``), for checking the ids a user gives and for
showing people by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from b24kit.client import B24Client, ScopeError, read_all
from b24kit.encoding import as_list


async def read_users(client: B24Client, ids: Iterable[int]) -> dict[int, dict[str, Any]] | None:
    """The users with these ids that exist on the portal (id -> user.get's row), 50 to a
    batch; ``None`` when the webhook may not read users (no ``user`` scope). A user.get
    the portal failed (an error other than the scope's) is raised: it says nothing of
    whether the user exists, and reading it as "no such user" would refuse a mapping for a
    user the portal has."""
    wanted = sorted(set(ids))
    found: dict[int, dict[str, Any]] = {}
    for chunk in range(0, len(wanted), 50):
        group = wanted[chunk : chunk + 50]
        got = await client.batch({f"u{i}": ("user.get", {"ID": i}) for i in group}, safe=True)
        if any(isinstance(e, ScopeError) for e in got.error.values()):
            return None
        for error in got.error.values():  # not an answer about the user: no "no such user"
            raise error
        for i in group:
            for row in as_list(got.result.get(f"u{i}")):
                if isinstance(row, dict) and str(row.get("ID")) == str(i):
                    found[i] = row
    return found


def display_name(user: dict[str, Any]) -> str:
    """``Иван Иванов``, or the e-mail when the user has no name."""
    name = " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
    return name or str(user.get("EMAIL") or "")


async def read_active_users(client: B24Client) -> list[dict[str, Any]] | None:
    """Every active user of the portal (``user.get`` with ``ACTIVE``: dismissed users are
    left out), page by page; ``None`` when the webhook may not read users."""
    try:
        return await read_all(client, "user.get", {"filter": {"ACTIVE": True}})
    except ScopeError:
        return None
