"""The Dask engine's inputs: what each file is and how to read it, decided on the client from its
first 64 KiB by the local reader's own sniffing (the pieces are then read by :mod:`.read`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ...config import ReadOptions
from ...errors import ConfigError, InputError, input_is_folder, input_not_found, no_glob_match, one_line
from ...io.sniff import CsvLayout, csv_layout, detect_format, jsonl_layout, resolve_columns
from ...io.sources import MAGIC, SNIFF_BYTES, expand_inputs, inner_name

__all__ = ["DaskInput", "expand", "inspect"]

@dataclass(frozen=True)
class DaskInput:
    """One input file: where it is, its size, compression, format and columns."""

    index: int
    path: str
    size: int
    compression: str | None
    format: str
    roles: dict[str, str]
    typed_text: dict[str, bool]  # a typed source's text ids stay text (as the local reader decides)
    csv: CsvLayout | None = None
    head: bytes = b""  # the first bytes (decompressed), which every piece's layout is sniffed from

    @property
    def location(self) -> str:
        """Where the workers read it: a local path made absolute (their working folder is not ours)."""
        return self.path if "://" in self.path else str(Path(self.path).absolute())


def expand(inputs: tuple[str, ...]) -> list[str]:
    """Local paths and globs as the local reader expands them; fsspec URLs (``s3://...``) through fsspec."""
    import fsspec

    out: list[str] = []
    for spec in inputs:
        if spec == "-":
            msg = "--engine dask reads files or URLs, not stdin (-); write the log to a file first"
            raise ConfigError(msg)
        if "://" not in spec:
            out.extend(expand_inputs([spec]))
            continue
        fs, path = fsspec.core.url_to_fs(spec)
        if any(ch in path for ch in "*?[") and not fs.exists(path):
            matches = sorted(fs.glob(path))
            if not matches:
                raise no_glob_match(spec)
            out.extend(fs.unstrip_protocol(m) for m in matches)
        else:
            out.append(spec)
    return out


def inspect(index: int, spec: str, opts: ReadOptions) -> DaskInput:
    """Size, compression (magic bytes), format and columns of one input, read on the client."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(spec)
    if not fs.exists(path):
        raise input_not_found(spec)
    if fs.isdir(path):
        raise input_is_folder(spec)
    size = int(fs.size(path))
    compression, head = url_head(spec)
    fmt = detect_format(inner_name(spec), opts, head)
    untyped = {"user": False, "item": False}
    if fmt == "csv":
        layout = csv_layout(spec, opts, head)
        return DaskInput(index, spec, size, compression, fmt, layout.roles, untyped, layout, head)
    if fmt == "jsonl":
        roles, schema = jsonl_layout(spec, opts, head)  # the local rules
        typed = {r: pa.types.is_string(schema.field(roles[r]).type) for r in ("user", "item")}
        return DaskInput(index, spec, size, compression, fmt, roles, typed, None, head)
    return _parquet_input(index, spec, size, compression, opts)


def url_head(spec: str) -> tuple[str | None, bytes]:
    """The compression of the input at ``spec`` (from its magic bytes) and its first
    :data:`~seqprep.io.sources.SNIFF_BYTES`, decompressed."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(spec)
    with fs.open(path, "rb") as fh:
        magic = fh.read(8)
    compression = next((c for m, c in MAGIC if magic.startswith(m)), None)
    with fsspec.open(spec, "rb", compression=compression) as fh:
        return compression, fh.read(SNIFF_BYTES)


def parquet_schema(spec: str, compression: str | None) -> pa.Schema:
    """The schema of the Parquet file at ``spec`` (compressed: from its decompressed bytes, whose
    footer is at their end; such a file is then read as one piece)."""
    import fsspec
    import pyarrow.parquet as pq

    if compression is None:
        fs, path = fsspec.core.url_to_fs(spec)
        with fs.open(path, "rb") as fh:
            return pq.read_schema(fh)
    with fsspec.open(spec, "rb", compression=compression) as fh:
        return pq.read_schema(pa.BufferReader(fh.read()))


def _parquet_input(index: int, spec: str, size: int, compression: str | None, opts: ReadOptions) -> DaskInput:
    try:
        schema = parquet_schema(spec, compression)
    except (pa.ArrowInvalid, OSError, EOFError) as e:
        msg = f"{spec}: not a readable Parquet file ({one_line(e)}); check the file or pass --input-format"
        raise InputError(msg) from e
    roles = resolve_columns(schema.names, opts, spec)
    typed = {r: pa.types.is_string(schema.field(roles[r]).type) or pa.types.is_large_string(schema.field(roles[r]).type) for r in ("user", "item")}
    return DaskInput(index, spec, size, compression, "parquet", roles, typed)
