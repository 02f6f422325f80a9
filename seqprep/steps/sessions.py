"""Sessions (``--session-gap``): each user's stream split at gaps longer than the gap.

A new session starts at a user's first interaction and after a gap strictly longer than the gap;
``session_ids`` count from 0 within each user. Users are never cut, so an engine that holds whole
users in each part (``--memory-limit``, Dask) numbers the sessions of a part exactly as the local
build numbers them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..config import SessionOptions
from ..kernels.filters import session_ids
from ..model import Sequences
from ..timeunits import gap_in_unit, largest_abs, parse_duration

__all__ = ["add_sessions", "session_gap", "session_lengths", "sessions_meta"]


def session_gap(opts: SessionOptions, time_unit: str, largest: float) -> int | float | None:
    """The gap in the log's time unit (``None`` without ``--session-gap``); ``largest`` = max |t|."""
    if opts.session_gap is None:
        return None
    return gap_in_unit(opts.session_gap, time_unit, largest)


def add_sessions(seqs: Sequences, time_unit: str, opts: SessionOptions) -> tuple[Sequences, dict[str, Any] | None]:
    """Sequences with per-user session numbers (``session_ids``) and meta.json's ``sessions`` entry."""
    if opts.session_gap is None:  # (no pass over the timestamps for a gap that is not asked for)
        return seqs, None
    gap = session_gap(opts, time_unit, largest_abs(seqs.timestamps))
    assert gap is not None
    sids = session_ids(seqs.offsets, seqs.timestamps, gap)
    meta = sessions_meta(opts, time_unit, gap, session_lengths(seqs.offsets, sids))
    return dataclasses.replace(seqs, session_ids=sids), meta


def session_lengths(offsets: np.ndarray, sids: np.ndarray) -> np.ndarray:
    """The length of every session, in order, from CSR offsets and the session numbers.

    >>> session_lengths(np.array([0, 4, 6]), np.array([0, 0, 1, 1, 0, 1], dtype=np.int32))
    array([2, 2, 1, 1])
    """
    if len(sids) == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.diff(offsets)
    new = np.ones(len(sids), dtype=bool)
    new[1:] = sids[1:] != sids[:-1]
    new[offsets[:-1][lengths > 0]] = True
    return np.diff(np.append(np.flatnonzero(new), len(sids)))


def sessions_meta(opts: SessionOptions, unit: str, gap: float, lengths: np.ndarray) -> dict[str, Any]:
    """meta.json's ``sessions`` entry from the lengths of all sessions."""
    if len(lengths):
        length = {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "mean": round(float(lengths.mean()), 6),
            "max": int(lengths.max()),
        }
    else:
        length = {"min": 0, "median": 0.0, "mean": 0.0, "max": 0}
    kind, _ = parse_duration(opts.session_gap)
    return {
        "gap": str(opts.session_gap),
        "gap_in_time_unit": gap,
        "time_unit": unit if kind == "raw" or unit != "epoch" else "epoch seconds",
        "rule": "a new session starts at a user's first interaction and after a gap strictly longer than gap",
        "numbering": "session_ids count from 0 within each user",
        "num_sessions": len(lengths),
        "session_length": length,
    }
