"""The change stage of one AOI: class maps -> areas, transitions, footprint, rings, first-change map.

    change_stage      class maps -> areas, transitions, footprint, rings       -> metrics/, change/
"""

from __future__ import annotations

import dask
import xarray as xr

from pipeline import change, io
from pipeline.composite.periods import periods_of, with_period_dates
from pipeline.ingest.grid import pixel_area_ha
from pipeline.job import AoiJob

__all__ = ["change_stage"]


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
