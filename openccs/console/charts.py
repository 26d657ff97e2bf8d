"""Line charts of GetMonitorData answers, drawn as SVG on the server (no script, no library)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from openccs.monitor.metrics import METRICS

# A range the monitoring page offers: the period GetMonitorData keeps rollups of, and the
# window shown (points = window / period: 60, 288, 168).
RANGES: dict[str, tuple[int, int]] = {
    "hour": (60, 3600),
    "day": (300, 86400),
    "week": (3600, 7 * 86400),
}

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 180, 56, 24, 10


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def line_chart(title: str, metric: str, answer: dict[str, Any], period: int) -> Markup:
    """An SVG of one series; gaps (None) break the line. Carries `data-points` (how many
    points have a value) for tests and scripts."""
    points: list[float | None] = list(answer.get("dataPoints") or [])
    unit = METRICS[metric].unit if metric in METRICS else ""
    values = [v for v in points if v is not None]
    top = max(values) if values else 1.0
    top = top * 1.1 if top > 0 else 1.0
    n = max(len(points) - 1, 1)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    paths: list[str] = []
    current: list[str] = []
    for i, v in enumerate(points):
        if v is None:
            if current:
                paths.append(" ".join(current))
            current = []
            continue
        x = LEFT + plot_w * i / n
        y = TOP + plot_h * (1 - v / top)
        current.append(f"{'M' if not current else 'L'}{x:.1f},{y:.1f}")
    if current:
        paths.append(" ".join(current))
    dots = ""
    if len(values) == 1:  # a single point has no line: mark it
        i = next(i for i, v in enumerate(points) if v is not None)
        x = LEFT + plot_w * i / n
        y = TOP + plot_h * (1 - values[0] / top)
        dots = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="series"/>'
    grid = "".join(
        f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{TOP + plot_h * f:.1f}" '
        f'y2="{TOP + plot_h * f:.1f}" class="grid"/>'
        f'<text x="{LEFT - 4}" y="{TOP + plot_h * f + 4:.1f}" class="axis" '
        f'text-anchor="end">{_fmt(top * (1 - f))}</text>'
        for f in (0.0, 0.5, 1.0)
    )
    start, end = escape(answer.get("startTime", "")), escape(answer.get("endTime", ""))
    latest = _fmt(values[-1]) if values else "no data"
    label = escape(f"{title} ({unit}), latest {latest}")
    svg = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" '
        f'data-metric="{escape(metric)}" data-points="{len(values)}" data-period="{period}">'
        f"<title>{label}</title>{grid}"
        + "".join(f'<path d="{d}" class="series"/>' for d in paths)
        + dots
        + f'<text x="{LEFT}" y="{HEIGHT - 6}" class="axis">{start}</text>'
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 6}" class="axis" text-anchor="end">{end}</text>'
        "</svg>"
    )
    return Markup(svg)
