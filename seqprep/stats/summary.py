"""The numbers of ``seqprep stats`` for one source, as a JSON-ready dict whose keys never change
(:data:`SCHEMA_VERSION`; the schema is in docs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..dataset import TokenLists
from ..kernels.sequences import time_order
from ..kernels.stats import (
    duplicate_counts,
    gini,
    log_histogram,
    month_counts,
    ordered_counts,
    tie_counts,
    top_share,
    user_parts,
)
from ..resources import sort_threads
from ..timeunits import UNIT_SCALE
from .source import Source, SourceFeature

__all__ = ["SCHEMA_VERSION", "PERCENTILES", "RARE_ITEM", "summarize", "calendar_unit"]

SCHEMA_VERSION = 2  # 2: per-feature summaries (``features``), item/user attribute coverage (``attributes``) and ``sessions`` (a session-keyed log)
PERCENTILES = (10, 25, 50, 75, 90, 99)
RARE_ITEM = 5  # "items with fewer than 5 interactions"
MAX_RATING_VALUES = 100  # a rating distribution lists at most this many distinct values
TOP_VALUES = 10  # a categorical feature lists its this many most frequent values


def _percentiles(lengths: np.ndarray) -> dict[str, float | int]:
    """min, p10, p25, median, mean, p75, p90, p99, max (percentiles: numpy's linear interpolation)."""
    if len(lengths) == 0:
        lengths = np.zeros(1, dtype=np.int64)  # all zeros, same keys
    ps = {_pname(q): float(v) for q, v in zip(PERCENTILES, np.percentile(lengths, PERCENTILES))}
    out: dict[str, float | int] = {"min": int(lengths.min())}
    for name, value in ps.items():
        if name == "p75":
            out["mean"] = float(lengths.mean())
        out[name] = value
    out["max"] = int(lengths.max())
    return out


def _pname(q: int) -> str:
    return "median" if q == 50 else f"p{q}"


_PER_SECOND = UNIT_SCALE


def calendar_unit(unit: str, first: float, last: float) -> str:
    """The unit used to read timestamps as dates: the recorded one, or for bare numbers ('epoch') the
    one their magnitude suggests (below 1e11: seconds, 1e14: ms, 1e17: us, else ns)."""
    if unit in _PER_SECOND:
        return unit
    top = max(abs(first), abs(last))
    return "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"


def _epoch_to_iso(value: float, unit: str) -> str:
    """UTC date-time of an epoch value, to the second."""
    return str(np.datetime64(int(np.floor(value / _PER_SECOND[unit])), "s")) + "Z"


def _time_summary(ts: np.ndarray, unit: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "unit": unit,
        "calendar_unit": None,
        "first": None,
        "last": None,
        "first_utc": None,
        "last_utc": None,
        "span_days": None,
        "months": 0,
        "per_month": None,
    }
    if len(ts) == 0:
        return out
    first, last = ts.min().item(), ts.max().item()
    out["first"], out["last"] = first, last
    cal = calendar_unit(unit, first, last)
    try:
        m0, counts = month_counts(ts, cal)
        first_utc, last_utc = _epoch_to_iso(first, cal), _epoch_to_iso(last, cal)
    except (ValueError, OverflowError):  # not epoch times: keep the raw first/last only
        return out
    busiest = int(np.argmax(counts))
    out.update(
        calendar_unit=cal,
        first_utc=first_utc,
        last_utc=last_utc,
        span_days=(last - first) / (86400 * _PER_SECOND[cal]),
        months=len(counts),
        per_month={
            "mean": float(counts.mean()),
            "median": float(np.median(counts)),
            "min": int(counts.min()),
            "max": int(counts.max()),
            "busiest": str(np.datetime64(m0 + busiest, "M")),
            "first_month": str(np.datetime64(m0, "M")),
            "counts": counts.tolist(),
        },
    )
    return out


def _short(v: Any) -> float:
    """A float32 rating as the shortest decimal that reads back to it (0.1, not 0.10000000149)."""
    return float(str(v))


def _rating_summary(r: np.ndarray | None) -> dict[str, Any] | None:
    if r is None:
        return None
    # hashing in Arrow (no GIL: runs beside the other counts), then the few distinct values tidied:
    # every NaN is missing, and -0.0 is 0.0
    vc = pc.value_counts(pa.array(r))
    values = vc.field("values").to_numpy(zero_copy_only=False)
    counts = vc.field("counts").to_numpy(zero_copy_only=False).astype(np.int64)
    missing = 0
    if np.issubdtype(values.dtype, np.floating):
        nan = np.isnan(values)
        missing = int(counts[nan].sum())
        values, counts = values[~nan] + values.dtype.type(0), counts[~nan]
    values, where = np.unique(values, return_inverse=True)
    counts = np.bincount(where.reshape(-1), weights=counts, minlength=len(values)).astype(np.int64)
    total = int(counts.sum())
    out: dict[str, Any] = {
        "missing": missing,
        "distinct": int(len(values)),
        "min": _short(values[0]) if len(values) else None,
        # from the value counts: the same float whatever the order of the rows
        "mean": float((values.astype(np.float64) * counts).sum() / total) if total else None,
        "max": _short(values[-1]) if len(values) else None,
        "counts": None,
    }
    if len(values) <= MAX_RATING_VALUES:
        out["counts"] = [{"value": _short(v), "count": int(c)} for v, c in zip(values, counts)]
    return out


def summarize(src: Source, *, per_octave: int = 2) -> dict[str, Any]:
    """Every number of ``seqprep stats`` for one source, as a JSON-ready dict (the schema is in docs/stats.md)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-stats") as pool:
        # the time and rating summaries run beside the rest (numpy and Arrow release the GIL)
        time_summary = pool.submit(_time_summary, src.timestamps, src.time_unit)
        rating_summary = pool.submit(_rating_summary, src.ratings)
        return _summarize(src, per_octave, time_summary.result, rating_summary.result)


def _summarize(
    src: Source, per_octave: int, time_summary: Callable[[], dict[str, Any]], rating_summary: Callable[[], Any]
) -> dict[str, Any]:
    lengths = src.lengths
    users = len(lengths)
    n = int(src.offsets[-1]) if len(src.offsets) else 0
    counts = src.item_counts
    edges, hist = log_histogram(lengths, per_octave)
    k1, s1 = top_share(counts, 0.01)
    k10, s10 = top_share(counts, 0.10)
    user = src.row_users()
    threads = sort_threads()
    # neither count depends on the row order: raw logs are counted in file order (often grouped by
    # user with items in order, where the pair sort is short)
    parts = user_parts(user, threads=threads)  # the user ranges both counts walk
    repeated, identical = duplicate_counts(user, src.items, src.timestamps, src.ratings, threads=threads, parts=parts)
    if src.user is None:  # CSR rows: already in time order
        consecutive, in_ties, groups = ordered_counts(user, src.items, src.timestamps, threads=threads)
    elif repeated == 0:  # a consecutive repeat repeats a pair: none here, and ties need no permutation
        consecutive = 0
        in_ties, groups = tie_counts(user, src.timestamps, threads=threads, parts=parts)
    else:  # rows in file order: take them in (user, time) order, as build does
        order = time_order(user, src.timestamps, threads=threads)
        consecutive, in_ties, groups = ordered_counts(user, src.items, src.timestamps, order, threads=threads)
        del order
    del user
    rare = int((counts < RARE_ITEM).sum())
    return {
        "path": src.path,
        "kind": src.kind,
        "rows": {k: int(src.rows[k]) for k in ("read", "kept", "removed")},
        "users": users,
        "items": int(src.num_items),
        "interactions": n,
        "density": (n / (users * src.num_items)) if users and src.num_items else 0.0,
        "sequence_length": _percentiles(lengths),
        "length_histogram": {"edges": edges.tolist(), "counts": hist.tolist()},
        "popularity": {
            "top_1pct_items": k1,
            "top_1pct_share": s1,
            "top_10pct_items": k10,
            "top_10pct_share": s10,
            "gini": gini(counts),
            "items_below_5": rare,
            "items_below_5_share": rare / len(counts) if len(counts) else 0.0,
        },
        "time": time_summary(),
        "duplicates": {
            "identical_rows": identical,
            "repeated_pairs": repeated,
            "consecutive_repeats": consecutive,
        },
        "ties": {"interactions": in_ties, "groups": groups, "share": (in_ties / n) if n else 0.0},
        "ratings": rating_summary(),
        "steps": src.steps,
        "splits": src.splits,
        "features": None if src.features is None else [_feature_summary(f, n) for f in src.features],
        "attributes": src.attributes,
        "sessions": src.sessions,
    }


def _feature_summary(f: SourceFeature, n: int) -> dict[str, Any]:
    """One feature: cardinality, missing share, the most frequent values (decoded), number ranges."""
    out: dict[str, Any] = {
        "name": f.name,
        "kind": f.kind,
        "source": f.source,
        "values": None if f.vocab is None else len(f.vocab),
        "distinct": 0,
        "missing": 0,
        "missing_share": 0.0,
        "oov": None if f.vocab is None or f.vocab.oov_idx is None else 0,
        "top": None,
        "numbers": None,
        "tokens_per_interaction": None,
    }
    if f.kind == "num":
        values = np.asarray(f.values, dtype=np.float32)
        nan = np.isnan(values)
        known = values[~nan]
        out.update(distinct=int(pc.count_distinct(pa.array(known)).as_py()), missing=int(nan.sum()))
        if len(known):
            out["numbers"] = {"min": _short(known.min()), "mean": float(known.astype(np.float64).mean()), "max": _short(known.max())}
    else:
        if isinstance(f.values, TokenLists):
            indices, lengths = f.values.values, np.diff(f.values.offsets)
            out["missing"] = int((lengths == 0).sum())
            out["tokens_per_interaction"] = {"mean": float(lengths.mean()) if len(lengths) else 0.0, "max": int(lengths.max()) if len(lengths) else 0}
        else:
            indices = np.asarray(f.values)
            out["missing"] = int((indices == 0).sum())
        size = 1 + (0 if f.vocab is None else len(f.vocab)) + (f.vocab is not None and f.vocab.oov_idx is not None)
        counts = np.bincount(indices.astype(np.int64), minlength=size)
        known = counts[1 : 1 + (len(f.vocab) if f.vocab is not None else len(counts) - 1)]
        if out["oov"] is not None:
            out["oov"] = int(counts[f.vocab.oov_idx]) if f.vocab.oov_idx < len(counts) else 0
        out["distinct"] = int(np.count_nonzero(known))
        order = np.lexsort((np.arange(len(known)), -known))[: min(TOP_VALUES, out["distinct"])]
        total = max(1, n)  # shares of the interactions
        decoded = f.vocab.decode(order + 1).to_pylist() if f.vocab is not None else (order + 1).tolist()
        out["top"] = [
            {"value": v, "index": int(i + 1), "count": int(known[i]), "share": int(known[i]) / total} for v, i in zip(decoded, order)
        ]
    out["missing_share"] = out["missing"] / n if n else 0.0
    return out
