"""The attribute files of an output folder (``--item-table`` / ``--user-table``):

- ``item_features.parquet`` (``-f parquet``): ``item_idx`` int32 0..num_embeddings-1 (row 0 the
  padding row), one column per attribute: int32 (cat: 1..K, 0 = padding and missing), float
  (num: float32, NaN = missing, 0.0 in the padding row) or list<int32> (tokens, empty = missing);
  ``user_features.parquet``: the same with ``user_idx`` 0..U-1 and no padding row;
- ``item_features.npz`` / ``user_features.npz`` (``-f npz``): ``<name>`` [rows] per cat/num
  attribute; for tokens ``<name>`` (the token indices, int32) and ``<name>_offsets`` int64 [rows + 1];
- ``features/<name>.parquet``: each cat/tokens attribute's vocabulary (as for ``--feature``);
- with ``--export recbole``: ``<OUT name>.item`` / ``.user``, RecBole atomic files with the original
  ids and values (:func:`write_recbole_attributes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import ATTRIBUTE_ROLES
from ..errors import OutputError
from ..kernels.text import join_lists, lines_bytes, number_text
from ..model import BuildResult, Feature
from .files import feature_vocabulary_table, list_array, write_npz, write_parquet

__all__ = ["attribute_arrays", "attribute_table", "recbole_filename", "write_attribute_files", "write_recbole_attributes"]

#: The RecBole type of each kind, in the header of a .item / .user file.
RECBOLE_TYPE = {"cat": "token", "num": "float", "tokens": "token_seq"}


def attribute_table(role: str, features: list[Feature]) -> pa.Table:
    """``<role>_features.parquet``: ``<role>_idx`` and one column per attribute, a row per index."""
    rows = features[0].rows
    cols: dict[str, pa.Array] = {f"{role}_idx": pa.array(np.arange(rows, dtype=np.int32))}
    for f in features:
        if f.offsets is None:
            cols[f.name] = pa.array(f.values, pa.float32() if f.kind == "num" else pa.int32())
        else:
            cols[f.name] = list_array(f.offsets, f.values.astype(np.int32, copy=False))
    return pa.table(cols)


def attribute_arrays(features: list[Feature]) -> dict[str, np.ndarray]:
    """``<role>_features.npz``: ``<name>`` per attribute (tokens: their indices and ``<name>_offsets``)."""
    arrays: dict[str, np.ndarray] = {}
    for f in features:
        arrays[f.name] = f.values.astype(np.float32 if f.kind == "num" else np.int32, copy=False)
        if f.offsets is not None:
            arrays[f"{f.name}_offsets"] = f.offsets.astype(np.int64, copy=False)
    return arrays


def write_attribute_files(result: BuildResult, folder: Path) -> None:
    """Every attribute file of ``result`` into ``folder`` (nothing without attribute tables)."""
    formats = result.config.formats
    for role in ATTRIBUTE_ROLES:
        features = [f for f in result.attributes if f.source == role]
        if not features:
            continue
        if "parquet" in formats:
            write_parquet(attribute_table(role, features), folder / f"{role}_features.parquet")
        if "npz" in formats:
            write_npz(folder / f"{role}_features.npz", attribute_arrays(features))
        with_vocab = [f for f in features if f.vocab is not None]
        if with_vocab:
            (folder / "features").mkdir(exist_ok=True)
        for f in with_vocab:
            assert f.vocab is not None
            write_parquet(feature_vocabulary_table(f.vocab), folder / "features" / f"{f.name}.parquet")


def recbole_filename(role: str, output: str) -> str:
    """The RecBole atomic file of an attribute table inside OUT: ``<OUT name>.item`` / ``.user``."""
    return f"{Path(output).name}.{role}"


def write_recbole_attributes(result: BuildResult, folder: Path) -> list[str]:
    """``--export recbole``: ``<OUT name>.item`` / ``.user`` beside the ``.inter`` file; returns the names."""
    names = []
    for role in ATTRIBUTE_ROLES:
        features = [f for f in result.attributes if f.source == role]
        if features:
            name = recbole_filename(role, result.config.output)
            with open(folder / name, "wb") as fh:
                _recbole_table(result, role, features, fh)
            names.append(name)
    return names


def _recbole_table(result: BuildResult, role: str, features: list[Feature], fh: BinaryIO) -> None:
    """One line per kept item (user) with a value for some attribute: its original id, then each
    attribute's original value (a token; a number; tokens joined by spaces, a space inside a token
    written as ``_``, since RecBole splits a token_seq at spaces); an empty field where missing."""
    vocab = result.items if role == "item" else result.users
    first = 1 if role == "item" else 0  # item rows start with the padding row
    n = len(vocab)
    header = [f"{role}_id:token"] + [f"{f.name}:{RECBOLE_TYPE[f.kind]}" for f in features]
    fh.write(("\t".join(header) + "\n").encode("utf-8"))
    fields: list[pa.Array] = [_clean(pc.cast(vocab.ids, pa.string()), f"{role} id", "token")]
    has_value = np.zeros(n, dtype=bool)
    for f in features:
        text, present = _values_text(f, first, n)
        fields.append(text)
        has_value |= present
    parts: list[pa.Array | str] = []
    for k, text in enumerate(fields):
        parts += [text, "\t" if k < len(fields) - 1 else "\n"]
    lines = pc.binary_join_element_wise(*parts, "")
    fh.write(lines_bytes(lines.filter(pa.array(has_value))))


def _values_text(f: Feature, first: int, n: int) -> tuple[pa.Array, np.ndarray]:
    """The attribute's original values as text for rows ``first .. first + n - 1``, and where one is present."""
    assert f.offsets is not None or len(f.values) >= first + n
    if f.kind == "num":
        values = f.values[first : first + n]
        present = ~np.isnan(values)
        text = pc.if_else(pa.array(present), number_text(values), pa.scalar(""))
        return text, present
    assert f.vocab is not None
    # index -> original value as text; index 0 (missing) -> ""
    table = pa.concat_arrays([pa.array([""]), _clean(pc.cast(f.vocab.ids, pa.string()), f"{f.name} value", RECBOLE_TYPE[f.kind])])
    if f.offsets is None:
        idx = f.values[first : first + n].astype(np.int64)
        return table.take(pa.array(idx)), idx > 0
    offsets = f.offsets[first : first + n + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    tokens = table.take(pa.array(f.values[lo:hi].astype(np.int64)))
    return join_lists(offsets - lo, tokens, " "), np.diff(offsets) > 0


def _clean(text: pa.Array, what: str, typ: str) -> pa.Array:
    """Values that a RecBole atomic file can hold: a tab or line break is an error; a space inside a
    token_seq token becomes ``_``."""
    bad = pc.fill_null(pc.match_substring_regex(text, "[\\t\\n\\r]"), False)
    if pc.any(bad).as_py():
        example = text.filter(bad)[0].as_py()
        msg = f"--export recbole: {what} {example!r} holds a tab or line break, which a RecBole atomic file cannot hold; clean the table or drop --export recbole"
        raise OutputError(msg)
    if typ == "token_seq":
        text = pc.replace_substring_regex(text, "\\s+", "_")
    return text
