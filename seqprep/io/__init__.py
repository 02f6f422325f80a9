"""Reading interaction logs (floor 4): every input, in order, into one canonical :class:`~seqprep.model.Log`.

Supported: MovieLens ``ratings.csv`` / ``u.data`` / ``ratings.dat``, any CSV/TSV (``--sep``,
``--no-header``, ``--names``; RFC 4180 quoting), JSON Lines and Parquet; ``.gz``, ``.bz2``, ``.xz``
and ``.zst`` (detected by their magic bytes, so the extension does not matter); ``-`` for stdin;
globs. Modules: :mod:`~seqprep.io.sources` (files, compression, stdin, sha256),
:mod:`~seqprep.io.sniff` (format, layout, column roles), :mod:`~seqprep.io.columns` (typed ids,
times, ratings), :mod:`~seqprep.io.quoting` (quote-aware row ends), :mod:`~seqprep.io.buffers`,
:mod:`~seqprep.io.ranges` and :mod:`~seqprep.io.stream` (the streaming readers),
:mod:`~seqprep.io.diagnose` (the error paths that name a line), :mod:`~seqprep.io.table` (attribute
tables: a key column and attributes, read with the same readers).

Row order is the input order - files in the order given, then lines in file order - which is the
documented tie-break of every later sort. Ids are read as text and only then typed, so ``007`` and
``7`` never collapse.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from ..config import ReadOptions
from ..errors import InputError, one_line
from ..model import Log
from ..progress import SILENT
from .keys import plan_read, role_of
from .sniff import COLUMN_ALIASES, ColumnRequest
from .sources import expand_inputs
from .stream import DEFAULT_BLOCK_SIZE, stream_log
from .table import read_table as _read_table

__all__ = ["COLUMN_ALIASES", "ColumnRequest", "arrow_errors_as_input_errors", "expand_inputs", "read_log", "read_table", "role_of"]


def arrow_errors_as_input_errors(f: Any) -> Any:
    """A last guard: any pyarrow error left while reading becomes a one-line InputError."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except pa.ArrowException as e:
            if isinstance(e, OSError) and not isinstance(e, pa.ArrowInvalid):
                msg = f"cannot read the input: {one_line(e)}; check that the file is complete and readable"
            else:
                msg = f"cannot read the input: {one_line(e)}; check the input file and the reader options (--sep, --names)"
            raise InputError(msg) from e

    return wrapper


@arrow_errors_as_input_errors
def read_log(
    inputs: tuple[str, ...] | list[str],
    opts: ReadOptions,
    *,
    stdin: BinaryIO | None = None,
    block_size: int | None = None,
    progress: Any = None,
    spill_dir: Path | None = None,
    hash_inputs: bool = True,
    columns: tuple[ColumnRequest, ...] = (),
    operands: tuple[ColumnRequest, ...] = (),
) -> Log:
    """Read every input (in order) into one canonical :class:`Log`, streaming block by block.

    See :mod:`seqprep.io.stream`; the result equals the whole-file reader's (tests/oracle.py). With
    ``hash_inputs=False`` the inputs' sha256 (``InputInfo.sha256``) is None: nothing is hashed.
    ``columns`` are read into ``Log.columns``; ``operands`` (the names a ``--where`` predicate uses)
    too, unless they are the key, item, time or rating column. ``--session-col`` and
    ``--time-col BASE,OFFSET`` are applied here (:mod:`seqprep.io.keys`).
    """
    plan = plan_read(inputs, opts, stdin=stdin, columns=columns, operands=operands)
    log = stream_log(
        inputs,
        plan.opts,
        stdin=plan.stdin,
        block_size=DEFAULT_BLOCK_SIZE if block_size is None else block_size,
        progress=SILENT if progress is None else progress,
        spill_dir=spill_dir,
        hash_inputs=hash_inputs,
        columns=plan.requests,
    )
    return plan.finish(log)


#: Read an attribute table: its key column and the columns asked for (:func:`seqprep.io.table.read_table`),
#: behind the same last guard as :func:`read_log`.
read_table = arrow_errors_as_input_errors(_read_table)
