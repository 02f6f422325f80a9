"""How much of the machine a build uses: thread caps and peak memory (no effect on the result)."""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

__all__ = ["limit_threads", "peak_rss_bytes", "sort_threads", "BLAS_THREAD_VARS"]

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
