"""What a failing AOI keeps: the run-level products of AOIs that failed in this run stay as an earlier
run made them (their export rows, report page and STAC items), instead of being emptied or removed.

They are kept only where the earlier products were made with the same `public` settings (recorded in the
products' stamp, `.midr/products.json`): a public report never carries pages of a non-public run.
"""

from __future__ import annotations

import json

from pipeline.results import RunOutputs

__all__ = ["kept_aois"]


def kept_aois(run: RunOutputs) -> set[str]:
    """The AOIs that failed in the manifest's run and whose earlier products are kept as they are."""
    failed = {a for a, record in run.manifest.get("aois", {}).items() if record.get("status") == "failed"}
    if not failed:
        return set()
    try:
        stamp = json.loads(run.layout.stamp(None, "products").read_text())
    except (OSError, ValueError):
        return set()  # no products yet (or an unreadable stamp): nothing to keep
    made_with = (stamp.get("facts") or {}).get("public")
    return failed if made_with is not None and made_with == run.manifest.get("config", {}).get("public") else set()
