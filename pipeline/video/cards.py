"""Text parts of a frame: the title bar, the date tile, the caption band, and the intro and outro cards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.video.style import (ACCENT_RGB, BACKGROUND_RGB, MIN_FONT_PX, MUTED_TEXT_RGB, TEXT_RGB, TITLE_BAR_RGB,
                                  Box, Sizes, fit_text, load_font, text_height, wrap_text)

if TYPE_CHECKING:
    from pipeline.video.frames import Layout, Scene

__all__ = ["CAPTION_LINES", "draw_title_bar", "text_tile", "text_card", "draw_captions"]


CAPTION_LINES = 2  # fixed caption band, so the layout does not change with the captions


def draw_title_bar(draw: ImageDraw.ImageDraw, layout: Layout, sizes: Sizes, title: str,
                    subtitle: str) -> None:
    width = layout.size[0]
    draw.rectangle((0, 0, width, layout.title_bar_height - 1), fill=TITLE_BAR_RGB)
    room = layout.date_box[0] - 2 * sizes.margin
    title_font, subtitle_font = load_font(sizes.title_font, True), load_font(sizes.subtitle_font)
    middle = layout.title_bar_height // 2
    if subtitle:
        draw.text((sizes.margin, middle), fit_text(title, title_font, room), font=title_font,
                  fill=TEXT_RGB, anchor="ls")
        draw.text((sizes.margin, middle + sizes.gap // 2), fit_text(subtitle, subtitle_font, room),
                  font=subtitle_font, fill=MUTED_TEXT_RGB, anchor="lt")
    else:
        draw.text((sizes.margin, middle), fit_text(title, title_font, room), font=title_font,
                  fill=TEXT_RGB, anchor="lm")


def text_tile(box: Box, background: tuple[int, int, int], text: str,
               font: ImageFont.FreeTypeFont, fill: tuple[int, int, int], margin: int) -> np.ndarray:
    """The box filled with `background`, `text` right-aligned and vertically centred."""
    tile = Image.new("RGB", box[2:], background)
    ImageDraw.Draw(tile).text((box[2] - margin, box[3] // 2), text, font=font, fill=fill,
                              anchor="rm")
    return np.asarray(tile)


def text_card(width: int, height: int, sizes: Sizes, heading: str, lines: Sequence[str], *,
          heading_size: float) -> np.ndarray:
    """A full-frame text card: a heading, an accent rule, then the lines, centred."""
    image = Image.new("RGB", (width, height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    room = width - 4 * sizes.margin
    heading_font = load_font(max(MIN_FONT_PX, round(72 * sizes.scale * heading_size)), True)
    line_font = load_font(max(MIN_FONT_PX, round(34 * sizes.scale)))
    wrapped = [part for line in lines for part in wrap_text(line, line_font, room)]
    heading_lines = wrap_text(heading, heading_font, room)
    heading_height = len(heading_lines) * round(text_height(heading_font) * 1.1)
    line_height = round(text_height(line_font) * 1.35)
    total = heading_height + 3 * sizes.gap + len(wrapped) * line_height
    y = max(sizes.margin, (height - total) // 2)
    for line in heading_lines:
        draw.text((width // 2, y), line, font=heading_font, fill=TEXT_RGB, anchor="ma")
        y += round(text_height(heading_font) * 1.1)
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


def draw_captions(frame: np.ndarray, scene: Scene, captions: Sequence[tuple[int, float]]) -> None:
    left, top, width, height = scene.layout.caption_box
    sizes = scene.sizes
    region = Image.fromarray(frame[top:top + height, left:left + width])
    draw = ImageDraw.Draw(region)
    font = load_font(sizes.caption_font)
    line = round(text_height(font) * 1.2)
    bar = max(3, round(6 * sizes.scale))
    room = width - 2 * sizes.margin - 3 * bar
    # one line per caption; a lone caption too long for one line wraps onto the second
    lines = ([(part, alpha, row == 0) for index, alpha in captions
              for row, part in enumerate(wrap_text(scene.captions[index], font, room)[:CAPTION_LINES])]
             if len(captions) == 1 else
             [(fit_text(scene.captions[index], font, room), alpha, True)
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
