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

``--vocab-from-train``: the split is decided per part first, the items (and the features, token
lists included) fitted on the parts' training tallies and the users renumbered on the rows left by
the local range steps (:mod:`~seqprep.engines.dask.train`, :mod:`seqprep.steps.train_fit`); time
features are then fitted on the new parts' TRAIN rows, and ``--session-col``'s users were found on
every kept row before the drop, as locally.

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
from ...io import read_log
from ...io.sources import sha256_stream
from ...kernels import csr_offsets
from ...model import BuildResult, Extras, InputInfo, Log
from ...output.atomic import NO_READS
from ...output.exports import ExportWriter, write_srgnn
from ...output.folder import atomic_output_dir, build_reads, check_output, write_feature_vocabularies, write_outputs
from ...output.splits import SplitWriter
from ...output.stream import StreamWriter
from ...steps import splits, train_fit
from ...steps.attributes import attribute_features, read_attribute_tables
from ...steps.counts import NEVER, CodeCounts
from ...steps.features import features_meta
from ...steps.meta import SequenceFacts, make_meta
from ...steps.missing import MissingCounts
from ...steps.sessions import session_gap, sessions_meta
from ...steps.vocabularies import vocabularies_from_counts
from ...steps.where import operand_requests
from ...vocab import Vocabulary
from . import columns as dcolumns
from . import features as dfeatures
from . import keys as dkeys
from . import orders as dorders
from . import split as dsplit
from . import train as dtrain
from .clean import Cleaned, clean_rows
from .inputs import DaskInput, expand, inspect
from .lists import joined
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
            with client.as_current():  # (why: in the local cluster branch below)
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
        # the build's collections (persist, dask.compute) run on this client, not on another one the
        # process holds (a notebook's): futures of two clients are released on two streams, and the
        # scheduler could forget a persisted partition before this client's dependent task arrived
        # ("lost dependencies")
        client.as_current(),
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
    unit: str
    as_float: bool
    columns: dcolumns.LogColumns  # the other columns (features, events, --where operands)

    def release(self) -> None:
        """Let the canonical partitions go on the workers (once the cleaned rows are computed)."""
        self.canon = None
        self.pieces.parts = []

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])


def _read(dd: Any, client: Any, sources: list[DaskInput], config: BuildConfig, plan: Any) -> _Read:
    """The inputs read with the local read ``plan`` (:func:`~seqprep.io.keys.plan_read`) into the
    canonical frame, finished as the plan says (a session key, a combined time: :mod:`.keys`)."""
    hashes = [client.submit(_sha256_of, s.location, pure=False) for s in sources]
    reading = dataclasses.replace(config, read=plan.opts)
    pieces = read_pieces(client, sources, reading, plan.requests)
    meta = canon_meta(pieces.plan.as_float, pieces.columns)
    canon = dd.from_delayed(pieces.parts, meta=meta, verify_meta=False)
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
    unit, as_float, columns = pieces.plan.unit, pieces.plan.as_float, pieces.columns
    if dkeys.keyed(plan):
        finished, unit, recorded, tables = dkeys.plan_columns(plan, columns, unit, as_float, infos, lambda: _local_read(config))
        combined = bool(plan.offsets)
        canon = canon.map_partitions(
            dkeys.keyed_part, plan, columns, finished, tables, pieces.plan.unit, infos, meta=dkeys.frame_meta(meta, finished, combined)
        )
        infos, columns, as_float = recorded, finished, as_float and not combined
    table = canon.map_partitions(summary, meta=SUMMARY_META).compute()
    offsets = csr_offsets(table["rows"].to_numpy())
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
    return _Read(canon, offsets, pieces, infos, missing, len(table), unit, as_float, columns)


def _local_read(config: BuildConfig) -> None:
    """The local reader on the whole log (only to raise its exact error, naming the row; not for URLs,
    which it cannot open: the workers' error stands)."""
    if any("://" in str(spec) for spec in config.inputs):
        return
    read_log(config.inputs, config.read, columns=dcolumns.local_requests(config), operands=operand_requests(config), hash_inputs=False)


def _vocabularies(
    cleaned: Cleaned, log: Log, config: BuildConfig, dates: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[Vocabulary, Vocabulary | None, np.ndarray, np.ndarray]:
    """The count tables (global code -> kept rows, first kept position) -> the vocabularies, fitted
    or reused (``--vocab-from``) by the local step, and each code's user / item index (-1: none),
    the tables broadcast to the workers. ``--user-order date``: by ``dates`` (date, first row per
    code: :func:`~seqprep.engines.dask.orders.user_dates`); ``--item-order sequence``: no items yet
    (None) and the items' codes as their lookup (the parts order them: :func:`~.orders.by_sequence`)."""
    by_date, by_sequence = config.user_order == "date", config.item_order == "sequence"
    fit = dataclasses.replace(config, user_order="id" if by_date else config.user_order, item_order="id" if by_sequence else config.item_order)
    tables = []
    for table, size, order in ((cleaned.users, len(log.user_ids), fit.user_order), (cleaned.items, len(log.item_ids), fit.item_order)):
        first = np.full(size, NEVER, dtype=np.int64) if order == "first-seen" else None
        if first is not None:
            first[np.asarray(table.index, dtype=np.int64)] = table["kpos"].to_numpy()
        tables.append((_kept(table, size), first))
    counts = CodeCounts(users=tables[0][0], items=tables[1][0], user_first=tables[0][1], item_first=tables[1][1])
    users, items, user_table, item_table = vocabularies_from_counts(log, fit, counts)
    if by_date:
        assert dates is not None
        users, user_table = dorders.users_by_date(counts.users, dates[0], dates[1], log.user_ids)
    if by_sequence:
        return users, None, user_table, np.arange(len(log.item_ids), dtype=np.int32)
    return users, items, user_table, item_table


def _kept(table: Any, size: int) -> np.ndarray:
    """Kept rows per code from a count table of the codes seen (:class:`~.clean.Cleaned`)."""
    counts = np.zeros(size, dtype=np.int64)
    counts[np.asarray(table.index, dtype=np.int64)] = table["kept"].to_numpy()
    return counts


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


def _parts(
    client: Any,
    cleaned: Cleaned,
    users: Vocabulary,
    lookups: tuple[np.ndarray, np.ndarray],
    config: BuildConfig,
    has_rating: bool,
    gap: Any,
    features: dfeatures.FeaturePlan = dfeatures.FeaturePlan(),
    carry: tuple[tuple[str, np.ndarray], ...] = (),
    keep_pos: bool = False,
) -> tuple[list[Any], list[int]]:
    """The output parts (futures, in user order) and their user bounds: each partition's kept rows
    encoded and cut by user range on its worker; each part gathers its chunk of every partition
    (integer arrays only cross) and is sorted there by the local kernels. ``features``: the
    interaction features, encoded on the send side as the items are; ``keep_pos``: the parts keep
    their rows' input positions."""
    import operator

    bounds = part_bounds(users.counts, config.engine.part_rows)
    rows = client.compute(cleaned.rows.to_delayed())
    # broadcast once to every worker (embedding the tables in each task would resend them)
    # hash=False: a fresh key per build (equal tables of two builds must never share one)
    ulut, ilut = client.scatter(lookups[0], broadcast=True, hash=False), client.scatter(lookups[1], broadcast=True, hash=False)
    cut = np.asarray(bounds, dtype=np.int64)
    encoders = features.encoders + carry
    encoders = client.scatter(encoders, broadcast=True, hash=False) if encoders else ()
    templates = client.scatter(features.templates, broadcast=True, hash=False) if features.templates else ()
    sent = [client.submit(split_rows, r, ulut, ilut, cut, encoders, pure=False) for r in rows]
    del rows
    cleaned.rows = None  # each partition's rows are let go once sent
    parts = []
    for j in range(len(bounds) - 1):
        chunks = [client.submit(operator.getitem, s, j, pure=False) for s in sent]
        parts.append(client.submit(make_part, chunks, bounds[j], bounds[j + 1], has_rating, gap, templates, len(carry), keep_pos, pure=False))
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
    tables = read_attribute_tables(config)  # before the log, as locally: a wrong table or column fails at once
    specs = expand(config.inputs)
    rplan = dcolumns.read_plan(config, specs[0])
    sources = [inspect(k, spec, rplan.opts) for k, spec in enumerate(specs)]
    has_rating = any("rating" in s.roles for s in sources)  # as the local reader: a rating column anywhere
    with client_for(config.engine) as client, dask.config.set({"dataframe.convert-string": False}), _read_errors():
        read = _read(dd, client, sources, config, rplan)
        steps = [read.missing]
        log = _ids_only(read)
        columns = read.columns
        counted = dfeatures.counted_columns(config, columns)
        cleaned = clean_rows(dask, client, read.canon, config, read.offsets, read.unit, read.as_float, log, has_rating, steps, columns, counted)
        gap = session_gap(config.session, read.unit, cleaned.largest)
        dates = dorders.user_dates(dask, read.canon, read.offsets, log) if config.user_order == "date" or config.split.rule == "days" else None
        read.release()  # the canonical partitions are not read again: let them go on the workers
        users, items, user_lookup, item_lookup = _vocabularies(cleaned, log, config, dates)
        vft = config.split.vocab_from_train
        if vft:  # the parts hold item codes until the items are fitted on the training rows
            items, item_lookup = None, np.arange(len(log.item_ids), dtype=np.int32)
        fplan = dfeatures.fit_features(config, columns, cleaned.tables, cleaned.rows)
        carry = dkeys.session_carry(read.infos, columns)
        futures, bounds = _parts(client, cleaned, users, (user_lookup, item_lookup), config, has_rating, gap, fplan, carry, keep_pos=vft)
        if not vft:  # token features: lists from their values (the training fit refits them first)
            futures = dfeatures.expand_lists(client, futures, fplan)
        # --session-col: each session's user from every kept row (before --vocab-from-train's drop)
        session_users = dkeys.session_users_of(client, futures, read.infos, columns, users)
        plan1 = None
        if vft:  # the split decided on the users of every kept row, the items fitted on its TRAIN rows
            by_index = dorders.dates_by_index(dates[0], user_lookup, len(users)) if config.split.rule == "days" else None
            plan1 = dsplit.plan(client, futures, config, read.unit, len(log.item_ids), users.counts, by_index)
            decisions, plan1 = dsplit.decide(client, futures, plan1, config.event, by_index)
            users, items, futures, bounds = dtrain.fit_on_train(
                client, futures, decisions, config, users, user_lookup, log, bounds, lambda c: part_bounds(c, config.engine.part_rows), gap, steps, fplan
            )
            del decisions
        elif items is None:  # --item-order sequence: the parts hold item codes until the order is known
            items, futures = dorders.by_sequence(client, futures, _kept(cleaned.items, len(log.item_ids)), log.item_ids)
        assert items is not None
        keyed = dkeys.session_key(session_users, users)
        cum = csr_offsets(users.counts)
        futures = dfeatures.fit_time_features(client, futures, config, read.unit, cleaned.largest, cum[bounds[1:]] - cum[bounds[:-1]])
        features = client.submit(dfeatures.templates_of, futures[0], pure=False).result() if futures else ()
        engine = {"name": "dask", "dask_version": dask.__version__, "input_partitions": read.partitions, "output_parts": len(futures)}
        meta = _meta(config, read, users, items, stats(client, futures), steps, has_rating, engine, gap, features)
        attributes, attributes_meta = attribute_features(tables, config, users, items)  # from the vocabularies alone
        if keyed is not None:
            meta["session_key"] = keyed[1]
        plan = None
        if plan1 is not None:  # --vocab-from-train: decided already, on the rows before the unseen items left
            plan = dtrain.plan_after(client, futures, plan1, config, len(items), users.counts)
            futures = dsplit.prepare(client, futures, dtrain.decided(client, futures), plan, config.event)
            meta.update(splits.split_meta(plan, client.gather(client.map(_tally, futures))))  # may refuse: before any write
        elif config.split != SplitOptions():  # decided and prepared per part on the workers
            by_index = dorders.dates_by_index(dates[0], user_lookup, len(users)) if config.split.rule == "days" else None
            plan = dsplit.plan(client, futures, config, read.unit, len(items), users.counts, by_index)
            if plan.wanted():
                decided, plan = dsplit.decide(client, futures, plan, config.event, by_index)
                futures = dsplit.prepare(client, futures, decided, plan, config.event)
                meta.update(splits.split_meta(plan, client.gather(client.map(_tally, futures))))  # may refuse: before any write
            else:
                plan = None
        large = bool(users.counts.sum() >= 2**31)
        if write and config.to_stdout:  # the stream, part by part in user order
            writer = StreamWriter(config.emit.to, meta, stdout, ("items", "timestamps", "ratings", *(f.name for f in features)))
            write_parts(_parts_to_write(futures, plan, None), users, None, keep=False, consumers=(lambda p: writer.add(part_table(p, users, large)),))
            meta = writer.close()
            result = BuildResult(config=config, users=users, items=items, sequences=None, meta=meta)
            return dataclasses.replace(result, seconds=_time.perf_counter() - t0)
        keep = not write or "npz" in config.formats
        parquet = write and "parquet" in config.formats
        out = Path(config.output) if write else None
        with atomic_output_dir(out, config.overwrite, reads) if out is not None else _nowhere() as tmp, _split_files(config, users, tmp, plan) as split_out:
            with _exports(config, users, items, has_rating, tmp, features) as consumers:
                parts = write_parts(_parts_to_write(futures, plan, split_out), users, tmp if parquet else None, keep, consumers)
            seqs = gather(parts, users, read.as_float, has_rating) if keep else None
            extras = None
            if plan is not None:
                padded = split_out.padded if split_out is not None else [p["padded"] for p in parts if p.get("padded") is not None]
                cells = tuple(joined(fs) for fs in zip(*split_out.padded_features)) if split_out is not None else ()
                srgnn = train_fit.srgnn_rows(split_out.srgnn) if split_out is not None and split_out.srgnn else None
                extras = Extras(
                    padded=np.concatenate(padded) if padded else None,
                    padded_features=cells,
                    max_len=config.split.max_len,
                    pad=config.split.pad,
                    srgnn=srgnn,
                )
            if keyed is not None:
                extras = dataclasses.replace(extras or Extras(), sessions=keyed[0])
            if attributes:
                meta["features"] = {**meta.get("features", {}), **attributes_meta["features"]}
                meta["attribute_tables"] = attributes_meta["attribute_tables"]
            result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta=meta, extras=extras, attributes=attributes)
            if tmp is not None and seqs is None:  # the vocabularies of features whose values stay in parts
                write_feature_vocabularies(features, tmp)
            if tmp is not None:
                if split_out is not None and split_out.writer is not None:
                    split_out.writer.close()  # the split files finished before meta.json records their sizes
                if "srgnn" in config.emit.exports:  # from the split rows gathered part by part
                    write_srgnn(result, tmp)
                meta = write_outputs(result, tmp, sequences_written=parquet, exports_written=True)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)


def _tally(prepared: dict[str, Any]) -> dict[str, Any]:
    return prepared["tally"]


class _SplitOut:
    """The split files, written as the prepared parts come (user order); sequences.npz's ``padded``
    rows kept for the final write."""

    def __init__(self, writer: SplitWriter | None, srgnn: bool = False) -> None:
        self.writer = writer
        self.srgnn: list[Extras] | None = [] if srgnn else None  # --export srgnn: each part's training and test rows
        self.padded: list[np.ndarray] = []
        self.padded_features: list[tuple[Any, ...]] = []

    def add(self, prepared: dict[str, Any]) -> None:
        ex = prepared["extras"]
        if ex is None:
            return
        if ex.padded is not None:
            self.padded.append(ex.padded)
            self.padded_features.append(ex.padded_features)
        if self.srgnn is not None and ex.test is not None:
            self.srgnn.append(Extras(train_offsets=ex.train_offsets, train_items=ex.train_items, test=ex.test))
        if self.writer is not None:
            self.writer.add(dataclasses.replace(ex, padded=None, padded_features=()), prepared["lo"], prepared["hi"])


@contextmanager
def _split_files(config: BuildConfig, users: Vocabulary, folder: Path | None, plan: Any) -> Iterator[_SplitOut | None]:
    """Where the prepared parts' split files go (None without a split)."""
    if plan is None:
        yield None
        return
    srgnn = "srgnn" in config.emit.exports
    if folder is None:
        yield _SplitOut(None, srgnn)
        return
    with tempfile.TemporaryDirectory(prefix="seqprep-dask-split-") as spill:
        with SplitWriter(folder, config.formats, users, Path(spill)) as writer:  # on an error: no split file left
            yield _SplitOut(writer, srgnn)


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
def _exports(
    config: BuildConfig, users: Vocabulary, items: Vocabulary, has_rating: bool, folder: Path | None, features: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """The ``--export`` files, written part by part (no consumer without exports or a folder)."""
    if folder is None or not config.emit.exports:
        yield ()
        return
    writer = ExportWriter(config, users, items, has_rating, folder, features)
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
    features: tuple[Any, ...] = (),
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
    if features:
        meta["features"] = features_meta(features)
    if config.event.event_col is not None:
        meta["events"] = dfeatures.events_meta(config, features, [p["feature_counts"] for p in parts])
    meta["engine"] = engine
    return meta
