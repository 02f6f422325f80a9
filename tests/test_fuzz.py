"""Fuzzing: generated logs must build to exactly what a plain-Python reference says (and verify);
random or mutated bytes must never raise anything but SeqprepError (API) / exit 1 with one line (CLI).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.cli import cli

NULLS = set(pacsv.ConvertOptions().null_values)  # pyarrow's CSV null markers: such ids are missing
SEPS = [",", ";", "\t", "|"]

_text = st.text(
    st.one_of(
        st.characters(categories=("L", "N", "P", "S"), exclude_characters="\x00"),
        st.sampled_from([" ", ",", ";", "|", "\t", '"', "'", "\n", "é", "日", "🙂", "-", "0"]),
    ),
    min_size=0,
    max_size=6,
)
_id = st.one_of(
    st.integers(-3, 12),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(2**63, 2**70),  # past int64: the column stays text
    st.sampled_from(["007", "7", " 7", "x", "NA", "", "null", "1e3"]),
    _text,
)
_time = st.one_of(st.integers(0, 4), st.integers(-(2**62), 2**62), st.just(""))
_row = st.tuples(_id, _id, _time)


def _write_csv(rows: list[tuple], sep: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\n")
    w.writerow(["user", "item", "ts"])
    w.writerows(rows)
    return buf.getvalue().encode()


def _clean(v: object) -> str | None:
    """An id as the reader sees it: pyarrow's null markers are missing, then spaces are trimmed."""
    s = str(v)
    if s in NULLS:
        return None
    s = s.strip(" \t\n")
    return s or None


def _reference(rows: list[tuple]) -> tuple[dict[str, list[str]], int]:
    """Per user (as text): item ids in stable time order; and the number of dropped rows."""
    kept = []
    for u, i, t in rows:
        cu, ci = _clean(u), _clean(i)
        if cu is None or ci is None or t == "":
            continue
        kept.append((cu, ci, int(t)))
    seqs: dict[str, list[tuple[int, str]]] = {}
    for u, i, t in kept:
        seqs.setdefault(u, []).append((t, i))
    return {u: [i for _, i in sorted(v, key=lambda x: x[0])] for u, v in seqs.items()}, len(rows) - len(kept)


def _decoded(out: Path) -> dict[str, list[str]]:
    ds = seqprep.load(out)
    users = ds.user_vocab.ids.to_pylist()
    return {
        str(users[u]): [str(x) for x in ds.item_vocab.decode(ds.sequence(u)).to_pylist()] for u in range(ds.num_users)
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_row, min_size=1, max_size=30),
    st.sampled_from(SEPS),
    st.booleans(),
    st.sampled_from(["frequency", "first-seen", "id"]),
)
def test_generated_logs_build_to_the_reference(rows, sep, give_sep, item_order):
    data = _write_csv(rows, sep)
    expected, dropped = _reference(rows)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "log.csv"
        path.write_bytes(data)
        kw = {"sep": sep} if give_sep else {}
        if not expected:
            try:
                seqprep.build(path, Path(d) / "out", item_order=item_order, **kw)
            except seqprep.SeqprepError:
                return
            raise AssertionError("a log without a complete row built")
        seqprep.build(path, Path(d) / "out", formats=("parquet", "npz"), item_order=item_order, **kw)
        report = seqprep.verify(Path(d) / "out")
        assert report.ok, report.problems
        assert _decoded(Path(d) / "out") == expected
        meta = json.loads((Path(d) / "out" / "meta.json").read_text())
        assert meta["rows"] == {"read": len(rows), "kept": len(rows) - dropped, "removed": dropped}


# --------------------------------------------------------------------------------------------------
# Byte-level fuzz of the reader path


def _seeds() -> list[bytes]:
    csv_ = b"userId,movieId,rating,timestamp\n1,10,4.0,100\n1,11,3.5,90\n2,10,5.0,95\n"
    parquet = io.BytesIO()
    pq.write_table(pa.table({"user": [1, 2], "item": ["a", "b"], "ts": [5, 6]}), parquet)
    return [
        csv_,
        b"1\t10\t4\t100\n1\t11\t3\t90\n",
        b"1::10::4::100\n2::11::3::90\n",
        b'{"reviewerID": "a", "asin": "x", "overall": 5.0, "unixReviewTime": 100}\n{"reviewerID": "b", "asin": "y", "overall": 4.0, "unixReviewTime": 90}\n',
        b'user,item,ts\n"a,b",2,2020-01-01\n"c",3,2020-01-02T10:00:00\n',
        parquet.getvalue(),
        gzip.compress(csv_, mtime=0),
    ]


_INTERESTING = [
    b",",
    b";",
    b"\t",
    b'"',
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"::",
    b"|",
    b" ",
    b"-",
    b"e",
    b"9" * 25,
    b"{",
    b"}",
    b":",
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    data = bytearray(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        chunk = draw(st.one_of(st.sampled_from(_INTERESTING), st.binary(min_size=1, max_size=4)))
        if kind == "insert":
            data[pos:pos] = chunk
        elif kind == "delete":
            del data[pos : pos + len(chunk)]
        elif kind == "replace":
            data[pos : pos + len(chunk)] = chunk
        else:
            del data[pos:]
    return bytes(data)


_options = st.fixed_dictionaries(
    {},
    optional={
        "sep": st.sampled_from([",", ";", "\t", "::", "|"]),
        "header": st.booleans(),
        "id_type": st.sampled_from(["auto", "int", "str"]),
        "input_format": st.sampled_from(["auto", "csv", "jsonl", "parquet"]),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated(), _options, st.sampled_from(["log.csv", "log.jsonl", "log.parquet", "log"]))
@example(data=b'"1\t10\t4\t100\n"1\t11\t3\t90\n', options={}, name="log.csv")  # a header name holding a newline
@example(data=b"\xef\xbb\xbf\t10\t", options={"id_type": "int"}, name="log.csv")  # --id-type int, no id at all
def test_random_bytes_raise_only_seqprep_errors(data, options, name):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        try:
            res = seqprep.build(path, None, **options)
        except seqprep.SeqprepError as e:
            assert "\n" not in str(e) and str(e), repr(str(e))
            return
        assert res.sequences.items.min() >= 1  # a build that succeeds is a proper one


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated(), st.sampled_from([[], ["--sep", ";"], ["--no-header"], ["--id-type", "int"]]))
def test_random_bytes_through_the_cli(data, args):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "log.csv"
        path.write_bytes(data)
        out = Path(d) / "out"
        r = CliRunner().invoke(cli, ["build", str(path), "-o", str(out), "-q", *args], catch_exceptions=False)
        assert "Traceback" not in r.output
        if r.exit_code == 0:
            assert seqprep.verify(out).ok
            return
        assert r.exit_code == 1
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
        assert sorted(p.name for p in Path(d).iterdir()) == ["log.csv"]


def test_reference_model_sanity():
    """The reference itself: ties keep input order, null markers and blanks are dropped."""
    rows = [(1, "b", 5), (1, "a", 5), (1, "c", 1), ("NA", "x", 1), (" 2 ", "y", 3), (2, "", 3)]
    assert _reference(rows) == ({"1": ["c", "b", "a"], "2": ["y"]}, 2)


# --------------------------------------------------------------------------------------------------
# Reader helpers added for robustness, against plain-Python references


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["7", " 7", "7 ", "x", " x\t", "  ", "\t", "y", " y "]), unique=True, min_size=1),
    st.data(),
)
def test_trim_ids_matches_reference(dictionary, data):
    from seqprep.io.columns import _trim_ids

    codes = np.array(data.draw(st.lists(st.integers(-1, len(dictionary) - 1), max_size=30)), dtype=np.int32)
    new_codes, new_dict = _trim_ids(codes, pa.array(dictionary))
    values = new_dict.to_pylist()
    assert len(set(values)) == len(values) and "" not in values  # distinct, no blank id
    got = [values[c] if c >= 0 else None for c in new_codes]
    want = [(dictionary[c].strip() or None) if c >= 0 else None for c in codes]
    assert got == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["2020-01-01", "2021-12-31", "2020-02-30", "2020-13-01", None]), min_size=1))
def test_first_uncastable_matches_reference(values):
    from seqprep.io.columns import first_uncastable as _first_uncastable

    def casts(v):
        try:
            pc.cast(pa.array([v], pa.string()), pa.timestamp("ns"))
            return True
        except pa.ArrowInvalid:
            return False

    bad = [k for k, v in enumerate(values) if v is not None and not casts(v)]
    assume(bad)
    assert _first_uncastable(pa.array(values, pa.string()), (pa.timestamp("ns"),)) == bad[0]
