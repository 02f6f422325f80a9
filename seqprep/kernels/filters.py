"""Cleaning kernels: time window, rating bound, dedup, k-core and sessions.

Every kernel takes columns in input order and returns a boolean keep-mask in that same order (plus
counts where a step has rounds), so the rows that survive keep their input order and the later
stable time sort sees the same tie-break as without filtering. No Python loop over rows or users:
k-core loops over its few rounds only. The rows stay in place under a keep-mask; the count tables
are taken once (:func:`code_counts`) and each round subtracts the counts of the rows it drops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np

from .sequences import code_counts as sequence_code_counts
from .sequences import time_order
from .vocab import user_item_counts

__all__ = [
    "time_window",
    "rating_at_least",
    "dedup",
    "kcore",
    "kcore_counted",
    "KcoreResult",
    "kcore_passes",
    "kcore_pass_rounds",
    "kcore_rounds",
    "KcoreTables",
    "KcoreRemove",
    "session_ids",
    "num_present",
    "code_counts",
    "COUNT_CHUNK",
    "DedupMode",
]

DedupMode = Literal["none", "exact", "first", "last", "consecutive"]


#: Up to this many codes :func:`code_counts` is one ``np.bincount`` (its intp copy is small).
COUNT_CHUNK = 1 << 16


def code_counts(codes: np.ndarray, minlength: int = 0) -> np.ndarray:
    """``np.bincount(codes, minlength=minlength)``, the same int64 counts, without a temporary as
    large as ``codes``.

    ``np.bincount`` first copies int32 codes to a fresh intp array (40 MB for 5M codes, every page
    of it faulted in) and counts that; beyond :data:`COUNT_CHUNK` codes they are counted in place
    into one table (:func:`seqprep.kernels.sequences.code_counts`).

    >>> code_counts(np.array([3, 0, 3, 5], dtype=np.int32), minlength=7).tolist()
    [1, 0, 0, 2, 0, 1, 0]
    """
    if len(codes) <= COUNT_CHUNK:
        return np.bincount(codes, minlength=minlength)
    return sequence_code_counts(codes, minlength)


def num_present(codes: np.ndarray) -> int:
    """How many distinct non-negative codes occur.

    >>> num_present(np.array([3, 0, 3, 5], dtype=np.int32))
    3
    """
    if len(codes) == 0:
        return 0
    return int(np.count_nonzero(code_counts(codes)))


def time_window(time: np.ndarray, since: float | None = None, until: float | None = None) -> np.ndarray:
    """Keep-mask of the half-open window ``since <= time < until`` (a missing bound is open).

    >>> time_window(np.array([5, 10, 15, 20]), since=10, until=20)
    array([False,  True,  True, False])
    """
    keep = np.ones(len(time), dtype=bool)
    if since is not None:
        keep &= time >= since
    if until is not None:
        keep &= time < until
    return keep


def rating_at_least(rating: np.ndarray, min_rating: float) -> np.ndarray:
    """Keep-mask of ``rating >= min_rating``; a missing (NaN) rating is not kept.

    The bound is rounded to the ratings' own float precision first, so a float32 rating written
    ``0.7`` meets ``--min-rating 0.7`` (float32(0.7) < 0.7 as a double).

    >>> rating_at_least(np.array([1.0, 4.0, np.nan, 5.0], dtype=np.float32), 4)
    array([False,  True, False,  True])
    >>> rating_at_least(np.array([0.7, 0.6], dtype=np.float32), 0.7)
    array([ True, False])
    """
    bound = np.asarray(min_rating, dtype=rating.dtype) if rating.dtype.kind == "f" else min_rating
    return np.asarray(rating >= bound)


def _bits(x: np.ndarray) -> np.ndarray:
    """An integer view of ``x`` for equality tests: floats with one NaN and one zero (-0.0 == 0.0)."""
    if np.issubdtype(x.dtype, np.integer):
        return x
    f = x.astype(np.float64) + 0.0  # a copy; -0.0 + 0.0 is 0.0
    f[np.isnan(f)] = np.nan
    return f.view(np.int64)


def _pair_key(user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """One int64 per (user, item) code pair, equal exactly when both codes are equal."""
    width = int(item.max()) + 1 if len(item) else 1
    return user.astype(np.int64) * width + item


def dedup(
    user: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    rating: np.ndarray | None,
    mode: DedupMode,
) -> np.ndarray:
    """Keep-mask (input order) of the rows a dedup ``mode`` keeps.

    - ``exact``: of the rows equal in (user, item, time, rating), the first in input order;
    - ``first`` / ``last``: one row per (user, item) pair, the first / last in the stable time order
      (earliest / latest timestamp; equal timestamps ordered by input order);
    - ``consecutive``: in each user's stable time order, the first row of every run of one item.

    >>> u = np.array([0, 0, 0, 0]); i = np.array([7, 7, 8, 7]); t = np.array([1, 2, 3, 4])
    >>> dedup(u, i, t, None, "first"), dedup(u, i, t, None, "last")
    (array([ True, False,  True, False]), array([False, False,  True,  True]))
    >>> dedup(u, i, t, None, "consecutive")
    array([ True, False,  True,  True])
    """
    n = len(user)
    keep = np.ones(n, dtype=bool)
    if mode == "none" or n < 2:
        return keep
    if mode == "consecutive":
        order = time_order(user, time)
        us, its = user[order], item[order]
        repeat = (us[1:] == us[:-1]) & (its[1:] == its[:-1])
        keep[order[1:][repeat]] = False
        return keep
    pair = _pair_key(user, item)
    # stable order by (user, item, time): the fast (user, time) sort, then a stable sort by pair
    by_time = time_order(user, time)
    order = by_time[np.argsort(pair[by_time], kind="stable")]
    ps = pair[order]
    same = ps[1:] == ps[:-1]
    if mode in ("first", "last"):
        drop = order[1:][same] if mode == "first" else order[:-1][same]
        keep[drop] = False
        return keep
    if mode == "exact":
        tb = _bits(time)[order]
        same &= tb[1:] == tb[:-1]  # runs of equal (user, item, time), each run in input order
        if rating is None:
            keep[order[1:][same]] = False
            return keep
        # rows in runs longer than one: order them by (run, rating), stably, and drop repeats
        in_run = np.zeros(n, dtype=bool)
        in_run[1:] |= same
        in_run[:-1] |= same
        pos = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate(([True], ~same)))[pos]
        rb = _bits(rating)[order[pos]]
        sub = np.lexsort((rb, run))  # stable: equal (run, rating) keep input order
        run, rb, rows = run[sub], rb[sub], order[pos[sub]]
        dup = (run[1:] == run[:-1]) & (rb[1:] == rb[:-1])
        keep[rows[1:][dup]] = False
        return keep
    msg = f"unknown dedup mode {mode!r}"
    raise ValueError(msg)


#: One k-core removal: (bad users, bad items) -> (rows removed, the kept rows' tables).
KcoreRemove = Callable[[np.ndarray, np.ndarray], tuple[int, "KcoreTables"]]


class KcoreTables(NamedTuple):
    """The count tables of the rows still kept: ``present_*`` counts every row of a user / item,
    ``degree_*`` only the rows k-core counts (all of them, or the target events)."""

    present_user: np.ndarray
    present_item: np.ndarray
    degree_user: np.ndarray
    degree_item: np.ndarray


def kcore_rounds(
    tables: KcoreTables,
    remove: KcoreRemove,
    *,
    min_user: int = 0,
    min_item: int = 0,
    max_rounds: int | None = None,
) -> tuple[list[dict[str, int]], bool]:
    """The k-core rounds on count tables: ``(rounds, fixpoint)`` as :func:`kcore` gives them.

    A round finds the users and items below their bound (among those present) and calls
    ``remove(bad_users, bad_items)``, which drops every kept row of one of them and returns how many
    rows it dropped and the new tables. Rounds repeat until no present user or item is below its
    bound (the fixpoint) or ``max_rounds`` rounds have run. Rows live wherever ``remove`` keeps them
    (arrays here, spilled columns under ``--memory-limit``): the rule lives here once.

    >>> t = KcoreTables(np.array([1, 2]), np.array([3]), np.array([1, 2]), np.array([3]))
    >>> def remove(bad_u, bad_i):
    ...     return 1, KcoreTables(np.array([0, 2]), np.array([2]), np.array([0, 2]), np.array([2]))
    >>> kcore_rounds(t, remove, min_user=2)
    ([{'round': 1, 'rows_removed': 1, 'users_removed': 1, 'items_removed': 0}], True)
    """
    rounds: list[dict[str, int]] = []
    while True:
        bad_u = (tables.degree_user < min_user) & (tables.present_user > 0)
        bad_i = (tables.degree_item < min_item) & (tables.present_item > 0)
        if not bad_u.any() and not bad_i.any():
            return rounds, True
        if max_rounds is not None and len(rounds) >= max_rounds:
            return rounds, False
        removed, after = remove(bad_u, bad_i)
        users_now, items_now = np.count_nonzero(tables.present_user), np.count_nonzero(tables.present_item)
        users_next, items_next = np.count_nonzero(after.present_user), np.count_nonzero(after.present_item)
        rounds.append(
            {
                "round": len(rounds) + 1,
                "rows_removed": int(removed),
                "users_removed": int(users_now - users_next),
                "items_removed": int(items_now - items_next),
            }
        )
        tables = after
        if users_next == 0:
            return rounds, True


class KcoreResult(NamedTuple):
    """What :func:`kcore_counted` gives: the keep-mask, the rounds, whether the bounds hold, and
    the users and items present (with any row) before and after, as ``(users, items)``;
    ``kept_counts``: the kept rows of every user code and item code (``(users, items)``, int64
    tables as long as the largest code + 1), the last round's tables: a vocabulary fitted on the
    kept rows needs no recount."""

    keep: np.ndarray
    rounds: list[dict[str, int]]
    fixpoint: bool
    present_before: tuple[int, int]
    present_after: tuple[int, int]
    kept_counts: tuple[np.ndarray, np.ndarray] | None = None


def kcore(
    user: np.ndarray,
    item: np.ndarray,
    *,
    min_user: int = 0,
    min_item: int = 0,
    max_rounds: int | None = None,
    counted: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict[str, int]], bool]:
    """Iterative k-core: drop rows of users with < ``min_user`` rows or items with < ``min_item`` rows.

    One round takes the counts of every user and item over the remaining rows (kept up to date by
    subtracting each round's dropped rows) and drops, at once, every row whose user or item is below its bound - the one-pass rule of SASRec's
    ``DataProcessing.py``. Rounds repeat until nothing is dropped (the k-core, a fixpoint) or
    ``max_rounds`` rounds have run (:func:`kcore_rounds`). Returns ``(keep_mask, rounds, fixpoint)``:
    one dict per round that removed rows (``rows_removed``, ``users_removed``, ``items_removed``)
    and whether the result meets both bounds. With ``counted`` (a mask) only those rows count
    towards the bounds, while a user or item below its bound loses all its rows.

    >>> u = np.array([0, 0, 1, 1, 2]); i = np.array([5, 6, 5, 6, 5])
    >>> keep, rounds, fixpoint = kcore(u, i, min_user=2, min_item=2)
    >>> keep, [r["rows_removed"] for r in rounds], fixpoint
    (array([ True,  True,  True,  True, False]), [1], True)
    """
    res = kcore_counted(user, item, min_user=min_user, min_item=min_item, max_rounds=max_rounds, counted=counted)
    return res.keep, res.rounds, res.fixpoint


def kcore_counted(
    user: np.ndarray,
    item: np.ndarray,
    *,
    min_user: int = 0,
    min_item: int = 0,
    max_rounds: int | None = None,
    counted: np.ndarray | None = None,
    threads: int = 1,
) -> KcoreResult:
    """:func:`kcore`, with the users and items present before and after taken from the rounds' own
    count tables (a caller reporting them needs no further pass over the codes). ``threads``: the
    first user and item counts on two threads when > 1 (:func:`~seqprep.kernels.vocab.user_item_counts`).

    >>> r = kcore_counted(np.array([0, 0, 1, 1, 2]), np.array([5, 6, 5, 6, 5]), min_user=2, min_item=2)
    >>> r.present_before, r.present_after, [c.tolist() for c in r.kept_counts]
    ((3, 2), (2, 2), [[2, 2, 0], [0, 0, 0, 0, 0, 2, 2]])
    """
    n = len(user)
    if n == 0:
        return KcoreResult(np.ones(0, dtype=bool), [], True, (0, 0), (0, 0), (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    nu, ni = int(user.max()) + 1, int(item.max()) + 1
    # the rows stay where they are: a keep-mask, and count tables that lose the rows of each round
    # (no compacted copy of the codes a round, no recount of the rows left)
    present = user_item_counts(user, nu, item, ni, threads)
    degree = present if counted is None else (code_counts(user[counted], nu), code_counts(item[counted], ni))
    first = KcoreTables(*present, *degree)
    state: dict[str, Any] = {"keep": None, "tables": first}  # keep None: every row

    def remove(bad_u: np.ndarray, bad_i: np.ndarray) -> tuple[int, KcoreTables]:
        keep, t = state["keep"], state["tables"]
        drop = bad_u[user]
        drop |= bad_i[item]
        if keep is None:
            keep = state["keep"] = np.ones(n, dtype=bool)
        else:
            drop &= keep
        gone = np.flatnonzero(drop)
        del drop
        keep[gone] = False
        gu, gi = user[gone], item[gone]
        pu, pi = t.present_user - np.bincount(gu, minlength=nu), t.present_item - np.bincount(gi, minlength=ni)
        if counted is None:
            du, di = pu, pi
        else:
            c = counted[gone]
            du = t.degree_user - np.bincount(gu[c], minlength=nu)
            di = t.degree_item - np.bincount(gi[c], minlength=ni)
        state["tables"] = KcoreTables(pu, pi, du, di)
        return len(gone), state["tables"]

    before = (int(np.count_nonzero(first.present_user)), int(np.count_nonzero(first.present_item)))
    rounds, fixpoint = kcore_rounds(first, remove, min_user=min_user, min_item=min_item, max_rounds=max_rounds)
    last = state["tables"]
    after = (int(np.count_nonzero(last.present_user)), int(np.count_nonzero(last.present_item)))
    keep = state["keep"]
    kept = (last.present_user, last.present_item)
    return KcoreResult(np.ones(n, dtype=bool) if keep is None else keep, rounds, fixpoint, before, after, kept)


def kcore_passes(
    user: np.ndarray,
    item: np.ndarray,
    passes: tuple[str, ...],
    *,
    min_user: int = 0,
    min_item: int = 0,
) -> tuple[np.ndarray, list[dict[str, int]]]:
    """One-sided k-core passes in a fixed order: each pass recounts the rows left and drops the rows
    of the users (``"user"``) or of the items (``"item"``) below their bound; nothing is repeated.

    ``("user", "item", "user")`` is SR-GNN's session rule: sessions of one click out, then items
    seen fewer than ``min_item`` times among the sessions left, then sessions left shorter than
    ``min_user``. Returns ``(keep_mask, passes)``: one dict per pass (``pass``, ``on``,
    ``rows_removed``, ``users_removed``, ``items_removed``), as :func:`kcore_pass_rounds` gives them.

    >>> u = np.array([0, 1, 1, 2, 2]); i = np.array([5, 5, 6, 5, 6])
    >>> keep, done = kcore_passes(u, i, ("user", "item", "user"), min_user=2, min_item=2)
    >>> keep, [d["rows_removed"] for d in done]
    (array([False,  True,  True,  True,  True]), [1, 0, 0])
    """
    n = len(user)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep, []
    nu, ni = int(user.max()) + 1, int(item.max()) + 1

    cu, ci = code_counts(user, nu), code_counts(item, ni)
    tables = [KcoreTables(cu, ci, cu, ci)]  # of the rows kept: each pass subtracts the rows it drops

    def remove(bad_u: np.ndarray, bad_i: np.ndarray) -> tuple[int, KcoreTables]:
        bad = bad_u[user]
        bad |= bad_i[item]
        bad &= keep
        gone = np.flatnonzero(bad)
        del bad
        keep[gone] = False
        t = tables[0]
        cu = t.present_user - np.bincount(user[gone], minlength=nu)
        ci = t.present_item - np.bincount(item[gone], minlength=ni)
        tables[0] = KcoreTables(cu, ci, cu, ci)
        return len(gone), tables[0]

    report = kcore_pass_rounds(tables[0], remove, passes, min_user=min_user, min_item=min_item)
    return keep, report


def kcore_pass_rounds(
    tables: KcoreTables,
    remove: KcoreRemove,
    passes: tuple[str, ...],
    *,
    min_user: int = 0,
    min_item: int = 0,
) -> list[dict[str, int]]:
    """The one-sided passes of :func:`kcore_passes` on count tables (``present_*``: the kept rows of
    each user and item): a pass calls ``remove`` with the users (or the items) present below their
    bound, nothing on the other side. Rows live wherever ``remove`` keeps them (arrays, or spilled
    columns under ``--memory-limit``): the rule lives here once.

    >>> t = KcoreTables(np.array([1, 2]), np.array([3]), np.array([1, 2]), np.array([3]))
    >>> def remove(bad_u, bad_i):
    ...     return 1, KcoreTables(np.array([0, 2]), np.array([2]), np.array([0, 2]), np.array([2]))
    >>> kcore_pass_rounds(t, remove, ("user",), min_user=2)
    [{'pass': 1, 'on': 'user', 'rows_removed': 1, 'users_removed': 1, 'items_removed': 0}]
    """
    report: list[dict[str, int]] = []
    for k, on in enumerate(passes, start=1):
        if on not in ("user", "item"):
            msg = f"a k-core pass is 'user' or 'item', not {on!r}"
            raise ValueError(msg)
        counts, bound = (tables.present_user, min_user) if on == "user" else (tables.present_item, min_item)
        bad = (counts > 0) & (counts < bound)
        none_u, none_i = np.zeros(len(tables.present_user), bool), np.zeros(len(tables.present_item), bool)
        removed, after = remove(bad, none_i) if on == "user" else remove(none_u, bad)
        report.append(
            {
                "pass": k,
                "on": on,
                "rows_removed": int(removed),
                "users_removed": int(np.count_nonzero(tables.present_user) - np.count_nonzero(after.present_user)),
                "items_removed": int(np.count_nonzero(tables.present_item) - np.count_nonzero(after.present_item)),
            }
        )
        tables = after
    return report


def session_ids(offsets: np.ndarray, timestamps: np.ndarray, gap: float) -> np.ndarray:
    """Session number (int32, from 0 within each user) of every interaction of CSR sequences.

    A new session starts at a user's first interaction and after every gap strictly longer than
    ``gap`` between consecutive timestamps of the (time-sorted) sequence.

    >>> session_ids(np.array([0, 4, 6]), np.array([0, 10, 40, 41, 5, 100]), gap=20)
    array([0, 0, 1, 1, 0, 1], dtype=int32)
    """
    n = len(timestamps)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    offsets = np.asarray(offsets, dtype=np.int64)
    new = np.zeros(n, dtype=bool)
    new[1:] = np.diff(timestamps) > gap
    starts = offsets[:-1][offsets[:-1] < offsets[1:]]  # first position of every non-empty row
    new[starts] = True
    cum = np.cumsum(new, dtype=np.int64)  # global session number + 1
    first = np.repeat(cum[starts], np.diff(offsets)[offsets[:-1] < offsets[1:]])
    return (cum - first).astype(np.int32)
