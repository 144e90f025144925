"""Publishing aids for a time-lapse: subtitles (.srt), YouTube text with chapters, a poster.

Everything here derives from the same `render.Timing` the video is rendered with, so subtitle
times and chapter timestamps agree with the frames:

- a caption's subtitle runs from its first frame to the frame after its last (milliseconds,
  rounded), i.e. exactly the frames that show it;
- a chapter's timestamp is the first whole second at or after its first frame (YouTube wants
  whole seconds), so the frame shown at the timestamp already shows the event.
"""

from __future__ import annotations

import io as _bytes_io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.io import plain_text
from pipeline.video.frames import Scene, render_frame
from pipeline.video.timeline import FrameSpec, Timing

__all__ = ["POSTER_SIZE", "Chapter", "caption_frames", "subtitles_srt", "chapters",
           "chapter_problems", "youtube_text", "poster_frame", "png_bytes"]

logger = logging.getLogger(__name__)

POSTER_SIZE = (1280, 720)
YOUTUBE_MIN_CHAPTER_SECONDS = 10
YOUTUBE_TITLE_MAX = 100


@dataclass(frozen=True)
class Chapter:
    """A YouTube chapter: starts at `seconds` (whole seconds) with `title`."""

    seconds: int
    title: str

    @property
    def timestamp(self) -> str:
        return _clock(self.seconds)


def caption_frames(timing: Timing, n_periods: int,
                   caption_periods: Sequence[int]) -> list[tuple[int, int]]:
    """(first frame, frame after the last) of each caption, as `render.frame_runs` shows them."""
    end_of_periods = timing.outro_start(n_periods)
    spans = []
    for period in caption_periods:
        start = timing.period_start(period)
        spans.append((start, min(start + timing.caption_frames, end_of_periods)))
    return spans


def subtitles_srt(captions: Sequence[str], spans: Sequence[tuple[int, int]], *, fps: int) -> str:
    """SubRip text: one cue per caption, timed to its frames (`caption_frames`); each caption as plain
    text on one line (`pipeline.io.plain_text`: no tags a player would render, no line that starts a cue)."""
    cues = []
    order = sorted(range(len(captions)), key=lambda i: spans[i])
    for number, index in enumerate(order, start=1):
        start, end = spans[index]
        cues.append(f"{number}\n{_srt_time(start, fps)} --> {_srt_time(end, fps)}\n"
                    f"{plain_text(captions[index])}\n")
    return "\n".join(cues)


def chapters(timing: Timing, n_periods: int, *, opening: str, captions: Sequence[str],
             spans: Sequence[tuple[int, int]], credits: str = "Credits") -> list[Chapter]:
    """00:00 `opening`, then one chapter at each caption (captions starting in the same second
    share one), then `credits` at the outro card where it lasts the 10 s of a YouTube chapter (a
    shorter card belongs to the chapter before it)."""
    found = [Chapter(0, opening)]
    for start, text in sorted(zip((s for s, _ in spans), captions)):
        second = _ceil_seconds(start, timing.fps)
        if second == found[-1].seconds:
            title = text if found[-1].title == opening and second == 0 else \
                f"{found[-1].title}; {text}"
            found[-1] = Chapter(second, title)
        else:
            found.append(Chapter(second, text))
    if timing.outro_frames:  # a chapter of its own only if YouTube would keep it (>= 10 s)
        second = _ceil_seconds(timing.outro_start(n_periods), timing.fps)
        end = timing.frame_count(n_periods) / timing.fps
        if second > found[-1].seconds and end - second >= YOUTUBE_MIN_CHAPTER_SECONDS:
            found.append(Chapter(second, credits))
    return found


def chapter_problems(found: Sequence[Chapter], *, total_seconds: float) -> list[str]:
    """Why YouTube would not build chapters from these timestamps (empty when it will)."""
    problems = []
    if len(found) < 3:
        problems.append(f"YouTube needs at least 3 chapters, there are {len(found)}")
    ends = [c.seconds for c in found[1:]] + [total_seconds]
    short = [c.timestamp for c, end in zip(found, ends) if end - c.seconds < YOUTUBE_MIN_CHAPTER_SECONDS]
    if short:
        problems.append(f"chapters shorter than {YOUTUBE_MIN_CHAPTER_SECONDS} s at {', '.join(short)} "
                        "(lengthen video.seconds_per_period or video.caption_seconds)")
    return problems


def youtube_text(*, title: str, summary: str, captions: Sequence[str], sources: Sequence[str],
                 found: Sequence[Chapter], notes: Sequence[str] = ()) -> str:
    """The text to paste into YouTube: the title, then the description with the events, the
    sources and the chapter timestamps (YouTube builds chapters from them). Every text is plain, on one
    line (`pipeline.io.plain_text`): YouTube refuses < and > in titles and descriptions."""
    title, summary = plain_text(title), plain_text(summary)
    captions, sources = [plain_text(t) for t in captions], [plain_text(s) for s in sources]
    found = [Chapter(c.seconds, plain_text(c.title)) for c in found]
    notes = [plain_text(n) for n in notes]
    if len(title) > YOUTUBE_TITLE_MAX:
        title = title[:YOUTUBE_TITLE_MAX - 1].rstrip() + "…"
    lines = ["TITLE", title, "", "DESCRIPTION", summary, ""]
    if captions:
        lines += ["Events:", *[f"- {text}" for text in captions], ""]
    lines += ["Sources:", *[f"- {source}" for source in dict.fromkeys(sources) if source], ""]
    lines += ["Chapters:", *[f"{c.timestamp} {c.title}" for c in found]]
    if notes:
        lines += ["", "NOTES (not for YouTube)", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def poster_frame(scene: Scene) -> np.ndarray:
    """A thumbnail: the last period, with the captions of the events up to it fully shown."""
    last = scene.n_periods - 1
    shown = tuple((i, 1.0) for i, period in enumerate(scene.caption_periods) if period <= last)
    return render_frame(scene, FrameSpec(None, last, last, 0.0, shown))


def png_bytes(frame: np.ndarray) -> bytes:
    """The frame as PNG file content."""
    buffer = _bytes_io.BytesIO()
    Image.fromarray(np.asarray(frame)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _srt_time(frame: int, fps: int) -> str:
    milliseconds = (frame * 1000 * 2 + fps) // (2 * fps)  # round half up, integers only
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def _ceil_seconds(frame: int, fps: int) -> int:
    return -(-frame // fps)


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
