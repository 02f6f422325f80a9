"""--memory-limit: spilled columns and the external sort give byte-identical outputs."""

from __future__ import annotations

import json
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


def test_memory_limit_refuses_steps_the_spilled_path_does_not_run(tmp_path):
    """--memory-limit never silently skips a cleaning step or a reused vocabulary."""
    from click.testing import CliRunner

    from seqprep.cli import cli

    path = tmp_path / "r.csv"
    path.write_text("user,item,ts\n1,2,3\n")
    r = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o"), "--memory-limit", "1GB", "--session-col", "sess"])
    assert r.exit_code == 1
    assert r.stderr == (
        "Error: --memory-limit does not support the --session-col options yet; "
        "drop --memory-limit: the in-memory build runs them\n"
    )
    assert not (tmp_path / "o").exists()
