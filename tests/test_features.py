"""`--feature` / `--time-feature`: features aligned with the items, against independent pandas encodings."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyarrow import ipc

import seqprep
from seqprep.cli import cli
from seqprep.kernels import sequences as sequence_kernels
from seqprep.model import Feature
from seqprep.output import files

LOG = """userId,movieId,rating,timestamp,genre,price,tags
1,5,4,1500000010,Action,3.5,a|b
2,6,3,1500000011,,2,
1,7,2,1500003612,"Drama, War",1,c||a
1,5,4,1500000009,Action,3,b
2,7,1,1500090020,Drama,,a
3,5,5,1500000010,Drama,4,b|a
"""


def _reference(df: pd.DataFrame, col: str, order: str = "frequency") -> dict:
    """value -> index 1..K as the documented rule says (frequency: count desc, then value asc)."""
    counts = df[col].dropna().value_counts()
    if order == "frequency":
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    elif order == "id":
        ranked = sorted(counts.items())
    else:  # first-seen
        ranked = [(v, counts[v]) for v in pd.unique(df[col].dropna())]
    return {v: k + 1 for k, (v, _) in enumerate(ranked)}


def _sorted_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows in the build's order: users by id, then a stable sort by timestamp."""
    df = df.reset_index(drop=True).assign(_row=np.arange(len(df)))
    return df.sort_values(["userId", "timestamp", "_row"], kind="stable")


def test_cat_num_tokens_match_pandas(write, tmp_path):
    log = write("log.csv", LOG)
    res = seqprep.build(log, tmp_path / "out", features=("genre", "price", "tags:tokens:|"), formats=("parquet", "npz"))
    df = pd.read_csv(log)
    rows = _sorted_rows(df)
    table = pq.read_table(tmp_path / "out" / "sequences.parquet").to_pydict()
    genre = _reference(df, "genre")
    want_genre = [[genre.get(v, 0) if isinstance(v, str) else 0 for v in g["genre"]] for _, g in rows.groupby("userId", sort=True)]
    assert table["genre"] == want_genre
    want_price = [g["price"].astype("float32").tolist() for _, g in rows.groupby("userId", sort=True)]
    got_price = table["price"]
    assert [[None if math.isnan(x) else x for x in u] for u in got_price] == [
        [None if math.isnan(x) else x for x in u] for u in want_price
    ]
    tokens = df["tags"].dropna().str.split("|").explode().str.strip()
    tokens = tokens[tokens != ""]
    tok = {v: k + 1 for k, (v, _) in enumerate(sorted(tokens.value_counts().items(), key=lambda kv: (-kv[1], kv[0])))}

    def lists(v):
        return [] if not isinstance(v, str) else [tok[t.strip()] for t in v.split("|") if t.strip()]

    assert table["tags"] == [[lists(v) for v in g["tags"]] for _, g in rows.groupby("userId", sort=True)]
    meta = res.meta["features"]
    assert meta["genre"]["num_embeddings"] == len(genre) + 1 and meta["genre"]["missing"] == 1
    assert meta["tags"]["empty_tokens"] == 1 and meta["tags"]["missing"] == 1
    assert meta["price"]["kind"] == "num" and meta["price"]["missing"] == 1
    vocab = pq.read_table(tmp_path / "out" / "features" / "genre.parquet").to_pydict()
    assert vocab["value"] == list(genre) and vocab["index"] == list(genre.values())
    with np.load(tmp_path / "out" / "sequences.npz") as z:
        assert z["genre"].tolist() == sum(want_genre, [])
        assert z["tags_offsets"][-1] == len(z["tags"])


@pytest.mark.parametrize("order", ["frequency", "first-seen", "id"])
def test_vocabulary_order_follows_item_order(write, tmp_path, order):
    log = write("log.csv", LOG)
    seqprep.build(log, tmp_path / "out", features="genre", item_order=order)
    vocab = pq.read_table(tmp_path / "out" / "features" / "genre.parquet").to_pydict()
    kept = pd.read_csv(log)
    assert dict(zip(vocab["value"], vocab["index"])) == _reference(kept, "genre", order)


@pytest.mark.parametrize("memory_limit", [None, "64MB"])
def test_item_order_sequence_numbers_feature_values_by_first_appearance(write, tmp_path, memory_limit):
    """--item-order sequence (the presets' order) used to crash with a feature: a --feature's values
    are numbered first-seen in input order, a --time-feature's first-seen in the written sequences."""
    log = write("log.csv", LOG)
    out = tmp_path / "out"
    seqprep.build(
        log, out, features=("genre", "tags:tokens:|"), time_features="delta-log2", item_order="sequence", memory_limit=memory_limit
    )
    df = pd.read_csv(log)
    vocab = pq.read_table(out / "features" / "genre.parquet").to_pydict()
    assert dict(zip(vocab["value"], vocab["index"])) == _reference(df, "genre", "first-seen")
    table = pq.read_table(out / "sequences.parquet").to_pydict()
    seen: list[int] = []  # delta_log2 buckets in the order the written sequences show them
    for bucket in sum(table["delta_log2"], []):
        if bucket and bucket not in seen:
            seen.append(bucket)
    assert seen == list(range(1, len(seen) + 1))
    items: list[int] = []
    for item in sum(table["items"], []):
        if item not in items:
            items.append(item)
    assert items == list(range(1, len(items) + 1))  # the items themselves: by the written sequences


def test_default_kinds(write, tmp_path):
    log = write("log.csv", LOG)
    res = seqprep.build(log, write=False, features=("genre", "price", "rating"))
    kinds = {k: v["kind"] for k, v in res.meta["features"].items()}
    assert kinds == {"genre": "cat", "price": "num", "rating": "num"}


def test_features_follow_the_cleaning_steps(write, tmp_path):
    """Rows removed by a step take their feature values with them; vocabularies count kept rows only."""
    log = write("log.csv", LOG)
    res = seqprep.build(log, tmp_path / "out", features="genre", min_rating=3)
    df = pd.read_csv(log)
    kept = df[df["rating"] >= 3]
    vocab = pq.read_table(tmp_path / "out" / "features" / "genre.parquet").to_pydict()
    assert dict(zip(vocab["value"], vocab["count"])) == kept["genre"].value_counts().to_dict()
    assert res.meta["features"]["genre"]["missing"] == int(kept["genre"].isna().sum())


def test_streamed_sequences_file_equals_a_whole_write(write, tmp_path, monkeypatch):
    """sequences.parquet written during the sort (row group by row group) holds the features too, byte
    for byte as when written from the finished sequences."""
    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 2)
    log = write("log.csv", LOG)
    res = seqprep.build(log, tmp_path / "out", features=("genre", "price"))
    files.write_sequences(res.users, res.sequences, tmp_path / "whole.parquet")
    assert (tmp_path / "out" / "sequences.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def test_byte_identical_reruns(write, tmp_path):
    log = write("log.csv", LOG)
    opts = {"features": ("genre", "tags:tokens:|", "price"), "time_features": ("delta", "hour"), "formats": ("parquet", "npz")}
    seqprep.build(log, tmp_path / "a", **opts)
    seqprep.build(log, tmp_path / "b", **opts, threads=1)
    for p in sorted((tmp_path / "a").rglob("*")):
        if p.is_file() and p.name != "meta.json":
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes(), p.name


def test_time_features(write, tmp_path):
    log = write("log.csv", LOG)
    res = seqprep.build(log, write=False, time_features=("delta", "delta-log2", "hour", "weekday", "interval:4"))
    seqs = res.sequences
    feats = {f.name: f for f in seqs.features}
    rows = _sorted_rows(pd.read_csv(log))
    gap = rows.groupby("userId")["timestamp"].diff().fillna(0).to_numpy()
    assert np.array_equal(feats["delta"].values, gap.astype(np.float32))
    hours = pd.to_datetime(rows["timestamp"], unit="s", utc=True).dt.hour.to_numpy()
    assert np.array_equal(feats["hour"].vocab.ids.to_numpy()[feats["hour"].values - 1], hours)
    days = pd.to_datetime(rows["timestamp"], unit="s", utc=True).dt.day_of_week.to_numpy()
    assert np.array_equal(feats["weekday"].vocab.ids.to_numpy()[feats["weekday"].values - 1], days)
    assert set(res.meta["features"]) == {"delta", "delta_log2", "hour", "weekday", "interval"}


def test_json_lines_nested_fields_and_bools(write, tmp_path):
    lines = [
        {"reviewerID": "u1", "asin": "a", "overall": 5, "unixReviewTime": 10, "style": {"Color": "red", "Size": "M"}, "verified": True},
        {"reviewerID": "u2", "asin": "b", "overall": 4, "unixReviewTime": 11, "verified": False},
        {"reviewerID": "u2", "asin": "a", "overall": 4, "unixReviewTime": 12, "style": {"Size": "L"}, "verified": True},
    ]
    log = write("r.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    res = seqprep.build(log, tmp_path / "out", features=("style.Color", "style.Size", "verified"))
    table = pq.read_table(tmp_path / "out" / "sequences.parquet").to_pydict()
    assert table["style.Color"] == [[1], [0, 0]]
    values = pq.read_table(tmp_path / "out" / "features" / "verified.parquet").to_pydict()["value"]
    assert values == ["true", "false"]  # 2 true, 1 false
    assert res.meta["features"]["style.Size"]["values"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--feature", "colour"], "column 'colour' (--feature) not found; columns are userId, movieId, rating, timestamp, genre, price, tags"),
        (["--feature", "genre:num"], "line 2: --feature genre: 'Action' is not a number; fix the row, or read the column as categories (genre:cat)"),
        (["--feature", "items:cat"], "feature name 'items' is a column seqprep writes already"),
        (["--feature", "genre:tokens"], "tokens needs its separator, e.g. --feature genre:tokens:|"),
        (["--feature", "genre", "--feature", "genre:cat"], "feature 'genre' is given twice"),
        (["--time-feature", "minute"], "--time-feature 'minute' is not a time feature"),
    ],
)
def test_bad_feature_options(write, tmp_path, args, message):
    log = write("log.csv", LOG)
    r = CliRunner().invoke(cli, ["build", str(log), "-o", str(tmp_path / "out"), *args])
    assert r.exit_code == 1 and message in r.output, r.output
    assert not (tmp_path / "out").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(0, 5), st.one_of(st.none(), st.sampled_from(["x", "y", "z", "007", "7"]))),
        min_size=1,
        max_size=40,
    )
)
def test_random_logs_cat_feature_matches_pandas(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("f")
    text = "user,item,timestamp,kind\n" + "".join(f"{u},{i},{t},{'' if k is None else k}\n" for u, i, t, k in rows)
    (folder / "log.csv").write_text(text)
    res = seqprep.build(folder / "log.csv", write=False, features="kind:cat")
    df = pd.read_csv(folder / "log.csv", dtype={"kind": str}, keep_default_na=False, na_values=[""])
    ref = _reference(df, "kind")
    df = df.reset_index(drop=True).assign(_row=np.arange(len(df))).sort_values(["user", "timestamp", "_row"], kind="stable")
    want = [ref.get(v, 0) if isinstance(v, str) else 0 for v in df["kind"]]
    got = res.sequences.features[0]
    assert got.values.tolist() == want
    assert got.vocab.ids.to_pylist() == list(ref)


# --------------------------------------------------------------------------------------------------
# Everywhere the items go, the features go: every output, checked cell by cell against the log.
#
# The log carries a `key` column (its row number from 1), kept as a num feature: in any output, the
# key at a position names the log row that position holds (0.0 = a padding cell), so every feature
# there must be that row's value, encoded as an independent pandas computation says.

KEYED = ("key:num", "genre:cat", "price:num", "tags:tokens:|")


def _keyed_log(seed: int = 3, users: int = 9) -> str:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, users + 1):
        for _ in range(int(rng.integers(1, 8))):
            genre = rng.choice(["Action", "Drama", "", "Drama, War", "Comedy"])
            price = "" if rng.random() < 0.15 else f"{rng.integers(1, 40) / 4}"
            tags = rng.choice(["a|b", "", "c||a", "b", " d |a", "b|b"])
            rows.append((u, int(rng.integers(1, 12)), int(rng.integers(0, 5)) * 3600 + 1_500_000_000, genre, price, tags))
    text = "userId,movieId,timestamp,key,genre,price,tags\n"
    for k, (u, i, t, g, p, tg) in enumerate(rows, 1):
        text += f'{u},{i},{t},{k},"{g}",{p},{tg}\n'
    return text


class _Reference:
    """Per log row (by key): item id and the feature values, read with pandas."""

    def __init__(self, path: Path) -> None:
        df = pd.read_csv(path, dtype={"genre": str, "tags": str}, keep_default_na=False, na_values={"genre": [""], "price": [""], "tags": [""]})
        self.df = df.set_index("key")
        self.hour = dict(zip(df["key"], pd.to_datetime(df["timestamp"], unit="s", utc=True).dt.hour))

    def tags(self, key: int) -> list[str]:
        v = self.df.at[key, "tags"]
        return [] if not isinstance(v, str) else [t.strip() for t in v.split("|") if t.strip()]

    def check(self, where: str, keys, items, feats: dict, vocabs: dict) -> int:
        """Every cell: the row's item and feature values, or padding everywhere when the key is 0."""
        keys = np.asarray(keys, dtype=np.float64)
        n = 0
        for c, key in enumerate(keys):
            key = int(key)
            cell = {name: values[c] for name, values in feats.items()}
            if key == 0:
                assert (items is None or items[c] == 0) and all(_is_pad(v) for v in cell.values()), (where, c, cell)
                continue
            row = self.df.loc[key]
            if items is not None:
                assert vocabs["item"][int(items[c])] == row["movieId"], (where, c)
            for name, v in cell.items():
                if name == "genre":
                    want = row["genre"] if isinstance(row["genre"], str) else None
                    assert (None if v == 0 else vocabs["genre"][int(v)]) == want, (where, c, v, want)
                elif name == "price":
                    want = np.float32(row["price"])
                    assert (np.isnan(v) and np.isnan(want)) or v == want, (where, c, v, want)
                elif name == "tags":
                    assert [vocabs["tags"][int(t)] for t in v] == self.tags(key), (where, c, v)
                elif name == "hour":
                    assert vocabs["hour"][int(v)] == self.hour[key], (where, c)
            n += 1
        return n


def _is_pad(v) -> bool:
    if isinstance(v, (list, np.ndarray)):
        return len(v) == 0
    return v == 0


def _vocabs(out: Path) -> dict:
    items = pq.read_table(out / "items.parquet").to_pydict()
    vocabs = {"item": dict(zip(items["item_idx"], items["item_id"]))}
    for f in (out / "features").glob("*.parquet"):
        t = pq.read_table(f).to_pydict()
        vocabs[f.stem] = dict(zip(t["index"], t["value"]))
    return vocabs


def _cells(offsets, values) -> list:
    """CSR -> a list of arrays (one per row or cell)."""
    return [values[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]


def _flat(col) -> list:
    """A list column -> its elements, flattened one level (token lists stay lists)."""
    return [x for row in col for x in row]


def _npz_views(z, prefix: str, items_key: str, names, width: int | None = None) -> tuple:
    feats = {}
    for name in names:
        key = f"{prefix}{name}"
        if f"{key}_offsets" in z.files:
            feats[name] = _cells(z[f"{key}_offsets"], z[key])
        else:
            feats[name] = z[key].reshape(-1)
    keys = z[f"{prefix}key"].reshape(-1)
    items = None if items_key is None else z[items_key].reshape(-1)
    return keys, items, feats


NAMES = ("genre", "price", "tags", "hour")


def _all_views(out: Path) -> dict:
    """output name -> (keys, items, features) for every place a feature is written."""
    v: dict = {}
    t = pq.read_table(out / "sequences.parquet").to_pydict()
    v["sequences.parquet"] = (_flat(t["key"]), _flat(t["items"]), {n: _flat(t[n]) for n in NAMES})
    with np.load(out / "sequences.npz") as z:
        v["sequences.npz"] = _npz_views(z, "", "items", NAMES)
        v["sequences.npz padded"] = _npz_views(z, "padded_", "padded", NAMES)
    t = pq.read_table(out / "train.parquet").to_pydict()
    v["train.parquet"] = (_flat(t["key"]), _flat(t["items"]), {n: _flat(t[n]) for n in NAMES})
    with np.load(out / "train.npz") as z:
        v["train.npz"] = _npz_views(z, "", "items", NAMES)
        v["train.npz padded"] = _npz_views(z, "padded_", "padded", NAMES)
    for part in ("valid", "test"):
        t = pq.read_table(out / f"{part}.parquet").to_pydict()
        v[f"{part}.parquet history"] = (_flat(t["history_key"]), _flat(t["history"]), {n: _flat(t[f"history_{n}"]) for n in NAMES})
        v[f"{part}.parquet target"] = (t["target_key"], t["target"], {n: t[f"target_{n}"] for n in NAMES})
        with np.load(out / f"{part}.npz") as z:
            v[f"{part}.npz history"] = _npz_views(z, "history_", "history", NAMES)
            v[f"{part}.npz history_padded"] = _npz_views(z, "history_padded_", "history_padded", NAMES)
            v[f"{part}.npz target"] = _npz_views(z, "target_", "target", NAMES)
    with np.load(out / "windows.npz") as z:
        v["windows.npz inputs"] = _npz_views(z, "inputs_", "inputs", NAMES)
        v["windows.npz targets"] = _npz_views(z, "targets_", "targets", NAMES)
    return v


@pytest.mark.parametrize("truncate", [False, True])
def test_every_output_carries_the_features_aligned_with_the_items(write, tmp_path, truncate):
    log = write("log.csv", _keyed_log())
    out = tmp_path / "out"
    seqprep.build(
        log, out, features=KEYED, time_features=("hour",), formats=("parquet", "npz"),
        split="loo", max_len=3, truncate=truncate, windows="2:1",
    )
    ref, vocabs = _Reference(log), _vocabs(out)
    views = _all_views(out)
    for name, (keys, items, feats) in views.items():
        for f, values in feats.items():
            assert len(values) == len(keys), (name, f)
        ref.check(name, keys, items, feats, vocabs)
    # the cells really cover the log: every kept row appears in the sequences, padding where it should
    n = len(pd.read_csv(log))
    seq_keys = np.asarray(views["sequences.npz"][0])
    assert sorted(seq_keys.astype(int)) == (list(range(1, n + 1)) if not truncate else sorted(seq_keys.astype(int)))
    assert (np.asarray(views["windows.npz inputs"][0]) == 0).any()  # a short user's window is left-padded
    assert (np.asarray(views["sequences.npz padded"][0]) == 0).any()
    report = seqprep.verify(out)
    assert report.ok, report.problems


def test_streams_and_load_carry_the_features(write, tmp_path):
    log = write("log.csv", _keyed_log())
    ref = _Reference(log)
    opts = {"features": KEYED, "time_features": ("hour",)}
    seqprep.build(log, tmp_path / "p", **opts)
    seqprep.build(log, tmp_path / "z", formats=("npz",), **opts)
    vocabs = _vocabs(tmp_path / "p")
    assert vocabs == _vocabs(tmp_path / "z")
    for layout in ("p", "z"):
        ds = seqprep.load(tmp_path / layout)
        assert set(ds.features) == {"key", *NAMES}
        tags = ds.feature("tags")
        feats = {"genre": ds.feature("genre"), "price": ds.feature("price"), "hour": ds.feature("hour"), "tags": [tags[k] for k in range(len(tags))]}
        ref.check(f"load {layout}", ds.feature("key"), ds.items, feats, vocabs)
        assert ds.decode_feature("genre", [0, 1]).to_pylist() == [None, vocabs["genre"][1]]
        assert ds.feature_vocab("tags").ids.to_pylist() == [vocabs["tags"][k] for k in sorted(vocabs["tags"])]
        padded = ds.padded_feature("genre", 4)
        assert padded.shape == (ds.num_users, 4) and padded.dtype == np.int32
        with pytest.raises(KeyError, match="this dataset has no feature 'colour'; its features: "):
            ds.feature("colour")
        with pytest.raises(KeyError, match="feature 'price' is num"):
            ds.feature_vocab("price")
        with pytest.raises(ValueError, match="holds token lists"):
            ds.padded_feature("tags", 4)
    buf = io.BytesIO()
    seqprep.build(log, "-", stdout=buf, **opts)
    table = ipc.open_stream(buf.getvalue()).read_all()
    assert table.schema.names == pq.read_schema(tmp_path / "p" / "sequences.parquet").names  # as sequences.parquet
    t = table.to_pydict()
    ref.check("arrow stream", _flat(t["key"]), _flat(t["items"]), {n: _flat(t[n]) for n in NAMES}, vocabs)
    buf = io.BytesIO()
    seqprep.build(log, "-", stdout=buf, to="jsonl", **opts)
    lines = [json.loads(line) for line in buf.getvalue().decode().splitlines()]
    jfeats = {n: _flat([line[n] for line in lines]) for n in NAMES}
    jfeats["price"] = [np.nan if x is None else x for x in jfeats["price"]]
    ref.check("jsonl", _flat([line["key"] for line in lines]), _flat([line["items"] for line in lines]), jfeats, vocabs)


def test_recbole_export_writes_the_features_as_typed_fields(write, tmp_path):
    log = write("log.csv", _keyed_log())
    seqprep.build(log, tmp_path / "rb", features=KEYED, time_features=("hour",), exports=("recbole",))
    inter = pd.read_csv(tmp_path / "rb" / "rb.inter", sep="\t", dtype=str, keep_default_na=False)
    assert list(inter.columns) == [
        "user_id:token", "item_id:token", "timestamp:float", "key:float", "genre:token", "price:float", "tags:token_seq", "hour:token",
    ]
    ref = _Reference(log)
    for _, row in inter.iterrows():
        key = int(row["key:float"])
        want = ref.df.loc[key]
        assert row["item_id:token"] == str(want["movieId"])
        assert row["genre:token"] == (want["genre"] if isinstance(want["genre"], str) else "")
        assert row["price:float"] == ("" if np.isnan(want["price"]) else f"{np.float32(want['price'])}".removesuffix(".0"))
        assert row["tags:token_seq"].split() == ref.tags(key)
        assert row["hour:token"] == str(ref.hour[key])


def test_recbole_export_refuses_what_recbole_cannot_read(write, tmp_path):
    log = write("log.csv", "user,item,timestamp,tags\n1,2,3,science fiction|drama\n")
    r = CliRunner().invoke(cli, ["build", str(log), "-o", str(tmp_path / "o"), "--feature", "tags:tokens:|", "--export", "recbole"])
    assert r.exit_code == 1 and "feature tags token 'science fiction' holds white space" in r.output, r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(cli, ["build", str(log), "-o", str(tmp_path / "o"), "--feature", "timestamp:num", "--export", "recbole"])
    assert r.exit_code == 1 and "feature 'timestamp' would repeat the RecBole field 'timestamp'" in r.output, r.output
    assert not (tmp_path / "o").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    users=st.integers(1, 6),
    split=st.sampled_from([None, "loo", "users:0.6,0.2,0.2", "time:0.5,0.8"]),
    max_len=st.sampled_from([None, 1, 3]),
    truncate=st.booleans(),
    windows=st.sampled_from([None, "1:1", "3:2"]),
)
def test_random_logs_keep_features_aligned(tmp_path_factory, seed, users, split, max_len, truncate, windows):
    """For random logs and split / truncate / window options, every cell of every written array
    holds its own row's features (the key feature names the row)."""
    folder = tmp_path_factory.mktemp("r")
    (folder / "log.csv").write_text(_keyed_log(seed, users))
    opts = {"split": split, "max_len": max_len, "truncate": truncate and max_len is not None, "windows": windows}
    opts = {k: v for k, v in opts.items() if v}
    try:
        seqprep.build(folder / "log.csv", folder / "out", features=KEYED, time_features=("hour",), formats=("parquet", "npz"), **opts)
    except seqprep.SeqprepError as e:  # e.g. a time split that leaves a part empty
        assert "split" in str(e) or "window" in str(e), e
        return
    out, ref = folder / "out", _Reference(folder / "log.csv")
    vocabs = _vocabs(out)
    for npz in sorted(out.glob("*.npz")):
        with np.load(npz) as z:
            prefixes = {"": "items", "padded_": "padded", "history_": "history", "history_padded_": "history_padded",
                        "target_": "target", "inputs_": "inputs", "targets_": "targets"}
            for prefix, items in prefixes.items():
                if f"{prefix}key" in z.files:
                    items = items if items in z.files else None
                    ref.check(f"{npz.name} {prefix}", *_npz_views(z, prefix, items, NAMES), vocabs)
    report = seqprep.verify(out)
    assert report.ok, report.problems


# --------------------------------------------------------------------------------------------------
# Vocabularies: reused (--vocab-from), fitted on the training rows (--vocab-from-train)

NEW = """userId,movieId,rating,timestamp,genre,price,tags
1,5,4,1600000010,Action,3.5,a|q
4,6,3,1600000011,Horror,2,
1,7,2,1600003612,Drama,1,c||a|z
4,5,1,1600003613,Horror,1,q
"""
FEATS = ("genre", "price", "tags:tokens:|")


def _vocab_table(out: Path, name: str) -> dict:
    t = pq.read_table(out / "features" / f"{name}.parquet").to_pydict()
    return dict(zip(t["value"], zip(t["index"], t["count"])))


@pytest.mark.parametrize(
    ("mode", "genre_unknown", "tags_unknown"),
    [({"unknown": "drop"}, 0, None), ({"unknown": "oov"}, "oov", "oov"), ({"extend": True}, "new", "new")],
)
def test_vocab_from_reuses_feature_vocabularies(write, tmp_path, mode, genre_unknown, tags_unknown):
    seqprep.build(write("old.csv", LOG), tmp_path / "old", features=FEATS)
    old_genre, old_tags = _vocab_table(tmp_path / "old", "genre"), _vocab_table(tmp_path / "old", "tags")
    res = seqprep.build(write("new.csv", NEW), tmp_path / "new", vocab_from=str(tmp_path / "old"), features=FEATS, formats=("parquet", "npz"), **mode)
    meta = res.meta["features"]
    k_genre, k_tags = len(old_genre), len(old_tags)
    new_genre, new_tags = _vocab_table(tmp_path / "new", "genre"), _vocab_table(tmp_path / "new", "tags")
    for value, (idx, _) in old_genre.items():
        assert new_genre[value][0] == idx  # every old value keeps its index
    for value, (idx, _) in old_tags.items():
        assert new_tags[value][0] == idx
    df = _sorted_rows(pd.read_csv(write("new.csv", NEW)))
    oov = {"oov": k_genre + 1, "new": new_genre.get("Horror", (None,))[0], 0: 0}[genre_unknown]
    want = [old_genre[v][0] if v in old_genre else oov for v in df["genre"]]
    table = pq.read_table(tmp_path / "new" / "sequences.parquet").to_pydict()
    assert _flat(table["genre"]) == want
    tag_idx = {v: i for v, (i, _) in new_tags.items()}
    if tags_unknown == "oov":
        tag_idx = {**{t: k_tags + 1 for t in ("q", "z")}, **{v: i for v, (i, _) in old_tags.items()}}
    want_tags = [[tag_idx[t] for t in (v.split("|") if isinstance(v, str) else []) if t and t in tag_idx] for v in df["tags"]]
    assert _flat(table["tags"]) == want_tags
    assert meta["genre"]["unseen"] == 2 and meta["tags"]["unseen"] == 3  # Horror x2; q x2, z
    assert meta["genre"]["num_embeddings"] == len(new_genre) + 1 + (genre_unknown == "oov")
    assert meta["genre"]["oov_idx"] == (k_genre + 1 if genre_unknown == "oov" else None)
    assert meta["genre"]["fit"] == ("extended" if "extend" in mode else "reused")
    counts = pd.Series([v for v in df["genre"] if v in new_genre]).value_counts()
    assert {v: c for v, (_, c) in new_genre.items()} == {v: int(counts.get(v, 0)) for v in new_genre}  # this build's rows
    report = seqprep.verify(tmp_path / "new")
    assert report.ok, report.problems


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (("genre", "colour"), "has no feature 'colour' (its features: genre, price, tags), so there is no vocabulary to reuse"),
        (("price:cat",), "feature 'price' is cat here but num in --vocab-from"),
        (("genre",), "feature 'genre' has 1 value (2 rows) that the vocabulary of"),
    ],
)
def test_vocab_from_feature_errors(write, tmp_path, features, message):
    seqprep.build(write("old.csv", LOG), tmp_path / "old", features=FEATS)
    new = write("new.csv", "\n".join(line + ("," + ("colour" if k == 0 else "xy"[k % 2])) for k, line in enumerate(NEW.splitlines())) + "\n")
    args = ["build", str(new), "-o", str(tmp_path / "out"), "--vocab-from", str(tmp_path / "old"), "--unknown", "error"]
    r = CliRunner().invoke(cli, [*args, *[a for f in features for a in ("--feature", f)]])
    assert r.exit_code == 1 and message in r.output, r.output
    assert not (tmp_path / "out").exists()


def test_vocab_from_train_fits_feature_vocabularies_on_training_rows(write, tmp_path):
    log = write("log.csv", _keyed_log(5, 8))
    res = seqprep.build(log, tmp_path / "out", features=KEYED, time_features=("hour",), split="loo", vocab_from_train=True, formats=("parquet", "npz"))
    train = pq.read_table(tmp_path / "out" / "train.parquet").to_pydict()
    ref = _Reference(log)
    train_rows = ref.df.loc[[int(k) for k in _flat(train["key"])]].reset_index()
    want = _reference(train_rows, "genre")  # fitted on the training rows only, in the item order
    got = _vocab_table(tmp_path / "out", "genre")
    assert {v: i for v, (i, _) in got.items()} == want
    assert {v: c for v, (_, c) in got.items()} == train_rows["genre"].value_counts().to_dict()
    held_out = ref.df.drop(index=[int(k) for k in _flat(train["key"])])
    kept = {int(k) for k in _flat(pq.read_table(tmp_path / "out" / "sequences.parquet")["key"].to_pylist())}
    held_out = held_out[held_out.index.isin(kept)]
    unseen = int((~held_out["genre"].isin(want) & held_out["genre"].notna()).sum())
    assert res.meta["features"]["genre"]["unseen"] == unseen and res.meta["features"]["genre"]["fit"] == "train"
    seq = pq.read_table(tmp_path / "out" / "sequences.parquet").to_pydict()
    for key, g in zip(_flat(seq["key"]), _flat(seq["genre"])):  # a value training never saw is 0
        v = ref.df.at[int(key), "genre"]
        assert g == want.get(v, 0) if isinstance(v, str) else g == 0
    report = seqprep.verify(tmp_path / "out")
    assert report.ok, report.problems


# --------------------------------------------------------------------------------------------------
# verify and stats

def _rehash(out: Path) -> None:
    import hashlib

    meta = json.loads((out / "meta.json").read_text())
    for name in meta["outputs"]["files"]:
        data = (out / name).read_bytes()
        meta["outputs"]["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (out / "meta.json").write_text(json.dumps(meta))


def _damage_vocab_count(out: Path) -> None:
    t = pq.read_table(out / "features" / "genre.parquet")
    counts = t["count"].to_numpy().copy()
    counts[0] += 1
    files.write_parquet(t.set_column(2, "count", pa.array(counts, pa.int64())), out / "features" / "genre.parquet")


def _damage_meta_size(out: Path) -> None:
    meta = json.loads((out / "meta.json").read_text())
    meta["features"]["tags"]["num_embeddings"] += 1
    (out / "meta.json").write_text(json.dumps(meta))


def _damage_npz_index(out: Path) -> None:
    with np.load(out / "sequences.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["genre"] = arrays["genre"].copy()
    arrays["genre"][0] = 99
    files.write_npz(out / "sequences.npz", arrays)


def _damage_npz_length(out: Path) -> None:
    with np.load(out / "sequences.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["price"] = arrays["price"][:-1]
    files.write_npz(out / "sequences.npz", arrays)


def _damage_parquet_lists(out: Path) -> None:
    t = pq.read_table(out / "sequences.parquet")
    lists = t["genre"].to_pylist()
    lists[0] = lists[0][:-1]
    files.write_parquet(t.set_column(t.schema.get_field_index("genre"), "genre", pa.array(lists, pa.list_(pa.int32()))), out / "sequences.parquet")


def _damage_missing(out: Path) -> None:
    meta = json.loads((out / "meta.json").read_text())
    meta["features"]["price"]["missing"] += 1
    (out / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_damage_vocab_count, "sequences.parquet: feature genre: value 1 occurs 2 times, its vocabulary count says 3"),
        (_damage_meta_size, "meta.json features.tags.num_embeddings is 5, not 4"),
        (_damage_npz_index, "sequences.npz: feature genre: indices outside 0..3"),
        (_damage_npz_length, "sequences.npz: feature price has 5 values for 6 items"),
        (_damage_parquet_lists, "sequences.parquet: the genre lists do not have the same lengths as the items lists"),
        (_damage_missing, "sequences.parquet: feature price: 1 missing (NaN) values, meta.json features says 2"),
    ],
    ids=lambda x: getattr(x, "__name__", "msg"),
)
def test_verify_names_damaged_features(write, tmp_path, damage, expected):
    out = tmp_path / "out"
    seqprep.build(write("log.csv", LOG), out, features=FEATS, formats=("parquet", "npz"))
    assert seqprep.verify(out).ok
    damage(out)
    _rehash(out)
    problems = seqprep.verify(out).problems
    assert any(expected in p for p in problems), problems


def test_stats_summarises_each_feature(write, tmp_path):
    import seqprep.stats

    log = write("log.csv", LOG)
    seqprep.build(log, tmp_path / "out", features=FEATS, split="loo")
    doc = seqprep.stats.describe([tmp_path / "out", tmp_path / "out" / "train.parquet", log])
    built, train, raw = (d["features"] for d in doc["datasets"])
    assert raw is None and [f["name"] for f in built] == ["genre", "price", "tags"]
    df = pd.read_csv(log)
    genre, price, tags = built
    assert (genre["kind"], genre["values"], genre["missing"]) == ("cat", df["genre"].nunique(), int(df["genre"].isna().sum()))
    counts = df["genre"].value_counts()
    assert [(t["value"], t["count"]) for t in genre["top"]] == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert genre["missing_share"] == pytest.approx(df["genre"].isna().mean())
    assert price["numbers"] == {"min": df["price"].min(), "mean": pytest.approx(df["price"].mean()), "max": df["price"].max()}
    assert price["distinct"] == df["price"].nunique()
    assert tags["tokens_per_interaction"]["max"] == 2 and tags["top"][0]["value"] == "a"
    assert train[0]["name"] == "genre" and sum(t["count"] for t in train[0]["top"]) + train[0]["missing"] == sum(len(x) for x in pq.read_table(tmp_path / "out" / "train.parquet")["genre"].to_pylist())
    r = CliRunner().invoke(cli, ["stats", str(tmp_path / "out")])
    assert r.exit_code == 0 and "genre (cat)" in r.output and "genre: top" in r.output and "Action 33.3%" in r.output, r.output


def test_feature_names_that_collide_with_output_columns(write, tmp_path):
    log = write("log.csv", "user,item,timestamp,ts,a,a_offsets\n1,2,3,4,5,6\n")
    for args, message in [
        (["--feature", "ts"], "feature name 'ts' would give the output column 'target_ts', which is a column seqprep writes"),
        (["--feature", "a", "--feature", "a_offsets"], "would give the output column 'a_offsets', which is a column of feature 'a'"),
    ]:
        r = CliRunner().invoke(cli, ["build", str(log), "-o", str(tmp_path / "o"), *args])
        assert r.exit_code == 1 and message in r.output, r.output
        assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------------
# Real data: the Amazon Fashion reviews (JSON Lines, nested `style` fields whose keys end in ':')


@pytest.mark.real_data
def test_amazon_fashion_features_match_pandas(tmp_path):
    from tests.conftest import shared_file

    path = shared_file("amazon2018-fashion-5core/AMAZON_FASHION_5.json.gz")
    out = tmp_path / "out"
    res = seqprep.build(
        path, out, features=("verified", "style.Color:", "style.Size::cat"), time_features=("weekday",),
        formats=("parquet", "npz"), split="loo", max_len=5,
    )
    df = pd.read_json(path, lines=True, compression="gzip", dtype={"reviewerID": str, "asin": str})
    df["style.Color:"] = df["style"].map(lambda d: d.get("Color:") if isinstance(d, dict) else None)
    df["style.Size:"] = df["style"].map(lambda d: d.get("Size:") if isinstance(d, dict) else None)
    df["verified"] = df["verified"].map({True: "true", False: "false"})
    rows = df.assign(_row=np.arange(len(df))).sort_values(["reviewerID", "unixReviewTime", "_row"], kind="stable")
    with np.load(out / "sequences.npz") as z:
        for name in ("verified", "style.Color:", "style.Size:"):
            ref = _reference(df, name)
            want = [ref.get(v, 0) if isinstance(v, str) else 0 for v in rows[name]]
            assert z[name].tolist() == want, name
            vocab = pq.read_table(out / "features" / f"{name}.parquet").to_pydict()
            assert dict(zip(vocab["value"], vocab["index"])) == ref
            assert vocab["count"] == [int((df[name] == v).sum()) for v in vocab["value"]]
            assert res.meta["features"][name]["missing"] == int(df[name].isna().sum())
            assert res.meta["features"][name]["num_embeddings"] == len(ref) + 1
        days = pd.to_datetime(rows["unixReviewTime"], unit="s", utc=True).dt.day_of_week.to_numpy()
        weekday = pq.read_table(out / "features" / "weekday.parquet")["value"].to_numpy()
        assert np.array_equal(weekday[z["weekday"] - 1], days)
    assert res.meta["features"]["verified"]["values"] == 2
    assert res.meta["features"]["style.Color:"]["missing"] > 0  # some reviews have no Color
    report = seqprep.verify(out)
    assert report.ok, report.problems


def test_feature_columns_encodings(write, tmp_path):
    """Index lists (cat, tokens) are delta-encoded and uncompressed like the items; num lists PLAIN + zstd."""
    seqprep.build(write("log.csv", LOG), tmp_path / "o", features=FEATS, session_gap="1h")
    md = pq.ParquetFile(tmp_path / "o" / "sequences.parquet").metadata.row_group(0)
    cols = {md.column(i).path_in_schema.split(".")[0]: md.column(i) for i in range(md.num_columns)}
    for name in ("genre", "tags", "items"):
        assert "DELTA_BINARY_PACKED" in cols[name].encodings and cols[name].compression == "UNCOMPRESSED", name
    for name in ("price", "session_ids"):
        assert "PLAIN" in cols[name].encodings and cols[name].compression == "ZSTD", name


def test_a_feature_column_that_is_not_utf8_names_the_line(tmp_path):
    (tmp_path / "l.csv").write_bytes(b"user,item,ts,genre\n1,2,3,caf\xe9\n2,3,4,ok\n")
    r = CliRunner().invoke(cli, ["build", str(tmp_path / "l.csv"), "-o", str(tmp_path / "out"), "--feature", "genre"])
    assert r.exit_code == 1
    assert r.output.strip().endswith("l.csv: line 2: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)")


# --------------------------------------------------------------------------------------------------
# Features beside item attributes and an event column in one build


MIXED = """userId,movieId,timestamp,genre,ev
1,5,1500000010,Action,view
1,6,1500000011,Drama,buy
1,7,1500003612,Action,view
1,5,1500003613,Comedy,buy
1,6,1500007214,Drama,buy
2,5,1500000010,Action,buy
2,7,1500000011,Drama,view
2,6,1500000012,Action,buy
2,5,1500000013,Drama,buy
2,7,1500090014,Comedy,buy
"""


@pytest.mark.parametrize("vocab_from_train", [False, True])
def test_features_with_item_attributes_and_events(write, tmp_path, vocab_from_train):
    """Interaction features, the event feature and item attributes share meta.json ``features``:
    load, verify and the windows keep them apart (attributes are per item, not per interaction)."""
    log = write("log.csv", MIXED)
    table = write("movies.csv", 'movieId,title,genres\n5,"A, The",x|y\n6,B,y\n')
    out = tmp_path / "out"
    res = seqprep.build(
        log, out, features=("genre",), time_features=("hour",), event_col="ev", target_events="buy",
        item_table=str(table), item_attrs=("genres:tokens:|", "title"), split="loo", max_len=3, windows="2:1",
        formats=("parquet", "npz"), vocab_from_train=vocab_from_train,
    )
    assert {n: e["source"] for n, e in res.meta["features"].items()} == {
        "genre": "interaction", "hour": "derived", "event": "interaction", "genres": "item", "title": "item",
    }
    ds = seqprep.load(out)
    assert sorted(ds.features) == ["event", "genre", "hour"] and sorted(ds.item_features) == ["genres", "title"]
    df = _sorted_rows(pd.read_csv(log))
    events = ds.decode_feature("event", ds.feature("event")).to_pylist()
    assert events == df["ev"].tolist()
    genres = ds.decode_feature("genre", ds.feature("genre")).to_pylist()
    train = pq.read_table(out / "train.parquet").to_pydict()
    seen = {g for row in train["genre"] for g in ds.decode_feature("genre", row).to_pylist()}
    assert genres == [g if not vocab_from_train or g in seen else None for g in df["genre"]]
    assert ds.item_features.decode("title", ds.item_features["title"][ds.encode([5, 6, 7])]).to_pylist() == ["A, The", "B", None]
    with np.load(out / "windows.npz") as z:  # window targets are target events only, their features cut alike
        assert set(ds.decode_feature("event", z["targets_event"].ravel()).to_pylist()) == {"buy"}
        assert len(z["targets_genre"]) == len(z["targets"])
    for part in ("valid", "test"):
        t = pq.read_table(out / f"{part}.parquet").to_pydict()
        assert ds.decode_feature("event", t["target_event"]).to_pylist() == ["buy"] * len(t["target"])
    report = seqprep.verify(out)
    assert report.ok, report.problems
    r = CliRunner().invoke(cli, ["stats", str(out)])
    assert r.exit_code == 0 and "event (cat)" in r.output and "item attributes" in r.output, r.output
    assert "genres (tokens" not in r.output.split("item attributes")[0]  # an attribute is not summarised as a feature


def test_vocab_from_reuses_the_event_vocabulary(write, tmp_path):
    """The event column's feature is a feature like the others: --vocab-from keeps OLD's indices."""
    old = write("old.csv", MIXED)
    seqprep.build(old, tmp_path / "old", event_col="ev", features=("genre",))
    seqprep.build(old, tmp_path / "plain", features=("genre",))
    new = write("new.csv", "userId,movieId,timestamp,genre,ev\n1,5,1500000010,Action,view\n1,6,1500000011,Drama,view\n3,5,1500000012,Drama,cart\n")
    res = seqprep.build(new, tmp_path / "new", event_col="ev", features=("genre",), vocab_from=str(tmp_path / "old"), unknown="oov")
    old_events = _vocab_table(tmp_path / "old", "event")  # buy 7 rows -> 1, view 3 -> 2
    assert {v: i for v, (i, _) in old_events.items()} == {"buy": 1, "view": 2}
    got = pq.read_table(tmp_path / "new" / "sequences.parquet").to_pydict()
    assert _flat(got["event"]) == [2, 2, 3]  # view keeps OLD's 2 (a fresh fit would make it 1); cart is the oov 3
    assert res.meta["features"]["event"]["fit"] == "reused" and res.meta["features"]["event"]["unseen"] == 1
    report = seqprep.verify(tmp_path / "new")
    assert report.ok, report.problems
    r = CliRunner().invoke(cli, ["build", str(new), "-o", str(tmp_path / "o"), "--event-col", "ev", "--vocab-from", str(tmp_path / "plain"), "--unknown", "oov"])
    assert r.exit_code == 1 and "has no feature 'event' (its features: genre)" in r.output and "--event-col" in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_a_log_already_in_time_order_gives_the_bytes_of_its_shuffled_rows(write, tmp_path):
    """Rows already in (user, time) order skip the sort (steps.sort._in_order); their features are
    widened to int32 as sorted ones are: the same bytes as the same rows shuffled (no ties)."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(25):
        for t in np.sort(rng.choice(10_000, size=6, replace=False)):
            rows.append(f"{u},{rng.integers(0, 15)},{1_500_000_000 + t},g{rng.integers(0, 4)},{rng.random():.3f},a|b")
    head = "user,item,timestamp,genre,price,tags\n"
    ordered = write("ordered.csv", head + "\n".join(rows) + "\n")
    shuffled = write("shuffled.csv", head + "\n".join(rows[k] for k in rng.permutation(len(rows))) + "\n")
    opts = {"features": ("genre", "price"), "time_features": ("delta-log2", "hour")}
    seqprep.build(ordered, tmp_path / "a", **opts)
    seqprep.build(shuffled, tmp_path / "b", **opts)
    a, b = (tmp_path / "a" / "sequences.parquet").read_bytes(), (tmp_path / "b" / "sequences.parquet").read_bytes()
    assert pq.read_table(tmp_path / "a" / "sequences.parquet").schema.field("genre").type == pa.list_(pa.int32())
    assert a == b


# --- memory: the writing sort holds each feature once (issue 15's memory target) -----------------


def _sort_inputs(n_users: int, lengths: list[int], seed: int, grouped: bool):
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(n_users), lengths).astype(np.int32)
    if not grouped:
        user = rng.permutation(user)
    n = len(user)
    time = rng.integers(0, 6, n).astype(np.int64)  # few distinct times: many ties keep input order
    items = rng.integers(1, 50, n).astype(np.int32)
    counts = np.bincount(user, minlength=n_users).astype(np.int64)
    features = (
        Feature("g", "interaction", "cat", rng.integers(0, 5, n).astype(np.uint8)),
        Feature("s", "interaction", "cat", rng.integers(0, 400, n).astype(np.uint16)),
        Feature("p", "interaction", "num", rng.random(n).astype(np.float32)),
    )
    return user, items, time, counts, features


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=40),
    per_part=st.integers(1, 30),
    grouped=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_writing_sort_sorts_features_in_place_when_rows_are_grouped(lengths, per_part, grouped, seed):
    """``features_in_place``: rows grouped by user are sorted in their own arrays (no second copy),
    scattered rows into new ones; either way the values, and what each row group sees, are the one
    stable sort's, compact (uint8 / uint16 / float32) as they came."""
    from seqprep.steps.sort import sequences_from

    user, items, time, counts, features = _sort_inputs(len(lengths), lengths, seed, grouped)
    order = np.lexsort((np.arange(len(user)), time, user))  # the stable (user, time) order
    expected = [f.values[order] for f in features]
    before = [f.values.copy() for f in features]
    seen = []

    def on_part(seqs, u0, u1):
        lo, hi = int(seqs.offsets[u0]), int(seqs.offsets[u1])
        seen.append([f.values[lo:hi].copy() for f in seqs.features])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", per_part)
        seqs = sequences_from(user, items, time, None, counts, on_part=on_part, features=features, features_in_place=True)
    in_order = bool(np.array_equal(order, np.arange(len(user))))
    grouped = bool((user[1:] >= user[:-1]).all())  # (a permutation may leave them grouped)
    for f, got, want, old in zip(features, seqs.features, expected, before, strict=True):
        assert got.values.dtype == f.values.dtype  # compact stays compact
        assert np.array_equal(got.values, want)
        own = got.values is f.values
        assert own == (grouped or in_order)  # in place exactly when rows are grouped (or already sorted)
        if not own:
            assert np.array_equal(f.values, old)  # scattered rows: the input is left as it was
    for k, got in enumerate(zip(*seen)):
        assert np.array_equal(np.concatenate(got), expected[k])  # each row group saw its sorted rows


def test_writing_sort_copies_read_only_and_shared_features():
    """A read-only array (a zero-copy view of a column) or two features over the same memory are
    never sorted in place: they get their own sorted arrays, and the inputs are left unchanged."""
    from seqprep.steps.sort import sequences_from

    user, items, time, counts, (g, s, p) = _sort_inputs(6, [5, 3, 7, 1, 4, 6], 0, grouped=True)
    frozen = p.values.copy()
    frozen.flags.writeable = False
    shared = np.arange(len(user), dtype=np.int32)[::-1].copy()
    features = (
        dataclasses.replace(p, values=frozen),
        dataclasses.replace(g, name="a", values=shared),
        dataclasses.replace(g, name="b", values=shared[:]),  # a view of the same buffer
        g,
    )
    order = np.lexsort((np.arange(len(user)), time, user))
    inputs = [f.values.copy() for f in features]
    seqs = sequences_from(user, items, time, None, counts, on_part=lambda *a: None, features=features, features_in_place=True)
    for f, got, old in zip(features[:3], seqs.features[:3], inputs[:3], strict=True):
        assert got.values is not f.values and np.array_equal(got.values, old[order])
        assert np.array_equal(f.values, old)
    assert seqs.features[3].values is g.values and np.array_equal(g.values, inputs[3][order])


@pytest.mark.parametrize("grouped", [True, False])
def test_streamed_features_are_the_plain_ones(tmp_path, monkeypatch, grouped):
    """The writing sort keeps compact feature indices (uint8 / uint16), sorted in place when the log
    is grouped by user, and widens them a row group at a time as it writes: the file, the sequences
    the build returns (int32) and what load reads are those of a plain write."""
    monkeypatch.setattr(sequence_kernels, "ROW_GROUP_INTERACTIONS", 97)  # many row groups from a small log
    rng = np.random.default_rng(1)
    n, users = 3000, 80
    u = rng.integers(0, users, n)
    if grouped:
        u = np.sort(u)
    cols = {
        "userId": u,
        "movieId": rng.integers(0, 200, n),
        "rating": rng.integers(1, 11, n) / 2,
        "timestamp": rng.integers(0, 50, n),  # few distinct times: many ties
        "genre": [f"g{v}" for v in rng.integers(0, 5, n)],  # uint8 while compact
        "shop": [f"s{v}" for v in rng.integers(0, 400, n)],  # > 255 values: uint16 while compact
        "price": np.round(rng.random(n), 3),
    }
    log = tmp_path / "log.csv"
    pd.DataFrame(cols).to_csv(log, index=False)
    features = ["genre:cat", "shop:cat", "price:num"]
    built = seqprep.build(log, tmp_path / "out", features=features)  # written while sorting
    memory = seqprep.build(log, features=features)  # nothing written: one sort of the whole log
    assert [f.values.dtype for f in built.sequences.features] == [np.int32, np.int32, np.float32]
    for a, b in zip(built.sequences.features, memory.sequences.features, strict=True):
        assert a.values.dtype == b.values.dtype and np.array_equal(a.values, b.values)
    assert max(len(f.vocab) for f in built.sequences.features if f.vocab is not None) > 255
    plain = tmp_path / "plain.parquet"
    files.write_sequences(memory.users, memory.sequences, plain)
    assert (tmp_path / "out" / "sequences.parquet").read_bytes() == plain.read_bytes()
    ds = seqprep.load(tmp_path / "out")
    assert np.array_equal(ds.feature("shop"), memory.sequences.features[1].values)
