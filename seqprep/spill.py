"""The build under ``--memory-limit``: integer columns on disk, an external sort by user range.

:func:`~seqprep.ingest.stream_log` writes the compact columns to a spill folder. Here they are read
back in chunks to (1) count missing values and fit the vocabularies, (2) write each kept row, in
input order, to the partition of its user's index range, and (3) sort each partition with the same
kernel as the in-memory build (:func:`~seqprep.kernels.time_order`) into its slice of the output.
A partition holds whole users and its rows in input order, so the stable per-partition sort equals
the global stable sort: the result is the same, byte for byte.

Memory: the output arrays (items, timestamps, ratings: 16 bytes a kept row), the vocabularies, one
chunk, and one partition (about 64 bytes a row while it is sorted), sized from the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .config import BuildConfig
from .ingest import read_rows
from .kernels import csr_offsets, remap_table, time_order
from .kernels.partition import split_by_partition, user_partitions
from .kernels.vocab import first_positions, order_counted
from .progress import SILENT, Progress
from .readers import Log
from .vocab import Vocabulary

__all__ = ["spilled_sequences", "plan_rows"]

#: Bytes of working memory per row of the partition being sorted (columns, sort key, permutation, copies).
SORT_BYTES_PER_ROW = 64
#: What the interpreter, pyarrow and numpy need besides the data.
BASE_BYTES = 384 << 20
MAX_PARTITIONS = 256
MAX_CHUNK_ROWS = 1 << 22


def plan_rows(limit: int, kept: int, out_bytes_per_row: int, fixed_bytes: int) -> int:
    """Rows per partition (and per chunk) that keep the sort inside ``limit``; at least ``kept / 256``.

    >>> plan_rows(4 * 10**9, 100_000_000, 16, 100 << 20)
    29000000
    """
    free = limit - kept * out_bytes_per_row - fixed_bytes - BASE_BYTES
    rows = max(1, free // SORT_BYTES_PER_ROW)
    rows = max(rows, -(-kept // MAX_PARTITIONS))  # at most MAX_PARTITIONS partitions (open files)
    return int(rows // 1_000_000 * 1_000_000 if rows >= 1_000_000 else rows)


class _FirstSeen:
    """Codes in order of first appearance, accumulated chunk by chunk (as ``pd.unique`` on all rows)."""

    def __init__(self, size: int) -> None:
        self.seen = np.zeros(size, dtype=bool)
        self.parts: list[np.ndarray] = []

    def add(self, codes: np.ndarray) -> None:
        u = pd.unique(codes).astype(np.int64)
        new = u[~self.seen[u]]
        self.seen[new] = True
        self.parts.append(new)

    def result(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)


def spilled_sequences(
    log: Log, config: BuildConfig, folder: Path, limit: int, progress: Progress = SILENT
) -> tuple[Vocabulary, Vocabulary, Any, list[dict[str, Any]]]:
    """(users, items, sequences, steps) of ``log`` (spilled columns) as ``clean`` -> ``fit_vocabularies``
    -> ``sequences_from`` give them, within about ``limit`` bytes."""
    from .pipeline import Sequences, missing_report, no_rows_left_error, strict_missing_error

    n = log.num_rows
    n_users, n_items = len(log.user_ids), len(log.item_ids)
    fixed = log.user_ids.nbytes + log.item_ids.nbytes + 24 * (n_users + n_items) + n  # ids, counts, remaps, validity
    chunk = min(MAX_CHUNK_ROWS, plan_rows(limit, n, 16, fixed))

    # pass 1: missing values, counts, first appearances
    progress.phase("counting", n, "")
    user_counts = np.zeros(n_users, dtype=np.int64)
    item_counts = np.zeros(n_items, dtype=np.int64)
    user_first = _FirstSeen(n_users) if config.user_order == "first-seen" else None
    item_first = _FirstSeen(n_items) if config.item_order == "first-seen" else None
    miss = np.zeros(4, dtype=np.int64)  # user, item, time, any
    seen_user = np.zeros(n_users, dtype=bool)  # ids on any row, kept or not: what the step removed entirely
    seen_item = np.zeros(n_items, dtype=bool)
    first_bad = -1
    for lo in range(0, n, chunk):
        u = read_rows(log.user_codes, lo, lo + chunk)
        it = read_rows(log.item_codes, lo, lo + chunk)
        bad_u, bad_i, bad_t = u < 0, it < 0, ~read_rows(log.time_valid, lo, lo + chunk)
        bad = bad_u | bad_i | bad_t
        miss += [bad_u.sum(), bad_i.sum(), bad_t.sum(), bad.sum()]
        if first_bad < 0 and bad.any():
            first_bad = lo + int(np.argmax(bad))
        seen_user[u[~bad_u]] = True
        seen_item[it[~bad_i]] = True
        u, it = u[~bad], it[~bad]
        user_counts += np.bincount(u, minlength=n_users)
        item_counts += np.bincount(it, minlength=n_items)
        if user_first is not None:
            user_first.add(u)
        if item_first is not None:
            item_first.add(it)
        progress.update(lo + len(bad))
    n_bad = int(miss[3])
    steps = [missing_report(n, int(miss[0]), int(miss[1]), int(miss[2]), n_bad)]
    steps[0]["users_removed"] = int(seen_user.sum() - np.count_nonzero(user_counts))
    steps[0]["items_removed"] = int(seen_item.sum() - np.count_nonzero(item_counts))
    if n_bad and config.strict:
        raise strict_missing_error(log.inputs, n_bad, first_bad)
    kept = n - n_bad
    if kept == 0:
        raise no_rows_left_error(n)

    # vocabularies, exactly as fit_vocabularies orders them
    user_order, ucounts = order_counted(
        user_counts,
        log.user_ids,
        config.user_order,
        None if user_first is None else first_positions(user_first.result(), n_users),
    )
    item_order, icounts = order_counted(
        item_counts,
        log.item_ids,
        config.item_order,
        None if item_first is None else first_positions(item_first.result(), n_items),
    )
    users = Vocabulary(ids=log.user_ids.take(pa.array(user_order)), counts=ucounts, start=0)
    items = Vocabulary(ids=log.item_ids.take(pa.array(item_order)), counts=icounts, start=1)
    user_remap = remap_table(user_order, n_users, start=0)
    item_remap = remap_table(item_order, n_items, start=1)
    del user_counts, item_counts, user_first, item_first

    # pass 2: kept rows, in input order, into the partition of their user range
    has_rating = log.rating is not None
    out_row = 4 + log.time.dtype.itemsize + (4 if has_rating else 0)
    part_rows = plan_rows(limit, kept, out_row, fixed)
    part_of_user = user_partitions(ucounts, part_rows)
    num_parts = int(part_of_user[-1]) + 1 if len(part_of_user) else 0
    cols = ("user", "item", "time") + (("rating",) if has_rating else ())
    dtypes = {"user": np.int32, "item": np.int32, "time": log.time.dtype, "rating": np.float32}
    paths = {(k, c): folder / f"part-{k:04d}.{c}" for k in range(num_parts) for c in cols}
    progress.phase(f"partitioning into {num_parts} user ranges", n, "")
    handles = {key: open(p, "wb") for key, p in paths.items()}  # noqa: SIM115 - closed below
    try:
        for lo in range(0, n, chunk):
            u = read_rows(log.user_codes, lo, lo + chunk)
            it = read_rows(log.item_codes, lo, lo + chunk)
            keep = (u >= 0) & (it >= 0) & read_rows(log.time_valid, lo, lo + chunk)
            values = {
                "user": user_remap[u[keep]],
                "item": item_remap[it[keep]],
                "time": read_rows(log.time, lo, lo + chunk)[keep],
            }
            if has_rating:
                values["rating"] = read_rows(log.rating, lo, lo + chunk)[keep]  # type: ignore[arg-type]
            order, offsets = split_by_partition(part_of_user[values["user"]], num_parts)
            for c in cols:
                grouped = values[c][order]
                for k in np.flatnonzero(np.diff(offsets)):
                    grouped[offsets[k] : offsets[k + 1]].tofile(handles[(int(k), c)])
            progress.update(lo + len(keep))
    finally:
        for fh in handles.values():
            fh.close()

    # pass 3: sort each partition into its slice of the output
    out_items = np.empty(kept, dtype=np.int32)
    out_time = np.empty(kept, dtype=log.time.dtype)
    out_rating = np.empty(kept, dtype=np.float32) if has_rating else None
    progress.phase(f"sorting {kept:,} interactions in {num_parts} user ranges", kept, "")
    at = 0
    for k in range(num_parts):
        part = {c: np.fromfile(paths[(k, c)], dtype=dtypes[c]) for c in cols}
        for c in cols:
            paths[(k, c)].unlink()
        order = time_order(part["user"], part["time"])
        m = len(order)
        out_items[at : at + m] = part["item"][order]
        out_time[at : at + m] = part["time"][order]
        if out_rating is not None:
            out_rating[at : at + m] = part["rating"][order]
        at += m
        del part, order
        progress.update(at)
    seqs = Sequences(offsets=csr_offsets(ucounts), items=out_items, timestamps=out_time, ratings=out_rating)
    return users, items, seqs, steps
