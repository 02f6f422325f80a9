"""Features on a Dask cluster (``--feature``, ``--event-col``, ``--time-feature``), by the local steps.

- an interaction feature's column travels with the rows (:mod:`.columns`); a categorical one's
  vocabulary is fitted on the client from the count tables of the kept rows, as the items' is
  (:func:`~seqprep.steps.features.category_vocabulary`), and the code -> index table is broadcast:
  each partition sends its rows' indices (or float32 numbers) through the shuffle beside the items;
- a derived time feature is computed per output part on its worker (users are whole) by
  :func:`~seqprep.steps.features.time_feature_values`; the client fits a categorical one's vocabulary
  from the parts' value counts (first positions in user order for ``first-seen``) and each part
  maps its values to indices;
- meta.json's ``features`` and ``events`` come from the local functions, the parts' counts added up.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...config import BuildConfig, VocabOptions
from ...errors import InputError
from ...kernels.splits import TRAIN
from ...model import Column, Feature, Sequences
from ...steps.events import EVENT, events_meta_counted, target_codes, target_positions
from ...steps.features import (
    category_vocabulary,
    number_table,
    resolve_kind,
    reuse_features,
    time_feature_values,
    value_order,
)
from ...vocab import Vocabulary
from .columns import LogColumns
from .lists import ValueTokens, counted_tokens, empty_per_value, gather_lists, list_tokens, value_tokens
from .write import part_sequences

__all__ = ["FeaturePlan", "NumberLookup", "counted_columns", "expand_lists", "fit_tokens", "events_meta", "fit_features", "fit_time_features", "refit_tokens", "templates_of"]

_NO_POS = np.iinfo(np.int64).max


def _specs(config: BuildConfig) -> list[tuple[str, str, Any, Any]]:
    """(name, column, kind, sep) of every interaction feature, the event column's last (the local order)."""
    specs = list(config.feature.specs())
    if config.event.event_col is not None:
        specs.append((EVENT, config.event.event_col, "cat", None))
    return specs


def _kind(columns: LogColumns, name: str, column: str, kind: Any) -> tuple[int, Column, str]:
    k = columns.index(column)
    col = columns.stub(k)
    return k, col, resolve_kind(col, kind)


def counted_columns(config: BuildConfig, columns: LogColumns) -> tuple[tuple[str, int], ...]:
    """The frame columns whose count tables the features need: (column, dictionary size; -1: numbers)."""
    out: dict[str, int] = {}
    for name, column, kind, _ in _specs(config):
        k, col, _ = _kind(columns, name, column, kind)
        out[columns.key(k)] = -1 if col.kind == "number" else columns.distinct(k)
    return tuple(out.items())


@dataclasses.dataclass(frozen=True)
class FeaturePlan:
    """The interaction features fitted on the client: each without values (its vocabulary, counts of
    missing values), and per feature its frame column and table (code -> value; None: the column's
    numbers as float32), what each partition sends (:func:`~seqprep.engines.dask.partitions.split_rows`).

    ``lists``: per token feature (its place among the features) the CSR table of its distinct values'
    token indices, value 0 the missing one (its rows travel as their value's index:
    :func:`expand_lists`); ``empties``: per token feature (as ``lists``) the empty tokens of each
    distinct value 1.. (what ``--vocab-from-train`` counts on the rows left: :func:`refit_tokens`)."""

    templates: tuple[Feature, ...] = ()
    encoders: tuple[tuple[str, Any], ...] = ()
    lists: tuple[tuple[int, np.ndarray, np.ndarray], ...] = ()
    empties: tuple[np.ndarray, ...] = ()


@dataclasses.dataclass(frozen=True)
class NumberLookup:
    """The send side's table of a categorical feature of a column read as numbers: a kept row's
    number (its float64 bits, among ``bits``, sorted) -> ``indices``."""

    bits: np.ndarray
    indices: np.ndarray

    def __getitem__(self, numbers: np.ndarray) -> np.ndarray:
        keys = np.ascontiguousarray(numbers, dtype=np.float64).view(np.int64)
        return self.indices[np.searchsorted(self.bits, keys)]


def _number_values(df: Any, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One partition's distinct kept numbers of column ``key`` (float64 bits), their kept rows and first kept position."""
    from .partitions import KEPT

    kept = df["stage"].to_numpy() == KEPT
    bits = np.ascontiguousarray(df[key].to_numpy()[kept], dtype=np.float64).view(np.int64)
    ids, inverse, counts = np.unique(bits, return_inverse=True, return_counts=True)
    first = np.full(len(ids), _NO_POS, np.int64)
    np.minimum.at(first, inverse.reshape(-1), df["pos"].to_numpy()[kept])  # (rows in input order only before a dedup's shuffle)
    return ids, counts.astype(np.int64), first


def _number_categories(rows: Any, key: str) -> tuple[pa.Array, np.ndarray, np.ndarray, NumberLookup]:
    """A column read as numbers, as categories of its kept rows (the local ``category_column``: each
    number as text): (the distinct texts, their kept rows, first kept positions, the number ->
    text code lookup). Reduced from the partitions' distinct numbers (few) on the client."""
    import dask

    found = dask.compute(*[dask.delayed(_number_values)(p, key) for p in rows.to_delayed()])
    bits = np.unique(np.concatenate([f[0] for f in found])) if found else np.zeros(0, np.int64)
    counts = np.zeros(len(bits), np.int64)
    first = np.full(len(bits), _NO_POS, np.int64)
    for ids, c, f in found:
        at = np.searchsorted(bits, ids)
        counts[at] += c
        np.minimum.at(first, at, f)
    enc = pc.dictionary_encode(pa.array(bits.view(np.float64)).cast(pa.string()))
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    texts = enc.dictionary
    tcounts = np.zeros(len(texts), np.int64)
    np.add.at(tcounts, codes, counts)
    tfirst = np.full(len(texts), _NO_POS, np.int64)
    np.minimum.at(tfirst, codes, first)
    return texts, tcounts, tfirst, NumberLookup(bits, codes.astype(np.int32))


def _values_of(
    col: Column, key: str, tables: dict[str, Any], rows: Any
) -> tuple[pa.Array, np.ndarray, np.ndarray, Any, int]:
    """A categorical or token feature's distinct values as the rows hold them: (values, kept rows
    and first kept position per value, the send side's lookup row -> value code or -1, missing rows)."""
    if col.kind == "number":
        values, counts, first, lookup = _number_categories(rows, key)
        return values, counts, first, lookup, 0  # a number is never missing (NaN is a value: "nan")
    counts = tables[f"{key}_kept"]
    identity = np.append(np.arange(len(col.values), dtype=np.int32), np.int32(-1))
    return col.values, counts[1:], tables[f"{key}_kpos"][1:], identity, int(counts[0])


def _composed(lookup: Any, table: np.ndarray) -> Any:
    """``lookup`` (row -> value code, -1 missing) then ``table`` (code -> index; its last entry, for -1, 0)."""
    if isinstance(lookup, NumberLookup):
        return NumberLookup(lookup.bits, table[lookup.indices])
    return table[lookup]


def fit_features(config: BuildConfig, columns: LogColumns, tables: dict[str, Any], rows: Any = None) -> FeaturePlan:
    """The ``--feature`` and ``--event-col`` features from the kept rows' count tables, as the local
    ``encode_features`` and ``event_feature`` fit them (``rows``: the cleaned partitions, read for
    the distinct numbers of a categorical feature of a column read as numbers)."""
    if not _specs(config):
        return FeaturePlan()
    templates, encoders, lists, empty = [], [], {}, {}
    order = value_order(config.item_order)
    for name, column, kind, sep in _specs(config):
        k, col, resolved = _kind(columns, name, column, kind)
        key = columns.key(k)
        if resolved == "num":
            table = number_table(col, name)  # None: a column of numbers
            missing = tables[f"{key}_nan"] if table is None else int(tables[f"{key}_kept"][0])
            templates.append(
                Feature(name, "interaction", "num", np.zeros(0, np.float32), column=col.name, missing=int(missing))
            )
            encoders.append((key, table))
            continue
        if resolved == "tokens" and col.kind != "list" and sep is None:
            msg = f"--feature {name}: a text column needs its token separator, e.g. --feature {col.name}:tokens:|"
            raise InputError(msg)
        if col.kind == "list" and resolved != "tokens":
            msg = f"--feature {col.name}:cat: the column holds lists; pass {col.name}:tokens"
            raise InputError(msg)
        if col.kind == "list":
            distinct, counts = columns.values[k], tables[f"{key}_kept"]
            vt, empties = list_tokens(distinct.offsets, distinct.codes, distinct.elements, counts[1:], tables[f"{key}_kpos"][1:])
            template, table, value_offsets, value_codes = fit_tokens(name, col, vt, empties, counts[1:], order, int(counts[0]))
            lists[len(templates)] = (value_offsets, value_codes)
            empty[len(templates)] = empties
            templates.append(template)
            encoders.append((key, _composed(np.append(np.arange(len(counts) - 1, dtype=np.int32), np.int32(-1)), table)))
            continue
        values, counts, first, lookup, missing = _values_of(col, key, tables, rows)
        if resolved == "tokens":
            vt = value_tokens(values, sep, counts, first)
            empty[len(templates)] = empty_per_value(values, sep)
            template, table, value_offsets, value_codes = fit_tokens(name, col, vt, empty[len(templates)], counts, order, missing)
            lists[len(templates)] = (value_offsets, value_codes)
            templates.append(template)
            encoders.append((key, _composed(lookup, table)))
            continue
        vocab, table = category_vocabulary(values, counts, first if order == "first-seen" else None, config.item_order)
        if name == EVENT and config.event.target_events:
            target_codes(col, config.event)  # an unknown target event fails here, as locally
        templates.append(Feature(name, "interaction", "cat", np.zeros(0, np.int32), vocab=vocab, column=col.name, missing=missing))
        encoders.append((key, _composed(lookup, table.astype(np.int32))))
    if config.vocab.vocab_from is not None:  # as locally: the --feature ones, then the event feature
        plain = [k for k, t in enumerate(templates) if t.name != EVENT] if config.event.event_col is not None else list(range(len(templates)))
        for group in (plain, [k for k in range(len(templates)) if k not in plain]):
            reused = reuse_templates([templates[k] for k in group], config.vocab)
            for k, (f, table) in zip(group, reused):
                templates[k] = f
                if table is None or f.vocab is None:
                    continue
                if k in lists:  # a token the reused vocabulary drops (index 0) is left out of its list
                    lists[k] = _drop_zeros(lists[k][0], table[lists[k][1]])
                else:
                    encoders[k] = (encoders[k][0], _composed(encoders[k][1], table))
    shipped = tuple((k, offsets, codes.astype(np.int32)) for k, (offsets, codes) in sorted(lists.items()))
    return FeaturePlan(tuple(templates), tuple(encoders), shipped, tuple(empty[k] for k, _, _ in shipped))


def fit_tokens(
    name: str, col: Column, vt: ValueTokens, empties: np.ndarray, counts: np.ndarray, order: str, missing: int
) -> tuple[Feature, np.ndarray, np.ndarray, np.ndarray]:
    """A token feature fitted from its distinct values' tokens and kept rows (the local ``_tokens``):
    (its template, the lookup value code -> value index 1.. (0 missing), and the CSR table value
    index -> token indices, index 0 an empty list)."""
    vocab, table = category_vocabulary(vt.tokens, vt.counts, vt.first if value_order(order) == "first-seen" else None, order)
    token_index = np.maximum(table[vt.codes], 0)  # a token of a value no kept row holds: never gathered
    lengths = np.diff(vt.offsets)
    missing += int(counts[lengths == 0].sum())  # a row whose value holds no token is missing, as locally
    empty = int(counts @ empties)
    template = Feature(
        name, "interaction", "tokens", np.zeros(0, np.int32), vocab=vocab, offsets=np.zeros(1, np.int64),
        column=col.name, missing=missing, empty_tokens=empty,
    )
    value_index = np.append(np.arange(1, len(counts) + 1, dtype=np.int32), np.int32(0))  # code -1 -> 0
    return template, value_index, np.concatenate([[0], vt.offsets]).astype(np.int64), token_index.astype(np.int32)


def refit_tokens(
    f: Feature,
    value_offsets: np.ndarray,
    tokens: np.ndarray,
    empties: np.ndarray,
    train: np.ndarray,
    first: np.ndarray | None,
    left: np.ndarray,
    order: str,
) -> tuple[Feature, np.ndarray, np.ndarray]:
    """``--vocab-from-train``: a token feature fitted on every kept row (``f``, without values, and
    its distinct values' lists ``value_offsets`` / ``tokens``, value 0 the missing one; ``empties``
    the empty tokens of values 1..) refitted as the local step fits it on the rows left
    (:func:`~seqprep.steps.features.refit_on`): its tokens' vocabulary from ``train`` (the training
    rows of each value) and ``first`` (their first input position, for ``first-seen``); its missing
    rows, empty tokens and unseen tokens (a token no training row holds leaves its list) from
    ``left`` (the rows left of each value). -> (its template, the lists refitted: offsets, tokens)."""
    assert f.vocab is not None
    value_offsets = np.asarray(value_offsets, dtype=np.int64)
    codes = np.asarray(tokens, dtype=np.int64) - 1  # into the kept rows' vocabulary; -1: no kept row holds it
    kpos = np.zeros(len(train), np.int64) if first is None else first
    vt = counted_tokens(value_offsets, codes, f.vocab.ids, train, kpos)
    vocab, table = category_vocabulary(f.vocab.ids, vt.counts, vt.first if value_order(order) == "first-seen" else None, order)
    refitted = np.maximum(table[codes], 0)  # a token no training row holds (or no kept row: code -1) -> 0
    value = np.repeat(np.arange(len(value_offsets) - 1), np.diff(value_offsets))
    dropped = np.bincount(value[refitted == 0], minlength=len(value_offsets) - 1)
    template = dataclasses.replace(
        f,
        vocab=vocab,
        offsets=None,  # the rows hold their value's index until the lists are gathered
        missing=int(left[np.diff(value_offsets) == 0].sum()),
        empty_tokens=int(left[1:] @ empties),
        unseen=int(left @ dropped),
        fit="train",
    )
    offsets, kept = _drop_zeros(value_offsets, refitted)
    return template, offsets, kept.astype(np.int32)


def _drop_zeros(offsets: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = codes != 0
    kept = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept[1:])
    return kept[offsets], codes[keep]


def expand_lists(client: Any, futures: list[Any], plan: FeaturePlan) -> list[Any]:
    """The parts (futures, user order) with each token feature's lists gathered from its value
    indices, on the parts' workers."""
    if not plan.lists:
        return futures
    shared = client.scatter(plan.lists, broadcast=True, hash=False)
    return [client.submit(_with_lists, f, shared, pure=False) for f in futures]


def _with_lists(part: dict[str, Any], lists: tuple[tuple[int, np.ndarray, np.ndarray], ...]) -> dict[str, Any]:
    features = list(part["features"])
    for k, value_offsets, tokens in lists:
        offsets, flat = gather_lists(features[k].values, value_offsets, tokens)
        features[k] = dataclasses.replace(features[k], values=flat, offsets=offsets)
    return {**part, "features": tuple(features)}


def reuse_templates(templates: list[Feature], vocab: VocabOptions) -> list[tuple[Feature, np.ndarray | None]]:
    """``--vocab-from``: each feature fitted here (without values; its vocabulary's counts are those
    of the rows) with the earlier build's vocabulary, as the local
    :func:`~seqprep.steps.features.reuse_features` encodes it, and the int32 table fitted index ->
    reused index (0 -> 0; None for ``num``). The local step runs on a probe whose values are every
    fitted index once; the reused vocabulary's counts are then the rows' per reused index."""
    if not templates:
        return []
    probes = tuple(
        dataclasses.replace(f, values=np.arange(len(f.vocab) + 1, dtype=np.int32), offsets=None) if f.vocab is not None else f
        for f in templates
    )
    out = []
    for f, r in zip(templates, reuse_features(probes, vocab)):
        if f.vocab is None or r.vocab is None:
            out.append((dataclasses.replace(r, values=f.values, offsets=f.offsets), None))
            continue
        size = len(r.vocab) + 1 + (r.vocab.oov_idx is not None)
        weights = np.concatenate([[0], f.vocab.counts]).astype(np.float64)
        counts = np.bincount(r.values, weights=weights, minlength=size)[1 : len(r.vocab) + 1].astype(np.int64)
        reused = Vocabulary(ids=r.vocab.ids, counts=counts, start=1, oov_idx=r.vocab.oov_idx)
        out.append((dataclasses.replace(r, values=f.values, offsets=f.offsets, vocab=reused), r.values.astype(np.int32)))
    return out


def _empty(timestamps_dtype: Any) -> Sequences:
    return Sequences(
        offsets=np.zeros(1, np.int64),
        items=np.zeros(0, np.int32),
        timestamps=np.zeros(0, timestamps_dtype),
        ratings=None,
    )


def time_values(
    part: dict[str, Any], specs: tuple[tuple[str, int | None], ...], unit: str, top: float, train: bool = False
) -> list[Any]:
    """One part's derived time features, before any vocabulary (on its worker): per feature its
    float32 values (``num``) or (kind, values, distinct values, their counts and first positions in
    the rows fitted on, their counts in every row). ``train``: fitted on the part's TRAIN rows
    (``--vocab-from-train``: the part carries its decided ``split``), else on every row."""
    seqs = part_sequences(part)
    rows = np.flatnonzero(part["split"] == TRAIN) if train else None
    out = []
    for name, k in specs:
        kind, values, rule = time_feature_values(name, k, seqs, unit, top)
        if kind == "num":
            out.append((kind, values, rule, None, None, None, None))
            continue
        ids, first, inverse, counts = np.unique(values, return_index=True, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1).astype(np.int32)
        every = counts.astype(np.int64)
        if rows is not None:
            counts = np.bincount(inverse[rows], minlength=len(ids))
            first = np.full(len(ids), _NO_POS, np.int64)
            np.minimum.at(first, inverse[rows], rows)
        out.append((kind, inverse, rule, ids.astype(np.int64), counts.astype(np.int64), first.astype(np.int64), every))
    return out


def _facts(values: list[Any]) -> list[Any]:
    return [None if v[0] == "num" else (v[3], v[4], v[5], v[6]) for v in values]


def fit_time_features(
    client: Any, futures: list[Any], config: BuildConfig, unit: str, top: float, lengths: np.ndarray
) -> list[Any]:
    """The parts with their ``--time-feature`` features (futures, user order): computed per part,
    each categorical one's vocabulary fitted from the parts' counts on the client (as the local
    ``derive_time_features``; ``--vocab-from-train``: on the TRAIN rows, a value only held-out
    rows hold is 0 and counted ``unseen``, as :func:`~seqprep.steps.features.refit_on` does), the
    parts' values then mapped to indices on their workers."""
    specs = tuple(config.feature.time_specs())
    if not specs:
        return futures
    # a log whose raw timestamps are not epoch seconds fails here, as locally
    kinds = [time_feature_values(name, k, _empty(np.float64), unit, top) for name, k in specs]
    train = config.split.vocab_from_train
    values = [client.submit(time_values, f, specs, unit, top, train, pure=False) for f in futures]
    facts = client.gather(client.map(_facts, values))
    starts = np.concatenate([[0], np.cumsum(lengths)])[:-1]  # each part's first position in the sequences
    templates, tables = [], []
    for j, ((name, _), (kind, _, rule)) in enumerate(zip(specs, kinds)):
        if kind == "num":
            templates.append(Feature(name, "derived", "num", np.zeros(0, np.float32), column=rule))
            tables.append(None)
            continue
        per_part = [f[j] for f in facts]
        ids = np.unique(np.concatenate([p[0] for p in per_part])) if per_part else np.zeros(0, np.int64)
        counts = np.zeros(len(ids), np.int64)
        every = np.zeros(len(ids), np.int64)
        first = np.full(len(ids), _NO_POS, np.int64)
        for start, (pids, pcounts, pfirst, pevery) in zip(starts, per_part):
            at = np.searchsorted(ids, pids)
            counts[at] += pcounts
            every[at] += pevery
            first[at] = np.minimum(first[at], np.where(pfirst == _NO_POS, _NO_POS, start + pfirst))  # (_NO_POS: no fit row)
        vocab, table = category_vocabulary(
            pa.array(ids), counts, first if value_order(config.item_order) == "first-seen" else None, config.item_order
        )
        table = np.maximum(table[:-1], 0).astype(np.int32)  # a value no fit row holds: 0
        fit = dict(unseen=int(every[table == 0].sum()), fit="train") if train else {}
        templates.append(Feature(name, "derived", "cat", np.zeros(0, np.int32), vocab=vocab, column=rule, **fit))  # type: ignore[arg-type]
        tables.append((ids, table))
    if config.vocab.vocab_from is not None:
        for j, (f, reuse) in enumerate(reuse_templates(templates, config.vocab)):
            templates[j] = f
            if reuse is not None:
                tables[j] = (tables[j][0], reuse[tables[j][1]])
    shared = client.scatter(list(zip(templates, tables)), broadcast=True, hash=False)
    return [client.submit(_with_time_features, f, v, shared, pure=False) for f, v in zip(futures, values)]


def _with_time_features(part: dict[str, Any], values: list[Any], fitted: list[Any]) -> dict[str, Any]:
    derived = []
    for v, (template, t) in zip(values, fitted):
        kind, data, pids = v[0], v[1], v[3]
        if kind == "num":
            derived.append(dataclasses.replace(template, values=data))
            continue
        ids, table = t
        derived.append(dataclasses.replace(template, values=table[np.searchsorted(ids, pids)][data]))
    return {**part, "features": tuple(part.get("features", ())) + tuple(derived)}


def templates_of(part: dict[str, Any]) -> tuple[Feature, ...]:
    """A part's features without their values (what meta.json and the vocabulary files need)."""
    return tuple(dataclasses.replace(f, values=f.values[:0]) for f in part.get("features", ()))


def events_meta(
    config: BuildConfig, templates: tuple[Feature, ...], counts: list[dict[str, np.ndarray]]
) -> dict[str, Any]:
    """meta.json's ``events`` from the parts' rows per index of the ``event`` feature."""
    f = next(f for f in templates if f.name == EVENT)
    assert f.vocab is not None
    total = np.sum([c[EVENT] for c in counts], axis=0) if counts else np.zeros(len(f.vocab) + 1, np.int64)
    probe = dataclasses.replace(
        _empty(np.int64), features=(dataclasses.replace(f, values=np.arange(len(f.vocab) + 1, dtype=np.int32)),)
    )
    wanted = target_positions(probe, config.event)  # per index: a target event (None: every one)
    targets = int(total.sum() if wanted is None else total[wanted].sum())
    return events_meta_counted(f.vocab, total, config.event, targets)
