"""The directory's audit rules (D001..D004), in the shape of links.audit's RULES, and
their findings: a Finding that also names the directory entries it is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from b24kit.links.audit import RULES, Finding

DIRECTORY_RULES = {
    "D001": (
        "estimate-without-contractor",
        "error",
        "an open record at or past the directory's required stage names no entry (nor in_house) "
        "or no price",
    ),
    "D002": (
        "duplicate-entry",
        "warn",
        "directory entries share a phone: the newer is a duplicate of the older (repair: "
        "its records move to the older, and it is marked and moved to the duplicate stage)",
    ),
    "D003": (
        "stale-entry-stats",
        "warn",
        "an entry's times used, last price, average rating or last used differ from its records",
    ),
    "D004": (
        "entry-not-linked",
        "warn",
        "a record names an entry typed by hand (name and phone), or in only one of the entry "
        "field and the smart process relation",
    ),
    "D005": (
        "migrated-estimate-without-contractor",
        "info",
        "a migrated record at or past the required stage names no entry (nor in_house) or no "
        "price: its sheet had none (history; D001 for records made on the portal)",
    ),
}
DIRECTORY_REPAIRABLE = {"D002", "D003", "D004"}
# one table of rules for audit's output, severities and --fail-on
RULES.update(DIRECTORY_RULES)


def item_url(base: str, etid: int, item: int) -> str:
    return f"{base.rstrip('/')}/crm/type/{etid}/details/{item}/"


@dataclass
class DirectoryFinding(Finding):
    """A finding about directory entries (``items``, smart process ``etid``) and the
    records (deals) involved; ``link`` is the link feeding the directory."""

    items: list[int] = field(default_factory=list)
    etid: int = 0

    def as_dict(self, portal_base: str) -> dict[str, Any]:
        out = super().as_dict(portal_base)
        out["items"] = [{"id": i, "url": item_url(portal_base, self.etid, i)} for i in self.items]
        return out
