"""Multi-behaviour logs: targets are target events only, histories keep every event, no leakage.

Property tests build random logs with mixed events and check every split rule against a plain
Python reading of the rules in docs/build.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.cli import cli
from seqprep.kernels.filters import kcore
from seqprep.kernels.splits import HELD_OUT, TEST, TRAIN, VALID, held_out_positions, loo_parts, time_parts

EVENTS = ("view", "cart", "buy")

rows = st.lists(
    st.tuples(st.integers(1, 5), st.integers(1, 8), st.integers(0, 12), st.sampled_from(EVENTS)), min_size=1, max_size=60
)


def _write(folder: Path, log: list[tuple[int, int, int, str]]) -> Path:
    p = folder / "log.csv"
    p.write_text("user,item,ts,type\n" + "".join(f"{u},{i},{t},{e}\n" for u, i, t, e in log))
    return p


def _per_user(log: list[tuple[int, int, int, str]]) -> dict[int, list[tuple[int, int, str]]]:
    """user -> [(time, item, event)] in the build's order (stable by time)."""
    out: dict[int, list[tuple[int, int, str]]] = {}
    for u, i, t, e in log:
        out.setdefault(u, []).append((t, i, e))
    return {u: sorted(v, key=lambda r: r[0]) for u, v in sorted(out.items())}  # sorted() is stable


def _decoded(folder: Path, name: str) -> pd.DataFrame:
    items = pq.read_table(folder / "items.parquet").to_pydict()["item_id"]
    users = pq.read_table(folder / "users.parquet").to_pydict()["user_id"]
    df = pq.read_table(folder / f"{name}.parquet").to_pandas()
    df["user"] = [users[u] for u in df["user_idx"]]
    for col in ("target", "items", "history"):
        if col in df:
            df[col] = [items[v - 1] if np.isscalar(v) else [items[x - 1] for x in v] for v in df[col]]
    return df


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows, st.sampled_from([("buy",), ("buy", "cart")]))
def test_loo_targets_are_the_last_target_events(tmp_path_factory, log, targets):
    assume(any(e in targets for *_, e in log))
    folder = tmp_path_factory.mktemp("e")
    out = folder / "out"
    seqprep.build(_write(folder, log), out, event_col="type", target_events=targets, split="loo")
    valid, test, train = _decoded(out, "valid"), _decoded(out, "test"), _decoded(out, "train")
    for u, seq in _per_user(log).items():
        pos = [k for k, (_, _, e) in enumerate(seq) if e in targets]
        v, t = valid[valid["user"] == u], test[test["user"] == u]
        tr = train[train["user"] == u]
        if len(pos) < 3:
            assert v.empty and t.empty
            assert (tr["items"].iloc[0] if len(tr) else []) == [i for _, i, _ in seq]
            continue
        kv, kt = pos[-2], pos[-1]
        assert v["target"].tolist() == [seq[kv][1]] and t["target"].tolist() == [seq[kt][1]]
        assert v["history"].iloc[0] == [i for _, i, _ in seq[:kv]]  # every event before it
        assert t["history"].iloc[0] == [i for _, i, _ in seq[:kt]]
        assert tr["items"].iloc[0] == [i for _, i, _ in seq[:kv]]  # nothing at or after the valid target


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows, st.integers(1, 10), st.integers(0, 4))
def test_time_split_targets_and_training_part(tmp_path_factory, log, t1, width):
    assume(any(e == "buy" for *_, e in log))
    folder = tmp_path_factory.mktemp("t")
    out = folder / "out"
    t2 = t1 + width
    seqprep.build(_write(folder, log), out, event_col="type", target_events="buy", split="time", valid_from=str(t1), test_from=str(t2))
    valid, test, train = _decoded(out, "valid"), _decoded(out, "test"), _decoded(out, "train")
    want_valid, want_test, want_train = [], [], {}
    for u, seq in _per_user(log).items():
        want_train[u] = [i for t, i, _ in seq if t < t1]
        for t, i, e in seq:
            if e == "buy" and t1 <= t < t2:
                want_valid.append((u, i, [x for s, x, _ in seq if s < t]))
            elif e == "buy" and t >= t2:
                want_test.append((u, i, [x for s, x, _ in seq if s < t]))
    got = lambda df: [(r.user, r.target, list(r.history)) for r in df.itertuples()]  # noqa: E731
    assert got(valid) == want_valid and got(test) == want_test
    assert {r.user: list(r.items) for r in train.itertuples()} == {u: v for u, v in want_train.items() if v}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows, st.integers(2, 3))
def test_windows_and_negatives_use_target_events(tmp_path_factory, log, k):
    assume(any(e == "buy" for *_, e in log))
    folder = tmp_path_factory.mktemp("w")
    out = folder / "out"
    res = seqprep.build(
        _write(folder, log), out, event_col="type", target_events="buy", windows="2:1", formats=("npz",), split="loo"
    )
    with np.load(out / "windows.npz") as z:
        targets = z["targets"]
    event = next(f for f in res.sequences.features if f.name == "event")
    buy = event.vocab.ids.to_pylist().index("buy") + 1
    # every window target is a purchase: find each target item among the user's purchases
    seqs = res.sequences
    items = np.asarray(seqs.items)
    bought = {(u, int(i)) for u in range(seqs.num_users) for i, e in zip(items[seqs.offsets[u] : seqs.offsets[u + 1]], event.values[seqs.offsets[u] : seqs.offsets[u + 1]]) if e == buy}
    with np.load(out / "windows.npz") as z:
        users = z["users"]
    assert all((int(u), int(t)) in bought for u, t in zip(users, targets[:, 0]))


def test_negatives_exclude_target_items_only(tmp_path):
    log = [(1, i, i, "buy" if i % 2 else "view") for i in range(1, 12)] + [(2, i, i, "buy") for i in range(1, 5)]
    folder = tmp_path
    res = seqprep.build(_write(folder, log), folder / "out", event_col="type", target_events="buy", split="loo", eval_negatives=3, seed=1)
    extras = res.extras
    items = res.items.ids.to_pylist()
    user1 = res.users.ids.to_pylist().index(1)
    bought = {i for i in range(1, 12) if i % 2}
    for ev in (extras.valid, extras.test):
        for u, negs in zip(ev.user_idx, ev.negatives):
            if u == user1:
                assert not {items[n - 1] for n in negs} & bought
    assert res.meta["negatives"]["excludes"].endswith("in a target event")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6), st.booleans()), min_size=1, max_size=50),
    st.integers(1, 3),
    st.integers(1, 3),
)
def test_kcore_counts_only_counted_rows(rows, mu, mi):
    user = np.array([r[0] for r in rows])
    item = np.array([r[1] for r in rows])
    counted = np.array([r[2] for r in rows])
    keep, _, fixpoint = kcore(user, item, min_user=mu, min_item=mi, counted=counted)
    assert fixpoint
    ref = np.ones(len(rows), dtype=bool)
    while True:  # the reference: degrees over counted kept rows, removal of every row of a bad id
        uc = {u: int(((user == u) & counted & ref).sum()) for u in set(user)}
        ic = {i: int(((item == i) & counted & ref).sum()) for i in set(item)}
        bad = np.array([uc[u] < mu or ic[i] < mi for u, i in zip(user, item)]) & ref
        if not bad.any():
            break
        ref &= ~bad
    assert keep.tolist() == ref.tolist()


def test_kcore_on_target_in_a_build(tmp_path):
    log = [(1, 1, 1, "view"), (1, 2, 2, "buy"), (1, 3, 3, "buy"), (2, 1, 1, "buy"), (2, 3, 4, "view")]
    res = seqprep.build(_write(tmp_path, log), write=False, event_col="type", target_events="buy", kcore_on="target", min_user_count=2)
    assert res.users.ids.to_pylist() == [1]  # user 2 has one purchase: all its rows go
    assert res.meta["steps"][-1]["rows_removed"] == 2


def test_kernel_examples():
    t = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    assert loo_parts(np.array([0, 6]), targets=t).tolist() == [TRAIN, TRAIN, VALID, HELD_OUT, TEST, HELD_OUT]
    assert time_parts(np.array([1, 5, 9]), 5, 9, np.array([1, 0, 1], dtype=bool)).tolist() == [TRAIN, HELD_OUT, TEST]
    assert held_out_positions(np.array([0, 3]), np.array([TEST], dtype=np.int8), np.array([1, 0, 0], dtype=bool)).tolist() == [TEST, HELD_OUT, HELD_OUT]


def test_meta_and_event_feature(tmp_path):
    log = [(1, 1, 1, "view"), (1, 2, 2, "buy"), (2, 1, 1, "buy")]
    seqprep.build(_write(tmp_path, log), tmp_path / "out", event_col="type")
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["events"]["rows"] == {"buy": 2, "view": 1} and meta["events"]["target_events"] == ["buy", "view"]
    assert meta["features"]["event"]["kind"] == "cat"
    assert pq.read_table(tmp_path / "out" / "sequences.parquet").to_pydict()["event"] == [[2, 1], [1]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-events", "buy"], "--target-events needs --event-col COL"),
        (["--event-col", "type", "--kcore-on", "target"], "--kcore-on target needs --target-events"),
        (["--event-col", "type", "--target-events", "purchase"], "--target-events 'purchase': no such event in column 'type'; its events are buy, view"),
        (["--event-col", "kind"], "column 'kind' (--event-col) not found; columns are user, item, ts, type"),
        # the event column read as numbers for a :num feature: its events are numbers (a traceback before)
        (["--event-col", "type", "--feature", "type:num", "--target-events", "3"], "--feature type:num reads that column as numbers; drop ':num'"),
        (["--event-col", "type", "--feature", "type:num", "--target-events", "3", "--kcore-on", "target"], "--target-events picks events of --event-col type"),
    ],
)
def test_bad_event_options(tmp_path, args, message):
    p = _write(tmp_path, [(1, 1, 1, "view"), (1, 2, 2, "buy")])
    r = CliRunner().invoke(cli, ["build", str(p), "-o", str(tmp_path / "out"), *args])
    assert r.exit_code == 1 and message in r.output, r.output
    assert not (tmp_path / "out").exists()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["view", "cart", "buy", "b", "a", "zz", "é"]), min_size=1, max_size=7, unique=True).flatmap(
        lambda values: st.tuples(
            st.just(values),
            st.lists(st.integers(-1, len(values) - 1), max_size=300),
            st.sampled_from(["frequency", "id", "first-seen", "sequence"]),
        )
    )
)
def test_the_cat_encoding_of_a_column_is_its_plain_definition(case):
    """A ``cat`` feature's encoding (:func:`~seqprep.steps.features.encode_column`, which the event
    feature is: one counting pass whose last entry counts the missing rows, one chunked lookup) is
    the definition written plainly: values ordered by ``--item-order`` (frequency: most rows first,
    ties by value; id: by value; first-seen and sequence: by first row), indices 1..K in the
    smallest unsigned type, 0 for a missing row, counts and missing rows - codes over several chunks."""
    import pyarrow as pa

    import seqprep.kernels.features as kf
    from seqprep.config import EventOptions
    from seqprep.model import Column, Interactions
    from seqprep.steps.events import EVENT, event_feature
    from seqprep.steps.features import encode_column

    values, codes, order = case
    col = Column("ev", "text", pa.array(values), codes=np.array(codes, dtype=np.int32))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kf, "_CHUNK", 7)  # several chunks
        got = encode_column(EVENT, col, "cat", None, order)
    present = [c for c in codes if c >= 0]
    count = {c: present.count(c) for c in set(present)}
    first = {c: present.index(c) for c in set(present)}
    key = {
        "frequency": lambda c: (-count[c], values[c].encode()),
        "id": lambda c: values[c].encode(),
    }.get(order, lambda c: first[c])
    chosen = sorted(count, key=key)
    index = {c: k + 1 for k, c in enumerate(chosen)}
    assert got.values.dtype == np.uint8
    assert got.values.tolist() == [index.get(c, 0) for c in codes]
    assert got.vocab.ids.to_pylist() == [values[c] for c in chosen]
    assert list(got.vocab.counts) == [count[c] for c in chosen]
    assert (got.missing, got.name, got.column, got.kind, got.fit, got.unseen) == (len(codes) - len(present), EVENT, "ev", "cat", "kept", 0)
    # the event feature is that encoding of the event column
    n = len(codes)
    inter = Interactions(user=np.zeros(n, np.int32), item=np.zeros(n, np.int32), time=np.zeros(n, np.int64), rating=None, columns=(col,))
    (feature,) = event_feature(inter, EventOptions(event_col="ev"), order)
    assert feature.values.tolist() == got.values.tolist() and feature.vocab.ids.equals(got.vocab.ids)
