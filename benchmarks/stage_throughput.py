"""Seconds, throughput and peak memory of each stage of `midr run` on a synthetic AOI of any size.

    .venv/bin/python benchmarks/stage_throughput.py [--size 1000] [--dates 20] [--years 5]
                                                    [--cluster auto|local] [--workers 2] [--threads 1]
                                                    [--keep DIR]

Generates (once, cached in build/benchmarks/) the demo's synthetic mine landscape at --size x --size
pixels of 30 m with --dates scenes over --years years (pipeline.demo's generator: 7-band uint16 deflate
GeoTIFFs, clouds, labelled points, one resettlement event), writes a config with the demo's settings
(configs/demo.yaml: median composites + 3 indices + NDVI range, random forest of 100 trees, spatial CV,
events, 1080p video), and runs the pipeline in a subprocess while the memory of its whole process tree
(driver + Dask nanny and worker processes) is sampled every 0.2 s. The subprocess is `_midr_run.py`:
`midr run` (load_config + run_pipeline) plus a time stamp at every stage start and end, so that each
memory sample is attributed to the stage running then.

Prints per stage: seconds (as in manifest.json), work done, rate, peak memory of the process tree while
the stage ran (sum of PSS; sum of RSS in brackets); then end-to-end wall time and peak. Rates:
ingest, composite: Mpx/s of AOI pixels x dates; classify, change, events: AOI pixels x periods;
video: frames/s (1920 x 1080, render + encode).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
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
    print()
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at start: {load_before}; at end: {load_average()} "
          f"(1 min: {run.load} over the run); the run kept {run.cores_used:.2f} cores busy on average")


if __name__ == "__main__":
    main()
