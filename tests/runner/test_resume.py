"""Caching and resume: a run killed at any moment and restarted ends with the files of an uninterrupted
run; a finished run does no work a second time; --force recomputes; provenance of any output."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import MIDR, midr

# where to kill: (stage that must have finished, what to wait for under the run folder)
KILL_POINTS = {
    "composite": "demo_mine/composites/2017.tif",     # composites half written
    "classify": "demo_mine/.midr/composite.json",    # composites done, classification running
    "change": "demo_mine/.midr/classify.json",
    "events": "demo_mine/.midr/change.json",
    "video": "demo_mine/.midr/events.json",
    "products": "demo_mine/.midr/video.json",        # exports being written
}


def _hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of every output file but the manifest (it holds timings) and the stage stamps."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != "manifest.json"
            and ".midr" not in p.relative_to(run_dir).parts}


def _kill_when(config: Path, marker: Path, timeout: float = 300) -> bool:
    """Start `midr run CONFIG`; SIGKILL it (and its Dask workers) as soon as `marker` exists.
    Returns False if the run finished first."""
    process = subprocess.Popen([MIDR, "run", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if marker.exists():
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return True
            if process.poll() is not None:
                return False
            time.sleep(0.02)
        raise AssertionError(f"{marker} did not appear within {timeout} s")
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


def test_a_run_killed_at_a_random_stage_resumes_to_the_same_files(demo_run, fresh_run_dir):
    run_dir, reference = fresh_run_dir
    seed = int(os.environ.get("MIDR_KILL_SEED", time.time_ns() % 10_000))
    stage = random.Random(seed).choice(list(KILL_POINTS))
    why = f"killed during {stage} (MIDR_KILL_SEED={seed} reproduces this choice)"
    config = demo_run / "config.yaml"

    assert _kill_when(config, run_dir / KILL_POINTS[stage]), f"the run finished before the kill; {why}"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "running", why  # the killed run's manifest says it did not finish

    resumed = midr("run", str(config))
    assert resumed.returncode == 0, f"{why}\n{resumed.stderr}"
    assert not list(run_dir.rglob(".*.part*")), why
    expected, found = _hashes(reference), _hashes(run_dir)
    assert sorted(found) == sorted(expected), why
    assert [name for name in expected if found[name] != expected[name]] == [], why
    stages = json.loads((run_dir / "manifest.json").read_text())["aois"]["demo_mine"]["stages"]
    before = list(KILL_POINTS).index(stage)
    for name in list(KILL_POINTS)[:before]:  # what was finished before the kill is reused, not redone
        if name != "products":
            assert stages[name]["cached"] is True, f"{name} recomputed; {why}"

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
