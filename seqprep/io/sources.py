"""Input sources: files, compression and stdin, and the one sha256 of a file's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

__all__ = ["COMPRESSED_EXT", "HASH_CHUNK", "MAGIC", "SNIFF_BYTES", "expand_inputs", "inner_name", "sha256_file", "sha256_stream"]

from .. import readers as _impl  # (moving here: the implementation is still in seqprep/readers.py)

MAGIC = _impl._MAGIC
COMPRESSED_EXT = _impl._COMPRESSED_EXT
SNIFF_BYTES = _impl._SNIFF_BYTES
expand_inputs = _impl.expand_inputs


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
