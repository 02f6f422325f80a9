"""Pure array kernels: numpy/pyarrow in, new arrays out. No files, no click, no printing.

Every kernel is vectorised (no Python loop over rows or users) and documented with a tiny example
that pytest runs as a doctest.
"""

from .sequences import csr_offsets, padded, tie_mask, tie_stats, time_order
from .vocab import cast_ids_exact, extend_table, fit_order, lookup, order_counted, remap_table, reuse_table

__all__ = [
    "cast_ids_exact",
    "csr_offsets",
    "extend_table",
    "fit_order",
    "lookup",
    "order_counted",
    "padded",
    "remap_table",
    "reuse_table",
    "tie_mask",
    "tie_stats",
    "time_order",
]
