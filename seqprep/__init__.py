"""seqprep: interaction logs -> vocabularies -> time-ordered integer sequences.

>>> import seqprep
>>> seqprep.__version__ >= "0.1"
True
>>> seqprep.build is seqprep.pipeline.build
True

The public names load on first use (PEP 562): ``import seqprep`` alone imports neither pandas,
pyarrow nor numpy, so ``seqprep --version`` and ``seqprep build --help`` start fast. ``seqprep.build``
(or ``from seqprep import build``) imports the pipeline, and with it pyarrow and numpy; a build started
from Python imports pandas before it starts (see :func:`seqprep.resources.settle_arrow_pandas`), one
started by the CLI runs without it (:func:`seqprep.resources.without_pandas`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import ColumnError, ConfigError, InputError, OutputError, SeqprepError
from .version import __version__

if TYPE_CHECKING:  # what type checkers (and readers) see; at run time __getattr__ below loads them
    from .config import BuildConfig, ReadOptions, SplitOptions, make_config
    from .dataset import Dataset, load
    from .pipeline import BuildResult, build, run
    from .verify import VerifyReport, verify
    from .vocab import Vocabulary

__all__ = [
    "__version__",
    "build",
    "run",
    "load",
    "verify",
    "VerifyReport",
    "BuildConfig",
    "ReadOptions",
    "SplitOptions",
    "make_config",
    "BuildResult",
    "Dataset",
    "Vocabulary",
    "SeqprepError",
    "ConfigError",
    "InputError",
    "ColumnError",
    "OutputError",
]

#: Where each lazily loaded public name lives (the modules the ``TYPE_CHECKING`` block imports from).
_LAZY = {
    "BuildConfig": "config",
    "ReadOptions": "config",
    "SplitOptions": "config",
    "make_config": "config",
    "Dataset": "dataset",
    "load": "dataset",
    "BuildResult": "pipeline",
    "build": "pipeline",
    "run": "pipeline",
    "VerifyReport": "verify",
    "verify": "verify",
    "Vocabulary": "vocab",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Face(types.ModuleType):
    """The package module, which keeps ``seqprep.verify`` the function.

    ``verify`` names both a submodule and the function it exports. Importing the submodule (``from
    .verify import ...`` anywhere, first) sets the package's attribute ``verify`` to the module; the
    eager ``from .verify import verify`` used to bind the function over it, and this does the same.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "verify" and isinstance(value, types.ModuleType):
            value = value.verify
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Face
