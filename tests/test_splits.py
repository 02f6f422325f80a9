"""Splits, truncation/padding, Caser windows and negatives: kernels against plain-Python references,
then whole builds checked for leakage, exact partition and reproducibility."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from fractions import Fraction
from math import ceil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.cli import cli
from seqprep.kernels.splits import (
    eval_positions,
    gather_ranges,
    held_out_positions,
    loo_parts,
    ranges_mask,
    ratio_parts,
    row_counts,
    sample_negatives,
    sliding_windows,
    tail_ranges,
    time_parts,
    users_parts,
)
from tests.conftest import TIES_CSV

# ------------------------------------------------------------------------------------------------
# kernels

lengths_st = st.lists(st.integers(0, 7), min_size=1, max_size=12)


def _offsets(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _rows(lengths: list[int]) -> list[list[int]]:
    """Positions of each row."""
    off = _offsets(lengths)
    return [list(range(off[u], off[u + 1])) for u in range(len(lengths))]


@settings(deadline=None)
@given(st.data())
def test_row_counts_match_reference(data):
    """Per-row counts of a mask (the train positions of each user), whichever side of it is rarer."""
    lengths = data.draw(lengths_st)
    n = sum(lengths)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    got = row_counts(_offsets(lengths), mask)
    assert got.dtype == np.int64
    assert got.tolist() == [int(mask[p].sum()) for p in _rows(lengths)]


@settings(deadline=None)
@given(lengths_st)
def test_loo_parts_matches_reference(lengths):
    expected = []
    for n in lengths:
        expected += [0] * n if n < 3 else [0] * (n - 2) + [1, 2]
    assert loo_parts(_offsets(lengths)).tolist() == expected


def _recbole_parts(n: int) -> list[int]:
    """RecBole 1.2.1 on one user of n interactions, as its code reads: data augmentation makes one
    row per later position (n - 1 rows, target positions 1..n-1); _split_index_by_leave_one_out
    holds out legal = min(2, rows - 1) of them: the last legal rows go to [valid, test][-legal:]."""
    part = [0] * n
    rows = list(range(1, n))
    legal = min(2, len(rows) - 1)
    if legal > 0:
        for k, code in zip(rows[len(rows) - legal :], [1, 2][-legal:]):
            part[k] = code
    return part


@settings(deadline=None)
@given(lengths_st)
def test_loo_recbole_matches_recboles_leave_one_out(lengths):
    expected = [p for n in lengths for p in _recbole_parts(n)]
    assert loo_parts(_offsets(lengths), valid_min_len=4).tolist() == expected
    # the one difference with loo: users of exactly 3 interactions have no valid position
    plain = loo_parts(_offsets(lengths)).tolist()
    rows_of_3 = {p for row, n in zip(_rows(lengths), lengths) if n == 3 for p in row}
    assert [e for k, e in enumerate(expected) if k not in rows_of_3] == [e for k, e in enumerate(plain) if k not in rows_of_3]


def _ratio_reference(n: int, f_train: Fraction, f_valid: Fraction) -> list[int]:
    a, b = ceil(n * f_train), ceil(n * (f_train + f_valid))
    return [0] * a + [1] * (b - a) + [2] * (n - b)


FRACTIONS = [(Fraction(7, 10), Fraction(1, 10)), (Fraction(4, 5), Fraction(0)), (Fraction(1, 3), Fraction(1, 3)), (Fraction(1), Fraction(0))]


@settings(deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.sampled_from(FRACTIONS))
def test_ratio_parts_match_reference(lengths, fractions):
    f_train, f_valid = fractions
    d = (f_train + f_valid).denominator * f_train.denominator
    cuts = (int(f_train * d), int((f_train + f_valid) * d), d)
    part = ratio_parts(_offsets(lengths), cuts).tolist()
    assert part == [p for n in lengths for p in _ratio_reference(n, f_train, f_valid)]
    for row in _rows(lengths):  # leakage: in a row, no TRAIN after a VALID or TEST, no VALID after a TEST
        codes = [part[p] for p in row]
        assert codes == sorted(codes)


@st.composite
def rows_with_targets(draw):
    lengths = draw(lengths_st)
    targets = draw(st.lists(st.booleans(), min_size=sum(lengths), max_size=sum(lengths)))
    return lengths, np.array(targets, dtype=bool)


@settings(deadline=None)
@given(rows_with_targets(), st.sampled_from(FRACTIONS))
def test_target_events_split_only_targets(data, fractions):
    """With --target-events, the per-user rules count target positions only; a position that is not
    a target is never VALID/TEST, TRAIN before the first held-out target, HELD_OUT after it."""
    lengths, targets = data
    off = _offsets(lengths)
    f_train, f_valid = fractions
    cuts = (int(f_train * 30), int((f_train + f_valid) * 30), 30)
    ratio = ratio_parts(off, cuts, targets)
    recbole = loo_parts(off, targets=targets, valid_min_len=4)
    for row in _rows(lengths):
        tpos = [p for p in row if targets[p]]
        ref = _ratio_reference(len(tpos), f_train, f_valid)
        assert [ratio[p] for p in tpos] == ref
        ref_loo = _recbole_parts(len(tpos))
        assert [recbole[p] for p in tpos] == ref_loo
        for part, codes in ((ratio, ref), (recbole, ref_loo)):
            held = [p for p, c in zip(tpos, codes) if c]
            for p in row:
                if not targets[p]:
                    assert part[p] == (3 if held and p > held[0] else 0)


@st.composite
def sorted_rows(draw):
    """CSR rows of time-sorted timestamps (with ties), plus a part array of a time split."""
    lengths = draw(lengths_st)
    times = []
    for n in lengths:
        times += sorted(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
    t1 = draw(st.integers(0, 7))
    t2 = draw(st.integers(t1, 8))
    return lengths, np.array(times, dtype=np.int64), t1, t2


@settings(deadline=None)
@given(sorted_rows(), st.booleans())
def test_eval_positions_match_reference(data, strict):
    lengths, times, t1, t2 = data
    part = time_parts(times, t1, t2)
    assert part.tolist() == [0 if t < t1 else 1 if t < t2 else 2 for t in times.tolist()]
    pos, start, length = eval_positions(_offsets(lengths), times, part, strict_time=strict)
    expected = []
    for row in _rows(lengths):
        for p in row:
            if part[p]:
                hist = [q for q in row if q < p and (times[q] < times[p] or not strict)]
                expected.append((p, hist))
    got = [(int(p), list(range(s, s + n))) for p, s, n in zip(pos, start, length)]
    assert got == expected
    for p, hist in got:  # the leakage invariants themselves
        assert p not in hist
        assert all(times[q] <= times[p] for q in hist)
        if strict:
            assert all(times[q] < times[p] for q in hist)


@settings(deadline=None)
@given(lengths_st, st.integers(0, 2**32), st.sampled_from([(0.8, 0.1, 0.1), (0.0, 0.5, 0.5), (1.0, 0.0, 0.0)]))
def test_users_parts_partition_and_seed(lengths, seed, fractions):
    off = _offsets(lengths)
    part = users_parts(off, fractions, seed)
    assert np.array_equal(part, users_parts(off, fractions, seed))  # same seed, same split
    eligible = [u for u, n in enumerate(lengths) if n >= 2]
    assert all(part[u] == 0 for u, n in enumerate(lengths) if n < 2)
    m = len(eligible)
    assert int((part == 1).sum()) == round(fractions[1] * m)
    assert int((part == 2).sum()) == min(round(fractions[2] * m), m - round(fractions[1] * m))
    # one evaluation row per held-out user, its target the user's last position
    times = np.zeros(int(off[-1]), dtype=np.int64)
    per_pos = held_out_positions(off, part)
    assert per_pos.tolist() == [
        (int(part[u]) if p == len(row) - 1 else 3) if part[u] else 0 for u, row in enumerate(_rows(lengths)) for p in range(len(row))
    ]
    pos, _, length = eval_positions(off, times, per_pos, strict_time=False)
    held = [u for u in range(len(lengths)) if part[u]]
    assert pos.tolist() == [int(off[u + 1]) - 1 for u in held]
    assert length.tolist() == [lengths[u] - 1 for u in held]


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5)), max_size=10), st.integers(1, 4))
def test_gather_and_tail_ranges(ranges, max_len):
    starts = np.array([s for s, _ in ranges], dtype=np.int64)
    lens = np.array([n for _, n in ranges], dtype=np.int64)
    off, pos = gather_ranges(starts, lens)
    assert pos.tolist() == [p for s, n in ranges for p in range(s, s + n)]
    assert off.tolist() == [0, *np.cumsum([n for _, n in ranges]).tolist()]
    s2, n2 = tail_ranges(starts, lens, max_len)
    assert [list(range(a, a + b)) for a, b in zip(s2, n2)] == [
        list(range(s, s + n))[-max_len:] if n else [] for s, n in ranges
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9)), max_size=12), st.integers(0, 6), st.randoms(use_true_random=False))
def test_ranges_mask_is_the_positions_of_its_ranges(pieces, tail, rnd):
    """Non-overlapping ranges (gap, length pieces laid end to end, empty ones included), given in
    any order: the mask holds exactly their positions, whether they cover few positions (marked
    range by range) or most (all marked, the gaps cleared)."""
    starts, lens, at = [], [], 0
    for gap, n in pieces:
        starts.append(at + gap)
        lens.append(n)
        at += gap + n
    size = at + tail
    order = list(range(len(starts)))
    rnd.shuffle(order)
    s, n = np.array(starts, dtype=np.int64)[order], np.array(lens, dtype=np.int64)[order]
    expected = np.zeros(size, dtype=bool)
    for a, b in zip(s, n):
        expected[a : a + b] = True
    got = ranges_mask(size, s, n)
    assert got.dtype == bool and got.tolist() == expected.tolist()


def _windows_reference(seqs: list[list[int]], L: int, T: int):
    out = []
    for u, seq in enumerate(seqs):
        if len(seq) <= T:
            continue
        if len(seq) < L + T:
            w = [0] * (L + T - len(seq)) + seq
            out.append((w[:L], w[L:], u))
        else:
            for k in range(len(seq) - L - T + 1):
                w = seq[k : k + L + T]
                out.append((w[:L], w[L:], u))
    return out


@settings(deadline=None)
@given(st.lists(st.lists(st.integers(1, 9), max_size=9), min_size=1, max_size=6), st.integers(1, 4), st.integers(1, 3))
def test_sliding_windows_match_caser_and_reproduce_sequences(seqs, L, T):
    off = _offsets([len(s) for s in seqs])
    items = np.array([i for s in seqs for i in s], dtype=np.int32)
    x, y, rows = sliding_windows(items, off, L, T)
    assert x.shape == (len(y), L) and y.shape[1] == T and x.dtype == y.dtype == rows.dtype == np.int32
    got = [(a.tolist(), b.tolist(), int(u)) for a, b, u in zip(x, y, rows)]
    assert got == _windows_reference(seqs, L, T)
    # the windows reproduce each sequence: the first window (without padding) then each later
    # window's last item
    for u, seq in enumerate(seqs):
        ws = [np.concatenate([a, b]) for a, b, r in zip(x, y, rows) if r == u]
        if len(seq) <= T:
            assert ws == []
            continue
        rebuilt = [i for i in ws[0].tolist() if i != 0] + [int(w[-1]) for w in ws[1:]]
        assert rebuilt == seq


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sets(st.integers(1, 12), max_size=8), min_size=1, max_size=6),
    st.integers(1, 4),
    st.integers(0, 100),
    st.booleans(),
)
def test_sample_negatives_are_unseen_distinct_and_seeded(seen_sets, k, seed, popularity):
    num_items = 12
    keys = np.unique(np.array([u * 13 + i for u, s in enumerate(seen_sets) for i in s], dtype=np.int64))
    users = np.array([u for u, s in enumerate(seen_sets) if num_items - len(s) >= k] * 2, dtype=np.int64)
    probs = np.arange(1, num_items + 1, dtype=np.float64) if popularity else None
    neg, _ = sample_negatives(users, keys, num_items, k, seed=seed, probs=probs)
    assert neg.shape == (len(users), k) and neg.dtype == np.int32
    for u, row in zip(users.tolist(), neg.tolist()):
        assert len(set(row)) == k
        assert all(1 <= i <= num_items and i not in seen_sets[u] for i in row)
    again, _ = sample_negatives(users, keys, num_items, k, seed=seed, probs=probs)
    assert np.array_equal(neg, again)


def test_sample_negatives_gives_up_when_impossible():
    keys = np.array([1, 2], dtype=np.int64)  # user 0 saw items 1 and 2 of 3; zero weight on item 3
    with pytest.raises(ValueError, match="fewer allowed items"):
        sample_negatives(np.array([0]), keys, 3, 1, seed=0, probs=np.array([1.0, 1.0, 0.0]), max_rounds=5)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 1000), st.booleans())
def test_sample_negatives_exact_fill_after_few_rounds(seed, popularity):
    # max_rounds=0 forces the exact Gumbel-top-k path for every colliding row
    seen = [{1, 2, 3, 4, 5, 6}, {7}, set()]
    keys = np.unique(np.array([u * 9 + i for u, s in enumerate(seen) for i in s], dtype=np.int64))
    probs = np.array([1, 1, 1, 1, 1, 1, 1, 50, 0.1]) if popularity else None
    users = np.array([0, 1, 2, 0])
    neg, _ = sample_negatives(users, keys, 8, 2, seed=seed, probs=probs[:8] if popularity else None, max_rounds=0)
    for u, row in zip(users.tolist(), neg.tolist()):
        assert len(set(row)) == 2 and not set(row) & seen[u] and all(1 <= i <= 8 for i in row)


# ------------------------------------------------------------------------------------------------
# whole builds: leakage, exact partition, vocab-from-train, reproducibility

row_st = st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(0, 6))


def _csv(rows) -> str:
    return "user,item,time\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)


def _table(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / f"{name}.parquet").to_pylist()


def _check_split(out: Path, rule: str, *, dropped: bool = False):
    """The leakage invariants on the written files, decoded back to original item ids."""
    ds = seqprep.load(out)
    dec = ds.item_vocab.decode
    seqs = {
        int(u): list(zip(dec(ds.sequence(k)).to_pylist(), ds.timestamps[ds.offsets[k] : ds.offsets[k + 1]].tolist()))
        for k, u in enumerate(ds.user_vocab.ids.to_pylist())
    }
    train = {r["user_id"]: list(zip(dec(r["items"]).to_pylist(), r["timestamps"])) for r in _table(out, "train")}
    parts = {name: _table(out, name) for name in ("valid", "test")}
    times = {u: [t for _, t in s] for u, s in seqs.items()}
    targets: Counter = Counter()
    for name, rows in parts.items():
        for r in rows:
            u, tgt, ts = r["user_id"], dec([r["target"]]).to_pylist()[0], r["target_ts"]
            targets[(u, tgt, ts)] += 1
            hist = dec(r["history"]).to_pylist()
            seq = seqs[u]
            # the history is a prefix of the user's sequence ending before the target
            assert hist == [i for i, _ in seq[: len(hist)]]
            assert (tgt, ts) in seq[len(hist) :]
            hist_ts = times[u][: len(hist)]
            assert all(t <= ts for t in hist_ts)
            if rule == "time":
                assert all(t < ts for t in hist_ts)
                assert len(hist) == sum(t < ts for t in times[u])
                assert ts >= parts_bounds(out)[0]
            if rule in ("loo", "users", "ratio"):  # the target comes right after its history
                assert seq[len(hist)] == (tgt, ts)
                if not dropped and rule != "ratio":
                    assert len(hist) == len(seq) - (1 if name == "test" or rule == "users" else 2)
    train_rows = Counter((u, i, t) for u, s in train.items() for i, t in s)
    all_rows = Counter((u, i, t) for u, s in seqs.items() for i, t in s)
    if rule in ("loo", "time", "ratio"):
        assert train_rows + targets == all_rows  # an exact partition of the kept interactions
        for u, s in train.items():  # train holds a prefix of each sequence
            assert s == seqs[u][: len(s)]
    else:
        users_in = [set(train)] + [{r["user_id"] for r in rows} for rows in parts.values()]
        assert sum(len(x) for x in users_in) == len(set().union(*users_in))  # no user in two parts
        for u, s in train.items():
            assert s == seqs[u]
    return ds, train, parts


def parts_bounds(out: Path):
    m = json.loads((out / "meta.json").read_text())["split"]
    return m["valid_from"], m["test_from"]


SPLITS = [
    dict(split="loo"),
    dict(split="time", valid_from="3", test_from="5"),
    dict(split="time:0.5,0.75"),
    dict(split="users:0.5,0.25,0.25", seed=7),
    dict(split="loo:recbole"),
    dict(split="ratio:0.6,0.2,0.2"),
    dict(split="ratio:0.8,0,0.2"),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=40), st.sampled_from(["loo:recbole", "ratio:0.7,0.1,0.2", "ratio:0.5,0.5,0"]))
def test_per_user_rules_cut_each_user_as_documented(tmp_path_factory, rows, split):
    """Per user of n interactions: loo:recbole holds out the last (test, n >= 3) and the second-last
    (valid, n >= 4); ratio:T,V,E gives train the first ceil(n*T), valid up to ceil(n*(T+V))."""
    tmp = tmp_path_factory.mktemp("peruser")
    (tmp / "log.csv").write_text(_csv(rows))
    res = seqprep.build(tmp / "log.csv", tmp / "out", split=split)
    counts = Counter(u for u, _, _ in rows)
    got = {name: Counter(r["user_id"] for r in _table(tmp / "out", name)) for name in ("valid", "test")}
    train = {r["user_id"]: len(r["items"]) for r in _table(tmp / "out", "train")}
    for u, n in counts.items():
        if split == "loo:recbole":
            want = (n - (n >= 3) - (n >= 4), int(n >= 4), int(n >= 3))
        else:
            f = [Fraction(x) for x in split.split(":")[1].split(",")]
            a, b = ceil(n * f[0]), ceil(n * (f[0] + f[1]))
            want = (a, b - a, n - b)
        assert (train.get(u, 0), got["valid"][u], got["test"][u]) == want
    info = res.meta["split"]
    if split == "loo:recbole":
        assert (info["rule"], info["variant"], info["test_only_users"]) == ("loo", "recbole", sum(n == 3 for n in counts.values()))
    else:
        assert info["rule"] == "ratio" and info["fractions"] == [float(x) for x in split.split(":")[1].split(",")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=40), st.sampled_from(SPLITS))
def test_splits_partition_without_leakage(tmp_path_factory, rows, opts):
    tmp = tmp_path_factory.mktemp("split")
    (tmp / "log.csv").write_text(_csv(rows))
    seqprep.build(tmp / "log.csv", tmp / "out", windows="2:1", formats=("parquet", "npz"), **opts)
    _, train, _ = _check_split(tmp / "out", opts["split"].split(":")[0])
    # windows come from the training rows only: each target is a training item of its user
    ds = seqprep.load(tmp / "out")
    with np.load(tmp / "out" / "windows.npz", allow_pickle=False) as z:
        for y, u in zip(z["targets"].tolist(), z["users"].tolist()):
            uid = ds.user_vocab.ids[u].as_py()
            assert ds.item_vocab.decode(y).to_pylist()[0] in [i for i, _ in train[uid]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=40), st.sampled_from(SPLITS))
def test_vocab_from_train_drops_and_counts_unseen(tmp_path_factory, rows, opts):
    tmp = tmp_path_factory.mktemp("vft")
    (tmp / "log.csv").write_text(_csv(rows))
    full = seqprep.build(tmp / "log.csv", tmp / "full", **opts)
    try:
        seqprep.build(tmp / "log.csv", tmp / "out", vocab_from_train=True, **opts)
    except seqprep.InputError as e:
        assert "leaves no training interaction" in str(e)
        assert _table(tmp / "full", "train") == []
        return
    ds, _, _ = _check_split(tmp / "out", opts["split"].split(":")[0], dropped=True)  # still leakage-free
    step = ds.meta["steps"][-1]
    assert step["step"] == "vocab_from_train"
    # the vocabulary is exactly the items of the unrestricted build's training part
    train_full = _table(tmp / "full", "train")
    train_items = {i for r in train_full for i in full.items.decode(r["items"]).to_pylist()}
    assert set(ds.item_vocab.ids.to_pylist()) == train_items
    # every removed row is counted: rows of the full build with an unseen item
    unseen = [i for i in full.items.decode(full.sequences.items).to_pylist() if i not in train_items]
    assert step["rows_removed"] == len(unseen) == ds.meta["rows"]["removed"]
    full_targets = {name: _table(tmp / "full", name) for name in ("valid", "test")}
    for name in ("valid", "test"):
        lost = sum(full.items.decode([r["target"]]).to_pylist()[0] not in train_items for r in full_targets[name])
        assert step[f"{name}_targets_dropped"] == lost
        assert len(_table(tmp / "out", name)) == len(full_targets[name]) - lost
    assert step["valid_targets_dropped"] + step["test_targets_dropped"] + step["history_rows_dropped"] == len(unseen)
    # counts are training counts
    counts = Counter(i for r in train_full for i in full.items.decode(r["items"]).to_pylist())
    assert dict(zip(ds.item_vocab.ids.to_pylist(), ds.item_vocab.counts.tolist())) == dict(counts)


LOG = """user,item,ts
1,a,1
1,b,2
1,c,3
1,d,4
2,a,1
2,b,5
3,c,2
3,a,3
3,d,9
3,e,9
4,e,1
4,b,2
4,f,3
4,g,4
4,h,5
"""


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != "meta.json"
    }


def test_loo_on_a_hand_made_log(write, tmp_path):
    seqprep.build(write("l.csv", LOG), tmp_path / "o", split="loo", item_order="id")
    train = {r["user_id"]: r["items"] for r in _table(tmp_path / "o", "train")}
    valid = {r["user_id"]: (r["history"], r["target"]) for r in _table(tmp_path / "o", "valid")}
    test = {r["user_id"]: (r["history"], r["target"], r["target_ts"]) for r in _table(tmp_path / "o", "test")}
    # ids a..h are items 1..8 (item_order id); user 2 has 2 interactions: training only
    assert train == {1: [1, 2], 2: [1, 2], 3: [3, 1], 4: [5, 2, 6]}
    assert valid == {1: ([1, 2], 3), 3: ([3, 1], 4), 4: ([5, 2, 6], 7)}
    assert test == {1: ([1, 2, 3], 4, 4), 3: ([3, 1, 4], 5, 9), 4: ([5, 2, 6, 7], 8, 5)}
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["split"]["train_only_users"] == 1
    assert meta["split"]["sizes"]["train"] == {"users": 4, "interactions": 9}


def test_time_split_with_tied_targets(write, tmp_path):
    seqprep.build(write("l.csv", LOG), tmp_path / "o", split="time", valid_from="3", test_from="9", item_order="id")
    test = _table(tmp_path / "o", "test")
    # user 3's d and e are both at t=9: neither is in the other's history
    assert [(r["history"], r["target"]) for r in test] == [([3, 1], 4), ([3, 1], 5)]


def test_npz_layout_padding_and_truncate(write, tmp_path):
    seqprep.build(
        write("l.csv", LOG), tmp_path / "o", formats=("npz", "parquet"), split="loo", max_len=3, truncate=True,
        item_order="id", windows="2:1", eval_negatives=2,
    )
    o = tmp_path / "o"
    with np.load(o / "sequences.npz", allow_pickle=False) as z:
        assert z["padded"].shape == (4, 3) and z["padded"].dtype == np.int32
        assert z["padded"][1].tolist() == [0, 1, 2]
        assert z["offsets"].tolist() == [0, 3, 5, 8, 11]  # truncated to the 3 most recent
        assert z["items"][:3].tolist() == [2, 3, 4]
    with np.load(o / "test.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["history", "history_offsets", "history_padded", "negatives", "target", "target_ts", "user_idx"]
        assert z["history_padded"].tolist() == [[1, 2, 3], [3, 1, 4], [2, 6, 7]]
        assert z["negatives"].shape == (3, 2) and z["negatives"].dtype == np.int32
    with np.load(o / "train.npz", allow_pickle=False) as z:
        assert z["padded"].shape == (4, 3)
    with np.load(o / "windows.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["inputs", "targets", "users"]
        assert z["inputs"].shape[1] == 2 and z["targets"].shape[1] == 1
    assert [r["items"] for r in _table(o, "sequences")][3] == [6, 7, 8]
    meta = json.loads((o / "meta.json").read_text())
    assert meta["truncation"]["items_beyond_max_len"] == 1 + 1 + 2
    assert meta["num_interactions"] == 15


def test_right_padding(write, tmp_path):
    seqprep.build(write("l.csv", LOG), tmp_path / "o", formats=("npz",), max_len=3, pad="right", item_order="id")
    with np.load(tmp_path / "o" / "sequences.npz", allow_pickle=False) as z:
        assert z["padded"][1].tolist() == [1, 2, 0]
        assert z["offsets"][-1] == 15  # not truncated without --truncate


def test_negatives_exclude_the_whole_log_and_rerun_is_byte_identical(write, tmp_path):
    path = write("l.csv", LOG)
    opts = dict(split="users:0.5,0.25,0.25", seed=3, eval_negatives=3, windows="2:2", formats=("parquet", "npz"))
    seqprep.build(path, tmp_path / "a", **opts)
    seqprep.build(path, tmp_path / "b", **opts)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    ds = seqprep.load(tmp_path / "a")
    for name in ("valid", "test"):
        for r in _table(tmp_path / "a", name):
            seen = set(ds.sequence(r["user_idx"]).tolist())
            assert len(set(r["negatives"])) == 3 and not seen & set(r["negatives"])
    seqprep.build(path, tmp_path / "c", **{**opts, "seed": 4})
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_windows_without_split_use_whole_sequences(write, tmp_path):
    res = seqprep.build(write("l.csv", LOG), tmp_path / "o", windows="3:1", item_order="id")
    assert res.meta["windows"]["source"] == "sequences"
    with np.load(tmp_path / "o" / "windows.npz", allow_pickle=False) as z:
        assert z["users"].tolist() == [0, 1, 2, 3, 3]
        assert z["inputs"][1].tolist() == [0, 0, 1] and z["targets"][1].tolist() == [2]


def test_options_round_trip_through_meta(write, tmp_path):
    res = seqprep.build(write("l.csv", LOG), tmp_path / "o", split="time:0.5,0.9", max_len=4, windows="2:1")
    again = seqprep.BuildConfig.from_dict(json.loads((tmp_path / "o" / "meta.json").read_text())["options"])
    assert again == res.config


def test_negatives_impossible_is_an_error(write, tmp_path):
    with pytest.raises(seqprep.ConfigError, match="fewer than --eval-negatives 8; lower --eval-negatives"):
        seqprep.build(write("l.csv", LOG), tmp_path / "o", split="loo", eval_negatives=8)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# CLI


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


CLI_ERRORS = [
    (["--split", "random"], "Error: --split 'random' is not a split rule; use loo, loo:recbole, time (with --valid-from/--test-from), time:Q1,Q2, users:TRAIN,VALID,TEST, ratio:TRAIN,VALID,TEST or days:N"),
    (["--split", "loo:sasrec"], "Error: --split 'loo:sasrec': loo takes no parameters but the variant recbole; use --split loo or --split loo:recbole"),
    (["--split", "ratio:0.7,0.2"], "Error: --split 'ratio:0.7,0.2': give three fractions TRAIN,VALID,TEST (TRAIN > 0) that sum to exactly 1, as in --split ratio:0.7,0.1,0.2"),
    (["--split", "ratio:0.7,0.1,0.1"], "Error: --split 'ratio:0.7,0.1,0.1': give three fractions TRAIN,VALID,TEST (TRAIN > 0) that sum to exactly 1, as in --split ratio:0.7,0.1,0.2"),
    (["--split", "ratio:0,0.5,0.5"], "Error: --split 'ratio:0,0.5,0.5': give three fractions TRAIN,VALID,TEST (TRAIN > 0) that sum to exactly 1, as in --split ratio:0.7,0.1,0.2"),
    (["--split", "ratio:a,b,c"], "Error: --split 'ratio:a,b,c': 'a,b,c' is not a comma-separated list of numbers; e.g. --split ratio:0.7,0.1,0.2"),
    (["--split", "ratio"], "Error: --split 'ratio': '' is not a comma-separated list of numbers; e.g. --split ratio:0.7,0.1,0.2"),
    (["--split", "time"], "Error: --split time needs --valid-from T1 and --test-from T2 (epoch or ISO date), or quantiles as in --split time:0.8,0.9"),
    (["--split", "time:0.9,0.8"], "Error: --split 'time:0.9,0.8': give two quantiles 0 < Q1 <= Q2 < 1, as in --split time:0.8,0.9"),
    (["--split", "users:0.8,0.1"], "Error: --split 'users:0.8,0.1': give three fractions that sum to 1, as in --split users:0.8,0.1,0.1"),
    (["--split", "users:a,b,c"], "Error: --split 'users:a,b,c': 'a,b,c' is not a comma-separated list of numbers; e.g. --split users:0.8,0.1,0.1"),
    (["--split", "loo:1"], "Error: --split 'loo:1': loo takes no parameters but the variant recbole; use --split loo or --split loo:recbole"),
    (["--valid-from", "3"], "Error: --valid-from and --test-from only apply to --split time; add --split time or drop them"),
    (["--split", "time", "--valid-from", "5", "--test-from", "2"], "Error: --test-from 2 comes before --valid-from 5; swap them"),
    (["--split", "time", "--valid-from", "soon", "--test-from", "2"], "Error: --valid-from 'soon' is neither an epoch number nor an ISO-8601 date; pass e.g. --valid-from 2019-01-01 or --valid-from 1546300800"),
    (["--split", "time", "--valid-from", "nan", "--test-from", "2"], "Error: --valid-from 'nan' is not a finite time; pass an epoch number or an ISO-8601 date"),
    (["--truncate"], "Error: --truncate needs --max-len N (how many of the most recent items to keep)"),
    (["--vocab-from-train"], "Error: --vocab-from-train needs a split; add --split loo, time, users or ratio"),
    (["--eval-negatives", "5"], "Error: --eval-negatives needs valid/test rows; add --split loo, time, users or ratio"),
    (["--windows", "5"], "Error: --windows '5' is not L:T with two positive integers; e.g. --windows 5:3 (Caser's L and T)"),
    (["--split", "time:0.5,0.6", "--valid-from", "1"], "Error: --split time:Q1,Q2 and --valid-from/--test-from both set the bounds; give only one of them"),
]


@pytest.mark.parametrize("extra,expected", CLI_ERRORS)
def test_cli_errors(write, tmp_path, extra, expected):
    p = write("r.csv", TIES_CSV)
    r = run("build", str(p), "-o", str(tmp_path / "o"), *extra)
    assert r.exit_code == 1
    assert r.stderr == expected + "\n"
    assert not (tmp_path / "o").exists()


def test_cli_split_summary(write, tmp_path):
    r = run("build", str(write("l.csv", LOG)), "-o", str(tmp_path / "o"), "--split", "loo", "-f", "npz")
    assert r.exit_code == 0
    assert "split loo: train 9 interactions of 4 users; valid 3 rows; test 3 rows" in r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "items.parquet", "meta.json", "sequences.npz", "test.npz", "train.npz", "users.parquet", "valid.npz"
    ]


def test_stats_shows_split_and_vocab_drops(write, tmp_path):
    out = tmp_path / "o"
    assert run("build", str(write("l.csv", LOG)), "-o", str(out), "--split", "loo", "--vocab-from-train", "-q").exit_code == 0
    r = run("stats", str(out))
    # training items are a, b, c, e, f: d (user 1's test, user 3's valid target), g (user 4's valid)
    # and h (user 4's test) are dropped; c (user 1's valid) and e (user 3's test) stay
    lines = [" ".join(line.split()) for line in r.stdout.splitlines()]
    step = lines.index(next(x for x in lines if x.startswith("2. vocab_from_train")))
    assert lines[step].endswith("rows (-4)")
    assert {"test_targets_dropped 2", "valid_targets_dropped 2"} <= set(lines[step : step + 4])
    assert "rule loo" in lines
    assert {"train users / interactions 4 / 9", "valid users / interactions 1 / 1", "test users / interactions 1 / 1"} <= set(lines)


def test_iso_bounds_follow_the_log_unit(write, tmp_path):
    log = "user,item,ts\n1,a,2020-01-01\n1,b,2020-01-03\n1,c,2020-01-05\n"
    res = seqprep.build(write("d.csv", log), None, split="time", valid_from="2020-01-02", test_from="2020-01-04T00:00:00Z")
    assert res.meta["split"]["valid_from"] == 1577923200
    assert res.meta["split"]["sizes"]["valid"]["rows"] == 1 and res.meta["split"]["sizes"]["test"]["rows"] == 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=40), st.integers(1, 4), st.sampled_from(["left", "right"]))
def test_max_len_caps_histories_and_truncates_tails(tmp_path_factory, rows, max_len, pad):
    tmp = tmp_path_factory.mktemp("ml")
    (tmp / "log.csv").write_text(_csv(rows))
    seqprep.build(tmp / "log.csv", tmp / "full", split="time:0.3,0.6")
    seqprep.build(
        tmp / "log.csv", tmp / "cut", split="time:0.3,0.6", max_len=max_len, pad=pad, truncate=True,
        formats=("parquet", "npz"),
    )
    for name in ("valid", "test"):
        full, cut = _table(tmp / "full", name), _table(tmp / "cut", name)
        assert [r["history"][-max_len:] for r in full] == [r["history"] for r in cut]
        with np.load(tmp / "cut" / f"{name}.npz", allow_pickle=False) as z:
            for r, row in zip(cut, z["history_padded"].tolist()):
                fill = [0] * (max_len - len(r["history"]))
                assert row == (fill + r["history"] if pad == "left" else r["history"] + fill)
    whole = [r["items"] for r in _table(tmp / "full", "sequences")]
    assert [r["items"] for r in _table(tmp / "cut", "sequences")] == [s[-max_len:] for s in whole]
    assert _table(tmp / "full", "train") == _table(tmp / "cut", "train")  # training files are never cut


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=40), st.sampled_from(SPLITS), st.integers(1, 3), st.booleans())
def test_build_negatives_are_never_seen_by_the_user(tmp_path_factory, rows, opts, k, popularity):
    tmp = tmp_path_factory.mktemp("neg")
    (tmp / "log.csv").write_text(_csv(rows))
    sampler = "popularity" if popularity else "uniform"
    try:
        res = seqprep.build(tmp / "log.csv", tmp / "out", eval_negatives=k, negatives=sampler, **opts)
    except seqprep.ConfigError as e:
        assert "lower --eval-negatives" in str(e)
        return
    seen = {u: set(s) for u, s in zip(*_user_sets(res))}
    train_items = {i for r in _table(tmp / "out", "train") for i in r["items"]}
    for name in ("valid", "test"):
        for r in _table(tmp / "out", name):
            neg = r["negatives"]
            assert len(neg) == len(set(neg)) == k
            assert not set(neg) & seen[r["user_idx"]]
            assert all(1 <= i <= len(res.items) for i in neg)
            if popularity:
                assert set(neg) <= train_items


def _user_sets(res):
    off, items = res.sequences.offsets, res.sequences.items
    return range(len(off) - 1), [items[off[u] : off[u + 1]].tolist() for u in range(len(off) - 1)]


# ------------------------------------------------------------------------------------------------
# seqprep verify re-derives the per-user splits


@pytest.mark.parametrize("split", ["loo", "loo:recbole", "ratio:0.7,0.1,0.2", "ratio:0.8,0,0.2"])
def test_verify_rederives_the_per_user_splits(tmp_path, split):
    from seqprep.verify import verify

    rows = [(u, (u * 7 + k) % 9 + 1, k) for u in range(1, 9) for k in range(u + 1)]  # users of 2..9 rows
    (tmp_path / "log.csv").write_text(_csv(rows))
    seqprep.build(tmp_path / "log.csv", tmp_path / "o", split=split, max_len=3, formats=("parquet", "npz"))
    report = verify(tmp_path / "o")
    assert report.ok, report.problems
    assert report.to_dict()["checked"]["split"] == f"{split}: re-derived from the sequences (parquet, npz)"
    # meta.json claiming another rule: the files no longer hold what it gives
    other = {"loo": "loo:recbole", "loo:recbole": "loo", "ratio:0.7,0.1,0.2": "ratio:0.6,0.2,0.2", "ratio:0.8,0,0.2": "ratio:0.7,0.1,0.2"}[split]
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    meta["options"]["split"]["split"] = other
    (tmp_path / "o" / "meta.json").write_text(json.dumps(meta))
    problems = verify(tmp_path / "o").problems
    assert problems and all(f"are not those --split {other} gives on the sequences" in x for x in problems)
    assert any(x.startswith("test.parquet") or x.startswith("valid.parquet") for x in problems)


@pytest.mark.parametrize(
    ("split", "extra", "tamper"),
    [
        ("time:0.5,0.8", {}, ("split", "valid_from", 0)),
        ("time", {"valid_from": "3", "test_from": "6"}, ("split", "test_from", 4)),
        ("users:0.5,0.25,0.25", {"seed": 3}, ("options", "seed", 4)),
    ],
)
def test_verify_rederives_the_time_and_users_splits(tmp_path, split, extra, tamper):
    from seqprep.verify import verify

    # users of 2..9 rows, timestamps 0..8 shared by every user: ties across and within the bounds
    rows = [(u, (u * 7 + k) % 9 + 1, k // 2 * 2) for u in range(1, 9) for k in range(u + 1)]
    (tmp_path / "log.csv").write_text(_csv(rows))
    seqprep.build(tmp_path / "log.csv", tmp_path / "o", split=split, max_len=3, formats=("parquet", "npz"), **extra)
    report = verify(tmp_path / "o")
    assert report.ok, report.problems
    assert report.to_dict()["checked"]["split"] == f"{split}: re-derived from the sequences (parquet, npz)"
    # meta.json claiming another bound or seed: the files no longer hold what the rule gives
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    where, key, value = tamper
    (meta["split"] if where == "split" else meta["options"]["split"])[key] = value
    if where == "options":
        meta["split"]["seed"] = value
    (tmp_path / "o" / "meta.json").write_text(json.dumps(meta))
    problems = verify(tmp_path / "o").problems
    assert any(f"are not those --split {split} gives on the sequences" in x for x in problems), problems
    if split == "time:0.5,0.8":
        assert any("are not the 0.5 and 0.8 quantiles of the written timestamps" in x for x in problems), problems


def test_verify_says_when_a_split_cannot_be_rederived(tmp_path):
    from seqprep.verify import verify

    (tmp_path / "log.csv").write_text(LOG)
    seqprep.build(tmp_path / "log.csv", tmp_path / "o", split="ratio:0.5,0.25,0.25", vocab_from_train=True)
    report = verify(tmp_path / "o")
    assert report.ok, report.problems
    assert report.to_dict()["checked"]["split"].startswith("ratio:0.5,0.25,0.25: not re-derived (--vocab-from-train")
