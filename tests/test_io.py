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
