"""The change stage of one AOI: class maps -> areas, transitions, footprint, rings, first-change map.

    change_stage        class maps -> areas, transitions, footprint, rings      -> metrics/, change/
    segmentation_stage  composites -> disturbance period, magnitude, duration,  -> change/disturbance_*.tif,
                        recovery per pixel, without labels (change.segmentation)   metrics/disturbance_area.csv
"""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr

from pipeline import change, io
from pipeline.change import segmentation
from pipeline.composite.periods import periods_of, with_period_dates
from pipeline.errors import InputError
from pipeline.ingest.grid import pixel_area_ha
from pipeline.job import AoiJob

__all__ = ["change_stage", "segmentation_index", "segmentation_stage"]


def change_stage(job: AoiJob, class_map: xr.DataArray) -> dict:
    """Class areas, transitions (consecutive and first -> last), change summary, mining footprint, rings
    and the first-change map. Every table names its periods by id, with their first and last day."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    periods = periods_of(class_map)
    area_ha = pixel_area_ha(class_map)
    counts, transitions, first_last, first_change = dask.compute(
        change.class_pixel_counts(class_map), change.transition_counts(class_map),
        change.transition_counts(class_map, steps="first_last"), change.first_change(class_map))
    tables = dict(classes=config.classes, pixel_area_ha=area_ha, aoi_id=aoi_id)

    def dated(table, *columns):
        for column in columns:
            table = with_period_dates(table, periods, column=column)
        return table

    class_area = dated(change.class_area_table(counts, **tables), "period")
    consecutive = dated(change.transition_table(transitions, **tables), "period_from", "period_to")
    io.write_csv(class_area, out.class_area(aoi_id))
    io.write_csv(consecutive, out.transitions(aoi_id))
    io.write_csv(dated(change.transition_table(first_last, **tables), "period_from", "period_to"),
                 out.transitions_first_last(aoi_id))
    io.write_csv(change.change_summary(class_area, consecutive), out.change_summary(aoi_id))
    io.write_csv(change.mining_footprint_table(class_area, config.change.mining_classes), out.mining_footprint(aoi_id))
    rings = change.ring_summary(class_map, config.classes, mining_classes=config.change.mining_classes,
                                rings_m=config.change.rings_m, aoi_id=aoi_id)
    io.write_csv(dated(rings, "period"), out.rings(aoi_id))
    io.write_cog(first_change, out.first_change(aoi_id), band_names=["first_change_period"],
                 nodata=change.FIRST_CHANGE_NODATA, tags=change.first_change_tags([p.id for p in periods]))
    return {}


def segmentation_stage(job: AoiJob, composites: xr.Dataset) -> dict:
    """Change without labels (`change.segmentation`): per-pixel segmentation of an index series across
    the periods -> change/disturbance_{period,magnitude,duration,recovery}.tif and
    metrics/disturbance_area.csv (area disturbed per period)."""
    settings, aoi_id, out = job.config.change.segmentation, job.aoi_id, job.out
    periods = periods_of(composites)
    index = segmentation_index(composites, settings.index)
    parameters = settings.model_dump(exclude={"index"})
    result = segmentation.segment_index(index, **parameters)
    (computed,) = dask.compute(result[["disturbance_period", "magnitude", "duration", "recovery"]])
    ids = [p.id for p in periods]
    tags = {"INDEX": settings.index, "MIN_MAGNITUDE": str(settings.min_magnitude), "DIRECTION": settings.direction}
    number_tags = {**tags, "VALUES": f"k = largest disturbance first seen in period k (PERIOD_k); "
                                     f"{segmentation.NO_DISTURBANCE} = none found; {segmentation.NOT_SEGMENTED} = "
                                     f"fewer than {settings.min_observations} valid periods",
                   **{f"PERIOD_{k}": period for k, period in enumerate(ids, start=1)}}
    io.write_cog(computed["disturbance_period"], out.disturbance(aoi_id, "period"), band_names=["disturbance_period"],
                 nodata=segmentation.NOT_SEGMENTED, tags=number_tags)
    units = {"magnitude": f"{settings.index} units, fitted loss", "duration": "years, start to end vertex",
             "recovery": "share of the loss regained by the last period (0 none, 1 full)"}
    for name, unit in units.items():
        io.write_cog(computed[name].astype("float32"), out.disturbance(aoi_id, name), band_names=[f"disturbance_{name}"],
                     nodata=float("nan"), tags={**tags, "UNITS": unit})
    number = computed["disturbance_period"].values
    table = segmentation.disturbance_area_table(number, computed["magnitude"].values, ids,
                                                pixel_area_ha=pixel_area_ha(composites), aoi_id=aoi_id)
    io.write_csv(with_period_dates(table, periods, column="period"), out.disturbance_area(aoi_id))
    segmented = int((number != segmentation.NOT_SEGMENTED).sum())
    disturbed = int(((number != segmentation.NOT_SEGMENTED) & (number != segmentation.NO_DISTURBANCE)).sum())
    return {"segmentation_index": settings.index, "segmented_pixels": segmented, "disturbed_pixels": disturbed,
            "disturbed_share": round(disturbed / segmented, 6) if segmented else None}


def segmentation_index(composites: xr.Dataset, name: str) -> xr.DataArray:
    """(period, y, x) float32 index to segment, in one chunk along period: the composites' own variable,
    or computed from their bands (ndvi: nir, red; nbr: nir, swir2, Key & Benson 2006)."""
    bands = {"ndvi": ("nir", "red"), "nbr": ("nir", "swir2")}
    if name in composites:
        index = composites[name]
    elif name in bands and all(b in composites for b in bands[name]):
        a, b = (composites[band] for band in bands[name])
        index = ((a - b) / (a + b)).where(lambda v: np.isfinite(v))
    else:
        needs = f" (or the bands {', '.join(bands[name])})" if name in bands else ""
        raise InputError(f"change.segmentation.index: the composites have no {name!r}{needs}; they have "
                         f"{sorted(composites.data_vars)} (add it to composite.indices or pick another index)")
    index = index.astype("float32").rename(name)
    return index.chunk(period=-1) if index.chunks else index
