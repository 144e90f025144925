"""Speed-up of `midr run` over four AOIs from one Dask worker to two.

    .venv/bin/python benchmarks/workers_speedup.py [--size 1000] [--dates 20] [--years 5] [--floor 1.7]

Generates (once, cached in build/benchmarks/) the demo's synthetic landscape at --size x --size pixels
with --dates scenes over --years years, and an AOI file with four overlapping windows (each
--aoi-fraction of the scene a side, one in each corner; all four hold the mine, so each AOI gets the
same kinds of work: classes, the resettlement event, a video). Then runs `midr run` twice on the same
config, in a subprocess each, with a fresh output folder:

    dask: {n_workers: 1, threads_per_worker: 1}     and     dask: {n_workers: 2, threads_per_worker: 1}

(everything else as configs/demo.yaml; `dask.parallel_aois`, where the runner has it, left at its
default) and prints both wall times, the peak memory of each process tree and the speed-up against the
floor (default 1.7x). On a 2-core machine shared with other work the speed-up is bounded by the cores
that are actually free: read it together with the load averages printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import (DataSet, demo_data, load_average, machine, measure, print_table, run_config,
                     write_config)

CORNERS = ("nw", "ne", "sw", "se")
MIB = 2**20


def write_four_aois(data: DataSet, path: Path, *, fraction: float) -> Path:
    """Four square AOIs, `fraction` of the scene a side, in the scene's four corners (EPSG:4326)."""
    import geopandas as gpd
    import rasterio
    import shapely

    with rasterio.open(data.scenes[0]) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    side_x, side_y = (right - left) * fraction, (top - bottom) * fraction
    boxes = {"nw": (left, top - side_y, left + side_x, top), "ne": (right - side_x, top - side_y, right, top),
             "sw": (left, bottom, left + side_x, bottom + side_y), "se": (right - side_x, bottom, right, bottom + side_y)}
    inset = 30.0  # one pixel inside the scene edges
    polygons = [shapely.segmentize(shapely.box(x0 + inset, y0 + inset, x1 - inset, y1 - inset), 500.0)
                for x0, y0, x1, y1 in (boxes[c] for c in CORNERS)]
    frame = gpd.GeoDataFrame({"aoi_id": [f"bench_{c}" for c in CORNERS],
                              "name": [f"Benchmark AOI {c.upper()} (synthetic)" for c in CORNERS]},
                             geometry=polygons, crs=crs).to_crs(4326)
    frame.to_file(path, driver="GeoJSON")
    return path


def run_once(data: DataSet, aois: Path, folder: Path, *, workers: int, threads: int) -> dict:
    name = f"workers{workers}"
    config = run_config(data, run_name=name, output_dir=folder, aoi_path=aois,
                        dask={"n_workers": workers, "threads_per_worker": threads})
    config_path = write_config(config, folder / f"{name}.yaml")
    print(f"midr run with {workers} worker(s) x {threads} thread ...", flush=True)
    midr = Path(sys.executable).with_name("midr")
    run = measure([midr, "run", config_path]).check_run(f"midr run ({workers} workers)",
                                                        folder / name / "manifest.json")
    manifest = json.loads((folder / name / "manifest.json").read_text())
    unfinished = sorted(aoi for aoi, record in manifest["aois"].items() if record.get("status") != "done")
    if unfinished:
        sys.exit(f"midr run ({workers} workers): AOIs {unfinished} did not finish; no speed-up to report")
    cluster = manifest.get("cluster", "?")
    stage_seconds = {aoi: sum(s.get("seconds", 0) for s in record["stages"].values()
                              if "inside the composite" not in s.get("note", ""))  # lazy ingest: counted once
                     for aoi, record in manifest["aois"].items()}
    return {"workers": workers, "threads": threads, "seconds": run.seconds, "pss": run.peak_pss,
            "rss": run.peak_rss, "stage_seconds": stage_seconds, "load": run.load,
            "cores": run.cores_used,
            "cluster": cluster.get("description", cluster) if isinstance(cluster, dict) else cluster,
            "parallel_aois": manifest.get("parallel_aois", "n/a (AOIs in turn)")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="pixels a side of the generated scenes")
    parser.add_argument("--dates", type=int, default=20, help="scenes in the series (a multiple of --years)")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--aoi-fraction", type=float, default=0.55, help="side of each AOI / side of the scene")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker in both runs")
    parser.add_argument("--floor", type=float, default=1.7, help="speed-up to report against")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs' outputs here and keep them")
    args = parser.parse_args()

    load_before = load_average()
    data = demo_data(size=args.size, dates=args.dates, years=args.years, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="midr-speedup-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        aois = write_four_aois(data, folder / "four_aois.geojson", fraction=args.aoi_fraction)
        results = [run_once(data, aois, folder, workers=n, threads=args.threads) for n in (1, 2)]
    one, two = results
    print()
    print(f"midr run over 4 AOIs ({round(args.size * args.aoi_fraction)} px a side each) of {args.size} x "
          f"{args.size} px scenes, {args.dates} dates over {args.years} years")
    rows = [[r["cluster"], r["parallel_aois"], r["seconds"], sum(r["stage_seconds"].values()),
             f"{r['pss'] / MIB:.0f} ({r['rss'] / MIB:.0f})", r["cores"], r["load"]] for r in results]
    print_table(["cluster", "parallel_aois", "wall s", "sum of stage s", "peak MiB PSS (RSS)", "cores used",
                 "load 1 min"], rows,
                [None, None, lambda s: f"{s:.1f}", lambda s: f"{s:.1f}", None, lambda c: f"{c:.2f}", None])
    speedup = one["seconds"] / two["seconds"]
    verdict = "meets" if speedup >= args.floor else "is below"
    print(f"speed-up 1 -> 2 workers: {speedup:.2f}x ({verdict} the {args.floor:.1f}x floor); the 1-worker run "
          f"already kept {one['cores']:.2f} cores busy (driver, encoder), so on {os.cpu_count()} cores the most "
          f"to expect is {os.cpu_count() / max(one['cores'], 1):.2f}x")
    per_aoi = {aoi: (one["stage_seconds"][aoi], two["stage_seconds"].get(aoi, np.nan)) for aoi in one["stage_seconds"]}
    print("stage seconds per AOI (1 worker / 2 workers): "
          + ", ".join(f"{aoi} {a:.1f} / {b:.1f}" for aoi, (a, b) in per_aoi.items()))
    print()
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at start: {load_before}; at end: {load_average()}")


if __name__ == "__main__":
    main()
