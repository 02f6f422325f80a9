"""seqprep: interaction logs -> vocabularies -> time-ordered integer sequences.

>>> import seqprep
>>> seqprep.__version__ >= "0.1"
True
"""

from __future__ import annotations

from .version import __version__  # noqa: E402

from .config import BuildConfig, ReadOptions, SplitOptions, make_config  # noqa: E402
from .dataset import Dataset, load  # noqa: E402
from .errors import ColumnError, ConfigError, InputError, OutputError, SeqprepError  # noqa: E402
from .pipeline import BuildResult, build, run  # noqa: E402
from .verify import VerifyReport, verify  # noqa: E402
from .vocab import Vocabulary  # noqa: E402

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
