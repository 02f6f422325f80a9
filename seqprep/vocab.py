"""An immutable, fitted vocabulary: original ids <-> integer indices."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa

from .kernels.arrow import from_numpy
from .records import record

__all__ = ["Vocabulary"]


@record
class Vocabulary:
    """Index ``start + k`` stands for ``ids[k]``; ``counts[k]`` is how many kept interactions it has.

    Items start at 1 (0 is padding); users start at 0. ``oov_idx`` (``start + len``), when set, is the
    index that stands for every id outside the vocabulary (``--unknown oov``); it decodes to null.

    >>> v = Vocabulary(ids=pa.array(["b", "a"]), counts=np.array([3, 1]), start=1)
    >>> v.decode(np.array([2, 1])).to_pylist(), v.encode(["a", "zz", "b"]).tolist()
    (['a', 'b'], [2, -1, 1])
    >>> w = Vocabulary(ids=pa.array([10, 20]), counts=np.array([1, 1]), start=1, oov_idx=3)
    >>> w.encode(["20", 99]).tolist(), w.decode([1, 3]).to_pylist()
    ([2, 3], [10, None])
    """

    ids: pa.Array
    counts: np.ndarray
    start: int
    oov_idx: int | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start, self.start + len(self), dtype=np.int32)

    def decode(self, indices: Any) -> pa.Array:
        """Indices -> original ids (vectorised); ``oov_idx`` gives null. IndexError names a bad index."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1) - self.start
        oov = None if self.oov_idx is None else idx == self.oov_idx - self.start
        bad = (idx < 0) | (idx >= len(self))
        if oov is not None:
            bad &= ~oov
        if bad.any():
            hi = self.start + len(self) - 1 if self.oov_idx is None else self.oov_idx
            msg = f"index {int(idx[np.argmax(bad)]) + self.start} is outside {self.start}..{hi}; pass indices of this vocabulary"
            raise IndexError(msg)
        if oov is None or not oov.any():
            return self.ids.take(pa.array(idx))
        return self.ids.take(pa.array(np.where(oov, 0, idx), mask=oov))

    def encode(self, ids: Any, unknown: Literal["default", "missing", "oov", "error"] = "default") -> np.ndarray:
        """Original ids -> indices (int64, vectorised).

        Ids are first cast to the vocabulary's id type when that is exact (``"17"`` finds item 17 in an
        integer vocabulary, ``17`` finds ``"17"`` in a text one; ``"017"`` finds nothing). An id outside
        the vocabulary gives ``oov_idx`` (``unknown="oov"``, and the default when the vocabulary has
        one), ``-1`` (``"missing"``, the default otherwise), or a KeyError naming a few (``"error"``).
        """
        values = _as_id_type(ids, self.ids.type)
        pos = self._index.get_indexer(values)
        if unknown == "default":
            unknown = "missing" if self.oov_idx is None else "oov"
        if unknown == "error" and (pos < 0).any():
            import pandas as pd

            missing = pd.unique(np.asarray(values, dtype=object)[pos < 0])
            msg = f"{len(missing)} ids are not in the vocabulary, e.g. {', '.join(map(repr, missing[:5]))}"
            raise KeyError(msg)
        if unknown == "oov":
            if self.oov_idx is None:
                msg = "this vocabulary has no oov_idx (it was not built with --unknown oov); pass unknown='missing'"
                raise ValueError(msg)
            fill = self.oov_idx
        elif unknown in ("missing", "error"):
            fill = -1
        else:
            msg = f"unknown must be one of default, missing, oov, error, not {unknown!r}"
            raise ValueError(msg)
        return np.where(pos >= 0, pos + self.start, fill).astype(np.int64)

    @property
    def _index(self) -> Any:
        import pandas as pd  # imported lazily: encoding is the only user

        cached = self.__dict__.get("_cached_index")
        if cached is None:
            cached = pd.Index(self.ids.to_pandas())
            object.__setattr__(self, "_cached_index", cached)
        return cached

    def to_table(self, prefix: str) -> pa.Table:
        """The exported form: ``<prefix>_idx`` int32, ``<prefix>_id`` (original type), ``count`` int64."""
        return pa.table(
            {
                f"{prefix}_idx": from_numpy(self.indices, pa.int32()),
                f"{prefix}_id": self.ids,
                "count": from_numpy(self.counts, pa.int64()),
            }
        )

    @classmethod
    def from_table(cls, table: pa.Table, prefix: str) -> Vocabulary:
        idx = table[f"{prefix}_idx"].to_numpy()
        start = int(idx[0]) if len(idx) else (1 if prefix == "item" else 0)
        if len(idx) and not np.array_equal(idx, np.arange(start, start + len(idx))):
            msg = f"{prefix}_idx is not a contiguous range starting at {start}"
            raise ValueError(msg)
        ids = table[f"{prefix}_id"].combine_chunks()
        return cls(ids=ids, counts=table["count"].to_numpy(), start=start)

    @classmethod
    def from_feature_table(cls, table: pa.Table) -> Vocabulary:
        """A feature's vocabulary from ``features/<name>.parquet`` (``index`` 1..K, ``value``, ``count``)."""
        idx = table["index"].to_numpy()
        if not np.array_equal(idx, np.arange(1, 1 + len(idx))):
            msg = "index is not a contiguous range starting at 1"
            raise ValueError(msg)
        return cls(ids=table["value"].combine_chunks(), counts=table["count"].to_numpy(), start=1)

    def id_type(self) -> str:
        return "int64" if pa.types.is_integer(self.ids.type) else "string"

    def with_oov(self, oov_idx: int | None) -> Vocabulary:
        return Vocabulary(ids=self.ids, counts=self.counts, start=self.start, oov_idx=oov_idx)

    def equals(self, other: Vocabulary) -> bool:
        return (
            self.start == other.start
            and self.ids.equals(other.ids)
            and np.array_equal(self.counts, other.counts)
            and self.oov_idx == other.oov_idx
        )


def _as_id_type(ids: Any, typ: pa.DataType) -> Any:
    """``ids`` as a pandas-friendly array of the vocabulary's id type; values that do not cast exactly
    (``"017"`` or ``"x"`` into integers) become values that match nothing."""
    arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(ids).reshape(-1).tolist())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type == typ or (pa.types.is_integer(arr.type) and pa.types.is_integer(typ)):
        return arr.to_pandas()
    from .kernels.vocab import cast_ids_exact

    cast, exact = cast_ids_exact(arr, typ)
    out = cast.to_pandas().astype(object)
    out[~exact] = None
    return out


