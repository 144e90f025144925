"""The runner: wires the stages for every AOI, decides when the Dask graph runs, writes each output once.

Per AOI: ingest -> cloud_mask -> composite (+ indices) -> classify -> change -> events -> video.
AOIs run one after the other; within an AOI the work is split into chunks and periods that run in
parallel on the Dask cluster (a local distributed cluster by default, or an existing scheduler).
A failing AOI is recorded in the manifest and does not stop the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import platform
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline import __version__, change, classify, events, exports, ingest, io, preprocess, records, render
from pipeline import sources
from pipeline import accuracy as accuracies
from pipeline import models, temporal
from pipeline import encode, publish
from pipeline.config import DaskConfig, PipelineConfig
from pipeline.errors import InputError, PipelineError
from pipeline.export_run import export_run
from pipeline.results import OutputLayout

__all__ = ["STAGES", "RunResult", "run_pipeline", "dask_client"]

log = logging.getLogger(__name__)

STAGES = ("ingest", "composite", "classify", "change", "events", "video")

# called as progress(aoi_id, stage, status) with status "running", "done" or "failed"
ProgressCallback = Callable[[str, str, str], None]

_VERSIONED = ("numpy", "pandas", "xarray", "dask", "distributed", "rasterio", "rioxarray", "geopandas",
              "shapely", "pyproj", "scikit-learn", "imageio-ffmpeg", "pillow", "pydantic")


@dataclass
class RunResult:
    run_dir: Path
    manifest: dict
    failed: dict[str, str] = field(default_factory=dict)  # aoi_id -> error line

    @property
    def ok(self) -> bool:
        return not self.failed


@contextlib.contextmanager
def dask_client(settings: DaskConfig, scheduler: str | None = None) -> Iterator[str]:
    """Run the block on Dask: an existing scheduler (address), a local distributed cluster, or threads.

    Yields a one-line description of what the work runs on.
    """
    address = scheduler or settings.scheduler
    if address is None and settings.cluster == "threads":
        with dask.config.set(scheduler="threads"):
            yield "local threads (no cluster)"
        return
    from distributed import Client, LocalCluster

    if address is not None:
        try:
            client = Client(address, timeout="10s")
        except OSError as err:
            raise PipelineError(f"cannot reach the Dask scheduler at {address} ({err})") from None
        with client:
            yield f"Dask scheduler {address} ({len(client.scheduler_info()['workers'])} workers)"
        return
    with LocalCluster(n_workers=settings.n_workers, threads_per_worker=settings.threads_per_worker,
                      memory_limit=settings.memory_limit, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster):
        yield (f"local Dask cluster: {settings.n_workers} workers x {settings.threads_per_worker} "
               f"thread(s), {settings.memory_limit} each")


def run_pipeline(config: PipelineConfig, *, scheduler: str | None = None,
                 progress: ProgressCallback | None = None) -> RunResult:
    """Run every stage for every AOI of the config and write the outputs under `config.run_dir`.

    Raises PipelineError (before anything is written) when the shared inputs are unusable; problems of
    one AOI are recorded in the result and the manifest instead.
    """
    progress = progress or (lambda *_: None)
    started = datetime.now(UTC)
    aois = io.read_aois(config.aoi.path, id_field=config.aoi.id_field)
    if config.aoi.ids is not None:
        unknown = sorted(set(config.aoi.ids) - set(aois["aoi_id"]))
        if unknown:
            raise InputError(f"{config.aoi.path}: no AOI with id {unknown} (aoi.ids)")
        aois = aois[aois["aoi_id"].isin(config.aoi.ids)]
    scenes = sources.list_sources(config.ingest, config.cloud_mask,
                                  scenes_glob=config.scenes_glob if config.ingest.scenes else None)
    points = (io.read_training_data(config.classify.training, class_field=config.classify.class_field,
                                    period_field=config.classify.period_field)
              if config.classify else None)  # no classify section: composites only
    event_records = records.normalise_events(io.read_events(config.events.path)) if config.events else None
    event_table = (events.link_events(event_records, aois, how=config.events.link,
                                      distance_m=config.events.link_distance_m)
                   if config.events else pd.DataFrame())
    inputs = [config.aoi.path, *([config.classify.training] if config.classify else []),
              *[p for source in scenes for p in source.files]]
    if config.events:
        inputs.append(config.events.path)
    if config.classify:
        inputs += [p for p in (config.classify.model_path, config.classify.validation_sample) if p is not None]
    manifest = {
        "run_name": config.run_name,
        "started": started.isoformat(timespec="seconds"),
        "config_file": str(config.config_path),
        "config": config.model_dump(mode="json"),
        "config_sha256": hashlib.sha256(config.model_dump_json().encode()).hexdigest(),
        "versions": _versions(),
        "inputs": [{"path": str(p), "size": p.stat().st_size, "sha256": io.sha256(p)} for p in inputs],
        "aois": {},
    }
    result = RunResult(run_dir=config.run_dir, manifest=manifest)
    with dask_client(config.dask, scheduler) as cluster:
        log.info("running on %s", cluster)
        manifest["cluster"] = cluster
        for _, aoi in aois.iterrows():
            aoi_id = aoi["aoi_id"]
            record = manifest["aois"][aoi_id] = {"status": "running", "stages": {}}
            try:
                _run_aoi(config, aoi, aois.crs, scenes, points, event_table, record, progress)
                record["status"] = "done"
            except Exception as err:  # one AOI's failure must not stop the others
                record["status"] = "failed"
                record["error"] = f"{type(err).__name__}: {err}"
                result.failed[aoi_id] = record["error"]
                log.error("aoi %r failed: %s", aoi_id, record["error"])
                log.debug("%s", traceback.format_exc())
    if event_records is not None:
        io.write_csv(_event_records_table(config, event_records, event_table), OutputLayout(config.run_dir).event_records)
    manifest["exports"] = [str(p.relative_to(config.run_dir)) for p in export_run(config.run_dir, manifest)]
    manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["status"] = "failed" if result.failed else "done"
    io.write_json(manifest, OutputLayout(config.run_dir).manifest)
    return result


@contextlib.contextmanager
def _stage(record: dict, aoi_id: str, name: str, progress: ProgressCallback) -> Iterator[dict]:
    entry = record["stages"][name] = {"status": "running"}
    progress(aoi_id, name, "running")
    start = time.perf_counter()
    try:
        yield entry
    except Exception:
        entry["status"] = "failed"
        progress(aoi_id, name, "failed")
        raise
    finally:
        entry["seconds"] = round(time.perf_counter() - start, 2)
    entry["status"] = "done"
    progress(aoi_id, name, "done")


def _run_aoi(config: PipelineConfig, aoi: pd.Series, aoi_crs, scenes, points: gpd.GeoDataFrame,
             event_table: pd.DataFrame, record: dict, progress: ProgressCallback) -> None:
    aoi_id = aoi["aoi_id"]
    out = OutputLayout(config.run_dir)
    geometry = gpd.GeoSeries([aoi.geometry], crs=aoi_crs).buffer(0)
    if config.aoi.buffer_m:
        metric = geometry.to_crs(geometry.estimate_utm_crs())
        geometry = metric.buffer(config.aoi.buffer_m)

    with _stage(record, aoi_id, "ingest", progress) as entry:
        stack, _ = sources.aoi_stack(scenes, geometry, ingest_config=config.ingest,
                                     drop=config.cloud_mask.drop, aoi_id=aoi_id)
        listed = stack.sizes["time"]
        stack = ingest.drop_empty_scenes(stack, aoi_id=aoi_id)
        entry.update(scenes=stack.sizes["time"], dropped_empty=listed - stack.sizes["time"],
                     shape=[stack.sizes["y"], stack.sizes["x"]], crs=str(stack.rio.crs),
                     variables=list(stack.data_vars))

    with _stage(record, aoi_id, "composite", progress) as entry:
        clear = preprocess.cloud_mask(stack, mask_values=config.cloud_mask.mask_values)
        composites = preprocess.composite(clear, period=config.composite.period,
                                          method=config.composite.method,
                                          min_clear_scenes=config.composite.min_clear_scenes)
        composites = preprocess.spectral_indices(composites, config.composite.indices)
        if config.classify and config.classify.temporal_stats:
            composites = composites.assign(preprocess.ndvi_range(clear, period=config.composite.period))
        composites = composites.rio.write_crs(stack.rio.crs)
        (composites,) = dask.persist(composites)
        layers = [v for v in composites.data_vars if v != "clear_count"]
        for period in composites["period"].values:
            io.write_cog(composites[layers].sel(period=period).to_dataarray("band").astype("float32"),
                         out.composite(aoi_id, period), band_names=layers, nodata=np.nan)
        entry["periods"] = [int(p) for p in composites["period"].values]

    aoi_events = (event_table[event_table["aoi_id"] == aoi_id] if len(event_table)
                  else pd.DataFrame(columns=["event_id"]))
    if config.classify is None:  # no labels: composites and the video only
        record["stages"].update({name: {"status": "skipped", "reason": "no classify section"}
                                 for name in ("classify", "change", "events")})
        _video_stage(config, aoi, composites, None, aoi_events, None, geometry, out, record, progress)
        return

    with _stage(record, aoi_id, "classify", progress) as entry:
        predicted, accuracy, model_files = _classify(config, composites, points, layers)
        class_map = predicted["class_map"]
        entry["overall_accuracy"] = accuracy["overall_accuracy"]
        if "spatial_cv" in accuracy:
            entry["spatial_cv_overall_accuracy"] = accuracy["spatial_cv"]["overall_accuracy"]
        if config.classify.temporal_filter != "none":
            class_map, entry["temporal_filter"] = _temporal_filter(config, predicted)
            accuracy["temporal_filter"] = entry["temporal_filter"]
        entry.update(_validation(config, class_map, accuracy, out, aoi_id))
        io.write_json(accuracy, out.accuracy(aoi_id))
        io.write_csv(_confusion_table(accuracy, config.classes), out.confusion_matrix(aoi_id))
        if model_files is not None:
            io.write_bytes(model_files[0], out.model(aoi_id))
            io.write_json(model_files[1], out.model(aoi_id).with_suffix(".json"))
        colours = {c.code: _rgba(c.colour) for c in config.classes}
        for period in class_map["period"].values:
            io.write_cog(class_map.sel(period=period), out.class_map(aoi_id, period),
                         band_names=["class"], nodata=classify.UNCLASSIFIED, colormap=colours)
            if config.classify.confidence:
                io.write_cog(predicted["confidence"].sel(period=period), out.confidence(aoi_id, period),
                             band_names=["confidence"], nodata=np.nan)

    area_ha = change.pixel_area_ha(class_map)
    with _stage(record, aoi_id, "change", progress):
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
        io.write_csv(change.mining_footprint_table(class_area, config.change.mining_classes),
                     out.mining_footprint(aoi_id))
        io.write_csv(change.ring_summary(class_map, config.classes, mining_classes=config.change.mining_classes,
                                         rings_m=config.change.rings_m, aoi_id=aoi_id), out.rings(aoi_id))
        io.write_cog(first_change, out.first_change_year(aoi_id), band_names=["first_change_year"],
                     nodata=change.NO_CHANGE)

    with _stage(record, aoi_id, "events", progress) as entry:
        design_based = accuracy.get("design_based")  # a labelled validation sample: map error in the CIs
        error_matrix = np.array(design_based["confusion_matrix"]["counts"]) if design_based else None
        entry["baci_includes_map_error"] = error_matrix is not None
        results = [_event_tables(config, event, class_map, area_ha, error_matrix)
                   for _, event in aoi_events.iterrows()]
        metrics = [r[0] for r in results] or [pd.DataFrame(columns=events.EVENT_METRICS_COLUMNS)]
        baci = [r[1] for r in results] or [pd.DataFrame(columns=events.BACI_COLUMNS)]
        io.write_csv(pd.concat(metrics), out.event_metrics(aoi_id))
        io.write_csv(pd.concat(baci), out.baci(aoi_id))
        if results:
            zones = pd.concat([r[2] for r in results])
            if config.public.enabled:
                zones = exports.generalise_zones(zones, grid_m=config.public.grid_m)
            io.write_gpkg(zones, out.event_zones(aoi_id), layer="event_zones")
        entry["events"] = list(aoi_events["event_id"])

    _video_stage(config, aoi, composites, class_map, aoi_events, class_area, geometry, out, record, progress)


def _video_stage(config: PipelineConfig, aoi: pd.Series, composites: xr.Dataset, class_map: xr.DataArray | None,
                 aoi_events: pd.DataFrame, class_area: pd.DataFrame | None, geometry: gpd.GeoSeries,
                 out: OutputLayout, record: dict, progress: ProgressCallback) -> None:
    """The time-lapse, or a recorded skip where the composites have no bands to show in colour."""
    missing = sorted(set(config.video.rgb_bands) - set(composites.data_vars))
    if missing:  # e.g. NDVI-only data
        record["stages"]["video"] = {"status": "skipped",
                                     "reason": f"composites lack {missing} (video.rgb_bands)"}
        log.warning("aoi %r: no video, the composites lack %s (video.rgb_bands)", aoi["aoi_id"], missing)
        return
    with _stage(record, aoi["aoi_id"], "video", progress) as entry:
        entry.update(_video(config, aoi, composites, class_map, aoi_events, class_area=class_area,
                            geometry=geometry, out=out))


def _classify(config: PipelineConfig, composites: xr.Dataset, labels: gpd.GeoDataFrame,
              layers: list[str]) -> tuple[xr.Dataset, dict, tuple[bytes, dict] | None]:
    """Train (or load) the model, assess it, predict. Returns the computed class map and confidence,
    the accuracy document and the model to save (skops bytes, metadata) or None."""
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
    samples, table = classify.training_samples(features, points)
    X = samples.values
    usable = np.isfinite(X).all(axis=1)
    y = table["class_code"].to_numpy()
    unknown = sorted(set(y) - {c.code for c in config.classes})
    if unknown:
        raise InputError(f"{settings.training}: class codes {unknown} are not in the config's classes "
                         "(add them to `classes` or map them with classify.merge_classes)")
    X, y, xy = X[usable], y[usable], table[["x", "y"]].to_numpy()[usable]
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
    (predicted,) = dask.compute(classify.predict_classes(features, model))
    return predicted, accuracy, model_files


def _temporal_filter(config: PipelineConfig, predicted: xr.Dataset) -> tuple[xr.DataArray, dict]:
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


def _validation(config: PipelineConfig, class_map: xr.DataArray, accuracy: dict, out: OutputLayout,
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
    io.write_gpkg(design, out.sample_design(aoi_id), layer="sample_design")
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
    io.write_gpkg(design, out.change_sample_design(aoi_id), layer="change_sample_design")
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


def _video(config: PipelineConfig, aoi: pd.Series, composites: xr.Dataset, class_map: xr.DataArray | None,
           aoi_events: pd.DataFrame, *, class_area: pd.DataFrame | None, geometry: gpd.GeoSeries,
           out: OutputLayout) -> dict:
    """The time-lapse MP4, its poster, subtitles and youtube.txt; returns what the manifest records.

    Without a class map (no classify section) the video shows the composites alone: no land-cover
    panel, legend or area chart."""
    settings, aoi_id = config.video, aoi["aoi_id"]
    public = config.public.enabled
    periods = [int(p) for p in composites["period"].values]
    bands = list(settings.rgb_bands)
    missing = [b for b in bands if b not in composites.data_vars]
    if missing:
        raise InputError(f"video.rgb_bands: {missing} not in the composites of aoi {aoi_id!r} "
                         f"(they have {sorted(map(str, composites.data_vars))})")
    rgb = composites[bands]
    low, high = (float(v) for v in np.nanpercentile(rgb.to_dataarray().values, settings.stretch_percentiles))
    if not high > low:
        raise InputError(f"aoi {aoi_id!r}: the composites of {bands} are empty or constant; no stretch "
                         f"for the video (video.stretch_percentiles)")
    legend = ([render.LegendEntry(c.code, c.name, c.colour) for c in config.classes]
              if class_map is not None else [])
    if class_map is not None and bool((class_map == classify.UNCLASSIFIED).any()):
        legend.append(render.LegendEntry(classify.UNCLASSIFIED, "no data", "#%02x%02x%02x" % render.NODATA_RGB))
    class_areas = None
    if class_map is not None and class_area is not None:
        areas = class_area.pivot_table(index="period", columns="class_code", values="area_ha", aggfunc="sum")
        class_areas = {c.code: [float(areas.at[p, c.code]) if p in areas.index and c.code in areas.columns
                                else np.nan for p in periods] for c in config.classes}
    captions = _video_captions(aoi_events, periods, public=public)
    about = _event_facts(aoi_events)
    title = settings.title or str(aoi.get("name") or aoi_id)
    subtitle = (settings.subtitle if settings.subtitle is not None
                else " · ".join(fact for fact in about if fact != title))
    years = f"{periods[0]}–{periods[-1]}" if len(periods) > 1 else str(periods[0])
    footer = settings.credits.replace("{years}", years)
    outro_lines = [line for line in (footer, *settings.outro_credits) if line]
    if len(aoi_events):
        outro_lines.append("Events: public sources listed in the video description")
    outro_lines.append("Made with midr-pipeline")
    grid = class_map if class_map is not None else composites
    crs, transform = grid.rio.crs, grid.rio.transform(recalc=True)
    pixel_size_m = _pixel_size_m(crs, transform, geometry)
    overlays = dict(outline=_outline_pixels(geometry, crs, transform),
                    markers=(_event_markers(aoi_events, crs, transform, public=public,
                                            grid_m=config.public.grid_m, pixel_size_m=pixel_size_m)
                             if settings.markers else []),
                    pixel_size_m=pixel_size_m)

    def maps() -> Iterator[np.ndarray]:
        for period in periods:
            scene = rgb.sel(period=period)
            yield render.true_colour(*(scene[b].values for b in bands), vmin=low, vmax=high)

    def class_maps() -> Iterator[np.ndarray]:
        for period in periods:
            yield render.colour_classes(class_map.sel(period=period).values, legend,
                                        nodata=classify.UNCLASSIFIED)

    def scene(size: tuple[int, int]) -> render.Scene:
        return render.build_scene(
            maps(), period_labels=[str(p) for p in periods], size=size, title=title, subtitle=subtitle,
            class_maps=class_maps() if class_map is not None else None, legend=legend, class_areas=class_areas, period_values=periods,
            captions=[(period, text) for period, text in captions], credits=footer,
            intro_lines=[line for line in (about[:2], about[2:]) for line in [" · ".join(line)] if line]
            if settings.intro_seconds else None,
            outro_lines=outro_lines if settings.outro_seconds else None,
            map_titles=("True colour" if bands == ["red", "green", "blue"] else
                        f"{_BAND_LABELS.get(bands[0], bands[0].upper())} (grey)" if len(set(bands)) == 1 else
                        "False colour (" + " / ".join(_BAND_LABELS.get(b, b) for b in bands) + ")", "Land cover"),
            chart=settings.chart,
            **overlays)

    timing = render.Timing(fps=settings.fps, seconds_per_period=settings.seconds_per_period,
                           crossfade_seconds=settings.crossfade_seconds, intro_seconds=settings.intro_seconds,
                           outro_seconds=settings.outro_seconds, caption_seconds=settings.caption_seconds)
    video_scene = scene(settings.size)
    path = out.video(aoi_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = encode.write_timelapse(video_scene, timing, path, preset=settings.x264_preset, crf=settings.crf)

    texts = [text for _, text in captions]
    spans = publish.caption_frames(timing, len(periods), [period for period, _ in captions])
    found = publish.chapters(timing, len(periods), opening=f"{title}, {years}", captions=texts, spans=spans)
    problems = publish.chapter_problems(found, total_seconds=n_frames / settings.fps)
    for problem in problems:
        log.warning("aoi %r: youtube chapters: %s", aoi_id, problem)
    sources = [footer, *settings.outro_credits,
               *[part.strip() for source in aoi_events.get("source", pd.Series(dtype=str)).dropna()
                 for part in str(source).split(" ; ")]]
    band_names = " / ".join(_BAND_LABELS.get(b, b) for b in bands)
    shown = (f"satellite composites ({band_names}) beside a land-cover map ({len(legend)} classes) and the area "
             "of each class over time" if legend else f"satellite composites ({band_names})")
    summary = (f"Land cover around {about[0] if about else title} from {periods[0]} to {periods[-1]}, period by "
               f"period: {shown}" + (", with the documented displacement and resettlement events" if texts else "")
               + ". Made with midr-pipeline.")
    io.write_bytes(publish.youtube_text(title=f"{title}: land-cover change {years} (time-lapse)", summary=summary,
                                        captions=texts, sources=sources, found=found, notes=problems).encode(),
                   out.youtube(aoi_id))
    io.write_bytes(publish.subtitles_srt(texts, spans, fps=settings.fps).encode(), out.subtitles(aoi_id))
    io.write_bytes(publish.png_bytes(publish.poster_frame(scene(publish.POSTER_SIZE))), out.poster(aoi_id))
    return {"frames": n_frames, "size": list(settings.size), "fps": settings.fps,
            "duration_s": round(n_frames / settings.fps, 3), "captions": len(texts),
            "chapters": [f"{c.timestamp} {c.title}" for c in found], "chapter_problems": problems}


_BAND_LABELS = {"blue": "Blue", "green": "Green", "red": "Red", "nir": "NIR", "swir1": "SWIR1", "swir2": "SWIR2"}


def _video_captions(aoi_events: pd.DataFrame, periods: list[int], *, public: bool) -> list[tuple[int, str]]:
    """(period index, caption) per event: at the first period from the event's start year on (events
    before the series show at its start; events after it are left out), ordered by period."""
    captions = []
    for _, event in aoi_events.iterrows():
        year = event.get("year_start") if pd.notna(event.get("year_start")) else event.get("year_end")
        if pd.isna(year):
            log.info("event %r has no year: no caption", event["event_id"])
            continue
        start = int(year)
        index = next((i for i, p in enumerate(periods) if p >= start), None)
        if index is None:
            log.info("event %r (%d) is after the last period %d: no caption", event["event_id"], start, periods[-1])
            continue
        text = events.event_caption(event, public=public)
        captions.append((index, re.sub(r"^(\d{4})-(\d{4})", "\\1\u2013\\2", text)))
    return sorted(captions, key=lambda c: c[0])


def _event_facts(aoi_events: pd.DataFrame) -> list[str]:
    """Mine, company, country, commodity of the AOI's events (the first record that gives each)."""
    facts = []
    for column in ("mine", "company", "country", "commodity"):
        values = aoi_events[column].dropna().astype(str) if column in aoi_events.columns else pd.Series(dtype=str)
        if len(values):
            facts.append(values.iloc[0])
    return facts


def _pixel_size_m(crs, transform, geometry: gpd.GeoSeries) -> float | None:
    """Ground size of a pixel (x) in metres, for the scale bar; None if the CRS has no usable unit."""
    if crs is None:
        return None
    if crs.is_geographic:
        latitude = float(geometry.to_crs("EPSG:4326").union_all().centroid.y)
        return abs(transform.a) * 111_320.0 * np.cos(np.radians(latitude))
    factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    return abs(transform.a) * factor


def _to_pixels(xs, ys, transform) -> tuple[np.ndarray, np.ndarray]:
    inverse = ~transform
    xs, ys = np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64")
    return inverse.a * xs + inverse.b * ys + inverse.c, inverse.d * xs + inverse.e * ys + inverse.f


def _outline_pixels(geometry: gpd.GeoSeries, crs, transform) -> list[np.ndarray]:
    rings = []
    for polygon in geometry.to_crs(crs).explode(index_parts=False):
        for ring in [polygon.exterior, *polygon.interiors]:
            xs, ys = ring.coords.xy
            cols, rows = _to_pixels(xs, ys, transform)
            rings.append(np.column_stack([cols, rows]))
    return rings


def _event_markers(aoi_events: pd.DataFrame, crs, transform, *, public: bool, grid_m: float,
                   pixel_size_m: float | None) -> list[render.MapMarker]:
    """Mine, origin community and resettlement site of each event; in public mode the community and the
    site snap to a grid of `grid_m` and show as an unnamed circle of that size."""
    places = {"mine": ("mine_lat", "mine_lon", "mine"), "origin": ("origin_lat", "origin_lon", "origin_community"),
              "site": ("site_lat", "site_lon", "resettlement_site")}
    markers, seen = [], set()
    for _, event in aoi_events.iterrows():
        for kind, (lat, lon, name) in places.items():
            if pd.isna(event.get(lat)) or pd.isna(event.get(lon)):
                continue
            point = gpd.GeoSeries(gpd.points_from_xy([event[lon]], [event[lat]]), crs="EPSG:4326")
            sensitive = public and kind != "mine"
            if sensitive:
                metric = point.to_crs(point.estimate_utm_crs())
                snapped = gpd.points_from_xy(np.round(metric.x / grid_m) * grid_m, np.round(metric.y / grid_m) * grid_m)
                point = gpd.GeoSeries(snapped, crs=metric.crs).to_crs(crs)
            else:
                point = point.to_crs(crs)
            cols, rows = _to_pixels(point.x, point.y, transform)
            key = (kind, round(float(cols[0]), 1), round(float(rows[0]), 1))
            if key in seen:
                continue
            seen.add(key)
            label = "" if sensitive or pd.isna(event.get(name)) else str(event[name])
            radius = grid_m / 2 / pixel_size_m if sensitive and pixel_size_m else 0.0
            markers.append(render.MapMarker(float(cols[0]), float(rows[0]), label, kind, radius))
    return markers


def _event_records_table(config: PipelineConfig, event_records: pd.DataFrame,
                         linked: pd.DataFrame) -> pd.DataFrame:
    """Every record with the AOI(s) it links to (empty if none), generalised where the output is public."""
    links = (linked.groupby("event_id")["aoi_id"].agg(";".join) if len(linked)
             else pd.Series(dtype=str, name="aoi_id"))
    table = event_records.drop(columns="aoi_id", errors="ignore").merge(
        links.rename("aoi_id"), left_on="event_id", right_index=True, how="left")
    if config.public.enabled:
        table = exports.generalise_events(table, grid_m=config.public.grid_m)
    return table


def _rgba(colour: str) -> tuple[int, int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)


def _versions() -> dict[str, str]:
    found = {"midr-pipeline": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    import rasterio

    found["gdal"] = rasterio.__gdal_version__
    return found

