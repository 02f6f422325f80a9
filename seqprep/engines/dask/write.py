"""The Dask engine's outputs, written by the client from the computed parts in user order, one part
at a time (a part is fetched from its worker only when it is written): each as
``sequences/part-NNNNN.parquet`` (contiguous user ranges, in user-index order), into the exports and
the ``-o -`` stream as they arrive, or kept for sequences.npz / the Python result."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...kernels import csr_offsets
from ...model import Sequences
from ...output.files import sequences_columns, write_parquet
from ...vocab import Vocabulary
from .lists import joined
from .partitions import part_stats

__all__ = ["PARTS_FOLDER", "gather", "part_sequences", "part_table", "parts_in_order", "stats", "write_parts"]

PARTS_FOLDER = "sequences"


def part_sequences(part: dict[str, Any]) -> Sequences:
    """One computed part (users ``lo..hi-1``) as sequences with offsets from 0."""
    return Sequences(
        offsets=part["offsets"],
        items=part["items"],
        timestamps=part["timestamps"],
        ratings=part["ratings"],
        session_ids=part["session_ids"],
        features=tuple(part.get("features", ())),
    )


def part_table(part: dict[str, Any], users: Vocabulary, large: bool) -> Any:
    """One part's rows of sequences.parquet (``large``: list columns as ``large_list``)."""
    lo, hi = part["lo"], part["hi"]
    return sequences_columns(
        np.arange(lo, hi, dtype=np.int32), users.ids.slice(lo, hi - lo), part_sequences(part), large
    )


def stats(client: Any, futures: list[Any]) -> list[dict[str, Any]]:
    """Every part's ties and session lengths (small), computed beside the parts: meta.json's figures."""
    return client.gather(client.map(part_stats, futures))


def parts_in_order(futures: list[Any]) -> Iterator[dict[str, Any]]:
    """The parts, fetched one at a time in user order; each is let go on its worker once fetched."""
    for fut in futures:
        part = fut.result()
        fut.release()
        yield part


def write_parts(
    parts: Iterable[dict[str, Any]],
    users: Vocabulary,
    folder: Path | None,
    keep: bool,
    consumers: tuple[Callable[[dict[str, Any]], None], ...] = (),
) -> list[dict[str, Any]]:
    """The parts, in user order (:func:`parts_in_order`): with ``folder``, each written as
    ``sequences/part-NNNNN.parquet``; each handed to the ``consumers`` (exports, the stream).
    Returns the parts kept whole with ``keep``."""
    if folder is not None:
        (folder / PARTS_FOLDER).mkdir()
    large = bool(users.counts.sum() >= 2**31)
    kept = []
    for j, part in enumerate(parts):
        if folder is not None:
            write_parquet(part_table(part, users, large), folder / PARTS_FOLDER / f"part-{j:05d}.parquet")
        for consume in consumers:
            consume(part)
        if keep:
            kept.append(part)
    return kept


def gather(parts: list[dict[str, Any]], users: Vocabulary, as_float: bool, has_rating: bool) -> Sequences:
    """The parts (kept whole) as the sequences of every user, in order."""
    dtype = np.float64 if as_float else np.int64
    if not parts:
        return Sequences(
            offsets=csr_offsets(users.counts),
            items=np.zeros(0, np.int32),
            timestamps=np.zeros(0, dtype),
            ratings=None,
        )
    return Sequences(  # offsets from the parts: with --truncate they hold fewer than users.counts
        offsets=csr_offsets(np.concatenate([np.diff(p["offsets"]) for p in parts])),
        items=np.concatenate([p["items"] for p in parts]),
        timestamps=np.concatenate([p["timestamps"] for p in parts]).astype(dtype, copy=False),
        ratings=np.concatenate([p["ratings"] for p in parts]) if has_rating else None,
        session_ids=np.concatenate([p["session_ids"] for p in parts]) if parts[0]["session_ids"] is not None else None,
        features=tuple(
            joined(fs) for fs in zip(*(p.get("features", ()) for p in parts))
        ),
    )
