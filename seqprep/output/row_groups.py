"""One Parquet file from row groups encoded column by column on several threads, byte for byte what
one writer writes.

pyarrow's ``ParquetWriter`` encodes a file on one thread. A column chunk does not depend on where in
the file it lands (page headers hold no file offsets) nor on the other columns, so each column of
each row group can be encoded on its own, as a one-column file in memory, on a thread pool (the
encoding releases the GIL; a file of one row group - 1M interactions - is encoded on every core
too), and the file put together from them: ``PAR1``, every row group's column chunks in order, and
a footer that is the one a writer gives the table's schema (the footer of an empty table) with
every row group in it - each made of its columns' chunk metadata, their file offsets moved to where
their bytes now are, and its sizes the sums of theirs. The footer is Thrift compact protocol;
:func:`read_struct` and :func:`write_struct` read and write it field by field, keeping every field
and its order, so an unchanged footer comes back unchanged and the joined file is the one a single
``ParquetWriter`` writes (tests/test_row_groups.py compares them). Footers with anything this does
not know how to move (page indexes, bloom filters, encryption, column chunks in other files) are
refused: :class:`Unjoinable`, and the caller writes the file with one writer instead.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["PartsWriter", "Unjoinable", "file_footer", "join_columns", "join_footers", "read_struct", "write_struct"]

MAGIC = b"PAR1"

#: A column of a row group that holds fewer bytes than this (its values, list elements included) is
#: encoded on the calling thread, and a file of such columns never starts the pool (a build of a
#: small log: starting threads costs more than they save). The bytes are the same either way. It is
#: a size, not a row count: a sequences row group of 30,000 users holds 5M items.
INLINE_BYTES = 1 << 18

# Thrift compact protocol types
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

#: A struct as read: its fields in file order, each ``(field id, compact type, value)``.
Fields = list[tuple[int, int, Any]]


class Unjoinable(Exception):
    """A piece's footer holds something :func:`join_footers` cannot move; write with one writer."""


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, at
        shift += 7


def _zigzag(buf: bytes, at: int) -> tuple[int, int]:
    v, at = _varint(buf, at)
    return (v >> 1) ^ -(v & 1), at


def _value(buf: bytes, at: int, typ: int) -> tuple[Any, int]:
    if typ in (_TRUE, _FALSE):  # a bool inside a list: one byte
        return buf[at] == _TRUE, at + 1
    if typ == _BYTE:
        return buf[at], at + 1
    if typ in (_I16, _I32, _I64):
        return _zigzag(buf, at)
    if typ == _DOUBLE:
        return buf[at : at + 8], at + 8
    if typ == _BINARY:
        n, at = _varint(buf, at)
        return buf[at : at + n], at + n
    if typ in (_LIST, _SET):
        head = buf[at]
        at += 1
        n, elem = head >> 4, head & 0x0F
        if n == 15:
            n, at = _varint(buf, at)
        items = []
        for _ in range(n):
            v, at = _value(buf, at, elem)
            items.append(v)
        return (elem, items), at
    if typ == _STRUCT:
        return read_struct(buf, at)
    msg = f"Thrift compact type {typ} in a Parquet footer"  # maps: none in Parquet's footer
    raise Unjoinable(msg)


def read_struct(buf: bytes, at: int = 0) -> tuple[Fields, int]:
    """A Thrift compact struct at ``buf[at:]`` -> (its fields in order, the offset after it).

    >>> read_struct(bytes([0x15, 0x04, 0x16, 0x0A, 0x00]))
    ([(1, 5, 2), (2, 6, 5)], 5)
    """
    fields: Fields = []
    last = 0
    while True:
        head = buf[at]
        at += 1
        if head == 0:
            return fields, at
        typ, delta = head & 0x0F, head >> 4
        if delta:
            fid = last + delta
        else:
            fid, at = _zigzag(buf, at)
        if typ in (_TRUE, _FALSE):
            value: Any = typ == _TRUE
        else:
            value, at = _value(buf, at, typ)
        fields.append((fid, typ, value))
        last = fid


def _put_varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _put_zigzag(out: bytearray, v: int) -> None:
    _put_varint(out, (v << 1) ^ (v >> 63))


def _put_value(out: bytearray, typ: int, value: Any) -> None:
    if typ in (_TRUE, _FALSE):
        out.append(_TRUE if value else _FALSE)
    elif typ == _BYTE:
        out.append(value)
    elif typ in (_I16, _I32, _I64):
        _put_zigzag(out, value)
    elif typ == _DOUBLE:
        out += value
    elif typ == _BINARY:
        _put_varint(out, len(value))
        out += value
    elif typ in (_LIST, _SET):
        elem, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            _put_varint(out, len(items))
        for v in items:
            _put_value(out, elem, v)
    else:  # struct
        _put_struct(out, value)


def _put_struct(out: bytearray, fields: Fields) -> None:
    last = 0
    for fid, typ, value in fields:
        head_type = (_TRUE if value else _FALSE) if typ in (_TRUE, _FALSE) else typ
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | head_type)
        else:
            out.append(head_type)
            _put_zigzag(out, fid)
        if typ not in (_TRUE, _FALSE):
            _put_value(out, typ, value)
        last = fid
    out.append(0)


def write_struct(fields: Fields) -> bytes:
    """The Thrift compact bytes of ``fields`` (as :func:`read_struct` gives them).

    >>> write_struct(read_struct(bytes([0x15, 0x04, 0x16, 0x0A, 0x00]))[0]).hex()
    '1504160a00'
    """
    out = bytearray()
    _put_struct(out, fields)
    return bytes(out)


def _get(fields: Fields, fid: int) -> Any:
    return next((v for f, _, v in fields if f == fid), None)


def _set(fields: Fields, fid: int, value: Any) -> Fields:
    return [(f, t, value if f == fid else v) for f, t, v in fields]


# Parquet's footer (parquet.thrift): the fields this module reads, moves or refuses
_FILE_NUM_ROWS, _FILE_ROW_GROUPS = 3, 4
_FILE_ENCRYPTION = (8, 9)  # encryption_algorithm, footer_signing_key_metadata
_RG_COLUMNS, _RG_TOTAL_BYTE_SIZE, _RG_NUM_ROWS, _RG_FILE_OFFSET, _RG_TOTAL_COMPRESSED_SIZE, _RG_ORDINAL = 1, 2, 3, 5, 6, 7
_CC_FILE_PATH, _CC_FILE_OFFSET, _CC_META = 1, 2, 3
_CC_ELSEWHERE = (1, 4, 5, 6, 7, 8, 9)  # file_path, offset/column index, encrypted column metadata
_CM_OFFSETS = (9, 11)  # data_page_offset, dictionary_page_offset
_CM_ELSEWHERE = (10, 14, 15)  # index_page_offset, bloom filter offset and length


def _moved_column(chunk: Fields, shift: int) -> Fields:
    if any(f in _CC_ELSEWHERE for f, _, _ in chunk):
        msg = "a column chunk with a file path, a page index or encrypted metadata"
        raise Unjoinable(msg)
    out = []
    for fid, typ, value in chunk:
        if fid == _CC_FILE_OFFSET and value:  # (0 when the writer does not set it)
            value += shift
        elif fid == _CC_META:
            if any(f in _CM_ELSEWHERE for f, _, _ in value):
                msg = "a column chunk with an index page or a bloom filter"
                raise Unjoinable(msg)
            value = [(f, t, v + shift if f in _CM_OFFSETS else v) for f, t, v in value]
        out.append((fid, typ, value))
    return out


def _moved_row_group(group: Fields, shift: int, ordinal: int) -> Fields:
    out = []
    for fid, typ, value in group:
        if fid == _RG_COLUMNS:
            elem, chunks = value
            value = (elem, [_moved_column(c, shift) for c in chunks])
        elif fid == _RG_FILE_OFFSET:
            value += shift
        elif fid == _RG_ORDINAL:
            value = ordinal
        out.append((fid, typ, value))
    return out


def join_footers(footers: list[Fields], starts: list[int]) -> Fields:
    """The footer of the file made of pieces whose footers are ``footers`` (same schema) and whose column chunks now start at file offsets ``starts`` (they started
    at 4, after ``PAR1``, in their own files)."""
    first = footers[0]
    if any(f in _FILE_ENCRYPTION for f, _, _ in first):
        msg = "an encrypted footer"
        raise Unjoinable(msg)
    groups: list[Fields] = []
    rows = 0
    for footer, start in zip(footers, starts):
        elem, own = _get(footer, _FILE_ROW_GROUPS)
        rows += _get(footer, _FILE_NUM_ROWS)
        groups.extend(_moved_row_group(g, start - len(MAGIC), len(groups)) for g in own)
    return _set(_set(first, _FILE_NUM_ROWS, rows), _FILE_ROW_GROUPS, (elem, groups))


def join_columns(footers: list[Fields], starts: list[int], ordinal: int) -> list[Fields]:
    """The row groups of one table of the joined file from the footers of its one-column pieces (in
    column order) whose column chunks now start at file offsets ``starts``; the first is row group
    ``ordinal`` of the file.

    A row group's columns are its pieces' column chunks in order; its ``total_byte_size`` and
    ``total_compressed_size`` are the sums of theirs (what a writer adds up over its columns); its
    row count and file offset (its first column chunk's) are its first piece's. A piece holds as
    many row groups as a writer would cut the table into (pyarrow's default row group length), the
    same in every column.
    """
    per_piece = []
    for footer, start in zip(footers, starts):
        if any(f in _FILE_ENCRYPTION for f, _, _ in footer):
            msg = "an encrypted footer"
            raise Unjoinable(msg)
        _, own = _get(footer, _FILE_ROW_GROUPS)
        per_piece.append([_moved_row_group(g, start - len(MAGIC), ordinal + k) for k, g in enumerate(own)])
    if len({len(p) for p in per_piece}) != 1:
        msg = "column pieces cut into different row groups"
        raise Unjoinable(msg)
    out = []
    for groups in zip(*per_piece):
        elem, _ = _get(groups[0], _RG_COLUMNS)
        columns = [c for g in groups for c in _get(g, _RG_COLUMNS)[1]]
        joined = []
        for fid, typ, value in groups[0]:
            if fid == _RG_COLUMNS:
                value = (elem, columns)
            elif fid in (_RG_TOTAL_BYTE_SIZE, _RG_TOTAL_COMPRESSED_SIZE):
                value = sum(_get(g, fid) for g in groups)
            joined.append((fid, typ, value))
        out.append(joined)
    return out


def file_footer(template: Fields, groups: list[Fields]) -> Fields:
    """The footer of a file whose row groups are ``groups`` (already moved and numbered), from the
    footer a writer gives its schema (``template``: an empty table's)."""
    if any(f in _FILE_ENCRYPTION for f, _, _ in template):
        msg = "an encrypted footer"
        raise Unjoinable(msg)
    elem, _ = _get(template, _FILE_ROW_GROUPS)
    rows = sum(_get(g, _RG_NUM_ROWS) for g in groups)
    return _set(_set(template, _FILE_NUM_ROWS, rows), _FILE_ROW_GROUPS, (elem, groups))


def _footer(piece: pa.Buffer) -> tuple[Fields, int]:
    """(the footer, the length of the column chunk bytes after ``PAR1``) of a one-file piece."""
    raw = memoryview(piece)
    n = struct.unpack("<I", raw[-8:-4])[0]
    data_end = len(raw) - 8 - n
    fields, _ = read_struct(bytes(raw[data_end : len(raw) - 8]))
    return fields, data_end - len(MAGIC)


def encode_piece(table: pa.Table, options: dict[str, Any]) -> pa.Buffer:
    """``table`` as a Parquet file in memory, with the row groups ``ParquetWriter.write_table(table)``
    gives it (one, unless it holds more than pyarrow's default row group size)."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, **options) as writer:
        writer.write_table(table)
    return sink.getvalue()


class PartsWriter:
    """A Parquet file written row group by row group, each column of each encoded on a pool of ``threads``.

    :meth:`write_table` takes the row groups in file order (at most ``threads + 1`` wait at once, each
    table let go once encoded, except while the first row group's footer is not yet known); their
    bytes go to ``sink`` in that order; :meth:`close` adds the joined footer. ``fallback()`` gives a
    ``ParquetWriter`` on ``sink`` for a file this cannot join (:class:`Unjoinable`, seen on the
    first row group: then every row group goes through that writer, as if this class were not there).
    """

    def __init__(self, sink: Any, options: dict[str, Any], threads: int, fallback: Callable[[pa.Schema], Any]) -> None:
        self.sink, self.options = sink, options
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None  # started for the first column of INLINE_BYTES or more
        self._waiting: list[tuple[pa.Table | None, list[Future[pa.Buffer]]]] = []
        self._template: Fields | None = None  # the footer a writer gives the schema (an empty table's)
        self._groups: list[Fields] = []  # the file's row groups so far, moved to their offsets
        self._at = 0
        self._fallback = fallback
        self._single: Any = None
        self.max_waiting = threads + 1

    def write_table(self, table: pa.Table) -> None:
        if self._single is not None:
            self._single.write_table(table)
            return
        if self._template is None:
            self._template = _footer(encode_piece(table.slice(0, 0), self.options))[0]
        futures = [self._encode(table.select([k])) for k in range(table.num_columns)]
        # a table is kept only until the first row group's footer shows the file can be joined (if
        # not, one writer writes every table): then each is let go once encoded
        self._waiting.append((table if not self._groups else None, futures))
        while len(self._waiting) > self.max_waiting or (self._waiting and all(f.done() for f in self._waiting[0][1])):
            self._put_next()

    def _encode(self, column: pa.Table) -> Future[pa.Buffer]:
        """``encode_piece(column)``: on the pool, or here (already done) for a small column."""
        if column.nbytes >= INLINE_BYTES:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="seqprep-parquet")
            return self._pool.submit(encode_piece, column, self.options)
        done: Future[pa.Buffer] = Future()
        try:
            done.set_result(encode_piece(column, self.options))
        except Exception as e:  # noqa: BLE001 - raised where a pool's would be: by result()
            done.set_exception(e)
        return done

    def _put_next(self) -> None:
        table, futures = self._waiting.pop(0)
        pieces = [f.result() for f in futures]
        footers, lengths = zip(*(_footer(p) for p in pieces)) if pieces else ((), ())
        start = self._at if self._groups else len(MAGIC)
        starts = [start + sum(lengths[:k]) for k in range(len(lengths))]
        try:
            assert self._template is not None
            groups = join_columns(list(footers), starts, len(self._groups))
            if not self._groups:
                file_footer(self._template, groups)  # (raises for a footer this cannot join)
        except Unjoinable:
            if self._groups:
                raise
            self._to_single([table] + [t for t, _ in self._waiting])
            return
        if not self._groups:
            self.sink.write(MAGIC)
            self._at = len(MAGIC)
            self._waiting = [(None, f) for _, f in self._waiting]  # joinable: no table is needed again
        for piece, length in zip(pieces, lengths):
            self.sink.write(memoryview(piece)[len(MAGIC) : len(MAGIC) + length])
            self._at += length
        self._groups.extend(groups)

    def _to_single(self, tables: list[pa.Table | None]) -> None:
        assert all(t is not None for t in tables)  # (every one was kept: no footer had been joined)
        for _, futures in self._waiting:
            for future in futures:
                future.cancel()
        self._waiting = []
        self._single = self._fallback(tables[0].schema)
        for t in tables:
            self._single.write_table(t)

    def close(self) -> None:
        """Every row group written, then the footer (nothing more when none was written)."""
        try:
            while self._waiting and self._single is None:
                self._put_next()
            if self._single is not None:
                self._single.close()
            elif self._groups:
                assert self._template is not None
                footer = write_struct(file_footer(self._template, self._groups))
                self.sink.write(footer + struct.pack("<I", len(footer)) + MAGIC)
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Stop: the row groups still being encoded are not wanted (an error on the way)."""
        for _, futures in self._waiting:
            for future in futures:
                future.cancel()
        self._waiting = []
        if self._pool is not None:
            self._pool.shutdown(wait=True)
