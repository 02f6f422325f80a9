"""The progress display (seqprep/progress.py) on a fake terminal: how often it redraws, the rate and
time-left text, the ticker thread that keeps a blocked phase's time moving, and silence when off."""

from __future__ import annotations

import io
import threading
import time

import pytest

from seqprep.progress import SILENT, Progress, for_terminal

MiB = 2**20


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(out: FakeTty) -> list[str]:
    """The drawn lines, in order (without the clearing control sequences)."""
    return [part.replace("\x1b[K", "") for part in out.getvalue().split("\r") if part.replace("\x1b[K", "")]


def fake(interval: float = 0.25, **kw) -> tuple[Progress, FakeTty, FakeClock]:
    out, clock = FakeTty(), FakeClock()
    return Progress(out, interval=interval, clock=clock, ticker=False, **kw), out, clock


def test_updates_redraw_at_most_once_per_interval():
    p, out, clock = fake(interval=0.25)
    p.phase("reading x.csv", 100 * MiB, "bytes")
    start = clock.now
    for k in range(1, 201):  # 2 s of updates every 10 ms: a reader reporting every block
        clock.now = start + k * 0.01
        p.update(k * MiB // 2, rows=k)
    drawn = lines(out)
    assert len(drawn) == 1 + 8  # the phase's first line, then one per 0.25 s
    assert drawn[-1].startswith("seqprep: reading x.csv [")


def test_a_redraw_shows_the_rate_and_the_time_left():
    p, out, clock = fake()
    p.phase("reading x.csv", 100 * MiB, "bytes")
    clock.now += 2.0
    p.update(25 * MiB, rows=1000)
    assert lines(out)[-1] == (
        "seqprep: reading x.csv [######..................]  25% 25.0 MiB/100.0 MiB, 1,000 rows, "
        "12.5 MiB/s, 6 s left (2.0 s)"
    )
    p.phase("counting", 1000, "rows")
    clock.now += 1.0
    p.update(250)
    assert lines(out)[-1] == "seqprep: counting [######..................]  25% 250/1,000 rows, 250 rows/s, 3 s left (1.0 s)"
    clock.now += 74.0
    p.update(999)
    assert lines(out)[-1].endswith(", 0 s left (1 min 15 s)")
    p.phase("writing out/")
    clock.now += 3.0
    p.tick()
    assert lines(out)[-1] == "seqprep: writing out/ (3.0 s)"  # no total, nothing counted: the time only


def test_no_rate_in_the_first_moments_and_none_left_when_done():
    p, out, clock = fake(interval=0)
    p.phase("reading x.csv", 10 * MiB, "bytes")
    clock.now += 0.1
    p.update(5 * MiB)
    assert "/s" not in lines(out)[-1]  # a rate from the first 0.1 s would say little
    clock.now += 1.0
    p.update(10 * MiB)
    assert lines(out)[-1].endswith("100% 10.0 MiB/10.0 MiB, 9.1 MiB/s (1.1 s)")


def test_tick_redraws_a_phase_nobody_updates():
    p, out, clock = fake(interval=0.25)
    p.phase("sorting 7 interactions")
    clock.now += 0.1
    p.tick()
    assert len(lines(out)) == 1  # drawn 0.1 s ago: not yet
    clock.now += 0.2
    p.tick()
    assert lines(out)[-1] == "seqprep: sorting 7 interactions (0.3 s)"
    p.done()
    clock.now += 1.0
    p.tick()  # after done(): nothing
    assert out.getvalue().endswith("\r\x1b[K")


def test_the_ticker_thread_redraws_twice_a_second_and_stops_at_done():
    out = FakeTty()
    p = Progress(out)  # the defaults the CLI uses: the real clock, a ticker thread
    p.phase("sorting 8,000,000 interactions")  # a phase whose caller blocks and never reports
    time.sleep(1.3)
    drawn = lines(out)
    assert len(drawn) >= 1 + 2, drawn  # the first line, then at least two redraws a second
    assert drawn[-1] != drawn[0]  # the elapsed time moved
    (ticker,) = [t for t in threading.enumerate() if t.name == "seqprep-progress"]
    assert ticker.daemon and ticker.is_alive()
    p.done()
    assert not ticker.is_alive()
    text = out.getvalue()
    time.sleep(0.4)
    assert out.getvalue() == text and text.endswith("\r\x1b[K")  # nothing drawn after done()


def test_each_phase_has_its_own_ticker():
    out = FakeTty()
    p = Progress(out, interval=0.05)
    before = threading.active_count()
    for name in ("reading", "encoding ids", "sorting", "writing"):
        p.phase(name)
        assert threading.active_count() == before + 1
    p.done()
    assert threading.active_count() == before


def test_update_from_other_threads():
    """A reader may report from its worker threads, as often as it likes."""
    p, out, clock = fake(interval=0.25)
    p.phase("reading x.csv", 4 * 10_000, "bytes")
    errors = []

    def report(k: int) -> None:
        try:
            for n in range(10_000):
                p.update(k * 10_000 + n)
        except Exception as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    workers = [threading.Thread(target=report, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert len(lines(out)) == 1  # the fake clock never moved: 40,000 updates, no redraw
    clock.now += 1.0
    p.update(4 * 10_000, force=True)
    assert " 100% " in lines(out)[-1]


def test_the_line_fits_the_terminal():
    p, out, clock = fake(width=40)
    p.phase("reading a-file-with-a-long-name.csv", 100 * MiB, "bytes")
    clock.now += 1
    p.update(50 * MiB, rows=123_456_789)
    assert all(len(line) <= 39 for line in lines(out))


@pytest.mark.parametrize(
    ("quiet", "stream"),
    [(False, None), (True, FakeTty()), (False, io.StringIO())],
    ids=["silent", "quiet", "piped"],
)
def test_nothing_drawn_and_no_thread_when_inactive(quiet, stream):
    p = SILENT if stream is None else for_terminal(quiet, stream)
    before = threading.active_count()
    p.phase("reading x.csv", 100, "bytes")
    p.update(50, rows=10)
    p.tick()
    assert threading.active_count() == before
    p.done()
    assert not p.active
    assert stream is None or stream.getvalue() == ""


def test_nothing_drawn_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    out = FakeTty()
    p = for_terminal(False, out)
    p.phase("reading x.csv", 100, "bytes")
    p.update(50)
    p.done()
    assert out.getvalue() == ""
