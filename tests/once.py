"""Work done once per test run and shared by every pytest-xdist worker.

A module- or session-scoped fixture runs once per worker: a 2,000-row migration made
twice on a two-core machine costs a core several seconds for nothing. ``once(factory,
name, make)`` keeps what ``make`` returns (it must pickle) in the run's shared temporary
folder, under a file lock, so the first worker to ask makes it and the others read it.
``once_file`` does the same for a file ``make`` writes (a sandbox database).
"""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def _shared(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    # under xdist each worker's base is <run>/popen-gwN; <run> is this run's alone
    folder = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = folder / "once"
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def once(factory: pytest.TempPathFactory, name: str, make: Callable[[], T]) -> T:
    path = _shared(factory) / f"{name}.pickle"
    with _locked(path):
        if path.exists():
            value: T = pickle.loads(path.read_bytes())
            return value
        value = make()
        temporary = path.with_suffix(".partial")
        temporary.write_bytes(pickle.dumps(value))
        temporary.replace(path)
        return value


def once_file(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The path of a file ``make(path)`` wrote once for the whole run (do not change it:
    copy it)."""
    path = _shared(factory) / name
    with _locked(path):
        if not path.exists():
            temporary = path.with_name(path.name + ".partial")
            make(temporary)
            temporary.replace(path)
    return path
