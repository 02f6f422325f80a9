"""Time the Dask engine against the local engine on the same file, in the same run.

Each build runs as its own ``seqprep build`` child process (so start-up, imports and, for Dask, the
start of its LocalCluster are included alike), the engines round-robin (interleaved) ``--repeat``
times; each figure is reported as the median and the range over the runs. Peak memory is the
largest *sum* of RSS over the child's whole process tree (client, scheduler and any worker processes),
sampled every 0.1 s with psutil (a dependency of dask.distributed); CPU seconds are the child's
user + system time including every process it waited for. ``--baseline-code DIR`` adds a third
engine, the Dask engine of another checkout (e.g. ``main``), for a before/after table in one run.

After the runs, the outputs are loaded and compared (vocabularies and CSR arrays), and one more
Dask build (untimed, in this process, on a LocalCluster of the same kind as the engine's) counts the
tasks the scheduler ran and the bytes moved between workers (the shuffle) and to the client, and
times the build's phases (cluster start, read, cleaning and count tables, shuffle + per-part sort,
the client's writes) with the tree's peak memory in each.

    python benchmarks/dask_bench.py /tmp/bench/ml5m.csv --workers 2 --repeat 3 --json /tmp/bench/dask5m.json

Ratios are against the local engine measured in the same run; never assert them in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(cmd: list[str], cwd: Path | None = None) -> dict[str, Any]:
    """Wall seconds, CPU seconds, peak tree RSS and own peak RSS (MiB) of one child command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.stderr.close() if proc.stderr else None
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    cpu = usage.ru_utime + usage.ru_stime  # the child's and every descendant it waited for
    return {"wall_s": wall, "cpu_s": cpu, "tree_peak_mib": peak / 2**20, "own_peak_mib": usage.ru_maxrss / 1024}


def same_output(a: Path, b: Path) -> bool:
    import numpy as np

    import seqprep

    x, y = seqprep.load(a), seqprep.load(b)
    return (
        x.item_vocab.equals(y.item_vocab)
        and x.user_vocab.equals(y.user_vocab)
        and all(np.array_equal(getattr(x, n), getattr(y, n)) for n in ("offsets", "items", "timestamps", "user_idx"))
    )


#: The Dask engine's phases: (function of seqprep.engines.dask, phase it starts). A function missing
#: (renamed) just merges its phase into the one before.
PHASES = (
    ("_read", "read (pieces, dictionaries)"),
    ("clean_rows", "cleaning + count tables"),
    ("_vocabularies", "vocabularies"),
    ("_parts", "shuffle + per-part sort"),
    ("write_parts", "client's writes"),
    ("write_outputs", "rest of the folder"),
)


class _Phases:
    """Wall seconds and the tree's peak RSS of each phase of one in-process Dask build."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.name, self.t, self.peak = "start-up", time.perf_counter(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            self._stop.wait(0.05)

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.rows.append(
            {
                "phase": self.name,
                "wall_s": now - self.t,
                "tree_peak_mib": max(self.peak, _tree_rss(os.getpid())) / 2**20,
            }
        )
        self.name, self.t, self.peak = name, now, _tree_rss(os.getpid())

    def __enter__(self) -> _Phases:
        import seqprep.engines.dask as engine

        self._saved = {}
        for fname, label in PHASES:
            orig = getattr(engine, fname, None)
            if orig is None:
                continue
            self._saved[fname] = orig

            def timed(*a: Any, _orig: Any = orig, _label: str = label, **k: Any) -> Any:
                self.mark(_label)
                return _orig(*a, **k)

            setattr(engine, fname, timed)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import seqprep.engines.dask as engine

        self.mark("end")
        self._stop.set()
        for fname, orig in self._saved.items():
            setattr(engine, fname, orig)


def cluster_stats(path: Path, workers: int, out: Path, extra: list[str]) -> dict[str, Any]:
    """One more (untimed) Dask build, in this process on a LocalCluster of the engine's own kind
    (:func:`seqprep.engines.dask.client_for`), to count what the timed runs cannot see from outside:
    the tasks the scheduler ran, the bytes moved between workers (the shuffle; Dask's size
    estimate, also between in-process workers) and to the client; and the build's phases."""
    from dask.utils import key_split
    from distributed.diagnostics.plugin import SchedulerPlugin

    import seqprep
    from seqprep.config import EngineOptions
    from seqprep.engines.dask import client_for

    class Count(SchedulerPlugin):
        def __init__(self) -> None:
            self.tasks = 0
            self.compute: dict[str, list[float]] = {}  # task name -> compute seconds of each

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            if start == "processing" and finish == "memory":
                self.tasks += 1
                name = key_split(key)
                seconds = sum(
                    s["stop"] - s["start"] for s in kwargs.get("startstops", ()) if s.get("action") == "compute"
                )
                self.compute.setdefault(name, []).append(seconds)

    def sent(dask_worker: Any) -> int:
        return int(dask_worker.transfer_outgoing_bytes_total)

    def received(dask_worker: Any) -> int:  # from peers only (the shuffle), not from the client
        return int(sum(d.get("total", 0) for d in dask_worker.transfer_incoming_log))

    kw: dict[str, Any] = dict(engine="dask", overwrite=True)
    for flag, key in (("--part-rows", "part_rows"), ("--partition-size", "block_bytes")):
        if flag in extra:
            kw[key] = int(extra[extra.index(flag) + 1])
    with _Phases() as phases:
        with client_for(EngineOptions(engine="dask", workers=workers)) as client:
            phases.mark("build start-up (inputs sniffed)")
            count = Count()
            client.cluster.scheduler.add_plugin(count)
            seqprep.build(str(path), out, scheduler=client.cluster.scheduler_address, **kw)
            phases.mark("cluster close")
            stats = {
                "tasks": count.tasks,
                "task_seconds": {
                    k: {"count": len(v), "total_s": sum(v), "max_s": max(v)} for k, v in count.compute.items()
                },
                "worker_bytes_sent": sum(client.run(sent).values()),
                "peer_bytes_received": sum(client.run(received).values()),
            }
    phases.rows[0]["phase"] = "cluster start"
    return stats | {"phases": phases.rows}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of each figure over the runs."""
    import statistics

    return {
        k: {
            "median": statistics.median(r[k] for r in runs),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
        }
        for k in runs[0]
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="interaction CSV (e.g. from generate.py)")
    p.add_argument("--workers", type=int, default=2, help="workers of the Dask engine's local cluster")
    p.add_argument("--scheduler", default=None, help="use a running scheduler instead of --workers")
    p.add_argument("--part-rows", type=int, default=None, help="passed to seqprep build --part-rows")
    p.add_argument("--partition-size", type=int, default=None, help="passed to seqprep build --partition-size")
    p.add_argument("--repeat", type=int, default=1, help="runs per engine, round-robin (interleaved); medians reported")
    p.add_argument(
        "--baseline-code", type=Path, default=None, help="also time the Dask engine of this checkout (e.g. ../main)"
    )
    p.add_argument(
        "--build-args", default="", help="more seqprep build flags for every engine's timed runs, e.g. '--split loo --vocab-from-train'"
    )
    p.add_argument("--no-stats", action="store_true", help="skip the untimed build that counts tasks, bytes and phases")
    p.add_argument("--workdir", default=None, help="where outputs go (default: system temp)")
    p.add_argument("--json", type=Path, default=None, help="also save results as JSON here")
    args = p.parse_args(argv)
    if args.build_args and not args.no_stats:
        p.error("--build-args times the given flags only; pass --no-stats too (the untimed counting build runs without them)")

    here = Path(__file__).resolve().parents[1]  # this checkout: `python -m seqprep` imports it first
    sys.path.insert(0, str(here))  # and so does this process (the untimed build)

    import dask
    import pyarrow

    import seqprep

    path = args.path.resolve()
    work = Path(tempfile.mkdtemp(prefix="seqprep-dask-bench-", dir=args.workdir)).resolve()
    base = [sys.executable, "-m", "seqprep", "build", str(path), "--overwrite", "-q", *shlex.split(args.build_args)]
    dask_flags = ["--engine", "dask"]
    dask_flags += ["--scheduler", args.scheduler] if args.scheduler else ["--workers", str(args.workers)]
    if args.part_rows:
        dask_flags += ["--part-rows", str(args.part_rows)]
    if args.partition_size:
        dask_flags += ["--partition-size", str(args.partition_size)]
    engines = {
        "local": (base + ["-o", str(work / "local")], here),
        "dask": (base + ["-o", str(work / "dask")] + dask_flags, here),
    }
    if args.baseline_code is not None:
        engines["dask-base"] = (base + ["-o", str(work / "dask-base")] + dask_flags, args.baseline_code.resolve())
    with open(path, "rb") as fh:  # warm the page cache for every engine alike
        while fh.read(1 << 24):
            pass
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in engines}
    for _ in range(args.repeat):
        for name, (cmd, cwd) in engines.items():
            runs[name].append(measure(cmd, cwd))
    summary = {k: _summary(v) for k, v in runs.items()}
    stats = args.scheduler is None and not args.no_stats  # before the comparison loads the outputs here
    cstats: dict[str, Any] = {}
    if stats:
        try:  # the timed runs are kept whatever happens to this one
            cstats = cluster_stats(path, args.workers, work / "dask-stats", dask_flags)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            cstats = {"error": f"{type(e).__name__}: {e}"}
            print(f"the untimed counting build failed: {cstats['error']}", file=sys.stderr)
    identical = {k: same_output(work / "local", work / k) for k in engines if k != "local"}
    meta = json.loads((work / "dask" / "meta.json").read_text())
    report = {
        "machine": {
            "nproc": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
            "seqprep": seqprep.__version__,
            "dask": dask.__version__,
            "pyarrow": pyarrow.__version__,
        },
        "input": {"path": str(path), "bytes": path.stat().st_size, "rows": meta["rows"]["read"]},
        "dask": {
            "flags": dask_flags,
            "engine": meta.get("engine"),
            "baseline_code": str(args.baseline_code) if args.baseline_code else None,
        },
        "summary": summary,
        "runs": runs,
        "identical_output": identical,
        "cluster": cstats,
    }
    loc = summary["local"]
    print(f"# {path} ({report['input']['rows']:,} rows), nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, dask {dask.__version__}, "
          f"dask flags: {' '.join(dask_flags)}, parts {meta['engine']['output_parts']}, {args.repeat} interleaved runs: median [min-max]")  # fmt: skip
    print(
        f"{'engine':10} {'wall s':>20} {'x local':>7} {'cpu s':>20} {'x local':>7} {'tree peak MiB':>20} {'x local':>7}"
    )
    for name, r in summary.items():
        cells = []
        for key, fmt in (("wall_s", "{:.1f}"), ("cpu_s", "{:.1f}"), ("tree_peak_mib", "{:.0f}")):
            f = r[key]
            cells.append(f"{fmt.format(f['median'])} [{fmt.format(f['min'])}-{fmt.format(f['max'])}]".rjust(20))
            cells.append(f"{f['median'] / loc[key]['median']:7.2f}")
        print(f"{name:10} " + " ".join(cells))
    for name, same in identical.items():
        print(
            f"{name}: identical output to local (vocabularies, offsets, items, timestamps, user_idx): {'yes' if same else 'NO'}"
        )
    if cstats and "error" not in cstats:
        print(f"dask build (untimed, in-process rerun): {cstats['tasks']} tasks, workers sent {cstats['worker_bytes_sent'] / 2**20:.0f} MiB "
              f"(to peers and the client), received {cstats['peer_bytes_received'] / 2**20:.0f} MiB from peers (the shuffle)")  # fmt: skip
        for name, t in sorted(cstats["task_seconds"].items(), key=lambda kv: -kv[1]["total_s"]):
            if t["total_s"] >= 0.05:
                print(f"  task {name:29} x{t['count']:<4} {t['total_s']:7.2f} s computing, longest {t['max_s']:.2f} s")
        for row in cstats["phases"]:
            print(f"  {row['phase']:34} {row['wall_s']:7.2f} s   tree peak {row['tree_peak_mib']:6.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
