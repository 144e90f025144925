"""STAC: find items (a STAC API search with pystac-client, or a static catalog on disk) and load their
assets lazily onto the AOI's grid with odc-stac.

Both ways end in the same `load_items`, so a static catalog built in a test exercises the API path's
loading. A band is an asset (by key, any case: Planetary Computer's `SCL` is Earth Search's `scl`) or,
as odc-stac resolves it, a band of an asset named in its `eo:bands` (`name` or `common_name`): e.g.
`red` is Planetary Computer's `B04`, or a band of a run's own catalog's `composite` asset. Assets
without `raster:bands` get the sensor profile's data type and nodata (odc-stac would read 0 as NaN).

Real APIs: asset URLs are signed at read time (`signer`, e.g. Planetary Computer's SAS tokens, which
expire), never in the item; GDAL settings (requester pays, endpoints) travel with the source's load
to every Dask worker (`_SourceDriver`); the items of one overpass (tiles with one datetime, or one
solar day) load as one scene (`overpasses`); `item_identity` is what the resume key holds of an item.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import pandas as pd
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.loader import RioDriver
from shapely.geometry import box, shape

from pipeline.errors import InputError

__all__ = ["check_assets", "find_band", "item_crs", "item_identity", "load_items", "overpasses", "search_items",
           "signer"]

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


def check_assets(items: Sequence, assets: Sequence[str], *, key: str = "ingest.sources",
                 what: str = "bands / mask") -> None:
    """Raise InputError naming the items and assets when an item lacks an asset the profile needs."""
    missing = sorted({a for item in items for a in assets if find_band(item, a) is None})
    if missing:
        lacking = [item.id for item in items if any(find_band(item, a) is None for a in assets)]
        have = sorted(items[0].assets) if items else []
        raise InputError(f"STAC items {lacking[:3]} lack the asset(s) {missing} ({key}.{what}); "
                         f"assets are {have}")


def find_band(item, name: str) -> tuple[str, int] | None:
    """(asset key, 1-based band) where odc-stac finds band `name` of an item: the asset of that key (or
    of that key in another case), else the band of an asset whose `eo:bands` name (or common name) it
    is (assets with fewer bands first, then by key); None when the item has no such band."""
    from pystac.errors import ExtensionNotImplemented
    from pystac.extensions.eo import EOExtension

    if name in item.assets:
        return name, 1
    same = [k for k in item.assets if k.lower() == name.lower()]
    if len(same) == 1:
        return same[0], 1
    found = []
    for key, asset in item.assets.items():
        try:
            bands = EOExtension.ext(asset).bands or []
        except ExtensionNotImplemented:
            continue
        found += [(len(bands), key, i) for i, band in enumerate(bands, start=1)
                  if name in (band.name, band.common_name)]
    return min(found)[1:] if found else None


def load_name(item, name: str) -> str:
    """The name odc-stac loads band `name` of an item by: the key of the single-band asset that holds it
    (`scl` -> `SCL`, `red` -> Planetary Computer's `B04` rather than its 3-band `visual`), else `name`
    itself (an `eo:bands` alias of a band in a multi-band asset)."""
    found = find_band(item, name)
    if found is None:
        return name
    bands = item.assets[found[0]].extra_fields.get("eo:bands") or item.assets[found[0]].extra_fields.get("bands")
    return found[0] if len(bands or [None]) == 1 else name


def item_crs(item) -> str | None:
    """The item's CRS as odc-stac reads it (`proj:code`, `proj:epsg` or `proj:wkt2`, item-level or of its
    first asset that has one), or None."""
    for fields in (item.properties, *(asset.extra_fields for asset in item.assets.values())):
        if fields.get("proj:code"):
            return str(fields["proj:code"])
        if fields.get("proj:epsg"):
            return f"EPSG:{int(fields['proj:epsg'])}"
        if fields.get("proj:wkt2"):
            return str(fields["proj:wkt2"])
    return None


def overpasses(items: Sequence, *, lon: float, radiometry: Callable | None = None) -> list[list]:
    """Items grouped into scenes: one group per solar day (UTC time + lon / 15 h, as odc-stac's
    "solar_day"), so the tiles of one overpass are one scene; within a day, items whose `radiometry`
    (e.g. the Sentinel-2 offset) differs stay apart. Groups in time order, items in their given order."""
    groups: dict[tuple, list] = {}
    for item in items:
        when = pd.Timestamp(item.datetime)
        when = when.tz_convert(None) if when.tzinfo else when
        day = (when + timedelta(hours=lon / 15)).date()
        groups.setdefault((day, radiometry(item) if radiometry else None), []).append(item)
    return sorted(groups.values(), key=lambda group: (min(pd.Timestamp(i.datetime) for i in group), group[0].id))


def signer(name: str | None, *, key: str = "ingest.sources") -> Callable[[str], str] | None:
    """The function that signs an asset URL before it is read, for `sign: planetary-computer`
    (`planetary_computer.sign`, which fetches and caches a SAS token per storage container)."""
    if name is None:
        return None
    try:
        import planetary_computer
    except ImportError:
        raise InputError(f"{key}.sign: planetary-computer needs the planetary-computer package: pip install "
                         "'midr-pipeline[planetary-computer]'") from None
    return planetary_computer.sign


class _SourceDriver(RioDriver):
    """odc-stac's rasterio reader with one source's GDAL settings (e.g. AWS_REQUEST_PAYER=requester):
    captured when the load is built, so every Dask worker reads that source's assets with them."""

    def __init__(self, gdal: Mapping[str, str]):
        super().__init__()
        self._gdal = dict(gdal)

    def capture_env(self) -> dict:
        return {**super().capture_env(), **self._gdal}


def load_items(
    items: Sequence,
    *,
    assets: Sequence[str],
    grid: GeoBox,
    chunk_size: int,
    nearest: Sequence[str] = (),
    groups: Sequence[Sequence] | None = None,
    patch_url: Callable[[str], str] | None = None,
    gdal: Mapping[str, str] | None = None,
    types: Mapping[str, tuple[str, float]] | None = None,
) -> xr.Dataset:
    """(time, y, x) raw asset values on `grid`, lazily. One time step per group of `groups` (lists of
    `items`, e.g. `overpasses`; the first item with data wins per pixel), or per item. Reflectance
    resampled bilinear, the `nearest` assets (masks, classes) nearest. `patch_url` signs each URL when
    read; `gdal` are GDAL settings for the reads; `types` maps an asset name (or "*") to its (data type,
    nodata) for assets without `raster:bands`."""
    import odc.stac

    check_assets(items, assets)
    resampling = {"*": "bilinear", **{a: "nearest" for a in nearest}}
    group_of = {id(item): index for index, group in enumerate(groups or [[i] for i in items]) for item in group}
    stac_cfg = {"*": {"assets": {(name if name == "*" else f"{name}.*"): {"data_type": dtype, "nodata": nodata}
                                 for name, (dtype, nodata) in (types or {}).items()}}} if types else None
    return odc.stac.load(items, bands=list(assets), geobox=grid, chunks={"x": chunk_size, "y": chunk_size},
                         resampling=resampling, groupby=lambda item, parsed, idx: group_of[id(item)],
                         preserve_original_order=True, fail_on_error=True, patch_url=patch_url,
                         stac_cfg=stac_cfg, driver=_SourceDriver(gdal) if gdal else None)


def item_identity(item) -> dict:
    """What a stage key holds of an item: its id, the sha256 of its JSON (links aside), and per asset its
    href with `file:checksum` and `updated` where given, or size and modification time for a local file."""
    document = item.to_dict(include_self_link=False, transform_hrefs=False)
    document.pop("links", None)
    assets = {}
    for name, asset in sorted(item.assets.items()):
        href = asset.get_absolute_href() or asset.href
        identity = {"href": href, **{k: asset.extra_fields[k] for k in ("file:checksum", "updated")
                                     if k in asset.extra_fields}}
        local = href[len("file://"):] if href.startswith("file://") else href
        if "://" not in local and os.path.exists(local):
            stat = os.stat(local)
            identity.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        assets[name] = identity
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    return {"id": item.id, "collection": item.collection_id, "updated": item.properties.get("updated"),
            "sha256": digest, "assets": assets}
