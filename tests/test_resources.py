"""--threads, --memory-limit / sizes, and the progress display (silent unless stderr is a terminal)."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager

import pyarrow as pa
import pytest
from click.testing import CliRunner

from seqprep import build
from seqprep.cli import cli
from seqprep.config import make_config, parse_size
from seqprep.errors import ConfigError
from seqprep.progress import Progress, for_terminal
from seqprep.resources import allow_huge_pages, huge_pages, huge_pages_allowed, limit_threads
from tests.conftest import TIES_CSV


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1.5GiB", 3 * 2**29), ("2048", 2048), (" 3 kb ", 3000), (7, 7)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["4 gigs", "GB", "-1GB", "0", "1e9"])
def test_parse_size_errors_name_the_format(bad):
    with pytest.raises(ConfigError, match=r"write it like 4GB"):
        parse_size(bad, "--memory-limit")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "Error: --threads must be a whole number of at least 1, not 0; pass e.g. --threads 2"),
        (["--memory-limit", "lots"], "Error: --memory-limit 'lots' is not a size; write it like 4GB, 512MiB or 1073741824 (bytes)"),
        (["--block-size", "100"], "Error: --block-size '100' is below 1KiB; pass e.g. --block-size 16MiB"),
    ],
)
def test_resource_option_errors(write, tmp_path, args, message):
    p = write("r.csv", TIES_CSV)
    r = run("build", str(p), "-o", str(tmp_path / "o"), *args)
    assert r.exit_code == 1
    assert r.stderr.strip() == message
    assert not (tmp_path / "o").exists()


def test_threads_do_not_change_the_result_and_are_not_recorded(write, tmp_path):
    p = write("r.csv", TIES_CSV)
    r = run("build", str(p), "-o", str(tmp_path / "a"), "--threads", "1", "--block-size", "1KiB")
    assert r.exit_code == 0, r.output
    assert run("build", str(p), "-o", str(tmp_path / "b")).exit_code == 0
    for name in ("sequences.parquet", "items.parquet", "users.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert "resources" not in meta["options"] and "\"threads\"" not in json.dumps(meta["options"])


def test_limit_threads_restores_pyarrow_pools():
    before = (pa.cpu_count(), pa.io_thread_count())
    with limit_threads(1):
        assert (pa.cpu_count(), pa.io_thread_count()) == (1, 1)
    assert (pa.cpu_count(), pa.io_thread_count()) == before


@pytest.fixture
def numpy_advice():
    """numpy's huge-page switch, turned off for the test and restored after it: ``advice()`` reads it."""
    setter = getattr(pytest.importorskip("numpy._core.multiarray"), "_set_madvise_hugepage", None)
    if setter is None:
        pytest.skip("this numpy has no huge-page switch")

    def advice() -> bool:
        now = setter(False)
        setter(now)
        return bool(now)

    before = setter(False)
    yield advice
    setter(before)
    allow_huge_pages(False)


def test_huge_pages_only_when_allowed_and_wanted_and_as_before_after(numpy_advice):
    assert not huge_pages_allowed()  # (a test process: not the seqprep command)
    with huge_pages(True):
        assert not numpy_advice()  # not allowed
    allow_huge_pages()
    with huge_pages(False):
        assert not numpy_advice()  # not wanted
    with huge_pages(True):
        assert numpy_advice()
    assert not numpy_advice()
    with pytest.raises(KeyError), huge_pages(True):
        raise KeyError("x")
    assert not numpy_advice()


def _scattered_log(rows: int, seed: int = 3) -> str:
    import numpy as np

    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, 2_000, rows), rng.integers(0, 5_000, rows)
    time = rng.integers(1_500_000_000, 1_500_000_000 + 50_000, rows)  # many ties
    lines = "\n".join(f"{u},{i},4.5,{t}" for u, i, t in zip(user.tolist(), item.tolist(), time.tolist()))
    return "userId,movieId,rating,timestamp\n" + lines + "\n"


def test_the_sort_of_scattered_rows_alone_asks_for_huge_pages(write, tmp_path, monkeypatch, numpy_advice):
    """The local engine asks for huge pages around the sort of scattered rows and nowhere else; with
    or without them (arrays of 4 MiB and more: 600,000 rows), the files are byte-identical."""
    import seqprep.engines.local as local

    seen: list[tuple[bool, bool]] = []
    real = local.huge_pages

    @contextmanager
    def spy(wanted: bool):
        with real(wanted):
            seen.append((wanted, numpy_advice()))  # (the advice inside the block)
            yield

    monkeypatch.setattr(local, "huge_pages", spy)
    shuffled = write("s.csv", _scattered_log(600_000))
    in_order = write("o.csv", "userId,movieId,rating,timestamp\n1,5,4.0,10\n1,7,3.0,10\n2,7,5.0,5\n3,9,1.0,1\n")
    build(in_order, tmp_path / "o")
    assert seen == [(False, False)]
    allow_huge_pages()
    for out in ("a", "b"):
        build(shuffled, tmp_path / out)
        allow_huge_pages(False)
    assert seen[1:] == [(True, True), (True, False)]  # asked for both times; allowed the first time only
    assert not numpy_advice()  # as before, after the build
    for name in ("sequences.parquet", "items.parquet", "users.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_python_api_takes_resource_options(write):
    res = build(write("r.csv", TIES_CSV), None, threads=1, memory_limit="1GiB", block_size="4KiB")
    assert res.config.resources.threads == 1 and res.config.resources.memory_limit_bytes == 2**30
    assert make_config(["x"], "o").resources.threads is None


def test_summary_line_and_no_progress_when_piped(write, tmp_path):
    p = write("r.csv", TIES_CSV)
    r = run("build", str(p), "-o", str(tmp_path / "o"))
    assert r.exit_code == 0
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "\r" not in r.stderr and "\x1b" not in r.stderr
    assert "7 rows read from 1 input(s), 7 kept (0 removed); 3 users, 4 items" in lines[0]
    assert " s, peak memory " in lines[0] and lines[0].endswith(" MiB")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not for_terminal(False, io.StringIO()).active  # piped
    assert not for_terminal(True, FakeTty()).active  # --quiet
    assert for_terminal(False, FakeTty()).active
    monkeypatch.setenv("CI", "true")
    assert not for_terminal(False, FakeTty()).active


def test_progress_draws_and_clears_its_line():
    out = FakeTty()
    p = Progress(out, interval=0)
    p.phase("reading x.csv", 2048, "bytes")
    p.update(1024, rows=10)
    p.done()
    text = out.getvalue()
    assert "seqprep: reading x.csv [" in text and " 50% 1.0 KiB/2.0 KiB, 10 rows" in text
    assert text.endswith("\r\x1b[K")


def test_progress_shown_by_build_on_a_terminal(write, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out = FakeTty()
    p = Progress(out, interval=0)
    from seqprep.pipeline import run as run_pipeline

    run_pipeline(make_config([str(write("r.csv", TIES_CSV))], str(tmp_path / "o")), progress=p)
    text = out.getvalue()
    for phase in ("seqprep: reading r.csv", "seqprep: encoding ids", "seqprep: sorting 7 interactions", "seqprep: writing"):
        assert phase in text
