"""What an install ships: the ``py.typed`` marker (PEP 561) that docs/install.md promises."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


def test_py_typed_is_named_as_package_data():
    """Named in pyproject.toml, not left to setuptools' defaults (only setuptools >= 69 adds it alone)."""
    assert (ROOT / "seqprep" / "py.typed").is_file()
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["seqprep"]


def _can_build_wheels() -> bool:
    """setuptools >= 70.1 builds wheels itself; an older one needs the ``wheel`` package."""
    import setuptools

    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def test_the_built_package_holds_py_typed(tmp_path):
    """Build from a copy of the sources (no build/ or egg-info left in the checkout) with the
    installed setuptools: a wheel where it can build one, else ``build_py``, which lays out exactly
    the files a wheel gets. About a second; no network (no build isolation)."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "seqprep", src / "seqprep", ignore=shutil.ignore_patterns("__pycache__"))
    if _can_build_wheels():
        code = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=src, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        wheel = tmp_path / r.stdout.split()[-1]
        names = set(zipfile.ZipFile(wheel).namelist())
    else:
        lib = tmp_path / "lib"
        cmd = [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(lib)]
        r = subprocess.run(cmd, cwd=src, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        names = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    assert "seqprep/py.typed" in names
    assert "seqprep/cli.py" in names and "seqprep/kernels/vocab.py" in names  # the packages, as a check
