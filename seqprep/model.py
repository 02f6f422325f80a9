"""The data every layer passes on (ground floor): a read log, the rows that survive cleaning, the
sequences, the split's extra outputs and a build's result.

All are frozen dataclasses of numpy / pyarrow arrays. Steps never change them in place: a step takes
one and returns a new one (only a fitted :class:`~seqprep.vocab.Vocabulary` carries state forward,
and it is immutable too).
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from .config import BuildConfig
from .kernels import padded as padded_matrix
from .records import record
from .vocab import Vocabulary

__all__ = [
    "BuildResult",
    "EvalRows",
    "Extras",
    "Feature",
    "InputInfo",
    "Interactions",
    "KeyedTable",
    "LargeLists",
    "Log",
    "Sequences",
    "locate",
]


@record
class InputInfo:
    """One input as it was read: recorded in meta.json."""

    path: str
    bytes: int
    sha256: str | None  # None when the reader was asked not to hash (``seqprep stats``)
    rows: int
    format: str
    compression: str | None
    columns: dict[str, str]


ColumnKind = Literal["text", "number", "list"]


@record
class Column:
    """A column of the log beside user, item, time and rating (a feature's source, a ``--where``
    operand), one value per row in the log's row order.

    - ``text``: ``codes`` (int32, -1 = missing) into ``values``, the distinct values in first-seen
      order (a pyarrow array of strings, or of int64/float64/bool for a typed source);
    - ``number``: ``values`` is a float64 numpy array, NaN where missing (``codes`` is None);
    - ``list``: several values per row (a JSON or Parquet list, or text split into tokens):
      row ``k`` holds ``codes[offsets[k]:offsets[k+1]]``, codes into ``values`` as for text.

    >>> c = Column("genre", "text", pa.array(["a", "b"]), codes=np.array([1, -1, 0], dtype=np.int32))
    >>> c.take(np.array([True, False, True])).codes.tolist(), c.rows
    ([1, 0], 3)
    """

    name: str
    kind: ColumnKind
    values: Any
    codes: np.ndarray | None = None
    offsets: np.ndarray | None = None

    @property
    def rows(self) -> int:
        if self.kind == "number":
            return len(self.values)
        if self.kind == "list":
            assert self.offsets is not None
            return len(self.offsets) - 1
        assert self.codes is not None
        return len(self.codes)

    def take(self, keep: np.ndarray) -> Column:
        """The rows where the mask ``keep`` is True, or at the positions ``keep`` (integers), in order."""
        if self.kind == "number":
            return Column(self.name, self.kind, self.values[keep])
        if self.kind == "text":
            assert self.codes is not None
            return Column(self.name, self.kind, self.values, codes=self.codes[keep])
        assert self.offsets is not None and self.codes is not None
        rows = np.flatnonzero(keep) if keep.dtype == bool else keep
        starts, lengths = self.offsets[:-1][rows], np.diff(self.offsets)[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        pos = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
        return Column(self.name, self.kind, self.values, codes=self.codes[pos], offsets=offsets)


@record
class Log:
    """A whole interaction log in canonical, columnar form (row order = input order).

    ``user_codes`` / ``item_codes`` are int32 indices into ``user_ids`` / ``item_ids`` (the distinct
    original ids, in first-seen order) with ``-1`` for a missing value; ``time`` is int64 or float64
    with ``time_valid`` False where it was missing.
    """

    user_codes: np.ndarray
    user_ids: pa.Array
    item_codes: np.ndarray
    item_ids: pa.Array
    time: np.ndarray
    time_valid: np.ndarray
    time_unit: str
    rating: np.ndarray | None
    inputs: tuple[InputInfo, ...]
    columns: tuple[Column, ...] = ()  # the other columns asked for (features, --where operands)

    @property
    def num_rows(self) -> int:
        return int(self.user_codes.shape[0])

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@record
class KeyedTable:
    """A table read by its key column (an ``--item-table`` / ``--user-table``), in the file's row order.

    ``key_codes``: int32 per row into ``key_ids``, -1 where the key is missing; ``key_ids``: the
    distinct keys in first-seen order, typed as a log's ids are (a CSV's canonical integers as
    int64, other text as text; a JSON/Parquet column as it is). Each key is on one row at most.
    ``columns``: the requested columns, one value per row (as :class:`Column`); ``key_column``
    and ``column_names``: the file's columns they came from (request -> column).
    """

    key_codes: np.ndarray
    key_ids: pa.Array
    key_column: str
    columns: tuple[Column, ...]
    column_names: dict[str, str]
    info: InputInfo

    @property
    def num_rows(self) -> int:
        return len(self.key_codes)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def locate(inputs: tuple[InputInfo, ...], row: int) -> str:
    """Where row ``row`` of the whole log (0-based, inputs in order) is: ``path row N`` (1-based).

    >>> info = InputInfo("a.csv", 0, None, 3, "csv", None, {})
    >>> locate((info, InputInfo("b.csv", 0, None, 5, "csv", None, {})), 4)
    'b.csv row 2'
    """
    for info in inputs:
        if row < info.rows:
            return f"{info.path} row {row + 1}"
        row -= info.rows
    return f"row {row + 1}"


@record
class Interactions:
    """Rows that survive cleaning, in input order: codes into the log's id dictionaries."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    rating: np.ndarray | None
    columns: tuple[Column, ...] = ()

    def __len__(self) -> int:
        return len(self.user)

    @classmethod
    def of(cls, log: Log) -> Interactions:
        """Every row of ``log`` (missing values included)."""
        return cls(user=log.user_codes, item=log.item_codes, time=log.time, rating=log.rating, columns=log.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def take(self, keep: np.ndarray | None) -> Interactions:
        """The rows where ``keep`` is True (``None`` keeps all, without a copy)."""
        if keep is None:
            return self
        return Interactions(
            user=self.user[keep],
            item=self.item[keep],
            time=self.time[keep],
            rating=None if self.rating is None else self.rating[keep],
            columns=tuple(c.take(keep) for c in self.columns),
        )


FeatureSource = Literal["interaction", "derived", "item", "user"]


@record
class Feature:
    """One encoded feature, aligned with what carries it (the kept rows, then the sequences' positions).

    - ``cat``: ``values`` int32 indices 1..K into ``vocab`` (0 = missing, the padding index too);
      while the rows are still in input order (before the sort), and in the sort that writes
      sequences.parquet (sorted in place when the rows are grouped by user), a narrower unsigned
      type when K allows (uint8, uint16), widened to int32 (:meth:`widened`) a row group at a time
      as it is written, and for the rest of the build once the log and the sort's arrays are gone;
    - ``num``: ``values`` float32, NaN = missing (``vocab`` None);
    - ``tokens``: row ``k`` holds the int32 indices ``values[offsets[k]:offsets[k+1]]`` (an empty
      list when missing).

    ``column``: the log's column (or the rule, for a derived feature); ``missing``: rows without a
    value; ``empty_tokens``: empty tokens skipped (``a||b``); ``unseen``: values the vocabulary does
    not know (a reused one, or one fitted on the training rows): rows for ``cat``, tokens for
    ``tokens``; ``fit``: where the vocabulary comes from (``kept``: the kept rows, ``train``: the
    training rows, ``reused`` / ``extended``: an earlier build's).

    >>> f = Feature("g", "interaction", "cat", np.array([2, 1, 0], dtype=np.int32))
    >>> f.take_padded(np.array([1, -1, 0])).values.tolist()
    [1, 0, 2]
    >>> t = Feature("t", "interaction", "tokens", np.array([5, 6, 7], dtype=np.int32), offsets=np.array([0, 2, 2, 3]))
    >>> p = t.padded(np.array([0, 3]), 2, "left")
    >>> p.offsets.tolist(), p.values.tolist()
    ([0, 0, 1], [7])
    """

    name: str
    source: FeatureSource
    kind: Literal["cat", "num", "tokens"]
    values: np.ndarray
    vocab: Vocabulary | None = None
    offsets: np.ndarray | None = None
    column: str = ""
    missing: int = 0
    empty_tokens: int = 0
    unseen: int = 0
    fit: Literal["kept", "train", "reused", "extended"] = "kept"

    @property
    def rows(self) -> int:
        return len(self.values) if self.offsets is None else len(self.offsets) - 1

    def slice(self, lo: int, hi: int) -> Feature:
        """Rows ``lo..hi-1`` (token offsets from 0 again)."""
        if self.offsets is None:
            return dataclasses.replace(self, values=self.values[lo:hi])
        offsets = self.offsets[lo : hi + 1]
        values = self.values[int(offsets[0]) : int(offsets[-1])]
        return dataclasses.replace(self, values=values, offsets=offsets - offsets[0])

    def take(self, keep: np.ndarray) -> Feature:
        """The rows where the mask ``keep`` is True, or at the positions ``keep``, in that order."""
        if self.offsets is None:
            return dataclasses.replace(self, values=self.values[keep])
        rows = np.flatnonzero(keep) if keep.dtype == bool else keep
        starts, lengths = self.offsets[:-1][rows], np.diff(self.offsets)[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        pos = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
        return dataclasses.replace(self, values=self.values[pos], offsets=offsets)

    def widened(self) -> Feature:
        """``cat`` / ``tokens`` indices as int32 (the type of every output), whatever they were held as."""
        if self.kind == "num" or self.values.dtype == np.int32:
            return self
        return dataclasses.replace(self, values=self.values.astype(np.int32))

    def take_padded(self, pos: np.ndarray) -> Feature:
        """The rows at the positions ``pos`` (int), where ``-1`` is a padding cell: 0 (``cat``), 0.0
        (``num``) or an empty list (``tokens``)."""
        pos = np.asarray(pos, dtype=np.int64)
        pad = pos < 0
        if self.offsets is None:
            if len(self.values) == 0:
                return dataclasses.replace(self, values=np.zeros(len(pos), dtype=self.values.dtype))
            values = self.values[np.where(pad, 0, pos)]
            values[pad] = 0
            return dataclasses.replace(self, values=values)
        safe = np.where(pad, 0, pos)
        lengths = np.where(pad, 0, np.diff(self.offsets)[safe] if len(self.offsets) > 1 else 0)
        starts = self.offsets[:-1][safe] if len(self.offsets) > 1 else np.zeros(len(pos), dtype=np.int64)
        offsets = np.zeros(len(pos) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        src = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
        return dataclasses.replace(self, values=self.values[src], offsets=offsets)

    def padded(self, offsets: np.ndarray, max_len: int, side: Literal["left", "right"]) -> Feature:
        """Each row's ``max_len`` most recent values in cells ``[rows * max_len]`` (row-major), laid
        out as :func:`~seqprep.kernels.padded` lays out the items: padding 0 (``cat``), 0.0 (``num``),
        an empty list (``tokens``)."""
        if self.offsets is None:
            return dataclasses.replace(self, values=padded_matrix(self.values, offsets, max_len, side=side).reshape(-1))
        pos = padded_matrix(np.arange(self.rows, dtype=np.int64), offsets, max_len, side=side, pad=-1)
        return self.take_padded(pos.reshape(-1))


@record
class Sequences:
    """Per-user item sequences in CSR form: row ``u`` is ``items[offsets[u]:offsets[u+1]]``."""

    offsets: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None
    session_ids: np.ndarray | None = None  # --session-gap: int32 session number within each user, from 0
    features: tuple[Feature, ...] = ()  # aligned with ``items``

    @property
    def num_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, pos: np.ndarray, offsets: np.ndarray) -> Sequences:
        """The interactions at positions ``pos`` (per user, in order) as sequences with ``offsets``."""
        return Sequences(
            offsets=offsets,
            items=self.items[pos],
            timestamps=self.timestamps[pos],
            ratings=None if self.ratings is None else self.ratings[pos],
            session_ids=None if self.session_ids is None else self.session_ids[pos],
            features=tuple(f.take(pos) for f in self.features),
        )


@record
class EvalRows:
    """valid or test: one row per target, with its history (CSR) and optional negatives."""

    user_idx: np.ndarray
    target: np.ndarray
    target_ts: np.ndarray
    history_offsets: np.ndarray
    history: np.ndarray
    negatives: np.ndarray | None = None
    history_features: tuple[Feature, ...] = ()  # aligned with ``history``
    target_features: tuple[Feature, ...] = ()  # one row per target

    def __len__(self) -> int:
        return len(self.target)


@record
class LargeLists:
    """Which list columns of the split files are ``large_list``: those of a file that holds 2**31
    values or more (train items; each part's histories and negatives)."""

    train: bool = False
    history: tuple[bool, bool] = (False, False)  # valid, test
    negatives: tuple[bool, bool] = (False, False)

    @classmethod
    def of(cls, train_items: int, history_items: tuple[int, int], negatives: tuple[int, int]) -> LargeLists:
        big = 2**31
        return cls(train_items >= big, (history_items[0] >= big, history_items[1] >= big), (negatives[0] >= big, negatives[1] >= big))

    @classmethod
    def of_extras(cls, ex: Extras) -> LargeLists:
        """The flags of the extras of every user."""
        evs = [ex.valid, ex.test]
        return cls.of(
            0 if ex.train_items is None else len(ex.train_items),
            tuple(0 if ev is None else len(ev.history) for ev in evs),  # type: ignore[arg-type]
            tuple(0 if ev is None or ev.negatives is None else ev.negatives.size for ev in evs),  # type: ignore[arg-type]
        )


@record
class Extras:
    """Everything beyond sequences.* that a build writes: split files, windows, padded matrices, the
    sessions' users."""

    train_user_idx: np.ndarray | None = None
    train_offsets: np.ndarray | None = None
    train_items: np.ndarray | None = None
    train_timestamps: np.ndarray | None = None
    valid: EvalRows | None = None
    test: EvalRows | None = None
    windows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    padded: np.ndarray | None = None
    max_len: int | None = None
    pad: Literal["left", "right"] = "left"
    train_features: tuple[Feature, ...] = ()  # aligned with ``train_items``
    padded_features: tuple[Feature, ...] = ()  # [U * max_len] cells, as ``padded``
    window_features: tuple[tuple[Feature, Feature], ...] = ()  # (inputs [w * L], targets [w * T]) cells
    groups: np.ndarray | None = None  # user bounds of the split files' row groups (those of sequences.parquet)
    large: LargeLists | None = None  # which list columns are large_list (None: from these extras alone)
    sessions: pa.Table | None = None  # --session-col: sessions.parquet (each session's user)
    # --export srgnn when the split files were written range by range (--memory-limit): (train
    # offsets, train items, test rows) of every user, gathered for the export only
    srgnn: tuple[np.ndarray, np.ndarray, EvalRows] | None = None


@record
class BuildResult:
    """What a build produced: vocabularies, sequences, meta.json's content and where it went."""

    config: BuildConfig
    users: Vocabulary
    items: Vocabulary
    sequences: Sequences | None  # None only for a Dask build written to Parquet parts (load(out) reads them)
    meta: dict[str, Any]
    output: Path | None = None
    seconds: float = field(default=0.0, compare=False)
    extras: Extras | None = field(default=None, compare=False)
    attributes: tuple[Feature, ...] = field(default=(), compare=False)  # --item-table/--user-table: per item/user index
