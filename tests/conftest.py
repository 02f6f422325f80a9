"""Shared fixtures: tiny named logs, one per edge case, and the optional real data in ../shared/data."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example time limit for the property tests: Hypothesis's default deadline (200 ms) is a
# timing assertion, and on a loaded 2-core machine a correct example took 428 ms and failed the
# suite. Speed is measured by benchmarks/, never asserted in tests. A test's own @settings wins.
settings.register_profile("seqprep", deadline=None)
settings.load_profile("seqprep")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_file(rel: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly when it is absent (users' clones)."""
    p = SHARED_DATA / rel
    if not p.is_file():
        pytest.skip(f"{rel} not available (../shared/data is absent)")
    return p


@pytest.fixture(scope="module")
def scheduler():
    """The address of a LocalCluster of 2 worker processes (loopback, a free dashboard port), one
    per test module: what the Dask tests pass as ``--scheduler``. Skips without distributed."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # never clashes with a running cluster
        silence_logs=logging.ERROR,
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture
def write(tmp_path: Path):
    """write("name.csv", "text") -> path; bytes are written as-is."""

    def _write(name: str, content: str | bytes) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8", newline="")
        else:
            p.write_bytes(content)
        return p

    return _write


# A log with every edge case of the core build: ties inside a user (u1 at t=10), rows out of time
# order in the file, a repeated user-item pair (u2/i7), a cold item (i99, seen once).
TIES_CSV = """userId,movieId,rating,timestamp
1,5,4.0,20
1,7,3.0,10
1,6,2.0,10
2,7,5.0,5
2,7,1.0,6
3,99,3.5,1
1,5,4.5,30
"""
