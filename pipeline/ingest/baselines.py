"""Sentinel-2 L2A radiometry from the product's own metadata: the BOA offset of processing baseline 04.00.

From processing baseline 04.00 on, L2A reflectance = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE,
with BOA_ADD_OFFSET = -1000 (MTD_MSIL2A.xml, `Product_Image_Characteristics`); before it, DN / 10000.
What decides is the product's baseline, not its acquisition date: reprocessed older products
(Collection-1, baseline 05.xx) carry the offset too. Where the metadata come from, in this order:

    files   MTD_MSIL2A.xml in a folder above the band file (the SAFE layout), else the baseline in the
            product name (`..._N0510_...`) anywhere in the file's path
    STAC    `earthsearch:boa_offset_applied: true` (Earth Search has removed the offset from the pixels),
            else `s2:processing_baseline` (or the N-token of `s2:product_uri` / the item id)

and only where none of them says: the acquisition date (from 2022-01-25), with a warning. A user's
`offset` in the config always wins (`sources`).

Sources: ESA, "Sentinel-2 L2A products: new processing baseline 04.00" and the L2A product specification
(BOA_ADD_OFFSET per band_id, BOA_QUANTIFICATION_VALUE); Element84/earth-search#9 and
cirrus-geo/cirrus-earth-search#21 on `boa_offset_applied` (the `raster:bands` offset of those items is
not to be trusted when it is true); Planetary Computer serves ESA's numbers unchanged, with the baseline
in `s2:processing_baseline`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = ["S2_OFFSET_FROM", "ProductRadiometry", "baseline_from_name", "date_offset", "item_radiometry",
           "product_radiometry"]

# Processing baseline 04.00 went into operation for acquisitions from this day (ESA).
S2_OFFSET_FROM = pd.Timestamp("2022-01-25")
S2_BASELINE_WITH_OFFSET = (4, 0)
S2_OFFSET = -1000.0         # BOA_ADD_OFFSET of baseline 04.00 and later, in DN
S2_QUANTIFICATION = 10000.0
# band_id of MTD_MSIL2A.xml -> band name (L2A product specification; also Spectral_Information there)
_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_BASELINE_TOKEN = re.compile(r"_N(\d{2})(\d{2})_")


@dataclass(frozen=True)
class ProductRadiometry:
    """How one product's digital numbers become reflectance: `scale` and an additive `offset`
    (reflectance units) per native band name (B02, ...; `default` for bands not listed), and where that
    was read (`source`, for messages)."""

    scale: float
    default_offset: float
    source: str
    offsets: Mapping[str, float] = field(default_factory=dict)

    def offset(self, band: str) -> float:
        return self.offsets.get(band, self.default_offset)

    @property
    def numbers(self) -> tuple:
        """The scale and offsets alone (hashable): products with the same numbers may share a scene."""
        return self.scale, self.default_offset, tuple(sorted(self.offsets.items()))


def _baseline_tuple(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d{1,2})\.(\d{2})\s*", str(text))
    return (int(match.group(1)), int(match.group(2))) if match else None


def baseline_from_name(text: str) -> str | None:
    """The processing baseline of a product name or path (`S2B_MSIL2A_20240419T095549_N0510_R122_...`
    -> "05.10"), or None."""
    match = _BASELINE_TOKEN.search(f"{text}_")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _from_baseline(baseline: str, source: str) -> ProductRadiometry | None:
    parsed = _baseline_tuple(baseline)
    if parsed is None:
        return None
    offset = S2_OFFSET / S2_QUANTIFICATION if parsed >= S2_BASELINE_WITH_OFFSET else 0.0
    return ProductRadiometry(1 / S2_QUANTIFICATION, offset, f"{source} (processing baseline {baseline})")


def date_offset(when: datetime) -> float:
    """The offset an acquisition time would have if its product was processed when it was acquired."""
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_convert(None) if stamp.tzinfo else stamp
    return S2_OFFSET / S2_QUANTIFICATION if stamp >= S2_OFFSET_FROM else 0.0


def product_radiometry(band_file: Path) -> ProductRadiometry | None:
    """The radiometry of the Sentinel-2 L2A product a band file belongs to: MTD_MSIL2A.xml in one of the
    five folders above it, else the baseline in the product name on its path; None if neither is there.

    Raises ValueError naming the metadata file when it cannot be parsed."""
    path = Path(band_file).resolve()
    for folder in list(path.parents)[:5]:
        metadata = folder / "MTD_MSIL2A.xml"
        if metadata.is_file():
            return _read_metadata(metadata)
    baseline = baseline_from_name(str(path))
    return _from_baseline(baseline, "product name") if baseline else None


@lru_cache(maxsize=256)
def _read_metadata(path: Path) -> ProductRadiometry:
    """BOA_QUANTIFICATION_VALUE and BOA_ADD_OFFSET per band of an MTD_MSIL2A.xml (namespaces ignored)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as err:
        raise ValueError(f"{path}: cannot read the Sentinel-2 product metadata ({err})") from None
    quantification, baseline, offsets, names = None, None, {}, {}
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "BOA_QUANTIFICATION_VALUE":
            quantification = float(element.text)
        elif tag == "PROCESSING_BASELINE":
            baseline = (element.text or "").strip()
        elif tag == "BOA_ADD_OFFSET":
            offsets[int(element.get("band_id"))] = float(element.text)
        elif tag == "Spectral_Information" and element.get("bandId") is not None:
            physical = element.get("physicalBand", "")
            names[int(element.get("bandId"))] = re.sub(r"^B(\d)$", r"B0\1", physical)
    quantification = quantification or S2_QUANTIFICATION
    by_band = {names.get(i, _BAND_IDS[i] if i < len(_BAND_IDS) else str(i)): value / quantification
               for i, value in offsets.items()}
    where = f"{path.name}" + (f" (processing baseline {baseline})" if baseline else "")
    if not by_band and baseline and _baseline_tuple(baseline) and _baseline_tuple(baseline) >= S2_BASELINE_WITH_OFFSET:
        raise ValueError(f"{path}: processing baseline {baseline} but no BOA_ADD_OFFSET values")
    return ProductRadiometry(1 / quantification, 0.0, where, by_band)


def item_radiometry(properties: Mapping, item_id: str = "") -> ProductRadiometry | None:
    """The radiometry a Sentinel-2 L2A STAC item's properties give, or None when they say nothing.

    `earthsearch:boa_offset_applied: true`: the offset is already removed from the pixels (offset 0,
    whatever `raster:bands` says); else `s2:processing_baseline`, else the N-token of `s2:product_uri`
    or of the item id."""
    if properties.get("earthsearch:boa_offset_applied") is True:
        return ProductRadiometry(1 / S2_QUANTIFICATION, 0.0, "earthsearch:boa_offset_applied")
    baseline = properties.get("s2:processing_baseline")
    if baseline:
        found = _from_baseline(str(baseline), "s2:processing_baseline")
        if found is not None:
            return found
    for name, source in ((properties.get("s2:product_uri"), "s2:product_uri"), (item_id, "item id")):
        baseline = baseline_from_name(str(name)) if name else None
        if baseline:
            return _from_baseline(baseline, source)
    return None
