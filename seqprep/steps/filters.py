"""The cleaning steps of a build, in their one fixed order.

Order (after rows with a missing user, item or timestamp are dropped, :mod:`seqprep.steps.missing`,
and, with ``--vocab-from``, rows of unknown items, :mod:`seqprep.steps.reuse`):

1. ``time_window``: keep ``since <= t < until`` (``--since`` inclusive, ``--until`` exclusive);
2. ``min_rating``: keep ``rating >= R`` (a missing rating is dropped);
3. ``dedup``: ``exact`` / ``first`` / ``last`` / ``consecutive`` (see :func:`seqprep.kernels.filters.dedup`);
4. ``kcore``: ``--min-user-count`` / ``--min-item-count``, round after round until both hold
   (or ``--kcore-rounds N`` rounds), or ``--kcore-passes user,item,...``: one-sided passes in that
   order, each on the rows the one before left (SR-GNN's sessions, items, sessions);

then vocabularies and sequences are built from what is left. Each step that runs appends one report
to meta.json ``steps`` with the rows, users and items it removed (k-core: also one entry per round).
The reports and the "nothing left" errors are built here for every engine (:func:`step_report`,
:func:`empty_after`). Time bounds follow :mod:`seqprep.timeunits`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import FilterOptions
from ..errors import ConfigError, InputError, needs_rating_column, none_left
from ..kernels.filters import dedup, kcore_counted, kcore_passes, num_present, rating_at_least, time_window
from ..model import Interactions
from ..resources import sort_threads
from ..timeunits import bound_in_unit

__all__ = ["FILTER_STEPS", "apply_filters", "apply_filters_counted", "empty_after", "kcore_details", "step_report", "window_bounds"]

#: The filter steps in their order (``kcore`` last).
FILTER_STEPS = ("time_window", "min_rating", "dedup", "kcore")


def window_bounds(opts: FilterOptions, unit: str) -> tuple[int | float | None, int | float | None]:
    """``--since`` / ``--until`` in the log's time unit (``None`` = open); fails on an empty window."""
    since = None if opts.since is None else bound_in_unit(opts.since, "--since", unit)
    until = None if opts.until is None else bound_in_unit(opts.until, "--until", unit)
    if since is not None and until is not None and since >= until:
        msg = f"--since {opts.since} is not before --until {opts.until} in this log's time unit; pass a --since earlier than --until"
        raise ConfigError(msg)
    return since, until


def step_report(step: str, rows_before: int, rows_removed: int, users_removed: int, items_removed: int, **details: Any) -> dict[str, Any]:
    """One entry of meta.json ``steps``: rows before/removed/after, users and items removed, and the
    step's own ``details`` (its bounds, mode, rounds)."""
    return {
        "step": step,
        "rows_before": rows_before,
        "rows_removed": rows_removed,
        "rows_after": rows_before - rows_removed,
        "users_removed": users_removed,
        "items_removed": items_removed,
        **details,
    }


def empty_after(step: str, opts: FilterOptions) -> InputError:
    """The error when ``step`` leaves no interaction: what to loosen."""
    fixes = {
        "time_window": "widen --since/--until (the window is since <= t < until, in the log's time unit)",
        "min_rating": f"no rating is >= {opts.min_rating:g}; lower --min-rating" if opts.min_rating is not None else "",
        "kcore": (
            f"no user and item meet --min-user-count {opts.min_user_count} and --min-item-count "
            f"{opts.min_item_count} together; lower them"
        ),
    }
    return none_left(step, fixes[step])


def _apply(
    step: str,
    before: Interactions,
    keep: Any,
    counts: tuple[int, int] | None,
    present: tuple[tuple[int, int], tuple[int, int]] | None = None,
    **details: Any,
) -> tuple[dict[str, Any], Interactions, tuple[int, int]]:
    """Apply ``keep``; -> (report, kept rows, (users, items) now present).

    ``counts`` are the (users, items) present in ``before``; ``None`` counts them here (the first
    step that runs), so a build without cleaning steps never counts at all. ``present``: the
    (users, items) present before and after, when the step has counted them itself (k-core).
    """
    if counts is None:
        counts = present[0] if present is not None else (num_present(before.user), num_present(before.item))
    after = before.take(None if keep.all() else keep)  # nothing removed: no copy
    removed = len(before) - len(after)
    if not removed:
        now = counts
    elif present is not None:
        now = present[1]
    else:
        now = (num_present(after.user), num_present(after.item))
    report = step_report(step, len(before), removed, counts[0] - now[0], counts[1] - now[1], **details)
    return report, after, now


def apply_filters(
    inter: Interactions,
    time_unit: str,
    opts: FilterOptions,
    counted: Callable[[Interactions], np.ndarray | None] | None = None,
) -> tuple[Interactions, list[dict[str, Any]]]:
    """Run the enabled cleaning steps in their fixed order; -> (kept rows in input order, step reports).

    ``counted(rows)``: the rows k-core counts (``--kcore-on target``; None: all)."""
    inter, steps, _ = apply_filters_counted(inter, time_unit, opts, counted)
    return inter, steps


def apply_filters_counted(
    inter: Interactions,
    time_unit: str,
    opts: FilterOptions,
    counted: Callable[[Interactions], np.ndarray | None] | None = None,
) -> tuple[Interactions, list[dict[str, Any]], tuple[np.ndarray, np.ndarray] | None]:
    """:func:`apply_filters`, and the kept rows of every user code and item code when the k-core
    rounds counted them (``(users, items)``, tables as long as the largest code + 1; else None)."""
    kept: tuple[np.ndarray, np.ndarray] | None = None
    steps: list[dict[str, Any]] = []
    counts: tuple[int, int] | None = None  # (users, items) present: counted by the first step that runs

    if opts.since is not None or opts.until is not None:
        since, until = window_bounds(opts, time_unit)
        details = {"since": since, "until": until, "time_unit": time_unit, "rule": "since <= t < until"}
        report, inter, counts = _apply("time_window", inter, time_window(inter.time, since, until), counts, **details)
        steps.append(report)
        if len(inter) == 0:
            raise empty_after("time_window", opts)

    if opts.min_rating is not None:
        if inter.rating is None:
            raise needs_rating_column()
        missing = int(np.count_nonzero(np.isnan(inter.rating))) if inter.rating.dtype.kind == "f" else 0
        keep = rating_at_least(inter.rating, opts.min_rating)
        report, inter, counts = _apply("min_rating", inter, keep, counts, min_rating=opts.min_rating, missing_rating=missing)
        steps.append(report)
        if len(inter) == 0:
            raise empty_after("min_rating", opts)

    if opts.dedup != "none":
        keep = dedup(inter.user, inter.item, inter.time, inter.rating, opts.dedup)
        report, inter, counts = _apply("dedup", inter, keep, counts, mode=opts.dedup)
        steps.append(report)

    if opts.kcore_passes:
        keep, passes = kcore_passes(
            inter.user, inter.item, opts.kcore_passes, min_user=opts.min_user_count, min_item=opts.min_item_count
        )
        details = {"min_user_count": opts.min_user_count, "min_item_count": opts.min_item_count, "passes": passes}
        report, inter, counts = _apply("kcore", inter, keep, counts, **details)
        steps.append(report)
        if len(inter) == 0:
            raise empty_after("kcore", opts)
    elif opts.min_user_count > 1 or opts.min_item_count > 1:
        res = kcore_counted(
            inter.user,
            inter.item,
            min_user=opts.min_user_count,
            min_item=opts.min_item_count,
            max_rounds=opts.kcore_rounds,
            counted=None if counted is None else counted(inter),
            threads=sort_threads(),
        )
        present = (res.present_before, res.present_after)  # (its own count tables: no recount)
        kept = res.kept_counts
        details = kcore_details(opts, res.rounds, res.fixpoint)
        report, inter, counts = _apply("kcore", inter, res.keep, counts, present, **details)
        steps.append(report)
        if len(inter) == 0:
            raise empty_after("kcore", opts)
    return inter, steps, kept


def kcore_details(opts: FilterOptions, rounds: list[dict[str, int]], fixpoint: bool) -> dict[str, Any]:
    """The k-core step's own entries of its report."""
    return {
        "min_user_count": opts.min_user_count,
        "min_item_count": opts.min_item_count,
        "max_rounds": opts.kcore_rounds,
        "fixpoint": fixpoint,
        "rounds": rounds,
    }
