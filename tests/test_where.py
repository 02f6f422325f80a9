"""``--where`` end to end: the CLI, meta.json, where the step runs, every kind of column and input,
and the exact text of the errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from seqprep.config import BuildConfig, make_config
from seqprep.errors import ConfigError

LOG = """user,item,ts,event,price
1,10,5,view,3.5
1,11,6,buy,
2,10,7,view,0
2,12,8,cart,10
3,13,9,,2
"""


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _rows(result: seqprep.BuildResult) -> list[tuple]:
    """(user id, item id, timestamp) of every kept interaction, in output order."""
    seqs = result.sequences
    users = result.users.ids.to_pylist()
    items = result.items.decode(seqs.items).to_pylist()
    out = []
    for u in range(seqs.num_users):
        lo, hi = int(seqs.offsets[u]), int(seqs.offsets[u + 1])
        out += [(users[u], items[k], int(seqs.timestamps[k])) for k in range(lo, hi)]
    return out


def test_the_issue_example_with_meta(write, tmp_path):
    p = write("log.csv", LOG)
    r = run("build", str(p), "-o", str(tmp_path / "out"), "--where", "event != 'view'", "--where", "price > 0")
    assert r.exit_code == 0, r.output
    assert "removed by step: where -4 rows/-2 users/-3 items" in r.stderr
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["steps"][1] == {
        "step": "where",
        "predicates": ["event != 'view'", "price > 0"],
        "rows_before": 5,
        "rows_removed": 4,
        "rows_after": 1,
        "rows_unknown": 2,  # buy without a price, a row without an event: unknown, so dropped
        "users_removed": 2,
        "items_removed": 3,
    }
    assert meta["options"]["filter"]["where"] == ["event != 'view'", "price > 0"]
    assert BuildConfig.from_dict(meta["options"]).filter.where == ("event != 'view'", "price > 0")
    assert meta["inputs"][0]["columns"] == {"user": "user", "item": "item", "time": "ts"}  # roles only
    assert pq.read_table(tmp_path / "out" / "sequences.parquet").to_pylist() == [
        {"user_idx": 0, "user_id": 2, "items": [1], "timestamps": [8]}
    ]


def test_options_without_where_record_no_where_key(write):
    meta = seqprep.build(write("log.csv", LOG)).meta
    assert "where" not in meta["options"]["filter"] and "session_col" not in meta["options"]["read"]
    assert make_config(["x"], "o").to_dict() == BuildConfig.from_dict(make_config(["x"], "o").to_dict()).to_dict()


@pytest.mark.parametrize(
    ("where", "kept"),
    [
        (["event == 'view'"], [(1, 10, 5), (2, 10, 7)]),
        (["event != 'view'"], [(1, 11, 6), (2, 12, 8)]),  # no event: unknown, dropped
        (["not event == 'view'"], [(1, 11, 6), (2, 12, 8)]),  # not unknown is unknown
        (["event is null or event == 'buy'"], [(1, 11, 6), (3, 13, 9)]),
        (["price is not null", "price <= 2"], [(2, 10, 7), (3, 13, 9)]),
        (["event in ['buy', 'cart']"], [(1, 11, 6), (2, 12, 8)]),
        (["price not in [0, 10]"], [(1, 10, 5), (3, 13, 9)]),
        (["event < 'c'"], [(1, 11, 6)]),  # text order: 'buy' < 'c' < 'cart'
        (["price > 0 or event == 'buy'"], [(1, 10, 5), (1, 11, 6), (2, 12, 8), (3, 13, 9)]),  # true or unknown
        (["ts >= 7", "user != 3"], [(2, 10, 7), (2, 12, 8)]),  # role columns by their names
        (["ITEM in [10, 13]"], [(1, 10, 5), (2, 10, 7), (3, 13, 9)]),  # names ignore case, as --item-col does
        (["3 < price"], [(1, 10, 5), (2, 12, 8)]),
        (["price == 3.50"], [(1, 10, 5)]),  # a number column of text compares as numbers
        (["price == '3.5'"], [(1, 10, 5)]),  # and quoted, as text
        (["price == 3.50 or price == '10'"], [(1, 10, 5), (2, 12, 8)]),  # both: read as text, parsed once
    ],
)
def test_predicates_keep_the_rows_they_say(write, where, kept):
    assert sorted(_rows(seqprep.build(write("log.csv", LOG), where=where))) == kept


def test_where_runs_after_missing_and_before_unknown_items_and_the_filters(write, tmp_path):
    base = write("base.csv", "user,item,ts\n1,10,1\n1,11,2\n")
    seqprep.build(base, tmp_path / "base")
    log = write("log.csv", "user,item,ts,kind\n1,10,5,a\n1,99,6,a\n,10,7,a\n2,10,8,b\n2,10,9,a\n")
    meta = seqprep.build(log, vocab_from=str(tmp_path / "base"), where=["kind == 'a'"], dedup="exact", min_item_count=2).meta
    assert [s["step"] for s in meta["steps"]] == ["missing", "where", "unknown_items", "dedup", "kcore"]
    where = meta["steps"][1]
    assert (where["rows_before"], where["rows_removed"]) == (4, 1)  # the row without a user went first
    assert meta["steps"][2]["rows_before"] == 3  # unknown items counted among the rows --where kept


def test_a_quoted_date_compares_with_the_timestamp(write):
    p = write("iso.csv", "user,item,time\n1,10,2019-01-01T00:00:00Z\n1,11,2019-01-02T00:00:00Z\n1,12,2019-01-02T00:00:01Z\n")
    rows = _rows(seqprep.build(p, where=["time >= '2019-01-02'"]))
    assert [i for _, i, _ in rows] == [11, 12]
    assert [i for _, i, _ in _rows(seqprep.build(p, where=["time > '2019-01-02T00:00:00.5Z'"]))] == [12]
    assert [i for _, i, _ in _rows(seqprep.build(p, where=["time == '2019-01-02'"]))] == [11]
    epoch = write("epoch.csv", "user,item,timestamp\n1,10,1546300799\n1,11,1546300800\n")  # raw epoch: as seconds
    assert [i for _, i, _ in _rows(seqprep.build(epoch, where=["timestamp >= '2019-01-01'"]))] == [11]


def test_ratings_compare_at_their_float32_precision(write):
    p = write("r.csv", "userId,movieId,rating,timestamp\n1,10,0.7,1\n1,11,0.6,2\n1,12,,3\n")
    assert [i for _, i, _ in _rows(seqprep.build(p, where=["rating >= 0.7"]))] == [10]
    assert [i for _, i, _ in _rows(seqprep.build(p, where=["rating is null"]))] == [12]


def test_typed_columns_of_parquet_and_nested_json(tmp_path):
    p = tmp_path / "log.parquet"
    pq.write_table(
        pa.table({
            "user": [1, 1, 2, 2],
            "item": ["a", "b", "c", "d"],
            "ts": [1, 2, 3, 4],
            "price": [1.5, None, 2.5, 0.0],
            "qty": pa.array([1, 2, None, 9], pa.int64()),
            "flag": [True, False, None, True],
        }),
        p,
    )
    assert [i for _, i, _ in _rows(seqprep.build(p, where=["price > 1", "qty is null or qty < 5"]))] == ["a", "c"]
    assert [i for _, i, _ in _rows(seqprep.build(p, where=["flag == 'true'"]))] == ["a", "d"]  # bools read as text
    j = tmp_path / "log.jsonl"
    j.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {"user_id": 1, "item_id": "x", "ts": 1, "meta": {"price": 3, "tags": ["a"]}},
                {"user_id": 1, "item_id": "y", "ts": 2, "meta": {"price": 0, "tags": []}},
            )
        )
        + "\n"
    )
    assert [i for _, i, _ in _rows(seqprep.build(j, where=["meta.price > 0"]))] == ["x"]


def test_json_text_of_numbers_compares_as_numbers(tmp_path):
    j = tmp_path / "log.jsonl"
    j.write_text('{"user": 1, "item": 1, "ts": 1, "price": "2.5"}\n{"user": 1, "item": 2, "ts": 2, "price": "x"}\n')
    with pytest.raises(seqprep.InputError) as e:
        seqprep.build(j, where=["price > 1"])
    assert str(e.value) == (
        "--where \"price > 1\": column 'price' holds text ('x' is not a number), compared with the number 1 at "
        "character 9; quote the value to compare text: '1'"
    )
    assert [i for _, i, _ in _rows(seqprep.build(j, where=["price == 'x'"]))] == [2]


def test_stdin_is_read_once_for_the_columns_and_the_log(write):
    r = run("build", "-", "-o", "-", "--to", "jsonl", "-q", "--where", "event == 'cart'", input=LOG)
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["user_id"] for line in r.stdout.splitlines()] == [2]


def test_stats_applies_where_to_a_raw_log(write):
    r = run("stats", str(write("log.csv", LOG)), "--where", "price > 0", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)["datasets"][0]
    assert d["rows"] == {"read": 5, "kept": 3, "removed": 2}
    assert d["steps"][-1]["step"] == "where" and d["sessions"] is None


def test_the_columns_read_for_where_are_let_go_after_the_step(write):
    from seqprep.io import read_log
    from seqprep.steps.clean import clean
    from seqprep.steps.where import operand_requests

    config = make_config([str(write("log.csv", LOG))], "o", where=["price > 0", "event != 'x'"])
    log = read_log(config.inputs, config.read, operands=operand_requests(config))
    assert [c.name for c in log.columns] == ["price", "event"]
    inter, _ = clean(log, config)
    assert inter.columns == ()


# --------------------------------------------------------------------------------------------------
# Errors: one line, the predicate quoted, the fix named

ERRORS = [
    (["price >> 0"], "Error: --where \"price >> 0\": unexpected '>' at character 8; expected a value after >: a number or a quoted string"),
    (["prize > 0"], "Error: --where \"prize > 0\": column 'prize' not found in {p}; columns are user, item, ts, event, price"),
    # a column compared with numbers only is read as numbers: the reader names the line
    (["event > 3"], "Error: {p}: line 2: --where \"event > 3\" event: 'view' is not a number; fix the row, or compare it with quoted text"),
    (["event > 3 or event == 'x'"], "Error: --where \"event > 3 or event == 'x'\": column 'event' holds text ('view' is not a number), compared with the number 3 at character 9; quote the value to compare text: '3'"),
    (["user == 'x'"], "Error: --where \"user == 'x'\": column 'user' holds integer ids, compared with the text 'x' at character 9; write the value as a number, without quotes"),
    (["ts < 'soon'"], "Error: --where \"ts < 'soon'\": the timestamp column 'ts' is compared with 'soon' at character 6, which is not an ISO-8601 date; write a date such as '2019-01-01', or an epoch number without quotes"),
    (["price > 100"], "Error: no interactions left after the where step; no row meets every --where predicate (price > 100); loosen them"),
]


@pytest.mark.parametrize(("where", "message"), ERRORS)
def test_errors_are_one_line_with_the_fix(write, tmp_path, where, message):
    p = write("log.csv", LOG)
    args = [a for w in where for a in ("--where", w)]
    r = run("build", str(p), "-o", str(tmp_path / "out"), *args)
    assert r.exit_code == 1
    assert r.stderr == message.format(p=p) + "\n"
    assert not (tmp_path / "out").exists()


def test_a_number_column_refuses_text(tmp_path):
    p = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user": [1], "item": [2], "ts": [3], "price": [1.5]}), p)
    with pytest.raises(seqprep.InputError, match=r"^--where \"price == '1.5'\": column 'price' holds numbers, compared with the text '1.5' at character 10; write the value as a number, without quotes$"):
        seqprep.build(p, where=["price == '1.5'"])
    pq.write_table(pa.table({"user": [1], "item": [2], "ts": [3], "tags": [["a"]]}), p)
    with pytest.raises(ConfigError, match=r"holds lists; --where compares one value per row - name another column$"):
        seqprep.build(p, where=["tags == 'a'"])


def test_every_engine_takes_where():
    """--where runs on every engine (Dask: tests/test_dask_options.py compares its bytes)."""
    for options in ({}, {"memory_limit": "1GB"}, {"engine": "dask"}):
        assert make_config(["log.csv"], "out", where=["price > 0"], **options).filter.where == ("price > 0",)


def test_where_takes_text():
    with pytest.raises(ConfigError, match="--where takes predicates as text, not int"):
        make_config(["log.csv"], "out", where=[3])
    assert make_config(["log.csv"], "out", where="a > 1").filter.where == ("a > 1",)
