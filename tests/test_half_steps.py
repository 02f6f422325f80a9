"""Ratings carried through the sort as 1-byte codes (kernels.sequences.half_step_codes): the codes
give back every rating bit for bit, anything else is left as float32, and a build that sorts coded
ratings writes the bytes of one that sorts float32 ratings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import seqprep
from seqprep.engines import local
from seqprep.kernels.sequences import HALF_STEPS, from_half_steps, half_step_codes

from .test_streamed_write import _log

any_float32 = hnp.arrays(np.float32, st.integers(0, 300), elements=st.floats(width=32, allow_nan=True, allow_infinity=True))
half_step = st.one_of(st.integers(0, 254).map(lambda k: k / 2), st.just(float("nan")))


@given(any_float32)
def test_codes_give_back_every_bit_or_are_none(ratings):
    codes = half_step_codes(ratings)
    if codes is None:  # some value is no half step in [0, 127], or a NaN other than numpy's, or -0.0
        exact = HALF_STEPS.view(np.uint32)
        assert not np.isin(ratings.view(np.uint32), exact).all()
    else:
        assert codes.dtype == np.uint8 and len(codes) == len(ratings)
        assert np.array_equal(from_half_steps(codes).view(np.uint32), ratings.view(np.uint32))


@given(st.lists(half_step, max_size=300), st.integers(0, 3))
def test_half_steps_are_always_coded(values, chunks):
    ratings = np.array(values, dtype=np.float32)
    ratings = np.concatenate([ratings] * (chunks + 1)) if chunks else ratings
    codes = half_step_codes(ratings)
    assert codes is not None
    assert np.array_equal(from_half_steps(codes).view(np.uint32), ratings.view(np.uint32))


@pytest.mark.parametrize("bad", [-0.0, 0.25, 127.5, 300.0, -1.0, float("inf")])
def test_one_value_that_is_no_half_step_leaves_all_as_float32(bad):
    ratings = np.full(200_000, 4.5, dtype=np.float32)  # (several chunks: the bad one is in the last)
    ratings[-1] = bad
    assert half_step_codes(ratings) is None
    assert half_step_codes(ratings[:-1]) is not None


def test_another_nan_is_no_missing_rating():
    ratings = np.array([1.0, np.nan], dtype=np.float32)
    ratings.view(np.uint32)[1] = 0x7FC00001  # a NaN with a payload: written as it is, not as numpy's NaN
    assert half_step_codes(ratings) is None
    assert half_step_codes(np.array([1.0, np.nan, 2.5], dtype=np.float32)).tolist() == [2, 255, 5]


def _outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "meta.json"}




@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("args", [{}, {"split": "loo"}, {"formats": ["npz", "parquet"]}, {"split": "loo", "max_len": 5}])
def test_a_build_that_sorts_coded_ratings_writes_the_same_bytes(tmp_path, monkeypatch, grouped, args):
    log = _log(tmp_path / "log.csv", 4000, 90, grouped=grouped, seed=5)
    text = log.read_text().splitlines()
    text[7] = text[7].rsplit(",", 2)[0] + ",," + text[7].rsplit(",", 1)[1]  # one missing rating
    log.write_text("\n".join(text) + "\n")
    coded = seqprep.build(log, tmp_path / "coded", **args)
    calls = []
    real = local.half_step_codes
    monkeypatch.setattr(local, "half_step_codes", lambda r: calls.append(len(r)))  # float32 through the sort
    plain = seqprep.build(log, tmp_path / "plain", **args)
    assert calls, "the build did not look at its ratings before the sort"
    assert real(np.asarray(plain.sequences.ratings)) is not None  # (so the first build did code them)
    assert _outputs(tmp_path / "coded") == _outputs(tmp_path / "plain")
    assert coded.sequences.ratings.dtype == np.float32
    assert np.array_equal(coded.sequences.ratings.view(np.uint32), plain.sequences.ratings.view(np.uint32))
    assert seqprep.verify(tmp_path / "coded").ok


def test_rows_in_time_order_are_not_coded(tmp_path, monkeypatch):
    log = _log(tmp_path / "log.csv", 500, 20, grouped=True)
    built = seqprep.build(log)  # (sorted once, to write the same rows in time order)
    lines = ["userId,movieId,rating,timestamp"]
    s = built.sequences
    for u in range(s.num_users):
        for k in range(int(s.offsets[u]), int(s.offsets[u + 1])):
            lines.append(f"{built.users.ids[u]},{built.items.ids[int(s.items[k]) - 1]},{s.ratings[k]},{s.timestamps[k]}")
    ordered = tmp_path / "ordered.csv"
    ordered.write_text("\n".join(lines) + "\n")
    calls = []
    monkeypatch.setattr(local, "half_step_codes", lambda r: calls.append(len(r)))
    again = seqprep.build(ordered)
    assert calls == []  # no sort to come: nothing to code
    assert np.array_equal(again.sequences.items, s.items)
