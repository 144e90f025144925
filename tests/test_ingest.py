from __future__ import annotations

import dask
import geopandas as gpd
import numpy as np
import pytest

from pipeline import io
from pipeline.errors import InputError
from pipeline.ingest import scene_stack

from conftest import write_scene

SETTINGS = dict(bands={b: b for b in ("blue", "green", "red", "nir", "swir1", "swir2")}, mask_band="mask",
                scale=1e-4, offset=0.0, nodata=0, chunk_size=64)


def _aoi(aoi_file):
    return gpd.read_file(aoi_file).geometry


def test_list_scenes_parses_dates_and_sorts(scene_files, tmp_path):
    scenes = io.list_scenes(str(tmp_path / "scene_*.tif"), date_pattern=r"(\d{8})", date_format="%Y%m%d")
    assert [when.strftime("%Y-%m-%d") for when, _ in scenes] == ["2020-03-01", "2020-06-01", "2021-03-01"]


def test_list_scenes_names_the_file_without_a_date(scene_files, tmp_path):
    (tmp_path / "scene_undated.tif").write_bytes(scene_files[0].read_bytes())
    with pytest.raises(InputError, match=r"scene_undated\.tif: no date in the file name"):
        io.list_scenes(str(tmp_path / "scene_*.tif"), date_pattern=r"(\d{8})", date_format="%Y%m%d")


def test_list_scenes_says_when_nothing_matches(tmp_path):
    with pytest.raises(InputError, match="no scene files match .*ingest.scenes"):
        io.list_scenes(str(tmp_path / "*.tif"), date_pattern=r"(\d{8})", date_format="%Y%m%d")


def test_scene_stack_is_lazy_scaled_and_clipped_to_the_aoi(scene_files, tmp_path, aoi_file):
    scenes = io.list_scenes(str(tmp_path / "scene_*.tif"), date_pattern=r"(\d{8})", date_format="%Y%m%d")
    stack = scene_stack(scenes, _aoi(aoi_file), **SETTINGS)
    assert dask.is_dask_collection(stack)
    # clipped to the AOI's bounds: the first row and column of the files are gone
    assert dict(stack.sizes) == {"time": 3, "y": 9, "x": 9}
    assert str(stack.rio.crs) == "EPSG:32736"
    assert stack.rio.transform().c == 500_030.0
    red = stack["red"].values
    # scene i is 0.1 * (i + 1); the notch (rows 0-1, columns 7-8 here) is outside the AOI polygon
    np.testing.assert_allclose(red[:, 4, 4], [0.1, 0.2, 0.3], rtol=1e-6)
    assert np.isnan(red[:, :2, 7:]).all()
    assert np.isfinite(red[:, 2, 7:]).all()
    # file pixel (9, 9) is nodata in the third scene only
    assert np.isnan(red[2, 8, 8]) and red[1, 8, 8] == pytest.approx(0.2)
    assert stack["mask"].values[1, 4, 4] == 1


def test_scene_stack_takes_a_scene_on_a_shifted_grid_by_its_window(scene_files, tmp_path, aoi_file):
    values = np.full((7, 12, 12), 4000, "uint16")
    values[6] = 0
    write_scene(tmp_path / "scene_20220301.tif", values, x0=500_000.0 - 60, y0=8_200_000.0 + 60)
    scenes = io.list_scenes(str(tmp_path / "scene_*.tif"), date_pattern=r"(\d{8})", date_format="%Y%m%d")
    stack = scene_stack(scenes, _aoi(aoi_file), **SETTINGS)
    assert stack.sizes["time"] == 4
    np.testing.assert_allclose(stack["red"].values[3, 2:, :], 0.4, rtol=1e-6)


def test_scene_stack_names_the_file_missing_a_band(tmp_path, aoi_file):
    path = write_scene(tmp_path / "scene_20200101.tif", np.ones((2, 10, 10)), descriptions=("red", "nir"))
    with pytest.raises(InputError, match=r"scene_20200101\.tif: no band described \['blue', 'green'"):
        scene_stack([(None, path)], _aoi(aoi_file), **SETTINGS)


def test_scene_stack_refuses_an_aoi_outside_all_scenes(scene_files, tmp_path, aoi_file):
    far = _aoi(aoi_file).to_crs("EPSG:32736").translate(50_000, 0)
    scenes = io.list_scenes(str(tmp_path / "scene_*.tif"), date_pattern=r"(\d{8})", date_format="%Y%m%d")
    with pytest.raises(InputError, match="does not overlap any of the 3 scenes"):
        scene_stack(scenes, far, **SETTINGS)


def test_open_scene_names_a_corrupt_file(tmp_path):
    path = tmp_path / "broken_20200101.tif"
    path.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(InputError, match=r"broken_20200101\.tif: cannot open as a raster"):
        io.open_scene(path, chunk_size=64)
