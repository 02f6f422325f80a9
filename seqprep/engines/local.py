"""The reference build, in this process: read -> clean -> vocabularies -> sort -> meta -> split -> write.

Every stage is a public step (:mod:`seqprep.steps`); only the order and the resources are decided
here. With ``--memory-limit`` the read spills its integer columns to a temporary folder and the
sort runs user range by user range (:mod:`seqprep.engines.spill`): the same result, byte for byte.
When nothing after the sort changes the sequences, sequences.parquet is written while the sort runs,
into the output's temporary folder, opened only then (a kill while reading leaves nothing behind), by
a thread of its own that also closes and hashes it: the build goes on (meta, the split, the other
files) while its last row groups are encoded, and waits for it only before meta.json is written.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time as _time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..config import BuildConfig
from ..errors import empty_log
from ..io import read_log
from ..io.sniff import ColumnRequest
from ..kernels.sequences import from_half_steps, from_time_offsets, grouped_by_user, half_step_codes, in_time_order, time_offsets
from ..model import BuildResult, Extras, Feature, Interactions, Log, Sequences
from ..output.atomic import NO_READS, Reads
from ..output.files import SequencesInBackground, sequences_part
from ..output.folder import atomic_output_dir, build_reads, check_output, write_error, write_outputs
from ..progress import SILENT, Progress
from ..resources import huge_pages
from ..steps import splits
from ..steps.attributes import attribute_features, read_attribute_tables
from ..steps.clean import clean_counted
from ..steps.events import event_feature, event_requests, events_meta, target_positions, target_rows
from ..steps.features import column_requests, derive_time_features, encode_features, features_meta, reuse_features
from ..steps.meta import SequenceFacts, make_meta
from ..steps.session_key import SessionUsers, session_users
from ..steps.sessions import add_sessions
from ..steps.sort import sequences_from
from ..steps.vocabularies import fit_vocabularies
from ..vocab import Vocabulary

__all__ = ["run_local"]


class _Folder:
    """The output's temporary folder, opened on first use and swapped in when the build's stack closes."""

    def __init__(self, stack: ExitStack, out: Path | None, overwrite: bool, reads: Reads) -> None:
        self.stack, self.out, self.overwrite, self.reads = stack, out, overwrite, reads
        self.tmp: Path | None = None
        self.sequences_written = False  # sequences.parquet is in tmp already (written during the sort)
        self.pending: dict[str, Future[str]] = {}  # files of tmp still being written: their sha256 to come

    def open(self) -> Path:
        assert self.out is not None
        if self.tmp is None:
            self.tmp = self.stack.enter_context(atomic_output_dir(self.out, self.overwrite, self.reads))
        return self.tmp


def run_local(
    config: BuildConfig,
    *,
    write: bool = True,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    progress: Progress = SILENT,
) -> BuildResult:
    """Run the (validated) ``config`` here; with ``write`` the outputs land atomically in OUT, or go
    to ``stdout`` as one stream for ``-o -``."""
    t0 = _time.perf_counter()
    out = Path(config.output) if write and not config.to_stdout else None
    reads = build_reads(config) if out is not None else NO_READS
    if out is not None:
        check_output(out, config.overwrite, reads)  # before any work
    with ExitStack() as stack:
        folder = _Folder(stack, out, config.overwrite, reads)
        result = _build(config, stdin, progress, folder)
        meta = result.meta
        if write and config.to_stdout:
            from ..output.stream import write_stream  # (-o - only, as --memory-limit's and --where's modules below)

            meta = write_stream(result, stdout)
        elif write:
            progress.phase(f"writing {out}")
            meta = write_outputs(result, folder.open(), sequences_written=folder.sequences_written, pending=folder.pending)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)


@contextmanager
def _spill_folder(limit: int | None) -> Iterator[Path | None]:
    if limit is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="seqprep-spill-") as spill:
        yield Path(spill)


def _build(config: BuildConfig, stdin: BinaryIO | None, progress: Progress, folder: _Folder) -> BuildResult:
    """Everything but the final writes: the result, with meta.json's content."""
    limit = config.resources.memory_limit_bytes
    block_size = config.resources.block_size_bytes
    if limit is not None:  # the streaming reader holds a few dozen blocks in flight
        block_size = min(block_size, max(1 << 20, limit // 200))
    tables = read_attribute_tables(config)  # before the log: a wrong table or column fails at once
    with _spill_folder(limit) as spill:
        log = read_log(
            config.inputs,
            config.read,
            stdin=stdin,
            block_size=block_size,
            progress=progress,
            spill_dir=spill,
            columns=_requests(config),
            operands=_operands(config),
        )
        if log.num_rows == 0:
            raise empty_log(i.path for i in log.inputs)
        rows_read = log.num_rows
        keyed: SessionUsers | None = None
        if spill is not None:  # --memory-limit: external sort by user range (same result)
            assert limit is not None
            from .spill import spilled_sequences

            users, items, seqs, steps, part, info, keyed = spilled_sequences(log, config, spill, limit, progress)
        else:
            inter, steps, kept = clean_counted(log, config)
            keyed = session_users(log, inter)  # (reads the user column: before the columns go)
            features: tuple[Feature, ...] = ()
            if not config.split.vocab_from_train:  # (that path encodes them once its rows are final)
                features = encode_features(inter, config.feature, config.item_order, config.vocab)
                features += reuse_features(event_feature(inter, config.event, config.item_order), config.vocab)
                # the log's other columns are encoded now: let them go before the sort
                inter = dataclasses.replace(inter, columns=())
                log = dataclasses.replace(log, columns=())
            held = _Rows(inter, log)  # (the one reference to the rows from here: see _Rows)
            del inter, log
            users, items, seqs, part, info = _sorted(held, steps, config, progress, folder, features, kept)
            log = held.log
            del held, features
        targets = target_positions(seqs, config.event)
        sessions = keyed.table(users, log) if keyed is not None else None
        seqs, gaps = add_sessions(seqs, log.time_unit, config.session)
        train_rows = part == splits.TRAIN if config.split.vocab_from_train and part is not None else None
        seqs = derive_time_features(
            seqs, log.time_unit, config.feature, config.item_order, fit_rows=train_rows, vocab=config.vocab
        )
        meta = make_meta(
            config,
            inputs=log.inputs,
            rows_read=rows_read,
            time_unit=log.time_unit,
            users=users,
            items=items,
            facts=SequenceFacts.of(seqs),
            steps=steps,
        )
        if gaps is not None:
            meta["sessions"] = gaps
        if keyed is not None and sessions is not None:
            meta["session_key"] = keyed.meta(sessions)
        if seqs.features:
            meta["features"] = features_meta(seqs.features)
        if config.event.event_col is not None:
            meta["events"] = events_meta(seqs, config.event, targets)
        by_ranges = spill is not None and folder.out is not None
        if by_ranges:  # --memory-limit writing OUT: the split files user range by user range
            assert spill is not None
            from .spill import split_by_ranges

            seqs, extras, extra_meta = split_by_ranges(seqs, users, items, part, info, config, folder.open, spill, targets)
        del log
    # the writing sort leaves compact cat indices (uint8 / uint16): int32 from here, the type every
    # later step, output and the result have; widened only now, once the log, the input-order rows
    # and the sort's temporaries are gone, so the int32 copies never meet the build's busiest moments
    seqs = _widened(seqs)
    attributes, attributes_meta = attribute_features(tables, config, users, items)
    if attributes:
        meta["features"] = {**meta.get("features", {}), **attributes_meta["features"]}
        meta["attribute_tables"] = attributes_meta["attribute_tables"]
    if not by_ranges:
        seqs, extras, extra_meta = splits.prepare(seqs, items, part, info, config, targets)
    meta.update(extra_meta)
    if sessions is not None:
        extras = dataclasses.replace(extras or Extras(), sessions=sessions)
    return BuildResult(
        config=config, users=users, items=items, sequences=seqs, meta=meta, extras=extras, attributes=attributes
    )


class _Rows:
    """The clean rows and the log as read, held here alone while the build sorts them, so that
    their columns can go as soon as nothing reads them: the user and item codes (and the log's
    missing-time mask) once the vocabularies have turned them into indices (:meth:`indexed`), the
    input-order times and ratings once the rows are sorted (:meth:`sorted`). A log of 25M rows
    holds 200 MB of codes and 300 MB of times and ratings; rows that a step removed are held twice
    (the log's and the kept copy). What is left of the log after that is read for its ids, inputs
    and time unit only."""

    def __init__(self, inter: Interactions, log: Log) -> None:
        self.inter, self.log = inter, log

    def indexed(self) -> None:
        none = np.zeros(0, dtype=np.int32)
        self.inter = dataclasses.replace(self.inter, user=none, item=none)
        self.log = dataclasses.replace(self.log, user_codes=none, item_codes=none, time_valid=np.zeros(0, dtype=bool))

    def sorted(self) -> None:
        self.inter = dataclasses.replace(self.inter, time=np.zeros(0, dtype=self.inter.time.dtype), rating=None)
        self.log = dataclasses.replace(self.log, time=np.zeros(0, dtype=self.log.time.dtype), rating=None)

    def code_ratings(self) -> bool:
        """Before a sort of scattered rows: the ratings as 1-byte codes
        (:func:`~seqprep.kernels.sequences.half_step_codes`), when every one is a half step from 0 to
        127 or missing, and the float32 ones let go (the log's too: nothing reads them again). The
        sort then gathers and holds a quarter of the bytes of them, in input order and sorted; with
        :meth:`offset_times` too, 25M shuffled rows peaked at 945 MiB instead of 1,196 (5 rounds of
        benchmarks/quoted.py, docs/performance.md). Whether it did."""
        codes = None if self.inter.rating is None else half_step_codes(self.inter.rating)
        if codes is None:
            return False
        self.inter = dataclasses.replace(self.inter, rating=codes)
        self.log = dataclasses.replace(self.log, rating=None)
        return True

    def offset_times(self) -> int | None:
        """Before a sort of scattered rows: the times as uint32 offsets from the smallest
        (:func:`~seqprep.kernels.sequences.time_offsets`), when they fit, and the int64 ones let go
        (the log's too): the sort holds half the bytes of them, in input order and sorted. The base
        the offsets are from, or None."""
        packed = time_offsets(self.inter.time)
        if packed is None:
            return None
        self.inter = dataclasses.replace(self.inter, time=packed[0])
        self.log = dataclasses.replace(self.log, time=np.zeros(0, dtype=self.log.time.dtype))
        return packed[1]


def _sorted(
    held: _Rows,
    steps: list[dict[str, Any]],
    config: BuildConfig,
    progress: Progress,
    folder: _Folder,
    features: tuple[Feature, ...],
    kept: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Vocabulary, Vocabulary, Sequences, np.ndarray | None, dict[str, Any]]:
    """In memory, from the clean rows (``held``) and their encoded features: vocabularies, sort,
    split decided -> (users, items, seqs, part, info). ``kept``: the rows' count tables, when
    k-core counted them."""
    inter, log = held.inter, held.log
    if config.split.vocab_from_train:  # encodes the features itself, once its rows are final
        targets = target_rows(inter, config.event)
        events = event_feature(inter, config.event, config.item_order)
        return splits.fit_on_train(inter, log, config, steps, events, targets)
    # the indices are written over the codes (nothing reads a code again: held.indexed() lets them go),
    # except for --split days, whose dates are found by the users' codes
    users, items, uidx, iidx = fit_vocabularies(inter, log, config, kept, in_place=config.split.rule != "days")
    dates = splits.sequence_dates(uidx, inter, log, len(users)) if config.split.rule == "days" else None
    held.indexed()  # the codes are indices now
    inter = held.inter
    del log
    ordered = in_time_order(uidx, inter.time)
    # a sort of scattered rows holds its columns twice, in input order and sorted: it carries 1-byte
    # ratings and 4-byte times when they fit (see _Rows); rows grouped by user are sorted in place
    # (held once: compact copies would only add passes - 25M user-then-item rows took 4.72 s
    # against 4.46 s with them, 5 rounds of benchmarks/quoted.py, for the same peak)
    scattered = not ordered and not grouped_by_user(uidx)
    coded = scattered and held.code_ratings()
    time_base = held.offset_times() if scattered else None
    inter = held.inter
    progress.phase(f"sorting {len(uidx):,} interactions")
    # a sort of scattered rows fills fresh column-sized arrays: in huge pages (resources.huge_pages)
    with huge_pages(scattered):
        if folder.out is not None and _streams(config, features):
            # nothing after the sort changes the sequences: sequences.parquet is written while the
            # sort runs, into the output's temporary folder opened only now
            tmp = folder.open()
            writer = SequencesInBackground(tmp / "sequences.parquet", len(uidx))
            folder.stack.callback(writer.abort)  # (last in, first out: before the swap, or before the folder goes on an error)
            seqs = _sort_and_write(uidx, iidx, inter, users, writer, features, ordered, time_base, coded)
            folder.pending["sequences.parquet"] = writer.finish()
            folder.sequences_written = True
        else:
            seqs = sequences_from(uidx, iidx, inter.time, inter.rating, users.counts, features=features, ordered=ordered)
    del uidx, iidx, inter
    held.sorted()  # (the sequences hold the sorted times and ratings, or the same arrays when no sort was needed)
    # float32 ratings and int64 times again, now that the rows in input order are gone (the writer
    # reads the compact ones, which it widens a row group at a time)
    if coded:
        seqs = dataclasses.replace(seqs, ratings=from_half_steps(seqs.ratings))
    if time_base is not None:
        seqs = dataclasses.replace(seqs, timestamps=from_time_offsets(seqs.timestamps, time_base))
    targets = target_positions(seqs, config.event)
    part, info = splits.decide_parts(seqs.offsets, seqs.timestamps, config.split, held.log.time_unit, targets, dates)
    return users, items, seqs, part, info


def _widened(seqs: Sequences) -> Sequences:
    """``seqs`` with compact ``cat`` indices (as the writing sort leaves them) int32, the type every
    later step and output reads; one feature at a time, each compact copy let go as it is replaced."""
    if all(f.widened() is f for f in seqs.features):
        return seqs
    features = list(seqs.features)
    seqs = dataclasses.replace(seqs, features=())
    for k in range(len(features)):
        features[k] = features[k].widened()
    return dataclasses.replace(seqs, features=tuple(features))


def _operands(config: BuildConfig) -> tuple[ColumnRequest, ...]:
    """The columns ``--where`` reads; none without it (the predicates' modules are then never imported)."""
    if not config.filter.where:
        return ()
    from ..steps.where import operand_requests

    return operand_requests(config)


def _requests(config: BuildConfig) -> tuple[ColumnRequest, ...]:
    """The log's columns the features and the event column need, each read once."""
    out: dict[str, ColumnRequest] = {}
    for req in column_requests(config.feature) + event_requests(config.event):
        out.setdefault(req.name, req)
    return tuple(out.values())


def _streams(config: BuildConfig, features: tuple[Feature, ...]) -> bool:
    """Whether sequences.parquet may be written during the sort: only when it is wanted and nothing
    after the sort changes the sequences (sessions and time features add a column; --truncate cuts
    them) and every feature has one value per row (no token lists)."""
    return (
        "parquet" in config.formats
        and config.session.session_gap is None
        and not config.feature.time_features
        and all(f.offsets is None for f in features)
        and not (config.split.max_len is not None and config.split.truncate)
        and config.resources.memory_limit_bytes is None
        and not config.split.vocab_from_train
    )


def _sort_and_write(
    uidx: np.ndarray,
    iidx: np.ndarray,
    inter: Interactions,
    users: Vocabulary,
    writer: SequencesInBackground,
    features: tuple[Feature, ...] = (),
    ordered: bool | None = None,
    time_base: int | None = None,
    rating_codes: bool = False,
) -> Sequences:
    """:func:`~seqprep.steps.sort.sequences_from` handing sequences.parquet's row groups to ``writer``
    as the sort puts them in place (nothing changes them afterwards: the writer reads them while the
    build goes on)."""
    try:
        return sequences_from(
            uidx,
            iidx,
            inter.time,
            inter.rating,
            users.counts,
            on_part=lambda seqs, u0, u1: writer.add(lambda: sequences_part(users, seqs, u0, u1, time_base, rating_codes)),
            features=features,
            # the build lets the input-order features, item indices, times and ratings go
            # after the sort (nothing reads inter's or the log's columns then)
            features_in_place=True,
            columns_in_place=True,
            ordered=ordered,
        )
    except OSError as e:  # (--threads 1: written here, as handed over)
        raise write_error(e) from e
