"""Conformance on real public logs from ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import numpy as np
import pytest

import seqprep
from tests.conftest import shared_file

pytestmark = pytest.mark.real_data


def test_ml_100k_u_data(tmp_path):
    path = shared_file("ml-100k/u.data")
    res = seqprep.build(path, tmp_path / "o", formats=("parquet", "npz"))
    m = res.meta
    assert (m["num_users"], m["num_items"], m["num_interactions"]) == (943, 1682, 100000)
    assert m["ties"]["interactions"] == 75772  # SOURCES.md: rows sharing (user, timestamp)
    ds = seqprep.load(tmp_path / "o")
    assert ds.lengths.min() >= 20
    assert ds.items.min() == 1 and ds.items.max() == 1682
    ts = ds.timestamps
    inside = np.ones(len(ts) - 1, dtype=bool)
    inside[ds.offsets[1:-1] - 1] = False
    assert (np.diff(ts)[inside] >= 0).all()


def test_ml_latest_small_ratings_csv():
    res = seqprep.build(shared_file("ml-latest-small/ratings.csv"), None)
    m = res.meta
    assert (m["num_users"], m["num_items"], m["num_interactions"]) == (610, 9724, 100836)
    assert res.sequences.ratings is not None and set(np.unique(res.sequences.ratings)) <= {x / 2 for x in range(1, 11)}


def test_recbole_inter_matches_u_data():
    a = seqprep.build(shared_file("ml-100k/u.data"), None)
    b = seqprep.build(shared_file("ml-100k-recbole/ml-100k.inter"), None)
    assert np.array_equal(a.sequences.items, b.sequences.items)
    assert np.array_equal(a.sequences.timestamps, b.sequences.timestamps)


def test_amazon_fashion_jsonl_gz():
    res = seqprep.build(shared_file("amazon2018-fashion-5core/AMAZON_FASHION_5.json.gz"), None)
    assert (res.meta["num_users"], res.meta["num_items"], res.meta["num_interactions"]) == (406, 31, 3176)


def test_magazine_headerless_item_first():
    res = seqprep.build(
        shared_file("amazon2018-magazine-subscriptions/Magazine_Subscriptions.csv"),
        None,
        names="item,user,rating,timestamp",
    )
    assert (res.meta["num_users"], res.meta["num_items"], res.meta["num_interactions"]) == (72098, 2428, 89689)
