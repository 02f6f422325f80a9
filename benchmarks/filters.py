"""Time each cleaning step on one log, as ratios to the plain build's stages measured in the same run.

The log is read once (``read_log``); then, in this one process, each stage of a plain build
(missing-value step, vocabularies, time sort) and each cleaning kernel (time window, rating, every dedup
mode, k-core to the fixpoint and with one round, sessions) runs ``--repeat`` times; the best wall time
is reported, with its ratio to the plain build's in-memory stages (clean + vocabularies + sequences,
i.e. everything after reading and before writing). Example::

    python benchmarks/generate.py --rows 5000000 --users 32000 --items 20000 --order user --seed 0 \\
        -o /tmp/bench/r5m.csv
    python benchmarks/filters.py /tmp/bench/r5m.csv --repeat 3

With ``--where EXPR`` (repeatable) it instead takes apart what those predicates cost (issue 16), each
part timed ``--repeat`` times, interleaved, as the median (min-max) of process CPU seconds: reading
the log without and with the predicates' columns, pyarrow's own CSV read of the same columns
without and with them (the part of the extra read that is the parse itself), evaluating the
predicates, and taking the rows they keep::

    python benchmarks/generate.py --rows 5000000 --users 32000 --items 20000 --seed 0 \\
        --extra event,price -o /tmp/bench/where_5m.csv
    python benchmarks/filters.py /tmp/bench/where_5m.csv --repeat 7 \\
        --where "event in ['view', 'cart', 'buy']" --where "price > 0 or price is null"

These are measurements to read, never assertions: close other work before running them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from seqprep.config import make_config
from seqprep.io import read_log
from seqprep.kernels.filters import dedup, kcore, rating_at_least, session_ids, time_window
from seqprep.steps.clean import clean
from seqprep.steps.sessions import add_sessions
from seqprep.steps.sort import sequences_from
from seqprep.steps.vocabularies import fit_vocabularies


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def where_cost(path: str, predicates: tuple[str, ...], repeat: int) -> None:
    """The parts of ``--where``'s cost, interleaved: median (min-max) CPU seconds of each."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from seqprep.io import ColumnRequest
    from seqprep.steps.missing import drop_missing
    from seqprep.steps.where import operand_requests, where_truth

    plain_config = make_config([path], "<memory>")
    config = make_config([path], "<memory>", where=predicates)
    requests: tuple[ColumnRequest, ...] = operand_requests(config)
    log = read_log(config.inputs, config.read, operands=requests)
    roles = [c for r, c in log.inputs[0].columns.items() if r != "time_offsets"]
    extra = {
        r.name: pa.float64() if r.read_as == "number" else pa.dictionary(pa.int32(), pa.string()) for r in requests
    }
    extra = {k: v for k, v in extra.items() if k not in roles}

    def arrow(columns: dict[str, Any]) -> Callable[[], Any]:
        conv = pacsv.ConvertOptions(
            include_columns=roles + list(columns), column_types=columns, strings_can_be_null=True
        )
        return lambda: pacsv.read_csv(path, convert_options=conv)

    inter, _ = drop_missing(log, config.strict)
    keep, _known = where_truth(log, inter, predicates)
    kept = np.flatnonzero(keep)
    parts: dict[str, Callable[[], Any]] = {
        "read_log, the roles only": lambda: read_log(plain_config.inputs, plain_config.read),
        "read_log, + the predicates' columns": lambda: read_log(config.inputs, config.read, operands=requests),
        "pyarrow read_csv, the roles only": arrow({}),
        "pyarrow read_csv, + those columns": arrow(extra),
        "evaluate the predicates (where_truth)": lambda: where_truth(log, inter, predicates),
        f"take the {len(kept):,} rows kept": lambda: inter.take(None if keep.all() else kept),
    }
    cpu: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(repeat):
        for name, fn in parts.items():
            c0 = time.process_time()
            fn()
            cpu[name].append(time.process_time() - c0)
    print(f"{log.num_rows:,} rows; --where {' --where '.join(repr(p) for p in predicates)}; {len(kept):,} kept")
    width = max(len(n) for n in parts)
    print(f"{'part':<{width}}  CPU s median (min-max) of {repeat}")
    for name, times in cpu.items():
        print(f"{name:<{width}}  {statistics.median(times):6.3f} ({min(times):.3f}-{max(times):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--min-count", type=int, default=5, help="k-core bound for users and items")
    ap.add_argument("--where", action="append", help="take apart what these --where predicates cost instead")
    args = ap.parse_args()
    if args.where:
        where_cost(args.path, tuple(args.where), args.repeat)
        return

    t0 = time.perf_counter()
    config = make_config([args.path], "<memory>")
    log = read_log(config.inputs, config.read)
    t_read = time.perf_counter() - t0
    print(f"{log.num_rows:,} rows, read in {t_read:.2f} s (not part of the ratios)")

    def plain() -> Any:
        inter, _ = clean(log, config)
        users, _items, uidx, iidx = fit_vocabularies(inter, log, config)
        return sequences_from(uidx, iidx, inter.time, inter.rating, users.counts)

    t_plain, seqs = best(plain, args.repeat)
    inter, _ = clean(log, config)
    u, i, t, r = inter.user, inter.item, inter.time, inter.rating
    lo, hi = np.quantile(t, [0.1, 0.9])
    rows: list[tuple[str, float, str]] = [("plain stages (clean+vocab+sort)", t_plain, "")]

    def add(name: str, fn: Callable[[], Any], note: Callable[[Any], str] = lambda _: "") -> None:
        sec, out = best(fn, args.repeat)
        rows.append((name, sec, note(out)))

    add("time_window (10%..90% quantiles)", lambda: time_window(t, lo, hi), lambda k: f"{int((~k).sum()):,} removed")
    if r is not None:
        add("min_rating 4", lambda: rating_at_least(r, 4.0), lambda k: f"{int((~k).sum()):,} removed")
    for mode in ("exact", "first", "last", "consecutive"):
        add(f"dedup {mode}", lambda mode=mode: dedup(u, i, t, r, mode), lambda k: f"{int((~k).sum()):,} removed")
    k = args.min_count
    add(
        f"kcore {k}/{k} to fixpoint",
        lambda: kcore(u, i, min_user=k, min_item=k),
        lambda o: f"{int((~o[0]).sum()):,} removed in {len(o[1])} rounds",
    )
    add(
        f"kcore {k}/{k} one round",
        lambda: kcore(u, i, min_user=k, min_item=k, max_rounds=1),
        lambda o: f"{int((~o[0]).sum()):,} removed",
    )
    add("session_ids (kernel, gap 1800)", lambda: session_ids(seqs.offsets, seqs.timestamps, 1800))
    add(
        "sessions (kernel + meta)",
        lambda: add_sessions(seqs, log.time_unit, make_config([args.path], "<memory>", session_gap="30m").session),
        lambda o: f"{o[1]['num_sessions']:,} sessions",
    )
    kc_config = make_config([args.path], "<memory>", min_user_count=k, min_item_count=k)
    add(
        f"clean() with kcore {k}/{k} (missing + kcore)",
        lambda: clean(log, kc_config),
        lambda o: f"{len(o[0]):,} kept",
    )
    width = max(len(n) for n, _, _ in rows)
    print(f"{'step':<{width}}  {'best s':>7}  {'x plain':>7}  note")
    for name, sec, note in rows:
        print(f"{name:<{width}}  {sec:7.3f}  {sec / t_plain:7.3f}  {note}")


if __name__ == "__main__":
    main()
