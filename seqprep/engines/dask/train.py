"""``--vocab-from-train`` on a Dask cluster, by the range steps of :mod:`seqprep.steps.train_fit`
(each output part holds whole users, so it is a range):

1. the parts hold item codes and their rows' input positions; each part's split is decided on its
   worker (:func:`seqprep.engines.dask.split.decide`, users numbered on every kept row);
2. each part tallies its TRAIN rows (:func:`~seqprep.steps.train_fit.train_tally`: distinct item
   codes, counts, first positions); the client fits the items on the tallies and broadcasts the
   code -> index table;
3. each part counts its rows of unseen items and its rows left per user; the client renumbers the
   users (:func:`~seqprep.steps.train_fit.users_after`) and broadcasts each old user's new index;
4. each part sends its rows left, cut by new part, to the new parts (compact integer and float
   arrays); a new part puts its users in index order (stably: each user's rows stay in their time
   order), and recomputes what depends on the rows (ties, sessions; ``--split days``' held-out
   first items). When the new order keeps the old one (every order but ``--user-order
   first-seen`` with a dropped first row), each new part is made from one old part and nothing
   else moves.

The new parts carry their decided split (``split``): :func:`decided` turns them into the split
decisions that :func:`seqprep.engines.dask.split.prepare` reads.

Features, as the local :func:`~seqprep.steps.splits.fit_on_train` refits them: a categorical
``--feature``'s vocabulary from the parts' training tallies by value index; a token feature's rows
hold their distinct value's index until then, its tokens are fitted from the training rows per
distinct value (:func:`~seqprep.engines.dask.features.refit_tokens`) and the new parts gather
their lists. What is fitted on the final rows (``--time-feature``) is fitted on the new parts'
TRAIN rows afterwards (:func:`~seqprep.engines.dask.features.fit_time_features`); what is keyed by
a session's first user (``--session-col``) is found on the parts of every kept row before the
drop, as locally (:func:`~seqprep.engines.dask.keys.session_users_of`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from ...config import BuildConfig
from ...kernels import csr_offsets, order_counted, remap_table, tie_stats
from ...kernels.filters import session_ids
from ...kernels.sequences import grouped_by_user
from ...kernels.splits import TRAIN, row_of
from ...model import Feature, Log
from ...steps import splits, train_fit
from ...steps.counts import NEVER
from ...steps.events import EVENT, target_positions
from ...steps.features import value_order
from ...steps.sessions import session_lengths
from ...vocab import Vocabulary
from .features import FeaturePlan, expand_lists, refit_tokens, templates_of
from .write import part_sequences

__all__ = ["decided", "fit_on_train", "plan_after"]


def _refitted(f: Feature) -> bool:
    """Whether ``f`` is a ``--feature`` whose vocabulary is refitted on the training rows (the event
    column's keeps the one of every kept row, as locally)."""
    return f.vocab is not None and f.name != EVENT


def _sizes(templates: tuple[Feature, ...], plan: FeaturePlan) -> tuple[int, ...]:
    """Per feature of the parts the size of its index space: a categorical one's vocabulary and 0, a
    token one's distinct values and 0 (its rows hold their value's index until it is refitted)."""
    values = {k: len(offsets) - 1 for k, offsets, _ in plan.lists}
    return tuple(values.get(k, 0 if f.vocab is None else len(f.vocab) + 1) for k, f in enumerate(templates))


def _tally(
    part: dict[str, Any], decision: tuple[np.ndarray | None, dict[str, Any]], order: str, sizes: tuple[int, ...]
) -> tuple[train_fit.TrainTally, list[Any]]:
    """The part's training tallies: the items' and, per refitted feature, its values' (counts and
    first positions by index; a token feature's by distinct value)."""
    split = decision[0]
    assert split is not None
    train = split == TRAIN
    features = []
    for f, size in zip(part.get("features", ()), sizes):
        if _refitted(f):
            values = f.values[train].astype(np.int64)
            first = np.full(size, NEVER, dtype=np.int64)
            np.minimum.at(first, values, part["pos"][train])
            features.append((np.bincount(values, minlength=size).astype(np.int64), first))
    return train_fit.train_tally(part["items"], split, order, part["pos"]), features


def _left(
    part: dict[str, Any], decision: tuple[np.ndarray | None, dict[str, Any]], table: np.ndarray, order: str, sizes: tuple[int, ...]
) -> tuple[dict[str, int], train_fit.LeftTally, list[Any]]:
    """The part's rows of unseen items by part, its rows left per user and, per feature, the rows
    left per value index (a token feature: per distinct value; a number feature: its missing
    values left)."""
    keep = table[part["items"]] >= 0
    assert decision[0] is not None
    left = []
    for f, size in zip(part.get("features", ()), sizes):
        if f.vocab is None:
            left.append(int(np.isnan(f.values[keep]).sum()))
        else:
            left.append(np.bincount(f.values[keep], minlength=size).astype(np.int64))
    return (
        train_fit.unseen_counts(~keep, decision[0]),
        train_fit.left_tally(part["offsets"], keep, order, part["pos"]),
        left,
    )


def _features_after(
    templates: tuple[Feature, ...], train: list[list[Any]], left: list[list[Any]], order: str, plan: FeaturePlan = FeaturePlan()
) -> tuple[tuple[tuple[Feature, np.ndarray | None], ...], FeaturePlan]:
    """Per feature of the parts: (its template on the rows left, old index -> new one or None), and
    the token features' lists refitted (a :class:`~seqprep.engines.dask.features.FeaturePlan`:
    what :func:`~seqprep.engines.dask.features.expand_lists` gathers). A ``--feature``'s missing
    values are those of the rows left; a categorical one's vocabulary is fitted on the training
    rows as :func:`~seqprep.steps.features.refit_on` fits it (a value only held-out rows hold
    becomes 0, counted as ``unseen``; a token leaves its list)."""
    out = []
    lists = {k: (offsets, codes) for k, offsets, codes in plan.lists}
    empties = dict(zip((k for k, _, _ in plan.lists), plan.empties))
    refitted_lists = []
    k = 0  # index among the refitted features
    for j, f in enumerate(templates):
        rows_left = sum(part[j] for part in left)
        if f.name == EVENT:  # its vocabulary fitted on every kept row, its counts those of the rows left
            out.append((train_fit.recounted(f, rows_left), None))
            continue
        if f.vocab is None:
            out.append((dataclasses.replace(f, missing=int(rows_left)), None))
            continue
        counts = sum(part[k][0] for part in train)
        first = np.minimum.reduce([part[k][1] for part in train]) if train else None
        k += 1
        if j in lists:  # per distinct value (0: missing): its rows left and training rows
            value_offsets, tokens = lists[j]
            template, offsets, codes = refit_tokens(f, value_offsets, tokens, empties[j], counts, first, rows_left, order)
            out.append((template, None))
            refitted_lists.append((j, offsets, codes))
            continue
        chosen, ordered = order_counted(
            counts[1:], f.vocab.ids, value_order(order), None if first is None else first[1:]
        )  # type: ignore[arg-type]
        table = np.concatenate([[0], np.maximum(remap_table(chosen, len(f.vocab), start=1), 0)]).astype(np.int32)
        unseen = int(rows_left[1:][table[1:] == 0].sum())
        vocab = Vocabulary(ids=f.vocab.ids.take(pa.array(chosen, pa.int64())), counts=ordered, start=1)
        out.append((dataclasses.replace(f, vocab=vocab, missing=int(rows_left[0]), unseen=unseen, fit="train"), table))
    return tuple(out), FeaturePlan(lists=tuple(refitted_lists))


def _send(
    part: dict[str, Any],
    decision: tuple[np.ndarray | None, dict[str, Any]],
    table: np.ndarray,
    new_index: np.ndarray,
    bounds: np.ndarray,
    refits: tuple[tuple[Feature, np.ndarray | None], ...] = (),
) -> list[dict[str, Any]]:
    """One old part's rows left, with their new user index and item index (and features, by
    ``refits``: :func:`_features_after`), cut by new part."""
    split = decision[0]
    assert split is not None
    iidx = table[part["items"]]
    rows = np.flatnonzero(iidx >= 0)
    user = new_index[row_of(part["offsets"])[rows] + part["lo"]]
    cut = np.searchsorted(bounds, user, side="right") - 1
    if len(bounds) > 2 and len(cut) and not bool((cut[1:] >= cut[:-1]).all()):
        by_part = np.argsort(cut, kind="stable")
        rows, user, cut = rows[by_part], user[by_part], cut[by_part]
    ends = csr_offsets(np.bincount(cut, minlength=len(bounds) - 1))
    cols = {
        "uidx": user,
        "items": iidx[rows],
        "timestamps": part["timestamps"][rows],
        "ratings": None if part["ratings"] is None else part["ratings"][rows],
        "split": split[rows],
    }
    features = tuple(
        dataclasses.replace(t, values=f.values[rows] if remap is None else remap[f.values[rows]])
        for f, (t, remap) in zip(part.get("features", ()), refits)
    )
    carried = tuple(c[rows] for c in part.get("carried", ()))
    out = []
    for j in range(len(bounds) - 1):
        sl = slice(int(ends[j]), int(ends[j + 1]))
        out.append(
            {
                **{k: None if v is None else v[sl] for k, v in cols.items()},
                "features": tuple(f.slice(sl.start, sl.stop) for f in features),
                "carried": tuple(c[sl] for c in carried),
            }
        )
    return out


def _joined(chunks: list[dict[str, Any]], key: str) -> Any:
    if chunks[0][key] is None:
        return None
    return np.concatenate([c[key] for c in chunks])


def _make(chunks: list[dict[str, Any]], lo: int, hi: int, gap: float | None, rule: str | None) -> dict[str, Any]:
    """New users ``lo..hi-1`` from the chunks of the old parts: users in index order (stably)."""
    user = np.concatenate([c["uidx"] for c in chunks]).astype(np.int64) - lo
    cols = {k: _joined(chunks, k) for k in ("items", "timestamps", "ratings", "split")}
    features = [
        dataclasses.replace(fs[0], values=np.concatenate([f.values for f in fs]))
        for fs in zip(*(c["features"] for c in chunks))
    ]
    carried = [np.concatenate(cs) for cs in zip(*(c["carried"] for c in chunks))]
    if not grouped_by_user(user):
        order = np.argsort(user, kind="stable")
        cols = {k: None if v is None else v[order] for k, v in cols.items()}
        features = [f.take(order) for f in features]
        carried = [c[order] for c in carried]
        user = user[order]
    offsets = csr_offsets(np.bincount(user, minlength=hi - lo))
    split = cols["split"]
    splits.hold_out_test_starts(offsets, split, {"rule": rule})
    timestamps = cols["timestamps"]
    sids = None if gap is None else session_ids(offsets, timestamps, gap)
    return {
        "lo": lo,
        "hi": hi,
        "offsets": offsets,
        "items": cols["items"].astype(np.int32, copy=False),
        "timestamps": timestamps,
        "ratings": cols["ratings"],
        "ties": tie_stats(offsets, timestamps),
        "session_ids": sids,
        "session_lengths": None if sids is None else session_lengths(offsets, sids),
        "features": tuple(f.widened() for f in features),
        "carried": tuple(carried),
        "pos": None,
        "split": split,
    }


def _getitem(chunks: list[dict[str, Any]], j: int) -> dict[str, Any]:
    return chunks[j]


def fit_on_train(
    client: Any,
    futures: list[Any],
    decisions: list[Any],
    config: BuildConfig,
    users1: Vocabulary,
    user_lookup: np.ndarray,
    log: Log,
    bounds1: list[int],
    new_bounds: Callable[[np.ndarray], list[int]],
    gap: float | None,
    steps: list[dict[str, Any]],
    plan: FeaturePlan = FeaturePlan(),
) -> tuple[Vocabulary, Vocabulary, list[Any], list[int]]:
    """(users, items, the new parts: futures in user order, their user bounds) of the parts ``futures`` (item codes,
    input positions; users ``users1`` numbered on every kept row, ``user_lookup`` their code ->
    index table, ``bounds1`` the parts' user bounds) and their split ``decisions``; ``new_bounds``:
    the user bounds of new parts from the users' counts, when the users change order. meta.json's
    ``vocab_from_train`` step is appended to ``steps``. ``plan``: the features' fit on every kept
    row (a token feature's rows hold their value's index: its lists are refitted here, then gathered)."""
    templates = client.submit(templates_of, futures[0], pure=False).result() if futures else ()
    sizes = _sizes(templates, plan)
    tallies = client.gather(
        [client.submit(_tally, f, d, config.item_order, sizes, pure=False) for f, d in zip(futures, decisions)]
    )
    items, table = train_fit.fit_train_items((t for t, _ in tallies), log.item_ids, config.item_order)
    shared = client.scatter(table, broadcast=True, hash=False)
    lefts = client.gather(
        [client.submit(_left, f, d, shared, config.user_order, sizes, pure=False) for f, d in zip(futures, decisions)]
    )
    steps.append(train_fit.unseen_step(c for c, _, _ in lefts))
    refits, lists = _features_after(templates, [t for _, t in tallies], [t for _, _, t in lefts], config.item_order, plan)
    del tallies
    codes = np.flatnonzero(user_lookup >= 0)
    order1 = np.empty(len(users1), dtype=np.int64)
    order1[user_lookup[codes]] = codes
    users, old = train_fit.users_after(order1, [t for _, t, _ in lefts], log.user_ids, config.user_order)
    del lefts
    new_index = np.full(len(users1), -1, dtype=np.int64)
    new_index[old] = np.arange(len(old))
    cut1 = np.asarray(bounds1, dtype=np.int64)
    if len(old) < 2 or bool((old[1:] > old[:-1]).all()):  # the old order kept: each new part from one old part
        bounds = np.unique(np.searchsorted(old, cut1))
    else:
        bounds = np.asarray(new_bounds(users.counts), dtype=np.int64)
    new_shared = client.scatter(new_index, broadcast=True, hash=False)
    refits = client.scatter(refits, broadcast=True, hash=False) if refits else ()
    sent = [
        client.submit(_send, f, d, shared, new_shared, bounds, refits, pure=False) for f, d in zip(futures, decisions)
    ]
    rule = config.split.rule
    parts = []
    for j in range(len(bounds) - 1):
        a, b = int(bounds[j]), int(bounds[j + 1])
        sources = np.unique(np.searchsorted(cut1, old[a:b], side="right") - 1)  # the old parts holding these users
        chunks = [client.submit(_getitem, sent[int(i)], j, pure=False) for i in sources]
        parts.append(client.submit(_make, chunks, a, b, gap, rule, pure=False))
    return users, items, expand_lists(client, parts, lists), [int(b) for b in bounds]


def _range_facts(part: dict[str, Any], plan: splits.SplitPlan, events: Any) -> dict[str, Any]:
    seqs = part_sequences(part)
    return splits.range_facts(plan, seqs, part["split"], target_positions(seqs, events))


def plan_after(
    client: Any, parts: list[Any], plan1: splits.SplitPlan, config: BuildConfig, num_items: int, user_counts: np.ndarray
) -> splits.SplitPlan:
    """The split's plan on the rows left: the rule and its counts as decided before (``plan1``,
    completed from the first decision), the facts of the new parts."""
    plan = splits.decided_plan(config.split, num_items, plan1.info, csr_offsets(np.asarray(user_counts)))
    facts = client.gather([client.submit(_range_facts, p, plan, config.event, pure=False) for p in parts])
    return plan.with_facts(splits.merge_tallies(facts))


def _decision(part: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    return part["split"], {}


def decided(client: Any, parts: list[Any]) -> list[Any]:
    """The new parts' split, in the form :func:`seqprep.engines.dask.split.prepare` reads."""
    return [client.submit(_decision, p, pure=False) for p in parts]
