"""Evaluation splits, truncation/padding and training inputs: deciding them (writing is in
:mod:`seqprep.output.splits`).

Everything here runs after the sequences exist (or, with ``--vocab-from-train``, decides the split
first and fits the item vocabulary on the training part): the split is a ``part`` array with one
TRAIN/VALID/TEST value per position of the CSR sequences, and every output (train rows, valid/test
rows with their histories, Caser windows, negatives) is gathered from it by index arrays.

Histories are prefixes of the target's own sequence, so no history can hold its own target or
anything with a later timestamp; with ``--split time`` interactions tied with the target's timestamp
are left out of its history as well (strictly earlier times only). Time bounds follow
:mod:`seqprep.timeunits` (dates rounded up to the log's unit, as ``--since`` is).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import BuildConfig, SplitOptions
from ..errors import ConfigError, InputError
from ..kernels import csr_offsets, lookup, padded, remap_table, time_order
from ..kernels.splits import (
    HELD_OUT,
    TEST,
    TRAIN,
    VALID,
    days_parts,
    eval_positions,
    gather_ranges,
    held_out_positions,
    loo_parts,
    ranges_mask,
    row_of,
    sample_negatives,
    sliding_windows,
    tail_ranges,
    time_parts,
    time_quantile,
    users_parts,
    window_positions,
)
from ..model import EvalRows, Extras, Feature, Interactions, Log, Sequences
from ..resources import sort_threads
from ..timeunits import bound_in_unit
from ..vocab import Vocabulary
from .features import encode_features, refit_on
from .vocabularies import ITEM_START, USER_START, fitted, item_order_of, log_dates, user_order_of

__all__ = ["HISTORY_RULE", "TRAIN", "decide_parts", "fit_on_train", "prepare", "sequence_dates"]

HISTORY_RULE = {
    "loo": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "users": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "time": "the user's interactions with a strictly earlier timestamp than the target (ties left out)",
    "days": "the test sequence's items before the target (every prefix of a test sequence is a row)",
}
MAX_HISTORY_ITEMS = 2**29  # ~6 GiB of positions and items while gathering; beyond that ask for --max-len


def sequence_dates(uidx: np.ndarray, inter: Interactions, log: Log, num_users: int) -> np.ndarray:
    """The date of every user index for ``--split days`` (``uidx``: the index of each kept row):
    the UTC day of the user's last row in the log as read (:func:`~seqprep.steps.vocabularies.log_dates`)."""
    by_code, _ = log_dates(log, "--split days")
    dates = np.zeros(num_users, dtype=np.int64)
    dates[uidx] = by_code[inter.user]
    return dates


def decide_parts(
    offsets: np.ndarray,
    times: np.ndarray,
    opts: SplitOptions,
    time_unit: str,
    targets: np.ndarray | None = None,
    dates: np.ndarray | None = None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """(part per position or None without a split, the rule and its resolved parameters for meta.json).

    ``targets``: the positions that may be split targets (``--target-events``; None: every one).
    ``dates``: each row's date (:func:`sequence_dates`), for ``--split days``."""
    rule = opts.rule
    if rule == "loo":
        lengths = np.diff(offsets)
        counts = lengths if targets is None else np.bincount(row_of(offsets)[targets], minlength=len(lengths))
        short = int(((lengths > 0) & (counts < 3)).sum())  # train only: fewer than 3 (target) interactions
        return loo_parts(offsets, targets=targets), {"rule": "loo", "min_interactions": 3, "train_only_users": short}
    if rule == "time":
        if opts.fractions is not None:
            q1, q2 = opts.fractions
            t1, t2 = time_quantile(times, q1), time_quantile(times, q2)
            params: dict[str, Any] = {"quantiles": [q1, q2]}
        else:
            t1 = bound_in_unit(opts.valid_from, "--valid-from", time_unit)
            t2 = bound_in_unit(opts.test_from, "--test-from", time_unit)
            if t2 < t1:
                msg = f"--test-from {opts.test_from} comes before --valid-from {opts.valid_from}; swap them"
                raise ConfigError(msg)
            params = {}
        return time_parts(times, t1, t2, targets), {"rule": "time", **params, "valid_from": t1, "test_from": t2}
    if rule == "days":
        assert opts.fractions is not None and dates is not None
        part, facts = days_parts(offsets, dates, int(opts.fractions[0]))
        iso = {k: str(np.datetime64(facts[k], "D")) for k in ("last_day", "boundary_day")}
        return part, {"rule": "days", "test_days": int(opts.fractions[0]), **facts, **iso}
    if rule == "users":
        fr = opts.fractions
        per_user = users_parts(offsets, fr, opts.seed)
        part = held_out_positions(offsets, per_user, targets)
        short = int((np.diff(offsets) == 1).sum())
        info = {"rule": "users", "fractions": list(fr), "seed": opts.seed, "min_interactions": 2, "train_only_users": short}
        return part, info
    return None, {"rule": None}


def fit_on_train(
    inter: Interactions,
    log: Log,
    config: BuildConfig,
    steps: list[dict[str, Any]],
    features: tuple[Feature, ...] = (),
    targets: np.ndarray | None = None,
) -> tuple[Vocabulary, Vocabulary, Sequences, np.ndarray, dict[str, Any]]:
    """``--vocab-from-train``: decide the split first, fit the item vocabulary on training rows only.

    Order: users are numbered on all kept rows, rows sorted by (user, time) stably, the split decided
    there; the item vocabulary is fitted on the TRAIN rows; held-out rows whose item never occurs in
    training are dropped and counted (step ``vocab_from_train``); then users are renumbered on the
    rows left and everything is encoded and sorted. The features are encoded on the rows left, their
    vocabularies fitted on the TRAIN rows (:func:`~seqprep.steps.features.refit_on`: a value only
    held-out rows hold becomes 0 and is counted as ``unseen``). ``features``: features already
    encoded on ``inter``'s rows (the event column's), kept with their vocabularies, after those;
    ``targets``: the target-event rows the split decides on. Returns (users, items, sequences, part,
    info).
    """
    user_order, user_counts = user_order_of(inter, log, config.user_order)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=USER_START), inter.user)
    order = time_order(uidx, inter.time, threads=sort_threads())
    sorted_targets = None if targets is None else targets[order]
    dates = sequence_dates(uidx, inter, log, len(user_order)) if config.split.rule == "days" else None
    sorted_part, info = decide_parts(
        csr_offsets(user_counts), inter.time[order], config.split, log.time_unit, sorted_targets, dates
    )
    part = np.empty_like(sorted_part)
    part[order] = sorted_part
    del order, sorted_part
    train = part == TRAIN
    if not train.any():
        msg = "the split leaves no training interaction, so --vocab-from-train has no vocabulary; move the split bounds later"
        raise InputError(msg)
    item_order, item_counts = item_order_of(inter, log, config.item_order, uidx, rows=train)
    del uidx
    iidx = lookup(remap_table(item_order, len(log.item_ids), start=ITEM_START), inter.item)
    unseen = iidx < 0
    n_unseen = int(unseen.sum())
    steps.append(
        {
            "step": "vocab_from_train",
            "rows_before": len(inter),
            "rows_removed": n_unseen,
            "rows_after": len(inter) - n_unseen,
            "valid_targets_dropped": int((unseen & (part == VALID)).sum()),
            "test_targets_dropped": int((unseen & (part == TEST)).sum()),
            "history_rows_dropped": int((unseen & (part == HELD_OUT)).sum()),
        }
    )
    if n_unseen:
        keep = ~unseen
        inter, part, iidx = inter.take(keep), part[keep], iidx[keep]
        features = tuple(f.take(keep) for f in features)
    # the --feature columns are encoded on the rows left, their vocabularies fitted on the TRAIN rows
    # (no leak from held-out rows); ``features`` (the event column's) keep their vocabularies
    encoded = encode_features(inter, config.feature, config.item_order)
    features = tuple(refit_on(f, part == TRAIN, config.item_order) for f in encoded) + features
    if config.user_order == "date":  # the dates stay those of the rows before the unseen items left
        left = np.bincount(inter.user, minlength=len(log.user_ids))
        user_order = user_order[left[user_order] > 0]
        user_counts = left[user_order]
    else:
        user_order, user_counts = user_order_of(inter, log, config.user_order)
    users = fitted(log.user_ids, user_order, user_counts, USER_START)
    items = fitted(log.item_ids, item_order, item_counts, ITEM_START)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=USER_START), inter.user)
    order = time_order(uidx, inter.time, threads=sort_threads())
    seqs = Sequences(
        offsets=csr_offsets(user_counts),
        items=iidx[order],
        timestamps=inter.time[order],
        ratings=None if inter.rating is None else inter.rating[order],
        features=tuple(f.take(order).widened() for f in features),
    )
    part = part[order]
    if info["rule"] == "days":  # a test sequence's first item is history only, wherever it starts now
        starts = seqs.offsets[:-1][np.diff(seqs.offsets) > 0]
        part[starts[part[starts] == TEST]] = HELD_OUT
    return users, items, seqs, part, info


def prepare(
    seqs: Sequences,
    items: Vocabulary,
    part: np.ndarray | None,
    info: dict[str, Any],
    config: BuildConfig,
    targets: np.ndarray | None = None,
) -> tuple[Sequences, Extras | None, dict[str, Any]]:
    """(sequences to write, the extra outputs, meta.json additions) for the split options of ``config``.

    ``targets``: the positions that are target events (``--target-events``): Caser's window targets
    and the negatives (the items a user is known to have, the popularity) use them only."""
    opts = config.split
    if part is None and opts.max_len is None and opts.windows is None:
        return seqs, None, {}
    meta: dict[str, Any] = {}
    train_users, train_offsets, train_items, train = _training_part(seqs, part)
    train_features = seqs.features if train is None else tuple(f.take(train) for f in seqs.features)
    fields: dict[str, Any] = {}
    rule = info.get("rule")
    if rule is not None:
        assert part is not None and train is not None
        fields.update(train_user_idx=train_users, train_offsets=train_offsets, train_items=train_items)
        fields["train_timestamps"] = seqs.timestamps[train]
        fields["train_features"] = train_features
        evals = _held_out(seqs, part, rule, opts.max_len)
        if opts.eval_negatives:
            evals, meta["negatives"] = _with_negatives(seqs, train_items, evals, len(items), opts, targets, train)
        fields.update(evals)
        meta["split"] = _split_meta(info, opts, part, train, train_users, evals)
    if opts.windows is not None:
        train_targets = None if targets is None else (targets if train is None else targets[train])
        fields["windows"], fields["window_features"], meta["windows"] = _windows(
            train_items, train_offsets, train_users, train_features, opts, rule, train_targets
        )
    if opts.max_len is not None:
        fields["padded"] = padded(seqs.items.astype(np.int32, copy=False), seqs.offsets, opts.max_len, side=opts.pad)
        fields["padded_features"] = tuple(f.padded(seqs.offsets, opts.max_len, opts.pad) for f in seqs.features)
        meta["truncation"] = _truncation_meta(seqs.offsets, opts)
        if opts.truncate:
            seqs = _truncate(seqs, opts.max_len)
    return seqs, Extras(**fields, max_len=opts.max_len, pad=opts.pad), meta


def _training_part(
    seqs: Sequences, part: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(users with training rows, their CSR offsets, their items, the TRAIN mask or None without a
    split: then the whole sequences are the training part, for ``--windows``)."""
    offsets = seqs.offsets
    if part is None:
        train = None
        train_counts = np.diff(offsets)
        train_items = seqs.items.astype(np.int32, copy=False)
    else:
        train = part == TRAIN
        cum = np.zeros(len(train) + 1, dtype=np.int64)
        np.cumsum(train, out=cum[1:])
        train_counts = cum[offsets[1:]] - cum[offsets[:-1]]
        del cum
        train_items = seqs.items[train].astype(np.int32, copy=False)
    train_users = np.flatnonzero(train_counts).astype(np.int32)
    return train_users, csr_offsets(train_counts[train_users]), train_items, train


def _held_out(seqs: Sequences, part: np.ndarray, rule: str, max_len: int | None) -> dict[str, EvalRows]:
    """The valid and test rows with their histories."""
    pos, start, length = eval_positions(seqs.offsets, seqs.timestamps, part, strict_time=rule == "time")
    which = part[pos]
    evals = {}
    for name, code in (("valid", VALID), ("test", TEST)):
        sel = which == code
        evals[name] = _eval_rows(seqs, pos[sel], start[sel], length[sel], rule, max_len)
    return evals


def _split_meta(
    info: dict[str, Any],
    opts: SplitOptions,
    part: np.ndarray,
    train: np.ndarray,
    train_users: np.ndarray,
    evals: dict[str, EvalRows],
) -> dict[str, Any]:
    """meta.json's ``split``: the rule, its parameters, the history rule and the sizes of each part."""
    rule = info["rule"]
    sizes: dict[str, Any] = {
        "train": {"users": len(train_users), "interactions": int(train.sum())},
        **{
            name: {
                "rows": len(ev),
                "users": int(np.count_nonzero(np.bincount(ev.user_idx, minlength=1))),
                "empty_history": int((np.diff(ev.history_offsets) == 0).sum()),
                "history_items": int(ev.history_offsets[-1]),
            }
            for name, ev in evals.items()
        },
    }
    if rule == "users":
        sizes["held_out_history_interactions"] = int((part == HELD_OUT).sum())
    return {
        **info,
        "history": HISTORY_RULE[rule],
        "history_max_len": opts.max_len,
        "vocab_from_train": opts.vocab_from_train,
        "sizes": sizes,
    }


def _windows(
    train_items: np.ndarray,
    train_offsets: np.ndarray,
    train_users: np.ndarray,
    train_features: tuple[Feature, ...],
    opts: SplitOptions,
    rule: str | None,
    targets: np.ndarray | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[tuple[Feature, Feature], ...], dict[str, Any]]:
    """Caser's training windows (inputs, targets, users), each feature cut into the same windows
    (inputs and targets cells), and meta.json's ``windows``; with ``targets`` (``--target-events``)
    only the windows whose targets are all target events."""
    L, T = opts.window_shape  # type: ignore[misc]
    x, y, r = sliding_windows(train_items, train_offsets, L, T, targets)
    cut: tuple[tuple[Feature, Feature], ...] = ()
    if train_features:
        idx, _ = window_positions(train_offsets, L, T, targets)
        cut = tuple((f.take_padded(idx[:, :L].reshape(-1)), f.take_padded(idx[:, L:].reshape(-1))) for f in train_features)
        del idx
    lengths = np.diff(train_offsets)
    meta = {
        "inputs": L,
        "targets": T,
        "windows": len(y),
        "users": int(np.count_nonzero(np.bincount(r, minlength=1))),
        "users_too_short": int((lengths <= T).sum()),
        "source": "train" if rule is not None else "sequences",
    }
    return (x, y, train_users[r]), cut, meta


def _truncation_meta(offsets: np.ndarray, opts: SplitOptions) -> dict[str, Any]:
    cut = np.maximum(np.diff(offsets) - opts.max_len, 0)
    return {
        "max_len": opts.max_len,
        "pad": opts.pad,
        "truncate_sequences": opts.truncate,
        "users_longer": int((cut > 0).sum()),
        "items_beyond_max_len": int(cut.sum()),
    }


def _truncate(seqs: Sequences, max_len: int) -> Sequences:
    """Each user's ``max_len`` most recent interactions."""
    starts, lengths = tail_ranges(seqs.offsets[:-1], np.diff(seqs.offsets), max_len)
    new_offsets, pos = gather_ranges(starts, lengths)
    return seqs.take(pos, new_offsets)


def _eval_rows(
    seqs: Sequences, pos: np.ndarray, start: np.ndarray, length: np.ndarray, rule: str, max_len: int | None
) -> EvalRows:
    """One part's rows; histories are gathered by index, or by one mask when they cannot overlap."""
    user = (np.searchsorted(seqs.offsets, pos, side="right") - 1).astype(np.int32)
    if max_len is not None:
        start, length = tail_ranges(start, length, max_len)
    total = int(length.sum())
    if total > MAX_HISTORY_ITEMS:
        msg = f"the {rule} split's histories would hold {total:,} items; pass --max-len N to keep only the N most recent"
        raise ConfigError(msg)
    if len(user) < 2 or bool((user[1:] > user[:-1]).all()):  # one row per user: disjoint, ordered ranges
        hist_offsets = csr_offsets(length)
        hist_pos = ranges_mask(len(seqs.items), start, length)
    else:
        hist_offsets, hist_pos = gather_ranges(start, length)
    history = seqs.items[hist_pos]
    return EvalRows(
        user_idx=user,
        target=seqs.items[pos].astype(np.int32, copy=False),
        target_ts=seqs.timestamps[pos],
        history_offsets=hist_offsets,
        history=history.astype(np.int32, copy=False),
        history_features=tuple(f.take(hist_pos) for f in seqs.features),
        target_features=tuple(f.take(pos) for f in seqs.features),
    )


def _with_negatives(
    seqs: Sequences,
    train_items: np.ndarray,
    evals: dict[str, EvalRows],
    num_items: int,
    opts: SplitOptions,
    targets: np.ndarray | None = None,
    train: np.ndarray | None = None,
) -> tuple[dict[str, EvalRows], dict[str, Any]]:
    """Sample ``opts.eval_negatives`` items per valid/test row that its user never interacted with
    (in a target event, with ``targets``; the popularity then counts training target events)."""
    k = opts.eval_negatives
    stride = np.int64(num_items + 1)
    users, seen_items = row_of(seqs.offsets), seqs.items
    if targets is not None:
        users, seen_items = users[targets], seen_items[targets]
        if train is not None:
            train_items = seqs.items[train & targets].astype(np.int32, copy=False)
    seen_keys = np.unique(users * stride + seen_items)
    seen_users = seen_keys // stride
    probs = None
    if opts.negatives == "popularity":
        probs = np.bincount(train_items, minlength=num_items + 1)[1:].astype(np.float64)
        positive = probs > 0
        available = int(positive.sum()) - np.bincount(
            seen_users, weights=positive[seen_keys % stride - 1], minlength=seqs.num_users
        )
    else:
        available = num_items - np.bincount(seen_users, minlength=seqs.num_users)
    out: dict[str, EvalRows] = {}
    rounds = {}
    for seed_offset, (name, ev) in enumerate(evals.items()):
        short = available[ev.user_idx] < k
        if short.any():
            u = int(ev.user_idx[np.argmax(short)])
            msg = (
                f"user_idx {u} has only {int(available[u])} items left to sample as negatives, fewer than "
                f"--eval-negatives {k}; lower --eval-negatives"
            )
            raise ConfigError(msg)
        try:
            neg, n_rounds = sample_negatives(
                ev.user_idx, seen_keys, num_items, k, seed=[opts.seed, 2, seed_offset], probs=probs
            )
        except ValueError:
            msg = f"could not sample {k} distinct unseen negatives for every {name} row; lower --eval-negatives or use --negatives uniform"
            raise ConfigError(msg) from None
        rounds[name] = n_rounds
        out[name] = EvalRows(**{**ev.__dict__, "negatives": neg})
    meta = {
        "k": k,
        "sampler": opts.negatives,
        "seed": opts.seed,
        "distinct": True,
        "excludes": "every item the user interacted with in the kept log"
        + ("" if targets is None else " in a target event"),
        "popularity_from": "train" if opts.negatives == "popularity" else None,
        "rounds": rounds,
    }
    return out, meta
