"""A corpus of malformed (and merely unusual) inputs, generated here: each one either builds correctly
(checked counts, ids and `seqprep verify`) or fails with one exact line naming file, line and fix -
exit 1, no traceback, nothing written (no OUT, no temporary litter beside it).
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli

HDR = b"user,item,ts\n"


@dataclass(frozen=True)
class Built:
    """Expected successful build: counts and (optionally) the decoded sequences per user."""

    users: int
    items: int
    interactions: int
    removed: int = 0
    sequences: dict = field(default_factory=dict)  # user id -> item ids, oldest first
    id_types: tuple[str, str] | None = None


@dataclass(frozen=True)
class Fails:
    """Expected failure: the exact message after 'Error: ' ({p} is the input path)."""

    text: str


def _rows(n: int, start: int = 0) -> bytes:
    return b"".join(b"%d,%d,%d\n" % (i % 97, i % 13, i) for i in range(start, start + n))


def _parquet_bad_name() -> bytes:
    """A Parquet file whose column name 'item' has a byte replaced by 0xf0 (found by the fuzzer)."""
    buf = io.BytesIO()
    pq.write_table(pa.table({"user": [1], "item": [2], "ts": [3]}), buf)
    return buf.getvalue().replace(b"item", b"it\xf0m")


BIG = HDR + _rows(20_000)  # ~250 KB: past the 64 KiB sniffed head and into later parse blocks
BIG_LINES = 20_001

# (name, file content, extra CLI args, expected)
CASES: list[tuple[str, bytes, list[str], Built | Fails]] = [
    ("empty file", b"", [], Fails("{p}: the log is empty; pass a file with a header line and interaction rows")),
    (
        "blank lines only",
        b"\n\n  \n",
        [],
        Fails("{p}: the log is empty; pass a file with a header line and interaction rows"),
    ),
    (
        "blank first line",
        b"\n" + HDR + b"1,2,3\n",
        [],
        Fails("{p}: line 1 is blank; remove the blank line(s) before the header or first row"),
    ),
    ("header only", HDR, [], Fails("the log is empty: no interaction rows in {p}; check the input")),
    (
        "header only crlf",
        b"user,item,ts\r\n",
        [],
        Fails("the log is empty: no interaction rows in {p}; check the input"),
    ),
    (
        "wrong sep given",
        b"user;item;ts\n1;2;3\n",
        ["--sep", ","],
        Fails("{p}: line 1 has a single column with --sep ',' but contains ';'; pass --sep ';'"),
    ),
    (
        "tab given for commas",
        b"user,item,ts\n1,2,3\n",
        ["--sep", "\t"],
        Fails("{p}: line 1 has a single column with --sep '\\t' but contains ','; pass --sep ','"),
    ),
    (
        "unknown separator",
        b"user item ts\n1 2 3\n",
        [],
        Fails("{p}: cannot tell the column separator from the first line 'user item ts'; pass --sep"),
    ),
    ("semicolons detected", b"user;item;ts\n1;2;3\n", [], Built(1, 1, 1, sequences={1: [2]})),
    (
        "missing column",
        b"user,item\n1,2\n",
        [],
        Fails("{p}: no time column found; columns are user, item - pass --time-col NAME"),
    ),
    (
        "unnamed column",
        b"user,,ts\n1,2,3\n",
        [],
        Fails("{p}: no item column found; columns are user, , ts - pass --item-col NAME"),
    ),
    (
        "duplicated column",
        b"user,item,ts,ts\n1,2,3,4\n",
        [],
        Fails("{p}: column name 'ts' appears more than once in the header; pass --names with distinct names"),
    ),
    (
        "two user columns",
        b"user_id,userId,item,ts\n1,1,2,4\n",
        [],
        Fails("{p}: ambiguous user column: 'user_id', 'userId' all match; pass --user-col NAME to choose one"),
    ),
    ("utf-8 bom", b"\xef\xbb\xbf" + HDR + b"1,a,3\n1,b,2\n", [], Built(1, 2, 2, sequences={1: ["b", "a"]})),
    (
        "bom without header",
        b"\xef\xbb\xbf1,5,3\n1,6,2\n",
        [],
        Built(1, 2, 2, sequences={1: [6, 5]}, id_types=("int64", "int64")),
    ),
    ("crlf", b"user,ts,item\r\n1,5,x\r\n1,4,y\r\n", [], Built(1, 2, 2, sequences={1: ["y", "x"]})),
    ("bom and crlf", b"\xef\xbb\xbfuser,item,ts\r\n1,2,3\r\n", [], Built(1, 1, 1, sequences={1: [2]})),
    ("cr only", b"user,item,ts\r1,a,3\r1,b,4\r", [], Built(1, 2, 2, sequences={1: ["a", "b"]})),
    ("no final newline", HDR + b"1,2,3", [], Built(1, 1, 1)),
    (
        "quoted separator",
        b'user,item,ts\n"a,b",2,3\nc,"x,y",4\n',
        [],
        Built(2, 2, 2, sequences={"a,b": ["2"], "c": ["x,y"]}, id_types=("string", "string")),
    ),
    (
        "quoted quote and newline",
        b'user,item,ts\n"a""b",2,3\n"c\nd",3,4\n',
        [],
        Built(2, 2, 2, sequences={'a"b': [2], "c\nd": [3]}),
    ),
    ("quoted tab in tsv", b'user\titem\tts\n"a\tb"\t2\t3\n', [], Built(1, 1, 1, sequences={"a\tb": [2]})),
    (
        "spaces around fields",
        b"user , item , ts\n 1 , 2 , 3 \n1,3,4\n",
        [],
        Built(1, 2, 2, sequences={1: [2, 3]}, id_types=("int64", "int64")),
    ),
    (
        "non-utf8 header",
        b"us\xe9r,item,ts\n1,2,3\n",
        [],
        Fails("{p}: line 1: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"),
    ),
    (
        "non-utf8 row",
        HDR + b"1,2,3\n\xe9t\xe9,2,3\n",
        [],
        Fails("{p}: line 3: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"),
    ),
    (
        "non-utf8 far",
        BIG + b"1,caf\xe9,5\n",
        [],
        Fails(
            f"{{p}}: line {BIG_LINES + 1}: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ),
    ),
    (
        "non-utf8 timestamp far",
        BIG + b"1,2,\xff\n",
        [],
        Fails(
            f"{{p}}: line {BIG_LINES + 1}: byte 0xff is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ),
    ),
    (
        "latin-1 in an unused column",
        b"user,item,ts,title\n1,2,3,Am\xe9lie\n1,3,4,caf\xe9\n",
        [],
        Built(1, 2, 2, sequences={1: [2, 3]}),
    ),
    (
        "latin-1 in a used column after an unused one",
        b"user,title,item,ts\n1,Am\xe9lie,2,3\n1,x,caf\xe9,4\n",
        [],
        Fails("{p}: line 3: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"),
    ),
    (
        "nul in header",
        b"us\x00er,item,ts\n1,2,3\n",
        [],
        Fails(
            "{p}: line 1: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        ),
    ),
    (
        "nul in row",
        HDR + b"1,2\x00,3\n",
        [],
        Fails(
            "{p}: line 2: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        ),
    ),
    (
        "nul far",
        BIG + b"1,\x00\x00,5\n",
        [],
        Fails(
            f"{{p}}: line {BIG_LINES + 1}: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        ),
    ),
    (
        "row too long",
        HDR + b"1,2,3\n1,2,3,4\n",
        [],
        Fails(
            "{p}: line 3: 4 fields instead of 3 (separator ','): '1,2,3,4'; fix the row (quote fields that hold the separator) or pass the right --sep"
        ),
    ),
    (
        "row too short",
        HDR + b"1,2,3\n1,2\n",
        [],
        Fails(
            "{p}: line 3: 2 fields instead of 3 (separator ','): '1,2'; fix the row (quote fields that hold the separator) or pass the right --sep"
        ),
    ),
    (
        "ragged far",
        BIG + b"1,2\n" + _rows(10),
        [],
        Fails(
            f"{{p}}: line {BIG_LINES + 1}: 2 fields instead of 3 (separator ','): '1,2'; fix the row (quote fields that hold the separator) or pass the right --sep"
        ),
    ),
    (
        "ragged double colon",
        b"1::2::5::3\n1::3::5\n",
        [],
        Fails(
            "{p}: line 2: 3 fields instead of 4 (separator '::'): '1::3::5'; fix the row (quote fields that hold the separator) or pass the right --sep"
        ),
    ),
    (
        "ragged row with a non-utf8 byte",
        HDR + b"1,2,3\n1,\xff,3,4\n",
        [],
        Fails(
            "{p}: line 3: 4 fields instead of 3 (separator ','): '1,\ufffd,3,4'; fix the row (quote fields that hold the separator) or pass the right --sep"
        ),
    ),
    (
        "unterminated quote",
        HDR + b'"1,2,3\n',
        [],
        Fails('{p}: line 2: a quoted field starts here and is never closed; close the quote (") or pass the right --sep'),
    ),
    (
        "text timestamp",
        HDR + b"1,2,3\n1,3,yesterday\n",
        [],
        Fails(
            "{p}: line 3: timestamp 'yesterday' is neither a number nor an ISO-8601 date; fix the row or pass --time-col with the right column"
        ),
    ),
    (
        "text timestamp far",
        BIG + b"1,2,soon\n",
        [],
        Fails(
            f"{{p}}: line {BIG_LINES + 1}: timestamp 'soon' is neither a number nor an ISO-8601 date; fix the row or pass --time-col with the right column"
        ),
    ),
    (
        "header read as data",
        HDR + b"1,2,3\n",
        ["--no-header"],
        Fails(
            "{p}: line 1: timestamp 'ts' is neither a number nor an ISO-8601 date; the first line looks like a header: drop --no-header (or fix the row)"
        ),
    ),
    (
        "truncated xz",
        b"\xfd7zXZ\x00",
        [],
        Fails(
            "{p}: cannot decompress (xz): Compressed file ended before the end-of-stream marker was reached; check that the file is not truncated"
        ),
    ),
    (
        "parquet with a non-utf8 column name",
        _parquet_bad_name(),
        [],
        Fails(
            "{p}: not a readable Parquet file ('utf-8' codec can't decode byte 0xf0 in position 2: invalid continuation byte); check the file or pass --input-format"
        ),
    ),
    (
        "impossible date",
        HDR + b"1,2,2020-01-01\n1,3,2020-13-45\n",
        [],
        Fails("{p}: line 3: timestamp '2020-13-45' is not a valid date; fix the row"),
    ),
    (
        "mixed time zones",
        HDR + b"1,2,2020-01-01\n1,3,2020-01-01T10:00:00Z\n",
        [],
        Fails(
            "{p}: line 3: timestamp '2020-01-01T10:00:00Z' has a time zone (Z, +hh:mm) where earlier ones have none, or the other way round; write every timestamp in one form"
        ),
    ),
    (
        "numbers mixed with dates",
        HDR + b"1,2,3\n1,3,2020-01-01\n",
        [],
        Fails(
            "{p}: the timestamps mix numbers and ISO-8601 dates; use one kind in the whole column "
            "(line 3 holds '2020-01-01' after numbers)"
        ),
    ),
    (
        "timestamp past int64",
        HDR + b"1,2,3\n1,3,99999999999999999999\n",
        [],
        Fails("{p}: line 3: timestamp 1e+20 is out of range (beyond int64); fix the row"),
    ),
    (
        "timestamp below int64",
        HDR + b"1,2,-99999999999999999999\n",
        [],
        Fails("{p}: line 2: timestamp -1e+20 is out of range (beyond int64); fix the row"),
    ),
    (
        "timestamp 1e300",
        HDR + b"1,2,3\n1,3,1e300\n",
        [],
        Fails("{p}: line 3: timestamp 1e+300 is out of range (beyond int64); fix the row"),
    ),
    ("infinite timestamp", HDR + b"1,2,inf\n", [], Fails("{p}: line 2: timestamp inf is not finite; fix the row")),
    ("nan timestamp is missing", HDR + b"1,2,nan\n1,3,4\n", [], Built(1, 1, 1, removed=1, sequences={1: [3]})),
    (
        "int64 extremes",
        HDR + b"1,2,9223372036854775807\n1,3,-9223372036854775808\n",
        [],
        Built(1, 2, 2, sequences={1: [3, 2]}),
    ),
    ("negative timestamps", HDR + b"1,2,-5\n1,3,-7\n", [], Built(1, 2, 2, sequences={1: [3, 2]})),
    (
        "ids past int64",
        HDR + b"99999999999999999999,1,5\n1,1,6\n",
        [],
        Built(2, 1, 2, sequences={"99999999999999999999": ["1"], "1": ["1"]}, id_types=("string", "int64")),
    ),
    (
        "negative int64 id edge",
        HDR + b"-9223372036854775808,9223372036854775807,5\n",
        [],
        Built(1, 1, 1, sequences={-9223372036854775808: [9223372036854775807]}, id_types=("int64", "int64")),
    ),
    ("single row", HDR + b"1,2,3\n", [], Built(1, 1, 1, sequences={1: [2]})),
    ("single user", HDR + b"7,1,3\n7,2,1\n7,3,2\n7,1,2\n", [], Built(1, 3, 4, sequences={7: [2, 3, 1, 1]})),
    ("missing values counted", HDR + b"1,,3\n,2,3\n1,2,\n1,2,4\n", [], Built(1, 1, 1, removed=3)),
    ("null-like ids are missing", HDR + b"1,NA,3\n1,2,4\n", [], Built(1, 1, 1, removed=1)),
    (
        "truncated gzip",
        gzip.compress(BIG)[:4000],
        [],
        Fails("{p}: cannot decompress (gzip): Truncated compressed stream; check that the file is not truncated"),
    ),
    (
        "utf-16",
        "user,item,ts\n1,2,3\n".encode("utf-16"),
        [],
        Fails("{p}: the file is UTF-16 text; convert it to UTF-8 (e.g. iconv -f utf-16 -t utf-8)"),
    ),
    (
        "random bytes",
        bytes(range(256)) * 4,
        [],
        Fails(
            "{p}: line 1: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        ),
    ),
]


def _decoded(out: Path) -> dict:
    ds = seqprep.load(out)
    users = ds.user_vocab.ids.to_pylist()
    return {users[u]: ds.item_vocab.decode(ds.sequence(u)).to_pylist() for u in range(ds.num_users)}


def _check_nothing_written(folder: Path, name: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [name], "an output or temporary folder was left behind"


@pytest.mark.parametrize("name,content,args,expected", CASES, ids=[c[0] for c in CASES])
def test_malformed_input(tmp_path, name, content, args, expected):
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli, ["build", str(path), "-o", str(out), "-f", "parquet", "-f", "npz", *args], catch_exceptions=False
    )
    assert "Traceback" not in r.output
    if isinstance(expected, Fails):
        assert r.exit_code == 1
        assert r.stderr == "Error: " + expected.text.format(p=path) + "\n"
        _check_nothing_written(tmp_path, "log.csv")
        kw = {"sep": args[1]} if args[:1] == ["--sep"] else {"header": False} if args == ["--no-header"] else {}
        with pytest.raises(seqprep.SeqprepError) as info:
            seqprep.build(path, out, **kw)
        assert str(info.value) == expected.text.format(p=path)
        _check_nothing_written(tmp_path, "log.csv")
        return
    assert r.exit_code == 0, r.stderr
    report = seqprep.verify(out)
    assert report.ok, report.problems
    meta = report.checked
    assert (meta["users"], meta["items"], meta["interactions"]) == (
        expected.users,
        expected.items,
        expected.interactions,
    )
    m = seqprep.load(out).meta
    assert m["rows"]["removed"] == expected.removed
    if expected.sequences:
        got = _decoded(out)
        assert {str(k): [str(i) for i in v] for k, v in got.items()} == {
            str(k): [str(i) for i in v] for k, v in expected.sequences.items()
        }
    if expected.id_types:
        assert (m["id_types"]["user"], m["id_types"]["item"]) == expected.id_types
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "out"]


@pytest.mark.heavy
def test_a_million_users_with_one_row_each(tmp_path):
    n = 1_000_000
    u = np.arange(n, dtype=np.int64)
    table = pa.table({"user": u, "item": u % 1000, "ts": u % 7})
    pacsv.write_csv(table, tmp_path / "log.csv", pacsv.WriteOptions(quoting_style="none"))
    r = CliRunner().invoke(cli, ["build", str(tmp_path / "log.csv"), "-o", str(tmp_path / "out"), "-f", "npz", "-q"])
    assert r.exit_code == 0, r.stderr
    report = seqprep.verify(tmp_path / "out")
    assert report.ok, report.problems
    assert (report.checked["users"], report.checked["items"], report.checked["interactions"]) == (n, 1000, n)
    ds = seqprep.load(tmp_path / "out")
    assert (ds.lengths == 1).all()
    assert ds.user_vocab.ids[123_456].as_py() == 123_456  # users ordered by id
    assert ds.item_vocab.decode(ds.sequence(123_456)).to_pylist() == [456]


def test_invalid_utf8_inside_a_quoted_id_is_located(write):
    """Found by the fuzz test: a quoted field with a non-UTF-8 byte passed pyarrow's dictionary
    conversion unchecked and failed later with a UnicodeDecodeError traceback."""
    p = write("log.csv", b'userId,movieId,timestamp\n"\x80a",x,100\nb,y,90\n')
    for id_type in ("auto", "int", "str"):
        with pytest.raises(seqprep.errors.InputError, match=r"line 2: byte 0x80 is not UTF-8; convert the file to UTF-8"):
            seqprep.build(p, None, id_type=id_type)
