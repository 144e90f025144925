"""`midr run CONFIG` with a time stamp at every stage start and end, for benchmarks.

    .venv/bin/python benchmarks/_midr_run.py CONFIG

The same calls as the CLI (`load_config`, then `run_pipeline`), with a progress callback that prints one
JSON line per stage event to stdout: {"t": <time.time()>, "aoi": ..., "stage": ..., "status": ...}.
The benchmark that starts it samples the memory of its process tree and attributes each sample to the
stage running then. Exit code 1 if any AOI failed, like `midr run`.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def main() -> None:
    from pipeline.config import load_config
    from pipeline.runner import run_pipeline

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def progress(aoi_id: str, stage: str, status: str) -> None:
        print(json.dumps({"t": time.time(), "aoi": aoi_id, "stage": stage, "status": status}), flush=True)

    result = run_pipeline(load_config(sys.argv[1]), progress=progress)
    for aoi_id, error in result.failed.items():
        print(f"failed: aoi {aoi_id!r}: {error}", file=sys.stderr)
    sys.exit(1 if result.failed else 0)


if __name__ == "__main__":  # a local Dask cluster re-imports __main__ in its workers
    main()
