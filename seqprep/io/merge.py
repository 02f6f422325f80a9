"""How the columns of several parts of a log (its inputs, or the pieces of them the Dask engine's
workers read) become one log's columns: the one rule for every reader.

Each part is read on its own (:func:`~seqprep.io.stream.read_source`): ids as codes into the part's
own first-seen dictionary, timestamps typed with their unit, requested columns with their kind. Here:

- **dictionaries** unify in part order, so a global id's code is its first appearance in the input
  order, then are trimmed and typed on the distinct values only (:func:`~seqprep.io.columns.merge_ids`);
  :func:`merge_dictionaries` gives each part's code table;
- **timestamps** (:func:`plan_times`): the pieces of one input merge as that input's whole column
  would type (the finest date unit wins, any fraction makes all float64, a piece without any
  timestamp has no say); the inputs then merge as files do (epoch numbers and dates never mix);
- **requested columns** (:func:`merged_kind`): numbers stay numbers only when every input has
  numbers; otherwise every input's values become text (:func:`numbers_as_text`) in one dictionary.

Only small things are looked at: dictionaries, units, kinds. The rows are then rewritten part by part
(the local reader: one part per input, into one column; the Dask engine: on each worker).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import mixed_time_kinds
from ..kernels.arrow import from_numpy
from ..records import record
from ..timeunits import UNIT_SCALE
from .columns import merge_ids

__all__ = ["TimePlan", "merge_dictionaries", "merged_kind", "numbers_as_text", "plan_times", "remap_codes"]

_CHUNK_ROWS = 1 << 22


def merge_dictionaries(
    dicts: Sequence[pa.Array], id_type: str, role: str, typed_text: bool
) -> tuple[list[np.ndarray], pa.Array]:
    """Per-part first-seen dictionaries (parts in input order) -> (one code table per part, the global
    dictionary). Table ``k`` maps part ``k``'s codes to global codes and has one more entry, -1, at
    its end, so a missing value (code -1) stays missing: ``table[codes]``.

    >>> tables, ids = merge_dictionaries([pa.array(["b", "a"]), pa.array(["a", "c"])], "auto", "user", False)
    >>> [t.tolist() for t in tables], ids.to_pylist()
    ([[0, 1, -1], [1, 2, -1]], ['b', 'a', 'c'])
    """
    parts = [pa.DictionaryArray.from_arrays(from_numpy(np.arange(len(d), dtype=np.int32)), d) for d in dicts]
    mapping, dictionary = merge_ids(parts, id_type, role, typed_text)
    tables, at = [], 0
    for d in dicts:
        tables.append(np.append(mapping[at : at + len(d)], np.int32(-1)).astype(np.int32))
        at += len(d)
    return tables, dictionary


def remap_codes(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[codes]`` (a :func:`merge_dictionaries` table; -1 stays -1), a chunk of rows at a time.

    >>> remap_codes(np.array([1, -1, 0], dtype=np.int32), np.array([5, 3, -1], dtype=np.int32)).tolist()
    [3, -1, 5]
    """
    out = np.empty(len(codes), dtype=np.int32)
    for lo in range(0, len(codes), _CHUNK_ROWS):
        out[lo : lo + _CHUNK_ROWS] = table[codes[lo : lo + _CHUNK_ROWS]]
    return out


@record
class TimePlan:
    """The log's time unit and type, and what each part's values are multiplied by first."""

    unit: str
    as_float: bool
    scales: tuple[int, ...]

    def apply(self, k: int, values: np.ndarray) -> np.ndarray:
        """Part ``k``'s values (0 where missing) in the log's unit and type.

        >>> TimePlan("ms", False, (1000, 1)).apply(0, np.array([2, 0])).tolist()
        [2000, 0]
        """
        if self.scales[k] != 1:
            values = values * np.int64(self.scales[k])
        if self.as_float and values.dtype != np.float64:
            values = values.astype(np.float64)
        return values


def _finest(units: set[str]) -> str:
    """One unit for parts of these units: the finest date unit; epoch numbers never mix with dates."""
    if len(units) > 1 and "epoch" in units:
        raise mixed_time_kinds()
    return max(units, key=UNIT_SCALE.__getitem__) if len(units) > 1 else next(iter(units))


def plan_times(units: Sequence[str], floats: Sequence[bool], valid: Sequence[bool], inputs: Sequence[int]) -> TimePlan:
    """The :class:`TimePlan` of parts with these ``units`` (as ``normalize_time`` typed each part),
    float64 or not, holding any timestamp or not, and the input each belongs to (non-decreasing).

    Pieces of one input merge as the input's whole column types: the finest date unit, float64 if
    any piece is, pieces without a timestamp left out. Inputs then merge as files do: one unit and
    type kept as they are, else the finest date unit (epoch numbers and dates never mix) and float64
    if any input is float64.

    >>> p = plan_times(["s", "ms", "epoch"], [False, False, False], [True, True, False], [0, 0, 0])
    >>> p.unit, p.scales
    ('ms', (1000, 1, 1))
    """
    groups: dict[int, list[int]] = {}
    for k, g in enumerate(inputs):
        groups.setdefault(g, []).append(k)
    in_units, in_floats, inner = [], [], [1] * len(units)
    for parts in groups.values():
        present = {units[k] for k in parts if valid[k]}
        unit = units[parts[0]] if len(parts) == 1 or not present else _finest(present)
        for k in parts:
            if valid[k] and unit != "epoch" and units[k] != unit:
                inner[k] = UNIT_SCALE[unit] // UNIT_SCALE[units[k]]
        in_units.append(unit)
        in_floats.append(any(floats[k] for k in parts))
    if len(set(in_units)) <= 1 and len(set(in_floats)) <= 1:
        unit = in_units[0] if in_units else "epoch"
        outer = [1] * len(in_units)
    else:
        unit = _finest(set(in_units))
        outer = [UNIT_SCALE[unit] // UNIT_SCALE[u] if u != unit else 1 for u in in_units]
    scales = [inner[k] * outer[j] for j, parts in enumerate(groups.values()) for k in parts]
    return TimePlan(unit, any(in_floats), tuple(scales))


def merged_kind(kinds: Sequence[str]) -> tuple[str, bool]:
    """(the kind of a requested column over inputs of these kinds, whether numbers become text):
    numbers stay numbers only when every input has numbers; a list anywhere makes lists.

    >>> merged_kind(["number", "number"]), merged_kind(["number", "text"]), merged_kind(["text", "list"])
    (('number', False), ('text', True), ('list', False))
    """
    present = set(kinds)
    if present <= {"number"}:
        return "number", False
    return ("list" if "list" in present else "text"), "number" in present


def numbers_as_text(values: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """A number column's values as (codes, first-seen dictionary of the numbers), for a log where
    another input holds text (the dictionaries' values then become text when they merge).

    >>> codes, d = numbers_as_text(np.array([2.5, 1.0, 2.5]))
    >>> codes.tolist(), d.to_pylist()
    ([0, 1, 0], [2.5, 1.0])
    """
    enc = pc.dictionary_encode(pa.array(values))
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int32), enc.dictionary
