"""STAC: a static catalog built on disk from tiny GeoTIFFs, loaded through the same path as an API search
(`stac.search_items` -> `stac.load_items` (odc-stac) -> `ingest.items_stack`)."""

from __future__ import annotations

from datetime import UTC, datetime

import dask
import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
from conftest import CRS, RES, X0, Y0
from rasterio.transform import from_origin
from shapely.geometry import box, mapping

from pipeline.ingest import sources, stac
from pipeline.config import CloudMaskConfig, IngestConfig
from pipeline.errors import InputError

ASSETS = {"blue": 1000, "green": 1200, "red": 1500, "nir": 3000, "swir16": 2000, "swir22": 1800}


def _tif(path, values, dtype):
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=dtype, crs=CRS, transform=from_origin(X0, Y0, RES, RES), nodata=0) as dst:
        dst.write(values.astype(dtype)[np.newaxis])


@pytest.fixture
def catalog(tmp_path):
    """A self-contained static catalog of four Sentinel-2 L2A items (4 x 4 px, UTM 36S): two on one day
    (one overpass), one after processing baseline 04.00 (by its date: no baseline in its properties),
    one cloudier than 50 %."""
    root = pystac.Catalog(id="fixture", description="tiny sentinel-2-l2a items")
    footprint = gpd.GeoSeries([box(X0, Y0 - 4 * RES, X0 + 4 * RES, Y0)], crs=CRS).to_crs("EPSG:4326")
    scl = np.array([[4, 4, 8, 9], [3, 10, 11, 1], [0, 4, 5, 6], [4, 4, 4, 4]])
    when = [datetime(2021, 6, 1, 7, 46, 11, tzinfo=UTC), datetime(2021, 6, 1, 7, 46, 35, tzinfo=UTC),
            datetime(2022, 6, 1, 7, 46, 9, tzinfo=UTC), datetime(2022, 7, 1, 7, 46, 9, tzinfo=UTC)]
    for i, (stamp, cloud) in enumerate(zip(when, [10.0, 20.0, 5.0, 80.0])):
        item_id = f"S2A_MSIL2A_{stamp:%Y%m%dT%H%M%S}_T36KWD_{i}"
        item = pystac.Item(item_id, geometry=mapping(footprint.iloc[0]), bbox=list(footprint.total_bounds),
                           datetime=stamp, properties={"eo:cloud_cover": cloud, "proj:epsg": 32736},
                           collection="sentinel-2-l2a")
        folder = tmp_path / "items" / item_id
        folder.mkdir(parents=True)
        for name, dn in {**ASSETS, "scl": None}.items():
            values = scl if dn is None else np.full((4, 4), dn + 100 * i)
            dtype = "uint8" if dn is None else "uint16"
            _tif(folder / f"{name}.tif", values, dtype)
            asset = pystac.Asset(href=str(folder / f"{name}.tif"), media_type=pystac.MediaType.COG,
                                 roles=["data"])
            asset.extra_fields.update({"proj:shape": [4, 4], "proj:transform": list(from_origin(X0, Y0, RES, RES))[:6],
                                       "raster:bands": [{"data_type": dtype, "nodata": 0}]})
            item.add_asset(name, asset)
        item.stac_extensions += ["https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                                 "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                                 "https://stac-extensions.github.io/eo/v1.1.0/schema.json"]
        root.add_item(item)
    root.normalize_hrefs(str(tmp_path / "catalog"))
    root.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return tmp_path / "catalog" / "catalog.json", scl


def test_static_catalog_filters_by_date_cloud_cover_and_bbox(catalog):
    path, _ = catalog
    bbox = tuple(gpd.GeoSeries([box(X0, Y0 - 4 * RES, X0 + 4 * RES, Y0)], crs=CRS).to_crs("EPSG:4326").total_bounds)
    assert len(stac.search_items(catalog=path, bbox=bbox)) == 4
    assert len(stac.search_items(catalog=path, bbox=bbox, max_cloud_cover=50)) == 3
    assert len(stac.search_items(catalog=path, bbox=bbox, datetime="2022-01-01/..")) == 2
    assert stac.search_items(catalog=path, bbox=(0.0, 0.0, 1.0, 1.0)) == []
    assert len(stac.search_items(catalog=path, bbox=bbox, collection="landsat-c2-l2")) == 0


def test_static_catalog_loads_lazily_into_the_common_form(catalog, tmp_path):
    path, scl = catalog
    config = IngestConfig.model_validate({"chunk_size": 64, "sources": [
        {"kind": "stac", "catalog": str(path), "sensor": "sentinel-2-l2a", "collection": "sentinel-2-l2a",
         "max_cloud_cover": 50}]})
    listed = sources.list_sources(config, CloudMaskConfig())
    aoi = gpd.GeoSeries([box(X0, Y0 - 4 * RES, X0 + 4 * RES, Y0)], crs=CRS)
    stack, _ = sources.aoi_stack(listed, aoi, ingest_config=config, drop=CloudMaskConfig().drop,
                                    aoi_id="mine_a")
    assert dask.is_dask_collection(stack)
    assert stack.rio.crs.to_epsg() == 32736 and dict(stack.sizes) == {"time": 2, "y": 4, "x": 4}
    # the two items of 2021-06-01 are one overpass: one scene, at the first item's time
    assert [str(t)[:19] for t in stack["time"].values] == ["2021-06-01T07:46:11", "2022-06-01T07:46:09"]
    assert list(stack["scene_id"].values)[0] == ("S2A_MSIL2A_20210601T074611_T36KWD_0+"
                                                 "S2A_MSIL2A_20210601T074635_T36KWD_1")
    red = stack["red"].values
    dropped = np.isin(scl, [0, 1, 3, 8, 9, 10])
    assert np.isnan(red[:, dropped]).all()
    np.testing.assert_allclose(red[0][~dropped], 0.15, rtol=1e-5)             # DN 1500 x 1e-4, first item
    np.testing.assert_allclose(red[1][~dropped], (1700 - 1000) / 1e4, rtol=1e-5)  # baseline 04.00 offset
    np.testing.assert_allclose(stack["swir1"].values[0][~dropped], 0.2, rtol=1e-5)


def test_group_by_item_keeps_the_items_of_one_day_apart(catalog):
    path, _ = catalog
    config = IngestConfig.model_validate({"chunk_size": 64, "sources": [
        {"kind": "stac", "catalog": str(path), "sensor": "sentinel-2-l2a", "max_cloud_cover": 50,
         "group_by": "item"}]})
    aoi = gpd.GeoSeries([box(X0, Y0 - 4 * RES, X0 + 4 * RES, Y0)], crs=CRS)
    stack, _ = sources.aoi_stack(sources.list_sources(config, CloudMaskConfig()), aoi, ingest_config=config,
                                 drop=CloudMaskConfig().drop, aoi_id="mine_a")
    assert [str(t)[:19] for t in stack["time"].values] == ["2021-06-01T07:46:11", "2021-06-01T07:46:35",
                                                          "2022-06-01T07:46:09"]
    assert stack["red"].values[1, 3, 3] == pytest.approx(0.16, rel=1e-5)     # the second item, DN 1600


def test_missing_asset_is_named(catalog):
    path, _ = catalog
    config = IngestConfig.model_validate({"sources": [
        {"kind": "stac", "catalog": str(path), "sensor": "sentinel-2-l2a", "bands": {"red": "B04"}}]})
    aoi = gpd.GeoSeries([box(X0, Y0 - 4 * RES, X0 + 4 * RES, Y0)], crs=CRS)
    with pytest.raises(InputError, match=r"lack the asset\(s\) \[.B04.\] \(ingest.sources\[0\].bands"):
        sources.aoi_stack(sources.list_sources(config, CloudMaskConfig()), aoi, ingest_config=config,
                          drop=["cloud"], aoi_id="mine_a")


def test_the_pipeline_runs_on_a_static_catalog_to_composites_and_video(catalog, tmp_path):
    from pipeline.config import load_config
    from pipeline.runner import run_pipeline

    path, _ = catalog
    aoi = gpd.GeoDataFrame({"aoi_id": ["mine_a"]}, geometry=[box(X0, Y0 - 4 * RES, X0 + 4 * RES, Y0)], crs=CRS)
    aoi.to_file(tmp_path / "aoi.geojson", driver="GeoJSON")
    (tmp_path / "config.yaml").write_text(f"""
run_name: stac
output_dir: out
aoi: {{path: aoi.geojson}}
ingest:
  chunk_size: 64
  grid: {{crs: native}}
  sources:
    - {{kind: stac, catalog: {path}, sensor: sentinel-2-l2a, collection: sentinel-2-l2a, max_cloud_cover: 50}}
video: {{width: 320, height: 240, fps: 2, intro_seconds: 0, outro_seconds: 0, crossfade_seconds: 0}}
dask: {{cluster: threads}}
""")
    result = run_pipeline(load_config(tmp_path / "config.yaml"))
    assert result.ok, result.failed
    stages = result.manifest["aois"]["mine_a"]["stages"]
    assert stages["ingest"]["scenes"] == 2 and stages["composite"]["periods"] == ["2021", "2022"]  # one overpass in 2021
    with rasterio.open(tmp_path / "out" / "stac" / "mine_a" / "composites" / "2022.tif") as src:
        assert src.descriptions[2] == "red"
        assert src.read(3)[3, 3] == pytest.approx(0.07, rel=1e-4)  # (1700 - 1000) x 1e-4, a clear pixel
    assert stages["video"]["status"] == "done"
    assert (tmp_path / "out" / "stac" / "mine_a" / "video" / "mine_a.mp4").stat().st_size > 0
