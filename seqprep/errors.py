"""seqprep's error hierarchy, and the builders of the messages more than one module raises.

Every message is one line that names the problem *and* the fix, e.g.
``column 'timestamp' not found; columns are userId, movieId, rating, ts - pass --time-col ts``.
The CLI turns any :class:`SeqprepError` into ``Error: <message>`` and exit code 1; library code never
prints or exits. Only known input and output failures become a :class:`SeqprepError`: an unexpected
exception (a ``TypeError``, a ``KeyError``: a bug) is never relabelled "check the input".

A message raised in several places is built once, here (``empty_log``, ``no_rows_left``, ...), so
every engine says the same thing about the same input.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ColumnError",
    "ConfigError",
    "InputError",
    "OutputError",
    "SeqprepError",
    "damaged_output",
    "empty_log",
    "input_is_folder",
    "input_not_found",
    "mixed_time_kinds",
    "needs_rating_column",
    "no_glob_match",
    "no_rows_left",
    "none_left",
    "one_line",
    "strict_missing",
    "where_flag",
    "where_message",
    "write_failed",
]


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


def one_line(text: object, limit: int = 300) -> str:
    """Any text (a library's error message) as one line of at most ``limit`` characters.

    >>> one_line("a\\n  b   c")
    'a b c'
    """
    return " ".join(str(text).split())[:limit]


def column_list(names: Iterable[object]) -> str:
    """Column names for a message, comma-separated; a name holding a newline, tab or other
    unprintable character is shown quoted with escapes, so the message stays one line.

    >>> column_list(["user", "a\\nb"])
    "user, 'a\\\\nb'"
    """
    return ", ".join(n if isinstance(n, str) and n.isprintable() else repr(n) for n in names)


def empty_log(paths: Iterable[str]) -> InputError:
    return InputError(f"the log is empty: no interaction rows in {', '.join(paths)}; check the input")


def no_rows_left(rows: int) -> InputError:
    msg = f"no interactions left: all {rows} rows have a missing user, item or timestamp; check the columns chosen"
    return InputError(msg)


def strict_missing(n_bad: int, where: str) -> InputError:
    msg = (
        f"{n_bad} rows have a missing user, item or timestamp (first at {where}); "
        "fix them, or drop --strict to skip and count them"
    )
    return InputError(msg)


def none_left(step: str, fix: str) -> InputError:
    return InputError(f"no interactions left after the {step} step; {fix}")


def needs_rating_column() -> InputError:
    msg = "--min-rating needs a rating column, but the log has none; pass --rating-col NAME, or drop --min-rating"
    return InputError(msg)


def input_not_found(spec: str) -> InputError:
    return InputError(f"input file {spec!r} not found; check the path")


def input_is_folder(spec: str) -> InputError:
    return InputError(f"input {spec!r} is a folder; pass the log file(s) inside it, e.g. {spec.rstrip('/')}/*.csv")


def no_glob_match(spec: str) -> InputError:
    return InputError(f"no file matches {spec!r}; check the pattern (quote it so the shell does not expand it)")


def mixed_time_kinds() -> InputError:
    msg = "some inputs have numeric epoch timestamps and others ISO-8601 dates; use one kind of timestamp in every input"
    return InputError(msg)


def damaged_output(folder: str, file: str, reason: object) -> InputError:
    """A file of a built folder (meta.json, items.parquet, ...) that cannot be read as seqprep wrote it.

    >>> str(damaged_output("out", "items.parquet", "Parquet file size is 0 bytes"))
    "'out': items.parquet cannot be read (Parquet file size is 0 bytes); the folder is damaged - run seqprep verify out to see what, and rebuild it with seqprep build"
    """
    msg = (
        f"{folder!r}: {file} cannot be read ({one_line(reason, 200)}); the folder is damaged - "
        f"run seqprep verify {folder} to see what, and rebuild it with seqprep build"
    )
    return InputError(msg)


def write_failed(reason: str) -> OutputError:
    """The one-line error of a failed write into the output folder (a full disk, a lost mount)."""
    return OutputError(f"cannot write the output: {reason}; free some space or choose another -o")


def where_message(expr: str, detail: str) -> str:
    """A message about one ``--where`` predicate, which it quotes as a shell would need it.

    >>> print(where_message("price >> 0", "unexpected '>' at character 8; ..."))
    --where "price >> 0": unexpected '>' at character 8; ...
    """
    return f"{where_flag(expr)}: {detail}"


def where_flag(expr: str) -> str:
    """``--where "EXPR"`` (in single quotes when EXPR holds a double quote)."""
    return f'--where "{expr}"' if '"' not in expr else f"--where '{expr}'"
