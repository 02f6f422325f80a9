"""Every row-removing step on a Dask cluster, in the local order, each row marked with its ``stage``.

The time window and the rating bound are row-level (per partition, in
:func:`~seqprep.engines.dask.partitions.finish`); dedup runs per partition after a shuffle by user
id (whole users together); each k-core round reads the user and item count tables of the kept rows
(tree reductions) and broadcasts the ids below their bound. The final count tables give every
step's rows, users and items removed; the reports and errors are the local steps' own
(:func:`seqprep.steps.filters.step_report`, :func:`~seqprep.steps.filters.empty_after`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ...config import BuildConfig, FilterOptions
from ...errors import needs_rating_column
from ...steps.filters import empty_after, kcore_details, step_report, window_bounds
from .partitions import (
    DEDUP,
    FINISH_META,
    KCORE,
    KEPT,
    KEYED_META,
    MISSING,
    RATING,
    WINDOW,
    dedup_part,
    drop_ids,
    finish,
    keyed,
)

__all__ = ["Cleaned", "clean_rows"]


@dataclass
class Cleaned:
    """The rows with their stage, the user and item count tables of the kept rows (id text -> kept,
    first kept position ``kpos``, last stage reached ``smax``), and the largest |timestamp| kept
    (computed only with ``--session-gap``)."""

    rows: Any
    users: pd.DataFrame
    items: pd.DataFrame
    largest: float


def _text(index: pd.Index) -> pa.Array:
    return pa.array(np.asarray(index, dtype=object), type=pa.string())


def _kept_counts(dask: Any, fin: Any) -> tuple[pd.Series, pd.Series]:
    kept = fin[fin["stage"] == KEPT]
    return dask.compute(kept.groupby("user").size(), kept.groupby("item").size())


def _kcore(dask: Any, client: Any, fin: Any, opts: FilterOptions) -> tuple[Any, list[dict[str, int]], bool]:
    """k-core rounds on the count tables; -> (rows, the rounds that removed rows, fixpoint reached)."""
    rounds: list[dict[str, int]] = []
    uc, ic = _kept_counts(dask, fin)
    while True:
        bad_u = uc.index[uc.to_numpy() < opts.min_user_count]
        bad_i = ic.index[ic.to_numpy() < opts.min_item_count]
        if len(bad_u) == 0 and len(bad_i) == 0:
            return fin, rounds, True
        if opts.kcore_rounds is not None and len(rounds) >= opts.kcore_rounds:
            return fin, rounds, False
        # hash=False: a fresh key per round (equal contents, e.g. two empty sets, must not share one)
        users_bad = client.scatter(_text(bad_u), broadcast=True, hash=False)
        items_bad = client.scatter(_text(bad_i), broadcast=True, hash=False)
        fin = fin.map_partitions(drop_ids, users_bad, items_bad, KCORE + len(rounds), meta=FINISH_META).persist()
        uc2, ic2 = _kept_counts(dask, fin)
        rounds.append(
            {
                "round": len(rounds) + 1,
                "rows_removed": int(uc.sum() - uc2.sum()),
                "users_removed": len(uc) - len(uc2),
                "items_removed": len(ic) - len(ic2),
            }
        )
        uc, ic = uc2, ic2
        if len(uc) == 0:
            return fin, rounds, True


def clean_rows(
    dask: Any,
    client: Any,
    canon: Any,
    config: BuildConfig,
    offsets: np.ndarray,
    plan: dict[str, Any],
    has_rating: bool,
    steps: list[dict[str, Any]],
) -> Cleaned:
    """Mark every row with the step that removed it; append the steps' reports to ``steps``."""
    opts = config.filter
    since = until = None
    if opts.since is not None or opts.until is not None:
        since, until = window_bounds(opts, plan["unit"])
    if opts.min_rating is not None and not has_rating:
        raise needs_rating_column()
    fin = canon.map_partitions(finish, offsets, plan["scales"], plan["float"], since, until, opts.min_rating, meta=FINISH_META)
    if opts.dedup != "none":
        fin = fin.shuffle(on="user").map_partitions(dedup_part, opts.dedup, has_rating, meta=FINISH_META)
    kcore_on = opts.min_user_count > 1 or opts.min_item_count > 1
    if opts.dedup != "none" or kcore_on:  # read several times (count tables, rounds, encoding): shuffle once
        fin = fin.persist()
    rounds: list[dict[str, int]] = []
    fixpoint = True
    if kcore_on:
        fin, rounds, fixpoint = _kcore(dask, client, fin, opts)
    missing_rating: Any = 0
    if opts.min_rating is not None:  # NaN ratings among the rows that reach the rating step
        missing_rating = fin[fin["stage"] > WINDOW]["rating"].isna().sum()
    tables = fin.map_partitions(keyed, meta=KEYED_META)
    agg = {"kept": "sum", "kpos": "min", "smax": "max"}
    top: Any = 0
    if config.session.session_gap is not None:
        top = fin[fin["stage"] == KEPT]["time"].abs().max()
    user_table, item_table, stage_counts, missing_rating, top = dask.compute(
        tables.groupby("user").agg(agg), tables.groupby("item").agg(agg), fin["stage"].value_counts(), missing_rating, top
    )
    counts = {int(k): int(v) for k, v in stage_counts.items()}
    details = {
        "time_window": {"since": since, "until": until, "time_unit": plan["unit"], "rule": "since <= t < until"},
        "min_rating": {"min_rating": opts.min_rating, "missing_rating": int(missing_rating)},
        "dedup": {"mode": opts.dedup},
        "kcore": kcore_details(opts, rounds, fixpoint),
    }
    _report_steps(steps, counts, user_table["smax"].to_numpy(), item_table["smax"].to_numpy(), opts, details, since, until)
    return Cleaned(fin, user_table, item_table, float(top))


def _report_steps(
    steps: list[dict[str, Any]],
    counts: dict[int, int],
    user_stage: np.ndarray,
    item_stage: np.ndarray,
    opts: FilterOptions,
    details: dict[str, dict[str, Any]],
    since: Any,
    until: Any,
) -> None:
    """The reports of the steps that ran, from the rows per stage and each id's last stage reached."""
    # ids seen with a value but on no kept row: what the missing-value step removed entirely
    steps[0]["users_removed"] = int((user_stage == MISSING).sum())
    steps[0]["items_removed"] = int((item_stage == MISSING).sum())
    ran = [
        ("time_window", WINDOW, WINDOW, since is not None or until is not None),
        ("min_rating", RATING, RATING, opts.min_rating is not None),
        ("dedup", DEDUP, DEDUP, opts.dedup != "none"),
        ("kcore", KCORE, KEPT - 1, opts.min_user_count > 1 or opts.min_item_count > 1),
    ]
    for step, lo, hi, on in ran:
        if not on:
            continue
        removed = sum(v for k, v in counts.items() if lo <= k <= hi)
        users = int(((user_stage >= lo) & (user_stage <= hi)).sum())
        items = int(((item_stage >= lo) & (item_stage <= hi)).sum())
        steps.append(step_report(step, steps[-1]["rows_after"], removed, users, items, **details[step]))
        if steps[-1]["rows_after"] == 0 and step != "dedup":
            raise empty_after(step, opts)
