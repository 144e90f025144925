"""Peak memory of the events stage for one event: a 2,000 x 2,000 px AOI against a 500 x 500 px one.

The events stage reads only the window of the class maps that holds the event's zones (its impact zone
or origin and site zones, and the control ring), so its memory should grow with the zones, not with the
AOI. This script writes synthetic class maps (uint8 COGs, one per year, as the classify stage writes
them) for both sizes, then runs `events.stage.event_tables` for one event at the AOI's centre (a
disaster: impact zone 1.2 km, control ring 1.5-1.75 km; bootstrap 200 draws) in a fresh process per
size, and prints the peak resident memory above the process's memory just before the stage, and the
size of the whole class-map stack (what the stage used to pull onto the driver, twice). The stage reads
the chunks of the class maps that meet the zones' window, whole: its memory follows the chunk size
(ingest.chunk_size) and the number of periods, not the AOI's size.

    .venv/bin/python benchmarks/events_memory.py [--periods 20] [--sizes 500 2000] [--chunk 512]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, load_average, machine, print_table

CONFIG = """\
run_name: bench
aoi: {path: aoi.geojson}
ingest: {scenes: 'scenes/*.tif'}
classify: {training: points.gpkg}
events:
  path: events.csv
  impact_radius_m: 1200
  zone_radius_m: 200
  control_inner_m: 1500
  control_outer_m: 1750
  block_size_m: 90
  n_bootstrap: 200
"""
X0, Y0, RES = 500_000.0, 8_200_000.0, 30.0
CRS = "EPSG:32736"


def write_maps(folder: Path, size: int, n_periods: int) -> None:
    """Class maps of `n_periods` years on a `size` x `size` grid: grass, tree patches, a mudflow at the
    centre from the middle year on."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from pipeline import io

    rng = np.random.default_rng(0)
    base = np.where(rng.random((size, size)) < 0.2, 2, 3).astype("uint8")
    rows, cols = np.mgrid[0:size, 0:size]
    mud = np.hypot(rows - size / 2, cols - size / 2) < 20
    transform = from_origin(X0, Y0, RES, RES)
    for k in range(n_periods):
        values = base.copy()
        if k >= n_periods // 2:
            values[mud] = 6
        profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint8", "crs": CRS,
                   "transform": transform, "nodata": 255, "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "compress": "deflate"}
        path = folder / "classes" / f"{2000 + k}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        with io.atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values, 1)


def child(folder: Path, size: int, n_periods: int, chunk: int) -> dict:
    """In this (fresh) process: the events stage's work for one event; the figures as a dict."""
    import dask
    import numpy as np
    import pandas as pd
    import psutil
    import pyproj
    import rioxarray
    import xarray as xr

    from pipeline.composite.periods import make_periods, period_coords
    from pipeline.config import load_config
    from pipeline.events import normalise_events
    from pipeline.events.stage import event_tables

    dask.config.set(scheduler="threads")
    (folder / "cfg.yaml").write_text(CONFIG)
    config = load_config(folder / "cfg.yaml")
    periods = make_periods([pd.Timestamp(f"{2000 + k}-06-01") for k in range(n_periods)])
    rasters = [rioxarray.open_rasterio(folder / "classes" / f"{p.id}.tif", chunks={"x": chunk, "y": chunk})
               .squeeze("band", drop=True) for p in periods]
    class_map = (xr.concat(rasters, dim="period").assign_coords(period_coords(periods))
                 .drop_vars("spatial_ref", errors="ignore").rio.write_crs(CRS).rio.write_nodata(255))
    centre_x, centre_y = X0 + size * RES / 2, Y0 - size * RES / 2
    lon, lat = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(centre_x, centre_y)
    event = normalise_events(pd.DataFrame([{
        "event_id": "bench", "aoi_id": "bench", "event_type": "disaster displacement",
        "date": f"{2000 + n_periods // 2}-01-15", "mine_lat": lat, "mine_lon": lon}])).iloc[0]
    process = psutil.Process()
    current, samples, running = process.memory_info().rss, [], True

    def sample() -> None:  # resident memory every 5 ms while the stage runs
        while running:
            samples.append(process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    tables = event_tables(config, event, class_map)
    seconds = time.perf_counter() - start
    running = False
    sampler.join()
    peak = max(samples + [process.memory_info().rss])
    impact = tables.impact.iloc[0]
    return {"size": size, "periods": n_periods, "seconds": seconds, "rss_before": current,
            "peak": peak, "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "stage_peak_mib": (peak - current) / 2**20,
            "stack_mib": n_periods * size * size / 2**20, "footprint_ha": float(impact["footprint_ha"]),
            "effect_ha": float(impact["effect_ha"]), "window_px": list(np.shape(tables.footprints["impact"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--chunk", type=int, default=512, help="the class maps' chunks (ingest.chunk_size)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, size, n_periods = Path(args.child[0]), int(args.child[1]), int(args.child[2])
        print(json.dumps(child(folder, size, n_periods, args.chunk)))
        return
    print(f"machine: {machine()}; load average before: {load_average()}; class maps in chunks of {args.chunk} px")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            folder = Path(tmp) / str(size)
            write_maps(folder, size, args.periods)
            done = subprocess.run([sys.executable, __file__, "--chunk", str(args.chunk), "--child", str(folder), str(size),
                                   str(args.periods)],
                                  capture_output=True, text=True, cwd=ROOT, check=False)
            if done.returncode:
                sys.exit(done.stderr)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append([f"{size} x {size}", figures["periods"], f"{figures['stack_mib']:.1f}",
                         "x".join(map(str, figures["window_px"])), f"{figures['stage_peak_mib']:.1f}",
                         f"{figures['peak'] / 2**20:.1f}", f"{figures['seconds']:.2f}",
                         f"{figures['footprint_ha']:.2f}", f"{figures['effect_ha']:.2f}"])
    print_table(["AOI (px)", "periods", "whole stack (MiB)", "zones' window (px)", "stage peak above start (MiB)",
                 "process peak (MiB)", "seconds", "footprint (ha)", "effect (ha)"], rows)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
