"""Real STAC items of Planetary Computer and Earth Search (tests/data/stac_real, with their provenance) on
tiny local COGs: bands, scale and offset, masks and dates come out right for each of the four catalogs;
one overpass is one scene; URLs are signed and GDAL settings reach the reads; the resume key follows the
items' assets; a Landsat scene in EPSG:32655 with negative northings keeps its exact pixel grid."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from affine import Affine
from conftest import DATA
from shapely.geometry import box

from pipeline.config import CloudMaskConfig, IngestConfig
from pipeline.ingest import sources, stac

CATALOG = DATA / "stac_real" / "catalog"
DROP = CloudMaskConfig().drop
LANDSAT_DROPPED_BITS = (0, 1, 2, 3, 4)           # fill, dilated cloud, cirrus, cloud, shadow (snow is kept)
SCL_DROPPED = (0, 1, 3, 8, 9, 10)                # nodata, saturated, shadow, cloud medium/high, cirrus
LAND = {"blue": 0.05, "green": 0.08, "red": 0.10, "nir": 0.30, "swir1": 0.20, "swir2": 0.12}
WATER = {"blue": 0.04, "green": 0.05, "red": 0.03, "nir": 0.01, "swir1": 0.005, "swir2": 0.003}

# folder, collection, item id, sensor, asset of red and of the mask, DN -> reflectance, datetime
CASES = {
    "pc-landsat": ("planetary-computer", "landsat-c2-l2", "LC09_L2SP_089090_20240417_02_T1", "landsat-c2-l2",
                   "red", "qa_pixel", lambda dn: dn * 0.0000275 - 0.2, "2024-04-17T23:46:20.477296"),
    "es-landsat": ("earth-search", "landsat-c2-l2", "LC08_L2SP_033032_20231008_02_T1", "landsat-c2-l2",
                   "red", "qa_pixel", lambda dn: dn * 0.0000275 - 0.2, "2023-10-08T17:37:26.656958"),
    "pc-s2-05.10": ("planetary-computer", "sentinel-2-l2a", "S2B_MSIL2A_20240419T095549_R122_T46XER_20240419T124342",
                    "sentinel-2-l2a", "B04", "SCL", lambda dn: dn / 10000 - 0.1, "2024-04-19T09:55:49.024"),
    "pc-s2-04.00": ("planetary-computer", "sentinel-2-l2a", "S2B_MSIL2A_20220612T182919_R027_T24XWR_20220613T123251",
                    "sentinel-2-l2a", "B04", "SCL", lambda dn: dn / 10000 - 0.1, "2022-06-12T18:29:19.024"),
    "pc-s2-02.12": ("planetary-computer", "sentinel-2-l2a", "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531",
                    "sentinel-2-l2a", "B04", "SCL", lambda dn: dn / 10000, "2019-06-29T21:25:29.024"),
    "es-s2-offset-applied": ("earth-search", "sentinel-2-l2a", "S2A_13TDE_20231008_0_L2A", "sentinel-2-l2a",
                             "red", "scl", lambda dn: dn / 10000, "2023-10-08T18:02:55.276"),
}


def _item_dir(folder: str, collection: str, item_id: str) -> Path:
    return CATALOG / folder / collection / item_id


def _window(path: Path) -> tuple[gpd.GeoSeries, Affine, str]:
    """The AOI exactly covering a fixture COG (in its own CRS), the COG's transform and CRS."""
    with rasterio.open(path) as src:
        return gpd.GeoSeries([box(*src.bounds)], crs=src.crs), src.transform, src.crs.to_string()


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _stack(catalog: Path, collection: str, sensor: str, aoi, *, grid=None, **source):
    config = IngestConfig.model_validate({"chunk_size": 64, "grid": grid or {}, "sources": [
        {"kind": "stac", "catalog": str(catalog), "collection": collection, "sensor": sensor, **source}]})
    listed = sources.list_sources(config, CloudMaskConfig())
    return sources.aoi_stack(listed, aoi, ingest_config=config, drop=DROP, aoi_id="mine")


@pytest.mark.parametrize("case", list(CASES))
def test_each_catalog_gives_bands_scale_offset_masks_and_dates(case):
    folder, collection, item_id, sensor, red_asset, mask_asset, decode, when = CASES[case]
    here = _item_dir(folder, collection, item_id)
    aoi, transform, crs = _window(here / f"{red_asset}.tif")
    # native: the item's own grid, so a pixel of the stack is a pixel of the file (S2 tiles lie across
    # a UTM zone edge, where the AOI's own zone would resample them)
    stack, grid = _stack(CATALOG / folder / "catalog.json", collection, sensor, aoi, grid={"crs": "native"})
    assert [str(t) for t in stack["time"].values] == [pd.Timestamp(when).isoformat(timespec="microseconds")]
    assert item_id in str(stack["scene_id"].values[0])
    assert stack.rio.crs.to_string() == crs and grid.affine == transform
    mask = _read(here / f"{mask_asset}.tif")
    if sensor == "landsat-c2-l2":
        dropped = np.zeros(mask.shape, bool)
        for bit in LANDSAT_DROPPED_BITS:
            dropped |= (mask >> bit) & 1 == 1
    else:  # SCL is 20 m: each of its pixels is 2 x 2 pixels of the 10 m grid
        dropped = np.isin(mask, SCL_DROPPED).repeat(2, 0).repeat(2, 1)
    raw = _read(here / f"{red_asset}.tif")
    red = stack["red"].values[0]
    assert np.isnan(red[dropped | (raw == 0)]).all()
    kept = ~dropped & (raw != 0)
    np.testing.assert_allclose(red[kept], decode(raw[kept].astype("float64")), atol=1e-6)
    # the known reflectances, within half a DN: land and water, in every band (20 m bands bilinear)
    half_dn = 1.4e-5
    for band in LAND:
        values = stack[band].values[0][kept]
        assert np.isclose(values, LAND[band], atol=half_dn).sum() > 0.6 * kept.sum(), band
        assert np.isclose(values, WATER[band], atol=half_dn).any(), band
    assert (np.isclose(red[kept], LAND["red"], atol=half_dn) | np.isclose(red[kept], WATER["red"], atol=half_dn)).all()


def test_two_tiles_of_one_overpass_are_one_scene():
    folder, collection = "planetary-computer", "sentinel-2-l2a"
    south = _item_dir(folder, collection, "S2B_MSIL2A_20240419T095549_R122_T46XER_20240419T124342")
    north = _item_dir(folder, collection, "S2B_MSIL2A_20240419T095549_R122_T46XES_20240419T123824")
    (a, _, crs), (b, _, _) = _window(south / "B04.tif"), _window(north / "B04.tif")
    both = gpd.GeoSeries([a.union(b).union_all()], crs=crs)
    stack, _ = _stack(CATALOG / folder / "catalog.json", collection, "sentinel-2-l2a", both, grid={"crs": "native"})
    assert stack.sizes["time"] == 1 and dict(stack.sizes)["y"] == 64        # the two 32-row windows, stacked
    assert stack["scene_id"].values[0] == ("S2B_MSIL2A_20240419T095549_R122_T46XER_20240419T124342+"
                                           "S2B_MSIL2A_20240419T095549_R122_T46XES_20240419T123824")
    red = stack["red"].values[0]
    assert np.isclose(red[:32], LAND["red"], atol=1e-6).sum() > 700          # the northern tile's land ...
    assert np.isclose(red[32:], LAND["red"], atol=1e-6).sum() > 700          # ... and the southern tile's


def test_negative_northings_keep_the_scene_grid_relabelled_to_the_southern_zone():
    """PC Landsat in EPSG:32655 (northing -4 782 435): the AOI's UTM zone is 32755, the same projection 10,000 km
    apart in false northing. The grid is the scene's, relabelled; every pixel is the file's pixel."""
    here = _item_dir("planetary-computer", "landsat-c2-l2", "LC09_L2SP_089090_20240417_02_T1")
    aoi, transform, _ = _window(here / "red.tif")
    stack, grid = _stack(CATALOG / "planetary-computer" / "catalog.json", "landsat-c2-l2", "landsat-c2-l2", aoi)
    assert stack.rio.crs.to_epsg() == 32755 and transform.f == -4_782_435
    assert grid.affine == Affine.translation(0, 10_000_000) * transform and grid.shape == (32, 32)
    raw = _read(here / "nir08.tif")
    qa = _read(here / "qa_pixel.tif")
    clear = (qa == 21824) | (qa == 21952) | (qa == 30048)                      # clear, water, snow
    np.testing.assert_allclose(stack["nir"].values[0][clear], raw[clear] * 0.0000275 - 0.2, atol=1e-6)


def test_a_users_offset_wins_over_the_catalogs_metadata():
    folder, collection, item_id, *_ = CASES["pc-s2-05.10"]
    aoi, _, _ = _window(_item_dir(folder, collection, item_id) / "B04.tif")
    stack, _ = _stack(CATALOG / folder / "catalog.json", collection, "sentinel-2-l2a", aoi, grid={"crs": "native"},
                      offset=0.0, scale=0.0001)
    assert np.nanmax(np.isclose(stack["red"].values, 0.2, atol=1e-6))         # DN 2000 x 1e-4 + 0: not 0.1


def _copy_item(tmp_path: Path, name: str) -> Path:
    folder, collection, item_id, *_ = CASES[name]
    shutil.copytree(CATALOG, tmp_path / "catalog")
    return tmp_path / "catalog" / folder / collection / item_id / f"{item_id}.json"


def test_planetary_computer_urls_are_signed_when_read(tmp_path, monkeypatch):
    """Hrefs on Azure Blob storage, as the real items have: readable only once signed. A stand-in for the
    planetary-computer package signs them (to the local files, with a token) and records each call."""
    item_path = _copy_item(tmp_path, "pc-landsat")
    item = json.loads(item_path.read_text())
    blob = "https://landsateuwest.blob.core.windows.net/landsat-c2/level-2/standard/oli-tirs/2024/089/090/"
    for key, asset in item["assets"].items():
        asset["href"] = blob + f"{key}.tif"
    item_path.write_text(json.dumps(item))
    signed = []

    def sign(href: str) -> str:
        signed.append(href)
        return str(item_path.parent / href.rsplit("/", 1)[1])      # the "signed" URL: readable

    monkeypatch.setitem(sys.modules, "planetary_computer", types.SimpleNamespace(sign=sign))
    aoi, _, _ = _window(item_path.parent / "red.tif")
    stack, _ = _stack(tmp_path / "catalog" / "planetary-computer" / "catalog.json", "landsat-c2-l2", "landsat-c2-l2",
                      aoi, sign="planetary-computer")
    assert np.isclose(stack["red"].values, LAND["red"], atol=1.4e-5).sum() > 700
    assert {h.rsplit("/", 1)[1] for h in signed} >= {"red.tif", "nir08.tif", "qa_pixel.tif"}
    assert all(h.startswith(blob) for h in signed)


def test_signing_without_the_package_names_the_key_and_the_extra(tmp_path, monkeypatch):
    from pipeline.errors import InputError

    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # import fails
    config = IngestConfig.model_validate({"sources": [{"kind": "stac", "catalog": str(CATALOG / "catalog.json"),
                                                        "sensor": "landsat-c2-l2", "sign": "planetary-computer"}]})
    with pytest.raises(InputError, match=r"ingest.sources\[0\].sign: planetary-computer needs the planetary-computer "
                                         r"package: pip install 'midr-pipeline\[planetary-computer\]'"):
        sources.list_sources(config, CloudMaskConfig())


def test_requester_pays_and_gdal_settings_reach_every_read(monkeypatch):
    """Earth Search Landsat is in the requester-pays bucket s3://usgs-landsat: the source's GDAL settings are
    in the environment of every asset read (as they are on a Dask worker)."""
    import odc.loader._rio as rio

    seen = []
    original = rio.rio_env

    def recording_env(session=None, **options):
        seen.append(options)
        return original(session, **options)

    monkeypatch.setattr(rio, "rio_env", recording_env)
    folder, collection, item_id, *_ = CASES["es-landsat"]
    aoi, _, _ = _window(_item_dir(folder, collection, item_id) / "red.tif")
    stack, _ = _stack(CATALOG / folder / "catalog.json", collection, "landsat-c2-l2", aoi, requester_pays=True,
                      gdal={"GDAL_HTTP_MAX_RETRY": "5"})
    stack["red"].values
    reads = [o for o in seen if "GDAL_HTTP_MAX_RETRY" in o]
    assert reads and all(o["AWS_REQUEST_PAYER"] == "requester" for o in reads)


def test_the_resume_key_of_an_item_follows_its_json_and_its_assets(tmp_path):
    item_path = _copy_item(tmp_path, "es-s2-offset-applied")
    item = pystac.Item.from_file(str(item_path))
    first = stac.item_identity(item)
    assert first["updated"] == "2023-10-09T01:25:21.658Z" and first["assets"]["red"]["size"] > 0
    assert stac.item_identity(pystac.Item.from_file(str(item_path))) == first       # stable
    red = item_path.parent / "red.tif"
    with rasterio.open(red) as src:
        profile, values = src.profile, src.read()
    with rasterio.open(red, "w", **profile) as dst:                                 # same href, new pixels
        dst.write(values + 1)
    assert stac.item_identity(pystac.Item.from_file(str(item_path)))["assets"]["red"] != first["assets"]["red"]
    document = json.loads(item_path.read_text())
    document["properties"]["updated"] = "2024-01-01T00:00:00Z"                      # reprocessed upstream
    item_path.write_text(json.dumps(document))
    again = stac.item_identity(pystac.Item.from_file(str(item_path)))
    assert again["sha256"] != first["sha256"] and again["updated"] == "2024-01-01T00:00:00Z"
