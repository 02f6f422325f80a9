"""A damaged built folder is a known input failure: ``seqprep stats``, ``seqprep.load`` and
``--vocab-from`` say which file cannot be read and what to do, in one line. Anything else (a bug)
keeps its traceback: the CLI relabels no exception "check the input"."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from tests.conftest import ROOT

SAMPLE = ROOT / "sample_data" / "ratings.csv"
FIX = "; the folder is damaged - run seqprep verify {out} to see what, and rebuild it with seqprep build"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "out"
    seqprep.build(SAMPLE, out, formats=("parquet", "npz"), split="loo")
    return out


def _half(p: Path) -> bytes:
    return p.read_bytes()[: p.stat().st_size // 2]


# (file, its new content from the old one, what the message says between "cannot be read (" and ")")
DAMAGE = [
    ("meta.json", lambda p: b"{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("meta.json", lambda p: b"[1, 2]", "not a JSON object"),
    ("meta.json", lambda p: b"\xff\xfe", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ("items.parquet", lambda p: b"", "Parquet file size is 0 bytes"),
    ("users.parquet", _half, "Parquet magic bytes not found in footer"),
    ("items.parquet", lambda p: (p.parent / "users.parquet").read_bytes(), "no column item_idx, item_id"),
    ("sequences.npz", lambda p: b"", "No data left in file"),
    ("sequences.npz", _half, "File is not a zip file"),
    ("train.parquet", _half, "Parquet magic bytes not found in footer"),
    ("test.parquet", lambda p: b"PAR1", "Parquet file size is 4 bytes"),
]


@pytest.mark.parametrize(("file", "damage", "reason"), DAMAGE, ids=[f"{d[0]}-{k}" for k, d in enumerate(DAMAGE)])
def test_stats_on_a_damaged_folder_is_one_line(built, tmp_path, file, damage, reason):
    out = tmp_path / "out"
    shutil.copytree(built, out)
    (out / file).write_bytes(damage(out / file))
    r = CliRunner().invoke(cli, ["stats", str(out)], catch_exceptions=False)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: {str(out)!r}: {file} cannot be read (")
    assert reason in r.stderr
    assert r.stderr.endswith(FIX.format(out=out) + "\n") and r.stderr.count("\n") == 1
    assert not seqprep.verify(out).ok  # verify names what is wrong
    if file not in ("train.parquet", "test.parquet"):  # the splits are stats' own reading
        with pytest.raises(seqprep.InputError, match=f"^{str(out)!r}: {file} cannot be read"):
            seqprep.load(out)


def test_load_names_a_damaged_sequences_parquet(tmp_path):
    out = tmp_path / "out"
    seqprep.build(SAMPLE, out)
    (out / "sequences.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(seqprep.InputError, match=r"^'.*out': sequences.parquet cannot be read \("):
        seqprep.load(out)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{", "meta.json cannot be read (Expecting"), (b"[]", "meta.json does not hold a JSON object")],
)
def test_vocab_from_a_damaged_meta_json(built, tmp_path, content, reason):
    old = tmp_path / "old"
    shutil.copytree(built, old)
    (old / "meta.json").write_bytes(content)
    with pytest.raises(seqprep.InputError, match=rf"^--vocab-from {str(old)!r}: {re.escape(reason)}"):
        seqprep.build(SAMPLE, tmp_path / "new", vocab_from=str(old))
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("target", "args"),
    [("seqprep.pipeline.run", ["build", str(SAMPLE), "-o", "{tmp}/o"]), ("seqprep.stats.describe", ["stats", str(SAMPLE)])],
)
@pytest.mark.parametrize("error", [pa.ArrowInvalid("boom"), KeyError("boom"), TypeError("boom")], ids=type)
def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path, target, args, error):
    """An exception that is no SeqprepError is a bug: never an 'Error: ... check the input' line."""

    def broken(*a, **kw):
        raise error

    monkeypatch.setattr(target, broken)
    r = CliRunner().invoke(cli, [a.format(tmp=tmp_path) for a in args])
    assert r.exception is error
    assert "Error:" not in r.output and "check the input" not in r.output
