"""``report ... --html FILE`` and ``--to-sheet KEY`` through the CLI (issue 14): every
report, from one reading of the portal, as one offline page and as worksheets rewritten in
place on each run."""

from __future__ import annotations

import re
from pathlib import Path

from b24kit.migrate.sources import gspread_client
from b24kit.sandbox.server import start_in_thread
from tests.cli import ROOT, run_cli
from tests.test_links import deployed

COMPANY = ROOT / "blueprints" / "company.yaml"
KEY = "1mgmtSheetKeyForTheCronLine"


def test_html_and_to_sheet_publish_every_report(tmp_path: Path) -> None:
    box = deployed(COMPANY)
    box.sheets.add(KEY, "Management", {"Notes": [["kept by people"]]})
    deal = box.call("crm.deal.add", {"fields": {"TITLE": "Трактор", "SOURCE_ID": "WEB"}})
    assert deal
    running = start_in_thread(box)
    try:
        url = box.webhook_url(running.base_url)
        page = tmp_path / "report.html"

        def report(*extra: str) -> str:
            done = run_cli(
                "report", "sources", str(COMPANY), "--portal", url, "-f", "csv",
                "--html", str(page), "--to-sheet", KEY, "--sheets-endpoint", running.base_url,
                *extra, cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path)},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done.stdout

        out = report()
        assert out.splitlines()[0].startswith("source,"), "the command's own table on stdout"
        text = page.read_text(encoding="utf-8")
        tables = re.findall(r'data-table="(\w+)"|id="table-(\w+)"', text)
        named = {a or b for a, b in tables}
        assert named == {"projects", "sources", "contractors", "estimates", "departments"}
        assert "<script src" not in text, "self-contained"
        client = gspread_client(endpoint=running.base_url)
        sheet = client.open_by_key(KEY)
        titles = [w.title for w in sheet.worksheets()]
        assert titles[0] == "Notes", "what people keep there is left alone"
        assert set(titles[1:]) == named
        first = sheet.worksheet("sources").get_all_values()
        report()  # the cron line again: the same worksheets, updated in place
        again = client.open_by_key(KEY)
        assert [w.title for w in again.worksheets()] == titles
        assert again.worksheet("sources").get_all_values() == first
    finally:
        running.stop()
