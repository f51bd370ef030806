"""Load entities into a sandbox from a YAML or JSON file.

    users:     [{ID: 2, NAME: Ольга, LAST_NAME: Логист}]
    deals:     [{TITLE: Перевозка трактора, OPPORTUNITY: 125000}]
    contacts:  [{NAME: Иван, PHONE: [{VALUE: "+79001234567", VALUE_TYPE: WORK}]}]
    companies: [{TITLE: ООО Ромашка}]
    items:     {1030: [{title: Подрядчик}]}      # smart-process items by entityTypeId
    calls:     [{method: crm.category.add, params: {entityTypeId: 2, fields: {name: X}}}]

``calls`` run first, in order, so later sections can use what they create.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from b24kit.sandbox.app import Sandbox


class SeedError(ValueError):
    pass


def load_seed(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SeedError(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise SeedError(f"{path}: the top level must be a mapping of sections")
    unknown = set(data) - {"users", "deals", "contacts", "companies", "items", "calls"}
    if unknown:
        raise SeedError(f"{path}: unknown sections: {', '.join(sorted(unknown))}")
    return data


def apply_seed(sandbox: Sandbox, data: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in data.get("calls") or []:
        sandbox.call(call["method"], call.get("params") or {})
        counts["calls"] = counts.get("calls", 0) + 1
    for user in data.get("users") or []:
        sandbox.portal.add_user(user, user.get("ID"))
        counts["users"] = counts.get("users", 0) + 1
    for section, entity in (("deals", "deal"), ("contacts", "contact"), ("companies", "company")):
        for fields in data.get(section) or []:
            sandbox.call(f"crm.{entity}.add", {"fields": fields})
            counts[section] = counts.get(section, 0) + 1
    for etid, rows in (data.get("items") or {}).items():
        for fields in rows:
            sandbox.call("crm.item.add", {"entityTypeId": int(etid), "fields": fields})
            counts["items"] = counts.get("items", 0) + 1
    return counts
