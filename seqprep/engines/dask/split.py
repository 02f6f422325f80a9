"""Splits, truncation, windows and negatives on a Dask cluster, decided and prepared per output part
on its worker (each part holds whole users) by the one per-user-range split API
(:mod:`seqprep.steps.splits`: plan, ``split_range``, ``prepare_range``), so the output is the local
engine's, byte for byte:

1. the client plans the split from the user counts (``plan_split``; for ``--split time:Q1,Q2`` the
   quantiles need every timestamp, which are then gathered);
2. each part decides its users' split and its facts on its worker; the client adds the facts up
   (``merge_tallies``) and broadcasts the completed plan;
3. each part prepares its sequences to write, split rows, windows and negatives on its worker (the
   negatives come from one random stream per row, so any cut into parts draws the same);
4. the client fetches the prepared parts in user order and writes them: the sequences parts, the
   split files (``SplitWriter``, row groups joined across parts), the tallies into meta.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...config import BuildConfig, EventOptions
from ...kernels import csr_offsets
from ...kernels.splits import days_parts, time_quantile
from ...model import Sequences
from ...steps import splits
from ...steps.events import target_positions
from .write import part_sequences

__all__ = ["decide", "plan", "prepare"]


def plan(
    client: Any, futures: list[Any], config: BuildConfig, unit: str, num_items: int, user_counts: np.ndarray, dates: np.ndarray | None = None
) -> splits.SplitPlan:
    """The split's plan over all users (what every part's decision needs). ``--split days``: decided
    by the local ``decide_parts`` on the users' ``dates`` (one per user index), every user taken as
    one position - which sequences are train or test depends on their date alone."""
    if config.split.rule == "days":
        assert dates is not None
        one_each = np.arange(len(user_counts) + 1, dtype=np.int64)
        _, info = splits.decide_parts(one_each, np.zeros(len(user_counts), np.int64), config.split, unit, None, dates)
        return splits.decided_plan(config.split, num_items, info, csr_offsets(np.asarray(user_counts)))
    quantile = None
    if config.split.rule == "time" and config.split.fractions is not None:
        times = np.concatenate(client.gather(client.map(_timestamps, futures))) if futures else np.zeros(0, np.int64)

        def quantile(q: float) -> Any:
            return time_quantile(times, q)

    return splits.plan_split(config.split, unit, num_items, user_counts, quantile)


def _timestamps(part: dict[str, Any]) -> np.ndarray:
    return part["timestamps"]


def _decide(part: dict[str, Any], plan: splits.SplitPlan, events: EventOptions, dates: np.ndarray | None = None) -> tuple[np.ndarray | None, dict[str, Any]]:
    seqs = part_sequences(part)
    targets = target_positions(seqs, events)
    if plan.rule == "days":  # the local kernel on this part's users, with the latest date of all
        assert dates is not None
        offsets = np.append(seqs.offsets, seqs.offsets[-1] + 1)  # one more user of one row, dated the latest
        last = np.datetime64(plan.info["last_day"], "D").astype(np.int64)  # (meta.json holds it as an ISO date)
        decided, _ = days_parts(offsets, np.append(dates[part["lo"] : part["hi"]], last), plan.info["test_days"])
        decided = decided[:-1]
        return decided, {"info": {}, **splits.range_facts(plan, seqs, decided, targets)}
    return splits.split_range(plan, seqs, targets, user0=part["lo"])


def _facts(decided: tuple[np.ndarray | None, dict[str, Any]]) -> dict[str, Any]:
    return decided[1]


def decide(
    client: Any, futures: list[Any], plan: splits.SplitPlan, events: EventOptions = EventOptions(), dates: np.ndarray | None = None
) -> tuple[list[Any], splits.SplitPlan]:
    """Each part's split decided on its worker -> (the decisions, futures; the plan completed from
    their facts, added up in user order). ``events``: which positions may be targets (``--target-events``)."""
    shared = client.scatter(plan, broadcast=True, hash=False)
    dates = None if dates is None else client.scatter(dates, broadcast=True, hash=False)
    decided = [client.submit(_decide, f, shared, events, dates, pure=False) for f in futures]
    facts = client.gather(client.map(_facts, decided))
    return decided, plan.with_facts(splits.merge_tallies(facts))


def _prepare(
    part: dict[str, Any], decided: tuple[np.ndarray | None, dict[str, Any]], plan: splits.SplitPlan, events: EventOptions
) -> dict[str, Any]:
    seqs = part_sequences(part)
    seqs, extras, tally = splits.prepare_range(plan, seqs, decided[0], target_positions(seqs, events), user0=part["lo"])
    return {"lo": part["lo"], "hi": part["hi"], "sequences": seqs, "extras": extras, "tally": tally}


def prepare(client: Any, futures: list[Any], decided: list[Any], plan: splits.SplitPlan, events: EventOptions = EventOptions()) -> list[Any]:
    """Each part's sequences to write, extras and tally, prepared on its worker (futures, user order)."""
    shared = client.scatter(plan, broadcast=True, hash=False)
    return [client.submit(_prepare, f, d, shared, events, pure=False) for f, d in zip(futures, decided)]


def as_part(prepared: dict[str, Any], seqs: Sequences) -> dict[str, Any]:
    """A prepared part in the layout of a computed part (for the part writers)."""
    return {
        "lo": prepared["lo"],
        "hi": prepared["hi"],
        "offsets": seqs.offsets,
        "items": seqs.items,
        "timestamps": seqs.timestamps,
        "ratings": seqs.ratings,
        "session_ids": seqs.session_ids,
        "features": seqs.features,
    }
