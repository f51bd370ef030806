"""Alternative readings: where no source settles how a real portal behaves, the sandbox can
be switched to the reading that is worse for b24kit, so tests prove b24kit right under both.

Each name here is one place in the sandbox's code (grep for it); docs/sandbox.md lists them
with their sources. ``SandboxConfig(readings={...})`` or ``sandbox serve --reading NAME``.
"""

from __future__ import annotations

from collections.abc import Iterable

READINGS: dict[str, str] = {
    "status-list-pages": "crm.status.list pages at 50 rows and hoists next/total "
    "(a comment in crm-status-list.md says so; its example does not)",
    "uf-list-bare": "userfieldconfig.list rows carry no enum and no labels "
    "(userfieldconfig-list.md's example shows neither)",
    "uf-list-ignores-entity": "userfieldconfig.list ignores a filter on entityId "
    "(not among the filter fields userfieldconfig-list.md documents)",
    "type-add-drops-code": "crm.type.add does not keep code "
    "(not in crm-type-add.md's parameter table)",
    "auth-403": "INVALID_CREDENTIALS and insufficient_scope answer HTTP 403, not 401",
    "enum-without-usertype": "userfieldconfig.update applies enum without userTypeId "
    "(the sandbox's old, wrong behaviour: for proving that conformance reports a deviation)",
}


def parse_readings(names: Iterable[str]) -> frozenset[str]:
    """Checked names; an unknown one is a ValueError naming the known ones."""
    out = set()
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name not in READINGS:
            known = ", ".join(sorted(READINGS))
            raise ValueError(f"unknown sandbox reading {name!r}; known: {known}")
        out.add(name)
    return frozenset(out)
