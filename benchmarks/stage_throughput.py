"""Seconds, throughput and peak memory of each stage of `midr run` on a synthetic AOI of any size.

    .venv/bin/python benchmarks/stage_throughput.py [--size 1000] [--dates 20] [--years 5]
                                                    [--cluster auto|local] [--workers 2] [--threads 1]
                                                    [--keep DIR]

Generates (once, cached in build/benchmarks/) the demo's synthetic mine landscape at --size x --size
pixels of 30 m with --dates scenes over --years years (pipeline.demo's generator: 7-band uint16 deflate
GeoTIFFs, clouds, labelled points, one resettlement event), writes a config with the demo's settings
(configs/demo.yaml: median composites + 3 indices + NDVI range, random forest of 50 trees of depth <= 16, spatial CV,
events, 1080p video), and runs the pipeline in a subprocess while the memory of its whole process tree
(driver + Dask nanny and worker processes) is sampled every 0.2 s. The subprocess is `_midr_run.py`:
`midr run` (load_config + run_pipeline) plus a time stamp at every stage start and end, so that each
memory sample is attributed to the stage running then.

Prints per stage: seconds (as in manifest.json), work done, rate, peak memory of the process tree while
the stage ran (sum of PSS; sum of RSS in brackets); then end-to-end wall time and peak. Rates:
ingest, composite: Mpx/s of AOI pixels x dates; classify, change, events: AOI pixels x periods;
video: frames/s (1920 x 1080, render + encode).

Then the run's irreducible work (issue 17, floor 1), each part timed alone in this process after the run,
on the same data, with the cores of the machine: decoding every band of every scene over the AOI's
window (GDAL_NUM_THREADS), predicting every pixel-period with the run's saved model (its features are
computed first, untimed; `predict_proba` on the valid pixels, a slice per thread), and writing every
GeoTIFF the run wrote again from memory (`io.write_cog`, same bands, nodata, colours and overviews).
The ratio is the run's end-to-end time without the video stage (timed as frames/s) over their sum.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import (ROOT, demo_data, load_average, machine, measure, peak_between, print_table, run_config,
                     stage_windows, write_config)

STAGES = ("ingest", "composite", "classify", "change", "events", "video")
MIB = 2**20


def stage_rows(manifest: dict, windows: dict, samples: list) -> list[list]:
    rows = []
    for aoi_id, record in manifest["aois"].items():
        stages = record["stages"]
        ny, nx = stages["ingest"]["shape"]
        pixels = ny * nx
        dates = stages["ingest"]["scenes"]
        periods = len(stages["composite"]["periods"])
        for name in STAGES:
            entry = stages.get(name, {})
            seconds = entry.get("seconds")
            label = name if len(manifest["aois"]) == 1 else f"{aoi_id}/{name}"
            if "inside the composite" in entry.get("note", ""):  # lazy ingest, timed with the composites
                rows.append([f"{label} (in composite)", None, f"{nx}x{ny} px x {dates} dates", "-", "-"])
                continue
            if name in ("ingest", "composite"):
                work, amount, unit = f"{nx}x{ny} px x {dates} dates", pixels * dates / 1e6, "Mpx/s"
            elif name == "video":
                frames = entry.get("frames", 0)
                work, amount, unit = f"{frames} frames {'x'.join(map(str, entry.get('size', [])))}", frames, "frames/s"
            else:
                work, amount, unit = f"{nx}x{ny} px x {periods} periods", pixels * periods / 1e6, "Mpx/s"
            rate = f"{amount / seconds:.2f} {unit}" if seconds else "-"
            rss, pss = peak_between(samples, *windows[(aoi_id, name)]) if (aoi_id, name) in windows else (0, 0)
            rows.append([label, seconds, work, rate,
                         f"{pss / MIB:.0f} ({rss / MIB:.0f})" if pss else "-"])
    return rows


def irreducible(config_path: Path, manifest: dict, data) -> dict[str, float]:
    """Seconds of decoding the scenes, predicting every pixel-period and writing the run's GeoTIFFs, each
    timed alone (see the module's docstring)."""
    import numpy as np
    import rasterio
    import rioxarray
    from rasterio.windows import from_bounds

    from pipeline import io
    from pipeline.classify.models import load_model
    from pipeline.classify.stage import run_features
    from pipeline.classify.features import classification_features
    from pipeline.composite.periods import periods_from_records
    from pipeline.composite.stage import read_composites
    from pipeline.config import load_config
    from pipeline.ingest import read_aois
    from pipeline.results import OutputLayout

    config = load_config(config_path)
    out = OutputLayout(config.run_dir)
    aoi_id = next(iter(manifest["aois"]))
    stages = manifest["aois"][aoi_id]["stages"]
    threads = os.cpu_count() or 2
    bounds = read_aois(config.aoi.path, id_field=config.aoi.id_field)
    seconds = {}

    start = time.perf_counter()
    with rasterio.Env(GDAL_NUM_THREADS=str(threads)):
        for scene in data.scenes:
            with rasterio.open(scene) as src:
                src.read(window=from_bounds(*bounds.to_crs(src.crs).total_bounds, src.transform))
    seconds["decode"] = time.perf_counter() - start

    periods = periods_from_records(stages["composite"]["period_records"])
    composites = read_composites(out, aoi_id, periods, chunk_size=config.ingest.chunk_size)
    chosen = run_features(config, stages["composite"]["feature_groups"])
    features = classification_features(composites, chosen).values
    flat = features.reshape(-1, features.shape[-1])
    flat = flat[np.isfinite(flat[:, chosen.required]).all(axis=1)]
    model = load_model(out.model(aoi_id).read_bytes())
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(model.predict_proba, np.array_split(flat, 4 * threads)))
    seconds["predict"] = time.perf_counter() - start

    rasters = []
    for path in sorted(config.run_dir.rglob("*.tif")):
        raster = rioxarray.open_rasterio(path).load()
        with rasterio.open(path) as src:
            colormap = src.colormap(1) if src.colorinterp[0].name == "palette" else None
            rasters.append((raster, dict(band_names=[d or f"band {i}" for i, d in enumerate(src.descriptions, 1)],
                                         nodata=src.nodata, colormap=colormap, tags=src.tags())))
    with tempfile.TemporaryDirectory(prefix="midr-rewrite-") as tmp:
        start = time.perf_counter()
        for k, (raster, options) in enumerate(rasters):
            io.write_cog(raster, Path(tmp) / f"{k}.tif", **options)
        seconds[f"write ({len(rasters)} GeoTIFFs)"] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="pixels a side of the generated scenes")
    parser.add_argument("--dates", type=int, default=20, help="scenes in the series (a multiple of --years)")
    parser.add_argument("--years", type=int, default=5, help="calendar years = periods")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cluster", choices=["auto", "local"], default="auto",
                        help="dask.cluster of the run: auto (the default: threads of one process) or local")
    parser.add_argument("--workers", type=int, default=2, help="local: dask.n_workers of the run")
    parser.add_argument("--threads", type=int, default=1, help="local: dask.threads_per_worker of the run")
    parser.add_argument("--keep", type=Path, default=None, help="write the run's outputs here and keep them")
    args = parser.parse_args()

    load_before = load_average()
    data = demo_data(size=args.size, dates=args.dates, years=args.years, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="midr-throughput-") as tmp:
        out = args.keep or Path(tmp)
        config = run_config(data, run_name="throughput", output_dir=out,
                            dask={} if args.cluster == "auto" else
                            {"cluster": "local", "n_workers": args.workers, "threads_per_worker": args.threads})
        config_path = write_config(config, out / "throughput.yaml")
        print(f"running the pipeline on {args.size} x {args.size} px, {args.dates} dates, {args.years} years "
              f"(dask.cluster {args.cluster}) ...", flush=True)
        manifest_path = out / "throughput" / "manifest.json"
        run = measure([sys.executable, ROOT / "benchmarks" / "_midr_run.py", config_path])
        run.check_run("the run", manifest_path)
        manifest = json.loads(manifest_path.read_text())
        print("timing the irreducible parts (decode, predict, write) ...", flush=True)
        parts = irreducible(config_path, manifest, data)
    windows = stage_windows(run.stdout)
    rows = stage_rows(manifest, windows, run.samples)
    staged = sum(r[1] or 0 for r in rows)
    outside = f"stages {staged:.1f} s + start-up/listing/exports {run.seconds - staged:.1f} s"
    rows.append(["end to end", round(run.seconds, 2), outside, "-",
                 f"{run.peak_pss / MIB:.0f} ({run.peak_rss / MIB:.0f})"])
    print()
    cluster = manifest.get("cluster", "?")
    print(f"midr run, {args.size} x {args.size} px scenes, {args.dates} dates over {args.years} years, "
          f"{cluster.get('description', cluster) if isinstance(cluster, dict) else cluster}")
    print_table(["stage", "seconds", "work", "rate", "peak MiB PSS (RSS)"], rows,
                [None, lambda s: f"{s:.2f}", None, None, None])
    video = sum(record["stages"].get("video", {}).get("seconds") or 0 for record in manifest["aois"].values())
    total = sum(parts.values())
    print()
    print("irreducible work, each part alone on the same data: "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in parts.items()) + f"; sum {total:.2f} s")
    print(f"end to end without the video ({video:.2f} s): {run.seconds - video:.2f} s = "
          f"{(run.seconds - video) / total:.2f}x the irreducible work (floor 1 of issue 17: <= 2x)")
    print()
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at start: {load_before}; at end: {load_average()} "
          f"(1 min: {run.load} over the run); the run kept {run.cores_used:.2f} cores busy on average")


if __name__ == "__main__":
    main()
