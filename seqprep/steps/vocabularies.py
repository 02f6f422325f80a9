"""Fitting the vocabularies: items 1..N (0 is padding), users 0..U-1, in the chosen order.

Orders (:func:`seqprep.kernels.fit_order`): items by ``frequency`` (most interactions first, equal
counts by ascending original id), ``first-seen``, ``id`` or ``sequence`` (first appearance reading the
sorted sequences user by user: :func:`item_order_of`); users by ``id``, ``first-seen`` or ``date``
(the UTC day of their last row in input order, equal days by first appearance: :func:`user_order_of`). The
local build fits them on the kept rows' codes (:func:`fit_vocabularies`); an engine that only has
count tables (``--memory-limit``, Dask) calls :func:`vocabulary_from_counts`, which orders exactly
the same way.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..config import BuildConfig
from ..errors import ConfigError
from ..io.buffers import read_rows
from ..kernels import fit_order, lookup, order_counted, remap_table, time_order
from ..kernels.arrow import from_numpy
from ..kernels.vocab import date_order, date_order_counted, last_days, user_item_counts
from ..model import Interactions, Log
from ..resources import sort_threads
from ..timeunits import day_length
from ..vocab import Vocabulary
from . import reuse
from .counts import CodeCounts

__all__ = [
    "ITEM_START",
    "USER_START",
    "fit_vocabularies",
    "fitted",
    "item_order_of",
    "log_dates",
    "renumbered",
    "user_order_of",
    "users_by_date",
    "vocabularies_from_counts",
    "vocabulary_from_counts",
]

ITEM_START = 1  # index 0 is padding
USER_START = 0


def fitted(ids: pa.Array, chosen: np.ndarray, counts: np.ndarray, start: int) -> Vocabulary:
    """The vocabulary of the original ``ids`` at ``chosen`` (in that order) with their counts."""
    return Vocabulary(ids=ids.take(from_numpy(chosen)), counts=counts, start=start)


def vocabulary_from_counts(
    counts: np.ndarray, ids: pa.Array, order: str, first_seen: np.ndarray | None, start: int
) -> tuple[Vocabulary, np.ndarray]:
    """(vocabulary, the codes it holds in index order) from count tables: ``counts[k]`` kept
    interactions of ``ids[k]``, ``first_seen[k]`` the input position of its first one (needed for
    ``first-seen``). ``remap_table(chosen, len(ids), start)`` turns codes into indices."""
    chosen, ordered = order_counted(counts, ids, order, first_seen)  # type: ignore[arg-type]
    return fitted(ids, chosen, ordered, start), chosen


def fit_vocabularies(
    inter: Interactions,
    log: Log,
    config: BuildConfig,
    kept: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    in_place: bool = False,
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """(users, items, user_idx per row, item_idx per row) of the kept rows. With ``--vocab-from`` the
    vocabularies of an earlier build are reused (and with ``--extend`` grown): see :mod:`seqprep.steps.reuse`.
    ``kept``: the kept rows per user code and item code when already counted (k-core's last tables,
    :func:`~seqprep.steps.clean.clean_counted`): no second count of the rows. ``in_place``: the
    indices may be written over ``inter.user`` and ``inter.item`` (and so over the log's codes, when
    they are the same arrays), for a caller that reads no code again (:func:`~seqprep.kernels.vocab.lookup`)."""
    if config.vocab.vocab_from is None and (config.user_order == "date" or config.item_order == "sequence"):
        return _fit_by_dates_or_sequences(inter, log, config)
    counts = _counted(inter, log, config, kept)
    users, items, user_table, item_table = vocabularies_from_counts(log, config, counts)
    return users, items, _indices(user_table, inter.user, in_place), _indices(item_table, inter.item, in_place)


def _counted(inter: Interactions, log: Log, config: BuildConfig, kept: tuple[np.ndarray, np.ndarray] | None) -> CodeCounts:
    """The kept rows' count tables: ``kept`` widened to every code of the log, or counted now (and
    always for a ``first-seen`` order, which needs the first positions too)."""
    if "first-seen" in (config.user_order, config.item_order):
        return CodeCounts.of(inter.user, inter.item, log, config)
    if kept is None:  # the two counts on two threads
        kept = user_item_counts(inter.user, len(log.user_ids), inter.item, len(log.item_ids), sort_threads())
    return CodeCounts(users=_padded(kept[0], len(log.user_ids)), items=_padded(kept[1], len(log.item_ids)))


def _padded(counts: np.ndarray, size: int) -> np.ndarray:
    """``counts`` (int64) with zeros up to ``size`` codes."""
    if len(counts) == size:
        return counts.astype(np.int64, copy=False)
    out = np.zeros(size, dtype=np.int64)
    out[: len(counts)] = counts
    return out


def _indices(table: np.ndarray, codes: np.ndarray, in_place: bool = False) -> np.ndarray:
    """``lookup(table, codes)``, or ``codes`` themselves when ``table`` maps every code to itself (users
    by id in a log written user by user in id order: the first-seen codes already are the indices)."""
    if codes.dtype == np.int32 and len(table) and bool((table == np.arange(len(table))).all()):
        return codes
    return lookup(table, codes, in_place=in_place)


def _fit_by_dates_or_sequences(inter: Interactions, log: Log, config: BuildConfig) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """``--user-order date`` / ``--item-order sequence`` (the presets' orders), which need the rows
    themselves, not count tables."""
    user_order, user_counts = user_order_of(inter, log, config.user_order)
    users = fitted(log.user_ids, user_order, user_counts, USER_START)
    uidx = renumbered(inter.user, user_order, len(log.user_ids), USER_START)
    item_order, item_counts = item_order_of(inter, log, config.item_order, uidx)
    items = fitted(log.item_ids, item_order, item_counts, ITEM_START)
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


def user_order_of(inter: Interactions, log: Log, order: str) -> tuple[np.ndarray, np.ndarray]:
    """(user codes in index order, their counts) of the kept rows: ``id``, ``first-seen`` or ``date``
    (by the UTC day of each user's last row in input order, equal days by first appearance)."""
    if order != "date":
        return fit_order(inter.user, log.user_ids, order)  # type: ignore[arg-type]
    dates, first = log_dates(log, "--user-order date")
    return date_order(inter.user, dates, first, len(log.user_ids))


def users_by_date(counts: np.ndarray, log: Log, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``--user-order date`` from the kept rows' count table (``counts[k]``: rows of user code ``k``):
    (user codes in index order, their counts), as :func:`user_order_of` orders them; ``chunk`` as
    :func:`log_dates` reads the log."""
    dates, first = log_dates(log, "--user-order date", chunk)
    return date_order_counted(counts, dates, first)


def log_dates(log: Log, flag: str, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(date, first row) of every user code: the UTC day of the user's LAST row in the log as read
    and the position of its first row, over the rows with a user and a time (before ``--where``
    and the cleaning steps). A session's date in SR-GNN's preprocessing is that of its last line in
    the file, whatever is filtered out later; for a log in time order it is the day of the latest row.
    ``chunk``: rows read at a time (spilled columns under ``--memory-limit``; None: all at once)."""
    if log.time_unit not in ("epoch", "s", "ms", "us", "ns"):
        msg = f"{flag} needs times in a time unit, and this log's are {log.time_unit}; use another order or split"
        raise ConfigError(msg)
    n = len(log.user_ids)
    dates = np.full(n, -1, dtype=np.int64)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    step = max(1, log.num_rows if chunk is None else chunk)
    for lo in range(0, log.num_rows, step):  # a later chunk's last row of a user comes later
        codes = read_rows(log.user_codes, lo, lo + step)
        rows = np.flatnonzero((codes >= 0) & read_rows(log.time_valid, lo, lo + step))
        codes = codes[rows]
        np.minimum.at(first, codes, rows + lo)
        has = np.bincount(codes, minlength=n) > 0
        dates[has] = last_days(codes, read_rows(log.time, lo, lo + step)[rows], n, day_length(log.time_unit))[has]
    return dates, first


def item_order_of(
    inter: Interactions, log: Log, order: str, uidx: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(item codes in index order, their counts) of the kept rows (``rows``: a mask of those to fit
    on, e.g. the training rows). ``sequence``: by first appearance reading the sequences as they are
    written (users in index order ``uidx``, each in its stable time order) - one sort more."""
    if order != "sequence":
        codes = inter.item if rows is None else inter.item[rows]
        return fit_order(codes, log.item_ids, order)  # type: ignore[arg-type]
    by_seq = time_order(uidx, inter.time, threads=sort_threads())
    if rows is not None:
        by_seq = by_seq[rows[by_seq]]
    return fit_order(inter.item[by_seq], log.item_ids, "first-seen")
