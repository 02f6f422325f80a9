"""Session keys and combined timestamps on a Dask cluster (``--session-col``, ``--time-col BASE,OFFSET``),
by the local read plan (:mod:`seqprep.io.keys`): the client plans the read as the local reader does
(the pieces read the session as the key, the base as the time, the users and offsets as other
columns), and :meth:`~seqprep.io.keys.ReadPlan.finish` turns each canonical partition into what the
options describe - the same function the local reader applies to the whole log (a row's combined
time is its own; the users' column is typed on its dictionary, the same in every partition).

The client first runs ``finish`` on a log of no real rows holding every distinct value of the
columns (:func:`plan_columns`): it gives the log's time unit, the typed users' dictionary and the
inputs' recorded roles, and rejects a bad offset value before any work (the exact local error, with
its line, then comes from the local reader).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ...errors import InputError
from ...io.keys import ReadPlan
from ...model import Column, InputInfo, Interactions, Log
from ...steps.session_key import SessionUsers, session_users
from ...vocab import Vocabulary
from .columns import LogColumns

__all__ = ["frame_meta", "keyed", "keyed_part", "plan_columns", "session_carry", "session_key", "session_users_of"]


def keyed(plan: ReadPlan | None) -> bool:
    """Whether ``finish`` changes anything beyond the columns kept (a session key, a combined time)."""
    return plan is not None and (bool(plan.offsets) or plan.session is not None)


def _log(
    columns: LogColumns,
    data: list[np.ndarray],
    time: np.ndarray,
    valid: np.ndarray,
    unit: str,
    inputs: tuple[InputInfo, ...],
) -> Log:
    empty = np.zeros(len(time), np.int32)
    cols = tuple(columns.column(k, d) for k, d in enumerate(data))
    return Log(empty, pa.array([], pa.int64()), empty, pa.array([], pa.int64()), time, valid, unit, None, inputs, cols)


def plan_columns(
    plan: ReadPlan, columns: LogColumns, unit: str, as_float: bool, inputs: tuple[InputInfo, ...], local_error: Any
) -> tuple[LogColumns, str, tuple[InputInfo, ...], list[np.ndarray | None]]:
    """-> (the columns once finished: kept ones only, the users' typed; the log's time unit; the
    inputs with their recorded roles; per finished column the table old code -> new code, None
    for a number column). ``local_error()``: raises the local reader's error for the log."""
    n = max([len(v) for v in columns.values if v is not None] + [1])
    data = [
        np.zeros(n) if v is None else np.append(np.arange(len(v), dtype=np.int32), np.full(n - len(v), -1, np.int32))
        for v in columns.values
    ]
    stub = _log(columns, data, np.zeros(n, np.float64 if as_float else np.int64), np.ones(n, bool), unit, inputs)
    try:
        done = plan.finish(stub)
    except InputError as e:  # a value no row may hold (an offset that is not a whole number): the local line
        local_error()
        raise e
    names = tuple(c.name for c in done.columns)
    tables: list[np.ndarray | None] = []
    for c in done.columns:
        k = columns.index(c.name)
        tables.append(
            None if c.codes is None or c.kind == "list" else np.append(c.codes[: len(columns.values[k])], np.int32(-1)).astype(np.int32)
        )
    finished = LogColumns(
        names,
        tuple(c.kind for c in done.columns),
        tuple(columns.values[columns.index(c.name)] if c.kind == "list" else c.values if c.kind != "number" else None for c in done.columns),
    )  # a list column's rows keep their codes of its distinct lists
    return finished, done.time_unit, done.inputs, tables


def keyed_part(
    df: pd.DataFrame,
    plan: ReadPlan,
    columns: LogColumns,
    finished: LogColumns,
    tables: list[np.ndarray | None],
    unit: str,
    inputs: tuple[InputInfo, ...],
) -> pd.DataFrame:
    """One canonical partition finished by the local plan: the combined time and its validity, the
    kept columns with their codes into the finished dictionaries."""
    data = [df[columns.key(k)].to_numpy() for k in range(len(columns.names))]
    done = plan.finish(_log(columns, data, df["time"].to_numpy(), df["tv"].to_numpy(), unit, inputs))
    out = {"user": df["user"], "item": df["item"], "time": done.time, "tv": done.time_valid, "rating": df["rating"]}
    for j, name in enumerate(finished.names):
        values = data[columns.index(name)]
        out[finished.key(j)] = values if tables[j] is None else tables[j][values]
    return pd.DataFrame(out, index=df.index)


def frame_meta(canon_meta: pd.DataFrame, finished: LogColumns, combined: bool) -> pd.DataFrame:
    """The finished frame, empty (``combined``: int64 timestamps, the sums)."""
    base = canon_meta[["user", "item", "time", "tv", "rating"]]
    if combined:
        base = base.assign(time=pd.Series([], dtype=np.int64))
    return base.assign(**finished.meta())


def _users_column(inputs: tuple[InputInfo, ...]) -> str | None:
    cols = inputs[0].columns if inputs else {}
    return cols.get("user") if "session" in cols else None


def session_carry(inputs: tuple[InputInfo, ...], columns: LogColumns) -> tuple[tuple[str, np.ndarray], ...]:
    """With ``--session-col``: the users' column sent with the rows to the parts (its codes as they
    are), as a :func:`~seqprep.engines.dask.partitions.split_rows` encoder; else nothing."""
    name = _users_column(inputs)
    if name is None:
        return ()
    k = columns.index(name)
    return ((columns.key(k), np.append(np.arange(len(columns.values[k]), dtype=np.int32), np.int32(-1))),)


def _part_users(
    part: dict[str, Any], inputs: tuple[InputInfo, ...], users: Column
) -> tuple[np.ndarray, int, np.ndarray]:
    """One part's sessions' users by the local step on its sorted rows (the stable time order of
    each session, ties in input order): (the user code of each session, -1 none; sessions with
    several users; the user codes present)."""
    offsets = part["offsets"]
    n = len(offsets) - 1
    codes = part["carried"][0]
    key = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    col = Column(users.name, "text", users.values, codes=codes)
    inter = Interactions(key, part["items"], part["timestamps"], None, (col,))
    empty = np.zeros(0, np.int32)
    log = Log(
        empty,
        pa.nulls(n, pa.int64()),
        empty,
        pa.array([], pa.int64()),
        part["timestamps"][:0],
        np.zeros(0, bool),
        "epoch",
        None,
        inputs,
    )
    found = session_users(log, inter)
    assert found is not None
    return found.first, found.several, np.unique(codes[codes >= 0])


def session_users_of(
    client: Any, futures: list[Any], inputs: tuple[InputInfo, ...], columns: LogColumns, sessions: Vocabulary
) -> tuple[SessionUsers, Log] | None:
    """With ``--session-col``, each session's user by the local step on every part's worker (the
    parts numbered by ``sessions``), added up in user order: the users found and the log of the
    sessions' ids they are keyed by; None without. ``--vocab-from-train`` runs it on the parts of
    every kept row, before the rows of unseen items go, as the local engine does."""
    name = _users_column(inputs)
    if name is None:
        return None
    k = columns.index(name)
    users = Column(name, "text", columns.values[k], codes=np.zeros(0, np.int32))
    shared = client.scatter(users, broadcast=True, hash=False)
    found = client.gather([client.submit(_part_users, f, inputs, shared, pure=False) for f in futures])
    first = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    present = np.unique(np.concatenate([f[2] for f in found])) if found else np.zeros(0, np.int32)
    keyed = SessionUsers(inputs[0].columns["session"], users, first, int(sum(f[1] for f in found)), len(present))
    empty = np.zeros(0, np.int32)
    log = Log(
        empty,
        sessions.ids,
        empty,
        pa.array([], pa.int64()),
        np.zeros(0, np.int64),
        np.zeros(0, bool),
        "epoch",
        None,
        inputs,
    )  # the sessions' codes are their indices here: ``first`` is by index
    return keyed, log


def session_key(found: tuple[SessionUsers, Log] | None, sessions: Vocabulary) -> tuple[pa.Table, dict[str, Any]] | None:
    """sessions.parquet and meta.json's ``session_key`` of the output's ``sessions`` from
    :func:`session_users_of` (None without ``--session-col``)."""
    if found is None:
        return None
    keyed, log = found
    table = keyed.table(sessions, log)
    return table, keyed.meta(table)
