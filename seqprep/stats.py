"""The numbers behind ``seqprep stats``: one report per raw log or built folder.

``open_source(path)`` turns a PATH into per-row columns (a raw log is read and cleaned in memory and
left in file order, nothing written; a built folder is loaded as CSR sequences),
``summarize(source)`` computes the numbers as a JSON-ready dict whose keys never change
(``SCHEMA_VERSION``), ``describe(paths)`` does both for several PATHs (and the optional plot), and
``format_report(summaries)`` lays them out side by side for a terminal. No click, no printing;
nothing is written except the plot file asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from .dataset import _flat, is_built, load
from .errors import InputError
from .kernels.sequences import code_counts, time_order
from .kernels.stats import (
    duplicate_counts,
    gini,
    log_histogram,
    month_counts,
    ordered_counts,
    tie_counts,
    top_share,
    user_parts,
)
from .resources import sort_threads

__all__ = [
    "SCHEMA_VERSION",
    "PERCENTILES",
    "Source",
    "open_source",
    "summarize",
    "stats_report",
    "describe",
    "format_report",
    "histogram_lines",
]

SCHEMA_VERSION = 1
PERCENTILES = (10, 25, 50, 75, 90, 99)
RARE_ITEM = 5  # "items with fewer than 5 interactions"
MAX_RATING_VALUES = 100  # a rating distribution lists at most this many distinct values
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Source:
    """What one PATH holds: per-row columns ``items``, ``timestamps``, ``ratings`` and the users' lengths.

    Without ``user`` (a built folder, a split) the rows are CSR columns: user ``u``'s rows are
    ``offsets[u]:offsets[u+1]``, in time order. With ``user`` (a raw log, left in file order) row
    ``k`` belongs to user ``user[k]``, and ``offsets`` only gives the lengths. ``items`` are item
    indices, or any distinct codes with ``counted_items`` (the interactions of each code, shifted
    by one: ``counted_items[c + 1]``).
    """

    path: str
    kind: Literal["raw", "built", "split"]
    offsets: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None
    num_items: int
    time_unit: str
    rows: dict[str, int]
    steps: list[dict[str, Any]]
    splits: dict[str, Any] | None
    counted_items: np.ndarray | None = None  # counts of ``items`` shifted by one (see above); needed with ``user``
    user: np.ndarray | None = None  # each row's user code (None: CSR rows, user u at offsets[u]:offsets[u+1])

    def __post_init__(self) -> None:
        if self.user is not None and self.counted_items is None:  # raw item codes start at 0
            msg = "a Source in file order (user given) needs counted_items"
            raise ValueError(msg)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row_users(self) -> np.ndarray:
        """Each row's user code (for CSR rows: the row index of the offsets)."""
        if self.user is not None:
            return self.user
        return np.repeat(np.arange(len(self.offsets) - 1, dtype=np.int64), self.lengths)

    @property
    def item_counts(self) -> np.ndarray:
        """Interactions of each item that occurs, by item index (zeros left out)."""
        counts = self.counted_items if self.counted_items is not None else np.bincount(self.items)
        counts = counts[1:].astype(np.int64)
        return counts[counts > 0]


def open_source(path: str, *, stdin: BinaryIO | None = None, **read_options: Any) -> Source:
    """A built folder (``seqprep.load``), its ``train.parquet`` split, or a raw log (built in memory
    with ``read_options``, nothing written)."""
    p = Path(path)
    if path != "-" and p.is_file() and is_built(p.parent):
        if p.name == "train.parquet":
            return _open_train(p)
        msg = (
            f"{path!r} is a file of the built folder {str(p.parent)!r}; pass the folder (its split sizes are "
            "reported there) or its train.parquet"
        )
        raise InputError(msg)
    if path != "-" and is_built(path):
        ds = load(path)
        meta = ds.meta
        n = len(ds.items)
        return Source(
            path=str(path),
            kind="built",
            offsets=np.asarray(ds.offsets, dtype=np.int64),
            items=ds.items,
            timestamps=ds.timestamps,
            ratings=ds.ratings,
            num_items=ds.num_items,
            time_unit=meta.get("timestamp", {}).get("unit", "s"),
            rows=meta.get("rows", {"read": n, "kept": n, "removed": 0}),
            steps=list(meta.get("steps", [])),
            splits=split_sizes(Path(path), meta),
        )
    return _raw_source(path, stdin, read_options)


def _raw_source(path: str, stdin: BinaryIO | None, read_options: dict[str, Any]) -> Source:
    """A raw log read and cleaned as ``seqprep build`` does (same reader, same missing-value step,
    same errors), left in file order (``summarize`` sorts what needs an order), with no vocabulary
    ordered, nothing hashed and nothing written: users keep their reader codes and items are coded
    in id order, which give the same numbers."""
    from .config import make_config
    from .kernels import csr_offsets, lookup
    from .pipeline import clean
    from .readers import read_log
    from .resources import limit_threads

    config = make_config([path], "<memory>", **read_options)
    config.validate()
    with limit_threads(config.resources.threads):
        log = read_log(
            config.inputs, config.read, stdin=stdin, block_size=config.resources.block_size_bytes, hash_inputs=False
        )
        if log.num_rows == 0:
            msg = f"the log is empty: no interaction rows in {', '.join(i.path for i in log.inputs)}; check the input"
            raise InputError(msg)
        inter, steps = clean(log, config)
        counts = code_counts(inter.user, len(log.user_ids))
        # items coded in id order: a log grouped by user with items in id order (MovieLens files)
        # then has its (user, item) pairs in order, and duplicates are counted without a sort
        by_id = np.empty(len(log.item_ids), dtype=np.int32)
        by_id[pc.sort_indices(log.item_ids).to_numpy()] = np.arange(len(log.item_ids), dtype=np.int32)
        items = lookup(by_id, inter.item)
        counted_items = np.zeros(len(log.item_ids) + 1, dtype=np.int64)
        counted_items[1:] = code_counts(items, len(log.item_ids))
        n = len(inter.user)
        return Source(
            path=path,
            kind="raw",
            offsets=csr_offsets(counts[counts > 0]),
            items=items,
            timestamps=inter.time,
            ratings=inter.rating,
            num_items=int(np.count_nonzero(counted_items)),
            time_unit=log.time_unit,
            rows={"read": log.num_rows, "kept": n, "removed": log.num_rows - n},
            steps=steps,
            splits=None,
            counted_items=counted_items,
            user=inter.user,
        )


def _open_train(path: Path) -> Source:
    """The training split of a built folder as sequences: list columns ``items`` and ``timestamps``."""
    meta = json.loads((path.parent / "meta.json").read_text(encoding="utf-8"))
    table = pq.read_table(path)
    if "items" not in table.column_names or "timestamps" not in table.column_names:
        msg = f"{str(path)!r} has no items/timestamps list columns; rebuild the folder with seqprep build"
        raise InputError(msg)
    offsets, items = _flat(table["items"])
    _, timestamps = _flat(table["timestamps"])
    ratings = _flat(table["ratings"])[1] if "ratings" in table.column_names else None
    n = len(items)
    return Source(
        path=str(path),
        kind="split",
        offsets=offsets,
        items=items,
        timestamps=timestamps,
        ratings=ratings,
        num_items=int(np.count_nonzero(np.bincount(items)[1:])) if n else 0,
        time_unit=meta.get("timestamp", {}).get("unit", "s"),
        rows={"read": n, "kept": n, "removed": 0},
        steps=[],
        splits=None,
    )


def split_sizes(folder: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """Sizes of ``train`` / ``valid`` / ``test`` Parquet files of a built folder, or None without splits.

    ``train`` has a list column ``items`` (interactions = their total length); ``valid`` / ``test``
    have one ``target`` per row (interactions = targets). ``rule`` is meta.json's ``split`` as is.
    """
    files = {name: folder / f"{name}.parquet" for name in SPLITS}
    if "split" not in meta and not any(f.is_file() for f in files.values()):
        return None
    out: dict[str, Any] = {"rule": meta.get("split")}
    for name, f in files.items():
        if not f.is_file():
            out[name] = None
            continue
        pf = pq.ParquetFile(f)
        users = pf.metadata.num_rows
        names = pf.schema_arrow.names
        if "items" in names:
            col = pf.read(columns=["items"])["items"]
            interactions = int(pc.sum(pc.list_value_length(col)).as_py() or 0)
        elif "target" in names:
            col = pf.read(columns=["target"])["target"]
            interactions = users - col.null_count
        else:
            interactions = users
        out[name] = {"users": users, "interactions": interactions}
    return out


def _percentiles(lengths: np.ndarray) -> dict[str, float | int]:
    """min, p10, p25, median, mean, p75, p90, p99, max (percentiles: numpy's linear interpolation)."""
    if len(lengths) == 0:
        lengths = np.zeros(1, dtype=np.int64)  # all zeros, same keys
    ps = {_pname(q): float(v) for q, v in zip(PERCENTILES, np.percentile(lengths, PERCENTILES))}
    out: dict[str, float | int] = {"min": int(lengths.min())}
    for name, value in ps.items():
        if name == "p75":
            out["mean"] = float(lengths.mean())
        out[name] = value
    out["max"] = int(lengths.max())
    return out


def _pname(q: int) -> str:
    return "median" if q == 50 else f"p{q}"


_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def calendar_unit(unit: str, first: float, last: float) -> str:
    """The unit used to read timestamps as dates: the recorded one, or for bare numbers ('epoch') the
    one their magnitude suggests (below 1e11: seconds, 1e14: ms, 1e17: us, else ns)."""
    if unit in _PER_SECOND:
        return unit
    top = max(abs(first), abs(last))
    return "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"


def _epoch_to_iso(value: float, unit: str) -> str:
    """UTC date-time of an epoch value, to the second."""
    return str(np.datetime64(int(np.floor(value / _PER_SECOND[unit])), "s")) + "Z"


def _time_summary(ts: np.ndarray, unit: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "unit": unit,
        "calendar_unit": None,
        "first": None,
        "last": None,
        "first_utc": None,
        "last_utc": None,
        "span_days": None,
        "months": 0,
        "per_month": None,
    }
    if len(ts) == 0:
        return out
    first, last = ts.min().item(), ts.max().item()
    out["first"], out["last"] = first, last
    cal = calendar_unit(unit, first, last)
    try:
        m0, counts = month_counts(ts, cal)
        first_utc, last_utc = _epoch_to_iso(first, cal), _epoch_to_iso(last, cal)
    except (ValueError, OverflowError):  # not epoch times: keep the raw first/last only
        return out
    busiest = int(np.argmax(counts))
    out.update(
        calendar_unit=cal,
        first_utc=first_utc,
        last_utc=last_utc,
        span_days=(last - first) / (86400 * _PER_SECOND[cal]),
        months=len(counts),
        per_month={
            "mean": float(counts.mean()),
            "median": float(np.median(counts)),
            "min": int(counts.min()),
            "max": int(counts.max()),
            "busiest": str(np.datetime64(m0 + busiest, "M")),
            "first_month": str(np.datetime64(m0, "M")),
            "counts": counts.tolist(),
        },
    )
    return out


def _short(v: Any) -> float:
    """A float32 rating as the shortest decimal that reads back to it (0.1, not 0.10000000149)."""
    return float(str(v))


def _rating_summary(r: np.ndarray | None) -> dict[str, Any] | None:
    if r is None:
        return None
    # hashing in Arrow (no GIL: runs beside the other counts), then the few distinct values tidied:
    # every NaN is missing, and -0.0 is 0.0
    vc = pc.value_counts(pa.array(r))
    values = vc.field("values").to_numpy(zero_copy_only=False)
    counts = vc.field("counts").to_numpy(zero_copy_only=False).astype(np.int64)
    missing = 0
    if np.issubdtype(values.dtype, np.floating):
        nan = np.isnan(values)
        missing = int(counts[nan].sum())
        values, counts = values[~nan] + values.dtype.type(0), counts[~nan]
    values, where = np.unique(values, return_inverse=True)
    counts = np.bincount(where.reshape(-1), weights=counts, minlength=len(values)).astype(np.int64)
    total = int(counts.sum())
    out: dict[str, Any] = {
        "missing": missing,
        "distinct": int(len(values)),
        "min": _short(values[0]) if len(values) else None,
        # from the value counts: the same float whatever the order of the rows
        "mean": float((values.astype(np.float64) * counts).sum() / total) if total else None,
        "max": _short(values[-1]) if len(values) else None,
        "counts": None,
    }
    if len(values) <= MAX_RATING_VALUES:
        out["counts"] = [{"value": _short(v), "count": int(c)} for v, c in zip(values, counts)]
    return out


def summarize(src: Source, *, per_octave: int = 2) -> dict[str, Any]:
    """Every number of ``seqprep stats`` for one source, as a JSON-ready dict (see README for the schema)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-stats") as pool:
        # the time and rating summaries run beside the rest (numpy and Arrow release the GIL)
        time_summary = pool.submit(_time_summary, src.timestamps, src.time_unit)
        rating_summary = pool.submit(_rating_summary, src.ratings)
        return _summarize(src, per_octave, time_summary.result, rating_summary.result)


def _summarize(
    src: Source, per_octave: int, time_summary: Callable[[], dict[str, Any]], rating_summary: Callable[[], Any]
) -> dict[str, Any]:
    lengths = src.lengths
    users = len(lengths)
    n = int(src.offsets[-1]) if len(src.offsets) else 0
    counts = src.item_counts
    edges, hist = log_histogram(lengths, per_octave)
    k1, s1 = top_share(counts, 0.01)
    k10, s10 = top_share(counts, 0.10)
    user = src.row_users()
    threads = sort_threads()
    # neither count depends on the row order: raw logs are counted in file order (often grouped by
    # user with items in order, where the pair sort is short)
    parts = user_parts(user, threads=threads)  # the user ranges both counts walk
    repeated, identical = duplicate_counts(user, src.items, src.timestamps, src.ratings, threads=threads, parts=parts)
    if src.user is None:  # CSR rows: already in time order
        consecutive, in_ties, groups = ordered_counts(user, src.items, src.timestamps, threads=threads)
    elif repeated == 0:  # a consecutive repeat repeats a pair: none here, and ties need no permutation
        consecutive = 0
        in_ties, groups = tie_counts(user, src.timestamps, threads=threads, parts=parts)
    else:  # rows in file order: take them in (user, time) order, as build does
        order = time_order(user, src.timestamps, threads=threads)
        consecutive, in_ties, groups = ordered_counts(user, src.items, src.timestamps, order, threads=threads)
        del order
    del user
    rare = int((counts < RARE_ITEM).sum())
    return {
        "path": src.path,
        "kind": src.kind,
        "rows": {k: int(src.rows[k]) for k in ("read", "kept", "removed")},
        "users": users,
        "items": int(src.num_items),
        "interactions": n,
        "density": (n / (users * src.num_items)) if users and src.num_items else 0.0,
        "sequence_length": _percentiles(lengths),
        "length_histogram": {"edges": edges.tolist(), "counts": hist.tolist()},
        "popularity": {
            "top_1pct_items": k1,
            "top_1pct_share": s1,
            "top_10pct_items": k10,
            "top_10pct_share": s10,
            "gini": gini(counts),
            "items_below_5": rare,
            "items_below_5_share": rare / len(counts) if len(counts) else 0.0,
        },
        "time": time_summary(),
        "duplicates": {
            "identical_rows": identical,
            "repeated_pairs": repeated,
            "consecutive_repeats": consecutive,
        },
        "ties": {"interactions": in_ties, "groups": groups, "share": (in_ties / n) if n else 0.0},
        "ratings": rating_summary(),
        "steps": src.steps,
        "splits": src.splits,
    }


def stats_report(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The one JSON document of ``seqprep stats --json``: a schema version and one entry per PATH."""
    return {"schema_version": SCHEMA_VERSION, "seqprep_version": __version__, "datasets": summaries}


def describe(
    paths: str | Path | list[str | Path] | tuple[str | Path, ...],
    *,
    plot: str | Path | None = None,
    stdin: BinaryIO | None = None,
    **read_options: Any,
) -> dict[str, Any]:
    """The Python face of ``seqprep stats``: the ``--json`` document for ``paths``, and with ``plot``
    the three-panel figure saved there (needs ``seqprep[plot]``; checked before anything is read)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    names = [str(p) for p in paths]
    if names.count("-") > 1:
        msg = "stdin (-) can be read only once; pass - a single time"
        raise InputError(msg)
    if plot is not None:
        from .plot import check_plot_path, require_matplotlib

        require_matplotlib()
        check_plot_path(str(plot))
    sources = [open_source(p, stdin=stdin, **read_options) for p in names]
    summaries = [summarize(src) for src in sources]
    if plot is not None:
        from .plot import plot_stats

        plot_stats(sources, summaries, plot)
    return stats_report(summaries)


# --------------------------------------------------------------------------------------------------
# Human output


def _int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _items(k: int) -> str:
    return f"{k:,} item" + ("" if k == 1 else "s")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) < 1e6 else f"{x:,.0f}"


def _flat_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True)
    return _int(v)


def _step_rows(steps: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(step number, label, value) rows for the per-step filtering report, whatever keys a step has."""
    rows: list[tuple[int, str, str]] = []
    for k, step in enumerate(steps, 1):
        name = str(step.get("step", f"step {k}"))
        before, removed, after = step.get("rows_before"), step.get("rows_removed"), step.get("rows_after")
        rows.append((k, f"{k}. {name}", f"{_int(before)} -> {_int(after)} rows (-{_int(removed)})"))
        for key, value in step.items():
            if key in ("step", "rows_before", "rows_removed", "rows_after"):
                continue
            if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
                for j, item in enumerate(value, 1):  # e.g. k-core rounds: one row each
                    rows.append((k, f"   {key} {j}", ", ".join(f"{a} {_flat_value(b)}" for a, b in item.items())))
            else:
                rows.append((k, f"   {key}", _flat_value(value)))
    return rows


class _Rows:
    """Ordered (section, label) -> value cells of one column; a section header has label ''."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], str] = {}
        self.section = ""

    def head(self, section: str) -> None:
        self.section = section
        self.cells[(section, "")] = ""

    def add(self, label: str, value: str) -> None:
        self.cells[(self.section, label)] = value


def _rows_for(s: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(section, label) -> value for one summary, in display order."""
    sl, pop, t, d, ties = s["sequence_length"], s["popularity"], s["time"], s["duplicates"], s["ties"]
    r = _Rows()
    r.add("kind", {"raw": "raw log", "built": "built folder", "split": "training split"}[s["kind"]])
    r.add("rows read / kept", f"{_int(s['rows']['read'])} / {_int(s['rows']['kept'])}")
    r.add("users", _int(s["users"]))
    r.add("items", _int(s["items"]))
    r.add("interactions", _int(s["interactions"]))
    r.add("density", f"{100 * s['density']:.4f}%")
    r.head("sequence length")
    for key in ("min", "p10", "p25", "median", "mean", "p75", "p90", "p99", "max"):
        v = sl[key]
        r.add(key, _int(v) if isinstance(v, int) else f"{v:,.1f}")
    r.head("item popularity")
    r.add("top 1% of items", f"{_pct(pop['top_1pct_share'])} ({_items(pop['top_1pct_items'])})")
    r.add("top 10% of items", f"{_pct(pop['top_10pct_share'])} ({_items(pop['top_10pct_items'])})")
    r.add("gini", f"{pop['gini']:.3f}")
    r.add(f"items < {RARE_ITEM} interactions", f"{_int(pop['items_below_5'])} ({_pct(pop['items_below_5_share'])})")
    r.head("time (UTC)")
    r.add("first", t["first_utc"] or _flat_value(t["first"]))
    r.add("last", t["last_utc"] or _flat_value(t["last"]))
    pm = t["per_month"]
    if pm is not None:
        r.add("span", f"{t['span_days']:,.1f} days")
        r.add("months", _int(t["months"]))
        r.add("per month mean / median", f"{_num(pm['mean'])} / {_num(pm['median'])}")
        r.add("busiest month", f"{pm['busiest']} ({_int(pm['max'])})")
    r.head("duplicates")
    r.add("identical rows", _int(d["identical_rows"]))
    r.add("repeated user-item pairs", _int(d["repeated_pairs"]))
    r.add("consecutive repeats", _int(d["consecutive_repeats"]))
    r.head("ties (same user, same timestamp)")
    r.add("interactions in ties", f"{_int(ties['interactions'])} ({_pct(ties['share'])})")
    r.add("tie groups", _int(ties["groups"]))
    rt = s["ratings"]
    r.head("ratings")
    if rt is None:
        r.add("(none)", "-")
    else:
        r.add("mean", f"{rt['mean']:.3f}" if rt["mean"] is not None else "-")
        if rt["missing"]:
            r.add("missing", _int(rt["missing"]))
        if rt["counts"] is None:
            r.add("distinct values", _int(rt["distinct"]))
        else:
            total = max(1, sum(c["count"] for c in rt["counts"]))
            for c in rt["counts"]:
                r.add(f"{c['value']:g}", f"{_int(c['count'])} ({_pct(c['count'] / total)})")
    r.head("filtering steps")
    for k, label, value in _step_rows(s["steps"]):
        r.section = f"filtering steps/{k}"  # keys of one step never merge with another step's
        r.add(label, value)
    if s["splits"] is not None:
        r.head("splits")
        rule = s["splits"].get("rule")
        if isinstance(rule, dict):
            for key, value in rule.items():
                if key != "sizes":  # shown below, one row per part
                    r.add(key, _flat_value(value))
        for name in SPLITS:
            part = s["splits"].get(name)
            if part is not None:
                r.add(f"{name} users / interactions", f"{_int(part['users'])} / {_int(part['interactions'])}")
    return r.cells


def _bar(count: int, top: int, width: int) -> str:
    """A horizontal bar of ``count / top * width`` cells in eighth-block characters."""
    if top <= 0 or count <= 0:
        return ""
    eighths = max(1, round(8 * width * count / top))
    full, rest = divmod(eighths, 8)
    return "█" * full + ("" if rest == 0 else "▏▎▍▌▋▊▉"[rest - 1])


def histogram_lines(s: dict[str, Any], width: int = 40) -> list[str]:
    """The sequence-length histogram of one summary, one line per log-spaced bin (users per bin)."""
    edges, counts = s["length_histogram"]["edges"], s["length_histogram"]["counts"]
    if not counts:
        return []
    labels = [f"{a:,}" if b - a == 1 else f"{a:,}-{b - 1:,}" for a, b in zip(edges[:-1], edges[1:])]
    lw = max(len(x) for x in labels)
    top = max(counts)
    cw = len(f"{top:,}")
    return [f"  {lab:>{lw}} │{_bar(c, top, width):<{width}} {c:>{cw},}" for lab, c in zip(labels, counts)]


def format_report(summaries: list[dict[str, Any]], style: Callable[[str], str] = str) -> str:
    """Several summaries side by side (a column per path), then each one's length histogram.

    ``style`` decorates section headers (the CLI passes bold; identity by default: no ANSI codes).
    """
    columns = [_rows_for(s) for s in summaries]
    keys: list[tuple[str, str]] = []
    for col in columns:  # merge: a key first seen in a later column goes right after its predecessor
        at = 0
        for key in col:
            if key in keys:
                at = keys.index(key) + 1
            else:
                keys.insert(at, key)
                at += 1
    indent = "  "
    lw = max(len(indent + label) if section else len(label) for section, label in keys) + 2
    heads = [s["path"] for s in summaries]
    widths = [max(len(h), *(len(v) for v in col.values())) for h, col in zip(heads, columns)]
    lines = [" " * lw + "  ".join(f"{h:>{w}}" for h, w in zip(heads, widths))]
    for section, label in keys:
        if not label:
            lines.append(style(section))
            continue
        cells = [col.get((section, label), "-") for col in columns]
        text = indent + label if section else label
        lines.append(f"{text:<{lw}}" + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    for s in summaries:
        lines.append("")
        lines.append(style(f"sequence length histogram: {s['path']} (users per length bin)"))
        lines.extend(histogram_lines(s))
    return "\n".join(lines)
