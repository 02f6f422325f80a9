"""The stable (user, time) sort of the encoded rows into CSR sequences, on every core.

Each user's interactions are sorted by timestamp, stably: equal timestamps keep input order (inputs
in the order given, then line order). That is the tie rule of every output (:data:`TIE_RULE`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..kernels import csr_offsets, time_order
from ..kernels.sequences import in_time_order, part_time_order, rows_in_time_order, sequence_parts, user_range_rows
from ..model import Feature, Sequences
from ..resources import sort_threads

__all__ = ["TIE_RULE", "sequences_from"]

TIE_RULE = "stable: equal timestamps keep input order (inputs in the order given, then line order)"


def sequences_from(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    time: np.ndarray,
    rating: np.ndarray | None,
    user_counts: np.ndarray,
    on_part: Callable[[Sequences, int, int], None] | None = None,
    features: tuple[Feature, ...] = (),
    features_in_place: bool = False,
    columns_in_place: bool = False,
    ordered: bool | None = None,
) -> Sequences:
    """Group interactions (already encoded) into time-ordered CSR sequences (sorted on every core).

    With ``on_part``, the users are sorted in row groups (:func:`~seqprep.kernels.sequences.sequence_parts`)
    on a thread pool, and ``on_part(seqs, u0, u1)`` is called in this thread, in user order, as soon
    as users ``u0 <= u < u1`` are in place in ``seqs`` (the arrays being filled): a build writes
    sequences.parquet there while the next groups are still being sorted. The result is the same.
    ``features`` (aligned with the rows) are put in the same order; with ``on_part`` only features
    of one value per row (cat, num), and they stay in the type they came in (compact ``cat`` indices
    stay uint8 / uint16: widen them with :meth:`~seqprep.model.Feature.widened` once the input-order
    copy is released; :func:`~seqprep.output.files.sequences_part` widens a row group at a time).
    With ``features_in_place`` (the caller lets the input-order features go) and rows grouped by user
    (each row group's rows are the positions it fills), the features are sorted in place, a row group
    at a time, instead of into a second array: a feature is then held once during the sort.
    ``columns_in_place`` does the same for ``item_idx``, ``time`` and ``rating`` (the caller lets the
    input-order arrays go, and reads none of them after the sort): a log grouped by user but not
    in time order (the MovieLens user-then-item layout) then holds its interactions once, not twice.

    Rows already in (user, time) order (a log written user by user in time order) are not sorted at
    all: the sequences are the given arrays (and features) themselves, no copy is made. ``ordered``:
    whether they are, when the caller has looked (:func:`~seqprep.kernels.sequences.in_time_order`).
    ``rating`` may be float32 or the 1-byte codes of :func:`~seqprep.kernels.sequences.half_step_codes`,
    ``time`` int64 (or float64) or the uint32 offsets of :func:`~seqprep.kernels.sequences.time_offsets`
    (fewer bytes to sort): the sorted columns keep their types.
    """
    if in_time_order(user_idx, time) if ordered is None else ordered:
        return _in_order(user_idx, item_idx, time, rating, user_counts, on_part, features)
    if on_part is None:
        order = time_order(user_idx, time, threads=sort_threads())
        return Sequences(
            offsets=csr_offsets(user_counts),
            items=item_idx[order],
            timestamps=time[order],
            ratings=None if rating is None else rating[order],
            features=tuple(f.take(order).widened() for f in features),
        )
    offsets = csr_offsets(user_counts)
    n = len(user_idx)
    if any(f.offsets is not None for f in features):
        msg = "sequences_from(on_part=...) carries features of one value per row only"
        raise ValueError(msg)
    bounds = sequence_parts(offsets)
    parts = user_range_rows(user_idx, bounds, counts=user_counts)
    grouped = isinstance(parts[0], slice)  # rows already grouped by user: each part is a slice
    # in place: part k's rows are offsets[bounds[k]]..offsets[bounds[k+1]], the ones it fills (a
    # read-only array, such as a zero-copy view of the reader's column, or one that may share memory
    # with another feature's, gets a copy all the same)
    columns = [item_idx, time] + ([] if rating is None else [rating])
    arrays = [user_idx, *columns, *(f.values for f in features)]

    def alone(a: np.ndarray) -> bool:  # writeable and sharing no memory with another input
        return a.flags.writeable and not any(b is not a and np.may_share_memory(a, b) for b in arrays)

    in_place = tuple(features_in_place and grouped and alone(f.values) for f in features)
    own = [columns_in_place and grouped and alone(a) for a in columns]  # items, timestamps[, ratings]
    sorted_columns = [a if mine else np.empty(n, dtype=a.dtype) for a, mine in zip(columns, own)]
    seqs = Sequences(
        offsets=offsets,
        items=sorted_columns[0],
        timestamps=sorted_columns[1],
        ratings=None if rating is None else sorted_columns[2],
        features=tuple(
            f if own else dataclasses.replace(f, values=np.empty(n, dtype=f.values.dtype)) for f, own in zip(features, in_place)
        ),
    )

    def sort_part(k: int) -> None:
        lo, hi = int(offsets[bounds[k]]), int(offsets[bounds[k + 1]])
        rows = parts[k]
        if not isinstance(rows, slice):  # scattered rows: see gathered_part
            gathered_part(k, lo, hi, rows)
            return
        order = rows_in_time_order(user_idx, time, rows)  # (reads this part's rows only)
        for a, out in zip(columns, sorted_columns):
            if out is a:  # in place (the fancy index copies the part's values out first)
                a[lo:hi] = a[order]
            else:
                np.take(a, order, out=out[lo:hi])
        for f, out in zip(features, seqs.features):  # compact indices stay compact (see above)
            if out is f:  # in place, as above
                f.values[lo:hi] = f.values[order]
            else:
                np.take(f.values, order, out=out.values[lo:hi])

    def gathered_part(k: int, lo: int, hi: int, rows: np.ndarray) -> None:
        """Part ``k`` of scattered rows (``rows``: its row indices, ascending): each column gathered
        by ``rows`` (a forward sweep), then put in order from that part-sized copy, so that the
        order's random reads stay in it (:func:`~seqprep.kernels.sequences.part_time_order`)."""
        t = time[rows]
        order = part_time_order(user_idx[rows], t)
        np.take(t, order, out=sorted_columns[1][lo:hi])
        del t
        for a, out in zip(columns, sorted_columns):
            if a is not time:
                np.take(a[rows], order, out=out[lo:hi])
        for f, out in zip(features, seqs.features):  # compact indices stay compact (see above)
            np.take(f.values[rows], order, out=out.values[lo:hi])

    # the pool sorts the groups on every core while ``on_part`` hands the sorted ones on (the CLI's
    # writer encodes them on a thread of its own); rows grouped by user once kept a core back for
    # a writer on this thread: 25M user-then-item rows took 7.83 s [7.44-8.03] that way and 7.09 s
    # [6.77-7.52] on every core (4 rounds each, +47 MiB; 5M: 1.83 -> 1.60 s, 9 rounds)
    # (at most 8 groups at once: each holds ~50-80 MB of temporaries)
    workers = min(8, sort_threads())
    if len(bounds) == 2:  # one part (one row group): nothing to overlap, no thread to start
        sort_part(0)
        on_part(seqs, int(bounds[0]), int(bounds[1]))
        return seqs
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seqprep-sort") as pool:
        futures = [pool.submit(sort_part, k) for k in range(len(bounds) - 1)]
        try:
            for k, future in enumerate(futures):
                future.result()
                on_part(seqs, int(bounds[k]), int(bounds[k + 1]))
        finally:
            for future in futures:
                future.cancel()
    return seqs


def _in_order(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    time: np.ndarray,
    rating: np.ndarray | None,
    user_counts: np.ndarray,
    on_part: Callable[[Sequences, int, int], None] | None,
    features: tuple[Feature, ...],
) -> Sequences:
    """:func:`sequences_from` of rows already in (user, time) order: the arrays as they are (feature
    indices widened to int32 as sorted ones are, except with ``on_part``: compact, as there)."""
    seqs = Sequences(
        offsets=csr_offsets(user_counts),
        items=item_idx,
        timestamps=time,
        ratings=rating,
        features=features if on_part is not None else tuple(f.widened() for f in features),
    )
    if on_part is not None:
        bounds = sequence_parts(seqs.offsets)
        for u0, u1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            on_part(seqs, u0, u1)
    return seqs

