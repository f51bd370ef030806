"""A Mermaid picture of a blueprint: pipelines with their stages, and the links between
them (the map implementers used to draw by hand)."""

from __future__ import annotations

from b24kit.blueprint.model import Blueprint, Pipeline

SHAPE = {"process": ("[", "]"), "success": ("([", "])"), "failure": ("[/", "/]")}


def _node(pipeline: Pipeline, code: str) -> str:
    return f"{pipeline.code}__{code}"


def mermaid(bp: Blueprint, linked_only: bool = False) -> str:
    """Every pipeline; ``linked_only``: only the deal pipelines the links join (and the
    smart processes)."""
    lines = ["flowchart LR"]
    pipelines: dict[str, Pipeline] = {}
    owners = [("deal", p) for p in bp.deal.pipelines] + [
        (spa.title, p) for spa in bp.smart_processes for p in spa.pipelines
    ]
    linked = {end for link in bp.links for end in (*link.parent.codes, link.child.pipeline)}
    for owner, p in owners:
        pipelines[p.code] = p
        if linked_only and p.code not in linked and owner == "deal":
            continue
        title = p.name.replace('"', "'")
        lines.append(f'  subgraph {p.code}["{title}"]')
        lines.append("    direction LR")
        previous = None
        for stage in p.stages:
            left, right = SHAPE[stage.semantics]
            name = stage.name.replace('"', "'")
            lines.append(f'    {_node(p, stage.code)}{left}"{name}"{right}')
            if previous is not None and stage.semantics == "process":
                lines.append(f"    {previous} --> {_node(p, stage.code)}")
            if stage.semantics == "process":
                previous = _node(p, stage.code)
        lines.append("  end")
    for link in bp.links:
        child = pipelines.get(link.child.pipeline)
        for code in link.parent.codes:  # each parent pipeline of the link
            parent = pipelines.get(code)
            if parent is None or child is None:
                continue
            lines.append(
                f'  {_node(parent, link.parent.stage)} -. "{link.name}: creates child" .-> '
                f"{_node(child, link.child.stage)}"
            )
            for move in link.moves:
                lines.append(
                    f'  {_node(child, move.child_stage)} == "moves parent" ==> '
                    f"{_node(parent, move.parent_stage)}"
                )
    return "\n".join(lines) + "\n"
