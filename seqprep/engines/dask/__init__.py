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

Sessions per output part (users are whole). Splits run on the client over the gathered sequences,
by the local steps.
"""

from __future__ import annotations

import dataclasses
import logging
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ...config import BuildConfig, EngineOptions, ReadOptions, SplitOptions
from ...errors import ConfigError, InputError, empty_log, one_line
from ...io.columns import merge_ids
from ...io.sources import sha256_stream
from ...kernels import csr_offsets
from ...model import BuildResult, InputInfo, Sequences
from ...output.atomic import NO_READS
from ...output.folder import atomic_output_dir, build_reads, check_output, write_outputs
from ...steps import splits
from ...steps.meta import SequenceFacts, make_meta
from ...steps.missing import MissingCounts
from ...steps.sessions import add_sessions, session_gap, sessions_meta
from ...steps.vocabularies import ITEM_START, USER_START, vocabulary_from_counts
from ...timeunits import UNIT_SCALE
from ...vocab import Vocabulary
from .clean import Cleaned, clean_rows
from .inputs import DaskInput, expand, frame, inspect
from .partitions import SUMMARY_META, UNITS, encode, encoded_meta, make_part, summary
from .write import gather, write_parts

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
    with (
        LocalCluster(
            n_workers=opts.workers,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # a free loopback port: never clashes with a running cluster
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
    plan: dict[str, Any]  # the merged time unit, float or not, and per-partition scales
    infos: tuple[InputInfo, ...]
    missing: dict[str, Any]  # the missing-value step's report
    partitions: int

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])


def _read(dd: Any, client: Any, sources: list[DaskInput], config: BuildConfig) -> _Read:
    hashes = [client.submit(_sha256_of, s.location, pure=False) for s in sources]
    frames = [frame(dd, s, config.engine.block_bytes) for s in sources]
    file_parts = np.array([f.npartitions for f in frames])
    canon = (frames[0] if len(frames) == 1 else dd.concat(frames)).persist()
    table = canon.map_partitions(summary, meta=SUMMARY_META).compute()
    offsets = csr_offsets(table["rows"].to_numpy())
    ends = np.cumsum(file_parts)
    infos = tuple(
        InputInfo(
            path=s.path,
            bytes=s.size,
            sha256=h.result(),
            rows=int(offsets[end] - offsets[end - n]),
            format=s.format,
            compression=s.compression,
            columns=dict(s.roles),
        )
        for s, h, n, end in zip(sources, hashes, file_parts, ends)
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
    return _Read(canon, offsets, time_plan(table["tk"].to_numpy()), infos, missing, len(table))


def time_plan(codes: np.ndarray) -> dict[str, Any]:
    """Merge the partitions' time kinds as the reader merges files': one kind of timestamp in every
    input; the finest date unit wins; any fractional value makes all float64."""
    from ...errors import mixed_time_kinds

    units = [UNITS[c // 2] for c in codes]
    present = {u for u in units if u != "none"}
    if len(present) > 1 and "epoch" in present:
        raise mixed_time_kinds()
    if not present:
        unit = "epoch"
    elif len(present) == 1:
        unit = next(iter(present))
    else:
        unit = max(present, key=UNIT_SCALE.__getitem__)
    scales = np.array(
        [UNIT_SCALE[unit] // UNIT_SCALE[u] if u not in ("none", "epoch") and unit != "epoch" else 1 for u in units],
        dtype=np.int64,
    )
    return {"unit": unit, "float": bool(any(c % 2 for c in codes)), "scales": scales}


def _vocabulary(table: Any, role: str, read: ReadOptions, typed_text: bool, order: str, start: int) -> tuple[Vocabulary, pa.Array]:
    """A count table (id text -> kept, kpos) -> the fitted vocabulary and its ids as text (to broadcast)."""
    text = pa.array(np.asarray(table.index, dtype=object), type=pa.string())
    indices = pa.array(np.arange(len(text), dtype=np.int32))
    _, typed = merge_ids([pa.DictionaryArray.from_arrays(indices, text)], read.id_type, role, typed_text)
    vocab, chosen = vocabulary_from_counts(table["kept"].to_numpy(), typed, order, table["kpos"].to_numpy(), start)
    return vocab, text.take(pa.array(chosen))


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


def _pieces(dask: Any, client: Any, cleaned: Cleaned, users: Vocabulary, lookups: tuple[pa.Array, pa.Array], read: _Read, config: BuildConfig, has_rating: bool, gap: Any) -> list[Any]:
    """The output parts: encoded rows shuffled into contiguous user ranges, each sorted on a worker."""
    enc = cleaned.rows.map_partitions(
        # broadcast once to every worker (embedding large indexes in the graph would resend them)
        encode,
        client.scatter(lookups[0], broadcast=True),
        client.scatter(lookups[1], broadcast=True),
        meta=encoded_meta(read.plan["float"]),
    )
    bounds = divisions(users.counts, config.engine.part_rows)
    cuts = bounds[:-1] + [bounds[-1] - 1] if len(bounds) > 2 else [0, bounds[-1] - 1]
    if len(bounds) > 2 and cuts[-2] == cuts[-1]:  # a last part of one user: merge it
        bounds = bounds[:-2] + [bounds[-1]]
        cuts = bounds[:-1] + [bounds[-1] - 1]
    shuffled = enc.set_index("uidx", divisions=cuts)
    return [
        dask.delayed(make_part)(d, bounds[j], bounds[j + 1], has_rating, gap) for j, d in enumerate(shuffled.to_delayed())
    ]


def run_dask(config: BuildConfig, *, write: bool = True) -> BuildResult:
    """Run the (validated) ``config`` on a Dask cluster.

    With ``write`` and Parquet output only, the sequences go straight from the workers to the part
    files and ``result.sequences`` is ``None`` (``seqprep.load(out)`` reads them back); otherwise they
    are gathered on the client.
    """
    t0 = _time.perf_counter()
    dask, dd, distributed = _import_dask()
    reads = build_reads(config) if write else NO_READS
    if write:
        check_output(Path(config.output), config.overwrite, reads)  # before any work
    sources = [inspect(k, spec, config.read) for k, spec in enumerate(expand(config.inputs))]
    has_rating = any("rating" in s.roles for s in sources)  # as the local reader: a rating column anywhere
    with client_for(config.engine) as client, dask.config.set({"dataframe.convert-string": False}), _read_errors():
        read = _read(dd, client, sources, config)
        steps = [read.missing]
        cleaned = clean_rows(dask, client, read.canon, config, read.offsets, read.plan, has_rating, steps)
        gap = session_gap(config.session, read.plan["unit"], cleaned.largest)
        users, user_lookup = _vocabulary(cleaned.users, "user", config.read, any(s.typed_text["user"] for s in sources), config.user_order, USER_START)
        items, item_lookup = _vocabulary(cleaned.items, "item", config.read, any(s.typed_text["item"] for s in sources), config.item_order, ITEM_START)
        pieces = _pieces(dask, client, cleaned, users, (user_lookup, item_lookup), read, config, has_rating, gap)
        engine = {"name": "dask", "dask_version": dask.__version__, "input_partitions": read.partitions, "output_parts": len(pieces)}
        if config.split != SplitOptions():  # splits run on the client, by the local steps
            seqs = gather(write_parts(client, distributed, pieces, users, None, keep=True), users, read.plan["float"], has_rating)
            return _finish_on_client(config, read, users, items, seqs, steps, engine, write, reads, t0)
        keep = not write or "npz" in config.formats
        parquet = write and "parquet" in config.formats
        out = Path(config.output) if write else None
        with atomic_output_dir(out, config.overwrite, reads) if out is not None else _nowhere() as tmp:
            parts = write_parts(client, distributed, pieces, users, tmp if parquet else None, keep)
            seqs = gather(parts, users, read.plan["float"], has_rating) if keep else None
            meta = _meta(config, read, users, items, parts, steps, has_rating, engine, gap)
            result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta=meta)
            if tmp is not None:
                meta = write_outputs(result, tmp, sequences_written=parquet)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)


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
        timestamp_dtype=np.dtype(np.float64 if read.plan["float"] else np.int64),
        has_ratings=has_rating,
    )
    meta = make_meta(config, inputs=read.infos, rows_read=read.num_rows, time_unit=read.plan["unit"], users=users, items=items, facts=facts, steps=steps)
    if gap is not None:
        lengths = [p["session_lengths"] for p in parts]
        meta["sessions"] = sessions_meta(config.session, read.plan["unit"], gap, np.concatenate(lengths) if lengths else np.zeros(0, np.int64))
    meta["engine"] = engine
    return meta


def _finish_on_client(
    config: BuildConfig,
    read: _Read,
    users: Vocabulary,
    items: Vocabulary,
    seqs: Sequences,
    steps: list[dict[str, Any]],
    engine: dict[str, Any],
    write: bool,
    reads: Any,
    t0: float,
) -> BuildResult:
    """Sessions, splits, truncation, windows and negatives: the local engine's tail (the reference) on
    the sequences gathered on the client; written as the local engine writes them."""
    unit = read.plan["unit"]
    part, info = splits.decide_parts(seqs.offsets, seqs.timestamps, config.split, unit)
    seqs, sessions = add_sessions(seqs, unit, config.session)
    meta = make_meta(config, inputs=read.infos, rows_read=read.num_rows, time_unit=unit, users=users, items=items, facts=SequenceFacts.of(seqs), steps=steps)
    if sessions is not None:
        meta["sessions"] = sessions
    seqs, extras, extra_meta = splits.prepare(seqs, items, part, info, config)
    meta.update(extra_meta)
    meta["engine"] = dict(engine, output_parts=0, gathered_on_client=True)
    result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta=meta, extras=extras)
    out = None
    if write:
        out = Path(config.output)
        with atomic_output_dir(out, config.overwrite, reads) as tmp:
            meta = write_outputs(result, tmp)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)
