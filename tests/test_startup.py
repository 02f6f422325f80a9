"""Start-up: ``seqprep --version`` and ``--help`` import click and nothing heavy; the public names of
``seqprep`` load on first use (PEP 562) and all still work; a build still imports pandas up front.

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
assert 'pandas' in sys.modules  # the pipeline imports pandas before any build starts (Ctrl-C safety)
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
