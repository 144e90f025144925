"""What produced each output: stage keys (caching and resume), stamps, input hashes, `midr provenance`.

Every stage of every AOI has a key: the sha256 of what it depends on — the config sections it reads,
the sha256 of the input files it reads, the sha256 of the upstream outputs it reads, and the package
version. When a stage finishes, a stamp `<aoi_id>/.midr/<stage>.json` records its key and the sha256
of every file it wrote. A rerun skips a stage whose stamp has the same key and whose files are all
there, unchanged; anything else runs again. Outputs are written to temporary names and renamed, and
the stamp is written last, so a run killed at any moment leaves no stage that looks done and is not.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pipeline import __version__, io
from pipeline.errors import InputError
from pipeline.results import OutputLayout

__all__ = ["StageStamps", "stage_key", "versions", "InputHashes", "describe_output", "STAMP_DIR"]

STAMP_DIR = ".midr"

_VERSIONED = ("numpy", "pandas", "xarray", "dask", "distributed", "rasterio", "rioxarray", "geopandas",
              "shapely", "pyproj", "scikit-learn", "lightgbm", "odc-stac", "pystac", "imageio-ffmpeg", "pillow",
              "pydantic")


def versions() -> dict[str, str]:
    """The package's, Python's, GDAL's and the key libraries' versions."""
    found = {"midr-pipeline": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    import rasterio

    found["gdal"] = rasterio.__gdal_version__
    return found


def stage_key(stage: str, **parts) -> str:
    """The sha256 of a stage's name, the package version and `parts` (JSON-able: config sections,
    input hashes, upstream output hashes)."""
    document = {"stage": stage, "midr-pipeline": __version__, **parts}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


class InputHashes:
    """sha256 of input files, remembered by (path, size, mtime) in `<run_dir>/.midr/input_hashes.json`
    so a rerun over a large archive does not read every scene again."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / STAMP_DIR / "input_hashes.json"
        try:
            self._known = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._known = {}

    def __call__(self, path: Path) -> dict:
        stat = path.stat()
        known = self._known.get(str(path))
        if known and known["size"] == stat.st_size and known["mtime_ns"] == stat.st_mtime_ns:
            digest = known["sha256"]
        else:
            digest = io.sha256(path)
            self._known[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        return {"path": str(path), "size": stat.st_size, "sha256": digest}

    def save(self) -> None:
        io.write_json(self._known, self.path)


class StageStamps:
    """The stamps of one run folder: which stage of which AOI is done, with which key and outputs."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def path(self, aoi_id: str | None, stage: str) -> Path:
        return OutputLayout(self.run_dir).stamp(aoi_id, stage)

    def read(self, aoi_id: str | None, stage: str) -> dict | None:
        try:
            return json.loads(self.path(aoi_id, stage).read_text())
        except (OSError, ValueError):
            return None

    def up_to_date(self, aoi_id: str | None, stage: str, key: str) -> dict | None:
        """The stamp if the stage is done with this key and every output is there, unchanged."""
        stamp = self.read(aoi_id, stage)
        if stamp is None or stamp.get("key") != key:
            return None
        for name, digest in stamp["outputs"].items():
            path = self.run_dir / name
            if not path.is_file() or io.sha256(path) != digest:
                return None
        return stamp

    def write(self, aoi_id: str | None, stage: str, key: str, outputs: Iterable[Path], **facts) -> dict:
        """Record a finished stage: its key, the sha256 of its outputs and what downstream stages need."""
        written = sorted({Path(p) for p in outputs})
        stamp = {"stage": stage, "aoi_id": aoi_id, "key": key,
                 "outputs": {str(p.relative_to(self.run_dir)): io.sha256(p) for p in written}, **facts}
        io.write_json(stamp, self.path(aoi_id, stage))
        return stamp

    def clear(self, aoi_id: str | None, stage: str) -> None:
        self.path(aoi_id, stage).unlink(missing_ok=True)


def find_run_dir(path: Path) -> Path:
    """The run folder holding `path`: the nearest parent with a manifest.json."""
    for folder in [path.parent, *path.parents]:
        if (folder / "manifest.json").is_file():
            return folder
    raise InputError(f"{path}: not inside a run folder (no manifest.json in any parent folder)")


def describe_output(path: Path) -> dict:
    """What produced an output file: run, AOI, stage, its key and status, the stage's inputs, the config,
    versions and cluster, and whether the file is still the one the stage wrote."""
    path = Path(path).resolve()
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    run_dir = find_run_dir(path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    name = str(path.relative_to(run_dir))
    found = None
    for aoi_id, record in manifest.get("aois", {}).items():
        for stage, entry in record.get("stages", {}).items():
            if name in entry.get("outputs", {}):
                found = (aoi_id, stage, entry)
    if found is None and name in manifest.get("products", {}).get("outputs", {}):
        found = (None, "products", manifest["products"])
    if found is None:
        raise InputError(f"{path}: the run's manifest ({run_dir / 'manifest.json'}) records no stage that wrote "
                         "this file")
    aoi_id, stage, entry = found
    recorded = entry["outputs"][name]
    inputs = [i for i in manifest.get("inputs", []) if stage in i.get("stages", [stage])]
    return {
        "file": name,
        "run_dir": str(run_dir),
        "run_name": manifest.get("run_name"),
        "aoi_id": aoi_id,
        "stage": stage,
        "status": entry.get("status"),
        "cached": entry.get("cached", False),
        "key": entry.get("key"),
        "sha256_recorded": recorded,
        "unchanged": io.sha256(path) == recorded,
        "upstream": entry.get("upstream", {}),
        "inputs": inputs,
        "config_file": manifest.get("config_file"),
        "config_sha256": manifest.get("config_sha256"),
        "seeds": manifest.get("seeds"),
        "versions": manifest.get("versions"),
        "cluster": manifest.get("cluster"),
        "started": manifest.get("started"),
        "finished": manifest.get("finished"),
    }

