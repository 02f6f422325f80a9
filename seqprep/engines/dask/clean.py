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

from ...config import BuildConfig, FilterOptions
from ...errors import needs_rating_column
from ...kernels.filters import KcoreTables, kcore_rounds
from ...model import Log
from ...steps.events import target_codes
from ...steps.filters import empty_after, kcore_details, step_report, window_bounds
from ...steps.reuse import unknown_items_counted
from ...steps.where import where_report
from .columns import NO_COLUMNS, LogColumns, where_mask
from .partitions import (
    DEDUP,
    KCORE,
    KEPT,
    MISSING,
    RATING,
    WINDOW,
    code_tables,
    dedup_part,
    drop_ids,
    finish,
    finish_meta,
    first_items,
    kcore_counts,
    kept_counts,
    merge_code_tables,
    merge_where_counts,
    present_items,
    where_counts,
)

__all__ = ["Cleaned", "clean_rows"]


@dataclass
class Cleaned:
    """The rows with their stage, the user and item count tables of the kept rows (global id code -> kept,
    first kept position ``kpos``, last stage reached ``smax``), the largest |timestamp| kept, and
    the count tables of the other columns (:func:`~seqprep.engines.dask.partitions.code_tables`)."""

    rows: Any
    users: pd.DataFrame
    items: pd.DataFrame
    largest: float
    tables: dict[str, Any]


def _mask(index: pd.Index, size: int) -> np.ndarray:
    """The codes of ``index`` as a mask over all ``size`` global codes (what a round broadcasts)."""
    mask = np.zeros(size, dtype=bool)
    mask[np.asarray(index, dtype=np.int64)] = True
    return mask


def _tree(dask: Any, parts: list[Any], combine: Any) -> Any:
    """A tree reduction of per-partition results (pairs combined, level by level)."""
    while len(parts) > 1:
        parts = [dask.delayed(combine)(parts[k], parts[k + 1]) if k + 1 < len(parts) else parts[k] for k in range(0, len(parts), 2)]
    return parts[0]


def _add_pairs(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return a[0] + b[0], a[1] + b[1]


def _kept_counts(dask: Any, fin: Any, sizes: tuple[int, int]) -> tuple[pd.Series, pd.Series]:
    """Kept rows per user and per item code (codes with none left out), by a tree reduction."""
    users, items = dask.compute(_tree(dask, [dask.delayed(kept_counts)(p, sizes) for p in fin.to_delayed()], _add_pairs))[0]
    return tuple(pd.Series(c[c > 0], index=np.flatnonzero(c > 0)) for c in (users, items))  # type: ignore[return-value]


def _kcore(
    dask: Any, client: Any, fin: Any, opts: FilterOptions, sizes: tuple[int, int], meta: pd.DataFrame, target: tuple[str, np.ndarray] | None = None
) -> tuple[Any, list[dict[str, int]], bool]:
    """k-core rounds by the local rule (:func:`~seqprep.kernels.filters.kcore_rounds`) on count
    tables from tree reductions; -> (rows, the rounds that removed rows, fixpoint reached).
    ``target``: (frame column, mask over its codes) of the target events that alone count
    (``--kcore-on target``)."""
    state = {"fin": fin, "round": 0, "kept": 0}

    def tables() -> KcoreTables:
        parts = [dask.delayed(kcore_counts)(p, sizes, target) for p in state["fin"].to_delayed()]
        t = KcoreTables(*dask.compute(_tree(dask, parts, _add_tables))[0])
        state["kept"] = int(t.present_user.sum())
        return t

    def remove(bad_u: np.ndarray, bad_i: np.ndarray) -> tuple[int, KcoreTables]:
        # hash=False: a fresh key per round (equal contents, e.g. two empty sets, must not share one)
        users_bad = client.scatter(bad_u, broadcast=True, hash=False)
        items_bad = client.scatter(bad_i, broadcast=True, hash=False)
        before = state["kept"]
        state["fin"] = state["fin"].map_partitions(drop_ids, users_bad, items_bad, KCORE + state["round"], meta=meta).persist()
        state["round"] += 1
        after = tables()
        return before - state["kept"], after

    rounds, fixpoint = kcore_rounds(tables(), remove, min_user=opts.min_user_count, min_item=opts.min_item_count, max_rounds=opts.kcore_rounds)
    return state["fin"], rounds, fixpoint


def _add_tables(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    return tuple(x + y for x, y in zip(a, b))


def _kcore_passes(dask: Any, client: Any, fin: Any, opts: FilterOptions, sizes: tuple[int, int], meta: pd.DataFrame) -> tuple[Any, list[dict[str, Any]]]:
    """``--kcore-passes``: one-sided passes in their order on the count tables (as the local kernel:
    each pass recounts the rows left, drops the rows of the users or the items below their bound)."""
    passes: list[dict[str, Any]] = []
    uc, ic = _kept_counts(dask, fin, sizes)
    for k, on in enumerate(opts.kcore_passes, start=1):
        counts, bound = (uc, opts.min_user_count) if on == "user" else (ic, opts.min_item_count)
        bad = counts.index[counts.to_numpy() < bound]
        masks = [np.zeros(size, dtype=bool) for size in sizes]
        masks[0 if on == "user" else 1] = _mask(bad, sizes[0 if on == "user" else 1])
        if len(bad):
            users_bad = client.scatter(masks[0], broadcast=True, hash=False)
            items_bad = client.scatter(masks[1], broadcast=True, hash=False)
            fin = fin.map_partitions(drop_ids, users_bad, items_bad, KCORE + k - 1, meta=meta).persist()
            uc2, ic2 = _kept_counts(dask, fin, sizes)
        else:
            uc2, ic2 = uc, ic
        passes.append(
            {"pass": k, "on": on, "rows_removed": int(uc.sum() - uc2.sum()), "users_removed": len(uc) - len(uc2), "items_removed": len(ic) - len(ic2)}
        )
        uc, ic = uc2, ic2
    return fin, passes


def clean_rows(
    dask: Any,
    client: Any,
    canon: Any,
    config: BuildConfig,
    offsets: np.ndarray,
    unit: str,
    as_float: bool,
    log: Log,
    has_rating: bool,
    steps: list[dict[str, Any]],
    columns: LogColumns = NO_COLUMNS,
    counted: tuple[tuple[str, int], ...] = (),
) -> Cleaned:
    """Mark every row with the step that removed it; append the steps' reports to ``steps``.

    ``canon``: the canonical frame (global id codes, -1 = missing; ``log``: their ids, no rows);
    ``unit``/``as_float``: its time unit and type; ``columns``: its other columns; ``counted``: those
    whose count tables the features need (:func:`~seqprep.engines.dask.partitions.code_tables`)."""
    sizes = (len(log.user_ids), len(log.item_ids))
    opts = config.filter
    since = until = None
    if opts.since is not None or opts.until is not None:
        since, until = window_bounds(opts, unit)
    if opts.min_rating is not None and not has_rating:
        raise needs_rating_column()
    meta = finish_meta(as_float, columns.meta())
    if opts.where:  # right after the missing values
        canon = _where(dask, client, canon, opts.where, log, columns, unit, has_rating, steps)
    unknown = None
    if config.vocab.vocab_from is not None:  # before the filters: k-core counts only encodable rows
        unknown = _unknown_items(dask, client, canon, config, offsets, log)
        steps.append(unknown[1])
        unknown = None if unknown[0] is None else client.scatter(unknown[0], broadcast=True, hash=False)
    fin = canon.map_partitions(finish, offsets, since, until, opts.min_rating, unknown, meta=meta)
    if opts.dedup != "none":
        fin = fin.shuffle(on="user").map_partitions(dedup_part, opts.dedup, has_rating, meta=meta)
    kcore_on = opts.min_user_count > 1 or opts.min_item_count > 1 or bool(opts.kcore_passes)
    fin = fin.persist()  # read several times (count tables, rounds, encoding): computed (and shuffled) once
    rounds: list[dict[str, int]] = []
    fixpoint = True
    if opts.kcore_passes:
        fin, rounds = _kcore_passes(dask, client, fin, opts, sizes, meta)
    elif kcore_on:
        fin, rounds, fixpoint = _kcore(dask, client, fin, opts, sizes, meta, _targets(config, columns))
    parts = [dask.delayed(code_tables)(p, sizes, WINDOW, counted) for p in fin.to_delayed()]
    t = dask.compute(_tree(dask, parts, merge_code_tables))[0]
    user_table, item_table = (
        pd.DataFrame(
            {"kept": t[f"{role}_kept"][seen], "kpos": t[f"{role}_kpos"][seen], "smax": t[f"{role}_smax"][seen]},
            index=np.flatnonzero(seen),
        )
        for role in ("user", "item")
        for seen in [t[f"{role}_rows"] > 0]  # a code seen on a row (a missing id, code -1, is no id)
    )
    stage_counts, missing_rating, top = t["stages"], t["missing_rating"] if opts.min_rating is not None else 0, t["top"]
    counts = {int(k): int(v) for k, v in stage_counts.items()}
    details = {
        "time_window": {"since": since, "until": until, "time_unit": unit, "rule": "since <= t < until"},
        "min_rating": {"min_rating": opts.min_rating, "missing_rating": int(missing_rating)},
        "dedup": {"mode": opts.dedup},
        "kcore": kcore_details(opts, rounds, fixpoint)
        if not opts.kcore_passes
        else {"min_user_count": opts.min_user_count, "min_item_count": opts.min_item_count, "passes": rounds},
    }
    _report_steps(steps, counts, user_table["smax"].to_numpy(), item_table["smax"].to_numpy(), opts, details, since, until)
    return Cleaned(fin, user_table, item_table, float(top), t)


def _targets(config: BuildConfig, columns: LogColumns) -> tuple[str, np.ndarray] | None:
    """``--kcore-on target``: the event column's frame column and a mask over its codes (and the
    missing code -1, last) of the target events, by the local step's ``target_codes``."""
    if config.event.kcore_on != "target" or config.event.event_col is None:
        return None
    k = columns.index(config.event.event_col)
    mask = np.zeros(len(columns.values[k]) + 1, dtype=bool)
    mask[target_codes(columns.stub(k), config.event)] = True
    return columns.key(k), mask


def _where(
    dask: Any, client: Any, canon: Any, predicates: tuple[str, ...], log: Log, columns: LogColumns, unit: str, has_rating: bool, steps: list[dict[str, Any]]
) -> Any:
    """``--where``: each partition's rows marked by the local step's truth (``wk``); its report from
    the partitions' counts, by the local step (no row left is its error)."""
    user_ids = client.scatter(log.user_ids, broadcast=True, hash=False)
    item_ids = client.scatter(log.item_ids, broadcast=True, hash=False)
    meta = canon._meta.assign(wk=pd.Series([], dtype=bool), wu=pd.Series([], dtype=bool))
    marked = canon.map_partitions(where_mask, user_ids, item_ids, columns, log.inputs, unit, has_rating, predicates, meta=meta).persist()
    sizes = (len(log.user_ids), len(log.item_ids))
    c = dask.compute(_tree(dask, [dask.delayed(where_counts)(p, sizes) for p in marked.to_delayed()], merge_where_counts))[0]
    users = int((c["user_before"] & ~c["user_after"]).sum())
    items = int((c["item_before"] & ~c["item_after"]).sum())
    steps.append(where_report(predicates, c["rows"], c["removed"], users, items, c["unknown"]))
    return marked


def _unknown_items(dask: Any, client: Any, canon: Any, config: BuildConfig, offsets: np.ndarray, log: Log) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The unknown-items step of ``--vocab-from`` from the rows per item code (a tree reduction):
    (a mask over the item codes of the rows it drops, or None; its report), by the local step."""
    size = len(log.item_ids)
    parts = canon.to_delayed()
    counts = np.sum(dask.compute(*[dask.delayed(present_items)(p, size) for p in parts]), axis=0) if parts else np.zeros(size, np.int64)

    def first_unseen(mask: np.ndarray) -> np.ndarray:  # only for --unknown error: the first few named
        found = dask.compute(*[dask.delayed(first_items)(p, mask, offsets, k) for k, p in enumerate(parts)])
        codes = np.concatenate([c for c, _ in found])
        pos = np.concatenate([q for _, q in found])
        return pd.unique(codes[np.argsort(pos, kind="stable")])

    return unknown_items_counted(log, counts, config, first_unseen)


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
        ("kcore", KCORE, KEPT - 1, opts.min_user_count > 1 or opts.min_item_count > 1 or bool(opts.kcore_passes)),
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
