"""Issue 17's benchmark: ``seqprep build`` against the jobs a user would write instead.

For every log (generated with ``generate.py`` into ``--data-dir``, or given as paths) the
steps below run round-robin (A B C D A B C D ...), ``--repeat`` rounds, each in its own child
process: wall time around the child, CPU (user + sys) and peak RSS from ``os.wait4`` for that
child (``run.measure``). Steps:

* ``bare_typed``    -- ``pyarrow.csv.read_csv`` with an explicit type for every column
  (``jobs/bare_read.py``): the baseline every ratio is taken against;
* ``bare_inferred`` -- the same read with inferred types (``run.py``'s ``bare``), for reference;
* ``polars_eager`` / ``polars_lazy`` -- ``jobs/polars_job.py``, the twenty lines of polars of
  issue 17; the better median of the two is "polars best";
* ``pandas``        -- ``jobs/pandas_job.py`` (slow: ``--skip pandas``);
* ``seqprep``       -- ``python -m seqprep build LOG -o OUT --overwrite``, run from ``--src``;
* ``kcore_loo``     -- the same with ``--min-user-count 5 --min-item-count 5 --split loo``.

Then a start-up group: ``python -c pass``, the floor of a small build (``jobs/floor.py``: a process
that imports pyarrow, reads the sample and writes it as Parquet; then the same with
``pyarrow.compute`` imported too), ``seqprep --version``, ``seqprep build --help`` and a build of
``sample_data/ratings.csv`` (``--startup-only``: this group alone; ``--startup-vs OTHER``: OTHER
checkout's three seqprep steps in the same rounds, with the ratios). Before any timing,
``--src``'s ``seqprep`` package is byte-compiled (``compileall``), as ``pip install`` does: with
``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__``, every run would compile seqprep's sources
again (~0.3 CPU-s), which an installed seqprep never does (``--no-compile`` measures that case). Every output is read back and checked: the jobs must give
seqprep's users, vocabulary, items, timestamps and ratings exactly; ``kcore_loo`` must equal a
k-core computed here from the plain output and a leave-one-out split of its own sequences. A
mismatch is printed and makes the exit code 1.

Logs are MovieLens-25M-shaped (162,541 users, 59,978 items at 25M rows); smaller sizes scale
users and items down in proportion, so rows per user keep ml-25m's distribution. Layouts:
``time`` (users ascending, each user's rows by timestamp), ``item`` (users ascending, items
by id -- the real ml-25m file, ``generate.py --order user``), ``shuffled``. Example::

    python benchmarks/peers.py --sizes 1M 5M --layouts time --repeat 5 --json /tmp/bench/peers.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from run import machine_info, measure, warm_cache

HERE = Path(__file__).resolve().parent
JOBS = HERE / "jobs"
ML25M_ROWS, ML25M_USERS, ML25M_ITEMS = 25_000_000, 162_541, 59_978
LAYOUT_ORDER = {"time": "time", "item": "user", "shuffled": "shuffled"}  # our layout -> generate.py --order
KCORE_LOO_ARGS = ["--min-user-count", "5", "--min-item-count", "5", "--split", "loo"]
OPTIONAL_STEPS = ("bare_inferred", "polars_lazy", "pandas", "kcore_loo", "startup")
TARGETS = {"speedup_vs_polars": 1.4, "rss_vs_bare": 1.3, "kcore_loo_vs_plain": 1.4, "startup_s": 0.15, "sample_s": 0.3}


# ----------------------------------------------------------------------------- logs


@dataclass(frozen=True)
class Log:
    """One input log: a label for the tables, its path, and what it holds when generated here."""

    label: str
    path: Path
    rows: int | None = None
    users: int | None = None
    items: int | None = None
    layout: str | None = None


def parse_size(text: str) -> int:
    """``"1M"`` -> 1_000_000, ``"500k"`` -> 500_000, ``"25000000"`` -> 25_000_000."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    return int(float(digits) * scale)


def scaled_log(size: str, layout: str, data_dir: Path, seed: int) -> Log:
    """The generated log of ``size`` rows: users and items scaled from ml-25m in proportion."""
    rows = parse_size(size)
    users = round(ML25M_USERS * rows / ML25M_ROWS)
    items = round(ML25M_ITEMS * rows / ML25M_ROWS)
    path = data_dir / f"log_r{rows}_u{users}_i{items}_s{seed}_{LAYOUT_ORDER[layout]}.csv"
    return Log(f"{size} {layout}", path, rows, users, items, layout)


def ensure_generated(log: Log, seed: int) -> None:
    """Write ``log.path`` with generate.py unless it exists (written under a temporary name first)."""
    if log.path.exists() or log.rows is None:
        return
    tmp = log.path.with_suffix(".tmp.csv")
    cmd = [sys.executable, str(HERE / "generate.py"), "--rows", str(log.rows), "--users", str(log.users)]
    cmd += ["--items", str(log.items), "--order", LAYOUT_ORDER[str(log.layout)], "--seed", str(seed), "-o", str(tmp)]
    subprocess.run(cmd, check=True)
    tmp.rename(log.path)


# ----------------------------------------------------------------------------- steps


@dataclass
class Step:
    """A command to time and its measurements, one entry per round."""

    name: str
    command: list[str]
    cwd: Path
    outdir: Path | None = None
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    error: str | None = None

    def run_once(self) -> None:
        """Run the command one more time and record it (or its failure, which ends its rounds)."""
        if self.outdir is not None:
            self.outdir.parent.mkdir(parents=True, exist_ok=True)
        wall, cpu, rss, code, _, err = measure(self.command, self.cwd)
        if code != 0:
            self.error = f"exit {code}: {err.strip()}"
            print(f"  [{self.name}] FAILED {self.error}", file=sys.stderr)
            return
        self.walls.append(wall)
        self.cpus.append(cpu)
        self.rss_mib.append(rss)
        print(f"  [{self.name}] {wall:.2f}s wall {cpu:.2f}s cpu {rss:.0f} MiB", file=sys.stderr)


def seqprep_cmd(*args: str) -> list[str]:
    """``python -m seqprep ARGS``; run with cwd = the source checkout so its code is the one timed."""
    return [sys.executable, "-m", "seqprep", *args]


def log_steps(log: Log, out: Path, src: Path, skip: set[str]) -> list[Step]:
    """The steps timed on one log, in round-robin order; each writes into ``out / NAME``."""
    py, path = sys.executable, str(log.path.resolve())

    def job(name: str, script: str, *extra: str) -> Step:
        return Step(name, [py, str(JOBS / script), path, str(out / name), *extra], out, out / name)

    def build(name: str, *extra: str) -> Step:
        return Step(name, seqprep_cmd("build", path, "-o", str(out / name), "--overwrite", *extra), src, out / name)

    steps = [
        Step("bare_typed", [py, str(JOBS / "bare_read.py"), path], out),
        Step("bare_inferred", [py, str(JOBS / "bare_read.py"), path, "--inferred"], out),
        job("polars_eager", "polars_job.py", "--mode", "eager"),
        job("polars_lazy", "polars_job.py", "--mode", "lazy"),
        job("pandas", "pandas_job.py"),
        build("seqprep"),
        build("kcore_loo", *KCORE_LOO_ARGS),
    ]
    return [s for s in steps if s.name not in skip]


def startup_steps(out: Path, src: Path, vs: Path | None = None) -> list[Step]:
    """Interpreter start-up, the floor of a small build (``jobs/floor.py``: pyarrow reads and writes
    the sample, without and with ``pyarrow.compute``), ``--version``, ``build --help`` and a build of
    sample_data/ratings.csv; with ``vs``, the three seqprep steps of that checkout too (`` [vs]``)."""
    sample = str(src / "sample_data" / "ratings.csv")
    floor = [sys.executable, str(JOBS / "floor.py"), sample]
    steps = [
        Step("python -c pass", [sys.executable, "-c", "pass"], out),
        Step("floor: read + write", [*floor, str(out / "floor")], out),
        Step("floor + pa.compute", [*floor, str(out / "floor"), "--compute"], out),
    ]
    for tag, root in (("", src), (" [vs]", vs)):
        if root is None:
            continue
        steps += [
            Step(f"seqprep --version{tag}", seqprep_cmd("--version"), root),
            Step(f"seqprep build --help{tag}", seqprep_cmd("build", "--help"), root),
            Step(
                f"build sample_data{tag}",
                seqprep_cmd("build", sample, "-o", str(out / ("sample-vs" if tag else "sample")), "--overwrite"),
                root,
            ),
        ]
    return steps


def run_rounds(steps: Sequence[Step], rounds: int) -> tuple[float, float]:
    """Run every step once per round, round-robin; return the 1-minute load average before and after."""
    before = os.getloadavg()[0]
    for r in range(rounds):
        print(f" round {r + 1}/{rounds}", file=sys.stderr)
        for step in steps:
            if step.error is None:
                step.run_once()
    return before, os.getloadavg()[0]


# ----------------------------------------------------------------------------- checks


def check_outputs(out: Path, steps: Sequence[Step]) -> list[str]:
    """Run ``peers_check.py`` on the finished outputs in a child process; its ``ok``/``MISMATCH`` lines.

    A child, so that this process stays small: on Linux a child's peak RSS starts from its parent's
    RSS at fork (``ru_maxrss`` survives ``exec``), which would inflate every later measurement.
    """
    names = [s.name for s in steps if s.outdir is not None and s.error is None and s.walls]
    done = subprocess.run(
        [sys.executable, str(HERE / "peers_check.py"), str(out), *names], check=False, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode not in (0, 1) or not lines:
        lines.append(f"MISMATCH: peers_check.py failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return lines


# ----------------------------------------------------------------------------- report


def median(values: Sequence[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``median (min-max)`` of ``values`` times ``scale``."""
    if not values:
        return "-"
    v = [x * scale for x in values]
    return f"{median(v):.{digits}f} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def per_round(num: Step, den: Step, attr: str = "walls") -> list[float]:
    """``num / den`` for each round both completed."""
    return [a / b for a, b in zip(getattr(num, attr), getattr(den, attr))]


def ratio_text(num: Step, den: Step, attr: str = "walls") -> str:
    """Ratio of the medians and, in brackets, the range of the per-round ratios."""
    rounds = per_round(num, den, attr)
    if not rounds:
        return "-"
    return f"{median(getattr(num, attr)) / median(getattr(den, attr)):.2f}x [{min(rounds):.2f}-{max(rounds):.2f}]"


def verdict(value: float, target: float, *, at_least: bool) -> str:
    """``ok`` or ``MISS`` against a target."""
    good = value >= target if at_least else value <= target
    return f"{'ok' if good else 'MISS'} (target {'>=' if at_least else '<='} {target}x)"


def step_table(steps: Sequence[Step], base: Step | None) -> list[str]:
    """One line per step: wall, CPU, peak RSS (median (min-max)) and their ratios to ``base``."""
    head = f"{'step':<22}{'wall s':>20}{'cpu s':>20}{'peak MiB':>20}{'wall/bare':>11}{'cpu/bare':>10}{'rss/bare':>10}"
    lines = [head, "-" * len(head)]
    for s in steps:
        if s.error:
            lines.append(f"{s.name:<22}FAILED: {s.error.splitlines()[-1] if s.error else ''}")
            continue
        ratios = ""
        if base is not None and base.walls:
            ratios = "".join(
                f"{median(getattr(s, a)) / median(getattr(base, a)):>{w}.2f}"
                for a, w in (("walls", 11), ("cpus", 10), ("rss_mib", 10))
            )
        lines.append(f"{s.name:<22}{spread(s.walls):>20}{spread(s.cpus):>20}{spread(s.rss_mib, digits=0):>20}{ratios}")
    return lines


def target_lines(steps: dict[str, Step]) -> list[str]:
    """The issue-17 ratios of one log, each with its per-round range and verdict."""
    bare, sp = steps.get("bare_typed"), steps.get("seqprep")
    if bare is None or sp is None or not (bare.walls and sp.walls):
        return ["(no targets: bare_typed or seqprep missing)"]
    base_spread = (
        f"bare_typed spread: wall {spread(bare.walls)} s = +-{rel_spread(bare.walls):.0%}, "
        f"peak {spread(bare.rss_mib, digits=0)} MiB = +-{rel_spread(bare.rss_mib):.0%}"
    )
    lines = [
        base_spread,
        f"seqprep wall / bare_typed:          {ratio_text(sp, bare)}",
        f"seqprep cpu / bare_typed:           {ratio_text(sp, bare, 'cpus')}",
    ]
    rss = median(sp.rss_mib) / median(bare.rss_mib)
    lines.append(
        f"seqprep peak RSS / bare_typed RSS:  {ratio_text(sp, bare, 'rss_mib')}  "
        f"{verdict(rss, TARGETS['rss_vs_bare'], at_least=False)}"
    )
    polars = [s for n, s in steps.items() if n.startswith("polars") and s.walls]
    if polars:
        best = min(polars, key=lambda s: median(s.walls))
        speedup = median(best.walls) / median(sp.walls)
        lines.append(
            f"speed-up over polars best ({best.name}, wall): {ratio_text(best, sp)}  "
            f"{verdict(speedup, TARGETS['speedup_vs_polars'], at_least=True)}"
        )
        lines.append(f"speed-up over {best.name} (cpu):   {ratio_text(best, sp, 'cpus')}")
    if (pd_step := steps.get("pandas")) is not None and pd_step.walls:
        lines.append(f"speed-up over pandas (wall):         {ratio_text(pd_step, sp)}")
    if (kl := steps.get("kcore_loo")) is not None and kl.walls:
        lines.append(
            f"kcore_loo wall / seqprep wall:       {ratio_text(kl, sp)}  "
            f"{verdict(median(kl.walls) / median(sp.walls), TARGETS['kcore_loo_vs_plain'], at_least=False)}"
        )
        lines.append(f"kcore_loo cpu / seqprep cpu:         {ratio_text(kl, sp, 'cpus')}")
    return lines


def rel_spread(values: Sequence[float]) -> float:
    """Half the min-max range relative to the median."""
    return (max(values) - min(values)) / 2 / median(values)


def startup_table(steps: Sequence[Step]) -> list[str]:
    """Start-up steps in milliseconds with their targets; the sample build's gap above the floor; with
    ``--startup-vs``, each seqprep step against the same step of the other checkout."""
    targets = {"seqprep --version": "startup_s", "seqprep build --help": "startup_s", "build sample_data": "sample_s"}
    head = f"{'step':<27}{'wall ms':>22}{'cpu ms':>22}{'peak MiB':>14}  target"
    lines = [head, "-" * len(head)]
    for s in steps:
        if s.error:
            lines.append(f"{s.name:<27}FAILED: {s.error.splitlines()[-1]}")
            continue
        goal = ""
        if s.name.removesuffix(" [vs]") in targets:
            limit = TARGETS[targets[s.name.removesuffix(" [vs]")]]
            goal = f"{'ok' if median(s.walls) < limit else 'MISS'} (< {limit * 1000:.0f} ms)"
        lines.append(
            f"{s.name:<27}{spread(s.walls, 1000, 0):>22}{spread(s.cpus, 1000, 0):>22}{median(s.rss_mib):>14.0f}  {goal}"
        )
    by_name = {s.name: s for s in steps if not s.error and s.walls}
    floor = by_name.get("floor + pa.compute")
    for tag in ("", " [vs]"):
        sample = by_name.get(f"build sample_data{tag}")
        if floor is not None and sample is not None:
            gap = [1000 * (a - b) for a, b in zip(sample.walls, floor.walls)]
            gap_cpu = [1000 * (a - b) for a, b in zip(sample.cpus, floor.cpus)]
            lines.append(
                f"build sample_data{tag} above the floor + pa.compute, per round: wall {spread(gap, 1, 0)} ms, cpu {spread(gap_cpu, 1, 0)} ms"
            )
    for name in targets:
        a, b = by_name.get(name), by_name.get(f"{name} [vs]")
        if a is not None and b is not None:
            lines.append(f"{name} / [vs]: wall {ratio_text(a, b)}, cpu {ratio_text(a, b, 'cpus')}")
    return lines


def describe(log: Log) -> str:
    """Header text of one log."""
    mib = log.path.stat().st_size / 2**20
    shape = f"{log.rows:,} rows, {log.users:,} users, {log.items:,} items, " if log.rows else ""
    return f"{log.label}: {log.path} ({shape}{mib:,.0f} MiB)"


# ----------------------------------------------------------------------------- driver


def source_info(src: Path) -> dict[str, str]:
    """The seqprep checkout that was timed: path, commit and whether it had local changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(src), *args], check=False, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "src": str(src),
        "commit": git("rev-parse", "--short", "HEAD") or "-",
        "dirty": str(bool(git("status", "--porcelain"))),
    }


def bench_log(log: Log, args: argparse.Namespace, skip: set[str]) -> dict[str, Any]:
    """Time and check one log; print its section; return it for the JSON report."""
    out = args.data_dir / "peers-out" / log.path.stem
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"== {log.label}: {log.path}", file=sys.stderr)
    warm_cache(log.path)
    steps = log_steps(log, out, args.src, skip)
    load = run_rounds(steps, args.repeat)
    checks = check_outputs(out, steps) if "check" not in skip else []
    by_name = {s.name: s for s in steps}
    text = [
        f"== {describe(log)}",
        f"{args.repeat} rounds, round-robin; load avg before/after {load[0]:.2f}/{load[1]:.2f}",
        *step_table(steps, by_name.get("bare_typed")),
        *target_lines(by_name),
        *checks,
    ]
    print("\n".join(text) + "\n", flush=True)
    if not args.keep_outputs:
        shutil.rmtree(out, ignore_errors=True)
    steps_json = [asdict(s) for s in steps]
    return {"log": {**asdict(log), "path": str(log.path)}, "load1": load, "steps": steps_json, "checks": checks}


def bench_startup(args: argparse.Namespace) -> dict[str, Any]:
    """Time the start-up steps; print their section; return it for the JSON report."""
    out = args.data_dir / "peers-out" / "startup"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print("== start-up", file=sys.stderr)
    steps = startup_steps(out, args.src, args.startup_vs)
    load = run_rounds(steps, args.startup_repeat)
    vs = f"; [vs]: {args.startup_vs} @ {source_info(args.startup_vs)['commit']}" if args.startup_vs else ""
    text = [
        f"== start-up: {args.startup_repeat} rounds, round-robin; load avg before/after {load[0]:.2f}/{load[1]:.2f}{vs}",
        *startup_table(steps),
    ]
    print("\n".join(text) + "\n", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return {"load1": load, "steps": [asdict(s) for s in steps]}


def logs_to_run(args: argparse.Namespace) -> list[Log]:
    """The given paths, or the generated logs of every size x layout (generated when missing)."""
    if args.paths:
        return [Log(p.name, p) for p in args.paths]
    logs = [scaled_log(size, layout, args.data_dir, args.seed) for size in args.sizes for layout in args.layouts]
    for log in logs:
        ensure_generated(log, args.seed)
    return logs


def header(args: argparse.Namespace) -> str:
    """What ran where: machine, versions, the seqprep checkout, the command line."""
    m = machine_info()
    polars = metadata.version("polars") if importlib_has("polars") else "-"
    s = source_info(args.src)
    return (
        f"peers.py {' '.join(sys.argv[1:])}\n"
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; nproc={m['nproc']} python={m['python']} pyarrow={m['pyarrow']} "
        f"numpy={m['numpy']} pandas={m['pandas']} polars={polars}; seqprep from {s['src']} @ {s['commit']}"
        f"{' (dirty)' if s['dirty'] == 'True' else ''}"
        f"{' (not byte-compiled)' if args.no_compile else ' (byte-compiled)'}\n"
        "wall/cpu/peak: median (min-max) over the rounds; x/bare: ratio of medians to bare_typed; "
        "[a-b]: range of the per-round ratios"
    )


def importlib_has(pkg: str) -> bool:
    """Whether ``pkg`` is installed."""
    try:
        metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return False
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="*", type=Path, help="logs to time instead of generated ones (MovieLens header)")
    p.add_argument("--sizes", nargs="+", default=["1M", "5M", "25M"], help="rows of the generated logs (1M, 5M, 25M)")
    p.add_argument("--layouts", nargs="+", default=["time"], choices=sorted(LAYOUT_ORDER), help="row orders")
    p.add_argument("--repeat", type=int, default=3, help="rounds per log")
    p.add_argument("--startup-repeat", type=int, default=10, help="rounds of the start-up steps")
    p.add_argument("--skip", action="append", default=[], choices=[*OPTIONAL_STEPS, "check"], help="repeatable")
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/bench"), help="generated logs and outputs")
    p.add_argument("--seed", type=int, default=0, help="generate.py --seed")
    p.add_argument("--src", type=Path, default=HERE.parent, help="seqprep checkout to time (python -m seqprep)")
    p.add_argument("--startup-only", action="store_true", help="time the start-up group only")
    p.add_argument(
        "--startup-vs",
        type=Path,
        default=None,
        help="another seqprep checkout whose start-up steps run in the same rounds",
    )
    p.add_argument("--no-compile", action="store_true", help="do not byte-compile --src's seqprep first")
    p.add_argument("--keep-outputs", action="store_true", help="keep every step's output folder")
    p.add_argument("--json", type=Path, default=None, help="also save everything (each round) as JSON")
    args = p.parse_args(argv)
    args.src, args.data_dir = args.src.resolve(), args.data_dir.resolve()
    args.startup_vs = args.startup_vs.resolve() if args.startup_vs is not None else None
    return args


def main(argv: list[str] | None = None) -> None:
    """Generate what is missing, time every log and the start-up, print the tables, check the outputs."""
    args = parse_args(argv)
    skip = set(args.skip)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    logs = [] if args.startup_only else logs_to_run(args)
    if not args.no_compile:  # as an installed seqprep has its bytecode (pip compiles at install)
        for src in (args.src, args.startup_vs):
            if src is not None:
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "seqprep")], check=True)
    head = header(args)
    print(head + "\n", flush=True)
    report: dict[str, Any] = {"header": head, "machine": machine_info(), "source": source_info(args.src)}
    report["logs"] = [] if args.startup_only else [bench_log(log, args, skip) for log in logs]
    if "startup" not in skip:
        report["startup"] = bench_startup(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    failed = [c for r in report["logs"] for c in r["checks"] if c.startswith("MISMATCH")]
    failed += [f"{s['name']}: {s['error']}" for r in report["logs"] for s in r["steps"] if s["error"]]
    if failed:
        print("FAILED:\n  " + "\n  ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
