"""The Dask engine gives what the local engine gives: vocabularies, decoded sequences and meta counts.

One LocalCluster (2 worker processes, 1 thread each, loopback only) serves the whole module. Small
``block_bytes`` and ``part_rows`` force several read partitions and several output parts, so the
(file, row) tie key, the cross-partition merges and the user-range shuffle are all exercised.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.cli import cli
from tests.conftest import TIES_CSV, shared_file

distributed = pytest.importorskip("distributed")

SMALL = {"block_bytes": 2048, "part_rows": 700}




def _decoded(ds: seqprep.Dataset) -> dict:
    users = ds.user_vocab.ids.to_pylist()
    items = ds.item_vocab.decode(ds.items).to_pylist() if len(ds.items) else []
    out = {}
    for u in range(ds.num_users):
        a, b = int(ds.offsets[u]), int(ds.offsets[u + 1])
        rs = [None if math.isnan(r) else r for r in ds.ratings[a:b].tolist()] if ds.ratings is not None else None
        out[users[u]] = (items[a:b], ds.timestamps[a:b].tolist(), rs)
    return out


def _comparable(meta: dict) -> dict:
    """meta.json without what legitimately differs: the engine record, the output folder and its file list."""
    m = json.loads(json.dumps(meta))
    m.pop("engine", None)
    m.pop("outputs", None)
    m["options"].pop("engine", None)
    m["options"].pop("output", None)
    return m


def assert_same_build(inputs, tmp_path: Path, scheduler: str, *, parts: bool = True, **options) -> seqprep.Dataset:
    """Same vocabularies, decoded sequences and meta; ``parts=False``: the sequences were gathered on the
    client (sessions, splits) and every file but meta.json is byte-identical to the local engine's."""
    local = seqprep.build(inputs, tmp_path / "local", **options)
    dask = seqprep.build(inputs, tmp_path / "dask", engine="dask", scheduler=scheduler, **SMALL, **options)
    assert dask.meta["engine"]["name"] == "dask"
    a, b = seqprep.load(tmp_path / "local"), seqprep.load(tmp_path / "dask")
    assert (tmp_path / "dask" / "sequences" / "part-00000.parquet").is_file() == parts
    if not parts:
        names = sorted(p.name for p in (tmp_path / "local").iterdir())
        assert names == sorted(p.name for p in (tmp_path / "dask").iterdir())
        for name in names:
            if name != "meta.json":
                assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
    assert a.item_vocab.equals(b.item_vocab) and a.item_vocab.ids.type == b.item_vocab.ids.type
    assert a.user_vocab.equals(b.user_vocab) and a.user_vocab.ids.type == b.user_vocab.ids.type
    assert _decoded(a) == _decoded(b)
    for name in ("offsets", "items", "timestamps", "user_idx"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert (a.session_ids is None) == (b.session_ids is None)
    if a.session_ids is not None:
        assert np.array_equal(a.session_ids, b.session_ids)
    assert (a.ratings is None) == (b.ratings is None)
    if a.ratings is not None:
        assert np.array_equal(a.ratings, b.ratings, equal_nan=True)
    assert _comparable(a.meta) == _comparable(b.meta)
    assert _comparable(local.meta) == _comparable(dask.meta)
    return b


def _log(rng: random.Random, n: int, *, str_ids: bool, users: int = 40, items: int = 90, t_max: int = 30) -> str:
    """A CSV log with many ties (few distinct times) and, with ``str_ids``, ids like 007 beside 7."""

    def uid(k: int) -> str:
        return (f"u{k}" if k % 3 else f"00{k}") if str_ids else str(k)

    lines = ["userId,movieId,rating,timestamp"]
    for _ in range(n):
        item = rng.randint(1, items)
        lines.append(f"{uid(rng.randint(1, users))},{item if not str_ids or item % 4 else f'0{item}'},"
                     f"{rng.randint(1, 10) / 2},{rng.randint(0, t_max)}")  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("str_ids", [False, True])
def test_generated_logs_match_local(seed, str_ids, tmp_path, scheduler):
    rng = random.Random(seed * 2 + str_ids)
    path = tmp_path / "log.csv"
    path.write_text(_log(rng, 2500, str_ids=str_ids))
    order = ["frequency", "first-seen", "id"][seed % 3 + str_ids]
    id_type = "str" if seed == 1 and not str_ids else "auto"  # ids typed on the distinct values, either way
    ds = assert_same_build(
        path, tmp_path, scheduler, item_order=order, user_order=["id", "first-seen"][seed], id_type=id_type
    )
    assert ds.meta["id_types"]["user"] == ("string" if str_ids or id_type == "str" else "int64")
    assert ds.meta["engine"]["input_partitions"] > 3 and ds.meta["engine"]["output_parts"] > 1


def test_several_inputs_missing_values_and_fractional_times(tmp_path, scheduler):
    """Ties across files keep file order; missing fields are dropped and counted; float times stay float."""
    rng = random.Random(7)
    a = tmp_path / "a.csv"
    a.write_text(_log(rng, 1500, str_ids=False, t_max=12))
    rows = ["user,item,timestamp"] + [
        f"{rng.randint(1, 40)},{rng.randint(1, 90)},{rng.randint(0, 12)}.5" for _ in range(800)
    ]
    rows[5] = "3,,4"  # missing item
    rows[300] = ",5,4"  # missing user
    rows[600] = "7,8,NA"  # missing time
    b = tmp_path / "b.gz"
    b.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    ds = assert_same_build([a, b], tmp_path, scheduler, item_order="first-seen", user_order="first-seen")
    assert ds.meta["steps"][0]["rows_removed"] == 3
    assert ds.timestamps.dtype == np.float64


def test_jsonl_and_parquet_inputs(tmp_path, scheduler):
    rng = random.Random(3)
    recs = [{"reviewerID": f"R{rng.randint(1, 30)}", "asin": f"B{rng.randint(1, 50):03d}", "overall": rng.randint(1, 5),
             "unixReviewTime": rng.randint(0, 20)} for _ in range(1200)]  # fmt: skip
    j = tmp_path / "reviews.jsonl"
    j.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert_same_build(j, tmp_path / "j", scheduler)
    p = tmp_path / "log.parquet"
    table = pa.table({"user_id": [rng.randint(1, 30) for _ in range(1500)], "item_id": [rng.randint(1, 60) for _ in range(1500)],
                      "ts": [rng.randint(0, 9) for _ in range(1500)]})  # fmt: skip
    pq.write_table(table, p, row_group_size=300)
    assert_same_build(p, tmp_path / "p", scheduler, item_order="id")


def test_iso_dates(tmp_path, scheduler):
    rng = random.Random(5)
    lines = ["user,item,time"] + [f"{rng.randint(1, 20)},{rng.randint(1, 30)},2024-01-{rng.randint(1, 28):02d}T10:00:{rng.randint(0, 1):02d}"
                                  for _ in range(900)]  # fmt: skip
    path = tmp_path / "dates.csv"
    path.write_text("\n".join(lines) + "\n")
    ds = assert_same_build(path, tmp_path, scheduler)
    assert ds.meta["timestamp"]["unit"] == "s"


def test_ties_fixture_and_byte_identical_reruns(tmp_path, scheduler):
    path = tmp_path / "ratings.csv"
    path.write_text(TIES_CSV)
    ds = assert_same_build(path, tmp_path, scheduler, formats=("parquet", "npz"), overwrite=True)
    assert _decoded(ds)[1][0] == [7, 6, 5, 5]  # the tie at t=10 keeps file order
    out = tmp_path / "dask"

    def digests() -> dict[str, str]:
        return {
            p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in out.rglob("*")
            if p.is_file()
        }

    first = digests()
    seqprep.build(path, out, engine="dask", scheduler=scheduler, formats=("parquet", "npz"), overwrite=True, **SMALL)
    assert "sequences/part-00000.parquet" in first and "sequences.npz" in first and "meta.json" in first
    assert digests() == first


def test_strict_and_empty_errors_match_local(tmp_path, scheduler):
    path = tmp_path / "r.csv"
    path.write_text("user,item,timestamp\n1,2,3\n1,,4\n")
    with pytest.raises(seqprep.InputError) as local:
        seqprep.build(path, None, strict=True)
    with pytest.raises(seqprep.InputError) as dask:
        seqprep.build(path, None, strict=True, engine="dask", scheduler=scheduler)
    assert str(local.value) == str(dask.value)
    empty = tmp_path / "e.csv"
    empty.write_text("user,item,timestamp\n")
    with pytest.raises(seqprep.InputError) as dask:
        seqprep.build(empty, None, engine="dask", scheduler=scheduler)
    assert str(dask.value) == f"the log is empty: no interaction rows in {empty}; check the input"


def _quoted_log(rng: random.Random, n: int, sep: str = ",") -> str:
    """Review-like rows (issue 13): a quoted text with the separator, doubled quotes and LF, CRLF or CR
    inside, now and then one longer than a partition; the header's text column name quoted too."""
    pieces = ["a", "b", sep, '""', "\n", "\r\n", "\r", " ", "5"]
    lines = [sep.join(["user", "item", "rating", "timestamp", '"re\nview"'])]
    for k in range(n):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        if k % 97 == 5:
            text = text + "long, " * 600  # over 2048 bytes: a row longer than a partition
        user, item, rating, ts = rng.randint(1, 40), rng.randint(1, 90), rng.randint(1, 10) / 2, rng.randint(0, 30)
        cells = [f"u{user}", str(item), str(rating), str(ts), f'"{text}"' if rng.random() < 0.8 else "x"]
        lines.append(sep.join(cells))
    return "\r\n".join(lines) + "\n"


@pytest.mark.parametrize("sep", [",", "\t"])
def test_quoted_fields_with_line_ends_match_local(sep, tmp_path, scheduler):
    """Partitions of 2 KiB are cut where rows end, never inside a quoted field (dask's own read_csv
    cuts at any line end): the same build as the local engine."""
    path = tmp_path / "r.csv"
    path.write_bytes(_quoted_log(random.Random(3), 2000, sep).encode())
    ds = assert_same_build(path, tmp_path, scheduler, sep=sep)
    assert ds.meta["rows"]["read"] == 2000 and ds.meta["engine"]["input_partitions"] > 3


@pytest.mark.parametrize("where", ["cut", "worker"])
def test_a_quote_never_closed_names_its_line_as_local_does(where, tmp_path, scheduler):
    """Past the 64 KiB the client sniffs, in a middle piece (the field runs over the next cuts) or
    in the last piece: the local reader's message, naming the line."""
    before, after = (8000, 2000) if where == "cut" else (10000, 2)
    rows = [f"u{k % 9},{k % 7},{k}" for k in range(before + after)]
    head, tail = "\n".join(rows[:before]), "\n".join(rows[before:])
    text = f'user,item,timestamp\n{head}\n1,"never\nclosed,5\n{tail}\n'
    path = tmp_path / "r.csv"
    path.write_text(text)
    assert text.encode().index(b'"never') > 65536  # past what the client sniffs
    with pytest.raises(seqprep.InputError) as local:
        seqprep.build(path, None)
    with pytest.raises(seqprep.InputError) as dask:
        seqprep.build(path, None, engine="dask", scheduler=scheduler, **SMALL)
    line = before + 2
    message = f'{path}: line {line}: a quoted field starts here and is never closed; close the quote (") or pass the right --sep'
    assert str(dask.value) == str(local.value) == message


def test_cli_build_and_stats_read_the_parts_layout(tmp_path, scheduler):
    path = tmp_path / "r.csv"
    path.write_text(_log(random.Random(11), 1000, str_ids=False))
    runner = CliRunner()
    res = runner.invoke(cli, ["build", str(path), "-o", str(tmp_path / "d"), "--engine", "dask", "--scheduler", scheduler,
                              "--part-rows", "300", "--partition-size", "4096", "-q"], catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["build", str(path), "-o", str(tmp_path / "l"), "-q"], catch_exceptions=False)
    assert res.exit_code == 0
    stats = [json.loads(runner.invoke(cli, ["stats", str(tmp_path / o), "--json"]).output)["datasets"][0] for o in ("d", "l")]
    for s in stats:
        assert s.pop("path") != ""
    assert stats[0] == stats[1]
    assert len(list((tmp_path / "d" / "sequences").glob("part-*.parquet"))) > 1


@pytest.mark.real_data
@pytest.mark.parametrize("rel", ["ml-100k/u.data", "ml-latest-small/ratings.csv"])
def test_real_logs_match_local(rel, tmp_path, scheduler):
    path = shared_file(rel)
    local = seqprep.build(path, tmp_path / "local")
    dask = seqprep.build(
        path, tmp_path / "dask", engine="dask", scheduler=scheduler, block_bytes=256 * 1024, part_rows=30_000
    )
    a, b = seqprep.load(tmp_path / "local"), seqprep.load(tmp_path / "dask")
    assert a.item_vocab.equals(b.item_vocab) and a.user_vocab.equals(b.user_vocab)
    for name in ("offsets", "items", "timestamps", "user_idx"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.ratings, b.ratings)
    assert _comparable(local.meta) == _comparable(dask.meta)


def _dup_log(rng: random.Random, n: int, *, str_ids: bool) -> str:
    """Skewed user and item counts (k-core takes several rounds), few items, times and ratings per
    user (exact duplicates, repeated pairs, runs of one item) and some missing ratings."""
    lines = ["user,item,rating,ts"]
    for _ in range(n):
        u, i = int(40 * rng.random() ** 2), int(30 * rng.random() ** 2)
        rating = rng.choice(["", "1", "2.5", "3", "4.5", "5"])
        item = "" if rng.random() < 0.01 else f"0{i}" if str_ids and i % 3 == 0 else i  # a few missing items
        lines.append(f"{f'u{u}' if str_ids and u % 2 else u},{item},{rating},{rng.randint(0, 12)}")
    return "\n".join(lines) + "\n"


FILTER_CASES = {
    "window": dict(since=2, until=10),
    "rating": dict(min_rating=3),
    "exact": dict(dedup="exact"),
    "first": dict(dedup="first"),
    "last": dict(dedup="last"),
    "consecutive": dict(dedup="consecutive"),
    "kcore": dict(min_user_count=15, min_item_count=12),
    "kcore-capped": dict(min_user_count=15, min_item_count=12, kcore_rounds=2),
    "all": dict(since=1, until=11, min_rating=1, dedup="first", min_user_count=5, min_item_count=6),
}


@pytest.mark.parametrize("str_ids", [False, True])
@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_filters_match_local(case, str_ids, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_dup_log(random.Random(7 + str_ids), 900, str_ids=str_ids))
    options = FILTER_CASES[case]
    ds = assert_same_build(path, tmp_path, scheduler, item_order=["frequency", "first-seen"][str_ids], **options)
    steps = {s["step"]: s for s in ds.meta["steps"]}
    flags = ("since", "min_rating", "dedup", "min_user_count")
    assert len(steps) == 1 + sum(flag in options for flag in flags)
    assert all(s["rows_removed"] > 0 for s in ds.meta["steps"]), ds.meta["steps"]  # every step did something
    if case == "kcore":
        assert len(steps["kcore"]["rounds"]) > 1 and steps["kcore"]["fixpoint"]
    if case == "kcore-capped":
        assert len(steps["kcore"]["rounds"]) == 2 and not steps["kcore"]["fixpoint"]


@pytest.mark.parametrize(
    "options",
    [
        dict(split="loo", max_len=4, truncate=True, formats=("parquet", "npz")),
        dict(split="time", valid_from=20, test_from=25, session_gap=2),
        dict(split="time:0.6,0.8", windows="3:1", formats=("parquet", "npz")),
        dict(split="users:0.6,0.2,0.2", seed=4, eval_negatives=3, dedup="last", min_user_count=20),
        dict(max_len=5, pad="right", formats=("npz",)),
    ],
)
def test_sessions_and_splits_match_local(options, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_log(random.Random(3), 900, str_ids=True))
    from tests.test_dask_options import assert_same_folders

    seqprep.build(path, tmp_path / "local", **options)
    res = seqprep.build(path, tmp_path / "dask", engine="dask", scheduler=scheduler, **SMALL, **options)
    assert "gathered_on_client" not in res.meta["engine"]
    assert_same_folders(tmp_path / "local", tmp_path / "dask")  # the split files byte for byte


def test_dedup_and_kcore_with_missing_users_and_fractional_times(tmp_path, scheduler):
    """Rows with no user go through the user shuffle of dedup and are counted by the missing step."""
    rows = [f"{'' if k % 17 == 0 else k % 7},{k % 5},{(k % 3) / 2}" for k in range(300)]
    path = tmp_path / "log.csv"
    path.write_text("user,item,ts\n" + "\n".join(rows) + "\n")
    ds = assert_same_build(path, tmp_path, scheduler, dedup="exact", min_user_count=3, min_item_count=2)
    assert [s["rows_removed"] > 0 for s in ds.meta["steps"]][:2] == [True, True]


@pytest.mark.parametrize(
    "options",
    [dict(session_gap=3), dict(session_gap="1", dedup="consecutive", formats=("parquet", "npz"))],
)
def test_sessions_per_part_match_local(options, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_log(random.Random(5), 900, str_ids=False))
    ds = assert_same_build(path, tmp_path, scheduler, **options)
    assert ds.session_ids is not None and 0 < ds.meta["sessions"]["num_sessions"] < ds.meta["num_interactions"]
    assert ds.meta["engine"]["output_parts"] > 1


def test_filter_errors_match_local(tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text("user,item,ts\n1,2,3\n1,3,4\n")
    for options, expected in [
        (dict(min_rating=3), "--min-rating needs a rating column, but the log has none"),
        (dict(since=10), "no interactions left after the time_window step"),
        (dict(min_user_count=3), "no interactions left after the kcore step"),
        (dict(since=5, until=4), "--since 5 is not before --until 4"),
        (dict(session_gap="30m"), "needs timestamps in epoch seconds"),
    ]:
        with pytest.raises(seqprep.SeqprepError) as local:
            seqprep.build(path, tmp_path / "local", **options)
        with pytest.raises(seqprep.SeqprepError) as dask:
            seqprep.build(path, tmp_path / "dask", engine="dask", scheduler=scheduler, **options)
        assert str(local.value) == str(dask.value) and expected in str(dask.value)
    assert not (tmp_path / "dask").exists()


@pytest.mark.real_data
def test_ml100k_kcore_loo_matches_local(tmp_path, scheduler):
    path = shared_file("ml-100k/u.data")
    options = dict(min_user_count=5, min_item_count=5, split="loo")
    local = seqprep.build(path, tmp_path / "local", **options)
    dask = seqprep.build(
        path, tmp_path / "dask", engine="dask", scheduler=scheduler, block_bytes=256 * 1024, part_rows=30_000, **options
    )
    from tests.test_dask_options import assert_same_folders

    assert _comparable(local.meta) == _comparable(dask.meta)
    assert dask.meta["engine"]["output_parts"] > 1
    assert_same_folders(tmp_path / "local", tmp_path / "dask")  # the split files byte for byte


# --------------------------------------------------------------------------------------------------
# Without Dask, and option errors (no cluster needed)


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("missing", ["dask", "distributed"])
def test_without_dask_the_error_says_how_to_install(missing, tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    path.write_text(TIES_CSV)
    for name in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail like an absent package
    res = _run("build", str(path), "-o", str(tmp_path / "o"), "--engine", "dask")
    assert res.exit_code == 1
    assert (
        res.output
        == f"Error: --engine dask needs Dask, which is not installed ({missing}); pip install 'seqprep[dask]'\n"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--workers", "2"], "--scheduler/--workers only apply to the Dask engine; add --engine dask"),
        (["--engine", "dask", "--workers", "2", "--scheduler", "tcp://h:1"],
         "--scheduler and --workers both given; pass --scheduler to use a running cluster, or --workers N to start a local one"),
        (["--engine", "dask", "--workers", "0"], "--workers must be a whole number of at least 1, not 0"),
        (["--engine", "dask", "--scheduler", "nowhere"], "--scheduler 'nowhere' is not a scheduler address; pass one like tcp://HOST:8786"),
        (["--engine", "dask", "--part-rows", "0"], "--part-rows must be a positive whole number, not 0"),
    ],
)  # fmt: skip
def test_engine_option_errors(args, expected, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(TIES_CSV)
    res = _run("build", str(path), "-o", str(tmp_path / "o"), *args)
    assert res.exit_code == 1
    assert res.output == f"Error: {expected}\n"


def test_dask_engine_refuses_stdin(tmp_path):
    pytest.importorskip("dask.dataframe")
    res = CliRunner().invoke(cli, ["build", "-", "-o", str(tmp_path / "o"), "--engine", "dask"], input=TIES_CSV)
    assert res.exit_code == 1
    assert res.output == "Error: --engine dask reads files or URLs, not stdin (-); write the log to a file first\n"


def test_engine_options_round_trip_in_meta():
    c = seqprep.make_config(["a.csv"], "o", engine="dask", workers=3, part_rows=10)
    assert seqprep.BuildConfig.from_dict(c.to_dict()) == c
    assert c.to_dict()["engine"] == {
        "engine": "dask",
        "scheduler": None,
        "workers": 3,
        "part_rows": 10,
        "block_bytes": 64 * 2**20,
    }


def test_ratings_dat_layout_multichar_separator(tmp_path, scheduler):
    """MovieLens ratings.dat: no header, '::' separator (the python parser, like the local byte swap)."""
    rng = random.Random(9)
    path = tmp_path / "ratings.dat"
    path.write_text(
        "".join(
            f"{rng.randint(1, 25)}::{rng.randint(1, 40)}::{rng.randint(1, 5)}::{rng.randint(0, 15)}\n"
            for _ in range(700)
        )
    )
    ds = assert_same_build(path, tmp_path, scheduler)
    assert ds.meta["inputs"][0]["columns"] == {"user": "user", "item": "item", "time": "timestamp", "rating": "rating"}


def test_load_a_parts_folder_without_parts_says_so(tmp_path):
    (tmp_path / "o" / "sequences").mkdir(parents=True)
    (tmp_path / "o" / "meta.json").write_text("{}")
    pq.write_table(
        pa.table({"item_idx": pa.array([1], pa.int32()), "item_id": [5], "count": [1]}),
        tmp_path / "o" / "items.parquet",
    )
    pq.write_table(
        pa.table({"user_idx": pa.array([0], pa.int32()), "user_id": [7], "count": [1]}),
        tmp_path / "o" / "users.parquet",
    )
    with pytest.raises(seqprep.InputError) as e:
        seqprep.load(tmp_path / "o")
    assert (
        str(e.value)
        == f"{str(tmp_path / 'o' / 'sequences')!r} holds no part-*.parquet files; rebuild it with seqprep build"
    )


@pytest.mark.parametrize(
    "text",
    [
        "user,item,timestamp\n1,2,3\n",
        "user,item,timestamp\n1,2,3\n2,2,3\n3,2,3\n4,1,1\n4,2,2\n4,3,3\n4,4,4\n4,5,5\n",  # parts [1..3], [4]
    ],
)
def test_one_row_and_a_one_user_last_part(text, tmp_path, scheduler):
    path = tmp_path / "r.csv"
    path.write_text(text)
    local = seqprep.build(path, tmp_path / "local")
    dask = seqprep.build(path, tmp_path / "dask", engine="dask", scheduler=scheduler, part_rows=4)
    assert _decoded(seqprep.load(tmp_path / "local")) == _decoded(seqprep.load(tmp_path / "dask"))
    assert _comparable(local.meta) == _comparable(dask.meta)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # pure numpy; the shared machine is slow
@given(st.lists(st.integers(1, 50), min_size=1, max_size=40), st.integers(1, 200))
def test_output_parts_are_contiguous_nonempty_user_ranges(counts, part_rows):
    from seqprep.engines.dask import divisions as _divisions

    bounds = _divisions(np.array(counts), part_rows)
    assert bounds[0] == 0 and bounds[-1] == len(counts)
    assert all(a < b for a, b in itertools.pairwise(bounds))  # strictly increasing: no empty part
    cum = np.concatenate([[0], np.cumsum(counts)])
    parts = -(-int(cum[-1]) // part_rows)
    assert len(bounds) - 1 <= parts  # never more parts than asked for


def test_dask_runs_what_it_refused_until_issue_18(tmp_path):
    """--vocab-from-train with --time-feature (and --session-col, token lists) is no longer refused:
    the options are checked, the log read, and this one's error is the local engine's (no column ev)."""
    path = tmp_path / "r.csv"
    path.write_text("user,item,ts\n1,2,3\n")
    args = ["--min-user-count", "2", "--split", "days:1", "--vocab-from-train", "--event-col", "ev", "--target-events", "buy", "--kcore-on", "target", "--export", "srgnn", "--time-feature", "delta"]
    local = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "l"), *args])
    dask = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o"), "--engine", "dask", *args])
    assert dask.exit_code == local.exit_code == 1
    assert dask.stderr == local.stderr and "column 'ev' (--event-col) not found" in dask.stderr
    assert not (tmp_path / "o").exists()


def test_verify_reads_the_parts_layout(tmp_path, scheduler):
    import seqprep

    path = tmp_path / "r.csv"
    path.write_text(_log(random.Random(5), 600, str_ids=True))
    seqprep.build(path, tmp_path / "d", engine="dask", scheduler=scheduler, part_rows=200, block_bytes=4096)
    assert len(list((tmp_path / "d" / "sequences").glob("part-*.parquet"))) > 1
    report = seqprep.verify(tmp_path / "d")
    assert report.ok, report.problems
