"""--memory-limit: spilled columns and the external sort give byte-identical outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqprep import build
from seqprep.cli import cli
from seqprep.config import ReadOptions
from seqprep.io.stream import stream_log
from seqprep.kernels.partition import split_by_partition, user_partitions
from tests.conftest import TIES_CSV
from tests.test_ingest import assert_same_log, csv_logs, plain_ids, tree_digest


def with_a_complete_row(text: str) -> str:
    return text + "z,z,1,1\n"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(csv_logs(), csv_logs(plain_ids)),
    limit=st.sampled_from([1, 200, "1GB"]),
    item_order=st.sampled_from(["frequency", "first-seen", "id"]),
    user_order=st.sampled_from(["id", "first-seen"]),
)
def test_spilled_build_is_byte_identical(tmp_path_factory, text, limit, item_order, user_order):
    d = tmp_path_factory.mktemp("sp")
    (d / "log.csv").write_text(with_a_complete_row(text))
    opts = {"item_order": item_order, "user_order": user_order, "formats": ("parquet", "npz")}
    build(d / "log.csv", d / "memory", **opts)
    build(d / "log.csv", d / "spilled", memory_limit=limit, block_size="1KiB", **opts)
    assert tree_digest(d / "spilled") == tree_digest(d / "memory")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(csv_logs(), min_size=2, max_size=3))
def test_spilled_build_over_several_inputs(tmp_path_factory, parts):
    d = tmp_path_factory.mktemp("sm")
    paths = []
    for k, text in enumerate(parts):
        paths.append(d / f"{k}.csv")
        paths[-1].write_text(with_a_complete_row(text) if k == 0 else text)
    build(paths, d / "memory")
    build(paths, d / "spilled", memory_limit=1)
    assert tree_digest(d / "spilled") == tree_digest(d / "memory")


def test_spilled_build_of_parquet_and_jsonl(write, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"user_id": pa.array([5, 6, 5, None]), "item_id": pa.array(["a", "b", "c", "a"]), "ts": pa.array([3, 2, 1, 1])}),
        tmp_path / "p.parquet",
    )
    j = write("j.jsonl", "".join(f'{{"reviewerID": "{k % 4}", "asin": "a", "unixReviewTime": {k % 3}}}\n' for k in range(30)))
    inputs = [tmp_path / "p.parquet", j]
    build(inputs, tmp_path / "memory", item_order="first-seen", user_order="first-seen")
    build(inputs, tmp_path / "spilled", item_order="first-seen", user_order="first-seen", memory_limit=1, block_size="1KiB")
    assert tree_digest(tmp_path / "spilled") == tree_digest(tmp_path / "memory")


def test_spilled_log_equals_in_memory_log(write, tmp_path):
    p = str(write("r.csv", TIES_CSV + "4,,1,1\n5,5,,\n"))
    (tmp_path / "spill").mkdir()
    spilled = stream_log([p], ReadOptions(), block_size=40, spill_dir=tmp_path / "spill")
    assert isinstance(spilled.user_codes, np.memmap)
    assert_same_log(spilled, stream_log([p], ReadOptions()))


def test_strict_and_empty_errors_are_the_same_when_spilled(write, tmp_path):
    p = write("x.csv", "user,item,ts\n1,2,3\n1,,4\n")
    for extra in ([], ["--memory-limit", "1KB"]):
        r = CliRunner().invoke(cli, ["build", str(p), "-o", str(tmp_path / "o"), "--strict", *extra])
        assert r.exit_code == 1
        assert r.stderr.strip() == (
            f"Error: 1 rows have a missing user, item or timestamp (first at {p} row 2); "
            "fix them, or drop --strict to skip and count them"
        )
    q = write("y.csv", "user,item,ts\n,2,3\n")
    r = CliRunner().invoke(cli, ["build", str(q), "-o", str(tmp_path / "o"), "--memory-limit", "1KB"])
    assert r.stderr.strip() == "Error: no interactions left: all 1 rows have a missing user, item or timestamp; check the columns chosen"
    assert not (tmp_path / "o").exists()


def test_spill_folder_is_removed(write, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    build(write("r.csv", TIES_CSV), tmp_path / "o", memory_limit="1KB")
    assert list((tmp_path / "tmp").iterdir()) == []
    meta = json.loads(Path(tmp_path / "o" / "meta.json").read_text())
    assert meta["num_interactions"] == 7


# --------------------------------------------------------------------------------------------------
# Partition kernels against plain-Python references


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 9), max_size=30), max_rows=st.integers(1, 12))
def test_user_partitions(counts, max_rows):
    part = user_partitions(np.array(counts, dtype=np.int64), max_rows)
    assert len(part) == len(counts)
    if not counts:
        return
    assert part[0] == 0 and (np.diff(part) >= 0).all() and (np.diff(part) <= 1).all()  # contiguous ranges
    for k in range(int(part[-1]) + 1):
        members = [c for c, p in zip(counts, part) if p == k]
        first = next((c for c in members if c), 0)
        assert sum(members) <= max_rows + first  # only a partition's first user may overflow it
        assert sum(members) > 0 or k == 0


@settings(max_examples=200, deadline=None)
@given(part=st.lists(st.integers(0, 4), max_size=40))
def test_split_by_partition(part):
    order, offsets = split_by_partition(np.array(part, dtype=np.int64), 5)
    expected = [i for k in range(5) for i in range(len(part)) if part[i] == k]  # stable grouping
    assert order.tolist() == expected
    assert offsets.tolist() == [sum(1 for p in part if p < k) for k in range(6)]


def test_user_partitions_rejects_zero_rows():
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        user_partitions(np.array([1]), 0)


def test_a_missing_session_column_fails_alike_with_and_without_memory_limit(tmp_path):
    """--session-col runs under --memory-limit: a wrong column name is the reader's one-line error."""
    path = tmp_path / "r.csv"
    path.write_text("user,item,ts\n1,2,3\n")
    errors = []
    for extra in ([], ["--memory-limit", "1GB"]):
        r = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o"), "--session-col", "sess", *extra])
        assert r.exit_code == 1 and r.stderr.count("\n") == 1
        errors.append(r.stderr)
    assert errors[0] == errors[1] and "sess" in errors[0]
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------------
# What the spilled build reads chunk by chunk, against plain-Python references


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(-1, 4), st.integers(-3 * 86400, 6 * 86400), st.booleans()), max_size=40),
    chunk=st.integers(1, 9),
)
def test_log_dates_read_in_chunks(rows, chunk):
    """Each user's date is the UTC day of its last row with a time (negative days too), its first
    row the first such row, whatever the chunk size."""
    import pyarrow as pa

    from seqprep.model import Log
    from seqprep.steps.vocabularies import log_dates

    codes = np.array([r[0] for r in rows], dtype=np.int32)
    log = Log(codes, pa.array(["a", "b", "c", "d", "e"]), np.zeros(len(rows), np.int32), pa.array(["x"]),
              np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=bool), "epoch", None, ())  # fmt: skip
    dates, first = log_dates(log, "--split days", chunk)
    want_dates, want_first = [-1] * 5, [np.iinfo(np.int64).max] * 5
    for k, (u, t, valid) in enumerate(rows):
        if u >= 0 and valid:
            want_dates[u] = t // 86400
            want_first[u] = min(want_first[u], k)
    assert dates.tolist() == want_dates and first.tolist() == want_first
    assert [a.tolist() for a in log_dates(log, "--split days")] == [want_dates, want_first]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from(["NA", "7", "8", "9"]), st.integers(0, 5), st.integers(0, 4), st.integers(1, 3)),
        min_size=1,
        max_size=40,
    ),
    limit=st.sampled_from([1, 300]),
    split=st.sampled_from(["none", "loo", "days:1"]),
)
def test_spilled_session_logs_are_byte_identical(tmp_path_factory, rows, limit, split):
    """--session-col and a date-plus-offset time: each session's user (the first in stable time
    order that has one) and every file, over user ranges of any size."""
    d = tmp_path_factory.mktemp("ss")
    text = "session_id;user_id;item_id;timeframe;eventdate\n" + "".join(f"{s};{u};{i};{f};2016-05-0{day}\n" for s, u, i, f, day in rows)
    (d / "log.csv").write_text(text)
    opts = {"session_col": "session_id", "user_col": "user_id", "item_col": "item_id", "time_col": "eventdate,timeframe", "split": split}
    try:
        build(d / "log.csv", d / "memory", **opts)
    except Exception as e:  # e.g. a split with nothing to hold out: the spilled build must fail alike
        with pytest.raises(type(e), match=re.escape(str(e))):
            build(d / "log.csv", d / "spilled", memory_limit=limit, block_size="1KiB", **opts)
        return
    build(d / "log.csv", d / "spilled", memory_limit=limit, block_size="1KiB", **opts)
    assert tree_digest(d / "spilled") == tree_digest(d / "memory")
