"""The synthetic demo scene: files, formats, determinism and the resettlement story."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer

from pipeline.demo import CLASS_CODES, generate_demo

SMALL_YEARS = list(range(2016, 2022))
SCENES_PER_YEAR = 3
RESETTLEMENT_YEAR = 2018
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2", "mask")
EVENT_COLUMNS = [
    "event_id", "mine", "company", "country", "iso3", "commodity", "lifecycle_stage",
    "event_type", "year_start", "year_end", "displaced_count", "displaced_unit",
    "origin_community", "resettlement_site", "mine_lat", "mine_lon", "site_lat", "site_lon",
    "coords_note", "source", "origin_lat", "origin_lon",
]  # the real events table's columns, then the demo's two extra ones
MINING, BUILT = 6, 5
PIXEL_HA = 30 * 30 / 10_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    return generate_demo(out, out / "aoi" / "demo_mine.geojson", size="small", seed=7)


@pytest.fixture(scope="module")
def truth(demo) -> dict[int, np.ndarray]:
    maps = {}
    for year in SMALL_YEARS:
        with rasterio.open(demo["truth_dir"] / f"{year}.tif") as src:
            maps[year] = src.read(1)
    return maps


@pytest.fixture(scope="module")
def scenes(demo) -> dict[str, np.ndarray]:
    """(band, y, x) uint16 arrays by file name."""
    out = {}
    for path in sorted(demo["scenes_dir"].glob("*.tif")):
        with rasterio.open(path) as src:
            out[path.name] = src.read()
    return out


@pytest.fixture(scope="module")
def event(demo) -> pd.Series:
    return pd.read_csv(demo["events"]).iloc[0]


def pixel_of(demo, lat: float, lon: float) -> tuple[int, int]:
    with rasterio.open(demo["truth_dir"] / f"{SMALL_YEARS[0]}.tif") as src:
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(lon, lat)
        return src.index(x, y)


def blob_at(class_map: np.ndarray, pixel: tuple[int, int], radius: int = 8) -> np.ndarray:
    """Bool mask of the pixels within ``radius`` of ``pixel``."""
    rows, cols = np.indices(class_map.shape)
    return np.hypot(rows - pixel[0], cols - pixel[1]) <= radius


def test_writes_one_scene_per_date_and_one_truth_map_per_year(demo):
    assert set(demo) == {"scenes_dir", "truth_dir", "training_points", "events", "aoi"}
    names = sorted(p.name for p in demo["scenes_dir"].glob("*.tif"))
    assert len(names) == len(SMALL_YEARS) * SCENES_PER_YEAR
    for year in SMALL_YEARS:
        assert sum(n.startswith(f"demo_{year}") for n in names) == SCENES_PER_YEAR
    assert sorted(p.name for p in demo["truth_dir"].glob("*.tif")) == [
        f"{y}.tif" for y in SMALL_YEARS
    ]
    for key in ("training_points", "events", "aoi"):
        assert demo[key].is_file()
    leftovers = [p for p in demo["scenes_dir"].parent.rglob(".*")]
    assert leftovers == []  # no temporary files left behind


def test_scenes_are_7_band_uint16_utm36s_with_dates(demo):
    for path in sorted(demo["scenes_dir"].glob("*.tif")):
        with rasterio.open(path) as src:
            assert (src.count, src.dtypes[0], src.nodata) == (7, "uint16", 0)
            assert src.descriptions == BANDS
            assert src.crs.to_epsg() == 32736
            assert src.res == (30.0, 30.0) and src.transform.e < 0
            assert src.transform.c % 30 == 0 and src.transform.f % 30 == 0
            assert src.compression.name.lower() == "deflate" and src.is_tiled
            stamp = path.stem.removeprefix("demo_")
            tags = src.tags()
            assert tags["DATETIME"] == f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}T00:00:00"
            assert tags["SENSOR"] == "synthetic"


def test_scene_dates_spread_across_each_year(scenes):
    months = {}
    for name in scenes:
        months.setdefault(int(name[5:9]), []).append(int(name[9:11]))
    for year_months in months.values():
        assert max(year_months) - min(year_months) >= 6


def test_truth_maps_are_class_codes_on_the_scene_grid(demo, truth):
    with rasterio.open(demo["truth_dir"] / "2016.tif") as t, rasterio.open(
        next(demo["scenes_dir"].glob("*.tif"))
    ) as s:
        assert (t.dtypes[0], t.nodata, t.descriptions) == ("uint8", 255, ("class",))
        assert (t.crs, t.transform, t.shape) == (s.crs, s.transform, s.shape)
    for class_map in truth.values():
        assert set(np.unique(class_map)) <= set(CLASS_CODES)
    assert set(np.unique(np.stack(list(truth.values())))) == set(CLASS_CODES)


def test_same_seed_gives_identical_files_other_seed_differs(tmp_path):
    runs = [
        generate_demo(tmp_path / name, tmp_path / f"{name}.geojson", size="small", seed=seed)
        for name, seed in (("a", 3), ("b", 3), ("c", 4))
    ]
    for sub in ("scenes_dir", "truth_dir"):
        files = sorted(p.name for p in runs[0][sub].glob("*.tif"))
        assert files == sorted(p.name for p in runs[1][sub].glob("*.tif"))
        for name in files:
            assert (runs[0][sub] / name).read_bytes() == (runs[1][sub] / name).read_bytes()
    first_a, first_c = (sorted(run["scenes_dir"].glob("*.tif"))[0] for run in (runs[0], runs[2]))
    with rasterio.open(first_a) as a, rasterio.open(first_c) as c:
        assert not np.array_equal(a.read(), c.read())


def test_mining_area_is_sizeable_and_grows_every_year(truth):
    areas = [(truth[y] == MINING).sum() * PIXEL_HA for y in SMALL_YEARS]
    assert areas[0] >= 20
    assert all(later > earlier for earlier, later in zip(areas, areas[1:]))


def test_origin_village_is_built_up_until_it_is_cleared(demo, truth, event):
    assert (event.year_start, event.year_end) == (RESETTLEMENT_YEAR, RESETTLEMENT_YEAR)
    centre = pixel_of(demo, event.origin_lat, event.origin_lon)
    village = blob_at(truth[SMALL_YEARS[0]], centre) & (truth[SMALL_YEARS[0]] == BUILT)
    assert village.sum() >= 20
    for year in SMALL_YEARS:
        if year < RESETTLEMENT_YEAR:
            assert (truth[year][village] == BUILT).all(), year
        else:
            assert (truth[year][village] == MINING).all(), year


def test_resettlement_village_is_built_up_only_from_the_event_year(demo, truth, event):
    near_site = blob_at(truth[SMALL_YEARS[0]], pixel_of(demo, event.site_lat, event.site_lon))
    for year in SMALL_YEARS:
        built = (truth[year][near_site] == BUILT).sum()
        assert (built >= 20) if year >= RESETTLEMENT_YEAR else (built == 0), (year, built)


def test_clouds_are_flagged_bright_and_cast_flagged_shadows(scenes):
    masks = np.stack([s[6] for s in scenes.values()])
    blue = np.stack([s[0] for s in scenes.values()])
    assert set(np.unique(masks)) == {0, 1, 2}
    clear_blue = np.median(blue[(masks == 0) & (blue > 0)])
    assert np.median(blue[masks == 1]) > max(3500, 4 * clear_blue)
    nir = np.stack([s[3] for s in scenes.values()])
    assert np.median(nir[masks == 2]) < 0.6 * np.median(nir[(masks == 0) & (nir > 0)])


def test_every_pixel_is_clear_in_some_scene_of_each_year(scenes):
    for year in SMALL_YEARS:
        in_year = [s for name, s in scenes.items() if name.startswith(f"demo_{year}")]
        clear = [(s[6] == 0) & (s[0] > 0) for s in in_year]
        assert np.logical_or.reduce(clear).all(), year


def test_some_scene_has_a_nodata_edge_in_every_band(scenes):
    partial = [s for s in scenes.values() if (s[:6] == 0).all(axis=0).any()]
    assert partial
    for s in partial:
        nodata = (s[:6] == 0).all(axis=0)
        assert (s[:6][:, ~nodata] > 0).all()  # valid reflectance is never 0
        assert (s[6][nodata] == 0).all()
        assert 0.02 < nodata.mean() < 0.6
        # a straight swath edge: the nodata region touches the scene border
        assert nodata[[0, -1], :].any() or nodata[:, [0, -1]].any()


def test_events_table_has_the_real_columns_plus_origin(demo, event):
    assert list(pd.read_csv(demo["events"]).columns) == EVENT_COLUMNS
    assert len(pd.read_csv(demo["events"])) == 1
    assert event.event_id == "demo_mine_village_a"
    assert event.event_type == "planned resettlement"
    assert "synthetic" in event.mine and "synthetic" in event.coords_note
    assert event.source == "synthetic demo generated by pipeline.demo (seed 7)"


def test_aoi_is_one_wgs84_feature_around_the_mine(demo, event):
    aoi = gpd.read_file(demo["aoi"])
    assert len(aoi) == 1 and aoi.crs.to_epsg() == 4326
    row = aoi.iloc[0]
    assert (row.aoi_id, row["name"], row.country, row.commodity) == (
        "demo_mine", "Demo Mine (synthetic)", "Mozambique", "coal"
    )
    points = gpd.points_from_xy(
        [event.mine_lon, event.site_lon, event.origin_lon],
        [event.mine_lat, event.site_lat, event.origin_lat],
    )
    assert all(row.geometry.contains(p) for p in points)


def test_training_points_cover_all_classes_and_match_truth(demo, truth):
    points = gpd.read_file(demo["training_points"], layer="training_points")
    assert points.crs.to_epsg() == 32736
    assert set(points.class_code) == set(CLASS_CODES)
    assert (points.class_name == points.class_code.map(CLASS_CODES)).all()
    assert set(points.year) <= set(SMALL_YEARS) and RESETTLEMENT_YEAR in set(points.year)
    with rasterio.open(demo["truth_dir"] / "2016.tif") as src:
        rows, cols = rasterio.transform.rowcol(src.transform, points.geometry.x, points.geometry.y)
    at_point = [truth[y][r, c] for y, r, c in zip(points.year, rows, cols)]
    np.testing.assert_array_equal(at_point, points.class_code)


def test_unknown_size_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="size"):
        generate_demo(tmp_path, tmp_path / "aoi.geojson", size="huge")  # type: ignore[arg-type]
