"""The user-range split API (plan once, decide and write per range) gives the bytes of one pass over
all users: every split file and meta.json's split entries, for any cut of the users into ranges."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import seqprep.steps.splits as splits
from seqprep.config import BuildConfig, SplitOptions
from seqprep.errors import ConfigError
from seqprep.kernels import csr_offsets
from seqprep.kernels.sequences import sequence_parts
from seqprep.kernels.splits import time_quantile
from seqprep.model import BuildResult, Sequences
from seqprep.output.splits import SplitWriter, write_extras
from seqprep.vocab import Vocabulary

OPTIONS = [
    dict(split="loo"),
    dict(split="loo", eval_negatives=3),
    dict(split="loo", eval_negatives=2, negatives="popularity", max_len=3),
    dict(split="time:0.6,0.8", eval_negatives=2),
    dict(split="users:0.6,0.2,0.2", seed=4, eval_negatives=2, max_len=2, truncate=True),
    dict(split="users:0.5,0.25,0.25", windows="2:1"),
    dict(windows="3:1", max_len=4, pad="right"),
    dict(split="loo", windows="2:2", max_len=2, truncate=True),
]


def _seqs(rng: np.random.Generator, n_users: int, n_items: int) -> Sequences:
    lengths = rng.integers(1, 9, n_users)
    offsets = csr_offsets(lengths)
    n = int(offsets[-1])
    items = rng.integers(1, n_items + 1, n).astype(np.int32)
    times = np.concatenate([np.sort(rng.integers(0, 50, m)) for m in lengths]).astype(np.int64)
    return Sequences(offsets=offsets, items=items, timestamps=times, ratings=None)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _by_ranges(
    seqs: Sequences, num_items: int, opts: SplitOptions, cuts: list[int], folder: Path, users: Vocabulary, formats
):
    """The range API as an engine uses it: plan, facts per range, plan completed, extras per range."""
    plan = splits.plan_split(
        opts, "epoch", num_items, np.diff(seqs.offsets), lambda q: time_quantile(seqs.timestamps, q)
    )
    bounds = [0, *cuts, seqs.num_users]
    ranges = list(zip(bounds[:-1], bounds[1:]))
    decided = [splits.split_range(plan, splits.user_range(seqs, u0, u1), user0=u0) for u0, u1 in ranges]
    facts = [f for _, f in decided]
    plan = plan.with_facts(splits.merge_tallies(facts))
    splits.check_negatives(
        plan, [splits.negatives_facts(plan, splits.user_range(seqs, u0, u1), p, user0=u0) for (u0, u1), (p, _) in zip(ranges, decided)]
    )
    (folder.parent / "spill").mkdir(exist_ok=True)
    tallies, parts = [], []
    with SplitWriter(folder, formats, users, folder.parent / "spill") as writer:
        for (u0, u1), (part, _) in zip(ranges, decided):
            out, ex, tally = splits.prepare_range(plan, splits.user_range(seqs, u0, u1), part, user0=u0)
            tallies.append(tally)
            parts.append(out)
            if ex is not None:
                writer.add(ex, u0, u1)
        meta = splits.split_meta(plan, tallies)
    return meta, parts


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), n_users=st.integers(1, 40), cut_at=st.lists(st.integers(0, 40), max_size=4))
@example(seed=1, n_users=2, cut_at=[1])  # one pass refuses user 1 (popularity, 2 negatives); ranges gave no error
def test_ranges_write_the_bytes_of_one_pass(options, seed, n_users, cut_at, tmp_path_factory, monkeypatch):
    monkeypatch.setattr(
        splits, "sequence_parts", lambda offsets: sequence_parts(offsets, per_part=11)
    )  # many row groups
    rng = np.random.default_rng(seed)
    num_items = 30
    seqs = _seqs(rng, n_users, num_items)
    cuts = sorted({min(c, n_users) for c in cut_at})
    config = BuildConfig(("x.csv",), "out", formats=("parquet", "npz"), split=SplitOptions(**options).validate())
    users = Vocabulary(ids=pa.array([f"u{i}" for i in range(n_users)]), counts=np.diff(seqs.offsets), start=0)
    items = Vocabulary(ids=pa.array(range(num_items)), counts=np.ones(num_items, np.int64), start=1)
    root = tmp_path_factory.mktemp("r")
    (root / "all").mkdir()
    (root / "ranges").mkdir()
    part, info = splits.decide_parts(seqs.offsets, seqs.timestamps, config.split, "epoch")
    try:
        out, extras, meta = splits.prepare(seqs, items, part, info, config)
    except ConfigError as e:  # too few items to sample from: the ranges raise the same error
        with pytest.raises(ConfigError) as got:
            _by_ranges(seqs, num_items, config.split, cuts, root / "ranges", users, config.formats)
        assert str(got.value) == str(e)
        assert not any((root / "ranges").iterdir())  # refused before any split file is written
        return
    write_extras(
        BuildResult(config=config, users=users, items=items, sequences=out, meta=meta, extras=extras), root / "all"
    )
    got_meta, got_seqs = _by_ranges(seqs, num_items, config.split, cuts, root / "ranges", users, config.formats)
    assert got_meta == meta
    assert _digests(root / "ranges") == _digests(root / "all")
    assert np.array_equal(np.concatenate([s.items for s in got_seqs]), out.items)


def test_negatives_do_not_depend_on_the_other_users():
    """A user's negatives come from its own streams: dropping other users leaves them as they were."""
    rng = np.random.default_rng(1)
    seqs = _seqs(rng, 30, 40)
    opts = SplitOptions(split="loo", eval_negatives=4).validate()
    config = BuildConfig(("x.csv",), "out", split=opts)
    items = Vocabulary(ids=pa.array(range(40)), counts=np.ones(40, np.int64), start=1)
    part, info = splits.decide_parts(seqs.offsets, seqs.timestamps, opts, "epoch")
    _, ex, _ = splits.prepare(seqs, items, part, info, config)
    sub = splits.user_range(seqs, 10, 20)
    plan = splits.plan_split(opts, "epoch", 40, np.diff(seqs.offsets))
    p, facts = splits.split_range(plan, sub, user0=10)
    _, ex_sub, _ = splits.prepare_range(plan.with_facts(facts), sub, p, user0=10)
    rows = np.isin(ex.test.user_idx, ex_sub.test.user_idx)
    assert rows.any()
    assert np.array_equal(ex.test.negatives[rows], ex_sub.test.negatives)


def test_the_short_user_is_refused_as_one_pass_refuses_it(tmp_path):
    """seed 1, 2 users, cut after user 0 (the case hypothesis found): one pass over all users refuses
    user_idx 1; the ranges raise the same error before writing, whatever the cut."""
    rng = np.random.default_rng(1)
    seqs = _seqs(rng, 2, 30)
    opts = SplitOptions(split="loo", eval_negatives=2, negatives="popularity", max_len=3).validate()
    config = BuildConfig(("x.csv",), "out", formats=("parquet", "npz"), split=opts)
    items = Vocabulary(ids=pa.array(range(30)), counts=np.ones(30, np.int64), start=1)
    users = Vocabulary(ids=pa.array(["u0", "u1"]), counts=np.diff(seqs.offsets), start=0)
    part, info = splits.decide_parts(seqs.offsets, seqs.timestamps, opts, "epoch")
    with pytest.raises(ConfigError, match="user_idx 1 has only 1 items left") as one:
        splits.prepare(seqs, items, part, info, config)
    for k, cuts in enumerate([[], [1], [0, 1, 2]]):
        folder = tmp_path / f"r{k}"
        folder.mkdir()
        with pytest.raises(ConfigError) as got:
            _by_ranges(seqs, 30, opts, cuts, folder, users, config.formats)
        assert str(got.value) == str(one.value)
        assert not any(folder.iterdir())


def test_split_writer_removes_its_files_on_an_error(tmp_path):
    """A SplitWriter left by an error closes and removes every file it opened: the split files in
    the folder and the spilled NPZ members (no ResourceWarning, no half-written output)."""
    rng = np.random.default_rng(3)
    seqs = _seqs(rng, 12, 20)
    opts = SplitOptions(split="loo", eval_negatives=2).validate()
    users = Vocabulary(ids=pa.array([f"u{i}" for i in range(12)]), counts=np.diff(seqs.offsets), start=0)
    plan = splits.plan_split(opts, "epoch", 20, np.diff(seqs.offsets))
    plan = dataclasses.replace(plan, groups=np.array([0, 4, 8, 12]))
    decided = [splits.split_range(plan, splits.user_range(seqs, u0, u1), user0=u0) for u0, u1 in ((0, 6), (6, 12))]
    plan = plan.with_facts(splits.merge_tallies(f for _, f in decided))
    (folder := tmp_path / "out").mkdir()
    (spill := tmp_path / "spill").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(RuntimeError, match="disk full"):
            with SplitWriter(folder, ("parquet", "npz"), users, spill) as writer:
                _, ex, _ = splits.prepare_range(plan, splits.user_range(seqs, 0, 6), decided[0][0], user0=0)
                writer.add(ex, 0, 6)
                assert any(folder.iterdir()) and any(spill.iterdir())  # a row group and spilled members
                raise RuntimeError("disk full")
        gc.collect()
    assert not any(folder.iterdir())
    assert not any(spill.iterdir())


def test_split_writer_close_error_leaves_no_file(tmp_path, monkeypatch):
    """An error while close() writes the NPZ files removes what it had written."""
    import seqprep.output.splits as out_splits

    rng = np.random.default_rng(4)
    seqs = _seqs(rng, 6, 20)
    opts = SplitOptions(split="loo").validate()
    users = Vocabulary(ids=pa.array([f"u{i}" for i in range(6)]), counts=np.diff(seqs.offsets), start=0)
    plan = splits.plan_split(opts, "epoch", 20, np.diff(seqs.offsets))
    p, facts = splits.split_range(plan, seqs)
    plan = plan.with_facts(facts)
    _, ex, _ = splits.prepare_range(plan, seqs, p)
    calls = []

    def failing(path, arrays):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, arrays)

    real = out_splits.write_npz
    monkeypatch.setattr(out_splits, "write_npz", failing)
    (folder := tmp_path / "out").mkdir()
    (spill := tmp_path / "spill").mkdir()
    writer = SplitWriter(folder, ("parquet", "npz"), users, spill)
    writer.add(ex, 0, 6)
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert len(calls) == 2
    assert not any(folder.iterdir())
    assert not any(spill.iterdir())
