"""Cleaning steps and sessions end to end: Python API, CLI, meta.json, conformance on ml-100k."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.cli import cli
from seqprep.config import BuildConfig, make_config
from seqprep.errors import InputError
from tests.conftest import shared_file
from tests.test_filter_kernels import _dedup_reference, _fixpoint, _one_pass


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _csv(rows) -> str:
    return "user,item,rating,timestamp\n" + "".join(
        f"{u},{i},{'' if math.isnan(r) else r},{t}\n" for u, i, t, r in rows
    )


def _decoded_rows(ds: seqprep.Dataset) -> list[tuple]:
    """(user id, item id, timestamp) of every interaction, users in output order, each in sequence order."""
    users = ds.user_vocab.decode(np.repeat(ds.user_idx, ds.lengths)).to_pylist()
    items = ds.item_vocab.decode(ds.items).to_pylist()
    return list(zip(users, items, ds.timestamps.tolist()))


# ------------------------------------------------------------------------------------------------
# Property: a filtered build decodes to exactly the rows a plain-Python pipeline keeps, in stable time order

row_st = st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(0, 6), st.sampled_from([1.0, 3.0, 4.5, math.nan]))


def _reference(rows, since, until, min_rating, mode, min_user, min_item, rounds):
    rows = [r for r in rows if (since is None or r[2] >= since) and (until is None or r[2] < until)]
    if min_rating is not None:
        rows = [r for r in rows if not math.isnan(r[3]) and r[3] >= min_rating]
    rows = [r for r, k in zip(rows, _dedup_reference(rows, mode)) if k]
    if min_user > 1 or min_item > 1:
        keep = _one_pass(rows, min_user, min_item) if rounds == 1 else _fixpoint(rows, min_user, min_item)
        rows = [r for r, k in zip(rows, keep) if k]
    order = sorted(range(len(rows)), key=lambda k: (rows[k][0], rows[k][2]))  # stable: ties in input order
    return [(rows[k][0], rows[k][1], rows[k][2]) for k in order]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(row_st, min_size=1, max_size=40),
    st.none() | st.integers(0, 3),
    st.none() | st.integers(4, 7),
    st.none() | st.sampled_from([1, 3.5]),
    st.sampled_from(["none", "exact", "first", "last", "consecutive"]),
    st.integers(0, 3),
    st.integers(0, 3),
    st.none() | st.just(1),
)
def test_filtered_build_decodes_to_the_kept_rows(
    tmp_path_factory, rows, since, until, min_rating, mode, mu, mi, rounds
):
    if rounds is not None and mu <= 1 and mi <= 1:
        rounds = None
    tmp = tmp_path_factory.mktemp("flt")
    (tmp / "log.csv").write_text(_csv(rows))
    opts = dict(
        since=since,
        until=until,
        min_rating=min_rating,
        dedup=mode,
        min_user_count=mu,
        min_item_count=mi,
        kcore_rounds=rounds,
    )
    expected = _reference(rows, since, until, min_rating, mode, mu, mi, rounds)
    if not expected:
        with pytest.raises(InputError, match="^no interactions left after the "):
            seqprep.build(tmp / "log.csv", tmp / "out", **opts)
        assert not (tmp / "out").exists()
        return
    res = seqprep.build(tmp / "log.csv", tmp / "out", formats=("parquet", "npz"), **opts)
    ds = seqprep.load(tmp / "out")
    assert _decoded_rows(ds) == expected
    assert sorted(set(ds.items.tolist())) == list(range(1, ds.num_items + 1))
    m = res.meta
    assert m["rows"]["read"] == len(rows)
    assert m["rows"]["read"] - sum(s["rows_removed"] for s in m["steps"]) == m["num_interactions"] == len(expected)
    for a, b in zip(m["steps"], m["steps"][1:]):
        assert a["rows_after"] == b["rows_before"]
    all_users = len({r[0] for r in rows})
    assert all_users - sum(s.get("users_removed", 0) for s in m["steps"]) == m["num_users"]
    assert len({r[1] for r in rows}) - sum(s.get("items_removed", 0) for s in m["steps"]) == m["num_items"]


def test_steps_run_in_the_documented_order(write):
    p = write("r.csv", "user,item,rating,timestamp\n1,5,4,10\n1,5,4,10\n1,6,1,20\n2,5,5,30\n2,6,5,40\n")
    res = seqprep.build(p, None, since=0, until=100, min_rating=2, dedup="exact", min_user_count=2)
    assert [s["step"] for s in res.meta["steps"]] == ["missing", "time_window", "min_rating", "dedup", "kcore"]
    # k-core runs after rating and dedup: user 1 is left with one row (its copy and its 1-star row are
    # gone) and is removed; before them it had three rows and would have stayed
    kc = res.meta["steps"][-1]
    assert [s["rows_removed"] for s in res.meta["steps"]] == [0, 0, 1, 1, 1]
    assert (kc["rows_removed"], kc["users_removed"], kc["items_removed"], kc["fixpoint"]) == (1, 1, 0, True)
    assert res.meta["num_users"] == 1 and res.meta["num_interactions"] == 2


def test_kcore_rounds_one_records_a_non_fixpoint(write):
    # item 9 is rare; dropping it leaves user 2 with one row, which a single pass does not revisit
    p = write("r.csv", "user,item,timestamp\n1,5,1\n1,6,2\n2,5,3\n2,9,4\n3,5,5\n3,6,6\n")
    one = seqprep.build(p, None, min_user_count=2, min_item_count=2, kcore_rounds=1).meta
    full = seqprep.build(p, None, min_user_count=2, min_item_count=2).meta
    assert (one["num_interactions"], one["steps"][-1]["fixpoint"], len(one["steps"][-1]["rounds"])) == (5, False, 1)
    assert (full["num_interactions"], full["steps"][-1]["fixpoint"], len(full["steps"][-1]["rounds"])) == (4, True, 2)
    assert full["steps"][-1]["max_rounds"] is None and one["steps"][-1]["max_rounds"] == 1


def test_only_enabled_steps_are_recorded(write):
    p = write("r.csv", "user,item,timestamp\n1,5,10\n")
    assert [s["step"] for s in seqprep.build(p, None).meta["steps"]] == ["missing"]


def test_filtered_rerun_is_byte_identical(write, tmp_path):
    p = write("r.csv", "user,item,rating,timestamp\n1,5,4,10\n1,6,1,20\n2,5,5,30\n2,6,5,40\n2,5,5,5000\n3,7,2,1\n")
    opts = dict(formats=("parquet", "npz"), min_user_count=2, min_item_count=2, dedup="first", session_gap="100")
    seqprep.build(p, tmp_path / "a", **opts)
    seqprep.build(p, tmp_path / "b", **opts)
    for name in ("sequences.parquet", "sequences.npz", "items.parquet", "users.parquet"):
        assert (
            hashlib.sha256((tmp_path / "a" / name).read_bytes()).digest()
            == hashlib.sha256((tmp_path / "b" / name).read_bytes()).digest()
        )


def test_config_round_trips_with_filter_and_session_options():
    c = make_config(
        ["x.csv"],
        "o",
        since="2019-01-01",
        min_rating=4,
        dedup="last",
        min_user_count=5,
        kcore_rounds=1,
        session_gap="30m",
    )
    d = json.loads(json.dumps(c.to_dict()))
    assert d["filter"]["since"] == "2019-01-01" and d["session"]["session_gap"] == "30m"
    assert BuildConfig.from_dict(d) == c


# ------------------------------------------------------------------------------------------------
# Time units


def test_iso_since_on_epoch_log_is_epoch_seconds(write):
    p = write("r.csv", "user,item,timestamp\n1,5,1546300799\n1,6,1546300800\n1,7,1546387200\n")
    res = seqprep.build(p, None, since="2019-01-01", until="2019-01-02")
    assert res.sequences.timestamps.tolist() == [1546300800]
    step = res.meta["steps"][1]
    assert (step["since"], step["until"], step["time_unit"]) == (1546300800, 1546387200, "epoch")


def test_bounds_on_an_iso_dated_log(write):
    p = write("r.csv", "user,item,timestamp\n1,5,2019-01-01T00:00:00.250\n1,6,2019-01-01T00:00:01.000\n")
    res = seqprep.build(p, None, since="2019-01-01T00:00:00.5")
    assert res.meta["timestamp"]["unit"] == "ms"
    assert res.sequences.timestamps.tolist() == [1546300801000]
    res = seqprep.build(p, None, until=1546300800500)  # a number is in the log's unit (ms)
    assert res.sequences.timestamps.tolist() == [1546300800250]


# ------------------------------------------------------------------------------------------------
# Sessions

SESSION_CSV = "user,item,timestamp\n1,5,1546300800\n1,6,1546302600\n1,7,1546304401\n2,5,1546300800\n2,9,1546400000\n"


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_sessions_written_and_loaded(write, tmp_path, fmt):
    p = write("r.csv", SESSION_CSV)
    res = seqprep.build(p, tmp_path / "o", formats=(fmt,), session_gap="30m")
    ds = seqprep.load(tmp_path / "o")
    # u1: gaps of exactly 1800 s (same session) then 1801 s (new); u2: one long gap
    assert ds.session_ids.tolist() == [0, 0, 1, 0, 1]
    assert ds.session_ids.dtype == np.int32
    s = res.meta["sessions"]
    assert (s["num_sessions"], s["gap"], s["gap_in_time_unit"], s["time_unit"]) == (4, "30m", 1800, "epoch seconds")
    assert s["session_length"]["max"] == 2
    if fmt == "parquet":
        table = pq.read_table(tmp_path / "o" / "sequences.parquet")
        assert str(table.schema.field("session_ids").type) == "list<element: int32>"
        assert table["session_ids"].to_pylist() == [[0, 0, 1], [0, 1]]


def test_no_sessions_without_the_option(write, tmp_path):
    p = write("r.csv", SESSION_CSV)
    res = seqprep.build(p, tmp_path / "o", formats=("parquet", "npz"))
    assert "sessions" not in res.meta and seqprep.load(tmp_path / "o").session_ids is None
    assert "session_ids" not in pq.read_table(tmp_path / "o" / "sequences.parquet").column_names


def test_session_gap_follows_parsed_date_units(write):
    p = write(
        "r.csv",
        "user,item,timestamp\n1,5,2019-01-01T00:00:00.5\n1,6,2019-01-01T00:01:00.5\n1,7,2019-01-01T00:03:00.5\n",
    )
    res = seqprep.build(p, None, session_gap="1m")
    assert res.meta["timestamp"]["unit"] == "ms" and res.meta["sessions"]["gap_in_time_unit"] == 60000
    assert res.sequences.session_ids.tolist() == [0, 0, 1]


def test_session_gap_plain_number_is_in_raw_units(write):
    p = write("r.csv", "user,item,timestamp\n1,5,1\n1,6,3\n1,7,9\n")
    res = seqprep.build(p, None, session_gap="2")
    assert res.sequences.session_ids.tolist() == [0, 0, 1]
    assert res.meta["sessions"]["time_unit"] == "epoch"


# ------------------------------------------------------------------------------------------------
# CLI

ERRORS = [
    (
        ["--min-rating", "4"],
        "user,item,timestamp\n1,2,3\n",
        "Error: --min-rating needs a rating column, but the log has none; pass --rating-col NAME, or drop --min-rating",
    ),
    (
        ["--since", "yesterday"],
        None,
        "Error: --since 'yesterday' is neither an epoch number nor an ISO-8601 date; pass e.g. --since 2019-01-01 or --since 1546300800",
    ),
    (
        ["--since", "2020-01-01", "--until", "2019-01-01"],
        None,
        "Error: --since 2020-01-01 is not before --until 2019-01-01, so the window is empty; pass a --since earlier than --until",
    ),
    (
        ["--since", "2019-01-01", "--until", "1000"],
        None,
        "Error: --since 2019-01-01 is not before --until 1000 in this log's time unit; pass a --since earlier than --until",
    ),
    (
        ["--kcore-rounds", "0", "--min-user-count", "5"],
        None,
        "Error: --kcore-rounds 0 is not a round count; pass 1 or more, or leave it out to repeat until every bound holds",
    ),
    (
        ["--kcore-rounds", "1"],
        None,
        "Error: --kcore-rounds needs --min-user-count or --min-item-count above 1; add one, or drop --kcore-rounds",
    ),
    (
        ["--min-user-count", "-1"],
        None,
        "Error: --min-user-count -1 is not a count; pass a whole number >= 1 (0 turns it off)",
    ),
    (
        ["--session-gap", "30 minutes"],
        None,
        "Error: --session-gap '30 minutes' is not a positive duration; pass a number with a unit s, m, h or d (e.g. 30m), or a plain number in the timestamps' own unit",
    ),
    (
        ["--session-gap", "30m"],
        "user,item,timestamp\n1,2,1546300800000\n1,3,1546300900000\n",
        "Error: --session-gap 30m needs timestamps in epoch seconds, but this log's raw timestamps reach 1.5463e+12, which is not seconds-like; give the gap as a plain number in the timestamps' own unit (e.g. --session-gap 1800000 for milliseconds)",
    ),
    (
        ["--min-user-count", "3"],
        None,
        "Error: no interactions left after the kcore step; no user and item meet --min-user-count 3 and --min-item-count 0 together; lower them",
    ),
    (
        ["--min-rating", "6"],
        None,
        "Error: no interactions left after the min_rating step; no rating is >= 6; lower --min-rating",
    ),
    (
        ["--since", "5000"],
        None,
        "Error: no interactions left after the time_window step; widen --since/--until (the window is since <= t < until, in the log's time unit)",
    ),
]
SMALL = "user,item,rating,timestamp\n1,5,4,10\n1,6,3,20\n2,5,5,30\n"


@pytest.mark.parametrize("args,content,expected", ERRORS)
def test_filter_errors_are_one_line_and_write_nothing(tmp_path, args, content, expected):
    (tmp_path / "x.csv").write_text(content or SMALL)
    r = run("build", str(tmp_path / "x.csv"), "-o", str(tmp_path / "o"), *args)
    assert r.exit_code == 1
    assert r.stderr == expected + "\n"
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "args,counted",
    [
        (("--min-user-count", "2"), "(1 round)"),
        (("--min-user-count", "2", "--min-item-count", "2"), "(2 rounds)"),
        (("--kcore-passes", "user", "--min-user-count", "2"), "(1 pass)"),
        (("--kcore-passes", "user,item", "--min-user-count", "2", "--min-item-count", "2"), "(2 passes)"),
    ],
)
def test_cli_summary_counts_rounds_and_passes_in_words(tmp_path, args, counted):
    """One k-core round (or pass) is "1 round", not "1 rounds"."""
    # user 3 has one row; once it goes, item 7 has one row left (item 7 goes in round 2 or pass 2)
    (tmp_path / "x.csv").write_text("user,item,timestamp\n1,5,1\n1,6,2\n2,5,3\n2,6,4\n2,7,5\n3,7,6\n")
    r = run("build", str(tmp_path / "x.csv"), "-o", str(tmp_path / "o"), *args)
    assert r.exit_code == 0, r.output
    summary = r.stderr.splitlines()[1]
    assert summary.startswith("seqprep: removed by step: kcore -") and summary.endswith(counted), summary


def test_cli_summary_and_stats_show_each_step(write, tmp_path):
    p = write(
        "r.csv",
        "user,item,rating,timestamp\n1,5,4,10\n1,6,1,20\n2,5,5,30\n2,6,5,40\n3,5,5,50\n3,6,5,60\n3,7,5,70\n4,7,5,80\n4,8,5,90\n",
    )
    out = tmp_path / "o"
    r = run(
        "build",
        str(p),
        "-o",
        str(out),
        "--min-rating",
        "2",
        "--min-user-count",
        "2",
        "--min-item-count",
        "2",
        "--session-gap",
        "15",
    )
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert lines[0].startswith("seqprep: 9 rows read from 1 input(s), 4 kept (5 removed); 2 users, 2 items")
    assert lines[1] == (
        "seqprep: removed by step: min_rating -1 rows/-0 users/-0 items, kcore -4 rows/-2 users/-2 items (3 rounds)"
    )
    assert lines[2] == "seqprep: 2 sessions (gap 15)"
    r = run("stats", str(out))
    lines = [" ".join(line.split()) for line in r.stdout.splitlines()]
    assert "2. min_rating 9 -> 8 rows (-1)" in lines
    assert "3. kcore 8 -> 4 rows (-4)" in lines
    assert "rounds 1 items_removed 1, round 1, rows_removed 2, users_removed 1" in lines
    assert "rounds 2 items_removed 0, round 2, rows_removed 1, users_removed 1" in lines
    assert "rounds 3 items_removed 1, round 3, rows_removed 1, users_removed 0" in lines


# ------------------------------------------------------------------------------------------------
# Conformance on real data


@pytest.mark.real_data
def test_ml_100k_5_core(tmp_path):
    path = shared_file("ml-100k/u.data")
    res = seqprep.build(path, tmp_path / "o", formats=("npz",), min_user_count=5, min_item_count=5)
    m = res.meta
    assert (m["num_users"], m["num_items"], m["num_interactions"]) == (943, 1349, 99287)
    assert m["steps"][-1]["fixpoint"] is True
    ds = seqprep.load(tmp_path / "o")
    assert (np.bincount(ds.items)[1:] >= 5).all() and (ds.lengths >= 5).all()
    # decode round trip against the raw file, filtered and stable-sorted the slow way
    raw = [(u, i, t, r) for u, i, r, t in np.loadtxt(path, dtype=np.int64).tolist()]
    kept = [(u, i, t) for (u, i, t, _), k in zip(raw, _fixpoint(raw, 5, 5)) if k]
    order = sorted(range(len(kept)), key=lambda k: (kept[k][0], kept[k][2]))
    assert _decoded_rows(ds) == [kept[k] for k in order]
