"""--export: each file is re-read with a minimal re-implementation of its consumer's documented reader,
and the sequences must come back identical."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from tests.conftest import TIES_CSV, shared_file
from tests.test_reuse import NEXT_CSV


def sasrec_data_partition(path: Path):
    """kang205/SASRec util.py data_partition (and BERT4Rec's copy): read `u i` lines, split last two."""
    usernum = itemnum = 0
    User = defaultdict(list)
    user_train, user_valid, user_test = {}, {}, {}
    with open(path) as f:
        for line in f:
            u, i = line.rstrip().split(" ")
            u, i = int(u), int(i)
            usernum, itemnum = max(u, usernum), max(i, itemnum)
            User[u].append(i)
    for user in User:
        nfeedback = len(User[user])
        if nfeedback < 3:
            user_train[user], user_valid[user], user_test[user] = User[user], [], []
        else:
            user_train[user] = User[user][:-2]
            user_valid[user] = [User[user][-2]]
            user_test[user] = [User[user][-1]]
    return [user_train, user_valid, user_test, usernum, itemnum], User


def seqlines_get_user_seqs(path: Path):
    """ICLRec / CL4SRec-style get_user_seqs: `user item1 item2 ...` per line."""
    with open(path) as f:
        lines = f.readlines()
    user_seq, item_set = [], set()
    users = []
    for line in lines:
        user, items = line.strip().split(" ", 1)
        items = [int(item) for item in items.split(" ")]
        user_seq.append(items)
        users.append(int(user))
        item_set |= set(items)
    return users, user_seq, max(item_set)


def recbole_load_inter(path: Path) -> pd.DataFrame:
    """RecBole Dataset._load_feat: header `name:type`, tab-separated, token -> str, float -> float;
    then sequential datasets sort by (user, time)."""
    with open(path) as f:
        head = f.readline()[:-1].split("\t")
    fields = [h.split(":")[0] for h in head]
    types = [h.split(":")[1] for h in head]
    dtype = {h: (str if t == "token" else float) for h, t in zip(head, types)}
    df = pd.read_csv(path, delimiter="\t", usecols=head, dtype=dtype, engine="python")
    df.columns = fields
    return df.sort_values(by=["user_id", "timestamp"], kind="stable", ignore_index=True)


def _sequences(ds: seqprep.Dataset) -> dict[int, list[int]]:
    """user index -> item indices, for users with a non-empty sequence."""
    return {u: ds.sequence(u).tolist() for u in range(ds.num_users) if ds.lengths[u]}


def _check_all(out: Path) -> None:
    ds = seqprep.load(out)
    want = _sequences(ds)
    # sasrec: 1-based users, item indices, time order
    (train, valid, test, usernum, itemnum), user = sasrec_data_partition(out / "sasrec.txt")
    assert {u - 1: v for u, v in user.items()} == want
    assert usernum == max(want) + 1 and itemnum <= ds.num_embeddings - 1
    for u, seq in want.items():
        if len(seq) >= 3:
            assert train[u + 1] + valid[u + 1] + test[u + 1] == seq
    # seqlines: one line per user
    users, seqs, max_item = seqlines_get_user_seqs(out / "seqlines.txt")
    assert dict(zip([u - 1 for u in users], seqs)) == want
    assert max_item == max(max(s) for s in want.values())
    # recbole: original ids; same per-user order after RecBole's (stable) sort by user and time
    df = recbole_load_inter(out / f"{out.name}.inter")
    assert len(df) == len(ds.items)
    user_ids = ds.user_vocab.ids.to_pylist()
    got = {uid: grp["item_id"].tolist() for uid, grp in df.groupby("user_id", sort=False)}
    decoded = ds.decode(ds.items).to_pylist()
    ref = {
        str(user_ids[u]): ["[OOV]" if x is None else str(x) for x in decoded[ds.offsets[u] : ds.offsets[u + 1]]]
        for u in want
    }
    assert got == ref
    if ds.ratings is not None:
        assert df["rating"].astype("float32").tolist() == [
            r
            for u in sorted(want, key=lambda u: str(user_ids[u]))
            for r in ds.ratings[ds.offsets[u] : ds.offsets[u + 1]].tolist()
        ]


EXPORTS = ("sasrec", "seqlines", "recbole")


def test_exports_read_back(write, tmp_path):
    res = seqprep.build(write("r.csv", TIES_CSV), tmp_path / "ml", exports=EXPORTS)
    _check_all(tmp_path / "ml")
    assert (tmp_path / "ml" / "sasrec.txt").read_text().splitlines()[:4] == ["1 1", "1 3", "1 2", "1 2"]
    head = (tmp_path / "ml" / "ml.inter").read_text().splitlines()[:2]
    assert head == ["user_id:token\titem_id:token\trating:float\ttimestamp:float", "1\t7\t3\t10"]
    files = res.meta["outputs"]["files"]
    for name in ("sasrec.txt", "seqlines.txt", "ml.inter"):
        assert files[name]["sha256"] == hashlib.sha256((tmp_path / "ml" / name).read_bytes()).hexdigest()
    assert res.meta["outputs"]["exports"] == list(EXPORTS)


def test_recbole_without_ratings(write, tmp_path):
    seqprep.build(write("r.csv", "user,item,ts\na,x,1.5\na,y,1.25\n"), tmp_path / "d", exports=["recbole"])
    assert (
        tmp_path / "d" / "d.inter"
    ).read_text() == "user_id:token\titem_id:token\ttimestamp:float\na\ty\t1.25\na\tx\t1.5\n"


def test_exports_with_empty_users_and_oov(write, tmp_path):
    seqprep.build(write("old.csv", TIES_CSV), tmp_path / "old")
    seqprep.build(
        write("new.csv", NEXT_CSV), tmp_path / "new", vocab_from=str(tmp_path / "old"), unknown="oov", exports=EXPORTS
    )
    ds = seqprep.load(tmp_path / "new")
    assert 0 in ds.lengths.tolist()  # user 3 has an empty row and no line in any export
    _check_all(tmp_path / "new")


def test_recbole_rejects_ids_with_tabs(write, tmp_path):
    with pytest.raises(seqprep.OutputError, match=r"--export recbole: item id 'a\\tb' holds a tab or line break"):
        seqprep.build(write("r.jsonl", '{"user": 1, "item": "a\\tb", "ts": 1}\n'), tmp_path / "o", exports=["recbole"])
    assert not (tmp_path / "o").exists()


def test_exports_are_byte_identical_on_rerun(write, tmp_path):
    p = write("r.csv", TIES_CSV)
    for d in ("a", "b"):
        seqprep.build(p, tmp_path / d / "x", exports=EXPORTS)
    for name in ("sasrec.txt", "seqlines.txt", "x.inter"):
        assert (tmp_path / "a" / "x" / name).read_bytes() == (tmp_path / "b" / "x" / name).read_bytes()


row_st = st.tuples(
    st.one_of(st.integers(1, 6), st.sampled_from(["u1", "007"])),
    st.one_of(st.integers(1, 9), st.sampled_from(["x", "0042"])),
    st.integers(0, 4),
    st.sampled_from([1.0, 2.5, 0.1]),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=30))
def test_exports_round_trip_property(tmp_path_factory, rows):
    tmp = tmp_path_factory.mktemp("exp")
    (tmp / "log.csv").write_text("user,item,time,rating\n" + "".join(f"{u},{i},{t},{r}\n" for u, i, t, r in rows))
    seqprep.build(tmp / "log.csv", tmp / "out", exports=EXPORTS)
    _check_all(tmp / "out")
    meta = json.loads((tmp / "out" / "meta.json").read_text())
    assert set(meta["outputs"]["files"]) >= {"sasrec.txt", "seqlines.txt", "out.inter"}


@pytest.mark.real_data
def test_recbole_ml_100k_round_trip(tmp_path):
    """RecBole's own ml-100k.inter -> seqprep -> --export recbole gives back the same rows (text-identical),
    in seqprep's stable (user, time) order, and SASRec's reader gets every user's full sequence."""
    src = shared_file("ml-100k-recbole/ml-100k.inter")
    seqprep.build(src, tmp_path / "ml-100k", exports=("recbole", "sasrec"))
    ours = pd.read_csv(tmp_path / "ml-100k" / "ml-100k.inter", sep="\t", dtype=str)
    theirs = pd.read_csv(src, sep="\t", dtype=str)
    assert list(ours.columns) == list(theirs.columns)
    key = ["user_id:token", "timestamp:float"]
    theirs = theirs.sort_values(key, kind="stable", key=lambda c: c.astype(np.int64), ignore_index=True)
    assert ours.equals(theirs)
    _, user = sasrec_data_partition(tmp_path / "ml-100k" / "sasrec.txt")
    assert len(user) == 943 and sum(map(len, user.values())) == 100_000
