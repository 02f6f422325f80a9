"""Time units, and the one parser of the times and durations a user types (ground floor).

A log's timestamps have a *unit*: ``epoch`` for raw epoch numbers (taken as they are, whatever
their scale), or ``s``/``ms``/``us``/``ns`` when the reader parsed ISO-8601 dates (coarsened to the
coarsest exact unit). Every time bound a user gives (``--since``, ``--until``, ``--valid-from``,
``--test-from``) goes through :func:`parse_time` and :func:`bound_in_unit`, with one rule:

- a number is taken as it is, in the log's own unit;
- an ISO-8601 date (naive = UTC; ``Z`` or ``+hh:mm`` offsets allowed) is converted to the log's unit
  (epoch **seconds** for a raw epoch log) and, when it falls inside one step of that unit, rounded
  **up** to the next whole step, so ``t >= bound`` keeps exactly the times at or after the instant
  and ``t < bound`` exactly those before it.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np

from .errors import ConfigError, InputError

__all__ = [
    "NS_PER",
    "UNIT_SCALE",
    "day_length",
    "TimeKind",
    "bound_in_unit",
    "check_window",
    "gap_in_unit",
    "largest_abs",
    "parse_duration",
    "parse_time",
]

#: Steps of each date unit per second.
UNIT_SCALE: dict[str, int] = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
#: Nanoseconds per step of each unit; a raw epoch log counts as seconds when a date is converted.
NS_PER: dict[str, int] = {"epoch": 1_000_000_000, **{u: 1_000_000_000 // s for u, s in UNIT_SCALE.items()}}

TimeKind = Literal["number", "date"]


def day_length(unit: str) -> int:
    """Steps of the log's time ``unit`` per UTC day (raw epoch numbers count as seconds).

    >>> day_length("ms"), day_length("epoch")
    (86400000, 86400)
    """
    return 86_400 * UNIT_SCALE.get(unit, 1)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Raw epoch numbers count as epoch seconds when the largest lies in 1973..5138.
_SECONDS_LIKE = (1e8, 1e11)


def parse_time(value: Any, flag: str) -> tuple[TimeKind, int | float]:
    """-> ("number", value) for an epoch number, ("date", epoch nanoseconds) for an ISO-8601 date.

    >>> parse_time("1546300800", "--since"), parse_time("2019-01-01", "--since")
    (('number', 1546300800), ('date', 1546300800000000000))
    >>> parse_time("2019-01-01T02:00:00+02:00", "--valid-from")
    ('date', 1546300800000000000)
    """
    bad = f"{flag} {value!r} is neither an epoch number nor an ISO-8601 date; pass e.g. {flag} 2019-01-01 or {flag} 1546300800"
    if isinstance(value, bool):
        raise ConfigError(bad)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ConfigError(_not_finite(flag, value))
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
            raise ConfigError(_not_finite(flag, s))
        return "number", int(f) if f.is_integer() and abs(f) < 2**53 else f
    import pyarrow as pa  # the ISO-8601 parser: pyarrow's, as the reader's for timestamps in a log
    import pyarrow.compute as pc

    for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
        try:
            return "date", int(pc.cast(pa.array([s]), target).cast(pa.int64())[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            continue
    raise ConfigError(bad)


def _not_finite(flag: str, value: Any) -> str:
    return f"{flag} {value!r} is not a finite time; pass an epoch number or an ISO-8601 date"


def bound_in_unit(value: Any, flag: str, unit: str) -> int | float:
    """A time bound in the log's unit: numbers as they are, dates in s (``epoch`` or s), ms, us or ns.

    A date that falls inside a unit step is rounded up, so ``t >= bound`` and ``t < bound`` are exact.

    >>> bound_in_unit("2019-01-01", "--since", "epoch"), bound_in_unit("2019-01-01", "--since", "ms")
    (1546300800, 1546300800000)
    >>> bound_in_unit("2019-01-01T00:00:00.5", "--test-from", "s")
    1546300801
    """
    kind, v = parse_time(value, flag)
    if kind == "number":
        return v
    return -(-int(v) // NS_PER[unit])


def check_window(since: Any, until: Any) -> None:
    """Fail on an unparsable bound, or on ``since >= until`` when both are of one kind."""
    a = parse_time(since, "--since") if since is not None else None
    b = parse_time(until, "--until") if until is not None else None
    if a is not None and b is not None and a[0] == b[0] and a[1] >= b[1]:
        msg = f"--since {since} is not before --until {until}, so the window is empty; pass a --since earlier than --until"
        raise ConfigError(msg)


def parse_duration(value: Any, flag: str = "--session-gap") -> tuple[Literal["seconds", "raw"], float]:
    """-> ("seconds", s) for ``30m`` style (units s, m, h, d) or ("raw", x) for a plain number.

    >>> parse_duration("30m"), parse_duration("1.5h"), parse_duration("1800000")
    (('seconds', 1800.0), ('seconds', 5400.0), ('raw', 1800000.0))
    """
    m = _DURATION.match(str(value)) if not isinstance(value, bool) else None
    if m is None or float(m.group(1)) <= 0:
        msg = (
            f"{flag} {value!r} is not a positive duration; pass a number with a unit s, m, h or d "
            "(e.g. 30m), or a plain number in the timestamps' own unit"
        )
        raise ConfigError(msg)
    number, unit = float(m.group(1)), m.group(2)
    if unit:
        return "seconds", number * _SECONDS[unit]
    return "raw", number


def gap_in_unit(value: Any, unit: str, largest: float, flag: str = "--session-gap") -> int | float:
    """A duration in the log's timestamp unit; ``largest`` is the largest ``|timestamp|`` of the log.

    A plain number is taken as it is. A duration with a unit needs to know what one timestamp step
    is: dates parsed by the reader carry their unit (s/ms/us/ns); raw epoch numbers are taken as epoch
    seconds, and refused when their largest value does not look like seconds (before 1973 or after
    year 5000 - e.g. milliseconds or a row counter).

    >>> gap_in_unit("30m", "ms", 0), gap_in_unit("30m", "epoch", 1.5e9), gap_in_unit("90", "epoch", 5)
    (1800000, 1800, 90)
    """
    kind, number = parse_duration(value, flag)
    if kind == "raw":
        return _whole(number)
    if unit in UNIT_SCALE:
        return _whole(number * UNIT_SCALE[unit])
    if not (_SECONDS_LIKE[0] <= largest < _SECONDS_LIKE[1]):
        msg = (
            f"{flag} {value} needs timestamps in epoch seconds, but this log's raw timestamps reach "
            f"{largest:.6g}, which is not seconds-like; give the gap as a plain number in the timestamps' "
            f"own unit (e.g. {flag} {int(number * 1000)} for milliseconds)"
        )
        raise InputError(msg)
    return _whole(number)


def largest_abs(time: np.ndarray) -> float:
    """``max |t|`` of a timestamp column (0 for none): what :func:`gap_in_unit` needs to know."""
    return float(np.max(np.abs(time))) if len(time) else 0.0


def _whole(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x
