"""``b24kit sandbox``: run and manage the local rehearsal portal."""

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from b24kit.cli.common import Format, FormatOption
from b24kit.cli.output import console, err, fail
from b24kit.cli.report import Output, show

if TYPE_CHECKING:
    from b24kit.sandbox import Sandbox

# the sandbox (its every method handler) is imported by the commands that use it, not by
# every b24kit command: `b24kit --help` or a run against a real portal never loads it
DEFAULT_DB = ".b24kit/sandbox.sqlite"  # as b24kit.sandbox.app.DEFAULT_DB (a test checks)


class Language(StrEnum):
    en = "en"
    ru = "ru"


app = typer.Typer(
    help=(
        "A local Bitrix24 portal for rehearsals and tests. It speaks the real REST protocol "
        "(webhook URLs, the JSON envelope, batch, paging, errors, rate limits) over HTTP and "
        "keeps its data in SQLite."
    ),
    no_args_is_help=True,
)

DbOption = Annotated[
    str,
    typer.Option(
        "--db", metavar="FILE", help="SQLite file of the portal (':memory:' for a throwaway one)."
    ),
]


@contextmanager
def _locked(db: str, role: str) -> Iterator[None]:
    """Hold the database's lock for the block, or refuse (exit 2) while another
    ``serve``, ``reset`` or ``seed`` holds it."""
    from b24kit.sandbox.db import DatabaseBusy, DatabaseLock

    lock = DatabaseLock(db, role)
    try:
        lock.acquire()
    except DatabaseBusy as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot lock {lock.path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


class _Stop(Exception):
    """SIGTERM, after the server's graceful shutdown."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _open(db: str, **kwargs: object) -> "Sandbox":
    from b24kit.sandbox import FaultSpecError, Sandbox, SandboxConfig

    try:
        return Sandbox(SandboxConfig(db=db), **kwargs)
    except (FaultSpecError, ValueError) as exc:
        raise fail(str(exc)) from exc


def _check_spec(faults: str | None, readings: list[str] | None) -> None:
    """A bad --faults or --reading is refused before anything is written (the lock file,
    a new database)."""
    from b24kit.sandbox import FaultSpecError
    from b24kit.sandbox.faults import Faults
    from b24kit.sandbox.readings import parse_readings

    try:
        Faults.parse(faults)
        parse_readings(readings or ())
    except (FaultSpecError, ValueError) as exc:
        raise fail(str(exc)) from None


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port to listen on (0 picks a free one).")
    ] = 8765,
    db: DbOption = DEFAULT_DB,
    user_id: Annotated[
        int, typer.Option("--user-id", metavar="ID", help="User the webhook acts as.")
    ] = 1,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            help="Webhook secret; by default one is generated once and kept in the db.",
        ),
    ] = None,
    limits: Annotated[
        str,
        typer.Option(
            metavar="standard|enterprise|off",
            help="Rate limits: standard (50 burst, 2/s), enterprise (250, 5/s) or off.",
        ),
    ] = "standard",
    latency_ms: Annotated[
        float,
        typer.Option("--latency-ms", metavar="MS", help="Delay added to every request, in ms."),
    ] = 0.0,
    cost_model: Annotated[
        str,
        typer.Option(
            "--cost-model",
            metavar="docs|phpsdk",
            help="What each call charges the operating-time budget (480 s per method per 10 "
            "minutes): docs (the official docs' figures: a start=-1 page 0.069 s, counting "
            "20.9 us a row) or phpsdk (bitrix24-php-sdk's benchmark: counting 0.66 us a row). "
            "Sources: docs/sandbox.md.",
        ),
    ] = "docs",
    wall_time: Annotated[
        bool,
        typer.Option(
            "--wall-time",
            metavar="",
            help="Spend each request's charged time as wall time before answering, as a "
            "portal takes that long (a batch: the sum of its commands).",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            metavar="N",
            help="Requests in progress at once, as a portal's PHP workers; the next waits "
            "for a free one (50: the standard plan's burst).",
        ),
    ] = 50,
    faults: Annotated[
        str | None,
        typer.Option(
            metavar="SPEC",
            help='Injected faults, e.g. "500=0.05,503=0.05,drop=0.05,lost=0.05,seed=1". '
            "drop: connection cut before the call runs; lost: the call runs, its answer is lost; "
            "counted=no: the leaky bucket does not count a 500 or drop request.",
        ),
    ] = None,
    sheet: Annotated[
        list[str] | None,
        typer.Option(
            "--sheet",
            metavar="KEY=FILE",
            help="Serve a CSV or XLSX file as a Google Sheet for gspread: "
            "KEY=FILE (repeatable); read it with --sheets-endpoint http://HOST:PORT.",
        ),
    ] = None,
    reading: Annotated[
        list[str] | None,
        typer.Option(
            "--reading",
            metavar="NAME",
            help="Switch on an alternative reading of a point no source "
            "settles, e.g. status-list-pages (repeatable; see docs/sandbox.md).",
        ),
    ] = None,
    language: Annotated[
        Language,
        typer.Option(
            "--language",
            metavar="en|ru",
            help="The language the portal "
            "names the stages of a new pipeline in (a Russian portal: ru).",
        ),
    ] = Language.en,
) -> None:
    """Serve the sandbox portal over HTTP and print its inbound webhook URL. While it runs
    it holds the database (DB.lock): reset, seed and a second serve on it refuse. Ctrl+C
    stops it (exit 0).

    Example: b24kit sandbox serve --port 8765 --faults "503=0.1,lost=0.02"

    As a portal under load: --cost-model docs --wall-time --workers 8 --latency-ms 30
    """
    if limits not in ("standard", "enterprise", "off"):
        raise fail(f"--limits must be standard, enterprise or off, not {limits!r}")
    from b24kit.sandbox.costs import PRESETS

    if cost_model not in PRESETS:
        raise fail(f"--cost-model must be one of {', '.join(PRESETS)}, not {cost_model!r}")
    if workers < 1:
        raise fail(f"--workers must be at least 1, not {workers}")
    _check_spec(faults, reading)  # before the database is locked or made
    with _locked(db, "serve"):
        sandbox = _open(
            db,
            user_id=user_id,
            token=token,
            limits=limits,
            latency_ms=latency_ms,
            cost_model=cost_model,
            wall_time=wall_time,
            workers=workers,
            faults=faults,
            readings=frozenset(reading or ()),
            language=language.value,
        )
        try:
            _add_sheets(sandbox, sheet)
            _run(sandbox, db, host, port, limits)
        finally:
            sandbox.close()


def _add_sheets(sandbox: "Sandbox", sheet: list[str] | None) -> None:
    for item in sheet or []:
        key, sep, path = item.partition("=")
        if not sep:
            raise fail(f"--sheet {item!r}: expected KEY=FILE")
        from b24kit.migrate.sources import read_csv, read_xlsx

        file = Path(path)
        try:
            grid = read_xlsx(file) if file.suffix.lower() == ".xlsx" else read_csv(file)
        except (OSError, ValueError) as exc:
            raise fail(
                f"--sheet {item!r}: cannot read {file}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        sandbox.sheets.add(
            key, file.stem, {grid.worksheet: grid.rows}, {grid.worksheet: grid.merges}
        )


def _run(sandbox: "Sandbox", db: str, host: str, port: int, limits: str) -> None:
    from b24kit.asgi import ListenError
    from b24kit.sandbox.server import serve as run

    def ready(base: str) -> None:
        console.print(f"Sandbox portal on {base}  (db: {db}, limits: {limits})", highlight=False)
        console.print(
            f"Inbound webhook URL: {sandbox.webhook_url(base)}", highlight=False, soft_wrap=True
        )
        console.print("Press Ctrl+C to stop.", style="dim")

    # uvicorn stops gracefully on SIGINT/SIGTERM and then raises the signal again: SIGINT
    # arrives here as KeyboardInterrupt, SIGTERM through this handler.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        run(sandbox, host, port, ready)
    except ListenError as exc:
        if exc.in_use:
            raise fail(f"{exc} (another sandbox?); pick another with --port") from None
        raise fail(str(exc), code=3) from None
    except (KeyboardInterrupt, _Stop):
        pass
    except OSError as exc:
        raise fail(f"the sandbox server on {host}:{port} failed: {exc}", code=3) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(f"Sandbox portal stopped (db: {db}).", highlight=False)


@app.command()
def reset(
    db: DbOption = DEFAULT_DB,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", metavar="", help="Do not ask for confirmation.")
    ] = False,
) -> None:
    """Delete every entity of the sandbox portal (the webhook token is kept). Refuses while
    a `sandbox serve` uses the database: stop the server first."""
    path = Path(db)
    if db != ":memory:" and not path.exists():
        err.print(f"Nothing to reset: {db} does not exist.")
        return
    if not yes and not sys.stdin.isatty():
        raise fail("reset asks first, and there is no terminal to ask on", "pass --yes")
    from b24kit.sandbox import Sandbox, SandboxConfig

    with _locked(db, "reset"):
        if not yes and not typer.confirm(f"Delete all data of the sandbox portal in {db}?"):
            err.print("Nothing was reset.")
            raise typer.Exit(0)
        old = Sandbox(SandboxConfig(db=db))
        token = old.token
        old.close()
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)
        Sandbox(SandboxConfig(db=db), token=token).close()
    console.print(f"Sandbox portal in {db} reset.")


@app.command()
def seed(
    file: Annotated[Path, typer.Argument(help="YAML or JSON file with the entities to load.")],
    db: DbOption = DEFAULT_DB,
    format: FormatOption = Format.text,
) -> None:
    """Load users, deals, contacts, companies and smart-process items from a file. Refuses
    while a `sandbox serve` uses the database (seed through its webhook instead, or stop it)."""
    from b24kit.sandbox.seed import SeedError, apply_seed, load_seed

    try:
        data = load_seed(file)
    except (OSError, SeedError) as exc:
        raise fail(str(exc)) from exc
    if db == ":memory:":
        raise fail(
            "--db :memory: keeps nothing: seed a sandbox file (the default "
            f"{DEFAULT_DB}, or --db FILE)"
        )
    with _locked(db, "seed"):
        sandbox = _open(db, limits="off")
        try:
            counts = apply_seed(sandbox, data)
        except Exception as exc:  # noqa: BLE001
            raise fail(f"{file}: seeding failed: {exc}") from exc
        finally:
            sandbox.close()
    show(
        Output(
            counts,
            text=lambda: console.print(
                ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing to load"
            ),
        ),
        format,
    )
