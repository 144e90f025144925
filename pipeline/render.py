"""Frames and the time-lapse video: NumPy + Pillow composition, streamed to H.264 MP4.

A frame shows one period: a title bar (title left, date right), the true-colour composite and
the land-cover class map side by side (each letter-boxed, never stretched), a legend under the
class map, a band of event captions and a credits line. The layout depends only on the frame
size, the map shapes and the legend, never on the captions, so maps do not jump between frames.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "LegendEntry",
    "true_colour",
    "colour_classes",
    "compose_frame",
    "write_video",
    "timelapse_frames",
    "frame_count",
]

logger = logging.getLogger(__name__)

NODATA_RGB = (0x20, 0x20, 0x20)
BACKGROUND_RGB = (0x11, 0x13, 0x17)
TITLE_BAR_RGB = (0x1B, 0x1E, 0x24)
RULE_RGB = (0x2E, 0x33, 0x3B)
TEXT_RGB = (0xFF, 0xFF, 0xFF)
MUTED_TEXT_RGB = (0xA8, 0xAE, 0xB6)
SWATCH_OUTLINE_RGB = (0x80, 0x86, 0x8E)

REFERENCE_HEIGHT = 1080  # base sizes below are pixels at this frame height
MIN_FONT_PX = 8
CAPTION_LINES = 3  # fixed caption band, so the layout does not change with the captions
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")

Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo"]


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


# --------------------------------------------------------------------------- map colouring

def true_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray, *,
                vmin: float, vmax: float) -> np.ndarray:
    """True-colour image from three reflectance bands.

    Returns (y, x, 3) uint8: a linear stretch of [vmin, vmax] to [0, 255], clipped outside it.
    A pixel that is NaN in any band is black. Use one vmin/vmax for the whole series so that
    frames are comparable; choosing them is the caller's job.
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


# --------------------------------------------------------------------------- frame layout

@dataclass(frozen=True)
class _Sizes:
    """Pixel sizes for one frame height (fonts and spacing scale with the height)."""

    margin: int
    gap: int
    title_font: int
    date_font: int
    panel_title_font: int
    legend_font: int
    caption_font: int
    credits_font: int

    @classmethod
    def for_height(cls, height: int) -> _Sizes:
        scale = height / REFERENCE_HEIGHT

        def font(base: float) -> int:
            return max(MIN_FONT_PX, round(base * scale))

        return cls(margin=max(2, round(28 * scale)), gap=max(1, round(12 * scale)),
                   title_font=font(42), date_font=font(60), panel_title_font=font(30),
                   legend_font=font(26), caption_font=font(27), credits_font=font(18))


def compose_frame(rgb: np.ndarray, classes_rgb: np.ndarray, *, size: tuple[int, int], title: str,
                  date_label: str, legend: Sequence[LegendEntry], captions: Sequence[str] = (),
                  credits: str = "") -> np.ndarray:
    """Compose one video frame.

    Parameters
    ----------
    rgb, classes_rgb
        (y, x, 3) uint8 maps: true colour (see `true_colour`) and land cover (`colour_classes`).
    size
        (width, height) of the frame in pixels; both must be even (H.264 yuv420p).
    title, date_label
        Shown in the title bar: title on the left, date label large on the right.
    legend
        Classes shown as swatch + name under the land-cover panel.
    captions
        Event texts, one per line, in a fixed band of three lines at the bottom; more than
        three are summarised as "... and N more"; too long lines end in an ellipsis.
    credits
        Small footer line (data sources, licence).

    Returns
    -------
    (height, width, 3) uint8 frame.
    """
    width, height = _check_video_size(size)
    maps = [_check_map(rgb, "rgb"), _check_map(classes_rgb, "classes_rgb")]
    sizes = _Sizes.for_height(height)
    margin, gap = sizes.margin, sizes.gap

    image = Image.new("RGB", (width, height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)

    # Title bar: date label right, title left (ellipsised so the two never overlap).
    title_font = _font(sizes.title_font, bold=True)
    date_font = _font(sizes.date_font, bold=True)
    bar_height = _line_height(date_font) + 2 * gap
    draw.rectangle((0, 0, width, bar_height - 1), fill=TITLE_BAR_RGB)
    date_width = _text_width(date_font, date_label)
    draw.text((width - margin, bar_height // 2), date_label, font=date_font, fill=TEXT_RGB,
              anchor="rm")
    title_room = width - 2 * margin - date_width - 2 * margin
    draw.text((margin, bar_height // 2), _fit_text(title, title_font, title_room),
              font=title_font, fill=TEXT_RGB, anchor="lm")

    # Bottom up: credits footer, caption band, then the legend under the class panel.
    credits_font = _font(sizes.credits_font)
    caption_font = _font(sizes.caption_font)
    credits_height = _line_height(credits_font)
    credits_top = height - gap - credits_height
    caption_line = round(_line_height(caption_font) * 1.2)
    caption_top = credits_top - gap - CAPTION_LINES * caption_line
    rule_y = caption_top - gap

    panel_width = (width - 3 * margin) // 2
    panel_lefts = (margin, 2 * margin + panel_width)
    legend_font = _font(sizes.legend_font)
    legend_rows = _legend_rows(legend, legend_font, panel_width, gap)
    legend_row_height = round(_line_height(legend_font) * 1.35)
    legend_height = len(legend_rows) * legend_row_height
    legend_top = rule_y - gap - legend_height

    panel_title_font = _font(sizes.panel_title_font, bold=True)
    panel_title_top = bar_height + gap
    map_top = panel_title_top + _line_height(panel_title_font) + gap
    map_height = legend_top - gap - map_top
    if panel_width < 1 or map_height < 1:
        raise ValueError(f"frame size {width}x{height} leaves no room for the maps; use a "
                         "larger frame (e.g. 1280x720)")

    for left, label, map_rgb, resample in zip(
            panel_lefts, ("True colour", "Land cover"), maps,
            (Image.Resampling.LANCZOS, Image.Resampling.NEAREST)):
        draw.text((left + panel_width // 2, panel_title_top), label, font=panel_title_font,
                  fill=TEXT_RGB, anchor="ma")
        _paste_letterboxed(image, map_rgb, (left, map_top, panel_width, map_height), resample)

    _draw_legend(draw, legend_rows, legend_font, left=panel_lefts[1], width=panel_width,
                 top=legend_top, row_height=legend_row_height, gap=gap)

    draw.line((margin, rule_y, width - margin, rule_y), fill=RULE_RGB,
              width=max(1, round(gap / 6)))
    for row, line in enumerate(_caption_lines(captions)):
        draw.text((margin, caption_top + row * caption_line),
                  _fit_text(line, caption_font, width - 2 * margin), font=caption_font,
                  fill=TEXT_RGB, anchor="la")
    if credits:
        draw.text((margin, credits_top), _fit_text(credits, credits_font, width - 2 * margin),
                  font=credits_font, fill=MUTED_TEXT_RGB, anchor="la")

    return np.asarray(image)


def _check_video_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = (int(side) for side in size)
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"video size must be even, got {width}x{height}")
    return width, height


def _check_map(map_rgb: np.ndarray, name: str) -> np.ndarray:
    map_rgb = np.asarray(map_rgb)
    if map_rgb.ndim != 3 or map_rgb.shape[2] != 3 or map_rgb.dtype != np.uint8 \
            or 0 in map_rgb.shape:
        raise ValueError(f"{name} must be a non-empty (y, x, 3) uint8 image, got shape "
                         f"{map_rgb.shape} dtype {map_rgb.dtype}")
    return map_rgb


def _paste_letterboxed(image: Image.Image, map_rgb: np.ndarray, box: tuple[int, int, int, int],
                       resample: Image.Resampling) -> None:
    """Scale the map to fit (left, top, width, height) keeping its aspect; centre it there."""
    left, top, box_width, box_height = box
    map_height, map_width = map_rgb.shape[:2]
    scale = min(box_width / map_width, box_height / map_height)
    new_width = min(box_width, max(1, round(map_width * scale)))
    new_height = min(box_height, max(1, round(map_height * scale)))
    tile = Image.fromarray(map_rgb)
    if (new_width, new_height) != tile.size:
        tile = tile.resize((new_width, new_height), resample=resample)
    image.paste(tile, (left + (box_width - new_width) // 2, top + (box_height - new_height) // 2))


def _legend_rows(legend: Sequence[LegendEntry], font: ImageFont.FreeTypeFont, width: int,
                 gap: int) -> list[list[tuple[LegendEntry, str, int]]]:
    """Flow legend items (swatch + name) into rows no wider than `width`."""
    swatch = _swatch_size(font)
    spacing = 3 * gap
    rows: list[list[tuple[LegendEntry, str, int]]] = [[]]
    used = 0
    for entry in legend:
        name = _fit_text(entry.name, font, max(1, width - swatch - gap))
        item_width = swatch + gap + _text_width(font, name)
        needed = item_width if not rows[-1] else used + spacing + item_width
        if rows[-1] and needed > width:
            rows.append([])
            needed = item_width
        rows[-1].append((entry, name, item_width))
        used = needed
    return [row for row in rows if row]


def _draw_legend(draw: ImageDraw.ImageDraw, rows: list[list[tuple[LegendEntry, str, int]]],
                 font: ImageFont.FreeTypeFont, *, left: int, width: int, top: int,
                 row_height: int, gap: int) -> None:
    """Draw the rows as one block, centred in the panel; each row starts at the block's left."""
    swatch = _swatch_size(font)
    outline = max(1, round(swatch / 24))
    block_width = max((sum(item[2] for item in row) + 3 * gap * (len(row) - 1) for row in rows),
                      default=0)
    block_left = left + max(0, (width - block_width) // 2)
    for row_index, row in enumerate(rows):
        middle = top + row_index * row_height + row_height // 2
        x = block_left
        for entry, name, item_width in row:
            swatch_top = middle - swatch // 2
            draw.rectangle((x, swatch_top, x + swatch - 1, swatch_top + swatch - 1),
                           fill=entry.rgb, outline=SWATCH_OUTLINE_RGB, width=outline)
            draw.text((x + swatch + gap, middle), name, font=font, fill=TEXT_RGB, anchor="lm")
            x += item_width + 3 * gap


def _swatch_size(font: ImageFont.FreeTypeFont) -> int:
    return max(4, round(font.size * 0.95))


def _caption_lines(captions: Sequence[str]) -> list[str]:
    captions = list(captions)
    if len(captions) <= CAPTION_LINES:
        return captions
    shown = captions[:CAPTION_LINES - 1]
    return [*shown, f"… and {len(captions) - len(shown)} more"]


# --------------------------------------------------------------------------- fonts and text

@lru_cache(maxsize=64)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (bold) at `size` px, from the copy that ships with matplotlib."""
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


def _hex_to_rgb(colour: str, *, what: str) -> tuple[int, int, int]:
    digits = colour[1:] if colour.startswith("#") else ""
    if len(digits) != 6 or any(char not in "0123456789abcdefABCDEF" for char in digits):
        raise ValueError(f"{what}: colour {colour!r} is not of the form '#rrggbb'")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


# --------------------------------------------------------------------------- video

def write_video(frames: Iterable[np.ndarray], path: Path, *, fps: int, preset: Preset = "veryfast",
                crf: int = 20) -> int:
    """Stream frames to an H.264 (libx264, yuv420p, faststart) MP4 at `path`.

    Frames are (h, w, 3) uint8, all of one even size, consumed one at a time. The video is
    written to a temporary file in the same folder and renamed to `path` only once the encoder
    has finished; on any error the temporary file is removed and `path` is left as it was.

    Returns
    -------
    The number of frames written.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not (isinstance(fps, int) and fps > 0):
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    if preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 (lower is better quality), got {crf}")

    frame_iter = iter(frames)
    first = next(frame_iter, None)
    if first is None:
        raise ValueError(f"no frames to write to {path}")
    first = np.asarray(first)
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise ValueError(f"frame 0 must be (h, w, 3) uint8, got shape {first.shape} "
                         f"dtype {first.dtype}")
    height, width = first.shape[:2]
    _check_video_size((width, height))

    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    temp_path = path.with_name(f".{path.stem}.part.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(temp_path), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        quality=None, macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-preset", preset, "-crf", str(crf), "-movflags", "+faststart", "-f", "mp4"],
    )
    n_frames = 0
    try:
        writer.send(None)  # start ffmpeg
        for index, frame in enumerate(chain([first], frame_iter)):
            frame = np.asarray(frame)
            if frame.shape != first.shape or frame.dtype != first.dtype:
                raise ValueError(f"frame {index} has shape {frame.shape} dtype {frame.dtype}, "
                                 f"but frame 0 has shape {first.shape} dtype {first.dtype}; "
                                 "all frames of a video must match")
            writer.send(np.ascontiguousarray(frame))
            n_frames += 1
        writer.close()  # waits for ffmpeg to finish the file
        if not temp_path.is_file() or temp_path.stat().st_size == 0:
            raise RuntimeError(f"ffmpeg wrote nothing for {path}; see its messages above")
        os.replace(temp_path, path)
    except BaseException:
        writer.close()
        temp_path.unlink(missing_ok=True)
        raise
    logger.info("wrote %d frames (%dx%d, %d fps) to %s", n_frames, width, height, fps, path)
    return n_frames


def timelapse_frames(period_frames: Iterable[np.ndarray], *, fps: int,
                     seconds_per_period: float) -> Iterator[np.ndarray]:
    """Yield each period's frame max(1, round(fps * seconds_per_period)) times, lazily, in order."""
    repeats = _repeats(fps, seconds_per_period)
    return chain.from_iterable(repeat(frame, repeats) for frame in period_frames)


def frame_count(n_periods: int, *, fps: int, seconds_per_period: float) -> int:
    """Number of frames `timelapse_frames` yields for `n_periods` periods."""
    if n_periods < 0:
        raise ValueError(f"n_periods must be >= 0, got {n_periods}")
    return n_periods * _repeats(fps, seconds_per_period)


def _repeats(fps: int, seconds_per_period: float) -> int:
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not seconds_per_period >= 0:
        raise ValueError(f"seconds_per_period must be >= 0, got {seconds_per_period}")
    return max(1, round(fps * seconds_per_period))
