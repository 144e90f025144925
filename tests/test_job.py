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

