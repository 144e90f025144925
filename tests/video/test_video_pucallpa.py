"""A time-lapse of real imagery: Landsat composites around Pucallpa (tests/data/landsat_pucallpa, a
240 x 160 px window of all eight years), rendered by the video stage with configs/landsat_pucallpa_opengeos.yaml
without a class map, as the runner does for a config without a classify section."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import imageio_ffmpeg
import numpy as np
import pandas as pd
import pytest
import rioxarray
import xarray as xr
from shapely.geometry import box

from pipeline.video import stage as timelapse
from pipeline.config import load_config
from pipeline.video import Timing, frame_count
from pipeline.results import OutputLayout

from conftest import DATA, ROOT

PUCALLPA = DATA / "landsat_pucallpa"
CONFIG = ROOT / "configs" / "landsat_pucallpa_opengeos.yaml"
YEARS = [1985, 1990, 1995, 2000, 2005, 2010, 2015, 2020]
SIZE = (640, 360)


def pucallpa_composites(folder: Path = PUCALLPA) -> xr.Dataset:
    """(period, y, x) float32 composites named like the pipeline's (swir1, nir, red, green), 0..1, NaN = 0."""
    layers = []
    for year in YEARS:
        raster = rioxarray.open_rasterio(folder / f"landsat_{year}.tif")
        raster = raster.where(raster != 0).astype("float32") / 255
        layers.append(raster.assign_coords(band=["swir1", "nir", "red", "green"]).to_dataset("band"))
    return xr.concat(layers, dim=pd.Index([str(year) for year in YEARS], name="period")).rio.write_crs(layers[0].rio.crs)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    config = load_config(CONFIG, overrides={"output_dir": str(tmp_path_factory.mktemp("out")),
                                            "video": {"width": SIZE[0], "height": SIZE[1], "fps": 4}})
    composites = pucallpa_composites()
    west, south, east, north = composites.rio.bounds()
    inset = 0.02
    geometry = gpd.GeoSeries([box(west + inset, south + inset, east - inset, north - inset)], crs="EPSG:4326")
    aoi = pd.Series({"aoi_id": "pucallpa", "name": "Pucallpa", "geometry": geometry.iloc[0]})
    out = OutputLayout(config.run_dir)
    record = timelapse.make_timelapse(config, aoi, composites, None, pd.DataFrame(columns=["event_id"]), class_area=None,
                        geometry=geometry, out=out)
    return config, out, record


def decoded(path: Path) -> list[np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return [np.frombuffer(raw, "uint8").reshape(height, width, 3) for raw in reader]


def test_the_config_renders_every_period_with_its_timing(rendered):
    config, out, record = rendered
    video = config.video
    expected = frame_count(len(YEARS), fps=video.fps, seconds_per_period=video.seconds_per_period,
                           crossfade_seconds=video.crossfade_seconds, intro_seconds=video.intro_seconds,
                           outro_seconds=video.outro_seconds, last_period_seconds=video.last_period_seconds)
    assert expected == 12 + 7 * (8 + 4) + 12 + 44  # the last period held 3 s, the credits 11 s (the config's)
    assert record["frames"] == expected
    frames = decoded(out.video("pucallpa"))
    assert len(frames) == expected and frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert imageio_ffmpeg.count_frames_and_secs(str(out.video("pucallpa")))[1] == pytest.approx(expected / 4)
    assert out.poster("pucallpa").is_file() and out.youtube("pucallpa").is_file()


def test_the_map_shows_the_composites_in_false_colour_and_changes_between_1985_and_2020(rendered):
    config, out, _ = rendered
    frames = decoded(out.video("pucallpa"))
    timing = Timing(fps=4, seconds_per_period=config.video.seconds_per_period,
                               crossfade_seconds=config.video.crossfade_seconds,
                               intro_seconds=config.video.intro_seconds)
    first, last = frames[timing.period_start(0)], frames[timing.period_start(len(YEARS) - 1)]
    # the map's middle: forest (NIR high) shows green, as in the source's SWIR1/NIR/Red rendering
    middle = first[150:250, 200:440].reshape(-1, 3).astype(int)
    assert np.median(middle[:, 1]) > np.median(middle[:, 0]) and np.median(middle[:, 1]) > np.median(middle[:, 2])
    changed = np.abs(first[80:300].astype(int) - last[80:300].astype(int)).mean()
    assert changed > 5  # the city and the cleared land grow: the map is not the same
    title_bar = np.abs(first[:30].astype(int) - last[:30].astype(int))
    assert title_bar.max() > 100  # the date changed (1985 -> 2020)


def test_youtube_text_credits_landsat_and_has_chapters_at_0_and_at_the_credits(rendered):
    config, out, record = rendered
    text = out.youtube("pucallpa").read_text()
    assert "Landsat imagery courtesy of the U.S. Geological Survey" in text
    assert "1985–2020" in text
    chapters = text.split("Chapters:\n")[1].split("\n\n")[0].splitlines()
    assert chapters[0].startswith("00:00 ")
    outro_start = record["frames"] - round(4 * config.video.outro_seconds)
    assert chapters[-1] == f"{(-(-outro_start // 4)) // 60:02d}:{(-(-outro_start // 4)) % 60:02d} Credits"
