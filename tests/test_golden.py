"""Golden outputs: a table of option combinations, each built from the committed logs in tests/golden/logs/,
with the sha256 of every output file pinned in tests/golden/hashes.json.

This is the contract of every refactoring: the same input and options give the same bytes. Each file
has two digests:

- ``bytes``: the sha256 of the file. Parquet files name the pyarrow version that wrote them and NPZ
  files are written by numpy, so byte digests are compared only when pyarrow, numpy and dask are the
  versions the table was recorded with (``versions`` in hashes.json);
- ``content``: a digest of what the file holds (Parquet: schema and every value; NPZ: every array's
  dtype, shape and bytes; meta.json: the parsed document without the byte digests of the other files,
  the dask version, the scheduler's address and the options left at their defaults; text files:
  their bytes), compared always. meta.json (and the ``-o -`` Arrow stream, whose schema carries it)
  is compared by content only: its ``options`` record
  every option, so a new option (at its default) changes its bytes but not what a build did, and a
  Dask build records the test cluster's address, new every run.

Re-record after an intended change of the output (and say why in the commit):

    SEQPREP_GOLDEN_UPDATE=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from seqprep.cli import cli

GOLDEN = Path(__file__).with_name("golden")
HASHES = GOLDEN / "hashes.json"
UPDATE = os.environ.get("SEQPREP_GOLDEN_UPDATE") == "1"

DASK = ["--engine", "dask", "--part-rows", "700", "--partition-size", "8192"]

#: case -> the steps of the case: (argv of ``seqprep build`` with OUT as the output, ...); ``{S}`` is
#: the Dask scheduler's address. Every case but the last step builds into a folder named by its step.
CASES: dict[str, list[list[str]]] = {
    "plain": [["log.csv", "-o", "OUT"]],
    "several_inputs_npz": [["log.csv", "log2.csv", "-o", "OUT", "-f", "parquet", "-f", "npz"]],
    "gzip": [["log.csv.gz", "-o", "OUT"]],
    "jsonl_text_ids": [["events.jsonl", "-o", "OUT", "-f", "npz", "-f", "parquet"]],
    "parquet_iso_dates": [["log.parquet", "-o", "OUT", "--item-order", "id", "--user-order", "first-seen"]],
    "first_seen_str_ids": [["log.csv", "-o", "OUT", "--item-order", "first-seen", "--id-type", "str"]],
    "window_rating": [["log.csv", "-o", "OUT", "--since", "2017-07-20", "--until", "1504000000", "--min-rating", "2.5"]],
    "dedup_exact": [["log.csv", "-o", "OUT", "--dedup", "exact"]],
    "dedup_first": [["log.csv", "-o", "OUT", "--dedup", "first"]],
    "dedup_last": [["log.csv", "-o", "OUT", "--dedup", "last"]],
    "dedup_consecutive": [["log.csv", "-o", "OUT", "--dedup", "consecutive"]],
    "kcore": [["log.csv", "-o", "OUT", "--min-user-count", "12", "--min-item-count", "6"]],
    "kcore_one_round": [["log.csv", "-o", "OUT", "--min-user-count", "12", "--min-item-count", "6", "--kcore-rounds", "1"]],
    "every_cleaning_step": [
        ["log.csv", "log2.csv", "-o", "OUT", "--since", "1500100000", "--min-rating", "1.5", "--dedup", "first",
         "--min-user-count", "5", "--min-item-count", "3"],
    ],
    "split_loo": [["log.csv", "-o", "OUT", "--split", "loo", "-f", "parquet", "-f", "npz"]],
    "split_time_quantiles": [["log.csv", "-o", "OUT", "--split", "time:0.7,0.9"]],
    "split_time_dates": [
        ["log.csv", "-o", "OUT", "--split", "time", "--valid-from", "2017-08-01", "--test-from", "1502500000", "-f", "npz"]
    ],
    "split_users": [["log.csv", "-o", "OUT", "--split", "users:0.7,0.15,0.15", "--seed", "7", "-f", "parquet", "-f", "npz"]],
    "negatives_popularity": [
        ["log.csv", "-o", "OUT", "--split", "loo", "--eval-negatives", "5", "--negatives", "popularity", "--seed", "2",
         "-f", "npz", "-f", "parquet"],
    ],
    "negatives_uniform_users": [["log.csv", "-o", "OUT", "--split", "users:0.6,0.2,0.2", "--eval-negatives", "3"]],
    "windows": [["log.csv", "-o", "OUT", "--windows", "4:2"]],
    "windows_after_split": [["log.csv", "-o", "OUT", "--split", "loo", "--windows", "3:1", "-f", "npz", "--max-len", "5"]],
    "padded_right": [["log.csv", "-o", "OUT", "--max-len", "6", "--pad", "right", "-f", "npz"]],
    "truncate": [["log.csv", "-o", "OUT", "--max-len", "6", "--truncate", "-f", "parquet", "-f", "npz"]],
    "sessions": [["log.csv", "-o", "OUT", "--session-gap", "1h", "-f", "parquet", "-f", "npz"]],
    "sessions_split": [["log.csv", "-o", "OUT", "--session-gap", "45m", "--split", "loo"]],
    "vocab_from_train": [["log.csv", "-o", "OUT", "--split", "loo", "--vocab-from-train", "-f", "npz", "-f", "parquet"]],
    "vocab_from_drop": [["log.csv", "-o", "base"], ["log2.csv", "-o", "OUT", "--vocab-from", "base"]],
    "vocab_from_oov": [["log.csv", "-o", "base"], ["log2.csv", "-o", "OUT", "--vocab-from", "base", "--unknown", "oov", "--export", "recbole"]],
    "vocab_from_extend": [
        ["log.csv", "-o", "base", "--item-order", "id"],
        ["log2.csv", "-o", "OUT", "--vocab-from", "base", "--extend", "--split", "loo"],
    ],
    "exports": [["log.csv", "-o", "OUT", "--export", "sasrec", "--export", "seqlines", "--export", "recbole"]],
    "exports_text_ids": [["events.jsonl", "-o", "OUT", "--export", "recbole", "--export", "sasrec"]],
    "stdout_arrow": [["log.csv", "-o", "-"]],
    "stdout_jsonl": [["events.jsonl", "-o", "-", "--to", "jsonl", "--session-gap", "2h"]],
    "memory_limit": [["log.csv", "log2.csv", "-o", "OUT", "--memory-limit", "64MB", "-f", "parquet", "-f", "npz"]],
    "memory_limit_split": [["log.csv", "-o", "OUT", "--memory-limit", "64MB", "--split", "loo", "--max-len", "4"]],
    "dask_plain": [["log.csv", "log2.csv", "-o", "OUT", *DASK, "--scheduler", "{S}"]],
    "dask_cleaning_npz": [
        ["log.csv", "-o", "OUT", *DASK, "--scheduler", "{S}", "--dedup", "first", "--min-user-count", "5",
         "--min-item-count", "3", "--since", "1500100000", "-f", "npz", "-f", "parquet"],
    ],
    "dask_split_sessions": [["log.csv", "-o", "OUT", *DASK, "--scheduler", "{S}", "--split", "loo", "--session-gap", "1h"]],
}




def _versions() -> dict[str, str]:
    import numpy
    import pyarrow

    out = {"pyarrow": pyarrow.__version__, "numpy": numpy.__version__}
    try:
        import dask

        out["dask"] = dask.__version__
    except ImportError:  # pragma: no cover - the test extra installs it
        out["dask"] = "absent"
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _table_digest(table: pa.Table) -> str:
    doc = {"schema": [f"{f.name}:{f.type}" for f in table.schema], "columns": table.to_pydict()}
    return _sha(json.dumps(doc, sort_keys=True, default=repr).encode())


def _without_defaults(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the entries equal to their default (a new option with its default value
    does not change what a build did)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            value = _without_defaults(value, defaults[key])
            if value:
                out[key] = value
        elif key not in defaults or defaults[key] != value:
            out[key] = value
    return out


def _meta_digest(meta: dict[str, Any]) -> str:
    from seqprep.config import BuildConfig

    meta = json.loads(json.dumps(meta))
    if isinstance(meta.get("options"), dict):
        defaults = BuildConfig(inputs=(), output="").to_dict()
        meta["options"] = _without_defaults(meta["options"], defaults)
    files = meta.get("outputs", {}).get("files")
    if isinstance(files, dict):
        meta["outputs"]["files"] = sorted(files)  # the names, not the byte digests
    if isinstance(meta.get("engine"), dict):
        meta["engine"].pop("dask_version", None)
        meta["options"]["engine"].pop("scheduler", None)  # the test cluster's address: new every run
    return _sha(json.dumps(meta, sort_keys=True).encode())


def content_digest(name: str, data: bytes) -> str:
    if name.endswith(".parquet"):
        return _table_digest(pq.read_table(pa.BufferReader(data)))
    if name.endswith(".npz"):
        h = hashlib.sha256()
        with zipfile.ZipFile(io.BytesIO(data)) as zf, np.load(io.BytesIO(data), allow_pickle=False) as z:
            for member in sorted(z.files):
                arr = z[member]
                h.update(f"{member}:{arr.dtype.str}:{arr.shape}".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
            assert sorted(zf.namelist()) == sorted(f"{m}.npy" for m in z.files)
        return h.hexdigest()
    if name.endswith("meta.json"):
        return _meta_digest(json.loads(data))
    if name == "<stdout arrow>":
        reader = pa.ipc.open_stream(pa.BufferReader(data))
        table = reader.read_all()
        meta = json.loads(table.schema.metadata[b"seqprep.meta"])
        return _sha((_table_digest(table.replace_schema_metadata(None)) + _meta_digest(meta)).encode())
    return _sha(data)


def _run_case(case: str, work: Path, scheduler_address: str | None) -> dict[str, dict[str, str]]:
    runner = CliRunner()
    digests: dict[str, dict[str, str]] = {}
    steps = CASES[case]
    for k, argv in enumerate(steps):
        argv = [a.replace("{S}", scheduler_address or "") for a in argv]
        argv = ["out" if a == "OUT" else a for a in argv]
        result = runner.invoke(cli, ["build", *argv, "-q"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        if k < len(steps) - 1:
            continue
        if "-" in argv[argv.index("-o") + 1 : argv.index("-o") + 2]:
            name = "<stdout jsonl>" if "jsonl" in argv else "<stdout arrow>"
            data = result.stdout_bytes
            digests[name] = {"bytes": _sha(data), "content": content_digest(name, data)}
        else:
            out = work / "out"
            for p in sorted(out.rglob("*")):
                if p.is_file():
                    rel = p.relative_to(out).as_posix()
                    data = p.read_bytes()
                    digests[rel] = {"bytes": _sha(data), "content": content_digest(rel, data)}
    return digests


def _recorded() -> dict[str, Any]:
    if HASHES.is_file():
        return json.loads(HASHES.read_text(encoding="utf-8"))
    return {"versions": {}, "cases": {}}


@pytest.mark.parametrize("case", list(CASES))
def test_golden_outputs(case, tmp_path, monkeypatch, request):
    address = request.getfixturevalue("scheduler") if "dask" in case else None
    for p in (GOLDEN / "logs").iterdir():
        shutil.copy(p, tmp_path / p.name)
    monkeypatch.chdir(tmp_path)  # relative paths: meta.json records the inputs and OUT as given
    got = _run_case(case, tmp_path, address)
    recorded = _recorded()
    if UPDATE:
        recorded["versions"] = _versions()
        recorded["cases"][case] = got
        HASHES.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return
    assert case in recorded["cases"], f"no golden digests for {case!r}; record them with SEQPREP_GOLDEN_UPDATE=1"
    want = recorded["cases"][case]
    assert sorted(got) == sorted(want), "the set of output files changed"
    same_libs = recorded["versions"] == _versions()
    for name in want:
        assert got[name]["content"] == want[name]["content"], f"{case}: {name} holds other content"
        if same_libs and name not in ("meta.json", "<stdout arrow>"):  # they hold meta: by content (see above)
            assert got[name]["bytes"] == want[name]["bytes"], f"{case}: {name} has other bytes"


def test_every_case_is_recorded():
    """No stale entries: the recorded table holds exactly the cases above."""
    if UPDATE:
        pytest.skip("recording")
    assert sorted(_recorded()["cases"]) == sorted(CASES)
