"""`seqprep verify`: a clean build passes; each kind of damage is named in one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
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
from seqprep.output.files import write_npz, write_parquet
from tests.conftest import TIES_CSV

FIX = "rebuild it with seqprep build"


@pytest.fixture
def built(write, tmp_path) -> Path:
    seqprep.build(write("r.csv", TIES_CSV), tmp_path / "out", formats=("parquet", "npz"))
    return tmp_path / "out"


def _rehash(out: Path) -> None:
    """Record the current bytes of every listed file in meta.json (isolates the semantic checks)."""
    meta = json.loads((out / "meta.json").read_text())
    for name in meta["outputs"]["files"]:
        data = (out / name).read_bytes()
        meta["outputs"]["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (out / "meta.json").write_text(json.dumps(meta))


def _edit_npz(out: Path, **changes: np.ndarray) -> None:
    with np.load(out / "sequences.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    write_npz(out / "sequences.npz", arrays)
    (out / "sequences.parquet").unlink()
    meta = json.loads((out / "meta.json").read_text())
    del meta["outputs"]["files"]["sequences.parquet"]
    (out / "meta.json").write_text(json.dumps(meta))
    _rehash(out)


def _edit_meta(out: Path, **changes) -> None:
    meta = json.loads((out / "meta.json").read_text())
    meta.update(changes)
    (out / "meta.json").write_text(json.dumps(meta))


def test_clean_build_verifies(built):
    report = seqprep.verify(built)
    assert report.ok, report.problems
    assert report.checked["files"] == 4
    assert report.checked["sequence_files"] == ["sequences.npz", "sequences.parquet"]
    r = CliRunner().invoke(cli, ["verify", str(built)])
    assert r.exit_code == 0
    assert r.stderr == f"seqprep: {built} verified: 4 files match meta.json; 3 users, 4 items, 7 interactions\n"
    assert r.stdout == ""


def _items_offsets(out: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(out / "sequences.npz", allow_pickle=False) as z:
        return z["items"].copy(), z["offsets"].copy(), z["timestamps"].copy()


# Each case damages a clean build in one way and names the one-line problem verify must report.
def _flip_byte(out: Path) -> None:
    data = bytearray((out / "items.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "items.parquet").write_bytes(bytes(data))


def _padding_inside(out: Path) -> None:
    items, _, _ = _items_offsets(out)
    items[1] = 0
    _edit_npz(out, items=items)


def _time_goes_back(out: Path) -> None:
    _, _, ts = _items_offsets(out)
    ts[0], ts[1] = ts[1], ts[0]  # user 0: 10, 10, 20, 30 -> first two equal, so swap 1 and 2 instead
    ts[1], ts[2] = ts[2], ts[1]
    _edit_npz(out, timestamps=ts)


def _bad_offsets(out: Path) -> None:
    _, offsets, _ = _items_offsets(out)
    offsets[-1] += 1
    _edit_npz(out, offsets=offsets)


def _item_out_of_range(out: Path) -> None:
    items, _, _ = _items_offsets(out)
    items[0] = 99
    _edit_npz(out, items=items)


def _swapped_items(out: Path) -> None:
    items, _, _ = _items_offsets(out)
    items[items == 2] = 1  # counts per item no longer match items.parquet
    _edit_npz(out, items=items)


def _vocab_count(out: Path) -> None:
    t = pq.read_table(out / "users.parquet")
    counts = t["count"].to_numpy().copy()
    counts[0] += 1
    write_parquet(t.set_column(2, "count", pa.array(counts)), out / "users.parquet")
    _rehash(out)


def _count_as_int32(out: Path) -> None:
    t = pq.read_table(out / "items.parquet")
    write_parquet(t.set_column(2, "count", t["count"].cast(pa.int32())), out / "items.parquet")
    _rehash(out)


CASES = [
    ("schema", _count_as_int32, "items.parquet: column count is int32, expected int64; " + FIX),
    (
        "changed file",
        _flip_byte,
        "items.parquet: sha256 differs from meta.json (the file changed after the build); " + FIX,
    ),
    (
        "missing file",
        lambda o: (o / "users.parquet").unlink(),
        "users.parquet is listed in meta.json but missing; " + FIX,
    ),
    (
        "extra file",
        lambda o: (o / "notes.txt").write_text("x"),
        "notes.txt is not listed in meta.json; remove it or rebuild the folder",
    ),
    (
        "truncated file",
        lambda o: (o / "sequences.npz").write_bytes((o / "sequences.npz").read_bytes()[:100]),
        "sequences.npz has 100 bytes, meta.json says ",
    ),
    ("padding inside", _padding_inside, "sequences.npz: padding index 0 inside user 0's sequence (position 1); " + FIX),
    ("time goes back", _time_goes_back, "sequences.npz: user 0's timestamps decrease at position 2; " + FIX),
    ("offsets", _bad_offsets, "sequences.npz: offsets end at 8 but there are 7 items and 7 timestamps; " + FIX),
    ("item range", _item_out_of_range, "sequences.npz: item indices outside 0..4 (num_items); " + FIX),
    ("item counts", _swapped_items, "sequences.npz: item 1 occurs 5 times, items.parquet count says 3; " + FIX),
    ("user counts", _vocab_count, "users.parquet: counts add up to 8, meta.json num_interactions says 7; " + FIX),
    (
        "num_items",
        lambda o: (_edit_meta(o, num_items=5), _rehash(o)),
        "items.parquet has 4 items, meta.json num_items says 5; " + FIX,
    ),
    (
        "embeddings",
        lambda o: (_edit_meta(o, num_embeddings=4), _rehash(o)),
        "meta.json num_embeddings is 4, not num_items + 1 = 5; " + FIX,
    ),
    (
        "rows",
        lambda o: (_edit_meta(o, rows={"read": 9, "kept": 7, "removed": 1}), _rehash(o)),
        "meta.json rows: read 9 != kept 7 + removed 1; " + FIX,
    ),
    (
        "steps",
        lambda o: (_edit_meta(o, rows={"read": 8, "kept": 7, "removed": 1}), _rehash(o)),
        "meta.json steps remove 0 rows in all, rows.removed says 1; " + FIX,
    ),
    (
        "no meta",
        lambda o: (o / "meta.json").unlink(),
        "no meta.json; this is not a seqprep output folder - pass the -o folder of a build",
    ),
    ("bad meta", lambda o: (o / "meta.json").write_text("{"), "meta.json is unreadable ("),
]


@pytest.mark.parametrize("name,damage,expected", CASES, ids=[c[0] for c in CASES])
def test_damage_is_reported(built, name, damage, expected):
    damage(built)
    report = seqprep.verify(built)
    assert not report.ok
    assert any(p.startswith(expected) for p in report.problems), report.problems
    r = CliRunner().invoke(cli, ["verify", str(built)])
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert len(lines) == len(report.problems)
    assert all(line.startswith(f"Error: {built}: ") for line in lines)
    assert "Traceback" not in r.output


def test_json_report(built):
    (built / "extra.bin").write_bytes(b"x")
    r = CliRunner().invoke(cli, ["verify", str(built), "--json"])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert doc["problems"] == ["extra.bin is not listed in meta.json; remove it or rebuild the folder"]
    assert doc["checked"]["users"] == 3


def test_verify_covers_whatever_meta_lists(built):
    """Files other engineers add (splits, windows, exports) are checked once meta lists them."""
    (built / "splits").mkdir()
    (built / "splits" / "train.parquet").write_bytes(b"data")
    _edit_meta(built, outputs={**json.loads((built / "meta.json").read_text())["outputs"]})
    meta = json.loads((built / "meta.json").read_text())
    meta["outputs"]["files"]["splits/train.parquet"] = {"bytes": 4, "sha256": hashlib.sha256(b"data").hexdigest()}
    (built / "meta.json").write_text(json.dumps(meta))
    assert seqprep.verify(built).ok
    (built / "splits" / "train.parquet").write_bytes(b"dat!")
    assert seqprep.verify(built).problems == (
        "splits/train.parquet: sha256 differs from meta.json (the file changed after the build); " + FIX,
    )


def test_not_a_folder(tmp_path):
    r = CliRunner().invoke(cli, ["verify", str(tmp_path / "nope")])
    assert r.exit_code == 1
    assert (
        r.stderr
        == f"Error: {tmp_path / 'nope'}: {str(tmp_path / 'nope')!r} is not a folder; pass the -o folder of a build\n"
    )


def test_documented_schemas_for_text_ids_and_fractional_times(write, tmp_path):
    """README's schema table, for the other id and time types: verify accepts them, and they are these."""
    p = write("r.csv", "user,item,rating,ts\na,x,1,1.5\nb,y,2,2\na,y,3,0.25\n")
    seqprep.build(p, tmp_path / "o", formats=("parquet", "npz"))
    assert seqprep.verify(tmp_path / "o").ok
    seq = pq.read_schema(tmp_path / "o" / "sequences.parquet")
    assert [(f.name, str(f.type)) for f in seq] == [
        ("user_idx", "int32"),
        ("user_id", "string"),
        ("items", "list<element: int32>"),
        ("timestamps", "list<element: double>"),
        ("ratings", "list<element: float>"),
    ]
    items = pq.read_schema(tmp_path / "o" / "items.parquet")
    assert [(f.name, str(f.type)) for f in items] == [("item_idx", "int32"), ("item_id", "string"), ("count", "int64")]
    with np.load(tmp_path / "o" / "sequences.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_damage_is_reported_never_raised(built, data):
    """Flipped or cut bytes in any output file: verify reports problems and never raises."""
    folder = Path(tempfile.mkdtemp(dir=built.parent)) / "out"
    shutil.copytree(built, folder)
    name = data.draw(st.sampled_from(sorted(p.name for p in folder.iterdir() if p.name != "meta.json")))
    raw = bytearray((folder / name).read_bytes())
    for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4, unique=True)):
        raw[pos] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    (folder / name).write_bytes(bytes(raw))
    report = seqprep.verify(folder)
    assert not report.ok
    assert all("\n" not in p for p in report.problems)
    shutil.rmtree(folder.parent)


def test_meta_of_the_wrong_shape(built):
    _edit_meta(built, outputs=[1, 2])
    report = seqprep.verify(built)
    assert report.problems[0].startswith("meta.json has an unexpected structure (")
    _edit_meta(built, outputs={"files": {"items.parquet": "x"}}, rows=[1])
    assert not seqprep.verify(built).ok


def test_every_optional_output_verifies(tmp_path):
    """Sessions, splits, windows, negatives, padded arrays and exports: verify knows every file a build writes."""
    import seqprep
    from tests.conftest import ROOT

    out = tmp_path / "o"
    seqprep.build(
        ROOT / "sample_data" / "ratings.csv",
        out,
        formats=("parquet", "npz"),
        session_gap="1h",
        max_len=5,
        split="loo",
        min_user_count=5,
        dedup="first",
        windows="3:1",
        eval_negatives=5,
        exports=("sasrec", "recbole", "seqlines"),
    )
    report = seqprep.verify(out)
    assert report.ok, report.problems
    # and a damaged session column is still caught
    (out / "sequences.parquet").write_bytes((out / "sequences.parquet").read_bytes()[:-10])
    assert not seqprep.verify(out).ok


NEW_LOG = """userId,movieId,rating,timestamp
1,5,4.0,40
1,500,3.0,41
2,7,5.0,42
9,600,2.0,43
9,5,1.0,44
"""


@pytest.mark.parametrize(
    "options",
    [
        {"max_len": 2, "truncate": True},
        {"vocab_from": "base"},
        {"vocab_from": "base", "unknown": "oov"},
        {"vocab_from": "base", "extend": True},
        {"split": "loo", "vocab_from_train": True},
        {"split": "loo", "vocab_from_train": True, "max_len": 1, "truncate": True},
        {"vocab_from": "base", "unknown": "oov", "max_len": 1, "truncate": True},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_every_build_mode_verifies(write, tmp_path, monkeypatch, options):
    """Counts mean what docs/outputs.md says in every mode: truncated sequences (counts describe the
    whole), reused vocabularies (an old id may have count 0; oov_idx N+1 stands in the sequences),
    training-part item counts (--vocab-from-train). A fresh build verifies, in both layouts."""
    monkeypatch.chdir(tmp_path)
    seqprep.build(write("ties.csv", TIES_CSV), "base")
    log = write("new.csv", NEW_LOG) if "vocab_from" in options else Path("ties.csv")
    seqprep.build(log, "out", formats=("parquet", "npz"), **options)
    report = seqprep.verify("out")
    assert report.ok, report.problems
    meta = json.loads(Path("out/meta.json").read_text())
    if options.get("unknown") == "oov":
        assert meta["oov_idx"] == meta["num_items"] + 1  # the unknown items 500, 600 are there
        assert meta["vocab_reuse"]["unseen_items"] == 2


# the week after TIES_CSV (items 5, 6, 7, 99) with 4 rows of unseen items (500 twice, 600, 700), some of
# which the later steps remove: (1, 500) is repeated (--dedup first), user 3 has one row (--min-user-count
# 2), 600 and 700 occur once (--min-item-count 2), 700 is the last row (--until 47) and rated 1 (--min-rating)
FILTERED_LOG = """userId,movieId,rating,timestamp
1,5,4.0,40
1,500,3.0,41
1,500,3.0,42
1,7,2.0,43
2,7,5.0,44
2,600,2.0,45
2,5,1.5,46
3,700,1.0,47
"""


@pytest.mark.parametrize(
    ("options", "oov"),
    [
        ({"min_user_count": 2}, 3),
        ({"dedup": "first"}, 3),
        ({"min_item_count": 2}, 2),  # k-core
        ({"min_user_count": 2, "min_item_count": 2, "split": "loo"}, 2),
        ({"until": 47}, 3),
        ({"min_rating": 1.5}, 3),
        ({"dedup": "first", "max_len": 1, "truncate": True}, 3),
        ({"dedup": "first", "memory_limit": 1, "block_size": "1KiB"}, 3),
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) if isinstance(o, dict) else str(o),
)
def test_oov_builds_whose_filters_remove_unseen_rows_verify(write, tmp_path, monkeypatch, options, oov):
    """vocab_reuse.unseen_rows counts the log's unseen rows at the unknown_items step; a filter after it
    removes some, and vocab_reuse.oov_interactions says how many stay at oov_idx (verify failed here
    when it took unseen_rows for the output's oov interactions)."""
    monkeypatch.chdir(tmp_path)
    seqprep.build(write("ties.csv", TIES_CSV), "base")
    seqprep.build(write("new.csv", FILTERED_LOG), "out", formats=("parquet", "npz"), vocab_from="base", unknown="oov", **options)
    report = seqprep.verify("out")
    assert report.ok, report.problems
    meta = json.loads(Path("out/meta.json").read_text())
    assert meta["vocab_reuse"]["unseen_rows"] == 4  # the log's, as before
    assert meta["vocab_reuse"]["oov_interactions"] == oov
    items = seqprep.load("out").item_vocab
    assert meta["num_interactions"] - int(items.counts.sum()) == oov
    if "truncate" not in options:
        with np.load("out/sequences.npz") as z:
            assert int((z["items"] == meta["oov_idx"]).sum()) == oov


def _filtered_oov_build(write, tmp_path: Path, **options) -> Path:
    seqprep.build(write("ties.csv", TIES_CSV), tmp_path / "base")
    out = tmp_path / "out"
    seqprep.build(write("new.csv", FILTERED_LOG), out, formats=("parquet", "npz"), vocab_from=str(tmp_path / "base"), unknown="oov", **options)
    return out


def _edit_reuse(out: Path, **changes) -> None:
    meta = json.loads((out / "meta.json").read_text())
    for k, v in changes.items():
        if v is None:
            del meta["vocab_reuse"][k]
        else:
            meta["vocab_reuse"][k] = v
    (out / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("delta", [1, -1])
def test_a_changed_oov_interactions_is_reported(write, tmp_path, delta):
    out = _filtered_oov_build(write, tmp_path, dedup="first")
    _edit_reuse(out, oov_interactions=3 + delta)
    problems = seqprep.verify(out).problems
    assert f"items.parquet: counts add up to 4, meta.json num_interactions - vocab_reuse.oov_interactions says {4 - delta}; {FIX}" in problems
    for name in ("sequences.parquet", "sequences.npz"):
        assert f"{name}: oov_idx 5 occurs 3 times, meta.json vocab_reuse.oov_interactions says {3 + delta}; {FIX}" in problems


def test_oov_interactions_that_is_no_count_is_reported(write, tmp_path):
    out = _filtered_oov_build(write, tmp_path, dedup="first")
    _edit_reuse(out, oov_interactions="3")
    assert seqprep.verify(out).problems == (f"meta.json vocab_reuse.oov_interactions is '3', not a count of interactions; {FIX}",)


def test_a_folder_without_oov_interactions_is_checked_when_unseen_rows_is_exact(write, tmp_path):
    """Written before oov_interactions: unseen_rows is the oov count when no later step removed a row."""
    out = _filtered_oov_build(write, tmp_path)  # no filter: the 4 unseen rows are all in the output
    _edit_reuse(out, oov_interactions=None)
    assert seqprep.verify(out).ok
    _edit_reuse(out, unseen_rows=5)
    problems = seqprep.verify(out).problems
    assert f"items.parquet: counts add up to 4, meta.json num_interactions - vocab_reuse.unseen_rows says 3; {FIX}" in problems
    assert f"sequences.npz: oov_idx 5 occurs 4 times, meta.json vocab_reuse.unseen_rows says 5; {FIX}" in problems


def test_a_folder_without_oov_interactions_whose_filters_removed_rows_skips_the_oov_comparisons(write, tmp_path):
    """unseen_rows is not the oov count once a later step removed rows: those two comparisons are
    skipped; the per-item counts are still checked against the sequences."""
    out = _filtered_oov_build(write, tmp_path, dedup="first")
    _edit_reuse(out, oov_interactions=None)
    assert seqprep.verify(out).ok
    table = pq.read_table(out / "items.parquet")
    counts = table["count"].to_numpy().copy()
    counts[0] += 1
    write_parquet(table.set_column(2, "count", pa.array(counts, pa.int64())), out / "items.parquet")
    _rehash(out)
    problems = seqprep.verify(out).problems
    assert any(p.startswith("sequences.parquet: item 1 occurs") for p in problems), problems


def test_a_truncated_build_still_catches_a_changed_count(write, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seqprep.build(write("ties.csv", TIES_CSV), "out", max_len=2, truncate=True)
    table = pq.read_table("out/users.parquet")
    counts = table["count"].to_numpy().copy()
    counts[0] += 1
    table = table.set_column(2, "count", pa.array(counts, pa.int64()))
    write_parquet(table, Path("out/users.parquet"))
    problems = seqprep.verify("out").problems
    assert any("users.parquet: counts add up to" in p for p in problems), problems


def test_a_parts_folder_without_parts_is_reported_not_raised(write, tmp_path):
    out = tmp_path / "out"
    seqprep.build(write("ties.csv", TIES_CSV), out)
    (out / "sequences.parquet").unlink()
    (out / "sequences").mkdir()
    report = seqprep.verify(out)
    assert not report.ok and any("holds no part-*.parquet files" in p for p in report.problems), report.problems
