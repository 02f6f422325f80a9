"""Start-up: ``seqprep --version`` and ``--help`` import click and nothing heavy; the public names of
``seqprep`` load on first use (PEP 562) and all still work; a build from Python imports pandas before
it starts, a build by the CLI never imports it.

Each check runs in a fresh interpreter (``sys.modules`` of this test process holds everything)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import seqprep
from tests.conftest import ROOT

HEAVY = ("pandas", "pyarrow", "numpy")


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter in this checkout; its stdout."""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _loaded_after(code: str) -> list[str]:
    out = _python(f"import json, sys\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    return json.loads(out.splitlines()[-1])


def test_importing_the_cli_imports_nothing_heavy():
    assert _loaded_after("import seqprep.cli") == []
    assert _loaded_after("import seqprep") == []


def test_version_and_help_import_nothing_heavy():
    for args in (["--version"], ["--help"], ["build", "--help"], ["stats", "--help"], ["verify", "--help"]):
        code = f"from seqprep.cli import cli\ntry:\n    cli({args!r}, prog_name='seqprep')\nexcept SystemExit:\n    pass"
        assert _loaded_after(code) == [], args


def test_public_names_load_on_first_use():
    code = """
import seqprep
from seqprep import build
assert build is seqprep.build and callable(build)
assert 'pandas' not in sys.modules
build('sample_data/ratings.csv', write=False)
assert 'pandas' in sys.modules  # a build from Python imports pandas before it starts (Ctrl-C safety)
for name in seqprep.__all__:
    assert getattr(seqprep, name) is not None, name
assert set(seqprep.__all__) <= set(dir(seqprep))
"""
    assert _loaded_after(code) == list(HEAVY)


def test_verify_stays_the_function_whichever_import_comes_first():
    """``seqprep.verify`` names a submodule and the function; importing the submodule first (as the
    CLI's verify command does) must not leave the module in its place."""
    _python(
        "import seqprep\nfrom seqprep.verify import SCHEMAS\n"
        "assert callable(seqprep.verify) and seqprep.verify.__module__ == 'seqprep.verify', seqprep.verify"
    )
    _python("import seqprep\nassert seqprep.verify.__name__ == 'verify'\nimport seqprep.verify\nassert callable(seqprep.verify)")


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="^module 'seqprep' has no attribute 'no_such_name'$"):
        seqprep.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--min-user-count", "5", "--min-item-count", "5", "--split", "loo", "-f", "npz", "-f", "parquet"],
        ["--item-order", "first-seen", "--user-order", "first-seen", "--split", "time:0.8,0.9", "--max-len", "20"],
        ["--memory-limit", "1GB", "--item-order", "first-seen"],
        ["--session-gap", "1h", "--export", "sasrec", "--export", "recbole", "--dedup", "last"],
        ["-o", "-"],
        ["--feature", "rating:cat", "--time-feature", "hour", "--time-feature", "delta", "--split", "loo"],
        ["--item-table", "{items}", "--item-attr", "genres:tokens:|", "--item-attr", "year:num"],
        ["--where", "rating >= 3.5 and timestamp >= '2015-01-01'", "--where", "movieId not in [1, 2]"],
        ["--preset", "sasrec"],
        ["--preset", "srgnn", "--user-col", "userId", "--item-col", "movieId", "--time-col", "timestamp"],
    ],
    ids=[
        "plain",
        "kcore-loo-npz",
        "first-seen-time-split",
        "memory-limit",
        "sessions-exports",
        "stream",
        "features",
        "item-table",
        "where",
        "preset-sasrec",
        "preset-srgnn",
    ],
)
def test_a_cli_build_never_imports_pandas(tmp_path, args):
    """The CLI runs the local engine's build without pandas (seqprep.resources.without_pandas): pyarrow
    then never imports it mid-build, and start-up does not pay for it. Every step must do without it."""
    ref = tmp_path / "ref"
    items = tmp_path / "items.csv"
    items.write_text("movieId,genres,year\n1,Action|Comedy,1995\n2,Drama,\n3,,2001\n")
    args = [a.replace("{items}", str(items)) for a in args]
    out = ["-o", str(tmp_path / "out")] if "-o" not in args else []
    code = f"""
import sys
from seqprep.cli import cli
try:
    cli(['build', 'sample_data/ratings.csv', *{out!r}, '-q', *{args!r}], prog_name='seqprep')
except SystemExit as e:
    assert e.code in (None, 0), e.code
print('PANDAS', 'pandas' in sys.modules, file=sys.stderr)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=False)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr.decode().strip().splitlines()[-1] == "PANDAS False"
    del ref


def _seqprep(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """``python -m seqprep ARGS`` as a process of its own (the path that leaves without teardown)."""
    return subprocess.run([sys.executable, "-m", "seqprep", *args], cwd=ROOT, input=stdin, capture_output=True, check=False)


def test_the_process_leaves_with_the_command_status_and_everything_written(tmp_path):
    """``main`` ends a finished command with ``os._exit`` (no interpreter teardown): the exit status
    is the command's, and stdout, stderr and the output folder are complete by then."""
    ok = _seqprep("build", "sample_data/ratings.csv", "-o", str(tmp_path / "out"), "--json")
    assert ok.returncode == 0, ok.stderr.decode()
    meta = json.loads(ok.stdout)  # the whole JSON document reached the pipe
    assert meta == json.loads((tmp_path / "out" / "meta.json").read_text())
    assert ok.stderr.decode().startswith("seqprep: 2,855 rows read")
    assert _seqprep("verify", str(tmp_path / "out")).returncode == 0
    bad = _seqprep("build", "no_such_file.csv", "-o", str(tmp_path / "bad"))
    assert bad.returncode == 1 and bad.stderr.decode().startswith("Error: ") and not (tmp_path / "bad").exists()
    usage = _seqprep("build", "--no-such-flag")
    assert usage.returncode == 2 and b"No such option" in usage.stderr
    assert _seqprep("--version").stdout.decode().strip().endswith(seqprep.__version__)


def test_a_streamed_build_is_whole_when_the_process_leaves():
    """``-o -``: every byte of the stream is flushed before the process ends (the same bytes each run)."""
    first, second = _seqprep("build", "sample_data/ratings.csv", "-o", "-", "-q"), _seqprep("build", "sample_data/ratings.csv", "-o", "-", "-q")
    assert first.returncode == second.returncode == 0, first.stderr.decode()
    import pyarrow as pa

    table = pa.ipc.open_stream(first.stdout).read_all()  # a cut stream would not read to its end
    assert table.num_rows > 0 and first.stdout == second.stdout


#: Modules of options a plain build does not use: imported by the builds that need them only.
NOT_IN_A_PLAIN_BUILD = (
    "seqprep.kernels.predicates",  # --where
    "seqprep.steps.where",
    "seqprep.engines.spill",  # --memory-limit
    "seqprep.output.stream",  # -o -
    "seqprep.output.exports",  # --export
    "seqprep.output.splits",  # --split, --max-len
    "fractions",  # --split ratio:...
    "numpy.ma",  # pa.array(ndarray) and np.unique import it: 14-16 ms (seqprep.kernels.arrow)
)


def test_a_plain_build_imports_only_what_it_uses(tmp_path):
    code = f"""
import json, sys
from seqprep.cli import cli
try:
    cli(['build', 'sample_data/ratings.csv', '-o', {str(tmp_path / "out")!r}, '-q', '--split', 'none'], prog_name='seqprep')
except SystemExit as e:
    assert e.code in (None, 0), e.code
print(json.dumps([m for m in {NOT_IN_A_PLAIN_BUILD!r} if m in sys.modules]))
"""
    assert json.loads(_python(code).splitlines()[-1]) == []
    # and each comes when its option is given
    where = f"""
import json, sys
from seqprep.cli import cli
try:
    cli(['build', 'sample_data/ratings.csv', '-o', {str(tmp_path / "w")!r}, '-q', '--where', 'rating >= 3', '--split', 'ratio:0.8,0.1,0.1'], prog_name='seqprep')
except SystemExit as e:
    assert e.code in (None, 0), e.code
print(json.dumps([m for m in ('seqprep.kernels.predicates', 'seqprep.steps.where', 'seqprep.output.splits', 'fractions') if m not in sys.modules]))
"""
    assert json.loads(_python(where).splitlines()[-1]) == []


@pytest.mark.parametrize(
    "options",
    [
        ["--split", "loo", "--min-user-count", "5", "--min-item-count", "5"],
        ["--split", "loo", "-f", "npz", "--max-len", "20"],
        ["--split", "time:0.8,0.9", "--time-feature", "hour"],
        ["--feature", "rating:cat"],
    ],
)
def test_common_builds_never_import_numpy_ma(tmp_path, options):
    """numpy.ma costs 14-16 ms of start-up; the arrays of these builds reach pyarrow without it
    (:func:`seqprep.kernels.arrow.from_numpy`). A new ``pa.array(ndarray)`` on their path fails here."""
    code = f"""
import json, sys
from seqprep.cli import cli
try:
    cli(['build', 'sample_data/ratings.csv', '-o', {str(tmp_path / "out")!r}, '-q', *{options!r}], prog_name='seqprep')
except SystemExit as e:
    assert e.code in (None, 0), e.code
print(json.dumps('numpy.ma' in sys.modules))
"""
    assert json.loads(_python(code).splitlines()[-1]) is False


_MAIN_SEES = """
import gc, json, os, sys
import seqprep.pipeline as pipeline
real = pipeline.run
def run(*args, **kwargs):
    seen = {"gc": gc.isenabled(), "frozen": gc.get_freeze_count() > 0, "blas": os.environ.get("OPENBLAS_NUM_THREADS")}
    print("SEEN", json.dumps(seen), file=sys.stderr, flush=True)
    return real(*args, **kwargs)
pipeline.run = run
sys.argv = ["seqprep", "build", "sample_data/ratings.csv", "-o", sys.argv[1], "-q"]
from seqprep.cli import main
main()
"""


@pytest.mark.parametrize("blas", [None, "3"])
def test_the_command_runs_with_the_collector_on_and_one_blas_thread(tmp_path, blas):
    """``main`` holds the garbage collector back only while the command imports the library (the
    build runs with it on, the imports' objects frozen), and asks for one OpenBLAS thread unless the
    environment says otherwise."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if blas is not None:
        env["OPENBLAS_NUM_THREADS"] = blas
    r = subprocess.run(
        [sys.executable, "-c", _MAIN_SEES, str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    seen = json.loads(next(line for line in r.stderr.splitlines() if line.startswith("SEEN "))[5:])
    assert seen == {"gc": True, "frozen": True, "blas": blas or "1"}
    assert (tmp_path / "out" / "meta.json").exists()


_HUGE_PAGES_SEEN = """
import json, os, sys
import seqprep.cli
before = "numpy" in sys.modules  # numpy reads NUMPY_MADVISE_HUGEPAGE once, when it is imported
import seqprep.pipeline as pipeline
real = pipeline.run
def run(*args, **kwargs):
    import seqprep.resources
    seen = {"numpy_before_main": before, "env": os.environ.get("NUMPY_MADVISE_HUGEPAGE"), "sorts": seqprep.resources.huge_pages_allowed()}
    print("SEEN", json.dumps(seen), file=sys.stderr, flush=True)
    return real(*args, **kwargs)
pipeline.run = run
sys.argv = ["seqprep", "build", "sample_data/ratings.csv", "-o", sys.argv[1], "-q"]
seqprep.cli.main()
"""


@pytest.mark.parametrize("huge", [None, "1", "0"])
def test_the_command_asks_numpy_for_no_huge_pages(tmp_path, huge):
    """``main`` sets ``NUMPY_MADVISE_HUGEPAGE=0`` unless the environment sets it, and importing the
    command does not import numpy, so numpy (imported later) reads it; only when ``main`` set it
    may a sort of scattered rows turn the advice on for itself (``resources.huge_pages``): a
    setting of the user's holds for the whole process."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if huge is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = huge
    r = subprocess.run(
        [sys.executable, "-c", _HUGE_PAGES_SEEN, str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    seen = json.loads(next(line for line in r.stderr.splitlines() if line.startswith("SEEN "))[5:])
    assert seen == {"numpy_before_main": False, "env": huge or "0", "sorts": huge is None}
