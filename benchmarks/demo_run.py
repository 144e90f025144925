"""Run the demo as a user would and print what it cost and how good it is.

    make benchmark            (or: .venv/bin/python benchmarks/demo_run.py [CONFIG])

Prints: wall time of `midr run`, peak memory of the whole process tree (driver + Dask workers, sampled
every 0.2 s), per-stage seconds from the manifest, and against the generator's truth: overall accuracy
per period and the mining-class area error of the first and last period.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import rioxarray

from pipeline.change import pixel_area_ha
from pipeline.classify import compare_with_reference
from pipeline.config import load_config
from pipeline.results import open_run

ROOT = Path(__file__).resolve().parents[1]
MINING = 6


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def run_and_measure(config_path: Path) -> tuple[float, int, int]:
    midr = Path(sys.executable).with_name("midr")
    start = time.perf_counter()
    process = psutil.Popen([str(midr), "run", str(config_path)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, _tree_rss(process))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode:
        sys.exit(f"midr run failed ({process.returncode}):\n{stderr}")
    return time.perf_counter() - start, peak, process.returncode


def main() -> None:
    config_path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "configs" / "demo.yaml"
    config = load_config(config_path)
    truth_dir = config.classify.training.parent / "truth"
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB")
    seconds, peak, _ = run_and_measure(config_path)
    print(f"midr run {config_path.name}: {seconds:.1f} s wall, peak memory {peak / 2**20:.0f} MiB "
          "(driver + workers)")
    run = open_run(config.run_dir)
    for aoi_id in run.aoi_ids:
        stages = run.manifest["aois"][aoi_id]["stages"]
        print(f"{aoi_id} stages (s): " + ", ".join(f"{k} {v['seconds']:.1f}" for k, v in stages.items()))
        print(f"{aoi_id} hold-out accuracy: {run.accuracy(aoi_id)['overall_accuracy']:.3f}")
        if not truth_dir.exists():
            continue
        class_map = run.class_map(aoi_id).compute()
        area = run.class_area(aoi_id).set_index(["period", "class_code"])["area_ha"]
        accuracies = []
        for period in run.periods(aoi_id):
            truth = rioxarray.open_rasterio(truth_dir / f"{period}.tif").squeeze("band", drop=True)
            accuracies.append(compare_with_reference(class_map.sel(period=period), truth,
                                                     run.classes)["overall_accuracy"])
        print(f"{aoi_id} accuracy vs truth: min {min(accuracies):.3f}, mean {np.mean(accuracies):.3f} "
              f"over {len(accuracies)} periods")
        for period in (run.periods(aoi_id)[0], run.periods(aoi_id)[-1]):
            truth = rioxarray.open_rasterio(truth_dir / f"{period}.tif").squeeze("band", drop=True)
            truth = truth.sel(x=class_map.x, y=class_map.y, method="nearest").values
            mapped = class_map.sel(period=period).values
            true_ha = ((truth == MINING) & (mapped != 255)).sum() * pixel_area_ha(class_map)
            print(f"{aoi_id} mining area {period}: mapped {area[period, MINING]:.1f} ha, truth {true_ha:.1f} ha "
                  f"({(area[period, MINING] / true_ha - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
