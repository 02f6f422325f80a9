"""The output folder: who may be replaced (``--overwrite``), the temporary folder that becomes OUT in
one rename, and every file a build writes into it.

Guarantees (see docs/robustness.md): OUT is only ever replaced by one ``rename`` of a complete folder
(:mod:`seqprep.output.atomic`), only when it holds nothing but an earlier seqprep output, and never when
it is or holds what the build reads; a failed or interrupted build leaves the old OUT as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import ATTRIBUTE_ROLES, BuildConfig
from ..errors import OutputError, write_failed
from ..io.sources import expand_inputs, sha256_file
from ..model import BuildResult
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
from .attributes import write_attribute_files, write_recbole_attributes
from .files import (
    dump_json,
    feature_arrays,
    feature_vocabulary_table,
    sequences_npz,
    write_npz,
    write_parquet,
    write_sequences,
)

__all__ = ["atomic_output_dir", "build_reads", "check_output", "write_error", "write_feature_vocabularies", "write_outputs"]


def build_reads(config: BuildConfig) -> Reads:
    """What a build reads, which ``--overwrite`` must never delete (:func:`seqprep.output.atomic.check_replaceable`):
    the input files (globs expanded; stdin and remote URLs have no local path), the attribute tables, and the ``--vocab-from``
    folder, which OUT may be (re-encoding a build in place: the old vocabulary is read whole before the
    swap) but not hold. Empty without ``--overwrite`` (nothing is replaced then).
    """
    if not config.overwrite:
        return NO_READS
    local = [s.removeprefix("file://") for s in config.inputs if "://" not in s or s.startswith("file://")]
    inputs = tuple(("input", path) for path in expand_inputs(local) if path != "-")
    tables = ((f"--{role}-table", config.feature.table(role)) for role in ATTRIBUTE_ROLES)
    inputs += tuple((flag, str(path)) for flag, path in tables if path is not None)
    vocab = config.vocab.vocab_from
    return Reads(inputs=inputs, in_place=(("--vocab-from folder", vocab),) if vocab is not None else ())


def check_output(out: Path, overwrite: bool, reads: Reads = NO_READS) -> None:
    """Fail early (before any work) when OUT exists and ``overwrite`` is not set, or when ``overwrite``
    may not replace it: it holds files seqprep did not write, one of ``reads``, the current or the home
    folder, or is a symbolic link (:func:`seqprep.output.atomic.check_replaceable`, the one guard of every
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


def write_outputs(
    result: BuildResult,
    folder: Path,
    *,
    sequences_written: bool = False,
    exports_written: bool = False,
    pending: Mapping[str, Future[str]] | None = None,
) -> dict[str, Any]:
    """Write every requested file of ``result`` into ``folder``; returns the meta that was written.

    ``sequences_written``: sequences.parquet is in ``folder`` already (written during the sort);
    ``exports_written``: so are the ``--export`` files (the Dask engine writes them part by part);
    ``pending``: files of ``folder`` (by name) still being written by another thread, each a future
    of its sha256: meta.json is written once they are done.
    """
    formats = result.config.formats
    # sequences.parquet (the largest file) is written, then hashed, by a second thread while this one
    # writes every other file; both are done before meta.json is written
    waiting = dict(pending or {})
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-write") as pool:
        if "parquet" in formats and not sequences_written:
            path = folder / "sequences.parquet"
            waiting["sequences.parquet"] = pool.submit(_written_and_hashed, write_sequences, path, result.users, result.sequences, path)
        try:
            meta = _write_rest(result, folder, waiting, exports_written)
        finally:
            for future in waiting.values():
                future.cancel()  # not started yet (an error above): never start it
    return meta


def _written_and_hashed(write: Callable[..., Any], path: Path, *args: Any) -> str:
    """``write(*args)``, then the sha256 of the ``path`` it wrote (on the writing thread)."""
    write(*args)
    return sha256_file(path)


def _write_rest(result: BuildResult, folder: Path, pending: dict[str, Future[str]], exports_written: bool = False) -> dict[str, Any]:
    formats = result.config.formats
    try:
        known: dict[str, str] = {}  # sha256 of files hashed as they were written
        if "npz" in formats:
            assert result.sequences is not None
            arrays = sequences_npz(result.sequences, result.users.indices)
            ex = result.extras
            if ex is not None and ex.padded is not None:
                arrays["padded"] = ex.padded
                for f in ex.padded_features:
                    arrays.update(feature_arrays(f, "padded_", ex.max_len))
            write_npz(folder / "sequences.npz", arrays)
        if result.extras is not None:
            from .splits import write_extras  # (as write_exports below: imported by the builds that write them)

            known.update(write_extras(result, folder))
        write_parquet(result.items.to_table("item"), folder / "items.parquet")
        write_parquet(result.users.to_table("user"), folder / "users.parquet")
        _write_feature_vocabularies(result, folder)
        write_attribute_files(result, folder)
        if result.extras is not None and result.extras.sessions is not None:  # --session-col
            write_parquet(result.extras.sessions, folder / "sessions.parquet")
        if result.config.emit.exports and not exports_written:
            from .exports import write_exports

            write_exports(result, folder)
        if "recbole" in result.config.emit.exports:
            write_recbole_attributes(result, folder)
        for name, future in pending.items():
            known[name] = future.result()
        files = _file_digests(folder, known)
        meta = dict(result.meta)
        meta["outputs"] = {"formats": list(formats), "exports": list(result.config.emit.exports), "files": files}
        (folder / "meta.json").write_text(dump_json(meta), encoding="utf-8")
    except OSError as e:
        raise write_error(e) from e
    return meta


#: Outputs of fewer bytes in all are hashed on the calling thread (:func:`_file_digests`).
INLINE_HASH_BYTES = 4 << 20


def _file_digests(folder: Path, known: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Every file of ``folder`` (nested ones too: the Dask engine's sequences/part-NNNNN.parquet) by
    its posix path: its size and sha256 - taken from ``known`` (by posix path: files hashed as they
    were written), the others hashed here on two threads (hashlib lets go of the GIL), largest
    first so that the two finish together; on this thread alone below ``INLINE_HASH_BYTES``."""
    known = known or {}
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    names = {p: p.relative_to(folder).as_posix() for p in paths}
    sizes = {p: p.stat().st_size for p in paths}
    digests = {p: known[names[p]] for p in paths if names[p] in known}
    largest_first = sorted((p for p in paths if p not in digests), key=lambda p: -sizes[p])
    if sum(sizes[p] for p in largest_first) < INLINE_HASH_BYTES:  # a small output: hashed here, no threads to start
        digests.update((p, sha256_file(p)) for p in largest_first)
    else:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="seqprep-sha256") as pool:
            digests.update(zip(largest_first, pool.map(sha256_file, largest_first)))
    return {names[p]: {"bytes": sizes[p], "sha256": digests[p]} for p in paths}


def _write_feature_vocabularies(result: BuildResult, folder: Path) -> None:
    """``features/<name>.parquet`` for every categorical and token feature."""
    write_feature_vocabularies(() if result.sequences is None else result.sequences.features, folder)


def write_feature_vocabularies(features: Any, folder: Path) -> None:
    """``features/<name>.parquet`` for each categorical and token feature of ``features`` (the Dask
    engine calls it itself when its sequences stay in parts)."""
    feats = [f for f in features if f.vocab is not None]
    if not feats:
        return
    (folder / "features").mkdir(exist_ok=True)
    for f in feats:
        write_parquet(feature_vocabulary_table(f.vocab), folder / "features" / f"{f.name}.parquet")


def write_error(e: OSError) -> OutputError:
    """The one-line error of a failed write into the output folder (a full disk, a lost mount)."""
    return write_failed(os_error_text(e))
