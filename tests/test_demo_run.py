"""The whole pipeline once, on the small demo, through the `midr` command a user runs."""

from __future__ import annotations

import json

import imageio_ffmpeg
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray

from pipeline.classify import compare_with_reference
from pipeline.config import load_config
from pipeline.video import frame_count
from pipeline.results import open_run

from conftest import midr as _midr

MINING, BUILT_UP = 6, 5


def test_every_output_of_the_layout_is_written(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    assert run.aoi_ids == ["demo_mine"]
    periods = run.periods("demo_mine")
    assert periods == [str(year) for year in range(2016, 2022)]
    layout = run.layout
    expected = [layout.class_area("demo_mine"), layout.transitions("demo_mine"), layout.accuracy("demo_mine"),
                layout.event_metrics("demo_mine"), layout.video("demo_mine"), layout.manifest]
    expected += [layout.composite("demo_mine", p) for p in periods]
    expected += [layout.class_map("demo_mine", p) for p in periods]
    assert [p for p in expected if not p.is_file()] == []
    assert not list(layout.run_dir.rglob(".*.part*")), "temporary files left behind"
    with rasterio.open(layout.class_map("demo_mine", "2016")) as src:
        assert src.dtypes == ("uint8",) and src.nodata == 255 and src.colormap(1)[MINING][:3] == (140, 109, 49)
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.crs.to_epsg() == 32736
    with rasterio.open(layout.composite("demo_mine", "2016")) as src:
        assert src.descriptions[:7] == ("blue", "green", "red", "nir", "swir1", "swir2", "ndvi")


def test_manifest_records_inputs_versions_and_stages(demo_run):
    manifest = json.loads((demo_run / "first_manifest.json").read_text())  # the fixture's own run
    assert manifest["status"] == "done" and manifest["config"]["run_name"] == "demo_small"
    assert len(manifest["inputs"]) == 18 + 3  # 6 years x 3 scenes, AOI, training points, events
    assert all(len(i["sha256"]) == 64 and i["size"] > 0 for i in manifest["inputs"])
    stages = manifest["aois"]["demo_mine"]["stages"]
    assert list(stages) == ["ingest", "composite", "classify", "change", "events", "video"]
    assert all(s["status"] == "done" and s["seconds"] >= 0 for s in stages.values())
    assert {"numpy", "xarray", "dask", "rasterio", "scikit-learn", "gdal"} <= set(manifest["versions"])


def test_class_maps_agree_with_the_truth(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    class_map = run.class_map("demo_mine")
    for period in run.periods("demo_mine"):
        truth = rioxarray.open_rasterio(demo_run / "data" / "truth" / f"{period}.tif").squeeze("band", drop=True)
        report = compare_with_reference(class_map.sel(period=period), truth, run.classes)
        assert report["overall_accuracy"] >= 0.90, (period, report["overall_accuracy"])
    assert run.accuracy("demo_mine")["overall_accuracy"] >= 0.90


def test_mining_area_first_and_last_period_within_10_percent_of_truth(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    area = run.class_area("demo_mine").set_index(["period", "class_code"])["area_ha"]
    class_map = run.class_map("demo_mine", cleaned=True)  # areas are counted on the gap-filled, sieved maps
    for period in ("2016", "2021"):
        truth = rioxarray.open_rasterio(demo_run / "data" / "truth" / f"{period}.tif").squeeze("band", drop=True)
        truth = truth.sel(x=class_map.x, y=class_map.y, method="nearest")
        inside = (class_map.sel(period=period) != 255).values
        true_ha = ((truth.values == MINING) & inside).sum() * 0.09
        assert area[period, MINING] == pytest.approx(true_ha, rel=0.10)


def test_class_areas_add_up_to_the_mapped_aoi(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    table = run.class_area("demo_mine")
    totals = table.groupby("period")["area_ha"].sum()
    mapped = (run.class_map("demo_mine", cleaned=True) != 255).sum(("y", "x")).values * 0.09
    np.testing.assert_allclose(totals.values, mapped, rtol=1e-6)
    raw = (run.class_map("demo_mine") != 255).sum(("y", "x")).values * 0.09  # observed: the raw maps' pixels
    np.testing.assert_allclose(table.groupby("period")["observed_ha"].first().values, raw, rtol=1e-6)
    transitions = run.transitions("demo_mine")
    # what leaves 2016 arrives in 2017: transitions from 2016 sum to at most the 2016 mapped area
    assert transitions[transitions.period_from == "2016"]["area_ha"].sum() <= totals["2016"] + 1e-6


def test_event_metrics_show_the_village_cleared_and_the_new_one_built(demo_run):
    metrics = open_run(demo_run / "outputs" / "demo_small").event_metrics("demo_mine")
    built = metrics[metrics["class_code"] == BUILT_UP].set_index("zone")
    origin, site = built.loc["origin_community"], built.loc["resettlement_site"]
    assert origin["event_id"] == "demo_mine_village_a" and origin["status"] == "ok"
    assert origin["area_ha_before"] > 1.0 and origin["area_ha_after"] <= 0.05 * origin["area_ha_before"]
    assert site["area_ha_before"] <= 0.1 and site["area_ha_after"] > 1.0
    assert origin["periods_before"] == "2016;2017" and origin["periods_after"] == "2019;2020"
    assert origin["periods_during"] == "2018"  # the year of the event is in neither window


def test_video_is_h264_at_the_configured_size_and_length(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    config = load_config(demo_run / "config.yaml")
    reader = imageio_ffmpeg.read_frames(str(run.video("demo_mine")))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == config.video.size
    video = config.video
    assert frames == frame_count(6, fps=video.fps, seconds_per_period=video.seconds_per_period,
                                 crossfade_seconds=video.crossfade_seconds, intro_seconds=video.intro_seconds,
                                 outro_seconds=video.outro_seconds, last_period_seconds=video.last_period_seconds)
    # at 4 fps: intro 3 s, 5 periods x 0.75 s and 5 fades of 0.5 s, the last period 3 s, credits 4 s
    assert frames == 12 + 5 * (3 + 2) + 12 + 16


def test_video_frames_at_the_first_and_last_period_and_the_credits(demo_run):
    """Frames a viewer sees, kept in build/test-artifacts/video/: the first period, the last one held
    until the credits, and the credits card (a few seconds, not 11)."""
    from PIL import Image

    from pipeline.video.timeline import Timing

    from conftest import ROOT

    run = open_run(demo_run / "outputs" / "demo_small")
    video = load_config(demo_run / "config.yaml").video
    timing = Timing(fps=video.fps, seconds_per_period=video.seconds_per_period,
                    crossfade_seconds=video.crossfade_seconds, intro_seconds=video.intro_seconds,
                    outro_seconds=video.outro_seconds, last_period_seconds=video.last_period_seconds)
    reader = imageio_ffmpeg.read_frames(str(run.video("demo_mine")))
    width, height = next(reader)["size"]
    frames = [np.frombuffer(raw, "uint8").reshape(height, width, 3) for raw in reader]
    last = timing.period_start(5)
    picks = {"first_period": timing.period_start(0), "last_period_start": last,
             "last_period_end": timing.outro_start(6) - 1, "credits": timing.outro_start(6) + 1}
    folder = ROOT / "build" / "test-artifacts" / "video"
    folder.mkdir(parents=True, exist_ok=True)
    for name, index in picks.items():
        Image.fromarray(frames[index]).save(folder / f"demo_small_{name}.png")
    assert (timing.outro_start(6) - last) / video.fps == video.last_period_seconds == 3.0  # held 3 s, not 0.75 s
    assert np.abs(frames[picks["last_period_end"]].astype(int) - frames[last].astype(int)).mean() < 2
    assert len(frames) - timing.outro_start(6) == video.outro_seconds * video.fps == 16  # credits 4 s
    assert np.abs(frames[picks["credits"]].astype(int) - frames[last].astype(int)).mean() > 20


def test_subtitles_add_the_event_type_and_source_not_the_burned_in_caption(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    cues = run.layout.subtitles("demo_mine").read_text().strip().split("\n\n")
    assert len(cues) == 1
    number, timing, text = cues[0].split("\n")
    assert text == "Planned resettlement. Source: synthetic demo generated by pipeline.demo (seed 42)"
    assert "resettled from" not in text  # the frame shows that: captions on would show it twice
    video = run.manifest["aois"]["demo_mine"]["stages"]["video"]
    assert video["captions"] == video["subtitles"] == 1


def test_a_misspelt_key_exits_2_naming_it_and_writes_nothing(demo_run):
    bad = demo_run / "bad.yaml"
    bad.write_text((demo_run / "config.yaml").read_text().replace("run_name: demo_small", "run_name: bad")
                   .replace("zone_radius_m", "zone_raduis_m"))
    for command in ("validate", "run"):
        result = _midr(command, str(bad))
        assert result.returncode == 2
        assert "events.zone_raduis_m: Extra inputs are not permitted" in result.stderr + result.stdout
    assert not (demo_run / "outputs" / "bad").exists()


def test_missing_scenes_exit_2_and_say_how_to_get_the_demo(demo_run):
    bad = demo_run / "noscenes.yaml"
    bad.write_text((demo_run / "config.yaml").read_text().replace("data/scenes/demo_*", "data/nothing/*"))
    result = _midr("run", str(bad))
    assert result.returncode == 2
    assert "no scene files match" in result.stderr and "ingest.scenes" in result.stderr


def test_a_failing_aoi_is_reported_and_the_others_go_on(demo_run):
    import geopandas as gpd

    aois = gpd.read_file(demo_run / "aoi" / "demo_mine.geojson")
    elsewhere = aois.assign(aoi_id="nowhere", geometry=aois.translate(5.0, 0.0))  # 5 degrees east
    pd.concat([elsewhere, aois]).to_file(demo_run / "aoi" / "two.geojson", driver="GeoJSON")
    config = (demo_run / "config.yaml").read_text().replace("run_name: demo_small", "run_name: two")
    config = config.replace("aoi/demo_mine.geojson", "aoi/two.geojson").replace("dask:\n", "dask:\n  cluster: threads\n")
    (demo_run / "two.yaml").write_text(config)
    result = _midr("run", str(demo_run / "two.yaml"))
    assert result.returncode == 2  # bad input (an AOI off the imagery)
    assert "error: aoi 'nowhere': the AOI does not overlap any of the 18 scenes" in result.stderr
    manifest = open_run(demo_run / "outputs" / "two").manifest
    assert manifest["aois"]["nowhere"]["status"] == "failed"
    assert manifest["aois"]["nowhere"]["stages"]["composite"]["status"] == "failed"
    assert manifest["aois"]["demo_mine"]["status"] == "done" and manifest["status"] == "failed"
    assert (demo_run / "outputs" / "two" / "demo_mine" / "video" / "demo_mine.mp4").is_file()
