"""`--feature` / `--time-feature`: features aligned with the items, against independent pandas encodings."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.cli import cli
from seqprep.kernels import sequences as sequence_kernels
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
        (["--feature", "genre", "--memory-limit", "1GB"], "--memory-limit does not support the feature options yet"),
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


def test_a_feature_column_that_is_not_utf8_names_the_line(tmp_path):
    (tmp_path / "l.csv").write_bytes(b"user,item,ts,genre\n1,2,3,caf\xe9\n2,3,4,ok\n")
    r = CliRunner().invoke(cli, ["build", str(tmp_path / "l.csv"), "-o", str(tmp_path / "out"), "--feature", "genre"])
    assert r.exit_code == 1
    assert r.output.strip().endswith("l.csv: line 2: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)")
