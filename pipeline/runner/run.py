"""The runner: wires the stages for every AOI, decides which run and when, keeps the manifest.

Per AOI: ingest + composite -> classify -> change -> events -> video (each room's `stage` module,
e.g. `pipeline.classify.stage`). AOIs run at the same time (one per worker by default,
`dask.parallel_aois`); within an AOI the work is split into chunks and periods on the Dask cluster
(`pipeline.runner.cluster`).

Every stage is keyed by what produced it (`pipeline.provenance`): a rerun skips the stages whose key
and outputs are unchanged, `force` recomputes. A failing AOI is recorded in the manifest and does not
stop the others. After the AOIs, the run-level products (event records, exports, report, STAC catalog,
QGIS styles) are written, keyed the same way.
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import json
import logging
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from pipeline import io
from pipeline.change.stage import change_stage, segmentation_stage
from pipeline.classify.reference import check_reference_map
from pipeline.classify.stage import classify_stage, read_class_map
from pipeline.classify.training import read_training_data
from pipeline.composite.periods import periods_from_records
from pipeline.composite.stage import composite_stage, read_composites
from pipeline.config import PipelineConfig
from pipeline.errors import InputError, PipelineError, as_pipeline_error
from pipeline.events import configured_aois, link_events, mixed_periods, normalise_events, read_events
from pipeline.events.public import generalise_events, generalise_text
from pipeline.events.stage import events_stage
from pipeline.ingest import aoi_outline, find_items, list_sources, stac
from pipeline.job import AoiJob
from pipeline.products import export_run, kept_aois, write_output_catalog, write_report, write_styles
from pipeline.results import OutputLayout, RunOutputs, read_table
from pipeline.runner import budget, provenance
from pipeline.runner.cluster import dask_client
from pipeline.runner.interrupt import run_aois
from pipeline.runner.lock import remove_partial_files, run_lock
from pipeline.video.stage import make_timelapse

__all__ = ["STAGES", "RunResult", "run_pipeline"]

log = logging.getLogger(__name__)

STAGES = ("ingest", "composite", "classify", "change", "events", "video")
FORCEABLE = (*STAGES[1:], "segmentation", "products")  # segmentation: only where change.segmentation is set

# called as progress(aoi_id, stage, status) with status "running", "done", "cached", "skipped" or "failed"
ProgressCallback = Callable[[str, str, str], None]
# called as step(aoi_id, stage, done, total, unit) inside the long stages: periods written, frames encoded
StepProgressCallback = Callable[[str, str, int, int, str], None]


@dataclass
class RunResult:
    run_dir: Path
    manifest: dict
    failed: dict[str, str] = field(default_factory=dict)  # aoi_id -> error line
    exit_codes: dict[str, int] = field(default_factory=dict)  # aoi_id -> 2 for bad input, 1 otherwise
    stages_run: int = 0
    stages_cached: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return max(self.exit_codes.values(), default=0)


class _Ledger:
    """The manifest, changed only under a lock (AOIs run in threads) and saved after every stage."""

    def __init__(self, manifest: dict, path: Path):
        self.manifest, self.path, self.lock = manifest, path, threading.Lock()
        self.saving = threading.Lock()  # one save at a time: the threads share one temporary file name

    def update(self, *keys: str, **values) -> dict:
        with self.lock:
            entry = self.manifest
            for key in keys:
                entry = entry.setdefault(key, {})
            entry.update(values)
            return entry

    def replace(self, *keys: str, value: dict) -> None:
        with self.lock:
            entry = self.manifest
            for key in keys[:-1]:
                entry = entry.setdefault(key, {})
            entry[keys[-1]] = value

    def save(self) -> None:
        with self.saving:  # (and the last snapshot taken is the last written)
            with self.lock:
                snapshot = copy.deepcopy(self.manifest)
            io.write_json(snapshot, self.path)


def run_pipeline(config: PipelineConfig, *, scheduler: str | None = None, progress: ProgressCallback | None = None,
                 force: Collection[str] = (), step: StepProgressCallback | None = None) -> RunResult:
    """Run every stage for every AOI of the config and write the outputs under `config.run_dir`.

    `force`: stage names (or "all") to recompute even where their outputs are up to date. `progress`
    hears each stage start and end, `step` the progress inside the long ones (composite and classify:
    periods written; video: frames encoded).
    Raises PipelineError (before anything is written) when the shared inputs are unusable or the
    memory plan does not fit; problems of one AOI are recorded in the result and the manifest instead.
    """
    progress = progress or (lambda *_: None)
    force = set(FORCEABLE) if "all" in force else set(force)
    unknown = force - set(FORCEABLE)
    if unknown:
        raise InputError(f"--force: unknown stage(s) {sorted(unknown)}; use {', '.join(FORCEABLE)} or all")
    started = datetime.now(UTC)
    event_records = normalise_events(read_events(config.events.path)) if config.events else None
    aois = configured_aois(config, event_records)  # aoi.path, or one per mine of the events table
    scenes = list_sources(config.ingest, config.cloud_mask,
                                  scenes_glob=config.scenes_glob if config.ingest.scenes else None)
    points = (read_training_data(config.classify.training, class_field=config.classify.class_field,
                                    period_field=config.classify.period_field,
                                    class_codes=[c.code for c in config.classes],
                                    merge_classes=config.classify.merge_classes,
                                    ignore_classes=config.classify.ignore_classes)
              if config.classify and config.classify.reference_map is None else None)  # none: composites only, or a map
    if config.classify and config.classify.reference_map is not None:
        check_reference_map(config.classify.reference_map.map)
    event_table = (link_events(event_records, aois, how=config.events.link,
                                      distance_m=config.events.link_distance_m)
                   if config.events else pd.DataFrame())
    _check_writable(config.run_dir, config.output_dir)
    with run_lock(config.run_dir):  # one run per folder; released however this process ends
        return _run(config, aois, scenes, points, event_records, event_table, started=started,
                    scheduler=scheduler, progress=progress, force=force, step=step)


def _run(config: PipelineConfig, aois: gpd.GeoDataFrame, scenes: list, points: gpd.GeoDataFrame | None,
         event_records: pd.DataFrame | None, event_table: pd.DataFrame, *, started: datetime,
         scheduler: str | None, progress: ProgressCallback, force: set[str],
         step: StepProgressCallback | None) -> RunResult:
    """The run once its inputs are checked and its folder is locked: the AOIs, then the products."""
    for stale in remove_partial_files(config.run_dir):
        log.info("removed %s, left half-written by an interrupted run", stale)

    hashes = provenance.InputHashes(config.run_dir)
    inputs = _inputs(config, scenes, hashes)
    hashes.save()
    manifest = {
        "run_name": config.run_name,
        "started": started.isoformat(timespec="seconds"),
        "status": "running",
        "config_file": str(config.config_path),
        "config": _config_record(config, event_records),
        "config_sha256": hashlib.sha256(config.model_dump_json().encode()).hexdigest(),
        "versions": provenance.versions(),
        "seeds": _seeds(config),
        "inputs": inputs,
        "aois": {str(a): {"status": "waiting", "stages": {}} for a in aois["aoi_id"]},
    }
    for aoi_id, message in aois.attrs.get("repaired", {}).items():  # invalid outlines made valid, area kept
        manifest["aois"][aoi_id]["warnings"] = [message]
    out = OutputLayout(config.run_dir)
    ledger = _Ledger(manifest, out.manifest)
    result = RunResult(run_dir=config.run_dir, manifest=manifest)
    context = _RunContext(config, scenes, points, {i["path"]: i["sha256"] for i in inputs}, ledger,
                          provenance.StageStamps(config.run_dir), force, progress, result)
    jobs = [_job(config, aoi, aois.crs, event_table, out) for _, aoi in aois.iterrows()]
    if step is not None:
        jobs = [replace(job, step=lambda stage, done, total, unit, aoi_id=job.aoi_id: step(aoi_id, stage, done, total,
                                                                                         unit)) for job in jobs]
    with dask_client(config.dask, scheduler) as cluster:
        log.info("running on %s: %s", cluster.description, cluster.reason)
        if cluster.dashboard:
            log.info("Dask dashboard: %s", cluster.dashboard)
        manifest["cluster"] = cluster.as_record()
        parallel = max(1, min(len(jobs), config.dask.parallel_aois or min(4, cluster.workers)))
        # periods computed (and written, on the workers) at once per AOI: enough to keep every thread busy
        jobs = [replace(job, batch=max(4, 2 * cluster.threads // parallel)) for job in jobs]
        plans = [budget.check(job, scenes, cluster, items=context.searched_items(job)) for job in jobs
                 if context.needs_composites(job)]
        manifest["memory_plan"] = {plan["aoi_id"]: plan for plan in plans}
        manifest["parallel_aois"] = parallel
        ledger.save()
        run_aois(context.run_aoi, jobs, parallel=parallel, on_interrupt=context.interrupt)

    context.products(event_records, event_table)
    manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["status"] = "failed" if result.failed else "done"
    manifest["stages_run"], manifest["stages_cached"] = result.stages_run, result.stages_cached
    ledger.save()
    return result


@dataclass
class _RunContext:
    """What every AOI's stages share; runs one AOI's stages with caching."""

    config: PipelineConfig
    scenes: list
    points: gpd.GeoDataFrame | None
    input_sha256: dict[str, str]
    ledger: _Ledger
    stamps: provenance.StageStamps
    force: set[str]
    progress: ProgressCallback
    result: RunResult
    items: dict[str, dict[str, list]] = field(default_factory=dict)  # aoi_id -> source key -> STAC items
    lock: threading.Lock = field(default_factory=threading.Lock)
    interrupted: bool = False

    def interrupt(self) -> None:
        """Ctrl-C: the manifest says so; stages failing from now on (their Dask work cancelled) are not
        recorded as failures."""
        self.interrupted = True
        self.ledger.update(status="interrupted", interrupted=datetime.now(UTC).isoformat(timespec="seconds"))
        with self.ledger.lock:
            for record in self.ledger.manifest["aois"].values():
                for entry in (record, *record.get("stages", {}).values()):
                    if entry.get("status") in ("running", "waiting"):
                        entry["status"] = "interrupted"
        self.ledger.save()

    # ----------------------------------------------------------------------------- keys
    def _config(self, *sections: str) -> dict:
        dumped = self.config.model_dump(mode="json")
        return {s: dumped.get(s) for s in sections}

    def _files(self, paths) -> dict[str, str]:
        return {str(p): self.input_sha256[str(p)] for p in paths if p is not None}

    def stac_items(self, job: AoiJob) -> dict[str, list]:
        """The STAC items of the AOI, per source: searched once (the key and the stage use the same)."""
        with self.lock:
            if job.aoi_id not in self.items:
                self.items[job.aoi_id] = find_items(self.scenes, job.geometry)
            return self.items[job.aoi_id]

    def composite_key(self, job: AoiJob) -> str:
        files = [p for source in self.scenes for p in source.files]
        features = self.config.classify.features.model_dump(mode="json") if self.config.classify else None
        items = {key: [stac.item_identity(item) for item in found] for key, found in self.stac_items(job).items()}
        return provenance.stage_key(
            "composite", config=self._config("ingest", "cloud_mask", "composite"), buffer_m=self.config.aoi.buffer_m,
            features=features, aoi=job.geometry.to_wkt().tolist(), inputs=self._files(files),
            **({"stac_items": items} if items else {}))

    def needs_composites(self, job: AoiJob) -> bool:
        try:
            key = self.composite_key(job)
        except PipelineError:  # e.g. a STAC search that fails: the AOI fails (and is reported) in its stage
            return True
        return "composite" in self.force or self.stamps.up_to_date(job.aoi_id, "composite", key) is None

    def searched_items(self, job: AoiJob) -> dict[str, list] | None:
        """The AOI's STAC items if their search has succeeded, else None."""
        with self.lock:
            return self.items.get(job.aoi_id)

    def _upstream(self, aoi_id: str, *names: str) -> dict:
        return {name: self.stamps.read(aoi_id, name)["outputs"] for name in names}

    # ----------------------------------------------------------------------------- stages
    def stage(self, job: AoiJob, name: str, key: str, body: Callable[[], dict],
              upstream: dict | None = None) -> dict:
        """Run `body` unless the stage is up to date; record it; returns its facts."""
        aoi_id = job.aoi_id
        if name not in self.force:
            stamp = self.stamps.up_to_date(aoi_id, name, key)
            if stamp is not None:
                self.ledger.replace("aois", aoi_id, "stages", name, value={
                    "status": "done", "cached": True, "key": key, **stamp["facts"], "outputs": stamp["outputs"]})
                self.result.stages_cached += 1
                self.progress(aoi_id, name, "cached")
                return stamp["facts"]
        self.stamps.clear(aoi_id, name)
        self.ledger.replace("aois", aoi_id, "stages", name, value={"status": "running", "key": key})
        self.progress(aoi_id, name, "running")
        start = time.perf_counter()
        try:
            with io.written_files() as written:
                facts = body()
        except Exception:
            status = "interrupted" if self.interrupted else "failed"
            self.ledger.update("aois", aoi_id, "stages", name, status=status,
                               seconds=round(time.perf_counter() - start, 2))
            self.progress(aoi_id, name, status)
            raise
        stamp = self.stamps.write(aoi_id, name, key, written, facts=facts, upstream=upstream or {})
        self.ledger.replace("aois", aoi_id, "stages", name, value={
            "status": "done", "cached": False, "key": key, "seconds": round(time.perf_counter() - start, 2),
            **facts, "outputs": stamp["outputs"], "upstream": upstream or {}})
        self.result.stages_run += 1
        self.ledger.save()
        self.progress(aoi_id, name, "done")
        return facts

    def skip(self, job: AoiJob, name: str, reason: str) -> None:
        self.ledger.replace("aois", job.aoi_id, "stages", name, value={"status": "skipped", "reason": reason})
        self.progress(job.aoi_id, name, "skipped")

    def run_aoi(self, job: AoiJob) -> None:
        aoi_id = job.aoi_id
        self.ledger.update("aois", aoi_id, status="running")
        try:
            self._stages(job)
            self.ledger.update("aois", aoi_id, status="done")
        except Exception as err:  # one AOI's failure must not stop the others
            if self.interrupted:  # its work was cancelled by Ctrl-C: not a failure of the AOI
                self.ledger.update("aois", aoi_id, status="interrupted")
                return
            known = as_pipeline_error(err)  # e.g. a full disk or a deleted scene met by a Dask worker
            message = str(known) if known is not None else f"{type(err).__name__}: {err}"
            self.ledger.update("aois", aoi_id, status="failed", error=message)
            self.result.failed[aoi_id] = message
            self.result.exit_codes[aoi_id] = known.exit_code if known is not None else 1
            log.error("aoi %r failed: %s", aoi_id, message)
            log.debug("%s", traceback.format_exc())
        self.ledger.save()

    def _stages(self, job: AoiJob) -> None:
        config, aoi_id, out = self.config, job.aoi_id, job.out
        chunk = config.ingest.chunk_size
        key = self.composite_key(job)
        ingest_start = time.perf_counter()
        self.ledger.replace("aois", aoi_id, "stages", "ingest", value={"status": "running"})
        facts = self.stage(job, "composite", key, lambda: composite_stage(job, self.scenes, self.stac_items(job)))
        ingest = {k: facts[k] for k in ("scenes", "dropped_empty", "shape", "crs", "variables", "scene_ids")
                  if k in facts}
        cached = self.ledger.manifest["aois"][aoi_id]["stages"]["composite"].get("cached", False)
        self.ledger.replace("aois", aoi_id, "stages", "ingest", value={
            "status": "done", "cached": cached, **ingest,
            "note": "ingest runs lazily inside the composite stage",
            "seconds": round(time.perf_counter() - ingest_start, 2)})
        periods, layers = periods_from_records(facts["period_records"]), facts["layers"]
        for _, event in job.events.iterrows():  # before any classification: the user can stop and fix it
            for text in mixed_periods(event, facts.get("period_scenes", {})):
                log.warning("aoi %r: %s", aoi_id, text)
        composites = read_composites(out, aoi_id, periods, chunk_size=chunk)
        if config.change.segmentation is not None:  # change without labels: needs only the composites
            key = provenance.stage_key("segmentation", config=config.change.segmentation.model_dump(mode="json"),
                                       upstream=self._upstream(aoi_id, "composite"))
            self.stage(job, "segmentation", key, lambda: segmentation_stage(job, composites),
                       upstream={"composite": self.stamps.read(aoi_id, "composite")["key"]})

        if config.classify is None:  # no labels: composites and the video only
            for name in ("classify", "change", "events"):
                self.skip(job, name, "no classify section")
            self._video(job, composites, None, None, upstream=("composite",))
            return

        labels = {str(p): self.input_sha256[str(p)] for p in (config.classify.training_file, config.classify.model_path,
                                                          config.classify.validation_sample,
                                                          config.classify.change_validation_sample)
                  if p is not None and str(p) in self.input_sha256}
        upstream = self._upstream(aoi_id, "composite")
        key = provenance.stage_key("classify", config=self._config("classify", "classes"), inputs=labels,
                                   upstream=upstream)
        groups = facts.get("feature_groups", layers)   # the composite stage's layers by kind
        self.stage(job, "classify", key, lambda: classify_stage(job, composites, groups, self.points),
                   upstream={"composite": self.stamps.read(aoi_id, "composite")["key"]})
        # every area, transition and effect is counted on the cleaned maps; the raw ones give the nodata areas
        class_map = read_class_map(out, aoi_id, periods, chunk_size=chunk, cleaned=True)
        raw_class_map = read_class_map(out, aoi_id, periods, chunk_size=chunk)

        upstream = self._upstream(aoi_id, "classify")
        key = provenance.stage_key("change", config=self._config("change", "classes", "classify"), upstream=upstream)
        self.stage(job, "change", key, lambda: change_stage(job, class_map, raw_class_map),
                   upstream={"classify": self.stamps.read(aoi_id, "classify")["key"]})

        accuracy = json.loads(out.accuracy(aoi_id).read_text())
        key = provenance.stage_key("events", config=self._config("events", "change", "public", "classes"),
                                   events=_rows(job.events), upstream=upstream)
        self.stage(job, "events", key, lambda: events_stage(job, class_map, accuracy, facts.get("period_scenes")),
                   upstream={"classify": self.stamps.read(aoi_id, "classify")["key"]})
        self._video(job, composites, class_map, read_table(out.class_area(aoi_id)),
                    upstream=("composite", "classify", "change"))

    def _video(self, job: AoiJob, composites, class_map, class_area, *, upstream: tuple[str, ...]) -> None:
        """The time-lapse, or a recorded skip where the composites have no bands to show in colour."""
        missing = sorted(set(self.config.video.rgb_bands) - set(composites.data_vars))
        if missing:  # e.g. NDVI-only data
            self.skip(job, "video", f"composites lack {missing} (video.rgb_bands)")
            log.warning("aoi %r: no video, the composites lack %s (video.rgb_bands)", job.aoi_id, missing)
            return
        key = provenance.stage_key("video", config=self._config("video", "public", "classes", "events"),
                                   aoi=_rows(job.aoi.drop("geometry").to_frame().T), events=_rows(job.events),
                                   outline=job.geometry.to_wkt().tolist(), upstream=self._upstream(job.aoi_id, *upstream))
        self.stage(job, "video", key, lambda: make_timelapse(
            self.config, job.aoi, composites, class_map, job.events, class_area=class_area, geometry=job.geometry,
            out=job.out, progress=lambda done, total: job.report("video", done, total, "frames")),
            upstream={name: self.stamps.read(job.aoi_id, name)["key"] for name in upstream})

    # ----------------------------------------------------------------------------- run-level products
    def products(self, event_records: pd.DataFrame | None, event_table: pd.DataFrame) -> None:
        """Event records, exports, QGIS styles, STAC catalog and report, unless up to date."""
        config, out = self.config, OutputLayout(self.config.run_dir)
        manifest = self.ledger.manifest
        stage_outputs = {a: {s: e.get("outputs", {}) for s, e in record.get("stages", {}).items()}
                         for a, record in manifest["aois"].items()}
        key = provenance.stage_key("products", config=self._config("public", "classes", "events", "video"),
                                   stages=stage_outputs, inputs=self.input_sha256 if event_records is not None else {})
        if "products" not in self.force:
            stamp = self.stamps.up_to_date(None, "products", key)
            if stamp is not None:
                manifest["products"] = {"status": "done", "cached": True, "key": key, "outputs": stamp["outputs"]}
                self.result.stages_cached += 1
                return
        # AOIs that failed in this run keep what the earlier products showed of them (read before the
        # products' stamp, which records the public settings they were made with, is cleared)
        keep = kept_aois(RunOutputs(out, manifest))
        self.stamps.clear(None, "products")
        start = time.perf_counter()
        self.ledger.save()  # the products read the run back through its manifest
        with io.written_files() as written:
            if event_records is not None:
                io.write_csv(_event_records_table(config, event_records, event_table), out.event_records)
            # independent of each other (their reads of the rasters release the GIL); the report lists the
            # exports, so it comes after them
            _at_once(lambda: export_run(config.run_dir, copy.deepcopy(manifest), keep=keep),
                     lambda: write_styles(config.run_dir),
                     lambda: write_output_catalog(config.run_dir, copy.deepcopy(manifest), keep=keep))
            write_report(config.run_dir, copy.deepcopy(manifest), keep=keep)
        stamp = self.stamps.write(None, "products", key, written,
                                  facts={"public": self.config.public.model_dump(mode="json")})
        manifest["products"] = {"status": "done", "cached": False, "key": key,
                                "seconds": round(time.perf_counter() - start, 2), "outputs": stamp["outputs"],
                                **({"kept_from_earlier_run": sorted(keep)} if keep else {})}
        self.result.stages_run += 1


def _at_once(*calls: Callable[[], object]) -> None:
    """Run the calls in threads at once, each in a copy of this thread's context (so the files they write
    reach the active `io.written_files`); the first error raised is raised here once all have ended."""
    with ThreadPoolExecutor(len(calls), thread_name_prefix="products") as pool:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    for future in futures:
        future.result()


def _job(config: PipelineConfig, aoi: pd.Series, aoi_crs, event_table: pd.DataFrame, out: OutputLayout) -> AoiJob:
    geometry = aoi_outline(aoi.geometry, aoi_crs, buffer_m=config.aoi.buffer_m)
    aoi_events = (event_table[event_table["aoi_id"] == aoi["aoi_id"]] if len(event_table)
                  else pd.DataFrame(columns=["event_id"]))
    return AoiJob(config=config, aoi=aoi, geometry=geometry, events=aoi_events, out=out)


def _rows(table: pd.DataFrame) -> str:
    """A table's content as a stable string for a stage key."""
    return table.drop(columns="geometry", errors="ignore").to_json(orient="split", date_format="iso", default_handler=str)


def _check_writable(run_dir: Path, output_dir: Path) -> None:
    """Fail before any work if the run folder cannot be created or written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".midr-write-test-"):
            pass
    except OSError as err:
        raise InputError(f"output folder {run_dir} is not writable ({err.strerror or err}); "
                         f"check output_dir ({output_dir}) in the config") from None


def _inputs(config: PipelineConfig, scenes, hashes: provenance.InputHashes) -> list[dict]:
    """Every input file with its size and sha256, and the stages that read it."""
    used: dict[Path, list[str]] = {}

    def add(path, *stage_names):
        if path is not None:
            used.setdefault(Path(path), [])
            used[Path(path)] += [s for s in stage_names if s not in used[Path(path)]]

    add(config.aoi.path or config.events.path, "composite", "classify", "change", "events", "video")  # AOIs
    for source in scenes:
        for path in source.files:
            add(path, "composite")
    if config.classify:
        add(config.classify.training_file, "classify")
        for path in (config.classify.model_path, config.classify.validation_sample,
                     config.classify.change_validation_sample):
            add(path, "classify")
    if config.events:
        add(config.events.path, "events", "video", "products")
    listed = []
    for path, stage_names in used.items():
        listed.append({**hashes(path), "stages": stage_names})
    return listed


def _seeds(config: PipelineConfig) -> dict:
    seeds = {}
    if config.classify:
        seeds["classify.random_state"] = config.classify.random_state
    if config.events:
        seeds["events.random_state"] = config.events.random_state
    return seeds


def _config_record(config: PipelineConfig, event_records: pd.DataFrame | None) -> dict:
    """The config as the manifest records it; in public mode its free texts that reach outputs (video
    title, subtitle, credits) with the events' community and site names withheld, as in the video."""
    record = config.model_dump(mode="json")
    if config.public.enabled and event_records is not None:
        video = record["video"]
        for key in ("title", "subtitle", "credits"):
            video[key] = generalise_text(video[key], event_records)
        video["outro_credits"] = [generalise_text(line, event_records) for line in video["outro_credits"]]
    return record


def _event_records_table(config: PipelineConfig, event_records: pd.DataFrame,
                         linked: pd.DataFrame) -> pd.DataFrame:
    """Every record with the AOI(s) it links to (empty if none), generalised where the output is public."""
    links = (linked.groupby("event_id")["aoi_id"].agg(";".join) if len(linked)
             else pd.Series(dtype=str, name="aoi_id"))
    table = event_records.drop(columns="aoi_id", errors="ignore").merge(
        links.rename("aoi_id"), left_on="event_id", right_index=True, how="left")
    if config.public.enabled:
        table = generalise_events(table, grid_m=config.public.grid_m)
    return table

