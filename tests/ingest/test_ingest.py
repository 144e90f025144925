"""Ingest: file layouts, sensor profiles on fixture scenes named like the real archives, the grid, and the
bad-input matrix of the ingest issue (one test each, with its message)."""

from __future__ import annotations

import logging

import dask
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import xarray as xr
from conftest import CRS, RES, X0, Y0, write_scene
from rasterio.transform import from_origin
from shapely.geometry import box

from pipeline.ingest import read_aois, sources
from pipeline.config import CloudMaskConfig, IngestConfig
from pipeline.errors import InputError
from pipeline.ingest import drop_empty_scenes, open_raster, scenes_with_pixels


def _aoi(aoi_file):
    return gpd.read_file(aoi_file).geometry


def _stack(ingest: dict, aoi, tmp_path, cloud_mask: CloudMaskConfig | None = None):
    cloud_mask = cloud_mask or CloudMaskConfig()
    config = IngestConfig.model_validate({"chunk_size": 64, **ingest}, context={"base_dir": tmp_path})
    scenes_glob = str(tmp_path / config.scenes) if config.scenes else None
    listed = sources.list_sources(config, cloud_mask, scenes_glob=scenes_glob)
    stack, _ = sources.aoi_stack(listed, aoi, ingest_config=config, drop=cloud_mask.drop, aoi_id="mine_a")
    return stack


def _write(path, values, *, crs=CRS, x0=X0, y0=Y0, res=RES, nodata=0, dtype="uint16", descriptions=None,
           tags=None):
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[np.newaxis]
    count, ny, nx = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=count, dtype=dtype, crs=crs,
                       transform=from_origin(x0, y0, res, res), nodata=nodata) as dst:
        dst.write(values.astype(dtype))
        if descriptions:
            dst.descriptions = tuple(descriptions)
        if tags:
            dst.update_tags(**tags)
    return path


# ------------------------------------------------------------------------- the shorthand (demo) form


def test_shorthand_stack_is_lazy_scaled_masked_and_clipped_to_the_aoi(scene_files, tmp_path, aoi_file):
    stack = _stack({"scenes": "scene_*.tif"}, _aoi(aoi_file), tmp_path)
    assert dask.is_dask_collection(stack) and "mask" not in stack
    # grid on the scenes' pixels, covering the AOI's bounds: the first row and column of the files are gone
    assert dict(stack.sizes) == {"time": 3, "y": 9, "x": 9}
    assert stack.rio.crs.to_epsg() == 32736
    assert stack.rio.transform().c == X0 + RES and stack.rio.transform().f == Y0 - RES
    red = stack["red"].values
    np.testing.assert_allclose(red[:, 3, 3], [0.1, 0.2, 0.3], rtol=1e-6)
    assert np.isnan(red[:, :2, 7:]).all()           # the notch is outside the AOI polygon
    assert np.isfinite(red[:, 2, 7:]).all()
    assert np.isnan(red[2, 8, 8]) and red[1, 8, 8] == pytest.approx(0.2)   # nodata in the third scene
    # the cloud (mask 1) at file pixel (5, 5) of the second scene is dropped at ingest, in every band
    assert np.isnan(red[1, 4, 4]) and np.isnan(stack["swir2"].values[1, 4, 4])
    assert red[0, 4, 4] == pytest.approx(0.1) and red[2, 4, 4] == pytest.approx(0.3)
    assert list(stack["scene_id"].values) == ["scene_20200301", "scene_20200601", "scene_20210301"]


def test_a_scene_on_a_shifted_grid_contributes_its_part(scene_files, tmp_path, aoi_file):
    values = np.full((7, 6, 6), 4000, "uint16")
    values[6] = 0
    write_scene(tmp_path / "scene_20220301.tif", values, x0=X0 + 4 * RES, y0=Y0 - 4 * RES)
    stack = _stack({"scenes": "scene_*.tif"}, _aoi(aoi_file), tmp_path)
    red = stack["red"].values[3]
    # file rows/columns 4..9 -> grid rows/columns 3..8; the rest of the AOI is NaN for this scene
    np.testing.assert_allclose(red[3:, 3:], 0.4, rtol=1e-6)
    assert np.isnan(red[:3]).all() and np.isnan(red[:, :3]).all()


def test_an_aoi_inside_a_scene_is_read_chunk_by_chunk_from_its_own_corner(tmp_path):
    values = np.arange(3 * 10 * 10, dtype="uint16").reshape(3, 10, 10)
    path = _write(tmp_path / "scene.tif", values)
    whole = open_raster(path, chunk_size=4)
    aoi = whole.odc.geobox[1:10, 1:9]               # starts one pixel into the file: off its 4 x 4 chunks
    window = open_raster(path, chunk_size=4, within=aoi)
    assert window.odc.geobox == aoi and window.data.chunks == ((3,), (4, 4, 1), (4, 4))
    graph = window.data.__dask_graph__()
    assert len(graph.layers) == 1 and len(graph) == 6   # one read per chunk of the AOI, nothing cut or joined
    np.testing.assert_array_equal(window.values, values[:, 1:10, 1:9])
    beyond = whole.odc.geobox[-2:12, 0:10]          # not inside the file: the whole file, as without `within`
    assert open_raster(path, chunk_size=4, within=beyond).odc.geobox == whole.odc.geobox


def test_scenes_with_pixels_finds_one_valid_pixel_in_any_block_or_variable():
    values = np.full((3, 10, 10), np.nan, "float32")
    red, nir = values.copy(), values.copy()
    red[0, 9, 9] = 0.1          # scene 0: one pixel, in the last of 3 x 3 blocks
    nir[1, 0, 0] = 0.2          # scene 1: one pixel, in another variable; scene 2: none
    stack = xr.Dataset({"red": (("time", "y", "x"), red), "nir": (("time", "y", "x"), nir)},
                       coords={"time": np.arange(3)}).chunk({"time": 1, "y": 4, "x": 4})
    lazy = scenes_with_pixels(stack)
    assert dask.is_dask_collection(lazy)
    assert lazy.values.tolist() == [True, True, False]
    assert scenes_with_pixels(stack.load()).values.tolist() == [True, True, False]


def test_an_entirely_masked_scene_is_dropped_with_a_warning(scene_files, tmp_path, aoi_file, caplog):
    values = np.full((7, 10, 10), 3000, "uint16")
    values[6] = 1                                   # all cloud
    write_scene(tmp_path / "scene_20220301.tif", values)
    stack = _stack({"scenes": "scene_*.tif"}, _aoi(aoi_file), tmp_path)
    with caplog.at_level(logging.WARNING):
        kept = drop_empty_scenes(stack, aoi_id="mine_a")
    assert kept.sizes["time"] == 3
    assert "scene scene_20220301" in caplog.text and "no clear pixel in the AOI; dropped" in caplog.text


# ------------------------------------------------------------------------------------ Landsat C2 L2


def _landsat_scene(folder, product_id, band_numbers, qa, dn=None):
    for b in band_numbers:
        values = np.full(qa.shape, 10000 + 1000 * b if dn is None else dn, "uint16")
        values[qa == 1] = 0                          # SR fill where QA says fill
        _write(folder / f"{product_id}_SR_B{b}.TIF", values)
    _write(folder / f"{product_id}_QA_PIXEL.TIF", qa, nodata=1)


def test_landsat_c2_fixture_scales_numbers_bands_by_mission_and_masks_qa_pixel(tmp_path):
    from test_sensors import QA_CASES

    qa = np.array(list(QA_CASES), "uint16").reshape(3, 4)
    _landsat_scene(tmp_path, "LC08_L2SP_168072_20200515_20200820_02_T1", (1, 2, 3, 4, 5, 6, 7), qa)
    _landsat_scene(tmp_path, "LT05_L2SP_168072_19950410_20200912_02_T1", (1, 2, 3, 4, 5, 7),
                   np.full((3, 4), 5440, "uint16"))      # TM clear value (bits 6, 8, 10, 12, 14)
    aoi = gpd.GeoSeries([box(X0, Y0 - 3 * RES, X0 + 4 * RES, Y0)], crs=CRS)
    stack = _stack({"sources": [{"kind": "files", "sensor": "landsat-c2-l2", "scenes": "L*_L2SP_*.TIF",
                                 "layout": "band-per-file"}]}, aoi, tmp_path)
    assert [str(t)[:10] for t in stack["time"].values] == ["1995-04-10", "2020-05-15"]
    assert list(stack["scene_id"].values) == ["LT05_L2SP_168072_19950410_20200912_02_T1",
                                              "LC08_L2SP_168072_20200515_20200820_02_T1"]
    # TM red is SR_B3, OLI red is SR_B4: reflectance = DN * 0.0000275 - 0.2
    assert stack["red"].values[0, 0, 0] == pytest.approx(13000 * 0.0000275 - 0.2, abs=1e-6)
    assert stack["swir1"].values[0, 0, 0] == pytest.approx(15000 * 0.0000275 - 0.2, abs=1e-6)
    red = stack["red"].values[1]
    kept = np.array([v in (0, 3) for v in QA_CASES.values()]).reshape(3, 4)   # clear, water; snow kept
    assert np.isfinite(red[kept]).all() and np.isnan(red[~kept]).all()
    np.testing.assert_allclose(red[kept], 14000 * 0.0000275 - 0.2, rtol=1e-5)


def test_landsat_snow_is_kept_unless_dropped(tmp_path):
    qa = np.array([[21824, 30048]], "uint16")
    _landsat_scene(tmp_path, "LC09_L2SP_168072_20230101_20230110_02_T1", (2, 3, 4, 5, 6, 7), qa, dn=20000)
    aoi = gpd.GeoSeries([box(X0, Y0 - RES, X0 + 2 * RES, Y0)], crs=CRS)
    source = {"sources": [{"kind": "files", "sensor": "landsat-c2-l2", "scenes": "*.TIF",
                           "layout": "band-per-file"}]}
    assert np.isfinite(_stack(source, aoi, tmp_path)["nir"].values).all()
    snowless = _stack(source, aoi, tmp_path, CloudMaskConfig(drop=["cloud", "snow"]))
    assert np.isnan(snowless["nir"].values[0, 0, 1]) and np.isfinite(snowless["nir"].values[0, 0, 0])


def test_harmonisation_brings_tm_to_oli(tmp_path):
    _landsat_scene(tmp_path, "LT05_L2SP_168072_19950410_20200912_02_T1", (1, 2, 3, 4, 5, 7),
                   np.full((1, 1), 5440, "uint16"), dn=20000)
    aoi = gpd.GeoSeries([box(X0, Y0 - RES, X0 + RES, Y0)], crs=CRS)
    stack = _stack({"harmonise": True, "sources": [{"kind": "files", "sensor": "landsat-c2-l2",
                                                    "scenes": "*.TIF", "layout": "band-per-file"}]}, aoi, tmp_path)
    tm = 20000 * 0.0000275 - 0.2
    assert stack["nir"].values[0, 0, 0] == pytest.approx(0.8462 * tm + 0.0412, abs=1e-6)


# -------------------------------------------------------------------------------- Sentinel-2 L2A


def _s2_scene(folder, stamp, scl, dn=1500):
    """10 m bands 2x the SCL's 20 m grid, named like the SAFE IMG_DATA files."""
    ny, nx = scl.shape
    for band in ("B02", "B03", "B04", "B08"):
        _write(folder / f"T36KWD_{stamp}_{band}_10m.tif", np.full((2 * ny, 2 * nx), dn), res=10)
    for band in ("B11", "B12"):
        _write(folder / f"T36KWD_{stamp}_{band}_20m.tif", np.full((ny, nx), dn + 100), res=20)
    _write(folder / f"T36KWD_{stamp}_SCL_20m.tif", scl, res=20, dtype="uint8")


def test_sentinel2_fixture_offsets_from_baseline_4_and_masks_scl_pixel_by_pixel(tmp_path):
    scl = np.arange(12, dtype="uint8").reshape(3, 4)
    _s2_scene(tmp_path, "20211215T074611", scl)
    _s2_scene(tmp_path, "20220601T074609", np.full((3, 4), 4, "uint8"))
    aoi = gpd.GeoSeries([box(X0, Y0 - 60, X0 + 80, Y0)], crs=CRS)
    stack = _stack({"sources": [{"kind": "files", "sensor": "sentinel-2-l2a", "scenes": "T36KWD_*",
                                 "layout": "band-per-file"}]}, aoi, tmp_path)
    assert dict(stack.sizes) == {"time": 2, "y": 6, "x": 8}           # the 10 m grid of B02
    assert str(stack["time"].values[0])[:19] == "2021-12-15T07:46:11"
    red = stack["red"].values
    np.testing.assert_allclose(red[1], (1500 - 1000) / 10000, rtol=1e-5)  # baseline 04.00: -1000
    np.testing.assert_allclose(stack["swir1"].values[1], (1600 - 1000) / 10000, rtol=1e-5)
    # SCL 20 m pixel (r, c) -> 10 m pixels (2r..2r+1, 2c..2c+1), nearest; dropped: 0, 1, 3, 8, 9, 10
    dropped = np.isin(scl, [0, 1, 3, 8, 9, 10]).repeat(2, 0).repeat(2, 1)
    assert np.isnan(red[0][dropped]).all()
    np.testing.assert_allclose(red[0][~dropped], 0.15, rtol=1e-5)      # before 2022-01-25: no offset


# --------------------------------------------------------------------------------- other layouts


def test_band_per_file_with_user_patterns_and_two_acquisitions_on_one_day(tmp_path):
    for stamp, value in (("2015-12-08T100409", 100), ("2015-12-08T101125", 200)):
        for band in ("red", "nir"):
            _write(tmp_path / f"patch_{band}_{stamp}.tif", np.full((2, 2), value), dtype="int16", nodata=-1)
    aoi = gpd.GeoSeries([box(X0, Y0 - 2 * RES, X0 + 2 * RES, Y0)], crs=CRS)
    stack = _stack({"sources": [{"kind": "files", "scenes": "patch_*.tif", "layout": "band-per-file",
                                 "band_pattern": r"patch_(red|nir)_", "date_pattern": r"_(\d{4}-\d{2}-\d{2}T\d{6})",
                                 "date_format": "%Y-%m-%dT%H%M%S", "scale": 0.001,
                                 "bands": {"red": "red", "nir": "nir"}}]}, aoi, tmp_path)
    assert stack.sizes["time"] == 2                   # keyed by datetime, not date
    np.testing.assert_allclose(stack["red"].values[:, 0, 0], [0.1, 0.2], rtol=1e-6)


def test_date_per_band_file_and_date_from_tags_merge_into_one_series(tmp_path):
    stamps = ["2015-07-11T10:00:08", "2015-07-31T10:00:09"]
    _write(tmp_path / "ndvi.tif", np.stack([np.full((2, 2), 0.5), np.full((2, 2), 0.7)]), dtype="float32",
           nodata=None, descriptions=stamps)
    _write(tmp_path / "cloud_mask.tif", np.stack([np.zeros((2, 2)), np.eye(2)]), dtype="uint8", nodata=None,
           descriptions=stamps)
    _write(tmp_path / "l1c_a.tif", np.full((2, 2, 2), 0.25), dtype="float32", nodata=None,
           descriptions=("B04", "B08"), tags={"DATETIME": stamps[1]})
    aoi = gpd.GeoSeries([box(X0, Y0 - 2 * RES, X0 + 2 * RES, Y0)], crs=CRS)
    config = {"sources": [
        {"kind": "files", "scenes": "[nc]*.tif", "layout": "date-per-band", "scale": 1,
         "band_pattern": r"^(ndvi|cloud_mask)\.tif$", "bands": {"ndvi": "ndvi"},
         "mask": {"band": "cloud_mask", "classes": {"cloud": [1]}}},
        {"kind": "files", "scenes": "l1c_*.tif", "date_from": "tags", "scale": 1,
         "bands": {"red": "B04", "nir": "B08"}},
    ]}
    stack = _stack(config, aoi, tmp_path)
    assert [str(t) for t in stack["time"].values] == ["2015-07-11T10:00:08.000000", "2015-07-31T10:00:09.000000"]
    ndvi = stack["ndvi"].values
    np.testing.assert_allclose(ndvi[0], 0.5)
    assert np.isnan(ndvi[1][np.eye(2, dtype=bool)]).all() and (ndvi[1][~np.eye(2, dtype=bool)] == np.float32(0.7)).all()
    assert np.isnan(stack["red"].values[0]).all()     # the second source has only the second date
    np.testing.assert_allclose(stack["red"].values[1], 0.25)


def test_scenes_in_another_crs_are_reprojected_not_refused(scene_files, tmp_path, aoi_file):
    # the same 0.5 reflectance scene in UTM 37S (EPSG:32737), around the same place
    from pyproj import Transformer

    x, y = Transformer.from_crs(CRS, "EPSG:32737", always_xy=True).transform(X0 - 300, Y0 + 300)
    _write(tmp_path / "scene_20220301.tif", np.concatenate([np.full((6, 30, 30), 5000), np.zeros((1, 30, 30))]),
           crs="EPSG:32737", x0=x, y0=y, descriptions=("blue", "green", "red", "nir", "swir1", "swir2", "mask"))
    stack = _stack({"scenes": "scene_*.tif"}, _aoi(aoi_file), tmp_path)
    assert stack.rio.crs.to_epsg() == 32736 and stack.sizes["time"] == 4
    np.testing.assert_allclose(stack["red"].values[3, 4, 4], 0.5, rtol=1e-5)


def test_target_crs_and_resolution_from_config(scene_files, tmp_path, aoi_file):
    stack = _stack({"scenes": "scene_*.tif", "grid": {"crs": "EPSG:32736", "resolution": 60,
                                                      "anchor": "resolution"}}, _aoi(aoi_file), tmp_path)
    assert stack.rio.resolution() == (60.0, -60.0)
    assert stack.rio.transform().c % 60 == 0


# ------------------------------------------------------------------------------ bad input matrix


def test_corrupt_file_is_named_or_skipped_with_a_warning(scene_files, tmp_path, aoi_file, caplog):
    (tmp_path / "scene_20220101.tif").write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(InputError, match=r"scene_20220101\.tif: cannot open as a raster.*on_error: skip"):
        _stack({"scenes": "scene_*.tif"}, _aoi(aoi_file), tmp_path)
    with caplog.at_level(logging.WARNING):
        stack = _stack({"sources": [{"kind": "files", "scenes": "scene_*.tif", "on_error": "skip",
                                     "scale": 1e-4, "mask": {"band": "mask", "classes": {"cloud": [1, 2]}}}]},
                       _aoi(aoi_file), tmp_path)
    assert stack.sizes["time"] == 3 and "scene_20220101.tif: cannot open as a raster" in caplog.text


def test_file_without_crs_is_named(tmp_path, aoi_file):
    path = tmp_path / "scene_20200101.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="uint16") as dst:
        dst.write(np.ones((1, 2, 2), "uint16"))
    with pytest.raises(InputError, match=r"scene_20200101\.tif: has no CRS"):
        _stack({"scenes": "scene_*.tif"}, _aoi(aoi_file), tmp_path)


def test_band_the_profile_needs_but_the_files_lack_is_named(tmp_path, aoi_file):
    write_scene(tmp_path / "scene_20200101.tif", np.ones((2, 10, 10)), descriptions=("red", "nir"))
    with pytest.raises(InputError, match=r"scene_20200101\.tif: scene 'scene_20200101' lacks the band\(s\) "
                                         r"\['blue', 'green', 'swir1', 'swir2'\] that ingest"):
        _stack({"scenes": "scene_*.tif"}, _aoi(aoi_file), tmp_path)


def test_no_scene_overlaps_the_aoi(scene_files, tmp_path, aoi_file):
    far = _aoi(aoi_file).to_crs(CRS).translate(50_000, 0)
    with pytest.raises(InputError, match=r"the AOI does not overlap any of the 3 scenes \(aoi 'mine_a'; scenes listed "
                                         r"per source: ingest: 3\)"):
        _stack({"scenes": "scene_*.tif"}, far, tmp_path)


def test_date_pattern_that_matches_no_file(scene_files, tmp_path, aoi_file):
    with pytest.raises(InputError, match=r"ingest.sources\[0\].date_pattern .* matches none of the 3 files"):
        _stack({"sources": [{"kind": "files", "scenes": "scene_*.tif",
                             "date_pattern": r"_(\d{4}-\d{2}-\d{2})"}]}, _aoi(aoi_file), tmp_path)


def test_nothing_matches_the_glob(tmp_path, aoi_file):
    with pytest.raises(InputError, match=r"no scene files match .*\(ingest.sources\[0\].scenes\)"):
        _stack({"sources": [{"kind": "files", "scenes": "nothing_*.tif"}]}, _aoi(aoi_file), tmp_path)


def test_aoi_file_without_the_id_field_or_with_duplicate_ids(tmp_path):
    path = tmp_path / "aois.geojson"
    polygons = [box(0, 0, 1, 1), box(2, 2, 3, 3)]
    gpd.GeoDataFrame({"mine": ["a", "a"]}, geometry=polygons, crs="EPSG:4326").to_file(path)
    with pytest.raises(InputError, match=r"aois\.geojson: no field 'aoi_id' \(aoi.id_field\); fields are"):
        read_aois(path, id_field="aoi_id")
    with pytest.raises(InputError, match=r"aois\.geojson: AOI ids must be unique \(ignoring case\), repeated: \['a'\]"):
        read_aois(path, id_field="mine")


def test_config_refuses_both_or_neither_scenes_and_sources():
    with pytest.raises(ValueError, match="give either sources"):
        IngestConfig.model_validate({})
    with pytest.raises(ValueError, match="exactly one of api"):
        IngestConfig.model_validate({"sources": [{"kind": "stac"}]})
