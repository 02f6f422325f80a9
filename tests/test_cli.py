"""The command line: CliRunner with stdin, exact one-line errors, nothing written on failure."""

from __future__ import annotations

import json
import re
from collections import Counter

import click
import pytest
from click.testing import CliRunner

from seqprep.cli import cli, help_groups
from tests.conftest import TIES_CSV


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_build_and_stats(write, tmp_path):
    p = write("ratings.csv", TIES_CSV)
    r = run("build", str(p), "-o", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    assert r.stdout == ""  # messages go to stderr only
    assert "7 rows read from 1 input(s), 7 kept" in r.stderr
    r = run("stats", str(tmp_path / "out"), "--json")
    s = json.loads(r.stdout)["datasets"][0]
    assert (s["users"], s["items"], s["interactions"]) == (3, 4, 7)
    assert s["ties"]["interactions"] == 2
    r = run("stats", str(p))
    lines = r.stdout.splitlines()
    assert "interactions 7".split() in [ln.split() for ln in lines]
    assert "interactions in ties 2 (28.6%)".split() in [ln.split() for ln in lines]


def test_build_from_stdin_with_json(tmp_path):
    r = run("build", "-", "-o", str(tmp_path / "o"), "--json", "-q", input=TIES_CSV)
    assert r.exit_code == 0
    assert r.stderr == ""
    assert json.loads(r.stdout)["num_items"] == 4


ERRORS = [
    (["build", "{tmp}/nope.csv", "-o", "{tmp}/o"], None, "Error: input file '{tmp}/nope.csv' not found; check the path"),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o"],
        "userId,movieId,rating,ts2\n1,2,3,4\n",
        "Error: {tmp}/x.csv: no time column found; columns are userId, movieId, rating, ts2 - pass --time-col NAME",
    ),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o"],
        "user_id,userId,item,ts\n1,1,2,4\n",
        "Error: {tmp}/x.csv: ambiguous user column: 'user_id', 'userId' all match; pass --user-col NAME to choose one",
    ),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o", "--time-col", "when"],
        "user,item,ts\n1,2,3\n",
        "Error: {tmp}/x.csv: column 'when' (--time-col) not found; columns are user, item, ts",
    ),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o"],
        "user,item,ts\n1,2,3\n1,3,yesterday\n",
        "Error: {tmp}/x.csv: line 3: timestamp 'yesterday' is neither a number nor an ISO-8601 date; fix the row or pass --time-col with the right column",
    ),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o"],
        "",
        "Error: {tmp}/x.csv: the log is empty; pass a file with a header line and interaction rows",
    ),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o"],
        "user,item,ts\n",
        "Error: the log is empty: no interaction rows in {tmp}/x.csv; check the input",
    ),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o", "--strict"],
        "user,item,ts\n1,2,3\n1,,4\n",
        "Error: 1 rows have a missing user, item or timestamp (first at {tmp}/x.csv row 2); fix them, or drop --strict to skip and count them",
    ),
    (
        ["build", "{tmp}/x.csv", "-o", "{tmp}/o", "--names", "a,b"],
        "1\t2\t3\n",
        "Error: {tmp}/x.csv: --names gives 2 names but the file has 3 columns (separator '\\t'); give one name per column",
    ),
]


@pytest.mark.parametrize("args,content,expected", ERRORS)
def test_errors_are_one_line_and_write_nothing(tmp_path, args, content, expected):
    if content is not None:
        (tmp_path / "x.csv").write_text(content)
    tmp = str(tmp_path)
    r = run(*[a.format(tmp=tmp) for a in args])
    assert r.exit_code == 1
    assert r.stderr == expected.format(tmp=tmp) + "\n"
    assert "Traceback" not in r.output
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_existing_output_needs_overwrite(write, tmp_path):
    p = write("r.csv", TIES_CSV)
    out = tmp_path / "out"
    assert run("build", str(p), "-o", str(out)).exit_code == 0
    before = (out / "meta.json").read_bytes()
    r = run("build", str(p), "-o", str(out), "--item-order", "id")
    assert r.exit_code == 1
    assert r.stderr == f"Error: output {str(out)!r} already exists; pass --overwrite to replace it, or choose another -o\n"
    assert (out / "meta.json").read_bytes() == before
    r = run("build", str(p), "-o", str(out), "--item-order", "id", "--overwrite")
    assert r.exit_code == 0
    assert json.loads((out / "meta.json").read_text())["item_order"] == "id"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out", "r.csv"]  # no temporary litter


def test_python_m_seqprep():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "seqprep", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.startswith("seqprep, version ")


# --------------------------------------------------------------------------------------------------
# --help in labelled groups

_READ = [
    "sep", "header", "names", "user_col", "session_col", "item_col", "time_col", "time_offset_unit", "rating_col",
    "id_type", "input_format",
]

#: Every command's --help groups, in order, with their parameters in order (click's parameter names).
HELP_GROUPS: dict[str, dict[str, list[str]]] = {
    "build": {
        "Input": ["inputs", *_READ],
        "Preset": ["preset", "explain"],
        "Cleaning": [
            "strict", "since", "until", "where", "min_rating", "dedup", "min_user_count", "min_item_count", "kcore_on",
            "kcore_rounds", "kcore_passes",
        ],
        "Vocabulary": ["item_order", "user_order", "vocab_from", "unknown", "extend"],
        "Features": ["features", "time_features", "event_col", "target_events", "item_table", "item_key", "item_attrs", "user_table", "user_key", "user_attrs"],
        "Sequences and splits": [
            "session_gap", "max_len", "pad", "truncate", "split", "valid_from", "test_from", "seed",
            "vocab_from_train", "windows", "eval_negatives", "negatives",
        ],
        "Outputs": ["output", "formats", "overwrite", "to", "exports", "as_json", "quiet"],
        "Resources": ["threads", "memory_limit", "block_size"],
        "Engine": ["engine", "scheduler", "workers", "part_rows", "block_bytes"],
        "Options": ["help"],
    },
    "stats": {"Input": ["paths", *_READ], "Cleaning": ["where"], "Outputs": ["as_json", "plot_file"], "Options": ["help"]},
    "verify": {"Input": ["path"], "Outputs": ["as_json"], "Options": ["help"]},
    "seqprep": {"Options": ["version", "help"]},
}


def _sections(text: str) -> dict[str, str]:
    """--help text -> {heading: the section's text}, in order."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.fullmatch(r"(\S[^:]*):", line)
        if m:
            current = found.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in found.items()}


def _name(param: click.Parameter) -> str | None:
    return "help" if "--help" in param.opts else param.name  # click names its help option as it likes


@pytest.mark.parametrize("name", list(HELP_GROUPS))
def test_help_lists_every_option_in_exactly_one_group_in_order(name):
    cmd = cli if name == "seqprep" else cli.commands[name]
    ctx = click.Context(cmd, info_name=name)
    groups = help_groups(cmd, ctx)
    assert [(title, [_name(p) for p in params]) for title, params in groups] == list(HELP_GROUPS[name].items())
    listed = Counter(_name(p) for _, params in groups for p in params)
    options = [_name(p) for p in cmd.get_params(ctx) if isinstance(p, click.Option)]
    assert all(listed[o] == 1 for o in options) and set(options) <= set(listed)

    text = CliRunner().invoke(cli, [*([] if name == "seqprep" else [name]), "--help"]).output
    sections = _sections(text)
    assert [h for h in sections if h in HELP_GROUPS[name]] == list(HELP_GROUPS[name])  # the groups, in order
    for title, params in groups:
        for p in params:
            label = p.human_readable_name if isinstance(p, click.Argument) else max(p.opts, key=len)
            assert re.search(rf"^  (-\w, )?{re.escape(label)}\b", sections[title], re.MULTILINE), (title, label)
