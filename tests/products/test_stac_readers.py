"""The run's STAC catalog in the readers researchers use: pystac and odc-stac as it is, stackstac through the
call docs/outputs.md gives (run from that page, so the page cannot go stale)."""

from __future__ import annotations

import json
import re
import shutil

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


def test_stackstac_loads_the_catalog_with_the_documented_call(catalog, monkeypatch, tmp_path):
    docs = (ROOT / "docs" / "outputs.md").read_text()
    section = docs.split("### With stackstac")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("outputs/demo/stac/catalog.json", str(catalog.stac_catalog))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/outputs.md (stackstac)", "exec"), namespace)  # noqa: S102 - our own documentation
    maps = namespace["maps"]
    assert maps.sizes["time"] == 6 and list(maps["band"].values) == ["class_map", "confidence"]
    with rasterio.open(catalog.class_map("demo_mine", 2021)) as src:
        expected = src.read(1).astype("float64")
        expected[expected == 255] = np.nan
        assert maps.sizes["y"] == src.height and maps.sizes["x"] == src.width
        assert float(maps["x"][0]) == pytest.approx(src.transform.c + src.transform.a / 2)
    loaded = maps.sel(band="class_map").isel(time=-1).compute().values
    np.testing.assert_array_equal(loaded, expected)  # the file's own pixels on its own grid
