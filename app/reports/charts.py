"""Charts drawn on the server as inline SVG (no script, no inline style), with their numbers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# The drawing's own units (its viewBox). The SVG is drawn 100% wide and scales with its box, so
# these are proportions: 400 units wide keeps 12-unit text about 10 px tall on a 360 px phone
# (static/charts.css caps the width on a desktop so it does not grow huge there either).
WIDTH = 400
FONT = 12
CHAR = 0.6 * FONT  # a generous average glyph width, to decide what fits without measuring
MAX_X_LABELS = 12
X_LABEL_CHARS = 10  # "Mon 31 Dec" fits; longer x labels are cut short with an ellipsis
COLUMN_HEIGHT = 220
COLUMN_TOP = 12  # room above the top gridline for its label
COLUMN_BOTTOM = 24  # room below the baseline for the x labels
PAD = 4
ROW = 38  # one horizontal bar: its label line, the bar, a gap
BAR = 14
EMPTY_HEIGHT = 60
SVG_NS = "http://www.w3.org/2000/svg"
_ID = re.compile(r"[a-z][a-z0-9-]*\Z")


@dataclass(frozen=True)
class Chart:
    """One chart: the drawing, and the same numbers as rows for the table beneath it."""

    id: str  # stable and unique on the page: the figure is `chart-<id>`
    title: str
    svg: Markup
    rows: list[tuple[str, str]]  # (label, formatted value), in the order given
    headings: tuple[str, str]  # the table's two column headings, already translated


def _percent(p: int) -> str:
    return f"{p}%"


def _num(x: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros, never "-0"."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _width(text: str) -> float:
    return len(text) * CHAR


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(1, max_chars - 1)].rstrip() + "…"


def _check_id(chart_id: str) -> str:
    if not _ID.match(chart_id):
        raise ValueError(f"chart_id must be lowercase letters, digits and dashes: {chart_id!r}")
    return chart_id


def _steps() -> Iterator[int]:
    """Round steps, smallest first: 1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500..."""
    yield from (1, 2, 5)
    power = 1
    while True:
        power *= 10
        yield from (power, 2 * power, 25 * power // 10, 5 * power)


def nice_ticks(maximum: int) -> list[int]:
    """Gridline values from 0 up to at least `maximum`: 3 to 5 of them, a round step apart."""
    maximum = max(1, maximum)
    step = next(s for s in _steps() if math.ceil(maximum / s) <= 4)
    intervals = max(2, math.ceil(maximum / step))
    return [step * i for i in range(intervals + 1)]


def percentages(values: Sequence[int]) -> list[int]:
    """Whole percentages of the total that add up to exactly 100 (largest-remainder method;
    ties go to the earlier item). All zero, or no values: all zero."""
    values = [max(0, v) for v in values]
    total = sum(values)
    if total == 0:
        return [0] * len(values)
    split = [divmod(100 * v, total) for v in values]
    result = [q for q, _ in split]
    by_remainder = sorted(range(len(values)), key=lambda i: -split[i][1])
    for i in by_remainder[: 100 - sum(result)]:
        result[i] += 1
    return result


def _svg(chart_id: str, kind: str, title: str, desc: str, height: float, body: list[str]) -> Markup:
    ids = f"chart-{chart_id}-title chart-{chart_id}-desc"
    head = (
        f'<svg xmlns="{SVG_NS}" class="chart-svg chart-{kind}" viewBox="0 0 {WIDTH} '
        f'{_num(height)}" width="100%" role="img" aria-labelledby="{ids}" focusable="false" '
        f'font-size="{FONT}">'
        f'<title id="chart-{chart_id}-title">{escape(title)}</title>'
        f'<desc id="chart-{chart_id}-desc">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every piece is escaped


def _empty(
    chart_id: str, kind: str, title: str, desc: str, empty_text: str, height: float
) -> Markup:
    # The empty text joins the description too: the SVG is one image to a screen reader.
    text = (
        f'<text class="empty" x="{WIDTH // 2}" y="{_num(height / 2 + FONT / 3)}" '
        f'text-anchor="middle">{escape(empty_text)}</text>'
    )
    return _svg(chart_id, kind, title, f"{desc} {empty_text}".strip(), height, [text])


def _bar(x: float, y: float, width: float, height: float, tip: str, cls: str = "bar") -> str:
    return (
        f'<rect class="{cls}" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" '
        f'height="{_num(height)}"><title>{escape(tip)}</title></rect>'
    )


def column_chart(
    points: list[tuple[str, int]],
    *,
    title: str,
    desc: str,
    value_label: Callable[[int], str],
    chart_id: str,
    headings: tuple[str, str],
    empty_text: str,
) -> Chart:
    """Vertical bars in the order given (days, hours): nice gridlines on the y axis, and at
    most 12 x labels however many bars (every n-th one, starting with the first, as many as fit
    side by side). Keep x labels short ("16 Jun", "08"): past 10 characters they are cut."""
    _check_id(chart_id)
    rows = [(label, value_label(value)) for label, value in points]
    values = [max(0, value) for _, value in points]
    if not any(values):
        svg = _empty(chart_id, "column", title, desc, empty_text, EMPTY_HEIGHT)
        return Chart(chart_id, title, svg, rows, headings)

    ticks = nice_ticks(max(values))
    tick_labels = [value_label(t) for t in ticks]
    left = max(_width(t) for t in tick_labels) + 8
    x_labels = [_truncate(label, X_LABEL_CHARS) for label, _ in points]
    label_width = max(_width(label) for label in x_labels)
    right = max(8.0, label_width / 2)
    bottom = COLUMN_HEIGHT - COLUMN_BOTTOM
    plot_w = WIDTH - left - right
    plot_h = bottom - COLUMN_TOP
    top_value = ticks[-1]

    body = []
    for tick, text in zip(ticks, tick_labels, strict=True):
        y = bottom - tick / top_value * plot_h
        cls = "axis" if tick == 0 else "grid"
        body.append(
            f'<line class="{cls}" x1="{_num(left)}" x2="{_num(WIDTH - right)}" '
            f'y1="{_num(y)}" y2="{_num(y)}"/>'
            f'<text class="y-label" x="{_num(left - 6)}" y="{_num(y + FONT / 3)}" '
            f'text-anchor="end">{escape(text)}</text>'
        )

    slot = plot_w / len(points)
    gap = min(slot * 0.2, 4.0) if slot > 3 else 0.0
    # Dense bars touch; a hair of overlap hides the seams anti-aliasing would show between them.
    overlap = 0.0 if gap else 0.4
    body.append('<g class="bars">')
    for i, ((label, _), value, shown) in enumerate(zip(points, values, rows, strict=True)):
        height = value / top_value * plot_h
        tip = f"{label}: {shown[1]}"
        x = left + i * slot + gap / 2
        body.append(_bar(x, bottom - height, slot - gap + overlap, height, tip))
    body.append("</g>")

    fits = max(1, int(plot_w // (label_width + 6)))
    step = math.ceil(len(points) / min(MAX_X_LABELS, fits))
    for i in range(0, len(points), step):
        x = left + (i + 0.5) * slot
        body.append(
            f'<text class="x-label" x="{_num(x)}" y="{_num(bottom + 16)}" '
            f'text-anchor="middle">{escape(x_labels[i])}</text>'
        )
    svg = _svg(chart_id, "column", title, desc, COLUMN_HEIGHT, body)
    return Chart(chart_id, title, svg, rows, headings)


def _horizontal(
    chart_id: str,
    kind: str,
    title: str,
    desc: str,
    items: list[tuple[str, int]],
    shown: list[str],
    fractions: list[float],
    *,
    track: bool,
) -> Markup:
    """One bar per item, its label on the line above (truncated to fit), its value in text
    after the bar (or, for a share, at the right end of a 100% track)."""
    value_w = max(_width(s) for s in shown)
    bar_area = WIDTH - 2 * PAD - value_w - 6
    max_chars = int((WIDTH - 2 * PAD) // CHAR)
    body = ['<g class="bars">']
    for i, ((label, _), text, fraction) in enumerate(zip(items, shown, fractions, strict=True)):
        y = i * ROW + 4
        bar_y = y + 16
        width = fraction * bar_area
        body.append(
            f'<text class="label" x="{PAD}" y="{_num(y + FONT)}">'
            f"{escape(_truncate(label, max_chars))}</text>"
        )
        tip = f"{label}: {text}"
        if track:
            body.append(
                f'<rect class="track" x="{PAD}" y="{_num(bar_y)}" width="{_num(bar_area)}" '
                f'height="{BAR}"/>'
            )
            value_x, anchor = WIDTH - PAD, "end"
        else:
            value_x, anchor = PAD + width + 6, "start"
        body.append(_bar(PAD, bar_y, width, BAR, tip))
        body.append(
            f'<text class="value" x="{_num(value_x)}" y="{_num(bar_y + BAR - 3)}" '
            f'text-anchor="{anchor}">{escape(text)}</text>'
        )
    body.append("</g>")
    return _svg(chart_id, kind, title, desc, len(items) * ROW + 4, body)


def bar_chart(
    items: list[tuple[str, int]],
    *,
    title: str,
    desc: str,
    value_label: Callable[[int], str],
    chart_id: str,
    headings: tuple[str, str],
    empty_text: str,
) -> Chart:
    """Horizontal bars in the order given (per till, per cashier), scaled to the largest;
    each value is written after its bar, and a long name is cut short with an ellipsis (the
    bar's tooltip and the table have it whole)."""
    _check_id(chart_id)
    rows = [(label, value_label(value)) for label, value in items]
    values = [max(0, value) for _, value in items]
    if not any(values):
        svg = _empty(chart_id, "bar", title, desc, empty_text, EMPTY_HEIGHT)
        return Chart(chart_id, title, svg, rows, headings)
    largest = max(values)
    fractions = [v / largest for v in values]
    shown = [text for _, text in rows]
    svg = _horizontal(chart_id, "bar", title, desc, items, shown, fractions, track=False)
    return Chart(chart_id, title, svg, rows, headings)


def share_chart(
    items: list[tuple[str, int]],
    *,
    title: str,
    desc: str,
    value_label: Callable[[int], str],
    chart_id: str,
    headings: tuple[str, str],
    empty_text: str,
    percent: Callable[[int], str] = _percent,
) -> Chart:
    """Each item's share of the total (failure reasons): one horizontal bar per item against
    a 100% track, "40% (12)" written beside it; the percentages add up to 100.

    Bars rather than one stacked bar: a thin slice of a stacked bar can hold no label, and
    telling slices apart would take colours; here every share has its own line of text."""
    _check_id(chart_id)
    values = [max(0, value) for _, value in items]
    shares = percentages(values)
    rows = [
        (label, f"{percent(p)} ({value_label(value)})")
        for (label, value), p in zip(items, shares, strict=True)
    ]
    total = sum(values)
    if total == 0:
        svg = _empty(chart_id, "share", title, desc, empty_text, EMPTY_HEIGHT)
        return Chart(chart_id, title, svg, rows, headings)
    fractions = [v / total for v in values]
    shown = [text for _, text in rows]
    svg = _horizontal(chart_id, "share", title, desc, items, shown, fractions, track=True)
    return Chart(chart_id, title, svg, rows, headings)
