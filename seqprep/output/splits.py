"""The split's files: train/valid/test (Parquet and/or NPZ, as ``-f`` asks) and windows.npz.

What goes in them is decided by :mod:`seqprep.steps.splits`; this only writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..kernels import padded
from ..model import BuildResult, Extras
from .files import feature_arrays, feature_column, feature_lists, list_array, write_npz, write_parquet

__all__ = ["write_extras"]


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
    written: list[Future[None]] = []
    formats = result.config.formats
    user_ids = result.users.ids
    if ex.train_offsets is not None:
        if "parquet" in formats:
            train_cols: dict[str, Any] = {
                "user_idx": pa.array(ex.train_user_idx, pa.int32()),
                "user_id": user_ids.take(pa.array(ex.train_user_idx)),
                "items": list_array(ex.train_offsets, ex.train_items),
                "timestamps": list_array(ex.train_offsets, ex.train_timestamps),
            }
            for f in ex.train_features:
                train_cols[f.name] = feature_lists(ex.train_offsets, f)
            written.append(submit(write_parquet, pa.table(train_cols), folder / "train.parquet"))
        if "npz" in formats:
            arrays = {
                "items": ex.train_items,
                "offsets": ex.train_offsets,
                "timestamps": ex.train_timestamps,
                "user_idx": ex.train_user_idx,
            }
            for f in ex.train_features:
                arrays.update(feature_arrays(f))
            if ex.max_len is not None:
                arrays["padded"] = padded(ex.train_items, ex.train_offsets, ex.max_len, side=ex.pad)
                for f in ex.train_features:
                    arrays.update(feature_arrays(f.padded(ex.train_offsets, ex.max_len, ex.pad), "padded_", ex.max_len))
            write_npz(folder / "train.npz", arrays)
    for name, ev in (("valid", ex.valid), ("test", ex.test)):
        if ev is None:
            continue
        if "parquet" in formats:
            cols: dict[str, Any] = {
                "user_idx": pa.array(ev.user_idx, pa.int32()),
                "user_id": user_ids.take(pa.array(ev.user_idx)),
                "history": list_array(ev.history_offsets, ev.history),
                "target": pa.array(ev.target, pa.int32()),
                "target_ts": pa.array(ev.target_ts),
            }
            if ev.negatives is not None:
                k = ev.negatives.shape[1]
                cols["negatives"] = list_array(np.arange(len(ev) + 1, dtype=np.int64) * k, ev.negatives.ravel())
            for hf, tf in zip(ev.history_features, ev.target_features):
                cols[f"history_{hf.name}"] = feature_lists(ev.history_offsets, hf)
                cols[f"target_{tf.name}"] = feature_column(tf)
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
            for hf, tf in zip(ev.history_features, ev.target_features):
                arrays.update(feature_arrays(hf, "history_"))
                arrays.update(feature_arrays(tf, "target_"))
                if ex.max_len is not None:
                    cells = hf.padded(ev.history_offsets, ex.max_len, ex.pad)
                    arrays.update(feature_arrays(cells, "history_padded_", ex.max_len))
            write_npz(folder / f"{name}.npz", arrays)
    if ex.windows is not None:
        x, y, u = ex.windows
        windows = {"inputs": x, "targets": y, "users": u}
        for inputs, targets in ex.window_features:
            windows.update(feature_arrays(inputs, "inputs_", x.shape[1]))
            windows.update(feature_arrays(targets, "targets_", y.shape[1]))
        write_npz(folder / "windows.npz", windows)
    return written
