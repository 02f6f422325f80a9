"""The ``seqprep`` command: a thin Click skin over :mod:`seqprep.pipeline`.

Flags -> ``make_config`` -> pipeline -> output. Messages go to stderr, machine-readable output
(``--json``) to stdout; any :class:`SeqprepError` becomes ``Error: <one line>`` with exit code 1.

Start-up is kept short (``seqprep --version`` and ``--help`` import click and nothing heavy): this
module imports only click and seqprep's ground floor at module level; each command imports the
library (and so pandas, pyarrow and numpy) in its body. ``--help`` lists a command's options in
labelled groups (:class:`GroupedCommand`; every option names its group with :func:`option`).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from .errors import ConfigError, SeqprepError
from .presets import PRESETS
from .version import __version__

F = TypeVar("F", bound=Callable[..., Any])

_READ_KEYS = (
    "sep",
    "header",
    "names",
    "user_col",
    "item_col",
    "time_col",
    "rating_col",
    "id_type",
    "input_format",
    "session_col",
    "time_offset_unit",
)

# --------------------------------------------------------------------------------------------------
# --help in labelled groups. Click lists every option under one "Options:" heading; a command of
# ours lists them under the heading of their group, groups in the order their first option is
# declared. ~40 lines of our own rather than a dependency (cloup does this and more): no new
# install, nothing more to import at start-up, and it works with every click >= 8.1.

#: The heading of options without a group: click's own ``-h/--help`` and ``--version``.
OTHER = "Options"


class GroupedOption(click.Option):
    """A :class:`click.Option` that belongs to the ``--help`` group ``group``."""

    def __init__(self, *args: Any, group: str = OTHER, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedArgument(click.Argument):
    """A :class:`click.Argument` listed in the ``--help`` group ``group`` with its ``help`` text."""

    def __init__(self, *args: Any, group: str = OTHER, help: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group
        self.help = help


def option(group: str, *param_decls: str, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` for an option listed under ``group`` in ``--help``."""
    return click.option(*param_decls, cls=GroupedOption, group=group, **attrs)


def argument(group: str, name: str, *, help: str, **attrs: Any) -> Callable[[F], F]:
    """``click.argument`` for an argument listed (with its ``help``) under ``group`` in ``--help``."""
    return click.argument(name, cls=GroupedArgument, group=group, help=help, **attrs)


def help_groups(command: click.Command, ctx: click.Context) -> list[tuple[str, list[click.Parameter]]]:
    """``command``'s options (and grouped arguments) as ``(heading, params)``, in ``--help`` order."""
    groups: dict[str, list[click.Parameter]] = {}
    for param in command.get_params(ctx):
        shown = isinstance(param, GroupedArgument) or (isinstance(param, click.Option) and not param.hidden)
        if shown:
            groups.setdefault(getattr(param, "group", OTHER), []).append(param)
    return list(groups.items())


def _help_record(param: click.Parameter, ctx: click.Context) -> tuple[str, str]:
    if isinstance(param, GroupedArgument):
        return param.human_readable_name + ("..." if param.nargs != 1 else ""), param.help
    return param.get_help_record(ctx) or (", ".join(param.opts), "")  # None only for hidden ones, left out


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists its options group by group (:func:`help_groups`)."""

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Nothing: the arguments are listed in their group (click >= 8.5 would list them apart)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections = [(title, [_help_record(p, ctx) for p in params]) for title, params in help_groups(self, ctx)]
        # one width for the first column of every group, so the descriptions line up across groups
        width = min(30, max((len(term) for _, rows in sections for term, _ in rows), default=0))
        for title, rows in sections:
            with formatter.section(title):
                formatter.write_dl([(term.ljust(width), text) for term, text in rows])


# --------------------------------------------------------------------------------------------------
# The options, group by group (the order of the groups in ``seqprep build --help``)

PRESET = "Preset"
INPUT = "Input"
CLEANING = "Cleaning"
VOCABULARY = "Vocabulary"
FEATURES = "Features"
SEQUENCES = "Sequences and splits"
OUTPUTS = "Outputs"
RESOURCES = "Resources"
ENGINE = "Engine"


def _apply(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator applying ``decorators`` as if stacked in this order (the first on top)."""

    def decorate(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return decorate


read_options = _apply(
    option(INPUT, "--sep", help="Column separator (one or more characters, e.g. ';' or '::'). Default: detected."),
    option(
        INPUT,
        "--header/--no-header",
        default=None,
        help="Whether the first line holds column names. Default: detected (a first line of numbers is data).",
    ),
    option(
        INPUT,
        "--names",
        help="Comma-separated column names for a file without header, e.g. user,item,rating,timestamp.",
    ),
    option(INPUT, "--user-col", help="Column with the user id (default: userId, user_id, UserID, reviewerID, user)."),
    option(
        INPUT,
        "--session-col",
        metavar="COL",
        help="Key the sequences by this session column; the users' column (--user-col or detected) is kept per "
        "session in sessions.parquet.",
    ),
    option(
        INPUT,
        "--item-col",
        help="Column with the item id (default: movieId, item_id, itemId, MovieID, asin, parent_asin, item).",
    ),
    option(
        INPUT,
        "--time-col",
        help="Column with the timestamp (default: timestamp, ts, time, unixReviewTime); BASE,OFFSET,... adds whole-number "
        "offset columns to a date or epoch BASE (e.g. eventdate,timeframe).",
    ),
    option(
        INPUT,
        "--time-offset-unit",
        type=click.Choice(["s", "ms", "us", "ns"]),
        default=None,
        help="Unit of the OFFSET columns of --time-col BASE,OFFSET when BASE holds dates. Default: ms.",
    ),
    option(INPUT, "--rating-col", help="Column with the rating (default: rating, overall; optional)."),
    option(
        INPUT,
        "--id-type",
        type=click.Choice(["auto", "int", "str"]),
        default="auto",
        show_default=True,
        help="Type of user and item ids: auto keeps int64 when every id is a plain integer, else text.",
    ),
    option(
        INPUT,
        "--input-format",
        type=click.Choice(["auto", "csv", "jsonl", "parquet"]),
        default="auto",
        show_default=True,
        help="Input format. auto: by extension, then by content.",
    ),
)
"""The options that say how to parse input logs, shared by every command that reads one."""

where_option = option(
    CLEANING,
    "--where",
    metavar="EXPR",
    multiple=True,
    help="Keep rows where EXPR holds, e.g. \"event != 'view'\" or \"price > 0 and country in ['DE', 'FR']\" "
    "(== != < <= > >=, in [..], is null, and/or/not; any column). Repeatable: all must hold.",
)
"""``--where EXPR``: the row filter of ``build`` and ``stats``."""

cleaning_options = _apply(
    option(
        CLEANING,
        "--strict",
        is_flag=True,
        help="Fail on rows with a missing user, item or timestamp instead of dropping them.",
    ),
    option(
        CLEANING,
        "--since",
        metavar="T",
        help="Keep interactions at or after T: an epoch number in the log's unit, or an ISO date "
        "(as epoch seconds for raw epoch logs).",
    ),
    option(CLEANING, "--until", metavar="T", help="Keep interactions strictly before T (same forms as --since)."),
    where_option,
    option(
        CLEANING,
        "--min-rating",
        type=float,
        metavar="R",
        help="Keep interactions rated >= R (rows without a rating are dropped).",
    ),
    option(
        CLEANING,
        "--dedup",
        type=click.Choice(["none", "exact", "first", "last", "consecutive"]),
        default="none",
        show_default=True,
        help="Duplicates: exact = identical rows; first/last = one row per user-item pair (earliest/latest); "
        "consecutive = immediate repeats of an item in a user's sequence.",
    ),
    option(
        CLEANING,
        "--min-user-count",
        type=int,
        default=0,
        metavar="K",
        show_default=True,
        help="k-core: drop users with fewer interactions (0 = off).",
    ),
    option(
        CLEANING,
        "--min-item-count",
        type=int,
        default=0,
        metavar="K",
        show_default=True,
        help="k-core: drop items with fewer interactions (0 = off).",
    ),
    option(
        CLEANING,
        "--kcore-on",
        type=click.Choice(["all", "target"]),
        default="all",
        show_default=True,
        help="Which events k-core counts: all, or the --target-events only (a user or item below its bound loses every row).",
    ),
    option(
        CLEANING,
        "--kcore-rounds",
        type=int,
        metavar="N",
        help="k-core rounds (1 = SASRec's single pass). Default: repeat until every user and item meets its bound.",
    ),
    option(
        CLEANING,
        "--kcore-passes",
        metavar="user,item,...",
        help="k-core as one-sided passes in this order, each counting the rows the one before left "
        "(user,item,user = SR-GNN's sessions, items, sessions); instead of rounds.",
    ),
)
"""Cleaning steps (applied in a fixed order: missing values, window, rating, dedup, k-core)."""

vocabulary_options = _apply(
    option(
        VOCABULARY,
        "--item-order",
        type=click.Choice(["frequency", "first-seen", "id", "sequence"]),
        default="frequency",
        show_default=True,
        help="How items are numbered: most frequent first (ties by id), by first appearance in the input, by original id, "
        "or by first appearance in the sorted sequences, user by user (sequence; with --vocab-from-train: the training part).",
    ),
    option(
        VOCABULARY,
        "--user-order",
        type=click.Choice(["id", "first-seen", "date"]),
        default="id",
        show_default=True,
        help="How users are numbered (the row order of every output): by original id, by first appearance, or by "
        "date (the UTC day of the user's last row in the log as read, equal days by first appearance).",
    ),
    option(
        VOCABULARY,
        "--vocab-from",
        metavar="OLD_OUT",
        help="Encode with the item and user vocabularies of an earlier build's output folder (ids keep their index).",
    ),
    option(
        VOCABULARY,
        "--unknown",
        type=click.Choice(["drop", "oov", "error"]),
        default="drop",
        show_default=True,
        help="With --vocab-from, items OLD_OUT does not know: drop their rows (counted), map them to N+1 (oov_idx), or fail.",
    ),
    option(
        VOCABULARY,
        "--extend",
        is_flag=True,
        help="With --vocab-from, append unseen items at N+1, N+2, ... (existing ids never move).",
    ),
)
"""How users and items are numbered, or taken from an earlier build."""

feature_options = _apply(
    option(
        FEATURES,
        "--feature",
        "features",
        multiple=True,
        metavar="COL[:KIND]",
        help="Keep a column of the log beside the items; repeat for several. KIND: cat (its own "
        "vocabulary 1..K, 0 = padding), num (float32), tokens:SEP (several values in one field). "
        "Default: num for a numeric column, cat otherwise.",
    ),
    option(
        FEATURES,
        "--time-feature",
        "time_features",
        multiple=True,
        metavar="NAME",
        help="Derive a feature from the timestamps; repeat for several: delta, delta-log2, hour, weekday "
        "(UTC), interval:K (TiSASRec's personalised interval, at most K).",
    ),
    option(
        FEATURES,
        "--event-col",
        metavar="COL",
        help="The column with the kind of each interaction (view, cart, buy, ...): it becomes the feature 'event'.",
    ),
    option(
        FEATURES,
        "--target-events",
        metavar="E1[,E2]",
        help="With --event-col: the events to predict (split targets, Caser window targets, negatives); "
        "histories keep every event. Default: every event.",
    ),
    option(
        FEATURES,
        "--item-table",
        metavar="FILE",
        help="A table of item attributes (CSV/TSV, RecBole .item, JSON Lines, Parquet) joined on the original "
        "item id; writes item_features.* with one row per item index (row 0 = padding).",
    ),
    option(
        FEATURES,
        "--item-key",
        metavar="COL",
        help="The --item-table column holding the item id. Default: the log's item column name, else "
        "movieId, item_id, asin, ... (as for --item-col).",
    ),
    option(
        FEATURES,
        "--item-attr",
        "item_attrs",
        multiple=True,
        metavar="COL[:KIND]",
        help="Keep a column of --item-table as an item attribute; repeat for several. KIND as for --feature, "
        "or a RecBole type (token, token_seq, float); default: from a RecBole typed header, else as --feature.",
    ),
    option(
        FEATURES,
        "--user-table",
        metavar="FILE",
        help="A table of user attributes (e.g. RecBole .user) joined on the original user id; writes "
        "user_features.* with one row per user index (no padding row).",
    ),
    option(
        FEATURES,
        "--user-key",
        metavar="COL",
        help="The --user-table column holding the user id. Default: the log's user column name, else "
        "userId, user_id, ... (as for --user-col).",
    ),
    option(
        FEATURES,
        "--user-attr",
        "user_attrs",
        multiple=True,
        metavar="COL[:KIND]",
        help="Keep a column of --user-table as a user attribute; repeat for several (KIND as for --item-attr).",
    ),
)
"""Columns and derived values that travel with the items, and item/user attribute tables."""

sequence_options = _apply(
    option(
        SEQUENCES,
        "--session-gap",
        metavar="DURATION",
        help="Split each user's sequence into sessions at gaps longer than this (e.g. 30m; units s, m, h, d, "
        "or a plain number in the timestamps' unit).",
    ),
    option(
        SEQUENCES,
        "--max-len",
        type=click.IntRange(min=1),
        help="Keep each user's N most recent items in padded outputs (npz `padded` [U, N]).",
    ),
    option(
        SEQUENCES,
        "--pad",
        type=click.Choice(["left", "right"]),
        default="left",
        show_default=True,
        help="Side of the padding in padded outputs; left puts the latest item last (SASRec, Caser).",
    ),
    option(SEQUENCES, "--truncate", is_flag=True, help="Also cut sequences.* to the --max-len most recent items per user."),
    option(
        SEQUENCES,
        "--split",
        help="Evaluation split: loo (each user's last interaction test, the second-last valid; users of 3 or more), "
        "loo:recbole (RecBole's: a user of exactly 3 gets a test row and no valid row), time (with --valid-from/--test-from), "
        "time:Q1,Q2 (quantiles), users:TRAIN,VALID,TEST (whole users), ratio:TRAIN,VALID,TEST (each user's interactions in "
        "time order: the first ceil(n*TRAIN) train, up to ceil(n*(TRAIN+VALID)) valid, the rest test; e.g. ratio:0.7,0.1,0.2) "
        "or days:N (whole sequences dated in the last N days are test, every prefix a test row); "
        "none: no split (turns a preset's off).",
    ),
    option(SEQUENCES, "--valid-from", help="--split time: targets at or after T1 (epoch or ISO date) are validation."),
    option(SEQUENCES, "--test-from", help="--split time: targets at or after T2 (epoch or ISO date) are test."),
    option(
        SEQUENCES,
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed of the users split and of negative sampling.",
    ),
    option(
        SEQUENCES,
        "--vocab-from-train/--no-vocab-from-train",
        default=False,
        help="Fit the item vocabulary on the training part only; held-out rows with unseen items are dropped and counted. "
        "--no-vocab-from-train turns a preset's off.",
    ),
    option(
        SEQUENCES,
        "--windows",
        metavar="L:T",
        help="Write Caser training windows (L inputs, T targets, step 1) to windows.npz.",
    ),
    option(
        SEQUENCES,
        "--eval-negatives",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Sample K negatives per valid/test row among items the user never interacted with.",
    ),
    option(
        SEQUENCES,
        "--negatives",
        type=click.Choice(["uniform", "popularity"]),
        default="uniform",
        show_default=True,
        help="How --eval-negatives are drawn: uniformly, or by training popularity.",
    ),
)
"""Sessions, truncation/padding, the evaluation split and training inputs."""

output_options = _apply(
    option(
        OUTPUTS,
        "-o",
        "--output",
        help="Output folder (written atomically; must not exist unless --overwrite), or - to stream the sequences to stdout.",
    ),
    option(
        OUTPUTS,
        "-f",
        "--format",
        "formats",
        multiple=True,
        type=click.Choice(["parquet", "npz"]),
        help="Output format; repeat for several. Default: parquet.",
    ),
    option(
        OUTPUTS,
        "--overwrite",
        is_flag=True,
        help="Replace an existing output folder (atomically): only an earlier seqprep output or an empty folder, "
        "never one holding other files, an input, the current or home folder, nor a symbolic link.",
    ),
    option(
        OUTPUTS,
        "--to",
        type=click.Choice(["arrow", "jsonl"]),
        default=None,
        help="Format of the -o - stream: arrow (an Arrow IPC stream, meta in the schema metadata; default) or jsonl.",
    ),
    option(
        OUTPUTS,
        "--export",
        "exports",
        multiple=True,
        type=click.Choice(["sasrec", "seqlines", "recbole", "srgnn"]),
        help="Also write a file for existing model code into OUT; repeat for several: sasrec, seqlines, recbole, "
        "srgnn (SR-GNN's train/test pickles of every prefix -> next item; needs --split days:N).",
    ),
    option(OUTPUTS, "--json", "as_json", is_flag=True, help="Print meta.json's content to stdout when done."),
    option(OUTPUTS, "-q", "--quiet", is_flag=True, help="No progress bar and no summary line on stderr."),
)
"""Where the build goes and what is printed."""

resource_options = _apply(
    option(
        RESOURCES,
        "--threads",
        type=int,
        default=None,
        help="Cap on the threads used by pyarrow and numpy/BLAS work (default: all cores).",
    ),
    option(
        RESOURCES,
        "--memory-limit",
        default=None,
        help="Keep peak memory near this size, e.g. 4GB or 512MiB: integer columns spill to a temporary folder "
        "and are sorted user-range by user-range. Default: no limit.",
    ),
    option(
        RESOURCES,
        "--block-size",
        default="16MiB",
        show_default=True,
        help="Bytes of input parsed per block while streaming (larger: faster, more memory).",
    ),
)
"""How the machine is used (never the result)."""

engine_options = _apply(
    option(
        ENGINE,
        "--engine",
        type=click.Choice(["local", "dask"]),
        default="local",
        show_default=True,
        help="Run in this process (local) or on a Dask cluster (dask; needs pip install 'seqprep[dask]'). Same result.",
    ),
    option(ENGINE, "--scheduler", help="With --engine dask: address of a running Dask scheduler, e.g. tcp://HOST:8786."),
    option(
        ENGINE,
        "--workers",
        type=int,
        help="With --engine dask and no --scheduler: start a local cluster of N workers, threads of this process (default: chosen by Dask from the cores).",
    ),
    option(
        ENGINE,
        "--part-rows",
        type=int,
        default=4_000_000,
        show_default=True,
        help="With --engine dask: about this many interactions per sequences/part-NNNNN.parquet.",
    ),
    option(
        ENGINE,
        "--partition-size",
        "block_bytes",
        type=int,
        default=64 * 2**20,
        show_default=True,
        help="With --engine dask: input bytes per read partition (uncompressed CSV/JSONL).",
    ),
)
"""Where the build runs: this process (default) or a Dask cluster (``pip install 'seqprep[dask]'``)."""


def _step_summary(steps: list[dict[str, Any]]) -> str:
    """'time_window -120 rows/-3 users/-0 items, kcore -55 ... (2 rounds)' for the steps that removed rows."""
    parts = []
    for st in steps:
        if not st.get("rows_removed"):
            continue
        text = f"{st['step']} -{st['rows_removed']:,} rows"
        if "users_removed" in st:
            text += f"/-{st['users_removed']:,} users/-{st['items_removed']:,} items"
        for key, one in (("rounds", "round"), ("passes", "pass")):
            if key in st:
                n = len(st[key])
                text += f" ({n} {one if n == 1 else key})"
        parts.append(text)
    return ", ".join(parts)


def _handle_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """Map seqprep's errors (and running out of memory) to a one-line message and exit code 1.

    Nothing else is caught: a known input failure is a :class:`SeqprepError` where it arises (the
    readers turn pyarrow's errors into one with their single guard), so any other exception is a bug
    and shows its traceback rather than a misleading "check the input".
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except SeqprepError as e:
            raise click.ClickException(str(e)) from None
        except MemoryError:
            raise click.ClickException("out of memory; the log is too large for this machine") from None

    return wrapper


def _sigterm_to_interrupt() -> None:
    """SIGTERM behaves like Ctrl-C, so temporary outputs are cleaned up on either."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread (e.g. inside a test runner thread)
        pass


def _arrow_pool() -> None:
    """Have pyarrow allocate with jemalloc in this process, when its build has it and nothing chose.

    pyarrow's default pool (mimalloc) keeps the pages a block freed for reuse: a build's peak
    resident size carries the parse's and the Parquet encoder's freed buffers (about 50 MiB at 5M
    rows, 14%), and handing them back later costs system time. pyarrow's jemalloc returns freed
    pages sooner (within ``DECAY_MS``, :func:`_jemalloc_decay`), for less system time, not more.
    The pool is chosen once, when pyarrow loads, from ``ARROW_DEFAULT_MEMORY_POOL``: so this sets
    that variable before the build imports pyarrow, only when it is unset and pyarrow's own
    ``arrow/util/config.h`` says it was built with jemalloc (otherwise pyarrow would warn). Nothing
    happens once pyarrow is loaded (a build run from Python, a test runner): the caller's pool stays.
    """
    if "pyarrow" in sys.modules or "ARROW_DEFAULT_MEMORY_POOL" in os.environ or not sys.platform.startswith("linux"):
        return
    from importlib.util import find_spec
    from pathlib import Path

    try:
        spec = find_spec("pyarrow")
        where = spec.submodule_search_locations if spec is not None else None
        config = Path(next(iter(where or ())), "include", "arrow", "util", "config.h").read_text(errors="replace")
    except (OSError, StopIteration, ValueError, ImportError):
        return
    if "#define ARROW_JEMALLOC\n" in config:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
        global _CHOSE_JEMALLOC
        _CHOSE_JEMALLOC = True


_CHOSE_JEMALLOC = False  # set by _arrow_pool: this process chose pyarrow's jemalloc pool itself
DECAY_MS = 100  # how soon pyarrow's jemalloc hands freed pages back (see _jemalloc_decay)


def _jemalloc_decay() -> None:
    """Have the jemalloc pool :func:`_arrow_pool` chose hand freed pages back within ``DECAY_MS``.

    pyarrow's jemalloc purges freed pages about a second after their release, so a build's peak
    still carries the parse's and the encoder's freed buffers. On the 5M-row log (/usr/bin/time,
    three runs each): the default decay peaked at 407-466 MiB, 300 ms at 327-351, 100 ms at 312-327,
    0 at 273-294 MiB; 0 took 10-15% more wall time (a purge on every free, pages faulted in again),
    100 ms about 5-10% at 1M-5M rows and none measurable at 25M (docs/performance.md). Only in a
    process whose pool this module chose: a caller's own setting stays."""
    if not _CHOSE_JEMALLOC:
        return
    import pyarrow as pa

    try:
        if pa.default_memory_pool().backend_name == "jemalloc":
            pa.jemalloc_set_decay_ms(DECAY_MS)
    except (NotImplementedError, AttributeError, pa.ArrowException):  # (a pyarrow without it)
        pass


def reuse_summary(v: dict[str, Any]) -> str:
    """The summary line of a build with --vocab-from (numbers from meta.json's ``vocab_reuse``)."""
    fate = {"drop": "dropped", "oov": "mapped to oov_idx", "error": "none allowed", None: "appended"}[v["unknown"]]
    kept = v.get("oov_interactions")
    if kept is not None and kept != v["unseen_rows"]:  # later filters removed some of those rows
        fate += f" ({kept:,} of them left after the filters)"
    return (
        f"seqprep: vocabulary from {v['from']} ({v['mode']}): {v['unseen_items']:,} unseen items "
        f"({100 * v['unseen_items_share']:.2f}% of the log's items) in {v['unseen_rows']:,} rows "
        f"({100 * v['unseen_rows_share']:.2f}%), {fate}; {v['new_items']:,} new items, {v['new_users']:,} new users"
    )


def attributes_summary(role: str, table: dict[str, Any], features: dict[str, Any]) -> str:
    """The summary line of an attribute table (numbers from meta.json's ``attribute_tables`` and ``features``)."""
    names = [f"{n} ({e['kind']})" for n, e in sorted(features.items()) if e.get("source") == role]
    return (
        f"seqprep: {role} attributes {', '.join(names)} from {table['path']}: {table[role + 's_with_row']:,} of "
        f"{table[role + 's']:,} {role}s have a row, {table['rows_ignored']:,} of {table['rows']:,} table rows ignored"
    )


def _note(quiet: bool, text: str) -> None:
    if not quiet:
        click.echo(text, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seqprep")
def cli() -> None:
    """Turn interaction logs into time-ordered integer item sequences for sequential recommenders.

    Items are numbered 1..N (0 is padding), users 0..U-1; see meta.json in the output for how to
    size an embedding table.
    """


@cli.command(cls=GroupedCommand)
@argument(INPUT, "inputs", nargs=-1, help="Log files, quoted globs, or - for stdin; together one log.")
@option(
    PRESET,
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    help=f"A published script's preprocessing as flags (docs/presets.md): {', '.join(sorted(PRESETS))}. Flags given explicitly override its values.",
)
@option(PRESET, "--explain", is_flag=True, help="Print the flags --preset expands to (and those given over them) and exit without building.")
@read_options
@cleaning_options
@vocabulary_options
@feature_options
@sequence_options
@output_options
@resource_options
@engine_options
@_handle_errors
def build(
    inputs: tuple[str, ...], output: str | None, formats: tuple[str, ...], as_json: bool, quiet: bool, explain: bool, **kw: Any
) -> None:
    """Build vocabularies and per-user sequences from INPUTS (files, globs or - for stdin).

    Several inputs form one log, in the order given; equal timestamps keep that order.
    """
    if kw["preset"] is not None:  # the preset's values under the flags given on the command line
        ctx = click.get_current_context()
        given = {k for k in kw if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None)}
        kw = {k: v for k, v in kw.items() if k in given or k == "preset" or k not in PRESETS[kw["preset"]].options}
    if kw.get("split") == "none":  # --split none: no split, also over a preset's
        kw["split"] = None
    if explain:
        _explain(kw)
        return
    if not inputs:
        msg = "no input given; pass one or more log files (or - for stdin)"
        raise ConfigError(msg)
    if output is None:
        msg = "no output folder given; pass -o OUT"
        raise ConfigError(msg)
    _sigterm_to_interrupt()
    _arrow_pool()  # (before pyarrow loads)
    # the library, and with it pyarrow and numpy, is imported here, not at start-up; the local engine's
    # build runs without pandas (resources.without_pandas: pyarrow never imports it mid-build)
    from contextlib import nullcontext

    from .config import make_config
    from .io.buffers import steady_heap
    from .pipeline import run
    from .progress import for_terminal
    from .resources import allow_huge_pages, peak_rss_bytes, without_pandas

    _library_loaded()
    config = make_config(list(inputs), output, formats=formats or ("parquet",), **kw)
    if formats and config.to_stdout:
        msg = "-f/--format sets the files of an output folder, and -o - has none; pass --to arrow|jsonl for the stream"
        raise ConfigError(msg)
    if as_json and config.to_stdout:
        msg = "--json prints to stdout, which -o - already uses for the stream; drop --json (meta travels in the stream)"
        raise ConfigError(msg)
    steady_heap()  # this process is the command's own: malloc's thresholds for a build
    _jemalloc_decay()  # and pyarrow's freed buffers soon after
    if _CHOSE_NO_HUGE_PAGES:  # and huge pages for the sorts that gain from them (see main)
        allow_huge_pages()
    with nullcontext() if config.engine.engine == "dask" else without_pandas():
        result = run(
            config,
            stdin=sys.stdin.buffer,
            stdout=sys.stdout.buffer if config.to_stdout else None,
            progress=for_terminal(quiet),
        )
    m = result.meta
    rows = m["rows"]
    written = f"stdout [{config.emit.to or 'arrow'}]" if config.to_stdout else f"{output} [{', '.join(config.formats + config.emit.exports)}]"
    _note(
        quiet,
        f"seqprep: {rows['read']:,} rows read from {len(m['inputs'])} input(s), {rows['kept']:,} kept "
        f"({rows['removed']:,} removed); {m['num_users']:,} users, {m['num_items']:,} items "
        f"(num_embeddings {m['num_embeddings']:,}); wrote {written} "
        f"in {result.seconds:.2f} s, peak memory {peak_rss_bytes() / 2**20:,.0f} MiB",
    )
    removed_by = _step_summary(m["steps"])
    if removed_by:
        _note(quiet, f"seqprep: removed by step: {removed_by}")
    if "session_key" in m:
        k = m["session_key"]
        _note(
            quiet,
            f"seqprep: keyed by {k['column']}: {k['num_sessions']:,} sessions of {k['num_users']:,} users "
            f"({k['sessions_without_user']:,} sessions without a user); sessions.parquet holds each session's user",
        )
    if "sessions" in m:
        _note(quiet, f"seqprep: {m['sessions']['num_sessions']:,} sessions (gap {m['sessions']['gap']})")
    if m.get("vocab_reuse"):
        _note(quiet, reuse_summary(m["vocab_reuse"]))
    for role, table in (m.get("attribute_tables") or {}).items():
        _note(quiet, attributes_summary(role, table, m["features"]))
    if "split" in m:
        sz = m["split"]["sizes"]
        _note(
            quiet,
            f"seqprep: split {m['split']['rule']}: train {sz['train']['interactions']:,} interactions "
            f"of {sz['train']['users']:,} users; valid {sz['valid']['rows']:,} rows; test {sz['test']['rows']:,} rows",
        )
    if as_json:
        click.echo(json.dumps(m, indent=2, sort_keys=True))


def _explain(kw: dict[str, Any]) -> None:
    """``--explain``: the flags of ``--preset`` (with the flags given on top) on stdout."""
    from .presets import flags

    name = kw["preset"]
    if name is None:
        msg = "--explain prints what --preset NAME expands to; add --preset " + "|".join(sorted(PRESETS))
        raise ConfigError(msg)
    p = PRESETS[name]
    ctx = click.get_current_context()
    given = {k: v for k, v in kw.items() if k != "preset" and ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None)}
    click.echo(f"--preset {name}: {p.source}")
    click.echo(f"  reads:   {p.input}")
    click.echo(f"  checked: {p.checked}")
    click.echo("  expands to: " + " ".join(flags(p.options)))
    as_given = {  # "user,item" as the preset's tuple
        k: tuple(x.strip() for x in v.split(",")) if isinstance(v, str) and isinstance(p.options.get(k), tuple) else v
        for k, v in given.items()
    }
    overridden = {k: v for k, v in as_given.items() if k in p.options and v != p.options[k]}
    if overridden:
        click.echo("  overridden on the command line: " + " ".join(flags(overridden)))
    click.echo("  quirks of the script and how each rule maps: docs/presets.md")
    click.echo("(--explain: nothing was built)")


@cli.command(cls=GroupedCommand)
@argument(
    INPUT,
    "paths",
    nargs=-1,
    required=True,
    help="Raw logs (read with the options below, - for stdin), built folders or their train.parquet.",
)
@read_options
@where_option
@option(OUTPUTS, "--json", "as_json", is_flag=True, help="Print one JSON document (schema in docs/stats.md) to stdout instead of text.")
@option(
    OUTPUTS,
    "--plot",
    "plot_file",
    metavar="FILE.png",
    help="Also draw length histogram, popularity long tail and interactions over time (needs seqprep[plot]).",
)
@_handle_errors
def stats(paths: tuple[str, ...], as_json: bool, plot_file: str | None, **kw: Any) -> None:
    """Tell what is in each PATH: a raw log (read with the reader options), a built folder or its train.parquet.

    Several PATHs print side by side. Nothing is written (except the --plot file).
    """
    from .stats import describe, format_report

    _library_loaded()
    read_kw = {k: v for k, v in kw.items() if k in _READ_KEYS or (k == "where" and v)}
    doc = describe(list(paths), plot=plot_file, stdin=sys.stdin.buffer, **read_kw)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(format_report(doc["datasets"], style=lambda t: click.style(t, bold=True)))


@cli.command(cls=GroupedCommand)
@argument(INPUT, "path", help="The output folder of a build (its -o).")
@option(OUTPUTS, "--json", "as_json", is_flag=True, help="Print the report (ok, problems, what was checked) as JSON to stdout.")
@_handle_errors
def verify(path: str, as_json: bool) -> None:
    """Re-check the built folder PATH against its meta.json: file sizes and sha256, counts, id ranges,
    offsets, padding and per-user time order.

    Prints one line per problem on stderr and exits with 1 when anything does not match.
    """
    from .verify import verify as verify_folder

    _library_loaded()
    report = verify_folder(path)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    for problem in report.problems:
        click.echo(f"Error: {path}: {problem}", err=True)
    if not report.ok:
        raise SystemExit(1)
    c = report.checked
    click.echo(
        f"seqprep: {path} verified: {c['files']} files match meta.json; {c['users']:,} users, "
        f"{c['items']:,} items, {c['interactions']:,} interactions",
        err=True,
    )


#: Set by :func:`main` while it holds the cyclic garbage collector back (see :func:`_library_loaded`).
_GC_HELD = False
_CHOSE_NO_HUGE_PAGES = False  # set by main: this process turned numpy's huge-page advice off itself


def main() -> None:
    """The ``seqprep`` process (console script, ``python -m seqprep``): the command, then the exit.

    Start-up is a fixed cost of every command, so the process is set up for it (nothing here changes
    a result):

    - numpy's OpenBLAS starts a thread pool when numpy is imported (one thread a core); seqprep makes
      no BLAS call (its dot products are of integers, which numpy computes itself), so the process
      asks for one thread (``OPENBLAS_NUM_THREADS=1``, unless the environment sets it): ~0.03 CPU-s
      less per command;
    - numpy asks the kernel for transparent huge pages for every array of 4 MiB or more
      (``madvise``); on the 2-core benchmark machine the faults of those 2 MiB pages made the
      split's and k-core's fresh arrays after the sort cost 3-4x their numpy time (a 5M leave-one-out
      split: 0.7-0.9 s against 0.17 s), so the process asks for none (``NUMPY_MADVISE_HUGEPAGE=0``,
      unless the environment sets it; numpy reads it when it is imported, after this) - but for a
      sort of scattered rows, which fills fresh column-sized arrays and gains from them (a 25M
      shuffled build: 0.81-0.98x the wall time, 0.8-3.8 CPU-s less), and turns the advice on for itself
      (:func:`~seqprep.resources.huge_pages`) when this process set the variable, not the user;
    - the imports allocate some 150,000 objects, all of which live to the end, and the cyclic
      garbage collector would walk them ~90 times meanwhile (0.01-0.02 s): it is held back until
      the command has imported the library (:func:`_library_loaded`), then runs as usual, with
      what the imports made frozen (:func:`gc.freeze`: not walked again);
    - a finished command leaves by :func:`_leave`: everything it wrote is closed or flushed by then,
      and tearing the interpreter down module by module (numpy, pyarrow and ~500 others) would add
      ~0.07-0.1 CPU-s to every run, more than a small build takes.
    """
    global _GC_HELD, _CHOSE_NO_HUGE_PAGES
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"
        _CHOSE_NO_HUGE_PAGES = True
    if gc.isenabled():
        gc.disable()
        _GC_HELD = True
    try:
        cli(prog_name="seqprep")
    except SystemExit as e:
        _leave(e.code)
        raise


def _library_loaded() -> None:
    """A command of :func:`main` has imported what it needs: the garbage collector runs again, and
    every object allocated so far (modules, classes, functions) is left out of its later passes."""
    global _GC_HELD
    if _GC_HELD:
        _GC_HELD = False
        gc.freeze()
        gc.enable()


def _leave(code: Any) -> None:
    """End the process now with ``code`` (as ``sys.exit(code)`` would), without the interpreter's
    teardown - unless something may still need it: another thread running, or Dask loaded (its
    clusters and temporary folders are closed by exit handlers). Returns when it does not leave."""
    import threading

    if threading.active_count() > 1 or "distributed" in sys.modules or "dask" in sys.modules:
        return
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # a closed pipe, a closed stream: the usual exit reports it
        return
    os._exit(status)


if __name__ == "__main__":
    main()
