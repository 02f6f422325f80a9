"""``--export NAME``: files in the layout existing model code reads as-is, written into the output folder.

- ``sasrec`` -> ``sasrec.txt``: one ``user item`` line per interaction, users in index order, each
  user's items in time order; user ids are 1-based (``user_idx + 1``) and item ids are the item
  indices 1..N, as SASRec's / BERT4Rec's ``data_partition`` expects (``u, i = line.rstrip().split(' ')``).
- ``seqlines`` -> ``seqlines.txt``: one line per user, ``user item1 item2 ...`` (user ``user_idx + 1``,
  items 1..N in time order), the format of many contrastive sequential models' data folders
  (CL4SRec/ICLRec-style ``user, items = line.strip().split(' ', 1)``).
- ``recbole`` -> ``<OUT name>.inter``: a RecBole atomic file, tab-separated, header
  ``user_id:token  item_id:token  [rating:float]  timestamp:float``, one row per interaction in the
  same order, with the ORIGINAL user and item ids (so RecBole's other atomic files still join). Load it
  with ``dataset=<OUT name>, data_path=<parent of OUT>``. An out-of-vocabulary item (``--unknown oov``)
  is written as the token ``[OOV]``. Features follow as typed fields, with their original values:
  ``<name>:token`` (cat; empty when missing), ``<name>:float`` (num; empty when missing),
  ``<name>:token_seq`` (tokens, space-separated; a token holding white space is refused, as RecBole
  splits token_seq fields at spaces).
- ``srgnn`` -> ``srgnn/train.txt``, ``srgnn/test.txt``, ``srgnn/all_train_seq.txt``: the pickles
  SR-GNN's ``main.py`` loads (``pickle.load``), as its ``datasets/preprocess.py`` writes them:
  train/test are ``(prefixes, labels)`` with every prefix -> next item of each training / test
  sequence (sequences in user index order, the longest prefix of each first); all_train_seq is the
  list of training sequences. It needs a split whose test rows are every prefix (``--split days:N``).

Users whose sequence is empty (possible with ``--vocab-from``) have no line in any export. All text is
built column-wise (pyarrow compute), in chunks of users, never with a loop over users.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import BuildConfig
from ..errors import OutputError
from ..kernels.splits import gather_ranges, prefix_rows
from ..kernels.text import join_lists, lines_bytes, number_text
from ..model import BuildResult, Feature, Sequences
from ..vocab import Vocabulary

__all__ = ["OOV_TOKEN", "PART_EXPORTS", "ExportWriter", "export_filename", "write_exports", "write_srgnn"]

OOV_TOKEN = "[OOV]"
USERS_PER_CHUNK = 65536


def export_filename(name: str, output: str) -> str:
    """The file an export writes inside OUT."""
    if name == "recbole":
        return f"{Path(output).name}.inter"
    if name == "srgnn":
        return "srgnn"
    return f"{name}.txt"


def _chunks(offsets: np.ndarray) -> list[tuple[int, int]]:
    """User ranges [a, b) of at most USERS_PER_CHUNK users (a loop over chunks, not users)."""
    n = len(offsets) - 1
    return [(a, min(a + USERS_PER_CHUNK, n)) for a in range(0, n, USERS_PER_CHUNK)]


def _sasrec(seqs: Sequences, u0: int, fh: BinaryIO) -> None:
    for a, b in _chunks(seqs.offsets):
        lo, hi = int(seqs.offsets[a]), int(seqs.offsets[b])
        users = np.repeat(np.arange(u0 + a + 1, u0 + b + 1, dtype=np.int64), np.diff(seqs.offsets[a : b + 1]))
        lines = pc.binary_join_element_wise(number_text(users), " ", number_text(seqs.items[lo:hi]), "\n", "")
        fh.write(lines_bytes(lines))


def _seqlines(seqs: Sequences, u0: int, fh: BinaryIO) -> None:
    for a, b in _chunks(seqs.offsets):
        off = seqs.offsets[a : b + 1]
        lo, hi = int(off[0]), int(off[-1])
        items = join_lists(off - lo, number_text(seqs.items[lo:hi]), " ")
        lines = pc.binary_join_element_wise(number_text(np.arange(u0 + a + 1, u0 + b + 1, dtype=np.int64)), " ", items, "\n", "")
        fh.write(lines_bytes(lines.filter(pa.array(np.diff(off) > 0))))


def _token_text(ids: pa.Array, role: str, pattern: str = "[\\t\\n\\r]", what: str = "a tab or line break") -> pa.Array:
    text = pc.cast(ids, pa.string())
    bad = pc.match_substring_regex(text, pattern)
    if pc.any(bad).as_py():
        example = text.filter(pc.fill_null(bad, False))[0].as_py()
        msg = f"--export recbole: {role} {example!r} holds {what}, which a RecBole .inter file cannot hold; clean the {role.split()[-1]}s or drop --export recbole"
        raise OutputError(msg)
    return text


_RECBOLE_TYPES = {"cat": "token", "num": "float", "tokens": "token_seq"}


def _feature_text(f: Feature) -> pa.Array | None:
    """index -> original value as RecBole text (index 0: empty, the oov_idx: ``[OOV]``); None for num."""
    if f.vocab is None:
        return None
    if f.kind == "tokens":
        text = _token_text(f.vocab.ids, f"feature {f.name} token", "\\s", "white space")
    else:
        text = _token_text(f.vocab.ids, f"feature {f.name} value")
    tail = [pa.array([OOV_TOKEN])] if f.vocab.oov_idx is not None else []
    return pa.concat_arrays([pa.array([""]), text, *tail])


def _feature_field(f: Feature, text: pa.Array | None, lo: int, hi: int) -> pa.Array:
    """One feature's field of interactions ``lo..hi-1``."""
    part = f.slice(lo, hi)
    if text is None:  # num: the number, empty when missing
        values = pa.array(part.values)
        return pc.if_else(pc.is_nan(values), pa.scalar(""), number_text(values))
    if part.offsets is None:
        return text.take(pa.array(part.values.astype(np.int64)))
    return join_lists(part.offsets, text.take(pa.array(part.values.astype(np.int64))), " ")


class _Recbole:
    """The ``.inter`` file: its header once, then the rows of each part (original ids as tokens)."""

    def __init__(self, users: Vocabulary, items: Vocabulary, has_rating: bool, features: tuple[Feature, ...], fh: BinaryIO) -> None:
        self.has_rating = has_rating
        header = ["user_id:token", "item_id:token"] + (["rating:float"] if has_rating else []) + ["timestamp:float"]
        header += [f"{f.name}:{_RECBOLE_TYPES[f.kind]}" for f in features]
        self.user_text = _token_text(users.ids, "user id")
        # item index -> token; index 0 (padding) never occurs, oov_idx maps to OOV_TOKEN
        self.item_text = pa.concat_arrays([pa.array([""]), _token_text(items.ids, "item id"), pa.array([OOV_TOKEN])])
        self.feature_text = [_feature_text(f) for f in features]
        fh.write(("\t".join(header) + "\n").encode("utf-8"))

    def __call__(self, seqs: Sequences, u0: int, fh: BinaryIO) -> None:
        for a, b in _chunks(seqs.offsets):
            lo, hi = int(seqs.offsets[a]), int(seqs.offsets[b])
            users = np.repeat(np.arange(u0 + a, u0 + b, dtype=np.int64), np.diff(seqs.offsets[a : b + 1]))
            cols = [
                self.user_text.take(pa.array(users)),
                "\t",
                self.item_text.take(pa.array(seqs.items[lo:hi].astype(np.int64))),
                "\t",
            ]
            if self.has_rating:
                assert seqs.ratings is not None
                cols += [number_text(seqs.ratings[lo:hi]), "\t"]
            cols += [number_text(seqs.timestamps[lo:hi])]
            for f, text in zip(seqs.features, self.feature_text):
                cols += ["\t", _feature_field(f, text, lo, hi)]
            cols.append("\n")
            fh.write(lines_bytes(pc.binary_join_element_wise(*cols, "")))


class ExportWriter:
    """Every ``--export`` of a build that is written part by part (:data:`PART_EXPORTS`; srgnn is
    written from the split files at the end): :meth:`add` the sequences of consecutive
    user ranges in user order (the local engine: one part, every user; the Dask engine: each output
    part as it comes), then :meth:`close`. The files are the same for any cut into parts."""

    def __init__(
        self, config: BuildConfig, users: Vocabulary, items: Vocabulary, has_rating: bool, folder: Path, features: tuple[Feature, ...] = ()
    ) -> None:
        names = [name for name in config.emit.exports if name in PART_EXPORTS]
        self.names = [export_filename(name, config.output) for name in names]
        self.files: list[BinaryIO] = []
        self.writers: list[Callable[[Sequences, int, BinaryIO], None]] = []
        try:
            for name, fname in zip(names, self.names):
                fh = open(folder / fname, "wb")  # noqa: SIM115 - closed by close()
                self.files.append(fh)
                self.writers.append(_Recbole(users, items, has_rating, features, fh) if name == "recbole" else _WRITERS[name])
        except BaseException:
            self.close()
            raise
        self.next_user = 0

    def add(self, seqs: Sequences, u0: int) -> None:
        """The sequences of users ``u0``, ``u0 + 1``, ... (offsets from any start; parts in user order)."""
        if u0 != self.next_user:
            msg = f"export parts out of order: users from {u0}, expected {self.next_user}"
            raise ValueError(msg)
        for write, fh in zip(self.writers, self.files):
            write(seqs, u0, fh)
        self.next_user = u0 + len(seqs.offsets) - 1

    def close(self) -> None:
        for fh in self.files:
            fh.close()


_WRITERS: dict[str, Callable[[Sequences, int, BinaryIO], None]] = {"sasrec": _sasrec, "seqlines": _seqlines}
#: The exports written part by part, user range after user range.
PART_EXPORTS = ("sasrec", "seqlines", "recbole")


def _lists(offsets: np.ndarray, values: np.ndarray) -> list[list[int]]:
    """CSR -> Python lists of ints (built by Arrow, not by a loop of ours)."""
    return pa.ListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int32)), pa.array(values.astype(np.int64))).to_pylist()


def _prefixes(offsets: np.ndarray, items: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """(prefixes, labels): every prefix -> next item of each CSR row, longest prefix first."""
    target, start, length = prefix_rows(offsets)
    hist_offsets, pos = gather_ranges(start, length)
    return _lists(hist_offsets, items[pos]), items[target].astype(np.int64).tolist()


def _srgnn(result: BuildResult, folder: Path) -> list[str]:
    extras = result.extras
    if extras is not None and extras.srgnn is not None:  # the split files were written range by range
        train_offsets, train_items, test = extras.srgnn
    elif extras is None or extras.test is None or extras.train_offsets is None:
        train_offsets = None
    else:
        train_offsets, train_items, test = extras.train_offsets, np.asarray(extras.train_items), extras.test
    if train_offsets is None or result.meta.get("split", {}).get("rule") != "days":
        msg = "--export srgnn writes every prefix of the training and test sequences; add --split days:N (and --vocab-from-train)"
        raise OutputError(msg)
    # test rows come in position order; SR-GNN lists each sequence's longest prefix first
    order = np.lexsort((-np.diff(test.history_offsets), test.user_idx))
    hist_offsets, pos = gather_ranges(test.history_offsets[:-1][order], np.diff(test.history_offsets)[order])
    files = {
        "train.txt": _prefixes(train_offsets, train_items),
        "test.txt": (_lists(hist_offsets, test.history[pos]), test.target[order].astype(np.int64).tolist()),
        "all_train_seq.txt": _lists(train_offsets, train_items),
    }
    (folder / "srgnn").mkdir()
    for fname, payload in files.items():
        with open(folder / "srgnn" / fname, "wb") as fh:
            pickle.dump(payload, fh, protocol=4)
    return [f"srgnn/{f}" for f in files]




def write_srgnn(result: BuildResult, folder: Path) -> list[str]:
    """``--export srgnn`` alone (an engine that writes the other exports part by part)."""
    return _srgnn(result, folder)


def write_exports(result: BuildResult, folder: Path) -> list[str]:
    """Write every ``--export`` of ``result`` into ``folder``; returns the file names written."""
    assert result.sequences is not None
    seqs = result.sequences
    writer = ExportWriter(result.config, result.users, result.items, seqs.ratings is not None, folder, seqs.features)
    try:
        writer.add(result.sequences, 0)
    finally:
        writer.close()
    names = list(writer.names)
    if "srgnn" in result.config.emit.exports:
        names += _srgnn(result, folder)
    return names
