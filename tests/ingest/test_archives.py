"""Archives as they come (issue 15): a Landsat crop without QA_PIXEL in EPSG:32623 with negative northings,
metre grids only, native grids kept and resampling logged, Sentinel-2 offsets from the product's metadata
(a user's offset wins), recursive `**` globs, and a band found in several files."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS as ProjCRS
from rasterio.transform import from_origin
from shapely.geometry import box

from pipeline.config import CloudMaskConfig, IngestConfig, load_config
from pipeline.errors import ConfigError, InputError
from pipeline.ingest import baselines, sources
from pipeline.ingest.grid import northing_shift

# A Landsat 8 C2 L2 scene of south-east Brazil as USGS ships it: UTM zone 23 *north*, negative northings
LANDSAT_CRS, LANDSAT_X0, LANDSAT_Y0 = "EPSG:32623", 600_015.0, -2_500_005.0   # odd 15 m: a USGS pixel corner
OLI = (2, 3, 4, 5, 6, 7)


def _write(path, values, *, crs, x0, y0, res, nodata=0, dtype="uint16"):
    values = np.asarray(values)
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=dtype, crs=crs, transform=from_origin(x0, y0, res, res), nodata=nodata) as dst:
        dst.write(values.astype(dtype)[np.newaxis])
    return path


def _landsat_crop(folder, n=6):
    """OLI SR bands 2-7 of one date, no QA_PIXEL; band b has DN 8000 + 100 b + 7 (row) + col."""
    product = "LC08_L2SP_218076_20210712_20210720_02_T1"
    rows, cols = np.mgrid[:n, :n]
    for b in OLI:
        _write(folder / f"{product}_SR_B{b}.TIF", 8000 + 100 * b + 7 * rows + cols, crs=LANDSAT_CRS,
               x0=LANDSAT_X0, y0=LANDSAT_Y0, res=30)
    return product


def _ingest(config: dict, aoi, tmp_path, cloud_mask=None):
    cloud_mask = cloud_mask or CloudMaskConfig()
    ingest = IngestConfig.model_validate({"chunk_size": 64, **config}, context={"base_dir": tmp_path})
    listed = sources.list_sources(ingest, cloud_mask)
    return sources.aoi_stack(listed, aoi, ingest_config=ingest, drop=cloud_mask.drop, aoi_id="mine")


def test_landsat_without_qa_in_negative_northings_keeps_its_grid_and_values(tmp_path, caplog):
    _landsat_crop(tmp_path)
    # the AOI: the crop less its outer ring of pixels, as a user draws it (in WGS 84)
    inner = box(LANDSAT_X0 + 30, LANDSAT_Y0 - 150, LANDSAT_X0 + 150, LANDSAT_Y0 - 30)
    aoi = gpd.GeoSeries([inner], crs=LANDSAT_CRS).to_crs("EPSG:4326")
    source = {"sources": [{"kind": "files", "sensor": "landsat-c2-l2", "scenes": "*.TIF", "layout": "band-per-file"}]}
    with caplog.at_level(logging.INFO):
        stack, grid = _ingest(source, aoi, tmp_path, CloudMaskConfig(method="none"))
    # the AOI's UTM zone is 23 south: the same projection, 10,000 km apart in false northing -> relabelled
    assert stack.rio.crs.to_epsg() == 32723
    assert grid.affine == Affine(30, 0, LANDSAT_X0 + 30, 0, -30, LANDSAT_Y0 - 30 + 10_000_000)
    assert "resampled" not in caplog.text
    red = stack["red"].values[0]                                  # OLI red is SR_B4
    rows, cols = np.mgrid[1:5, 1:5]
    np.testing.assert_allclose(red, (8400 + 7 * rows + cols) * 0.0000275 - 0.2, atol=1e-6)
    # native: the file's own CRS and grid, exactly
    native, grid = _ingest({**source, "grid": {"crs": "native"}}, aoi, tmp_path, CloudMaskConfig(method="none"))
    assert native.rio.crs.to_epsg() == 32623 and grid.affine.f == LANDSAT_Y0 - 30
    np.testing.assert_array_equal(native["red"].values, stack["red"].values)


def test_landsat_without_qa_is_cloud_masked_by_the_spectral_rules_by_default(tmp_path, caplog):
    product = _landsat_crop(tmp_path)
    cloud_dn = round((0.5 + 0.2) / 0.0000275)                     # reflectance 0.5 in every band: a cloud
    for b in OLI:
        path = tmp_path / f"{product}_SR_B{b}.TIF"
        with rasterio.open(path) as src:
            values, profile = src.read(1), src.profile
        values[:2, :2] = cloud_dn
        values[2:, 2:] = round((0.05 + 0.2) / 0.0000275) if b == 2 else round((0.3 + 0.2) / 0.0000275) \
            if b == 5 else round((0.08 + 0.2) / 0.0000275)          # vegetation-like elsewhere
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values[np.newaxis])
    aoi = gpd.GeoSeries([box(LANDSAT_X0, LANDSAT_Y0 - 180, LANDSAT_X0 + 180, LANDSAT_Y0)], crs=LANDSAT_CRS)
    source = {"sources": [{"kind": "files", "sensor": "landsat-c2-l2", "scenes": "*.TIF", "layout": "band-per-file"}]}
    with caplog.at_level(logging.WARNING):
        stack, _ = _ingest(source, aoi, tmp_path)
    assert ("its scenes have no quality band 'QA_PIXEL': their clouds and shadows are masked by cloud_mask.method "
            "spectral") in caplog.text
    red = stack["red"].values[0]
    assert np.isnan(red[:2, :2]).all() and np.isfinite(red[2:, 2:]).all()


def test_northing_shift_is_one_projection_north_and_south_of_a_zone():
    wkt = {code: ProjCRS.from_user_input(code).to_wkt() for code in ("EPSG:32623", "EPSG:32723", "EPSG:32624")}
    assert northing_shift(wkt["EPSG:32623"], wkt["EPSG:32723"]) == 10_000_000
    assert northing_shift(wkt["EPSG:32723"], wkt["EPSG:32623"]) == -10_000_000
    assert northing_shift(wkt["EPSG:32623"], wkt["EPSG:32623"]) == 0
    assert northing_shift(wkt["EPSG:32623"], wkt["EPSG:32624"]) is None      # another zone: resampled


def test_a_scene_in_another_zone_is_resampled_and_the_log_says_so(tmp_path, caplog):
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:32736", "EPSG:32737", always_xy=True).transform(500_000, 8_200_000)
    for b in ("red", "nir"):
        _write(tmp_path / f"s_{b}_20200101.tif", np.full((10, 10), 1000), crs="EPSG:32737", x0=x, y0=y, res=30)
    aoi = gpd.GeoSeries([box(500_030, 8_199_800, 500_200, 8_199_970)], crs="EPSG:32736")
    source = {"sources": [{"kind": "files", "scenes": "s_*.tif", "layout": "band-per-file", "band_pattern": "_(red|nir)_",
                           "bands": {"red": "red", "nir": "nir"}}]}
    with caplog.at_level(logging.INFO):
        stack, _ = _ingest(source, aoi, tmp_path, CloudMaskConfig(method="none"))
    assert stack.rio.crs.to_epsg() == 32736
    assert "(EPSG:32737, 30 m) is not on the AOI grid (EPSG:32736, 30 m): resampled" in caplog.text


# -------------------------------------------------------------------------------------------- metres


def test_a_grid_crs_in_degrees_is_refused_at_load_naming_the_key(tmp_path):
    (tmp_path / "config.yaml").write_text("run_name: x\naoi: {path: a.gpkg}\n"
                                          "ingest: {scenes: '*.tif', grid: {crs: 'EPSG:4326'}}\n")
    with pytest.raises(ConfigError, match=r"ingest.grid.crs: Value error, WGS 84 is in degree, not metres, and areas, "
                                          r"buffers and rings are in metres: leave grid.crs out"):
        load_config(tmp_path / "config.yaml")


def test_a_native_grid_in_degrees_is_refused_before_any_output(tmp_path):
    for b in ("red", "nir"):
        _write(tmp_path / f"s_{b}_20200101.tif", np.full((4, 4), 1000), crs="EPSG:4326", x0=30.0, y0=-10.0,
               res=0.0003)
    config = IngestConfig.model_validate({"grid": {"crs": "native"}, "sources": [
        {"kind": "files", "scenes": str(tmp_path / "s_*.tif"), "layout": "band-per-file",
         "band_pattern": "_(red|nir)_", "bands": {"red": "red", "nir": "nir"}}]})
    with pytest.raises(InputError, match=r"ingest.grid.crs: native is the CRS of .*s_nir_20200101.tif, WGS 84; its "
                                         r"unit is the degree, not the metre"):
        sources.list_sources(config, CloudMaskConfig(method="none"))


# -------------------------------------------------------------------------------- Sentinel-2 offsets

MTD = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
 <n1:General_Info>
  <Product_Info><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>
  <Product_Image_Characteristics>
   <QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
   </QUANTIFICATION_VALUES_LIST>
   {offsets}
  </Product_Image_Characteristics>
 </n1:General_Info>
</n1:Level-2A_User_Product>
"""


def _safe(root, product: str, *, baseline: str | None, offset: int | None, dn: int = 1500):
    """A Sentinel-2 L2A SAFE folder (10 m bands and SCL at 20 m) of one 40 m x 40 m patch."""
    granule = root / f"{product}.SAFE" / "GRANULE" / "L2A_T36KWD" / "IMG_DATA"
    stamp = product.split("_")[2]
    for res, bands in ((10, ("B02", "B03", "B04", "B08")), (20, ("B11", "B12", "SCL"))):
        (granule / f"R{res}m").mkdir(parents=True, exist_ok=True)
        for band in bands:
            value = 4 if band == "SCL" else dn
            _write(granule / f"R{res}m" / f"T36KWD_{stamp}_{band}_{res}m.jp2", np.full((40 // res, 40 // res), value),
                   crs="EPSG:32736", x0=500_000, y0=8_200_000, res=res, dtype="uint8" if band == "SCL" else "uint16")
    if baseline is not None:
        offsets = ("" if offset is None else "<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(
            f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13)) + "</BOA_ADD_OFFSET_VALUES_LIST>")
        (root / f"{product}.SAFE" / "MTD_MSIL2A.xml").write_text(MTD.format(baseline=baseline, offsets=offsets))


S2_SOURCE = {"kind": "files", "sensor": "sentinel-2-l2a", "scenes": "**/*.jp2", "layout": "band-per-file"}
AOI_S2 = gpd.GeoSeries([box(500_000, 8_199_960, 500_040, 8_200_000)], crs="EPSG:32736")


def test_the_boa_offset_comes_from_each_products_metadata_not_its_date(tmp_path):
    # 2019 acquisition reprocessed with baseline 05.00 (offset -1000); a 2023 one with 04.00; a 2021 one of 03.01
    _safe(tmp_path, "S2B_MSIL2A_20190629T074619_N0500_R135_T36KWD_20230101T000000", baseline="05.00", offset=-1000)
    _safe(tmp_path, "S2A_MSIL2A_20230601T074611_N0400_R135_T36KWD_20230601T100000", baseline="04.00", offset=-1000)
    _safe(tmp_path, "S2A_MSIL2A_20210601T074611_N0301_R135_T36KWD_20210601T100000", baseline="03.01", offset=None)
    stack, _ = _ingest({"sources": [{**S2_SOURCE, "scenes": str(tmp_path / "**" / "*.jp2")}]}, AOI_S2, tmp_path)
    assert [str(t)[:10] for t in stack["time"].values] == ["2019-06-29", "2021-06-01", "2023-06-01"]
    np.testing.assert_allclose(stack["red"].values[:, 0, 0], [0.05, 0.15, 0.05], rtol=1e-5)
    np.testing.assert_allclose(stack["swir1"].values[:, 0, 0], [0.05, 0.15, 0.05], rtol=1e-5)


def test_the_baseline_in_the_product_name_serves_when_the_metadata_file_is_gone(tmp_path):
    _safe(tmp_path, "S2B_MSIL2A_20190629T074619_N0510_R135_T36KWD_20230101T000000", baseline=None, offset=None)
    stack, _ = _ingest({"sources": [{**S2_SOURCE, "scenes": str(tmp_path / "**" / "*.jp2")}]}, AOI_S2, tmp_path)
    assert stack["red"].values[0, 0, 0] == pytest.approx(0.05, rel=1e-5)      # 05.10 from N0510


def test_a_users_offset_and_scale_win_over_the_products_metadata(tmp_path):
    _safe(tmp_path, "S2B_MSIL2A_20190629T074619_N0500_R135_T36KWD_20230101T000000", baseline="05.00", offset=-1000)
    stack, _ = _ingest({"sources": [{**S2_SOURCE, "scenes": str(tmp_path / "**" / "*.jp2"), "offset": 0.0,
                                     "scale": 0.0002}]}, AOI_S2, tmp_path)
    assert stack["red"].values[0, 0, 0] == pytest.approx(0.3, rel=1e-5)       # 1500 x 0.0002 + 0


def test_stac_properties_give_the_offset():
    assert baselines.item_radiometry({"earthsearch:boa_offset_applied": True, "s2:processing_baseline": "05.09"}
                                     ).default_offset == 0.0
    assert baselines.item_radiometry({"s2:processing_baseline": "05.10"}).default_offset == pytest.approx(-0.1)
    assert baselines.item_radiometry({"s2:processing_baseline": "02.12"}).default_offset == 0.0
    assert baselines.item_radiometry({}, "S2B_MSIL2A_20190629T212529_N0212_R043_T06VVN_20201006T080531"
                                     ).default_offset == 0.0
    assert baselines.item_radiometry({}, "S2B_13TDE_20231008_0_L2A") is None


# ------------------------------------------------------------------------------------ globs and bands


def test_a_recursive_glob_finds_every_depth_and_a_band_in_several_files_is_an_error(tmp_path):
    product = "S2A_MSIL2A_20230601T074611_N0400_R135_T36KWD_20230601T100000"
    _safe(tmp_path, product, baseline="04.00", offset=-1000)
    granule = tmp_path / f"{product}.SAFE" / "GRANULE" / "L2A_T36KWD" / "IMG_DATA"
    (granule / "R20m" / "T36KWD_20230601T074611_TCI_20m.jp2").write_bytes(b"")  # no band: left out
    stack, _ = _ingest({"sources": [{**S2_SOURCE, "scenes": str(tmp_path / "**" / "*.jp2")}]}, AOI_S2, tmp_path)
    assert stack.sizes["time"] == 1                                            # found 4 folders down
    _write(granule / "R20m" / "T36KWD_20230601T074611_B02_20m.jp2", np.full((2, 2), 1500), crs="EPSG:32736",
           x0=500_000, y0=8_200_000, res=20)                                   # B02 again, at 20 m
    with pytest.raises(InputError, match=r"band 'B02' of scene 'T36KWD_20230601T074611' \(2023-06-01T07:46:11\) is in "
                                         r"2 files: .*B02_10m.jp2, .*B02_20m.jp2; choose one with "
                                         r"ingest.sources\[0\].band_pattern"):
        _ingest({"sources": [{**S2_SOURCE, "scenes": str(tmp_path / "**" / "*.jp2")}]}, AOI_S2, tmp_path)
    chosen = {**S2_SOURCE, "scenes": str(tmp_path / "**" / "*.jp2"),
              "band_pattern": r"_(B0[2348](?=_10m)|B1[12](?=_20m)|SCL(?=_20m))_\d+m\.jp2$"}
    assert _ingest({"sources": [chosen]}, AOI_S2, tmp_path)[0].sizes["time"] == 1   # the key that chooses
