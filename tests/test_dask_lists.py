"""The Dask engine's token-list kernels against the local encoder, on random logs: the token
vocabulary fitted from the distinct values' kept rows and the lists gathered per row give the
local ``--feature COL:tokens:SEP`` (text) and list-column features exactly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("dask")

from seqprep.engines.dask.features import fit_tokens  # noqa: E402
from seqprep.engines.dask.lists import empty_per_value, gather_lists, joined, list_tokens, value_tokens  # noqa: E402
from seqprep.model import Column, Feature  # noqa: E402
from seqprep.steps.features import encode_column  # noqa: E402

ORDERS = st.sampled_from(["frequency", "first-seen", "id", "sequence"])
NO_POS = np.iinfo(np.int64).max

text_values = st.lists(st.text(alphabet="ab| c", max_size=6), min_size=1, max_size=8, unique=True)


def _kept_tables(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(kept rows per value, first row per value, rows without a value) of rows holding ``codes``."""
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=size).astype(np.int64)
    first = np.full(size, NO_POS, np.int64)
    np.minimum.at(first, codes[present], np.flatnonzero(present))
    return counts, first, int((~present).sum())


def _same_feature(got_offsets, got_values, template: Feature, want: Feature) -> None:
    assert got_offsets.tolist() == want.offsets.tolist()
    assert got_values.tolist() == want.values.astype(np.int32).tolist()
    assert template.vocab.ids.to_pylist() == want.vocab.ids.to_pylist()
    assert template.vocab.counts.tolist() == want.vocab.counts.tolist()
    assert (template.missing, template.empty_tokens) == (want.missing, want.empty_tokens)


@settings(max_examples=150, deadline=None)
@given(text_values, st.lists(st.integers(-1, 7), max_size=40), ORDERS)
def test_text_tokens_are_the_local_encoding(values, rows, order):
    dictionary = pa.array(values)
    codes = np.array([c if c < len(values) else -1 for c in rows], dtype=np.int32)
    want = encode_column("t", Column("t", "text", dictionary, codes=codes), "tokens", "|", order)
    counts, first, missing = _kept_tables(codes, len(values))
    vt = value_tokens(dictionary, "|", counts, first)
    template, table, value_offsets, tokens = fit_tokens(
        "t",
        Column("t", "text", dictionary, codes=codes[:0]),
        vt,
        empty_per_value(dictionary, "|"),
        counts,
        order,
        missing,
    )
    offsets, flat = gather_lists(table[codes], value_offsets, tokens)
    _same_feature(offsets, flat, template, want)


lists = st.lists(
    st.one_of(st.none(), st.lists(st.one_of(st.none(), st.sampled_from("abcde")), max_size=4)), max_size=30
)


@settings(max_examples=150, deadline=None)
@given(lists, ORDERS)
def test_list_tokens_are_the_local_encoding(rows, order):
    """Each row its own distinct list (kept once, first at its row): the local list encoding."""
    elements = pa.array(list("abcde"))
    lengths = [len(r or []) for r in rows]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.array([-1 if e is None else "abcde".index(e) for r in rows for e in (r or [])], dtype=np.int32)
    want = encode_column("t", Column("t", "list", elements, codes=flat, offsets=offsets), "tokens", None, order)
    n = len(rows)
    counts, first = np.ones(n, np.int64), np.arange(n, dtype=np.int64)
    vt, empties = list_tokens(offsets, flat, elements, counts, first)
    template, table, value_offsets, tokens = fit_tokens(
        "t", Column("t", "list", elements), vt, empties, counts, order, 0
    )
    got_offsets, got = gather_lists(table[np.arange(n)], value_offsets, tokens)
    _same_feature(got_offsets, got, template, want)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), max_size=5), max_size=20), st.data())
def test_gather_lists_and_joined_parts(values, data):
    """Per row its value's list (a plain-Python gather); a token feature cut into consecutive parts
    and joined again is the feature."""
    value_offsets = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int64)
    tokens = np.array([t for v in values for t in v], dtype=np.int32)
    rows = np.array(
        data.draw(st.lists(st.integers(0, max(len(values) - 1, 0)), max_size=30)) if values else [], dtype=np.int64
    )
    offsets, flat = gather_lists(rows, value_offsets, tokens)
    assert [flat[offsets[r] : offsets[r + 1]].tolist() for r in range(len(rows))] == [values[v] for v in rows]
    f = Feature("t", "interaction", "tokens", flat, offsets=offsets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=4)))
    bounds = [0, *cuts, len(rows)]
    parts = [f.slice(a, b) for a, b in zip(bounds, bounds[1:])]
    back = joined(parts)
    assert back.offsets.tolist() == offsets.tolist() and back.values.tolist() == flat.tolist()
