"""The composite stage of one AOI: ingest its scenes, mask clouds, write one composite per period.

    composite_stage   scenes -> cloud mask -> per-period composites + indices  -> composites/<period>.tif

Downstream stages read the written composites back lazily (`read_composites`), so a resumed run
computes exactly what an uninterrupted one does.
"""

from __future__ import annotations

import logging

import dask
import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from pipeline import io
from pipeline.composite import cloud_mask, composite, ndvi_range, period_of, spectral_indices
from pipeline.errors import InputError
from pipeline.ingest import drop_empty_scenes
from pipeline.ingest.sources import aoi_stack
from pipeline.job import AoiJob, compute_with_progress
from pipeline.results import OutputLayout

__all__ = ["composite_stage", "read_composites"]

log = logging.getLogger(__name__)


def composite_stage(job: AoiJob, scenes) -> dict:
    """Ingest the AOI's scenes, mask clouds, and write one composite per period (bands + indices).

    Periods are computed a batch at a time; a period whose composite has no valid pixel at all (every
    scene clouded or empty) is skipped and reported, not written."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    stack, _ = aoi_stack(scenes, job.geometry, ingest_config=config.ingest, drop=config.cloud_mask.drop,
                                 aoi_id=aoi_id)
    listed = stack.sizes["time"]
    listed_periods = {int(p) for p in period_of(stack["time"], config.composite.period).values}
    stack = drop_empty_scenes(stack, aoi_id=aoi_id)
    clear = cloud_mask(stack, mask_values=config.cloud_mask.mask_values)
    composites = composite(clear, period=config.composite.period, method=config.composite.method,
                                      min_clear_scenes=config.composite.min_clear_scenes)
    composites = spectral_indices(composites, config.composite.indices)
    if config.classify and config.classify.temporal_stats:
        composites = composites.assign(ndvi_range(clear, period=config.composite.period))
    composites = composites.rio.write_crs(stack.rio.crs)
    layers = [str(v) for v in composites.data_vars if v != "clear_count"]
    all_periods = [int(p) for p in composites["period"].values]
    periods, skipped = [], sorted(listed_periods - set(all_periods))  # every scene of the period was empty
    for period in skipped:
        log.warning("aoi %s: period %d has no clear pixel in any scene; skipped", aoi_id, period)
    job.report("composite", 0, len(all_periods), "periods")
    for start in range(0, len(all_periods), job.batch):
        batch = all_periods[start:start + job.batch]
        written = compute_with_progress([
            dask.delayed(io.write_period_cog)(composites[layers].sel(period=p).to_dataarray("band").astype("float32"),
                                        out.composite(aoi_id, p), band_names=layers, nodata=np.nan, skip_empty=True,
                                        colour_interpretation=io.rgb_colour_interpretation(layers))
            for p in batch], lambda n, start=start: job.report("composite", start + n, len(all_periods), "periods"))
        for period, path in zip(batch, written):
            if path is None:
                log.warning("aoi %s: period %d has no clear pixel in any scene; skipped", aoi_id, period)
                skipped.append(period)
                continue
            io.note_written(path)
            periods.append(period)
    if not periods:
        raise InputError(f"aoi {aoi_id!r}: no period has a clear pixel (periods {all_periods}; every scene is "
                         "clouded or empty over the AOI)")
    times = pd.to_datetime(stack["time"].values)
    return {"scenes": int(stack.sizes["time"]), "dropped_empty": int(listed - stack.sizes["time"]),
            "scene_ids": [str(s) for s in stack["scene_id"].values] if "scene_id" in stack.coords else [],
            "dates": [t.strftime("%Y-%m-%d") for t in times],
            "shape": [int(stack.sizes["y"]), int(stack.sizes["x"])], "crs": str(stack.rio.crs),
            "variables": [str(v) for v in stack.data_vars], "layers": layers, "periods": periods,
            "skipped_periods": sorted(skipped)}


def read_composites(out: OutputLayout, aoi_id: str, periods: list[int], *, chunk_size: int) -> xr.Dataset:
    """The written composites as one lazy (period, y, x) dataset, a variable per band and index."""
    rasters = [rioxarray.open_rasterio(out.composite(aoi_id, p), chunks={"x": chunk_size, "y": chunk_size},
                                       masked=True) for p in periods]
    names = list(rasters[0].attrs["long_name"]) if isinstance(rasters[0].attrs["long_name"], tuple) \
        else [rasters[0].attrs["long_name"]]
    stacked = xr.concat(rasters, dim=pd.Index(periods, name="period")).assign_coords(band=names)
    crs = rasters[0].rio.crs
    dataset = stacked.to_dataset("band").drop_vars("spatial_ref", errors="ignore")
    for name in names:
        dataset[name] = dataset[name].astype("float32")
        dataset[name].attrs = {}
    return dataset.rio.write_crs(crs)
