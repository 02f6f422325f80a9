"""Encoding a new log with the vocabularies of an earlier build (``--vocab-from OLD_OUT``).

A vocabulary is a contract with a trained embedding table: item 17 stays item 17. Rules:

- items of OLD keep their index 1..N. An item OLD does not know ("unseen") is, by ``--unknown``:
  ``drop`` - its rows are removed and counted (step ``unknown_items``); ``oov`` - it becomes index
  N+1 (``oov_idx``; ``num_embeddings`` N+2); ``error`` - the build fails naming a few of them.
  ``--extend`` instead appends unseen items at N+1, N+2, ... in ``--item-order`` (among the new ones);
- users of OLD keep their index 0..U-1 (also when absent from the new log: their row is empty); new
  users are appended at U, U+1, ... in ``--user-order`` (among the new ones);
- ids are matched by value in OLD's id type: the new log's ids are cast to it when that is exact for
  every id (text "17" -> 17), else the build fails (text "017" or "x" against integer ids);
- ``count`` in the written items.parquet / users.parquet counts the interactions of the NEW build
  (0 for an id of OLD that the new log does not have); the interactions at ``oov_idx`` are meta.json
  ``vocab_reuse.oov_interactions`` (after every filter, unlike ``unseen_rows``: :func:`reuse_meta`).

Features (``--feature``, ``--time-feature``) reuse OLD's ``features/<name>.parquet`` the same way
(:func:`load_feature_references`; the remapping is :func:`seqprep.steps.features.reuse_vocabulary`):
every feature must be one OLD has, of the same kind; a value OLD does not know is, by ``--unknown``:
``drop`` - 0, as a missing value (rows are never dropped for a feature value; a token is left out
of its list), ``oov`` - K+1, ``error`` - the build fails naming a few; ``--extend`` appends it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import BuildConfig
from ..errors import InputError, one_line
from ..kernels import cast_ids_exact, lookup, reuse_table
from ..kernels.vocab import counts_by_index, extend_table_counted, first_seen_codes
from ..model import Interactions, Log
from ..records import record
from ..vocab import Vocabulary
from .counts import CodeCounts

__all__ = [
    "FeatureReference",
    "Reference",
    "fit_reused",
    "fit_reused_counted",
    "load_feature_references",
    "load_reference",
    "reuse_meta",
    "unknown_items_counted",
    "unknown_items_step",
]

STEP = "unknown_items"


@record
class Reference:
    """The vocabularies of an earlier build, as read from its folder."""

    path: str
    items: Vocabulary
    users: Vocabulary
    oov_idx: int | None
    files: dict[str, Any]


def load_reference(path: str) -> Reference:
    """Read OLD_OUT's items.parquet / users.parquet (and its meta.json's ``oov_idx``)."""
    p = Path(path)
    if not (p / "meta.json").is_file() or not (p / "items.parquet").is_file() or not (p / "users.parquet").is_file():
        msg = f"--vocab-from {path!r} is not a seqprep output folder (needs meta.json, items.parquet, users.parquet); pass the -o folder of an earlier build"
        raise InputError(msg)
    try:
        meta = json.loads((p / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # unreadable, not UTF-8, not JSON
        msg = f"--vocab-from {path!r}: meta.json cannot be read ({one_line(e, 200)}); rebuild OLD with seqprep build"
        raise InputError(msg) from e
    if not isinstance(meta, dict):
        msg = f"--vocab-from {path!r}: meta.json does not hold a JSON object; rebuild OLD with seqprep build"
        raise InputError(msg)
    try:
        items = Vocabulary.from_table(pq.read_table(p / "items.parquet"), "item")
        users = Vocabulary.from_table(pq.read_table(p / "users.parquet"), "user")
    except (KeyError, ValueError, pa.ArrowException) as e:
        msg = f"--vocab-from {path!r}: items.parquet/users.parquet are not a seqprep vocabulary ({e}); rebuild OLD with seqprep build"
        raise InputError(msg) from e
    if items.start != 1 or users.start != 0:
        msg = (
            f"--vocab-from {path!r}: item indices must start at 1 and user indices at 0; rebuild OLD with seqprep build"
        )
        raise InputError(msg)
    oov = meta.get("oov_idx")
    files = meta.get("outputs", {}).get("files", {})
    return Reference(path=path, items=items, users=users, oov_idx=None if oov is None else int(oov), files=files)


@record
class FeatureReference:
    """One feature of an earlier build: its kind and, for ``cat`` / ``tokens``, its vocabulary."""

    name: str
    kind: str
    vocab: Vocabulary | None
    path: str


def load_feature_references(path: str, names: list[str], kinds: dict[str, str]) -> dict[str, FeatureReference]:
    """OLD_OUT's features ``names`` (meta.json ``features`` and ``features/<name>.parquet``); each must
    exist in OLD with the kind ``kinds[name]`` (when known), else a one-line error naming it."""
    ref = load_reference(path)  # the folder checks and their messages
    meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    # the features that travel with the items (the item/user attributes are not reused as features)
    old = {n: e for n, e in (meta.get("features") or {}).items() if isinstance(e, dict) and e.get("source") not in ("item", "user")}
    out = {}
    for name in names:
        entry = old.get(name)
        if not isinstance(entry, dict):
            have = ", ".join(sorted(old)) or "none"
            msg = (
                f"--vocab-from {path!r} has no feature {name!r} (its features: {have}), so there is no vocabulary "
                f"to reuse; drop that --feature / --time-feature / --event-col, or rebuild OLD with it"
            )
            raise InputError(msg)
        kind = str(entry.get("kind"))
        if kinds.get(name) not in (None, kind):
            msg = f"feature {name!r} is {kinds[name]} here but {kind} in --vocab-from {path!r}; pass {name}:{kind}, or rebuild OLD"
            raise InputError(msg)
        vocab = None
        if kind != "num":
            file = Path(path) / "features" / f"{name}.parquet"
            try:
                vocab = Vocabulary.from_feature_table(pq.read_table(file)).with_oov(entry.get("oov_idx"))
            except (OSError, KeyError, ValueError, pa.ArrowException) as e:
                msg = f"--vocab-from {path!r}: features/{name}.parquet is not a seqprep feature vocabulary ({one_line(e, 200)}); rebuild OLD with seqprep build"
                raise InputError(msg) from e
        out[name] = FeatureReference(name, kind, vocab, ref.path)
    return out


def _align(ref: Vocabulary, ids: pa.Array, role: str, path: str) -> pa.Array:
    """The log's distinct ``role`` ids in the type of OLD's ids, or a clear error when not exact."""
    if ids.type == ref.ids.type:
        return ids
    cast, exact = cast_ids_exact(ids, ref.ids.type)
    if not exact.all():
        bad = ids.filter(pa.array(~exact)).slice(0, 3).to_pylist()
        old = "integer" if pa.types.is_integer(ref.ids.type) else "text"
        new = "integer" if pa.types.is_integer(ids.type) else "text"
        msg = (
            f"--vocab-from {path!r} holds {old} {role} ids but this log has {new} {role} ids such as "
            f"{', '.join(map(repr, bad))} that are not exactly {old}; pass --id-type to read the log like OLD "
            f"(OLD used {ref.id_type()}), or rebuild OLD with --id-type str"
        )
        raise InputError(msg)
    return cast


def _item_table(ref: Reference, log: Log) -> tuple[pa.Array, np.ndarray]:
    item_ids = _align(ref.items, log.item_ids, "item", ref.path)
    return item_ids, reuse_table(ref.items.ids, item_ids, start=1)


def unknown_items_step(log: Log, inter: Interactions, config: BuildConfig) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The ``unknown_items`` step of :func:`seqprep.steps.clean.clean`: count (and with ``drop``
    remove, with ``error`` reject) the rows whose item OLD does not know. -> (keep mask or None, report)."""
    counts = np.bincount(inter.item, minlength=len(log.item_ids)).astype(np.int64)

    def first_unseen(unseen: np.ndarray) -> np.ndarray:
        return first_seen_codes(inter.item[unseen[inter.item]])

    drop, report = unknown_items_counted(log, counts, config, first_unseen)
    return (None if drop is None else ~drop[inter.item]), report


def unknown_items_counted(
    log: Log, item_counts: np.ndarray, config: BuildConfig, first_unseen: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """:func:`unknown_items_step` from the rows per item code (``item_counts``) of the rows so far:
    -> (per code, whether its rows are dropped, or None; the report). ``first_unseen(mask)`` gives
    the codes where ``mask`` is True in order of their first row (read only for ``--unknown error``)."""
    ref = load_reference(config.vocab.vocab_from)
    item_ids, table = _item_table(ref, log)
    unseen = (table < 0) & (item_counts > 0)
    n_rows = int(item_counts[unseen].sum())
    rows_before = int(item_counts.sum())
    action = "extend" if config.vocab.extend else config.vocab.unknown
    report: dict[str, Any] = {
        "step": STEP,
        "action": action,
        "rows_before": rows_before,
        "rows_removed": n_rows if action == "drop" else 0,
        "rows_after": rows_before - (n_rows if action == "drop" else 0),
        "items": int(np.count_nonzero(item_counts)),
        "unseen_items": int(unseen.sum()),
        "unseen_rows": n_rows,
    }
    if n_rows and action == "error":
        examples = item_ids.take(pa.array(np.asarray(first_unseen(unseen))[:5])).to_pylist()
        msg = (
            f"{report['unseen_items']} item ids ({n_rows} rows) are not in the vocabulary of {ref.path!r}, e.g. "
            f"{', '.join(map(repr, examples))}; pass --unknown drop or --unknown oov to accept them, or --extend to add them"
        )
        raise InputError(msg)
    if action == "extend" and ref.oov_idx is not None:
        msg = f"--vocab-from {ref.path!r} reserved index {ref.oov_idx} for unknown items, so --extend cannot append there; use --unknown oov instead"
        raise InputError(msg)
    if action != "drop" or n_rows == 0:
        return None, report
    if n_rows == rows_before:
        msg = f"no interactions left: every item of the log is unseen in {ref.path!r}; pass --unknown oov or --extend, or check --vocab-from"
        raise InputError(msg)
    return table < 0, report


def fit_reused(
    inter: Interactions, log: Log, config: BuildConfig
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """Stage 2 with ``--vocab-from``: (users, items, user_idx per row, item_idx per row)."""
    counts = CodeCounts.of(inter.user, inter.item, log, config)
    users, items, utable, itable = fit_reused_counted(log, config, counts)
    return users, items, lookup(utable, inter.user), lookup(itable, inter.item)


def fit_reused_counted(
    log: Log, config: BuildConfig, counts: CodeCounts
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """:func:`fit_reused` from the kept rows' count tables: (users, items, code -> user_idx, code -> item_idx)."""
    ref = load_reference(config.vocab.vocab_from)
    item_ids, itable = _item_table(ref, log)
    n_old = len(ref.items)
    oov_idx = None
    if config.vocab.extend:
        itable, added, _ = extend_table_counted(itable, counts.items, item_ids, config.item_order, n_old + 1, counts.item_first)
        all_items = pa.concat_arrays([ref.items.ids, item_ids.take(pa.array(added, pa.int64()))])
    else:
        all_items = ref.items.ids
        if config.vocab.unknown == "oov":
            oov_idx = n_old + 1
            itable = np.where(itable < 0, oov_idx, itable).astype(np.int32)
    item_counts = counts_by_index(itable, counts.items, len(all_items) + 2)[1 : len(all_items) + 1]
    items = Vocabulary(ids=all_items, counts=item_counts, start=1, oov_idx=oov_idx)

    user_ids = _align(ref.users, log.user_ids, "user", ref.path)
    utable = reuse_table(ref.users.ids, user_ids, start=0)
    utable, uadded, _ = extend_table_counted(utable, counts.users, user_ids, config.user_order, len(ref.users), counts.user_first)
    all_users = pa.concat_arrays([ref.users.ids, user_ids.take(pa.array(uadded, pa.int64()))])
    users = Vocabulary(ids=all_users, counts=counts_by_index(utable, counts.users, len(all_users)), start=0)
    return users, items, utable, itable


def reuse_meta(
    config: BuildConfig, users: Vocabulary, items: Vocabulary, steps: list[dict[str, Any]], num_interactions: int
) -> dict[str, Any] | None:
    """meta.json's ``vocab_reuse`` section (None without ``--vocab-from``).

    ``unseen_rows`` is the log's rows of unseen items at this step, before the later filters
    (``--dedup``, the count bounds, ...) remove some of them; with an ``oov_idx``,
    ``oov_interactions`` is how many interactions of the output hold it: the ``num_interactions``
    written less what items.parquet counts (``items.counts``: the kept rows of items 1..N), so it
    is counted after every filter, by every engine, from the figures the output holds.
    """
    if config.vocab.vocab_from is None:
        return None
    step = next(s for s in steps if s["step"] == STEP)
    ref = load_reference(config.vocab.vocab_from)
    oov = {} if items.oov_idx is None else {"oov_interactions": num_interactions - int(items.counts.sum())}
    return {
        "from": config.vocab.vocab_from,
        "mode": "extend" if config.vocab.extend else "frozen",
        "unknown": None if config.vocab.extend else config.vocab.unknown,
        "base_num_items": len(ref.items),
        "base_num_users": len(ref.users),
        "base_sha256": {f: ref.files[f]["sha256"] for f in ("items.parquet", "users.parquet") if f in ref.files},
        "new_items": len(items) - len(ref.items),
        "new_users": len(users) - len(ref.users),
        "unseen_items": step["unseen_items"],
        "unseen_items_share": round(step["unseen_items"] / step["items"], 6) if step["items"] else 0.0,
        "unseen_rows": step["unseen_rows"],
        "unseen_rows_share": round(step["unseen_rows"] / step["rows_before"], 6) if step["rows_before"] else 0.0,
        **oov,
        "count": "interactions in this build (0 for an id of the reused vocabulary absent from this log)",
    }
