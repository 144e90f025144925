"""Run the demo as a user would and print what it cost and how good it is.

    make benchmark            (or: .venv/bin/python benchmarks/demo_run.py [CONFIG])

Prints: wall time of `midr run`, peak memory of the whole process tree (driver + Dask workers, sampled
every 0.2 s; `_common.measure`), per-stage seconds from the manifest, and against the generator's
truth: overall accuracy per period and the mining-class area error of the first and last period.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rioxarray

from pipeline.ingest import pixel_area_ha
from pipeline.classify import compare_with_reference
from pipeline.config import load_config
from pipeline.results import open_run

from _common import ROOT, load_average, machine, measure

MINING = 6


def main() -> None:
    config_path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "configs" / "demo.yaml"
    config = load_config(config_path)
    truth_dir = config.classify.training.parent / "truth"
    print(f"machine: {machine()}; load average before: {load_average()}")
    # --force all: time the work, not a check that the outputs are up to date
    measured = measure([Path(sys.executable).with_name("midr"), "run", config_path, "--force", "all"]).check("midr run")
    print(f"midr run {config_path.name}: {measured.seconds:.1f} s wall, peak memory "
          f"{measured.peak_pss / 2**20:.0f} MiB PSS ({measured.peak_rss / 2**20:.0f} MiB RSS; driver + workers); "
          f"load average after: {load_average()}")
    run = open_run(config.run_dir)
    for aoi_id in run.aoi_ids:
        stages = run.manifest["aois"][aoi_id]["stages"]
        print(f"{aoi_id} stages (s): " + ", ".join(f"{k} {v.get('seconds', 0):.1f}"
                                                    + (" (cached)" if v.get("cached") else "")
                                                    for k, v in stages.items()))
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
