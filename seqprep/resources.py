"""How much of the machine a build uses: thread caps and peak memory (no effect on the result)."""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

__all__ = [
    "BLAS_THREAD_VARS",
    "limit_threads",
    "peak_rss_bytes",
    "settle_arrow_pandas",
    "sort_threads",
    "without_pandas",
]

#: Environment variables that cap OpenMP/BLAS thread pools (read when such a pool starts).
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Cap pyarrow's CPU and I/O thread pools (and BLAS/OpenMP pools not yet started) to ``threads``.

    ``None`` leaves everything as it is (all cores). The previous values are restored on exit.

    >>> with limit_threads(1):
    ...     pa.cpu_count()
    1
    """
    if threads is None:
        yield
        return
    cpu, io = pa.cpu_count(), pa.io_thread_count()
    env = {k: os.environ.get(k) for k in BLAS_THREAD_VARS}
    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)
    for k in BLAS_THREAD_VARS:
        os.environ[k] = str(threads)
    try:
        try:  # optional: caps BLAS pools that are already running (numpy's own kernels here are 1-thread)
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield
        else:
            with threadpool_limits(limits=threads):
                yield
    finally:
        pa.set_cpu_count(cpu)
        pa.set_io_thread_count(io)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (``getrusage`` ru_maxrss), in bytes.

    >>> peak_rss_bytes() > 0
    True
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def sort_threads() -> int:
    """Threads for seqprep's own parallel kernels (the sort): pyarrow's CPU count, which ``--threads``
    caps (see :func:`limit_threads`). The result of a build never depends on it.

    >>> with limit_threads(1):
    ...     sort_threads()
    1
    """
    return max(1, pa.cpu_count())



class _NoPandas:
    """Refuses ``import pandas`` while it is on ``sys.meta_path`` (see :func:`without_pandas`).

    A meta path finder needs only ``find_spec``; not an ``importlib.abc.MetaPathFinder``, whose
    import (``importlib.resources`` and more) a build of a small log would pay for it."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            msg = (
                "a seqprep build run by the CLI does not import pandas (see seqprep.resources.without_pandas); "
                "use numpy/pyarrow, or run that code outside the build"
            )
            raise ImportError(msg)


_ARROW_PANDAS_SETTLED = False


@contextmanager
def without_pandas() -> Iterator[None]:
    """Inside the block ``import pandas`` fails, so pyarrow works as it does when pandas is not installed.

    pyarrow looks for pandas on its first conversion from or to numpy (``pa.array(ndarray)``,
    ``to_numpy()``) and imports it then: 0.2-0.5 s and ~40 MiB that a build does not use, in the
    middle of the build, where a Ctrl-C or SIGTERM can land inside the import (a half-imported pandas,
    then a traceback). The CLI runs a build inside this block (the local engine's steps use numpy and
    pyarrow only). Nothing changes when pandas is imported already.
    """
    global _ARROW_PANDAS_SETTLED
    if "pandas" in sys.modules:
        yield
        return
    finder, settled = _NoPandas(), _ARROW_PANDAS_SETTLED
    sys.meta_path.insert(0, finder)
    _ARROW_PANDAS_SETTLED = True  # no pandas to import before the build: pyarrow is without it
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        _ARROW_PANDAS_SETTLED = settled


def settle_arrow_pandas() -> None:
    """Before a build: make sure pyarrow will not import pandas in the middle of it - pandas is
    imported now, unless the build runs :func:`without_pandas` (the CLI)."""
    if not _ARROW_PANDAS_SETTLED:
        import pandas  # noqa: F401
