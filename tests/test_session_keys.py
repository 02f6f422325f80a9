"""Session-keyed logs (``--session-col``, ``--user-col SESSION``) and time from several columns
(``--time-col BASE,OFFSET``): the rules, meta.json, sessions.parquet, stats, and the Diginetica
sample against an independent pandas computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from seqprep.config import make_config
from seqprep.errors import ColumnError, ConfigError, InputError
from seqprep.verify import verify
from tests.conftest import shared_file

DIGINETICA = "diginetica-sample/sample_train-item-views.csv"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _sequences(result: seqprep.BuildResult) -> dict:
    """key id -> (item ids, timestamps), from a build result."""
    seqs, out = result.sequences, {}
    items = result.items.decode(seqs.items).to_pylist()
    for u, key in enumerate(result.users.ids.to_pylist()):
        lo, hi = int(seqs.offsets[u]), int(seqs.offsets[u + 1])
        out[key] = (items[lo:hi], seqs.timestamps[lo:hi].tolist())
    return out


# --------------------------------------------------------------------------------------------------
# Diginetica: ';', NA users, eventdate + timeframe


def _pandas_reference(path):
    """Per session (ascending id): items and eventdate (ms) + timeframe, stably sorted by that time;
    and each session's first user in that order."""
    df = pd.read_csv(path, sep=";")
    day_ms = (pd.to_datetime(df["eventdate"]) - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    df["t"] = day_ms.astype("int64") + df["timeframe"].astype("int64")
    df["row"] = np.arange(len(df))
    df = df.sort_values(["session_id", "t", "row"], kind="stable")
    seqs = {s: (g["item_id"].tolist(), g["t"].tolist()) for s, g in df.groupby("session_id", sort=True)}
    users = df.dropna(subset=["user_id"]).groupby("session_id", sort=True)["user_id"].first().astype("int64")
    return seqs, users.to_dict(), df


@pytest.mark.real_data
def test_diginetica_builds_with_the_session_and_time_flags_only(tmp_path):
    path = shared_file(DIGINETICA)
    out = tmp_path / "out"
    r = run("build", str(path), "-o", str(out), "--session-col", "session_id", "--time-col", "eventdate,timeframe")
    assert r.exit_code == 0, r.output
    assert "keyed by session_id: 2,986 sessions of 1,270 users (1,718 sessions without a user)" in r.stderr
    seqs, users, df = _pandas_reference(path)
    ds = seqprep.load(out)
    built = {}
    ids, items = ds.user_vocab.ids.to_pylist(), ds.item_vocab.decode(ds.items).to_pylist()
    for u in range(len(ids)):
        lo, hi = int(ds.offsets[u]), int(ds.offsets[u + 1])
        built[ids[u]] = (items[lo:hi], ds.timestamps[lo:hi].tolist())
    assert built == seqs
    sessions = pq.read_table(out / "sessions.parquet")
    assert sessions.column_names == ["user_idx", "session_id", "user_id"]
    assert sessions["session_id"].to_pylist() == ids
    got = {s: u for s, u in zip(sessions["session_id"].to_pylist(), sessions["user_id"].to_pylist()) if u is not None}
    assert got == users
    meta = json.loads((out / "meta.json").read_text())
    several = int((df.dropna(subset=["user_id"]).groupby("session_id")["user_id"].nunique() > 1).sum())
    assert meta["session_key"] == {
        "column": "session_id",
        "users_column": "user_id",
        "num_sessions": 2986,
        "num_users": 1270,
        "sessions_without_user": 2986 - len(users),
        "sessions_with_several_users": several,
        "rule": "a session's user is the user of its first row in stable time order that has one; null when none has",
    }
    assert several == 2
    assert meta["timestamp"] == {
        "dtype": "int64",
        "unit": "ms",
        "columns": ["eventdate", "timeframe"],
        "offset_unit": "ms",
        "rule": "base + offsets: the base date and each offset (in ms) in ms, added in exact int64",
    }
    assert meta["inputs"][0]["columns"] == {
        "session": "session_id", "user": "user_id", "item": "item_id", "time": "eventdate", "time_offsets": "timeframe",
    }
    assert meta["steps"][0]["rows_removed"] == 0  # NA users are no missing key
    assert verify(out).ok
    assert "sessions.parquet" in meta["outputs"]["files"]


@pytest.mark.real_data
def test_diginetica_keyed_by_user_col_alone_has_the_same_sequences(tmp_path):
    path = shared_file(DIGINETICA)
    by_session = seqprep.build(path, tmp_path / "a", session_col="session_id", time_col="eventdate,timeframe")
    by_user_col = seqprep.build(path, tmp_path / "b", user_col="session_id", time_col=["eventdate", "timeframe"])
    assert (tmp_path / "a" / "sequences.parquet").read_bytes() == (tmp_path / "b" / "sequences.parquet").read_bytes()
    assert (tmp_path / "a" / "users.parquet").read_bytes() == (tmp_path / "b" / "users.parquet").read_bytes()
    assert not (tmp_path / "b" / "sessions.parquet").exists()
    assert "session_key" not in by_user_col.meta and by_session.meta["num_users"] == 2986
    assert by_user_col.meta["inputs"][0]["columns"]["user"] == "session_id"


@pytest.mark.real_data
def test_diginetica_stats_report_the_sessions(tmp_path):
    path = shared_file(DIGINETICA)
    seqprep.build(path, tmp_path / "out", session_col="session_id", time_col="eventdate,timeframe")
    r = run("stats", str(path), str(tmp_path / "out"), "--session-col", "session_id", "--time-col", "eventdate,timeframe", "--json")
    assert r.exit_code == 0, r.output
    raw, built = json.loads(r.stdout)["datasets"]
    want = {"key": "session_id", "sessions": 2986, "users": 1270, "sessions_without_user": 1718, "sessions_with_several_users": 2}
    assert raw["sessions"] == want and built["sessions"] == want
    assert raw["time"]["unit"] == "ms" and raw["users"] == 2986
    text = run("stats", str(tmp_path / "out")).stdout
    assert "sessions (session_id)" in text and "1,270 (1,718 sessions without)" in text


# --------------------------------------------------------------------------------------------------
# --session-col on tiny logs

SESSIONS = """sid,uid,item,ts
s1,NA,10,3
s1,7,11,2
s1,8,12,4
s2,NA,10,1
s3,9,13,5
"""


def test_a_session_keeps_its_first_user_in_time_order(write, tmp_path):
    result = seqprep.build(write("s.csv", SESSIONS), tmp_path / "out", session_col="sid", user_col="uid")
    table = pq.read_table(tmp_path / "out" / "sessions.parquet").to_pylist()
    assert table == [
        {"user_idx": 0, "session_id": "s1", "user_id": 7},  # t=2 is s1's first row with a user
        {"user_idx": 1, "session_id": "s2", "user_id": None},
        {"user_idx": 2, "session_id": "s3", "user_id": 9},
    ]
    k = result.meta["session_key"]
    assert (k["num_sessions"], k["num_users"], k["sessions_without_user"], k["sessions_with_several_users"]) == (3, 3, 1, 1)
    assert _sequences(result)["s1"] == ([11, 10, 12], [2, 3, 4])


def test_sessions_without_any_user(write, tmp_path):
    seqprep.build(write("s.csv", "sid,uid,item,ts\n1,NA,10,1\n2,,11,2\n"), tmp_path / "out", session_col="sid", user_col="uid")
    table = pq.read_table(tmp_path / "out" / "sessions.parquet")
    assert table["user_id"].to_pylist() == [None, None] and str(table.schema.field("user_id").type) == "string"
    assert verify(tmp_path / "out").ok


def test_the_users_column_is_a_where_operand(write):
    result = seqprep.build(write("s.csv", SESSIONS), session_col="sid", user_col="uid", where=["uid is not null and uid != 8"])
    assert _sequences(result) == {"s1": ([11], [2]), "s3": ([13], [5])}
    assert result.extras.sessions.to_pylist()[0]["user_id"] == 7


def test_session_keys_stream_and_reuse(write, tmp_path):
    p = write("s.csv", SESSIONS)
    r = run("build", str(p), "-o", "-", "--session-col", "sid", "--user-col", "uid", "-q")
    assert r.exit_code == 0, r.output
    meta = json.loads(pa.ipc.open_stream(r.stdout_bytes).schema.metadata[b"seqprep.meta"])
    assert meta["session_key"]["num_sessions"] == 3  # the stream has no sessions.parquet, its meta counts them
    seqprep.build(p, tmp_path / "base", session_col="sid", user_col="uid")
    again = seqprep.build(p, tmp_path / "again", session_col="sid", user_col="uid", vocab_from=str(tmp_path / "base"), where=["item != 13"])
    assert pq.read_table(tmp_path / "again" / "sessions.parquet")["user_id"].to_pylist() == [7, None, None]
    assert again.meta["session_key"]["sessions_without_user"] == 2  # s3 has no row left


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"session_col": "sid"},
            ColumnError,
            "{p}: --session-col sid keeps each session's user, but no user column is found (columns are sid, uid, item, ts); "
            "pass --user-col NAME, or key by the session alone with --user-col sid instead of --session-col",
        ),
        (
            {"session_col": "sid", "user_col": "SID"},
            ConfigError,
            "--session-col and --user-col both name 'sid'; key the sequences by that column with --user-col alone, "
            "or name the users' column in --user-col",
        ),
        (
            {"session_col": "ts", "time_col": "ts"},
            ConfigError,
            "--session-col 'ts' is also a --time-col column; name the session column in --session-col only",
        ),
    ],
)
def test_session_col_errors(write, options, error, message):
    p = write("s.csv", SESSIONS)
    with pytest.raises(error) as e:
        seqprep.build(p, **options)
    assert str(e.value) == message.format(p=p)


# --------------------------------------------------------------------------------------------------
# --time-col BASE,OFFSET


def _times(p, **options):
    result = seqprep.build(p, **options)
    return result.meta["timestamp"]["unit"], [ts for _, ts in _sequences(result).values()]


def test_a_date_plus_milliseconds(write):
    p = write("d.csv", "user,item,day,ms\n1,10,2016-05-09,526309\n1,11,2016-05-09,243569\n1,12,2016-05-10,1\n")
    day = 1462752000  # 2016-05-09 in epoch seconds
    assert _times(p, time_col="day,ms") == ("ms", [[day * 1000 + 243569, day * 1000 + 526309, (day + 86400) * 1000 + 1]])
    assert _times(p, time_col="day,ms", time_offset_unit="s")[0] == "s"
    assert _times(p, time_col="day,ms", time_offset_unit="us")[1] == [[day * 10**6 + 243569, day * 10**6 + 526309, (day + 86400) * 10**6 + 1]]


def test_the_finer_unit_wins_and_several_offsets_add_up(write):
    p = write("d.csv", "user,item,at,a,b\n1,10,2016-05-09T00:00:00.250Z,1,2\n1,11,2016-05-09T00:00:00.250Z,0,999\n")
    base = 1462752000250  # ms: the base's own unit is finer than the offsets' (s)
    unit, times = _times(p, time_col="at,a,b", time_offset_unit="s")
    assert unit == "ms" and times == [[base + 1000 + 2000, base + 999_000]]


def test_an_epoch_base_takes_its_offsets_as_they_are(write):
    p = write("e.csv", "user,item,ts,seq\n1,10,100,2\n1,11,100,1\n1,12,99,5\n1,13,100,1\n")
    unit, times = _times(p, time_col="ts,seq")
    assert unit == "epoch" and times == [[101, 101, 102, 104]]
    result = seqprep.build(p, time_col="ts,seq")
    assert result.items.decode(result.sequences.items).to_pylist() == [11, 13, 10, 12]  # ties keep input order
    assert result.meta["timestamp"]["offset_unit"] == "epoch"
    with pytest.raises(ConfigError, match=r"^--time-offset-unit ms: the base column of --time-col ts,seq holds epoch numbers, whose offsets are added as they are, in the numbers' own unit; drop --time-offset-unit$"):
        seqprep.build(p, time_col="ts,seq", time_offset_unit="ms")


def test_offsets_of_typed_inputs(tmp_path):
    p = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user": [1, 1], "item": [1, 2], "ts": [10, 10], "off": pa.array([3, 1], pa.int32())}), p)
    assert _times(p, time_col="ts,off") == ("epoch", [[11, 13]])
    j = tmp_path / "log.jsonl"
    j.write_text('{"user": 1, "item": 1, "day": "2020-01-01", "off": 5}\n{"user": 1, "item": 2, "day": "2020-01-01", "off": 4}\n')
    assert _times(j, time_col="day,off", time_offset_unit="s") == ("s", [[1577836804, 1577836805]])


def test_a_missing_offset_is_a_missing_timestamp(write):
    p = write("m.csv", "user,item,ts,off\n1,10,5,1\n1,11,6,\n1,12,7,12.0\n")
    result = seqprep.build(p, time_col="ts,off")
    assert result.meta["steps"][0]["missing_time"] == 1
    assert _sequences(result) == {1: ([10, 12], [6, 19])}


@pytest.mark.parametrize(
    ("content", "options", "error", "message"),
    [
        ("user,item,ts,off\n1,10,5,1\n1,11,6,1.5\n", {"time_col": "ts,off"}, InputError,
         "{p} row 2: --time-col offset 'off' is '1.5', not a whole number; fix the row, or name the right columns in --time-col BASE,OFFSET"),
        ("user,item,ts,off\n1,10,5,x\n", {"time_col": "ts,off"}, InputError,
         "{p} row 1: --time-col offset 'off' is 'x', not a whole number; fix the row, or name the right columns in --time-col BASE,OFFSET"),
        ("user,item,ts,off\n1,10,5.5,1\n", {"time_col": "ts,off"}, InputError,
         "--time-col ts,off: the base column holds fractional epoch numbers; offsets are added exactly to whole numbers or dates only - use a whole-number or date base column"),
        ("user,item,ts,off\n1,10,2020-01-01,9223372036854775807\n", {"time_col": "ts,off"}, InputError,
         "--time-col ts,off: the combined timestamps exceed int64 in unit ms; check the columns and --time-offset-unit"),
        ("user,item,ts,off\n1,10,5,1\n", {"time_col": "ts,offset"}, ColumnError,
         "{p}: column 'offset' (--time-col) not found; columns are user, item, ts, off"),
        ("user,item,ts,off\n1,10,5,1\n", {"time_col": "ts,ts"}, ConfigError,
         "--time-col 'ts,ts' has empty or repeated names; give distinct columns, e.g. --time-col eventdate,timeframe"),
        ("user,item,ts,off\n1,10,5,1\n", {"time_offset_unit": "s"}, ConfigError,
         "--time-offset-unit sets the unit of the offset columns of --time-col BASE,OFFSET; name the offsets in --time-col, or drop --time-offset-unit"),
    ],
)
def test_time_column_errors(write, content, options, error, message):
    p = write("t.csv", content)
    with pytest.raises(error) as e:
        seqprep.build(p, **options)
    assert str(e.value) == message.format(p=p)


def test_time_offset_unit_is_recorded_only_when_given():
    assert "time_offset_unit" not in make_config(["x"], "o").to_dict()["read"]
    assert make_config(["x"], "o", time_col="a,b", time_offset_unit="s").to_dict()["read"]["time_offset_unit"] == "s"
