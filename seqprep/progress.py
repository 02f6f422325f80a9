"""A small progress display for long phases (reading, encoding, sorting, writing), on stderr only.

The pipeline reports to a :class:`Progress`; the default :data:`SILENT` shows nothing. The CLI builds
one with :func:`for_terminal`, which is active only when stderr is a terminal, ``--quiet`` is not
given and ``CI`` is not set: piped or logged runs never get control characters in their output.
No dependency: one ``\\r``-rewritten line, redrawn at most a few times per second.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Progress", "SILENT", "for_terminal", "human_bytes"]


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


class Progress:
    """Phases with an optional total; ``update`` sets the done amount (and an optional rows count)."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self._phase = ""
        self._total: float | None = None
        self._unit = ""
        self._last = 0.0
        self._start = 0.0

    @property
    def active(self) -> bool:
        return self.stream is not None

    def phase(self, name: str, total: float | None = None, unit: str = "") -> None:
        """Start a phase (ends the previous one); ``unit="bytes"`` shows sizes in KiB/MiB/GiB."""
        if not self.active:
            return
        self.done()
        self._phase, self._total, self._unit = name, total, unit
        self._start = time.monotonic()
        self._last = 0.0
        self.update(0, force=True)

    def update(self, done: float, rows: int | None = None, *, force: bool = False) -> None:
        if not self.active or not self._phase:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        amount = human_bytes(done) if self._unit == "bytes" else f"{done:,.0f}"
        text = f"seqprep: {self._phase}"
        if self._total:
            frac = min(1.0, done / self._total)
            width = 24
            fill = int(frac * width)
            total = human_bytes(self._total) if self._unit == "bytes" else f"{self._total:,.0f}"
            text += f" [{'#' * fill}{'.' * (width - fill)}] {frac:4.0%} {amount}/{total}"
        elif done:
            text += f" {amount}"
        if rows is not None:
            text += f", {rows:,} rows"
        text += f" ({now - self._start:.0f} s)"
        self.stream.write("\r" + text[:119].ljust(80) + "\x1b[K")  # type: ignore[union-attr]
        self.stream.flush()  # type: ignore[union-attr]

    def done(self) -> None:
        """End the current phase: clear the line so the next output starts clean."""
        if self.active and self._phase:
            self.stream.write("\r\x1b[K")  # type: ignore[union-attr]
            self.stream.flush()  # type: ignore[union-attr]
            self._phase = ""


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
