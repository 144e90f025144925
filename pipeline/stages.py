"""The stages of one AOI, each a function that reads its inputs lazily, computes, and writes its outputs.

    composite_stage   scenes -> cloud mask -> per-period composites + indices  -> composites/<period>.tif
    classify_stage    composites + labels -> model, accuracy, class maps       -> classes/, metrics/, validation/
    change_stage      class maps -> areas, transitions, footprint, rings       -> metrics/, change/
    events_stage      class maps + events -> before/after, BACI, zones         -> events/
(the video stage is `pipeline.timelapse`). Downstream stages read their inputs back from the written
files (lazily), so a resumed run computes exactly what an uninterrupted one does. Each returns the
facts the manifest records (JSON-able, deterministic). `run.py` decides which stages run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from pipeline import accuracy as accuracies
from pipeline import change, classify, events, exports, ingest, io, models, preprocess, sources, temporal
from pipeline.config import PipelineConfig
from pipeline.errors import InputError
from pipeline.results import OutputLayout

__all__ = ["AoiJob", "composite_stage", "classify_stage", "change_stage", "events_stage", "read_composites",
           "read_class_map", "train_and_predict", "filter_flicker", "validation_design"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AoiJob:
    """One AOI of a run: its row of the AOI file, its (buffered) outline, its linked events, where it writes."""

    config: PipelineConfig
    aoi: pd.Series
    geometry: gpd.GeoSeries
    events: pd.DataFrame
    out: OutputLayout
    batch: int = 4          # periods computed and written at once (bounded memory: one batch at a time)

    @property
    def aoi_id(self) -> str:
        return self.aoi["aoi_id"]


def composite_stage(job: AoiJob, scenes) -> dict:
    """Ingest the AOI's scenes, mask clouds, and write one composite per period (bands + indices).

    Periods are computed a batch at a time; a period whose composite has no valid pixel at all (every
    scene clouded or empty) is skipped and reported, not written."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    stack, _ = sources.aoi_stack(scenes, job.geometry, ingest_config=config.ingest, drop=config.cloud_mask.drop,
                                 aoi_id=aoi_id)
    listed = stack.sizes["time"]
    listed_periods = {int(p) for p in preprocess.period_of(stack["time"], config.composite.period).values}
    stack = ingest.drop_empty_scenes(stack, aoi_id=aoi_id)
    clear = preprocess.cloud_mask(stack, mask_values=config.cloud_mask.mask_values)
    composites = preprocess.composite(clear, period=config.composite.period, method=config.composite.method,
                                      min_clear_scenes=config.composite.min_clear_scenes)
    composites = preprocess.spectral_indices(composites, config.composite.indices)
    if config.classify and config.classify.temporal_stats:
        composites = composites.assign(preprocess.ndvi_range(clear, period=config.composite.period))
    composites = composites.rio.write_crs(stack.rio.crs)
    layers = [str(v) for v in composites.data_vars if v != "clear_count"]
    all_periods = [int(p) for p in composites["period"].values]
    periods, skipped = [], sorted(listed_periods - set(all_periods))  # every scene of the period was empty
    for period in skipped:
        log.warning("aoi %s: period %d has no clear pixel in any scene; skipped", aoi_id, period)
    for start in range(0, len(all_periods), job.batch):
        batch = all_periods[start:start + job.batch]
        written = dask.compute(*[
            dask.delayed(_write_period)(composites[layers].sel(period=p).to_dataarray("band").astype("float32"),
                                        out.composite(aoi_id, p), band_names=layers, nodata=np.nan, skip_empty=True)
            for p in batch])
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


def _write_period(raster: xr.DataArray, path: Path, *, band_names: list[str], nodata: float,
                  colormap: dict | None = None, skip_empty: bool = False) -> Path | None:
    """Write one period's raster as a COG where it is computed (on a worker: the pixels never travel to
    the driver; workers see the output folder as they see the inputs). None if `skip_empty` and the
    raster has no valid pixel."""
    if skip_empty and not np.isfinite(raster.values).any():
        return None
    io.write_cog(raster, path, band_names=band_names, nodata=nodata, colormap=colormap)
    return path


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


def read_class_map(out: OutputLayout, aoi_id: str, periods: list[int], *, chunk_size: int,
                   confidence: bool = False) -> xr.DataArray:
    """The written class maps (or confidence maps) as one lazy (period, y, x) array."""
    path = out.confidence if confidence else out.class_map
    rasters = [rioxarray.open_rasterio(path(aoi_id, p), chunks={"x": chunk_size, "y": chunk_size})
               .squeeze("band", drop=True) for p in periods]
    crs = rasters[0].rio.crs
    stacked = xr.concat(rasters, dim=pd.Index(periods, name="period")).drop_vars("spatial_ref", errors="ignore")
    stacked.attrs = {}
    stacked = stacked.rename("confidence" if confidence else "class_map").rio.write_crs(crs)
    return stacked if confidence else stacked.rio.write_nodata(classify.UNCLASSIFIED)


def classify_stage(job: AoiJob, composites: xr.Dataset, layers: list[str], points: gpd.GeoDataFrame) -> dict:
    """Train (or load) the model, assess it, predict and write the class maps (+ confidence), the accuracy
    assessment, the confusion matrix, the model and the validation sample design."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    facts: dict = {}
    predicted, accuracy, model_files = train_and_predict(config, composites, points, layers)
    facts["overall_accuracy"] = accuracy["overall_accuracy"]
    if "spatial_cv" in accuracy:
        facts["spatial_cv_overall_accuracy"] = accuracy["spatial_cv"]["overall_accuracy"]
    periods = [int(p) for p in predicted["period"].values]
    if config.classify.temporal_filter != "none":  # needs every period of a pixel: keep the predictions on the cluster
        (predicted,) = dask.persist(predicted)
        class_map, facts["temporal_filter"] = filter_flicker(config, predicted)
        accuracy["temporal_filter"] = facts["temporal_filter"]
        predicted = predicted.assign(class_map=class_map)
    colours = {c.code: _rgba(c.colour) for c in config.classes}
    for start in range(0, len(periods), job.batch):
        batch = periods[start:start + job.batch]
        tasks = [dask.delayed(_write_period)(predicted["class_map"].sel(period=p), out.class_map(aoi_id, p),
                                             band_names=["class"], nodata=classify.UNCLASSIFIED, colormap=colours)
                 for p in batch]
        if config.classify.confidence:
            tasks += [dask.delayed(_write_period)(predicted["confidence"].sel(period=p), out.confidence(aoi_id, p),
                                                  band_names=["confidence"], nodata=np.nan) for p in batch]
        for path in dask.compute(*tasks):
            io.note_written(path)
    class_map = read_class_map(out, aoi_id, periods, chunk_size=config.ingest.chunk_size)
    facts.update(validation_design(config, class_map, accuracy, out, aoi_id))
    io.write_json(accuracy, out.accuracy(aoi_id))
    io.write_csv(_confusion_table(accuracy, config.classes), out.confusion_matrix(aoi_id))
    if model_files is not None:
        io.write_bytes(model_files[0], out.model(aoi_id))
        io.write_json(model_files[1], out.model(aoi_id).with_suffix(".json"))
    return facts


def change_stage(job: AoiJob, class_map: xr.DataArray) -> dict:
    """Class areas, transitions (consecutive and first -> last), change summary, mining footprint, rings
    and the first-change-year map."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    area_ha = change.pixel_area_ha(class_map)
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


def events_stage(job: AoiJob, class_map: xr.DataArray, accuracy: dict) -> dict:
    """Before/after metrics and BACI effects of each of the AOI's events, and their zones (GeoPackage)."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    area_ha = change.pixel_area_ha(class_map)
    design_based = accuracy.get("design_based")  # a labelled validation sample: map error in the CIs
    error_matrix = np.array(design_based["confusion_matrix"]["counts"]) if design_based else None
    results = [_event_tables(config, event, class_map, area_ha, error_matrix) for _, event in job.events.iterrows()]
    metrics = [r[0] for r in results] or [pd.DataFrame(columns=events.EVENT_METRICS_COLUMNS)]
    baci = [r[1] for r in results] or [pd.DataFrame(columns=events.BACI_COLUMNS)]
    io.write_csv(pd.concat(metrics), out.event_metrics(aoi_id))
    io.write_csv(pd.concat(baci), out.baci(aoi_id))
    if results:
        zones = pd.concat([r[2] for r in results])
        if config.public.enabled:
            zones = exports.generalise_zones(zones, grid_m=config.public.grid_m)
        io.write_gpkg(zones, out.event_zones(aoi_id), layer=f"{aoi_id} event zones")
    return {"baci_includes_map_error": error_matrix is not None, "events": [str(e) for e in job.events["event_id"]]}


def train_and_predict(config: PipelineConfig, composites: xr.Dataset, labels: gpd.GeoDataFrame,
              layers: list[str]) -> tuple[xr.Dataset, dict, tuple[bytes, dict] | None]:
    """Train (or load) the model, assess it, predict. Returns the lazy class map and confidence, the
    accuracy document and the model to save (skops bytes, metadata) or None."""
    settings = config.classify
    features = classify.feature_stack(composites, layers)
    if settings.ignore_classes:
        labels = labels[~labels["class_code"].isin(settings.ignore_classes)]
    if settings.merge_classes:
        labels = labels.assign(class_code=labels["class_code"].replace(settings.merge_classes))
    points = labels
    n_polygons = None
    if len(labels) and labels.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        n_polygons = len(labels)
        points = classify.polygon_pixels(labels, features, max_per_polygon=settings.max_pixels_per_polygon,
                                         seed=settings.random_state)
    try:
        samples, table = classify.training_samples(features, points)
    except InputError as err:
        raise InputError(f"{settings.training}: {err} (classify.training)") from None
    X = samples.values
    usable = np.isfinite(X).all(axis=1)
    y = table["class_code"].to_numpy()
    unknown = sorted(set(y) - {c.code for c in config.classes})
    if unknown:
        raise InputError(f"{settings.training}: class codes {unknown} are not in the config's classes "
                         "(add them to `classes` or map them with classify.merge_classes)")
    X, y, xy = X[usable], y[usable], table[["x", "y"]].to_numpy()[usable]
    if settings.model_path is None and not len(y):
        raise InputError(f"{settings.training}: none of the {len(labels)} labels lies on a clear pixel inside "
                         "the AOI; check the labels' CRS and location (classify.training)")
    model_files = None
    if settings.model_path is not None:
        content, metadata = io.read_model_file(settings.model_path)
        models.check_features(metadata, layers, source=str(settings.model_path))
        model = models.load_model(content, trusted=settings.trusted_types, source=str(settings.model_path))
        accuracy = classify.accuracy_assessment(y, model.predict(X), config.classes)
        accuracy.update(method=f"model loaded from {settings.model_path}; assessed on all of this run's "
                               "labelled samples (none were used to train it here)",
                        model=metadata)
    else:
        params = dict(settings.model_params)
        if settings.model == "random_forest":
            params.setdefault("n_estimators", settings.n_estimators)
            params.setdefault("max_depth", settings.max_depth)
        estimator = models.make_classifier(settings.model, params, random_state=settings.random_state)
        model, X_test, y_test = classify.train_classifier(estimator, X, y, test_fraction=settings.test_fraction,
                                                          random_state=settings.random_state)
        accuracy = classify.accuracy_assessment(y_test, model.predict(X_test), config.classes)
        accuracy.update(
            method="hold-out of the labelled samples (stratified); labels are not a probability sample, so "
                   "these are sample accuracies, not design-based map accuracies",
            test_fraction=settings.test_fraction, n_train=int(len(y) - len(y_test)),
            model={"type": settings.model, "estimator": type(model).__name__,
                   **{k: v for k, v in params.items() if isinstance(v, (int, float, str, bool, type(None)))},
                   "random_state": settings.random_state})
        if settings.cv_folds:
            blocks = classify.spatial_blocks(xy[:, 0], xy[:, 1], block_size=settings.cv_block_size_m)
            accuracy["spatial_cv"] = classify.spatial_cross_validation(
                estimator, X, y, blocks, n_folds=settings.cv_folds, classes=config.classes,
                random_state=settings.random_state)
            accuracy["spatial_cv"]["block_size_m"] = settings.cv_block_size_m
        if settings.save_model:
            metadata = models.model_metadata(model, kind=settings.model, features=layers,
                                             class_codes=[c.code for c in config.classes], X=X, y=y)
            model_files = (models.dump_model(model), metadata)
    accuracy.update(
        n_labels=int(len(table) + table.attrs["dropped_outside"] + table.attrs["dropped_period"]),
        dropped_outside_aoi=table.attrs["dropped_outside"],
        dropped_no_period=table.attrs["dropped_period"],
        dropped_nodata_features=int((~usable).sum()),
        features=layers,
    )
    if n_polygons is not None:
        accuracy.update(n_polygons=n_polygons, polygons_without_pixels=points.attrs["n_polygons_empty"],
                        max_pixels_per_polygon=settings.max_pixels_per_polygon)
    return classify.predict_classes(features, model), accuracy, model_files


def filter_flicker(config: PipelineConfig, predicted: xr.Dataset) -> tuple[xr.DataArray, dict]:
    """The class maps with flicker removed, and the report for the manifest (pixel-periods changed)."""
    settings = config.classify
    class_map = predicted["class_map"]
    filtered = temporal.remove_flicker(class_map, predicted["confidence"], min_confidence=settings.flicker_min_confidence,
                                       max_gap=settings.flicker_max_gap, end_confidence=settings.flicker_end_confidence,
                                       nodata=classify.UNCLASSIFIED)
    changed = int((filtered != class_map).sum())
    report = {"method": settings.temporal_filter, "min_confidence": settings.flicker_min_confidence,
              "max_gap": settings.flicker_max_gap, "end_confidence": settings.flicker_end_confidence,
              "pixel_periods_changed": changed,
              "share_changed": round(changed / max(int((class_map != classify.UNCLASSIFIED).sum()), 1), 6)}
    return filtered.rio.write_crs(class_map.rio.crs).rio.write_nodata(classify.UNCLASSIFIED), report


def validation_design(config: PipelineConfig, class_map: xr.DataArray, accuracy: dict, out: OutputLayout,
                aoi_id: str) -> dict:
    """Write the stratified random sample design; with a labelled sample, the Olofsson et al. (2014)
    error-adjusted areas (metrics/area_estimates.csv) and design-based accuracies (into `accuracy`).
    The same for the change map between the first and last period where transitions are configured."""
    settings = config.classify
    periods = [int(p) for p in class_map["period"].values]
    period = settings.sample_period if settings.sample_period is not None else periods[-1]
    if period not in periods:
        raise InputError(f"classify.sample_period {period} is not a period of this run ({periods})")
    strata = class_map.sel(period=period)
    names = {c.code: c.name for c in config.classes}
    design, pixels = _sample_design(settings, strata, names)
    design["period"] = period
    io.write_gpkg(design, out.sample_design(aoi_id), layer=f"{aoi_id} validation sample {period}")
    report = {"sample_design": {"period": period, "n_samples": int(len(design)),
                                "per_stratum": dict(zip(map(str, names), design.groupby("map_code").size()
                                                        .reindex(list(names), fill_value=0).tolist()))}}
    if settings.change_transitions and len(periods) > 1:
        report["change_sample_design"] = _change_validation(config, class_map, out, aoi_id)
    if settings.validation_sample is None:
        return report
    counts = _labelled_counts(settings.validation_sample, settings, strata, list(names), merge=True)
    table = accuracies.area_estimate_table(counts, pixels, codes=list(names), names=list(names.values()),
                                           pixel_area_ha=change.pixel_area_ha(class_map))
    io.write_csv(table, out.area_estimates(aoi_id))
    estimate = accuracies.stratified_area_estimate(counts, pixels, stratum_pixels=pixels)
    accuracy["design_based"] = {
        "method": "Olofsson et al. (2014) stratified estimators; strata = map classes of "
                  f"{period}; sample {settings.validation_sample}",
        "n_samples": int(counts.sum()),
        "overall_accuracy": round(estimate["overall_accuracy"], 4),
        "se_overall_accuracy": round(estimate["se_overall"], 4),
        "confusion_matrix": {"labels": list(names), "rows": "map", "columns": "reference",
                             "counts": counts.tolist()},
    }
    report["design_based_overall_accuracy"] = accuracy["design_based"]["overall_accuracy"]
    return report


def _sample_design(settings, strata: xr.DataArray, names: dict[int, str]) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """A stratified random sample of a (y, x) strata map (sample size for the target SE, Olofsson eq. 13),
    and the pixels per stratum."""
    flat = np.asarray(strata.values)
    codes = list(names)
    pixels = np.array([(flat == code).sum() for code in codes])
    weights = pixels / max(pixels.sum(), 1)
    n_total = accuracies.sample_size(weights, [settings.sample_expected_users_accuracy] * len(codes),
                                     target_se_overall=settings.sample_target_se)
    allocation = accuracies.allocate_sample(n_total, pixels, min_per_stratum=settings.sample_min_per_stratum)
    indices = accuracies.stratified_random_sample(flat, dict(zip(codes, allocation.tolist())),
                                                  seed=settings.random_state)
    return accuracies.sample_points(strata, indices, names=names), pixels


def _labelled_counts(path: Path, settings, strata: xr.DataArray, codes: list[int], *, merge: bool) -> np.ndarray:
    """The error matrix (map x reference) of a labelled sample drawn from `strata`."""
    sample = io.read_validation_sample(path, reference_field=settings.reference_field)
    if merge and settings.merge_classes:
        sample["reference_code"] = sample["reference_code"].replace(settings.merge_classes)
    points = sample.to_crs(strata.rio.crs)
    here = strata.sel(x=xr.DataArray(points.geometry.x.to_numpy(), dims="s"),
                      y=xr.DataArray(points.geometry.y.to_numpy(), dims="s"), method="nearest").values
    if not np.array_equal(here, sample["map_code"].to_numpy()):
        raise InputError(f"{path}: the samples' map_code differ from this run's map at "
                         f"{int((here != sample['map_code'].to_numpy()).sum())} points; the sample must come "
                         "from the same map (classify.sample_period, classify.change_transitions)")
    return accuracies.error_matrix(sample["map_code"].to_numpy(), sample["reference_code"].to_numpy(), codes)


def _change_validation(config: PipelineConfig, class_map: xr.DataArray, out: OutputLayout, aoi_id: str) -> dict:
    """The change map first -> last period (0 stable, k = k-th transition of interest, last = other
    change): its sample design and, once labelled, its error-adjusted areas."""
    settings = config.classify
    first, last = (int(p) for p in class_map["period"].values[[0, -1]])
    transitions = [tuple(t) for t in settings.change_transitions]
    strata = class_map.sel(period=last).copy(data=accuracies.change_strata(
        class_map.sel(period=first).values, class_map.sel(period=last).values, transitions))
    class_names = {c.code: c.name for c in config.classes}
    names = {0: "stable", **{k: f"{class_names.get(a, a)} -> {class_names.get(b, b)}"
                             for k, (a, b) in enumerate(transitions, start=1)},
             len(transitions) + 1: "other change"}
    design, pixels = _sample_design(settings, strata, names)
    design["period_from"], design["period_to"] = first, last
    io.write_gpkg(design, out.change_sample_design(aoi_id), layer=f"{aoi_id} change validation sample {first}-{last}")
    report = {"periods": [first, last], "n_samples": int(len(design))}
    if settings.change_validation_sample is not None:
        counts = _labelled_counts(settings.change_validation_sample, settings, strata, list(names), merge=False)
        table = accuracies.area_estimate_table(counts, pixels, codes=list(names), names=list(names.values()),
                                               pixel_area_ha=change.pixel_area_ha(class_map))
        io.write_csv(table, out.change_area_estimates(aoi_id))
        report["labelled"] = int(counts.sum())
    return report


def _confusion_table(accuracy: dict, classes) -> pd.DataFrame:
    """metrics/confusion_matrix.csv: one block of rows per assessment (hold-out, spatial CV, design-based),
    one row per reference class, one column of counts per map class."""
    names = {c.code: c.name for c in classes}
    rows = []
    for assessment, document in (("holdout", accuracy), ("spatial_cv", accuracy.get("spatial_cv")),
                                 ("design_based", accuracy.get("design_based"))):
        if not document:
            continue
        matrix = document["confusion_matrix"]
        counts = np.asarray(matrix["counts"])
        if matrix["rows"] == "map":
            counts = counts.T
        for code, row in zip(matrix["labels"], counts):
            rows.append({"assessment": assessment, "reference_code": code, "reference_class": names.get(code),
                         **{f"map_{c}": int(v) for c, v in zip(matrix["labels"], row)}})
    return pd.DataFrame(rows)



def _event_tables(config: PipelineConfig, event: pd.Series, class_map: xr.DataArray, area_ha: float,
                  error_matrix: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    """Before/after metrics, BACI effects and the zones (polygons) of one event."""
    settings = config.events
    masks, zones = events.zone_masks(event, class_map, radius_m=settings.zone_radius_m,
                                     control_inner_m=settings.control_inner_m,
                                     control_outer_m=settings.control_outer_m,
                                     mining_classes=config.change.mining_classes)
    counts = {zone: (mask if isinstance(mask, str) else events.zone_pixel_counts(class_map, mask))
              for zone, mask in masks.items()}
    (counts,) = dask.compute(counts)
    windows = dict(years_before=settings.years_before, years_after=settings.years_after)
    metrics = events.event_metrics_table(event, counts, config.classes, pixel_area_ha=area_ha, **windows)
    baci = events.baci_effects(event, class_map, masks, config.classes, pixel_area_ha=area_ha,
                               block_size_m=settings.block_size_m, n_bootstrap=settings.n_bootstrap,
                               seed=settings.random_state, error_matrix=error_matrix, **windows)
    drawn = {zone: polygon for zone, polygon in zones.items() if not isinstance(polygon, str)}
    zones_frame = gpd.GeoDataFrame(
        {"aoi_id": [event.get("aoi_id")] * len(drawn), "event_id": [event["event_id"]] * len(drawn),
         "zone": list(drawn)},
        geometry=[polygon.iloc[0] for polygon in drawn.values()], crs=class_map.rio.crs)
    return metrics, baci, zones_frame




def _rgba(colour: str) -> tuple[int, int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)
