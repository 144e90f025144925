"""The memory plan of a run, checked before any work starts.

From each AOI's grid, its scene dates and the chunk size it estimates the peak memory of the largest
task (a composite: one chunk of every scene of one period, each band as float32, with working copies)
on a worker, and of a period's finished raster, which the worker that computed it writes. A plan
that does not fit the workers' memory limit stops the run at once, with the chunk size that would fit,
instead of failing hours later. The estimates are deliberately generous (`_WORKING_COPIES`).
"""

from __future__ import annotations

import logging
import math

import pandas as pd
from dask.utils import format_bytes

from pipeline.composite.stage import feature_groups
from pipeline.ingest import sources
from pipeline.runner.cluster import ClusterInfo
from pipeline.errors import PipelineError

__all__ = ["MemoryPlanError", "check", "estimate"]

log = logging.getLogger(__name__)

_WORKING_COPIES = 3      # raw -> scaled float32 -> masked / sorted copy in the median
_USABLE = 0.8            # Dask pauses a worker at 80 % of its memory limit
_FLOAT = 4


class MemoryPlanError(PipelineError):
    """The run would not fit in the workers' memory."""

    exit_code = 2


def estimate(*, shape: tuple[int, int], chunk: tuple[int, int], max_dates_per_period: int, n_bands: int,
             n_layers: int, threads_per_worker: int) -> dict:
    """Peak bytes of one worker: its threads each running a composite task, or one of them writing a
    period's raster (all layers, with the COG writer's copy)."""
    task = chunk[0] * chunk[1] * max_dates_per_period * n_bands * _FLOAT * _WORKING_COPIES
    period = shape[0] * shape[1] * n_layers * _FLOAT * 2
    return {"task_bytes": task, "period_bytes": period, "worker_bytes": max(task * threads_per_worker, period)}


def check(job, scenes, cluster: ClusterInfo, *, items: dict | None = None) -> dict:
    """The AOI's memory plan; raises MemoryPlanError naming the AOI, the need and the fix if it does not fit.

    `items`: the AOI's STAC items per source (searched here when not given). AOIs whose scenes cannot be
    read here are left to fail (and be reported) in their own stage."""
    config = job.config
    try:
        stack, _ = sources.aoi_stack(scenes, job.geometry, ingest_config=config.ingest,
                                     drop=config.cloud_mask.drop, aoi_id=job.aoi_id, items=items)
    except PipelineError as err:
        log.debug("aoi %r: no memory plan (%s)", job.aoi_id, err)
        return {"aoi_id": job.aoi_id, "planned": False}
    shape = (stack.sizes["y"], stack.sizes["x"])
    chunks = stack[next(iter(stack.data_vars))].chunks
    chunk = (max(chunks[1]), max(chunks[2])) if chunks else shape
    times = pd.to_datetime(stack["time"].values)
    per_period = pd.Series(1, index=times).groupby(times.year).sum()
    max_dates = int(per_period.max()) if len(per_period) else 0
    n_bands = len(stack.data_vars)
    n_layers = sum(len(names) for names in feature_groups(config, [str(v) for v in stack.data_vars if v != "mask"])
                   .values()) + 1
    threads = max(1, cluster.threads // max(cluster.workers, 1))
    need = estimate(shape=shape, chunk=chunk, max_dates_per_period=max_dates, n_bands=n_bands,
                    n_layers=n_layers, threads_per_worker=threads)
    plan = {"aoi_id": job.aoi_id, "planned": True, "grid": list(shape), "chunk": list(chunk),
            "max_scenes_per_period": max_dates, "bands": n_bands,
            "worker_need": format_bytes(need["worker_bytes"]), "worker_limit": format_bytes(cluster.worker_memory),
            "period_raster": format_bytes(need["period_bytes"])}
    usable = cluster.worker_memory * _USABLE
    limit, more = (("this machine's memory", "run on a larger machine") if cluster.mode == "threads" else
                   ("dask.memory_limit", "raise dask.memory_limit"))
    if need["period_bytes"] > usable:
        raise MemoryPlanError(
            f"aoi {job.aoi_id!r}: the run does not fit in memory: writing one period of the {shape[0]}x{shape[1]} px "
            f"grid ({n_layers} layers) needs ~{format_bytes(need['period_bytes'])} on a worker, a worker has "
            f"{format_bytes(cluster.worker_memory)} ({limit}); {more}, split the AOI or "
            "use a coarser ingest.grid.resolution")
    if need["task_bytes"] * threads > usable:
        per_pixel = max_dates * n_bands * _FLOAT * _WORKING_COPIES * threads
        fits = int(math.sqrt(usable / per_pixel)) // 64 * 64
        fix = (f"lower ingest.chunk_size to {fits} or {more}" if fits >= 64 else
               f"{more} to at least {format_bytes(int(per_pixel * 64 ** 2 / _USABLE))} with ingest.chunk_size 64")
        raise MemoryPlanError(
            f"aoi {job.aoi_id!r}: the run does not fit in memory: a composite task needs ~"
            f"{format_bytes(need['task_bytes'] * threads)} per worker ({chunk[0]}x{chunk[1]} px chunks x {max_dates} "
            f"scenes in one period x {n_bands} bands x {threads} thread(s)), a worker has "
            f"{format_bytes(cluster.worker_memory)} ({limit}); {fix}")
    return plan
