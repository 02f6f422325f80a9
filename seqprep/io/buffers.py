"""Growing columns for the streaming reader: in memory (:class:`GrowBuffer`) or spilled to files
(:class:`FileBuffer`, ``--memory-limit``), and the id dictionary encoder that feeds them."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..kernels.arrow import from_numpy

__all__ = [
    "GrowBuffer",
    "FileBuffer",
    "read_rows",
    "buffer_factory",
    "IdEncoder",
    "steady_heap",
]


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
#: Allocations from this size on get a memory map of their own, returned when freed; smaller ones
#: come from malloc's heaps, whose freed memory is used again (see :func:`steady_heap`).
_MMAP_THRESHOLD = 8 << 20
#: Free memory at the top of a heap is returned beyond this much (below the 64 MiB of a thread's
#: heap, so that those shrink too).
_TRIM_THRESHOLD = 32 << 20
_steady = False


def steady_heap() -> None:
    """Fix glibc malloc's thresholds for a build: allocations of 8 MiB or more get a memory map of
    their own (returned on free), smaller ones come from the heaps, which keep up to 32 MiB free.

    Every page of a fresh memory map costs a page fault when first written (1.4-1.5 us a 4 KiB page
    on the 2-core benchmark machine, against ~0.2 us for reused memory), and a build allocates
    and frees the same sizes over and over: the reader's per-block arrays (a few MiB each), the
    sort's per-part keys and orders (8 MiB and less a part). glibc's own default raises its
    map threshold as allocations are freed (up to 32 MiB) and keeps 128 KiB free; the first
    version of this function fixed it at 64 KiB to hold the peak resident size down (50 MiB less at
    5M rows), but then every array of 64 KiB or more was a fresh map: 25M shuffled rows took 2.4M
    page faults (9 GiB of fresh pages for a build whose peak is 1.1 GiB) and 6-7 s of system time.
    8 MiB / 64 MiB kept those arrays in the heaps: 1.5M faults; 25M shuffled rows 13% faster than
    with 64 KiB (8.64 -> 7.52 s), 25M user-time and user-then-item rows 7-8%, for -3% to +4% peak
    memory; 5M rows the same within the noise (5 rounds of benchmarks/quoted.py with the trees
    side by side, docs/performance.md). The trim threshold is 32 MiB, below the 64 MiB a thread's
    heap holds at most, so the sort's and the writer's threads give memory back too (with 64 MiB
    their heaps would never shrink, which 2 cores do not show but many would); 25M shuffled and 5M
    builds took the same time and memory with 32 as with 64 MiB (3 rounds each). A setting the
    environment gives (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, or
    ``glibc.malloc.mmap_threshold`` / ``glibc.malloc.trim_threshold`` in ``GLIBC_TUNABLES``) is left
    alone, each on its own. Once per process; nothing elsewhere than on glibc. The ``seqprep``
    command calls it for its own process; the library never does, so a caller's process keeps its
    own malloc settings (set the two variables for the same effect).
    """
    global _steady
    if _steady or not sys.platform.startswith("linux"):
        return
    _steady = True
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    wanted = [
        (param, value)
        for param, value, env, tunable in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold"),
        )
        if env not in os.environ and tunable not in tunables
    ]
    if not wanted:
        return
    try:
        import ctypes  # (numpy and pyarrow have imported it)

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    for param, value in wanted:
        mallopt(param, value)


class GrowBuffer:
    """An append-only numpy column that grows in place (``realloc``), never holding two copies.

    >>> b = GrowBuffer(np.int32, capacity=2)
    >>> b.append(np.array([1, 2, 3], dtype=np.int32)); b.append(np.array([4], dtype=np.int32))
    >>> b.finish()
    array([1, 2, 3, 4], dtype=int32)
    """

    def __init__(self, dtype: Any, capacity: int = 1 << 16) -> None:
        self._arr = np.empty(max(1, capacity), dtype=dtype)
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        n = len(values)
        need = self.size + n
        if need > len(self._arr):
            self._arr.resize(max(need, len(self._arr) * 3 // 2 + 1), refcheck=False)
        self._arr[self.size : need] = values
        self.size = need

    def fill(self, value: Any, n: int) -> None:
        self.append(np.full(n, value, dtype=self._arr.dtype))

    def reserve(self, n: int) -> None:
        """Room for ``n`` values in all (an estimate of the rows to come), so the buffer need not
        grow block by block, copying what it holds. The room is a fresh ``np.empty`` (a memory map
        of its own, its pages untouched) that the values so far are copied into - not numpy's
        resize, which zero-fills the new room and so makes every reserved page resident at once:
        an estimate too large (a file whose first rows are shorter than the rest) costs address
        space, not memory, and :meth:`finish` gives back what was not used (the reader's estimate is
        the first batch's rows per byte, scaled to the file, plus 5%).

        >>> b = GrowBuffer(np.int64, capacity=2)
        >>> b.append(np.array([5, 6, 7])); b.reserve(1000); b.append(np.array([8]))
        >>> b.finish()
        array([5, 6, 7, 8])
        """
        if n > len(self._arr):
            room = np.empty(n, dtype=self._arr.dtype)
            room[: self.size] = self._arr[: self.size]
            self._arr = room

    def close(self) -> None:
        """Nothing to release (a :class:`FileBuffer` closes its file)."""

    def finish(self) -> np.ndarray:
        """The filled part as an array that owns its memory (the buffer is then spent)."""
        arr = self._arr
        self._arr = np.empty(0, dtype=arr.dtype)
        arr.resize(self.size, refcheck=False)
        return arr


class FileBuffer:
    """A :class:`GrowBuffer` that appends to a file in a spill folder; ``finish`` maps it read-only.

    Appended bytes go through the page cache, not this process's memory, so spilled columns do not
    count towards its resident size; readers should take them back in chunks (:func:`read_rows`).
    """

    _serial = 0

    def __init__(self, dtype: Any, folder: Path) -> None:
        FileBuffer._serial += 1
        self.dtype = np.dtype(dtype)
        self.path = folder / f"col-{FileBuffer._serial}.{self.dtype.str.strip('<>=|')}"
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed by finish()
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        np.ascontiguousarray(values, dtype=self.dtype).tofile(self._fh)
        self.size += len(values)

    def fill(self, value: Any, n: int) -> None:
        self.append(np.full(n, value, dtype=self.dtype))

    def reserve(self, n: int) -> None:
        """Nothing to do: a file grows as it is written."""

    def close(self) -> None:
        self._fh.close()

    def finish(self) -> np.ndarray:
        self._fh.close()
        if self.size == 0:
            return np.empty(0, dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.size,))


def read_rows(arr: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``arr[start:stop]`` as an in-memory copy; a memory-mapped column is read with ``np.fromfile``,
    so its pages never become part of this process's resident memory.

    >>> read_rows(np.arange(5), 1, 3)
    array([1, 2])
    """
    if isinstance(arr, np.memmap) and arr.filename is not None:
        stop = min(stop, len(arr))
        count = max(0, stop - start)
        return np.fromfile(arr.filename, dtype=arr.dtype, count=count, offset=arr.offset + start * arr.itemsize)
    return np.asarray(arr[start:stop])


def buffer_factory(spill_dir: Path | None) -> Callable[[Any], GrowBuffer | FileBuffer]:
    """New columns in memory, or in files under ``spill_dir`` when given."""
    if spill_dir is None:
        return GrowBuffer
    return lambda dtype: FileBuffer(dtype, spill_dir)


def _run_heads(values: np.ndarray) -> np.ndarray:
    """``values`` without the ones equal to the value before them, when that drops most of them (a
    log written user by user: each user's rows in a run); the first appearance of every value stays,
    in order, so their first-seen order is that of ``values``.

    >>> _run_heads(np.repeat([5, 3, 5, 7], [30, 20, 10, 40])).tolist()
    [5, 3, 5, 7]
    """
    if len(values) < 64:
        return values
    heads = np.empty(len(values), dtype=bool)
    heads[0] = True
    np.not_equal(values[1:], values[:-1], out=heads[1:])
    kept = int(np.count_nonzero(heads))
    return values[heads] if kept <= len(values) // 2 else values


class IdEncoder:
    """Dictionary-encodes one id column block by block against a growing, first-seen dictionary.

    Blocks wait (as int32 indices + their small dictionary) until their dictionaries add up to the
    size of the global one; then one ``unify_dictionaries`` maps all of them at once. Each flush
    hashes the global dictionary once, so the cost stays linear in the number of block-distinct ids.
    Missing ids get code -1.

    Blocks of text ids that are canonical decimal come as their integers (:meth:`add_ints`, from
    :func:`~seqprep.io.columns.canonical_ints`): while every block so far did and the values are
    small non-negative integers, a table indexed by the value gives each row its code (no hashing,
    no dictionary to unify); otherwise they join the dictionaries as int64 values, which meet text
    ones as their canonical text. Either way :meth:`finish` gives the text dictionary the same ids
    read as text would (same ids, same first-seen order, same codes).

    >>> enc = IdEncoder(min_flush=1)
    >>> enc.add(pa.array(["b", "a", None, "b"]).dictionary_encode())
    >>> enc.add(pa.array(["c", "a"]).dictionary_encode())
    >>> codes, ids = enc.finish()
    >>> codes.tolist(), ids.to_pylist()
    ([0, 1, -1, 0, 2, 1], ['b', 'a', 'c'])
    >>> enc = IdEncoder(min_flush=1)
    >>> enc.add_ints(np.array([7, 3, 0, 7]), np.array([True, True, False, True]))
    >>> enc.add(pa.array(["007", "3", "9"]).dictionary_encode())
    >>> enc.add_ints(np.array([9, 12]), None)
    >>> codes, ids = enc.finish()
    >>> codes.tolist(), ids.to_pylist()
    ([0, 1, -1, 0, 2, 1, 3, 3, 4], ['7', '3', '007', '9', '12'])
    """

    #: The value table's length stays below this many entries (8 MiB), or half the number of rows so far.
    DENSE_MIN = 1 << 21

    def __init__(self, *, min_flush: int = 1 << 16, new_buffer: Callable[[Any], Any] = GrowBuffer) -> None:
        self.codes = new_buffer(np.int32)
        self.dictionary: pa.Array | None = None
        self._pending: list[tuple[np.ndarray, pa.Array]] = []
        self._pending_size = 0
        self._min_flush = min_flush
        self._rows = 0
        self._from_text = False  # an integer dictionary that stands for text ids (add_ints)
        self._table: np.ndarray | None = None  # the value table: value -> code, -1 for not seen
        self._values: list[np.ndarray] = []  # its dictionary (values in first-seen order), in parts
        self._size = 0  # ... and its length

    def add(self, col: pa.DictionaryArray) -> None:
        self._leave_table()
        self._rows += len(col)
        indices = col.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        self._pending.append((indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), col.dictionary))
        self._pending_size += len(col.dictionary)
        if self._pending_size >= max(self._min_flush, 0 if self.dictionary is None else len(self.dictionary)):
            self.flush()

    def add_ints(self, values: np.ndarray, valid: np.ndarray | None) -> None:
        """A block of text ids that are all canonical decimal, as their int64 ``values`` (any value
        where ``valid`` is False, i.e. missing)."""
        self._from_text = True
        n = len(values)
        if n == 0:
            return
        first = self.dictionary is None and not self._pending and self._rows == 0
        if self._table is None and first:
            self._table = np.full(0, -1, np.int32)
        if self._table is not None:
            low, top = int(values.min()), int(values.max())
            if low >= 0 and top < self._table_bound(n):
                self._add_to_table(values, valid, top)
                return
        mask = None if valid is None else ~valid
        self.add(pc.dictionary_encode(pa.array(values, pa.int64(), mask=mask)))

    def _table_bound(self, n: int) -> int:
        """The value table's largest length: half an entry a row read, at least ``DENSE_MIN``; only
        ``DENSE_MIN`` when the codes are spilled to a file (``--memory-limit``: a fixed bound)."""
        if not isinstance(self.codes, GrowBuffer):
            return self.DENSE_MIN
        return max(self.DENSE_MIN, (self._rows + n) // 2)

    def _add_to_table(self, values: np.ndarray, valid: np.ndarray | None, top: int) -> None:
        table = self._table
        assert table is not None
        if top >= len(table):  # grown in place, never past the bound add_ints checked
            old = len(table)
            table.resize(max(top + 1, min(2 * old, self._table_bound(len(values)))), refcheck=False)
            table[old:] = -1
        codes = table[values]
        if int(codes.min()) < 0:  # ids not seen before (or missing ones)
            unseen = codes < 0
            if valid is not None:
                unseen &= valid
            if unseen.any():
                fresh = pc.unique(from_numpy(_run_heads(values[unseen]))).to_numpy(zero_copy_only=False)  # first-seen order
                table[fresh] = np.arange(self._size, self._size + len(fresh), dtype=np.int32)
                self._values.append(fresh)
                self._size += len(fresh)
                codes = table[values]
        if valid is not None:
            codes[~valid] = -1
        self.codes.append(codes)
        self._rows += len(values)

    def _leave_table(self) -> None:
        """From the value table to the dictionaries: its values become the global dictionary."""
        if self._table is None:
            return
        self._table = None
        self.dictionary = from_numpy(np.concatenate(self._values) if self._values else np.zeros(0, np.int64), pa.int64())
        self._values = []

    def flush_small(self, limit: int = 1 << 12) -> None:
        """Flush now when the dictionaries are small (at most ``limit`` values in all): a column of a
        few categories is then mapped block by block as it is read, not all at once at the end."""
        if self._pending and self._pending_size + (0 if self.dictionary is None else len(self.dictionary)) <= limit:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        dicts = ([] if self.dictionary is None else [self.dictionary]) + [d for _, d in self._pending]
        value_type = dicts[0].type
        if any(d.type != value_type for d in dicts):  # e.g. string and large_string blocks, or ints from text
            dicts = [pc.cast(d, pa.string()) for d in dicts]
        chunks = [pa.DictionaryArray.from_arrays(from_numpy(np.arange(len(d), dtype=np.int32)), d) for d in dicts]
        unified = pa.table({"c": pa.chunked_array(chunks)}).unify_dictionaries()["c"]
        first = 0 if self.dictionary is None else 1
        for (indices, _), chunk in zip(self._pending, unified.chunks[first:]):
            mapping = np.append(chunk.indices.to_numpy(zero_copy_only=False).astype(np.int32), np.int32(-1))
            self.codes.append(mapping[indices])  # index -1 (missing) takes the trailing -1
        self.dictionary = unified.chunk(0).dictionary if unified.num_chunks else dicts[0]
        self._pending = []
        self._pending_size = 0

    def finish(self, empty_type: pa.DataType = pa.string()) -> tuple[np.ndarray, pa.Array]:
        self._leave_table()
        self.flush()
        dictionary = self.dictionary if self.dictionary is not None else pa.array([], empty_type)
        if self._from_text and pa.types.is_integer(dictionary.type):
            dictionary = pc.cast(dictionary, pa.string())  # the ids as read: text
        self._table = None
        return self.codes.finish(), dictionary
