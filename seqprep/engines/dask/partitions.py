"""What the Dask engine runs on each partition: pure pandas / pyarrow / numpy, with the local
engine's kernels (time window, rating bound, dedup, the stable time sort, ties, sessions).

Rows carry their global input position ``pos`` (inputs in the order given, then line order: the
tie-break) and ``stage``, the step that removed them (:data:`KEPT` for a kept row).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import InputError
from ...io.columns import normalize_rating, normalize_time
from ...kernels import csr_offsets, tie_stats, time_order
from ...kernels.filters import dedup, rating_at_least, session_ids, time_window
from ...steps.sessions import session_lengths

__all__ = [
    "CANON_META",
    "FINISH_META",
    "SUMMARY_META",
    "KEYED_META",
    "STR",
    "UNITS",
    "NO_POS",
    "MISSING",
    "WINDOW",
    "RATING",
    "DEDUP",
    "KCORE",
    "KEPT",
    "canon",
    "summary",
    "finish",
    "dedup_part",
    "drop_ids",
    "keyed",
    "encode",
    "encoded_meta",
    "make_part",
]

UNITS = ("none", "epoch", "s", "ms", "us", "ns")  # time kind code = 2 * unit index + is_float
STR = pd.StringDtype("pyarrow")
NO_POS = np.iinfo(np.int64).max

CANON_META = pd.DataFrame(
    {
        "user": pd.Series([], dtype=STR),
        "item": pd.Series([], dtype=STR),
        "time": pd.Series([], dtype=np.int64),  # int64 values, or float64 bits (see the kind code)
        "tk": pd.Series([], dtype=np.int8),  # the partition's time kind: 2 * unit index + is_float
        "tv": pd.Series([], dtype=bool),  # time present
        "rating": pd.Series([], dtype=np.float32),
    }
)


def _ids_text(col: pd.Series, role: str, where: str) -> pd.Series:
    """Ids as text (typed later on the distinct values, like the local reader); missing stays <NA>."""
    try:
        arr = pa.array(col, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects (e.g. JSON ints and strings)
        arr = pa.array(col.astype(object).where(col.notna(), None).map(lambda v: v if v is None else str(v)))
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        ok = pc.equal(arr, pc.floor(arr))
        if not pc.all(pc.fill_null(ok, True)).as_py():
            bad = arr.filter(pc.invert(pc.fill_null(ok, True)))[0].as_py()
            msg = f"{where}: {role} ids are fractional numbers (e.g. {bad}); ids must be integers or text - pass --{role}-col with an id column"
            raise InputError(msg)
        arr = pc.cast(arr, pa.int64())
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return pd.Series(pd.arrays.ArrowStringArray(arr), index=col.index)


def _rating(col: pd.Series, where: str) -> np.ndarray:
    arr = pa.array(col, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):  # pyarrow-backed pandas columns come back chunked
        arr = arr.combine_chunks()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:  # as the CSV reader parses it: text -> float64, then float32
            arr = pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
        except pa.ArrowInvalid:
            normalize_rating(pa.chunked_array([arr]), where)  # raises the reader's error
            raise
    out = normalize_rating(pa.chunked_array([arr]), where)
    return pc.fill_null(out, float("nan")).to_numpy(zero_copy_only=False)


def canon(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Role columns -> canonical columns (see ``CANON_META``)."""
    n = len(df)
    t_arr, unit = normalize_time(pa.array(df["time"], from_pandas=True), where, 0)
    valid = t_arr.is_valid().to_numpy(zero_copy_only=False) if t_arr.null_count else np.ones(n, dtype=bool)
    is_float = pa.types.is_floating(t_arr.type)
    values = pc.fill_null(t_arr, 0).to_numpy(zero_copy_only=False)
    bits = values.view(np.int64) if is_float else values.astype(np.int64, copy=False)
    unit_code = UNITS.index(unit) if valid.any() else 0
    return pd.DataFrame(
        {
            "user": _ids_text(df["user"], "user", where),
            "item": _ids_text(df["item"], "item", where),
            "time": bits,
            "tk": np.full(n, 2 * unit_code + int(is_float), dtype=np.int8),
            "tv": valid,
            "rating": _rating(df["rating"], where) if "rating" in df.columns else np.full(n, np.nan, np.float32),
        },
        index=df.index,
    )


SUMMARY_META = pd.DataFrame(
    {
        k: pd.Series([], dtype=np.int64)
        for k in ("rows", "missing_user", "missing_item", "missing_time", "bad", "first_bad", "tk")
    }
)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per partition: its length, missing values, first bad row and time kind."""
    mu = df["user"].isna().to_numpy()
    mi = df["item"].isna().to_numpy()
    mt = ~df["tv"].to_numpy()
    bad = mu | mi | mt
    return pd.DataFrame(
        {
            "rows": [len(df)],
            "missing_user": [int(mu.sum())],
            "missing_item": [int(mi.sum())],
            "missing_time": [int(mt.sum())],
            "bad": [int(bad.sum())],
            "first_bad": [int(np.argmax(bad)) if bad.any() else -1],
            "tk": [int(df["tk"].iat[0]) if len(df) else 0],
        }
    )


FINISH_META = pd.DataFrame(
    {
        "user": pd.Series([], dtype=STR),
        "item": pd.Series([], dtype=STR),
        "time": pd.Series([], dtype=np.int64),
        "rating": pd.Series([], dtype=np.float32),
        "pos": pd.Series([], dtype=np.int64),
        "stage": pd.Series([], dtype=np.int16),
    }
)
# ``stage``: the step that removed the row, or KEPT. The steps in their documented order; k-core
# round r (from 1) is stage KCORE + r - 1.
MISSING, WINDOW, RATING, DEDUP, KCORE = 0, 1, 2, 3, 4
KEPT = np.iinfo(np.int16).max


def finish(
    df: pd.DataFrame,
    offsets: np.ndarray,
    scales: np.ndarray,
    as_float: bool,
    since: float | None = None,
    until: float | None = None,
    min_rating: float | None = None,
    partition_info: Any = None,
) -> pd.DataFrame:
    """Global input position, final time type/unit, and the row-level steps (missing values, time
    window, rating bound, by the local kernels) as the row's ``stage``."""
    k = partition_info["number"]
    n = len(df)
    pos = np.arange(offsets[k], offsets[k] + n, dtype=np.int64)
    bits = df["time"].to_numpy()
    code = int(df["tk"].iat[0]) if n else 0
    t = bits.view(np.float64) if code % 2 else bits
    if as_float:
        t = t.astype(np.float64)
    elif scales[k] != 1:
        t = t * np.int64(scales[k])
    ok = df["user"].notna().to_numpy() & df["item"].notna().to_numpy() & df["tv"].to_numpy()
    stage = np.where(ok, KEPT, MISSING).astype(np.int16)
    if since is not None or until is not None:
        stage[(stage == KEPT) & ~time_window(t, since, until)] = WINDOW
    if min_rating is not None:
        stage[(stage == KEPT) & ~rating_at_least(df["rating"].to_numpy(), min_rating)] = RATING
    return pd.DataFrame(
        {"user": df["user"], "item": df["item"], "time": t, "rating": df["rating"], "pos": pos, "stage": stage},
        index=df.index,
    )


def dedup_part(df: pd.DataFrame, mode: str, has_rating: bool) -> pd.DataFrame:
    """The dedup step on a partition holding whole users: the local kernel on the kept rows in input
    order (it only compares codes for equality, so per-partition codes give the global result)."""
    stage = df["stage"].to_numpy().copy()
    rows = np.flatnonzero(stage == KEPT)
    rows = rows[np.argsort(df["pos"].to_numpy()[rows], kind="stable")]
    if len(rows) > 1:
        user = pd.factorize(df["user"].iloc[rows])[0]
        item = pd.factorize(df["item"].iloc[rows])[0]
        rating = df["rating"].to_numpy()[rows] if has_rating else None
        keep = dedup(user, item, df["time"].to_numpy()[rows], rating, mode)  # type: ignore[arg-type]
        stage[rows[~keep]] = DEDUP
    return df.assign(stage=stage)


def drop_ids(df: pd.DataFrame, users: pa.Array, items: pa.Array, stage_code: int) -> pd.DataFrame:
    """One k-core round: kept rows whose user or item is below its bound get ``stage_code``."""
    bad = np.zeros(len(df), dtype=bool)
    for col, ids in (("user", users), ("item", items)):
        if len(ids):
            values = pa.array(df[col])
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            bad |= pc.fill_null(pc.is_in(values.cast(pa.string()), value_set=ids), False).to_numpy(zero_copy_only=False)
    stage = df["stage"].to_numpy().copy()
    stage[bad & (stage == KEPT)] = stage_code
    return df.assign(stage=stage)


def keyed(df: pd.DataFrame) -> pd.DataFrame:
    """Columns for the count tables: kept rows, first kept position, last step reached."""
    kept = df["stage"].to_numpy() == KEPT
    return pd.DataFrame(
        {
            "user": df["user"],
            "item": df["item"],
            "kept": kept.astype(np.int64),
            "kpos": np.where(kept, df["pos"].to_numpy(), NO_POS),
            "smax": df["stage"].to_numpy(),
        },
        index=df.index,
    )


def _lookup(col: pd.Series, ids: pa.Array) -> np.ndarray:
    """Position of each value of ``col`` in ``ids`` (an Arrow hash lookup; every value is present)."""
    values = pa.array(col)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.index_in(values.cast(ids.type), value_set=ids).to_numpy(zero_copy_only=False)


def encode(df: pd.DataFrame, users: pa.Array, items: pa.Array) -> pd.DataFrame:
    """Kept rows with user and item indices (items 1..N) from the broadcast vocabularies."""
    df = df[df["stage"].to_numpy() == KEPT]
    return pd.DataFrame(
        {
            "uidx": _lookup(df["user"], users).astype(np.int64),
            "iidx": (_lookup(df["item"], items) + 1).astype(np.int32),
            "time": df["time"].to_numpy(),
            "rating": df["rating"].to_numpy(),
            "pos": df["pos"].to_numpy(),
        }
    )


def make_part(df: pd.DataFrame, lo: int, hi: int, has_rating: bool, gap: float | None = None) -> dict[str, Any]:
    """Users lo..hi-1 as CSR arrays, by the local kernels: input order, then the stable time sort;
    with a session ``gap``, the session numbers and lengths (users are whole, so per part is global)."""
    user = df.index.to_numpy().astype(np.int64) - lo
    back = np.argsort(df["pos"].to_numpy(), kind="stable")  # input order (the tie-break)
    user = user[back]
    time = df["time"].to_numpy()[back]
    order = back[time_order(user, time)]
    offsets = csr_offsets(np.bincount(user, minlength=hi - lo))
    timestamps = df["time"].to_numpy()[order]
    sids = None if gap is None else session_ids(offsets, timestamps, gap)
    return {
        "lo": lo,
        "hi": hi,
        "offsets": offsets,
        "items": df["iidx"].to_numpy()[order].astype(np.int32, copy=False),
        "timestamps": timestamps,
        "ratings": df["rating"].to_numpy()[order].astype(np.float32, copy=False) if has_rating else None,
        "ties": tie_stats(offsets, timestamps),
        "session_ids": sids,
        "session_lengths": None if sids is None else session_lengths(offsets, sids),
    }


KEYED_META = pd.DataFrame(
    {
        "user": pd.Series([], dtype=STR),
        "item": pd.Series([], dtype=STR),
        "kept": pd.Series([], dtype=np.int64),
        "kpos": pd.Series([], dtype=np.int64),
        "smax": pd.Series([], dtype=np.int16),
    }
)


def encoded_meta(as_float: bool) -> pd.DataFrame:
    """The frame :func:`encode` returns, empty."""
    return pd.DataFrame(
        {
            "uidx": pd.Series([], dtype=np.int64),
            "iidx": pd.Series([], dtype=np.int32),
            "time": pd.Series([], dtype=np.float64 if as_float else np.int64),
            "rating": pd.Series([], dtype=np.float32),
            "pos": pd.Series([], dtype=np.int64),
        }
    )
