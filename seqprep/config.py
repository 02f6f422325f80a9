"""Every option of a build, as frozen dataclasses.

The CLI and the Python API both end up here: flags or keyword arguments -> :func:`make_config` ->
:class:`BuildConfig` -> ``validate()`` -> the pipeline. ``to_dict()`` is what meta.json records under
``options`` (enough to repeat the build) and ``from_dict()`` reads it back.

Options are grouped (``read`` for how inputs are parsed, the rest for what is built); a flat keyword
such as ``sep=";"`` is routed to the group that owns it, so ``seqprep.build(..., sep=";")`` works.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import field, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

from .errors import ConfigError, where_message
from .records import record
from .timeunits import check_window, parse_duration, parse_time

if TYPE_CHECKING:  # imported by parse_where: a build without --where never loads the predicates
    from .kernels.predicates import Predicate

__all__ = [
    "ReadOptions",
    "FilterOptions",
    "SessionOptions",
    "SplitOptions",
    "EngineOptions",
    "ResourceOptions",
    "BuildConfig",
    "parse_size",
    "make_config",
    "ItemOrder",
    "UserOrder",
    "OutputFormat",
    "IdType",
    "InputFormat",
    "VocabOptions",
    "FeatureOptions",
    "EventOptions",
    "FeatureKind",
    "AttributeRole",
    "ATTRIBUTE_ROLES",
    "RECBOLE_KINDS",
    "EmitOptions",
    "Unknown",
    "StreamFormat",
    "ExportName",
    "OffsetUnit",
    "parse_where",
]

ItemOrder = Literal["frequency", "first-seen", "id", "sequence"]
UserOrder = Literal["id", "first-seen", "date"]
OutputFormat = Literal["parquet", "npz"]
IdType = Literal["auto", "int", "str"]
InputFormat = Literal["auto", "csv", "jsonl", "parquet"]
DedupMode = Literal["none", "exact", "first", "last", "consecutive"]
Unknown = Literal["drop", "oov", "error"]
StreamFormat = Literal["arrow", "jsonl"]
ExportName = Literal["sasrec", "seqlines", "recbole", "srgnn"]
STDOUT = "-"
Engine = Literal["local", "dask"]

ROLES = ("user", "item", "time", "rating")
OffsetUnit = Literal["s", "ms", "us", "ns"]

#: Field metadata of the options added after meta.json's layout was fixed: ``to_dict()`` leaves such
#: an option out while it has its default, so the meta.json of a build that does not use it keeps its
#: bytes (``from_dict()`` fills the default back in).
SINCE_V1 = {"omit_default": True}


def _check_choice(name: str, value: Any, kind: Any) -> None:
    allowed = get_args(kind)
    if value not in allowed:
        msg = f"{name} must be one of {', '.join(allowed)}, not {value!r}"
        raise ConfigError(msg)


@record
class ReadOptions:
    """How input logs are parsed. ``None`` means "detect it"."""

    sep: str | None = None
    header: bool | None = None
    names: tuple[str, ...] | None = None
    user_col: str | None = None
    item_col: str | None = None
    time_col: str | None = None
    rating_col: str | None = None
    id_type: IdType = "auto"
    input_format: InputFormat = "auto"
    session_col: str | None = field(default=None, metadata=SINCE_V1)
    time_offset_unit: OffsetUnit | None = field(default=None, metadata=SINCE_V1)

    @property
    def time_cols(self) -> tuple[str, ...]:
        """``--time-col A,B,...`` as its column names (one name, or none when it is detected)."""
        if self.time_col is None:
            return ()
        return tuple(c.strip() for c in self.time_col.split(",")) if "," in self.time_col else (self.time_col,)

    def validate(self) -> None:
        _check_choice("id_type", self.id_type, IdType)
        _check_choice("input_format", self.input_format, InputFormat)
        cols = self.time_cols
        if len(cols) > 1 and (len(set(cols)) != len(cols) or not all(cols)):
            msg = f"--time-col {self.time_col!r} has empty or repeated names; give distinct columns, e.g. --time-col eventdate,timeframe"
            raise ConfigError(msg)
        if self.time_offset_unit is not None:
            _check_choice("time_offset_unit", self.time_offset_unit, OffsetUnit)
            if len(cols) < 2:
                msg = (
                    "--time-offset-unit sets the unit of the offset columns of --time-col BASE,OFFSET; "
                    "name the offsets in --time-col, or drop --time-offset-unit"
                )
                raise ConfigError(msg)
        if self.session_col is not None:
            if not self.session_col or "," in self.session_col:
                msg = f"--session-col {self.session_col!r} is not one column name; pass e.g. --session-col session_id"
                raise ConfigError(msg)
            if self.user_col is not None and self.user_col.lower() == self.session_col.lower():
                msg = (
                    f"--session-col and --user-col both name {self.session_col!r}; key the sequences by that "
                    "column with --user-col alone, or name the users' column in --user-col"
                )
                raise ConfigError(msg)
            if self.session_col.lower() in (c.lower() for c in cols):
                msg = f"--session-col {self.session_col!r} is also a --time-col column; name the session column in --session-col only"
                raise ConfigError(msg)
        if self.sep is not None and (self.sep == "" or "\n" in self.sep or "\r" in self.sep):
            msg = f"--sep {self.sep!r} is not a usable separator; pass one or more characters such as ',' or '::'"
            raise ConfigError(msg)
        if self.names is not None:
            if len(set(self.names)) != len(self.names) or any(not n for n in self.names):
                msg = f"--names {','.join(self.names)!r} has empty or repeated names; give one distinct name per column"
                raise ConfigError(msg)

    def role_column(self, role: str) -> str | None:
        return getattr(self, f"{role}_col")


PadSide = Literal["left", "right"]
NegativeSampler = Literal["uniform", "popularity"]


@record
class SplitOptions:
    """Truncation/padding, the evaluation split and the training inputs built from it.

    ``split`` is ``None`` (no split), ``"loo"``, ``"loo:recbole"`` (RecBole's leave-one-out: a
    user with exactly 3 interactions gets a test row and no valid row), ``"time"`` (with
    ``valid_from``/``test_from``), ``"time:Q1,Q2"`` (timestamp quantiles),
    ``"users:TRAIN,VALID,TEST"`` (fractions of users), ``"ratio:TRAIN,VALID,TEST"`` (fractions of
    each user's interactions, in time order) or ``"days:N"``.
    ``valid_from``/``test_from`` are epoch numbers or ISO-8601 dates, as text or numbers.

    >>> SplitOptions(split="users:0.8,0.1,0.1").validate().fractions
    (0.8, 0.1, 0.1)
    >>> SplitOptions(split="ratio:0.7,0.1,0.2").validate().ratio_cuts
    (7, 8, 10)
    """

    max_len: int | None = None
    pad: PadSide = "left"
    truncate: bool = False
    split: str | None = None
    valid_from: str | None = None
    test_from: str | None = None
    seed: int = 0
    vocab_from_train: bool = False
    windows: str | None = None
    eval_negatives: int = 0
    negatives: NegativeSampler = "uniform"

    @property
    def rule(self) -> str | None:
        """``loo``, ``time``, ``users``, ``ratio``, ``days`` or ``None``."""
        return None if self.split is None else self.split.split(":", 1)[0].strip()

    @property
    def loo_variant(self) -> str | None:
        """``recbole`` for ``--split loo:recbole``; ``None`` for ``--split loo`` and other rules."""
        if self.rule != "loo" or ":" not in str(self.split):
            return None
        return str(self.split).split(":", 1)[1].strip()

    @property
    def ratio_cuts(self) -> tuple[int, int, int] | None:
        """``--split ratio:TRAIN,VALID,TEST`` as exact integers ``(a, b, d)``: ``a / d`` = TRAIN and
        ``b / d`` = TRAIN + VALID, the fractions read as exact decimals (``0.7`` is 7/10)."""
        if self.rule != "ratio":
            return None
        from fractions import Fraction  # (here: fractions and decimal are imported by ratio splits only)

        text = str(self.split).split(":", 1)[1] if ":" in str(self.split) else ""
        try:
            fr = [Fraction(x.strip()) for x in text.split(",")]
        except (ValueError, ZeroDivisionError):
            msg = f"--split {self.split!r}: {text!r} is not a comma-separated list of numbers; e.g. --split ratio:0.7,0.1,0.2"
            raise ConfigError(msg) from None
        if len(fr) != 3 or min(fr) < 0 or sum(fr) != 1 or fr[0] == 0:
            msg = f"--split {self.split!r}: give three fractions TRAIN,VALID,TEST (TRAIN > 0) that sum to exactly 1, as in --split ratio:0.7,0.1,0.2"
            raise ConfigError(msg)
        d = math.lcm(*(f.denominator for f in fr))
        if d > 10**6:
            msg = f"--split {self.split!r}: give the fractions with at most 6 decimals, as in --split ratio:0.7,0.1,0.2"
            raise ConfigError(msg)
        return int(fr[0] * d), int((fr[0] + fr[1]) * d), d

    @property
    def fractions(self) -> tuple[float, ...] | None:
        """The numbers after ``time:``, ``users:``, ``ratio:`` or ``days:``; ``None`` when there are none."""
        if self.split is None or ":" not in self.split or self.rule == "loo":
            return None
        if self.rule == "ratio":  # read as exact decimals (or a/b)
            a, b, d = self.ratio_cuts  # type: ignore[misc]
            return a / d, (b - a) / d, (d - b) / d
        text = self.split.split(":", 1)[1]
        try:
            return tuple(float(x) for x in text.split(","))
        except ValueError:
            msg = f"--split {self.split!r}: {text!r} is not a comma-separated list of numbers; e.g. --split users:0.8,0.1,0.1"
            raise ConfigError(msg) from None

    @property
    def window_shape(self) -> tuple[int, int] | None:
        """``(L, T)`` of ``--windows L:T``."""
        if self.windows is None:
            return None
        parts = str(self.windows).split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            msg = f"--windows {self.windows!r} is not L:T with two positive integers; e.g. --windows 5:3 (Caser's L and T)"
            raise ConfigError(msg)
        return int(parts[0]), int(parts[1])

    def validate(self) -> SplitOptions:
        _check_choice("pad", self.pad, PadSide)
        _check_choice("negatives", self.negatives, NegativeSampler)
        if self.max_len is not None and (not isinstance(self.max_len, int) or self.max_len < 1):
            msg = f"--max-len must be a positive integer, not {self.max_len!r}; e.g. --max-len 50"
            raise ConfigError(msg)
        if self.truncate and self.max_len is None:
            msg = "--truncate needs --max-len N (how many of the most recent items to keep)"
            raise ConfigError(msg)
        rule = self.rule
        if rule not in (None, "loo", "time", "users", "ratio", "days"):
            msg = f"--split {self.split!r} is not a split rule; use loo, loo:recbole, time (with --valid-from/--test-from), time:Q1,Q2, users:TRAIN,VALID,TEST, ratio:TRAIN,VALID,TEST or days:N"
            raise ConfigError(msg)
        if rule == "loo" and ":" in str(self.split) and self.loo_variant != "recbole":
            msg = f"--split {self.split!r}: loo takes no parameters but the variant recbole; use --split loo or --split loo:recbole"
            raise ConfigError(msg)
        self.ratio_cuts  # noqa: B018 - validates --split ratio:...
        fr = self.fractions
        bounds = (self.valid_from is not None) + (self.test_from is not None)
        if rule == "time":
            if fr is None and bounds != 2:
                msg = "--split time needs --valid-from T1 and --test-from T2 (epoch or ISO date), or quantiles as in --split time:0.8,0.9"
                raise ConfigError(msg)
            if fr is not None and (len(fr) != 2 or not 0 < fr[0] <= fr[1] < 1):
                msg = f"--split {self.split!r}: give two quantiles 0 < Q1 <= Q2 < 1, as in --split time:0.8,0.9"
                raise ConfigError(msg)
            if fr is not None and bounds:
                msg = "--split time:Q1,Q2 and --valid-from/--test-from both set the bounds; give only one of them"
                raise ConfigError(msg)
        elif bounds:
            msg = "--valid-from and --test-from only apply to --split time; add --split time or drop them"
            raise ConfigError(msg)
        for flag, value in (("--valid-from", self.valid_from), ("--test-from", self.test_from)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
                msg = f"{flag} must be an epoch number or an ISO-8601 date as text, not {type(value).__name__}; e.g. '2018-01-01'"
                raise ConfigError(msg)
            if value is not None:
                parse_time(value, flag)  # fails now, before any input is read
        if rule == "days" and (fr is None or len(fr) != 1 or fr[0] != int(fr[0]) or fr[0] < 1):
            msg = f"--split {self.split!r}: give the test days as one whole number >= 1, as in --split days:7"
            raise ConfigError(msg)
        if rule == "users":
            if fr is None or len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1) > 1e-9:
                msg = f"--split {self.split!r}: give three fractions that sum to 1, as in --split users:0.8,0.1,0.1"
                raise ConfigError(msg)
        if not isinstance(self.seed, int) or self.seed < 0:
            msg = f"--seed must be a non-negative integer, not {self.seed!r}"
            raise ConfigError(msg)
        if not isinstance(self.eval_negatives, int) or self.eval_negatives < 0:
            msg = f"--eval-negatives must be a non-negative integer, not {self.eval_negatives!r}"
            raise ConfigError(msg)
        if rule is None and self.vocab_from_train:
            msg = "--vocab-from-train needs a split; add --split loo, time, users or ratio"
            raise ConfigError(msg)
        if rule is None and self.eval_negatives:
            msg = "--eval-negatives needs valid/test rows; add --split loo, time, users or ratio"
            raise ConfigError(msg)
        self.window_shape  # noqa: B018 - validates --windows
        return self


@record
class FilterOptions:
    """Row-removing cleaning steps, applied in one fixed order (see :mod:`seqprep.steps.filters`).

    ``since``/``until`` are epoch numbers (in the log's own unit) or ISO-8601 dates; the window is
    ``since <= t < until``. A count bound of 0 is off; ``kcore_rounds=None`` repeats to the fixpoint.
    """

    min_rating: float | None = None
    since: str | int | float | None = None
    until: str | int | float | None = None
    dedup: DedupMode = "none"
    min_user_count: int = 0
    min_item_count: int = 0
    kcore_rounds: int | None = None
    where: tuple[str, ...] = field(default=(), metadata=SINCE_V1)
    kcore_passes: tuple[str, ...] = field(default=(), metadata=SINCE_V1)

    def __post_init__(self) -> None:
        if isinstance(self.where, str):
            object.__setattr__(self, "where", (self.where,))
        elif not isinstance(self.where, tuple):
            object.__setattr__(self, "where", tuple(self.where))
        if self.kcore_passes is None:  # the CLI's "not given"
            object.__setattr__(self, "kcore_passes", ())
        elif isinstance(self.kcore_passes, str):  # "user,item,user"
            object.__setattr__(self, "kcore_passes", tuple(p.strip() for p in self.kcore_passes.split(",")))
        elif not isinstance(self.kcore_passes, tuple):
            object.__setattr__(self, "kcore_passes", tuple(self.kcore_passes))

    def validate(self) -> None:
        _check_choice("dedup", self.dedup, DedupMode)
        for text in self.where:
            parse_where(text)
        if self.min_rating is not None and (
            isinstance(self.min_rating, bool)
            or not isinstance(self.min_rating, (int, float))
            or self.min_rating != self.min_rating
        ):
            msg = f"--min-rating {self.min_rating!r} is not a number; pass e.g. --min-rating 4"
            raise ConfigError(msg)
        for flag, value in (("--min-user-count", self.min_user_count), ("--min-item-count", self.min_item_count)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                msg = f"{flag} {value!r} is not a count; pass a whole number >= 1 (0 turns it off)"
                raise ConfigError(msg)
        if self.kcore_rounds is not None:
            rounds = self.kcore_rounds
            if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
                msg = (
                    f"--kcore-rounds {self.kcore_rounds!r} is not a round count; "
                    "pass 1 or more, or leave it out to repeat until every bound holds"
                )
                raise ConfigError(msg)
            if self.min_user_count <= 1 and self.min_item_count <= 1:
                msg = "--kcore-rounds needs --min-user-count or --min-item-count above 1; add one, or drop --kcore-rounds"
                raise ConfigError(msg)
        if self.kcore_passes:
            text = ",".join(self.kcore_passes)
            if any(p not in ("user", "item") for p in self.kcore_passes):
                msg = f"--kcore-passes {text!r}: each pass is user or item, e.g. --kcore-passes user,item,user"
                raise ConfigError(msg)
            if self.kcore_rounds is not None:
                msg = "--kcore-passes and --kcore-rounds both set how k-core repeats; pass only one of them"
                raise ConfigError(msg)
            if self.min_user_count <= 1 and self.min_item_count <= 1:
                msg = "--kcore-passes needs --min-user-count or --min-item-count above 1; add one, or drop --kcore-passes"
                raise ConfigError(msg)
        check_window(self.since, self.until)


@record
class SessionOptions:
    """``session_gap``: split each user's stream at gaps longer than this (e.g. ``"30m"``); None = off."""

    session_gap: str | int | float | None = None

    def validate(self) -> None:
        if self.session_gap is not None:
            parse_duration(self.session_gap)


FeatureKind = Literal["cat", "num", "tokens"]
AttributeRole = Literal["item", "user"]
#: The attribute tables, in the order they are read and written.
ATTRIBUTE_ROLES: tuple[AttributeRole, ...] = ("item", "user")
TIME_FEATURES = ("delta", "delta-log2", "hour", "weekday", "interval")


@record
class FeatureOptions:
    """Columns that travel with the items (``--feature COL[:KIND]``), time features derived from the
    timestamps (``--time-feature NAME``), and item/user attribute tables.

    KIND: ``cat`` (a vocabulary 1..K, 0 = padding and missing), ``num`` (float32, NaN = missing) or
    ``tokens:SEP`` (several categorical values in one field). Without KIND a number column is ``num``
    and anything else ``cat`` (a JSON/Parquet list is ``tokens``). Time features: ``delta``,
    ``delta-log2``, ``hour``, ``weekday``, ``interval:K``.

    Attribute tables (``--item-table FILE --item-key COL --item-attr COL[:KIND]``, the same for
    users): KIND as for ``--feature``, or a RecBole type (``token`` = cat, ``token_seq`` = tokens
    split at spaces, ``float`` = num); without KIND a RecBole typed header gives it.

    >>> FeatureOptions(features=("genre", "price:num", "tags:tokens:|")).specs()[2]
    ('tags', 'tags', 'tokens', '|')
    >>> FeatureOptions(item_table="m.item", item_attrs=("class:token_seq",)).attribute_specs("item")
    (('class', 'class', 'tokens', ' '),)
    """

    features: tuple[str, ...] = ()
    time_features: tuple[str, ...] = ()
    item_table: str | None = None
    item_key: str | None = None
    item_attrs: tuple[str, ...] = ()
    user_table: str | None = None
    user_key: str | None = None
    user_attrs: tuple[str, ...] = ()

    def specs(self) -> tuple[tuple[str, str, FeatureKind | None, str | None], ...]:
        """(name, column, kind or None for the default, token separator) of each ``--feature``."""
        return tuple(parse_feature(text, "--feature") for text in self.features)

    def time_specs(self) -> tuple[tuple[str, int | None], ...]:
        """(name, parameter) of each ``--time-feature`` (the parameter: interval's K)."""
        out = []
        for text in self.time_features:
            name, _, param = str(text).partition(":")
            name = name.strip()
            if name not in TIME_FEATURES or (name == "interval") != bool(param):
                msg = (
                    f"--time-feature {text!r} is not a time feature; pass delta, delta-log2, hour, weekday "
                    "or interval:K (K: the largest interval, e.g. interval:256)"
                )
                raise ConfigError(msg)
            k = None
            if name == "interval":
                if not param.strip().isdigit() or int(param) < 1:
                    msg = f"--time-feature {text!r}: K must be a whole number >= 1, e.g. interval:256"
                    raise ConfigError(msg)
                k = int(param)
            out.append((name.replace("-", "_"), k))
        return tuple(out)

    def attribute_specs(self, role: AttributeRole) -> tuple[tuple[str, str, FeatureKind | None, str | None], ...]:
        """(name, column, kind or None for the default, token separator) of each ``--item-attr`` / ``--user-attr``."""
        attrs = self.item_attrs if role == "item" else self.user_attrs
        return tuple(parse_attribute(text, f"--{role}-attr") for text in attrs)

    def table(self, role: AttributeRole) -> str | None:
        """The ``--item-table`` / ``--user-table`` file."""
        return self.item_table if role == "item" else self.user_table

    def key(self, role: AttributeRole) -> str | None:
        """The ``--item-key`` / ``--user-key`` column (None: found by name)."""
        return self.item_key if role == "item" else self.user_key

    def validate(self) -> None:
        self._validate_tables()
        names = [n for n, *_ in self.specs()] + [n for n, _ in self.time_specs()]
        reserved = sorted(set(names) & RESERVED_COLUMNS)
        if reserved:
            msg = f"feature name {reserved[0]!r} is a column seqprep writes already; name it otherwise, e.g. --feature {reserved[0]}:cat is not allowed - rename the column with --names"
            raise ConfigError(msg)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            msg = f"feature {dup[0]!r} is given twice; give each --feature / --time-feature once"
            raise ConfigError(msg)
        for n in names:
            if "/" in n or "\\" in n or n.startswith("."):
                msg = f"feature name {n!r} cannot name a file features/{n}.parquet; rename the column (--names for CSV)"
                raise ConfigError(msg)
        _check_feature_columns(names)
        self._validate_attribute_names(names)

    def _validate_tables(self) -> None:
        for role in ATTRIBUTE_ROLES:
            table, attrs, key = self.table(role), self.attribute_specs(role), self.key(role)
            if table is None and attrs:
                msg = f"--{role}-attr needs --{role}-table FILE (the table that holds the attributes)"
                raise ConfigError(msg)
            if table is None and key is not None:
                msg = f"--{role}-key names the key column of --{role}-table FILE; add --{role}-table, or drop --{role}-key"
                raise ConfigError(msg)
            if table is not None and not attrs:
                msg = f"--{role}-table {table} needs --{role}-attr COL[:KIND] (the columns to keep; repeat for several)"
                raise ConfigError(msg)
            if table == STDOUT or (table is not None and not str(table).strip()):
                msg = f"--{role}-table {table!r}: an attribute table is read from a file (stdin, -, is the log's); pass its path"
                raise ConfigError(msg)

    def _validate_attribute_names(self, feature_names: list[str]) -> None:
        """Attribute names: distinct from each other and from the features (each name writes
        ``features/<name>.parquet``), and not a column of the attribute files."""
        taken = {n: f"--feature/--time-feature {n}" for n in feature_names}
        for role in ATTRIBUTE_ROLES:
            for name, *_ in self.attribute_specs(role):
                flag = f"--{role}-attr {name}"
                if name in RESERVED_COLUMNS or name in ATTRIBUTE_RESERVED:
                    msg = f"{flag}: {name!r} is a column seqprep writes already; attributes cannot take that name - rename the column in the table"
                    raise ConfigError(msg)
                if name in taken:
                    msg = (
                        f"{flag}: the name {name!r} is taken by {taken[name]}; each feature and attribute has its own "
                        "vocabulary file features/<name>.parquet, so the names must differ - drop one, or rename the column"
                    )
                    raise ConfigError(msg)
                taken[name] = flag


def _check_feature_columns(names: list[str]) -> None:
    """No two outputs' columns or arrays of the features (and none of the fixed ones) share a name:
    ``ts`` would give ``target_ts`` in valid.parquet, ``a_offsets`` the offsets of a token feature ``a``."""
    for base, prefixes in _FEATURE_LAYOUTS:
        owner = {b: None for b in base}
        for n in names:
            for prefix in prefixes:
                for key in (f"{prefix}{n}", f"{prefix}{n}_offsets"):
                    if key in owner:
                        other = "a column seqprep writes" if owner[key] is None else f"a column of feature {owner[key]!r}"
                        msg = f"feature name {n!r} would give the output column {key!r}, which is {other}; rename the column (--names for CSV)"
                        raise ConfigError(msg)
                    owner[key] = n


def _check_recbole_fields(names: list[str]) -> None:
    """A feature becomes the RecBole field ``<name>:<type>``: no ':' or white space, no clash."""
    for n in names:
        if ":" in n or any(c.isspace() for c in n):
            msg = f"--export recbole: feature {n!r} cannot name a RecBole field (name:type), it holds ':' or white space; rename the column (--names for CSV) or drop --export recbole"
            raise ConfigError(msg)
        if n in ("user_id", "item_id", "rating", "timestamp"):
            msg = f"--export recbole: feature {n!r} would repeat the RecBole field {n!r} the export writes already; rename the column (--names for CSV) or drop --export recbole"
            raise ConfigError(msg)


#: Per kind of output file: (its fixed columns and arrays, the prefixes of its feature columns).
_FEATURE_LAYOUTS = (
    (("user_idx", "user_id", "items", "timestamps", "ratings", "session_ids", "offsets", "padded"), ("", "padded_")),
    (
        ("user_idx", "user_id", "history", "history_offsets", "history_padded", "target", "target_ts", "negatives"),
        ("history_", "target_", "history_padded_"),
    ),
    (("inputs", "targets", "users"), ("inputs_", "targets_")),
)

#: Columns of the outputs a feature may not be named after.
RESERVED_COLUMNS = frozenset(
    {"user_idx", "user_id", "items", "timestamps", "ratings", "session_ids", "history", "target", "target_ts", "negatives", "offsets", "padded"}
)
#: Columns of item_features / user_features (and their RecBole export) an attribute may not be named after.
ATTRIBUTE_RESERVED = frozenset({"item_idx", "item_id"})

#: A RecBole type (an attribute's KIND, or a typed header's) -> (kind, token separator).
RECBOLE_KINDS: dict[str, tuple[FeatureKind, str | None]] = {"token": ("cat", None), "token_seq": ("tokens", " "), "float": ("num", None)}


def parse_attribute(text: str, flag: str) -> tuple[str, str, FeatureKind | None, str | None]:
    """``COL[:KIND]`` of ``--item-attr`` / ``--user-attr`` -> (name, column, kind or None, token separator).

    KIND is cat, num, tokens:SEP or a RecBole type (``token``, ``token_seq``: tokens at spaces, ``float``).

    >>> parse_attribute("genres:tokens:|", "--item-attr"), parse_attribute("class:token_seq", "--item-attr")
    (('genres', 'genres', 'tokens', '|'), ('class', 'class', 'tokens', ' '))
    """
    col, sep, rest = str(text).partition(":")
    if sep and rest.strip() in RECBOLE_KINDS:
        kind, token_sep = RECBOLE_KINDS[rest.strip()]
        return col.strip(), col.strip(), kind, token_sep
    if sep and rest.strip() == "float_seq":
        msg = f"{flag} {text!r}: a RecBole float_seq (a vector of numbers) has no seqprep kind; pass {col}:tokens:' ' to keep its values as categories, or leave the column out"
        raise ConfigError(msg)
    return parse_feature(text, flag)


def parse_feature(text: str, flag: str) -> tuple[str, str, FeatureKind | None, str | None]:
    """``COL[:KIND]`` -> (name, column, kind or None, token separator).

    KIND is read from the end (``:cat``, ``:num``, ``:tokens:SEP``), so a column whose name ends in
    ``:`` (the Amazon reviews' ``style.Color:``) is ``style.Color:`` alone, or ``style.Color::cat``.

    >>> parse_feature("genres:tokens:|", "--feature"), parse_feature("style.Color", "--feature")
    (('genres', 'genres', 'tokens', '|'), ('style.Color', 'style.Color', None, None))
    >>> parse_feature("style.Color::cat", "--feature"), parse_feature("style.Size:", "--feature")[2]
    (('style.Color:', 'style.Color:', 'cat', None), None)
    """
    text = str(text)
    tokens = re.fullmatch(r"(.*?):tokens:(.+)", text, flags=re.DOTALL)
    kinded = re.fullmatch(r"(.*):(cat|num)", text, flags=re.DOTALL)
    kind: str | None
    if tokens:
        col, kind, token_sep = tokens.group(1), "tokens", tokens.group(2)
    elif kinded:
        col, kind, token_sep = kinded.group(1), kinded.group(2), None
    else:
        col, kind, token_sep = text, None, None
    col = col.strip()
    if not col:
        msg = f"{flag} {text!r} names no column; pass {flag} COL or {flag} COL:cat|num|tokens:SEP"
        raise ConfigError(msg)
    if kind is None:
        head, _, tail = text.rpartition(":")
        if tail.strip() == "tokens":
            msg = f"{flag} {text!r}: tokens needs its separator, e.g. {flag} {head.strip()}:tokens:|"
            raise ConfigError(msg)
        if head and tail:  # a kind that is none of them (a trailing ':' belongs to the column's name)
            msg = f"{flag} {text!r}: the kind must be cat, num or tokens:SEP, e.g. {flag} {text.split(':')[0].strip()}:cat"
            raise ConfigError(msg)
    return col, col, kind, token_sep  # type: ignore[return-value]


KcoreOn = Literal["all", "target"]


@record
class EventOptions:
    """Multi-behaviour logs: ``event_col`` names the behaviour column (it becomes the categorical
    feature ``event``); ``target_events`` are the events to predict (split targets, Caser window
    targets, negatives; empty: every event); ``kcore_on``: which events k-core counts.

    >>> EventOptions(event_col="type", target_events=("buy",)).validate()
    """

    event_col: str | None = None
    target_events: tuple[str, ...] = ()
    kcore_on: KcoreOn = "all"

    def validate(self) -> None:
        _check_choice("kcore_on", self.kcore_on, KcoreOn)
        if self.event_col is None and (self.target_events or self.kcore_on != "all"):
            flag = "--target-events" if self.target_events else "--kcore-on target"
            msg = f"{flag} needs --event-col COL (the column that holds the kind of each interaction)"
            raise ConfigError(msg)
        if self.kcore_on == "target" and not self.target_events:
            msg = "--kcore-on target needs --target-events (which events are targets)"
            raise ConfigError(msg)
        if any(not str(e).strip() for e in self.target_events):
            msg = f"--target-events {','.join(self.target_events)!r} holds an empty event; pass e.g. --target-events buy,cart"
            raise ConfigError(msg)


@record
class VocabOptions:
    """Reusing the vocabularies of an earlier build (``--vocab-from OLD_OUT``)."""

    vocab_from: str | None = None
    unknown: Unknown = "drop"
    extend: bool = False

    def validate(self) -> None:
        _check_choice("unknown", self.unknown, Unknown)
        if self.vocab_from is None:
            if self.extend:
                msg = "--extend needs --vocab-from OLD_OUT (the build whose vocabularies to extend)"
                raise ConfigError(msg)
            if self.unknown != "drop":
                msg = f"--unknown {self.unknown} needs --vocab-from OLD_OUT (only a reused vocabulary has unknown items)"
                raise ConfigError(msg)
        elif self.extend and self.unknown != "drop":
            msg = f"--extend adds every unseen item, so --unknown {self.unknown} has nothing to do; pass one of the two"
            raise ConfigError(msg)


@record
class EmitOptions:
    """What is emitted besides the core files: the stdout stream format (``-o -``) and exports."""

    to: StreamFormat | None = None
    exports: tuple[ExportName, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.exports, str):
            object.__setattr__(self, "exports", (self.exports,))
        elif not isinstance(self.exports, tuple):
            object.__setattr__(self, "exports", tuple(self.exports))

    def validate(self) -> None:
        if self.to is not None:
            _check_choice("to", self.to, StreamFormat)
        for e in self.exports:
            _check_choice("export", e, ExportName)
        if len(set(self.exports)) != len(self.exports):
            msg = f"--export {', '.join(self.exports)} names an export twice; give each once"
            raise ConfigError(msg)


@record
class EngineOptions:
    """Where a build runs: in this process (``local``, the reference) or on a Dask cluster (``dask``).

    The engine never changes the result: the same vocabularies, order and meta counts either way.
    ``part_rows`` (interactions per ``sequences/part-NNNNN.parquet``) and ``block_bytes`` (input bytes
    per Dask read partition) only shape how the Dask engine splits its work and its output folder.
    """

    engine: Engine = "local"
    scheduler: str | None = None
    workers: int | None = None
    part_rows: int = 4_000_000
    block_bytes: int = 64 * 2**20

    def validate(self) -> None:
        _check_choice("engine", self.engine, Engine)
        if self.scheduler is not None and self.workers is not None:
            msg = "--scheduler and --workers both given; pass --scheduler to use a running cluster, or --workers N to start a local one"
            raise ConfigError(msg)
        if self.engine != "dask" and (self.scheduler is not None or self.workers is not None):
            msg = "--scheduler/--workers only apply to the Dask engine; add --engine dask"
            raise ConfigError(msg)
        if self.scheduler is not None and "://" not in self.scheduler and ":" not in self.scheduler:
            msg = f"--scheduler {self.scheduler!r} is not a scheduler address; pass one like tcp://HOST:8786"
            raise ConfigError(msg)
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            msg = f"--workers must be a whole number of at least 1, not {self.workers!r}"
            raise ConfigError(msg)
        for name, flag, value in (("part_rows", "--part-rows", self.part_rows), ("block_bytes", "--partition-size", self.block_bytes)):
            if not isinstance(value, int) or value < 1:
                msg = f"{flag} must be a positive whole number, not {value!r}"
                raise ConfigError(msg)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: str | int, name: str = "size") -> int:
    """A byte count from ``4GB`` (10^9), ``512MiB`` (2^20), ``1.5GiB`` or a plain number of bytes.

    >>> parse_size("4GB"), parse_size("512MiB"), parse_size(1024)
    (4000000000, 536870912, 1024)
    """
    import re

    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _SIZE_UNITS:
            msg = f"{name} {value!r} is not a size; write it like 4GB, 512MiB or 1073741824 (bytes)"
            raise ConfigError(msg)
        n = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if n <= 0:
        msg = f"{name} {value!r} must be more than 0 bytes; write it like 4GB or 512MiB"
        raise ConfigError(msg)
    return n


@record
class ResourceOptions:
    """How much of the machine a build may use. These never change the result, so meta.json omits them.

    ``threads``: cap on pyarrow's (and BLAS/OpenMP) threads, ``None`` = all cores. ``memory_limit``:
    above it the integer columns are spilled to a temporary folder and sorted user-range by
    user-range (``None`` = no limit). ``block_size``: bytes of input parsed per block while streaming.
    """

    threads: int | None = None
    memory_limit: str | int | None = None
    block_size: str | int = "16MiB"

    def validate(self) -> None:
        t = self.threads
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
            msg = f"--threads must be a whole number of at least 1, not {self.threads!r}; pass e.g. --threads 2"
            raise ConfigError(msg)
        self.memory_limit_bytes  # noqa: B018 - validates
        if self.block_size_bytes < 1024:
            msg = f"--block-size {self.block_size!r} is below 1KiB; pass e.g. --block-size 16MiB"
            raise ConfigError(msg)

    @property
    def memory_limit_bytes(self) -> int | None:
        return None if self.memory_limit is None else parse_size(self.memory_limit, "--memory-limit")

    @property
    def block_size_bytes(self) -> int:
        return parse_size(self.block_size, "--block-size")


@record
class BuildConfig:
    """One build: inputs, output and every choice that shapes the result."""

    inputs: tuple[str, ...]
    output: str
    formats: tuple[OutputFormat, ...] = ("parquet",)
    item_order: ItemOrder = "frequency"
    user_order: UserOrder = "id"
    overwrite: bool = False
    strict: bool = False
    preset: str | None = field(default=None, metadata=SINCE_V1)
    read: ReadOptions = field(default_factory=ReadOptions)
    filter: FilterOptions = field(default_factory=FilterOptions)
    session: SessionOptions = field(default_factory=SessionOptions)
    vocab: VocabOptions = field(default_factory=VocabOptions)
    feature: FeatureOptions = field(default_factory=FeatureOptions)
    event: EventOptions = field(default_factory=EventOptions)
    emit: EmitOptions = field(default_factory=EmitOptions)
    split: SplitOptions = field(default_factory=SplitOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)
    resources: ResourceOptions = field(default_factory=ResourceOptions)

    @property
    def to_stdout(self) -> bool:
        """``-o -``: the sequences go to stdout as a stream, no folder is written."""
        return self.output == STDOUT

    def validate(self) -> BuildConfig:
        if not self.inputs:
            msg = "no input given; pass one or more log files (or - for stdin)"
            raise ConfigError(msg)
        if not self.output:
            msg = "no output folder given; pass -o OUT"
            raise ConfigError(msg)
        if not self.formats:
            msg = "no output format given; pass -f parquet and/or -f npz"
            raise ConfigError(msg)
        for f in self.formats:
            _check_choice("format", f, OutputFormat)
        _check_choice("item_order", self.item_order, ItemOrder)
        _check_choice("user_order", self.user_order, UserOrder)
        self.read.validate()
        self.filter.validate()
        self.session.validate()
        self.vocab.validate()
        self.feature.validate()
        self.event.validate()
        if self.event.event_col is not None:
            attrs = {n for role in ("item", "user") for n, *_ in self.feature.attribute_specs(role)}  # type: ignore[arg-type]
            if "event" in {n for n, *_ in self.feature.specs()} | attrs:
                msg = "--event-col makes the feature 'event'; name your --feature or attribute otherwise"
                raise ConfigError(msg)
            numbers = [name for name, column, kind, _ in self.feature.specs() if column == self.event.event_col and kind == "num"]
            if numbers and self.event.target_events:
                col = self.event.event_col
                msg = (
                    f"--target-events picks events of --event-col {col}, and --feature {numbers[0]}:num reads that column as numbers; "
                    f"drop ':num' (the event feature already gives {col}'s categories) or pass --target-events with another --event-col"
                )
                raise ConfigError(msg)
        self.emit.validate()
        if self.to_stdout and self.emit.exports:
            msg = "--export writes files into the output folder, and -o - has none; pass -o OUT"
            raise ConfigError(msg)
        if "recbole" in self.emit.exports:
            _check_recbole_fields([n for n, *_ in self.feature.specs()] + [n for n, _ in self.feature.time_specs()])
        if self.to_stdout and (self.feature.item_table is not None or self.feature.user_table is not None):
            msg = "--item-table/--user-table write item_features/user_features files into the output folder, and -o - has none; pass -o OUT"
            raise ConfigError(msg)
        if not self.to_stdout and self.emit.to is not None:
            msg = f"--to {self.emit.to} sets the format of the stdout stream; pass -o - (or drop --to and use -f)"
            raise ConfigError(msg)
        self.split.validate()
        if "srgnn" in self.emit.exports and self.split.rule != "days":
            msg = "--export srgnn writes every prefix of the training and test sequences of a date split; add --split days:N"
            raise ConfigError(msg)
        if self.vocab.vocab_from is not None and (self.item_order == "sequence" or self.user_order == "date"):
            flag = "--item-order sequence" if self.item_order == "sequence" else "--user-order date"
            msg = f"{flag} orders a vocabulary fitted here, and --vocab-from reuses one (new ids are appended by frequency, first-seen or id); drop one of them"
            raise ConfigError(msg)
        if self.filter.kcore_passes and self.event.kcore_on != "all":
            msg = "--kcore-passes counts every event; drop --kcore-on target, or use --kcore-rounds"
            raise ConfigError(msg)
        if self.split.vocab_from_train and self.vocab.vocab_from is not None:
            msg = "--vocab-from-train fits a new vocabulary and --vocab-from reuses one; pass only one of them"
            raise ConfigError(msg)
        self.engine.validate()
        self.resources.validate()
        if self.preset is not None:
            from .presets import preset_named

            preset_named(self.preset)  # an unknown name fails here, naming the presets
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``BuildConfig.from_dict(c.to_dict()) == c``."""
        d = _jsonable(dataclasses.asdict(self))
        for g, gcls in _GROUPS.items():
            _without_unset(d[g], gcls)
        return _without_unset(d, BuildConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildConfig:
        d = dict(d)
        groups = {g: gcls(**_tuples(d.pop(g, {}), gcls)) for g, gcls in _GROUPS.items()}
        return cls(**groups, **_tuples(d, cls))

    def replace(self, **changes: Any) -> BuildConfig:
        return make_config(base=self, **changes)


def parse_where(text: Any) -> Predicate:
    """One ``--where`` predicate as its tree; a syntax error names the character and the fix.

    >>> parse_where("price > 0").op
    '>'
    >>> parse_where("price >> 0")
    Traceback (most recent call last):
    ...
    seqprep.errors.ConfigError: --where "price >> 0": unexpected '>' at character 8; expected a value after >: a number or a quoted string
    """
    if not isinstance(text, str):
        msg = f"--where takes predicates as text, not {type(text).__name__}; e.g. where=[\"event != 'view'\"]"
        raise ConfigError(msg)
    from .kernels.predicates import PredicateSyntaxError, parse

    try:
        return parse(text)
    except PredicateSyntaxError as e:
        raise ConfigError(where_message(text, str(e))) from None


def _without_unset(d: dict[str, Any], cls: type) -> dict[str, Any]:
    """``d`` without the options of ``cls`` marked :data:`SINCE_V1` that hold their default."""
    for f in fields(cls):
        if f.metadata.get("omit_default") and f.name in d and d[f.name] == _jsonable(f.default):
            del d[f.name]
    return d


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _tuples(d: dict[str, Any], cls: type) -> dict[str, Any]:
    """Lists (from JSON) back to tuples for the tuple-typed fields of ``cls``."""
    out = dict(d)
    for f in fields(cls):
        if f.name in out and isinstance(out[f.name], list):
            out[f.name] = tuple(out[f.name])
    return out


_GROUPS: dict[str, type] = {
    "read": ReadOptions,
    "filter": FilterOptions,
    "session": SessionOptions,
    "vocab": VocabOptions,
    "feature": FeatureOptions,
    "event": EventOptions,
    "emit": EmitOptions,
    "split": SplitOptions,
    "engine": EngineOptions,
    "resources": ResourceOptions,
}


def make_config(
    inputs: Any = None,
    output: Any = None,
    *,
    base: BuildConfig | None = None,
    **options: Any,
) -> BuildConfig:
    """Build a validated :class:`BuildConfig` from flat keyword options.

    >>> c = make_config(["ratings.csv"], "out", sep=";", item_order="id")
    >>> c.read.sep, c.item_order
    (';', 'id')
    """
    if options.get("preset") is not None:
        from .presets import expand

        options = expand(options["preset"], options)  # the preset's values under the options given
    top = {f.name for f in fields(BuildConfig)} - set(_GROUPS)
    group_fields = {g: {f.name for f in fields(cls)} for g, cls in _GROUPS.items()}
    top_kw: dict[str, Any] = {}
    group_kw: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
    for key, value in options.items():
        if key in top:
            top_kw[key] = value
        elif key in _GROUPS and isinstance(value, _GROUPS[key]):
            group_kw[key] = dataclasses.asdict(value) | group_kw[key]
        else:
            owner = next((g for g, names in group_fields.items() if key in names), None)
            if owner is None:
                valid = sorted(top | set().union(*group_fields.values()))
                msg = f"unknown option {key!r}; valid options are {', '.join(valid)}"
                raise ConfigError(msg)
            group_kw[owner][key] = value
    if inputs is not None:
        top_kw["inputs"] = (inputs,) if isinstance(inputs, str) else tuple(str(i) for i in inputs)
    if output is not None:
        top_kw["output"] = str(output)
    for key in ("formats",):
        if key in top_kw and isinstance(top_kw[key], str):
            top_kw[key] = (top_kw[key],)
        if key in top_kw:
            top_kw[key] = tuple(top_kw[key])
    target = group_kw["event"].get("target_events")
    if isinstance(target, str):  # "buy,cart"
        group_kw["event"]["target_events"] = tuple(t.strip() for t in target.split(","))
    elif target is not None:
        group_kw["event"]["target_events"] = tuple(target)
    elif "target_events" in group_kw["event"]:  # None: the CLI's "not given"
        del group_kw["event"]["target_events"]
    for key in ("item_table", "user_table"):  # a path: kept as text (meta.json records it)
        if group_kw["feature"].get(key) is not None:
            group_kw["feature"][key] = str(group_kw["feature"][key])
    for key in ("features", "time_features", "item_attrs", "user_attrs"):  # one or several
        value = group_kw["feature"].get(key)
        if isinstance(value, str):
            group_kw["feature"][key] = (value,)
        elif value is not None:
            group_kw["feature"][key] = tuple(value)
    if "names" in group_kw["read"] and isinstance(group_kw["read"]["names"], str):
        group_kw["read"]["names"] = tuple(n.strip() for n in group_kw["read"]["names"].split(","))
    elif group_kw["read"].get("names") is not None:
        group_kw["read"]["names"] = tuple(group_kw["read"]["names"])
    if isinstance(group_kw["read"].get("time_col"), (list, tuple)):  # time_col=["eventdate", "timeframe"]
        group_kw["read"]["time_col"] = ",".join(str(c) for c in group_kw["read"]["time_col"])

    if base is None:
        if "inputs" not in top_kw or "output" not in top_kw:
            msg = "a build needs inputs and an output folder"
            raise ConfigError(msg)
        groups = {g: cls(**group_kw[g]) for g, cls in _GROUPS.items()}
        cfg = BuildConfig(**top_kw, **groups)
    else:
        groups = {g: dataclasses.replace(getattr(base, g), **group_kw[g]) for g in _GROUPS}
        cfg = dataclasses.replace(base, **top_kw, **groups)
    return cfg.validate()
