"""Every option of the local build under ``--memory-limit``: the same bytes in every output file.

One table of option combinations (filters, dedup, k-core, reused vocabularies, splits, windows,
negatives, truncation, sessions), each built in memory and with a tiny memory limit (many chunks,
user ranges and row groups), every file compared byte for byte (meta.json as a dict without the
output path). Options the spilled build cannot run yet must refuse in one line (the last test).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import seqprep.steps.splits as splits
from seqprep import build
from seqprep.errors import ConfigError
from seqprep.kernels.sequences import sequence_parts


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
}
REUSE = {
    "vocab_from_drop": {"vocab_from": "REF"},
    "vocab_from_oov": {"vocab_from": "REF", "unknown": "oov"},
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


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        (
            {"features": ["kind"], "split": "loo", "vocab_from_train": True},
            "--vocab-from-train with --feature/--event-col",
        ),
        ({"session_gap": None, "session_col": "kind"}, "--session-col"),
    ],
)
def test_what_the_spilled_build_cannot_run_refuses_in_one_line(options, flag, tmp_path):
    (tmp_path / "log.csv").write_text(_log(0, 50))
    with pytest.raises(ConfigError, match=f"--memory-limit does not support the {flag} options yet"):
        build(tmp_path / "log.csv", tmp_path / "o", memory_limit="1GB", **options)
    assert not (tmp_path / "o").exists()
