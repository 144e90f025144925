"""compare_eager.py's contender (c): the same work as an eo-learn workflow, in eo-learn's own venv.

    build/eolearn-venv/bin/python benchmarks/eolearn/eolearn_workflow.py --scenes 'DIR/demo_*.tif'
        --model MODEL --out DIR [--workers 2] [--patches 2x2]

The eo-learn way: the scene is split into --patches EOPatches (a grid of bounding boxes on the pixel
grid) and one EOWorkflow runs per patch, --workers at a time in separate processes (EOExecutor,
multiprocess), each predicting with one thread. Per patch: CreateEOPatchTask (bbox) ->
ImportFromTiffTask (all scenes, 7 bands, into DATA RAW) -> the timestamps -> a reflectance task (x 1e-4 as float32; NaN
where nodata or where the mask band says cloud/shadow) -> NormalizedDifferenceIndexTask (NDVI) ->
MergeFeatureTask (6 bands + NDVI) -> a prediction task (the saved random forest, pixels with all features
finite) -> ExportToTiffTask for the class maps and for NDVI (one GeoTIFF per date and patch, deflate).
Last, in this process, the patches of each date are mosaicked (rasterio.merge) and written as a COG
with the creation options of midr-pipeline's io.write_cog, so every contender ends with the same files.
Prints one JSON line: the seconds of each phase.

eo-learn pins geopandas<1 and needs setuptools<82: it lives in its own venv (benchmarks/eolearn/setup.sh).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import re
import time
import warnings
from itertools import pairwise
from pathlib import Path

import numpy as np
import rasterio
import skops.io as sio
from rasterio.merge import merge
from sentinelhub import CRS, BBox

from eolearn.core import (CreateEOPatchTask, EOExecutor, EOPatch, EOTask, EOWorkflow, FeatureType,
                          MergeFeatureTask, linearly_connect_tasks)
from eolearn.core.exceptions import TemporalDimensionWarning
from eolearn.features import NormalizedDifferenceIndexTask
from eolearn.io import ExportToTiffTask, ImportFromTiffTask

SCALE = np.float32(1e-4)
CLOUD_VALUES = [1, 2]
UNCLASSIFIED = 255
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2", "mask")


class ReflectanceTask(EOTask):
    """DATA RAW (time, h, w, 7) uint16 -> DATA BANDS (time, h, w, 6) float32 reflectance, NaN where a band
    is nodata (0) or the mask band is cloud or shadow; RAW is removed."""

    def execute(self, eopatch: EOPatch) -> EOPatch:
        raw = eopatch[FeatureType.DATA, "RAW"]
        reflectance = raw[..., :6].astype(np.float32) * SCALE
        reflectance[raw[..., :6] == 0] = np.nan
        reflectance[np.isin(raw[..., 6], CLOUD_VALUES)] = np.nan
        eopatch[FeatureType.DATA, "BANDS"] = reflectance
        del eopatch[FeatureType.DATA, "RAW"]
        return eopatch


class TimestampsTask(EOTask):
    """Set the EOPatch's timestamps (after the import: see `main`)."""

    def execute(self, eopatch: EOPatch, *, timestamps: list[dt.datetime]) -> EOPatch:
        eopatch.timestamps = timestamps
        return eopatch


class PredictPatchTask(EOTask):
    """DATA FEATURES (time, h, w, f) -> MASK CLASS (time, h, w, 1) uint8; 255 where a feature is NaN."""

    def __init__(self, model_path: str, n_jobs: int = 1):
        self.model = sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))
        self.model.set_params(n_jobs=n_jobs)

    def execute(self, eopatch: EOPatch) -> EOPatch:
        features = eopatch[FeatureType.DATA, "FEATURES"]
        table = features.reshape(-1, features.shape[-1])
        valid = np.isfinite(table).all(axis=1)
        classes = np.full(table.shape[0], UNCLASSIFIED, dtype=np.uint8)
        if valid.any():
            classes[valid] = self.model.predict(table[valid]).astype(np.uint8)
        eopatch[FeatureType.MASK, "CLASS"] = classes.reshape(*features.shape[:-1], 1)
        return eopatch


def patch_boxes(path: str, rows: int, cols: int) -> list[BBox]:
    """The scene's extent split into rows x cols boxes on its pixel grid."""
    with rasterio.open(path) as src:
        transform, height, width, epsg = src.transform, src.height, src.width, src.crs.to_epsg()
    crs = CRS(epsg)
    row_edges = np.linspace(0, height, rows + 1).round().astype(int)
    col_edges = np.linspace(0, width, cols + 1).round().astype(int)
    boxes = []
    for r0, r1 in pairwise(row_edges):
        for c0, c1 in pairwise(col_edges):
            left, top = transform * (int(c0), int(r0))
            right, bottom = transform * (int(c1), int(r1))
            boxes.append(BBox((left, bottom, right, top), crs=crs))
    return boxes


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
    parser.add_argument("--workers", type=int, default=2, help="EOExecutor processes")
    parser.add_argument("--patches", default="2x2", help="rows x columns of EOPatches")
    args = parser.parse_args()
    phases, mark = {}, time.perf_counter()

    files = sorted(glob.glob(args.scenes))
    folder = Path(files[0]).parent
    days = [re.search(r"(\d{8})", Path(f).name).group(1) for f in files]
    timestamps = [dt.datetime.strptime(d, "%Y%m%d") for d in days]
    rows, cols = (int(n) for n in args.patches.lower().split("x"))
    boxes = patch_boxes(files[0], rows, cols)
    tiles = args.out / "patches"
    tiles.mkdir(parents=True, exist_ok=True)

    create = CreateEOPatchTask()
    # ImportFromTiffTask fails on a list of files when the EOPatch has timestamps (eo-learn 1.5.7 overwrites the
    # timestamps list inside its loop over the files): import into an EOPatch without them, with the time
    # dimension given, and set the timestamps afterwards.
    read = ImportFromTiffTask((FeatureType.DATA, "RAW"), str(folder), timestamp_size=len(files))
    warnings.filterwarnings("ignore", category=TemporalDimensionWarning)  # until TimestampsTask has run
    ndvi = NormalizedDifferenceIndexTask((FeatureType.DATA, "BANDS"), (FeatureType.DATA, "NDVI"),
                                         bands=(BANDS.index("nir"), BANDS.index("red")))
    stack = MergeFeatureTask({FeatureType.DATA: ["BANDS", "NDVI"]}, (FeatureType.DATA, "FEATURES"))
    predict = PredictPatchTask(str(args.model), n_jobs=1 if args.workers > 1 else -1)
    export_class = ExportToTiffTask((FeatureType.MASK, "CLASS"), str(tiles), compress="deflate",
                                    no_data_value=UNCLASSIFIED)
    export_ndvi = ExportToTiffTask((FeatureType.DATA, "NDVI"), str(tiles), compress="deflate", no_data_value=np.nan)
    nodes = linearly_connect_tasks(create, read, TimestampsTask(), ReflectanceTask(), ndvi, stack, predict,
                                   export_class, export_ndvi)
    workflow = EOWorkflow(nodes)
    execution_args = [{nodes[0]: {"bbox": box},
                       nodes[1]: {"filename": [Path(f).name for f in files]},
                       nodes[2]: {"timestamps": timestamps},
                       nodes[7]: {"filename": f"class_%Y%m%d_{i}.tif"},
                       nodes[8]: {"filename": f"ndvi_%Y%m%d_{i}.tif"}} for i, box in enumerate(boxes)]
    executor = EOExecutor(workflow, execution_args)
    executor.run(workers=args.workers, multiprocess=True, disable=True)
    failed = executor.get_failed_executions()
    if failed:
        errors = [str(executor.execution_results[i].error_node_uid) for i in failed]
        raise SystemExit(f"eo-learn: {len(failed)} of {len(boxes)} patches failed (nodes {errors})")
    phases["workflow"] = time.perf_counter() - mark
    mark = time.perf_counter()

    for day in days:
        for product, nodata, resampling in (("class", UNCLASSIFIED, "nearest"), ("ndvi", np.nan, "average")):
            parts = [rasterio.open(tiles / f"{product}_{day}_{i}.tif") for i in range(len(boxes))]
            mosaic, transform = merge(parts)
            epsg = parts[0].crs
            for part in parts:
                part.close()
            write_cog(args.out / f"{product}_{day}.tif", mosaic[0], crs=epsg, transform=transform, nodata=nodata,
                      resampling=resampling)
    phases["mosaic_cog"] = time.perf_counter() - mark
    print(json.dumps({"contender": "eo-learn", "dates": len(files), "patches": len(boxes),
                      "phases": {k: round(v, 2) for k, v in phases.items()}}))


if __name__ == "__main__":  # EOExecutor's worker processes import this module
    main()
