"""The build under ``--memory-limit``: integer columns on disk, an external sort by user range.

:func:`~seqprep.io.stream.stream_log` writes the compact columns to a spill folder. Here they are read
back in chunks to (1) run every cleaning step of :func:`seqprep.steps.clean.clean` in its order as a
keep mask (1 byte a row) with the kept rows' count tables: missing values, ``--where``, unknown
items of ``--vocab-from``, the time window and ``--min-rating`` one chunked pass each, ``--dedup``
on user-code ranges (whole users, rows in input order: every mode decides within one user), k-core
as :func:`~seqprep.kernels.filters.kcore_rounds` (``--kcore-passes``:
:func:`~seqprep.kernels.filters.kcore_pass_rounds`) on the count tables (one pass a round); (2) fit
the vocabularies from the count tables (:func:`~seqprep.steps.vocabularies.vocabularies_from_counts`;
``--user-order date`` from the log's dates read chunk by chunk) and encode the features on their
columns' kept rows with the local functions; (3) write each kept row, in input order, to the
partition of its user's index range; (4) sort each partition with the same kernel as the in-memory
build (:func:`~seqprep.kernels.time_order`) into its slice of the output. A partition holds whole
users and its rows in input order, so the stable per-partition sort equals the global stable sort:
the result is the same, byte for byte; so does each session's user (``--session-col``:
:func:`~seqprep.steps.session_key.session_users` on each partition). What needs the sorted rows
comes after: ``--item-order sequence``, token lists (gathered at each row's kept position), the
split (``--split days`` with the log's dates). The split files are then gathered and written one
row group's users at a time (:func:`split_by_ranges`).

Memory: the output arrays (items, timestamps, ratings: 16 bytes a kept row, plus the features),
the keep mask, the vocabularies and count tables, one chunk, and one partition (about 64 bytes a
row while it is sorted), sized from the limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import BuildConfig
from ..errors import needs_rating_column
from ..io.buffers import read_rows
from ..kernels import csr_offsets, fit_order, lookup, remap_table, time_order
from ..kernels.filters import KcoreTables, dedup, kcore_pass_rounds, kcore_rounds, rating_at_least, time_window
from ..kernels.partition import split_by_partition, user_partitions
from ..kernels.vocab import first_positions, first_seen_codes
from ..model import Column, Extras, Feature, Interactions, Log, Sequences
from ..output.splits import SplitWriter
from ..progress import SILENT, Progress
from ..steps import reuse, splits, train_fit
from ..steps.counts import CodeCounts
from ..steps.events import event_feature, target_codes, target_positions
from ..steps.features import encode_features, reuse_features
from ..steps.filters import empty_after, kcore_details, step_report, window_bounds
from ..steps.missing import MissingCounts
from ..steps.session_key import SessionUsers, session_users
from ..steps.vocabularies import (
    ITEM_START,
    USER_START,
    fitted,
    log_dates,
    users_by_date,
    vocabularies_from_counts,
    vocabulary_from_counts,
)
from ..steps.where import where_report, where_truth
from ..vocab import Vocabulary

__all__ = ["plan_rows", "split_by_ranges", "spilled_sequences"]

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


class _Kept:
    """The keep mask of every input row (in memory, a byte a row) and the count tables of the kept
    rows, updated step by step with one chunked pass over the spilled columns each."""

    def __init__(self, log: Log, chunk: int) -> None:
        self.log, self.chunk = log, chunk
        self.mask = np.zeros(log.num_rows, dtype=bool)
        self.counted: Callable[[_Chunk], np.ndarray] | None = None  # the rows k-core counts (--kcore-on target)
        self.degrees: tuple[np.ndarray, np.ndarray] | None = None  # their count tables, by recount
        self.users = np.zeros(len(log.user_ids), dtype=np.int64)
        self.items = np.zeros(len(log.item_ids), dtype=np.int64)

    @property
    def rows(self) -> int:
        return int(self.users.sum())

    def present(self) -> tuple[int, int]:
        return int(np.count_nonzero(self.users)), int(np.count_nonzero(self.items))

    def chunks(self) -> Iterator[_Chunk]:
        return _chunks(self.log, self.chunk)

    def recount(self, drop: Callable[[_Chunk, np.ndarray], np.ndarray]) -> None:
        """``drop(chunk, kept)``: the chunk's rows to drop among those still kept (a mask of the
        chunk); the mask and the tables are updated."""
        users = np.zeros_like(self.users)
        items = np.zeros_like(self.items)
        degree_users = None if self.counted is None else np.zeros_like(self.users)
        degree_items = None if self.counted is None else np.zeros_like(self.items)
        for c in self.chunks():
            keep = self.mask[c.lo : c.lo + len(c.user)]
            if keep.any():
                keep &= ~drop(c, keep)
            users += np.bincount(c.user[keep], minlength=len(users))
            items += np.bincount(c.item[keep], minlength=len(items))
            if self.counted is not None:
                counted = keep & self.counted(c)
                degree_users += np.bincount(c.user[counted], minlength=len(users))
                degree_items += np.bincount(c.item[counted], minlength=len(items))
        self.users, self.items = users, items
        self.degrees = None if degree_users is None else (degree_users, degree_items)

    def step(self, name: str, drop: Callable[[_Chunk, np.ndarray], np.ndarray], **details: Any) -> dict[str, Any]:
        """One cleaning step as :func:`seqprep.steps.filters.apply_filters` reports it."""
        before, (u0, i0) = self.rows, self.present()
        self.recount(drop)
        u1, i1 = self.present()
        return step_report(name, before, before - self.rows, u0 - u1, i0 - i1, **details)

    def first_codes(self, item_mask: np.ndarray, limit: int = 5) -> np.ndarray:
        """Up to ``limit`` item codes where ``item_mask`` is True, in order of their first kept row."""
        found: list[int] = []
        for c in self.chunks():
            keep = self.mask[c.lo : c.lo + len(c.user)]
            for code in first_seen_codes(c.item[keep & item_mask[np.maximum(c.item, 0)]]).tolist():
                if code not in found:
                    found.append(code)
            if len(found) >= limit:
                break
        return np.array(found[:limit], dtype=np.int64)


def _missing(kept: _Kept, config: BuildConfig, progress: Progress) -> dict[str, Any]:
    """The missing-value step: the first mask and tables."""
    log = kept.log
    seen_user = np.zeros(len(log.user_ids), dtype=bool)  # ids on any row, kept or not: what the step removed entirely
    seen_item = np.zeros(len(log.item_ids), dtype=bool)
    missing = MissingCounts()
    progress.phase("counting", log.num_rows, "rows")
    for c in kept.chunks():
        bad = missing.add(c.user < 0, c.item < 0, ~c.time_valid)
        seen_user[c.user[c.user >= 0]] = True
        seen_item[c.item[c.item >= 0]] = True
        kept.mask[c.lo : c.lo + len(bad)] = ~bad
        kept.users += np.bincount(c.user[~bad], minlength=len(kept.users))
        kept.items += np.bincount(c.item[~bad], minlength=len(kept.items))
        progress.update(c.lo + len(bad))
    report = missing.report(log.inputs, config.strict)
    report["users_removed"] = int(seen_user.sum() - np.count_nonzero(kept.users))
    report["items_removed"] = int(seen_item.sum() - np.count_nonzero(kept.items))
    return report


def _column_rows(col: Column, lo: int, hi: int) -> Column:
    """Rows ``lo:hi`` of a (spilled) column of the log."""
    if col.kind == "number":
        return Column(col.name, col.kind, read_rows(col.values, lo, hi))
    if col.kind == "text":
        assert col.codes is not None
        return Column(col.name, col.kind, col.values, codes=read_rows(col.codes, lo, hi))
    return col.take(np.arange(lo, hi))


def _where(kept: _Kept, predicates: tuple[str, ...]) -> dict[str, Any]:
    """``--where``: the predicates evaluated chunk by chunk (a row's truth is its own)."""
    log = kept.log
    unknown = [0]

    def untrue(c: _Chunk, keep: np.ndarray) -> np.ndarray:
        hi = c.lo + len(c.user)
        rating = None if log.rating is None else read_rows(log.rating, c.lo, hi)
        columns = tuple(_column_rows(col, c.lo, hi) for col in log.columns)
        rows = Interactions(user=c.user, item=c.item, time=read_rows(log.time, c.lo, hi), rating=rating, columns=columns)
        true, known = where_truth(log, rows, predicates)
        if known is not None:
            unknown[0] += int(np.count_nonzero(keep & ~known))
        return ~true

    before, (u0, i0) = kept.rows, kept.present()
    kept.recount(untrue)
    u1, i1 = kept.present()
    return where_report(predicates, before, before - kept.rows, u0 - u1, i0 - i1, unknown[0])


def _dedup(kept: _Kept, mode: str, folder: Path, limit_rows: int) -> None:
    """``--dedup``: the kernel run on user-code ranges (whole users, rows in input order), which is
    the kernel run on all rows (every mode decides within one user)."""
    log = kept.log
    part_of_user = user_partitions(kept.users, limit_rows)
    num_parts = int(part_of_user[-1]) + 1 if len(part_of_user) else 0
    cols = ("row", "user", "item", "time") + (("rating",) if log.rating is not None else ())
    dtypes = {"row": np.int64, "user": np.int32, "item": np.int32, "time": log.time.dtype, "rating": np.float32}
    parts = _Partitions(folder, num_parts, cols, dtypes, prefix="dedup")

    def rows() -> Iterator[dict[str, np.ndarray]]:
        for c in kept.chunks():
            keep = kept.mask[c.lo : c.lo + len(c.user)]
            hi = c.lo + len(c.user)
            values = {"row": np.flatnonzero(keep) + c.lo, "user": c.user[keep], "item": c.item[keep], "time": read_rows(log.time, c.lo, hi)[keep]}
            if log.rating is not None:
                values["rating"] = read_rows(log.rating, c.lo, hi)[keep]
            yield values

    parts.write(rows(), part_of_user)
    for k in range(num_parts):
        part = parts.take(k)
        keep = dedup(part["user"], part["item"], part["time"], part.get("rating"), mode)  # type: ignore[arg-type]
        kept.mask[part["row"][~keep]] = False
        del part, keep


def _clean(log: Log, config: BuildConfig, chunk: int, folder: Path, part_rows: int, progress: Progress) -> tuple[_Kept, list[dict[str, Any]]]:
    """Every row-removing step of :func:`seqprep.steps.clean.clean`, in its order, as a keep mask
    over the spilled rows: the same rows and the same reports."""
    kept = _Kept(log, chunk)
    steps = [_missing(kept, config, progress)]
    if config.filter.where:
        progress.phase("where")
        steps.append(_where(kept, config.filter.where))
    if config.vocab.vocab_from is not None:
        drop, unknown = reuse.unknown_items_counted(log, kept.items, config, kept.first_codes)
        if drop is not None:
            kept.recount(lambda c, keep: drop[np.maximum(c.item, 0)])
        steps.append(unknown)
    opts = config.filter
    if opts.since is not None or opts.until is not None:
        progress.phase("time window")
        since, until = window_bounds(opts, log.time_unit)
        details = {"since": since, "until": until, "time_unit": log.time_unit, "rule": "since <= t < until"}
        steps.append(kept.step("time_window", lambda c, keep: ~time_window(read_rows(log.time, c.lo, c.lo + len(c.user)), since, until), **details))
        if kept.rows == 0:
            raise empty_after("time_window", opts)
    if opts.min_rating is not None:
        if log.rating is None:
            raise needs_rating_column()
        progress.phase("min rating")
        nan = [0]

        def low(c: _Chunk, keep: np.ndarray) -> np.ndarray:
            r = read_rows(log.rating, c.lo, c.lo + len(c.user))
            if r.dtype.kind == "f":
                nan[0] += int(np.count_nonzero(np.isnan(r[keep])))
            return ~rating_at_least(r, opts.min_rating)

        before, (u0, i0) = kept.rows, kept.present()
        kept.recount(low)
        u1, i1 = kept.present()
        steps.append(step_report("min_rating", before, before - kept.rows, u0 - u1, i0 - i1, min_rating=opts.min_rating, missing_rating=nan[0]))
        if kept.rows == 0:
            raise empty_after("min_rating", opts)
    if opts.dedup != "none":
        progress.phase(f"dedup {opts.dedup}")
        before, (u0, i0) = kept.rows, kept.present()
        _dedup(kept, opts.dedup, folder, part_rows)
        kept.recount(lambda c, keep: np.zeros(len(keep), dtype=bool))
        u1, i1 = kept.present()
        steps.append(step_report("dedup", before, before - kept.rows, u0 - u1, i0 - i1, mode=opts.dedup))
    if opts.kcore_passes:
        progress.phase("k-core passes")
        before, (u0, i0) = kept.rows, kept.present()

        def remove_pass(bad_u: np.ndarray, bad_i: np.ndarray) -> tuple[int, KcoreTables]:
            rows = kept.rows
            kept.recount(lambda c, keep: bad_u[c.user] | bad_i[c.item])
            return rows - kept.rows, KcoreTables(kept.users, kept.items, kept.users, kept.items)

        tables_now = KcoreTables(kept.users, kept.items, kept.users, kept.items)
        passes = kcore_pass_rounds(tables_now, remove_pass, opts.kcore_passes, min_user=opts.min_user_count, min_item=opts.min_item_count)
        u1, i1 = kept.present()
        details = {"min_user_count": opts.min_user_count, "min_item_count": opts.min_item_count, "passes": passes}
        steps.append(step_report("kcore", before, before - kept.rows, u0 - u1, i0 - i1, **details))
        if kept.rows == 0:
            raise empty_after("kcore", opts)
    elif opts.min_user_count > 1 or opts.min_item_count > 1:
        progress.phase("k-core")
        before, (u0, i0) = kept.rows, kept.present()

        if config.event.kcore_on == "target":  # only target events count towards the bounds
            col = log.column(config.event.event_col)  # type: ignore[arg-type]
            assert col.codes is not None
            wanted = target_codes(col, config.event)
            kept.counted = lambda c: np.isin(read_rows(col.codes, c.lo, c.lo + len(c.user)), wanted)  # type: ignore[arg-type]
            kept.recount(lambda c, keep: np.zeros(len(keep), dtype=bool))

        def tables() -> KcoreTables:
            du, di = (kept.users, kept.items) if kept.degrees is None else kept.degrees
            return KcoreTables(kept.users, kept.items, du, di)

        def remove(bad_u: np.ndarray, bad_i: np.ndarray) -> tuple[int, KcoreTables]:
            rows = kept.rows
            kept.recount(lambda c, keep: bad_u[c.user] | bad_i[c.item])
            return rows - kept.rows, tables()

        tables_now = tables()
        rounds, fixpoint = kcore_rounds(
            tables_now, remove, min_user=opts.min_user_count, min_item=opts.min_item_count, max_rounds=opts.kcore_rounds
        )
        u1, i1 = kept.present()
        steps.append(step_report("kcore", before, before - kept.rows, u0 - u1, i0 - i1, **kcore_details(opts, rounds, fixpoint)))
        if kept.rows == 0:
            raise empty_after("kcore", opts)
    return kept, steps


def _vocabularies(kept: _Kept, config: BuildConfig) -> tuple[Vocabulary, Vocabulary | None, np.ndarray, np.ndarray]:
    """The vocabularies of the kept rows (fitted, or reused with ``--vocab-from``) and their code ->
    index tables, from the count tables. ``--user-order date`` orders the users by the log's dates
    (read chunk by chunk); ``--item-order sequence`` needs the sorted rows: the items are then None
    and their table maps each code to ``code + ITEM_START`` (see :func:`_items_in_sequence_order`)."""
    log = kept.log
    counts = _code_counts(kept, config)
    if config.vocab.vocab_from is not None or (config.user_order != "date" and config.item_order != "sequence"):
        return vocabularies_from_counts(log, config, counts)
    if config.user_order == "date":
        user_chosen, user_counts = users_by_date(counts.users, log, kept.chunk)
        users = fitted(log.user_ids, user_chosen, user_counts, USER_START)
    else:
        users, user_chosen = vocabulary_from_counts(counts.users, log.user_ids, config.user_order, counts.user_first, USER_START)
    user_table = remap_table(user_chosen, len(log.user_ids), start=USER_START)
    if config.item_order == "sequence":
        return users, None, user_table, np.arange(ITEM_START, len(log.item_ids) + ITEM_START, dtype=np.int32)
    items, item_chosen = vocabulary_from_counts(counts.items, log.item_ids, config.item_order, counts.item_first, ITEM_START)
    return users, items, user_table, remap_table(item_chosen, len(log.item_ids), start=ITEM_START)


def _items_in_sequence_order(codes: np.ndarray, log: Log, rows: np.ndarray | None = None) -> tuple[Vocabulary, np.ndarray]:
    """``--item-order sequence`` on the sorted rows (``codes``: item code + ITEM_START, in the output
    order; ``rows``: a mask of those to fit on): items by first appearance reading the sequences, as
    :func:`~seqprep.steps.vocabularies.item_order_of` orders them -> (items, their indices per row)."""
    codes = codes - ITEM_START
    chosen, counts = fit_order(codes if rows is None else codes[rows], log.item_ids, "first-seen")
    return fitted(log.item_ids, chosen, counts, ITEM_START), lookup(remap_table(chosen, len(log.item_ids), start=ITEM_START), codes)


def _user_dates(log: Log, user_table: np.ndarray, present: np.ndarray, num_users: int, chunk: int) -> np.ndarray:
    """``--split days``: the date of every user index, as :func:`~seqprep.steps.splits.sequence_dates`
    gives it (``user_table``: code -> index; ``present``: the kept rows per user code)."""
    by_code, _ = log_dates(log, "--split days", chunk)
    codes = np.flatnonzero(present)
    dates = np.zeros(num_users, dtype=np.int64)
    dates[user_table[codes] - USER_START] = by_code[codes]
    return dates


class _Sessions:
    """``--session-col``: :func:`~seqprep.steps.session_key.session_users` run on each user range
    before its sort (a range holds whole sessions, rows in input order: the same first user of each
    session as over all rows), the ranges' results merged."""

    COLUMN = "session_user"

    def __init__(self, log: Log) -> None:
        self.log = log
        self.users = log.column(log.inputs[0].columns["user"])
        assert self.users.codes is not None
        self.first = np.full(len(log.user_ids), -1, dtype=np.int64)  # by user index
        self.several = 0
        self.seen = np.zeros(len(self.users.values), dtype=bool)

    @staticmethod
    def of(log: Log) -> _Sessions | None:
        return _Sessions(log) if log.inputs and "session" in log.inputs[0].columns else None

    def add(self, part: dict[str, np.ndarray]) -> None:
        codes = part.pop(self.COLUMN)
        users = Column(self.users.name, "text", self.users.values, codes=codes)
        found = session_users(self.log, Interactions(part["user"], part["item"], part["time"], None, (users,)))
        assert found is not None
        has = found.first >= 0
        self.first[has] = found.first[has]
        self.several += found.several
        self.seen[codes[codes >= 0]] = True

    def result(self, user_table: np.ndarray) -> SessionUsers:
        """The merged result, by user code (``user_table``: code -> the index the ranges were sorted by)."""
        codes = np.flatnonzero(user_table >= 0)
        first = np.full(len(self.log.user_ids), -1, dtype=np.int64)
        first[codes] = self.first[user_table[codes] - USER_START]
        column = self.log.inputs[0].columns["session"]
        return SessionUsers(column, self.users, first, self.several, int(np.count_nonzero(self.seen)))


class _Partitions:
    """The spilled kept rows, one set of files per user range (whole users, rows in input order)."""

    def __init__(self, folder: Path, num_parts: int, cols: tuple[str, ...], dtypes: dict[str, Any], prefix: str = "part") -> None:
        self.num_parts, self.cols, self.dtypes = num_parts, cols, dtypes
        self.paths = {(k, c): folder / f"{prefix}-{k:04d}.{c}" for k in range(num_parts) for c in cols}

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
    kept: _Kept,
    user_remap: np.ndarray,
    item_remap: np.ndarray,
    progress: Progress,
    with_rows: bool = False,
    features: tuple[Feature, ...] = (),
    sessions: _Sessions | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Pass 2's chunks: the kept rows, encoded, in input order (with their input row numbers, the
    features' values of the kept rows, given in input order, and the session's user codes)."""
    log = kept.log
    at = 0  # kept rows so far
    for c in kept.chunks():
        keep = kept.mask[c.lo : c.lo + len(c.user)]
        hi = c.lo + len(c.user)
        values = {"user": user_remap[c.user[keep]], "item": item_remap[c.item[keep]], "time": read_rows(log.time, c.lo, hi)[keep]}
        if log.rating is not None:
            values["rating"] = read_rows(log.rating, c.lo, hi)[keep]
        if with_rows:
            values["row"] = np.flatnonzero(keep) + c.lo
        m = len(values["user"])
        for k, f in enumerate(_flat(features)):
            values[f"feature{k}"] = f.values[at : at + m]
        if len(_flat(features)) < len(features):  # token lists: gathered after the sort at these positions
            values["kept"] = np.arange(at, at + m, dtype=np.int64)
        if sessions is not None:
            values[sessions.COLUMN] = read_rows(sessions.users.codes, c.lo, hi)[keep]  # type: ignore[arg-type]
        at += m
        yield values
        progress.update(c.lo + len(keep))


def spilled_sequences(
    log: Log, config: BuildConfig, folder: Path, limit: int, progress: Progress = SILENT
) -> tuple[Vocabulary, Vocabulary, Sequences, list[dict[str, Any]], np.ndarray | None, dict[str, Any], SessionUsers | None]:
    """(users, items, sequences, steps, part, info, session users) of ``log`` (spilled columns) as
    the local build's clean -> session_users -> fit_vocabularies -> sequences_from -> decide_parts
    give them (with ``--vocab-from-train``: as :func:`seqprep.steps.splits.fit_on_train`), within
    about ``limit`` bytes."""
    n = log.num_rows
    fixed = log.user_ids.nbytes + log.item_ids.nbytes + 40 * (len(log.user_ids) + len(log.item_ids)) + 2 * n  # ids, tables, masks
    chunk = min(MAX_CHUNK_ROWS, plan_rows(limit, n, 16, fixed))
    rows, steps = _clean(log, config, chunk, folder, plan_rows(limit, n, 0, fixed), progress)
    if config.split.vocab_from_train:
        users, items, seqs, part, info, keyed = _fit_on_train(rows, config, steps, folder, limit, fixed, chunk, progress)
        return users, items, seqs, steps, part, info, keyed
    users, fitted_items, user_remap, item_remap = _vocabularies(rows, config)
    features = _features(rows, config)
    sessions = _Sessions.of(log)
    present = rows.users
    out = _sort_by_ranges(rows, user_remap, item_remap, users.counts, folder, limit, fixed, progress, features=features, sessions=sessions)
    del rows
    if fitted_items is None:  # --item-order sequence: fitted on the sorted rows
        fitted_items, out["item"] = _items_in_sequence_order(out["item"], log)
    items = fitted_items
    sorted_features = _sorted_features(features, out)
    del features
    seqs = Sequences(
        offsets=csr_offsets(users.counts), items=out["item"], timestamps=out["time"], ratings=out.get("rating"), features=sorted_features
    )
    targets = target_positions(seqs, config.event)
    dates = _user_dates(log, user_remap, present, len(users), chunk) if config.split.rule == "days" else None
    part, info = splits.decide_parts(seqs.offsets, seqs.timestamps, config.split, log.time_unit, targets, dates)
    keyed = None if sessions is None else sessions.result(user_remap)
    return users, items, seqs, steps, part, info, keyed


def _features(kept: _Kept, config: BuildConfig, interaction: bool = True) -> tuple[Feature, ...]:
    """The ``--feature`` (unless not ``interaction``) and ``--event-col`` features of the kept rows
    (input order), encoded by the local build's own functions on the kept rows of their columns (4
    bytes a row each while the rows are sorted, 1 or 2 for a small vocabulary; token lists are
    gathered after the sort instead)."""
    specs = config.feature.specs() if interaction else ()
    names = {column for _, column, _, _ in specs} | ({config.event.event_col} if config.event.event_col else set())
    if not names:
        return ()
    inter = _with_columns(_kept_columns(kept.log, names, kept.mask, kept.chunk))
    features = encode_features(inter, config.feature, config.item_order, config.vocab) if interaction else ()
    return features + reuse_features(event_feature(inter, config.event, config.item_order), config.vocab)


def _with_columns(columns: tuple[Column, ...]) -> Interactions:
    none = np.zeros(0, dtype=np.int32)
    return Interactions(user=none, item=none, time=none, rating=None, columns=columns)


def _kept_columns(log: Log, names: set[str], mask: np.ndarray, chunk: int) -> tuple[Column, ...]:
    """The log's columns ``names`` at the rows where ``mask`` is True, in input order, read a chunk
    of rows at a time."""
    columns = []
    for col in log.columns:
        if col.name not in names:
            continue
        n = log.num_rows
        parts = [_column_rows(col, lo, min(lo + chunk, n)).take(mask[lo : lo + chunk]) for lo in range(0, n, chunk)]
        columns.append(_joined_column(col, parts))
    return tuple(columns)


def _joined_column(col: Column, parts: list[Column]) -> Column:
    """Consecutive row ranges of ``col`` as one column."""
    if col.kind == "number":
        return Column(col.name, "number", np.concatenate([p.values for p in parts]) if parts else np.zeros(0))
    codes = np.concatenate([p.codes for p in parts]) if parts else np.zeros(0, np.int32)  # type: ignore[misc]
    if col.kind == "text":
        return Column(col.name, "text", col.values, codes=codes)
    return Column(col.name, col.kind, col.values, codes=codes, offsets=train_fit.joined_offsets([p.offsets for p in parts]))  # type: ignore[misc]


def _sorted_features(features: tuple[Feature, ...], out: dict[str, np.ndarray]) -> tuple[Feature, ...]:
    """The features in the sorted order: each one-value-a-row feature is a sorted column of ``out``
    (``feature<k>``, in the order of :func:`_flat`), a token-list one is gathered at ``out["kept"]``
    (each sorted row's position among the kept rows)."""
    flat = iter(range(len(features)))
    result = []
    for f in features:
        if f.offsets is None:
            result.append(dataclasses.replace(f, values=out.pop(f"feature{next(flat)}")).widened())
        else:
            result.append(f.take(out["kept"]).widened())
    out.pop("kept", None)
    return tuple(result)


def _flat(features: tuple[Feature, ...]) -> tuple[Feature, ...]:
    """The features with one value a row: they go through the partitions as columns."""
    return tuple(f for f in features if f.offsets is None)


def _sort_by_ranges(
    rows: _Kept,
    user_remap: np.ndarray,
    item_remap: np.ndarray,
    user_counts: np.ndarray,
    folder: Path,
    limit: int,
    fixed: int,
    progress: Progress,
    with_rows: bool = False,
    features: tuple[Feature, ...] = (),
    sessions: _Sessions | None = None,
) -> dict[str, np.ndarray]:
    """The kept rows sorted by (user index, time), stably: pass 2 writes them, in input order, to
    the partition of their user's index range; pass 3 sorts each partition into its slice of the
    output. -> the sorted columns (``item``, ``time``, ``rating``; ``row``, the input row, with
    ``with_rows``). ``sessions`` sees each range before its sort."""
    log = rows.log
    kept = int(np.asarray(user_counts).sum())
    has_rating = log.rating is not None
    flat = _flat(features)
    feature_cols = tuple(f"feature{k}" for k in range(len(flat))) + (("kept",) if len(flat) < len(features) else ())
    side = (sessions.COLUMN,) if sessions is not None else ()  # partitioned, not in the output
    cols = ("user", "item", "time") + (("rating",) if has_rating else ()) + (("row",) if with_rows else ()) + feature_cols + side
    dtypes = {"user": np.int32, "item": np.int32, "time": log.time.dtype, "rating": np.float32, "row": np.int64, "kept": np.int64}
    dtypes.update({name: f.values.dtype for name, f in zip(feature_cols, flat)})
    dtypes[_Sessions.COLUMN] = np.int32
    part_rows = plan_rows(limit, kept, sum(np.dtype(dtypes[c]).itemsize for c in cols if c != "user" and c not in side), fixed)
    part_of_user = user_partitions(user_counts, part_rows)
    num_parts = int(part_of_user[-1]) + 1 if len(part_of_user) else 0
    parts = _Partitions(folder, num_parts, cols, dtypes)
    progress.phase(f"partitioning into {num_parts} user ranges", log.num_rows, "rows")
    parts.write(_encoded(rows, user_remap, item_remap, progress, with_rows, features, sessions), part_of_user)

    out = {c: np.empty(kept, dtype=dtypes[c]) for c in cols if c != "user" and c not in side}
    progress.phase(f"sorting {kept:,} interactions in {num_parts} user ranges", kept, "rows")
    at = 0
    for k in range(num_parts):
        part = parts.take(k)
        if sessions is not None:
            sessions.add(part)
        order = time_order(part["user"], part["time"])
        m = len(order)
        for c, arr in out.items():
            arr[at : at + m] = part[c][order]
        at += m
        del part, order
        progress.update(at)
    return out


def _fit_on_train(
    rows: _Kept, config: BuildConfig, steps: list[dict[str, Any]], folder: Path, limit: int, fixed: int, chunk: int, progress: Progress
) -> tuple[Vocabulary, Vocabulary, Sequences, np.ndarray, dict[str, Any], SessionUsers | None]:
    """``--vocab-from-train`` on the spilled rows, as :func:`seqprep.steps.splits.fit_on_train`:
    users numbered on all kept rows, rows sorted, the split decided (on the target events); then the
    range steps of :mod:`seqprep.steps.train_fit` on user ranges of about ``chunk`` rows: the item
    vocabulary fitted on the TRAIN rows, held-out rows of items unseen in training dropped (step
    ``vocab_from_train``), users renumbered on the rows left (each user's rows in their stable time
    order); the ``--feature`` vocabularies refitted on the TRAIN rows of the rows left
    (:func:`~seqprep.steps.splits.refit_features`). Holds the sorted rows with their input row
    numbers (24 bytes a kept row more than a plain build)."""
    log = rows.log
    n_users, n_items = len(log.user_ids), len(log.item_ids)
    counts = _code_counts(rows, config)
    if config.user_order == "date":
        order1, counts1 = users_by_date(counts.users, log, chunk)
        users1 = fitted(log.user_ids, order1, counts1, USER_START)
    else:
        users1, order1 = vocabulary_from_counts(counts.users, log.user_ids, config.user_order, counts.user_first, USER_START)
    remap1 = remap_table(order1, n_users, start=USER_START)
    identity = np.arange(ITEM_START, n_items + ITEM_START, dtype=np.int32)  # items as codes until their vocabulary exists
    events = _features(rows, config, interaction=False)  # the --feature ones are encoded on the rows left
    sessions = _Sessions.of(log)
    present = rows.users
    out = _sort_by_ranges(
        rows, remap1, identity, users1.counts, folder, limit, fixed, progress, with_rows=True, features=events, sessions=sessions
    )
    keyed = None if sessions is None else sessions.result(remap1)
    del rows
    by_pos = list(_sorted_features(events, out))
    del events
    offsets1 = csr_offsets(users1.counts)
    sorted1 = Sequences(offsets=offsets1, items=out["item"], timestamps=out["time"], ratings=None, features=tuple(by_pos))
    dates = _user_dates(log, remap1, present, len(users1), chunk) if config.split.rule == "days" else None
    part, info = splits.decide_parts(offsets1, out["time"], config.split, log.time_unit, target_positions(sorted1, config.event), dates)
    del sorted1
    assert part is not None
    codes = out.pop("item") - ITEM_START
    ranges = _user_ranges(offsets1, chunk)
    row = out["row"]

    def rows_of(u0: int, u1: int) -> slice:
        return slice(int(offsets1[u0]), int(offsets1[u1]))

    items, item_table = train_fit.fit_train_items(
        (train_fit.train_tally(codes[rows_of(*r)], part[rows_of(*r)], config.item_order, row[rows_of(*r)]) for r in ranges),
        log.item_ids,
        config.item_order,
    )
    iidx = lookup(item_table, codes)
    del codes
    keep = iidx >= 0
    steps.append(train_fit.unseen_step(train_fit.unseen_counts(~keep[rows_of(*r)], part[rows_of(*r)]) for r in ranges))
    left = [
        train_fit.left_tally(offsets1[u0 : u1 + 1] - offsets1[u0], keep[rows_of(u0, u1)], config.user_order, row[rows_of(u0, u1)]) for u0, u1 in ranges
    ]
    users, old = train_fit.users_after(order1, left, log.user_ids, config.user_order)
    offsets, pos = train_fit.regrouped(np.concatenate([t.counts for t in left]) if left else np.zeros(0, np.int64), old)
    del left, row
    if not keep.all():
        iidx, part = iidx[keep], part[keep]
        out = {c: arr[keep] for c, arr in out.items()}
        by_pos = [f.take(keep) for f in by_pos]
    del keep
    part = part[pos]
    refitted = _refitted(log, config, out["row"][pos], part, chunk)
    seqs = Sequences(
        offsets=offsets,
        items=iidx[pos],
        timestamps=out["time"][pos],
        ratings=None if "rating" not in out else out["rating"][pos],
        features=refitted + tuple(train_fit.recounted(f.take(pos).widened()) for f in by_pos),  # (the event feature: counts of the rows left)
    )
    splits.hold_out_test_starts(seqs.offsets, part, info)
    return users, items, seqs, part, info, keyed


def _refitted(log: Log, config: BuildConfig, row: np.ndarray, part: np.ndarray, chunk: int) -> tuple[Feature, ...]:
    """The ``--feature`` features of the rows left (``row``: their input rows, in the output order;
    ``part``: their split) as :func:`~seqprep.steps.splits.fit_on_train` encodes them: encoded on
    these rows in input order (their columns read back chunk by chunk), refitted on the TRAIN rows
    (:func:`~seqprep.steps.splits.refit_features`)."""
    names = {column for _, column, _, _ in config.feature.specs()}
    if not names:
        return ()
    mask = np.zeros(log.num_rows, dtype=bool)
    mask[row] = True
    inter = _with_columns(_kept_columns(log, names, mask, chunk))
    del mask
    encoded = encode_features(inter, config.feature, config.item_order)
    return tuple(f.widened() for f in splits.refit_features(encoded, row, part, config.item_order))


def _user_ranges(offsets: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """Consecutive user ranges ``(u0, u1)`` of about ``rows`` rows each (whole users), covering all."""
    num_users = len(offsets) - 1
    if num_users == 0:
        return []
    starts = np.unique(np.searchsorted(offsets, np.arange(0, int(offsets[-1]), max(1, rows)), side="right") - 1)
    bounds = np.unique(np.concatenate([[0], starts[(starts > 0) & (starts < num_users)], [num_users]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _code_counts(kept: _Kept, config: BuildConfig) -> CodeCounts:
    """The kept rows' count tables, with first-seen positions taken chunk by chunk where needed."""
    log = kept.log
    user_first = _FirstSeen(len(log.user_ids)) if config.user_order == "first-seen" else None
    item_first = _FirstSeen(len(log.item_ids)) if config.item_order == "first-seen" else None
    if user_first is not None or item_first is not None:
        for c in kept.chunks():
            keep = kept.mask[c.lo : c.lo + len(c.user)]
            if user_first is not None:
                user_first.add(c.user[keep])
            if item_first is not None:
                item_first.add(c.item[keep])
    return CodeCounts(
        users=kept.users,
        items=kept.items,
        user_first=None if user_first is None else user_first.positions(),
        item_first=None if item_first is None else item_first.positions(),
    )


def split_by_ranges(
    seqs: Sequences,
    users: Vocabulary,
    items: Vocabulary,
    part: np.ndarray | None,
    info: dict[str, Any],
    config: BuildConfig,
    out: Callable[[], Path],
    spill: Path,
    targets: np.ndarray | None = None,
) -> tuple[Sequences, Extras | None, dict[str, Any]]:
    """The split (``part``, decided over all users) gathered and written user range by user range
    into the folder ``out()`` (the row groups of sequences.parquet; NPZ members gathered in
    ``spill``): (the sequences to write, the extras left for the final writes - sequences.npz's
    ``padded`` - and meta.json's split entries). The same bytes as
    :func:`seqprep.steps.splits.prepare` and the writers give from every user at once, holding one
    range's split rows at a time."""
    plan = splits.decided_plan(config.split, len(items), info, seqs.offsets)
    if not plan.wanted(part):
        return seqs, None, {}
    assert plan.groups is not None
    ranges = list(zip(plan.groups[:-1].tolist(), plan.groups[1:].tolist()))

    def parts_of(u0: int, u1: int) -> tuple[Sequences, np.ndarray | None, np.ndarray | None]:
        lo, hi = int(seqs.offsets[u0]), int(seqs.offsets[u1])
        return splits.user_range(seqs, u0, u1), None if part is None else part[lo:hi], None if targets is None else targets[lo:hi]

    plan = plan.with_facts(splits.merge_tallies(splits.range_facts(plan, *parts_of(u0, u1)) for u0, u1 in ranges))
    splits.check_negatives(plan, (splits.negatives_facts(plan, *parts_of(u0, u1), user0=u0) for u0, u1 in ranges))  # before any write
    tallies, padded, padded_features = [], [], []
    srgnn: list[Extras] = []  # --export srgnn: each range's training rows and test rows
    with SplitWriter(out(), config.formats, users, spill) as writer:  # on an error: no split file left
        for u0, u1 in ranges:
            _, ex, tally = splits.prepare_range(plan, *parts_of(u0, u1), user0=u0)
            assert ex is not None
            tallies.append(tally)
            if "srgnn" in config.emit.exports and ex.test is not None:
                srgnn.append(Extras(train_offsets=ex.train_offsets, train_items=ex.train_items, test=ex.test))
            if ex.padded is not None:
                padded.append(ex.padded)
                padded_features.append(ex.padded_features)
            writer.add(dataclasses.replace(ex, padded=None, padded_features=()), u0, u1)
            del ex
        meta = splits.split_meta(plan, tallies)  # may refuse: the writer then removes its files
    seqs = splits.final_sequences(seqs, config.split)
    joined = tuple(_joined_cells(cells) for cells in zip(*padded_features))
    extras = Extras(
        padded=np.concatenate(padded) if padded else None,
        padded_features=joined,
        max_len=config.split.max_len,
        pad=config.split.pad,
        srgnn=train_fit.srgnn_rows(srgnn) if srgnn else None,
    )
    return seqs, extras, meta


def _joined_cells(parts: tuple[Feature, ...]) -> Feature:
    """One feature's padded cells of consecutive user ranges as one (a token feature's cells are lists)."""
    values = np.concatenate([f.values for f in parts])
    if parts[0].offsets is None:
        return dataclasses.replace(parts[0], values=values)
    return dataclasses.replace(parts[0], values=values, offsets=train_fit.joined_offsets([f.offsets for f in parts]))  # type: ignore[misc]
