"""The four real data sets in tests/data (copied from ../shared/data with their READMEs) load through the
configs in configs/ into the common form: right dates, CRS, grid, and values equal to the README's scaling
of the raw numbers (read here with rasterio and scaled by hand)."""

from __future__ import annotations


import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import box

from pipeline.ingest import sources
from pipeline.config import IngestConfig, load_config
from pipeline.ingest import drop_empty_scenes

from conftest import DATA, ROOT



def _load(config_name: str, aoi=None):
    config = load_config(ROOT / "configs" / f"{config_name}.yaml")
    return _stack(config.ingest, config.cloud_mask, aoi if aoi is not None else _aoi(config.aoi.path))


def _stack(ingest, cloud_mask, aoi):
    listed = sources.list_sources(ingest, cloud_mask)
    stack, _ = sources.aoi_stack(listed, aoi, ingest_config=ingest, drop=cloud_mask.drop, aoi_id="real")
    return stack


def _aoi(path):
    return gpd.read_file(path).geometry


def _raw(path, band=1, *, row, col):
    """The raw value at (row, col) of a file and the map coordinates of that pixel's centre."""
    with rasterio.open(path) as src:
        x, y = src.xy(row, col)
        return src.read(band)[row, col], x, y


def _at(stack, name, when, x, y):
    return float(stack[name].sel(time=pd.Timestamp(when)).sel(x=x, y=y, method="nearest", tolerance=1e-3))


def test_sentinel2_slovenia_ndvi_stack_and_l1c_scenes_merge_by_datetime():
    folder = DATA / "s2_slovenia_eolearn"
    config = load_config(ROOT / "configs" / "s2_slovenia_eolearn.yaml")
    ingest = IngestConfig.model_validate({**config.ingest.model_dump(exclude_none=True), "sources": [
        *[s.model_dump(exclude_none=True) for s in config.ingest.sources],
        {"kind": "files", "scenes": str(folder / "bands_l1c" / "S2_L1C_*.tif"), "date_from": "tags",
         "scale": 1.0, "bands": {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir1": "B11",
                                 "swir2": "B12"}}]})
    stack = _stack(ingest, config.cloud_mask, _aoi(config.aoi.path))
    times = pd.DatetimeIndex(stack["time"].values)
    dates = pd.read_csv(folder / "dates.csv")
    assert list(times) == list(pd.to_datetime(dates["datetime_utc"]))             # all 68, in order
    assert (times.normalize() == pd.Timestamp("2015-12-08")).sum() == 2              # kept apart
    assert stack.rio.crs.to_epsg() == 32633
    assert stack.rio.resolution() == pytest.approx((9.9948, -9.9974), abs=1e-4)
    # NDVI is float, scale 1; band 9 = 2015-12-08T10:11:25 is cloudy at (50, 50), band 1 is clear
    ndvi, x, y = _raw(folder / "ndvi.tif", 1, row=50, col=50)
    assert _at(stack, "ndvi", "2015-07-11T10:00:08", x, y) == pytest.approx(float(ndvi))
    assert np.isnan(_at(stack, "ndvi", "2015-12-08T10:11:25", x, y))
    # L1C B04 of the same acquisition lands in the same time step; dates without L1C have no red
    red, _, _ = _raw(folder / "bands_l1c" / "S2_L1C_2015-07-11.tif", 4, row=50, col=50)
    assert _at(stack, "red", "2015-07-11T10:00:08", x, y) == pytest.approx(float(red)) == pytest.approx(0.0356)
    assert np.isnan(stack["red"].sel(time="2016").values).all()
    # 20 dates are fully cloudy (README): dropped with a warning, 48 left
    assert drop_empty_scenes(stack[["ndvi"]], aoi_id="slovenia_patch").sizes["time"] == 48


def test_cbers4_awfi_per_band_files_in_a_wkt_only_albers_crs():
    folder = DATA / "cbers4_awfi_bahia_sits"
    stack = _load("cbers4_awfi_bahia_sits")
    assert stack.sizes["time"] == 14 and str(stack["time"].values[0])[:10] == "2018-02-02"
    with rasterio.open(folder / "CBERS-4_AWFI_022024_B15_2018-04-07.tif") as src:
        assert stack.rio.crs == src.crs and src.crs.to_epsg(confidence_threshold=100) in (None, 10857)
        assert "aea" in src.crs.to_proj4() or "Albers" in src.crs.to_wkt()
    assert stack.rio.resolution() == pytest.approx((63.997, -64.002), abs=1e-3)
    red, x, y = _raw(folder / "CBERS-4_AWFI_022024_B15_2018-04-07.tif", row=20, col=30)
    assert red == 1151 and _at(stack, "red", "2018-04-07", x, y) == pytest.approx(0.1151)


def test_cbers4_cmask_cloud_is_dropped_pixel_by_pixel():
    folder = DATA / "cbers4_awfi_bahia_sits"
    with rasterio.open(folder / "CBERS-4_AWFI_022024_CMASK_2018-04-07.tif") as src:
        whole = gpd.GeoSeries([box(*src.bounds)], crs=src.crs)
        assert np.argwhere(src.read(1) == 4).tolist() == [[2, 30]]      # the one cloud pixel (README)
    stack = _load("cbers4_awfi_bahia_sits", aoi=whole)
    _, x, y = _raw(folder / "CBERS-4_AWFI_022024_B15_2018-04-07.tif", row=2, col=30)
    assert np.isnan(_at(stack, "nir", "2018-04-07", x, y))
    assert np.isfinite(_at(stack, "nir", "2018-04-23", x, y))
    assert int(stack["nir"].sel(time="2018-04-07").isnull().sum()) == 1


def test_modis_ndvi_evi_per_file_in_sinusoidal():
    folder = DATA / "modis_mod13q1_sinop_sits"
    stack = _load("modis_mod13q1_sinop_sits")
    assert set(stack.data_vars) == {"ndvi", "evi"} and stack.sizes["time"] == 6
    assert "sinu" in stack.rio.crs.to_proj4()
    assert stack.rio.resolution() == pytest.approx((231.656, -231.656), abs=1e-3)
    evi, x, y = _raw(folder / "TERRA_MODIS_h12v10_EVI_2013-10-16.tif", row=50, col=100)
    assert _at(stack, "evi", "2013-10-16", x, y) == pytest.approx(evi * 1e-4) == pytest.approx(0.5208)


def test_landsat_pucallpa_display_composites_reprojected_to_utm():
    folder = DATA / "landsat_pucallpa"
    stack = _load("landsat_pucallpa_opengeos")
    assert [str(t)[:4] for t in stack["time"].values] == [str(y) for y in range(1985, 2021, 5)]
    assert stack.rio.crs.to_epsg() == 32718                      # UTM zone of the AOI's centroid
    assert stack.rio.resolution() == (90.0, -90.0)
    assert set(stack.data_vars) == {"swir1", "nir", "red", "green"}
    # bilinear from the 0.000808 deg grid: the AOI mean stays the raw mean / 255 within 2 %
    with rasterio.open(folder / "landsat_2020.tif") as src:
        window = rasterio.windows.from_bounds(*_aoi(folder / "aoi.geojson").total_bounds, src.transform)
        raw = src.read(2, window=window).astype(float)
    nir = stack["nir"].sel(time="2020").values
    assert np.nanmean(nir) == pytest.approx(raw[raw > 0].mean() / 255, rel=0.02)
    assert np.nanmax(nir) <= 1.0


def test_cbers_config_runs_to_composites_and_video(tmp_path):
    from pipeline.runner import run_pipeline

    video = {"width": 320, "height": 240, "fps": 2, "intro_seconds": 0, "outro_seconds": 0,
             "crossfade_seconds": 0}
    config = load_config(ROOT / "configs" / "cbers4_awfi_bahia_sits.yaml",
                         overrides={"output_dir": str(tmp_path), "video": video})
    result = run_pipeline(config)
    assert result.ok, result.failed
    record = result.manifest["aois"]["bahia_cerrado"]
    assert record["stages"]["ingest"]["scenes"] == 14 and record["stages"]["classify"]["status"] == "skipped"
    with rasterio.open(tmp_path / "cbers4_awfi_bahia_sits" / "bahia_cerrado" / "composites" / "2018.tif") as src:
        assert src.descriptions[:4] == ("blue", "green", "red", "nir") and src.count >= 5
    assert record["stages"]["video"]["status"] == "done"
    assert (tmp_path / "cbers4_awfi_bahia_sits" / "bahia_cerrado" / "video" / "bahia_cerrado.mp4").is_file()


@pytest.mark.parametrize("config_name, aoi_id, n_classes", [("s2_slovenia_eolearn", "slovenia_patch", 5),
                                                            ("s2_slovenia_monthly", "slovenia_patch", 5),
                                                            ("modis_mod13q1_sinop_sits", "sinop", 4)])
def test_labelled_real_data_configs_run_to_class_maps(tmp_path, config_name, aoi_id, n_classes):
    from pipeline.results import open_run
    from pipeline.runner import run_pipeline

    video = {"width": 320, "height": 180, "fps": 2, "intro_seconds": 0, "outro_seconds": 0, "crossfade_seconds": 0}
    config = load_config(ROOT / "configs" / f"{config_name}.yaml",  # one importance shuffle: its table at a test's cost
                         overrides={"output_dir": str(tmp_path), "video": video, "classify": {"importance_repeats": 1}})
    result = run_pipeline(config)
    assert result.ok, result.failed
    stages = result.manifest["aois"][aoi_id]["stages"]
    assert stages["classify"]["status"] == "done" and stages["change"]["status"] == "done"
    if config_name == "modis_mod13q1_sinop_sits":  # NDVI and EVI only: nothing in colour
        assert stages["video"] == {"status": "skipped", "reason": "composites lack ['blue', 'green', 'red'] "
                                                                  "(video.rgb_bands)"}
    else:  # the Sentinel-2 NDVI series as a grey time-lapse, cloudy dates masked
        assert stages["video"]["status"] == "done"
    run = open_run(config.run_dir)
    class_map = run.class_map(aoi_id).compute()
    mapped = set(np.unique(class_map.values)) - {255}
    assert mapped <= {c.code for c in config.classes} and len(mapped) >= 2
    assert len(run.class_area(aoi_id)) == len(run.periods(aoi_id)) * n_classes
    if config_name == "s2_slovenia_monthly":  # 27 months hold an acquisition; in three every one is cloud
        composite = stages["composite"]
        assert composite["skipped_periods"] == ["2016-04", "2016-07", "2016-10"] and len(composite["periods"]) == 24
        assert run.period_labels(aoi_id)["2015-12"] == "Dec 2015"
