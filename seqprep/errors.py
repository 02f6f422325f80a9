"""seqprep's error hierarchy.

Every message is one line that names the problem *and* the fix, e.g.
``column 'timestamp' not found; columns are userId, movieId, rating, ts - pass --time-col ts``.
The CLI turns any :class:`SeqprepError` into ``Error: <message>`` and exit code 1; library code never
prints or exits.
"""

from __future__ import annotations

__all__ = ["SeqprepError", "ConfigError", "InputError", "ColumnError", "OutputError"]


class SeqprepError(Exception):
    """Base class of every error seqprep raises on purpose."""


class ConfigError(SeqprepError):
    """An option, or a combination of options, is invalid."""


class InputError(SeqprepError):
    """An input file is missing, unreadable or malformed."""


class ColumnError(InputError):
    """A needed column is missing, or several columns match one role."""


class OutputError(SeqprepError):
    """The output location cannot be written (exists, not writable, ...)."""
