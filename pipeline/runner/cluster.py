"""Where the work runs: threads of this process, a local Dask cluster, an existing scheduler, an HPC batch cluster.

    dask: {}                                                                        one machine: threads
    dask: {cluster: local, n_workers: 2, threads_per_worker: 1, memory_limit: 4GiB}    worker processes
    dask: {scheduler: tcp://10.0.0.5:8786}                                          an existing cluster
    dask: {cluster: slurm, jobqueue: {jobs: 4, cores: 16, memory: 64GiB, ...}}      SLURM (PBS: cluster: pbs)

On one machine the default (`cluster: auto`) is a thread per core in this process: GDAL, NumPy,
bottleneck and scikit-learn release the GIL, and threads share the scenes without copying them between
processes. Worker processes (`local`) isolate memory (a limit per worker, spilling to disk) and serve a
dashboard; `auto` picks them when `n_workers` or `memory_limit` is set. `where_it_runs` says which was
chosen and why; the run logs it and keeps it in the manifest.

`dask_client` yields a `ClusterInfo`: what the run prints and records, and the memory each worker may
use, against which the run's memory plan (`pipeline.budget`) is checked before any work starts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import dask
import psutil
from dask.utils import format_bytes, parse_bytes

from pipeline.config import DaskConfig
from pipeline.errors import ConfigError, PipelineError
from pipeline.runner.interrupt import closing_quietly_on_interrupt, ignoring_interrupts

__all__ = ["ClusterInfo", "dask_client", "jobqueue_cluster", "where_it_runs"]

log = logging.getLogger(__name__)

DEFAULT_WORKERS, DEFAULT_WORKER_MEMORY = 2, "4GiB"  # a local cluster's, where the config sets none


class SchedulerUnreachable(PipelineError):
    """The configured scheduler address does not answer."""

    exit_code = 2


@dataclass(frozen=True)
class ClusterInfo:
    description: str          # one line for the log and the manifest
    workers: int              # worker processes (threads mode: 1)
    threads: int              # threads over all workers
    worker_memory: int        # bytes one worker may use
    dashboard: str | None = None
    mode: str = "threads"     # threads | local | scheduler | slurm | pbs
    reason: str = ""          # why this mode (cluster: auto chooses)

    def as_record(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "description": self.description, "workers": self.workers,
                "threads": self.threads, "worker_memory": format_bytes(self.worker_memory),
                "dashboard": self.dashboard}


def where_it_runs(settings: DaskConfig, scheduler: str | None = None) -> tuple[str, str]:
    """(mode, reason): `scheduler`, `slurm`, `pbs`, `local` (worker processes) or `threads`."""
    if scheduler or settings.scheduler:
        return "scheduler", "an existing scheduler was named (" + ("--scheduler" if scheduler else "dask.scheduler") + ")"
    if settings.cluster != "auto":
        return settings.cluster, f"dask.cluster: {settings.cluster}"
    asked = [key for key in ("n_workers", "memory_limit") if getattr(settings, key) is not None]
    if asked:
        return "local", (f"cluster: auto with dask.{' and dask.'.join(asked)} set: worker processes, each with "
                         "its own memory limit")
    return "threads", ("cluster: auto on one machine: a thread per core in one process (the scenes are not "
                       "copied between processes); set dask.n_workers or dask.memory_limit for worker processes")


@contextlib.contextmanager
def dask_client(settings: DaskConfig, scheduler: str | None = None) -> Iterator[ClusterInfo]:
    """Run the block on Dask: an existing scheduler (address), a batch cluster, a local cluster, or threads."""
    address = scheduler or settings.scheduler
    mode, reason = where_it_runs(settings, scheduler)
    if mode == "threads":
        threads = psutil.cpu_count() or 1
        with dask.config.set(scheduler="threads", num_workers=threads):
            yield ClusterInfo(f"{threads} threads in this process (no cluster)", 1, threads,
                              psutil.virtual_memory().total, mode=mode, reason=reason)
        return
    from distributed import Client, LocalCluster

    if address is not None:
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {address} ({err}); check the "
                                       "address (--scheduler or dask.scheduler) and that the scheduler runs") from None
        with client:
            workers = client.scheduler_info(n_workers=-1)["workers"].values()
            if not workers:
                client.wait_for_workers(1, timeout=60)
                workers = client.scheduler_info(n_workers=-1)["workers"].values()
            memory = min((w.get("memory_limit") or psutil.virtual_memory().total) for w in workers)
            threads = sum(w.get("nthreads", 1) for w in workers)
            with closing_quietly_on_interrupt(client):
                yield ClusterInfo(f"Dask scheduler {address} ({len(workers)} workers, {threads} threads)",
                                  len(workers), threads, memory, client.dashboard_link, mode=mode, reason=reason)
        return
    if settings.cluster in ("slurm", "pbs"):
        with jobqueue_cluster(settings) as cluster, Client(cluster) as client:
            jobs = settings.jobqueue
            cluster.scale(jobs=jobs.jobs)
            log.info("submitted %d %s jobs; waiting for the first worker", jobs.jobs, settings.cluster.upper())
            client.wait_for_workers(1, timeout=None)
            workers = jobs.jobs * jobs.processes
            with closing_quietly_on_interrupt(client):
                yield ClusterInfo(f"{settings.cluster.upper()} cluster: {jobs.jobs} jobs x {jobs.processes} "
                                  f"worker(s), {jobs.cores} cores and {jobs.memory} per job", workers,
                                  jobs.jobs * jobs.cores, parse_bytes(jobs.memory) // jobs.processes,
                                  client.dashboard_link, mode=mode, reason=reason)
        return
    workers, memory = settings.n_workers or DEFAULT_WORKERS, settings.memory_limit or DEFAULT_WORKER_MEMORY
    with ignoring_interrupts():  # workers that ignore Ctrl-C: the run closes them itself (runner.interrupt)
        local = LocalCluster(n_workers=workers, threads_per_worker=settings.threads_per_worker,
                             memory_limit=memory, processes=True,
                             dashboard_address=":0" if settings.dashboard else None,
                             silence_logs=logging.ERROR)
    with local as cluster, Client(cluster) as client, closing_quietly_on_interrupt(client):
        yield ClusterInfo(f"local Dask cluster: {workers} workers x {settings.threads_per_worker} "
                          f"thread(s), {memory} each", workers, workers * settings.threads_per_worker,
                          parse_bytes(memory), client.dashboard_link if settings.dashboard else None,
                          mode=mode, reason=reason)


def jobqueue_cluster(settings: DaskConfig):
    """The dask-jobqueue cluster of the config (no job submitted until it is scaled).

    `jobqueue_cluster(cfg).job_script()` shows the batch script each job will run.
    """
    try:
        from dask_jobqueue import PBSCluster, SLURMCluster
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ConfigError("dask.cluster: slurm/pbs need the dask-jobqueue package") from None
    jobs = settings.jobqueue
    kind = {"slurm": SLURMCluster, "pbs": PBSCluster}[settings.cluster]
    options = dict(cores=jobs.cores, memory=jobs.memory, processes=jobs.processes, walltime=jobs.walltime,
                   job_extra_directives=list(jobs.job_extra_directives),
                   job_script_prologue=list(jobs.job_script_prologue), silence_logs="error",
                   scheduler_options={"dashboard_address": ":0"} if settings.dashboard else {})
    for key in ("queue", "account", "local_directory", "interface"):
        if getattr(jobs, key) is not None:
            options[key] = getattr(jobs, key)
    return kind(**options)
