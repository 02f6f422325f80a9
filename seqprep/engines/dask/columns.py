"""The log's other columns on a Dask cluster: the ``--feature`` and ``--event-col`` columns and the
names a ``--where`` predicate uses, read on the workers beside the ids and carried with the rows.

1. the client plans the read as the local reader does (:func:`~seqprep.io.keys.plan_read`: a
   predicate's name that is a role column is not read again); each piece reads the requested
   columns with the streaming reader;
2. the client merges each column over the pieces by the local rule
   (:func:`~seqprep.io.merge.merged_kind`, :func:`~seqprep.io.merge.merge_dictionaries`): numbers stay
   float64 per row, text becomes global codes into one first-seen dictionary (:class:`LogColumns`);
3. in the canonical frame a column is ``x0``, ``x1``, ...: int32 global codes (-1: missing) or float64.

Only integer and float columns travel between the workers; the dictionaries stay on the client
(and are broadcast once to the workers that evaluate ``--where``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...config import BuildConfig
from ...errors import SeqprepError
from ...io.keys import ReadPlan, plan_read
from ...io.merge import merge_dictionaries, merged_kind, numbers_as_text, remap_codes
from ...io.sniff import ColumnRequest
from ...io.sources import inner_name
from ...io.stream import InputColumns
from ...model import Column, InputInfo, Interactions, Log
from ...steps.events import event_requests
from ...steps.features import column_requests
from ...steps.where import operand_requests, where_truth
from .inputs import parquet_schema, url_head
from .lists import gather_lists

__all__ = [
    "DistinctLists",
    "LogColumns",
    "NO_COLUMNS",
    "canon_columns",
    "describe_columns",
    "local_requests",
    "merge_columns",
    "read_plan",
    "where_mask",
]


def local_requests(config: BuildConfig) -> tuple[ColumnRequest, ...]:
    """The columns the features and the event column need, each once (what the local engine asks)."""
    out: dict[str, ColumnRequest] = {}
    for req in column_requests(config.feature) + event_requests(config.event):
        out.setdefault(req.name, req)
    return tuple(out.values())


def read_plan(config: BuildConfig, first_input: str) -> ReadPlan:
    """The local reader's plan (:func:`~seqprep.io.keys.plan_read`): the reader's options (a session
    key read as the key, a combined time's base as the time) and the columns the pieces read beside
    the roles (features, events, the users of sessions, time offsets, the predicates' names that are
    no role column)."""
    operands = operand_requests(config)
    if "://" not in first_input or not (operands or config.read.session_col is not None):
        return plan_read([first_input], config.read, stdin=None, columns=local_requests(config), operands=operands)
    # the plan reads the first input's column names: from a local stand-in of a URL (its first bytes,
    # or an empty Parquet file of its schema), the messages naming the URL
    with tempfile.TemporaryDirectory(prefix="seqprep-dask-head-") as folder:
        stand_in = _stand_in(first_input, Path(folder))
        try:
            return plan_read([stand_in], config.read, stdin=None, columns=local_requests(config), operands=operands)
        except SeqprepError as e:
            raise type(e)(str(e).replace(stand_in, first_input)) from None


def _stand_in(url: str, folder: Path) -> str:
    """A local file with what :func:`~seqprep.io.keys.plan_read` reads of the input at ``url``, under
    its name without a compression extension: the first :data:`~seqprep.io.sources.SNIFF_BYTES`
    (decompressed), or for Parquet an empty file of its schema."""
    import pyarrow.parquet as pq

    compression, head = url_head(url)
    target = folder / (inner_name(url) or "input")
    if head.startswith(b"PAR1"):  # its schema is in the footer
        pq.write_table(parquet_schema(url, compression).empty_table(), target)
    else:
        target.write_bytes(head)
    return str(target)


@dataclass(frozen=True)
class LogColumns:
    """The requested columns as merged: per column its name, kind (``number`` or ``text``) and, for
    text, the global dictionary of its values. In the canonical frame column ``k`` is :meth:`key`."""

    names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()

    @staticmethod
    def key(k: int) -> str:
        return f"x{k}"

    def index(self, name: str) -> int:
        return self.names.index(name)

    def column(self, k: int, data: np.ndarray) -> Column:
        """Column ``k`` over rows whose frame values are ``data`` (codes, or numbers; a list
        column's: codes of its distinct lists)."""
        if self.kinds[k] == "number":
            return Column(self.names[k], "number", np.asarray(data, dtype=np.float64))
        if self.kinds[k] == "list":
            lists = self.values[k]
            rows = np.asarray(data, dtype=np.int64)
            rows = np.where(rows < 0, len(lists), rows)  # code -1: an empty list, past the end
            offsets, codes = gather_lists(rows, np.append(lists.offsets, lists.offsets[-1]), lists.codes)
            return Column(self.names[k], "list", lists.elements, codes=codes, offsets=offsets)
        return Column(self.names[k], "text", self.values[k], codes=np.asarray(data, dtype=np.int32))

    def distinct(self, k: int) -> int:
        """The distinct values of text column ``k`` (the codes of its rows; a list column: its distinct lists)."""
        return len(self.values[k])

    def stub(self, k: int) -> Column:
        """Column ``k`` without rows (its kind and dictionary: what decides a feature's kind)."""
        empty = np.zeros(0, np.float64 if self.kinds[k] == "number" else np.int32)
        return self.column(k, empty)

    def meta(self) -> dict[str, pd.Series]:
        """The frame's columns, empty."""
        return {
            self.key(k): pd.Series([], dtype=np.float64 if kind == "number" else np.int32)
            for k, kind in enumerate(self.kinds)
        }


NO_COLUMNS = LogColumns()


def describe_columns(read: InputColumns) -> dict[str, tuple[str, Any]]:
    """One piece's requested columns: name -> (kind, its dictionary; None for numbers)."""
    return {name: (kind, None if kind == "number" else values) for name, (kind, values, _, _) in read.columns.items()}


def _number_dictionary(read: InputColumns, name: str) -> pa.Array:
    return numbers_as_text(np.asarray(read.columns[name][1]))[1]


def merge_columns(
    client: Any, reads: list[Any], described: list[dict[str, tuple[str, Any]]], names: tuple[str, ...]
) -> tuple[LogColumns, list[list[np.ndarray | None]]]:
    """The pieces' columns merged by the local reader's rule -> (the columns; per piece, per column,
    its code table into the global dictionary, None for a number column)."""
    kinds, values = [], []
    tables: list[list[np.ndarray | None]] = [[] for _ in described]
    for name in names:
        piece_kinds = [d[name][0] for d in described]
        kind, as_text = merged_kind(piece_kinds)
        kinds.append(kind)
        if kind == "number":
            values.append(None)
            for t in tables:
                t.append(None)
            continue
        numbers = [k for k, pk in enumerate(piece_kinds) if pk == "number"] if as_text else []
        found = dict(
            zip(
                numbers, client.gather([client.submit(_number_dictionary, reads[k], name, pure=False) for k in numbers])
            )
        )
        dicts = [found[k] if k in found else d[name][1] for k, d in enumerate(described)]
        piece_tables, dictionary = merge_dictionaries(dicts, "auto", name, True)
        if kind == "list":  # the elements' dictionary as text's; then the distinct lists' (a second round)
            lists, list_tables = _merge_lists(client, reads, name, piece_tables)
            values.append(DistinctLists(dictionary, *lists))
            piece_tables = [(e, t) for e, t in zip(piece_tables, list_tables)]
        else:
            values.append(dictionary)
        for t, table in zip(tables, piece_tables):
            t.append(table)
    return LogColumns(tuple(names), tuple(kinds), tuple(values)), tables


@dataclass(frozen=True)
class DistinctLists:
    """A list column's values: its elements' global dictionary and its distinct lists, list ``v``
    the element codes ``codes[offsets[v]:offsets[v + 1]]`` (-1: a missing element)."""

    elements: pa.Array
    offsets: np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1


def _list_keys(read: InputColumns, name: str, elements: np.ndarray) -> pa.Array:
    """Each row's list of one piece as a binary key: its global element codes' int32 bytes (a text
    or number value is a list of one, as the local merge makes it)."""
    kind, values, codes, offsets = read.columns[name]
    if kind == "number":
        codes = numbers_as_text(np.asarray(values))[0]
    codes = remap_codes(np.asarray(codes), elements)
    if offsets is None:
        offsets = np.arange(len(codes) + 1, dtype=np.int64)
    data = pa.py_buffer(np.ascontiguousarray(codes, dtype="<i4").tobytes())
    ends = pa.py_buffer((np.asarray(offsets, dtype=np.int64) * 4).tobytes())
    return pa.Array.from_buffers(pa.large_binary(), len(offsets) - 1, [None, ends, data])


def _piece_lists(read: InputColumns, name: str, elements: np.ndarray) -> pa.Array:
    """One piece's distinct lists (keys), first-seen."""
    return pc.unique(_list_keys(read, name, elements))


def _merge_lists(
    client: Any, reads: list[Any], name: str, element_tables: list[np.ndarray]
) -> tuple[tuple[np.ndarray, np.ndarray], list[np.ndarray]]:
    """The pieces' distinct lists (gathered: few) merged first-seen -> ((offsets, element codes) of
    the global distinct lists, per piece the table of its keys into them)."""
    found = client.gather([client.submit(_piece_lists, r, name, t, pure=False) for r, t in zip(reads, element_tables)])
    enc = pc.dictionary_encode(pa.chunked_array(found, type=pa.large_binary()).combine_chunks())
    mapping = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    tables, at = [], 0
    for f in found:
        tables.append(np.append(mapping[at : at + len(f)], np.int32(-1)).astype(np.int32))
        at += len(f)
    keys = enc.dictionary
    ends = np.frombuffer(keys.buffers()[1], dtype=np.int64)[keys.offset : keys.offset + len(keys) + 1]
    data = keys.buffers()[2]
    flat = np.frombuffer(data, dtype="<i4") if data is not None else np.zeros(0, np.int32)
    offsets = (ends - ends[0]) // 4
    return (offsets.astype(np.int64), flat[ends[0] // 4 : ends[-1] // 4].astype(np.int32)), tables


def canon_columns(read: InputColumns, tables: list[np.ndarray | None], cols: LogColumns) -> dict[str, np.ndarray]:
    """One piece's requested columns in the canonical frame: global codes, or float64 numbers."""
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(cols.names):
        kind, values, codes, _ = read.columns[name]
        table = tables[k]
        if table is None:
            out[cols.key(k)] = np.asarray(values, dtype=np.float64)
            continue
        if cols.kinds[k] == "list":  # each row's distinct list
            elements, lists = table
            local = pc.dictionary_encode(_list_keys(read, name, elements))  # first-seen: _piece_lists' order
            out[cols.key(k)] = remap_codes(local.indices.to_numpy(zero_copy_only=False).astype(np.int32), lists)
            continue
        if kind == "number":  # numbers here, text in another piece: text everywhere
            codes = numbers_as_text(np.asarray(values))[0]
        out[cols.key(k)] = remap_codes(np.asarray(codes), table)
    return out


def where_mask(
    df: pd.DataFrame,
    user_ids: pa.Array,
    item_ids: pa.Array,
    cols: LogColumns,
    inputs: tuple[InputInfo, ...],
    unit: str,
    has_rating: bool,
    predicates: tuple[str, ...],
) -> pd.DataFrame:
    """The partition with ``wk`` (every predicate true) and ``wu`` (some predicate unknown), by the
    local step's :func:`~seqprep.steps.where.where_truth` (a row's truth is its own)."""
    empty = np.zeros(0, np.int32)
    log = Log(empty, user_ids, empty, item_ids, np.zeros(0, np.int64), np.zeros(0, bool), unit, None, inputs)
    inter = Interactions(
        user=df["user"].to_numpy(),
        item=df["item"].to_numpy(),
        time=df["time"].to_numpy(),
        rating=df["rating"].to_numpy() if has_rating else None,
        columns=tuple(cols.column(k, df[cols.key(k)].to_numpy()) for k in range(len(cols.names))),
    )
    true, known = where_truth(log, inter, predicates)
    unknown = np.zeros(len(df), dtype=bool) if known is None else ~np.asarray(known, dtype=bool)
    return df.assign(wk=np.asarray(true, dtype=bool), wu=unknown)
