"""End-to-end invariants of a build: decode round trip, id ranges, determinism, file splits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from tests.conftest import TIES_CSV

DATA_FILES = ("sequences.parquet", "sequences.npz", "items.parquet", "users.parquet")


def _digest(folder: Path) -> dict[str, str]:
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in DATA_FILES if (folder / n).exists()}


def _decoded(ds: seqprep.Dataset) -> dict:
    """user id -> list of (item id, timestamp) in sequence order."""
    out = {}
    users = ds.user_vocab.ids.to_pylist()
    for u in range(ds.num_users):
        items = ds.item_vocab.decode(ds.sequence(u)).to_pylist()
        ts = ds.timestamps[ds.offsets[u] : ds.offsets[u + 1]].tolist()
        out[users[u]] = list(zip(items, ts))
    return out


def _reference(rows: list[tuple]) -> dict:
    """The same, computed the slow obvious way: stable sort of each user's rows by time."""
    out: dict = {}
    for u, i, t in rows:
        out.setdefault(u, []).append((i, t))
    return {u: sorted(v, key=lambda x: x[1]) for u, v in out.items()}


def test_ties_fixture_sequences(write, tmp_path):
    path = write("ratings.csv", TIES_CSV)
    res = seqprep.build(path, tmp_path / "out", formats=("parquet", "npz"))
    ds = seqprep.load(tmp_path / "out")
    # item order: frequency, ties by id -> 5 (2), 7 (3)... counts: 5:2, 7:3, 6:1, 99:1
    assert ds.item_vocab.ids.to_pylist() == [7, 5, 6, 99]
    assert ds.user_vocab.ids.to_pylist() == [1, 2, 3]
    assert _decoded(ds)[1] == [(7, 10), (6, 10), (5, 20), (5, 30)]  # tie at t=10 keeps file order
    assert ds.sequence(1).tolist() == [1, 1]  # the repeated pair stays (no dedup by default)
    assert res.meta["ties"] == {"interactions": 2, "groups": 1}
    assert res.meta["num_embeddings"] == 5 and res.meta["padding_idx"] == 0
    assert ds.ratings is not None and ds.ratings[:4].tolist() == [3.0, 2.0, 4.0, 4.5]


def test_parquet_schema(write, tmp_path):
    seqprep.build(write("r.csv", TIES_CSV), tmp_path / "o")
    schema = pq.read_schema(tmp_path / "o" / "sequences.parquet")
    assert [str(schema.field(n).type) for n in schema.names] == [
        "int32",
        "int64",
        "list<element: int32>",
        "list<element: int64>",
        "list<element: float>",
    ]
    assert schema.names == ["user_idx", "user_id", "items", "timestamps", "ratings"]
    items = pq.read_table(tmp_path / "o" / "items.parquet")
    assert items.column_names == ["item_idx", "item_id", "count"]
    assert items["item_idx"].to_pylist() == [1, 2, 3, 4]
    assert str(items.schema.field("count").type) == "int64"


def test_npz_loads_without_pickle(write, tmp_path):
    seqprep.build(write("r.csv", TIES_CSV), tmp_path / "o", formats=("npz",))
    with np.load(tmp_path / "o" / "sequences.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["items", "offsets", "ratings", "timestamps", "user_idx"]
        assert z["items"].dtype == np.int32 and z["offsets"].dtype == np.int64
        assert z["offsets"].tolist() == [0, 4, 6, 7]
    assert not (tmp_path / "o" / "sequences.parquet").exists()


def test_meta_records_inputs_and_options(write, tmp_path):
    path = write("r.csv", TIES_CSV)
    res = seqprep.build(path, tmp_path / "o", item_order="id")
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta == res.meta
    assert meta["inputs"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["inputs"][0]["bytes"] == path.stat().st_size
    assert meta["options"]["item_order"] == "id"
    again = seqprep.BuildConfig.from_dict(meta["options"])
    assert again == res.config
    for name, info in meta["outputs"]["files"].items():
        assert hashlib.sha256((tmp_path / "o" / name).read_bytes()).hexdigest() == info["sha256"]


@pytest.mark.parametrize("item_order", ["frequency", "first-seen", "id"])
@pytest.mark.parametrize("user_order", ["id", "first-seen"])
def test_orders(write, tmp_path, item_order, user_order):
    res = seqprep.build(write("r.csv", TIES_CSV), None, item_order=item_order, user_order=user_order)
    expect_items = {"frequency": [7, 5, 6, 99], "first-seen": [5, 7, 6, 99], "id": [5, 6, 7, 99]}[item_order]
    expect_users = {"id": [1, 2, 3], "first-seen": [1, 2, 3]}[user_order]
    assert res.items.ids.to_pylist() == expect_items
    assert res.users.ids.to_pylist() == expect_users


def test_user_first_seen_differs_from_id(write):
    res = seqprep.build(write("r.csv", "user,item,time\n9,a,1\n3,b,2\n9,c,3\n"), None, user_order="first-seen")
    assert res.users.ids.to_pylist() == [9, 3]


def test_first_seen_counts_only_kept_rows(write):
    # user 5's first row has no item: it is dropped, so user 7 is seen first among kept rows
    res = seqprep.build(write("r.csv", "user,item,time\n5,,1\n7,b,2\n5,c,3\n"), None, user_order="first-seen")
    assert res.users.ids.to_pylist() == [7, 5]
    assert res.meta["steps"][0]["missing_item"] == 1


def test_rerun_is_byte_identical(write, tmp_path):
    path = write("r.csv", TIES_CSV)
    seqprep.build(path, tmp_path / "a", formats=("parquet", "npz"))
    seqprep.build(path, tmp_path / "b", formats=("parquet", "npz"))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    meta_a, meta_b = (json.loads((tmp_path / d / "meta.json").read_text()) for d in "ab")
    assert meta_a["options"].pop("output") != meta_b["options"].pop("output")
    assert meta_a == meta_b


# ------------------------------------------------------------------------------------------------
# Property: decoding the output gives back exactly the kept input rows, per user in stable time order

row_st = st.tuples(
    st.one_of(st.integers(1, 6), st.sampled_from(["u1", "u2", "007"])),
    st.one_of(st.integers(1, 9), st.sampled_from(["x", "y", "0042"])),
    st.integers(0, 4),
)


def _csv(rows: list[tuple]) -> str:
    return "user,item,time\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=40), st.sampled_from(["frequency", "first-seen", "id"]))
def test_decode_round_trip(tmp_path_factory, rows, item_order):
    tmp = tmp_path_factory.mktemp("rt")
    (tmp / "log.csv").write_text(_csv(rows))
    seqprep.build(tmp / "log.csv", tmp / "out", formats=("parquet",), item_order=item_order)
    ds = seqprep.load(tmp / "out")
    text_rows = [(str(u), str(i), t) for u, i, t in rows]
    got = {str(k): [(str(i), t) for i, t in v] for k, v in _decoded(ds).items()}
    assert got == _reference(text_rows)
    # item indices are exactly 1..N and 0 never appears
    assert sorted(set(ds.items.tolist())) == list(range(1, ds.num_items + 1))
    assert ds.items.min() >= 1
    # ids keep their text ("007" is not 7): every id comes back as written
    assert {str(u) for u, _, _ in rows} == set(map(str, ds.user_vocab.ids.to_pylist()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=2, max_size=40), st.data())
def test_split_into_files_is_byte_identical(tmp_path_factory, rows, data):
    tmp = tmp_path_factory.mktemp("split")
    (tmp / "all.csv").write_text(_csv(rows))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(rows) - 1), max_size=3)))
    parts = []
    for k, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(rows)])):
        p = tmp / f"part{k}.csv"
        p.write_text(_csv(rows[a:b]))
        parts.append(p)
    seqprep.build(tmp / "all.csv", tmp / "one", formats=("parquet", "npz"))
    seqprep.build(parts, tmp / "many", formats=("parquet", "npz"))
    assert _digest(tmp / "one") == _digest(tmp / "many")


def test_padded_from_load(write, tmp_path):
    seqprep.build(write("r.csv", TIES_CSV), tmp_path / "o")
    ds = seqprep.load(tmp_path / "o")
    m = ds.padded(3)
    assert m.dtype == np.int32 and m.shape == (3, 3)
    assert m[0].tolist() == ds.sequence(0)[-3:].tolist()
    assert m[2].tolist() == [0, 0, ds.sequence(2)[0]]
    assert ds.padded(3, side="right")[2].tolist() == [ds.sequence(2)[0], 0, 0]


def test_in_memory_build_writes_nothing(write, tmp_path):
    res = seqprep.build(write("r.csv", TIES_CSV), None)
    assert res.output is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_unknown_option_names_valid_ones(write):
    with pytest.raises(seqprep.ConfigError, match="unknown option 'item_ordr'; valid options are"):
        seqprep.build(write("r.csv", TIES_CSV), None, item_ordr="id")
