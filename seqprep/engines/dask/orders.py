"""The vocabulary orders that need more than count tables, on a Dask cluster (the presets' orders):

- ``--user-order date``: users by the UTC day of their last row in the log as read, equal days by
  their first row (:func:`~seqprep.steps.vocabularies.log_dates`). Each partition gives, per user
  code, its first and last row with a time (and that last row's time); the client keeps the latest
  of the partitions and orders the kept users by the local kernel
  (:func:`~seqprep.kernels.vocab.date_order_counted`);
- ``--item-order sequence``: items by first appearance reading the sorted sequences user by user.
  The sort never looks at the item indices, so the rows travel with their item *codes*; each output
  part gives its codes in order of first appearance, the client joins them in user order (the first
  appearance over the parts in order is the first over the sequences) and each part then maps its
  codes to the indices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ...kernels.vocab import date_order_counted, first_seen_codes, remap_table
from ...model import Log
from ...steps.vocabularies import ITEM_START, USER_START, fitted, log_dates
from ...vocab import Vocabulary

__all__ = ["by_sequence", "dates_by_index", "user_dates", "users_by_date"]

_NO_POS = np.iinfo(np.int64).max


def _user_rows(
    df: pd.DataFrame, size: int, offsets: np.ndarray, partition_info: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user code of one partition: (first row, last row, the last row's time) of the rows with
    a user and a time, rows counted as input positions (-1 / max: none)."""
    k = partition_info["number"]
    user = df["user"].to_numpy()
    ok = np.flatnonzero((user >= 0) & df["tv"].to_numpy())
    codes, pos = user[ok], offsets[k] + ok
    first = np.full(size, _NO_POS, np.int64)
    np.minimum.at(first, codes, pos)
    last = np.full(size, -1, np.int64)
    np.maximum.at(last, codes, pos)
    time = np.zeros(size, df["time"].dtype)
    has = last >= 0
    time[has] = df["time"].to_numpy()[last[has] - offsets[k]]
    return first, last, time


def user_dates(dask: Any, canon: Any, offsets: np.ndarray, log: Log) -> tuple[np.ndarray, np.ndarray]:
    """(date, first row) of every user code, as :func:`~seqprep.steps.vocabularies.log_dates` gives them."""
    size = len(log.user_ids)
    parts = canon.to_delayed()
    found = dask.compute(
        *[dask.delayed(_user_rows)(p, size, offsets, partition_info={"number": k}) for k, p in enumerate(parts)]
    )
    first = np.full(size, _NO_POS, np.int64)
    last = np.full(size, -1, np.int64)
    time = np.zeros(size, found[0][2].dtype if found else np.int64)
    for f, lpos, t in found:  # partitions in input order: a later last row wins
        np.minimum(first, f, out=first)
        later = lpos > last
        last[later], time[later] = lpos[later], t[later]
    codes = np.flatnonzero(last >= 0).astype(np.int32)
    one_row_each = Log(
        codes,
        log.user_ids,
        np.zeros(len(codes), np.int32),
        log.item_ids,
        time[codes],
        np.ones(len(codes), bool),
        log.time_unit,
        None,
        log.inputs,
    )
    dates, _ = log_dates(one_row_each, "--user-order date")  # each code's one row is its last
    return dates, first


def users_by_date(
    counts: np.ndarray, dates: np.ndarray, first: np.ndarray, ids: pa.Array
) -> tuple[Vocabulary, np.ndarray]:
    """The users' vocabulary by date (``counts``: kept rows per code) and its code -> index table."""
    chosen, ordered = date_order_counted(counts, dates, first)
    return fitted(ids, chosen, ordered, USER_START), remap_table(chosen, len(ids), start=USER_START)


def _first_codes(part: dict[str, Any]) -> np.ndarray:
    return first_seen_codes(part["items"])


def _renumbered(part: dict[str, Any], table: np.ndarray) -> dict[str, Any]:
    return {**part, "items": table[part["items"]].astype(np.int32)}


def by_sequence(client: Any, futures: list[Any], counts: np.ndarray, ids: pa.Array) -> tuple[Vocabulary, list[Any]]:
    """``--item-order sequence`` on parts whose ``items`` are item codes: (the items' vocabulary, the
    parts with their item indices, futures in user order)."""
    seen = client.gather(client.map(_first_codes, futures))
    chosen = first_seen_codes(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
    items = fitted(ids, chosen, np.asarray(counts, np.int64)[chosen], ITEM_START)
    table = client.scatter(remap_table(chosen, len(ids), start=ITEM_START), broadcast=True, hash=False)
    return items, [client.submit(_renumbered, f, table, pure=False) for f in futures]


def dates_by_index(by_code: np.ndarray, lookup: np.ndarray, num_users: int) -> np.ndarray:
    """``--split days``: each user index's date from its code's (as the local ``sequence_dates``)."""
    dates = np.zeros(num_users, dtype=np.int64)
    kept = lookup >= 0
    dates[lookup[kept]] = by_code[kept]
    return dates
