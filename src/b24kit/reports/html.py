"""The management report as one self-contained HTML page (issue 14, ``--html FILE``).

Everything the page needs is inside it: plotly.js (inlined once, from the plotly package)
and the page's own style. It loads nothing from the network, and its Content-Security-Policy
forbids it to, so it opens the same on a laptop on a train and behind a strict proxy.

The charts are plotly figures built from the report's tables, looked up by table name
(projects, sources, contractors, estimates) and by column, with a few accepted spellings
per column (``CHARTS`` below). A chart whose table is not in the report is not drawn; one
whose table lacks a column it needs, or has no usable rows, is left out with a note saying
which. Names from the portal (sources, contractors, users, titles) are escaped everywhere:
in the tables by ``html.escape``, in the charts as entities, which plotly shows as text.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from b24kit.reports.model import ReportTable

# ``default-src 'none'``: no request of any kind (scripts, styles, images, fonts, fetches)
# leaves the page; the inline script and styles it carries are all it runs.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0; padding: 24px 32px; color: #1f2933; background: #f7f8fa; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0 0 20px; color: #52606d; }
h2 { font-size: 18px; margin: 28px 0 8px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.chart { background: #fff; border: 1px solid #e4e7eb; border-radius: 6px; padding: 8px; }
.notes { color: #7b8794; font-size: 13px; margin: 8px 0 0; padding-left: 18px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; margin-bottom: 8px; }
th, td { border: 1px solid #e4e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.table-wrap { max-height: 560px; overflow: auto; display: inline-block; max-width: 100%; }
p.empty { color: #52606d; font-style: italic; }
"""


def key(name: str) -> str:
    """A column name as it is compared: lower case, words joined by ``_``."""
    return re.sub(r"[^0-9a-zа-яё%]+", "_", name.strip().lower()).strip("_")


def number(value: Any) -> float | None:
    """A cell as a number for a chart: ints, floats and numeric strings; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        parsed = float(str(value).replace("\u00a0", "").replace(" ", "").replace(",", "."))
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None


def shown(value: float | None) -> str:
    """A figure as a bar's caption: 12, 0.18, 4.5 (not 12.0, 0.180000001)."""
    if value is None:
        return ""
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def label(value: Any) -> str:
    """A name as a chart shows it: plotly reads labels as its own small markup (``<b>``,
    ``<a href>``), so a name is passed as entities and shown as the text it is."""
    return html.escape("" if value is None else str(value), quote=False)


def axis_labels(values: list[Any], width: int = 28) -> list[str]:
    """Names for a category axis: escaped, cut to ``width`` characters (a long name would
    squeeze the plot to nothing), kept apart when cutting makes two the same."""
    out: list[str] = []
    for value in values:
        text = "" if value is None else str(value)
        text = text if len(text) <= width else text[: width - 1].rstrip() + "…"
        base, n = text, 1
        while label(text) in out:
            n += 1
            text = f"{base} ({n})"
        out.append(label(text))
    return out


@dataclass(frozen=True)
class Chart:
    """One chart: the table it reads, the columns it needs (each a list of accepted
    spellings, the first is the name the report is expected to use) and the columns it
    shows when they are there."""

    id: str
    title: str
    table: str
    needs: dict[str, tuple[str, ...]]
    build: Callable[[dict[str, str], list[dict[str, Any]]], tuple[Any, int]]
    optional: dict[str, tuple[str, ...]] | None = None


class Columns:
    """The columns of one table, found by any accepted spelling."""

    def __init__(self, table: ReportTable) -> None:
        self.by_key = {key(c): c for c in table.columns}

    def find(self, spellings: tuple[str, ...]) -> str | None:
        for spelling in spellings:
            if key(spelling) in self.by_key:
                return self.by_key[key(spelling)]
        return None


def _layout(fig: Any, title: str, **extra: Any) -> Any:
    fig.update_layout(
        title={"text": html.escape(title, quote=False), "x": 0.01},
        template="plotly_white",
        height=380,
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
        legend={"orientation": "h", "y": -0.18},
        **extra,
    )
    return fig


def _rows_with(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    """The rows where every one of ``columns`` holds a number (the rest cannot be drawn)."""
    return [r for r in rows if all(number(r.get(c)) is not None for c in columns)]


def names(rows: list[dict[str, Any]], column: str) -> list[str]:
    """The full names, escaped, for hover text (the axis shows them cut)."""
    return [label(r.get(column)) for r in rows]


def funnel_by_source(col: dict[str, str], rows: list[dict[str, Any]]) -> tuple[Any, int]:
    import plotly.graph_objects as go

    rows = _rows_with(rows, col["projects"], col["won"])
    fig = go.Figure()
    for column, colour in (("projects", "#9fb3c8"), ("won", "#2f855a")):
        values = [number(r[col[column]]) for r in rows]
        fig.add_trace(
            go.Bar(
                name=column,
                x=axis_labels([r.get(col["source"]) for r in rows]),
                y=values,
                marker_color=colour,
                text=[shown(v) for v in values],
                textposition="outside",
                customdata=names(rows, col["source"]),
                hovertemplate=f"%{{customdata}}<br>{column}: %{{y}}<extra></extra>",
            )
        )
    return _layout(fig, "Funnel by source: projects → won", barmode="group"), len(rows) * 2


def estimate_times(col: dict[str, str], rows: list[dict[str, Any]]) -> tuple[Any, int]:
    import plotly.graph_objects as go

    rows = _rows_with(rows, col["median_hours"], col["p90_hours"])
    who = names(rows, col["logistician"])  # repeats: one row per month
    # a two-level axis, logistician then month, when the table is per month
    x = [who, names(rows, col["month"])] if "month" in col else who
    fig = go.Figure()
    for column, name, colour in (
        ("median_hours", "median hours", "#3182ce"),
        ("p90_hours", "90th percentile hours", "#dd6b20"),
    ):
        fig.add_trace(
            go.Bar(name=name, x=x, y=[number(r[col[column]]) for r in rows], marker_color=colour)
        )
    fig = _layout(fig, "Time to give an estimate, per logistician and month", barmode="group")
    fig.update_yaxes(title_text="hours")
    return fig, len(rows) * 2


def growth_by_source(col: dict[str, str], rows: list[dict[str, Any]]) -> tuple[Any, int]:
    import plotly.graph_objects as go

    rows = _rows_with(rows, col["avg_growth"])
    values = [number(r[col["avg_growth"]]) or 0.0 for r in rows]
    fig = go.Figure(
        go.Bar(
            x=axis_labels([r.get(col["source"]) for r in rows]),
            y=values,
            marker_color=["#2f855a" if v >= 0 else "#c53030" for v in values],
            text=[shown(v) for v in values],
            textposition="outside",
            customdata=names(rows, col["source"]),
            hovertemplate="%{customdata}: %{y}<extra></extra>",
        )
    )
    fig = _layout(fig, "Cheque growth from the quote, average per source")
    fig.update_yaxes(title_text=label(col["avg_growth"]))
    return fig, len(rows)


def quote_and_final(col: dict[str, str], rows: list[dict[str, Any]]) -> tuple[Any, int]:
    import plotly.graph_objects as go

    rows = _rows_with(rows, col["quote"], col["final_amount"])
    quotes = [number(r[col["quote"]]) or 0.0 for r in rows]
    finals = [number(r[col["final_amount"]]) or 0.0 for r in rows]
    fig = go.Figure(
        go.Scatter(
            x=quotes,
            y=finals,
            mode="markers",
            text=names(rows, col["title"]) if "title" in col else None,
            name="projects",
            marker={"size": 9, "color": "#3182ce", "opacity": 0.8},
            hovertemplate="%{text}<br>quote %{x:,.0f}<br>final %{y:,.0f}<extra></extra>",
        )
    )
    top = max(quotes + finals, default=1.0)
    fig.add_shape(type="line", x0=0, y0=0, x1=top, y1=top, line={"color": "#9aa5b1", "dash": "dot"})
    fig = _layout(fig, "Cheque growth per project (above the dotted line: it grew)")
    fig.update_xaxes(title_text="quote")
    fig.update_yaxes(title_text="final amount")
    return fig, len(rows)


def contractor_ratings(col: dict[str, str], rows: list[dict[str, Any]]) -> tuple[Any, int]:
    import plotly.graph_objects as go

    rows = sorted(
        _rows_with(rows, col["avg_rating"]), key=lambda r: number(r[col["avg_rating"]]) or 0.0
    )
    ratings = [number(r[col["avg_rating"]]) for r in rows]
    hover = [
        "<br>".join(
            [label(r.get(col["contractor"]))]
            + [
                f"{label(col[k])}: {label(r.get(col[k]))}"
                for k in ("estimates", "won", "unpaid")
                if k in col
            ]
        )
        for r in rows
    ]
    fig = go.Figure(
        go.Bar(
            y=axis_labels([r.get(col["contractor"]) for r in rows]),
            x=ratings,
            orientation="h",
            marker_color="#805ad5",
            text=[shown(v) for v in ratings],
            textposition="outside",
            customdata=hover,
            hovertemplate="%{customdata}<br>rating: %{x}<extra></extra>",
        )
    )
    fig = _layout(fig, "Contractor ratings (average)")
    fig.update_layout(height=max(380, 120 + 28 * len(rows)))
    fig.update_xaxes(title_text="average rating")
    return fig, len(rows)


def piles(col: dict[str, str], rows: list[dict[str, Any]]) -> tuple[Any, int]:
    import plotly.graph_objects as go

    rows = _rows_with(rows, col["open"])
    x = [names(rows, col["pipeline"]), names(rows, col["stage"])]
    fig = go.Figure()
    traces = [("open", "open", "#9fb3c8")]
    if "overdue" in col:
        rows = _rows_with(rows, col["overdue"])
        x = [names(rows, col["pipeline"]), names(rows, col["stage"])]
        traces.append(("overdue", "overdue", "#c53030"))
    for role, name, colour in traces:
        fig.add_trace(
            go.Bar(name=name, x=x, y=[number(r[col[role]]) for r in rows], marker_color=colour)
        )
    fig = _layout(fig, "Where work piles up: open items per pipeline and stage", barmode="group")
    return fig, len(rows) * len(traces)


SOURCE = ("source", "first_contact_source", "source_name")
CHARTS = [
    Chart(
        "funnel-by-source",
        "Funnel by source",
        "sources",
        {"source": SOURCE, "projects": ("projects", "project_count"), "won": ("won",)},
        funnel_by_source,
    ),
    Chart(
        "estimate-times",
        "Estimate time distribution",
        "estimates",
        {
            "logistician": ("logistician_name", "logistician", "assignee_name", "user"),
            "median_hours": ("median_hours", "median_h"),
            "p90_hours": ("p90_hours", "p90_h"),
        },
        estimate_times,
        optional={"month": ("month",)},
    ),
    Chart(
        "growth-by-source",
        "Cheque growth by source",
        "sources",
        {
            "source": SOURCE,
            "avg_growth": ("avg_growth", "average_growth", "avg_cheque_growth", "growth"),
        },
        growth_by_source,
    ),
    Chart(
        "growth-per-project",
        "Cheque growth per project",
        "projects",
        {
            "quote": ("quote", "quoted_price", "estimate_price", "price_given"),
            "final_amount": ("final_amount", "final", "amount", "opportunity"),
        },
        quote_and_final,
        optional={"title": ("title", "project", "name")},
    ),
    Chart(
        "contractor-ratings",
        "Contractor ratings",
        "contractors",
        {"contractor": ("contractor", "contractor_name", "name"), "avg_rating": ("avg_rating",)},
        contractor_ratings,
        optional={"estimates": ("estimates",), "won": ("won",), "unpaid": ("unpaid",)},
    ),
    Chart(
        "departments",
        "Where work piles up",
        "departments",
        {"pipeline": ("pipeline", "department"), "stage": ("stage",), "open": ("open",)},
        piles,
        optional={"overdue": ("overdue",)},
    ),
]


@dataclass
class Drawn:
    """A chart as it went onto the page: its figure's HTML, or why it was left out."""

    chart: Chart
    html: str = ""
    marks: int = 0  # bars or points drawn
    note: str = ""


def draw(chart: Chart, table: ReportTable) -> Drawn:
    import plotly.io as pio

    columns = Columns(table)
    found = {role: columns.find(spellings) for role, spellings in chart.needs.items()}
    missing = [spellings[0] for role, spellings in chart.needs.items() if found[role] is None]
    if missing:
        need = ", ".join(missing)
        return Drawn(chart, note=f"{chart.title}: left out, the {table.name} table has no {need}")
    col = {role: name for role, name in found.items() if name is not None}
    for role, spellings in (chart.optional or {}).items():
        name = columns.find(spellings)
        if name is not None:
            col[role] = name
    fig, marks = chart.build(col, list(table.rows))
    if not marks:
        why = table.empty or f"no {table.name} row has the figures it needs"
        return Drawn(chart, note=f"{chart.title}: nothing to draw ({why})")
    div = pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=f"chart-{chart.id}",
        config={"displaylogo": False, "responsive": True},
    )
    return Drawn(chart, html=div, marks=marks)


def draw_all(tables: list[ReportTable]) -> list[Drawn]:
    """The charts for these tables: those whose table is in the report, drawn or noted."""
    by_name = {t.name: t for t in tables}
    return [draw(chart, by_name[chart.table]) for chart in CHARTS if chart.table in by_name]


def cell(value: Any) -> tuple[str, bool]:
    """A table cell's text (escaped) and whether it is a number (aligned right)."""
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f"), True
    if isinstance(value, float):
        if not math.isfinite(value):
            return "", True
        text = f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
        return text.replace(",", "\u202f"), True
    return html.escape(str(value)), False


PAGE_ROWS = 1000  # rows of a table the page shows (the charts use every row)


def render_table(table: ReportTable) -> str:
    title = f'<h2 id="table-{html.escape(table.name)}">{html.escape(table.title)}</h2>'
    if not table.rows:
        why = table.empty or "No rows."
        return f'{title}\n<p class="empty">{html.escape(why)}</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    lines = []
    for n, row in enumerate(table.rows):
        if n == PAGE_ROWS:  # a page a manager opens: the rest is in -f xlsx|csv
            more = len(table.rows) - PAGE_ROWS
            lines.append(
                f'<tr><td colspan="{len(table.columns)}">… {more} more rows: '
                "<code>-f xlsx -o FILE</code> has every one</td></tr>"
            )
            break
        cells = []
        for column in table.columns:
            text, numeric = cell(row.get(column))
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    body = "\n".join(lines)
    return (
        f'{title}\n<div class="table-wrap"><table data-table="{html.escape(table.name)}">'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>"
    )


def render_html(tables: list[ReportTable], title: str, portal: str, generated: str) -> str:
    """One self-contained page: a header (title, portal, when), the charts, the tables."""
    from plotly.offline import get_plotlyjs

    drawn = draw_all(tables)
    charts = "\n".join(f'<div class="chart">{d.html}</div>' for d in drawn if d.html)
    notes = "".join(f"<li>{html.escape(d.note)}</li>" for d in drawn if d.note)
    sections = []
    if charts or notes:
        sections.append(f'<section id="charts">\n<div class="charts">\n{charts}\n</div>')
        if notes:
            sections.append(f'<ul class="notes" id="chart-notes">{notes}</ul>')
        sections.append("</section>")
    sections.append('<section id="tables">')
    sections.extend(render_table(t) for t in tables)
    sections.append("</section>")
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="b24kit">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
<script>{get_plotlyjs()}</script>
</head>
<body>
<header><h1>{html.escape(title)}</h1>
<p>{html.escape(portal)} · {html.escape(generated)}</p></header>
{body}
</body>
</html>
"""
