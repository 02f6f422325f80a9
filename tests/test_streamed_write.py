"""sequences.parquet written during the sort (row group by row group) is the file a plain write gives."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.kernels import sequences as sequence_kernels
from seqprep.output import files as writers
from seqprep.steps.sort import sequences_from


def _log(path, rows: int, users: int, *, grouped: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, users, rows)
    i = rng.integers(0, 200, rows)
    t = rng.integers(0, 50, rows)  # few distinct times: many ties
    r = rng.integers(1, 11, rows) / 2
    if grouped:
        k = np.argsort(u, kind="stable")
        u, i, t, r = u[k], i[k], t[k], r[k]
    lines = ["userId,movieId,rating,timestamp"] + [f"{a},{b},{c},{d}" for a, b, c, d in zip(u, i, r, t)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("grouped", [True, False])
def test_streamed_file_equals_a_plain_write(tmp_path, monkeypatch, grouped):
    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 97)  # many row groups from a small log
    log = _log(tmp_path / "log.csv", 3000, 80, grouped=grouped)
    built = seqprep.build(log, tmp_path / "out")  # written while sorting
    memory = seqprep.build(log)  # nothing written: one sort of the whole log
    for name in ("items", "timestamps", "ratings"):
        assert np.array_equal(getattr(built.sequences, name), getattr(memory.sequences, name))
    plain = tmp_path / "plain.parquet"
    writers.write_sequences(memory.users, memory.sequences, plain)
    streamed = tmp_path / "out" / "sequences.parquet"
    assert streamed.read_bytes() == plain.read_bytes()
    assert pq.ParquetFile(streamed).metadata.num_row_groups > 5
    assert seqprep.verify(tmp_path / "out").ok
    ds = seqprep.load(tmp_path / "out")
    assert np.array_equal(ds.items, memory.sequences.items)


def test_sequences_from_in_parts_is_the_one_sort(monkeypatch):
    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 13)
    rng = np.random.default_rng(3)
    n, users = 2000, 60
    user = rng.integers(0, users, n).astype(np.int32)
    time = rng.integers(0, 9, n)
    item = rng.integers(1, 50, n).astype(np.int32)
    rating = rng.random(n).astype(np.float32)
    counts = np.bincount(user, minlength=users)
    whole = sequences_from(user, item, time, rating, counts)
    seen: list[tuple[int, int]] = []

    def on_part(seqs, u0, u1):
        lo, hi = seqs.offsets[u0], seqs.offsets[u1]
        assert np.array_equal(seqs.items[lo:hi], whole.items[lo:hi])  # in place when announced
        seen.append((u0, u1))

    parts = sequences_from(user, item, time, rating, counts, on_part=on_part)
    for name in ("items", "timestamps", "ratings"):
        assert np.array_equal(getattr(parts, name), getattr(whole, name))
    assert seen[0][0] == 0 and seen[-1][1] == users
    assert all(a[1] == b[0] for a, b in pairwise(seen))  # in user order, no gap


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=40),
    per_part=st.integers(1, 30),
    grouped=st.booleans(),
    ratings=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_columns_in_place_sort_grouped_rows_in_their_own_arrays(lengths, per_part, grouped, ratings, seed):
    """``columns_in_place``: rows grouped by user have their item indices, times and ratings sorted in
    the arrays given (no second copy), row group by row group; scattered rows get new arrays and the
    inputs stay as they were. Either way the sequences, and what each row group sees, are the one
    stable sort's."""
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    if not grouped:
        user = rng.permutation(user)
    n = len(user)
    time = rng.integers(0, 4, n)  # few distinct times: ties
    item = rng.integers(1, 50, n).astype(np.int32)
    rating = rng.random(n).astype(np.float32) if ratings else None
    counts = np.bincount(user, minlength=len(lengths))
    order = np.lexsort((np.arange(n), time, user))  # the stable (user, time) order
    expected = [item[order], time[order]] + ([] if rating is None else [rating[order]])
    inputs = [item, time] + ([] if rating is None else [rating])
    before = [a.copy() for a in inputs]
    seen = []

    def on_part(seqs, u0, u1):
        lo, hi = int(seqs.offsets[u0]), int(seqs.offsets[u1])
        seen.append([a[lo:hi].copy() for a in (seqs.items, seqs.timestamps, seqs.ratings) if a is not None])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", per_part)
        seqs = sequences_from(user, item, time, rating, counts, on_part=on_part, columns_in_place=True)
    got = [seqs.items, seqs.timestamps] + ([] if rating is None else [seqs.ratings])
    in_order = bool(np.array_equal(order, np.arange(n)))
    grouped = bool((user[1:] >= user[:-1]).all())  # (a permutation may leave them grouped)
    for out, want, given_array, old in zip(got, expected, inputs, before, strict=True):
        assert np.array_equal(out, want)
        assert (out is given_array) == (grouped or in_order)  # in place exactly when rows are grouped
        if out is not given_array:
            assert np.array_equal(given_array, old)  # scattered rows: the input is left as it was
    for k, parts in enumerate(zip(*seen)):
        assert np.array_equal(np.concatenate(parts), expected[k])  # each row group saw its sorted rows


def test_columns_in_place_copy_read_only_and_shared_arrays():
    """A read-only array, or one sharing memory with another input, is sorted into a new array and
    left as it was; a writeable one of its own is sorted in place."""
    user = np.repeat(np.arange(3, dtype=np.int32), [4, 2, 5])
    time = np.array([3, 1, 2, 1, 9, 0, 5, 5, 1, 2, 0])
    counts = np.bincount(user)
    order = np.lexsort((np.arange(11), time, user))
    frozen = time.copy()
    frozen.flags.writeable = False
    item = np.arange(1, 12, dtype=np.int32)
    rating = item.view(np.float32)  # the same memory as the items
    keep = [item.copy(), rating.copy()]
    seqs = sequences_from(user, item, frozen, rating, counts, on_part=lambda *a: None, columns_in_place=True)
    assert seqs.items is not item and seqs.ratings is not rating and seqs.timestamps is not frozen
    assert np.array_equal(item, keep[0]) and np.array_equal(rating.view(np.int32), keep[1].view(np.int32))
    assert np.array_equal(seqs.items, keep[0][order]) and np.array_equal(seqs.timestamps, time[order])
    own = time.copy()
    seqs = sequences_from(user, item, own, None, counts, on_part=lambda *a: None, columns_in_place=True)
    assert seqs.timestamps is own and seqs.items is item and np.array_equal(own, time[order])


def test_a_failing_row_group_leaves_no_output(tmp_path, monkeypatch):
    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 50)
    log = _log(tmp_path / "log.csv", 1000, 40, grouped=False)
    calls = {"n": 0}
    real = writers.SequencesWriter.write

    def flaky(self, table):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real(self, table)

    monkeypatch.setattr(writers.SequencesWriter, "write", flaky)
    with pytest.raises(seqprep.errors.OutputError, match="No space left on device; free some space"):
        seqprep.build(log, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]  # no output, no temporary folder


def test_no_temporary_output_folder_while_reading(tmp_path, monkeypatch):
    """The output's temporary folder opens only when the sort starts: a process killed (OOM, kill -9)
    while reading leaves nothing beside OUT."""
    from seqprep.engines import local as pipeline

    log = _log(tmp_path / "log.csv", 500, 20, grouped=False)
    real = pipeline.read_log
    seen: list[list[str]] = []

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        return out

    monkeypatch.setattr(pipeline, "read_log", spy)
    seqprep.build(log, tmp_path / "out")
    assert seen == [["log.csv"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "out"]


def test_time_order_on_threads_takes_any_user_integers():
    """Users that are not small dense indices (negative, or huge) fall back to one sort."""
    from seqprep.kernels import time_order

    user = (np.arange(3000) % 7 - 3).astype(np.int64)
    time = np.arange(3000) % 5
    expected = np.lexsort((time, user))
    assert np.array_equal(time_order(user, time, threads=2), expected)
    huge = (np.arange(3000) % 7) * 10**11
    assert np.array_equal(time_order(huge, time, threads=2), np.lexsort((time, huge)))


def test_an_error_after_the_sort_stops_the_background_writer(tmp_path, monkeypatch):
    """sequences.parquet is still being written on its own thread when the build fails later (here:
    in the split): the writer is stopped and its file closed before the temporary folder goes."""
    import threading
    import time

    from seqprep.engines import local as pipeline

    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 50)
    monkeypatch.setattr(writers, "BACKGROUND_ROWS", 1)  # (a log this small is written inline)
    log = _log(tmp_path / "log.csv", 2000, 40, grouped=True)
    real = writers.SequencesWriter.write
    written = {"n": 0}

    def slow(self, table):
        time.sleep(0.05)
        real(self, table)
        written["n"] += 1

    def failing(*args, **kwargs):
        raise seqprep.errors.ConfigError("the split failed")

    monkeypatch.setattr(writers.SequencesWriter, "write", slow)
    monkeypatch.setattr(pipeline.splits, "prepare", failing)
    with pytest.raises(seqprep.errors.ConfigError, match="the split failed"):
        seqprep.build(log, tmp_path / "out", threads=2)
    assert written["n"] < 40  # the build did not wait for every row group: the writer was stopped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]  # no output, no temporary folder
    assert not [t for t in threading.enumerate() if t.name.startswith("seqprep-sequences")]


@pytest.mark.parametrize("threads", [1, 2])
def test_background_writer_hashes_what_it_wrote(tmp_path, monkeypatch, threads):
    """The sha256 meta.json records for sequences.parquet (taken on the writing thread) is the file's."""
    import hashlib
    import json

    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 97)
    monkeypatch.setattr(writers, "BACKGROUND_ROWS", 1)
    log = _log(tmp_path / "log.csv", 3000, 80, grouped=False)
    seqprep.build(log, tmp_path / "out", threads=threads, split="loo")
    files = json.loads((tmp_path / "out" / "meta.json").read_text())["outputs"]["files"]
    for name in ("sequences.parquet", "train.parquet", "valid.parquet", "test.parquet", "items.parquet"):
        data = (tmp_path / "out" / name).read_bytes()
        assert files[name] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert seqprep.verify(tmp_path / "out").ok


def test_a_small_build_writes_its_sequences_on_the_calling_thread(tmp_path, monkeypatch):
    """Below BACKGROUND_ROWS interactions no writer thread is started (a thread start costs more
    than it saves on a small build); above, one is, and the bytes are the same."""
    import json
    import threading

    started: list[str] = []
    real_start = threading.Thread.start

    def spy(self):
        started.append(self.name)
        real_start(self)

    log = _log(tmp_path / "log.csv", 3000, 80, grouped=False)
    monkeypatch.setattr(threading.Thread, "start", spy)
    seqprep.build(log, tmp_path / "inline", threads=2)
    assert not [n for n in started if n.startswith("seqprep-sequences")]
    monkeypatch.setattr(writers, "BACKGROUND_ROWS", 1)
    seqprep.build(log, tmp_path / "background", threads=2)
    assert [n for n in started if n.startswith("seqprep-sequences")]
    assert (tmp_path / "inline" / "sequences.parquet").read_bytes() == (tmp_path / "background" / "sequences.parquet").read_bytes()
    inline, background = (json.loads((tmp_path / d / "meta.json").read_text())["outputs"] for d in ("inline", "background"))
    assert inline == background  # (the files and their sha256)


@pytest.mark.parametrize("args", [{}, {"min_user_count": 2, "split": "loo"}])
def test_the_logs_columns_go_while_sorting(tmp_path, monkeypatch, args):
    """Once the vocabularies are fitted the user and item codes are let go - their arrays hold the
    indices the sort reads (written over the codes: kernels.vocab.lookup(in_place=True)) - and the
    float32 ratings and int64 times before the sort (half stars and epoch seconds: the sort carries
    their 1-byte codes and 4-byte offsets, kernels.sequences.half_step_codes and time_offsets; a
    shuffled log: every sorted column is a new array): nothing else holds them while the rows are
    sorted or the split is decided."""
    import gc
    import weakref

    from seqprep.engines import local as pipeline

    log = _log(tmp_path / "log.csv", 3000, 80, grouped=False)
    refs: dict[str, weakref.ref] = {}
    alive: dict[str, list[str]] = {}
    real_read, real_sort, real_decide = pipeline.read_log, pipeline.sequences_from, pipeline.splits.decide_parts

    def read(*a, **k):
        out = real_read(*a, **k)
        refs.update(user=weakref.ref(out.user_codes), item=weakref.ref(out.item_codes), time=weakref.ref(out.time))
        refs.update(rating=weakref.ref(out.rating))
        return out

    reused: list[str] = []

    def spy(name, real):
        def call(*a, **k):
            gc.collect()
            indices = a[:2] if name == "sort" else ()  # the sort's user and item indices
            if name == "sort":
                reused.extend(key for key in ("user", "item") if any(refs[key]() is x for x in indices))
            alive[name] = sorted(key for key, ref in refs.items() if ref() is not None and not any(ref() is x for x in indices))
            return real(*a, **k)

        return call

    monkeypatch.setattr(pipeline, "read_log", read)
    monkeypatch.setattr(pipeline, "sequences_from", spy("sort", real_sort))
    monkeypatch.setattr(pipeline.splits, "decide_parts", spy("split", real_decide))
    built = seqprep.build(log, tmp_path / "out", **args)
    assert alive == {"sort": [], "split": []}
    assert reused == ["user", "item"]  # the codes' arrays became the indices: no second copy of either
    assert built.meta["rows"]["read"] == 3000
