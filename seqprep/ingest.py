"""Streaming ingestion: inputs are read block by block and only compact integer columns are kept.

Per block, user and item ids arrive dictionary-encoded (the CSV reader types them
``dictionary<int32, string>``; Parquet and JSON columns go through the same ``_ids_to_dict`` as the
in-memory reader). Only the block's *small* dictionary is unified with the file's growing dictionary
(:class:`IdEncoder`, pyarrow hashing, no Python loop over rows); the block's indices are translated
with one numpy take into int32 codes. Raw string ids of a block are dropped once it is encoded, so
peak memory is the integer columns (4 + 4 + 8 + 4 bytes per row) plus the distinct ids.

The result is the same :class:`~seqprep.readers.Log` as :func:`~seqprep.readers.read_log_in_memory`
gives (same codes, same first-seen dictionaries, same types and error messages), so every output is
byte-identical whichever reader ran.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import lzma
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from .config import ReadOptions
from .errors import ConfigError, InputError, SeqprepError
from .kernels.csvquotes import BOM, LF, QuoteTracker, row_end, state_before
from .progress import SILENT, Progress
from .readers import (
    _DICT,
    InputInfo,
    Log,
    QuotedStream,
    RowLines,
    _arrow_msg,
    _check_nul_ids,
    _csv_layout,
    _csv_source,
    _detect_format,
    _ids_to_dict,
    _jsonl_layout,
    _lines_before,
    _merge_ids,
    _merge_times,
    _normalize_rating,
    _normalize_time,
    _parse_error,
    _Source,
    _text_chunks,
    _utf8_error,
    expand_inputs,
    line_of_offset,
    resolve_columns,
    scan_rows,
    unclosed_quote,
)
from .resources import sort_threads

__all__ = ["GrowBuffer", "IdEncoder", "stream_log", "DEFAULT_BLOCK_SIZE"]

DEFAULT_BLOCK_SIZE = 1 << 24


class GrowBuffer:
    """An append-only numpy column that grows in place (``realloc``), never holding two copies.

    >>> b = GrowBuffer(np.int32, capacity=2)
    >>> b.append(np.array([1, 2, 3], dtype=np.int32)); b.append(np.array([4], dtype=np.int32))
    >>> b.finish()
    array([1, 2, 3, 4], dtype=int32)
    """

    def __init__(self, dtype: Any, capacity: int = 1 << 16) -> None:
        self._arr = np.empty(max(1, capacity), dtype=dtype)
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        n = len(values)
        need = self.size + n
        if need > len(self._arr):
            self._arr.resize(max(need, len(self._arr) * 3 // 2 + 1), refcheck=False)
        self._arr[self.size : need] = values
        self.size = need

    def fill(self, value: Any, n: int) -> None:
        self.append(np.full(n, value, dtype=self._arr.dtype))

    def close(self) -> None:
        """Nothing to release (a :class:`FileBuffer` closes its file)."""

    def finish(self) -> np.ndarray:
        """The filled part as an array that owns its memory (the buffer is then spent)."""
        arr = self._arr
        self._arr = np.empty(0, dtype=arr.dtype)
        arr.resize(self.size, refcheck=False)
        return arr


class FileBuffer:
    """A :class:`GrowBuffer` that appends to a file in a spill folder; ``finish`` maps it read-only.

    Appended bytes go through the page cache, not this process's memory, so spilled columns do not
    count towards its resident size; readers should take them back in chunks (:func:`read_rows`).
    """

    _serial = 0

    def __init__(self, dtype: Any, folder: Path) -> None:
        FileBuffer._serial += 1
        self.dtype = np.dtype(dtype)
        self.path = folder / f"col-{FileBuffer._serial}.{self.dtype.str.strip('<>=|')}"
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed by finish()
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        np.ascontiguousarray(values, dtype=self.dtype).tofile(self._fh)
        self.size += len(values)

    def fill(self, value: Any, n: int) -> None:
        self.append(np.full(n, value, dtype=self.dtype))

    def close(self) -> None:
        self._fh.close()

    def finish(self) -> np.ndarray:
        self._fh.close()
        if self.size == 0:
            return np.empty(0, dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.size,))


def read_rows(arr: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``arr[start:stop]`` as an in-memory copy; a memory-mapped column is read with ``np.fromfile``,
    so its pages never become part of this process's resident memory.

    >>> read_rows(np.arange(5), 1, 3)
    array([1, 2])
    """
    if isinstance(arr, np.memmap) and arr.filename is not None:
        stop = min(stop, len(arr))
        count = max(0, stop - start)
        return np.fromfile(arr.filename, dtype=arr.dtype, count=count, offset=arr.offset + start * arr.itemsize)
    return np.asarray(arr[start:stop])


def buffer_factory(spill_dir: Path | None) -> Callable[[Any], GrowBuffer | FileBuffer]:
    """New columns in memory, or in files under ``spill_dir`` when given."""
    if spill_dir is None:
        return GrowBuffer
    return lambda dtype: FileBuffer(dtype, spill_dir)


class IdEncoder:
    """Dictionary-encodes one id column block by block against a growing, first-seen dictionary.

    Blocks wait (as int32 indices + their small dictionary) until their dictionaries add up to the
    size of the global one; then one ``unify_dictionaries`` maps all of them at once. Each flush
    hashes the global dictionary once, so the cost stays linear in the number of block-distinct ids.
    Missing ids get code -1.

    >>> enc = IdEncoder(min_flush=1)
    >>> enc.add(pa.array(["b", "a", None, "b"]).dictionary_encode())
    >>> enc.add(pa.array(["c", "a"]).dictionary_encode())
    >>> codes, ids = enc.finish()
    >>> codes.tolist(), ids.to_pylist()
    ([0, 1, -1, 0, 2, 1], ['b', 'a', 'c'])
    """

    def __init__(self, *, min_flush: int = 1 << 16, new_buffer: Callable[[Any], Any] = GrowBuffer) -> None:
        self.codes = new_buffer(np.int32)
        self.dictionary: pa.Array | None = None
        self._pending: list[tuple[np.ndarray, pa.Array]] = []
        self._pending_size = 0
        self._min_flush = min_flush

    def add(self, col: pa.DictionaryArray) -> None:
        indices = col.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        self._pending.append((indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), col.dictionary))
        self._pending_size += len(col.dictionary)
        if self._pending_size >= max(self._min_flush, 0 if self.dictionary is None else len(self.dictionary)):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        dicts = ([] if self.dictionary is None else [self.dictionary]) + [d for _, d in self._pending]
        value_type = dicts[0].type
        if any(d.type != value_type for d in dicts):  # e.g. string and large_string blocks
            dicts = [pc.cast(d, pa.string()) for d in dicts]
        chunks = [pa.DictionaryArray.from_arrays(pa.array(np.arange(len(d), dtype=np.int32)), d) for d in dicts]
        unified = pa.table({"c": pa.chunked_array(chunks)}).unify_dictionaries()["c"]
        first = 0 if self.dictionary is None else 1
        for (indices, _), chunk in zip(self._pending, unified.chunks[first:]):
            mapping = np.append(chunk.indices.to_numpy(zero_copy_only=False).astype(np.int32), np.int32(-1))
            self.codes.append(mapping[indices])  # index -1 (missing) takes the trailing -1
        self.dictionary = unified.chunk(0).dictionary if unified.num_chunks else dicts[0]
        self._pending = []
        self._pending_size = 0

    def finish(self, empty_type: pa.DataType = pa.string()) -> tuple[np.ndarray, pa.Array]:
        self.flush()
        dictionary = self.dictionary if self.dictionary is not None else pa.array([], empty_type)
        return self.codes.finish(), dictionary


class _FileColumns:
    """One input's compact columns while it is being read."""

    def __init__(self, *, rating_via_double: bool, new_buffer: Callable[[Any], Any]) -> None:
        self.new_buffer = new_buffer
        self.user = IdEncoder(new_buffer=new_buffer)
        self.item = IdEncoder(new_buffer=new_buffer)
        self.time: Any = new_buffer(np.int64)
        self.time_valid: Any = None
        self.time_raw: list[pa.Array] = []
        self.rating: Any = None
        self.rows = 0
        self.rating_via_double = rating_via_double

    def add(self, batch: pa.RecordBatch | pa.Table, roles: dict[str, str], where: str) -> None:
        n = batch.num_rows
        for role, encoder in (("user", self.user), ("item", self.item)):
            ids = _ids_to_dict(batch.column(roles[role]), role, where)
            if pa.types.is_string(ids.dictionary.type):
                try:  # pyarrow's CSV dictionary conversion does not check UTF-8: checked on the distinct ids
                    ids.dictionary.validate(full=True)
                except pa.ArrowInvalid:
                    raise _NotUtf8 from None
            encoder.add(ids)
        t = batch.column(roles["time"])
        if self.time is not None and pa.types.is_integer(t.type):
            # integer epochs need no look at the whole column: encode now
            t64 = pc.cast(t, pa.int64())
            if t64.null_count and self.time_valid is None:
                self.time_valid = self.new_buffer(np.bool_)
                self.time_valid.fill(True, self.rows)
            if self.time_valid is not None:
                self.time_valid.append(t64.is_valid().to_numpy(zero_copy_only=False))
                t64 = pc.fill_null(t64, 0)
            self.time.append(t64.to_numpy(zero_copy_only=False))
        else:
            # strings, floats, dates: typed on the whole column (as the in-memory reader does)
            if self.time is not None:
                values = self.time.finish()
                mask = None if self.time_valid is None else ~self.time_valid.finish()
                self.time_raw = [pa.array(np.asarray(values), mask=mask)] if self.rows else []
                self.time = self.time_valid = None
            self.time_raw.extend(_chunked(t).chunks)
        if "rating" in roles:
            r = batch.column(roles["rating"])
            if self.rating_via_double:  # re-read as text: type it as the whole-file inference would (double)
                r = _normalize_rating(_chunked(r), where, pa.float64())
            r = _normalize_rating(_chunked(r), where)
            if self.rating is None:
                self.rating = self.new_buffer(np.float32)
            self.rating.append(pc.fill_null(r, float("nan")).to_numpy(zero_copy_only=False))
        self.rows += n

    def close(self) -> None:
        """Release the buffers of a read that is abandoned (an error, or a re-read)."""
        for buf in (self.user.codes, self.item.codes, self.time, self.time_valid, self.rating):
            if buf is not None:
                buf.close()

    def time_columns(self, where: str, lines: RowLines) -> tuple[np.ndarray, np.ndarray | None, str]:
        """-> (int64/float64 values with 0 where missing, validity or None when none is missing, unit).

        The same values ``_normalize_time`` gives for the whole column.
        """
        if self.time is not None:
            return self.time.finish(), None if self.time_valid is None else self.time_valid.finish(), "epoch"
        col = pa.chunked_array(self.time_raw) if self.time_raw else pa.chunked_array([], pa.null())
        arr, unit = _normalize_time(col, where, lines)
        self.time_raw = []
        if arr.null_count == 0:
            return arr.to_numpy(zero_copy_only=False), None, unit
        return pc.fill_null(arr, 0).to_numpy(), arr.is_valid().to_numpy(zero_copy_only=False), unit


def _chunked(col: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])


# --------------------------------------------------------------------------------------------------
# Batches per format


class _Position:
    """Bytes consumed from the underlying (compressed) file, for the progress display."""

    def __init__(self, tell: Callable[[], int] | None) -> None:
        self._tell = tell

    def __call__(self) -> int | None:
        try:
            return None if self._tell is None else int(self._tell())
        except (OSError, ValueError, pa.ArrowException):
            return None


def _open_tracked(src: _Source) -> tuple[Any, _Position]:
    """Like ``_Source.open`` but a stream (never a path) plus how far into the raw bytes it is."""
    if src.data is not None:
        raw: Any = pa.BufferReader(src.data)
    elif src.compression == "xz":
        raw = open(src.path, "rb")  # type: ignore[arg-type]  # noqa: SIM115 - closed with the stream
    else:
        raw = pa.OSFile(str(src.path))
    pos = _Position(raw.tell)
    if src.compression is None:
        return raw, pos
    if src.compression == "xz":
        if isinstance(raw, pa.BufferReader):
            raw = lzma.open(pa.PythonFile(raw, mode="r"), "rb")
            return raw, _Position(None)
        stream = lzma.open(raw, "rb")
        stream.close = _closing_both(stream.close, raw.close)  # type: ignore[method-assign]
        return stream, pos
    return pa.CompressedInputStream(raw, src.compression), pos


def _closing_both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def close() -> None:
        try:
            first()
        finally:
            second()

    return close


def _csv_batches(
    src: _Source, opts: ReadOptions, head: bytes, block_size: int, as_text: set[str]
) -> tuple[dict[str, str], int, Iterator[pa.RecordBatch], _Position, Callable[[], None]]:
    sep, names, header, roles = _csv_layout(src, opts, head)
    if len(sep) > 1:
        source, delim = _csv_source(src, sep)
        pos = _Position(source.tell)
    else:
        source, pos = _open_tracked(src)
        delim = sep
    types: dict[str, pa.DataType] = {roles["user"]: _DICT, roles["item"]: _DICT}
    types.update({roles[r]: pa.string() for r in as_text})
    conv = pacsv.ConvertOptions(
        include_columns=[roles[r] for r in ("user", "item", "time", "rating") if r in roles],
        column_types=types,
        strings_can_be_null=True,
    )
    parse = pacsv.ParseOptions(delimiter=delim)
    if len(sep) == 1 and src.compression is None and (src.path is not None or src.data is not None):
        source.close()
        # plain reads, not a memory map: mapped file pages would count in the process's RSS as it
        # reads through a file larger than memory; each range is read into a fresh buffer instead
        data = pa.OSFile(str(src.path)) if src.path is not None else pa.BufferReader(src.data)
        ranges = _range_batches(data, names, header, block_size, parse, conv, hashed=src.hashed, where=src.name)
        return roles, 1 if header else 0, ranges, _Position(lambda: ranges.position), ranges.close
    # the streaming reader: quoted fields may hold line ends anywhere in the stream (and in the header,
    # skipped as a row); the bytes pass through a tracker that knows, at the end, if a quote never closed
    watched = QuotedStream(source, ord(delim))
    read_opts = pacsv.ReadOptions(
        column_names=names, skip_rows_after_names=1 if header else 0, block_size=block_size, use_threads=True
    )
    parse = pacsv.ParseOptions(delimiter=delim, newlines_in_values=True)
    reader = pacsv.open_csv(watched, read_options=read_opts, parse_options=parse, convert_options=conv)
    return roles, 1 if header else 0, _closed_quotes(reader, watched, src, sep), pos, source.close


def _closed_quotes(reader: Iterator[pa.RecordBatch], watched: QuotedStream, src: _Source, sep: str) -> Iterator[pa.RecordBatch]:
    """The reader's batches; at the end, an error if the input ended inside a quoted field (pyarrow
    takes such a field, open to the end, as a value)."""
    yield from reader
    error = watched.unclosed(src, sep)
    if error is not None:
        raise error


#: Bytes of CSV text handed to pyarrow's multi-threaded reader at once, as a multiple of --block-size.
RANGE_BLOCKS = 8


#: Parts a range with quotes is parsed in, at most (each part about a block).
_MAX_PARTS = 64


def _fixed_types(conv: pacsv.ConvertOptions, types: dict[str, pa.DataType] | pa.Schema) -> pacsv.ConvertOptions:
    """``conv`` with the column types of an earlier part (dictionary-typed id columns keep theirs)."""
    if isinstance(types, pa.Schema):
        types = {f.name: f.type for f in types if not pa.types.is_dictionary(f.type)}
    return pacsv.ConvertOptions(
        include_columns=conv.include_columns,
        column_types={**types, **dict(conv.column_types)},
        strings_can_be_null=True,
    )


class _range_batches:  # noqa: N801 - an iterator used like a generator
    """Record batches of an uncompressed CSV read range by range, each range parsed on every core.

    The text is cut at row ends into ranges of about ``RANGE_BLOCKS`` blocks; each range goes through
    ``pyarrow.csv.read_csv`` (multi-threaded), so memory stays bounded by two ranges (the one being
    encoded and the one being parsed) while parsing uses all cores (the streaming reader parses on
    one). A worker thread cuts and parses the next range while the caller encodes the current one, and
    hashes the bytes it reads (on a thread of its own, beside the parse, in file order), so the
    input's sha256 needs no second pass over the file. Types are inferred on the first range and then fixed, so a later range that does not fit raises
    the same conversion error as the streaming reader would (and the caller re-reads that column as
    text). Batches come out in file order.

    Quoted fields may hold line ends (RFC 4180), so a range is never cut inside one: a range whose
    bytes hold no quote (one ``bytes.find``) is cut at the first line end past its nominal end, as
    plain text; a range with a quote is cut where :mod:`seqprep.kernels.csvquotes` says a row ends,
    looking back from the nominal end only as far as it takes to know the quoting state there, and is
    parsed in parts cut the same way, each part as one block (:meth:`_parse_in_parts`); while it is
    parsed, the next range is read and cut (a third range in memory: review text is many bytes a row,
    and reading them is a fifth of the time). A range whose rows are longer than a block is parsed as
    one block; the input ending inside a quoted field is an error that names the line the field
    starts on.
    """

    def __init__(
        self,
        data: Any,
        names: list[str],
        header: bool,
        block_size: int,
        parse: pacsv.ParseOptions,
        conv: pacsv.ConvertOptions,
        *,
        hashed: bool = True,
        where: str = "",
    ) -> None:
        self.data, self.names, self.block_size, self.parse = data, names, block_size, parse
        self.conv = conv
        self.where = where
        self.delim = ord(parse.delimiter)
        self.size = data.size()
        self.range_bytes = max(block_size * RANGE_BLOCKS, 1)
        self.position = self._cut(0, 0)[1] if header else 0
        self._next_start = self.position
        self.fixed: dict[str, pa.DataType] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-csv")
        self._parsers = ThreadPoolExecutor(max_workers=sort_threads(), thread_name_prefix="seqprep-csv-part")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-sha256")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-read")
        self._read_ahead: tuple[int, Any] | None = None  # (offset, future of _cut there), worker thread only
        self._ahead: Any = None  # future of the next range: (table, its end offset)
        self._pending: list[pa.RecordBatch] = []
        # the input's sha256 from the bytes as they are read (the worker reads the ranges in order)
        self._hash = hashlib.sha256(bytes(data.read_at(self.position, 0)) if self.position else b"") if hashed else None
        self._hashed = self.position

    def _cut(self, a: int, want: int) -> tuple[memoryview, int, bool]:
        """The bytes from ``a`` (a row start) to the first row end at or after ``want`` -> (those
        bytes, their end offset, whether they hold a quote)."""
        n = min(want - a + (1 << 16), self.size - a)
        buf = self.data.read_at(n, a)
        t = want - a
        if buf.find(b'"', 0, t) < 0:  # plain text up to the nominal end: cut at the next line end
            k = min((k for k in (buf.find(b"\n", t), buf.find(b"\r", t)) if k >= 0), default=-1)
            if buf.find(b'"', t, n if k < 0 else k) < 0:
                if a + n >= self.size and k < 0:
                    return memoryview(buf), self.size, False
                if k >= 0 and k + 1 < n:
                    end = k + 2 if buf[k : k + 2] == b"\r\n" else k + 1
                    return memoryview(buf)[:end], a + end, False
        skip = len(BOM) if a == 0 and buf.startswith(BOM) else 0  # the parser drops a BOM
        arr = np.frombuffer(buf, np.uint8)[skip:]
        inside, opened_at, p = state_before(arr, min(max(t - skip, 0), len(arr)), self.delim)
        prev = int(arr[p - 1]) if p else LF
        opened_at = a + skip + opened_at if inside else -1  # offsets in the file from here on
        tracker = QuoteTracker(self.delim, offset=a + skip + p, inside=inside, opened_at=opened_at, prev=prev)
        at = a + n
        end = row_end(tracker, arr[p:], eof=at >= self.size)
        step = 1 << 20
        while end < 0 and at < self.size:  # a row goes on past what was read: follow it, a chunk at a time
            chunk = self.data.read_at(min(step, self.size - at), at)
            at += len(chunk)
            end = row_end(tracker, np.frombuffer(chunk, np.uint8), eof=at >= self.size)
            step = min(step * 2, 1 << 26)
        if end < 0:
            if tracker.inside:  # the end of the input inside a quoted field
                raise unclosed_quote(self.where, line_of_offset(self.data.read_at, tracker.opened_at))
            end = self.size
        if end > a + n:
            buf = self.data.read_at(end - a, a)
        return memoryview(buf)[: end - a], end, True

    def _next(self, a: int, conv: pacsv.ConvertOptions, infer: bool) -> tuple[pa.Table, int]:
        """The range from ``a`` -> (its table, its end offset) (in the worker thread). ``infer``: the
        first range, whose column types the others take."""
        ahead, self._read_ahead = self._read_ahead, None
        buf, end, quoted = ahead[1].result() if ahead is not None and ahead[0] == a else self._cut(a, a + self.range_bytes)
        hashing = None
        if self._hash is not None and self._hashed == a:  # beside the parse, in file order
            hashing = self._hasher.submit(self._hash.update, buf)
            self._hashed = end
        if quoted and end < self.size:  # review text: reading the next range is worth doing during this parse
            self._read_ahead = (end, self._reader.submit(self._cut, end, end + self.range_bytes))
        try:
            return (self._parse_in_parts(buf, conv, infer) if quoted else self._parse_whole(buf, conv)), end
        finally:
            if hashing is not None:
                hashing.result()

    def _parse_whole(self, buf: memoryview, conv: pacsv.ConvertOptions) -> pa.Table:
        """A range without quotes, by pyarrow's multi-threaded reader."""
        block = self.block_size
        while True:
            try:
                return pacsv.read_csv(
                    pa.BufferReader(pa.py_buffer(buf)),
                    read_options=pacsv.ReadOptions(column_names=self.names, block_size=block),
                    parse_options=self.parse,
                    convert_options=conv,
                )
            except pa.ArrowInvalid as e:
                if "straddl" not in str(e) or block > len(buf):
                    raise
                block = len(buf) + 1  # a row longer than a block: the range as one block

    def _parse_in_parts(self, buf: memoryview, conv: pacsv.ConvertOptions, infer: bool) -> pa.Table:
        """A range with quotes: cut where rows end into parts of about a block, each parsed as one
        block, the parts on every core. pyarrow's own multi-block read with ``newlines_in_values``
        lexes every block serially to find where its rows end (about 3x the time of the parse itself
        here, and it drops the LF of a quoted CRLF that a block boundary splits); the kernel finds
        the same row ends in microseconds. The first part of the first range infers the column types,
        the other parts take them, as later ranges do."""
        arr = np.frombuffer(buf, np.uint8)
        n = len(arr)
        parts = min(_MAX_PARTS, max(1, -(-n // self.block_size)))
        cuts = [0]
        for j in range(1, parts):  # a few cuts a range, each from the bytes around it
            at = j * n // parts
            if at <= cuts[-1]:
                continue  # inside a row that ends after it
            inside, opened_at, p = state_before(arr, at, self.delim)
            prev = int(arr[p - 1]) if p else LF
            cut = row_end(QuoteTracker(self.delim, offset=p, inside=inside, opened_at=opened_at, prev=prev), arr[p:], eof=True)
            if cut < 0:
                break
            cuts.append(cut)
        if cuts[-1] < n:
            cuts.append(n)
        pieces = [buf[lo:hi] for lo, hi in itertools.pairwise(cuts)]
        parse = pacsv.ParseOptions(delimiter=self.parse.delimiter, newlines_in_values=True)

        def one(piece: memoryview, conv: pacsv.ConvertOptions) -> pa.Table:
            return pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(piece)),
                read_options=pacsv.ReadOptions(column_names=self.names, block_size=len(piece) + 1, use_threads=False),
                parse_options=parse,
                convert_options=conv,
            )

        tables = []
        if infer:
            tables.append(one(pieces[0], conv))
            conv = _fixed_types(conv, tables[0].schema)
            pieces = pieces[1:]
        tables += list(self._parsers.map(one, pieces, [conv] * len(pieces)))
        return pa.concat_tables(tables)

    def _submit(self) -> None:
        """Start cutting and parsing the range after the last one read (if any is left)."""
        a = self._next_start
        if a >= self.size:
            self._ahead = None
            return
        conv = _fixed_types(self.conv, self.fixed) if self.fixed else self.conv
        self._ahead = self._pool.submit(self._next, a, conv, not self.fixed)

    def __iter__(self) -> _range_batches:
        return self

    def __next__(self) -> pa.RecordBatch:
        while not self._pending:
            if self._ahead is None:
                self._submit()
                if self._ahead is None:
                    raise StopIteration
            table, end = self._ahead.result()
            self._ahead = None
            if not self.fixed:  # the first range fixes the types of the other columns
                self.fixed = {f.name: f.type for f in table.schema if not pa.types.is_dictionary(f.type)}
            self.position = self._next_start = end
            self._submit()  # the next range is cut and parsed while the caller works on this one
            self._pending = table.to_batches()[::-1]
        return self._pending.pop()

    @property
    def sha256(self) -> str | None:
        """The hex sha256 of the whole input once every range has been read (else None)."""
        return self._hash.hexdigest() if self._hash is not None and self._hashed == self.size else None

    def close(self) -> None:
        """Wait for the range in flight (its error, if any, is not wanted now), then close the file."""
        if self._ahead is not None:
            self._ahead.cancel()
        self._pool.shutdown(wait=True)
        for pool in (self._parsers, self._hasher, self._reader):
            pool.shutdown(wait=True, cancel_futures=True)
        self._ahead = None
        self.data.close()


def _read_in_ranges(src: _Source, opts: ReadOptions, head: bytes, fmt: str) -> bool:
    """Whether ``_csv_batches`` will read ``src`` with :class:`_range_batches` (which hashes it)."""
    if fmt != "csv" or src.compression is not None or src.path is None:
        return False
    try:
        sep = _csv_layout(src, opts, head)[0]
    except SeqprepError:
        return False  # the read raises it, in its place
    return len(sep) == 1


def _jsonl_batches(
    src: _Source, opts: ReadOptions, head: bytes, block_size: int
) -> tuple[dict[str, str], Iterator[pa.RecordBatch], _Position, Callable[[], None], pa.Schema]:
    roles, schema = _jsonl_layout(src, opts, head)
    source, pos = _open_tracked(src)
    reader = pajson.open_json(
        source,
        read_options=pajson.ReadOptions(block_size=block_size),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    return roles, iter(reader), pos, source.close, schema


def _parquet_batches(
    src: _Source, opts: ReadOptions, block_size: int
) -> tuple[dict[str, str], Iterator[pa.RecordBatch], _Position, pa.Schema]:
    data = src.open() if src.compression is None else pa.BufferReader(pa.py_buffer(src.read_all()))
    pf = pq.ParquetFile(data)
    roles = resolve_columns(pf.schema_arrow.names, opts, src.name)
    columns = list(roles.values())
    schema = pa.schema([pf.schema_arrow.field(c) for c in columns])
    rows_per_batch = max(1, block_size // 32)
    total = max(1, pf.metadata.num_rows)
    done = [0]

    def batches() -> Iterator[pa.RecordBatch]:
        for b in pf.iter_batches(batch_size=rows_per_batch, columns=columns):
            done[0] += b.num_rows
            yield b

    return roles, batches(), _Position(lambda: src.size * done[0] // total), schema


# --------------------------------------------------------------------------------------------------
# The reader


def _read_attempt(
    src: _Source,
    opts: ReadOptions,
    block_size: int,
    progress: Progress,
    fmt: str,
    head: bytes,
    new_buffer: Callable[[Any], Any],
    as_text: set[str],
) -> tuple[_FileColumns, dict[str, str], int, dict[str, bool]]:
    """One pass over one input; on any error its buffers are released and the error goes up."""
    where = src.name
    typed_text = {"user": False, "item": False}
    header = 0
    close: Callable[[], None] | None = None
    cols = _FileColumns(rating_via_double="rating" in as_text, new_buffer=new_buffer)
    try:
        try:
            if fmt == "csv":
                roles, header, batches, pos, close = _csv_batches(src, opts, head, block_size, as_text)
            elif fmt == "jsonl":
                roles, batches, pos, close, schema = _jsonl_batches(src, opts, head, block_size)
            else:
                roles, batches, pos, schema = _parquet_batches(src, opts, block_size)
            if fmt != "csv":
                for role in ("user", "item"):
                    typ = schema.field(roles[role]).type
                    typed_text[role] = pa.types.is_string(typ) or pa.types.is_large_string(typ)
            for batch in batches:
                if fmt == "csv" and any(_is_binary(t) for t in batch.schema.types):
                    raise _NotUtf8  # a column pyarrow could not read as text (checked on the schema only)
                cols.add(batch, roles, where)
                progress.update(pos() or 0, cols.rows)
            if isinstance(batches, _range_batches) and batches.sha256 is not None:
                src.set_sha256(batches.sha256)  # hashed as it was read: no second pass over the file
        finally:
            if close is not None:
                close()
    except BaseException:
        cols.close()
        raise
    return cols, roles, header, typed_text


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


class _NotUtf8(Exception):
    """A CSV block typed a used column as binary: it holds invalid UTF-8 (located on the error path)."""


def _read_one(
    src: _Source,
    opts: ReadOptions,
    block_size: int,
    progress: Progress,
    fmt: str,
    head: bytes,
    new_buffer: Callable[[Any], Any],
) -> tuple[_FileColumns, dict[str, str], int, dict[str, bool]]:
    as_text: set[str] = set()
    while True:  # at most three times: CSV time and rating typed from the first block, then as text
        try:
            return _read_attempt(src, opts, block_size, progress, fmt, head, new_buffer, as_text)
        except _NotUtf8:
            if fmt != "csv":  # a Parquet string column pyarrow did not validate
                msg = f"{src.name}: an id column holds text that is not valid UTF-8; rewrite the file with UTF-8 strings"
                raise InputError(msg) from None
            sep, names, header, roles = _csv_layout(src, opts, head)
            raise _utf8_error(src, names, header, sep, roles, src.name) from None
        except pa.ArrowInvalid as e:
            where = src.name
            if "straddl" in str(e) and fmt == "csv":
                # a row longer than a block (long quoted text, or a quote never closed): one pass finds
                # which; then the read starts again with blocks that hold the longest row
                sep = _csv_layout(src, opts, head)[0]
                opened, longest = scan_rows(src, sep)
                if opened >= 0:
                    with contextlib.closing(_text_chunks(src, sep)) as chunks:
                        raise unclosed_quote(where, _lines_before(chunks, opened)) from e
                if block_size <= 2 * longest:
                    block_size = 1 << (2 * longest + 1).bit_length()
                    continue
            if "straddl" in str(e):
                msg = f"{where}: a row is longer than the block size ({block_size:,} bytes); pass a larger --block-size"
                raise InputError(msg) from e
            if fmt == "csv":
                # the error paths of the in-memory reader (serial re-reads that name the line)
                sep, names, header, roles = _csv_layout(src, opts, head)
                if "utf8" in str(e).lower():
                    raise _utf8_error(src, names, header, sep, roles, where) from e
                if "parse error" in str(e).lower():
                    raise _parse_error(src, names, header, sep, where, e) from e
                role = _failed_role(e, src, opts, head)
                if role is not None and role not in as_text:
                    as_text.add(role)  # a later block did not fit the type inferred from the first
                    continue
                msg = f"{where}: {_arrow_msg(e)}; check --sep ({sep!r}), --names and the row shown"
            elif fmt == "jsonl":
                msg = f"{where}: {_arrow_msg(e)}; every line must be a JSON object with consistent value types"
            else:
                msg = f"{where}: not a readable Parquet file ({_arrow_msg(e)}); check the file or pass --input-format"
            raise InputError(msg) from e
        except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as e:
            where = src.name
            if fmt == "parquet":
                msg = f"{where}: not a readable Parquet file ({_arrow_msg(e)}); check the file or pass --input-format"
            else:
                msg = f"{where}: cannot read: {e}; check that the file is complete and not corrupt"
            raise InputError(msg) from e


def _failed_role(e: Exception, src: _Source, opts: ReadOptions, head: bytes) -> str | None:
    """The time or rating role of the column a CSV conversion error names (``In CSV column #2``)."""
    m = re.search(r"CSV column #(\d+): (?:Row #\d+: )?CSV conversion error", str(e))
    if m is None:
        return None
    _, names, _, roles = _csv_layout(src, opts, head)
    k = int(m.group(1))
    name = names[k] if k < len(names) else None
    return next((r for r in ("time", "rating") if roles.get(r) == name), None)


_CHUNK_ROWS = 1 << 22


def _as_dict(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    """(codes with -1 for missing, dictionary) as a DictionaryArray view, without a pass over the rows."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary, safe=False)


def _translate(
    parts: list[tuple[np.ndarray, pa.Array]],
    id_type: str,
    role: str,
    typed_text: bool,
    new_buffer: Callable[[Any], Any],
) -> tuple[np.ndarray, pa.Array]:
    """Per-input (codes, dictionary) -> global codes and dictionary, via ``_merge_ids`` on the dictionaries."""
    dict_parts = [pa.DictionaryArray.from_arrays(pa.array(np.arange(len(d), dtype=np.int32)), d) for _, d in parts]
    mapping, dictionary = _merge_ids(dict_parts, id_type, role, typed_text)
    if len(parts) == 1 and np.array_equal(mapping, np.arange(len(parts[0][1]), dtype=mapping.dtype)):
        return parts[0][0], dictionary  # one input, no id trimmed or merged: its codes are the global ones
    out = new_buffer(np.int32)
    at = 0
    for codes, d in parts:
        table = np.append(mapping[at : at + len(d)], np.int32(-1))
        for lo in range(0, len(codes), _CHUNK_ROWS):
            out.append(table[read_rows(codes, lo, lo + _CHUNK_ROWS)])
        at += len(d)
    return out.finish(), dictionary


def _concat(parts: list[np.ndarray], dtype: Any, new_buffer: Callable[[Any], Any]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    out = new_buffer(dtype)
    for p in parts:
        for lo in range(0, len(p), _CHUNK_ROWS):
            out.append(read_rows(p, lo, lo + _CHUNK_ROWS))
    return out.finish()


def stream_log(
    inputs: tuple[str, ...] | list[str],
    opts: ReadOptions,
    *,
    stdin: BinaryIO | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Progress = SILENT,
    spill_dir: Path | None = None,
    hash_inputs: bool = True,
) -> Log:
    """Read every input (in order), block by block, into one canonical :class:`~seqprep.readers.Log`.

    With ``spill_dir`` the integer columns are written to files there and the Log's arrays are
    read-only memory maps of them (read them back in chunks with :func:`read_rows`). With
    ``hash_inputs=False`` no input is hashed and every ``InputInfo.sha256`` is None.
    """
    new_buffer = buffer_factory(spill_dir)
    specs = expand_inputs(inputs)
    if specs.count("-") > 1:
        msg = "stdin (-) is given more than once; pass it once"
        raise ConfigError(msg)
    users: list[tuple[np.ndarray, pa.Array]] = []
    items: list[tuple[np.ndarray, pa.Array]] = []
    times: list[tuple[np.ndarray, np.ndarray | None]] = []
    units: list[str] = []
    ratings: list[np.ndarray | None] = []
    infos: list[InputInfo] = []
    typed_text = {"user": False, "item": False}
    with ThreadPoolExecutor(max_workers=1) as hasher:
        for spec in specs:
            src = _Source(spec, stdin=stdin, hashed=hash_inputs)
            head = src.head()
            fmt = _detect_format(src, opts, head)
            # the range reader hashes what it reads; any other input is hashed beside the read
            sha = None
            if hash_inputs and not _read_in_ranges(src, opts, head, fmt):
                sha = hasher.submit(src.sha256)
            where = spec if spec != "-" else "stdin"
            progress.phase(f"reading {os.path.basename(where) or where}", src.size, "bytes")
            cols, roles, header, typed = _read_one(src, opts, block_size, progress, fmt, head, new_buffer)
            for role in typed_text:
                typed_text[role] |= typed[role]
            users.append(cols.user.finish())
            items.append(cols.item.finish())
            # NUL bytes in ids: checked on the distinct ids; the rows are looked at only when one is found
            # a message names the row's line in the file (quoted fields may hold line ends): found on demand
            lines = RowLines(header, src, _csv_layout(src, opts, head)[0]) if fmt == "csv" else RowLines(header)
            _check_nul_ids(tuple(_as_dict(*part) for part in (users[-1], items[-1])), where, lines)
            t, t_valid, unit = cols.time_columns(where, lines)
            times.append((t, t_valid))
            units.append(unit)
            ratings.append(None if cols.rating is None else cols.rating.finish())
            infos.append(
                InputInfo(
                    path=spec,
                    bytes=src.size,
                    sha256=(src.sha256() if sha is None else sha.result()) if hash_inputs else None,
                    rows=cols.rows,
                    format=fmt,
                    compression=src.compression,
                    columns=dict(roles),
                )
            )
    progress.phase("encoding ids")
    user_codes, user_ids = _translate(users, opts.id_type, "user", typed_text["user"], new_buffer)
    del users
    item_codes, item_ids = _translate(items, opts.id_type, "item", typed_text["item"], new_buffer)
    del items
    time_np, valid, unit = _merge_time_columns(times, units, new_buffer)
    del times
    rating = None
    if any(r is not None for r in ratings):
        rating = _concat(
            [r if r is not None else np.full(info.rows, np.nan, np.float32) for r, info in zip(ratings, infos)],
            np.float32,
            new_buffer,
        )
    progress.done()
    return Log(
        user_codes=user_codes,
        user_ids=user_ids,
        item_codes=item_codes,
        item_ids=item_ids,
        time=time_np,
        time_valid=valid,
        time_unit=unit,
        rating=rating,
        inputs=tuple(infos),
    )


def _merge_time_columns(
    times: list[tuple[np.ndarray, np.ndarray | None]], units: list[str], new_buffer: Callable[[Any], Any]
) -> tuple[np.ndarray, np.ndarray, str]:
    """-> (values, validity, unit) of all inputs in order, as ``_merge_times`` would give them."""
    n = sum(len(t) for t, _ in times)
    if len(set(units)) <= 1 and len({t.dtype for t, _ in times}) <= 1:
        # same unit and dtype: plain concatenation (chunk by chunk when spilled)
        values = _concat([t for t, _ in times], times[0][0].dtype, new_buffer) if times else np.empty(0, np.int64)
        if all(v is None for _, v in times):
            return values, np.ones(n, dtype=bool), units[0] if units else "epoch"
        valid = np.concatenate([np.ones(len(t), bool) if v is None else np.asarray(v) for t, v in times])
        return values, valid, units[0]
    arrays = [pa.array(np.asarray(t), mask=None if v is None else ~np.asarray(v)) for t, v in times]
    time, unit = _merge_times(arrays, units)
    valid = np.ones(n, dtype=bool) if time.null_count == 0 else time.is_valid().to_numpy(zero_copy_only=False)
    values = time.to_numpy(zero_copy_only=False) if time.null_count == 0 else pc.fill_null(time, 0).to_numpy()
    return values, valid, unit
