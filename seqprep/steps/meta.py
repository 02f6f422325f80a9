"""meta.json's content: how to size each embedding table, what each step removed, how to repeat it.

Every engine builds it here from the same figures (:class:`SequenceFacts`); the writer adds
``outputs`` (the files and their sha256) and the split step its ``split`` / ``windows`` /
``truncation`` / ``negatives`` entries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import BuildConfig
from ..io.keys import DEFAULT_OFFSET_UNIT
from ..kernels import tie_stats
from ..model import InputInfo, Sequences
from ..presets import flags, preset_named
from ..records import record
from ..version import __version__
from ..vocab import Vocabulary
from . import reuse
from .sort import TIE_RULE

__all__ = ["FORMAT_VERSION", "SequenceFacts", "length_stats", "make_meta", "time_columns"]

FORMAT_VERSION = 1


@record
class SequenceFacts:
    """What meta.json says about the sequences: their lengths, ties, timestamp type and ratings."""

    lengths: np.ndarray
    ties: tuple[int, int]  # (interactions tied with their predecessor, groups of ties)
    timestamp_dtype: np.dtype
    has_ratings: bool

    @classmethod
    def of(cls, seqs: Sequences) -> SequenceFacts:
        return cls(
            lengths=seqs.lengths,
            ties=tie_stats(seqs.offsets, seqs.timestamps),
            timestamp_dtype=seqs.timestamps.dtype,
            has_ratings=seqs.ratings is not None,
        )


def length_stats(lengths: np.ndarray) -> dict[str, float | int]:
    """min / median / mean / max of the sequence lengths.

    >>> length_stats(np.array([1, 2, 6]))
    {'min': 1, 'median': 2.0, 'mean': 3.0, 'max': 6}
    """
    if len(lengths) == 0:
        return {"min": 0, "median": 0.0, "mean": 0.0, "max": 0}
    return {
        "min": int(lengths.min()),
        "median": float(np.median(lengths)),
        "mean": round(float(lengths.mean()), 6),
        "max": int(lengths.max()),
    }


def time_columns(config: BuildConfig, time_unit: str) -> dict[str, Any]:
    """meta.json ``timestamp``'s record of ``--time-col BASE,OFFSET...`` (nothing for one column).

    >>> from seqprep.config import make_config
    >>> time_columns(make_config(["f"], "o", time_col="eventdate,timeframe"), "ms")["rule"]
    'base + offsets: the base date and each offset (in ms) in ms, added in exact int64'
    """
    cols = config.read.time_cols
    if len(cols) < 2:
        return {}
    if time_unit == "epoch":
        unit, rule = "epoch", "base + offsets: epoch numbers, the offsets added as they are (the base's own unit)"
    else:
        unit = config.read.time_offset_unit or DEFAULT_OFFSET_UNIT
        rule = f"base + offsets: the base date and each offset (in {unit}) in {time_unit}, added in exact int64"
    return {"columns": list(cols), "offset_unit": unit, "rule": rule}


def make_meta(
    config: BuildConfig,
    *,
    inputs: tuple[InputInfo, ...],
    rows_read: int,
    time_unit: str,
    users: Vocabulary,
    items: Vocabulary,
    facts: SequenceFacts,
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    """meta.json's content (without ``outputs``, which the writer adds)."""
    n_ties, tie_groups = facts.ties
    kept = int(facts.lengths.sum())
    return {
        "format_version": FORMAT_VERSION,
        "seqprep_version": __version__,
        "num_users": len(users),
        "num_items": len(items),
        "num_interactions": kept,
        "padding_idx": 0,
        "num_embeddings": len(items) + 1 + (items.oov_idx is not None),
        "oov_idx": items.oov_idx,
        "item_idx_range": [1, len(items) if items.oov_idx is None else items.oov_idx],
        "user_idx_range": [0, len(users) - 1],
        "item_order": config.item_order,
        "user_order": config.user_order,
        "sort": {"by": ["user_idx", "timestamp"], "stable": True, "tie_break": TIE_RULE},
        "ties": {"interactions": int(n_ties), "groups": int(tie_groups)},
        "timestamp": {"dtype": str(facts.timestamp_dtype), "unit": time_unit, **time_columns(config, time_unit)},
        "id_types": {"user": users.id_type(), "item": items.id_type()},
        "has_ratings": facts.has_ratings,
        "rows": {"read": rows_read, "kept": kept, "removed": rows_read - kept},
        "steps": steps,
        "vocab_reuse": reuse.reuse_meta(config, users, items, steps, kept),
        "sequence_length": length_stats(facts.lengths),
        "inputs": [
            {
                "path": info.path,
                "bytes": info.bytes,
                "sha256": info.sha256,
                "rows": info.rows,
                "format": info.format,
                "compression": info.compression,
                "columns": info.columns,
            }
            for info in inputs
        ],
        "options": {k: v for k, v in config.to_dict().items() if k != "resources"},  # never shape the result
        **({"preset": preset_meta(config)} if config.preset is not None else {}),
    }


def preset_meta(config: BuildConfig) -> dict[str, Any]:
    """meta.json ``preset``: its name, the script, the flags it expands to and those overridden."""
    p = preset_named(config.preset or "")
    flat: dict[str, Any] = {}
    for key, value in config.to_dict().items():
        flat.update(value if isinstance(value, dict) else {key: value})
    differs = {k: flat[k] for k in p.options if flat.get(k) != (list(v) if isinstance(v := p.options[k], tuple) else v)}
    return {
        "name": p.name,
        "source": p.source,
        "flags": flags(p.options),
        "overridden": flags({k: tuple(v) if isinstance(v, list) else v for k, v in differs.items()}),
    }
