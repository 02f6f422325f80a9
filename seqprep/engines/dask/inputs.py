"""The Dask engine's inputs: what each file is and how to read it (decided on the client from its
first 64 KiB, by the local reader's own sniffing), and each one as a Dask frame of canonical rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ...config import ReadOptions
from ...errors import ConfigError, InputError, input_is_folder, input_not_found, no_glob_match, one_line
from ...io.quoting import line_of_offset, open_quote, unclosed_quote
from ...io.ranges import row_starts
from ...io.sniff import CsvLayout, csv_layout, detect_format, jsonl_layout, resolve_columns
from ...io.sources import MAGIC, SNIFF_BYTES, expand_inputs, inner_name
from .partitions import CANON_META, canon

__all__ = ["NULLS", "DaskInput", "expand", "frame", "inspect"]

#: pyarrow's CSV null strings (the local reader's), so both engines call the same fields missing.
NULLS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"]  # fmt: skip


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
    with fs.open(path, "rb") as fh:
        magic = fh.read(8)
    compression = next((c for m, c in MAGIC if magic.startswith(m)), None)
    with fsspec.open(spec, "rb", compression=compression) as fh:
        head = fh.read(SNIFF_BYTES)
    fmt = detect_format(inner_name(spec), opts, head)
    untyped = {"user": False, "item": False}
    if fmt == "csv":
        layout = csv_layout(spec, opts, head)
        return DaskInput(index, spec, size, compression, fmt, layout.roles, untyped, layout)
    if fmt == "jsonl":
        roles, schema = jsonl_layout(spec, opts, head)  # the local rules
        typed = {r: pa.types.is_string(schema.field(roles[r]).type) for r in ("user", "item")}
        return DaskInput(index, spec, size, compression, fmt, roles, typed)
    return _parquet_input(index, spec, size, compression, opts)


def _parquet_input(index: int, spec: str, size: int, compression: str | None, opts: ReadOptions) -> DaskInput:
    import fsspec
    import pyarrow.parquet as pq

    if compression is not None:
        msg = f"{spec}: a compressed Parquet file cannot be split by the Dask engine; decompress it or use --engine local"
        raise InputError(msg)
    fs, path = fsspec.core.url_to_fs(spec)
    try:
        with fs.open(path, "rb") as fh:
            schema = pq.read_schema(fh)
    except (pa.ArrowInvalid, OSError) as e:
        msg = f"{spec}: not a readable Parquet file ({one_line(e)}); check the file or pass --input-format"
        raise InputError(msg) from e
    roles = resolve_columns(schema.names, opts, spec)
    typed = {r: pa.types.is_string(schema.field(roles[r]).type) or pa.types.is_large_string(schema.field(roles[r]).type) for r in ("user", "item")}
    return DaskInput(index, spec, size, compression, "parquet", roles, typed)


def frame(dd: Any, src: DaskInput, block_bytes: int) -> Any:
    """One input as a Dask frame of its role columns, every partition canonicalised by :func:`canon`."""
    import pandas as pd

    cols = [src.roles[r] for r in ("user", "item", "time", "rating") if r in src.roles]
    splittable = src.compression is None
    if src.format == "csv":
        assert src.csv is not None
        kw: dict[str, Any] = {
            "sep": src.csv.sep,
            "header": 0 if src.csv.header else None,
            "names": src.csv.names,
            "usecols": cols,
            "dtype": dict.fromkeys(cols, pd.StringDtype("pyarrow")),
            "na_values": NULLS,
            "keep_default_na": False,
            "blocksize": block_bytes if splittable else None,
            "compression": src.compression,
        }
        if len(src.csv.sep) > 1:
            kw |= {"sep": re.escape(src.csv.sep), "engine": "python"}
            df = dd.read_csv(src.location, **kw)
        elif splittable:  # partitions cut where rows end: a quoted field may hold line ends (RFC 4180)
            df = _csv_in_ranges(dd, src, block_bytes, kw)
        else:
            df = dd.read_csv(src.location, **kw)
    elif src.format == "jsonl":
        df = dd.read_json(
            src.location,
            lines=True,
            orient="records",
            blocksize=block_bytes if splittable else None,
            compression=src.compression or "infer",
            dtype=False,  # no type guessing (pandas then also leaves date-like columns alone)
        )
        df = df[cols]
    else:
        df = dd.read_parquet(src.location, columns=cols)
    df = df.rename(columns={src.roles[r]: r for r in src.roles})
    return df.map_partitions(canon, where=src.path, meta=CANON_META)


def _csv_in_ranges(dd: Any, src: DaskInput, block_bytes: int, kw: dict[str, Any]) -> Any:
    """An uncompressed CSV as one partition per byte range of whole rows (about ``block_bytes``
    each), cut on the client from the bytes around each cut (``dask.dataframe.read_csv`` cuts at
    any line end, also inside a quoted field)."""
    import fsspec
    import pandas as pd

    assert src.csv is not None
    with fsspec.open(src.location, "rb") as fh:

        def read_at(n: int, a: int) -> bytes:
            fh.seek(a)
            return fh.read(n)

        cuts = row_starts(read_at, src.size, ord(src.csv.sep), block_bytes, header=src.csv.header, where=src.path)
    ranges = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(cuts[-1], cuts[-1])]
    usecols = set(kw["usecols"])
    meta = pd.DataFrame({n: pd.Series([], dtype=kw["dtype"][n]) for n in src.csv.names if n in usecols})
    kw = {**kw, "header": None}
    kw.pop("blocksize")
    kw.pop("compression")
    return dd.from_map(
        read_csv_range, ranges, location=src.location, where=src.path, kw=kw, meta=meta, label="read-csv-range"
    )


def read_csv_range(span: tuple[int, int], *, location: str, where: str, kw: dict[str, Any]) -> Any:
    """Rows ``span`` (byte offsets ``[a, b)``, whole rows) of a CSV, read by ``pandas.read_csv`` on a
    worker; a quote still open at the end of the file is the local reader's located error."""
    import io

    import fsspec
    import pandas as pd

    a, b = span
    with fsspec.open(location, "rb") as fh:
        fh.seek(a)
        data = fh.read(b - a)
        if not data.strip(b"\r\n"):  # no rows (pandas: "No columns to parse")
            cols = [n for n in kw["names"] if n in set(kw["usecols"])]
            return pd.DataFrame({n: pd.Series([], dtype=kw["dtype"][n]) for n in cols})
        try:
            return pd.read_csv(io.BytesIO(data), **kw)
        except pd.errors.ParserError as e:
            opened = open_quote(iter([data]), kw["sep"])
            if opened < 0:
                raise

            def read_at(n: int, at: int) -> bytes:
                fh.seek(at)
                return fh.read(n)

            raise unclosed_quote(where, line_of_offset(read_at, a + opened)) from e
