"""What a sort carries in fewer bytes: ratings as 1-byte codes (kernels.sequences.half_step_codes)
and epoch times as 4-byte offsets (time_offsets). The codes and offsets give back every value bit
for bit, anything else stays as it is, and a build that sorts them writes the bytes of one that
sorts float32 ratings and int64 times."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import seqprep
from seqprep.engines import local
from seqprep.kernels.sequences import HALF_STEPS, from_half_steps, from_time_offsets, half_step_codes, time_offsets

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


@given(hnp.arrays(np.int64, st.integers(0, 200), elements=st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(10**9, 10**9 + 2**33))))
def test_time_offsets_give_back_every_time_or_are_none(times):
    packed = time_offsets(times)
    if packed is None:
        assert len(times) == 0 or int(times.max()) - int(times.min()) >= 2**32
    else:
        offsets, base = packed
        assert offsets.dtype == np.uint32 and base == int(times.min())
        assert np.array_equal(from_time_offsets(offsets, base), times)
        assert np.array_equal(np.argsort(offsets, kind="stable"), np.argsort(times, kind="stable"))  # same order, same ties


def test_only_int64_times_are_offset():
    assert time_offsets(np.array([1.5, 2.0])) is None  # (fractional epochs sort as floats)
    assert time_offsets(np.array([0, 2**32 - 1], dtype=np.int64))[0].tolist() == [0, 2**32 - 1]
    assert time_offsets(np.array([-5, 2**32 - 6], dtype=np.int64))[1] == -5


def _outputs(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "meta.json"}


def _epoch_log(path, *, grouped: bool, base: int):
    """A log of 4,000 rows of 90 users with epoch times from ``base`` (ties among them), half stars
    and one missing rating."""
    log = _log(path, 4000, 90, grouped=grouped, seed=5)
    lines = log.read_text().splitlines()
    rows = [line.rsplit(",", 1) for line in lines[1:]]
    lines[1:] = [f"{head},{base + 3600 * int(t)}" for head, t in rows]
    lines[7] = lines[7].rsplit(",", 2)[0] + ",," + lines[7].rsplit(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize(
    "args",
    [
        {},
        {"split": "loo"},
        {"formats": ["npz", "parquet"]},
        {"split": "loo", "max_len": 5},
        {"session_gap": 7200, "split": "loo"},  # (not written during the sort: one sort of the whole log)
        {"time_features": ["hour", "delta"]},
        {"split": "time:0.8,0.9"},
    ],
)
@pytest.mark.parametrize("plain_of", ["ratings", "times"])
@pytest.mark.parametrize("base", [1_600_000_000, -1_000])
def test_a_build_that_sorts_compact_columns_writes_the_same_bytes(tmp_path, monkeypatch, grouped, args, plain_of, base):
    from seqprep.kernels import sequences as sequence_kernels

    if base < 0 and "time_features" in args:
        pytest.skip("time features need epoch seconds (a negative base is not seconds-like)")
    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 97)  # many row groups, sorted on a pool
    log = _epoch_log(tmp_path / "log.csv", grouped=grouped, base=base)
    name, column = {"ratings": ("half_step_codes", "ratings"), "times": ("time_offsets", "timestamps")}[plain_of]
    real = getattr(local, name)
    compacted: list[bool] = []

    def spy(values):
        out = real(values)
        compacted.append(out is not None)
        return out

    monkeypatch.setattr(local, name, spy)
    coded = seqprep.build(log, tmp_path / "coded", **args)
    # scattered rows are compacted for the sort; rows grouped by user are sorted in place as they are
    assert compacted == ([] if grouped else [True]), column
    monkeypatch.setattr(local, name, lambda values: None)  # float32 / int64 through the sort
    plain = seqprep.build(log, tmp_path / "plain", **args)
    assert _outputs(tmp_path / "coded") == _outputs(tmp_path / "plain")
    for col in ("items", "timestamps", "ratings"):
        a, b = getattr(coded.sequences, col), getattr(plain.sequences, col)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert coded.sequences.ratings.dtype == np.float32 and coded.sequences.timestamps.dtype == np.int64
    assert int(coded.sequences.timestamps.min()) >= base  # (the offsets' base is added back)
    assert seqprep.verify(tmp_path / "coded").ok


def test_a_stream_of_compact_columns_is_the_same(tmp_path):
    """``-o -`` (one Arrow stream on stdout) of a scattered log: the bytes of its parquet build's
    sequences, read back."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    log = _epoch_log(tmp_path / "log.csv", grouped=False, base=1_600_000_000)
    out = io.BytesIO()
    seqprep.build(log, "-", stdout=out)
    folder = seqprep.build(log, tmp_path / "o")
    streamed = pa.ipc.open_stream(out.getvalue()).read_all()
    written = pq.read_table(tmp_path / "o" / "sequences.parquet")
    for col in ("items", "timestamps", "ratings"):
        a, b = (t.column(col).combine_chunks() for t in (streamed, written))
        assert a.type == b.type and a.offsets.equals(b.offsets)
        assert a.flatten().to_numpy().tobytes() == b.flatten().to_numpy().tobytes()  # (bit for bit: NaN too)
    assert written.column("timestamps").type == pa.list_(pa.int64()) and folder.sequences.timestamps.min() >= 1_600_000_000


def test_rows_in_time_order_are_not_compacted(tmp_path, monkeypatch):
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
    monkeypatch.setattr(local, "time_offsets", lambda r: calls.append(len(r)))
    again = seqprep.build(ordered)
    assert calls == []  # no sort to come: nothing to compact
    assert np.array_equal(again.sequences.items, s.items)
