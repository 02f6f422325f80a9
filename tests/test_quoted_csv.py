"""RFC 4180 quoted fields (separators, doubled quotes, CR/LF/CRLF inside quotes) at any file size,
block size, compression and through stdin: the rows pandas.read_csv gives, in file order.

The quote-state kernel is checked against a byte-by-byte model of the parsers' rule; the readers
against pandas on the same bytes.
"""

from __future__ import annotations

import gzip
import io
import itertools
import re
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
import seqprep.engines.local as pipeline
from seqprep.cli import cli
from seqprep.config import ReadOptions
from seqprep.io import ranges as ingest
from seqprep.io.sniff import ColumnRequest
from seqprep.io.sniff import csv_layout as _csv_layout
from seqprep.io.stream import stream_log
from seqprep.kernels.csvquotes import QuoteTracker, row_end, state_before
from seqprep.model import Log
from tests.conftest import shared_file
from tests.oracle import read_log_in_memory
from tests.test_ingest import assert_same_log, tree_digest

LF, CR, Q = 10, 13, 34


def model(data: bytes, delim: int) -> tuple[list[int], bool, int]:
    """Byte by byte, as pyarrow's parser reads: -> (row-break offsets (a CRLF at its CR), inside a
    quoted field at the end, the open field's first quote or -1)."""
    state, opened = "start", -1
    breaks = []
    i = 0
    while i < len(data):
        c = data[i]
        if state == "quoted":
            state = "after" if c == Q else "quoted"
        elif c == Q and state in ("start", "after"):
            if state == "start":
                opened = i
            state = "quoted"
        elif c == delim:
            state = "start"
        elif c in (LF, CR):
            breaks.append(i)
            state = "start"
            if c == CR and i + 1 < len(data) and data[i + 1] == LF:
                i += 1
        else:
            state = "field"
        i += 1
    return breaks, state == "quoted", opened if state == "quoted" else -1


_bytes = st.lists(st.sampled_from([b'"', b'"', b",", b"\n", b"\r", b"\r\n", b"a", b"5", b" "]), max_size=80).map(
    b"".join
)


@settings(max_examples=150, deadline=None)
@given(_bytes, st.lists(st.integers(1, 12), min_size=1, max_size=10))
def test_tracker_follows_the_model_in_any_pieces(data, cuts):
    breaks, inside, opened = model(data, ord(","))
    t = QuoteTracker(ord(","))
    arr = np.frombuffer(data, np.uint8)
    got, at = [], 0
    for n in cuts * (len(data) // max(1, sum(cuts)) + 1):
        got += t.feed(arr[at : at + n], breaks=True).tolist()
        at += n
        if at >= len(data):
            break
    t.finish()
    assert got == breaks
    assert (t.inside, t.opened_at) == (inside, opened)


@settings(max_examples=150, deadline=None)
@given(_bytes, st.data())
def test_state_before_looks_back_only_as_needed(data, draw):
    arr = np.frombuffer(data, np.uint8)
    pos = draw.draw(st.integers(0, len(data)))
    window = draw.draw(st.sampled_from([1, 2, 5, 1 << 16]))
    got_inside, got_open, moved = state_before(arr, pos, ord(","), window=window)
    assert moved >= pos and all(c == Q for c in data[pos:moved])
    assert (got_inside, got_open) == model(data[:moved], ord(","))[1:]


@settings(max_examples=150, deadline=None)
@given(_bytes, st.data(), st.integers(1, 9))
def test_row_end_is_the_first_break_at_or_after(data, draw, piece):
    """From the state at any offset, fed in pieces: the end of the first row end at or after it."""
    breaks, end_inside, opened = model(data, ord(","))
    arr = np.frombuffer(data, np.uint8)
    inside, opened_at, pos = state_before(arr, draw.draw(st.integers(0, len(data))), ord(","))
    t = QuoteTracker(ord(","), offset=pos, inside=inside, opened_at=opened_at, prev=data[pos - 1] if pos else LF)
    end, at = -1, pos
    while end < 0 and at < len(data):
        end = row_end(t, arr[at : at + piece], eof=at + piece >= len(data))
        at += piece
    if pos == len(data):
        t.finish()
    # between the CR and the LF of one line end, that line end is not seen: the next one is taken
    later = [b for b in breaks if b >= pos and not (b == pos - 1 and data[b] == CR)]
    if later:
        b = later[0]
        same_piece = (b - pos) // piece == (b + 1 - pos) // piece
        assert end == b + (2 if data[b : b + 2] == b"\r\n" and same_piece else 1)
    else:
        assert end == -1 and (t.inside, t.opened_at) == (end_inside, opened)


@settings(max_examples=100, deadline=None)
@given(_bytes)
def test_model_splits_rows_as_pyarrow_does(data):
    """The model's rows are pyarrow's: as many rows (parsed or not) as non-empty lines between breaks."""
    breaks = model(data, ord(","))[0]
    ends = [b + (2 if data[b : b + 2] == b"\r\n" else 1) for b in breaks]
    rows = [data[a:b] for a, b in zip([0, *ends], [*breaks, len(data)]) if b > a]
    if not data.strip(b"\r\n"):
        return  # pyarrow: "Empty CSV file"
    bad = []
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=["a", "b"], use_threads=False),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=lambda r: bad.append(r) or "skip"
        ),
        convert_options=pacsv.ConvertOptions(column_types={"a": pa.string(), "b": pa.string()}),
    )
    assert table.num_rows + len(bad) == len(rows)


# --------------------------------------------------------------------------------------------------
# The readers against pandas.read_csv of the same bytes

NULLS = list(pacsv.ConvertOptions().null_values)  # pyarrow's CSV null markers (pandas is told the same)
_INT = re.compile(r"^(0|-?[1-9][0-9]*)$")

_plain = st.text(st.sampled_from("abcxyz0123456789 -."), max_size=6)
_messy = st.lists(
    st.sampled_from(['"', ",", ";", "\t", "|", "\n", "\r", "\r\n", " ", "a", "b", "5", "é"]), max_size=8
).map("".join)
_field = st.one_of(_plain, _plain, _messy, st.integers(-5, 30).map(str))
_time = st.one_of(st.integers(-3, 40).map(str), st.just(""), st.integers(-3, 40).map(lambda t: f" {t} "))


def _quoted(value: str, sep: str, draw: st.DrawFn, *, stray: bool = True) -> str:
    """RFC 4180: a field with the separator, a quote or a line end is quoted with its quotes doubled;
    others are quoted or not at random. Unquoted text may hold a quote after its first byte (a
    literal, as in ``5" screen``)."""
    needs = any(c in value for c in (sep, '"', "\n", "\r"))
    if (
        needs
        and stray
        and draw(st.integers(0, 5)) == 0
        and value[:1] not in ('"', "")
        and not any(c in value for c in (sep, "\n", "\r"))
    ):
        return value  # a stray quote inside an unquoted field: a literal character for both parsers
    if needs or draw(st.booleans()):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def quoted_logs(draw: st.DrawFn, *, long_row: bool = False, quotes: bool = True) -> tuple[bytes, str]:
    """(CSV bytes, separator): user,item,rating,timestamp and extra text columns, rows ended by LF,
    CRLF or CR, the header's names quoted at random (one of them with a line end)."""
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    extra = draw(st.integers(0, 2))
    names = ["user", "item", "rating", "timestamp"] + [f"text{k}" for k in range(extra)]
    if extra and quotes and draw(st.booleans()):
        names[-1] = "long\ntext"
    field = _field if quotes else _plain
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    rows = []
    n = draw(st.integers(1, 40))
    for k in range(n):
        user = draw(field)
        item = draw(field)
        rating = draw(st.sampled_from(["1", "2.5", "", "4"]))
        cells = [user, item, rating, draw(_time)] + [draw(field if quotes else _plain) for _ in range(extra)]
        if long_row and k == n // 2 and extra:
            cells[-1] = 'x\n, ""y"" ' * draw(st.integers(200, 2000))  # one row over many ranges
            cells[-1] = cells[-1].replace('""', '"')
        rows.append(cells)
    out = []
    for cells in [names, *rows]:
        end = draw(st.sampled_from(["\n", "\r\n", "\r"])) if newline == "mixed" else newline
        if quotes:
            line = sep.join(_quoted(c, sep, draw, stray=c is not cells[0] or cells is not names) for c in cells)
        else:
            line = sep.join(cells)
        out.append(line + end)
    text = "".join(out)
    if not quotes:
        assert '"' not in text
    return text.encode(), sep


def _pandas_reference(data: bytes, sep: str) -> dict[str, object]:
    """pandas.read_csv of the bytes (all text), then seqprep's rules: spaces around an id are not part
    of it, a blank id is missing, ids are int64 when every one is a plain integer; time is an int."""
    df = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, na_values=NULLS, header=0)

    def ids(col: pd.Series) -> tuple[list[str | None], str]:
        vals = [None if (isinstance(v, float) or v is None) else (v.strip() or None) for v in col.astype(object)]
        present = [v for v in vals if v is not None]
        kind = "int" if present and all(_INT.match(v) and -(2**63) <= int(v) < 2**63 for v in present) else "str"
        return vals, kind

    users, user_kind = ids(df.iloc[:, 0])
    items, item_kind = ids(df.iloc[:, 1])
    times = [
        None if isinstance(v, float) or v is None or not v.strip() else int(v) for v in df.iloc[:, 3].astype(object)
    ]
    ratings = [None if isinstance(v, float) or v is None else float(v) for v in df.iloc[:, 2].astype(object)]
    return {
        "users": users,
        "user_kind": user_kind,
        "items": items,
        "item_kind": item_kind,
        "times": times,
        "ratings": ratings,
    }


def _decoded(log: Log) -> dict[str, object]:
    def ids(codes: np.ndarray, dictionary: pa.Array) -> tuple[list[str | None], str]:
        values = dictionary.to_pylist()
        return [None if c < 0 else str(values[c]) for c in codes], "int" if pa.types.is_integer(
            dictionary.type
        ) else "str"

    users, user_kind = ids(log.user_codes, log.user_ids)
    items, item_kind = ids(log.item_codes, log.item_ids)
    times = [int(t) if v else None for t, v in zip(log.time.tolist(), log.time_valid.tolist())]
    rating = np.full(len(times), np.nan) if log.rating is None else log.rating
    ratings = [None if np.isnan(r) else float(r) for r in rating.tolist()]
    return {
        "users": users,
        "user_kind": user_kind,
        "items": items,
        "item_kind": item_kind,
        "times": times,
        "ratings": ratings,
    }


def _read(data: bytes, sep: str, kind: str, block: int, tmp: Path) -> Log:
    packed = gzip.compress(data, mtime=0) if kind.endswith("gzip") else data
    if kind.startswith("stdin"):
        return stream_log(["-"], ReadOptions(sep=sep), stdin=io.BytesIO(packed), block_size=block)
    path = tmp / ("log.csv.gz" if kind.endswith("gzip") else "log.csv")
    path.write_bytes(packed)
    return stream_log([str(path)], ReadOptions(sep=sep), block_size=block)


KINDS = st.sampled_from(["plain", "plain", "gzip", "stdin", "stdin-gzip"])
BLOCKS = st.one_of(st.integers(16, 5000), st.just(1 << 20))  # bytes; 1 MiB: the whole log in one range
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@SETTINGS
@given(quoted_logs(), KINDS, BLOCKS)
def test_quoted_logs_read_as_pandas_reads_them(tmp_path_factory, log, kind, block):
    data, sep = log
    got = _read(data, sep, kind, block, tmp_path_factory.mktemp("q"))
    assert _decoded(got) == _pandas_reference(data, sep)


@SETTINGS
@given(quoted_logs(), BLOCKS)
def test_stream_equals_in_memory_on_quoted_logs(tmp_path_factory, log, block):
    data, sep = log
    p = tmp_path_factory.mktemp("m") / "log.csv"
    p.write_bytes(data)
    assert_same_log(
        stream_log([str(p)], ReadOptions(sep=sep), block_size=block), read_log_in_memory([str(p)], ReadOptions(sep=sep))
    )


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(quoted_logs(long_row=True), KINDS, st.sampled_from([64, 200, 1024]))
def test_a_row_over_many_ranges(tmp_path_factory, log, kind, block):
    data, sep = log
    got = _read(data, sep, kind, block, tmp_path_factory.mktemp("l"))
    assert _decoded(got) == _pandas_reference(data, sep)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quoted_logs(quotes=False), st.sampled_from([64, 200, 1024]))
def test_no_quotes_no_quote_scan(tmp_path_factory, log, block):
    """A file without the quote byte is cut at plain line ends: the quote kernel never runs and every
    range is parsed without ``newlines_in_values``."""
    data, sep = log
    p = tmp_path_factory.mktemp("n") / "log.csv"
    p.write_bytes(data)
    parsed = []
    real = pacsv.read_csv

    def spy(*args, **kwargs):
        parsed.append(kwargs["parse_options"].newlines_in_values)
        return real(*args, **kwargs)

    with (
        mock.patch.object(ingest, "state_before", side_effect=AssertionError("scanned")),
        mock.patch.object(ingest.pacsv, "read_csv", spy),
    ):
        got = stream_log([str(p)], ReadOptions(sep=sep), block_size=block)
    assert parsed and not any(parsed)
    assert _decoded(got) == _pandas_reference(data, sep)


# --------------------------------------------------------------------------------------------------
# Sniffing, line numbers and the unclosed quote

REVIEW_HEAD = 'userId,"movie\nId",rating,timestamp,"text, long"\n'


def _review_rows(n: int, start: int = 0) -> str:
    """Rows whose text holds commas, doubled quotes and a line end (two lines a row)."""
    return "".join(f'{k % 7},{k % 5},4.0,{1000 + k},"a, ""good""\nfilm {k}"\n' for k in range(start, start + n))


def _cli(tmp_path: Path, kind: str, text: str, *args: str) -> tuple[int, str, Path]:
    """Build through the CLI from a plain, gzipped or stdin input -> (exit code, stderr, input name)."""
    data = text.encode()
    path = tmp_path / ("log.csv.gz" if kind == "gzip" else "log.csv")
    path.write_bytes(gzip.compress(data) if kind == "gzip" else data)
    spec = "-" if kind == "stdin" else str(path)
    r = CliRunner().invoke(
        cli,
        ["build", spec, "-o", str(tmp_path / "out"), "-q", *args],
        input=data if kind == "stdin" else None,
        catch_exceptions=False,
    )
    assert "Traceback" not in r.output
    return r.exit_code, r.stderr, path


def test_sniffing_reads_quoted_line_ends_in_the_first_lines(write):
    """Separator and header from a CSV tokenizer: quoted names and fields with line ends, separators
    and quotes in the first lines do not confuse them (and line 2 of the file is inside line 1's row)."""
    p = write("r.csv", REVIEW_HEAD + _review_rows(5))
    sep, names, header, roles = _csv_layout(str(p), ReadOptions(), p.read_bytes())
    assert (sep, names, header) == (",", ["userId", "movie\nId", "rating", "timestamp", "text, long"], True)
    assert roles == {"user": "userId", "item": "movie\nId", "time": "timestamp", "rating": "rating"}
    semi = write("s.csv", 'user;item;ts\n"a;\n1";"x""y";3\nb;c;4\n')
    res = seqprep.build(semi, None)
    assert res.meta["rows"]["read"] == 2 and res.users.ids.to_pylist() == ["a;\n1", "b"]


@pytest.mark.parametrize("kind", ["plain", "gzip", "stdin"])
@pytest.mark.parametrize("block", ["1KiB", "16MiB"])
def test_a_quote_never_closed_names_its_line(tmp_path, kind, block):
    """The field opens on line 2 * 3000 + 2 (every row above takes two lines) and runs to the end (no
    quote follows it: a later quote would close it, and the rows after it would be ragged)."""
    plain = "".join(f"{k % 7},{k % 5},4.0,{k},no quotes here\n" for k in range(3000))
    text = REVIEW_HEAD.replace('"movie\nId"', "movieId") + _review_rows(3000) + '9,9,4.0,5,"never closed\n' + plain
    code, err, path = _cli(tmp_path, kind, text, "--block-size", block)
    name = "-" if kind == "stdin" else str(path)
    assert code == 1
    assert (
        err
        == f'Error: {name}: line 6002: a quoted field starts here and is never closed; close the quote (") or pass the right --sep\n'
    )


@pytest.mark.parametrize("kind", ["plain", "gzip", "stdin"])
def test_a_quote_never_closed_in_a_short_file(tmp_path, kind):
    code, err, _ = _cli(tmp_path, kind, 'user,item,ts\n1,"a\nb",2\n3,"x,4\n')
    assert code == 1 and err.endswith(
        ': line 4: a quoted field starts here and is never closed; close the quote (") or pass the right --sep\n'
    )


BAD_ROWS = [
    (
        "9,9,4.0,soon,x\n",
        "line {n}: timestamp 'soon' is neither a number nor an ISO-8601 date; fix the row or pass --time-col with the right column",
    ),
    (
        "9,9,4.0\n",
        "line {n}: 3 fields instead of 5 (separator ','): '9,9,4.0'; fix the row (quote fields that hold the separator) or pass the right --sep",
    ),
    (
        "9,caf\xe9,4.0,5,x\n",
        "line {n}: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
    ),
    (
        "9,\x00,4.0,5,x\n",
        "line {n}: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it",
    ),
]


@pytest.mark.parametrize("kind", ["plain", "gzip", "stdin"])
@pytest.mark.parametrize(("row", "message"), BAD_ROWS, ids=["time", "ragged", "utf8", "nul"])
def test_errors_name_the_line_an_editor_shows(tmp_path, kind, row, message):
    """After rows whose quoted text holds line ends (and a blank line), a message names the bad row's
    line in the file, not its row number."""
    head = REVIEW_HEAD.replace('"movie\nId"', "movieId")
    text = head + _review_rows(3000) + "\n" + row + _review_rows(10, 3000)
    data = text.encode("latin-1")
    path = tmp_path / ("log.csv.gz" if kind == "gzip" else "log.csv")
    path.write_bytes(gzip.compress(data) if kind == "gzip" else data)
    for block in ("1KiB", "16MiB"):
        r = CliRunner().invoke(
            cli,
            ["build", "-" if kind == "stdin" else str(path), "-o", str(tmp_path / "out"), "--block-size", block],
            input=data if kind == "stdin" else None,
            catch_exceptions=False,
        )
        assert r.exit_code == 1 and "Traceback" not in r.output
        assert r.stderr.endswith(": " + message.format(n=2 + 2 * 3000 + 1) + "\n"), r.stderr


def test_in_memory_reader_names_the_same_lines(write):
    head = REVIEW_HEAD.replace('"movie\nId"', "movieId")
    p = write("t.csv", head + _review_rows(40) + "9,9,4.0,soon,x\n")
    with pytest.raises(seqprep.SeqprepError, match=r"t.csv: line 82: timestamp 'soon'"):
        read_log_in_memory([str(p)], ReadOptions())
    q = write("q.csv", head + _review_rows(40) + '9,9,4.0,5,"open\n')
    with pytest.raises(seqprep.SeqprepError, match=r"q.csv: line 82: a quoted field starts here and is never closed"):
        read_log_in_memory([str(q)], ReadOptions())


@pytest.mark.real_data
@pytest.mark.parametrize(("kind", "terminator"), [("plain", "\n"), ("gzip", "\r\n"), ("stdin", "\r\n")])
def test_real_reviews_written_by_pandas(tmp_path, kind, terminator):
    """Amazon Fashion reviews (real text: 137 with line ends, 1,069 with commas, 48 with quotes)
    written as CSV by pandas, read back at 1 KiB blocks: pandas' own rows."""
    df = pd.read_json(shared_file("amazon2018-fashion-5core/AMAZON_FASHION_5.json.gz"), lines=True)
    cols = ["reviewerID", "asin", "overall", "unixReviewTime", "reviewText", "summary", "style"]
    data = df[cols].to_csv(index=False, lineterminator=terminator).encode()
    got = _read(data, ",", kind, 1024, tmp_path)
    assert got.num_rows == len(df)
    assert _decoded(got) == _pandas_reference(data, ",")


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(quoted_logs())
def test_builds_byte_identical_to_the_in_memory_path(tmp_path_factory, monkeypatch, log):
    data, sep = log
    d = tmp_path_factory.mktemp("b")
    ncols = len(pd.read_csv(io.BytesIO(data), sep=sep, nrows=0).columns)
    (d / "log.csv").write_bytes(
        data + sep.join(["z", "z", "1", "1"] + [""] * (ncols - 4)).encode() + b"\n"
    )  # a complete row
    opts = {"formats": ("parquet", "npz"), "sep": sep}
    seqprep.build(d / "log.csv", d / "stream", block_size="1KiB", **opts)
    with monkeypatch.context() as m:
        m.setattr(
            pipeline, "read_log", lambda inputs, read, stdin=None, **_: read_log_in_memory(inputs, read, stdin=stdin)
        )
        seqprep.build(d / "log.csv", d / "memory", **opts)
    assert tree_digest(d / "stream") == tree_digest(d / "memory")


@pytest.mark.heavy
def test_many_ranges_of_many_parts(tmp_path):
    """About 20 MB of review rows at 1 MiB blocks: several ranges, each parsed in parts of a block."""
    rng = np.random.default_rng(0)
    texts = [f'"{k}, ""quoted"" text\nover {k % 5} lines\r\nand more"' for k in range(1000)]
    rows = [
        f"u{u},i{i},{r},{t},{texts[x]}\n"
        for u, i, r, t, x in rng.integers(0, [5000, 2000, 5, 10**9, 1000], (200_000, 5))
    ]
    data = ("user,item,rating,timestamp,text\n" + "".join(rows)).encode()
    parsed = []
    real = ingest.RangeReader._parse_in_parts

    def spy(self, buf, conv, infer):
        parsed.append(len(buf))
        return real(self, buf, conv, infer)

    with mock.patch.object(ingest.RangeReader, "_parse_in_parts", spy):
        got = _read(data, ",", "plain", 1 << 20, tmp_path)
    assert len(parsed) >= 2 and sum(parsed) == len(data) - len(b"user,item,rating,timestamp,text\n")
    assert _decoded(got) == _pandas_reference(data, ",")


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(quoted_logs(), KINDS, BLOCKS)
def test_a_quoted_text_column_read_beside_the_roles(tmp_path_factory, log, kind, block):
    """A text column asked for (a feature's source) holds pandas' values: separators, quotes and line
    ends inside, whichever path and block size read it."""
    data, sep = log
    df = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, na_values=NULLS, header=0)
    if df.shape[1] < 5:
        return
    name = df.columns[4]
    packed = gzip.compress(data, mtime=0) if kind.endswith("gzip") else data
    tmp = tmp_path_factory.mktemp("c")
    spec, stdin = "-", io.BytesIO(packed)
    if not kind.startswith("stdin"):
        spec, stdin = str(tmp / ("log.csv.gz" if kind.endswith("gzip") else "log.csv")), None
        Path(spec).write_bytes(packed)
    got = stream_log(
        [spec], ReadOptions(sep=sep), stdin=stdin, block_size=block, columns=(ColumnRequest(name, "text"),)
    )
    col = got.column(name)
    values = col.values.to_pylist()
    assert [None if c < 0 else values[c] for c in col.codes] == [
        None if isinstance(v, float) else v for v in df[name].astype(object)
    ]


# --------------------------------------------------------------------------------------------------
# Where ranges and parts are cut: only where a row ends


def _row_ends(data: bytes, delim: int) -> set[int]:
    """The model's row ends: the offsets just past each line end outside quotes (a CRLF once)."""
    return {b + (2 if data[b : b + 2] == b"\r\n" else 1) for b in model(data, delim)[0]}


@settings(max_examples=300, deadline=None)
@given(_bytes, st.integers(1, 30))
def test_dask_pieces_cut_only_where_rows_end(tmp_path_factory, data, step):
    """The Dask engine's CSV pieces (io.pieces: each nominal range scanned from both quoting states,
    the states chained from the file's start): every cut is a row end of the model, the pieces
    cover the file in order, and an input that ends inside quotes says where the field opened."""
    from seqprep.io.pieces import csv_pieces

    path = tmp_path_factory.mktemp("p") / "x.csv"
    path.write_bytes(data)
    _, inside, opened = model(data, ord(","))
    ends = _row_ends(data, ord(","))
    pieces, open_at = csv_pieces(0, "x.csv", str(path), len(data), ",", step)
    if len(data) > step:  # (a file of one piece is read whole, by the local reader, which reports it)
        assert open_at == (opened if inside else -1)
    assert pieces[0].start == 0 and pieces[-1].end == len(data)
    for a, b in itertools.pairwise(pieces):
        # a piece starts just past a row end, never in a field; a cut may fall between the CR and LF
        # of a CRLF (the next piece then opens with an empty line, which the parser skips)
        crlf = data[b.start - 1 : b.start + 1] == b"\r\n" and b.start + 1 in ends
        assert a.end == b.start and (b.start in ends or crlf)


@SETTINGS
@given(quoted_logs(), BLOCKS)
def test_the_range_reader_cuts_ranges_and_parts_where_rows_end(tmp_path_factory, log, block):
    """Every range the range reader reads, and every part a range with quotes is parsed in, starts
    and ends where a row of the model ends (never inside a quoted field); together they are the
    file after the header, in order (of the last read, when a column is re-read as text)."""
    data, sep = log
    p = tmp_path_factory.mktemp("r") / "log.csv"
    p.write_bytes(data)
    ranges, parts, starts = [], [], []
    real_next, real_cuts = ingest.RangeReader._next, ingest.RangeReader._part_cuts

    def spy_next(self, a, conv, infer):
        if starts and a <= starts[-1]:  # the read starts again (a column re-read as text): its ranges
            ranges.clear()
            parts.clear()
        starts.append(a)
        table, end = real_next(self, a, conv, infer)
        ranges.append((a, end))
        return table, end

    def spy_cuts(self, arr):
        got = real_cuts(self, arr)
        parts.append(got)
        return got

    with (
        mock.patch.object(ingest.RangeReader, "_next", spy_next),
        mock.patch.object(ingest.RangeReader, "_part_cuts", spy_cuts),
    ):
        got = stream_log([str(p)], ReadOptions(sep=sep), block_size=block)
    assert _decoded(got) == _pandas_reference(data, sep)
    ends = _row_ends(data, ord(sep)) | {len(data)}
    assert ranges[0][0] == min(ends) and ranges[-1][1] == len(data)  # the header row, then all of it
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(ranges))
    assert all(a in ends and b in ends for a, b in ranges)
    with_quotes = [(a, b) for a, b in ranges if b'"' in data[a:b]]
    assert len(parts) == len(with_quotes)
    for (a, b), cuts in zip(with_quotes, parts):
        assert cuts[0] == 0 and cuts[-1] == b - a and all(a + c in ends for c in cuts)


def _compressed(data: bytes, codec: str) -> bytes:
    if codec == "bz2":
        import bz2

        return bz2.compress(data)
    if codec == "xz":
        import lzma

        return lzma.compress(data)
    if codec == "zstd":
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            out.write(data)
        return sink.getvalue().to_pybytes()
    return gzip.compress(data, mtime=0) if codec == "gzip" else data


@pytest.mark.parametrize("codec", [None, "gzip", "bz2", "xz", "zstd"])
@pytest.mark.parametrize("sep", [",", "\t"])
def test_every_compression_and_a_sniffed_tsv(tmp_path, codec, sep):
    """Quoted separators, quotes and LF/CRLF/CR line ends inside fields, every codec seqprep reads,
    CSV and TSV with the separator sniffed (no --sep), 1 KiB blocks: pandas' rows, in file order."""
    rows = [f'{k % 7}{sep}{k % 5}{sep}4.0{sep}{1000 + k}{sep}"a{sep} ""good""\r\nfilm{sep}\r{k}"' for k in range(1500)]
    data = ("user" + sep + "item" + sep + "rating" + sep + "timestamp" + sep + '"a\ntext"\r\n').encode()
    data += "\r\n".join(rows).encode() + b"\n"
    ext = {None: "", "gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zstd": ".zst"}[codec]
    name = ("log.tsv" if sep == "\t" else "log.csv") + ext
    (tmp_path / name).write_bytes(_compressed(data, codec))
    got = stream_log([str(tmp_path / name)], ReadOptions(), block_size=1024)
    assert _decoded(got) == _pandas_reference(data, sep)
    assert got.num_rows == 1500
