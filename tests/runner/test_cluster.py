"""Where the work runs: an existing scheduler by address, an HPC batch cluster's job script, the memory plan."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import midr
from pipeline.runner import budget
from pipeline.runner.cluster import jobqueue_cluster, where_it_runs
from pipeline.config import DaskConfig

DASK = str(Path(sys.executable).with_name("dask"))


def _tiny_config(tmp_path: Path, scene_files, aoi_file, **extra: str) -> Path:
    """Composites and a video (no classification) of the 10 x 10 test scenes."""
    lines = ["run_name: tiny", f"output_dir: {tmp_path / 'outputs'}", f"aoi: {{path: {aoi_file}}}",
             f"ingest: {{scenes: '{scene_files[0].parent}/scene_*.tif', scale: 0.0001, nodata: 0, chunk_size: 64}}",
             "cloud_mask: {mask_band: mask, mask_values: [1]}",
             "video: {width: 320, height: 180, fps: 2, seconds_per_period: 1, intro_seconds: 0, outro_seconds: 0}",
             *[f"{k}: {v}" for k, v in extra.items()]]
    path = tmp_path / "tiny.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def scheduler_address(tmp_path):
    """A Dask scheduler and one worker started as processes on localhost, as on a cluster."""
    file = tmp_path / "scheduler.json"
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        processes.append(subprocess.Popen([DASK, "worker", "--scheduler-file", str(file), "--nworkers", "1",
                                           "--nthreads", "2", "--memory-limit", "2GiB", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield json.loads(file.read_text())["address"]
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def test_a_run_uses_an_existing_scheduler_by_address(tmp_path, scene_files, aoi_file, scheduler_address):
    config = _tiny_config(tmp_path, scene_files, aoi_file)
    result = midr("run", str(config), "--scheduler", scheduler_address)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "outputs" / "tiny" / "manifest.json").read_text())
    assert manifest["cluster"]["description"].startswith(f"Dask scheduler {scheduler_address} (1 workers, 2 threads)")
    assert manifest["aois"]["mine_a"]["stages"]["composite"]["periods"] == ["2020", "2021"]
    assert (tmp_path / "outputs" / "tiny" / "mine_a" / "composites" / "2021.tif").is_file()


def test_by_default_a_run_works_on_threads_of_one_process_and_says_why(tmp_path, scene_files, aoi_file):
    result = midr("run", str(_tiny_config(tmp_path, scene_files, aoi_file)))
    assert result.returncode == 0, result.stderr
    cluster = json.loads((tmp_path / "outputs" / "tiny" / "manifest.json").read_text())["cluster"]
    assert cluster["mode"] == "threads" and cluster["workers"] == 1 and cluster["threads"] >= 1
    assert "cluster: auto on one machine" in cluster["reason"]
    logged = " ".join(result.stderr.split())  # as the log shows it, without its line wrapping
    assert f"running on {cluster['threads']} threads in this process (no cluster): cluster: auto" in logged
    assert "Dask dashboard" not in result.stderr


@pytest.mark.parametrize(("settings", "scheduler", "mode", "why"), [
    ({}, None, "threads", "cluster: auto on one machine"),
    ({"n_workers": 3}, None, "local", "dask.n_workers set"),
    ({"memory_limit": "8GiB"}, None, "local", "dask.memory_limit set"),
    ({"cluster": "local"}, None, "local", "dask.cluster: local"),
    ({"cluster": "threads", "n_workers": 3}, None, "threads", "dask.cluster: threads"),
    ({"cluster": "slurm"}, None, "slurm", "dask.cluster: slurm"),
    ({"scheduler": "tcp://10.0.0.5:8786"}, None, "scheduler", "(dask.scheduler)"),
    ({}, "tcp://10.0.0.5:8786", "scheduler", "(--scheduler)"),
])
def test_where_a_run_works_follows_the_config_and_says_why(settings, scheduler, mode, why):
    chosen, reason = where_it_runs(DaskConfig(**settings), scheduler)
    assert chosen == mode and why in reason


def test_the_local_cluster_prints_its_dashboard_link(tmp_path, scene_files, aoi_file):
    config = _tiny_config(tmp_path, scene_files, aoi_file, dask="{n_workers: 1, memory_limit: 1GiB}")
    result = midr("run", str(config))
    assert result.returncode == 0, result.stderr
    assert "Dask dashboard: http://" in result.stderr


@pytest.mark.parametrize("kind, expected", [
    ("slurm", ["#SBATCH -p short", "#SBATCH -A mining-lab", "#SBATCH -t 01:30:00", "#SBATCH --qos=normal",
               "#SBATCH --mem=64G", "#SBATCH -n 1", "#SBATCH --cpus-per-task=16"]),
    ("pbs", ["#PBS -q short", "#PBS -A mining-lab", "#PBS -l walltime=01:30:00", "#PBS -l select=1:ncpus=16:mem=64GB"]),
])
def test_an_hpc_cluster_job_script_follows_the_config(kind, expected):
    settings = DaskConfig(cluster=kind, dashboard=False, jobqueue={
        "jobs": 3, "cores": 16, "memory": "64GiB", "processes": 2, "queue": "short", "account": "mining-lab",
        "walltime": "01:30:00", "job_extra_directives": ["--qos=normal"] if kind == "slurm" else [],
        "job_script_prologue": ["source /home/me/midr/.venv/bin/activate"]})
    with jobqueue_cluster(settings) as cluster:
        script = cluster.job_script()
    for line in expected:
        assert line in script, script
    assert "source /home/me/midr/.venv/bin/activate" in script
    assert "--nthreads 8 --memory-limit 32.00GiB --nworkers 2" in script  # a job's 64 GiB shared by 2 workers


def test_a_run_that_cannot_fit_in_memory_says_so_before_it_starts(tmp_path, scene_files, aoi_file):
    config = _tiny_config(tmp_path, scene_files, aoi_file, dask="{n_workers: 1, memory_limit: 10KiB, dashboard: false}")
    result = midr("run", str(config))
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    assert "aoi 'mine_a': the run does not fit in memory" in result.stderr
    assert "10.00 kiB (dask.memory_limit)" in result.stderr, message
    assert not (tmp_path / "outputs" / "tiny" / "mine_a").exists()  # nothing computed or written


def test_the_memory_estimate_follows_chunks_and_scenes_per_period():
    kwargs = dict(shape=(2000, 2000), chunk=(512, 512), n_bands=7, n_layers=10, threads_per_worker=1)
    small = budget.estimate(max_dates_per_period=4, **kwargs)
    denser = budget.estimate(max_dates_per_period=16, **kwargs)
    assert small["task_bytes"] == 512 * 512 * 4 * 7 * 4 * 3
    assert denser["task_bytes"] == 4 * small["task_bytes"]  # more scenes in a period: more memory per task
    assert small["period_bytes"] == denser["period_bytes"] == 2000 * 2000 * 10 * 4 * 2  # not the series' length
    assert small["worker_bytes"] == max(small["task_bytes"], small["period_bytes"])
