"""Reading an attribute table (``--item-table``, ``--user-table``): a key column and the columns asked for.

An attribute table is not a log: it has no user, time or rating, only a key (an item or user id)
and attribute columns. It is read with the log's readers (:func:`~seqprep.io.stream.read_batches`:
CSV/TSV with RFC 4180 quotes, JSON Lines with nested fields and lists, Parquet, compressed files)
and sniffed the same way, with two differences: line 1 is always a header, and a RecBole typed
header (``item_id:token  class:token_seq  price:float``) says how a column is parsed (``float`` as
numbers, ``token`` and ``token_seq`` as text) unless the request says otherwise. The key is read as
text and typed on the distinct values as a log's ids are, so ``007`` and ``7`` stay two keys; a key
on two rows is an error naming it and its lines.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..config import ReadOptions
from ..errors import InputError
from ..model import InputInfo, KeyedTable
from ..progress import SILENT
from .buffers import IdEncoder, buffer_factory
from .columns import check_nul_ids, merge_ids
from .quoting import RowLines
from .sniff import ColumnRequest, csv_layout, detect_format, find_column, key_role, recbole_type
from .sources import Source
from .stream import (
    DEFAULT_BLOCK_SIZE,
    ExtraColumn,
    encode_ids,
    extract_column,
    merged_column,
    numbers_checked,
    read_batches,
)

__all__ = ["TABLE_READ", "read_table"]

#: How every attribute table is read: formats and separators detected, line 1 a header.
TABLE_READ = ReadOptions(header=True)


class _KeyColumns:
    """One table's key and requested columns while it is read (a :class:`~seqprep.io.stream.BatchSink`)."""

    def __init__(self, requests: tuple[ColumnRequest, ...], new_buffer: Any, key_flag: str) -> None:
        self.extra = {r.name: ExtraColumn(r, new_buffer) for r in requests}
        self.key = IdEncoder(new_buffer=new_buffer)
        self.key_flag = key_flag
        self.rows = 0

    def add(
        self, batch: pa.RecordBatch | pa.Table, roles: dict[str, str], where: str, paths: dict[str, tuple[str, str | None]]
    ) -> None:
        for name, extra in self.extra.items():
            extra.add(extract_column(batch, *paths[name]))
        encode_ids(batch.column(roles["key"]), "key", where, self.key, self.key_flag)
        self.rows += batch.num_rows

    def settle(self) -> None:
        """(Nothing runs beside the reader for a table.)"""

    def close(self) -> None:
        self.key.codes.close()
        for extra in self.extra.values():
            extra.close()


def read_table(
    spec: str,
    *,
    key: str | None,
    key_flag: str,
    key_aliases: tuple[str, ...],
    columns: tuple[ColumnRequest, ...],
    table_flag: str,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> KeyedTable:
    """Read the table file ``spec``: its key column (``key``, else the one column named like
    ``key_aliases``) and the ``columns`` asked for, every row in file order -> :class:`KeyedTable`.

    ``key_flag`` and ``table_flag`` name the options in messages. The file is hashed (its sha256 goes
    to meta.json).
    """
    if not Path(spec).is_file():
        what = "is a folder" if Path(spec).is_dir() else "not found"
        msg = f"{table_flag} {spec!r}: {what}; pass an attribute table file (CSV/TSV, RecBole .item/.user, JSON Lines or Parquet)"
        raise InputError(msg)
    src = Source(spec, hashed=True)
    head = src.head()
    if not head.strip():
        msg = f"{table_flag} {spec!r} is empty; pass a table with a header line and one row per key"
        raise InputError(msg)
    fmt = detect_format(src.inner_name, TABLE_READ, head)
    find_roles = key_role(key, key_flag, key_aliases)
    requests, names = _typed_requests(src, head, fmt, columns, find_roles)
    new_buffer = buffer_factory(None)

    def new_sink(as_text: set[str]) -> _KeyColumns:
        return _KeyColumns(requests, new_buffer, key_flag)

    sink, roles, header, typed = read_batches(
        src, TABLE_READ, block_size, SILENT, fmt, head, new_sink, requests, find_roles
    )
    assert isinstance(sink, _KeyColumns)
    lines = RowLines(header, src, csv_layout(src.name, TABLE_READ, head, find_roles).sep) if fmt == "csv" else RowLines(header)
    raw_codes, raw_ids = sink.key.finish()
    check_nul_ids((_dict_view(raw_codes, raw_ids),), spec, lines)
    by_value = pa.DictionaryArray.from_arrays(pa.array(np.arange(len(raw_ids), dtype=np.int32)), raw_ids)
    mapping, key_ids = merge_ids([by_value], "auto", "key", typed["key"])
    key_codes = np.append(mapping, np.int32(-1))[raw_codes].astype(np.int32)
    _check_unique(key_codes, key_ids, roles["key"], spec, lines)
    cols = tuple(
        merged_column(r.name, [numbers_checked(sink.extra[r.name].finish(), r, spec, lines)], new_buffer) for r in requests
    )
    info = InputInfo(
        path=spec,
        bytes=src.size,
        sha256=src.sha256(),
        rows=sink.rows,
        format=fmt,
        compression=src.compression,
        columns={"key": roles["key"]},
    )
    return KeyedTable(
        key_codes=key_codes, key_ids=key_ids, key_column=roles["key"], columns=cols, column_names=names, info=info
    )


def _typed_requests(
    src: Source, head: bytes, fmt: str, columns: tuple[ColumnRequest, ...], find_roles: Any
) -> tuple[tuple[ColumnRequest, ...], dict[str, str]]:
    """The requests with a RecBole typed header's parse (``:float`` as numbers, ``:token``,
    ``:token_seq`` as text, where the request says ``auto``), and request -> the file's column."""
    if fmt != "csv":
        return columns, {r.name: r.name for r in columns}
    names = csv_layout(src.name, TABLE_READ, head, find_roles).names
    out, found = [], {}
    for r in columns:
        column = find_column(r.name, names, r.flag, src.name)
        typ = recbole_type(column)
        if r.read_as == "auto" and typ is not None:
            r = dataclasses.replace(r, read_as="number" if typ == "float" else "text")
        out.append(r)
        found[r.name] = column
    return tuple(out), found


def _dict_view(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary, safe=False)


def _check_unique(codes: np.ndarray, ids: pa.Array, column: str, where: str, lines: RowLines) -> None:
    """Each key on one row: else an error naming the first repeated key (in file order) and its lines."""
    present = codes[codes >= 0]
    counts = np.bincount(present, minlength=len(ids))
    repeated = counts > 1
    if not repeated.any():
        return
    rows = np.flatnonzero(np.append(repeated, False)[codes])  # code -1 (missing) takes the trailing False
    first = int(codes[rows[0]])
    at = np.flatnonzero(codes == first)[:2]
    more = int(repeated.sum()) - 1
    also = f" ({more} more keys repeat)" if more else ""
    msg = (
        f"{where}: key {ids[first].as_py()!r} (column {column!r}) is on {int(counts[first])} rows, lines "
        f"{lines(int(at[0]))} and {lines(int(at[1]))}{also}; an attribute table needs one row per key - remove the duplicates"
    )
    raise InputError(msg)
