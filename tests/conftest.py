"""Tiny rasters and vectors made in fixtures: answers can be worked out by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from rasterio.transform import from_origin
from shapely.geometry import box

HERE = Path(__file__).parent      # tests/
ROOT = HERE.parent                 # the repository
DATA = HERE / "data"               # small real data sets, each with its provenance README
MIDR = str(Path(sys.executable).with_name("midr"))  # the console script beside this Python
CRS = "EPSG:32736"
X0, Y0, RES = 500_000.0, 8_200_000.0, 30.0
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")


def make_scene_stack(n_time: int = 3, shape=(4, 4), chunks=None, years=None) -> xr.Dataset:
    """(time, y, x) reflectance: red 0.1, nir 0.5 and the other bands 0.2 everywhere."""
    ny, nx = shape
    times = (pd.to_datetime([f"{y}-06-01" for y in years]) if years is not None
             else pd.date_range("2020", periods=n_time, freq="YS"))
    coords = {"time": times, "y": Y0 - RES / 2 - RES * np.arange(ny), "x": X0 + RES / 2 + RES * np.arange(nx)}
    base = xr.DataArray(np.full((len(times), ny, nx), 0.2, "float32"), coords, ("time", "y", "x"))
    stack = xr.Dataset({b: base.copy() for b in BANDS})
    stack["red"] = base * 0 + np.float32(0.1)
    stack["nir"] = base * 0 + np.float32(0.5)
    stack = stack.rio.write_crs(CRS)
    return stack.chunk(chunks) if chunks else stack


@pytest.fixture(params=[None, {"x": 2, "y": 2}], ids=["numpy", "dask"])
def scene_stack(request) -> xr.Dataset:
    return make_scene_stack(chunks=request.param)


def write_scene(path: Path, values: np.ndarray, *, descriptions=(*BANDS, "mask"), nodata=0,
                x0: float = X0, y0: float = Y0) -> Path:
    """A (band, y, x) uint16 GeoTIFF on the test grid."""
    count, ny, nx = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=count, dtype="uint16",
                       crs=CRS, transform=from_origin(x0, y0, RES, RES), nodata=nodata) as dst:
        dst.write(values.astype("uint16"))
        dst.descriptions = tuple(descriptions)
    return path


@pytest.fixture
def scene_files(tmp_path) -> list[Path]:
    """Three 10x10 scenes: scene i has reflectance 0.1 * (i + 1) in every band (x 10000), with a cloud
    (mask 1) at pixel (5, 5) of the second scene and nodata (0) at pixel (9, 9) of the third."""
    paths = []
    for i, date in enumerate(["20200301", "20200601", "20210301"]):
        values = np.full((7, 10, 10), 1000 * (i + 1), "uint16")
        values[6] = 0
        if i == 1:
            values[6, 5, 5] = 1
        if i == 2:
            values[:6, 9, 9] = 0
        paths.append(write_scene(tmp_path / f"scene_{date}.tif", values))
    return paths


@pytest.fixture
def aoi_file(tmp_path) -> Path:
    """One AOI: the 10x10 test grid less its first row and column, with a 2x2 notch at the top right."""
    geometry = box(X0 + RES, Y0 - 10 * RES, X0 + 10 * RES, Y0 - RES).difference(
        box(X0 + 8 * RES, Y0 - 3 * RES, X0 + 10 * RES, Y0 - RES))
    path = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame({"aoi_id": ["mine_a"], "name": ["Mine A"]}, geometry=[geometry], crs=CRS).to_crs(
        "EPSG:4326").to_file(path, driver="GeoJSON")
    return path


def midr(*args: str) -> subprocess.CompletedProcess:
    """Run the `midr` command as a user would; stdout and stderr captured as text."""
    return subprocess.run([MIDR, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The small demo, generated and run once per test session with tests/demo_small.yaml.

    Returns the folder holding data/ (scenes, truth, training points, events), aoi/, config.yaml and
    outputs/demo_small/. Tests that need another run write their own config beside config.yaml.
    """
    from pipeline.demo import generate_demo

    root = tmp_path_factory.mktemp("demo")
    generate_demo(root / "data", root / "aoi" / "demo_mine.geojson", size="small", seed=42)
    shutil.copy(HERE / "demo_small.yaml", root / "config.yaml")
    result = midr("run", str(root / "config.yaml"))
    assert result.returncode == 0, result.stderr
    (root / "run_stderr.txt").write_text(result.stderr)  # what the user saw (tests/test_cli.py)
    # other tests rerun this config (resume, --force): keep the manifest of this first, full run
    shutil.copy(root / "outputs" / "demo_small" / "manifest.json", root / "first_manifest.json")
    return root
