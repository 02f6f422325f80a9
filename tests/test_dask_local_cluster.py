"""The local cluster that ``--engine dask --workers N`` starts (no ``--scheduler``): N worker threads
in this process (no worker processes; its HTTP servers on loopback ports only), each with the
machine's memory limit, and a build on it gives the local engine's output. The other Dask tests run on a cluster of worker processes
passed as ``--scheduler``, so this is the one place the engine's own cluster is built."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import seqprep
from seqprep.config import EngineOptions

distributed = pytest.importorskip("distributed")
from seqprep.engines.dask import client_for  # noqa: E402  (needs distributed)


def test_the_local_cluster_is_worker_threads_in_this_process() -> None:
    from distributed.system import MEMORY_LIMIT

    def listening() -> set[tuple[str, int]]:
        import psutil

        return {
            (c.laddr.ip, c.laddr.port) for c in psutil.Process().net_connections() if c.status == psutil.CONN_LISTEN
        }

    before = listening()
    with client_for(EngineOptions(engine="dask", workers=2)) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(addr.startswith("inproc://") for addr in workers)  # threads of this process
        opened = listening() - before
        assert opened and {ip for ip, _ in opened} == {"127.0.0.1"}  # never a fixed port, never all interfaces
        assert {w["nthreads"] for w in workers.values()} == {1}  # 2 cores here or more: 1 thread each at least
        assert {w["memory_limit"] for w in workers.values()} == {MEMORY_LIMIT}


def test_a_build_on_the_local_cluster_is_the_local_build(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    rng = np.random.default_rng(3)
    n = 3000  # ties (few timestamps), text ids, several read pieces and output parts
    users = rng.integers(0, 60, n)
    items = rng.integers(0, 90, n)
    times = rng.integers(0, 40, n)
    log.write_text("user,item,timestamp\n" + "".join(f"u{u},i{i},{t}\n" for u, i, t in zip(users, items, times)))
    local = seqprep.build(str(log), tmp_path / "local")
    dask = seqprep.build(str(log), tmp_path / "dask", engine="dask", workers=2, block_bytes=4096, part_rows=500)
    assert dask.meta["engine"]["input_partitions"] > 1 and dask.meta["engine"]["output_parts"] > 1
    a, b = seqprep.load(tmp_path / "local"), seqprep.load(tmp_path / "dask")
    assert a.user_vocab.equals(b.user_vocab) and a.item_vocab.equals(b.item_vocab)
    for name in ("offsets", "items", "timestamps", "user_idx"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert local.meta["rows"] == dask.meta["rows"]


def test_builds_beside_another_client_of_the_same_scheduler(tmp_path: Path) -> None:
    """A process that holds its own client (a notebook) and passes its scheduler's address: the
    build's collections must run on the build's client. Persisted on the other one, they were
    released on its stream while this client's dependent tasks were still on the way, and builds
    failed now and then with 'FutureCancelledError ... lost dependencies' (5 of 8 builds of a 1M
    log; the race needs a few rounds here)."""
    log = tmp_path / "log.csv"
    rng = np.random.default_rng(5)
    n = 20_000
    users, items, times = rng.integers(0, 400, n), rng.integers(0, 300, n), rng.integers(0, 1000, n)
    log.write_text("user,item,timestamp\n" + "".join(f"u{u},i{i},{t}\n" for u, i, t in zip(users, items, times)))
    want = seqprep.build(str(log), write=False)
    with client_for(EngineOptions(engine="dask", workers=2)) as client:  # the "notebook's" client
        for k in range(6):
            got = seqprep.build(
                str(log), tmp_path / f"out{k}", engine="dask", scheduler=client.cluster.scheduler_address, block_bytes=32_768, part_rows=2_000
            )
            assert got.meta["rows"] == want.meta["rows"]
            assert np.array_equal(seqprep.load(tmp_path / f"out{k}").items, want.sequences.items)
