"""Token lists on a Dask cluster (``--feature COL:tokens:SEP``): each row travels as one int32, the
index of its distinct value (0: missing), and the value's tokens are gathered on the output part's
worker from a table the client fits once (the distinct values are few; the rows are many).

- :func:`value_tokens`: the distinct values split into tokens by the local kernel
  (:func:`~seqprep.kernels.features.split_tokens`), the token vocabulary fitted from the kept rows
  per value (counts weighted by the rows, ``first-seen`` by the first kept row holding the token,
  then its place in that row's list: the order the local fit reads the token stream in);
- :func:`gather_lists`: per row its value's token list, the CSR kernel the local encoder runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...kernels.features import split_tokens
from ...model import Feature

__all__ = ["ValueTokens", "counted_tokens", "empty_per_value", "gather_lists", "joined", "list_tokens", "value_tokens"]

_NO_POS = np.iinfo(np.int64).max


def gather_lists(rows: np.ndarray, value_offsets: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row ``r`` the list ``tokens[value_offsets[rows[r]]:value_offsets[rows[r] + 1]]``, as
    (offsets, the lists' tokens concatenated).

    >>> offsets, flat = gather_lists(np.array([2, 0, 1, 2]), np.array([0, 0, 2, 3]), np.array([5, 6, 7]))
    >>> offsets.tolist(), flat.tolist()
    ([0, 1, 1, 3, 4], [7, 5, 6, 7])
    """
    rows = np.asarray(rows, dtype=np.int64)
    value_offsets = np.asarray(value_offsets, dtype=np.int64)
    lengths = np.diff(value_offsets)[rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    pos = np.repeat(value_offsets[rows] - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
    return offsets, np.asarray(tokens)[pos]


def joined(parts: Sequence[Feature]) -> Feature:
    """One feature of consecutive parts (user order) as one: values concatenated, a token
    feature's list offsets joined (each part's from 0)."""
    values = np.concatenate([f.values for f in parts])
    if parts[0].offsets is None:
        return dataclasses.replace(parts[0], values=values)
    ends = np.cumsum([0] + [int(f.offsets[-1]) for f in parts[:-1]])  # type: ignore[index]
    offsets = np.concatenate([[0]] + [f.offsets[1:] + end for f, end in zip(parts, ends)])  # type: ignore[index]
    return dataclasses.replace(parts[0], values=values, offsets=offsets.astype(np.int64))


def empty_per_value(values: pa.Array, sep: str) -> np.ndarray:
    """Empty tokens (``a||b``, a trailing SEP, an empty field) in each value, as the local step counts them."""
    parts = pc.split_pattern(pc.fill_null(values.cast(pa.string()), ""), pattern=sep)
    lengths = pc.list_value_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    empty = pc.equal(flat, "").to_numpy(zero_copy_only=False)
    row = np.repeat(np.arange(len(values)), lengths)
    return np.bincount(row[empty], minlength=len(values)).astype(np.int64)


@dataclass(frozen=True)
class ValueTokens:
    """The distinct values' token lists: value ``v``'s token codes are
    ``codes[offsets[v]:offsets[v + 1]]`` into ``tokens``; per token its kept occurrences and, for
    ``first-seen``, its rank in the kept rows' token stream."""

    offsets: np.ndarray
    codes: np.ndarray
    tokens: pa.Array
    counts: np.ndarray
    first: np.ndarray


def value_tokens(values: pa.Array, sep: str, kept: np.ndarray, kpos: np.ndarray) -> ValueTokens:
    """The distinct ``values`` split at ``sep`` (trimmed; empty tokens left out), with ``kept[v]``
    kept rows of value ``v`` whose first is at input position ``kpos[v]``.

    >>> vt = value_tokens(pa.array(["b|a", "a", "c|b"]), "|", np.array([1, 2, 1]), np.array([5, 1, 0]))
    >>> vt.tokens.to_pylist(), vt.counts.tolist(), vt.first.tolist()
    (['b', 'a', 'c'], [2, 3, 1], [1, 2, 0])
    """
    offsets, flat, _ = split_tokens(values.cast(pa.string()), sep)
    enc = pc.dictionary_encode(flat)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return counted_tokens(offsets, codes, enc.dictionary, kept, kpos)


def list_tokens(
    offsets: np.ndarray, codes: np.ndarray, elements: pa.Array, kept: np.ndarray, kpos: np.ndarray
) -> tuple[ValueTokens, np.ndarray]:
    """:func:`value_tokens` of distinct lists (list ``v``: element codes ``codes[offsets[v]:offsets[v + 1]]``
    into ``elements``, -1 a missing element, left out as the local step leaves it out), and the
    missing elements of each list (the local step's empty tokens).

    >>> vt, empty = list_tokens(np.array([0, 2, 4]), np.array([1, -1, 0, 1]), pa.array(["a", "b"]), np.array([1, 1]), np.array([3, 0]))
    >>> vt.offsets.tolist(), vt.codes.tolist(), vt.counts.tolist(), vt.first.tolist(), empty.tolist()
    ([0, 1, 3], [1, 0, 1], [1, 2], [0, 1], [1, 0])
    """
    offsets, codes = np.asarray(offsets, dtype=np.int64), np.asarray(codes, dtype=np.int32)
    keep = codes >= 0
    kept_before = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    empty = np.diff(offsets) - np.diff(kept_before[offsets])
    return counted_tokens(kept_before[offsets], codes[keep], elements, kept, kpos), empty.astype(np.int64)


def counted_tokens(
    offsets: np.ndarray, codes: np.ndarray, tokens: pa.Array, kept: np.ndarray, kpos: np.ndarray
) -> ValueTokens:
    """:class:`ValueTokens` of values already split (value ``v``: token codes
    ``codes[offsets[v]:offsets[v + 1]]`` into ``tokens``) with ``kept[v]`` rows of value ``v``, the
    first at input position ``kpos[v]`` (a value no row holds adds nothing, whatever its codes)."""
    vid = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    slot = np.arange(len(codes), dtype=np.int64) - offsets[vid]
    weight = np.asarray(kept, dtype=np.int64)[vid]
    counts = np.zeros(len(tokens), dtype=np.int64)
    np.add.at(counts, codes, weight)
    present = np.flatnonzero(weight > 0)
    order = present[np.lexsort((slot[present], np.asarray(kpos, dtype=np.int64)[vid[present]]))]
    first = np.full(len(tokens), _NO_POS, dtype=np.int64)
    np.minimum.at(first, codes[order], np.arange(len(order), dtype=np.int64))
    return ValueTokens(offsets, codes, tokens, counts, first)
