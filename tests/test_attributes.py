"""`--item-table` / `--user-table`: attribute tables joined on the original ids, against independent
pandas computations of the same encoding (a row per item index, row 0 padding; vocabularies 1..K)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
import seqprep.stats
from seqprep.cli import cli
from tests.conftest import ROOT, shared_file

LOG = """userId,movieId,timestamp
1,1,10
1,2,11
1,3,12
2,1,13
2,4,14
2,5,15
3,1,16
3,2,17
3,6,18
3,7,19
3,8,20
4,2,21
"""

#: movieId -> (title, genres, price, kind); item 8 has no row, items 9 and 10 are not in the log.
MOVIES = {
    1: ('Toy Story, "The" (1995)', "Animation|Comedy", 3.5, "film"),
    2: ("Heat (1995)", "Action|Crime|", 2.0, "film"),
    3: ("Casino", "Crime", None, None),
    4: ("Jumanji", "", 1.5, "film"),
    5: ("Balto, Part 2", "Animation| Children", 4.0, "short"),
    6: ("Nixon", "Drama", 5.0, "film"),
    7: ("Sabrina", "Comedy|Romance", 0.5, "short"),
    9: ("Unseen 1", "Western", 1.0, "series"),
    10: ("Unseen 2", "Drama|Horror", 1.0, "film"),
}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --------------------------------------------------------------------------------------------------
# The independent reference: pandas and plain Python, no seqprep


def item_order(log: pd.DataFrame, col: str = "movieId") -> list:
    """Item ids by index 1..N: most interactions first, equal counts by ascending id."""
    return [k for k, _ in sorted(log[col].value_counts().items(), key=lambda kv: (-kv[1], kv[0]))]


def ranked(values: list) -> dict:
    """value -> index 1..K over the values of the kept items (most items first, then by value)."""
    counts = pd.Series([v for v in values if v is not None], dtype=object).value_counts()
    return {v: k + 1 for k, (v, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}


def split(text: str | None, sep: str) -> list[str]:
    return [] if text is None else [t.strip() for t in text.split(sep) if t.strip()]


def expected(ids: list, table: dict, kind: str, sep: str = "|") -> list:
    """One value per item index 0..N, row 0 padding: cat indices, num floats, tokens index lists."""
    values = [table.get(i) for i in ids]
    if kind == "num":
        return [0.0] + [math.nan if v is None else float(np.float32(v)) for v in values]
    if kind == "cat":
        index = ranked(values)
        return [0] + [0 if v is None else index[v] for v in values]
    lists = [v if isinstance(v, list) else split(v, sep) for v in values]
    index = ranked([t for toks in lists for t in toks])
    return [[]] + [[index[t] for t in toks] for toks in lists]


def same(got: list, want: list) -> bool:
    def nan(x: object) -> bool:
        return isinstance(x, float) and math.isnan(x)

    return len(got) == len(want) and all((nan(a) and nan(b)) or a == b for a, b in zip(got, want))


def column(path: Path, name: str) -> list:
    return pq.read_table(path / "item_features.parquet")[name].to_pylist()


# --------------------------------------------------------------------------------------------------
# One table, every format


def _csv(folder: Path, sep: str = ",", gz: bool = False) -> Path:
    rows = [(k, t, g, p, c) for k, (t, g, p, c) in MOVIES.items()]
    df = pd.DataFrame(rows, columns=["movieId", "title", "genres", "price", "kind"])
    name = "movies.tsv" if sep == "\t" else "movies.csv"
    p = folder / (name + (".gz" if gz else ""))
    text = df.to_csv(index=False, sep=sep)
    if gz:
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def _recbole(folder: Path) -> Path:
    lines = ["item_id:token\ttitle:token_seq\tgenres:token_seq\tprice:float\tkind:token"]
    for k, (t, g, p, c) in MOVIES.items():
        genres = " ".join(split(g, "|"))
        lines.append(f"{k}\t{t}\t{genres}\t{'' if p is None else p}\t{c or ''}")
    p = folder / "movies.item"
    p.write_text("\n".join(lines) + "\n")
    return p


def _jsonl(folder: Path) -> Path:
    lines = []
    for k, (t, g, p, c) in MOVIES.items():
        obj = {"movieId": k, "title": t, "categories": split(g, "|"), "price": p, "details": {"kind": c}}
        lines.append(json.dumps(obj))
    p = folder / "meta.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def _parquet(folder: Path) -> Path:
    keys = list(MOVIES)
    table = pa.table(
        {
            "movieId": pa.array(keys, pa.int64()),
            "categories": pa.array([split(MOVIES[k][1], "|") for k in keys], pa.list_(pa.string())),
            "price": pa.array([MOVIES[k][2] for k in keys], pa.float64()),
            "kind": pa.array([MOVIES[k][3] for k in keys], pa.string()),
        }
    )
    p = folder / "movies.parquet"
    pq.write_table(table, p)
    return p


GENRES = {k: v[1] for k, v in MOVIES.items()}
PRICES = {k: v[2] for k, v in MOVIES.items()}
KINDS = {k: v[3] for k, v in MOVIES.items()}

#: format -> (writer, --item-attr values, {attribute: (reference values, kind)})
FORMATS = {
    "csv, quoted titles": (_csv, ("genres:tokens:|", "price", "kind", "title"), {"genres": (GENRES, "tokens"), "price": (PRICES, "num"), "kind": (KINDS, "cat")}),
    "tsv": (lambda f: _csv(f, "\t"), ("genres:tokens:|", "price:num", "kind:cat"), {"genres": (GENRES, "tokens"), "price": (PRICES, "num"), "kind": (KINDS, "cat")}),
    "csv.gz": (lambda f: _csv(f, gz=True), ("genres:tokens:|", "price", "kind"), {"genres": (GENRES, "tokens"), "price": (PRICES, "num"), "kind": (KINDS, "cat")}),
    "recbole typed header": (_recbole, ("genres", "price", "kind"), {"genres": (GENRES, "tokens"), "price": (PRICES, "num"), "kind": (KINDS, "cat")}),
    "jsonl lists and nested": (_jsonl, ("categories", "price", "details.kind"), {"categories": (GENRES, "tokens"), "price": (PRICES, "num"), "details.kind": (KINDS, "cat")}),
    "parquet": (_parquet, ("categories", "price", "kind"), {"categories": (GENRES, "tokens"), "price": (PRICES, "num"), "kind": (KINDS, "cat")}),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_matches_pandas(write, tmp_path, fmt):
    writer, attrs, want = FORMATS[fmt]
    log = write("log.csv", LOG)
    table = writer(tmp_path)
    res = seqprep.build(log, tmp_path / "out", item_table=str(table), item_attrs=attrs, formats=("parquet", "npz"))
    ids = item_order(pd.read_csv(log))
    assert res.items.ids.to_pylist() == ids
    out = tmp_path / "out"
    assert column(out, "item_idx") == list(range(len(ids) + 1))
    with np.load(out / "item_features.npz") as z:
        for name, (values, kind) in want.items():
            ref = expected(ids, values, kind, sep="|")
            assert same(column(out, name), ref), (fmt, name, column(out, name), ref)
            meta = res.meta["features"][name]
            assert (meta["source"], meta["kind"], meta["rows"]) == ("item", kind, len(ids) + 1)
            if kind == "tokens":
                got = [z[name][a:b].tolist() for a, b in zip(z[f"{name}_offsets"][:-1], z[f"{name}_offsets"][1:])]
                assert got == ref
            else:
                assert same(z[name].tolist(), ref) and z[name].dtype == (np.float32 if kind == "num" else np.int32)
            if kind != "num":
                vocab = pq.read_table(out / "features" / f"{name}.parquet").to_pydict()
                assert vocab["index"] == list(range(1, meta["values"] + 1)) and meta["num_embeddings"] == meta["values"] + 1
    table_meta = res.meta["attribute_tables"]["item"]
    assert (table_meta["items_without_row"], table_meta["rows_ignored"], table_meta["rows"]) == (1, 2, 9)
    assert seqprep.verify(out).ok, seqprep.verify(out).problems


def test_recbole_typed_header_gives_kinds_and_tab_detection(tmp_path, write):
    log = write("log.csv", LOG)
    res = seqprep.build(log, item_table=str(_recbole(tmp_path)), item_attrs=("genres", "price", "kind", "title"))
    kinds = {k: v["kind"] for k, v in res.meta["features"].items()}
    assert kinds == {"genres": "tokens", "price": "num", "kind": "cat", "title": "tokens"}
    assert res.meta["features"]["genres"]["column"] == "genres:token_seq"
    assert res.meta["attribute_tables"]["item"]["key"] == "item_id:token"
    # the type can be written as the KIND too, and overridden
    res = seqprep.build(log, item_table=str(_recbole(tmp_path)), item_attrs=("title:token", "price:cat"))
    assert {k: v["kind"] for k, v in res.meta["features"].items()} == {"title": "cat", "price": "cat"}


# --------------------------------------------------------------------------------------------------
# Joining on the original id, typed as vocabulary reuse types ids


def test_text_keys_are_cast_exactly(write, tmp_path):
    log = write("log.csv", "user,item,ts\n1,17,1\n1,5,2\n2,17,3\n")
    table = write("t.csv", 'id,genre\n"17",drama\n007,noir\n5 ,comedy\n+5,x\n')
    res = seqprep.build(log, tmp_path / "o", item_table=str(table), item_key="id", item_attrs="genre")
    meta = res.meta["attribute_tables"]["item"]
    assert res.items.ids.to_pylist() == [17, 5]
    assert column(tmp_path / "o", "genre") == [0, 2, 1]  # 17 -> drama, 5 -> comedy (spaces trimmed, as for ids)
    assert (meta["keys_not_exact"], meta["rows_ignored"], meta["items_without_row"]) == (2, 2, 0)


def test_text_ids_match_text_keys_only_exactly(write, tmp_path):
    log = write("log.csv", "user,item,ts\n1,007,1\n1,x,2\n2,007,3\n")
    table = write("t.csv", "item,genre\n7,seven\n007,bond\nx,ex\n")
    res = seqprep.build(log, item_table=str(table), item_attrs="genre")
    assert res.items.ids.to_pylist() == ["007", "x"]
    f = res.attributes[0]
    assert f.vocab.decode(f.values[1:]).to_pylist() == ["bond", "ex"]
    assert res.meta["attribute_tables"]["item"]["rows_ignored"] == 1


def test_typed_keys_from_json_and_str_ids(write, tmp_path):
    log = write("log.csv", "user,item,ts\n1,1,1\n1,2,2\n")
    table = write("t.jsonl", '{"item": 1, "g": "a"}\n{"item": 2, "g": "b"}\n')
    res = seqprep.build(log, item_table=str(table), item_attrs="g", id_type="str")
    assert res.items.ids.type == pa.string() and res.attributes[0].values.tolist() == [0, 1, 2]


def test_missing_and_ignored_rows_are_counted(write, tmp_path):
    log = write("log.csv", LOG)
    table = write("t.csv", "movieId,genre\n1,a\n,b\n2,\n99,c\n3,a\n")
    res = seqprep.build(log, tmp_path / "o", item_table=str(table), item_attrs="genre", formats=("parquet",))
    meta = res.meta["attribute_tables"]["item"]
    assert meta["items"] == 8 and meta["items_with_row"] == 3 and meta["items_without_row"] == 5
    assert (meta["rows"], meta["rows_ignored"], meta["rows_without_key"], meta["keys_not_exact"]) == (5, 2, 1, 0)
    f = res.meta["features"]["genre"]
    assert (f["missing"], f["values"], f["unseen_values"]) == (6, 1, 2)  # item 2 has an empty genre; b, c only on ignored rows
    doc = seqprep.stats.describe(tmp_path / "o")["datasets"][0]["attributes"]
    assert doc["user"] is None
    assert doc["item"] == {
        "table_rows": 5, "with_row": 3, "without_row": 5, "rows_ignored": 2,
        "coverage": [{"name": "genre", "kind": "cat", "values": 1, "with_value": 2, "share": 0.25}],
    }  # fmt: skip


def test_empty_tokens_are_skipped_and_counted(write):
    log = write("log.csv", LOG)
    table = write("t.csv", "movieId,tags\n1,a||b\n2,|a|\n3,\n")
    res = seqprep.build(log, item_table=str(table), item_attrs="tags:tokens:|")
    assert res.meta["features"]["tags"]["empty_tokens"] == 3
    assert res.meta["features"]["tags"]["missing"] == 6


def test_a_tokens_column_without_any_value(write):
    """A tokens column that holds no value at all (the table's, or the log's for --feature) encodes as
    empty lists (it used to fail with an IndexError in the tokens encoder both share)."""
    log = write("log.csv", "user,item,ts,tags\n1,1,1,\n1,2,2,\n")
    table = write("t.csv", "item,tags,g\n1,,a\n2,,b\n")
    attribute = seqprep.build(log, item_table=str(table), item_attrs="tags:tokens:|").attributes[0]
    assert attribute.offsets.tolist() == [0, 0, 0, 0] and len(attribute.vocab) == 0
    feature = seqprep.build(log, features="tags:tokens:|").sequences.features[0]
    assert feature.offsets.tolist() == [0, 0, 0] and feature.missing == 2


def test_users_have_no_padding_row(write, tmp_path):
    log = write("log.csv", LOG)
    users = write("u.user", "user_id:token\tage:float\tgender:token\n1\t24\tM\n2\t53\tF\n4\t7\tF\n")
    seqprep.build(log, tmp_path / "o", user_table=str(users), user_attrs=("age", "gender"), formats=("parquet", "npz"))
    table = pq.read_table(tmp_path / "o" / "user_features.parquet").to_pydict()
    assert table["user_idx"] == [0, 1, 2, 3]
    assert same(table["age"], [24.0, 53.0, math.nan, 7.0])
    assert table["gender"] == [2, 1, 0, 1]  # F on two users, M on one
    ds = seqprep.load(tmp_path / "o")
    assert ds.user_features.num_rows == ds.num_users and ds.user_features.decode("gender", ds.user_features["gender"]).to_pylist() == ["M", "F", None, "F"]
    assert seqprep.verify(tmp_path / "o").ok


def test_oov_row_and_first_seen_order(write, tmp_path):
    old = write("old.csv", "user,item,ts\n1,1,1\n1,2,2\n2,2,3\n")
    new = write("new.csv", "user,item,ts\n1,1,1\n1,3,2\n2,2,3\n")
    table = write("t.csv", "item,g,p\n1,x,1\n2,y,2\n3,z,3\n")
    seqprep.build(old, tmp_path / "old")
    res = seqprep.build(
        new, tmp_path / "new", vocab_from=str(tmp_path / "old"), unknown="oov", item_table=str(table),
        item_attrs=("g", "p:num"), item_order="first-seen", formats=("parquet", "npz"),
    )  # fmt: skip
    assert res.meta["num_embeddings"] == 4 and res.meta["oov_idx"] == 3
    assert column(tmp_path / "new", "item_idx") == [0, 1, 2, 3]
    assert column(tmp_path / "new", "g") == [0, 1, 2, 0]  # the oov row holds no value
    assert same(column(tmp_path / "new", "p"), [0.0, 2.0, 1.0, math.nan])  # item 2 is index 1 in old
    assert seqprep.verify(tmp_path / "new").ok, seqprep.verify(tmp_path / "new").problems


def test_load_gathers_without_offset(write, tmp_path):
    log = write("log.csv", LOG)
    table = _csv(tmp_path)
    seqprep.build(log, tmp_path / "o", item_table=str(table), item_attrs=("genres:tokens:|", "kind"), split="loo", max_len=4)
    ds = seqprep.load(tmp_path / "o")
    attrs = ds.item_features
    assert sorted(attrs) == ["genres", "kind"] and "kind" in attrs and len(attrs) == 2
    padded = ds.padded(4)
    kinds = attrs["kind"][padded]  # [U, 4]: padding positions give 0
    assert (kinds[padded == 0] == 0).all() and kinds.shape == padded.shape
    genres = attrs["genres"][padded]  # [U, 4, most genres], 0-padded
    assert genres.shape[:2] == padded.shape and (genres[padded == 0] == 0).all()
    offsets, values = attrs.lists("genres")
    first = ds.items[0]
    assert attrs.decode("genres", values[offsets[first] : offsets[first + 1]]).to_pylist() == split(GENRES[ds.decode([first])[0].as_py()], "|")
    with pytest.raises(KeyError, match="no item attribute 'price'"):
        attrs["price"]


def test_byte_identical_reruns(write, tmp_path):
    log = write("log.csv", LOG)
    opts = {"item_table": str(_csv(tmp_path)), "item_attrs": ("genres:tokens:|", "price", "kind"), "formats": ("parquet", "npz"), "exports": ("recbole",)}
    seqprep.build(log, tmp_path / "a", **opts)
    seqprep.build(log, tmp_path / "b", **opts, threads=1)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [str(f) for f in files if "features" in str(f)] == ["features/genres.parquet", "features/kind.parquet", "item_features.npz", "item_features.parquet"]
    for f in files:
        if f.name not in ("meta.json", "a.inter", "a.item"):
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "a.item").read_bytes() == (tmp_path / "b" / "b.item").read_bytes()


# --------------------------------------------------------------------------------------------------
# --export recbole


def test_recbole_export_holds_the_original_values(write, tmp_path):
    log = write("log.csv", LOG)
    res = seqprep.build(log, tmp_path / "ml", item_table=str(_csv(tmp_path)), item_attrs=("genres:tokens:|", "price", "kind"), exports=("recbole",))
    lines = (tmp_path / "ml" / "ml.item").read_text().splitlines()
    assert lines[0] == "item_id:token\tgenres:token_seq\tprice:float\tkind:token"
    got = {int(line.split("\t")[0]): line.split("\t")[1:] for line in lines[1:]}
    assert list(got) == [i for i in res.items.ids.to_pylist() if i in MOVIES]  # index order; item 8 has no row
    assert got[1] == ["Animation Comedy", "3.5", "film"]
    assert got[3] == ["Crime", "", ""]  # missing values: empty fields
    assert got[5] == ["Animation Children", "4", "short"]
    assert seqprep.verify(tmp_path / "ml").ok


def test_recbole_export_writes_spaces_in_tokens_as_underscores(write, tmp_path):
    log = write("log.csv", "user,item,ts\n1,1,1\n")
    table = write("t.csv", "item,genres,kind\n1,(no genres listed)|Sci-Fi,big one\n")
    seqprep.build(log, tmp_path / "o", item_table=str(table), item_attrs=("genres:tokens:|", "kind"), exports=("recbole",))
    assert (tmp_path / "o" / "o.item").read_text().splitlines()[1] == "1\t(no_genres_listed) Sci-Fi\tbig one"


# --------------------------------------------------------------------------------------------------
# Bad input: one line, nothing written


BAD = [
    (["--item-table", "{t}", "--item-attr", "colour"], "column 'colour' (--item-attr) not found; columns are movieId, genre, price"),
    (["--item-table", "{t}", "--item-key", "id", "--item-attr", "genre"], "column 'id' (--item-key) not found; columns are movieId, genre, price"),
    (["--item-table", "{t}", "--item-attr", "price:num"], "t.csv: line 3: --item-attr price: 'x' is not a number; fix the row, or read the column as categories (price:cat)"),
    (["--item-table", "{dup}", "--item-attr", "genre"], "key 2 (column 'movieId') is on 2 rows, lines 3 and 5; an attribute table needs one row per key - remove the duplicates"),
    (["--item-table", "{t}"], "--item-table {t} needs --item-attr COL[:KIND]"),
    (["--item-attr", "genre"], "--item-attr needs --item-table FILE"),
    (["--item-key", "x"], "--item-key names the key column of --item-table FILE"),
    (["--item-table", "{t}", "--item-attr", "genre", "--feature", "genre"], "--item-attr genre: the name 'genre' is taken by --feature/--time-feature genre"),
    (["--item-table", "{t}", "--item-attr", "genre", "--user-table", "{t}", "--user-key", "movieId", "--user-attr", "genre"], "--user-attr genre: the name 'genre' is taken by --item-attr genre"),
    (["--item-table", "{t}", "--item-attr", "item_idx"], "--item-attr item_idx: 'item_idx' is a column seqprep writes already"),
    (["--item-table", "{t}", "--item-attr", "x:float_seq"], "a RecBole float_seq (a vector of numbers) has no seqprep kind"),
    (["--item-table", "-", "--item-attr", "genre"], "--item-table '-': an attribute table is read from a file"),
    (["--item-table", "{tmp}/nope.csv", "--item-attr", "genre"], "--item-table '{tmp}/nope.csv': not found; pass an attribute table file"),
    (["--item-table", "{other}", "--item-attr", "genre"], "no key of column 'movieId' matches an item of the log; the table's keys are such as 'a', 'b'"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[b[1][:40] for b in BAD])
def test_bad_input_is_one_line_and_writes_nothing(write, tmp_path, args, message):
    log = write("log.csv", LOG)
    paths = {
        "t": write("t.csv", "movieId,genre,price\n1,Comedy,1\n2,Drama,x\n"),
        "dup": write("dup.csv", "movieId,genre\n1,a\n2,b\n3,c\n2,d\n"),
        "other": write("other.csv", "movieId,genre\na,x\nb,y\n"),
        "tmp": tmp_path,
    }
    args = [a.format(**paths) for a in args]
    r = CliRunner().invoke(cli, ["build", str(log), "-o", str(tmp_path / "out"), *args])
    assert r.exit_code == 1 and message.format(**paths) in r.output, r.output
    assert r.output.count("\n") == 1 and "Traceback" not in r.output
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_overwrite_never_deletes_the_table_it_reads(write, tmp_path):
    log = write("log.csv", LOG)
    out = tmp_path / "ml"
    seqprep.build(log, out, item_table=_csv(tmp_path), item_attrs="kind", exports=("recbole",))  # a Path is fine
    r = run("build", str(log), "-o", str(out), "--overwrite", "--item-table", str(out / "ml.item"), "--item-attr", "kind")
    assert r.exit_code == 1 and f"holds the --item-table '{out / 'ml.item'}'; choose another -o" in r.output
    assert (out / "ml.item").is_file()


def test_stream_output_refuses_tables(write, tmp_path):
    log = write("log.csv", LOG)
    t = write("t.csv", "movieId,genre\n1,a\n")
    r = CliRunner().invoke(cli, ["build", str(log), "-o", "-", "--item-table", str(t), "--item-attr", "genre"])
    assert r.exit_code == 1 and "-o - has none; pass -o OUT" in r.output


# --------------------------------------------------------------------------------------------------
# verify catches damage that keeps the files' digests (rewritten, meta.json updated)


def _rewrite(folder: Path, name: str, table: pa.Table) -> None:
    from seqprep.io.sources import sha256_file

    pq.write_table(table, folder / name)
    meta = json.loads((folder / "meta.json").read_text())
    meta["outputs"]["files"][name] = {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
    (folder / "meta.json").write_text(json.dumps(meta))


def test_verify_checks_padding_range_and_vocabularies(write, tmp_path):
    log = write("log.csv", LOG)
    out = tmp_path / "o"
    seqprep.build(log, out, item_table=str(_csv(tmp_path)), item_attrs=("genres:tokens:|", "kind"))
    good = pq.read_table(out / "item_features.parquet")
    kind = good["kind"].to_numpy().copy()
    kind[0] = 1
    _rewrite(out, "item_features.parquet", good.set_column(2, "kind", pa.array(kind, pa.int32())))
    assert any("kind: the padding row 0 holds a value" in p for p in seqprep.verify(out).problems)
    kind[0] = 0
    kind[1] = 99
    _rewrite(out, "item_features.parquet", good.set_column(2, "kind", pa.array(kind, pa.int32())))
    assert any("kind holds indices outside 0..2" in p for p in seqprep.verify(out).problems)
    _rewrite(out, "item_features.parquet", good.slice(0, 5))
    assert any("has 5 rows, meta.json num_embeddings" in p for p in seqprep.verify(out).problems)
    _rewrite(out, "item_features.parquet", good)
    vocab = pq.read_table(out / "features" / "genres.parquet")
    counts = vocab["count"].to_numpy().copy()
    counts[0] += 1
    _rewrite(out, "features/genres.parquet", vocab.set_column(2, "count", pa.array(counts, pa.int64())))
    assert any("features/genres.parquet: index 1 occurs" in p for p in seqprep.verify(out).problems)


# --------------------------------------------------------------------------------------------------
# Random tables against a pandas join and encoding


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    log=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 12), st.integers(0, 9)), min_size=1, max_size=30),
    table=st.dictionaries(
        st.integers(1, 15),
        st.tuples(st.one_of(st.none(), st.sampled_from(["x", "y", "z", "007", "7"])), st.lists(st.sampled_from(["a", "b", "c", " "]), max_size=3)),
        max_size=15,
    ),
    order=st.sampled_from(["frequency", "id"]),
)
def test_random_tables_match_pandas(tmp_path_factory, log, table, order):
    folder = tmp_path_factory.mktemp("t")
    (folder / "log.csv").write_text("user,item,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in log))
    rows = [(k, "" if c is None else c, "|".join(tags)) for k, (c, tags) in table.items()]
    (folder / "t.csv").write_text("item,kind,tags\n" + "".join(f"{k},{c},{g}\n" for k, c, g in rows))
    df = pd.read_csv(folder / "log.csv")
    counts = df["item"].value_counts()
    ids = [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]) if order == "frequency" else kv[0])]
    if not set(ids) & set(table):
        with pytest.raises(seqprep.InputError, match="no key of column 'item' matches|holds no rows"):
            seqprep.build(folder / "log.csv", item_table=str(folder / "t.csv"), item_attrs=("kind:cat", "tags:tokens:|"), item_order=order)
        return
    res = seqprep.build(folder / "log.csv", item_table=str(folder / "t.csv"), item_attrs=("kind:cat", "tags:tokens:|"), item_order=order)
    kinds = {k: c for k, (c, _) in table.items()}
    tags = {k: "|".join(g) for k, (_, g) in table.items()}

    def rank(values: list) -> dict:
        c = pd.Series([v for v in values if v is not None], dtype=object).value_counts()
        key = (lambda kv: (-kv[1], kv[0])) if order == "frequency" else (lambda kv: kv[0])
        return {v: k + 1 for k, (v, _) in enumerate(sorted(c.items(), key=key))}

    kv = [kinds.get(i) for i in ids]
    kind_index = rank(kv)
    cat, tok = res.attributes
    assert cat.values.tolist() == [0] + [0 if v is None else kind_index[v] for v in kv]
    lists = [split(tags.get(i), "|") for i in ids]
    tag_index = rank([t for toks in lists for t in toks])
    got = [tok.values[a:b].tolist() for a, b in zip(tok.offsets[:-1], tok.offsets[1:])]
    assert got == [[]] + [[tag_index[t] for t in toks] for toks in lists]
    meta = res.meta["attribute_tables"]["item"]
    assert meta["items_without_row"] == len(set(ids) - set(table))
    assert meta["rows_ignored"] == len(set(table) - set(ids))


# --------------------------------------------------------------------------------------------------
# Real data (../shared/data; skipped cleanly without it)


@pytest.mark.real_data
def test_ml_latest_small_genres(tmp_path):
    ratings, movies = shared_file("ml-latest-small/ratings.csv"), shared_file("ml-latest-small/movies.csv")
    res = seqprep.build(ratings, tmp_path / "o", item_table=str(movies), item_attrs=("genres:tokens:|", "title"), formats=("parquet", "npz"))
    meta = res.meta
    assert meta["features"]["genres"]["values"] == 20
    vocab = pq.read_table(tmp_path / "o" / "features" / "genres.parquet").to_pydict()
    assert "(no genres listed)" in vocab["value"]
    df = pd.read_csv(movies)  # quoted titles with commas
    ids = item_order(pd.read_csv(ratings))
    by_id = dict(zip(df["movieId"], df["genres"]))
    assert same(column(tmp_path / "o", "genres"), expected(ids, by_id, "tokens", "|"))
    titles = dict(zip(df["movieId"], df["title"]))
    assert column(tmp_path / "o", "title") == expected(ids, titles, "cat")
    table = meta["attribute_tables"]["item"]
    assert (table["rows"], table["items_without_row"], table["rows_ignored"]) == (9742, 0, 9742 - 9724)
    assert seqprep.verify(tmp_path / "o").ok


@pytest.mark.real_data
def test_recbole_ml_100k_item_and_user(tmp_path):
    inter = shared_file("ml-100k-recbole/ml-100k.inter")
    item, user = shared_file("ml-100k-recbole/ml-100k.item"), shared_file("ml-100k-recbole/ml-100k.user")
    res = seqprep.build(
        inter, tmp_path / "ml-100k", item_table=str(item), item_attrs=("class", "release_year"),
        user_table=str(user), user_attrs=("age", "gender", "occupation", "zip_code"), exports=("recbole",),
    )  # fmt: skip
    kinds = {k: v["kind"] for k, v in res.meta["features"].items()}
    assert kinds == {"class": "tokens", "release_year": "cat", "age": "cat", "gender": "cat", "occupation": "cat", "zip_code": "cat"}
    items = pd.read_csv(item, sep="\t", dtype=str)
    ids = item_order(pd.read_csv(inter, sep="\t").rename(columns={"item_id:token": "movieId"}))
    classes = dict(zip(items["item_id:token"].astype(int), items["class:token_seq"]))
    assert column(tmp_path / "ml-100k", "class") == expected(ids, classes, "tokens", " ")
    years = dict(zip(items["item_id:token"].astype(int), items["release_year:token"]))
    assert column(tmp_path / "ml-100k", "release_year") == expected(ids, years, "cat")
    users = pd.read_csv(user, sep="\t", dtype=str)
    user_ids = res.users.ids.to_pylist()
    occupations = dict(zip(users["user_id:token"].astype(int), users["occupation:token"]))
    got = pq.read_table(tmp_path / "ml-100k" / "user_features.parquet")["occupation"].to_pylist()
    assert got == expected(user_ids, occupations, "cat")[1:]  # users: no padding row
    # RecBole loads the exported files as-is: the same rows as the originals (requested columns)
    exported = (tmp_path / "ml-100k" / "ml-100k.user").read_text().splitlines()
    assert sorted(exported[1:]) == sorted(Path(user).read_text().splitlines()[1:])
    exported_items = pd.read_csv(tmp_path / "ml-100k" / "ml-100k.item", sep="\t", dtype=str)
    assert list(exported_items.columns) == ["item_id:token", "class:token_seq", "release_year:token"]
    want = items[["item_id:token", "class:token_seq", "release_year:token"]].sort_values("item_id:token").reset_index(drop=True)
    assert exported_items.sort_values("item_id:token").reset_index(drop=True).equals(want)
    assert seqprep.verify(tmp_path / "ml-100k").ok


# --------------------------------------------------------------------------------------------------
# Docs


def test_meta_and_stats_keys_are_documented(write, tmp_path):
    import re

    log = write("log.csv", LOG)
    res = seqprep.build(log, tmp_path / "o", item_table=str(_csv(tmp_path)), item_attrs=("genres:tokens:|", "price"), user_table=str(write("u.csv", "userId,age\n1,3\n")), user_attrs="age")
    outputs = set(re.findall(r"`(\w+)`", (ROOT / "docs" / "outputs.md").read_text()))
    used = set(res.meta["attribute_tables"]["item"]) | set(res.meta["attribute_tables"]["user"]) | {"attribute_tables"}
    for entry in res.meta["features"].values():
        used |= set(entry)
    assert not sorted(used - outputs), f"docs/outputs.md does not document {sorted(used - outputs)}"
    doc = seqprep.stats.describe(tmp_path / "o")["datasets"][0]
    keys = {"attributes"} | set(doc["attributes"]["item"]) | set(doc["attributes"]["item"]["coverage"][0])
    stats_md = (ROOT / "docs" / "stats.md").read_text()
    assert not sorted(k for k in keys if f'"{k}"' not in stats_md)
