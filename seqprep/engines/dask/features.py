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

from ...config import BuildConfig
from ...errors import ConfigError
from ...model import Column, Feature, Sequences
from ...steps.events import EVENT, events_meta_counted, target_codes, target_positions
from ...steps.features import category_vocabulary, number_table, resolve_kind, time_feature_values, value_order
from .columns import LogColumns
from .write import part_sequences

__all__ = ["FeaturePlan", "counted_columns", "events_meta", "fit_features", "fit_time_features", "templates_of"]

_NO_POS = np.iinfo(np.int64).max


def _specs(config: BuildConfig) -> list[tuple[str, str, Any, Any]]:
    """(name, column, kind, sep) of every interaction feature, the event column's last (the local order)."""
    specs = list(config.feature.specs())
    if config.event.event_col is not None:
        specs.append((EVENT, config.event.event_col, "cat", None))
    return specs


def _refuse(what: str) -> ConfigError:
    return ConfigError(f"--engine dask does not support {what} yet; run this build with --engine local")


def _kind(columns: LogColumns, name: str, column: str, kind: Any) -> tuple[int, Column, str]:
    k = columns.index(column)
    col = columns.stub(k)
    resolved = resolve_kind(col, kind)
    if resolved == "tokens":
        raise _refuse(f"token-list features (--feature {name})")
    if resolved == "cat" and col.kind == "number":
        raise _refuse(f"a categorical feature of a number column (--feature {name})")
    return k, col, resolved


def counted_columns(config: BuildConfig, columns: LogColumns) -> tuple[tuple[str, int], ...]:
    """The frame columns whose count tables the features need: (column, dictionary size; -1: numbers)."""
    out: dict[str, int] = {}
    for name, column, kind, _ in _specs(config):
        k, col, _ = _kind(columns, name, column, kind)
        out[columns.key(k)] = -1 if col.kind == "number" else len(col.values)
    return tuple(out.items())


@dataclasses.dataclass(frozen=True)
class FeaturePlan:
    """The interaction features fitted on the client: each without values (its vocabulary, counts of
    missing values), and per feature its frame column and table (code -> value; None: the column's
    numbers as float32), what each partition sends (:func:`~seqprep.engines.dask.partitions.split_rows`)."""

    templates: tuple[Feature, ...] = ()
    encoders: tuple[tuple[str, np.ndarray | None], ...] = ()


def fit_features(config: BuildConfig, columns: LogColumns, tables: dict[str, Any]) -> FeaturePlan:
    """The ``--feature`` and ``--event-col`` features from the kept rows' count tables, as the local
    ``encode_features`` and ``event_feature`` fit them."""
    if not _specs(config):
        return FeaturePlan()
    if config.vocab.vocab_from is not None:
        raise _refuse("--vocab-from with --feature/--event-col")
    templates, encoders = [], []
    for name, column, kind, _ in _specs(config):
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
        counts = tables[f"{key}_kept"]
        first = tables[f"{key}_kpos"][1:] if value_order(config.item_order) == "first-seen" else None
        vocab, table = category_vocabulary(col.values, counts[1:], first, config.item_order)
        if name == EVENT and config.event.target_events:
            target_codes(col, config.event)  # an unknown target event fails here, as locally
        templates.append(
            Feature(
                name, "interaction", "cat", np.zeros(0, np.int32), vocab=vocab, column=col.name, missing=int(counts[0])
            )
        )
        encoders.append((key, table.astype(np.int32)))
    return FeaturePlan(tuple(templates), tuple(encoders))


def _empty(timestamps_dtype: Any) -> Sequences:
    return Sequences(
        offsets=np.zeros(1, np.int64),
        items=np.zeros(0, np.int32),
        timestamps=np.zeros(0, timestamps_dtype),
        ratings=None,
    )


def time_values(part: dict[str, Any], specs: tuple[tuple[str, int | None], ...], unit: str, top: float) -> list[Any]:
    """One part's derived time features, before any vocabulary (on its worker): per feature its
    float32 values (``num``) or (kind, values, distinct values, their counts, first positions)."""
    seqs = part_sequences(part)
    out = []
    for name, k in specs:
        kind, values, rule = time_feature_values(name, k, seqs, unit, top)
        if kind == "num":
            out.append((kind, values, rule, None, None, None))
            continue
        ids, first, inverse, counts = np.unique(values, return_index=True, return_inverse=True, return_counts=True)
        out.append(
            (
                kind,
                inverse.reshape(-1).astype(np.int32),
                rule,
                ids.astype(np.int64),
                counts.astype(np.int64),
                first.astype(np.int64),
            )
        )
    return out


def _facts(values: list[Any]) -> list[Any]:
    return [None if v[0] == "num" else (v[3], v[4], v[5]) for v in values]


def fit_time_features(
    client: Any, futures: list[Any], config: BuildConfig, unit: str, top: float, lengths: np.ndarray
) -> list[Any]:
    """The parts with their ``--time-feature`` features (futures, user order): computed per part,
    each categorical one's vocabulary fitted from the parts' counts on the client (as the local
    ``derive_time_features``), the parts' values then mapped to indices on their workers."""
    specs = tuple(config.feature.time_specs())
    if not specs:
        return futures
    if config.vocab.vocab_from is not None:
        raise _refuse("--vocab-from with --time-feature")
    for name, k in specs:  # a log whose raw timestamps are not epoch seconds fails here, as locally
        time_feature_values(name, k, _empty(np.float64), unit, top)
    values = [client.submit(time_values, f, specs, unit, top, pure=False) for f in futures]
    facts = client.gather(client.map(_facts, values))
    starts = np.concatenate([[0], np.cumsum(lengths)])[:-1]  # each part's first position in the sequences
    tables = []
    for j, (name, _) in enumerate(specs):
        per_part = [f[j] for f in facts]
        if not per_part or per_part[0] is None:
            tables.append(None)
            continue
        ids = np.unique(np.concatenate([p[0] for p in per_part])) if per_part else np.zeros(0, np.int64)
        counts = np.zeros(len(ids), np.int64)
        first = np.full(len(ids), _NO_POS, np.int64)
        for start, (pids, pcounts, pfirst) in zip(starts, per_part):
            at = np.searchsorted(ids, pids)
            counts[at] += pcounts
            first[at] = np.minimum(first[at], start + pfirst)
        vocab, table = category_vocabulary(
            pa.array(ids), counts, first if value_order(config.item_order) == "first-seen" else None, config.item_order
        )
        tables.append((ids, vocab, table[:-1].astype(np.int32)))
    shared = client.scatter(tables, broadcast=True, hash=False)
    return [client.submit(_with_time_features, f, v, shared, specs, pure=False) for f, v in zip(futures, values)]


def _with_time_features(
    part: dict[str, Any], values: list[Any], tables: list[Any], specs: tuple[tuple[str, int | None], ...]
) -> dict[str, Any]:
    derived = []
    for (name, _), v, t in zip(specs, values, tables):
        kind, data, rule, pids = v[0], v[1], v[2], v[3]
        if kind == "num":
            derived.append(Feature(name, "derived", "num", data, column=rule))
            continue
        ids, vocab, table = t
        indices = table[np.searchsorted(ids, pids)][data]
        derived.append(Feature(name, "derived", "cat", indices, vocab=vocab, column=rule))
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
