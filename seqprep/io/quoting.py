"""Quote-aware CSV text: where rows end when quoted fields hold line ends, which file line a byte is on,
and a stream that follows the quoting state of the bytes it passes (for pyarrow's streaming reader)."""

from __future__ import annotations

import contextlib
import lzma
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ..kernels.csvquotes import BOM, QuoteTracker
from .sources import Source

__all__ = [
    "line_of",
    "line_of_offset",
    "unclosed_quote",
    "text_chunks",
    "open_quote",
    "scan_rows",
    "lines_before",
    "unclosed_in",
    "QuotedStream",
    "RowLines",
    "utf8_message",
]


def line_of(data: bytes, pos: int) -> int:
    """The line (1-based, as an editor counts: LF, CRLF or a lone CR ends a line) of ``data[pos]``.

    >>> line_of(b"a\\r\\nb\\rc\\nd", 7)
    4
    """
    return data.count(b"\n", 0, pos) + data.count(b"\r", 0, pos) - data.count(b"\r\n", 0, pos) + 1


def line_of_offset(read_at: Any, offset: int) -> int:
    """The line (as :func:`line_of` counts) of byte ``offset`` of a file read with
    ``read_at(nbytes, offset)``, a few MiB at a time (error paths only)."""

    def chunks() -> Any:
        at = 0
        while at < offset and (chunk := bytes(read_at(min(1 << 24, offset - at), at))):
            yield chunk
            at += len(chunk)

    return lines_before(chunks(), offset)


def unclosed_quote(where: str, line: int) -> InputError:
    msg = f'{where}: line {line}: a quoted field starts here and is never closed; close the quote (") or pass the right --sep'
    return InputError(msg)


def text_chunks(src: Source, sep: str) -> Any:
    """The decompressed bytes of ``src`` in order (a multi-character separator rewritten to 0x1f, as
    the parser sees it), a few MiB at a time."""
    if len(sep) > 1:
        yield src.read_all().replace(sep.encode(), b"\x1f")
        return
    stream = src.open()
    if isinstance(stream, str):
        stream = pa.OSFile(stream)
    try:
        while chunk := stream.read(1 << 24):
            yield bytes(chunk)
    finally:
        stream.close()


def open_quote(chunks: Any, sep: str) -> int:
    """The offset of a quote that opens a field still open at the end of the bytes, else -1 (chunks
    without a quote byte are only searched for one)."""
    delim = 0x1F if len(sep) > 1 else ord(sep)
    tracker = QuoteTracker(delim, bom=True)
    for chunk in chunks:
        tracker.feed_bytes(chunk)
    tracker.finish()
    return tracker.opened_at


def scan_rows(src: Source, sep: str) -> tuple[int, int]:
    """One pass over the input (error paths) -> (offset of a quote that opens a field never closed,
    or -1; the length in bytes of the longest row)."""
    delim = 0x1F if len(sep) > 1 else ord(sep)
    tracker = QuoteTracker(delim, bom=True)
    longest, last = 0, 0
    with contextlib.closing(text_chunks(src, sep)) as chunks:
        for chunk in chunks:
            ends = tracker.feed(np.frombuffer(chunk, np.uint8), breaks=True)
            if len(ends):
                longest = max(longest, int(np.diff(ends, prepend=last).max()))
                last = int(ends[-1])
    tracker.finish()
    return tracker.opened_at, max(longest, tracker.offset - last)


def lines_before(chunks: Any, offset: int) -> int:
    """The line of byte ``offset`` of the bytes in ``chunks`` (as :func:`line_of` counts)."""
    line, at, cr = 1, 0, False
    for chunk in chunks:
        if at >= offset:
            break
        part = chunk[: offset - at]
        line += line_of(part, len(part)) - 1 - (1 if cr and part.startswith(b"\n") else 0)
        cr = part.endswith(b"\r")
        at += len(chunk)
    return line


def unclosed_in(src: Source, sep: str, where: str, data: bytes | None = None) -> InputError | None:
    """The error for a quoted field the input never closes, if it has one (error paths only)."""
    opened = open_quote(iter([data]) if data is not None else text_chunks(src, sep), sep)
    if opened < 0:
        return None
    if data is not None:
        return unclosed_quote(where, line_of(data, opened))
    with contextlib.closing(text_chunks(src, sep)) as chunks:
        return unclosed_quote(where, lines_before(chunks, opened))


class QuotedStream:
    """A readable stream for pyarrow's CSV reader that passes another one's bytes through, following
    their quoting state (:class:`QuoteTracker`; ``bytes.find`` alone for a block without a quote).

    pyarrow takes each read as one block; with ``newlines_in_values`` (pyarrow 26) a block that ends
    between the CR and the LF of a CRLF inside a quoted value loses that LF, so a read never ends
    with a CR: it is held back for the next one.
    """

    def __init__(self, raw: Any, delim: int) -> None:
        self.raw = raw
        self.tracker = QuoteTracker(delim, bom=True)
        self.closed = False
        self._carry = b""

    def read(self, nbytes: int = -1) -> bytes:
        want = -1 if nbytes is None or nbytes < 0 else max(1, nbytes - len(self._carry))
        got = bytes(self.raw.read(want) if want >= 0 else self.raw.read())
        data, self._carry = self._carry + got, b""
        if len(got) == want and len(data) > 1 and data.endswith(b"\r"):  # (a short read is the end)
            data, self._carry = data[:-1], data[-1:]
        if data:
            self.tracker.feed_bytes(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def unclosed(self, src: Source, sep: str) -> InputError | None:
        """Once everything is read: the error for a quoted field never closed, if there is one."""
        t = self.tracker
        t.finish()
        if not t.inside:
            return None
        with contextlib.closing(text_chunks(src, sep)) as chunks:
            return unclosed_quote(src.name, lines_before(chunks, t.opened_at))


class RowLines:
    """Data row index -> the line of the file it starts on, for error messages.

    A row is not a line when a quoted field holds line ends, and blank lines are no rows: the
    mapping takes one vectorised pass over the input (with :class:`QuoteTracker`), only when an
    error asks for a line. Without a source it is ``index + 1 + header``.
    """

    def __init__(self, header: int, src: Source | None = None, sep: str = ",", *, data: bytes | None = None) -> None:
        self.header = header
        self._src = src
        self._sep = sep
        self._data = data  # the input's bytes when a caller holds them (multi-character separator rewritten)

    def __call__(self, idx: int) -> int:
        if self._src is None and self._data is None:
            return idx + 1 + self.header
        try:
            return self._scan(idx + self.header)
        except (OSError, EOFError, lzma.LZMAError, pa.ArrowException, InputError):
            return idx + 1 + self.header  # the input cannot be read again: the row's number

    def _scan(self, row: int) -> int:
        """The line of the ``row``-th non-empty row (0-based, header rows included)."""
        delim = 0x1F if len(self._sep) > 1 else ord(self._sep)
        if self._data is not None:
            return self._rows(iter([self._data]), delim, row)
        with contextlib.closing(text_chunks(self._src, self._sep)) as chunks:
            return self._rows(chunks, delim, row)

    def _rows(self, chunks: Any, delim: int, row: int) -> int:
        tracker = QuoteTracker(delim, bom=True)
        seen = 0  # rows ended so far
        start, start_line = 0, 1  # where the current row starts, and its line
        cbase, chunk_line, cr = 0, 1, False  # offset and line of the chunk's first byte; a CR just before it
        data = next(chunks, b"")
        if data.startswith(BOM):
            start = len(BOM)
        while data:
            nxt = next(chunks, b"")
            ends = tracker.feed(np.frombuffer(data, np.uint8), breaks=True) - cbase
            if not nxt:
                tracker.finish()
            ext = np.frombuffer(data + (nxt[:1] or b"\x00"), np.uint8)
            after = ends + 1 + ((ext[ends] == 13) & (ext[ends + 1] == 10))  # where the next row starts

            def line_at(rel: int, data: bytes = data, chunk_line: int = chunk_line, cr: bool = cr) -> int:
                twice = 1 if cr and rel > 0 and data.startswith(b"\n") else 0  # a CRLF cut by the chunks
                return chunk_line + line_of(data, min(rel, len(data))) - 1 - twice

            starts = np.concatenate(([start - cbase], after[:-1]))
            full = np.flatnonzero(ends > starts)  # blank lines are no rows
            if seen + len(full) > row:
                k = int(full[row - seen])
                return start_line if k == 0 else line_at(int(starts[k]))
            seen += len(full)
            if len(after):
                start, start_line = int(after[-1]) + cbase, line_at(int(after[-1]))
            chunk_line, cr = line_at(len(data)), data.endswith(b"\r")
            cbase += len(data)
            data = nxt
        if seen == row and start < cbase:  # the last row, without a line end after it
            return start_line
        return row + 1


def utf8_message(data: bytes, pos: int, where: str) -> InputError:
    msg = (
        f"{where}: line {line_of(data, pos)}: byte 0x{data[pos]:02x} is not UTF-8; "
        "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )
    return InputError(msg)
