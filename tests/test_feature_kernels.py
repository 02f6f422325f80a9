"""Feature kernels against plain-Python references, on random CSR sequences."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprep.kernels.features import (
    day_of_week,
    hour_of_day,
    log2_bucket,
    personal_interval,
    previous_gap,
    split_tokens,
)

lengths = st.lists(st.integers(0, 6), min_size=0, max_size=8)


def _seqs(draw_lengths, times):
    offsets = np.concatenate([[0], np.cumsum(draw_lengths)]).astype(np.int64)
    ts = np.sort(np.array(times[: offsets[-1]], dtype=np.int64).reshape(-1)) if offsets[-1] else np.zeros(0, np.int64)
    # each user's times non-decreasing, as the sort leaves them
    for u in range(len(draw_lengths)):
        ts[offsets[u] : offsets[u + 1]] = np.sort(ts[offsets[u] : offsets[u + 1]])
    return offsets, ts


@settings(max_examples=200, deadline=None)
@given(lengths, st.lists(st.integers(-(10**6), 10**6), min_size=60, max_size=60), st.integers(1, 50))
def test_previous_gap_and_personal_interval(ls, times, k):
    offsets, ts = _seqs(ls, times)
    gap = previous_gap(offsets, ts)
    interval = personal_interval(offsets, ts, k)
    for u in range(len(ls)):
        seq = ts[offsets[u] : offsets[u + 1]].tolist()
        want_gap = [0] + [b - a for a, b in zip(seq, seq[1:])]
        assert gap[offsets[u] : offsets[u + 1]].tolist() == want_gap[: len(seq)]
        diffs = [b - a for a, b in zip(seq, seq[1:]) if b - a != 0]
        scale = min(diffs) if diffs else 1
        pos = [int(round((t - seq[0]) / scale)) + 1 for t in seq]  # TiSASRec's cleanAndsort
        want = [0] + [min(b - a, k) for a, b in zip(pos, pos[1:])]
        assert interval[offsets[u] : offsets[u + 1]].tolist() == want[: len(seq)]


@given(st.lists(st.integers(-(2**33), 2**33), max_size=50), st.sampled_from([10**9, 10**6, 10**3, 1]))
def test_hour_and_weekday_match_datetime(values, ns):
    """Against Python's calendar (years 1698..2242 for seconds), floored like datetime does."""
    ts = np.array(values, dtype=np.int64)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    want = [epoch + dt.timedelta(microseconds=(v * ns) // 1000) for v in values]
    assert hour_of_day(ts, ns).tolist() == [w.hour for w in want]
    assert day_of_week(ts, ns).tolist() == [w.weekday() for w in want]


@given(st.lists(st.floats(0, 1e12, allow_nan=False), max_size=50))
def test_log2_bucket(values):
    got = log2_bucket(np.array(values)).tolist()
    assert got == [0 if v < 1 else int(math.floor(math.log2(v))) + 1 for v in values]


@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", " c", "", "dd "]), max_size=4).map("|".join)), max_size=20))
def test_split_tokens(fields):
    offsets, tokens, empty = split_tokens(pa.array(fields, pa.string()), "|")
    want, want_empty = [], 0
    for f in fields:
        parts = [] if f is None else [p.strip() for p in f.split("|")]
        want.append([p for p in parts if p])
        want_empty += sum(1 for p in parts if not p)
    got = [tokens.slice(a, b - a).to_pylist() for a, b in zip(offsets[:-1], offsets[1:])]
    assert got == want and empty == want_empty


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([np.uint8, np.uint16, np.int32]).flatmap(
        lambda dtype: st.tuples(
            st.just(dtype),
            st.lists(st.integers(0, 200), min_size=1, max_size=12),
            st.integers(1, 9),
        )
    ),
    st.data(),
)
def test_take_chunked_is_indexing(case, data):
    """``take_chunked`` (``np.take`` a chunk of codes at a time) is ``table[codes]``: same values and
    dtype, code -1 taking the last entry, for every index type a cat feature's table has."""
    import seqprep.kernels.features as kf

    dtype, entries, chunk = case
    table = np.array(entries, dtype=dtype)
    codes = np.array(data.draw(st.lists(st.integers(-1, len(table) - 1), max_size=60)), dtype=np.int32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kf, "_CHUNK", chunk)
        got = kf.take_chunked(table, codes)
    assert got.dtype == table.dtype and got.tolist() == table[codes].tolist()
