"""The floor under a build of a small log: the process any build must be, doing nothing else.

It imports pyarrow (which imports numpy) with its CSV reader and Parquet writer, reads the log
with a type for every column (``userId``/``movieId``/``timestamp`` int64, ``rating`` float32, as
``bare_read.py``), writes it as one Parquet file into OUT and ends the process without the
interpreter's teardown - as ``seqprep`` does, which also asks for one OpenBLAS thread (set here
the same way). With ``--compute`` it also imports ``pyarrow.compute``, which seqprep's steps use
throughout (no build of seqprep runs without it). ``peers.py`` times it in its start-up group: a
build of ``sample_data/`` cannot be faster than this process. Example::

    python benchmarks/jobs/floor.py sample_data/ratings.csv /tmp/floor [--compute]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

COLUMN_TYPES = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32(), "timestamp": pa.int64()}


def main(argv: list[str]) -> None:
    """Command line: ``floor.py LOG OUT [--compute]`` (no argparse: its import is not part of the floor)."""
    args = [a for a in argv if a != "--compute"]
    if len(args) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    if "--compute" in argv:
        import pyarrow.compute  # noqa: F401
    table = pacsv.read_csv(args[0], convert_options=pacsv.ConvertOptions(column_types=COLUMN_TYPES))
    os.makedirs(args[1], exist_ok=True)
    pq.write_table(table, os.path.join(args[1], "log.parquet"))
    print(table.num_rows, flush=True)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
