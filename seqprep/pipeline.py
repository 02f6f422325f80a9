"""The one build pipeline, shared by the CLI and the Python API.

``run(config)`` goes: read -> drop rows with missing values -> vocabularies -> stable time sort ->
CSR sequences -> (optionally) write. Each step is a pure function of arrays; the only state carried
forward is the immutable :class:`~seqprep.vocab.Vocabulary` pair.

Order of steps and tie rule (documented in README and recorded in meta.json):

1. inputs are concatenated in the order given (globs expand sorted), rows in file order;
2. rows with a missing user, item or timestamp are dropped and counted (``--strict`` rejects them);
   with ``--vocab-from``, rows whose item the reused vocabulary lacks are counted (and dropped with
   ``--unknown drop``) - see :mod:`seqprep.reuse`; then the optional cleaning steps run in their fixed
   order - time window, rating, dedup, k-core (:mod:`seqprep.filters`) - each counted in meta.json
   ``steps``; kept rows stay in input order;
3. vocabularies are fitted on the kept rows (items 1..N, 0 = padding; users 0..U-1), or reused;
4. each user's interactions are sorted by timestamp, stably: equal timestamps keep input order.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time as _time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# pyarrow imports pandas lazily on its first pa.scalar() of a Python value, i.e. in the middle of a
# build; importing it up front keeps a Ctrl-C/SIGTERM from landing inside that import, which leaves a
# half-initialised pandas module and an AttributeError traceback instead of a clean interruption.
import pandas  # noqa: F401
import pyarrow as pa

from . import __version__, reuse, splits
from .atomic import NO_READS, Reads
from .config import BuildConfig, make_config
from .errors import InputError
from .filters import add_sessions, apply_filters
from .kernels import csr_offsets, fit_order, lookup, remap_table, tie_stats, time_order
from .kernels.filters import num_present
from .kernels.sequences import rows_in_time_order, user_range_rows
from .progress import SILENT, Progress
from .readers import InputInfo, Log, expand_inputs, read_log
from .resources import limit_threads, sort_threads
from .vocab import Vocabulary

__all__ = [
    "Sequences",
    "Interactions",
    "BuildResult",
    "run",
    "build",
    "clean",
    "fit_vocabularies",
    "sequences_from",
    "make_meta",
    "build_reads",
    "TIE_RULE",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1
TIE_RULE = "stable: equal timestamps keep input order (inputs in the order given, then line order)"


@dataclass(frozen=True)
class Sequences:
    """Per-user item sequences in CSR form: row ``u`` is ``items[offsets[u]:offsets[u+1]]``."""

    offsets: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None
    session_ids: np.ndarray | None = None  # --session-gap: int32 session number within each user, from 0

    @property
    def num_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced: vocabularies, sequences, meta.json's content and where it went."""

    config: BuildConfig
    users: Vocabulary
    items: Vocabulary
    sequences: Sequences | None  # None only for a Dask build written to Parquet parts (load(out) reads them)
    meta: dict[str, Any]
    output: Path | None = None
    seconds: float = field(default=0.0, compare=False)
    extras: Any = field(default=None, compare=False)  # seqprep.splits.Extras: split files, windows, padded


def _drop_missing(log: Log, strict: bool) -> tuple[np.ndarray | None, dict[str, Any]]:
    """-> (mask of kept rows or None when all are kept, report of the step)."""
    n = log.num_rows
    if n == 0 or (int(log.user_codes.min()) >= 0 and int(log.item_codes.min()) >= 0 and bool(log.time_valid.all())):
        return None, missing_report(n, 0, 0, 0, 0)  # the usual case: three reductions, no masks
    miss_user = log.user_codes < 0
    miss_item = log.item_codes < 0
    miss_time = ~log.time_valid
    bad = miss_user | miss_item | miss_time
    n_bad = int(bad.sum())
    report = missing_report(log.num_rows, int(miss_user.sum()), int(miss_item.sum()), int(miss_time.sum()), n_bad)
    if n_bad == 0:
        return None, report
    if strict:
        raise strict_missing_error(log.inputs, n_bad, int(np.argmax(bad)))
    return ~bad, report


def missing_report(rows: int, missing_user: int, missing_item: int, missing_time: int, removed: int) -> dict[str, Any]:
    """The ``missing`` step's entry of meta.json ``steps``."""
    return {
        "step": "missing",
        "rows_before": rows,
        "rows_removed": removed,
        "rows_after": rows - removed,
        "missing_user": missing_user,
        "missing_item": missing_item,
        "missing_time": missing_time,
    }


def strict_missing_error(inputs: tuple[InputInfo, ...], n_bad: int, first_bad_row: int) -> InputError:
    where = _locate(inputs, first_bad_row)
    msg = (
        f"{n_bad} rows have a missing user, item or timestamp (first at {where}); "
        "fix them, or drop --strict to skip and count them"
    )
    return InputError(msg)


def no_rows_left_error(rows: int) -> InputError:
    msg = f"no interactions left: all {rows} rows have a missing user, item or timestamp; check the columns chosen"
    return InputError(msg)


def _locate(inputs: tuple[InputInfo, ...], row: int) -> str:
    for info in inputs:
        if row < info.rows:
            return f"{info.path} row {row + 1}"
        row -= info.rows
    return f"row {row + 1}"


def sequences_from(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    time: np.ndarray,
    rating: np.ndarray | None,
    user_counts: np.ndarray,
    on_part: Callable[[Sequences, int, int], None] | None = None,
) -> Sequences:
    """Group interactions (already encoded) into time-ordered CSR sequences (sorted on every core).

    With ``on_part``, the users are sorted in row groups (:func:`~seqprep.writers.sequence_parts`) on
    a thread pool, and ``on_part(seqs, u0, u1)`` is called in this thread, in user order, as soon as
    users ``u0 <= u < u1`` are in place in ``seqs`` (the arrays being filled): a build writes
    sequences.parquet there while the next groups are still being sorted. The result is the same.
    """
    if on_part is None:
        order = time_order(user_idx, time, threads=sort_threads())
        return Sequences(
            offsets=csr_offsets(user_counts),
            items=item_idx[order],
            timestamps=time[order],
            ratings=None if rating is None else rating[order],
        )
    from concurrent.futures import ThreadPoolExecutor

    from .writers import sequence_parts

    offsets = csr_offsets(user_counts)
    n = len(user_idx)
    seqs = Sequences(
        offsets=offsets,
        items=np.empty(n, dtype=item_idx.dtype),
        timestamps=np.empty(n, dtype=time.dtype),
        ratings=None if rating is None else np.empty(n, dtype=rating.dtype),
    )
    bounds = sequence_parts(offsets)
    parts = user_range_rows(user_idx, bounds, counts=user_counts)
    grouped = isinstance(parts[0], slice)  # rows already grouped by user: each part is a slice

    def sort_part(k: int) -> None:
        lo, hi = int(offsets[bounds[k]]), int(offsets[bounds[k + 1]])
        order = rows_in_time_order(user_idx, time, parts[k])
        np.take(item_idx, order, out=seqs.items[lo:hi])
        np.take(time, order, out=seqs.timestamps[lo:hi])
        if rating is not None:
            np.take(rating, order, out=seqs.ratings[lo:hi])

    # this thread writes while the pool sorts: rows grouped by user sort fast, so one core is left
    # for the writer; scattered rows make the sort the longer job, and it gets every core
    # (at most 8 groups at once: each holds ~50-80 MB of temporaries)
    workers = min(8, max(1, sort_threads() - 1) if grouped else sort_threads())
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seqprep-sort") as pool:
        futures = [pool.submit(sort_part, k) for k in range(len(bounds) - 1)]
        try:
            for k, future in enumerate(futures):
                future.result()
                on_part(seqs, int(bounds[k]), int(bounds[k + 1]))
        finally:
            for future in futures:
                future.cancel()
    return seqs


def _length_stats(lengths: np.ndarray) -> dict[str, float | int]:
    if len(lengths) == 0:
        return {"min": 0, "median": 0.0, "mean": 0.0, "max": 0}
    return {
        "min": int(lengths.min()),
        "median": float(np.median(lengths)),
        "mean": round(float(lengths.mean()), 6),
        "max": int(lengths.max()),
    }


@dataclass(frozen=True)
class Interactions:
    """Rows that survive cleaning, in input order: codes into the log's id dictionaries."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    rating: np.ndarray | None

    def __len__(self) -> int:
        return len(self.user)

    def take(self, keep: np.ndarray | None) -> Interactions:
        """The rows where ``keep`` is True (``None`` keeps all, without a copy)."""
        if keep is None:
            return self
        return Interactions(
            user=self.user[keep],
            item=self.item[keep],
            time=self.time[keep],
            rating=None if self.rating is None else self.rating[keep],
        )


def clean(log: Log, config: BuildConfig) -> tuple[Interactions, list[dict[str, Any]]]:
    """Stage 1: every row-removing step, in its documented order; each appends a report to ``steps``."""
    keep, missing_report = _drop_missing(log, config.strict)
    inter = Interactions(user=log.user_codes, item=log.item_codes, time=log.time, rating=log.rating).take(keep)
    steps = [missing_report]
    if len(inter) == 0:
        raise no_rows_left_error(log.num_rows)
    missing_report.update(_present_removed(log, inter, keep))
    if config.vocab.vocab_from is not None:  # before the filters, so k-core counts only encodable rows
        keep, unknown_report = reuse.unknown_items_step(log, inter, config)
        inter = inter.take(keep)
        steps.append(unknown_report)
    inter, filter_steps = apply_filters(inter, log, config.filter)
    steps.extend(filter_steps)
    return inter, steps


def _present_removed(log: Log, inter: Interactions, keep: np.ndarray | None) -> dict[str, int]:
    """Users and items that the missing-value step removed entirely."""
    if keep is None:
        return {"users_removed": 0, "items_removed": 0}
    before_u = num_present(log.user_codes[log.user_codes >= 0])
    before_i = num_present(log.item_codes[log.item_codes >= 0])
    return {"users_removed": before_u - num_present(inter.user), "items_removed": before_i - num_present(inter.item)}


def fit_vocabularies(
    inter: Interactions, log: Log, config: BuildConfig
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """Stage 2: (users, items, user_idx per row, item_idx per row). With ``--vocab-from`` the
    vocabularies of an earlier build are reused (and with ``--extend`` grown): see :mod:`seqprep.reuse`."""
    if config.vocab.vocab_from is not None:
        return reuse.fit_reused(inter, log, config)
    user_order, user_counts = fit_order(inter.user, log.user_ids, config.user_order)
    item_order, item_counts = fit_order(inter.item, log.item_ids, config.item_order)
    users = Vocabulary(ids=log.user_ids.take(pa.array(user_order)), counts=user_counts, start=0)
    items = Vocabulary(ids=log.item_ids.take(pa.array(item_order)), counts=item_counts, start=1)
    uidx = lookup(remap_table(user_order, len(log.user_ids), start=0), inter.user)
    iidx = lookup(remap_table(item_order, len(log.item_ids), start=1), inter.item)
    return users, items, uidx, iidx


def make_meta(
    config: BuildConfig,
    log: Log,
    users: Vocabulary,
    items: Vocabulary,
    seqs: Sequences,
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    """meta.json's content (without ``outputs``, which the writer adds)."""
    n_ties, tie_groups = tie_stats(seqs.offsets, seqs.timestamps)
    kept = int(len(seqs.items))
    return {
        "format_version": FORMAT_VERSION,
        "seqprep_version": __version__,
        "num_users": len(users),
        "num_items": len(items),
        "num_interactions": kept,
        "padding_idx": 0,
        "num_embeddings": len(items) + 1 + (items.oov_idx is not None),
        "oov_idx": items.oov_idx,
        "item_idx_range": [1, len(items) if items.oov_idx is None else items.oov_idx],
        "user_idx_range": [0, len(users) - 1],
        "item_order": config.item_order,
        "user_order": config.user_order,
        "sort": {"by": ["user_idx", "timestamp"], "stable": True, "tie_break": TIE_RULE},
        "ties": {"interactions": n_ties, "groups": tie_groups},
        "timestamp": {"dtype": str(seqs.timestamps.dtype), "unit": log.time_unit},
        "id_types": {"user": users.id_type(), "item": items.id_type()},
        "has_ratings": seqs.ratings is not None,
        "rows": {"read": log.num_rows, "kept": kept, "removed": log.num_rows - kept},
        "steps": steps,
        "vocab_reuse": reuse.reuse_meta(config, users, items, steps),
        "sequence_length": _length_stats(seqs.lengths),
        "inputs": [
            {
                "path": info.path,
                "bytes": info.bytes,
                "sha256": info.sha256,
                "rows": info.rows,
                "format": info.format,
                "compression": info.compression,
                "columns": info.columns,
            }
            for info in log.inputs
        ],
        "options": {k: v for k, v in config.to_dict().items() if k != "resources"},  # never shape the result
    }


def run(
    config: BuildConfig,
    *,
    write: bool = True,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    progress: Progress = SILENT,
) -> BuildResult:
    """Run a build described by ``config``; with ``write`` the outputs land atomically in ``config.output``,
    or, for ``-o -``, go to ``stdout`` (default: the process's) as one stream (no folder at all).

    Stages: read -> clean (drop/count rows) -> fit vocabularies -> sort into sequences -> meta ->
    split, truncation and training inputs (:mod:`seqprep.splits`) -> write. With ``--vocab-from-train``
    the split is decided before the item vocabulary is fitted (:func:`seqprep.splits.fit_on_train`).
    ``progress`` (default: silent) is told about each long phase.
    """
    with limit_threads(config.resources.threads):
        try:
            return _run(config, write=write, stdin=stdin, stdout=stdout, progress=progress)
        finally:
            progress.done()


def _run(
    config: BuildConfig, *, write: bool, stdin: BinaryIO | None, stdout: BinaryIO | None, progress: Progress
) -> BuildResult:
    from .writers import atomic_output_dir, check_output, write_outputs

    if config.engine.engine == "dask":  # same contract, run on a Dask cluster (seqprep[dask])
        from .engines.dask_engine import run_dask

        return run_dask(config, write=write)
    t0 = _time.perf_counter()
    config.validate()
    reads = NO_READS
    if write and not config.to_stdout:
        reads = build_reads(config)
        check_output(Path(config.output), config.overwrite, reads)
    limit = config.resources.memory_limit_bytes
    block_size = config.resources.block_size_bytes
    if limit is not None:  # the streaming reader holds a few dozen blocks in flight
        block_size = min(block_size, max(1 << 20, limit // 200))
    out = Path(config.output) if write and not config.to_stdout else None
    with ExitStack() as outdir:
        tmp: Path | None = None  # the output's temporary folder, when sequences.parquet is written during the sort
        with tempfile.TemporaryDirectory(prefix="seqprep-spill-") if limit is not None else nullcontext() as spill:
            log = read_log(
                config.inputs,
                config.read,
                stdin=stdin,
                block_size=block_size,
                progress=progress,
                spill_dir=None if spill is None else Path(spill),
            )
            if log.num_rows == 0:
                msg = f"the log is empty: no interaction rows in {', '.join(i.path for i in log.inputs)}; check the input"
                raise InputError(msg)
            if spill is not None:  # --memory-limit: external sort by user range (same result)
                from .spill import spilled_sequences

                users, items, seqs, steps = spilled_sequences(log, config, Path(spill), limit, progress)
                part, split_info = splits.decide_parts(seqs.offsets, seqs.timestamps, config.split, log.time_unit)
            else:
                inter, steps = clean(log, config)
                if config.split.vocab_from_train:
                    users, items, seqs, part, split_info = splits.fit_on_train(inter, log, config, steps)
                else:
                    users, items, uidx, iidx = fit_vocabularies(inter, log, config)
                    progress.phase(f"sorting {len(uidx):,} interactions")
                    if _streams(config, out):
                        # nothing after the sort changes the sequences: sequences.parquet is written
                        # while the sort runs, into the output's temporary folder opened only now
                        assert out is not None
                        tmp = outdir.enter_context(atomic_output_dir(out, config.overwrite, reads))
                        seqs = _sort_and_write(uidx, iidx, inter, users, tmp / "sequences.parquet")
                    else:
                        seqs = sequences_from(uidx, iidx, inter.time, inter.rating, users.counts)
                    del uidx, iidx
                    part, split_info = splits.decide_parts(seqs.offsets, seqs.timestamps, config.split, log.time_unit)
                del inter
            seqs, sessions = add_sessions(seqs, log, config.session)
            meta = make_meta(config, log, users, items, seqs, steps)
            if sessions is not None:
                meta["sessions"] = sessions
            del log
        seqs, extras, extra_meta = splits.prepare(seqs, items, part, split_info, config)
        meta.update(extra_meta)
        result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta=meta, extras=extras)
        if write and config.to_stdout:
            from .streams import write_stream

            meta = write_stream(result, stdout)
        elif write:
            assert out is not None
            progress.phase(f"writing {out}")
            with nullcontext(tmp) if tmp is not None else atomic_output_dir(out, config.overwrite, reads) as folder:
                meta = write_outputs(result, folder, sequences_written=tmp is not None)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)


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


def _streams(config: BuildConfig, out: Path | None) -> bool:
    """Whether sequences.parquet may be written during the sort: only when it is wanted and nothing
    after the sort changes the sequences (sessions add a column; --truncate cuts them)."""
    return (
        out is not None
        and "parquet" in config.formats
        and config.session.session_gap is None
        and not (config.split.max_len is not None and config.split.truncate)
        and config.resources.memory_limit_bytes is None
        and not config.split.vocab_from_train
    )


def _sort_and_write(
    uidx: np.ndarray, iidx: np.ndarray, inter: Interactions, users: Vocabulary, path: Path
) -> Sequences:
    """:func:`sequences_from` writing sequences.parquet row group by row group as the sort goes."""
    from .writers import SequencesWriter, sequences_part, write_error

    writer = SequencesWriter(path)
    try:
        try:
            return sequences_from(
                uidx,
                iidx,
                inter.time,
                inter.rating,
                users.counts,
                on_part=lambda seqs, u0, u1: writer.write(sequences_part(users, seqs, u0, u1)),
            )
        finally:
            writer.close()
    except OSError as e:
        raise write_error(e) from e


def build(
    inputs: str | Path | list[str | Path] | tuple[str | Path, ...],
    output: str | Path | None = None,
    *,
    write: bool = True,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    **options: Any,
) -> BuildResult:
    """Build sequences from interaction logs: the Python face of ``seqprep build``.

    ``options`` are the CLI's options as keyword arguments (``item_order="id"``, ``sep=";"``,
    ``formats=("parquet", "npz")``, ``overwrite=True``, ...). With ``write=False`` (or no ``output``)
    nothing is written and the result is returned in memory; ``output="-"`` streams to ``stdout``.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if output is None:
        write = False
        output = "<memory>"
    config = make_config([str(p) for p in inputs], str(output), **options)
    return run(config, write=write, stdin=stdin, stdout=stdout)
