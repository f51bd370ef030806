"""The estimates report (moved here from links/run.py, issue 14): per logistician and
month, estimates made, median and 90th-percentile hours from the parent entering the
trigger stage to the child reaching the move stage, the price given and the final amount;
users by name."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client, read_all
from b24kit.errors import InputError
from b24kit.links.audit import read_link_deals
from b24kit.links.run import links_for
from b24kit.portal.ids import EntityType
from b24kit.portal.users import display_name, read_users

ESTIMATE_COLUMNS = [
    "logistician",
    "logistician_name",
    "month",
    "estimates",
    "median_hours",
    "p90_hours",
    "price_given",
    "final_amount",
]


@dataclass
class EstimateRow:
    logistician: int | None
    month: str
    estimates: int
    median_hours: float | None
    p90_hours: float | None
    price_given: float
    final_amount: float

    logistician_name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


async def user_names(client: B24Client, ids: list[int]) -> dict[int, str]:
    """Users by name (user.get); an id stays an id when the webhook may not read users."""
    users = await read_users(client, ids) or {}
    return {i: display_name(user) for i, user in users.items()}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def estimates_report(
    client: B24Client, bp: Blueprint, link_name: str | None = None, done_stage: str | None = None
) -> list[EstimateRow]:
    """Per logistician and month: estimates made (children that reached the approval stage),
    median and 90th percentile hours from the parent entering the trigger stage to the
    child reaching approval, the price given (child amount) and the final deal amount."""
    links = await links_for(client, bp, [link_name] if link_name else None)
    link = links[0]
    approval = (
        next(iter(link.done_stages()), None)
        if done_stage is None
        else link.status(link.child, done_stage)
    )
    if approval is None:
        raise InputError(f"link {link.link.name!r} has no move: name the approval stage")
    index = await read_link_deals(client, link)
    deals = {d.id: d for d in index.all()}
    index.close()
    history = await read_all(
        client,
        "crm.stagehistory.list",
        {
            "entityTypeId": int(EntityType.DEAL),
            "filter": {"@STAGE_ID": sorted({*link.triggers.values(), approval})},
            "select": ["OWNER_ID", "STAGE_ID", "CREATED_TIME"],
        },
    )
    entered: dict[tuple[int, str], datetime] = {}
    for row in history:
        key = (int(row["OWNER_ID"]), str(row["STAGE_ID"]))
        moment = datetime.fromisoformat(str(row["CREATED_TIME"]))
        entered[key] = min(entered.get(key, moment), moment)
    groups: dict[tuple[int | None, str], list[tuple[float, float, float]]] = defaultdict(list)
    for child in deals.values():
        if child.category != link.child.id or child.parent_ref not in deals:
            continue
        done = entered.get((child.id, approval))
        trigger = link.trigger_of(deals[child.parent_ref].category)
        began = entered.get((child.parent_ref, trigger or ""))
        if done is None or began is None:
            continue
        parent = deals[child.parent_ref]
        took = (done - began).total_seconds() / 3600
        groups[(child.assigned, done.strftime("%Y-%m"))].append((took, child.amount, parent.amount))
    rows = []
    names = await user_names(client, sorted({who for who, _ in groups if who}))
    for (who, month), items in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0] or 0)):
        spans = [h for h, _, _ in items]
        rows.append(
            EstimateRow(
                who,
                month,
                len(items),
                round(statistics.median(spans), 2),
                round(percentile(spans, 0.9), 2),
                round(sum(p for _, p, _ in items), 2),
                round(sum(f for _, _, f in items), 2),
                names.get(who or 0, ""),
            )
        )
    return rows
