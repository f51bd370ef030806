"""``b24kit portal``: look at the portal a command would talk to."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from b24kit.cli.common import FormatOption, PlanOption, PortalOption, open_portal, run_portal
from b24kit.cli.output import console, emit_json
from b24kit.client import Connection
from b24kit.client.limiter import PLANS

app = typer.Typer(help="Inspect the portal: reachability, user, scopes, limits.",
                  no_args_is_help=True)


@app.command()
def check(portal: PortalOption = None, plan: PlanOption = None,
          format: FormatOption = "text") -> None:
    """Reach the portal and show who we are there, the scopes, the plan's limits and latency.

    Exit code 0 when the portal answers, 3 when it does not.

    Example: b24kit portal check --portal https://acme.bitrix24.ru/rest/1/SECRET/ -f json
    """
    conn = open_portal(portal, plan)

    async def work(conn: Connection) -> dict[str, Any]:
        started = time.perf_counter()
        await conn.client.call("server.time")
        latency_ms = (time.perf_counter() - started) * 1000
        batch = await conn.client.batch({"user": ("user.current", {}), "scope": ("scope", {}),
                                         "time": ("server.time", {})})
        user = batch.result.get("user") or {}
        burst, rate = PLANS[conn.plan]
        return {
            "portal": conn.label,
            "sandbox": conn.is_sandbox,
            "user": {"id": user.get("ID"), "name": " ".join(
                str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()},
            "scopes": batch.result.get("scope") or [],
            "server_time": batch.result.get("time"),
            "plan": {"name": conn.plan, "burst": int(burst), "per_second": rate,
                     "batch_commands": 50, "writes_per_second": rate * 50,
                     "rows_per_second": rate * 50 * 50},
            "latency_ms": round(latency_ms, 1),
            "errors": {k: str(v) for k, v in batch.error.items()},
        }

    report = run_portal(conn, work)
    if format == "json":
        emit_json(report)
        return
    table = Table(show_header=False, box=None)
    table.add_row("portal", report["portal"])
    table.add_row("user", f"{report['user']['id']} {report['user']['name']}")
    table.add_row("scopes", ", ".join(report["scopes"]) or "(none)")
    plan_info = report["plan"]
    table.add_row("plan", f"{plan_info['name']}: burst {plan_info['burst']}, "
                  f"{plan_info['per_second']:g} requests/s, up to "
                  f"{plan_info['writes_per_second']:g} writes/s and "
                  f"{plan_info['rows_per_second']:g} rows/s through batch")
    table.add_row("latency", f"{report['latency_ms']} ms")
    table.add_row("server time", str(report["server_time"]))
    console.print(table)
