"""Interaction logs in many layouts -> one canonical table.

Supported: MovieLens ``ratings.csv`` / ``u.data`` / ``ratings.dat``, any CSV/TSV (``--sep``,
``--no-header``, ``--names``), JSON Lines and Parquet; ``.gz``, ``.bz2``, ``.xz`` and ``.zst``
(detected by their magic bytes, so the extension does not matter); ``-`` for stdin; globs.

The result of :func:`read_log` is a :class:`Log`: user and item ids as integer *codes* into a
dictionary of distinct original ids (strings, or int64 when every id is a canonical integer), the
timestamp as int64 (float64 only when fractional), and an optional float32 rating. Row order is the
input order - files in the order given, then lines in file order - which is the documented tie-break of
every later sort. Ids are read as text and only then typed, so ``007`` and ``7`` never collapse.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import hashlib
import io
import itertools
import json
import lzma
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from .config import ReadOptions
from .errors import ColumnError, ConfigError, InputError
from .kernels.csvquotes import BOM, QuoteTracker

__all__ = ["Log", "InputInfo", "read_log", "read_log_in_memory", "expand_inputs", "COLUMN_ALIASES"]

#: Column names recognised for each role, compared case-insensitively and ignoring ``_``, ``-``,
#: spaces and a RecBole type suffix such as ``:token``.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("userId", "user_id", "UserID", "reviewerID", "user"),
    "item": ("movieId", "item_id", "itemId", "MovieID", "asin", "parent_asin", "item"),
    "time": ("timestamp", "ts", "time", "unixReviewTime"),
    "rating": ("rating", "overall"),
}
_REQUIRED = ("user", "item", "time")
_FLAG = {"user": "--user-col", "item": "--item-col", "time": "--time-col", "rating": "--rating-col"}

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_COMPRESSED_EXT = (".gz", ".bz2", ".xz", ".zst", ".zstd")
_DICT = pa.dictionary(pa.int32(), pa.string())
_INT_RE = r"^(0|-?[1-9][0-9]*)$"
_NUM_RE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_SNIFF_BYTES = 1 << 16
_BLOCK = 1 << 24


@dataclass(frozen=True)
class InputInfo:
    """One input as it was read: recorded in meta.json."""

    path: str
    bytes: int
    sha256: str | None  # None when the reader was asked not to hash (``seqprep stats``)
    rows: int
    format: str
    compression: str | None
    columns: dict[str, str]


@dataclass(frozen=True)
class Log:
    """A whole interaction log in canonical, columnar form (row order = input order).

    ``user_codes`` / ``item_codes`` are int32 indices into ``user_ids`` / ``item_ids`` (the distinct
    original ids, in first-seen order) with ``-1`` for a missing value; ``time`` is int64 or float64
    with ``time_valid`` False where it was missing.
    """

    user_codes: np.ndarray
    user_ids: pa.Array
    item_codes: np.ndarray
    item_ids: pa.Array
    time: np.ndarray
    time_valid: np.ndarray
    time_unit: str
    rating: np.ndarray | None
    inputs: tuple[InputInfo, ...]

    @property
    def num_rows(self) -> int:
        return int(self.user_codes.shape[0])


# --------------------------------------------------------------------------------------------------
# Inputs and sources


def expand_inputs(inputs: tuple[str, ...] | list[str]) -> list[str]:
    """Paths in the order given; a pattern with ``*?[`` that is not itself a file expands (sorted).

    >>> expand_inputs(["-"])
    ['-']
    """
    out: list[str] = []
    for spec in inputs:
        if spec != "-" and not os.path.exists(spec) and any(ch in spec for ch in "*?["):
            matches = sorted(glob.glob(spec))
            if not matches:
                msg = f"no file matches {spec!r}; check the pattern (quote it so the shell does not expand it)"
                raise InputError(msg)
            out.extend(matches)
        else:
            out.append(spec)
    return out


class _Source:
    """A file or stdin, with its compression detected from magic bytes.

    With ``hashed=False`` nobody wants its sha256 (``seqprep stats``): readers skip hashing it.
    """

    def __init__(self, spec: str, stdin: BinaryIO | None = None, *, hashed: bool = True) -> None:
        self.name = spec
        self.hashed = hashed
        self.data: pa.Buffer | None = None
        self.path: Path | None = None
        if spec == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            raw = stream.read()
            self.data = pa.py_buffer(raw)
            self.size = len(raw)
            self._sha = hashlib.sha256(raw).hexdigest() if hashed else None
            magic = bytes(raw[:8])
        else:
            p = Path(spec)
            if not p.exists():
                msg = f"input file {spec!r} not found; check the path"
                raise InputError(msg)
            if p.is_dir():
                msg = f"input {spec!r} is a folder; pass the log file(s) inside it, e.g. {spec.rstrip('/')}/*.csv"
                raise InputError(msg)
            self.path = p
            self.size = p.stat().st_size
            self._sha = None
            try:
                with open(p, "rb") as fh:
                    magic = fh.read(8)
            except OSError as e:
                msg = f"cannot read {spec!r}: {e.strerror}; check its permissions"
                raise InputError(msg) from e
        self.compression = next((c for m, c in _MAGIC if magic.startswith(m)), None)

    @property
    def inner_name(self) -> str:
        """The file name without a compression extension (``ratings.csv.gz`` -> ``ratings.csv``)."""
        name = "" if self.path is None else self.path.name.lower()
        for ext in _COMPRESSED_EXT:
            if name.endswith(ext):
                return name[: -len(ext)]
        return name

    def set_sha256(self, digest: str) -> None:
        """The hex sha256 of the input, computed by a reader while reading it."""
        self._sha = digest

    def sha256(self) -> str:
        if self._sha is None:
            h = hashlib.sha256()
            with open(self.path, "rb") as fh:  # type: ignore[arg-type]
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
            self._sha = h.hexdigest()
        return self._sha

    def open(self) -> Any:
        """A readable, decompressed stream (or a path pyarrow can memory-map)."""
        if self.compression is None:
            if self.data is not None:
                return pa.BufferReader(self.data)
            return str(self.path)
        if self.compression == "xz":
            raw = io.BytesIO(self.data.to_pybytes()) if self.data is not None else str(self.path)
            return lzma.open(raw, "rb")
        raw = pa.BufferReader(self.data) if self.data is not None else pa.OSFile(str(self.path))
        return pa.CompressedInputStream(raw, self.compression)

    def head(self, n: int = _SNIFF_BYTES) -> bytes:
        src = self.open()
        if isinstance(src, str):
            with open(src, "rb") as fh:
                return fh.read(n)
        try:
            return bytes(src.read(n))
        except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as e:
            msg = f"{self.name}: cannot decompress ({self.compression}): {e}; check that the file is not truncated"
            raise InputError(msg) from e
        finally:
            src.close()

    def read_all(self) -> bytes:
        src = self.open()
        if isinstance(src, str):
            return Path(src).read_bytes()
        try:
            return bytes(src.read())
        except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as e:
            msg = f"{self.name}: cannot decompress ({self.compression}): {e}; check that the file is not truncated"
            raise InputError(msg) from e
        finally:
            src.close()


# --------------------------------------------------------------------------------------------------
# Column roles


def _norm(name: str) -> str:
    base = name.split(":", 1)[0] if ":" in name else name
    return re.sub(r"[\s_\-]", "", base).lower()


def resolve_columns(columns: list[str], opts: ReadOptions, where: str) -> dict[str, str]:
    """Map each role (user, item, time, rating) to a column name; rating is optional.

    >>> resolve_columns(["userId", "movieId", "rating", "timestamp"], ReadOptions(), "f")
    {'user': 'userId', 'item': 'movieId', 'time': 'timestamp', 'rating': 'rating'}
    """
    listing = ", ".join(columns)
    found: dict[str, str] = {}
    for role in ("user", "item", "time", "rating"):
        explicit = opts.role_column(role)
        if explicit is not None:
            if explicit in columns:
                found[role] = explicit
                continue
            ci = [c for c in columns if c.lower() == explicit.lower()]
            if len(ci) == 1:
                found[role] = ci[0]
                continue
            msg = f"{where}: column {explicit!r} ({_FLAG[role]}) not found; columns are {listing}"
            raise ColumnError(msg)
        aliases = {_norm(a) for a in COLUMN_ALIASES[role]}
        hits = [c for c in columns if _norm(c) in aliases and c not in found.values()]
        if len(hits) > 1:
            msg = (
                f"{where}: ambiguous {role} column: {', '.join(repr(h) for h in hits)} all match; "
                f"pass {_FLAG[role]} NAME to choose one"
            )
            raise ColumnError(msg)
        if hits:
            found[role] = hits[0]
        elif role in _REQUIRED:
            hint = ""
            if any(_NUM_RE.match(c) for c in columns):
                hint = " (the first line looks like data: pass --no-header --names user,item,rating,timestamp)"
            msg = f"{where}: no {role} column found; columns are {listing} - pass {_FLAG[role]} NAME{hint}"
            raise ColumnError(msg)
    return found


# --------------------------------------------------------------------------------------------------
# Format-specific readers: each returns (table with the role columns renamed to the role, columns map)


def _detect_format(src: _Source, opts: ReadOptions, head: bytes) -> str:
    if opts.input_format != "auto":
        return opts.input_format
    name = src.inner_name
    if name.endswith((".parquet", ".pq")) or head.startswith(b"PAR1"):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    stripped = head.lstrip(BOM + b" \t\r\n")
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


_SEP_CANDIDATES = ("::", "\t", ",", ";", "|")


def _head_records(text: str, sep: str, *, cut: bool) -> list[list[str]]:
    """The first (up to 6) non-empty records of the sniffed text, split by the csv module: quoted
    fields may hold the separator, doubled quotes and line ends (the last record of a ``cut`` head
    may be incomplete and is dropped, unless it is the only one).

    >>> _head_records('a,"b\\nc",d\\n\\n"x""y",2,3\\n', ",", cut=False)
    [['a', 'b\\nc', 'd'], ['x"y', '2', '3']]
    """
    records: list[list[str]] = []
    if len(sep) == 1:
        try:
            records = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=sep), 7))
        except csv.Error:  # not CSV as the csv module reads it: split the lines as they are
            records = []
    if not records:
        records = [line.split(sep) for line in text.splitlines() if line]
    records = [r for r in records if r]
    if cut and len(records) > 1:
        records = records[:-1]
    return records[:6]


def _sniff_sep(text: str, lines: list[str], where: str, *, cut: bool) -> str:
    """The separator whose field count agrees over the first records (quotes respected), else the
    first candidate found on line 1."""
    for cand in _SEP_CANDIDATES:
        records = _head_records(text, cand, cut=cut)
        n = len(records[0]) - 1 if records else 0
        if n and all(len(r) - 1 == n for r in records[1:3]):
            return cand
    first = lines[0]
    for cand in _SEP_CANDIDATES:
        if cand in first:
            return cand
    msg = f"{where}: cannot tell the column separator from the first line {first[:60]!r}; pass --sep"
    raise InputError(msg)


def _check_quotes_in_head(head: bytes, sep: str, where: str, *, cut: bool) -> None:
    """A quote that is open at the end of the whole (short) file, or still open at the end of a cut
    head that has not ended the first row, is an error naming the line it opens on."""
    if len(sep) > 1 or b'"' not in head:
        return
    t = QuoteTracker(ord(sep), bom=True)
    row_ends = t.feed(np.frombuffer(head, np.uint8), breaks=True)
    if not cut:
        t.finish()
    if t.inside and (not cut or len(row_ends) == 0):
        line = _line_of(head, t.opened_at)
        if cut:
            msg = (
                f"{where}: line {line}: a quoted field starts here and does not end within the first "
                f"{_SNIFF_BYTES // 1024} KiB; close the quote (\") or pass the right --sep"
            )
            raise InputError(msg)
        raise unclosed_quote(where, line)


def _csv_layout(src: _Source, opts: ReadOptions, head: bytes) -> tuple[str, list[str], bool, dict[str, str]]:
    """Sniff a CSV from its first bytes -> (separator, column names, has header, role -> column).

    The separator and the first record are found with a CSV tokenizer (the csv module: RFC 4180
    quotes, as pyarrow reads them), so quoted fields in the first lines may hold separators and
    line ends.
    """
    where = src.name
    cut = len(head) == _SNIFF_BYTES
    _check_text(head, where, cut=cut)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if cut and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    lines = [ln for ln in lines[:6]]
    if not lines or not lines[0].strip():
        if text.strip():
            msg = f"{where}: line 1 is blank; remove the blank line(s) before the header or first row"
            raise InputError(msg)
        msg = f"{where}: the log is empty; pass a file with a header line and interaction rows"
        raise InputError(msg)
    sep = opts.sep if opts.sep is not None else _sniff_sep(text, lines, where, cut=cut)
    _check_quotes_in_head(head, sep, where, cut=cut)
    records = _head_records(text, sep, cut=cut)
    fields_ = [f.strip() for f in records[0]] if records else [""]
    if len(fields_) == 1 and opts.sep is not None:
        seen = [c for c in _SEP_CANDIDATES if c in lines[0] and c != sep]
        if seen:
            msg = f"{where}: line 1 has a single column with --sep {sep!r} but contains {seen[0]!r}; pass --sep {seen[0]!r}"
            raise InputError(msg)

    if opts.header is not None:
        header = opts.header
    elif opts.names is not None:
        header = False
    else:
        header = not all(_NUM_RE.match(f) for f in fields_ if f != "")

    if opts.names is not None:
        names = list(opts.names)
        if len(names) != len(fields_):
            msg = (
                f"{where}: --names gives {len(names)} names but the file has {len(fields_)} columns "
                f"(separator {sep!r}); give one name per column"
            )
            raise ColumnError(msg)
    elif header:
        names = fields_
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            msg = f"{where}: column name {dup[0]!r} appears more than once in the header; pass --names with distinct names"
            raise ColumnError(msg)
    elif len(fields_) == 4:
        names = ["user", "item", "rating", "timestamp"]  # MovieLens u.data / ratings.dat layout
    elif len(fields_) == 3:
        names = ["user", "item", "timestamp"]
    else:
        msg = f"{where}: no header line and {len(fields_)} columns; pass --names with one name per column, e.g. user,item,rating,timestamp"
        raise ColumnError(msg)

    roles = resolve_columns(names, opts, where)
    return sep, names, header, roles


def _csv_source(src: _Source, sep: str) -> tuple[Any, str]:
    """-> (readable source, one-character delimiter); a multi-character --sep is rewritten to 0x1f."""
    where = src.name
    if len(sep) > 1:
        raw = src.read_all()
        if b"\x1f" in raw:
            msg = f"{where}: the file holds byte 0x1f, which multi-character --sep {sep!r} needs; convert the separator to one character"
            raise InputError(msg)
        source: Any = pa.BufferReader(pa.py_buffer(raw.replace(sep.encode(), b"\x1f")))
        delim = "\x1f"
    else:
        source = src.open()
        delim = sep
    return source, delim


def _read_csv(src: _Source, opts: ReadOptions, head: bytes) -> tuple[pa.Table, dict[str, str], int]:
    """-> (table, role -> column, number of header lines skipped)."""
    where = src.name
    sep, names, header, roles = _csv_layout(src, opts, head)
    block = _BLOCK
    id_cols = {roles["user"]: _DICT, roles["item"]: _DICT}

    def attempt(extra_types: dict[str, pa.DataType]) -> tuple[pa.Table, QuotedStream]:
        conv = pacsv.ConvertOptions(
            include_columns=[roles[r] for r in ("user", "item", "time", "rating") if r in roles],
            column_types={**id_cols, **extra_types},
            strings_can_be_null=True,
        )
        source, delim = _csv_source(src, sep)
        stream = QuotedStream(pa.OSFile(source) if isinstance(source, str) else source, ord(delim))
        read_opts = pacsv.ReadOptions(
            column_names=names, skip_rows_after_names=1 if header else 0, block_size=block, use_threads=True
        )
        parse_opts = pacsv.ParseOptions(delimiter=delim, newlines_in_values=True)
        try:
            return pacsv.read_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=conv), stream
        finally:
            stream.raw.close()

    extra: dict[str, pa.DataType] = {}
    try:
        while True:
            try:
                table, stream = attempt(extra)
                break
            except pa.ArrowInvalid as e:
                opened, longest = scan_rows(src, sep) if "straddl" in str(e) else (-1, 0)
                if opened < 0 and block <= 2 * longest:
                    block = 1 << (2 * longest + 1).bit_length()  # a row longer than a block: larger blocks
                elif "conversion error" in str(e).lower() and "time" in roles and not extra:
                    # a later block did not fit the type inferred from the first one: read time as text
                    extra = {roles["time"]: pa.string()}
                else:
                    raise
    except pa.ArrowInvalid as e:
        unclosed = _unclosed_in(src, sep, where)
        if unclosed is not None:
            raise unclosed from e
        if "utf8" in str(e).lower():
            raise _utf8_error(src, names, header, sep, roles, where) from e
        if "parse error" in str(e).lower():
            raise _parse_error(src, names, header, sep, where, e) from e
        msg = f"{where}: {_arrow_msg(e)}; check --sep ({sep!r}), --names and the row shown"
        raise InputError(msg) from e
    except (OSError, EOFError, lzma.LZMAError) as e:
        msg = f"{where}: cannot read: {e}; check that the file is complete and not corrupt"
        raise InputError(msg) from e
    unclosed = stream.unclosed(src, sep)  # pyarrow takes a field open to the end as a value
    if unclosed is not None:
        raise unclosed
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        raise _utf8_error(src, names, header, sep, roles, where)  # a column pyarrow could not read as text
    return table, roles, 1 if header else 0


def _line_of(data: bytes, pos: int) -> int:
    """The line (1-based, as an editor counts: LF, CRLF or a lone CR ends a line) of ``data[pos]``.

    >>> _line_of(b"a\\r\\nb\\rc\\nd", 7)
    4
    """
    return data.count(b"\n", 0, pos) + data.count(b"\r", 0, pos) - data.count(b"\r\n", 0, pos) + 1


def line_of_offset(read_at: Any, offset: int) -> int:
    """The line (as :func:`_line_of` counts) of byte ``offset`` of a file read with
    ``read_at(nbytes, offset)``, a few MiB at a time (error paths only)."""

    def chunks() -> Any:
        at = 0
        while at < offset and (chunk := bytes(read_at(min(1 << 24, offset - at), at))):
            yield chunk
            at += len(chunk)

    return _lines_before(chunks(), offset)


def unclosed_quote(where: str, line: int) -> InputError:
    msg = f"{where}: line {line}: a quoted field starts here and is never closed; close the quote (\") or pass the right --sep"
    return InputError(msg)


def _text_chunks(src: _Source, sep: str) -> Any:
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


def scan_rows(src: _Source, sep: str) -> tuple[int, int]:
    """One pass over the input (error paths) -> (offset of a quote that opens a field never closed,
    or -1; the length in bytes of the longest row)."""
    delim = 0x1F if len(sep) > 1 else ord(sep)
    tracker = QuoteTracker(delim, bom=True)
    longest, last = 0, 0
    with contextlib.closing(_text_chunks(src, sep)) as chunks:
        for chunk in chunks:
            ends = tracker.feed(np.frombuffer(chunk, np.uint8), breaks=True)
            if len(ends):
                longest = max(longest, int(np.diff(ends, prepend=last).max()))
                last = int(ends[-1])
    tracker.finish()
    return tracker.opened_at, max(longest, tracker.offset - last)


def _lines_before(chunks: Any, offset: int) -> int:
    """The line of byte ``offset`` of the bytes in ``chunks`` (as :func:`_line_of` counts)."""
    line, at, cr = 1, 0, False
    for chunk in chunks:
        if at >= offset:
            break
        part = chunk[: offset - at]
        line += _line_of(part, len(part)) - 1 - (1 if cr and part.startswith(b"\n") else 0)
        cr = part.endswith(b"\r")
        at += len(chunk)
    return line


def _unclosed_in(src: _Source, sep: str, where: str, data: bytes | None = None) -> InputError | None:
    """The error for a quoted field the input never closes, if it has one (error paths only)."""
    opened = open_quote(iter([data]) if data is not None else _text_chunks(src, sep), sep)
    if opened < 0:
        return None
    if data is not None:
        return unclosed_quote(where, _line_of(data, opened))
    with contextlib.closing(_text_chunks(src, sep)) as chunks:
        return unclosed_quote(where, _lines_before(chunks, opened))


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

    def unclosed(self, src: _Source, sep: str) -> InputError | None:
        """Once everything is read: the error for a quoted field never closed, if there is one."""
        t = self.tracker
        t.finish()
        if not t.inside:
            return None
        with contextlib.closing(_text_chunks(src, sep)) as chunks:
            return unclosed_quote(src.name, _lines_before(chunks, t.opened_at))


class RowLines:
    """Data row index -> the line of the file it starts on, for error messages.

    A row is not a line when a quoted field holds line ends, and blank lines are no rows: the
    mapping takes one vectorised pass over the input (with :class:`QuoteTracker`), only when an
    error asks for a line. Without a source it is ``index + 1 + header``.
    """

    def __init__(self, header: int, src: _Source | None = None, sep: str = ",", *, data: bytes | None = None) -> None:
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
        with contextlib.closing(_text_chunks(self._src, self._sep)) as chunks:
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
                return chunk_line + _line_of(data, min(rel, len(data))) - 1 - twice

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


def _check_text(head: bytes, where: str, *, cut: bool) -> None:
    """The first block of a CSV holds no NUL byte (a NUL means a corrupt file) and line 1 is UTF-8.

    Later lines are checked by the CSV reader, in the columns that are used only: a Latin-1 text
    column that seqprep does not read is no reason to fail.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        msg = f"{where}: the file is UTF-16 text; convert it to UTF-8 (e.g. iconv -f utf-16 -t utf-8)"
        raise InputError(msg)
    nul = head.find(b"\x00")
    if nul >= 0:
        msg = f"{where}: line {_line_of(head, nul)}: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        raise InputError(msg)
    end = head.find(b"\n")
    first = head if end < 0 else head[:end]
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as e:
        if end < 0 and cut and e.start >= len(head) - 3:  # a character cut by the end of the block
            return
        raise _utf8_message(head, e.start, where) from None


def _utf8_message(data: bytes, pos: int, where: str) -> InputError:
    msg = (
        f"{where}: line {_line_of(data, pos)}: byte 0x{data[pos]:02x} is not UTF-8; "
        "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )
    return InputError(msg)


def _whole_csv_options(names: list[str], header: bool, delim: str, **parse: Any) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions]:
    """Read and parse options of a whole-file re-read: quoted fields may hold line ends (the header
    too: it is skipped as a row, not as a line)."""
    read = pacsv.ReadOptions(column_names=names, skip_rows_after_names=1 if header else 0, use_threads=False)
    return read, pacsv.ParseOptions(delimiter=delim, newlines_in_values=True, **parse)


def _utf8_error(
    src: _Source, names: list[str], header: bool, sep: str, roles: dict[str, str], where: str
) -> InputError:
    """Locate the first row whose used columns hold invalid UTF-8 (error path only: re-reads as bytes)."""
    raw = src.read_all()
    delim = sep
    if len(sep) > 1:
        raw, delim = raw.replace(sep.encode(), b"\x1f"), "\x1f"
    unclosed = _unclosed_in(src, sep, where, raw)
    if unclosed is not None:
        return unclosed
    used = list(dict.fromkeys(roles.values()))
    read_opts, parse_opts = _whole_csv_options(names, header, delim)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(raw)),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=pacsv.ConvertOptions(include_columns=used, column_types={c: pa.binary() for c in used}),
        )
    except pa.ArrowException:
        table = None
    first: tuple[int, bytes] | None = None
    for col in used if table is not None else []:
        arr = table[col].combine_chunks()
        if _casts(arr, pa.string()):
            continue
        idx = _first_uncastable(arr, (pa.string(),))
        if first is None or idx < first[0]:
            first = (idx, arr[idx].as_py())
    if first is None:
        msg = f"{where}: a column is not valid UTF-8 text; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        return InputError(msg)
    idx, value = first
    try:
        value.decode("utf-8")
        byte = value[0]
    except UnicodeDecodeError as e:
        byte = value[e.start]
    line = RowLines(1 if header else 0, sep=sep, data=raw)(idx)
    msg = (
        f"{where}: line {line}: byte 0x{byte:02x} is not UTF-8; "
        "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )
    return InputError(msg)


def _parse_error(src: _Source, names: list[str], header: bool, sep: str, where: str, e: Exception) -> InputError:
    """Re-read serially (error path only) to name the line of the first malformed row."""
    bad: list[Any] = []

    def record(row: Any) -> str:
        bad.append(row)
        return "error"

    # invalid UTF-8 would make pyarrow fail while building the row it hands to ``record``; replacing
    # it keeps every line where it is
    raw = src.read_all().decode("utf-8", errors="replace").encode("utf-8")
    delim = sep
    if len(sep) > 1:
        raw, delim = raw.replace(sep.encode(), b"\x1f"), "\x1f"
    unclosed = _unclosed_in(src, sep, where, raw)
    if unclosed is not None:  # a field open to the end swallowed rows: that is the error to fix
        return unclosed
    read_opts, parse_opts = _whole_csv_options(names, header, delim, invalid_row_handler=record)
    try:
        pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(raw)),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
        )
    except pa.ArrowException:
        pass
    if not bad or bad[0].number is None:
        msg = f"{where}: {_arrow_msg(e)}; check --sep ({sep!r}), --names and the row shown"
        return InputError(msg)
    row = bad[0]
    text = (row.text or "").replace("\x1f", sep)
    shown = text if len(text) <= 60 else text[:57] + "..."
    rows = 1 if header else 0
    line = RowLines(rows, sep=sep, data=raw)(row.number - 1 - rows)  # pyarrow counts rows, header included
    msg = (
        f"{where}: line {line}: {row.actual_columns} fields instead of {row.expected_columns} "
        f"(separator {sep!r}): {shown!r}; fix the row (quote fields that hold the separator) or pass the right --sep"
    )
    return InputError(msg)


def _arrow_msg(e: Exception) -> str:
    return " ".join(str(e).split())[:300]


def _json_type(v: Any, role: str) -> pa.DataType:
    if role in ("user", "item"):
        return pa.int64() if isinstance(v, int) and not isinstance(v, bool) else pa.string()
    if role == "rating":
        return pa.float64()
    if isinstance(v, bool) or v is None:
        return pa.string()
    if isinstance(v, int):
        return pa.int64()
    if isinstance(v, float):
        return pa.float64()
    return pa.string()


def _jsonl_layout(src: _Source, opts: ReadOptions, head: bytes) -> tuple[dict[str, str], pa.Schema]:
    """Roles and the explicit schema of a JSON Lines input, from its first line."""
    where = src.name
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first_line = next((ln for ln in text.splitlines() if ln.strip()), None)
    if first_line is None:
        msg = f"{where}: the log is empty; pass a JSON Lines file with one object per line"
        raise InputError(msg)
    try:
        first = json.loads(first_line)
    except json.JSONDecodeError as e:
        msg = f"{where}: line 1 is not JSON ({e.msg}); JSON Lines needs one JSON object per line (Python-literal dumps must be converted first)"
        raise InputError(msg) from e
    if not isinstance(first, dict):
        msg = f"{where}: line 1 is not a JSON object; JSON Lines needs one object per line"
        raise InputError(msg)
    roles = resolve_columns(list(first.keys()), opts, where)
    schema = pa.schema([(roles[r], _json_type(first.get(roles[r]), r)) for r in roles])
    return roles, schema


def _read_jsonl(src: _Source, opts: ReadOptions, head: bytes) -> tuple[pa.Table, dict[str, str]]:
    where = src.name
    roles, schema = _jsonl_layout(src, opts, head)
    source = src.open()
    try:
        table = pajson.read_json(
            source,
            read_options=pajson.ReadOptions(block_size=_BLOCK),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except pa.ArrowInvalid as e:
        msg = f"{where}: {_arrow_msg(e)}; every line must be a JSON object with consistent value types"
        raise InputError(msg) from e
    except (OSError, EOFError, lzma.LZMAError) as e:
        msg = f"{where}: cannot read: {e}; check that the file is complete and not corrupt"
        raise InputError(msg) from e
    finally:
        if not isinstance(source, str):
            source.close()
    return table, roles


def _read_parquet(src: _Source, opts: ReadOptions) -> tuple[pa.Table, dict[str, str]]:
    where = src.name
    try:
        data = src.open() if src.compression is None else pa.BufferReader(pa.py_buffer(src.read_all()))
        pf = pq.ParquetFile(data)
        roles = resolve_columns(pf.schema_arrow.names, opts, where)
        table = pf.read(columns=list(roles.values()))
    except (pa.ArrowInvalid, OSError, EOFError, UnicodeDecodeError) as e:
        msg = f"{where}: not a readable Parquet file ({_arrow_msg(e)}); check the file or pass --input-format"
        raise InputError(msg) from e
    return table, roles


# --------------------------------------------------------------------------------------------------
# Typing of ids, times and ratings


def _ids_to_dict(col: pa.ChunkedArray, role: str, where: str) -> pa.DictionaryArray:
    """Any id column -> one DictionaryArray (int32 indices, first-seen dictionary of string/int64)."""
    if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1:
        col = col.chunk(0)
    t = col.type
    if pa.types.is_dictionary(t):
        if not pa.types.is_string(t.value_type) and not pa.types.is_integer(t.value_type):
            col = pc.cast(col, _DICT)
    elif pa.types.is_integer(t):
        col = pc.cast(col, pa.int64())
    elif pa.types.is_floating(t):
        arr = col.combine_chunks()
        ok = pc.equal(arr, pc.floor(arr))
        if not pc.all(ok).as_py():
            bad = arr.filter(pc.invert(ok))[0].as_py()
            msg = f"{where}: {role} ids are fractional numbers (e.g. {bad}); ids must be integers or text - pass --{role}-col with an id column"
            raise InputError(msg)
        col = pc.cast(arr, pa.int64())
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        pass
    else:
        col = pc.cast(col, pa.string())
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 0:
            return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], col.type.value_type))
        col = pa.table({"c": col}).unify_dictionaries()["c"]
        indices = pa.concat_arrays([c.indices for c in col.chunks])
        return pa.DictionaryArray.from_arrays(pc.cast(indices, pa.int32()), col.chunk(0).dictionary)
    return pa.DictionaryArray.from_arrays(pc.cast(col.indices, pa.int32()), col.dictionary)


def _first_bad(values: pa.Array, ok: pa.Array) -> tuple[int, Any]:
    bad_mask = pc.and_(pc.invert(pc.fill_null(ok, True)), pc.is_valid(values))
    idx = int(np.flatnonzero(bad_mask.to_numpy(zero_copy_only=False))[0])
    return idx, values[idx].as_py()


def _casts(arr: pa.Array, target: pa.DataType) -> bool:
    try:
        pc.cast(arr, target)
    except pa.ArrowInvalid:
        return False
    return True


def _first_uncastable(arr: pa.Array, targets: tuple[pa.DataType, ...]) -> int:
    """Index of the first value no target type accepts, by bisection (log2(n) vectorised casts).

    >>> _first_uncastable(pa.array(["2020-01-01", "2020-02-30", "2021-01-01"]), (pa.timestamp("ns"),))
    1
    """
    lo, hi = 0, len(arr)  # the first bad index lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if any(_casts(arr.slice(lo, mid - lo), t) for t in targets):
            lo = mid
        else:
            hi = mid
    return lo


def _normalize_time(col: pa.ChunkedArray, where: str, lines: int | RowLines) -> tuple[pa.Array, str]:
    """-> (int64 or float64 array with nulls, unit). Epoch numbers keep their unit ('epoch').

    ``lines`` names the line of a row in a message: a :class:`RowLines`, or the number of header rows.
    """
    line = lines if isinstance(lines, RowLines) else RowLines(lines)
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_null(t):  # no value at all (e.g. a header-only file)
        return pa.nulls(len(arr), pa.int64()), "epoch"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        arr = pc.utf8_trim_whitespace(arr)
        num = None
        for target in (pa.int64(), pa.float64()):
            try:
                num = pc.cast(arr, target)
                break
            except pa.ArrowInvalid:
                continue
        if num is None:
            for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
                try:
                    num = pc.cast(arr, target)
                    break
                except pa.ArrowInvalid:
                    continue
        if num is None:
            is_num = pc.match_substring_regex(arr, r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
            ok = pc.or_(
                is_num,
                pc.match_substring_regex(arr, r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"),
            )
            all_ok = pc.all(pc.fill_null(ok, True)).as_py()
            if all_ok and pc.any(is_num).as_py() and not pc.all(pc.fill_null(is_num, True)).as_py():
                # each value is fine alone, but numbers and dates are mixed: name the first change of kind
                kinds = pc.fill_null(is_num, False).to_numpy(zero_copy_only=False)
                valid = arr.is_valid().to_numpy(zero_copy_only=False)
                first = int(np.flatnonzero(valid)[0])
                idx = int(np.flatnonzero(valid & (kinds != kinds[first]))[0])
                kind = "numbers" if kinds[first] else "dates"
                msg = (
                    f"{where}: the timestamps mix numbers and ISO-8601 dates; use one kind in the whole column "
                    f"(line {line(idx)} holds {arr[idx].as_py()!r} after {kind})"
                )
                raise InputError(msg)
            if all_ok:  # well-formed, yet not a real date (2020-13-45)
                targets = (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC"))
                idx = _first_uncastable(arr, targets)
                value = arr[idx].as_py()
                if any(_casts(arr.slice(idx, 1), t) for t in targets):  # fine alone: mixed with/without zone
                    msg = (
                        f"{where}: line {line(idx)}: timestamp {value!r} has a time zone (Z, +hh:mm) where "
                        "earlier ones have none, or the other way round; write every timestamp in one form"
                    )
                else:
                    msg = f"{where}: line {line(idx)}: timestamp {value!r} is not a valid date; fix the row"
                raise InputError(msg)
            idx, val = _first_bad(arr, ok)
            fix = "fix the row or pass --time-col with the right column"
            if idx == 0 and not line.header:
                fix = "the first line looks like a header: drop --no-header (or fix the row)"
            msg = f"{where}: line {line(idx)}: timestamp {val!r} is neither a number nor an ISO-8601 date; {fix}"
            raise InputError(msg)
        arr = num
        t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_date(t):
            arr = pc.cast(arr, pa.timestamp("s"))
            t = arr.type
        ints = pc.cast(arr, pa.int64())
        unit = t.unit
        # coarsen to seconds (or the coarsest exact unit) so ISO dates become epoch seconds
        scale = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
        np_ints = ints.to_numpy(zero_copy_only=False)
        valid = ints.is_valid().to_numpy(zero_copy_only=False) if ints.null_count else None
        vals = np_ints if valid is None else np_ints[valid]
        for new_unit, div in (("s", scale), ("ms", scale // 1000), ("us", scale // 1_000_000)):
            if div >= 1 and (vals % div == 0).all():
                return pa.array(np_ints // div, mask=None if valid is None else ~valid), new_unit
        return ints, unit
    if pa.types.is_integer(t):
        return pc.cast(arr, pa.int64()), "epoch"
    if pa.types.is_floating(t):
        arr = pc.cast(arr, pa.float64())
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, pa.float64()), arr)
        if arr.null_count < len(arr):
            finite = pc.is_finite(arr)
            if not pc.all(pc.fill_null(finite, True)).as_py():
                idx, val = _first_bad(arr, finite)
                msg = f"{where}: line {line(idx)}: timestamp {val!r} is not finite; fix the row"
                raise InputError(msg)
            in_range = pc.less(pc.abs(arr), 2.0**63)
            if not pc.all(pc.fill_null(in_range, True)).as_py():
                idx, val = _first_bad(arr, in_range)
                msg = f"{where}: line {line(idx)}: timestamp {val!r} is out of range (beyond int64); fix the row"
                raise InputError(msg)
            integral = pc.all(pc.fill_null(pc.equal(arr, pc.floor(arr)), True)).as_py()
            lo, hi = pc.min(arr).as_py(), pc.max(arr).as_py()
            if integral and -(2.0**62) < lo and hi < 2.0**62:
                return pc.cast(arr, pa.int64()), "epoch"
        return arr, "epoch"
    msg = f"{where}: timestamp column has type {t}, not a number or date; pass --time-col with the right column"
    raise InputError(msg)


def _normalize_rating(col: pa.ChunkedArray, where: str, to: pa.DataType = pa.float32()) -> pa.Array:
    arr = col.combine_chunks()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_null(arr.type):
        return pc.cast(arr, to)
    try:
        return pc.cast(pc.utf8_trim_whitespace(pc.cast(arr, pa.string())), to)
    except pa.ArrowInvalid as e:
        msg = f"{where}: rating column holds non-numeric values ({_arrow_msg(e)}); pass --rating-col with a numeric column"
        raise InputError(msg) from e


# --------------------------------------------------------------------------------------------------
# Merging inputs


def _trim_ids(codes: np.ndarray, dictionary: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """CSV ids are untyped text: spaces around a field are not part of the id (``" 7"`` is ``7``).

    Works on the distinct ids; ids that become equal merge, a blank id becomes missing (-1).

    >>> _trim_ids(np.array([0, 1, 2, -1]), pa.array(["7", " 7", "  "]))[0].tolist()
    [0, 0, -1, -1]
    """
    trimmed = pc.utf8_trim_whitespace(dictionary)
    if trimmed.equals(dictionary):
        return codes, dictionary
    distinct = pc.unique(trimmed.filter(pc.not_equal(trimmed, "")))
    remap = pc.fill_null(pc.index_in(trimmed, value_set=distinct), -1).to_numpy(zero_copy_only=False)
    remap = np.append(remap.astype(np.int32), np.int32(-1))  # code -1 (missing) stays -1
    return remap[codes], distinct


def _merge_ids(
    parts: list[pa.DictionaryArray], id_type: str, role: str, typed_text: bool
) -> tuple[np.ndarray, pa.Array]:
    """Unify per-input dictionaries into one; decide the id type on the (small) dictionary only.

    CSV fields are untyped text: with ``id_type="auto"`` they become int64 when every distinct id is a
    canonical integer (no sign, no leading zero, within int64). Text ids from a typed source (a Parquet
    or JSON string column: ``typed_text``) stay text.
    """
    value_types = {p.dictionary.type for p in parts}
    if len(value_types) > 1:
        parts = [
            pa.DictionaryArray.from_arrays(p.indices, pc.cast(p.dictionary, pa.string())) for p in parts
        ]
    chunked = pa.chunked_array(parts)
    unified = pa.table({"c": chunked}).unify_dictionaries()["c"]
    dictionary = unified.chunk(0).dictionary if unified.num_chunks else parts[0].dictionary
    indices = pa.concat_arrays([c.indices for c in unified.chunks]) if unified.num_chunks else pa.array([], pa.int32())
    codes = pc.fill_null(pc.cast(indices, pa.int32()), -1).to_numpy(zero_copy_only=False)
    if not typed_text and (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        codes, dictionary = _trim_ids(codes, dictionary)

    if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
        if id_type == "int" or (id_type == "auto" and not typed_text):
            canonical = len(dictionary) > 0 and pc.all(pc.match_substring_regex(dictionary, _INT_RE)).as_py()
            as_int = None
            if canonical:
                try:
                    as_int = pc.cast(dictionary, pa.int64())
                except pa.ArrowInvalid:  # past int64: keep the text
                    as_int = None
            if as_int is not None:
                dictionary = as_int
            elif id_type == "int":
                bad = dictionary.filter(pc.invert(pc.match_substring_regex(dictionary, _INT_RE)))
                example = bad[0].as_py() if len(bad) else dictionary[0].as_py()
                msg = f"{role} id {example!r} is not an int64 integer but --id-type int was given; pass --id-type auto or str"
                raise InputError(msg)
    elif id_type == "str":
        dictionary = pc.cast(dictionary, pa.string())
    return codes.astype(np.int32, copy=False), dictionary


def _check_nul_ids(columns: tuple[pa.DictionaryArray, ...], where: str, lines: int | RowLines) -> None:
    """A NUL byte inside an id means a corrupt file; checked on the distinct ids only."""
    line = lines if isinstance(lines, RowLines) else RowLines(lines)
    for col in columns:
        d = col.dictionary
        if not (pa.types.is_string(d.type) or pa.types.is_large_string(d.type)) or len(d) == 0:
            continue
        has_nul = pc.match_substring(d, "\x00")
        if not pc.any(has_nul).as_py():
            continue
        bad_codes = np.flatnonzero(has_nul.to_numpy(zero_copy_only=False))
        indices = pc.fill_null(col.indices, -1).to_numpy(zero_copy_only=False)
        row = int(np.flatnonzero(np.isin(indices, bad_codes))[0])
        msg = f"{where}: line {line(row)}: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        raise InputError(msg)


def _arrow_errors_as_input_errors(f: Any) -> Any:
    """A last guard: any pyarrow error left while reading becomes a one-line InputError."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except pa.ArrowException as e:
            if isinstance(e, OSError) and not isinstance(e, pa.ArrowInvalid):
                msg = f"cannot read the input: {_arrow_msg(e)}; check that the file is complete and readable"
            else:
                msg = f"cannot read the input: {_arrow_msg(e)}; check the input file and the reader options (--sep, --names)"
            raise InputError(msg) from e

    return wrapper


@_arrow_errors_as_input_errors
def read_log(
    inputs: tuple[str, ...] | list[str],
    opts: ReadOptions,
    *,
    stdin: BinaryIO | None = None,
    block_size: int | None = None,
    progress: Any = None,
    spill_dir: Path | None = None,
    hash_inputs: bool = True,
) -> Log:
    """Read every input (in order) into one canonical :class:`Log`, streaming block by block.

    See :mod:`seqprep.ingest`; the result equals :func:`read_log_in_memory`'s. With
    ``hash_inputs=False`` the inputs' sha256 (``InputInfo.sha256``) is None: nothing is hashed.
    """
    from .ingest import DEFAULT_BLOCK_SIZE, stream_log
    from .progress import SILENT

    return stream_log(
        inputs,
        opts,
        stdin=stdin,
        block_size=DEFAULT_BLOCK_SIZE if block_size is None else block_size,
        progress=SILENT if progress is None else progress,
        spill_dir=spill_dir,
        hash_inputs=hash_inputs,
    )


@_arrow_errors_as_input_errors
def read_log_in_memory(inputs: tuple[str, ...] | list[str], opts: ReadOptions, *, stdin: BinaryIO | None = None) -> Log:
    """Read every input (in order) into one canonical :class:`Log`, each input as one whole table.

    The reference the streaming reader is tested against.
    """
    specs = expand_inputs(inputs)
    if specs.count("-") > 1:
        msg = "stdin (-) is given more than once; pass it once"
        raise ConfigError(msg)
    users: list[pa.DictionaryArray] = []
    items: list[pa.DictionaryArray] = []
    times: list[pa.Array] = []
    units: list[str] = []
    ratings: list[pa.Array | None] = []
    infos: list[InputInfo] = []
    typed_text = {"user": False, "item": False}
    with ThreadPoolExecutor(max_workers=1) as hasher:
        for spec in specs:
            src = _Source(spec, stdin=stdin)
            sha = hasher.submit(src.sha256)
            head = src.head()
            fmt = _detect_format(src, opts, head)
            header = 0
            if fmt == "csv":
                table, roles, header = _read_csv(src, opts, head)
            elif fmt == "jsonl":
                table, roles = _read_jsonl(src, opts, head)
            else:
                table, roles = _read_parquet(src, opts)
            where = spec if spec != "-" else "stdin"
            if fmt != "csv":
                for role in ("user", "item"):
                    typ = table.schema.field(roles[role]).type
                    typed_text[role] |= pa.types.is_string(typ) or pa.types.is_large_string(typ)
            users.append(_ids_to_dict(table[roles["user"]], "user", where))
            items.append(_ids_to_dict(table[roles["item"]], "item", where))
            lines = RowLines(header, src, _csv_layout(src, opts, head)[0]) if fmt == "csv" else RowLines(0)
            _check_nul_ids((users[-1], items[-1]), where, lines)
            t, unit = _normalize_time(table[roles["time"]], where, lines)
            times.append(t)
            units.append(unit)
            ratings.append(_normalize_rating(table[roles["rating"]], where) if "rating" in roles else None)
            n = table.num_rows
            del table
            infos.append(
                InputInfo(
                    path=spec,
                    bytes=src.size,
                    sha256=sha.result(),
                    rows=n,
                    format=fmt,
                    compression=src.compression,
                    columns=dict(roles),
                )
            )

    user_codes, user_ids = _merge_ids(users, opts.id_type, "user", typed_text["user"])
    item_codes, item_ids = _merge_ids(items, opts.id_type, "item", typed_text["item"])
    del users, items
    time, unit = _merge_times(times, units)
    valid = np.ones(len(time), dtype=bool) if time.null_count == 0 else time.is_valid().to_numpy(zero_copy_only=False)
    time_np = time.to_numpy(zero_copy_only=False) if time.null_count == 0 else pc.fill_null(time, 0).to_numpy()
    rating = None
    if any(r is not None for r in ratings):
        rating_parts = [
            r if r is not None else pa.nulls(info.rows, pa.float32()) for r, info in zip(ratings, infos)
        ]
        rating = pc.fill_null(pa.concat_arrays(rating_parts), float("nan")).to_numpy(zero_copy_only=False)
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


_UNIT_SCALE = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}


def _merge_times(times: list[pa.Array], units: list[str]) -> tuple[pa.Array, str]:
    kinds = set(units)
    if len(kinds) > 1:
        if "epoch" in kinds:
            msg = "some inputs have numeric epoch timestamps and others ISO-8601 dates; use one kind of timestamp in every input"
            raise InputError(msg)
        finest = max(kinds, key=_UNIT_SCALE.__getitem__)
        times = [
            pc.multiply(t, _UNIT_SCALE[finest] // _UNIT_SCALE[u]) if u != finest else t for t, u in zip(times, units)
        ]
        units = [finest] * len(units)
    if any(pa.types.is_floating(t.type) for t in times):
        times = [pc.cast(t, pa.float64()) for t in times]
    return pa.concat_arrays(times) if times else pa.array([], pa.int64()), units[0] if units else "epoch"
