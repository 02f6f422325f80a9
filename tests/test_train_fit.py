"""The range steps of ``--vocab-from-train`` (:mod:`seqprep.steps.train_fit`): any cut of the users
into ranges gives what one range of everything gives, and one range gives the in-memory fit's
vocabulary (:func:`~seqprep.steps.vocabularies.item_order_of` on the training rows)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqprep.errors import InputError
from seqprep.kernels import csr_offsets, fit_order
from seqprep.kernels.splits import HELD_OUT, TEST, TRAIN, VALID
from seqprep.steps import train_fit


@st.composite
def ranged_rows(draw):
    """Users with rows (item codes, parts, distinct input positions) and a cut of the users into ranges."""
    n_items = draw(st.integers(1, 12))
    lengths = draw(st.lists(st.integers(0, 6), min_size=1, max_size=10))
    n = sum(lengths)
    items = np.array(draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n)), dtype=np.int64)
    part = np.array(draw(st.lists(st.sampled_from([TRAIN, TRAIN, VALID, TEST]), min_size=n, max_size=n)), dtype=np.int8)
    positions = np.array(draw(st.permutations(range(n))), dtype=np.int64)
    cuts = sorted(set(draw(st.lists(st.integers(1, len(lengths)), max_size=4))) | {len(lengths)})
    ids = pa.array([f"i{(k * 7) % 13:02d}" for k in range(n_items)])
    return ids, np.array(lengths), items, part, positions, [0, *cuts]


def _ranges(offsets, bounds):
    return [(int(offsets[a]), int(offsets[b]), a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("order", ["frequency", "first-seen", "id", "sequence"])
@given(data=ranged_rows())
def test_items_fitted_on_ranges_are_the_one_range_fit(order, data):
    ids, lengths, items, part, positions, bounds = data
    offsets = csr_offsets(lengths)
    if not (part == TRAIN).any():
        with pytest.raises(InputError, match="no training interaction"):
            train_fit.fit_train_items([train_fit.train_tally(items, part, order, positions)], ids, order)
        return
    whole, table = train_fit.fit_train_items([train_fit.train_tally(items, part, order, positions)], ids, order)
    tallies = [
        train_fit.train_tally(items[lo:hi], part[lo:hi], order, positions[lo:hi])
        for lo, hi, _, _ in _ranges(offsets, bounds)
    ]
    ranged, ranged_table = train_fit.fit_train_items(tallies, ids, order)
    assert ranged.ids.equals(whole.ids) and ranged.counts.tolist() == whole.counts.tolist()
    assert ranged_table.tolist() == table.tolist()
    # the in-memory fit: fit_order on the training rows (input order for first-seen, output order for sequence)
    train = part == TRAIN
    if order == "sequence":
        chosen, counts = fit_order(items[train], ids, "first-seen")
    else:
        by_input = np.argsort(positions, kind="stable")
        chosen, counts = fit_order(items[by_input][train[by_input]], ids, order)
    assert whole.ids.equals(ids.take(pa.array(chosen))) and whole.counts.tolist() == counts.tolist()


@pytest.mark.parametrize("order", ["id", "first-seen", "date"])
@given(data=ranged_rows(), drop=st.data())
def test_users_renumbered_on_ranges_are_the_one_range_result(order, data, drop):
    ids, lengths, _, _, positions, bounds = data
    offsets = csr_offsets(lengths)
    n = int(offsets[-1])
    keep = np.array(drop.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    user_ids = pa.array([f"u{(k * 5) % 11:02d}" for k in range(len(lengths))])
    order1 = np.arange(len(lengths))[::-1].copy()  # the user codes in the index order before
    whole = train_fit.left_tally(offsets, keep, order, positions)
    users, old = train_fit.users_after(order1, [whole], user_ids, order)
    tallies = [
        train_fit.left_tally(offsets[a : b + 1] - offsets[a], keep[lo:hi], order, positions[lo:hi])
        for lo, hi, a, b in _ranges(offsets, bounds)
    ]
    ranged, ranged_old = train_fit.users_after(order1, tallies, user_ids, order)
    assert ranged.ids.equals(users.ids) and ranged_old.tolist() == old.tolist()
    assert users.counts.tolist() == whole.counts[old].tolist() and (users.counts > 0).all()
    if order == "date":  # the order before is kept
        assert old.tolist() == sorted(old.tolist())
    # the rows gathered in the new order are each user's rows left, in their order
    new_offsets, pos = train_fit.regrouped(whole.counts, old)
    left_positions = positions[keep]
    user_of_left = np.repeat(np.arange(len(lengths)), lengths)[keep]
    for k, u in enumerate(old.tolist()):
        assert (
            left_positions[pos[new_offsets[k] : new_offsets[k + 1]]].tolist()
            == left_positions[user_of_left == u].tolist()
        )


def test_unseen_step_adds_ranges_up():
    part = np.array([TRAIN, VALID, TEST, HELD_OUT, TRAIN], dtype=np.int8)
    unseen = np.array([False, True, True, True, False])
    step = train_fit.unseen_step(
        [train_fit.unseen_counts(unseen[:2], part[:2]), train_fit.unseen_counts(unseen[2:], part[2:])]
    )
    assert step == {
        "step": "vocab_from_train",
        "rows_before": 5,
        "rows_removed": 3,
        "rows_after": 2,
        "valid_targets_dropped": 1,
        "test_targets_dropped": 1,
        "history_rows_dropped": 1,
    }
