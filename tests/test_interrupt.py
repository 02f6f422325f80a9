"""Interruption, concurrent builds and a full disk: OUT is absent, the old one or a complete new one -
never partial - and no temporary folder is left beside it.
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from seqprep.errors import OutputError
from seqprep.output import atomic
from tests.conftest import ROOT, TIES_CSV


def _log(path: Path, n: int, seed: int = 0) -> Path:
    r = np.random.default_rng(seed)
    table = pa.table(
        {
            "user": r.integers(0, 5000, n),
            "item": r.integers(0, 20000, n),
            "rating": r.integers(1, 6, n),
            "timestamp": r.integers(0, 10**9, n),
        }
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
    return path


def _start(log: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "seqprep",
        "build",
        str(log),
        "-o",
        str(out),
        "-f",
        "parquet",
        "-f",
        "npz",
        "-q",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


#: Rows of the log the signal tests build: enough that the build itself (not interpreter start-up)
#: fills most of the time window the random signal is aimed at.
BIG_ROWS = 1_000_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> tuple[Path, float, float]:
    """A generated log of BIG_ROWS rows; how long `python -m seqprep` takes to start here, and one whole build of it."""
    folder = tmp_path_factory.mktemp("big")
    log = _log(folder / "log.csv", BIG_ROWS)
    t0 = time.perf_counter()
    # the same start-up path as a build: the interpreter, `-m seqprep`, click and every import (the
    # command imports the library in its body, so `--version` alone would not): a build of a missing file
    cmd = [sys.executable, "-m", "seqprep", "build", str(folder / "none.csv"), "-o", str(folder / "none")]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.stderr.startswith("Error: input file"), r.stderr
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = _start(log, folder / "probe")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return log, startup, time.perf_counter() - t0


def _old_output(folder: Path, log: Path) -> tuple[Path, str]:
    """An existing OUT (built from a different log), and its meta.json text."""
    small = folder / "small.csv"
    small.write_text(TIES_CSV)
    out = folder / "out"
    seqprep.build(small, out, formats=("parquet", "npz"))
    return out, (out / "meta.json").read_text()


@pytest.mark.heavy
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "overwrite"])
def test_signal_at_a_random_moment(tmp_path, big_log, sig, existing):
    log, startup, whole = big_log
    rng = random.Random(f"{sig}-{existing}")
    # from just after start-up (a signal inside Python's own start-up and imports gives Python's
    # traceback, documented in README) to about when the build ends
    lo, hi = 1.5 * startup, 1.05 * whole  # start-up time varies on a shared CPU: a clear margin
    outcomes: list[tuple[float, int]] = []
    attempt = 0
    while sum(1 for _, rc in outcomes if rc is not None) < 3 and attempt < 12:
        attempt += 1
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        old_meta = None
        if existing:
            out, old_meta = _old_output(folder, log)
        else:
            out = folder / "out"
        proc = _start(log, out, *(["--overwrite"] if existing else []))
        delay = rng.uniform(lo, hi)
        time.sleep(delay)
        delivered = proc.poll() is None
        if delivered:
            proc.send_signal(sig)
        else:
            hi = 0.8 * delay  # this machine is quicker right now (shared CPU): aim earlier next time
            lo = max(1.2 * startup, min(lo, 0.6 * hi))  # but never back into start-up
        _, err = proc.communicate(timeout=300)
        assert _litter(folder) == [], f"temporary folders left after {sig!r} at {delay:.2f} s"
        if out.exists():
            report = seqprep.verify(out)
            assert report.ok, report.problems
            meta = (out / "meta.json").read_text()
            if meta != old_meta:  # the new build completed before the signal took effect
                assert json.loads(meta)["num_interactions"] == BIG_ROWS
        else:
            assert not existing, "the old OUT was lost"
        if proc.returncode not in (0, -sig):
            assert proc.returncode == 1
            assert err.strip().splitlines()[-1] in ("Aborted!", "KeyboardInterrupt"), err
        outcomes.append((round(delay, 2), proc.returncode if delivered else None))
    print(
        f"{sig!r} existing={existing}: (delay s, return code) {outcomes}; start-up {startup:.2f} s, build {whole:.2f} s"
    )
    assert sum(1 for _, rc in outcomes if rc is not None) == 3, "the signal never reached a running build"


def test_signal_during_the_final_swap_is_held_back(tmp_path, monkeypatch):
    """SIGINT between 'old OUT aside' and 'new OUT in' must not strand OUT half-moved."""
    log = tmp_path / "r.csv"
    log.write_text(TIES_CSV)
    out = tmp_path / "out"
    seqprep.build(log, out, item_order="frequency")
    real_rename = os.rename
    sent: list[str] = []

    def rename_then_interrupt(src, dst):
        real_rename(src, dst)
        if Path(dst).name == "previous":  # the old OUT was just moved aside
            sent.append(threading.current_thread().name)
            signal.raise_signal(signal.SIGINT)  # to this thread (os.kill may wake any thread of the process)
            time.sleep(0.05)  # give the handler every chance to run here

    # the held-back signal is re-raised to the handler that was there before: Python's, for this test
    # (an earlier test of the session may have left another), restored afterwards
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    monkeypatch.setattr(atomic.os, "rename", rename_then_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            try:
                seqprep.build(log, out, item_order="id", overwrite=True)
            finally:
                assert sent, "the swap never moved the old OUT aside with os.rename"
    finally:
        signal.signal(signal.SIGINT, before)
    assert json.loads((out / "meta.json").read_text())["item_order"] == "id"  # the new OUT, whole
    assert seqprep.verify(out).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.csv"]


def test_failed_swap_restores_the_old_output(tmp_path, monkeypatch):
    log = tmp_path / "r.csv"
    log.write_text(TIES_CSV)
    out = tmp_path / "out"
    seqprep.build(log, out)
    before = (out / "meta.json").read_text()
    real_rename = os.rename

    def fail_new_in(src, dst):
        if Path(dst) == out and ".tmp-" in Path(src).name:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", fail_new_in)
    with pytest.raises(OutputError, match="the old output is kept"):
        seqprep.build(log, out, item_order="id", overwrite=True)
    assert (out / "meta.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.csv"]


def test_interrupt_while_writing_removes_the_temporary_folder(tmp_path, monkeypatch):
    log = tmp_path / "r.csv"
    log.write_text(TIES_CSV)
    out = tmp_path / "out"
    seqprep.build(log, out)
    before = (out / "meta.json").read_text()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("seqprep.output.folder.write_npz", interrupted)
    with pytest.raises(KeyboardInterrupt):
        seqprep.build(log, out, formats=("parquet", "npz"), overwrite=True)
    assert (out / "meta.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.csv"]


API_SCRIPT = """
import os, signal, sys, time
import seqprep, seqprep.output.folder as w
real = w.write_npz
def slow_npz(*a, **k):
    os.kill(os.getpid(), signal.SIGTERM)  # arrives while the temporary folder holds half the files
    time.sleep(2)
    real(*a, **k)
w.write_npz = slow_npz
seqprep.build(sys.argv[1], sys.argv[2], formats=("parquet", "npz"), overwrite=True)
print("not reached")
"""


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "overwrite"])
def test_sigterm_through_the_python_api_cleans_up(tmp_path, existing):
    """No CLI handler: SIGTERM under its default action still removes the temporary folder."""
    log = tmp_path / "r.csv"
    log.write_text(TIES_CSV)
    out = tmp_path / "out"
    before = None
    if existing:
        seqprep.build(log, out)
        before = (out / "meta.json").read_text()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", API_SCRIPT, str(log), str(out)], capture_output=True, text=True, env=env, check=False
    )
    assert r.returncode == -signal.SIGTERM, r.stderr
    assert "not reached" not in r.stdout
    assert _litter(tmp_path) == []
    if existing:
        assert (out / "meta.json").read_text() == before
    else:
        assert not out.exists()


def test_deferred_signal_is_delivered_after_the_block():
    got = []
    previous = signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    try:
        with atomic.deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert got == []
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------------------------------
# Concurrent builds


def _finished_folder(parent: Path, marker: str) -> Path:
    """A finished output: files a, b, c and a meta.json of seqprep's format listing them (so
    ``--overwrite`` may replace it, see tests/test_overwrite_guard.py)."""
    tmp = atomic.make_temp_dir(parent, prefix=".out.tmp-")
    for name in ("a", "b", "c"):
        (tmp / name).write_text(marker)
    meta = dict.fromkeys(atomic.META_KEYS)
    meta.update(format_version=1, outputs={"files": {name: {} for name in ("a", "b", "c")}})
    (tmp / "meta.json").write_text(json.dumps(meta))
    return tmp


@pytest.mark.parametrize("overwrite", [False, True])
def test_concurrent_swaps_never_mix(tmp_path, overwrite):
    out = tmp_path / "out"
    results: list[str] = []
    barrier = threading.Barrier(6)

    def one(k: int) -> None:
        tmp = _finished_folder(tmp_path, f"build{k}")
        barrier.wait()
        try:
            atomic.swap_in(tmp, out, overwrite)
            results.append("ok")
        except OutputError as e:
            shutil.rmtree(tmp)
            results.append(str(e))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if overwrite:
        assert results == ["ok"] * 6
    else:
        assert results.count("ok") == 1
        assert all("appeared while building (another build?)" in r or "cannot move" in r for r in results if r != "ok")
    assert len({(out / n).read_text() for n in ("a", "b", "c")}) == 1  # one build's files, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.heavy
def test_two_processes_build_the_same_output(tmp_path):
    log = _log(tmp_path / "log.csv", 100_000)
    out = tmp_path / "out"
    procs = [_start(log, out, "--item-order", order) for order in ("id", "frequency")]
    results = [(p.returncode, err) for p in procs for _, err in [p.communicate(timeout=300)]]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 1], results
    loser = next(err for rc, err in results if rc == 1)
    assert loser in (
        f"Error: output {str(out)!r} appeared while building (another build?); pass --overwrite to replace it, or choose another -o\n",
        f"Error: output {str(out)!r} already exists; pass --overwrite to replace it, or choose another -o\n",
    )
    winner = ("id", "frequency")[[rc for rc, _ in results].index(0)]
    assert json.loads((out / "meta.json").read_text())["item_order"] == winner
    assert seqprep.verify(out).ok
    assert _litter(tmp_path) == []


# --------------------------------------------------------------------------------------------------
# A full disk


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _can_mount(), reason="needs root and mount to make a small tmpfs")
def test_disk_full_keeps_the_old_output(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=False, capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        small = tmp_path / "small.csv"
        small.write_text(TIES_CSV)
        out = mnt / "out"
        assert CliRunner().invoke(cli, ["build", str(small), "-o", str(out), "-q"]).exit_code == 0
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        big = _log(tmp_path / "big.csv", 100_000)
        res = CliRunner().invoke(cli, ["build", str(big), "-o", str(out), "--overwrite", "-f", "npz", "-f", "parquet"])
        assert res.exit_code == 1
        assert (
            res.stderr
            == "Error: cannot write the output: No space left on device; free some space or choose another -o\n"
        )
        assert sorted(p.name for p in mnt.iterdir()) == ["out"]  # the temporary folder is gone
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert seqprep.verify(out).ok
        del res
        gc.collect()
        assert _open_files_under(mnt) == []  # nothing of the failed build keeps the folder busy
    finally:
        _unmount(mnt)


def _open_files_under(folder: Path) -> list[str]:
    """The files this process holds open below ``folder`` (Linux /proc)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own fd)
            continue
        if target.startswith(str(folder) + os.sep) or target == str(folder):
            held.append(target)
    return held


def _unmount(mnt: Path) -> None:
    """Unmount the test's tmpfs. The kernel may report it busy for a moment after the last file
    closed (a process scanning mounts, a slow CI machine): retry, then detach it lazily, which
    frees it as soon as nothing uses it - a teardown must not fail the test it cleans up after."""
    for attempt in range(20):
        if subprocess.run(["umount", str(mnt)], check=False, capture_output=True).returncode == 0:
            return
        time.sleep(0.05 * (attempt + 1))
    subprocess.run(["umount", "-l", str(mnt)], check=True)
