#!/usr/bin/env python3
"""Start-up of the b24kit command (issue 15 item 6: `b24kit --help` and `b24kit validate`
within 0.25 s). Runs each command N times as a new process, the way a shell does (the
installed `b24kit` script beside this Python, else `python -m b24kit`), after one run
that writes the bytecode caches (PYTHONDONTWRITEBYTECODE is dropped), and prints the median and the fastest wall time, the
median CPU time (user + system, less disturbed by other processes than wall time), the
machine and its load average: on a busy machine wall times grow with the load.

    python scripts/bench_startup.py [--runs 20] [--json]

For scale it also times `python -c pass` (the interpreter alone), `import typer` (the
command-line library alone) and the `--help` of a two-command Typer app with typer's rich
help, as b24kit's (what typer costs a `--help` before any of b24kit's own code), which no
change to b24kit makes faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINT = "blueprints/company.yaml"  # the README's walkthrough blueprint
# bytecode caches written, as an installed package has them (pip compiles on install)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# a Typer app of two commands, its help rendered by rich as b24kit's is: typer's own floor
TYPER_APP = """
import typer
app = typer.Typer(rich_markup_mode="rich")
@app.command()
def one(name: str = typer.Option("", help="A name.")) -> None:
    "The first command."
@app.command()
def two() -> None:
    "The second command."
app()
"""


def b24kit() -> list[str]:
    installed = Path(sys.executable).parent / "b24kit"
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "b24kit"]


def commands() -> dict[str, list[str]]:
    cli = b24kit()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "a two-command Typer app --help": [sys.executable, "-c", TYPER_APP, "--help"],
        "b24kit --version": [*cli, "--version"],
        "b24kit --help": [*cli, "--help"],
        f"b24kit validate {BLUEPRINT}": [*cli, "validate", BLUEPRINT],
    }


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run; it must succeed."""
    cpu = cpu_of_children()
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, cpu_of_children() - cpu


def measure(argv: list[str], runs: int) -> dict[str, float]:
    once(argv)  # writes the bytecode caches; not counted
    walls, cpus = zip(*(once(argv) for _ in range(runs)), strict=True)
    return {
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "cpu_median_s": round(statistics.median(cpus), 3),
    }


def processor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args()
    about = machine()
    results = {name: measure(argv, args.runs) for name, argv in commands().items()}
    about["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps({"machine": about, "runs": args.runs, "results": results}, indent=2))
        return
    print(
        f"{about['platform']}, {about['processor']}, {about['cpus']} CPUs, Python "
        f"{about['python']}; load average "
        f"{about['load_average']} before, {about['load_average_after']} after; {args.runs} runs"
    )
    print(f"{'command':48} {'median':>8} {'fastest':>8} {'CPU':>8}")
    for name, r in results.items():
        print(
            f"{name:48} {r['median_s'] * 1000:6.0f}ms {r['min_s'] * 1000:6.0f}ms "
            f"{r['cpu_median_s'] * 1000:6.0f}ms"
        )


if __name__ == "__main__":
    main()
