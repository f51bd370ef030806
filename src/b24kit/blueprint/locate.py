"""Find a blueprint's deal pipelines and stages on a portal snapshot."""

from __future__ import annotations

from b24kit.blueprint.model import Blueprint
from b24kit.portal.snapshot import PipelineSnap, Snapshot


def deal_pipeline(bp: Blueprint, snap: Snapshot, code: str) -> PipelineSnap:
    """The portal pipeline of blueprint pipeline ``code``: by b24kit's tag, then by name
    or a previous name. Raises ValueError when it is not (yet) on the portal."""
    blue = next((p for p in bp.deal.pipelines if p.code == code), None)
    if blue is None:
        raise ValueError(f"the blueprint has no deal pipeline {code!r}")
    for p in snap.deal_pipelines:
        if (p.originator_id == "b24kit" and p.origin_id == code) or p.name in (
                blue.name, *blue.previous_names):
            return p
    raise ValueError(f"pipeline {code!r} («{blue.name}») is not on the portal: apply the "
                     "blueprint first")


def stage_id(pipeline: PipelineSnap, code: str) -> str:
    """The STATUS_ID of stage ``code`` in ``pipeline`` (deal ids are cut to 21 characters)."""
    full = pipeline.prefix + code
    if pipeline.entity_type_id == 2:
        full = full[:21]
    if full not in {s.status_id for s in pipeline.stages}:
        raise ValueError(f"pipeline «{pipeline.name}» has no stage {code}")
    return full
