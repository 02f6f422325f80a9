"""`seqprep stats`: kernels vs plain-Python references, numbers vs an independent pandas computation,
the pinned JSON schema, side-by-side human output, splits, steps and --plot."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.stats import summary as stats_module
from seqprep.cli import cli
from seqprep.kernels import sequences as sequence_kernels
from seqprep.kernels import stats as stats_kernels
from seqprep.kernels.sequences import code_counts, tie_stats, time_order
from seqprep.kernels.stats import (
    consecutive_repeats,
    duplicate_counts,
    gini,
    log_bin_edges,
    log_histogram,
    month_counts,
    ordered_counts,
    tie_counts,
    top_share,
)
from seqprep.stats import open_source, summarize
from tests.conftest import TIES_CSV, shared_file


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


# --------------------------------------------------------------------------------------------------
# Kernels against plain-Python references

counts_st = st.lists(st.integers(0, 50), min_size=1, max_size=40)


@given(counts_st)
def test_gini_matches_mean_absolute_difference(counts):
    n, total = len(counts), sum(counts)
    # G = sum_i sum_j |x_i - x_j| / (2 n^2 mean)
    expected = 0.0 if total == 0 else sum(abs(a - b) for a in counts for b in counts) / (2 * n * total)
    assert gini(np.array(counts)) == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= gini(np.array(counts)) <= (n - 1) / n + 1e-12


@given(counts_st, st.sampled_from([0.01, 0.1, 0.25, 0.5, 1.0]))
def test_top_share_is_the_share_of_the_k_largest(counts, fraction):
    k, share = top_share(np.array(counts), fraction)
    if sum(counts) == 0:
        assert (k, share) == (0, 0.0)
        return
    assert k == max(1, math.ceil(round(fraction * len(counts), 9)))
    assert share == pytest.approx(sum(sorted(counts, reverse=True)[:k]) / sum(counts))


rows_st = st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(0, 3), st.sampled_from([1.0, 2.0, float("nan")])),
    min_size=0,
    max_size=40,
)


@given(rows_st, st.booleans())
def test_duplicate_counts_match_a_set_reference(rows, with_rating):
    user = np.array([r[0] for r in rows], dtype=np.int64)
    item = np.array([r[1] for r in rows], dtype=np.int32)
    time = np.array([r[2] for r in rows], dtype=np.int64)
    rating = np.array([r[3] for r in rows], dtype=np.float32) if with_rating else None
    pairs, full = set(), set()
    repeated = identical = 0
    for u, i, t, r in rows:
        key = (u, i, t, "nan" if math.isnan(r) else r) if with_rating else (u, i, t)
        repeated += (u, i) in pairs
        identical += key in full
        pairs.add((u, i))
        full.add(key)
    assert duplicate_counts(user, item, time, rating) == (repeated, identical)
    grouped = np.argsort(user, kind="stable")  # user ranges are slices
    by_pair = np.lexsort((item, user))  # (user, item) keys in order: counted without a sort
    with (
        mock.patch.object(stats_kernels, "_PARALLEL_MIN_ROWS", 0),
        mock.patch.object(stats_kernels, "_CHUNK", 3),
        mock.patch.object(sequence_kernels, "_PART_ROWS", 4),
    ):
        for layout in (grouped, by_pair, np.arange(len(user))[::-1]):  # the last: scattered users
            for threads in (1, 2, 3):
                got = duplicate_counts(
                    user[layout], item[layout], time[layout], None if rating is None else rating[layout], threads=threads
                )
                assert got == (repeated, identical)


sequence_rows_st = st.lists(
    st.tuples(st.integers(0, 4), st.integers(1, 3), st.integers(0, 3)), min_size=0, max_size=50
)


@settings(deadline=None)
@given(sequence_rows_st, st.sampled_from([1, 2, 3, 7, 1 << 20]), st.integers(1, 3))
def test_ordered_counts_match_the_sequence_kernels(rows, chunk, threads):
    """Consecutive repeats and ties of rows taken in time order equal those of the CSR sequences
    (consecutive_repeats, tie_stats), for any chunk size and thread count."""
    user = np.array([r[0] for r in rows], dtype=np.int32)
    item = np.array([r[1] for r in rows], dtype=np.int32)
    time = np.array([r[2] for r in rows], dtype=np.int64)
    order = time_order(user, time)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=5))]).astype(np.int64)
    expected = (
        consecutive_repeats(offsets, item[order]),
        *(tie_stats(offsets, time[order]) if len(rows) else (0, 0)),
    )
    assert ordered_counts(user, item, time, order, threads=threads, chunk=chunk) == expected
    # rows already in order: no permutation
    assert ordered_counts(user[order], item[order], time[order], threads=threads, chunk=chunk) == expected


@settings(deadline=None)
@given(sequence_rows_st, st.integers(1, 3), st.sampled_from(["int", "float", "wide"]))
def test_tie_counts_match_tie_stats_in_any_row_order(rows, threads, kind):
    """Ties counted from the sorted keys (or, for float times and keys past 63 bits, through the
    permutation) equal tie_stats on the time-ordered sequences, in any row order."""
    user = np.array([r[0] for r in rows], dtype=np.int32)
    time = np.array([r[2] for r in rows], dtype=np.int64)
    if kind == "float":
        time = time / 2
    elif kind == "wide":
        time = time * (1 << 60) - (1 << 61)
    order = time_order(user, time)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=5))]).astype(np.int64)
    expected = tie_stats(offsets, time[order]) if len(rows) else (0, 0)
    with mock.patch.object(stats_kernels, "_PARALLEL_MIN_ROWS", 0), mock.patch.object(sequence_kernels, "_PART_ROWS", 4):
        assert tie_counts(user, time, threads=threads) == expected
        assert tie_counts(user[::-1], time[::-1], threads=threads) == expected


@given(st.lists(st.integers(0, 9), max_size=40), st.integers(0, 12), st.sampled_from([1, 4, 1 << 20]))
def test_code_counts_is_bincount(codes, size, chunk):
    codes = np.array(codes, dtype=np.int32)
    with mock.patch.object(sequence_kernels, "_CHUNK", chunk):
        got = code_counts(codes, size)
    assert got.dtype == np.int64
    assert got.tolist() == np.bincount(codes, minlength=size).tolist()


csr_st = st.lists(st.lists(st.integers(1, 3), min_size=0, max_size=6), min_size=1, max_size=8)


@given(csr_st)
def test_consecutive_repeats_match_per_user_reference(seqs):
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    items = np.array([x for s in seqs for x in s], dtype=np.int32)
    expected = sum(1 for s in seqs for a, b in zip(s, s[1:]) if a == b)
    assert consecutive_repeats(offsets, items) == expected


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=60), st.integers(1, 4))
def test_log_histogram_puts_every_value_in_its_bin(values, per_octave):
    edges, counts = log_histogram(np.array(values), per_octave)
    assert counts.sum() == len(values)
    assert (np.diff(edges) > 0).all() and edges[0] <= min(values) < edges[1] and edges[-1] > max(values)
    for v in values:  # reference: a linear scan over the bins
        k = next(j for j in range(len(counts)) if edges[j] <= v < edges[j + 1])
        assert counts[k] == sum(1 for w in values if edges[k] <= w < edges[k + 1])


@given(st.integers(1, 10**6), st.integers(1, 4))
def test_log_bin_edges_are_log_spaced(top, per_octave):
    edges = log_bin_edges(top, per_octave)
    assert edges[0] == 1 and edges[-2] <= top < edges[-1]
    ratios = edges[1:] / edges[:-1]
    assert (ratios <= 2.0 + 1e-9).all()  # at most one octave per bin
    assert (edges[1:][edges[:-1] >= 8] / edges[:-1][edges[:-1] >= 8] >= 2 ** (1 / per_octave) * 0.9).all()


@settings(deadline=None)
@given(st.lists(st.integers(0, 2 * 10**9), min_size=1, max_size=50), st.sampled_from(["s", "ms"]))
def test_month_counts_match_datetime(secs, unit):
    ts = np.array(secs, dtype=np.int64) * (1000 if unit == "ms" else 1)
    first, counts = month_counts(ts, unit)
    ref: dict[tuple[int, int], int] = {}
    for s in secs:
        d = dt.datetime.fromtimestamp(s, tz=dt.timezone.utc)
        ref[(d.year, d.month)] = ref.get((d.year, d.month), 0) + 1
    (y0, m0), (y1, m1) = min(ref), max(ref)
    assert str(np.datetime64(first, "M")) == f"{y0:04d}-{m0:02d}"
    assert len(counts) == (y1 - y0) * 12 + m1 - m0 + 1
    got = {((y0 * 12 + m0 - 1 + k) // 12, (y0 * 12 + m0 - 1 + k) % 12 + 1): int(c) for k, c in enumerate(counts) if c}
    assert got == ref


def test_month_counts_chunk_by_chunk():
    secs = np.array([5, 86400 * 31, 86400 * 95, 0, 86400 * 40, 86400 * 31 + 1], dtype=np.int64)
    with mock.patch.object(stats_kernels, "_CHUNK", 2):
        assert month_counts(secs, "s")[1].tolist() == [2, 3, 0, 1]
        assert month_counts(secs.astype(np.float64) + 0.5, "s")[1].tolist() == [2, 3, 0, 1]


def test_month_counts_float_and_non_epoch():
    first, counts = month_counts(np.array([0.5, 2678400.25]), "s")  # 1970-01-01 and 1970-02-01
    assert (first, counts.tolist()) == (0, [1, 1])
    with pytest.raises(ValueError, match="do not look like s epochs"):
        month_counts(np.array([0, 10**15]), "s")


# --------------------------------------------------------------------------------------------------
# Numbers against an independent pandas computation


def pandas_reference(df: pd.DataFrame) -> dict:
    """Every checked number from a plain DataFrame (user, item, time, rating), the obvious pandas way."""
    lengths = df.groupby("user").size()
    counts = df.groupby("item").size().sort_values(ascending=False)
    n, k1, k10 = len(df), max(1, math.ceil(0.01 * len(counts))), max(1, math.ceil(0.1 * len(counts)))
    x = sorted(counts.tolist())
    g = sum((2 * i - len(x) - 1) * v for i, v in enumerate(x, 1)) / (len(x) * sum(x))
    s = df.sort_values(["user", "time"], kind="stable")
    same_user = s["user"].eq(s["user"].shift())
    months = pd.to_datetime(df["time"], unit="s").dt.to_period("M")
    q = lengths.quantile([0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    return {
        "users": lengths.size,
        "items": counts.size,
        "interactions": n,
        "length": [lengths.min(), *q.tolist(), lengths.mean(), lengths.max()],
        "top1": counts.iloc[:k1].sum() / n,
        "top10": counts.iloc[:k10].sum() / n,
        "gini": g,
        "below5": int((counts < 5).sum()),
        "identical": int(df.duplicated(["user", "item", "time", "rating"]).sum()),
        "pairs": int(df.duplicated(["user", "item"]).sum()),
        "consecutive": int((same_user & s["item"].eq(s["item"].shift())).sum()),
        "ties": int(df.duplicated(["user", "time"], keep=False).sum()),
        "tie_groups": int(df[df.duplicated(["user", "time"], keep=False)].groupby(["user", "time"]).ngroups),
        "months": (months.max() - months.min()).n + 1,
        "busiest": str(months.value_counts().sort_index().idxmax()),
        "ratings": df["rating"].value_counts().sort_index().to_dict(),
    }


def ours(s: dict) -> dict:
    sl, pop, d = s["sequence_length"], s["popularity"], s["duplicates"]
    return {
        "users": s["users"],
        "items": s["items"],
        "interactions": s["interactions"],
        "length": [sl[k] for k in ("min", "p10", "p25", "median", "p75", "p90", "p99", "mean", "max")],
        "top1": pop["top_1pct_share"],
        "top10": pop["top_10pct_share"],
        "gini": pop["gini"],
        "below5": pop["items_below_5"],
        "identical": d["identical_rows"],
        "pairs": d["repeated_pairs"],
        "consecutive": d["consecutive_repeats"],
        "ties": s["ties"]["interactions"],
        "tie_groups": s["ties"]["groups"],
        "months": s["time"]["months"],
        "busiest": s["time"]["per_month"]["busiest"],
        "ratings": {c["value"]: c["count"] for c in s["ratings"]["counts"]},
    }


def _compare(got: dict, ref: dict) -> None:
    assert got.keys() == ref.keys()
    for key in ref:
        if isinstance(ref[key], float) or key == "length":
            assert got[key] == pytest.approx(ref[key], rel=1e-12), key
        else:
            assert got[key] == ref[key], key


def _random_log(seed: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = rng.zipf(1.6, n) % 97
    item = rng.zipf(1.3, n) % 400 + 1
    time = 9 * 10**8 + rng.integers(0, 40, n) * 2_000_000  # ~2.5 years, many ties
    rating = rng.integers(1, 11, n) / 2
    df = pd.DataFrame({"user": user, "item": item, "time": time, "rating": rating})
    return pd.concat([df, df.iloc[: n // 20]], ignore_index=True)  # some identical rows


@pytest.mark.parametrize(
    "layout",
    ["scattered", "grouped", "unique_pairs", "grouped_small_chunks", "scattered_small_chunks", "unique_pairs_small_chunks"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_raw_log_numbers_match_pandas(tmp_path, seed, layout):
    """Rows scattered, or grouped by user with items in id order (as MovieLens files are), or with
    no repeated pair (ties then counted without a permutation); with small chunks and the threaded
    paths forced, every chunked and threaded kernel runs."""
    df = _random_log(seed)
    if layout.startswith("grouped"):
        df = df.sort_values(["user", "item"], kind="stable", ignore_index=True)
    if layout.startswith("unique_pairs"):
        df = df.drop_duplicates(["user", "item"], ignore_index=True)
    path = tmp_path / "log.csv"
    df.rename(columns={"user": "userId", "item": "movieId", "time": "timestamp"}).to_csv(path, index=False)
    with contextlib.ExitStack() as stack:
        if layout.endswith("small_chunks"):
            for module, name, value in (
                (stats_kernels, "_PARALLEL_MIN_ROWS", 0),
                (stats_kernels, "_CHUNK", 64),
                (stats_kernels, "_ORDER_CHUNK", 100),
                (sequence_kernels, "_PARALLEL_MIN_ROWS", 0),
                (sequence_kernels, "_CHUNK", 64),
                (sequence_kernels, "_PART_ROWS", 50),
                (stats_module, "sort_threads", lambda: 3),  # threaded on any machine
            ):
                stack.enter_context(mock.patch.object(module, name, value))
        s = summarize(open_source(str(path)))
    _compare(ours(s), pandas_reference(df))
    assert s["density"] == pytest.approx(len(df) / (df.user.nunique() * df.item.nunique()))
    assert sum(s["length_histogram"]["counts"]) == df.user.nunique()
    assert sum(s["time"]["per_month"]["counts"]) == len(df)


def test_built_folder_gives_the_same_numbers_as_its_raw_log(write, tmp_path):
    path = write("r.csv", _random_log(2).rename(columns={"user": "userId", "item": "movieId", "time": "ts"})
                 .to_csv(index=False))
    seqprep.build(path, tmp_path / "o", formats=("npz",))
    raw, built = summarize(open_source(str(path))), summarize(open_source(str(tmp_path / "o")))
    assert (raw["kind"], built["kind"]) == ("raw", "built")
    assert (raw["features"], built["features"]) == (None, [])  # a raw log's columns are not encoded
    for key in raw:
        if key not in ("path", "kind", "features"):
            assert built[key] == raw[key], key


def test_ties_fixture_by_hand(write):
    s = summarize(open_source(str(write("r.csv", TIES_CSV))))
    assert (s["users"], s["items"], s["interactions"]) == (3, 4, 7)
    assert s["duplicates"] == {"identical_rows": 0, "repeated_pairs": 2, "consecutive_repeats": 2}
    assert s["ties"] == {"interactions": 2, "groups": 1, "share": 2 / 7}
    assert s["popularity"]["gini"] == pytest.approx(0.25)  # counts 1, 1, 2, 3
    assert s["popularity"]["top_1pct_items"] == 1 and s["popularity"]["top_1pct_share"] == pytest.approx(3 / 7)
    assert s["sequence_length"]["min"] == 1 and s["sequence_length"]["max"] == 4
    assert s["length_histogram"] == {"edges": [1, 2, 3, 4, 6], "counts": [1, 1, 0, 1]}


# --------------------------------------------------------------------------------------------------
# The JSON document: a pinned schema


def _types(x, prefix=""):
    """path -> JSON type name, walking dicts; a list records its own type and its first element's."""
    if isinstance(x, dict):
        out = {prefix or "$": "object"}
        for k, v in x.items():
            out.update(_types(v, f"{prefix}.{k}"))
        return out
    if isinstance(x, list):
        out = {prefix: "array"}
        if x:
            out.update(_types(x[0], prefix + "[]"))
        return out
    name = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}[type(x)]
    return {prefix: name}


D = ".datasets[]"
SCHEMA = {
    "$": "object",
    ".schema_version": "integer",
    ".seqprep_version": "string",
    ".datasets": "array",
    f"{D}": "object",
    f"{D}.path": "string",
    f"{D}.kind": "string",
    f"{D}.rows": "object",
    **{f"{D}.rows.{k}": "integer" for k in ("read", "kept", "removed")},
    **{f"{D}.{k}": "integer" for k in ("users", "items", "interactions")},
    f"{D}.density": "number",
    f"{D}.sequence_length": "object",
    **{f"{D}.sequence_length.{k}": "integer" for k in ("min", "max")},
    **{f"{D}.sequence_length.{k}": "number" for k in ("p10", "p25", "median", "mean", "p75", "p90", "p99")},
    f"{D}.length_histogram": "object",
    f"{D}.length_histogram.edges": "array",
    f"{D}.length_histogram.edges[]": "integer",
    f"{D}.length_histogram.counts": "array",
    f"{D}.length_histogram.counts[]": "integer",
    f"{D}.popularity": "object",
    **{f"{D}.popularity.{k}": "integer" for k in ("top_1pct_items", "top_10pct_items", "items_below_5")},
    **{f"{D}.popularity.{k}": "number" for k in ("top_1pct_share", "top_10pct_share", "gini", "items_below_5_share")},
    f"{D}.time": "object",
    **{f"{D}.time.{k}": "string" for k in ("unit", "calendar_unit", "first_utc", "last_utc")},
    **{f"{D}.time.{k}": "integer" for k in ("first", "last", "months")},
    f"{D}.time.span_days": "number",
    f"{D}.time.per_month": "object",
    **{f"{D}.time.per_month.{k}": "number" for k in ("mean", "median")},
    **{f"{D}.time.per_month.{k}": "integer" for k in ("min", "max")},
    **{f"{D}.time.per_month.{k}": "string" for k in ("busiest", "first_month")},
    f"{D}.time.per_month.counts": "array",
    f"{D}.time.per_month.counts[]": "integer",
    f"{D}.duplicates": "object",
    **{f"{D}.duplicates.{k}": "integer" for k in ("identical_rows", "repeated_pairs", "consecutive_repeats")},
    f"{D}.ties": "object",
    **{f"{D}.ties.{k}": "integer" for k in ("interactions", "groups")},
    f"{D}.ties.share": "number",
    f"{D}.ratings": "object",
    **{f"{D}.ratings.{k}": "integer" for k in ("missing", "distinct")},
    **{f"{D}.ratings.{k}": "number" for k in ("min", "mean", "max")},
    f"{D}.ratings.counts": "array",
    f"{D}.ratings.counts[]": "object",
    f"{D}.ratings.counts[].value": "number",
    f"{D}.ratings.counts[].count": "integer",
    f"{D}.steps": "array",
    f"{D}.steps[]": "object",
    f"{D}.steps[].step": "string",
    **{f"{D}.steps[].{k}": "integer" for k in ("rows_before", "rows_removed", "rows_after")},
    f"{D}.splits": "object",
    f"{D}.splits.rule": "object",
    **{f"{D}.splits.{name}": "object" for name in ("train", "valid", "test")},
    **{f"{D}.splits.{name}.{k}": "integer" for name in ("train", "valid", "test") for k in ("users", "interactions")},
    f"{D}.features": "array",  # [] without features; their keys: tests/test_features.py
    f"{D}.attributes": "null",  # a folder without attribute tables (test_attributes.py covers the rest)
    f"{D}.sessions": "null",  # a session-keyed log's sessions (schema_version 2): tests/test_session_keys.py
}


def _with_splits(folder: Path) -> None:
    """Hand-made split files of the documented schema, and meta.json["split"]."""
    train = pa.table({
        "user_idx": pa.array([0, 1, 2], pa.int32()),
        "user_id": pa.array([1, 2, 3], pa.int64()),
        "items": pa.array([[1, 2], [1], []], pa.list_(pa.int32())),
        "timestamps": pa.array([[10, 10], [5], []], pa.list_(pa.int64())),
    })
    pq.write_table(train, folder / "train.parquet")
    for name, users in (("valid", [0, 1]), ("test", [0])):
        part = pa.table({
            "user_idx": pa.array(users, pa.int32()),
            "user_id": pa.array([u + 1 for u in users], pa.int64()),
            "history": pa.array([[1]] * len(users), pa.list_(pa.int32())),
            "target": pa.array([3] * len(users), pa.int32()),
            "target_ts": pa.array([20] * len(users), pa.int64()),
        })
        pq.write_table(part, folder / f"{name}.parquet")
    meta = json.loads((folder / "meta.json").read_text())
    meta["split"] = {"rule": "leave-one-out", "valid": 1, "test": 1}
    meta["steps"].append({"step": "kcore", "rows_before": 7, "rows_removed": 0, "rows_after": 7, "k_user": 1,
                          "rounds": [{"round": 1, "users_removed": 0, "items_removed": 0}]})
    (folder / "meta.json").write_text(json.dumps(meta))


def test_json_schema_is_pinned(write, tmp_path):
    seqprep.build(write("r.csv", TIES_CSV), tmp_path / "o")
    _with_splits(tmp_path / "o")
    r = run("stats", str(tmp_path / "o"), str(tmp_path / "r.csv"), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 2 and len(doc["datasets"]) == 2
    types = _types(doc)
    free = {k for k in types if k.startswith((f"{D}.steps[].", f"{D}.splits.rule."))} - set(SCHEMA)
    assert {k: v for k, v in types.items() if k not in free} == SCHEMA  # steps and the split rule: meta.json's keys
    raw = doc["datasets"][1]
    assert (raw["kind"], raw["splits"]) == ("raw", None)
    assert set(raw) == set(doc["datasets"][0])  # every key is always there (null when not applicable)
    built = doc["datasets"][0]
    assert built["splits"]["train"] == {"users": 3, "interactions": 3}
    assert built["splits"]["valid"] == {"users": 2, "interactions": 2}
    assert built["splits"]["test"] == {"users": 1, "interactions": 1}
    assert built["steps"][-1]["rounds"][0]["round"] == 1


def test_rating_values_read_as_written(write):
    s = summarize(open_source(str(write("x.csv", "user,item,rating,ts\n1,2,0.1,1\n1,3,0.7,2\n2,2,0.1,3\n"))))
    assert s["ratings"]["counts"] == [{"value": 0.1, "count": 2}, {"value": 0.7, "count": 1}]
    assert (s["ratings"]["min"], s["ratings"]["max"]) == (0.1, 0.7)


def test_rating_counts_merge_signed_zeros_and_every_nan():
    r = np.array([0.0, -0.0, np.nan, -np.nan, 1.5, 0.0], dtype=np.float32)
    got = stats_module._rating_summary(r)
    assert got["missing"] == 2 and got["distinct"] == 2
    assert got["counts"] == [{"value": 0.0, "count": 3}, {"value": 1.5, "count": 1}]
    assert got["mean"] == pytest.approx(1.5 / 4)
    assert stats_module._rating_summary(np.full(3, np.nan, dtype=np.float32))["mean"] is None


def test_no_ratings_no_epoch_are_nulls(write):
    s = summarize(open_source(str(write("x.csv", "user,item,ts\n1,2,1\n1,3,2\n2,2,3\n"))))
    assert s["ratings"] is None
    assert (s["time"]["first"], s["time"]["calendar_unit"], s["time"]["first_utc"]) == (1, "s", "1970-01-01T00:00:01Z")


# --------------------------------------------------------------------------------------------------
# Human output


def test_human_output_side_by_side_with_histogram(write, tmp_path):
    a = write("a.csv", TIES_CSV)
    b = write("b.csv", "user,item,ts\n1,2,3\n1,3,4\n")
    r = run("stats", str(a), str(b))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == [str(a), str(b)]
    assert next(ln for ln in lines if ln.startswith("interactions")).split() == ["interactions", "7", "2"]
    assert next(ln for ln in lines if ln.startswith("  repeated user-item pairs")).split()[-2:] == ["2", "0"]
    assert next(ln for ln in lines if ln.startswith("  4.5")).split()[-3:] == ["1", "(14.3%)", "-"]  # b has no ratings
    assert "\x1b[" not in r.stdout  # no ANSI when not a terminal
    hist = lines[lines.index(f"sequence length histogram: {a} (users per length bin)") + 1 :]
    assert hist[0].split("│")[0].strip() == "1" and hist[0].endswith(" 1")
    assert hist[3].split("│")[0].strip() == "4-5" and "█" * 40 in hist[3]  # the fullest bin spans the width


def test_histogram_bars_use_eighth_blocks():
    from seqprep.stats.report import _bar

    assert [_bar(c, 16, 2) for c in (0, 1, 11, 16)] == ["", "▏", "█▍", "██"]


def test_steps_and_splits_print_generically(write, tmp_path):
    seqprep.build(write("r.csv", TIES_CSV), tmp_path / "o")
    _with_splits(tmp_path / "o")
    out = run("stats", str(tmp_path / "o")).stdout
    assert "  2. kcore" in out and "7 -> 7 rows (-0)" in out
    assert "     k_user" in out and "round 1, users_removed 0, items_removed 0" in out
    assert "train users / interactions" in out and "3 / 3" in out
    assert "leave-one-out" in out


def test_training_split_file_is_a_path_too(write, tmp_path):
    seqprep.build(write("r.csv", TIES_CSV), tmp_path / "o")
    _with_splits(tmp_path / "o")
    r = run("stats", str(tmp_path / "o" / "train.parquet"), "--json")
    s = json.loads(r.stdout)["datasets"][0]
    assert (s["kind"], s["users"], s["items"], s["interactions"]) == ("split", 3, 2, 3)
    assert s["length_histogram"] == {"edges": [0, 1, 2, 3], "counts": [1, 1, 1]}  # one empty training sequence
    assert s["ties"] == {"interactions": 2, "groups": 1, "share": 2 / 3}
    assert s["ratings"] is None and s["splits"] is None
    r = run("stats", str(tmp_path / "o" / "valid.parquet"))
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: {str(tmp_path / 'o' / 'valid.parquet')!r} is a file of the built folder {str(tmp_path / 'o')!r}; "
        "pass the folder (its split sizes are reported there) or its train.parquet\n"
    )


def test_a_source_without_interactions(tmp_path):
    from seqprep.stats import Source, format_report

    empty = np.zeros(0, dtype=np.int64)
    src = Source(path="x", kind="split", offsets=np.zeros(3, dtype=np.int64), items=empty.astype(np.int32),
                 timestamps=empty, ratings=None, num_items=0, time_unit="s",
                 rows={"read": 0, "kept": 0, "removed": 0}, steps=[], splits=None)
    s = summarize(src)
    assert (s["users"], s["items"], s["interactions"], s["density"]) == (2, 0, 0, 0.0)
    assert s["length_histogram"] == {"edges": [0, 1], "counts": [2]}
    assert s["time"]["per_month"] is None and s["popularity"]["gini"] == 0.0
    assert "interactions in ties" in format_report([s])


def test_stats_from_stdin_and_reader_options():
    r = run("stats", "-", "--no-header", "--names", "item,user,time", "--json", input="5,1,10\n6,1,11\n5,2,12\n")
    s = json.loads(r.stdout)["datasets"][0]
    assert (s["users"], s["items"], s["interactions"]) == (2, 2, 3)


STATS_ERRORS = [
    (["stats", "{tmp}/nope.csv"], "Error: input file '{tmp}/nope.csv' not found; check the path"),
    (["stats", "-", "-"], "Error: stdin (-) can be read only once; pass - a single time"),
    (
        ["stats", "{tmp}/r.csv", "--plot", "{tmp}/p.jpg"],
        "Error: --plot '{tmp}/p.jpg': unknown image type; give a file name ending in .png, .svg, .pdf",
    ),
    (
        ["stats", "{tmp}/r.csv", "--plot", "{tmp}/no/p.png"],
        "Error: --plot '{tmp}/no/p.png': folder '{tmp}/no' does not exist; create it or choose another file",
    ),
]


@pytest.mark.parametrize("args,expected", STATS_ERRORS)
def test_stats_errors_are_one_line(write, tmp_path, args, expected):
    write("r.csv", TIES_CSV)
    tmp = str(tmp_path)
    r = run(*[a.format(tmp=tmp) for a in args])
    assert r.exit_code == 1
    assert r.stderr == expected.format(tmp=tmp) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_describe_is_the_python_face(write):
    from seqprep.stats import describe

    doc = describe(write("r.csv", TIES_CSV))
    assert doc["schema_version"] == 2 and doc["datasets"][0]["interactions"] == 7
    with pytest.raises(seqprep.InputError, match="can be read only once"):
        describe(["-", "-"])


def test_plot_without_matplotlib_says_how_to_install(write, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    r = run("stats", str(write("r.csv", TIES_CSV)), "--plot", str(tmp_path / "p.png"))
    assert r.exit_code == 1
    assert r.stderr == "Error: --plot needs matplotlib, which is not installed; pip install 'seqprep[plot]'\n"
    assert not (tmp_path / "p.png").exists()


def test_plot_writes_a_png(write, tmp_path):
    pytest.importorskip("matplotlib")
    a, b = write("a.csv", TIES_CSV), write("b.csv", _random_log(3, 500).to_csv(index=False))
    r = run("stats", str(a), str(b), "--plot", str(tmp_path / "p.png"), "--json")
    assert r.exit_code == 0, r.output
    data = (tmp_path / "p.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 2 * height > 600  # three panels side by side
    assert json.loads(r.stdout)["datasets"][1]["interactions"] == 525
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "p.png"]  # no temporary litter


# --------------------------------------------------------------------------------------------------
# Real data


@pytest.mark.real_data
def test_ml_latest_small_stats_match_pandas():
    path = shared_file("ml-latest-small/ratings.csv")
    s = summarize(open_source(str(path)))
    assert (s["users"], s["items"], s["interactions"]) == (610, 9724, 100836)
    df = pd.read_csv(path).rename(columns={"userId": "user", "movieId": "item", "timestamp": "time"})
    _compare(ours(s), pandas_reference(df))
    assert s["time"]["first_utc"].startswith("1996-03-29") and s["time"]["last_utc"].startswith("2018-09-24")


def test_step_details_never_merge_across_steps(tmp_path):
    """Each step keeps its own users_removed/items_removed, even when a later step has the same keys."""
    from click.testing import CliRunner

    from seqprep.cli import cli
    from tests.conftest import ROOT

    out = tmp_path / "o"
    args = ["build", str(ROOT / "sample_data" / "ratings.csv"), "-o", str(out), "-q"]
    assert CliRunner().invoke(cli, [*args, "--dedup", "first", "--min-item-count", "5"]).exit_code == 0
    text = CliRunner().invoke(cli, ["stats", str(out)]).stdout
    lines = [" ".join(line.split()) for line in text.splitlines()]
    first = lines.index(next(x for x in lines if x.startswith("1. missing")))
    block = lines[first : lines.index(next(x for x in lines if x.startswith("2. dedup")))]
    assert "items_removed 0" in block and "users_removed 0" in block
    kcore = lines[lines.index(next(x for x in lines if x.startswith("3. kcore"))) :]
    assert any(x.startswith("items_removed ") and x != "items_removed 0" for x in kcore)
