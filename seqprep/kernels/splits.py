"""Split, history, window and negative-sampling kernels: CSR offsets in, index arrays out.

Every function works on sequences laid out in CSR form (row ``u`` is positions
``offsets[u]:offsets[u+1]``, each row sorted by time, stably). A split is a ``part`` array with one
int8 per position: ``TRAIN`` (0), ``VALID`` (1) or ``TEST`` (2) for the targets, ``HELD_OUT`` (3) for
the other interactions of a held-out user (users split). No Python loop over users or rows;
the only loops are over a few rejection-sampling rounds.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TRAIN",
    "VALID",
    "TEST",
    "HELD_OUT",
    "row_of",
    "row_counts",
    "loo_parts",
    "ratio_parts",
    "time_parts",
    "time_quantile",
    "users_parts",
    "days_parts",
    "prefix_rows",
    "held_out_positions",
    "eval_positions",
    "gather_ranges",
    "ranges_mask",
    "tail_ranges",
    "sliding_windows",
    "row_streams",
    "window_positions",
    "sample_negatives",
]

TRAIN, VALID, TEST, HELD_OUT = 0, 1, 2, 3


def row_of(offsets: np.ndarray) -> np.ndarray:
    """The row (user) of every position of a CSR layout.

    >>> row_of(np.array([0, 2, 2, 3]))
    array([0, 0, 2])
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def row_counts(offsets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """How many positions of each CSR row ``mask`` holds (int64, one per row).

    The positions of the rarer side of ``mask`` (the few held-out positions of a leave-one-out
    split, say) are found and counted per row, so no full-size int64 temporary is made (a
    cumulative sum of ``mask`` is 8 bytes a position, and fresh pages are what such a pass pays
    for most).

    >>> row_counts(np.array([0, 3, 3, 5]), np.array([1, 0, 1, 1, 1], dtype=bool)).tolist()
    [2, 0, 2]
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    n = len(mask)
    true = int(np.count_nonzero(mask))
    rare = np.flatnonzero(mask) if 2 * true <= n else np.flatnonzero(~mask)
    per_row = np.bincount(np.searchsorted(offsets, rare, side="right") - 1, minlength=len(lengths))
    return per_row if 2 * true <= n else lengths - per_row


def loo_parts(
    offsets: np.ndarray, min_len: int = 3, targets: np.ndarray | None = None, valid_min_len: int | None = None
) -> np.ndarray:
    """Leave-one-out: a row's last position is TEST, the second-last VALID, the rest TRAIN.

    Rows shorter than ``min_len`` (3: the SASRec rule) stay entirely in TRAIN. ``valid_min_len``
    (default ``min_len``) is the length a row needs for its VALID position as well: a row of at
    least ``min_len`` but fewer than ``valid_min_len`` positions has a TEST position and no VALID
    one (its second-last position stays TRAIN; RecBole's leave-one-out is ``min_len=3,
    valid_min_len=4``). With ``targets`` (a mask of the positions that may be targets) the last and
    second-last *target* positions are TEST and VALID and the lengths count targets; positions
    after the VALID one (after the TEST one in a row without VALID) that are not targets are
    HELD_OUT (history of the TEST target only, never training data).

    >>> loo_parts(np.array([0, 4, 6])).tolist()
    [0, 0, 1, 2, 0, 0]
    >>> loo_parts(np.array([0, 4, 7]), valid_min_len=4).tolist()
    [0, 0, 1, 2, 0, 0, 2]
    >>> loo_parts(np.array([0, 6]), targets=np.array([1, 0, 1, 0, 1, 0], dtype=bool)).tolist()
    [0, 0, 1, 3, 2, 3]
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    vmin = min_len if valid_min_len is None else max(valid_min_len, min_len)
    part = np.zeros(int(offsets[-1]), dtype=np.int8)
    if targets is None:
        lengths = np.diff(offsets)
        part[offsets[1:][lengths >= min_len] - 1] = TEST
        part[offsets[1:][lengths >= vmin] - 2] = VALID
        return part
    pos = np.flatnonzero(targets)  # target positions, in order
    per_row = np.bincount(row_of(offsets)[pos], minlength=len(offsets) - 1) if len(pos) else np.zeros(len(offsets) - 1, np.int64)
    last = np.cumsum(per_row)  # index in ``pos`` past each row's last target
    rows = np.flatnonzero(per_row >= min_len)
    with_valid = per_row[rows] >= vmin
    test = pos[last[rows] - 1]
    valid = pos[last[rows[with_valid]] - 2]
    held_from = test + 1  # the first position that is HELD_OUT when not a target
    held_from[with_valid] = valid + 1
    after = np.zeros(int(offsets[-1]) + 1, dtype=np.int64)
    np.add.at(after, held_from, 1)
    np.add.at(after, offsets[1:][rows], -1)
    held = np.cumsum(after)[:-1] > 0
    part[held & ~targets] = HELD_OUT
    part[test] = TEST
    part[valid] = VALID
    return part


def ratio_parts(offsets: np.ndarray, cuts: tuple[int, int, int], targets: np.ndarray | None = None) -> np.ndarray:
    """Per-row chronological fractions: with ``cuts = (a, b, d)`` and ``n`` the row's length, the
    row's first ``ceil(n * a / d)`` positions are TRAIN, those up to ``ceil(n * b / d)`` VALID, the
    rest TEST (exact integer arithmetic: ``a / d`` is the train fraction, ``b / d`` the train and
    valid fractions together). With ``targets`` the cut counts target positions only (``n`` the
    row's targets, the k-th target takes the part of rank k); positions that are not targets are
    TRAIN up to the row's first VALID or TEST target and HELD_OUT after it (history only).

    >>> ratio_parts(np.array([0, 10, 13]), (7, 8, 10)).tolist()
    [0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 0, 0, 0]
    >>> ratio_parts(np.array([0, 6]), (1, 2, 4), np.array([1, 0, 1, 1, 0, 1], dtype=bool)).tolist()
    [0, 0, 1, 2, 3, 2]
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    a, b, d = (int(x) for x in cuts)
    size, rows = int(offsets[-1]), len(offsets) - 1
    if targets is None:
        n, first, pos = np.diff(offsets), offsets[:-1], None
    else:
        pos = np.flatnonzero(targets)  # target positions, in order
        n = np.bincount(row_of(offsets)[pos], minlength=rows) if len(pos) else np.zeros(rows, np.int64)
        first = np.cumsum(n) - n  # index in ``pos`` of each row's first target
    # one +1 marker where a row's VALID part starts and one where its TEST part starts (both at a
    # row's end when empty), -2 at the row's end: the running sum is the part, 0 TRAIN .. 2 TEST
    marks = []
    for end in (-((-n * a) // d), -((-n * b) // d)):  # ceil(n * a / d), ceil(n * b / d), exactly
        at = first + end
        if pos is not None:  # the position of the target of that rank (the row's end when none)
            at = np.where(end < n, pos[np.minimum(at, max(len(pos) - 1, 0))] if len(pos) else 0, offsets[1:])
        marks.append(at)
    diff = np.zeros(size + 1, dtype=np.int8)
    np.add.at(diff, np.concatenate(marks), 1)
    np.add.at(diff, offsets[1:], -2)
    part = np.cumsum(diff[:size], dtype=np.int8)
    if targets is not None:
        part[~targets] = np.where(part[~targets] > 0, HELD_OUT, TRAIN)
    return part


def time_parts(times: np.ndarray, valid_from: float, test_from: float, targets: np.ndarray | None = None) -> np.ndarray:
    """Global temporal split: ``t < valid_from`` TRAIN, ``valid_from <= t < test_from`` VALID, else TEST.

    With ``targets``, positions from ``valid_from`` on that are not targets are HELD_OUT (history of
    later targets, never training data).

    >>> time_parts(np.array([1, 5, 5, 9, 12]), 5, 10).tolist()
    [0, 1, 1, 1, 2]
    >>> time_parts(np.array([1, 5, 5, 9, 12]), 5, 10, np.array([1, 1, 0, 1, 0], dtype=bool)).tolist()
    [0, 1, 3, 1, 3]
    """
    part = np.zeros(len(times), dtype=np.int8)
    part[times >= valid_from] = VALID
    part[times >= test_from] = TEST
    if targets is not None:
        part[(part != TRAIN) & ~targets] = HELD_OUT
    return part


def time_quantile(times: np.ndarray, q: float) -> float | int:
    """The timestamp at rank ``floor(q * n)`` (0-based) in time order: about ``q`` of rows come before it.

    With ties fewer rows may come strictly before it; never more than ``floor(q * n)``.

    >>> time_quantile(np.array([4, 1, 3, 2, 5]), 0.8)
    5
    """
    n = len(times)
    k = min(int(np.floor(q * n)), n - 1)
    return np.partition(times, k)[k].item()


def users_parts(offsets: np.ndarray, fractions: tuple[float, float, float], seed: int, min_len: int = 2) -> np.ndarray:
    """Whole users held out: a seeded random ``fractions`` share of the rows goes to TRAIN/VALID/TEST.

    Only rows with at least ``min_len`` positions can be held out (a held-out user needs a history and
    a target); shorter rows stay in TRAIN. Eligible rows are permuted with
    ``numpy.random.default_rng(seed)``; the first ``round(f_valid * m)`` go to VALID, the next
    ``round(f_test * m)`` to TEST. Returns one part per row (user), not per position.

    >>> users_parts(np.array([0, 2, 4, 6, 8]), (0.5, 0.25, 0.25), seed=0).tolist()
    [2, 0, 1, 0]
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    eligible = np.flatnonzero(np.diff(offsets) >= min_len)
    m = len(eligible)
    n_valid = int(round(fractions[1] * m))
    n_test = min(int(round(fractions[2] * m)), m - n_valid)
    perm = np.random.default_rng(seed).permutation(eligible)
    part = np.zeros(len(offsets) - 1, dtype=np.int8)
    part[perm[:n_valid]] = VALID
    part[perm[n_valid : n_valid + n_test]] = TEST
    return part


def days_parts(offsets: np.ndarray, dates: np.ndarray, test_days: int) -> tuple[np.ndarray, dict[str, int]]:
    """Whole sequences by date: ``dates[u]`` is row ``u``'s date (a day number, e.g. from
    :func:`seqprep.kernels.vocab.last_days`).

    With ``D`` the latest date of the non-empty rows, rows dated after ``D - test_days`` are test
    sequences (their first position HELD_OUT, every later one a TEST target: each prefix -> the next
    item), rows dated before it are TRAIN, and rows dated exactly ``D - test_days`` are in neither
    part (HELD_OUT throughout): SR-GNN's strict ``<`` and ``>``. Returns the part per position and
    ``{"last_day", "boundary_day", "train_sequences", "test_sequences", "boundary_sequences"}``.

    >>> part, facts = days_parts(np.array([0, 2, 4, 7]), np.array([0, 2, 8]), 6)
    >>> part.tolist(), facts["boundary_sequences"]
    ([0, 0, 3, 3, 3, 2, 2], 1)
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    dates = np.asarray(dates, dtype=np.int64)
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    last = int(dates[nonempty].max()) if nonempty.any() else 0
    boundary = last - test_days
    test = nonempty & (dates > boundary)
    train = nonempty & (dates < boundary)
    seq_part = np.full(len(lengths), HELD_OUT, dtype=np.int8)
    seq_part[train] = TRAIN
    seq_part[test] = TEST
    part = np.repeat(seq_part, lengths)
    part[offsets[:-1][test]] = HELD_OUT
    facts = {
        "last_day": last,
        "boundary_day": boundary,
        "train_sequences": int(train.sum()),
        "test_sequences": int(test.sum()),
        "boundary_sequences": int((nonempty & (dates == boundary)).sum()),
    }
    return part, facts


def prefix_rows(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every prefix -> next item of each CSR row: ``(target position, history start, history length)``.

    A row of ``L`` items gives ``L - 1`` rows; within a row the longest prefix comes first (target
    the last item, then the second-last, ...), the order of SR-GNN's ``process_seqs``.

    >>> prefix_rows(np.array([0, 3, 4, 6]))
    (array([2, 1, 5]), array([0, 0, 4]), array([2, 1, 1]))
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    per_row = np.maximum(np.diff(offsets) - 1, 0)
    row = np.repeat(np.arange(len(per_row)), per_row)
    k = np.arange(int(per_row.sum())) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    target = offsets[1:][row] - 1 - k
    start = offsets[:-1][row]
    return target, start, target - start


def held_out_positions(offsets: np.ndarray, user_part: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray:
    """Per-user parts -> per-position parts: a held-out user's last position is its target (VALID or
    TEST), its other positions are HELD_OUT; a training user's positions are TRAIN. With ``targets``
    the target is the user's last *target* position (a held-out user without one has none).

    >>> held_out_positions(np.array([0, 2, 5]), np.array([0, 2], dtype=np.int8)).tolist()
    [0, 0, 3, 3, 2]
    >>> held_out_positions(np.array([0, 2, 5]), np.array([0, 2], dtype=np.int8), np.array([1, 1, 1, 1, 0], dtype=bool)).tolist()
    [0, 0, 3, 2, 3]
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    part = np.repeat(np.where(user_part != TRAIN, HELD_OUT, TRAIN).astype(np.int8), lengths)
    if targets is None:
        nonempty = lengths > 0
        part[offsets[1:][nonempty] - 1] = user_part[nonempty]
        return part
    pos = np.flatnonzero(targets)
    rows = row_of(offsets)[pos]
    last = np.zeros(len(lengths), dtype=np.int64) - 1
    last[rows] = pos  # positions are increasing: the last one of each row wins
    has = (last >= 0) & (user_part != TRAIN)
    part[last[has]] = user_part[has]
    return part


def eval_positions(
    offsets: np.ndarray,
    times: np.ndarray,
    part: np.ndarray,
    *,
    strict_time: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation rows: ``(target position, history start, history length)``.

    Targets are the VALID/TEST positions. A history is always a prefix of the target's own row: the positions before the target in
    the stable time order, so it never holds the target nor a later timestamp. With ``strict_time``
    positions tied with the target's timestamp are left out too (history = strictly earlier times).

    >>> off, t = np.array([0, 4]), np.array([1, 2, 2, 3])
    >>> eval_positions(off, t, np.array([0, 1, 1, 2], dtype=np.int8), strict_time=True)
    (array([1, 2, 3]), array([0, 0, 0]), array([1, 1, 3]))
    >>> eval_positions(off, t, np.array([0, 1, 1, 2], dtype=np.int8), strict_time=False)[2]
    array([1, 2, 3])
    >>> eval_positions(off, t, np.array([3, 3, 3, 2], dtype=np.int8), strict_time=False)
    (array([3]), array([0]), array([3]))
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = int(offsets[-1])
    pos = np.flatnonzero((part == VALID) | (part == TEST))
    start = offsets[np.searchsorted(offsets, pos, side="right") - 1]
    if strict_time and n:
        # first position of each (row, timestamp) run; a history ends where the target's run starts
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = times[1:] != times[:-1]
        new_run[offsets[:-1][offsets[:-1] < n]] = True
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
        length = run_start[pos] - start
    else:
        length = pos - start
    return pos, start, length


def gather_ranges(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the ranges ``[starts[k], starts[k] + lengths[k])``: ``(offsets, positions)``.

    >>> gather_ranges(np.array([5, 0, 2]), np.array([2, 0, 3]))
    (array([0, 2, 2, 5]), array([5, 6, 2, 3, 4]))
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    within = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    return offsets, np.repeat(np.asarray(starts, dtype=np.int64), lengths) + within


def ranges_mask(size: int, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A boolean mask of ``size`` positions, True inside the ranges ``[starts[k], starts[k] + lengths[k])``.

    The ranges must not overlap; then ``values[mask]`` equals ``values[gather_ranges(...)[1]]`` for
    ranges in increasing order, in one pass (a +1/-1 difference array and a cumulative sum). Ranges
    that cover most positions (the histories of a leave-one-out split: every user's positions but
    the last one or two) are marked the other way round: all True, then the few gaps between them
    set False.

    >>> ranges_mask(8, np.array([1, 5]), np.array([2, 3])).astype(int).tolist()
    [0, 1, 1, 0, 0, 1, 1, 1]
    >>> ranges_mask(8, np.array([4, 0]), np.array([3, 3])).astype(int).tolist()
    [1, 1, 1, 0, 1, 1, 1, 0]
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if 2 * int(lengths.sum()) > size:
        mask = np.ones(size, dtype=bool)
        mask[_gaps(size, starts, lengths)] = False
        return mask
    ends = starts + lengths
    diff = np.zeros(size + 1, dtype=np.int8)
    np.add.at(diff, starts, 1)
    np.add.at(diff, ends, -1)
    return np.cumsum(diff[:size], dtype=np.int8) > 0


def _gaps(size: int, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions of ``size`` outside the (non-overlapping) ranges, in order: those before the
    first range, between two ranges in order of their starts and after the last."""
    by_start = np.argsort(starts, kind="stable")
    starts, ends = starts[by_start], starts[by_start] + lengths[by_start]
    gap_from = np.concatenate(([0], np.maximum.accumulate(ends)))  # (an empty range ends nothing)
    gap_to = np.concatenate((starts, [size]))
    return gather_ranges(gap_from, np.maximum(gap_to - gap_from, 0))[1]


def tail_ranges(starts: np.ndarray, lengths: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, lengths)`` of the last ``max_len`` positions of each range.

    >>> tail_ranges(np.array([0, 10]), np.array([5, 2]), 3)
    (array([ 2, 10]), array([3, 2]))
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    keep = np.minimum(lengths, max_len)
    return np.asarray(starts, dtype=np.int64) + lengths - keep, keep


def sliding_windows(
    items: np.ndarray, offsets: np.ndarray, inputs_len: int, targets_len: int, targets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Caser's training windows: ``(inputs [n, L], targets [n, T], rows [n])``.

    Every run of ``L + T`` consecutive items of a row gives one window (step 1, oldest first); a row
    shorter than ``L + T`` but longer than ``T`` gives one window whose inputs are left-padded with 0
    (Caser's rule). Rows of ``T`` items or fewer give none. With ``targets`` (a mask aligned with
    ``items``) only the windows whose ``T`` target positions are all targets are kept.

    >>> x, y, r = sliding_windows(np.array([1, 2, 3, 4, 7, 8]), np.array([0, 4, 6]), 2, 1)
    >>> x.tolist(), y.tolist(), r.tolist()
    ([[1, 2], [2, 3], [0, 7]], [[3], [4], [8]], [0, 0, 1])
    """
    idx, rows = window_positions(offsets, inputs_len, targets_len, targets)
    valid = idx >= 0
    values = np.where(valid, items[np.where(valid, idx, 0)] if len(items) else 0, 0).astype(np.int32)
    return values[:, :inputs_len], values[:, inputs_len:], rows


def window_positions(
    offsets: np.ndarray, inputs_len: int, targets_len: int, targets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The positions behind :func:`sliding_windows`: ``(int64 [n, L + T] with -1 for padding, rows [n])``,
    so that anything aligned with the items (a feature) is cut into the same windows. With
    ``targets`` only the windows whose ``T`` target positions are all targets are kept.

    >>> idx, r = window_positions(np.array([0, 4, 6]), 2, 1)
    >>> idx.tolist(), r.tolist()
    ([[0, 1, 2], [1, 2, 3], [-1, 4, 5]], [0, 0, 1])
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    width = inputs_len + targets_len
    lengths = np.diff(offsets)
    count = np.where(lengths > targets_len, np.maximum(lengths - width + 1, 1), 0)
    rows = np.repeat(np.arange(len(lengths)), count)
    k = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    # window k of row u ends at offsets[u] + max(width, len) ... : short rows end at the row's end
    end = offsets[:-1][rows] + np.minimum(lengths[rows], width) + k
    idx = end[:, None] - width + np.arange(width)
    if targets is not None and len(rows):
        keep = targets[idx[:, inputs_len:]].all(axis=1)
        idx, rows = idx[keep], rows[keep]
    idx[idx < offsets[:-1][rows][:, None]] = -1
    return idx, rows.astype(np.int32)


#: Odd 64-bit constants of SplitMix64 (Steele, Lea & Flood, 2014), the counter-based draws below.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_NEGATIVES = 0x6E65676174697665  # "negative": the salt of the negatives' streams
_GUMBEL = 1 << 62  # slot numbers from here on key the exact fill's Gumbel noise


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64) + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def row_streams(seed: int, users: np.ndarray, within: np.ndarray) -> np.ndarray:
    """One random stream (a uint64 key) per row, from the seed, the row's user and the row's position
    inside that user's sequence: a row's draws depend on nothing else, so any split of the users
    into parts (the Dask engine's partitions) draws exactly what one pass over all users draws.

    >>> a = row_streams(3, np.array([5, 5, 6]), np.array([9, 10, 9]))
    >>> len(set(a.tolist())), bool((row_streams(3, np.array([6]), np.array([9])) == a[2]).all())
    (3, True)
    """
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    base = _mix(np.full(len(users), int(seed) & (2**64 - 1), dtype=np.uint64) ^ np.uint64(_NEGATIVES))
    return _mix(_mix(base ^ users.astype(np.uint64)) ^ np.asarray(within, dtype=np.int64).reshape(-1).astype(np.uint64))


def _uniform(keys: np.ndarray) -> np.ndarray:
    """Doubles in [0, 1) from uint64 keys (53 random bits each)."""
    return (_mix(keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _cell_keys(streams: np.ndarray, slots: np.ndarray) -> np.ndarray:
    return streams ^ _mix(np.asarray(slots, dtype=np.uint64))


def sample_negatives(
    users: np.ndarray,
    seen_keys: np.ndarray,
    num_items: int,
    k: int,
    seed: int,
    probs: np.ndarray | None = None,
    max_rounds: int = 30,
    *,
    streams: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``k`` distinct items (1..num_items) per row that its user never interacted with; ``(matrix, rounds)``.

    ``seen_keys`` is the sorted array of ``user * (num_items + 1) + item`` over every interaction.
    Items are drawn uniformly, or by ``probs`` (length ``num_items``, item ``i`` at ``probs[i - 1]``).
    Every draw is a counter-based random number (SplitMix64) of the row's stream (``streams``, one
    uint64 per row, :func:`row_streams`; default: from ``seed`` and the row's user and index), the
    slot and the round, so a row's negatives never depend on the other rows. Collisions (seen items,
    repeats in a row) are redrawn, only they, for up to ``max_rounds`` rounds; ``rounds`` is the
    most any row needed. The few rows still colliding then are filled exactly: Gumbel-top-k over the
    items still allowed for the row (the same distribution: each slot drawn by weight among items
    neither seen nor already chosen). Raises ValueError when a row has fewer than ``k`` allowed items.

    >>> keys = np.array([0 * 6 + 1, 0 * 6 + 2, 1 * 6 + 5])
    >>> neg, _ = sample_negatives(np.array([0, 1]), keys, 5, 3, seed=1)
    >>> sorted(neg[0].tolist()), bool(5 in neg[1])
    ([3, 4, 5], False)
    """
    n = len(users)
    if n == 0:
        return np.zeros((0, k), dtype=np.int32), 0
    if streams is None:
        streams = row_streams(seed, users, np.arange(n))
    streams = np.asarray(streams, dtype=np.uint64)
    stride = np.int64(num_items + 1)
    cdf = None
    if probs is not None:
        cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
        if not cdf[-1] > 0:
            msg = "every item has weight 0; there is nothing to sample"
            raise ValueError(msg)
        cdf /= cdf[-1]

    def draw(rows: np.ndarray, cols: np.ndarray, rnd: int) -> np.ndarray:
        u = _uniform(_cell_keys(streams[rows], rnd * k + cols))
        if cdf is None:
            return np.minimum((u * num_items).astype(np.int64), num_items - 1) + 1
        return np.minimum(np.searchsorted(cdf, u, side="right"), num_items - 1) + 1

    rows_all, cols_all = np.divmod(np.arange(n * k, dtype=np.int64), k)
    out = draw(rows_all, cols_all, 0).reshape(n, k)
    ukey = np.asarray(users, dtype=np.int64)[:, None] * stride
    bad = np.ones((n, k), dtype=bool)
    rounds = 0
    while True:
        keys = ukey + out
        pos = np.searchsorted(seen_keys, keys)
        seen = seen_keys[np.minimum(pos, len(seen_keys) - 1)] == keys if len(seen_keys) else np.zeros_like(bad)
        # a repeat inside a row: every copy after the first (in column order) is bad
        order = np.argsort(out, axis=1, kind="stable")
        srt = np.take_along_axis(out, order, axis=1)
        dup_sorted = np.zeros((n, k), dtype=bool)
        dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
        dup = np.zeros((n, k), dtype=bool)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        bad = seen | dup
        if not bad.any():
            return out.astype(np.int32), rounds
        if rounds >= max_rounds:
            _exact_fill(out, bad, np.asarray(users, dtype=np.int64), seen_keys, num_items, probs, streams)
            return out.astype(np.int32), rounds
        rounds += 1
        r, c = np.nonzero(bad)
        out[r, c] = draw(r, c, rounds)


def _exact_fill(
    out: np.ndarray,
    bad: np.ndarray,
    users: np.ndarray,
    seen_keys: np.ndarray,
    num_items: int,
    probs: np.ndarray | None,
    streams: np.ndarray,
    chunk_cells: int = 1 << 24,
) -> None:
    """Replace ``out[bad]`` in place with exact draws without replacement (Gumbel-top-k), by chunks of
    rows; each row's Gumbel noise comes from its own stream (one key per item)."""
    stride = np.int64(num_items + 1)
    weights = np.ones(num_items + 1) if probs is None else np.concatenate([[0.0], np.asarray(probs, dtype=np.float64)])
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    log_w[0] = -np.inf
    rows_all = np.flatnonzero(bad.any(axis=1))
    step = max(1, chunk_cells // (num_items + 1))
    for lo in range(0, len(rows_all), step):  # a few chunks of the (few) rows left
        rows = rows_all[lo : lo + step]
        r = len(rows)
        allowed = np.isfinite(log_w)[None, :].repeat(r, axis=0)
        u = users[rows]
        first = np.searchsorted(seen_keys, u * stride)
        last = np.searchsorted(seen_keys, (u + 1) * stride)
        offs, pos = gather_ranges(first, last - first)
        allowed[np.repeat(np.arange(r), np.diff(offs)), seen_keys[pos] % stride] = False
        keep = ~bad[rows]
        allowed[np.nonzero(keep)[0], out[rows][keep]] = False
        need = bad[rows].sum(axis=1)
        if (allowed.sum(axis=1) < need).any():
            msg = "some rows have fewer allowed items than negatives to draw"
            raise ValueError(msg)
        items = np.arange(num_items + 1, dtype=np.int64) + _GUMBEL
        u = _uniform(_cell_keys(streams[rows][:, None], items[None, :])) + 2.0**-54  # in (0, 1)
        score = np.where(allowed, log_w[None, :] - np.log(-np.log(u)), -np.inf)
        best = np.argsort(-score, axis=1, kind="stable")[:, : int(need.max())]
        take = np.arange(best.shape[1])[None, :] < need[:, None]
        sub = out[rows]
        sub[bad[rows]] = best[take]
        out[rows] = sub
