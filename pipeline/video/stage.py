"""The video stage: composites, class maps and events of one AOI -> a YouTube-ready time-lapse.

Writes the MP4 (H.264, yuv420p), a poster PNG, SubRip captions and youtube.txt (title, description,
sources, chapters). Frames are composed by `pipeline.video.frames`, encoded by `pipeline.video.encoder`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline import io
from pipeline.classify.predict import UNCLASSIFIED
from pipeline.composite.periods import Period, periods_of
from pipeline.events.captions import event_caption, events_phrase
from pipeline.events.effects import event_span
from pipeline.events.public import generalise_events, generalise_text
from pipeline.video import publish
from pipeline.video.encoder import write_timelapse
from pipeline.video.frames import Scene, build_scene
from pipeline.video.panels import LegendEntry, MapMarker, colour_classes, true_colour
from pipeline.video.style import NODATA_RGB
from pipeline.video.timeline import Timing
from pipeline.config import PipelineConfig
from pipeline.errors import InputError
from pipeline.results import OutputLayout

__all__ = ["make_timelapse", "event_markers", "outline_pixels", "ground_pixel_size_m", "video_captions",
           "subtitle_texts", "chart_series"]

log = logging.getLogger(__name__)

_STRETCH_SAMPLE = 2_000_000  # values per band the colour stretch is estimated from


def _stretch(rgb: xr.Dataset, percentiles) -> tuple[float, float]:
    """Low and high percentiles of the bands over all periods, from a regular subsample of the pixels
    (at most ~2 M values per band) so a long, large series is never loaded whole."""
    sizes = rgb.sizes
    step = max(1, int(np.ceil(np.sqrt(sizes["y"] * sizes["x"] * sizes.get("period", 1) / _STRETCH_SAMPLE))))
    sample = rgb.isel(y=slice(None, None, step), x=slice(None, None, step)).to_dataarray().values
    return tuple(float(v) for v in np.nanpercentile(sample, percentiles))


def make_timelapse(config: PipelineConfig, aoi: pd.Series, composites: xr.Dataset, class_map: xr.DataArray | None,
           aoi_events: pd.DataFrame, *, class_area: pd.DataFrame | None, geometry: gpd.GeoSeries,
           out: OutputLayout, progress: Callable[[int, int], None] | None = None) -> dict:
    """The time-lapse MP4, its poster, subtitles and youtube.txt; returns what the manifest records.

    Without a class map (no classify section) the video shows the composites alone: no land-cover
    panel, legend or area chart. In public mode (`public.enabled`) everything shown or written comes from
    the generalised events (`pipeline.events.generalise_events`: community and site names withheld,
    points on the grid), and the free texts (title, subtitle, credits) have those names withheld too.
    `progress(done, total)`: frames encoded so far."""
    settings, aoi_id = config.video, aoi["aoi_id"]
    public = config.public.enabled

    def free_text(text: str | None) -> str | None:
        return generalise_text(text, aoi_events) if public else text

    shown_events = generalise_events(aoi_events, grid_m=config.public.grid_m) if public else aoi_events
    periods = periods_of(composites)
    ids = [p.id for p in periods]
    bands = list(settings.rgb_bands)
    missing = [b for b in bands if b not in composites.data_vars]
    if missing:
        raise InputError(f"video.rgb_bands: {missing} not in the composites of aoi {aoi_id!r} "
                         f"(they have {sorted(map(str, composites.data_vars))})")
    rgb = composites[bands]
    low, high = _stretch(rgb, settings.stretch_percentiles)
    if not high > low:
        raise InputError(f"aoi {aoi_id!r}: the composites of {bands} are empty or constant; no stretch "
                         f"for the video (video.stretch_percentiles)")
    legend = ([LegendEntry(c.code, c.name, c.colour) for c in config.classes]
              if class_map is not None else [])
    if class_map is not None and bool((class_map == UNCLASSIFIED).any()):
        legend.append(LegendEntry(UNCLASSIFIED, "no data", "#%02x%02x%02x" % NODATA_RGB))
    class_areas = nodata_shares = None
    if class_map is not None and class_area is not None:
        class_areas, nodata_shares = chart_series(class_area, [c.code for c in config.classes], ids)
    captions = video_captions(shown_events, periods, public=public)
    about = _event_facts(shown_events)
    title = free_text(settings.title or str(aoi.get("name") or aoi_id))
    subtitle = (free_text(settings.subtitle) if settings.subtitle is not None
                else " · ".join(fact for fact in about if fact != title))
    years = f"{periods[0].label}–{periods[-1].label}" if len(periods) > 1 else periods[0].label
    footer = free_text(settings.credits.replace("{years}", years))
    outro_credits = [free_text(line) for line in settings.outro_credits]
    outro_lines = [line for line in (footer, *outro_credits) if line]
    if len(shown_events):
        outro_lines.append("Events: public sources listed in the video description")
    outro_lines.append("Made with midr-pipeline")
    grid = class_map if class_map is not None else composites
    crs, transform = grid.rio.crs, grid.rio.transform(recalc=True)
    pixel_size_m = ground_pixel_size_m(crs, transform, geometry)
    overlays = dict(outline=outline_pixels(geometry, crs, transform),
                    markers=(event_markers(shown_events, crs, transform, public=public,
                                            grid_m=config.public.grid_m, pixel_size_m=pixel_size_m)
                             if settings.markers else []),
                    pixel_size_m=pixel_size_m)

    def maps() -> Iterator[np.ndarray]:
        for period in ids:
            scene = rgb.sel(period=period)
            yield true_colour(*(scene[b].values for b in bands), vmin=low, vmax=high)

    def class_maps() -> Iterator[np.ndarray]:
        for period in ids:
            yield colour_classes(class_map.sel(period=period).values, legend, nodata=UNCLASSIFIED)

    def scene(size: tuple[int, int]) -> Scene:
        return build_scene(
            maps(), period_labels=[p.label for p in periods], size=size, title=title, subtitle=subtitle,
            class_maps=class_maps() if class_map is not None else None, legend=legend, class_areas=class_areas,
            period_values=[_decimal_year(p.start) for p in periods],
            captions=[(period, text) for period, text in captions], credits=footer,
            intro_lines=[line for line in (about[:2], about[2:]) for line in [" · ".join(line)] if line]
            if settings.intro_seconds else None,
            outro_lines=outro_lines if settings.outro_seconds else None,
            map_titles=("True colour" if bands == ["red", "green", "blue"] else
                        f"{_BAND_LABELS.get(bands[0], bands[0].upper())} (grey)" if len(set(bands)) == 1 else
                        "False colour (" + " / ".join(_BAND_LABELS.get(b, b) for b in bands) + ")", "Land cover"),
            chart=settings.chart, chart_unit="%", nodata_shares=nodata_shares,
            **overlays)

    timing = Timing(fps=settings.fps, seconds_per_period=settings.seconds_per_period,
                           crossfade_seconds=settings.crossfade_seconds, intro_seconds=settings.intro_seconds,
                           outro_seconds=settings.outro_seconds, caption_seconds=settings.caption_seconds,
                           last_period_seconds=settings.last_period_seconds)
    video_scene = scene(settings.size)
    path = out.video(aoi_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = write_timelapse(video_scene, timing, path, preset=settings.x264_preset, crf=settings.crf,
                               progress=progress)
    io.note_written(path)

    texts = [text for _, text in captions]
    spans = publish.caption_frames(timing, len(periods), [period for period, _ in captions])
    found = publish.chapters(timing, len(periods), opening=f"{title}, {years}", captions=texts, spans=spans)
    problems = publish.chapter_problems(found, total_seconds=n_frames / settings.fps)
    for problem in problems:
        log.warning("aoi %r: youtube chapters: %s", aoi_id, problem)
    sources = [footer, *outro_credits,
               *[part.strip() for source in shown_events.get("source", pd.Series(dtype=str)).dropna()
                 for part in str(source).split(" ; ")]]
    band_names = " / ".join(_BAND_LABELS.get(b, b) for b in bands)
    shown = (f"satellite composites ({band_names}) beside a land-cover map ({len(legend)} classes) and the share "
             f"of each class over time{_FILL_NOTE[config.classify.gap_fill if config.classify else 'none']}"
             if legend else f"satellite composites ({band_names})")
    summary = (f"Land cover around {about[0] if about else title} from {periods[0].label} to {periods[-1].label}, period by "
               f"period: {shown}" + (f", with the documented {events_phrase(e for _, e in aoi_events.iterrows())}"
                                     if texts else "")
               + ". Made with midr-pipeline.")
    io.write_bytes(publish.youtube_text(title=f"{title}: land-cover change {years} (time-lapse)", summary=summary,
                                        captions=texts, sources=sources, found=found, notes=problems).encode(),
                   out.youtube(aoi_id))
    details = subtitle_texts(aoi_events, periods, public=public)
    cues = [(text, span) for text, span in zip(details, spans) if text]
    if cues:
        io.write_bytes(publish.subtitles_srt([t for t, _ in cues], [s for _, s in cues], fps=settings.fps).encode(),
                       out.subtitles(aoi_id))
    else:  # nothing the frames do not already say: no subtitles (and none left from an earlier run)
        out.subtitles(aoi_id).unlink(missing_ok=True)
    io.write_bytes(publish.png_bytes(publish.poster_frame(scene(publish.POSTER_SIZE))), out.poster(aoi_id))
    return {"frames": n_frames, "size": list(settings.size), "fps": settings.fps,
            "duration_s": round(n_frames / settings.fps, 3), "captions": len(texts), "subtitles": len(cues),
            "chapters": [f"{c.timestamp} {c.title}" for c in found], "chapter_problems": problems}


_FILL_NOTE = {"none": "", "agree": " (a pixel without clear data in a period takes its class from the periods before "
                                   "and after it where they agree)",
              "nearest": " (a pixel without clear data in a period takes its class from the nearest period with clear "
                         "data)"}


def chart_series(class_area: pd.DataFrame, codes: list[int], periods: list[str]
                 ) -> tuple[dict[int, list[float]], list[float] | None]:
    """What the chart plots, from a class_area table: per class its share (%) of each period's mapped area
    (in the cleaned maps: observed or gap-filled), so that clouds do not show as change; and per period
    the share (%) of the AOI without data as classified (nodata_pct; None in a table without it)."""
    shares = class_area.pivot_table(index="period", columns="class_code", values="area_pct", aggfunc="sum")
    series = {code: [float(shares.at[p, code]) if p in shares.index and code in shares.columns else np.nan
                     for p in periods] for code in codes}
    if "nodata_pct" not in class_area:
        return series, None
    nodata = class_area.drop_duplicates("period").set_index("period")["nodata_pct"]
    return series, [float(nodata.get(p, np.nan)) for p in periods]


_BAND_LABELS = {"blue": "Blue", "green": "Green", "red": "Red", "nir": "NIR", "swir1": "SWIR1", "swir2": "SWIR2"}


def video_captions(aoi_events: pd.DataFrame, periods: list[Period], *, public: bool) -> list[tuple[int, str]]:
    """(period index, caption) per event: at the first period that ends on or after the event's start
    (events before the series show at its start; events after it are left out), ordered by period."""
    return [(index, _caption_text(event, public=public)) for index, event in _captioned_events(aoi_events, periods)]


def subtitle_texts(aoi_events: pd.DataFrame, periods: list[Period], *, public: bool) -> list[str]:
    """Per caption of `video_captions` (same order), what the frame does not say: the event's type and
    its source (the source left out where `public`); "" where there is nothing to add. The burned-in
    caption is not repeated: a viewer with subtitles on would read it twice."""
    texts = []
    for _, event in _captioned_events(aoi_events, periods):
        parts = []
        if isinstance(event.get("event_type"), str) and event["event_type"].strip():
            parts.append(event["event_type"].strip()[:1].upper() + event["event_type"].strip()[1:])
        if not public and isinstance(event.get("source"), str) and event["source"].strip():
            parts.append(f"Source: {event['source'].strip()}")
        texts.append(". ".join(parts))
    return texts


def _captioned_events(aoi_events: pd.DataFrame, periods: list[Period]) -> list[tuple[int, pd.Series]]:
    """(period index, event) of the events shown, ordered by period (stable)."""
    shown = []
    for _, event in aoi_events.iterrows():
        span = event_span(event)
        if span is None:
            log.info("event %r has no date or year: no caption", event["event_id"])
            continue
        start = span[0]
        index = next((i for i, p in enumerate(periods) if pd.Timestamp(p.end) >= start), None)
        if index is None:
            log.info("event %r (%s) is after the last period %s: no caption", event["event_id"], start.date(),
                     periods[-1].id)
            continue
        shown.append((index, event))
    return sorted(shown, key=lambda c: c[0])


def _caption_text(event: pd.Series, *, public: bool) -> str:
    return re.sub(r"^(\d{4})-(\d{4})", "\\1\u2013\\2", event_caption(event, public=public))


def _decimal_year(day) -> float:
    """A day as a decimal year (1 January = the year itself): the chart's time axis."""
    start = pd.Timestamp(year=day.year, month=1, day=1)
    return day.year + (pd.Timestamp(day) - start) / (pd.Timestamp(year=day.year + 1, month=1, day=1) - start)


def _event_facts(aoi_events: pd.DataFrame) -> list[str]:
    """Mine, company, country, commodity of the AOI's events (the first record that gives each)."""
    facts = []
    for column in ("mine", "company", "country", "commodity"):
        values = aoi_events[column].dropna().astype(str) if column in aoi_events.columns else pd.Series(dtype=str)
        if len(values):
            facts.append(values.iloc[0])
    return facts


def ground_pixel_size_m(crs, transform, geometry: gpd.GeoSeries) -> float | None:
    """Ground size of a pixel (x) in metres, for the scale bar; None if the CRS has no usable unit."""
    if crs is None:
        return None
    if crs.is_geographic:
        latitude = float(geometry.to_crs("EPSG:4326").union_all().centroid.y)
        return abs(transform.a) * 111_320.0 * np.cos(np.radians(latitude))
    factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    return abs(transform.a) * factor


def _to_pixels(xs, ys, transform) -> tuple[np.ndarray, np.ndarray]:
    inverse = ~transform
    xs, ys = np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64")
    return inverse.a * xs + inverse.b * ys + inverse.c, inverse.d * xs + inverse.e * ys + inverse.f


def outline_pixels(geometry: gpd.GeoSeries, crs, transform) -> list[np.ndarray]:
    rings = []
    for polygon in geometry.to_crs(crs).explode(index_parts=False):
        for ring in [polygon.exterior, *polygon.interiors]:
            xs, ys = ring.coords.xy
            cols, rows = _to_pixels(xs, ys, transform)
            rings.append(np.column_stack([cols, rows]))
    return rings


def event_markers(aoi_events: pd.DataFrame, crs, transform, *, public: bool, grid_m: float,
                   pixel_size_m: float | None) -> list[MapMarker]:
    """Mine, origin community and resettlement site of each event; in public mode (where the events are
    the generalised ones, their points on the grid of `grid_m`) the community and the site show as an
    unnamed circle of that size."""
    places = {"mine": ("mine_lat", "mine_lon", "mine"), "origin": ("origin_lat", "origin_lon", "origin_community"),
              "site": ("site_lat", "site_lon", "resettlement_site")}
    markers, seen = [], set()
    for _, event in aoi_events.iterrows():
        for kind, (lat, lon, name) in places.items():
            if pd.isna(event.get(lat)) or pd.isna(event.get(lon)):
                continue
            point = gpd.GeoSeries(gpd.points_from_xy([event[lon]], [event[lat]]), crs="EPSG:4326").to_crs(crs)
            sensitive = public and kind != "mine"
            cols, rows = _to_pixels(point.x, point.y, transform)
            key = (kind, round(float(cols[0]), 1), round(float(rows[0]), 1))
            if key in seen:
                continue
            seen.add(key)
            label = "" if sensitive or pd.isna(event.get(name)) else str(event[name])
            radius = grid_m / 2 / pixel_size_m if sensitive and pixel_size_m else 0.0
            markers.append(MapMarker(float(cols[0]), float(rows[0]), label, kind, radius))
    return markers


