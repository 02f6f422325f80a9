"""What a PATH of ``seqprep stats`` holds, as per-row columns: a raw log (read and cleaned as
``seqprep build`` does, left in file order, nothing written), a built folder, or its train.parquet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import make_config
from ..dataset import (
    Dataset,
    TokenLists,
    feature_values,
    flat_list,
    is_built,
    load,
    read_feature_vocabulary,
    read_meta,
    reading,
    sequence_features,
)
from ..errors import InputError, empty_log
from ..io import read_log
from ..kernels import csr_offsets, lookup
from ..kernels.sequences import code_counts
from ..model import Interactions, Log
from ..resources import limit_threads
from ..steps.clean import clean
from ..steps.session_key import session_users
from ..steps.where import operand_requests
from ..vocab import Vocabulary

__all__ = ["SPLITS", "Source", "SourceFeature", "attribute_coverage", "open_source", "split_sizes"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SourceFeature:
    """One feature of a built folder (or its train.parquet): values aligned with the rows."""

    name: str
    kind: str
    source: str
    values: np.ndarray | TokenLists
    vocab: Vocabulary | None


@dataclass(frozen=True)
class Source:
    """What one PATH holds: per-row columns ``items``, ``timestamps``, ``ratings`` and the users' lengths.

    Without ``user`` (a built folder, a split) the rows are CSR columns: user ``u``'s rows are
    ``offsets[u]:offsets[u+1]``, in time order. With ``user`` (a raw log, left in file order) row
    ``k`` belongs to user ``user[k]``, and ``offsets`` only gives the lengths. ``items`` are item
    indices, or any distinct codes with ``counted_items`` (the interactions of each code, shifted
    by one: ``counted_items[c + 1]``).
    """

    path: str
    kind: Literal["raw", "built", "split"]
    offsets: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None
    num_items: int
    time_unit: str
    rows: dict[str, int]
    steps: list[dict[str, Any]]
    splits: dict[str, Any] | None
    counted_items: np.ndarray | None = None  # counts of ``items`` shifted by one (see above); needed with ``user``
    user: np.ndarray | None = None  # each row's user code (None: CSR rows, user u at offsets[u]:offsets[u+1])
    features: tuple[SourceFeature, ...] | None = None  # None: a raw log (its features are not encoded)
    attributes: dict[str, Any] | None = None  # a built folder's attribute coverage (attribute_coverage)
    sessions: dict[str, Any] | None = None  # a session-keyed log (--session-col): its sessions and their users

    def __post_init__(self) -> None:
        if self.user is not None and self.counted_items is None:  # raw item codes start at 0
            msg = "a Source in file order (user given) needs counted_items"
            raise ValueError(msg)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row_users(self) -> np.ndarray:
        """Each row's user code (for CSR rows: the row index of the offsets)."""
        if self.user is not None:
            return self.user
        return np.repeat(np.arange(len(self.offsets) - 1, dtype=np.int64), self.lengths)

    @property
    def item_counts(self) -> np.ndarray:
        """Interactions of each item that occurs, by item index (zeros left out)."""
        counts = self.counted_items if self.counted_items is not None else np.bincount(self.items)
        counts = counts[1:].astype(np.int64)
        return counts[counts > 0]


def open_source(path: str, *, stdin: BinaryIO | None = None, **read_options: Any) -> Source:
    """A built folder (``seqprep.load``), its ``train.parquet`` split, or a raw log (built in memory
    with ``read_options``, nothing written)."""
    p = Path(path)
    if path != "-" and p.is_file() and is_built(p.parent):
        if p.name == "train.parquet":
            return _open_train(p)
        msg = (
            f"{path!r} is a file of the built folder {str(p.parent)!r}; pass the folder (its split sizes are "
            "reported there) or its train.parquet"
        )
        raise InputError(msg)
    if path != "-" and is_built(path):
        ds = load(path)
        meta = ds.meta
        n = len(ds.items)
        return Source(
            path=str(path),
            kind="built",
            offsets=np.asarray(ds.offsets, dtype=np.int64),
            items=ds.items,
            timestamps=ds.timestamps,
            ratings=ds.ratings,
            num_items=ds.num_items,
            time_unit=meta.get("timestamp", {}).get("unit", "s"),
            rows=meta.get("rows", {"read": n, "kept": n, "removed": 0}),
            steps=list(meta.get("steps", [])),
            splits=split_sizes(Path(path), meta),
            features=tuple(
                SourceFeature(name, str(entry.get("kind")), str(entry.get("source")), ds.features[name], ds.feature_vocabs.get(name))
                for name, entry in sorted(sequence_features(meta).items())
            ),
            attributes=attribute_coverage(ds),
            sessions=_recorded_sessions(meta.get("session_key")),
        )
    return _raw_source(path, stdin, read_options)


def attribute_coverage(ds: Dataset) -> dict[str, Any] | None:
    """How well a built folder's attribute tables cover its kept items and users (None without tables):
    per table the table's rows, the kept ids with and without a row, the rows ignored, and per
    attribute the kept ids that have a value."""
    tables = ds.meta.get("attribute_tables")
    if not isinstance(tables, dict) or not tables:
        return None
    out: dict[str, Any] = {}
    for role, attrs in (("item", ds.item_features), ("user", ds.user_features)):
        table = tables.get(role)
        if not isinstance(table, dict):
            out[role] = None
            continue
        n = ds.num_items if role == "item" else ds.num_users
        first = 1 if role == "item" else 0  # item rows start with the padding row
        coverage = []
        for name in attrs:
            kind = attrs.kinds[name]
            if kind == "tokens":
                has = np.diff(attrs.offsets[name])[first : first + n] > 0
            else:
                values = attrs.arrays[name][first : first + n]
                has = ~np.isnan(values) if kind == "num" else values > 0
            with_value = int(has.sum())
            vocab = attrs.vocabularies.get(name)
            coverage.append(
                {
                    "name": name,
                    "kind": kind,
                    "values": None if vocab is None else len(vocab),
                    "with_value": with_value,
                    "share": with_value / n if n else 0.0,
                }
            )
        out[role] = {
            "table_rows": int(table.get("rows", 0)),
            "with_row": int(table.get(f"{role}s_with_row", 0)),
            "without_row": int(table.get(f"{role}s_without_row", 0)),
            "rows_ignored": int(table.get("rows_ignored", 0)),
            "coverage": coverage,
        }
    return out


def _raw_source(path: str, stdin: BinaryIO | None, read_options: dict[str, Any]) -> Source:
    """A raw log read and cleaned as ``seqprep build`` does (same reader, same missing-value step,
    same errors), left in file order (``summarize`` sorts what needs an order), with no vocabulary
    ordered, nothing hashed and nothing written: users keep their reader codes and items are coded
    in id order, which give the same numbers."""
    config = make_config([path], "<memory>", **read_options)
    config.validate()
    with limit_threads(config.resources.threads):
        log = read_log(
            config.inputs,
            config.read,
            stdin=stdin,
            block_size=config.resources.block_size_bytes,
            hash_inputs=False,
            operands=operand_requests(config),
        )
        if log.num_rows == 0:
            raise empty_log(i.path for i in log.inputs)
        inter, steps = clean(log, config)
        counts = code_counts(inter.user, len(log.user_ids))
        # items coded in id order: a log grouped by user with items in id order (MovieLens files)
        # then has its (user, item) pairs in order, and duplicates are counted without a sort
        by_id = np.empty(len(log.item_ids), dtype=np.int32)
        by_id[pc.sort_indices(log.item_ids).to_numpy()] = np.arange(len(log.item_ids), dtype=np.int32)
        items = lookup(by_id, inter.item)
        counted_items = np.zeros(len(log.item_ids) + 1, dtype=np.int64)
        counted_items[1:] = code_counts(items, len(log.item_ids))
        n = len(inter.user)
        return Source(
            path=path,
            kind="raw",
            offsets=csr_offsets(counts[counts > 0]),
            items=items,
            timestamps=inter.time,
            ratings=inter.rating,
            num_items=int(np.count_nonzero(counted_items)),
            time_unit=log.time_unit,
            rows={"read": log.num_rows, "kept": n, "removed": log.num_rows - n},
            steps=steps,
            splits=None,
            counted_items=counted_items,
            user=inter.user,
            sessions=_raw_sessions(log, inter, counts),
        )


def _session_entry(key: str, sessions: int, users: int, without: int, several: int) -> dict[str, Any]:
    return {
        "key": key,
        "sessions": sessions,
        "users": users,
        "sessions_without_user": without,
        "sessions_with_several_users": several,
    }


def _raw_sessions(log: Log, inter: Interactions, counts: np.ndarray) -> dict[str, Any] | None:
    """The ``sessions`` entry of a raw session-keyed log (``counts``: kept rows per key code)."""
    keyed = session_users(log, inter)
    if keyed is None:
        return None
    present = counts > 0
    without = int(np.count_nonzero(present & (keyed.first[: len(present)] < 0)))
    return _session_entry(keyed.session_column, int(present.sum()), keyed.num_users, without, keyed.several)


def _recorded_sessions(key: Any) -> dict[str, Any] | None:
    """The ``sessions`` entry of a built folder, from meta.json's ``session_key``."""
    if not isinstance(key, dict):
        return None
    return _session_entry(
        key.get("column"),
        key.get("num_sessions"),
        key.get("num_users"),
        key.get("sessions_without_user"),
        key.get("sessions_with_several_users"),
    )


def _open_train(path: Path) -> Source:
    """The training split of a built folder as sequences: list columns ``items`` and ``timestamps``."""
    meta = read_meta(path.parent)
    with reading(path.parent, path.name):
        table = pq.read_table(path)
        if "items" not in table.column_names or "timestamps" not in table.column_names:
            msg = f"{str(path)!r} has no items/timestamps list columns; rebuild the folder with seqprep build"
            raise InputError(msg)
        offsets, items = flat_list(table["items"])
        _, timestamps = flat_list(table["timestamps"])
        ratings = flat_list(table["ratings"])[1] if "ratings" in table.column_names else None
        entries = sorted(sequence_features(meta).items())
        need = [name for name, _ in entries if name not in table.column_names]
        if need:
            msg = f"{str(path)!r} has no column {', '.join(need)}, which meta.json features lists; rebuild the folder with seqprep build"
            raise InputError(msg)
        values = {name: feature_values(table[name], str(e.get("kind"))) for name, e in entries}
    features = tuple(
        SourceFeature(
            name,
            str(e.get("kind")),
            str(e.get("source")),
            values[name],
            read_feature_vocabulary(path.parent, name, e.get("oov_idx")) if e.get("vocabulary") else None,
        )
        for name, e in entries
    )
    n = len(items)
    return Source(
        path=str(path),
        kind="split",
        offsets=offsets,
        items=items,
        timestamps=timestamps,
        ratings=ratings,
        num_items=int(np.count_nonzero(np.bincount(items)[1:])) if n else 0,
        time_unit=meta.get("timestamp", {}).get("unit", "s"),
        rows={"read": n, "kept": n, "removed": 0},
        steps=[],
        splits=None,
        features=features,
    )


def split_sizes(folder: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """Sizes of ``train`` / ``valid`` / ``test`` Parquet files of a built folder, or None without splits.

    ``train`` has a list column ``items`` (interactions = their total length); ``valid`` / ``test``
    have one ``target`` per row (interactions = targets). ``rule`` is meta.json's ``split`` as is.
    """
    files = {name: folder / f"{name}.parquet" for name in SPLITS}
    if "split" not in meta and not any(f.is_file() for f in files.values()):
        return None
    out: dict[str, Any] = {"rule": meta.get("split")}
    for name, f in files.items():
        if not f.is_file():
            out[name] = None
            continue
        with reading(folder, f.name):
            pf = pq.ParquetFile(f)
            users = pf.metadata.num_rows
            names = pf.schema_arrow.names
            if "items" in names:
                col = pf.read(columns=["items"])["items"]
                interactions = int(pc.sum(pc.list_value_length(col)).as_py() or 0)
            elif "target" in names:
                col = pf.read(columns=["target"])["target"]
                interactions = users - col.null_count
            else:
                interactions = users
        out[name] = {"users": users, "interactions": interactions}
    return out
