"""Caching and resume: a run stopped at any stage (SIGKILL, or Ctrl-C) and restarted ends with the files of
an uninterrupted run; a finished run does no work a second time; --force recomputes; provenance of any
output; the run lock keeps a second run out of a folder in use."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import MIDR, midr

# where to stop the run, in the order of the stages: (stage running, signal, what to wait for under the run
# folder). Each stop is made on the run that resumed the one stopped before, so one pass over the small
# demo stops it once at every stage; Ctrl-C (SIGINT, to the process group as a terminal sends it) during
# composite, classify and video, SIGKILL elsewhere
STOP_POINTS = (
    ("composite", signal.SIGINT, "demo_mine/composites/2017.tif"),    # composites half written
    ("classify", signal.SIGINT, "demo_mine/.midr/composite.json"),    # composites done, classification running
    ("change", signal.SIGKILL, "demo_mine/.midr/classify.json"),
    ("events", signal.SIGKILL, "demo_mine/.midr/change.json"),
    ("video", signal.SIGINT, "demo_mine/.midr/events.json"),
    ("products", signal.SIGKILL, "demo_mine/.midr/video.json"),       # exports being written
)
AOI_STAGES = ("composite", "classify", "change", "events", "video")


def _hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of every output file under its final name but the manifest (it holds timings) and the stage
    stamps; temporary files (`.<name>.part-<pid>-<host>.<ext>`) are left out."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != "manifest.json"
            and ".midr" not in p.relative_to(run_dir).parts and ".part" not in p.name}


def _stop_when(config: Path, run_dir: Path, marker: str, how: signal.Signals, *, while_running=None,
               timeout: float = 600) -> tuple[int, str, float]:
    """Start `midr run CONFIG`; as soon as `marker` exists, send `how` to its process group (the run and its
    Dask workers), as Ctrl-C in a terminal does for SIGINT. `while_running(pid)` is called once the run
    holds its lock. Returns (exit code, stderr, seconds from the signal to the exit)."""
    stderr = config.with_name("stopped.log")
    with open(stderr, "w") as log:
        process = subprocess.Popen([MIDR, "run", str(config)], stdout=subprocess.DEVNULL, stderr=log,
                                   start_new_session=True)
    marker, lock = run_dir / marker, run_dir / ".midr" / "run.lock"
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if while_running is not None and lock.is_file() and str(process.pid) in lock.read_text():
                while_running(process.pid)
                while_running = None
            assert process.poll() is None, f"the run ended before {marker} appeared:\n{stderr.read_text()}"
            assert time.monotonic() < deadline, f"{marker} did not appear within {timeout} s"
            time.sleep(0.01)
        sent = time.monotonic()
        os.killpg(process.pid, how)
        code = process.wait(timeout=120)  # a hang guard: one Ctrl-C must be enough (issue 18: it took 12 min)
        return code, stderr.read_text(), time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def fresh_run_dir(demo_run):
    """The fixture's finished run moved aside (restored after the test): the test reruns the same config
    in the same place, so every path and hash in the outputs is comparable."""
    run_dir = demo_run / "outputs" / "demo_small"
    reference = run_dir.with_name("demo_small.reference")
    run_dir.rename(reference)
    yield run_dir, reference
    if run_dir.exists():
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    reference.rename(run_dir)


def test_a_run_stopped_at_every_stage_in_turn_resumes_to_the_same_files(demo_run, fresh_run_dir):
    run_dir, reference = fresh_run_dir
    config = demo_run / "config.yaml"
    expected = _hashes(reference)
    refused = []

    def second_run(pid: int) -> None:  # a second run of the same folder while the first works in it
        import logging

        from pipeline import cli

        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            result = CliRunner().invoke(cli.app, ["run", str(config)])
        finally:
            root.handlers[:], root.level = handlers, level
        refused.append((pid, result.exit_code, result.stderr))

    after_sigkill = False
    for stage, how, marker in STOP_POINTS:
        why = f"stopped by {how.name} during {stage}"
        assert not (run_dir / marker).exists(), why  # the previous stop came before this stage
        stamps = {s: run_dir / "demo_mine" / ".midr" / f"{s}.json" for s in AOI_STAGES}
        stamped = {s: path.stat().st_mtime_ns for s, path in stamps.items() if path.exists()}
        code, stderr, _ = _stop_when(config, run_dir, marker, how,
                                     while_running=second_run if stage == "classify" else None)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        if how == signal.SIGINT:  # one Ctrl-C: exit 130 (no traceback), the manifest says why
            assert code == 130, f"{why}: exit {code}\n{stderr}"
            assert "interrupted: the run stopped" in stderr and "Traceback" not in stderr, stderr
            assert manifest["status"] == "interrupted", why
            # (the stage may not have begun if the signal came just after the one before finished)
            assert manifest["aois"]["demo_mine"]["stages"].get(stage, {}).get("status", "interrupted") \
                == "interrupted", why
            assert not (run_dir / ".midr" / "run.lock").exists(), why  # released on the way out
        else:
            assert code == -signal.SIGKILL and manifest["status"] == "running", why
        if after_sigkill:  # the lock a killed run left is taken over, with a message naming it
            assert "took over the run lock" in stderr and "that run is no longer running" in stderr, stderr
        after_sigkill = how == signal.SIGKILL
        # what was finished before is reused, not redone: its stamp was neither cleared nor written again (the
        # manifest of a killed run may not have been saved since it found them up to date)
        redone = [s for s, mtime in stamped.items()
                  if not stamps[s].exists() or stamps[s].stat().st_mtime_ns != mtime]
        assert redone == [], f"{why}: recomputed {redone}"
        # nothing half-written under a final name: every file there is the uninterrupted run's
        found = _hashes(run_dir)
        assert [name for name in found if found[name] != expected.get(name)] == [], why

    assert refused, "the second run was not tried"
    pid, code, stderr = refused[0]
    assert code == 2 and f"another run is writing to {run_dir} (pid {pid} on" in stderr, stderr

    resumed = midr("run", str(config))
    assert resumed.returncode == 0, resumed.stderr
    assert "took over the run lock" in resumed.stderr  # the products' run was killed
    assert not list(run_dir.rglob(".*.part*"))
    found = _hashes(run_dir)
    assert sorted(found) == sorted(expected)
    assert [name for name in expected if found[name] != expected[name]] == []
    stages = json.loads((run_dir / "manifest.json").read_text())["aois"]["demo_mine"]["stages"]
    assert all(stages[name]["cached"] for name in AOI_STAGES), stages

    again = midr("run", str(config))
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    assert _hashes(run_dir) == expected


def test_force_recomputes_the_named_stage_and_downstream_only_if_its_outputs_change(demo_run):
    config = demo_run / "config.yaml"
    run_dir = demo_run / "outputs" / "demo_small"
    before = _hashes(run_dir)
    result = midr("run", str(config), "--force", "change")
    assert result.returncode == 0, result.stderr
    stages = json.loads((run_dir / "manifest.json").read_text())["aois"]["demo_mine"]["stages"]
    assert stages["change"]["cached"] is False
    # the change tables come out the same, so nothing downstream of them runs again
    assert all(stages[name]["cached"] for name in ("composite", "classify", "events", "video")), stages
    assert "1 stages run" in result.stderr
    assert _hashes(run_dir) == before

    wrong = midr("run", str(config), "--force", "colour")
    assert wrong.returncode == 2 and "--force: unknown stage(s) ['colour']" in wrong.stderr


def test_a_changed_config_section_reruns_the_stages_that_read_it(demo_run):
    text = (demo_run / "config.yaml").read_text()
    config = demo_run / "config_video.yaml"
    config.write_text(text.replace("fps: 4", "fps: 5"))
    try:
        result = midr("run", str(config))
        assert result.returncode == 0, result.stderr
        stages = json.loads((demo_run / "outputs" / "demo_small" / "manifest.json").read_text())["aois"]["demo_mine"]["stages"]
        assert not stages["video"]["cached"] and stages["video"]["fps"] == 5
        assert all(stages[name]["cached"] for name in ("composite", "classify", "change", "events"))
    finally:
        midr("run", str(demo_run / "config.yaml"))  # put the fixture's video back
        config.unlink()


def test_provenance_tells_what_produced_a_file(demo_run):
    run_dir = demo_run / "outputs" / "demo_small"
    result = midr("provenance", str(run_dir / "demo_mine" / "classes" / "2018.tif"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "stage classify" in out and "aoi 'demo_mine'" in out
    assert "training_points.gpkg" in out and "(the file is unchanged)" in out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    training = next(i for i in manifest["inputs"] if i["path"].endswith("training_points.gpkg"))
    assert training["sha256"][:16] in out and manifest["config_sha256"] in out
    assert "scikit-learn" in out and "classify.random_state=42" in out

    composite = midr("provenance", str(run_dir / "demo_mine" / "composites" / "2018.tif")).stdout
    assert "stage composite" in composite and composite.count("scenes/demo_") == 18  # every scene, hashed

    missing = midr("provenance", str(demo_run / "config.yaml"))
    assert missing.returncode == 2 and "not inside a run folder" in missing.stderr
