"""Check that the outputs of peers.py's steps hold the same sequences as seqprep's.

``python benchmarks/peers_check.py OUT NAME...`` reads ``OUT/NAME`` for every NAME given and
compares it with ``OUT/seqprep`` (a plain ``seqprep build``):

* ``polars_eager``, ``polars_lazy``, ``pandas``: the same user ids in user order, the same
  vocabulary (``items.parquet``: ids and counts by item_idx 1..N), and per user the same items
  (decoded to original ids), timestamps and ratings (float32), in the same order;
* ``kcore_loo`` (``--min-user-count 5 --min-item-count 5 --split loo``): its sequences equal
  the 5-core of the plain output computed here (count rounds to the fixpoint, order kept), and
  its train/valid/test files are the leave-one-out split of its own sequences (SASRec's rule:
  users with fewer than 3 interactions train only).

Prints one ``ok: ...`` or ``MISMATCH: ...`` line per check; exits 1 on a mismatch. It runs as its
own process so that peers.py stays small (see ``peers.check_outputs``).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

JOBS = ("polars_eager", "polars_lazy", "pandas")
KCORE_MIN = 5


class Mismatch(Exception):
    """Two outputs that should hold the same sequences do not."""


@dataclass(frozen=True)
class Decoded:
    """One output's sequences with items decoded to original ids (flat arrays + CSR offsets)."""

    user_ids: np.ndarray
    offsets: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray
    vocab_ids: np.ndarray
    vocab_counts: np.ndarray


def flat(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list column -> (flat values, int64 offsets of length rows + 1)."""
    lengths = pc.list_value_length(column).to_numpy().astype(np.int64)
    return pc.list_flatten(column).to_numpy(), np.concatenate(([0], np.cumsum(lengths)))


def read_vocab(outdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """items.parquet as (item_id by item_idx - 1, count); its item_idx must be exactly 1..N."""
    items = pq.read_table(outdir / "items.parquet").sort_by("item_idx")
    idx = items["item_idx"].to_numpy()
    if not np.array_equal(idx, np.arange(1, idx.size + 1)):
        raise Mismatch(f"{outdir}: items.parquet item_idx is not 1..{idx.size}")
    return items["item_id"].to_numpy(), items["count"].to_numpy().astype(np.int64)


def read_decoded(outdir: Path) -> Decoded:
    """sequences.parquet + items.parquet of ``outdir``, items decoded to their original ids."""
    seqs = pq.read_table(outdir / "sequences.parquet")
    if not np.array_equal(seqs["user_idx"].to_numpy(), np.arange(seqs.num_rows)):
        raise Mismatch(f"{outdir}: user_idx is not 0..U-1 in row order")
    vocab_ids, vocab_counts = read_vocab(outdir)
    idx, offsets = flat(seqs["items"])
    if idx.size and (idx.min() < 1 or idx.max() > vocab_ids.size):
        raise Mismatch(f"{outdir}: item indices outside 1..{vocab_ids.size}")
    timestamps, _ = flat(seqs["timestamps"])
    ratings, _ = flat(seqs["ratings"])
    return Decoded(
        user_ids=seqs["user_id"].to_numpy(),
        offsets=offsets,
        item_ids=vocab_ids[idx - 1],
        timestamps=timestamps,
        ratings=ratings.astype(np.float32),
        vocab_ids=vocab_ids,
        vocab_counts=vocab_counts,
    )


def first_difference(a: np.ndarray, b: np.ndarray, offsets: np.ndarray | None = None) -> str:
    """Where two arrays first differ (with the user's row when ``offsets`` maps positions to users)."""
    if a.shape != b.shape:
        return f"lengths {a.size:,} vs {b.size:,}"
    pos = int(np.flatnonzero(a != b)[0])
    where = "" if offsets is None else f" (user_idx {int(np.searchsorted(offsets, pos, side='right')) - 1:,})"
    return f"first at position {pos:,}{where}: {a[pos].item()!r} vs {b[pos].item()!r}"


PER_INTERACTION = ("item_ids", "timestamps", "ratings")


def compare(ref: Decoded, other: Decoded, names: Sequence[str] | None = None) -> None:
    """Raise :class:`Mismatch` naming the first field (in declaration order) that differs."""
    for name in names or [f.name for f in fields(Decoded)]:
        a, b = getattr(ref, name), getattr(other, name)
        if not np.array_equal(a, b):
            offsets = ref.offsets if name in PER_INTERACTION else None
            raise Mismatch(f"{name} differ, {first_difference(a, b, offsets)}")


def compare_dir(ref: Decoded, outdir: Path) -> None:
    """:func:`compare` ``ref`` with the output in ``outdir``."""
    compare(ref, read_decoded(outdir))


def kcore(ref: Decoded, min_count: int) -> Decoded:
    """The k-core of ``ref`` (users and items with >= ``min_count`` rows), rounds to the fixpoint, order kept."""
    lengths = np.diff(ref.offsets)
    user_of_row = np.repeat(np.arange(lengths.size), lengths)
    _, item_code = np.unique(ref.item_ids, return_inverse=True)
    keep = np.ones(ref.item_ids.size, dtype=bool)
    while True:  # one vectorised pass per k-core round
        user_count = np.bincount(user_of_row[keep], minlength=lengths.size)
        item_count = np.bincount(item_code[keep], minlength=item_code.max() + 1)
        drop = keep & ((user_count[user_of_row] < min_count) | (item_count[item_code] < min_count))
        if not drop.any():
            break
        keep &= ~drop
    kept_lengths = np.bincount(user_of_row[keep], minlength=lengths.size)
    users = kept_lengths > 0
    offsets = np.concatenate(([0], np.cumsum(kept_lengths[users])))
    item_ids = ref.item_ids[keep]
    return Decoded(
        ref.user_ids[users], offsets, item_ids, ref.timestamps[keep], ref.ratings[keep], *frequency_vocab(item_ids)
    )


def frequency_vocab(item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Item ids and counts in seqprep's frequency order: count descending, then id ascending."""
    ids, counts = np.unique(item_ids, return_counts=True)
    order = np.lexsort((ids, -counts))
    return ids[order], counts[order]


def check_rules(ref: Decoded) -> None:
    """``ref`` follows the documented orders: users by id, the frequency vocabulary, time order per user."""
    if np.any(ref.user_ids[1:] <= ref.user_ids[:-1]):
        raise Mismatch("user ids are not strictly ascending in user_idx order")
    ids, counts = frequency_vocab(ref.item_ids)
    compare(Decoded(ref.user_ids, ref.offsets, ref.item_ids, ref.timestamps, ref.ratings, ids, counts), ref)
    step_back = np.flatnonzero(ref.timestamps[1:] < ref.timestamps[:-1]) + 1
    if np.setdiff1d(step_back, ref.offsets).size:  # a decrease is allowed only where a new user starts
        raise Mismatch("timestamps decrease inside a user's sequence")


def prefix_mask(offsets: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Row mask keeping the first ``keep[u]`` rows of every user ``u`` of a CSR layout."""
    lengths = np.diff(offsets)
    pos = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    return pos < np.repeat(keep, lengths)


def check_loo(outdir: Path) -> None:
    """train/valid/test of ``outdir`` are the leave-one-out split of its own sequences.parquet."""
    seqs = pq.read_table(outdir / "sequences.parquet")
    items, offsets = flat(seqs["items"])
    times, _ = flat(seqs["timestamps"])
    lengths, ends = np.diff(offsets), offsets[1:]
    held = lengths >= 3  # shorter users train only (SASRec's rule)
    train_len = np.where(held, lengths - 2, lengths)
    train = pq.read_table(outdir / "train.parquet")
    got_items, got_offsets = flat(train["items"])
    expect = {
        "train user_idx": (train["user_idx"].to_numpy(), np.flatnonzero(train_len > 0)),
        "train lengths": (np.diff(got_offsets), train_len[train_len > 0]),
        "train items": (got_items, items[prefix_mask(offsets, train_len)]),
    }
    for part, back in (("valid", 2), ("test", 1)):
        table = pq.read_table(outdir / f"{part}.parquet")
        history, history_offsets = flat(table["history"])
        target_row = ends[held] - back
        expect |= {
            f"{part} user_idx": (table["user_idx"].to_numpy(), np.flatnonzero(held)),
            f"{part} target": (table["target"].to_numpy(), items[target_row]),
            f"{part} target_ts": (table["target_ts"].to_numpy(), times[target_row]),
            f"{part} history lengths": (np.diff(history_offsets), lengths[held] - back),
            f"{part} history": (history, items[prefix_mask(offsets, np.where(held, lengths - back, 0))]),
        }
    for name, (got, want) in expect.items():
        if not np.array_equal(got, want):
            raise Mismatch(f"{name} differ, {first_difference(got, want)}")


def check_folder(out: Path, names: Sequence[str]) -> list[str]:
    """Compare the outputs ``out / NAME`` with ``out / "seqprep"``; one ``ok``/``MISMATCH`` line per check."""
    if "seqprep" not in names:
        return ["MISMATCH: no seqprep output to compare against"]
    ref = read_decoded(out / "seqprep")
    lines = [outcome("seqprep: users by id, frequency vocabulary, time order", functools.partial(check_rules, ref))]
    lines += [
        outcome(f"{name} == seqprep", functools.partial(compare_dir, ref, out / name)) for name in JOBS if name in names
    ]
    if "kcore_loo" in names:
        core = kcore(ref, KCORE_MIN)
        what = f"kcore_loo sequences and vocabulary == {KCORE_MIN}-core of seqprep's"
        lines.append(outcome(what, lambda: compare(core, read_decoded(out / "kcore_loo"))))
        lines.append(
            outcome("kcore_loo train/valid/test == loo of its sequences", lambda: check_loo(out / "kcore_loo"))
        )
    summary = f"{ref.user_ids.size:,} users, {ref.vocab_ids.size:,} items, {ref.item_ids.size:,} interactions"
    return [f"{line} ({summary})" if line.startswith("ok") else line for line in lines]


def outcome(what: str, check: Callable[[], None]) -> str:
    """Run one check: ``ok: WHAT`` or ``MISMATCH: WHAT: why``."""
    try:
        check()
    except Mismatch as e:
        return f"MISMATCH: {what}: {e}"
    return f"ok: {what}"


def main(argv: list[str] | None = None) -> None:
    """Command line: ``peers_check.py OUT NAME...``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder holding one output folder per step")
    p.add_argument("names", nargs="+", help="step names (folders of OUT) to check; seqprep is the reference")
    args = p.parse_args(argv)
    lines = check_folder(args.out, args.names)
    print("\n".join(lines))
    sys.exit(1 if any(line.startswith("MISMATCH") for line in lines) else 0)


if __name__ == "__main__":
    main()
