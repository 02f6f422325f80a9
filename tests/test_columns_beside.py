"""The requested columns of a log (--where operands, --event-col, features) read beside the ids.

In memory, each batch's requested columns are added on a thread of their own while the main thread
encodes its ids, and a column of few categories is mapped block by block (``IdEncoder.flush_small``);
a spilled read (``--memory-limit``) adds them in turn. Both must give the same log, the same errors,
and the ``event`` counts taken from the vocabulary must equal a count of the sequences.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqprep.config import ReadOptions
from seqprep.errors import InputError
from seqprep.io.buffers import IdEncoder
from seqprep.io.sniff import ColumnRequest
from seqprep.io.stream import stream_log
from seqprep.model import Column
from seqprep.steps.events import event_counts
from seqprep.steps.features import encode_column
from tests.test_ingest import assert_same_log

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# non-canonical texts on purpose: '007' and '7' stay two values, ' 7' a third; '' is missing
events = st.sampled_from(["view", "cart", "buy", "007", "7", " 7", "", "NA", "caf\u00e9"])
prices = st.one_of(
    st.sampled_from(["", "0", "-1.5", "2", "1e3", "nan"]), st.floats(-1e6, 1e6, allow_nan=False).map(repr)
)


@st.composite
def logs_with_columns(draw) -> str:
    n = draw(st.integers(1, 80))
    rows = [
        f"{draw(st.integers(1, 6))},{draw(st.integers(1, 9))},{draw(st.integers(0, 50))},{draw(events)},{draw(prices)}"
        for _ in range(n)
    ]
    return "user,item,ts,event,price\n" + "\n".join(rows) + "\n"


REQUESTS = (ColumnRequest("event", "text", "--event-col"), ColumnRequest("price", "number", "--where price"))


def assert_same_columns(a: tuple[Column, ...], b: tuple[Column, ...]) -> None:
    assert [c.name for c in a] == [c.name for c in b]
    for x, y in zip(a, b):
        assert x.kind == y.kind
        if x.kind == "number":
            np.testing.assert_array_equal(np.asarray(x.values), np.asarray(y.values))
        else:
            assert x.values.equals(y.values) and x.values.type == y.values.type
            np.testing.assert_array_equal(np.asarray(x.codes), np.asarray(y.codes))


@SETTINGS
@given(text=logs_with_columns(), block=st.sampled_from([40, 64, 200, 1 << 20]))
def test_columns_beside_the_ids_equal_a_serial_read(tmp_path_factory, text, block):
    d = tmp_path_factory.mktemp("b")
    (d / "spill").mkdir()
    p = str(d / "log.csv")
    (d / "log.csv").write_text(text, encoding="utf-8")
    beside = stream_log([p], ReadOptions(), block_size=block, columns=REQUESTS)
    serial = stream_log([p], ReadOptions(), block_size=block, columns=REQUESTS, spill_dir=d / "spill")
    assert_same_log(beside, serial)
    assert_same_columns(beside.columns, serial.columns)
    event = beside.columns[0]
    assert event.codes is not None
    # the values as read, row by row (missing: code -1, pyarrow's null texts such as '' and 'NA');
    # '007', '7' and ' 7' stay apart
    nulls = set(pacsv.ConvertOptions().null_values)
    expected = [line.split(",")[3] for line in text.splitlines()[1:]]
    got = [None if c < 0 else event.values[int(c)].as_py() for c in event.codes]
    assert got == [None if v in nulls else v for v in expected]


@pytest.mark.parametrize("spilled", [False, True])
def test_an_error_in_a_requested_column_is_the_same_beside_the_ids(write, tmp_path, spilled):
    rows = "".join(f"{k % 3},{k % 5},{k},view,{k}\n" for k in range(200))
    p = write("bad.csv", "user,item,ts,event,price\n" + rows + "1,2,3,buy,oops\n" + rows)
    spill = tmp_path / "spill" if spilled else None
    if spill is not None:
        spill.mkdir()
    with pytest.raises(InputError) as e:
        stream_log([str(p)], ReadOptions(), block_size=256, columns=REQUESTS, spill_dir=spill)
    assert "line 202: --where price price: 'oops' is not a number" in str(e.value)


def test_not_utf8_in_a_requested_column_beside_the_ids(tmp_path):
    p = tmp_path / "latin.csv"
    rows = b"".join(b"%d,%d,%d,view,1\n" % (k % 3, k % 5, k) for k in range(300))
    p.write_bytes(b"user,item,ts,event,price\n" + rows + b"1,2,3,caf\xe9,1\n" + rows)
    with pytest.raises(InputError, match="not UTF-8"):
        stream_log([str(p)], ReadOptions(), block_size=256, columns=REQUESTS)


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(
        st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "07", "7", " 7", ""])), max_size=30), max_size=8
    )
)
def test_flush_small_gives_the_codes_of_one_flush(blocks):
    plain, small = IdEncoder(), IdEncoder()
    for block in blocks:
        arr = pa.array(block, pa.string()).dictionary_encode()
        plain.add(arr)
        small.add(arr)
        small.flush_small()
    (c1, d1), (c2, d2) = plain.finish(), small.finish()
    np.testing.assert_array_equal(c1, c2)
    assert d1.equals(d2)


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(st.integers(-1, 5), min_size=1, max_size=200),
    order=st.sampled_from(["frequency", "first-seen", "id"]),
)
def test_event_counts_equal_a_count_of_the_positions(codes, order):
    values = pa.array(["view", "cart", "buy", "7", "007", "x"])
    col = Column("event", "text", values, codes=np.array(codes, np.int32))
    f = encode_column("event", col, "cat", None, order)
    assert f.fit == "kept"
    np.testing.assert_array_equal(event_counts(f), np.bincount(f.values, minlength=len(f.vocab) + 1))
    # a vocabulary that does not count these rows (another build's): counted from the positions
    other = f.__class__(f.name, f.source, f.kind, f.values[::-1].copy(), vocab=f.vocab, fit="reused")
    np.testing.assert_array_equal(event_counts(other), np.bincount(other.values, minlength=len(f.vocab) + 1))
