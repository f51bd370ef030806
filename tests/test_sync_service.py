"""`sync --serve` as a service: GET /healthz, one access-log line per event (never a
secret), and a port that cannot be had is a clear error."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24kit.blueprint.loader import load_blueprint
from b24kit.links import serve as serve_module
from b24kit.links.serve import SyncService
from tests.clients import client_for
from tests.test_links import COMPANY, cats, deployed

TOKEN = "tok-9f8e7d6c5b4a3210"
WRONG = "wrong-1a2b3c4d5e6f"
MEMBER = "member-77aa88bb99cc"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def event(name: str, deal: int, token: str = TOKEN) -> str:
    return (
        f"event={name}&event_handler_id=185&data%5BFIELDS%5D%5BID%5D={deal}&ts=1735374081"
        f"&auth%5Bdomain%5D=portal.example&auth%5Bmember_id%5D={MEMBER}"
        f"&auth%5Bapplication_token%5D={token}"
    )


def drive(tmp_path: Path, steps: Any) -> Any:
    """Run ``steps(http, box, sales, service)`` against a SyncService (its worker running)
    on a deployed sandbox."""
    box = deployed(COMPANY)
    sales = cats(box)["Продажи: Услуга под ключ"]

    async def go() -> Any:
        with client_for(box) as client:
            service = SyncService(client, load_blueprint(COMPANY)[0], tmp_path, TOKEN, pause=0)
            worker = asyncio.create_task(service.work(300))
            transport = httpx.ASGITransport(app=service, client=("10.1.2.3", 40123))
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://sync") as http:
                    return await steps(http, box, sales, service)
            finally:
                service.stop()
                await worker

    return asyncio.run(go())


def test_healthz_reports_passes_and_other_verbs_are_405(tmp_path: Path) -> None:
    async def steps(http: httpx.AsyncClient, box: Any, sales: int, service: SyncService) -> None:
        before = await http.get("/healthz")
        assert before.status_code == 200
        assert before.json() == {
            "status": "ok",
            "passes": 0,
            "last_pass": None,
            "last_error": None,
            "events": 0,
            "pending": 0,
            "pass_running": False,
            "rate": service.client.bucket.rate,
            "burst": service.client.bucket.capacity,
        }
        deal = int(box.call("crm.deal.add", {"fields": {"CATEGORY_ID": sales}}))
        answer = await http.post("/", content=event("ONCRMDEALUPDATE", deal), headers=FORM)
        assert answer.status_code == 200
        assert answer.json() == {"event": "ONCRMDEALUPDATE", "queued": deal, "pending": 1}
        await service.drain()
        after = (await http.get("/healthz")).json()
        assert after["status"] == "ok" and after["passes"] == 1 and after["last_error"] is None
        assert after["events"] == 1 and after["pending"] == 0
        when = datetime.fromisoformat(after["last_pass"])
        assert abs((datetime.now(UTC) - when).total_seconds()) < 60
        assert TOKEN not in (await http.get("/healthz")).text
        for verb, path in (("POST", "/healthz"), ("PUT", "/"), ("GET", "/"), ("DELETE", "/x")):
            response = await http.request(verb, path)
            assert response.status_code == 405, (verb, path, response.status_code)
            assert response.headers["allow"] == ("GET, HEAD" if path == "/healthz" else "POST")

    drive(tmp_path, steps)


def test_one_access_log_line_per_event_and_never_a_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="b24kit.sync")

    async def steps(
        http: httpx.AsyncClient, box: Any, sales: int, service: SyncService
    ) -> list[dict[str, Any]]:
        deal = int(box.call("crm.deal.add", {"fields": {"CATEGORY_ID": sales}}))
        box.call("crm.deal.update", {"id": deal, "fields": {"STAGE_ID": f"C{sales}:ESTIMATE"}})
        answers = []
        for body in (
            event("ONCRMDEALUPDATE", deal),
            event("ONCRMDEALUPDATE", deal, WRONG),
            event("ONCRMDEALUPDATE", deal, ""),
            event("ONCRMDEALDELETE", deal),
        ):
            response = await http.post("/", content=body, headers=FORM)
            answers.append({"status": response.status_code, **response.json()})
            await service.drain()
        answers.append({"deal": deal})
        return answers

    *answers, last = drive(tmp_path, steps)
    deal = last["deal"]
    assert [a["status"] for a in answers] == [200, 401, 401, 200]
    records = [r for r in caplog.records if r.name == "b24kit.sync"]
    assert len(records) == 5, [r.getMessage() for r in records]
    accepted, done, wrong, missing, ignored = records
    prefix = "client=10.1.2.3:40123 event=ONCRMDEALUPDATE"
    assert accepted.levelno == logging.INFO
    assert accepted.getMessage().endswith(f"{prefix} deal={deal} accepted; 1 deal(s) pending")
    assert done.levelno == logging.INFO
    assert "pass 1: " in done.getMessage() and "created=1 findings=1 failed=0" in done.getMessage()
    # the wrong and the missing token are refused before the form is read: no event, no deal
    assert wrong.levelno == logging.WARNING
    assert wrong.getMessage().endswith("client=10.1.2.3:40123 refused: wrong application token")
    assert missing.levelno == logging.WARNING
    assert missing.getMessage().endswith("refused: no application token")
    assert ignored.levelno == logging.INFO
    assert "event=ONCRMDEALDELETE" in ignored.getMessage()
    assert "refused: ignored event" in ignored.getMessage()
    for record in records:
        stamp = record.getMessage().split()[0]
        assert stamp.startswith("time=") and datetime.fromisoformat(stamp[5:]).tzinfo
    for secret in (TOKEN, WRONG, MEMBER, "portal.example"):
        assert secret not in caplog.text, f"{secret} reached the log"


def test_a_failed_pass_is_one_line_and_shows_in_healthz_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="b24kit.sync")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("crm.deal.list: HTTP 503 at https://p.example/rest/1/hooksecret42/")

    monkeypatch.setattr(serve_module, "sync_once", broken)

    async def steps(http: httpx.AsyncClient, box: Any, sales: int, service: SyncService) -> Any:
        answer = await http.post("/", content=event("ONCRMDEALADD", 1), headers=FORM)
        while not service.last_error:
            await asyncio.sleep(0.01)
        return answer.status_code, (await http.get("/healthz")).json()

    status, health = drive(tmp_path, steps)
    assert status == 200, "the event was taken; the pass is the worker's"
    assert health["passes"] == 0 and health["last_pass"] is None
    assert health["last_error"] == "crm.deal.list: HTTP 503 at https://p.example/rest/1/***/"
    assert health["pending"] == 1, "kept for the next pass"
    records = [r for r in caplog.records if r.name == "b24kit.sync"]
    assert [r.levelno for r in records][:2] == [logging.INFO, logging.ERROR]
    assert "pass failed: crm.deal.list: HTTP 503" in records[1].getMessage()
    assert all(r.exc_info is None for r in records), "one line, no traceback"
    assert "hooksecret42" not in caplog.text and TOKEN not in caplog.text


def test_a_busy_port_is_a_listen_error(tmp_path: Path) -> None:
    from b24kit.links.serve import serve_forever
    from b24kit.sandbox.server import ListenError

    box = deployed(COMPANY)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def go() -> None:
            with client_for(box) as client:
                service = SyncService(client, load_blueprint(COMPANY)[0], tmp_path, TOKEN)
                await serve_forever(service, "127.0.0.1", port, 300.0)

        with pytest.raises(ListenError) as info:
            asyncio.run(go())
    assert info.value.in_use and str(info.value) == f"port {port} on 127.0.0.1 is in use"


def test_the_documented_unit_runs_the_real_command() -> None:
    from typer.testing import CliRunner

    from b24kit.cli.app import app

    page = Path(__file__).resolve().parents[1] / "docs" / "sync-service.md"
    text = page.read_text(encoding="utf-8")
    unit = text.split("```ini\n", 1)[1].split("```", 1)[0]
    settings = [line.split("=", 1) for line in unit.splitlines() if "=" in line]
    keys = {k for k, _ in settings}
    assert {"User", "WorkingDirectory", "ExecStart", "Restart"} <= keys
    assert ["Environment", "B24_PORTAL=acme"] in settings
    assert ["Restart", "on-failure"] in settings
    stop_after = int(dict(settings)["TimeoutStopSec"])
    assert stop_after > 600, "systemd waits out the pass in flight (--deadline, 600 s)"
    exec_start = dict(settings)["ExecStart"].split()
    assert exec_start[0] == "/opt/acme/.venv/bin/b24kit", "the venv's b24kit, by absolute path"
    assert exec_start[1] == "sync" and "--serve" in exec_start
    assert "--app-token" not in exec_start, "the token comes from the environment file"
    # every option of the unit's command line exists (click rejects an unknown one, exit 2)
    result = CliRunner().invoke(app, [*exec_start[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "B24_APP_TOKEN" in result.output, "--app-token is read from B24_APP_TOKEN"
    assert "curl -fsS http://127.0.0.1:8780/healthz" in text
    assert "journalctl -u b24kit-sync-acme" in text


def test_a_large_body_is_refused_at_once_and_never_parsed(tmp_path: Path) -> None:
    """Issue 16, item 8: a 240 KB body without a token froze the server for 108 s."""

    async def steps(http: httpx.AsyncClient, box: Any, sales: int, service: SyncService) -> None:
        started = asyncio.get_running_loop().time()
        big = await http.post("/", content=b"a[" * 5_000_000, headers=FORM)  # 10 MB
        took = asyncio.get_running_loop().time() - started
        assert big.status_code == 413 and took < 1.0, took
        ok = await http.post("/", content=event("ONCRMDEALUPDATE", 1), headers=FORM)
        assert ok.status_code == 200, "a normal event still goes through"

    drive(tmp_path, steps)
