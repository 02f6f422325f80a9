"""Time ``seqprep stats FILE --json`` against a bare pyarrow CSV read of the same file.

Each step runs in its own child process (interpreter start-up and imports included for all alike),
round-robin, ``--repeat`` times; the best wall time of each is kept, with the CPU time (user + sys)
and peak RSS (both from ``os.wait4``) of that run, and the ratios to bare are printed. The target is about 1.5x.
A third step, ``seqprep read_log``, is seqprep's own reader alone (no stats): the floor of stats. Without a PATH, a log of ``--rows`` rows is generated first with
``benchmarks/generate.py`` (numpy, deterministic) into a temporary folder and deleted afterwards.

    python benchmarks/stats_bench.py --rows 5000000 --repeat 3
    python benchmarks/stats_bench.py /tmp/bench/ml25m_user.csv --repeat 3

A benchmark, not a test: the ratio is for reading, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = "import sys, pyarrow.csv as pc; t = pc.read_csv(sys.argv[1]); print(t.num_rows)"
READ_LOG = (
    "import sys; from seqprep.io import read_log; from seqprep.config import ReadOptions; "
    "print(read_log([sys.argv[1]], ReadOptions()).num_rows)"
)
HERE = Path(__file__).resolve().parent


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one child process; fails loudly when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def seqprep_command() -> list[str]:
    """The seqprep console script next to ``sys.executable``, else ``python -m seqprep``."""
    script = Path(sys.executable).parent / "seqprep"
    return [str(script)] if script.exists() else [sys.executable, "-m", "seqprep"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?", type=Path, help="interaction CSV (default: generate one)")
    p.add_argument("--rows", type=int, default=5_000_000, help="rows of the generated log")
    p.add_argument("--repeat", type=int, default=3, help="runs per step; best wall time kept")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="seqprep-stats-bench-"))
    try:
        path = args.path
        if path is None:
            path = work / "log.csv"
            users = max(100, args.rows // 155)  # ml-25m's mean of ~155 interactions per user
            gen = [sys.executable, str(HERE / "generate.py"), "--rows", str(args.rows), "--users", str(users),
                   "--items", str(max(100, args.rows // 400)), "--seed", "0", "-o", str(path)]
            subprocess.run(gen, check=True)
        path = path.resolve()
        with open(path, "rb") as fh:  # warm the page cache for both steps alike
            while fh.read(1 << 24):
                pass
        steps = {
            "bare pyarrow read_csv": [sys.executable, "-c", BARE, str(path)],
            "seqprep read_log": [sys.executable, "-c", READ_LOG, str(path)],
            "seqprep stats --json": [*seqprep_command(), "stats", str(path), "--json"],
        }
        best: dict[str, tuple[float, float, float]] = {name: (float("inf"), 0.0, 0.0) for name in steps}
        for _ in range(args.repeat):
            for name, cmd in steps.items():
                wall, cpu, rss = measure(cmd, work)
                best[name] = min(best[name], (wall, cpu, rss))
                print(f"[{name}] {wall:.2f}s wall, {cpu:.2f}s CPU, {rss:,.0f} MiB peak", file=sys.stderr)
        bare_wall, bare_cpu, bare_rss = best["bare pyarrow read_csv"]
        mib = path.stat().st_size / 2**20
        print(f"input {path} ({mib:,.0f} MiB), best of {args.repeat}; nproc={len(os.sched_getaffinity(0))}")
        print(f"{'step':<24}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}{'wall/bare':>11}{'CPU/bare':>10}{'RSS/bare':>10}")
        for name, (wall, cpu, rss) in best.items():
            print(
                f"{name:<24}{wall:>8.2f}{cpu:>8.2f}{rss:>10,.0f}{wall / bare_wall:>10.2f}x{cpu / bare_cpu:>9.2f}x"
                f"{rss / bare_rss:>9.2f}x"
            )
        print("target: seqprep stats --json within about 1.5x of bare (wall)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
