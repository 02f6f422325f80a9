"""``seqprep stats --plot FILE.png``: three panels per figure, one line/series per PATH.

1. sequence-length histogram (log-spaced bins, log-log axes);
2. item popularity long tail: rank vs interactions, log-log;
3. interactions per month over time.

Needs the optional extra ``seqprep[plot]`` (matplotlib); drawn with the non-interactive Agg backend.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, OutputError
from .source import Source

__all__ = ["require_matplotlib", "check_plot_path", "plot_stats", "PLOT_FORMATS"]

PLOT_FORMATS = (".png", ".svg", ".pdf")
INSTALL_HINT = "--plot needs matplotlib, which is not installed; pip install 'seqprep[plot]'"


def require_matplotlib() -> Any:
    """Import matplotlib with the Agg backend, or raise a one-line error saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return plt


def check_plot_path(path: str) -> Path:
    """The plot's file: a known image suffix in an existing folder."""
    p = Path(path)
    if p.suffix.lower() not in PLOT_FORMATS:
        msg = f"--plot {path!r}: unknown image type; give a file name ending in {', '.join(PLOT_FORMATS)}"
        raise ConfigError(msg)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        msg = f"--plot {path!r}: folder {str(parent)!r} does not exist; create it or choose another file"
        raise OutputError(msg)
    return p


def plot_stats(sources: list[Source], summaries: list[dict[str, Any]], path: str | Path) -> Path:
    """Draw the three panels for every source and save them atomically to ``path``."""
    plt = require_matplotlib()
    out = check_plot_path(str(path))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
    ax_len, ax_pop, ax_time = axes
    for src, s in zip(sources, summaries):
        label = s["path"]
        edges = np.asarray(s["length_histogram"]["edges"], dtype=float)
        counts = np.asarray(s["length_histogram"]["counts"], dtype=float)
        if len(counts):
            edges = np.maximum(edges, 0.5)  # a [0, 1) bin still shows on a log axis
            ax_len.stairs(counts, edges, label=label, linewidth=1.5)
        pop = np.sort(src.item_counts)[::-1]
        pop = pop[pop > 0]
        ax_pop.plot(np.arange(1, len(pop) + 1), pop, label=label, linewidth=1.5)
        pm = s["time"]["per_month"]
        if pm is not None:
            months = np.datetime64(pm["first_month"], "M") + np.arange(len(pm["counts"]))
            ax_time.plot(months.astype("datetime64[D]").astype(object), pm["counts"], label=label, linewidth=1.2)
    ax_len.set(xscale="log", yscale="log", xlabel="sequence length (interactions per user)", ylabel="users",
               title="Sequence lengths (log-spaced bins)")
    ax_pop.set(xscale="log", yscale="log", xlabel="item rank (most popular first)", ylabel="interactions",
               title="Item popularity long tail")
    ax_time.set(xlabel="month (UTC)", ylabel="interactions per month", title="Interactions over time")
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
        if len(sources) > 1:
            ax.legend(fontsize="small")
    ax_time.tick_params(axis="x", labelrotation=30)
    if len(sources) == 1:  # several sources are named by the legends
        fig.suptitle(summaries[0]["path"], fontsize="medium")
    fd, tmp = tempfile.mkstemp(prefix=".seqprep-plot-", suffix=out.suffix, dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
