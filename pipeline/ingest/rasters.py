"""Raster files read lazily: a (band, y, x) Dask array per file, read window by window."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from odc.geo.geobox import GeoBox
from rasterio.errors import RasterioIOError

from pipeline.errors import InputError
from pipeline.ingest.grid import window_within

__all__ = ["open_raster", "open_layer", "one_line"]


def one_line(err: BaseException) -> str:
    """An exception's text on one line (GDAL messages may hold line breaks)."""
    return " ".join(str(err).split())


def open_raster(path: Path | str, *, chunk_size: int, within: GeoBox | None = None) -> xr.DataArray:
    """A raster file (local path or URL GDAL reads), lazily: (band, y, x) in the file's dtype, every band
    and `chunk_size` pixels a side per chunk (a pixel-interleaved file is decompressed once per window,
    not once per band); CRS and grid as coordinates (`.odc.geobox`), nodata in attrs["nodata"], band
    descriptions in attrs["descriptions"].

    `within`: an AOI grid. Where it is a window of the file (`grid.window_within`), only that window is
    read, chunked from the AOI's corner: each chunk of the AOI is one read, with no cutting and
    re-chunking of the file's chunks after it. Elsewhere the whole file, as without it.

    Each chunk opens the file, reads its window and closes it: reads run in parallel without a lock, and
    no file handle (with GDAL's per-dataset buffers) stays open while a long series is computed.
    """
    from odc.geo.xr import xr_coords

    failure = None
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(f"{path}: has no CRS; the pipeline needs georeferenced scenes")
            grid = GeoBox((src.height, src.width), src.transform, src.crs.to_wkt())
            count, dtype, nodata, descriptions = src.count, src.dtypes[0], src.nodata, src.descriptions
    except (RasterioIOError, OSError) as err:
        failure = _gone(str(path)) or InputError(f"{path}: cannot open as a raster ({err})")
    if failure is not None:  # raised outside the handler: no GDAL error chain (see _read_block)
        raise failure
    corner = window_within(grid, within) if within is not None else None
    if corner is not None:
        grid = grid[corner[0]:corner[0] + within.shape.y, corner[1]:corner[1] + within.shape.x]
    chunks = ((count,), _split(grid.shape.y, chunk_size), _split(grid.shape.x, chunk_size))
    name = "read-" + dask.base.tokenize(str(path), os.path.getmtime(path) if os.path.exists(path) else 0,
                                         chunk_size, corner)
    data = da.map_blocks(_read_block, path=str(path), corner=corner or (0, 0), chunks=chunks, dtype=dtype,
                         name=name, meta=np.array((), dtype=dtype))
    return xr.DataArray(data, coords={"band": np.arange(1, count + 1), **xr_coords(grid)},
                        dims=("band", *grid.dimensions),
                        attrs={"nodata": nodata, "descriptions": tuple(descriptions)})


def _split(size: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, size - start) for start in range(0, size, chunk))


def _read_block(*, path: str, corner: tuple[int, int] = (0, 0), block_info=None) -> np.ndarray:
    """One chunk of `open_raster`: the window of bands, rows and columns dask asks for, from the file's
    pixel `corner` (row, col) of the array."""
    (b0, b1), (r0, r1), (c0, c1) = block_info[None]["array-location"]
    r0, r1, c0, c1 = r0 + corner[0], r1 + corner[0], c0 + corner[1], c1 + corner[1]
    try:
        with rasterio.open(path) as src:
            return src.read(list(range(b0 + 1, b1 + 1)), window=((r0, r1), (c0, c1)))
    except (RasterioIOError, OSError) as err:  # a file cut short or damaged after its header was read
        cause = f"{one_line(err)}{f': {one_line(err.__cause__)}' if err.__cause__ else ''}"
        bands = f"band {b1}" if b1 - b0 == 1 else f"bands {b0 + 1}-{b1}"
        failure = _gone(path) or InputError(f"{path}: cannot read {bands}, rows {r0}-{r1 - 1} ({cause}); the "
                                            "file looks truncated or corrupt (copy or download it again)")
    # raised outside the handler, so the error carries no chain of GDAL errors: on a Dask worker, an error
    # whose chain cannot be unpickled reaches the runner as a bare Exception, not as this InputError
    raise failure


def _gone(path: str) -> InputError | None:
    """A local file that is not there any more is not damaged: it was deleted or moved (or unmounted)
    after the scenes were listed. The error that says so, or None if the file is there."""
    if "://" in path or os.path.exists(path):
        return None
    return InputError(f"{path}: the file is gone: it was deleted or moved while the run used it (it was there "
                      "when the scenes were listed); put it back and run again")


def open_layer(path: Path | str, band: int, *, chunk_size: int) -> xr.DataArray:
    """One band (1-based) of a raster file, lazily: (y, x) in the file's dtype, CRS and nodata kept."""
    return open_raster(path, chunk_size=chunk_size).isel(band=band - 1, drop=True)
