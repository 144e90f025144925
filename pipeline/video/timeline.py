"""When each frame shows what: the timing of a time-lapse and its frames as runs of identical frames.

A frame is described by a small hashable `FrameSpec`; `frame_runs` turns the timing into runs of
identical frames, so a period's held frame is composed once and repeated, and only the distinct frames
(cross-fade steps, caption fades) are composed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

__all__ = ["Timing", "FrameSpec", "frame_runs", "frame_count"]


CAPTION_FADE_IN_SECONDS = 0.25


CAPTION_FADE_OUT_SECONDS = 0.5


@dataclass(frozen=True)
class Timing:
    """When each frame shows what. All counts are whole frames at `fps`.

    The video is: intro card (`intro_frames`), then per period a hold (`hold_frames`) and, between
    two periods, a cross-fade (`fade_frames`), the last period held longer (`last_hold_frames`), then
    the outro card (`outro_frames`):

        frames = intro + (periods - 1) * (hold + fade) + last_hold + outro

    with hold = max(1, round(fps * seconds_per_period)), fade = round(fps * crossfade_seconds),
    last_hold = max(hold, round(fps * last_period_seconds)), intro = round(fps * intro_seconds),
    outro = round(fps * outro_seconds). A caption starts at
    the first hold frame of its period, fades in over round(fps * 0.25) frames, stays until
    round(fps * caption_seconds) frames after its start, then fades out over round(fps * 0.5).
    """

    fps: int
    seconds_per_period: float
    crossfade_seconds: float = 0.0
    intro_seconds: float = 0.0
    outro_seconds: float = 0.0
    caption_seconds: float = 3.0
    last_period_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.fps, int | np.integer) and self.fps > 0):
            raise ValueError(f"fps must be a positive integer, got {self.fps!r}")
        for name in ("seconds_per_period", "crossfade_seconds", "intro_seconds", "outro_seconds",
                     "caption_seconds", "last_period_seconds"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def hold_frames(self) -> int:
        return max(1, round(self.fps * self.seconds_per_period))

    @property
    def last_hold_frames(self) -> int:
        """Frames the last period is held: at least a hold, longer where `last_period_seconds` says so."""
        return max(self.hold_frames, round(self.fps * self.last_period_seconds))

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
        return (self.intro_frames + (n_periods - 1) * (self.hold_frames + self.fade_frames)
                + self.last_hold_frames + self.outro_frames)

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
                outro_seconds: float = 0.0, last_period_seconds: float = 0.0) -> int:
    """Frames of a time-lapse of `n_periods` periods (see `Timing` for the formula)."""
    return Timing(fps=fps, seconds_per_period=seconds_per_period,
                  crossfade_seconds=crossfade_seconds, intro_seconds=intro_seconds,
                  outro_seconds=outro_seconds, last_period_seconds=last_period_seconds).frame_count(n_periods)


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
            if period >= n_periods - 1:  # the last period: held until the outro
                period, offset = n_periods - 1, 0
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
