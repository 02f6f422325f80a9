"""Time ``seqprep stats FILE --json`` against a bare pyarrow CSV read of the same file.

Both run in their own child process (interpreter start-up and imports included for both alike),
round-robin, ``--repeat`` times; the best wall time of each is kept and the ratio stats / bare is
printed. The target is about 1.5x. Without a PATH, a log of ``--rows`` rows is generated first with
``benchmarks/generate.py`` (numpy, deterministic) into a temporary folder and deleted afterwards.

    python benchmarks/stats_bench.py --rows 5000000 --repeat 3
    python benchmarks/stats_bench.py /tmp/bench/ml25m_user.csv --repeat 3

A benchmark, not a test: the ratio is for reading, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = "import sys, pyarrow.csv as pc; t = pc.read_csv(sys.argv[1]); print(t.num_rows)"
HERE = Path(__file__).resolve().parent


def wall(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of one child process; fails loudly when it fails."""
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0


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
            "seqprep stats --json": [*seqprep_command(), "stats", str(path), "--json"],
        }
        best = {name: float("inf") for name in steps}
        for _ in range(args.repeat):
            for name, cmd in steps.items():
                t = wall(cmd, work)
                best[name] = min(best[name], t)
                print(f"[{name}] {t:.2f}s", file=sys.stderr)
        bare, stats = best["bare pyarrow read_csv"], best["seqprep stats --json"]
        mib = path.stat().st_size / 2**20
        print(f"input {path} ({mib:,.0f} MiB), best of {args.repeat}")
        print(f"bare pyarrow read_csv  {bare:7.2f} s")
        print(f"seqprep stats --json   {stats:7.2f} s")
        print(f"ratio stats / bare     {stats / bare:7.2f}x  (target ~1.5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
