"""Every option the Dask engine runs gives the local engine's bytes: a table of option combinations,
each built locally and on a LocalCluster (2 workers), every output file compared byte for byte.

The only files that legitimately differ: meta.json's ``engine`` record and file list (compared with
them left out), and sequences.parquet, which the Dask engine writes as ``sequences/part-NNNNN.parquet``
(compared row for row: the parts concatenated are the local table). The ``-o -`` stream is compared
byte for byte (JSON Lines) or batch for batch with its metadata (Arrow: the metadata holds meta.json).
Small ``block_bytes`` / ``part_rows`` force several read pieces and output parts.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import seqprep
from seqprep.output.stream import read_meta

distributed = pytest.importorskip("distributed")

SMALL = {"block_bytes": 2048, "part_rows": 500}




def _log(seed: int, n: int = 1500) -> str:
    rng = random.Random(seed)
    lines = ["userId,movieId,rating,timestamp"]
    for _ in range(n):
        u, i = rng.randint(1, 60), rng.randint(1, 120)
        lines.append(
            f"{'u' if u % 3 else '00'}{u},{i if i % 4 else f'0{i}'},{rng.randint(1, 10) / 2},{rng.randint(0, 40)}"
        )
    return "\n".join(lines) + "\n"


def _comparable(meta: dict) -> dict:
    m = json.loads(json.dumps(meta))
    m.pop("engine", None)
    m.pop("outputs", None)
    m["options"].pop("engine", None)
    m["options"].pop("output", None)
    return m


def _sequences(folder: Path) -> pa.Table:
    if (folder / "sequences.parquet").is_file():
        return pq.read_table(folder / "sequences.parquet")
    parts = sorted((folder / "sequences").glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def _ipc(table: pa.Table) -> bytes:
    """A table's Arrow IPC bytes, its chunks combined: equal tables give equal bytes (NaN included,
    where ``Table.equals`` says NaN != NaN)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return sink.getvalue().to_pybytes()


def assert_same_folders(local: Path, dask: Path) -> None:
    """Every file byte-identical but meta.json (comparable) and sequences (row for row)."""
    names = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    dnames = {p.relative_to(dask).as_posix() for p in dask.rglob("*") if p.is_file()}
    plain = {n for n in names if n not in ("meta.json", "sequences.parquet")}
    assert plain == {
        n for n in dnames if n not in ("meta.json", "sequences.parquet") and not n.startswith("sequences/")
    }
    for name in sorted(plain):
        assert (local / name).read_bytes() == (dask / name).read_bytes(), name
    if "sequences.parquet" in names:
        assert _ipc(_sequences(local)) == _ipc(_sequences(dask))
    a, b = json.loads((local / "meta.json").read_text()), json.loads((dask / "meta.json").read_text())
    assert _comparable(a) == _comparable(b)
    assert a["outputs"]["exports"] == b["outputs"]["exports"]


CASES = {
    "export_all": dict(exports=("sasrec", "seqlines", "recbole")),
    "export_npz_kcore": dict(
        exports=("sasrec", "recbole"), formats=("parquet", "npz"), min_user_count=5, min_item_count=3
    ),
    "export_first_seen_dedup": dict(
        exports=("seqlines",), user_order="first-seen", item_order="first-seen", dedup="first"
    ),
    "export_window_rating": dict(exports=("recbole",), since=5, until=35, min_rating=2.0, item_order="id"),
    "export_sessions": dict(exports=("sasrec",), session_gap=3),
    "export_split": dict(exports=("sasrec", "seqlines"), split="loo"),
    "loo_negatives_popularity": dict(
        split="loo", eval_negatives=3, negatives="popularity", max_len=4, formats=("parquet", "npz")
    ),
    "loo_truncate_export": dict(
        split="loo", max_len=3, truncate=True, exports=("sasrec", "recbole"), formats=("parquet", "npz")
    ),
    "time_quantiles_windows": dict(split="time:0.6,0.8", windows="3:1", eval_negatives=2, formats=("parquet", "npz")),
    "time_bounds_sessions_kcore": dict(split="time", valid_from=20, test_from=30, session_gap=4, min_user_count=5),
    "users_split_dedup": dict(split="users:0.6,0.2,0.2", seed=4, eval_negatives=3, dedup="last", min_item_count=3),
    "pad_only_npz": dict(max_len=5, pad="right", formats=("npz",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_folder_outputs_match_local_byte_for_byte(case, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_log(len(case)))
    options = CASES[case]
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"  # one name: recbole's file is named after it
    seqprep.build(path, local, **options)
    res = seqprep.build(path, dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert res.meta["engine"]["name"] == "dask"
    # written from the parts, never gathered on the client
    assert res.meta["engine"]["output_parts"] > 1 and res.meta["engine"]["input_partitions"] > 1
    assert "gathered_on_client" not in res.meta["engine"]
    assert_same_folders(local, dask)


STREAMS = {
    "jsonl": dict(to="jsonl"),
    "jsonl_kcore_sessions": dict(to="jsonl", min_user_count=4, session_gap=5),
    "arrow": dict(),
    "arrow_first_seen": dict(to="arrow", user_order="first-seen", dedup="exact"),
    "arrow_split": dict(split="loo"),
    "jsonl_truncate": dict(to="jsonl", split="loo", max_len=3, truncate=True),
}


@pytest.mark.parametrize("case", list(STREAMS))
def test_stdout_stream_matches_local(case, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_log(3 + len(case)))
    options = STREAMS[case]
    a, b = io.BytesIO(), io.BytesIO()
    seqprep.build(path, "-", stdout=a, **options)
    seqprep.build(path, "-", stdout=b, engine="dask", scheduler=scheduler, **SMALL, **options)
    if options.get("to") == "jsonl":
        assert a.getvalue() == b.getvalue() and a.getvalue()
        return
    ra, rb = pa.ipc.open_stream(a.getvalue()), pa.ipc.open_stream(b.getvalue())
    assert ra.schema.remove_metadata() == rb.schema.remove_metadata()
    assert _comparable(read_meta(ra.schema)) == _comparable(read_meta(rb.schema))
    batches_a, batches_b = list(ra), list(rb)
    assert [x.num_rows for x in batches_a] == [x.num_rows for x in batches_b]
    assert all(x.equals(y) for x, y in zip(batches_a, batches_b))


def test_stream_batches_span_parts(tmp_path, scheduler):
    """More users than one record batch, over many parts: batches of 8192 users whatever the parts."""
    rows = (
        ["user,item,ts"]
        + [f"{u},{u % 7 + 1},{u}" for u in range(9000)]
        + [f"{u},{u % 5 + 1},{u + 1}" for u in range(0, 9000, 3)]
    )
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n")
    a, b = io.BytesIO(), io.BytesIO()
    seqprep.build(path, "-", stdout=a, to="jsonl")
    res = seqprep.build(
        path, "-", stdout=b, to="jsonl", engine="dask", scheduler=scheduler, block_bytes=4096, part_rows=1000
    )
    assert res.meta["engine"]["output_parts"] > 5
    assert a.getvalue() == b.getvalue()
    a, b = io.BytesIO(), io.BytesIO()
    seqprep.build(path, "-", stdout=a)
    seqprep.build(path, "-", stdout=b, engine="dask", scheduler=scheduler, block_bytes=4096, part_rows=1000)
    ba, bb = list(pa.ipc.open_stream(a.getvalue())), list(pa.ipc.open_stream(b.getvalue()))
    assert [x.num_rows for x in ba] == [8192, 808] == [x.num_rows for x in bb]
    assert all(x.equals(y) for x, y in zip(ba, bb))


@pytest.mark.parametrize(
    "text",
    [
        'user,item,ts\n1,a,5\n2,"b\n3,c,7\n',  # a quote never closed
        "user,item,ts\n"
        + "".join(f"{k},i{k},{k}\n" for k in range(400))
        + "7,x\n"
        + "".join(f"{k},j,{k}\n" for k in range(50)),
        "user,item,ts\n" + "".join(f"{k},i{k},{k}\n" for k in range(400)) + "7,x,notatime\n",
    ],
)
def test_read_errors_are_the_local_ones(text, tmp_path, scheduler):
    """A malformed row in a later piece: the local reader's message, naming the file's line."""
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(seqprep.SeqprepError) as local:
        seqprep.build(path, tmp_path / "l")
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(path, tmp_path / "d", engine="dask", scheduler=scheduler, block_bytes=1024)
    assert str(dask.value) == str(local.value)
    assert not (tmp_path / "d").exists()


REUSE = {
    "drop": dict(),
    "drop_kcore_first_seen": dict(min_item_count=3, user_order="first-seen"),
    "oov_export": dict(unknown="oov", exports=("recbole", "sasrec")),
    "oov_filtered": dict(unknown="oov", dedup="first", min_user_count=30, split="loo"),
    "extend_first_seen_split": dict(extend=True, item_order="first-seen", user_order="first-seen", split="loo"),
    "extend_frequency_window": dict(extend=True, since=5, until=38),
}


@pytest.mark.parametrize("case", list(REUSE))
def test_vocab_from_matches_local(case, tmp_path, scheduler):
    """--vocab-from: the reference (a small vocabulary) is read on the client; the unknown items are
    found from the rows per item code; the new users and items are appended by the local step."""
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text(_log(11, n=600))
    new.write_text(_log(12))  # more users and items than old: unseen ones
    seqprep.build(old, tmp_path / "ref")
    options = dict(REUSE[case], vocab_from=str(tmp_path / "ref"))
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    seqprep.build(new, local, **options)
    res = seqprep.build(new, dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert res.meta["vocab_reuse"]["unseen_items"] > 0
    assert_same_folders(local, dask)
    report = seqprep.verify(dask)
    assert report.ok, report.problems
    if case == "oov_filtered":  # the filters removed some of the unseen rows: meta says how many are left
        v = res.meta["vocab_reuse"]
        assert 0 < v["oov_interactions"] < v["unseen_rows"]


def test_vocab_from_unknown_error_names_the_same_items(tmp_path, scheduler):
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text(_log(11, n=600))
    new.write_text(_log(12))
    seqprep.build(old, tmp_path / "ref")
    with pytest.raises(seqprep.SeqprepError) as local:
        seqprep.build(new, tmp_path / "l", vocab_from=str(tmp_path / "ref"), unknown="error")
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(
            new,
            tmp_path / "d",
            vocab_from=str(tmp_path / "ref"),
            unknown="error",
            engine="dask",
            scheduler=scheduler,
            **SMALL,
        )
    assert str(dask.value) == str(local.value) and "e.g." in str(local.value)


def _short_negatives_log() -> str:
    """60 users on 8 items, users of the later parts seeing almost every item: with
    ``--negatives popularity --eval-negatives 2`` some users have fewer than 2 items to draw from,
    the first of them not in the first part."""
    rng = random.Random(7)
    lines, t = ["user,item,ts"], 0
    for u in range(60):
        items = rng.sample(range(1, 9), 7 if u >= 35 and u % 5 == 0 else 3)
        for i in items:
            t += 1
            lines.append(f"u{u:02d},i{i},{t}")
    return "\n".join(lines) + "\n"


def test_short_negatives_error_is_the_local_one(tmp_path, scheduler, monkeypatch):
    """A user who cannot get its negatives: the one-line error of the local build (exit 1, the same
    user_idx), nothing written, on the local engine, under --memory-limit (many user ranges) and on
    --engine dask (many parts)."""
    from click.testing import CliRunner

    import seqprep.steps.splits as splits
    from seqprep.cli import cli
    from seqprep.kernels.sequences import sequence_parts

    monkeypatch.setattr(splits, "sequence_parts", lambda offsets: sequence_parts(offsets, per_part=11))  # many ranges
    path = tmp_path / "log.csv"
    path.write_text(_short_negatives_log())
    common = ["--split", "loo", "--eval-negatives", "2", "--negatives", "popularity", "--max-len", "3"]
    engines = {
        "local": [],
        "memory_limit": ["--memory-limit", "1", "--block-size", "1KiB"],
        "dask": ["--engine", "dask", "--scheduler", scheduler, "--part-rows", "20"],
    }
    errors = {}
    for name, extra in engines.items():
        out = tmp_path / name
        r = CliRunner().invoke(cli, ["build", str(path), "-o", str(out), *common, *extra])
        assert r.exit_code == 1, (name, r.output)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: user_idx "), (name, r.stderr)
        assert "Traceback" not in r.output
        assert not out.exists()
        errors[name] = r.stderr
    assert errors["memory_limit"] == errors["local"]
    assert errors["dask"] == errors["local"]


def _rich_log(seed: int, n: int = 1500, base: int = 0, step: int = 1) -> str:
    """A log with other columns: an event type (some missing), a price (numbers, some missing) and a
    genre (text, some missing); timestamps ``base + step * k``."""
    rng = random.Random(seed)
    lines = ["userId,movieId,rating,timestamp,event,price,genre"]
    for _ in range(n):
        u, i = rng.randint(1, 60), rng.randint(1, 120)
        event = rng.choice(["view", "view", "cart", "buy", ""])
        price = rng.choice(["", "0", "1.5", "3", "10"])
        genre = rng.choice(["a", "b", "c", "", f"g{i % 7}"])
        t = base + step * rng.randint(0, 40)
        lines.append(f"{'u' if u % 3 else '00'}{u},{i if i % 4 else f'0{i}'},{rng.randint(1, 10) / 2},{t},{event},{price},{genre}")
    return "\n".join(lines) + "\n"


EPOCH = {"base": 1_500_000_000, "step": 4_000}  # epoch seconds: hour and weekday apply

OPTIONS = {
    # --where: a row mask per partition right after the missing values (issue 16)
    "where_number": dict(where=("price > 0",), min_user_count=3),
    "where_text_null_kcore": dict(where=("event != 'view' or genre is null", "rating >= 1"), min_item_count=3, dedup="first"),
    "where_roles_reuse_export": dict(where=("movieId in [3, 5, 7, 11] or movieId > 60 or userId == 'u1'",), exports=("recbole",)),
    # --event-col / --target-events: the event feature and the targets of the split, windows, negatives
    "events": dict(event_col="event", exports=("recbole",), formats=("parquet", "npz")),
    "events_targets_loo": dict(event_col="event", target_events=("buy", "cart"), split="loo", eval_negatives=2, max_len=4, formats=("parquet", "npz")),
    "events_kcore_on_target": dict(event_col="event", target_events=("buy", "cart"), kcore_on="target", min_user_count=6, min_item_count=4, dedup="first"),
    "events_targets_windows": dict(event_col="event", target_events=("buy",), split="time:0.6,0.8", windows="3:1", where=("price >= 0",)),
    # --feature cat/num: columns that travel through the shuffle; vocabularies from count tables
    "features_first_seen_export": dict(features=("genre", "price:num", "userId:cat"), item_order="first-seen", exports=("recbole", "sasrec")),
    "features_id_split_truncate": dict(features=("genre:cat", "price"), item_order="id", split="loo", max_len=3, truncate=True, formats=("parquet", "npz")),
    # --item-order sequence (the presets'): feature values first-seen, time features by the written sequences
    "features_events_sequence_order": dict(features=("genre",), event_col="event", time_features=("delta-log2",), item_order="sequence", split="loo"),
    # --time-feature: derived per output part (users are whole), vocabularies from the parts' counts
    "time_features_sessions": dict(time_features=("delta", "delta-log2", "interval:4"), session_gap=3, formats=("npz", "parquet")),
    "time_features_hour_users_split": dict(time_features=("hour", "weekday"), features=("genre",), split="users:0.6,0.2,0.2", eval_negatives=2, log=EPOCH),
    # --item-table / --user-table: joined onto the vocabularies on the client
    "attribute_tables_export": dict(tables=True, item_attrs=("kind", "tags:tokens:|", "weight"), user_attrs=("age",), formats=("parquet", "npz"), exports=("recbole",)),
}


def _tables(folder: Path) -> dict[str, str]:
    """An item table (some items missing, some not in the log, quoted text) and a user table."""
    items = ["movieId,kind,tags,weight"] + [f'{i},"k{i % 3}, x",t{i % 4}|t{i % 5},{i / 4}' for i in range(1, 130, 2)]
    users = ["userId,age"] + [f"u{u},{20 + u % 7}" for u in range(1, 61) if u % 3]
    (folder / "items.csv").write_text("\n".join(items) + "\n")
    (folder / "users.csv").write_text("\n".join(users) + "\n")
    return dict(item_table=str(folder / "items.csv"), item_key="movieId", user_table=str(folder / "users.csv"), user_key="userId")


def _dask_matches_local(path: Path, tmp_path: Path, scheduler: str, options: dict) -> tuple[Path, Path]:
    """Build ``options`` locally and on Dask (several read pieces and output parts): every output
    byte the same. Returns the two folders."""
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    seqprep.build(path, local, **options)
    res = seqprep.build(path, dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert res.meta["engine"]["output_parts"] > 1 and res.meta["engine"]["input_partitions"] > 1
    assert_same_folders(local, dask)
    return local, dask


def _session_log(seed: int, n: int = 1500) -> str:
    """A Diginetica-shaped log: ``;``-separated, sessions with a user or ``NA``, some sessions with
    several users, the time as a date plus an offset in ms."""
    rng = random.Random(seed)
    lines = ["session_id;user_id;item_id;timeframe;eventdate;event"]
    for _ in range(n):
        s = rng.randint(1, 80)
        user = "NA" if s % 4 == 0 else str(s % 23 if rng.random() > 0.1 else s % 7)
        lines.append(f"{s};{user};{rng.randint(1, 90)};{rng.randint(0, 5) * 1000};2016-05-{rng.randint(1, 9):02d};{rng.choice(['view', 'buy'])}")
    return "\n".join(lines) + "\n"


SESSIONS = {
    "session_col": dict(session_col="session_id", time_col="eventdate", formats=("parquet", "npz")),
    "session_time_cols_where_split": dict(
        session_col="session_id", time_col="eventdate,timeframe", where=("user_id is not null",), split="loo", exports=("sasrec",)
    ),
    # the presets' rules: one-sided k-core passes, users by date, items by first appearance in the sequences
    "passes_date_sequence": dict(
        session_col="session_id", time_col="eventdate,timeframe", kcore_passes="user,item,user", min_user_count=15, min_item_count=14,
        user_order="date", item_order="sequence", formats=("parquet", "npz"), exports=("recbole",),
    ),
    "days_split_npz": dict(session_col="session_id", time_col="eventdate,timeframe", split="days:3", formats=("parquet", "npz"), max_len=4),
    "days_split_sequence_order_where": dict(user_col="session_id", time_col="eventdate", split="days:2", item_order="sequence", where=("event == 'view'",), exports=("sasrec",)),
    "date_first_seen_where_loo": dict(user_col="session_id", time_col="eventdate", user_order="date", item_order="first-seen", where=("event == 'view'",), split="loo"),
    "time_cols_events_features": dict(user_col="session_id", time_col="eventdate,timeframe", event_col="event", time_features=("weekday",), min_item_count=3),
}


@pytest.mark.parametrize("case", list(SESSIONS))
def test_session_keys_match_local_byte_for_byte(case, tmp_path, scheduler):
    """--session-col and --time-col BASE,OFFSET: the local read plan finishes each partition."""
    path = tmp_path / "log.csv"
    path.write_text(_session_log(len(case)))
    options = SESSIONS[case]
    _dask_matches_local(path, tmp_path, scheduler, options)


def test_bad_time_offset_is_the_local_error(tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_session_log(3, n=400) + "7;1;5;1.5;2016-05-01;view\n")
    options = dict(session_col="session_id", time_col="eventdate,timeframe")
    with pytest.raises(seqprep.SeqprepError) as local:
        seqprep.build(path, tmp_path / "l", **options)
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(path, tmp_path / "d", engine="dask", scheduler=scheduler, **SMALL, **options)
    assert str(dask.value) == str(local.value) and "row 401" in str(local.value)


@pytest.mark.parametrize("case", list(OPTIONS))
def test_options_match_local_byte_for_byte(case, tmp_path, scheduler):
    """Each option of the local engine that the Dask engine runs: every output file the same."""
    options = dict(OPTIONS[case])
    path = tmp_path / "log.csv"
    path.write_text(_rich_log(len(case), **options.pop("log", {})))
    if options.pop("tables", False):
        options.update(_tables(tmp_path))
    _dask_matches_local(path, tmp_path, scheduler, options)


STREAMED_OPTIONS = {
    "jsonl_features_events": dict(to="jsonl", features=("genre", "price"), event_col="event", where=("genre != 'a'",)),
    "arrow_time_features_split": dict(features=("genre",), time_features=("delta",), split="loo"),
}


@pytest.mark.parametrize("case", list(STREAMED_OPTIONS))
def test_option_streams_match_local(case, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_rich_log(5 + len(case)))
    options = STREAMED_OPTIONS[case]
    a, b = io.BytesIO(), io.BytesIO()
    seqprep.build(path, "-", stdout=a, **options)
    seqprep.build(path, "-", stdout=b, engine="dask", scheduler=scheduler, **SMALL, **options)
    if options.get("to") == "jsonl":
        assert a.getvalue() == b.getvalue() and b'"genre"' in a.getvalue()
        return
    ra, rb = pa.ipc.open_stream(a.getvalue()), pa.ipc.open_stream(b.getvalue())
    assert ra.schema.remove_metadata() == rb.schema.remove_metadata()
    assert _comparable(read_meta(ra.schema)) == _comparable(read_meta(rb.schema))
    assert _ipc(ra.read_all().replace_schema_metadata()) == _ipc(rb.read_all().replace_schema_metadata())


@pytest.mark.parametrize(
    "options",
    [
        dict(where=("price > 1000",)),  # no row left
        dict(where=("genre > 3",)),  # text compared with a number
        dict(where=("nosuch == 1",)),  # an unknown column
        dict(event_col="event", target_events=("purchase",)),  # no such event
        dict(features=("genre:num",)),  # text as numbers
        dict(time_features=("hour",)),  # raw timestamps that are not epoch seconds
    ],
)
def test_option_errors_are_the_local_ones(options, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_rich_log(9, n=400))
    with pytest.raises(seqprep.SeqprepError) as local:
        seqprep.build(path, tmp_path / "l", **options)
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(path, tmp_path / "d", engine="dask", scheduler=scheduler, **SMALL, **options)
    assert str(dask.value) == str(local.value)
    assert not (tmp_path / "d").exists()


# The per-user split rules of issue 16 (RecBole's leave-one-out, Caser's 70/10/20), decided per part
PER_USER_SPLITS = {
    "loo_recbole_negatives_exports": dict(split="loo:recbole", eval_negatives=3, max_len=4, exports=("sasrec", "recbole"), formats=("parquet", "npz")),
    "ratio_windows_popularity": dict(split="ratio:0.7,0.1,0.2", windows="3:2", eval_negatives=2, negatives="popularity", max_len=3, formats=("parquet", "npz")),
    "ratio_no_valid_truncate": dict(split="ratio:0.8,0,0.2", max_len=2, truncate=True, exports=("seqlines",), min_user_count=4),
    "ratio_events_sequence_order": dict(split="ratio:0.5,0.25,0.25", event_col="event", target_events=("buy", "cart"), item_order="sequence", windows="2:1"),
}


@pytest.mark.parametrize("case", list(PER_USER_SPLITS))
def test_per_user_splits_match_local_byte_for_byte(case, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_rich_log(len(case)))
    options = PER_USER_SPLITS[case]
    local, dask = _dask_matches_local(path, tmp_path, scheduler, options)
    # meta.json records the split files as finished (their sizes and hashes), and verify re-derives the split
    for folder in (local, dask):
        report = seqprep.verify(folder)
        assert report.ok, report.problems
    assert "re-derived" in report.to_dict()["checked"]["split"] or "not re-derived (--target-events" in report.to_dict()["checked"]["split"]


# --- --vocab-from-train: one range-based fit (steps.train_fit) on every engine ---------------------


def _train_log(seed: int, n: int = 1500, day: int = 1, base: int = 0, tags: bool = False) -> str:
    """A log where held-out rows often hold items (and feature values) no training row holds: many
    items, rare genres, timestamps ``base + day * k`` (``day=20000``: the rows span days, for
    ``days:N``); with ``tags`` a ``|``-separated token column (rare tokens, empty and missing ones)."""
    rng = random.Random(seed)
    lines = ["userId,movieId,rating,timestamp,event,price,genre" + (",tags" if tags else "")]
    for _ in range(n):
        u, i = rng.randint(1, 50), rng.randint(1, 900)
        event = rng.choice(["view", "view", "cart", "buy", ""])
        price = rng.choice(["", "0", "1.5", "3", "10", str(i % 53)])
        genre = rng.choice(["a", "b", "", f"g{i % 211}"])
        line = f"u{u},{i},{rng.randint(1, 10) / 2},{base + day * rng.randint(0, 400)},{event},{price},{genre}"
        if tags:
            picks = [rng.choice(["x", "y", " z ", "", f"r{rng.randint(0, 400)}", f"t{rng.randint(0, 9)}"]) for _ in range(rng.randint(0, 3))]
            line += "," + ("|".join(picks) if rng.random() > 0.1 else "")
        lines.append(line)
    return "\n".join(lines) + "\n"


TRAIN_FIT = {
    "loo_negatives_npz": dict(split="loo", eval_negatives=2, formats=("parquet", "npz")),
    "loo_first_seen_users": dict(split="loo", user_order="first-seen", max_len=3, exports=("sasrec", "recbole")),
    "time_first_seen_both": dict(split="time:0.6,0.8", item_order="first-seen", user_order="first-seen", windows="2:1"),
    "time_bounds_id_sessions": dict(split="time", valid_from=200, test_from=300, item_order="id", session_gap=30),
    "users_truncate_popularity": dict(
        split="users:0.5,0.25,0.25", min_user_count=2, max_len=3, truncate=True, eval_negatives=2, negatives="popularity"
    ),
    "features_first_seen": dict(features=("genre", "price:num", "userId:cat"), split="loo", item_order="first-seen", max_len=3),
    "features_events_targets": dict(
        event_col="event", target_events=("buy", "cart"), features=("price:cat", "genre"), split="loo", eval_negatives=2, exports=("recbole",)
    ),
    "sequence_order_events": dict(event_col="event", features=("genre",), item_order="sequence", split="users:0.5,0.25,0.25"),
    "days_sequence_date_srgnn": dict(split="days:3", item_order="sequence", user_order="date", exports=("srgnn",), log=dict(day=20000)),
}


def _digests(folder: Path) -> dict[str, object]:
    from tests.test_memory_limit_equivalence import tree_digest

    return tree_digest(folder)


@pytest.mark.parametrize("case", list(TRAIN_FIT))
def test_vocab_from_train_same_bytes_local_memory_limit_dask(case, tmp_path, scheduler):
    """``--vocab-from-train`` built in memory, with ``--memory-limit`` and on Dask: every output byte
    the same (the held-out rows of unseen items really are dropped, the parts really reordered)."""
    options = {"vocab_from_train": True, **TRAIN_FIT[case]}
    path = tmp_path / "log.csv"
    path.write_text(_train_log(len(case), **options.pop("log", {})))
    res = _same_bytes_three_engines(path, tmp_path, scheduler, options)
    if "features" in options:
        assert any(f.get("unseen", 0) > 0 for f in res.meta["features"].values())


def _same_bytes_three_engines(path, tmp_path: Path, scheduler: str, options: dict, dask_options: dict = SMALL):
    """``--vocab-from-train`` built in memory, with ``--memory-limit`` and on Dask (several read pieces
    and output parts): every output byte the same, the held-out rows of unseen items dropped."""
    local, spilled, dask = (tmp_path / k / "out" for k in ("local", "spilled", "dask"))
    seqprep.build(path, local, **options)
    seqprep.build(path, spilled, memory_limit=1, block_size="1KiB", **options)
    res = seqprep.build(path, dask, engine="dask", scheduler=scheduler, **dask_options, **options)
    assert res.meta["engine"]["output_parts"] > 1 and res.meta["engine"]["input_partitions"] > 1
    step = next(s for s in res.meta["steps"] if s["step"] == "vocab_from_train")
    assert step["rows_removed"] > 0  # the case tests the drop, not only the fit
    want = _digests(local)
    got = _digests(spilled)
    want["meta.json"]["options"].pop("resources", None), got["meta.json"]["options"].pop("resources", None)
    assert got == want
    assert_same_folders(local, dask)
    report = seqprep.verify(dask)  # the written vocabularies' counts are those of the rows written
    assert report.ok, report.problems
    return res


def test_srgnn_preset_on_diginetica_same_bytes_on_dask(tmp_path, scheduler):
    """``--preset srgnn`` (``--vocab-from-train``, ``--export srgnn``) on the Diginetica sample SR-GNN
    ships: the Dask engine writes the local engine's bytes."""
    from tests.conftest import shared_file

    path = shared_file("diginetica-sample/sample_train-item-views.csv")
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    seqprep.build(path, local, preset="srgnn")
    res = seqprep.build(path, dask, preset="srgnn", engine="dask", scheduler=scheduler, part_rows=300, block_bytes=1 << 16)
    assert res.meta["engine"]["output_parts"] > 1
    assert (dask / "srgnn" / "train.txt").read_bytes() == (local / "srgnn" / "train.txt").read_bytes()
    assert_same_folders(local, dask)


def test_vocab_from_train_stream_matches_local(tmp_path, scheduler):
    """``-o -`` with ``--vocab-from-train`` (users reordered across parts): the local stream's bytes."""
    path = tmp_path / "log.csv"
    path.write_text(_train_log(7))
    options = dict(to="jsonl", split="time:0.6,0.8", vocab_from_train=True, user_order="first-seen", features=("genre",))
    a, b = io.BytesIO(), io.BytesIO()
    seqprep.build(path, "-", stdout=a, **options)
    seqprep.build(path, "-", stdout=b, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert a.getvalue() == b.getvalue() and a.getvalue()


def test_caser_preset_same_bytes_on_dask(tmp_path, scheduler):
    """``--preset caser`` (5-core, sequence order, ``--split ratio:0.7,0.1,0.2``, ``--vocab-from-train``,
    windows): the Dask engine writes the local engine's bytes, over several parts."""
    rng = random.Random(5)
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(60):
        n = rng.randint(4, 14)
        for k in range(n):  # a user's last row often holds an item no training row holds (items 200-203)
            item = rng.randint(200, 203) if k == n - 1 and rng.random() < 0.5 else rng.randint(1, 40)
            lines.append(f"{u},{item},{rng.randint(1, 5)},{rng.randint(0, 50) if k < n - 1 else 99}")
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    seqprep.build(path, local, preset="caser")
    res = seqprep.build(path, dask, preset="caser", engine="dask", scheduler=scheduler, **SMALL)
    assert res.meta["engine"]["output_parts"] > 1
    assert next(s for s in res.meta["steps"] if s["step"] == "vocab_from_train")["rows_removed"] > 0
    assert_same_folders(local, dask)


# --- --vocab-from-train with what is keyed by the sessions' first users (--session-col), fitted on
# the final rows (--time-feature) or read as lists (token features): the Dask engine ran these
# locally only until issue 18.

EPOCH_DAYS = {"base": 1_500_000_000, "day": 4_000}  # epoch seconds over ~18 days: hour and weekday apply

TRAIN_FIT_MORE = {
    # --session-col: each session's user found on every kept row, sessions.parquet on the sessions left
    "session_col_loo": ("sessions", dict(session_col="session_id", time_col="eventdate,timeframe", split="loo", formats=("parquet", "npz"))),
    "session_col_ratio_first_seen": (
        "sessions",
        dict(session_col="session_id", time_col="eventdate", split="ratio:0.7,0.1,0.2", user_order="first-seen", item_order="first-seen", exports=("sasrec",)),
    ),
    "session_col_days_date_sequence_srgnn": (
        "sessions",
        dict(session_col="session_id", time_col="eventdate,timeframe", split="days:3", user_order="date", item_order="sequence", exports=("srgnn",)),
    ),
    # --time-feature: a categorical one fitted on the TRAIN rows of the final sequences
    "time_features_loo": ("train", dict(time_features=("delta", "delta-log2", "interval:4"), split="loo", max_len=3, formats=("parquet", "npz"))),
    "time_features_ratio_first_seen_sessions": (
        "epoch",
        dict(time_features=("delta-log2", "hour", "weekday"), split="ratio:0.7,0.1,0.2", item_order="first-seen", user_order="first-seen", session_gap=30_000),
    ),
    "time_features_sequence_time_windows": (
        "epoch",
        dict(time_features=("hour", "interval:3"), features=("genre",), item_order="sequence", split="time:0.6,0.8", windows="2:1", exports=("recbole",)),
    ),
    # token lists: the tokens fitted on the TRAIN rows (a token only held-out rows hold leaves its list)
    "tokens_loo": ("tags", dict(features=("tags:tokens:|", "genre"), split="loo", eval_negatives=2, exports=("recbole",))),
    "tokens_ratio_first_seen": (
        "tags",
        dict(features=("tags:tokens:|", "price:num"), split="ratio:0.7,0.1,0.2", item_order="first-seen", user_order="first-seen", max_len=3, formats=("parquet", "npz")),
    ),
    "tokens_id_users_events": ("tags", dict(features=("tags:tokens:|",), event_col="event", target_events=("buy", "cart"), item_order="id", split="users:0.5,0.25,0.25")),
    "tokens_sequence_time_truncate": ("tags", dict(features=("tags:tokens:|",), item_order="sequence", split="time:0.6,0.8", max_len=2, truncate=True)),
    # the three at once, on a session log
    "all_three": (
        "sessions+tags",
        dict(session_col="session_id", time_col="eventdate,timeframe", features=("tags:tokens:|",), time_features=("delta-log2", "weekday"), split="loo", formats=("parquet", "npz")),
    ),
}


def _train_session_log(seed: int, n: int = 1500, tags: bool = False) -> str:
    """:func:`_session_log` with many items (test rows often hold one no training row holds) and,
    with ``tags``, a ``|``-separated token column with rare tokens."""
    rng = random.Random(seed)
    lines = _session_log(seed, n).splitlines()
    out = [lines[0] + (";tags" if tags else "")]
    for line in lines[1:]:
        fields = line.split(";")
        fields[2] = str(rng.randint(1, 400))
        if tags:
            fields.append("|".join(rng.choice(["x", "y", "", f"r{rng.randint(0, 300)}"]) for _ in range(rng.randint(0, 3))))
        out.append(";".join(fields))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("case", list(TRAIN_FIT_MORE))
def test_vocab_from_train_sessions_time_features_tokens_same_bytes(case, tmp_path, scheduler):
    kind, options = TRAIN_FIT_MORE[case]
    options = {"vocab_from_train": True, **options}
    path = tmp_path / "log.csv"
    if kind.startswith("sessions"):
        path.write_text(_train_session_log(len(case), tags=kind.endswith("tags")))
    else:
        path.write_text(_train_log(len(case), tags=kind == "tags", **(EPOCH_DAYS if kind == "epoch" else {})))
    res = _same_bytes_three_engines(path, tmp_path, scheduler, options)
    if "session_col" in options:
        assert (tmp_path / "dask" / "out" / "sessions.parquet").is_file()
    for name, f in res.meta.get("features", {}).items():  # (the event feature keeps the kept rows' vocabulary, as locally)
        assert f.get("fit") == (None if f["kind"] == "num" else "kept" if name == "event" else "train"), name
    fitted = [f for f in res.meta.get("features", {}).values() if f.get("fit") == "train"]
    if "tags:tokens:|" in options.get("features", ()):
        assert res.meta["features"]["tags"]["unseen"] > 0 and res.meta["features"]["tags"]["empty_tokens"] > 0
    if options.get("time_features"):
        assert fitted


def test_vocab_from_train_list_column_same_bytes(tmp_path, scheduler):
    """A list column (Parquet lists, missing elements): its tokens fitted on the TRAIN rows."""
    rng = random.Random(3)
    tags = [[], ["a"], ["a", "b"], ["c", None, "a"], None, ["b", "d"], [None]]
    rows = [
        {"user": f"u{rng.randint(0, 40)}", "item": f"i{rng.randint(0, 400)}", "ts": rng.randint(0, 100), "tags": rng.choice(tags + [[f"r{rng.randint(0, 200)}"]])}
        for _ in range(1500)
    ]
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=150)
    options = dict(features=("tags",), user_col="user", item_col="item", time_col="ts", split="loo", item_order="first-seen", vocab_from_train=True)
    res = _same_bytes_three_engines(path, tmp_path, scheduler, options)
    assert res.meta["features"]["tags"]["unseen"] > 0 and res.meta["features"]["tags"]["empty_tokens"] > 0


def test_srgnn_preset_with_a_session_col_same_bytes_on_dask(tmp_path, scheduler):
    """``--preset srgnn`` keyed by ``--session-col`` (the users kept) with time features, on the
    Diginetica sample: every engine writes the local bytes."""
    from tests.conftest import shared_file

    path = shared_file("diginetica-sample/sample_train-item-views.csv")
    options = dict(preset="srgnn", session_col="session_id", user_col="user_id", time_features=("delta-log2", "weekday"))
    res = _same_bytes_three_engines(path, tmp_path, scheduler, options, dict(part_rows=300, block_bytes=1 << 16))
    assert res.meta["session_key"]["sessions_with_several_users"] > 0
    assert (tmp_path / "dask" / "out" / "srgnn" / "train.txt").read_bytes() == (tmp_path / "local" / "out" / "srgnn" / "train.txt").read_bytes()


def test_caser_preset_with_tokens_and_time_features_same_bytes(tmp_path, scheduler):
    """``--preset caser`` (``--vocab-from-train``, ratio split, windows) with a token feature and time
    features: every engine writes the local bytes."""
    rng = random.Random(8)
    lines = ["userId,movieId,rating,timestamp,tags"]
    for u in range(60):
        n = rng.randint(5, 14)
        for k in range(n):  # a user's last row often holds an item no training row holds, and a token of its own
            item = rng.randint(200, 203) if k == n - 1 and rng.random() < 0.5 else rng.randint(1, 40)
            tags = f"late{u}|x" if k == n - 1 else "|".join(rng.choice(["x", "y", "", "z"]) for _ in range(rng.randint(0, 3)))
            lines.append(f"{u},{item},{rng.randint(1, 5)},{1_500_000_000 + 3_000 * (rng.randint(0, 50) if k < n - 1 else 99)},{tags}")
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    options = dict(preset="caser", features=("tags:tokens:|",), time_features=("delta-log2", "hour"))
    res = _same_bytes_three_engines(path, tmp_path, scheduler, options)
    assert res.meta["features"]["tags"]["unseen"] > 0


# --- the options the Dask engine refused until issue 18: token lists, a categorical feature of a
# column read as numbers, --vocab-from with features, a compressed Parquet input, URLs with
# --where / --session-col. Each built locally and on the cluster, every byte compared.


def _tag_log(seed: int, n: int = 1500, tokens: tuple[str, ...] = ("x", "y", " z ", "")) -> str:
    """:func:`_rich_log` with a ``tags`` column of ``|``-separated tokens: some missing, some empty
    (``a||b``, a trailing ``|``), spaces around some."""
    rng = random.Random(seed)
    lines = _rich_log(seed, n, **EPOCH).splitlines()
    out = [lines[0] + ",tags"]
    for line in lines[1:]:
        tags = "|".join(rng.choice([*tokens, f"t{rng.randint(0, 9)}"]) for _ in range(rng.randint(0, 4)))
        out.append(line + "," + (tags if rng.random() > 0.1 else ""))
    return "\n".join(out) + "\n"


TOKENS = {
    "tokens": dict(features=("tags:tokens:|", "genre"), exports=("recbole",)),
    "tokens_first_seen_split_npz": dict(
        features=("tags:tokens:|",), item_order="first-seen", split="loo", max_len=3, formats=("parquet", "npz"), exports=("recbole", "sasrec")
    ),
    "tokens_id_kcore_dedup_windows": dict(features=("tags:tokens:|",), item_order="id", min_item_count=3, dedup="first", split="time:0.6,0.8", windows="3:1"),
    "tokens_sequence_order_truncate": dict(features=("tags:tokens:|",), item_order="sequence", split="loo", max_len=2, truncate=True, formats=("npz",)),
    # --event-col on the column a num feature reads as numbers: each number a category ("nan" too)
    "event_of_numbers": dict(features=("price:num",), event_col="price", exports=("recbole",)),
    "event_of_numbers_first_seen_split": dict(features=("price:num", "tags:tokens:|"), event_col="price", item_order="first-seen", split="loo", formats=("parquet", "npz")),
    # a dedup shuffles the rows by user before the count tables: first positions are the smallest
    "first_seen_after_dedup": dict(features=("price:num", "tags:tokens:|"), event_col="price", item_order="first-seen", dedup="last", min_user_count=2),
}


@pytest.mark.parametrize("case", list(TOKENS))
def test_token_lists_and_number_categories_match_local(case, tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_tag_log(len(case)))
    options = TOKENS[case]
    _dask_matches_local(path, tmp_path, scheduler, options)


def test_token_lists_stream_as_the_local_ones(tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text(_tag_log(3))
    options = dict(to="jsonl", features=("tags:tokens:|", "price:num"), event_col="price", split="loo")
    a, b = io.BytesIO(), io.BytesIO()
    seqprep.build(path, "-", stdout=a, **options)
    seqprep.build(path, "-", stdout=b, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert a.getvalue() == b.getvalue() and b'"tags"' in a.getvalue()


FEATURE_REUSE = {
    "drop": dict(),
    "oov_split": dict(unknown="oov", split="loo", formats=("parquet", "npz")),
    "extend_first_seen": dict(extend=True, item_order="first-seen", exports=("recbole",)),
    "extend_id_kcore": dict(extend=True, item_order="id", min_item_count=3),
}


@pytest.mark.parametrize("case", list(FEATURE_REUSE))
def test_vocab_from_with_features_matches_local(case, tmp_path, scheduler):
    """--vocab-from with --feature (cat, num, tokens), --event-col and --time-feature: each feature's
    vocabulary fitted on the cluster, then reused by the local step on the client."""
    features = dict(features=("genre", "price", "tags:tokens:|"), event_col="event", time_features=("delta-log2", "hour", "delta"))
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text(_tag_log(31, n=500))
    # new genres, tokens and gaps that OLD never saw
    new.write_text(_tag_log(32, tokens=("x", "w", "")).replace(",g3,", ",zz,"))
    seqprep.build(old, tmp_path / "ref", **features)
    options = dict(features, vocab_from=str(tmp_path / "ref"), **FEATURE_REUSE[case])
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    res = seqprep.build(new, local, **options)
    assert res.meta["features"]["genre"]["unseen"] > 0 and res.meta["features"]["tags"]["unseen"] > 0
    seqprep.build(new, dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert_same_folders(local, dask)


def test_vocab_from_unknown_feature_value_error_is_the_local_one(tmp_path, scheduler):
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text(_tag_log(32))
    new.write_text(_tag_log(32, tokens=("x", "w", "")))  # the same rows, other tokens
    seqprep.build(old, tmp_path / "ref", features=("tags:tokens:|",))
    options = dict(features=("tags:tokens:|",), vocab_from=str(tmp_path / "ref"), unknown="error")
    with pytest.raises(seqprep.SeqprepError) as local:
        seqprep.build(new, tmp_path / "l", **options)
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(new, tmp_path / "d", engine="dask", scheduler=scheduler, **SMALL, **options)
    assert str(dask.value) == str(local.value) and "'w'" in str(local.value)
    assert not (tmp_path / "d").exists()


def _parquet_bytes(text: str, row_group_size: int = 200) -> bytes:
    import pyarrow.csv as pcsv

    sink = io.BytesIO()
    pq.write_table(pcsv.read_csv(pa.py_buffer(text.encode())), sink, row_group_size=row_group_size)
    return sink.getvalue()


@pytest.mark.parametrize("compression", ["gz", "xz", "bz2"])
def test_compressed_parquet_input_matches_local(compression, tmp_path, scheduler):
    """A compressed Parquet file is read whole, as one piece (its footer is at the end of the
    decompressed bytes), beside a plain one cut by row group."""
    import bz2
    import gzip
    import lzma

    compress = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[compression]
    packed = tmp_path / f"log.parquet.{compression}"
    packed.write_bytes(compress(_parquet_bytes(_rich_log(4))))
    plain = tmp_path / "more.parquet"
    plain.write_bytes(_parquet_bytes(_rich_log(5)))
    options = dict(features=("genre", "price"), event_col="event", min_item_count=2)
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    seqprep.build([packed, plain], local, **options)
    res = seqprep.build([packed, plain], dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert res.meta["engine"]["input_partitions"] > 2
    assert_same_folders(local, dask)


def _url_case(tmp_path: Path, name: str) -> Path:
    import gzip

    path = tmp_path / name
    if name.startswith("sessions"):
        path.write_text(_session_log(6))
    elif name.endswith(".parquet"):
        path.write_bytes(_parquet_bytes(_rich_log(6)))
    elif name.endswith(".gz"):
        path.write_bytes(gzip.compress(_rich_log(6).encode()))
    else:
        path.write_text(_rich_log(6))
    return path


URLS = {
    "log.csv": dict(where=("price > 0",), min_user_count=3),
    "log.csv.gz": dict(where=("event == 'buy' or price > 3",)),
    "log.parquet": dict(where=("genre != 'a'",), features=("genre",)),
    "sessions.csv": dict(session_col="session_id", time_col="eventdate,timeframe", where=("user_id is not null",), split="loo"),
}


@pytest.mark.parametrize("name", list(URLS))
def test_where_and_session_col_on_a_url_match_local(name, tmp_path, scheduler):
    """The first input a URL: the read plan finds the columns in a local stand-in of its first
    bytes (a Parquet file: an empty file of its schema)."""
    path = _url_case(tmp_path, name)
    url = path.absolute().as_uri()
    options = URLS[name]
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    seqprep.build(path, local, **options)
    res = seqprep.build(url, dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert res.meta["inputs"][0]["path"] == url
    meta = dask / "meta.json"
    meta.write_text(meta.read_text().replace(url, str(path)))  # the one difference: the input's name
    assert_same_folders(local, dask)


def test_session_col_error_on_a_url_names_the_url(tmp_path, scheduler):
    path = tmp_path / "log.csv"
    path.write_text("session,item,ts\n1,2,3\n")
    url = path.absolute().as_uri()
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(url, tmp_path / "d", session_col="session", engine="dask", scheduler=scheduler)
    assert url in str(dask.value) and "seqprep-dask-head" not in str(dask.value)


def _list_records(seed: int, n: int = 1500) -> list[dict]:
    """Rows with a list column: empty lists, missing lists, missing elements."""
    rng = random.Random(seed)
    tags = [[], ["a"], ["a", "b"], ["c", None, "a"], None, ["b", "d", "e"], ["e"], [None]]
    rows = [
        {"user": f"u{rng.randint(0, 40)}", "item": f"i{rng.randint(0, 60)}", "ts": rng.randint(0, 100), "tags": rng.choice(tags), "genre": rng.choice(["x", "y", None])}
        for _ in range(n)
    ]
    rows[0].update(tags=["a", "b"], genre="x")  # the first line names every column
    return rows


LISTS = {
    "jsonl": ("jsonl", dict(features=("tags",), exports=("recbole",))),
    "jsonl_where_split": ("jsonl", dict(features=("tags", "genre"), where=("genre == 'x' or genre is null",), split="loo", formats=("parquet", "npz"))),
    "parquet_first_seen_kcore": ("parquet", dict(features=("tags:tokens:|",), item_order="first-seen", min_item_count=3, split="loo", max_len=3)),
    "parquet_and_text_csv": ("parquet+csv", dict(features=("tags",), item_order="id")),
}


@pytest.mark.parametrize("case", list(LISTS))
def test_list_columns_match_local(case, tmp_path, scheduler):
    """A list column (JSON arrays, a Parquet list): each row travels as the code of its distinct
    list; a text input beside it holds lists of one, as locally."""
    fmt, options = LISTS[case]
    rows = _list_records(len(case))
    paths = []
    if fmt == "jsonl":
        paths.append(tmp_path / "log.jsonl")
        paths[0].write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in rows))
    else:
        paths.append(tmp_path / "log.parquet")
        pq.write_table(pa.Table.from_pylist(rows), paths[0], row_group_size=150)
    if fmt.endswith("csv"):
        paths.append(tmp_path / "more.csv")
        paths[1].write_text("user,item,ts,tags\n" + "".join(f"u{k},i{k % 9},{k},{'zz' if k % 3 else ''}\n" for k in range(100)))
    options = dict(options, user_col="user", item_col="item", time_col="ts")
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    res = seqprep.build(paths, local, **options)
    assert res.meta["features"]["tags"]["kind"] == "tokens" and res.meta["features"]["tags"]["empty_tokens"] > 0
    res = seqprep.build(paths, dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert res.meta["engine"]["input_partitions"] > 1
    assert_same_folders(local, dask)


def test_categorical_feature_of_a_list_column_is_the_local_error(tmp_path, scheduler):
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist(_list_records(2, n=300)), path)
    options = dict(features=("tags:cat",), user_col="user", item_col="item", time_col="ts")
    with pytest.raises(seqprep.SeqprepError) as local:
        seqprep.build(path, tmp_path / "l", **options)
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(path, tmp_path / "d", engine="dask", scheduler=scheduler, **SMALL, **options)
    assert str(dask.value) == str(local.value)


def test_where_over_a_list_column_is_the_local_error(tmp_path, scheduler):
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist(_list_records(4, n=300)), path)
    options = dict(features=("genre",), where=("tags is null",), user_col="user", item_col="item", time_col="ts")
    with pytest.raises(seqprep.SeqprepError) as local:
        seqprep.build(path, tmp_path / "l", **options)
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(path, tmp_path / "d", engine="dask", scheduler=scheduler, **SMALL, **options)
    assert str(dask.value) == str(local.value) and "holds lists" in str(local.value)
    assert not (tmp_path / "d").exists()


def test_list_column_with_a_session_key_matches_local(tmp_path, scheduler):
    """--session-col finishes each partition by the local read plan: a list column passes through it."""
    rows = _list_records(9)
    for k, r in enumerate(rows):
        r["session"] = f"s{k % 70}"
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=150)
    options = dict(features=("tags",), session_col="session", user_col="user", item_col="item", time_col="ts", split="loo")
    local, dask = tmp_path / "local" / "out", tmp_path / "dask" / "out"
    seqprep.build(path, local, **options)
    seqprep.build(path, dask, engine="dask", scheduler=scheduler, **SMALL, **options)
    assert_same_folders(local, dask)


def test_bad_time_offset_on_a_url_is_one_line(tmp_path, scheduler):
    """The local reader cannot open a URL to name the row: the workers' own one-line error stands."""
    path = tmp_path / "log.csv"
    path.write_text(_session_log(3, n=400) + "7;1;5;1.5;2016-05-01;view\n")
    with pytest.raises(seqprep.SeqprepError) as dask:
        seqprep.build(path.absolute().as_uri(), tmp_path / "d", session_col="session_id", time_col="eventdate,timeframe", engine="dask", scheduler=scheduler, **SMALL)
    assert "not found" not in str(dask.value) and "\n" not in str(dask.value)
    assert not (tmp_path / "d").exists()
