"""One writer process per embedded store folder: an OS ``flock`` on a lock file inside it.

Embedded Chroma (``PersistentClient``) is not safe with two processes on one folder (under
load one of them ends with every search failing). The engine therefore takes an exclusive,
non-blocking ``flock`` on ``<path>/.mem_adapters.lock`` before opening the folder, and writes
its pid into the file so a second process is told who holds it. The OS releases the lock
when the holder exits, however it dies (``SIGKILL`` included), so there is never a stale lock
to clean up.

``flock`` locks belong to an open file, so two opens in one process would conflict: the lock
is counted per process instead, and several engines of one process share one folder (they
share Chroma's in-process client too). Where ``fcntl`` does not exist (Windows) the lock is
a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from ..errors import StoreLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_NAME = ".mem_adapters.lock"

_mutex = threading.Lock()
_held: dict[str, list[int]] = {}  # real path of the folder -> [fd, holders in this process]
# Real path of the folder -> writes to it by this process. While this process holds the flock
# no other process writes the folder, so a partition caught up at generation g is current as
# long as the count is still g: searches skip the catch-up read from Chroma (issue #10).
_writes: dict[str, int] = {}


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(raw) if raw else None
    except (OSError, ValueError):
        return None


class StoreLock:
    """This process's share of the lock on one store folder; :meth:`release` gives it back.

    Args:
        path: The store folder (created if missing).

    Raises:
        StoreLockedError: another process holds the folder; names the holder's pid.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.key = str(folder.resolve())
        self._released = False
        with _mutex:
            entry = _held.get(self.key)
            if entry is not None:
                entry[1] += 1
                return
            fd = os.open(os.path.join(self.key, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pid = _read_pid(fd)
                    os.close(fd)
                    raise StoreLockedError(self.key, pid) from None
                except OSError:
                    os.close(fd)
                    raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            _held[self.key] = [fd, 1]
            logger.debug("locked store %s (pid %d)", self.key, os.getpid())

    @property
    def exclusive(self) -> bool:
        """Whether this process is the folder's only writer (an OS lock is held; not on Windows)."""
        return fcntl is not None and not self._released

    @property
    def generation(self) -> int:
        """How many writes this process has made to the folder (through any of its engines)."""
        return write_generation(self.key)

    def release(self) -> None:
        """Give this share back; the last one in the process unlocks the folder. Idempotent."""
        with _mutex:
            if self._released:
                return
            self._released = True
            entry = _held.get(self.key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[self.key]
            fd = entry[0]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no pid left behind for the next reader
            os.close(fd)  # closing the file releases the flock


def folder_key(path: str | os.PathLike[str]) -> str:
    """The key a folder's lock and write count go by (its real path)."""
    return str(Path(path).resolve())


def count_write(key: str) -> None:
    """Count one write by this process to the folder ``key`` (:func:`folder_key`).

    Every engine of the process writing through an embedded client counts, whether it holds the
    lock or was given a ``PersistentClient`` of the same folder.
    """
    with _mutex:
        _writes[key] = _writes.get(key, 0) + 1


def write_generation(key: str) -> int:
    """How many writes this process has counted to the folder ``key``."""
    return _writes.get(key, 0)
