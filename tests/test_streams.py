"""-o -: the sequences as an Arrow IPC stream (or JSON Lines) on stdout; messages never touch stdout."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from seqprep.output.stream import META_KEY, USERS_PER_BATCH, read_meta
from tests.conftest import TIES_CSV


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_arrow_stream_equals_the_folder_build(write, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = write("r.csv", TIES_CSV)
    r = run("build", str(p), "-o", "-")
    assert r.exit_code == 0
    assert "wrote stdout [arrow]" in r.stderr
    table = pa.ipc.open_stream(io.BytesIO(r.stdout_bytes)).read_all()
    seqprep.build(p, tmp_path / "out")
    folder = pq.read_table(tmp_path / "out" / "sequences.parquet")
    assert table.replace_schema_metadata(None).equals(folder.replace_schema_metadata(None))
    meta = read_meta(table.schema)
    on_disk = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["num_embeddings"] == on_disk["num_embeddings"] == 5
    assert meta["outputs"] == {"stream": "arrow", "files": {}}
    for key in ("steps", "ties", "num_users", "num_items", "rows", "sequence_length"):
        assert meta[key] == on_disk[key]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out", "r.csv"]  # no folder "-" and no litter


def test_stream_batches_hold_whole_users(write):
    rows = "".join(f"{u},{u % 7},{u}\n" for u in range(USERS_PER_BATCH + 5))
    r = run("build", "-", "-o", "-", "-q", input="user,item,ts\n" + rows)
    assert r.stderr == ""
    reader = pa.ipc.open_stream(io.BytesIO(r.stdout_bytes))
    sizes = [b.num_rows for b in reader]
    assert sizes == [USERS_PER_BATCH, 5]
    assert META_KEY in reader.schema.metadata


def test_jsonl_stream(write):
    r = run("build", str(write("r.csv", TIES_CSV)), "-o", "-", "--to", "jsonl", "-q")
    assert r.exit_code == 0 and r.stderr == ""
    lines = r.stdout_bytes.decode().splitlines()
    res = seqprep.build(write("r2.csv", TIES_CSV), None)
    from seqprep.output.files import sequences_arrow as sequences_table

    assert [json.loads(line) for line in lines] == sequences_table(res).to_pylist()
    assert lines[0] == '{"user_idx":0,"user_id":1,"items":[1,3,2,2],"timestamps":[10,10,20,30],"ratings":[3,2,4,4.5]}'


def test_jsonl_text_ids_are_escaped(write):
    r = run("build", "-", "-o", "-", "--to", "jsonl", "-q", input='user,item,ts\n"a""b",x,1\n')
    assert [json.loads(line)["user_id"] for line in r.stdout_bytes.decode().splitlines()] == ['a"b']


@pytest.mark.parametrize(
    "args,expected",
    [
        (
            ["-o", "-", "--json"],
            "Error: --json prints to stdout, which -o - already uses for the stream; drop --json (meta travels in the stream)",
        ),
        (
            ["-o", "-", "-f", "npz"],
            "Error: -f/--format sets the files of an output folder, and -o - has none; pass --to arrow|jsonl for the stream",
        ),
        (
            ["-o", "-", "--export", "sasrec"],
            "Error: --export writes files into the output folder, and -o - has none; pass -o OUT",
        ),
        (
            ["-o", "{tmp}/o", "--to", "jsonl"],
            "Error: --to jsonl sets the format of the stdout stream; pass -o - (or drop --to and use -f)",
        ),
    ],
)
def test_stream_option_errors(write, tmp_path, args, expected):
    p = write("r.csv", TIES_CSV)
    r = run("build", str(p), *[a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 1
    assert r.stdout_bytes == b""
    assert r.stderr == expected.format(tmp=tmp_path) + "\n"


def test_failed_stream_build_writes_nothing_to_stdout(write):
    r = run("build", str(write("x.csv", "user,item,ts\n1,2,yesterday\n")), "-o", "-")
    assert r.exit_code == 1 and r.stdout_bytes == b""


def test_pipe_chain_with_subprocess(write, tmp_path):
    """seqprep build - -o - reads stdin and streams to stdout; a consumer reads it from its stdin."""
    consumer = (
        "import sys, json, pyarrow.ipc as ipc\n"
        "r = ipc.open_stream(sys.stdin.buffer)\n"
        "meta = json.loads(r.schema.metadata[b'seqprep.meta'])\n"
        "t = r.read_all()\n"
        "print(json.dumps({'n': meta['num_embeddings'], 'items': t['items'].to_pylist()}))\n"
    )
    p = write("r.csv", TIES_CSV)
    cat = subprocess.Popen(["cat", str(p)], stdout=subprocess.PIPE)
    build = subprocess.Popen(
        [sys.executable, "-m", "seqprep", "build", "-", "-o", "-"],
        stdin=cat.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    cat.stdout.close()
    out = subprocess.run(
        [sys.executable, "-c", consumer], stdin=build.stdout, capture_output=True, text=True, check=True
    )
    build.stdout.close()
    err = build.stderr.read()
    build.stderr.close()
    assert build.wait() == 0 and cat.wait() == 0
    assert b"wrote stdout [arrow]" in err
    got = json.loads(out.stdout)
    res = seqprep.build(p, None)
    assert got["n"] == res.meta["num_embeddings"]
    assert got["items"] == [
        res.sequences.items[a:b].tolist() for a, b in zip(res.sequences.offsets[:-1], res.sequences.offsets[1:])
    ]


def test_python_api_stream(write):
    buf = io.BytesIO()
    res = seqprep.build(write("r.csv", TIES_CSV), "-", stdout=buf, to="jsonl")
    assert res.output is None and res.meta["outputs"]["stream"] == "jsonl"
    assert len(buf.getvalue().splitlines()) == 3


@pytest.mark.parametrize("to", ["arrow", "jsonl"])
def test_stream_is_byte_identical_on_rerun(write, to):
    p = write("r.csv", TIES_CSV)
    a, b = (run("build", str(p), "-o", "-", "--to", to, "-q").stdout_bytes for _ in range(2))
    assert a == b and len(a) > 0
