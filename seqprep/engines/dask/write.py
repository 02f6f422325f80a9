"""The Dask engine's outputs: each computed part written as ``sequences/part-NNNNN.parquet`` the moment
it arrives (contiguous user ranges, in user-index order), or gathered on the client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...kernels import csr_offsets
from ...model import Sequences
from ...output.files import sequences_columns, write_parquet
from ...vocab import Vocabulary

__all__ = ["PARTS_FOLDER", "gather", "part_sequences", "write_parts"]

PARTS_FOLDER = "sequences"


def part_sequences(part: dict[str, Any]) -> Sequences:
    """One computed part (users ``lo..hi-1``) as sequences with offsets from 0."""
    return Sequences(
        offsets=part["offsets"],
        items=part["items"],
        timestamps=part["timestamps"],
        ratings=part["ratings"],
        session_ids=part["session_ids"],
    )


def write_parts(
    client: Any, distributed: Any, pieces: list[Any], users: Vocabulary, folder: Path | None, keep: bool
) -> list[dict[str, Any]]:
    """Compute the parts; with ``folder``, write each as ``sequences/part-NNNNN.parquet`` as soon as it
    arrives. Returns per part its ties and (with ``keep``) its arrays, in part order."""
    if folder is not None:
        (folder / PARTS_FOLDER).mkdir()
    futures = client.compute(pieces)
    index = {f.key: j for j, f in enumerate(futures)}
    done: list[dict[str, Any] | None] = [None] * len(futures)
    for fut in distributed.as_completed(futures):
        part = fut.result()
        j = index[fut.key]
        fut.release()
        if folder is not None:
            lo, hi = part["lo"], part["hi"]
            table = sequences_columns(np.arange(lo, hi, dtype=np.int32), users.ids.slice(lo, hi - lo), part_sequences(part))
            write_parquet(table, folder / PARTS_FOLDER / f"part-{j:05d}.parquet")
        done[j] = part if keep else {"ties": part["ties"], "session_lengths": part["session_lengths"]}
    return [d for d in done if d is not None]


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
    return Sequences(
        offsets=csr_offsets(users.counts),
        items=np.concatenate([p["items"] for p in parts]),
        timestamps=np.concatenate([p["timestamps"] for p in parts]).astype(dtype, copy=False),
        ratings=np.concatenate([p["ratings"] for p in parts]) if has_rating else None,
        session_ids=np.concatenate([p["session_ids"] for p in parts]) if parts[0]["session_ids"] is not None else None,
    )
