"""scripts/bench_peers.py, the side-by-side benchmark (issue 15 item 2): its binding-limit
formula and its table as pure functions, and one tiny real job of its --quick mode against
a sandbox served over loopback HTTP, so the script cannot rot."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from b24kit.sandbox import Sandbox, SandboxConfig
from tests.servers import served


def _load() -> ModuleType:
    path = Path(__file__).parent.parent / "scripts" / "bench_peers.py"
    spec = importlib.util.spec_from_file_location("bench_peers", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load()
# the official docs' figures as the docs preset charges them: a crm.deal.add 0.0937 s,
# a start=-1 page 0.0685 s (docs/sandbox.md#cost-model)
DOCS_LIKE = bench.Preset("docs-like", (), write=0.0937, page=0.0685)


def test_the_presets_are_the_sandboxs_with_their_flags() -> None:
    presets = bench.load_presets(None, 8)
    assert [p.name for p in presets] == ["docs", "phpsdk"]
    docs = presets[0]
    assert docs.flags == ("--cost-model", "docs", "--wall-time", "--workers", "8")
    assert (docs.write, docs.page) == (
        pytest.approx(0.0937, abs=1e-4),
        pytest.approx(0.0685, abs=1e-4),
    )


def test_a_long_write_job_is_bound_by_the_operating_budget() -> None:
    # 10,000 writes charge 937 s: past 480 s the rest waits a 600 s window; the bucket
    # alone would allow 200 requests in 99.5 s (the first one free)
    limit = bench.binding_limit("write", 10_000, False, DOCS_LIKE)
    assert limit.binds == "operating budget"
    assert limit.seconds == 600.0
    assert limit.rate == pytest.approx(16.667, abs=0.001)
    assert limit.sustained == pytest.approx(8.538, abs=0.001)  # 0.8 / 0.0937


def test_a_read_that_fits_one_window_is_bound_by_the_rate_limit() -> None:
    # 100,000 rows: 2,000 pages charge 137 s (one window holds it); 40 requests at 2/s,
    # the first free (a full bucket admits one within half a second)
    limit = bench.binding_limit("read", 100_000, False, DOCS_LIKE)
    assert (limit.binds, limit.seconds, limit.rate) == ("rate limit", 19.5, 100_000 / 19.5)
    assert limit.sustained == pytest.approx(583.94, abs=0.01)  # 0.8 / 0.0685 x 50 rows
    # a fresh bucket admits 50 requests at once: 5,000 rows/s counts from the 51st
    fresh = bench.binding_limit("read", 300_000, True, DOCS_LIKE)
    assert (fresh.binds, fresh.seconds, fresh.rate) == ("rate limit", 35.0, 300_000 / 35)


def test_a_job_the_burst_holds_has_no_binding_limit() -> None:
    limit = bench.binding_limit("write", 2_000, True, DOCS_LIKE)  # 40 requests, 187 s
    assert (limit.rate, limit.seconds) == (None, 0.0)
    assert limit.binds == "none (burst, one window)"
    with pytest.raises(ValueError, match="read or write"):
        bench.binding_limit("sync", 10, True, DOCS_LIKE)


def test_duplicates_and_losses_are_counted_per_key() -> None:
    asked = bench.items(4)
    row = bench.Row("p", "j", "c", 4, None, "")
    bench.tally_writes(row, asked, {"w0": 1, "w1": 3, "w3": 1, "other": 2})
    assert (row.done, row.duplicates, row.losses) == (3, 3, 1)
    read = bench.Row("p", "j", "c", 5, None, "")
    bench.tally_read(read, bench.Job("read-fresh", "read", 5, True), [1, 2, 2, 4])
    assert (read.done, read.duplicates, read.losses) == (3, 1, 2)


def test_the_table_shows_a_failure_as_a_row() -> None:
    ok = bench.Row(
        "docs", "read 100,000, burst spent", "b24kit", 100_000, 5000.0, "rate limit",
        done=100_000, seconds=21.3, rate=4694.8, requests=42, budget_s=137.2,
        budget_method="crm.deal.list", share=0.939,
    )  # fmt: skip
    failed = bench.Row(
        "docs", "read 100,000, burst spent", "fast_bitrix24", 100_000, 5000.0, "rate limit",
        seconds=4.31, requests=12, failed="ErrorInServerResponseException: OPERATION_TIME_LIMIT",
    )  # fmt: skip
    lines = bench.table([ok, failed]).splitlines()
    assert lines[0].startswith("| preset | job | binding limit | client | result |")
    assert lines[2] == (
        "| docs | read 100,000, burst spent | 5,000 rows/s (rate limit) | b24kit "
        "| 4,695 rows/s | 21.3 | 42 | 137.2 s crm.deal.list (29% of 480 s) | 93.9% | 0 / 0 |"
    )
    assert lines[3] == (
        "| docs | read 100,000, burst spent | 5,000 rows/s (rate limit) | fast_bitrix24 "
        "| failed after 4.3 s: ErrorInServerResponseException: OPERATION_TIME_LIMIT | 4.3 "
        "| 12 | — | — | 0 / — |"
    )
    # a peer's message may be a whole batch answer: the row keeps its error code
    answer = (
        "{'cmd10': {'error': 'OPERATION_TIME_LIMIT', 'error_description': 'Method is blocked'}}"
    )
    assert bench.describe(KeyError(answer)) == "KeyError: OPERATION_TIME_LIMIT"
    assert bench.describe(RuntimeError("All  attempts\n exhausted")) == (
        "RuntimeError: All attempts exhausted"
    )


def test_quick_mode_sizes_and_jobs() -> None:
    args = bench.parse(["--quick", "--jobs", "read-spent,faults", "--format", "json"])
    jobs = bench.make_jobs(args)
    faults = [f"fault-{k}" for k in bench.FAULT_KINDS]
    uncounted = ["fault-500-uncounted", "fault-drop-uncounted"]
    assert [j.name for j in jobs] == ["read-spent", *faults, *uncounted]
    assert [j.size for j in jobs] == [2_600, *[150] * 6]
    assert all(not j.fresh for j in jobs)
    assert jobs[1].label == "crm.deal.add 150, burst spent, 20% 500"
    assert jobs[5].label == "crm.deal.add 150, burst spent, 20% 500 not counted by the bucket"


@contextmanager
def _in_process(
    db: Path, latency_ms: float, flags: Sequence[str], faults: str | None
) -> Iterator[object]:
    """The script's server, but the sandbox in this process on the shared test server,
    with the preset's cost model (its charged time is not spent as wall time here)."""
    assert flags[:2] == ("--cost-model", "docs") and "--wall-time" in flags
    box = Sandbox(SandboxConfig(db=str(db), limits="standard", faults=faults, cost_model="docs"))
    out = bench.Served("")
    try:
        with served(box) as base:
            out.url = box.webhook_url(base)
            yield out
        keys = list(box.budget._spent)
        out.stats = {
            "requests": box.requests,
            "operating": {key[1]: box.budget.state(key)[0] for key in keys},
        }
    finally:
        box.close()


def test_one_tiny_real_job_of_each_kind(tmp_path: Path) -> None:
    args = bench.parse(["--quick", "--clients", "b24kit"])
    preset = bench.load_presets(["docs"], 50)[0]
    dbs = bench.prepare(tmp_path, [bench.Job("read-fresh", "read", 120, True)])

    read = bench.run_cell(
        bench.Job("read-fresh", "read", 120, True), "b24kit", preset,
        bench.copy_db(dbs[120], tmp_path / "r.sqlite"), args, str(tmp_path), _in_process,
    )  # fmt: skip
    assert (read.failed, read.done, read.duplicates, read.losses) == ("", 120, 0, 0)
    assert read.requests is not None and 1 <= read.requests <= 3
    assert read.budget_method == "crm.deal.list" and read.budget_s is not None
    assert read.limit is None and read.share is None  # the burst holds 3 requests

    write = bench.run_cell(
        bench.Job("write-fresh", "write", 60, True), "b24kit", preset,
        bench.copy_db(dbs[0], tmp_path / "w.sqlite"), args, str(tmp_path), _in_process,
    )  # fmt: skip
    assert (write.failed, write.done, write.duplicates, write.losses) == ("", 60, 0, 0)
    assert (
        write.requests is not None and 2 <= write.requests <= 8
    )  # 60 commands: 2 full batches, or spread over the fresh burst (6 of 10), or a few more
    assert write.budget_method == "crm.deal.add"
    assert write.budget_s is not None and write.budget_s >= 60 * preset.write
    assert "| docs | crm.deal.add 60, fresh bucket |" in bench.table([read, write])
