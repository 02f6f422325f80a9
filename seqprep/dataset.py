"""Reading a built folder back: ``seqprep.load(OUT)``."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import InputError, damaged_output
from .kernels import padded as _padded
from .vocab import Vocabulary

__all__ = ["READ_ERRORS", "Attributes", "Dataset", "TokenLists", "feature_values", "load", "read_feature_vocabulary", "is_built", "flat_list", "need_columns", "read_meta", "read_sequences_table", "reading", "sequence_features"]

#: What reading a damaged file of a built folder raises: pyarrow's errors, OSError (unreadable),
#: EOFError (numpy on an empty .npz), ValueError (bad JSON or UTF-8, numpy refusing pickled data, a
#: vocabulary whose indices are not a range), zipfile.BadZipFile, and from a damaged zip's flag bits
#: NotImplementedError (an unknown compression) or RuntimeError (an "encrypted" member).
READ_ERRORS = (pa.ArrowException, OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError)


@contextmanager
def reading(folder: str | Path, file: str) -> Iterator[None]:
    """The one guard around reading ``file`` of the built ``folder``: :data:`READ_ERRORS` become an
    :class:`InputError` that says the folder is damaged (keep only reads of that file inside)."""
    try:
        yield
    except READ_ERRORS as e:
        raise damaged_output(str(folder), file, e) from e


def need_columns(table: pa.Table, names: Sequence[str], folder: str | Path, file: str) -> None:
    """An InputError (the folder is damaged) unless ``table``, read from ``file``, has every column of ``names``."""
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise damaged_output(str(folder), file, f"no column {', '.join(missing)}")


def read_meta(folder: str | Path) -> dict[str, Any]:
    """``folder``'s meta.json as a dict; an InputError when it is not readable JSON holding an object."""
    with reading(folder, "meta.json"):
        meta = json.loads((Path(folder) / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise damaged_output(str(folder), "meta.json", "not a JSON object")
    return meta


def is_built(path: str | Path) -> bool:
    """True when ``path`` is a folder written by ``seqprep build``."""
    p = Path(path)
    return p.is_dir() and (p / "meta.json").is_file()


@dataclass(frozen=True, eq=False)
class Attributes(Mapping[str, np.ndarray]):
    """The item (or user) attributes of a built folder (``--item-table`` / ``--user-table``): name ->
    one value per item index (row 0 the padding row, so ``ds.item_features["genre"][ds.items]`` needs
    no offset; with ``--unknown oov`` a last row for ``oov_idx``) or per user index (no padding row).

    ``attrs[name]`` is int32 indices 1..K for ``cat`` (0 = padding and missing), float32 for ``num``
    (NaN = missing, 0.0 in the padding row) and for ``tokens`` an int32 matrix [rows, most tokens]
    padded with 0 (its CSR form: :meth:`lists`). :meth:`decode` maps indices back to the values.

    >>> a = Attributes("item", {"g": "cat"}, {"g": np.array([0, 2, 1], dtype=np.int32)}, {},
    ...                {"g": Vocabulary(ids=pa.array(["x", "y"]), counts=np.array([1, 1]), start=1)})
    >>> list(a), a["g"].tolist(), a.decode("g", a["g"]).to_pylist()
    (['g'], [0, 2, 1], [None, 'y', 'x'])
    """

    role: str
    kinds: dict[str, str]
    arrays: dict[str, np.ndarray]  # cat/num: the values per row; tokens: the token indices (CSR with offsets)
    offsets: dict[str, np.ndarray]
    vocabularies: dict[str, Vocabulary]
    _matrices: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.kinds:
            msg = f"no {self.role} attribute {name!r}; the build has {', '.join(self.kinds) or 'none'}"
            raise KeyError(msg)
        if self.kinds[name] != "tokens":
            return self.arrays[name]
        if name not in self._matrices:
            offsets = self.offsets[name]
            width = max(1, int(np.diff(offsets).max(initial=0)))
            self._matrices[name] = _padded(self.arrays[name].astype(np.int32, copy=False), offsets, width, side="right")
        return self._matrices[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    def __len__(self) -> int:
        return len(self.kinds)

    def __contains__(self, name: object) -> bool:
        return name in self.kinds

    @property
    def num_rows(self) -> int:
        """Rows of every attribute: item indices 0..num_embeddings-1, or users 0..U-1 (0 without attributes)."""
        for name, kind in self.kinds.items():
            return len(self.offsets[name]) - 1 if kind == "tokens" else len(self.arrays[name])
        return 0

    def lists(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A ``tokens`` attribute as CSR (offsets [rows + 1], token indices): row ``k``'s tokens are
        ``values[offsets[k]:offsets[k + 1]]`` (e.g. for ``torch.nn.EmbeddingBag``)."""
        if self.kinds.get(name) != "tokens":
            msg = f"{self.role} attribute {name!r} is not a tokens attribute; read it as attrs[{name!r}]"
            raise KeyError(msg)
        return self.offsets[name], self.arrays[name]

    def vocabulary(self, name: str) -> Vocabulary:
        """The vocabulary of a ``cat`` or ``tokens`` attribute (``features/<name>.parquet``)."""
        if name not in self.vocabularies:
            msg = f"{self.role} attribute {name!r} has no vocabulary (it is {self.kinds.get(name, 'not an attribute')})"
            raise KeyError(msg)
        return self.vocabularies[name]

    def decode(self, name: str, indices: Any) -> pa.Array:
        """Indices of a ``cat`` / ``tokens`` attribute -> original values (0, padding or missing, gives null)."""
        vocab = self.vocabulary(name)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = (idx < 0) | (idx > len(vocab))
        if bad.any():
            msg = f"index {int(idx[np.argmax(bad)])} is outside 0..{len(vocab)} of {self.role} attribute {name!r}"
            raise IndexError(msg)
        missing = idx == 0
        return vocab.ids.take(pa.array(np.where(missing, 0, idx - 1), mask=missing if missing.any() else None))


@dataclass(frozen=True)
class TokenLists:
    """A ``tokens`` feature: interaction ``k`` holds the token indices ``values[offsets[k]:offsets[k+1]]``.

    >>> t = TokenLists(np.array([0, 2, 2, 3]), np.array([4, 1, 2], dtype=np.int32))
    >>> len(t), t[0].tolist(), t[1].tolist()
    (3, [4, 1], [])
    """

    offsets: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, k: int) -> np.ndarray:
        return self.values[self.offsets[k] : self.offsets[k + 1]]


FeatureValues = np.ndarray | TokenLists


@dataclass(frozen=True)
class Dataset:
    """A built dataset: vocabularies, CSR arrays and meta.

    ``items[offsets[u]:offsets[u+1]]`` is user ``u``'s item sequence (oldest first), with item indices
    1..N (0 is padding and never appears; N+1 is ``oov_idx`` in a ``--unknown oov`` build).
    ``encode`` / ``decode`` map original item ids to indices and back; ``encode_users`` /
    ``decode_users`` do the same for users.

    ``features`` (``--feature``, ``--time-feature``): name -> values aligned with ``items`` (int32
    indices 1..K for ``cat``, 0 = missing; float32 for ``num``, NaN = missing; :class:`TokenLists`
    for ``tokens``); ``feature(name)``, ``feature_vocab(name)`` and ``decode_feature(name, indices)``
    read them, ``padded_feature`` lays one out as ``padded`` lays out the items.
    """

    path: Path
    meta: dict[str, Any]
    item_vocab: Vocabulary
    user_vocab: Vocabulary
    offsets: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None
    user_idx: np.ndarray
    session_ids: np.ndarray | None = None  # --session-gap: session number within each user, from 0
    features: dict[str, FeatureValues] = field(default_factory=dict)
    feature_vocabs: dict[str, Vocabulary] = field(default_factory=dict)
    item_features: Attributes = field(default_factory=lambda: Attributes("item", {}, {}, {}, {}))
    user_features: Attributes = field(default_factory=lambda: Attributes("user", {}, {}, {}, {}))

    @property
    def num_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_items(self) -> int:
        return len(self.item_vocab)

    @property
    def num_embeddings(self) -> int:
        """Rows of an item embedding table: N items + the padding row 0."""
        return int(self.meta["num_embeddings"])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, user: int) -> np.ndarray:
        """User ``user``'s item indices, oldest first."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def encode(self, ids: Any, unknown: Literal["default", "missing", "oov", "error"] = "default") -> np.ndarray:
        """Original item ids -> item indices (vectorised; see :meth:`Vocabulary.encode`).

        Unknown ids give ``oov_idx`` when the build has one (``--unknown oov``), else -1;
        ``unknown="error"`` raises a KeyError naming a few.
        """
        return self.item_vocab.encode(ids, unknown=unknown)

    def decode(self, indices: Any) -> pa.Array:
        """Item indices -> original item ids (vectorised; ``oov_idx`` gives null, 0 or out of range raises)."""
        return self.item_vocab.decode(indices)

    encode_items = encode
    decode_items = decode

    def encode_users(self, ids: Any, unknown: Literal["default", "missing", "error"] = "default") -> np.ndarray:
        """Original user ids -> user indices (row numbers); unknown ids give -1 (or a KeyError)."""
        return self.user_vocab.encode(ids, unknown=unknown)

    def decode_users(self, indices: Any) -> pa.Array:
        """User indices -> original user ids."""
        return self.user_vocab.decode(indices)

    def padded(self, max_len: int, side: Literal["left", "right"] = "left") -> np.ndarray:
        """int32 [U, max_len]: each user's ``max_len`` most recent items, padded with 0."""
        return _padded(self.items.astype(np.int32, copy=False), self.offsets, max_len, side=side)

    def feature(self, name: str) -> FeatureValues:
        """Feature ``name``'s values, aligned with ``items`` (a :class:`TokenLists` for ``tokens``)."""
        if name not in self.features:
            have = ", ".join(self.features) or "none (build with --feature COL or --time-feature NAME)"
            msg = f"this dataset has no feature {name!r}; its features: {have}"
            raise KeyError(msg)
        return self.features[name]

    def feature_vocab(self, name: str) -> Vocabulary:
        """The vocabulary of the ``cat`` or ``tokens`` feature ``name`` (index 1..K -> value)."""
        self.feature(name)
        if name not in self.feature_vocabs:
            msg = f"feature {name!r} is num: its values are numbers, with no vocabulary"
            raise KeyError(msg)
        return self.feature_vocabs[name]

    def decode_feature(self, name: str, indices: Any) -> pa.Array:
        """Indices of feature ``name`` -> its original values (vectorised); 0 (missing, padding) and
        the ``oov_idx`` give null; an index outside 0..K (or the oov_idx) raises IndexError."""
        vocab = self.feature_vocab(name)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        blank = idx == 0
        if vocab.oov_idx is not None:
            blank |= idx == vocab.oov_idx
        if not blank.any():
            return vocab.decode(idx)
        if blank.all():
            return pa.nulls(len(idx), vocab.ids.type)
        values = vocab.decode(np.where(blank, 1, idx))
        return pc.if_else(pa.array(~blank), values, pa.scalar(None, values.type))

    def padded_feature(self, name: str, max_len: int, side: Literal["left", "right"] = "left") -> np.ndarray:
        """[U, max_len] of feature ``name`` aligned with :meth:`padded`: int32 (``cat``, padding 0) or
        float32 (``num``, padding 0.0); a ``tokens`` feature has no matrix (use :meth:`feature`)."""
        values = self.feature(name)
        if self.meta["features"][name]["kind"] == "tokens":
            msg = f"feature {name!r} holds token lists, which make no [U, max_len] matrix; read ds.feature({name!r})"
            raise ValueError(msg)
        return _padded(np.asarray(values), self.offsets, max_len, side=side)


def flat_list(col: pa.ChunkedArray, *, nulls: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (offsets from 0, values); ``nulls=False`` raises ValueError on a null list."""
    arr = col.combine_chunks()
    if not nulls and arr.null_count:
        msg = f"{arr.null_count} null lists"
        raise ValueError(msg)
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False)
    base = offsets[0]
    return offsets - base, values[base : offsets[-1]]


def read_sequences_table(p: Path) -> pa.Table:
    """sequences.parquet, or the parts ``sequences/part-00000.parquet``, ... (in user-index order)."""
    if (p / "sequences.parquet").is_file():
        return pq.read_table(p / "sequences.parquet")
    parts = sorted((p / "sequences").glob("part-*.parquet"))
    if not parts:
        msg = f"{str(p / 'sequences')!r} holds no part-*.parquet files; rebuild it with seqprep build"
        raise InputError(msg)
    return pa.concat_tables([pq.read_table(f) for f in parts])


def load(path: str | Path) -> Dataset:
    """Load a folder written by ``seqprep build`` (sequences.parquet, a sequences/ folder of parts, or NPZ).

    A folder whose files cannot be read as seqprep wrote them is an :class:`InputError` naming the
    file (``seqprep verify`` tells everything that is wrong with it).
    """
    p = Path(path)
    if not is_built(p):
        msg = f"{str(p)!r} is not a seqprep output folder (no meta.json); pass the -o folder of a build"
        raise InputError(msg)
    meta = read_meta(p)
    item_vocab = _read_vocabulary(p, "item").with_oov(meta.get("oov_idx"))
    user_vocab = _read_vocabulary(p, "user")
    entries = sequence_features(meta)
    specs = {name: str(f.get("kind")) for name, f in entries.items()}
    vocabs = {name: read_feature_vocabulary(p, name, f.get("oov_idx")) for name, f in entries.items() if f.get("vocabulary")}
    ratings = session_ids = None
    if (p / "sequences.npz").is_file():
        # our own handle, closed even when np.load fails on a bad zip
        with reading(p, "sequences.npz"), open(p / "sequences.npz", "rb") as fh, np.load(fh, allow_pickle=False) as z:
            missing = [k for k in ("offsets", "items", "timestamps", "user_idx") if k not in z.files]
            if missing:
                raise damaged_output(str(p), "sequences.npz", f"no array {', '.join(missing)}")
            offsets, items, timestamps = z["offsets"], z["items"], z["timestamps"]
            user_idx = z["user_idx"]
            if "ratings" in z.files:
                ratings = z["ratings"]
            if "session_ids" in z.files:
                session_ids = z["session_ids"]
            features = _npz_features(z, specs, p)
    elif (p / "sequences.parquet").is_file() or (p / "sequences").is_dir():
        name = "sequences.parquet" if (p / "sequences.parquet").is_file() else "sequences/"
        with reading(p, name):
            table = read_sequences_table(p)
            need_columns(table, ("user_idx", "items", "timestamps"), p, name)
            offsets, items = flat_list(table["items"])
            _, timestamps = flat_list(table["timestamps"])
            if "ratings" in table.column_names:
                _, ratings = flat_list(table["ratings"])
            if "session_ids" in table.column_names:
                _, session_ids = flat_list(table["session_ids"])
            user_idx = table["user_idx"].to_numpy()
            need_columns(table, tuple(specs), p, name)
            features = {n: feature_values(table[n], kind) for n, kind in specs.items()}
    else:
        msg = f"{str(p)!r} holds neither sequences.parquet, sequences/ nor sequences.npz; rebuild it with seqprep build"
        raise InputError(msg)
    return Dataset(
        path=p,
        meta=meta,
        item_vocab=item_vocab,
        user_vocab=user_vocab,
        offsets=offsets,
        items=items,
        timestamps=timestamps,
        ratings=ratings,
        user_idx=user_idx,
        session_ids=session_ids,
        features=features,
        feature_vocabs=vocabs,
        item_features=_read_attributes(p, meta, "item"),
        user_features=_read_attributes(p, meta, "user"),
    )


def sequence_features(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entries of ``meta["features"]`` that travel with the items (source ``interaction`` or
    ``derived``); the item and user attributes (``--item-table``, ``--user-table``) are not among them.

    >>> sorted(sequence_features({"features": {"g": {"source": "interaction"}, "a": {"source": "item"}}}))
    ['g']
    """
    return {
        name: f
        for name, f in (meta.get("features") or {}).items()
        if isinstance(f, dict) and f.get("source") not in ("item", "user")
    }


def read_feature_vocabulary(p: Path, name: str, oov_idx: int | None = None) -> Vocabulary:
    """``features/<name>.parquet`` of the built folder ``p`` as a :class:`Vocabulary` (indices 1..K)."""
    file = f"features/{name}.parquet"
    with reading(p, file):
        table = pq.read_table(p / "features" / f"{name}.parquet")
        need_columns(table, ("index", "value", "count"), p, file)
        return Vocabulary.from_feature_table(table).with_oov(oov_idx)


def feature_values(col: pa.ChunkedArray, kind: str) -> FeatureValues:
    """A feature's list column (sequences.parquet, train.parquet) -> its values aligned with the items."""
    if kind != "tokens":
        return flat_list(col)[1]
    outer = col.combine_chunks()
    o = np.asarray(outer.offsets, dtype=np.int64)
    inner = outer.values.slice(int(o[0]), int(o[-1] - o[0]))  # one list of tokens per interaction
    io = np.asarray(inner.offsets, dtype=np.int64)
    return TokenLists(io - io[0], inner.values.to_numpy(zero_copy_only=False)[io[0] : io[-1]])


def _npz_features(z: Any, specs: dict[str, str], p: Path) -> dict[str, FeatureValues]:
    """The features' arrays of sequences.npz (``<name>``, and ``<name>_offsets`` for tokens)."""
    missing = [k for n, kind in specs.items() for k in ([n, f"{n}_offsets"] if kind == "tokens" else [n]) if k not in z.files]
    if missing:
        raise damaged_output(str(p), "sequences.npz", f"no array {', '.join(missing)}")
    return {n: TokenLists(z[f"{n}_offsets"], z[n]) if kind == "tokens" else z[n] for n, kind in specs.items()}


def _read_attributes(p: Path, meta: dict[str, Any], role: Literal["item", "user"]) -> Attributes:
    """The ``role`` attributes of the built folder ``p`` (``<role>_features.npz`` when present, else
    ``.parquet``) with their vocabularies; empty when the build has none."""
    entries = {k: v for k, v in (meta.get("features") or {}).items() if isinstance(v, dict) and v.get("source") == role}
    if not entries:
        return Attributes(role, {}, {}, {}, {})
    kinds = {name: str(e.get("kind")) for name, e in sorted(entries.items())}
    values: dict[str, np.ndarray] = {}
    offsets: dict[str, np.ndarray] = {}
    npz, parquet = f"{role}_features.npz", f"{role}_features.parquet"
    if (p / npz).is_file():
        with reading(p, npz), open(p / npz, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            lacking = [n for n, k in kinds.items() if n not in z.files or (k == "tokens" and f"{n}_offsets" not in z.files)]
            if lacking:
                raise damaged_output(str(p), npz, f"no array {', '.join(lacking)}")
            for name, kind in kinds.items():
                values[name] = z[name]
                if kind == "tokens":
                    offsets[name] = z[f"{name}_offsets"]
    else:
        with reading(p, parquet):
            table = pq.read_table(p / parquet)
            need_columns(table, list(kinds), p, parquet)
            for name, kind in kinds.items():
                if kind == "tokens":
                    offsets[name], values[name] = flat_list(table[name])
                else:
                    values[name] = table[name].to_numpy()
    vocabularies = {}
    for name in kinds:
        file = entries[name].get("vocabulary")
        if file:
            with reading(p, str(file)):
                t = pq.read_table(p / str(file))
                need_columns(t, ("index", "value", "count"), p, str(file))
                vocabularies[name] = Vocabulary(ids=t["value"].combine_chunks(), counts=t["count"].to_numpy(), start=1)
    return Attributes(role, kinds, values, offsets, vocabularies)


def _read_vocabulary(p: Path, prefix: Literal["item", "user"]) -> Vocabulary:
    name = f"{prefix}s.parquet"
    with reading(p, name):
        table = pq.read_table(p / name)
        need_columns(table, (f"{prefix}_idx", f"{prefix}_id", "count"), p, name)
        return Vocabulary.from_table(table, prefix)
