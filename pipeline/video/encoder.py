"""Time-lapse frames to an MP4: composed on Dask in a bounded window, streamed in order to libx264.

`render_stream` turns a `render.Scene` and its `render.Timing` into every frame of the video, in
order: each distinct frame (a held period, a cross-fade step, a caption fade) is composed once, on
the active Dask distributed client or the local threaded scheduler, at most `window` ahead, and a
held frame is yielded as often as it lasts. `write_video` pipes frames to ffmpeg (H.264, yuv420p
BT.709, +faststart) and renames the file into place only when it is complete.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from pipeline.io import part_path
from pipeline.video.frames import Scene, check_video_size, render_frame
from pipeline.video.timeline import FrameSpec, Timing, frame_runs

__all__ = ["Yuv420Frame", "rgb_to_yuv420", "render_stream", "write_video", "write_timelapse",
           "X264_PRESETS"]

logger = logging.getLogger(__name__)

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo"]


class Yuv420Frame(NamedTuple):
    """A frame already converted for the encoder: planar Y, U, V (4:2:0), BT.709 limited range."""

    width: int
    height: int
    data: bytes


# BT.709 luma and chroma weights, scaled to limited range (Y 16..235, U/V 16..240); the chroma
# matrix takes the sum of a 2x2 block (hence / 4)
_Y_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], "float32") * np.float32(219 / 255)
_UV_WEIGHTS = (np.array([[-0.2126 / 1.8556, -0.7152 / 1.8556, 0.5],
                         [0.5, -0.7152 / 1.5748, -0.0722 / 1.5748]], "float32").T
               * np.float32(224 / 255 / 4))


def rgb_to_yuv420(frame: np.ndarray) -> Yuv420Frame:
    """Convert an (h, w, 3) uint8 RGB frame (even size) to BT.709 limited-range YUV 4:2:0.

    Chroma is taken from the mean of each 2x2 block. Doing this in the Dask workers, once per
    distinct frame, spares the encoder converting every repeated frame (and halves the bytes).
    """
    frame = np.asarray(frame)
    height, width = frame.shape[:2]
    check_video_size((width, height))
    luma = frame.astype(np.float32) @ _Y_WEIGHTS
    luma += np.float32(16.5)  # offset, and + 0.5 so that the cast below rounds
    quads = frame[0::2, 0::2].astype(np.uint16)
    quads += frame[1::2, 0::2]
    quads += frame[0::2, 1::2]
    quads += frame[1::2, 1::2]
    chroma = quads.astype(np.float32) @ _UV_WEIGHTS
    chroma += np.float32(128.5)
    y = np.clip(luma, 16, 235.99).astype(np.uint8)
    uv = np.clip(chroma, 16, 240.99).astype(np.uint8)
    return Yuv420Frame(width, height, b"".join((y.tobytes(), np.ascontiguousarray(uv[..., 0]).tobytes(),
                                                np.ascontiguousarray(uv[..., 1]).tobytes())))


def _render_yuv(scene: Scene, spec: FrameSpec) -> Yuv420Frame:
    return rgb_to_yuv420(render_frame(scene, spec))


def render_stream(scene: Scene, timing: Timing, *, window: int = 16, encoded: bool = False,
                  scheduler: Literal["auto", "threads"] = "auto") -> Iterator[np.ndarray | Yuv420Frame]:
    """Every frame of the video, in order, composed on Dask at most `window` distinct frames ahead.

    Runs on the active Dask distributed client if there is one (the scene is scattered to the
    workers once), else on the configured local scheduler (threads by default) in batches of
    `window`, computed in a background thread while the caller encodes the previous batch. A
    held frame is composed once and yielded (the same object) as many times as it lasts, so
    memory holds at most about 2 x `window` frames whatever the length of the video.

    Yields (h, w, 3) uint8 RGB frames, or `Yuv420Frame`s (converted in the workers) if `encoded`.
    `scheduler` "threads" uses Dask's threaded scheduler in this process even when a distributed
    client is active (see `write_timelapse`).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    runs = frame_runs(timing, scene.n_periods, scene.caption_periods)
    task = _render_yuv if encoded else render_frame
    client = _distributed_client() if scheduler == "auto" else None
    if client is not None:
        return _stream_on_client(client, scene, runs, window, task)
    return _stream_on_local_scheduler(scene, runs, window, task,
                                      "threads" if scheduler == "threads" else None)


def _distributed_client():
    import dask

    if dask.config.get("scheduler", None) not in (None, "dask.distributed", "distributed"):
        return None
    try:
        from distributed import default_client
        return default_client()
    except (ImportError, ValueError):
        return None


def _stream_on_client(client, scene: Scene, runs: Iterator[tuple[FrameSpec, int]],
                      window: int, task) -> Iterator:
    scene_future = client.scatter(scene, broadcast=True, hash=False)
    pending: deque = deque()
    try:
        for spec, count in runs:
            pending.append((client.submit(task, scene_future, spec, pure=False), count))
            if len(pending) >= window:
                yield from _repeat_result(*pending.popleft())
        while pending:
            yield from _repeat_result(*pending.popleft())
    finally:
        for future, _ in pending:
            future.cancel()
        scene_future.release()


def _repeat_result(future, count: int) -> Iterator:
    frame = future.result()
    future.release()
    for _ in range(count):
        yield frame


def _stream_on_local_scheduler(scene: Scene, runs: Iterator[tuple[FrameSpec, int]],
                               window: int, task, scheduler: str | None) -> Iterator:
    import dask

    scene_node = dask.delayed(scene, name=f"scene-{uuid.uuid4().hex}")
    render = dask.delayed(task, pure=True)
    batches: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            batch: list[tuple[FrameSpec, int]] = []
            for run in chain(runs, [None]):
                if run is not None:
                    batch.append(run)
                if batch and (run is None or len(batch) >= window):
                    frames = dask.compute(*[render(scene_node, spec) for spec, _ in batch],
                                          scheduler=scheduler)
                    if not hand_over(list(zip(frames, (count for _, count in batch)))):
                        return
                    batch = []
            hand_over(done)
        except BaseException as err:  # handed to the consumer, which re-raises it
            hand_over(err)

    worker = threading.Thread(target=produce, name="render-frames", daemon=True)
    worker.start()
    try:
        while True:
            item = batches.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            for frame, count in item:
                for _ in range(count):
                    yield frame
    finally:
        stop.set()
        worker.join(timeout=30)


# --------------------------------------------------------------------------- the MP4

def write_video(frames: Iterable[np.ndarray | Yuv420Frame], path: Path, *, fps: int,
                preset: Preset = "veryfast", crf: int = 20,
                on_frames: Callable[[int], None] | None = None) -> int:
    """Stream frames to an H.264 (libx264, yuv420p BT.709, faststart) MP4 at `path`.

    Frames are (h, w, 3) uint8 RGB arrays or `Yuv420Frame`s, all of one even size, consumed one
    at a time. An RGB frame is converted to YUV here, once per run of the same object (a held
    frame yielded repeatedly is converted once). The video is written to a temporary file in the
    same folder and renamed to `path` only once the encoder has finished; on any error the
    temporary file is removed and `path` is left as it was. `on_frames(n)` is called with the number
    of frames sent to the encoder so far, about once a second of video and after the last.

    Returns
    -------
    The number of frames written.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not (isinstance(fps, int | np.integer) and fps > 0):
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    if preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 (lower is better quality), got {crf}")

    frame_iter = iter(frames)
    first = next(frame_iter, None)
    if first is None:
        raise ValueError(f"no frames to write to {path}")
    width, height = _frame_size(first, 0)
    check_video_size((width, height))

    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    temp_path = part_path(path)
    colour = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
              "-color_range", "tv"]
    writer = imageio_ffmpeg.write_frames(
        str(temp_path), (width, height), fps=int(fps), codec="libx264", pix_fmt_in="yuv420p",
        pix_fmt_out="yuv420p", quality=None, macro_block_size=1, ffmpeg_log_level="error",
        input_params=colour,
        output_params=["-preset", preset, "-crf", str(crf), *colour, "-movflags", "+faststart",
                       "-f", "mp4"],
    )
    n_frames = 0
    previous, converted = None, None
    try:
        writer.send(None)  # start ffmpeg
        for index, frame in enumerate(chain([first], frame_iter)):
            if frame is not previous:
                if _frame_size(frame, index) != (width, height):
                    raise ValueError(f"frame {index} is {_frame_size(frame, index)}, but frame 0 is "
                                     f"{(width, height)} (width, height); all frames of a video "
                                     "must match")
                converted = frame if isinstance(frame, Yuv420Frame) else rgb_to_yuv420(frame)
                previous = frame
            writer.send(converted.data)
            n_frames += 1
            if on_frames is not None and n_frames % fps == 0:
                on_frames(n_frames)
        writer.close()  # waits for ffmpeg to finish the file
        if on_frames is not None:
            on_frames(n_frames)
        if not temp_path.is_file() or temp_path.stat().st_size == 0:
            raise RuntimeError(f"ffmpeg wrote nothing for {path}; see its messages above")
        os.replace(temp_path, path)
    except BaseException:
        writer.close()
        temp_path.unlink(missing_ok=True)
        raise
    logger.info("wrote %d frames (%dx%d, %d fps) to %s", n_frames, width, height, fps, path)
    return n_frames


def _frame_size(frame, index: int) -> tuple[int, int]:
    if isinstance(frame, Yuv420Frame):
        return frame.width, frame.height
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame {index} must be (h, w, 3) uint8, got shape {frame.shape} "
                         f"dtype {frame.dtype}")
    return frame.shape[1], frame.shape[0]


def write_timelapse(scene: Scene, timing: Timing, path: Path, *, preset: Preset = "veryfast",
                    crf: int = 20, window: int = 16,
                    scheduler: Literal["auto", "threads"] = "threads",
                    progress: Callable[[int, int], None] | None = None) -> int:
    """Render the scene along the timing on Dask and stream it to an MP4; returns the frame count.

    By default the frames are composed on Dask's threaded scheduler in this process, also when a
    distributed client is active: the encoder runs here, every 1080p frame (3 MB in YUV) would
    otherwise travel from a worker process, and on 2 cores the workers compete with ffmpeg
    (benchmarks/render_fps.py, 1080p demo on 2 cores: 90 fps on threads against 56 fps on a local
    cluster of two worker processes). `scheduler="auto"` uses the active distributed client.
    `progress(done, total)`: frames encoded so far, of the video's total.
    """
    total = timing.frame_count(scene.n_periods)
    return write_video(render_stream(scene, timing, window=window, encoded=True,
                                     scheduler=scheduler), path, fps=timing.fps, preset=preset,
                       crf=crf, on_frames=None if progress is None else lambda done: progress(done, total))
