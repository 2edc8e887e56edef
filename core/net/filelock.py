"""An exclusive lock between processes on a small lock file (Blender, Krita and the CLI all
write the same files in the config folder). No dependency: fcntl.flock on POSIX,
msvcrt.locking on Windows.

The operating system drops the lock when the process ends, so a crashed holder never
leaves it taken. Callers keep a threading.Lock as well: then one thread per process contends
for the file, and nothing depends on each platform's rules for a lock taken twice by one
process (flock locks per open file description, msvcrt per handle).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> None:
        # LK_LOCK retries for about 10 s, then raises; a holder only keeps it for one write.
        os.lseek(fd, 0, os.SEEK_SET)  # the byte locked is the one at the file position
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)  # the byte locked is the one at the file position
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock on `path` (created empty, mode 0600, if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)
