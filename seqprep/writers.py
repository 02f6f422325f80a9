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
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import (
    NO_READS,
    Reads,
    check_replaceable,
    make_temp_dir,
    os_error_text,
    remove_tree,
    sigterm_unwinds,
    swap_in,
)
from .config import BuildConfig
from .errors import OutputError
from .io.sources import sha256_file
from .kernels.sequences import sequence_parts
from .model import BuildResult, Sequences
from .readers import expand_inputs
from .vocab import Vocabulary

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


def build_reads(config: BuildConfig) -> Reads:
    """What a build reads, which ``--overwrite`` must never delete (:func:`seqprep.atomic.check_replaceable`):
    the input files (globs expanded; stdin and remote URLs have no local path) and the ``--vocab-from``
    folder, which OUT may be (re-encoding a build in place: the old vocabulary is read whole before the
    swap) but not hold. Empty without ``--overwrite`` (nothing is replaced then).
    """
    if not config.overwrite:
        return NO_READS
    local = [s.removeprefix("file://") for s in config.inputs if "://" not in s or s.startswith("file://")]
    inputs = tuple(("input", path) for path in expand_inputs(local) if path != "-")
    vocab = config.vocab.vocab_from
    return Reads(inputs=inputs, in_place=(("--vocab-from folder", vocab),) if vocab is not None else ())


def check_output(out: Path, overwrite: bool, reads: Reads = NO_READS) -> None:
    """Fail early (before any work) when OUT exists and ``overwrite`` is not set, or when ``overwrite``
    may not replace it: it holds files seqprep did not write, one of ``reads``, the current or the home
    folder, or is a symbolic link (:func:`seqprep.atomic.check_replaceable`, the one guard of every
    command that writes a folder; :func:`atomic_output_dir` calls this and checks again before the swap).
    """
    if not os.path.lexists(out):
        return
    if not overwrite:
        msg = f"output {str(out)!r} already exists; pass --overwrite to replace it, or choose another -o"
        raise OutputError(msg)
    check_replaceable(out, reads)


@contextmanager
def atomic_output_dir(out: Path, overwrite: bool, reads: Reads = NO_READS) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it becomes ``out`` in one rename.

    On any error (or KeyboardInterrupt) the temporary folder is removed and an existing ``out`` is
    left untouched. With ``overwrite`` the old ``out`` is moved aside, the new one renamed in, and only
    then the old one deleted - only when it may be replaced (:func:`check_output` with ``reads``, the
    paths the command reads), checked on entry and again right before the swap.
    """
    check_output(out, overwrite, reads)
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
            swap_in(tmp, out, overwrite, reads)  # signals deferred, parent folder locked, old OUT kept on failure
        except BaseException:
            remove_tree(tmp)
            raise


def list_array(offsets: np.ndarray, values: np.ndarray, large: bool | None = None) -> pa.Array:
    """A list column from CSR ``offsets`` (any start) and ``values``: ``list``, or ``large_list``
    when it holds 2**31 values or more (``large`` decides it for every part of one file)."""
    if large is None:
        large = offsets[-1] - offsets[0] >= 2**31
    if not large:
        return pa.ListArray.from_arrays(pa.array((offsets - offsets[0]).astype(np.int32)), pa.array(values))
    return pa.LargeListArray.from_arrays(pa.array(offsets - offsets[0]), pa.array(values))


def sequences_table(result: BuildResult) -> pa.Table:
    """sequences.parquet as a table: user_idx, user_id, items, timestamps[, ratings][, session_ids]."""
    return sequences_part(result.users, result.sequences, 0, len(result.users))


def sequences_part(users: Vocabulary, seqs: Sequences, u0: int, u1: int) -> pa.Table:
    """The rows of users ``u0 <= u < u1`` of sequences.parquet (one row group of it).

    ``seqs`` may be filled only for those users so far (see :func:`~seqprep.kernels.sequences.sequence_parts`). List columns are
    ``list`` unless the whole file holds 2**31 values or more (``large_list`` then, in every part).
    """
    offsets = seqs.offsets[u0 : u1 + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    large = bool(seqs.offsets[-1] >= 2**31)
    cols: dict[str, Any] = {
        "user_idx": pa.array(users.indices[u0:u1], pa.int32()),
        "user_id": users.ids.slice(u0, u1 - u0),
        "items": list_array(offsets, seqs.items[lo:hi], large),
        "timestamps": list_array(offsets, seqs.timestamps[lo:hi], large),
    }
    if seqs.ratings is not None:
        cols["ratings"] = list_array(offsets, seqs.ratings[lo:hi], large)
    if seqs.session_ids is not None:
        cols["session_ids"] = list_array(offsets, seqs.session_ids[lo:hi], large)
    return pa.table(cols)


class SequencesWriter:
    """sequences.parquet written row group by row group, in user order (see :func:`~seqprep.kernels.sequences.sequence_parts`).

    The file is opened here and always closed by :meth:`close`, even when the Parquet footer cannot
    be written (a full disk): nothing keeps the output folder busy after an error.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sink: Any = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pq.ParquetWriter(self._sink, table.schema, **_parquet_options(table.schema))
        self._writer.write_table(table)

    def close(self) -> None:
        writer, sink = self._writer, self._sink
        self._writer = self._sink = None
        try:
            if writer is not None:
                writer.close()
        finally:
            if sink is not None:
                sink.close()


def write_sequences(users: Vocabulary, seqs: Sequences, path: Path) -> None:
    """sequences.parquet from complete sequences, with the same row groups a streamed build writes."""
    bounds = sequence_parts(seqs.offsets)
    writer = SequencesWriter(path)
    try:
        for u0, u1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            writer.write(sequences_part(users, seqs, u0, u1))
    finally:
        writer.close()


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


#: List columns that hold item indices (sequences, training histories, evaluation negatives).
_ITEM_LISTS = ("items", "history", "negatives")


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """zstd; dictionary pages only for ratings (a few distinct values); no dictionary elsewhere.

    Dictionary-encoding 10^7 distinct timestamps or item indices costs time and saves nothing.
    Options name leaf columns (``items.list.element`` inside a list). Item indices in lists
    (``items``, ``history``, ``negatives``) are DELTA_BINARY_PACKED and left uncompressed (as small as PLAIN + zstd, in two thirds of the time);
    timestamps in lists are PLAIN + zstd, a flat integer ``timestamps`` column DELTA_BINARY_PACKED.
    """
    encodings: dict[str, str] = {}
    dictionary: list[str] = []
    compression: dict[str, str] = {}
    for name in schema.names:
        typ = schema.field(name).type
        nested = pa.types.is_list(typ) or pa.types.is_large_list(typ)
        value_type = typ.value_type if nested else typ
        leaf = f"{name}.list.element" if nested else name
        compression[leaf] = PARQUET_COMPRESSION
        if name == "ratings":
            dictionary.append(leaf)
        elif nested and name in _ITEM_LISTS and pa.types.is_integer(value_type):
            encodings[leaf] = "DELTA_BINARY_PACKED"
            compression[leaf] = "none"
        elif not nested and pa.types.is_integer(value_type) and name == "timestamps":
            encodings[leaf] = "DELTA_BINARY_PACKED"
        else:
            encodings[leaf] = "PLAIN"
    return {
        "compression": compression,
        "use_dictionary": dictionary,
        "column_encoding": encodings,
        "write_statistics": True,
    }


def write_parquet(table: pa.Table, path: Path) -> None:
    """One table as one Parquet file (options: :func:`_parquet_options`)."""
    pq.write_table(table, path, **_parquet_options(table.schema))


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_outputs(result: BuildResult, folder: Path, *, sequences_written: bool = False) -> dict[str, Any]:
    """Write every requested file of ``result`` into ``folder``; returns the meta that was written.

    ``sequences_written``: sequences.parquet is in ``folder`` already (written during the sort).
    """
    formats = result.config.formats
    # sequences.parquet (the largest file; pyarrow encodes it on one core) is written by a second
    # thread while this one writes every other file; both are done before anything is hashed
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-write") as pool:
        pending = None
        if "parquet" in formats and not sequences_written:
            pending = pool.submit(write_sequences, result.users, result.sequences, folder / "sequences.parquet")
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
            from .output.splits import write_extras

            write_extras(result, folder)
        write_parquet(result.items.to_table("item"), folder / "items.parquet")
        write_parquet(result.users.to_table("user"), folder / "users.parquet")
        if result.config.emit.exports:
            from .output.exports import write_exports

            write_exports(result, folder)
        if pending is not None:
            pending.result()
        files = {
            p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(folder.iterdir()) if p.is_file()
        }
        meta = dict(result.meta)
        meta["outputs"] = {"formats": list(formats), "exports": list(result.config.emit.exports), "files": files}
        (folder / "meta.json").write_text(dump_json(meta), encoding="utf-8")
    except OSError as e:
        raise write_error(e) from e
    return meta


def write_error(e: OSError) -> OutputError:
    """The one-line error of a failed write into the output folder (a full disk, a lost mount)."""
    return OutputError(f"cannot write the output: {os_error_text(e)}; free some space or choose another -o")
