"""Cloud masks applied to a scene stack: lazy in, lazy out."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

__all__ = ["cloud_mask"]


def cloud_mask(scene_stack: xr.Dataset, *, mask_values: Sequence[int]) -> xr.Dataset:
    """Reflectance with cloud and shadow pixels set to NaN; the `mask` variable is dropped.

    A stack without a `mask` variable is returned unchanged (nothing to apply).
    """
    if "mask" not in scene_stack:
        return scene_stack
    clear = ~scene_stack["mask"].isin(list(mask_values))
    return scene_stack.drop_vars("mask").where(clear)
