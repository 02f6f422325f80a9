"""Input sources: files, compression (by magic bytes) and stdin, the one sha256 of a file's bytes,
and streams that know how far into the raw bytes they are (for the progress display)."""

from __future__ import annotations

import glob
import hashlib
import io
import lzma
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from ..errors import InputError

__all__ = [
    "COMPRESSED_EXT",
    "HASH_CHUNK",
    "MAGIC",
    "SNIFF_BYTES",
    "Position",
    "Source",
    "csv_source",
    "expand_inputs",
    "inner_name",
    "open_tracked",
    "sha256_file",
    "sha256_stream",
]

HASH_CHUNK = 1 << 22


def sha256_stream(fh: BinaryIO) -> str:
    """The hex sha256 of everything left in the binary file ``fh``, read in 4 MiB chunks.

    >>> import io
    >>> sha256_stream(io.BytesIO(b"abc"))[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
        h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file: what meta.json records of every input and output file."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def inner_name(name: str) -> str:
    """A file's name without its compression extension, lower case (``R.csv.gz`` -> ``r.csv``).

    >>> inner_name("logs/Ratings.CSV.gz")
    'ratings.csv'
    """
    name = name.rstrip("/").rsplit("/", 1)[-1].lower()
    for ext in COMPRESSED_EXT:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

COMPRESSED_EXT = (".gz", ".bz2", ".xz", ".zst", ".zstd")

SNIFF_BYTES = 1 << 16


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


class Source:
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
        self.compression = next((c for m, c in MAGIC if magic.startswith(m)), None)

    @property
    def inner_name(self) -> str:
        """The file name without a compression extension (``ratings.csv.gz`` -> ``ratings.csv``)."""
        return "" if self.path is None else inner_name(self.path.name)

    def set_sha256(self, digest: str) -> None:
        """The hex sha256 of the input, computed by a reader while reading it."""
        self._sha = digest

    def sha256(self) -> str:
        if self._sha is None:
            self._sha = sha256_file(self.path)  # type: ignore[arg-type]
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

    def head(self, n: int = SNIFF_BYTES) -> bytes:
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


def csv_source(src: Source, sep: str) -> tuple[Any, str]:
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


class Position:
    """Bytes consumed from the underlying (compressed) file, for the progress display."""

    def __init__(self, tell: Callable[[], int] | None) -> None:
        self._tell = tell

    def __call__(self) -> int | None:
        try:
            return None if self._tell is None else int(self._tell())
        except (OSError, ValueError, pa.ArrowException):
            return None


def open_tracked(src: Source) -> tuple[Any, Position]:
    """Like ``Source.open`` but a stream (never a path) plus how far into the raw bytes it is."""
    if src.data is not None:
        raw: Any = pa.BufferReader(src.data)
    elif src.compression == "xz":
        raw = open(src.path, "rb")  # type: ignore[arg-type]  # noqa: SIM115 - closed with the stream
    else:
        raw = pa.OSFile(str(src.path))
    pos = Position(raw.tell)
    if src.compression is None:
        return raw, pos
    if src.compression == "xz":
        if isinstance(raw, pa.BufferReader):
            raw = lzma.open(pa.PythonFile(raw, mode="r"), "rb")
            return raw, Position(None)
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
