"""A finished run's rasters as a self-contained static STAC catalog, and its offline validation.

    stac/catalog.json                                        the run: one child collection per AOI
    stac/<aoi_id>/collection.json                            the AOI: extent, first-change-year asset
    stac/<aoi_id>/<aoi_id>_<period>/<aoi_id>_<period>.json   one item per AOI and period

Each item holds the period's COGs as assets, by relative href (the catalog moves with the run folder):
`composite` (float32, every band, NaN nodata; `raster:bands` and `eo:bands` in band order),
`class_map` (uint8, 255 nodata, `classification:classes` from the run's classes, as classified),
`class_map_cleaned` (the same, gap-filled and with the minimum mapping unit applied: what the tables
count), `cleaning` (what cleaning did to each pixel) and `confidence` where the run wrote them, each
with `proj:*` of its grid and `file:size`/`file:checksum`. The collection holds the change maps:
`first_change`, `change_first_last` and `change_<from>_to_<to>` (change.consecutive_maps). The item's
`datetime` is 1 July of the period (with `start_datetime`/`end_datetime` spanning the year), so the
pipeline's own STAC ingest (`kind: stac` with `catalog:`) loads every composite as one scene of its
year. Nothing in the catalog depends on when it was written (no `created`/`updated`): the same run gives
the same bytes. It names no community or site (AOI ids and rasters only), so it is as public as the run.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.stac_io import DefaultStacIO

from pipeline import io
from pipeline.ingest.rasters import open_raster
from pipeline.config import ClassDef
from pipeline.errors import InputError
from pipeline.products.kept import kept_aois
from pipeline.results import OutputLayout, RunOutputs, open_run

__all__ = ["validate_output_catalog", "write_output_catalog"]

log = logging.getLogger(__name__)

# composite band -> (eo common name, description); other bands get a name only
_SPECTRAL = {"blue": "blue", "green": "green", "red": "red", "nir": "nir", "swir1": "swir16", "swir2": "swir22"}
_INDICES = {
    "ndvi": "normalised difference vegetation index (nir, red)",
    "ndwi": "normalised difference water index (green, nir)",
    "ndbi": "normalised difference built-up index (swir1, nir)",
    "bsi": "bare soil index",
    "ndvi_min": "lowest NDVI of the period's clear scenes",
    "ndvi_max": "highest NDVI of the period's clear scenes",
}
_CLASS_NODATA = 255
_DEGREES = 7  # decimals of lon/lat in geometries and bboxes (~1 cm)


def write_output_catalog(run_dir: Path, manifest: dict | None = None, keep: set[str] | None = None) -> list[Path]:
    """Write `<run_dir>/stac/catalog.json` and its collections and items; returns the files written.

    One collection per AOI whose composites were written, one item per AOI and period (see the module
    docstring). `manifest`: the run's manifest where it is not yet on disk. JSON files under `stac/`
    left from an earlier catalog of the folder and not written now are removed. The AOIs in `keep`
    (default: those that failed in the run, `kept_aois`) keep the collection and items of the earlier
    catalog, as they were.
    """
    run = open_run(run_dir) if manifest is None else RunOutputs(OutputLayout(Path(run_dir)), manifest)
    layout = run.layout
    keep = kept_aois(run) if keep is None else set(keep)
    earlier = {a: layout.path("stac", a, "collection.json") for a in keep}
    earlier = {a: path for a, path in earlier.items() if path.is_file()}
    # a kept AOI's files exactly as the earlier run wrote them (a read-and-save by pystac may format them anew)
    kept_bytes = {path: path.read_bytes() for a, collection in earlier.items()
                  for path in sorted(collection.parent.rglob("*.json"))}
    root = pystac.Catalog(id=run.manifest["run_name"], title=f"midr-pipeline run {run.manifest['run_name']}",
                          description="Yearly composites, land-cover class maps and change rasters of a "
                                      "midr-pipeline run, one collection per mine area (AOI).",
                          catalog_type=pystac.CatalogType.SELF_CONTAINED)
    for aoi_id in sorted(set(_done(run, "composite")) | set(earlier)):
        if aoi_id in earlier:  # failed in this run: its last good collection, read back
            root.add_child(pystac.Collection.from_file(str(earlier[aoi_id])))
        elif run.periods(aoi_id):
            root.add_child(_collection(run, aoi_id))
    root.normalize_hrefs(str(layout.stac_catalog.parent.absolute()))
    root.make_all_asset_hrefs_relative()
    stac_io = _RunStacIO()
    root.save(catalog_type=pystac.CatalogType.SELF_CONTAINED, stac_io=stac_io)
    written = sorted(stac_io.written)
    for path, content in kept_bytes.items():
        if path.is_file() and path.read_bytes() != content:
            io.write_bytes(content, path)
    folder = layout.stac_catalog.parent.absolute()  # `written` is absolute: a relative run_dir must not look stale
    for stale in sorted(set(folder.rglob("*.json")) - {p.absolute() for p in written}):
        log.info("removing %s, left from an earlier catalog of this run folder", stale)
        stale.unlink()
        if not any(stale.parent.iterdir()) and stale.parent != folder:
            stale.parent.rmdir()
    log.info("wrote the STAC catalog of %s: %d files", layout.run_dir, len(written))
    return written


def validate_output_catalog(path: Path) -> int:
    """Validate a catalog and every collection and item under it; returns the number validated.

    Offline: each JSON file is checked against the STAC 1.1.0 core JSON schemas that pystac bundles
    (`pystac.validation.local_validator.get_local_schema_cache`), with a schema registry that cannot
    fetch anything, so no network is used. The extension schemas (projection, raster, eo,
    classification, file) live only at their remote URLs and are NOT checked; what is checked besides
    the core: every child/item link and every asset href resolves to an existing file. Raises
    InputError naming the file at fault.
    """
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match
    from pystac.validation.local_validator import get_local_schema_cache
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable

    cache = get_local_schema_cache()
    registry = Registry().with_resources([(uri, Resource.from_contents(s)) for uri, s in cache.items()])
    version = pystac.get_stac_version()
    schemas = {kind: cache[f"https://schemas.stacspec.org/v{version}/{kind}-spec/json-schema/{kind}.json"]
               for kind in ("catalog", "collection", "item")}
    validators = {kind: Draft7Validator(schema, registry=registry) for kind, schema in schemas.items()}
    kinds = {"Catalog": "catalog", "Collection": "collection", "Feature": "item"}
    pending, seen = [Path(path).absolute()], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        document = _read_document(current)
        kind = kinds.get(document.get("type"))
        if kind is None:
            raise InputError(f"{current}: not a STAC catalog, collection or item (type {document.get('type')!r})")
        if document.get("stac_version") != version:
            raise InputError(f"{current}: stac_version {document.get('stac_version')!r}; the bundled core "
                             f"schemas are for {version}")
        try:
            error = best_match(validators[kind].iter_errors(document))
        except Unresolvable as err:
            raise InputError(f"{current}: the {kind} schema refers to {err.ref!r}, not available offline") from None
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(top level)"
            raise InputError(f"{current}: not a valid STAC {kind} at {where}: {error.message}")
        for link in document.get("links", []):
            if link.get("rel") in ("child", "item"):
                target = _local(link["href"], current)
                if not target.is_file():
                    raise InputError(f"{current}: its {link['rel']} link {link['href']!r} points to no file")
                pending.append(target)
        for key, asset in sorted(document.get("assets", {}).items()):
            if not _local(asset["href"], current).is_file():
                raise InputError(f"{current}: asset {key!r} points to {asset['href']!r}, which does not exist")
    return len(seen)


# ------------------------------------------------------------------------------------------- builders


def _done(run: RunOutputs, stage: str) -> list[str]:
    """The AOIs whose `stage` finished (a later stage may have failed)."""
    return [a for a in run.aoi_ids
            if run.manifest["aois"][a].get("stages", {}).get(stage, {}).get("status") == "done"]


def _collection(run: RunOutputs, aoi_id: str) -> pystac.Collection:
    layout, periods = run.layout, run.period_table(aoi_id)
    classified = aoi_id in _done(run, "classify")
    items = [_item(run, aoi_id, period, classified=classified) for period in periods.itertuples()]
    boxes = [item.bbox for item in items]
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    start, _ = _span(periods.iloc[0])
    _, end = _span(periods.iloc[-1])
    kind = run.manifest["aois"][aoi_id]["stages"]["composite"].get("period_kind", "year")
    collection = pystac.Collection(
        id=aoi_id, title=f"AOI {aoi_id}",
        description=f"Outputs of mine area (AOI) {aoi_id!r} per {kind.removesuffix('s')} period, "
                    f"{periods['period_label'].iloc[0]} to {periods['period_label'].iloc[-1]}: composites"
                    + (", land-cover class maps and the period of first change" if classified else ""),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, end]])),
        license="other", catalog_type=pystac.CatalogType.SELF_CONTAINED)
    if aoi_id in _done(run, "change") and layout.first_change(aoi_id).exists():
        asset = _raster_asset(layout.first_change(aoi_id), title="First change",
                              description="number k of the period in which the pixel's class first changed "
                                          "(k-th item of the collection, in time order; the file's PERIOD_k tags "
                                          "name them); 0 = never changed; 65535 = nodata (fewer than two "
                                          "periods observed)", roles=["data"])
        collection.add_asset("first_change", asset)
        _raster_fields(asset, layout.first_change(aoi_id), data_type=DataType.UINT16, nodata=65535)
    if aoi_id in _done(run, "change"):
        ids = list(periods["period"])
        pairs = [("change_first_last", ids[0], ids[-1], layout.change_first_last(aoi_id))] if len(ids) > 1 else []
        pairs += [(f"change_{a}_to_{b}", a, b, layout.change_consecutive(aoi_id, a, b)) for a, b in itertools.pairwise(ids)]
        for key, period_from, period_to, path in pairs:
            if not path.exists():
                continue
            asset = _raster_asset(path, title=f"Change {period_from} to {period_to}", roles=["data"],
                                  description=f"change from {period_from} to {period_to} in the cleaned class maps: "
                                              "0 = stable, then each transition of interest, then any other change "
                                              "(the file's CHANGE_<value> tags name them); 255 = nodata")
            collection.add_asset(key, asset)
            _raster_fields(asset, path, data_type=DataType.UINT8, nodata=_CLASS_NODATA)
    for item in items:
        collection.add_item(item)
    return collection


def _item(run: RunOutputs, aoi_id: str, row, *, classified: bool) -> pystac.Item:
    layout, period = run.layout, row.period
    path = layout.composite(aoi_id, period)
    geometry, bbox = _footprint(path)
    start, end = _span(row)
    middle = start + (end - start) / 2
    item = pystac.Item(id=f"{aoi_id}_{period}", geometry=geometry, bbox=bbox,
                       datetime=middle.replace(microsecond=0), start_datetime=start, end_datetime=end,
                       properties={"title": f"{aoi_id} {row.period_label}", "midr:aoi_id": aoi_id,
                                   "midr:period": period})
    composite = _raster_asset(path, title=f"Composite {period}", roles=["data", "reflectance"],
                              description="median of the period's clear scenes: reflectance bands and indices")
    item.add_asset("composite", composite)
    names = _raster_fields(composite, path, data_type=DataType.FLOAT32, nodata="nan")
    EOExtension.ext(composite, add_if_missing=True).apply(bands=[_eo_band(name) for name in names])
    if classified:
        def add_class_map(key: str, path: Path, title: str, description: str) -> None:
            asset = _raster_asset(path, title=title, roles=["data", "classification"], description=description)
            item.add_asset(key, asset)
            _raster_fields(asset, path, data_type=DataType.UINT8, nodata=_CLASS_NODATA)
            ClassificationExtension.ext(asset, add_if_missing=True).apply(classes=_classes(run.classes))

        add_class_map("class_map", layout.class_map(aoi_id, period), f"Land-cover classes {period}",
                      "class code per pixel; 255 = nodata (not classified)")
        path = layout.cleaned_class_map(aoi_id, period)
        if path.exists():
            add_class_map("class_map_cleaned", path, f"Land-cover classes {period}, cleaned",
                          "class code per pixel, gap-filled from the nearest observed periods and with the minimum "
                          "mapping unit applied (what the run's tables count); 255 = nodata")
        path = layout.cleaning(aoi_id, period)
        if path.exists():
            flags = _raster_asset(path, title=f"Cleaning {period}", roles=["metadata", "quality"],
                                  description="0 = observed; 1 = gap-filled; 2 = class changed by the minimum "
                                              "mapping unit; 3 = both; 255 = no class")
            item.add_asset("cleaning", flags)
            _raster_fields(flags, path, data_type=DataType.UINT8, nodata=255)
        path = layout.confidence(aoi_id, period)
        if path.exists():
            confidence = _raster_asset(path, title=f"Classification confidence {period}", roles=["data", "quality"],
                                       description="probability of the mapped class (0-1); NaN = nodata")
            item.add_asset("confidence", confidence)
            _raster_fields(confidence, path, data_type=DataType.FLOAT32, nodata="nan")
    return item


def _raster_asset(path: Path, *, title: str, description: str, roles: list[str]) -> pystac.Asset:
    if not path.is_file():
        raise InputError(f"{path}: missing, but the run's manifest says its stage is done; "
                         "re-run the AOI or remove the folder")
    return pystac.Asset(href=str(path.absolute()), title=title, description=description,
                        media_type=pystac.MediaType.COG, roles=roles)


def _raster_fields(asset: pystac.Asset, path: Path, *, data_type: DataType, nodata: float | str) -> list[str]:
    """proj:*, raster:bands and file:* of a (just added) asset, from its file's header; its band names."""
    raster = open_raster(path, chunk_size=512)
    if raster.dtype.name != data_type.value:
        raise InputError(f"{path}: data type {raster.dtype.name}, expected {data_type.value}")
    grid = raster.odc.geobox
    epsg = grid.crs.epsg
    a = grid.affine
    left, bottom, right, top = grid.boundingbox
    ProjectionExtension.ext(asset, add_if_missing=True).apply(
        code=f"EPSG:{epsg}" if epsg is not None else None,
        wkt2=None if epsg is not None else grid.crs.to_wkt(),
        shape=[grid.shape.y, grid.shape.x], transform=[a.a, a.b, a.c, a.d, a.e, a.f],
        bbox=[left, bottom, right, top])
    if epsg is not None:  # projection v1's field too, for readers of the JSON that know only it (stackstac)
        asset.extra_fields["proj:epsg"] = int(epsg)
    names = [d or f"b{i}" for i, d in enumerate(raster.attrs["descriptions"], start=1)]
    bands = []
    for name in names:
        band = RasterBand.create(data_type=data_type, nodata=nodata,
                                 spatial_resolution=abs(a.a) if abs(a.a) == abs(a.e) else None)
        band.properties = {"name": name, **band.properties}  # as STAC 1.1 `bands`; odc-stac ignores it
        bands.append(band)
    RasterExtension.ext(asset, add_if_missing=True).apply(bands=bands)
    file = FileExtension.ext(asset, add_if_missing=True)
    file.size = path.stat().st_size
    file.checksum = "1220" + io.sha256(path)  # multihash: sha2-256, 32 bytes
    return names


def _eo_band(name: str) -> Band:
    if name in _SPECTRAL:
        return Band.create(name=name, common_name=_SPECTRAL[name])
    return Band.create(name=name, description=_INDICES.get(name))


def _classes(classes: list[ClassDef]) -> list[Classification]:
    """The run's classes as classification:classes (name: letters, digits, _ and - only), and 255."""
    out, used = [], set()
    for c in sorted(classes, key=lambda c: c.code):
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", c.name).strip("_") or f"class_{c.code}"
        name = f"{name}_{c.code}" if name in used else name
        used.add(name)
        out.append(Classification.create(value=c.code, name=name, title=c.name,
                                         color_hint=c.colour.lstrip("#").upper()))
    out.append(Classification.create(value=_CLASS_NODATA, name="nodata", title="not classified", nodata=True))
    return out


def _footprint(path: Path) -> tuple[dict, list[float]]:
    """A raster's footprint in WGS 84 lon/lat (its four corners), GeoJSON, and its bbox, outward-rounded."""
    grid = open_raster(path, chunk_size=512).odc.geobox
    footprint = grid.extent.to_crs("EPSG:4326").geom  # corners only (not densified): no point inside the edges
    ring = [[round(x, _DEGREES), round(y, _DEGREES)] for x, y in footprint.exterior.coords]
    minx, miny, maxx, maxy = footprint.bounds
    scale = 10**_DEGREES
    bbox = [math.floor(minx * scale) / scale, math.floor(miny * scale) / scale,
            math.ceil(maxx * scale) / scale, math.ceil(maxy * scale) / scale]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def _span(row) -> tuple[datetime, datetime]:
    """A period's first and last second (UTC) from its row of `RunOutputs.period_table`."""
    first, last = datetime.fromisoformat(row.period_start), datetime.fromisoformat(row.period_end)
    return first.replace(tzinfo=UTC), last.replace(hour=23, minute=59, second=59, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------ I/O


class _RunStacIO(DefaultStacIO):
    """pystac's writer through `io.write_json` (temporary name, then rename); remembers what it wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[Path] = []

    def save_json(self, dest, json_dict: dict, *args, **kwargs) -> None:
        path = Path(os.fspath(dest) if not isinstance(dest, pystac.Link) else dest.get_absolute_href())
        io.write_json(json_dict, path)
        self.written.append(path)


def _read_document(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read as STAC JSON ({err})") from None


def _local(href: str, document: Path) -> Path:
    if re.match(r"^[a-z][a-z0-9+.-]*://", href):
        raise InputError(f"{document}: link {href!r} is not a local relative path; the catalog is not "
                         "self-contained")
    return (document.parent / href).resolve()
