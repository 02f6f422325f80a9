"""The ``seqprep`` command: a thin Click skin over :mod:`seqprep.pipeline`.

Flags -> ``make_config`` -> pipeline -> output. Messages go to stderr, machine-readable output
(``--json``) to stdout; any :class:`SeqprepError` becomes ``Error: <one line>`` with exit code 1.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

import click
import pyarrow as pa

from . import __version__
from .config import make_config
from .errors import SeqprepError

_READ_KEYS = ("sep", "header", "names", "user_col", "item_col", "time_col", "rating_col", "id_type", "input_format")


def read_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say how to parse input logs, shared by every command that reads one."""
    decorators = [
        click.option("--sep", help="Column separator (one or more characters, e.g. ';' or '::'). Default: detected."),
        click.option(
            "--header/--no-header",
            default=None,
            help="Whether the first line holds column names. Default: detected (a first line of numbers is data).",
        ),
        click.option(
            "--names",
            help="Comma-separated column names for a file without header, e.g. user,item,rating,timestamp.",
        ),
        click.option("--user-col", help="Column with the user id (default: userId, user_id, UserID, reviewerID, user)."),
        click.option(
            "--item-col",
            help="Column with the item id (default: movieId, item_id, itemId, MovieID, asin, parent_asin, item).",
        ),
        click.option("--time-col", help="Column with the timestamp (default: timestamp, ts, time, unixReviewTime)."),
        click.option("--rating-col", help="Column with the rating (default: rating, overall; optional)."),
        click.option(
            "--id-type",
            type=click.Choice(["auto", "int", "str"]),
            default="auto",
            show_default=True,
            help="Type of user and item ids: auto keeps int64 when every id is a plain integer, else text.",
        ),
        click.option(
            "--input-format",
            type=click.Choice(["auto", "csv", "jsonl", "parquet"]),
            default="auto",
            show_default=True,
            help="Input format. auto: by extension, then by content.",
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _handle_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """Map seqprep's (and the few expected third-party) errors to a one-line message and exit code 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except SeqprepError as e:
            raise click.ClickException(str(e)) from None
        except pa.ArrowException as e:
            msg = " ".join(str(e).split())[:300]
            raise click.ClickException(f"{msg}; check the input file and the reader options (--sep, --names)") from None
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


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Output folder (written atomically; must not exist unless --overwrite).")
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["parquet", "npz"]),
    help="Output format; repeat for several. Default: parquet.",
)
@click.option(
    "--item-order",
    type=click.Choice(["frequency", "first-seen", "id"]),
    default="frequency",
    show_default=True,
    help="How items are numbered: most frequent first (ties by id), by first appearance, or by original id.",
)
@click.option(
    "--user-order",
    type=click.Choice(["id", "first-seen"]),
    default="id",
    show_default=True,
    help="How users are numbered (the row order of every output).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder (atomically).")
@click.option("--strict", is_flag=True, help="Fail on rows with a missing user, item or timestamp instead of dropping them.")
@click.option("--json", "as_json", is_flag=True, help="Print meta.json's content to stdout when done.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
@read_options
@_handle_errors
def build(inputs: tuple[str, ...], output: str, formats: tuple[str, ...], as_json: bool, quiet: bool, **kw: Any) -> None:
    """Build vocabularies and per-user sequences from INPUTS (files, globs or - for stdin).

    Several inputs form one log, in the order given; equal timestamps keep that order.
    """
    from .pipeline import run

    _sigterm_to_interrupt()
    config = make_config(list(inputs), output, formats=formats or ("parquet",), **kw)
    result = run(config, stdin=sys.stdin.buffer)
    m = result.meta
    rows = m["rows"]
    _note(
        quiet,
        f"seqprep: {rows['read']:,} rows read from {len(m['inputs'])} input(s), {rows['kept']:,} kept "
        f"({rows['removed']:,} removed); {m['num_users']:,} users, {m['num_items']:,} items "
        f"(num_embeddings {m['num_embeddings']:,}); wrote {output} [{', '.join(config.formats)}] "
        f"in {result.seconds:.2f} s",
    )
    if as_json:
        click.echo(json.dumps(m, indent=2, sort_keys=True))


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout instead of text.")
@read_options
@_handle_errors
def stats(path: str, as_json: bool, **kw: Any) -> None:
    """Tell what is in PATH: a raw log (read with the reader options) or a built folder."""
    from .stats import format_stats, stats_for_path

    read_kw = {k: v for k, v in kw.items() if k in _READ_KEYS}
    s = stats_for_path(path, **read_kw)
    if as_json:
        click.echo(json.dumps(s, indent=2, sort_keys=True))
    else:
        click.echo(format_stats(s))


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the report (ok, problems, what was checked) as JSON to stdout.")
@_handle_errors
def verify(path: str, as_json: bool) -> None:
    """Re-check the built folder PATH against its meta.json: file sizes and sha256, counts, id ranges,
    offsets, padding and per-user time order.

    Prints one line per problem on stderr and exits with 1 when anything does not match.
    """
    from .verify import verify as verify_folder

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


def main() -> None:
    cli(prog_name="seqprep")


if __name__ == "__main__":
    main()
