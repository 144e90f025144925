"""One AOI of a run: what every stage of it needs to know (config, outline, events, where it writes), and
how a stage reports its progress inside (periods written, frames encoded) to whoever shows it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.config import PipelineConfig
from pipeline.results import OutputLayout

__all__ = ["AoiJob", "StepCallback", "compute_with_progress", "raster_tasks"]

# called as step(stage, done, total, unit): `done` of `total` units (e.g. "periods", "frames") of the stage
StepCallback = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class AoiJob:
    """One AOI of a run: its row of the AOI file, its (buffered) outline, its linked events, where it writes."""

    config: PipelineConfig
    aoi: pd.Series
    geometry: gpd.GeoSeries
    events: pd.DataFrame
    out: OutputLayout
    batch: int = 4          # periods computed and written at once (bounded memory: one batch at a time)
    step: StepCallback | None = field(default=None, compare=False, repr=False)

    @property
    def aoi_id(self) -> str:
        return self.aoi["aoi_id"]

    def report(self, stage: str, done: int, total: int, unit: str) -> None:
        """Tell the progress display that `done` of `total` units of `stage` are done."""
        if self.step is not None:
            self.step(stage, done, total, unit)


def raster_tasks(func: Callable, rasters: Sequence[xr.DataArray], arguments: Sequence[tuple[tuple, dict]], *,
                 also: Sequence = ()) -> list:
    """`func(raster, *args, **kwargs)` for each raster and its (args, kwargs), as Dask tasks whose rasters
    come from one graph: what they share is computed once. `also`: more lazy arrays of the same graph
    (e.g. a fact about the inputs the rasters read), each a task giving its NumPy value, after the others.

    `dask.delayed(func)(raster)` would give every task its own copy of its raster's graph (Dask renames
    the keys of a collection passed to a delayed call so that no two calls share them): the class map
    and the confidence of a period would each run the model, and every period of a gap-filled feature
    series would fill the whole series again. Here the rasters are optimised together and each task
    takes its raster's blocks from the shared graph, and runs where they are (on a worker: the pixels
    never travel to the driver). A raster held in memory is passed as it is."""
    lazy = [k for k, raster in enumerate(rasters) if dask.is_dask_collection(raster)]
    with dask.config.set({"optimization.fuse.active": False}):  # linear fusion would copy a shared task into
        optimised = dask.optimize(*(rasters[k].data for k in lazy), *also)  # each chain (the model's)
    shared = dict(zip(lazy, optimised))
    tasks = []
    for k, (raster, (args, kwargs)) in enumerate(zip(rasters, arguments)):
        if k not in shared:
            tasks.append(dask.delayed(func)(raster, *args, **kwargs))
            continue
        frame = {"dims": raster.dims, "coords": {name: c.variable for name, c in raster.coords.items()},
                 "attrs": dict(raster.attrs), "name": raster.name}
        blocks = shared[k].to_delayed(optimize_graph=False).tolist()
        tasks.append(dask.delayed(_on_blocks)(func, blocks, frame, args, kwargs))
    for array in optimised[len(lazy):]:
        tasks.append(dask.delayed(np.block)(array.to_delayed(optimize_graph=False).tolist()))
    return tasks


def _on_blocks(func: Callable, blocks: list, frame: dict, args: tuple, kwargs: dict):
    """`func` called on the raster made of its computed `blocks` (nested lists, as `to_delayed` gives)."""
    raster = xr.DataArray(np.block(blocks), dims=frame["dims"], coords=frame["coords"], attrs=frame["attrs"],
                          name=frame["name"])
    return func(raster, *args, **kwargs)


def compute_with_progress(tasks: Sequence, on_done: Callable[[int], None] | None = None) -> list:
    """`dask.compute(*tasks)`, calling `on_done(n)` each time one more of the tasks has finished.

    On a distributed client the tasks run as futures (one graph: shared inputs are read once) and are
    counted as they complete; on a local scheduler (threads, or none) a Dask callback counts them.
    Returns the results in the order of `tasks`."""
    tasks = list(tasks)
    if on_done is None or not tasks:
        return list(dask.compute(*tasks))
    client = _distributed_client()
    if client is not None:
        from distributed import as_completed

        futures = client.compute(tasks)
        for count, _ in enumerate(as_completed(futures), start=1):
            on_done(count)
        results = client.gather(futures)
        for future in futures:
            future.release()
        return list(results)
    return _compute_locally(tasks, on_done)


def _compute_locally(tasks: list, on_done: Callable[[int], None]) -> list:
    from dask.callbacks import Callback

    keys = {task.key for task in tasks}
    finished: set = set()

    class _Count(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if key in keys and key not in finished:
                finished.add(key)
                on_done(len(finished))

    with _Count():
        results = dask.compute(*tasks)
    if len(finished) < len(tasks):  # keys renamed by optimisation: say the batch is done
        on_done(len(tasks))
    return list(results)


def _distributed_client():
    if dask.config.get("scheduler", None) not in (None, "dask.distributed", "distributed"):
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None
