"""The files of an output folder: Parquet and NPZ tables and meta.json, laid out byte-identically.

Byte-identical output for the same input and options: no wall-clock time, host name or absolute
temporary path is written anywhere (NPZ members get a fixed 1980-01-01 zip time stamp). Which files
a build writes, and the folder they go into, is :mod:`seqprep.output.folder`'s business.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..io.sources import sha256_file
from ..kernels.arrow import from_numpy
from ..kernels.sequences import from_half_steps, from_time_offsets, sequence_parts
from ..model import BuildResult, Feature, Sequences
from ..records import record
from ..resources import sort_threads
from ..vocab import Vocabulary
from .row_groups import PartsWriter

__all__ = [
    "PARQUET_COMPRESSION",
    "NpyChunks",
    "SequencesInBackground",
    "SequencesWriter",
    "dump_json",
    "feature_arrays",
    "feature_column",
    "feature_lists",
    "feature_vocabulary_table",
    "list_array",
    "sequences_arrow",
    "sequences_npz",
    "sequences_columns",
    "sequences_part",
    "write_npz",
    "write_parquet",
    "write_sequences",
]

PARQUET_COMPRESSION = "zstd"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: Bytes handed to the zip member at once (bounds the CRC and write calls, copies nothing).
_WRITE_BYTES = 16 << 20


def list_array(offsets: np.ndarray, values: np.ndarray, large: bool | None = None) -> pa.Array:
    """A list column from CSR ``offsets`` (any start) and ``values``: ``list``, or ``large_list``
    when it holds 2**31 values or more (``large`` decides it for every part of one file)."""
    if large is None:
        large = offsets[-1] - offsets[0] >= 2**31
    if not large:
        return pa.ListArray.from_arrays(from_numpy((offsets - offsets[0]).astype(np.int32)), from_numpy(values))
    return pa.LargeListArray.from_arrays(from_numpy(offsets - offsets[0]), from_numpy(values))


def sequences_arrow(result: BuildResult) -> pa.Table:
    """sequences.parquet as a table: user_idx, user_id, items, timestamps[, ratings][, session_ids]."""
    return sequences_part(result.users, result.sequences, 0, len(result.users))


def sequences_part(
    users: Vocabulary, seqs: Sequences, u0: int, u1: int, time_base: int | None = None, rating_codes: bool = False
) -> pa.Table:
    """The rows of users ``u0 <= u < u1`` of sequences.parquet (one row group of it).

    ``seqs`` may be filled only for those users so far (see :func:`~seqprep.kernels.sequences.sequence_parts`).
    List columns are ``list`` unless the whole file holds 2**31 values or more (``large_list`` then,
    in every part). With ``rating_codes`` the ratings are the sort's 1-byte codes
    (:func:`~seqprep.kernels.sequences.half_step_codes`), with ``time_base`` the timestamps its
    uint32 offsets from that base (:func:`~seqprep.kernels.sequences.time_offsets`): float32 and
    int64 here, as compact feature indices are int32 here.
    """
    offsets = seqs.offsets[u0 : u1 + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    ratings = None if seqs.ratings is None else seqs.ratings[lo:hi]
    part = Sequences(
        offsets=offsets,
        items=seqs.items[lo:hi],
        timestamps=seqs.timestamps[lo:hi] if time_base is None else from_time_offsets(seqs.timestamps[lo:hi], time_base),
        ratings=from_half_steps(ratings) if ratings is not None and rating_codes else ratings,
        session_ids=None if seqs.session_ids is None else seqs.session_ids[lo:hi],
        features=tuple(f.slice(lo, hi).widened() for f in seqs.features),  # compact indices: int32 here
    )
    return sequences_columns(users.indices[u0:u1], users.ids.slice(u0, u1 - u0), part, bool(seqs.offsets[-1] >= 2**31))


def sequences_columns(user_idx: np.ndarray, user_ids: pa.Array, seqs: Sequences, large: bool | None = None) -> pa.Table:
    """The sequences.parquet columns of ``seqs`` (offsets from any start) for the users ``user_idx``:
    user_idx, user_id, items, timestamps[, ratings][, session_ids]. ``large`` as :func:`list_array`."""
    cols: dict[str, Any] = {
        "user_idx": from_numpy(user_idx, pa.int32()),
        "user_id": user_ids,
        "items": list_array(seqs.offsets, seqs.items, large),
        "timestamps": list_array(seqs.offsets, seqs.timestamps, large),
    }
    if seqs.ratings is not None:
        cols["ratings"] = list_array(seqs.offsets, seqs.ratings, large)
    if seqs.session_ids is not None:
        cols["session_ids"] = list_array(seqs.offsets, seqs.session_ids, large)
    for f in seqs.features:
        cols[f.name] = feature_lists(seqs.offsets, f, large)
    return pa.table(cols)


def feature_lists(offsets: np.ndarray, f: Feature, large: bool | None = None) -> pa.Array:
    """A feature as a list column aligned with the items lists: ``list<int32>`` (cat) or
    ``list<float>`` (num), ``list<list<int32>>`` for token lists."""
    if f.offsets is None:
        return list_array(offsets, f.values, large)
    inner = f.offsets - f.offsets[0]
    tokens = pa.ListArray.from_arrays(pa.array(inner.astype(np.int32)), pa.array(f.values[int(f.offsets[0]) : int(f.offsets[-1])]))
    return _outer(offsets, tokens, large)


def _outer(offsets: np.ndarray, inner: pa.Array, large: bool | None) -> pa.Array:
    if large is None:
        large = offsets[-1] - offsets[0] >= 2**31
    rel = offsets - offsets[0]
    if large:
        return pa.LargeListArray.from_arrays(pa.array(rel), inner)
    return pa.ListArray.from_arrays(pa.array(rel.astype(np.int32)), inner)


class SequencesWriter:
    """sequences.parquet written row group by row group, in user order (see :func:`~seqprep.kernels.sequences.sequence_parts`).

    The columns of the row groups are encoded on ``threads`` threads (default:
    :func:`~seqprep.resources.sort_threads`) and joined into the bytes one ``ParquetWriter`` writes
    (:mod:`seqprep.output.row_groups`).
    The file is opened here and always closed by :meth:`close`, even when the Parquet footer cannot
    be written (a full disk): nothing keeps the output folder busy after an error.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = path
        self.threads = sort_threads() if threads is None else threads
        self._sink: Any = None
        self._writer: Any = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = self._open(table.schema)
        self._writer.write_table(table)

    def _open(self, schema: pa.Schema) -> Any:
        options = _parquet_options(schema)

        def single(schema: pa.Schema) -> pq.ParquetWriter:
            return pq.ParquetWriter(self._sink, schema, **options)

        return single(schema) if self.threads <= 1 else PartsWriter(self._sink, options, self.threads, single)

    def close(self) -> None:
        writer, sink = self._writer, self._sink
        self._writer = self._sink = None
        try:
            if writer is not None:
                writer.close()
        finally:
            if sink is not None:
                sink.close()


#: Sequences of fewer interactions are written on the calling thread (:class:`SequencesInBackground`).
BACKGROUND_ROWS = 1 << 16


class SequencesInBackground:
    """sequences.parquet written by a thread of its own from row groups handed over in file order,
    then closed and hashed there (:meth:`finish`: a future of its sha256), so that the build goes on
    (the split, the other files) while the last row groups are still being encoded. The bytes are
    :class:`SequencesWriter`'s, on ``threads`` encoding threads; with one thread (``--threads 1``),
    or for fewer than :data:`BACKGROUND_ROWS` interactions (``rows``: a small build starts no
    thread), everything happens in the calling thread, as it is handed over.

    :meth:`add` takes a function that makes a row group's table (called on the writer's thread);
    its arrays must not change until :meth:`finish`'s future is done. A write that fails stops the
    writes after it; :meth:`finish`'s future raises its error once the file is closed. :meth:`abort`
    (an error on the way) drops the row groups not yet started, waits for the one being written and
    closes the file: nothing writes into the output folder once it returns.
    """

    def __init__(self, path: Path, rows: int, threads: int | None = None) -> None:
        self.path = path
        self.writer = SequencesWriter(path, threads)
        background = self.writer.threads > 1 and rows >= BACKGROUND_ROWS
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-sequences") if background else None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._finished: Future[str] | None = None

    def add(self, make_table: Callable[[], pa.Table]) -> None:
        if self._pool is None:
            self.writer.write(make_table())  # (an error is raised here, to the caller)
        else:
            self._pool.submit(self._write, make_table)

    def _write(self, make_table: Callable[[], pa.Table]) -> None:
        if self._stop.is_set() or self._error is not None:
            return
        try:
            self.writer.write(make_table())
        except BaseException as e:  # noqa: BLE001 - raised by finish()'s future, once the file is closed
            self._error = e

    def finish(self) -> Future[str]:
        """The file's sha256 once every row group is written and the file closed (or the error)."""
        if self._pool is None:
            done: Future[str] = Future()
            try:
                self.writer.close()
                done.set_result(sha256_file(self.path))
            except BaseException as e:  # noqa: BLE001 - raised by result(), as a pool's would be
                done.set_exception(e)
            self._finished = done
            return done
        self._finished = self._pool.submit(self._close)
        self._pool.shutdown(wait=False)
        return self._finished

    def _close(self) -> str:
        try:
            self.writer.close()
        finally:
            if self._error is not None:
                raise self._error
        return sha256_file(self.path)

    def abort(self) -> None:
        """Stop writing (an error on the way): no more row groups, the file closed; never raises."""
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001, S110 - the build is failing already: its own error is the one to show
            pass


def write_sequences(users: Vocabulary, seqs: Sequences, path: Path) -> None:
    """sequences.parquet from complete sequences, with the same row groups a streamed build writes."""
    bounds = sequence_parts(seqs.offsets)
    writer = SequencesWriter(path)
    try:
        for u0, u1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            writer.write(sequences_part(users, seqs, u0, u1))
    finally:
        writer.close()


@record
class NpyChunks:
    """An NPZ member given piece by piece: its dtype, its shape and its values in C order, chunk by
    chunk (``chunks()`` yields 1-D arrays of ``dtype`` that add up to the shape)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: Callable[[], Iterable[np.ndarray]]


def write_npz(path: Path, arrays: dict[str, np.ndarray | NpyChunks]) -> None:
    """An uncompressed .npz that ``np.load(path, allow_pickle=False)`` reads, byte-identical on re-runs
    and on every Python version.

    A member given as :class:`NpyChunks` is streamed: the same bytes as the whole array would give.
    Each member's size is known before it is written (its .npy header plus its values), so the zip
    gets Zip64 fields only for a member that needs them (4 GiB or more). ``force_zip64=True`` would
    make the headers depend on the Python release: zipfile's handling of Zip64 headers differs
    between 3.11.2 and 3.11.7 (``ZipInfo.FileHeader``), and a build on 3.11.2 gave other bytes.
    """
    import zipfile  # (by the builds that write an npz, not every one)

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            if not isinstance(arr, NpyChunks):
                arr = np.ascontiguousarray(arr)
                if arr.dtype.hasobject:
                    msg = f"{name}: object arrays cannot go into an npz without pickle"
                    raise TypeError(msg)
                member = NpyChunks(arr.dtype, arr.shape, lambda arr=arr: (arr.reshape(-1),))
            else:
                member = arr
            header = _npy_header(member)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.file_size = len(header) + int(np.prod(member.shape, dtype=np.int64)) * np.dtype(member.dtype).itemsize
            with zf.open(info, "w") as fh:
                fh.write(header)
                _write_chunks(fh, member)


def _npy_header(arr: NpyChunks) -> bytes:
    """The .npy header ``np.lib.format.write_array`` writes for ``arr`` (format 1.0, which holds every
    header of these plain dtypes)."""
    import io

    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(arr.dtype)), "fortran_order": False, "shape": tuple(int(n) for n in arr.shape)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def _write_chunks(fh: Any, arr: NpyChunks) -> None:
    """The values of an .npy member, chunk by chunk (after its header)."""
    written = 0
    for chunk in arr.chunks():
        chunk = np.ascontiguousarray(chunk, dtype=arr.dtype).reshape(-1)
        raw = chunk.view(np.uint8)  # the values' bytes, no copy
        for a in range(0, len(raw), _WRITE_BYTES):
            fh.write(memoryview(raw[a : a + _WRITE_BYTES]))
        written += chunk.size
    if written != int(np.prod(arr.shape, dtype=np.int64)):
        msg = f"npz member of shape {arr.shape} got {written} values"
        raise ValueError(msg)


def sequences_npz(seqs: Sequences, user_idx: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {
        "items": seqs.items.astype(np.int32, copy=False),
        "offsets": seqs.offsets.astype(np.int64, copy=False),
        "timestamps": seqs.timestamps,
        "user_idx": user_idx.astype(np.int32, copy=False),
    }
    if seqs.ratings is not None:
        arrays["ratings"] = seqs.ratings.astype(np.float32, copy=False)
    if seqs.session_ids is not None:
        arrays["session_ids"] = seqs.session_ids.astype(np.int32, copy=False)
    for f in seqs.features:  # aligned with items; a token feature's lists by their own offsets
        arrays.update(feature_arrays(f))
    return arrays


def feature_arrays(f: Feature, prefix: str = "", width: int | None = None) -> dict[str, np.ndarray]:
    """A feature's NPZ arrays: ``<prefix><name>`` (int32 for ``cat``, float32 for ``num``; with
    ``width``, cells reshaped to [rows, width]) and for ``tokens`` the token indices with their
    ``<prefix><name>_offsets`` (int64, one list per row or cell, from 0)."""
    key = f"{prefix}{f.name}"
    if f.offsets is None:
        values = f.values if width is None else f.values.reshape(-1, width)
        return {key: values}
    lo, hi = int(f.offsets[0]), int(f.offsets[-1])
    return {key: f.values[lo:hi], f"{key}_offsets": (f.offsets - lo).astype(np.int64, copy=False)}


def feature_column(f: Feature) -> pa.Array:
    """A feature with one row per table row (an evaluation target's own feature): int32, float32, or
    list<int32> for ``tokens``."""
    if f.offsets is None:
        return from_numpy(f.values)
    return list_array(f.offsets, f.values[int(f.offsets[0]) : int(f.offsets[-1])])


def feature_vocabulary_table(vocab: Vocabulary) -> pa.Table:
    """``features/<name>.parquet``: index (int32 1..K), value (as read), count (int64, kept rows)."""
    return pa.table(
        {
            "index": from_numpy(vocab.indices, pa.int32()),
            "value": vocab.ids,
            "count": from_numpy(vocab.counts, pa.int64()),
        }
    )


#: List columns that hold item indices (sequences, training histories, evaluation negatives).
_ITEM_LISTS = ("items", "history", "negatives")
#: int32 list columns that are not indices (every other int32 list holds item or feature indices).
_NOT_INDEX_LISTS = ("session_ids",)


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """zstd; dictionary pages only for ratings (a few distinct values); no dictionary elsewhere.

    Dictionary-encoding 10^7 distinct timestamps or item indices costs time and saves nothing.
    Options name leaf columns (``items.list.element`` inside a list). Item indices in lists
    (``items``, ``history``, ``negatives``) are DELTA_BINARY_PACKED and left uncompressed (as small as PLAIN + zstd, in two thirds of the time);
    so are a categorical or token feature's int32 index lists (``genre``, ``history_genre``);
    timestamps in lists are PLAIN + zstd, a flat integer ``timestamps`` column DELTA_BINARY_PACKED.
    Min/max statistics are written for the flat columns only (``user_idx``, ``target``, ...): those
    of a list's values cost 3-8% of the encoding time (the float ratings most) and no reader prunes
    row groups by the smallest item index of their lists.
    """
    encodings: dict[str, str] = {}
    dictionary: list[str] = []
    compression: dict[str, str] = {}
    statistics: list[str] = []
    for name in schema.names:
        typ = schema.field(name).type
        nested = pa.types.is_list(typ) or pa.types.is_large_list(typ)
        if not nested:
            statistics.append(name)
        value_type = typ.value_type if nested else typ
        leaf = f"{name}.list.element" if nested else name
        while pa.types.is_list(value_type) or pa.types.is_large_list(value_type):  # token lists in lists
            value_type = value_type.value_type
            leaf += ".list.element"
        compression[leaf] = PARQUET_COMPRESSION
        if name == "ratings":
            dictionary.append(leaf)
        elif nested and pa.types.is_integer(value_type) and (
            name in _ITEM_LISTS or (pa.types.is_int32(value_type) and name not in _NOT_INDEX_LISTS)
        ):
            encodings[leaf] = "DELTA_BINARY_PACKED"
            compression[leaf] = "none"
        elif not nested and pa.types.is_integer(value_type) and name == "timestamps":
            encodings[leaf] = "DELTA_BINARY_PACKED"
        else:
            encodings[leaf] = "PLAIN"
    return {
        "compression": compression,
        "use_dictionary": dictionary,
        "column_encoding": encodings,
        "write_statistics": statistics,
    }


def write_parquet(table: pa.Table, path: Path) -> None:
    """One table as one Parquet file (options: :func:`_parquet_options`)."""
    pq.write_table(table, path, **_parquet_options(table.schema))


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
