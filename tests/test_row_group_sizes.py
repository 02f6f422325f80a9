"""How sequences.parquet is cut into row groups: by the number of interactions alone."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprep.kernels.sequences import (
    MIN_ROW_GROUP_INTERACTIONS,
    ROW_GROUP_INTERACTIONS,
    ROW_GROUPS_AT_LEAST,
    csr_offsets,
    row_group_interactions,
    sequence_parts,
)


def test_row_group_size_bounds():
    assert row_group_interactions(0) == MIN_ROW_GROUP_INTERACTIONS
    assert row_group_interactions(1_000_000) == MIN_ROW_GROUP_INTERACTIONS  # 4 groups of 250k
    assert row_group_interactions(5_000_000) == 1_250_000
    assert row_group_interactions(25_000_000) == ROW_GROUP_INTERACTIONS


def test_a_million_interactions_make_several_row_groups():
    """A 1M-interaction file (6,500 users) is cut into groups every core can encode at once."""
    offsets = csr_offsets(np.full(6_500, 1_000_000 // 6_500))
    bounds = sequence_parts(offsets)
    assert len(bounds) - 1 == ROW_GROUPS_AT_LEAST
    sizes = np.diff(offsets[bounds])
    assert sizes.sum() == offsets[-1] and sizes.max() <= MIN_ROW_GROUP_INTERACTIONS + 1_000_000 // 6_500


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400_000), min_size=1, max_size=40))
def test_parts_cover_every_user_once(lengths):
    offsets = csr_offsets(np.array(lengths, dtype=np.int64))
    bounds = sequence_parts(offsets)
    assert bounds[0] == 0 and bounds[-1] == len(lengths) and bool((np.diff(bounds) > 0).all())
    per = row_group_interactions(int(offsets[-1]))
    sizes = np.diff(offsets[bounds])
    # each group but the last reaches the size, and only by whole users: without its last user it is below it
    for k in range(len(sizes) - 1):
        last = int(lengths[bounds[k + 1] - 1])
        assert sizes[k] - last < per
