"""An SVG picture of a blueprint without any external renderer: one row of stage boxes
per pipeline, dashed arrows for links (parent trigger -> child start) and solid arrows for
the moves (child stage -> parent stage)."""

from __future__ import annotations

from html import escape

from b24kit.blueprint.model import Blueprint, Link, Pipeline

BOX_W, BOX_H, GAP, ROW, LEFT, TOP = 150, 44, 14, 96, 220, 40
FILL = {"process": "#E8F4FD", "success": "#E6F7D9", "failure": "#FDE7E6"}


def _rows(bp: Blueprint, linked_only: bool = False) -> list[Pipeline]:
    linked = {end for link in bp.links for end in (*link.parent.codes, link.child.pipeline)}
    rows = [p for p in bp.deal.pipelines if not linked_only or p.code in linked]
    return rows + [p for spa in bp.smart_processes for p in spa.pipelines]


def render_svg(bp: Blueprint, linked_only: bool = False) -> str:
    rows = _rows(bp, linked_only)
    centres: dict[tuple[str, str], tuple[float, float]] = {}
    parts: list[str] = []
    width = LEFT
    for r, pipeline in enumerate(rows):
        y = TOP + r * ROW
        parts.append(
            f'<text x="10" y="{y + BOX_H / 2 + 5}" font-weight="bold">'
            f"{escape(pipeline.name[:26])}</text>"
        )
        for s, stage in enumerate(pipeline.stages):
            x = LEFT + s * (BOX_W + GAP)
            width = max(width, x + BOX_W + 20)
            centres[(pipeline.code, stage.code)] = (x + BOX_W / 2, y + BOX_H / 2)
            stroke = stage.color or "#8A9BA8"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
                f'fill="{FILL[stage.semantics]}" stroke="{stroke}" stroke-width="2"/>'
            )
            parts.append(
                f'<text x="{x + BOX_W / 2}" y="{y + BOX_H / 2 + 5}" '
                f'text-anchor="middle">{escape(stage.name[:20])}</text>'
            )
    for link in bp.links:
        for code in link.parent.codes:  # each parent pipeline of the link
            parts += _link_arrows(centres, link, code)
    height = TOP + len(rows) * ROW
    defs = (
        '<defs><marker id="arrow" markerWidth="10" markerHeight="10" refX="9" refY="5" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#0B66C3"/></marker>'
        '<marker id="arrow2" markerWidth="10" markerHeight="10" refX="9" refY="5" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#2E7D32"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">{defs}' + "".join(parts) + "</svg>\n"
    )


def _link_arrows(
    centres: dict[tuple[str, str], tuple[float, float]], link: Link, parent: str
) -> list[str]:
    """The arrows of a link from one parent pipeline: the trigger creating the child, and
    each move of the child's stage back to the parent."""
    parts = []
    a = centres.get((parent, link.parent.stage))
    b = centres.get((link.child.pipeline, link.child.stage))
    if a and b:
        parts.append(
            f'<path d="M{a[0]},{a[1] + BOX_H / 2} L{b[0]},{b[1] - BOX_H / 2}" '
            'stroke="#0B66C3" stroke-width="2" stroke-dasharray="6 4" fill="none" '
            'marker-end="url(#arrow)"/>'
        )
        parts.append(
            f'<text x="{(a[0] + b[0]) / 2 + 6}" y="{(a[1] + b[1]) / 2}" '
            f'fill="#0B66C3">{escape(link.name)}: creates child</text>'
        )
    for move in link.moves:
        c = centres.get((link.child.pipeline, move.child_stage))
        d = centres.get((parent, move.parent_stage))
        if c and d:
            parts.append(
                f'<path d="M{c[0]},{c[1] - BOX_H / 2} L{d[0]},{d[1] + BOX_H / 2}" '
                'stroke="#2E7D32" stroke-width="2" fill="none" '
                'marker-end="url(#arrow2)"/>'
            )
            parts.append(
                f'<text x="{(c[0] + d[0]) / 2 + 6}" y="{(c[1] + d[1]) / 2 + 14}" '
                'fill="#2E7D32">moves parent</text>'
            )
    return parts
