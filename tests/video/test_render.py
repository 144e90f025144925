from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from pipeline.video import (
    FrameSpec,
    LegendEntry,
    MapMarker,
    Timing,
    build_scene,
    colour_classes,
    compose_frame,
    frame_count,
    frame_runs,
    render_frame,
    true_colour,
)
from pipeline.video import render_stream, rgb_to_yuv420, write_video
from pipeline.video.style import BACKGROUND_RGB, Sizes

LEGEND = (
    LegendEntry(1, "Water", "#1f78b4"),
    LegendEntry(2, "Tree cover", "#33a02c"),
    LegendEntry(3, "Grass/shrub", "#b2df8a"),
    LegendEntry(4, "Cropland", "#ffd92f"),
    LegendEntry(5, "Built-up", "#e31a1c"),
    LegendEntry(6, "Bare ground & mining", "#8c6d31"),
)
MAP_RGB = (255, 0, 255)  # a colour used nowhere else in a frame
GREY = (0x20, 0x20, 0x20)


def solid_map(shape: tuple[int, int], colour=MAP_RGB) -> np.ndarray:
    return np.broadcast_to(np.array(colour, "uint8"), (*shape, 3)).copy()


def frame_for(size=(320, 180), rgb_shape=(20, 20), **kwargs) -> np.ndarray:
    kwargs = {"title": "Mine X", "date_label": "2016", "legend": LEGEND,
              "captions": ["2013: 240 households resettled from Village A to New Village A"],
              "credits": "Contains modified Copernicus Sentinel-2 data", **kwargs}
    classes = colour_classes(np.ones(rgb_shape, "uint8"), LEGEND)
    return compose_frame(solid_map(rgb_shape), classes, size=size, **kwargs)


def extent(frame: np.ndarray, colour) -> tuple[int, int]:
    """(height, width) of the bounding box of the pixels of exactly `colour`."""
    rows, cols = np.nonzero((frame == np.array(colour, "uint8")).all(axis=-1))
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def contains_colour(frame: np.ndarray, hex_colour: str) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], "uint8")
    return bool((frame == rgb).all(axis=-1).any())


def frames(n: int, size=(320, 180)) -> list[np.ndarray]:
    width, height = size
    return [np.full((height, width, 3), 20 * i, "uint8") for i in range(n)]


# ----------------------------------------------------------------- colouring

def test_true_colour_stretches_clips_and_blackens_nan():
    band = np.array([[0.0, 0.1, 0.2], [-1.0, 5.0, np.nan]], "float32")
    out = true_colour(band, band, band, vmin=0.0, vmax=0.2)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], [[0, 128, 255], [0, 255, 0]])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_true_colour_nan_in_one_band_is_a_black_pixel():
    ones = np.full((1, 2), 0.2, "float32")
    blue = np.array([[0.2, np.nan]], "float32")
    out = true_colour(ones, ones, blue, vmin=0.0, vmax=0.2)
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [0, 0, 0]])


def test_true_colour_rejects_empty_stretch():
    band = np.zeros((2, 2), "float32")
    with pytest.raises(ValueError, match="vmax > vmin"):
        true_colour(band, band, band, vmin=0.2, vmax=0.2)


def test_colour_classes_uses_legend_colours_and_grey_for_nodata_and_unknown():
    class_map = np.array([[1, 5, 255], [6, 9, 1]], "uint8")
    out = colour_classes(class_map, LEGEND)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (0x1F, 0x78, 0xB4)
    assert tuple(out[0, 1]) == (0xE3, 0x1A, 0x1C)
    assert tuple(out[1, 0]) == (0x8C, 0x6D, 0x31)
    assert tuple(out[0, 2]) == GREY  # nodata
    assert tuple(out[1, 1]) == GREY  # not in the legend


def test_legend_entry_rejects_bad_colour():
    with pytest.raises(ValueError, match="'Water'.*#rrggbb"):
        LegendEntry(1, "Water", "blue")


# ----------------------------------------------------------------- frames

@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)], ids=["1080p", "720p"])
def test_compose_frame_has_the_frame_size_and_shows_legend_colours(size):
    rng = np.random.default_rng(0)
    class_map = rng.integers(1, 7, (500, 500)).astype("uint8")
    rgb = true_colour(*rng.random((3, 500, 500)), vmin=0.0, vmax=1.0)
    frame = compose_frame(rgb, colour_classes(class_map, LEGEND), size=size, title="Mine X",
                          date_label="2016", legend=LEGEND, captions=["2013: event"],
                          credits="credits")
    width, height = size
    assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
    for entry in LEGEND:
        assert contains_colour(frame, entry.colour), entry.name


def test_compose_frame_legend_swatches_show_classes_absent_from_the_map():
    frame = frame_for()  # the map holds only class 1
    for entry in LEGEND:
        assert contains_colour(frame, entry.colour), entry.name


@pytest.mark.parametrize("map_shape", [(400, 100), (50, 800), (20, 20)],
                         ids=["tall", "wide", "tiny"])
def test_compose_frame_keeps_the_map_aspect(map_shape):
    frame = frame_for(size=(1280, 720), rgb_shape=map_shape)
    assert frame.shape == (720, 1280, 3)
    height, width = extent(frame, MAP_RGB)
    expected = map_shape[0] / map_shape[1]
    assert height / width == pytest.approx(expected, rel=0.03)
    assert max(height, width) > 200  # scaled up to use the panel, not left tiny


def test_compose_frame_tall_map_fits_below_the_title_and_above_the_captions():
    frame = frame_for(size=(1280, 720), rgb_shape=(400, 100))
    rows, _ = np.nonzero((frame == np.array(MAP_RGB, "uint8")).all(axis=-1))
    assert rows.min() > 720 * 0.08 and rows.max() < 720 * 0.86


def test_compose_frame_text_changes_pixels():
    plain = frame_for(size=(640, 360), captions=(), credits="")
    annotated = frame_for(size=(640, 360), captions=["2013: 240 households resettled"],
                          credits="Sentinel-2")
    assert (plain != annotated).any()


def test_the_credits_footer_is_legible_at_720p():
    """The footer's letters, measured in the frame: as tall as the caption's less a fifth (the old 12 px
    font made 11-px letters on a 720-line frame, too small on a phone)."""
    def ink_rows(frame: np.ndarray, top: int, bottom: int) -> int:
        band = frame[top:bottom].astype(int)
        rows = np.nonzero((np.abs(band - np.array(BACKGROUND_RGB)).max(axis=-1) > 60).any(axis=1))[0]
        return int(rows.max() - rows.min() + 1) if len(rows) else 0

    text = "Landsat imagery courtesy of the U.S. Geological Survey"
    frame = frame_for(size=(1280, 720), captions=[text], credits=text, rgb_shape=(200, 200))
    without = frame_for(size=(1280, 720), captions=[text], credits="", rgb_shape=(200, 200))
    rows = np.nonzero((frame != without).any(axis=(1, 2)))[0]  # the footer's rows only
    footer = ink_rows(frame, rows.min(), rows.max() + 1)
    sizes = Sizes.for_size(1280, 720)
    assert sizes.credits_font >= 18 and footer >= 16
    assert footer >= 0.8 * round(sizes.caption_font * 0.93)  # letters (cap top to descender) ~0.93 em


def test_compose_frame_survives_long_texts_and_many_captions():
    frame = frame_for(size=(320, 180), title="A very long mine name " * 10,
                      captions=[f"{year}: an event with a long description " * 3
                                for year in range(2000, 2010)],
                      credits="credits " * 50)
    assert frame.shape == (180, 320, 3)


def test_compose_frame_rejects_odd_size():
    with pytest.raises(ValueError, match="video size must be even, got 1919x1080"):
        frame_for(size=(1919, 1080))


def test_compose_frame_rejects_non_uint8_map():
    with pytest.raises(ValueError, match="map of period 0 must be"):
        compose_frame(np.zeros((4, 4, 3), "float32"), solid_map((4, 4)), size=(320, 180),
                      title="t", date_label="d", legend=LEGEND)


# ----------------------------------------------------------------- timing

def test_frame_count_is_intro_plus_holds_plus_fades_plus_outro():
    assert frame_count(3, fps=10, seconds_per_period=0.5) == 15
    assert frame_count(3, fps=10, seconds_per_period=0.5, crossfade_seconds=0.3, intro_seconds=1,
                       outro_seconds=2) == 10 + 3 * 5 + 2 * 3 + 20
    assert frame_count(1, fps=24, seconds_per_period=0.0, crossfade_seconds=1.0) == 1  # hold >= 1, no fade
    assert frame_count(3, fps=10, seconds_per_period=0.5, last_period_seconds=3) == 2 * 5 + 30  # the last held 3 s
    assert frame_count(3, fps=10, seconds_per_period=0.5, last_period_seconds=0.2) == 15  # never shorter
    with pytest.raises(ValueError, match="at least one period"):
        frame_count(0, fps=10, seconds_per_period=1)
    with pytest.raises(ValueError, match="fps must be a positive integer"):
        Timing(fps=0, seconds_per_period=1)
    with pytest.raises(ValueError, match="crossfade_seconds must be >= 0"):
        Timing(fps=10, seconds_per_period=1, crossfade_seconds=-1)


def expand(runs) -> list[FrameSpec]:
    return [spec for spec, count in runs for _ in range(count)]


def test_frame_runs_follow_the_timeline():
    timing = Timing(fps=4, seconds_per_period=1.0, crossfade_seconds=0.5, intro_seconds=0.5,
                    outro_seconds=0.5, caption_seconds=1.0)
    specs = expand(frame_runs(timing, 3, caption_periods=[1]))
    assert len(specs) == timing.frame_count(3) == 2 + 3 * 4 + 2 * 2 + 2
    assert [s.card for s in specs[:2]] == ["intro"] * 2 and [s.card for s in specs[-2:]] == ["outro"] * 2
    periods = [(s.period, s.next, s.blend) for s in specs[2:-2]]
    assert periods[:6] == [(0, 0, 0.0)] * 4 + [(0, 1, 0.3333), (0, 1, 0.6667)]
    assert periods[6:10] == [(1, 1, 0.0)] * 4 and periods[-4:] == [(2, 2, 0.0)] * 4
    # the caption starts at period 1's first hold frame, fades in over 1 frame, shows 4 frames, fades out over 2
    start = timing.period_start(1)
    assert start == 2 + 4 + 2
    assert [s.captions for s in specs[start - 1:start + 7]] == [
        (), ((0, 1.0),), ((0, 1.0),), ((0, 1.0),), ((0, 1.0),), ((0, 0.6667),), ((0, 0.3333),), ()]


def test_frame_runs_hold_the_last_period_longer():
    timing = Timing(fps=4, seconds_per_period=1.0, crossfade_seconds=0.5, outro_seconds=0.5, last_period_seconds=3)
    specs = expand(frame_runs(timing, 3))
    assert len(specs) == timing.frame_count(3) == 2 * (4 + 2) + 12 + 2
    assert [(s.card, s.period, s.blend) for s in specs[12:24]] == [(None, 2, 0.0)] * 12
    assert [s.card for s in specs[24:]] == ["outro"] * 2


def test_frame_runs_group_identical_frames():
    timing = Timing(fps=25, seconds_per_period=2.0, crossfade_seconds=0.2, intro_seconds=1.0)
    runs = list(frame_runs(timing, 4))
    assert runs[0] == (FrameSpec("intro"), 25)
    assert runs[1] == (FrameSpec(None, 0, 0, 0.0, ()), 50)
    assert len(runs) == 1 + 4 + 3 * 5  # each fade step is a distinct frame
    assert sum(count for _, count in runs) == timing.frame_count(4)


# ----------------------------------------------------------------- scene and frames

def small_scene(size=(640, 360), n=3, **kwargs):
    maps = [solid_map((40, 60), (40 * i, 100, 200)) for i in range(n)]
    classes = [colour_classes(np.full((40, 60), 1 + i, "uint8"), LEGEND) for i in range(n)]
    areas = {e.code: [float(e.code * (i + 1)) for i in range(n)] for e in LEGEND}
    options = dict(period_labels=[str(2016 + i) for i in range(n)], size=size, title="Mine X",
                   subtitle="Company · Country · coal", class_maps=classes, legend=LEGEND,
                   class_areas=areas, period_values=[2016 + i for i in range(n)],
                   captions=[(1, "2017: 240 households resettled")],
                   outline=[np.array([[5, 5], [55, 5], [55, 35], [5, 35], [5, 5]], float)],
                   markers=[MapMarker(30, 20, "Mine X", "mine"), MapMarker(10, 10, "Village", "origin"),
                            MapMarker(50, 30, "", "site", radius_px=4)],
                   pixel_size_m=30.0, credits="credits", intro_lines=["Company"],
                   outro_lines=["Landsat imagery courtesy of the U.S. Geological Survey"])
    return build_scene(maps, **{**options, **kwargs})


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720), (1080, 1920)],
                         ids=["1080p", "720p", "vertical"])
def test_scene_frames_have_the_size_and_the_legend_swatches_their_colours(size):
    scene = small_scene(size=size)
    frame = render_frame(scene, FrameSpec(None, 0, 0, 0.0, ()))
    assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
    assert set(scene.layout.legend_swatches) == {e.code for e in LEGEND}
    for entry in LEGEND:
        left, top, width, height = scene.layout.legend_swatches[entry.code]
        inside = frame[top + 2:top + height - 2, left + 2:left + width - 2].reshape(-1, 3)
        assert (inside == entry.rgb).all(), entry.name


def test_vertical_frames_stack_the_maps():
    scene = small_scene(size=(1080, 1920))
    (_, top0, _, height0), (_, top1, _, _) = scene.layout.map_boxes
    assert top1 >= top0 + height0


def test_cross_fade_blends_the_maps_and_moves_the_chart_cursor():
    scene = small_scene()
    left, top, width, height = scene.layout.map_boxes[0]
    frames = [render_frame(scene, FrameSpec(None, 0, 1, blend, ())) for blend in (0.0, 0.5)]
    frames.append(render_frame(scene, FrameSpec(None, 1, 1, 0.0, ())))
    centre = [int(f[top + height // 2, left + width // 2, 0]) for f in frames]  # red: 0, 40 in the maps
    assert centre[0] < centre[1] < centre[2] and abs(centre[1] - 20) <= 2
    px, py, pw, ph = scene.chart_plot
    chart = [f[py:py + ph, px:px + pw] for f in frames]
    assert (chart[0] != chart[1]).any() and (chart[1] != chart[2]).any()


def test_the_chart_shows_the_nodata_share_of_each_period_as_grey_bars():
    from pipeline.video.chart import NODATA_BAR_RGB

    scene = small_scene(nodata_shares=[2.0, 30.0, 0.0], chart_unit="%")
    frame = render_frame(scene, FrameSpec(None, 0, 0, 0.0, ()))
    _, py, _, ph = scene.chart_plot
    bars = (frame == np.array(NODATA_BAR_RGB, "uint8")).all(axis=-1)
    bars[:py + ph] = False  # the strip is under the lines' plot
    columns = [bars[:, round(x) - 1:round(x) + 2].sum() for x in scene.chart_x]
    assert columns[1] > 5 * columns[0] > 0 and columns[2] == 0  # 30 % towers over 2 %, none at 0 %
    without = render_frame(small_scene(), FrameSpec(None, 0, 0, 0.0, ()))
    assert not (without == np.array(NODATA_BAR_RGB, "uint8")).all(axis=-1).any()


def test_captions_fade_with_their_alpha():
    scene = small_scene()
    left, top, width, height = scene.layout.caption_box
    band = [render_frame(scene, FrameSpec(None, 1, 1, 0.0, captions))[top:top + height]
            for captions in ((), ((0, 0.5),), ((0, 1.0),))]
    brightest = [int(b.max()) for b in band]
    assert brightest[0] < brightest[1] < brightest[2] == 255


def test_intro_and_outro_cards_are_full_frames_with_text():
    scene = small_scene()
    for card in ("intro", "outro"):
        frame = render_frame(scene, FrameSpec(card))
        assert frame.shape == (360, 640, 3) and int(frame.max()) == 255


def test_scene_without_class_maps_has_one_wide_map_and_no_chart():
    scene = small_scene(class_maps=None, legend=(), class_areas=None, captions=(), markers=())
    assert len(scene.layout.map_boxes) == 1 and scene.chart_plot is None
    assert scene.layout.legend_box is None


def test_build_scene_rejects_maps_of_another_grid_and_wrong_counts():
    maps = [solid_map((40, 60)), solid_map((41, 60))]
    with pytest.raises(ValueError, match="period 1 is \\(41, 60\\)"):
        build_scene(maps, period_labels=["a", "b"], size=(640, 360), title="t")
    with pytest.raises(ValueError, match="got 1 maps for 2 period labels"):
        build_scene([solid_map((4, 4))], period_labels=["a", "b"], size=(640, 360), title="t")
    with pytest.raises(ValueError, match="caption period indices \\[5\\]"):
        build_scene([solid_map((4, 4))], period_labels=["a"], size=(640, 360), title="t",
                    captions=[(5, "x")])


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_render_stream_yields_every_frame_in_order_on_the_local_scheduler(scheduler):
    import dask

    scene = small_scene()
    timing = Timing(fps=4, seconds_per_period=1.0, crossfade_seconds=0.5, intro_seconds=0.5)
    with dask.config.set(scheduler=scheduler):
        streamed = list(render_stream(scene, timing, window=2))
    expected = [render_frame(scene, spec) for spec in expand(frame_runs(timing, 3, [1]))]
    assert len(streamed) == len(expected) == timing.frame_count(3)
    assert all((a == b).all() for a, b in zip(streamed, expected))
    held = streamed[2:6]
    assert all(frame is held[0] for frame in held)  # a held frame is composed once


def test_render_stream_on_a_distributed_client_matches():
    import dask
    from distributed import Client, LocalCluster

    scene = small_scene(n=2)
    timing = Timing(fps=4, seconds_per_period=0.5, crossfade_seconds=0.5)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster), dask.config.set(scheduler="dask.distributed"):
        streamed = list(render_stream(scene, timing, window=3))
    expected = [render_frame(scene, spec) for spec in expand(frame_runs(timing, 2, [1]))]
    assert len(streamed) == len(expected) and all((a == b).all() for a, b in zip(streamed, expected))


def test_rgb_to_yuv420_is_bt709_limited_range():
    frame = np.zeros((2, 4, 3), "uint8")
    frame[:, :2] = 255  # white | black
    yuv = np.frombuffer(rgb_to_yuv420(frame).data, "uint8")
    assert list(yuv[:8]) == [235, 235, 16, 16] * 2
    assert list(yuv[8:]) == [128, 128, 128, 128]  # grey has no chroma
    red = np.zeros((2, 2, 3), "uint8")
    red[..., 0] = 255
    y, u, v = np.frombuffer(rgb_to_yuv420(red).data, "uint8")[[0, 4, 5]]
    assert (y, u, v) == (63, 102, 240)  # BT.709: Y = 16 + 219 * 0.2126


# ----------------------------------------------------------------- video

def read_meta(path: Path) -> dict:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    return meta


def test_write_video_writes_h264_yuv420p_of_the_frame_size(tmp_path):
    path = tmp_path / "mine_x.mp4"
    periods = [frame_for(size=(320, 180), date_label=str(year)) for year in (2015, 2016, 2017)]
    n = write_video((frame for frame in periods for _ in range(5)), path, fps=10)
    expected = frame_count(3, fps=10, seconds_per_period=0.5)
    assert n == expected == 15
    meta = read_meta(path)
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p") and "bt709" in meta["pix_fmt"]
    assert tuple(meta["size"]) == (320, 180)  # no padding to a multiple of 16
    assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == expected
    assert [p.name for p in tmp_path.iterdir()] == ["mine_x.mp4"]  # no temp file left


def test_write_video_has_faststart(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(frames(4), path, fps=4)
    assert top_level_boxes(path.read_bytes()).index(b"moov") < \
        top_level_boxes(path.read_bytes()).index(b"mdat")


def top_level_boxes(mp4: bytes) -> list[bytes]:
    boxes, offset = [], 0
    while offset + 8 <= len(mp4):
        size = int.from_bytes(mp4[offset:offset + 4], "big")
        boxes.append(mp4[offset + 4:offset + 8])
        if size == 1:  # 64-bit size follows the type
            size = int.from_bytes(mp4[offset + 8:offset + 16], "big")
        if size < 8:
            break
        offset += size
    return boxes


def test_write_video_bad_frame_names_index_and_leaves_nothing(tmp_path):
    path = tmp_path / "v.mp4"
    bad = [*frames(3), np.zeros((180, 322, 3), "uint8"), *frames(2)]
    with pytest.raises(ValueError, match="frame 3"):
        write_video(iter(bad), path, fps=5)
    assert list(tmp_path.iterdir()) == []


def test_write_video_bad_dtype_names_index(tmp_path):
    bad = [*frames(2), np.zeros((180, 320, 3), "float32")]
    with pytest.raises(ValueError, match="frame 2"):
        write_video(bad, tmp_path / "v.mp4", fps=5)
    assert list(tmp_path.iterdir()) == []


def test_write_video_failure_keeps_existing_file(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"previous video")

    def failing():
        yield from frames(3)
        raise RuntimeError("composition failed")

    with pytest.raises(RuntimeError, match="composition failed"):
        write_video(failing(), path, fps=5)
    assert path.read_bytes() == b"previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_write_video_replaces_existing_file_on_success(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"previous video")
    assert write_video(frames(3), path, fps=5) == 3
    assert read_meta(path)["codec"] == "h264"


@pytest.mark.parametrize("size", [(321, 180), (320, 181)])
def test_write_video_rejects_odd_size(tmp_path, size):
    with pytest.raises(ValueError, match=f"video size must be even, got {size[0]}x{size[1]}"):
        write_video(frames(2, size=size), tmp_path / "v.mp4", fps=5)
    assert list(tmp_path.iterdir()) == []


def test_write_video_rejects_empty_input(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video([], tmp_path / "v.mp4", fps=5)
    assert list(tmp_path.iterdir()) == []


def test_a_thumbnail_sized_frame_shows_the_maps_only():
    scene = small_scene(size=(64, 64))
    frame = render_frame(scene, FrameSpec(None, 1, 1, 0.0, ()))
    assert frame.shape == (64, 64, 3)
    assert scene.chart_plot is None and scene.layout.legend_box is None and scene.captions == ()


@pytest.mark.parametrize(("width", "expected"), [(900, "Area change since 2008 (ha)"), (120, "Change since 2008 (ha)")])
def test_a_narrow_chart_keeps_the_unit_of_its_title_instead_of_an_ellipsis(monkeypatch, width, expected):
    from PIL import Image, ImageDraw

    from pipeline.video import chart

    titles = []
    fit = chart.fit_text
    monkeypatch.setattr(chart, "fit_text", lambda text, font, max_width: titles.append(text) or fit(text, font, max_width))
    draw = ImageDraw.Draw(Image.new("RGB", (1000, 400)))
    chart.draw_chart_base(draw, (20, 60, width, 200), Sizes.for_size(1280, 720), LEGEND, {1: [10.0, 12.0]},
                          [10.0, 12.0], 2, [], "change", "2008")
    assert titles[0] == expected
