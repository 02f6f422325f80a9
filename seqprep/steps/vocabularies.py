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
from ..kernels import lookup, order_counted, remap_table
from ..model import Interactions, Log
from ..vocab import Vocabulary
from . import reuse
from .counts import CodeCounts

__all__ = ["ITEM_START", "USER_START", "fit_vocabularies", "fitted", "vocabularies_from_counts", "vocabulary_from_counts"]

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
    counts = CodeCounts.of(inter.user, inter.item, log, config)
    users, items, user_table, item_table = vocabularies_from_counts(log, config, counts)
    return users, items, lookup(user_table, inter.user), lookup(item_table, inter.item)


def vocabularies_from_counts(
    log: Log, config: BuildConfig, counts: CodeCounts
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """(users, items, user code -> user_idx, item code -> item_idx) from the kept rows' count tables:
    fitted in ``--user-order`` / ``--item-order``, or reused with ``--vocab-from``."""
    if config.vocab.vocab_from is not None:
        return reuse.fit_reused_counted(log, config, counts)
    users, user_order = vocabulary_from_counts(counts.users, log.user_ids, config.user_order, counts.user_first, USER_START)
    items, item_order = vocabulary_from_counts(counts.items, log.item_ids, config.item_order, counts.item_first, ITEM_START)
    user_table = remap_table(user_order, len(log.user_ids), start=USER_START)
    item_table = remap_table(item_order, len(log.item_ids), start=ITEM_START)
    return users, items, user_table, item_table
