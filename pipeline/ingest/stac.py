"""STAC: find items (a STAC API search with pystac-client, or a static catalog on disk) and load their
assets lazily onto the AOI's grid with odc-stac.

Both ways end in the same `load_items`, so a static catalog built in a test exercises the API path's
loading. Assets should carry `raster:bands` (data type, nodata): without it odc-stac turns 0 into NaN.
A band is an asset (by key) or, as odc-stac resolves it, a band of a multi-band asset named in its
`eo:bands` (`name` or `common_name`): e.g. `red` of a run's own catalog's `composite` asset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr
from odc.geo.geobox import GeoBox
from shapely.geometry import box, shape

from pipeline.errors import InputError

__all__ = ["check_assets", "find_band", "load_items", "search_items"]

log = logging.getLogger(__name__)


def search_items(
    *,
    api: str | None = None,
    catalog: Path | None = None,
    collection: str | None = None,
    bbox: tuple[float, float, float, float],
    datetime: str | None = None,
    max_cloud_cover: float | None = None,
    key: str = "ingest.sources",
) -> list:
    """STAC items over `bbox` (WGS 84 lon/lat), in the date range and under the cloud cover, by time."""
    if api is not None:
        from pystac_client import Client

        try:
            client = Client.open(api)
            query = {"eo:cloud_cover": {"lte": max_cloud_cover}} if max_cloud_cover is not None else None
            search = client.search(collections=[collection] if collection else None, bbox=list(bbox),
                                   datetime=datetime, query=query)
            items = list(search.items())
        except Exception as err:  # pystac-client raises APIError, requests errors, ...
            raise InputError(f"{api}: STAC search failed ({err}) ({key}.api)") from None
    else:
        import pystac

        try:
            root = pystac.Catalog.from_file(str(catalog))
        except Exception as err:  # pystac raises STACError, JSON errors, OSError
            raise InputError(f"{catalog}: cannot read the STAC catalog ({err}) ({key}.catalog)") from None
        items = [item for item in root.get_items(recursive=True)
                 if _matches(item, collection=collection, bbox=bbox, datetime=datetime,
                             max_cloud_cover=max_cloud_cover)]
    return sorted(items, key=lambda item: (item.datetime, item.id))


def _matches(item, *, collection, bbox, datetime, max_cloud_cover) -> bool:
    """The STAC API search filters, applied to one item of a static catalog."""
    if collection and item.collection_id != collection:
        return False
    footprint = shape(item.geometry) if item.geometry else box(*item.bbox)
    if not footprint.intersects(box(*bbox)):
        return False
    if datetime:
        start, _, end = datetime.partition("/")
        when = pd.Timestamp(item.datetime).tz_convert(None)
        if start not in ("", "..") and when < pd.Timestamp(start):
            return False
        if end not in ("", "..") and when > pd.Timestamp(end) + pd.Timedelta(days=1) - pd.Timedelta("1ns"):
            return False
    cloud = item.properties.get("eo:cloud_cover")
    return not (max_cloud_cover is not None and cloud is not None and cloud > max_cloud_cover)


def check_assets(items: Sequence, assets: Sequence[str], *, key: str = "ingest.sources") -> None:
    """Raise InputError naming the items and assets when an item lacks an asset the profile needs."""
    missing = sorted({a for item in items for a in assets if find_band(item, a) is None})
    if missing:
        lacking = [item.id for item in items if any(find_band(item, a) is None for a in assets)]
        have = sorted(items[0].assets) if items else []
        raise InputError(f"STAC items {lacking[:3]} lack the asset(s) {missing} ({key}.bands / mask); "
                         f"assets are {have}")


def find_band(item, name: str) -> tuple[str, int] | None:
    """(asset key, 1-based band) where odc-stac finds band `name` of an item: the asset of that key,
    else the band of an asset whose `eo:bands` name (or common name) it is (assets with fewer bands
    first, then by key); None when the item has no such band."""
    from pystac.errors import ExtensionNotImplemented
    from pystac.extensions.eo import EOExtension

    if name in item.assets:
        return name, 1
    found = []
    for key, asset in item.assets.items():
        try:
            bands = EOExtension.ext(asset).bands or []
        except ExtensionNotImplemented:
            continue
        found += [(len(bands), key, i) for i, band in enumerate(bands, start=1)
                  if name in (band.name, band.common_name)]
    return min(found)[1:] if found else None


def load_items(
    items: Sequence,
    *,
    assets: Sequence[str],
    grid: GeoBox,
    chunk_size: int,
    nearest: Sequence[str] = (),
) -> xr.Dataset:
    """(time, y, x) raw asset values on `grid`, lazily; one time step per item (items must not share
    a datetime). Reflectance resampled bilinear, the `nearest` assets (masks, classes) nearest."""
    import odc.stac

    check_assets(items, assets)
    resampling = {"*": "bilinear", **{a: "nearest" for a in nearest}}
    return odc.stac.load(items, bands=list(assets), geobox=grid, chunks={"x": chunk_size, "y": chunk_size},
                         resampling=resampling, groupby="id", preserve_original_order=True,
                         fail_on_error=True)
