"""A small progress display for long phases (reading, encoding, sorting, writing), on stderr only.

The pipeline reports to a :class:`Progress`; the default :data:`SILENT` shows nothing. The CLI builds
one with :func:`for_terminal`, which is active only when stderr is a terminal, ``--quiet`` is not
given and ``CI`` is not set: piped or logged runs never get control characters in their output.

One ``\\r``-rewritten line per phase: the phase, a bar and the share done when the total is known,
the amount done, the rows, the rate (MiB/s for bytes, else per second) and the time left, then the
time the phase has taken::

    seqprep: reading log.csv [######..................]  25% 32.0 MiB/128.0 MiB, 1,234,567 rows, 64.0 MiB/s, 2 s left (0.5 s)

The line is redrawn at most every ``interval`` seconds from :meth:`Progress.update`, and a daemon
*ticker* thread, started and stopped with each phase, redraws it whenever nothing else has for an
``interval``: a phase whose caller cannot report while it works (one blocking pyarrow call, a sort)
still shows its time going up, at least twice a second. The ticker only redraws; it never changes
what is shown.

``update`` may be called from any thread, as often as a reader likes: it stores the numbers and
returns unless a redraw is due (one clock read and a comparison). No dependency (tqdm and rich were
weighed: tqdm redraws only when it is updated, so it would need this ticker all the same, and rich
is a large dependency for one line).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "SILENT", "for_terminal", "human_bytes", "human_duration"]

#: Seconds into a phase before a rate (and the time left) is shown: the first reports are too few to say.
RATE_AFTER = 0.5


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> human_bytes(1536), human_bytes(3 * 2**30)
    ('1.5 KiB', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def human_duration(seconds: float) -> str:
    """``75`` -> ``'1 min 15 s'``: seconds below a minute, then minutes and seconds, then hours.

    >>> human_duration(4.4), human_duration(75), human_duration(7260)
    ('4 s', '1 min 15 s', '2 h 01 min')
    """
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Phases with an optional total; ``update`` sets the done amount (and an optional rows count).

    ``phase(name, total, unit)`` starts a phase (``unit="bytes"`` shows sizes and MiB/s; another unit,
    e.g. ``"rows"``, is named after the numbers); ``update(done, rows)`` reports, from any thread;
    ``done()`` ends the phase and clears the line. ``clock`` and ``ticker`` are for tests: a fake
    clock, and no thread (call :meth:`tick` by hand).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval: float = 0.25,
        width: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        ticker: bool = True,
    ) -> None:
        self.stream = stream
        self.interval = interval
        self.width = width
        self.clock = clock
        self.ticker = ticker
        self._lock = threading.RLock()  # around drawing; re-entrant: a Ctrl-C may end a phase mid-draw
        self._phase = ""
        self._total: float | None = None
        self._unit = ""
        self._done = 0.0
        self._rows: int | None = None
        self._start = 0.0
        self._last = 0.0
        self._line_width = 80
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self.stream is not None

    def phase(self, name: str, total: float | None = None, unit: str = "") -> None:
        """Start a phase (ends the previous one); ``unit="bytes"`` shows sizes in KiB/MiB/GiB."""
        if not self.active:
            return
        self.done()
        with self._lock:
            self._phase, self._total, self._unit = name, total, unit
            self._done, self._rows = 0.0, None
            self._line_width = self._columns()
            self._start = self.clock()
            self._draw(self._start)
        if self.ticker:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._tick_until_stopped, args=(self._stop,), daemon=True)
            self._thread.name = "seqprep-progress"
            self._thread.start()

    def update(self, done: float, rows: int | None = None, *, force: bool = False) -> None:
        """Set the amount done (and the rows read); redraws when ``interval`` has passed. Any thread."""
        if not self._phase:
            return
        self._done = done
        if rows is not None:
            self._rows = rows
        now = self.clock()
        if force or now - self._last >= self.interval:
            with self._lock:
                if self._phase:
                    self._draw(now)

    def tick(self) -> None:
        """Redraw if nothing has for ``interval`` (the ticker thread's step): the elapsed time moves on."""
        if not self._phase:
            return
        now = self.clock()
        if now - self._last >= self.interval:
            with self._lock:
                if self._phase:
                    self._draw(now)

    def done(self) -> None:
        """End the current phase: stop its ticker and clear the line so the next output starts clean."""
        if not self.active:
            return
        stop, thread = self._stop, self._thread
        self._stop = self._thread = None
        if stop is not None:
            stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        with self._lock:
            if self._phase:
                self._phase = ""
                self.stream.write("\r\x1b[K")  # type: ignore[union-attr]
                self.stream.flush()  # type: ignore[union-attr]

    # ----------------------------------------------------------------------------------------------

    def _tick_until_stopped(self, stop: threading.Event) -> None:
        period = max(self.interval, 0.1) / 2  # a redraw at most 1.5 intervals after the last one
        while not stop.wait(period):
            self.tick()

    def _columns(self) -> int:
        if self.width is not None:
            return self.width
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):  # not a real terminal (a test's stream)
            columns = 0
        return columns or 120  # a terminal of unknown size (a bare pty) says 0

    def _amount(self, n: float) -> str:
        return human_bytes(n) if self._unit == "bytes" else f"{n:,.0f}"

    def line(self, now: float) -> str:
        """The text of the line at time ``now`` (without the control characters)."""
        done, total, elapsed = self._done, self._total, max(0.0, now - self._start)
        text = f"seqprep: {self._phase}"
        unit = "" if self._unit in ("", "bytes") else f" {self._unit}"
        if total:
            frac = min(1.0, max(0.0, done / total))
            width = 24
            fill = int(frac * width)
            text += f" [{'#' * fill}{'.' * (width - fill)}] {frac:4.0%} {self._amount(done)}/{self._amount(total)}{unit}"
        elif done:
            text += f" {self._amount(done)}{unit}"
        if self._rows is not None:
            text += f", {self._rows:,} rows"
        if done > 0 and elapsed >= RATE_AFTER:
            rate = done / elapsed
            text += f", {human_bytes(rate)}/s" if self._unit == "bytes" else f", {rate:,.0f}{unit}/s"
            if total and done < total:
                text += f", {human_duration((total - done) / rate)} left"
        # tenths of a second in the first minute, so each redraw shows the time moving
        return text + (f" ({elapsed:.1f} s)" if elapsed < 60 else f" ({human_duration(elapsed)})")

    def _draw(self, now: float) -> None:
        """Rewrite the line (the caller holds the lock)."""
        self._last = now
        text = self.line(now)[: max(20, self._line_width - 1)]  # one row: a wrapped line cannot be rewritten
        self.stream.write("\r" + text + "\x1b[K")  # type: ignore[union-attr]
        self.stream.flush()  # type: ignore[union-attr]


SILENT = Progress(None)


def for_terminal(quiet: bool, stream: TextIO | None = None) -> Progress:
    """A progress display on ``stream`` (stderr) when it is a terminal, not ``quiet`` and not under CI.

    >>> import io
    >>> for_terminal(False, io.StringIO()).active
    False
    """
    stream = sys.stderr if stream is None else stream
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    isatty = getattr(stream, "isatty", None)
    if quiet or ci or isatty is None or not isatty():
        return SILENT
    return Progress(stream)
