"""Writers every room shares: each file is written once, to a temporary name in the target folder,
renamed into place only when complete (no half-written file ever looks done); and the one vector reader.

Each room reads and writes its own formats in a module of its own (scene discovery in `ingest.scenes`,
training labels in `classify.training`, event tables in `events.records`, SPSS/Kumu in
`products.exports`); what they all need lives here: `atomic_path`, COG/CSV/JSON/Parquet/GeoPackage/PNG
writers, `sha256`, and the record of what a stage wrote (`written_files`).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from pipeline.errors import InputError, OutputError

__all__ = ["atomic_path", "write_cog", "write_period_cog", "write_csv", "write_json", "write_parquet",
           "write_bytes", "write_gpkg", "write_figure", "sha256", "read_vector", "written_files",
           "note_written"]


def read_vector(path: Path, *, what: str) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputError(f"{path}: {what} not found")
    try:
        return gpd.read_file(path)
    except Exception as err:  # pyogrio raises DataSourceError, ValueError, ...
        raise InputError(f"{path}: cannot read the {what} ({err})") from None


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed to `path` when the block ends without error.

    However the block fails, the temporary file is removed and a previous file at `path` is left as it
    was. A full disk, or a folder that cannot be written, raises OutputError naming `path`.
    """
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
        note_written(path)
    except Exception as err:
        code = getattr(err, "errno", None) if isinstance(err, OSError) else None
        # GDAL (rasterio) reports a full disk without an errno: then the free space tells
        if code in _DISK_FULL or (code is None and not isinstance(err, OutputError) and _disk_full(path.parent)):
            raise OutputError(f"disk full while writing {path} (No space left on device); the previous "
                              f"{path.name}, if any, is unchanged: free some space and run again") from err
        if code in _NOT_WRITABLE:
            raise OutputError(f"cannot write {path} ({err.strerror}); check that the output folder "
                              "(output_dir) is a writable folder") from err
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST}


_ALMOST_FULL = 16 * 2**20  # bytes: less than a few of GDAL's blocks left


def _disk_full(folder: Path) -> bool:
    """Whether the file system of `folder` has (almost) no space left for this user."""
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no folder, or no statvfs (Windows)
        return False
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail  # root may use the reserved blocks
    return blocks * stats.f_frsize < _ALMOST_FULL


def write_cog(
    raster: xr.DataArray,
    path: Path,
    *,
    band_names: Sequence[str],
    nodata: float,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    tags: dict[str, str] | None = None,
    categorical: bool | None = None,
) -> None:
    """Write a computed (band, y, x) or (y, x) raster as a Cloud-Optimised GeoTIFF (deflate, overviews).

    CRS and transform come from the raster (`.rio`); band descriptions from `band_names`; `tags` are
    written as dataset metadata (e.g. PERIOD, PERIOD_START, PERIOD_END). `categorical` (default: when a
    colormap is given): codes, not quantities, so the overviews take the nearest pixel, not the average.
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
        "overview_resampling": "nearest" if (colormap is not None if categorical is None else categorical)
        else "average",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values)
            for i, name in enumerate(band_names, start=1):
                dst.set_band_description(i, name)
            if colormap is not None:
                dst.write_colormap(1, colormap)
            if tags:
                dst.update_tags(**tags)


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


def write_gpkg(table: gpd.GeoDataFrame, path: Path, *, layer: str) -> None:
    """A GeoPackage with one layer, written atomically."""
    _fixed_gpkg_date()
    with atomic_path(path) as tmp:
        table.to_file(tmp, layer=layer, driver="GPKG")


def write_bytes(content: bytes, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def write_parquet(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)


def _fixed_gpkg_date() -> None:
    """GeoPackages stamp their layers with the time of writing: fix it (for the whole process; GDAL reads
    the option at write time) so equal runs write equal files."""
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "1970-01-01T00:00:00.000Z"})


def write_figure(figure, path: Path, *, dpi: int = 150) -> None:
    """A matplotlib figure as PNG."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")


_WRITTEN: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("written", default=None)


@contextlib.contextmanager
def written_files() -> Iterator[list[Path]]:
    """Collect the paths of every file written (renamed into place) in this thread while the block runs."""
    collected: list[Path] = []
    token = _WRITTEN.set(collected)
    try:
        yield collected
    finally:
        _WRITTEN.reset(token)


def note_written(path: Path) -> None:
    """Tell the active `written_files` block about a file written without `atomic_path`."""
    collected = _WRITTEN.get()
    if collected is not None:
        collected.append(Path(path))


def write_period_cog(raster: xr.DataArray, path: Path, *, band_names: list[str], nodata: float,
                     colormap: dict | None = None, tags: dict[str, str] | None = None,
                     skip_empty: bool = False) -> Path | None:
    """Write one period's raster as a COG where it is computed (on a worker: the pixels never travel to
    the driver; workers see the output folder as they see the inputs). None if `skip_empty` and the
    raster has no valid pixel."""
    if skip_empty and not np.isfinite(raster.values).any():
        return None
    write_cog(raster, path, band_names=band_names, nodata=nodata, colormap=colormap, tags=tags)
    return path
