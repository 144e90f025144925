"""The run lock and the clean-up of temporary files (issue 18, case 5): one run per output folder; a lock
left by a run that is gone is taken over with a message; temporary files of a live writer are left alone.
(tests/runner/test_resume.py tries a second `midr run` on a folder in use.)"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from pipeline import io
from pipeline.runner.lock import RunLocked, remove_partial_files, run_lock


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_of_a_folder_in_use_is_refused_naming_the_first(tmp_path):
    with run_lock(tmp_path) as holder:
        recorded = json.loads((tmp_path / ".midr" / "run.lock").read_text())
        assert recorded["pid"] == os.getpid() and recorded["host"] == socket.gethostname()
        assert recorded["started"] == holder["started"]
        with pytest.raises(RunLocked) as refused:
            with run_lock(tmp_path):
                pytest.fail("two runs held the lock of one folder")
        assert refused.value.exit_code == 2
        assert str(refused.value).startswith(f"another run is writing to {tmp_path} (pid {os.getpid()} on "
                                             f"{socket.gethostname()}, started {holder['started']}")
    assert not (tmp_path / ".midr" / "run.lock").exists()  # released at the end
    with run_lock(tmp_path):  # and free again
        pass


def test_a_lock_left_by_a_dead_run_is_taken_over_with_a_message(tmp_path, caplog):
    (tmp_path / ".midr").mkdir()
    gone = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00",
            "command": "midr run old.yaml"}
    (tmp_path / ".midr" / "run.lock").write_text(json.dumps(gone))
    with caplog.at_level(logging.WARNING, logger="pipeline.runner.lock"), run_lock(tmp_path):
        assert json.loads((tmp_path / ".midr" / "run.lock").read_text())["pid"] == os.getpid()
    assert [r.getMessage() for r in caplog.records] == [
        f"took over the run lock of {tmp_path} (run pid {gone['pid']} on {gone['host']}, started "
        f"2026-01-01T00:00:00+00:00: midr run old.yaml): that run is no longer running"]


def test_the_clean_up_removes_only_temporary_files_whose_writer_is_gone(tmp_path):
    final = tmp_path / "aoi" / "classes" / "2018.tif"
    final.parent.mkdir(parents=True)
    live = io.part_path(final)  # this process is writing it
    dead = final.with_name(f".2019.part-{_dead_pid()}-{live.name.split('-')[-1]}")
    old_style = final.with_name(".2020.part.tif")
    for path in (live, dead, old_style, final):
        path.write_bytes(b"x")
    assert io.part_writer(live.name) == (os.getpid(), True)
    removed = remove_partial_files(tmp_path)
    assert sorted(removed) == sorted([dead, old_style])
    assert live.exists() and final.exists()
