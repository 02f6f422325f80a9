"""--vocab-from / --unknown / --extend: a reused vocabulary is a contract with a trained embedding table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.cli import cli
from tests.conftest import TIES_CSV

# the week after TIES_CSV: user 4 is new, items 8 and 100 are unseen (3 rows of 5), user 3 is absent
NEXT_CSV = """userId,movieId,rating,timestamp
4,5,4.0,40
1,8,3.0,41
1,7,2.0,42
5,8,5.0,43
2,100,1.0,44
"""


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def old(write, tmp_path):
    seqprep.build(write("old.csv", TIES_CSV), tmp_path / "old")  # items 7, 5, 6, 99 -> 1..4; users 1, 2, 3
    return tmp_path / "old"


def _seq_ids(ds: seqprep.Dataset) -> dict:
    """user id -> item ids (None for oov) in sequence order."""
    users = ds.user_vocab.ids.to_pylist()
    return {users[u]: ds.decode(ds.sequence(u)).to_pylist() for u in range(ds.num_users) if ds.lengths[u]}


def test_drop_keeps_indices_and_counts_rows(write, tmp_path, old):
    res = seqprep.build(write("new.csv", NEXT_CSV), tmp_path / "new", vocab_from=str(old))
    ds = seqprep.load(tmp_path / "new")
    assert ds.item_vocab.ids.to_pylist() == [7, 5, 6, 99]  # the old vocabulary, unchanged
    assert ds.item_vocab.counts.tolist() == [1, 1, 0, 0]  # counts describe the NEW build
    assert ds.user_vocab.ids.to_pylist() == [1, 2, 3, 4]  # 5 had only unseen items: dropped with them
    assert ds.lengths.tolist() == [1, 0, 0, 1]  # user 3 keeps its row, empty
    assert _seq_ids(ds) == {1: [7], 4: [5]}
    step = res.meta["steps"][-1]
    assert step == {
        "step": "unknown_items",
        "action": "drop",
        "rows_before": 5,
        "rows_removed": 3,
        "rows_after": 2,
        "items": 4,
        "unseen_items": 2,
        "unseen_rows": 3,
    }
    v = res.meta["vocab_reuse"]
    assert (v["unseen_items"], v["unseen_items_share"], v["unseen_rows"], v["unseen_rows_share"]) == (2, 0.5, 3, 0.6)
    assert res.meta["rows"] == {"read": 5, "kept": 2, "removed": 3}
    assert res.meta["oov_idx"] is None and res.meta["num_embeddings"] == 5
    old_files = json.loads((old / "meta.json").read_text())["outputs"]["files"]
    assert v["base_sha256"] == {f: old_files[f]["sha256"] for f in ("items.parquet", "users.parquet")}


def test_oov_maps_unseen_to_n_plus_1(write, tmp_path, old):
    res = seqprep.build(write("new.csv", NEXT_CSV), tmp_path / "new", vocab_from=str(old), unknown="oov")
    assert res.meta["oov_idx"] == 5 and res.meta["num_embeddings"] == 6 and res.meta["item_idx_range"] == [1, 5]
    ds = seqprep.load(tmp_path / "new")
    assert ds.user_vocab.ids.to_pylist() == [1, 2, 3, 4, 5]  # new users appended in --user-order id
    assert _seq_ids(ds) == {1: [None, 7], 2: [None], 4: [5], 5: [None]}
    assert ds.sequence(0).tolist() == [5, 1]
    assert res.meta["rows"]["removed"] == 0
    assert ds.encode([7, 8, "99"]).tolist() == [1, 5, 4]  # unknown -> oov_idx, text "99" -> item 99
    assert ds.encode([8], unknown="missing").tolist() == [-1]
    with pytest.raises(KeyError, match="1 ids are not in the vocabulary, e.g. 8"):
        ds.encode([7, 8], unknown="error")
    with pytest.raises(IndexError, match="index 6 is outside 1..5"):
        ds.decode([6])


def test_error_names_unseen_ids_and_writes_nothing(write, tmp_path, old):
    new = write("new.csv", NEXT_CSV)
    r = run("build", str(new), "--vocab-from", str(old), "--unknown", "error", "-o", str(tmp_path / "new"))
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: 2 item ids (3 rows) are not in the vocabulary of {str(old)!r}, e.g. 8, 100; "
        "pass --unknown drop or --unknown oov to accept them, or --extend to add them\n"
    )
    assert not (tmp_path / "new").exists()


def test_extend_appends_in_item_order(write, tmp_path, old):
    res = seqprep.build(write("new.csv", NEXT_CSV), tmp_path / "new", vocab_from=str(old), extend=True)
    ds = seqprep.load(tmp_path / "new")
    assert ds.item_vocab.ids.to_pylist() == [7, 5, 6, 99, 8, 100]  # 8 (2 rows) before 100 (1 row)
    assert ds.item_vocab.counts.tolist() == [1, 1, 0, 0, 2, 1]
    assert res.meta["num_embeddings"] == 7
    assert res.meta["vocab_reuse"]["new_items"] == 2 and res.meta["vocab_reuse"]["mode"] == "extend"
    assert _seq_ids(ds) == {1: [8, 7], 2: [100], 4: [5], 5: [8]}


def test_cli_summary_reports_unseen(write, tmp_path, old):
    r = run(
        "build",
        str(write("new.csv", NEXT_CSV)),
        "--vocab-from",
        str(old),
        "--unknown",
        "oov",
        "-o",
        str(tmp_path / "n"),
    )
    assert r.exit_code == 0
    assert r.stdout == ""
    assert (
        f"seqprep: vocabulary from {old} (frozen): 2 unseen items (50.00% of the log's items) in 3 rows (60.00%), "
        "mapped to oov_idx; 0 new items, 2 new users\n"
    ) in r.stderr


def test_cli_summary_says_how_many_unseen_rows_the_filters_left(write, tmp_path, old):
    log = write("new.csv", NEXT_CSV + "1,8,3.0,45\n")  # a repeat of (1, 8): --dedup first removes it
    r = run("build", str(log), "--vocab-from", str(old), "--unknown", "oov", "--dedup", "first", "-o", str(tmp_path / "n"))
    assert r.exit_code == 0, r.output
    assert "in 4 rows (66.67%), mapped to oov_idx (3 of them left after the filters); 0 new items" in r.stderr


def test_text_log_against_integer_vocabulary(write, tmp_path, old):
    # --id-type str reads the new ids as text: "7" is cast to 7 exactly and keeps its index
    res = seqprep.build(write("a.csv", "user,item,ts\n1,7,1\n9,5,2\n"), None, vocab_from=str(old), id_type="str")
    assert res.items.ids.to_pylist() == [7, 5, 6, 99]
    assert res.sequences.items.tolist() == [1, 2]
    assert res.users.ids.to_pylist() == [1, 2, 3, 9]
    # "007" or "x" are no integer ids: a clear error, not a silent miss
    bad = write("b.csv", "user,item,ts\n1,007,1\n1,x,2\n")
    r = run("build", str(bad), "--vocab-from", str(old), "-o", str(tmp_path / "o"))
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: --vocab-from {str(old)!r} holds integer item ids but this log has text item ids such as '007', 'x' "
        "that are not exactly integer; pass --id-type to read the log like OLD (OLD used int64), "
        "or rebuild OLD with --id-type str\n"
    )


def test_integer_log_against_text_vocabulary(write, tmp_path):
    seqprep.build(write("o.csv", "user,item,ts\nu1,17,1\nu1,a,2\n"), tmp_path / "old")  # text ids
    res = seqprep.build(
        write("n.csv", "user,item,ts\nu1,17,5\nu2,18,6\n"), None, vocab_from=str(tmp_path / "old"), unknown="oov"
    )
    assert res.items.ids.type == seqprep.load(tmp_path / "old").item_vocab.ids.type
    assert res.sequences.items.tolist() == [res.items.encode(["17"])[0], 3]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--extend"], "Error: --extend needs --vocab-from OLD_OUT (the build whose vocabularies to extend)"),
        (
            ["--unknown", "oov"],
            "Error: --unknown oov needs --vocab-from OLD_OUT (only a reused vocabulary has unknown items)",
        ),
        (
            ["--vocab-from", "{old}", "--extend", "--unknown", "error"],
            "Error: --extend adds every unseen item, so --unknown error has nothing to do; pass one of the two",
        ),
        (
            ["--vocab-from", "{tmp}/nope"],
            "Error: --vocab-from '{tmp}/nope' is not a seqprep output folder (needs meta.json, items.parquet, users.parquet); pass the -o folder of an earlier build",
        ),
    ],
)
def test_option_errors(write, tmp_path, old, args, expected):
    new = write("new.csv", NEXT_CSV)
    fmt = {"old": str(old), "tmp": str(tmp_path)}
    r = run("build", str(new), "-o", str(tmp_path / "o"), *[a.format(**fmt) for a in args])
    assert r.exit_code == 1
    assert r.stderr == expected.format(**fmt) + "\n"
    assert not (tmp_path / "o").exists()


def test_all_unseen_with_drop_is_an_error(write, tmp_path, old):
    r = run(
        "build", str(write("n.csv", "user,item,ts\n1,1000,1\n")), "--vocab-from", str(old), "-o", str(tmp_path / "o")
    )
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: no interactions left: every item of the log is unseen in {str(old)!r}; "
        "pass --unknown oov or --extend, or check --vocab-from\n"
    )


def test_extend_refuses_an_oov_vocabulary(write, tmp_path, old):
    seqprep.build(write("n.csv", NEXT_CSV), tmp_path / "oov", vocab_from=str(old), unknown="oov")
    with pytest.raises(seqprep.InputError, match="reserved index 5 for unknown items, so --extend cannot append there"):
        seqprep.build(write("m.csv", NEXT_CSV), None, vocab_from=str(tmp_path / "oov"), extend=True)


def test_meta_options_round_trip(write, tmp_path, old):
    res = seqprep.build(write("n.csv", NEXT_CSV), tmp_path / "n", vocab_from=str(old), extend=True, exports=["sasrec"])
    meta = json.loads((tmp_path / "n" / "meta.json").read_text())
    assert meta["options"]["vocab"] == {"vocab_from": str(old), "unknown": "drop", "extend": True}
    assert seqprep.BuildConfig.from_dict(meta["options"]) == res.config


# ------------------------------------------------------------------------------------------------
# Property: with --extend (and frozen), every id of the old vocabulary keeps its index, new items are
# exactly N+1.., and decoding the new build gives back the new log's rows in stable time order.

row_st = st.tuples(
    st.integers(1, 6), st.one_of(st.integers(1, 12), st.sampled_from(["7", "x", "y"])), st.integers(0, 4)
)


def _csv(rows: list[tuple]) -> str:
    return "user,item,time\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)


def _reference(rows: list[tuple]) -> dict:
    out: dict = {}
    for u, i, t in rows:
        out.setdefault(str(u), []).append((str(i), t))
    return {u: [i for i, _ in sorted(v, key=lambda x: x[1])] for u, v in out.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(row_st, min_size=1, max_size=25),
    st.lists(row_st, min_size=1, max_size=25),
    st.sampled_from(["frequency", "first-seen", "id"]),
    st.sampled_from(["id", "first-seen"]),
)
def test_extend_never_moves_old_ids(tmp_path_factory, old_rows, new_rows, item_order, user_order):
    tmp = tmp_path_factory.mktemp("ext")
    (tmp / "old.csv").write_text(_csv(old_rows))
    (tmp / "new.csv").write_text(_csv(new_rows))
    opts = {"item_order": item_order, "user_order": user_order, "id_type": "str"}
    seqprep.build(tmp / "old.csv", tmp / "old", **opts)
    seqprep.build(tmp / "new.csv", tmp / "new", vocab_from=str(tmp / "old"), extend=True, **opts)
    old, new = seqprep.load(tmp / "old"), seqprep.load(tmp / "new")
    n = old.num_items
    old_ids = old.item_vocab.ids.to_pylist()
    # every old id keeps its index; the new vocabulary starts with the old one
    assert new.item_vocab.ids.to_pylist()[:n] == old_ids
    assert new.encode(old_ids).tolist() == list(range(1, n + 1))
    assert new.encode_users(old.user_vocab.ids).tolist() == list(range(old.num_users))
    # new items are exactly the unseen ones, at N+1..; nothing else
    unseen = sorted({str(i) for _, i, _ in new_rows} - set(old_ids))
    assert sorted(new.item_vocab.ids.to_pylist()[n:]) == unseen
    assert new.num_embeddings == n + len(unseen) + 1
    # decoding gives the new log back, per user in stable time order; nothing dropped
    got = {u: items for u, items in _seq_ids(new).items()}
    assert got == _reference(new_rows)
    assert new.meta["vocab_reuse"]["unseen_items"] == len(unseen)
    # counts are the new build's
    counts = dict(zip(new.item_vocab.ids.to_pylist(), new.item_vocab.counts.tolist()))
    for item in old_ids:
        assert counts[item] == sum(1 for _, i, _ in new_rows if str(i) == item)


def test_stats_shows_the_unknown_items_step(write, tmp_path, old):
    seqprep.build(write("new.csv", NEXT_CSV), tmp_path / "new", vocab_from=str(old))
    r = run("stats", str(tmp_path / "new"))
    lines = [" ".join(line.split()) for line in r.stdout.splitlines()]
    step = lines.index(next(x for x in lines if x.startswith("2. unknown_items")))
    assert lines[step].endswith("rows (-3)")
    assert "unseen_items 2" in lines[step:]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_st, min_size=1, max_size=25), st.lists(row_st, min_size=1, max_size=25))
def test_frozen_oov_property(tmp_path_factory, old_rows, new_rows):
    tmp = tmp_path_factory.mktemp("oov")
    (tmp / "old.csv").write_text(_csv(old_rows))
    (tmp / "new.csv").write_text(_csv(new_rows))
    seqprep.build(tmp / "old.csv", tmp / "old", id_type="str")
    res = seqprep.build(tmp / "new.csv", tmp / "new", vocab_from=str(tmp / "old"), unknown="oov", id_type="str")
    old, new = seqprep.load(tmp / "old"), seqprep.load(tmp / "new")
    n = old.num_items
    assert new.item_vocab.ids.to_pylist() == old.item_vocab.ids.to_pylist()
    assert res.meta["oov_idx"] == n + 1 and new.num_embeddings == n + 2
    known = set(old.item_vocab.ids.to_pylist())
    ref = {u: [i if i in known else None for i in items] for u, items in _reference(new_rows).items()}
    assert _seq_ids(new) == ref
    unseen_rows = sum(1 for _, i, _ in new_rows if str(i) not in known)
    assert res.meta["vocab_reuse"]["unseen_rows"] == unseen_rows
    assert int((new.items == n + 1).sum()) == unseen_rows
    assert new.items.min() >= 1 and new.items.max() <= n + 1


def test_vocabulary_encode_types(write, tmp_path):
    ds = seqprep.load(seqprep.build(write("r.csv", TIES_CSV), tmp_path / "o").output)  # integer ids 7, 5, 6, 99
    assert ds.encode([7, "5", "007", "7.0", "x"]).tolist() == [1, 2, -1, -1, -1]  # a mixed list is text
    assert ds.encode([7.0, 7.5, 99.0]).tolist() == [1, -1, 4]  # floats match only when whole
    assert ds.encode(np.array([99, 6], dtype=np.int32)).tolist() == [4, 3]
    assert ds.encode([]).tolist() == []
    assert ds.decode(ds.encode([99, 5])).to_pylist() == [99, 5]
    with pytest.raises(IndexError, match="index 0 is outside 1..4"):
        ds.decode([0])  # padding is no item
    seqprep.build(write("t.csv", "user,item,ts\nu,17,1\nu,a,2\n"), tmp_path / "t")  # text ids "17", "a"
    ts = seqprep.load(tmp_path / "t")
    assert ts.encode([17, "17", "a", 18]).tolist() == [1, 1, 2, -1]
    assert ts.encode_users(["u", "v"]).tolist() == [0, -1]
    assert ts.decode_users([0]).to_pylist() == ["u"]


def test_kcore_counts_each_unseen_item_under_its_own_id_with_oov(tmp_path):
    """docs/build.md: with --unknown oov, k-core counts an unseen item by its own id, not the oov
    bucket: unseen items of 3 rows pass --min-item-count 3, those of 2 rows go, though together the
    unseen rows (12) would reach it many times over."""
    old = ["userId,movieId,rating,timestamp"] + [f"{u},{i},4,{t}" for u in range(6) for t, i in enumerate([1, 2] * 3)]
    (tmp_path / "old.csv").write_text("\n".join(old) + "\n")
    seqprep.build(tmp_path / "old.csv", tmp_path / "OLD")
    items = lambda u: [1, 2] * 3 + [100 + u % 2, 200 + u % 3]  # noqa: E731 - 100, 101: 3 rows each; 200-202: 2 each
    new = ["userId,movieId,rating,timestamp"] + [f"{u},{i},4,{t}" for u in range(6) for t, i in enumerate(items(u))]
    (tmp_path / "new.csv").write_text("\n".join(new) + "\n")
    r = seqprep.build(tmp_path / "new.csv", tmp_path / "NEW", vocab_from=str(tmp_path / "OLD"), unknown="oov", min_item_count=3)
    kcore = next(s for s in r.meta["steps"] if s["step"] == "kcore")
    assert (kcore["rows_removed"], kcore["items_removed"]) == (6, 3)
    assert r.meta["vocab_reuse"]["unseen_rows"] == 12 and r.meta["vocab_reuse"]["oov_interactions"] == 6
    assert r.meta["oov_idx"] == 3 and int((r.sequences.items == 3).sum()) == 6  # items 1, 2 of OLD, then oov
