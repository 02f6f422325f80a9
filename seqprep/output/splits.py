"""The split's files: train/valid/test (Parquet and/or NPZ, as ``-f`` asks) and windows.npz.

What goes in them is decided by :mod:`seqprep.steps.splits`; this only writes it. The Parquet files
are written in row groups of whole users: the users of each row group of sequences.parquet
(``Extras.groups``), so a build that has the extras of one user range at a time (``--memory-limit``,
:class:`SplitWriter`) writes the same bytes as one that has them all (:func:`write_extras`).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..io.buffers import FileBuffer, read_rows
from ..io.sources import sha256_file
from ..kernels import padded
from ..kernels.arrow import from_numpy
from ..model import BuildResult, EvalRows, Extras, LargeLists
from ..vocab import Vocabulary
from .files import NpyChunks, SequencesWriter, feature_arrays, feature_column, feature_lists, list_array, write_npz

__all__ = ["SplitWriter", "extras_range", "write_extras"]

EVALS = ("valid", "test")


def _train_table(users: Vocabulary, ex: Extras, large: LargeLists) -> pa.Table:
    assert ex.train_offsets is not None and ex.train_items is not None and ex.train_timestamps is not None
    cols: dict[str, Any] = {
        "user_idx": from_numpy(ex.train_user_idx, pa.int32()),
        "user_id": users.ids.take(from_numpy(ex.train_user_idx)),
        "items": list_array(ex.train_offsets, ex.train_items, large.train),
        "timestamps": list_array(ex.train_offsets, ex.train_timestamps, large.train),
    }
    for f in ex.train_features:
        cols[f.name] = feature_lists(ex.train_offsets, f, large.train)
    return pa.table(cols)


def _eval_table(users: Vocabulary, ev: EvalRows, large_history: bool, large_negatives: bool) -> pa.Table:
    cols: dict[str, Any] = {
        "user_idx": from_numpy(ev.user_idx, pa.int32()),
        "user_id": users.ids.take(from_numpy(ev.user_idx)),
        "history": list_array(ev.history_offsets, ev.history, large_history),
        "target": from_numpy(ev.target, pa.int32()),
        "target_ts": from_numpy(ev.target_ts),
    }
    if ev.negatives is not None:
        k = ev.negatives.shape[1]
        cols["negatives"] = list_array(np.arange(len(ev) + 1, dtype=np.int64) * k, ev.negatives.ravel(), large_negatives)
    for hf, tf in zip(ev.history_features, ev.target_features):
        cols[f"history_{hf.name}"] = feature_lists(ev.history_offsets, hf, large_history)
        cols[f"target_{tf.name}"] = feature_column(tf)
    return pa.table(cols)


def _parquet_names(ex: Extras) -> list[str]:
    """The split's Parquet files (none without a split)."""
    if ex.train_offsets is None:
        return []
    return ["train"] + [name for name in EVALS if getattr(ex, name) is not None]


def _table(name: str, users: Vocabulary, ex: Extras, large: LargeLists) -> pa.Table:
    """The table of one split file for one row group's extras."""
    if name == "train":
        return _train_table(users, ex, large)
    k = EVALS.index(name)
    return _eval_table(users, getattr(ex, name), large.history[k], large.negatives[k])


def _slice_eval(ev: EvalRows, u0: int, u1: int) -> EvalRows:
    r0, r1 = np.searchsorted(ev.user_idx, [u0, u1]).tolist()
    h0, h1 = int(ev.history_offsets[r0]), int(ev.history_offsets[r1])
    return EvalRows(
        user_idx=ev.user_idx[r0:r1],
        target=ev.target[r0:r1],
        target_ts=ev.target_ts[r0:r1],
        history_offsets=ev.history_offsets[r0 : r1 + 1] - h0,
        history=ev.history[h0:h1],
        negatives=None if ev.negatives is None else ev.negatives[r0:r1],
        history_features=tuple(f.slice(h0, h1) for f in ev.history_features),
        target_features=tuple(f.slice(r0, r1) for f in ev.target_features),
    )


def extras_range(ex: Extras, u0: int, u1: int) -> Extras:
    """The train/valid/test rows of users ``u0 <= u < u1`` of the extras of every user (views)."""
    if ex.train_user_idx is None:
        return ex
    assert ex.train_offsets is not None and ex.train_items is not None and ex.train_timestamps is not None
    r0, r1 = np.searchsorted(ex.train_user_idx, [u0, u1]).tolist()
    t0, t1 = int(ex.train_offsets[r0]), int(ex.train_offsets[r1])
    return Extras(
        train_user_idx=ex.train_user_idx[r0:r1],
        train_offsets=ex.train_offsets[r0 : r1 + 1] - t0,
        train_items=ex.train_items[t0:t1],
        train_timestamps=ex.train_timestamps[t0:t1],
        train_features=tuple(f.slice(t0, t1) for f in ex.train_features),
        valid=None if ex.valid is None else _slice_eval(ex.valid, u0, u1),
        test=None if ex.test is None else _slice_eval(ex.test, u0, u1),
    )


class _GroupedParquet:
    """One split file written a row group at a time; a file with no row gets the schema of the last
    (empty) table it was given."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.writer = SequencesWriter(path, threads)
        self.rows = 0
        self.last: pa.Table | None = None

    def add(self, table: pa.Table) -> None:
        self.last = table
        if table.num_rows:
            self.writer.write(table)
            self.rows += table.num_rows

    def close(self) -> None:
        try:
            if self.rows == 0 and self.last is not None:
                self.writer.write(self.last)
        finally:
            self.writer.close()

    def abort(self) -> None:
        """Close the file and remove it (a failed build)."""
        try:
            self.writer.close()
        finally:
            self.writer.path.unlink(missing_ok=True)


def _groups(ex: Extras, num_users: int) -> list[tuple[int, int]]:
    bounds = ex.groups if ex.groups is not None else np.array([0, num_users])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def write_extras(result: BuildResult, folder: Path) -> dict[str, str]:
    """Write train/valid/test (Parquet and/or NPZ, as ``-f`` asks) and windows.npz into ``folder``
    from the extras of every user (``result.extras``); -> the sha256 of the Parquet files by name
    (each hashed by the thread that wrote it, as soon as it is closed)."""
    ex: Extras | None = result.extras
    if ex is None:
        return {}
    formats = result.config.formats
    # the Parquet files are encoded on two threads, a file each; a file alone has its row groups
    # encoded on two threads instead (SequencesWriter): with two files or more, one thread a file
    # costs less CPU for the same wall time (no file put together from pieces encoded in memory)
    names = _parquet_names(ex) if "parquet" in formats else []
    threads = 1 if len(names) > 1 else None
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="seqprep-split") as pool:
        written: dict[str, Future[str]] = {}
        if names:
            large = ex.large or LargeLists.of_extras(ex)
            groups = _groups(ex, len(result.users))
            for name in names:
                tables = _group_tables(name, result.users, ex, large, groups)
                written[f"{name}.parquet"] = pool.submit(_write_grouped, folder / f"{name}.parquet", tables, threads)
        if "npz" in formats:
            for name, arrays in _npz_arrays(ex).items():
                write_npz(folder / f"{name}.npz", arrays)
        if ex.windows is not None:
            write_npz(folder / "windows.npz", _window_arrays(ex))
        return {name: future.result() for name, future in written.items()}


def _group_tables(name: str, users: Vocabulary, ex: Extras, large: LargeLists, groups: list[tuple[int, int]]) -> Iterator[pa.Table]:
    for u0, u1 in groups:
        yield _table(name, users, extras_range(ex, u0, u1), large)


def _write_grouped(path: Path, tables: Iterator[pa.Table], threads: int | None = None) -> str:
    """Write the file; -> its sha256."""
    out = _GroupedParquet(path, threads)
    try:
        for table in tables:
            out.add(table)
    finally:
        out.close()
    return sha256_file(path)


def _npz_arrays(ex: Extras) -> dict[str, dict[str, np.ndarray]]:
    """train.npz / valid.npz / test.npz of the extras of every user (none without a split)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    if ex.train_offsets is None:
        return out
    assert ex.train_items is not None and ex.train_timestamps is not None and ex.train_user_idx is not None
    train = {"items": ex.train_items, "offsets": ex.train_offsets, "timestamps": ex.train_timestamps, "user_idx": ex.train_user_idx}
    for f in ex.train_features:
        train.update(feature_arrays(f))
    if ex.max_len is not None:
        train["padded"] = padded(ex.train_items, ex.train_offsets, ex.max_len, side=ex.pad)  # type: ignore[arg-type]
        for f in ex.train_features:
            train.update(feature_arrays(f.padded(ex.train_offsets, ex.max_len, ex.pad), "padded_", ex.max_len))  # type: ignore[arg-type]
    out["train"] = train
    for name in EVALS:
        ev = getattr(ex, name)
        if ev is not None:
            out[name] = _eval_arrays(ev, ex)
    return out


def _eval_arrays(ev: EvalRows, ex: Extras) -> dict[str, np.ndarray]:
    arrays = {
        "user_idx": ev.user_idx,
        "target": ev.target,
        "target_ts": ev.target_ts,
        "history": ev.history,
        "history_offsets": ev.history_offsets,
    }
    if ex.max_len is not None:
        arrays["history_padded"] = padded(ev.history, ev.history_offsets, ex.max_len, side=ex.pad)  # type: ignore[arg-type]
    if ev.negatives is not None:
        arrays["negatives"] = ev.negatives
    for hf, tf in zip(ev.history_features, ev.target_features):
        arrays.update(feature_arrays(hf, "history_"))
        arrays.update(feature_arrays(tf, "target_"))
        if ex.max_len is not None:
            arrays.update(feature_arrays(hf.padded(ev.history_offsets, ex.max_len, ex.pad), "history_padded_", ex.max_len))  # type: ignore[arg-type]
    return arrays


def _window_arrays(ex: Extras) -> dict[str, np.ndarray]:
    """windows.npz: inputs, targets, users and each feature's inputs/targets cells."""
    assert ex.windows is not None
    x, y, u = ex.windows
    windows = {"inputs": x, "targets": y, "users": u}
    for inputs, targets in ex.window_features:
        windows.update(feature_arrays(inputs, "inputs_", x.shape[1]))
        windows.update(feature_arrays(targets, "targets_", y.shape[1]))
    return windows


class _Spilled:
    """One NPZ array built piece by piece in a file of the spill folder (CSR offsets rebased)."""

    def __init__(self, folder: Path, offsets: bool = False) -> None:
        self.folder, self.offsets = folder, offsets
        self.buffer: FileBuffer | None = None
        self.width: tuple[int, ...] = ()
        self.base = 0

    def add(self, values: np.ndarray) -> None:
        if self.buffer is None:
            self.buffer = FileBuffer(values.dtype, self.folder)
            self.width = values.shape[1:]
            if self.offsets:
                self.buffer.append(values[:1])  # the leading 0
        if self.offsets:
            self.buffer.append(values[1:] + self.base)
            self.base += int(values[-1])
        else:
            self.buffer.append(values.reshape(-1))

    def array(self) -> NpyChunks:
        assert self.buffer is not None
        arr = self.buffer.finish()
        rows = len(arr) // max(1, int(np.prod(self.width, dtype=np.int64)))
        step = 1 << 22

        def chunks() -> Iterator[np.ndarray]:
            for lo in range(0, len(arr), step):
                yield read_rows(arr, lo, lo + step)

        return NpyChunks(arr.dtype, (rows, *self.width), chunks)

    def discard(self) -> None:
        """Close the spill file and remove it."""
        if self.buffer is not None:
            try:
                self.buffer.close()
            finally:
                self.buffer.path.unlink(missing_ok=True)
                self.buffer = None


class SplitWriter:
    """The split files of a build whose extras come one user range at a time, in user order
    (:meth:`add`; ranges of whole users, of any size): each Parquet row group (the users of one of
    sequences.parquet's, ``Extras.groups``) is written once all its users have come, the NPZ arrays
    are gathered in files of ``spill`` and written by :meth:`close`. The files are the same, byte for
    byte, as :func:`write_extras` writes from the extras of every user. The extras must carry
    ``groups`` and ``large`` (:func:`seqprep.steps.splits.prepare_range` sets them).

    Use it as a context manager: on leaving by an error (in :meth:`add`, in the caller's loop or in
    :meth:`close`) every file it opened is closed and removed (:meth:`abort`), in ``folder`` and in
    ``spill``: no half-written split file, no open file left behind."""

    def __init__(self, folder: Path, formats: tuple[str, ...], users: Vocabulary, spill: Path) -> None:
        self.folder, self.formats, self.users, self.spill = folder, formats, users, spill
        self.parquet: dict[str, _GroupedParquet] = {}
        self.pending: dict[str, list[pa.Table]] = {}
        self.npz: dict[str, dict[str, _Spilled]] = {}
        self.written: list[Path] = []  # files finished by close(), removed by abort()

    def _member(self, file: str, name: str, offsets: bool = False) -> _Spilled:
        members = self.npz.setdefault(file, {})
        if name not in members:
            members[name] = _Spilled(self.spill, offsets)
        return members[name]

    def add(self, ex: Extras, u0: int, u1: int) -> None:
        """The extras of users ``u0 <= u < u1``, the next range after the last one added."""
        if "parquet" in self.formats:
            assert ex.groups is not None and ex.large is not None
            bounds = np.asarray(ex.groups)
            ends = set(bounds.tolist())
            edges = [u0, *bounds[(bounds > u0) & (bounds < u1)].tolist(), u1]
            for a, b in zip(edges[:-1], edges[1:]):
                piece = extras_range(ex, a, b)
                for name in _parquet_names(ex):
                    self.pending.setdefault(name, []).append(_table(name, self.users, piece, ex.large))
                    if b in ends:  # the row group is complete
                        tables = self.pending.pop(name)
                        if name not in self.parquet:
                            self.parquet[name] = _GroupedParquet(self.folder / f"{name}.parquet")
                        self.parquet[name].add(tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks())
        if "npz" in self.formats:
            for file, arrays in _npz_arrays(ex).items():
                for name, values in arrays.items():
                    self._member(file, name, offsets=name in ("offsets", "history_offsets") or name.endswith("_offsets")).add(values)
        if ex.windows is not None:
            for name, values in _window_arrays(ex).items():
                self._member("windows", name, offsets=name.endswith("_offsets")).add(values)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def close(self) -> None:
        """Finish the Parquet files and write the NPZ files (on an error: :meth:`abort`, then raise)."""
        try:
            assert not self.pending, "a row group of the split files is missing users"
            for name in list(self.parquet):
                self.parquet.pop(name).close()
                self.written.append(self.folder / f"{name}.parquet")
            for file in list(self.npz):
                path = self.folder / f"{file}.npz"
                self.written.append(path)
                write_npz(path, {name: m.array() for name, m in self.npz[file].items()})
                for m in self.npz.pop(file).values():
                    m.discard()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close and remove every file written or being written (a failed build); never raises
        for a file already gone."""
        self.pending = {}
        parquet, self.parquet = self.parquet, {}
        npz, self.npz = self.npz, {}
        for out in parquet.values():
            out.abort()
        for members in npz.values():
            for m in members.values():
                m.discard()
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written = []
