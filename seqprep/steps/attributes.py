"""Item and user attributes (``--item-table FILE --item-key COL --item-attr COL[:KIND]``, the same for
users): a table joined on the original ids, each attribute encoded for an embedding table.

- The table is read with the log's readers (:func:`seqprep.io.read_table`), before the log, so a
  wrong file or column fails at once. Its key is matched to the ids as vocabulary reuse matches them:
  the keys are cast to the log's id type when that is exact (``"17"`` is item 17; ``007`` is no
  integer id, so it matches nothing and is counted in ``keys_not_exact``).
- The join runs once the vocabularies are fitted: one value per item index, **row 0 the padding row**
  (``item_features[items]`` needs no offset), and with ``--unknown oov`` a last row for ``oov_idx``
  that holds no value; one value per user index 0..U-1 (users are rows, not padded lookups: no
  padding row). A kept item the table lacks gets no value (counted: ``items_without_row``); a table
  row for an item the build does not keep is ignored (counted: ``rows_ignored``).
- Each attribute is encoded as ``--feature`` encodes a column (:func:`seqprep.steps.features.encode_column`):
  ``cat`` (its own vocabulary 1..K, 0 = padding and missing), ``num`` (float32, NaN = missing; the
  padding row is 0.0, so a gather over padded sequences stays finite), ``tokens`` (one vocabulary over
  the tokens, an empty list where missing). Vocabularies count the kept items (or users) holding a
  value and are ordered by ``--item-order`` over the item (user) indices. A RecBole typed header gives
  the kind when the option does not: ``token`` -> cat, ``token_seq`` -> tokens split at spaces,
  ``float`` -> num.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import ATTRIBUTE_ROLES, RECBOLE_KINDS, AttributeRole, BuildConfig, FeatureKind, FeatureOptions
from ..errors import InputError
from ..io import COLUMN_ALIASES, ColumnRequest, read_table
from ..io.sniff import recbole_type
from ..kernels import cast_ids_exact, reuse_table
from ..kernels.features import split_tokens
from ..kernels.join import pad_front, rows_of_targets
from ..model import Column, Feature, KeyedTable
from ..vocab import Vocabulary
from .features import encode_column, features_meta

__all__ = ["AttributeTables", "attribute_features", "read_attribute_tables", "table_requests"]

#: role -> the table read for it (only the roles with a table).
AttributeTables = dict[AttributeRole, KeyedTable]


def table_requests(opts: FeatureOptions, role: AttributeRole) -> tuple[ColumnRequest, ...]:
    """The columns of the ``role`` table to read, each once."""
    out: dict[str, ColumnRequest] = {}
    for _, column, kind, _ in opts.attribute_specs(role):
        read_as = {"num": "number", "cat": "text", "tokens": "text", None: "auto"}[kind]
        out.setdefault(column, ColumnRequest(column, read_as, f"--{role}-attr"))  # type: ignore[arg-type]
    return tuple(out.values())


def read_attribute_tables(config: BuildConfig) -> AttributeTables:
    """Every ``--item-table`` / ``--user-table`` of the build, read (nothing joined yet)."""
    opts = config.feature
    tables: AttributeTables = {}
    for role in ATTRIBUTE_ROLES:
        path = opts.table(role)
        if path is None:
            continue
        own = config.read.role_column(role)  # the log's --item-col / --user-col names the key too
        tables[role] = read_table(
            path,
            key=opts.key(role),
            key_flag=f"--{role}-key",
            key_aliases=((own,) if own else ()) + COLUMN_ALIASES[role],
            columns=table_requests(opts, role),
            table_flag=f"--{role}-table",
        )
    return tables


def attribute_features(
    tables: AttributeTables, config: BuildConfig, users: Vocabulary, items: Vocabulary
) -> tuple[tuple[Feature, ...], dict[str, Any]]:
    """The attributes joined onto the vocabularies -> (features, meta): meta's ``features`` holds an
    entry per attribute (as for ``--feature``, plus ``unseen_values``), ``attribute_tables`` one per table.

    An item attribute has one row per item index 0..``num_embeddings`` - 1 (row 0 padding; the
    ``oov_idx`` row, when there is one, without a value); a user attribute one row per user index.
    """
    features: list[Feature] = []
    unseen: dict[str, int] = {}
    tables_meta: dict[str, Any] = {}
    for role, table in tables.items():
        vocab = items if role == "item" else users
        feats, tables_meta[role], role_unseen = _join(table, role, config.feature, vocab, config.item_order)
        features.extend(feats)
        unseen.update(role_unseen)
    entries = features_meta(tuple(features))
    for f in features:
        entries[f.name]["rows"] = f.rows
        entries[f.name]["file"] = f"{f.source}_features"
        if f.vocab is not None:
            entries[f.name]["unseen_values"] = unseen[f.name]
    return tuple(features), {"features": entries, "attribute_tables": tables_meta}


def _join(
    table: KeyedTable, role: AttributeRole, opts: FeatureOptions, vocab: Vocabulary, order: str
) -> tuple[list[Feature], dict[str, Any], dict[str, int]]:
    flag = f"--{role}-table {table.info.path}"
    cast, exact = cast_ids_exact(table.key_ids, vocab.ids.type)
    target = np.where(exact, reuse_table(vocab.ids, cast, start=0), -1)
    n = len(vocab)
    rows = rows_of_targets(target, table.key_codes, n)
    present = table.key_codes >= 0
    joined = int((rows >= 0).sum())
    if joined == 0:
        raise _nothing_joined(table, role, vocab, flag)
    not_exact = int((~np.append(exact, True)[table.key_codes] & present).sum())
    features, unseen = [], {}
    for name, column, kind, sep in opts.attribute_specs(role):
        header = table.column_names.get(column, column)
        feature, unseen[name] = _attribute(name, table.column(column), header, kind, sep, role, rows, order, vocab)
        features.append(feature)
    coverage = {
        "path": table.info.path,
        "bytes": table.info.bytes,
        "sha256": table.info.sha256,
        "format": table.info.format,
        "compression": table.info.compression,
        "rows": table.num_rows,
        "key": table.key_column,
        "columns": {name: table.column_names.get(column, column) for name, column, *_ in opts.attribute_specs(role)},
        f"{role}s": n,
        f"{role}s_with_row": joined,
        f"{role}s_without_row": n - joined,
        "rows_ignored": table.num_rows - joined,
        "rows_without_key": int((~present).sum()),
        "keys_not_exact": not_exact,
    }
    return features, coverage, unseen


def _nothing_joined(table: KeyedTable, role: str, vocab: Vocabulary, flag: str) -> InputError:
    if table.num_rows == 0:
        return InputError(f"{flag} holds no rows; pass a table with a header line and one row per {role}")
    keys = table.key_ids.slice(0, 3).to_pylist()
    ids = vocab.ids.slice(0, 3).to_pylist()
    kind = "integer" if pa.types.is_integer(vocab.ids.type) else "text"
    msg = (
        f"{flag}: no key of column {table.key_column!r} matches {'an' if role == 'item' else 'a'} {role} of the log; the table's keys are such as "
        f"{', '.join(map(repr, keys))}, the log's {kind} {role} ids such as {', '.join(map(repr, ids))} - pass the right "
        f"--{role}-key (or --id-type str when the keys are text such as 007)"
    )
    return InputError(msg)


def _attribute(
    name: str,
    col: Column,
    header: str,
    kind: FeatureKind | None,
    sep: str | None,
    role: AttributeRole,
    rows: np.ndarray,
    order: str,
    vocab: Vocabulary,
) -> tuple[Feature, int]:
    """One attribute over the vocabulary's indices (kept ids only), then padded for an item table
    -> (feature, distinct values that only ignored rows hold)."""
    flag = f"--{role}-attr {name}"
    if kind is None:
        typ = recbole_type(header)
        if typ == "float_seq":
            msg = f"{flag}: the column {header!r} is a RecBole float_seq (a vector of numbers), which has no seqprep kind; pass {name}:tokens:' ' to keep its values as categories"
            raise InputError(msg)
        if typ is not None:
            kind, sep = RECBOLE_KINDS[typ]
    if col.kind == "list" and kind in ("cat", "num"):
        msg = f"{flag}: the column {header!r} holds lists; pass {name}:tokens"
        raise InputError(msg)
    kept = _with_missing_row(col).take(rows)  # row -1 (no table row) takes the appended missing row
    feature = encode_column(name, kept, kind, sep, order)
    unseen = 0 if feature.vocab is None else _distinct_values(name, col, feature.kind, sep, order) - len(feature.vocab)
    feature = dataclasses.replace(feature, source=role, column=header)
    if role == "item":
        feature = _item_rows(feature, vocab.oov_idx is not None)
    return feature, unseen


def _distinct_values(name: str, col: Column, kind: FeatureKind, sep: str | None, order: str) -> int:
    """The distinct values (tokens) of the whole table column, kept items' or not."""
    if col.kind == "list" or (col.kind == "text" and kind == "cat"):
        return len(col.values)  # the reader's dictionary holds the values that occur, once each
    if col.kind == "text" and sep is not None:
        _, tokens, _ = split_tokens(col.values.cast(pa.string()), sep)
        return int(pc.count_distinct(tokens).as_py())
    vocab = encode_column(name, col, kind, sep, order).vocab  # numbers read as categories: encoded again
    return 0 if vocab is None else len(vocab)


def _with_missing_row(col: Column) -> Column:
    """``col`` with one more row, a missing value, at the end (index -1)."""
    if col.kind == "number":
        return Column(col.name, "number", np.append(np.asarray(col.values, dtype=np.float64), np.nan))
    assert col.codes is not None
    if col.kind == "text":
        return Column(col.name, "text", col.values, codes=np.append(col.codes, np.int32(-1)).astype(np.int32))
    assert col.offsets is not None
    return Column(col.name, "list", col.values, codes=col.codes, offsets=np.append(col.offsets, col.offsets[-1]))


def _item_rows(f: Feature, oov: bool) -> Feature:
    """An item attribute with the padding row 0 in front (0, 0.0 or an empty list) and, with an
    ``oov_idx``, a last row without a value (0, NaN or an empty list)."""
    values, offsets = pad_front(f.values, 0, f.offsets)
    if oov:
        if offsets is None:
            values = np.append(values, values.dtype.type(np.nan if f.kind == "num" else 0))
        else:
            offsets = np.append(offsets, offsets[-1])
    return dataclasses.replace(f, values=values, offsets=offsets)
