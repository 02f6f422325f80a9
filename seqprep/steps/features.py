"""Features: columns of the log that travel with the items (``--feature``), and time features derived
from the timestamps (``--time-feature``), each encoded for an embedding table.

- ``cat``: a vocabulary of its own, indices 1..K ordered as ``--item-order`` orders items
  (``frequency``: most rows first, equal counts by ascending value; ``first-seen``; ``id``: by
  value); 0 is padding, and a missing value is 0 too (counted in meta.json);
- ``num``: float32, NaN where missing;
- ``tokens``: several categorical values per row (``a|b|c`` split at SEP, or a JSON/Parquet list),
  one vocabulary over all tokens; an empty token (``a||b``) is skipped and counted.

Without a KIND, a column whose values are all numbers is ``num``, a list is ``tokens``, anything
else ``cat``. Derived time features (after the sort, per user): ``delta`` (num: time since the
user's previous interaction, in the timestamps' unit, 0 for the first), ``delta_log2`` (cat: that
delta in log2 buckets), ``hour`` and ``weekday`` (cat: UTC), ``interval`` (cat: TiSASRec's
personalised interval, clipped at K). The features are encoded once the rows are clean (their
vocabularies count kept rows only) and then permuted with the rows by the sort.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import FeatureKind, FeatureOptions
from ..errors import InputError
from ..io.sniff import ColumnRequest
from ..kernels import fit_order, remap_table
from ..kernels.features import day_of_week, hour_of_day, log2_bucket, personal_interval, previous_gap, split_tokens
from ..model import Column, Feature, Interactions, Sequences
from ..timeunits import NS_PER, UNIT_SCALE, largest_abs
from ..vocab import Vocabulary

__all__ = ["column_requests", "derive_time_features", "encode_column", "encode_features", "features_meta", "feature_vocabularies"]

_NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
#: Raw epoch numbers count as epoch seconds (for hour and weekday) when the largest lies in 1973..5138.
_SECONDS_LIKE = (1e8, 1e11)


def column_requests(opts: FeatureOptions) -> tuple[ColumnRequest, ...]:
    """The log's columns the interaction features need, each read once."""
    out: dict[str, ColumnRequest] = {}
    for _, column, kind, _ in opts.specs():
        read_as = {"num": "number", "cat": "text", "tokens": "text", None: "auto"}[kind]
        out.setdefault(column, ColumnRequest(column, read_as, "--feature"))  # type: ignore[arg-type]
    return tuple(out.values())


def encode_features(inter: Interactions, opts: FeatureOptions, order: str) -> tuple[Feature, ...]:
    """Each ``--feature`` of the kept rows, encoded (vocabularies fitted on these rows)."""
    return tuple(
        _encode(name, inter.column(column), kind, sep, order) for name, column, kind, sep in opts.specs()
    )


def encode_column(name: str, col: Column, kind: FeatureKind | None, sep: str | None, order: str) -> Feature:
    """One column encoded as ``--feature`` encodes it, its vocabulary fitted on the column's rows (the
    attribute tables' columns are encoded with it: :mod:`seqprep.steps.attributes`)."""
    return _encode(name, col, kind, sep, order)


def _encode(name: str, col: Column, kind: FeatureKind | None, sep: str | None, order: str) -> Feature:
    if kind is None:
        kind = "tokens" if col.kind == "list" else "num" if col.kind == "number" or _all_numbers(col) else "cat"
    if kind == "num":
        values = _numbers(col, name)
        return Feature(name, "interaction", "num", values, column=col.name, missing=int(np.isnan(values).sum()))
    if kind == "tokens":
        return _tokens(name, col, sep, order)
    if col.kind != "text":  # a number or list column read for a category: its values as text
        col = _as_text(col)
    assert col.codes is not None
    vocab, indices = _fit(col.codes, col.values, order)
    return Feature(name, "interaction", "cat", indices, vocab=vocab, column=col.name, missing=int((col.codes < 0).sum()))


def _all_numbers(col: Column) -> bool:
    if col.kind != "text" or len(col.values) == 0:
        return False
    if not (pa.types.is_string(col.values.type) or pa.types.is_large_string(col.values.type)):
        return pa.types.is_integer(col.values.type) or pa.types.is_floating(col.values.type)
    return bool(pc.all(pc.match_substring_regex(col.values, _NUMBER_RE)).as_py())


def _numbers(col: Column, name: str) -> np.ndarray:
    if col.kind == "number":
        return np.asarray(col.values, dtype=np.float32)
    if col.kind == "text" and _all_numbers(col):
        assert col.codes is not None
        table = np.append(pc.cast(pc.utf8_trim_whitespace(col.values.cast(pa.string())), pa.float64()).to_numpy(zero_copy_only=False), np.nan)
        return table[col.codes].astype(np.float32)
    example = next((v for v in col.values.to_pylist() if v is not None and not _is_number(v)), None)
    msg = f"--feature {name}:num: the column {col.name!r} holds text such as {example!r}; pass {name}:cat, or fix the column"
    raise InputError(msg)


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _as_text(col: Column) -> Column:
    if col.kind == "number":
        enc = pc.dictionary_encode(pa.array(col.values).cast(pa.string()))
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        return Column(col.name, "text", enc.dictionary, codes=codes)
    msg = f"--feature {col.name}:cat: the column holds lists; pass {col.name}:tokens"
    raise InputError(msg)


def _fit(codes: np.ndarray, values: pa.Array, order: str) -> tuple[Vocabulary, np.ndarray]:
    """The vocabulary of the codes that occur (ordered by ``order``) and the int32 index of each code
    occurrence (0 for a missing code, -1)."""
    present = codes[codes >= 0]
    chosen, counts = fit_order(present, values, order)  # type: ignore[arg-type]
    vocab = Vocabulary(ids=values.take(pa.array(chosen)), counts=counts, start=1)
    table = np.append(remap_table(chosen, len(values), start=1), np.int32(0))  # code -1 -> 0 (missing)
    return vocab, table[codes]


def _tokens(name: str, col: Column, sep: str | None, order: str) -> Feature:
    """Token lists: split on the distinct values (few), then gathered per row."""
    if col.kind == "list":
        assert col.codes is not None and col.offsets is not None
        keep = col.codes >= 0
        offsets, codes, empty = _drop_codes(col.offsets, col.codes, keep), col.codes[keep], int((~keep).sum())
        values = col.values
    else:
        if sep is None:
            msg = f"--feature {name}: a text column needs its token separator, e.g. --feature {col.name}:tokens:|"
            raise InputError(msg)
        if col.kind == "number":
            col = _as_text(col)
        assert col.codes is not None
        value_offsets, tokens, _ = split_tokens(col.values.cast(pa.string()), sep)
        enc = pc.dictionary_encode(tokens)
        token_codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        values = enc.dictionary
        rows = col.codes
        lengths = np.append(np.diff(value_offsets), 0)[rows]  # code -1 (missing) takes the trailing 0: no value at all is fine too
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = np.append(value_offsets[:-1], 0)[rows]
        pos = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
        codes = token_codes[pos]
        empty = _empty_tokens(col, sep)
    vocab, indices = _fit(codes, values, order)
    missing = int((np.diff(offsets) == 0).sum())
    return Feature(name, "interaction", "tokens", indices, vocab=vocab, offsets=offsets, column=col.name, missing=missing, empty_tokens=empty)


def _drop_codes(offsets: np.ndarray, codes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Offsets of the lists once the elements where ``keep`` is False are left out."""
    kept = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept[1:])
    return kept[offsets]


def _empty_tokens(col: Column, sep: str) -> int:
    """Empty tokens over the rows (not the distinct values): ``a||b`` counts once per row that has it."""
    assert col.codes is not None
    present = col.codes[col.codes >= 0]
    if len(present) == 0:
        return 0
    per_value = _empty_per_value(col.values.cast(pa.string()), sep)
    return int(np.bincount(present, minlength=len(col.values)) @ per_value)


def _empty_per_value(values: pa.Array, sep: str) -> np.ndarray:
    parts = pc.split_pattern(pc.fill_null(values, ""), pattern=sep)
    lengths = pc.list_value_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    empty = pc.equal(flat, "").to_numpy(zero_copy_only=False)
    row = np.repeat(np.arange(len(values)), lengths)
    return np.bincount(row[empty], minlength=len(values)).astype(np.int64)


def derive_time_features(seqs: Sequences, time_unit: str, opts: FeatureOptions, order: str) -> Sequences:
    """The sequences with each ``--time-feature`` computed over every user's sorted timestamps."""
    if not opts.time_features:
        return seqs
    out = list(seqs.features)
    for name, k in opts.time_specs():
        out.append(_time_feature(name, k, seqs, time_unit, order))
    return dataclasses.replace(seqs, features=tuple(out))


def _time_feature(name: str, k: int | None, seqs: Sequences, unit: str, order: str) -> Feature:
    ts = seqs.timestamps
    if name == "delta":
        gap = previous_gap(seqs.offsets, ts).astype(np.float32)
        return Feature(name, "derived", "num", gap, column="timestamp - the user's previous timestamp")
    if name == "delta_log2":
        values, rule = log2_bucket(previous_gap(seqs.offsets, ts)), "0 for a gap of 0, else floor(log2(gap)) + 1"
    elif name == "interval":
        assert k is not None
        values, rule = personal_interval(seqs.offsets, ts, k), f"TiSASRec's personalised interval, at most {k}"
    else:
        ns = _ns_per_step(unit, ts, name)
        values, rule = (hour_of_day(ts, ns), "UTC hour 0..23") if name == "hour" else (day_of_week(ts, ns), "UTC weekday, Monday 0")
    ids, codes = np.unique(values, return_inverse=True)
    vocab, indices = _fit(codes.astype(np.int32).reshape(-1), pa.array(ids.astype(np.int64)), order)
    return Feature(name, "derived", "cat", indices, vocab=vocab, column=rule)


def _ns_per_step(unit: str, ts: np.ndarray, name: str) -> int:
    if unit in UNIT_SCALE:
        return NS_PER[unit]
    top = largest_abs(ts)
    if not (_SECONDS_LIKE[0] <= top < _SECONDS_LIKE[1]):
        msg = (
            f"--time-feature {name} needs timestamps in epoch seconds, but this log's raw timestamps reach "
            f"{top:.6g}, which is not seconds-like; convert them to seconds or ISO-8601 dates"
        )
        raise InputError(msg)
    return NS_PER["epoch"]


def feature_vocabularies(features: tuple[Feature, ...]) -> dict[str, Vocabulary]:
    """name -> vocabulary of every categorical and token feature."""
    return {f.name: f.vocab for f in features if f.vocab is not None}


def features_meta(features: tuple[Feature, ...]) -> dict[str, Any]:
    """meta.json's ``features``: per feature what sizes its embedding table and what was missing."""
    out: dict[str, Any] = {}
    for f in features:
        entry: dict[str, Any] = {"source": f.source, "kind": f.kind, "column": f.column, "missing": f.missing}
        if f.vocab is not None:
            entry.update(
                values=len(f.vocab),
                num_embeddings=len(f.vocab) + 1,
                padding_idx=0,
                missing_idx=0,
                vocabulary=f"features/{f.name}.parquet",
                value_type=str(f.vocab.ids.type),
            )
        else:
            entry.update(dtype="float32", missing_value="NaN")
        if f.kind == "tokens":
            entry["empty_tokens"] = f.empty_tokens
        out[f.name] = entry
    return out
