"""Frames and the time-lapse video: NumPy + Pillow composition, rendered on Dask, streamed to H.264.

A video is a `Scene` (everything that does not change between frames: the layout, the static parts
drawn once into a base frame, each period's map tiles already scaled and annotated, the intro and
outro cards) played along a `Timing` (frames per second, hold per period, cross-fade, intro, outro,
caption times). A frame is described by a small hashable `FrameSpec`; `frame_runs` turns the timing
into runs of identical frames, so a period's held frame is composed once and repeated, and only the
distinct frames (cross-fade steps, caption fades) are composed, in parallel on Dask, in a bounded
window, and streamed in order to the encoder (`pipeline.video.encoder`). Memory does not grow with the
number of frames.

Landscape frames (16:9 presets) show the title bar (title and subtitle left, date right), the map
panels side by side (true colour and, when given, the class map), a sidebar with the class legend,
the marker legend and a chart of class areas whose cursor moves with the date, a caption band and a
credits footer. Vertical frames (Shorts) stack the same parts. Maps are letter-boxed, never
stretched; the layout depends only on the frame size and the maps' shape, so nothing jumps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from pipeline.video.cards import CAPTION_LINES, draw_captions, draw_title_bar, text_card, text_tile
from pipeline.video.chart import draw_chart_base, draw_chart_cursor
from pipeline.video.panels import MARKER_NAMES, LegendEntry, MapMarker, draw_legend, legend_rows, map_tile
from pipeline.video.style import (BACKGROUND_RGB, MUTED_TEXT_RGB, RULE_RGB, TEXT_RGB, TITLE_BAR_RGB, Box, Sizes,
                                  fit_text, load_font, text_height, text_width)
from pipeline.video.timeline import FrameSpec

__all__ = ["PRESETS", "Layout", "Scene", "build_scene", "render_frame", "compose_frame", "check_video_size"]


logger = logging.getLogger(__name__)


PRESETS: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "4k": (3840, 2160),
    "vertical": (1080, 1920),
}


@dataclass(frozen=True)
class Layout:
    """Where each part of a frame goes (pixel boxes as (left, top, width, height))."""

    size: tuple[int, int]
    title_bar_height: int
    date_box: Box
    map_boxes: tuple[Box, ...]
    panel_title_tops: tuple[int, ...]
    legend_box: Box | None
    chart_box: Box | None
    caption_box: Box
    credits_top: int
    legend_swatches: dict[int, Box] = field(default_factory=dict)  # class code -> swatch box


def _plan_layout(width: int, height: int, sizes: Sizes, *, n_maps: int, legend_height: int, date_text: str,
                 chart: bool, captions: bool = True) -> Layout:
    margin, gap = sizes.margin, sizes.gap
    bar_height = max(text_height(load_font(sizes.date_font, True)),
                     text_height(load_font(sizes.title_font, True))
                     + text_height(load_font(sizes.subtitle_font))) + 2 * gap
    date_width = text_width(load_font(sizes.date_font, True), date_text) + margin
    date_box = (width - margin - date_width, 0, date_width, bar_height)
    credits_top = height - gap - text_height(load_font(sizes.credits_font))
    caption_line = round(text_height(load_font(sizes.caption_font)) * 1.2)
    caption_lines = CAPTION_LINES if captions else 0  # no captions: the maps take the room
    caption_top = credits_top - gap - caption_lines * caption_line
    caption_box = (0, caption_top - gap, width, caption_lines * caption_line + gap)
    top = bar_height + gap
    bottom = caption_box[1] - gap
    title_height = text_height(load_font(sizes.panel_title_font, True)) + gap
    sidebar = legend_height > 0 or chart
    legend_box = chart_box = None
    if width >= height:  # landscape: maps side by side, sidebar on the right
        side_width = round(width * 0.24) if sidebar else 0
        maps_width = width - 2 * margin - (side_width + margin if sidebar else 0)
        panel_width = (maps_width - (n_maps - 1) * margin) // n_maps
        map_boxes = tuple((margin + i * (panel_width + margin), top + title_height, panel_width,
                           bottom - top - title_height) for i in range(n_maps))
        panel_title_tops = (top,) * n_maps
        side_left = width - margin - side_width
        if legend_height:
            legend_box = (side_left, top + title_height, side_width, legend_height)
        if chart:
            chart_top = top + title_height + legend_height + (2 * gap if legend_height else 0) \
                + title_height
            chart_box = (side_left, chart_top, side_width, bottom - chart_top)
    else:  # vertical: maps stacked, then legend and chart across the width
        chart_height = round(height * 0.13) if chart else 0
        below = legend_height + chart_height + (gap if legend_height else 0) \
            + (title_height if chart else 0)
        maps_height = bottom - top - below - (gap if below else 0)
        panel_height = (maps_height - n_maps * title_height - (n_maps - 1) * gap) // n_maps
        map_boxes = tuple((margin, top + i * (panel_height + title_height + gap) + title_height,
                           width - 2 * margin, panel_height) for i in range(n_maps))
        panel_title_tops = tuple(box[1] - title_height for box in map_boxes)
        after_maps = top + maps_height + gap
        if legend_height:
            legend_box = (margin, after_maps, width - 2 * margin, legend_height)
        if chart:
            chart_top = after_maps + legend_height + (gap if legend_height else 0) + title_height
            chart_box = (margin, chart_top, width - 2 * margin, bottom - chart_top)
    if any(box[2] < 8 or box[3] < 8 for box in map_boxes) \
            or (chart_box is not None and chart_box[3] < 8):
        raise ValueError(f"frame size {width}x{height} leaves no room for the maps; use a "
                         "larger frame (e.g. 1280x720)")
    return Layout(size=(width, height), title_bar_height=bar_height, date_box=date_box,
                  map_boxes=map_boxes, panel_title_tops=panel_title_tops, legend_box=legend_box,
                  chart_box=chart_box, caption_box=caption_box, credits_top=credits_top)


@dataclass(frozen=True)
class Scene:
    """Everything of a time-lapse that does not change between frames (picklable, for Dask)."""

    layout: Layout
    sizes: Sizes
    base: np.ndarray                                  # (h, w, 3) uint8, static parts drawn
    tiles: tuple[tuple[np.ndarray, ...], ...]         # per map panel, per period: box-sized tile
    date_tiles: tuple[np.ndarray, ...]                # per period: the date box
    intro: np.ndarray | None
    outro: np.ndarray | None
    captions: tuple[str, ...]
    caption_periods: tuple[int, ...]
    chart_x: tuple[float, ...] = ()                   # per period: x pixel of the cursor (in chart)
    chart_lines: tuple[tuple[tuple[int, int, int], tuple[tuple[float, float], ...]], ...] = ()
    chart_plot: Box | None = None                     # plot area inside the frame

    @property
    def n_periods(self) -> int:
        return len(self.date_tiles)


def build_scene(
    maps: Iterable[np.ndarray],
    *,
    period_labels: Sequence[str],
    size: tuple[int, int],
    title: str,
    subtitle: str = "",
    class_maps: Iterable[np.ndarray] | None = None,
    legend: Sequence[LegendEntry] = (),
    class_areas: Mapping[int, Sequence[float]] | None = None,
    period_values: Sequence[float] | None = None,
    captions: Sequence[tuple[int, str]] = (),
    outline: Sequence[np.ndarray] = (),
    markers: Sequence[MapMarker] = (),
    pixel_size_m: float | None = None,
    credits: str = "",
    intro_lines: Sequence[str] | None = None,
    outro_lines: Sequence[str] | None = None,
    map_titles: Sequence[str] = ("True colour", "Land cover"),
    chart: Literal["change", "area"] = "change",
    chart_unit: Literal["ha", "%"] = "ha",
    nodata_shares: Sequence[float] | None = None,
) -> Scene:
    """Lay out a time-lapse and draw everything that does not change between frames.

    Parameters
    ----------
    maps
        Per period, a (y, x, 3) uint8 image (e.g. `true_colour`), all of one shape; consumed one
        at a time (only the scaled tiles are kept).
    period_labels
        The date shown for each period, e.g. "2016".
    size
        (width, height), both even; landscape or vertical.
    class_maps
        Per period, a coloured class map (`colour_classes`) shown beside the map, or None.
    legend
        Classes for the legend (swatch + name); empty for none.
    class_areas
        Class code -> area (ha) per period, for the chart; None for no chart.
    period_values
        x position of each period in the chart (default: 0, 1, 2, ...), e.g. the years.
    chart
        "change": each class's area minus its first-period area; "area": the areas.
    chart_unit
        "ha", or "%" where `class_areas` are shares of each period's mapped area.
    nodata_shares
        Per period, the share (%) of the AOI without data: grey bars under the chart's lines; None for none.
    captions
        (period index, text): the text appears when that period starts, then fades.
    outline
        Rings of the AOI outline, each (n, 2) of (col, row) map pixel coordinates.
    markers
        Places drawn on the maps (mine, origin community, resettlement site).
    pixel_size_m
        Ground size of a map pixel in metres: draws a scale bar and a north arrow (north-up grids).
    credits
        Footer line (data credits).
    intro_lines, outro_lines
        Text of the intro card (below the title) and the outro card; None for no card.
    """
    width, height = check_video_size(size)
    sizes = Sizes.for_size(width, height)
    period_labels = [str(label) for label in period_labels]
    n_periods = len(period_labels)
    if n_periods < 1:
        raise ValueError("a time-lapse needs at least one period")
    legend = tuple(legend)
    marker_kinds = tuple(k for k in MARKER_NAMES if any(m.kind == k for m in markers))
    legend_font = load_font(sizes.legend_font)
    legend_width = _legend_width(width, height, sizes, chart=class_areas is not None,
                                 has_legend=bool(legend or marker_kinds))
    rows = legend_rows(legend, marker_kinds, legend_font, legend_width, sizes.gap)
    row_height = round(text_height(legend_font) * 1.4)
    n_maps = 1 if class_maps is None else 2
    date_font = load_font(sizes.date_font, True)
    date_text = max(["0000–0000", *period_labels], key=lambda label: text_width(date_font, label))  # widest
    try:
        layout = _plan_layout(width, height, sizes, n_maps=n_maps, date_text=date_text,
                              legend_height=len(rows) * row_height, chart=class_areas is not None,
                              captions=bool(captions))
    except ValueError:  # a thumbnail-sized frame: the maps alone (no legend, chart or captions)
        logger.warning("frame size %dx%d is too small for the legend, chart and captions; "
                       "showing the maps only", width, height)
        rows, class_areas, captions = [], None, ()
        layout = _plan_layout(width, height, sizes, n_maps=n_maps, date_text=date_text, legend_height=0,
                              chart=False, captions=False)

    image = Image.new("RGB", (width, height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    draw_title_bar(draw, layout, sizes, title, subtitle)
    for index, (box, top) in enumerate(zip(layout.map_boxes, layout.panel_title_tops)):
        draw.text((box[0] + box[2] // 2, top), map_titles[index],
                  font=load_font(sizes.panel_title_font, True), fill=TEXT_RGB, anchor="ma")
    swatches: dict[int, Box] = {}
    if layout.legend_box is not None:
        swatches = draw_legend(draw, rows, legend_font, layout.legend_box, row_height, sizes)
    chart_x: tuple[float, ...] = ()
    chart_lines: tuple = ()
    plot: Box | None = None
    if class_areas is not None and layout.chart_box is not None:
        values = list(period_values) if period_values is not None else list(range(n_periods))
        if len(values) != n_periods:
            raise ValueError(f"period_values has {len(values)} values for {n_periods} periods")
        plot, chart_x, chart_lines = draw_chart_base(
            draw, layout.chart_box, sizes, legend, class_areas, values, n_periods,
            event_values=[values[p] for p, _ in captions if 0 <= p < n_periods], mode=chart,
            first_label=period_labels[0], tick_labels=period_labels, unit=chart_unit, nodata_shares=nodata_shares)
    draw.line((sizes.margin, layout.caption_box[1], width - sizes.margin, layout.caption_box[1]),
              fill=RULE_RGB, width=max(1, round(2 * sizes.scale)))
    if credits:
        draw.text((sizes.margin, layout.credits_top),
                  fit_text(credits, load_font(sizes.credits_font), width - 2 * sizes.margin),
                  font=load_font(sizes.credits_font), fill=MUTED_TEXT_RGB, anchor="la")
    base = np.array(image)

    panels: list[list[np.ndarray]] = [[] for _ in range(n_maps)]
    sources = [maps] if class_maps is None else [maps, class_maps]
    shape = None
    for panel, (box, series) in enumerate(zip(layout.map_boxes, sources)):
        resample = Image.Resampling.LANCZOS if panel == 0 else Image.Resampling.NEAREST
        for index, map_rgb in enumerate(series):
            map_rgb = _check_map(map_rgb, "class map" if panel else "map", index)
            if shape is None:
                shape = map_rgb.shape[:2]
            elif map_rgb.shape[:2] != shape:
                raise ValueError(f"all maps must share one grid: period {index} is "
                                 f"{map_rgb.shape[:2]}, the first is {shape}")
            panels[panel].append(map_tile(map_rgb, box, resample, sizes, outline, markers,
                                           pixel_size_m if panel == 0 else None,
                                           labels_on=panel == 0))
        if len(panels[panel]) != n_periods:
            raise ValueError(f"got {len(panels[panel])} {'class maps' if panel else 'maps'} for "
                             f"{n_periods} period labels")
    date_font = load_font(sizes.date_font, True)
    date_tiles = tuple(text_tile(layout.date_box, TITLE_BAR_RGB, label, date_font, TEXT_RGB,
                                  sizes.margin) for label in period_labels)
    span = period_labels[0] if n_periods == 1 else f"{period_labels[0]}–{period_labels[-1]}"
    intro = (text_card(width, height, sizes, title, [*intro_lines, span], heading_size=1.0)
             if intro_lines is not None else None)
    outro = (text_card(width, height, sizes, "Credits", list(outro_lines), heading_size=0.7)
             if outro_lines is not None else None)
    caption_periods = tuple(int(p) for p, _ in captions)
    bad = [p for p in caption_periods if not 0 <= p < n_periods]
    if bad:
        raise ValueError(f"caption period indices {bad} are outside 0..{n_periods - 1}")
    return Scene(layout=Layout(**{**layout.__dict__, "legend_swatches": swatches}), sizes=sizes,
                 base=base, tiles=tuple(tuple(p) for p in panels), date_tiles=date_tiles,
                 intro=intro, outro=outro, captions=tuple(text for _, text in captions),
                 caption_periods=caption_periods, chart_x=chart_x, chart_lines=chart_lines,
                 chart_plot=plot)


def _legend_width(width: int, height: int, sizes: Sizes, *, chart: bool, has_legend: bool) -> int:
    if not (chart or has_legend):
        return 0
    return round(width * 0.24) if width >= height else width - 2 * sizes.margin


def render_frame(scene: Scene, spec: FrameSpec) -> np.ndarray:
    """Compose one frame of the scene: (height, width, 3) uint8."""
    if spec.card == "intro":
        return scene.intro if scene.intro is not None else scene.base
    if spec.card == "outro":
        return scene.outro if scene.outro is not None else scene.base
    frame = scene.base.copy()
    layout = scene.layout
    for box, tiles in zip(layout.map_boxes, scene.tiles):
        left, top, width, height = box
        tile = tiles[spec.period]
        if spec.blend > 0:
            tile = _blend(tile, tiles[spec.next], spec.blend)
        frame[top:top + height, left:left + width] = tile
    left, top, width, height = layout.date_box
    frame[top:top + height, left:left + width] = scene.date_tiles[spec.period]
    if scene.chart_plot is not None:
        draw_chart_cursor(frame, scene, spec)
    if spec.captions:
        draw_captions(frame, scene, spec.captions)
    return frame


def _blend(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    w = np.uint16(round(weight * 256))
    return ((a.astype("uint16") * (np.uint16(256) - w) + b.astype("uint16") * w) >> 8).astype("uint8")


def compose_frame(rgb: np.ndarray, classes_rgb: np.ndarray | None, *, size: tuple[int, int],
                  title: str, date_label: str, legend: Sequence[LegendEntry] = (),
                  captions: Sequence[str] = (), credits: str = "", subtitle: str = "",
                  class_areas: Mapping[int, Sequence[float]] | None = None) -> np.ndarray:
    """One frame with one period (for posters, previews and tests): (height, width, 3) uint8.

    `captions` are shown fully opaque (the last two if more); see `build_scene` for the rest.
    """
    scene = build_scene([rgb], period_labels=[date_label], size=size, title=title,
                        subtitle=subtitle, class_maps=None if classes_rgb is None else [classes_rgb],
                        legend=legend, class_areas=class_areas,
                        captions=[(0, text) for text in captions], credits=credits)
    shown = tuple((i, 1.0) for i in range(len(captions)))
    return render_frame(scene, FrameSpec(None, 0, 0, 0.0, shown))


def check_video_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = (int(side) for side in size)
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"video size must be even, got {width}x{height}")
    return width, height


def _check_map(map_rgb: np.ndarray, name: str, index: int) -> np.ndarray:
    map_rgb = np.asarray(map_rgb)
    if map_rgb.ndim != 3 or map_rgb.shape[2] != 3 or map_rgb.dtype != np.uint8 \
            or 0 in map_rgb.shape:
        raise ValueError(f"{name} of period {index} must be a non-empty (y, x, 3) uint8 image, "
                         f"got shape {map_rgb.shape} dtype {map_rgb.dtype}")
    return map_rgb
