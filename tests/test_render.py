from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from pipeline.render import (
    LegendEntry,
    colour_classes,
    compose_frame,
    frame_count,
    timelapse_frames,
    true_colour,
    write_video,
)

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


def test_compose_frame_tall_map_fits_below_the_title_and_above_the_legend():
    frame = frame_for(size=(1280, 720), rgb_shape=(400, 100))
    rows, _ = np.nonzero((frame == np.array(MAP_RGB, "uint8")).all(axis=-1))
    assert rows.min() > 720 * 0.08 and rows.max() < 720 * 0.8


def test_compose_frame_text_changes_pixels():
    plain = frame_for(size=(640, 360), captions=(), credits="")
    annotated = frame_for(size=(640, 360), captions=["2013: 240 households resettled"],
                          credits="Sentinel-2")
    assert (plain != annotated).any()


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
    with pytest.raises(ValueError, match="rgb must be"):
        compose_frame(np.zeros((4, 4, 3), "float32"), solid_map((4, 4)), size=(320, 180),
                      title="t", date_label="d", legend=LEGEND)


# ----------------------------------------------------------------- time-lapse

@pytest.mark.parametrize("fps, seconds, repeats", [(25, 1.0, 25), (10, 0.5, 5), (24, 0.0, 1),
                                                   (30, 0.01, 1)])
def test_timelapse_repeats_each_period_in_order(fps, seconds, repeats):
    periods = frames(3)
    out = list(timelapse_frames(iter(periods), fps=fps, seconds_per_period=seconds))
    assert len(out) == frame_count(3, fps=fps, seconds_per_period=seconds) == 3 * repeats
    assert [int(frame[0, 0, 0]) for frame in out] == [0] * repeats + [20] * repeats + [40] * repeats


def test_timelapse_is_lazy():
    def periods():
        yield frames(1)[0]
        raise AssertionError("second period pulled too early")

    first = next(timelapse_frames(periods(), fps=2, seconds_per_period=1))
    assert first.shape == (180, 320, 3)


# ----------------------------------------------------------------- video

def read_meta(path: Path) -> dict:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    return meta


def test_write_video_writes_h264_yuv420p_of_the_frame_size(tmp_path):
    path = tmp_path / "mine_x.mp4"
    periods = [frame_for(size=(320, 180), date_label=str(year)) for year in (2015, 2016, 2017)]
    n = write_video(timelapse_frames(periods, fps=10, seconds_per_period=0.5), path, fps=10)
    expected = frame_count(3, fps=10, seconds_per_period=0.5)
    assert n == expected == 15
    meta = read_meta(path)
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
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
