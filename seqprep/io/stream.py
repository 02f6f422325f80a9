"""Streaming ingestion: inputs are read block by block and only compact integer columns are kept.

:func:`read_batches` is the per-format read of one input (CSV, JSON Lines, Parquet; the retries and
the error paths that name a line), shared by the log reader (:func:`stream_log`, whose sink keeps
the user, item, time and rating columns) and the attribute-table reader
(:func:`seqprep.io.table.read_table`, whose sink keeps the key): a sink takes the batches, a
:data:`~seqprep.io.sniff.RoleFinder` says which columns play which role.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ..config import ReadOptions
from ..errors import ConfigError, InputError, SeqprepError, one_line
from ..kernels.arrow import from_numpy
from ..model import Column, InputInfo, Log
from ..progress import SILENT, Progress
from .buffers import GrowBuffer, IdEncoder, buffer_factory, read_rows
from .columns import DICT, canonical_ints, check_nul_ids, ids_to_dict, normalize_rating, normalize_time
from .diagnose import parse_error, utf8_error
from .merge import merge_dictionaries, merged_kind, numbers_as_text, plan_times
from .quoting import QuotedStream, RowLines, lines_before, scan_rows, text_chunks, unclosed_quote
from .ranges import RangeReader, closed_quotes
from .sniff import (
    ID_ROLES,
    ColumnRequest,
    CsvLayout,
    RoleFinder,
    csv_layout,
    detect_format,
    field_path,
    find_column,
    jsonl_layout,
    paths_in_schema,
    resolve_columns,
)
from .sources import Position, Source, csv_source, expand_inputs, open_tracked

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "BatchSink",
    "ExtraColumn",
    "InputColumns",
    "encode_ids",
    "extract_column",
    "merged_column",
    "numbers_checked",
    "read_batches",
    "read_in_ranges",
    "read_source",
    "stream_log",
]


DEFAULT_BLOCK_SIZE = 1 << 24


class ExtraColumn:
    """A requested column while one input is read; its kind is fixed by the first batch."""

    def __init__(self, req: ColumnRequest, new_buffer: Callable[[Any], Any]) -> None:
        self.req = req
        self.kind: str | None = None
        self.codes = IdEncoder(new_buffer=new_buffer)  # text, list elements
        self.numbers: Any = None  # number
        self.lengths: Any = None  # list: values per row
        self.new_buffer = new_buffer

    def add(self, arr: pa.Array) -> None:
        if self.kind is None:
            self.kind = _kind_of(arr.type, self.req)
            if self.kind == "number" and not _is_text(arr.type):  # text read for a number: checked at the end
                self.numbers = self.new_buffer(np.float64)
            if self.kind == "list":
                self.lengths = self.new_buffer(np.int64)
        if self.numbers is not None:
            values = pc.cast(arr, pa.float64())
            self.numbers.append(pc.fill_null(values, float("nan")).to_numpy(zero_copy_only=False))
        elif self.kind == "list":
            lengths = pc.fill_null(pc.list_value_length(arr), 0)
            self.lengths.append(lengths.to_numpy(zero_copy_only=False).astype(np.int64))
            self.codes.add(_dictionary(pc.list_flatten(arr)))
        else:  # text (a number column of text: checked when the read ends, naming the bad row)
            self.codes.add(self._checked(_dictionary(arr)))
            self.codes.flush_small()

    def _checked(self, arr: pa.DictionaryArray) -> pa.DictionaryArray:
        """pyarrow's CSV dictionary conversion does not check UTF-8: checked on the distinct values."""
        if pa.types.is_string(arr.dictionary.type):
            try:
                arr.dictionary.validate(full=True)
            except pa.ArrowInvalid:
                msg = f"column {self.req.name!r} ({self.req.flag}) holds text that is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                raise InputError(msg) from None
        return arr

    def close(self) -> None:
        for buf in (self.codes.codes, self.numbers, self.lengths):
            if buf is not None:
                buf.close()

    def finish(self) -> tuple[str, Any, np.ndarray | None, np.ndarray | None]:
        """-> (kind, values, codes, offsets) of this input's column (a :class:`~seqprep.model.Column`'s)."""
        if self.kind is None:  # no row at all
            self.kind = "number" if self.req.read_as == "number" else "text"
            if self.kind == "number":
                self.numbers = self.new_buffer(np.float64)
        if self.numbers is not None:
            if hasattr(self.codes.codes, "close"):  # the unused codes' file (--memory-limit)
                self.codes.codes.close()
            return "number", self.numbers.finish(), None, None
        codes, values = self.codes.finish()
        if self.kind == "list":
            lengths = self.lengths.finish()
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            return "list", values, codes, offsets
        return "text", values, codes, None  # (a number column that arrived as text: typed by the caller)


def _is_text(typ: pa.DataType) -> bool:
    return pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_dictionary(typ)


def _kind_of(typ: pa.DataType, req: ColumnRequest) -> str:
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return "list"
    if req.read_as == "number" or (req.read_as == "auto" and (pa.types.is_floating(typ) or pa.types.is_integer(typ))):
        return "number"
    return "text"


def _dictionary(arr: pa.Array) -> pa.DictionaryArray:
    """Any column as a dictionary array (bools as the text ``true`` / ``false``)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        return arr
    if pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.string())
    return pc.dictionary_encode(arr)


def extract_column(batch: pa.RecordBatch | pa.Table, top: str, sub: str | None) -> pa.Array:
    """A requested column of a batch: a top-level column, or field ``sub`` of the struct ``top``."""
    col = batch.column(top)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if sub is None:
        return col
    return pc.struct_field(col, [sub]) if pa.types.is_struct(col.type) else pa.nulls(len(col), pa.string())


class _FileColumns:
    """One input's compact columns while it is being read."""

    def __init__(
        self,
        *,
        rating_via_double: bool,
        new_buffer: Callable[[Any], Any],
        requests: tuple[ColumnRequest, ...] = (),
    ) -> None:
        self.extra = {r.name: ExtraColumn(r, new_buffer) for r in requests}
        self.new_buffer = new_buffer
        # the requested columns of a batch are added on a thread of their own while this one encodes
        # its ids (in memory only: a spilled read names its files in the order its buffers are made)
        self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-columns") if self.extra and new_buffer is GrowBuffer else None
        self._job: Any = None  # the previous batch's requested columns being added
        self.user = IdEncoder(new_buffer=new_buffer)
        self.item = IdEncoder(new_buffer=new_buffer)
        self.time: Any = new_buffer(np.int64)
        self.time_valid: Any = None
        self.time_raw: list[pa.Array] = []
        self.rating: Any = None
        self.rows = 0
        self.expected = 0  # the rows the whole input is estimated to hold (reserve)
        self.rating_via_double = rating_via_double

    def add(
        self, batch: pa.RecordBatch | pa.Table, roles: dict[str, str], where: str, paths: dict[str, tuple[str, str | None]]
    ) -> None:
        n = batch.num_rows
        self.settle()  # (batch by batch, in order: an error names the same batch as a serial read)
        if self._beside is None:
            self._add_extra(batch, paths)
        else:
            self._job = self._beside.submit(self._add_extra, batch, paths)
        try:
            self._add_roles(batch, roles, where)
        except BaseException:
            self.settle()  # this batch's requested columns failed first: their error, as read in turn
            raise
        self.rows += n

    def reserve(self, rows: int) -> None:
        """Room for about ``rows`` rows in every buffer of the roles' columns (an estimate from the
        bytes read so far), so they do not grow, copying, batch by batch."""
        self.expected = rows
        for buf in (self.user.codes, self.item.codes, self.time, self.time_valid, self.rating):
            if buf is not None:
                buf.reserve(rows)

    def _add_extra(self, batch: pa.RecordBatch | pa.Table, paths: dict[str, tuple[str, str | None]]) -> None:
        for name, extra in self.extra.items():
            extra.add(extract_column(batch, *paths[name]))

    def settle(self) -> None:
        """Wait for the requested columns of the batches added so far (their error, if any, now)."""
        job, self._job = self._job, None
        if job is not None:
            job.result()

    def _add_roles(self, batch: pa.RecordBatch | pa.Table, roles: dict[str, str], where: str) -> None:
        for role, encoder in (("user", self.user), ("item", self.item)):
            encode_ids(batch.column(roles[role]), role, where, encoder)
        t = batch.column(roles["time"])
        if self.time is not None and pa.types.is_integer(t.type):
            # integer epochs need no look at the whole column: encode now
            t64 = pc.cast(t, pa.int64())
            if t64.null_count and self.time_valid is None:
                self.time_valid = self.new_buffer(np.bool_)
                self.time_valid.reserve(self.expected)
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
                r = normalize_rating(_chunked(r), where, pa.float64())
            r = normalize_rating(_chunked(r), where)
            if self.rating is None:
                self.rating = self.new_buffer(np.float32)
                self.rating.reserve(self.expected)
            self.rating.append(pc.fill_null(r, float("nan")).to_numpy(zero_copy_only=False))

    def close(self) -> None:
        """Release the buffers of a read that is abandoned (an error, or a re-read)."""
        self.shutdown()
        for buf in (self.user.codes, self.item.codes, self.time, self.time_valid, self.rating):
            if buf is not None:
                buf.close()
        for extra in self.extra.values():
            extra.close()

    def shutdown(self) -> None:
        """Stop the requested columns' thread (a job still running ends first; its error is not wanted)."""
        if self._beside is not None:
            self._beside.shutdown(wait=True)
            self._beside = None
        self._job = None

    def time_columns(self, where: str, lines: RowLines) -> tuple[np.ndarray, np.ndarray | None, str]:
        """-> (int64/float64 values with 0 where missing, validity or None when none is missing, unit).

        The same values ``normalize_time`` gives for the whole column.
        """
        if self.time is not None:
            return self.time.finish(), None if self.time_valid is None else self.time_valid.finish(), "epoch"
        col = pa.chunked_array(self.time_raw) if self.time_raw else pa.chunked_array([], pa.null())
        arr, unit = normalize_time(col, where, lines)
        self.time_raw = []
        if arr.null_count == 0:
            return arr.to_numpy(zero_copy_only=False), None, unit
        return pc.fill_null(arr, 0).to_numpy(), arr.is_valid().to_numpy(zero_copy_only=False), unit


def encode_ids(col: pa.Array | pa.ChunkedArray, role: str, where: str, encoder: IdEncoder, flag: str | None = None) -> None:
    """One batch's id column (a log's user or item, a table's key) added to ``encoder``; ``flag``
    names the option that chose the column in messages (default ``--<role>-col``).

    Text ids that are all canonical decimal in a chunk (:func:`~seqprep.io.columns.canonical_ints`:
    a CSV's id columns are parsed as plain text for this) are encoded as integers, which give the
    same codes and dictionary as the text would; any other chunk is encoded as text."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if chunks and all(pa.types.is_string(c.type) for c in chunks):
        for chunk in chunks:
            ints = canonical_ints(chunk)
            if ints is not None:
                encoder.add_ints(*ints)
            else:
                _encode_text_ids(chunk, role, where, encoder, flag)
        return
    _encode_text_ids(col, role, where, encoder, flag)


def _encode_text_ids(col: pa.Array | pa.ChunkedArray, role: str, where: str, encoder: IdEncoder, flag: str | None) -> None:
    ids = ids_to_dict(col, role, where, flag)
    if pa.types.is_string(ids.dictionary.type):
        try:  # pyarrow's CSV dictionary conversion does not check UTF-8: checked on the distinct ids
            ids.dictionary.validate(full=True)
        except pa.ArrowInvalid:
            raise _NotUtf8 from None
    encoder.add(ids)


class BatchSink(Protocol):
    """What :func:`read_batches` hands the batches of one input to (a log's or a table's columns)."""

    rows: int

    def add(
        self, batch: pa.RecordBatch | pa.Table, roles: dict[str, str], where: str, paths: dict[str, tuple[str, str | None]]
    ) -> None: ...

    def settle(self) -> None:
        """Wait for the work of the batches added so far (raising its error), when a sink runs some
        beside the reader."""

    def close(self) -> None: ...


def _chunked(col: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])


def _csv_batches(
    src: Source,
    opts: ReadOptions,
    head: bytes,
    block_size: int,
    as_text: set[str],
    requests: tuple[ColumnRequest, ...] = (),
    find_roles: RoleFinder | None = None,
    layout: CsvLayout | None = None,
) -> tuple[dict[str, str], int, Iterator[pa.RecordBatch], Position, Callable[[], None], dict[str, tuple[str, str | None]]]:
    sep, names, header, roles = _layout(src, opts, head, layout, find_roles)
    paths = {r.name: (find_column(r.name, names, r.flag, src.name), None) for r in requests}
    if len(sep) > 1:
        source, delim = csv_source(src, sep)
        pos = Position(source.tell)
    else:
        source, pos = open_tracked(src)
        delim = sep
    types: dict[str, pa.DataType] = {}
    for r in requests:  # numbers parsed as float64 (as text when a row does not fit: named then), the rest text
        number = r.read_as == "number" and f"extra:{r.name}" not in as_text
        types[paths[r.name][0]] = pa.float64() if number else DICT
    # ids as plain text: a block whose ids are all canonical decimal is encoded as integers (exact),
    # any other as text, as a dictionary parse would (encode_ids); a file whose first lines hold an
    # id that is not canonical is parsed with dictionary ids throughout
    types.update({roles[r]: pa.string() if _head_ids_canonical(head, sep, names, roles[r]) else DICT for r in ID_ROLES if r in roles})
    types.update({roles[r]: pa.string() for r in as_text if r in roles})
    used = list(roles.values())
    conv = pacsv.ConvertOptions(
        include_columns=list(dict.fromkeys(used + [top for top, _ in paths.values()])),
        column_types=types,
        strings_can_be_null=True,
    )
    parse = pacsv.ParseOptions(delimiter=delim)
    if len(sep) == 1 and src.compression is None and (src.path is not None or src.data is not None):
        source.close()
        # plain reads, not a memory map: mapped file pages would count in the process's RSS as it
        # reads through a file larger than memory; each range is read into a fresh buffer instead
        data = pa.OSFile(str(src.path)) if src.path is not None else pa.BufferReader(src.data)
        ranges = RangeReader(data, names, header, block_size, parse, conv, hashed=src.hashed, where=src.name)
        return roles, 1 if header else 0, ranges, Position(lambda: ranges.position), ranges.close, paths
    # the streaming reader: quoted fields may hold line ends anywhere in the stream (and in the header,
    # skipped as a row); the bytes pass through a tracker that knows, at the end, if a quote never closed
    watched = QuotedStream(source, ord(delim))
    read_opts = pacsv.ReadOptions(
        column_names=names, skip_rows_after_names=1 if header else 0, block_size=block_size, use_threads=True
    )
    parse = pacsv.ParseOptions(delimiter=delim, newlines_in_values=True)
    reader = pacsv.open_csv(watched, read_options=read_opts, parse_options=parse, convert_options=conv)
    return roles, 1 if header else 0, closed_quotes(reader, watched, src, sep), pos, source.close, paths


def _head_ids_canonical(head: bytes, sep: str, names: list[str], column: str) -> bool:
    """Whether the ids of ``column`` in the lines of ``head`` after its first (a header, or a row
    this guess can do without) are canonical decimal: a file whose first ids are text (``u17``,
    ``007``) is parsed with dictionary ids, which is cheaper for text than plain text and a hash.
    Only a guess for speed: either way every block gives the same codes."""
    if len(sep) != 1:
        return True
    end = max(head.rfind(b"\n"), head.rfind(b"\r"))
    start = head.find(b"\n") + 1
    if start <= 0 or end <= start:
        return True
    try:
        table = pacsv.read_csv(
            pa.BufferReader(head[start : end + 1]),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(include_columns=[column], column_types={column: pa.string()}, strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, KeyError, ValueError):
        return True  # (quoted line ends, a short row: the read says what is wrong, in its place)
    ids = table.column(0).combine_chunks() if table.num_rows else None
    return ids is None or ids.null_count == len(ids) or canonical_ints(ids) is not None


def _layout(src: Source, opts: ReadOptions, head: bytes, pinned: CsvLayout | None, find_roles: RoleFinder | None = None) -> CsvLayout:
    """The CSV layout sniffed from ``head``, or the ``pinned`` one (a piece of a file after its first:
    the file's layout, without a header line)."""
    return pinned if pinned is not None else csv_layout(src.name, opts, head, find_roles)


def read_in_ranges(src: Source, opts: ReadOptions, head: bytes, fmt: str, find_roles: RoleFinder | None = None) -> bool:
    """Whether ``_csv_batches`` will read ``src`` with :class:`RangeReader` (which hashes it)."""
    if fmt != "csv" or src.compression is not None or src.path is None:
        return False
    try:
        sep = csv_layout(src.name, opts, head, find_roles)[0]
    except SeqprepError:
        return False  # the read raises it, in its place
    return len(sep) == 1


def _jsonl_batches(
    src: Source,
    opts: ReadOptions,
    head: bytes,
    block_size: int,
    requests: tuple[ColumnRequest, ...] = (),
    time_as_float: bool = False,
    find_roles: RoleFinder | None = None,
) -> tuple[dict[str, str], Iterator[pa.RecordBatch], Position, Callable[[], None], pa.Schema, dict[str, tuple[str, str | None]]]:
    roles, schema = jsonl_layout(src.name, opts, head, requests, time_as_float, find_roles)
    source, pos = open_tracked(src)
    reader = pajson.open_json(
        source,
        read_options=pajson.ReadOptions(block_size=block_size),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    return roles, iter(reader), pos, source.close, schema, paths_in_schema(requests, schema)


def _parquet_batches(
    src: Source,
    opts: ReadOptions,
    block_size: int,
    requests: tuple[ColumnRequest, ...] = (),
    find_roles: RoleFinder | None = None,
    row_groups: tuple[int, ...] | None = None,
) -> tuple[dict[str, str], Iterator[pa.RecordBatch], Position, pa.Schema, dict[str, tuple[str, str | None]]]:
    data = src.open() if src.compression is None else pa.BufferReader(pa.py_buffer(src.read_all()))
    pf = pq.ParquetFile(data)
    names = pf.schema_arrow.names
    roles = resolve_columns(names, opts, src.name) if find_roles is None else find_roles(names, src.name)
    paths = {r.name: field_path(r, pf.schema_arrow.names, src.name) for r in requests}
    columns = list(dict.fromkeys(list(roles.values()) + [top for top, _ in paths.values()]))
    schema = pa.schema([pf.schema_arrow.field(c) for c in columns])
    rows_per_batch = max(1, block_size // 32)
    total = max(1, pf.metadata.num_rows)
    done = [0]

    def batches() -> Iterator[pa.RecordBatch]:
        for b in pf.iter_batches(batch_size=rows_per_batch, columns=columns, row_groups=row_groups):
            done[0] += b.num_rows
            yield b

    return roles, batches(), Position(lambda: src.size * done[0] // total), schema, paths


def _read_attempt(
    src: Source,
    opts: ReadOptions,
    block_size: int,
    progress: Progress,
    fmt: str,
    head: bytes,
    new_sink: Callable[[set[str]], BatchSink],
    as_text: set[str],
    requests: tuple[ColumnRequest, ...] = (),
    find_roles: RoleFinder | None = None,
    layout: CsvLayout | None = None,
    row_groups: tuple[int, ...] | None = None,
) -> tuple[BatchSink, dict[str, str], int, dict[str, bool]]:
    """One pass over one input; on any error its buffers are released and the error goes up."""
    where = src.name
    typed_text = dict.fromkeys(ID_ROLES, False)
    header = 0
    close: Callable[[], None] | None = None
    cols = new_sink(as_text)
    try:
        try:
            if fmt == "csv":
                roles, header, batches, pos, close, paths = _csv_batches(src, opts, head, block_size, as_text, requests, find_roles, layout)
            elif fmt == "jsonl":
                time_float = "time" in as_text
                roles, batches, pos, close, schema, paths = _jsonl_batches(
                    src, opts, head, block_size, requests, time_float, find_roles
                )
            else:
                roles, batches, pos, schema, paths = _parquet_batches(src, opts, block_size, requests, find_roles, row_groups)
            if fmt != "csv":
                for role in ID_ROLES:
                    if role in roles:
                        typ = schema.field(roles[role]).type
                        typed_text[role] = pa.types.is_string(typ) or pa.types.is_large_string(typ)
            reserved = False
            for batch in batches:
                if fmt == "csv" and any(_is_binary(t) for t in batch.schema.types):
                    raise _NotUtf8  # a column pyarrow could not read as text (checked on the schema only)
                cols.add(batch, roles, where, paths)
                done = pos() or 0
                if not reserved and isinstance(cols, _FileColumns) and done and src.size:
                    reserved = True  # after the first batch: the rows of the whole input, from its bytes
                    cols.reserve(cols.rows * src.size // done * 21 // 20)
                progress.update(done, cols.rows)
            cols.settle()  # (a log's requested columns are added beside its ids)
            if isinstance(batches, RangeReader) and batches.sha256 is not None:
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


def read_batches(
    src: Source,
    opts: ReadOptions,
    block_size: int,
    progress: Progress,
    fmt: str,
    head: bytes,
    new_sink: Callable[[set[str]], BatchSink],
    requests: tuple[ColumnRequest, ...] = (),
    find_roles: RoleFinder | None = None,
    layout: CsvLayout | None = None,
    row_groups: tuple[int, ...] | None = None,
) -> tuple[BatchSink, dict[str, str], int, dict[str, bool]]:
    """Read one input of format ``fmt`` batch by batch into a sink -> (sink, role -> column, header
    rows, role -> whether a typed source holds its ids as text).

    ``new_sink(as_text)`` makes the sink of one pass (``as_text``: the roles, or ``extra:NAME``
    requests, read as text after a block did not fit the type inferred from the first); a failed
    pass is retried with bigger blocks or more text columns, and what cannot be read becomes a
    one-line InputError naming the line. ``find_roles`` finds the role columns (default: a log's);
    ``layout`` and ``row_groups``: see :func:`read_source`.
    """
    as_text: set[str] = set()
    while True:  # a few times at most: CSV columns typed from the first block, then as text
        try:
            return _read_attempt(src, opts, block_size, progress, fmt, head, new_sink, as_text, requests, find_roles, layout, row_groups)
        except _NotUtf8:
            if fmt != "csv":  # a Parquet string column pyarrow did not validate
                msg = (
                    f"{src.name}: an id column holds text that is not valid UTF-8; rewrite the file with UTF-8 strings"
                )
                raise InputError(msg) from None
            sep, names, header, roles = _layout(src, opts, head, layout, find_roles)
            raise utf8_error(src, names, header, sep, _with_requests(roles, names, requests, src.name), src.name) from None
        except pa.ArrowInvalid as e:
            where = src.name
            if "straddl" in str(e) and fmt == "csv":
                # a row longer than a block (long quoted text, or a quote never closed): one pass finds
                # which; then the read starts again with blocks that hold the longest row
                sep = _layout(src, opts, head, layout, find_roles).sep
                opened, longest = scan_rows(src, sep)
                if opened >= 0:
                    with contextlib.closing(text_chunks(src, sep)) as chunks:
                        raise unclosed_quote(where, lines_before(chunks, opened)) from e
                if block_size <= 2 * longest:
                    block_size = 1 << (2 * longest + 1).bit_length()
                    continue
            if "straddl" in str(e):
                msg = f"{where}: a row is longer than the block size ({block_size:,} bytes); pass a larger --block-size"
                raise InputError(msg) from e
            if fmt == "csv":
                # the error paths of the in-memory reader (serial re-reads that name the line)
                sep, names, header, roles = _layout(src, opts, head, layout, find_roles)
                if "utf8" in str(e).lower():
                    raise utf8_error(src, names, header, sep, _with_requests(roles, names, requests, where), where) from e
                if "parse error" in str(e).lower():
                    raise parse_error(src, names, header, sep, where, e) from e
                role = _failed_role(e, src, opts, head, requests, find_roles)
                if role is not None and role not in as_text:
                    as_text.add(role)  # a later block did not fit the type inferred from the first
                    continue
                msg = f"{where}: {one_line(e)}; check --sep ({sep!r}), --names and the row shown"
            elif fmt == "jsonl":
                if "to int64" in str(e) and "time" not in as_text:
                    as_text.add("time")  # an integer timestamp on line 1, a fraction later: read them as float64
                    continue
                msg = f"{where}: {one_line(e)}; every line must be a JSON object with consistent value types"
            else:
                msg = f"{where}: not a readable Parquet file ({one_line(e)}); check the file or pass --input-format"
            raise InputError(msg) from e
        except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as e:
            where = src.name
            if fmt == "parquet":
                msg = f"{where}: not a readable Parquet file ({one_line(e)}); check the file or pass --input-format"
            else:
                msg = f"{where}: cannot read: {e}; check that the file is complete and not corrupt"
            raise InputError(msg) from e


def _with_requests(
    roles: dict[str, str], names: list[str], requests: tuple[ColumnRequest, ...], where: str
) -> dict[str, str]:
    """The role columns and the requested ones: every column whose text must be UTF-8."""
    return {**roles, **{f"extra:{r.name}": find_column(r.name, names, r.flag, where) for r in requests}}


def _failed_role(
    e: Exception,
    src: Source,
    opts: ReadOptions,
    head: bytes,
    requests: tuple[ColumnRequest, ...] = (),
    find_roles: RoleFinder | None = None,
) -> str | None:
    """The time or rating role, or ``extra:NAME`` for a requested number column, of the column a CSV
    conversion error names (``In CSV column #2``)."""
    m = re.search(r"CSV column #(\d+): (?:Row #\d+: )?CSV conversion error", str(e))
    if m is None:
        return None
    _, names, _, roles = csv_layout(src.name, opts, head, find_roles)
    k = int(m.group(1))
    name = names[k] if k < len(names) else None
    role = next((r for r in ("time", "rating") if roles.get(r) == name), None)
    if role is None and name is not None:
        role = next((f"extra:{r.name}" for r in requests if r.read_as == "number" and find_column(r.name, names, r.flag, src.name) == name), None)
    return role


_CHUNK_ROWS = 1 << 22


def _as_dict(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    """(codes with -1 for missing, dictionary) as a DictionaryArray view, without a pass over the rows."""
    return pa.DictionaryArray.from_arrays(from_numpy(codes, pa.int32()), dictionary, safe=False)


def _translate(
    parts: list[tuple[np.ndarray, pa.Array]],
    id_type: str,
    role: str,
    typed_text: bool,
    new_buffer: Callable[[Any], Any],
) -> tuple[np.ndarray, pa.Array]:
    """Per-input (codes, dictionary) -> global codes and dictionary (:func:`~seqprep.io.merge.merge_dictionaries`)."""
    tables, dictionary = merge_dictionaries([d for _, d in parts], id_type, role, typed_text)
    if len(parts) == 1 and np.array_equal(tables[0][:-1], np.arange(len(parts[0][1]), dtype=np.int32)):
        return parts[0][0], dictionary  # one input, no id trimmed or merged: its codes are the global ones
    out = new_buffer(np.int32)
    for (codes, _), table in zip(parts, tables):
        for lo in range(0, len(codes), _CHUNK_ROWS):
            out.append(table[read_rows(codes, lo, lo + _CHUNK_ROWS)])
    return out.finish(), dictionary


def _concat(parts: list[np.ndarray], dtype: Any, new_buffer: Callable[[Any], Any]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    out = new_buffer(dtype)
    for p in parts:
        for lo in range(0, len(p), _CHUNK_ROWS):
            out.append(read_rows(p, lo, lo + _CHUNK_ROWS))
    return out.finish()


@dataclass
class InputColumns:
    """One input (or one piece of it, read by a Dask worker) as read: its own id codes and first-seen
    dictionaries, time and rating columns, the requested columns, and (for a whole input) its record.

    ``columns``: name -> (kind, values, codes, offsets) as :class:`~seqprep.model.Column` holds them,
    codes into this input's own dictionary of the values.
    """

    users: tuple[np.ndarray, pa.Array]
    items: tuple[np.ndarray, pa.Array]
    time: tuple[np.ndarray, np.ndarray | None]
    unit: str
    rating: np.ndarray | None
    typed_text: dict[str, bool]
    rows: int
    roles: dict[str, str]
    columns: dict[str, tuple[str, Any, np.ndarray | None, np.ndarray | None]]
    info: InputInfo | None = None


def stream_log(
    inputs: tuple[str, ...] | list[str],
    opts: ReadOptions,
    *,
    stdin: BinaryIO | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Progress = SILENT,
    spill_dir: Path | None = None,
    hash_inputs: bool = True,
    columns: tuple[ColumnRequest, ...] = (),
) -> Log:
    """Read every input (in order), block by block, into one canonical :class:`~seqprep.model.Log`.

    With ``spill_dir`` the integer columns are written to files there and the Log's arrays are
    read-only memory maps of them (read them back in chunks with :func:`read_rows`). With
    ``hash_inputs=False`` no input is hashed and every ``InputInfo.sha256`` is None. ``columns``:
    other columns to read (``Log.columns``, in the order asked), each in every input.
    """
    new_buffer = buffer_factory(spill_dir)
    specs = expand_inputs(inputs)
    if specs.count("-") > 1:
        msg = "stdin (-) is given more than once; pass it once"
        raise ConfigError(msg)
    with ThreadPoolExecutor(max_workers=1) as hasher:
        read = [
            _read_input(spec, opts, stdin, block_size, progress, new_buffer, hasher if hash_inputs else None, columns)
            for spec in specs
        ]
    progress.phase("encoding ids")
    return _merged(read, opts, new_buffer, progress)


def _read_input(
    spec: str,
    opts: ReadOptions,
    stdin: BinaryIO | None,
    block_size: int,
    progress: Progress,
    new_buffer: Callable[[Any], Any],
    hasher: ThreadPoolExecutor | None,
    requests: tuple[ColumnRequest, ...] = (),
) -> InputColumns:
    """One input into compact columns; with ``hasher`` its sha256 too (the range reader hashes what
    it reads; any other input is hashed beside the read)."""
    src = Source(spec, stdin=stdin, hashed=hasher is not None)
    head = src.head()
    fmt = detect_format(src.inner_name, opts, head)
    sha = hasher.submit(src.sha256) if hasher is not None and not read_in_ranges(src, opts, head, fmt) else None
    where = spec if spec != "-" else "stdin"
    progress.phase(f"reading {os.path.basename(where) or where}", src.size, "bytes")
    read = read_source(src, opts, fmt, head, block_size=block_size, requests=requests, progress=progress, new_buffer=new_buffer, where=where)
    sha256 = None
    if hasher is not None:
        sha256 = src.sha256() if sha is None else sha.result()
    read.info = InputInfo(
        path=spec,
        bytes=src.size,
        sha256=sha256,
        rows=read.rows,
        format=fmt,
        compression=src.compression,
        columns=dict(read.roles),
    )
    return read


def read_source(
    src: Source,
    opts: ReadOptions,
    fmt: str,
    head: bytes,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    requests: tuple[ColumnRequest, ...] = (),
    layout: CsvLayout | None = None,
    row_groups: tuple[int, ...] | None = None,
    progress: Progress = SILENT,
    new_buffer: Callable[[Any], Any] = GrowBuffer,
    where: str | None = None,
) -> InputColumns:
    """``src`` (a whole input, or a piece of one) into compact columns, by the streaming reader.

    ``head``: the input's first bytes, which its format and layout are sniffed from (for a piece,
    the file's head: a piece has no header line of its own); ``layout``: a CSV layout that overrides
    the sniffed one (a piece after the first: the file's layout, ``header=False``); ``row_groups``:
    the Parquet row groups to read (default: all). Messages name ``where`` (default: ``src.name``),
    and their lines count from the start of ``src``.
    """
    where = src.name if where is None else where

    def new_sink(as_text: set[str]) -> _FileColumns:
        return _FileColumns(rating_via_double="rating" in as_text, new_buffer=new_buffer, requests=requests)

    cols, roles, header, typed = read_batches(src, opts, block_size, progress, fmt, head, new_sink, requests, layout=layout, row_groups=row_groups)
    assert isinstance(cols, _FileColumns)
    cols.shutdown()
    users, items = cols.user.finish(), cols.item.finish()
    # a message names the row's line in the file (quoted fields may hold line ends): found on demand
    lines = RowLines(header, src, _layout(src, opts, head, layout).sep) if fmt == "csv" else RowLines(header)
    # NUL bytes in ids: checked on the distinct ids; the rows are looked at only when one is found
    check_nul_ids((_as_dict(*users), _as_dict(*items)), where, lines)
    t, t_valid, unit = cols.time_columns(where, lines)
    rating = None if cols.rating is None else cols.rating.finish()
    if rating is None and "rating" in roles:  # a rating column, no row: an empty one (pieces merge)
        rating = np.zeros(0, np.float32)
    extra = {r.name: numbers_checked(cols.extra[r.name].finish(), r, where, lines) for r in requests}
    return InputColumns(users, items, (t, t_valid), unit, rating, typed, cols.rows, dict(roles), extra)


def numbers_checked(
    part: tuple[str, Any, np.ndarray | None, np.ndarray | None], req: ColumnRequest, where: str, lines: RowLines
) -> tuple[str, Any, np.ndarray | None, np.ndarray | None]:
    """A number column that arrived as text (a row the float parser refused): its values as numbers
    when every distinct value is one, else the error naming the first row that is not."""
    kind, values, codes, offsets = part
    if req.read_as != "number" or kind != "text":
        return part
    assert codes is not None
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    ok = pc.match_substring_regex(text, r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^(?i:nan|inf|-inf)$")
    if not pc.all(ok).as_py():
        bad = np.flatnonzero(~ok.to_numpy(zero_copy_only=False))
        row = int(np.flatnonzero(np.isin(codes, bad))[0])
        where_flag = req.flag.startswith("--where")
        fix = "compare it with quoted text" if where_flag else f"read the column as categories ({req.name}:cat)"
        msg = (
            f"{where}: line {lines(row)}: {req.flag} {req.name}: {text[int(codes[row])].as_py()!r} is not a number; "
            f"fix the row, or {fix}"
        )
        raise InputError(msg)
    numbers = np.append(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False), np.nan)
    return "number", numbers[codes], None, None  # code -1 (missing) takes the trailing NaN


def _merged(read: list[InputColumns], opts: ReadOptions, new_buffer: Callable[[Any], Any], progress: Progress) -> Log:
    """The inputs' columns as one log: global id dictionaries, one time unit, ratings where any."""
    typed = {role: any(r.typed_text[role] for r in read) for role in ("user", "item")}
    users, items, times = [r.users for r in read], [r.items for r in read], [r.time for r in read]
    for r in read:  # the lists above hold each input's columns now, and each list is let go once merged
        r.users = r.items = r.time = None  # type: ignore[assignment]
    user_codes, user_ids = _translate(users, opts.id_type, "user", typed["user"], new_buffer)
    del users
    item_codes, item_ids = _translate(items, opts.id_type, "item", typed["item"], new_buffer)
    del items
    time_np, valid, unit = _merge_time_columns(times, [r.unit for r in read], new_buffer)
    del times
    rating = None
    if any(r.rating is not None for r in read):
        parts = [r.rating if r.rating is not None else np.full(r.rows, np.nan, np.float32) for r in read]
        rating = _concat(parts, np.float32, new_buffer)
    columns = tuple(merged_column(name, [r.columns[name] for r in read], new_buffer) for name in (read[0].columns if read else {}))
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
        inputs=tuple(r.info for r in read),
        columns=columns,
    )


def merged_column(
    name: str, parts: list[tuple[str, Any, np.ndarray | None, np.ndarray | None]], new_buffer: Callable[[Any], Any]
) -> Column:
    """One requested column over every input: numbers concatenated; text and lists with one
    first-seen dictionary of their values (as the ids', without any typing: values stay as read)."""
    kind, as_text = merged_kind([k for k, *_ in parts])
    if kind == "number":
        return Column(name, "number", _concat([v for _, v, _, _ in parts], np.float64, new_buffer))
    if as_text:  # a number in one input, text in another: text everywhere
        parts = [("text", *numbers_as_text(v)[::-1], None) if k == "number" else (k, v, c, o) for k, v, c, o in parts]
    codes, values = _translate([(c, v) for _, v, c, _ in parts], "auto", name, True, new_buffer)
    offsets = None
    if kind == "list":
        shifted, at = [], 0
        for k, _, c, o in parts:
            o = o if o is not None else np.arange(len(c) + 1, dtype=np.int64)  # one value per row
            shifted.append(o[:-1] + at)
            at += int(o[-1])
        offsets = np.append(np.concatenate(shifted), at).astype(np.int64)
    return Column(name, kind, values, codes=codes, offsets=offsets)


def _merge_time_columns(
    times: list[tuple[np.ndarray, np.ndarray | None]], units: list[str], new_buffer: Callable[[Any], Any]
) -> tuple[np.ndarray, np.ndarray, str]:
    """-> (values, validity, unit) of all inputs in order, by :func:`~seqprep.io.merge.plan_times`."""
    n = sum(len(t) for t, _ in times)
    if not times:
        return np.empty(0, np.int64), np.ones(0, dtype=bool), "epoch"
    has = [v is None or bool(np.asarray(v).any()) if len(t) else False for t, v in times]
    plan = plan_times(units, [t.dtype == np.float64 for t, _ in times], has, list(range(len(times))))
    dtype = np.dtype(np.float64) if plan.as_float else times[0][0].dtype
    if any(s != 1 for s in plan.scales) or any(t.dtype != dtype for t, _ in times):
        # rescaled or retyped input by input (chunk by chunk when spilled)
        out = new_buffer(dtype)
        for k, (t, _) in enumerate(times):
            for lo in range(0, len(t), _CHUNK_ROWS):
                out.append(plan.apply(k, read_rows(t, lo, lo + _CHUNK_ROWS)))
        values = out.finish()
    else:  # same unit and dtype: plain concatenation
        values = _concat([t for t, _ in times], dtype, new_buffer)
    if all(v is None for _, v in times):
        return values, np.ones(n, dtype=bool), plan.unit
    valid = np.concatenate([np.ones(len(t), bool) if v is None else np.asarray(v) for t, v in times])
    return values, valid, plan.unit
