"""What parsing more columns costs pyarrow alone: the floor under what reading them costs a build.

``seqprep build`` reads a requested column (``--event-col``, ``--feature``, a ``--where`` operand)
with pyarrow's CSV reader as it reads the log: text as a dictionary of int32 codes, numbers as
float64 (``jobs/bare_read.py`` types them the same way). This script reads LOG in this one process
(pyarrow imported once, nothing else in the way), ``--repeat`` rounds, interleaved: the plain typed
read of the key columns (ids as text, as seqprep's reader parses them, the rating float32, the
timestamp int64), then the same read with each ``--text`` / ``--number`` column alone, then with all
of them. It prints the median and range of each read's CPU seconds (``time.process_time``: every
thread of this process) and wall seconds, and the extra CPU over the plain read. On one thread by
default (``--threads 1``): a 2-core machine's wall times of a threaded read vary by +-30% from run to
run; the CPU seconds of one thread much less. ``--build`` also runs, in each round, ``seqprep build
LOG`` (plain, in a child process: CPU from ``os.wait4``) and prints the extra parse CPU as a share of
that build's CPU: what part of a build's time the extra columns' parse alone takes. Example::

    python benchmarks/parse_cost.py /tmp/bench/where_25m.csv --text event --number price --repeat 5 --build
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import seqprep_command, warm_cache  # noqa: E402

KEYS = {"userId": pa.string(), "movieId": pa.string(), "rating": pa.float32(), "timestamp": pa.int64()}
TEXT = pa.dictionary(pa.int32(), pa.string())  # seqprep's reader's type of a requested text column


def read_cpu(path: Path, types: dict[str, pa.DataType], threads: bool) -> tuple[float, float]:
    """(CPU s, wall s) of one typed read of the columns ``types`` names, block by block (16 MiB, as
    seqprep's reader), the table materialised."""
    c0, t0 = time.process_time(), time.perf_counter()
    opts = pacsv.ReadOptions(block_size=1 << 24, use_threads=threads)
    table = pacsv.read_csv(path, read_options=opts, convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    del table
    return cpu, wall


def build_cpu(path: Path, work: Path) -> float:
    """CPU seconds (user + sys) of a plain ``seqprep build`` of ``path`` in a child process."""
    proc = subprocess.Popen([*seqprep_command(), "build", str(path), "-o", str(work / "out"), "--overwrite", "-q"], stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"seqprep build {path} failed")
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("log", type=Path, help="a CSV with userId,movieId,rating,timestamp and the extra columns")
    p.add_argument("--text", action="append", default=[], help="a text column, read as a dictionary (repeatable)")
    p.add_argument("--number", action="append", default=[], help="a number column, read as float64 (repeatable)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, choices=(1, 0), default=1, help="1: one thread (default); 0: pyarrow's pool")
    p.add_argument("--build", action="store_true", help="also time a plain seqprep build of LOG each round")
    args = p.parse_args(argv)
    extras = {c: TEXT for c in args.text} | {c: pa.float64() for c in args.number}
    reads = {"plain": KEYS} | {f"+ {c}": {**KEYS, c: t} for c, t in extras.items()}
    if len(extras) > 1:
        reads["+ all"] = {**KEYS, **extras}
    warm_cache(args.log)
    cpu: dict[str, list[float]] = {k: [] for k in reads}
    wall: dict[str, list[float]] = {k: [] for k in reads}
    builds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="seqprep-parse-cost-") as work:
        for r in range(args.repeat):
            for name, types in reads.items():
                c, w = read_cpu(args.log, types, threads=args.threads == 0)
                cpu[name].append(c)
                wall[name].append(w)
            if args.build:
                builds.append(build_cpu(args.log, Path(work)))
            print(f" round {r + 1}/{args.repeat}: " + ", ".join(f"{k} {cpu[k][-1]:.2f}" for k in reads) + (f", build {builds[-1]:.2f}" if builds else ""), flush=True)
    base = statistics.median(cpu["plain"])
    build = statistics.median(builds) if builds else None
    print(f"{args.log} ({'one thread' if args.threads == 1 else 'pyarrow threads'}), {args.repeat} rounds, medians [ranges]")
    print(f"{'read':16s} {'cpu s':>20s} {'wall s':>20s} {'extra cpu s':>12s} {'of plain read':>14s}" + (f" {'of build cpu':>13s}" if build else ""))
    for name in reads:
        c, w = cpu[name], wall[name]
        extra = statistics.median(c) - base
        line = f"{name:16s} {statistics.median(c):8.3f} [{min(c):.2f}-{max(c):.2f}] {statistics.median(w):8.3f} [{min(w):.2f}-{max(w):.2f}] {extra:+12.3f} {100 * extra / base:+13.1f}%"
        if build:
            line += f" {100 * extra / build:+12.1f}%"
        print(line)
    if build is not None:
        print(f"plain seqprep build: {build:.2f} CPU s [{min(builds):.2f}-{max(builds):.2f}]")


if __name__ == "__main__":
    main()
