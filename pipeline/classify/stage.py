"""The classify stage of one AOI: train (or load) the model, assess it, predict and write the class maps.

    classify_stage    composites + labels -> model, accuracy, class maps       -> classes/, metrics/, validation/
    clean_class_maps  class maps -> gap-filled, minimum mapping unit applied   -> classes_cleaned/

Also the validation sample designs (Olofsson et al. 2014) and, once labelled, the error-adjusted areas; they
are drawn from the cleaned maps, the maps whose areas the run reports. Downstream stages read the written
class maps back lazily (`read_class_map`, `cleaned=True` for the cleaned ones).
"""

from __future__ import annotations

import importlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import dask.array
import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from pipeline import classify, io
from pipeline.classify import cleaning, models, reference, sampling, temporal
from pipeline.classify.labelling import labelling_style
from pipeline.classify.predict import valid_samples
from pipeline.composite.periods import Period, period_coords, periods_of
from pipeline.composite.phenology import cyclic_sub_periods, sub_period_names
from pipeline.composite.stage import (metric_variables, period_tags, seasonal_days, sub_period_kind,
                                      sub_period_variables)
from pipeline.config import PipelineConfig
from pipeline.errors import InputError
from pipeline.ingest.grid import pixel_area_ha
from pipeline.job import AoiJob, compute_with_progress, raster_tasks
from pipeline.results import OutputLayout

__all__ = ["classify_stage", "read_class_map", "train_and_predict", "filter_flicker", "clean_class_maps",
           "validation_design", "change_of_interest", "change_names"]

log = logging.getLogger(__name__)


def read_class_map(out: OutputLayout, aoi_id: str, periods: list[Period], *, chunk_size: int,
                   confidence: bool = False, cleaned: bool = False) -> xr.DataArray:
    """The written class maps (the cleaned ones with `cleaned`, or the confidence maps) as one lazy
    (period, y, x) array; the period dimension carries `period_start` and `period_end`."""
    path = out.confidence if confidence else out.cleaned_class_map if cleaned else out.class_map
    rasters = [rioxarray.open_rasterio(path(aoi_id, p.id), chunks={"x": chunk_size, "y": chunk_size}, lock=False)
               .squeeze("band", drop=True) for p in periods]  # no lock: the blocks are read in parallel
    crs = rasters[0].rio.crs
    stacked = xr.concat(rasters, dim="period").assign_coords(period_coords(periods)).drop_vars(
        "spatial_ref", errors="ignore")
    stacked.attrs = {}
    stacked = stacked.rename("confidence" if confidence else "class_map").rio.write_crs(crs)
    return stacked if confidence else stacked.rio.write_nodata(classify.UNCLASSIFIED)


def classify_stage(job: AoiJob, composites: xr.Dataset, layers: dict[str, list[str]] | list[str],
                   points: gpd.GeoDataFrame) -> dict:
    """Train (or load) the model, assess it, predict and write the class maps (+ confidence), the accuracy
    assessment, the confusion matrix, the feature importance, the model and the validation sample design.
    `layers`: the composite stage's feature groups (`composite.stage.feature_groups`), or layer names."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    facts: dict = {}
    predicted, accuracy, model_files = train_and_predict(config, composites, points, layers)
    facts["overall_accuracy"] = accuracy["overall_accuracy"]
    if "spatial_cv" in accuracy:
        facts["spatial_cv_overall_accuracy"] = accuracy["spatial_cv"]["overall_accuracy"]
    periods = periods_of(composites)
    if config.classify.temporal_filter != "none":  # needs every period of a pixel: keep the predictions on the cluster
        (predicted,) = dask.persist(predicted)
        class_map, facts["temporal_filter"] = filter_flicker(config, predicted)
        accuracy["temporal_filter"] = facts["temporal_filter"]
        predicted = predicted.assign(class_map=class_map)
    colours = {c.code: _rgba(c.colour) for c in config.classes}
    per_period = 2 if config.classify.confidence else 1
    total = per_period * len(periods)
    job.report("classify", 0, total, "maps")
    # features whose blocks hold every period (sub-period gaps filled from the neighbouring periods): predicted
    # for all at once, as a batch of some periods would fill every period's gaps again
    chosen = run_features(config, layers)
    at_once = len(periods) if chosen.sub_periods and "neighbours" in chosen.gap_fill else job.batch
    for start in range(0, len(periods), at_once):
        batch = periods[start:start + at_once]
        rasters = [predicted["class_map"].sel(period=p.id) for p in batch]
        arguments = [((out.class_map(aoi_id, p.id),), dict(band_names=["class"], nodata=classify.UNCLASSIFIED,
                                                            colormap=colours, tags=period_tags(p))) for p in batch]
        if config.classify.confidence:
            rasters += [predicted["confidence"].sel(period=p.id) for p in batch]
            arguments += [((out.confidence(aoi_id, p.id),), dict(band_names=["confidence"], nodata=np.nan,
                                                                 tags=period_tags(p))) for p in batch]
        done = per_period * start
        tasks = raster_tasks(io.write_period_cog, rasters, arguments)  # the model runs once per block
        for path in compute_with_progress(tasks, lambda n, done=done: job.report("classify", done + n, total, "maps")):
            io.note_written(path)
    class_map = read_class_map(out, aoi_id, periods, chunk_size=config.ingest.chunk_size)
    facts["cleaning"] = accuracy["cleaning"] = _write_cleaned(job, class_map, periods, colours)
    cleaned = read_class_map(out, aoi_id, periods, chunk_size=config.ingest.chunk_size, cleaned=True)
    facts.update(validation_design(config, cleaned, accuracy, out, aoi_id))
    io.write_json(accuracy, out.accuracy(aoi_id))
    io.write_csv(_confusion_table(accuracy, config.classes), out.confusion_matrix(aoi_id))
    importance = (accuracy.get("spatial_cv") or {}).get("importance")
    if importance:
        io.write_csv(pd.DataFrame(importance["features"]), out.feature_importance(aoi_id))
    if model_files is not None:
        io.write_bytes(model_files[0], out.model(aoi_id))
        io.write_json(model_files[1], out.model(aoi_id).with_suffix(".json"))
    return facts


def run_features(config: PipelineConfig, layers: dict[str, list[str]] | list[str]) -> classify.FeatureSet:
    """The features classify.features chooses among the composite stage's layer groups (or, given a list
    of layer names, exactly those)."""
    settings = config.classify.features
    if not isinstance(layers, dict):
        return classify.feature_set(layers)
    within = seasonal_days(config.composite)
    kind = sub_period_kind(config)
    bands = [b for b in layers["composite"] if b not in config.composite.indices]
    sub_periods = ({v: sub_period_names(v, kind, within=within) for v in sub_period_variables(config, bands)}
                   if kind != "none" else {})
    return classify.feature_set(layers, composite=settings.composite, metric_variables=metric_variables(config, bands),
                                sub_periods=sub_periods, gap_fill=settings.gap_fill,
                                cyclic=kind == "none" or cyclic_sub_periods(kind, within))


def _checked_settings(config: PipelineConfig) -> dict:
    """The feature settings a saved model must share with a run (they change values, not names)."""
    features = config.classify.features
    return {"gap_fill": list(features.gap_fill), "season": features.season and features.season.model_dump(),
            "method": config.composite.method}


def train_and_predict(config: PipelineConfig, composites: xr.Dataset, labels: gpd.GeoDataFrame | None,
                      layers: dict[str, list[str]] | list[str]) -> tuple[xr.Dataset, dict, tuple[bytes, dict] | None]:
    """Train (or load) the model, assess it, predict. Returns the lazy class map and confidence, the
    accuracy document and the model to save (skops bytes, metadata) or None. The labels are points or
    polygons, or (`labels` None) pixels sampled from the reference map of `classify.training`."""
    settings = config.classify
    chosen = run_features(config, layers)
    features = classify.classification_features(composites, chosen)
    names, required = chosen.names, chosen.required
    if settings.reference_map is not None:
        X, y, xy, about = _map_samples(config, features, required)
        kind = f"pixels sampled from the reference map {settings.reference_map.map.name} ({about['training']['year']})"
    else:
        X, y, xy, about = _label_samples(config, composites, chosen, features, labels)
        kind = "labelled samples"
    model_files = None
    if settings.model_path is not None:
        content, metadata = models.read_model_file(settings.model_path)
        models.check_features(metadata, names, source=str(settings.model_path), settings=_checked_settings(config))
        model = models.load_model(content, trusted=settings.trusted_types, source=str(settings.model_path))
        _check_missing_values(model, X, source=str(settings.model_path))
        accuracy = classify.accuracy_assessment(y, model.predict(X), config.classes)
        accuracy.update(method=f"model loaded from {settings.model_path}; assessed on all of this run's "
                               f"{kind} (none were used to train it here)",
                        model=metadata)
    else:
        params = dict(settings.model_params)
        if settings.model == "random_forest":
            params.setdefault("n_estimators", settings.n_estimators)
            params.setdefault("max_depth", settings.max_depth)
        estimator = models.make_classifier(settings.model, params, random_state=settings.random_state,
                                           allow_import=settings.allow_import)
        _check_missing_values(estimator, X, source=f"classify.model {settings.model!r}")
        # the model of the map grows while the spatial CV runs (the trees grow without the GIL), and the
        # model file's library is imported meanwhile
        with ThreadPoolExecutor(2) as pool:
            held_out = pool.submit(classify.train_classifier, estimator, X, y, test_fraction=settings.test_fraction,
                                   random_state=settings.random_state)
            if settings.save_model:
                pool.submit(importlib.import_module, "skops.io")
            cv, cv_error = None, None
            if settings.cv_folds:
                try:
                    blocks = classify.spatial_blocks(xy[:, 0], xy[:, 1], block_size=settings.cv_block_size_m)
                    cv = classify.spatial_cross_validation(
                        estimator, X, y, blocks, n_folds=settings.cv_folds, classes=config.classes,
                        random_state=settings.random_state, feature_names=names, feature_groups=chosen.groups(),
                        importance_repeats=settings.importance_repeats)
                except Exception as err:  # noqa: BLE001 - raised after the hold-out's own error, as before
                    cv_error = err
            model, X_test, y_test = held_out.result()
        if cv_error is not None:
            raise cv_error
        accuracy = classify.accuracy_assessment(y_test, model.predict(X_test), config.classes)
        method = (f"hold-out of the {kind} (stratified); labels are not a probability sample, so these are "
                  "sample accuracies, not design-based map accuracies")
        if settings.reference_map is not None:
            method += ("; with labels from a map they measure agreement with that map (consistency), not "
                       "accuracy: the map's own errors are not counted")
        accuracy.update(
            method=method, test_fraction=settings.test_fraction, n_train=int(len(y) - len(y_test)),
            model={"type": settings.model, "estimator": type(model).__name__,
                   **{k: v for k, v in params.items() if isinstance(v, (int, float, str, bool, type(None)))},
                   "random_state": settings.random_state})
        if cv is not None:
            accuracy["spatial_cv"] = {**cv, "block_size_m": settings.cv_block_size_m}
        if settings.save_model:
            metadata = models.model_metadata(model, kind=settings.model, features=names,
                                             class_codes=[c.code for c in config.classes], X=X, y=y,
                                             feature_settings={**settings.features.model_dump(mode="json"),
                                                               **_checked_settings(config)})
            model_files = (models.dump_model(model), metadata)
    accuracy.update(about, features=names, feature_settings=settings.features.model_dump(mode="json"))
    return classify.predict_classes(features, model, required=required), accuracy, model_files


def _label_samples(config: PipelineConfig, composites: xr.Dataset, chosen: classify.FeatureSet,
                   features: xr.DataArray, labels: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Training samples at labelled points (or polygons' pixels): X, y, xy and what the accuracy document
    says about them (drops, and the gaps of sub-period features)."""
    settings = config.classify
    required = chosen.required
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
        table, at, period = classify.label_positions(features, points)
    except InputError as err:
        raise InputError(f"{settings.training}: {err} (classify.training)") from None
    # every period of the labelled pixels, read once; their features computed there, as for the map
    picked = composites[[n for n in chosen.names if n in composites]].sel(**at, method="nearest").compute()
    X = classify.classification_features(picked, chosen).isel(period=period).transpose("sample", "feature").values
    usable = valid_samples(X, required)
    y = table["class_code"].to_numpy()
    unknown = sorted(set(y) - {c.code for c in config.classes})
    if unknown:
        raise InputError(f"{settings.training}: class codes {unknown} are not in the config's classes "
                         "(add them to `classes` or map them with classify.merge_classes)")
    gaps = _gap_report(picked, period, chosen, X, usable) if not required.all() else None
    X, y, xy = X[usable], y[usable], table[["x", "y"]].to_numpy()[usable]
    if settings.model_path is None and not len(y):
        raise InputError(f"{settings.training}: none of the {len(labels)} labels lies on a clear pixel inside "
                         "the AOI; check the labels' CRS and location (classify.training)")
    about = {"n_labels": int(len(table) + table.attrs["dropped_outside"] + table.attrs["dropped_period"]),
             "dropped_outside_aoi": table.attrs["dropped_outside"], "dropped_no_period": table.attrs["dropped_period"],
             "dropped_nodata_features": int((~usable).sum())}
    if gaps is not None:
        about["gaps"] = gaps
    if n_polygons is not None:
        about.update(n_polygons=n_polygons, polygons_without_pixels=points.attrs["n_polygons_empty"],
                     max_pixels_per_polygon=settings.max_pixels_per_polygon)
    return X, y, xy, about


def _check_missing_values(model, X: np.ndarray, *, source: str) -> None:
    """A model that cannot take NaN must not meet the gaps left in the features."""
    missing = int((~np.isfinite(X)).any(axis=1).sum())
    if missing and not models.accepts_missing_values(model):
        raise InputError(f"{source}: {type(model).__name__} does not take missing values, but {missing} training "
                         "samples have gaps in sub-period composites; add interpolate to classify.features.gap_fill "
                         "or use a model that takes them (random_forest, lightgbm)")


def _gap_report(picked: xr.Dataset, period: xr.DataArray, chosen: classify.FeatureSet, X: np.ndarray,
                usable: np.ndarray) -> dict:
    """How many of the training samples had gaps (sub-periods without a clear scene: NaN in `picked`, the
    composites of the samples' pixels, at the samples' `period`), and how many still have some after
    classify.features.gap_fill (in `X`, the samples' features), left to the model as missing values."""
    sub_names = [n for n, tolerant in zip(chosen.names, chosen.gap_tolerant) if tolerant]
    raw = classify.feature_stack(picked, sub_names).isel(period=period).transpose("sample", "feature")
    before = ~np.isfinite(np.asarray(raw.values)[usable])
    after = ~np.isfinite(X[usable][:, ~chosen.required])
    return {"sub_period_features": len(sub_names), "samples": int(usable.sum()),
            "samples_with_gaps": int(before.any(axis=1).sum()), "gap_values": int(before.sum()),
            "gap_fill": list(chosen.gap_fill),
            "samples_with_gaps_left": int(after.any(axis=1).sum()), "gap_values_left": int(after.sum()),
            "handling": ("gaps left after gap_fill go to the model as missing values (no sample or pixel is "
                         "dropped for a gap)")}


def _map_samples(config: PipelineConfig, features: xr.DataArray,
                 required: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Training samples drawn from the reference map (`classify.reference.map_training_samples`): X, y, xy
    and the accuracy document's `training` record (map, year, per-class counts, classes the map lacks)."""
    settings = config.classify
    X, y, xy, record = reference.map_training_samples(features, settings.reference_map, seed=settings.random_state,
                                                      classes=[c.code for c in config.classes], required=required)
    names = {c.code: c.name for c in config.classes}
    record["missing_classes"] = {str(code): {"class_name": names.get(code), "reason": reason}
                                 for code, reason in record["missing_classes"].items()}
    if record["missing_classes"]:
        log.warning("%s: the reference map gives no sample of class(es) %s; those classes are not mapped (label "
                    "them with points, or translate a map code to them)", settings.reference_map.map,
                    ", ".join(f"{c} {v['class_name']} ({v['reason']})" for c, v in record["missing_classes"].items()))
    if settings.model_path is None and len(set(y.tolist())) < 2:
        raise InputError(f"{settings.reference_map.map} (classify.training.map): the map gives samples of "
                         f"{len(set(y.tolist()))} class(es) only (per class: "
                         f"{ {k: v['sampled'] for k, v in record['per_class'].items()} }); check "
                         "classify.training.classes, year and edge_px")
    return X, y, xy, {"training": record, "n_labels": len(y), "dropped_nodata_features": 0}


def filter_flicker(config: PipelineConfig, predicted: xr.Dataset) -> tuple[xr.DataArray, dict]:
    """The class maps with flicker removed, and the report for the manifest (pixel-periods changed)."""
    settings = config.classify
    class_map = predicted["class_map"]
    filtered = temporal.remove_flicker(class_map, predicted["confidence"], min_confidence=settings.flicker_min_confidence,
                                       max_gap=settings.flicker_max_gap, end_confidence=settings.flicker_end_confidence,
                                       nodata=classify.UNCLASSIFIED)
    (filtered,) = dask.persist(filtered)  # counted here, then written: the filter runs once
    changed = int((filtered != class_map).sum())
    report = {"method": settings.temporal_filter, "min_confidence": settings.flicker_min_confidence,
              "max_gap": settings.flicker_max_gap, "end_confidence": settings.flicker_end_confidence,
              "pixel_periods_changed": changed,
              "share_changed": round(changed / max(int((class_map != classify.UNCLASSIFIED).sum()), 1), 6)}
    return filtered.rio.write_crs(class_map.rio.crs).rio.write_nodata(classify.UNCLASSIFIED), report


def clean_class_maps(config: PipelineConfig, class_map: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The class maps gap-filled (classify.gap_fill) with the minimum mapping unit applied per period
    (classify.mmu_ha, mmu_connectivity), and the cleaning flags (`cleaning.cleaning_flags`); both lazy
    (period, y, x) uint8, 255 = nodata."""
    settings = config.classify
    filled = cleaning.gap_fill(class_map, settings.gap_fill, nodata=classify.UNCLASSIFIED)
    cleaned = cleaning.sieve(filled, min_pixels=cleaning.mmu_pixels(settings.mmu_ha, class_map),
                             connectivity=settings.mmu_connectivity, nodata=classify.UNCLASSIFIED)
    return cleaned, cleaning.cleaning_flags(class_map, filled, cleaned, nodata=classify.UNCLASSIFIED)


def _write_cleaned(job: AoiJob, class_map: xr.DataArray, periods: list[Period], colours: dict) -> dict:
    """Write classes_cleaned/<period>.tif and <period>_cleaning.tif; returns what the manifest records."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    settings = config.classify
    (class_map,) = dask.persist(class_map)  # every period of a pixel is needed to fill it: read the maps once
    # cleaned once for all periods (uint8, as small as the maps), not once per batch of periods written
    cleaned, flags = dask.persist(*clean_class_maps(config, class_map))
    flag_colours = {0: (240, 240, 240, 255), cleaning.FILLED: (255, 127, 0, 255), cleaning.SIEVED: (106, 61, 154, 255),
                    cleaning.FILLED | cleaning.SIEVED: (227, 26, 28, 255)}
    counts = []
    for start in range(0, len(periods), job.batch):
        batch = periods[start:start + job.batch]
        tasks = [dask.delayed(io.write_period_cog)(cleaned.sel(period=p.id), out.cleaned_class_map(aoi_id, p.id),
                                                   band_names=["class"], nodata=classify.UNCLASSIFIED,
                                                   colormap=colours, tags=period_tags(p)) for p in batch]
        tasks += [dask.delayed(io.write_period_cog)(flags.sel(period=p.id), out.cleaning(aoi_id, p.id),
                                                    band_names=["cleaning"], nodata=cleaning.CLEANING_NODATA,
                                                    colormap=flag_colours, tags={**period_tags(p), **_FLAG_TAGS})
                  for p in batch]
        tally = [dask.array.bincount(flags.sel(period=p.id).data.ravel().astype("int64"), minlength=256)
                 for p in batch] if dask.is_dask_collection(flags) else [
            np.bincount(flags.sel(period=p.id).values.ravel().astype("int64"), minlength=256) for p in batch]
        *paths, tally = dask.compute(*tasks, tally)
        for path in paths:
            io.note_written(path)
        counts += [np.asarray(t) for t in tally]
    counts = np.stack(counts)
    mapped = counts[:, [0, cleaning.FILLED, cleaning.SIEVED, cleaning.FILLED | cleaning.SIEVED]].sum(axis=1)
    filled = counts[:, cleaning.FILLED] + counts[:, cleaning.FILLED | cleaning.SIEVED]
    sieved = counts[:, cleaning.SIEVED] + counts[:, cleaning.FILLED | cleaning.SIEVED]
    return {"gap_fill": settings.gap_fill, "mmu_ha": settings.mmu_ha,
            "mmu_pixels": cleaning.mmu_pixels(settings.mmu_ha, class_map),
            "mmu_connectivity": settings.mmu_connectivity,
            "pixel_periods_filled": int(filled.sum()), "pixel_periods_sieved": int(sieved.sum()),
            "share_sieved": round(float(sieved.sum() / max(mapped.sum(), 1)), 6)}


_FLAG_TAGS = {"VALUES": f"0 = observed; {cleaning.FILLED} = gap-filled; {cleaning.SIEVED} = observed, class changed by "
                        f"the minimum mapping unit; {cleaning.FILLED | cleaning.SIEVED} = gap-filled, then changed by "
                        f"it; {cleaning.CLEANING_NODATA} = no class"}


def change_of_interest(config: PipelineConfig, class_from: xr.DataArray, class_to: xr.DataArray) -> xr.DataArray:
    """(y, x) uint8 change map between two (y, x) class maps: 0 stable, k = the k-th of
    classify.change_transitions, then any other change; 255 where either is nodata; the minimum mapping
    unit applied (`cleaning.sieve_change_map`). Lazy stays lazy. The change stage writes it, and the
    change sample design is drawn from it."""
    settings = config.classify
    transitions = [tuple(t) for t in settings.change_transitions]
    strata = xr.apply_ufunc(sampling.change_strata, class_from, class_to, kwargs={"transitions": transitions},
                            dask="parallelized", output_dtypes=[np.uint8])
    strata = strata.rio.write_crs(class_from.rio.crs).rio.write_nodata(classify.UNCLASSIFIED)
    return cleaning.sieve_change_map(strata, min_pixels=cleaning.mmu_pixels(settings.mmu_ha, class_from),
                                     connectivity=settings.mmu_connectivity, unchanged=0,
                                     nodata=classify.UNCLASSIFIED).rename("change")


def change_names(config: PipelineConfig) -> dict[int, str]:
    """The values of a `change_of_interest` map and their names."""
    transitions = [tuple(t) for t in config.classify.change_transitions]
    class_names = {c.code: c.name for c in config.classes}
    return {0: "stable", **{k: f"{class_names.get(a, a)} -> {class_names.get(b, b)}"
                            for k, (a, b) in enumerate(transitions, start=1)},
            len(transitions) + 1: "other change" if transitions else "changed"}


def validation_design(config: PipelineConfig, class_map: xr.DataArray, accuracy: dict, out: OutputLayout,
                aoi_id: str) -> dict:
    """Write the stratified random sample design; with a labelled sample, the Olofsson et al. (2014)
    error-adjusted areas (metrics/area_estimates.csv) and design-based accuracies (into `accuracy`).
    The same for the change map between the first and last period where transitions are configured."""
    settings = config.classify
    periods = [str(p) for p in class_map["period"].values]
    period = str(settings.sample_period) if settings.sample_period is not None else periods[-1]
    if period not in periods:
        raise InputError(f"classify.sample_period {period!r} is not a period of this run ({', '.join(periods)})")
    strata = class_map.sel(period=period)
    names = {c.code: c.name for c in config.classes}
    design, pixels = _sample_design(settings, strata, names)
    design["period"] = period
    io.write_gpkg(design, out.sample_design(aoi_id), layer=f"{aoi_id} validation sample {period}",
                  qgis_style=labelling_style(names))
    report = {"sample_design": {"period": period, "n_samples": int(len(design)),
                                "per_stratum": dict(zip(map(str, names), design.groupby("map_code").size()
                                                        .reindex(list(names), fill_value=0).tolist()))}}
    if settings.change_transitions and len(periods) > 1:
        report["change_sample_design"] = _change_validation(config, class_map, out, aoi_id)
    if settings.validation_sample is None:
        return report
    counts = _labelled_counts(settings.validation_sample, settings, strata, list(names), merge=True)
    table = sampling.area_estimate_table(counts, pixels, codes=list(names), names=list(names.values()),
                                           pixel_area_ha=pixel_area_ha(class_map))
    io.write_csv(table, out.area_estimates(aoi_id))
    estimate = sampling.stratified_area_estimate(counts, pixels, stratum_pixels=pixels)
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
    n_total = sampling.sample_size(weights, [settings.sample_expected_users_accuracy] * len(codes),
                                     target_se_overall=settings.sample_target_se)
    allocation = sampling.allocate_sample(n_total, pixels, min_per_stratum=settings.sample_min_per_stratum)
    indices = sampling.stratified_random_sample(flat, dict(zip(codes, allocation.tolist())),
                                                  seed=settings.random_state)
    return sampling.sample_points(strata, indices, names=names), pixels


def _labelled_counts(path: Path, settings, strata: xr.DataArray, codes: list[int], *, merge: bool) -> np.ndarray:
    """The error matrix (map x reference) of a labelled sample drawn from `strata`."""
    sample = sampling.read_validation_sample(path, reference_field=settings.reference_field)
    if merge and settings.merge_classes:
        sample["reference_code"] = sample["reference_code"].replace(settings.merge_classes)
    points = sample.to_crs(strata.rio.crs)
    here = strata.sel(x=xr.DataArray(points.geometry.x.to_numpy(), dims="s"),
                      y=xr.DataArray(points.geometry.y.to_numpy(), dims="s"), method="nearest").values
    if not np.array_equal(here, sample["map_code"].to_numpy()):
        raise InputError(f"{path}: the samples' map_code differ from this run's map at "
                         f"{int((here != sample['map_code'].to_numpy()).sum())} points; the sample must come "
                         "from the same map (classify.sample_period, classify.change_transitions)")
    return sampling.error_matrix(sample["map_code"].to_numpy(), sample["reference_code"].to_numpy(), codes)


def _change_validation(config: PipelineConfig, class_map: xr.DataArray, out: OutputLayout, aoi_id: str) -> dict:
    """The change map first -> last period (0 stable, k = k-th transition of interest, last = other
    change): its sample design and, once labelled, its error-adjusted areas."""
    settings = config.classify
    first, last = (str(p) for p in class_map["period"].values[[0, -1]])
    strata = change_of_interest(config, class_map.sel(period=first), class_map.sel(period=last)).compute()
    names = change_names(config)
    design, pixels = _sample_design(settings, strata, names)
    design["period_from"], design["period_to"] = first, last
    io.write_gpkg(design, out.change_sample_design(aoi_id), layer=f"{aoi_id} change validation sample {first} to {last}",
                  qgis_style=labelling_style(names))
    report = {"periods": [first, last], "n_samples": int(len(design))}
    if settings.change_validation_sample is not None:
        counts = _labelled_counts(settings.change_validation_sample, settings, strata, list(names), merge=False)
        table = sampling.area_estimate_table(counts, pixels, codes=list(names), names=list(names.values()),
                                               pixel_area_ha=pixel_area_ha(class_map))
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


def _rgba(colour: str) -> tuple[int, int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)
