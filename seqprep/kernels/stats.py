"""Statistics kernels: popularity skew, duplicates, log-spaced histograms and monthly counts.

Pure numpy: arrays in, numbers or new arrays out. ``seqprep.stats`` assembles them into a report.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "gini",
    "top_share",
    "duplicate_counts",
    "consecutive_repeats",
    "log_bin_edges",
    "log_histogram",
    "month_counts",
]

_UNIT_SECONDS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative ``counts``: 0 when all are equal, (n-1)/n when one holds all.

    ``G = sum_i (2i - n - 1) x_(i) / (n * sum x)`` over the counts sorted ascending (i = 1..n).

    >>> gini(np.array([5, 5, 5, 5]))
    0.0
    >>> gini(np.array([0, 0, 0, 8]))
    0.75
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total == 0:
        return 0.0
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    return float(max(0.0, (weights * x).sum() / (n * total)))  # numpy's own summation: no BLAS threads


def top_share(counts: np.ndarray, fraction: float) -> tuple[int, float]:
    """(k, share): the ``k = ceil(fraction * n)`` (at least 1) largest counts and their share of the sum.

    >>> top_share(np.array([1, 1, 2, 6]), 0.25)
    (1, 0.6)
    >>> top_share(np.array([3, 1, 2]), 0.5)
    (2, 0.8333333333333334)
    """
    counts = np.asarray(counts)
    n = len(counts)
    total = int(counts.sum())
    if n == 0 or total == 0:
        return 0, 0.0
    k = min(n, max(1, math.ceil(fraction * n - 1e-9)))
    top = np.partition(counts, n - k)[n - k :]
    return k, int(top.sum()) / total


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality where NaN equals NaN (a missing rating repeats a missing rating)."""
    eq = a == b
    if np.issubdtype(a.dtype, np.floating):
        eq |= np.isnan(a) & np.isnan(b)
    return eq


def duplicate_counts(
    user: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    rating: np.ndarray | None = None,
    *,
    threads: int = 1,
) -> tuple[int, int]:
    """(repeated user-item pairs, identical rows), each counted as rows beyond the first occurrence.

    A row is a *repeated pair* when an earlier row has the same user and item, and an *identical row*
    when an earlier row also has the same timestamp and rating (NaN ratings compare equal). Both are
    ``rows - distinct``, so they do not depend on row order. ``user`` and ``item`` are non-negative
    integer codes.

    >>> u = np.array([0, 0, 0, 1, 0])
    >>> i = np.array([3, 3, 4, 3, 3])
    >>> t = np.array([1, 1, 2, 1, 5])
    >>> duplicate_counts(u, i, t)
    (2, 1)
    >>> duplicate_counts(u, i, t, rating=np.array([1.0, 2.0, 1.0, 1.0, 1.0]))
    (2, 0)

    With ``threads`` > 1 and rows grouped by user (non-decreasing ``user``, as in sequences), the
    pairs are counted on that many slices at once (cut between users; numpy sorts without the GIL).
    The counts are the same.
    """
    n = len(user)
    if n < 2:
        return 0, 0
    width = int(np.max(item)) + 1
    key = np.asarray(user, dtype=np.int64) * width
    key += item
    # a stable sort (timsort) is fast on user-grouped rows, the usual layout; the permutation is only
    # needed when some pair repeats
    repeated = _repeated_pairs(key, user, threads)
    if repeated == 0:
        return 0, 0
    order = np.argsort(key, kind="stable")
    sk = key[order]
    eq = sk[1:] == sk[:-1]
    in_run = np.zeros(n, dtype=bool)
    in_run[1:] |= eq
    in_run[:-1] |= eq
    rows = order[in_run]  # only rows sharing their pair with another can be identical rows
    cols = [key[rows], np.asarray(time)[rows]]
    if rating is not None:
        cols.append(np.asarray(rating)[rows])
    sub = np.lexsort(cols[::-1])  # lexsort's last key is the primary one
    same = np.ones(len(rows) - 1, dtype=bool)
    for c in cols:
        cs = c[sub]
        same &= _equal(cs[1:], cs[:-1])
    return repeated, int(same.sum())


#: Below this many rows one sort is as fast as splitting the work.
_PARALLEL_MIN_ROWS = 1 << 16


def _repeated_pairs(key: np.ndarray, user: np.ndarray, threads: int) -> int:
    """Rows whose key equals an earlier row's key (``rows - distinct keys``)."""

    def count(part: np.ndarray) -> int:
        sk = np.sort(part, kind="stable")
        return int(np.count_nonzero(sk[1:] == sk[:-1]))

    n = len(key)
    if threads > 1 and n >= _PARALLEL_MIN_ROWS and bool((user[1:] >= user[:-1]).all()):
        # cut between users: no key occurs on both sides of a cut
        cuts = np.searchsorted(user, user[(np.arange(1, threads) * n) // threads], side="left")
        bounds = np.unique(np.concatenate([[0], cuts, [n]]))
        from concurrent.futures import ThreadPoolExecutor
        from itertools import pairwise

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return sum(pool.map(lambda ab: count(key[ab[0] : ab[1]]), pairwise(bounds)))
    return count(key)


def consecutive_repeats(offsets: np.ndarray, items: np.ndarray) -> int:
    """Interactions whose item equals the previous item of the same user's (time-ordered) sequence.

    >>> consecutive_repeats(np.array([0, 3, 5]), np.array([7, 7, 7, 7, 2]))
    2
    """
    n = len(items)
    if n < 2:
        return 0
    eq = items[1:] == items[:-1]
    starts = np.asarray(offsets[1:-1])
    starts = starts[(starts > 0) & (starts < n)]
    eq[starts - 1] = False  # the first item of a user does not repeat the previous user's last
    return int(eq.sum())


def log_bin_edges(max_value: int, per_octave: int = 2) -> np.ndarray:
    """Integer bin edges ``round(2 ** (j / per_octave))`` (distinct) from 1 past ``max_value``.

    Bin ``k`` is ``[edges[k], edges[k+1])``; the last edge is greater than ``max_value``.

    >>> log_bin_edges(20).tolist()
    [1, 2, 3, 4, 6, 8, 11, 16, 23]
    >>> log_bin_edges(9, per_octave=1).tolist()
    [1, 2, 4, 8, 16]
    """
    if per_octave < 1:
        msg = f"per_octave must be at least 1, not {per_octave}"
        raise ValueError(msg)
    top = max(1, int(max_value))
    j = np.arange(0, per_octave * (top.bit_length() + 1) + 1)
    edges = np.unique(np.round(2.0 ** (j / per_octave)).astype(np.int64))
    last = int(np.searchsorted(edges, top, side="right"))
    return edges[: last + 1]


def log_histogram(values: np.ndarray, per_octave: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) of non-negative integers in log-spaced bins, from the bin of the smallest value.

    Bins are those of :func:`log_bin_edges`, plus ``[0, 1)`` when a value is 0; ``counts[k]`` counts
    the values in ``[edges[k], edges[k+1])``, and ``counts.sum() == len(values)``.

    >>> edges, counts = log_histogram(np.array([3, 3, 5, 9, 12]))
    >>> edges.tolist(), counts.tolist()
    ([3, 4, 6, 8, 11, 16], [2, 1, 0, 1, 1])
    >>> [a.tolist() for a in log_histogram(np.array([0, 0]))]
    [[0, 1], [2]]
    """
    values = np.asarray(values)
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0:
        msg = f"log_histogram needs non-negative values, got {lo}"
        raise ValueError(msg)
    edges = log_bin_edges(hi, per_octave)
    if lo == 0:
        edges = np.concatenate([[0], edges])
        edges = edges[: int(np.searchsorted(edges, hi, side="right")) + 1]  # all zeros: just [0, 1)
    first = int(np.searchsorted(edges, lo, side="right")) - 1
    edges = edges[first:]
    idx = np.searchsorted(edges, values, side="right") - 1
    counts = np.bincount(idx, minlength=len(edges) - 1).astype(np.int64)
    return edges, counts


def month_counts(timestamps: np.ndarray, unit: str = "s", max_months: int = 120_000) -> tuple[int, np.ndarray]:
    """(first month, counts): interactions per calendar month (UTC), every month from first to last.

    ``first`` is the month index since 1970-01 (``np.datetime64(first, "M")`` names it); months with
    no interaction count 0. ``timestamps`` are epoch values in ``unit`` (s, ms, us or ns); fractional
    values are floored. A span of more than ``max_months`` months (timestamps that are not epoch
    times) raises ValueError rather than allocating a huge array.

    >>> first, counts = month_counts(np.array([0, 86400 * 31, 86400 * 95, 5]))
    >>> str(np.datetime64(first, "M")), counts.tolist()
    ('1970-01', [2, 1, 0, 1])
    """
    if unit not in _UNIT_SECONDS:
        msg = f"unknown time unit {unit!r}; expected one of {', '.join(_UNIT_SECONDS)}"
        raise ValueError(msg)
    ts = np.asarray(timestamps)
    if len(ts) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    per_day = 86400 * _UNIT_SECONDS[unit]
    if np.issubdtype(ts.dtype, np.floating):
        days = np.floor(ts / per_day).astype(np.int64)
    else:
        days = ts.astype(np.int64, copy=False) // per_day
    d0, d1 = int(days.min()), int(days.max())
    if d1 - d0 > 31 * max_months:
        msg = f"timestamps span {d1 - d0} days, more than {max_months} months; they do not look like {unit} epochs"
        raise ValueError(msg)
    if d1 - d0 <= 5_000_000:  # count per day first: a bincount, then convert only the distinct days
        per_day_counts = np.bincount(days - d0)
        seen = np.flatnonzero(per_day_counts)
        months = (seen + d0).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        weights = per_day_counts[seen]
    else:
        months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        weights = None
    first = int(months.min())
    counts = np.bincount(months - first, weights=weights).astype(np.int64)
    return first, counts
