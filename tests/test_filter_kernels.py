"""Property tests for the cleaning kernels (seqprep/kernels/filters.py) against plain-Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprep.errors import ConfigError
from seqprep.kernels.filters import dedup, kcore, kcore_counted, num_present, rating_at_least, session_ids, time_window
from seqprep.timeunits import bound_in_unit, parse_duration, parse_time

# rows of (user, item, time, rating): few distinct values, so that repeats, ties and k-core cascades occur
rows_st = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(0, 4), st.sampled_from([1.0, 2.0, 4.5, math.nan])),
    min_size=0,
    max_size=60,
)


def _cols(rows):
    user = np.array([r[0] for r in rows], dtype=np.int32)
    item = np.array([r[1] for r in rows], dtype=np.int32)
    time = np.array([r[2] for r in rows], dtype=np.int64)
    rating = np.array([r[3] for r in rows], dtype=np.float32)
    return user, item, time, rating


def _stable_time_order(rows):
    """Indices sorted by (user, time); Python's sort is stable, so ties keep input order."""
    return sorted(range(len(rows)), key=lambda k: (rows[k][0], rows[k][2]))


# ------------------------------------------------------------------------------------------------
# k-core


def _one_pass(rows, min_user, min_item):
    """SASRec's DataProcessing.py: count over all rows, keep a row when both its counts meet the bounds."""
    uc, ic = {}, {}
    for u, i, *_ in rows:
        uc[u] = uc.get(u, 0) + 1
        ic[i] = ic.get(i, 0) + 1
    return [uc[u] >= min_user and ic[i] >= min_item for u, i, *_ in rows]


def _fixpoint(rows, min_user, min_item):
    keep = [True] * len(rows)
    while True:
        kept = [r for r, k in zip(rows, keep) if k]
        once = iter(_one_pass(kept, min_user, min_item))
        new = [k and next(once) for k in keep]
        if new == keep:
            return keep
        keep = new


@settings(max_examples=200)
@given(rows_st, st.integers(0, 4), st.integers(0, 4))
def test_kcore_meets_bounds_and_is_a_fixpoint(rows, min_user, min_item):
    user, item, *_ = _cols(rows)
    keep, rounds, fixpoint = kcore(user, item, min_user=min_user, min_item=min_item)
    assert fixpoint
    assert keep.tolist() == _fixpoint(rows, min_user, min_item)
    ku, ki = user[keep], item[keep]
    if len(ku):
        uc, ic = np.bincount(ku), np.bincount(ki)
        assert (uc[uc > 0] >= min_user).all() and (ic[ic > 0] >= min_item).all()
    again, again_rounds, _ = kcore(ku, ki, min_user=min_user, min_item=min_item)
    assert again.all() and again_rounds == []  # applying the filter again removes nothing
    assert sum(r["rows_removed"] for r in rounds) == len(rows) - int(keep.sum())
    assert sum(r["users_removed"] for r in rounds) == num_present(user) - num_present(ku)
    assert sum(r["items_removed"] for r in rounds) == num_present(item) - num_present(ki)
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    assert all(r["rows_removed"] > 0 for r in rounds)


@settings(max_examples=200)
@given(rows_st, st.integers(0, 4), st.integers(0, 4))
def test_kcore_one_round_is_the_sasrec_single_pass(rows, min_user, min_item):
    user, item, *_ = _cols(rows)
    keep, rounds, fixpoint = kcore(user, item, min_user=min_user, min_item=min_item, max_rounds=1)
    assert keep.tolist() == _one_pass(rows, min_user, min_item)
    assert len(rounds) <= 1
    kept = [r for r, k in zip(rows, keep.tolist()) if k]
    assert fixpoint == all(_one_pass(kept, min_user, min_item))


def _naive_rounds(rows, counted, min_user, min_item, max_rounds):
    """The k-core rule, one round at a time, in plain Python: a round counts each user's and item's
    kept rows (degrees: the ``counted`` ones only) and drops every kept row of a user or item present
    below its bound; -> (keep, per-round (rows, users, items) removed, fixpoint)."""
    keep = [True] * len(rows)
    done = []
    while True:
        present_u = {r[0] for r, k in zip(rows, keep) if k}
        present_i = {r[1] for r, k in zip(rows, keep) if k}
        du = {u: sum(1 for r, k, c in zip(rows, keep, counted) if k and c and r[0] == u) for u in present_u}
        di = {i: sum(1 for r, k, c in zip(rows, keep, counted) if k and c and r[1] == i) for i in present_i}
        bad_u = {u for u in present_u if du[u] < min_user}
        bad_i = {i for i in present_i if di[i] < min_item}
        if not bad_u and not bad_i:
            return keep, done, True
        if max_rounds is not None and len(done) >= max_rounds:
            return keep, done, False
        new = [k and r[0] not in bad_u and r[1] not in bad_i for r, k in zip(rows, keep)]
        after_u = {r[0] for r, k in zip(rows, new) if k}
        after_i = {r[1] for r, k in zip(rows, new) if k}
        done.append((sum(keep) - sum(new), len(present_u) - len(after_u), len(present_i) - len(after_i)))
        keep = new
        if not after_u:
            return keep, done, True


@settings(max_examples=300, deadline=None)
@given(
    rows_st,
    st.integers(0, 4),
    st.integers(0, 4),
    st.none() | st.integers(1, 3),
    st.none() | st.lists(st.booleans(), min_size=60, max_size=60),
)
def test_kcore_counted_is_the_naive_round_by_round_rule(rows, min_user, min_item, max_rounds, counted):
    """The in-place k-core (keep-mask, count tables that lose each round's rows) against the rule
    recomputed from scratch every round: the same rows kept, rounds, fixpoint flag and users/items
    present before and after; with and without ``counted`` rows (``--kcore-on target``), and with
    ``max_rounds`` (1: SASRec's single pass over raw counts)."""
    user, item, *_ = _cols(rows)
    mask = None if counted is None else np.array(counted[: len(rows)], dtype=bool)
    res = kcore_counted(user, item, min_user=min_user, min_item=min_item, max_rounds=max_rounds, counted=mask)
    keep, done, fixpoint = _naive_rounds(rows, [True] * len(rows) if counted is None else counted, min_user, min_item, max_rounds)
    assert res.keep.dtype == bool and res.keep.tolist() == keep
    assert [(r["rows_removed"], r["users_removed"], r["items_removed"]) for r in res.rounds] == done
    assert res.fixpoint == fixpoint
    assert res.present_before == (num_present(user), num_present(item))
    assert res.present_after == (num_present(user[res.keep]), num_present(item[res.keep]))
    kept_u, kept_i = res.kept_counts  # the kept rows' own counts (what a vocabulary is fitted from)
    assert kept_u.tolist() == np.bincount(user[res.keep], minlength=len(kept_u)).tolist() and len(kept_u) == (user.max() + 1 if len(user) else 0)
    assert kept_i.tolist() == np.bincount(item[res.keep], minlength=len(kept_i)).tolist() and len(kept_i) == (item.max() + 1 if len(item) else 0)
    legacy = kcore(user, item, min_user=min_user, min_item=min_item, max_rounds=max_rounds, counted=mask)
    assert legacy[0].tolist() == keep and legacy[1] == res.rounds and legacy[2] == fixpoint
    if max_rounds == 1 and counted is None:
        assert keep == _one_pass(rows, min_user, min_item)


def test_kcore_counted_large_codes_cascade():
    """A log past COUNT_CHUNK rows (the in-place counting path) with a cascade: every round
    recomputed from scratch gives the same kept rows."""
    rng = np.random.default_rng(7)
    n = 200_000
    user = (rng.zipf(1.6, n) % 5_000).astype(np.int32)
    item = (rng.zipf(1.4, n) % 3_000).astype(np.int32)
    res = kcore_counted(user, item, min_user=5, min_item=5)
    keep = np.ones(n, dtype=bool)
    while True:
        uc, ic = np.bincount(user[keep], minlength=5_000), np.bincount(item[keep], minlength=3_000)
        drop = keep & ((uc[user] < 5) | (ic[item] < 5))
        if not drop.any():
            break
        keep &= ~drop
    assert len(res.rounds) > 1 and res.fixpoint
    assert np.array_equal(res.keep, keep)
    assert sum(r["rows_removed"] for r in res.rounds) == n - int(keep.sum())


def test_kcore_cascade_needs_several_rounds():
    # item 9 is rare -> user 2 drops below 2 -> item 8 drops below 2 -> user 1 drops below 2
    user = np.array([0, 0, 1, 1, 2, 2, 0, 3, 3])
    item = np.array([5, 6, 8, 5, 8, 9, 5, 5, 6])
    keep, rounds, fixpoint = kcore(user, item, min_user=2, min_item=2)
    assert keep.tolist() == [True, True, False, False, False, False, True, True, True]
    assert [(r["rows_removed"], r["users_removed"], r["items_removed"]) for r in rounds] == [
        (1, 0, 1),
        (1, 1, 0),
        (1, 0, 1),
        (1, 1, 0),
    ]
    assert fixpoint
    keep1, rounds1, fixpoint1 = kcore(user, item, min_user=2, min_item=2, max_rounds=1)
    assert keep1.tolist() == [True, True, True, True, True, False, True, True, True]
    assert not fixpoint1 and len(rounds1) == 1
    keep3, rounds3, fixpoint3 = kcore(user, item, min_user=2, min_item=2, max_rounds=3)
    assert int(keep3.sum()) == 6 and not fixpoint3 and len(rounds3) == 3


# ------------------------------------------------------------------------------------------------
# dedup


def _dedup_reference(rows, mode):
    n = len(rows)
    if mode == "none":
        return [True] * n
    if mode == "exact":
        seen, keep = set(), []
        for u, i, t, r in rows:
            key = (u, i, t, "nan" if math.isnan(r) else r)
            keep.append(key not in seen)
            seen.add(key)
        return keep
    order = _stable_time_order(rows)
    keep = [False] * n
    if mode == "first":
        seen = set()
        for k in order:
            if (rows[k][0], rows[k][1]) not in seen:
                keep[k] = True
                seen.add((rows[k][0], rows[k][1]))
        return keep
    if mode == "last":
        chosen = {}
        for k in order:
            chosen[(rows[k][0], rows[k][1])] = k  # later in stable time order wins
        for k in chosen.values():
            keep[k] = True
        return keep
    prev = None
    for k in order:  # consecutive
        if (rows[k][0], rows[k][1]) != prev:
            keep[k] = True
        prev = (rows[k][0], rows[k][1])
    return keep


@settings(max_examples=200)
@given(rows_st, st.sampled_from(["none", "exact", "first", "last", "consecutive"]), st.booleans())
def test_dedup_matches_reference(rows, mode, float_time):
    user, item, time, rating = _cols(rows)
    if float_time:
        time = time.astype(np.float64) / 2
        rows = [(u, i, t / 2, r) for u, i, t, r in rows]
    assert dedup(user, item, time, rating, mode).tolist() == _dedup_reference(rows, mode)


@pytest.mark.parametrize(
    "mode,expected",
    [
        # rows: 0 (u0,A,t5), 1 (u0,A,t5) exact copy, 2 (u0,A,t1), 3 (u0,B,t3), 4 (u0,A,t5,other rating), 5 (u1,A,t1)
        ("exact", [True, False, True, True, True, True]),
        ("first", [False, False, True, True, False, True]),  # earliest A of u0 is row 2
        ("last", [False, False, False, True, True, True]),  # latest A: t5 ties rows 0,1,4 -> last in input: 4
        ("consecutive", [True, False, True, True, False, True]),  # u0 in time order: A2 B3 A0 A1 A4 -> A B A
    ],
)
def test_dedup_hand_made(mode, expected):
    user = np.array([0, 0, 0, 0, 0, 1])
    item = np.array([7, 7, 7, 8, 7, 7])
    time = np.array([5, 5, 1, 3, 5, 1])
    rating = np.array([4.0, 4.0, 4.0, 4.0, 2.0, 4.0])
    assert dedup(user, item, time, rating, mode).tolist() == expected


def test_dedup_exact_without_ratings_compares_user_item_time():
    keep = dedup(np.array([0, 0, 0]), np.array([1, 1, 1]), np.array([3, 3, 4]), None, "exact")
    assert keep.tolist() == [True, False, True]


# ------------------------------------------------------------------------------------------------
# time window and rating


@given(st.lists(st.integers(-5, 5), max_size=30), st.none() | st.integers(-6, 6), st.none() | st.integers(-6, 6))
def test_time_window_is_half_open(times, since, until):
    keep = time_window(np.array(times, dtype=np.int64), since, until)
    ref = [(since is None or t >= since) and (until is None or t < until) for t in times]
    assert keep.tolist() == ref


def test_time_window_bounds_inclusive_exclusive():
    assert time_window(np.array([9, 10, 19, 20]), 10, 20).tolist() == [False, True, True, False]


@given(st.lists(st.sampled_from([0.5, 1.0, 3.5, 4.0, 5.0, math.nan]), max_size=30), st.sampled_from([0, 1, 3.5, 4, 6]))
def test_rating_at_least(ratings, bound):
    keep = rating_at_least(np.array(ratings, dtype=np.float32), bound)
    assert keep.tolist() == [(not math.isnan(r)) and r >= bound for r in ratings]


# ------------------------------------------------------------------------------------------------
# sessions


@settings(max_examples=200)
@given(st.lists(st.lists(st.integers(0, 100), min_size=1, max_size=12), max_size=6), st.integers(0, 30))
def test_session_ids_match_reference(per_user, gap):
    seqs = [sorted(s) for s in per_user]
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    ts = np.array([t for s in seqs for t in s], dtype=np.int64)
    ref = []
    for s in seqs:
        sid = 0
        for k, t in enumerate(s):
            if k and t - s[k - 1] > gap:
                sid += 1
            ref.append(sid)
    got = session_ids(offsets, ts, gap)
    assert got.dtype == np.int32 and got.tolist() == ref


def test_session_gap_is_strict():
    assert session_ids(np.array([0, 3]), np.array([0, 1800, 3601]), 1800).tolist() == [0, 0, 1]


# ------------------------------------------------------------------------------------------------
# option parsing


def test_time_bounds_in_the_log_unit():
    assert parse_time("2019-01-01T00:00:00Z", "--since") == ("date", 1546300800 * 10**9)
    assert parse_time("2019-01-01T02:00:00+02:00", "--since") == ("date", 1546300800 * 10**9)
    assert parse_time(" 1546300800.5 ", "--since") == ("number", 1546300800.5)
    assert bound_in_unit("2019-01-01", "--since", "epoch") == 1546300800  # raw epoch logs: seconds
    assert bound_in_unit("2019-01-01", "--since", "s") == 1546300800
    assert bound_in_unit("2019-01-01", "--since", "ms") == 1546300800000
    assert bound_in_unit("2019-01-01", "--since", "ns") == 1546300800 * 10**9
    assert bound_in_unit("2019-01-01T00:00:00.5", "--until", "epoch") == 1546300801  # rounded up
    assert bound_in_unit("123", "--since", "ms") == 123  # a number is in the log's own unit


def test_bad_time_bound():
    with pytest.raises(
        ConfigError,
        match=r"^--until 'tomorrow' is neither an epoch number nor an ISO-8601 date; pass e\.g\. --until 2019-01-01 or --until 1546300800$",
    ):
        parse_time("tomorrow", "--until")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("30m", ("seconds", 1800.0)),
        ("2d", ("seconds", 172800.0)),
        ("45s", ("seconds", 45.0)),
        ("0.5h", ("seconds", 1800.0)),
        ("90", ("raw", 90.0)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30x", "m", "-5m", "0m", "", "1e3s"])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError, match="is not a positive duration"):
        parse_duration(text)


def test_dedup_exact_interleaved_ratings_keep_first_in_input_order():
    # same (user, item, time) with ratings 4, 2, 4, 2, 5: the first 4, the first 2 and the 5 stay
    n = 5
    keep = dedup(
        np.zeros(n, dtype=np.int32),
        np.ones(n, dtype=np.int32),
        np.full(n, 7),
        np.array([4.0, 2.0, 4.0, 2.0, 5.0]),
        "exact",
    )
    assert keep.tolist() == [True, True, False, False, True]


@pytest.mark.parametrize("unit", ["epoch", "s", "ms", "us", "ns"])
@pytest.mark.parametrize("date", ["2019-01-01T00:00:00.25", "2019-01-01T00:00:00.000000750Z", "2019-01-01"])
def test_one_date_rule_for_filters_and_splits(unit, date, tmp_path):
    """--since/--until and --valid-from/--test-from read a date with one parser and one rounding rule:
    the bound is the first whole step of the log's unit at or after the instant."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from seqprep.config import FilterOptions, SplitOptions
    from seqprep.steps.filters import window_bounds
    from seqprep.steps.splits import decide_parts

    ns = int(pc.cast(pa.array([date.rstrip("Z")]), pa.timestamp("ns")).cast(pa.int64())[0].as_py())
    step = {"epoch": 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    expected = -(-ns // step)
    since, until = window_bounds(FilterOptions(since=date), unit)
    assert since == expected and until is None
    times = np.array([expected - 1, expected, expected + 1])
    _, info = decide_parts(np.array([0, 3]), times, SplitOptions(split="time", valid_from=date, test_from=date), unit)
    assert info["valid_from"] == info["test_from"] == expected



# ------------------------------------------------------------------------------------------------
# chunked code counts (k-core's and num_present's counting)


@settings(max_examples=200)
@given(
    codes=st.lists(st.integers(0, 40), min_size=0, max_size=300),
    extra=st.integers(0, 10),
    chunk=st.integers(1, 17),
    fast=st.booleans(),
    small=st.booleans(),
    few=st.booleans(),
)
def test_code_counts_is_bincount(codes, extra, chunk, fast, small, few):
    """Small inputs (one np.bincount) and large ones (counted in place by np.add.at, or chunk by
    chunk through one buffer on numpy without its fast np.add.at; a small table by np.bincount or
    by comparisons, a chunk at a time) give np.bincount's counts: same values, dtype and length
    (minlength or max + 1)."""
    from seqprep.kernels import filters, sequences

    arr = np.array(codes, dtype=np.int32)
    minlength = (max(codes) + 1 if codes else 0) + extra if extra % 2 else extra
    want = np.bincount(arr, minlength=minlength)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filters, "COUNT_CHUNK", chunk)
        mp.setattr(sequences, "_CHUNK", chunk)
        mp.setattr(sequences, "_FAST_ADD_AT", fast)
        mp.setattr(sequences, "_SMALL_TABLE", 1 << 12 if small else 0)
        mp.setattr(sequences, "_SMALL_CHUNK", chunk)
        mp.setattr(sequences, "_FEW", 1 << 12 if few else 0)
        got = filters.code_counts(arr, minlength)
        assert got.dtype == want.dtype and got.tolist() == want.tolist()
        assert sequences.code_counts(arr, minlength).tolist() == want.tolist()


def test_code_counts_refuses_negative_codes():
    from seqprep.kernels import sequences

    with pytest.raises(ValueError, match="negative"):
        sequences.code_counts(np.array([0, -1, 2], dtype=np.int32), 3)
    with pytest.raises(ValueError, match="negative"):
        sequences.code_counts(np.array([0, -2, 2], dtype=np.int32), 3, missing=True)


@settings(max_examples=200)
@given(
    codes=st.lists(st.integers(-1, 40), min_size=0, max_size=300),
    extra=st.integers(0, 10),
    chunk=st.integers(1, 17),
    fast=st.booleans(),
    small=st.booleans(),
    few=st.booleans(),
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
    top_code=st.booleans(),
)
def test_code_counts_with_missing_counts_code_minus_one_last(codes, extra, chunk, fast, small, few, dtype, top_code):
    """With ``missing`` (a cat feature's counting: code -1 is a missing value) the counts are
    np.bincount's of the codes that are not -1 (length ``size``, or max + 1 when a code reaches past
    it) and one more, last entry: the number of -1 codes - in place (np.add.at), chunk by chunk
    through one buffer, or a small table's np.bincount or comparisons a chunk at a time; in every
    signed code type, with the type's largest code too (its + 1 must not wrap around)."""
    from seqprep.kernels import sequences

    if top_code and dtype in (np.int8, np.int16):
        codes = codes + [int(np.iinfo(dtype).max)]
    arr = np.array(codes, dtype=dtype)
    top = max(codes, default=-1) + 1
    size = top + extra if extra % 2 else extra
    want = np.bincount(arr[arr >= 0], minlength=max(size, top)).tolist() + [int((arr < 0).sum())]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sequences, "_CHUNK", chunk)
        mp.setattr(sequences, "_FAST_ADD_AT", fast)
        mp.setattr(sequences, "_SMALL_TABLE", 1 << 12 if small else 0)
        mp.setattr(sequences, "_SMALL_CHUNK", chunk)
        mp.setattr(sequences, "_FEW", 1 << 12 if few else 0)
        got = sequences.code_counts(arr, size, missing=True)
    assert got.dtype == np.int64 and got.tolist() == want
