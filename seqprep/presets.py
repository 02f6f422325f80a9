"""``--preset NAME``: a published preprocessing script's rules as seqprep options.

A preset is nothing but a documented set of options: :func:`expand` puts its values under the
options given (an option given explicitly wins), ``seqprep build --preset NAME --explain`` prints
them as flags, and meta.json records the preset's name beside the options it expanded to. Each
preset names the script it reproduces and the data it was checked on (docs/presets.md states every
quirk of the script and the tests that compare seqprep's output with an independent reference).

>>> expand("sasrec", {"min_user_count": 10})["min_user_count"], expand("sasrec", {})["kcore_rounds"]
(10, 1)
>>> flags(preset_named("sasrec").options)[:4]
['--min-user-count', '5', '--min-item-count', '5']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = ["PRESETS", "Preset", "expand", "flags", "preset_named"]


@dataclass(frozen=True)
class Preset:
    """A published script's rules: the options they map to, where they come from, what they assume."""

    name: str
    source: str  # the script (repository and path) whose rules these are
    options: dict[str, Any]  # flat make_config keywords
    input: str  # the input layout the script reads, and the flags it needs when a log differs
    checked: str  # the real data the preset was compared on


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="sasrec",
            source="kang205/SASRec data/DataProcessing.py",
            options={
                "min_user_count": 5,
                "min_item_count": 5,
                "kcore_rounds": 1,
                "dedup": "none",
                "user_order": "first-seen",
                "item_order": "first-seen",
                "exports": ("sasrec",),
            },
            input="Amazon review JSON (reviewerID, asin, unixReviewTime: found by name); any other log with --user-col/--item-col/--time-col",
            checked="Amazon 2018 Fashion 5-core JSON Lines (tests/test_presets.py)",
        ),
        Preset(
            name="srgnn",
            source="CRIPAC-DIG/SR-GNN datasets/preprocess.py (diginetica/sample), shared by NARM, STAMP and GCE-GNN",
            options={
                "user_col": "session_id",
                "item_col": "item_id",
                "time_col": "eventdate,timeframe",
                "min_user_count": 2,
                "min_item_count": 5,
                "kcore_passes": ("user", "item", "user"),
                "dedup": "none",
                "user_order": "date",
                "item_order": "sequence",
                "split": "days:7",
                "vocab_from_train": True,
                "exports": ("srgnn",),
            },
            input="the Diginetica train-item-views.csv layout (';', session_id, item_id, timeframe, eventdate)",
            checked="the Diginetica sample SR-GNN ships, datasets/sample_train-item-views.csv (tests/test_presets.py)",
        ),
    )
}


def preset_named(name: str) -> Preset:
    """The preset called ``name``; an unknown name fails naming the presets."""
    if name not in PRESETS:
        msg = f"--preset {name!r} is not a preset; presets are {', '.join(PRESETS)} (see docs/presets.md)"
        raise ConfigError(msg)
    return PRESETS[name]


def expand(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The options of preset ``name`` with ``given`` on top (an option given explicitly wins)."""
    return {**preset_named(name).options, **given}


def flags(options: dict[str, Any]) -> list[str]:
    """``options`` as ``seqprep build`` arguments (what ``--explain`` prints)."""
    out: list[str] = []
    for key, value in options.items():
        flag = "--" + {"exports": "export"}.get(key, key).replace("_", "-")
        if value is True:
            out.append(flag)
        elif isinstance(value, tuple) and key == "exports":
            for v in value:
                out += [flag, str(v)]
        elif isinstance(value, tuple):
            out += [flag, ",".join(value)]
        else:
            out += [flag, str(value)]
    return out
