"""The one build pipeline, shared by the CLI and the Python API: validate the options, pick an engine.

``run(config)`` runs :func:`seqprep.engines.local.run_local` (the reference: read -> clean ->
vocabularies -> stable time sort -> meta -> split -> write) or, with ``--engine dask``, the same
steps on a Dask cluster. The order of the steps and the tie rule are documented in docs/build.md
and recorded in meta.json:

1. inputs are concatenated in the order given (globs expand sorted), rows in file order;
2. rows with a missing user, item or timestamp are dropped and counted (``--strict`` rejects them);
   then ``--where`` keeps the rows where every predicate is true; with ``--vocab-from``, rows whose item the reused vocabulary lacks are counted (and dropped with
   ``--unknown drop``); then the optional cleaning steps run in their fixed order - time window,
   rating, dedup, k-core (:mod:`seqprep.steps.filters`) - each counted in meta.json ``steps``;
   kept rows stay in input order;
3. vocabularies are fitted on the kept rows (items 1..N, 0 = padding; users 0..U-1), or reused;
4. each user's interactions are sorted by timestamp, stably: equal timestamps keep input order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from .config import BuildConfig, make_config
from .engines.local import run_local
from .model import BuildResult
from .progress import SILENT, Progress
from .resources import limit_threads, settle_arrow_pandas

__all__ = ["run", "build"]


def run(
    config: BuildConfig,
    *,
    write: bool = True,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    progress: Progress = SILENT,
) -> BuildResult:
    """Run a build described by ``config``; with ``write`` the outputs land atomically in ``config.output``,
    or, for ``-o -``, go to ``stdout`` (default: the process's) as one stream (no folder at all).

    Stages: read -> clean (drop/count rows) -> fit vocabularies -> sort into sequences -> meta ->
    split, truncation and training inputs (:mod:`seqprep.steps.splits`) -> write. With ``--vocab-from-train``
    the split is decided before the item vocabulary is fitted (:func:`seqprep.steps.splits.fit_on_train`).
    ``progress`` (default: silent) is told about each long phase.
    """
    config.validate()
    # pyarrow imports pandas lazily on its first conversion to or from numpy, i.e. in the middle of a
    # build, where a Ctrl-C/SIGTERM landing inside that import leaves a half-initialised pandas and a
    # traceback: it is imported here, before the build, unless the CLI told pyarrow there is none
    settle_arrow_pandas()
    with limit_threads(config.resources.threads):
        try:
            if config.engine.engine == "dask":  # same contract, on a Dask cluster (seqprep[dask])
                from .engines.dask import run_dask  # dask is optional: imported on demand

                return run_dask(config, write=write, stdout=stdout)
            return run_local(config, write=write, stdin=stdin, stdout=stdout, progress=progress)
        finally:
            progress.done()


def build(
    inputs: str | Path | list[str | Path] | tuple[str | Path, ...],
    output: str | Path | None = None,
    *,
    write: bool = True,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    **options: Any,
) -> BuildResult:
    """Build sequences from interaction logs: the Python face of ``seqprep build``.

    ``options`` are the CLI's options as keyword arguments (``item_order="id"``, ``sep=";"``,
    ``formats=("parquet", "npz")``, ``overwrite=True``, ...). With ``write=False`` (or no ``output``)
    nothing is written and the result is returned in memory; ``output="-"`` streams to ``stdout``.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if output is None:
        write = False
        output = "<memory>"
    config = make_config([str(p) for p in inputs], str(output), **options)
    return run(config, write=write, stdin=stdin, stdout=stdout)
