"""Run many commands against a portal: batched, dependency-aware, rate-limited, retry-safe.

    ex = Executor(client)
    outcomes = await ex.run([
        Command("crm.deal.add", {"fields": {...}}, name="parent"),
        Command("crm.deal.add", {"fields": {"UF_CRM_PARENT": Ref("parent", fmt="D_{}")}}),
    ])

- Commands are packed 50 to a ``batch``; a command whose dependency sits in the same batch
  gets a ``$result[...]`` reference, one whose dependency finished earlier gets the value.
- Batches run with ``halt``: nothing after a failed command runs, so a child is never
  created from a failed parent's reference; commands that did not run are packed again.
- Independent batches run concurrently, as many as the rate limiter lets through.
- When a batch's outcome is unknown (server error, dropped connection), reads and updates
  are sent again; creates with an idempotency key are looked up first and created only if
  absent; creates without a key are reported as ``UnknownOutcome``, never repeated.
- Every command gets an ``Outcome``, in input order. A failure never hides the others.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from b24kit.client.core import B24Client, BatchResult
from b24kit.client.errors import (
    B24Error,
    BadResponse,
    OperationTimeLimit,
    PortalError,
    QueryLimitExceeded,
    ServerError,
    TransportFailure,
    UnknownOutcome,
)

NAME = re.compile(r"^[A-Za-z0-9_]+$")
KINDS = ("read", "create", "update", "delete", "")


@dataclass(frozen=True)
class LookupKey:
    """A read that finds out what an unanswered command did: ``extract`` turns its
    result into what the create would have returned (None: not made), or, for a delete,
    into True when the thing is gone (None: still there, or not known)."""

    method: str
    params: dict[str, Any]
    extract: Callable[[Any, dict[str, Any]], Any | None]  # (result, params as sent)
    label: str


@dataclass(frozen=True)
class Pick:
    """One row of a list result: the first whose ``field`` is one of ``values``, or whose
    part after the last colon is (a stage's code in its STATUS_ID)."""

    field: str
    values: tuple[str, ...]

    def choose(self, rows: Any) -> Any:
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, Mapping):
                value = str(row.get(self.field, ""))
                if value in self.values or value.rsplit(":", 1)[-1] in self.values:
                    return row
        raise LookupError(f"no row with {self.field} in {list(self.values)}")


@dataclass(frozen=True)
class Ref:
    """The result of another command, or a part of it: ``Ref("parent")``,
    ``Ref("item", ("item", "id"))``, or inside text: ``Ref("parent", fmt="D_{}")``.
    With ``pick``, the value at ``path`` is a list and one row of it is chosen, then
    ``then`` is followed inside that row; such a reference is resolved by the executor
    (the command waits for the next batch), never by the portal's ``$result``."""

    command: str
    path: tuple[str | int, ...] = ()
    fmt: str = "{}"
    pick: Pick | None = None
    then: tuple[str | int, ...] = ()

    @property
    def in_batch(self) -> bool:
        """Whether the portal can resolve it inside one batch (``$result[...]``). Not with
        text after the reference: the portal's batch parser may take everything up to the
        next space as the reference's path (the sandbox does, after CRestUtil), so
        "UF_CRM_$result[t][id]_PHONE" could lose "_PHONE"; such a value is filled in here."""
        return self.pick is None and self.fmt.endswith("{}")

    def batch_text(self) -> str:
        ref = f"$result[{self.command}]" + "".join(f"[{p}]" for p in self.path)
        return self.fmt.replace("{}", ref)

    def resolve(self, result: Any) -> Any:
        value = _follow(result, self.path)
        if self.pick is not None:
            value = _follow(self.pick.choose(value), self.then)
        return value if self.fmt == "{}" else self.fmt.replace("{}", str(value))


@dataclass(frozen=True)
class Join:
    """Text made of constant parts and references: ``Join(("DYNAMIC_", Ref(...), "_STAGE_",
    Ref(...)))``. Resolved by the executor."""

    parts: tuple[str | Ref, ...]


def _follow(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(value, Mapping):
            if str(part) not in value and part not in value:
                raise LookupError(f"no {part!r} in the result")
            value = value.get(str(part), value.get(part))  # type: ignore[call-overload]
        elif isinstance(value, list):
            value = value[int(part)]
        else:
            raise LookupError(f"no {part!r} in the result")
    return value


@dataclass
class Command:
    """One REST call for the executor. Its builder (b24kit.portal.commands) says what it
    is: ``kind`` read | create | update | delete ("" = a write of unknown effect, never
    repeated), ``key``: how to find out whether an unanswered create happened, ``gone``:
    how to see whether what a delete removes is gone. The executor never reads the
    method's name to learn these.

    ``optional``: when a reference finds nothing to act on (a picked row is missing), the
    command is skipped and counted done, with result None."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    kind: str = ""
    key: LookupKey | None = None
    gone: LookupKey | None = None
    after: tuple[str, ...] = ()  # commands that must finish first, without using their result
    optional: bool = False

    @property
    def repeatable(self) -> bool:
        """Reads, and writes that set absolute values (updates), may be sent twice."""
        return self.kind in ("read", "update")


@dataclass
class Outcome:
    name: str
    method: str
    ok: bool
    result: Any = None
    error: B24Error | None = None
    attempts: int = 0
    found_existing: bool = False  # a create whose earlier, unanswered attempt had succeeded
    skipped: bool = False  # optional, and its reference found nothing to act on


class DependencyFailed(B24Error):
    pass


Progress = Callable[[int, int], None]
UNKNOWN = (ServerError, TransportFailure, BadResponse)


def _refs(value: Any, local: bool = False) -> list[tuple[Ref, bool]]:
    """Every reference in a value, each with whether the executor must resolve it (a
    pick, a part of a Join, or a dictionary key)."""
    if isinstance(value, Ref):
        return [(value, local or not value.in_batch)]
    if isinstance(value, Join):
        return [r for part in value.parts for r in _refs(part, True)]
    if isinstance(value, Mapping):
        return [r for k, v in value.items() for r in (*_refs(k, True), *_refs(v, local))]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs(v, local)]
    return []


class Executor:
    def __init__(
        self,
        client: B24Client,
        *,
        batch_size: int = 50,
        max_in_flight: int = 4,
        max_attempts: int = 12,
        progress: Progress | None = None,
    ) -> None:
        if not 1 <= batch_size <= 50:
            raise ValueError("batch_size must be between 1 and 50")
        self.client = client
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.progress = progress

    async def run(self, commands: Sequence[Command]) -> list[Outcome]:
        # the caller's commands are never changed: an unnamed one runs as a named copy
        commands = [c if c.name else replace(c, name=f"c{i}") for i, c in enumerate(commands)]
        names: list[str] = []
        seen: set[str] = set()
        for command in commands:
            if not NAME.match(command.name):
                raise ValueError(f"command name {command.name!r}: use letters, digits and _")
            if command.name in seen:
                raise ValueError(f"two commands are named {command.name!r}")
            names.append(command.name)
            seen.add(command.name)
            if command.kind not in KINDS:
                raise ValueError(f"command {command.name!r}: unknown kind {command.kind!r}")
        position = {name: i for i, name in enumerate(names)}
        deps: dict[str, set[str]] = {}
        local: dict[str, set[str]] = {}
        for command in commands:
            refs = _refs(command.params)
            wanted = {ref.command for ref, _ in refs} | set(command.after)
            for dep in wanted:
                if dep not in position or position[dep] >= position[command.name]:
                    raise ValueError(
                        f"command {command.name!r} refers to {dep!r}, which is not an earlier command"
                    )
            deps[command.name] = wanted
            local[command.name] = {ref.command for ref, here in refs if here}
        state = _Run(self, list(commands), deps, local)
        await state.go()
        return [state.outcomes[name] for name in names]


class _Run:
    def __init__(
        self,
        ex: Executor,
        commands: list[Command],
        deps: dict[str, set[str]],
        local: dict[str, set[str]],
    ) -> None:
        self.ex = ex
        self.client = ex.client
        self.by_name = {c.name: c for c in commands}
        self.order = {c.name: i for i, c in enumerate(commands)}  # the caller's order
        self.deps = deps
        self.local = local  # dependencies whose results the executor itself must resolve
        self.pending: list[str] = [c.name for c in commands]
        self.running: set[str] = set()
        self.outcomes: dict[str, Outcome] = {}
        self.attempts: dict[str, int] = {c.name: 0 for c in commands}
        self.to_verify: list[str] = []  # creates whose outcome is unknown
        # deletes that failed when sent again: is the thing gone? (probe, the error)
        self.gone_probes: dict[str, tuple[LookupKey, PortalError]] = {}
        self.total = len(commands)
        # when each command was first refused by a limit, and when a command last
        # succeeded: a refused command gives up only after max_limit_wait with no progress
        # at all (not from the run's start: a run of hours under limits loses nothing)
        self.refused_since: dict[str, float] = {}
        self.progress_at = self.client.clock.monotonic()

    # ----------------------------------------------------------------- state
    def finish(
        self,
        name: str,
        ok: bool,
        result: Any = None,
        error: B24Error | None = None,
        found: bool = False,
        skipped: bool = False,
    ) -> None:
        command = self.by_name[name]
        self.outcomes[name] = Outcome(
            name, command.method, ok, result, error, self.attempts[name], found, skipped
        )
        if ok:
            self.progress_at = self.client.clock.monotonic()
        if self.ex.progress is not None:
            self.ex.progress(len(self.outcomes), self.total)

    def ready(self, name: str, batch: set[str]) -> bool | None:
        """True: can go now; False: wait; None: a dependency failed."""
        for dep in self.deps[name]:
            done = self.outcomes.get(dep)
            if done is not None:
                if not done.ok:
                    return None
            elif dep not in batch or dep in self.local[name]:
                return False
        return True

    def _materialise(self, value: Any, batch: set[str]) -> Any:
        """The value as sent: references to this batch as ``$result[...]``, the others
        resolved here (LookupError when what they point at is not in the result)."""
        if isinstance(value, Ref):
            if value.command in batch:
                return value.batch_text()
            return value.resolve(self.outcomes[value.command].result)
        if isinstance(value, Join):
            return "".join(str(self._materialise(p, set())) for p in value.parts)
        if isinstance(value, Mapping):
            return {
                self._materialise(k, set()): self._materialise(v, batch) for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self._materialise(v, batch) for v in value]
        return value

    def next_batch(self) -> list[str]:
        batch: list[str] = []
        members: set[str] = set()
        keep: list[str] = []
        for name in self.pending:
            if len(batch) >= self.ex.batch_size:
                keep.append(name)
                continue
            verdict = self.ready(name, members)
            if verdict is None:
                failed = next(
                    d for d in self.deps[name] if d in self.outcomes and not self.outcomes[d].ok
                )
                self.finish(
                    name,
                    False,
                    error=DependencyFailed(f"{name}: not run because {failed!r} failed"),
                )
            elif verdict:
                batch.append(name)
                members.add(name)
            else:
                keep.append(name)
        self.pending = keep
        return batch

    # ------------------------------------------------------------------ loop
    async def go(self) -> None:
        tasks: dict[asyncio.Task[None], list[str]] = {}
        while self.pending or tasks or self.to_verify:
            if self.to_verify and not tasks:
                await self.verify()
                continue
            while self.pending and len(tasks) < self.ex.max_in_flight:
                batch = self.next_batch()
                if not batch:
                    break
                self.running.update(batch)
                tasks[asyncio.create_task(self.send(batch))] = batch
            if not tasks:
                if self.pending and not self.to_verify:
                    # nothing can run and nothing is running: dependencies are stuck
                    for name in self.pending:
                        self.finish(name, False, error=DependencyFailed(f"{name}: unreachable"))
                    self.pending = []
                continue
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                batch = tasks.pop(task)
                self.running.difference_update(batch)
                task.result()

    def requeue(self, names: list[str]) -> None:
        order = self.order
        self.pending = sorted(set(self.pending) | set(names), key=order.__getitem__)

    def count_attempt(self, name: str, error: B24Error) -> bool:
        """Count an attempt; False (and a failed outcome) when attempts ran out."""
        self.attempts[name] += 1
        if self.attempts[name] >= self.ex.max_attempts:
            self.finish(name, False, error=error)
            return False
        return True

    def _params(self, name: str, members: set[str]) -> dict[str, Any] | None:
        """The command's parameters, or None (and its outcome) when a reference finds
        nothing: skipped when the command is optional, failed otherwise."""
        command = self.by_name[name]
        try:
            params: dict[str, Any] = self._materialise(command.params, members)
        except (LookupError, ValueError) as exc:  # IndexError is a LookupError
            if command.optional:
                self.finish(name, True, None, skipped=True)
            else:
                self.finish(
                    name,
                    False,
                    error=DependencyFailed(
                        f"{name}: {command.method} has nothing to act on ({exc})"
                    ),
                )
            return None
        return params

    async def send(self, batch: list[str]) -> None:
        members = set(batch)
        cmds: dict[str, tuple[str, dict[str, Any]]] = {}
        held: list[str] = []  # refers to a command of this batch that was not sent
        for name in batch:
            if self.deps[name] & members - cmds.keys():
                held.append(name)
                continue
            params = self._params(name, members)
            if params is not None:
                cmds[name] = (self.by_name[name].method, params)
        self.requeue(held)
        batch = [name for name in batch if name in cmds]
        if not batch:
            return
        safe = all(self.by_name[n].repeatable for n in batch)
        try:
            result = await self.client.batch(cmds, halt=True, safe=safe)
        except UNKNOWN as exc:
            self.unknown(batch, exc)
            return
        except B24Error as exc:
            for name in batch:
                self.attempts[name] += 1
                self.finish(name, False, error=exc)
            return
        not_run: list[str] = []
        for name in batch:
            if name in result.result:
                self.attempts[name] += 1
                self.finish(name, True, result.result[name])
            elif name in result.error:
                error = result.error[name]
                if isinstance(error, (OperationTimeLimit, QueryLimitExceeded)):
                    # refused by a limit: it did not run. Wait and send again; bounded by
                    # time (the client's max_limit_wait), not by attempts.
                    if isinstance(error, OperationTimeLimit):
                        self.client.tracker.blocked(self.by_name[name].method)
                    now = self.client.clock.monotonic()
                    since = max(self.refused_since.setdefault(name, now), self.progress_at)
                    if now - since > self.client.retry.max_limit_wait:
                        self.attempts[name] += 1
                        self.finish(name, False, error=error)
                    else:
                        not_run.append(name)
                elif self._look_whether_gone(name, error):
                    self.attempts[name] += 1
                else:
                    self.attempts[name] += 1
                    self.finish(name, False, error=error)
            else:
                not_run.append(name)  # after a failure with halt: never ran
        self.requeue(not_run)

    def _look_whether_gone(self, name: str, error: PortalError) -> bool:
        """A delete repeated after an unknown outcome fails: perhaps because the first
        attempt worked. Whether it did is decided by looking (verify()), not by the error's
        wording, which differs by method (docs/sandbox.md)."""
        command = self.by_name[name]
        if command.kind != "delete" or self.attempts[name] == 0 or command.gone is None:
            return False
        probe = LookupKey(
            command.gone.method,
            self._materialise(command.gone.params, set()),
            command.gone.extract,
            command.gone.label,
        )
        self.gone_probes[name] = (probe, error)
        self.to_verify.append(name)
        return True

    def unknown(self, batch: list[str], exc: B24Error) -> None:
        again: list[str] = []
        for name in batch:
            command = self.by_name[name]
            if not self.count_attempt(name, exc):
                continue
            if command.repeatable or command.kind == "delete":
                again.append(name)
            elif command.key is not None:
                self.to_verify.append(name)
            else:
                self.finish(
                    name,
                    False,
                    error=UnknownOutcome(
                        f"{name}: {command.method} may or may not have run ({exc}); it has no "
                        "idempotency key, so it is not repeated"
                    ),
                )
        self.requeue(again)

    def lookup_key(self, name: str) -> LookupKey:
        probe = self.gone_probes.get(name)
        if probe is not None:
            return probe[0]
        key = self.by_name[name].key
        assert key is not None
        return key

    async def verify(self) -> None:
        """Look up creates whose outcome is unknown; finish the found, requeue the rest.

        A command is looked up only when every command it refers to is known: a comment on
        a deal whose own outcome is being verified waits for that deal; if the deal turns
        out never to have been made, the comment cannot have been either, and both are
        sent again."""
        names = self._take_verifiable()
        if not names:
            return
        lookups: dict[str, tuple[str, dict[str, Any]]] = {}
        for name in names:
            key = self.lookup_key(name)
            # a key may name another command's result (a comment on a new deal): by now that
            # command has finished, so its value is known
            lookups[name] = (key.method, self._materialise(key.params, set()))
        try:
            result = await self.client.batch(lookups, safe=True)
        except B24Error as exc:
            for name in names:
                if self.count_attempt(name, exc):
                    self.to_verify.append(name)
            return
        self._settle_lookups(names, lookups, result)

    def _take_verifiable(self) -> list[str]:
        """Sorts the commands to verify by what they refer to: those whose dependencies all
        succeeded are ready (up to 50 are taken, to be looked up now), those with a failed
        dependency fail, those with a pending one are sent again, and the others wait."""
        ready: list[str] = []
        waiting: list[str] = []
        requeue: list[str] = []
        for name in self.to_verify:
            deps = self.deps[name]
            if all(d in self.outcomes and self.outcomes[d].ok for d in deps):
                ready.append(name)
            elif any(d in self.outcomes and not self.outcomes[d].ok for d in deps):
                self.finish(
                    name,
                    False,
                    error=DependencyFailed(
                        f"{name}: its outcome is unknown and a command it needed failed"
                    ),
                )
            elif any(d in self.pending for d in deps):
                requeue.append(name)
            else:
                waiting.append(name)
        self.requeue(requeue)
        names, self.to_verify = ready[:50], ready[50:] + waiting
        return names

    def _settle_lookups(
        self, names: list[str], lookups: dict[str, tuple[str, dict[str, Any]]], result: BatchResult
    ) -> None:
        """Finishes each looked-up command by what its lookup found; a failed lookup is
        looked again, a create not found is sent again."""
        again: list[str] = []
        for name in names:
            key = self.lookup_key(name)
            if name in result.error:
                if self.count_attempt(name, result.error[name]):
                    self.to_verify.append(name)  # the lookup itself failed: look again
                continue
            existing = key.extract(result.result.get(name), lookups[name][1])
            if name in self.gone_probes:
                _, error = self.gone_probes.pop(name)
                if existing is not None:  # gone: the unanswered attempt had deleted it
                    self.finish(name, True, True, found=True)
                else:  # still there: the delete really failed
                    self.finish(name, False, error=error)
            elif existing is not None:
                self.finish(name, True, existing, found=True)
            else:
                again.append(name)
        self.requeue(again)
