"""The cleaning steps of a build, in their one fixed order, and sessions.

Order (after rows with a missing user, item or timestamp are dropped, see :mod:`seqprep.pipeline`):

1. ``time_window``: keep ``since <= t < until`` (``--since`` inclusive, ``--until`` exclusive);
2. ``min_rating``: keep ``rating >= R`` (a missing rating is dropped);
3. ``dedup``: ``exact`` / ``first`` / ``last`` / ``consecutive`` (see :func:`seqprep.kernels.filters.dedup`);
4. ``kcore``: ``--min-user-count`` / ``--min-item-count``, round after round until both hold
   (or ``--kcore-rounds N`` rounds);

then vocabularies and sequences are built from what is left. Each step that runs appends one report
to meta.json ``steps`` with the rows, users and items it removed (k-core: also one entry per round).

Time bounds: a number is taken as it is, in the log's own timestamp unit; an ISO-8601 date (naive =
UTC) is converted to that unit - to epoch **seconds** when the log holds raw epoch numbers
(``timestamp.unit == "epoch"``), to s/ms/us/ns when the log's timestamps were dates themselves.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError, InputError
from .kernels.filters import dedup, kcore, num_present, rating_at_least, session_ids, time_window

if TYPE_CHECKING:
    from .config import FilterOptions, SessionOptions
    from .pipeline import Interactions, Sequences
    from .readers import Log

__all__ = [
    "parse_time_bound",
    "check_window",
    "bound_in_unit",
    "window_bounds",
    "parse_duration",
    "gap_in_unit",
    "apply_filters",
    "add_sessions",
]

_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# raw epoch numbers count as epoch seconds when the largest lies in 1973..5138
_SECONDS_LIKE = (1e8, 1e11)


def parse_time_bound(value: Any, flag: str) -> tuple[str, int | float]:
    """-> ("number", value) for an epoch number, ("date", epoch nanoseconds) for an ISO-8601 date.

    >>> parse_time_bound("1546300800", "--since"), parse_time_bound("2019-01-01", "--since")
    (('number', 1546300800), ('date', 1546300800000000000))
    """
    bad = f"{flag} {value!r} is neither an epoch number nor an ISO-8601 date; pass e.g. {flag} 2019-01-01 or {flag} 1546300800"
    if isinstance(value, bool):
        raise ConfigError(bad)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ConfigError(bad)
        return "number", value
    s = str(value).strip()
    try:
        return "number", int(s)
    except ValueError:
        pass
    try:
        f = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(f):
            raise ConfigError(bad)
        return "number", f
    for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
        try:
            return "date", int(pc.cast(pa.array([s]), target).cast(pa.int64())[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            continue
    raise ConfigError(bad)


def check_window(since: Any, until: Any) -> None:
    """Fail on an unparsable bound, or on ``since >= until`` when both are of one kind."""
    a = parse_time_bound(since, "--since") if since is not None else None
    b = parse_time_bound(until, "--until") if until is not None else None
    if a is not None and b is not None and a[0] == b[0] and a[1] >= b[1]:
        msg = f"--since {since} is not before --until {until}, so the window is empty; pass a --since earlier than --until"
        raise ConfigError(msg)


def bound_in_unit(value: Any, flag: str, unit: str) -> int | float:
    """A time bound in the log's unit: numbers as they are, dates in s (``epoch`` or s), ms, us or ns.

    A date that falls inside a unit step is rounded up, so ``t >= since`` and ``t < until`` are exact.

    >>> bound_in_unit("2019-01-01", "--since", "epoch"), bound_in_unit("2019-01-01", "--since", "ms")
    (1546300800, 1546300800000)
    """
    kind, v = parse_time_bound(value, flag)
    if kind == "number":
        return v
    div = _UNIT_NS["s" if unit == "epoch" else unit]
    return -(-int(v) // div)


def window_bounds(opts: FilterOptions, unit: str) -> tuple[int | float | None, int | float | None]:
    """``--since`` / ``--until`` in the log's time unit (``None`` = open); fails on an empty window."""
    since = None if opts.since is None else bound_in_unit(opts.since, "--since", unit)
    until = None if opts.until is None else bound_in_unit(opts.until, "--until", unit)
    if since is not None and until is not None and since >= until:
        msg = f"--since {opts.since} is not before --until {opts.until} in this log's time unit; pass a --since earlier than --until"
        raise ConfigError(msg)
    return since, until


def parse_duration(value: Any) -> tuple[str, float]:
    """-> ("seconds", s) for ``30m`` style (units s, m, h, d) or ("raw", x) for a plain number.

    >>> parse_duration("30m"), parse_duration("1.5h"), parse_duration("1800000")
    (('seconds', 1800.0), ('seconds', 5400.0), ('raw', 1800000.0))
    """
    m = _DURATION.match(str(value)) if not isinstance(value, bool) else None
    if m is None or float(m.group(1)) <= 0:
        msg = (
            f"--session-gap {value!r} is not a positive duration; pass a number with a unit s, m, h or d "
            "(e.g. 30m), or a plain number in the timestamps' own unit"
        )
        raise ConfigError(msg)
    number, unit = float(m.group(1)), m.group(2)
    if unit:
        return "seconds", number * _SECONDS[unit]
    return "raw", number


def gap_in_unit(value: Any, unit: str, time: np.ndarray) -> int | float:
    """The session gap in the log's timestamp unit.

    A plain number is taken as it is. A duration with a unit needs to know what one timestamp step
    is: dates parsed by the reader carry their unit (s/ms/us/ns); raw epoch numbers are taken as epoch
    seconds, and refused when their largest value does not look like seconds (before 1973 or after
    year 5000 - e.g. milliseconds or a row counter).
    """
    kind, number = parse_duration(value)
    if kind == "raw":
        return _whole(number)
    if unit in _UNIT_NS:
        return _whole(number * (_UNIT_NS["s"] // _UNIT_NS[unit]))
    top = float(np.max(np.abs(time))) if len(time) else 0.0
    if not (_SECONDS_LIKE[0] <= top < _SECONDS_LIKE[1]):
        msg = (
            f"--session-gap {value} needs timestamps in epoch seconds, but this log's raw timestamps reach "
            f"{top:.6g}, which is not seconds-like; give the gap as a plain number in the timestamps' "
            f"own unit (e.g. --session-gap {int(number * 1000)} for milliseconds)"
        )
        raise InputError(msg)
    return _whole(number)


def _whole(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _report(
    step: str, before: Interactions, keep: np.ndarray, counts: tuple[int, int] | None
) -> tuple[dict[str, Any], Interactions, tuple[int, int]]:
    """Apply ``keep``; -> (report, kept rows, (users, items) now present).

    ``counts`` are the (users, items) present in ``before``; ``None`` counts them here (the first
    step that runs), so a build without cleaning steps never counts at all.
    """
    if counts is None:
        counts = (num_present(before.user), num_present(before.item))
    after = before.take(None if keep.all() else keep)  # nothing removed: no copy
    removed = len(before) - len(after)
    now = (num_present(after.user), num_present(after.item)) if removed else counts
    report = {
        "step": step,
        "rows_before": len(before),
        "rows_removed": removed,
        "rows_after": len(after),
        "users_removed": counts[0] - now[0],
        "items_removed": counts[1] - now[1],
    }
    return report, after, now


def _none_left(step: str, fix: str) -> InputError:
    return InputError(f"no interactions left after the {step} step; {fix}")


def apply_filters(inter: Interactions, log: Log, opts: FilterOptions) -> tuple[Interactions, list[dict[str, Any]]]:
    """Run the enabled cleaning steps in their fixed order; -> (kept rows in input order, step reports)."""
    steps: list[dict[str, Any]] = []
    counts: tuple[int, int] | None = None  # (users, items) present: counted by the first step that runs

    if opts.since is not None or opts.until is not None:
        since, until = window_bounds(opts, log.time_unit)
        report, inter, counts = _report("time_window", inter, time_window(inter.time, since, until), counts)
        report.update(since=since, until=until, time_unit=log.time_unit, rule="since <= t < until")
        steps.append(report)
        if len(inter) == 0:
            raise _none_left(
                "time_window", "widen --since/--until (the window is since <= t < until, in the log's time unit)"
            )

    if opts.min_rating is not None:
        if inter.rating is None:
            msg = (
                "--min-rating needs a rating column, but the log has none; pass --rating-col NAME, or drop --min-rating"
            )
            raise InputError(msg)
        missing = int(np.count_nonzero(np.isnan(inter.rating))) if inter.rating.dtype.kind == "f" else 0
        report, inter, counts = _report("min_rating", inter, rating_at_least(inter.rating, opts.min_rating), counts)
        report.update(min_rating=opts.min_rating, missing_rating=missing)
        steps.append(report)
        if len(inter) == 0:
            raise _none_left("min_rating", f"no rating is >= {opts.min_rating:g}; lower --min-rating")

    if opts.dedup != "none":
        keep = dedup(inter.user, inter.item, inter.time, inter.rating, opts.dedup)
        report, inter, counts = _report("dedup", inter, keep, counts)
        report["mode"] = opts.dedup
        steps.append(report)

    if opts.min_user_count > 1 or opts.min_item_count > 1:
        keep, rounds, fixpoint = kcore(
            inter.user,
            inter.item,
            min_user=opts.min_user_count,
            min_item=opts.min_item_count,
            max_rounds=opts.kcore_rounds,
        )
        report, inter, counts = _report("kcore", inter, keep, counts)
        report.update(
            min_user_count=opts.min_user_count,
            min_item_count=opts.min_item_count,
            max_rounds=opts.kcore_rounds,
            fixpoint=fixpoint,
            rounds=rounds,
        )
        steps.append(report)
        if len(inter) == 0:
            raise _none_left(
                "kcore",
                f"no user and item meet --min-user-count {opts.min_user_count} and --min-item-count "
                f"{opts.min_item_count} together; lower them",
            )
    return inter, steps


def add_sessions(seqs: Sequences, log: Log, opts: SessionOptions) -> tuple[Sequences, dict[str, Any] | None]:
    """Sequences with per-user session numbers (``session_ids``) and meta.json's ``sessions`` entry."""
    if opts.session_gap is None:
        return seqs, None
    gap = gap_in_unit(opts.session_gap, log.time_unit, seqs.timestamps)
    sids = session_ids(seqs.offsets, seqs.timestamps, gap)
    meta = sessions_meta(opts, log.time_unit, gap, session_lengths(seqs.offsets, sids))
    return dataclasses.replace(seqs, session_ids=sids), meta


def session_lengths(offsets: np.ndarray, sids: np.ndarray) -> np.ndarray:
    """The length of every session, in order, from CSR offsets and the session numbers.

    >>> session_lengths(np.array([0, 4, 6]), np.array([0, 0, 1, 1, 0, 1], dtype=np.int32))
    array([2, 2, 1, 1])
    """
    if len(sids) == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.diff(offsets)
    new = np.ones(len(sids), dtype=bool)
    new[1:] = sids[1:] != sids[:-1]
    new[offsets[:-1][lengths > 0]] = True
    return np.diff(np.append(np.flatnonzero(new), len(sids)))


def sessions_meta(opts: SessionOptions, unit: str, gap: int | float, lengths: np.ndarray) -> dict[str, Any]:
    """meta.json's ``sessions`` entry from the lengths of all sessions."""
    if len(lengths):
        length = {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "mean": round(float(lengths.mean()), 6),
            "max": int(lengths.max()),
        }
    else:
        length = {"min": 0, "median": 0.0, "mean": 0.0, "max": 0}
    kind, _ = parse_duration(opts.session_gap)
    return {
        "gap": str(opts.session_gap),
        "gap_in_time_unit": gap,
        "time_unit": unit if kind == "raw" or unit != "epoch" else "epoch seconds",
        "rule": "a new session starts at a user's first interaction and after a gap strictly longer than gap",
        "numbering": "session_ids count from 0 within each user",
        "num_sessions": int(len(lengths)),
        "session_length": length,
    }
