"""The package's layers, checked on the source: every import runs down (or sideways inside one
package of a floor), never up; no module takes a private name of another; no import cycle.

The floors, bottom to top (the one table of them; docs/architecture.md explains each):

==  =========================================  ==============================================
0   version, errors, records, kernels,         pure arrays, errors and their messages, the
    resources, progress                        version, @record, thread caps, the progress display
1   timeunits, vocab                           the time rule; an immutable fitted vocabulary
2   config                                     every option, validated
3   model                                      the data every layer passes on
4   io                                         reading logs: sources, sniffing, columns, streams
5   steps | output | dataset                   one copy of each stage; writers beside; reading OUT
6   engines                                    local (the reference), spill, dask: call the steps
7   pipeline | verify | stats                  pick an engine; readers of built folders
8   seqprep (the face), cli                    the public API and the Click skin
9   __main__                                   ``python -m seqprep``
==  =========================================  ==============================================

On one floor, a module may import modules of its own package only (``steps.clean`` may import
``steps.filters``; ``steps`` may not import ``output``). Modules are parsed with :mod:`ast`, nothing is
imported; imports inside functions and under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import structure  # noqa: E402 - tools/structure.py, the same parser the report uses

FLOORS: dict[int, tuple[str, ...]] = {
    0: (
        "seqprep.version",
        "seqprep.errors",
        "seqprep.records",
        "seqprep.kernels",
        "seqprep.kernels.*",
        "seqprep.resources",
        "seqprep.progress",
    ),
    1: ("seqprep.timeunits", "seqprep.vocab", "seqprep.presets"),
    2: ("seqprep.config",),
    3: ("seqprep.model",),
    4: ("seqprep.io", "seqprep.io.*"),
    5: ("seqprep.steps", "seqprep.steps.*", "seqprep.output", "seqprep.output.*", "seqprep.dataset"),
    6: ("seqprep.engines", "seqprep.engines.*"),
    7: ("seqprep.pipeline", "seqprep.verify", "seqprep.stats", "seqprep.stats.*"),
    8: ("seqprep", "seqprep.cli"),
    9: ("seqprep.__main__",),
}

MODULES = structure.load()


def floor_of(name: str) -> int:
    hits = [f for f, patterns in FLOORS.items() if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
    assert len(hits) == 1, f"{name} is on {len(hits)} floors of the table; put it on exactly one"
    return hits[0]


def package_of(name: str) -> str:
    """``seqprep.steps.clean`` -> ``seqprep.steps``; a top-level module is its own package."""
    parts = name.split(".")
    return ".".join(parts[:2])


def test_every_module_is_on_one_floor():
    for name in MODULES:
        floor_of(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_down_the_floors(name):
    mod = MODULES[name]
    here = floor_of(name)
    wrong = []
    for target, kind, _ in mod.imports:
        if target == name or name.startswith(target + ".") and target == "seqprep":
            continue  # ``from . import __version__`` in the package face reads its own attribute
        there = floor_of(target)
        sideways = there == here and package_of(target) == package_of(name)
        if there > here or (there == here and not sideways):
            wrong.append(f"{target} (floor {there}, {kind} import)")
    assert not wrong, f"{name} (floor {here}) imports up or across: {', '.join(wrong)}"


def test_no_private_name_crosses_a_module():
    assert structure.private_imports(MODULES) == []


def test_no_import_cycle():
    assert structure.cycles(MODULES, type_checking=True) == []
