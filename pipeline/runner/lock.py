"""One run at a time per output folder: the run lock, and the clean-up of what dead writers left.

    <run_dir>/.midr/run.lock     {"pid": ..., "host": ..., "started": ..., "command": ...}

`run_lock(run_dir)` holds an exclusive `flock` on the lock file for the whole run, and writes into it who
holds it. The kernel releases the lock when the process ends, however it ends (also SIGKILL), so:

- a second run on the same folder finds the lock held and stops at once (RunLocked, exit 2) naming the
  run that holds it (pid, host, start time);
- a lock file left by a run that is gone is taken over, with a message naming that run.

On systems without `fcntl` (Windows) the pid in the file decides: a lock of a live process on this host
refuses, one of a dead process is taken over. Temporary files (`pipeline.io.part_path`) carry their
writer's pid and host: `remove_partial_files` deletes only those whose writer is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil

from pipeline import io
from pipeline.errors import PipelineError

__all__ = ["RunLocked", "run_lock", "remove_partial_files", "LOCK_NAME"]

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"


class RunLocked(PipelineError):
    """Another run is writing to the same output folder."""

    exit_code = 2


def _holder_text(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
            + (f": {holder['command']}" if holder.get("command") else ""))


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie, dead but not yet reaped, is not alive)."""
    if pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # it exists, as another user's process
        return True


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[dict]:
    """Hold the run lock of `run_dir` while the block runs; yields what the lock file records.

    Raises RunLocked (exit 2) naming the other run if one holds it. A lock left by a run that is gone
    is taken over with a warning naming that run."""
    path = Path(run_dir) / ".midr" / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.now(UTC).isoformat(timespec="seconds"),
          "command": " ".join(sys.argv[:3])}
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        previous = _acquire(descriptor, path)
        if previous.get("pid"):
            log.warning("took over the run lock of %s (run %s): that run is no longer running", run_dir,
                        _holder_text(previous))
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, (json.dumps(me) + "\n").encode())
        os.fsync(descriptor)
        try:
            yield me
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        os.close(descriptor)  # releases the flock


def _acquire(descriptor: int, path: Path) -> dict:
    """Lock the open lock file; returns the record of a previous holder that is gone ({} if none)."""
    holder = _read_holder(path)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the recorded pid decides
        if holder.get("pid") and holder.get("host") == socket.gethostname() and _alive(int(holder["pid"])) \
                and int(holder["pid"]) != os.getpid():
            raise RunLocked(_refusal(path, holder)) from None
        return holder
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunLocked(_refusal(path, _read_holder(path) or holder)) from None
    return _read_holder(path)


def _refusal(path: Path, holder: dict) -> str:
    run_dir = path.parent.parent
    return (f"another run is writing to {run_dir} ({_holder_text(holder)}); wait for it to finish or stop it, "
            f"or give this config another run_name or output_dir (lock file: {path})")


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files (`.<name>.part-<pid>-<host>.<ext>`) whose writer is gone: written on
    this host by a process that has ended, or on another host (a finished run's batch worker; the run lock
    says no run of this folder is running), or named the old way (`.<name>.part.<ext>`). Returns them."""
    if not Path(run_dir).is_dir():
        return []
    stale = []
    for root, _, files in os.walk(run_dir):
        for name in files:
            if not (name.startswith(".") and ".part" in name):
                continue
            writer = io.part_writer(name)
            if writer is not None and writer[1] and _alive(writer[0]):
                continue  # its writer still runs (e.g. a worker of a run that was killed): leave it
            stale.append(Path(root) / name)
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
