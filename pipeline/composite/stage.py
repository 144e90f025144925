"""The composite stage of one AOI: ingest its scenes, mask clouds, write one composite per period.

    composite_stage   scenes -> cloud mask -> per-period composites + indices  -> composites/<period>.tif

Downstream stages read the written composites back lazily (`read_composites`), so a resumed run
computes exactly what an uninterrupted one does.
"""

from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from pipeline import io
from pipeline.composite import cloud_mask, composite, ndvi_range, spectral_indices
from pipeline.composite.indices import INDEX_FORMULAS
from pipeline.composite.periods import Period, make_periods, period_coords, scene_indices
from pipeline.composite.phenology import metric_names, period_phenology, sub_period_names
from pipeline.config import CompositeConfig, PipelineConfig
from pipeline.errors import InputError
from pipeline.ingest import report_empty_scenes, scenes_with_pixels
from pipeline.ingest.sources import aoi_stack
from pipeline.job import AoiJob, compute_with_progress, raster_tasks
from pipeline.results import OutputLayout

__all__ = ["composite_stage", "read_composites", "configured_periods", "period_tags", "feature_groups",
           "metric_variables", "seasonal_days", "sub_period_kind", "sub_period_variables"]

log = logging.getLogger(__name__)


def configured_periods(times, settings: CompositeConfig) -> list[Period]:
    """The periods `composite.period` makes of the acquisition `times` (docs/periods.md)."""
    return make_periods(times, kind=settings.period,
                        season=(settings.season.start, settings.season.end) if settings.season else None,
                        windows=[(w.name, w.start, w.end) for w in settings.windows or ()])


def period_tags(period: Period) -> dict[str, str]:
    """The COG metadata that names a raster's period."""
    return {"PERIOD": period.id, "PERIOD_START": period.start.isoformat(), "PERIOD_END": period.end.isoformat(),
            "PERIOD_LABEL": period.label}


def composite_stage(job: AoiJob, scenes, items: dict | None = None) -> dict:
    """Ingest the AOI's scenes, mask clouds, and write one composite per period (bands + indices).

    `items`: the AOI's STAC items per source (`ingest.find_items`; searched here when not given).
    Periods are computed a batch at a time; a period whose composite has no valid pixel at all (every
    scene clouded or empty) is skipped and reported, not written."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    settings = config.composite
    stack, _ = aoi_stack(scenes, job.geometry, ingest_config=config.ingest, drop=config.cloud_mask.drop,
                         aoi_id=aoi_id, items=items)
    listed = stack.sizes["time"]
    listed_periods = configured_periods(stack["time"].values, settings)
    outside = _outside(stack["time"].values, listed_periods)
    if outside:
        log.info("aoi %s: %d of %d acquisitions fall outside every period (composite.period: %s) and are not used",
                 aoi_id, outside, listed, settings.period)
    clear = cloud_mask(stack, mask_values=config.cloud_mask.mask_values)
    method = "first" if settings.period == "scene" else settings.method
    times = stack["time"].values
    candidates = [p for p in listed_periods if len(scene_indices(times, p))]
    if not candidates:
        raise InputError(f"aoi {aoi_id!r}: no clear acquisition falls within any period "
                         f"({_ids(listed_periods) or 'composite.period makes none of the scene dates'})")
    composites = composite(clear, candidates, method=method, min_clear_scenes=settings.min_clear_scenes)
    composites = spectral_indices(composites, settings.indices)
    groups = feature_groups(config, [str(v) for v in clear.data_vars])
    if groups["ndvi_range"]:
        composites = composites.assign(ndvi_range(clear, candidates))
    if groups["metrics"] or groups["sub_periods"]:
        composites = composites.assign(_phenology(clear, candidates, config, groups)
                                       .where(composites["clear_count"] >= settings.min_clear_scenes))
    composites = composites.rio.write_crs(stack.rio.crs)
    layers = [*groups["composite"], *groups["ndvi_range"], *groups["metrics"], *groups["clear_count"],
              *groups["sub_periods"]]
    written_periods, skipped = [], [p for p in listed_periods if p not in candidates]
    for period in skipped:  # a window that holds no acquisition
        log.warning("aoi %s: period %s has no clear pixel in any scene; skipped", aoi_id, period.id)
    # a scene with no valid pixel in the AOI adds nothing to a composite: it is found in the pass that writes
    # them (not by a read of its own) and left out of the facts
    has_pixels = da.asarray(scenes_with_pixels(stack).data)
    keep = np.ones(len(times), bool)
    job.report("composite", 0, len(candidates), "periods")
    for start in range(0, len(candidates), job.batch):
        batch = candidates[start:start + job.batch]
        rasters = [composites[layers].sel(period=p.id).to_dataarray("band").astype("float32") for p in batch]
        arguments = [((out.composite(aoi_id, p.id),), dict(band_names=layers, nodata=np.nan, tags=period_tags(p),
                                                           skip_empty=True,
                                                           colour_interpretation=io.rgb_colour_interpretation(layers)))
                     for p in batch]
        used = np.unique(np.concatenate([scene_indices(times, p) for p in batch]))
        tasks = raster_tasks(io.write_period_cog, rasters, arguments, also=[has_pixels[used]])
        *written, valid = compute_with_progress(
            tasks, lambda n, start=start, size=len(batch): job.report("composite", start + min(n, size),
                                                                       len(candidates), "periods"))
        keep[used] = np.asarray(valid, bool)
        for period, path in zip(batch, written):
            if path is None:
                log.warning("aoi %s: period %s has no clear pixel in any scene; skipped", aoi_id, period.id)
                skipped.append(period)
                continue
            io.note_written(path)
            written_periods.append(period)
    report_empty_scenes(stack, keep, aoi_id=aoi_id)
    if not written_periods:
        raise InputError(f"aoi {aoi_id!r}: no period has a clear pixel (periods {_ids(listed_periods)}; every "
                         "scene is clouded or empty over the AOI)")
    stack, times = stack.isel(time=np.flatnonzero(keep)), times[keep]
    stamps = pd.to_datetime(times)
    return {"scenes": int(stack.sizes["time"]), "dropped_empty": int((~keep).sum()),
            "scene_ids": [str(s) for s in stack["scene_id"].values] if "scene_id" in stack.coords else [],
            "dates": [t.strftime("%Y-%m-%d") for t in stamps],
            "shape": [int(stack.sizes["y"]), int(stack.sizes["x"])], "crs": str(stack.rio.crs),
            "variables": [str(v) for v in stack.data_vars], "layers": layers, "feature_groups": groups,
            "period_kind": settings.period,
            "periods": [p.id for p in written_periods],
            "period_records": [p.as_record() for p in written_periods],
            "period_scenes": {p.id: [stamps[i].isoformat() for i in scene_indices(times, p)] for p in written_periods},
            "skipped_periods": sorted(p.id for p in skipped)}


def feature_groups(config: PipelineConfig, bands: list[str]) -> dict[str, list[str]]:
    """The layers of the composite COGs by kind, in band order: `composite` (bands, then
    composite.indices), `ndvi_range`, `metrics` (percentiles and spread of classify.features.of),
    `clear_count` and `sub_periods` (each variable's sub-periods in calendar order); each a list of
    names, empty where not chosen. `bands` are the scene stack's (without its mask)."""
    settings = config.composite
    features = config.classify.features if config.classify else None
    groups = {"composite": [*bands, *[i for i in settings.indices if i not in bands]], "ndvi_range": [],
              "metrics": [], "clear_count": [], "sub_periods": []}
    if features is None:
        return groups
    if features.ndvi_range:
        groups["ndvi_range"] = ["ndvi_min", "ndvi_max"]
    for variable in metric_variables(config, bands):
        groups["metrics"] += metric_names(variable, percentiles=features.percentiles, spread=features.spread)
    if features.clear_count:
        groups["clear_count"] = ["clear_count"]
    kind = sub_period_kind(config)
    if kind != "none":
        for variable in sub_period_variables(config, bands):
            groups["sub_periods"] += sub_period_names(variable, kind, within=seasonal_days(settings))
    return groups


def sub_period_kind(config: PipelineConfig) -> str:
    """classify.features.sub_periods, its default resolved: month for periods of a year, a season or
    windows, none for shorter periods (quarter, month, scene)."""
    kind = config.classify.features.sub_periods if config.classify else "none"
    if kind is None:
        return "month" if config.composite.period in ("year", "season", "windows") else "none"
    return kind


def sub_period_variables(config: PipelineConfig, bands: list[str]) -> list[str]:
    """classify.features.sub_period_of, else ndvi where the scenes give it (an ndvi band, or red and nir),
    else the first variable of the metrics (`metric_variables`' default)."""
    features = config.classify.features
    if features.sub_period_of:
        return list(features.sub_period_of)
    if "ndvi" in bands or {"red", "nir"} <= set(bands):
        return ["ndvi"]
    return list(features.of or config.composite.indices or bands)[:1]


def metric_variables(config: PipelineConfig, bands: list[str]) -> list[str]:
    """The variables of the spectral-temporal metrics: classify.features.of, else composite.indices, else
    the bands (an index product such as MODIS NDVI/EVI)."""
    features = config.classify.features
    if not (features.percentiles or features.spread):
        return []
    return list(features.of or config.composite.indices or bands)


def seasonal_days(settings: CompositeConfig) -> tuple[str, str] | None:
    """The (start, end) MM-DD of a seasonal composite period (None for other kinds)."""
    return (settings.season.start, settings.season.end) if settings.period == "season" else None


def _phenology(clear: xr.Dataset, periods: list[Period], config: PipelineConfig, groups: dict) -> xr.Dataset:
    """The metric and sub-period layers of classify.features, lazily from the clear scenes."""
    features, settings = config.classify.features, config.composite
    known = set(clear.data_vars) | set(INDEX_FORMULAS) | {"bsi"}
    variables = metric_variables(config, list(clear.data_vars))
    kind = sub_period_kind(config)
    subs = sub_period_variables(config, list(clear.data_vars)) if kind != "none" else []
    unknown = sorted({v for v in (*variables, *subs) if v not in known})
    if unknown:
        raise InputError(f"classify.features: {unknown} are neither bands of the scenes ({sorted(clear.data_vars)}) "
                         f"nor indices ({sorted(INDEX_FORMULAS) + ['bsi']}); fix classify.features.of / sub_period_of")
    out = period_phenology(clear, periods, variables=variables, percentiles=features.percentiles,
                           spread=features.spread, sub_periods=kind if subs else None,
                           sub_period_of=subs,
                           season=(features.season.start, features.season.end) if features.season else None,
                           within=seasonal_days(settings), method=settings.method)
    return out[groups["metrics"] + groups["sub_periods"]]


def _outside(times, periods: list[Period]) -> int:
    """How many acquisition times fall within none of the periods."""
    inside = np.zeros(len(times), bool)
    for period in periods:
        inside[scene_indices(times, period)] = True
    return int((~inside).sum())


def _ids(periods: list[Period]) -> str:
    return ", ".join(p.id for p in periods)


def read_composites(out: OutputLayout, aoi_id: str, periods: list[Period], *, chunk_size: int) -> xr.Dataset:
    """The written composites as one lazy (period, y, x) dataset, a variable per band and index; the
    period dimension carries `period_start` and `period_end`."""
    # float32 with NaN as nodata, as written: no mask to apply; no lock: the blocks are read in parallel
    rasters = [rioxarray.open_rasterio(out.composite(aoi_id, p.id), chunks={"x": chunk_size, "y": chunk_size},
                                       lock=False) for p in periods]
    names = list(rasters[0].attrs["long_name"]) if isinstance(rasters[0].attrs["long_name"], tuple) \
        else [rasters[0].attrs["long_name"]]
    stacked = xr.concat(rasters, dim="period").assign_coords(period_coords(periods)).assign_coords(band=names)
    crs = rasters[0].rio.crs
    dataset = stacked.to_dataset("band").drop_vars("spatial_ref", errors="ignore")
    for name in names:
        dataset[name] = dataset[name].astype("float32")
        dataset[name].attrs = {}
    return dataset.rio.write_crs(crs)
