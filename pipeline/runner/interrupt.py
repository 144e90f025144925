"""Ctrl-C: one interrupt stops the run within seconds, cleanly.

The AOIs run in threads of this process, each waiting on the Dask cluster; only the main thread gets
the KeyboardInterrupt. `run_aois` waits for them in a way a Ctrl-C interrupts, then marks the run
interrupted (`on_interrupt`), drops the AOIs not yet started and lets the KeyboardInterrupt go on: the
cluster's context (`pipeline.runner.cluster.dask_client`) then closes the client, which cancels every
Dask future, and the cluster. No file gets its final name unless it is complete (every writer writes
to a temporary name first), so the next `midr run` resumes where this one stopped.

`ignoring_interrupts` starts processes (the local cluster's workers) that ignore Ctrl-C, so that a
Ctrl-C in a terminal, which the whole process group receives, does not kill workers mid-task: the run
stops them itself, in order.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

__all__ = ["run_aois", "ignoring_interrupts", "closing_quietly_on_interrupt", "INTERRUPTED_EXIT_CODE"]

log = logging.getLogger(__name__)

INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

Job = TypeVar("Job")


def run_aois(run_one: Callable[[Job], None], jobs: Sequence[Job], *, parallel: int,
             on_interrupt: Callable[[], None]) -> None:
    """`run_one(job)` for every job, `parallel` at a time, in threads; returns when all are done.

    On KeyboardInterrupt (Ctrl-C): `on_interrupt()`, the jobs not yet started are cancelled, the running
    ones are left to fail as their Dask futures are cancelled (the pool is not waited for), and the
    KeyboardInterrupt is raised again."""
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="aoi")
    futures = [pool.submit(run_one, job) for job in jobs]
    try:
        pending = set(futures)
        while pending:  # short waits: the main thread stays responsive to signals
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # run_one records its own failures; anything raised here is a bug
    except KeyboardInterrupt:
        log.warning("interrupted: cancelling the running work")
        on_interrupt()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """Ignore SIGINT while the block starts processes, which inherit it; restored afterwards. A no-op
    outside the main thread (only it may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _silence_logs() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def closing_quietly_on_interrupt(client) -> Iterator[None]:
    """Around the use of a Dask client: on Ctrl-C, quieten the logs of the workers and of this process
    (the workers' connections break as the cluster closes, which they would report as errors), then let
    the interrupt close the client (its futures are cancelled) and the cluster."""
    try:
        yield
    except KeyboardInterrupt:
        _silence_logs()

        def quieten_workers() -> None:
            with contextlib.suppress(Exception):
                client.run(_silence_logs, on_error="ignore")

        helper = threading.Thread(target=quieten_workers, daemon=True)  # a busy worker may answer late:
        helper.start()                                                   # never wait more than a moment
        helper.join(timeout=1.0)
        raise
