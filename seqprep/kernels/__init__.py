"""Pure array kernels: numpy/pyarrow in, new arrays out. No files, no click, no printing.

Every kernel is vectorised (no Python loop over rows or users) and documented with a tiny example
that pytest runs as a doctest.
"""

from .sequences import csr_offsets, padded, tie_mask, tie_stats, time_order
from .vocab import fit_order, order_counted, remap_table

__all__ = ["csr_offsets", "fit_order", "order_counted", "padded", "remap_table", "tie_mask", "tie_stats", "time_order"]
