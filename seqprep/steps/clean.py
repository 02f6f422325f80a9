"""Every row-removing step of a build, in its documented order.

1. rows with a missing user, item or timestamp (:mod:`~seqprep.steps.missing`; ``--strict`` rejects them);
2. with ``--where``, rows where a predicate is not true (:mod:`~seqprep.steps.where`);
3. with ``--vocab-from``, rows whose item the reused vocabulary lacks (:mod:`~seqprep.steps.reuse`;
   before the filters, so k-core counts only encodable rows);
4. the cleaning steps: time window, rating, dedup, k-core (:mod:`~seqprep.steps.filters`).

Kept rows stay in input order; each step appends its report to meta.json ``steps``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import BuildConfig
from ..model import Interactions, Log
from . import reuse
from .events import target_rows
from .filters import apply_filters_counted
from .missing import drop_missing

__all__ = ["clean", "clean_counted"]


def clean(log: Log, config: BuildConfig) -> tuple[Interactions, list[dict[str, Any]]]:
    """-> (the rows that survive every step, in input order; the steps' reports)."""
    inter, steps, _ = clean_counted(log, config)
    return inter, steps


def clean_counted(log: Log, config: BuildConfig) -> tuple[Interactions, list[dict[str, Any]], tuple[np.ndarray, np.ndarray] | None]:
    """:func:`clean`, and the kept rows per user code and item code when k-core counted them last
    (:func:`~seqprep.steps.filters.apply_filters_counted`; else None)."""
    inter, missing = drop_missing(log, config.strict)
    steps = [missing]
    if config.filter.where:  # (imported here: a build without --where never loads the predicates)
        from .where import apply_where

        inter, where = apply_where(log, inter, config)
        if where is not None:
            steps.append(where)
    if config.vocab.vocab_from is not None:
        keep, unknown = reuse.unknown_items_step(log, inter, config)
        inter = inter.take(keep)
        steps.append(unknown)
    counted = (lambda rows: target_rows(rows, config.event)) if config.event.kcore_on == "target" else None
    inter, filtered, kept = apply_filters_counted(inter, log.time_unit, config.filter, counted)
    steps.extend(filtered)
    return inter, steps, kept
