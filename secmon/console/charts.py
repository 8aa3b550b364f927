"""Charts drawn on the server as SVG: nothing to download, readable without JavaScript, and themed by CSS.

A bar stacks one rectangle per series (the first on top: the most severe level) and links to the
view of its time window; its ``<title>`` is the tooltip and what a screen reader reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from markupsafe import Markup, escape

from secmon.triage.timeline import Timeline

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 36, 20, 8  # room for the axis labels


def timeline_chart(
    timeline: Timeline, series: Sequence[tuple[str, str]], link: Callable[[str, str | None], str], *, what: str
) -> Markup:
    """``what`` over time, stacked by ``series`` (key in a bar's counts, CSS class);
    ``link(start, end)`` is the view of one bar's window."""
    bars = timeline.bars
    if not bars:
        return Markup(f'<p class="hint">No {escape(what)} in this time range.</p>')
    peak = max(bar.total for bar in bars) or 1
    plot_width, plot_height = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    step = plot_width / len(bars)
    width = max(step * 0.8, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(what)} over time">',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_height}" x2="{WIDTH}" y2="{TOP + plot_height}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{peak:,}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_height}" text-anchor="end">0</text>',
    ]
    for position, bar in enumerate(bars):
        x = LEFT + position * step
        end = bars[position + 1].start if position + 1 < len(bars) else None
        described = ", ".join(f"{bar.counts[key]} {key or what}" for key, _ in series if bar.counts.get(key))
        parts.append(f'<a href="{escape(link(bar.start, end))}"><title>{escape(_when(bar.start))}: {described}</title>')
        y = float(TOP + plot_height)
        for key, css in reversed(series):  # the first series on top
            count = bar.counts.get(key, 0)
            if not count:
                continue
            height = count / peak * plot_height
            y -= height
            parts.append(
                f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{max(height, 0.5):.1f}"/>'
            )
        parts.append("</a>")
    for position in sorted({0, len(bars) // 2, len(bars) - 1}):
        anchor = "start" if position == 0 else "end" if position == len(bars) - 1 else "middle"
        x = LEFT + position * step + (width if anchor == "end" else 0)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 4}" text-anchor="{anchor}">{escape(_when(bars[position].start))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso
