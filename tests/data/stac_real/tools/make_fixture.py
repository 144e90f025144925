"""Build an offline static STAC catalog from the real items in items/, with tiny local COGs.

For every item named in `fixture_spec.SPECS` this writes, next to a rewritten copy of the item:
  - one COG per asset we use (blue, green, red, nir, swir1, swir2 and the QA/SCL mask), at the asset's
    native resolution (Landsat 30 m: 32 x 32 px; Sentinel-2 10 m bands 32 x 32 px, 20 m bands and SCL
    16 x 16 px, i.e. the same 320 m square), in the item's own CRS (proj:epsg unchanged) and on the
    item's own pixel grid (the window's corner is snapped to the grid of the original proj:transform);
  - raw DN that encode known reflectances (`fixture_spec.REFLECTANCE`, `WATER`, `CLOUD`) under the
    item's own rule (Landsat C2: DN = (refl + 0.2) / 0.0000275; S2 baseline >= 04.00 unharmonised:
    DN = refl * 10000 + 1000; S2 before 04.00 or Earth Search with `earthsearch:boa_offset_applied`:
    DN = refl * 10000), DN 0 (nodata) in the top row;
  - a mask with known fill/cloud/shadow/cirrus/snow/water pixels (`fixture_spec.landsat_layout`,
    `s2_layout`).

What changes in the rewritten items (everything else is the real item, unchanged): asset hrefs become
relative (`./<key>.tif`); assets we do not write are dropped (so nothing points at the network);
`proj:shape`, `proj:transform` (and `proj:bbox`, `proj:centroid` where present) describe the small
file; `geometry`/`bbox` become the small file's footprint; self/root/parent/collection links are
rewritten by pystac (the item's own stac_version is kept). The two Planetary Computer tiles of one overpass (T46XER, T46XES: same datetime)
get windows that touch, inside the overlap of the two MGRS tiles, so they mosaic into one scene.

Layout: fixture/catalog.json -> <catalog>/catalog.json -> <collection>/collection.json ->
<item id>/<item id>.json + <asset>.tif; all hrefs relative (self-contained catalog).

Run: .venv/bin/python tests/data/stac_real/tools/make_fixture.py [--out tests/data/stac_real/catalog] [--no-check]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pystac
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import Transformer
from rasterio.io import MemoryFile
from shapely.geometry import Polygon, mapping, shape

from fixture_spec import ROLES, SPECS, ItemSpec, decode, encode, landsat_layout, reflectance_of, s2_layout

HERE = Path(__file__).parent
WINDOW_M = {"landsat": 960.0, "s2": 320.0}   # side of the square each fixture covers, metres
SNAP_M = {"landsat": 30.0, "s2": 60.0}       # corner snapped to this grid (S2: 10/20/60 m all align)
PAIR = ("planetary-computer_sentinel-2-l2a", "planetary-computer_sentinel-2-l2a_same-overpass")
DROP_LINKS = {"self", "root", "parent", "collection", "items"}


# ------------------------------------------------------------------------------------------ grids


def _sensor(spec: ItemSpec) -> str:
    return "landsat" if spec.mask == "qa_pixel" else "s2"


def _asset_grid(item: dict, key: str) -> tuple[Affine, tuple[int, int]]:
    """(affine, shape) of one asset in the real item: the asset's proj:* or else the item's."""
    asset, props = item["assets"][key], item["properties"]
    transform = asset.get("proj:transform") or props["proj:transform"]
    shape_ = asset.get("proj:shape") or props["proj:shape"]
    return Affine(*transform[:6]), (int(shape_[0]), int(shape_[1]))


def _epsg(item: dict) -> int:
    props = item["properties"]
    if "proj:epsg" in props:
        return int(props["proj:epsg"])
    return int(str(props["proj:code"]).split(":")[1])


def _snap(value: float, origin: float, step: float) -> float:
    return origin + round((value - origin) / step) * step


def _window_corner(item: dict, spec: ItemSpec) -> tuple[float, float]:
    """(left, top) of the fixture window: the item footprint's centroid, snapped to the item's grid."""
    sensor = _sensor(spec)
    half, step = WINDOW_M[sensor] / 2, SNAP_M[sensor]
    affine, (rows, cols) = _asset_grid(item, spec.assets["mask"])
    to_crs = Transformer.from_crs("EPSG:4326", f"EPSG:{_epsg(item)}", always_xy=True)
    cx, cy = to_crs.transform(*shape(item["geometry"]).centroid.coords[0])
    left = _snap(cx - half, affine.c, step)
    top = _snap(cy + half, affine.f, step)
    # keep the window inside the raster the item describes
    right_edge, bottom_edge = affine.c + cols * affine.a, affine.f + rows * affine.e
    left = min(max(left, affine.c), right_edge - 2 * half)
    top = max(min(top, affine.f), bottom_edge + 2 * half)
    return left, top


def _pair_corners(items: dict[str, dict]) -> dict[str, tuple[float, float]]:
    """Windows for two same-overpass S2 tiles that touch along one row edge inside their overlap."""
    south, north = (items[name] for name in PAIR)
    assert _epsg(south) == _epsg(north), "the pair must share a UTM zone"
    key = SPECS[PAIR[0]].assets["mask"]
    (a_s, (rows_s, cols_s)), (a_n, _) = _asset_grid(south, key), _asset_grid(north, key)
    overlap_bottom, overlap_top = a_n.f + rows_s * a_n.e, a_s.f    # north tile's bottom, south's top
    assert overlap_bottom < overlap_top, "the two tiles do not overlap in northing"
    y_mid = _snap((overlap_bottom + overlap_top) / 2, a_s.f, SNAP_M["s2"])
    x_left = _snap(a_s.c + cols_s * a_s.a / 2, a_s.c, SNAP_M["s2"])
    side = WINDOW_M["s2"]
    return {PAIR[0]: (x_left, y_mid), PAIR[1]: (x_left, y_mid + side)}


# ------------------------------------------------------------------------------------------ rasters


def _write_cog(path: Path, data: np.ndarray, *, epsg: int, transform: Affine, nodata: float) -> None:
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
               "dtype": data.dtype.name, "crs": f"EPSG:{epsg}", "transform": transform, "nodata": nodata}
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(data, 1)
        with mem.open() as src:
            rasterio.shutil.copy(src, str(path), driver="COG", COMPRESS="DEFLATE", OVERVIEWS="NONE")


def _layers(spec: ItemSpec, res_by_key: dict[str, float]) -> dict[str, tuple[np.ndarray, float]]:
    """asset key -> (raw array at the asset's resolution, nodata) for one item."""
    if spec.mask == "qa_pixel":
        mask, surface = landsat_layout(32)
        mask_res, mask_nodata = 30.0, 1
    else:
        mask, surface = s2_layout(16)
        mask_res, mask_nodata = 20.0, 0
    out = {spec.assets["mask"]: (mask, mask_nodata)}
    for role in ROLES:
        key = spec.assets[role]
        factor = int(round(mask_res / res_by_key[key]))
        grid = np.repeat(np.repeat(surface, factor, axis=0), factor, axis=1) if factor > 1 else surface
        out[key] = (encode(reflectance_of(grid, role), spec.encoding), 0)
    return out


# ------------------------------------------------------------------------------------------ items


def _like(original: list, values: list[float]) -> list:
    """New numbers in the style of the original list (ints stay ints)."""
    if all(isinstance(v, int) for v in original):
        return [int(round(v)) for v in values]
    return [float(v) for v in values]


def _footprint(epsg: int, left: float, top: float, side: float) -> Polygon:
    to_ll = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
    corners = [(left, top), (left + side, top), (left + side, top - side), (left, top - side)]
    return Polygon([to_ll.transform(x, y) for x, y in corners])


def _rewrite(item: dict, spec: ItemSpec, corner: tuple[float, float], folder: Path) -> dict:
    """The real item with hrefs, proj:* and footprint of the small files; writes the COGs to folder."""
    new = copy.deepcopy(item)
    epsg, sensor = _epsg(item), _sensor(spec)
    side = WINDOW_M[sensor]
    left, top = corner
    keys = list(dict.fromkeys(spec.assets.values()))
    res_by_key = {key: abs(_asset_grid(item, key)[0].a) for key in keys}
    layers = _layers(spec, res_by_key)
    new["assets"] = {}
    for key in keys:
        asset = copy.deepcopy(item["assets"][key])
        res = res_by_key[key]
        n = int(round(side / res))
        affine = Affine(res, 0.0, left, 0.0, -res, top)
        data, nodata = layers[key]
        assert data.shape == (n, n), (key, data.shape, n)
        _write_cog(folder / f"{key}.tif", data, epsg=epsg, transform=affine, nodata=nodata)
        asset["href"] = f"./{key}.tif"
        asset.pop("alternate", None)
        if "proj:transform" in asset:
            asset["proj:transform"] = _like(asset["proj:transform"], list(affine)[:len(asset["proj:transform"])])
        if "proj:shape" in asset:
            asset["proj:shape"] = [n, n]
        if "proj:bbox" in asset:
            asset["proj:bbox"] = _like(asset["proj:bbox"], [left, top - side, left + side, top])
        new["assets"][key] = asset
    props = new["properties"]
    if "proj:transform" in props:  # Landsat: one grid for the item
        res = res_by_key[spec.assets["red"]]
        n = int(round(side / res))
        props["proj:transform"] = _like(props["proj:transform"],
                                        list(Affine(res, 0.0, left, 0.0, -res, top))[:len(props["proj:transform"])])
        props["proj:shape"] = [n, n]
    if "proj:bbox" in props:
        props["proj:bbox"] = _like(props["proj:bbox"], [left, top - side, left + side, top])
    footprint = _footprint(epsg, left, top, side)
    if "proj:centroid" in props:
        props["proj:centroid"] = {"lat": round(footprint.centroid.y, 5), "lon": round(footprint.centroid.x, 5)}
    new["geometry"] = mapping(footprint)
    new["geometry"]["coordinates"] = [[list(xy) for xy in ring] for ring in new["geometry"]["coordinates"]]
    new["bbox"] = list(footprint.bounds)
    new["links"] = [link for link in item.get("links", []) if link.get("rel") not in DROP_LINKS]
    return new


def build(out: Path) -> Path:
    """Write the fixture catalog under `out`; returns the path of its root catalog.json."""
    if out.exists():
        shutil.rmtree(out)
    items = {name: json.loads((HERE / "items" / f"{name}.json").read_text()) for name in SPECS}
    corners = {name: _window_corner(items[name], spec) for name, spec in SPECS.items()}
    corners.update(_pair_corners(items))

    root = pystac.Catalog(id="midr-stac-fixture", description=(
        "Real Planetary Computer and Earth Search STAC items (see items/ and PROVENANCE.md) with their "
        "assets rewritten to tiny local COGs of known reflectance; built by make_fixture.py."))
    by_collection: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for name, spec in SPECS.items():
        by_collection.setdefault((spec.catalog, items[name]["collection"]), []).append((name, items[name]))
    for catalog_id in dict.fromkeys(spec.catalog for spec in SPECS.values()):
        child = pystac.Catalog(id=catalog_id, description=f"items from {catalog_id}")
        root.add_child(child)
        for (cat, collection_id), members in by_collection.items():
            if cat != catalog_id:
                continue
            collection = pystac.Collection(
                id=collection_id, description=f"{catalog_id} {collection_id} items, assets made local",
                extent=pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                                     pystac.TemporalExtent([[None, None]])),
                license="other")
            child.add_child(collection)
            for name, item in members:
                folder = out / catalog_id / collection_id / item["id"]
                folder.mkdir(parents=True, exist_ok=True)
                rewritten = _rewrite(item, SPECS[name], corners[name], folder)
                # migrate=False: pystac 1.15 would otherwise rewrite proj:epsg -> proj:code, eo 1.0 -> 1.1
                collection.add_item(pystac.Item.from_dict(rewritten, migrate=False, preserve_dict=False))
            collection.update_extent_from_items()
    root.normalize_hrefs(str(out))
    root.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    # pystac writes its own STAC version (1.1.0) into every item; put the real item's back
    for item in root.get_items(recursive=True):
        path = Path(item.get_self_href())
        written = json.loads(path.read_text())
        written["stac_version"] = next(i["stac_version"] for i in items.values() if i["id"] == item.id)
        path.write_text(json.dumps(written, indent=2) + "\n")
    return out / "catalog.json"


# ------------------------------------------------------------------------------------------ check


def _naive(dn: np.ndarray, raster_bands: list | None) -> str:
    """What DN * scale + offset from the item's raster:bands gives (or why it cannot be used)."""
    if not raster_bands or "scale" not in raster_bands[0]:
        return "no raster:bands scale"
    band = raster_bands[0]
    return f"{float(dn) * band['scale'] + band.get('offset', 0.0):.4f}"


def _geobox(item: dict, key: str):
    """The GeoBox of one asset of a (rewritten) item dict, from its own proj:* metadata."""
    from odc.geo.geobox import GeoBox

    affine, shape_ = _asset_grid(item, key)
    return GeoBox(shape_, affine, f"EPSG:{_epsg(item)}")


# odc-stac needs dtype/nodata where an item has no raster:bands (Planetary Computer's sentinel-2-l2a):
# without them it loads float32 and turns DN 0 into NaN.
PC_S2_STAC_CFG = {"sentinel-2-l2a": {"assets": {"*": {"data_type": "uint16", "nodata": 0},
                                                "SCL": {"data_type": "uint8", "nodata": 0}}}}


def check(catalog_path: Path) -> None:
    """Load every fixture item from the catalog on disk with odc.stac.load and compare with the truth."""
    import odc.stac

    root = pystac.Catalog.from_file(str(catalog_path))
    items = {item.id: item for item in root.get_items(recursive=True)}
    first = next(iter(items.values()))
    print(f"catalog {catalog_path}: {len(items)} items in {len(list(root.get_children()))} catalogs; "
          f"pystac {pystac.__version__} reads {first.id} with properties "
          f"{ {k: v for k, v in first.properties.items() if k.startswith('proj:')} }")
    failures = 0
    for name, spec in SPECS.items():
        real = json.loads((HERE / "items" / f"{name}.json").read_text())
        item = items[real["id"]]
        on_disk = json.loads(Path(item.get_self_href()).read_text())
        keys = [spec.assets[r] for r in (*ROLES, "mask")]
        grid = _geobox(on_disk, spec.assets["red"])
        cfg = PC_S2_STAC_CFG if name.startswith("planetary-computer_sentinel-2") else None
        data = odc.stac.load([item], bands=keys, geobox=grid, groupby="id", resampling={"*": "nearest"},
                             chunks={}, stac_cfg=cfg).compute()
        bare = odc.stac.load([item], bands=[spec.assets["red"]], geobox=grid, groupby="id")
        print(f"\n== {name}  ({item.id}, {item.datetime:%Y-%m-%d %H:%M:%S}, EPSG:{_epsg(on_disk)}, "
              f"{spec.encoding}) grid {grid.shape.y}x{grid.shape.x} at {grid.resolution.x:g} m, "
              f"top-left ({grid.affine.c:.0f}, {grid.affine.f:.0f}); red without stac_cfg: "
              f"dtype={bare[spec.assets['red']].dtype}, nodata={bare[spec.assets['red']].attrs.get('nodata')}")
        mask = data[spec.assets["mask"]].isel(time=0).values
        land_px = np.argwhere(mask == (21824 if spec.mask == "qa_pixel" else 4))[0]
        water_px = np.argwhere(mask == (21952 if spec.mask == "qa_pixel" else 6))[0]
        for role in (*ROLES, "mask"):
            key = spec.assets[role]
            var = data[key]
            values = var.isel(time=0).values
            line = f"  {role:6s} {key:9s} {var.dtype}, nodata={var.attrs.get('nodata')!s:2s}"
            if role == "mask":
                uniq, counts = np.unique(values, return_counts=True)
                print(f"{line} values(count)={dict(zip(uniq.tolist(), counts.tolist()))}")
                continue
            got = decode(values, spec.encoding)
            want_land = {"blue": .05, "green": .08, "red": .10, "nir": .30, "swir1": .20, "swir2": .12}[role]
            want_water = {"blue": .04, "green": .05, "red": .03, "nir": .01, "swir1": .005, "swir2": .003}[role]
            ok = (abs(got[tuple(land_px)] - want_land) < 1e-4 and abs(got[tuple(water_px)] - want_water) < 1e-4
                  and np.isnan(got[0]).all())
            failures += not ok
            dn = values[tuple(land_px)]
            print(f"{line} land DN={int(dn):5d} -> {got[tuple(land_px)]:.4f}, water -> "
                  f"{got[tuple(water_px)]:.4f}, top row nodata {'ok' if ok else 'WRONG'}; "
                  f"DN*scale+offset from raster:bands -> {_naive(dn, real['assets'][key].get('raster:bands'))}")
    pair_dicts = [json.loads((HERE / "items" / f"{n}.json").read_text()) for n in PAIR]
    pair = [items[d["id"]] for d in pair_dicts]
    keys = [SPECS[PAIR[0]].assets[r] for r in ("red", "mask")]
    crs = f"EPSG:{_epsg(pair_dicts[0])}"
    kw = {"bands": keys, "crs": crs, "resolution": 10, "chunks": {}, "stac_cfg": PC_S2_STAC_CFG}
    by_id = odc.stac.load(pair, groupby="id", **kw)
    by_day = odc.stac.load(pair, groupby="solar_day", **kw).compute()
    print(f"\n== same overpass {[i.id[-30:] for i in pair]}\n  datetimes {[str(i.datetime) for i in pair]}"
          f"\n  groupby='id': time={[str(t)[:23] for t in by_id.time.values]} sizes={dict(by_id.sizes)}"
          f"\n  groupby='solar_day': time={[str(t)[:23] for t in by_day.time.values]} sizes={dict(by_day.sizes)}"
          f", SCL pixels with data: {int((by_day['SCL'].values > 0).sum())} of {by_day['SCL'].size}")
    print(f"\n{'all decoded reflectances match' if not failures else f'{failures} MISMATCHES'}")
    if failures:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "catalog")
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    started = datetime.now()
    catalog = build(args.out)
    print(f"wrote {catalog} in {(datetime.now() - started).total_seconds():.1f} s")
    if not args.no_check:
        check(catalog)


if __name__ == "__main__":
    main()
