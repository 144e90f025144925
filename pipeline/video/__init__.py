"""Video: YouTube-ready time-lapses composed with NumPy and Pillow, rendered on Dask, encoded to H.264.

    timeline  when each frame shows what (Timing, FrameSpec, runs of identical frames)
    style     colours, sizes, the bundled font, text fitting
    panels    map panels, markers, scale bar, north arrow, legend
    chart     the area chart and its cursor
    cards     title bar, date tile, captions, intro and outro cards
    frames    the Scene (what does not change between frames) and composing one frame
    encoder   frames rendered in parallel and streamed to H.264 (yuv420p)
    publish   poster, subtitles (.srt), YouTube chapters and description
    stage     the video stage of one AOI (writes video/)

Uses: events (captions), classify (its nodata code), and the base modules.
"""

from pipeline.video.timeline import Timing, FrameSpec, frame_runs, frame_count
from pipeline.video.panels import LegendEntry, MapMarker, true_colour, colour_classes
from pipeline.video.frames import PRESETS, Scene, build_scene, render_frame, compose_frame
from pipeline.video.encoder import render_stream, rgb_to_yuv420, write_video, write_timelapse

__all__ = ["Timing", "FrameSpec", "frame_runs", "frame_count", "LegendEntry", "MapMarker", "true_colour",
           "colour_classes", "PRESETS", "Scene", "build_scene", "render_frame", "compose_frame",
           "render_stream", "rgb_to_yuv420", "write_video", "write_timelapse"]
