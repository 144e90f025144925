"""The time-lapse as a viewer gets it: the MP4 decoded frame by frame, with its subtitles and chapters."""

from __future__ import annotations

import re

import imageio_ffmpeg
import numpy as np
import pytest

from conftest import ROOT
from pipeline.config import DEFAULT_CLASSES
from pipeline.video import LegendEntry, MapMarker, Timing, build_scene, colour_classes, publish, write_timelapse

LEGEND = tuple(LegendEntry(c.code, c.name, c.colour) for c in DEFAULT_CLASSES)
SIZE = (960, 540)
TIMING = Timing(fps=10, seconds_per_period=1.0, crossfade_seconds=0.3, intro_seconds=1.0,
                outro_seconds=1.0, caption_seconds=1.5, last_period_seconds=2.0)
YEARS = [2010, 2011, 2012, 2013, 2014]
CAPTIONS = [(2, "2012: 240 households resettled from Village A to New Village A"),
            (3, "2013: the pit reaches the old village")]


def scene(size=SIZE):
    rng = np.random.default_rng(3)
    maps, class_maps = [], []
    for i in range(len(YEARS)):
        codes = rng.integers(1, 7, (60, 90)).astype("uint8")
        codes[20:40, 30:30 + 10 * i] = 6  # the pit grows
        class_maps.append(colour_classes(codes, LEGEND))
        maps.append(np.clip(class_maps[-1].astype(int) + 20, 0, 255).astype("uint8"))
    areas = {e.code: [float(100 + 10 * i * e.code) for i in range(len(YEARS))] for e in LEGEND}
    return build_scene(maps, period_labels=[str(y) for y in YEARS], size=size, title="Mine X",
                       subtitle="Company X · Mozambique · coal", class_maps=class_maps, legend=LEGEND,
                       class_areas=areas, period_values=YEARS, captions=CAPTIONS,
                       markers=[MapMarker(45, 30, "Mine X", "mine")], pixel_size_m=30.0,
                       credits="Contains modified Copernicus Sentinel data 2010–2014",
                       intro_lines=["Company X", "Mozambique · coal"], outro_lines=["Credits line"])


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "mine_x.mp4"
    the_scene = scene()
    n = write_timelapse(the_scene, TIMING, path)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = [np.frombuffer(raw, "uint8").reshape(SIZE[1], SIZE[0], 3) for raw in reader]
    return the_scene, path, n, meta, frames


def test_size_frame_count_and_duration_match_the_timing(video):
    _, path, n, meta, frames = video
    expected = TIMING.frame_count(len(YEARS))
    assert expected == 10 + 4 * (10 + 3) + 20 + 10  # the last period held 2 s
    assert n == len(frames) == expected
    assert meta["size"] == SIZE and meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == 10
    assert imageio_ffmpeg.count_frames_and_secs(str(path)) == (expected, pytest.approx(expected / 10))


def test_legend_swatches_have_the_class_colours_in_the_decoded_video(video):
    the_scene, _, _, _, frames = video
    frame = frames[TIMING.period_start(1)].astype(int)
    for entry in LEGEND:
        left, top, width, height = the_scene.layout.legend_swatches[entry.code]
        inside = frame[top + 3:top + height - 3, left + 3:left + width - 3].reshape(-1, 3)
        assert np.abs(np.median(inside, axis=0) - entry.rgb).max() <= 6, entry.name


def test_caption_region_changes_at_the_events_frame(video):
    the_scene, _, _, _, frames = video
    left, top, width, height = the_scene.layout.caption_box
    region = [f[top + 2:top + height, left:left + width].astype(int) for f in frames]
    start = TIMING.period_start(2)
    assert np.abs(region[start - 1] - region[start - 2]).max() <= 8  # nothing yet (codec noise only)
    assert np.abs(region[start] - region[start - 1]).max() > 60      # the caption appears
    assert region[start + 2].max() > 200                             # fully shown
    end = start + TIMING.caption_frames
    assert region[end + 1].max() < region[start + 2].max() or \
        np.abs(region[end + 1] - region[end - 6]).max() > 30          # faded (or replaced by the next one)


def test_srt_and_chapters_agree_with_the_frames(video):
    the_scene, _, n, _, frames = video
    spans = publish.caption_frames(TIMING, len(YEARS), the_scene.caption_periods)
    srt = publish.subtitles_srt(list(the_scene.captions), spans, fps=TIMING.fps)
    cues = re.findall(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)\n", srt)
    assert [cue[-1] for cue in cues] == [text for _, text in CAPTIONS]
    left, top, width, height = the_scene.layout.caption_box
    for cue, period in zip(cues, (2, 3)):
        h, m, s, ms = map(int, cue[1:5])
        start_frame = round((h * 3600 + m * 60 + s + ms / 1000) * TIMING.fps)
        assert start_frame == TIMING.period_start(period)  # to the frame
        h, m, s, ms = map(int, cue[5:9])
        end_frame = round((h * 3600 + m * 60 + s + ms / 1000) * TIMING.fps)
        assert end_frame == TIMING.period_start(period) + TIMING.caption_frames
        assert frames[end_frame - 1][top:top + height].max() > 45  # still showing (fading) on its last frame
    found = publish.chapters(TIMING, len(YEARS), opening="Mine X", captions=list(the_scene.captions),
                             spans=spans)
    # a 1 s outro is no chapter of its own: YouTube drops every chapter if one is under 10 s
    assert [c.title for c in found] == ["Mine X", CAPTIONS[0][1], CAPTIONS[1][1]]
    for chapter, first_frame in zip(found[1:], [TIMING.period_start(2), TIMING.period_start(3)]):
        # the first whole second at or after the chapter's first frame
        assert chapter.seconds * TIMING.fps >= first_frame > (chapter.seconds - 1) * TIMING.fps
    assert found[-1].timestamp == "00:05" and n == 92  # period 3 from frame 49 = 4.9 s
    text = publish.youtube_text(title="Mine X", summary="summary", captions=list(the_scene.captions),
                                sources=["Sentinel", "Sentinel", "events.csv"], found=found)
    assert text.count("- Sentinel") == 1
    assert "Chapters:\n00:00 Mine X\n00:04 2012: 240" in text  # caption from frame 36 = 3.6 s


def test_a_credits_chapter_only_where_the_outro_lasts_ten_seconds():
    for outro, titles in ((4.0, ["Mine X", "a", "b"]), (12.0, ["Mine X", "a", "b", "Credits"])):
        timing = Timing(fps=10, seconds_per_period=6.0, outro_seconds=outro)
        spans = publish.caption_frames(timing, 3, [1, 2])
        found = publish.chapters(timing, 3, opening="Mine X", captions=["a", "b"], spans=spans)
        assert [c.title for c in found] == titles, outro


def test_the_last_period_is_held_until_the_credits_in_the_decoded_video(video):
    the_scene, _, _, _, frames = video
    left, top, width, height = the_scene.layout.map_boxes[0]
    last = TIMING.period_start(len(YEARS) - 1)
    assert TIMING.outro_start(len(YEARS)) - last == 20  # 2 s at 10 fps, against 1 s for the others
    held = [frames[i][top:top + height, left:left + width].astype(int) for i in range(last, last + 20)]
    assert max(np.abs(f - held[0]).mean() for f in held) < 2  # the same map throughout (codec noise only)
    before = frames[last - 1][top:top + height, left:left + width].astype(int)  # the cross-fade's last step
    outro = frames[last + 20][top:top + height, left:left + width].astype(int)
    assert np.abs(outro - held[0]).mean() > 30 and np.abs(before - held[0]).mean() > 2  # credits card next


def test_chapter_problems_name_youtubes_rules():
    found = [publish.Chapter(0, "a"), publish.Chapter(4, "b")]
    problems = publish.chapter_problems(found, total_seconds=30)
    assert "at least 3 chapters" in problems[0] and "00:00" in problems[1]
    assert publish.chapter_problems([publish.Chapter(0, "a"), publish.Chapter(10, "b"),
                                     publish.Chapter(20, "c")], total_seconds=30) == []


def test_poster_is_1280x720_png_of_the_last_period_with_the_captions():
    poster_scene = scene(publish.POSTER_SIZE)
    frame = publish.poster_frame(poster_scene)
    assert frame.shape == (720, 1280, 3)
    left, top, width, height = poster_scene.layout.caption_box
    assert frame[top:top + height].max() == 255
    assert publish.png_bytes(frame)[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------- config

def test_video_config_presets_and_size_errors_name_the_key(tmp_path):
    from pipeline.config import VideoConfig, load_config
    from pipeline.errors import ConfigError

    assert VideoConfig().size == (1920, 1080)
    assert {p: VideoConfig(preset=p).size for p in ("720p", "1440p", "4k", "vertical")} == {
        "720p": (1280, 720), "1440p": (2560, 1440), "4k": (3840, 2160), "vertical": (1080, 1920)}
    assert VideoConfig(preset="4k", width=640, height=360).size == (640, 360)
    demo = ROOT / "configs" / "demo.yaml"
    assert VideoConfig(preset="vertical", width=720).size == (720, 1920)
    for video, message in (({"width": 641, "height": 360}, "video: Value error, H.264 needs an even size"),
                           ({"preset": "8k"}, "video.preset: Input should be"),
                           ({"crossfade_seconds": -1}, "video.crossfade_seconds: Input should be greater"),
                           ({"rgb_bands": ["red", "green"]}, "video.rgb_bands.2: Field required")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(demo, overrides={"video": video})


def test_subtitles_and_youtube_text_carry_no_injected_markup_or_fake_cues():
    captions = ["2013: 240 households resettled from <font color=red>A</font>",
                "{\\an8}moved\n\n3\n00:00:00,000 --> 00:00:09,000\nfake cue", "x < y"]
    srt = publish.subtitles_srt(captions, [(0, 4), (4, 8), (8, 12)], fps=4)
    assert srt.count(" --> ") == 3 and "fake cue" in srt.split("\n\n")[1]  # still three cues
    assert "<font" not in srt and "{\\an8}" not in srt and "x \u2039 y" in srt
    text = publish.youtube_text(title="<b>Mine</b>", summary="s", captions=captions,
                                sources=["<a href='http://evil.example'>report</a>"],
                                found=[publish.Chapter(0, "<i>open</i>")])
    assert "<" not in text and ">" not in text and "report" in text and "00:00 open" in text


def test_subtitles_say_what_the_frame_does_not_and_never_repeat_the_caption():
    import pandas as pd

    from pipeline.video.stage import subtitle_texts, video_captions

    events = pd.DataFrame({
        "event_id": ["a", "b"], "year_start": [2012, 2013], "year_end": [2012, 2013],
        "displaced_count": [240, None], "displaced_unit": ["households", None],
        "displaced_unit_kind": ["households", None],
        "origin_community": ["Village A", None], "resettlement_site": ["New Village A", None],
        "event_type": ["planned resettlement", None], "source": ["RAP 2014, p. 12", None]})
    from pipeline.composite.periods import make_periods

    periods = make_periods([f"{year}-06-01" for year in YEARS])
    captions = video_captions(events, periods, public=False)
    assert [text for _, text in captions] == ["2012: 240 households resettled from Village A to New Village A",
                                              "2013: people resettled"]
    assert subtitle_texts(events, periods, public=False) == ["Planned resettlement. Source: RAP 2014, p. 12", ""]
    assert subtitle_texts(events, periods, public=True) == ["Planned resettlement", ""]  # sources may name places
