"""The whole-file reader the streaming reader is tested against (the test oracle): each input read
as one table by pyarrow, then typed with the same column functions."""

from __future__ import annotations

import lzma
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from seqprep.config import ReadOptions
from seqprep.errors import ConfigError, InputError, one_line
from seqprep.io import arrow_errors_as_input_errors
from seqprep.io.columns import (
    DICT,
    check_nul_ids,
    ids_to_dict,
    merge_ids,
    merge_times,
    normalize_rating,
    normalize_time,
)
from seqprep.io.diagnose import parse_error, utf8_error
from seqprep.io.quoting import QuotedStream, RowLines, scan_rows, unclosed_in
from seqprep.io.sniff import csv_layout, detect_format, jsonl_layout, resolve_columns
from seqprep.io.sources import Source, csv_source, expand_inputs
from seqprep.model import InputInfo, Log

_BLOCK = 1 << 24

def _read_csv(src: Source, opts: ReadOptions, head: bytes) -> tuple[pa.Table, dict[str, str], int]:
    """-> (table, role -> column, number of header lines skipped)."""
    where = src.name
    sep, names, header, roles = csv_layout(src.name, opts, head)
    block = _BLOCK
    id_cols = {roles["user"]: DICT, roles["item"]: DICT}

    def attempt(extra_types: dict[str, pa.DataType]) -> tuple[pa.Table, QuotedStream]:
        conv = pacsv.ConvertOptions(
            include_columns=[roles[r] for r in ("user", "item", "time", "rating") if r in roles],
            column_types={**id_cols, **extra_types},
            strings_can_be_null=True,
        )
        source, delim = csv_source(src, sep)
        stream = QuotedStream(pa.OSFile(source) if isinstance(source, str) else source, ord(delim))
        read_opts = pacsv.ReadOptions(
            column_names=names, skip_rows_after_names=1 if header else 0, block_size=block, use_threads=True
        )
        parse_opts = pacsv.ParseOptions(delimiter=delim, newlines_in_values=True)
        try:
            return pacsv.read_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=conv), stream
        finally:
            stream.raw.close()

    extra: dict[str, pa.DataType] = {}
    try:
        while True:
            try:
                table, stream = attempt(extra)
                break
            except pa.ArrowInvalid as e:
                opened, longest = scan_rows(src, sep) if "straddl" in str(e) else (-1, 0)
                if opened < 0 and block <= 2 * longest:
                    block = 1 << (2 * longest + 1).bit_length()  # a row longer than a block: larger blocks
                elif "conversion error" in str(e).lower() and "time" in roles and not extra:
                    # a later block did not fit the type inferred from the first one: read time as text
                    extra = {roles["time"]: pa.string()}
                else:
                    raise
    except pa.ArrowInvalid as e:
        unclosed = unclosed_in(src, sep, where)
        if unclosed is not None:
            raise unclosed from e
        if "utf8" in str(e).lower():
            raise utf8_error(src, names, header, sep, roles, where) from e
        if "parse error" in str(e).lower():
            raise parse_error(src, names, header, sep, where, e) from e
        msg = f"{where}: {one_line(e)}; check --sep ({sep!r}), --names and the row shown"
        raise InputError(msg) from e
    except (OSError, EOFError, lzma.LZMAError) as e:
        msg = f"{where}: cannot read: {e}; check that the file is complete and not corrupt"
        raise InputError(msg) from e
    unclosed = stream.unclosed(src, sep)  # pyarrow takes a field open to the end as a value
    if unclosed is not None:
        raise unclosed
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        raise utf8_error(src, names, header, sep, roles, where)  # a column pyarrow could not read as text
    return table, roles, 1 if header else 0

def _read_jsonl(src: Source, opts: ReadOptions, head: bytes) -> tuple[pa.Table, dict[str, str]]:
    where = src.name
    roles, schema = jsonl_layout(src.name, opts, head)
    source = src.open()
    try:
        table = pajson.read_json(
            source,
            read_options=pajson.ReadOptions(block_size=_BLOCK),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except pa.ArrowInvalid as e:
        msg = f"{where}: {one_line(e)}; every line must be a JSON object with consistent value types"
        raise InputError(msg) from e
    except (OSError, EOFError, lzma.LZMAError) as e:
        msg = f"{where}: cannot read: {e}; check that the file is complete and not corrupt"
        raise InputError(msg) from e
    finally:
        if not isinstance(source, str):
            source.close()
    return table, roles

def _read_parquet(src: Source, opts: ReadOptions) -> tuple[pa.Table, dict[str, str]]:
    where = src.name
    try:
        data = src.open() if src.compression is None else pa.BufferReader(pa.py_buffer(src.read_all()))
        pf = pq.ParquetFile(data)
        roles = resolve_columns(pf.schema_arrow.names, opts, where)
        table = pf.read(columns=list(roles.values()))
    except (pa.ArrowInvalid, OSError, EOFError, UnicodeDecodeError) as e:
        msg = f"{where}: not a readable Parquet file ({one_line(e)}); check the file or pass --input-format"
        raise InputError(msg) from e
    return table, roles

@arrow_errors_as_input_errors
def read_log_in_memory(inputs: tuple[str, ...] | list[str], opts: ReadOptions, *, stdin: BinaryIO | None = None) -> Log:
    """Read every input (in order) into one canonical :class:`Log`, each input as one whole table.

    The reference the streaming reader is tested against.
    """
    specs = expand_inputs(inputs)
    if specs.count("-") > 1:
        msg = "stdin (-) is given more than once; pass it once"
        raise ConfigError(msg)
    users: list[pa.DictionaryArray] = []
    items: list[pa.DictionaryArray] = []
    times: list[pa.Array] = []
    units: list[str] = []
    ratings: list[pa.Array | None] = []
    infos: list[InputInfo] = []
    typed_text = {"user": False, "item": False}
    with ThreadPoolExecutor(max_workers=1) as hasher:
        for spec in specs:
            src = Source(spec, stdin=stdin)
            sha = hasher.submit(src.sha256)
            head = src.head()
            fmt = detect_format(src.inner_name, opts, head)
            header = 0
            if fmt == "csv":
                table, roles, header = _read_csv(src, opts, head)
            elif fmt == "jsonl":
                table, roles = _read_jsonl(src, opts, head)
            else:
                table, roles = _read_parquet(src, opts)
            where = spec if spec != "-" else "stdin"
            if fmt != "csv":
                for role in ("user", "item"):
                    typ = table.schema.field(roles[role]).type
                    typed_text[role] |= pa.types.is_string(typ) or pa.types.is_large_string(typ)
            users.append(ids_to_dict(table[roles["user"]], "user", where))
            items.append(ids_to_dict(table[roles["item"]], "item", where))
            lines = RowLines(header, src, csv_layout(src.name, opts, head)[0]) if fmt == "csv" else RowLines(0)
            check_nul_ids((users[-1], items[-1]), where, lines)
            t, unit = normalize_time(table[roles["time"]], where, lines)
            times.append(t)
            units.append(unit)
            ratings.append(normalize_rating(table[roles["rating"]], where) if "rating" in roles else None)
            n = table.num_rows
            del table
            infos.append(
                InputInfo(
                    path=spec,
                    bytes=src.size,
                    sha256=sha.result(),
                    rows=n,
                    format=fmt,
                    compression=src.compression,
                    columns=dict(roles),
                )
            )

    user_codes, user_ids = merge_ids(users, opts.id_type, "user", typed_text["user"])
    item_codes, item_ids = merge_ids(items, opts.id_type, "item", typed_text["item"])
    del users, items
    time, unit = merge_times(times, units)
    valid = np.ones(len(time), dtype=bool) if time.null_count == 0 else time.is_valid().to_numpy(zero_copy_only=False)
    time_np = time.to_numpy(zero_copy_only=False) if time.null_count == 0 else pc.fill_null(time, 0).to_numpy()
    rating = None
    if any(r is not None for r in ratings):
        rating_parts = [
            r if r is not None else pa.nulls(info.rows, pa.float32()) for r, info in zip(ratings, infos)
        ]
        rating = pc.fill_null(pa.concat_arrays(rating_parts), float("nan")).to_numpy(zero_copy_only=False)
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
