"""``--overwrite`` only ever replaces what seqprep itself wrote.

Every refusal is checked on the whole tree (names, kinds, bytes, link targets) before and after: not
a byte moves and no temporary folder is left. Each case runs through the CLI (exact stderr) and the
Python API (``OutputError``), on the local engine, with ``--memory-limit`` and with ``--engine dask``;
the build's first step is replaced by a tripwire, so a refusal provably comes before any work.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import seqprep
import seqprep.steps.reuse
from seqprep.cli import cli
from seqprep.engines import dask as dask_engine
from seqprep.engines import local as local_engine
from seqprep.errors import OutputError
from seqprep.output import atomic
from seqprep.steps.meta import FORMAT_VERSION
from tests.conftest import TIES_CSV

LOG_2 = "userId,movieId,rating,timestamp\n1,5,4.0,40\n4,8,1.0,41\n2,5,2.0,42\n4,5,3.0,43\n"


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root``: relative path -> kind and content (sha256 of bytes, link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = f"link -> {os.readlink(p)}"
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = "file " + hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def built(path: str | Path, log: str = "ratings.csv", **options: Any) -> Path:
    seqprep.build(log, path, **options)
    return Path(path)


def nested(path: str, sub: str) -> Path:
    """A seqprep output whose meta.json also lists the files of another build in ``sub/`` (as the Dask
    engine lists ``sequences/part-*``): a folder inside OUT that OUT's meta.json claims."""
    out = built(path)
    built(out / sub)
    meta = json.loads((out / "meta.json").read_text())
    for f in sorted((out / sub).iterdir()):
        meta["outputs"]["files"][f"{sub}/{f.name}"] = {"bytes": f.stat().st_size, "sha256": "x"}
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def edit_meta(out: Path, change: Callable[[dict[str, Any]], None]) -> None:
    meta = json.loads((out / "meta.json").read_text())
    change(meta)
    (out / "meta.json").write_text(json.dumps(meta))


# --------------------------------------------------------------------------------------------------
# Refusals: (id, setup) -> (inputs, -o, extra options, the error after "Error: ")
# A setup runs in an empty current folder that holds ratings.csv; it may chdir or set HOME.

Setup = Callable[[pytest.MonkeyPatch], tuple[list[str], str, dict[str, Any], str]]


def _proj(mp):
    Path("proj").mkdir()
    shutil.copy("ratings.csv", "proj/ratings.csv")
    Path("proj/train.py").write_text("code\n")
    return (
        ["proj/ratings.csv"],
        "proj",
        {},
        "'proj' holds files seqprep did not write (ratings.csv, train.py); choose another -o",
    )


def _thesis(mp):
    for rel in ("chapters/ch1.tex", "figs/plot.pdf", "notes.md", "refs.bib"):
        Path("thesis", rel).parent.mkdir(parents=True, exist_ok=True)
        Path("thesis", rel).write_text(rel)
    msg = "'thesis' holds files seqprep did not write (chapters/, figs/, notes.md and 1 more); choose another -o"
    return ["ratings.csv"], "thesis", {}, msg


def _user_file(mp):
    Path(built("out"), "notes.txt").write_text("my notes")
    return ["ratings.csv"], "out", {}, "'out' holds files seqprep did not write (notes.txt); choose another -o"


def _user_folder(mp):
    (built("out") / "runs").mkdir()
    Path("out/runs/model.pt").write_bytes(b"\x00weights")
    return ["ratings.csv"], "out", {}, "'out' holds files seqprep did not write (runs/); choose another -o"


def _user_empty_folder(mp):
    (built("out") / "keep").mkdir()
    return ["ratings.csv"], "out", {}, "'out' holds files seqprep did not write (keep/); choose another -o"


def _other_build_inside(mp):
    built("out")
    built("out/sub")  # a build into OUT/sub, and another one's temporary folder beside it
    Path("out/.sub.tmp-abc123").mkdir()
    msg = "'out' holds files seqprep did not write (.sub.tmp-abc123/, sub/); choose another -o"
    return ["ratings.csv"], "out", {}, msg


def _odd_file_name(mp):
    Path(built("out"), "line\nbreak").write_text("x")
    return ["ratings.csv"], "out", {}, "'out' holds files seqprep did not write ('line\\nbreak'); choose another -o"


def _listed_file_is_a_link(mp):
    out = built("out")
    (out / "items.parquet").unlink()
    (out / "items.parquet").symlink_to(Path("ratings.csv").absolute())
    return ["ratings.csv"], "out", {}, "'out' holds files seqprep did not write (items.parquet); choose another -o"


def _foreign_meta(mp):
    Path("exp").mkdir()
    Path("exp/meta.json").write_text('{"format_version": 1, "name": "my experiment"}')
    Path("exp/results.csv").write_text("a,b\n")
    return (
        ["ratings.csv"],
        "exp",
        {},
        "'exp' holds files seqprep did not write (meta.json, results.csv); choose another -o",
    )


_ALL_FOUR = "'out' holds files seqprep did not write (items.parquet, meta.json, sequences.parquet and 1 more); choose another -o"


def _future_format(mp):
    edit_meta(built("out"), lambda m: m.update(format_version=2))
    return ["ratings.csv"], "out", {}, _ALL_FOUR


def _bool_format(mp):
    edit_meta(built("out"), lambda m: m.update(format_version=True))
    return ["ratings.csv"], "out", {}, _ALL_FOUR


def _meta_without_keys(mp):
    edit_meta(built("out"), lambda m: m.pop("inputs"))
    return ["ratings.csv"], "out", {}, _ALL_FOUR


def _meta_lists_outside(mp):
    edit_meta(built("out"), lambda m: m["outputs"]["files"].update({"../ratings.csv": {}}))
    return ["ratings.csv"], "out", {}, _ALL_FOUR


def _meta_is_a_link(mp):
    out = built("out")
    shutil.move(out / "meta.json", "meta-copy.json")
    (out / "meta.json").symlink_to(Path("meta-copy.json").absolute())
    return ["ratings.csv"], "out", {}, _ALL_FOUR


def _meta_not_json(mp):
    Path(built("out"), "meta.json").write_bytes(b"\xff\xfe not json")
    return ["ratings.csv"], "out", {}, _ALL_FOUR


def _input_inside(mp):
    built("out")
    return (
        ["out/sequences.parquet"],
        "out",
        {},
        "output 'out' holds the input 'out/sequences.parquet'; choose another -o",
    )


def _input_glob_inside(mp):
    built("out")
    return (
        ["ratings.csv", "out/*.parquet"],
        "out",
        {},
        "output 'out' holds the input 'out/items.parquet'; choose another -o",
    )


def _input_through_link(mp):
    built("out")
    Path("alias").symlink_to("out")
    return ["alias/users.parquet"], "out", {}, "output 'out' holds the input 'alias/users.parquet'; choose another -o"


def _output_through_dotdot(mp):
    built("out")
    Path("x").mkdir()
    return (
        ["out/users.parquet"],
        "x/../out",
        {},
        "output 'x/../out' holds the input 'out/users.parquet'; choose another -o",
    )


def _input_is_output(mp):
    Path("data").mkdir()
    return ["data"], "data", {}, "output 'data' is the input 'data'; choose another -o"


def _vocab_inside(mp):
    nested("out", "old")
    return (
        ["ratings.csv"],
        "out",
        {"vocab_from": "out/old"},
        "output 'out' holds the --vocab-from folder 'out/old'; choose another -o",
    )


def _cwd_is_output(mp):
    Path("here").mkdir()
    mp.chdir("here")
    return ["../ratings.csv"], ".", {}, "output '.' is the current folder; choose another -o"


def _cwd_is_output_by_path(mp):
    built("out")
    mp.chdir("out")
    return ["../ratings.csv"], "../out", {}, "output '../out' is the current folder; choose another -o"


def _cwd_inside_output(mp):
    nested("out", "old")
    mp.chdir("out/old")
    return ["../../ratings.csv"], "../../out", {}, "output '../../out' holds the current folder; choose another -o"


def _home_is_output(mp):
    Path("home").mkdir()
    mp.setenv("HOME", str(Path("home").absolute()))
    return ["ratings.csv"], "home", {}, "output 'home' is your home folder; choose another -o"


def _home_inside_output(mp):
    nested("out", "old")
    mp.setenv("HOME", str(Path("out/old").absolute()))
    return ["ratings.csv"], "out", {}, "output 'out' holds your home folder; choose another -o"


def _link_to_output(mp):
    built("out")
    Path("link").symlink_to("out")
    msg = "output 'link' is a symbolic link; pass the folder it points to, or choose another -o"
    return ["ratings.csv"], "link", {}, msg


def _dangling_link(mp):
    Path("link").symlink_to("nowhere")
    msg = "output 'link' is a symbolic link; pass the folder it points to, or choose another -o"
    return ["ratings.csv"], "link", {}, msg


def _a_file(mp):
    Path("out.txt").write_text("precious")
    return ["ratings.csv"], "out.txt", {}, "output 'out.txt' is a file, not a folder; remove it or choose another -o"


REFUSALS: dict[str, Setup] = {
    "project-folder": _proj,
    "thesis-folder": _thesis,
    "output-plus-user-file": _user_file,
    "output-plus-user-folder": _user_folder,
    "output-plus-empty-folder": _user_empty_folder,
    "another-build-inside": _other_build_inside,
    "odd-file-name": _odd_file_name,
    "listed-file-is-a-link": _listed_file_is_a_link,
    "meta-not-seqprep": _foreign_meta,
    "meta-future-format": _future_format,
    "meta-format-true": _bool_format,
    "meta-missing-keys": _meta_without_keys,
    "meta-lists-outside": _meta_lists_outside,
    "meta-is-a-link": _meta_is_a_link,
    "meta-not-json": _meta_not_json,
    "input-inside": _input_inside,
    "input-glob-inside": _input_glob_inside,
    "input-through-link": _input_through_link,
    "output-through-dotdot": _output_through_dotdot,
    "input-is-output": _input_is_output,
    "vocab-from-inside": _vocab_inside,
    "cwd-is-output": _cwd_is_output,
    "cwd-is-output-by-path": _cwd_is_output_by_path,
    "cwd-inside-output": _cwd_inside_output,
    "home-is-output": _home_is_output,
    "home-inside-output": _home_inside_output,
    "link-to-output": _link_to_output,
    "dangling-link": _dangling_link,
    "a-file": _a_file,
}

ENGINES = {
    "local": {},
    "memory-limit": {"memory_limit": "64MiB"},
    "dask": {"engine": "dask", "scheduler": "tcp://127.0.0.1:9"},  # never contacted: refused first
}


def _cli_args(inputs: list[str], out: str, options: dict[str, Any]) -> list[str]:
    args = ["build", *inputs, "-o", out, "--overwrite", "-q"]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty current folder holding ratings.csv; HOME outside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path.parent))
    Path("ratings.csv").write_text(TIES_CSV)
    return tmp_path


def _tripwire(monkeypatch) -> None:
    """The first step of any build fails the test: a refusal must come before it."""

    def started(*args, **kwargs):
        raise AssertionError("the build started before OUT was checked")

    monkeypatch.setattr(local_engine, "read_log", started)
    monkeypatch.setattr(dask_engine, "client_for", started)


@pytest.mark.parametrize("face", ["cli", "api"])
@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_before_any_work_and_nothing_moves(workdir, monkeypatch, case, engine, face):
    if engine == "dask":
        pytest.importorskip("distributed")
    inputs, out, options, expected = REFUSALS[case](monkeypatch)
    before = tree(workdir)
    _tripwire(monkeypatch)
    options = {**options, **ENGINES[engine]}
    if face == "cli":
        r = CliRunner().invoke(cli, _cli_args(inputs, out, options))
        assert (r.exit_code, r.stderr) == (1, f"Error: {expected}\n"), r.exception
    else:
        with pytest.raises(OutputError) as e:
            seqprep.build(inputs, out, overwrite=True, **options)
        assert str(e.value) == expected
    assert tree(workdir) == before


def test_existing_output_without_overwrite_keeps_its_message(workdir):
    built("out")
    Path("out/notes.txt").write_text("x")
    before = tree(workdir)
    r = CliRunner().invoke(cli, ["build", "ratings.csv", "-o", "out"])
    assert r.stderr == "Error: output 'out' already exists; pass --overwrite to replace it, or choose another -o\n"
    Path("link").symlink_to("nowhere")  # a dangling link exists too (it is refused before any work now)
    r = CliRunner().invoke(cli, ["build", "ratings.csv", "-o", "link"])
    assert r.stderr == "Error: output 'link' already exists; pass --overwrite to replace it, or choose another -o\n"
    assert tree(workdir) == {**before, "link": "link -> nowhere"}


# --------------------------------------------------------------------------------------------------
# What is replaced, as before


def _fresh(name: str, log: str = "ratings.csv", **options: Any) -> dict[str, str]:
    """The tree of a fresh build into ``name`` (then removed)."""
    out = built(name, log, overwrite=True, **options)
    t = tree(out)
    shutil.rmtree(out)
    return t


def _earlier_with_everything() -> None:
    built("out", formats=("parquet", "npz"), split="loo", exports=("recbole", "sasrec"), windows="2:1")


def _earlier_missing_a_file() -> None:
    (built("out", formats=("parquet", "npz")) / "sequences.npz").unlink()


def _earlier_hand_edited() -> None:  # names are checked, not contents (seqprep verify checks those)
    (built("out") / "items.parquet").write_bytes(b"edited")


ACCEPTED: dict[str, Callable[[], Any]] = {
    "empty-folder": lambda: Path("out").mkdir(),
    "earlier-output": lambda: built("out"),
    "earlier-output-with-everything": _earlier_with_everything,
    "earlier-output-missing-a-file": _earlier_missing_a_file,
    "earlier-output-hand-edited-file": _earlier_hand_edited,
}


@pytest.mark.parametrize("face", ["cli", "api"])
@pytest.mark.parametrize("engine", ["local", "memory-limit"])
@pytest.mark.parametrize("case", list(ACCEPTED))
def test_replaceable_outputs_are_replaced_byte_for_byte(workdir, case, engine, face):
    options = ENGINES[engine]
    expected = _fresh("out", **options)
    ACCEPTED[case]()
    if face == "cli":
        r = CliRunner().invoke(cli, _cli_args(["ratings.csv"], "out", options))
        assert r.exit_code == 0, r.output
    else:
        seqprep.build("ratings.csv", "out", overwrite=True, **options)
    assert tree(workdir / "out") == expected  # the same bytes as a fresh build
    assert sorted(p.name for p in workdir.iterdir()) == ["out", "ratings.csv"]  # no temporary litter


def test_meta_keys_are_what_every_build_writes(workdir):
    for options in ({}, {"formats": ("npz",), "split": "loo", "exports": ("seqlines",)}, {"session_gap": "5"}):
        meta = json.loads((built("out", overwrite=True, **options) / "meta.json").read_text())
        assert atomic.META_KEYS <= meta.keys()
        assert meta["format_version"] in atomic.META_FORMAT_VERSIONS
    assert FORMAT_VERSION in atomic.META_FORMAT_VERSIONS


# --------------------------------------------------------------------------------------------------
# Re-encoding a build in place: --vocab-from OUT -o OUT


def _without_paths(meta: dict[str, Any]) -> dict[str, Any]:
    m = json.loads(json.dumps(meta))
    m["options"].pop("output")
    m["options"]["vocab"].pop("vocab_from")
    m["vocab_reuse"].pop("from")
    return m


@pytest.mark.parametrize("mode", [{}, {"extend": True}, {"unknown": "oov"}], ids=["drop", "extend", "oov"])
def test_re_encoding_in_place_reads_the_old_vocabulary_whole_first(workdir, monkeypatch, mode):
    Path("week2.csv").write_text(LOG_2)
    built("out")
    shutil.copytree("out", "copy")
    built("elsewhere", "week2.csv", vocab_from="copy", overwrite=True, **mode)  # the reference: OLD stays

    swapped: list[Path] = []
    real_swap, real_load = atomic.swap_in, seqprep.steps.reuse.load_reference

    def swap(tmp, out, *args, **kwargs):
        real_swap(tmp, out, *args, **kwargs)
        swapped.append(out)

    def load(path):
        assert not swapped, "the old vocabulary was read after the swap"
        return real_load(path)

    monkeypatch.setattr("seqprep.output.folder.swap_in", swap)
    monkeypatch.setattr(seqprep.steps.reuse, "load_reference", load)
    r = CliRunner().invoke(cli, ["build", "week2.csv", "--vocab-from", "out", "-o", "out", "--overwrite", "-q"]
                           + [f"--{k}" if v is True else f"--{k}={v}" for k, v in mode.items()])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert swapped == [Path("out")]
    a, b = tree(workdir / "out"), tree(workdir / "elsewhere")
    assert {k: v for k, v in a.items() if k != "meta.json"} == {k: v for k, v in b.items() if k != "meta.json"}
    meta_a = json.loads(Path("out/meta.json").read_text())
    meta_b = json.loads(Path("elsewhere/meta.json").read_text())
    assert _without_paths(meta_a) == _without_paths(meta_b)
    assert meta_a["vocab_reuse"]["from"] == "out"
    old = seqprep.load("copy")
    new = seqprep.load("out")
    n = old.num_items
    assert new.item_vocab.ids.slice(0, n).equals(old.item_vocab.ids)  # item 17 stays item 17
    assert sorted(p.name for p in workdir.iterdir()) == ["copy", "elsewhere", "out", "ratings.csv", "week2.csv"]


# --------------------------------------------------------------------------------------------------
# OUT changes while the build runs: checked again under the lock, and on the old OUT moved aside


def _during_build(monkeypatch, action: Callable[[], None]) -> None:
    """Run ``action`` once, when the build writes items.parquet into its temporary folder."""
    from seqprep.output import files, folder

    real = files.write_parquet
    done: list[bool] = []

    def write_parquet(table, path):
        if not done:
            done.append(True)
            action()
        real(table, path)

    monkeypatch.setattr(folder, "write_parquet", write_parquet)  # the local engine's items.parquet
    monkeypatch.setattr(files, "write_parquet", write_parquet)  # the Dask engine's


def _add_notes():
    Path("out/notes.txt").write_text("written while the build ran")


def _make_link():
    shutil.move("out", "real")
    Path("out").symlink_to("real")


def _appear_with_files():
    Path("out").mkdir()
    Path("out/train.py").write_text("code")


CHANGES = {
    "file-added": (True, _add_notes, "'out' holds files seqprep did not write (notes.txt); choose another -o"),
    "became-a-link": (
        True,
        _make_link,
        "output 'out' is a symbolic link; pass the folder it points to, or choose another -o",
    ),
    "appeared-holding-files": (
        False,
        _appear_with_files,
        "'out' holds files seqprep did not write (train.py); choose another -o",
    ),
}


def _changed_during_build(workdir, monkeypatch, case: str, log: str = "ratings.csv", **options: Any) -> None:
    existing, change, expected = CHANGES[case]
    if existing:
        built("out", log, **options)
    after: dict[str, dict[str, str]] = {}

    def act():
        change()
        after["tree"] = tree(workdir)

    _during_build(monkeypatch, act)
    with pytest.raises(OutputError) as e:
        seqprep.build(log, "out", overwrite=True, item_order="id", **options)
    assert str(e.value) == expected
    litter = [k for k in tree(workdir) if ".tmp-" in k or ".old-" in k]
    assert litter == []
    assert tree(workdir) == {k: v for k, v in after["tree"].items() if ".tmp-" not in k}


@pytest.mark.parametrize("case", list(CHANGES))
@pytest.mark.parametrize("engine", ["local", "memory-limit"])
def test_output_changed_while_building_is_left_as_it_is(workdir, monkeypatch, case, engine):
    _changed_during_build(workdir, monkeypatch, case, **ENGINES[engine])


def test_a_file_written_after_the_last_check_is_never_deleted(workdir, monkeypatch):
    """Between the check under the lock and the move aside another program writes into OUT (it takes
    no lock): the old OUT, checked again where it was moved, goes back with the file."""
    built("out")
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst).name == "previous":
            Path(src, "late.txt").write_text("just in time")
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(OutputError) as e:
        seqprep.build("ratings.csv", "out", overwrite=True, item_order="id")
    assert str(e.value) == "'out' holds files seqprep did not write (late.txt); choose another -o"
    assert json.loads(Path("out/meta.json").read_text())["item_order"] == "frequency"  # the old OUT, back
    assert Path("out/late.txt").read_text() == "just in time"
    assert sorted(p.name for p in workdir.iterdir()) == ["out", "ratings.csv"]


# --------------------------------------------------------------------------------------------------
# The guard itself: refused exactly when something in the folder is not listed


_NAMES = st.text(string.ascii_lowercase[:3], min_size=1, max_size=2)
_PATHS = st.lists(_NAMES, min_size=1, max_size=3).map("/".join)


@settings(max_examples=60, deadline=None)
@given(present=st.sets(_PATHS, min_size=1, max_size=8), listed=st.sets(_PATHS, max_size=8))
def test_replaceable_exactly_when_every_file_is_listed(present, listed):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d, "out")
        out.mkdir()
        files = set()
        for rel in sorted(present, key=len):
            p = out / rel
            if any(q.is_file() for q in p.parents) or p.exists():
                continue  # a prefix is a file already
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(rel)
            files.add(rel)
        meta = {k: None for k in atomic.META_KEYS}
        meta.update(format_version=1, outputs={"files": {f: {} for f in listed}})
        (out / "meta.json").write_text(json.dumps(meta))
        before = tree(out)
        unlisted = files - {PurePosixPath(f).as_posix() for f in listed}
        foreign = atomic.foreign_entries(out)
        if unlisted:
            with pytest.raises(OutputError, match="holds files seqprep did not write"):
                atomic.check_replaceable(out)
        else:
            atomic.check_replaceable(out)
        assert bool(foreign) == bool(unlisted)
        for entry in foreign:  # each named entry is, or holds, a file that is not listed
            assert any(f == entry or f.startswith(entry) for f in unlisted), (entry, unlisted)
        assert tree(out) == before


# --------------------------------------------------------------------------------------------------
# The Dask engine: its nested sequences/part-*.parquet outputs are seqprep's




def _dask(scheduler: str) -> dict[str, Any]:
    return {"engine": "dask", "scheduler": scheduler, "part_rows": 3, "block_bytes": 2048}


#: The log by its absolute path: the cluster's workers keep the folder they were started in.
def _abs_log(workdir: Path) -> str:
    return str(workdir / "ratings.csv")


@pytest.mark.parametrize("first,second", [("empty", "dask"), ("dask", "dask"), ("dask", "local"), ("local", "dask")])
def test_dask_outputs_replace_and_are_replaced(workdir, scheduler, first, second):
    engines = {"local": {}, "dask": _dask(scheduler)}
    log = _abs_log(workdir)
    expected = _fresh("out", log, **engines[second])
    if first == "empty":
        Path("out").mkdir()
    else:
        built("out", log, overwrite=True, **engines[first])
    if first == "dask":
        assert "sequences/part-00001.parquet" in tree(workdir / "out")  # several nested parts
    seqprep.build(log, "out", overwrite=True, **engines[second])
    assert tree(workdir / "out") == expected
    assert sorted(p.name for p in workdir.iterdir()) == ["out", "ratings.csv"]


def test_dask_output_with_a_user_file_in_its_parts_folder_is_refused(workdir, scheduler):
    log = _abs_log(workdir)
    built("out", log, **_dask(scheduler))
    Path("out/sequences/notes.txt").write_text("mine")
    before = tree(workdir)
    r = CliRunner().invoke(
        cli, ["build", log, "-o", "out", "--overwrite", "--engine", "dask", "--scheduler", scheduler]
    )
    assert r.stderr == "Error: 'out' holds files seqprep did not write (sequences/notes.txt); choose another -o\n"
    assert tree(workdir) == before


@pytest.mark.parametrize("case", list(CHANGES))
def test_dask_output_changed_while_building_is_left_as_it_is(workdir, monkeypatch, scheduler, case):
    _changed_during_build(workdir, monkeypatch, case, _abs_log(workdir), **_dask(scheduler))
