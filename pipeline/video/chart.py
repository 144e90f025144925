"""The area chart of the sidebar: axes and dimmed class lines drawn once, the cursor and the bright lines
up to it drawn per frame."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageDraw

from pipeline.video.panels import LegendEntry
from pipeline.video.style import (ACCENT_RGB, BACKGROUND_RGB, HALO_RGB, MUTED_TEXT_RGB, RULE_RGB, TEXT_RGB,
                                  Box, Sizes, fit_text, load_font, text_height, text_width)

if TYPE_CHECKING:
    from pipeline.video.frames import Scene
    from pipeline.video.timeline import FrameSpec

__all__ = ["draw_chart_base", "draw_chart_cursor"]

NODATA_BAR_RGB = (0x6B, 0x71, 0x79)  # the nodata share bars: a mid grey, seen on the dark background


def draw_chart_base(draw: ImageDraw.ImageDraw, box: Box, sizes: Sizes,
                     legend: Sequence[LegendEntry], class_areas: Mapping[int, Sequence[float]],
                     values: Sequence[float], n_periods: int, event_values: Sequence[float],
                     mode: Literal["change", "area"], first_label: str,
                     tick_labels: Sequence[str] | None = None, unit: Literal["ha", "%"] = "ha",
                     nodata_shares: Sequence[float] | None = None):
    """Axes, the class-area lines (dimmed: the frame draws them bright up to the cursor) and
    event ticks. `mode` "change" plots each class's area minus its area in the first period
    (small classes that change stay visible beside a large stable one); "area" the areas.
    `unit` "%": the values are shares of the mapped area (change in percentage points).
    `nodata_shares` (% of the AOI without data per period): grey bars in a strip under the lines.
    Returns the plot box, the cursor x per period and the lines in frame pixels."""
    left, top, width, height = box
    title_font, axis_font = load_font(sizes.panel_title_font, True), load_font(sizes.axis_font)
    if unit == "%":
        title = "Share of mapped area (%)" if mode == "area" else f"Share change since {first_label} (pp)"
    else:
        title = "Area by class (ha)" if mode == "area" else f"Area change since {first_label} (ha)"
    if mode == "change" and text_width(title_font, title) > width:  # a narrow chart: the unit, not an ellipsis
        title = f"Change since {first_label} ({'pp' if unit == '%' else 'ha'})"
    draw.text((left, top - sizes.gap), fit_text(title, title_font, width), font=title_font,
              fill=TEXT_RGB, anchor="ld")
    colours = {e.code: e.rgb for e in legend}
    series = {}
    for code, areas in class_areas.items():
        areas = [float(a) for a in areas]
        if len(areas) != n_periods:
            raise ValueError(f"class_areas[{code}] has {len(areas)} values for {n_periods} periods")
        if mode == "change":
            start = next((a for a in areas if np.isfinite(a)), np.nan)
            areas = [a - start for a in areas]
        series[code] = areas
    finite = [a for areas in series.values() for a in areas if np.isfinite(a)]
    top_value = _nice_ceiling(max(finite)) if finite and max(finite) > 0 else 0.0
    bottom_value = -_nice_ceiling(-min(finite)) if finite and min(finite) < 0 else 0.0
    if top_value == bottom_value:
        top_value = 1.0
    sign = "+," if mode == "change" else ","
    ticks = sorted({bottom_value, 0.0, top_value} if mode == "change"
                   else {0.0, top_value / 2, top_value})
    label_width = max(text_width(axis_font, f"{t:{sign}.0f}") for t in ticks) + sizes.gap
    axis_height = text_height(axis_font) + sizes.gap
    strip = 0
    if nodata_shares is not None:
        if len(nodata_shares) != n_periods:
            raise ValueError(f"nodata_shares has {len(nodata_shares)} values for {n_periods} periods")
        strip = max(2 * text_height(axis_font), round(0.22 * (height - axis_height - sizes.gap)))
    plot = (left + label_width, top + sizes.gap, max(8, width - label_width - sizes.gap),
            max(8, height - axis_height - sizes.gap - strip))
    px, py, pw, ph = plot
    low, high = min(values), max(values)
    span = (high - low) or 1.0

    def x_of(value: float) -> float:
        return px + (value - low) / span * pw if high > low else px + pw / 2

    if strip:
        _draw_nodata_strip(draw, (px, py + ph + sizes.gap // 2, pw, strip - sizes.gap // 2), sizes, axis_font,
                           [x_of(v) for v in values], nodata_shares)

    def y_of(area: float) -> float:
        return py + ph - (area - bottom_value) / (top_value - bottom_value) * ph

    for tick in ticks:
        y = y_of(tick)
        draw.line((px, y, px + pw, y), fill=MUTED_TEXT_RGB if tick == 0 and mode == "change"
                  else RULE_RGB, width=1)
        draw.text((px - sizes.gap // 2, y), "0" if tick == 0 else f"{tick:{sign}.0f}",
                  font=axis_font, fill=MUTED_TEXT_RGB, anchor="rm")
    labels = {0, n_periods - 1} | ({n_periods // 2} if n_periods > 4 else set())
    for index in sorted(labels):
        tick = tick_labels[index] if tick_labels is not None else f"{values[index]:g}"
        draw.text((x_of(values[index]), py + ph + strip + sizes.gap // 2), tick,
                  font=axis_font, fill=MUTED_TEXT_RGB, anchor="ma")
    for value in event_values:
        x = x_of(value)
        for y in range(py, py + ph, max(4, round(10 * sizes.scale))):
            draw.line((x, y, x, min(py + ph, y + max(2, round(5 * sizes.scale)))),
                      fill=ACCENT_RGB, width=max(1, round(2 * sizes.scale)))
    lines = []
    for code, areas in series.items():
        colour = colours.get(code, MUTED_TEXT_RGB)
        points = tuple((x_of(v), y_of(a)) for v, a in zip(values, areas) if np.isfinite(a))
        dim = tuple(round(0.35 * c + 0.65 * b) for c, b in zip(colour, BACKGROUND_RGB))
        if len(points) >= 2:
            draw.line(points, fill=dim, width=max(1, round(2 * sizes.scale)), joint="curve")
        lines.append((colour, points))
    return plot, tuple(x_of(v) for v in values), tuple(lines)


def _draw_nodata_strip(draw: ImageDraw.ImageDraw, box: Box, sizes: Sizes, font, xs: Sequence[float],
                       shares: Sequence[float]) -> None:
    """Grey bars: the share of the AOI without data in each period (before gap filling), on a scale
    from 0 to a round ceiling of the largest share (at least 10 %), labelled at its top."""
    left, top, width, height = box
    finite = [float(s) for s in shares if np.isfinite(s)]
    ceiling = max(10.0, _nice_ceiling(max(finite))) if finite else 10.0
    ceiling = min(ceiling, 100.0)
    draw.line((left, top + height, left + width, top + height), fill=RULE_RGB, width=1)
    gaps = np.diff(sorted(xs)) if len(xs) > 1 else np.array([width / 2])
    bar = max(2.0, min(float(gaps.min()) * 0.6 if len(gaps) else width / 4, width / 4))
    for x, share in zip(xs, shares):
        if not np.isfinite(share) or share <= 0:
            continue
        h = max(1.0, min(share, ceiling) / ceiling * height)
        draw.rectangle((x - bar / 2, top + height - h, x + bar / 2, top + height), fill=NODATA_BAR_RGB)
    draw.text((left - sizes.gap // 2, top), f"{ceiling:.0f}%", font=font, fill=MUTED_TEXT_RGB, anchor="ra")
    draw.text((left + sizes.gap // 2, top), "no data", font=font, fill=MUTED_TEXT_RGB, anchor="la")


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    return next(m * exponent for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
                if m * exponent >= value)


def draw_chart_cursor(frame: np.ndarray, scene: Scene, spec: FrameSpec) -> None:
    px, py, pw, ph = scene.chart_plot
    sizes = scene.sizes
    pad = round(12 * sizes.scale)
    left, top = max(0, px - pad), max(0, py - pad)
    right, bottom = min(frame.shape[1], px + pw + pad), min(frame.shape[0], py + ph + pad)
    region = Image.fromarray(frame[top:bottom, left:right])
    draw = ImageDraw.Draw(region)
    x_now = scene.chart_x[spec.period]
    if spec.blend > 0:
        x_now += (scene.chart_x[spec.next] - x_now) * spec.blend
    width = max(2, round(3 * sizes.scale))
    draw.line((x_now - left, py - top, x_now - left, py + ph - top), fill=TEXT_RGB,
              width=max(1, round(2 * sizes.scale)))
    dot = max(3, round(6 * sizes.scale))
    for colour, points in scene.chart_lines:
        shown = [(x - left, y - top) for x, y in points if x <= x_now + 1e-6]
        later = [(x - left, y - top) for x, y in points if x > x_now + 1e-6]
        if shown and later and shown[-1][0] < x_now - left:
            (x0, y0), (x1, y1) = shown[-1], later[0]
            fraction = (x_now - left - x0) / (x1 - x0)
            shown.append((x_now - left, y0 + (y1 - y0) * fraction))
        if len(shown) >= 2:
            draw.line(shown, fill=colour, width=width, joint="curve")
        if shown:
            x, y = shown[-1]
            draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=colour, outline=HALO_RGB)
    frame[top:bottom, left:right] = np.asarray(region)
