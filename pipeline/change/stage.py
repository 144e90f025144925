"""The change stage of one AOI: class maps -> areas, transitions, footprint, rings, change maps.

    change_stage        cleaned + raw class maps -> areas, transitions, footprint, rings, change maps
                                                                                -> metrics/, change/
    segmentation_stage  composites -> disturbance period, magnitude, duration,  -> change/disturbance_*.tif,
                        recovery per pixel, without labels (change.segmentation)   metrics/disturbance_area.csv

Everything is counted on the cleaned maps (gap-filled, minimum mapping unit applied: classes_cleaned/);
the maps as classified (classes/) give the observed and nodata areas and the raw areas beside them.
"""

from __future__ import annotations

import itertools

import dask
import numpy as np
import pandas as pd
import xarray as xr

from pipeline import change, io
from pipeline.change import segmentation
from pipeline.classify.cleaning import mmu_pixels, sieve_change_map
from pipeline.classify.predict import UNCLASSIFIED
from pipeline.classify.stage import change_names, change_of_interest
from pipeline.composite.periods import periods_of, with_period_dates
from pipeline.config import PipelineConfig
from pipeline.errors import InputError
from pipeline.ingest.grid import pixel_area_ha
from pipeline.ingest.stack import aoi_mask
from pipeline.job import AoiJob

__all__ = ["aoi_table", "change_stage", "segmentation_index", "segmentation_stage"]


def change_stage(job: AoiJob, class_map: xr.DataArray, raw_class_map: xr.DataArray | None = None) -> dict:
    """Class areas (with the observed, nodata and gap-filled areas per period), transitions (consecutive and
    first -> last), change summary, mining footprint, rings and the change maps: first change, first -> last
    (transitions of interest, any other change) and, with change.consecutive_maps, each pair of consecutive
    periods; the minimum mapping unit applied to each. `class_map`: the cleaned maps; `raw_class_map`: as
    classified (default: the same). Every table names its periods by id, with their first and last day."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    raw_class_map = class_map if raw_class_map is None else raw_class_map
    periods = periods_of(class_map)
    area_ha = pixel_area_ha(class_map)
    inside = aoi_mask(class_map, job.geometry)
    filled_only = class_map.where(raw_class_map == UNCLASSIFIED, UNCLASSIFIED).astype("uint8")
    counts, raw_counts, filled_counts, transitions, first_last = dask.compute(
        change.class_pixel_counts(class_map), change.class_pixel_counts(raw_class_map),
        change.class_pixel_counts(filled_only), change.transition_counts(class_map),
        change.transition_counts(class_map, steps="first_last"))
    tables = {"classes": config.classes, "pixel_area_ha": area_ha, "aoi_id": aoi_id}

    def dated(table, *columns):
        for column in columns:
            table = with_period_dates(table, periods, column=column)
        return table

    aoi_pixels = int(inside.sum())
    io.write_csv(aoi_table(config, job, class_map, aoi_pixels), out.aoi_table(aoi_id))
    class_area = dated(change.class_area_table(counts, **tables, raw_counts=raw_counts, filled_counts=filled_counts,
                                               aoi_pixels=aoi_pixels), "period")
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
    return {"change_maps": _change_maps(config, job, class_map)}


def aoi_table(config: PipelineConfig, job: AoiJob, grid: xr.DataArray, aoi_pixels: int) -> pd.DataFrame:
    """metrics/aoi.csv, one row: the AOI's area (its pixels: centres inside the polygon, as every table
    counts them; and the polygon's own area), the grid, and how the class maps were cleaned."""
    settings = config.classify
    crs = grid.rio.crs
    polygon_ha = float(job.geometry.to_crs(crs).area.sum()) / 10_000 if crs is not None and crs.is_projected \
        else np.nan
    return pd.DataFrame([{
        "aoi_id": job.aoi_id, "area_ha": aoi_pixels * pixel_area_ha(grid), "pixels": aoi_pixels,
        "polygon_area_ha": polygon_ha, "pixel_area_ha": pixel_area_ha(grid),
        "resolution": abs(grid.rio.resolution()[0]), "crs": crs.to_string() if crs is not None else "",
        "periods": grid.sizes["period"], "gap_fill": settings.gap_fill, "mmu_ha": settings.mmu_ha,
        "mmu_pixels": mmu_pixels(settings.mmu_ha, grid), "mmu_connectivity": settings.mmu_connectivity}])


def _change_maps(config: PipelineConfig, job: AoiJob, class_map: xr.DataArray) -> list[str]:
    """Write the change maps (COGs); returns their names for the manifest."""
    aoi_id, out = job.aoi_id, job.out
    settings = config.classify
    min_pixels = mmu_pixels(settings.mmu_ha, class_map)
    ids = [str(p) for p in class_map["period"].values]
    first_change = sieve_change_map(change.first_change(class_map), min_pixels=min_pixels,
                                    connectivity=settings.mmu_connectivity, unchanged=change.NO_CHANGE,
                                    nodata=change.FIRST_CHANGE_NODATA)
    maps = [(first_change, out.first_change(aoi_id),
             {"band_names": ["first_change_period"], "nodata": change.FIRST_CHANGE_NODATA, "categorical": True,
              "tags": change.first_change_tags(ids)})]
    pairs = [(ids[0], ids[-1], out.change_first_last(aoi_id))] if len(ids) > 1 else []
    if config.change.consecutive_maps:
        pairs += [(a, b, out.change_consecutive(aoi_id, a, b)) for a, b in itertools.pairwise(ids)]
    names = change_names(config)
    colours = {value: _rgba(colour) for value, colour in change.change_map_colours(len(names) - 2).items()}
    for period_from, period_to, path in pairs:
        tags = change.change_map_tags(names, period_from, period_to, nodata=UNCLASSIFIED)
        maps.append((change_of_interest(config, class_map.sel(period=period_from), class_map.sel(period=period_to)),
                     path, {"band_names": ["change"], "nodata": UNCLASSIFIED, "colormap": colours, "tags": tags}))
    (computed,) = dask.compute([raster for raster, _, _ in maps])
    for raster, (_, path, options) in zip(computed, maps):
        io.write_cog(raster, path, **options)
    return [str(path.relative_to(out.aoi_dir(aoi_id))) for _, path, _ in maps]


def _rgba(colour: str) -> tuple[int, int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255


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
