"""An exclusive lock held by a live process: a lock file beside what it guards, locked with
flock(2). The kernel drops the lock when its process ends however it ends (Ctrl-C, SIGTERM,
SIGKILL), so a lock left by a killed process never blocks the next one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from toolkit.errors import ToolkitError


@contextlib.contextmanager
def exclusive_lock(path: Path, busy: Callable[[str], str]) -> Iterator[None]:
    """Hold the lock file `path` while the block runs; when a live process holds it, raise a
    ToolkitError of `busy(holder)` (holder: "process N", as the lock file records it)."""
    import fcntl

    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise ToolkitError(f"cannot create the lock file {path} ({exc.strerror or exc}).") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            os.close(handle)
            raise ToolkitError(busy(holder)) from None
        try:  # the holder before us may have removed the file as we opened it: lock the one in place
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(handle).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(handle)
    try:
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(handle)


def _holder(handle: int) -> str:
    try:
        text = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"process {text}" if text.isdigit() else "another process"
