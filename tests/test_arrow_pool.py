"""The ``seqprep build`` process allocates with pyarrow's jemalloc pool when pyarrow has one and
nothing chose another (``cli._arrow_pool``); the library and a chosen pool are left alone, and the
pool changes no output byte.

Each check runs in a fresh interpreter: the pool is fixed when pyarrow loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import ROOT

SAMPLE = ROOT / "sample_data" / "ratings.csv"
HAS_JEMALLOC = (
    "#define ARROW_JEMALLOC\n" in (Path(pa.__file__).parent / "include" / "arrow" / "util" / "config.h").read_text()
)


def _run(args: list[str], env: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    full.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, check=False)


def _pool_after(code: str, **env: str | None) -> str:
    r = _run(["-c", f"{code}\nimport pyarrow as pa\nprint(pa.default_memory_pool().backend_name)"], env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no warning from pyarrow about the pool
    return r.stdout.split()[-1]


def _default_pool() -> str:
    return _pool_after("")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jemalloc is chosen on Linux only")
def test_the_command_chooses_jemalloc_when_pyarrow_has_it():
    chosen = _pool_after("from seqprep.cli import _arrow_pool\n_arrow_pool()")
    assert chosen == ("jemalloc" if HAS_JEMALLOC else _default_pool())


def test_a_chosen_pool_is_left_alone():
    assert (
        _pool_after("from seqprep.cli import _arrow_pool\n_arrow_pool()", ARROW_DEFAULT_MEMORY_POOL="system")
        == "system"
    )


def test_nothing_changes_once_pyarrow_is_loaded():
    code = "import pyarrow, os\nfrom seqprep.cli import _arrow_pool\n_arrow_pool()\nassert 'ARROW_DEFAULT_MEMORY_POOL' not in os.environ"
    assert _pool_after(code) == _default_pool()


def test_the_library_does_not_choose():
    assert _pool_after("import seqprep\nseqprep.build('sample_data/ratings.csv', write=False)") == _default_pool()


def _built_files(out: Path) -> dict[str, str]:
    meta = json.loads((out / "meta.json").read_text())
    return {name: f["sha256"] for name, f in meta["outputs"]["files"].items()}


@pytest.mark.skipif(not HAS_JEMALLOC, reason="this pyarrow has no jemalloc pool")
def test_the_pool_changes_no_output_byte(tmp_path):
    outs = {}
    for pool in ("jemalloc", "mimalloc", "system"):
        out = tmp_path / pool
        r = _run(
            ["-m", "seqprep", "build", str(SAMPLE), "-o", str(out), "--split", "loo", "-f", "parquet", "-f", "npz"],
            {"ARROW_DEFAULT_MEMORY_POOL": pool},
        )
        assert r.returncode == 0, r.stderr
        assert "Unsupported backend" not in r.stderr
        outs[pool] = _built_files(out)
    assert outs["jemalloc"] == outs["mimalloc"] == outs["system"]


@pytest.mark.skipif(not HAS_JEMALLOC or not sys.platform.startswith("linux"), reason="this pyarrow has no jemalloc pool")
def test_the_chosen_jemalloc_pool_hands_pages_back_soon():
    """The decay is set only in a process whose pool the command chose (a caller's pool stays)."""
    probe = (
        "import seqprep.cli as c, pyarrow as pa\n"
        "calls = []\n"
        "pa.jemalloc_set_decay_ms = calls.append\n"
        "c._jemalloc_decay()\n"
        "print(calls)\n"
    )
    chose = _run(["-c", "import seqprep.cli as c\nc._arrow_pool()\n" + probe.replace("import seqprep.cli as c, ", "import ")], {})
    assert chose.returncode == 0, chose.stderr
    assert chose.stdout.split()[-1] == "[100]"
    chosen_by_user = _run(["-c", "import seqprep.cli as c\nc._arrow_pool()\n" + probe.replace("import seqprep.cli as c, ", "import ")], {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"})
    assert chosen_by_user.returncode == 0, chosen_by_user.stderr
    assert chosen_by_user.stdout.split()[-1] == "[]"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_steady_heap_sets_both_thresholds_once_unless_the_environment_does(monkeypatch):
    import ctypes

    from seqprep.io import buffers

    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    mmap, trim = (-3, 8 << 20), (-1, 32 << 20)  # M_MMAP_THRESHOLD 8 MiB, M_TRIM_THRESHOLD 32 MiB
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    cases = [
        ({}, [mmap, trim]),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, [trim]),  # the environment's choice stays, each on its own
        ({"MALLOC_TRIM_THRESHOLD_": "1"}, [mmap]),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=1"}, []),
        ({"GLIBC_TUNABLES": "glibc.pthread.rseq=0"}, [mmap, trim]),  # another tunable: ours still apply
    ]
    for env, expected in cases:
        for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        calls.clear()
        monkeypatch.setattr(buffers, "_steady", False)
        buffers.steady_heap()
        buffers.steady_heap()  # (once per process)
        assert calls == expected, env
