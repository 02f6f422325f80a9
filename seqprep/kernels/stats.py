"""Statistics kernels: popularity skew, duplicates, log-spaced histograms and monthly counts.

Pure numpy: arrays in, numbers or new arrays out. ``seqprep.stats`` assembles them into a report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")
Rows = np.ndarray | slice  # the rows of a user range: a slice, or row indices

__all__ = [
    "gini",
    "top_share",
    "duplicate_counts",
    "consecutive_repeats",
    "ordered_counts",
    "tie_counts",
    "user_parts",
    "log_bin_edges",
    "log_histogram",
    "month_counts",
]

_UNIT_SECONDS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


#: Rows handled at once by the chunked kernels here (bounds their temporary arrays).
_CHUNK = 1 << 20


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
    parts: list[Rows] | None = None,
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

    The rows are counted by user ranges (``parts``, by default :func:`user_parts`) on ``threads``
    threads. No user is in two ranges, so the sums are the same counts.
    """
    n = len(user)
    if n < 2:
        return 0, 0
    width = int(np.max(item)) + 1

    def count(rows: np.ndarray | slice) -> tuple[int, int]:
        def time_and_rating() -> tuple[np.ndarray, np.ndarray | None]:  # gathered only when a pair repeats
            return time[rows], None if rating is None else rating[rows]

        return _duplicates_in(user[rows], item[rows], time_and_rating, width)

    counts = _each(user_parts(user, threads=threads) if parts is None else parts, count, threads)
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _duplicates_in(
    user: np.ndarray,
    item: np.ndarray,
    time_and_rating: Callable[[], tuple[np.ndarray, np.ndarray | None]],
    width: int,
) -> tuple[int, int]:
    """:func:`duplicate_counts` of some rows, in one thread (their times and ratings asked for only
    when some pair repeats)."""
    n = len(user)
    if n < 2:
        return 0, 0
    repeated = _sorted_repeats(user, item, width)  # rows grouped by user with items in order (MovieLens)
    if repeated == 0:
        return 0, 0
    key = np.asarray(user, dtype=np.int64) * width
    key += item
    if repeated is None:
        sk = np.sort(key, kind="stable")
        repeated = int(np.count_nonzero(sk[1:] == sk[:-1]))
        del sk
        if repeated == 0:
            return 0, 0
    # the permutation is only needed when some pair repeats
    order = np.argsort(key, kind="stable")
    sk = key[order]
    eq = sk[1:] == sk[:-1]
    in_run = np.zeros(n, dtype=bool)
    in_run[1:] |= eq
    in_run[:-1] |= eq
    rows = order[in_run]  # only rows sharing their pair with another can be identical rows
    time, rating = time_and_rating()
    cols = [key[rows], np.asarray(time)[rows]]
    if rating is not None:
        cols.append(np.asarray(rating)[rows])
    sub = np.lexsort(cols[::-1])  # lexsort's last key is the primary one
    same = np.ones(len(rows) - 1, dtype=bool)
    for c in cols:
        cs = c[sub]
        same &= _equal(cs[1:], cs[:-1])
    return repeated, int(same.sum())


def _sorted_repeats(user: np.ndarray, item: np.ndarray, width: int) -> int | None:
    """Rows whose (user, item) equals the previous row's when the keys ``user * width + item`` are
    non-decreasing (no sort needed), else None. Looked at a chunk at a time."""
    count, last = 0, None
    for a in range(0, len(user), _CHUNK):
        key = np.asarray(user[a : a + _CHUNK], dtype=np.int64) * width
        key += item[a : a + _CHUNK]
        if last is not None:
            if key[0] < last:
                return None
            count += int(key[0] == last)
        step = key[1:] - key[:-1]
        if len(step) and int(step.min()) < 0:
            return None
        count += int(np.count_nonzero(step == 0))
        last = key[-1]
    return count


#: Below this many rows one sort is as fast as splitting the work.
_PARALLEL_MIN_ROWS = 1 << 16


def user_parts(user: np.ndarray, *, threads: int = 1) -> list[Rows]:
    """User ranges (:func:`~seqprep.kernels.sequences.user_ranges`, about 2M rows each) that cover
    every row; each holds all rows of its users.

    A range is a slice when the rows are grouped by user, else its row indices grouped by user where
    its users span at most 65,536 codes (:func:`~seqprep.kernels.sequences.group_rows_by_user`, on
    ``threads`` threads), so that the sorts done on it are short. Small inputs, and user codes that
    are not dense non-negative indices, are one range. Counting kernels take ``parts`` to share them.

    >>> user_parts(np.array([2, 0, 2]))
    [slice(0, 3, None)]
    """
    from .sequences import group_rows_by_user, user_ranges

    n = len(user)
    if n < max(2, _PARALLEL_MIN_ROWS) or int(user.min()) < 0 or int(user.max()) > 4 * n:
        return [slice(0, n)]
    parts = user_ranges(user, threads)
    return _each(parts, lambda rows: rows if isinstance(rows, slice) else group_rows_by_user(user, rows), threads)


def _each(parts: list[Rows], count: Callable[[Rows], T], threads: int) -> list[T]:
    """``[count(rows) for rows in parts]``, on ``threads`` threads (numpy drops the GIL)."""
    if threads <= 1 or len(parts) < 2:
        return [count(rows) for rows in parts]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="seqprep-stats") as pool:
        return list(pool.map(count, parts))


#: Positions handled at once by :func:`ordered_counts` (bounds its temporary arrays).
_ORDER_CHUNK = 1 << 20


def ordered_counts(
    user: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    order: np.ndarray | None = None,
    *,
    threads: int = 1,
    chunk: int | None = None,
) -> tuple[int, int, int]:
    """(consecutive repeats, interactions in ties, tie groups) of rows taken in ``order``.

    ``order`` lists the rows in (user, time) order, ties in their documented order
    (:func:`~seqprep.kernels.sequences.time_order`); None means the rows already are in that order.
    A *consecutive repeat* is a row whose item equals the item of the previous row of the same user;
    a *tie group* is a maximal run of one user's rows with equal timestamps, and its rows are the
    interactions in ties (as :func:`~seqprep.kernels.sequences.tie_stats` counts them).

    The positions are taken ``chunk`` (default ``_ORDER_CHUNK``) at a time (each chunk gathers its
    rows, plus the two before it, so no temporary is larger than a chunk), on ``threads`` threads;
    the counts are sums over chunks, whatever their number.

    >>> user, item, time = np.array([0, 1, 0, 0, 1]), np.array([7, 2, 7, 5, 2]), np.array([3, 9, 3, 1, 8])
    >>> ordered_counts(user, item, time, np.array([3, 0, 2, 4, 1]))
    (2, 2, 1)
    """
    n = len(user)
    if n < 2:
        return 0, 0, 0
    chunk = max(1, int(_ORDER_CHUNK if chunk is None else chunk))

    def count(a: int) -> tuple[int, int, int]:
        b = min(n, a + chunk)
        lo = max(a - 2, 0)  # pair j is (position j-1, position j); pairs a.. are this chunk's
        rows = slice(lo, b) if order is None else order[lo:b]
        u, it, t = user[rows], item[rows], time[rows]
        same_user = u[1:] == u[:-1]
        repeat = same_user & (it[1:] == it[:-1])
        tied = same_user & (t[1:] == t[:-1])
        first = max(a, 1) - lo - 1  # index of pair max(a, 1) in these arrays
        before = np.zeros(len(tied), dtype=bool)  # the previous pair (none before pair 1)
        before[1:] = tied[:-1]
        starts = tied[first:] & ~before[first:]
        groups = int(np.count_nonzero(starts))
        return int(np.count_nonzero(repeat[first:])), int(np.count_nonzero(tied[first:])) + groups, groups

    firsts = range(0, n, chunk)
    if threads > 1 and len(firsts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="seqprep-stats") as pool:
            counts = list(pool.map(count, firsts))
    else:
        counts = [count(a) for a in firsts]
    return tuple(int(sum(c[k] for c in counts)) for k in range(3))  # type: ignore[return-value]


def tie_counts(
    user: np.ndarray, time: np.ndarray, *, threads: int = 1, parts: list[Rows] | None = None
) -> tuple[int, int]:
    """(interactions in ties, tie groups) of rows in any order, as
    :func:`~seqprep.kernels.sequences.tie_stats` counts them on the time-ordered sequences.

    A tie group is a set of two or more rows of one user with equal timestamps; it depends on no
    order. For integer times whose packed (user, time) key fits in 63 bits the keys themselves are
    sorted (no permutation, about half the work of an argsort), by user ranges (``parts``, by
    default :func:`user_parts`) on ``threads`` threads; other times go through
    :func:`~seqprep.kernels.sequences.time_order`.

    >>> tie_counts(np.array([1, 0, 1, 0, 1]), np.array([5, 9, 5, 3, 5]))
    (3, 1)
    """
    from .sequences import packed_time_key, time_order

    n = len(user)
    if n < 2:
        return 0, 0

    def count(rows: np.ndarray | slice) -> tuple[int, int]:
        u = user[rows]
        if len(u) < 2:
            return 0, 0
        key = packed_time_key(u, time[rows])
        if key is None:
            return -1, -1
        key.sort(kind="stable")
        eq = key[1:] == key[:-1]
        del key
        groups = int(np.count_nonzero(eq)) - int(np.count_nonzero(eq[1:] & eq[:-1]))
        return int(np.count_nonzero(eq)) + groups, groups

    counts = _each(user_parts(user, threads=threads) if parts is None else parts, count, threads)
    if any(c[0] < 0 for c in counts):  # float times, or a key past 63 bits: through the permutation
        no_items = np.zeros(n, dtype=np.int8)  # ties do not look at items
        _, in_ties, groups = ordered_counts(user, no_items, time, time_order(user, time, threads=threads))
        return in_ties, groups
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


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

    def days_of(t: np.ndarray) -> np.ndarray:
        if np.issubdtype(t.dtype, np.floating):
            return np.floor(t / per_day).astype(np.int64)
        return t.astype(np.int64, copy=False) // per_day

    d0, d1 = (int(d) for d in days_of(np.array([ts.min(), ts.max()])))
    if d1 - d0 > 31 * max_months:
        msg = f"timestamps span {d1 - d0} days, more than {max_months} months; they do not look like {unit} epochs"
        raise ValueError(msg)
    if d1 - d0 <= 5_000_000:  # count per day first (a chunk at a time), then convert only the distinct days
        per_day_counts = np.zeros(d1 - d0 + 1, dtype=np.int64)
        for a in range(0, len(ts), _CHUNK):
            per_day_counts += np.bincount(days_of(ts[a : a + _CHUNK]) - d0, minlength=len(per_day_counts))
        seen = np.flatnonzero(per_day_counts)
        months = (seen + d0).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        weights = per_day_counts[seen]
    else:
        months = days_of(ts).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        weights = None
    first = int(months.min())
    counts = np.bincount(months - first, weights=weights).astype(np.int64)
    return first, counts
