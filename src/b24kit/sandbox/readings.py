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
    "auth-403": "a wrong webhook secret (INVALID_CREDENTIALS) answers HTTP 403, the status "
    "_includes/system-errors.md gives that code, not the 401 measured (b24jssdk#500)",
    "scope-401": "insufficient_scope answers HTTP 401 (the rest source throws it as an "
    "OAuthException), not the 403 of _includes/system-errors.md",
    "uf-enum-replaces": "userfieldconfig.update's enum replaces the whole list (values it "
    "does not name are deleted), as an earlier userfieldconfig-update.md and the main "
    "module's prepareEnums read; the current page implies a partial update",
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
