"""Count tables of the kept rows: what every vocabulary is fitted from.

:class:`CodeCounts` holds, per user code and per item code of the log, the kept rows and (for a
``first-seen`` order) the position of the first one. The local build takes them from its arrays
(:meth:`CodeCounts.of`); ``--memory-limit`` adds them up chunk by chunk over its spilled columns
(:class:`FirstRows` keeps the first positions). Either way the vocabularies are fitted from these
tables by the same functions (:func:`seqprep.steps.vocabularies.vocabularies_from_counts`).
"""

from __future__ import annotations

import numpy as np

from ..config import BuildConfig
from ..kernels.sequences import code_counts
from ..kernels.vocab import first_positions, first_seen_codes
from ..model import Log
from ..records import record

__all__ = ["NEVER", "CodeCounts", "FirstRows", "first_rows"]

#: The first position of a code with no row.
NEVER = np.iinfo(np.int64).max


@record
class CodeCounts:
    """Kept rows per user code and per item code; ``user_first`` / ``item_first``: the position of
    each code's first kept row (any integers that order like the rows: only for ``first-seen``)."""

    users: np.ndarray
    items: np.ndarray
    user_first: np.ndarray | None = None
    item_first: np.ndarray | None = None

    @classmethod
    def of(cls, user: np.ndarray, item: np.ndarray, log: Log, config: BuildConfig) -> CodeCounts:
        """The tables of the rows ``user`` / ``item`` (codes, in input order).

        >>> import pyarrow as pa
        >>> from seqprep.config import BuildConfig
        >>> from seqprep.model import Log
        >>> log = Log(np.zeros(0, np.int32), pa.array(["a", "b"]), np.zeros(0, np.int32), pa.array(["x"]),
        ...           np.zeros(0), np.zeros(0, bool), "epoch", None, ())
        >>> c = CodeCounts.of(np.array([1, 1, 0]), np.array([0, 0, 0]), log, BuildConfig(("-",), "o", user_order="first-seen"))
        >>> c.users.tolist(), c.items.tolist(), c.user_first[[1, 0]].tolist(), c.item_first
        ([1, 2], [3], [0, 1], None)
        """
        n_users, n_items = len(log.user_ids), len(log.item_ids)
        return cls(
            users=code_counts(user, n_users),  # (chunk by chunk: np.bincount copies int32 codes to int64)
            items=code_counts(item, n_items),
            user_first=first_positions(first_seen_codes(user), n_users) if config.user_order == "first-seen" else None,
            item_first=first_positions(first_seen_codes(item), n_items) if config.item_order == "first-seen" else None,
        )


def first_rows(codes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each distinct code, the first of its ``rows``), codes in order of their first row.

    >>> [a.tolist() for a in first_rows(np.array([4, 2, 4, 7]), np.array([10, 11, 12, 13]))]
    [[4, 2, 7], [10, 11, 13]]
    """
    codes = np.asarray(codes)
    distinct, at = np.unique(codes, return_index=True)  # at: each code's first position
    by_first = np.argsort(at, kind="stable")
    return distinct[by_first], np.asarray(rows)[at[by_first]]


class FirstRows:
    """The first row of every code, gathered from chunks (in any order) of (codes, row numbers).

    >>> f = FirstRows(3)
    >>> f.add(np.array([2, 2]), np.array([7, 8])); f.add(np.array([2, 0]), np.array([3, 9]))
    >>> f.first.tolist() == [9, NEVER, 3]
    True
    """

    def __init__(self, size: int) -> None:
        self.first = np.full(size, NEVER, dtype=np.int64)

    def add(self, codes: np.ndarray, rows: np.ndarray) -> None:
        if len(codes) == 0:
            return
        u, r = first_rows(codes, rows)
        self.first[u] = np.minimum(self.first[u], r)
