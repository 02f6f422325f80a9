"""Review-like CSVs with quoted free text (commas, doubled quotes, newlines), and what reading them costs.

Two subcommands:

``generate`` writes ``user,item,rating,timestamp,text`` (or ``userId,movieId,...`` with ``--ml-header``)
where ``text`` is a short review: Zipf-distributed words, some followed by a comma, some in
quotes, some lines broken by ``\\n`` (and ``\\r\\n`` with ``--crlf-share``); each row takes one of
200,000 such texts at random. A text field is quoted as
RFC 4180 says, only when it needs it (QUOTE_MINIMAL, as pandas' ``to_csv`` and Kaggle's
``Reviews.csv`` do): a field with a comma, a quote or a newline is wrapped in ``"``, its quotes
doubled. The id, time and rating columns come from ``generate.py`` (MovieLens-25M-shaped).
Vectorised (pyarrow string kernels), deterministic from ``--seed``::

    python benchmarks/quoted.py generate --rows 5000000 --users 32000 --items 12000 -o /tmp/bench/q5m.csv

``run`` times, each in its own child process and interleaved (round-robin over ``--repeat``):
a bare ``pyarrow.csv.read_csv(newlines_in_values=True)`` of the whole file, ``pandas.read_csv``,
``polars.read_csv`` (a benchmark-only extra, never a dependency of seqprep) and ``seqprep build``
(with ``--reader`` also seqprep's reader alone, ``read_log``), and prints the median and the
spread (min-max) of wall seconds, CPU seconds and peak RSS of each, with ratios against the bare
read and against pandas and polars::

    python benchmarks/quoted.py run /tmp/bench/q5m.csv --repeat 5 --reader
    python benchmarks/quoted.py run /tmp/bench/r5m.csv --repeat 5 --tree before=/work/main --tree after=.

``--tree NAME=DIR`` (repeatable) runs ``python -m seqprep build`` with DIR as the working directory
(its ``seqprep`` package is the one imported): a before/after comparison of two checkouts on the
same file, interleaved. Keep generated data out of the repository (``/tmp/bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate as ml  # the MovieLens-shaped columns of generate.py

CHUNK_ROWS = 1_000_000
SPECIAL_EVERY = 9  # about one word in 9 carries a comma, a quote or a line break
POOL = 200_000  # distinct texts; each row takes one at random (parsing cost is what matters)


def _vocabulary(rng: np.random.Generator, size: int) -> pa.Array:
    """``size`` random lower-case words of 1..10 letters (the first few short: Zipf puts them first)."""
    lengths = np.minimum(1 + rng.poisson(3.5, size), 10)
    letters = rng.integers(ord("a"), ord("z") + 1, size=int(lengths.sum()), dtype=np.uint8)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), size, [None, pa.py_buffer(offsets), pa.py_buffer(letters.tobytes())])


def _texts(rng: np.random.Generator, n: int, words: pa.Array, mean_words: float, crlf_share: float) -> pa.Array:
    """``n`` CSV-ready text fields: words joined by spaces, decorated, quoted where needed."""
    per_row = 1 + rng.poisson(mean_words - 1, n)
    total = int(per_row.sum())
    ranks = ml.zipf_sampler(rng, len(words), 1.0)(total)
    tokens = words.take(pa.array(ranks))
    kind = rng.integers(0, SPECIAL_EVERY * 5, total)  # 0..4: the five decorations, else a plain word
    breaks = pa.array(["\n", "\r\n"]).take(pa.array((rng.random(total) < crlf_share).astype(np.int8)))
    # a decorated token is written already escaped for a quoted field ("" for each quote)
    tokens = pc.if_else(pa.array(kind == 0), pc.binary_join_element_wise(tokens, ",", ""), tokens)
    tokens = pc.if_else(pa.array(kind == 1), pc.binary_join_element_wise('""', tokens, '""', ""), tokens)
    tokens = pc.if_else(pa.array(kind == 2), pc.binary_join_element_wise(tokens, breaks, ""), tokens)
    tokens = pc.if_else(pa.array(kind == 3), pc.binary_join_element_wise(tokens, '5""', ""), tokens)
    tokens = pc.if_else(pa.array(kind == 4), pc.binary_join_element_wise(tokens, ".", ""), tokens)
    offsets = np.concatenate(([0], np.cumsum(per_row))).astype(np.int32)
    text = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), tokens), " ")
    special = ((kind >= 0) & (kind <= 3)).astype(np.int64)
    needs_quotes = np.add.reduceat(special, offsets[:-1]) > 0
    return pc.if_else(pa.array(needs_quotes), pc.binary_join_element_wise('"', text, '"', ""), text)


def generate(args: argparse.Namespace) -> None:
    """Write the quoted review log chunk by chunk; report its shape on stderr."""
    t0 = time.perf_counter()
    gen_args = argparse.Namespace(**{**vars(args), "order": "user", "id_kind": "int", "zipf": 1.0, "tie_rate": 0.2})
    cols, users, items = ml.generate(gen_args)
    rng = np.random.default_rng(args.seed + 1)
    words = _vocabulary(rng, 5000)
    pool = _texts(rng, min(POOL, args.rows), words, args.mean_words, args.crlf_share)
    ratings = pa.array(ml.RATING_VALUES)
    header = b"userId,movieId,rating,timestamp,text\n" if args.ml_header else b"user,item,rating,timestamp,text\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    quoted = newline_rows = 0
    with open(args.output, "wb") as fh:
        fh.write(header)
        for lo in range(0, args.rows, CHUNK_ROWS):
            sl = slice(lo, lo + CHUNK_ROWS)
            n = len(cols["user"][sl])
            text = pool.take(pa.array(rng.integers(0, len(pool), n)))
            line = pc.binary_join_element_wise(
                pc.cast(users.take(pa.array(cols["user"][sl])), pa.string()),
                pc.cast(items.take(pa.array(cols["item"][sl])), pa.string()),
                ratings.take(pa.array(cols["rating"][sl])),
                pc.cast(pa.array(cols["ts"][sl]), pa.string()),
                text,
                ",",
            )
            line = pc.binary_join_element_wise(line, "", "\n")  # line + "\n"
            quoted += pc.sum(pc.starts_with(text, '"')).as_py() or 0
            newline_rows += pc.sum(pc.match_substring(text, "\n")).as_py() or 0
            offsets = np.frombuffer(line.buffers()[1], np.int32, n + 1, line.offset)
            fh.write(memoryview(line.buffers()[2])[offsets[0] : offsets[-1]])
    size = args.output.stat().st_size
    print(
        f"{args.output}: {args.rows:,} rows, {size / 2**20:,.0f} MiB, {quoted / args.rows:.0%} of text fields quoted, "
        f"{newline_rows / args.rows:.0%} hold a line break ({time.perf_counter() - t0:.1f}s)",
        file=sys.stderr,
    )


# --------------------------------------------------------------------------------------------------
# Timing

BARE = """
import sys, pyarrow.csv as c
t = c.read_csv(sys.argv[1], parse_options=c.ParseOptions(newlines_in_values=True))
print(t.num_rows)
"""

PANDAS = """
import sys, pandas as pd
df = pd.read_csv(sys.argv[1])
print(len(df))
"""

POLARS = """
import sys, polars as pl
df = pl.read_csv(sys.argv[1])
print(df.height)
"""

READER = """
import sys
from seqprep.config import ReadOptions
try:
    from seqprep.io import read_log
except ImportError:  # a checkout from before the io/ package
    from seqprep.readers import read_log
print(read_log([sys.argv[1]], ReadOptions()).num_rows)
"""


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float, int, str]:
    """Run ``cmd`` in ``cwd`` -> (wall s, CPU s, peak RSS MiB, exit code, stderr tail)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        tail = err.read().decode(errors="replace")[-1000:]
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), tail


def _steps(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    py, path = sys.executable, str(args.path.resolve())
    steps: list[dict[str, Any]] = []
    for name, code in (("pyarrow nl=True", BARE), ("pandas", PANDAS), ("polars", POLARS)):
        if name.split()[0] not in args.skip:
            steps.append({"step": name, "cmd": [py, "-c", code, path], "cwd": work})
    trees = [t.partition("=")[::2] for t in args.tree] or [("seqprep", str(Path(__file__).resolve().parent.parent))]
    for name, tree in trees:
        out = str(work / f"out-{name}")
        cmd = [py, "-m", "seqprep", "build", path, "-o", out, "--overwrite", "-q", *args.build_args.split()]
        steps.append(
            {"step": f"seqprep[{name}]" if args.tree else "seqprep build", "cmd": cmd, "cwd": Path(tree).resolve()}
        )
        if args.reader:  # seqprep's reader alone (read_log, sha256 included): the read pandas and polars do
            label = f"read_log[{name}]" if args.tree else "seqprep read_log"
            steps.append({"step": label, "cmd": [py, "-c", READER, path], "cwd": Path(tree).resolve()})
    for s in steps:
        s.update(walls=[], cpus=[], rss=[], error=None)
    return steps


def _fmt(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def run(args: argparse.Namespace) -> None:
    """Time every step ``--repeat`` times, round-robin, and print medians, spreads and ratios."""
    with open(args.path, "rb") as fh:  # a warm page cache for every step alike
        while fh.read(1 << 24):
            pass
    load = [os.getloadavg()[0]]
    work = Path(tempfile.mkdtemp(prefix="seqprep-quoted-"))
    try:
        steps = _steps(args, work)
        for r in range(args.repeat):
            for s in steps:
                if s["error"]:
                    continue
                wall, cpu, rss, code, err = measure(s["cmd"], s["cwd"])
                if code != 0:
                    s["error"] = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
                    print(f"[{s['step']}] FAILED: {s['error']}", file=sys.stderr)
                    continue
                s["walls"].append(wall)
                s["cpus"].append(cpu)
                s["rss"].append(rss)
                print(
                    f"[{r + 1}/{args.repeat}] {s['step']}: {wall:.2f}s wall, {cpu:.2f}s cpu, {rss:.0f} MiB",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load.append(os.getloadavg()[0])
    med = {s["step"]: statistics.median(s["walls"]) for s in steps if s["walls"]}
    base = steps[0]["step"]
    print(
        f"{args.path} ({args.path.stat().st_size / 2**20:,.0f} MiB), {args.repeat} runs each, interleaved; "
        f"nproc={len(os.sched_getaffinity(0))}; load avg before/after {load[0]:.2f}/{load[1]:.2f}"
    )
    print(
        f"{'step':<22}{'wall s: median (min-max)':>26}{'cpu s: median (min-max)':>26}{'peak MiB':>10}{'wall x ' + base:>24}"
    )
    for s in steps:
        if s["error"]:
            print(f"{s['step']:<22}  FAILED: {s['error']}")
            continue
        ratio = f"{med[s['step']] / med[base]:.2f}" if base in med else "-"
        rss = f"{statistics.median(s['rss']):.0f}" if s["rss"] else "-"
        print(f"{s['step']:<22}{_fmt(s['walls']):>26}{_fmt(s['cpus']):>26}{rss:>10}{ratio:>24}")
    others = [k for k in ("pandas", "polars") if k in med]
    for s in steps:
        if s["step"].startswith(("seqprep", "read_log")) and s["step"] in med and others:
            vs = ", ".join(f"{med[s['step']] / med[k]:.2f}x the time of {k}" for k in others)
            print(f"{s['step']}: {vs} (median wall)")
    if args.json:
        args.json.write_text(
            json.dumps([{k: v for k, v in s.items() if k not in ("cwd",)} for s in steps], indent=2, default=str)
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write a review-like CSV with quoted text")
    g.add_argument("--rows", type=int, default=5_000_000)
    g.add_argument("--users", type=int, default=32_000)
    g.add_argument("--items", type=int, default=12_000)
    g.add_argument("--mean-words", type=float, default=24.0, help="mean words per text (about 6 bytes each)")
    g.add_argument("--crlf-share", type=float, default=0.2, help="share of line breaks inside texts written \\r\\n")
    g.add_argument("--ml-header", action="store_true", help="userId,movieId,rating,timestamp,text")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("-o", "--output", type=Path, required=True)
    r = sub.add_parser("run", help="time pyarrow, pandas, polars and seqprep build on one file")
    r.add_argument("path", type=Path)
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--skip", action="append", default=[], choices=["pyarrow", "pandas", "polars"])
    r.add_argument("--tree", action="append", default=[], metavar="NAME=DIR", help="a seqprep checkout to time")
    r.add_argument("--build-args", default="", help="extra seqprep build arguments")
    r.add_argument("--reader", action="store_true", help="also time seqprep's reader alone (read_log)")
    r.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    generate(args) if args.command == "generate" else run(args)


if __name__ == "__main__":
    main()
