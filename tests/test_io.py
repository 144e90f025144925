from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from pipeline import io
from pipeline.events import read_events
from pipeline.ingest import read_aois
from pipeline.errors import InputError

from conftest import CRS


def _raster(dtype="uint8") -> xr.DataArray:
    values = np.arange(300 * 300, dtype="int64").reshape(300, 300) % 7
    raster = xr.DataArray(values.astype(dtype), dims=("y", "x"),
                          coords={"y": 8_200_000 - 15 - 30 * np.arange(300), "x": 500_015 + 30 * np.arange(300)})
    return raster.rio.write_crs(CRS)


def test_write_cog_is_a_cog_with_names_colours_and_grid(tmp_path):
    path = tmp_path / "classes" / "2020.tif"
    io.write_cog(_raster(), path, band_names=["class"], nodata=255, colormap={1: (255, 0, 0, 255)})
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.descriptions == ("class",) and src.nodata == 255 and src.crs == CRS
        assert src.colormap(1)[1] == (255, 0, 0, 255)
        assert src.transform.c == 500_000 and src.transform.a == 30
        assert src.overviews(1)
        np.testing.assert_array_equal(src.read(1), _raster().values)
    assert sorted(p.name for p in path.parent.iterdir()) == ["2020.tif"]  # no temporary file left


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "table.csv"
    io.write_csv(pd.DataFrame({"a": [1]}), path)
    with pytest.raises(ValueError):
        io.write_cog(_raster(), tmp_path / "table.csv", band_names=["a", "b"], nodata=255)
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "a\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_read_aois_names_the_missing_id_field(aoi_file):
    with pytest.raises(InputError, match=r"aoi\.geojson: no field 'mine' \(aoi\.id_field\)"):
        read_aois(aoi_file, id_field="mine")


def test_read_aois_names_a_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.gpkg: AOI file \(aoi\.path\) not found"):
        read_aois(tmp_path / "nothere.gpkg", id_field="aoi_id")


def test_read_events_needs_its_key_columns(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("event_id,mine\na,b\n")
    with pytest.raises(InputError, match=r"events\.csv: the events table lacks the column\(s\) \['year_start'\]"):
        read_events(path)


def test_write_cog_stores_the_colour_interpretation_of_rgb_bands(tmp_path):
    path = tmp_path / "composite.tif"
    names = ["blue", "green", "red", "nir"]
    raster = xr.concat([_raster("float32")] * 4, dim="band")
    io.write_cog(raster, path, band_names=names, nodata=np.nan, colour_interpretation=io.rgb_colour_interpretation(names))
    with rasterio.open(path) as src:
        assert [c.name for c in src.colorinterp] == ["blue", "green", "red", "undefined"]
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    assert io.rgb_colour_interpretation(["ndvi"]) is None


def test_category_sidecar_names_every_class_for_gdal(tmp_path):
    import xml.etree.ElementTree as ET

    path = tmp_path / "2020.tif"
    io.write_cog(_raster(), path, band_names=["class"], nodata=255)
    sidecar = io.write_category_sidecar(path, [(1, "water", "#1f78b4"), (3, "built-up & <roads>", "#e31a1c")])
    assert sidecar == tmp_path / "2020.tif.aux.xml"
    band = ET.parse(sidecar).getroot().find("PAMRasterBand")
    assert [c.text or "" for c in band.find("CategoryNames")] == ["", "water", "", "built-up & <roads>"]
    rows = [[f.text for f in row] for row in band.find("GDALRasterAttributeTable").findall("Row")]
    assert rows == [["1", "water", "31", "120", "180"], ["3", "built-up & <roads>", "227", "26", "28"]]
    with rasterio.open(path) as src:  # GDAL reads the file with its sidecar as before
        np.testing.assert_array_equal(src.read(1), _raster().values)


def test_a_geopackage_with_a_qgis_style_reads_back_as_its_layer(tmp_path, recwarn):
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import Point

    points = gpd.GeoDataFrame({"sample_id": [1, 2]}, geometry=[Point(0, 0), Point(1, 1)], crs=CRS)
    for name in ("a.gpkg", "b.gpkg"):
        io.write_gpkg(points, tmp_path / name, layer="mine validation sample 2020", qgis_style="<qgis/>")
    assert io.sha256(tmp_path / "a.gpkg") == io.sha256(tmp_path / "b.gpkg")  # equal runs, equal files
    assert [n for n, _ in pyogrio.list_layers(tmp_path / "a.gpkg")] == ["mine validation sample 2020", "layer_styles"]
    styles = gpd.read_file(tmp_path / "a.gpkg", layer="layer_styles")
    assert styles.loc[0, ["f_table_schema", "f_table_name", "f_geometry_column", "styleQML"]].tolist() == [
        "", "mine validation sample 2020", "geom", "<qgis/>"]
    assert bool(styles.loc[0, "useAsDefault"])
    assert io.read_vector(tmp_path / "a.gpkg", what="sample")["sample_id"].tolist() == [1, 2]
    assert not [w for w in recwarn if "More than one layer" in str(w.message)]
