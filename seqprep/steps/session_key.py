"""Session-keyed sequences (``--session-col S``): every output is keyed by the session, and each
session keeps its user, in ``sessions.parquet`` and meta.json ``session_key``.

The reader reads S as the key (as ``--user-col S`` would) and the users' column as an other column
(:mod:`seqprep.io.keys`). The user of a session is **the user of its first row, in the session's
stable time order, that has one** (rows without a user, e.g. Diginetica's ``NA``, are passed over);
a session with no such row has none (null). Sessions whose rows name more than one user are counted
(``sessions_with_several_users``), never an error: they keep their first user.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..kernels.filters import num_present
from ..model import Column, Interactions, Log
from ..records import record
from ..vocab import Vocabulary

__all__ = ["SESSIONS_FILE", "SessionUsers", "session_users"]

SESSIONS_FILE = "sessions.parquet"
RULE = "a session's user is the user of its first row in stable time order that has one; null when none has"


@record
class SessionUsers:
    """Each key code's user (``first[k]``: a code into ``users.values``, -1 for none), from the kept rows."""

    session_column: str
    users: Column
    first: np.ndarray
    several: int
    num_users: int

    def table(self, sessions: Vocabulary, log: Log) -> pa.Table:
        """sessions.parquet: ``user_idx`` (the session's row in every output), ``session_id``, ``user_id``."""
        codes = pc.fill_null(pc.index_in(sessions.ids, value_set=log.user_ids), -1).to_numpy(zero_copy_only=False)
        user_codes = np.append(self.first, -1)[codes]
        user_id = self.users.values.take(pa.array(user_codes, pa.int64(), mask=user_codes < 0))  # null: no user
        return pa.table(
            {"user_idx": pa.array(sessions.indices, pa.int32()), "session_id": sessions.ids, "user_id": user_id}
        )

    def meta(self, table: pa.Table) -> dict[str, Any]:
        """meta.json's ``session_key`` entry, from sessions.parquet's ``table``."""
        return {
            "column": self.session_column,
            "users_column": self.users.name,
            "num_sessions": table.num_rows,
            "num_users": self.num_users,
            "sessions_without_user": table["user_id"].null_count,
            "sessions_with_several_users": self.several,
            "rule": RULE,
        }


def session_users(log: Log, inter: Interactions) -> SessionUsers | None:
    """The user of each session of the kept rows ``inter``; None unless the log is session-keyed.

    >>> from seqprep.model import InputInfo
    >>> users = Column("user_id", "text", pa.array([7, 9]), codes=np.array([-1, 0, 1, 1], dtype=np.int32))
    >>> inter = Interactions(np.array([0, 0, 1, 1]), np.zeros(4, np.int32), np.array([5, 6, 2, 1]), None, (users,))
    >>> info = InputInfo("f", 0, None, 4, "csv", None, {"session": "s", "user": "user_id"})
    >>> log = Log(np.array([0, 0, 1, 1]), pa.array([1, 2]), np.zeros(4, np.int32), pa.array([3]), inter.time,
    ...           np.ones(4, bool), "epoch", None, (info,), (users,))
    >>> s = session_users(log, inter)
    >>> s.first.tolist(), s.several  # session 2: user 9 at t=1 comes first
    ([0, 1], 0)
    """
    cols = log.inputs[0].columns if log.inputs else {}
    if "session" not in cols:
        return None
    users = inter.column(cols["user"])
    assert users.codes is not None
    rows = np.flatnonzero(users.codes >= 0)
    key, codes = inter.user[rows], users.codes[rows]
    order = np.lexsort((inter.time[rows], key))  # by session, then time; stable: ties in input order
    key, codes = key[order], codes[order]
    first = np.full(len(log.user_ids), -1, dtype=np.int64)
    several = 0
    if len(key):
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        first[key[starts]] = codes[starts]
        several = int(np.count_nonzero(np.minimum.reduceat(codes, starts) != np.maximum.reduceat(codes, starts)))
    return SessionUsers(cols["session"], users, first, several, num_present(codes))
