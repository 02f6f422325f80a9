"""The error paths of the CSV reader: serial re-reads (only after a failure) that name the line of the
first malformed row or of the first byte that is not UTF-8."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import InputError, one_line
from .columns import casts, first_uncastable
from .quoting import RowLines, unclosed_in
from .sources import Source

__all__ = [
    "whole_csv_options",
    "utf8_error",
    "parse_error",
]


def whole_csv_options(
    names: list[str], header: bool, delim: str, **parse: Any
) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions]:
    """Read and parse options of a whole-file re-read: quoted fields may hold line ends (the header
    too: it is skipped as a row, not as a line)."""
    read = pacsv.ReadOptions(column_names=names, skip_rows_after_names=1 if header else 0, use_threads=False)
    return read, pacsv.ParseOptions(delimiter=delim, newlines_in_values=True, **parse)


def utf8_error(src: Source, names: list[str], header: bool, sep: str, roles: dict[str, str], where: str) -> InputError:
    """Locate the first row whose used columns hold invalid UTF-8 (error path only: re-reads as bytes)."""
    raw = src.read_all()
    delim = sep
    if len(sep) > 1:
        raw, delim = raw.replace(sep.encode(), b"\x1f"), "\x1f"
    unclosed = unclosed_in(src, sep, where, raw)
    if unclosed is not None:
        return unclosed
    used = list(dict.fromkeys(roles.values()))
    read_opts, parse_opts = whole_csv_options(names, header, delim)
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
        if casts(arr, pa.string()):
            continue
        idx = first_uncastable(arr, (pa.string(),))
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


def parse_error(src: Source, names: list[str], header: bool, sep: str, where: str, e: Exception) -> InputError:
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
    unclosed = unclosed_in(src, sep, where, raw)
    if unclosed is not None:  # a field open to the end swallowed rows: that is the error to fix
        return unclosed
    read_opts, parse_opts = whole_csv_options(names, header, delim, invalid_row_handler=record)
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
        msg = f"{where}: {one_line(e)}; check --sep ({sep!r}), --names and the row shown"
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
