"""The map panels: colouring maps, scaling them into their box, and what is drawn on them (AOI outline,
markers and their labels, scale bar, north arrow), and the legend of classes and markers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.video.style import (BACKGROUND_RGB, HALO_RGB, NODATA_RGB, SWATCH_OUTLINE_RGB, TEXT_RGB, ACCENT_RGB,
                                  Box, Sizes, fit_text, hex_to_rgb, load_font, text_height, text_width)

__all__ = ["LegendEntry", "MapMarker", "MARKER_NAMES", "true_colour", "colour_classes", "map_tile", "legend_rows",
           "draw_legend", "draw_marker"]


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
        hex_to_rgb(self.colour, what=f"legend entry {self.name!r}")

    @property
    def rgb(self) -> tuple[int, int, int]:
        return hex_to_rgb(self.colour, what=f"legend entry {self.name!r}")


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


def map_tile(map_rgb: np.ndarray, box: Box, resample: Image.Resampling, sizes: Sizes,
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
    label_font = load_font(sizes.label_font, True)
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
            draw_marker(draw, marker.kind, x, y, radius, sizes)
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
                 placed: list[tuple[float, float, float, float]], sizes: Sizes) -> None:
    """Draw a marker's label right, left, above or below it: the first spot inside the map that
    overlaps no symbol or label drawn so far (else the least bad one)."""
    text = fit_text(label, font, max(1, (picture[2] - picture[0]) // 2))
    width, height = text_width(font, text), text_height(font)
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


def draw_marker(draw: ImageDraw.ImageDraw, kind: str, x: float, y: float, radius: float,
                 sizes: Sizes) -> None:
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
                    sizes: Sizes) -> None:
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
    draw.text((x0, y1 - bar - sizes.gap // 2), label, font=load_font(sizes.label_font, True),
              fill=TEXT_RGB, anchor="ld", stroke_width=max(1, round(3 * sizes.scale)),
              stroke_fill=HALO_RGB)


def _draw_north_arrow(draw: ImageDraw.ImageDraw, picture: Box, sizes: Sizes) -> None:
    left, top, width, _ = picture
    pad = sizes.gap + sizes.margin // 2
    size = max(10, round(26 * sizes.scale))
    cx = left + width - pad - size // 2
    label_font = load_font(sizes.label_font, True)
    label_height = text_height(label_font)
    tip = top + pad + label_height
    arrow = [(cx, tip), (cx + size / 2, tip + size * 1.4), (cx, tip + size), (cx - size / 2,
                                                                            tip + size * 1.4)]
    draw.polygon(arrow, fill=TEXT_RGB, outline=HALO_RGB, width=max(1, round(2 * sizes.scale)))
    draw.text((cx, tip - sizes.gap // 3), "N", font=label_font, fill=TEXT_RGB, anchor="md",
              stroke_width=max(1, round(3 * sizes.scale)), stroke_fill=HALO_RGB)


def legend_rows(legend: Sequence[LegendEntry], marker_kinds: Sequence[str],
                 font: ImageFont.FreeTypeFont, width: int, gap: int) -> list[list[tuple]]:
    """Flow legend items (swatch or marker symbol + name) into rows no wider than `width`;
    the class legend and the marker legend start on separate rows."""
    if width <= 0:
        return []
    swatch = swatch_size(font)
    spacing = 3 * gap
    rows: list[list[tuple]] = []
    for group in ([("class", e, e.name) for e in legend],
                  [("marker", k, MARKER_NAMES[k]) for k in marker_kinds]):
        if not group:
            continue
        rows.append([])
        used = 0
        for kind, item, name in group:
            name = fit_text(name, font, max(1, width - swatch - gap))
            item_width = swatch + gap + text_width(font, name)
            needed = item_width if not rows[-1] else used + spacing + item_width
            if rows[-1] and needed > width:
                rows.append([])
                needed = item_width
            rows[-1].append((kind, item, name, item_width))
            used = needed
    return rows


def draw_legend(draw: ImageDraw.ImageDraw, rows: list[list[tuple]], font: ImageFont.FreeTypeFont,
                 box: Box, row_height: int, sizes: Sizes) -> dict[int, Box]:
    """Draw the rows from the box's top left; returns class code -> swatch box."""
    swatch = swatch_size(font)
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
                draw_marker(draw, item, x + swatch / 2, middle, swatch / 2, sizes)
            draw.text((x + swatch + sizes.gap, middle), name, font=font, fill=TEXT_RGB, anchor="lm")
            x += item_width + 3 * sizes.gap
    return swatches


def swatch_size(font: ImageFont.FreeTypeFont) -> int:
    return max(4, round(font.size * 0.95))
