"""The range reader: an uncompressed CSV on disk, cut into ranges at row ends (never inside quotes),
each parsed on every core by pyarrow while this thread encodes the previous one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..kernels.csvquotes import BOM, CR, LF, QuoteTracker, row_end, state_before
from .quoting import QuotedStream, line_of_offset, unclosed_quote
from .sources import Source

__all__ = [
    "RANGE_BLOCKS",
    "closed_quotes",
    "block_not_splitting_crlf",
    "RangeReader",
]


#: Bytes of CSV text handed to pyarrow's multi-threaded reader at once, as a multiple of the block size.
RANGE_BLOCKS = 4

#: A file is parsed in blocks of at most 1/``MIN_BLOCKS`` of its size (but at least ``MIN_BLOCK``
#: bytes and at most --block-size), so that a small file's parse uses every core too.
MIN_BLOCKS = 16
MIN_BLOCK = 1 << 20


def closed_quotes(
    reader: Iterator[pa.RecordBatch], watched: QuotedStream, src: Source, sep: str
) -> Iterator[pa.RecordBatch]:
    """The reader's batches; at the end, an error if the input ended inside a quoted field (pyarrow
    takes such a field, open to the end, as a value)."""
    yield from reader
    error = watched.unclosed(src, sep)
    if error is not None:
        raise error


def block_not_splitting_crlf(data: np.ndarray, block: int) -> int:
    """The smallest block size from ``block`` whose block boundaries in ``data`` never fall between
    the CR and the LF of a CRLF: pyarrow (26) with ``newlines_in_values`` drops such an LF from a
    quoted value (the boundaries are at multiples of the block size).

    >>> block_not_splitting_crlf(np.frombuffer(b'1,"a\\r\\nb"\\n', np.uint8), 5)
    6
    """
    while True:
        at = np.arange(block, len(data), block)
        if not ((data[at - 1] == CR) & (data[at] == LF)).any():
            return block
        block += 1


class RangeReader:  # noqa: N801 - an iterator used like a generator
    """Record batches of an uncompressed CSV read range by range, each range parsed on every core.

    The text is cut at row ends into ranges of about ``RANGE_BLOCKS`` blocks; each range goes through
    ``pyarrow.csv.read_csv`` (multi-threaded), so memory stays bounded by two ranges (the one being
    encoded and the one being parsed) while parsing uses all cores (the streaming reader parses on
    one). A worker thread cuts and parses the next range while the caller encodes the current one, and
    hashes the bytes it reads, in order, so the input's sha256 needs no second pass over the file.
    Types are inferred on the first range and then fixed, so a later range that does not fit raises
    the same conversion error as the streaming reader would (and the caller re-reads that column as
    text). Batches come out in file order.

    Quoted fields may hold line ends (RFC 4180), so a range is never cut inside one: a range whose
    bytes hold no quote (one ``bytes.find``) is cut at the first line end past its nominal end, as
    plain text; a range with a quote is cut where :mod:`seqprep.kernels.csvquotes` says a row ends,
    looking back from the nominal end only as far as it takes to know the quoting state there, and is
    parsed with ``newlines_in_values``. A range whose rows are longer than a block is parsed as one
    block; the input ending inside a quoted field is an error that names the line the field starts on.
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
        self.data, self.names, self.parse = data, names, parse
        self.conv = conv
        self.where = where
        self.delim = ord(parse.delimiter)
        self.size = data.size()
        self.block_size = max(1, min(block_size, max(MIN_BLOCK, self.size // MIN_BLOCKS)))
        self.range_bytes = self.block_size * RANGE_BLOCKS
        self.position = self._cut(0, 0)[1] if header else 0
        self._next_start = self._first = self.position
        self.fixed: dict[str, pa.DataType] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-csv")
        self._ahead: Any = None  # future of the next range: (table, its end offset)
        self._pending: list[pa.RecordBatch] = []
        self._range = (
            self.position,
            self.position,
            1,
            0,
        )  # (start, end, rows, rows handed out) of the range being read
        # the input's sha256 from the bytes as they are read (the worker reads the ranges in order),
        # on a thread of its own (hashlib lets go of the GIL): the hash runs beside the parse
        self._hash = hashlib.sha256(bytes(data.read_at(self.position, 0)) if self.position else b"") if hashed else None
        self._hashed = self.position
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-sha256") if hashed else None
        self._hashing: Any = None  # future of the last range handed to the hasher

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
                if k >= 0 and (k + 1 < n or a + n >= self.size):  # (a line end that is the file's last byte too)
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

    def _next(self, a: int, conv: pacsv.ConvertOptions) -> tuple[pa.Table, int]:
        """The range from ``a`` -> (its table, its end offset) (in the worker thread). The first range
        is one block (pyarrow infers the types from a range's first block either way), so the first
        rows are encoded - and the progress display moves - after one block's parse, not four."""
        size = self.block_size if a == self._first else self.range_bytes
        buf, end, quoted = self._cut(a, a + size)
        if self._hasher is not None and self._hashed == a:
            self._hashing = self._hasher.submit(self._hash.update, buf)  # type: ignore[union-attr]
            self._hashed = end
        parse = self.parse
        block = self.block_size
        if quoted:
            parse = pacsv.ParseOptions(delimiter=self.parse.delimiter, newlines_in_values=True)
            block = block_not_splitting_crlf(np.frombuffer(buf, np.uint8), block)
        while True:
            try:
                return pacsv.read_csv(
                    pa.BufferReader(pa.py_buffer(buf)),
                    read_options=pacsv.ReadOptions(column_names=self.names, block_size=block),
                    parse_options=parse,
                    convert_options=conv,
                ), end
            except pa.ArrowInvalid as e:
                if "straddl" not in str(e) or block > len(buf):
                    raise
                block = len(buf) + 1  # a row longer than a block: the range as one block

    def _submit(self) -> None:
        """Start cutting and parsing the range after the last one read (if any is left)."""
        a = self._next_start
        if a >= self.size:
            self._ahead = None
            return
        conv = self.conv
        if self.fixed:
            conv = pacsv.ConvertOptions(
                include_columns=conv.include_columns,
                column_types={**self.fixed, **dict(conv.column_types)},
                strings_can_be_null=True,
            )
        self._ahead = self._pool.submit(self._next, a, conv)

    def __iter__(self) -> RangeReader:
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
            self._range = (self._next_start, end, max(1, table.num_rows), 0)
            self._next_start = end
            self._submit()  # the next range is cut and parsed while the caller works on this one
            self._pending = table.to_batches()[::-1]
        batch = self._pending.pop()
        start, end, rows, done = self._range
        done += batch.num_rows
        self._range = (start, end, rows, done)
        self.position = start + (end - start) * done // rows  # for the progress display: per batch
        return batch

    @property
    def sha256(self) -> str | None:
        """The hex sha256 of the whole input once every range has been read (else None)."""
        if self._hash is None or self._hashed != self.size:
            return None
        if self._hashing is not None:
            self._hashing.result()
        return self._hash.hexdigest()

    def close(self) -> None:
        """Wait for the range in flight (its error, if any, is not wanted now), then close the file."""
        if self._ahead is not None:
            self._ahead.cancel()
        self._pool.shutdown(wait=True)
        if self._hasher is not None:
            self._hasher.shutdown(wait=True)
        self._ahead = None
        self.data.close()
