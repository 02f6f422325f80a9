"""The range reader: an uncompressed CSV on disk, cut into ranges at row ends (never inside quotes),
each parsed on every core by pyarrow while this thread encodes the previous one."""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..kernels.csvquotes import BOM, LF, QuoteTracker, row_end, state_before
from ..resources import sort_threads
from .quoting import QuotedStream, line_of_offset, unclosed_quote
from .sources import Source

__all__ = [
    "AHEAD",
    "MAX_PARTS",
    "RANGE_BLOCKS",
    "RangeReader",
    "closed_quotes",
    "fixed_types",
]


#: Bytes of CSV text handed to pyarrow's multi-threaded reader at once, as a multiple of the block
#: size: as many blocks as there are cores (:func:`~seqprep.resources.sort_threads`), at least two and
#: at most this many.
RANGE_BLOCKS = 4

#: Ranges cut and parsed ahead of the one the caller is encoding (in flight or done, waiting).
AHEAD = 2

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


#: Parts a range with quotes is parsed in, at most (each part about a block).
MAX_PARTS = 64


def fixed_types(conv: pacsv.ConvertOptions, types: dict[str, pa.DataType] | pa.Schema) -> pacsv.ConvertOptions:
    """``conv`` with the column types of an earlier part (dictionary-typed id columns keep theirs)."""
    if isinstance(types, pa.Schema):
        types = {f.name: f.type for f in types if not pa.types.is_dictionary(f.type)}
    return pacsv.ConvertOptions(
        include_columns=conv.include_columns,
        column_types={**types, **dict(conv.column_types)},
        strings_can_be_null=True,
    )


class RangeReader:  # noqa: N801 - an iterator used like a generator
    """Record batches of an uncompressed CSV read range by range, each range parsed on every core.

    The text is cut at row ends into ranges of a block a core (2 to ``RANGE_BLOCKS`` blocks); each
    range goes through ``pyarrow.csv.read_csv`` (multi-threaded), so memory stays bounded by
    ``AHEAD + 1`` ranges (the one being encoded and those parsed ahead) while parsing uses all cores
    (the streaming reader parses on one). A worker thread cuts and parses the ranges in turn, up to
    ``AHEAD`` of them ahead of the one the caller encodes - one range ahead, the parse would wait
    whenever a range is parsed faster than the one before it is encoded, with a core idle - and
    hashes the bytes it reads (on a thread of its own, beside the parse, in file order), so the
    input's sha256 needs no second pass over the file. The ranges taper to one block towards the
    file's end, so that the last one, encoded after the parse is over, is short. Types are inferred
    on the first range and then fixed, so a later range that does not fit raises the same conversion
    error as the streaming reader would (and the caller re-reads that column as text), after the
    batches of the ranges before it. Batches come out in file order.

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
        self.data, self.names, self.parse = data, names, parse
        self.conv = conv
        self.where = where
        self.delim = ord(parse.delimiter)
        self.size = data.size()
        self.block_size = max(1, min(block_size, max(MIN_BLOCK, self.size // MIN_BLOCKS)))
        self.range_bytes = self.block_size * max(2, min(RANGE_BLOCKS, sort_threads()))
        self.position = self._cut(0, 0)[1] if header else 0
        self._next_start = self._first = self.position
        self.fixed: dict[str, pa.DataType] = {}
        self._parsers = ThreadPoolExecutor(max_workers=sort_threads(), thread_name_prefix="seqprep-csv-part")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-read")
        self._read_ahead: tuple[int, Any] | None = None  # (offset, future of _cut there), worker thread only
        # the worker's ranges, in file order: (start, table, end), then None at the end of the
        # file, or the error that stopped it; it takes a slot for each range it cuts and parses, the
        # caller gives one back as it takes the range after: one slot is the range being encoded,
        # the others the AHEAD ranges cut and parsed ahead of it
        self._ranges: queue.Queue[Any] = queue.Queue()
        self._slots = threading.Semaphore(AHEAD + 1)
        # the worker, once started: a daemon thread, so that a reader never closed (a caller's bug)
        # cannot keep the interpreter from exiting while its worker waits for a slot
        self._worker: threading.Thread | None = None
        self._stop = False
        self._taken = False  # a range is (or was) being handed out: its slot comes back with the next
        self._ended = False
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
        got = state_before(arr, min(max(t - skip, 0), len(arr)), self.delim)
        assert got is not None  # (data[0] starts a row)
        inside, opened_at, p = got
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
        """The range from ``a`` -> (its table, its end offset) (in the worker thread). The first range
        is one block (pyarrow infers the types from a range's first block either way), so the first
        rows are encoded - and the progress display moves - after one block's parse, not a range's.
        ``infer``: the first range, whose column types the others take."""
        size = self._nominal(a)
        ahead, self._read_ahead = self._read_ahead, None
        buf, end, quoted = ahead[1].result() if ahead is not None and ahead[0] == a else self._cut(a, a + size)
        if self._hasher is not None and self._hashed == a:  # on its own thread, in file order
            self._hashing = self._hasher.submit(self._hash.update, buf)  # type: ignore[union-attr]
            self._hashed = end
        if quoted and end < self.size:  # review text: reading the next range is worth doing during this parse
            self._read_ahead = (end, self._reader.submit(self._cut, end, end + self._nominal(end)))
        return (self._parse_in_parts(buf, conv, infer) if quoted else self._parse_whole(buf, conv)), end

    def _nominal(self, a: int) -> int:
        """The nominal length of the range from ``a``: one block for the first; ``RANGE_BLOCKS``
        blocks, tapering to one block towards the end of the file (half of what is left, at least a
        block), so that the last range - encoded by the caller after every parse is over, with a
        core idle - is short.

        >>> r = RangeReader.__new__(RangeReader)
        >>> r.size, r.block_size, r.range_bytes, r._first = 1000, 10, 40, 0
        >>> [r._nominal(a) for a in (0, 10, 900, 960, 985)]
        [10, 40, 40, 20, 10]
        """
        if a == self._first:
            return self.block_size
        return min(self.range_bytes, max(self.block_size, (self.size - a) // 2))

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
        cuts = self._part_cuts(np.frombuffer(buf, np.uint8))
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
            conv = fixed_types(conv, tables[0].schema)
            pieces = pieces[1:]
        tables += list(self._parsers.map(one, pieces, [conv] * len(pieces)))
        return pa.concat_tables(tables)

    def _part_cuts(self, arr: np.ndarray) -> list[int]:
        """Where the parts of a range (``arr``, whole rows) start, and its length last: row ends
        about a block apart, each found from the bytes around it."""
        n = len(arr)
        parts = min(MAX_PARTS, max(1, -(-n // self.block_size)))
        cuts = [0]
        for j in range(1, parts):
            at = j * n // parts
            if at <= cuts[-1]:
                continue  # inside a row that ends after it
            got = state_before(arr, at, self.delim)
            assert got is not None
            inside, opened_at, p = got
            prev = int(arr[p - 1]) if p else LF
            tracker = QuoteTracker(self.delim, offset=p, inside=inside, opened_at=opened_at, prev=prev)
            cut = row_end(tracker, arr[p:], eof=True)
            if cut < 0:
                break
            cuts.append(cut)
        if cuts[-1] < n:
            cuts.append(n)
        return cuts

    def _produce(self) -> None:
        """The worker's loop: every range in turn, each once a slot is free (the first fixes the
        column types of the others), into ``_ranges``; an error ends it, and is handed on in its place."""
        a = self._next_start
        try:
            while a < self.size:
                self._slots.acquire()
                if self._stop:
                    return
                conv = fixed_types(self.conv, self.fixed) if self.fixed else self.conv
                table, end = self._next(a, conv, not self.fixed)
                if not self.fixed:  # the first range fixes the types of the other columns
                    self.fixed = {f.name: f.type for f in table.schema if not pa.types.is_dictionary(f.type)}
                self._ranges.put((a, table, end))
                a = end
            self._ranges.put(None)
        except BaseException as e:  # noqa: BLE001 - raised by the caller, where the serial read raised it
            self._ranges.put(e)

    def __iter__(self) -> RangeReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        while not self._pending:
            if self._ended:
                raise StopIteration
            if self._worker is None:
                self._worker = threading.Thread(target=self._produce, name="seqprep-csv", daemon=True)
                self._worker.start()
            if self._taken:  # the range handed out before is done with: the worker may cut another
                self._slots.release()
            got = self._ranges.get()
            if got is None or isinstance(got, BaseException):
                self._ended = True
                if got is None:
                    raise StopIteration
                raise got
            start, table, end = got
            self._taken = True
            self._range = (start, end, max(1, table.num_rows), 0)
            self._next_start = end
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
        """Stop the worker after the range in flight (its error, if any, is not wanted now), then
        close the file."""
        self._stop = True
        self._slots.release(AHEAD + 1)  # (a worker waiting for a slot wakes, and stops)
        if self._worker is not None and self._worker.ident is not None:  # (a Ctrl-C or SIGTERM can land
            self._worker.join()  # between the worker's creation and its start: nothing to join then)
        for pool in (self._parsers, self._reader, self._hasher):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._ranges = queue.Queue()  # (the tables parsed ahead: let go)
        self.data.close()
