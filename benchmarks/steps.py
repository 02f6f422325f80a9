"""Where one build's time goes: each step of ``seqprep build`` timed in one process, wall and CPU.

Runs ``seqprep build ARGS`` in this process ``--repeat`` times (each a fresh child, so no run warms
the next) with timers around the local engine's public steps - the read, the clean-up steps, the
vocabularies, the sort (with the streamed write of sequences.parquet, when it streams), the split,
the final writes - and prints each step's median wall and CPU seconds (``time.process_time``: all
threads) with their ranges. The child sets up its process as the ``seqprep`` command does
(``OPENBLAS_NUM_THREADS=1``, ``NUMPY_MADVISE_HUGEPAGE=0`` unless set). For reading, never asserted::

    python benchmarks/steps.py /tmp/bench/log25m_shuffled.csv --repeat 3
    PYTHONPATH=/tmp/snap python benchmarks/steps.py LOG --repeat 3 --args "--event-col event"

A step called inside another (the sort inside the vocabularies' caller, say) is timed on its own
and inside its caller; ``total`` is the build from the command's start to its end, imports included.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

#: module -> the public steps timed in it (the local engine imports them by name: timed there)
STEPS = {
    "seqprep.engines.local": (
        "read_log",
        "clean_counted",
        "encode_features",
        "event_feature",
        "fit_vocabularies",
        "sequences_from",
        "derive_time_features",
        "add_sessions",
        "write_outputs",
    ),
    "seqprep.steps.splits": ("decide_parts", "prepare"),
}

CHILD = """
import functools, importlib, json, os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
t0, c0 = time.perf_counter(), time.process_time()
import seqprep.cli
steps, args = json.loads(sys.argv[1]), json.loads(sys.argv[2])
spent = {}
def timed(name, f):
    @functools.wraps(f)
    def g(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return f(*a, **k)
        finally:
            s = spent.setdefault(name, [0.0, 0.0])
            s[0] += time.perf_counter() - w
            s[1] += time.process_time() - c
    return g
for module, names in steps.items():
    mod = importlib.import_module(module)
    for name in names:
        if hasattr(mod, name):
            setattr(mod, name, timed(name, getattr(mod, name)))
seqprep.cli.cli(args, standalone_mode=False)
spent["total"] = [time.perf_counter() - t0, time.process_time() - c0]
print("STEPS " + json.dumps(spent))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--args", default="", help="more seqprep build arguments, one string")
    a = ap.parse_args()
    runs: list[dict[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="seqprep-steps-") as tmp:
        out = Path(tmp) / "out"
        build = ["build", str(Path(a.log).resolve()), "-o", str(out), "--overwrite", "-q", *shlex.split(a.args)]
        env = dict(os.environ)
        if env.get("PYTHONPATH"):  # absolute: the child runs in the temporary folder
            env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
        for k in range(a.repeat):
            r = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(STEPS), json.dumps(build)],
                cwd=tmp, env=env, capture_output=True, text=True, check=False,
            )
            if r.returncode != 0:
                sys.exit(f"seqprep build failed:\n{r.stderr}")
            line = next(x for x in r.stdout.splitlines() if x.startswith("STEPS "))
            runs.append(json.loads(line[len("STEPS ") :]))
            print(f"[{k + 1}/{a.repeat}] total {runs[-1]['total'][0]:.2f} s wall", file=sys.stderr, flush=True)
    names = [n for n in ["total"] + [s for v in STEPS.values() for s in v] if any(n in r for r in runs)]
    print(f"seqprep build {a.log} {a.args}".rstrip() + f": {a.repeat} runs, medians [min-max]")
    print(f"{'step':22s} {'wall s':>22s} {'cpu s':>22s}")
    for n in names:
        wall = [r[n][0] for r in runs if n in r]
        cpu = [r[n][1] for r in runs if n in r]
        print(
            f"{n:22s} {statistics.median(wall):9.3f} [{min(wall):.3f}-{max(wall):.3f}] "
            f"{statistics.median(cpu):9.3f} [{min(cpu):.3f}-{max(cpu):.3f}]"
        )


if __name__ == "__main__":
    main()
