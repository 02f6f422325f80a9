"""Text kernels: numbers, ragged lists and JSON strings as pyarrow string arrays, built column-wise.

They serve the line-oriented outputs (JSON Lines stream, SASRec / seqlines / RecBole exports) without
a Python loop over users or rows: every function is a handful of pyarrow compute calls.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["join_lists", "json_string", "lines_bytes", "number_text"]

_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_CONTROL = "[\\x00-\\x1f]"


def number_text(values: np.ndarray | pa.Array, *, json: bool = False) -> pa.Array:
    """Numbers as their shortest exact text (``4.0`` -> ``"4"``, float32 ``0.1`` -> ``"0.1"``).

    With ``json=True`` a NaN becomes ``null`` and an infinity raises ValueError (JSON has neither).

    >>> number_text(np.array([3, -1])).to_pylist()
    ['3', '-1']
    >>> number_text(np.array([0.5, np.nan], dtype=np.float32), json=True).to_pylist()
    ['0.5', 'null']
    """
    arr = values if isinstance(values, pa.Array) else pa.array(values)
    text = pc.cast(arr, pa.string())
    if json and pa.types.is_floating(arr.type):
        if pc.any(pc.is_inf(arr)).as_py():
            msg = "an infinite value cannot be written as JSON"
            raise ValueError(msg)
        text = pc.if_else(pc.is_nan(arr), pa.scalar("null"), text)
    return text


def join_lists(offsets: np.ndarray, text: pa.Array, sep: str) -> pa.Array:
    """One string per CSR row: the row's ``text`` values joined by ``sep`` (``""`` for an empty row).

    >>> join_lists(np.array([0, 2, 2, 3]), pa.array(["1", "2", "3"]), " ").to_pylist()
    ['1 2', '', '3']
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    if len(text) < 2**31:
        lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), text)
    else:
        lists = pa.LargeListArray.from_arrays(pa.array(offsets), text)
    return pc.binary_join(lists, sep)


def json_string(values: pa.Array) -> pa.Array:
    """Each value as a JSON string literal (quoted, with ``\\``, ``"`` and control characters escaped).

    >>> json_string(pa.array(['a"b', "c\\\\d", "e\\nf"])).to_pylist()
    ['"a\\\\"b"', '"c\\\\\\\\d"', '"e\\\\nf"']
    """
    text = pc.cast(values, pa.string())
    for raw, esc in _JSON_ESCAPES:
        text = pc.replace_substring(text, raw, esc)
    if pc.any(pc.match_substring_regex(text, _CONTROL)).as_py():
        for code in range(0x20):  # a loop over 32 characters, each pass vectorised
            text = pc.replace_substring(text, chr(code), f"\\u{code:04x}")
    return pc.binary_join_element_wise('"', text, '"', "")


def lines_bytes(lines: pa.Array) -> memoryview:
    """The bytes of a string array whose values are concatenated as-is (each should end in a newline).

    >>> bytes(lines_bytes(pa.array(["a\\n", "bc\\n"]).slice(1)))
    b'bc\\n'
    """
    lines = lines.cast(pa.large_string()) if not pa.types.is_large_string(lines.type) else lines
    if lines.null_count:
        msg = "lines must not be null"
        raise ValueError(msg)
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    if data_buf is None or len(lines) == 0:
        return memoryview(b"")
    return memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])]
