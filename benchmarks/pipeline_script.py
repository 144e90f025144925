"""compare_eager.py's contender (a): the work done with midr-pipeline's own functions, lazily on Dask.

    .venv/bin/python benchmarks/pipeline_script.py --scenes 'DIR/demo_*.tif' --aoi AOI --model MODEL --out DIR
                                                   [--cluster auto|local] [--workers 2] [--threads 1]
                                                   [--chunk 512]

Per scene (date): the pipeline's ingest (`sources.list_sources` + `sources.aoi_stack`: reflectance
x 1e-4 as float32, NaN where nodata or where the mask band says cloud/shadow), NDVI
(`composite.spectral_indices`), the class of every pixel from the saved random forest
(`models.load_model` + `classify.feature_stack` + `classify.predict_class_map`, block by block on the
workers), and one COG per date for the class map and for NDVI (`io.write_cog`). The graph runs once
(every write in one `dask.compute`, so each scene is read once) where `midr run` would run it, set up by
the runner's own `dask_client`: `--cluster auto` (the default config, `dask: {}`: a thread per core in
this process), or `--cluster local` (`dask: {cluster: local}`: --workers processes x --threads threads,
each COG written on the worker that computed it).

Prints one JSON line: the seconds of each phase.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

FEATURES = ["blue", "green", "red", "nir", "swir1", "swir2", "ndvi"]
COLOURS = {1: (31, 120, 180, 255), 2: (51, 160, 44, 255), 3: (178, 223, 138, 255), 4: (255, 217, 47, 255),
           5: (227, 26, 28, 255), 6: (140, 109, 49, 255)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True, help="glob of the scene GeoTIFFs")
    parser.add_argument("--aoi", type=Path, required=True, help="AOI file (one polygon, aoi_id)")
    parser.add_argument("--model", type=Path, required=True, help="skops file of the fitted model")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cluster", choices=["auto", "local"], default="auto",
                        help="auto: midr run's default (threads of this process); local: worker processes")
    parser.add_argument("--workers", type=int, default=2, help="local: worker processes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=512)
    args = parser.parse_args()

    import dask

    from pipeline import classify, composite, io
    from pipeline.classify import models
    from pipeline.ingest import read_aois, sources
    from pipeline.config import CloudMaskConfig, DaskConfig, GridConfig, IngestConfig
    from pipeline.runner.cluster import dask_client

    phases, start = {}, time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = (DaskConfig() if args.cluster == "auto" else
                DaskConfig(cluster="local", n_workers=args.workers, threads_per_worker=args.threads, dashboard=False))
    with dask_client(settings):
        phases["cluster_start"] = time.perf_counter() - start
        mark = time.perf_counter()
        ingest = IngestConfig(scenes=args.scenes, scale=1e-4, nodata=0, grid=GridConfig(crs="native"),
                              chunk_size=args.chunk)
        cloud_mask = CloudMaskConfig(mask_band="mask", mask_values=[1, 2])
        listed = sources.list_sources(ingest, cloud_mask, scenes_glob=args.scenes)
        aoi = read_aois(args.aoi, id_field="aoi_id")
        stack, _ = sources.aoi_stack(listed, aoi.geometry, ingest_config=ingest, drop=cloud_mask.drop,
                                     aoi_id=str(aoi["aoi_id"].iloc[0]))
        scenes = composite.spectral_indices(stack, ["ndvi"])
        model = models.load_model(args.model.read_bytes(), source=str(args.model))
        features = classify.feature_stack(scenes.rename(time="period"), FEATURES)
        class_map = classify.predict_class_map(features, model)
        phases["graph"] = time.perf_counter() - mark
        mark = time.perf_counter()
        # as the runner does: each COG written where its pixels are computed (a worker), all dates in one
        # graph so each scene is read once, nothing of the series gathered in this process
        writes = []
        for i, when in enumerate(scenes["time"].values):
            day = np.datetime_as_string(when, unit="D").replace("-", "")
            writes.append(dask.delayed(io.write_cog)(class_map.isel(period=i), args.out / f"class_{day}.tif",
                                                     band_names=["class"], nodata=classify.UNCLASSIFIED,
                                                     colormap=COLOURS))
            writes.append(dask.delayed(io.write_cog)(scenes["ndvi"].isel(time=i), args.out / f"ndvi_{day}.tif",
                                                     band_names=["ndvi"], nodata=np.nan))
        dask.compute(*writes)
        phases["compute_and_write"] = time.perf_counter() - mark
    print(json.dumps({"contender": f"pipeline ({args.cluster})", "dates": int(scenes.sizes["time"]),
                      "phases": {k: round(v, 2) for k, v in phases.items()}}))


if __name__ == "__main__":  # the local Dask cluster re-imports __main__ in its workers
    main()
