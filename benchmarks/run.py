"""Time seqprep against a bare pyarrow CSV read and an idiomatic pandas pipeline.

Every step runs in its own child process (``sys.executable``, i.e. the Python that has
seqprep installed); wall time is measured around the child and peak RSS is the child's
``ru_maxrss`` as returned by ``os.wait4`` for that one child (it covers the child and
any descendants it waited for, never earlier steps).  Steps:

* ``bare``    -- ``pyarrow.csv.read_csv(path)`` with inferred types, materialised; the baseline
  (``jobs/bare_read.py --inferred``; ``peers.py`` uses the typed read instead).
* ``pandas``  -- ``jobs/pandas_job.py``: read_csv, frequency item vocabulary, users by id, stable
  sort by (user, timestamp, row), ``groupby('user').agg(list)``, ``to_parquet``.
* ``seqprep`` -- ``seqprep build PATH -o OUTDIR --overwrite [ARGS]``, once per
  ``--variant NAME="ARGS"`` (default: one plain variant).

Results are ratios against ``bare`` measured in the same run: they are for reading,
never for asserting in tests.  Example::

    python benchmarks/run.py /tmp/bench/ml25m_user.csv --repeat 3 \\
        --variant plain="" --variant kcore_loo="--min-user-count 5 --min-item-count 5 --split loo" \\
        --json /tmp/bench/user.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

JOBS = Path(__file__).resolve().parent / "jobs"


@dataclass
class Result:
    """Measurements of one step over all repeats."""

    step: str
    command: list[str]
    walls: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    outdir: str | None = None
    output_mib: float | None = None
    stdout: str = ""
    error: str | None = None

    @property
    def wall(self) -> float:
        """Best wall time (seconds)."""
        return min(self.walls) if self.walls else float("nan")

    @property
    def rss(self) -> float:
        """Largest peak RSS over the repeats (MiB)."""
        return max(self.rss_mib) if self.rss_mib else float("nan")

    @property
    def cpu(self) -> float:
        """Least CPU time (user + sys, seconds) over the repeats."""
        return min(self.cpus) if self.cpus else float("nan")


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float, int, str, str]:
    """Run ``cmd`` in ``cwd``; return (wall s, CPU s, peak RSS MiB, exit code, stdout, stderr tail).

    ``cwd`` should be a scratch directory so ``python -c`` cannot pick up a source
    checkout (e.g. ./seqprep) instead of the installed package.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text_err = err.read().decode(errors="replace")[-2000:]
        text_out = out.read().decode(errors="replace").strip()[-500:]
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, proc.returncode, text_out, text_err


def seqprep_command() -> list[str]:
    """The seqprep console script next to ``sys.executable``, else ``python -m seqprep``."""
    script = Path(sys.executable).parent / "seqprep"
    if script.exists():
        return [str(script)]
    found = shutil.which("seqprep")
    return [found] if found else [sys.executable, "-m", "seqprep"]


def dir_mib(path: Path) -> float:
    """Total size of the files under ``path`` in MiB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def machine_info() -> dict[str, object]:
    """Describe the machine and package versions used for the run."""

    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "executable": sys.executable,
        **{pkg: version(pkg) for pkg in ("seqprep", "pyarrow", "numpy", "pandas")},
    }


def warm_cache(path: Path) -> None:
    """Read the input once so every step sees the same (warm) page cache."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def parse_variant(text: str) -> tuple[str, str]:
    """``NAME=ARGS`` -> (NAME, ARGS); a bare ``NAME`` means no extra args."""
    name, _, extra = text.partition("=")
    return name.strip(), extra


def build_steps(args: argparse.Namespace, work: Path) -> list[Result]:
    """The commands to time, in order."""
    py = sys.executable
    path = str(args.path.resolve())
    steps = [Result("bare", [py, str(JOBS / "bare_read.py"), path, "--inferred"])]
    if "pandas" not in args.skip:
        out = str(work / "pandas")
        steps.append(Result("pandas", [py, str(JOBS / "pandas_job.py"), path, out], outdir=out))
    variants = [parse_variant(v) for v in args.variant]
    if args.seqprep_args is not None:
        variants.append(("seqprep", args.seqprep_args))
    if not variants:
        variants = [("seqprep", "")]
    if "seqprep" not in args.skip:
        for name, extra in variants:
            step = "seqprep" if name == "seqprep" else f"seqprep[{name}]"
            out = str(work / f"seqprep-{name}")
            cmd = [*seqprep_command(), "build", path, "-o", out, "--overwrite"]
            steps.append(Result(step, cmd + shlex.split(extra), outdir=out))
    return steps


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time all steps (round-robin over repeats) and return the report."""
    load_before = os.getloadavg()[0]
    warm_cache(args.path)
    work = Path(tempfile.mkdtemp(prefix="seqprep-bench-", dir=args.workdir))
    try:
        steps = build_steps(args, work)
        for _ in range(args.repeat):
            for res in steps:
                if res.error:
                    continue
                wall, cpu, rss, code, out, err = measure(res.command, work)
                if code != 0:
                    res.error = f"exit {code}: {err.strip()}"
                    print(f"[{res.step}] FAILED {res.error}", file=sys.stderr)
                    continue
                res.walls.append(wall)
                res.rss_mib.append(rss)
                res.cpus.append(cpu)
                res.stdout = out
                print(f"[{res.step}] {wall:.2f}s wall {cpu:.2f}s cpu {rss:.0f} MiB", file=sys.stderr)
        for res in steps:
            if res.outdir and Path(res.outdir).exists():
                res.output_mib = round(dir_mib(Path(res.outdir)), 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "input": str(args.path),
        "input_mib": round(args.path.stat().st_size / 2**20, 1),
        "repeat": args.repeat,
        "machine": machine_info(),
        "load1": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "steps": [{**asdict(r), "wall": r.wall, "cpu": r.cpu, "rss": r.rss} for r in steps],
    }


def table(report: dict[str, Any]) -> str:
    """Render the report as a fixed-width text table."""
    steps = report["steps"]
    by = {s["step"]: s for s in steps}
    bare, pandas = by["bare"], by.get("pandas")
    head = (
        f"{'step':<24}{'wall s':>9}{'cpu s':>8}{'peak MiB':>10}{'t/bare':>8}{'cpu/bare':>9}{'rss/bare':>9}"
        f"{'vs pandas':>11}{'out MiB':>9}"
    )
    lines = [head, "-" * len(head)]
    for s in steps:
        if s["error"]:
            lines.append(f"{s['step']:<24}  FAILED: {s['error'].splitlines()[-1] if s['error'] else ''}")
            continue
        vs = ""
        if s["step"].startswith("seqprep") and pandas and not pandas["error"]:
            vs = f"{pandas['wall'] / s['wall']:.1f}x"
        out = "" if s["output_mib"] is None else f"{s['output_mib']:.0f}"
        lines.append(
            f"{s['step']:<24}{s['wall']:>9.2f}{s['cpu']:>8.2f}{s['rss']:>10.0f}{s['wall'] / bare['wall']:>8.2f}"
            f"{s['cpu'] / bare['cpu']:>9.2f}{s['rss'] / bare['rss']:>9.2f}{vs:>11}{out:>9}"
        )
    m = report["machine"]
    lines.insert(
        0,
        f"input {report['input']} ({report['input_mib']} MiB), best of {report['repeat']}; "
        f"nproc={m['nproc']} python={m['python']} pyarrow={m['pyarrow']} numpy={m['numpy']} "
        f"pandas={m['pandas']} seqprep={m['seqprep']}; load avg before/after {report['load1']}",
    )
    lines.append(
        "wall: best of the repeats; cpu: user+sys, least of the repeats; peak: largest RSS. "
        "'vs pandas' = times faster than pandas (wall); ratios are vs bare in this same run."
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="interaction CSV (e.g. from generate.py)")
    p.add_argument("--repeat", type=int, default=1, help="runs per step; best wall time kept")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar='NAME="ARGS"',
        help="a seqprep variant with extra build args (repeatable)",
    )
    p.add_argument("--seqprep-args", default=None, help="extra args for a variant named 'seqprep'")
    p.add_argument("--skip", action="append", default=[], choices=["pandas", "seqprep"])
    p.add_argument("--workdir", default=None, help="where outputs go (default: system temp)")
    p.add_argument("--json", type=Path, default=None, help="also save results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table, optionally save JSON."""
    args = parse_args(argv)
    report = run(args)
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if any(step["error"] for step in report["steps"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
