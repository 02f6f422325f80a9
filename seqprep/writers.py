"""Outputs: Parquet, NPZ and meta.json, written into a temporary folder that is renamed at the end.

Byte-identical output for the same input and options: no wall-clock time, host name or absolute
temporary path is written anywhere (NPZ members get a fixed 1980-01-01 zip time stamp).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import make_temp_dir, os_error_text, remove_tree, sigterm_unwinds, swap_in
from .errors import OutputError

if TYPE_CHECKING:
    from .pipeline import BuildResult, Sequences

__all__ = [
    "atomic_output_dir",
    "check_output",
    "write_outputs",
    "write_npz",
    "sequences_table",
    "PARQUET_COMPRESSION",
]

PARQUET_COMPRESSION = "zstd"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def check_output(out: Path, overwrite: bool) -> None:
    """Fail early (before any work) when OUT exists and ``overwrite`` is not set."""
    if out.exists() and not overwrite:
        msg = f"output {str(out)!r} already exists; pass --overwrite to replace it, or choose another -o"
        raise OutputError(msg)
    if out.exists() and not out.is_dir():
        msg = f"output {str(out)!r} is a file, not a folder; remove it or choose another -o"
        raise OutputError(msg)


@contextmanager
def atomic_output_dir(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it becomes ``out`` in one rename.

    On any error (or KeyboardInterrupt) the temporary folder is removed and an existing ``out`` is
    left untouched. With ``overwrite`` the old ``out`` is moved aside, the new one renamed in, and only
    then the old one deleted.
    """
    check_output(out, overwrite)
    parent = out.absolute().parent
    with sigterm_unwinds():  # a SIGTERM under its default action still removes the temporary folder
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = make_temp_dir(parent, prefix=f".{out.name}.tmp-")
        except OSError as e:
            msg = f"cannot create the output folder in {str(parent)!r}: {e.strerror}; choose a writable -o"
            raise OutputError(msg) from e
        try:
            yield tmp
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            swap_in(tmp, out, overwrite)  # signals deferred, parent folder locked, old OUT kept on failure
        except BaseException:
            remove_tree(tmp)
            raise


def _list_array(offsets: np.ndarray, values: np.ndarray) -> pa.Array:
    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))


def sequences_table(result: BuildResult) -> pa.Table:
    """sequences.parquet as a table: user_idx, user_id, items, timestamps[, ratings]."""
    seqs = result.sequences
    cols: dict[str, Any] = {
        "user_idx": pa.array(result.users.indices, pa.int32()),
        "user_id": result.users.ids,
        "items": _list_array(seqs.offsets, seqs.items),
        "timestamps": _list_array(seqs.offsets, seqs.timestamps),
    }
    if seqs.ratings is not None:
        cols["ratings"] = _list_array(seqs.offsets, seqs.ratings)
    if seqs.session_ids is not None:
        cols["session_ids"] = _list_array(seqs.offsets, seqs.session_ids)
    return pa.table(cols)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz that ``np.load(path, allow_pickle=False)`` reads, byte-identical on re-runs."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            if arr.dtype.hasobject:
                msg = f"{name}: object arrays cannot go into an npz without pickle"
                raise TypeError(msg)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)


def sequences_npz(seqs: Sequences, user_idx: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {
        "items": seqs.items.astype(np.int32, copy=False),
        "offsets": seqs.offsets.astype(np.int64, copy=False),
        "timestamps": seqs.timestamps,
        "user_idx": user_idx.astype(np.int32, copy=False),
    }
    if seqs.ratings is not None:
        arrays["ratings"] = seqs.ratings.astype(np.float32, copy=False)
    if seqs.session_ids is not None:
        arrays["session_ids"] = seqs.session_ids.astype(np.int32, copy=False)
    return arrays


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_parquet(table: pa.Table, path: Path) -> None:
    """zstd; dictionary pages only for low-cardinality columns; delta encoding for integer times.

    Dictionary-encoding 10^7 distinct timestamps or item indices costs time and saves nothing, while
    DELTA_BINARY_PACKED suits time-sorted int64 timestamps well.
    """
    encodings: dict[str, str] = {}
    dictionary: list[str] = []
    for name in table.column_names:
        typ = table.schema.field(name).type
        value_type = typ.value_type if pa.types.is_list(typ) or pa.types.is_large_list(typ) else typ
        if name == "ratings":
            dictionary.append(name)
        elif pa.types.is_integer(value_type) and name == "timestamps":
            encodings[name] = "DELTA_BINARY_PACKED"
        else:
            encodings[name] = "PLAIN"
    pq.write_table(
        table,
        path,
        compression=PARQUET_COMPRESSION,
        use_dictionary=dictionary,
        column_encoding=encodings,
        write_statistics=True,
    )


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_outputs(result: BuildResult, folder: Path) -> dict[str, Any]:
    """Write every requested file of ``result`` into ``folder``; returns the meta that was written."""
    formats = result.config.formats
    # sequences.parquet (the largest file; pyarrow encodes it on one core) is written by a second
    # thread while this one writes every other file; both are done before anything is hashed
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-write") as pool:
        pending = None
        if "parquet" in formats:
            pending = pool.submit(write_parquet, sequences_table(result), folder / "sequences.parquet")
        try:
            meta = _write_rest(result, folder, pending)
        finally:
            if pending is not None:
                pending.cancel()  # not started yet (an error above): never start it
    return meta


def _write_rest(result: BuildResult, folder: Path, pending: Future[None] | None) -> dict[str, Any]:
    formats = result.config.formats
    try:
        if "npz" in formats:
            arrays = sequences_npz(result.sequences, result.users.indices)
            if result.extras is not None and result.extras.padded is not None:
                arrays["padded"] = result.extras.padded
            write_npz(folder / "sequences.npz", arrays)
        if result.extras is not None:
            from .splits import write_extras

            write_extras(result, folder)
        write_parquet(result.items.to_table("item"), folder / "items.parquet")
        write_parquet(result.users.to_table("user"), folder / "users.parquet")
        if result.config.emit.exports:
            from .exports import write_exports

            write_exports(result, folder)
        if pending is not None:
            pending.result()
        files = {
            p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(folder.iterdir()) if p.is_file()
        }
        meta = dict(result.meta)
        meta["outputs"] = {"formats": list(formats), "exports": list(result.config.emit.exports), "files": files}
        (folder / "meta.json").write_text(dump_json(meta), encoding="utf-8")
    except OSError as e:
        msg = f"cannot write the output: {os_error_text(e)}; free some space or choose another -o"
        raise OutputError(msg) from e
    return meta
