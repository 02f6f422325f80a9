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

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import BuildConfig, SplitOptions
from ..errors import ConfigError, InputError
from ..io.buffers import GrowBuffer
from ..kernels import csr_offsets, fit_order, lookup, padded, remap_table, time_order
from ..kernels.sequences import sequence_parts
from ..kernels.splits import (
    HELD_OUT,
    TEST,
    TRAIN,
    VALID,
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
)
from ..model import EvalRows, Extras, Feature, Interactions, Log, Sequences
from ..resources import sort_threads
from ..timeunits import bound_in_unit
from ..vocab import Vocabulary
from .vocabularies import ITEM_START, USER_START, fitted

__all__ = ["HISTORY_RULE", "MAX_HISTORY_ITEMS", "SplitFacts", "SplitPlan", "check_history_size", "decide_parts", "fit_on_train", "prepare"]

HISTORY_RULE = {
    "loo": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "users": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "time": "the user's interactions with a strictly earlier timestamp than the target (ties left out)",
}
MAX_HISTORY_ITEMS = 2**29  # ~6 GiB of positions and items while gathering; beyond that ask for --max-len


def decide_parts(
    offsets: np.ndarray, times: np.ndarray, opts: SplitOptions, time_unit: str, targets: np.ndarray | None = None
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """(part per position or None without a split, the rule and its resolved parameters for meta.json).

    ``targets``: the positions that may be split targets (``--target-events``; None: every one)."""
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
    rows left and everything is encoded and sorted. Returns (users, items, sequences, part, info).
    """
    user_order, user_counts = fit_order(inter.user, log.user_ids, config.user_order)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=USER_START), inter.user)
    order = time_order(uidx, inter.time, threads=sort_threads())
    sorted_targets = None if targets is None else targets[order]
    sorted_part, info = decide_parts(csr_offsets(user_counts), inter.time[order], config.split, log.time_unit, sorted_targets)
    part = np.empty_like(sorted_part)
    part[order] = sorted_part
    del uidx, order, sorted_part
    train = part == TRAIN
    if not train.any():
        msg = "the split leaves no training interaction, so --vocab-from-train has no vocabulary; move the split bounds later"
        raise InputError(msg)
    item_order, item_counts = fit_order(inter.item[train], log.item_ids, config.item_order)
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
    user_order, user_counts = fit_order(inter.user, log.user_ids, config.user_order)
    users = fitted(log.user_ids, user_order, user_counts, USER_START)
    items = fitted(log.item_ids, item_order, item_counts, ITEM_START)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=USER_START), inter.user)
    order = time_order(uidx, inter.time, threads=sort_threads())
    seqs = Sequences(
        offsets=csr_offsets(user_counts),
        items=iidx[order],
        timestamps=inter.time[order],
        ratings=None if inter.rating is None else inter.rating[order],
        features=tuple(f.take(order) for f in features),
    )
    return users, items, seqs, part[order], info


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
    and the negatives (the items a user is known to have, the popularity) use them only. The extras
    of every user at once: :class:`SplitPlan` gives them user range by user range too."""
    plan = SplitPlan.of(seqs, len(items), part, info, config, targets)
    if plan is None:
        return seqs, None, {}
    extras, facts = plan.users(0, seqs.num_users)
    return plan.final_sequences(), extras, plan.meta(facts)


@dataclass
class SplitFacts:
    """What meta.json says about the split files, added up over user ranges."""

    train_users: int = 0
    train_rows: int = 0
    evals: dict[str, dict[str, int]] = field(
        default_factory=lambda: {name: dict.fromkeys(("rows", "users", "empty_history", "history_items"), 0) for name in ("valid", "test")}
    )
    windows: int = 0
    window_users: int = 0
    too_short: int = 0

    def add(self, other: SplitFacts) -> SplitFacts:
        self.train_users += other.train_users
        self.train_rows += other.train_rows
        for name, sizes in other.evals.items():
            for key, value in sizes.items():
                self.evals[name][key] += value
        self.windows += other.windows
        self.window_users += other.window_users
        self.too_short += other.too_short
        return self


@dataclass
class SplitPlan:
    """Everything decided over all users before any split file is written: the rule, the row groups
    of the split files (the users of each of sequences.parquet's, :func:`~seqprep.kernels.sequences.sequence_parts`),
    the size of every history part (checked against :data:`MAX_HISTORY_ITEMS`) and the sampled
    negatives (one random stream over all rows). :meth:`users` then gives the extras of any user
    range, :meth:`meta` meta.json's entries from the ranges' :class:`SplitFacts` added up: the
    local build takes all users at once, ``--memory-limit`` one row group at a time."""

    seqs: Sequences
    num_items: int
    part: np.ndarray | None
    info: dict[str, Any]
    opts: SplitOptions
    targets: np.ndarray | None
    groups: np.ndarray
    history_items: dict[str, int]
    eval_users: dict[str, np.ndarray]
    negatives: dict[str, np.ndarray] | None = None
    negatives_meta: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        seqs: Sequences,
        num_items: int,
        part: np.ndarray | None,
        info: dict[str, Any],
        config: BuildConfig,
        targets: np.ndarray | None = None,
    ) -> SplitPlan | None:
        """The plan, or None when no option asks for split files, windows or padding."""
        opts = config.split
        if part is None and opts.max_len is None and opts.windows is None:
            return None
        groups = sequence_parts(seqs.offsets)
        plan = cls(seqs, num_items, part, info, opts, targets, groups, {}, {})
        rule = info.get("rule")
        if rule is not None:
            assert part is not None
            keep_users = bool(opts.eval_negatives)
            eval_users: dict[str, list[np.ndarray]] = {"valid": [], "test": []}
            for u0, u1 in plan.ranges():
                sub, psub, _ = plan._slice(u0, u1)
                for name, (users, lengths) in _eval_sizes(sub, psub, rule, opts.max_len).items():
                    plan.history_items[name] = plan.history_items.get(name, 0) + int(lengths.sum())
                    if keep_users:
                        eval_users[name].append(users + u0)
            for name in ("valid", "test"):
                check_history_size(plan.history_items.get(name, 0), rule)
            if keep_users:
                plan.eval_users = {name: np.concatenate(v).astype(np.int32) if v else np.zeros(0, np.int32) for name, v in eval_users.items()}
                plan.negatives, plan.negatives_meta = plan._draw_negatives()
        return plan

    def ranges(self) -> list[tuple[int, int]]:
        """The user ranges of the row groups, in order."""
        return list(zip(self.groups[:-1].tolist(), self.groups[1:].tolist()))

    def _slice(self, u0: int, u1: int) -> tuple[Sequences, np.ndarray | None, np.ndarray | None]:
        """Users ``u0 <= u < u1``: their sequences (offsets from 0), parts and target mask."""
        offsets = self.seqs.offsets[u0 : u1 + 1]
        lo, hi = int(offsets[0]), int(offsets[-1])
        s = self.seqs
        sub = Sequences(
            offsets=offsets - lo,
            items=s.items[lo:hi],
            timestamps=s.timestamps[lo:hi],
            ratings=None if s.ratings is None else s.ratings[lo:hi],
            session_ids=None if s.session_ids is None else s.session_ids[lo:hi],
            features=tuple(f.slice(lo, hi) for f in s.features),
        )
        part = None if self.part is None else self.part[lo:hi]
        targets = None if self.targets is None else self.targets[lo:hi]
        return sub, part, targets

    def users(self, u0: int, u1: int) -> tuple[Extras, SplitFacts]:
        """The extras of users ``u0 <= u < u1`` (user indices as in the whole build) and their facts."""
        opts = self.opts
        sub, part, targets = self._slice(u0, u1)
        facts = SplitFacts()
        train_users, train_offsets, train_items, train = _training_part(sub, part)
        train_users += np.int32(u0)
        fields: dict[str, Any] = {}
        rule = self.info.get("rule")
        if rule is not None:
            assert part is not None and train is not None
            fields.update(train_user_idx=train_users, train_offsets=train_offsets, train_items=train_items)
            fields["train_timestamps"] = sub.timestamps[train]
            facts.train_users, facts.train_rows = len(train_users), int(train_offsets[-1])
            evals = _held_out(sub, part, rule, opts.max_len)
            for name, ev in evals.items():
                ev = dataclasses.replace(ev, user_idx=ev.user_idx + np.int32(u0))
                if self.negatives is not None:
                    r0, r1 = np.searchsorted(self.eval_users[name], [u0, u1])
                    ev = dataclasses.replace(ev, negatives=self.negatives[name][r0:r1])
                fields[name] = ev
                facts.evals[name] = {
                    "rows": len(ev),
                    "users": int(np.count_nonzero(np.diff(ev.user_idx, prepend=-1))) if len(ev) else 0,
                    "empty_history": int((np.diff(ev.history_offsets) == 0).sum()),
                    "history_items": int(ev.history_offsets[-1]),
                }
        if opts.windows is not None:
            train_targets = None if targets is None else (targets if train is None else targets[train])
            L, T = opts.window_shape  # type: ignore[misc]
            x, y, r = sliding_windows(train_items, train_offsets, L, T, train_targets)
            fields["windows"] = (x, y, train_users[r])
            facts.windows, facts.window_users = len(y), int(np.count_nonzero(np.diff(r, prepend=-1))) if len(r) else 0
            facts.too_short = int((np.diff(train_offsets) <= T).sum())
        if opts.max_len is not None:
            fields["padded"] = padded(sub.items.astype(np.int32, copy=False), sub.offsets, opts.max_len, side=opts.pad)
        return Extras(**fields, max_len=opts.max_len, pad=opts.pad, groups=self.groups), facts

    def meta(self, facts: SplitFacts) -> dict[str, Any]:
        """meta.json's ``split``, ``negatives``, ``windows`` and ``truncation`` from all ranges' facts."""
        opts = self.opts
        meta: dict[str, Any] = {}
        rule = self.info.get("rule")
        if rule is not None:
            assert self.part is not None
            if self.negatives_meta is not None:
                meta["negatives"] = self.negatives_meta
            sizes: dict[str, Any] = {"train": {"users": facts.train_users, "interactions": facts.train_rows}, **facts.evals}
            if rule == "users":
                sizes["held_out_history_interactions"] = int(np.count_nonzero(self.part == HELD_OUT))
            meta["split"] = {
                **self.info,
                "history": HISTORY_RULE[rule],
                "history_max_len": opts.max_len,
                "vocab_from_train": opts.vocab_from_train,
                "sizes": sizes,
            }
        if opts.windows is not None:
            L, T = opts.window_shape  # type: ignore[misc]
            meta["windows"] = {
                "inputs": L,
                "targets": T,
                "windows": facts.windows,
                "users": facts.window_users,
                "users_too_short": facts.too_short,
                "source": "train" if rule is not None else "sequences",
            }
        if opts.max_len is not None:
            meta["truncation"] = _truncation_meta(self.seqs.offsets, opts)
        return meta

    def final_sequences(self) -> Sequences:
        """The sequences to write: each user's ``--max-len`` most recent with ``--truncate``."""
        if self.opts.max_len is not None and self.opts.truncate:
            return _truncate(self.seqs, self.opts.max_len)
        return self.seqs

    def _draw_negatives(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Sample ``--eval-negatives`` items per valid/test row that its user never interacted with
        (in a target event, with ``targets``; the popularity then counts training target events)."""
        opts, num_items = self.opts, self.num_items
        k = opts.eval_negatives
        stride = np.int64(num_items + 1)
        keys = GrowBuffer(np.int64)
        train_counts = np.zeros(num_items + 1, dtype=np.int64)
        for u0, u1 in self.ranges():  # (user, item) keys range by range: sorted as a whole
            sub, part, targets = self._slice(u0, u1)
            users, seen = row_of(sub.offsets) + u0, sub.items
            train = part == TRAIN
            if targets is not None:
                users, seen, train = users[targets], seen[targets], train & targets
            keys.append(np.unique(users * stride + seen))
            if opts.negatives == "popularity":
                train_counts += np.bincount(sub.items[train], minlength=num_items + 1)
        seen_keys = keys.finish()
        seen_users = seen_keys // stride
        probs = None
        if opts.negatives == "popularity":
            probs = train_counts[1:].astype(np.float64)
            positive = probs > 0
            available = int(positive.sum()) - np.bincount(
                seen_users, weights=positive[seen_keys % stride - 1], minlength=self.seqs.num_users
            )
        else:
            available = num_items - np.bincount(seen_users, minlength=self.seqs.num_users)
        out: dict[str, np.ndarray] = {}
        rounds = {}
        for seed_offset, name in enumerate(("valid", "test")):
            users = self.eval_users[name]
            short = available[users] < k
            if short.any():
                u = int(users[np.argmax(short)])
                msg = (
                    f"user_idx {u} has only {int(available[u])} items left to sample as negatives, fewer than "
                    f"--eval-negatives {k}; lower --eval-negatives"
                )
                raise ConfigError(msg)
            try:
                out[name], rounds[name] = sample_negatives(users, seen_keys, num_items, k, seed=[opts.seed, 2, seed_offset], probs=probs)
            except ValueError:
                msg = f"could not sample {k} distinct unseen negatives for every {name} row; lower --eval-negatives or use --negatives uniform"
                raise ConfigError(msg) from None
        meta = {
            "k": k,
            "sampler": opts.negatives,
            "seed": opts.seed,
            "distinct": True,
            "excludes": "every item the user interacted with in the kept log"
            + ("" if self.targets is None else " in a target event"),
            "popularity_from": "train" if opts.negatives == "popularity" else None,
            "rounds": rounds,
        }
        return out, meta


def check_history_size(total: int, rule: str) -> None:
    """A history part beyond :data:`MAX_HISTORY_ITEMS` items asks for ``--max-len``."""
    if total > MAX_HISTORY_ITEMS:
        msg = f"the {rule} split's histories would hold {total:,} items; pass --max-len N to keep only the N most recent"
        raise ConfigError(msg)


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


def _eval_sizes(seqs: Sequences, part: np.ndarray, rule: str, max_len: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per valid/test part: (the user of every row, the length of every history), as :func:`_held_out`
    will make them."""
    pos, start, length = eval_positions(seqs.offsets, seqs.timestamps, part, strict_time=rule == "time")
    if max_len is not None:
        start, length = tail_ranges(start, length, max_len)
    which = part[pos]
    user = (np.searchsorted(seqs.offsets, pos, side="right") - 1).astype(np.int32)
    return {name: (user[which == code], length[which == code]) for name, code in (("valid", VALID), ("test", TEST))}


def _held_out(seqs: Sequences, part: np.ndarray, rule: str, max_len: int | None) -> dict[str, EvalRows]:
    """The valid and test rows with their histories."""
    pos, start, length = eval_positions(seqs.offsets, seqs.timestamps, part, strict_time=rule == "time")
    which = part[pos]
    evals = {}
    for name, code in (("valid", VALID), ("test", TEST)):
        sel = which == code
        evals[name] = _eval_rows(seqs, pos[sel], start[sel], length[sel], max_len)
    return evals


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


def _eval_rows(seqs: Sequences, pos: np.ndarray, start: np.ndarray, length: np.ndarray, max_len: int | None) -> EvalRows:
    """One part's rows; histories are gathered by index, or by one mask when they cannot overlap."""
    user = (np.searchsorted(seqs.offsets, pos, side="right") - 1).astype(np.int32)
    if max_len is not None:
        start, length = tail_ranges(start, length, max_len)
    if len(user) < 2 or bool((user[1:] > user[:-1]).all()):  # one row per user: disjoint, ordered ranges
        hist_offsets = csr_offsets(length)
        history = seqs.items[ranges_mask(len(seqs.items), start, length)]
    else:
        hist_offsets, hist_pos = gather_ranges(start, length)
        history = seqs.items[hist_pos]
    return EvalRows(
        user_idx=user,
        target=seqs.items[pos].astype(np.int32, copy=False),
        target_ts=seqs.timestamps[pos],
        history_offsets=hist_offsets,
        history=history.astype(np.int32, copy=False),
    )
