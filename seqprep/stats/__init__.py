"""The numbers behind ``seqprep stats``: one report per raw log or built folder.

``open_source(path)`` turns a PATH into per-row columns (:mod:`~seqprep.stats.source`: a raw log is
read and cleaned in memory and left in file order, nothing written; a built folder is loaded as CSR
sequences), ``summarize(source)`` computes the numbers as a JSON-ready dict whose keys never change
(:mod:`~seqprep.stats.summary`, ``SCHEMA_VERSION``), ``describe(paths)`` does both for several PATHs
(and the optional plot, :mod:`~seqprep.stats.plot`), and ``format_report(summaries)`` lays them out
side by side for a terminal (:mod:`~seqprep.stats.report`). No click, no printing; nothing is
written except the plot file asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

# Imported up front, as in seqprep.pipeline: pyarrow imports pandas lazily mid-run, and a Ctrl-C landing
# in that import leaves a half-initialised module (an AttributeError traceback, not a clean stop).
import pandas  # noqa: F401

from ..errors import InputError
from ..version import __version__
from .report import format_report, histogram_lines
from .source import Source, open_source, split_sizes
from .summary import PERCENTILES, SCHEMA_VERSION, summarize

__all__ = [
    "SCHEMA_VERSION",
    "PERCENTILES",
    "Source",
    "open_source",
    "split_sizes",
    "summarize",
    "stats_report",
    "describe",
    "format_report",
    "histogram_lines",
]


def stats_report(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The one JSON document of ``seqprep stats --json``: a schema version and one entry per PATH."""
    return {"schema_version": SCHEMA_VERSION, "seqprep_version": __version__, "datasets": summaries}


def describe(
    paths: str | Path | list[str | Path] | tuple[str | Path, ...],
    *,
    plot: str | Path | None = None,
    stdin: BinaryIO | None = None,
    **read_options: Any,
) -> dict[str, Any]:
    """The Python face of ``seqprep stats``: the ``--json`` document for ``paths``, and with ``plot``
    the three-panel figure saved there (needs ``seqprep[plot]``; checked before anything is read)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    names = [str(p) for p in paths]
    if names.count("-") > 1:
        msg = "stdin (-) can be read only once; pass - a single time"
        raise InputError(msg)
    if plot is not None:
        from .plot import check_plot_path, require_matplotlib  # matplotlib is optional: imported on demand

        require_matplotlib()
        check_plot_path(str(plot))
    sources = [open_source(p, stdin=stdin, **read_options) for p in names]
    summaries = [summarize(src) for src in sources]
    if plot is not None:
        from .plot import plot_stats

        plot_stats(sources, summaries, plot)
    return stats_report(summaries)
