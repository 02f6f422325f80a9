"""The build on a Dask cluster: ``seqprep build --engine dask``.

Same contract as the local pipeline (the reference): the same vocabularies, the same stable time order
and tie rule, the same meta.json counts. Only the layout of the sequences differs: a folder of parts
``sequences/part-00000.parquet``, ... that hold contiguous user ranges in user-index order.

How the work is split (every step columnar, per partition; no Python loop over rows or users):

1. each input is read with ``dask.dataframe`` (``read_csv`` / ``read_json`` / ``read_parquet``; any
   fsspec path such as ``s3://`` or ``gcs://``), with the reader's rules: the same separator/header/
   column detection (:func:`seqprep.readers.resolve_columns`), ids read as text and typed afterwards on
   the distinct values only (:func:`seqprep.readers._merge_ids`), timestamps typed by
   :func:`seqprep.readers._normalize_time` per partition and merged across partitions as the reader
   merges them across files (the finest unit wins, any fractional value makes all float64);
2. every row gets its global input position ``pos`` (inputs in the order given, then line order) -
   the (file, row) key of the tie rule - from the partition lengths;
3. user and item count tables (interactions kept, first kept position) come from a tree reduction
   (``groupby().agg``); the vocabularies are ordered on the client by the local engine's kernel
   (:func:`seqprep.kernels.order_counted`, which :func:`~seqprep.kernels.fit_order` also uses) and
   broadcast to the workers as small lookup indexes;
4. rows are encoded to indices and shuffled by user index into partitions of contiguous user ranges
   (``set_index`` with divisions chosen from the user counts, about ``part_rows`` interactions each);
5. each partition is put back in input order (by ``pos``) and sorted and grouped by the local kernels
   (:func:`~seqprep.kernels.time_order`, :func:`~seqprep.kernels.csr_offsets`,
   :func:`~seqprep.kernels.tie_stats`); the client writes each part as it arrives.

Row-removing steps run between 2 and 3 (:func:`_clean`): each row carries the step that removed it
(``stage``); time window and rating bound per partition, dedup per partition after a shuffle by user
id, k-core rounds on the count tables. Sessions per output part (users are whole). Splits run on the
client over the gathered sequences, by the local code (:func:`_finish_on_client`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import readers
from ..config import BuildConfig, EngineOptions, ReadOptions, SplitOptions
from ..errors import ConfigError, InputError, OutputError, SeqprepError
from ..io.sources import sha256_file, sha256_stream
from ..steps.filters import empty_after, window_bounds
from ..steps.sessions import session_lengths, sessions_meta
from ..timeunits import gap_in_unit
from ..kernels import csr_offsets, order_counted, tie_stats, time_order
from ..kernels.filters import dedup, rating_at_least, session_ids, time_window
from ..readers import (
    _COMPRESSED_EXT,
    _MAGIC,
    _SNIFF_BYTES,
    _UNIT_SCALE,
    InputInfo,
    _detect_format,
    _merge_ids,
    _normalize_rating,
    _normalize_time,
    expand_inputs,
    resolve_columns,
)
from ..vocab import Vocabulary

__all__ = ["INSTALL_HINT", "run_dask"]

INSTALL_HINT = "pip install 'seqprep[dask]'"
#: pyarrow's CSV null strings (the local reader's), so both engines call the same fields missing.
_NULLS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"]  # fmt: skip
_UNITS = ("none", "epoch", "s", "ms", "us", "ns")  # time kind code = 2 * unit index + is_float
_STR = pd.StringDtype("pyarrow")
_NO_POS = np.iinfo(np.int64).max


def _import_dask() -> tuple[Any, Any, Any]:
    try:
        import dask
        import dask.dataframe as dd
        import distributed
    except ImportError as e:
        msg = f"--engine dask needs Dask, which is not installed ({e.name}); {INSTALL_HINT}"
        raise ConfigError(msg) from None
    return dask, dd, distributed


# --------------------------------------------------------------------------------------------------
# Inputs: what each file is and how to read it (on the client, from the first 64 KiB)


@dataclass(frozen=True)
class _Input:
    index: int
    path: str
    size: int
    compression: str | None
    format: str
    roles: dict[str, str]
    typed_text: dict[str, bool]
    csv: dict[str, Any] | None = None

    @property
    def location(self) -> str:
        """Where the workers read it: a local path made absolute (their working folder is not ours)."""
        return self.path if "://" in self.path else str(Path(self.path).absolute())


def _expand(inputs: tuple[str, ...]) -> list[str]:
    """Local paths and globs as the local reader expands them; fsspec URLs (``s3://...``) through fsspec."""
    import fsspec

    out: list[str] = []
    for spec in inputs:
        if spec == "-":
            msg = "--engine dask reads files or URLs, not stdin (-); write the log to a file first"
            raise ConfigError(msg)
        if "://" not in spec:
            out.extend(expand_inputs([spec]))
            continue
        fs, path = fsspec.core.url_to_fs(spec)
        if any(ch in path for ch in "*?[") and not fs.exists(path):
            matches = sorted(fs.glob(path))
            if not matches:
                msg = f"no file matches {spec!r}; check the pattern (quote it so the shell does not expand it)"
                raise InputError(msg)
            out.extend(fs.unstrip_protocol(m) for m in matches)
        else:
            out.append(spec)
    return out


def _inner_name(spec: str) -> str:
    name = spec.rstrip("/").rsplit("/", 1)[-1].lower()
    for ext in _COMPRESSED_EXT:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _inspect(index: int, spec: str, opts: ReadOptions) -> _Input:
    import fsspec

    fs, path = fsspec.core.url_to_fs(spec)
    if not fs.exists(path):
        msg = f"input file {spec!r} not found; check the path"
        raise InputError(msg)
    if fs.isdir(path):
        msg = f"input {spec!r} is a folder; pass the log file(s) inside it, e.g. {spec.rstrip('/')}/*.csv"
        raise InputError(msg)
    size = int(fs.size(path))
    with fs.open(path, "rb") as fh:
        magic = fh.read(8)
    compression = next((c for m, c in _MAGIC if magic.startswith(m)), None)
    with fsspec.open(spec, "rb", compression=compression) as fh:
        head = fh.read(_SNIFF_BYTES)
    fmt = _detect_format(SimpleNamespace(inner_name=_inner_name(spec)), opts, head)
    if fmt == "csv":
        csv_opts, roles = _csv_layout(spec, opts, head)
        return _Input(index, spec, size, compression, fmt, roles, {"user": False, "item": False}, csv_opts)
    if fmt == "jsonl":
        roles, schema = readers._jsonl_layout(SimpleNamespace(name=spec), opts, head)  # the local rules
        typed = {r: pa.types.is_string(schema.field(roles[r]).type) for r in ("user", "item")}
        return _Input(index, spec, size, compression, fmt, roles, typed)
    if compression is not None:
        msg = (
            f"{spec}: a compressed Parquet file cannot be split by the Dask engine; decompress it or use --engine local"
        )
        raise InputError(msg)
    import pyarrow.parquet as pq

    try:
        with fs.open(path, "rb") as fh:
            schema = pq.read_schema(fh)
    except (pa.ArrowInvalid, OSError) as e:
        msg = f"{spec}: not a readable Parquet file ({' '.join(str(e).split())[:300]}); check the file or pass --input-format"
        raise InputError(msg) from e
    roles = resolve_columns(schema.names, opts, spec)
    typed = {
        r: pa.types.is_string(schema.field(roles[r]).type) or pa.types.is_large_string(schema.field(roles[r]).type)
        for r in ("user", "item")
    }
    return _Input(index, spec, size, compression, fmt, roles, typed)


def _csv_layout(where: str, opts: ReadOptions, head: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """Separator, header and column names, decided by the local CSV reader's own sniffing."""
    sep, names, header, roles = readers._csv_layout(SimpleNamespace(name=where), opts, head)
    return {"sep": sep, "header": header, "names": names}, roles


def _frame(dd: Any, src: _Input, block_bytes: int) -> Any:
    """One input as a Dask frame of its role columns, every partition canonicalised by :func:`_canon`."""
    cols = [src.roles[r] for r in ("user", "item", "time", "rating") if r in src.roles]
    splittable = src.compression is None
    if src.format == "csv":
        c = src.csv or {}
        kw: dict[str, Any] = {
            "sep": c["sep"],
            "header": 0 if c["header"] else None,
            "names": c["names"],
            "usecols": cols,
            "dtype": dict.fromkeys(cols, _STR),
            "na_values": _NULLS,
            "keep_default_na": False,
            "blocksize": block_bytes if splittable else None,
            "compression": src.compression,
        }
        if len(c["sep"]) > 1:
            kw |= {"sep": re.escape(c["sep"]), "engine": "python"}
        df = dd.read_csv(src.location, **kw)
    elif src.format == "jsonl":
        df = dd.read_json(
            src.location,
            lines=True,
            orient="records",
            blocksize=block_bytes if splittable else None,
            compression=src.compression or "infer",
            dtype=False,  # no type guessing (pandas then also leaves date-like columns alone)
        )
        df = df[cols]
    else:
        df = dd.read_parquet(src.location, columns=cols)
    df = df.rename(columns={src.roles[r]: r for r in src.roles})
    return df.map_partitions(_canon, where=src.path, meta=_CANON_META)


# --------------------------------------------------------------------------------------------------
# Per-partition functions (run on the workers; pure pandas/pyarrow/numpy)

_CANON_META = pd.DataFrame(
    {
        "user": pd.Series([], dtype=_STR),
        "item": pd.Series([], dtype=_STR),
        "time": pd.Series([], dtype=np.int64),  # int64 values, or float64 bits (see the kind code)
        "tk": pd.Series([], dtype=np.int8),  # the partition's time kind: 2 * unit index + is_float
        "tv": pd.Series([], dtype=bool),  # time present
        "rating": pd.Series([], dtype=np.float32),
    }
)


def _ids_text(col: pd.Series, role: str, where: str) -> pd.Series:
    """Ids as text (typed later on the distinct values, like the local reader); missing stays <NA>."""
    try:
        arr = pa.array(col, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects (e.g. JSON ints and strings)
        arr = pa.array(col.astype(object).where(col.notna(), None).map(lambda v: v if v is None else str(v)))
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        ok = pc.equal(arr, pc.floor(arr))
        if not pc.all(pc.fill_null(ok, True)).as_py():
            bad = arr.filter(pc.invert(pc.fill_null(ok, True)))[0].as_py()
            msg = f"{where}: {role} ids are fractional numbers (e.g. {bad}); ids must be integers or text - pass --{role}-col with an id column"
            raise InputError(msg)
        arr = pc.cast(arr, pa.int64())
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return pd.Series(pd.arrays.ArrowStringArray(arr), index=col.index)


def _rating(col: pd.Series, where: str) -> np.ndarray:
    arr = pa.array(col, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):  # pyarrow-backed pandas columns come back chunked
        arr = arr.combine_chunks()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:  # as the CSV reader parses it: text -> float64, then float32
            arr = pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
        except pa.ArrowInvalid:
            _normalize_rating(pa.chunked_array([arr]), where)  # raises the reader's error
            raise
    out = _normalize_rating(pa.chunked_array([arr]), where)
    return pc.fill_null(out, float("nan")).to_numpy(zero_copy_only=False)


def _canon(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Role columns -> canonical columns (see ``_CANON_META``)."""
    n = len(df)
    t_arr, unit = _normalize_time(pa.array(df["time"], from_pandas=True), where, 0)
    valid = t_arr.is_valid().to_numpy(zero_copy_only=False) if t_arr.null_count else np.ones(n, dtype=bool)
    is_float = pa.types.is_floating(t_arr.type)
    values = pc.fill_null(t_arr, 0).to_numpy(zero_copy_only=False)
    bits = values.view(np.int64) if is_float else values.astype(np.int64, copy=False)
    unit_code = _UNITS.index(unit) if valid.any() else 0
    return pd.DataFrame(
        {
            "user": _ids_text(df["user"], "user", where),
            "item": _ids_text(df["item"], "item", where),
            "time": bits,
            "tk": np.full(n, 2 * unit_code + int(is_float), dtype=np.int8),
            "tv": valid,
            "rating": _rating(df["rating"], where) if "rating" in df.columns else np.full(n, np.nan, np.float32),
        },
        index=df.index,
    )


_SUMMARY_META = pd.DataFrame(
    {
        k: pd.Series([], dtype=np.int64)
        for k in ("rows", "missing_user", "missing_item", "missing_time", "bad", "first_bad", "tk")
    }
)


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per partition: its length, missing values, first bad row and time kind."""
    mu = df["user"].isna().to_numpy()
    mi = df["item"].isna().to_numpy()
    mt = ~df["tv"].to_numpy()
    bad = mu | mi | mt
    return pd.DataFrame(
        {
            "rows": [len(df)],
            "missing_user": [int(mu.sum())],
            "missing_item": [int(mi.sum())],
            "missing_time": [int(mt.sum())],
            "bad": [int(bad.sum())],
            "first_bad": [int(np.argmax(bad)) if bad.any() else -1],
            "tk": [int(df["tk"].iat[0]) if len(df) else 0],
        }
    )


_FINISH_META = pd.DataFrame(
    {
        "user": pd.Series([], dtype=_STR),
        "item": pd.Series([], dtype=_STR),
        "time": pd.Series([], dtype=np.int64),
        "rating": pd.Series([], dtype=np.float32),
        "pos": pd.Series([], dtype=np.int64),
        "stage": pd.Series([], dtype=np.int16),
    }
)
# ``stage``: the step that removed the row, or _KEPT. The steps in their documented order; k-core
# round r (from 1) is stage _KCORE + r - 1.
_MISSING, _WINDOW, _RATING, _DEDUP, _KCORE = 0, 1, 2, 3, 4
_KEPT = np.iinfo(np.int16).max


def _finish(
    df: pd.DataFrame,
    offsets: np.ndarray,
    scales: np.ndarray,
    as_float: bool,
    since: float | None = None,
    until: float | None = None,
    min_rating: float | None = None,
    partition_info: Any = None,
) -> pd.DataFrame:
    """Global input position, final time type/unit, and the row-level steps (missing values, time
    window, rating bound, by the local kernels) as the row's ``stage``."""
    k = partition_info["number"]
    n = len(df)
    pos = np.arange(offsets[k], offsets[k] + n, dtype=np.int64)
    bits = df["time"].to_numpy()
    code = int(df["tk"].iat[0]) if n else 0
    t = bits.view(np.float64) if code % 2 else bits
    if as_float:
        t = t.astype(np.float64)
    elif scales[k] != 1:
        t = t * np.int64(scales[k])
    ok = df["user"].notna().to_numpy() & df["item"].notna().to_numpy() & df["tv"].to_numpy()
    stage = np.where(ok, _KEPT, _MISSING).astype(np.int16)
    if since is not None or until is not None:
        stage[(stage == _KEPT) & ~time_window(t, since, until)] = _WINDOW
    if min_rating is not None:
        stage[(stage == _KEPT) & ~rating_at_least(df["rating"].to_numpy(), min_rating)] = _RATING
    return pd.DataFrame(
        {"user": df["user"], "item": df["item"], "time": t, "rating": df["rating"], "pos": pos, "stage": stage},
        index=df.index,
    )


def _dedup_part(df: pd.DataFrame, mode: str, has_rating: bool) -> pd.DataFrame:
    """The dedup step on a partition holding whole users: the local kernel on the kept rows in input
    order (it only compares codes for equality, so per-partition codes give the global result)."""
    stage = df["stage"].to_numpy().copy()
    rows = np.flatnonzero(stage == _KEPT)
    rows = rows[np.argsort(df["pos"].to_numpy()[rows], kind="stable")]
    if len(rows) > 1:
        user = pd.factorize(df["user"].iloc[rows])[0]
        item = pd.factorize(df["item"].iloc[rows])[0]
        rating = df["rating"].to_numpy()[rows] if has_rating else None
        keep = dedup(user, item, df["time"].to_numpy()[rows], rating, mode)  # type: ignore[arg-type]
        stage[rows[~keep]] = _DEDUP
    return df.assign(stage=stage)


def _drop_ids(df: pd.DataFrame, users: pa.Array, items: pa.Array, stage_code: int) -> pd.DataFrame:
    """One k-core round: kept rows whose user or item is below its bound get ``stage_code``."""
    bad = np.zeros(len(df), dtype=bool)
    for col, ids in (("user", users), ("item", items)):
        if len(ids):
            values = pa.array(df[col])
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            bad |= pc.fill_null(pc.is_in(values.cast(pa.string()), value_set=ids), False).to_numpy(zero_copy_only=False)
    stage = df["stage"].to_numpy().copy()
    stage[bad & (stage == _KEPT)] = stage_code
    return df.assign(stage=stage)


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    """Columns for the count tables: kept rows, first kept position, last step reached."""
    kept = df["stage"].to_numpy() == _KEPT
    return pd.DataFrame(
        {
            "user": df["user"],
            "item": df["item"],
            "kept": kept.astype(np.int64),
            "kpos": np.where(kept, df["pos"].to_numpy(), _NO_POS),
            "smax": df["stage"].to_numpy(),
        },
        index=df.index,
    )


def _lookup(col: pd.Series, ids: pa.Array) -> np.ndarray:
    """Position of each value of ``col`` in ``ids`` (an Arrow hash lookup; every value is present)."""
    values = pa.array(col)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.index_in(values.cast(ids.type), value_set=ids).to_numpy(zero_copy_only=False)


def _encode(df: pd.DataFrame, users: pa.Array, items: pa.Array) -> pd.DataFrame:
    """Kept rows with user and item indices (items 1..N) from the broadcast vocabularies."""
    df = df[df["stage"].to_numpy() == _KEPT]
    return pd.DataFrame(
        {
            "uidx": _lookup(df["user"], users).astype(np.int64),
            "iidx": (_lookup(df["item"], items) + 1).astype(np.int32),
            "time": df["time"].to_numpy(),
            "rating": df["rating"].to_numpy(),
            "pos": df["pos"].to_numpy(),
        }
    )


def _make_part(df: pd.DataFrame, lo: int, hi: int, has_rating: bool, gap: float | None = None) -> dict[str, Any]:
    """Users lo..hi-1 as CSR arrays, by the local kernels: input order, then the stable time sort;
    with a session ``gap``, the session numbers and lengths (users are whole, so per part is global)."""
    user = df.index.to_numpy().astype(np.int64) - lo
    back = np.argsort(df["pos"].to_numpy(), kind="stable")  # input order (the tie-break)
    user = user[back]
    time = df["time"].to_numpy()[back]
    order = back[time_order(user, time)]
    offsets = csr_offsets(np.bincount(user, minlength=hi - lo))
    timestamps = df["time"].to_numpy()[order]
    sids = None if gap is None else session_ids(offsets, timestamps, gap)
    return {
        "lo": lo,
        "hi": hi,
        "offsets": offsets,
        "items": df["iidx"].to_numpy()[order].astype(np.int32, copy=False),
        "timestamps": timestamps,
        "ratings": df["rating"].to_numpy()[order].astype(np.float32, copy=False) if has_rating else None,
        "ties": tie_stats(offsets, timestamps),
        "session_ids": sids,
        "session_lengths": None if sids is None else session_lengths(offsets, sids),
    }


def _sha256_of(path: str) -> str:
    import fsspec

    with fsspec.open(path, "rb") as fh:
        return sha256_stream(fh)


# --------------------------------------------------------------------------------------------------
# The client side


@contextmanager
def _client(opts: EngineOptions) -> Iterator[Any]:
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


def _vocabulary(
    table: pd.DataFrame, role: str, read: ReadOptions, typed_text: bool, order: str, start: int
) -> tuple[Vocabulary, pa.Array]:
    """A count table (id text -> kept, kpos) -> the fitted vocabulary and its ids as text (to broadcast)."""
    text = pa.array(np.asarray(table.index, dtype=object), type=pa.string())
    indices = pa.array(np.arange(len(text), dtype=np.int32))
    _, typed = _merge_ids([pa.DictionaryArray.from_arrays(indices, text)], read.id_type, role, typed_text)
    chosen, counts = order_counted(table["kept"].to_numpy(), typed, order, first_seen=table["kpos"].to_numpy())  # type: ignore[arg-type]
    vocab = Vocabulary(ids=typed.take(pa.array(chosen)), counts=counts, start=start)
    return vocab, text.take(pa.array(chosen))


def _divisions(user_counts: np.ndarray, part_rows: int) -> list[int]:
    """First user of each output part (plus the end): contiguous ranges of about ``part_rows`` interactions."""
    num_users = len(user_counts)
    cum = csr_offsets(user_counts)
    parts = max(1, -(-int(cum[-1]) // part_rows))
    starts = np.unique(np.searchsorted(cum, np.arange(parts) * (cum[-1] / parts), side="right") - 1)
    starts = starts[(starts >= 0) & (starts < num_users)]
    starts[0] = 0
    starts = np.unique(starts)
    return [int(s) for s in starts] + [num_users]


def run_dask(config: BuildConfig, *, write: bool = True) -> Any:
    """Run ``config`` on a Dask cluster; returns a :class:`~seqprep.pipeline.BuildResult`.

    With ``write`` and Parquet output only, the sequences go straight from the workers to the part
    files and ``result.sequences`` is ``None`` (``seqprep.load(out)`` reads them back); otherwise they
    are gathered on the client.
    """
    from ..model import BuildResult, Sequences, locate as _locate
    from ..steps.meta import make_meta
    from ..output.folder import atomic_output_dir, build_reads, check_output

    t0 = _time.perf_counter()
    config.validate()
    dask, dd, distributed = _import_dask()
    reads = build_reads(config)
    if write:
        check_output(Path(config.output), config.overwrite, reads)
    specs = _expand(config.inputs)
    sources = [_inspect(k, spec, config.read) for k, spec in enumerate(specs)]
    eng = config.engine
    with _client(eng) as client, dask.config.set({"dataframe.convert-string": False}):
        try:
            hashes = [client.submit(_sha256_of, s.location, pure=False) for s in sources]
            frames = [_frame(dd, s, eng.block_bytes) for s in sources]
            file_parts = np.array([f.npartitions for f in frames])
            canon = (frames[0] if len(frames) == 1 else dd.concat(frames)).persist()
            summary = canon.map_partitions(_summary, meta=_SUMMARY_META).compute()
            rows = summary["rows"].to_numpy()
            offsets = csr_offsets(rows)
            plan = _time_plan(summary["tk"].to_numpy())
            num_rows = int(offsets[-1])
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
            if num_rows == 0:
                msg = f"the log is empty: no interaction rows in {', '.join(i.path for i in infos)}; check the input"
                raise InputError(msg)
            n_bad = int(summary["bad"].sum())
            steps = [
                {
                    "step": "missing",
                    "rows_before": num_rows,
                    "rows_removed": n_bad,
                    "rows_after": num_rows - n_bad,
                    "missing_user": int(summary["missing_user"].sum()),
                    "missing_item": int(summary["missing_item"].sum()),
                    "missing_time": int(summary["missing_time"].sum()),
                }
            ]
            if n_bad and config.strict:
                k = int(np.flatnonzero(summary["bad"].to_numpy())[0])
                where = _locate(infos, int(offsets[k] + summary["first_bad"].iat[k]))
                msg = (
                    f"{n_bad} rows have a missing user, item or timestamp (first at {where}); "
                    "fix them, or drop --strict to skip and count them"
                )
                raise InputError(msg)
            if n_bad == num_rows:
                msg = f"no interactions left: all {num_rows} rows have a missing user, item or timestamp; check the columns chosen"
                raise InputError(msg)
            has_rating = any("rating" in s.roles for s in sources)  # as the local reader: a rating column anywhere
            fin, user_table, item_table, top = _clean(dask, client, canon, config, offsets, plan, has_rating, steps)
            gap = None  # --session-gap in the time unit (a duration needs the largest |timestamp| kept)
            if config.session.session_gap is not None:
                gap = gap_in_unit(config.session.session_gap, plan["unit"], float(top))
            users, user_lookup = _vocabulary(
                user_table, "user", config.read, any(s.typed_text["user"] for s in sources), config.user_order, 0
            )
            items, item_lookup = _vocabulary(
                item_table, "item", config.read, any(s.typed_text["item"] for s in sources), config.item_order, 1
            )
            enc = fin.map_partitions(
                # broadcast once to every worker (embedding large indexes in the graph would resend them)
                _encode, client.scatter(user_lookup, broadcast=True), client.scatter(item_lookup, broadcast=True),
                meta=pd.DataFrame({"uidx": pd.Series([], dtype=np.int64), "iidx": pd.Series([], dtype=np.int32),
                                   "time": pd.Series([], dtype=np.float64 if plan["float"] else np.int64),
                                   "rating": pd.Series([], dtype=np.float32), "pos": pd.Series([], dtype=np.int64)}),
            )  # fmt: skip
            bounds = _divisions(users.counts, eng.part_rows)
            divisions = bounds[:-1] + [bounds[-1] - 1] if len(bounds) > 2 else [0, bounds[-1] - 1]
            if len(bounds) > 2 and divisions[-2] == divisions[-1]:  # a last part of one user: merge it
                bounds = bounds[:-2] + [bounds[-1]]
                divisions = bounds[:-1] + [bounds[-1] - 1]
            shuffled = enc.set_index("uidx", divisions=divisions)
            pieces = [
                dask.delayed(_make_part)(d, bounds[j], bounds[j + 1], has_rating, gap)
                for j, d in enumerate(shuffled.to_delayed())
            ]
            meta_extra = {
                "name": "dask",
                "dask_version": dask.__version__,
                "input_partitions": len(rows),
                "output_parts": len(pieces),
            }
            if config.split != SplitOptions():
                collected = _write_parts(client, distributed, pieces, users, None, False, True)
                seqs = _gather(collected, users, plan["float"], has_rating)
                log = SimpleNamespace(inputs=infos, num_rows=num_rows, time_unit=plan["unit"])
                return _finish_on_client(config, log, users, items, seqs, steps, meta_extra, write, t0)
            keep_all = not write or "npz" in config.formats

            def meta_of(collected: Any) -> dict[str, Any]:
                return _meta(
                    make_meta, Sequences, config, infos, num_rows, plan, users, items,
                    collected, steps, has_rating, meta_extra, gap,
                )  # fmt: skip

            if write:
                out = Path(config.output)
                with atomic_output_dir(out, config.overwrite, reads) as tmp:
                    collected = _write_parts(
                        client, distributed, pieces, users, tmp, "parquet" in config.formats, keep_all
                    )
                    seqs = _gather(collected, users, plan["float"], has_rating) if keep_all else None
                    meta = meta_of(collected)
                    meta = _write_rest(config, seqs, users, items, meta, tmp)
            else:
                out = None
                collected = _write_parts(client, distributed, pieces, users, None, False, True)
                seqs = _gather(collected, users, plan["float"], has_rating)
                meta = meta_of(collected)
        except SeqprepError:
            raise
        except (ValueError, TypeError, KeyError, OSError, pa.ArrowException) as e:
            msg = f"the Dask build failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}; check the input and reader options, or try --engine local"
            raise InputError(msg) from e
    return BuildResult(
        config=config,
        users=users,
        items=items,
        sequences=seqs,
        meta=meta,
        output=out,
        seconds=_time.perf_counter() - t0,
    )  # type: ignore[arg-type]


def _text(index: pd.Index) -> pa.Array:
    return pa.array(np.asarray(index, dtype=object), type=pa.string())


def _clean(
    dask: Any,
    client: Any,
    canon: Any,
    config: BuildConfig,
    offsets: np.ndarray,
    plan: dict[str, Any],
    has_rating: bool,
    steps: list[dict[str, Any]],
) -> tuple[Any, pd.DataFrame, pd.DataFrame, Any]:
    """Every row-removing step in the local order, each row marked with the step that removed it.

    The time window and the rating bound are row-level (per partition, in :func:`_finish`); dedup
    runs per partition after a shuffle by user id (whole users together); each k-core round reads
    the user and item count tables of the kept rows (tree reductions) and broadcasts the ids below
    their bound. The final count tables give every step's rows, users and items removed. Appends the
    step reports to ``steps``; -> (rows with their stage, user table, item table, the largest
    |timestamp| kept, computed only with ``--session-gap``).
    """
    opts = config.filter
    since = until = None
    if opts.since is not None or opts.until is not None:
        since, until = window_bounds(opts, plan["unit"])
    if opts.min_rating is not None and not has_rating:
        msg = "--min-rating needs a rating column, but the log has none; pass --rating-col NAME, or drop --min-rating"
        raise InputError(msg)
    fin = canon.map_partitions(
        _finish, offsets, plan["scales"], plan["float"], since, until, opts.min_rating, meta=_FINISH_META
    )
    if opts.dedup != "none":
        fin = fin.shuffle(on="user").map_partitions(_dedup_part, opts.dedup, has_rating, meta=_FINISH_META)
    rounds: list[dict[str, int]] = []
    fixpoint = True
    kcore_on = opts.min_user_count > 1 or opts.min_item_count > 1
    if opts.dedup != "none" or kcore_on:  # read several times (count tables, rounds, encoding): shuffle once
        fin = fin.persist()
    if kcore_on:
        kept = fin[fin["stage"] == _KEPT]
        uc, ic = dask.compute(kept.groupby("user").size(), kept.groupby("item").size())
        while True:
            bad_u = uc.index[uc.to_numpy() < opts.min_user_count]
            bad_i = ic.index[ic.to_numpy() < opts.min_item_count]
            if len(bad_u) == 0 and len(bad_i) == 0:
                break
            if opts.kcore_rounds is not None and len(rounds) >= opts.kcore_rounds:
                fixpoint = False
                break
            # hash=False: a fresh key per round (equal contents, e.g. two empty sets, must not share one)
            users_bad = client.scatter(_text(bad_u), broadcast=True, hash=False)
            items_bad = client.scatter(_text(bad_i), broadcast=True, hash=False)
            fin = fin.map_partitions(_drop_ids, users_bad, items_bad, _KCORE + len(rounds), meta=_FINISH_META)
            fin = fin.persist()
            kept = fin[fin["stage"] == _KEPT]
            uc2, ic2 = dask.compute(kept.groupby("user").size(), kept.groupby("item").size())
            rounds.append(
                {
                    "round": len(rounds) + 1,
                    "rows_removed": int(uc.sum() - uc2.sum()),
                    "users_removed": len(uc) - len(uc2),
                    "items_removed": len(ic) - len(ic2),
                }
            )
            uc, ic = uc2, ic2
            if len(uc) == 0:
                break
    missing_rating: Any = 0
    if opts.min_rating is not None:  # NaN ratings among the rows that reach the rating step
        missing_rating = fin[fin["stage"] > _WINDOW]["rating"].isna().sum()
    keyed = fin.map_partitions(
        _keyed,
        meta=pd.DataFrame(
            {"user": pd.Series([], dtype=_STR), "item": pd.Series([], dtype=_STR),
             "kept": pd.Series([], dtype=np.int64), "kpos": pd.Series([], dtype=np.int64),
             "smax": pd.Series([], dtype=np.int16)}
        ),
    )  # fmt: skip
    agg = {"kept": "sum", "kpos": "min", "smax": "max"}
    top: Any = 0
    if config.session.session_gap is not None:
        top = fin[fin["stage"] == _KEPT]["time"].abs().max()
    user_table, item_table, stage_counts, missing_rating, top = dask.compute(
        keyed.groupby("user").agg(agg), keyed.groupby("item").agg(agg), fin["stage"].value_counts(), missing_rating, top
    )
    counts = {int(k): int(v) for k, v in stage_counts.items()}
    us, its = user_table["smax"].to_numpy(), item_table["smax"].to_numpy()

    def report(step: str, lo: int, hi: int) -> dict[str, Any]:
        before = steps[-1]["rows_after"]
        removed = sum(v for k, v in counts.items() if lo <= k <= hi)
        out = {
            "step": step,
            "rows_before": before,
            "rows_removed": removed,
            "rows_after": before - removed,
            "users_removed": int(((us >= lo) & (us <= hi)).sum()),
            "items_removed": int(((its >= lo) & (its <= hi)).sum()),
        }
        steps.append(out)
        return out

    # ids seen with a value but on no kept row: what the missing-value step removed entirely
    steps[0]["users_removed"] = int((us == _MISSING).sum())
    steps[0]["items_removed"] = int((its == _MISSING).sum())
    if since is not None or until is not None:
        report("time_window", _WINDOW, _WINDOW).update(
            since=since, until=until, time_unit=plan["unit"], rule="since <= t < until"
        )
        if steps[-1]["rows_after"] == 0:
            raise empty_after("time_window", opts)
    if opts.min_rating is not None:
        report("min_rating", _RATING, _RATING).update(min_rating=opts.min_rating, missing_rating=int(missing_rating))
        if steps[-1]["rows_after"] == 0:
            raise empty_after("min_rating", opts)
    if opts.dedup != "none":
        report("dedup", _DEDUP, _DEDUP)["mode"] = opts.dedup
    if kcore_on:
        report("kcore", _KCORE, _KEPT - 1).update(
            min_user_count=opts.min_user_count,
            min_item_count=opts.min_item_count,
            max_rounds=opts.kcore_rounds,
            fixpoint=fixpoint,
            rounds=rounds,
        )
        if steps[-1]["rows_after"] == 0:
            raise empty_after("kcore", opts)
    return fin, user_table, item_table, top


def _finish_on_client(
    config: BuildConfig,
    log: Any,
    users: Vocabulary,
    items: Vocabulary,
    seqs: Any,
    steps: list[dict[str, Any]],
    extra: dict[str, Any],
    write: bool,
    t0: float,
) -> Any:
    """Sessions, splits, truncation, windows and negatives: the local pipeline's tail (the reference)
    on the sequences gathered on the client; written as the local engine writes them."""
    from ..model import BuildResult
    from ..steps import splits
    from ..steps.meta import SequenceFacts, make_meta
    from ..steps.sessions import add_sessions
    from ..output.folder import atomic_output_dir, build_reads, write_outputs

    part, split_info = splits.decide_parts(seqs.offsets, seqs.timestamps, config.split, log.time_unit)
    seqs, sessions = add_sessions(seqs, log.time_unit, config.session)
    meta = make_meta(
        config, inputs=log.inputs, rows_read=log.num_rows, time_unit=log.time_unit, users=users, items=items,
        facts=SequenceFacts.of(seqs), steps=steps,
    )  # fmt: skip
    if sessions is not None:
        meta["sessions"] = sessions
    seqs, extras, extra_meta = splits.prepare(seqs, items, part, split_info, config)
    meta.update(extra_meta)
    extra = dict(extra, output_parts=0, gathered_on_client=True)
    meta["engine"] = extra
    result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta=meta, extras=extras)
    out = None
    if write:
        out = Path(config.output)
        with atomic_output_dir(out, config.overwrite, build_reads(config)) as tmp:
            meta = write_outputs(result, tmp)
    return dataclasses.replace(result, meta=meta, output=out, seconds=_time.perf_counter() - t0)


def _time_plan(codes: np.ndarray) -> dict[str, Any]:
    """Merge the partitions' time kinds as the reader merges files' (``readers._merge_times``)."""
    units = [_UNITS[c // 2] for c in codes]
    present = {u for u in units if u != "none"}
    if len(present) > 1 and "epoch" in present:
        msg = "some inputs have numeric epoch timestamps and others ISO-8601 dates; use one kind of timestamp in every input"
        raise InputError(msg)
    if not present:
        unit = "epoch"
    elif len(present) == 1:
        unit = next(iter(present))
    else:
        unit = max(present, key=_UNIT_SCALE.__getitem__)
    scales = np.array(
        [_UNIT_SCALE[unit] // _UNIT_SCALE[u] if u not in ("none", "epoch") and unit != "epoch" else 1 for u in units],
        dtype=np.int64,
    )
    return {"unit": unit, "float": bool(any(c % 2 for c in codes)), "scales": scales}


def _write_parts(
    client: Any, distributed: Any, pieces: list[Any], users: Vocabulary, folder: Path | None, parquet: bool, keep: bool
) -> list[dict[str, Any]]:
    """Compute the parts; write each as ``sequences/part-NNNNN.parquet`` as soon as it arrives.

    Returns per part its ties and (with ``keep``) its arrays, in part order.
    """
    from ..output.files import list_array, write_parquet

    if folder is not None and parquet:
        (folder / "sequences").mkdir()
    futures = client.compute(pieces)
    index = {f.key: j for j, f in enumerate(futures)}
    done: list[dict[str, Any] | None] = [None] * len(futures)
    for fut in distributed.as_completed(futures):
        part = fut.result()
        j = index[fut.key]
        fut.release()
        if folder is not None and parquet:
            lo, hi = part["lo"], part["hi"]
            cols: dict[str, Any] = {
                "user_idx": pa.array(np.arange(lo, hi, dtype=np.int32)),
                "user_id": users.ids.slice(lo, hi - lo),
                "items": list_array(part["offsets"], part["items"]),
                "timestamps": list_array(part["offsets"], part["timestamps"]),
            }
            if part["ratings"] is not None:
                cols["ratings"] = list_array(part["offsets"], part["ratings"])
            if part["session_ids"] is not None:
                cols["session_ids"] = list_array(part["offsets"], part["session_ids"])
            write_parquet(pa.table(cols), folder / "sequences" / f"part-{j:05d}.parquet")
        done[j] = (
            part
            if keep
            else {
                "ties": part["ties"],
                "n": int(part["offsets"][-1]),
                "dtype": part["timestamps"].dtype,
                "session_lengths": part["session_lengths"],
            }
        )
    return [d for d in done if d is not None]


def _gather(parts: list[dict[str, Any]], users: Vocabulary, as_float: bool, has_rating: bool) -> Any:
    from ..model import Sequences

    dtype = np.float64 if as_float else np.int64
    return Sequences(
        offsets=csr_offsets(users.counts),
        items=np.concatenate([p["items"] for p in parts]) if parts else np.zeros(0, np.int32),
        timestamps=np.concatenate([p["timestamps"] for p in parts]).astype(dtype, copy=False)
        if parts
        else np.zeros(0, dtype),
        ratings=np.concatenate([p["ratings"] for p in parts]) if has_rating and parts else None,
        session_ids=np.concatenate([p["session_ids"] for p in parts])
        if parts and parts[0]["session_ids"] is not None
        else None,
    )


def _meta(
    make_meta: Any,
    sequences_cls: Any,
    config: BuildConfig,
    infos: tuple[InputInfo, ...],
    num_rows: int,
    plan: dict[str, Any],
    users: Vocabulary,
    items: Vocabulary,
    parts: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    has_rating: bool,
    extra: dict[str, Any],
    gap: float | None = None,
) -> dict[str, Any]:
    """meta.json by the local ``make_meta``; the figures it would compute from the full arrays
    (interactions kept, ties) come from the parts instead."""
    from ..steps.meta import SequenceFacts

    facts = SequenceFacts(
        lengths=users.counts,
        ties=(int(sum(p["ties"][0] for p in parts)), int(sum(p["ties"][1] for p in parts))),
        timestamp_dtype=np.dtype(np.float64 if plan["float"] else np.int64),
        has_ratings=has_rating,
    )
    meta = make_meta(
        config, inputs=infos, rows_read=num_rows, time_unit=plan["unit"], users=users, items=items, facts=facts, steps=steps
    )
    if gap is not None:
        lengths = [p["session_lengths"] for p in parts]
        meta["sessions"] = sessions_meta(
            config.session, plan["unit"], gap, np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        )
    meta["engine"] = extra
    return meta


def _write_rest(
    config: BuildConfig, seqs: Any, users: Vocabulary, items: Vocabulary, meta: dict[str, Any], folder: Path
) -> dict[str, Any]:
    """npz (when asked), the vocabularies and meta.json, as :func:`seqprep.output.folder.write_outputs` writes them."""
    from ..output.files import dump_json, sequences_npz, write_npz, write_parquet

    try:
        if "npz" in config.formats:
            write_npz(folder / "sequences.npz", sequences_npz(seqs, users.indices))
        write_parquet(items.to_table("item"), folder / "items.parquet")
        write_parquet(users.to_table("user"), folder / "users.parquet")
        files = {
            p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        meta = dict(meta)
        meta["outputs"] = {"formats": list(config.formats), "files": files}
        (folder / "meta.json").write_text(dump_json(meta), encoding="utf-8")
    except OSError as e:
        msg = f"cannot write the output: {e.strerror or e}; free some space or choose another -o"
        raise OutputError(msg) from e
    return meta
