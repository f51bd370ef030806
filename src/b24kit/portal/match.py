"""Which portal pipeline a wanted pipeline is: the one matcher plan, migrate and links use,
so that what plan manages is what the other jobs write into."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from b24kit.portal.ids import ORIGINATOR, EntityType
from b24kit.portal.snapshot import PipelineSnap


class Wanted(Protocol):
    """What the matcher needs of a wanted pipeline (a blueprint's Pipeline is one)."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def previous_names(self) -> list[str]: ...

    @property
    def default(self) -> bool: ...


def match_pipelines(
    wanted: Sequence[Wanted], portal: Sequence[PipelineSnap], etid: int
) -> dict[str, PipelineSnap | None]:
    """Each wanted pipeline (by code, in order) to its portal pipeline, or None when it is
    not there. A portal pipeline is taken once. Per wanted pipeline: the default pipeline
    when it is the default one; then (deals) b24kit's tag ``originId == code``; then its
    name or a previous name."""
    used: set[int] = set()
    out: dict[str, PipelineSnap | None] = {}
    for want in wanted:
        found = _match_one(want, [p for p in portal if p.id not in used], etid)
        if found is not None:
            used.add(found.id)
        out[want.code] = found
    return out


def _match_one(want: Wanted, candidates: list[PipelineSnap], etid: int) -> PipelineSnap | None:
    if want.default:
        found = next((p for p in candidates if p.is_default), None)
        if found is not None:
            return found
    if etid == EntityType.DEAL:
        found = next(
            (p for p in candidates if p.originator_id == ORIGINATOR and p.origin_id == want.code),
            None,
        )
        if found is not None:
            return found
    for name in (want.name, *want.previous_names):
        found = next((p for p in candidates if p.name == name), None)
        if found is not None:
            return found
    return None
