"""Every option of the local build under ``--memory-limit``: the same bytes in every output file.

One table of option combinations (filters, dedup, k-core rounds and passes, reused vocabularies,
every vocabulary order, splits (date splits too), windows, negatives, truncation, sessions, features
(token lists too), events, ``--vocab-from-train`` with all of them), each built in memory and with
a tiny memory limit (many chunks, user ranges and row groups), every file compared byte for byte
(meta.json as a dict without the output path); then session-keyed logs in the Diginetica layout
(``--session-col``, a date plus an offset as ``--time-col``) and the presets.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import seqprep.steps.splits as splits
from seqprep import build, verify
from seqprep.kernels.sequences import sequence_parts
from tests.conftest import shared_file


def _log(seed: int, n: int = 600) -> str:
    """A log with repeats, ties, missing values and a rating column (some ratings missing)."""
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.6, n) % 40
    items = rng.zipf(1.4, n) % 60
    times = rng.integers(0, 300, n) * 10
    ratings = rng.integers(1, 6, n).astype(str)
    ratings[rng.random(n) < 0.05] = ""
    kinds = rng.choice(np.array(["view", "cart", "buy", ""]), n)
    prices = np.where(rng.random(n) < 0.1, "", (rng.integers(0, 1000, n) / 10).astype(str))
    rows = [f"u{u},i{i},{t},{r},{k},{p}" for u, i, t, r, k, p in zip(users, items, times, ratings, kinds, prices)]
    rows[7] = "u1,,5,3,view,1"  # a missing item
    rows[11] = ",i2,5,3,view,1"  # a missing user
    rows[13] = f"u{users[0]},i{items[0]},{times[0]},{ratings[0]},{kinds[0]},{prices[0]}"  # an exact duplicate
    return "user,item,ts,rating,kind,price\n" + "\n".join(rows) + "\n"


CASES = {
    "plain": {},
    "window": {"since": "100", "until": "2500"},
    "min_rating": {"min_rating": 3},
    "dedup_exact": {"dedup": "exact"},
    "dedup_first": {"dedup": "first"},
    "dedup_last": {"dedup": "last", "item_order": "first-seen"},
    "dedup_consecutive": {"dedup": "consecutive", "user_order": "first-seen"},
    "kcore": {"min_user_count": 3, "min_item_count": 3},
    "kcore_one_round": {"min_user_count": 4, "min_item_count": 4, "kcore_rounds": 1},
    "all_filters": {
        "since": "50",
        "min_rating": 2,
        "dedup": "first",
        "min_user_count": 2,
        "min_item_count": 2,
        "item_order": "id",
    },
    "loo_negatives": {"split": "loo", "eval_negatives": 5, "min_user_count": 2},
    "users_popularity_windows": {
        "split": "users:0.6,0.2,0.2",
        "seed": 3,
        "eval_negatives": 3,
        "negatives": "popularity",
        "windows": "3:1",
    },
    "time_quantiles_truncate": {"split": "time:0.7,0.85", "max_len": 4, "truncate": True, "pad": "right"},
    "time_dates": {"split": "time", "valid_from": "1500", "test_from": "2500", "max_len": 3},
    "windows_only": {"windows": "2:2", "dedup": "consecutive"},
    "sessions": {"session_gap": "200", "split": "loo"},
    "vocab_from_train_loo": {"split": "loo", "vocab_from_train": True, "eval_negatives": 2},
    "vocab_from_train_time": {
        "split": "time:0.6,0.8",
        "vocab_from_train": True,
        "item_order": "first-seen",
        "user_order": "first-seen",
    },
    "vocab_from_train_users": {
        "split": "users:0.5,0.25,0.25",
        "vocab_from_train": True,
        "min_user_count": 2,
        "max_len": 3,
        "truncate": True,
    },
    "time_features": {
        "time_features": ["delta", "delta-log2", "interval:4"],
        "split": "loo",
        "max_len": 3,
        "truncate": True,
    },
    "features": {
        "features": ["kind", "price:cat"],
        "split": "loo",
        "max_len": 3,
        "windows": "2:1",
        "item_order": "first-seen",
    },
    "features_truncate": {
        "features": ["kind", "price:num"],
        "time_features": ["delta"],
        "split": "users:0.6,0.2,0.2",
        "max_len": 2,
        "truncate": True,
    },
    "events": {
        "event_col": "kind",
        "target_events": ["buy", "cart"],
        "split": "loo",
        "eval_negatives": 2,
        "windows": "2:1",
    },
    "events_kcore_on_target": {
        "event_col": "kind",
        "target_events": ["buy"],
        "kcore_on": "target",
        "min_user_count": 2,
        "min_item_count": 2,
        "split": "time:0.7,0.85",
    },
    "where": {"where": ["rating >= 2 and ts < 2800", "item != 'i3'"], "dedup": "first", "min_user_count": 2},
    "where_unknown": {"where": ["not rating > 4"]},
    "where_columns": {"where": ["kind in ['cart', 'buy'] or price > 50", "kind is not null"], "min_item_count": 2},
    "where_ids": {"where": ["user in ['u1', 'u2', 'u3', 'u5', 'u8'] or item == 'i1'"], "split": "loo"},
    "kcore_passes": {"kcore_passes": ("user", "item", "user"), "min_user_count": 2, "min_item_count": 3, "split": "loo"},
    "kcore_passes_item_first": {"kcore_passes": ("item", "user"), "min_user_count": 4, "min_item_count": 2, "dedup": "first"},
    "item_order_sequence": {"item_order": "sequence", "split": "loo", "time_features": ["delta"]},
    "user_order_date": {"user_order": "date", "where": ["rating >= 2"], "split": "time:0.7,0.85"},
    "session_col": {"session_col": "kind", "split": "loo"},
    "session_col_kcore": {"session_col": "kind", "min_user_count": 2, "min_item_count": 2, "user_order": "first-seen"},
    "tokens": {"features": ["kind:tokens:a", "price:cat"], "split": "loo", "max_len": 3, "windows": "2:1"},
    "tokens_truncate": {
        "features": ["kind:tokens:a", "price"],
        "split": "users:0.5,0.25,0.25",
        "max_len": 3,
        "truncate": True,
        "item_order": "first-seen",
    },
    "vocab_from_train_features": {"features": ["kind", "price:cat"], "split": "loo", "vocab_from_train": True, "max_len": 3},
    "vocab_from_train_tokens_first_seen": {
        "features": ["kind:tokens:a", "price"],
        "split": "time:0.6,0.8",
        "vocab_from_train": True,
        "item_order": "first-seen",
        "user_order": "first-seen",
        "windows": "2:1",
    },
    "vocab_from_train_events": {
        "event_col": "kind",
        "target_events": ["buy", "cart"],
        "features": ["price:cat"],
        "split": "loo",
        "vocab_from_train": True,
        "eval_negatives": 2,
    },
}
REUSE = {
    "vocab_from_drop": {"vocab_from": "REF"},
    "vocab_from_oov": {"vocab_from": "REF", "unknown": "oov"},
    "vocab_from_oov_filtered": {"vocab_from": "REF", "unknown": "oov", "dedup": "first", "min_user_count": 3, "min_item_count": 2},
    "vocab_from_extend": {"vocab_from": "REF", "extend": True, "min_item_count": 2},
    "vocab_from_features": {"vocab_from": "REF", "features": ["kind"], "event_col": "kind", "split": "loo"},
}


def tree_digest(folder: Path) -> dict[str, object]:
    """sha256 of every output file (nested ones too); meta.json as a dict without the output path."""
    out: dict[str, object] = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    meta = json.loads((folder / "meta.json").read_text())
    del meta["options"]["output"]
    out["meta.json"] = meta
    return out


@pytest.fixture(autouse=True)
def _small_row_groups(monkeypatch):
    """Split files in row groups of ~50 interactions: the spilled build writes many user ranges."""
    monkeypatch.setattr(splits, "sequence_parts", lambda offsets: sequence_parts(offsets, per_part=50))


def _same(tmp_path, options: dict, text: str) -> None:
    (tmp_path / "log.csv").write_text(text)
    common = {"formats": ("parquet", "npz"), **options}
    build(tmp_path / "log.csv", tmp_path / "memory", **common)
    build(tmp_path / "log.csv", tmp_path / "spilled", memory_limit=1, block_size="1KiB", **common)
    got, want = tree_digest(tmp_path / "spilled"), tree_digest(tmp_path / "memory")
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_memory_limit_is_byte_identical(case, seed, tmp_path):
    _same(tmp_path, CASES[case], _log(seed))


@pytest.mark.parametrize("case", list(REUSE))
def test_memory_limit_reuses_vocabularies_byte_identically(case, tmp_path):
    ref = tmp_path / "ref"
    (tmp_path / "old.csv").write_text(_log(5, 300))
    build(tmp_path / "old.csv", ref, **({"features": ["kind"], "event_col": "kind"} if "features" in case else {}))
    options = {k: str(ref) if v == "REF" else v for k, v in REUSE[case].items()}
    _same(tmp_path, options, _log(6))
    report = verify(tmp_path / "spilled")
    assert report.ok, report.problems
    if case == "vocab_from_oov_filtered":  # the filters removed some of the unseen rows
        v = json.loads((tmp_path / "spilled" / "meta.json").read_text())["vocab_reuse"]
        assert 0 < v["oov_interactions"] < v["unseen_rows"]


def test_memory_limit_joins_attribute_tables_byte_identically(tmp_path):
    rows = [f"i{k},{'abc'[k % 3]},{k / 4}" for k in range(0, 60, 2)]
    (tmp_path / "items.csv").write_text("item,genre,price\n" + "\n".join(rows) + "\n")
    (tmp_path / "users.csv").write_text("user,age\n" + "\n".join(f"u{k},{20 + k}" for k in range(40)) + "\n")
    tables = {
        "item_table": str(tmp_path / "items.csv"),
        "item_attrs": ("genre", "price:num"),
        "user_table": str(tmp_path / "users.csv"),
        "user_attrs": ("age:cat",),
    }
    _same(tmp_path, {**tables, "split": "loo", "min_item_count": 2}, _log(2))


def _sessions(seed: int, n: int = 500) -> str:
    """The Diginetica layout: ``;``, sessions with ``NA`` users (and a few with two users), a date
    plus an offset in milliseconds as the time, clicks in no particular order."""
    rng = np.random.default_rng(seed)
    sessions = rng.integers(1, 90, n)
    users = np.where(rng.random(n) < 0.4, "NA", (sessions % 23 + rng.integers(0, 2, n) * (sessions % 3 == 0)).astype(str))
    items = rng.zipf(1.3, n) % 70
    frames = rng.integers(0, 40, n) * 1000
    dates = np.array([f"2016-05-{d:02d}" for d in range(1, 15)])[(sessions + rng.integers(0, 2, n)) % 14]
    rows = [f"{s};{u};{i};{f};{d}" for s, u, i, f, d in zip(sessions, users, items, frames, dates)]
    return "session_id;user_id;item_id;timeframe;eventdate\n" + "\n".join(rows) + "\n"


LAYOUT = {"item_col": "item_id", "time_col": "eventdate,timeframe"}
SESSION_CASES = {
    "session_key": {"user_col": "session_id", **LAYOUT, "split": "loo"},
    "session_col": {"session_col": "session_id", "user_col": "user_id", **LAYOUT, "split": "loo", "min_item_count": 2},
    "session_col_days": {"session_col": "session_id", "user_col": "user_id", **LAYOUT, "split": "days:4", "vocab_from_train": True},
    "days": {"user_col": "session_id", **LAYOUT, "split": "days:3", "eval_negatives": 2},
    "days_sequence_date": {"user_col": "session_id", **LAYOUT, "split": "days:2", "item_order": "sequence", "user_order": "date"},
    "days_vocab_from_train_passes": {
        "user_col": "session_id",
        **LAYOUT,
        "split": "days:3",
        "vocab_from_train": True,
        "item_order": "sequence",
        "user_order": "date",
        "kcore_passes": ("user", "item", "user"),
        "min_user_count": 2,
        "min_item_count": 2,
        "max_len": 3,
    },
    "srgnn_rules": {"preset": "srgnn", "min_item_count": 2},
}


@pytest.mark.parametrize("case", list(SESSION_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_memory_limit_builds_session_logs_byte_identically(case, seed, tmp_path):
    _same(tmp_path, SESSION_CASES[case], _sessions(seed))


@pytest.mark.real_data
@pytest.mark.parametrize("options", [{"preset": "srgnn"}, {"session_col": "session_id", "user_col": "user_id", **LAYOUT}])
def test_memory_limit_builds_the_diginetica_sample_byte_identically(options, tmp_path):
    _same(tmp_path, options, shared_file("diginetica-sample/sample_train-item-views.csv").read_text())


@pytest.mark.parametrize(
    "options",
    [
        {"preset": "sasrec", "split": "loo"},
        {"preset": "bert4rec", "min_user_count": 3},
        {"preset": "caser", "min_user_count": 3, "min_item_count": 3},
        {"preset": "recbole"},
    ],
    ids=lambda o: o["preset"],
)
def test_memory_limit_runs_the_presets_byte_identically(options, tmp_path):
    _same(tmp_path, options, _log(3))


def test_memory_limit_encodes_token_lists_of_json_lines_byte_identically(tmp_path):
    rng = np.random.default_rng(4)
    tags = [[], ["a"], ["a", "b"], ["c", None, "a"], None]
    rows = [
        json.dumps({"user": f"u{u}", "item": f"i{i}", "ts": int(t), "tags": tags[k]})
        for u, i, t, k in zip(rng.integers(0, 30, 400), rng.zipf(1.4, 400) % 50, rng.integers(0, 100, 400), rng.integers(0, 5, 400))
    ]
    text = "\n".join(rows) + "\n"
    for options in ({"features": ["tags"], "split": "loo", "max_len": 2}, {"features": ["tags"], "split": "loo", "vocab_from_train": True}):
        d = tmp_path / ("vft" if "vocab_from_train" in options else "plain")
        d.mkdir()
        (d / "log.jsonl").write_text(text)
        common = {"formats": ("parquet", "npz"), "user_col": "user", "item_col": "item", "time_col": "ts", **options}
        build(d / "log.jsonl", d / "memory", **common)
        build(d / "log.jsonl", d / "spilled", memory_limit=1, block_size="1KiB", **common)
        assert tree_digest(d / "spilled") == tree_digest(d / "memory")


# The per-user split rules of issue 16 (RecBole's leave-one-out, Caser's 70/10/20): every output kind
PER_USER_SPLITS = {
    "loo_recbole_negatives_export": {"split": "loo:recbole", "eval_negatives": 3, "max_len": 4, "exports": ("sasrec", "seqlines")},
    "loo_recbole_vocab_from_train": {"split": "loo:recbole", "vocab_from_train": True, "windows": "2:1"},
    "ratio_windows_negatives": {"split": "ratio:0.7,0.1,0.2", "windows": "3:2", "eval_negatives": 2, "negatives": "popularity", "max_len": 3},
    "ratio_no_valid_truncate": {"split": "ratio:0.8,0,0.2", "max_len": 2, "truncate": True, "exports": ("seqlines",)},
    "ratio_vocab_from_train_sequence": {"split": "ratio:0.6,0.2,0.2", "vocab_from_train": True, "item_order": "sequence", "features": ["kind"]},
    "ratio_events": {"split": "ratio:0.5,0.25,0.25", "event_col": "kind", "target_events": ("buy", "cart"), "windows": "2:1"},
}


@pytest.mark.parametrize("case", list(PER_USER_SPLITS))
@pytest.mark.parametrize("seed", [0, 1])
def test_memory_limit_runs_the_per_user_splits_byte_identically(case, seed, tmp_path):
    _same(tmp_path, PER_USER_SPLITS[case], _log(seed))


# the options issue 18 brought to the Dask engine (tests/test_dask_options.py), here under --memory-limit
FEATURE_REUSE = {
    "event_of_numbers": ({}, {"features": ["price:num"], "event_col": "price", "split": "loo"}),
    "vocab_from_tokens_time_features": (
        {"features": ["kind:tokens:a", "price:cat"], "time_features": ["delta-log2", "delta"]},
        {"vocab_from": "REF", "features": ["kind:tokens:a", "price:cat"], "time_features": ["delta-log2", "delta"], "split": "loo"},
    ),
    "vocab_from_time_features_extend": (
        {"time_features": ["delta-log2", "interval:4"], "event_col": "kind"},
        {"vocab_from": "REF", "extend": True, "time_features": ["delta-log2", "interval:4"], "event_col": "kind", "item_order": "first-seen"},
    ),
}


@pytest.mark.parametrize("case", list(FEATURE_REUSE))
def test_memory_limit_reuses_feature_vocabularies_byte_identically(case, tmp_path):
    old, options = FEATURE_REUSE[case]
    ref = tmp_path / "ref"
    (tmp_path / "old.csv").write_text(_log(5, 300))
    build(tmp_path / "old.csv", ref, **old)
    _same(tmp_path, {k: str(ref) if v == "REF" else v for k, v in options.items()}, _log(6))
