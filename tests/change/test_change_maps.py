"""The change stage's maps on a 12 x 12 grid of 30 m pixels (MMU 0.5 ha = 6 pixels): first -> last with the
transitions of interest, one map per consecutive pair on request, the first-change map; each a styled COG."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from conftest import CRS
from rasterio.enums import ColorInterp
from shapely.geometry import box

from pipeline.change import FIRST_CHANGE_NODATA, NO_CHANGE
from pipeline.change.stage import change_stage
from pipeline.composite.periods import make_periods, period_coords
from pipeline.config import PipelineConfig
from pipeline.job import AoiJob
from pipeline.results import OutputLayout

N = 255
GRASS, MINING, WATER, BUILT = 3, 6, 1, 5


def _class_map() -> xr.DataArray:
    values = np.full((3, 12, 12), GRASS, "uint8")
    values[1:, 0:3, 0:3] = MINING       # 9 pixels of grass -> mining from 2011 on: transition of interest 1
    values[1, 6:9, 6:9] = N             # 9 pixels: grass, cloud, mining: a change first seen in 2012
    values[2, 6:9, 6:9] = MINING
    values[2, 0:2, 8:12] = WATER        # 8 pixels of grass -> water in 2012: other change
    values[2, 11, 0] = BUILT            # a one-pixel speck of change: under the MMU, stable
    values[:, 11, 11] = N               # never observed
    ys, xs = 8_000_000 - 15.0 - 30 * np.arange(12), 500_000 + 15.0 + 30 * np.arange(12)
    periods = make_periods(pd.to_datetime(["2010-06-01", "2011-06-01", "2012-06-01"]))
    class_map = xr.DataArray(values, dims=("period", "y", "x"), coords={"y": ys, "x": xs})
    return class_map.assign_coords(period_coords(periods)).rio.write_crs(CRS).rio.write_nodata(N)


def _job(tmp_path, consecutive: bool) -> AoiJob:
    config = PipelineConfig.model_validate(
        {"run_name": "t", "aoi": {"path": "aoi.geojson"}, "ingest": {"scenes": "s/*.tif"},
         "classify": {"training": "t.gpkg", "change_transitions": [[GRASS, MINING]]},
         "change": {"consecutive_maps": consecutive}}, context={"base_dir": tmp_path})
    geometry = gpd.GeoSeries([box(500_000, 8_000_000 - 360, 500_360, 8_000_000)], crs=CRS)
    return AoiJob(config=config, aoi=pd.Series({"aoi_id": "a"}), geometry=geometry, events=pd.DataFrame(),
                  out=OutputLayout(tmp_path / "run"))


def _read(path):
    with rasterio.open(path) as src:
        palette = src.colorinterp[0] == ColorInterp.palette
        return src.read(1), src.tags(), src.nodata, src.colormap(1) if palette else None


def test_first_last_map_shows_the_transitions_of_interest_other_change_and_stable_with_the_mmu(tmp_path):
    job = _job(tmp_path, consecutive=False)
    facts = change_stage(job, _class_map())
    out = job.out
    assert facts["change_maps"] == ["change/first_change.tif", "change/first_last.tif"]
    assert not (out.aoi_dir("a") / "change" / "consecutive").exists()
    first_last, tags, nodata, colormap = _read(out.change_first_last("a"))
    assert nodata == 255 and tags["PERIOD_FROM"] == "2010" and tags["PERIOD_TO"] == "2012"
    assert tags["CHANGE_1"] == "grass/shrub -> bare ground & mining" and tags["CHANGE_2"] == "other change"
    assert (first_last[0:3, 0:3] == 1).all() and (first_last[6:9, 6:9] == 1).all()
    assert (first_last[0:2, 8:12] == 2).all()
    assert first_last[11, 0] == 0 and first_last[11, 11] == 255  # the speck is stable; never observed: nodata
    assert int(((first_last != 0) & (first_last != 255)).sum()) == 9 + 9 + 8
    assert colormap[0][:3] != colormap[1][:3] != colormap[2][:3]  # QGIS draws it in colour as it opens
    first, tags, nodata, _ = _read(out.first_change("a"))
    assert nodata == FIRST_CHANGE_NODATA and first[11, 11] == FIRST_CHANGE_NODATA
    assert (first[0:3, 0:3] == 2).all()   # changed in the 2nd period
    assert (first[6:9, 6:9] == 3).all()   # grass, nodata, mining: a change at the 3rd period
    assert first[11, 0] == NO_CHANGE and first[5, 5] == NO_CHANGE  # never changed is a value, not nodata
    aoi = pd.read_csv(out.aoi_table("a")).iloc[0]
    assert aoi["pixels"] == 144 and aoi["mmu_pixels"] == 6


def test_consecutive_maps_on_request_one_per_pair(tmp_path):
    job = _job(tmp_path, consecutive=True)
    facts = change_stage(job, _class_map())
    assert facts["change_maps"][2:] == ["change/consecutive/2010_to_2011.tif", "change/consecutive/2011_to_2012.tif"]
    first, tags, _, _ = _read(job.out.change_consecutive("a", "2010", "2011"))
    assert (tags["PERIOD_FROM"], tags["PERIOD_TO"]) == ("2010", "2011")
    assert (first[0:3, 0:3] == 1).all() and (first[6:9, 6:9] == 255).all()  # cloud in 2011: unknown
    second, _, _, _ = _read(job.out.change_consecutive("a", "2011", "2012"))
    assert (second[0:3, 0:3] == 0).all() and (second[0:2, 8:12] == 2).all()
