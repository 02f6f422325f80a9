"""A log cut into pieces that are read independently (the Dask engine's read tasks), each by the
streaming reader, with the same result as reading every input whole.

- an uncompressed CSV is cut into byte ranges at row ends, never inside a quoted field: each nominal
  range is scanned (:func:`scan_range`, quote runs only, by :mod:`seqprep.kernels.csvquotes`) for its
  first row end and its quoting state at the end, from either state at its start; the states are
  then chained from the file's start (:func:`cuts_from_scans`), so no one reads the whole file to
  find the cuts;
- an uncompressed JSON Lines file is cut at line ends (a JSON string holds no raw line end);
- a Parquet file is cut between row groups; a compressed file is one piece (it is not splittable).

Each piece is read by :func:`read_piece` with :func:`~seqprep.io.stream.read_source`: the input's
own layout (sniffed once from its first bytes; later CSV pieces have no header line) and the same
pyarrow options as the local reader. The pieces' columns merge by :mod:`seqprep.io.merge`.
Paths may be local or fsspec URLs (``s3://...``: fsspec is imported only for those).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..config import ReadOptions
from ..kernels.csvquotes import LF, QUOTE, QuoteTracker, row_end
from .sniff import ColumnRequest, csv_layout
from .sources import Source
from .stream import DEFAULT_BLOCK_SIZE, InputColumns, read_source

__all__ = [
    "Piece",
    "RangeScan",
    "csv_pieces",
    "cuts_from_scans",
    "input_pieces",
    "jsonl_cuts",
    "nominal_cuts",
    "parquet_row_groups",
    "read_bytes",
    "read_piece",
    "scan_range",
]

ReadAt = Callable[[int, int], bytes]  # (nbytes, offset) -> bytes, as pyarrow's NativeFile.read_at

_LOOK = 1 << 16  # bytes read at once past a nominal cut


@dataclass(frozen=True)
class Piece:
    """One piece of one input: bytes ``start..end`` (a whole compressed file: ``0..size``) or, for
    Parquet, ``row_groups``; ``first``: it starts at the file's first byte (and holds its header)."""

    input: int
    name: str  # the input as given (messages)
    location: str  # where a worker opens it: an absolute path or a URL
    fmt: str
    compression: str | None
    start: int
    end: int
    first: bool
    whole: bool  # the whole file (a local one is then read as the local reader reads it)
    row_groups: tuple[int, ...] | None = None


def _is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _local(location: str) -> str:
    return location.removeprefix("file://")


def read_bytes(location: str, start: int, end: int) -> bytes:
    """Bytes ``start..end`` of a file (a local path or an fsspec URL)."""
    if _is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        return bytes(fs.cat_file(path, start=start, end=end))
    with open(_local(location), "rb") as fh:
        fh.seek(start)
        return fh.read(end - start)


def _reader(location: str) -> ReadAt:
    return lambda n, at: read_bytes(location, at, at + n)


def nominal_cuts(size: int, block: int) -> list[int]:
    """Offsets ``0, block, 2 * block, ...`` below ``size``, then ``size``: the nominal ranges.

    >>> nominal_cuts(10, 4), nominal_cuts(0, 4)
    ([0, 4, 8, 10], [0, 0])
    """
    return list(range(0, size, max(1, block))) + [size] if size else [0, 0]


def _past_quotes(read_at: ReadAt, size: int, b: int) -> int:
    """``b`` moved forward while the byte before it is a quote: no run of quotes straddles a range
    boundary, so each range knows its runs whole. The same for both ranges sharing ``b``."""
    while 0 < b < size:
        chunk = read_at(min(_LOOK, size - b + 1), b - 1)
        k = 0
        while k < len(chunk) and chunk[k] == QUOTE:
            k += 1
        if k < len(chunk):
            return b + k
        b += len(chunk)
    return min(b, size)


@dataclass(frozen=True)
class RangeScan:
    """What the CSV bytes ``lo..hi`` say, for either quoting state at ``lo`` (index 0: outside a
    quoted field, 1: inside): the offset just past the first row end at or after ``lo`` (-1: none
    in the range), and the state at ``hi`` (``opened_at`` -2: still the field open at ``lo``)."""

    lo: int
    hi: int
    first_end: tuple[int, int]
    inside: tuple[bool, bool]
    opened_at: tuple[int, int]
    quoted: bool


def scan_range(location: str, size: int, lo: int, hi: int, delim: int) -> RangeScan:
    """Scan the nominal range ``lo..hi`` of a CSV (both ends moved past a run of quotes)."""
    read_at = _reader(location)
    lo, hi = _past_quotes(read_at, size, lo), _past_quotes(read_at, size, hi)
    a = max(lo - 1, 0)
    buf = read_at(hi - a, a) if hi > a else b""
    prev = buf[0] if lo > 0 else LF
    data = memoryview(buf)[lo - a :]
    eof = hi >= size
    if bytes(data).find(b'"') < 0:  # no quote: a line end ends a row, unless inside a quoted field
        raw = bytes(data)
        ends = [k for k in (raw.find(b"\n"), raw.find(b"\r")) if k >= 0]
        first = -1
        if ends:
            k = min(ends)
            first = lo + k + (2 if raw[k : k + 2] == b"\r\n" else 1)
        return RangeScan(lo, hi, (first, -1), (False, True), (-1, -2), False)
    arr = np.frombuffer(data, np.uint8)
    firsts, insides, opened = [], [], []
    for inside in (False, True):
        t = QuoteTracker(delim, offset=lo, inside=inside, opened_at=-2, prev=prev)
        firsts.append(row_end(t, arr, eof=eof))
        t = QuoteTracker(delim, offset=lo, inside=inside, opened_at=-2, prev=prev)
        t.feed(arr)
        t.finish()
        insides.append(t.inside)
        opened.append(t.opened_at if t.inside else -1)
    return RangeScan(lo, hi, (firsts[0], firsts[1]), (insides[0], insides[1]), (opened[0], opened[1]), True)


def cuts_from_scans(scans: Sequence[RangeScan], size: int) -> tuple[list[int], int]:
    """The row starts that cut a CSV into pieces (from 0, then ``size``), from the scans of its
    consecutive ranges; and where the input ends inside a quoted field (-1: it does not).

    >>> s = [RangeScan(0, 4, (3, -1), (False, True), (-1, -2), False), RangeScan(4, 9, (6, -1), (False, True), (-1, -2), False)]
    >>> cuts_from_scans(s, 9)
    ([0, 6, 9], -1)
    """
    cuts = [0]
    inside, opened = False, -1
    for k, s in enumerate(scans):
        state = int(inside)
        if k and s.first_end[state] >= 0 and s.first_end[state] < size:
            cuts.append(s.first_end[state])
        new_opened = s.opened_at[state]
        inside = s.inside[state]
        opened = (opened if new_opened == -2 else new_opened) if inside else -1
    cuts.append(size)
    cuts = sorted(set(cuts))
    return cuts, opened if inside else -1


def jsonl_cuts(location: str, size: int, block: int) -> list[int]:
    """Line starts near every ``block`` bytes of a JSON Lines file (from 0, then ``size``)."""
    read_at = _reader(location)
    cuts = [0]
    for b in nominal_cuts(size, block)[1:-1]:
        at = max(b, cuts[-1])
        while at < size:
            chunk = read_at(min(_LOOK, size - at), at)
            k = chunk.find(b"\n")
            if k >= 0:
                at += k + 1
                break
            at += len(chunk)
        if cuts[-1] < at < size:
            cuts.append(at)
    return cuts + [size]


def _parquet_file(location: str) -> Any:
    import pyarrow.parquet as pq

    if _is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        return pq.ParquetFile(pa.PythonFile(fs.open(path, "rb"), mode="r"))
    return pq.ParquetFile(_local(location))


def parquet_row_groups(location: str, block: int) -> list[tuple[int, ...]]:
    """A Parquet file's row groups, in consecutive runs of about ``block`` bytes (at least one each)."""
    meta = _parquet_file(location).metadata
    out: list[tuple[int, ...]] = []
    run: list[int] = []
    size = 0
    for g in range(meta.num_row_groups):
        run.append(g)
        size += meta.row_group(g).total_byte_size
        if size >= block:
            out.append(tuple(run))
            run, size = [], 0
    if run or not out:
        out.append(tuple(run))
    return out


def read_piece(
    piece: Piece,
    opts: ReadOptions,
    head: bytes,
    *,
    requests: tuple[ColumnRequest, ...] = (),
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> InputColumns:
    """One piece into compact columns: the streaming reader on its bytes (or row groups), with the
    input's layout sniffed from ``head`` (the input's first bytes). Lines in messages count from
    the piece's first byte."""
    layout = None
    if piece.fmt == "csv":
        layout = csv_layout(piece.name, opts, head)
        if not piece.first:
            layout = layout._replace(header=False)  # the header line is in the first piece only
    if piece.fmt == "parquet":
        src = _parquet_source(piece)
    elif piece.whole and not _is_url(piece.location):
        src = Source(_local(piece.location), hashed=False)
    else:
        src = Source.of_bytes(piece.name, read_bytes(piece.location, piece.start, piece.end))
    return read_source(
        src,
        opts,
        piece.fmt,
        head,
        block_size=block_size,
        requests=requests,
        layout=layout,
        row_groups=piece.row_groups,
        where=piece.name,
    )


def _parquet_source(piece: Piece) -> Source:
    if _is_url(piece.location):  # the whole file in memory: Source reads buffers and local paths only
        import fsspec

        fs, path = fsspec.core.url_to_fs(piece.location)
        return Source.of_bytes(piece.name, fs.cat_file(path))
    return Source(_local(piece.location), hashed=False)


def csv_pieces(
    index: int,
    name: str,
    location: str,
    size: int,
    sep: str,
    block: int,
    scan: Callable[[list[tuple[int, int]]], Sequence[RangeScan]] | None = None,
) -> tuple[list[Piece], int]:
    """An uncompressed CSV's pieces of about ``block`` bytes, cut at row starts (never inside a
    quoted field), and where it ends inside a quoted field (-1: it does not). ``scan`` scans the
    nominal ranges (the Dask engine: one task per range; default: here, one after the other).
    A multi-character separator keeps the file whole (it is rewritten before it is parsed)."""
    if len(sep) > 1 or size <= block:
        return [Piece(index, name, location, "csv", None, 0, size, True, True)], -1
    nominal = nominal_cuts(size, block)
    ranges = list(zip(nominal[:-1], nominal[1:]))
    delim = ord(sep)
    scans = scan(ranges) if scan is not None else [scan_range(location, size, lo, hi, delim) for lo, hi in ranges]
    cuts, opened = cuts_from_scans(scans, size)
    pieces = [
        Piece(index, name, location, "csv", None, lo, hi, lo == 0, lo == 0 and hi == size)
        for lo, hi in zip(cuts[:-1], cuts[1:])
    ]
    return pieces, opened


def input_pieces(
    index: int, name: str, location: str, size: int, fmt: str, compression: str | None, sep: str, block: int
) -> list[Piece]:
    """One input's pieces, read one after the other by :func:`read_piece` with the same columns as
    the input read whole (CSV: see :func:`csv_pieces`; its quote left open is then the whole read's
    error, found by the piece that holds it)."""
    if compression is not None:
        return [Piece(index, name, location, fmt, compression, 0, size, True, True)]
    if fmt == "csv":
        return csv_pieces(index, name, location, size, sep, block)[0]
    if fmt == "jsonl":
        cuts = jsonl_cuts(location, size, block) if size > block else [0, size]
        return [
            Piece(index, name, location, fmt, None, lo, hi, lo == 0, lo == 0 and hi == size)
            for lo, hi in zip(cuts[:-1], cuts[1:])
        ]
    groups = parquet_row_groups(location, block)
    return [Piece(index, name, location, fmt, None, 0, size, k == 0, len(groups) == 1, g) for k, g in enumerate(groups)]
