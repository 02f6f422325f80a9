"""Typing a log's columns: ids as dictionary codes (text typed on the distinct values only), times
(epoch numbers or ISO dates, with their unit) and ratings."""

from __future__ import annotations

from .. import readers as _impl  # (moving here: the implementation is still in seqprep/readers.py)

__all__ = ["merge_ids", "normalize_rating", "normalize_time"]

merge_ids = _impl._merge_ids
normalize_rating = _impl._normalize_rating
normalize_time = _impl._normalize_time
