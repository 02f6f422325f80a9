"""sequences.parquet's row groups encoded on several threads and joined: the bytes one ParquetWriter
writes, for any tables, row group cuts and thread counts; footers read and written back unchanged."""

from __future__ import annotations

import struct
import threading
import time
import weakref
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprep.output import row_groups
from seqprep.output.files import SequencesWriter, _parquet_options
from seqprep.output.row_groups import PartsWriter, Unjoinable, join_footers, read_struct, write_struct


def _table(rng: np.random.Generator, users: int, str_ids: bool, ratings: bool) -> pa.Table:
    lengths = rng.integers(0, 6, users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    n = int(offsets[-1])
    cols = {
        "user_idx": pa.array(np.arange(users, dtype=np.int32)),
        "user_id": pa.array([f"u{k:03d}" for k in range(users)])
        if str_ids
        else pa.array(rng.integers(0, 10**6, users)),
        "items": pa.ListArray.from_arrays(pa.array(offsets), pa.array(rng.integers(1, 50, n).astype(np.int32))),
        "timestamps": pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.sort(rng.integers(0, 10**9, n)))),
    }
    if ratings:
        cols["ratings"] = pa.ListArray.from_arrays(
            pa.array(offsets), pa.array((rng.integers(1, 11, n) / 2).astype(np.float32))
        )
    return pa.table(cols)


def _one_writer(parts: list[pa.Table], options: dict) -> bytes:
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, parts[0].schema, **options) as w:
        for p in parts:
            w.write_table(p)
    return sink.getvalue().to_pybytes()


def _joined(parts: list[pa.Table], options: dict, threads: int, pooled: bool = True) -> bytes:
    """The bytes of a PartsWriter; ``pooled``: every column on the pool (else these small row
    groups are encoded on this thread, as below ``INLINE_BYTES``)."""
    sink = pa.BufferOutputStream()
    writer = PartsWriter(sink, options, threads, lambda schema: pq.ParquetWriter(sink, schema, **options))
    inline_bytes = row_groups.INLINE_BYTES
    row_groups.INLINE_BYTES = 0 if pooled else inline_bytes
    try:
        for p in parts:
            writer.write_table(p)
        writer.close()
    finally:
        row_groups.INLINE_BYTES = inline_bytes
    return sink.getvalue().to_pybytes()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    users=st.integers(0, 200),
    cuts=st.lists(st.integers(0, 200), max_size=6),
    str_ids=st.booleans(),
    ratings=st.booleans(),
    threads=st.integers(1, 3),
    pooled=st.booleans(),
)
def test_joined_row_groups_are_the_bytes_of_one_writer(seed, users, cuts, str_ids, ratings, threads, pooled):
    table = _table(np.random.default_rng(seed), users, str_ids, ratings)
    bounds = sorted({0, users, *[min(c, users) for c in cuts]})
    parts = [table.slice(a, b - a) for a, b in pairwise(bounds)] or [table]
    options = _parquet_options(table.schema)
    expected = _one_writer(parts, options)
    assert _joined(parts, options, threads, pooled) == expected
    assert pq.read_table(pa.py_buffer(expected)).equals(table)


def test_footer_reads_and_writes_back_unchanged():
    table = _table(np.random.default_rng(0), 300, True, True)
    data = _one_writer([table.slice(0, 100), table.slice(100)], _parquet_options(table.schema))
    n = struct.unpack("<I", data[-8:-4])[0]
    footer = data[-8 - n : -8]
    fields, end = read_struct(footer)
    assert end == len(footer) and write_struct(fields) == footer


def test_a_footer_with_a_page_index_is_written_by_one_writer():
    """A page index (offsets this module does not move) is refused, and the file is the one a single
    writer writes."""
    table = _table(np.random.default_rng(1), 100, False, True)
    options = {**_parquet_options(table.schema), "write_page_index": True}
    parts = [table.slice(0, 40), table.slice(40)]
    assert _joined(parts, options, 2) == _one_writer(parts, options)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, **options) as w:
        w.write_table(parts[0])
    data = sink.getvalue().to_pybytes()
    n = struct.unpack("<I", data[-8:-4])[0]
    with pytest.raises(Unjoinable):
        join_footers([read_struct(data[-8 - n : -8])[0]], [4])


@pytest.mark.parametrize("inline_bytes", [0, 1 << 18])
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_sequences_writer_bytes_do_not_depend_on_threads(tmp_path, monkeypatch, threads, inline_bytes):
    monkeypatch.setattr(row_groups, "INLINE_BYTES", inline_bytes)
    table = _table(np.random.default_rng(2), 500, True, True)
    path = tmp_path / f"s{threads}.parquet"
    writer = SequencesWriter(path, threads=threads)
    for a in range(0, 500, 70):
        writer.write(table.slice(a, 70))
    writer.close()
    assert path.read_bytes() == _one_writer(
        [table.slice(a, 70) for a in range(0, 500, 70)], _parquet_options(table.schema)
    )


def test_encoded_row_groups_are_let_go_before_they_are_written(monkeypatch):
    """The tables are kept only until the first row group's footer shows the file can be joined (one
    that cannot is written by one writer from the tables): from then on each is released once
    encoded, even while it waits for an earlier row group, and the bytes are those of one writer."""
    table = _table(np.random.default_rng(3), 400, True, True)
    parts = [table.slice(a, 50) for a in range(0, 400, 50)]
    options = _parquet_options(table.schema)
    first_may_end = threading.Event()
    encode = row_groups.encode_piece

    def slow_first(t, opts):  # the first row group takes longest: the others wait behind it
        if t.num_rows and "user_idx" in t.column_names and t.column("user_idx")[0].as_py() == 0:
            assert first_may_end.wait(30)
        return encode(t, opts)

    monkeypatch.setattr(row_groups, "encode_piece", slow_first)
    monkeypatch.setattr(row_groups, "INLINE_BYTES", 0)  # every column on the pool
    sink = pa.BufferOutputStream()
    writer = PartsWriter(sink, options, 2, lambda schema: pq.ParquetWriter(sink, schema, **options))
    writer.max_waiting = len(parts)  # nothing needs to be written before close
    refs = []
    for p in parts:
        copy = pa.table(p.to_pydict(), schema=p.schema)  # a table only the writer holds
        refs.append(weakref.ref(copy))
        writer.write_table(copy)
        del copy
    for _, futures in writer._waiting[1:]:
        for future in futures:
            future.result()
    assert all(r() is not None for r in refs)  # the first footer is not known yet: every table kept
    first_may_end.set()
    writer._put_next()  # the first row group: joinable
    assert len(writer._waiting) == len(parts) - 1  # the others still wait to be written ...
    for _ in range(500):  # (a pool thread lets its last task go just after the result is set)
        if all(r() is None for r in refs):
            break
        time.sleep(0.01)
    assert [r() is None for r in refs] == [True] * len(refs)  # ... and are no longer held
    writer.close()
    assert sink.getvalue().to_pybytes() == _one_writer(parts, options)


def test_small_row_groups_start_no_thread(monkeypatch):
    """Columns below ``INLINE_BYTES`` are encoded on the calling thread (a small build starts no
    pool); the first one of ``INLINE_BYTES`` or more starts it. The bytes are one writer's."""
    table = _table(np.random.default_rng(4), 300, True, True)
    parts = [table.slice(0, 100), table.slice(100, 150), table.slice(250)]
    options = _parquet_options(table.schema)
    inline = max(parts[0].select([k]).nbytes for k in range(table.num_columns)) + 1
    assert max(parts[1].select([k]).nbytes for k in range(table.num_columns)) >= inline
    monkeypatch.setattr(row_groups, "INLINE_BYTES", inline)
    sink = pa.BufferOutputStream()
    writer = PartsWriter(sink, options, 2, lambda schema: pq.ParquetWriter(sink, schema, **options))
    writer.write_table(parts[0])
    assert writer._pool is None
    writer.write_table(parts[1])  # 150 rows: on the pool
    assert writer._pool is not None
    writer.write_table(parts[2])
    writer.close()
    assert sink.getvalue().to_pybytes() == _one_writer(parts, options)


def test_few_rows_of_long_sequences_go_to_the_pool():
    """The inline rule counts bytes, not rows: a row group of a few users with long sequences (5M
    items over 30,000 users is a 20 MB column) is encoded on the pool, not on the calling thread."""
    items = pa.array([np.arange(20_000, dtype=np.int32) + u for u in range(8)], type=pa.list_(pa.int32()))
    table = pa.table({"user_idx": pa.array(np.arange(1, 9, dtype=np.int32)), "items": items})
    assert table.num_rows < 100 and table.select(["items"]).nbytes >= row_groups.INLINE_BYTES
    options = _parquet_options(table.schema)
    sink = pa.BufferOutputStream()
    writer = PartsWriter(sink, options, 2, lambda schema: pq.ParquetWriter(sink, schema, **options))
    writer.write_table(table)
    assert writer._pool is not None
    writer.close()
    assert sink.getvalue().to_pybytes() == _one_writer([table], options)


def test_column_pieces_join_into_one_row_group():
    """The row group joined from one-column pieces is the one a writer gives the whole table: its
    column chunks moved to where they land, its sizes added up."""
    table = _table(np.random.default_rng(4), 120, True, True)
    options = _parquet_options(table.schema)
    pieces = [row_groups.encode_piece(table.select([k]), options) for k in range(table.num_columns)]
    footers, lengths = zip(*(row_groups._footer(p) for p in pieces))
    starts = [4 + sum(lengths[:k]) for k in range(len(lengths))]
    (group,) = row_groups.join_columns(list(footers), starts, 0)
    whole = row_groups.encode_piece(table, options)
    (expected,) = row_groups._get(row_groups._footer(whole)[0], 4)[1]
    assert group == expected
