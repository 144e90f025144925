"""The same work by midr-pipeline (lazy, Dask), a plain eager script and eo-learn: time, memory, agreement.

    .venv/bin/python benchmarks/compare_eager.py [--size 1000] [--dates 20] [--years 5]
                                                 [--only pipeline,pipeline_processes,eager,eolearn]
                                                 [--repeat 1] [--keep DIR]
    (eo-learn needs its venv first: bash benchmarks/eolearn/setup.sh)

The work: ingest N multi-band GeoTIFFs (the demo generator's synthetic scenes at --size x --size px, 6
reflectance bands + a cloud mask band, uint16), reflectance (x 1e-4, NaN where nodata or cloud/shadow),
NDVI, the class of every clear pixel of every date from one random forest, and one COG per date for the
class map and for NDVI. Before timing anything, this script fits the forest once (100 trees, seed 42, on
the features of the generator's labelled points in every scene of their year) and saves it with skops;
every contender loads that file (same scikit-learn version in both venvs).

Contenders, each a subprocess whose whole process tree is sampled for memory (RSS every 0.2 s, PSS every 1 s):
  pipeline  benchmarks/pipeline_script.py: the pipeline's own functions (sources.aoi_stack, composite.
            spectral_indices, classify.predict_class_map, io.write_cog), lazily on Dask where the default
            config runs (`dask: {}`, cluster: auto: a thread per core in one process). Not `midr run`
            itself: that makes yearly composites, validation, change, events and a video, which the
            others do not do.
  pipeline_processes  the same script and graph on a local Dask cluster of --workers processes x 1
            thread (`dask: {cluster: local}`): the difference to `pipeline` is the cost of the processes.
  eager     benchmarks/eager_script.py: rioxarray + NumPy + scikit-learn, all scenes in memory, predict with
            n_jobs=-1, rasterio COG driver.
  eolearn   benchmarks/eolearn/eolearn_workflow.py in build/eolearn-venv: EOPatches (--patches grid) on an
            EOExecutor with --workers processes, eo-learn's import/NDVI/export tasks, mosaicked into COGs.
All run with GDAL_CACHEMAX=--gdal-cache-mb (default 64 MB), so that GDAL's block cache (5 % of RAM by
default, per process) does not dominate the memory figures.

Prints a table: wall seconds and peak memory (sum of PSS over the process tree; RSS in brackets) of each
contender, their ratios to the pipeline's (pipeline = 1.00; above 1 = slower / more memory), the share of
pixels whose class equals the pipeline's (all dates), the largest NDVI difference, the cores each kept
busy (CPU seconds of its tree / wall seconds) and the load; then each contender's own phase times, the
machine and the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import ROOT, DataSet, demo_data, load_average, machine, measure, print_table

BENCH = ROOT / "benchmarks"
EOLEARN_PYTHON = ROOT / "build" / "eolearn-venv" / "bin" / "python"
FEATURES = ("blue", "green", "red", "nir", "swir1", "swir2", "ndvi")
SCALE = np.float32(1e-4)
MIB = 2**20


# ------------------------------------------------------------------------------ model and inputs


def scene_features(raw: np.ndarray) -> np.ndarray:
    """(7, ...) uint16 scene (6 bands + mask) -> (7, ...) float32 features (6 reflectances + NDVI), NaN =
    nodata or cloud/shadow; the same arithmetic as all three contenders."""
    reflectance = raw[:6].astype("float32") * SCALE
    reflectance[raw[:6] == 0] = np.nan
    reflectance[:, np.isin(raw[6], [1, 2])] = np.nan
    red, nir = reflectance[2], reflectance[3]
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = ((nir - red) / (nir + red)).astype("float32")
    ndvi[~np.isfinite(ndvi)] = np.nan
    return np.concatenate([reflectance, ndvi[None]])


def fit_model(data: DataSet, path: Path, *, seed: int = 42) -> dict:
    """Fit the shared random forest on the labelled points (features from every clear scene of the
    point's year) and save it with skops; returns what it was trained on."""
    import geopandas as gpd
    import rasterio
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    points = gpd.read_file(data.training_points)
    rows, labels = [], []
    for scene in data.scenes:
        year = int(scene.stem.split("_")[-1][:4])
        here = points[points["year"] == year]
        with rasterio.open(scene) as src:
            raw = src.read()
            r, c = rasterio.transform.rowcol(src.transform, here.geometry.x.to_numpy(), here.geometry.y.to_numpy())
        values = scene_features(raw[:, np.asarray(r), np.asarray(c)]).T      # (points, 7)
        clear = np.isfinite(values).all(axis=1)
        rows.append(values[clear])
        labels.append(here["class_code"].to_numpy()[clear])
    X, y = np.concatenate(rows), np.concatenate(labels)
    model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=-1).fit(X, y)
    model.set_params(n_jobs=1)  # each contender sets its own parallelism
    path.write_bytes(sio.dumps(model))
    return {"samples": len(y), "classes": len(np.unique(y))}


def write_scene_aoi(data: DataSet, path: Path) -> Path:
    """An AOI that is exactly the scenes' extent, so that the pipeline's grid is the files' grid."""
    import geopandas as gpd
    import rasterio
    import shapely

    with rasterio.open(data.scenes[0]) as src:
        frame = gpd.GeoDataFrame({"aoi_id": ["scene"]}, geometry=[shapely.box(*src.bounds)], crs=src.crs)
    frame.to_file(path, driver="GeoJSON")
    return path


# ------------------------------------------------------------------------------------ contenders


CONTENDERS = ("pipeline", "pipeline_processes", "eager", "eolearn")


def commands(name: str, data: DataSet, aoi: Path, model: Path, out: Path, args) -> list:
    scenes = str(data.scenes_dir / "demo_*.tif")
    if name.startswith("pipeline"):
        return [sys.executable, BENCH / "pipeline_script.py", "--scenes", scenes, "--aoi", aoi, "--model", model,
                "--out", out, "--workers", args.workers, "--chunk", args.chunk,
                "--cluster", "local" if name == "pipeline_processes" else "auto"]
    if name == "eager":
        return [sys.executable, BENCH / "eager_script.py", "--scenes", scenes, "--model", model, "--out", out]
    return [args.eolearn_python, BENCH / "eolearn" / "eolearn_workflow.py", "--scenes", scenes, "--model", model,
            "--out", out, "--workers", args.workers, "--patches", args.patches]


def compare_outputs(reference: Path, other: Path) -> tuple[float, float]:
    """(share of pixels with the same class over all dates, largest |NDVI difference|) of two output folders."""
    import rasterio

    same = total = 0
    worst = 0.0
    for path in sorted(reference.glob("class_*.tif")):
        with rasterio.open(path) as a, rasterio.open(other / path.name) as b:
            x, y = a.read(1), b.read(1)
        same += int((x == y).sum())
        total += x.size
        with rasterio.open(reference / path.name.replace("class_", "ndvi_")) as a, \
                rasterio.open(other / path.name.replace("class_", "ndvi_")) as b:
            x, y = a.read(1), b.read(1)
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            worst = np.inf
        else:
            both = ~np.isnan(x)
            worst = max(worst, float(np.abs(x[both] - y[both]).max(initial=0.0)))
    return same / total if total else np.nan, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="pixels a side of the generated scenes")
    parser.add_argument("--dates", type=int, default=20, help="scenes (a multiple of --years)")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=2, help="pipeline: Dask workers; eo-learn: EOExecutor workers")
    parser.add_argument("--patches", default="2x2", help="eo-learn: rows x columns of EOPatches")
    parser.add_argument("--chunk", type=int, default=512, help="pipeline: ingest.chunk_size (pixels a side)")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help=f"contenders to run, comma-separated, the first is the reference ({', '.join(CONTENDERS)})")
    parser.add_argument("--eolearn-python", type=Path, default=EOLEARN_PYTHON)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the table shows the median time, the "
                        "largest peak memory")
    parser.add_argument("--gdal-cache-mb", type=int, default=64, help="GDAL_CACHEMAX of every contender")
    parser.add_argument("--keep", type=Path, default=None, help="write the model and outputs here and keep them")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        parser.error(f"--only: unknown contender(s) {unknown}; choose from {', '.join(CONTENDERS)}")
    if "eolearn" in names and not args.eolearn_python.exists():
        print(f"no eo-learn venv at {args.eolearn_python}: build it with `bash benchmarks/eolearn/setup.sh`; "
              "eo-learn left out", flush=True)
        names.remove("eolearn")

    load_before = load_average()
    data = demo_data(size=args.size, dates=args.dates, years=args.years, seed=args.seed)
    results = {}
    with tempfile.TemporaryDirectory(prefix="midr-compare-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        aoi = write_scene_aoi(data, folder / "scene_extent.geojson")
        model = folder / "model.skops"
        trained = fit_model(data, model, seed=args.seed)
        print(f"random forest (100 trees) fitted on {trained['samples']} labelled pixel-dates, "
              f"{trained['classes']} classes; saved to {model.name}", flush=True)
        env = {"GDAL_CACHEMAX": str(args.gdal_cache_mb)}
        runs = {name: [] for name in names}
        for round_ in range(args.repeat):  # round robin: a change of load hits every contender alike
            for name in names:
                print(f"running {name}" + (f" ({round_ + 1} of {args.repeat})" if args.repeat > 1 else "") + " ...",
                      flush=True)
                out = folder / name
                if out.exists():
                    shutil.rmtree(out)
                run = measure(commands(name, data, aoi, model, out, args),
                              env={**env, **({"PYTHONPATH": ""} if name == "eolearn" else {})}).check(name)
                runs[name].append((run, json.loads(run.stdout.strip().splitlines()[-1])["phases"]))
        for name, done in runs.items():
            median = sorted(done, key=lambda r: r[0].seconds)[(len(done) - 1) // 2]  # lower median
            results[name] = {"seconds": median[0].seconds, "pss": max(r.peak_pss for r, _ in done),
                             "rss": max(r.peak_rss for r, _ in done), "phases": median[1],
                             "all_seconds": [round(r.seconds, 1) for r, _ in done], "load": median[0].load,
                             "cores": median[0].cores_used}
        reference = names[0]
        for name in names:
            results[name]["agreement"], results[name]["ndvi_diff"] = compare_outputs(folder / reference, folder / name)
    base = results[reference]
    rows = [[name, r["seconds"], r["seconds"] / base["seconds"], f"{r['pss'] / MIB:.0f} ({r['rss'] / MIB:.0f})",
             r["pss"] / base["pss"], r["agreement"], r["ndvi_diff"], r["cores"], r["load"]]
            for name, r in results.items()]
    megapixels = args.size * args.size * args.dates / 1e6
    print()
    print(f"{args.dates} scenes of {args.size} x {args.size} px ({megapixels:.0f} Mpx x 7 bands): reflectance, NDVI, "
          f"random forest (100 trees) per date, class + NDVI COGs; ratios against {reference}")
    print_table(["contender", "wall s", "time ratio", "peak MiB PSS (RSS)", "memory ratio", "same class",
                 "max |dNDVI|", "cores used", "load 1 min"], rows,
                [None, lambda v: f"{v:.1f}", lambda v: f"{v:.2f}", None, lambda v: f"{v:.2f}",
                 lambda v: f"{v:.6f}", lambda v: f"{v:.1e}", lambda v: f"{v:.2f}", None])
    print()
    for name, r in results.items():
        print(f"{name} phases (s): " + ", ".join(f"{k} {v}" for k, v in r["phases"].items())
              + f"; {megapixels / r['seconds']:.2f} Mpx-dates/s end to end"
              + (f"; all rounds {r['all_seconds']} s" if len(r["all_seconds"]) > 1 else ""))
    print()
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at start: {load_before}; at end: {load_average()}")


if __name__ == "__main__":
    main()
