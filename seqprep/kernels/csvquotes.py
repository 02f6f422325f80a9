"""Where CSV rows end when quoted fields may hold newlines: RFC 4180 quoting, read as pyarrow's and
pandas' parsers read it, on raw bytes (numpy, no Python loop over bytes, quotes or rows).

The parsers' rule: a quote opens a quoted field only at the start of a field (the first byte of the
data, or just after a separator or a line end); inside it, ``""`` is a literal quote and a single
``"`` closes it; anything after the closing quote up to the next separator or line end is plain text,
and so is a quote in the middle of an unquoted field (``5" screen``). A line end (LF, CR or CRLF)
outside a quoted field ends the row; inside one it is part of the value.

Only the *runs* of adjacent quotes matter, and each acts on "inside a quoted field or not" in one of
three ways, decided by its length and the byte before it (never by the state, so runs classify in
one vectorised pass):

* a run at a field start (after a separator, a line end or at the start) flips the state when its
  length is odd: it opens a field (one quote, or three) or, inside one, closes it (``...,"``); an even run
  (``""``) leaves the state as it was (an empty field, or a literal quote);
* a run after any other byte with an odd length leaves every state *outside*: inside a field it
  closes it (``abc"``), outside it is literal text;
* a run after any other byte with an even length changes nothing (``""`` inside a field).

The state after each run is then the last "outside" run before it, plus the parity of the flips since
(a cumulative sum). Two consequences used by the range reader: the state at any offset follows from
the bytes just before it as soon as they hold an odd run after an ordinary byte (the closing quote of
nearly every quoted field), whatever came earlier (:func:`state_before`); and bytes without a quote
leave the state unchanged, so a range without the quote byte needs no scan at all.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOM", "QuoteTracker", "quote_runs", "row_end", "run_states", "state_before"]

LF, CR, QUOTE = 10, 13, 34
BOM = b"\xef\xbb\xbf"
_PIECE = 1 << 22  # bytes looked at at once (temporaries stay small and in cache)


def quote_runs(data: np.ndarray, delim: int, prev: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of adjacent quote bytes in ``data`` -> (first offsets, lengths, at a field start).

    ``prev`` is the byte before ``data[0]`` (``LF`` at the start of a row).

    >>> s, n, f = quote_runs(np.frombuffer(b'"a,""b",5"\\n', np.uint8), ord(","), 10)
    >>> s.tolist(), n.tolist(), f.tolist()
    ([0, 3, 6, 9], [1, 2, 1, 1], [True, True, False, False])
    """
    q = np.flatnonzero(data == QUOTE)
    if q.size == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0, bool)
    first = np.flatnonzero(np.diff(q, prepend=-2) != 1)
    starts = q[first]
    lengths = np.diff(first, append=q.size)
    before = data[np.maximum(starts - 1, 0)]
    if starts[0] == 0:
        before[0] = prev
    at_start = (before == delim) | (before == LF) | (before == CR)
    return starts.astype(np.int64), lengths.astype(np.int64), at_start


def run_states(lengths: np.ndarray, at_start: np.ndarray, inside: bool) -> np.ndarray:
    """Whether each run leaves the data inside a quoted field, given the state before the first run.

    >>> run_states(np.array([1, 2, 1, 1]), np.array([True, True, False, False]), False).tolist()
    [True, True, False, False]
    >>> run_states(np.array([1, 1]), np.array([True, True]), True).tolist()  # ',"' closes, then opens
    [False, True]
    """
    odd = (lengths & 1).astype(bool)
    flips = np.cumsum(odd & at_start)
    outside = np.flatnonzero(odd & ~at_start)  # runs after which the state is "outside", whatever it was
    last = np.full(len(lengths), -1, np.int64)
    last[outside] = outside
    last = np.maximum.accumulate(last) if len(last) else last
    since = flips - np.where(last >= 0, flips[np.maximum(last, 0)], 0)
    start = np.where(last >= 0, False, inside)
    return start ^ (since & 1).astype(bool)


class QuoteTracker:
    """Follows the quoting state through a CSV's bytes fed in order, in pieces of any size.

    ``inside`` is whether the bytes fed so far end inside a quoted field; ``opened_at`` the offset of
    the quote that opened it (``-1`` when not inside). A run of quotes at the end of a piece waits for
    the next piece (it may go on); :meth:`finish` applies it at the end of the data. With
    ``breaks=True``, :meth:`feed` returns the offsets of the line ends that end a row (a CRLF counts
    once, at its CR).

    >>> t = QuoteTracker(ord(","))
    >>> t.feed(np.frombuffer(b'1,"a\\nb', np.uint8), breaks=True).tolist(), t.inside, t.opened_at
    ([], True, 2)
    >>> t.feed(np.frombuffer(b'",2\\r\\n3,4\\n', np.uint8), breaks=True).tolist(), t.inside
    ([9, 14], False)
    """

    def __init__(
        self,
        delim: int,
        *,
        offset: int = 0,
        inside: bool = False,
        opened_at: int = -1,
        prev: int = LF,
        bom: bool = False,
    ) -> None:
        self.delim = delim
        self._bom = bom  # drop a UTF-8 byte order mark at the start of the bytes, as the parsers do
        self.offset = offset  # offset of the next byte to be fed
        self.inside = inside
        self.opened_at = opened_at if inside else -1
        self.prev = prev  # the byte before the next one fed
        self._run: tuple[int, int, bool] | None = None  # (offset, length, at field start) of a waiting run

    def feed(self, data: np.ndarray, *, breaks: bool = False) -> np.ndarray | None:
        if self._bom:
            self._bom = False
            if len(data) >= len(BOM) and bytes(data[: len(BOM)]) == BOM:
                self.offset += len(BOM)
                data = data[len(BOM) :]
        out = []
        for lo in range(0, len(data), _PIECE):
            got = self._feed(data[lo : lo + _PIECE], breaks)
            if breaks:
                out.append(got)
        if not breaks:
            return None
        return np.concatenate(out) if out else np.empty(0, np.int64)

    def feed_bytes(self, data: bytes, start: int = 0) -> None:
        """:meth:`feed` of ``data[start:]``; bytes without a quote (one ``bytes.find``) only move on.

        >>> t = QuoteTracker(ord(",")); t.feed_bytes(b'1,"a'); t.feed_bytes(b"\\nb,c\\n"); t.inside, t.offset
        (True, 9)
        """
        if self._run is None and not self._bom and data.find(b'"', start) < 0:
            if len(data) > start:
                self.prev = data[-1]
                self.offset += len(data) - start
            return
        self.feed(np.frombuffer(data, np.uint8)[start:])

    def finish(self) -> None:
        """The end of the data: a waiting run of quotes is complete."""
        if self._run is not None:
            at, n, at_start = self._run
            self._run = None
            self._apply(np.array([at]), np.array([n]), np.array([at_start]))

    def _apply(self, starts: np.ndarray, lengths: np.ndarray, at_start: np.ndarray) -> np.ndarray:
        after = run_states(lengths, at_start, self.inside)
        if len(after):
            before = np.concatenate(([self.inside], after[:-1]))
            if after[-1]:
                opens = np.flatnonzero(after & ~before)
                if len(opens):
                    self.opened_at = int(starts[opens[-1]])
            else:
                self.opened_at = -1
            self.inside = bool(after[-1])
        return after

    def _feed(self, data: np.ndarray, breaks: bool) -> np.ndarray:
        n = len(data)
        base = self.offset
        inside0 = self.inside
        rel, lengths, at_start = quote_runs(data, self.delim, self.prev)
        if self._run is not None:  # the waiting run: continued by this piece's first run, or complete
            at, k, k_start = self._run
            self._run = None
            if len(rel) and rel[0] == 0:
                rel[0], lengths[0], at_start[0] = at - base, lengths[0] + k, k_start
            else:
                rel = np.concatenate(([at - base], rel))
                lengths = np.concatenate(([k], lengths))
                at_start = np.concatenate(([k_start], at_start))
        if len(rel) and rel[-1] + lengths[-1] == n:  # touches the end of the piece: it may go on
            self._run = (int(rel[-1] + base), int(lengths[-1]), bool(at_start[-1]))
            rel, lengths, at_start = rel[:-1], lengths[:-1], at_start[:-1]
        after = self._apply(rel + base, lengths, at_start)
        result = np.empty(0, np.int64)
        if breaks and n:
            ends = np.flatnonzero((data == LF) | (data == CR))
            if len(ends):
                k = np.searchsorted(rel, ends, side="right") - 1
                inside = np.where(k >= 0, after[np.maximum(k, 0)] if len(after) else inside0, inside0)
                before = data[np.maximum(ends - 1, 0)]
                if ends[0] == 0:
                    before[0] = self.prev
                crlf_tail = (data[ends] == LF) & (before == CR)
                result = ends[~inside & ~crlf_tail].astype(np.int64) + base
        if n:
            self.prev = int(data[-1])
        self.offset = base + n
        return result


def _past_run(data: np.ndarray, pos: int) -> int:
    """``pos``, moved past the quotes of a run that goes on at ``pos`` (a run is never cut in two)."""
    if 0 < pos < len(data) and data[pos - 1] == QUOTE and data[pos] == QUOTE:
        rest = np.flatnonzero(data[pos:] != QUOTE)
        return pos + int(rest[0]) if len(rest) else len(data)
    return pos


def state_before(
    data: np.ndarray, pos: int, delim: int, *, window: int = 1 << 16, known_start: bool = True
) -> tuple[bool, int, int] | None:
    """The quoting state at ``pos`` where ``data[0]`` starts a row -> (inside, opened_at, pos).

    Looks back from ``pos`` only as far as needed: a window whose runs lead to the same state from
    either state before it decides the state (it holds an odd run after an ordinary byte); else the
    window grows, at worst to the start. ``pos`` moves past a run of quotes going on at it.
    ``known_start=False``: ``data[0]`` may be anywhere in a CSV (a window read from the middle of a
    file); the state comes from the bytes alone, or is ``None`` when they do not decide it.

    >>> d = np.frombuffer(b'1,"x\\n""y\\n",2\\n3,"a', np.uint8)
    >>> state_before(d, 5, ord(",")), state_before(d, 14, ord(",")), state_before(d, len(d), ord(","))
    ((True, 2, 5), (False, -1, 14), (True, 15, 17))
    >>> e = np.frombuffer(b'xy",1\\n2,"3', np.uint8)  # from the middle of a quoted field, or not?
    >>> state_before(e, 8, ord(","), known_start=False), state_before(e[3:], 5, ord(","), known_start=False)
    ((False, -1, 8), None)
    """
    pos = _past_run(data, min(pos, len(data)))
    raw = pos
    while True:
        raw = lo = max(0, raw - window)
        if (lo > 0 or not known_start) and lo < pos and data[lo] == QUOTE:
            rest = np.flatnonzero(data[lo:pos] != QUOTE)  # start the window after a run, never inside one
            lo = lo + int(rest[0]) if len(rest) else pos
        prev = int(data[lo - 1]) if lo > 0 else LF
        rel, lengths, at_start = quote_runs(data[lo:pos], delim, prev)
        if lo == 0 and known_start:
            t = QuoteTracker(delim)
            t._apply(rel, lengths, at_start)
            return t.inside, t.opened_at, pos
        a = QuoteTracker(delim, offset=lo, inside=False)
        b = QuoteTracker(delim, offset=lo, inside=True, opened_at=lo)
        a._apply(rel + lo, lengths, at_start)
        b._apply(rel + lo, lengths, at_start)
        if a.inside == b.inside and a.opened_at == b.opened_at and (not a.inside or a.opened_at >= lo):
            return a.inside, a.opened_at, pos
        if raw == 0:  # the bytes from data[0] on do not decide it
            return None
        window *= 4


def row_end(tracker: QuoteTracker, data: np.ndarray, *, eof: bool) -> int:
    """Feed ``data`` to ``tracker`` up to the first row end -> the offset just past it, or -1 when
    ``data`` ends first (the tracker has then seen all of it; call again with the bytes that follow).
    ``eof``: ``data`` ends the input (the tracker is then finished). A CR at the very end of ``data``
    ends the row there (an LF after it starts the next row with an empty line, which parsers skip).

    >>> d = np.frombuffer(b'"a\\nb",1\\r\\n2,"3', np.uint8)
    >>> row_end(QuoteTracker(ord(","), offset=2, inside=True, opened_at=0), d[2:], eof=False)
    9
    >>> t = QuoteTracker(ord(","), offset=9); row_end(t, d[9:], eof=True), t.inside, t.opened_at
    (-1, True, 11)
    """
    base = tracker.offset
    step = 1 << 16
    at = 0
    while at < len(data):
        hi = min(len(data), at + step)
        ends = tracker.feed(data[at:hi], breaks=True)
        if len(ends):
            e = int(ends[0]) - base
            return base + e + (2 if data[e] == CR and e + 1 < len(data) and data[e + 1] == LF else 1)
        at = hi
        step *= 2
    if eof:
        tracker.finish()
    return -1
