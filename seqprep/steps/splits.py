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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import BuildConfig, SplitOptions
from ..errors import ConfigError
from ..kernels import csr_offsets, lookup, padded, remap_table, time_order
from ..kernels.arrow import sorted_unique
from ..kernels.sequences import sequence_parts
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
    ratio_parts,
    row_counts,
    row_of,
    row_streams,
    sample_negatives,
    sliding_windows,
    tail_ranges,
    time_parts,
    time_quantile,
    users_parts,
    window_positions,
)
from ..model import EvalRows, Extras, Feature, Interactions, LargeLists, Log, Sequences
from ..resources import sort_threads
from ..timeunits import bound_in_unit
from ..vocab import Vocabulary
from .features import encode_features, refit_on
from .train_fit import (
    fit_train_items,
    left_tally,
    no_training_rows,
    recounted,
    regrouped,
    train_tally,
    unseen_counts,
    unseen_step,
    users_after,
)
from .vocabularies import USER_START, log_dates, user_order_of

__all__ = [
    "HISTORY_RULE",
    "MAX_HISTORY_ITEMS",
    "SplitPlan",
    "TRAIN",
    "check_history_size",
    "check_negatives",
    "decide_parts",
    "decided_plan",
    "final_sequences",
    "fit_on_train",
    "refit_features",
    "hold_out_test_starts",
    "merge_tallies",
    "negatives_facts",
    "plan_split",
    "prepare",
    "prepare_range",
    "range_facts",
    "sequence_dates",
    "split_meta",
    "split_range",
    "training_rows",
    "unseen_items_step",
    "user_range",
]

EVALS = ("valid", "test")

HISTORY_RULE = {
    "loo": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "users": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "ratio": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
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
    """(part per position or None without a split, the rule and its resolved parameters for meta.json)
    of all users at once (:func:`plan_split` and :func:`split_range` on one range).

    ``targets``: the positions that may be split targets (``--target-events``; None: every one).
    ``dates``: each row's date (:func:`sequence_dates`), for ``--split days``."""
    if opts.rule == "days":  # decided over all users at once (the dates come from the whole log)
        assert opts.fractions is not None and dates is not None
        part, facts = days_parts(offsets, dates, int(opts.fractions[0]))
        iso = {k: str(np.datetime64(facts[k], "D")) for k in ("last_day", "boundary_day")}
        return part, {"rule": "days", "test_days": int(opts.fractions[0]), **facts, **iso}
    plan = _rule_plan(opts, time_unit, 0, np.diff(offsets), lambda q: time_quantile(times, q))
    part, counts = _decide(plan, offsets, times, targets, 0)
    return part, {**plan.info, **counts}


def training_rows(part: np.ndarray) -> np.ndarray:
    """``--vocab-from-train``: the mask of the TRAIN positions of ``part``; a split that leaves none
    is the one-line error (every engine fits the item vocabulary on these rows)."""
    train = part == TRAIN
    if not train.any():
        raise no_training_rows()
    return train


def unseen_items_step(unseen: np.ndarray, part: np.ndarray) -> dict[str, Any]:
    """meta.json's ``vocab_from_train`` step: rows whose item never occurs in training (``unseen``,
    aligned with ``part``) are dropped, counted by the part they held (one range:
    :func:`~seqprep.steps.train_fit.unseen_step` adds ranges up)."""
    return unseen_step([unseen_counts(unseen, part)])


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
    there; then the range steps of :mod:`seqprep.steps.train_fit` on one range of every user: the
    item vocabulary fitted on the TRAIN rows; held-out rows whose item never occurs in training
    dropped and counted (step ``vocab_from_train``); users renumbered on the rows left, each user's
    rows kept in their stable time order. The features are encoded on the rows left (input order),
    their vocabularies fitted on the TRAIN rows (:func:`refit_features`). ``features``: features
    already encoded on ``inter``'s rows (the event column's), kept with their vocabularies, after
    those; ``targets``: the target-event rows the split decides on. Returns (users, items,
    sequences, part, info).
    """
    user_order, user_counts = user_order_of(inter, log, config.user_order)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=USER_START), inter.user)
    order = time_order(uidx, inter.time, threads=sort_threads())
    sorted_targets = None if targets is None else targets[order]
    dates = sequence_dates(uidx, inter, log, len(user_order)) if config.split.rule == "days" else None
    del uidx
    offsets1 = csr_offsets(user_counts)
    part, info = decide_parts(offsets1, inter.time[order], config.split, log.time_unit, sorted_targets, dates)
    assert part is not None
    codes = inter.item[order]
    items, item_table = fit_train_items([train_tally(codes, part, config.item_order, order)], log.item_ids, config.item_order)
    iidx = lookup(item_table, codes)
    del codes
    keep = iidx >= 0
    steps.append(unseen_step([unseen_counts(~keep, part)]))
    left = left_tally(offsets1, keep, config.user_order, order)
    users, old = users_after(user_order, [left], log.user_ids, config.user_order)
    offsets, pos = regrouped(left.counts, old)
    rows = order[keep][pos]  # the input row of each output position
    part = part[keep][pos]
    del order
    left_rows = np.zeros(len(inter.user), dtype=bool)
    left_rows[rows] = True
    encoded = encode_features(inter.take(left_rows), config.feature, config.item_order)
    del left_rows
    seqs = Sequences(
        offsets=offsets,
        items=iidx[keep][pos],
        timestamps=inter.time[rows],
        ratings=None if inter.rating is None else inter.rating[rows],
        features=tuple(f.widened() for f in refit_features(encoded, rows, part, config.item_order))
        + tuple(recounted(f.take(rows).widened()) for f in features),  # (the event feature: counts of the rows left)
    )
    hold_out_test_starts(seqs.offsets, part, info)
    return users, items, seqs, part, info


def refit_features(encoded: tuple[Feature, ...], rows: np.ndarray, part: np.ndarray, order: str) -> tuple[Feature, ...]:
    """``--vocab-from-train``'s ``--feature`` features in the output order: ``encoded`` on the rows
    left in input order, ``rows`` the input row of each output position (distinct), ``part`` their
    split; each vocabulary refitted on the TRAIN rows (:func:`~seqprep.steps.features.refit_on`, in
    input order)."""
    if not encoded:
        return ()
    by_input = np.argsort(rows, kind="stable")  # the rows left in input order
    train = part[by_input] == TRAIN
    back = np.empty_like(by_input)
    back[by_input] = np.arange(len(by_input))
    del by_input
    return tuple(refit_on(f, train, order).take(back) for f in encoded)


def hold_out_test_starts(offsets: np.ndarray, part: np.ndarray, info: dict[str, Any]) -> None:
    """``--split days`` with ``--vocab-from-train``: a test sequence's first item is history only,
    wherever it starts once the unseen items are gone (``part`` is changed in place)."""
    if info["rule"] == "days":
        starts = offsets[:-1][np.diff(offsets) > 0]
        part[starts[part[starts] == TEST]] = HELD_OUT


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
    and the negatives (the items a user is known to have, the popularity) use them only. This is
    the user-range API (:func:`plan_split` ... :func:`split_meta`) run on one range, all users."""
    plan = decided_plan(config.split, len(items), info, seqs.offsets)
    if not plan.wanted(part):
        return seqs, None, {}
    plan = plan.with_facts(range_facts(plan, seqs, part, targets))
    out, extras, tally = prepare_range(plan, seqs, part, targets)
    return out, extras, split_meta(plan, [tally])


# --- the user-range API: planned once over all users, decided and written per user range ---------


@dataclass(frozen=True)
class SplitPlan:
    """The split options decided over all users from small global facts, so that any engine holding
    whole users in ranges (``--memory-limit``'s user ranges, Dask's partitions) decides and writes
    each range alone and gets the local build's bytes.

    ``info``: meta.json's rule entry (rule and resolved parameters; the per-user counts are added
    from the ranges' facts); ``bounds``: the ``time`` rule's two timestamps; ``user_parts``: the
    ``users`` rule's part of every user. :meth:`with_facts` adds what the ranges' facts give (the
    popularity of ``--negatives popularity``, the ``large_list`` flags of the split files) and
    checks the history sizes before anything is gathered. ``groups``: the user bounds of the split
    files' row groups (:func:`~seqprep.kernels.sequences.sequence_parts` of the users' lengths, as
    sequences.parquet's)."""

    opts: SplitOptions
    num_items: int
    info: dict[str, Any]
    bounds: tuple[Any, Any] | None = None
    user_parts: np.ndarray | None = None
    probs: np.ndarray | None = None
    large: LargeLists = field(default_factory=LargeLists)
    groups: np.ndarray | None = None

    @property
    def rule(self) -> str | None:
        return self.info.get("rule")

    def wanted(self, part: np.ndarray | None = None) -> bool:
        """Whether any option asks for split files, windows or padding."""
        return self.rule is not None or part is not None or self.opts.max_len is not None or self.opts.windows is not None

    def with_facts(self, facts: dict[str, Any]) -> SplitPlan:
        """The plan completed from the facts of every range added up (:func:`split_range`,
        :func:`merge_tallies`): the rule's counts, the popularity, the ``large_list`` flags; raises when a history part would exceed :data:`MAX_HISTORY_ITEMS`."""
        rule = self.rule
        if rule is None:
            return self
        info = {**self.info, **facts.get("info", {})}  # the rule's counts (train_only_users)
        for name in EVALS:
            check_history_size(int(facts["history_items"][name]), rule)
        probs = None
        if self.opts.eval_negatives and self.opts.negatives == "popularity":
            probs = np.asarray(facts["popularity"], dtype=np.int64)[1:].astype(np.float64)
        k = self.opts.eval_negatives or 0
        large = LargeLists.of(
            int(facts["train_items"]),
            tuple(int(facts["history_items"][name]) for name in EVALS),  # type: ignore[arg-type]
            tuple(int(facts["eval_rows"][name]) * k for name in EVALS),  # type: ignore[arg-type]
        )
        return dataclasses.replace(self, info=info, probs=probs, large=large)


def decided_plan(opts: SplitOptions, num_items: int, info: dict[str, Any], offsets: np.ndarray) -> SplitPlan:
    """The plan of a split already decided over all users (:func:`decide_parts`' ``info``, or
    :func:`fit_on_train`'s), for :func:`range_facts` and :func:`prepare_range` on its parts."""
    return SplitPlan(opts, num_items, info, groups=sequence_parts(offsets))


def plan_split(
    opts: SplitOptions,
    time_unit: str,
    num_items: int,
    user_counts: np.ndarray,
    quantile: Callable[[float], Any] | None = None,
) -> SplitPlan:
    """The :class:`SplitPlan` of ``opts`` from the interactions of every user (``user_counts``, in
    user order) and, for ``--split time:Q1,Q2``, ``quantile(q)``: the timestamp at rank
    ``floor(q * n)`` of all ``n`` kept interactions (:func:`~seqprep.kernels.splits.time_quantile`)."""
    plan = _rule_plan(opts, time_unit, num_items, user_counts, quantile)
    return dataclasses.replace(plan, groups=sequence_parts(csr_offsets(np.asarray(user_counts))))


def _rule_plan(
    opts: SplitOptions, time_unit: str, num_items: int, user_counts: np.ndarray, quantile: Callable[[float], Any] | None
) -> SplitPlan:
    rule = opts.rule
    if rule == "loo":
        if opts.loo_variant == "recbole":  # RecBole: min(2, rows - 1) of a user's n - 1 prefix rows held out
            info = {"rule": "loo", "variant": "recbole", "min_interactions": 3, "valid_min_interactions": 4}
            return SplitPlan(opts, num_items, info)
        return SplitPlan(opts, num_items, {"rule": "loo", "min_interactions": 3})
    if rule == "ratio":
        a, b, d = opts.ratio_cuts  # type: ignore[misc]
        cut = f"per user of n interactions (in time order): train the first ceil(n * {a}/{d}), valid those up to ceil(n * {b}/{d}), test the rest"
        return SplitPlan(opts, num_items, {"rule": "ratio", "fractions": [a / d, (b - a) / d, (d - b) / d], "cut": cut})
    if rule == "time":
        if opts.fractions is not None:
            assert quantile is not None
            q1, q2 = opts.fractions
            t1, t2 = quantile(q1), quantile(q2)
            params: dict[str, Any] = {"quantiles": [q1, q2]}
        else:
            t1 = bound_in_unit(opts.valid_from, "--valid-from", time_unit)
            t2 = bound_in_unit(opts.test_from, "--test-from", time_unit)
            if t2 < t1:
                msg = f"--test-from {opts.test_from} comes before --valid-from {opts.valid_from}; swap them"
                raise ConfigError(msg)
            params = {}
        return SplitPlan(opts, num_items, {"rule": "time", **params, "valid_from": t1, "test_from": t2}, bounds=(t1, t2))
    if rule == "days":
        msg = "--split days is decided over all users at once (decide_parts with the log's dates), not per user range"
        raise ConfigError(msg)
    if rule == "users":
        fr = opts.fractions
        per_user = users_parts(csr_offsets(np.asarray(user_counts)), fr, opts.seed)
        info = {"rule": "users", "fractions": list(fr), "seed": opts.seed, "min_interactions": 2}
        return SplitPlan(opts, num_items, info, user_parts=per_user)
    return SplitPlan(opts, num_items, {"rule": None})


def user_range(seqs: Sequences, u0: int, u1: int) -> Sequences:
    """The sequences of users ``u0 <= u < u1`` (views; offsets from 0)."""
    offsets = seqs.offsets[u0 : u1 + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    return Sequences(
        offsets=offsets - lo,
        items=seqs.items[lo:hi],
        timestamps=seqs.timestamps[lo:hi],
        ratings=None if seqs.ratings is None else seqs.ratings[lo:hi],
        session_ids=None if seqs.session_ids is None else seqs.session_ids[lo:hi],
        features=tuple(f.slice(lo, hi) for f in seqs.features),
    )


def split_range(
    plan: SplitPlan, seqs: Sequences, targets: np.ndarray | None = None, user0: int = 0
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """(part per position or None without a split, the range's facts) of the users ``user0 ..``
    laid out in ``seqs`` (offsets from 0, sorted). ``targets``: the positions that may be split
    targets (``--target-events``; None: every one). The facts of all ranges, added up
    (:func:`merge_tallies`), complete the plan (:meth:`SplitPlan.with_facts`)."""
    part, counts = _decide(plan, seqs.offsets, seqs.timestamps, targets, user0)
    return part, {"info": counts, **range_facts(plan, seqs, part, targets)}


def _decide(
    plan: SplitPlan, offsets: np.ndarray, times: np.ndarray, targets: np.ndarray | None, user0: int
) -> tuple[np.ndarray | None, dict[str, int]]:
    rule = plan.rule
    lengths = np.diff(offsets)
    if rule == "loo":
        n = lengths if targets is None else np.bincount(row_of(offsets)[targets], minlength=len(lengths))
        short = int(((lengths > 0) & (n < 3)).sum())  # train only: fewer than 3 (target) interactions
        if plan.info.get("variant") == "recbole":
            part = loo_parts(offsets, targets=targets, valid_min_len=4)
            return part, {"train_only_users": short, "test_only_users": int((n == 3).sum())}
        return loo_parts(offsets, targets=targets), {"train_only_users": short}
    if rule == "ratio":
        part = ratio_parts(offsets, plan.opts.ratio_cuts, targets)  # type: ignore[arg-type]
        held = np.bincount(row_of(offsets)[(part == VALID) | (part == TEST)], minlength=len(lengths))
        return part, {"train_only_users": int(((lengths > 0) & (held == 0)).sum())}
    if rule == "time":
        assert plan.bounds is not None
        return time_parts(times, plan.bounds[0], plan.bounds[1], targets), {}
    if rule == "users":
        assert plan.user_parts is not None
        part = held_out_positions(offsets, plan.user_parts[user0 : user0 + len(lengths)], targets)
        return part, {"train_only_users": int((lengths == 1).sum())}
    return None, {}


def range_facts(plan: SplitPlan, seqs: Sequences, part: np.ndarray | None, targets: np.ndarray | None = None) -> dict[str, Any]:
    """What :meth:`SplitPlan.with_facts` needs of one range once its part is decided: training
    interactions, history items and rows per valid/test part, and (``--negatives popularity``) the
    training counts of every item (of target events, with ``targets``)."""
    rule = plan.rule
    if rule is None or part is None:
        return {}
    sizes = _eval_sizes(seqs, part, rule, plan.opts.max_len)
    train = part == TRAIN
    facts: dict[str, Any] = {
        "train_items": int(np.count_nonzero(train)),
        "history_items": {name: int(lengths.sum()) for name, (_, lengths) in sizes.items()},
        "eval_rows": {name: len(users) for name, (users, _) in sizes.items()},
    }
    if plan.opts.eval_negatives and plan.opts.negatives == "popularity":
        if targets is not None:
            train &= targets
        facts["popularity"] = np.bincount(seqs.items[train], minlength=plan.num_items + 1).astype(np.int64)
    return facts


def prepare_range(
    plan: SplitPlan,
    seqs: Sequences,
    part: np.ndarray | None,
    targets: np.ndarray | None = None,
    user0: int = 0,
) -> tuple[Sequences, Extras | None, dict[str, Any]]:
    """The users ``user0 ..`` of ``seqs`` (offsets from 0): (their sequences to write, their extras
    with user indices of the whole build, their tally). The tallies of all ranges, in user order,
    give meta.json's entries (:func:`split_meta`). Negatives are drawn from one stream per row
    (seed, user, the target's position: :func:`~seqprep.kernels.splits.row_streams`), so a range
    draws exactly what a pass over all users draws."""
    opts = plan.opts
    if not plan.wanted(part):
        return seqs, None, {}
    tally: dict[str, Any] = {}
    train_users, train_offsets, train_items, train = _training_part(seqs, part)
    train_features = seqs.features if train is None else tuple(f.take(train) for f in seqs.features)
    fields: dict[str, Any] = {}
    rule = plan.rule
    if rule is not None:
        assert part is not None and train is not None
        fields.update(train_user_idx=train_users + np.int32(user0), train_offsets=train_offsets, train_items=train_items)
        fields["train_timestamps"] = seqs.timestamps[train]
        fields["train_features"] = train_features
        evals, within = _held_out(seqs, part, rule, opts.max_len, (train, train_items))
        if opts.eval_negatives:
            evals, tally["negatives"] = _with_negatives(plan, seqs, evals, within, targets, user0)
        evals = {name: dataclasses.replace(ev, user_idx=ev.user_idx + np.int32(user0)) for name, ev in evals.items()}
        fields.update(evals)
        sizes: dict[str, Any] = {
            "train": {"users": len(train_users), "interactions": int(train_offsets[-1])},
            **{
                name: {
                    "rows": len(ev),
                    "users": len(sorted_unique(ev.user_idx)),
                    "empty_history": int((np.diff(ev.history_offsets) == 0).sum()),
                    "history_items": int(ev.history_offsets[-1]),
                }
                for name, ev in evals.items()
            },
        }
        if rule == "users":
            sizes["held_out_history_interactions"] = int(np.count_nonzero(part == HELD_OUT))
        tally["sizes"] = sizes
    if opts.windows is not None:
        train_targets = None if targets is None else (targets if train is None else targets[train])
        L, T = opts.window_shape  # type: ignore[misc]
        x, y, r = sliding_windows(train_items, train_offsets, L, T, train_targets)
        fields["windows"] = (x, y, train_users[r] + np.int32(user0))
        if train_features:  # each feature cut into the same windows (inputs and targets cells)
            idx, _ = window_positions(train_offsets, L, T, train_targets)
            fields["window_features"] = tuple(
                (f.take_padded(idx[:, :L].reshape(-1)), f.take_padded(idx[:, L:].reshape(-1))) for f in train_features
            )
            del idx
        tally["windows"] = {"windows": len(y), "users": len(np.unique(r)), "users_too_short": int((np.diff(train_offsets) <= T).sum())}
    if opts.max_len is not None:
        fields["padded"] = padded(seqs.items.astype(np.int32, copy=False), seqs.offsets, opts.max_len, side=opts.pad)
        fields["padded_features"] = tuple(f.padded(seqs.offsets, opts.max_len, opts.pad) for f in seqs.features)
        cut = np.maximum(np.diff(seqs.offsets) - opts.max_len, 0)
        tally["truncation"] = {"users_longer": int((cut > 0).sum()), "items_beyond_max_len": int(cut.sum())}
        if opts.truncate:
            seqs = _truncate(seqs, opts.max_len)
    return seqs, Extras(**fields, max_len=opts.max_len, pad=opts.pad, groups=plan.groups, large=plan.large), tally


def final_sequences(seqs: Sequences, opts: SplitOptions) -> Sequences:
    """The sequences to write: with ``--max-len`` and ``--truncate``, each user's most recent ones
    (what :func:`prepare_range` gives range by range)."""
    if opts.max_len is not None and opts.truncate:
        return _truncate(seqs, opts.max_len)
    return seqs


def _added(a: Any, b: Any) -> Any:
    """Two tallies added up: numbers and arrays summed, dicts key by key."""
    if isinstance(a, dict):
        return {**a, **{k: _added(a[k], v) if k in a else v for k, v in b.items()}}
    return a + b


def merge_tallies(tallies: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The facts (:func:`split_range`) or tallies (:func:`prepare_range`) of user ranges as one, in
    user order: counts added up; of the negatives, the rounds the most any range needed and the first
    range's sampling problem per part."""
    out: dict[str, Any] = {}
    for t in tallies:
        for key, value in t.items():
            if key not in out:
                out[key] = _added({}, value) if isinstance(value, dict) else value
            elif key == "negatives":
                neg = out[key]
                neg["rounds"] = {name: max(neg["rounds"].get(name, 0), r) for name, r in {**neg["rounds"], **value["rounds"]}.items()}
                neg["problems"] = {**value["problems"], **neg["problems"]}
            else:
                out[key] = _added(out[key], value)
    return out


def split_meta(plan: SplitPlan, tallies: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """meta.json's ``split``, ``negatives``, ``windows`` and ``truncation`` from the tallies of every
    user range (:func:`prepare_range`, in user order); raises the error one pass over all users
    raises when a row cannot get its negatives (the first such row, valid before test)."""
    opts = plan.opts
    tally = merge_tallies(tallies)
    meta: dict[str, Any] = {}
    rule = plan.rule
    if "negatives" in tally:
        meta["negatives"] = _negatives_meta(tally["negatives"], opts)
    if rule is not None:
        meta["split"] = {
            **plan.info,
            "history": HISTORY_RULE[rule],
            "history_max_len": opts.max_len,
            "vocab_from_train": opts.vocab_from_train,
            "sizes": tally["sizes"],
        }
    if opts.windows is not None:
        L, T = opts.window_shape  # type: ignore[misc]
        meta["windows"] = {"inputs": L, "targets": T, **tally["windows"], "source": "train" if rule is not None else "sequences"}
    if opts.max_len is not None:
        meta["truncation"] = {"max_len": opts.max_len, "pad": opts.pad, "truncate_sequences": opts.truncate, **tally["truncation"]}
    return meta


def check_history_size(total: int, rule: str) -> None:
    """A history part beyond :data:`MAX_HISTORY_ITEMS` items asks for ``--max-len``."""
    if total > MAX_HISTORY_ITEMS:
        msg = f"the {rule} split's histories would hold {total:,} items; pass --max-len N to keep only the N most recent"
        raise ConfigError(msg)


def negatives_facts(
    plan: SplitPlan, seqs: Sequences, part: np.ndarray | None, targets: np.ndarray | None = None, user0: int = 0
) -> dict[str, Any]:
    """With ``--eval-negatives``, the users of one range (``user0 ..``) who cannot get their negatives:
    per valid/test part the first user with fewer unseen items to draw from than asked, for
    :func:`check_negatives`. ``plan`` is the completed plan (:meth:`SplitPlan.with_facts`: the
    popularity); cheap next to :func:`prepare_range` (no history is gathered, nothing is drawn)."""
    if plan.rule is None or part is None or not plan.opts.eval_negatives:
        return {}
    _, available = _available(plan, seqs, targets)
    problems: dict[str, Any] = {}
    for name, (users, _) in _eval_sizes(seqs, part, plan.rule, plan.opts.max_len).items():
        problem = _short(users, available, plan.opts.eval_negatives, user0)
        if problem is not None:
            problems[name] = problem
    return {"negatives": {"rounds": {}, "problems": problems, "in_targets": targets is not None}}


def check_negatives(plan: SplitPlan, facts: Iterable[dict[str, Any]]) -> None:
    """Raise the error one pass over all users raises (the first short user, valid before test) from
    the :func:`negatives_facts` of every range in user order: an engine writing range by range calls
    it before it writes anything."""
    tally = merge_tallies(facts)
    if "negatives" in tally:
        _negatives_meta(tally["negatives"], plan.opts)


def _available(plan: SplitPlan, seqs: Sequences, targets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(the sorted ``user * (num_items + 1) + item`` keys of every item each user of ``seqs`` has, in a
    target event with ``targets``; per user, how many items are left to draw from: unseen, and with
    ``plan.probs`` of positive popularity)."""
    stride = np.int64(plan.num_items + 1)
    users, seen_items = row_of(seqs.offsets), seqs.items
    if targets is not None:
        users, seen_items = users[targets], seen_items[targets]
    seen_keys = np.unique(users * stride + seen_items)
    seen_users = seen_keys // stride
    probs = plan.probs
    if probs is not None:
        positive = probs > 0
        available = int(positive.sum()) - np.bincount(seen_users, weights=positive[seen_keys % stride - 1], minlength=seqs.num_users)
    else:
        available = plan.num_items - np.bincount(seen_users, minlength=seqs.num_users)
    return seen_keys, available


def _short(users: np.ndarray, available: np.ndarray, k: int, user0: int) -> list[Any] | None:
    """The problem of the first row (in row order) whose user has fewer than ``k`` items to draw."""
    short = available[users] < k
    if not short.any():
        return None
    u = int(users[np.argmax(short)])
    return ["short", u + user0, int(available[u])]


def _with_negatives(
    plan: SplitPlan,
    seqs: Sequences,
    evals: dict[str, EvalRows],
    within: dict[str, np.ndarray],
    targets: np.ndarray | None,
    user0: int,
) -> tuple[dict[str, EvalRows], dict[str, Any]]:
    """Sample ``--eval-negatives`` items per valid/test row (users numbered from 0 in the range) that
    its user never interacted with (in a target event, with ``targets``), by ``plan.probs`` (the
    popularity over all users) or uniformly. -> (rows with negatives, the tally: rounds per part
    and the first problem per part, if any). A part with a problem gets zeros (the same columns in
    every range; :func:`split_meta` refuses the build)."""
    opts, num_items = plan.opts, plan.num_items
    k = opts.eval_negatives
    seen_keys, available = _available(plan, seqs, targets)
    out: dict[str, EvalRows] = {}
    tally: dict[str, Any] = {"rounds": {}, "problems": {}, "in_targets": targets is not None}
    for name, ev in evals.items():
        problem = _short(ev.user_idx, available, k, user0)
        if problem is None:
            streams = row_streams(opts.seed, ev.user_idx.astype(np.int64) + user0, within[name])
            try:
                neg, tally["rounds"][name] = sample_negatives(ev.user_idx, seen_keys, num_items, k, opts.seed, probs=plan.probs, streams=streams)
            except ValueError:
                problem = ["failed", 0, 0]
        if problem is not None:
            tally["problems"][name] = problem
            neg = np.zeros((len(ev), k), dtype=np.int32)
        out[name] = dataclasses.replace(ev, negatives=neg)
    return out, tally


def _negatives_meta(tally: dict[str, Any], opts: SplitOptions) -> dict[str, Any]:
    """meta.json's ``negatives``; the error of the first problem (valid before test, in user order)."""
    k = opts.eval_negatives
    for name in EVALS:
        problem = tally["problems"].get(name)
        if problem is None:
            continue
        kind, u, available = problem
        if kind == "short":
            msg = f"user_idx {u} has only {available} items left to sample as negatives, fewer than --eval-negatives {k}; lower --eval-negatives"
        else:
            msg = f"could not sample {k} distinct unseen negatives for every {name} row; lower --eval-negatives or use --negatives uniform"
        raise ConfigError(msg)
    return {
        "k": k,
        "sampler": opts.negatives,
        "seed": opts.seed,
        "distinct": True,
        "excludes": "every item the user interacted with in the kept log" + (" in a target event" if tally["in_targets"] else ""),
        "popularity_from": "train" if opts.negatives == "popularity" else None,
        "streams": "one per valid/test row: the seed, the user_idx and the target's position in the user's sequence",
        "rounds": {name: tally["rounds"].get(name, 0) for name in EVALS},
    }


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
        train_counts = row_counts(offsets, train)  # (no int64 temporary per position)
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


def _held_out(
    seqs: Sequences, part: np.ndarray, rule: str, max_len: int | None, training: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[dict[str, EvalRows], dict[str, np.ndarray]]:
    """The valid and test rows with their histories; and each row's target position in its user's
    sequence (the key of its negatives' stream). ``training``: (the TRAIN mask, the training items)
    - a part whose histories are exactly the training positions (the valid rows of a leave-one-out
    split) takes those items instead of gathering them again."""
    pos, start, length = eval_positions(seqs.offsets, seqs.timestamps, part, strict_time=rule == "time")
    which = part[pos]
    user_start = seqs.offsets[:-1][np.searchsorted(seqs.offsets, pos, side="right") - 1]
    evals, within = {}, {}
    for name, code in (("valid", VALID), ("test", TEST)):
        sel = which == code
        evals[name] = _eval_rows(seqs, pos[sel], start[sel], length[sel], max_len, training)
        within[name] = pos[sel] - user_start[sel]
    return evals, within


def _truncate(seqs: Sequences, max_len: int) -> Sequences:
    """Each user's ``max_len`` most recent interactions."""
    starts, lengths = tail_ranges(seqs.offsets[:-1], np.diff(seqs.offsets), max_len)
    new_offsets, pos = gather_ranges(starts, lengths)
    return seqs.take(pos, new_offsets)


def _eval_rows(
    seqs: Sequences,
    pos: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    max_len: int | None,
    training: tuple[np.ndarray, np.ndarray] | None = None,
) -> EvalRows:
    """One part's rows; histories are gathered by index, or by one mask when they cannot overlap
    (the training items themselves when that mask is ``training``'s, see :func:`_held_out`)."""
    user = (np.searchsorted(seqs.offsets, pos, side="right") - 1).astype(np.int32)
    if max_len is not None:
        start, length = tail_ranges(start, length, max_len)
    history: np.ndarray | None = None
    if len(user) < 2 or bool((user[1:] > user[:-1]).all()):  # one row per user: disjoint, ordered ranges
        hist_offsets = csr_offsets(length)
        hist_pos = ranges_mask(len(seqs.items), start, length)
        if training is not None and training[0] is not None and np.array_equal(hist_pos, training[0]):
            history = training[1]  # (int32 already; shared, never written to)
    else:
        hist_offsets, hist_pos = gather_ranges(start, length)
    if history is None:
        history = seqs.items[hist_pos].astype(np.int32, copy=False)
    return EvalRows(
        user_idx=user,
        target=seqs.items[pos].astype(np.int32, copy=False),
        target_ts=seqs.timestamps[pos],
        history_offsets=hist_offsets,
        history=history,
        history_features=tuple(f.take(hist_pos) for f in seqs.features),
        target_features=tuple(f.take(pos) for f in seqs.features),
    )
