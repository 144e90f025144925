"""compare_eager.py's contender (b): the same work as a researcher would write it, eagerly.

    .venv/bin/python benchmarks/eager_script.py --scenes 'DIR/demo_*.tif' --model MODEL --out DIR

rioxarray + NumPy + scikit-learn, no Dask: read every scene fully, stack them into one array, scale to
reflectance, set nodata and cloud/shadow pixels (mask band 1, 2) to NaN, NDVI, predict the class of
every clear pixel date by date with the saved random forest (n_jobs=-1: all cores), and write one COG per
date for the class map and for NDVI with rasterio's COG driver (the creation options `io.write_cog`
uses: deflate, predictor, 256 px blocks, overviews). Prints one JSON line: the seconds of each phase.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import time
from pathlib import Path

import numpy as np
import rasterio
import rioxarray
import skops.io as sio

SCALE = np.float32(1e-4)
CLOUD_VALUES = [1, 2]
UNCLASSIFIED = 255


def write_cog(path: Path, values: np.ndarray, *, crs, transform, nodata, resampling: str) -> None:
    profile = {"driver": "COG", "width": values.shape[1], "height": values.shape[0], "count": 1,
               "dtype": values.dtype.name, "crs": crs, "transform": transform, "nodata": nodata, "compress": "deflate",
               "predictor": 2 if values.dtype.kind in "iu" else 3, "blocksize": 256,
               "overview_resampling": resampling}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True, help="glob of the scene GeoTIFFs")
    parser.add_argument("--model", type=Path, required=True, help="skops file of the fitted model")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    phases, mark = {}, time.perf_counter()

    files = sorted(glob.glob(args.scenes))
    days = [re.search(r"(\d{8})", Path(f).name).group(1) for f in files]
    first = rioxarray.open_rasterio(files[0])
    crs, transform = first.rio.crs, first.rio.transform()
    bands = list(first.attrs["long_name"])                     # blue .. swir2, mask
    raw = np.stack([rioxarray.open_rasterio(f).values for f in files])   # (time, band, y, x) uint16
    phases["read"] = time.perf_counter() - mark
    mark = time.perf_counter()

    mask = raw[:, bands.index("mask")]
    reflectance = raw[:, :6].astype("float32") * SCALE
    reflectance[raw[:, :6] == 0] = np.nan
    reflectance[np.broadcast_to(np.isin(mask, CLOUD_VALUES)[:, None], reflectance.shape)] = np.nan
    del raw
    red, nir = reflectance[:, bands.index("red")], reflectance[:, bands.index("nir")]
    ndvi = ((nir - red) / (nir + red)).astype("float32")
    ndvi[~np.isfinite(ndvi)] = np.nan
    features = np.concatenate([reflectance, ndvi[:, None]], axis=1)     # (time, 7, y, x)
    phases["ndvi"] = time.perf_counter() - mark
    mark = time.perf_counter()

    model = sio.load(args.model, trusted=sio.get_untrusted_types(file=args.model))
    model.set_params(n_jobs=-1)
    classes = np.full(ndvi.shape, UNCLASSIFIED, dtype="uint8")
    for t in range(len(files)):
        table = features[t].reshape(features.shape[1], -1).T            # (pixels, 7)
        valid = np.isfinite(table).all(axis=1)
        flat = classes[t].reshape(-1)
        flat[valid] = model.predict(table[valid]).astype("uint8")
    phases["predict"] = time.perf_counter() - mark
    mark = time.perf_counter()

    for t, day in enumerate(days):
        write_cog(args.out / f"class_{day}.tif", classes[t], crs=crs, transform=transform, nodata=UNCLASSIFIED,
                  resampling="nearest")
        write_cog(args.out / f"ndvi_{day}.tif", ndvi[t], crs=crs, transform=transform, nodata=np.nan,
                  resampling="average")
    phases["write"] = time.perf_counter() - mark
    print(json.dumps({"contender": "eager", "dates": len(files), "phases": {k: round(v, 2) for k, v in phases.items()}}))


if __name__ == "__main__":
    main()
