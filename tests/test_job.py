"""Progress inside a stage: each finished task is counted as it finishes, on any scheduler."""

from __future__ import annotations

import dask
import pytest

from pipeline.job import compute_with_progress


def _tasks(n: int) -> list:
    inputs = dask.delayed(lambda: 10)()  # shared by every task, computed once
    return [dask.delayed(lambda x, i: x + i)(inputs, i) for i in range(n)]


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_local_schedulers_count_each_task_and_keep_the_order(scheduler):
    seen: list[int] = []
    with dask.config.set(scheduler=scheduler):
        results = compute_with_progress(_tasks(5), seen.append)
    assert results == [10, 11, 12, 13, 14]
    assert seen == [1, 2, 3, 4, 5]


def test_a_distributed_client_counts_each_future_as_it_completes():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster):
        seen: list[int] = []
        results = compute_with_progress(_tasks(4), seen.append)
    assert results == [10, 11, 12, 13] and seen == [1, 2, 3, 4]


def test_without_a_callback_it_is_dask_compute():
    assert compute_with_progress(_tasks(2)) == [10, 11] and compute_with_progress([]) == []


def test_rasters_written_from_one_graph_compute_what_they_share_once():
    import threading

    import numpy as np
    import xarray as xr

    from pipeline.job import raster_tasks

    calls, lock = [], threading.Lock()

    def model(block):  # stands for the forest: class and confidence of a block in one call
        if block.size:  # (not Dask's call on an empty block to learn the output's type)
            with lock:
                calls.append(block.shape)
        return np.stack([block * 2, block + 1], axis=-1)

    values = dask.array.from_array(np.arange(2 * 6 * 4, dtype="float32").reshape(2, 6, 4), chunks=(1, 3, 2))
    both = values.map_blocks(model, new_axis=3, chunks=(*values.chunks, (2,)), dtype="float32")
    grid = {"y": np.arange(6.0), "x": np.arange(4.0)}
    rasters = [xr.DataArray(both[p, ..., k], dims=("y", "x"), coords=grid, name=f"layer{k}")
               for p in range(2) for k in range(2)]
    rasters.append(xr.DataArray(np.ones((6, 4)), dims=("y", "x"), coords=grid))  # in memory: passed as it is
    tasks = raster_tasks(lambda raster, scale, offset=0: (raster.name, raster.values * scale + offset), rasters,
                         [((10,), {"offset": k}) for k in range(5)])
    results = dask.compute(*tasks, scheduler="threads")
    assert len(calls) == 2 * 2 * 2     # each of the 8 blocks once, not once per raster that reads it
    expected = values.compute()
    for (name, got), (p, k) in zip(results, [(0, 0), (0, 1), (1, 0), (1, 1)]):
        assert name == f"layer{k}"
        plain = expected[p] * 2 if k == 0 else expected[p] + 1
        np.testing.assert_array_equal(got, plain * 10 + 2 * p + k)
    np.testing.assert_array_equal(results[4][1], np.full((6, 4), 14.0))
