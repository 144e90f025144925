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

from pipeline import __version__, change, classify, events, ingest, io, preprocess, render
from pipeline.config import DaskConfig, PipelineConfig
from pipeline.errors import InputError, PipelineError
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
                      memory_limit=settings.memory_limit, processes=True, dashboard_address=None,
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
    scenes = io.list_scenes(config.scenes_glob, date_pattern=config.ingest.date_pattern,
                            date_format=config.ingest.date_format)
    points = io.read_training_points(config.classify.training, class_field=config.classify.class_field,
                                     period_field=config.classify.period_field)
    event_table = (events.link_events(io.read_events(config.events.path), aois, how=config.events.link,
                                      distance_m=config.events.link_distance_m)
                   if config.events else pd.DataFrame())
    inputs = [config.aoi.path, config.classify.training, *[p for _, p in scenes]]
    if config.events:
        inputs.append(config.events.path)
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
        stack = ingest.scene_stack(
            scenes, geometry, bands=config.ingest.bands, mask_band=config.cloud_mask.mask_band,
            scale=config.ingest.scale, offset=config.ingest.offset, nodata=config.ingest.nodata,
            chunk_size=config.ingest.chunk_size)
        entry.update(scenes=stack.sizes["time"], shape=[stack.sizes["y"], stack.sizes["x"]],
                     crs=str(stack.rio.crs))

    with _stage(record, aoi_id, "composite", progress) as entry:
        clear = preprocess.cloud_mask(stack, mask_values=config.cloud_mask.mask_values)
        composites = preprocess.composite(clear, period=config.composite.period,
                                          method=config.composite.method,
                                          min_clear_scenes=config.composite.min_clear_scenes)
        composites = preprocess.spectral_indices(composites, config.composite.indices)
        if config.classify.temporal_stats:
            composites = composites.assign(preprocess.ndvi_range(clear, period=config.composite.period))
        composites = composites.rio.write_crs(stack.rio.crs)
        (composites,) = dask.persist(composites)
        layers = [v for v in composites.data_vars if v != "clear_count"]
        for period in composites["period"].values:
            io.write_cog(composites[layers].sel(period=period).to_dataarray("band").astype("float32"),
                         out.composite(aoi_id, period), band_names=layers, nodata=np.nan)
        entry["periods"] = [int(p) for p in composites["period"].values]

    with _stage(record, aoi_id, "classify", progress) as entry:
        class_map, accuracy = _classify(config, composites, points, layers)
        entry["overall_accuracy"] = accuracy["overall_accuracy"]
        io.write_json(accuracy, out.accuracy(aoi_id))
        colours = {c.code: _rgba(c.colour) for c in config.classes}
        for period in class_map["period"].values:
            io.write_cog(class_map.sel(period=period), out.class_map(aoi_id, period),
                         band_names=["class"], nodata=classify.UNCLASSIFIED, colormap=colours)

    area_ha = change.pixel_area_ha(class_map)
    with _stage(record, aoi_id, "change", progress):
        counts, transitions = dask.compute(change.class_pixel_counts(class_map),
                                           change.transition_counts(class_map))
        io.write_csv(change.class_area_table(counts, config.classes, pixel_area_ha=area_ha, aoi_id=aoi_id),
                     out.class_area(aoi_id))
        io.write_csv(change.transition_table(transitions, config.classes, pixel_area_ha=area_ha,
                                             aoi_id=aoi_id), out.transitions(aoi_id))

    aoi_events = (event_table[event_table["aoi_id"] == aoi_id] if len(event_table)
                  else pd.DataFrame(columns=["event_id"]))
    with _stage(record, aoi_id, "events", progress) as entry:
        tables = [_event_metrics(config, event, class_map, area_ha) for _, event in aoi_events.iterrows()]
        io.write_csv(pd.concat(tables) if tables else pd.DataFrame(columns=events.EVENT_METRICS_COLUMNS),
                     out.event_metrics(aoi_id))
        entry["events"] = list(aoi_events["event_id"])

    with _stage(record, aoi_id, "video", progress) as entry:
        entry["frames"] = _video(config, aoi, composites, class_map, aoi_events,
                                 out.video(aoi_id))


def _classify(config: PipelineConfig, composites: xr.Dataset, points: gpd.GeoDataFrame,
              layers: list[str]) -> tuple[xr.DataArray, dict]:
    settings = config.classify
    features = classify.feature_stack(composites, layers)
    samples, labels = classify.training_samples(features, points)
    X = samples.values
    usable = np.isfinite(X).all(axis=1)
    y = labels["class_code"].to_numpy()
    unknown = sorted(set(y) - {c.code for c in config.classes})
    if unknown:
        raise InputError(f"{settings.training}: class codes {unknown} are not in the config's classes")
    model, X_test, y_test = classify.train_random_forest(
        X[usable], y[usable], n_estimators=settings.n_estimators, max_depth=settings.max_depth,
        test_fraction=settings.test_fraction, random_state=settings.random_state)
    accuracy = classify.accuracy_assessment(y_test, model.predict(X_test), config.classes)
    accuracy.update(
        method="hold-out of the labelled points (stratified); labels are not a probability sample, so "
               "these are sample accuracies, not design-based map accuracies",
        test_fraction=settings.test_fraction,
        n_labels=int(len(labels) + labels.attrs["dropped_outside"] + labels.attrs["dropped_period"]),
        dropped_outside_aoi=labels.attrs["dropped_outside"],
        dropped_no_period=labels.attrs["dropped_period"],
        dropped_nodata_features=int((~usable).sum()),
        n_train=int(usable.sum() - len(y_test)),
        features=layers,
        model={"type": "RandomForestClassifier", "n_estimators": settings.n_estimators,
               "max_depth": settings.max_depth, "random_state": settings.random_state},
    )
    (class_map,) = dask.compute(classify.predict_class_map(features, model))
    return class_map, accuracy


def _event_metrics(config: PipelineConfig, event: pd.Series, class_map: xr.DataArray,
                   area_ha: float) -> pd.DataFrame:
    settings = config.events
    zones = events.event_zones(event, radius_m=settings.zone_radius_m, crs=class_map.rio.crs)
    counts = {zone: (polygon if isinstance(polygon, str) else events.zone_pixel_counts(class_map, polygon))
              for zone, polygon in zones.items()}
    (counts,) = dask.compute(counts)
    return events.event_metrics_table(event, counts, config.classes, pixel_area_ha=area_ha,
                                      years_before=settings.years_before, years_after=settings.years_after)


def _video(config: PipelineConfig, aoi: pd.Series, composites: xr.Dataset, class_map: xr.DataArray,
           aoi_events: pd.DataFrame, path: Path) -> int:
    settings = config.video
    rgb = composites[["red", "green", "blue"]]
    low, high = np.nanpercentile(rgb.to_dataarray().values, settings.stretch_percentiles)
    legend = [render.LegendEntry(c.code, c.name, c.colour) for c in config.classes]
    title = settings.title or str(aoi.get("name") or aoi["aoi_id"])
    captions = [(int(e["year_start"]), events.event_caption(e)) for _, e in aoi_events.iterrows()]

    def period_frames() -> Iterator[np.ndarray]:
        for period in composites["period"].values:
            scene = rgb.sel(period=period)
            yield render.compose_frame(
                render.true_colour(scene["red"].values, scene["green"].values, scene["blue"].values,
                                   vmin=float(low), vmax=float(high)),
                render.colour_classes(class_map.sel(period=period).values, legend,
                                      nodata=classify.UNCLASSIFIED),
                size=(settings.width, settings.height), title=title, date_label=str(period),
                legend=legend, captions=[text for year, text in captions if year <= period],
                credits=settings.credits)

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = render.timelapse_frames(period_frames(), fps=settings.fps,
                                     seconds_per_period=settings.seconds_per_period)
    return render.write_video(frames, path, fps=settings.fps)


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

