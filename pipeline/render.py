"""Frames and the time-lapse video: NumPy + Pillow composition, rendered on Dask, streamed to H.264.

A video is a `Scene` (everything that does not change between frames: the layout, the static parts
drawn once into a base frame, each period's map tiles already scaled and annotated, the intro and
outro cards) played along a `Timing` (frames per second, hold per period, cross-fade, intro, outro,
caption times). A frame is described by a small hashable `FrameSpec`; `frame_runs` turns the timing
into runs of identical frames, so a period's held frame is composed once and repeated, and only the
distinct frames (cross-fade steps, caption fades) are composed, in parallel on Dask, in a bounded
window, and streamed in order to the encoder (`pipeline.encode`). Memory does not grow with the
number of frames.

Landscape frames (16:9 presets) show the title bar (title and subtitle left, date right), the map
panels side by side (true colour and, when given, the class map), a sidebar with the class legend,
the marker legend and a chart of class areas whose cursor moves with the date, a caption band and a
credits footer. Vertical frames (Shorts) stack the same parts. Maps are letter-boxed, never
stretched; the layout depends only on the frame size and the maps' shape, so nothing jumps.

Text uses DejaVu Sans, the open font bundled in matplotlib's wheel (a pinned dependency), so it
renders the same on every machine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "LegendEntry",
    "MapMarker",
    "Timing",
    "FrameSpec",
    "Scene",
    "PRESETS",
    "true_colour",
    "colour_classes",
    "build_scene",
    "frame_runs",
    "frame_count",
    "render_frame",
    "compose_frame",
]

logger = logging.getLogger(__name__)

NODATA_RGB = (0x20, 0x20, 0x20)
BACKGROUND_RGB = (0x11, 0x13, 0x17)
TITLE_BAR_RGB = (0x1B, 0x1E, 0x24)
RULE_RGB = (0x2E, 0x33, 0x3B)
TEXT_RGB = (0xFF, 0xFF, 0xFF)
MUTED_TEXT_RGB = (0xA8, 0xAE, 0xB6)
ACCENT_RGB = (0xF5, 0xA6, 0x23)
SWATCH_OUTLINE_RGB = (0x80, 0x86, 0x8E)
HALO_RGB = (0x00, 0x00, 0x00)

PRESETS: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "4k": (3840, 2160),
    "vertical": (1080, 1920),
}
REFERENCE_SIDE = 1080  # base sizes below are pixels for a frame whose short side is 1080
MIN_FONT_PX = 8
CAPTION_LINES = 2  # fixed caption band, so the layout does not change with the captions
CAPTION_FADE_IN_SECONDS = 0.25
CAPTION_FADE_OUT_SECONDS = 0.5
Box = tuple[int, int, int, int]  # left, top, width, height
MarkerKind = Literal["mine", "origin", "site"]
MARKER_NAMES: dict[str, str] = {"mine": "mine", "origin": "origin community",
                                 "site": "resettlement site"}


@dataclass(frozen=True)
class LegendEntry:
    """One land-cover class: its code in the class map, its name and its colour ("#rrggbb")."""

    code: int
    name: str
    colour: str

    def __post_init__(self) -> None:
        if not 0 <= self.code <= 255:
            raise ValueError(f"legend entry {self.name!r}: code {self.code} is outside 0..255 "
                             "(class maps are uint8)")
        _hex_to_rgb(self.colour, what=f"legend entry {self.name!r}")

    @property
    def rgb(self) -> tuple[int, int, int]:
        return _hex_to_rgb(self.colour, what=f"legend entry {self.name!r}")


@dataclass(frozen=True)
class MapMarker:
    """A place on the maps, in pixel coordinates of the map arrays ((0, 0) = top-left corner).

    `radius_px` > 0 draws a generalised place: a hollow circle of that radius, no point.
    """

    col: float
    row: float
    label: str
    kind: MarkerKind
    radius_px: float = 0.0


# --------------------------------------------------------------------------- map colouring

def true_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray, *,
                vmin: float, vmax: float) -> np.ndarray:
    """True-colour (or any three-band) image from three reflectance bands.

    Returns (y, x, 3) uint8: a linear stretch of [vmin, vmax] to [0, 255], clipped outside it.
    A pixel that is NaN in any band is black. Use one vmin/vmax for the whole series so that
    frames are comparable (no flicker); choosing them is the caller's job.
    """
    if not vmax > vmin:
        raise ValueError(f"true_colour needs vmax > vmin, got vmin={vmin}, vmax={vmax}")
    bands = [np.asarray(band) for band in (red, green, blue)]
    if bands[0].ndim != 2 or any(band.shape != bands[0].shape for band in bands):
        shapes = ", ".join(str(band.shape) for band in bands)
        raise ValueError(f"true_colour needs three (y, x) bands of one shape, got {shapes}")
    stack = np.stack(bands, axis=-1).astype("float32")
    scaled = (stack - np.float32(vmin)) * np.float32(255.0 / (vmax - vmin))
    missing = np.isnan(scaled).any(axis=-1)
    out = np.rint(np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255)).astype("uint8")
    out[missing] = 0
    return out


def colour_classes(class_map: np.ndarray, legend: Sequence[LegendEntry], *,
                   nodata: int = 255) -> np.ndarray:
    """Colour a class map with its legend.

    Returns (y, x, 3) uint8; `nodata` and codes not in the legend are dark grey (#202020).
    """
    class_map = np.asarray(class_map)
    if class_map.ndim != 2 or not np.issubdtype(class_map.dtype, np.integer):
        raise ValueError(f"colour_classes needs a (y, x) integer class map, got shape "
                         f"{class_map.shape} dtype {class_map.dtype}")
    lut = np.empty((256, 3), dtype="uint8")
    lut[:] = NODATA_RGB
    for entry in legend:
        lut[entry.code] = entry.rgb
    if 0 <= nodata <= 255:
        lut[nodata] = NODATA_RGB
    if class_map.dtype == np.uint8:
        return lut[class_map]
    codes = class_map.astype("int64")
    outside = (codes < 0) | (codes > 255)
    out = lut[np.where(outside, 0, codes)]
    out[outside] = NODATA_RGB
    return out


# --------------------------------------------------------------------------- timing

@dataclass(frozen=True)
class Timing:
    """When each frame shows what. All counts are whole frames at `fps`.

    The video is: intro card (`intro_frames`), then per period a hold (`hold_frames`) and, between
    two periods, a cross-fade (`fade_frames`), then the outro card (`outro_frames`):

        frames = intro + periods * hold + (periods - 1) * fade + outro

    with hold = max(1, round(fps * seconds_per_period)), fade = round(fps * crossfade_seconds),
    intro = round(fps * intro_seconds), outro = round(fps * outro_seconds). A caption starts at
    the first hold frame of its period, fades in over round(fps * 0.25) frames, stays until
    round(fps * caption_seconds) frames after its start, then fades out over round(fps * 0.5).
    """

    fps: int
    seconds_per_period: float
    crossfade_seconds: float = 0.0
    intro_seconds: float = 0.0
    outro_seconds: float = 0.0
    caption_seconds: float = 3.0

    def __post_init__(self) -> None:
        if not (isinstance(self.fps, int | np.integer) and self.fps > 0):
            raise ValueError(f"fps must be a positive integer, got {self.fps!r}")
        for name in ("seconds_per_period", "crossfade_seconds", "intro_seconds", "outro_seconds",
                     "caption_seconds"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def hold_frames(self) -> int:
        return max(1, round(self.fps * self.seconds_per_period))

    @property
    def fade_frames(self) -> int:
        return round(self.fps * self.crossfade_seconds)

    @property
    def intro_frames(self) -> int:
        return round(self.fps * self.intro_seconds)

    @property
    def outro_frames(self) -> int:
        return round(self.fps * self.outro_seconds)

    @property
    def caption_fade_in(self) -> int:
        return max(1, round(self.fps * CAPTION_FADE_IN_SECONDS))

    @property
    def caption_fade_out(self) -> int:
        return max(1, round(self.fps * CAPTION_FADE_OUT_SECONDS))

    @property
    def caption_frames(self) -> int:
        """Frames a caption is shown, fades included."""
        return max(self.caption_fade_in, round(self.fps * self.caption_seconds)) \
            + self.caption_fade_out

    def period_start(self, index: int) -> int:
        """Index of the first (hold) frame of period `index`."""
        return self.intro_frames + index * (self.hold_frames + self.fade_frames)

    def outro_start(self, n_periods: int) -> int:
        return self.frame_count(n_periods) - self.outro_frames

    def frame_count(self, n_periods: int) -> int:
        if n_periods < 1:
            raise ValueError(f"a time-lapse needs at least one period, got {n_periods}")
        return (self.intro_frames + n_periods * self.hold_frames
                + (n_periods - 1) * self.fade_frames + self.outro_frames)

    def caption_alpha(self, start: int, frame: int) -> float:
        """Opacity (0..1) of a caption starting at frame `start`, at `frame`."""
        age = frame - start
        if age < 0 or age >= self.caption_frames:
            return 0.0
        fade_in = min(1.0, (age + 1) / self.caption_fade_in)
        fade_out = min(1.0, (self.caption_frames - age) / (self.caption_fade_out + 1))
        return round(min(fade_in, fade_out), 4)


def frame_count(n_periods: int, *, fps: int, seconds_per_period: float,
                crossfade_seconds: float = 0.0, intro_seconds: float = 0.0,
                outro_seconds: float = 0.0) -> int:
    """Frames of a time-lapse of `n_periods` periods (see `Timing` for the formula)."""
    return Timing(fps=fps, seconds_per_period=seconds_per_period,
                  crossfade_seconds=crossfade_seconds, intro_seconds=intro_seconds,
                  outro_seconds=outro_seconds).frame_count(n_periods)


class FrameSpec(NamedTuple):
    """What one frame shows: a card, or period `period` blended towards `next` by `blend`
    (0 = only `period`), with captions as (caption index, opacity)."""

    card: Literal["intro", "outro"] | None
    period: int = 0
    next: int = 0
    blend: float = 0.0
    captions: tuple[tuple[int, float], ...] = ()


def frame_runs(timing: Timing, n_periods: int,
               caption_periods: Sequence[int] = ()) -> Iterator[tuple[FrameSpec, int]]:
    """The frames of the video as runs of identical frames: (spec, how many times), in order.

    `caption_periods[i]` is the period index at which caption i appears.
    """
    starts = [timing.period_start(p) for p in caption_periods]
    outro = timing.outro_start(n_periods)
    step = timing.hold_frames + timing.fade_frames
    previous, count = None, 0
    for frame in range(timing.frame_count(n_periods)):
        if frame < timing.intro_frames:
            spec = FrameSpec("intro")
        elif frame >= outro:
            spec = FrameSpec("outro")
        else:
            period, offset = divmod(frame - timing.intro_frames, step)
            captions = tuple((i, alpha) for i, start in enumerate(starts)
                             if (alpha := timing.caption_alpha(start, frame)) > 0)
            if offset < timing.hold_frames:
                spec = FrameSpec(None, period, period, 0.0, captions)
            else:
                blend = round((offset - timing.hold_frames + 1) / (timing.fade_frames + 1), 4)
                spec = FrameSpec(None, period, period + 1, blend, captions)
        if spec == previous:
            count += 1
            continue
        if previous is not None:
            yield previous, count
        previous, count = spec, 1
    if previous is not None:
        yield previous, count


# --------------------------------------------------------------------------- layout

@dataclass(frozen=True)
class _Sizes:
    """Pixel sizes for one frame (fonts and spacing scale with the frame's short side)."""

    scale: float
    margin: int
    gap: int
    title_font: int
    subtitle_font: int
    date_font: int
    panel_title_font: int
    legend_font: int
    caption_font: int
    credits_font: int
    label_font: int
    axis_font: int

    @classmethod
    def for_size(cls, width: int, height: int) -> _Sizes:
        scale = min(width, height) / REFERENCE_SIDE

        def px(base: float, least: int = MIN_FONT_PX) -> int:
            return max(least, round(base * scale))

        return cls(scale=scale, margin=px(28, 2), gap=px(12, 1), title_font=px(40),
                   subtitle_font=px(24), date_font=px(64), panel_title_font=px(28),
                   legend_font=px(24), caption_font=px(32), credits_font=px(18),
                   label_font=px(20), axis_font=px(18))


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


def _plan_layout(width: int, height: int, sizes: _Sizes, *, n_maps: int, legend_height: int,
                 chart: bool, captions: bool = True) -> Layout:
    margin, gap = sizes.margin, sizes.gap
    bar_height = max(_line_height(_font(sizes.date_font, True)),
                     _line_height(_font(sizes.title_font, True))
                     + _line_height(_font(sizes.subtitle_font))) + 2 * gap
    date_width = _text_width(_font(sizes.date_font, True), "0000–0000") + margin
    date_box = (width - margin - date_width, 0, date_width, bar_height)
    credits_top = height - gap - _line_height(_font(sizes.credits_font))
    caption_line = round(_line_height(_font(sizes.caption_font)) * 1.2)
    caption_lines = CAPTION_LINES if captions else 0  # no captions: the maps take the room
    caption_top = credits_top - gap - caption_lines * caption_line
    caption_box = (0, caption_top - gap, width, caption_lines * caption_line + gap)
    top = bar_height + gap
    bottom = caption_box[1] - gap
    title_height = _line_height(_font(sizes.panel_title_font, True)) + gap
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


# --------------------------------------------------------------------------- scene

@dataclass(frozen=True)
class Scene:
    """Everything of a time-lapse that does not change between frames (picklable, for Dask)."""

    layout: Layout
    sizes: _Sizes
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
    width, height = _check_video_size(size)
    sizes = _Sizes.for_size(width, height)
    period_labels = [str(label) for label in period_labels]
    n_periods = len(period_labels)
    if n_periods < 1:
        raise ValueError("a time-lapse needs at least one period")
    legend = tuple(legend)
    marker_kinds = tuple(k for k in MARKER_NAMES if any(m.kind == k for m in markers))
    legend_font = _font(sizes.legend_font)
    legend_width = _legend_width(width, height, sizes, chart=class_areas is not None,
                                 has_legend=bool(legend or marker_kinds))
    rows = _legend_rows(legend, marker_kinds, legend_font, legend_width, sizes.gap)
    row_height = round(_line_height(legend_font) * 1.4)
    n_maps = 1 if class_maps is None else 2
    try:
        layout = _plan_layout(width, height, sizes, n_maps=n_maps,
                              legend_height=len(rows) * row_height, chart=class_areas is not None,
                              captions=bool(captions))
    except ValueError:  # a thumbnail-sized frame: the maps alone (no legend, chart or captions)
        logger.warning("frame size %dx%d is too small for the legend, chart and captions; "
                       "showing the maps only", width, height)
        rows, class_areas, captions = [], None, ()
        layout = _plan_layout(width, height, sizes, n_maps=n_maps, legend_height=0, chart=False,
                              captions=False)

    image = Image.new("RGB", (width, height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    _draw_title_bar(draw, layout, sizes, title, subtitle)
    for index, (box, top) in enumerate(zip(layout.map_boxes, layout.panel_title_tops)):
        draw.text((box[0] + box[2] // 2, top), map_titles[index],
                  font=_font(sizes.panel_title_font, True), fill=TEXT_RGB, anchor="ma")
    swatches: dict[int, Box] = {}
    if layout.legend_box is not None:
        swatches = _draw_legend(draw, rows, legend_font, layout.legend_box, row_height, sizes)
    chart_x: tuple[float, ...] = ()
    chart_lines: tuple = ()
    plot: Box | None = None
    if class_areas is not None and layout.chart_box is not None:
        values = list(period_values) if period_values is not None else list(range(n_periods))
        if len(values) != n_periods:
            raise ValueError(f"period_values has {len(values)} values for {n_periods} periods")
        plot, chart_x, chart_lines = _draw_chart_base(
            draw, layout.chart_box, sizes, legend, class_areas, values, n_periods,
            event_values=[values[p] for p, _ in captions if 0 <= p < n_periods], mode=chart,
            first_label=period_labels[0])
    draw.line((sizes.margin, layout.caption_box[1], width - sizes.margin, layout.caption_box[1]),
              fill=RULE_RGB, width=max(1, round(2 * sizes.scale)))
    if credits:
        draw.text((sizes.margin, layout.credits_top),
                  _fit_text(credits, _font(sizes.credits_font), width - 2 * sizes.margin),
                  font=_font(sizes.credits_font), fill=MUTED_TEXT_RGB, anchor="la")
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
            panels[panel].append(_map_tile(map_rgb, box, resample, sizes, outline, markers,
                                           pixel_size_m if panel == 0 else None,
                                           labels_on=panel == 0))
        if len(panels[panel]) != n_periods:
            raise ValueError(f"got {len(panels[panel])} {'class maps' if panel else 'maps'} for "
                             f"{n_periods} period labels")
    date_font = _font(sizes.date_font, True)
    date_tiles = tuple(_text_tile(layout.date_box, TITLE_BAR_RGB, label, date_font, TEXT_RGB,
                                  sizes.margin) for label in period_labels)
    span = period_labels[0] if n_periods == 1 else f"{period_labels[0]}–{period_labels[-1]}"
    intro = (_card(width, height, sizes, title, [*intro_lines, span], heading_size=1.0)
             if intro_lines is not None else None)
    outro = (_card(width, height, sizes, "Credits", list(outro_lines), heading_size=0.7)
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


def _legend_width(width: int, height: int, sizes: _Sizes, *, chart: bool, has_legend: bool) -> int:
    if not (chart or has_legend):
        return 0
    return round(width * 0.24) if width >= height else width - 2 * sizes.margin


def _draw_title_bar(draw: ImageDraw.ImageDraw, layout: Layout, sizes: _Sizes, title: str,
                    subtitle: str) -> None:
    width = layout.size[0]
    draw.rectangle((0, 0, width, layout.title_bar_height - 1), fill=TITLE_BAR_RGB)
    room = layout.date_box[0] - 2 * sizes.margin
    title_font, subtitle_font = _font(sizes.title_font, True), _font(sizes.subtitle_font)
    middle = layout.title_bar_height // 2
    if subtitle:
        draw.text((sizes.margin, middle), _fit_text(title, title_font, room), font=title_font,
                  fill=TEXT_RGB, anchor="ls")
        draw.text((sizes.margin, middle + sizes.gap // 2), _fit_text(subtitle, subtitle_font, room),
                  font=subtitle_font, fill=MUTED_TEXT_RGB, anchor="lt")
    else:
        draw.text((sizes.margin, middle), _fit_text(title, title_font, room), font=title_font,
                  fill=TEXT_RGB, anchor="lm")


def _text_tile(box: Box, background: tuple[int, int, int], text: str,
               font: ImageFont.FreeTypeFont, fill: tuple[int, int, int], margin: int) -> np.ndarray:
    """The box filled with `background`, `text` right-aligned and vertically centred."""
    tile = Image.new("RGB", box[2:], background)
    ImageDraw.Draw(tile).text((box[2] - margin, box[3] // 2), text, font=font, fill=fill,
                              anchor="rm")
    return np.asarray(tile)


def _card(width: int, height: int, sizes: _Sizes, heading: str, lines: Sequence[str], *,
          heading_size: float) -> np.ndarray:
    """A full-frame text card: a heading, an accent rule, then the lines, centred."""
    image = Image.new("RGB", (width, height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    room = width - 4 * sizes.margin
    heading_font = _font(max(MIN_FONT_PX, round(72 * sizes.scale * heading_size)), True)
    line_font = _font(max(MIN_FONT_PX, round(34 * sizes.scale)))
    wrapped = [part for line in lines for part in _wrap(line, line_font, room)]
    heading_lines = _wrap(heading, heading_font, room)
    heading_height = len(heading_lines) * round(_line_height(heading_font) * 1.1)
    line_height = round(_line_height(line_font) * 1.35)
    total = heading_height + 3 * sizes.gap + len(wrapped) * line_height
    y = max(sizes.margin, (height - total) // 2)
    for line in heading_lines:
        draw.text((width // 2, y), line, font=heading_font, fill=TEXT_RGB, anchor="ma")
        y += round(_line_height(heading_font) * 1.1)
    rule = round(120 * sizes.scale)
    y += sizes.gap
    draw.rectangle((width // 2 - rule // 2, y, width // 2 + rule // 2,
                    y + max(2, round(4 * sizes.scale))), fill=ACCENT_RGB)
    y += 2 * sizes.gap
    for index, line in enumerate(wrapped):
        draw.text((width // 2, y), line, font=line_font,
                  fill=TEXT_RGB if index == len(wrapped) - 1 and heading_size == 1.0
                  else MUTED_TEXT_RGB, anchor="ma")
        y += line_height
    return np.asarray(image)


def _map_tile(map_rgb: np.ndarray, box: Box, resample: Image.Resampling, sizes: _Sizes,
              outline: Sequence[np.ndarray], markers: Sequence[MapMarker],
              pixel_size_m: float | None, labels_on: bool = True) -> np.ndarray:
    """The map scaled into the box keeping its aspect, centred, with its overlays drawn."""
    _, _, box_width, box_height = box
    map_height, map_width = map_rgb.shape[:2]
    scale = min(box_width / map_width, box_height / map_height)
    new_width = min(box_width, max(1, round(map_width * scale)))
    new_height = min(box_height, max(1, round(map_height * scale)))
    left, top = (box_width - new_width) // 2, 0  # top-aligned, under the panel title
    tile = Image.new("RGB", (box_width, box_height), BACKGROUND_RGB)
    image = Image.fromarray(map_rgb)
    image = (image.resize((new_width, new_height), resample=resample)
             if (new_width, new_height) != image.size else image.copy())
    draw = ImageDraw.Draw(image)  # overlays are drawn on the map itself: clipped to it
    sx, sy = new_width / map_width, new_height / map_height

    def to_tile(col: float, row: float) -> tuple[float, float]:
        return col * sx, row * sy

    line = max(2, round(3 * sizes.scale))
    for ring in outline:
        points = [to_tile(c, r) for c, r in np.asarray(ring, dtype="float64")]
        if len(points) >= 2:
            draw.line(points, fill=HALO_RGB, width=line + 2, joint="curve")
            draw.line(points, fill=TEXT_RGB, width=line, joint="curve")
    label_font = _font(sizes.label_font, True)
    picture = (0, 0, new_width, new_height)
    placed: list[tuple[float, float, float, float]] = []  # boxes taken by symbols and labels
    labels = []
    for marker in markers:
        x, y = to_tile(marker.col, marker.row)
        if not (picture[0] <= x <= picture[2] and picture[1] <= y <= picture[3]):
            continue
        radius = max(6, round(11 * sizes.scale))
        if marker.radius_px > 0:
            ring = max(radius, marker.radius_px * sx)
            draw.ellipse((x - ring, y - ring, x + ring, y + ring), outline=HALO_RGB, width=line + 2)
            draw.ellipse((x - ring, y - ring, x + ring, y + ring), outline=TEXT_RGB, width=line)
            radius = ring
        else:
            _draw_marker(draw, marker.kind, x, y, radius, sizes)
        placed.append((x - radius, y - radius, x + radius, y + radius))
        if marker.label and labels_on:
            labels.append((x, y, radius, marker.label))
    for x, y, radius, label in labels:
        _place_label(draw, label, x, y, radius, label_font, picture, placed, sizes)
    if pixel_size_m:
        _draw_scale_bar(draw, (0, 0, new_width, new_height), map_width * pixel_size_m, sizes)
        _draw_north_arrow(draw, (0, 0, new_width, new_height), sizes)
    tile.paste(image, (left, top))
    return np.asarray(tile)


def _place_label(draw: ImageDraw.ImageDraw, label: str, x: float, y: float, radius: float,
                 font: ImageFont.FreeTypeFont, picture: tuple[int, int, int, int],
                 placed: list[tuple[float, float, float, float]], sizes: _Sizes) -> None:
    """Draw a marker's label right, left, above or below it: the first spot inside the map that
    overlaps no symbol or label drawn so far (else the least bad one)."""
    text = _fit_text(label, font, max(1, (picture[2] - picture[0]) // 2))
    width, height = _text_width(font, text), _line_height(font)
    pad = sizes.gap // 2 + radius
    spots = [(x + pad, y - height / 2), (x - pad - width, y - height / 2),
             (x - width / 2, y - pad - height), (x - width / 2, y + pad)]

    def score(spot: tuple[float, float]) -> tuple[int, int]:
        box = (spot[0], spot[1], spot[0] + width, spot[1] + height)
        outside = not (box[0] >= picture[0] and box[1] >= picture[1] and box[2] <= picture[2]
                       and box[3] <= picture[3])
        overlaps = sum(1 for other in placed if box[0] < other[2] and other[0] < box[2]
                       and box[1] < other[3] and other[1] < box[3])
        return int(outside), overlaps

    best = min(spots, key=score)
    placed.append((best[0], best[1], best[0] + width, best[1] + height))
    draw.text(best, text, font=font, fill=TEXT_RGB, anchor="lt",
              stroke_width=max(1, round(3 * sizes.scale)), stroke_fill=HALO_RGB)


def _draw_marker(draw: ImageDraw.ImageDraw, kind: str, x: float, y: float, radius: float,
                 sizes: _Sizes) -> None:
    halo = max(1, round(2 * sizes.scale))
    if kind == "mine":
        shape = [(x, y - radius), (x + radius, y + radius * 0.8), (x - radius, y + radius * 0.8)]
        draw.polygon(shape, fill=ACCENT_RGB, outline=HALO_RGB, width=halo)
    elif kind == "origin":
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=TEXT_RGB,
                     outline=HALO_RGB, width=halo)
    else:
        r = radius * 0.85
        draw.rectangle((x - r, y - r, x + r, y + r), fill=(0x4F, 0xC3, 0xF7), outline=HALO_RGB,
                       width=halo)


def _draw_scale_bar(draw: ImageDraw.ImageDraw, picture: Box, map_width_m: float,
                    sizes: _Sizes) -> None:
    left, top, width, height = picture
    target = map_width_m * 0.22
    exponent = math.floor(math.log10(target))
    length_m = max(m * 10 ** exponent for m in (1, 2, 5) if m * 10 ** exponent <= target)
    length_px = round(width * length_m / map_width_m)
    pad = sizes.gap + sizes.margin // 2
    x0, y1 = left + pad, top + height - pad
    bar = max(4, round(8 * sizes.scale))
    half = length_px // 2
    draw.rectangle((x0 - 2, y1 - bar - 2, x0 + length_px + 2, y1 + 2), fill=HALO_RGB)
    draw.rectangle((x0, y1 - bar, x0 + half, y1), fill=TEXT_RGB)
    draw.rectangle((x0 + half, y1 - bar, x0 + length_px, y1), fill=(0x40, 0x40, 0x40))
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    draw.text((x0, y1 - bar - sizes.gap // 2), label, font=_font(sizes.label_font, True),
              fill=TEXT_RGB, anchor="ld", stroke_width=max(1, round(3 * sizes.scale)),
              stroke_fill=HALO_RGB)


def _draw_north_arrow(draw: ImageDraw.ImageDraw, picture: Box, sizes: _Sizes) -> None:
    left, top, width, _ = picture
    pad = sizes.gap + sizes.margin // 2
    size = max(10, round(26 * sizes.scale))
    cx = left + width - pad - size // 2
    label_font = _font(sizes.label_font, True)
    label_height = _line_height(label_font)
    tip = top + pad + label_height
    arrow = [(cx, tip), (cx + size / 2, tip + size * 1.4), (cx, tip + size), (cx - size / 2,
                                                                            tip + size * 1.4)]
    draw.polygon(arrow, fill=TEXT_RGB, outline=HALO_RGB, width=max(1, round(2 * sizes.scale)))
    draw.text((cx, tip - sizes.gap // 3), "N", font=label_font, fill=TEXT_RGB, anchor="md",
              stroke_width=max(1, round(3 * sizes.scale)), stroke_fill=HALO_RGB)


def _legend_rows(legend: Sequence[LegendEntry], marker_kinds: Sequence[str],
                 font: ImageFont.FreeTypeFont, width: int, gap: int) -> list[list[tuple]]:
    """Flow legend items (swatch or marker symbol + name) into rows no wider than `width`;
    the class legend and the marker legend start on separate rows."""
    if width <= 0:
        return []
    swatch = _swatch_size(font)
    spacing = 3 * gap
    rows: list[list[tuple]] = []
    for group in ([("class", e, e.name) for e in legend],
                  [("marker", k, MARKER_NAMES[k]) for k in marker_kinds]):
        if not group:
            continue
        rows.append([])
        used = 0
        for kind, item, name in group:
            name = _fit_text(name, font, max(1, width - swatch - gap))
            item_width = swatch + gap + _text_width(font, name)
            needed = item_width if not rows[-1] else used + spacing + item_width
            if rows[-1] and needed > width:
                rows.append([])
                needed = item_width
            rows[-1].append((kind, item, name, item_width))
            used = needed
    return rows


def _draw_legend(draw: ImageDraw.ImageDraw, rows: list[list[tuple]], font: ImageFont.FreeTypeFont,
                 box: Box, row_height: int, sizes: _Sizes) -> dict[int, Box]:
    """Draw the rows from the box's top left; returns class code -> swatch box."""
    swatch = _swatch_size(font)
    outline = max(1, round(swatch / 24))
    swatches: dict[int, Box] = {}
    for row_index, row in enumerate(rows):
        middle = box[1] + row_index * row_height + row_height // 2
        x = box[0]
        for kind, item, name, item_width in row:
            top = middle - swatch // 2
            if kind == "class":
                draw.rectangle((x, top, x + swatch - 1, top + swatch - 1), fill=item.rgb,
                               outline=SWATCH_OUTLINE_RGB, width=outline)
                swatches[item.code] = (x, top, swatch, swatch)
            else:
                _draw_marker(draw, item, x + swatch / 2, middle, swatch / 2, sizes)
            draw.text((x + swatch + sizes.gap, middle), name, font=font, fill=TEXT_RGB, anchor="lm")
            x += item_width + 3 * sizes.gap
    return swatches


def _swatch_size(font: ImageFont.FreeTypeFont) -> int:
    return max(4, round(font.size * 0.95))


def _draw_chart_base(draw: ImageDraw.ImageDraw, box: Box, sizes: _Sizes,
                     legend: Sequence[LegendEntry], class_areas: Mapping[int, Sequence[float]],
                     values: Sequence[float], n_periods: int, event_values: Sequence[float],
                     mode: Literal["change", "area"], first_label: str):
    """Axes, the class-area lines (dimmed: the frame draws them bright up to the cursor) and
    event ticks. `mode` "change" plots each class's area minus its area in the first period
    (small classes that change stay visible beside a large stable one); "area" the areas.
    Returns the plot box, the cursor x per period and the lines in frame pixels."""
    left, top, width, height = box
    title_font, axis_font = _font(sizes.panel_title_font, True), _font(sizes.axis_font)
    title = "Area by class (ha)" if mode == "area" else f"Area change since {first_label} (ha)"
    draw.text((left, top - sizes.gap), _fit_text(title, title_font, width), font=title_font,
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
    label_width = max(_text_width(axis_font, f"{t:{sign}.0f}") for t in ticks) + sizes.gap
    axis_height = _line_height(axis_font) + sizes.gap
    plot = (left + label_width, top + sizes.gap, max(8, width - label_width - sizes.gap),
            max(8, height - axis_height - sizes.gap))
    px, py, pw, ph = plot
    low, high = min(values), max(values)
    span = (high - low) or 1.0

    def x_of(value: float) -> float:
        return px + (value - low) / span * pw if high > low else px + pw / 2

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
        draw.text((x_of(values[index]), py + ph + sizes.gap // 2), f"{values[index]:g}",
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


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    return next(m * exponent for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
                if m * exponent >= value)


# --------------------------------------------------------------------------- frames

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
        _draw_chart_cursor(frame, scene, spec)
    if spec.captions:
        _draw_captions(frame, scene, spec.captions)
    return frame


def _blend(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    w = np.uint16(round(weight * 256))
    return ((a.astype("uint16") * (np.uint16(256) - w) + b.astype("uint16") * w) >> 8).astype("uint8")


def _draw_chart_cursor(frame: np.ndarray, scene: Scene, spec: FrameSpec) -> None:
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


def _draw_captions(frame: np.ndarray, scene: Scene, captions: Sequence[tuple[int, float]]) -> None:
    left, top, width, height = scene.layout.caption_box
    sizes = scene.sizes
    region = Image.fromarray(frame[top:top + height, left:left + width])
    draw = ImageDraw.Draw(region)
    font = _font(sizes.caption_font)
    line = round(_line_height(font) * 1.2)
    bar = max(3, round(6 * sizes.scale))
    room = width - 2 * sizes.margin - 3 * bar
    # one line per caption; a lone caption too long for one line wraps onto the second
    lines = ([(part, alpha, row == 0) for index, alpha in captions
              for row, part in enumerate(_wrap(scene.captions[index], font, room)[:CAPTION_LINES])]
             if len(captions) == 1 else
             [(_fit_text(scene.captions[index], font, room), alpha, True)
              for index, alpha in captions])
    for row, (text, alpha, first) in enumerate(lines[-CAPTION_LINES:]):
        y = sizes.gap + row * line + sizes.gap // 2
        colour = tuple(round(b + (t - b) * alpha) for t, b in zip(TEXT_RGB, BACKGROUND_RGB))
        accent = tuple(round(b + (a - b) * alpha) for a, b in zip(ACCENT_RGB, BACKGROUND_RGB))
        if first:
            draw.rectangle((sizes.margin, y + line * 0.12, sizes.margin + bar, y + line * 0.78),
                           fill=accent)
        draw.text((sizes.margin + 3 * bar, y), text, font=font, fill=colour, anchor="la")
    frame[top:top + height, left:left + width] = np.asarray(region)


# --------------------------------------------------------------------------- one frame

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


def _check_video_size(size: tuple[int, int]) -> tuple[int, int]:
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


# --------------------------------------------------------------------------- fonts and text

@lru_cache(maxsize=64)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (bold) at `size` px, from the copy bundled in matplotlib's wheel."""
    import matplotlib  # only for the path of its bundled fonts

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def _text_width(font: ImageFont.FreeTypeFont, text: str) -> int:
    return round(font.getlength(text))


def _fit_text(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> str:
    """`text`, shortened with an ellipsis if it is wider than `max_width` px."""
    if _text_width(font, text) <= max_width:
        return text
    low, high = 0, len(text)  # longest prefix that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if _text_width(font, text[:middle].rstrip() + "…") <= max_width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…" if low else ""


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Words of `text` in lines no wider than `max_width` px (a too long word is ellipsised)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and _text_width(font, candidate) > max_width:
            lines.append(current)
            candidate = word
        current = candidate
    if current:
        lines.append(current)
    return [_fit_text(line, font, max_width) for line in lines]


def _hex_to_rgb(colour: str, *, what: str) -> tuple[int, int, int]:
    digits = colour[1:] if colour.startswith("#") else ""
    if len(digits) != 6 or any(char not in "0123456789abcdefABCDEF" for char in digits):
        raise ValueError(f"{what}: colour {colour!r} is not of the form '#rrggbb'")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
