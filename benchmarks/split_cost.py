"""What a split (or any extra options) costs on top of the plain build, in wall and CPU seconds.

Runs ``seqprep build LOG`` (the baseline) and ``seqprep build LOG ARGS`` for each ``--args``
(repeatable) in turn, each in its own child process, ``--repeat`` rounds, and prints the best wall
time, the best CPU time (user + sys of the child) and the lowest peak RSS (``ru_maxrss``) of each,
all from ``os.wait4``, with the medians and ranges of every run, and their ratios to the baseline. CPU seconds are far less sensitive than wall seconds to other jobs on a shared
machine, so both are shown. ``--bare ARGS`` (repeatable) adds, in the same rounds, pyarrow's bare
typed read of the log (``jobs/bare_read.py LOG ARGS``); the first is the reference of the others,
whose extra seconds are printed as a share of the plain build: what pyarrow's parse of more
columns costs alone, a floor under what reading them can cost a build. For reading, never asserted::

    python benchmarks/split_cost.py /tmp/bench/log5m.csv --args "--split loo" --repeat 4
    python benchmarks/split_cost.py /tmp/bench/where_25m.csv --repeat 3 \
        --args "--where \"event != 'view'\" --where \"price > 0\"" \
        --args "--where \"event in ['view', 'cart', 'buy']\" --where \"price > 0 or price is null\""
    python benchmarks/split_cost.py /tmp/bench/feat25m.csv --repeat 3 \
        --args "--feature genre:cat --feature shop:cat --feature price:num"
    python benchmarks/split_cost.py /tmp/bench/where_25m.csv --repeat 5 --args "--event-col event" \
        --bare "--columns userId,movieId,rating,timestamp" \
        --bare "--columns userId,movieId,rating,timestamp,event --text event" \
        --bare "--columns userId,movieId,rating,timestamp,event,price --text event --number price"
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import seqprep_command, warm_cache  # noqa: E402


def child_env() -> dict[str, str]:
    """This environment with ``PYTHONPATH``'s entries made absolute. The children run in a temporary
    folder: a relative entry (``PYTHONPATH=.``) would name that folder, and they would import the
    installed seqprep instead of the tree under test."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    return env


def imported_from(cwd: Path) -> str:
    """Where the children's ``import seqprep`` comes from (printed: say which tree was measured)."""
    code = "import seqprep, os; print(os.path.dirname(os.path.dirname(seqprep.__file__)))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=child_env(), capture_output=True, text=True, check=True).stdout.strip()


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one child run; stops the script if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, env=child_env())
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
    ap.add_argument(
        "--args", action="append", help="options of a compared build; repeat for several (default: --split loo)"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--bare", action="append", default=[], help="arguments of a bare pyarrow read timed beside (repeatable)"
    )
    ns = ap.parse_args()
    warm_cache(ns.path)
    work = Path(tempfile.mkdtemp(prefix="seqprep-split-cost-"))
    base = [*seqprep_command(), "build", str(ns.path.resolve()), "--overwrite", "-q"]
    variants = {"plain": [], **{a: shlex.split(a) for a in ns.args or ["--split loo"]}}
    bare_read = [sys.executable, str(Path(__file__).resolve().parent / "jobs" / "bare_read.py"), str(ns.path.resolve())]
    bares = {f"bare {a}": [*bare_read, *shlex.split(a)] for a in ns.bare}
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in [*variants, *bares]}
    tree = imported_from(work)
    print(f"seqprep imported from {tree}", file=sys.stderr)
    try:
        for _ in range(ns.repeat):
            for name, extra in variants.items():
                out = str(work / f"out-{len(runs[name])}-{'x' if extra else 'plain'}")
                wall, cpu, rss = measure([*base, "-o", out, *extra], work)
                runs[name].append((wall, cpu, rss))
                shutil.rmtree(out, ignore_errors=True)
                print(f"[{name}] wall {wall:.2f}s cpu {cpu:.2f}s peak {rss:.0f} MiB load {os.getloadavg()[0]:.1f}", file=sys.stderr)
            for name, cmd in bares.items():
                runs[name].append(measure(cmd, work))
                wall, cpu, rss = runs[name][-1]
                print(f"[{name}] wall {wall:.2f}s cpu {cpu:.2f}s peak {rss:.0f} MiB load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: tuple(min(r[i] for r in v) for i in range(3)) for k, v in runs.items()}
    print(f"input {ns.path} ({ns.path.stat().st_size / 2**20:.1f} MiB), best of {ns.repeat}, nproc={os.cpu_count()}, seqprep from {tree}")
    pw, pc, pm = best["plain"]
    for name, (w, c, m) in best.items():
        ratios = "" if name == "plain" else f"   ratio vs plain: wall {w / pw:.2f}x   cpu {c / pc:.2f}x   peak RSS +{m - pm:.0f} MiB"
        print(f"{name:<30} wall {w:7.2f} s   cpu {c:7.2f} s   peak RSS {m:8.0f} MiB{ratios}")
    for name, v in runs.items():  # the spread: medians and ranges of every run
        cols = [(label, [r[i] for r in v]) for i, label in enumerate(("wall s", "cpu s", "peak MiB"))]
        print(f"{name:<30} " + "   ".join(f"{label} median {statistics.median(x):.2f} [{min(x):.2f}..{max(x):.2f}]" for label, x in cols))
    if len(bares) > 1:  # pyarrow's parse of the extra columns, as a share of the plain build (medians)
        med = {k: [statistics.median(r[i] for r in v) for i in range(2)] for k, v in runs.items()}
        ref, plain = med[next(iter(bares))], med["plain"]
        for name in list(bares)[1:]:
            dw, dc = med[name][0] - ref[0], med[name][1] - ref[1]
            print(
                f"{name} - {next(iter(bares))}: wall {dw:+.2f} s = {dw / plain[0]:+.1%} of plain, "
                f"cpu {dc:+.2f} s = {dc / plain[1]:+.1%} of plain (medians)"
            )


if __name__ == "__main__":
    main()
