"""The first row-removing step: rows with a missing user, item or timestamp are dropped and counted.

``--strict`` turns them into an error that names the first one. The local build runs
:func:`drop_missing` on the whole log; the ``--memory-limit`` and Dask engines add up
:class:`MissingCounts` over chunks or partitions and call :meth:`MissingCounts.report`: one rule and
one report either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import no_rows_left, strict_missing
from ..kernels.filters import num_present
from ..model import InputInfo, Interactions, Log, locate

__all__ = ["MissingCounts", "drop_missing", "missing_report"]

STEP = "missing"


def missing_report(rows: int, missing_user: int, missing_item: int, missing_time: int, removed: int) -> dict[str, Any]:
    """The ``missing`` step's entry of meta.json ``steps`` (users/items removed are added by the caller)."""
    return {
        "step": STEP,
        "rows_before": rows,
        "rows_removed": removed,
        "rows_after": rows - removed,
        "missing_user": missing_user,
        "missing_item": missing_item,
        "missing_time": missing_time,
    }


@dataclass
class MissingCounts:
    """Missing values counted chunk by chunk (rows in input order).

    >>> c = MissingCounts()
    >>> c.add(np.array([False, True]), np.array([False, True]), np.array([False, False]))
    array([False,  True])
    >>> _ = c.add(np.array([False]), np.array([False]), np.array([True]))
    >>> c.rows, c.bad, c.first_bad, c.item
    (3, 2, 1, 1)
    """

    rows: int = 0
    user: int = 0
    item: int = 0
    time: int = 0
    bad: int = 0
    first_bad: int = -1

    def add(self, miss_user: np.ndarray, miss_item: np.ndarray, miss_time: np.ndarray) -> np.ndarray:
        """Count one chunk (the next rows); -> its mask of bad rows."""
        bad = miss_user | miss_item | miss_time
        n_bad = int(np.count_nonzero(bad))
        if n_bad and self.first_bad < 0:
            self.first_bad = self.rows + int(np.argmax(bad))
        self.user += int(np.count_nonzero(miss_user))
        self.item += int(np.count_nonzero(miss_item))
        self.time += int(np.count_nonzero(miss_time))
        self.bad += n_bad
        self.rows += len(bad)
        return bad

    def merge(self, other: MissingCounts) -> MissingCounts:
        """These counts followed by ``other``'s (the rows after these): per-partition counts added up."""
        first = self.first_bad if self.first_bad >= 0 else (self.rows + other.first_bad if other.first_bad >= 0 else -1)
        return MissingCounts(
            rows=self.rows + other.rows,
            user=self.user + other.user,
            item=self.item + other.item,
            time=self.time + other.time,
            bad=self.bad + other.bad,
            first_bad=first,
        )

    def report(self, inputs: tuple[InputInfo, ...], strict: bool) -> dict[str, Any]:
        """The step's report; raises with ``strict`` when a row is missing, or when no row is left."""
        if self.bad and strict:
            raise strict_missing(self.bad, locate(inputs, self.first_bad))
        if self.bad == self.rows:
            raise no_rows_left(self.rows)
        return missing_report(self.rows, self.user, self.item, self.time, self.bad)


def drop_missing(log: Log, strict: bool) -> tuple[Interactions, dict[str, Any]]:
    """-> (the rows that have a user, an item and a timestamp, in input order; the step's report)."""
    n = log.num_rows
    rows = Interactions.of(log)
    if n and int(log.user_codes.min()) >= 0 and int(log.item_codes.min()) >= 0 and bool(log.time_valid.all()):
        report = missing_report(n, 0, 0, 0, 0)  # the usual case: three reductions, no masks
        report.update(users_removed=0, items_removed=0)
        return rows, report
    counts = MissingCounts()
    bad = counts.add(log.user_codes < 0, log.item_codes < 0, ~log.time_valid)
    report = counts.report(log.inputs, strict)
    if counts.bad == 0:
        report.update(users_removed=0, items_removed=0)
        return rows, report
    kept = rows.take(~bad)
    before_u = num_present(log.user_codes[log.user_codes >= 0])
    before_i = num_present(log.item_codes[log.item_codes >= 0])
    report.update(users_removed=before_u - num_present(kept.user), items_removed=before_i - num_present(kept.item))
    return kept, report
