"""How much of the machine a build uses: thread caps and peak memory (no effect on the result)."""

from __future__ import annotations

import importlib
import os
import resource
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

__all__ = [
    "BLAS_THREAD_VARS",
    "allow_huge_pages",
    "huge_pages",
    "huge_pages_allowed",
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


#: Whether :func:`huge_pages` may turn numpy's transparent-huge-page advice on (:func:`allow_huge_pages`).
_HUGE_PAGES_ALLOWED = False


def allow_huge_pages(allowed: bool = True) -> None:
    """Let :func:`huge_pages` turn numpy's huge-page advice on in this process. The ``seqprep``
    command calls it when it turned the advice off itself (``NUMPY_MADVISE_HUGEPAGE=0``, because no
    environment variable chose): a setting of the user's stays for the whole process."""
    global _HUGE_PAGES_ALLOWED
    _HUGE_PAGES_ALLOWED = allowed


def huge_pages_allowed() -> bool:
    """Whether :func:`huge_pages` may turn numpy's huge-page advice on (:func:`allow_huge_pages`)."""
    return _HUGE_PAGES_ALLOWED


def _madvise_setter() -> Any:
    """numpy's switch of its huge-page advice (``_set_madvise_hugepage(bool) -> the previous
    value``, what ``NUMPY_MADVISE_HUGEPAGE`` sets at import), or None where numpy has none."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):  # (numpy 2, numpy 1.x)
        try:
            setter = getattr(importlib.import_module(name), "_set_madvise_hugepage", None)
        except ImportError:
            continue
        if callable(setter):
            return setter
    return None


@contextmanager
def huge_pages(wanted: bool) -> Iterator[None]:
    """Inside the block numpy asks the kernel to back its new arrays of 4 MiB or more with
    transparent huge pages (``madvise(MADV_HUGEPAGE)``), when ``wanted`` and
    :func:`allow_huge_pages` allowed it; the advice is as before afterwards. Nothing else changes:
    the arrays, and so the result, are the same.

    The ``seqprep`` command turns numpy's advice off for its process: on the 2-core benchmark
    machine (``defrag=madvise``) the faults of 2 MiB pages stalled in compaction and made a split's
    fresh arrays 3-4x slower. A sort of scattered rows (neither in time order nor grouped by user)
    is the other way round: it fills several fresh column-sized arrays, and faulting them in 4 KiB
    pages (about 1.5 us each there) was a fifth of its CPU time - a 25M-row shuffled build took
    0.81-0.98x the wall time and 0.8-3.8 CPU-s less with the advice (docs/performance.md); the
    local engine asks for it there alone."""
    setter = _madvise_setter() if wanted and _HUGE_PAGES_ALLOWED else None
    if setter is None:
        yield
        return
    before = setter(True)
    try:
        yield
    finally:
        setter(before)


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
