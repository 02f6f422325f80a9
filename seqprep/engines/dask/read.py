"""The Dask engine's read: every input cut into pieces, each read on a worker by seqprep's own
streaming reader (:mod:`seqprep.io.pieces`), as ``dask.dataframe.read_csv`` runs ``pandas.read_csv``
per block; only integer columns and the pieces' small dictionaries ever leave a worker.

1. the client cuts each input (:func:`~seqprep.io.pieces.input_pieces`; a CSV's nominal ranges are
   scanned for their row ends on the workers, one task per range);
2. each piece is read on a worker into its own first-seen id dictionaries and typed columns, kept
   there (:class:`~seqprep.io.stream.InputColumns`);
3. the client gathers only what merges (the pieces' dictionaries, time units, row counts) and merges
   them by the local reader's rule (:mod:`seqprep.io.merge`): global ids, typed once, and the log's
   time unit;
4. each piece's codes are rewritten on its worker into global codes (int32, -1 = missing), its times
   into the log's unit: the canonical frame, one partition per piece, in input order.

A malformed input fails on its worker; the client then reads that input with the local reader,
which raises the local engine's own one-line error (naming the file's line, not the piece's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ...config import BuildConfig
from ...errors import InputError
from ...io.merge import TimePlan, merge_dictionaries, plan_times, remap_codes
from ...io.pieces import Piece, csv_pieces, input_pieces, read_piece, scan_range
from ...io.sources import Source
from ...io.stream import InputColumns, read_source
from .columns import NO_COLUMNS, LogColumns, canon_columns, describe_columns, merge_columns
from .inputs import DaskInput

__all__ = ["PieceRead", "canon_meta", "read_pieces"]


@dataclass
class PieceRead:
    """The canonical frame's partitions (futures, one per piece), the merged ids and time plan, and
    per piece its input and row count."""

    parts: list[Any]
    user_ids: pa.Array
    item_ids: pa.Array
    plan: TimePlan
    piece_inputs: np.ndarray
    piece_rows: np.ndarray
    columns: LogColumns = NO_COLUMNS  # the requested columns (features, events, --where operands)


def canon_meta(as_float: bool, columns: LogColumns = NO_COLUMNS) -> pd.DataFrame:
    """The canonical frame, empty: global codes (-1 = missing), time in the log's unit, validity, rating."""
    return pd.DataFrame(
        {
            "user": pd.Series([], dtype=np.int32),
            "item": pd.Series([], dtype=np.int32),
            "time": pd.Series([], dtype=np.float64 if as_float else np.int64),
            "tv": pd.Series([], dtype=bool),
            "rating": pd.Series([], dtype=np.float32),
            **columns.meta(),
        }
    )


def _describe(read: InputColumns) -> dict[str, Any]:
    """What the client needs to merge a piece: its dictionaries, time unit and type, row count."""
    t, valid = read.time
    return {
        "users": read.users[1],
        "items": read.items[1],
        "unit": read.unit,
        "float": t.dtype == np.float64,
        "has_time": bool(len(t)) and (valid is None or bool(np.asarray(valid).any())),
        "rows": read.rows,
        "typed": read.typed_text,
        "columns": describe_columns(read),
    }


def _canon(
    read: InputColumns, users: np.ndarray, items: np.ndarray, plan: TimePlan, k: int, tables: Any = (), columns: LogColumns = NO_COLUMNS
) -> pd.DataFrame:
    """One piece's canonical partition: global codes, times in the log's unit (0 where missing)."""
    t, valid = read.time
    n = read.rows
    rating = read.rating if read.rating is not None else np.full(n, np.nan, np.float32)
    return pd.DataFrame(
        {
            "user": remap_codes(np.asarray(read.users[0]), users),
            "item": remap_codes(np.asarray(read.items[0]), items),
            "time": plan.apply(k, np.asarray(t)),
            "tv": np.ones(n, bool) if valid is None else np.asarray(valid),
            "rating": np.asarray(rating, dtype=np.float32),
            **canon_columns(read, list(tables), columns),
        }
    )


def _local_error(src: DaskInput, config: BuildConfig, error: BaseException, requests: tuple[Any, ...] = ()) -> InputError:
    """The local reader's own error for an input a worker could not read (it names the file's line)."""
    if "://" not in src.path:
        s = Source(src.location, hashed=False)
        try:
            read_source(s, config.read, src.format, s.head(), where=src.path, requests=requests)
        except InputError as e:
            return e
    return error if isinstance(error, InputError) else InputError(f"{src.path}: {error}")


def _pieces_of(client: Any, src: DaskInput, config: BuildConfig) -> list[Piece]:
    block = config.engine.block_bytes
    if src.format == "csv" and src.compression is None:
        assert src.csv is not None
        sep = src.csv.sep

        def scan(ranges: list[tuple[int, int]]) -> list[Any]:
            n = len(ranges)
            futs = client.map(
                scan_range,
                [src.location] * n,
                [src.size] * n,
                [a for a, _ in ranges],
                [b for _, b in ranges],
                [ord(sep)] * n,
                pure=False,
            )
            return client.gather(futs)

        pieces, opened = csv_pieces(src.index, src.path, src.location, src.size, sep, block, scan)
        if opened >= 0:  # a quote never closed: the local reader's error names where it opens
            raise _local_error(src, config, InputError(f"{src.path}: a quoted field is never closed"))
        return pieces
    sep = src.csv.sep if src.csv is not None else ","
    return input_pieces(src.index, src.path, src.location, src.size, src.format, src.compression, sep, block)


def read_pieces(client: Any, sources: list[DaskInput], config: BuildConfig, requests: tuple[Any, ...] = ()) -> PieceRead:
    """Read every input on the workers -> the canonical partitions (futures) and the merged ids;
    ``requests``: the other columns to read (:mod:`.columns`)."""
    pieces = [p for s in sources for p in _pieces_of(client, s, config)]
    heads = {s.index: client.scatter(s.head, broadcast=True, hash=False) for s in sources}
    reads = [client.submit(read_piece, p, config.read, heads[p.input], requests=requests, pure=False) for p in pieces]
    try:
        small = client.gather(client.map(_describe, reads))
    except InputError as e:  # the local reader names the file's line, where a piece names its own
        bad = next((k for k, f in enumerate(reads) if f.status == "error"), 0)
        raise _local_error(sources[pieces[bad].input], config, e, requests) from None
    typed = {role: any(d["typed"][role] for d in small) for role in ("user", "item")}
    user_tables, user_ids = merge_dictionaries([d["users"] for d in small], config.read.id_type, "user", typed["user"])
    item_tables, item_ids = merge_dictionaries([d["items"] for d in small], config.read.id_type, "item", typed["item"])
    columns, column_tables = merge_columns(client, reads, [d["columns"] for d in small], tuple(r.name for r in requests))
    inputs = [p.input for p in pieces]
    plan = plan_times([d["unit"] for d in small], [d["float"] for d in small], [d["has_time"] for d in small], inputs)
    parts = [
        client.submit(_canon, r, client.scatter(ut, hash=False), client.scatter(it, hash=False), plan, k, ct, columns, pure=False)
        for k, (r, ut, it, ct) in enumerate(zip(reads, user_tables, item_tables, column_tables))
    ]
    del reads  # each piece's read is let go once its canonical partition is made
    return PieceRead(
        parts,
        user_ids,
        item_ids,
        plan,
        np.array(inputs, dtype=np.int64),
        np.array([d["rows"] for d in small], dtype=np.int64),
        columns,
    )
