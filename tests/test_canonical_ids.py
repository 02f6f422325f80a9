"""Ids at integer speed, exactly: CSV id blocks that are all canonical decimal are encoded as
integers (:func:`seqprep.io.columns.canonical_ints`, :meth:`IdEncoder.add_ints`); every other block
as text. The Log - and so every output byte - must be the one the dictionary (text) parse gives."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep.io.stream as stream
from seqprep import build
from seqprep.config import ReadOptions
from seqprep.io.buffers import IdEncoder
from seqprep.io.columns import canonical_ints
from seqprep.io.stream import stream_log
from seqprep.resources import limit_threads
from tests.test_ingest import assert_same_log, tree_digest

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

I64 = (-(2**63), 2**63 - 1)

# text an integer parser takes for a number though it is not canonical, next to canonical ids
tricky = st.sampled_from(
    ["007", "00", "-0", "-07", "+5", " 5", "5 ", "\t5", "0x1f", "0X1F", "-0x5", "1_0", "1e3", "5.0", "٣",
     "9223372036854775808", "-9223372036854775809", "99999999999999999999", "", "-", "--5", "5-", "x", "a7"]
)
canonical = st.one_of(
    st.integers(*I64).map(str),
    st.integers(0, 300).map(str),
    st.sampled_from(["0", "-1", "9223372036854775807", "-9223372036854775808", "1000000000000000000"]),
)
leading_zeros = st.integers(0, 10**6).map(lambda v: "0" + str(v))


def is_canonical(s: str) -> bool:
    return re.fullmatch(r"0|-?[1-9][0-9]*", s) is not None and I64[0] <= int(s) <= I64[1]


@SETTINGS
@given(values=st.lists(st.one_of(canonical, canonical, tricky, leading_zeros, st.none()), max_size=30), start=st.integers(0, 3))
def test_canonical_ints_is_the_regex_within_int64(values, start):
    """canonical_ints accepts a column iff every id is ``0|-?[1-9][0-9]*`` within int64 (and one is
    there at all), and then gives exactly the integers; on a slice of a larger column too."""
    arr = pa.array(["x"] * start + values, pa.string()).slice(start)
    got = canonical_ints(arr)
    present = [v for v in values if v is not None]
    want = bool(present) and all(is_canonical(v) for v in present)
    assert (got is not None) == want, values
    if got is not None:
        ints, valid = got
        assert ints.dtype == np.int64
        assert [int(v) if v is not None else None for v in values] == [
            int(x) if valid is None or valid[k] else None for k, x in enumerate(ints)
        ]


digits = st.text("0123456789", min_size=1, max_size=21)


@SETTINGS
@given(values=st.lists(st.one_of(digits, st.integers(0, 10**6).map(str), st.none()), min_size=1, max_size=40))
def test_digit_only_ids_are_canonical_iff_no_leading_zero(values):
    """Ids of digits alone (no ``-``: the common case, proved by the bytes' count alone): accepted
    exactly when none has a leading zero and all fit in int64, however the lengths add up
    (``07`` beside ``10``, ``0`` beside ``00``, 19- to 21-digit ids)."""
    got = canonical_ints(pa.array(values, pa.string()))
    present = [v for v in values if v is not None]
    assert (got is not None) == (bool(present) and all(is_canonical(v) for v in present)), values
    if got is not None:
        ints, valid = got
        assert [int(v) for v in present] == ints[valid if valid is not None else slice(None)].tolist()


@SETTINGS
@given(
    blocks=st.lists(st.lists(st.one_of(st.integers(0, 40).map(str), st.integers(*I64).map(str), tricky, st.none()), max_size=12), max_size=8),
    flush=st.sampled_from([1, 4, 1 << 16]),
    dense=st.sampled_from([1, 50, 1 << 21]),
)
def test_integer_blocks_encode_as_their_text_does(monkeypatch, blocks, flush, dense):
    """Blocks given as integers where canonical (add_ints: the value table, or past its bound the
    integer dictionaries) and as text elsewhere give the codes and the dictionary of every block
    given as text."""
    monkeypatch.setattr(IdEncoder, "DENSE_MIN", dense)
    assert_encodes_as_text([pa.array(block, pa.string()) for block in blocks], min_flush=flush)


def assert_encodes_as_text(blocks: list[pa.Array], **encoder: Any) -> None:
    """The text blocks given to one IdEncoder as text, and to another as integers where
    canonical_ints allows it (as the reader does): the same codes and the same dictionary."""
    text, mixed = IdEncoder(**encoder), IdEncoder(**encoder)
    for arr in blocks:
        text.add(arr.dictionary_encode())
        ints = canonical_ints(arr)
        if ints is not None:
            mixed.add_ints(*ints)
        else:
            mixed.add(arr.dictionary_encode())
    (want_codes, want_ids), (codes, ids) = text.finish(), mixed.finish()
    assert codes.tolist() == want_codes.tolist()
    assert ids.type == want_ids.type and ids.equals(want_ids)


def _text_path(monkeypatch) -> None:
    """The reader as it was: ids parsed as dictionary text, never as integers."""
    monkeypatch.setattr(stream, "_head_ids_canonical", lambda *a: False)
    monkeypatch.setattr(stream, "canonical_ints", lambda arr: None)


ids = st.one_of(st.integers(1, 30).map(str), st.integers(1, 30).map(str), canonical, tricky, st.just('"7"'), st.just('"007"'), st.just('"1,2"'))


@st.composite
def logs(draw) -> str:
    """CSV logs whose ids are canonical for a while and then, maybe, not (quoted ones too)."""
    n = draw(st.integers(1, 80))
    switch = draw(st.integers(0, n))
    plain = st.integers(1, 30).map(str)
    rows = []
    for k in range(n):
        u = draw(plain if k < switch else ids)
        i = draw(plain if k < switch else ids)
        rows.append(f"{u},{i},{draw(st.sampled_from(['', '1', '4.5']))},{k}")
    return "user,item,rating,timestamp\n" + "\n".join(rows) + "\n"


@SETTINGS
@given(text=logs(), block=st.sampled_from([16, 40, 100, 1 << 20]), id_type=st.sampled_from(["auto", "str"]), threads=st.sampled_from([1, None]))
def test_log_is_the_text_parse_one(tmp_path_factory, monkeypatch, text, block, id_type, threads):
    """The whole reader: the Log with the integer path equals the Log of the dictionary parse, for
    logs that mix canonical blocks with ``007``, ``+5``, `` 5``, ``-1``, huge, empty and quoted ids,
    at any block size and thread count."""
    p = tmp_path_factory.mktemp("canon") / "log.csv"
    p.write_text(text)
    opts = ReadOptions(id_type=id_type)
    try:
        with limit_threads(threads):
            fast = stream_log([str(p)], opts, block_size=block)
    except Exception as e:  # the same error either way
        with monkeypatch.context() as m:
            _text_path(m)
            with pytest.raises(type(e)) as err:
                stream_log([str(p)], opts, block_size=block)
        assert str(err.value) == str(e)
        return
    with monkeypatch.context() as m:
        _text_path(m)
        slow = stream_log([str(p)], opts, block_size=block)
    assert_same_log(fast, slow)


def test_the_integer_path_is_taken(tmp_path, monkeypatch):
    """Not a test that cannot fail: canonical ids do go through add_ints, and a file that starts with
    text ids is parsed with dictionary ids."""
    calls = []
    original = IdEncoder.add_ints
    monkeypatch.setattr(IdEncoder, "add_ints", lambda self, v, ok: calls.append(len(v)) or original(self, v, ok))
    p = tmp_path / "log.csv"
    p.write_text("user,item,timestamp\n" + "".join(f"{k % 9},{k % 5 + 10},{k}\n" for k in range(500)))
    log = stream_log([str(p)], ReadOptions(), block_size=256)
    assert sum(calls) == 1000 and log.user_ids.type == pa.int64()
    assert stream._head_ids_canonical(p.read_bytes(), ",", ["user", "item", "timestamp"], "user")
    q = tmp_path / "text.csv"
    q.write_text("user,item,timestamp\n" + "".join(f"u{k % 9},{k % 5},{k}\n" for k in range(50)))
    assert not stream._head_ids_canonical(q.read_bytes(), ",", ["user", "item", "timestamp"], "user")
    assert stream._head_ids_canonical(q.read_bytes(), ",", ["user", "item", "timestamp"], "item")


def test_build_bytes_equal_the_text_parse(tmp_path, monkeypatch):
    """A build's every output byte (meta.json apart from the output path) with and without the
    integer path, on a log whose later rows hold ``007`` beside ``7``."""
    rows = "".join(f"{k % 40 + 1},{k % 13 + 1},{k % 5 + 1},{1000 + k}\n" for k in range(3000))
    p = tmp_path / "log.csv"
    p.write_text("user,item,rating,timestamp\n" + rows + "007,3,4,9000\n7,4,5,9001\n")
    build(p, tmp_path / "fast", block_size="1KiB")
    with monkeypatch.context() as m:
        _text_path(m)
        build(p, tmp_path / "text", block_size="1KiB")
    assert tree_digest(tmp_path / "fast") == tree_digest(tmp_path / "text")
