"""Clouds without a quality band: the spectral and temporal kernels on hand-made pixels (answers worked out
by hand; adapted from the issue-15 research tests), their Dask wrappers, which method a source gets, and
the temporal method against Slovenia's s2cloudless mask (withheld): at least 85 % agreement."""

from __future__ import annotations

import logging

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import CRS, DATA, RES, X0, Y0, write_scene
from shapely.geometry import box

from pipeline.config import CloudMaskConfig, IngestConfig
from pipeline.errors import InputError
from pipeline.ingest import cloudmask as cm
from pipeline.ingest import sources
from pipeline.ingest.sensors import MASK_NODATA

CLEAR, CLOUD, SHADOW = 0, 1, 2
# One pixel per surface: blue, green, red, nir, swir1, swir2 (reflectance)
CLOUD_PX = (0.50, 0.50, 0.51, 0.53, 0.40, 0.30)      # white and bright: every Fmask test passes
FOREST = (0.03, 0.06, 0.04, 0.35, 0.18, 0.08)        # HOT = 0.03 - 0.02 - 0.08 < 0
BRIGHT_SOIL = (0.10, 0.15, 0.20, 0.28, 0.35, 0.30)   # HOT < 0
WATER = (0.05, 0.04, 0.03, 0.02, 0.01, 0.005)        # NDVI < 0.01 and nir < 0.11: water, not shadow
SNOW = (0.80, 0.80, 0.75, 0.70, 0.05, 0.03)          # NDSI = 0.75 / 0.85 = 0.88 > 0.8: not cloud
SHADOWED_FOREST = tuple(0.3 * v for v in FOREST)    # nir 0.105 < 0.15, nir + swir1 = 0.159 < 0.35
NAMES = ("blue", "green", "red", "nir", "swir1", "swir2")


def _bands(pixels) -> dict[str, np.ndarray]:
    cube = np.asarray(pixels, dtype="float32")                    # (y, x, band)
    return {name: cube[..., i] for i, name in enumerate(NAMES)}


def _spectral(pixels, **kwargs) -> np.ndarray:
    bands = _bands(pixels)
    return cm.spectral_cloud_shadow(bands.pop("blue"), bands.pop("red"), **bands, **kwargs)


# ------------------------------------------------------------------------------------------ spectral


def test_white_bright_pixel_is_cloud_and_forest_soil_water_snow_are_clear():
    codes = _spectral([[CLOUD_PX, FOREST, BRIGHT_SOIL, WATER, SNOW]])
    assert codes.dtype == np.uint8 and codes.tolist() == [[CLOUD, CLEAR, CLEAR, CLEAR, CLEAR]]


def test_dark_pixel_near_a_cloud_is_shadow_but_not_far_away():
    row = [CLOUD_PX] * 3 + [SHADOWED_FOREST] + [FOREST] * 6 + [SHADOWED_FOREST]
    codes = _spectral([row, row, row], shadow_search_px=2)       # a 3 x 3 cloud, dark pixels at x 3 and 10
    assert codes[1, 3] == SHADOW and codes[1, 10] == CLEAR
    assert _spectral([row, row, row])[1, 10] == SHADOW           # no search distance: any dark land


def test_a_cloud_speck_casts_no_searched_shadow_and_nan_is_nodata():
    assert _spectral([[FOREST, CLOUD_PX, SHADOWED_FOREST, FOREST]], shadow_search_px=5).tolist() == [
        [CLEAR, CLOUD, CLEAR, CLEAR]]
    bands = _bands([[CLOUD_PX, FOREST]])
    bands["swir1"][0, 1] = np.nan
    assert cm.spectral_cloud_shadow(bands.pop("blue"), bands.pop("red"), **bands).tolist() == [[CLOUD, MASK_NODATA]]


def test_a_four_band_sensor_runs_the_tests_it_can_and_snow_passes_as_cloud_without_swir():
    b = _bands([[CLOUD_PX, FOREST, SHADOWED_FOREST, SNOW]])
    codes = cm.spectral_cloud_shadow(b["blue"], b["red"], green=b["green"], nir=b["nir"])
    assert codes.tolist() == [[CLOUD, CLEAR, SHADOW, CLOUD]]     # documented limit: NDSI needs swir1
    assert cm.spectral_cloud_shadow(b["blue"], b["red"]).tolist() == [[CLOUD, CLEAR, CLEAR, CLOUD]]


def test_spectral_mask_is_lazy_and_finds_a_shadow_across_chunks():
    row = [CLOUD_PX] * 4 + [SHADOWED_FOREST] * 2 + [FOREST] * 6
    bands = {k: da.from_array(np.repeat(v, 4, axis=0), chunks=(4, 5)) for k, v in _bands([row]).items()}
    codes = cm.spectral_mask(bands, shadow_search_px=3)
    assert dask.is_dask_collection(codes)
    np.testing.assert_array_equal(codes.compute(), _spectral([row] * 4, shadow_search_px=3))
    assert (codes.compute()[:, 4:6] == SHADOW).all()              # the shadow is in the next chunk


# ------------------------------------------------------------------------------------------ temporal

DAYS = np.arange(10) * 10.0


def _series(values) -> np.ndarray:
    return np.asarray(values, dtype="float32")[:, None, None]


def test_a_date_far_below_the_clear_ndvi_is_cloud_and_two_in_a_row_too():
    ndvi = [0.7] * 10
    ndvi[4] = 0.1
    assert cm.temporal_cloud_shadow(ndvi=_series(ndvi), days=DAYS)[:, 0, 0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    ndvi[5] = 0.05
    assert cm.temporal_cloud_shadow(ndvi=_series(ndvi), days=DAYS)[:, 0, 0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]


def test_a_lasting_drop_is_land_change_not_cloud_but_on_the_last_date_it_cannot_be_told():
    assert (cm.temporal_cloud_shadow(ndvi=_series([0.7] * 5 + [0.1] * 5), days=DAYS) == CLEAR).all()
    # documented limit: nothing after the last date confirms a lasting change
    assert cm.temporal_cloud_shadow(ndvi=_series([0.7] * 9 + [0.1]), days=DAYS)[:, 0, 0].tolist() == [0] * 9 + [1]


def test_seasons_and_water_are_not_cloud():
    days = np.arange(0, 730, 10.0)
    ndvi = 0.55 + 0.25 * np.sin(2 * np.pi * days / 365.25) + 0.01 * np.cos(days)
    assert (cm.temporal_cloud_shadow(ndvi=_series(ndvi), days=days) == CLEAR).all()
    ndvi[30] = 0.05
    assert np.flatnonzero(cm.temporal_cloud_shadow(ndvi=_series(ndvi), days=days)).tolist() == [30]
    water = [-0.2, -0.05, -0.3, -0.1, -0.25, -0.4, -0.1, -0.2, -0.15, -0.3]
    assert (cm.temporal_cloud_shadow(ndvi=_series(water), days=DAYS) == CLEAR).all()


def test_blue_brightening_is_cloud_and_nir_swir_darkening_is_shadow():
    blue, nir, swir1 = [0.05] * 10, [0.30] * 10, [0.15] * 10
    blue[3] = 0.30
    nir[7], swir1[7] = 0.08, 0.05
    codes = cm.temporal_cloud_shadow(blue=_series(blue), nir=_series(nir), swir1=_series(swir1), days=DAYS)
    assert codes[:, 0, 0].tolist() == [0, 0, 0, 1, 0, 0, 0, 2, 0, 0]


def test_nan_is_nodata_and_pixels_with_too_few_dates_stay_clear():
    ndvi = np.full((4, 1, 2), 0.7, "float32")
    ndvi[1, 0, 0] = 0.1
    ndvi[[0, 2], 0, 1] = np.nan
    ndvi[3, 0, 1] = 0.1
    codes = cm.temporal_cloud_shadow(ndvi=ndvi, days=DAYS[:4])
    assert codes[:, 0, 0].tolist() == [0, 1, 0, 0] and codes[:, 0, 1].tolist() == [255, 0, 255, 0]


def test_majority_filter_drops_a_speck_and_keeps_a_block():
    codes = np.zeros((7, 7), "uint8")
    codes[0, 0] = CLOUD
    codes[3:6, 3:6] = CLOUD
    smooth = cm.smooth_cloud(codes, radius_px=1)
    assert smooth[0, 0] == CLEAR and (smooth[3:6, 3:6] == CLOUD).all()


# ----------------------------------------------------------------------------- Slovenia (real data)


def _slovenia():
    folder = DATA / "s2_slovenia_eolearn"
    with rasterio.open(folder / "ndvi.tif") as src:
        ndvi, pixel = src.read(), abs(src.res[0])
    with rasterio.open(folder / "cloud_mask.tif") as src:
        shipped = src.read().astype(bool)
    times = pd.to_datetime(pd.read_csv(folder / "dates.csv")["datetime_utc"])
    return ndvi, shipped, times, pixel


def test_temporal_mask_agrees_with_slovenias_s2cloudless_mask_on_85_percent_of_pixels():
    """68 dates of NDVI; the shipped s2cloudless mask is withheld and only used to score. The research
    measured 0.857 without and 0.873 with the 40 m majority filter (the config default)."""
    import xarray as xr

    ndvi, shipped, times, pixel = _slovenia()
    stack = xr.Dataset({"ndvi": (("time", "y", "x"), ndvi)}, coords={"time": times.values})
    codes = cm.temporal_mask(stack, smooth_px=round(40 / pixel)).values
    agreement = ((codes != CLEAR) == shipped).mean()
    assert agreement >= 0.85, agreement


# ----------------------------------------------------------------------------- which method applies


def _write_scenes(tmp_path, values_by_date, descriptions=("blue", "green", "red", "nir", "swir1", "swir2")):
    for date, values in values_by_date.items():
        write_scene(tmp_path / f"scene_{date}.tif", values, descriptions=descriptions)


def _scene(pixel, n=4) -> np.ndarray:
    return np.broadcast_to((np.asarray(pixel) * 10000).astype("uint16")[:, None, None], (6, n, n)).copy()


def _stack(tmp_path, cloud_mask: CloudMaskConfig, **source):
    config = IngestConfig.model_validate({"chunk_size": 64, "sources": [
        {"kind": "files", "scenes": str(tmp_path / "scene_*.tif"), "scale": 1e-4, **source}]})
    aoi = gpd.GeoSeries([box(X0, Y0 - 4 * RES, X0 + 4 * RES, Y0)], crs=CRS)
    listed = sources.list_sources(config, cloud_mask)
    return sources.aoi_stack(listed, aoi, ingest_config=config, drop=cloud_mask.drop, aoi_id="mine")[0]


def test_without_a_quality_band_the_default_is_spectral_with_a_warning(tmp_path, caplog):
    cloudy = _scene(FOREST)
    cloudy[:, :2, :2] = (np.asarray(CLOUD_PX) * 10000).astype("uint16")[:, None, None]
    _write_scenes(tmp_path, {"20200101": _scene(FOREST), "20200201": cloudy})
    with caplog.at_level(logging.WARNING):
        stack = _stack(tmp_path, CloudMaskConfig())
    assert "ingest.sources[0]: its scenes have no quality band: their clouds and shadows are masked by " \
           "cloud_mask.method spectral" in caplog.text
    red = stack["red"].values
    assert np.isnan(red[1, :2, :2]).all() and np.isfinite(red[1, 2:, 2:]).all() and np.isfinite(red[0]).all()
    assert np.isfinite(_stack(tmp_path, CloudMaskConfig(method="none"))["red"].values).all()


def test_temporal_masks_a_bright_date_among_three(tmp_path):
    bright = _scene(FOREST)
    bright[0] = 3000                                              # blue +0.27: cloud-like, only on one date
    _write_scenes(tmp_path, {"20200101": _scene(FOREST), "20200111": bright, "20200121": _scene(FOREST),
                             "20200131": _scene(FOREST)})
    blue = _stack(tmp_path, CloudMaskConfig(method="temporal", smooth_m=0))["blue"].values
    assert np.isnan(blue[1]).all() and np.isfinite(blue[[0, 2, 3]]).all()


@pytest.mark.parametrize("method, source, message", [
    ("qa", {}, r"ingest.sources\[0\]: cloud_mask.method qa needs a quality band, and the source has none"),
    ("spectral", {"bands": {"red": "red", "nir": "nir"}},
     r"cloud_mask.method spectral needs the blue and red bands, the source has \['nir', 'red'\]; use "
     r"cloud_mask.method temporal"),
    ("temporal", {}, r"cloud_mask.method temporal needs 3 or more dates, the source has 2"),
])
def test_a_method_the_source_cannot_serve_names_the_key_and_the_alternative(tmp_path, method, source, message):
    _write_scenes(tmp_path, {"20200101": _scene(FOREST), "20200201": _scene(FOREST)})
    with pytest.raises(InputError, match=message):
        _stack(tmp_path, CloudMaskConfig(method=method), **source)


def test_method_qa_on_scenes_without_the_band_names_the_option_that_lets_the_run_go_on(tmp_path):
    _write_scenes(tmp_path, {"20200101": _scene(FOREST)})
    with pytest.raises(InputError, match=r"scene_20200101.tif: scene 'scene_20200101' has no quality band 'mask'.*"
                                         r"which cloud_mask.method qa needs; set cloud_mask.method to spectral, "
                                         r"temporal or none"):
        _stack(tmp_path, CloudMaskConfig(method="qa"), mask={"band": "mask", "classes": {"cloud": [1]}})
