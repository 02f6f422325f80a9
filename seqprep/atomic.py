"""The last step of a build: swapping a finished temporary folder in as OUT, safely.

Guarantees (see README "Robustness"):

- OUT is only ever replaced by one ``rename`` of a complete folder, so a reader sees the old OUT or
  the new one, never a mix, and a crash before the rename leaves the old OUT untouched;
- SIGINT/SIGTERM arriving during the swap (or while a temporary folder is created or removed) is held
  back until the swap is complete, so an interruption never strands OUT half-moved, nor litter;
- two builds finishing at once into the same OUT take turns (an advisory lock on OUT's parent
  folder): without ``--overwrite`` the second one fails cleanly, with it the last one wins whole;
- the files and the folder are flushed to disk (fsync) before the rename, so a power cut after it
  does not leave empty files behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import OutputError

__all__ = [
    "deferred_signals",
    "folder_lock",
    "fsync_tree",
    "make_temp_dir",
    "os_error_text",
    "remove_tree",
    "sigterm_unwinds",
    "swap_in",
]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def os_error_text(e: OSError) -> str:
    """The system's words for an OSError, also for pyarrow's (which hide errno in the message).

    >>> os_error_text(OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"))
    'No space left on device'
    """
    m = re.search(r"\[errno (\d+)\]", str(e))
    if m:
        return os.strerror(int(m.group(1)))
    if e.strerror:
        return e.strerror
    return " ".join(str(e).split())[:200]


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back inside the block; a signal that arrived is re-raised at its end.

    Python handlers only run in the main thread, so elsewhere (a build inside a worker thread) this
    does nothing.

    >>> with deferred_signals():
    ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def record(signum: int, frame: Any) -> None:
        received.append(signum)

    previous: dict[int, Any] = {}
    try:
        for sig in _SIGNALS:
            previous[sig] = signal.signal(sig, record)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])  # the original handler decides (KeyboardInterrupt, exit, ignore)


class _Terminated(BaseException):
    """Raised by :func:`sigterm_unwinds`'s handler so that cleanup code runs before the process ends."""


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While SIGTERM has its default action (the Python API; the CLI maps it to Ctrl-C already), a
    SIGTERM inside the block unwinds it first - ``finally``/``except`` blocks remove temporary
    folders - and then ends the process with SIGTERM as usual.

    >>> with sigterm_unwinds():
    ...     pass
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # the process ends here, after the cleanup above ran
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on ``folder`` itself: no lock file is left behind.

    Where flock is unavailable (another OS, some network file systems) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """``tempfile.mkdtemp`` that an interruption cannot strand (created and returned as one step)."""
    with deferred_signals():
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def remove_tree(path: Path) -> None:
    """Remove a temporary folder; a second Ctrl-C during the removal does not leave it half-removed."""
    with deferred_signals():
        shutil.rmtree(path, ignore_errors=True)


def fsync_tree(folder: Path) -> None:
    """fsync every file of ``folder`` (recursively) and then the folder itself."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def swap_in(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder ``tmp`` to ``out`` (replacing an existing ``out`` with ``overwrite``).

    Runs with signals deferred and under the parent folder's lock. On failure ``out`` is left as it
    was and an :class:`OutputError` says why; ``tmp`` is the caller's to remove.
    """
    parent = out.absolute().parent
    try:
        fsync_tree(tmp)
    except OSError as e:
        msg = f"cannot write the output: {os_error_text(e)}; free some space or choose another -o"
        raise OutputError(msg) from e
    with deferred_signals(), folder_lock(parent):
        if not (out.exists() or out.is_symlink()):
            try:
                os.rename(tmp, out)
            except OSError as e:
                msg = f"cannot move the result to {str(out)!r}: {e.strerror}; another build may have written it - choose another -o"
                raise OutputError(msg) from e
        elif not overwrite:
            msg = f"output {str(out)!r} appeared while building (another build?); pass --overwrite to replace it, or choose another -o"
            raise OutputError(msg)
        elif out.is_symlink():
            msg = f"output {str(out)!r} is a symbolic link; pass the folder it points to, or choose another -o"
            raise OutputError(msg)
        elif not out.is_dir():
            msg = f"output {str(out)!r} is a file, not a folder; remove it or choose another -o"
            raise OutputError(msg)
        else:
            _replace(tmp, out, parent)
        _fsync_dir(parent)


def _replace(tmp: Path, out: Path, parent: Path) -> None:
    """Old OUT -> a hidden folder, tmp -> OUT, then the old one is deleted (restored on failure)."""
    try:
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
    except OSError as e:
        msg = f"cannot replace {str(out)!r}: {e.strerror}; free some space or choose another -o"
        raise OutputError(msg) from e
    aside = old / "previous"
    try:
        os.rename(out, aside)
    except OSError as e:
        shutil.rmtree(old, ignore_errors=True)
        msg = f"cannot replace {str(out)!r}: {e.strerror}; check its permissions or choose another -o"
        raise OutputError(msg) from e
    try:
        os.rename(tmp, out)
    except OSError as e:
        os.rename(aside, out)  # put the old OUT back before anything else
        shutil.rmtree(old, ignore_errors=True)
        msg = f"cannot replace {str(out)!r}: {e.strerror}; the old output is kept - check permissions or choose another -o"
        raise OutputError(msg) from e
    shutil.rmtree(old, ignore_errors=True)
