"""A log cut into pieces (the Dask engine's read tasks), each read by the streaming reader and merged
by seqprep.io.merge, gives the columns of the log read whole: for any block size, quoted fields
holding separators and line ends, CRLF line ends, missing values, and JSON Lines / Parquet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqprep.config import ReadOptions
from seqprep.io.merge import merge_dictionaries, plan_times, remap_codes
from seqprep.io.pieces import cuts_from_scans, input_pieces, nominal_cuts, read_piece, scan_range
from seqprep.io.sniff import detect_format
from seqprep.io.sources import SNIFF_BYTES, Source
from seqprep.io.stream import read_source


def _ids(parts, role):
    pairs = [getattr(p, role) for p in parts]
    tables, dictionary = merge_dictionaries([d for _, d in pairs], "auto", role, False)
    codes = np.concatenate([remap_codes(c, t) for (c, _), t in zip(pairs, tables)])
    return [
        None if c < 0 else v
        for c, v in zip(codes.tolist(), dictionary.take(pa.array(np.maximum(codes, 0))).to_pylist())
    ]


def _times(parts):
    has = [p.time[1] is None or bool(np.asarray(p.time[1]).any()) if len(p.time[0]) else False for p in parts]
    plan = plan_times([p.unit for p in parts], [p.time[0].dtype == np.float64 for p in parts], has, [0] * len(parts))
    values = np.concatenate([plan.apply(k, p.time[0]) for k, p in enumerate(parts)])
    valid = np.concatenate(
        [np.ones(len(p.time[0]), bool) if p.time[1] is None else np.asarray(p.time[1]) for p in parts]
    )
    return plan.unit, np.where(valid, values, 0).tolist(), valid.tolist()


def _columns(parts):
    rating = [p.rating for p in parts]
    return {
        "user": _ids(parts, "users"),
        "item": _ids(parts, "items"),
        "time": _times(parts),
        "rating": None if rating[0] is None else [str(r) for r in np.concatenate(rating).tolist()],  # nan == nan
    }


def _both(path, block):
    opts = ReadOptions()
    src = Source(str(path), hashed=False)
    head = src.head(SNIFF_BYTES)
    fmt = detect_format(src.inner_name, opts, head)
    whole = read_source(src, opts, fmt, head)
    sep = "," if fmt == "csv" else ""
    pieces = input_pieces(0, str(path), str(path), src.size, fmt, src.compression, sep, block)
    parts = [read_piece(p, opts, head) for p in pieces]
    return _columns([whole]), _columns(parts), pieces


_text = st.text(alphabet='ab,"\n\r x', max_size=6)
_row = st.tuples(st.integers(0, 5), _text, st.integers(0, 10**6), st.sampled_from(["", "1", "2.5"]))


def _field(v: str) -> str:
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_row, min_size=1, max_size=30), block=st.integers(1, 64), crlf=st.booleans())
def test_csv_pieces_read_as_the_whole_file(tmp_path, rows, block, crlf):
    end = "\r\n" if crlf else "\n"
    text = "user,item,time,rating" + end + "".join(f"u{u},{_field('i' + i)},{t},{r}{end}" for u, i, t, r in rows)
    path = tmp_path / "log.csv"
    path.write_bytes(text.encode())
    whole, pieced, pieces = _both(path, block)
    assert pieced == whole
    assert [p.start for p in pieces] == sorted({p.start for p in pieces})  # contiguous, in order
    assert pieces[0].start == 0 and pieces[-1].end == len(text.encode())


def test_cuts_never_split_a_quoted_field(tmp_path):
    text = b'u,i,t\n1,"a\n2,b\n3,c",5\n4,d,6\n'
    path = tmp_path / "q.csv"
    path.write_bytes(text)
    for block in range(1, len(text) + 1):
        ranges = list(zip(nominal_cuts(len(text), block)[:-1], nominal_cuts(len(text), block)[1:]))
        cuts, opened = cuts_from_scans(
            [scan_range(str(path), len(text), lo, hi, ord(",")) for lo, hi in ranges], len(text)
        )
        assert opened == -1
        assert set(cuts) <= {0, 6, 22, len(text)}, (block, cuts)


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path):
    text = b'u,i,t\n1,a,5\n2,"b,6\n3,c,7\n'
    path = tmp_path / "q.csv"
    path.write_bytes(text)
    ranges = list(zip(nominal_cuts(len(text), 4)[:-1], nominal_cuts(len(text), 4)[1:]))
    _, opened = cuts_from_scans([scan_range(str(path), len(text), lo, hi, ord(",")) for lo, hi in ranges], len(text))
    assert opened == text.index(b'"')


@pytest.mark.parametrize("block", [1, 7, 40, 10_000])
def test_jsonl_pieces(tmp_path, block):
    lines = [f'{{"user": "u{k % 3}", "item": {k}, "time": {1000 + k}}}' for k in range(20)] + [
        '{"user": null, "item": 3, "time": 5}'
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    whole, pieced, pieces = _both(path, block)
    assert pieced == whole
    assert len(pieces) > 1 or block >= path.stat().st_size


def test_parquet_pieces_by_row_groups(tmp_path):
    t = pa.table(
        {"user": [f"u{k % 4}" for k in range(50)], "item": list(range(50)), "time": [10 * k for k in range(50)]}
    )
    path = tmp_path / "log.parquet"
    pq.write_table(t, path, row_group_size=7)
    whole, pieced, pieces = _both(path, 1)
    assert len(pieces) == 8
    assert pieced == whole


def test_mixed_time_units_across_pieces_merge_as_one_column(tmp_path):
    # ISO dates in seconds in one piece and with milliseconds in another: the finest unit wins
    rows = [f"u1,i{k},2020-01-01T00:00:0{k}\n" for k in range(5)] + ["u2,i9,2020-01-02T00:00:00.250\n"]
    path = tmp_path / "d.csv"
    path.write_text("user,item,time\n" + "".join(rows))
    whole, pieced, pieces = _both(path, 30)
    assert len(pieces) > 1
    assert pieced == whole and whole["time"][0] == "ms"
