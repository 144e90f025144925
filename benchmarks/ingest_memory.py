"""Peak memory of ingest + yearly composites for 10 and for 40 dates of the same AOI.

Writes a synthetic series (2048 x 2048 px of 30 m, six uint16 reflectance bands and a mask band per date,
deflate GeoTIFFs), four dates a year over ten years, into a temporary folder, then, in a fresh process per case, runs the
pipeline's ingest (`sources.aoi_stack`, the same call `midr run` makes) and the composites
(`composite.composite`, median), writing each year's composite with `io.write_cog` one after the other.
Reports wall time and the peak resident memory of that process (GDAL's block cache capped with
GDAL_CACHEMAX, default 64 MB here, so that the figure is the pipeline's and not a cache's).
10 dates = the first 2.5 years, 40 dates = all ten years: a longer series of the same AOI, the way a
mine's record grows. (`--per-year` puts all dates into five years instead: then a period holds more
dates, and its composite needs them together.)

    .venv/bin/python benchmarks/ingest_memory.py [--size 2048] [--chunk 512] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BANDS = ("blue", "green", "red", "nir", "swir1", "swir2", "mask")
YEARS = range(2011, 2021)


def write_series(folder: Path, *, size: int, dates_per_year: int, years: range = YEARS) -> None:
    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    rng = np.random.default_rng(42)
    x0, y0, res = 500_000.0, 8_200_000.0, 30.0
    yy, xx = np.mgrid[0:size, 0:size]
    base = (1500 + 800 * np.sin(xx / 97.0) * np.cos(yy / 131.0)).astype("float32")
    for year in years:
        for k in range(dates_per_year):
            month = 1 + k * 12 // dates_per_year
            path = folder / f"scene_{year}{month:02d}15.tif"
            values = np.empty((len(BANDS), size, size), "uint16")
            for b in range(6):
                values[b] = np.clip(base * (0.6 + 0.2 * b) + rng.normal(0, 60, base.shape), 1, 10000)
            values[6] = (rng.random(base.shape) < 0.1).astype("uint16")      # 10 % cloud
            with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=len(BANDS),
                               dtype="uint16", crs="EPSG:32736", transform=from_origin(x0, y0, res, res),
                               nodata=0, compress="deflate", tiled=True, blockxsize=512, blockysize=512) as dst:
                dst.write(values)
                dst.descriptions = BANDS
    aoi = box(x0 + 30, y0 - size * res + 30, x0 + size * res - 30, y0 - 30)
    gpd.GeoDataFrame({"aoi_id": ["bench"]}, geometry=[aoi], crs="EPSG:32736").to_file(folder / "aoi.geojson")


def run_case(folder: Path, n_dates: int, chunk: int, out: Path, *, per_year: bool = False) -> dict:
    """In this (fresh) process: ingest + composites of the first `n_dates` files; returns the figures."""
    import dask
    import geopandas as gpd

    from pipeline import composite, io
    from pipeline.ingest import sources
    from pipeline.config import CloudMaskConfig, IngestConfig

    files = sorted(folder.glob("scene_*.tif"))
    chosen = files[:: len(files) // n_dates][:n_dates] if per_year else files[:n_dates]
    link = folder / f"case_{n_dates}"
    link.mkdir(exist_ok=True)
    for f in chosen:
        target = link / f.name
        if not target.exists():
            target.symlink_to(f)
    start = time.perf_counter()
    ingest = IngestConfig(scenes=str(link / "scene_*.tif"), chunk_size=chunk)
    cloud_mask = CloudMaskConfig()
    with dask.config.set(scheduler="threads", num_workers=2):
        listed = sources.list_sources(ingest, cloud_mask, scenes_glob=ingest.scenes)
        aoi = gpd.read_file(folder / "aoi.geojson").geometry
        stack, _ = sources.aoi_stack(listed, aoi, ingest_config=ingest, drop=cloud_mask.drop, aoi_id="bench")
        composites = composite.composite(stack, composite.make_periods(stack["time"].values), method="median")
        layers = [v for v in composites.data_vars if v != "clear_count"]
        for period in composites["period"].values:
            io.write_cog(composites[layers].sel(period=period).to_dataarray("band").astype("float32"),
                         out / f"{n_dates}_{int(period)}.tif", band_names=layers, nodata=np.nan)
    return {"dates": n_dates, "periods": int(composites.sizes["period"]),
            "pixels": [stack.sizes["y"], stack.sizes["x"]], "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--keep", type=Path, default=None, help="write the series here and keep it")
    parser.add_argument("--gdal-cache-mb", type=int, default=64,
                        help="GDAL_CACHEMAX of the measured process (GDAL's default, 5 %% of RAM, is a block "
                             "cache that fills with whatever was read and dominates the RSS)")
    parser.add_argument("--per-year", action="store_true", help="40 dates in five years (8 a year)")
    parser.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(run_case(args.folder, args.case, args.chunk, Path(out), per_year=args.per_year)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if not list(folder.glob("scene_*.tif")):
            write_series(folder, size=args.size, dates_per_year=8 if args.per_year else 4,
                         years=range(2016, 2021) if args.per_year else YEARS)
        results = []
        for n_dates in (10, 40):
            done = subprocess.run([sys.executable, __file__, "--case", str(n_dates), "--folder", str(folder),
                                   "--chunk", str(args.chunk), *(["--per-year"] if args.per_year else [])],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "GDAL_CACHEMAX": str(args.gdal_cache_mb)})
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for r in results:
        sys.stdout.write(f"{r['dates']:>3} dates, {r['periods']} years, {r['pixels'][0]}x{r['pixels'][1]} px: "
                         f"{r['seconds']:>6.1f} s, peak RSS {r['peak_rss_mb']:>7.1f} MB\n")
    growth = results[1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    sys.stdout.write(f"peak memory 40 / 10 dates: {growth:.2f}x (chunk {args.chunk} px, "
                     f"GDAL_CACHEMAX {args.gdal_cache_mb} MB)\n")


if __name__ == "__main__":
    main()
