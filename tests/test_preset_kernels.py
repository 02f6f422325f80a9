"""Property tests of the kernels the presets brought: one-sided k-core passes, session dates and
their order, the date split and the prefix rows, each against a plain-Python statement of its rule."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprep.kernels.filters import kcore_passes
from seqprep.kernels.splits import HELD_OUT, TEST, TRAIN, days_parts, prefix_rows
from seqprep.kernels.vocab import date_order, last_days

rows = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=60)
passes = st.lists(st.sampled_from(["user", "item"]), min_size=1, max_size=4).map(tuple)


@settings(max_examples=200, deadline=None)
@given(rows, passes, st.integers(0, 4), st.integers(0, 4))
def test_kcore_passes_is_each_pass_on_what_the_one_before_left(pairs, order, min_user, min_item):
    u = np.array([p[0] for p in pairs])
    i = np.array([p[1] for p in pairs])
    keep, report = kcore_passes(u, i, order, min_user=min_user, min_item=min_item)
    alive = list(range(len(pairs)))
    for k, on in enumerate(order):
        col = 0 if on == "user" else 1
        counts = Counter(pairs[r][col] for r in alive)
        bound = min_user if on == "user" else min_item
        left = [r for r in alive if counts[pairs[r][col]] >= bound]
        assert report[k]["rows_removed"] == len(alive) - len(left)
        assert report[k]["users_removed"] == len({pairs[r][0] for r in alive}) - len({pairs[r][0] for r in left})
        alive = left
    assert np.flatnonzero(keep).tolist() == alive


def test_kcore_passes_differs_from_one_round_where_srgnn_needs_it():
    """Items are counted after the one-click sessions left (one round counts them before)."""
    u = np.array([0, 1, 1, 2, 2])
    i = np.array([9, 9, 8, 9, 8])
    keep, _ = kcore_passes(u, i, ("user", "item"), min_user=2, min_item=3)
    assert keep.tolist() == [False, False, False, False, False]  # item 9: 2 clicks once session 0 is gone


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 50)), min_size=1, max_size=40), st.integers(1, 12))
def test_last_days_and_date_order(rows_, day):
    codes = np.array([r[0] for r in rows_])
    time = np.array([r[1] for r in rows_])
    got = last_days(codes, time, 6, day)
    for c in range(6):
        mine = [t for cc, t in rows_ if cc == c]
        assert got[c] == (math.floor(mine[-1] / day) if mine else -1)
    first = np.full(6, 10**9)
    for pos, (c, _) in enumerate(rows_):
        first[c] = min(first[c], pos)
    chosen, counts = date_order(codes, got, first, 6)
    expect = sorted({c for c, _ in rows_}, key=lambda c: (got[c], first[c]))
    assert chosen.tolist() == expect
    assert counts.tolist() == [sum(1 for cc, _ in rows_ if cc == c) for c in expect]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 20)), min_size=1, max_size=12), st.integers(1, 5))
def test_days_parts(seqs, test_days):
    lengths = np.array([n for n, _ in seqs])
    dates = np.array([d for _, d in seqs])
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    part, facts = days_parts(offsets, dates, test_days)
    present = [d for n, d in seqs if n]
    last = max(present) if present else 0
    boundary = last - test_days
    expect: list[int] = []
    for n, d in seqs:
        if d < boundary:
            expect += [TRAIN] * n
        elif d > boundary:
            expect += ([HELD_OUT] + [TEST] * (n - 1)) if n else []
        else:
            expect += [HELD_OUT] * n
    assert part.tolist() == expect
    assert facts["train_sequences"] == sum(1 for n, d in seqs if n and d < boundary)
    assert facts["boundary_sequences"] == sum(1 for n, d in seqs if n and d == boundary)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 9), max_size=6), min_size=1, max_size=8))
def test_prefix_rows_is_srgnn_process_seqs(seqs):
    items = np.array([x for s in seqs for x in s], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum([len(s) for s in seqs]))).astype(np.int64)
    target, start, length = prefix_rows(offsets)
    got = [(items[s : s + n].tolist(), int(items[t])) for t, s, n in zip(target, start, length)]
    expect = [(s[:-i], s[-i]) for s in seqs for i in range(1, len(s))]  # process_seqs' order
    assert got == expect
