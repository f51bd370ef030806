"""Find a blueprint's deal pipelines and stages on a portal snapshot, with the same
matcher plan uses (portal.match): what plan manages is what migrate and links write into."""

from __future__ import annotations

from b24kit.blueprint.model import Blueprint
from b24kit.errors import InputError
from b24kit.portal.ids import EntityType, status_id
from b24kit.portal.match import match_pipelines
from b24kit.portal.snapshot import PipelineSnap, Snapshot


def deal_pipeline(bp: Blueprint, snap: Snapshot, code: str) -> PipelineSnap:
    """The portal pipeline of blueprint pipeline ``code``. Raises ValueError when it is
    not (yet) on the portal."""
    blue = next((p for p in bp.deal.pipelines if p.code == code), None)
    if blue is None:
        raise InputError(f"the blueprint has no deal pipeline {code!r}")
    found = match_pipelines(bp.deal.pipelines, snap.deal_pipelines, EntityType.DEAL).get(code)
    if found is None:
        raise InputError(
            f"pipeline {code!r} («{blue.name}») is not on the portal: apply the blueprint first"
        )
    return found


def stage_id(pipeline: PipelineSnap, code: str) -> str:
    """The STATUS_ID of stage ``code`` in ``pipeline``, as the portal keeps it."""
    full = status_id(pipeline.prefix, code)
    if full not in {s.status_id for s in pipeline.stages}:
        raise InputError(f"pipeline «{pipeline.name}» has no stage {code}")
    return full
