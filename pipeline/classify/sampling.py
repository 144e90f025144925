"""Design-based accuracy and area estimation after Olofsson et al. (2014).

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014). Good
practices for estimating area and assessing accuracy of land change. Remote Sensing of Environment
148, 42-57, doi:10.1016/j.rse.2014.02.015.

The map classes are the strata of a stratified random sample; each sampled pixel gets a reference
label (e.g. from very-high-resolution imagery in QGIS). From the error matrix of sample counts
(rows: map class = stratum, columns: reference class) and the mapped area of each stratum:

    W_i   = A_m,i / A                      (eq. 1: stratum weight)
    p_ij  = W_i n_ij / n_i.                (eq. 4: estimated area proportion of cell i, j)
    A_j   = A sum_i p_ij                   (eq. 9: error-adjusted area of class j)
    SE(p_.j) = sqrt(sum_i W_i^2 (n_ij/n_i.)(1 - n_ij/n_i.) / (n_i. - 1))     (eq. 10)
    O = sum_j p_jj,  U_i = p_ii / p_i.,  P_j = p_jj / p_.j                    (eq. 2-4, variances eq. 5-7)
    n = (sum_i W_i S_i / S(O))^2,  S_i = sqrt(U_i (1 - U_i))                  (eq. 13: sample size)

The worked example of the paper's section 5 (its Tables 4-8) is reproduced in tests/test_accuracy.py.
Kernels take plain arrays; nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from pipeline import io
from pipeline.errors import InputError

__all__ = [
    "Z95",
    "error_matrix",
    "stratified_area_estimate",
    "area_estimate_table",
    "sample_size",
    "allocate_sample",
    "stratified_random_sample",
    "sample_points",
    "change_strata",
    "read_validation_sample",
]

Z95 = 1.959964  # two-sided 95 % normal quantile


def error_matrix(map_codes: np.ndarray, reference_codes: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """(class, class) int64 sample counts; rows: map class (stratum), columns: reference class."""
    index = {code: i for i, code in enumerate(codes)}
    unknown = sorted(set(np.unique(map_codes)) - set(index)) + sorted(set(np.unique(reference_codes)) - set(index))
    if unknown:
        raise InputError(f"class codes {sorted(set(int(c) for c in unknown))} are not in the class schema {list(codes)}")
    counts = np.zeros((len(codes), len(codes)), dtype=np.int64)
    np.add.at(counts, (np.vectorize(index.get, otypes=[int])(map_codes),
                       np.vectorize(index.get, otypes=[int])(reference_codes)), 1)
    return counts


def stratified_area_estimate(counts: np.ndarray, mapped_area: np.ndarray, *, z: float = Z95,
                             stratum_pixels: np.ndarray | None = None) -> dict[str, np.ndarray | float]:
    """Olofsson et al. (2014) estimators from an error matrix of sample counts and the mapped areas.

    Parameters
    ----------
    counts : (q, q) sample counts, rows: map class (stratum), columns: reference class.
    mapped_area : (q,) mapped area of each stratum (any unit: the areas come back in it).

    stratum_pixels : (q,) pixels of each stratum, to apply the finite population correction
        (1 - n_i. / N_i) of sampling without replacement (Cochran 1977, eq. 5.6). The paper omits it
        (its maps have millions of pixels); it matters when a stratum's sample is a sizeable share of it.

    Returns a dict of arrays over the q classes: ``proportion`` (p_.j), ``area``, ``se_area``,
    ``ci_low``, ``ci_high`` (area +- z SE), ``users_accuracy``, ``se_users``, ``producers_accuracy``,
    ``se_producers``; and floats ``overall_accuracy``, ``se_overall``. Accuracies of a class with no
    sample (or no estimated area) are NaN. Raises InputError if a stratum with mapped area has fewer
    than 2 samples (its variance is undefined).
    """
    counts = np.asarray(counts, dtype=float)
    mapped_area = np.asarray(mapped_area, dtype=float)
    n_i = counts.sum(axis=1)
    thin = np.flatnonzero((mapped_area > 0) & (n_i < 2))
    if len(thin):
        raise InputError(f"strata (rows) {thin.tolist()} have mapped area but fewer than 2 samples; "
                         "every mapped class needs at least 2 labelled sample pixels")
    total = mapped_area.sum()
    weight = mapped_area / total                                                  # W_i
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_i[:, None] > 0, counts / n_i[:, None], 0.0)           # n_ij / n_i.
        p = weight[:, None] * share                                               # p_ij
        fpc = np.ones(len(n_i)) if stratum_pixels is None else np.clip(
            1 - n_i / np.asarray(stratum_pixels, dtype=float), 0.0, 1.0)
        row_var = np.where(n_i[:, None] > 1, fpc[:, None] * share * (1 - share) / (n_i[:, None] - 1), 0.0)
        proportion = p.sum(axis=0)
        se_proportion = np.sqrt((weight[:, None] ** 2 * row_var).sum(axis=0))
        diag = np.diag(p)
        users = np.where(n_i > 0, np.diag(share), np.nan)
        producers = np.where(proportion > 0, diag / proportion, np.nan)
        overall = float(diag.sum())
        var_users = np.where(n_i > 1, fpc * users * (1 - users) / (n_i - 1), np.nan)
        se_overall = float(np.sqrt(np.nansum(weight ** 2 * np.where(n_i > 1, var_users, 0.0))))
        # eq. 7, in pixel counts N_i. (here: areas; the unit cancels)
        n_hat_j = (mapped_area[:, None] * share).sum(axis=0)                      # estimated area of class j
        var_producers = np.full(len(n_i), np.nan)
        for j in range(len(n_i)):
            if not n_hat_j[j] > 0 or n_i[j] < 2:
                continue
            others = [i for i in range(len(n_i)) if i != j]
            term_j = mapped_area[j] ** 2 * (1 - producers[j]) ** 2 * var_users[j]
            term_o = producers[j] ** 2 * sum(mapped_area[i] ** 2 * row_var[i, j] for i in others)
            var_producers[j] = (term_j + term_o) / n_hat_j[j] ** 2
    area = total * proportion
    se_area = total * se_proportion
    return {
        "proportion": proportion, "area": area, "se_area": se_area,
        "ci_low": area - z * se_area, "ci_high": area + z * se_area,
        "users_accuracy": users, "se_users": np.sqrt(var_users),
        "producers_accuracy": producers, "se_producers": np.sqrt(var_producers),
        "overall_accuracy": overall, "se_overall": se_overall,
    }


def area_estimate_table(counts: np.ndarray, mapped_pixels: np.ndarray, *, codes: Sequence[int],
                        names: Sequence[str], pixel_area_ha: float) -> pd.DataFrame:
    """The `metrics/area_estimates.csv` table: one row per class, areas in hectares (with the finite
    population correction, as the strata's pixel counts are known).

    Columns: class_code, class_name, mapped_area_ha, adjusted_area_ha, se_ha, ci95_low_ha, ci95_high_ha,
    users_accuracy, se_users, producers_accuracy, se_producers, n_samples.
    """
    mapped_ha = np.asarray(mapped_pixels, dtype=float) * pixel_area_ha
    estimate = stratified_area_estimate(counts, mapped_ha, stratum_pixels=mapped_pixels)
    return pd.DataFrame({
        "class_code": list(codes), "class_name": list(names), "mapped_area_ha": mapped_ha,
        "adjusted_area_ha": estimate["area"], "se_ha": estimate["se_area"],
        "ci95_low_ha": estimate["ci_low"], "ci95_high_ha": estimate["ci_high"],
        "users_accuracy": estimate["users_accuracy"], "se_users": estimate["se_users"],
        "producers_accuracy": estimate["producers_accuracy"], "se_producers": estimate["se_producers"],
        "n_samples": np.asarray(counts).sum(axis=1).astype(int),
    })


def sample_size(weights: Sequence[float], expected_users_accuracy: Sequence[float], *,
                target_se_overall: float = 0.01) -> int:
    """Total sample size for a target standard error of overall accuracy (Olofsson et al. 2014, eq. 13).

    n = (sum_i W_i S_i / S(O))^2 with S_i = sqrt(U_i (1 - U_i)); U_i is the user's accuracy expected
    for map class i (a guess: e.g. 0.9 for stable classes, 0.6-0.8 for change classes).
    """
    weights = np.asarray(weights, dtype=float)
    users = np.asarray(expected_users_accuracy, dtype=float)
    if weights.shape != users.shape:
        raise ValueError(f"{len(weights)} weights for {len(users)} expected user's accuracies")
    if not 0 < target_se_overall < 1:
        raise ValueError(f"target_se_overall must be in (0, 1), got {target_se_overall}")
    spread = np.sqrt(users * (1 - users))
    return int(np.ceil((weights @ spread / target_se_overall) ** 2))


def allocate_sample(n_total: int, mapped_pixels: Sequence[int], *, min_per_stratum: int = 50) -> np.ndarray:
    """Samples per stratum: at least `min_per_stratum` each (the paper's advice for rare classes), the
    rest in proportion to the mapped area; never more than a stratum's pixels; empty strata get none."""
    pixels = np.asarray(mapped_pixels, dtype=np.int64)
    base = np.where(pixels > 0, np.minimum(min_per_stratum, pixels), 0)
    rest = max(int(n_total) - int(base.sum()), 0)
    share = pixels / pixels.sum() if pixels.sum() else np.zeros(len(pixels))
    extra = np.floor(rest * share).astype(np.int64)
    return np.minimum(base + extra, pixels)


def stratified_random_sample(class_map: np.ndarray, allocation: Mapping[int, int], *, seed: int) -> np.ndarray:
    """Flat pixel indices of a stratified random sample without replacement: `allocation[code]` pixels
    of each map class `code` of the (y, x) `class_map` (a computed array). Sorted by stratum, then index."""
    rng = np.random.default_rng(seed)
    flat = np.asarray(class_map).ravel()
    chosen = []
    for code, n in sorted(allocation.items()):
        members = np.flatnonzero(flat == code)
        if n > len(members):
            raise InputError(f"stratum {code}: {n} samples asked, only {len(members)} pixels mapped")
        chosen.append(np.sort(rng.choice(members, size=n, replace=False)))
    return np.concatenate(chosen) if chosen else np.array([], dtype=np.int64)


def sample_points(class_map, indices: np.ndarray, *, names: Mapping[int, str]) -> gpd.GeoDataFrame:
    """The sample as points at pixel centres, to label in QGIS: sample_id, map_code, map_class,
    reference_code (empty: fill in with the class seen on reference imagery)."""
    ny, nx = class_map.shape[-2:]
    rows, cols = np.unravel_index(indices, (ny, nx))
    x, y = class_map["x"].values[cols], class_map["y"].values[rows]
    codes = np.asarray(class_map.values).reshape(ny, nx)[rows, cols].astype(int)
    return gpd.GeoDataFrame({
        "sample_id": np.arange(1, len(indices) + 1), "map_code": codes,
        "map_class": [names.get(int(c), str(c)) for c in codes],
        "reference_code": pd.array([pd.NA] * len(indices), dtype="Int64"),
    }, geometry=gpd.points_from_xy(x, y), crs=class_map.rio.crs)


def change_strata(class_from: np.ndarray, class_to: np.ndarray, transitions: Sequence[tuple[int, int]], *,
                  nodata: int = 255) -> np.ndarray:
    """Change map for area estimation: 0 = stable, k = the k-th transition of interest (1-based),
    len(transitions) + 1 = any other change, `nodata` where either map is nodata; uint8, same shape."""
    class_from, class_to = np.asarray(class_from), np.asarray(class_to)
    out = np.where(class_from == class_to, 0, len(transitions) + 1).astype(np.uint8)
    for k, (a, b) in enumerate(transitions, start=1):
        out[(class_from == a) & (class_to == b)] = k
    out[(class_from == nodata) | (class_to == nodata)] = nodata
    return out


def read_validation_sample(path: Path, *, reference_field: str) -> gpd.GeoDataFrame:
    """A labelled validation sample (validation/sample_design.gpkg after labelling in QGIS): the
    pipeline's columns (sample_id, map_code) and an integer `reference_code` on every row."""
    sample = io.read_vector(path, what="validation sample (classify.validation_sample)")
    missing = [c for c in ("sample_id", "map_code", reference_field) if c not in sample.columns]
    if missing:
        raise InputError(f"{path}: the validation sample lacks the field(s) {missing}")
    unlabelled = sample[reference_field].isna()
    if unlabelled.any():
        ids = sample.loc[unlabelled, "sample_id"].tolist()
        raise InputError(f"{path}: {int(unlabelled.sum())} sample(s) have no {reference_field!r} yet "
                         f"(sample_id {ids[:10]}{' ...' if len(ids) > 10 else ''}); label them all")
    sample = sample.rename(columns={reference_field: "reference_code"})
    sample["reference_code"] = sample["reference_code"].astype(int)
    return sample
