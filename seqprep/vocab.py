"""An immutable, fitted vocabulary: original ids <-> integer indices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["Vocabulary"]


@dataclass(frozen=True)
class Vocabulary:
    """Index ``start + k`` stands for ``ids[k]``; ``counts[k]`` is how many kept interactions it has.

    Items start at 1 (0 is padding); users start at 0.

    >>> v = Vocabulary(ids=pa.array(["b", "a"]), counts=np.array([3, 1]), start=1)
    >>> v.decode(np.array([2, 1])).to_pylist(), v.encode(["a", "zz", "b"]).tolist()
    (['a', 'b'], [2, -1, 1])
    """

    ids: pa.Array
    counts: np.ndarray
    start: int

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start, self.start + len(self), dtype=np.int32)

    def decode(self, indices: Any) -> pa.Array:
        """Indices -> original ids (vectorised). Raises IndexError for an index outside the vocabulary."""
        idx = np.asarray(indices, dtype=np.int64) - self.start
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            msg = f"index outside {self.start}..{self.start + len(self) - 1}"
            raise IndexError(msg)
        return self.ids.take(pa.array(idx))

    def encode(self, ids: Any) -> np.ndarray:
        """Original ids -> indices (int64); ids not in the vocabulary give -1."""
        values = ids.to_pandas() if isinstance(ids, (pa.Array, pa.ChunkedArray)) else ids
        pos = self._index.get_indexer(values)
        return np.where(pos >= 0, pos + self.start, -1)

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
                f"{prefix}_idx": pa.array(self.indices, pa.int32()),
                f"{prefix}_id": self.ids,
                "count": pa.array(self.counts, pa.int64()),
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

    def id_type(self) -> str:
        return "int64" if pa.types.is_integer(self.ids.type) else "string"

    def equals(self, other: Vocabulary) -> bool:
        return (
            self.start == other.start
            and self.ids.equals(other.ids)
            and np.array_equal(self.counts, other.counts)
        )


