"""Fitting the vocabularies: items 1..N (0 is padding), users 0..U-1, in the chosen order.

Orders (:func:`seqprep.kernels.fit_order`): items by ``frequency`` (most interactions first, equal
counts by ascending original id), ``first-seen`` or ``id``; users by ``id`` or ``first-seen``. The
local build fits them on the kept rows' codes (:func:`fit_vocabularies`); an engine that only has
count tables (``--memory-limit``, Dask) calls :func:`vocabulary_from_counts`, which orders exactly
the same way.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..config import BuildConfig
from ..kernels import fit_order, lookup, order_counted, remap_table
from ..model import Interactions, Log
from ..vocab import Vocabulary
from . import reuse

__all__ = ["ITEM_START", "USER_START", "fit_vocabularies", "fitted", "renumbered", "vocabulary_from_counts"]

ITEM_START = 1  # index 0 is padding
USER_START = 0


def fitted(ids: pa.Array, chosen: np.ndarray, counts: np.ndarray, start: int) -> Vocabulary:
    """The vocabulary of the original ``ids`` at ``chosen`` (in that order) with their counts."""
    return Vocabulary(ids=ids.take(pa.array(chosen)), counts=counts, start=start)


def vocabulary_from_counts(
    counts: np.ndarray, ids: pa.Array, order: str, first_seen: np.ndarray | None, start: int
) -> tuple[Vocabulary, np.ndarray]:
    """(vocabulary, the codes it holds in index order) from count tables: ``counts[k]`` kept
    interactions of ``ids[k]``, ``first_seen[k]`` the input position of its first one (needed for
    ``first-seen``). ``remap_table(chosen, len(ids), start)`` turns codes into indices."""
    chosen, ordered = order_counted(counts, ids, order, first_seen)  # type: ignore[arg-type]
    return fitted(ids, chosen, ordered, start), chosen


def fit_vocabularies(
    inter: Interactions, log: Log, config: BuildConfig
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """(users, items, user_idx per row, item_idx per row) of the kept rows. With ``--vocab-from`` the
    vocabularies of an earlier build are reused (and with ``--extend`` grown): see :mod:`seqprep.steps.reuse`."""
    if config.vocab.vocab_from is not None:
        return reuse.fit_reused(inter, log, config)
    user_order, user_counts = fit_order(inter.user, log.user_ids, config.user_order)
    item_order, item_counts = fit_order(inter.item, log.item_ids, config.item_order)
    users = fitted(log.user_ids, user_order, user_counts, USER_START)
    items = fitted(log.item_ids, item_order, item_counts, ITEM_START)
    uidx = renumbered(inter.user, user_order, len(log.user_ids), USER_START)
    iidx = renumbered(inter.item, item_order, len(log.item_ids), ITEM_START)
    return users, items, uidx, iidx


def renumbered(codes: np.ndarray, chosen: np.ndarray, size: int, start: int) -> np.ndarray:
    """Each row's index in the vocabulary fitted as ``chosen`` (of ``size`` codes), from ``start``.

    ``codes`` themselves when they already are the indices - every code kept, in code order, from 0
    (users by id in a log written user by user in id order) - else a new array.
    """
    if start == 0 and codes.dtype == np.int32 and len(chosen) == size and bool((chosen == np.arange(size)).all()):
        return codes
    return lookup(remap_table(chosen, size, start=start), codes)
