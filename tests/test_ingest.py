"""Streaming ingestion: the same Log (and byte-identical outputs) as the in-memory reader, at any block size."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep.engines.local as pipeline
from seqprep import build
from seqprep.config import ReadOptions
from seqprep.errors import InputError
from seqprep.io.buffers import GrowBuffer, IdEncoder
from seqprep.io.stream import stream_log
from seqprep.model import Log
from tests.oracle import read_log_in_memory
from tests.conftest import TIES_CSV, shared_file

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_same_log(a: Log, b: Log) -> None:
    np.testing.assert_array_equal(a.user_codes, b.user_codes)
    np.testing.assert_array_equal(a.item_codes, b.item_codes)
    assert a.user_ids.equals(b.user_ids) and a.user_ids.type == b.user_ids.type
    assert a.item_ids.equals(b.item_ids) and a.item_ids.type == b.item_ids.type
    assert a.time.dtype == b.time.dtype
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.time_valid, b.time_valid)
    assert a.time_unit == b.time_unit
    if a.rating is None or b.rating is None:
        assert a.rating is None and b.rating is None
    else:
        assert a.rating.dtype == b.rating.dtype
        np.testing.assert_array_equal(a.rating, b.rating)
    assert a.inputs == b.inputs


def tree_digest(folder: Path) -> dict[str, object]:
    """sha256 of every output file; meta.json as a dict without the output path (the one intended difference)."""
    out: dict[str, object] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}
    meta = json.loads((folder / "meta.json").read_text())
    del meta["options"]["output"]
    out["meta.json"] = meta
    return out


# ids: short text with leading zeros, plain integers and empty (missing) values
ids = st.sampled_from(["1", "2", "07", "7", "10", "x", "ab", "", "3", "-4"])
plain_ids = st.sampled_from(["1", "2", "7", "10", "3", "12345678901"])
times = st.one_of(st.integers(-5, 50).map(str), st.just(""))
ratings = st.sampled_from(["1", "2.5", "4.0", ""])


@st.composite
def csv_logs(draw, id_values=ids) -> str:
    n = draw(st.integers(1, 60))
    rows = [
        f"{draw(id_values)},{draw(id_values)},{draw(ratings)},{draw(times)}" for _ in range(n)
    ]
    return "user,item,rating,timestamp\n" + "\n".join(rows) + "\n"


@SETTINGS
@given(text=st.one_of(csv_logs(), csv_logs(plain_ids)), block=st.sampled_from([40, 64, 200, 1 << 20]))
def test_stream_equals_in_memory(tmp_path_factory, text, block):
    p = tmp_path_factory.mktemp("s") / "log.csv"
    p.write_text(text)
    opts = ReadOptions()
    assert_same_log(stream_log([str(p)], opts, block_size=block), read_log_in_memory([str(p)], opts))


@SETTINGS
@given(parts=st.lists(csv_logs(), min_size=2, max_size=3), id_type=st.sampled_from(["auto", "str"]))
def test_stream_equals_in_memory_over_several_inputs(tmp_path_factory, parts, id_type):
    d = tmp_path_factory.mktemp("m")
    paths = []
    for k, text in enumerate(parts):
        paths.append(str(d / f"{k}.csv"))
        Path(paths[-1]).write_text(text)
    opts = ReadOptions(id_type=id_type)
    assert_same_log(stream_log(paths, opts, block_size=48), read_log_in_memory(paths, opts))


def test_later_block_with_fractional_or_iso_times(write):
    # the first block types the time column as int64; a later block does not fit and the file is re-read
    head = "user,item,timestamp\n" + "".join(f"u{k},i{k % 3},{k}\n" for k in range(40))
    p = write("t.csv", head + "u1,i1,2.5\n")
    a = stream_log([str(p)], ReadOptions(), block_size=64)
    assert_same_log(a, read_log_in_memory([str(p)], ReadOptions()))
    # past int64: an error naming the line in both readers (as tests/test_malformed.py pins it), not a float
    far = write("far.csv", head + "u2,i2,99999999999999999999\n")
    readers = (
        lambda: stream_log([str(far)], ReadOptions(), block_size=64),
        lambda: read_log_in_memory([str(far)], ReadOptions()),
    )
    for read in readers:
        with pytest.raises(InputError, match=r"far.csv: line 42: timestamp 1e\+20 is out of range \(beyond int64\); fix"):
            read()
    bad = write("bad.csv", head + "u1,i1,soon\n")
    with pytest.raises(Exception, match="line 42: timestamp 'soon'"):
        stream_log([str(bad)], ReadOptions(), block_size=64)


@pytest.mark.parametrize("block", [40, 1 << 20])
def test_numbers_mixed_with_iso_dates_is_a_clear_error(write, block):
    p = write("mix.csv", "user,item,timestamp\n" + "".join(f"u{k},i{k},{k}\n" for k in range(5)) + "u,i,2020-01-01\n")
    for read in (lambda: stream_log([str(p)], ReadOptions(), block_size=block), lambda: read_log_in_memory([str(p)], ReadOptions())):
        expected = (
            r"mix.csv: the timestamps mix numbers and ISO-8601 dates; use one kind in the whole column "
            r"\(line 7 holds '2020-01-01' after numbers\)$"
        )
        with pytest.raises(InputError, match=expected):
            read()


def test_mixed_formats_and_compression(write, tmp_path):
    pq.write_table(
        pa.table({"user_id": pa.array([5, 6, 5]), "item_id": pa.array(["a", "b", "c"]), "ts": pa.array([3, 2, 1])}),
        tmp_path / "p.parquet",
    )
    j = write("j.jsonl", "".join(f'{{"reviewerID": "r{k % 4}", "asin": "A{k % 5}", "overall": 4, "unixReviewTime": {k}}}\n' for k in range(30)))
    g = write("c.csv.gz", gzip.compress(TIES_CSV.encode()))
    for spec in ([str(tmp_path / "p.parquet")], [str(j)], [str(g)], [str(g), str(j)], [str(j), str(tmp_path / "p.parquet")]):
        assert_same_log(stream_log(spec, ReadOptions(), block_size=256), read_log_in_memory(spec, ReadOptions()))


@pytest.mark.parametrize("kind", ["plain", "gzip", "stdin"])
def test_row_longer_than_block_reads_the_same(write, kind):
    """A row longer than a block (or than a range of blocks) is read whole: the block size never
    changes the rows (it was an error before quoted fields could hold long text)."""
    text = "user,item,timestamp\n" + "".join(f"u{k},i{k % 3},{k}\n" for k in range(30)) + "u" * 3000 + ",i,1\nv,j,2\n"
    p = write("long.csv", text)
    spec, stdin = str(p), None
    if kind == "gzip":
        spec = str(write("long.csv.gz", gzip.compress(text.encode())))
    elif kind == "stdin":
        spec, stdin = "-", io.BytesIO(text.encode())
    log = stream_log([spec], ReadOptions(), block_size=128, stdin=stdin)
    if stdin is not None:
        stdin.seek(0)
    assert_same_log(log, read_log_in_memory([spec], ReadOptions(), stdin=stdin))
    assert log.num_rows == 32 and log.user_ids[30].as_py() == "u" * 3000


def test_stdin_streams_the_same(write):
    data = TIES_CSV.encode()
    a = stream_log(["-"], ReadOptions(), stdin=io.BytesIO(data), block_size=40)
    assert_same_log(a, read_log_in_memory(["-"], ReadOptions(), stdin=io.BytesIO(data)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=csv_logs(), item_order=st.sampled_from(["frequency", "first-seen", "id"]))
def test_outputs_byte_identical_to_in_memory_path(tmp_path_factory, monkeypatch, text, item_order):
    d = tmp_path_factory.mktemp("b")
    (d / "log.csv").write_text(text + "z,z,1,1\n")  # at least one complete row
    opts = {"item_order": item_order, "formats": ("parquet", "npz")}
    build(d / "log.csv", d / "stream", block_size="1KiB", **opts)
    with monkeypatch.context() as m:
        m.setattr(pipeline, "read_log", lambda inputs, read, stdin=None, **_: read_log_in_memory(inputs, read, stdin=stdin))
        build(d / "log.csv", d / "memory", **opts)
    assert tree_digest(d / "stream") == tree_digest(d / "memory")


REAL_LOGS = [
    ("ml-100k/u.data", {}),
    ("ml-latest-small/ratings.csv", {}),
    ("ml-100k-recbole/ml-100k.inter", {}),
    ("amazon2018-fashion-5core/AMAZON_FASHION_5.json.gz", {}),
    ("amazon2018-magazine-subscriptions/Magazine_Subscriptions.csv", {"names": ("item", "user", "rating", "timestamp")}),
]


@pytest.mark.real_data
@pytest.mark.parametrize(("rel", "options"), REAL_LOGS)
def test_real_log_streams_the_same(rel, options):
    p = str(shared_file(rel))
    opts = ReadOptions(**options)
    assert_same_log(stream_log([p], opts, block_size=1 << 16), read_log_in_memory([p], opts))


# --------------------------------------------------------------------------------------------------
# The building blocks, against plain-Python references


@settings(max_examples=100, deadline=None)
@given(blocks=st.lists(st.lists(st.one_of(st.none(), st.sampled_from("abcdefgh")), max_size=12), max_size=8), flush=st.integers(1, 20))
def test_id_encoder_is_first_seen_factorize(blocks, flush):
    enc = IdEncoder(min_flush=flush)
    for b in blocks:
        enc.add(pa.array(b, pa.string()).dictionary_encode())
    codes, dictionary = enc.finish()
    seen: dict[str, int] = {}
    expected = []
    for v in (v for b in blocks for v in b):
        if v is None:
            expected.append(-1)
        else:
            expected.append(seen.setdefault(v, len(seen)))
    assert codes.dtype == np.int32
    assert codes.tolist() == expected
    assert dictionary.to_pylist() == list(seen)


@settings(max_examples=50, deadline=None)
@given(chunks=st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=50), max_size=10), cap=st.integers(1, 8))
def test_grow_buffer_concatenates(chunks, cap):
    b = GrowBuffer(np.int64, capacity=cap)
    for c in chunks:
        b.append(np.array(c, dtype=np.int64))
    assert b.finish().tolist() == [v for c in chunks for v in c]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["a", "07", "7", "b b"]), st.integers(-5, 5)), min_size=1, max_size=60),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.integers(16, 200),
)
def test_range_reader_matches_in_memory_at_any_range_size(tmp_path_factory, rows, newline, block):
    """The multi-threaded range reader cuts the text at line ends (LF, CRLF, CR): same Log as whole-table."""
    from seqprep.config import ReadOptions
    from seqprep.io import read_log
    from tests.oracle import read_log_in_memory

    tmp = tmp_path_factory.mktemp("ranges")
    path = tmp / "log.csv"
    path.write_bytes(("user,item,time" + newline + "".join(f"{u},{i},{t}{newline}" for u, i, t in rows)).encode())
    a = read_log([str(path)], ReadOptions(), block_size=block)
    b = read_log_in_memory([str(path)], ReadOptions())
    assert a.user_codes.tolist() == b.user_codes.tolist() and a.item_codes.tolist() == b.item_codes.tolist()
    assert a.user_ids.equals(b.user_ids) and a.item_ids.equals(b.item_ids)
    assert a.time.tolist() == b.time.tolist()


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_input_hash_taken_while_reading_ranges(write, header, newline):
    """The range reader hashes the bytes it parses (header first, then every range in order): the
    sha256 in the Log is the file's, however many ranges the file is cut into."""
    rows = [f"{u % 37},{(u * 7) % 101},{u % 5 + 1}.5,{1000 + u // 3}" for u in range(3000)]
    text = newline.join((["userId,movieId,rating,timestamp"] if header else []) + rows) + newline
    p = write("log.csv", text)
    for block in (64, 1000, 1 << 20):
        log = stream_log([str(p)], ReadOptions(), block_size=block)
        assert log.inputs[0].sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
        assert log.num_rows == 3000


def test_reading_without_hashing_gives_the_same_log(write, tmp_path):
    """``hash_inputs=False`` (seqprep stats) leaves every sha256 None and changes nothing else, for
    the range reader, a compressed input and stdin alike."""
    rows = [f"{u % 37},{(u * 7) % 101},{u % 5 + 1}.5,{1000 + u // 3}" for u in range(3000)]
    text = "userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n"
    plain = write("log.csv", text)
    packed = tmp_path / "log.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for spec, stdin in ((str(plain), None), (str(packed), None), ("-", io.BytesIO(text.encode()))):
        hashed = stream_log([spec], ReadOptions(), block_size=1000, stdin=stdin)
        if stdin is not None:
            stdin.seek(0)
        expected = hashlib.sha256(text.encode() if spec != str(packed) else packed.read_bytes()).hexdigest()
        with mock.patch("hashlib.sha256", side_effect=AssertionError("hashed although hash_inputs=False")):
            bare = stream_log([spec], ReadOptions(), block_size=1000, stdin=stdin, hash_inputs=False)
        assert hashed.inputs[0].sha256 == expected
        assert bare.inputs[0].sha256 is None
        assert bare.user_codes.tolist() == hashed.user_codes.tolist()
        assert bare.item_codes.tolist() == hashed.item_codes.tolist()
        assert bare.time.tolist() == hashed.time.tolist() and bare.rating.tolist() == hashed.rating.tolist()


# canonical integer ids, and text that an integer parser would read as one but that is not (leading
# zeros, signs, spaces, hex, past int64): ids must stay exactly the text's
int_like_ids = st.sampled_from(
    ["7", "007", "+7", " 7", "7 ", "-0", "0", "00", "-7", "-07", "0x7", "12", "9223372036854775807",
     "9223372036854775808", "-9223372036854775808", "", "x"]
)
canonical_ids = st.sampled_from(["7", "0", "-7", "12", "9223372036854775807", "-9223372036854775808", ""])


@SETTINGS
@given(
    first=st.lists(st.tuples(canonical_ids, canonical_ids), min_size=0, max_size=40),
    later=st.lists(st.tuples(int_like_ids, int_like_ids), min_size=0, max_size=40),
    block=st.sampled_from([16, 40, 100, 1 << 20]),
    id_type=st.sampled_from(["auto", "str"]),
)
def test_integer_like_ids_read_as_the_whole_file_reader_reads_them(tmp_path_factory, first, later, block, id_type):
    """Ranges of canonical integer ids, then ranges with ids an integer parser would take for one
    (``007``, ``+7``, `` 7``, ``-0``, ``0x7``, past int64): the Log is the whole-file text reader's."""
    rows = first + later
    if not rows:
        return
    text = "user,item,timestamp\n" + "".join(f"{u},{i},{k}\n" for k, (u, i) in enumerate(rows))
    p = tmp_path_factory.mktemp("ints") / "log.csv"
    p.write_text(text)
    opts = ReadOptions(id_type=id_type)
    assert_same_log(stream_log([str(p)], opts, block_size=block), read_log_in_memory([str(p)], opts))


def test_007_and_7_stay_two_ids_across_ranges(write):
    """A long run of canonical ids, then ``007`` and ``7`` in a later range: two ids, text; without
    them the ids are int64."""
    rows = "".join(f"{k % 50 + 1},{k % 7 + 1},{k}\n" for k in range(2000))
    p = write("log.csv", "user,item,timestamp\n" + rows + "007,1,5000\n7,1,5001\n")
    log = stream_log([str(p)], ReadOptions(), block_size=256)
    assert log.user_ids.type == pa.string()
    assert "007" in log.user_ids.to_pylist() and "7" in log.user_ids.to_pylist()
    assert_same_log(log, read_log_in_memory([str(p)], ReadOptions()))
    ints = stream_log([str(write("ints.csv", "user,item,timestamp\n" + rows))], ReadOptions(), block_size=256)
    assert ints.user_ids.type == pa.int64() and ints.item_ids.type == pa.int64()
