"""The run's outputs as a static STAC catalog: offline validation, one item per AOI and period, the run's
classes and grids, loading back through the pipeline's own STAC ingest pixel for pixel, same bytes."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import urllib.request
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import rioxarray
import xarray as xr
from conftest import CRS, RES, X0, Y0
from shapely.geometry import box

from pipeline import io
from pipeline.ingest import read_aois, sources, stac
from pipeline.ingest.rasters import open_raster
from pipeline.products.catalog import validate_output_catalog, write_output_catalog
from pipeline.config import DEFAULT_CLASSES, CloudMaskConfig, IngestConfig
from pipeline.errors import InputError
from pipeline.results import OutputLayout

# A custom Albers CRS with no EPSG code (as the Brazil Data Cube's): proj:wkt2 instead of proj:code.
ALBERS = ('PROJCS["albers",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
          'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Albers_Conic_Equal_Area"],'
          'PARAMETER["latitude_of_center",-12],PARAMETER["longitude_of_center",-54],'
          'PARAMETER["standard_parallel_1",-2],PARAMETER["standard_parallel_2",-22],'
          'PARAMETER["false_easting",5000000],PARAMETER["false_northing",10000000],UNIT["metre",1]]')
BANDS = ("blue", "red", "nir", "ndvi")


# ------------------------------------------------------------------------------------------- fixtures


def _raster(values: np.ndarray, crs: str, x0: float, y0: float) -> xr.DataArray:
    ny, nx = values.shape[-2:]
    coords = {"y": y0 - RES / 2 - RES * np.arange(ny), "x": x0 + RES / 2 + RES * np.arange(nx)}
    dims = ("band", "y", "x") if values.ndim == 3 else ("y", "x")
    return xr.DataArray(values, coords=coords, dims=dims).rio.write_crs(crs)


def composite_values(period: int) -> np.ndarray:
    """(band, 4, 5) float32: band b, row r, column c = period - 2000 + b / 10 + (5 r + c) / 1000; NaN at (0, 0)."""
    values = (period - 2000 + np.arange(len(BANDS))[:, None, None] / 10
              + np.arange(20).reshape(4, 5) / 1000).astype("float32")
    values[:, 0, 0] = np.nan
    return values


def class_values(period: int) -> np.ndarray:
    """(4, 5) uint8: codes 1..6 by column and period; 255 (nodata) at (0, 0)."""
    codes = (np.arange(20).reshape(4, 5) % 5 + 1 + (period == 2021)).astype("uint8")
    codes[0, 0] = 255
    return codes


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A hand-made run folder: mine_a (UTM 36S) classified in 2020 and 2021, with confidence and first
    change year; mine_b (an Albers CRS without EPSG code) composites only, 2019-2021; mine_c failed
    at ingest (no composites)."""
    run_dir = tmp_path_factory.mktemp("tiny") / "outputs" / "tiny"
    layout = OutputLayout(run_dir)
    stages_a = {"composite": {"status": "done", "periods": [2020, 2021]}, "classify": {"status": "done"},
                "change": {"status": "done"}}
    stages_b = {"composite": {"status": "done", "periods": [2019, 2020, 2021]},
                "classify": {"status": "skipped", "reason": "no classify section"}}
    for period in (2020, 2021):
        io.write_cog(_raster(composite_values(period), CRS, X0, Y0), layout.composite("mine_a", period),
                     band_names=BANDS, nodata=np.nan)
        io.write_cog(_raster(class_values(period), CRS, X0, Y0), layout.class_map("mine_a", period),
                     band_names=["class"], nodata=255, colormap={1: (31, 120, 180, 255)})
        io.write_cog(_raster(np.full((4, 5), 0.75, "float32"), CRS, X0, Y0), layout.confidence("mine_a", period),
                     band_names=["confidence"], nodata=np.nan)
    io.write_cog(_raster(np.where(class_values(2020) != class_values(2021), 2, 0).astype("uint16"), CRS, X0, Y0),
                 layout.first_change("mine_a"), band_names=["first_change_period"], nodata=65535)
    for period in (2019, 2020, 2021):
        io.write_cog(_raster(composite_values(period)[:, :3, :3], ALBERS, 5_000_000.0, 10_000_000.0),
                     layout.composite("mine_b", period), band_names=BANDS, nodata=np.nan)
    manifest = {"run_name": "tiny", "config": {"classes": [c.model_dump() for c in DEFAULT_CLASSES],
                                               "public": {"enabled": False}},
                "aois": {"mine_a": {"status": "done", "stages": stages_a},
                         "mine_b": {"status": "done", "stages": stages_b},
                         "mine_c": {"status": "failed", "stages": {"ingest": {"status": "failed"}}}}}
    io.write_json(manifest, layout.manifest)
    write_output_catalog(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def demo_catalog(demo_run, tmp_path_factory) -> Path:
    """A copy of the small demo's run folder with its catalog written."""
    run_dir = tmp_path_factory.mktemp("demo_catalog") / "demo_small"
    shutil.copytree(demo_run / "outputs" / "demo_small", run_dir, ignore=shutil.ignore_patterns("*.mp4"))
    write_output_catalog(run_dir)
    return run_dir


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection and urllib request fails."""
    def refuse(*args, **kwargs):
        raise OSError("this test must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _documents(run_dir: Path) -> dict[str, dict]:
    return {str(p.relative_to(run_dir)): json.loads(p.read_text()) for p in sorted((run_dir / "stac").rglob("*.json"))}


def _item(run_dir: Path, aoi_id: str, period: int) -> dict:
    return json.loads((run_dir / "stac" / aoi_id / f"{aoi_id}_{period}" / f"{aoi_id}_{period}.json").read_text())


def _digests(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((run_dir / "stac").rglob("*")) if p.is_file()}


def _stac_stack(catalog: Path, aoi: gpd.GeoSeries, aoi_id: str, bands: dict[str, str], **grid) -> xr.Dataset:
    """The AOI's stack as a user's config loads it: a `kind: stac` source on the static catalog."""
    config = IngestConfig.model_validate({"chunk_size": 64, "grid": grid, "sources": [
        {"kind": "stac", "catalog": str(catalog), "collection": aoi_id, "sensor": "generic", "bands": bands}]})
    stack, _ = sources.aoi_stack(sources.list_sources(config, CloudMaskConfig()), aoi, ingest_config=config,
                                 drop=CloudMaskConfig().drop, aoi_id=aoi_id)
    with dask.config.set(scheduler="threads"):
        return stack.compute()


# --------------------------------------------------------------------------------------------- tests


def test_the_demo_catalog_validates_offline(demo_catalog, no_network):
    n_items = len(json.loads((demo_catalog / "manifest.json").read_text())["aois"]["demo_mine"]["stages"]
                  ["composite"]["periods"])
    assert validate_output_catalog(OutputLayout(demo_catalog).stac_catalog) == 1 + 1 + n_items
    item = _item(demo_catalog, "demo_mine", 2016)
    with pytest.raises(Exception, match="schema"):  # pystac's own validator fetches the extension schemas
        pystac.validation.validate_dict(item)


def test_validation_names_the_file_at_fault(tiny_run, tmp_path):
    run_dir = tmp_path / "tiny"
    shutil.copytree(tiny_run, run_dir)
    assert validate_output_catalog(run_dir / "stac" / "catalog.json") == 1 + 2 + 5
    path = run_dir / "stac" / "mine_a" / "mine_a_2021" / "mine_a_2021.json"
    item = json.loads(path.read_text())
    (run_dir / "mine_a" / "classes" / "2021_confidence.tif").unlink()
    with pytest.raises(InputError, match=r"mine_a_2021\.json: asset 'confidence' points to '\.\./\.\./\.\./mine_a/"
                                         r"classes/2021_confidence\.tif', which does not exist"):
        validate_output_catalog(run_dir / "stac" / "catalog.json")
    del item["assets"]["confidence"]
    item["properties"]["datetime"] = "2021-07-01"  # not RFC 3339
    path.write_text(json.dumps(item))
    with pytest.raises(InputError, match=r"mine_a_2021\.json: not a valid STAC item"):
        validate_output_catalog(run_dir / "stac" / "catalog.json")


def test_one_collection_per_aoi_and_one_item_per_period(tiny_run):
    root = pystac.Catalog.from_file(str(tiny_run / "stac" / "catalog.json"))
    assert root.catalog_type == pystac.CatalogType.SELF_CONTAINED
    collections = {c.id: c for c in root.get_children()}
    assert sorted(collections) == ["mine_a", "mine_b"]  # mine_c wrote no composite
    items = {c: sorted(i.id for i in collections[c].get_items()) for c in collections}
    assert items == {"mine_a": ["mine_a_2020", "mine_a_2021"], "mine_b": ["mine_b_2019", "mine_b_2020", "mine_b_2021"]}
    item = collections["mine_a"].get_item("mine_a_2020")
    assert sorted(item.assets) == ["class_map", "composite", "confidence"]
    assert str(item.datetime) == "2020-07-01 23:59:59+00:00"  # the middle of the period
    assert (item.properties["start_datetime"], item.properties["end_datetime"]) == ("2020-01-01T00:00:00Z",
                                                                                   "2020-12-31T23:59:59Z")
    assert sorted(collections["mine_b"].get_item("mine_b_2019").assets) == ["composite"]
    interval = collections["mine_b"].extent.temporal.intervals[0]
    assert [str(t) for t in interval] == ["2019-01-01 00:00:00+00:00", "2021-12-31 23:59:59+00:00"]
    first = collections["mine_a"].assets["first_change"]
    assert first.extra_fields["raster:bands"] == [{"name": "first_change_period", "nodata": 65535,
                                                   "data_type": "uint16", "spatial_resolution": 30.0}]
    assert "first_change" not in collections["mine_b"].assets
    # the footprint (EPSG:4326) covers the raster's corners
    corners = gpd.GeoSeries([box(X0, Y0 - 4 * RES, X0 + 5 * RES, Y0)], crs=CRS).to_crs("EPSG:4326").total_bounds
    west, south, east, north = item.bbox
    assert west <= corners[0] and south <= corners[1] and east >= corners[2] and north >= corners[3]
    assert corners[0] - west < 1e-6 and north - corners[3] < 1e-6


def test_assets_describe_the_rasters(tiny_run, demo_catalog):
    for run_dir, aoi_id, period in ((tiny_run, "mine_a", 2021), (tiny_run, "mine_b", 2020),
                                    (demo_catalog, "demo_mine", 2018)):
        assets = _item(run_dir, aoi_id, period)["assets"]
        for key, asset in assets.items():
            path = (run_dir / "stac" / aoi_id / f"{aoi_id}_{period}" / asset["href"]).resolve()
            with rasterio.open(path) as src:
                assert asset["proj:shape"] == [src.height, src.width], (aoi_id, key)
                assert asset["proj:transform"] == list(src.transform)[:6]
                assert asset["proj:bbox"] == list(src.bounds)
                if src.crs.to_epsg():
                    assert asset["proj:code"] == f"EPSG:{src.crs.to_epsg()}" and "proj:wkt2" not in asset
                else:
                    assert rasterio.crs.CRS.from_wkt(asset["proj:wkt2"]) == src.crs and asset.get("proj:code") is None
                assert [b["data_type"] for b in asset["raster:bands"]] == list(src.dtypes)
                assert asset["file:size"] == path.stat().st_size
                assert asset["file:checksum"] == "1220" + io.sha256(path)
                if key == "composite":
                    assert [b["name"] for b in asset["eo:bands"]] == list(src.descriptions)
                    assert [b["name"] for b in asset["raster:bands"]] == list(src.descriptions)
                    assert {b["nodata"] for b in asset["raster:bands"]} == {"nan"}
                    assert asset["roles"] == ["data", "reflectance"]
                    eo = {b["name"]: b.get("common_name") for b in asset["eo:bands"]}
                    assert eo["blue"] == "blue" and eo["ndvi"] is None
                if key == "class_map":
                    assert asset["raster:bands"][0]["nodata"] == 255 == src.nodata


def test_the_cleaned_maps_their_cleaning_and_the_change_maps_are_assets(demo_catalog):
    item = _item(demo_catalog, "demo_mine", 2018)
    assert {"class_map", "class_map_cleaned", "cleaning"} <= set(item["assets"])
    assert item["assets"]["class_map_cleaned"]["href"].endswith("demo_mine/classes_cleaned/2018.tif")
    assert item["assets"]["class_map_cleaned"]["classification:classes"] == item["assets"]["class_map"][
        "classification:classes"]
    collection = json.loads((demo_catalog / "stac" / "demo_mine" / "collection.json").read_text())
    assert collection["assets"]["change_first_last"]["href"].endswith("demo_mine/change/first_last.tif")
    assert collection["assets"]["change_first_last"]["raster:bands"][0]["nodata"] == 255


def test_classification_classes_are_the_runs(demo_catalog):
    manifest = json.loads((demo_catalog / "manifest.json").read_text())
    classes = _item(demo_catalog, "demo_mine", 2021)["assets"]["class_map"]["classification:classes"]
    expected = [(c["code"], c["name"], c["colour"].lstrip("#").upper()) for c in manifest["config"]["classes"]]
    assert [(c["value"], c["title"], c.get("color_hint")) for c in classes] == [*expected,
                                                                                (255, "not classified", None)]
    assert classes[-1]["nodata"] is True
    assert [c["name"] for c in classes] == ["water", "tree_cover", "grass_shrub", "cropland", "built-up",
                                            "bare_ground_mining", "nodata"]


def test_the_pipelines_ingest_loads_the_composites_back_pixel_for_pixel(demo_catalog, demo_run, no_network):
    aois = read_aois(demo_run / "aoi" / "demo_mine.geojson", id_field="aoi_id")
    bands = {b: b for b in ("blue", "green", "red", "nir", "swir1", "swir2", "ndvi")}
    stack = _stac_stack(OutputLayout(demo_catalog).stac_catalog, gpd.GeoSeries(aois.geometry, crs=aois.crs),
                        "demo_mine", bands)
    periods = [str(year) for year in range(2016, 2022)]
    assert [str(pd.Timestamp(t).year) for t in stack["time"].values] == periods
    assert list(stack["scene_id"].values) == [f"demo_mine_{p}" for p in periods]
    for i, period in enumerate(periods):
        cog = rioxarray.open_rasterio(OutputLayout(demo_catalog).composite("demo_mine", period))
        names = list(cog.attrs["long_name"])
        assert stack.rio.transform() == cog.rio.transform() and stack.rio.crs == cog.rio.crs
        for band in bands:
            assert stack[band].dtype == "float32"
            np.testing.assert_array_equal(stack[band].values[i], cog.values[names.index(band)], err_msg=band)
        assert np.isfinite(stack["red"].values[i]).mean() > 0.5


def test_class_maps_and_every_band_load_back_exactly_through_the_stac_loader(demo_catalog, no_network):
    catalog = OutputLayout(demo_catalog).stac_catalog
    bbox = tuple(pystac.Collection.from_file(str(catalog.parent / "demo_mine" / "collection.json"))
                 .extent.spatial.bboxes[0])
    items = stac.search_items(catalog=catalog, collection="demo_mine", bbox=bbox, datetime="2020-01-01/..")
    assert [i.id for i in items] == ["demo_mine_2020", "demo_mine_2021"]
    cog = rioxarray.open_rasterio(OutputLayout(demo_catalog).composite("demo_mine", 2020))
    names = list(cog.attrs["long_name"])
    grid = open_raster(OutputLayout(demo_catalog).composite("demo_mine", 2020), chunk_size=64).odc.geobox
    raw = stac.load_items(items, assets=[*names, "class_map", "confidence"], grid=grid, chunk_size=64,
                          nearest=["class_map"])
    with dask.config.set(scheduler="threads"):
        raw = raw.compute()
    for i, period in enumerate((2020, 2021)):
        layout = OutputLayout(demo_catalog)
        classes = rioxarray.open_rasterio(layout.class_map("demo_mine", period)).values[0]
        assert raw["class_map"].dtype == "uint8" and (classes == 255).any()
        np.testing.assert_array_equal(raw["class_map"].values[i], classes)
        np.testing.assert_array_equal(raw["confidence"].values[i],
                                      rioxarray.open_rasterio(layout.confidence("demo_mine", period)).values[0])
        cog = rioxarray.open_rasterio(layout.composite("demo_mine", period))
        for k, name in enumerate(names):
            np.testing.assert_array_equal(raw[name].values[i], cog.values[k], err_msg=name)


def test_a_crs_without_epsg_code_loads_back_on_its_grid(tiny_run, no_network):
    footprint = gpd.GeoSeries([box(5_000_000.0, 10_000_000.0 - 3 * RES, 5_000_000.0 + 3 * RES, 10_000_000.0)],
                              crs=ALBERS)
    stack = _stac_stack(tiny_run / "stac" / "catalog.json", footprint, "mine_b", {b: b for b in BANDS}, crs="native")
    assert [pd.Timestamp(t).year for t in stack["time"].values] == [2019, 2020, 2021]
    assert dict(stack.sizes) == {"time": 3, "y": 3, "x": 3}
    for i, period in enumerate((2019, 2020, 2021)):
        for k, band in enumerate(BANDS):
            np.testing.assert_array_equal(stack[band].values[i], composite_values(period)[k, :3, :3])
    assert stack["ndvi"].values[2, 2, 2] == np.float32(21 + 0.3 + 12 / 1000)  # by hand: 2021, band 3, (2, 2)


def test_find_band_resolves_bands_of_multiband_assets_as_odc_stac_does(tiny_run):
    item = pystac.Item.from_file(str(tiny_run / "stac" / "mine_a" / "mine_a_2020" / "mine_a_2020.json"))
    assert stac.find_band(item, "red") == ("composite", 2)
    assert stac.find_band(item, "class_map") == ("class_map", 1)
    assert stac.find_band(item, "swir1") is None
    with pytest.raises(InputError, match=r"lack the asset\(s\) \['swir1'\]"):
        stac.check_assets([item], ["red", "swir1"])


def test_the_catalog_is_byte_identical_when_written_again_or_elsewhere(tiny_run, tmp_path):
    first = _digests(tiny_run)
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    written = write_output_catalog(tiny_run, manifest)  # as the runner calls it, before writing the manifest
    assert _digests(tiny_run) == first
    assert written == sorted(written) and len(written) == 1 + 2 + 5
    moved = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(tiny_run, moved, ignore=shutil.ignore_patterns("stac"))
    (moved / "stac" / "old_aoi").mkdir(parents=True)
    (moved / "stac" / "old_aoi" / "collection.json").write_text("{}")
    write_output_catalog(moved)
    assert _digests(moved) == first  # no absolute path in any file; files of an earlier catalog removed
    assert not (moved / "stac" / "old_aoi").exists()


def test_no_absolute_paths_timestamps_or_event_names_in_the_demo_catalog(demo_catalog, demo_run):
    text = "\n".join(json.dumps(d) for d in _documents(demo_catalog).values())
    assert str(demo_catalog) not in text and str(demo_run) not in text
    assert '"created"' not in text and '"updated"' not in text
    events = pd.read_csv(demo_run / "data" / "events.csv")
    names = {*events["origin_community"], *events["resettlement_site"]}
    assert names and not [n for n in names if n in text]
