"""``seqprep verify OUT``: re-check a built folder against its meta.json.

What is checked (every check is vectorised; nothing loops over users or rows):

- every file listed in ``meta["outputs"]["files"]`` exists with the recorded size and sha256, and
  no other file sits in the folder (new output kinds are covered as soon as meta lists them);
- the Parquet files carry the documented schemas (:data:`SCHEMAS`);
- the vocabularies: item indices exactly 1..N, user indices exactly 0..U-1, distinct ids, counts
  that add up to the interactions, ``padding_idx`` 0 and ``num_embeddings`` N + 1;
- each sequence file present (``sequences.parquet``, ``sequences.npz``): offsets start at 0, never
  decrease and end at the number of interactions; lengths equal the user counts; item indices lie
  in 1..N (padding 0 never inside a sequence); each user's timestamps never decrease; per-item
  counts equal the vocabulary counts; meta's counts, tie counts and length summary match; the two
  layouts agree when both are present;
- the row accounting: rows read = rows kept + rows removed, and the steps' removed rows add up;
- ``--split loo``, ``loo:recbole`` and ``ratio:...`` (without ``--truncate``, ``--vocab-from-train``
  or ``--target-events``): the split files hold exactly what the rule gives on the written
  sequences: the training items and users, and each valid/test row's user, target and history;
- the features of meta.json ``features``: each sequence file holds one list per feature aligned with
  the items (``<name>`` and, for tokens, ``<name>_offsets`` in NPZ), indices within 0..K (K+1 with an
  ``oov_idx``), ``features/<name>.parquet`` exactly 1..K with distinct values, K and
  ``num_embeddings`` as meta.json says, counts equal to the occurrences (at most with
  ``--truncate``, at least with ``--vocab-from-train``), and the missing values as counted;
- item / user attributes (``--item-table``, ``--user-table``): ``item_features.*`` has one row per
  item index 0..num_embeddings-1 with row 0 the padding row (and the ``oov_idx`` row empty),
  ``user_features.*`` one per user; each attribute has its documented type, indices within its
  vocabulary, the missing count meta.json says; each vocabulary file ``features/<name>.parquet`` is
  exact (indices 1..K, distinct values, counts equal to the occurrences); the two layouts agree.

:func:`verify` returns a :class:`VerifyReport` whose ``problems`` are one line each (the CLI prints
them and exits with 1); it never raises on a damaged folder.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

# Imported up front, as in seqprep.pipeline: pyarrow imports pandas lazily mid-run, and a Ctrl-C landing
# in that import leaves a half-initialised module (an AttributeError traceback, not a clean stop).
import pandas  # noqa: F401
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .config import SplitOptions
from .dataset import flat_list, read_sequences_table
from .errors import ConfigError, InputError
from .io.sources import sha256_file
from .kernels import tie_stats
from .kernels.splits import (
    TEST,
    TRAIN,
    VALID,
    eval_positions,
    gather_ranges,
    held_out_positions,
    loo_parts,
    ratio_parts,
    row_of,
    tail_ranges,
    time_parts,
    time_quantile,
    users_parts,
)

__all__ = ["SCHEMAS", "VerifyReport", "verify"]

_FIX = "rebuild it with seqprep build"
#: What reading a damaged file may raise (UnicodeDecodeError, from a mangled column name, is a ValueError).
#: A damaged zip's flag bits make zipfile raise NotImplementedError (an unknown compression) or
#: RuntimeError (an "encrypted" member).
_READ_ERRORS = (
    pa.ArrowException,
    OSError,
    EOFError,
    KeyError,
    ValueError,
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
    InputError,  # a sequences/ folder without parts (seqprep.dataset names it)
)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`: ``ok`` when ``problems`` is empty."""

    path: str
    problems: tuple[str, ...]
    checked: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "problems": list(self.problems), "checked": self.checked}


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        self.items.append(text)


def verify(path: str | Path) -> VerifyReport:
    """Re-check the built folder ``path`` against its meta.json; see the module docstring.

    >>> verify("no/such/folder").problems
    ("'no/such/folder' is not a folder; pass the -o folder of a build",)
    """
    p = Path(path)
    problems = _Problems()
    checked: dict[str, Any] = {}
    if not p.is_dir():
        return VerifyReport(str(path), (f"{str(path)!r} is not a folder; pass the -o folder of a build",))
    try:
        meta = json.loads((p / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return VerifyReport(
            str(path), ("no meta.json; this is not a seqprep output folder - pass the -o folder of a build",)
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return VerifyReport(str(path), (f"meta.json is unreadable ({_one_line(e)}); {_FIX}",))
    if not isinstance(meta, dict):
        return VerifyReport(str(path), (f"meta.json does not hold a JSON object; {_FIX}",))

    try:
        _check_all(p, meta, problems, checked)
    except (TypeError, AttributeError) as e:  # a hand-edited meta.json with values of the wrong kind
        problems.add(f"meta.json has an unexpected structure ({_one_line(e)}); {_FIX}")
    return VerifyReport(str(path), tuple(dict.fromkeys(problems.items)), checked)


def _check_all(p: Path, meta: dict[str, Any], problems: _Problems, checked: dict[str, Any]) -> None:
    checked["files"] = _check_files(p, meta, problems)
    features = _feature_kinds(meta, problems)
    _check_schemas(p, problems, features)
    rules = _Rules.of(meta)
    _check_oov_field(meta, problems)
    vocab = _check_vocabularies(p, meta, rules, problems)
    checked.update(users=vocab[1], items=vocab[0])
    feature_vocabs = _check_feature_vocabularies(p, meta, features, problems)
    layouts = {}
    for name, loader in (("sequences.parquet", _load_parquet), ("sequences.npz", _load_npz)):
        if (p / name).is_file() or (name == "sequences.parquet" and (p / "sequences").is_dir()):
            try:
                layouts[name] = loader(p / name, features)
            except _READ_ERRORS as e:
                problems.add(f"{name} is unreadable ({_one_line(e)}); {_FIX}")
    if not layouts and not any("is unreadable" in x for x in problems.items):
        problems.add(f"neither sequences.parquet nor sequences.npz is present; {_FIX}")
    for name, arrays in layouts.items():
        if _check_sequences(name, arrays, meta, rules, vocab, problems):
            _check_features(name, arrays, rules, feature_vocabs, problems)
    if len(layouts) == 2:
        _check_same(layouts, problems)
    checked["sequence_files"] = sorted(layouts)
    if features:
        checked["features"] = sorted(features)
    checked["interactions"] = meta.get("num_interactions")
    split = _check_split(p, meta, layouts, problems)
    if split is not None:
        checked["split"] = split
    _check_rows(meta, problems)
    checked["attributes"] = _check_attributes(p, meta, problems)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def _check_files(p: Path, meta: dict[str, Any], problems: _Problems) -> int:
    files = (meta.get("outputs") or {}).get("files")
    if not isinstance(files, dict) or not files:
        problems.add(f"meta.json lists no output files (outputs.files); {_FIX}")
        return 0
    for name, info in sorted(files.items()):
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            problems.add(f"meta.json lists {name!r}, which is not a path inside the folder; {_FIX}")
            continue
        f = p / rel
        if not f.is_file():
            problems.add(f"{name} is listed in meta.json but missing; {_FIX}")
            continue
        size = f.stat().st_size
        if isinstance(info, dict) and info.get("bytes") is not None and size != info["bytes"]:
            problems.add(f"{name} has {size} bytes, meta.json says {info['bytes']} (changed or truncated); {_FIX}")
        elif not isinstance(info, dict) or sha256_file(f) != info.get("sha256"):
            problems.add(f"{name}: sha256 differs from meta.json (the file changed after the build); {_FIX}")
    listed = {str(PurePosixPath(n)) for n in files} | {"meta.json"}
    present = {f.relative_to(p).as_posix() for f in p.rglob("*") if f.is_file()}
    for extra in sorted(present - listed):
        problems.add(f"{extra} is not listed in meta.json; remove it or rebuild the folder")
    return len(files)


#: The Arrow schemas docs/outputs.md documents, per Parquet file: column -> accepted types (as pyarrow prints them).
_IDS = ("int64", "string")
SCHEMAS: dict[str, dict[str, tuple[str, ...]]] = {
    "sequences.parquet": {
        "user_idx": ("int32",),
        "user_id": _IDS,
        "items": ("list<element: int32>", "large_list<element: int32>"),
        "timestamps": (
            "list<element: int64>",
            "list<element: double>",
            "large_list<element: int64>",
            "large_list<element: double>",
        ),
        "ratings": ("list<element: float>", "large_list<element: float>"),
        "session_ids": ("list<element: int32>", "large_list<element: int32>"),
    },
    "items.parquet": {"item_idx": ("int32",), "item_id": _IDS, "count": ("int64",)},
    "users.parquet": {"user_idx": ("int32",), "user_id": _IDS, "count": ("int64",)},
    "sessions.parquet": {"user_idx": ("int32",), "session_id": _IDS, "user_id": _IDS},  # --session-col
}
_OPTIONAL = {"ratings", "session_ids"}


#: A feature's list column in sequences.parquet, per kind.
FEATURE_SCHEMAS: dict[str, tuple[str, ...]] = {
    "cat": ("list<element: int32>", "large_list<element: int32>"),
    "num": ("list<element: float>", "large_list<element: float>"),
    "tokens": ("list<element: list<element: int32>>", "large_list<element: list<element: int32>>"),
}


def _feature_kinds(meta: dict[str, Any], problems: _Problems) -> dict[str, str]:
    """name -> kind of each feature in meta.json ``features`` that travels with the items (a bad kind
    is a problem); the item and user attributes are checked by :func:`_check_attributes`."""
    out = {}
    for name, entry in (meta.get("features") or {}).items():
        if isinstance(entry, dict) and entry.get("source") in ("item", "user"):
            continue
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in FEATURE_SCHEMAS:
            problems.add(f"meta.json features.{name} has kind {kind!r}, not cat, num or tokens; {_FIX}")
            continue
        out[name] = kind
    return out


def _check_schemas(p: Path, problems: _Problems, features: dict[str, str] | None = None) -> None:
    """The Parquet files carry exactly the documented columns and types (docs/outputs.md)."""
    for name, columns in SCHEMAS.items():
        files = [p / name]
        if name == "sequences.parquet" and not (p / name).is_file():  # the Dask engine's parts layout
            files = sorted((p / "sequences").glob("part-*.parquet"))
        extra = {n: FEATURE_SCHEMAS[k] for n, k in (features or {}).items()} if name == "sequences.parquet" else {}
        for f in files:
            _check_schema(f, str(f.relative_to(p)), columns, problems, extra)


def _check_schema(
    path: Path,
    name: str,
    columns: dict[str, tuple[str, ...]],
    problems: _Problems,
    features: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """``columns`` (those of :data:`_OPTIONAL` when present), then the ``features`` in any order."""
    if path.is_file():
        try:
            schema = pq.read_schema(path)
        except _READ_ERRORS as e:
            problems.add(f"{name} is unreadable ({_one_line(e)}); {_FIX}")
            return
        want = [c for c in columns if c in schema.names or c not in _OPTIONAL]
        features = features or {}
        tail = schema.names[len(want) :]
        if features and schema.names[: len(want)] == want and sorted(tail) == sorted(features):
            want = want + tail
            columns = {**columns, **features}
        if schema.names != want:
            problems.add(f"{name} has columns {', '.join(schema.names)}, expected {', '.join(want)}; {_FIX}")
            return
        for col in want:
            typ = str(schema.field(col).type)
            if typ not in columns[col]:
                problems.add(f"{name}: column {col} is {typ}, expected {' or '.join(columns[col])}; {_FIX}")


def _int(meta: dict[str, Any], key: str) -> int | None:
    v = meta.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class _Rules:
    """What a folder's counts mean, from its meta.json (see docs/outputs.md):

    - ``reused``: ``--vocab-from``: an id of the reused vocabulary may have no interaction (count 0),
      and ``oov_idx`` (N+1) may stand in the sequences for unknown items;
    - ``oov_rows``: the interactions at ``oov_idx`` (not counted in items.parquet): meta.json
      ``vocab_reuse.oov_interactions``; in a folder written before that field, ``unseen_rows`` when
      no step after ``unknown_items`` removed a row (then it is exact), else None: not known, and
      the comparisons that need it are skipped (``oov_what`` names the source in messages);
    - ``max_len``: ``--truncate``: the sequences hold each user's ``max_len`` most recent
      interactions, while every count (and meta's ties and lengths) describes the whole sequences;
    - ``train_counts``: ``--vocab-from-train``: item counts are the interactions of the training
      part, so they add up to the training interactions, and no item occurs less often than that.
    """

    reused: bool
    oov_idx: int | None
    oov_rows: int | None  # interactions of unknown items, encoded as oov_idx (no count in items.parquet)
    oov_what: str
    max_len: int | None
    train_counts: int | None

    @classmethod
    def of(cls, meta: dict[str, Any]) -> _Rules:
        trunc = meta.get("truncation") or {}
        split = meta.get("split") or {}
        train = ((split.get("sizes") or {}).get("train") or {}).get("interactions")
        oov_idx = _int(meta, "oov_idx")
        oov_rows, oov_what = (0, "") if oov_idx is None else _oov_rows(meta)
        return cls(
            reused=meta.get("vocab_reuse") is not None,
            oov_idx=oov_idx,
            oov_rows=oov_rows,
            oov_what=oov_what,
            max_len=trunc.get("max_len") if trunc.get("truncate_sequences") else None,
            train_counts=train if split.get("vocab_from_train") else None,
        )


def _oov_rows(meta: dict[str, Any]) -> tuple[int | None, str]:
    """(interactions at ``oov_idx`` as meta.json states them or None, where that figure comes from)."""
    reuse = meta.get("vocab_reuse") or {}
    if "oov_interactions" in reuse:
        return _int(reuse, "oov_interactions"), "vocab_reuse.oov_interactions"
    # written before oov_interactions: unseen_rows counts the rows at the unknown_items step, exact
    # only when no later step removed a row
    steps = [s for s in meta.get("steps") or [] if isinstance(s, dict)]
    at = next((k for k, s in enumerate(steps) if s.get("step") == "unknown_items"), None)
    if at is None or any(s.get("rows_removed") for s in steps[at + 1 :]):
        return None, ""
    return _int(reuse, "unseen_rows"), "vocab_reuse.unseen_rows"


def _check_vocabularies(
    p: Path, meta: dict[str, Any], rules: _Rules, problems: _Problems
) -> tuple[int | None, int | None, np.ndarray | None, np.ndarray | None, pa.Array | None]:
    out: dict[str, tuple[int | None, np.ndarray | None, pa.Array | None]] = {}
    for prefix, start, key in (("item", 1, "num_items"), ("user", 0, "num_users")):
        name = f"{prefix}s.parquet"
        try:
            table = pq.read_table(p / name)
            idx = table[f"{prefix}_idx"].to_numpy()
            ids = table[f"{prefix}_id"].combine_chunks()
            counts = table["count"].to_numpy().astype(np.int64)
        except _READ_ERRORS as e:
            problems.add(f"{name} is unreadable ({_one_line(e)}); {_FIX}")
            out[prefix] = (_int(meta, key), None, None)
            continue
        n = len(idx)
        if not np.array_equal(idx, np.arange(start, start + n)):
            problems.add(f"{name}: {prefix}_idx is not exactly {start}..{start + n - 1}; {_FIX}")
        if _int(meta, key) != n:
            problems.add(f"{name} has {n} {prefix}s, meta.json {key} says {meta.get(key)}; {_FIX}")
        if ids.null_count or pc.count_distinct(ids).as_py() != n:
            problems.add(f"{name}: {prefix}_id holds repeated or missing ids; {_FIX}")
        least = 0 if rules.reused else 1  # a reused id may be absent from this log
        if n and counts.min() < least:
            problems.add(f"{name}: some {prefix} has a count below {least}; {_FIX}")
        if prefix == "item" and rules.train_counts is not None:
            total, what = rules.train_counts, "split.sizes.train.interactions"
        else:
            total, what = _int(meta, "num_interactions"), "num_interactions"
            if prefix == "item" and total is not None and rules.oov_idx is not None:
                oov = rules.oov_rows  # None: not known (an older folder whose filters removed oov rows)
                total, what = (None if oov is None else total - oov), f"num_interactions - {rules.oov_what}"
        if total is not None and int(counts.sum()) != total:
            problems.add(f"{name}: counts add up to {int(counts.sum())}, meta.json {what} says {total}; {_FIX}")
        out[prefix] = (n, counts, ids)
    _check_embedding_size(meta, out["item"][0], rules, problems)
    return out["item"][0], out["user"][0], out["item"][1], out["user"][1], out["user"][2]


def _check_embedding_size(meta: dict[str, Any], n_items: int | None, rules: _Rules, problems: _Problems) -> None:
    if meta.get("padding_idx") != 0:
        problems.add(f"meta.json padding_idx is {meta.get('padding_idx')!r}, not 0; {_FIX}")
    if n_items is None:
        return
    if rules.oov_idx is not None and rules.oov_idx != n_items + 1:
        problems.add(f"meta.json oov_idx is {rules.oov_idx}, not num_items + 1 = {n_items + 1}; {_FIX}")
    want = n_items + 1 + (rules.oov_idx is not None)
    if meta.get("num_embeddings") != want:
        rule = "num_items + 2 (padding and oov)" if rules.oov_idx is not None else "num_items + 1"
        problems.add(f"meta.json num_embeddings is {meta.get('num_embeddings')!r}, not {rule} = {want}; {_FIX}")


def _load_parquet(path: Path, features: dict[str, str] | None = None) -> dict[str, Any]:
    """sequences.parquet, or (when absent) the Dask engine's ``sequences/part-*.parquet`` in order."""
    table = read_sequences_table(path.parent)
    offsets, items = flat_list(table["items"], nulls=False)
    t_offsets, timestamps = flat_list(table["timestamps"], nulls=False)
    arrays: dict[str, Any] = {
        "offsets": offsets,
        "items": items,
        "timestamps": timestamps,
        "user_idx": table["user_idx"].to_numpy(),
        "user_id": table["user_id"].combine_chunks(),
        "aligned": {"timestamps": np.array_equal(t_offsets, offsets)},
    }
    if "ratings" in table.column_names:
        r_offsets, arrays["ratings"] = flat_list(table["ratings"], nulls=False)
        arrays["aligned"]["ratings"] = np.array_equal(r_offsets, offsets)
    arrays["features"] = {}
    for name, kind in (features or {}).items():
        if name not in table.column_names:
            continue  # the schema check reports it
        f_offsets, values = flat_list(table[name], nulls=False) if kind != "tokens" else _token_lists(table[name])
        arrays["aligned"][name] = np.array_equal(f_offsets, offsets)
        arrays["features"][name] = values
    return arrays


def _token_lists(col: pa.ChunkedArray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A list<list<int32>> column -> (per-user offsets, (per-interaction token offsets, token indices))."""
    outer = col.combine_chunks()
    if outer.null_count:
        msg = f"{outer.null_count} null lists"
        raise ValueError(msg)
    o = np.asarray(outer.offsets, dtype=np.int64)
    inner = outer.values.slice(int(o[0]), int(o[-1] - o[0]))
    if inner.null_count:
        msg = f"{inner.null_count} null token lists"
        raise ValueError(msg)
    io = np.asarray(inner.offsets, dtype=np.int64)
    return o - o[0], (io - io[0], inner.values.to_numpy(zero_copy_only=False)[io[0] : io[-1]])


def _load_npz(path: Path, features: dict[str, str] | None = None) -> dict[str, Any]:
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # our handle: closed even on a bad zip
        arrays: dict[str, Any] = {k: z[k] for k in ("offsets", "items", "timestamps", "user_idx")}
        if "ratings" in z.files:
            arrays["ratings"] = z["ratings"]
        arrays["features"] = {}
        arrays["missing_arrays"] = []
        for name, kind in (features or {}).items():
            keys = [name, f"{name}_offsets"] if kind == "tokens" else [name]
            absent = [k for k in keys if k not in z.files]
            if absent:
                arrays["missing_arrays"] += absent
                continue
            arrays["features"][name] = (z[f"{name}_offsets"], z[name]) if kind == "tokens" else z[name]
    arrays["aligned"] = {}
    return arrays


def _check_sequences(
    name: str,
    a: dict[str, Any],
    meta: dict[str, Any],
    rules: _Rules,
    vocab: tuple[int | None, int | None, np.ndarray | None, np.ndarray | None, pa.Array | None],
    problems: _Problems,
) -> bool:
    """The sequences of one layout; False when its CSR frame is broken (nothing more is checked)."""
    n_items, n_users, item_counts, user_counts, user_ids = vocab
    offsets = np.asarray(a["offsets"], dtype=np.int64)
    items = np.asarray(a["items"])
    ts = np.asarray(a["timestamps"])
    if not _check_offsets(name, a, offsets, items, ts, problems):
        return False
    lengths = np.diff(offsets)
    if user_counts is not None and rules.max_len is not None:
        user_counts = np.minimum(user_counts, rules.max_len)  # --truncate: the most recent max_len
    total = _int(meta, "num_interactions") if rules.max_len is None else None
    if total is None and user_counts is not None and rules.max_len is not None:
        total = int(user_counts.sum())
    if total is not None and len(items) != total:
        problems.add(f"{name} holds {len(items)} interactions, meta.json num_interactions says {total}; {_FIX}")
    if n_users is not None and len(lengths) != n_users:
        problems.add(f"{name} has {len(lengths)} users, users.parquet has {n_users}; {_FIX}")
    elif user_counts is not None and not np.array_equal(lengths, user_counts):
        u = int(np.flatnonzero(lengths != user_counts)[0])
        problems.add(
            f"{name}: user {u} has {int(lengths[u])} interactions, users.parquet count says {int(user_counts[u])}; {_FIX}"
        )
    _check_columns(name, a, meta, items, ts, lengths, user_ids, problems)
    if len(items) == 0:
        return True
    _check_items(name, offsets, items, n_items, item_counts, rules, problems)
    if _check_time_order(name, offsets, ts, problems) and rules.max_len is None:
        _check_summary(name, offsets, ts, lengths, meta, problems)  # ties and lengths describe whole sequences
    return True


def _check_offsets(
    name: str, a: dict[str, Any], offsets: np.ndarray, items: np.ndarray, ts: np.ndarray, problems: _Problems
) -> bool:
    """The CSR frame: aligned lists, offsets from 0 that never decrease and end at the items."""
    for col, ok in a["aligned"].items():
        if not ok:
            problems.add(f"{name}: the {col} lists do not have the same lengths as the items lists; {_FIX}")
    if len(offsets) == 0 or offsets[0] != 0:
        problems.add(f"{name}: offsets do not start at 0; {_FIX}")
        return False
    lengths = np.diff(offsets)
    if (lengths < 0).any():
        u = int(np.flatnonzero(lengths < 0)[0])
        problems.add(f"{name}: offsets decrease at user {u}; {_FIX}")
        return False
    if offsets[-1] != len(items) or len(ts) != len(items):
        problems.add(
            f"{name}: offsets end at {int(offsets[-1])} but there are {len(items)} items and {len(ts)} timestamps; {_FIX}"
        )
        return False
    return True


def _check_columns(
    name: str,
    a: dict[str, Any],
    meta: dict[str, Any],
    items: np.ndarray,
    ts: np.ndarray,
    lengths: np.ndarray,
    user_ids: pa.Array | None,
    problems: _Problems,
) -> None:
    """user_idx, user_id, ratings and the timestamps' type."""
    user_idx = np.asarray(a["user_idx"])
    if not np.array_equal(user_idx, np.arange(len(lengths))):
        problems.add(f"{name}: user_idx is not exactly 0..{len(lengths) - 1} in order; {_FIX}")
    if "user_id" in a and user_ids is not None and not a["user_id"].equals(user_ids):
        problems.add(f"{name}: user_id differs from users.parquet; {_FIX}")
    if "ratings" in a and len(a["ratings"]) != len(items):
        problems.add(f"{name}: {len(a['ratings'])} ratings for {len(items)} items; {_FIX}")
    if bool(meta.get("has_ratings")) != ("ratings" in a):
        problems.add(
            f"{name}: ratings {'missing' if meta.get('has_ratings') else 'present'} but meta.json has_ratings is {meta.get('has_ratings')}; {_FIX}"
        )
    want_dtype = (meta.get("timestamp") or {}).get("dtype")
    if want_dtype is not None and str(ts.dtype) != want_dtype:
        problems.add(f"{name}: timestamps are {ts.dtype}, meta.json says {want_dtype}; {_FIX}")


def _check_items(
    name: str,
    offsets: np.ndarray,
    items: np.ndarray,
    n_items: int | None,
    item_counts: np.ndarray | None,
    rules: _Rules,
    problems: _Problems,
) -> None:
    """No padding index inside a sequence, indices in range, occurrences as the counts say."""
    zero = items == 0
    if zero.any():
        k = int(np.flatnonzero(zero)[0])
        u = int(np.searchsorted(offsets, k, side="right") - 1)
        problems.add(f"{name}: padding index 0 inside user {u}'s sequence (position {k - int(offsets[u])}); {_FIX}")
    if n_items is None:
        return
    top = n_items if rules.oov_idx is None else rules.oov_idx
    if items.min() < 0 or items.max() > top:
        problems.add(f"{name}: item indices outside 0..{top} ({'oov_idx' if rules.oov_idx else 'num_items'}); {_FIX}")
        return
    occurrences = np.bincount(items.astype(np.int64), minlength=top + 1)
    if rules.oov_idx is not None and rules.oov_rows is not None:
        _check_oov(name, int(occurrences[rules.oov_idx]), rules, problems)
    if item_counts is None:
        return
    actual = occurrences[1 : n_items + 1]
    if rules.max_len is not None and rules.train_counts is not None:
        return  # training counts of truncated sequences: neither at most nor at least them
    if rules.max_len is not None:  # truncated: at most the counts
        bad, rule = actual > item_counts, "at most "
    elif rules.train_counts is not None:  # training counts: at least them
        bad, rule = actual < item_counts, "at least "
    else:
        bad, rule = actual != item_counts, ""
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        problems.add(
            f"{name}: item {k + 1} occurs {int(actual[k])} times, items.parquet count says {rule}{int(item_counts[k])}; {_FIX}"
        )


def _check_oov(name: str, found: int, rules: _Rules, problems: _Problems) -> None:
    """``oov_idx`` occurs as often as meta.json says (at most that often in truncated sequences)."""
    assert rules.oov_rows is not None
    bad = found > rules.oov_rows if rules.max_len is not None else found != rules.oov_rows
    if bad:
        rule = "at most " if rules.max_len is not None else ""
        problems.add(f"{name}: oov_idx {rules.oov_idx} occurs {found} times, meta.json {rules.oov_what} says {rule}{rules.oov_rows}; {_FIX}")


def _check_oov_field(meta: dict[str, Any], problems: _Problems) -> None:
    """meta.json ``vocab_reuse.oov_interactions``, when present, is a count."""
    reuse = meta.get("vocab_reuse") or {}
    if "oov_interactions" in reuse and (_int(reuse, "oov_interactions") is None or reuse["oov_interactions"] < 0):
        problems.add(f"meta.json vocab_reuse.oov_interactions is {reuse['oov_interactions']!r}, not a count of interactions; {_FIX}")


def _check_time_order(name: str, offsets: np.ndarray, ts: np.ndarray, problems: _Problems) -> bool:
    """Each user's timestamps never decrease."""
    down = ts[1:] < ts[:-1]
    starts = offsets[1:-1]
    down[starts[(starts > 0) & (starts < len(ts))] - 1] = False  # a new user may start earlier
    if down.any():
        k = int(np.flatnonzero(down)[0]) + 1
        u = int(np.searchsorted(offsets, k, side="right") - 1)
        problems.add(f"{name}: user {u}'s timestamps decrease at position {k - int(offsets[u])}; {_FIX}")
        return False
    return True


def _check_summary(
    name: str, offsets: np.ndarray, ts: np.ndarray, lengths: np.ndarray, meta: dict[str, Any], problems: _Problems
) -> None:
    in_ties, groups = tie_stats(offsets, ts)
    want = meta.get("ties") or {}
    if (want.get("interactions"), want.get("groups")) != (in_ties, groups):
        problems.add(f"{name}: {in_ties} interactions in {groups} tie groups, meta.json ties says {want}; {_FIX}")
    sl = meta.get("sequence_length") or {}
    if len(lengths) and (sl.get("min"), sl.get("max")) != (int(lengths.min()), int(lengths.max())):
        problems.add(
            f"{name}: sequence lengths span {int(lengths.min())}..{int(lengths.max())}, "
            f"meta.json sequence_length says {sl.get('min')}..{sl.get('max')}; {_FIX}"
        )


@dataclass(frozen=True)
class _FeatureVocab:
    """What meta.json and ``features/<name>.parquet`` say about one feature (``size`` None: no
    readable vocabulary, or a ``num`` feature)."""

    kind: str
    entry: dict[str, Any]
    size: int | None = None
    counts: np.ndarray | None = None
    oov_idx: int | None = None


def _check_feature_vocabularies(
    p: Path, meta: dict[str, Any], features: dict[str, str], problems: _Problems
) -> dict[str, _FeatureVocab]:
    """Each cat/tokens feature's ``features/<name>.parquet`` against meta.json ``features``."""
    out = {}
    for name, kind in features.items():
        entry = meta["features"][name]
        if kind == "num":
            out[name] = _FeatureVocab(kind, entry)
            continue
        file = f"features/{name}.parquet"
        oov = _int(entry, "oov_idx")
        if entry.get("vocabulary") != file:
            problems.add(f"meta.json features.{name}.vocabulary is {entry.get('vocabulary')!r}, not {file!r}; {_FIX}")
        try:
            table = pq.read_table(p / "features" / f"{name}.parquet")
            idx = table["index"].to_numpy()
            values = table["value"].combine_chunks()
            counts = table["count"].to_numpy().astype(np.int64)
        except _READ_ERRORS as e:
            problems.add(f"{file} is unreadable ({_one_line(e)}); {_FIX}")
            out[name] = _FeatureVocab(kind, entry, oov_idx=oov)
            continue
        k = len(idx)
        if not np.array_equal(idx, np.arange(1, k + 1)):
            problems.add(f"{file}: index is not exactly 1..{k}; {_FIX}")
        if values.null_count or pc.count_distinct(values).as_py() != k:
            problems.add(f"{file}: value holds repeated or missing values; {_FIX}")
        if entry.get("values") != k:
            problems.add(f"{file} has {k} values, meta.json features.{name}.values says {entry.get('values')}; {_FIX}")
        if oov is not None and oov != k + 1:
            problems.add(f"meta.json features.{name}.oov_idx is {oov}, not values + 1 = {k + 1}; {_FIX}")
        want = k + 1 + (oov is not None)
        if entry.get("num_embeddings") != want:
            problems.add(f"meta.json features.{name}.num_embeddings is {entry.get('num_embeddings')!r}, not {want}; {_FIX}")
        if entry.get("padding_idx") != 0:
            problems.add(f"meta.json features.{name}.padding_idx is {entry.get('padding_idx')!r}, not 0; {_FIX}")
        if k and counts.min() < 0:
            problems.add(f"{file}: a count is negative; {_FIX}")
        out[name] = _FeatureVocab(kind, entry, k, counts, oov)
    return out


def _check_features(
    name: str, a: dict[str, Any], rules: _Rules, vocabs: dict[str, _FeatureVocab], problems: _Problems
) -> None:
    """Every feature of one layout: aligned with the items, indices in range, counts and missing
    values as the vocabulary and meta.json say."""
    for key in a.get("missing_arrays", []):
        problems.add(f"{name} has no array {key}, which meta.json features needs; {_FIX}")
    n = len(a["items"])
    for fname, values in a.get("features", {}).items():
        fv = vocabs[fname]
        where = f"{name}: feature {fname}"
        if fv.kind == "tokens":
            offsets, indices = (np.asarray(x) for x in values)
            if len(offsets) != n + 1 or (len(offsets) and (offsets[0] != 0 or offsets[-1] != len(indices))) or (np.diff(offsets) < 0).any():
                problems.add(f"{where}: the token offsets do not frame one list per interaction; {_FIX}")
                continue
            empty = int((np.diff(offsets) == 0).sum())
        else:
            indices = np.asarray(values)
            if len(indices) != n:
                problems.add(f"{where} has {len(indices)} values for {n} items; {_FIX}")
                continue
        if fv.kind == "num":
            _check_num_feature(where, indices, fv, rules, problems)
        else:
            _check_indexed_feature(where, indices, fv, rules, problems, empty if fv.kind == "tokens" else None)


def _check_num_feature(where: str, values: np.ndarray, fv: _FeatureVocab, rules: _Rules, problems: _Problems) -> None:
    if values.dtype != np.float32:
        problems.add(f"{where} is {values.dtype}, expected float32; {_FIX}")
        return
    missing, want = int(np.isnan(values).sum()), _int(fv.entry, "missing")
    if want is not None and (missing > want if rules.max_len is not None else missing != want):
        problems.add(f"{where}: {missing} missing (NaN) values, meta.json features says {want}; {_FIX}")


def _check_indexed_feature(
    where: str, indices: np.ndarray, fv: _FeatureVocab, rules: _Rules, problems: _Problems, empty: int | None
) -> None:
    if indices.dtype != np.int32:
        problems.add(f"{where} is {indices.dtype}, expected int32; {_FIX}")
        return
    if fv.size is None:
        return
    top = fv.size if fv.oov_idx is None else fv.oov_idx
    low = 1 if fv.kind == "tokens" else 0  # 0 (missing) is a cat value; a token list leaves it out
    if len(indices) and (indices.min() < low or indices.max() > top):
        problems.add(f"{where}: indices outside {low}..{top}; {_FIX}")
        return
    actual = np.bincount(indices.astype(np.int64), minlength=top + 1)
    train = fv.entry.get("fit") == "train"
    if fv.counts is not None and len(fv.counts) == fv.size and not (train and rules.max_len is not None):
        got = actual[1 : fv.size + 1]
        if rules.max_len is not None:
            bad, rule = got > fv.counts, "at most "
        elif train:
            bad, rule = got < fv.counts, "at least "
        else:
            bad, rule = got != fv.counts, ""
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            problems.add(f"{where}: value {k + 1} occurs {int(got[k])} times, its vocabulary count says {rule}{int(fv.counts[k])}; {_FIX}")
    if rules.max_len is not None:
        return
    missing, unseen = _int(fv.entry, "missing"), _int(fv.entry, "unseen") or 0
    if fv.oov_idx is not None and int(actual[fv.oov_idx]) != unseen:
        problems.add(f"{where}: oov_idx {fv.oov_idx} occurs {int(actual[fv.oov_idx])} times, meta.json features unseen says {unseen}; {_FIX}")
    if missing is None:
        return
    dropped = unseen if fv.oov_idx is None and fv.entry.get("fit") != "extended" else 0  # unseen values left out
    if empty is None:  # cat: 0 for a missing value, and for an unseen one left out
        want = missing + dropped
        if int(actual[0]) != want:
            problems.add(f"{where}: {int(actual[0])} zeros (missing), meta.json features says {want} (missing + unseen); {_FIX}")
    elif empty < missing or (empty != missing and dropped == 0):
        problems.add(f"{where}: {empty} empty token lists, meta.json features missing says {missing}; {_FIX}")


def _check_same(layouts: dict[str, dict[str, Any]], problems: _Problems) -> None:
    a, b = layouts["sequences.parquet"], layouts["sequences.npz"]
    for key in ("offsets", "items", "timestamps", "user_idx", "ratings"):
        if (key in a) != (key in b) or (
            key in a and not np.array_equal(np.asarray(a[key]), np.asarray(b[key]), equal_nan=key == "ratings")
        ):
            problems.add(f"sequences.parquet and sequences.npz differ in {key}; {_FIX}")
    fa, fb = a.get("features", {}), b.get("features", {})
    for key in sorted(set(fa) & set(fb)):
        x, y = fa[key], fb[key]
        same = (
            all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(x, y))
            if isinstance(x, tuple) and isinstance(y, tuple)
            else not isinstance(x, tuple) and not isinstance(y, tuple) and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
        )
        if not same:
            problems.add(f"sequences.parquet and sequences.npz differ in feature {key}; {_FIX}")


# --------------------------------------------------------------------------------------------------
# The per-user splits, re-derived from the sequences


def _check_split(p: Path, meta: dict[str, Any], layouts: dict[str, dict[str, Any]], problems: _Problems) -> str | None:
    """``--split loo``, ``loo:recbole``, ``ratio:...``, ``time`` and ``users:...``: the split files hold
    exactly the split the rule gives on the written sequences (train items, valid/test users,
    targets and histories of at most ``--max-len`` items); for ``time:Q1,Q2`` the bounds in meta.json
    are the quantiles of the written timestamps, for ``users`` the held-out users are those the seed
    draws. Returns what was checked, or why the split could not be re-derived."""
    info = meta.get("split")
    opts = (meta.get("options") or {}).get("split") or {}
    if not isinstance(info, dict) or info.get("rule") not in ("loo", "ratio", "time", "users") or not layouts:
        return None
    text = opts.get("split")
    targets = ((meta.get("options") or {}).get("event") or {}).get("target_events")
    why = [f for f, on in (("--truncate", opts.get("truncate")), ("--vocab-from-train", opts.get("vocab_from_train")), ("--target-events", targets)) if on]
    if why:
        return f"{text}: not re-derived ({', '.join(why)}: the written sequences are not those the split was decided on)"
    try:
        so = SplitOptions(split=text, valid_from=opts.get("valid_from"), test_from=opts.get("test_from"), seed=opts.get("seed", 0)).validate()
    except (ConfigError, TypeError):
        problems.add(f"meta.json options.split.split {text!r} is not a split rule; {_FIX}")
        return None
    seq = next(iter(layouts.values()))
    offsets = np.asarray(seq["offsets"], dtype=np.int64)
    items = np.asarray(seq["items"])
    times = np.asarray(seq["timestamps"])
    if len(offsets) == 0 or offsets[-1] != len(items) or len(times) != len(items):
        return None  # the sequence checks report it
    part = _split_parts(so, info, offsets, times, text, problems)
    if part is None:
        return f"{text}: not re-derived (meta.json split facts are incomplete)"
    row = row_of(offsets)
    max_len = opts.get("max_len")
    train_rows = np.bincount(row[part == TRAIN], minlength=len(offsets) - 1)
    want: dict[str, tuple[np.ndarray, ...]] = {"train": (np.flatnonzero(train_rows > 0), items[part == TRAIN])}
    pos, start, length = eval_positions(offsets, times, part, strict_time=so.rule == "time")
    if max_len is not None:
        start, length = tail_ranges(start, length, int(max_len))
    _, hist = gather_ranges(start, length)
    hist_row = np.repeat(np.arange(len(pos)), length)
    for name, code in (("valid", VALID), ("test", TEST)):
        sel = part[pos] == code
        want[name] = (row[pos[sel]], items[pos[sel]], length[sel], items[hist[sel[hist_row]]])
    checked = []
    for ext in ("parquet", "npz"):
        if not all((p / f"{name}.{ext}").is_file() for name in want):
            continue
        for name, expected in want.items():
            try:
                got = _load_split_file(p / f"{name}.{ext}", name)
            except (*_READ_ERRORS, KeyError) as e:
                problems.add(f"{name}.{ext} is unreadable ({_one_line(e)}); {_FIX}")
                continue
            what = ("users", "items") if name == "train" else ("users", "targets", "history lengths", "histories")
            for label, a, b in zip(what, got, expected):
                if not np.array_equal(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)):
                    problems.add(f"{name}.{ext}: its {label} are not those --split {text} gives on the sequences; {_FIX}")
                    break
        checked.append(ext)
    return f"{text}: re-derived from the sequences ({', '.join(checked) or 'no split files'})"


def _split_parts(
    so: SplitOptions, info: dict[str, Any], offsets: np.ndarray, times: np.ndarray, text: str, problems: _Problems
) -> np.ndarray | None:
    """The part of every written position under the rule ``so`` (None: meta.json lacks what it needs)."""
    if so.rule == "ratio":
        return ratio_parts(offsets, so.ratio_cuts)  # type: ignore[arg-type]
    if so.rule == "loo":
        return loo_parts(offsets, valid_min_len=4 if so.loo_variant == "recbole" else None)
    if so.rule == "users":
        return held_out_positions(offsets, users_parts(offsets, so.fractions, so.seed), None)  # type: ignore[arg-type]
    t1, t2 = info.get("valid_from"), info.get("test_from")
    if not isinstance(t1, (int, float)) or not isinstance(t2, (int, float)):
        return None
    if so.fractions is not None and len(times):
        q = [time_quantile(times, f) for f in so.fractions]
        if q != [t1, t2]:
            problems.add(f"meta.json split bounds {t1}, {t2} are not the {so.fractions[0]} and {so.fractions[1]} quantiles of the written timestamps ({q[0]}, {q[1]}); {_FIX}")
    return time_parts(times, t1, t2)


def _load_split_file(path: Path, name: str) -> tuple[np.ndarray, ...]:
    """(users, items) of a train file; (users, targets, history lengths, histories) of valid/test."""
    if path.suffix == ".npz":
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if name == "train":
                return z["user_idx"], z["items"]
            return z["user_idx"], z["target"], np.diff(z["history_offsets"]), z["history"]
    table = pq.read_table(path)
    if name == "train":
        return table["user_idx"].to_numpy(), flat_list(table["items"], nulls=False)[1]
    h_offsets, history = flat_list(table["history"], nulls=False)
    return table["user_idx"].to_numpy(), table["target"].to_numpy(), np.diff(h_offsets), history


def _check_rows(meta: dict[str, Any], problems: _Problems) -> None:
    rows = meta.get("rows") or {}
    read, kept, removed = rows.get("read"), rows.get("kept"), rows.get("removed")
    if not all(isinstance(v, int) for v in (read, kept, removed)):
        problems.add(f"meta.json rows lacks read/kept/removed counts; {_FIX}")
        return
    if read != kept + removed:
        problems.add(f"meta.json rows: read {read} != kept {kept} + removed {removed}; {_FIX}")
    if kept != meta.get("num_interactions"):
        problems.add(f"meta.json rows.kept {kept} != num_interactions {meta.get('num_interactions')}; {_FIX}")
    steps = meta.get("steps") or []
    step_removed = sum(int(s.get("rows_removed", 0)) for s in steps if isinstance(s, dict))
    if step_removed != removed:
        problems.add(f"meta.json steps remove {step_removed} rows in all, rows.removed says {removed}; {_FIX}")


# --------------------------------------------------------------------------------------------------
# Item and user attributes

_ATTRIBUTE_TYPES = {
    "cat": ("int32",),
    "num": ("float",),
    "tokens": ("list<element: int32>", "large_list<element: int32>"),
}


def _check_attributes(p: Path, meta: dict[str, Any], problems: _Problems) -> int:
    """``item_features.*`` / ``user_features.*`` and their vocabularies; returns the attributes checked."""
    features = meta.get("features") or {}
    checked = 0
    for role in ("item", "user"):
        entries = {n: e for n, e in sorted(features.items()) if isinstance(e, dict) and e.get("source") == role}
        if not entries:
            continue
        rows = _int(meta, "num_embeddings" if role == "item" else "num_users")
        layouts = {}
        for name, loader in ((f"{role}_features.parquet", _load_attribute_parquet), (f"{role}_features.npz", _load_attribute_npz)):
            if (p / name).is_file():
                try:
                    layouts[name] = loader(p / name, role, entries, problems)
                except _READ_ERRORS as e:
                    problems.add(f"{name} is unreadable ({_one_line(e)}); {_FIX}")
        if not layouts and not any("is unreadable" in x for x in problems.items):
            problems.add(f"meta.json lists {role} attributes but neither {role}_features.parquet nor .npz is present; {_FIX}")
        for name, arrays in layouts.items():
            if arrays is None:
                continue
            for attr, entry in entries.items():
                _check_attribute(p, name, attr, entry, arrays[attr], role, rows, meta, problems)
        good = [a for a in layouts.values() if a is not None]
        if len(good) == 2 and not all(_same_attribute(good[0][a], good[1][a]) for a in entries):
            problems.add(f"{role}_features.parquet and {role}_features.npz differ; {_FIX}")
        _check_coverage(meta, role, problems)
        checked += len(entries)
    return checked


def _load_attribute_parquet(
    path: Path, role: str, entries: dict[str, Any], problems: _Problems
) -> dict[str, tuple[np.ndarray, np.ndarray | None]] | None:
    table = pq.read_table(path)
    want = [f"{role}_idx", *entries]
    if sorted(table.column_names) != sorted(want) or table.column_names[0] != f"{role}_idx":
        problems.add(f"{path.name} has columns {', '.join(table.column_names)}, expected {', '.join(want)}; {_FIX}")
        return None
    idx = table[f"{role}_idx"].to_numpy()
    if str(table.schema.field(f"{role}_idx").type) != "int32" or not np.array_equal(idx, np.arange(len(idx))):
        problems.add(f"{path.name}: {role}_idx is not int32 0..{len(idx) - 1} in order; {_FIX}")
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for name, entry in entries.items():
        typ = str(table.schema.field(name).type)
        if typ not in _ATTRIBUTE_TYPES.get(entry.get("kind"), ()):
            problems.add(f"{path.name}: column {name} is {typ}, expected {' or '.join(_ATTRIBUTE_TYPES.get(entry.get('kind'), ('?',)))} ({entry.get('kind')}); {_FIX}")
            return None
        if entry.get("kind") == "tokens":
            offsets, values = flat_list(table[name], nulls=False)
            out[name] = (values, offsets)
        else:
            out[name] = (table[name].to_numpy(), None)
    return out


def _load_attribute_npz(
    path: Path, role: str, entries: dict[str, Any], problems: _Problems
) -> dict[str, tuple[np.ndarray, np.ndarray | None]] | None:
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
        want = {n for n in entries} | {f"{n}_offsets" for n, e in entries.items() if e.get("kind") == "tokens"}
        if set(z.files) != want:
            problems.add(f"{path.name} has arrays {', '.join(sorted(z.files))}, expected {', '.join(sorted(want))}; {_FIX}")
            return None
        out = {n: (z[n], z[f"{n}_offsets"] if e.get("kind") == "tokens" else None) for n, e in entries.items()}
    for name, entry in entries.items():
        dtype = "float32" if entry.get("kind") == "num" else "int32"
        if str(out[name][0].dtype) != dtype:
            problems.add(f"{path.name}: {name} is {out[name][0].dtype}, expected {dtype}; {_FIX}")
            return None
    return out


def _check_attribute(
    p: Path,
    file: str,
    name: str,
    entry: dict[str, Any],
    arrays: tuple[np.ndarray, np.ndarray | None],
    role: str,
    rows: int | None,
    meta: dict[str, Any],
    problems: _Problems,
) -> None:
    """One attribute: rows, padding (and oov) rows, indices in range, missing count, vocabulary exact."""
    values, offsets = arrays
    kind = entry.get("kind")
    n = len(values) if offsets is None else len(offsets) - 1
    if rows is not None and n != rows:
        what = "num_embeddings (item indices 0..N, row 0 padding)" if role == "item" else "num_users"
        problems.add(f"{file}: {name} has {n} rows, meta.json {what} says {rows}; {_FIX}")
        return
    if offsets is not None and (offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] != len(values)):
        problems.add(f"{file}: {name}'s token lists have broken offsets; {_FIX}")
        return
    lengths = None if offsets is None else np.diff(offsets)
    present = (lengths > 0) if lengths is not None else (~np.isnan(values) if kind == "num" else values != 0)
    special = []  # rows that hold no value: the padding row 0 of items, and the oov_idx row
    if role == "item" and n:
        special.append(0)
        oov = _int(meta, "oov_idx")
        if oov is not None and oov < n:
            special.append(oov)
    for row in special:
        padding = row == 0 and kind == "num"
        if (padding and values[0] != 0) or (not padding and present[row]):
            what = "the padding row 0" if row == 0 else f"the oov_idx row {row}"
            problems.add(f"{file}: {name}: {what} holds a value; {_FIX}")
    kept = np.ones(n, dtype=bool)
    kept[special] = False
    if entry.get("missing") != int((~present[kept]).sum()):
        problems.add(f"{file}: {name} has {int((~present[kept]).sum())} {role}s without a value, meta.json missing says {entry.get('missing')}; {_FIX}")
    if kind == "num":
        return
    k = entry.get("values")
    if not isinstance(k, int) or entry.get("num_embeddings") != k + 1 or entry.get("padding_idx") != 0:
        problems.add(f"meta.json features.{name}: num_embeddings {entry.get('num_embeddings')!r} is not values + 1 with padding_idx 0; {_FIX}")
        return
    idx = values.astype(np.int64)
    low = 1 if kind == "tokens" else 0
    if len(idx) and (idx.min() < low or idx.max() > k):
        problems.add(f"{file}: {name} holds indices outside {low}..{k}; {_FIX}")
        return
    _check_attribute_vocabulary(p, name, entry, idx, offsets, kept, k, problems)


def _check_attribute_vocabulary(
    p: Path,
    name: str,
    entry: dict[str, Any],
    idx: np.ndarray,
    offsets: np.ndarray | None,
    kept: np.ndarray,
    k: int,
    problems: _Problems,
) -> None:
    file = str(entry.get("vocabulary"))
    try:
        table = pq.read_table(p / file)
        index, value, count = table["index"].to_numpy(), table["value"].combine_chunks(), table["count"].to_numpy()
    except _READ_ERRORS as e:
        problems.add(f"{file} is unreadable ({_one_line(e)}); {_FIX}")
        return
    if not np.array_equal(index, np.arange(1, k + 1)):
        problems.add(f"{file}: index is not exactly 1..{k} (meta.json values {k}); {_FIX}")
        return
    if value.null_count or pc.count_distinct(value).as_py() != k:
        problems.add(f"{file}: value holds repeated or missing values; {_FIX}")
    if offsets is not None:  # the tokens of the kept rows only
        rows = np.repeat(kept, np.diff(offsets))
        idx = idx[rows]
    else:
        idx = idx[kept]
    actual = np.bincount(idx, minlength=k + 1)[1:]
    if not np.array_equal(actual, count):
        j = int(np.flatnonzero(actual != count)[0])
        problems.add(f"{file}: index {j + 1} occurs {int(actual[j])} times in the {name} attribute, its count says {int(count[j])}; {_FIX}")


def _same_attribute(a: tuple[np.ndarray, np.ndarray | None], b: tuple[np.ndarray, np.ndarray | None]) -> bool:
    same_offsets = (a[1] is None) == (b[1] is None) and (a[1] is None or np.array_equal(a[1], b[1]))
    return same_offsets and np.array_equal(a[0], b[0], equal_nan=a[0].dtype.kind == "f")


def _check_coverage(meta: dict[str, Any], role: str, problems: _Problems) -> None:
    table = (meta.get("attribute_tables") or {}).get(role)
    if not isinstance(table, dict):
        problems.add(f"meta.json lists {role} attributes but no attribute_tables.{role}; {_FIX}")
        return
    n, with_row, without = table.get(f"{role}s"), table.get(f"{role}s_with_row"), table.get(f"{role}s_without_row")
    want = _int(meta, "num_items" if role == "item" else "num_users")
    if n != want or with_row is None or without is None or with_row + without != n:
        problems.add(f"meta.json attribute_tables.{role}: {with_row} with a row + {without} without != {n} ({role}s: {want}); {_FIX}")
    elif table.get("rows_ignored") != table.get("rows", 0) - with_row:
        problems.add(f"meta.json attribute_tables.{role}: rows_ignored {table.get('rows_ignored')} != rows {table.get('rows')} - {with_row} joined; {_FIX}")
