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

from typing import Any

from .errors import ConfigError
from .records import record

__all__ = ["PRESETS", "Preset", "expand", "flags", "preset_named"]


@record
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
            name="bert4rec",
            source=(
                "FeiSun/BERT4Rec@615eaf2 data/beauty.txt (the rules that file shows: the repository has no script "
                "from raw reviews to it) and util.py data_partition@b5a1c2e (the split gen_data_fin.py reads)"
            ),
            options={
                "dedup": "first",
                "min_user_count": 5,
                "min_item_count": 0,
                "user_order": "first-seen",
                "item_order": "sequence",
                "split": "loo",
                "exports": ("sasrec",),
            },
            input="any log with a user, item and time column (found by name, or --user-col/--item-col/--time-col)",
            checked="Amazon 2018 Magazine Subscriptions ratings CSV (tests/test_presets.py); the rules against the published beauty.txt",
        ),
        Preset(
            name="caser",
            source=(
                "graytowne/caser_pytorch interactions.py@26ef449 (Interactions, to_sequence) and train_caser.py@99b8963 "
                "(L=5, T=3), on the ML-1M files it ships (@c4e10e4 datasets/ml1m: per user 70 / 10 / 20 in time order)"
            ),
            options={
                "min_user_count": 5,
                "min_item_count": 5,
                "user_order": "id",
                "item_order": "sequence",
                "split": "ratio:0.7,0.1,0.2",
                "vocab_from_train": True,
                "windows": "5:3",
                "max_len": 5,
                "pad": "left",
            },
            input="any log with a user, item and time column (found by name, or --user-col/--item-col/--time-col)",
            checked=(
                "MovieLens 100K u.data (ids, windows, valid/test targets); Caser's own ML-1M validation and test parts "
                "(their per-user sizes fit the ceil cut), the test part read as a training file (tests/test_presets.py)"
            ),
        ),
        Preset(
            name="recbole",
            source=(
                "RUCAIBox/RecBole 1.2.1 (PyPI wheel): properties/quick_start_config/sequential.yaml (eval_args split "
                "LS valid_and_test, order TO; dataset.py _split_index_by_leave_one_out), properties/dataset/sample.yaml and ml-100k.yaml (load_col, no filters, "
                "MAX_ITEM_LIST_LENGTH 50), data/dataset/dataset.py and sequential_dataset.py"
            ),
            options={
                "dedup": "none",
                "min_user_count": 0,
                "min_item_count": 0,
                "user_order": "first-seen",
                "item_order": "first-seen",
                "split": "loo:recbole",
                "max_len": 50,
                "pad": "right",
            },
            input="a RecBole atomic .inter file (user_id:token, item_id:token, timestamp:float: found by name); any other log with --user-col/--item-col/--time-col",
            checked=(
                "RecBole's own ml-100k.inter (recbole 1.2.1 dataset_example), with and without the ml-1m filters; "
                "Magazine Subscriptions, users of 1, 2 and 3 interactions included (tests/test_presets.py)"
            ),
        ),
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
        elif value is False:  # a preset's flag turned off
            out.append("--no-" + flag[2:])
        elif value is None:  # a preset's value dropped (--split none)
            out += [flag, "none"]
        elif isinstance(value, tuple) and key == "exports":
            for v in value:
                out += [flag, str(v)]
        elif isinstance(value, tuple):
            out += [flag, ",".join(value)]
        else:
            out += [flag, str(value)]
    return out
