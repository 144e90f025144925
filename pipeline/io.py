"""Every read and every write of the pipeline.

Readers turn files into xarray/geopandas objects (lazy where it matters) and raise `InputError` naming
the file at fault. Writers take computed values and write each file once, to a temporary name in the
target folder that is renamed into place only when complete: no half-written file ever looks done.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.errors import RasterioIOError

from pipeline.errors import InputError

__all__ = [
    "list_scenes",
    "open_scene",
    "read_aois",
    "read_training_points",
    "read_events",
    "write_cog",
    "write_csv",
    "write_json",
    "atomic_path",
    "sha256",
    "read_class_map",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- readers


def list_scenes(pattern: str, *, date_pattern: str, date_format: str) -> list[tuple[datetime, Path]]:
    """Scene files matching a glob, with the acquisition date parsed from each file name, by date."""
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise InputError(f"no scene files match {pattern!r} (ingest.scenes)")
    regex = re.compile(date_pattern)
    scenes = []
    for path in paths:
        match = regex.search(path.name)
        if match is None:
            raise InputError(
                f"{path}: no date in the file name matching ingest.date_pattern {date_pattern!r}"
            )
        try:
            when = datetime.strptime(match.group(1), date_format)
        except ValueError:
            raise InputError(
                f"{path}: {match.group(1)!r} is not a date in ingest.date_format {date_format!r}"
            ) from None
        scenes.append((when, path))
    return sorted(scenes)


def open_scene(path: Path, *, chunk_size: int) -> xr.DataArray:
    """One multi-band GeoTIFF, lazily: (band, y, x) in the file's dtype, `band` labelled by description.

    Bands without a description are labelled "b1", "b2", ...
    """
    try:
        scene = rioxarray.open_rasterio(path, chunks={"band": -1, "y": chunk_size, "x": chunk_size},
                                        masked=False, lock=False)
    except (RasterioIOError, OSError) as err:
        raise InputError(f"{path}: cannot open as a raster ({err})") from None
    if scene.rio.crs is None:
        raise InputError(f"{path}: has no CRS; the pipeline needs georeferenced scenes")
    names = scene.attrs.get("long_name")
    if isinstance(names, str):
        names = (names,)
    if not names or len(names) != scene.sizes["band"]:
        names = tuple(f"b{i + 1}" for i in range(scene.sizes["band"]))
    return scene.assign_coords(band=list(names))


def read_aois(path: Path, *, id_field: str) -> gpd.GeoDataFrame:
    """Mine areas (one polygon feature per AOI) with a unique id column `aoi_id`."""
    aois = _read_vector(path, what="AOI file (aoi.path)")
    if aois.empty:
        raise InputError(f"{path}: the AOI file has no features")
    if id_field not in aois.columns:
        raise InputError(
            f"{path}: no field {id_field!r} (aoi.id_field); fields are {sorted(map(str, aois.columns))}"
        )
    if aois.crs is None:
        raise InputError(f"{path}: the AOI file has no CRS")
    aois = aois.rename(columns={id_field: "aoi_id"})
    aois["aoi_id"] = aois["aoi_id"].astype(str)
    duplicated = aois["aoi_id"][aois["aoi_id"].duplicated()].unique()
    if len(duplicated):
        raise InputError(f"{path}: AOI ids must be unique, repeated: {list(duplicated)}")
    if not aois.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        raise InputError(f"{path}: every AOI must be a polygon")
    return aois


def read_training_points(path: Path, *, class_field: str, period_field: str | None) -> gpd.GeoDataFrame:
    """Labelled points with an integer `class_code` and, where given, a `period` (year) column."""
    points = _read_vector(path, what="training data (classify.training)")
    for field in (class_field, period_field):
        if field is not None and field not in points.columns:
            raise InputError(f"{path}: no field {field!r}; fields are {sorted(map(str, points.columns))}")
    if points.crs is None:
        raise InputError(f"{path}: the training data has no CRS")
    if not points.geom_type.eq("Point").all():
        raise InputError(f"{path}: training data must be points")
    renamed = {class_field: "class_code"} | ({period_field: "period"} if period_field else {})
    points = points.rename(columns=renamed)
    points["class_code"] = points["class_code"].astype(int)
    if period_field:
        points["period"] = points["period"].astype(int)
    return points


def read_events(path: Path) -> pd.DataFrame:
    """Resettlement events in the columns of the resettlement events table (CSV or GeoPackage)."""
    if not path.exists():
        raise InputError(f"{path}: events file not found (events.path)")
    try:
        if path.suffix.lower() == ".csv":
            events = pd.read_csv(path, dtype={"event_id": str})
        else:
            events = pd.DataFrame(gpd.read_file(path).drop(columns="geometry", errors="ignore"))
    except Exception as err:  # pandas/pyogrio raise many types for unreadable files
        raise InputError(f"{path}: cannot read the events table ({err})") from None
    required = ["event_id", "year_start"]
    missing = [c for c in required if c not in events.columns]
    if missing:
        raise InputError(f"{path}: the events table lacks the column(s) {missing}")
    return events


def read_class_map(path: Path) -> xr.DataArray:
    """A class map written by the pipeline: (y, x) uint8 with its CRS and nodata."""
    return rioxarray.open_rasterio(path).squeeze("band", drop=True)


def _read_vector(path: Path, *, what: str) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputError(f"{path}: {what} not found")
    try:
        return gpd.read_file(path)
    except Exception as err:  # pyogrio raises DataSourceError, ValueError, ...
        raise InputError(f"{path}: cannot read the {what} ({err})") from None


# ----------------------------------------------------------------------------------------- writers


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed to `path` when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_cog(
    raster: xr.DataArray,
    path: Path,
    *,
    band_names: Sequence[str],
    nodata: float,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
) -> None:
    """Write a computed (band, y, x) or (y, x) raster as a Cloud-Optimised GeoTIFF (deflate, overviews).

    CRS and transform come from the raster (`.rio`); band descriptions from `band_names`.
    """
    values = np.asarray(raster.values)
    if values.ndim == 2:
        values = values[np.newaxis]
    if len(band_names) != values.shape[0]:
        raise ValueError(f"{len(band_names)} band names for {values.shape[0]} bands")
    profile = {
        "driver": "COG",
        "width": values.shape[2],
        "height": values.shape[1],
        "count": values.shape[0],
        "dtype": values.dtype.name,
        "crs": raster.rio.crs,
        "transform": raster.rio.transform(),
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 2 if values.dtype.kind in "iu" else 3,
        "blocksize": 256,
        "overview_resampling": "nearest" if colormap is not None else "average",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values)
            for i, name in enumerate(band_names, start=1):
                dst.set_band_description(i, name)
            if colormap is not None:
                dst.write_colormap(1, colormap)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")


def write_json(document: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
