"""The numbers behind ``seqprep stats``: for a raw log or a built folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .dataset import is_built, load
from .kernels import tie_stats

__all__ = ["compute_stats", "stats_for_path", "format_stats"]


def compute_stats(offsets: np.ndarray, timestamps: np.ndarray, num_items: int) -> dict[str, Any]:
    """Counts, density, sequence-length summary and ties of CSR sequences.

    >>> s = compute_stats(np.array([0, 2, 5]), np.array([1, 1, 3, 4, 5]), num_items=4)
    >>> s["users"], s["interactions"], s["density"], s["ties"]["interactions"]
    (2, 5, 0.625, 2)
    """
    lengths = np.diff(offsets)
    users = len(lengths)
    n = int(offsets[-1]) if len(offsets) else 0
    in_ties, groups = tie_stats(offsets, timestamps) if n else (0, 0)
    return {
        "users": users,
        "items": int(num_items),
        "interactions": n,
        "density": (n / (users * num_items)) if users and num_items else 0.0,
        "sequence_length": {
            "min": int(lengths.min()) if users else 0,
            "median": float(np.median(lengths)) if users else 0.0,
            "mean": float(lengths.mean()) if users else 0.0,
            "max": int(lengths.max()) if users else 0,
        },
        "ties": {"interactions": in_ties, "groups": groups, "share": (in_ties / n) if n else 0.0},
    }


def stats_for_path(path: str, **read_options: Any) -> dict[str, Any]:
    """Stats of a built folder (read back) or of a raw log (read with ``read_options``, nothing written)."""
    if path != "-" and is_built(path):
        ds = load(path)
        out = compute_stats(ds.offsets, ds.timestamps, ds.num_items)
        out["source"] = {"path": str(Path(path)), "kind": "built"}
        out["steps"] = ds.meta.get("steps", [])
        if "split" in ds.meta:
            out["split"] = ds.meta["split"]
        return out
    from .pipeline import build

    res = build([path], None, **read_options)
    out = compute_stats(res.sequences.offsets, res.sequences.timestamps, len(res.items))
    out["source"] = {"path": path, "kind": "raw"}
    out["rows"] = res.meta["rows"]
    out["steps"] = res.meta["steps"]
    return out


def format_stats(s: dict[str, Any]) -> str:
    """Human-readable lines for one stats dict."""
    sl = s["sequence_length"]
    lines = [
        f"source          {s['source']['path']} ({s['source']['kind']})",
        f"users           {s['users']:,}",
        f"items           {s['items']:,}",
        f"interactions    {s['interactions']:,}",
        f"density         {s['density']:.6f}",
        f"sequence length min {sl['min']:,}  median {sl['median']:g}  mean {sl['mean']:.2f}  max {sl['max']:,}",
        f"ties            {s['ties']['interactions']:,} interactions in {s['ties']['groups']:,} groups "
        f"({100 * s['ties']['share']:.1f}%)",
    ]
    if "rows" in s:
        lines.append(f"rows            {s['rows']['read']:,} read, {s['rows']['kept']:,} kept, {s['rows']['removed']:,} removed")
    for step in s.get("steps", []):
        if step.get("rows_removed"):
            detail = ", ".join(
                f"{k} {v:,}" for k, v in step.items() if (k.startswith("missing_") or k.endswith("_dropped")) and v
            )
            lines.append(f"  removed by {step['step']}: {step['rows_removed']:,} rows ({detail})")
    if "split" in s:
        sz = s["split"]["sizes"]
        lines.append(
            f"split           {s['split']['rule']}: train {sz['train']['interactions']:,} interactions of "
            f"{sz['train']['users']:,} users; valid {sz['valid']['rows']:,} rows; test {sz['test']['rows']:,} rows"
        )
    return "\n".join(lines)
