"""The writer lock: an advisory ``flock`` on ``<index>/lock``, held for the duration of one write.

The kernel drops the lock when its holder exits or is killed, so a crashed writer never leaves
the index locked. Readers take no lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import IndexLockedError
from .files import LOCK


class WriterLock:
    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise IndexLockedError(
                f"{self.path.parent} is being written by another writer (pid {holder}); "
                "one writer at a time: retry when it has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
