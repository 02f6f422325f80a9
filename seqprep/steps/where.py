"""The ``where`` step (``--where EXPR``, repeatable): keep the rows where every predicate is true.

It runs right after the missing-value step (before ``--vocab-from``'s unknown items and the
filters) and appends one report to meta.json ``steps``. The grammar and the three-valued logic are
:mod:`seqprep.kernels.predicates`; this module gives each name its column and each test its rule.

Names: the key (user, or ``--session-col``), item, time and rating columns, by their names in the
first input, stand for those columns as the build reads them (ids as typed, the timestamp in
meta.json's ``timestamp.unit`` - with ``--time-col BASE,OFFSET`` the combined one, under BASE's
name - and the float32 rating); any other name is read from the log for this step only
(:func:`operand_requests`), text as its distinct values and numbers as float64.

Tests (each decided once per distinct value of a text column, then indexed by the rows' codes):

- a number compares numerically with a number column, and with a text column whose distinct values
  are all numbers (each is parsed; otherwise it is an error naming one that is not), exactly for
  integers (no float rounding), at float32 precision for ratings;
- a quoted string compares with a text column, by UTF-8 bytes (code point order) for ``<`` ``>``;
  with the timestamp column when it is an ISO-8601 date (converted as ``--since`` converts one:
  epoch seconds for a log of raw epoch numbers); with any other number column it is an error;
- ``in [a, b]`` is ``== a or == b``; ``is null`` / ``is not null`` test for a missing value;
- a test of a missing value is *unknown* (SQL): ``price > 0`` and ``price <= 0`` both drop a row
  without a price, ``not`` keeps it unknown, and only rows where the whole predicate is true stay.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa

from ..config import BuildConfig, parse_where
from ..errors import ConfigError, InputError, none_left, where_flag, where_message
from ..io import ColumnRequest, role_of
from ..kernels.filters import num_present
from ..kernels.predicates import (
    And,
    CodeTables,
    Compare,
    In,
    IsNull,
    Not,
    Or,
    Predicate,
    Truth,
    Value,
    by_code_tables,
    code_tables,
    compare_numbers,
    compare_text,
    text_as_numbers,
    truth_and,
    truth_not,
    truth_or,
)
from ..model import Interactions, Log
from ..timeunits import NS_PER, parse_time
from .events import event_requests
from .features import column_requests
from .filters import step_report

__all__ = ["CHUNK_ROWS", "STEP", "apply_where", "operand_requests", "where_report", "where_truth"]

STEP = "where"


def operand_requests(config: BuildConfig) -> tuple[ColumnRequest, ...]:
    """The columns the predicates name, each once (its flag quotes the first predicate naming it).

    A column compared with numbers only is read as numbers (float64: a CSV parses it as it reads,
    with no table of distinct values); one compared with quoted text, or only tested for null, as
    it is. Either way the rules above decide the same rows (a text column compared with a number
    must hold numbers only).
    """
    flags: dict[str, str] = {}
    kinds: dict[str, set[str]] = {}
    for text in config.filter.where:
        for node in _tests(parse_where(text)):
            flags.setdefault(node.name, where_flag(text))
            values = (node.value,) if isinstance(node, Compare) else node.values if isinstance(node, In) else ()
            kinds.setdefault(node.name, set()).update(v.kind for v in values)
    return tuple(
        ColumnRequest(name, read_as="number" if kinds[name] == {"number"} else "auto", flag=flag)
        for name, flag in flags.items()
    )


def _tests(node: Predicate) -> list[Compare | In | IsNull]:
    """The tests of a tree, in order."""
    if isinstance(node, (Compare, In, IsNull)):
        return [node]
    if isinstance(node, Not):
        return _tests(node.operand)
    return [t for n in node.operands for t in _tests(n)]


@dataclass(frozen=True)
class _Operand:
    """What a name stands for: coded values (``codes`` into the distinct ``values``) or numbers."""

    name: str
    what: str  # for messages: text, integer ids, numbers, timestamps, ratings
    values: Any  # a pyarrow array of distinct values (coded) or a numpy array per row (numbers)
    codes: np.ndarray | None = None
    time_unit: str | None = None  # the timestamp column: a quoted ISO-8601 date compares with it


def _roles(log: Log) -> dict[str, str]:
    """role -> column of the first input, the key under ``user`` (a session key's users are a column)."""
    roles = dict(log.inputs[0].columns) if log.inputs else {}
    roles.pop("time_offsets", None)
    if "session" in roles:
        roles.pop("user")
        roles["user"] = roles.pop("session")
    return roles


def _operand(name: str, log: Log, inter: Interactions, expr: str) -> _Operand:
    role = role_of(name, _roles(log))
    if role == "user":
        return _Operand(name, "integer ids", log.user_ids, inter.user)
    if role == "item":
        return _Operand(name, "integer ids", log.item_ids, inter.item)
    if role == "time":
        return _Operand(name, "timestamps", inter.time, time_unit=log.time_unit)
    if role == "rating" and inter.rating is not None:
        return _Operand(name, "ratings", inter.rating)
    col = inter.column(name)
    if col.kind == "list":
        msg = where_message(
            expr, f"column {name!r} holds lists; --where compares one value per row - name another column"
        )
        raise ConfigError(msg)
    if col.kind == "number":
        return _Operand(name, "numbers", col.values)
    return _Operand(name, "text", col.values, col.codes)


#: Rows evaluated at a time: every test's temporaries (a few bytes a row each) stay in the CPU's
#: cache instead of being 25M-row arrays allocated, filled and freed one after another.
CHUNK_ROWS = 1 << 17


class _Evaluator:
    """Evaluates the trees of one build on its rows, a chunk of rows at a time (:data:`CHUNK_ROWS`);
    a coded column's test is decided once per distinct value (cached per test), the numbers of a
    text column are parsed once."""

    def __init__(self, log: Log, inter: Interactions) -> None:
        self.log, self.inter = log, inter
        self.operands: dict[str, _Operand] = {}
        self.parsed: dict[str, np.ndarray] = {}
        self.decided: dict[Compare | In, CodeTables] = {}  # a coded column's tests, per distinct value
        self.lo, self.hi = 0, len(inter)  # the rows of the chunk being evaluated

    def truth(self, node: Predicate, expr: str) -> Truth:
        if isinstance(node, Not):
            return truth_not(self.truth(node.operand, expr))
        if isinstance(node, (And, Or)):
            combine = truth_and if isinstance(node, And) else truth_or
            result = self.truth(node.operands[0], expr)
            for other in node.operands[1:]:
                result = combine(result, self.truth(other, expr))
            return result
        if node.name not in self.operands:
            self.operands[node.name] = _operand(node.name, self.log, self.inter, expr)
        op = self.operands[node.name]
        lo, hi = self.lo, self.hi
        if isinstance(node, IsNull):
            missing = _missing(op, lo, hi)
            return (~missing if node.negated else missing), None
        values = (node.value,) if isinstance(node, Compare) else node.values
        cmp = node.op if isinstance(node, Compare) else "=="
        if op.codes is None:  # numbers per row: one vectorised comparison per value
            rows = op.values[lo:hi]
            result = compare_numbers(rows, cmp, self.number(op, values[0], expr))
            for value in values[1:]:
                result = truth_or(result, compare_numbers(rows, cmp, self.number(op, value, expr)))
        else:  # coded: decided on the distinct values (an in-list or-ed there), then one gather
            if node not in self.decided:
                per_value, known = self.per_value(op, cmp, values[0], expr)
                for value in values[1:]:
                    per_value = per_value | self.per_value(op, cmp, value, expr)[0]
                self.decided[node] = code_tables(per_value, known)
            result = by_code_tables(self.decided[node], op.codes[lo:hi])
        return truth_not(result) if isinstance(node, In) and node.negated else result

    def per_value(self, op: _Operand, cmp: Any, value: Value, expr: str) -> tuple[np.ndarray, np.ndarray | None]:
        """``value CMP literal`` for each distinct value of a coded column (NaN values: unknown)."""
        values = op.values
        text_values = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        if value.kind == "text":
            if not text_values:
                raise _mismatch(op, value, expr)
            return compare_text(values, cmp, str(value.value)), None
        numbers = self.numbers_of(op, value, expr) if text_values else values.to_numpy(zero_copy_only=False)
        return compare_numbers(numbers, cmp, value.value)

    def number(self, op: _Operand, value: Value, expr: str) -> int | float | Fraction:
        """The number a literal stands for against a number column (a date against the timestamp)."""
        if value.kind == "number":
            assert not isinstance(value.value, str)
            return value.value
        if op.time_unit is not None:
            try:
                kind, t = parse_time(value.value, "--where")
            except ConfigError:
                kind = "number"
            if kind == "date":
                return Fraction(int(t), NS_PER[op.time_unit])
        raise _mismatch(op, value, expr)

    def numbers_of(self, op: _Operand, value: Value, expr: str) -> np.ndarray:
        """A text column's distinct values as numbers, or the error naming one that is not a number."""
        if op.name not in self.parsed:
            numbers, bad = text_as_numbers(op.values)
            if numbers is None:
                example = op.values[bad].as_py()
                detail = (
                    f"column {op.name!r} holds text ({example!r} is not a number), compared with the number "
                    f"{value.text} at character {value.at}; quote the value to compare text: '{value.text}'"
                )
                raise InputError(where_message(expr, detail))
            self.parsed[op.name] = numbers
        return self.parsed[op.name]


def _missing(op: _Operand, lo: int, hi: int) -> np.ndarray:
    """Whether each row ``lo <= k < hi`` of the operand is missing."""
    if op.codes is not None:
        return op.codes[lo:hi] < 0
    values = op.values[lo:hi]
    return np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), dtype=bool)


def _mismatch(op: _Operand, value: Value, expr: str) -> InputError:
    """A quoted value against a column of numbers (or a text that is no date against the timestamp)."""
    if op.time_unit is not None:
        detail = (
            f"the timestamp column {op.name!r} is compared with {value.text} at character {value.at}, which is not "
            "an ISO-8601 date; write a date such as '2019-01-01', or an epoch number without quotes"
        )
    else:
        what = "numbers" if op.what == "text" else op.what  # a text column of typed ids (int64)
        detail = (
            f"column {op.name!r} holds {what}, compared with the text "
            f"{value.text} at character {value.at}; write the value as a number, without quotes"
        )
    return InputError(where_message(expr, detail))


def apply_where(log: Log, inter: Interactions, config: BuildConfig) -> tuple[Interactions, dict[str, Any] | None]:
    """-> (the rows where every ``--where`` predicate is true, in input order, without the columns
    read only for them; the step's report), or ``(inter, None)`` without ``--where``."""
    predicates = config.filter.where
    if not predicates:
        return inter, None
    keep, known = where_truth(log, inter, predicates)
    unknown = 0 if known is None else len(known) - int(np.count_nonzero(known))
    # let go before the rows are taken: the columns read for the predicates alone (not a feature's)
    wanted = {r.name for r in column_requests(config.feature) + event_requests(config.event)}
    read_for_this = {r.name for r in operand_requests(config)} - wanted
    columns = tuple(c for c in inter.columns if c.name not in read_for_this or _is_session_users(log, c.name))
    inter = dataclasses.replace(inter, columns=columns)
    # positions, not the mask: numpy takes scattered rows by index several times faster
    after = inter.take(None if keep.all() else np.flatnonzero(keep))
    removed = len(inter) - len(after)
    users = num_present(inter.user) - num_present(after.user) if removed else 0
    items = num_present(inter.item) - num_present(after.item) if removed else 0
    return after, where_report(predicates, len(inter), removed, users, items, unknown)


def where_truth(log: Log, inter: Interactions, predicates: tuple[str, ...], chunk: int | None = None) -> Truth:
    """(true, known) per row of ``inter`` of every predicate and-ed (``known`` None: all known). A
    row's truth depends on that row alone (and the columns' dictionaries), so the rows are evaluated
    ``chunk`` at a time here (default :data:`CHUNK_ROWS`), and an engine may hand them over in parts
    too (``--memory-limit``)."""
    evaluator = _Evaluator(log, inter)
    trees = [(parse_where(text), text) for text in predicates]
    n, chunk = len(inter), chunk or CHUNK_ROWS
    true = np.empty(n, dtype=bool)
    known: np.ndarray | None = None
    for lo in range(0, max(n, 1), chunk):  # (one empty chunk for no rows: its errors still raise)
        evaluator.lo, evaluator.hi = lo, min(lo + chunk, n)
        part: Truth | None = None
        for tree, text in trees:
            t = evaluator.truth(tree, text)
            part = t if part is None else truth_and(part, t)
        assert part is not None
        true[evaluator.lo : evaluator.hi] = part[0]
        if part[1] is not None:
            if known is None:
                known = np.ones(n, dtype=bool)
            known[evaluator.lo : evaluator.hi] = part[1]
    return true, known


def where_report(predicates: tuple[str, ...], rows_before: int, rows_removed: int, users: int, items: int, unknown: int) -> dict[str, Any]:
    """The step's report; no row left is an error (what to loosen)."""
    if rows_before == rows_removed:
        raise none_left(STEP, f"no row meets every --where predicate ({'; '.join(predicates)}); loosen them")
    return step_report(STEP, rows_before, rows_removed, users, items, predicates=list(predicates), rows_unknown=unknown)


def _is_session_users(log: Log, name: str) -> bool:
    """Whether ``name`` is the users' column of a session-keyed log (kept for sessions.parquet)."""
    cols = log.inputs[0].columns if log.inputs else {}
    return "session" in cols and cols.get("user") == name
