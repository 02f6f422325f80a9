"""The baseline: read the log into an Arrow table with ``pyarrow.csv.read_csv`` and nothing else.

By default every column has an explicit type (``userId``/``movieId``/``timestamp`` int64,
``rating`` float32 -- the types seqprep keeps), so the read parses straight into typed
columns, as a careful user would; ``--inferred`` lets pyarrow infer the types instead
(what ``run.py``'s ``bare`` step does). ``--columns`` reads only the named columns, and
``--text COL`` / ``--number COL`` type more columns as seqprep's reader types a requested column
(text as a dictionary of int32 codes, numbers as float64): what parsing them costs pyarrow alone,
the floor under what reading them costs a build (``split_cost.py --bare``). ``--exit`` ends the
process without the interpreter's teardown (``os._exit`` once the output is flushed), as the
``seqprep`` command and ``floor.py`` do: ~0.04 s less at 1M rows. Prints the row count and the
table's bytes. Examples::

    python benchmarks/jobs/bare_read.py /tmp/bench/log.csv
    python benchmarks/jobs/bare_read.py /tmp/bench/where_25m.csv --columns userId,movieId,rating,timestamp,event \
        --text event
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

COLUMN_TYPES = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32(), "timestamp": pa.int64()}


def read(
    path: Path,
    *,
    inferred: bool = False,
    columns: list[str] | None = None,
    text: tuple[str, ...] = (),
    number: tuple[str, ...] = (),
) -> pa.Table:
    """The log as a materialised table, typed (default) or with inferred column types; only
    ``columns`` when given; ``text`` columns as dictionaries, ``number`` columns as float64."""
    if inferred:
        convert = pacsv.ConvertOptions(include_columns=columns or [])
    else:
        types = {**COLUMN_TYPES, **{c: pa.dictionary(pa.int32(), pa.string()) for c in text}}
        types.update({c: pa.float64() for c in number})
        convert = pacsv.ConvertOptions(column_types=types, include_columns=columns or [])
    return pacsv.read_csv(path, convert_options=convert)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``bare_read.py LOG [--inferred] [--columns C,..] [--text COL] [--number COL] [--exit]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="CSV with header userId,movieId,rating,timestamp")
    p.add_argument("--inferred", action="store_true", help="let pyarrow infer the column types")
    p.add_argument("--columns", help="comma-separated columns to read (default: all)")
    p.add_argument("--text", action="append", default=[], help="a text column, read as a dictionary (repeatable)")
    p.add_argument("--number", action="append", default=[], help="a number column, read as float64 (repeatable)")
    p.add_argument("--exit", action="store_true", help="end without the interpreter's teardown, as seqprep does")
    args = p.parse_args(argv)
    columns = args.columns.split(",") if args.columns else None
    table = read(args.path, inferred=args.inferred, columns=columns, text=tuple(args.text), number=tuple(args.number))
    print(table.num_rows, table.nbytes, flush=True)
    if args.exit:
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
