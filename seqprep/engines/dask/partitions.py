"""What the Dask engine runs on each partition: pure pandas / pyarrow / numpy, with the local
engine's kernels on integer columns (global id codes; time window, rating bound, dedup, the stable time sort, ties, sessions).

Rows carry their global input position ``pos`` (inputs in the order given, then line order: the
tie-break) and ``stage``, the step that removed them (:data:`KEPT` for a kept row).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ...kernels import csr_offsets, tie_stats, time_order
from ...kernels.filters import dedup, rating_at_least, session_ids, time_window
from ...model import Feature
from ...steps.sessions import session_lengths

__all__ = [
    "finish_meta",
    "SUMMARY_META",
    "NO_POS",
    "MISSING",
    "WHERE",
    "UNKNOWN",
    "WINDOW",
    "RATING",
    "DEDUP",
    "KCORE",
    "KEPT",
    "summary",
    "finish",
    "dedup_part",
    "drop_ids",
    "kept_counts",
    "kcore_counts",
    "code_tables",
    "merge_code_tables",
    "present_items",
    "where_counts",
    "merge_where_counts",
    "first_items",
    "split_rows",
    "make_part",
    "part_stats",
]

NO_POS = np.iinfo(np.int64).max


SUMMARY_META = pd.DataFrame(
    {
        k: pd.Series([], dtype=np.int64)
        for k in ("rows", "missing_user", "missing_item", "missing_time", "bad", "first_bad")
    }
)


def _complete(df: pd.DataFrame) -> np.ndarray:
    """The rows with user, item and timestamp that every ``--where`` predicate keeps."""
    ok = (df["user"].to_numpy() >= 0) & (df["item"].to_numpy() >= 0) & df["tv"].to_numpy()
    return ok & df["wk"].to_numpy() if "wk" in df.columns else ok


def where_counts(df: pd.DataFrame, sizes: tuple[int, int]) -> dict[str, Any]:
    """The ``--where`` step's counts of one partition: rows it sees and removes, rows with an unknown
    predicate, and per user / item code whether a row reaches the step and whether one passes it."""
    ok = (df["user"].to_numpy() >= 0) & (df["item"].to_numpy() >= 0) & df["tv"].to_numpy()
    kept = ok & df["wk"].to_numpy()
    out: dict[str, Any] = {"rows": int(ok.sum()), "removed": int((ok & ~kept).sum()), "unknown": int((ok & df["wu"].to_numpy()).sum())}
    for role, size in (("user", sizes[0]), ("item", sizes[1])):
        codes = df[role].to_numpy()
        out[f"{role}_before"] = np.bincount(codes[ok], minlength=size) > 0
        out[f"{role}_after"] = np.bincount(codes[kept], minlength=size) > 0
    return out


def merge_where_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: (v | b[k]) if isinstance(v, np.ndarray) else v + b[k] for k, v in a.items()}


def present_items(df: pd.DataFrame, size: int) -> np.ndarray:
    """Rows per item code of the rows with user, item and timestamp (the unknown-items step's input)."""
    ok = _complete(df)
    return np.bincount(df["item"].to_numpy()[ok], minlength=size).astype(np.int64)


def first_items(df: pd.DataFrame, mask: np.ndarray, offsets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes where ``mask``, the input position of their first complete row) of partition ``k``."""
    ok = _complete(df)
    items = df["item"].to_numpy()
    rows = np.flatnonzero(ok)
    rows = rows[mask[items[rows]]]
    codes, first = np.unique(items[rows], return_index=True)
    return codes, offsets[k] + rows[first]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per partition: its length, missing values and first bad row."""
    mu = df["user"].to_numpy() < 0
    mi = df["item"].to_numpy() < 0
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
        }
    )


def finish_meta(as_float: bool, extra: dict[str, pd.Series] | None = None) -> pd.DataFrame:
    """The frame :func:`finish` returns, empty (``extra``: the other columns', :mod:`.columns`)."""
    return pd.DataFrame(
        {
            "user": pd.Series([], dtype=np.int32),
            "item": pd.Series([], dtype=np.int32),
            "time": pd.Series([], dtype=np.float64 if as_float else np.int64),
            "rating": pd.Series([], dtype=np.float32),
            "pos": pd.Series([], dtype=np.int64),
            "stage": pd.Series([], dtype=np.int16),
            **(extra or {}),
        }
    )


# ``stage``: the step that removed the row, or KEPT. The steps in their documented order; k-core
# round r (from 1) is stage KCORE + r - 1. WHERE: a --where predicate not true; UNKNOWN: an item the
# reused vocabulary (--vocab-from) lacks.
MISSING, WHERE, UNKNOWN, WINDOW, RATING, DEDUP, KCORE = 0, 1, 2, 3, 4, 5, 6
KEPT = np.iinfo(np.int16).max


def finish(
    df: pd.DataFrame,
    offsets: np.ndarray,
    since: float | None = None,
    until: float | None = None,
    min_rating: float | None = None,
    unknown: np.ndarray | None = None,
    partition_info: Any = None,
) -> pd.DataFrame:
    """Global input position and the row-level steps (missing values, the unknown items of a reused
    vocabulary - ``unknown``: a mask over the item codes -, time window, rating bound, by the local
    kernels) as the row's ``stage``."""
    k = partition_info["number"]
    n = len(df)
    pos = np.arange(offsets[k], offsets[k] + n, dtype=np.int64)
    t = df["time"].to_numpy()
    ok = (df["user"].to_numpy() >= 0) & (df["item"].to_numpy() >= 0) & df["tv"].to_numpy()
    stage = np.where(ok, KEPT, MISSING).astype(np.int16)
    if "wk" in df.columns:
        stage[ok & ~df["wk"].to_numpy()] = WHERE
    if unknown is not None:
        kept = stage == KEPT
        drop = np.zeros(n, dtype=bool)
        drop[kept] = unknown[df["item"].to_numpy()[kept]]
        stage[drop] = UNKNOWN
    if since is not None or until is not None:
        stage[(stage == KEPT) & ~time_window(t, since, until)] = WINDOW
    if min_rating is not None:
        stage[(stage == KEPT) & ~rating_at_least(df["rating"].to_numpy(), min_rating)] = RATING
    extra = {c: df[c] for c in df.columns if c.startswith("x")}  # the other columns travel with the rows
    return pd.DataFrame(
        {"user": df["user"], "item": df["item"], "time": t, "rating": df["rating"], "pos": pos, "stage": stage, **extra},
        index=df.index,
    )


def dedup_part(df: pd.DataFrame, mode: str, has_rating: bool) -> pd.DataFrame:
    """The dedup step on a partition holding whole users: the local kernel on the kept rows in input
    order (it only compares codes for equality, so per-partition codes give the global result)."""
    stage = df["stage"].to_numpy().copy()
    rows = np.flatnonzero(stage == KEPT)
    rows = rows[np.argsort(df["pos"].to_numpy()[rows], kind="stable")]
    if len(rows) > 1:
        user = df["user"].to_numpy()[rows]
        item = df["item"].to_numpy()[rows]
        rating = df["rating"].to_numpy()[rows] if has_rating else None
        keep = dedup(user, item, df["time"].to_numpy()[rows], rating, mode)  # type: ignore[arg-type]
        stage[rows[~keep]] = DEDUP
    return df.assign(stage=stage)


def drop_ids(df: pd.DataFrame, users: np.ndarray, items: np.ndarray, stage_code: int) -> pd.DataFrame:
    """One k-core round: kept rows whose user or item is below its bound (``users``/``items``: a mask
    over the global codes) get ``stage_code``."""
    stage = df["stage"].to_numpy().copy()
    kept = stage == KEPT
    bad = np.zeros(len(df), dtype=bool)
    bad[kept] = users[df["user"].to_numpy()[kept]] | items[df["item"].to_numpy()[kept]]
    stage[bad] = stage_code
    return df.assign(stage=stage)


def kept_counts(df: pd.DataFrame, sizes: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Kept rows per user code and per item code of one partition (summed over partitions)."""
    kept = df["stage"].to_numpy() == KEPT
    return (
        np.bincount(df["user"].to_numpy()[kept], minlength=sizes[0]).astype(np.int64),
        np.bincount(df["item"].to_numpy()[kept], minlength=sizes[1]).astype(np.int64),
    )


def kcore_counts(df: pd.DataFrame, sizes: tuple[int, int], target: tuple[str, np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
    """One partition's k-core tables (:class:`~seqprep.kernels.filters.KcoreTables`, summed over the
    partitions): kept rows per user and item code, and those that count (``target``: the event
    column and the mask of its target codes, the missing code -1 last; None: every kept row)."""
    kept = df["stage"].to_numpy() == KEPT
    user, item = df["user"].to_numpy(), df["item"].to_numpy()
    present = tuple(np.bincount(c[kept], minlength=n).astype(np.int64) for c, n in ((user, sizes[0]), (item, sizes[1])))
    if target is None:
        return present + present
    counted = kept & target[1][df[target[0]].to_numpy()]
    return present + tuple(np.bincount(c[counted], minlength=n).astype(np.int64) for c, n in ((user, sizes[0]), (item, sizes[1])))


def code_tables(df: pd.DataFrame, sizes: tuple[int, int], rating_from: int, columns: tuple[tuple[str, int], ...] = ()) -> dict[str, Any]:
    """One partition's count tables, per user code and per item code: rows (any stage), kept rows,
    first kept input position, last stage reached; and the rows per stage, the NaN ratings among
    the rows that reach the rating step (stage > ``rating_from``), the largest |timestamp| kept.
    Numpy arrays over all codes: summed / min / max over the partitions on the client.

    ``columns``: (frame column, dictionary size) of the other columns a feature encodes: per code
    + 1 (0: missing) its kept rows and first kept position; size -1 (numbers): the NaN kept rows."""
    stage = df["stage"].to_numpy()
    kept = stage == KEPT
    pos = df["pos"].to_numpy()
    out: dict[str, Any] = {}
    for role, size in (("user", sizes[0]), ("item", sizes[1])):
        codes = df[role].to_numpy()
        valid = codes >= 0
        out[f"{role}_rows"] = np.bincount(codes[valid], minlength=size).astype(np.int64)
        out[f"{role}_kept"] = np.bincount(codes[kept], minlength=size).astype(np.int64)
        kpos = np.full(size, NO_POS, dtype=np.int64)
        np.minimum.at(kpos, codes[kept], pos[kept])
        out[f"{role}_kpos"] = kpos
        smax = np.full(size, -1, dtype=np.int32)
        np.maximum.at(smax, codes[valid], stage[valid].astype(np.int32))
        out[f"{role}_smax"] = smax
    values, counts = np.unique(stage, return_counts=True)
    out["stages"] = dict(zip(values.tolist(), counts.tolist()))
    out["missing_rating"] = int(np.isnan(df["rating"].to_numpy()[stage > rating_from]).sum())
    t = df["time"].to_numpy()[kept]
    out["top"] = float(np.abs(t).max()) if len(t) else 0.0
    for key, size in columns:
        data = df[key].to_numpy()[kept]
        if size < 0:
            out[f"{key}_nan"] = int(np.isnan(data).sum())
            continue
        shifted = data.astype(np.int64) + 1
        out[f"{key}_kept"] = np.bincount(shifted, minlength=size + 1).astype(np.int64)
        kpos = np.full(size + 1, NO_POS, dtype=np.int64)
        np.minimum.at(kpos, shifted, pos[kept])
        out[f"{key}_kpos"] = kpos
    return out


def merge_code_tables(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two partitions' :func:`code_tables` as one (the tree reduction's step)."""
    out: dict[str, Any] = {}
    for key, value in a.items():
        if key.endswith(("_rows", "_kept")):
            out[key] = value + b[key]
        elif key.endswith("_kpos"):
            out[key] = np.minimum(value, b[key])
        elif key.endswith("_smax"):
            out[key] = np.maximum(value, b[key])
        elif key == "stages":
            out[key] = {k: value.get(k, 0) + b["stages"].get(k, 0) for k in value.keys() | b["stages"].keys()}
        elif key == "missing_rating" or key.endswith("_nan"):
            out[key] = value + b[key]
        else:
            out[key] = max(value, b[key])
    return out


def split_rows(
    df: pd.DataFrame, users: np.ndarray, items: np.ndarray, bounds: np.ndarray, encoders: tuple[tuple[str, np.ndarray | None], ...] = ()
) -> list[dict[str, np.ndarray]]:
    """The shuffle's send side: the kept rows of one partition with their user and item indices
    (from the broadcast code -> index tables; items from 1), cut by output part (users
    ``bounds[j] <= u < bounds[j + 1]``), each chunk in the partition's row order. Plain integer
    and float arrays: what crosses between workers.

    ``encoders``: per feature its frame column and table (code -> value, its last entry for a
    missing code; None: the column's numbers as float32), the values sent as ``f0``, ``f1``, ..."""
    rows = np.flatnonzero(df["stage"].to_numpy() == KEPT)
    user = df["user"].to_numpy()
    parts = len(bounds) - 1
    if parts > 1:  # the rows grouped by part, each part's rows in row order (one gather per column)
        part = np.searchsorted(bounds, users[user[rows]], side="right") - 1
        rows = rows[np.argsort(part, kind="stable")]
        cuts = csr_offsets(np.bincount(part, minlength=parts))
    else:
        cuts = np.array([0, len(rows)])
    cols = {
        "uidx": users[user[rows]].astype(np.int32),
        "iidx": items[df["item"].to_numpy()[rows]].astype(np.int32),
        "time": df["time"].to_numpy()[rows],
        "rating": df["rating"].to_numpy()[rows],
        "pos": df["pos"].to_numpy()[rows],
    }
    for j, (key, table) in enumerate(encoders):
        data = df[key].to_numpy()[rows]
        cols[f"f{j}"] = data.astype(np.float32) if table is None else table[data]
    return [{k: v[cuts[j] : cuts[j + 1]] for k, v in cols.items()} for j in range(parts)]


def make_part(
    chunks: list[dict[str, np.ndarray]],
    lo: int,
    hi: int,
    has_rating: bool,
    gap: float | None = None,
    features: tuple[Feature, ...] = (),
    carried: int = 0,
    keep_pos: bool = False,
) -> dict[str, Any]:
    """Users lo..hi-1 (their chunks from every partition) as CSR arrays, by the local kernels: input
    order, then the stable time sort; with a session ``gap``, the session numbers and lengths (users
    are whole, so per part is global). ``features``: the features sent (``f0``, ... in order), each
    without values: their values sorted with the items; the ``carried`` columns sent after them
    (the users of sessions) are sorted too, as ``carried``; with ``keep_pos``, each row's input
    position too, as ``pos`` (``--vocab-from-train``'s first-seen orders)."""
    sent = len(features) + carried
    names = ("uidx", "iidx", "time", "rating", "pos") + tuple(f"f{j}" for j in range(sent))
    col = {k: np.concatenate([c[k] for c in chunks]) for k in names}
    pos = col.pop("pos")
    if len(pos) > 1 and not bool((pos[1:] > pos[:-1]).all()):  # chunks of partitions in input order already are
        back = np.argsort(pos, kind="stable")  # input order (the tie-break)
        col = {k: v[back] for k, v in col.items()}
        pos = pos[back]
    user = col.pop("uidx").astype(np.int64) - lo
    order = time_order(user, col["time"])
    offsets = csr_offsets(np.bincount(user, minlength=hi - lo))
    del user
    timestamps = col["time"][order]
    sids = None if gap is None else session_ids(offsets, timestamps, gap)
    return {
        "lo": lo,
        "hi": hi,
        "offsets": offsets,
        "items": col["iidx"][order].astype(np.int32, copy=False),
        "timestamps": timestamps,
        "ratings": col["rating"][order].astype(np.float32, copy=False) if has_rating else None,
        "ties": tie_stats(offsets, timestamps),
        "session_ids": sids,
        "session_lengths": None if sids is None else session_lengths(offsets, sids),
        "features": tuple(dataclasses.replace(f, values=col[f"f{j}"][order]).widened() for j, f in enumerate(features)),
        "carried": tuple(col[f"f{j}"][order] for j in range(len(features), sent)),
        "pos": pos[order] if keep_pos else None,
    }


def part_stats(part: dict[str, Any]) -> dict[str, Any]:
    """What meta.json needs of a part (its ties, session lengths, the rows per index of each
    categorical feature), without its arrays."""
    counts = {f.name: np.bincount(f.values, minlength=len(f.vocab) + 1) for f in part.get("features", ()) if f.vocab is not None}
    return {"ties": part["ties"], "session_lengths": part["session_lengths"], "feature_counts": counts}


