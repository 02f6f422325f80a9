"""The range reader's worker (io.ranges): ranges cut and parsed up to ``AHEAD`` ahead of the one
being encoded, tapering towards the end of the file. Whatever the block size, the number of threads
or how far the worker runs ahead, the batches are the file's rows in order, an error is raised
where the serial read raised it (after the batches before it), and a read stopped early stops the
worker; the buffers reserved from the first batch's estimate change no value."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep.io.ranges as ranges
from seqprep.config import ReadOptions
from seqprep.io.buffers import GrowBuffer, IdEncoder
from seqprep.io.ranges import RangeReader
from seqprep.io.stream import stream_log
from seqprep.resources import limit_threads
from tests.oracle import read_log_in_memory
from tests.test_canonical_ids import assert_encodes_as_text
from tests.test_ingest import assert_same_log

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

NAMES = ["user", "item", "rating", "timestamp"]
TYPES = {"user": pa.string(), "item": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()}


def _rows(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    u, i, t = rng.integers(1, 50, n), rng.integers(1, 500, n), rng.integers(0, 10**9, n)
    r = rng.choice(["1", "2.5", "4", ""], n)
    return "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in zip(u, i, r, t)).encode()


def _reader(data: bytes, block: int, header: bool = False) -> RangeReader:
    conv = pacsv.ConvertOptions(column_types=TYPES, strings_can_be_null=True)
    return RangeReader(
        pa.BufferReader(data), NAMES, header, block, pacsv.ParseOptions(delimiter=","), conv, hashed=False
    )


def _serial(data: bytes) -> pa.Table:
    conv = pacsv.ConvertOptions(column_types=TYPES, strings_can_be_null=True)
    return pacsv.read_csv(
        pa.BufferReader(data), read_options=pacsv.ReadOptions(column_names=NAMES), convert_options=conv
    )


@SETTINGS
@given(
    n=st.integers(1, 3000),
    seed=st.integers(0, 2**16),
    block=st.sampled_from([64, 257, 1000, 4096, 1 << 20]),
    ahead=st.sampled_from([1, 2, 3]),
    threads=st.sampled_from([1, 2, 4]),
)
def test_batches_are_the_rows_in_order(monkeypatch, n, seed, block, ahead, threads):
    """However far the worker runs ahead and however many blocks a range holds, the batches are the
    serial parse's rows, in order, and the progress position ends at the file's end."""
    monkeypatch.setattr(ranges, "AHEAD", ahead)
    data = _rows(n, seed)
    with limit_threads(threads):
        reader = _reader(data, block)
        try:
            got = pa.Table.from_batches(list(reader))
        finally:
            reader.close()
    want = _serial(data)
    assert got.num_rows == want.num_rows
    for name in NAMES:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    assert reader.position == len(data)


def test_the_ranges_taper_to_a_block_at_the_end(monkeypatch):
    """The first range is a block, the middle ones 2-4 blocks, the last ones a block or less: the
    range encoded after the parse is over is short."""
    seen: list[tuple[int, int]] = []
    real = RangeReader._next

    def spy(self, a, conv, infer):
        table, end = real(self, a, conv, infer)
        seen.append((a, end))
        return table, end

    monkeypatch.setattr(RangeReader, "_next", spy)
    data = _rows(40_000, 1)
    reader = _reader(data, 1 << 12)
    try:
        rows = sum(b.num_rows for b in reader)
    finally:
        reader.close()
    assert rows == 40_000
    block = reader.block_size
    sizes = [b - a for a, b in seen]
    assert seen[0][0] == 0 and seen[-1][1] == len(data)
    assert all(b == c for (_, b), (c, _) in zip(seen, seen[1:]))
    assert sizes[0] < block + 100  # (cut at the line end after the nominal end)
    assert max(sizes) >= 2 * block
    assert sizes[-1] < block + 100 and sizes[-2] < block + 100


def test_an_error_in_a_later_range_comes_after_the_rows_before_it():
    """A row that does not fit the first range's types, ranges later: the rows of the ranges before
    it are handed out first, then the conversion error - as the serial read raised it."""
    good = _rows(20_000, 2)
    bad_at = good.count(b"\n")
    data = good + b"5,6,4,not-a-time\n" + _rows(100, 3)
    reader = _reader(data, 1 << 10)
    rows = 0
    with pytest.raises(pa.ArrowInvalid, match="CSV conversion error"):
        try:
            for batch in reader:
                rows += batch.num_rows
        finally:
            reader.close()
    assert 0 < rows <= bad_at


@pytest.mark.parametrize("ahead", [1, 2, 3])
def test_the_worker_parses_ahead_ranges_while_one_is_encoded(monkeypatch, ahead):
    """While the caller holds the first range (it is "encoding" it), the worker cuts and parses
    exactly AHEAD more ranges, then waits for a slot: no fewer (the read-ahead works), no more (the
    memory bound holds). (The slot count was once AHEAD in all, one range ahead when AHEAD = 2.)"""
    monkeypatch.setattr(ranges, "AHEAD", ahead)
    parsed: list[int] = []
    real = RangeReader._next

    def spy(self, a, conv, infer):
        out = real(self, a, conv, infer)
        parsed.append(a)
        return out

    monkeypatch.setattr(RangeReader, "_next", spy)
    reader = _reader(_rows(60_000, 5), 1 << 12)
    try:
        next(reader)  # the caller now holds range 0
        t = time.perf_counter()
        while len(parsed) < 1 + ahead and time.perf_counter() - t < 30:  # (a wait, not a timing)
            time.sleep(0.01)
        time.sleep(0.2)  # room for a worker that would wrongly go further
        assert len(parsed) == 1 + ahead
        assert reader._ranges.qsize() == ahead
    finally:
        reader.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_reserved_room_is_not_resident_until_written():
    """reserve() of 400 MiB leaves the resident set about where it was: a too-large estimate costs
    address space, not memory (numpy's resize zero-filled, and so touched, every reserved page)."""
    import os

    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    buf = GrowBuffer(np.int64, capacity=1 << 10)
    buf.append(np.arange(1 << 10, dtype=np.int64))
    before = rss()
    buf.reserve(50 << 20)  # 400 MiB of int64
    grown = rss() - before
    buf.append(np.arange(5, dtype=np.int64))
    assert grown < 64 << 20, grown
    assert buf.finish()[-6:].tolist() == [1023, 0, 1, 2, 3, 4]


def test_a_read_stopped_early_stops_the_worker():
    """close() after the first batch: the worker stops after the range in flight, its threads end,
    and no range parsed ahead is kept."""
    before = {t.ident for t in threading.enumerate()}
    reader = _reader(_rows(50_000, 4), 1 << 10)
    next(reader)
    t = time.perf_counter()
    reader.close()
    assert time.perf_counter() - t < 10
    left = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("seqprep-")]
    assert not [t for t in left if t.is_alive()]
    assert reader._ranges.empty()


def test_a_reader_never_closed_does_not_keep_the_process_alive(tmp_path):
    """A caller that drops a reader without close(): its worker, waiting for a slot, is a daemon
    thread, so the interpreter still exits."""
    p = tmp_path / "log.csv"
    p.write_bytes(_rows(50_000, 5))
    code = (
        "import pyarrow as pa, pyarrow.csv as pacsv\n"
        "from seqprep.io.ranges import RangeReader\n"
        f"conv = pacsv.ConvertOptions(column_types={{'user': pa.string(), 'item': pa.string()}})\n"
        f"r = RangeReader(pa.OSFile({str(p)!r}), {NAMES!r}, False, 1024, pacsv.ParseOptions(), conv)\n"
        "next(r)\n"
        "print('left')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "left"


@SETTINGS
@given(
    n=st.integers(1, 2000),
    seed=st.integers(0, 2**16),
    block=st.sampled_from([64, 500, 1 << 20]),
    ahead=st.sampled_from([1, 2]),
    threads=st.sampled_from([1, 3]),
)
def test_log_does_not_depend_on_the_read_ahead_or_threads(
    tmp_path_factory, monkeypatch, n, seed, block, ahead, threads
):
    """The whole Log (codes, dictionaries, times, ratings, sha256) is the in-memory reader's, whatever
    the read-ahead, block size or thread count; spilled (--memory-limit) too."""
    monkeypatch.setattr(ranges, "AHEAD", ahead)
    d = tmp_path_factory.mktemp("r")
    p = d / "log.csv"
    rng = np.random.default_rng(seed)
    # ids written user by user (runs) with some leading zeros and blanks now and then
    users = np.sort(rng.integers(1, 80, n))
    items = rng.integers(1, 300, n)
    lead = rng.random(n) < 0.01
    rows = [
        f"{'0' + str(u) if z else u},{'' if i == 7 else i},{r},{k}"
        for k, (u, i, z, r) in enumerate(zip(users, items, lead, rng.choice(["1", "3.5", ""], n)))
    ]
    p.write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    want = read_log_in_memory([str(p)], ReadOptions())
    with limit_threads(threads):
        assert_same_log(stream_log([str(p)], ReadOptions(), block_size=block), want)
        spill = d / "spill"
        spill.mkdir()
        assert_same_log(stream_log([str(p)], ReadOptions(), block_size=block, spill_dir=spill), want)


runs = st.lists(st.tuples(st.integers(0, 400), st.integers(1, 90)), max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    blocks=st.lists(
        st.tuples(runs, st.booleans(), st.booleans(), st.sampled_from([0, 0, 0, -(2**40), 2**40])), max_size=6
    ),
    dense=st.sampled_from([1, 50, 1 << 21]),
)
def test_blocks_of_runs_encode_as_their_text_does(monkeypatch, blocks, dense):
    """Blocks of ids in runs (a log written user by user: each user's rows together; the value
    table then looks at the first row of each run of new ids only), some with a missing id, some
    with an id of leading zeros (text), give the codes and dictionary of the same blocks as text."""
    monkeypatch.setattr(IdEncoder, "DENSE_MIN", dense)
    arrays = []
    for run, with_null, with_zero, shift in blocks:  # (a shift: ids past the value table's bound)
        values: list[str | None] = [str(v + shift) for v, k in run for _ in range(k)]
        if with_null and values:
            values[len(values) // 2] = None
        if with_zero and values:
            values[-1] = "007"
        arrays.append(pa.array(values, pa.string()))
    assert_encodes_as_text(arrays)


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.integers(0, 300), max_size=12),
    reserve_at=st.integers(0, 12),
    reserve=st.integers(0, 5000),
)
def test_a_reserved_buffer_holds_what_was_appended(parts, reserve_at, reserve):
    """reserve() (an estimate, too small or too large) changes nothing in what finish() gives."""
    buf, want = GrowBuffer(np.int64, capacity=4), []
    for k, n in enumerate(parts):
        if k == reserve_at:
            buf.reserve(reserve)
        block = np.arange(len(want), len(want) + n, dtype=np.int64)
        buf.append(block)
        want.extend(block.tolist())
    got = buf.finish()
    assert got.tolist() == want and got.dtype == np.int64 and got.flags.owndata


def test_close_after_an_interrupt_before_the_worker_started(monkeypatch):
    """A Ctrl-C or SIGTERM (KeyboardInterrupt) can land between the worker thread's creation and
    its start: close() then has no thread to join, and the interrupt is what the caller sees
    (seen in CI as 'cannot join thread before it is started' out of test_interrupt.py)."""
    import threading

    data = b"".join(b"%d,%d,4.0,%d\n" % (k % 7, k % 11, k) for k in range(2000))
    reader = _reader(data, 1024)
    real_start = threading.Thread.start

    def interrupted(self):
        if self.name == "seqprep-csv":
            raise KeyboardInterrupt
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", interrupted)
    with pytest.raises(KeyboardInterrupt):
        next(iter(reader))
    reader.close()  # (no RuntimeError)
