"""The server-drawn charts: geometry read back from the SVG, escaping, ARIA, the partial, CSS."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask, render_template
from flask_babel import Babel
from hypothesis import given
from hypothesis import strategies as st

from app.reports.charts import (
    MAX_X_LABELS,
    Chart,
    bar_chart,
    column_chart,
    nice_ticks,
    percentages,
    share_chart,
)

ROOT = Path(__file__).resolve().parents[2]
NS = {"s": "http://www.w3.org/2000/svg"}
EVIL = "<script>alert(1)</script>"
HEADINGS = ("Day", "Takings")


def kes(value: int) -> str:
    return f"KES {value:,}"


def plain(value: int) -> str:
    return f"{value:,}"


def column(points: list[tuple[str, int]], **kw) -> Chart:
    args = {
        "title": "Takings per day",
        "desc": "One bar per day.",
        "value_label": kes,
        "chart_id": "by-day",
        "headings": HEADINGS,
        "empty_text": "No takings in this period.",
    }
    return column_chart(points, **(args | kw))


def bars(items: list[tuple[str, int]], **kw) -> Chart:
    args = {
        "title": "Takings per till",
        "desc": "One bar per till.",
        "value_label": kes,
        "chart_id": "by-till",
        "headings": ("Till", "Takings"),
        "empty_text": "No takings in this period.",
    }
    return bar_chart(items, **(args | kw))


def shares(items: list[tuple[str, int]], **kw) -> Chart:
    args = {
        "title": "Why payments failed",
        "desc": "Each reason's share of the failures.",
        "value_label": plain,
        "chart_id": "failures",
        "headings": ("Reason", "Share"),
        "empty_text": "No failed payments.",
    }
    return share_chart(items, **(args | kw))


def parse(chart: Chart) -> ET.Element:
    """The SVG as XML: this also proves it is well-formed."""
    return ET.fromstring(str(chart.svg))  # noqa: S314 - our own output, not untrusted input


def rects(svg: ET.Element, cls: str = "bar") -> list[ET.Element]:
    return [r for r in svg.iter(f"{{{NS['s']}}}rect") if r.get("class") == cls]


def texts(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [t for t in svg.iter(f"{{{NS['s']}}}text") if t.get("class") == cls]


def title_of(element: ET.Element) -> str:
    return element.find("s:title", NS).text


def days(n: int) -> list[tuple[str, int]]:
    return [(f"d{i + 1}", 1000 + (i * 37) % 5000) for i in range(n)]


def every_chart() -> list[Chart]:
    named = [("Main till", 3000), (EVIL, 1500), ("Back", 0)]
    return [
        column(days(31)),
        column([("00", 5), (EVIL, 10)]),
        column([]),
        column([("a", 0)]),
        bars(named),
        bars([]),
        shares(named),
        shares([("a", 0)]),
    ]


# Column chart ---------------------------------------------------------------------------------


def test_one_bar_per_point_proportional_to_its_value():
    svg = parse(column([("Mon", 8000), ("Tue", 4000), ("Wed", 2000), ("Thu", 0), ("Fri", 6000)]))
    heights = [float(r.get("height")) for r in rects(svg)]
    assert len(heights) == 5
    assert max(heights) == heights[0]  # the largest value has the tallest bar
    assert heights[1] == pytest.approx(heights[0] / 2, abs=0.02)
    assert heights[2] == pytest.approx(heights[0] / 4, abs=0.02)
    assert heights[4] == pytest.approx(heights[0] * 3 / 4, abs=0.02)
    assert heights[3] == 0
    # All stand on the same baseline, left to right in the order given.
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 1) for r in rects(svg)}
    assert len(bottoms) == 1
    xs = [float(r.get("x")) for r in rects(svg)]
    assert xs == sorted(xs)


def test_the_bar_scale_is_the_top_gridline():
    svg = parse(column([("a", 10000), ("b", 5000)], value_label=plain))
    grid = texts(svg, "y-label")
    top = max(grid, key=lambda t: int(t.text.replace(",", "")))
    assert int(top.text.replace(",", "")) == 10000
    tallest = rects(svg)[0]
    # The top of the tallest bar is level with its gridline's label (which sits FONT/3 lower).
    assert float(tallest.get("y")) == pytest.approx(float(top.get("y")) - 4, abs=0.02)


def test_each_bar_has_a_tooltip_with_label_and_value():
    svg = parse(column([("Mon", 1500), ("Tue", 0)]))
    assert [title_of(r) for r in rects(svg)] == ["Mon: KES 1,500", "Tue: KES 0"]


@pytest.mark.parametrize("maximum", [1, 3, 7, 10, 99, 101, 1234, 9999, 10001, 150_000, 7_654_321])
def test_gridlines_are_three_to_five_nice_numbers(maximum):
    svg = parse(column([("a", maximum), ("b", maximum // 2)], value_label=plain))
    values = [int(t.text.replace(",", "")) for t in texts(svg, "y-label")]
    assert 3 <= len(values) <= 5
    assert values[0] == 0
    assert values[-1] >= maximum
    step = values[1]
    assert values == [step * i for i in range(len(values))]
    mantissa = step / 10 ** (len(str(step)) - 1)
    assert mantissa in (1, 2, 2.5, 5)
    lines = [e for e in svg.iter(f"{{{NS['s']}}}line") if e.get("class") in ("grid", "axis")]
    assert len(lines) == len(values)


@given(st.integers(min_value=1, max_value=10**12))
def test_nice_ticks_for_any_maximum(maximum):
    ticks = nice_ticks(maximum)
    assert 3 <= len(ticks) <= 5
    assert ticks[0] == 0 and ticks[-1] >= maximum
    assert ticks[-2] < maximum or len(ticks) == 3  # no empty band at the top, beyond the minimum


def test_24_hours_label_every_second_hour():
    svg = parse(column([(f"{h:02d}", 100 * h) for h in range(24)]))
    assert [t.text for t in texts(svg, "x-label")] == [f"{h:02d}" for h in range(0, 24, 2)]


@pytest.mark.parametrize("n", [90, 366])
def test_many_bars_get_at_most_twelve_evenly_spaced_x_labels(n):
    points = days(n)
    svg = parse(column(points))
    assert len(rects(svg)) == n
    labels = texts(svg, "x-label")
    assert 2 <= len(labels) <= MAX_X_LABELS
    assert labels[0].text == points[0][0]
    index = {label: i for i, (label, _) in enumerate(points)}
    positions = [index[t.text] for t in labels]
    gaps = {b - a for a, b in zip(positions, positions[1:], strict=False)}
    assert len(gaps) == 1  # every n-th day
    # Far enough apart not to overlap: at least the width of the longest label (0.6 em each).
    xs = [float(t.get("x")) for t in labels]
    longest = max(len(t.text) for t in labels) * 0.6 * 12
    assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= longest
    # Each label is centred under the bar it names.
    bars_ = rects(svg)
    for t, i in zip(labels, positions, strict=True):
        centre = float(bars_[i].get("x")) + float(bars_[i].get("width")) / 2
        assert float(t.get("x")) == pytest.approx(centre, abs=0.5)


def test_few_bars_are_all_labelled():
    svg = parse(column(days(7)))
    assert [t.text for t in texts(svg, "x-label")] == [label for label, _ in days(7)]


@pytest.mark.parametrize("points", [[], [("Mon", 0), ("Tue", 0)]], ids=["empty", "all-zero"])
def test_no_data_column_chart(points):
    chart = column(points)
    svg = parse(chart)
    assert rects(svg) == []
    assert [t.text for t in texts(svg, "empty")] == ["No takings in this period."]
    # One image to a screen reader: its description says so too.
    assert svg.find("s:desc", NS).text == "One bar per day. No takings in this period."
    assert chart.rows == [(label, kes(v)) for label, v in points]


def test_negative_values_are_drawn_as_zero():
    chart = column([("a", -500), ("b", 1000)])
    heights = [float(r.get("height")) for r in rects(parse(chart))]
    assert heights[0] == 0 and heights[1] > 0
    assert chart.rows == [("a", "KES -500"), ("b", "KES 1,000")]  # the table keeps the truth


def test_table_rows_equal_the_input():
    points = days(40)
    chart = column(points)
    assert chart.rows == [(label, kes(value)) for label, value in points]
    assert chart.headings == HEADINGS
    assert (chart.id, chart.title) == ("by-day", "Takings per day")


# Horizontal bars -----------------------------------------------------------------------------


def test_bar_chart_keeps_the_order_and_scales_to_the_largest():
    items = [("Till B", 2000), ("Till A", 8000), ("Till C", 4000)]
    chart = bars(items)
    svg = parse(chart)
    widths = [float(r.get("width")) for r in rects(svg)]
    assert len(widths) == 3
    assert widths[1] == max(widths)
    assert widths[0] == pytest.approx(widths[1] / 4, abs=0.02)
    assert widths[2] == pytest.approx(widths[1] / 2, abs=0.02)
    assert [t.text for t in texts(svg, "label")] == ["Till B", "Till A", "Till C"]
    assert [t.text for t in texts(svg, "value")] == ["KES 2,000", "KES 8,000", "KES 4,000"]
    assert chart.rows == [(name, kes(v)) for name, v in items]
    # Top to bottom, and every value is written just after its own bar.
    ys = [float(r.get("y")) for r in rects(svg)]
    assert ys == sorted(ys)
    for bar, value in zip(rects(svg), texts(svg, "value"), strict=True):
        assert float(value.get("x")) > float(bar.get("x")) + float(bar.get("width"))
    right = max(float(v.get("x")) + len(v.text) * 0.6 * 12 for v in texts(svg, "value"))
    assert right <= 400  # the longest value still fits in the drawing


def test_long_names_are_cut_with_an_ellipsis_but_whole_in_tooltip_and_table():
    long = "Cashier with a remarkably long name that goes on and on and on, Nairobi CBD"
    chart = bars([(long, 500), ("Amina", 300)])
    svg = parse(chart)
    label = texts(svg, "label")[0].text
    assert label.endswith("…") and len(label) < len(long)
    assert long.startswith(label[:-1])
    assert title_of(rects(svg)[0]) == f"{long}: KES 500"
    assert chart.rows[0] == (long, "KES 500")
    assert texts(svg, "label")[1].text == "Amina"


@pytest.mark.parametrize("items", [[], [("Till A", 0)]], ids=["empty", "all-zero"])
def test_no_data_bar_chart(items):
    svg = parse(bars(items))
    assert rects(svg) == []
    assert [t.text for t in texts(svg, "empty")] == ["No takings in this period."]


# Shares --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 1, 1], [34, 33, 33]),
        ([1, 2], [33, 67]),
        ([1, 1, 1, 1, 1, 1], [17, 17, 17, 17, 16, 16]),
        ([999, 1], [100, 0]),
        ([5, 0, 5], [50, 0, 50]),
        ([0, 0], [0, 0]),
        ([], []),
    ],
)
def test_percentages_add_up_to_100(values, expected):
    assert percentages(values) == expected


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=40))
def test_percentages_add_up_to_100_for_any_counts(values):
    result = percentages(values)
    assert sum(result) == (100 if sum(values) else 0)
    total = sum(values) or 1
    assert all(abs(p - 100 * v / total) < 1 for p, v in zip(result, values, strict=True))


def test_share_chart_writes_percentages_that_sum_to_100():
    chart = shares([("Cancelled by customer", 1), ("Wrong PIN", 1), ("No answer", 1)])
    svg = parse(chart)
    written = [t.text for t in texts(svg, "value")]
    assert written == ["34% (1)", "33% (1)", "33% (1)"]
    assert sum(int(w.split("%")[0]) for w in written) == 100
    assert [value for _, value in chart.rows] == written
    assert [label for label, _ in chart.rows] == ["Cancelled by customer", "Wrong PIN", "No answer"]
    assert title_of(rects(svg)[0]) == "Cancelled by customer: 34% (1)"


def test_share_bars_are_fractions_of_a_full_track():
    svg = parse(shares([("a", 3), ("b", 1)]))
    tracks = rects(svg, "track")
    fills = rects(svg)
    assert len(tracks) == len(fills) == 2
    full = float(tracks[0].get("width"))
    assert float(fills[0].get("width")) == pytest.approx(full * 0.75, abs=0.02)
    assert float(fills[1].get("width")) == pytest.approx(full * 0.25, abs=0.02)


def test_share_percent_format_is_the_callers():
    chart = shares([("a", 1), ("b", 3)], percent=lambda p: f"asilimia {p}")
    assert chart.rows == [("a", "asilimia 25 (1)"), ("b", "asilimia 75 (3)")]


def test_no_data_share_chart():
    chart = shares([("a", 0), ("b", 0)])
    svg = parse(chart)
    assert rects(svg) == [] and rects(svg, "track") == []
    assert [t.text for t in texts(svg, "empty")] == ["No failed payments."]
    assert chart.rows == [("a", "0% (0)"), ("b", "0% (0)")]


# Every chart: escaping, no inline style, ARIA ------------------------------------------------


@pytest.mark.parametrize("make", [column, bars, shares], ids=["column", "bar", "share"])
def test_a_malicious_name_is_escaped_everywhere(make):
    chart = make([(EVIL, 100), ("ok", 50)], title=EVIL, desc=EVIL)
    markup = str(chart.svg)
    assert "<script" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    soup = BeautifulSoup(markup, "html.parser")
    assert soup.find("script") is None
    assert soup.find("title", id=f"chart-{chart.id}-title").string == EVIL  # as text
    assert any(t.get_text() == f"{EVIL}: {chart.rows[0][1]}" for t in soup.find_all("title"))
    assert chart.rows[0][0] == EVIL  # the table escapes it when rendered (see below)


def test_no_style_attribute_or_element_in_any_chart():
    for chart in every_chart():
        soup = BeautifulSoup(str(chart.svg), "html.parser")
        assert soup.find("style") is None
        assert soup.find(attrs={"style": True}) is None
        assert not re.search(r"(?<![\w-])style\s*=", str(chart.svg), re.I)
        assert not re.search(r"\son[a-z]+\s*=", str(chart.svg), re.I)  # no event handlers


def test_every_svg_is_an_image_named_by_its_title_and_desc():
    seen_ids: set[str] = set()
    for chart in every_chart():
        svg = parse(chart)
        assert svg.get("role") == "img"
        assert svg.get("focusable") == "false"
        assert svg.get("width") == "100%"
        assert re.fullmatch(r"0 0 \d+ \d+(\.\d+)?", svg.get("viewBox"))
        ids = svg.get("aria-labelledby").split()
        assert ids == [f"chart-{chart.id}-title", f"chart-{chart.id}-desc"]
        found = {e.get("id"): e for e in svg.iter() if e.get("id")}
        assert found[ids[0]].tag == f"{{{NS['s']}}}title" and found[ids[0]].text == chart.title
        assert found[ids[1]].tag == f"{{{NS['s']}}}desc" and found[ids[1]].text
        # The title and desc come first, so they name the image (SVG 2's rule).
        assert [child.tag.split("}")[1] for child in svg[:2]] == ["title", "desc"]
        for bar in rects(svg):
            assert title_of(bar)
        seen_ids.add(chart.id)
    assert seen_ids == {"by-day", "by-till", "failures"}


def test_charts_with_different_ids_have_different_element_ids():
    a, b = column(days(3), chart_id="by-day"), column(days(3), chart_id="by-hour")
    ids_a = {e.get("id") for e in parse(a).iter() if e.get("id")}
    ids_b = {e.get("id") for e in parse(b).iter() if e.get("id")}
    assert ids_a and not ids_a & ids_b


@pytest.mark.parametrize("bad", ["", "By Day", 'x" onload="go()', "1st", "a_b"])
def test_chart_id_must_be_safe_for_an_id_attribute(bad):
    with pytest.raises(ValueError, match="chart_id"):
        column(days(3), chart_id=bad)


# The partial ---------------------------------------------------------------------------------


@pytest.fixture
def render():
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    Babel(app)

    def _render(chart: Chart) -> BeautifulSoup:
        with app.test_request_context():
            html = render_template("owner/_chart.html", chart=chart)
        return BeautifulSoup(html, "html.parser")

    return _render


def test_partial_is_one_figure_with_svg_caption_and_table(render):
    items = [("Main till", 3000), (EVIL, 1500)]
    soup = render(bars(items))
    roots = [node for node in soup.contents if node.name or node.strip()]
    assert len(roots) == 1
    figure = roots[0]
    assert (figure.name, figure["id"], figure["class"]) == ("figure", "chart-by-till", ["chart"])
    children = [c.name for c in figure.find_all(recursive=False)]
    assert children == ["figcaption", "svg", "table"]
    assert figure.figcaption.get_text(strip=True) == "Takings per till"
    table = figure.table
    assert table.caption.get_text(strip=True) == "Takings per till"
    assert [(th["scope"], th.get_text()) for th in table.thead.find_all("th")] == [
        ("col", "Till"),
        ("col", "Takings"),
    ]
    body = [(tr.th.get_text(), tr.td.get_text()) for tr in table.tbody.find_all("tr")]
    assert body == [(name, kes(v)) for name, v in items]
    assert all(td["class"] == ["num"] for td in table.tbody.find_all("td"))
    assert all(th["scope"] == "row" for th in table.tbody.find_all("th"))
    assert soup.find("script") is None  # the malicious name is text in the table too
    svg = figure.svg
    assert svg["aria-labelledby"] == "chart-by-till-title chart-by-till-desc"


def test_partial_without_rows_has_no_empty_table(render):
    soup = render(column([]))
    figure = soup.find("figure")
    assert figure["id"] == "chart-by-day"
    assert figure.find("table") is None
    assert "No takings in this period." in figure.svg.get_text()


def test_partial_has_no_inline_style_or_script():
    text = (ROOT / "templates" / "owner" / "_chart.html").read_text()
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    assert not re.search(r"<style\b|(?<![\w-])style\s*=|<script\b", text, re.I)


# The stylesheet ------------------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str = "#ffffff") -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _screen_rules() -> dict[str, str]:
    css = (ROOT / "static" / "charts.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    # Leave out @media blocks (print, forced colours, small screens): one level of nesting.
    screen = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)
    return {sel.strip(): body for sel, body in re.findall(r"([^{}]+)\{([^{}]*)\}", screen)}


def _colour(rules: dict[str, str], selector: str, prop: str) -> str:
    for selectors, body in rules.items():
        if selector in [s.strip() for s in selectors.split(",")]:
            found = re.search(rf"(?<![\w-]){prop}:(#[0-9a-fA-F]{{6}})", body)
            if found:
                return found.group(1)
    raise AssertionError(f"no {prop} for {selector}")


def test_chart_colours_meet_wcag_contrast_on_white():
    rules = _screen_rules()
    bar = _colour(rules, ".chart-svg .bar", "fill")
    assert contrast(bar) >= 3  # a graphical object (WCAG 1.4.11)
    assert contrast(_colour(rules, ".chart-svg .bar:hover", "fill")) >= 3
    assert contrast(_colour(rules, ".chart-svg .grid", "stroke")) >= 3
    assert contrast(_colour(rules, ".chart-svg .axis", "stroke")) >= 3
    assert contrast(bar, _colour(rules, ".chart-svg .track", "fill")) >= 3  # bar against track
    for selector in (".chart-svg text", ".chart-svg .y-label", ".chart-svg .empty"):
        assert contrast(_colour(rules, selector, "fill")) >= 4.5  # text (WCAG 1.4.3)


def test_every_coloured_class_the_svg_uses_has_a_rule():
    css = (ROOT / "static" / "charts.css").read_text()
    used = {
        e.get("class") for chart in every_chart() for e in parse(chart).iter() if e.get("class")
    }
    # Plain text (label, value) takes `.chart-svg text`; the kind classes are hooks for pages.
    unstyled = {"bars", "label", "value", "chart-column", "chart-bar", "chart-share"}
    for cls in set().union(*(c.split() for c in used)) - unstyled:
        assert re.search(rf"\.{cls}(?![\w-])", css), cls


def test_charts_print_in_black_and_white():
    css = (ROOT / "static" / "charts.css").read_text()
    printed = css.split("@media print", 1)[1]
    assert re.search(r"\.bar[^{]*\{fill:#000\}", printed)
    assert re.search(r"text[^{]*\{fill:#000\}", printed)
    assert re.search(r"\.track\{fill:#fff;stroke:#000", printed)
