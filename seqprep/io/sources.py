"""Input sources: files, compression and stdin, and the one sha256 of a file's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

__all__ = ["HASH_CHUNK", "sha256_file", "sha256_stream"]

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
