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
- Independent batches run concurrently: each goes as soon as the client's bucket has room
  for it (a fresh bucket's burst at once), and what it carries is decided only then.
- The burst is used: a portal runs a batch's commands one after another, so when the
  bucket admits more requests at once than full batches the pending commands fill, they
  are spread over those requests (2,000 writes from a fresh bucket: 49 batches of 41, not
  40 of 50, and each ends sooner), never fewer than ``SPREAD_FLOOR`` a batch. A batch the
  bucket refuses as a whole (it was full after all: another client spent it) ran nothing:
  its commands go back to the queue and leave again in full batches. After a refusal or
  a batch without an answer, the run's batches are full.
- When a batch's outcome is unknown (server error, dropped connection), reads and updates
  are sent again; creates with an idempotency key are looked up first and created only if
  absent; creates without a key are reported as ``UnknownOutcome``, never repeated. The
  keys of a failed batch are looked up together, one list command for all of them
  (b24kit.client.lookup), at the end of the next batch, beside new commands.
- Every command gets an ``Outcome``, in input order. A failure never hides the others.
"""

from __future__ import annotations

import asyncio
import heapq
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any

from b24kit.client.core import B24Client, BatchResult
from b24kit.client.errors import (
    UNKNOWN,
    B24Error,
    OperationTimeLimit,
    PortalError,
    QueryLimitExceeded,
    UnknownOutcome,
)
from b24kit.client.lookup import UNSURE, Asked, LookupKey, Member, plan

NAME = re.compile(r"^[A-Za-z0-9_]+$")
KINDS = ("read", "create", "update", "delete", "")


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
# Commands a batch carries at the least when a fresh bucket's burst spreads them: below
# this a request's own cost (a round trip, the portal's start-up) outweighs what a
# shorter batch saves.
SPREAD_FLOOR = 10


# the types of most values in a command's parameters: they hold no reference, and are
# told by one set lookup instead of a chain of isinstance checks (ABC ones among them)
_PLAIN = frozenset({str, int, float, bool, type(None)})
_NO_BATCH: frozenset[str] = frozenset()


def _refs(value: Any, local: bool = False) -> list[tuple[Ref, bool]]:
    """Every reference in a value, each with whether the executor must resolve it (a
    pick, a part of a Join, or a dictionary key)."""
    found: list[tuple[Ref, bool]] = []
    _collect_refs(value, local, found)
    return found


def _collect_refs(value: Any, local: bool, found: list[tuple[Ref, bool]]) -> None:
    if type(value) in _PLAIN:
        return
    if type(value) is dict:  # the commonest container, without the ABC check below; its
        for k, v in value.items():  # plain keys and values without a call each
            if type(k) not in _PLAIN:
                _collect_refs(k, True, found)
            if type(v) not in _PLAIN:
                _collect_refs(v, local, found)
    elif isinstance(value, Ref):
        found.append((value, local or not value.in_batch))
    elif isinstance(value, Join):
        for part in value.parts:
            _collect_refs(part, True, found)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _collect_refs(k, True, found)
            _collect_refs(v, local, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_refs(v, local, found)


class Executor:
    """``max_in_flight``: batches on the wire at once. Each goes only when the client's
    bucket has room for it, so from a fresh bucket the burst goes at once (the standard
    plan's 50: limits.md, "Request Rate Limits") and with the burst spent one batch
    follows another at the sustained rate."""

    def __init__(
        self,
        client: B24Client,
        *,
        batch_size: int = 50,
        max_in_flight: int = 50,
        max_attempts: int = 12,
        settle_delay: float = 30.0,
        progress: Progress | None = None,
        spread: bool = True,
    ) -> None:
        if not 1 <= batch_size <= 50:
            raise ValueError("batch_size must be between 1 and 50")
        self.client = client
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        # after a time-out (or a gateway's 502/504) the portal may still be running the
        # batch: its creates are looked up this many seconds later, not at once
        self.settle_delay = settle_delay
        self.progress = progress
        # spread pending commands over the requests the bucket admits now (module doc)
        self.spread = spread

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
    """One run: what is pending, on the wire, being looked up (``lookups``) and done.

    The loop sends a batch only once the client's bucket has room for it (``reserve``),
    and decides what goes in it only then: lookups that became due while it waited go
    first, new commands fill the rest. So lookups travel beside new writes, in the same
    batches, never after all of them."""

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
        self.order = {c.name: i for i, c in enumerate(commands)}
        self.deps = deps
        self.local = local  # dependencies whose results the executor itself must resolve
        self.pending: list[str] = [c.name for c in commands]  # in input order
        self.outcomes: dict[str, Outcome] = {}
        self.attempts: dict[str, int] = {c.name: 0 for c in commands}
        self.lookups = _Lookups(self)
        self.total = len(commands)
        # when each command was first refused by a limit, and when a command last
        # succeeded: a refused command gives up only after max_limit_wait with no progress
        # at all (not from the run's start: a run of hours under limits loses nothing)
        self.refused_since: dict[str, float] = {}
        self.progress_at = self.client.clock.monotonic()
        self.tasks: set[asyncio.Task[None]] = set()
        self.ticket: asyncio.Task[bool] | None = None  # waiting for room in the bucket
        self.go_ahead = False  # a batch may be sent now
        self.paid = False  # and the bucket's room for it is taken (reserved)
        self.idle = False  # nothing could be sent: wait for a batch on the wire to end
        # spread over the bucket's free room (batch_size_now) only while every batch has
        # had an answer and none was refused: a failing portal gets fewer, full requests
        self.calm = ex.spread

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

    def materialise(self, value: Any, batch: AbstractSet[str]) -> Any:
        """The value as sent: references to this batch as ``$result[...]``, the others
        resolved here (LookupError when what they point at is not in the result)."""
        if type(value) in _PLAIN:
            return value
        if type(value) is dict:  # the commonest container, as the Mapping case below does,
            out = {}  # without the ABC check, and plain keys and values without a call each
            for k, v in value.items():
                key = k if type(k) in _PLAIN else self.materialise(k, _NO_BATCH)
                out[key] = v if type(v) in _PLAIN else self.materialise(v, batch)
            return out
        if isinstance(value, Ref):
            if value.command in batch:
                return value.batch_text()
            return value.resolve(self.outcomes[value.command].result)
        if isinstance(value, Join):
            return "".join(str(self.materialise(p, _NO_BATCH)) for p in value.parts)
        if isinstance(value, Mapping):
            return {
                self.materialise(k, _NO_BATCH): self.materialise(v, batch) for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.materialise(v, batch) for v in value]
        return value

    def next_batch(self, room: int) -> list[str]:
        """Up to ``room`` pending commands that can go now, in input order."""
        batch: list[str] = []
        members: set[str] = set()
        keep: list[str] = []
        for i, name in enumerate(self.pending):
            if len(batch) >= room:
                keep.extend(self.pending[i:])
                break
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

    def requeue(self, names: list[str]) -> None:
        if names:
            key = self.order.__getitem__
            self.pending = list(heapq.merge(self.pending, sorted(names, key=key), key=key))

    def count_attempt(self, name: str, error: B24Error) -> bool:
        """Count an attempt; False (and a failed outcome) when attempts ran out."""
        self.attempts[name] += 1
        if self.attempts[name] >= self.ex.max_attempts:
            self.finish(name, False, error=error)
            return False
        return True

    def sent_again(self, name: str, error: PortalError, method: str | None = None) -> bool:
        """``name`` (or its lookup, a call of ``method``) was refused by a limit: it did
        not run. True: it is to be sent again (waiting for the limit is bounded by time,
        the client's max_limit_wait, not by attempts); False: it has waited that long, and
        its outcome is the failure."""
        if self.keeps_waiting(name, method or self.by_name[name].method, error):
            return True
        self.attempts[name] += 1
        self.finish(name, False, error=error)
        return False

    def keeps_waiting(self, name: str, method: str, error: PortalError) -> bool:
        """``name`` (or its lookup, a call of ``method``) was refused by a limit: it did
        not run. True: send it again (the client waits for the limit); False once it has
        waited the client's max_limit_wait with no progress at all."""
        if isinstance(error, OperationTimeLimit):
            self.client.tracker.blocked(method)
        now = self.client.clock.monotonic()
        since = max(self.refused_since.setdefault(name, now), self.progress_at)
        return now - since <= self.client.retry.max_limit_wait

    # ------------------------------------------------------------------ loop
    def has_work(self) -> bool:
        return bool(self.pending or self.lookups.due)

    async def go(self) -> None:
        try:
            while True:
                self.launch()
                if not self.tasks and not self.has_work():
                    return
                waiting: set[asyncio.Task[Any]] = set(self.tasks)
                if self.ticket is not None:
                    waiting.add(self.ticket)
                if not waiting:
                    self.unreachable()  # nothing can run and nothing is running
                    continue
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is self.ticket:
                        self.ticket = None
                        self.go_ahead, self.paid = True, task.result()
                    else:
                        self.tasks.discard(task)
                        self.idle = False
                        task.result()
        finally:
            self._give_back()

    def launch(self) -> None:
        """Send batches while the bucket has room (and fewer than max_in_flight are on
        the wire); when it has none, wait for it (``ticket``)."""
        while not self.idle and self.has_work() and len(self.tasks) < self.ex.max_in_flight:
            if not self.go_ahead:
                if self.ticket is not None:
                    return
                if not self.client.bucket.try_reserve():
                    self.ticket = asyncio.create_task(self.wait_for_room())
                    return
                self.go_ahead = self.paid = True
            size = self.batch_size_now()
            asked = self.lookups.take(size)
            batch = self.next_batch(size - len(asked))
            if not batch and not asked:
                self.idle = True  # keep the room for when a batch on the wire ends
                return
            self.go_ahead = self.paid = False
            self.tasks.add(asyncio.create_task(self.send(batch, asked)))

    def batch_size_now(self) -> int:
        """Commands the next batch carries (its room in the bucket already taken): a full
        batch, or, when the bucket admits more requests now than the pending commands
        fill full batches, the pending commands spread evenly over those requests."""
        full = self.ex.batch_size
        if not self.calm:
            return full
        requests = min(self.client.bucket.free() + 1, self.ex.max_in_flight - len(self.tasks))
        waiting = len(self.pending) + len(self.lookups.due)
        each = -(-waiting // max(1, requests))
        return max(1, min(full, max(SPREAD_FLOOR, each)))

    async def wait_for_room(self) -> bool:
        """Reserve room in the bucket for the next batch; False when the client's deadline
        comes first (the batch then goes to the client, which says the deadline passed)."""
        deadline = self.client.deadline
        left = None if deadline is None else deadline - self.client.clock.monotonic()
        try:
            async with asyncio.timeout(left):
                await self.client.bucket.reserve()
        except TimeoutError:
            return False
        return True

    def _give_back(self) -> None:
        ticket, self.ticket = self.ticket, None
        if ticket is not None and not ticket.done():
            ticket.cancel()
        elif ticket is not None and not ticket.cancelled() and ticket.exception() is None:
            self.paid = self.paid or ticket.result()
        if self.paid:
            self.client.bucket.release()
            self.paid = False

    def unreachable(self) -> None:
        """Nothing is on the wire and nothing can be sent: what is left waits for
        dependencies that will never finish."""
        for name in [*self.pending, *self.lookups.due]:
            self.finish(name, False, error=DependencyFailed(f"{name}: unreachable"))
        self.pending = []
        self.lookups.due = []

    # ------------------------------------------------------------------ sending
    def _params(self, name: str, members: set[str]) -> dict[str, Any] | None:
        """The command's parameters, or None (and its outcome) when a reference finds
        nothing: skipped when the command is optional, failed otherwise."""
        command = self.by_name[name]
        try:
            params: dict[str, Any] = self.materialise(command.params, members)
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

    def _commands(self, batch: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
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
        return cmds

    async def send(self, batch: list[str], asked: dict[str, Asked]) -> None:
        """One batch: the lookups, then the commands. Lookups first: a command that fails
        halts the batch, and lookups behind it would wait for a batch where nothing fails
        (their creates spending attempts meanwhile); a lookup is a read that nothing in
        the batch refers to, and a command it halts is simply sent again."""
        commands = self._commands(batch)
        batch = [name for name in batch if name in commands]
        cmds = {key: (a.method, a.params) for key, a in asked.items()}
        cmds.update(commands)
        if not cmds:
            return
        safe = all(self.by_name[n].repeatable for n in batch)
        try:
            result = await self.client.batch(cmds, halt=True, safe=safe, wait_if_refused=False)
        except QueryLimitExceeded as exc:
            self.refused(batch, asked, exc)
            return
        except UNKNOWN as exc:
            self.unknown(batch, exc)
            self.lookups.failed(asked, exc)
            return
        except B24Error as exc:
            for name in batch:
                self.attempts[name] += 1
                self.finish(name, False, error=exc)
            self.lookups.failed(asked, exc)
            return
        self.settle(batch, result)
        self.lookups.settle(asked, result)

    def settle(self, batch: list[str], result: BatchResult) -> None:
        not_run: list[str] = []
        for name in batch:
            if name in result.result:
                self.attempts[name] += 1
                self.finish(name, True, result.result[name])
            elif name in result.error:
                error = result.error[name]
                if isinstance(error, (OperationTimeLimit, QueryLimitExceeded)):
                    if self.sent_again(name, error):
                        not_run.append(name)
                elif self.lookups.whether_gone(name, error):
                    self.attempts[name] += 1
                else:
                    self.attempts[name] += 1
                    self.finish(name, False, error=error)
            else:
                not_run.append(name)  # after a failure with halt: never ran
        self.requeue(not_run)

    def refused(self, batch: list[str], asked: dict[str, Asked], exc: PortalError) -> None:
        """The bucket refused the whole request: nothing in it ran. Its commands go back
        to the queue, to leave in batches sized by the bucket as it now is (full: whole
        batches at the sustained rate), within the wait for a limit (``keeps_waiting``)."""
        self.calm = False
        self.requeue([name for name in batch if self.sent_again(name, exc)])
        for a in asked.values():
            self.lookups.refused(a, exc)

    def unknown(self, batch: list[str], exc: B24Error) -> None:
        self.calm = False
        again: list[str] = []
        held: list[str] = []  # creates to look up by their keys
        for name in batch:
            command = self.by_name[name]
            if not self.count_attempt(name, exc):
                continue
            if command.kind == "delete" and command.gone is not None:
                # look before sending it again: a delete that ran fails when repeated
                # ("not found"), halting the batch it rides in
                self.lookups.gone_probes[name] = (command.gone, None)
                held.append(name)
            elif command.repeatable or command.kind == "delete":
                again.append(name)
            elif command.key is not None:
                held.append(name)
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
        if held and getattr(exc, "may_still_run", False) and self.ex.settle_delay > 0:
            # we stopped waiting, the portal may not have: a lookup now could miss rows
            # it is still writing, and the create sent again would make them twice
            self.tasks.add(asyncio.create_task(self._look_later(held)))
        else:
            self.lookups.due.extend(held)

    async def _look_later(self, names: list[str]) -> None:
        """Put the lookups due after ``settle_delay``, or at the client's deadline if that
        comes first (the lookup then meets the deadline: the outcome stays unknown)."""
        delay = self.ex.settle_delay
        deadline = self.client.deadline
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - self.client.clock.monotonic()))
        await self.client.clock.sleep(delay)
        self.lookups.due.extend(names)


class _Lookups:
    """Commands whose outcome is unknown (``due``), and the lookups that settle them: one
    lookup command for the keys of one shape (b24kit.client.lookup), sent in the next
    batch beside new commands. A found create is done; one not found is sent again."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.due: list[str] = []  # to look up
        # deletes whose outcome is unknown (no error) or that failed when sent again: is
        # the thing gone? (probe, the error)
        self.gone_probes: dict[str, tuple[LookupKey, PortalError | None]] = {}
        self.alone: set[str] = set()  # a merged answer could not settle them: ask singly
        self.made = 0  # lookup commands made, for their names

    def whether_gone(self, name: str, error: PortalError) -> bool:
        """A delete repeated after an unknown outcome fails: perhaps because the first
        attempt worked. Whether it did is decided by looking, not by the error's wording,
        which differs by method (docs/sandbox.md)."""
        command = self.run.by_name[name]
        if command.kind != "delete" or self.run.attempts[name] == 0 or command.gone is None:
            return False
        self.gone_probes[name] = (command.gone, error)
        self.due.append(name)
        return True

    def key(self, name: str) -> LookupKey:
        probe = self.gone_probes.get(name)
        if probe is not None:
            return probe[0]
        key = self.run.by_name[name].key
        assert key is not None
        return key

    def take(self, room: int) -> dict[str, Asked]:
        """Up to ``room`` lookup commands to send now, by the name each goes under."""
        if not self.due or room <= 0:
            return {}
        members = []
        for name in self._verifiable():
            key = self.key(name)
            # a key may name another command's result (a comment on a new deal): by now
            # that command has finished, so its value is known
            params = self.run.materialise(key.params, set())
            members.append(Member(name, key, params, gone=name in self.gone_probes))
        asked = plan(members, self.alone)
        for later in asked[room:]:
            self.due.extend(m.name for m in later.members)
        return {self._name(): a for a in asked[:room]}

    def _name(self) -> str:
        self.made += 1
        name = f"lookup{self.made}"
        while name in self.run.by_name:
            name = "_" + name
        return name

    def _verifiable(self) -> list[str]:
        """Sorts the commands to look up by what they refer to: those whose dependencies
        all succeeded are ready (returned), those with a failed dependency fail, those
        with one that was never made are sent again (they cannot have been made either),
        and the others wait (a comment on a deal that is itself being looked up)."""
        run = self.run
        ready: list[str] = []
        waiting: list[str] = []
        again: list[str] = []
        unmade: set[str] | None = None
        for name in self.due:
            deps = run.deps[name]
            if all(d in run.outcomes and run.outcomes[d].ok for d in deps):
                ready.append(name)
                continue
            if any(d in run.outcomes and not run.outcomes[d].ok for d in deps):
                run.finish(
                    name,
                    False,
                    error=DependencyFailed(
                        f"{name}: its outcome is unknown and a command it needed failed"
                    ),
                )
                continue
            if unmade is None:  # pending creates: not made yet (updates may have run)
                unmade = {
                    p
                    for p in run.pending
                    if not run.by_name[p].repeatable and run.by_name[p].kind != "delete"
                }
            (again if deps & unmade else waiting).append(name)
        run.requeue(again)
        self.due = waiting
        return ready

    def failed(self, asked: dict[str, Asked], exc: B24Error) -> None:
        """The batch carrying these lookups failed as a whole: ask again."""
        for a in asked.values():
            for m in a.members:
                if self.run.count_attempt(m.name, exc):
                    self.due.append(m.name)

    def settle(self, asked: dict[str, Asked], result: BatchResult) -> None:
        """Finishes each looked-up command by what its lookup found; a failed lookup is
        asked again, a create not found is sent again."""
        again: list[str] = []
        for label, a in asked.items():
            if label in result.error:
                self.refused(a, result.error[label])
            elif label not in result.result:
                self.due.extend(m.name for m in a.members)  # halted: never ran
            else:
                found = a.answers(result.result[label], complete=label not in result.next)
                for name, got in found.items():
                    if self._settle_one(name, got, a.merged):
                        again.append(name)
        self.run.requeue(again)

    def refused(self, a: Asked, error: PortalError) -> None:
        """The lookup failed: asked again, within the command's attempts, or, refused by
        a limit, within the wait for it (as a refused command)."""
        limited = isinstance(error, (OperationTimeLimit, QueryLimitExceeded))
        for m in a.members:
            if limited:
                again = self.run.sent_again(m.name, error, a.method)
            else:
                again = self.run.count_attempt(m.name, error)
            if again:
                self.due.append(m.name)

    def _settle_one(self, name: str, got: Any, merged: bool) -> bool:
        """Settles one command by its lookup; True when it is to be sent again."""
        if got is UNSURE:
            if merged:
                self.alone.add(name)
            unsure = UnknownOutcome(f"{name}: its lookup's answer did not settle it")
            if self.run.count_attempt(name, unsure):
                self.due.append(name)
            return False
        if name in self.gone_probes:
            _, error = self.gone_probes.pop(name)
            if got is not None:  # gone: the unanswered attempt had deleted it
                self.run.finish(name, True, True, found=True)
            elif error is None:  # still there after an unknown outcome: send it again
                return True
            else:  # still there: the delete really failed
                self.run.finish(name, False, error=error)
            return False
        if got is not None:
            self.run.finish(name, True, got, found=True)
            return False
        return True
