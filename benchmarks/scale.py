"""Scale curve of ``seqprep build``: wall time and peak memory at 1M, 5M, 25M and 100M rows.

Each size is a shuffled log with 28-character string user and item ids (like Amazon Reviews 2023),
made once by ``benchmarks/generate.py`` (users = 0.65% and items = 0.24% of rows, the ml-25m
ratios) under ``--data-dir``. Each build runs in its own process; its peak RSS comes from
``os.wait4`` (ru_maxrss of that child only). Per-row figures and ratios against the smallest size
measured in the same run show how close to linear the growth is. Example::

    python benchmarks/scale.py --sizes 1M 5M 25M 100M
    python benchmarks/scale.py --sizes 100M --memory-limit 4GB --delete-data
    python benchmarks/scale.py --sizes 10M --memory-limit 4GB --build-args "--min-user-count 5 --min-item-count 5 --split loo"
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUFFIX = {"K": 10**3, "M": 10**6, "G": 10**9}


def parse_rows(text: str) -> int:
    """``25M`` -> 25_000_000."""
    text = text.strip().upper()
    if text[-1:] in SUFFIX:
        return int(float(text[:-1]) * SUFFIX[text[-1]])
    return int(text)


def data_file(rows: int, folder: Path) -> Path:
    """The log for ``rows`` rows, generated on first use."""
    path = folder / f"str28_{rows}.csv"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            str(HERE / "generate.py"),
            "--rows", str(rows),
            "--users", str(max(100, rows * 65 // 10_000)),
            "--items", str(max(100, rows * 24 // 10_000)),
            "--order", "shuffled",
            "--id-kind", "str28",
            "--seed", "0",
            "-o", str(path),
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
    return path


def measure(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss * 1024


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["1M", "5M", "25M", "100M"], help="rows per log, e.g. 1M 25M")
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/bench-scale"), help="where the logs are generated")
    p.add_argument("--memory-limit", help="also pass --memory-limit to seqprep build (e.g. 4GB)")
    p.add_argument("--threads", type=int, help="pass --threads to seqprep build")
    p.add_argument("--delete-data", action="store_true", help="delete each generated log after its build")
    p.add_argument("--build-args", default="", help="more options for seqprep build, one string (e.g. \"--split loo\")")
    args = p.parse_args(argv)

    rows_list = [parse_rows(s) for s in args.sizes]
    results = []
    for rows in rows_list:
        src = data_file(rows, args.data_dir)
        out = Path(tempfile.mkdtemp(prefix="seqprep-scale-", dir=args.data_dir)) / "out"
        cmd = [sys.executable, "-m", "seqprep", "build", str(src), "-o", str(out), "-q"]
        if args.memory_limit:
            cmd += ["--memory-limit", args.memory_limit]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        cmd += shlex.split(args.build_args)
        wall, peak = measure(cmd)
        results.append((rows, src.stat().st_size, wall, peak))
        print(f"{rows:>12,} rows  {wall:8.1f} s  {peak / 2**20:8.0f} MiB", file=sys.stderr, flush=True)
        shutil.rmtree(out.parent, ignore_errors=True)
        if args.delete_data:
            src.unlink()

    base_rows, _, base_wall, base_peak = results[0]
    limit = f", --memory-limit {args.memory_limit}" if args.memory_limit else ""
    limit += f", {args.build_args}" if args.build_args else ""
    print(f"seqprep build, shuffled str28 logs{limit}; nproc={os.cpu_count()} python={sys.version.split()[0]}")
    print(f"{'rows':>12} {'input MiB':>10} {'wall s':>8} {'peak MiB':>9} {'us/row':>7} {'B/row':>6} {'time/row x':>10} {'mem/row x':>9}")
    for rows, size, wall, peak in results:
        us = wall / rows * 1e6
        bpr = peak / rows
        print(
            f"{rows:>12,} {size / 2**20:>10,.0f} {wall:>8.1f} {peak / 2**20:>9,.0f} {us:>7.2f} {bpr:>6.0f} "
            f"{us / (base_wall / base_rows * 1e6):>10.2f} {bpr / (base_peak / base_rows):>9.2f}"
        )
    print(f"'x' columns: per-row figure relative to the {base_rows:,}-row log of this run.")


if __name__ == "__main__":
    main()
