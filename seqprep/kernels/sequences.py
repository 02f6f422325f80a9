"""Sequence kernels: the stable time sort, CSR offsets, ties and padding."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .arrow import sorted_unique
from .features import take_chunked

__all__ = [
    "time_order",
    "in_time_order",
    "grouped_by_user",
    "packed_time_key",
    "code_counts",
    "balanced_user_bounds",
    "user_ranges",
    "user_range_rows",
    "group_rows_by_user",
    "part_time_order",
    "rows_in_time_order",
    "grouped_time_order",
    "csr_offsets",
    "tie_mask",
    "tie_stats",
    "padded",
    "sequence_parts",
    "ROW_GROUP_INTERACTIONS",
    "HALF_STEPS",
    "half_step_codes",
    "from_half_steps",
    "time_offsets",
    "from_time_offsets",
]


def time_order(user: np.ndarray, time: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """The permutation that sorts interactions by (user, time), stably.

    Equal (user, time) pairs keep their input order: that is the tie-break. For integer times whose
    range fits beside the user index in 63 bits, one stable argsort of a packed int64 key is used;
    otherwise a (stable) ``np.lexsort``. Both give the same permutation.

    With ``threads`` > 1 (and a large input) the rows are first split into user ranges of about
    ``_PART_ROWS`` rows (at least one per thread; scattered rows are grouped by user inside each
    range, each user's rows kept in input order), and the ranges are argsorted on ``threads``
    threads (numpy releases the GIL while sorting). Every key of a range is below every key of the
    next, so the concatenation is the same permutation as one stable sort: the result never
    depends on ``threads``.

    >>> time_order(np.array([1, 0, 1, 0]), np.array([5, 9, 5, 3]))
    array([3, 1, 0, 2])
    >>> user, t = np.repeat(np.arange(40), 50), np.tile(np.arange(50) % 7, 40)
    >>> bool((time_order(user, t, threads=3) == time_order(user, t)).all())
    True
    """
    n = len(user)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if threads > 1 and n >= _PARALLEL_MIN_ROWS and 0 <= int(user.min()) and int(user.max()) <= 4 * n:
        return _parallel_order(user, time, threads)  # user indices dense enough to count them
    key = packed_time_key(user, time)
    if key is not None:
        return np.argsort(key, kind="stable")
    return np.lexsort((time, user))


#: Below this many rows one sort is as fast as splitting the work (and starts no thread: a sort of
#: 65,536 rows takes a few ms, starting a pool thread up to 1 ms on a busy machine).
_PARALLEL_MIN_ROWS = 1 << 16

#: Rows handled at once by the chunked loops here (bounds their temporary arrays).
_CHUNK = 1 << 20

#: Rows of one user range of :func:`user_ranges` (threaded time_order, stats' counts).
_PART_ROWS = 1 << 21


def packed_time_key(user: np.ndarray, time: np.ndarray) -> np.ndarray | None:
    """``user << bits | (time - min)`` as int64 when it fits in 63 bits (integer times only)."""
    if not np.issubdtype(time.dtype, np.integer):
        return None
    tmin, tmax = int(time.min()), int(time.max())
    tbits = (tmax - tmin).bit_length()
    ubits = int(user.max()).bit_length()
    if tbits + ubits > 62:
        return None
    key = np.subtract(time, np.int64(tmin), dtype=np.int64)
    for a in range(0, len(key), _CHUNK):  # no temporary as large as the input
        key[a : a + _CHUNK] |= user[a : a + _CHUNK].astype(np.int64) << tbits
    return key


def in_time_order(user: np.ndarray, time: np.ndarray) -> bool:
    """Whether the rows are already in stable (user, time) order: ``user`` non-decreasing and, within
    each user, ``time`` non-decreasing. Then :func:`time_order` is the identity (ties keep input order).

    Looked at a chunk of rows at a time, stopping at the first chunk out of order (logs written in
    user-time order skip the sort; any other order costs about one chunk's comparisons).

    >>> in_time_order(np.array([0, 0, 1]), np.array([5, 5, 1])), in_time_order(np.array([0, 0]), np.array([2, 1]))
    (True, False)
    """
    n = len(user)
    for a in range(0, max(n - 1, 0), _CHUNK):
        u, t = user[a : a + _CHUNK + 1], time[a : a + _CHUNK + 1]  # one row of overlap with the next chunk
        same = u[1:] == u[:-1]
        if not (same | (u[1:] > u[:-1])).all() or (same & (t[1:] < t[:-1])).any():
            return False
    return True


def grouped_by_user(user: np.ndarray) -> bool:
    """Whether ``user`` is non-decreasing (each user's rows together, users in order): a chunk at a
    time, stopping at the first chunk that is not.

    >>> grouped_by_user(np.array([0, 0, 2, 5])), grouped_by_user(np.array([1, 0]))
    (True, False)
    """
    for a in range(0, max(len(user) - 1, 0), _CHUNK):
        u = user[a : a + _CHUNK + 1]
        if (u[1:] < u[:-1]).any():
            return False
    return True


def _parallel_order(user: np.ndarray, time: np.ndarray, threads: int) -> np.ndarray:
    from concurrent.futures import ThreadPoolExecutor

    n = len(user)
    parts = user_ranges(user, threads)  # scattered rows are grouped by user inside each (rows_in_time_order)
    out = np.empty(n, dtype=np.int64)
    starts = np.cumsum([0] + [_rows_in(p) for p in parts])

    def sort_part(k: int) -> None:
        out[starts[k] : starts[k + 1]] = rows_in_time_order(user, time, parts[k])

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="seqprep-sort") as pool:
        list(pool.map(sort_part, range(len(parts))))  # each part is copied into place by its thread
    return out


def _rows_in(rows: np.ndarray | slice) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def user_ranges(user: np.ndarray, threads: int = 1) -> list[np.ndarray | slice]:
    """:func:`user_range_rows` for ranges of about ``_PART_ROWS`` rows (at least ``threads`` of them):
    a range's sort keys stay within a large CPU cache. ``user`` holds dense non-negative indices.

    >>> [r.tolist() for r in user_ranges(np.array([0, 1, 1, 0]), threads=2)]
    [[0, 3], [1, 2]]
    """
    counts = code_counts(user)
    parts = max(threads, -(-len(user) // _PART_ROWS))
    return user_range_rows(user, balanced_user_bounds(counts, parts), counts=counts)


def balanced_user_bounds(counts: np.ndarray, parts: int) -> np.ndarray:
    """Bounds of ``parts`` user ranges holding about equally many rows, for :func:`user_range_rows`.

    ``counts[u]`` is the number of rows of user ``u``; range ``k`` is ``bounds[k] <= u < bounds[k+1]``
    (ranges may be empty when one user holds many rows).

    >>> balanced_user_bounds(np.array([5, 1, 1, 1, 1, 1]), 2).tolist()
    [0, 1, 6]
    """
    n = int(np.sum(counts))
    cuts = np.searchsorted(np.cumsum(counts), (np.arange(1, parts) * n) // parts, side="right")
    return np.concatenate([[0], np.minimum(cuts, len(counts)), [len(counts)]]).astype(np.int64)


def user_range_rows(
    user: np.ndarray, bounds: np.ndarray, *, counts: np.ndarray | None = None
) -> list[np.ndarray | slice]:
    """The rows of each user range ``bounds[k] <= u < bounds[k+1]``, in input order.

    ``user`` holds dense non-negative indices and ``bounds`` is non-decreasing from 0 to at least
    ``user.max() + 1``; ``counts`` (the rows of each user, :func:`code_counts`) saves a pass when
    the caller has them. Rows already grouped by user (non-decreasing ``user``) give slices; any
    other order gives index arrays from one stable counting sort by range (numpy's radix sort),
    int32 when the rows fit (they are held while every range is sorted: 100 MB less at 25M rows).

    >>> user_range_rows(np.array([0, 0, 1, 2, 2]), np.array([0, 2, 3]))
    [slice(0, 3, None), slice(3, 5, None)]
    >>> [r.tolist() for r in user_range_rows(np.array([2, 0, 1, 2, 0]), np.array([0, 2, 3]))]
    [[1, 2, 4], [0, 3]]
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    if counts is None or len(counts) < int(bounds[-1]):
        counts = code_counts(user, int(bounds[-1]))
    starts = csr_offsets(counts)[bounds]  # each range's first row once rows are grouped by user
    spans = list(zip(starts[:-1].tolist(), starts[1:].tolist()))
    if grouped_by_user(user):
        return [slice(lo, hi) for lo, hi in spans]
    range_of_user = np.zeros(len(counts), dtype=np.int64)
    np.add.at(range_of_user, bounds[1:-1][bounds[1:-1] < len(counts)], 1)
    np.cumsum(range_of_user, out=range_of_user)
    kind = np.uint8 if len(bounds) <= 257 else np.uint16 if len(bounds) <= 65537 else np.int64
    by_range = np.argsort(range_of_user.astype(kind)[user], kind="stable")
    if len(user) <= np.iinfo(np.int32).max:  # held through the whole sort: half the bytes as int32
        by_range = by_range.astype(np.int32)
    return [by_range[lo:hi] for lo, hi in spans]


def rows_in_time_order(user: np.ndarray, time: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """``rows`` (a slice or row indices, as :func:`user_range_rows` gives) in stable (user, time)
    order, as row indices of the whole input.

    >>> rows_in_time_order(np.array([1, 0, 0, 0]), np.array([5, 9, 5, 3]), slice(1, 4)).tolist()
    [3, 2, 1]
    """
    if not isinstance(rows, slice):
        return rows[part_time_order(user[rows], time[rows])]
    u, t = user[rows], time[rows]
    order = grouped_time_order(u, t)
    if order is None:
        order = time_order(u, t)
    order += rows.start or 0
    return order


def part_time_order(user: np.ndarray, time: np.ndarray) -> np.ndarray:
    """:func:`time_order` (the stable (user, time) order) of rows that are mostly not grouped by
    user, such as one user range's rows gathered in input order (``a[rows]`` for ascending
    :func:`user_range_rows` indices); positions into ``user`` and ``time``.

    Users spanning at most 65,536 indices are grouped by one counting sort (numpy's radix sort of
    16-bit keys; each user's rows keep their order), and the grouped rows are ordered by
    :func:`grouped_time_order`'s one sort of unique keys. A caller sorting a user range of a
    scattered log gathers its columns with the ascending rows first (a forward sweep of each
    column) and permutes these part-sized copies by the result: every random read then falls in a
    few MB instead of all of the log's columns (a 25M-row shuffled log on 2 cores: the sort with the
    streamed write 3.02-3.08 s against 3.15-4.15 s in ``benchmarks/steps.py``, the whole build 6.88 s
    against 7.81 s, 5 rounds of ``benchmarks/quoted.py``, 34 MiB more at the peak).

    >>> part_time_order(np.array([7, 5, 7, 5, 6]), np.array([2, 9, 1, 3, 0])).tolist()
    [3, 1, 4, 2, 0]
    """
    n = len(user)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    lo, hi = int(user.min()), int(user.max())
    if hi - lo >= 1 << 16:
        return time_order(user, time)
    grouped = np.argsort(np.subtract(user, lo, dtype=np.int64).astype(np.uint16), kind="stable")
    u, t = user[grouped], time[grouped]
    order = grouped_time_order(u, t)
    if order is None:
        order = time_order(u, t)
    return grouped[order]


def grouped_time_order(user: np.ndarray, time: np.ndarray) -> np.ndarray | None:
    """:func:`time_order` of rows grouped by user (``user`` non-decreasing) with integer times, by
    one unstable sort of unique keys; None when the rows are not grouped or the keys do not fit.

    Each row's key packs (its user, its time, its place among its user's rows) into 63 bits: the keys
    are distinct, so any sort of them - numpy's vectorised (SIMD) quicksort of the values, several
    times faster than a stable argsort - orders them as the stable sort by (user, time) does. Each
    user keeps the positions it had (rows are grouped), so a row's place in the result is its user's
    first position plus the place packed in its key. Rows already in order are left as they are.

    >>> grouped_time_order(np.array([0, 0, 0, 1, 1]), np.array([9, 3, 9, 5, 4])).tolist()
    [1, 0, 2, 4, 3]
    >>> grouped_time_order(np.array([1, 0]), np.array([1, 2])) is None  # not grouped
    True
    """
    n = len(user)
    if n == 0 or not np.issubdtype(time.dtype, np.integer):
        return None
    if not grouped_by_user(user):
        return None
    if in_time_order(user, time):
        return np.arange(n, dtype=np.int64)
    starts = np.flatnonzero(user[1:] != user[:-1]) + 1
    bounds = np.concatenate([[0], starts, [n]]).astype(np.int64)
    lengths = np.diff(bounds)
    tmin = int(time.min())
    row_bits = int(lengths.max() - 1).bit_length()
    time_bits = (int(time.max()) - tmin).bit_length()
    user_bits = (int(user[-1]) - int(user[0])).bit_length()
    if row_bits + time_bits + user_bits > 63:
        return None
    first = np.repeat(bounds[:-1], lengths)  # each row's user's first position
    key = np.arange(n, dtype=np.int64)
    key -= first  # the row's place among its user's rows (they are in input order)
    key |= np.subtract(time, tmin, dtype=np.int64) << row_bits
    key |= np.subtract(user, user[0], dtype=np.int64) << (row_bits + time_bits)
    key.sort()
    key &= (1 << row_bits) - 1
    key += first
    return key


def group_rows_by_user(user: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` (row indices) grouped by user, each user's rows kept in their order, when their users
    span at most 65,536 codes (one counting sort, numpy's radix sort of 16-bit keys); else as given.

    >>> group_rows_by_user(np.array([7, 5, 7, 5, 6]), np.array([0, 1, 2, 3, 4])).tolist()
    [1, 3, 4, 0, 2]
    """
    if len(rows) < 2:
        return rows
    u = user[rows]
    lo, hi = int(u.min()), int(u.max())
    if hi - lo >= 1 << 16:
        return rows
    u -= u.dtype.type(lo)
    return rows[np.argsort(u.astype(np.uint16), kind="stable")]


#: numpy 1.25+ adds up ``np.add.at`` with integer indices in one fast loop (no temporaries).
_FAST_ADD_AT = np.lib.NumpyVersion(np.__version__) >= "1.25.0"


#: Up to this many entries, :func:`code_counts` counts with ``np.bincount`` a cache-sized chunk at a
#: time (each chunk's table is tiny): faster than ``np.add.at`` for a column of few categories.
_SMALL_TABLE = 1 << 12
_SMALL_CHUNK = 1 << 16
#: ... and up to this many entries (3 values and the missing count) by comparisons (:func:`_small_counts`).
_FEW = 4


def code_counts(codes: np.ndarray, size: int = 0, *, missing: bool = False) -> np.ndarray:
    """``np.bincount(codes, minlength=size)`` as int64, without a temporary as large as ``codes``;
    with ``missing``, code -1 (a missing value) is allowed too and counted in one more, last entry
    (the entry ``table[-1]`` of a lookup table gives code -1).

    ``np.bincount`` copies its codes to intp first (all of them, or each chunk: a fresh array and
    a fresh count table a chunk, whose pages are what such a pass pays for most: 0.4-0.5 s for 25M
    codes of 162,541 users); ``np.add.at`` on one table counts them in place, 2-3x faster (numpy
    1.25+; older numpy counts a chunk at a time through one reused intp buffer), and counts code -1
    in the last entry as Python indexing does. A table of at most ``_SMALL_TABLE`` entries (a few
    categories) is counted over chunks of 65,536 codes instead (:func:`_small_counts`): each
    chunk's copy and table stay in the CPU's cache, ~1.4x faster than ``np.add.at`` for 25M codes of
    200 values. Codes must not be negative (below -1 with ``missing``): ValueError, as ``np.bincount``.

    >>> code_counts(np.array([2, 0, 2], dtype=np.int32), 4).tolist()
    [1, 0, 2, 0]
    >>> code_counts(np.array([2, -1, 0, 2], dtype=np.int32), 3, missing=True).tolist()  # last: missing
    [1, 0, 2, 1]
    """
    codes = np.asarray(codes)
    extra = 1 if missing else 0
    msg = "code_counts: codes must not be negative" + (" (-1 for missing)" if missing else "")
    if len(codes) == 0:
        return np.zeros(max(int(size), 0) + extra, dtype=np.int64)
    if 0 < int(size) and int(size) + extra <= _SMALL_TABLE:
        return _small_counts(codes, int(size), missing, msg)
    if int(codes.min()) < -extra:
        raise ValueError(msg)
    size = max(int(size), int(codes.max()) + 1)
    out = np.zeros(size + extra, dtype=np.int64)
    if _FAST_ADD_AT:
        np.add.at(out, codes, 1)  # (with ``missing``: code -1 lands in out[-1], past every code)
        return out
    buffer = np.empty(min(_CHUNK, len(codes)), dtype=np.intp)
    for a in range(0, len(codes), _CHUNK):
        part = buffer[: len(codes[a : a + _CHUNK])]
        part[...] = codes[a : a + _CHUNK]
        if missing:
            part %= size + 1  # -1 -> size, the last entry
        out += np.bincount(part, minlength=size + extra)
    return out


def _small_counts(codes: np.ndarray, size: int, missing: bool, msg: str) -> np.ndarray:
    """:func:`code_counts` of a small table, a cache-sized chunk at a time: a table of at most
    ``_FEW`` entries (an event column's few categories) by one ``count_nonzero(part == k)`` per
    entry, whose cost does not depend on how the codes are spread (``np.bincount``'s grows with long
    runs of one code: for 3 values 0.06-0.07 s against 0.06-0.10 s on 25M codes); a larger one by
    ``np.bincount`` (with ``missing`` of the codes + 1: missing first, moved last at the end). No
    pass of its own checks
    the codes: a chunk whose comparisons do not add up to its length is counted by ``np.bincount``,
    which refuses a negative code, and a code past ``size`` lengthens the count."""
    out = np.zeros(size + missing, dtype=np.int64)
    few = np.arange(-1 if missing else 0, size) if len(out) <= _FEW else None
    # codes + 1 in a type that holds them (int8's 127 + 1 or uint8's 255 + 1 would wrap around)
    wide = np.int64 if codes.dtype.itemsize >= 4 else np.int32
    shifted = np.empty(min(_SMALL_CHUNK, len(codes)), dtype=wide) if missing else None
    for a in range(0, len(codes), _SMALL_CHUNK):
        part = codes[a : a + _SMALL_CHUNK]
        if few is not None:
            counted = np.array([np.count_nonzero(part == k) for k in few], dtype=np.int64)
            if int(counted.sum()) == len(part):  # every code one of the table's
                out[: len(counted)] += counted
                continue
        if shifted is not None:
            part = np.add(part, 1, out=shifted[: len(part)], dtype=shifted.dtype)
        try:
            counted = np.bincount(part, minlength=len(out))
        except ValueError:  # a negative code
            raise ValueError(msg) from None
        if len(counted) > len(out):  # a code past size: the count grows, as np.bincount's
            out = np.concatenate([out, np.zeros(len(counted) - len(out), dtype=np.int64)])
            few = None
        out += counted
    return np.roll(out, -1) if missing else out


def csr_offsets(counts: np.ndarray) -> np.ndarray:
    """Offsets (int64, length U+1) of a CSR layout whose row ``u`` holds ``counts[u]`` values.

    >>> csr_offsets(np.array([2, 0, 3]))
    array([0, 2, 2, 5])
    """
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def tie_mask(offsets: np.ndarray, time_sorted: np.ndarray) -> np.ndarray:
    """True for each interaction that shares its timestamp with another one of the same user.

    ``time_sorted`` is laid out by ``offsets`` (rows = users, each sorted by time).

    >>> tie_mask(np.array([0, 3, 5]), np.array([1, 1, 2, 2, 2]))
    array([ True,  True, False,  True,  True])
    """
    eq = _equal_neighbours(offsets, time_sorted)
    mask = np.zeros(len(time_sorted), dtype=bool)
    mask[1:] |= eq
    mask[:-1] |= eq
    return mask


def tie_stats(offsets: np.ndarray, time_sorted: np.ndarray) -> tuple[int, int]:
    """(interactions in ties, tie groups): a group is a maximal run of one user's equal timestamps.

    >>> tie_stats(np.array([0, 3, 6]), np.array([1, 1, 2, 2, 2, 3]))
    (4, 2)
    """
    eq = _equal_neighbours(offsets, time_sorted)
    if len(eq) == 0:
        return 0, 0
    # a group of k equal timestamps is a run of k - 1 True in eq: groups = runs, in ties = sum of k
    groups = int(eq[0]) + int(np.count_nonzero(eq[1:] > eq[:-1]))
    return int(np.count_nonzero(eq)) + groups, groups


def _equal_neighbours(offsets: np.ndarray, time_sorted: np.ndarray) -> np.ndarray:
    """eq[k] is True when positions k and k+1 hold the same user and the same timestamp."""
    n = len(time_sorted)
    eq = time_sorted[1:] == time_sorted[:-1]
    starts = np.asarray(offsets[1:-1])
    starts = starts[(starts > 0) & (starts < n)]
    eq[starts - 1] = False  # a pair (k-1, k) is inside one user unless k starts a row
    return eq


def padded(
    values: np.ndarray,
    offsets: np.ndarray,
    max_len: int,
    side: Literal["left", "right"] = "left",
    pad: int = 0,
) -> np.ndarray:
    """A [U, max_len] matrix of each row's ``max_len`` most recent values, padded with ``pad``.

    ``side="left"`` puts the padding first and the latest item in the last column (SASRec, Caser);
    ``side="right"`` starts every row in column 0.

    >>> padded(np.array([1, 2, 3, 4], dtype=np.int32), np.array([0, 3, 4]), 2)
    array([[2, 3],
           [0, 4]], dtype=int32)
    >>> padded(np.array([1, 2, 3], dtype=np.int32), np.array([0, 1, 3]), 3, side="right")
    array([[1, 0, 0],
           [2, 3, 0]], dtype=int32)
    """
    if max_len < 1:
        msg = f"max_len must be at least 1, not {max_len}"
        raise ValueError(msg)
    if side not in ("left", "right"):
        msg = f"side must be 'left' or 'right', not {side!r}"
        raise ValueError(msg)
    offsets = np.asarray(offsets, dtype=np.int64)
    num_rows = len(offsets) - 1
    lengths = np.diff(offsets)
    k = np.minimum(lengths, max_len)
    out = np.full((num_rows, max_len), pad, dtype=values.dtype)
    total = int(k.sum())
    if total == 0:
        return out
    rows = np.repeat(np.arange(num_rows), k)
    within = np.arange(total) - np.repeat(np.cumsum(k) - k, k)
    src = np.repeat(offsets[1:] - k, k) + within
    cols = within + (np.repeat(max_len - k, k) if side == "left" else 0)
    out[rows, cols] = values[src]
    return out


#: Interactions per row group of sequences.parquet (whole users; a user longer than this is one group).
ROW_GROUP_INTERACTIONS = 1 << 21


def sequence_parts(offsets: np.ndarray, per_part: int | None = None) -> np.ndarray:
    """User bounds ``b`` of the row groups: group ``k`` holds users ``b[k] <= u < b[k+1]``, about
    ``per_part`` interactions each, cut only between users. Depends on the offsets alone.

    >>> sequence_parts(np.array([0, 2, 5, 6, 10]), per_part=3).tolist()
    [0, 2, 3, 4]
    >>> sequence_parts(np.array([0]), per_part=3).tolist()
    [0, 0]
    """
    per_part = ROW_GROUP_INTERACTIONS if per_part is None else per_part
    offsets = np.asarray(offsets, dtype=np.int64)
    users, n = len(offsets) - 1, int(offsets[-1])
    cuts = np.searchsorted(offsets, np.arange(per_part, n, per_part, dtype=np.int64), side="left")
    if users == 0:
        return np.zeros(2, dtype=np.int64)  # one empty group: the file still gets its schema
    return sorted_unique(np.concatenate([[0], cuts[(cuts > 0) & (cuts < users)], [users]]).astype(np.int64))


#: What a code of :func:`half_step_codes` stands for: code ``k`` is the float32 rating ``k / 2``
#: (0.0, 0.5, ..., 127.0), code 255 a missing rating (NaN).
HALF_STEPS = np.append(np.arange(255, dtype=np.float32) / np.float32(2), np.float32("nan"))

_HALF_CHUNK = 1 << 16  # (each chunk's temporaries stay in the CPU's cache)


def half_step_codes(ratings: np.ndarray) -> np.ndarray | None:
    """float32 ``ratings`` as one byte each (uint8 codes into :data:`HALF_STEPS`), when every rating
    is a multiple of 0.5 from 0 to 127 or missing (NaN); else None.

    A sort carries these 1-byte codes instead of the 4-byte ratings (MovieLens' half stars, 1-5
    stars, 0/1 clicks): a quarter of the bytes to gather and to hold, twice (the rows in input
    order and sorted). :func:`from_half_steps` gives the same float32 ratings back, bit for bit: a
    chunk is only coded if its codes give back its exact bits (so ``-0.0``, NaNs other than
    numpy's, ``0.25`` or ``200.0`` anywhere give None).

    >>> half_step_codes(np.array([4.5, 1.0, np.nan, 0.0], dtype=np.float32)).tolist()
    [9, 2, 255, 0]
    >>> half_step_codes(np.array([4.5, 0.25], dtype=np.float32)) is None
    True
    """
    ratings = np.asarray(ratings)
    if ratings.dtype != np.float32:
        return None
    bits = ratings.view(np.uint32)
    table_bits = HALF_STEPS.view(np.uint32)
    out = np.empty(len(ratings), dtype=np.uint8)
    with np.errstate(invalid="ignore", over="ignore"):  # (NaN and huge ratings: no code gives them back)
        for a in range(0, len(ratings), _HALF_CHUNK):
            r = ratings[a : a + _HALF_CHUNK]
            doubled = np.clip(r * np.float32(2), 0, 254)  # NaN stays NaN: code 255 below
            codes = np.where(np.isnan(doubled), 255, doubled).astype(np.uint8)
            if not np.array_equal(table_bits[codes], bits[a : a + _HALF_CHUNK]):
                return None
            out[a : a + _HALF_CHUNK] = codes
    return out


def from_half_steps(codes: np.ndarray) -> np.ndarray:
    """The float32 ratings of :func:`half_step_codes`'s ``codes`` (:func:`~seqprep.kernels.features.take_chunked`).

    >>> from_half_steps(np.array([9, 2, 255], dtype=np.uint8)).tolist()
    [4.5, 1.0, nan]
    """
    return take_chunked(HALF_STEPS, codes)


def time_offsets(time: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Integer timestamps as ``(time - base, base)``: uint32 offsets from the smallest, when every
    one is within 2**32 - 1 of it (epoch seconds over 136 years; not nanoseconds); else None.

    A sort orders the offsets as it orders the timestamps (ties are ties) and carries half the
    bytes; :func:`from_time_offsets` gives the int64 timestamps back.

    >>> offsets, base = time_offsets(np.array([1_600_000_009, 1_600_000_000], dtype=np.int64))
    >>> offsets.tolist(), base
    ([9, 0], 1600000000)
    >>> time_offsets(np.array([0, 2**32], dtype=np.int64)) is None
    True
    """
    time = np.asarray(time)
    if len(time) == 0 or time.dtype != np.int64:
        return None
    base, top = int(time.min()), int(time.max())
    if top - base > np.iinfo(np.uint32).max:
        return None
    out = np.empty(len(time), dtype=np.uint32)
    for a in range(0, len(time), _CHUNK):  # (exact: every difference fits in uint32)
        np.subtract(time[a : a + _CHUNK], np.int64(base), out=out[a : a + _CHUNK], casting="unsafe")
    return out, base


def from_time_offsets(offsets: np.ndarray, base: int) -> np.ndarray:
    """The int64 timestamps of :func:`time_offsets`'s ``offsets`` from ``base``.

    >>> from_time_offsets(np.array([9, 0], dtype=np.uint32), 1_600_000_000).tolist()
    [1600000009, 1600000000]
    """
    out = np.empty(len(offsets), dtype=np.int64)
    for a in range(0, len(offsets), _CHUNK):
        np.add(offsets[a : a + _CHUNK], np.int64(base), out=out[a : a + _CHUNK])
    return out
