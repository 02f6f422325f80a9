"""The build on a Dask cluster: ``seqprep build --engine dask``.

Same contract as the local engine (the reference): the same vocabularies, the same stable time order
and tie rule, the same meta.json counts. Only the layout of the sequences differs: a folder of parts
``sequences/part-00000.parquet``, ... that hold contiguous user ranges in user-index order.

How the work is split (every step columnar, per partition; no Python loop over rows or users):

1. each input is read with ``dask.dataframe`` (:mod:`~seqprep.engines.dask.inputs`; any fsspec path
   such as ``s3://``), with the local reader's rules: the same separator/header/column detection,
   ids read as text and typed afterwards on the distinct values only, timestamps typed per
   partition and merged across partitions as the reader merges them across files;
2. every row gets its global input position ``pos`` (inputs in the order given, then line order) -
   the (file, row) key of the tie rule - from the partition lengths;
3. the row-removing steps mark each row with the step that removed it
   (:mod:`~seqprep.engines.dask.clean`); user and item count tables of the kept rows come from a
   tree reduction, and the vocabularies are ordered on the client by the local step
   (:func:`~seqprep.steps.vocabularies.vocabulary_from_counts`'s kernel) and broadcast;
4. rows are encoded to indices and shuffled by user index into partitions of contiguous user ranges
   (``set_index`` with divisions chosen from the user counts, about ``part_rows`` interactions each);
5. each partition is put back in input order (by ``pos``) and sorted and grouped by the local kernels
   (:mod:`~seqprep.engines.dask.partitions`); the client writes each part as it arrives
   (:mod:`~seqprep.engines.dask.write`) and the rest of the folder as the local engine does.

Sessions per output part (users are whole). Splits, truncation, windows and negatives are decided
and prepared per output part on the workers by the one per-user-range split API
(:mod:`~seqprep.engines.dask.split`); the client writes the prepared parts in user order.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from ...config import BuildConfig, EngineOptions, SplitOptions
from ...errors import ConfigError, InputError, empty_log, one_line
from ...io.sources import sha256_stream
from ...kernels import csr_offsets
from ...model import BuildResult, Extras, InputInfo, Log
from ...output.atomic import NO_READS
from ...output.exports import ExportWriter
from ...output.folder import atomic_output_dir, build_reads, check_output, write_outputs
from ...output.splits import SplitWriter
from ...output.stream import StreamWriter
from ...steps import splits
from ...steps.counts import NEVER, CodeCounts
from ...steps.meta import SequenceFacts, make_meta
from ...steps.missing import MissingCounts
from ...steps.sessions import session_gap, sessions_meta
from ...steps.vocabularies import vocabularies_from_counts
from ...vocab import Vocabulary
from . import split as dsplit
from .clean import Cleaned, clean_rows
from .inputs import DaskInput, expand, inspect
from .partitions import SUMMARY_META, make_part, split_rows, summary
from .read import PieceRead, canon_meta, read_pieces
from .write import gather, part_sequences, part_table, parts_in_order, stats, write_parts

__all__ = ["INSTALL_HINT", "run_dask", "divisions"]

INSTALL_HINT = "pip install 'seqprep[dask]'"


def _import_dask() -> tuple[Any, Any, Any]:
    try:
        import dask
        import dask.dataframe as dd
        import distributed
    except ImportError as e:
        msg = f"--engine dask needs Dask, which is not installed ({e.name}); {INSTALL_HINT}"
        raise ConfigError(msg) from None
    return dask, dd, distributed


@contextmanager
def client_for(opts: EngineOptions) -> Iterator[Any]:
    """A client of the running scheduler ``--scheduler``, or of a local cluster started for this build."""
    from distributed import Client, LocalCluster

    if opts.scheduler is not None:
        try:
            client = Client(opts.scheduler, timeout="20s")
        except OSError as e:
            msg = f"cannot reach the Dask scheduler at {opts.scheduler} ({e}); check the address (tcp://HOST:8786) and that the scheduler runs"
            raise ConfigError(msg) from None
        try:
            yield client
        finally:
            client.close()
        return
    # Worker threads in this process, not processes: on one machine, worker processes only add
    # their start (~5 s), a copy of every column in each process and its serialisation between
    # them; the tasks are pyarrow / numpy kernels that release the GIL. They talk in-process; the
    # HTTP servers take free loopback ports, so it never clashes with a running cluster. Each
    # worker's memory limit is the machine's (the default, its share, would pause the workers when
    # this one process holds more than one worker's share).
    from distributed.system import MEMORY_LIMIT

    with (
        LocalCluster(
            n_workers=opts.workers,
            processes=False,
            memory_limit=MEMORY_LIMIT,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextmanager
def _read_errors() -> Iterator[None]:
    """What the workers' readers (pandas, pyarrow) raise on a malformed input, as one line; anything
    else (a bug) goes up as it is."""
    import pandas as pd

    try:
        yield
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, pa.ArrowInvalid) as e:
        msg = f"the Dask engine cannot read the input: {type(e).__name__}: {one_line(e)}; check the input and the reader options, or try --engine local"
        raise InputError(msg) from e
    except FileNotFoundError as e:
        msg = f"a Dask worker cannot open {e.filename!r}: {e.strerror}; the workers must see the input at the same path (a shared folder or a URL)"
        raise InputError(msg) from e


def _sha256_of(path: str) -> str:
    import fsspec

    with fsspec.open(path, "rb") as fh:
        return sha256_stream(fh)


@dataclass
class _Read:
    """The canonical rows and what the client learned from their partitions."""

    canon: Any
    offsets: np.ndarray  # the global position of each partition's first row
    pieces: PieceRead
    infos: tuple[InputInfo, ...]
    missing: dict[str, Any]  # the missing-value step's report
    partitions: int

    def release(self) -> None:
        """Let the canonical partitions go on the workers (once the cleaned rows are computed)."""
        self.canon = None
        self.pieces.parts = []

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])

    @property
    def unit(self) -> str:
        return self.pieces.plan.unit

    @property
    def as_float(self) -> bool:
        return self.pieces.plan.as_float


def _read(dd: Any, client: Any, sources: list[DaskInput], config: BuildConfig) -> _Read:
    hashes = [client.submit(_sha256_of, s.location, pure=False) for s in sources]
    pieces = read_pieces(client, sources, config)
    canon = dd.from_delayed(pieces.parts, meta=canon_meta(pieces.plan.as_float), verify_meta=False)
    table = canon.map_partitions(summary, meta=SUMMARY_META).compute()
    offsets = csr_offsets(table["rows"].to_numpy())
    rows = np.bincount(pieces.piece_inputs, weights=pieces.piece_rows, minlength=len(sources)).astype(np.int64)
    infos = tuple(
        InputInfo(
            path=s.path,
            bytes=s.size,
            sha256=h.result(),
            rows=int(n),
            format=s.format,
            compression=s.compression,
            columns=dict(s.roles),
        )
        for s, h, n in zip(sources, hashes, rows)
    )
    if offsets[-1] == 0:
        raise empty_log(i.path for i in infos)
    bad = table["bad"].to_numpy()
    first = int(np.flatnonzero(bad)[0]) if bad.any() else -1
    counts = MissingCounts(
        rows=int(offsets[-1]),
        user=int(table["missing_user"].sum()),
        item=int(table["missing_item"].sum()),
        time=int(table["missing_time"].sum()),
        bad=int(bad.sum()),
        first_bad=int(offsets[first] + table["first_bad"].iat[first]) if first >= 0 else -1,
    )
    missing = counts.report(infos, config.strict)
    return _Read(canon, offsets, pieces, infos, missing, len(table))


def _vocabularies(cleaned: Cleaned, log: Log, config: BuildConfig) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """The count tables (global code -> kept rows, first kept position) -> the vocabularies, fitted
    or reused (``--vocab-from``) by the local step, and each code's user / item index (-1: none),
    the tables broadcast to the workers."""
    tables = []
    for table, size, order in ((cleaned.users, len(log.user_ids), config.user_order), (cleaned.items, len(log.item_ids), config.item_order)):
        codes = np.asarray(table.index, dtype=np.int64)
        counts = np.zeros(size, dtype=np.int64)
        counts[codes] = table["kept"].to_numpy()
        first = None
        if order == "first-seen":
            first = np.full(size, NEVER, dtype=np.int64)
            first[codes] = table["kpos"].to_numpy()
        tables.append((counts, first))
    counts = CodeCounts(users=tables[0][0], items=tables[1][0], user_first=tables[0][1], item_first=tables[1][1])
    return vocabularies_from_counts(log, config, counts)


def divisions(user_counts: np.ndarray, part_rows: int) -> list[int]:
    """First user of each output part (plus the end): contiguous ranges of about ``part_rows`` interactions."""
    num_users = len(user_counts)
    cum = csr_offsets(user_counts)
    parts = max(1, -(-int(cum[-1]) // part_rows))
    starts = np.unique(np.searchsorted(cum, np.arange(parts) * (cum[-1] / parts), side="right") - 1)
    starts = starts[(starts >= 0) & (starts < num_users)]
    starts[0] = 0
    starts = np.unique(starts)
    return [int(s) for s in starts] + [num_users]


def _ids_only(read: _Read) -> Log:
    """The log's ids without its rows (they stay on the workers): what the vocabulary steps read."""
    empty = np.zeros(0, np.int32)
    return Log(empty, read.pieces.user_ids, empty, read.pieces.item_ids, np.zeros(0, np.int64), np.zeros(0, bool), read.unit, None, read.infos)


def part_bounds(user_counts: np.ndarray, part_rows: int) -> list[int]:
    """The output parts' user bounds (:func:`divisions`, a last part of one user merged into the one before)."""
    bounds = divisions(user_counts, part_rows)
    if len(bounds) > 3 and bounds[-1] - bounds[-2] == 1:
        bounds = bounds[:-2] + [bounds[-1]]
    return bounds


def _parts(client: Any, cleaned: Cleaned, users: Vocabulary, lookups: tuple[np.ndarray, np.ndarray], config: BuildConfig, has_rating: bool, gap: Any) -> tuple[list[Any], list[int]]:
    """The output parts (futures, in user order) and their user bounds: each partition's kept rows
    encoded and cut by user range on its worker; each part gathers its chunk of every partition
    (integer arrays only cross) and is sorted there by the local kernels."""
    import operator

    bounds = part_bounds(users.counts, config.engine.part_rows)
    rows = client.compute(cleaned.rows.to_delayed())
    # broadcast once to every worker (embedding the tables in each task would resend them)
    # hash=False: a fresh key per build (equal tables of two builds must never share one)
    ulut, ilut = client.scatter(lookups[0], broadcast=True, hash=False), client.scatter(lookups[1], broadcast=True, hash=False)
    cut = np.asarray(bounds, dtype=np.int64)
    sent = [client.submit(split_rows, r, ulut, ilut, cut, pure=False) for r in rows]
    del rows
    cleaned.rows = None  # each partition's rows are let go once sent
    parts = []
    for j in range(len(bounds) - 1):
        chunks = [client.submit(operator.getitem, s, j, pure=False) for s in sent]
        parts.append(client.submit(make_part, chunks, bounds[j], bounds[j + 1], has_rating, gap, pure=False))
    return parts, bounds


def run_dask(config: BuildConfig, *, write: bool = True, stdout: BinaryIO | None = None) -> BuildResult:
    """Run the (validated) ``config`` on a Dask cluster.

    With ``write`` and Parquet output only, the sequences go straight from the workers to the part
    files and ``result.sequences`` is ``None`` (``seqprep.load(out)`` reads them back); otherwise they
    are gathered on the client. ``-o -`` streams the parts to ``stdout`` in user order.
    """
    t0 = _time.perf_counter()
    dask, dd, distributed = _import_dask()
    to_folder = write and not config.to_stdout
    reads = build_reads(config) if to_folder else NO_READS
    if to_folder:
        check_output(Path(config.output), config.overwrite, reads)  # before any work
    sources = [inspect(k, spec, config.read) for k, spec in enumerate(expand(config.inputs))]
    has_rating = any("rating" in s.roles for s in sources)  # as the local reader: a rating column anywhere
    with client_for(config.engine) as client, dask.config.set({"dataframe.convert-string": False}), _read_errors():
        read = _read(dd, client, sources, config)
        steps = [read.missing]
        log = _ids_only(read)
        cleaned = clean_rows(dask, client, read.canon, config, read.offsets, read.unit, read.as_float, log, has_rating, steps)
        read.release()
        gap = session_gap(config.session, read.unit, cleaned.largest)
        users, items, user_lookup, item_lookup = _vocabularies(cleaned, log, config)
        futures, _ = _parts(client, cleaned, users, (user_lookup, item_lookup), config, has_rating, gap)
        engine = {"name": "dask", "dask_version": dask.__version__, "input_partitions": read.partitions, "output_parts": len(futures)}
        meta = _meta(config, read, users, items, stats(client, futures), steps, has_rating, engine, gap)
        plan = None
        if config.split != SplitOptions():  # decided and prepared per part on the workers
            plan = dsplit.plan(client, futures, config, read.unit, len(items), users.counts)
            if plan.wanted():
                decided, plan = dsplit.decide(client, futures, plan)
                futures = dsplit.prepare(client, futures, decided, plan)
                meta.update(splits.split_meta(plan, client.gather(client.map(_tally, futures))))  # may refuse: before any write
            else:
                plan = None
        large = bool(users.counts.sum() >= 2**31)
        if write and config.to_stdout:  # the stream, part by part in user order
            writer = StreamWriter(config.emit.to, meta, stdout)
            write_parts(_parts_to_write(futures, plan, None), users, None, keep=False, consumers=(lambda p: writer.add(part_table(p, users, large)),))
            meta = writer.close()
            result = BuildResult(config=config, users=users, items=items, sequences=None, meta=meta)
            return dataclasses.replace(result, seconds=_time.perf_counter() - t0)
        keep = not write or "npz" in config.formats
        parquet = write and "parquet" in config.formats
        out = Path(config.output) if write else None
        with atomic_output_dir(out, config.overwrite, reads) if out is not None else _nowhere() as tmp, _split_files(config, users, tmp, plan) as split_out:
            with _exports(config, users, items, has_rating, tmp) as consumers:
                parts = write_parts(_parts_to_write(futures, plan, split_out), users, tmp if parquet else None, keep, consumers)
            seqs = gather(parts, users, read.as_float, has_rating) if keep else None
            extras = None
            if plan is not None:
                padded = split_out.padded if split_out is not None else [p["padded"] for p in parts if p.get("padded") is not None]
                extras = Extras(padded=np.concatenate(padded) if padded else None, max_len=config.split.max_len, pad=config.split.pad)
            result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta=meta, extras=extras)
            if tmp is not None:
                meta = write_outputs(result, tmp, sequences_written=parquet, exports_written=True)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)


def _tally(prepared: dict[str, Any]) -> dict[str, Any]:
    return prepared["tally"]


class _SplitOut:
    """The split files, written as the prepared parts come (user order); sequences.npz's ``padded``
    rows kept for the final write."""

    def __init__(self, writer: SplitWriter | None) -> None:
        self.writer = writer
        self.padded: list[np.ndarray] = []

    def add(self, prepared: dict[str, Any]) -> None:
        ex = prepared["extras"]
        if ex is None:
            return
        if ex.padded is not None:
            self.padded.append(ex.padded)
        if self.writer is not None:
            self.writer.add(dataclasses.replace(ex, padded=None), prepared["lo"], prepared["hi"])


@contextmanager
def _split_files(config: BuildConfig, users: Vocabulary, folder: Path | None, plan: Any) -> Iterator[_SplitOut | None]:
    """Where the prepared parts' split files go (None without a split)."""
    if plan is None:
        yield None
        return
    if folder is None:
        yield _SplitOut(None)
        return
    with tempfile.TemporaryDirectory(prefix="seqprep-dask-split-") as spill:
        with SplitWriter(folder, config.formats, users, Path(spill)) as writer:  # on an error: no split file left
            yield _SplitOut(writer)


def _parts_to_write(futures: list[Any], plan: Any, split_out: _SplitOut | None) -> Iterator[dict[str, Any]]:
    """The parts to write, in user order: as computed, or (with a split) the prepared sequences,
    their split rows handed to ``split_out`` on the way."""
    for part in parts_in_order(futures):
        if plan is None:
            yield part
            continue
        if split_out is not None:
            split_out.add(part)
        yield dsplit.as_part(part, part["sequences"])


@contextmanager
def _exports(config: BuildConfig, users: Vocabulary, items: Vocabulary, has_rating: bool, folder: Path | None) -> Iterator[tuple[Any, ...]]:
    """The ``--export`` files, written part by part (no consumer without exports or a folder)."""
    if folder is None or not config.emit.exports:
        yield ()
        return
    writer = ExportWriter(config, users, items, has_rating, folder)
    try:
        yield (lambda p: writer.add(part_sequences(p), p["lo"]),)
    finally:
        writer.close()


@contextmanager
def _nowhere() -> Iterator[None]:
    yield None


def _meta(
    config: BuildConfig,
    read: _Read,
    users: Vocabulary,
    items: Vocabulary,
    parts: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    has_rating: bool,
    engine: dict[str, Any],
    gap: float | None,
) -> dict[str, Any]:
    """meta.json by the local ``make_meta``; the figures it would compute from the full arrays
    (ties, session lengths) come from the parts instead."""
    facts = SequenceFacts(
        lengths=users.counts,
        ties=(int(sum(p["ties"][0] for p in parts)), int(sum(p["ties"][1] for p in parts))),
        timestamp_dtype=np.dtype(np.float64 if read.as_float else np.int64),
        has_ratings=has_rating,
    )
    meta = make_meta(config, inputs=read.infos, rows_read=read.num_rows, time_unit=read.unit, users=users, items=items, facts=facts, steps=steps)
    if gap is not None:
        lengths = [p["session_lengths"] for p in parts]
        meta["sessions"] = sessions_meta(config.session, read.unit, gap, np.concatenate(lengths) if lengths else np.zeros(0, np.int64))
    meta["engine"] = engine
    return meta
