"""Property tests of the vocabulary-reuse and text kernels against slow plain-Python references."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprep.kernels import cast_ids_exact, extend_table, fit_order, reuse_table
from seqprep.kernels.text import join_lists, json_string, lines_bytes, number_text
from seqprep.output.stream import jsonl_lines

int_text = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["007", "-0", "+5", "1.0", " 1", "x", "", "1e3", "00"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(int_text, unique=True, max_size=20))
def test_cast_text_to_int_is_exact(texts):
    cast, exact = cast_ids_exact(pa.array(texts, pa.string()), pa.int64())
    for t, c, e in zip(texts, cast.to_pylist(), exact.tolist()):
        ref_ok = t.lstrip("-").isdigit() and str(int(t)) == t and abs(int(t)) < 10**18
        assert e == ref_ok
        assert c == (int(t) if ref_ok else None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), unique=True, max_size=20))
def test_cast_int_to_text_is_exact(values):
    cast, exact = cast_ids_exact(pa.array(values, pa.int64()), pa.string())
    assert exact.all() and cast.to_pylist() == [str(v) for v in values]


ids_st = st.lists(
    st.one_of(st.integers(0, 30).map(str), st.sampled_from(["a", "b", "é", ""])), unique=True, max_size=15
)


@settings(max_examples=200, deadline=None)
@given(ids_st, ids_st, st.integers(0, 2))
def test_reuse_table_matches_dict(ref, ids, start):
    table = reuse_table(pa.array(ref, pa.string()), pa.array(ids, pa.string()), start)
    lookup = {v: start + k for k, v in enumerate(ref)}
    assert table.tolist() == [lookup.get(v, -1) for v in ids]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=10, unique=True),
    st.data(),
    st.sampled_from(["frequency", "first-seen", "id"]),
)
def test_extend_table_never_moves_set_entries(ids, data, order):
    n = len(ids)
    known = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    table = np.full(n, -1, dtype=np.int32)
    table[np.flatnonzero(known)] = np.arange(1, 1 + sum(known))
    codes = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=30)), dtype=np.int64)
    first = int(table.max()) + 1 if table.max() > 0 else 1
    new, added, counts = extend_table(table, codes, pa.array(ids), order, first)
    # entries already set never move
    assert np.array_equal(new[table >= 0], table[table >= 0])
    # exactly the unset codes that occur get first, first + 1, ... in fit_order's order among them
    occurring_unset = sorted({int(c) for c in codes if table[c] < 0})
    assert sorted(added.tolist()) == occurring_unset
    assert new[added].tolist() == list(range(first, first + len(added)))
    ref_order, ref_counts = fit_order(codes[table[codes] < 0], pa.array(ids), order)
    assert added.tolist() == ref_order.tolist() and counts.tolist() == ref_counts.tolist()
    # codes neither set nor occurring stay unset
    untouched = [c for c in range(n) if table[c] < 0 and c not in occurring_unset]
    assert all(new[c] == -1 for c in untouched)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=5), max_size=8), st.sampled_from([" ", ",", ""]))
def test_join_lists_matches_str_join(rows, sep):
    offsets = np.cumsum([0] + [len(r) for r in rows])
    flat = np.array([v for r in rows for v in r], dtype=np.int64)
    got = join_lists(offsets, number_text(flat), sep).to_pylist()
    assert got == [sep.join(map(str, r)) for r in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_infinity=False, width=32), max_size=10))
def test_number_text_float32_round_trips(values):
    arr = np.array(values, dtype=np.float32)
    text = number_text(arr, json=True).to_pylist()
    for v, t in zip(arr, text):
        if np.isnan(v):
            assert t == "null"
        else:
            assert np.float32(json.loads(t)) == v


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=10))
def test_json_string_is_valid_json(values):
    text = json_string(pa.array(values, pa.string())).to_pylist()
    assert [json.loads(t) for t in text] == values


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=4), st.lists(st.tuples(st.integers(1, 99), st.integers(0, 10**12)), max_size=4)),
        min_size=1,
        max_size=6,
    )
)
def test_jsonl_lines_parse_back(users):
    lengths = [len(seq) for _, seq in users]
    offsets = pa.array(np.cumsum([0, *lengths]).astype(np.int32))
    items = pa.array([i for _, seq in users for i, _ in seq], pa.int32())
    times = pa.array([t for _, seq in users for _, t in seq], pa.int64())
    batch = pa.record_batch(
        {
            "user_idx": pa.array(range(len(users)), pa.int32()),
            "user_id": pa.array([u for u, _ in users], pa.string()),
            "items": pa.ListArray.from_arrays(offsets, items),
            "timestamps": pa.ListArray.from_arrays(offsets, times),
        }
    )
    text = bytes(lines_bytes(jsonl_lines(batch))).decode("utf-8")
    assert text.endswith("\n")
    got = [json.loads(line) for line in text.split("\n")[:-1]]
    assert got == batch.to_pylist()
