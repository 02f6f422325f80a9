"""Time the Dask engine against the local engine on the same file, in the same run.

Each build runs as its own ``seqprep build`` child process (so start-up, imports and, for Dask, the
start of a LocalCluster are included alike). Peak memory is the largest *sum* of RSS over the child's
whole process tree (client + scheduler + nanny + worker processes for Dask), sampled every 0.1 s with
psutil (a dependency of dask.distributed); the child's own peak RSS (``os.wait4``) is shown too.
After the runs, the two outputs are loaded and compared (vocabularies and CSR arrays), and one more
Dask build (untimed, on a LocalCluster of the same size started by this script) counts the tasks the
scheduler ran and the bytes the workers sent (the shuffle and the parts fetched by the client).

    python benchmarks/dask_bench.py /tmp/bench/ml5m.csv --workers 2 --json /tmp/bench/dask5m.json

Ratios are against the local engine measured in the same run; never assert them in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def measure(cmd: list[str]) -> dict[str, Any]:
    """Wall seconds, peak tree RSS and own peak RSS (MiB) of one child command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    return {"wall_s": wall, "tree_peak_mib": peak / 2**20, "own_peak_mib": usage.ru_maxrss / 1024}


def same_output(a: Path, b: Path) -> bool:
    import numpy as np

    import seqprep

    x, y = seqprep.load(a), seqprep.load(b)
    return (
        x.item_vocab.equals(y.item_vocab)
        and x.user_vocab.equals(y.user_vocab)
        and all(np.array_equal(getattr(x, n), getattr(y, n)) for n in ("offsets", "items", "timestamps", "user_idx"))
    )


def cluster_stats(path: Path, workers: int, out: Path, extra: list[str]) -> dict[str, Any]:
    """One more (untimed) Dask build, on a LocalCluster started here, to count what the timed runs
    cannot see from outside: the tasks the scheduler ran and the bytes the workers sent (to other
    workers - the shuffle - and to the client)."""
    import logging

    import distributed
    from distributed.diagnostics.plugin import SchedulerPlugin

    import seqprep

    class Count(SchedulerPlugin):
        def __init__(self) -> None:
            self.tasks = 0

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            if start == "processing" and finish == "memory":
                self.tasks += 1

    def sent(dask_worker: Any) -> int:
        return int(dask_worker.transfer_outgoing_bytes_total)

    def received(dask_worker: Any) -> int:  # from peers only (the shuffle), not from the client
        return int(sum(d.get("total", 0) for d in dask_worker.transfer_incoming_log))

    with (
        distributed.LocalCluster(n_workers=workers, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster,
        distributed.Client(cluster) as client,
    ):
        count = Count()
        cluster.scheduler.add_plugin(count)
        kw = dict(engine="dask", scheduler=cluster.scheduler_address, overwrite=True)
        for flag, key in (("--part-rows", "part_rows"), ("--partition-size", "block_bytes")):
            if flag in extra:
                kw[key] = int(extra[extra.index(flag) + 1])
        seqprep.build(str(path), out, **kw)
        return {"tasks": count.tasks, "worker_bytes_sent": sum(client.run(sent).values()), "peer_bytes_received": sum(client.run(received).values())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="interaction CSV (e.g. from generate.py)")
    p.add_argument("--workers", type=int, default=2, help="Dask worker processes of the local cluster")
    p.add_argument("--scheduler", default=None, help="use a running scheduler instead of --workers")
    p.add_argument("--part-rows", type=int, default=None, help="passed to seqprep build --part-rows")
    p.add_argument("--partition-size", type=int, default=None, help="passed to seqprep build --partition-size")
    p.add_argument("--repeat", type=int, default=1, help="runs per engine, round-robin; best wall time kept")
    p.add_argument("--workdir", default=None, help="where outputs go (default: system temp)")
    p.add_argument("--json", type=Path, default=None, help="also save results as JSON here")
    args = p.parse_args(argv)

    import dask
    import pyarrow

    import seqprep

    work = Path(tempfile.mkdtemp(prefix="seqprep-dask-bench-", dir=args.workdir))
    base = [sys.executable, "-m", "seqprep", "build", str(args.path), "--overwrite", "-q"]
    dask_flags = ["--engine", "dask"]
    dask_flags += ["--scheduler", args.scheduler] if args.scheduler else ["--workers", str(args.workers)]
    if args.part_rows:
        dask_flags += ["--part-rows", str(args.part_rows)]
    if args.partition_size:
        dask_flags += ["--partition-size", str(args.partition_size)]
    engines = {"local": base + ["-o", str(work / "local")], "dask": base + ["-o", str(work / "dask")] + dask_flags}
    with open(args.path, "rb") as fh:  # warm the page cache for both alike
        while fh.read(1 << 24):
            pass
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in engines}
    for _ in range(args.repeat):
        for name, cmd in engines.items():
            runs[name].append(measure(cmd))
    best = {
        k: min(v, key=lambda r: r["wall_s"]) | {"tree_peak_mib": max(r["tree_peak_mib"] for r in v)}
        for k, v in runs.items()
    }
    identical = same_output(work / "local", work / "dask")
    cstats = cluster_stats(args.path, args.workers, work / "dask-stats", dask_flags) if args.scheduler is None else {}
    meta = json.loads((work / "dask" / "meta.json").read_text())
    report = {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "seqprep": seqprep.__version__,
            "dask": dask.__version__,
            "pyarrow": pyarrow.__version__,
        },
        "input": {"path": str(args.path), "bytes": args.path.stat().st_size, "rows": meta["rows"]["read"]},
        "dask": {"flags": dask_flags, "engine": meta.get("engine")},
        "best": best,
        "runs": runs,
        "identical_output": identical,
        "cluster": cstats,
    }
    loc = best["local"]
    print(f"# {args.path} ({report['input']['rows']:,} rows), nproc {os.cpu_count()}, dask {dask.__version__}, "
          f"dask flags: {' '.join(dask_flags)}, parts {meta['engine']['output_parts']}")  # fmt: skip
    print(f"{'engine':8} {'wall s':>8} {'x local':>8} {'tree peak MiB':>14} {'x local':>8} {'own peak MiB':>13}")
    for name, r in best.items():
        print(
            f"{name:8} {r['wall_s']:8.2f} {r['wall_s'] / loc['wall_s']:8.2f} {r['tree_peak_mib']:14.0f} "
            f"{r['tree_peak_mib'] / loc['tree_peak_mib']:8.2f} {r['own_peak_mib']:13.0f}"
        )
    print(f"identical output (vocabularies, offsets, items, timestamps, user_idx): {'yes' if identical else 'NO'}")
    if cstats:
        print(f"dask build (untimed rerun): {cstats['tasks']} tasks, workers sent {cstats['worker_bytes_sent'] / 2**20:.0f} MiB "
              f"(to peers and the client), received {cstats['peer_bytes_received'] / 2**20:.0f} MiB from peers")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
