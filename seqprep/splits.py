"""Evaluation splits, truncation/padding and training inputs, assembled from the kernels.

Everything here runs after the sequences exist (or, with ``--vocab-from-train``, decides the split
first and fits the item vocabulary on the training part): the split is a ``part`` array with one
TRAIN/VALID/TEST value per position of the CSR sequences, and every output (train rows, valid/test
rows with their histories, Caser windows, negatives) is gathered from it by index arrays.

Histories are prefixes of the target's own sequence, so no history can hold its own target or
anything with a later timestamp; with ``--split time`` interactions tied with the target's timestamp
are left out of its history as well (strictly earlier times only).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .errors import ConfigError, InputError
from .kernels import csr_offsets, fit_order, lookup, padded, remap_table, time_order
from .kernels.splits import (
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
from .resources import sort_threads

if TYPE_CHECKING:
    from .config import BuildConfig, SplitOptions
    from .pipeline import BuildResult, Interactions, Sequences
    from .readers import Log
    from .vocab import Vocabulary

__all__ = ["EvalRows", "Extras", "decide_parts", "fit_on_train", "prepare", "write_extras", "parse_bound"]

HISTORY_RULE = {
    "loo": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "users": "the user's interactions before the target in the stable time order (timestamps <= the target's)",
    "time": "the user's interactions with a strictly earlier timestamp than the target (ties left out)",
}
MAX_HISTORY_ITEMS = 2**29  # ~6 GiB of positions and items while gathering; beyond that ask for --max-len
_UNIT_NS = {"epoch": 1_000_000_000, "s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def parse_bound(value: Any, unit: str, flag: str) -> int | float:
    """A --valid-from/--test-from value in the log's time unit: a number as is, an ISO date converted.

    >>> parse_bound("2020-01-01", "epoch", "--valid-from"), parse_bound("1.5", "s", "--test-from")
    (1577836800, 1.5)
    """
    text = str(value).strip()
    try:
        num = float(text)
    except ValueError:
        pass
    else:
        if not np.isfinite(num):
            msg = f"{flag} {text!r} is not a finite time; give an epoch number or an ISO-8601 date"
            raise ConfigError(msg)
        return int(num) if num.is_integer() else num
    import pandas as pd  # imported lazily: only an ISO date bound needs it

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        msg = f"{flag} {text!r} is neither a number nor an ISO-8601 date; e.g. {flag} 2018-01-01"
        raise ConfigError(msg) from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // _UNIT_NS.get(unit, 1_000_000_000))


def decide_parts(
    offsets: np.ndarray, times: np.ndarray, opts: SplitOptions, time_unit: str
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """(part per position or None without a split, the rule and its resolved parameters for meta.json)."""
    rule = opts.rule
    if rule == "loo":
        lengths = np.diff(offsets)
        short = int(((lengths > 0) & (lengths < 3)).sum())
        return loo_parts(offsets), {"rule": "loo", "min_interactions": 3, "train_only_users": short}
    if rule == "time":
        if opts.fractions is not None:
            q1, q2 = opts.fractions
            t1, t2 = time_quantile(times, q1), time_quantile(times, q2)
            params: dict[str, Any] = {"quantiles": [q1, q2]}
        else:
            t1 = parse_bound(opts.valid_from, time_unit, "--valid-from")
            t2 = parse_bound(opts.test_from, time_unit, "--test-from")
            if t2 < t1:
                msg = f"--test-from {opts.test_from} comes before --valid-from {opts.valid_from}; swap them"
                raise ConfigError(msg)
            params = {}
        return time_parts(times, t1, t2), {"rule": "time", **params, "valid_from": t1, "test_from": t2}
    if rule == "users":
        fr = opts.fractions
        per_user = users_parts(offsets, fr, opts.seed)
        part = held_out_positions(offsets, per_user)
        short = int((np.diff(offsets) == 1).sum())
        info = {"rule": "users", "fractions": list(fr), "seed": opts.seed, "min_interactions": 2, "train_only_users": short}
        return part, info
    return None, {"rule": None}


def fit_on_train(
    inter: Interactions, log: Log, config: BuildConfig, steps: list[dict[str, Any]]
) -> tuple[Vocabulary, Vocabulary, Sequences, np.ndarray, dict[str, Any]]:
    """``--vocab-from-train``: decide the split first, fit the item vocabulary on training rows only.

    Order: users are numbered on all kept rows, rows sorted by (user, time) stably, the split decided
    there; the item vocabulary is fitted on the TRAIN rows; held-out rows whose item never occurs in
    training are dropped and counted (step ``vocab_from_train``); then users are renumbered on the
    rows left and everything is encoded and sorted. Returns (users, items, sequences, part, info).
    """
    from .pipeline import Sequences
    from .vocab import Vocabulary

    user_order, user_counts = fit_order(inter.user, log.user_ids, config.user_order)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=0), inter.user)
    order = time_order(uidx, inter.time, threads=sort_threads())
    sorted_part, info = decide_parts(csr_offsets(user_counts), inter.time[order], config.split, log.time_unit)
    part = np.empty_like(sorted_part)
    part[order] = sorted_part
    del uidx, order, sorted_part
    train = part == TRAIN
    if not train.any():
        msg = "the split leaves no training interaction, so --vocab-from-train has no vocabulary; move the split bounds later"
        raise InputError(msg)
    item_order, item_counts = fit_order(inter.item[train], log.item_ids, config.item_order)
    iidx = lookup(remap_table(item_order, len(log.item_ids), start=1), inter.item)
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
    user_order, user_counts = fit_order(inter.user, log.user_ids, config.user_order)
    users = Vocabulary(ids=log.user_ids.take(pa.array(user_order)), counts=user_counts, start=0)
    items = Vocabulary(ids=log.item_ids.take(pa.array(item_order)), counts=item_counts, start=1)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=0), inter.user)
    order = time_order(uidx, inter.time, threads=sort_threads())
    seqs = Sequences(
        offsets=csr_offsets(user_counts),
        items=iidx[order],
        timestamps=inter.time[order],
        ratings=None if inter.rating is None else inter.rating[order],
    )
    return users, items, seqs, part[order], info


@dataclass(frozen=True)
class EvalRows:
    """valid or test: one row per target, with its history (CSR) and optional negatives."""

    user_idx: np.ndarray
    target: np.ndarray
    target_ts: np.ndarray
    history_offsets: np.ndarray
    history: np.ndarray
    negatives: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)


@dataclass(frozen=True)
class Extras:
    """Everything beyond sequences.* that a build writes: split files, windows, padded matrices."""

    train_user_idx: np.ndarray | None = None
    train_offsets: np.ndarray | None = None
    train_items: np.ndarray | None = None
    train_timestamps: np.ndarray | None = None
    valid: EvalRows | None = None
    test: EvalRows | None = None
    windows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    padded: np.ndarray | None = None
    max_len: int | None = None
    pad: str = "left"


def prepare(
    seqs: Sequences, items: Vocabulary, part: np.ndarray | None, info: dict[str, Any], config: BuildConfig
) -> tuple[Sequences, Extras | None, dict[str, Any]]:
    """(sequences to write, the extra outputs, meta.json additions) for the split options of ``config``."""
    opts = config.split
    if part is None and opts.max_len is None and opts.windows is None:
        return seqs, None, {}
    meta: dict[str, Any] = {}
    offsets = seqs.offsets
    if part is None:  # no split: the whole sequences are the training part (for --windows)
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
    train_offsets = csr_offsets(train_counts[train_users])
    fields: dict[str, Any] = {}
    rule = info.get("rule")
    if rule is not None:
        fields.update(train_user_idx=train_users, train_offsets=train_offsets, train_items=train_items)
        fields["train_timestamps"] = seqs.timestamps[train]
        pos, start, length = eval_positions(offsets, seqs.timestamps, part, strict_time=rule == "time")
        which = part[pos]
        evals = {}
        for name, code in (("valid", VALID), ("test", TEST)):
            sel = which == code
            evals[name] = _eval_rows(seqs, pos[sel], start[sel], length[sel], rule, opts.max_len)
        del pos, start, length, which
        if opts.eval_negatives:
            evals, neg_meta = _with_negatives(seqs, train_items, evals, len(items), opts)
            meta["negatives"] = neg_meta
        fields.update(evals)
        sizes: dict[str, Any] = {
            "train": {"users": int(len(train_users)), "interactions": int(train.sum())},
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
        meta["split"] = {
            **info,
            "history": HISTORY_RULE[rule],
            "history_max_len": opts.max_len,
            "vocab_from_train": opts.vocab_from_train,
            "sizes": sizes,
        }
    if opts.windows is not None:
        L, T = opts.window_shape
        x, y, r = sliding_windows(train_items, train_offsets, L, T)
        fields["windows"] = (x, y, train_users[r])
        lengths = np.diff(train_offsets)
        meta["windows"] = {
            "inputs": L,
            "targets": T,
            "windows": int(len(y)),
            "users": int(np.count_nonzero(np.bincount(r, minlength=1))),
            "users_too_short": int((lengths <= T).sum()),
            "source": "train" if rule is not None else "sequences",
        }
    if opts.max_len is not None:
        fields["padded"] = padded(seqs.items.astype(np.int32, copy=False), offsets, opts.max_len, side=opts.pad)
        lengths = np.diff(offsets)
        cut = np.maximum(lengths - opts.max_len, 0)
        meta["truncation"] = {
            "max_len": opts.max_len,
            "pad": opts.pad,
            "truncate_sequences": opts.truncate,
            "users_longer": int((cut > 0).sum()),
            "items_beyond_max_len": int(cut.sum()),
        }
        if opts.truncate:
            seqs = _truncate(seqs, opts.max_len)
    return seqs, Extras(**fields, max_len=opts.max_len, pad=opts.pad), meta


def _truncate(seqs: Sequences, max_len: int) -> Sequences:
    """Each user's ``max_len`` most recent interactions."""
    from .pipeline import Sequences

    starts, lengths = tail_ranges(seqs.offsets[:-1], np.diff(seqs.offsets), max_len)
    new_offsets, pos = gather_ranges(starts, lengths)
    return Sequences(
        offsets=new_offsets,
        items=seqs.items[pos],
        timestamps=seqs.timestamps[pos],
        ratings=None if seqs.ratings is None else seqs.ratings[pos],
        session_ids=None if seqs.session_ids is None else seqs.session_ids[pos],
    )


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


def _with_negatives(
    seqs: Sequences,
    train_items: np.ndarray,
    evals: dict[str, EvalRows],
    num_items: int,
    opts: SplitOptions,
) -> tuple[dict[str, EvalRows], dict[str, Any]]:
    """Sample ``opts.eval_negatives`` items per valid/test row that its user never interacted with."""
    k = opts.eval_negatives
    stride = np.int64(num_items + 1)
    seen_keys = np.unique(row_of(seqs.offsets) * stride + seqs.items)
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
        "excludes": "every item the user interacted with in the kept log",
        "popularity_from": "train" if opts.negatives == "popularity" else None,
        "rounds": rounds,
    }
    return out, meta


def _list(offsets: np.ndarray, values: np.ndarray) -> pa.Array:
    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))


def write_extras(result: BuildResult, folder: Path) -> None:
    """Write train/valid/test (Parquet and/or NPZ, as ``-f`` asks) and windows.npz into ``folder``."""
    ex: Extras | None = result.extras
    if ex is None:
        return
    # the Parquet files are encoded on two threads (pyarrow writes one file on one core)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="seqprep-split") as pool:
        written = _write_extras(result, ex, folder, pool.submit)
        for future in written:
            future.result()


def _write_extras(
    result: BuildResult, ex: Extras, folder: Path, submit: Callable[..., Future[None]]
) -> list[Future[None]]:
    from .writers import write_npz, write_parquet

    written: list[Future[None]] = []
    formats = result.config.formats
    user_ids = result.users.ids
    if ex.train_offsets is not None:
        if "parquet" in formats:
            table = pa.table(
                {
                    "user_idx": pa.array(ex.train_user_idx, pa.int32()),
                    "user_id": user_ids.take(pa.array(ex.train_user_idx)),
                    "items": _list(ex.train_offsets, ex.train_items),
                    "timestamps": _list(ex.train_offsets, ex.train_timestamps),
                }
            )
            written.append(submit(write_parquet, table, folder / "train.parquet"))
        if "npz" in formats:
            arrays = {
                "items": ex.train_items,
                "offsets": ex.train_offsets,
                "timestamps": ex.train_timestamps,
                "user_idx": ex.train_user_idx,
            }
            if ex.max_len is not None:
                arrays["padded"] = padded(ex.train_items, ex.train_offsets, ex.max_len, side=ex.pad)
            write_npz(folder / "train.npz", arrays)
    for name, ev in (("valid", ex.valid), ("test", ex.test)):
        if ev is None:
            continue
        if "parquet" in formats:
            cols: dict[str, Any] = {
                "user_idx": pa.array(ev.user_idx, pa.int32()),
                "user_id": user_ids.take(pa.array(ev.user_idx)),
                "history": _list(ev.history_offsets, ev.history),
                "target": pa.array(ev.target, pa.int32()),
                "target_ts": pa.array(ev.target_ts),
            }
            if ev.negatives is not None:
                k = ev.negatives.shape[1]
                cols["negatives"] = _list(np.arange(len(ev) + 1, dtype=np.int64) * k, ev.negatives.ravel())
            written.append(submit(write_parquet, pa.table(cols), folder / f"{name}.parquet"))
        if "npz" in formats:
            arrays = {
                "user_idx": ev.user_idx,
                "target": ev.target,
                "target_ts": ev.target_ts,
                "history": ev.history,
                "history_offsets": ev.history_offsets,
            }
            if ex.max_len is not None:
                arrays["history_padded"] = padded(ev.history, ev.history_offsets, ex.max_len, side=ex.pad)
            if ev.negatives is not None:
                arrays["negatives"] = ev.negatives
            write_npz(folder / f"{name}.npz", arrays)
    if ex.windows is not None:
        x, y, u = ex.windows
        write_npz(folder / "windows.npz", {"inputs": x, "targets": y, "users": u})
    return written
