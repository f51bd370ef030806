"""Byte-compile the modules of b24kit's dependencies (its own and its dev tools') once,
on every core, before the tests start.

On a fresh install nothing is compiled yet (uv does not compile at install), and each of
the two test workers imports and compiles the same hundreds of modules at the same time:
four seconds of both cores before the first test, and again in the first processes the
tests start (issue 12). Compiled here once, in parallel, they are read from __pycache__.

Left out: the large packages only a few tests import (plotly's 1,500 modules for one
report, the type checker, which is compiled to C): those tests compile what they use, once.
Already compiled files are skipped, so a second run costs a tenth of a second.

Usage: python scripts/compile_deps.py   (the project virtualenv's python)
"""

from __future__ import annotations

import compileall
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

ROOT = "b24kit"
EXTRAS = ("dev",)
SKIP = {"plotly", "narwhals", "pygments", "mypy", "ruff", "playwright", "greenlet"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependencies(root: str, extras: tuple[str, ...]) -> list[Distribution]:
    """``root`` and every installed distribution it requires, with ``extras``, recursively
    (environment markers other than extras are not evaluated: what is not installed is
    not found, and compiling a module no test imports costs only time)."""
    found: dict[str, Distribution] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        if _key(name) in found or _key(name) in SKIP:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        found[_key(name)] = dist
        for requirement in dist.requires or []:
            match = _NAME.match(requirement)
            if match is None:
                continue
            marker = requirement.partition(";")[2]
            needs = _EXTRA.findall(marker)
            if needs and not set(needs) & set(wanted):
                continue
            sub = re.search(r"\[([^\]]*)\]", requirement.partition(";")[0])
            todo.append((match.group(), tuple(sub.group(1).split(",")) if sub else ()))
    return list(found.values())


def sources(dists: list[Distribution]) -> list[str]:
    """The .py files the distributions installed (an editable install's own sources are
    compiled by the tests' conftest, which knows where they are)."""
    files: list[str] = []
    for dist in dists:
        for file in dist.files or []:
            if file.suffix == ".py" and file.parts[0].lower() not in SKIP:
                path = Path(str(dist.locate_file(file)))
                if path.is_file():
                    files.append(str(path))
    return files


def _compile(path: str) -> bool:
    return bool(compileall.compile_file(path, quiet=2))


def main() -> int:
    files = sources(dependencies(ROOT, EXTRAS))
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_compile, files, chunksize=64))
    failed = results.count(False)
    # a module that does not compile (a file for another Python version, a template) is
    # compiled, or not, when imported, as without this script: said, not fatal
    if failed:
        print(f"compile_deps: {failed} of {len(files)} files did not compile", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
