"""Features: columns of the log that travel with the items (``--feature``), and time features derived
from the timestamps (``--time-feature``), each encoded for an embedding table.

- ``cat``: a vocabulary of its own, indices 1..K ordered as ``--item-order`` orders items
  (``frequency``: most rows first, equal counts by ascending value; ``first-seen``; ``id``: by
  value; ``sequence``: ``first-seen`` over the rows the vocabulary is fitted on - see
  :func:`value_order`); 0 is padding, and a missing value is 0 too (counted in meta.json);
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
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import FeatureKind, FeatureOptions, VocabOptions
from ..errors import InputError
from ..io.buffers import IdEncoder, read_rows
from ..io.sniff import ColumnRequest
from ..kernels import cast_ids_exact, fit_order, order_counted, remap_table, reuse_table
from ..kernels.features import (
    day_of_week,
    hour_of_day,
    log2_bucket,
    personal_interval,
    previous_gap,
    split_tokens,
    take_chunked,
)
from ..kernels.arrow import from_numpy
from ..kernels.sequences import code_counts
from ..model import Column, Feature, Interactions, Sequences
from ..timeunits import NS_PER, UNIT_SCALE, largest_abs
from ..vocab import Vocabulary
from .reuse import FeatureReference, load_feature_references

__all__ = [
    "category_column",
    "category_column_chunked",
    "category_vocabulary",
    "column_requests",
    "compact_dtype",
    "derive_time_features",
    "encode_column",
    "encode_features",
    "value_order",
    "feature_vocabularies",
    "features_meta",
    "number_table",
    "refit_on",
    "resolve_kind",
    "reuse_features",
    "time_feature_values",
    "reuse_vocabulary",
]

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


def encode_features(
    inter: Interactions, opts: FeatureOptions, order: str, vocab: VocabOptions | None = None
) -> tuple[Feature, ...]:
    """Each ``--feature`` of the kept rows, encoded (vocabularies fitted on these rows); with
    ``vocab.vocab_from`` the vocabularies of that earlier build instead (:func:`reuse_vocabulary`)."""
    out = tuple(_encode(name, inter.column(column), kind, sep, order) for name, column, kind, sep in opts.specs())
    return reuse_features(out, vocab)


def reuse_features(features: tuple[Feature, ...], vocab: VocabOptions | None) -> tuple[Feature, ...]:
    """``features`` encoded with the vocabularies of ``vocab.vocab_from`` (each must be a feature of
    that build, of the same kind); unchanged without ``--vocab-from``."""
    if vocab is None or vocab.vocab_from is None or not features:
        return features
    refs = load_feature_references(vocab.vocab_from, [f.name for f in features], {f.name: f.kind for f in features})
    mode = "extend" if vocab.extend else vocab.unknown
    return tuple(reuse_vocabulary(f, refs[f.name], mode) for f in features)


def encode_column(name: str, col: Column, kind: FeatureKind | None, sep: str | None, order: str) -> Feature:
    """One column encoded as ``--feature`` encodes it, its vocabulary fitted on the column's rows (the
    attribute tables' columns are encoded with it: :mod:`seqprep.steps.attributes`)."""
    return _encode(name, col, kind, sep, order)


def resolve_kind(col: Column, kind: FeatureKind | None) -> FeatureKind:
    """A feature's kind: the one asked for, else ``tokens`` for a list column, ``num`` for a column
    of numbers (read as numbers, or text whose every distinct value is one), ``cat`` otherwise."""
    if kind is not None:
        return kind
    return "tokens" if col.kind == "list" else "num" if col.kind == "number" or _all_numbers(col) else "cat"


def _encode(name: str, col: Column, kind: FeatureKind | None, sep: str | None, order: str) -> Feature:
    kind = resolve_kind(col, kind)
    if kind == "num":
        values = _numbers(col, name)
        return Feature(name, "interaction", "num", values, column=col.name, missing=int(np.isnan(values).sum()))
    if kind == "tokens":
        return _tokens(name, col, sep, order)
    col = category_column(col)
    assert col.codes is not None
    vocab, indices, missing = _fit(col.codes, col.values, order, compact=True)
    return Feature(name, "interaction", "cat", indices, vocab=vocab, column=col.name, missing=missing)


def _all_numbers(col: Column) -> bool:
    if col.kind != "text" or len(col.values) == 0:
        return False
    if not (pa.types.is_string(col.values.type) or pa.types.is_large_string(col.values.type)):
        return pa.types.is_integer(col.values.type) or pa.types.is_floating(col.values.type)
    return bool(pc.all(pc.match_substring_regex(col.values, _NUMBER_RE)).as_py())


def _numbers(col: Column, name: str) -> np.ndarray:
    table = number_table(col, name)
    if table is None:
        return np.asarray(col.values, dtype=np.float32)
    assert col.codes is not None
    return table[col.codes]


def number_table(col: Column, name: str) -> np.ndarray | None:
    """A ``num`` feature's values by code of a text column (float32; the last entry, NaN, for code
    -1), or None for a column read as numbers (its values are the feature's, cast to float32).
    Text that is not a number is an error naming one such value."""
    if col.kind == "number":
        return None
    if col.kind == "text" and _all_numbers(col):
        numbers = pc.cast(pc.utf8_trim_whitespace(col.values.cast(pa.string())), pa.float64()).to_numpy(zero_copy_only=False)
        return np.append(numbers, np.nan).astype(np.float32)
    example = next((v for v in col.values.to_pylist() if v is not None and not _is_number(v)), None)
    msg = f"--feature {name}:num: the column {col.name!r} holds text such as {example!r}; pass {name}:cat, or fix the column"
    raise InputError(msg)


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def category_column(col: Column) -> Column:
    """The column as categories (codes into its distinct values): a text column as it is, a number
    column by its values as text; a list column is an error (its values are tokens)."""
    if col.kind == "text":
        return col
    if col.kind == "number":
        enc = pc.dictionary_encode(pa.array(col.values).cast(pa.string()))
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        return Column(col.name, "text", enc.dictionary, codes=codes)
    msg = f"--feature {col.name}:cat: the column holds lists; pass {col.name}:tokens"
    raise InputError(msg)


def category_column_chunked(col: Column, new_buffer: Callable[[Any], Any], chunk: int) -> Column:
    """:func:`category_column` of a (spilled) number column, a chunk of rows at a time: the codes
    go to ``new_buffer`` (a file under ``--memory-limit``), in the same first-seen dictionary."""
    if col.kind != "number":
        return category_column(col)
    enc = IdEncoder(new_buffer=new_buffer)
    for lo in range(0, col.rows, chunk):
        enc.add(pc.dictionary_encode(pa.array(read_rows(col.values, lo, lo + chunk)).cast(pa.string())))
    codes, values = enc.finish()
    return Column(col.name, "text", values, codes=codes)


def category_vocabulary(
    values: pa.Array, counts: np.ndarray, first_seen: np.ndarray | None, order: str
) -> tuple[Vocabulary, np.ndarray]:
    """A ``cat`` feature's vocabulary from its count tables (``counts[k]`` kept rows of ``values[k]``;
    ``first_seen`` positions for ``first-seen``), and the int32 lookup code -> index 1..K whose last
    entry (for code -1, missing) is 0."""
    chosen, ordered = order_counted(counts, values, value_order(order), first_seen)  # type: ignore[arg-type]
    vocab = Vocabulary(ids=values.take(pa.array(chosen)), counts=ordered, start=1)
    table = np.append(remap_table(chosen, len(values), start=1), np.int32(0))  # code -1 -> 0 (missing)
    return vocab, table


def value_order(order: str) -> str:
    """The order of a feature's (or attribute's) values under ``--item-order order``.

    ``sequence`` numbers items by first appearance reading the written sequences; a feature's values
    are numbered by first appearance in the rows their vocabulary is fitted on: input order for
    ``--feature``, ``--event-col`` and attribute tables (fitted before the sort, the same on every
    engine), the written sequences for ``--time-feature`` (fitted after it). Other orders are as given.

    >>> value_order("sequence"), value_order("frequency")
    ('first-seen', 'frequency')
    """
    return "first-seen" if order == "sequence" else order


def _fit(codes: np.ndarray, values: pa.Array, order: str, *, compact: bool = False) -> tuple[Vocabulary, np.ndarray, int]:
    """The vocabulary of the codes that occur (ordered by ``order``), the int32 index of each code
    occurrence (0 for a missing code, -1), and the number of missing codes; with ``compact`` the
    indices in the smallest unsigned type that holds them (see :func:`compact_dtype`).

    Two passes over the codes: one count (:func:`~seqprep.kernels.sequences.code_counts`, whose last
    entry counts the missing codes: no pass of its own for them), one chunked lookup
    (:func:`~seqprep.kernels.features.take_chunked`); no 64-bit copy of all the codes. ``first-seen``
    takes the present codes' first positions instead of the count.
    """
    order = value_order(order)
    if order == "first-seen":
        present = codes[codes >= 0]
        missing = len(codes) - len(present)
        chosen, counts = fit_order(present, values, order)  # type: ignore[arg-type]
        del present
    else:
        counted = code_counts(codes, len(values), missing=True)
        missing = int(counted[-1])
        chosen, counts = order_counted(counted[:-1], values, order)  # type: ignore[arg-type]
    vocab = Vocabulary(ids=values.take(from_numpy(chosen, pa.int64())), counts=counts, start=1)
    table = np.append(remap_table(chosen, len(values), start=1), np.int32(0))  # code -1 -> 0 (missing)
    if compact:
        table = table.astype(compact_dtype(len(chosen)))
    return vocab, take_chunked(table, codes), missing


def compact_dtype(k: int) -> np.dtype:
    """The type of indices 0..k while the rows are still in input order: uint8 or uint16 when they fit
    (1 or 2 bytes a row instead of 4: the sort holds them beside their sorted int32 copy), else int32.

    >>> compact_dtype(20), compact_dtype(10_000), compact_dtype(100_000)
    (dtype('uint8'), dtype('uint16'), dtype('int32'))
    """
    return np.dtype(np.uint8 if k < 2**8 else np.uint16 if k < 2**16 else np.int32)


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
            col = category_column(col)
        assert col.codes is not None
        value_offsets, tokens, _ = split_tokens(col.values.cast(pa.string()), sep)
        enc = pc.dictionary_encode(tokens)
        token_codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        values = enc.dictionary
        rows = np.where(col.codes >= 0, col.codes, len(col.values))  # a missing row: an empty value past the end
        lengths = np.append(np.diff(value_offsets), 0)[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = value_offsets[rows]
        pos = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
        codes = token_codes[pos]
        empty = _empty_tokens(col, sep)
    vocab, indices, _ = _fit(codes, values, order, compact=True)
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


def derive_time_features(
    seqs: Sequences,
    time_unit: str,
    opts: FeatureOptions,
    order: str,
    *,
    fit_rows: np.ndarray | None = None,
    vocab: VocabOptions | None = None,
) -> Sequences:
    """The sequences with each ``--time-feature`` computed over every user's sorted timestamps.

    Categorical ones get a vocabulary fitted on every interaction, on the positions where
    ``fit_rows`` is True (``--vocab-from-train``: the training part), or reused from
    ``vocab.vocab_from``."""
    if not opts.time_features:
        return seqs
    derived = tuple(_time_feature(name, k, seqs, time_unit, order) for name, k in opts.time_specs())
    if fit_rows is not None:
        derived = tuple(refit_on(f, fit_rows, order) for f in derived)
    return dataclasses.replace(seqs, features=seqs.features + reuse_features(derived, vocab))


def _time_feature(name: str, k: int | None, seqs: Sequences, unit: str, order: str) -> Feature:
    kind, values, rule = time_feature_values(name, k, seqs, unit)
    if kind == "num":
        return Feature(name, "derived", "num", values, column=rule)
    ids, codes = np.unique(values, return_inverse=True)
    vocab, indices, _ = _fit(codes.astype(np.int32).reshape(-1), from_numpy(ids.astype(np.int64)), order)
    return Feature(name, "derived", "cat", indices, vocab=vocab, column=rule)


def time_feature_values(name: str, k: int | None, seqs: Sequences, unit: str, top: float | None = None) -> tuple[str, np.ndarray, str]:
    """One ``--time-feature`` over the sequences of whole users, before any vocabulary: (kind, the
    value per position - float32 for ``num``, the raw category otherwise -, its rule). ``top``: the
    largest |timestamp| of the whole log (default: of ``seqs``), which tells raw epoch seconds."""
    ts = seqs.timestamps
    if name == "delta":
        return "num", previous_gap(seqs.offsets, ts).astype(np.float32), "timestamp - the user's previous timestamp"
    if name == "delta_log2":
        return "cat", log2_bucket(previous_gap(seqs.offsets, ts)), "0 for a gap of 0, else floor(log2(gap)) + 1"
    if name == "interval":
        assert k is not None
        return "cat", personal_interval(seqs.offsets, ts, k), f"TiSASRec's personalised interval, at most {k}"
    ns = _ns_per_step(unit, ts, name, top)
    return ("cat", hour_of_day(ts, ns), "UTC hour 0..23") if name == "hour" else ("cat", day_of_week(ts, ns), "UTC weekday, Monday 0")


def _ns_per_step(unit: str, ts: np.ndarray, name: str, top: float | None = None) -> int:
    if unit in UNIT_SCALE:
        return NS_PER[unit]
    top = largest_abs(ts) if top is None else top
    if not (_SECONDS_LIKE[0] <= top < _SECONDS_LIKE[1]):
        msg = (
            f"--time-feature {name} needs timestamps in epoch seconds, but this log's raw timestamps reach "
            f"{top:.6g}, which is not seconds-like; convert them to seconds or ISO-8601 dates"
        )
        raise InputError(msg)
    return NS_PER["epoch"]


def _remapped(f: Feature, table: np.ndarray, vocab: Vocabulary, unseen: int, fit: str, recount: bool = True) -> Feature:
    """``f`` with its indices mapped through ``table`` (old index -> new one, 0 for index 0; a new
    index 0 leaves a token out of its list); with ``recount`` the counts of ``vocab`` are those of
    the result."""
    values = table[f.values]
    offsets = f.offsets
    if offsets is not None and (values == 0).any():
        keep = values != 0
        kept = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(keep, out=kept[1:])
        values, offsets = values[keep], kept[offsets]
    size = len(vocab) + 1 + (vocab.oov_idx is not None)
    if recount:
        counts = np.bincount(values, minlength=size)[1 : len(vocab) + 1].astype(np.int64)
        vocab = Vocabulary(ids=vocab.ids, counts=counts, start=1, oov_idx=vocab.oov_idx)
    dtype = np.int32 if f.values.dtype == np.int32 else compact_dtype(size - 1)  # compact stays compact
    return dataclasses.replace(f, values=values.astype(dtype), offsets=offsets, vocab=vocab, unseen=unseen, fit=fit)  # type: ignore[arg-type]


def refit_on(f: Feature, rows: np.ndarray, order: str) -> Feature:
    """``f`` (aligned with ``rows``) with its vocabulary fitted on the rows where ``rows`` is True
    only (``--vocab-from-train``: its counts are those rows', as the items'); a value those rows never
    hold becomes 0, as a missing one (a token is left out of its list), and is counted in ``unseen``.

    >>> f = Feature("g", "interaction", "cat", np.array([1, 2, 2, 0], dtype=np.int32),
    ...             vocab=Vocabulary(pa.array(["a", "b"]), np.array([1, 2]), start=1))
    >>> g = refit_on(f, np.array([False, True, True, True]), "frequency")
    >>> g.values.tolist(), g.vocab.ids.to_pylist(), g.unseen
    ([0, 1, 1, 0], ['b'], 1)
    """
    if f.vocab is None:
        return f
    mask = rows if f.offsets is None else np.repeat(rows, np.diff(f.offsets))
    codes = f.values.astype(np.int64) - 1  # -1: missing
    chosen, counts = fit_order(codes[mask & (codes >= 0)], f.vocab.ids, value_order(order))  # type: ignore[arg-type]
    table = np.concatenate([[0], np.maximum(remap_table(chosen, len(f.vocab), start=1), 0)]).astype(np.int32)
    unseen = int(((table[f.values] == 0) & (f.values > 0)).sum())
    vocab = Vocabulary(ids=f.vocab.ids.take(pa.array(chosen, pa.int64())), counts=counts, start=1)
    return _remapped(f, table, vocab, unseen, "train", recount=False)


def reuse_vocabulary(f: Feature, ref: FeatureReference, mode: str) -> Feature:
    """``f`` (fitted on this build's rows) encoded with an earlier build's vocabulary ``ref``: its
    values keep OLD's indices 1..K; a value OLD does not know is, by ``mode``: ``drop`` 0 (as a
    missing value; a token is left out of its list), ``oov`` K+1 (``oov_idx``), ``error`` a one-line
    error naming a few, ``extend`` appended at K+1, K+2, ... (in this build's order).

    >>> old = FeatureReference("g", "cat", Vocabulary(pa.array(["b", "a"]), np.array([5, 1]), start=1), "OLD")
    >>> f = Feature("g", "interaction", "cat", np.array([1, 2, 0, 1], dtype=np.int32),
    ...             vocab=Vocabulary(pa.array(["a", "z"]), np.array([2, 1]), start=1))
    >>> reuse_vocabulary(f, old, "oov").values.tolist(), reuse_vocabulary(f, old, "drop").unseen
    ([2, 3, 0, 2], 1)
    >>> ext = reuse_vocabulary(f, old, "extend")
    >>> ext.values.tolist(), ext.vocab.ids.to_pylist(), ext.vocab.counts.tolist()
    ([2, 3, 0, 2], ['b', 'a', 'z'], [0, 2, 1])
    """
    if ref.kind != f.kind:
        msg = f"feature {f.name!r} is {f.kind} here but {ref.kind} in --vocab-from {ref.path!r}; pass {f.column}:{ref.kind}, or rebuild OLD"
        raise InputError(msg)
    if f.vocab is None or ref.vocab is None:
        return dataclasses.replace(f, fit="reused")
    old = ref.vocab
    ids, exact = (f.vocab.ids, None) if f.vocab.ids.type == old.ids.type else cast_ids_exact(f.vocab.ids, old.ids.type)
    table = reuse_table(old.ids, ids, start=1) if len(old) else np.full(len(ids), -1, dtype=np.int32)
    if exact is not None:
        table[~exact] = -1  # a value OLD's type cannot hold: unknown to OLD
        if mode == "extend" and not exact.all():
            example = f.vocab.ids.filter(pa.array(~exact))[0].as_py()
            msg = f"feature {f.name!r}: --extend cannot add {example!r} to the {old.ids.type} values of --vocab-from {ref.path!r}; rebuild OLD, or pass --unknown oov"
            raise InputError(msg)
    new = table < 0
    unseen = int(f.vocab.counts[new].sum())
    k = len(old)
    if mode == "error" and new.any():
        examples = ", ".join(map(repr, f.vocab.ids.filter(pa.array(new)).slice(0, 5).to_pylist()))
        msg = (
            f"feature {f.name!r} has {_n(int(new.sum()), 'value')} ({_n(unseen, 'token' if f.kind == 'tokens' else 'row')}) that "
            f"the vocabulary of {ref.path!r} does not hold, e.g. {examples}; pass --unknown drop or --unknown oov to accept them, or --extend to add them"
        )
        raise InputError(msg)
    if mode == "extend":
        if old.oov_idx is not None:
            msg = f"--vocab-from {ref.path!r} reserved index {old.oov_idx} of feature {f.name!r} for unknown values, so --extend cannot append there; use --unknown oov instead"
            raise InputError(msg)
        table[new] = np.arange(k + 1, k + 1 + int(new.sum()), dtype=np.int32)
        vocab = Vocabulary(ids=pa.concat_arrays([old.ids, ids.filter(pa.array(new))]), counts=old.counts, start=1)
        fit = "extended"
    else:
        oov = k + 1 if mode == "oov" else None
        table[new] = 0 if oov is None else oov
        vocab = Vocabulary(ids=old.ids, counts=old.counts, start=1, oov_idx=oov)
        fit = "reused"
    return _remapped(f, np.concatenate([[0], table]).astype(np.int32), vocab, unseen, fit)


def _n(k: int, what: str) -> str:
    return f"{k} {what}" + ("" if k == 1 else "s")


def feature_vocabularies(features: tuple[Feature, ...]) -> dict[str, Vocabulary]:
    """name -> vocabulary of every categorical and token feature."""
    return {f.name: f.vocab for f in features if f.vocab is not None}


def features_meta(features: tuple[Feature, ...]) -> dict[str, Any]:
    """meta.json's ``features``: per feature what sizes its embedding table and what was missing."""
    out: dict[str, Any] = {}
    for f in features:
        entry: dict[str, Any] = {"source": f.source, "kind": f.kind, "column": f.column, "missing": f.missing}
        if f.vocab is not None:
            oov = f.vocab.oov_idx
            entry.update(
                values=len(f.vocab),
                num_embeddings=len(f.vocab) + 1 + (oov is not None),
                padding_idx=0,
                missing_idx=0,
                oov_idx=oov,
                vocabulary=f"features/{f.name}.parquet",
                value_type=str(f.vocab.ids.type),
                fit=f.fit,
                unseen=f.unseen,
            )
        else:
            entry.update(dtype="float32", missing_value="NaN")
        if f.kind == "tokens":
            entry["empty_tokens"] = f.empty_tokens
        out[f.name] = entry
    return out
