"""--preset: each preset against an independent statement of its script's rules (pandas, here),
on the real data in ../shared/data (skipped cleanly when absent); --explain, overrides, meta.json
and the engines that refuse the presets' options, on small logs of their own."""

from __future__ import annotations

import gzip
import json
import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from seqprep.errors import ConfigError
from tests.conftest import shared_file

FASHION = "amazon2018-fashion-5core/AMAZON_FASHION_5.json.gz"
DIGINETICA = "diginetica-sample/sample_train-item-views.csv"
MAGAZINE = "amazon2018-magazine-subscriptions/Magazine_Subscriptions.csv"  # item, user, rating, time; no header
BEAUTY = "published/bert4rec/beauty.txt"
ML100K = "ml-100k/u.data"
ML100K_RECBOLE = "ml-100k-recbole/ml-100k.inter"
CASER_TEST = "published/caser/ml1m_test_test.txt"
CASER_VALID = "published/caser/ml1m_validation_test.txt"
MAGAZINE_COLUMNS = {
    "names": ("item", "user", "rating", "ts"),
    "user_col": "user",
    "item_col": "item",
    "time_col": "ts",
    "rating_col": "rating",
}


# --------------------------------------------------------------------------------------------------
# Independent references: the scripts' rules as their docs/presets.md rows state them, in pandas


def sasrec_reference(path) -> str:
    """SASRec data/DataProcessing.py: counts over all rows (duplicates too), one pass of < 5 out,
    ids from 1 by first appearance among the kept rows in file order, each user's rows by time
    (stable), users in id order; the ``user item`` lines."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    df = pd.DataFrame(
        {"u": [r["reviewerID"] for r in rows], "i": [r["asin"] for r in rows], "t": [r["unixReviewTime"] for r in rows]}
    )
    kept = df[(df.u.map(df.u.value_counts()) >= 5) & (df.i.map(df.i.value_counts()) >= 5)].copy()
    kept["user"] = pd.factorize(kept.u)[0] + 1
    kept["item"] = pd.factorize(kept.i)[0] + 1
    kept["line"] = np.arange(len(kept))
    kept = kept.sort_values(["user", "t", "line"], kind="stable")
    return "".join(f"{u} {i}\n" for u, i in zip(kept.user, kept.item))


def srgnn_reference(path, test_days=7):
    """SR-GNN datasets/preprocess.py on the Diginetica layout -> (train sequences, test sequences,
    (train prefixes, labels), (test prefixes, labels), number of items)."""
    d = pd.read_csv(path, sep=";", dtype={"session_id": str, "item_id": str, "eventdate": str})
    d["line"] = np.arange(len(d))
    by_session = d.groupby("session_id", sort=False)
    date = (pd.to_datetime(by_session.eventdate.last()) - pd.Timestamp("1970-01-01")).dt.days  # the session's last line
    first = by_session.line.min()
    d = d.sort_values(["session_id", "timeframe", "line"], kind="stable")  # by timeframe alone, ties in file order
    d = d[d.groupby("session_id").item_id.transform("size") > 1]
    d = d[d.item_id.map(d.item_id.value_counts()) >= 5]
    d = d[d.groupby("session_id").item_id.transform("size") >= 2]
    sessions = pd.DataFrame({"date": date, "first": first}).loc[d.session_id.unique()]
    split = sessions.date.max() - test_days
    sessions = sessions.sort_values(["date", "first"], kind="stable")
    clicks = {k: g.item_id.tolist() for k, g in d.groupby("session_id", sort=False)}
    ids: dict[str, int] = {}
    train = []
    for s in sessions.index[sessions.date < split]:
        for item in clicks[s]:
            ids.setdefault(item, len(ids) + 1)
        train.append([ids[i] for i in clicks[s]])
    test = [q for s in sessions.index[sessions.date > split] if len(q := [ids[i] for i in clicks[s] if i in ids]) >= 2]

    def augment(seqs):
        pairs = [(q[:-k], q[-k]) for q in seqs for k in range(1, len(q))]
        return [p for p, _ in pairs], [y for _, y in pairs]

    return train, test, augment(train), augment(test), len(ids)


def bert4rec_reference(path) -> str:
    """The rules BERT4Rec's published data/beauty.txt shows: one row per (user, item) - the earliest in
    stable time order -, users with at least 5 of them (items not filtered), users numbered from 1 by
    first appearance, items from 1 by first appearance reading user by user, each in stable time order;
    the ``user item`` lines."""
    d = pd.read_csv(path, header=None, names=["i", "u", "r", "t"], dtype={"i": str, "u": str})
    d["line"] = np.arange(len(d))
    first = d.sort_values(["t", "line"], kind="stable").drop_duplicates(["u", "i"], keep="first")
    d = first.sort_values("line", kind="stable")
    kept = d[d.u.map(d.u.value_counts()) >= 5].copy()
    kept["user"] = pd.factorize(kept.u)[0] + 1
    kept = kept.sort_values(["user", "t", "line"], kind="stable")
    kept["item"] = pd.factorize(kept.i)[0] + 1
    return "".join(f"{u} {i}\n" for u, i in zip(kept.user, kept.item))


def caser_windows(users, items, L=5, T=3):
    """caser_pytorch interactions.py on a file's (user, item) lines in file order: ids by first
    appearance (users from 0, items from 1), rows grouped by user (a stable sort), windows of L + T
    from the newest back (step 1), a row shorter than L + T one left-padded window -> (inputs,
    targets, users) with each user's windows newest first, and the test sequences (the last L items)."""
    umap: dict = {}
    imap: dict = {}
    u = np.array([umap.setdefault(x, len(umap)) for x in users])
    i = np.array([imap.setdefault(x, len(imap)) for x in items]) + 1
    order = np.lexsort((u,))
    u, i = u[order], i[order]
    width = L + T
    xs, ys, us, tests = [], [], [], []
    for uid in range(len(umap)):
        seq = i[u == uid]
        wins = (
            [seq[k - width : k] for k in range(len(seq), width - 1, -1)]
            if len(seq) >= width
            else [np.pad(seq, (width - len(seq), 0))]
        )
        tests.append(wins[0][-L:])
        for w in wins:
            xs.append(w[:L])
            ys.append(w[-T:])
            us.append(uid)
    return np.array(xs), np.array(ys), np.array(us), np.array(tests), list(umap), list(imap)


def recbole_reference(d: pd.DataFrame, min_rating=None, k=0, max_len=50):
    """RecBole 1.2.1's sequential pipeline on an interaction table (user_id, item_id, rating, timestamp
    in file order): val_interval rating [min_rating, inf), k-core on users and items repeated until no
    row goes, ids remapped by pandas.factorize of the rows left (file order; 0 = [PAD]), rows sorted
    by (user, time) stably, every later position -> (user, previous max_len items, item), those rows
    sorted by time stably, and per user the last one test, the one before valid (only
    min(2, rows - 1) of them held out). -> (number of users, items, rows, train, valid, test)."""
    if min_rating is not None:
        d = d[d.rating >= min_rating]
    while k:
        bad = (d.user_id.map(d.user_id.value_counts()) < k) | (d.item_id.map(d.item_id.value_counts()) < k)
        if not bad.any():
            break
        d = d[~bad]
    uid = pd.factorize(d.user_id)[0] + 1
    iid = pd.factorize(d.item_id)[0] + 1
    t = d.timestamp.to_numpy(float)
    o = np.argsort(t, kind="stable")
    o = o[np.argsort(uid[o], kind="stable")]
    uid, iid, t = uid[o], iid[o], t[o]
    starts = np.r_[0, np.flatnonzero(np.diff(uid)) + 1]
    start_of = np.repeat(starts, np.diff(np.r_[starts, len(uid)]))
    later = np.flatnonzero(np.arange(len(uid)) != start_of)
    rows = [(int(uid[p]), tuple(iid[max(start_of[p], p - max_len) : p].tolist()), int(iid[p])) for p in later]
    rows = [rows[j] for j in np.argsort(t[later], kind="stable")]
    by_user: dict = {}
    for r in rows:
        by_user.setdefault(r[0], []).append(r)
    train, valid, test = [], [], []
    for rs in by_user.values():
        n = min(2, len(rs) - 1)
        train += rs[: len(rs) - n]
        valid += rs[len(rs) - 2 : len(rs) - 1] if n == 2 else []
        test += rs[len(rs) - 1 :] if n >= 1 else []
    return int(uid.max()), int(iid.max()), len(d), sorted(train), sorted(valid), sorted(test)


def recbole_inter(path) -> pd.DataFrame:
    d = pd.read_csv(path, sep="\t", dtype={"user_id:token": str, "item_id:token": str})
    return d.rename(columns=lambda c: c.split(":")[0])


def seqprep_rows(out, max_len=50):
    """seqprep's train/valid/test as RecBole's rows: (user_idx + 1, the previous max_len items, target);
    the training rows are every later position of each training sequence."""
    import pyarrow.parquet as pq

    tr = pq.read_table(out / "train.parquet").to_pydict()
    train = [
        (u + 1, tuple(items[max(0, j - max_len) : j]), items[j])
        for u, items in zip(tr["user_idx"], tr["items"])
        for j in range(1, len(items))
    ]
    held = []
    for part in ("valid", "test"):
        t = pq.read_table(out / f"{part}.parquet").to_pydict()
        held.append(
            sorted((u + 1, tuple(h[-max_len:]), y) for u, h, y in zip(t["user_idx"], t["history"], t["target"]))
        )
    return sorted(train), held[0], held[1]


# --------------------------------------------------------------------------------------------------
# The presets on real data


@pytest.mark.real_data
def test_sasrec_preset_equals_the_scripts_user_item_file(tmp_path):
    path = shared_file(FASHION)
    res = seqprep.build(path, tmp_path / "o", preset="sasrec")
    expected = sasrec_reference(path)
    assert (tmp_path / "o" / "sasrec.txt").read_text() == expected
    m = res.meta
    assert (m["num_users"], m["num_items"], m["num_interactions"]) == (405, 19, 3154)  # measured; = the reference's
    assert len(expected.splitlines()) == 3154
    assert m["preset"]["name"] == "sasrec" and m["preset"]["overridden"] == []
    assert [r["rows_removed"] for r in m["steps"][-1]["rounds"]] == [22]  # one pass only


@pytest.mark.real_data
def test_srgnn_preset_equals_the_scripts_pickles(tmp_path):
    path = shared_file(DIGINETICA)
    res = seqprep.build(path, tmp_path / "o", preset="srgnn")
    train, test, train_rows, test_rows, n_items = srgnn_reference(path)
    out = tmp_path / "o" / "srgnn"
    with open(out / "train.txt", "rb") as fh:
        got_train = pickle.load(fh)
    with open(out / "test.txt", "rb") as fh:
        got_test = pickle.load(fh)
    with open(out / "all_train_seq.txt", "rb") as fh:
        got_seqs = pickle.load(fh)
    assert got_seqs == train and got_train == tuple(train_rows) and got_test == tuple(test_rows)
    # the figures for this sample: 469 training sessions, 309 items, 1,205 and 99 prefix rows
    assert (len(got_seqs), n_items, len(got_train[0]), len(got_test[0])) == (469, 309, 1205, 99)
    m = res.meta
    assert m["num_items"] == 309
    assert m["split"]["sizes"]["train"]["users"] == 469 and m["split"]["sizes"]["test"]["rows"] == 99
    assert [p["on"] for p in m["steps"][1]["passes"]] == ["user", "item", "user"]


@pytest.mark.real_data
def test_the_published_beauty_file_shows_the_bert4rec_rules():
    """The facts docs/presets.md takes the bert4rec preset from, measured on BERT4Rec's data/beauty.txt."""
    d = pd.read_csv(shared_file(BEAUTY), sep=" ", header=None, names=["u", "i"])
    per_user = d.groupby("u").size()
    assert (len(d), len(per_user), d.i.nunique()) == (353962, 40226, 54542)
    assert per_user.min() == 5 and (d.i.value_counts() == 1).sum() == 14482  # users 5-core, items not
    assert not d.duplicated().any()  # one line per (user, item)
    assert (pd.factorize(d.u)[0] + 1 == d.u).all()  # users 1..U, in file order
    assert (pd.factorize(d.i)[0] + 1 == d.i).all()  # items by first appearance reading user by user


@pytest.mark.real_data
def test_bert4rec_preset_equals_the_rules_on_magazine_subscriptions(tmp_path):
    path = shared_file(MAGAZINE)
    res = seqprep.build(path, tmp_path / "o", preset="bert4rec", **MAGAZINE_COLUMNS)
    got = (tmp_path / "o" / "sasrec.txt").read_text()
    assert got == bert4rec_reference(path)
    m = res.meta
    assert (m["num_users"], m["num_items"], m["num_interactions"]) == (635, 943, 4567)  # measured; = the reference's
    lines = pd.read_csv(tmp_path / "o" / "sasrec.txt", sep=" ", header=None, names=["u", "i"])
    # the output shows what beauty.txt shows: users 5-core, items not, one line per pair, ids by first appearance
    assert lines.groupby("u").size().min() == 5 and (lines.i.value_counts() == 1).sum() == 448
    assert not lines.duplicated().any() and (pd.factorize(lines.i)[0] + 1 == lines.i).all()
    steps = {s["step"]: s for s in m["steps"]}
    assert steps["dedup"]["rows_removed"] == 1371  # the repeated (user, item) rows, before users are counted
    assert m["split"]["rule"] == "loo" and m["split"]["sizes"]["test"]["rows"] == 635


def ratio_cut(n, f_train, f_valid):
    """(train end, valid end) of a user of n interactions: ceil(n * TRAIN), ceil(n * (TRAIN + VALID)),
    in exact integers (fractions as tenths)."""
    return -((-n * f_train) // 10), -((-n * (f_train + f_valid)) // 10)


@pytest.mark.real_data
def test_caser_preset_equals_interactions_py_on_ml100k(tmp_path):
    """5-core, each user's first 70% (time order) as the train.txt Caser reads (users ascending),
    the next 10% valid, the last 20% test; interactions.py on that file: the same ids, the same
    windows (each user's in the opposite order), and its test sequences are the histories of the
    users' first valid rows; every valid/test target as cut, less those --vocab-from-train drops."""
    import pyarrow.parquet as pq

    d = pd.read_csv(shared_file(ML100K), sep="\t", header=None, names=["u", "i", "r", "t"])
    d["line"] = np.arange(len(d))
    while (bad := (d.u.map(d.u.value_counts()) < 5) | (d.i.map(d.i.value_counts()) < 5)).any():
        d = d[~bad]
    f = d.sort_values(["u", "t", "line"], kind="stable")
    k, n = f.groupby("u").cumcount().to_numpy(), f.u.map(f.u.value_counts()).to_numpy()
    a, b = ratio_cut(n, 7, 1)
    tr, va, te = f[k < a], f[(k >= a) & (k < b)], f[k >= b]
    xs, ys, us, tests, users, items = caser_windows(tr.u.tolist(), tr.i.tolist())
    res = seqprep.build(
        shared_file(ML100K), tmp_path / "o", preset="caser", formats=("npz", "parquet"), names=("user", "item", "rating", "ts")
    )
    assert res.users.ids.to_pylist() == users and res.items.ids.to_pylist() == items  # numbered on train.txt
    w = np.load(tmp_path / "o" / "windows.npz")
    for u in (0, 1, 500, len(users) - 1):  # each user's windows: seqprep oldest first, Caser newest first
        assert (w["inputs"][w["users"] == u][::-1] == xs[us == u]).all()
        assert (w["targets"][w["users"] == u][::-1] == ys[us == u]).all()
    order = np.lexsort((-np.arange(len(w["users"])), w["users"]))  # every user's windows newest first
    assert (w["inputs"][order] == xs).all() and (w["targets"][order] == ys).all() and (w["users"][order] == us).all()
    item_id = {x: j + 1 for j, x in enumerate(items)}
    for name, part in (("valid", va), ("test", te)):
        got = pq.read_table(tmp_path / "o" / f"{name}.parquet").to_pandas()
        kept = part[part.i.isin(item_id)]  # --vocab-from-train: items never in training leave
        assert got.target.tolist() == [item_id[x] for x in kept.i] and got.user_idx.tolist() == (kept.u - 1).tolist()
        if name == "valid":  # --max-len 5: a user's first valid history is interactions.py's test sequence
            first = got.groupby("user_idx").head(1)
            assert all(list(h) == list(s) for h, s in zip(first.history, tests))
    m = res.meta
    assert (m["num_users"], m["num_items"], m["windows"]["windows"]) == (943, 1348, 63317)  # measured; = the reference's
    assert (len(va), len(te), m["steps"][-1]["rows_removed"]) == (9872, 19497, 5)
    assert m["split"]["rule"] == "ratio" and m["windows"]["source"] == "train"


@pytest.mark.real_data
def test_caser_rules_on_its_own_ml1m_file_and_the_short_row_quirk(tmp_path):
    """Caser's test part read as the training file it has the layout of (time order = file order), no
    split: ids and windows as interactions.py makes them, except the users of T = 3 rows or fewer, to
    whom interactions.py gives one window of padding inputs and seqprep none."""
    c = pd.read_csv(shared_file(CASER_TEST), sep=" ", header=None, names=["user", "item", "rating"])
    c["line"] = np.arange(len(c))
    c.to_csv(tmp_path / "caser.csv", index=False)
    xs, ys, us, tests, users, items = caser_windows(c.user.tolist(), c.item.tolist())
    res = seqprep.build(
        tmp_path / "caser.csv",
        tmp_path / "o",
        preset="caser",
        time_col="line",
        min_user_count=0,
        min_item_count=0,
        split=None,
        vocab_from_train=False,
    )
    assert res.users.ids.to_pylist() == users and res.items.ids.to_pylist() == items
    short = (xs == 0).all(axis=1)  # rows of 3: inputs all padding
    assert short.sum() == res.meta["windows"]["users_too_short"] == 5
    w = np.load(tmp_path / "o" / "windows.npz")
    order = np.lexsort((-np.arange(len(w["users"])), w["users"]))
    assert (w["inputs"][order] == xs[~short]).all() and (w["targets"][order] == ys[~short]).all()
    assert (res.meta["num_users"], res.meta["num_items"], len(w["users"])) == (6040, 3401, 158746)


@pytest.mark.real_data
def test_caser_published_parts_fit_the_ratio_cut():
    """What Caser's published ML-1M parts can tell of the split (its train.txt files and ratings.dat
    are not here): per user the validation part (the 10%) and test part (the 20%) have sizes that
    --split ratio:0.7,0.1,0.2 gives for some n, for every one of the 6,040 users, and the n they
    allow add up to a range holding 999,611 (ML-1M's 5-core, as SASRec's ml-1m.txt has it). Other
    roundings fail: floor for 556 users (Python's int(0.7 * n)), round-half-up and RecBole's RS
    rule on the total or on users."""
    from seqprep.kernels.splits import ratio_parts

    t = pd.read_csv(shared_file(CASER_TEST), sep=" ", header=None, names=["u", "i", "r"]).groupby("u").size()
    v = pd.read_csv(shared_file(CASER_VALID), sep=" ", header=None, names=["u", "i", "r"]).groupby("u").size()
    assert len(t) == len(v) == 6040 and (t.min(), t.max(), v.min(), v.max()) == (3, 455, 2, 228)
    n = np.arange(1, 5000)
    part = ratio_parts(np.r_[0, np.cumsum(n)], (7, 8, 10))  # seqprep's kernel on users of 1..4999 interactions
    users = np.repeat(np.arange(len(n)), n)
    sizes = {
        "ratio": (np.bincount(users[part == 1], minlength=len(n)), np.bincount(users[part == 2], minlength=len(n))),
        "floor": ((n * 8) // 10 - (n * 7) // 10, n - (n * 8) // 10),
        "python_int": ((0.8 * n).astype(int) - (0.7 * n).astype(int), n - (0.8 * n).astype(int)),
        "round_half_up": ((16 * n + 10) // 20 - (14 * n + 10) // 20, n - (16 * n + 10) // 20),
        "recbole_rs": ((n * 1) // 10, (n * 2) // 10),
    }
    fits = {}
    for rule, (valid, test) in sizes.items():
        allowed = pd.DataFrame({"v": valid, "t": test, "n": n}).groupby(["v", "t"]).n.agg(["min", "max"])
        got = allowed.reindex(pd.MultiIndex.from_arrays([v.reindex(t.index).to_numpy(), t.to_numpy()]))
        fits[rule] = (int(got["min"].notna().sum()), got["min"].sum(), got["max"].sum())
    assert fits["ratio"] == (6040, 993608, 1005823) and 993608 <= 999611 <= 1005823
    assert fits["floor"][0] == 6040 - 618 and fits["python_int"][0] == 6040 - 556 and fits["recbole_rs"][0] == 3669
    assert fits["round_half_up"][0] == 6040 and fits["round_half_up"][2] == 994892 < 999611  # every user, not the total


@pytest.mark.real_data
def test_recbole_preset_gives_recboles_ml100k_statistics_and_rows(tmp_path):
    path = shared_file(ML100K_RECBOLE)
    res = seqprep.build(path, tmp_path / "o", preset="recbole")
    m = res.meta
    # RecBole's documented ml-100k statistics (docs/source/get_started/started/sequential.rst), [PAD] counted
    users, items, inters = m["num_users"] + 1, m["num_items"] + 1, m["num_interactions"]
    assert (users, items, inters) == (944, 1683, 100000)
    assert inters / (users - 1) == pytest.approx(106.04453870625663, rel=1e-15)
    assert inters / (items - 1) == pytest.approx(59.45303210463734, rel=1e-15)
    assert 100 * (1 - inters / users / items) == pytest.approx(93.70575143257098, rel=1e-15)
    n_users, n_items, n_rows, train, valid, test = recbole_reference(recbole_inter(path))
    assert (n_users, n_items, n_rows) == (943, 1682, 100000)
    assert seqprep_rows(tmp_path / "o") == (train, valid, test)  # same ids, order, histories of 50, split
    assert (len(train), len(valid), len(test)) == (97171, 943, 943)


@pytest.mark.real_data
def test_recbole_preset_with_the_ml1m_filters(tmp_path):
    """RecBole's ml-1m benchmark config (val_interval rating [3,inf), 10-core) as overrides, on ml-100k."""
    path = shared_file(ML100K_RECBOLE)
    res = seqprep.build(path, tmp_path / "o", preset="recbole", min_rating=3, min_user_count=10, min_item_count=10)
    n_users, n_items, n_rows, train, valid, test = recbole_reference(recbole_inter(path), min_rating=3, k=10)
    assert (
        (res.meta["num_users"], res.meta["num_items"], res.meta["num_interactions"])
        == (n_users, n_items, n_rows)
        == (939, 1016, 80393)
    )
    assert seqprep_rows(tmp_path / "o") == (train, valid, test)


@pytest.mark.real_data
def test_recbole_preset_equals_recbole_on_every_row_users_of_three_included(tmp_path):
    """RecBole holds out min(2, rows - 1) of a user's n - 1 augmented rows: with 3 interactions one
    test row and no valid row (``--split loo:recbole``). On Magazine Subscriptions (many short users,
    no filter) every training, valid and test row is RecBole's."""
    path = shared_file(MAGAZINE)
    d = pd.read_csv(
        path, header=None, names=["item_id", "user_id", "rating", "timestamp"], dtype={"item_id": str, "user_id": str}
    )
    res = seqprep.build(path, tmp_path / "o", preset="recbole", **MAGAZINE_COLUMNS)
    *_, train, valid, test = recbole_reference(d)
    assert res.meta["num_interactions"] == len(d)  # the preset filters nothing
    assert seqprep_rows(tmp_path / "o") == (train, valid, test)
    assert (len(train), len(valid), len(test)) == (13219, 1280, 3092)  # measured; = the reference's
    per_user = d.user_id.value_counts()
    split = res.meta["split"]
    assert split["variant"] == "recbole" and split["test_only_users"] == (per_user == 3).sum() == 1812
    assert split["train_only_users"] == (per_user < 3).sum()
    # with --split loo instead, exactly the users of 3 differ: their second row is valid, not training
    seqprep.build(path, tmp_path / "loo", preset="recbole", split="loo", **MAGAZINE_COLUMNS)
    got_train, got_valid, got_test = seqprep_rows(tmp_path / "loo")
    extra = Counter(got_valid) - Counter(valid)
    assert got_test == test and Counter(train) - Counter(got_train) == extra and extra.total() == 1812


@pytest.mark.real_data
def test_srgnn_preset_with_an_override_changes_that_rule_only(tmp_path):
    path = shared_file(DIGINETICA)
    res = seqprep.build(path, None, preset="srgnn", split="days:14")
    assert res.meta["split"]["test_days"] == 14
    assert res.config.item_order == "sequence" and res.config.filter.kcore_passes == ("user", "item", "user")


# --------------------------------------------------------------------------------------------------
# --preset, --explain, overrides and meta.json on a small log of its own


def _log(tmp_path):
    lines = ["user_id,item_id,timestamp"] + [
        f"u{u},i{(u * 7 + k) % 6},{1000 + 10 * k}" for u in range(8) for k in range(6)
    ]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_explain_prints_the_flags_and_builds_nothing(tmp_path):
    r = CliRunner().invoke(
        cli,
        [
            "build",
            str(_log(tmp_path)),
            "-o",
            str(tmp_path / "o"),
            "--preset",
            "sasrec",
            "--explain",
            "--min-user-count",
            "10",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (
        "expands to: --min-user-count 5 --min-item-count 5 --kcore-rounds 1 --dedup none --user-order first-seen --item-order first-seen --export sasrec"
        in r.output
    )
    assert "overridden on the command line: --min-user-count 10" in r.output
    assert "nothing was built" in r.output
    assert not (tmp_path / "o").exists()


def test_explain_needs_no_input_and_explain_alone_says_what_it_needs():
    r = CliRunner().invoke(cli, ["build", "--preset", "srgnn", "--explain"])
    assert r.exit_code == 0 and "--kcore-passes user,item,user" in r.output and "--split days:7" in r.output
    r = CliRunner().invoke(cli, ["build", "--explain"])
    assert (
        r.exit_code == 1
        and r.stderr.strip()
        == "Error: --explain prints what --preset NAME expands to; add --preset bert4rec|caser|recbole|sasrec|srgnn"
    )


def test_build_without_input_or_output_is_one_line():
    r = CliRunner().invoke(cli, ["build", "-o", "x"])
    assert r.exit_code == 1 and r.stderr == "Error: no input given; pass one or more log files (or - for stdin)\n"
    r = CliRunner().invoke(cli, ["build", "log.csv"])
    assert r.exit_code == 1 and r.stderr == "Error: no output folder given; pass -o OUT\n"


def test_cli_flags_override_the_preset_and_meta_records_both(tmp_path):
    out = tmp_path / "o"
    r = CliRunner().invoke(
        cli, ["build", str(_log(tmp_path)), "-o", str(out), "--preset", "sasrec", "--min-item-count", "2", "-q"]
    )
    assert r.exit_code == 0, r.output
    m = json.loads((out / "meta.json").read_text())
    assert m["options"]["preset"] == "sasrec"
    assert m["options"]["filter"]["min_item_count"] == 2 and m["options"]["filter"]["min_user_count"] == 5
    assert m["preset"]["overridden"] == ["--min-item-count", "2"]
    assert (out / "sasrec.txt").is_file()


def test_an_explicit_default_value_still_overrides(tmp_path):
    """--dedup none is sasrec's value; --item-order frequency (the default) given explicitly wins."""
    res = CliRunner().invoke(
        cli,
        [
            "build",
            str(_log(tmp_path)),
            "-o",
            str(tmp_path / "o"),
            "--preset",
            "sasrec",
            "--item-order",
            "frequency",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert m["item_order"] == "frequency" and m["preset"]["overridden"] == ["--item-order", "frequency"]


def test_unknown_preset_names_the_presets(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"^--preset 'gru4rec' is not a preset; presets are bert4rec, caser, recbole, sasrec, srgnn \(see docs/presets.md\)$",
    ):
        seqprep.build(_log(tmp_path), None, preset="gru4rec")


def test_preset_rules_run_on_dask_as_locally(tmp_path):
    """--preset caser (--vocab-from-train) with a time feature, refused on Dask until issue 18, runs
    there with the local engine's vocabularies and steps (every byte: tests/test_dask_options.py)."""
    pytest.importorskip("distributed")
    options = dict(preset="caser", time_features=("delta-log2",))
    local = seqprep.build(_log(tmp_path), tmp_path / "l", **options)
    dask = seqprep.build(_log(tmp_path), tmp_path / "d", engine="dask", **options)
    assert dask.meta["steps"] == local.meta["steps"] and dask.meta["features"] == local.meta["features"]
    assert dask.meta["features"]["delta_log2"]["fit"] == "train"
    assert (tmp_path / "d" / "features" / "delta_log2.parquet").read_bytes() == (tmp_path / "l" / "features" / "delta_log2.parquet").read_bytes()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"kcore_passes": "user,session", "min_user_count": 2},
            "--kcore-passes 'user,session': each pass is user or item, e.g. --kcore-passes user,item,user",
        ),
        (
            {"kcore_passes": "user", "min_user_count": 2, "kcore_rounds": 1},
            "--kcore-passes and --kcore-rounds both set how k-core repeats; pass only one of them",
        ),
        (
            {"kcore_passes": "user"},
            "--kcore-passes needs --min-user-count or --min-item-count above 1; add one, or drop --kcore-passes",
        ),
        (
            {"split": "days:1.5"},
            "--split 'days:1.5': give the test days as one whole number >= 1, as in --split days:7",
        ),
        (
            {"vocab_from": "old/", "user_order": "date"},
            "--user-order date orders a vocabulary fitted here, and --vocab-from reuses one (new ids are appended by frequency, first-seen or id); drop one of them",
        ),
        (
            {"exports": ("srgnn",)},
            "--export srgnn writes every prefix of the training and test sequences of a date split; add --split days:N",
        ),
    ],
)
def test_option_errors(tmp_path, options, message):
    with pytest.raises(ConfigError) as e:
        seqprep.build(_log(tmp_path), tmp_path / "o", **options)
    assert str(e.value) == message


# --------------------------------------------------------------------------------------------------
# The general options behind srgnn, on a log whose answers are worked out by hand


def test_date_order_days_split_and_sequence_item_order(tmp_path):
    day = 86400
    rows = [
        # session, item, time: s3 is written first but dated later; s1 and s2 share a day (file order)
        ("s3", "c", 9 * day + 5),
        ("s3", "a", 9 * day + 1),
        ("s1", "b", 1 * day),
        ("s1", "a", 1 * day + 2),
        ("s2", "a", 1 * day + 9),
        ("s2", "c", 1 * day + 10),
        ("s4", "b", 8 * day),
        ("s4", "d", 8 * day + 1),  # the boundary day 9 - 1: in neither part
        ("s5", "a", 3 * day),
        ("s5", "d", 3 * day + 1),
    ]
    path = tmp_path / "s.csv"
    path.write_text("session_id,item_id,timestamp\n" + "".join(f"{s},{i},{t}\n" for s, i, t in rows))
    res = seqprep.build(
        path,
        tmp_path / "o",
        user_col="session_id",
        user_order="date",
        item_order="sequence",
        split="days:1",
        vocab_from_train=True,
        exports=("srgnn",),
    )
    assert res.users.ids.to_pylist() == ["s1", "s2", "s5", "s4", "s3"]
    assert res.items.ids.to_pylist() == ["b", "a", "c", "d"]  # first appearance in s1, s2, s5 (training)
    split = res.meta["split"]
    assert (split["train_sequences"], split["boundary_sequences"], split["test_sequences"]) == (3, 1, 1)
    assert (split["last_day"], split["boundary_day"]) == ("1970-01-10", "1970-01-09")
    with open(tmp_path / "o" / "srgnn" / "test.txt", "rb") as fh:
        assert pickle.load(fh) == ([[2]], [3])  # s3 in time order: a then c
    with open(tmp_path / "o" / "srgnn" / "train.txt", "rb") as fh:
        assert pickle.load(fh) == ([[1], [2], [2]], [2, 3, 4])


@pytest.mark.parametrize("name", ["bert4rec", "caser", "recbole", "sasrec"])
def test_a_preset_is_its_flags(tmp_path, name):
    """``--preset NAME`` and the flags --explain prints build the same bytes (meta.json aside from the
    preset's own record)."""
    from seqprep.presets import flags, preset_named

    log = _log(tmp_path)
    runs = {"preset": ["--preset", name], "flags": flags(preset_named(name).options)}
    metas = {}
    for key, args in runs.items():
        r = CliRunner().invoke(cli, ["build", str(log), "-o", str(tmp_path / key), "-f", "npz", "-q", *args])
        assert r.exit_code == 0, r.output
        metas[key] = json.loads((tmp_path / key / "meta.json").read_text())
    assert metas["preset"].pop("preset")["name"] == name
    metas["preset"]["options"].pop("preset")
    for m in metas.values():
        m["options"].pop("output")
    assert metas["preset"]["options"] == metas["flags"]["options"]
    for f in sorted(p.name for p in (tmp_path / "flags").iterdir() if p.name != "meta.json"):
        assert (tmp_path / "preset" / f).read_bytes() == (tmp_path / "flags" / f).read_bytes(), f


def test_a_presets_split_and_vocab_from_train_turn_off_on_the_command_line(tmp_path):
    """``--split none`` and ``--no-vocab-from-train`` override a preset's split and training fit, and
    meta.json (and ``--explain``) record them as overridden."""
    out = tmp_path / "out"
    args = ["build", str(_log(tmp_path)), "--preset", "caser", "--min-user-count", "2", "--min-item-count", "2"]
    r = CliRunner().invoke(cli, [*args, "--split", "none", "--no-vocab-from-train", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["options"]["split"]["split"] is None and meta["options"]["split"]["vocab_from_train"] is False
    assert "split" not in meta and not (out / "train.parquet").exists() and (out / "windows.npz").exists()
    assert meta["preset"]["overridden"][-3:] == ["--split", "none", "--no-vocab-from-train"]
    r = CliRunner().invoke(cli, [*args, "--no-vocab-from-train", "--split", "none", "--explain"])
    assert r.exit_code == 0 and "overridden on the command line: --min-user-count 2 --min-item-count 2 --no-vocab-from-train --split none" in r.output, r.output
    kept = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "kept"), "-q"])  # without them, the preset's split
    assert kept.exit_code == 0, kept.output
    assert json.loads((tmp_path / "kept" / "meta.json").read_text())["split"]["rule"] == "ratio"
