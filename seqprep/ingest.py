"""Streaming ingestion: inputs are read block by block and only compact integer columns are kept.

Per block, user and item ids arrive dictionary-encoded (the CSV reader types them
``dictionary<int32, string>``; Parquet and JSON columns go through the same ``_ids_to_dict`` as the
in-memory reader). Only the block's *small* dictionary is unified with the file's growing dictionary
(:class:`IdEncoder`, pyarrow hashing, no Python loop over rows); the block's indices are translated
with one numpy take into int32 codes. Raw string ids of a block are dropped once it is encoded, so
peak memory is the integer columns (4 + 4 + 8 + 4 bytes per row) plus the distinct ids.

The result is the same :class:`~seqprep.readers.Log` as :func:`~seqprep.readers.read_log_in_memory`
gives (same codes, same first-seen dictionaries, same types and error messages), so every output is
byte-identical whichever reader ran.
"""

from __future__ import annotations

import json
import lzma
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from .config import ReadOptions
from .errors import ConfigError, InputError
from .progress import SILENT, Progress
from .readers import (
    _DICT,
    InputInfo,
    Log,
    _arrow_msg,
    _csv_layout,
    _csv_source,
    _detect_format,
    _ids_to_dict,
    _json_type,
    _merge_ids,
    _merge_times,
    _normalize_rating,
    _normalize_time,
    _Source,
    expand_inputs,
    resolve_columns,
)

__all__ = ["GrowBuffer", "IdEncoder", "stream_log", "DEFAULT_BLOCK_SIZE"]

DEFAULT_BLOCK_SIZE = 1 << 24


class GrowBuffer:
    """An append-only numpy column that grows in place (``realloc``), never holding two copies.

    >>> b = GrowBuffer(np.int32, capacity=2)
    >>> b.append(np.array([1, 2, 3], dtype=np.int32)); b.append(np.array([4], dtype=np.int32))
    >>> b.finish()
    array([1, 2, 3, 4], dtype=int32)
    """

    def __init__(self, dtype: Any, capacity: int = 1 << 16) -> None:
        self._arr = np.empty(max(1, capacity), dtype=dtype)
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        n = len(values)
        need = self.size + n
        if need > len(self._arr):
            self._arr.resize(max(need, len(self._arr) * 3 // 2 + 1), refcheck=False)
        self._arr[self.size : need] = values
        self.size = need

    def fill(self, value: Any, n: int) -> None:
        self.append(np.full(n, value, dtype=self._arr.dtype))

    def finish(self) -> np.ndarray:
        """The filled part as an array that owns its memory (the buffer is then spent)."""
        arr = self._arr
        self._arr = np.empty(0, dtype=arr.dtype)
        arr.resize(self.size, refcheck=False)
        return arr


class IdEncoder:
    """Dictionary-encodes one id column block by block against a growing, first-seen dictionary.

    Blocks wait (as int32 indices + their small dictionary) until their dictionaries add up to the
    size of the global one; then one ``unify_dictionaries`` maps all of them at once. Each flush
    hashes the global dictionary once, so the cost stays linear in the number of block-distinct ids.
    Missing ids get code -1.

    >>> enc = IdEncoder(min_flush=1)
    >>> enc.add(pa.array(["b", "a", None, "b"]).dictionary_encode())
    >>> enc.add(pa.array(["c", "a"]).dictionary_encode())
    >>> codes, ids = enc.finish()
    >>> codes.tolist(), ids.to_pylist()
    ([0, 1, -1, 0, 2, 1], ['b', 'a', 'c'])
    """

    def __init__(self, *, min_flush: int = 1 << 16) -> None:
        self.codes = GrowBuffer(np.int32)
        self.dictionary: pa.Array | None = None
        self._pending: list[tuple[np.ndarray, pa.Array]] = []
        self._pending_size = 0
        self._min_flush = min_flush

    def add(self, col: pa.DictionaryArray) -> None:
        indices = col.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        self._pending.append((indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), col.dictionary))
        self._pending_size += len(col.dictionary)
        if self._pending_size >= max(self._min_flush, 0 if self.dictionary is None else len(self.dictionary)):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        dicts = ([] if self.dictionary is None else [self.dictionary]) + [d for _, d in self._pending]
        value_type = dicts[0].type
        if any(d.type != value_type for d in dicts):  # e.g. string and large_string blocks
            dicts = [pc.cast(d, pa.string()) for d in dicts]
        chunks = [pa.DictionaryArray.from_arrays(pa.array(np.arange(len(d), dtype=np.int32)), d) for d in dicts]
        unified = pa.table({"c": pa.chunked_array(chunks)}).unify_dictionaries()["c"]
        first = 0 if self.dictionary is None else 1
        for (indices, _), chunk in zip(self._pending, unified.chunks[first:]):
            mapping = np.append(chunk.indices.to_numpy(zero_copy_only=False).astype(np.int32), np.int32(-1))
            self.codes.append(mapping[indices])  # index -1 (missing) takes the trailing -1
        self.dictionary = unified.chunk(0).dictionary if unified.num_chunks else dicts[0]
        self._pending = []
        self._pending_size = 0

    def finish(self, empty_type: pa.DataType = pa.string()) -> tuple[np.ndarray, pa.Array]:
        self.flush()
        dictionary = self.dictionary if self.dictionary is not None else pa.array([], empty_type)
        return self.codes.finish(), dictionary


@dataclass
class _FileColumns:
    """One input's compact columns while it is being read."""

    user: IdEncoder = field(default_factory=IdEncoder)
    item: IdEncoder = field(default_factory=IdEncoder)
    time: GrowBuffer | None = field(default_factory=lambda: GrowBuffer(np.int64))
    time_valid: GrowBuffer | None = None
    time_raw: list[pa.Array] = field(default_factory=list)
    rating: GrowBuffer | None = None
    rows: int = 0
    rating_via_double: bool = False

    def add(self, batch: pa.RecordBatch, roles: dict[str, str], where: str) -> None:
        n = batch.num_rows
        self.user.add(_ids_to_dict(batch.column(roles["user"]), "user", where))
        self.item.add(_ids_to_dict(batch.column(roles["item"]), "item", where))
        t = batch.column(roles["time"])
        if self.time is not None and pa.types.is_integer(t.type):
            # integer epochs need no look at the whole column: encode now
            t64 = pc.cast(t, pa.int64())
            if t64.null_count and self.time_valid is None:
                self.time_valid = GrowBuffer(np.bool_)
                self.time_valid.fill(True, self.rows)
            if self.time_valid is not None:
                self.time_valid.append(t64.is_valid().to_numpy(zero_copy_only=False))
                t64 = pc.fill_null(t64, 0)
            self.time.append(t64.to_numpy(zero_copy_only=False))
        else:
            # strings, floats, dates: typed on the whole column (as the in-memory reader does)
            if self.time is not None:
                if self.rows:
                    values = self.time.finish()
                    mask = None if self.time_valid is None else ~self.time_valid.finish()
                    self.time_raw = [pa.array(values, mask=mask)]
                self.time = None
            self.time_raw.append(t)
        if "rating" in roles:
            r = batch.column(roles["rating"])
            if self.rating_via_double:  # re-read as text: type it as the whole-file inference would (double)
                r = _normalize_rating(pa.chunked_array([r]), where, pa.float64())
            r = _normalize_rating(pa.chunked_array([r]), where)
            if self.rating is None:
                self.rating = GrowBuffer(np.float32)
            self.rating.append(pc.fill_null(r, float("nan")).to_numpy(zero_copy_only=False))
        self.rows += n

    def time_array(self, where: str, header: int) -> tuple[pa.Array, str]:
        """-> (int64/float64 array with nulls, unit), as ``_normalize_time`` gives it."""
        if self.time is not None:
            values = self.time.finish()
            if self.time_valid is None:
                return pa.array(values), "epoch"
            valid = self.time_valid.finish()
            return pa.array(values, mask=~valid), "epoch"
        col = pa.chunked_array(self.time_raw) if self.time_raw else pa.chunked_array([], pa.null())
        return _normalize_time(col, where, header)


# --------------------------------------------------------------------------------------------------
# Batches per format


class _Position:
    """Bytes consumed from the underlying (compressed) file, for the progress display."""

    def __init__(self, tell: Callable[[], int] | None) -> None:
        self._tell = tell

    def __call__(self) -> int | None:
        try:
            return None if self._tell is None else int(self._tell())
        except (OSError, ValueError, pa.ArrowException):
            return None


def _open_tracked(src: _Source) -> tuple[Any, _Position]:
    """Like ``_Source.open`` but a stream (never a path) plus how far into the raw bytes it is."""
    if src.data is not None:
        raw: Any = pa.BufferReader(src.data)
    elif src.compression == "xz":
        raw = open(src.path, "rb")  # type: ignore[arg-type]  # noqa: SIM115 - closed with the stream
    else:
        raw = pa.OSFile(str(src.path))
    pos = _Position(raw.tell)
    if src.compression is None:
        return raw, pos
    if src.compression == "xz":
        if isinstance(raw, pa.BufferReader):
            raw = lzma.open(pa.PythonFile(raw, mode="r"), "rb")
            return raw, _Position(None)
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


def _csv_batches(
    src: _Source, opts: ReadOptions, head: bytes, block_size: int, as_text: set[str]
) -> tuple[dict[str, str], int, Iterator[pa.RecordBatch], _Position, Callable[[], None]]:
    sep, names, header, roles = _csv_layout(src, opts, head)
    if len(sep) > 1:
        source, delim = _csv_source(src, sep)
        pos = _Position(source.tell)
    else:
        source, pos = _open_tracked(src)
        delim = sep
    read_opts = pacsv.ReadOptions(
        column_names=names, skip_rows=1 if header else 0, block_size=block_size, use_threads=True
    )
    types: dict[str, pa.DataType] = {roles["user"]: _DICT, roles["item"]: _DICT}
    types.update({roles[r]: pa.string() for r in as_text})
    conv = pacsv.ConvertOptions(
        include_columns=[roles[r] for r in ("user", "item", "time", "rating") if r in roles],
        column_types=types,
        strings_can_be_null=True,
    )
    reader = pacsv.open_csv(
        source, read_options=read_opts, parse_options=pacsv.ParseOptions(delimiter=delim), convert_options=conv
    )
    return roles, 1 if header else 0, iter(reader), pos, source.close


def _jsonl_batches(
    src: _Source, opts: ReadOptions, head: bytes, block_size: int
) -> tuple[dict[str, str], Iterator[pa.RecordBatch], _Position, Callable[[], None], pa.Schema]:
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
    source, pos = _open_tracked(src)
    reader = pajson.open_json(
        source,
        read_options=pajson.ReadOptions(block_size=block_size),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    return roles, iter(reader), pos, source.close, schema


def _parquet_batches(
    src: _Source, opts: ReadOptions, block_size: int
) -> tuple[dict[str, str], Iterator[pa.RecordBatch], _Position, pa.Schema]:
    data = src.open() if src.compression is None else pa.BufferReader(pa.py_buffer(src.read_all()))
    pf = pq.ParquetFile(data)
    roles = resolve_columns(pf.schema_arrow.names, opts, src.name)
    columns = list(roles.values())
    schema = pa.schema([pf.schema_arrow.field(c) for c in columns])
    rows_per_batch = max(1, block_size // 32)
    total = max(1, pf.metadata.num_rows)
    done = [0]

    def batches() -> Iterator[pa.RecordBatch]:
        for b in pf.iter_batches(batch_size=rows_per_batch, columns=columns):
            done[0] += b.num_rows
            yield b

    return roles, batches(), _Position(lambda: src.size * done[0] // total), schema


# --------------------------------------------------------------------------------------------------
# The reader


def _read_one(
    src: _Source, opts: ReadOptions, block_size: int, progress: Progress, fmt: str, head: bytes
) -> tuple[_FileColumns, dict[str, str], int, dict[str, bool]]:
    where = src.name
    typed_text = {"user": False, "item": False}
    as_text: set[str] = set()
    while True:  # at most three times: CSV time and rating typed from the first block, then as text
        header = 0
        close: Callable[[], None] | None = None
        cols = _FileColumns(rating_via_double="rating" in as_text)
        try:
            try:
                if fmt == "csv":
                    roles, header, batches, pos, close = _csv_batches(src, opts, head, block_size, as_text)
                elif fmt == "jsonl":
                    roles, batches, pos, close, schema = _jsonl_batches(src, opts, head, block_size)
                else:
                    roles, batches, pos, schema = _parquet_batches(src, opts, block_size)
                if fmt != "csv":
                    for role in ("user", "item"):
                        typ = schema.field(roles[role]).type
                        typed_text[role] = pa.types.is_string(typ) or pa.types.is_large_string(typ)
                for batch in batches:
                    cols.add(batch, roles, where)
                    progress.update(pos() or 0, cols.rows)
            finally:
                if close is not None:
                    close()
        except pa.ArrowInvalid as e:
            if "straddl" in str(e):
                msg = f"{where}: a row is longer than the block size ({block_size:,} bytes); pass a larger --block-size"
                raise InputError(msg) from e
            if fmt == "csv":
                role = _failed_role(e, src, opts, head)
                if role is not None and role not in as_text:
                    as_text.add(role)  # a later block did not fit the type inferred from the first
                    continue
                sep = opts.sep if opts.sep is not None else _csv_layout(src, opts, head)[0]
                msg = f"{where}: {_arrow_msg(e)}; check --sep ({sep!r}), --names and the row shown"
            elif fmt == "jsonl":
                msg = f"{where}: {_arrow_msg(e)}; every line must be a JSON object with consistent value types"
            else:
                msg = f"{where}: not a readable Parquet file ({_arrow_msg(e)}); check the file or pass --input-format"
            raise InputError(msg) from e
        except (OSError, lzma.LZMAError) as e:
            if fmt == "parquet":
                msg = f"{where}: not a readable Parquet file ({_arrow_msg(e)}); check the file or pass --input-format"
            else:
                msg = f"{where}: cannot read: {e}; check that the file is complete and not corrupt"
            raise InputError(msg) from e
        return cols, roles, header, typed_text


def _failed_role(e: Exception, src: _Source, opts: ReadOptions, head: bytes) -> str | None:
    """The time or rating role of the column a CSV conversion error names (``In CSV column #2``)."""
    m = re.search(r"CSV column #(\d+): CSV conversion error", str(e))
    if m is None:
        return None
    _, names, _, roles = _csv_layout(src, opts, head)
    k = int(m.group(1))
    name = names[k] if k < len(names) else None
    return next((r for r in ("time", "rating") if roles.get(r) == name), None)


def _translate(parts: list[tuple[np.ndarray, pa.Array]], id_type: str, role: str, typed_text: bool) -> tuple[np.ndarray, pa.Array]:
    """Per-input (codes, dictionary) -> global codes and dictionary, via ``_merge_ids`` on the dictionaries."""
    dict_parts = [pa.DictionaryArray.from_arrays(pa.array(np.arange(len(d), dtype=np.int32)), d) for _, d in parts]
    mapping, dictionary = _merge_ids(dict_parts, id_type, role, typed_text)
    if len(parts) == 1:
        return parts[0][0], dictionary  # one input: its dictionary is already the global one
    out = np.empty(sum(len(c) for c, _ in parts), dtype=np.int32)
    row = 0
    at = 0
    for codes, d in parts:
        table = np.append(mapping[at : at + len(d)], np.int32(-1))
        out[row : row + len(codes)] = table[codes]
        row += len(codes)
        at += len(d)
    return out, dictionary


def stream_log(
    inputs: tuple[str, ...] | list[str],
    opts: ReadOptions,
    *,
    stdin: BinaryIO | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Progress = SILENT,
) -> Log:
    """Read every input (in order), block by block, into one canonical :class:`~seqprep.readers.Log`."""
    specs = expand_inputs(inputs)
    if specs.count("-") > 1:
        msg = "stdin (-) is given more than once; pass it once"
        raise ConfigError(msg)
    users: list[tuple[np.ndarray, pa.Array]] = []
    items: list[tuple[np.ndarray, pa.Array]] = []
    times: list[pa.Array] = []
    units: list[str] = []
    ratings: list[np.ndarray | None] = []
    infos: list[InputInfo] = []
    typed_text = {"user": False, "item": False}
    with ThreadPoolExecutor(max_workers=1) as hasher:
        for spec in specs:
            src = _Source(spec, stdin=stdin)
            sha = hasher.submit(src.sha256)
            head = src.head()
            fmt = _detect_format(src, opts, head)
            where = spec if spec != "-" else "stdin"
            progress.phase(f"reading {os.path.basename(where) or where}", src.size, "bytes")
            cols, roles, header, typed = _read_one(src, opts, block_size, progress, fmt, head)
            for role in typed_text:
                typed_text[role] |= typed[role]
            users.append(cols.user.finish())
            items.append(cols.item.finish())
            t, unit = cols.time_array(where, header)
            times.append(t)
            units.append(unit)
            ratings.append(None if cols.rating is None else cols.rating.finish())
            infos.append(
                InputInfo(
                    path=spec,
                    bytes=src.size,
                    sha256=sha.result(),
                    rows=cols.rows,
                    format=fmt,
                    compression=src.compression,
                    columns=dict(roles),
                )
            )
    progress.phase("encoding ids")
    user_codes, user_ids = _translate(users, opts.id_type, "user", typed_text["user"])
    del users
    item_codes, item_ids = _translate(items, opts.id_type, "item", typed_text["item"])
    del items
    if len(times) == 1:
        time, unit = times[0], units[0]  # what _merge_times gives for one input, without its copy
    else:
        time, unit = _merge_times(times, units)
    del times
    valid = np.ones(len(time), dtype=bool) if time.null_count == 0 else time.is_valid().to_numpy(zero_copy_only=False)
    time_np = time.to_numpy(zero_copy_only=False) if time.null_count == 0 else pc.fill_null(time, 0).to_numpy()
    del time
    rating = None
    if any(r is not None for r in ratings):
        if len(ratings) == 1:
            rating = ratings[0]
        else:
            rating = np.concatenate(
                [r if r is not None else np.full(info.rows, np.nan, np.float32) for r, info in zip(ratings, infos)]
            )
    progress.done()
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
