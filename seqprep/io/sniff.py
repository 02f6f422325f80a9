"""What an input is, from its first bytes: its format, a CSV's separator, header and columns, a JSON
Lines file's fields, and which column plays which role (user, item, time, rating)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .. import readers as _impl  # (moving here: the implementation is still in seqprep/readers.py)
from ..config import ReadOptions

__all__ = ["COLUMN_ALIASES", "CsvLayout", "csv_layout", "detect_format", "jsonl_layout", "resolve_columns"]

COLUMN_ALIASES = _impl.COLUMN_ALIASES
resolve_columns = _impl.resolve_columns


@dataclass(frozen=True)
class CsvLayout:
    """A CSV's separator, column names, whether line 1 is a header, and role -> column."""

    sep: str
    names: list[str]
    header: bool
    roles: dict[str, str]


@dataclass(frozen=True)
class _Named:
    name: str
    inner_name: str = ""


def csv_layout(where: str, opts: ReadOptions, head: bytes) -> CsvLayout:
    return CsvLayout(*_impl._csv_layout(_Named(where), opts, head))  # type: ignore[arg-type]


def jsonl_layout(where: str, opts: ReadOptions, head: bytes) -> tuple[dict[str, str], pa.Schema]:
    return _impl._jsonl_layout(_Named(where), opts, head)  # type: ignore[arg-type]


def detect_format(inner_name: str, opts: ReadOptions, head: bytes) -> str:
    return _impl._detect_format(_Named("", inner_name), opts, head)  # type: ignore[arg-type]


