"""The build under ``--memory-limit``: integer columns on disk, an external sort by user range.

:func:`~seqprep.io.stream.stream_log` writes the compact columns to a spill folder. Here they are read
back in chunks to (1) count missing values and fit the vocabularies, (2) write each kept row, in
input order, to the partition of its user's index range, and (3) sort each partition with the same
kernel as the in-memory build (:func:`~seqprep.kernels.time_order`) into its slice of the output.
A partition holds whole users and its rows in input order, so the stable per-partition sort equals
the global stable sort: the result is the same, byte for byte. The missing-value step and the
vocabularies are the local build's own (:class:`~seqprep.steps.missing.MissingCounts`,
:func:`~seqprep.steps.vocabularies.vocabulary_from_counts`), fed chunk by chunk.

Memory: the output arrays (items, timestamps, ratings: 16 bytes a kept row), the vocabularies, one
chunk, and one partition (about 64 bytes a row while it is sorted), sized from the limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import BuildConfig
from ..io.buffers import read_rows
from ..kernels import csr_offsets, remap_table, time_order
from ..kernels.partition import split_by_partition, user_partitions
from ..kernels.vocab import first_positions, first_seen_codes
from ..model import Log, Sequences
from ..progress import SILENT, Progress
from ..steps.missing import MissingCounts
from ..steps.vocabularies import ITEM_START, USER_START, vocabulary_from_counts
from ..vocab import Vocabulary

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
    """Codes in order of first appearance, accumulated chunk by chunk (as ``first_seen_codes`` on all rows)."""

    def __init__(self, size: int) -> None:
        self.seen = np.zeros(size, dtype=bool)
        self.parts: list[np.ndarray] = []

    def add(self, codes: np.ndarray) -> None:
        u = first_seen_codes(codes)
        new = u[~self.seen[u]]
        self.seen[new] = True
        self.parts.append(new)

    def positions(self) -> np.ndarray:
        order = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)
        return first_positions(order, len(self.seen))


@dataclass
class _Chunk:
    """Rows ``lo:lo+n`` of the spilled columns."""

    lo: int
    user: np.ndarray
    item: np.ndarray
    time_valid: np.ndarray


def _chunks(log: Log, chunk: int) -> Iterator[_Chunk]:
    for lo in range(0, log.num_rows, chunk):
        hi = lo + chunk
        yield _Chunk(lo, read_rows(log.user_codes, lo, hi), read_rows(log.item_codes, lo, hi), read_rows(log.time_valid, lo, hi))


def _count(
    log: Log, config: BuildConfig, chunk: int, progress: Progress
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray, dict[str, Any]]:
    """Pass 1: the missing-value step and the vocabularies (with their code -> index tables), from
    counts taken chunk by chunk."""
    n_users, n_items = len(log.user_ids), len(log.item_ids)
    user_counts = np.zeros(n_users, dtype=np.int64)
    item_counts = np.zeros(n_items, dtype=np.int64)
    user_first = _FirstSeen(n_users) if config.user_order == "first-seen" else None
    item_first = _FirstSeen(n_items) if config.item_order == "first-seen" else None
    seen_user = np.zeros(n_users, dtype=bool)  # ids on any row, kept or not: what the step removed entirely
    seen_item = np.zeros(n_items, dtype=bool)
    missing = MissingCounts()
    progress.phase("counting", log.num_rows, "rows")
    for c in _chunks(log, chunk):
        bad = missing.add(c.user < 0, c.item < 0, ~c.time_valid)
        seen_user[c.user[c.user >= 0]] = True
        seen_item[c.item[c.item >= 0]] = True
        u, it = c.user[~bad], c.item[~bad]
        user_counts += np.bincount(u, minlength=n_users)
        item_counts += np.bincount(it, minlength=n_items)
        if user_first is not None:
            user_first.add(u)
        if item_first is not None:
            item_first.add(it)
        progress.update(c.lo + len(bad))
    report = missing.report(log.inputs, config.strict)
    report["users_removed"] = int(seen_user.sum() - np.count_nonzero(user_counts))
    report["items_removed"] = int(seen_item.sum() - np.count_nonzero(item_counts))
    users, user_order = vocabulary_from_counts(
        user_counts, log.user_ids, config.user_order, None if user_first is None else user_first.positions(), USER_START
    )
    items, item_order = vocabulary_from_counts(
        item_counts, log.item_ids, config.item_order, None if item_first is None else item_first.positions(), ITEM_START
    )
    user_remap = remap_table(user_order, n_users, start=USER_START)
    item_remap = remap_table(item_order, n_items, start=ITEM_START)
    return users, items, user_remap, item_remap, report


class _Partitions:
    """The spilled kept rows, one set of files per user range (whole users, rows in input order)."""

    def __init__(self, folder: Path, num_parts: int, cols: tuple[str, ...], dtypes: dict[str, Any]) -> None:
        self.num_parts, self.cols, self.dtypes = num_parts, cols, dtypes
        self.paths = {(k, c): folder / f"part-{k:04d}.{c}" for k in range(num_parts) for c in cols}

    def write(self, chunks: Iterator[dict[str, np.ndarray]], part_of_user: np.ndarray) -> None:
        handles = {key: open(p, "wb") for key, p in self.paths.items()}  # noqa: SIM115 - closed below
        try:
            for values in chunks:
                order, offsets = split_by_partition(part_of_user[values["user"]], self.num_parts)
                for c in self.cols:
                    grouped = values[c][order]
                    for k in np.flatnonzero(np.diff(offsets)):
                        grouped[offsets[k] : offsets[k + 1]].tofile(handles[(int(k), c)])
        finally:
            for fh in handles.values():
                fh.close()

    def take(self, k: int) -> dict[str, np.ndarray]:
        """Partition ``k``'s columns (its files are removed once read)."""
        part = {c: np.fromfile(self.paths[(k, c)], dtype=self.dtypes[c]) for c in self.cols}
        for c in self.cols:
            self.paths[(k, c)].unlink()
        return part


def _encoded(
    log: Log, chunk: int, user_remap: np.ndarray, item_remap: np.ndarray, progress: Progress
) -> Iterator[dict[str, np.ndarray]]:
    """Pass 2's chunks: the kept rows, encoded, in input order."""
    for c in _chunks(log, chunk):
        keep = (c.user >= 0) & (c.item >= 0) & c.time_valid
        hi = c.lo + chunk
        values = {"user": user_remap[c.user[keep]], "item": item_remap[c.item[keep]], "time": read_rows(log.time, c.lo, hi)[keep]}
        if log.rating is not None:
            values["rating"] = read_rows(log.rating, c.lo, hi)[keep]
        yield values
        progress.update(c.lo + len(keep))


def spilled_sequences(
    log: Log, config: BuildConfig, folder: Path, limit: int, progress: Progress = SILENT
) -> tuple[Vocabulary, Vocabulary, Sequences, list[dict[str, Any]]]:
    """(users, items, sequences, steps) of ``log`` (spilled columns) as the local build's clean ->
    fit_vocabularies -> sequences_from give them, within about ``limit`` bytes."""
    n = log.num_rows
    fixed = log.user_ids.nbytes + log.item_ids.nbytes + 24 * (len(log.user_ids) + len(log.item_ids)) + n
    chunk = min(MAX_CHUNK_ROWS, plan_rows(limit, n, 16, fixed))
    users, items, user_remap, item_remap, report = _count(log, config, chunk, progress)
    kept = int(users.counts.sum())

    # pass 2: kept rows, in input order, into the partition of their user range
    has_rating = log.rating is not None
    part_rows = plan_rows(limit, kept, 4 + log.time.dtype.itemsize + (4 if has_rating else 0), fixed)
    part_of_user = user_partitions(users.counts, part_rows)
    num_parts = int(part_of_user[-1]) + 1 if len(part_of_user) else 0
    cols = ("user", "item", "time") + (("rating",) if has_rating else ())
    parts = _Partitions(folder, num_parts, cols, {"user": np.int32, "item": np.int32, "time": log.time.dtype, "rating": np.float32})
    progress.phase(f"partitioning into {num_parts} user ranges", n, "rows")
    parts.write(_encoded(log, chunk, user_remap, item_remap, progress), part_of_user)

    # pass 3: sort each partition into its slice of the output
    out_items = np.empty(kept, dtype=np.int32)
    out_time = np.empty(kept, dtype=log.time.dtype)
    out_rating = np.empty(kept, dtype=np.float32) if has_rating else None
    progress.phase(f"sorting {kept:,} interactions in {num_parts} user ranges", kept, "rows")
    at = 0
    for k in range(num_parts):
        part = parts.take(k)
        order = time_order(part["user"], part["time"])
        m = len(order)
        out_items[at : at + m] = part["item"][order]
        out_time[at : at + m] = part["time"][order]
        if out_rating is not None:
            out_rating[at : at + m] = part["rating"][order]
        at += m
        del part, order
        progress.update(at)
    seqs = Sequences(offsets=csr_offsets(users.counts), items=out_items, timestamps=out_time, ratings=out_rating)
    return users, items, seqs, [report]
