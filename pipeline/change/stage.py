"""The change stage of one AOI: class maps -> areas, transitions, footprint, rings, first-change map.

    change_stage      class maps -> areas, transitions, footprint, rings       -> metrics/, change/
"""

from __future__ import annotations

import dask
import xarray as xr

from pipeline import change, io
from pipeline.ingest.grid import pixel_area_ha
from pipeline.job import AoiJob

__all__ = ["change_stage"]


def change_stage(job: AoiJob, class_map: xr.DataArray) -> dict:
    """Class areas, transitions (consecutive and first -> last), change summary, mining footprint, rings
    and the first-change-year map."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    area_ha = pixel_area_ha(class_map)
    counts, transitions, first_last, first_change = dask.compute(
        change.class_pixel_counts(class_map), change.transition_counts(class_map),
        change.transition_counts(class_map, steps="first_last"), change.first_change_year(class_map))
    tables = dict(classes=config.classes, pixel_area_ha=area_ha, aoi_id=aoi_id)
    class_area = change.class_area_table(counts, **tables)
    consecutive = change.transition_table(transitions, **tables)
    io.write_csv(class_area, out.class_area(aoi_id))
    io.write_csv(consecutive, out.transitions(aoi_id))
    io.write_csv(change.transition_table(first_last, **tables), out.transitions_first_last(aoi_id))
    io.write_csv(change.change_summary(class_area, consecutive), out.change_summary(aoi_id))
    io.write_csv(change.mining_footprint_table(class_area, config.change.mining_classes), out.mining_footprint(aoi_id))
    io.write_csv(change.ring_summary(class_map, config.classes, mining_classes=config.change.mining_classes,
                                     rings_m=config.change.rings_m, aoi_id=aoi_id), out.rings(aoi_id))
    io.write_cog(first_change, out.first_change_year(aoi_id), band_names=["first_change_year"],
                 nodata=change.NO_CHANGE)
    return {}
