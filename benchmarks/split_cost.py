"""What a split (or any extra options) costs on top of the plain build, in wall and CPU seconds and
peak memory.

Runs ``seqprep build LOG`` (the baseline) and ``seqprep build LOG ARGS`` alternately, each in its own
child process, ``--repeat`` times, and prints the best wall time, the best CPU time (user + sys
of the child) and the lowest peak RSS (``ru_maxrss``) of each, all from ``os.wait4``, and their
ratios. CPU seconds are far less sensitive than wall seconds to other jobs on a shared machine, so
both are shown. For reading, never asserted::

    python benchmarks/split_cost.py /tmp/bench/log5m.csv --args "--split loo" --repeat 4
    python benchmarks/split_cost.py /tmp/bench/feat25m.csv --repeat 3 \
        --args "--feature genre:cat --feature shop:cat --feature price:num"
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import seqprep_command, warm_cache  # noqa: E402


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one child run; stops the script if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        msg = f"failed (exit {proc.returncode}): {shlex.join(cmd)}"
        raise SystemExit(msg)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--args", default="--split loo", help="options of the compared build (default: --split loo)")
    ap.add_argument("--repeat", type=int, default=3)
    ns = ap.parse_args()
    warm_cache(ns.path)
    work = Path(tempfile.mkdtemp(prefix="seqprep-split-cost-"))
    base = [*seqprep_command(), "build", str(ns.path.resolve()), "--overwrite", "-q"]
    variants = {"plain": [], ns.args: shlex.split(ns.args)}
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}
    try:
        for _ in range(ns.repeat):
            for name, extra in variants.items():
                out = str(work / f"out-{len(runs[name])}-{'x' if extra else 'plain'}")
                wall, cpu, rss = measure([*base, "-o", out, *extra], work)
                runs[name].append((wall, cpu, rss))
                shutil.rmtree(out, ignore_errors=True)
                load = os.getloadavg()[0]
                print(f"[{name}] wall {wall:.2f}s cpu {cpu:.2f}s peak {rss:.0f} MiB load {load:.1f}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: tuple(min(r[j] for r in v) for j in range(3)) for k, v in runs.items()}
    print(f"input {ns.path} ({ns.path.stat().st_size / 2**20:.1f} MiB), best of {ns.repeat}, nproc={os.cpu_count()}")
    for name, (w, c, m) in best.items():
        print(f"{name:<30} wall {w:7.2f} s   cpu {c:7.2f} s   peak RSS {m:8.0f} MiB")
    (pw, pc, pm), (xw, xc, xm) = best["plain"], best[ns.args]
    print(f"ratio vs plain: wall {xw / pw:.2f}x   cpu {xc / pc:.2f}x   peak RSS +{xm - pm:.0f} MiB")


if __name__ == "__main__":
    main()
