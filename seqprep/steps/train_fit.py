"""``--vocab-from-train`` from user ranges: the item vocabulary fitted on the training rows and the
users renumbered on the rows left, from small per-range tallies.

The split is decided first on the users numbered on every kept row (each engine holds whole users
per range: the local build one range of everything, ``--memory-limit`` its sorted rows, Dask each
output part). Then, range by range and in user order:

1. :func:`train_tally`: the item codes of the range's TRAIN rows, their counts, their first input
   positions (``--item-order first-seen``) and their order of first appearance in the range's
   output order (``sequence``): compact integer arrays;
2. :func:`fit_train_items` on every range's tally: the items' vocabulary and its code -> index
   table (-1: an item no training row holds);
3. per range, the rows whose item is unseen are dropped (:func:`unseen_counts` counts them by part,
   :func:`unseen_step` adds the ranges up into meta.json's ``vocab_from_train`` step) and
   :func:`left_tally` counts the rows left per user (and their first input position);
4. :func:`users_after` renumbers the users on the rows left, by ``--user-order`` -> the old index of
   each new user; :func:`regrouped` gathers each user's rows left in the new order, their stable
   time order kept (a subsequence of a stable sort is the stable sort of the subset).

:func:`srgnn_rows` joins the training and test rows of consecutive ranges for ``--export srgnn``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ..kernels import csr_offsets, order_counted, remap_table
from ..kernels.splits import HELD_OUT, TEST, TRAIN, VALID, gather_ranges
from ..kernels.vocab import first_seen_codes
from ..model import EvalRows, Extras, Feature
from ..records import record
from ..vocab import Vocabulary
from .counts import NEVER
from .vocabularies import ITEM_START, USER_START, fitted, vocabulary_from_counts

__all__ = [
    "LeftTally",
    "TrainTally",
    "fit_train_items",
    "joined_offsets",
    "left_tally",
    "no_training_rows",
    "recounted",
    "regrouped",
    "srgnn_rows",
    "train_tally",
    "unseen_counts",
    "unseen_step",
    "users_after",
]


def no_training_rows() -> InputError:
    """The error of a split that leaves no training row (there is nothing to fit on)."""
    msg = (
        "the split leaves no training interaction, so --vocab-from-train has no vocabulary; move the split bounds later"
    )
    return InputError(msg)


@record
class TrainTally:
    """One range's training rows: ``codes`` the distinct item codes they hold (ascending), ``counts``
    their rows, ``first`` the first input position of each (``first-seen``), ``seen`` the codes by
    first appearance in the range's output order (``sequence``)."""

    codes: np.ndarray
    counts: np.ndarray
    first: np.ndarray | None = None
    seen: np.ndarray | None = None


def train_tally(items: np.ndarray, part: np.ndarray, order: str, positions: np.ndarray | None = None) -> TrainTally:
    """The :class:`TrainTally` of one range: ``items`` the item codes (from 0) of its rows in the
    output order (users, then the stable time order), ``part`` their split, ``positions`` their input
    positions (any integers that order like the input rows; needed for ``first-seen``).

    >>> t = train_tally(np.array([4, 2, 4, 7]), np.array([0, 0, 0, 2], dtype=np.int8), "sequence")
    >>> t.codes.tolist(), t.counts.tolist(), t.seen.tolist()
    ([2, 4], [1, 2], [4, 2])
    """
    train = part == TRAIN
    codes = np.asarray(items)[train]
    distinct, inverse = np.unique(codes, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(distinct)).astype(np.int64)
    first = None
    if order == "first-seen":
        assert positions is not None
        first = np.full(len(distinct), NEVER, dtype=np.int64)
        np.minimum.at(first, inverse, np.asarray(positions, dtype=np.int64)[train])
    seen = first_seen_codes(codes) if order == "sequence" else None
    return TrainTally(distinct.astype(np.int64), counts, first, seen)


def fit_train_items(tallies: Iterable[TrainTally], ids: pa.Array, order: str) -> tuple[Vocabulary, np.ndarray]:
    """The items' vocabulary fitted on the training rows of every range (``tallies`` in user order)
    as :func:`~seqprep.steps.vocabularies.item_order_of` fits it on those rows, and its code -> index
    table (-1: no training row holds the item). No training row at all is the one-line error."""
    n = len(ids)
    counts = np.zeros(n, dtype=np.int64)
    first = np.full(n, NEVER, dtype=np.int64) if order == "first-seen" else None
    seen = []
    for t in tallies:
        counts[t.codes] += t.counts
        if first is not None:
            assert t.first is not None
            first[t.codes] = np.minimum(first[t.codes], t.first)
        if t.seen is not None:
            seen.append(t.seen)
    if not counts.any():
        raise no_training_rows()
    if order == "sequence":
        chosen = first_seen_codes(np.concatenate(seen))
        ordered = counts[chosen]
    else:
        chosen, ordered = order_counted(counts, ids, order, first)  # type: ignore[arg-type]
    return fitted(ids, chosen, ordered, ITEM_START), remap_table(chosen, n, start=ITEM_START)


def unseen_counts(unseen: np.ndarray, part: np.ndarray) -> dict[str, int]:
    """One range's rows whose item no training row holds (``unseen``, aligned with ``part``): all
    of them and by the part they held."""
    return {
        "rows_before": len(unseen),
        "rows_removed": int(unseen.sum()),
        "valid_targets_dropped": int((unseen & (part == VALID)).sum()),
        "test_targets_dropped": int((unseen & (part == TEST)).sum()),
        "history_rows_dropped": int((unseen & (part == HELD_OUT)).sum()),
    }


def unseen_step(counts: Iterable[dict[str, int]]) -> dict[str, Any]:
    """meta.json's ``vocab_from_train`` step from every range's :func:`unseen_counts`: rows whose
    item never occurs in training are dropped, counted by the part they held."""
    total: dict[str, int] = {}
    for c in counts:
        for key, value in c.items():
            total[key] = total.get(key, 0) + value
    before, removed = total.get("rows_before", 0), total.get("rows_removed", 0)
    return {
        "step": "vocab_from_train",
        "rows_before": before,
        "rows_removed": removed,
        "rows_after": before - removed,
        "valid_targets_dropped": total.get("valid_targets_dropped", 0),
        "test_targets_dropped": total.get("test_targets_dropped", 0),
        "history_rows_dropped": total.get("history_rows_dropped", 0),
    }


@record
class LeftTally:
    """One range's rows left per user (its users in index order): ``counts`` and, for
    ``--user-order first-seen``, ``first`` the first input position of each user's rows left."""

    counts: np.ndarray
    first: np.ndarray | None = None


def left_tally(offsets: np.ndarray, keep: np.ndarray, order: str, positions: np.ndarray | None = None) -> LeftTally:
    """The :class:`LeftTally` of one range (``offsets``: its users' CSR offsets from 0; ``keep``: the
    rows left, aligned with the positions; ``positions``: their input positions, for ``first-seen``).

    >>> t = left_tally(np.array([0, 2, 3]), np.array([True, False, False]), "first-seen", np.array([5, 1, 9]))
    >>> t.counts.tolist(), t.first.tolist() == [5, NEVER]
    ([1, 0], True)
    """
    cum = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=cum[1:])
    counts = cum[offsets[1:]] - cum[offsets[:-1]]
    first = None
    if order == "first-seen":
        assert positions is not None
        user = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        first = np.full(len(offsets) - 1, NEVER, dtype=np.int64)
        np.minimum.at(first, user[keep], np.asarray(positions, dtype=np.int64)[keep])
    return LeftTally(counts, first)


def users_after(
    order1: np.ndarray, tallies: Iterable[LeftTally], ids: pa.Array, order: str
) -> tuple[Vocabulary, np.ndarray]:
    """The users renumbered on the rows left: (their vocabulary, the index before of each new user).
    ``order1``: the user codes in the index order the split was decided on; ``tallies``: every
    range's :func:`left_tally`, in user order. ``--user-order date`` keeps the order (the dates are
    those of the rows before the unseen items left); ``id`` and ``first-seen`` fit it again on the
    rows left as :func:`~seqprep.steps.vocabularies.user_order_of` does."""
    tallies = list(tallies)
    left = np.concatenate([t.counts for t in tallies]) if tallies else np.zeros(0, np.int64)
    order1 = np.asarray(order1, dtype=np.int64)
    if order == "date":
        old = np.flatnonzero(left > 0)
        return fitted(ids, order1[old], left[old], USER_START), old
    counts = np.zeros(len(ids), dtype=np.int64)
    counts[order1] = left
    first = None
    if order == "first-seen":
        first = np.full(len(ids), NEVER, dtype=np.int64)
        first[order1] = np.concatenate([t.first for t in tallies])  # type: ignore[misc]
    users, order2 = vocabulary_from_counts(counts, ids, order, first, USER_START)
    index1 = remap_table(order1, len(ids), start=0)  # code -> index before
    return users, index1[order2].astype(np.int64)


def regrouped(left: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, positions) of the rows left gathered user by user in the new order: ``left`` the
    rows left of each user before (their rows contiguous, users in the order before), ``old`` the
    index before of each new user (:func:`users_after`).

    >>> regrouped(np.array([2, 0, 1]), np.array([2, 0]))
    (array([0, 1, 3]), array([2, 0, 1]))
    """
    starts = csr_offsets(left)[:-1]
    return gather_ranges(starts[old], np.asarray(left)[old])


def recounted(f: Feature, counts: np.ndarray | None = None) -> Feature:
    """A categorical feature that keeps the vocabulary fitted on every kept row (the ``event``
    feature) with the counts of the rows left: ``counts`` its rows per index 0..K (0: missing;
    default: of its values), the vocabulary's counts and ``missing`` those of the written rows.

    >>> f = Feature("event", "interaction", "cat", np.array([2, 0, 2], dtype=np.int32),
    ...             vocab=Vocabulary(pa.array(["a", "b"]), np.array([4, 5]), start=1), missing=3)
    >>> g = recounted(f)
    >>> g.vocab.counts.tolist(), g.missing
    ([0, 2], 1)
    """
    if f.vocab is None:
        return f
    k = len(f.vocab)
    if counts is None:
        counts = np.bincount(f.values, minlength=k + 1)
    counts = np.asarray(counts, dtype=np.int64)
    vocab = Vocabulary(ids=f.vocab.ids, counts=counts[1 : k + 1], start=f.vocab.start, oov_idx=f.vocab.oov_idx)
    return dataclasses.replace(f, vocab=vocab, missing=int(counts[0]))


def joined_offsets(offsets: list[np.ndarray]) -> np.ndarray:
    """The CSR offsets of consecutive pieces (each from 0) as one."""
    if not offsets:
        return np.zeros(1, dtype=np.int64)
    starts = np.cumsum([0] + [int(o[-1]) for o in offsets[:-1]], dtype=np.int64)
    return np.concatenate(
        [np.zeros(1, dtype=np.int64)] + [np.asarray(o[1:], dtype=np.int64) + s for o, s in zip(offsets, starts)]
    )


def srgnn_rows(parts: list[Extras]) -> tuple[np.ndarray, np.ndarray, EvalRows]:
    """(train offsets, train items, test rows) of every user from those of consecutive user ranges
    (each range's extras with its training rows and test rows): what ``--export srgnn`` reads."""
    tests = [ex.test for ex in parts]
    assert all(t is not None for t in tests)
    test = EvalRows(
        user_idx=np.concatenate([t.user_idx for t in tests]),  # type: ignore[union-attr]
        target=np.concatenate([t.target for t in tests]),  # type: ignore[union-attr]
        target_ts=np.concatenate([t.target_ts for t in tests]),  # type: ignore[union-attr]
        history_offsets=joined_offsets([t.history_offsets for t in tests]),  # type: ignore[union-attr]
        history=np.concatenate([t.history for t in tests]),  # type: ignore[union-attr]
    )
    train_offsets = joined_offsets([ex.train_offsets for ex in parts])  # type: ignore[misc]
    return train_offsets, np.concatenate([np.asarray(ex.train_items) for ex in parts]), test
