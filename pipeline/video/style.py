"""The look of every frame: colours, sizes that scale with the frame, the bundled font and text fitting.

Text uses DejaVu Sans, the open font bundled in matplotlib's wheel (a pinned dependency), so it
renders the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

__all__ = ["Box", "Sizes", "load_font", "text_height", "text_width", "fit_text", "wrap_text", "hex_to_rgb"]


NODATA_RGB = (0x20, 0x20, 0x20)


BACKGROUND_RGB = (0x11, 0x13, 0x17)


TITLE_BAR_RGB = (0x1B, 0x1E, 0x24)


RULE_RGB = (0x2E, 0x33, 0x3B)


TEXT_RGB = (0xFF, 0xFF, 0xFF)


MUTED_TEXT_RGB = (0xA8, 0xAE, 0xB6)


ACCENT_RGB = (0xF5, 0xA6, 0x23)


SWATCH_OUTLINE_RGB = (0x80, 0x86, 0x8E)


HALO_RGB = (0x00, 0x00, 0x00)


REFERENCE_SIDE = 1080  # base sizes below are pixels for a frame whose short side is 1080


MIN_FONT_PX = 8


Box = tuple[int, int, int, int]  # left, top, width, height


@dataclass(frozen=True)
class Sizes:
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
    def for_size(cls, width: int, height: int) -> Sizes:
        scale = min(width, height) / REFERENCE_SIDE

        def px(base: float, least: int = MIN_FONT_PX) -> int:
            return max(least, round(base * scale))

        return cls(scale=scale, margin=px(28, 2), gap=px(12, 1), title_font=px(40),
                   subtitle_font=px(24), date_font=px(64), panel_title_font=px(28),
                   legend_font=px(24), caption_font=px(32), credits_font=px(28),
                   label_font=px(20), axis_font=px(18))


@lru_cache(maxsize=64)
def load_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (bold) at `size` px, from the copy bundled in matplotlib's wheel."""
    import matplotlib  # only for the path of its bundled fonts

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def text_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def text_width(font: ImageFont.FreeTypeFont, text: str) -> int:
    return round(font.getlength(text))


def fit_text(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> str:
    """`text`, shortened with an ellipsis if it is wider than `max_width` px."""
    if text_width(font, text) <= max_width:
        return text
    low, high = 0, len(text)  # longest prefix that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if text_width(font, text[:middle].rstrip() + "…") <= max_width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…" if low else ""


def wrap_text(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Words of `text` in lines no wider than `max_width` px (a too long word is ellipsised)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and text_width(font, candidate) > max_width:
            lines.append(current)
            candidate = word
        current = candidate
    if current:
        lines.append(current)
    return [fit_text(line, font, max_width) for line in lines]


def hex_to_rgb(colour: str, *, what: str) -> tuple[int, int, int]:
    digits = colour[1:] if colour.startswith("#") else ""
    if len(digits) != 6 or any(char not in "0123456789abcdefABCDEF" for char in digits):
        raise ValueError(f"{what}: colour {colour!r} is not of the form '#rrggbb'")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
