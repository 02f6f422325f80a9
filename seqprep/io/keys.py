"""What a log is keyed and timed by when that takes more than one column each, and the other columns
a ``--where`` predicate names: planned before the streaming read, applied to what it read.

The streaming reader (:mod:`seqprep.io.stream`) reads one key column, one time column and any other
columns asked for (:class:`~seqprep.io.sniff.ColumnRequest`). :func:`plan_read` says what to ask it
and :meth:`ReadPlan.finish` turns what it read into the log the options describe:

- ``--session-col S``: S is read as the sequence key, exactly as ``--user-col S`` reads it, and the
  users' column (``--user-col``, else the detected one) as an other column whose ids are typed as
  the key's are (int64 when every id is a plain integer); a missing user (``NA``) is allowed.
  ``InputInfo.columns`` then names ``session`` (the key) and ``user``.
- ``--time-col BASE,OFFSET[,OFFSET...]``: the timestamp is the BASE column (an epoch number or an
  ISO-8601 date, as a single ``--time-col`` is read) **plus** each OFFSET, a whole number, in exact
  int64 arithmetic (:func:`combine_times`). With a date BASE the offsets are in
  ``--time-offset-unit`` (default ``ms``) and the sum is in the finer of the base's and the offsets'
  units; with an epoch-number BASE the offsets are added as they are (same unit, ``epoch``). A row
  missing any of the columns has no timestamp (the missing-value step drops it).
- ``--where`` operands: a name that is the key, item, time or rating column of the first input stands
  for that column as the build reads it (ids, the timestamp as combined, the rating) and is not read
  again; any other name is read as an other column (``Log.columns``), which must exist.

Without these options the plan asks the reader for nothing more and ``finish`` returns the log as read.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import ReadOptions
from ..errors import ColumnError, ConfigError, InputError, column_list
from ..model import Column, InputInfo, Log, locate
from ..timeunits import UNIT_SCALE
from .columns import merge_ids
from .sniff import ColumnRequest, csv_layout, detect_format, jsonl_layout, resolve_columns
from .sources import Source, expand_inputs

__all__ = ["DEFAULT_OFFSET_UNIT", "ReadPlan", "combine_times", "plan_read", "role_of"]

#: The unit of ``--time-col BASE,OFFSET`` offsets after a date BASE, without ``--time-offset-unit``.
DEFAULT_OFFSET_UNIT = "ms"


def role_of(name: str, roles: dict[str, str]) -> str | None:
    """The role whose column ``name`` is (exactly, else the one that matches ignoring case), or None.

    >>> role_of("Rating", {"user": "userId", "rating": "rating"}), role_of("price", {"user": "u"})
    ('rating', None)
    """
    exact = [r for r, c in roles.items() if c == name]
    if exact:
        return exact[0]
    ci = [r for r, c in roles.items() if c.lower() == name.lower()]
    return ci[0] if len(ci) == 1 else None


@dataclass(frozen=True)
class ReadPlan:
    """What to ask the streaming reader (``opts``, ``requests``, ``stdin``) and how to finish its log."""

    opts: ReadOptions
    requests: tuple[ColumnRequest, ...]
    stdin: BinaryIO | None
    offsets: tuple[str, ...] = ()
    offset_unit: str | None = None
    session: str | None = None
    user: str | None = None
    keep: frozenset[str] = frozenset()  # requested names that stay in Log.columns

    def finish(self, log: Log) -> Log:
        """The log as the options describe it (see the module docstring)."""
        if not self.offsets and self.session is None and all(c.name in self.keep for c in log.columns):
            return log
        time, valid, unit = log.time, log.time_valid, log.time_unit
        if self.offsets:
            spec = ",".join((self.opts.time_col or "", *self.offsets))  # the reader was given the base alone
            time, valid, unit = combine_times(log, self.offsets, self.offset_unit, spec)
        columns = []
        for c in log.columns:
            if c.name == self.user:
                c = _typed_ids(c, self.opts.id_type, typed_text=any(i.format != "csv" for i in log.inputs))
            if c.name in self.keep:
                columns.append(c)
        inputs = tuple(self._recorded(info) for info in log.inputs)
        return dataclasses.replace(
            log, time=time, time_valid=valid, time_unit=unit, columns=tuple(columns), inputs=inputs
        )

    def _recorded(self, info: InputInfo) -> InputInfo:
        """``info`` with the roles as meta.json records them: ``session`` and ``user``, ``time_offsets``."""
        cols = dict(info.columns)
        if self.session is not None and self.user is not None:
            cols = {"session": cols.pop("user"), "user": self.user, **cols}
        if self.offsets:
            cols["time_offsets"] = ",".join(self.offsets)
        return dataclasses.replace(info, columns=cols)


def plan_read(
    inputs: tuple[str, ...] | list[str],
    opts: ReadOptions,
    *,
    stdin: BinaryIO | None,
    columns: tuple[ColumnRequest, ...] = (),
    operands: tuple[ColumnRequest, ...] = (),
) -> ReadPlan:
    """The plan of a read of ``inputs`` with ``opts``: ``columns`` are read and kept as asked;
    ``operands`` (a ``--where`` predicate's names) only when they are not role columns."""
    times = opts.time_cols
    if opts.session_col is None and len(times) <= 1 and not operands:
        return ReadPlan(opts, columns, stdin, keep=frozenset(c.name for c in columns))
    reader = dataclasses.replace(
        opts,
        time_col=times[0] if times else None,
        time_offset_unit=None,
        session_col=None,
        user_col=opts.session_col if opts.session_col is not None else opts.user_col,
    )
    roles: dict[str, str] = {}
    names: list[str] = []
    fmt = "csv"
    user = opts.user_col
    if operands or (opts.session_col is not None and user is None):
        first = (expand_inputs(inputs) or ["-"])[0]
        peek = None
        if first == "-":  # stdin is read whole here, and given to the reader again
            raw = (stdin if stdin is not None else sys.stdin.buffer).read()
            stdin, peek = io.BytesIO(raw), io.BytesIO(raw)
        roles, names, fmt = _first_layout(first, reader, peek)
        if opts.session_col is not None and user is None:
            user = _users_column(first, names, reader, opts.session_col)
    requests = list(columns)
    keep = {c.name for c in columns}
    asked = {c.name for c in columns}

    def ask(req: ColumnRequest) -> None:
        if req.name not in asked:
            asked.add(req.name)
            requests.append(req)

    for name in times[1:]:
        ask(ColumnRequest(name, read_as="text", flag="--time-col"))
    if opts.session_col is not None:
        assert user is not None
        ask(ColumnRequest(user, read_as="text", flag="--user-col" if opts.user_col else "--session-col (its users)"))
        keep.add(user)
    for req in operands:
        if role_of(req.name, roles) is not None:
            continue  # the role's column, as the build reads it
        _check_exists(req, names, fmt, inputs)
        if fmt != "csv" and req.read_as == "number":  # a typed source's numbers are numbers: read it as it is
            req = dataclasses.replace(req, read_as="auto")
        ask(req)
        keep.add(req.name)
    return ReadPlan(
        reader,
        tuple(requests),
        stdin,
        offsets=times[1:],
        offset_unit=opts.time_offset_unit,
        session=opts.session_col,
        user=user if opts.session_col is not None else None,
        keep=frozenset(keep),
    )


def _first_layout(spec: str, opts: ReadOptions, stdin: BinaryIO | None) -> tuple[dict[str, str], list[str], str]:
    """(role -> column, the column names, the format) of one input, from its first bytes."""
    src = Source(spec, stdin=stdin, hashed=False)
    head = src.head()
    fmt = detect_format(src.inner_name, opts, head)
    if fmt == "csv":
        layout = csv_layout(src.name, opts, head)
        return layout.roles, layout.names, fmt
    if fmt == "jsonl":
        roles, _ = jsonl_layout(src.name, opts, head)
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        first = next(ln for ln in text.splitlines() if ln.strip())
        return roles, list(json.loads(first)), fmt
    data = src.open() if src.compression is None else pa.BufferReader(pa.py_buffer(src.read_all()))
    names = pq.ParquetFile(data).schema_arrow.names
    return resolve_columns(names, opts, src.name), names, fmt


def _users_column(where: str, names: list[str], opts: ReadOptions, session: str) -> str:
    """The users' column beside ``--session-col``: the one the user role detects."""
    try:
        user = resolve_columns(names, dataclasses.replace(opts, user_col=None), where)["user"]
    except ColumnError as e:
        if "user column" not in str(e):
            raise  # another role's column: the reader would say the same
        user = None
    if user is None or user.lower() == session.lower():
        msg = (
            f"{where}: --session-col {session} keeps each session's user, but no user column is found "
            f"(columns are {column_list(names)}); pass --user-col NAME, or key by the session alone "
            f"with --user-col {session} instead of --session-col"
        )
        raise ColumnError(msg)
    return user


def _check_exists(req: ColumnRequest, names: list[str], fmt: str, inputs: tuple[str, ...] | list[str]) -> None:
    """A name a predicate uses is a column of the first input (or, in JSON/Parquet, a field a.b)."""
    lower = [n.lower() for n in names]
    if req.name in names or lower.count(req.name.lower()) == 1:
        return
    if fmt != "csv" and "." in req.name and req.name.partition(".")[0].lower() in lower:
        return  # a nested field: the reader finds it, or says it is missing
    first = expand_inputs(inputs)[0]
    msg = f"{req.flag}: column {req.name!r} not found in {'stdin' if first == '-' else first}; columns are {column_list(names)}"
    raise ColumnError(msg)


def _typed_ids(col: Column, id_type: str, typed_text: bool) -> Column:
    """A text column of ids typed as the key's ids are (CSV text: int64 when every id is an integer)."""
    assert col.codes is not None
    parts = [pa.DictionaryArray.from_arrays(pa.array(np.arange(len(col.values), dtype=np.int32)), col.values)]
    mapping, values = merge_ids(parts, id_type, "user", typed_text)
    table = np.append(mapping, np.int32(-1))
    return Column(col.name, "text", values, codes=table[col.codes])


_WHOLE = r"^[-+]?\d+(\.0*)?$"


def _offset_values(log: Log, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(int64 per row, valid per row) of one offset column: whole numbers only (``12.0`` is 12)."""
    col = log.column(name)
    if col.kind != "text":  # read as text: a list (JSON, Parquet) is the only other kind
        msg = f"--time-col offset {name!r} holds lists; name a column of whole numbers"
        raise InputError(msg)
    assert col.codes is not None
    values, codes = col.values, col.codes
    ints, bad = _whole_numbers(values)
    if bad >= 0:
        row = int(np.flatnonzero(codes == bad)[0])
        msg = (
            f"{locate(log.inputs, row)}: --time-col offset {name!r} is {values[bad].as_py()!r}, not a whole number; "
            "fix the row, or name the right columns in --time-col BASE,OFFSET"
        )
        raise InputError(msg)
    valid = codes >= 0
    return np.append(ints, np.int64(0))[codes], valid


def _whole_numbers(values: pa.Array) -> tuple[np.ndarray, int]:
    """Distinct values as exact int64 -> (ints, -1), or (partial, index of the first one that is not)."""
    typ = values.type
    if pa.types.is_integer(typ):
        return pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False), -1
    if pa.types.is_floating(typ):
        f = values.to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(f) & (np.floor(f) == f) & (np.abs(f) < 2.0**53)
        return (f.astype(np.int64), -1) if ok.all() else (np.zeros(0, np.int64), int(np.flatnonzero(~ok)[0]))
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    ok = pc.fill_null(pc.match_substring_regex(text, _WHOLE), False).to_numpy(zero_copy_only=False)
    if not ok.all():
        return np.zeros(0, np.int64), int(np.flatnonzero(~ok)[0])
    digits = pc.replace_substring_regex(text, r"\.0*$", "")
    try:
        return pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False), -1
    except pa.ArrowInvalid:  # beyond int64: name the first such value
        big = np.array([abs(int(v)) >= 2**63 for v in digits.to_pylist()])
        return np.zeros(0, np.int64), int(np.flatnonzero(big)[0])


_INT64_MAX = 2**63 - 1


def combine_times(
    log: Log, offsets: tuple[str, ...], offset_unit: str | None, spec: str
) -> tuple[np.ndarray, np.ndarray, str]:
    """(int64 timestamps, validity, unit) of ``--time-col BASE,OFFSET...``: BASE + every OFFSET, exactly.

    A date BASE (unit s/ms/us/ns) is brought to the finer of its unit and ``offset_unit`` (default
    ``ms``), each offset from ``offset_unit`` to it; an epoch-number BASE (unit ``epoch``) takes the
    offsets as they are. A sum beyond int64 is an error, never a wrapped value.
    """
    base, unit = log.time, log.time_unit
    if unit == "epoch":
        if offset_unit is not None:
            msg = (
                f"--time-offset-unit {offset_unit}: the base column of --time-col {spec} holds epoch numbers, "
                "whose offsets are added as they are, in the numbers' own unit; drop --time-offset-unit"
            )
            raise ConfigError(msg)
        if base.dtype.kind == "f":
            msg = (
                f"--time-col {spec}: the base column holds fractional epoch numbers; offsets are added exactly "
                "to whole numbers or dates only - use a whole-number or date base column"
            )
            raise InputError(msg)
        out_unit, base_scale, off_scale = "epoch", 1, 1
    else:
        ounit = offset_unit or DEFAULT_OFFSET_UNIT
        out_unit = max(unit, ounit, key=UNIT_SCALE.__getitem__)
        base_scale = UNIT_SCALE[out_unit] // UNIT_SCALE[unit]
        off_scale = UNIT_SCALE[out_unit] // UNIT_SCALE[ounit]
    valid = log.time_valid.copy()
    parts = [(base.astype(np.int64, copy=False), base_scale)]
    for name in offsets:
        values, ok = _offset_values(log, name)
        valid &= ok
        parts.append((values, off_scale))
    bound = sum(int(np.abs(v[valid]).max(initial=0)) * s for v, s in parts)
    if bound > _INT64_MAX:
        msg = f"--time-col {spec}: the combined timestamps exceed int64 in unit {out_unit}; check the columns and --time-offset-unit"
        raise InputError(msg)
    total = np.zeros(len(base), dtype=np.int64)
    for values, scale in parts:
        total += values * np.int64(scale) if scale != 1 else values
    total[~valid] = 0
    return total, valid, out_unit
