"""Multi-behaviour logs (``--event-col``, ``--target-events``, ``--kcore-on``).

The event column becomes the categorical feature ``event`` of the sequences (its own vocabulary,
as every ``cat`` feature). Target events are what a model predicts: the split's targets
(leave-one-out: the last and second-last *target* event of each user; a time split: target events
in [T1, T2) and from T2), Caser's window targets and the sampled negatives use target events
only, while histories keep every event. Without ``--target-events`` every event is a target (as
without ``--event-col``). ``--kcore-on target``: k-core counts target events only (and drops every
row of a user or item below its bound, whatever the event).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import EventOptions
from ..errors import InputError
from ..io.sniff import ColumnRequest
from ..model import Column, Feature, Interactions, Sequences
from ..vocab import Vocabulary
from .features import encode_column

__all__ = ["EVENT", "event_feature", "event_requests", "event_counts", "events_meta", "events_meta_counted", "target_codes", "target_positions", "target_rows"]

EVENT = "event"  # the feature's name


def event_requests(opts: EventOptions) -> tuple[ColumnRequest, ...]:
    return () if opts.event_col is None else (ColumnRequest(opts.event_col, "text", "--event-col"),)


def _text(values: pa.Array) -> pa.Array:
    return values if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) else values.cast(pa.string())


def target_codes(col: Column, opts: EventOptions) -> np.ndarray:
    """The codes of the target events in the column's dictionary; no target event at all is an error
    (a typo, most likely: it names the events there are)."""
    text = _text(col.values)
    hit = pc.is_in(text, value_set=pa.array(list(opts.target_events), pa.string())).to_numpy(zero_copy_only=False)
    if not hit.any():
        listing = ", ".join(sorted(str(v) for v in text.to_pylist() if v is not None)[:12])
        msg = f"--target-events {','.join(opts.target_events)!r}: no such event in column {opts.event_col!r}; its events are {listing}"
        raise InputError(msg)
    return np.flatnonzero(hit)


def target_rows(inter: Interactions, opts: EventOptions) -> np.ndarray | None:
    """Per kept row, whether it is a target event (None: every row is)."""
    if opts.event_col is None or not opts.target_events:
        return None
    col = inter.column(opts.event_col)
    assert col.codes is not None
    return np.isin(col.codes, target_codes(col, opts))


def event_feature(inter: Interactions, opts: EventOptions, order: str) -> tuple[Feature, ...]:
    """The ``event`` feature of the kept rows (none without ``--event-col``): the column encoded as
    ``--feature COL:cat`` encodes one (:func:`~seqprep.steps.features.encode_column`)."""
    if opts.event_col is None:
        return ()
    feature = encode_column(EVENT, inter.column(opts.event_col), "cat", None, order)
    if opts.target_events:
        target_codes(inter.column(opts.event_col), opts)  # fails early on an unknown target
    return (feature,)


def target_positions(seqs: Sequences, opts: EventOptions) -> np.ndarray | None:
    """Per position of the sequences, whether it is a target event (None: every position is)."""
    if opts.event_col is None or not opts.target_events:
        return None
    f = next(f for f in seqs.features if f.name == EVENT)
    assert f.vocab is not None
    wanted = np.flatnonzero(pc.is_in(_text(f.vocab.ids), value_set=pa.array(list(opts.target_events))).to_numpy(zero_copy_only=False))
    return np.isin(f.values, wanted + f.vocab.start)


def events_meta(seqs: Sequences, opts: EventOptions, targets: np.ndarray | None) -> dict[str, Any]:
    """meta.json's ``events``: the column, the rows of each event in the sequences, the targets."""
    f = next(f for f in seqs.features if f.name == EVENT)
    assert f.vocab is not None
    return events_meta_counted(f.vocab, event_counts(f), opts, int(len(f.values) if targets is None else targets.sum()))


def event_counts(f: Feature) -> np.ndarray:
    """The positions of each index of the ``event`` feature (0: missing). A vocabulary fitted on the
    kept rows counted them already, and the sequences hold every kept row: those counts, when they add
    up to the positions (no pass over them); else (a reused or training-fitted vocabulary) counted."""
    assert f.vocab is not None
    vocab = f.vocab
    if f.fit == "kept" and f.unseen == 0 and vocab.start == 1 and len(vocab.counts) == len(vocab):
        counts = np.concatenate([np.array([f.missing], np.int64), np.asarray(vocab.counts, np.int64)])
        if int(counts.sum()) == len(f.values):
            return counts
    return np.bincount(f.values, minlength=len(vocab) + 1)


def events_meta_counted(vocab: Vocabulary, counts: np.ndarray, opts: EventOptions, target_rows: int) -> dict[str, Any]:
    """:func:`events_meta` from the rows per index of the ``event`` feature (0: missing) and the
    target rows: the form an engine has after adding up its parts' counts."""
    per_event = {str(v): int(c) for v, c in zip(vocab.ids.to_pylist(), counts[1:])}
    return {
        "column": opts.event_col,
        "feature": EVENT,
        "rows": per_event,
        "missing": int(counts[0]),
        "target_events": list(opts.target_events) or sorted(per_event),
        "target_rows": target_rows,
        "kcore_on": opts.kcore_on,
    }
