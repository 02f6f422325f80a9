"""The baseline: read the log into an Arrow table with ``pyarrow.csv.read_csv`` and nothing else.

By default every column has an explicit type (``userId``/``movieId``/``timestamp`` int64,
``rating`` float32 -- the types seqprep keeps), so the read parses straight into typed
columns, as a careful user would; ``--inferred`` lets pyarrow infer the types instead
(what ``run.py``'s ``bare`` step does). Prints the row count and the table's bytes. Example::

    python benchmarks/jobs/bare_read.py /tmp/bench/log.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

COLUMN_TYPES = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32(), "timestamp": pa.int64()}


def read(path: Path, *, inferred: bool = False) -> pa.Table:
    """The log as a materialised table, typed (default) or with inferred column types."""
    convert = pacsv.ConvertOptions() if inferred else pacsv.ConvertOptions(column_types=COLUMN_TYPES)
    return pacsv.read_csv(path, convert_options=convert)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``bare_read.py LOG [--inferred]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="CSV with header userId,movieId,rating,timestamp")
    p.add_argument("--inferred", action="store_true", help="let pyarrow infer the column types")
    args = p.parse_args(argv)
    table = read(args.path, inferred=args.inferred)
    print(table.num_rows, table.nbytes)


if __name__ == "__main__":
    main()
