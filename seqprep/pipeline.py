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
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# pyarrow imports pandas lazily on its first pa.scalar() of a Python value, i.e. in the middle of a
# build; importing it up front keeps a Ctrl-C/SIGTERM from landing inside that import, which leaves a
# half-initialised pandas module and an AttributeError traceback instead of a clean interruption.
import pandas  # noqa: F401

from .config import BuildConfig, make_config
from .errors import empty_log
from .model import BuildResult, Interactions, Sequences
from .atomic import NO_READS
from .progress import SILENT, Progress
from .readers import read_log
from .resources import limit_threads
from .steps import splits
from .steps.clean import clean
from .steps.meta import SequenceFacts, make_meta
from .steps.sessions import add_sessions
from .steps.sort import sequences_from
from .steps.vocabularies import fit_vocabularies
from .vocab import Vocabulary

__all__ = ["build", "run"]


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
    from .writers import atomic_output_dir, build_reads, check_output, write_outputs

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
                raise empty_log(i.path for i in log.inputs)
            if spill is not None:  # --memory-limit: external sort by user range (same result)
                from .engines.spill import spilled_sequences

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
            seqs, sessions = add_sessions(seqs, log.time_unit, config.session)
            meta = make_meta(
                config,
                inputs=log.inputs,
                rows_read=log.num_rows,
                time_unit=log.time_unit,
                users=users,
                items=items,
                facts=SequenceFacts.of(seqs),
                steps=steps,
            )
            if sessions is not None:
                meta["sessions"] = sessions
            del log
        seqs, extras, extra_meta = splits.prepare(seqs, items, part, split_info, config)
        meta.update(extra_meta)
        result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta=meta, extras=extras)
        if write and config.to_stdout:
            from .output.stream import write_stream

            meta = write_stream(result, stdout)
        elif write:
            assert out is not None
            progress.phase(f"writing {out}")
            with nullcontext(tmp) if tmp is not None else atomic_output_dir(out, config.overwrite, reads) as folder:
                meta = write_outputs(result, folder, sequences_written=tmp is not None)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)


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
