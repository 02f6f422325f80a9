"""Property tests for the pure kernels against plain-Python references."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprep.kernels import csr_offsets, fit_order, padded, remap_table, tie_mask, tie_stats, time_order
from seqprep.kernels import sequences as sequences_kernels
from seqprep.kernels.sequences import group_rows_by_user, grouped_time_order, part_time_order, rows_in_time_order, user_range_rows
from seqprep.kernels.vocab import lookup

users_times = st.lists(
    st.tuples(st.integers(0, 5), st.integers(-3, 3)), min_size=1, max_size=60
)


@given(users_times)
def test_time_order_is_the_stable_sort_by_user_then_time(rows):
    user = np.array([u for u, _ in rows], dtype=np.int32)
    time = np.array([t for _, t in rows], dtype=np.int64)
    expected = sorted(range(len(rows)), key=lambda k: (rows[k][0], rows[k][1]))  # Python's sort is stable
    assert time_order(user, time).tolist() == expected


@given(users_times)
def test_time_order_float_and_wide_int_paths_agree(rows):
    user = np.array([u for u, _ in rows], dtype=np.int32)
    time = np.array([t for _, t in rows], dtype=np.int64)
    wide = time * (2**58)  # range too wide for the packed key: lexsort path
    expected = time_order(user, time).tolist()
    assert time_order(user, wide).tolist() == expected
    assert time_order(user, time.astype(np.float64) / 4).tolist() == expected


@given(users_times, st.integers(2, 5), st.booleans())
def test_time_order_on_threads_is_the_same_permutation(rows, threads, grouped):
    """The parallel path (rows split into user ranges, one per thread or many small ones, sorted at
    once) = one stable sort, for any thread count, for rows grouped by user or not, on the
    packed-key and the lexsort paths."""
    if grouped:
        rows = sorted(rows, key=lambda r: r[0])  # grouped by user, times still in any order
    user = np.array([u for u, _ in rows], dtype=np.int32)
    time = np.array([t for _, t in rows], dtype=np.int64)
    expected = sorted(range(len(rows)), key=lambda k: (rows[k][0], rows[k][1]))
    for part_rows in (1 << 21, 3):  # one range per thread, or many small ones
        with (
            mock.patch.object(sequences_kernels, "_PARALLEL_MIN_ROWS", 0),
            mock.patch.object(sequences_kernels, "_PART_ROWS", part_rows),
        ):
            assert time_order(user, time, threads=threads).tolist() == expected
            assert time_order(user, time * (2**58), threads=threads).tolist() == expected
            assert time_order(user, time.astype(np.float64) / 4, threads=threads).tolist() == expected


def test_time_order_on_threads_large_input():
    rng = np.random.default_rng(5)
    user = rng.integers(0, 300, 50_000).astype(np.int32)
    time = rng.integers(0, 40, 50_000)
    expected = np.lexsort((time, user))
    for u, t in ((user, time), (np.sort(user), time)):
        expected = np.lexsort((t, u))
        for threads in (2, 3, 8):
            assert np.array_equal(time_order(u, t, threads=threads), expected)


@given(st.lists(st.integers(0, 6), min_size=0, max_size=40), st.data())
def test_group_rows_by_user_is_a_stable_grouping(user, data):
    user = np.array(user, dtype=np.int32)
    rows = np.array(data.draw(st.permutations(range(len(user)))), dtype=np.int64)
    got = group_rows_by_user(user, rows)
    assert sorted(got.tolist()) == sorted(rows.tolist())
    # grouped by user (in code order), each user's rows in the order they were given
    expected = sorted(range(len(rows)), key=lambda k: user[rows[k]])
    assert got.tolist() == rows[expected].tolist()


@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(-3, 3)), min_size=1, max_size=80),
    st.sampled_from([1, 10**6, 2**58]),
)
def test_grouped_time_order_is_the_stable_sort(rows, scale):
    """Rows grouped by user, times with ties (and ranges too wide for the packed key): the packed
    unique-key sort gives the stable (user, time) order, or declines (None)."""
    rows = sorted(rows, key=lambda r: r[0])  # grouped by user, times in any order within a user
    user = np.array([u for u, _ in rows], dtype=np.int32)
    time = np.array([t for _, t in rows], dtype=np.int64) * scale
    got = grouped_time_order(user, time)
    if got is None:
        assert scale == 2**58 and len(set(time.tolist())) > 1
    else:
        assert got.tolist() == time_order(user, time).tolist()


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(-3, 3)), min_size=1, max_size=60), st.data())
def test_rows_in_time_order_of_any_rows(rows, data):
    """A slice or scattered row indices (as user_range_rows gives them): the stable order of those rows."""
    user = np.array([u for u, _ in rows], dtype=np.int32)
    time = np.array([t for _, t in rows], dtype=np.int64)
    picked = np.array(sorted(data.draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))), dtype=np.int64)
    expected = picked[time_order(user[picked], time[picked])]
    assert rows_in_time_order(user, time, picked).tolist() == expected.tolist()
    whole = time_order(user, time)
    assert rows_in_time_order(user, time, slice(0, len(rows))).tolist() == whole.tolist()


@given(st.lists(st.integers(0, 40), min_size=2, max_size=300), st.integers(1, 6))
def test_user_range_rows_are_each_ranges_rows_in_input_order(users, parts):
    """Scattered rows: each range's rows in input order, as int32 (held through the whole sort);
    grouped rows: slices. Either way the ranges together are every row once, then in time order by
    rows_in_time_order as the stable sort of the whole gives."""
    user = np.array(users, dtype=np.int32)
    n_users = int(user.max()) + 1
    bounds = np.unique(np.linspace(0, n_users, parts + 1).astype(np.int64))
    got = user_range_rows(user, bounds)
    assert len(got) == len(bounds) - 1
    rows = np.arange(len(user))
    for k, r in enumerate(got):
        want = rows[(user >= bounds[k]) & (user < bounds[k + 1])]
        if isinstance(r, slice):
            assert (np.diff(user) >= 0).all()
            assert rows[r].tolist() == want.tolist()
        else:
            assert r.dtype == np.int32
            assert r.tolist() == want.tolist()
    time = (user * 7) % 5
    whole = np.concatenate([rows_in_time_order(user, time, r) for r in got])
    assert whole.tolist() == time_order(user, time).tolist()


def test_group_rows_by_user_leaves_a_wide_user_span_alone():
    user = np.array([0, 70_000, 0, 5], dtype=np.int64)
    rows = np.array([1, 0, 3, 2])
    assert group_rows_by_user(user, rows).tolist() == [1, 0, 3, 2]
    assert group_rows_by_user(user - 10**12, np.array([3, 2])).tolist() == [2, 3]  # any codes: only the span counts


def test_time_order_keeps_input_order_on_ties():
    user = np.zeros(5, dtype=np.int32)
    time = np.array([7, 7, 3, 7, 3])
    assert time_order(user, time).tolist() == [2, 4, 0, 1, 3]


@settings(deadline=None)  # the first call imports pandas (pyarrow's first numpy conversion)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=80), st.sampled_from(["frequency", "first-seen", "id"]))
def test_fit_order_matches_reference(codes_list, order):
    ids_values = [30, 10, 20, 70, 60, 50, 40]
    ids = pa.array(ids_values, pa.int64())
    codes = np.array(codes_list, dtype=np.int32)
    chosen, counts = fit_order(codes, ids, order)
    present = sorted(set(codes_list))
    cnt = {c: codes_list.count(c) for c in present}
    if order == "first-seen":
        ref = list(dict.fromkeys(codes_list))
    elif order == "id":
        ref = sorted(present, key=lambda c: ids_values[c])
    else:
        ref = sorted(present, key=lambda c: (-cnt[c], ids_values[c]))
    assert chosen.tolist() == ref
    assert counts.tolist() == [cnt[c] for c in ref]


def test_fit_order_text_ids_sort_bytewise():
    ids = pa.array(["b", "B", "a", "10", "9"])
    codes = np.arange(5, dtype=np.int32)
    chosen, _ = fit_order(codes, ids, "id")
    assert [ids[int(c)].as_py() for c in chosen] == ["10", "9", "B", "a", "b"]


def test_remap_table_numbers_from_start():
    t = remap_table(np.array([3, 1]), 5, start=1)
    assert t.tolist() == [-1, 2, -1, 1, -1]


lengths_st = st.lists(st.integers(0, 7), min_size=1, max_size=12)


@given(lengths_st, st.integers(1, 9), st.sampled_from(["left", "right"]))
def test_padded_holds_the_most_recent_items(lengths, max_len, side):
    offsets = csr_offsets(np.array(lengths))
    values = np.arange(1, offsets[-1] + 1, dtype=np.int32)
    out = padded(values, offsets, max_len, side=side)
    assert out.shape == (len(lengths), max_len) and out.dtype == np.int32
    for u, n in enumerate(lengths):
        row = values[offsets[u] : offsets[u + 1]].tolist()[-max_len:]
        pad = [0] * (max_len - len(row))
        assert out[u].tolist() == (pad + row if side == "left" else row + pad)


def test_padded_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_len"):
        padded(np.array([1]), np.array([0, 1]), 0)
    with pytest.raises(ValueError, match="side"):
        padded(np.array([1]), np.array([0, 1]), 2, side="middle")  # type: ignore[arg-type]


@given(lengths_st, st.data())
def test_tie_mask_and_stats_match_reference(lengths, data):
    offsets = csr_offsets(np.array(lengths))
    n = int(offsets[-1])
    times = np.array(sorted(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))), dtype=np.int64)
    # sort inside each user only
    for u in range(len(lengths)):
        times[offsets[u] : offsets[u + 1]] = np.sort(times[offsets[u] : offsets[u + 1]])
    ref_mask = []
    groups = 0
    for u in range(len(lengths)):
        seq = times[offsets[u] : offsets[u + 1]].tolist()
        ref_mask += [seq.count(t) > 1 for t in seq]
        groups += sum(1 for t in set(seq) if seq.count(t) > 1)
    assert tie_mask(offsets, times).tolist() == ref_mask
    assert tie_stats(offsets, times) == (sum(ref_mask), groups)


@settings(max_examples=30)
@given(st.lists(st.integers(0, 5), max_size=10))
def test_csr_offsets(counts):
    off = csr_offsets(np.array(counts, dtype=np.int64))
    assert off[0] == 0 and np.diff(off).tolist() == counts


@given(
    st.lists(st.integers(0, 7), min_size=1, max_size=60),
    st.sampled_from(["frequency", "first-seen", "id"]),
    st.booleans(),
)
def test_order_counted_from_count_tables_equals_fit_order(codes, order, text_ids):
    """What a distributed engine computes (counts, first position per id) orders exactly like fit_order."""
    from seqprep.kernels import order_counted

    raw = [f"x{7 - k}" for k in range(8)] if text_ids else [50 - 3 * k for k in range(8)]
    ids = pa.array(raw)
    codes_np = np.array(codes, dtype=np.int32)
    counts = np.bincount(codes_np, minlength=8)
    # the first input position of each id; absent ids get any value (they must not appear)
    first = np.full(8, 10**9, dtype=np.int64)
    for pos in range(len(codes) - 1, -1, -1):
        first[codes[pos]] = pos * 5 + 3  # any increasing map of positions orders the same
    got = order_counted(counts, ids, order, first_seen=first)
    want = fit_order(codes_np, ids, order)
    assert got[0].tolist() == want[0].tolist()
    assert got[1].tolist() == want[1].tolist()
    assert sorted(got[0].tolist()) == sorted(set(codes))  # exactly the present ids, each once


@given(st.lists(st.integers(0, 9), max_size=60), st.integers(1, 7))
def test_lookup_is_fancy_indexing_chunk_by_chunk(codes, chunk):
    table = np.arange(100, 110, dtype=np.int32)
    codes = np.array(codes, dtype=np.int32)
    got = lookup(table, codes, chunk=chunk)
    assert got.dtype == table.dtype
    assert got.tolist() == table[codes].tolist()
    want = table[codes].tolist()
    same = codes.copy()
    assert lookup(table, same, chunk=chunk, in_place=True) is same and same.tolist() == want  # over the codes
    wide = codes.astype(np.int64)  # another type than the table's: a new array, the codes untouched
    out = lookup(table, wide, chunk=chunk, in_place=True)
    assert out is not wide and out.tolist() == want and wide.tolist() == codes.tolist()
    frozen = codes.copy()
    frozen.flags.writeable = False  # read-only codes (a view of someone's buffer) are never written
    assert lookup(table, frozen, chunk=chunk, in_place=True) is not frozen and frozen.tolist() == codes.tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 14)), max_size=80), st.integers(1, 3))
def test_user_item_counts_on_threads_are_the_bincounts(rows, threads):
    """The two count tables, on the calling thread or with the user count on a second one (the
    row threshold lowered so that small inputs take that path too), are ``np.bincount``'s."""
    from seqprep.kernels import vocab as vocab_kernels

    user = np.array([u for u, _ in rows], dtype=np.int32)
    item = np.array([i for _, i in rows], dtype=np.int32)
    for rows_on_thread in (1 << 20, 1):
        vocab_kernels.PAIR_THREAD_ROWS = rows_on_thread
        try:
            users, items = vocab_kernels.user_item_counts(user, 10, item, 15, threads=threads)
        finally:
            vocab_kernels.PAIR_THREAD_ROWS = 1 << 20
        assert users.tolist() == np.bincount(user, minlength=10).tolist()
        assert items.tolist() == np.bincount(item, minlength=15).tolist()


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), max_size=80),
    spread=st.sampled_from([1, 1 << 17]),  # users 12 apart, or spanning more than 65,536 indices
    base=st.integers(0, 1000),
    floats=st.booleans(),
)
def test_part_time_order_is_the_stable_user_time_order(rows, spread, base, floats):
    """One user range's rows in input order -> the stable (user, time) order (ties: input order),
    with the counting-sort grouping or without it (users spread wide), integer or float times."""
    user = np.array([base + u * spread for u, _ in rows], dtype=np.int32)
    time = np.array([t for _, t in rows], dtype=np.float64 if floats else np.uint32)
    got = part_time_order(user, time)
    want = np.lexsort((np.arange(len(rows)), time, user))
    assert got.tolist() == want.tolist()
