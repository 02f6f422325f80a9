"""Every supported input layout, recognised with as few flags as possible."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import seqprep
from seqprep.config import ReadOptions
from seqprep.io import read_log

ROWS = [(1, 10, 4.0, 100), (1, 11, 3.5, 90), (2, 10, 5.0, 95)]


def _seqs(res: seqprep.BuildResult) -> dict:
    users = res.users.ids.to_pylist()
    out = {}
    for u in range(len(users)):
        a, b = res.sequences.offsets[u], res.sequences.offsets[u + 1]
        out[users[u]] = res.items.decode(res.sequences.items[a:b]).to_pylist()
    return out


EXPECTED = {1: [11, 10], 2: [10]}


def test_movielens_ratings_csv(write):
    p = write("ratings.csv", "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS))
    res = seqprep.build(p, None)
    assert _seqs(res) == EXPECTED
    assert res.meta["inputs"][0]["columns"] == {"user": "userId", "item": "movieId", "time": "timestamp", "rating": "rating"}


def test_u_data_tab_no_header(write):
    p = write("u.data", "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in ROWS))
    assert _seqs(seqprep.build(p, None)) == EXPECTED


def test_ratings_dat_double_colon(write):
    p = write("ratings.dat", "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in ROWS))
    res = seqprep.build(p, None)
    assert _seqs(res) == EXPECTED
    assert res.sequences.ratings.tolist() == [3.0, 4.0, 5.0]


def test_tsv_with_names_and_custom_columns(write):
    p = write("log.tsv", "".join(f"{t}\t{u}\t{i}\n" for u, i, _, t in ROWS))
    res = seqprep.build(p, None, names="when,who,what", user_col="who", item_col="what", time_col="when")
    assert _seqs(res) == EXPECTED
    assert res.sequences.ratings is None


def test_semicolon_csv_with_explicit_sep(write):
    p = write("x.csv", "user;item;ts\n1;10;100\n1;11;90\n2;10;95\n")
    assert _seqs(seqprep.build(p, None)) == EXPECTED
    assert _seqs(seqprep.build(p, None, sep=";")) == EXPECTED


def test_recbole_atomic_header(write):
    p = write("x.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t100\n1\t11\t3\t90\n2\t10\t5\t95\n")
    res = seqprep.build(p, None)
    assert _seqs(res) == EXPECTED
    assert res.sequences.timestamps.dtype == np.int64  # float column holding whole numbers -> int64


def test_jsonl_amazon_keys(write):
    lines = [
        {"reviewerID": "A1", "asin": "B0001", "overall": 5.0, "unixReviewTime": 100, "style": {"Size:": "M"}},
        {"reviewerID": "A1", "asin": "B0002", "overall": 4.0, "unixReviewTime": 90, "reviewText": "ok"},
        {"reviewerID": "A2", "asin": "B0001", "overall": 3.0, "unixReviewTime": 95},
    ]
    p = write("reviews.json", "".join(json.dumps(x) + "\n" for x in lines))
    res = seqprep.build(p, None)
    assert _seqs(res) == {"A1": ["B0002", "B0001"], "A2": ["B0001"]}
    assert res.meta["id_types"] == {"user": "string", "item": "string"}


def test_parquet_input(tmp_path):
    t = pa.table({"user_id": [1, 1, 2], "item_id": ["10", "11", "10"], "timestamp": [100, 90, 95]})
    pq.write_table(t, tmp_path / "log.parquet")
    res = seqprep.build(tmp_path / "log.parquet", None)
    assert _seqs(res) == {1: ["11", "10"], 2: ["10"]}


@pytest.mark.parametrize(
    "ext,compress",
    [
        (".gz", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".zst", None),
    ],
)
def test_compressed_inputs(write, tmp_path, ext, compress):
    raw = ("userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS)).encode()
    if compress is None:
        with pa.CompressedOutputStream(str(tmp_path / "ratings.csv.zst"), "zstd") as out:
            out.write(raw)
        path = tmp_path / "ratings.csv.zst"
    else:
        path = write("ratings.csv" + ext, compress(raw))
    res = seqprep.build(path, None)
    assert _seqs(res) == EXPECTED
    assert res.meta["inputs"][0]["compression"] == {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}[ext]


def test_stdin(write):
    raw = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS)
    res = seqprep.build(["-"], None, stdin=io.BytesIO(gzip.compress(raw.encode())))
    assert _seqs(res) == EXPECTED
    assert res.meta["inputs"][0]["path"] == "-"


def test_glob_and_several_inputs_in_order(write, tmp_path):
    write("p1.csv", "user,item,time\n1,10,5\n")
    write("p2.csv", "user,item,time\n1,11,5\n")  # same timestamp: file order decides
    res = seqprep.build([str(tmp_path / "p*.csv")], None)
    assert _seqs(res) == {1: [10, 11]}
    res = seqprep.build([tmp_path / "p2.csv", tmp_path / "p1.csv"], None)
    assert _seqs(res) == {1: [11, 10]}


def test_leading_zero_ids_stay_text(write):
    res = seqprep.build(write("x.csv", "user,item,time\n007,0042,1\n7,42,2\n"), None)
    assert res.users.ids.to_pylist() == ["007", "7"]
    assert sorted(res.items.ids.to_pylist()) == ["0042", "42"]


def test_id_type_option(write):
    p = write("x.csv", "user,item,time\n1,2,1\n")
    assert seqprep.build(p, None, id_type="str").users.ids.to_pylist() == ["1"]
    with pytest.raises(seqprep.InputError, match="--id-type int"):
        seqprep.build(write("y.csv", "user,item,time\nA,2,1\n"), None, id_type="int")


def test_ids_past_int64_stay_text(write):
    big = "99999999999999999999"
    res = seqprep.build(write("x.csv", f"user,item,time\n{big},1,1\n"), None)
    assert res.users.ids.to_pylist() == [big]


@pytest.mark.parametrize(
    "text,dtype,values",
    [
        ("1,1,1500000000\n1,2,1500000001\n", np.int64, [1500000000, 1500000001]),
        ("1,1,1.5\n1,2,2.25\n", np.float64, [1.5, 2.25]),
        ("1,1,2.0\n1,2,3.0\n", np.int64, [2, 3]),
        ("1,1,2020-01-01\n1,2,2020-01-02T00:00:01\n", np.int64, [1577836800, 1577923201]),
        ("1,1,2020-01-01T00:00:00.5\n1,2,2020-01-01T00:00:01\n", np.int64, [1577836800500, 1577836801000]),
    ],
)
def test_timestamps_keep_precision(write, text, dtype, values):
    res = seqprep.build(write("x.csv", "user,item,time\n" + text), None)
    assert res.sequences.timestamps.dtype == dtype
    assert res.sequences.timestamps.tolist() == values


def test_large_epoch_ns_never_rounded(write):
    # nanosecond epochs need all 64 bits: float32 or float64 would merge these
    res = seqprep.build(write("x.csv", "user,item,time\n1,1,1700000000000000001\n1,2,1700000000000000000\n"), None)
    assert res.sequences.timestamps.tolist() == [1700000000000000000, 1700000000000000001]
    assert res.items.decode(res.sequences.items).to_pylist() == [2, 1]


def test_missing_values_are_dropped_and_counted(write):
    res = seqprep.build(write("x.csv", "user,item,time\n1,1,1\n,2,2\n1,,3\n1,3,\n2,2,2\n"), None)
    step = res.meta["steps"][0]
    assert (step["missing_user"], step["missing_item"], step["missing_time"], step["rows_removed"]) == (1, 1, 1, 3)
    assert res.meta["rows"] == {"read": 5, "kept": 2, "removed": 3}


def test_bom_and_crlf(write):
    p = write("x.csv", "\ufeffuserId,movieId,timestamp\r\n1,10,100\r\n1,11,90\r\n2,10,95\r\n")
    assert _seqs(seqprep.build(p, None)) == EXPECTED


def test_quoted_fields_with_separator(write):
    p = write("x.csv", 'user,item,time\n"a,b",x,1\n"a,b",y,0\n')
    res = seqprep.build(p, None)
    assert _seqs(res) == {"a,b": ["y", "x"]}


def test_read_log_keeps_row_order(write):
    log = read_log([str(write("x.csv", "user,item,time\nb,1,3\na,2,1\nb,3,2\n"))], ReadOptions())
    assert log.user_ids.to_pylist() == ["b", "a"]
    assert log.user_codes.tolist() == [0, 1, 0]
