"""The last step of a build: swapping a finished temporary folder in as OUT, safely.

Guarantees (see docs/robustness.md):

- OUT is only ever replaced by one ``rename`` of a complete folder, so a reader sees the old OUT or
  the new one, never a mix, and a crash before the rename leaves the old OUT untouched;
- SIGINT/SIGTERM arriving during the swap (or while a temporary folder is created or removed) is held
  back until the swap is complete, so an interruption never strands OUT half-moved, nor litter;
- two builds finishing at once into the same OUT take turns (an advisory lock on OUT's parent
  folder): without ``--overwrite`` the second one fails cleanly, with it the last one wins whole;
- the files and the folder are flushed to disk (fsync) before the rename, so a power cut after it
  does not leave empty files behind;
- ``--overwrite`` only ever replaces what seqprep itself wrote (:func:`check_replaceable`): checked
  before any work, again under the lock right before the swap, and once more on the old OUT moved
  aside, before anything is deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import OutputError
from ..records import record

__all__ = [
    "META_FORMAT_VERSIONS",
    "META_KEYS",
    "NO_READS",
    "Reads",
    "check_replaceable",
    "deferred_signals",
    "folder_lock",
    "foreign_entries",
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


# --------------------------------------------------------------------------------------------------
# What --overwrite may replace

#: The ``format_version`` values of seqprep's meta.json.
META_FORMAT_VERSIONS = (1,)
#: Keys that every meta.json seqprep writes holds (``outputs.files`` lists the other files of the folder).
META_KEYS = frozenset(
    {
        "format_version",
        "seqprep_version",
        "num_users",
        "num_items",
        "num_interactions",
        "padding_idx",
        "num_embeddings",
        "inputs",
        "options",
        "outputs",
    }
)
#: A larger meta.json is not one seqprep wrote (it is not even read).
_META_MAX_BYTES = 64 << 20
#: Unknown entries named in the error.
_SHOWN = 3


@record
class Reads:
    """What a command reads, which replacing its OUT must never delete (see :func:`check_replaceable`).

    Each entry is ``(what, path)``, ``what`` naming it in the error ("input", "--vocab-from folder").
    ``inputs``: files or folders read (globs expanded; stdin has no path): OUT may neither be nor hold
    one. ``in_place``: folders read whole before the swap: OUT may *be* one (rebuilt in place), not hold one.
    """

    inputs: tuple[tuple[str, str], ...] = ()
    in_place: tuple[tuple[str, str], ...] = ()


#: A command that reads no path (or writes nothing over an existing folder).
NO_READS = Reads()


def check_replaceable(out: Path, reads: Reads = NO_READS) -> None:
    """Raise :class:`OutputError` unless ``--overwrite`` may delete the existing ``out`` and put a build there.

    ``out`` may be replaced when it does not exist, is an empty folder, or is a seqprep output: a
    meta.json of seqprep's format (:data:`META_FORMAT_VERSIONS`, :data:`META_KEYS`) whose
    ``outputs.files`` lists every other file in it (nested files too; a folder is seqprep's only when
    a listed file lies in it). Never replaced: a symbolic link (the folder it points to is not
    followed), a file, a folder that is or holds one of ``reads``, the current folder or the home
    folder, or a folder holding either. Folders are compared on disk (device and inode of each
    resolved path and its parents), so symbolic links, ``..`` and relative paths cannot hide them.

    >>> check_replaceable(Path("no/such/folder"))
    """
    name = str(out)
    if not os.path.lexists(out):
        return
    if out.is_symlink():
        msg = f"output {name!r} is a symbolic link; pass the folder it points to, or choose another -o"
        raise OutputError(msg)
    if not out.is_dir():
        msg = f"output {name!r} is a file, not a folder; remove it or choose another -o"
        raise OutputError(msg)
    _refuse_foreign(out, name)
    try:
        here = os.stat(out)
    except OSError as e:
        msg = f"cannot check output {name!r}: {e.strerror}; choose another -o"
        raise OutputError(msg) from e
    cache: dict[str, bool] = {}
    for what, path in reads.inputs:
        rel = _relation(here, path, cache)
        if rel is not None:
            raise OutputError(f"output {name!r} {rel} the {what} {path!r}; choose another -o")
    for what, path in reads.in_place:
        if _relation(here, path, cache) == "holds":
            raise OutputError(f"output {name!r} holds the {what} {path!r}; choose another -o")
    for what, where in (("the current folder", _cwd), ("your home folder", _home)):
        path = where()
        rel = None if path is None else _relation(here, path, cache)
        if rel is not None:
            raise OutputError(f"output {name!r} {rel} {what}; choose another -o")


def _refuse_foreign(folder: Path, name: str) -> None:
    try:
        foreign = foreign_entries(folder)
    except OSError as e:
        msg = f"cannot check what output {name!r} holds: {e.strerror}; choose another -o"
        raise OutputError(msg) from e
    if foreign:
        shown = ", ".join(f if f.isprintable() else repr(f) for f in foreign[:_SHOWN])  # one line, whatever the names
        if len(foreign) > _SHOWN:
            shown += f" and {len(foreign) - _SHOWN} more"
        raise OutputError(f"{name!r} holds files seqprep did not write ({shown}); choose another -o")


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` seqprep did not write, sorted: relative posix paths, folders with a trailing ``/``.

    Everything but meta.json and the regular files its ``outputs.files`` lists (and the folders that
    hold them); with no meta.json of seqprep's format, every entry of ``folder``. Symbolic links are
    never seqprep's. Only seqprep's own folders are walked into.
    """
    listed = _listed_files(folder)
    known_dirs = {str(d) for f in listed for d in PurePosixPath(f).parents if str(d) != "."}
    foreign: list[str] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        with os.scandir(folder / rel_dir) as entries:
            for e in entries:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                if e.is_dir(follow_symlinks=False):
                    if rel in known_dirs:
                        pending.append(rel)
                    else:
                        foreign.append(rel + "/")
                elif not (rel in listed and e.is_file(follow_symlinks=False)):
                    foreign.append(rel)
    return sorted(foreign)


def _listed_files(folder: Path) -> set[str]:
    """meta.json and the files its ``outputs.files`` lists; empty unless it is seqprep's meta.json."""
    path = folder / "meta.json"
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _META_MAX_BYTES:
            return set()
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON, absurdly nested
        return set()
    if not isinstance(meta, dict) or not META_KEYS <= meta.keys():
        return set()
    version = meta["format_version"]
    if type(version) is not int or version not in META_FORMAT_VERSIONS:
        return set()
    files = meta["outputs"].get("files") if isinstance(meta["outputs"], dict) else None
    if not isinstance(files, dict):
        return set()
    listed = {"meta.json"}
    for f in files:
        rel = PurePosixPath(f)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            return set()  # not a path inside the folder: not seqprep's
        listed.add(rel.as_posix())
    return listed


def _relation(folder: os.stat_result, path: str, cache: dict[str, bool]) -> str | None:
    """'is' when ``path`` is ``folder`` on disk, 'holds' when it lies inside it, else None.

    ``cache`` remembers the parents already found not to be ``folder`` (many inputs share them).
    """
    p = Path(os.path.realpath(path))
    for k, q in enumerate((p, *p.parents)):
        key = str(q)
        if key not in cache:
            try:
                cache[key] = os.path.samestat(os.stat(q), folder)
            except OSError:
                cache[key] = False
        if cache[key]:
            return "is" if k == 0 else "holds"
    return None


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the current folder was deleted
        return None


def _home() -> str | None:
    home = os.path.expanduser("~")
    return None if home == "~" else home


def swap_in(tmp: Path, out: Path, overwrite: bool, reads: Reads = NO_READS) -> None:
    """Rename the finished folder ``tmp`` to ``out`` (replacing an existing ``out`` with ``overwrite``).

    Runs with signals deferred and under the parent folder's lock. An existing ``out`` is checked
    again there (:func:`check_replaceable` with ``reads``): it may have changed while the build ran.
    On failure ``out`` is left as it was and an :class:`OutputError` says why; ``tmp`` is the caller's
    to remove.
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
        else:
            check_replaceable(out, reads)
            _replace(tmp, out, parent)
        _fsync_dir(parent)


def _replace(tmp: Path, out: Path, parent: Path) -> None:
    """Old OUT -> a hidden folder, tmp -> OUT, then the old one is deleted (restored on failure).

    The old OUT is checked once more where it was moved aside, before tmp goes in: a file another
    program wrote into it after :func:`check_replaceable` (which takes no lock) is never deleted.
    """
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
        _refuse_foreign(aside, str(out))
    except OutputError:
        os.rename(aside, out)
        shutil.rmtree(old, ignore_errors=True)
        raise
    try:
        os.rename(tmp, out)
    except OSError as e:
        os.rename(aside, out)  # put the old OUT back before anything else
        shutil.rmtree(old, ignore_errors=True)
        msg = f"cannot replace {str(out)!r}: {e.strerror}; the old output is kept - check permissions or choose another -o"
        raise OutputError(msg) from e
    shutil.rmtree(old, ignore_errors=True)
