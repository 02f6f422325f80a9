"""--preset: each preset against an independent statement of its script's rules (pandas, here),
on the real data in ../shared/data (skipped cleanly when absent); --explain, overrides, meta.json
and the engines that refuse the presets' options, on small logs of their own."""

from __future__ import annotations

import gzip
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from seqprep.errors import ConfigError
from tests.conftest import shared_file

FASHION = "amazon2018-fashion-5core/AMAZON_FASHION_5.json.gz"
DIGINETICA = "diginetica-sample/sample_train-item-views.csv"


# --------------------------------------------------------------------------------------------------
# Independent references: the scripts' rules as their docs/presets.md rows state them, in pandas


def sasrec_reference(path) -> str:
    """SASRec data/DataProcessing.py: counts over all rows (duplicates too), one pass of < 5 out,
    ids from 1 by first appearance among the kept rows in file order, each user's rows by time
    (stable), users in id order; the ``user item`` lines."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    df = pd.DataFrame(
        {"u": [r["reviewerID"] for r in rows], "i": [r["asin"] for r in rows], "t": [r["unixReviewTime"] for r in rows]}
    )
    kept = df[(df.u.map(df.u.value_counts()) >= 5) & (df.i.map(df.i.value_counts()) >= 5)].copy()
    kept["user"] = pd.factorize(kept.u)[0] + 1
    kept["item"] = pd.factorize(kept.i)[0] + 1
    kept["line"] = np.arange(len(kept))
    kept = kept.sort_values(["user", "t", "line"], kind="stable")
    return "".join(f"{u} {i}\n" for u, i in zip(kept.user, kept.item))


def srgnn_reference(path, test_days=7):
    """SR-GNN datasets/preprocess.py on the Diginetica layout -> (train sequences, test sequences,
    (train prefixes, labels), (test prefixes, labels), number of items)."""
    d = pd.read_csv(path, sep=";", dtype={"session_id": str, "item_id": str, "eventdate": str})
    d["line"] = np.arange(len(d))
    by_session = d.groupby("session_id", sort=False)
    date = (pd.to_datetime(by_session.eventdate.last()) - pd.Timestamp("1970-01-01")).dt.days  # the session's last line
    first = by_session.line.min()
    d = d.sort_values(["session_id", "timeframe", "line"], kind="stable")  # by timeframe alone, ties in file order
    d = d[d.groupby("session_id").item_id.transform("size") > 1]
    d = d[d.item_id.map(d.item_id.value_counts()) >= 5]
    d = d[d.groupby("session_id").item_id.transform("size") >= 2]
    sessions = pd.DataFrame({"date": date, "first": first}).loc[d.session_id.unique()]
    split = sessions.date.max() - test_days
    sessions = sessions.sort_values(["date", "first"], kind="stable")
    clicks = {k: g.item_id.tolist() for k, g in d.groupby("session_id", sort=False)}
    ids: dict[str, int] = {}
    train = []
    for s in sessions.index[sessions.date < split]:
        for item in clicks[s]:
            ids.setdefault(item, len(ids) + 1)
        train.append([ids[i] for i in clicks[s]])
    test = [q for s in sessions.index[sessions.date > split] if len(q := [ids[i] for i in clicks[s] if i in ids]) >= 2]

    def augment(seqs):
        pairs = [(q[:-k], q[-k]) for q in seqs for k in range(1, len(q))]
        return [p for p, _ in pairs], [y for _, y in pairs]

    return train, test, augment(train), augment(test), len(ids)


# --------------------------------------------------------------------------------------------------
# The presets on real data


@pytest.mark.real_data
def test_sasrec_preset_equals_the_scripts_user_item_file(tmp_path):
    path = shared_file(FASHION)
    res = seqprep.build(path, tmp_path / "o", preset="sasrec")
    expected = sasrec_reference(path)
    assert (tmp_path / "o" / "sasrec.txt").read_text() == expected
    m = res.meta
    assert (m["num_users"], m["num_items"], m["num_interactions"]) == (405, 19, 3154)  # measured; = the reference's
    assert len(expected.splitlines()) == 3154
    assert m["preset"]["name"] == "sasrec" and m["preset"]["overridden"] == []
    assert [r["rows_removed"] for r in m["steps"][-1]["rounds"]] == [22]  # one pass only


@pytest.mark.real_data
def test_srgnn_preset_equals_the_scripts_pickles(tmp_path):
    path = shared_file(DIGINETICA)
    res = seqprep.build(path, tmp_path / "o", preset="srgnn")
    train, test, train_rows, test_rows, n_items = srgnn_reference(path)
    out = tmp_path / "o" / "srgnn"
    with open(out / "train.txt", "rb") as fh:
        got_train = pickle.load(fh)
    with open(out / "test.txt", "rb") as fh:
        got_test = pickle.load(fh)
    with open(out / "all_train_seq.txt", "rb") as fh:
        got_seqs = pickle.load(fh)
    assert got_seqs == train and got_train == tuple(train_rows) and got_test == tuple(test_rows)
    # the figures for this sample: 469 training sessions, 309 items, 1,205 and 99 prefix rows
    assert (len(got_seqs), n_items, len(got_train[0]), len(got_test[0])) == (469, 309, 1205, 99)
    m = res.meta
    assert m["num_items"] == 309
    assert m["split"]["sizes"]["train"]["users"] == 469 and m["split"]["sizes"]["test"]["rows"] == 99
    assert [p["on"] for p in m["steps"][1]["passes"]] == ["user", "item", "user"]


@pytest.mark.real_data
def test_srgnn_preset_with_an_override_changes_that_rule_only(tmp_path):
    path = shared_file(DIGINETICA)
    res = seqprep.build(path, None, preset="srgnn", split="days:14")
    assert res.meta["split"]["test_days"] == 14
    assert res.config.item_order == "sequence" and res.config.filter.kcore_passes == ("user", "item", "user")


# --------------------------------------------------------------------------------------------------
# --preset, --explain, overrides and meta.json on a small log of its own


def _log(tmp_path):
    lines = ["user_id,item_id,timestamp"] + [
        f"u{u},i{(u * 7 + k) % 6},{1000 + 10 * k}" for u in range(8) for k in range(6)
    ]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_explain_prints_the_flags_and_builds_nothing(tmp_path):
    r = CliRunner().invoke(
        cli,
        [
            "build",
            str(_log(tmp_path)),
            "-o",
            str(tmp_path / "o"),
            "--preset",
            "sasrec",
            "--explain",
            "--min-user-count",
            "10",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (
        "expands to: --min-user-count 5 --min-item-count 5 --kcore-rounds 1 --dedup none --user-order first-seen --item-order first-seen --export sasrec"
        in r.output
    )
    assert "overridden on the command line: --min-user-count 10" in r.output
    assert "nothing was built" in r.output
    assert not (tmp_path / "o").exists()


def test_explain_needs_no_input_and_explain_alone_says_what_it_needs():
    r = CliRunner().invoke(cli, ["build", "--preset", "srgnn", "--explain"])
    assert r.exit_code == 0 and "--kcore-passes user,item,user" in r.output and "--split days:7" in r.output
    r = CliRunner().invoke(cli, ["build", "--explain"])
    assert (
        r.exit_code == 1
        and r.stderr.strip() == "Error: --explain prints what --preset NAME expands to; add --preset sasrec|srgnn"
    )


def test_build_without_input_or_output_is_one_line():
    r = CliRunner().invoke(cli, ["build", "-o", "x"])
    assert r.exit_code == 1 and r.stderr == "Error: no input given; pass one or more log files (or - for stdin)\n"
    r = CliRunner().invoke(cli, ["build", "log.csv"])
    assert r.exit_code == 1 and r.stderr == "Error: no output folder given; pass -o OUT\n"


def test_cli_flags_override_the_preset_and_meta_records_both(tmp_path):
    out = tmp_path / "o"
    r = CliRunner().invoke(
        cli, ["build", str(_log(tmp_path)), "-o", str(out), "--preset", "sasrec", "--min-item-count", "2", "-q"]
    )
    assert r.exit_code == 0, r.output
    m = json.loads((out / "meta.json").read_text())
    assert m["options"]["preset"] == "sasrec"
    assert m["options"]["filter"]["min_item_count"] == 2 and m["options"]["filter"]["min_user_count"] == 5
    assert m["preset"]["overridden"] == ["--min-item-count", "2"]
    assert (out / "sasrec.txt").is_file()


def test_an_explicit_default_value_still_overrides(tmp_path):
    """--dedup none is sasrec's value; --item-order frequency (the default) given explicitly wins."""
    res = CliRunner().invoke(
        cli,
        [
            "build",
            str(_log(tmp_path)),
            "-o",
            str(tmp_path / "o"),
            "--preset",
            "sasrec",
            "--item-order",
            "frequency",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert m["item_order"] == "frequency" and m["preset"]["overridden"] == ["--item-order", "frequency"]


def test_unknown_preset_names_the_presets(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^--preset 'bert4rec' is not a preset; presets are sasrec, srgnn \(see docs/presets.md\)$"
    ):
        seqprep.build(_log(tmp_path), None, preset="bert4rec")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"memory_limit": "1GB"},
            "--memory-limit does not support the --time-col with several columns, --kcore-passes, "
            "--item-order sequence, --user-order date, --split days options yet; drop --memory-limit: the in-memory build runs them",
        ),
        (
            {"engine": "dask"},
            "--engine dask does not support --vocab-from-train, --export srgnn yet; run this build with --engine local",
        ),
    ],
)
def test_engines_refuse_the_preset_rules_in_one_line(tmp_path, extra, message):
    with pytest.raises(ConfigError) as e:
        seqprep.build(_log(tmp_path), tmp_path / "o", preset="srgnn", user_col="user_id", **extra)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"kcore_passes": "user,session", "min_user_count": 2},
            "--kcore-passes 'user,session': each pass is user or item, e.g. --kcore-passes user,item,user",
        ),
        (
            {"kcore_passes": "user", "min_user_count": 2, "kcore_rounds": 1},
            "--kcore-passes and --kcore-rounds both set how k-core repeats; pass only one of them",
        ),
        (
            {"kcore_passes": "user"},
            "--kcore-passes needs --min-user-count or --min-item-count above 1; add one, or drop --kcore-passes",
        ),
        (
            {"split": "days:1.5"},
            "--split 'days:1.5': give the test days as one whole number >= 1, as in --split days:7",
        ),
        (
            {"vocab_from": "old/", "user_order": "date"},
            "--user-order date orders a vocabulary fitted here, and --vocab-from reuses one (new ids are appended by frequency, first-seen or id); drop one of them",
        ),
        (
            {"exports": ("srgnn",)},
            "--export srgnn writes every prefix of the training and test sequences of a date split; add --split days:N",
        ),
    ],
)
def test_option_errors(tmp_path, options, message):
    with pytest.raises(ConfigError) as e:
        seqprep.build(_log(tmp_path), tmp_path / "o", **options)
    assert str(e.value) == message


# --------------------------------------------------------------------------------------------------
# The general options behind srgnn, on a log whose answers are worked out by hand


def test_date_order_days_split_and_sequence_item_order(tmp_path):
    day = 86400
    rows = [
        # session, item, time: s3 is written first but dated later; s1 and s2 share a day (file order)
        ("s3", "c", 9 * day + 5),
        ("s3", "a", 9 * day + 1),
        ("s1", "b", 1 * day),
        ("s1", "a", 1 * day + 2),
        ("s2", "a", 1 * day + 9),
        ("s2", "c", 1 * day + 10),
        ("s4", "b", 8 * day),
        ("s4", "d", 8 * day + 1),  # the boundary day 9 - 1: in neither part
        ("s5", "a", 3 * day),
        ("s5", "d", 3 * day + 1),
    ]
    path = tmp_path / "s.csv"
    path.write_text("session_id,item_id,timestamp\n" + "".join(f"{s},{i},{t}\n" for s, i, t in rows))
    res = seqprep.build(
        path,
        tmp_path / "o",
        user_col="session_id",
        user_order="date",
        item_order="sequence",
        split="days:1",
        vocab_from_train=True,
        exports=("srgnn",),
    )
    assert res.users.ids.to_pylist() == ["s1", "s2", "s5", "s4", "s3"]
    assert res.items.ids.to_pylist() == ["b", "a", "c", "d"]  # first appearance in s1, s2, s5 (training)
    split = res.meta["split"]
    assert (split["train_sequences"], split["boundary_sequences"], split["test_sequences"]) == (3, 1, 1)
    assert (split["last_day"], split["boundary_day"]) == ("1970-01-10", "1970-01-09")
    with open(tmp_path / "o" / "srgnn" / "test.txt", "rb") as fh:
        assert pickle.load(fh) == ([[2]], [3])  # s3 in time order: a then c
    with open(tmp_path / "o" / "srgnn" / "train.txt", "rb") as fh:
        assert pickle.load(fh) == ([[1], [2], [2]], [2, 3, 4])
