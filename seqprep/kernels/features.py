"""Feature kernels: derived time features of CSR sequences, and token lists split from text.

Every kernel takes the time-ordered CSR sequences (``offsets`` and the per-interaction
``timestamps``) or a text column and returns new arrays aligned with them; no Python loop over users.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["previous_gap", "log2_bucket", "hour_of_day", "day_of_week", "personal_interval", "split_tokens", "take_chunked"]

_DAY_NS = 86_400 * 10**9
_HOUR_NS = 3_600 * 10**9


def _first_of_user(offsets: np.ndarray) -> np.ndarray:
    """Positions that start a user's sequence (empty users left out)."""
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    return starts[starts < np.asarray(offsets[1:], dtype=np.int64)]


def previous_gap(offsets: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Time since the same user's previous interaction (0 for a user's first), in the timestamps' unit.

    >>> previous_gap(np.array([0, 3, 5]), np.array([10, 12, 20, 5, 5]))
    array([0, 2, 8, 0, 0])
    """
    ts = np.asarray(timestamps)
    gap = np.zeros(len(ts), dtype=ts.dtype)
    if len(ts) > 1:
        np.subtract(ts[1:], ts[:-1], out=gap[1:])
        gap[_first_of_user(offsets)] = 0
    return gap


def log2_bucket(gap: np.ndarray) -> np.ndarray:
    """``0`` for a gap of 0 (or less), else ``floor(log2(gap)) + 1``: 1 = [1, 2), 2 = [2, 4), ...

    >>> log2_bucket(np.array([0, 1, 2, 3, 4, 1000, 0.5]))
    array([ 0,  1,  2,  2,  3, 10,  0], dtype=int32)
    """
    g = np.asarray(gap, dtype=np.float64)
    out = np.zeros(len(g), dtype=np.int32)
    pos = g >= 1
    out[pos] = np.floor(np.log2(g[pos])).astype(np.int32) + 1
    return out


def _floor_units(timestamps: np.ndarray, ns_per_step: int, unit_ns: int) -> np.ndarray:
    """How many whole ``unit_ns`` (an hour, a day) since the epoch each timestamp is (floored)."""
    ts = np.asarray(timestamps)
    if ts.dtype.kind == "f":
        return np.floor(ts * (ns_per_step / unit_ns)).astype(np.int64)
    if unit_ns % ns_per_step == 0:  # whole steps per unit: exact integer division
        return np.floor_divide(ts.astype(np.int64), unit_ns // ns_per_step)
    return np.floor_divide(ts.astype(np.int64) * ns_per_step, unit_ns)


def hour_of_day(timestamps: np.ndarray, ns_per_step: int) -> np.ndarray:
    """The UTC hour (0..23) of each timestamp; ``ns_per_step``: nanoseconds per step of its unit.

    >>> hour_of_day(np.array([0, 3600 * 25 - 1, -1]), 10**9)
    array([ 0,  0, 23], dtype=int32)
    """
    return np.mod(_floor_units(timestamps, ns_per_step, _HOUR_NS), 24).astype(np.int32)


def day_of_week(timestamps: np.ndarray, ns_per_step: int) -> np.ndarray:
    """The UTC weekday of each timestamp, Monday = 0 .. Sunday = 6 (1970-01-01 was a Thursday).

    >>> day_of_week(np.array([0, 86_400 * 4, -1]), 10**9)
    array([3, 0, 2], dtype=int32)
    """
    return np.mod(_floor_units(timestamps, ns_per_step, _DAY_NS) + 3, 7).astype(np.int32)


def personal_interval(offsets: np.ndarray, timestamps: np.ndarray, k: int) -> np.ndarray:
    """TiSASRec's personalised time interval to the previous interaction, clipped at ``k``.

    Per user (as TiSASRec's ``cleanAndsort``): the scale is the smallest non-zero gap between
    consecutive interactions (1 when there is none), each timestamp becomes
    ``round((t - the user's first t) / scale) + 1`` (round half to even, as Python's ``round``), and
    the interval of an interaction is its position minus the previous one's, at most ``k``; a user's
    first interaction gets 0.

    >>> personal_interval(np.array([0, 4, 6]), np.array([10, 12, 12, 30, 7, 7]), 5)
    array([0, 1, 0, 5, 0, 0])
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    user = np.repeat(np.arange(len(lengths)), lengths)
    gap = previous_gap(offsets, ts)
    first = np.zeros(n, dtype=bool)
    first[_first_of_user(offsets)] = True
    nonzero = (gap != 0) & ~first
    scale = np.full(len(lengths), np.inf)
    np.minimum.at(scale, user[nonzero], gap[nonzero])
    scale[~np.isfinite(scale)] = 1.0
    start = ts[offsets[:-1][lengths > 0]]
    base = np.repeat(start, lengths[lengths > 0])
    pos = np.rint((ts - base) / scale[user]).astype(np.int64) + 1
    interval = np.zeros(n, dtype=np.int64)
    interval[1:] = pos[1:] - pos[:-1]
    interval[first] = 0
    return np.minimum(interval, k)


def split_tokens(text: pa.Array, sep: str) -> tuple[np.ndarray, pa.Array, int]:
    """Several values in one field (``a|b|c``): -> (list offsets per row, the tokens, empty tokens).

    Tokens are trimmed of surrounding spaces; empty tokens (``a||b``, a trailing ``|``) are left out
    and counted; a missing field is an empty list.

    >>> offsets, tokens, empty = split_tokens(pa.array(["a|b", None, "c||", " d "]), "|")
    >>> offsets.tolist(), tokens.to_pylist(), empty
    ([0, 2, 2, 3, 4], ['a', 'b', 'c', 'd'], 2)
    """
    lists = pc.split_pattern(pc.fill_null(text.cast(pa.string()), ""), pattern=sep)
    flat = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    row = np.repeat(np.arange(len(text)), lengths)
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    missing = np.asarray(text.is_null().to_numpy(zero_copy_only=False))
    empty = int((~keep).sum()) - int(missing.sum())  # a missing field split into one "" token: not counted
    counts = np.bincount(row[keep], minlength=len(text))
    offsets = np.zeros(len(text) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, flat.filter(pa.array(keep)), empty


#: Codes a chunk of :func:`take_chunked`: the intp copy numpy makes of int32 codes, and the
#: result's chunk, stay in the CPU's cache.
_CHUNK = 1 << 16


def take_chunked(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]`` (code -1 takes the table's last entry), a chunk of codes at a time, by
    ``np.take`` into the result: the same array as indexing, ~1.5-2x faster (for 25M codes with few
    missing, for tables of 3 to 162,541 entries), and no intp copy of all the codes.

    >>> take_chunked(np.array([5, 6, 0], dtype=np.uint8), np.array([1, -1, 0], dtype=np.int32)).tolist()
    [6, 0, 5]
    """
    out = np.empty(len(codes), dtype=table.dtype)
    for a in range(0, len(codes), _CHUNK):
        np.take(table, codes[a : a + _CHUNK], out=out[a : a + _CHUNK])
    return out
