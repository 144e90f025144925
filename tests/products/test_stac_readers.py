"""The run's STAC catalog in the readers researchers use: pystac and odc-stac as it is, stackstac through the
call docs/outputs.md gives (run from that page, so the page cannot go stale)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pystac
import pytest
import rasterio

from pipeline.products.catalog import write_output_catalog
from pipeline.results import OutputLayout

from conftest import ROOT


@pytest.fixture(scope="module")
def catalog(demo_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("readers") / "demo_small"
    shutil.copytree(demo_run / "outputs" / "demo_small", run_dir, ignore=shutil.ignore_patterns("*.mp4"))
    write_output_catalog(run_dir)
    return OutputLayout(run_dir)


def test_every_asset_carries_proj_epsg_beside_proj_code(catalog):
    for path in (catalog.stac_catalog.parent / "demo_mine").rglob("*.json"):
        for asset in json.loads(path.read_text()).get("assets", {}).values():
            assert asset["proj:epsg"] == 32736 and asset["proj:code"] == "EPSG:32736", path.name


def test_odc_stac_loads_the_catalog_with_no_parameters(catalog, monkeypatch, tmp_path):
    import odc.stac

    monkeypatch.chdir(tmp_path)  # relative hrefs resolve against the items, not the working folder
    items = list(pystac.Catalog.from_file(str(catalog.stac_catalog)).get_items(recursive=True))
    data = odc.stac.load(items, chunks={})
    assert {"red", "ndvi", "class_map", "confidence"} <= set(data.data_vars)
    assert data.odc.geobox.crs.epsg == 32736 and data["class_map"].dtype == "uint8"
    first = data.isel(time=0).compute()
    with rasterio.open(catalog.class_map("demo_mine", 2016)) as src:
        np.testing.assert_array_equal(first["class_map"].values, src.read(1))


STACKSTAC = ROOT / "build" / "stackstac"  # stackstac 0.5.1 with pandas 2 (`make stackstac-env`)
_CHECK = r"""
import json, re, sys
import numpy as np, rasterio, stackstac
catalog, class_map, docs = sys.argv[1:4]
section = open(docs).read().split("### With stackstac")[1]
code = re.search(r"```python\n(.*?)```", section, re.S).group(1).replace("outputs/demo/stac/catalog.json", catalog)
namespace = {}
exec(code, namespace)
maps = namespace["maps"]
with rasterio.open(class_map) as src:
    expected = src.read(1).astype("float64")
    expected[expected == 255] = np.nan
    grid = [src.height, src.width, src.transform.c]  # stackstac's x coordinates are the pixels' left edges
loaded = maps.sel(band="class_map").isel(time=-1).compute().values
print(json.dumps({"version": stackstac.__version__, "sizes": dict(maps.sizes),
                  "bands": [str(b) for b in maps["band"].values], "grid": grid,
                  "loaded_grid": [maps.sizes["y"], maps.sizes["x"], float(maps["x"][0])],
                  "equal": bool(np.array_equal(loaded, expected, equal_nan=True))}))
"""


def test_stackstac_loads_the_catalog_with_the_documented_call(catalog, tmp_path):
    """The call of docs/outputs.md, run as it stands there, in stackstac's own environment (pandas 2)."""
    if not (STACKSTAC / "stackstac").is_dir():
        pytest.fail("this test needs stackstac 0.5.1 with pandas 2 in build/stackstac: run `make stackstac-env`")
    result = subprocess.run([sys.executable, "-c", _CHECK, str(catalog.stac_catalog),
                             str(catalog.class_map("demo_mine", 2021)), str(ROOT / "docs" / "outputs.md")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(STACKSTAC)})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["version"] == "0.5.1" and found["sizes"]["time"] == 6
    assert found["bands"] == ["class_map", "confidence"]
    assert found["loaded_grid"][:2] == found["grid"][:2]  # the file's own grid,
    assert found["loaded_grid"][2] == pytest.approx(found["grid"][2])
    assert found["equal"]  # and its own pixels


def test_writing_the_catalog_of_a_run_given_by_a_relative_path_keeps_it(catalog, monkeypatch):
    """As from a notebook: write_output_catalog("outputs/demo") once deleted what it had just written."""
    from pathlib import Path

    monkeypatch.chdir(catalog.run_dir.parent)
    written = write_output_catalog(Path(catalog.run_dir.name))
    assert catalog.stac_catalog.is_file() and len(written) == 8 and all(p.is_file() for p in written)
